/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fscrypt filename and symlink-target encryption (Documentation/format.rst sections 8, 9):
 * zero padding to the policy's boundary, then CBC-CS3 ciphertext stealing
 * ("cts(cbc(aes))") with an all-zero IV under the directory's (or, for a
 * symlink target, the symlink's own) per-file key.  Name hashes of the
 * ciphertext are btrfs_name_hash() in kernel-shared/hash.h.
 *
 * Supported filenames modes: 4 (AES-256-CTS, 32-byte key) and 6
 * (AES-128-CTS, 16-byte key).  Functions return a byte count (>= 0) or a
 * negative errno as documented on each.
 */
#ifndef EXTCRYPT_FNAME_H
#define EXTCRYPT_FNAME_H

#include <stddef.h>
#include <stdint.h>

#define FNAME_MAX_LEN		255	/* btrfs and fscrypt name limit */
#define FNAME_MIN_CT_LEN	16	/* one cipher block */
#define FNAME_MAX_SYMLINK_LEN	4095	/* PATH_MAX - 1: longest symlink target */

/*
 * Ciphertext length of a len-byte name under policy flags:
 * min(round_up(max(len, 16), 4 << (flags & 3)), max_len).  For directory
 * entries max_len is FNAME_MAX_LEN.  Returns 0 if len is 0 or > max_len,
 * or if max_len < 16.
 */
size_t fname_encrypted_len(size_t len, uint8_t flags, size_t max_len);

/*
 * Encrypt a directory entry name (1..255 bytes) into out (FNAME_MAX_LEN
 * bytes).  key is the parent directory's per-file key for the filenames
 * mode.  Returns the ciphertext length, -EINVAL for an empty or too long
 * name or an unsupported mode, -EIO if the library fails.
 */
int fname_encrypt(int mode, const uint8_t *key, uint8_t flags,
		  const void *name, size_t len, uint8_t *out);

/*
 * Decrypt a stored name of ct_len (16..255) bytes into out (FNAME_MAX_LEN
 * bytes), validating it: the name ends at the first NUL, everything after is
 * zero padding, it is not empty and holds no '/'.  Returns the name length,
 * -EINVAL for a bad ct_len or mode, -EBADMSG if the plaintext is not a valid
 * name (wrong key or corrupt ciphertext), -EIO if the library fails.
 */
int fname_decrypt(int mode, const uint8_t *key, const void *ct, size_t ct_len,
		  uint8_t *out);

/*
 * The same for many names under one key: the key schedule made once
 * (fname_encrypt() and fname_decrypt() make it for every name, most of
 * their cost).  fname_cipher_new() makes one that encrypts (enc 1) or
 * decrypts (enc 0), or returns NULL with *err -EINVAL (mode, no key), -EIO
 * or -ENOMEM; fname_cipher_free() cleanses it (NULL is fine).
 * fname_encrypt_with() and fname_decrypt_with() return what fname_encrypt()
 * and fname_decrypt() do, and -EINVAL for a cipher of the other direction.
 */
struct fname_cipher;
struct fname_cipher *fname_cipher_new(int mode, const uint8_t *key, int enc, int *err);
void fname_cipher_free(struct fname_cipher *fc);
int fname_encrypt_with(struct fname_cipher *fc, uint8_t flags, const void *name, size_t len,
		       uint8_t *out);
int fname_decrypt_with(struct fname_cipher *fc, const void *ct, size_t ct_len, uint8_t *out);

/*
 * struct fscrypt_symlink_data { __le16 len; u8 ct[len]; } (Documentation/format.rst 9).
 * The target is padded like a name but capped at max_data - 2 bytes of
 * ciphertext instead of 255 (max_data is the inline data limit).
 * fscrypt_symlink_encrypt() writes 2 + len bytes into out (out_size bytes)
 * and returns that size; -EINVAL for an empty target, one longer than
 * FNAME_MAX_SYMLINK_LEN or than max_data - 2, or a mode it does not support;
 * -ENOSPC if out is too small; -EIO.
 */
int fscrypt_symlink_encrypt(int mode, const uint8_t *key, uint8_t flags,
			    const void *target, size_t target_len, size_t max_data,
			    uint8_t *out, size_t out_size);

/*
 * Decrypt symlink data of data_len bytes into out (out_size bytes, NUL
 * terminated when there is room).  Returns the target length, -EINVAL if the
 * length field disagrees with data_len or is below 16, -ENOSPC if out is too
 * small, -EBADMSG if the plaintext is not a valid target (empty, or bytes
 * after the first NUL not zero), -EIO.
 */
int fscrypt_symlink_decrypt(int mode, const uint8_t *key, const void *data,
			    size_t data_len, uint8_t *out, size_t out_size);

/*
 * Raw CBC-CS3 with a zero IV over len (>= 16) bytes, no padding logic;
 * in == out allowed.  Returns 0, -EINVAL, -EIO.
 */
int fname_cts_crypt(int mode, const uint8_t *key, int enc, const void *in,
		    void *out, size_t len);

#endif
