/* SPDX-License-Identifier: GPL-2.0 */
#ifndef EXTCRYPT_UTILS_H
#define EXTCRYPT_UTILS_H

#include <stdint.h>

/*
 * Parse a whole string as an unsigned 64-bit number (decimal, or hex with
 * 0x).  Returns 0, or -EINVAL for anything else (sign, junk, overflow, empty).
 */
int parse_u64(const char *s, unsigned long long *out);

#include <stdbool.h>
#include <stddef.h>

/* Whether buf holds valid UTF-8 (encrypted names usually do not). */
bool utf8_valid(const void *buf, size_t len);

/*
 * buf as text for a message: printable ASCII as is, every other byte and
 * the backslash as \xNN; cut to fit out (outlen > 0).  Returns out.
 */
const char *bytes_escape(const void *buf, size_t len, char *out, size_t outlen);

#endif
