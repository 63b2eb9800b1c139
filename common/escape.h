/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one renderer of names for people and scripts (Documentation/design.rst
 * section 5, "Names in output").  Names are bytes: file names, symlink
 * targets, xattr names and values, paths built from them.  Every command
 * prints them through these functions, never raw:
 *
 *   esc_progs()  btrfs-progs' escaping, every byte outside 0x21-0x7e
 *                escaped (inspect dump-tree, which must print what
 *                btrfs-progs prints);
 *   name_text()  the readable form for every other text output and
 *                message: printable ASCII and well-formed, printable
 *                UTF-8 as they are; control bytes, DEL, C1 controls,
 *                malformed UTF-8 and the backslash escaped the
 *                btrfs-progs way.  The result is printable UTF-8, without
 *                a byte below 0x20.
 *
 * In JSON, a name is its exact text when that is valid UTF-8, else its
 * name_text() form with a "*-hex" field beside it holding the exact bytes
 * (json_name_add(), common/output.h).
 *
 * Encrypted names are decrypted (with the key) or turned into the kernel's
 * no-key form before they get here (data/names.h): what reaches these
 * functions is never ciphertext shown as if it were a name.
 */
#ifndef EXTCRYPT_ESCAPE_H
#define EXTCRYPT_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Whether buf holds well-formed UTF-8 (encrypted names usually do not). */
bool utf8_valid(const void *buf, size_t len);

/* One byte in btrfs-progs' escaped form into d (4 bytes room); returns its length. */
size_t esc_progs_byte(unsigned char ch, char *d);

/* s (n bytes) in btrfs-progs' form into dst, which holds 4 * n + 1; returns the length. */
size_t esc_progs(const void *s, size_t n, char *dst);

/* True when s is well-formed UTF-8 without NUL, control bytes (C0, DEL, C1) or a backslash. */
bool text_plain(const void *s, size_t n);

/*
 * s (n bytes) in the readable form into out (outlen > 0), cut before the
 * first character or escape that does not fit; NUL terminated.  An out of
 * 4 * n + 1 bytes always holds the whole name.  Returns out.
 */
const char *name_text(const void *s, size_t n, char *out, size_t outlen);

/* name_text() of the whole name in a new string (free() it); out of memory: die_oom(). */
char *name_text_dup(const void *s, size_t n);

/*
 * The safety net of messages (common/messages.c) and JSON message strings:
 * a NUL-terminated text with control bytes and malformed UTF-8 escaped as
 * above, backslashes kept (a name in it is already in name_text() form).
 * Returns s itself when nothing needs an escape, else out.
 */
const char *str_text(const char *s, char *out, size_t outlen);

#endif
