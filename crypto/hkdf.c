// SPDX-License-Identifier: GPL-2.0
/*
 * HKDF through OpenSSL's EVP_KDF.  The extract uses an explicit salt of 64
 * zero bytes: that is what an unsalted HKDF means (RFC 5869 2.2) and what
 * Linux fs/crypto/hkdf.c does, so nothing depends on the library's default.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include "crypto/hkdf.h"

static EVP_KDF *hkdf_alg;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;

/*
 * Expands of one PRK reuse a context that holds its key, digest and mode:
 * a new context per expand fetches SHA-512 by name and parses every
 * parameter again, which cost about 24,000 instructions per file key (half
 * of `check --key-file`).  One per thread (the library's contexts are not
 * shared) for each of the last EXPAND_SLOTS PRKs (rekey alternates two
 * keys), freed (cleansed by the library) when the thread ends, when its slot
 * is needed for another PRK, or by hkdf_forget().
 */
#define EXPAND_SLOTS 4
struct expand_cache {
	struct {
		EVP_KDF_CTX *kctx;
		uint8_t prk[HKDF_SHA512_PRK_SIZE];
	} slot[EXPAND_SLOTS];
	unsigned int next;	/* the slot a new PRK takes */
};
static pthread_key_t expand_key;

static void expand_cache_free(void *arg)
{
	struct expand_cache *ec = arg;

	if (!ec)
		return;
	for (int i = 0; i < EXPAND_SLOTS; i++)
		EVP_KDF_CTX_free(ec->slot[i].kctx);
	explicit_bzero(ec, sizeof(*ec));
	free(ec);
}

static void hkdf_fetch(void)
{
	hkdf_alg = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (pthread_key_create(&expand_key, expand_cache_free)) {
		EVP_KDF_free(hkdf_alg);
		hkdf_alg = NULL;
	}
}

void hkdf_forget(void)
{
	pthread_once(&hkdf_once, hkdf_fetch);
	if (!hkdf_alg)
		return;
	expand_cache_free(pthread_getspecific(expand_key));
	pthread_setspecific(expand_key, NULL);
}

/*
 * The parameters every HKDF step sets: SHA-512, the mode and the key, at
 * p[0..2]; returns the next free slot.  *mode must outlive the use of p.
 */
static OSSL_PARAM *base_params(OSSL_PARAM *p, const int *mode, const uint8_t *key, size_t key_len)
{
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA512", 0);
	*p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, (int *)mode);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
	return p;
}

/* This thread's expand context for prk, made on first use; NULL on failure. */
static EVP_KDF_CTX *expand_ctx(const uint8_t prk[HKDF_SHA512_PRK_SIZE])
{
	struct expand_cache *ec = pthread_getspecific(expand_key);
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[4];
	unsigned int s;

	for (s = 0; ec && s < EXPAND_SLOTS; s++)
		if (ec->slot[s].kctx && !memcmp(ec->slot[s].prk, prk, HKDF_SHA512_PRK_SIZE))
			return ec->slot[s].kctx;
	if (!ec) {
		ec = calloc(1, sizeof(*ec));
		if (!ec || pthread_setspecific(expand_key, ec)) {
			free(ec);
			return NULL;
		}
	}
	s = ec->next;
	ec->next = (s + 1) % EXPAND_SLOTS;
	EVP_KDF_CTX_free(ec->slot[s].kctx);
	explicit_bzero(ec->slot[s].prk, HKDF_SHA512_PRK_SIZE);
	ec->slot[s].kctx = EVP_KDF_CTX_new(hkdf_alg);
	*base_params(params, &mode, prk, HKDF_SHA512_PRK_SIZE) = OSSL_PARAM_construct_end();
	if (!ec->slot[s].kctx || EVP_KDF_CTX_set_params(ec->slot[s].kctx, params) != 1) {
		EVP_KDF_CTX_free(ec->slot[s].kctx);
		ec->slot[s].kctx = NULL;
		return NULL;
	}
	memcpy(ec->slot[s].prk, prk, HKDF_SHA512_PRK_SIZE);
	return ec->slot[s].kctx;
}

/* Run one HKDF step with the given mode; 0 or -EIO. */
static int hkdf_run(int mode, const uint8_t *key, size_t key_len,
		    const uint8_t *salt, size_t salt_len,
		    const uint8_t *info, size_t info_len,
		    uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[6], *p = params;
	EVP_KDF_CTX *kctx;
	int ret = -EIO;

	pthread_once(&hkdf_once, hkdf_fetch);
	if (!hkdf_alg)
		return -EIO;
	kctx = EVP_KDF_CTX_new(hkdf_alg);
	if (!kctx)
		return -EIO;

	p = base_params(p, &mode, key, key_len);
	if (salt)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							 (void *)salt, salt_len);
	if (info)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
							 (void *)info, info_len);
	*p = OSSL_PARAM_construct_end();

	if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
		ret = 0;
	else
		memset(out, 0, out_len);
	EVP_KDF_CTX_free(kctx);
	return ret;
}

int hkdf_sha512_extract(const uint8_t *ikm, size_t ikm_len,
			uint8_t prk[HKDF_SHA512_PRK_SIZE])
{
	static const uint8_t zero_salt[HKDF_SHA512_PRK_SIZE];

	if (!ikm || !ikm_len)
		return -EINVAL;
	return hkdf_run(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, ikm_len,
			zero_salt, sizeof(zero_salt), NULL, 0,
			prk, HKDF_SHA512_PRK_SIZE);
}

int hkdf_sha512_expand_fscrypt(const uint8_t prk[HKDF_SHA512_PRK_SIZE],
			       uint8_t ctx, const uint8_t *data, size_t data_len,
			       uint8_t *out, size_t out_len)
{
	static const char prefix[8] = "fscrypt";	/* includes the NUL */
	uint8_t info[sizeof(prefix) + 1 + HKDF_FSCRYPT_MAX_DATA];
	size_t info_len = 0;
	int ret;

	if (!out_len || out_len > HKDF_SHA512_MAX_OUTPUT ||
	    data_len > HKDF_FSCRYPT_MAX_DATA || (data_len && !data))
		return -EINVAL;

	memcpy(info, prefix, sizeof(prefix));
	info_len = sizeof(prefix);
	info[info_len++] = ctx;
	if (data_len)
		memcpy(info + info_len, data, data_len);
	info_len += data_len;

	pthread_once(&hkdf_once, hkdf_fetch);
	ret = -EIO;
	if (hkdf_alg) {
		EVP_KDF_CTX *kctx = expand_ctx(prk);
		OSSL_PARAM params[2] = {
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, info_len),
			OSSL_PARAM_construct_end(),
		};

		/* The info parameter replaces the previous expand's. */
		if (kctx && EVP_KDF_derive(kctx, out, out_len, params) == 1)
			ret = 0;
		else
			memset(out, 0, out_len);
	}
	/* The info holds nonces, not secrets, but keep the stack clean anyway. */
	memset(info, 0, sizeof(info));
	return ret;
}
