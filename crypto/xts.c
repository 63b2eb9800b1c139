// SPDX-License-Identifier: GPL-2.0
/*
 * One EVP context per direction, keyed once; per data unit only the IV
 * changes, so a run of units costs no allocation and no key schedule.
 *
 * Setting the IV through EVP_CipherInit_ex2() costs OpenSSL 3.0 a provider
 * parameter query (the IV length, looked up by name) on every call, about
 * 15% of a 4 KiB unit.  EVP_CIPHER_CTX_iv_noconst() returns the provider's
 * own IV buffer, which the XTS update reads and does not advance, so writing
 * the tweak there is enough.  That relies on provider behaviour, so it is
 * used only after a once-per-process self-test shows both paths produce the
 * same ciphertext; otherwise every unit goes through EVP_CipherInit_ex2().
 */
#define OPENSSL_SUPPRESS_DEPRECATED	/* EVP_CIPHER_CTX_iv_noconst() */
#include <errno.h>
#include <endian.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "common/fault.h"
#include "crypto/xts.h"

struct xts_ctx {
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	uint8_t *enc_iv;	/* provider IV buffers; NULL: slow path */
	uint8_t *dec_iv;
};

static EVP_CIPHER *xts_cipher;
static bool xts_fast_iv;
static bool xts_slow_iv_forced;
static pthread_once_t xts_once = PTHREAD_ONCE_INIT;

static int xts_set_key_raw(struct xts_ctx *x, const uint8_t *key, bool fast);
static int xts_run(EVP_CIPHER_CTX *ctx, uint8_t *ivbuf, int enc, uint64_t dun,
		   const uint8_t *in, uint8_t *out, size_t unit, size_t n);

/* Compare the fast and the slow IV path on a fixed key, both directions. */
static bool xts_fast_iv_selftest(void)
{
	struct xts_ctx fast = { 0 }, slow = { 0 };
	uint8_t key[XTS_KEY_SIZE], pt[3 * 32], a[sizeof(pt)], b[sizeof(pt)];
	bool ok = false;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)i;
	fast.enc = EVP_CIPHER_CTX_new();
	fast.dec = EVP_CIPHER_CTX_new();
	slow.enc = EVP_CIPHER_CTX_new();
	slow.dec = EVP_CIPHER_CTX_new();
	if (!fast.enc || !fast.dec || !slow.enc || !slow.dec)
		goto out;
	if (xts_set_key_raw(&fast, key, true) || !fast.enc_iv || !fast.dec_iv ||
	    xts_set_key_raw(&slow, key, false))
		goto out;
	if (xts_run(fast.enc, fast.enc_iv, 1, 0x0102030405060708ULL, pt, a, 32, 3) ||
	    xts_run(slow.enc, NULL, 1, 0x0102030405060708ULL, pt, b, 32, 3) ||
	    memcmp(a, b, sizeof(a)))
		goto out;
	if (xts_run(fast.dec, fast.dec_iv, 0, 0x0102030405060708ULL, a, b, 32, 3) ||
	    memcmp(b, pt, sizeof(pt)))
		goto out;
	ok = true;
out:
	EVP_CIPHER_CTX_free(fast.enc);
	EVP_CIPHER_CTX_free(fast.dec);
	EVP_CIPHER_CTX_free(slow.enc);
	EVP_CIPHER_CTX_free(slow.dec);
	return ok;
}

static void xts_init_once(void)
{
	xts_cipher = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
	if (xts_cipher)
		xts_fast_iv = xts_fast_iv_selftest();
}

static int xts_set_key_raw(struct xts_ctx *x, const uint8_t *key, bool fast)
{
	static const uint8_t zero_iv[XTS_IV_SIZE];

	/* Keying with an IV marks it set, which the fast path needs. */
	if (EVP_CipherInit_ex2(x->enc, xts_cipher, key, zero_iv, 1, NULL) != 1 ||
	    EVP_CipherInit_ex2(x->dec, xts_cipher, key, zero_iv, 0, NULL) != 1)
		return -EIO;
	x->enc_iv = fast ? EVP_CIPHER_CTX_iv_noconst(x->enc) : NULL;
	x->dec_iv = fast ? EVP_CIPHER_CTX_iv_noconst(x->dec) : NULL;
	if (!x->enc_iv || !x->dec_iv)
		x->enc_iv = x->dec_iv = NULL;
	return 0;
}

int xts_ctx_set_key(struct xts_ctx *x, const uint8_t *key, size_t key_len)
{
	if (key_len != XTS_KEY_SIZE)
		return -EINVAL;
	/* OpenSSL rejects equal halves; report it as a bad key, not an I/O error. */
	if (CRYPTO_memcmp(key, key + XTS_KEY_SIZE / 2, XTS_KEY_SIZE / 2) == 0)
		return -EINVAL;
	return xts_set_key_raw(x, key, xts_fast_iv && !xts_slow_iv_forced);
}

void xts_force_slow_iv(bool on)
{
	xts_slow_iv_forced = on;
}

bool xts_uses_fast_iv(const struct xts_ctx *x)
{
	return x->enc_iv != NULL;
}

int xts_ctx_new(struct xts_ctx **out, const uint8_t *key, size_t key_len)
{
	struct xts_ctx *x;
	int ret;

	*out = NULL;
	pthread_once(&xts_once, xts_init_once);
	if (!xts_cipher)
		return -EIO;
	x = fault_calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->enc = EVP_CIPHER_CTX_new();
	x->dec = EVP_CIPHER_CTX_new();
	if (!x->enc || !x->dec) {
		xts_ctx_free(x);
		return -ENOMEM;
	}
	ret = xts_ctx_set_key(x, key, key_len);
	if (ret) {
		xts_ctx_free(x);
		return ret;
	}
	*out = x;
	return 0;
}

void xts_ctx_free(struct xts_ctx *x)
{
	if (!x)
		return;
	EVP_CIPHER_CTX_free(x->enc);	/* cleanses the key schedule */
	EVP_CIPHER_CTX_free(x->dec);
	free(x);
}

static int xts_run(EVP_CIPHER_CTX *ctx, uint8_t *ivbuf, int enc, uint64_t dun,
		   const uint8_t *in, uint8_t *out, size_t unit, size_t n)
{
	uint8_t iv[XTS_IV_SIZE] = { 0 };

	if (unit < 16 || unit % 16 || unit > (16U << 20))
		return -EINVAL;
	if (ivbuf)
		memset(ivbuf + 8, 0, XTS_IV_SIZE - 8);
	for (size_t i = 0; i < n; i++) {
		uint64_t le = htole64(dun + i);
		int outl;

		if (ivbuf) {
			memcpy(ivbuf, &le, sizeof(le));
		} else {
			memcpy(iv, &le, sizeof(le));
			if (EVP_CipherInit_ex2(ctx, NULL, NULL, iv, enc, NULL) != 1)
				return -EIO;
		}
		if (EVP_CipherUpdate(ctx, out, &outl, in, (int)unit) != 1 ||
		    (size_t)outl != unit)
			return -EIO;
		in += unit;
		out += unit;
	}
	return 0;
}

int xts_encrypt(struct xts_ctx *x, uint64_t dun, const void *in, void *out,
		size_t unit_size, size_t n)
{
	return xts_run(x->enc, x->enc_iv, 1, dun, in, out, unit_size, n);
}

int xts_decrypt(struct xts_ctx *x, uint64_t dun, const void *in, void *out,
		size_t unit_size, size_t n)
{
	return xts_run(x->dec, x->dec_iv, 0, dun, in, out, unit_size, n);
}
