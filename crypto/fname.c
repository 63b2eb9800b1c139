// SPDX-License-Identifier: GPL-2.0
/*
 * OpenSSL 3.0's "AES-256-CBC-CTS" with cts_mode "CS3" is the kernel's
 * cts(cbc(aes)): a single block is plain CBC, and above that the last two
 * blocks are always swapped, even for a multiple of the block size.  The
 * vectors of Documentation/format.rst 13.3/13.4 pin this down in the unit tests.
 */
#include <errno.h>
#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include "crypto/fname.h"
#include "crypto/fscrypt-keys.h"

static EVP_CIPHER *cts256, *cts128;
static pthread_once_t cts_once = PTHREAD_ONCE_INIT;

static void cts_fetch(void)
{
	cts256 = EVP_CIPHER_fetch(NULL, "AES-256-CBC-CTS", NULL);
	cts128 = EVP_CIPHER_fetch(NULL, "AES-128-CBC-CTS", NULL);
}

static EVP_CIPHER *cts_cipher(int mode)
{
	pthread_once(&cts_once, cts_fetch);
	if (mode == FSCRYPT_MODE_AES_256_CTS)
		return cts256;
	if (mode == FSCRYPT_MODE_AES_128_CTS)
		return cts128;
	return NULL;
}

static const uint8_t zero_iv[16];

/* A context keyed for mode (CS3), or NULL (-EINVAL mode, -EIO, -ENOMEM in *err). */
static EVP_CIPHER_CTX *cts_ctx_new(int mode, const uint8_t *key, int enc, int *err)
{
	EVP_CIPHER *cipher = cts_cipher(mode);
	OSSL_PARAM params[2];
	EVP_CIPHER_CTX *ctx;

	*err = -EINVAL;
	if ((mode != FSCRYPT_MODE_AES_256_CTS && mode != FSCRYPT_MODE_AES_128_CTS) || !key)
		return NULL;
	*err = -EIO;
	if (!cipher)
		return NULL;
	*err = -ENOMEM;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_CIPHER_PARAM_CTS_MODE,
						     (char *)"CS3", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_CipherInit_ex2(ctx, cipher, key, zero_iv, enc, params) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		*err = -EIO;
		return NULL;
	}
	return ctx;
}

/* One message through a keyed context from a zero IV (the key schedule stays). */
static int cts_run(EVP_CIPHER_CTX *ctx, int enc, const void *in, void *out, size_t len)
{
	int outl = 0;

	if (len < 16 || len > (1U << 20))
		return -EINVAL;
	if (EVP_CipherInit_ex2(ctx, NULL, NULL, zero_iv, enc, NULL) == 1 &&
	    EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1 && (size_t)outl == len)
		return 0;
	return -EIO;
}

int fname_cts_crypt(int mode, const uint8_t *key, int enc, const void *in,
		    void *out, size_t len)
{
	EVP_CIPHER_CTX *ctx;
	int ret;

	if (len < 16 || len > (1U << 20))
		return -EINVAL;
	ctx = cts_ctx_new(mode, key, enc, &ret);
	if (!ctx)
		return ret;
	ret = cts_run(ctx, enc, in, out, len);
	EVP_CIPHER_CTX_free(ctx);	/* cleanses the key schedule */
	return ret;
}

struct fname_cipher {
	EVP_CIPHER_CTX *ctx;
	int enc;		/* 1: encrypts names, 0: decrypts them */
};

struct fname_cipher *fname_cipher_new(int mode, const uint8_t *key, int enc, int *err)
{
	struct fname_cipher *fc = calloc(1, sizeof(*fc));

	*err = -ENOMEM;
	if (!fc)
		return NULL;
	fc->enc = !!enc;
	fc->ctx = cts_ctx_new(mode, key, fc->enc, err);
	if (!fc->ctx) {
		free(fc);
		return NULL;
	}
	*err = 0;
	return fc;
}

void fname_cipher_free(struct fname_cipher *fc)
{
	if (!fc)
		return;
	EVP_CIPHER_CTX_free(fc->ctx);	/* cleanses the key schedule */
	free(fc);
}

size_t fname_encrypted_len(size_t len, uint8_t flags, size_t max_len)
{
	size_t pad = fscrypt_policy_padding(flags);
	size_t l = len < FNAME_MIN_CT_LEN ? FNAME_MIN_CT_LEN : len;

	if (!len || len > max_len || max_len < FNAME_MIN_CT_LEN)
		return 0;
	l = (l + pad - 1) / pad * pad;
	return l < max_len ? l : max_len;
}

/* Pad into a local buffer and encrypt (through fc when given); the ciphertext length. */
static int pad_and_encrypt(int mode, const uint8_t *key, struct fname_cipher *fc, uint8_t flags,
			   const void *name, size_t len, size_t max_len, uint8_t *out)
{
	uint8_t buf[FNAME_MAX_SYMLINK_LEN + 32];
	size_t l = fname_encrypted_len(len, flags, max_len);
	int ret;

	if (!l || l > sizeof(buf))
		return -EINVAL;
	memset(buf, 0, l);
	memcpy(buf, name, len);
	ret = fc ? cts_run(fc->ctx, 1, buf, out, l) : fname_cts_crypt(mode, key, 1, buf, out, l);
	explicit_bzero(buf, l);
	return ret ? ret : (int)l;
}

int fname_encrypt(int mode, const uint8_t *key, uint8_t flags,
		  const void *name, size_t len, uint8_t *out)
{
	return pad_and_encrypt(mode, key, NULL, flags, name, len, FNAME_MAX_LEN, out);
}

int fname_encrypt_with(struct fname_cipher *fc, uint8_t flags, const void *name, size_t len,
		       uint8_t *out)
{
	if (!fc->enc)
		return -EINVAL;
	return pad_and_encrypt(0, NULL, fc, flags, name, len, FNAME_MAX_LEN, out);
}

/* Length of the plaintext before its zero padding, or -EBADMSG. */
static int unpad(const uint8_t *p, size_t len)
{
	size_t n = strnlen((const char *)p, len);

	if (n == 0)
		return -EBADMSG;
	for (size_t i = n; i < len; i++)
		if (p[i])
			return -EBADMSG;
	return (int)n;
}

/* The checks of fname_decrypt() on a decrypted name of ct_len bytes. */
static int name_valid(uint8_t *out, size_t ct_len)
{
	int n = unpad(out, ct_len);

	if (n > 0 && memchr(out, '/', (size_t)n))
		n = -EBADMSG;
	if (n < 0)
		explicit_bzero(out, ct_len);
	return n;
}

int fname_decrypt(int mode, const uint8_t *key, const void *ct, size_t ct_len,
		  uint8_t *out)
{
	int ret;

	if (ct_len < FNAME_MIN_CT_LEN || ct_len > FNAME_MAX_LEN)
		return -EINVAL;
	ret = fname_cts_crypt(mode, key, 0, ct, out, ct_len);
	return ret ? ret : name_valid(out, ct_len);
}

int fname_decrypt_with(struct fname_cipher *fc, const void *ct, size_t ct_len, uint8_t *out)
{
	int ret;

	if (ct_len < FNAME_MIN_CT_LEN || ct_len > FNAME_MAX_LEN || fc->enc)
		return -EINVAL;
	ret = cts_run(fc->ctx, 0, ct, out, ct_len);
	return ret ? ret : name_valid(out, ct_len);
}

int fscrypt_symlink_encrypt(int mode, const uint8_t *key, uint8_t flags,
			    const void *target, size_t target_len, size_t max_data,
			    uint8_t *out, size_t out_size)
{
	uint16_t le;
	int ret;

	if (max_data < 2 + FNAME_MIN_CT_LEN || target_len > FNAME_MAX_SYMLINK_LEN)
		return -EINVAL;
	if (!fname_encrypted_len(target_len, flags, max_data - 2))
		return -EINVAL;
	if (out_size < 2 + fname_encrypted_len(target_len, flags, max_data - 2))
		return -ENOSPC;
	ret = pad_and_encrypt(mode, key, NULL, flags, target, target_len, max_data - 2, out + 2);
	if (ret < 0)
		return ret;
	le = htole16((uint16_t)ret);
	memcpy(out, &le, 2);
	return ret + 2;
}

int fscrypt_symlink_decrypt(int mode, const uint8_t *key, const void *data,
			    size_t data_len, uint8_t *out, size_t out_size)
{
	const uint8_t *p = data;
	uint16_t le;
	size_t len;
	int ret, n;

	if (data_len < 2)
		return -EINVAL;
	memcpy(&le, p, 2);
	len = le16toh(le);
	if (len < FNAME_MIN_CT_LEN || len + 2 != data_len)
		return -EINVAL;
	if (out_size < len)
		return -ENOSPC;
	ret = fname_cts_crypt(mode, key, 0, p + 2, out, len);
	if (ret)
		return ret;
	n = unpad(out, len);
	if (n < 0) {
		explicit_bzero(out, len);
		return n;
	}
	if ((size_t)n < out_size)
		out[n] = 0;
	return n;
}
