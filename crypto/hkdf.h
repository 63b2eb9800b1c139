/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HKDF-SHA512 as fscrypt uses it (Documentation/format.rst section 4): an unsalted extract of
 * the master key into a 64-byte pseudorandom key, then expands whose info
 * string is "fscrypt\0" || context byte || context data.
 */
#ifndef EXTCRYPT_HKDF_H
#define EXTCRYPT_HKDF_H

#include <stddef.h>
#include <stdint.h>

#define HKDF_SHA512_PRK_SIZE 64
/* RFC 5869 limit for SHA-512: 255 blocks of output. */
#define HKDF_SHA512_MAX_OUTPUT (255 * 64)
/* Longest context data fscrypt uses (a 16-byte nonce) with room to spare. */
#define HKDF_FSCRYPT_MAX_DATA 64

/*
 * Extract: prk = HMAC-SHA512(64 zero bytes, ikm).
 * Returns 0, -EINVAL for an empty ikm, or -EIO if the library fails.
 */
int hkdf_sha512_extract(const uint8_t *ikm, size_t ikm_len,
			uint8_t prk[HKDF_SHA512_PRK_SIZE]);

/*
 * Expand prk with info = "fscrypt\0" || ctx || data[0..data_len) into
 * out[0..out_len).  Returns 0, -EINVAL for out_len 0 or beyond
 * HKDF_SHA512_MAX_OUTPUT or data_len beyond HKDF_FSCRYPT_MAX_DATA, or -EIO if
 * the library fails (out is zeroed then).
 */
int hkdf_sha512_expand_fscrypt(const uint8_t prk[HKDF_SHA512_PRK_SIZE],
			       uint8_t ctx, const uint8_t *data, size_t data_len,
			       uint8_t *out, size_t out_len);

/*
 * Expands keep one library context per thread for the last PRK used (its
 * key inside): this frees the calling thread's (other threads' go when they
 * end).  fscrypt_master_key_wipe() calls it.
 */
void hkdf_forget(void);

#endif
