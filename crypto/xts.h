/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AES-256-XTS over data units (Documentation/format.rst section 6): unit i of a run that
 * starts at DUN d is encrypted with tweak IV = le64(d + i) || 8 zero bytes.
 * The 64-byte key is data key (0..31) then tweak key (32..63).
 *
 * A context holds the expanded key for both directions.  It is not
 * thread-safe: give each thread its own.  All functions return 0 or a
 * negative errno.
 */
#ifndef EXTCRYPT_XTS_H
#define EXTCRYPT_XTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XTS_KEY_SIZE 64
#define XTS_IV_SIZE 16

struct xts_ctx;

/*
 * Allocate a context and set its key (key_len must be XTS_KEY_SIZE).
 * Returns 0 and *out, -EINVAL for a bad key length or a key whose two halves
 * are equal (OpenSSL refuses those), -ENOMEM, or -EIO.
 */
int xts_ctx_new(struct xts_ctx **out, const uint8_t *key, size_t key_len);
/* Replace the key of an existing context; same returns as xts_ctx_new(). */
int xts_ctx_set_key(struct xts_ctx *x, const uint8_t *key, size_t key_len);
/* Free a context; its key schedule is cleansed.  NULL is fine. */
void xts_ctx_free(struct xts_ctx *x);

/*
 * Encrypt or decrypt n consecutive units of unit_size bytes, the first at
 * DUN dun.  in == out (in place) is allowed; partial overlap is not.
 * unit_size must be a multiple of 16, at least 16 and at most 16 MiB.
 * Returns 0, -EINVAL for a bad unit size, or -EIO (out is then undefined).
 */
int xts_encrypt(struct xts_ctx *x, uint64_t dun, const void *in, void *out,
		size_t unit_size, size_t n);
int xts_decrypt(struct xts_ctx *x, uint64_t dun, const void *in, void *out,
		size_t unit_size, size_t n);

/*
 * Tests only: make contexts keyed after this call use (or stop using) the
 * generic per-unit IV path, so both paths can be compared.  Not thread-safe.
 */
void xts_force_slow_iv(bool on);
/* Whether a context sets its tweak through the provider's IV buffer. */
bool xts_uses_fast_iv(const struct xts_ctx *x);

#endif
