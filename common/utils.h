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



/* Seconds on the monotonic clock, for durations. */
double mono_secs(void);

#endif
