// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of crypto/: key hierarchy and policies, XTS, filename and
 * symlink encryption.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "crypto/fname.h"
#include "crypto/fscrypt-keys.h"
#include "crypto/hkdf.h"
#include "crypto/xts.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

/* Key hierarchy, policies */

UNIT_TEST(master_key_sizes)
{
	struct fscrypt_master_key mk;
	uint8_t raw[65];

	seq_bytes(raw, sizeof(raw), 1);
	CHECK_EQ_INT(fscrypt_master_key_init(&mk, raw, 15), -EINVAL);
	CHECK_EQ_INT(fscrypt_master_key_init(&mk, raw, 65), -EINVAL);
	CHECK_EQ_INT(fscrypt_master_key_init(&mk, raw, 16), 0);
	CHECK_EQ_INT(fscrypt_master_key_init(&mk, raw, 64), 0);
	fscrypt_master_key_wipe(&mk);
	for (size_t i = 0; i < sizeof(mk); i++)
		CHECK(((uint8_t *)&mk)[i] == 0);
}

UNIT_TEST(mode_names_and_sizes)
{
	CHECK(strcmp(fscrypt_mode_name(1), "AES-256-XTS") == 0);
	CHECK(strcmp(fscrypt_mode_name(4), "AES-256-CBC-CTS") == 0);
	CHECK(strcmp(fscrypt_mode_name(5), "AES-128-CBC-ESSIV") == 0);
	CHECK(strcmp(fscrypt_mode_name(9), "Adiantum") == 0);
	CHECK(strcmp(fscrypt_mode_name(2), "unknown") == 0);
	CHECK(strcmp(fscrypt_mode_name(200), "unknown") == 0);
	CHECK_EQ_INT(fscrypt_mode_key_size(1), 64);
	CHECK_EQ_INT(fscrypt_mode_key_size(4), 32);
	CHECK_EQ_INT(fscrypt_mode_key_size(5), 16);
	CHECK_EQ_INT(fscrypt_mode_key_size(3), 0);
	CHECK_EQ_INT(fscrypt_profile_from_name("v7"), FSCRYPT_PROFILE_V7);
	CHECK_EQ_INT(fscrypt_profile_from_name("v5"), FSCRYPT_PROFILE_V5);
	CHECK_EQ_INT(fscrypt_profile_from_name("v2"), FSCRYPT_PROFILE_V2);
	CHECK_EQ_INT(fscrypt_profile_from_name("v6"), -EINVAL);
	CHECK_EQ_INT(fscrypt_profile_info(FSCRYPT_PROFILE_V7)->extent_hkdf_ctx, 9);
	CHECK_EQ_INT(fscrypt_profile_info(FSCRYPT_PROFILE_V5)->extent_hkdf_ctx, 8);
	CHECK_EQ_INT(fscrypt_profile_info(FSCRYPT_PROFILE_V2)->extent_hkdf_ctx, 2);
	CHECK(fscrypt_profile_info(FSCRYPT_PROFILE_V7)->writable);
	CHECK(!fscrypt_profile_info(FSCRYPT_PROFILE_V5)->writable);
	CHECK(fscrypt_profile_info((enum fscrypt_profile)3) == NULL);
}

/* Parse a context given as hex; returns the error and checks the reason's text. */
static void check_ctx(const char *hex, int want, const char *reason_part)
{
	uint8_t buf[64];
	char reason[FSCRYPT_REASON_SIZE] = "";
	int len = unit_unhex(hex, buf, sizeof(buf));
	int ret = fscrypt_context_parse(buf, (size_t)len, NULL, reason, sizeof(reason));

	if (ret != want || (reason_part && !strstr(reason, reason_part)))
		unit_fail(__FILE__, __LINE__, "context %s: %d '%s', expected %d '%s'",
			  hex, ret, reason, want, reason_part ? reason_part : "");
}

#define KID "69b2f6edeee720cce0577937eb8a6751"
#define NON "77d5a7f82d59cb4c7c8c5a33fde3c603"

UNIT_TEST(context_validation)
{
	struct fscrypt_context_v2 ctx;
	char reason[FSCRYPT_REASON_SIZE];
	uint8_t buf[40];

	/* The real v6 example of Documentation/format.rst 3.1. */
	check_ctx("0201040200000000" KID NON, 0, NULL);
	check_ctx("0201040000000000" KID NON, 0, NULL);
	check_ctx("0201040300000000" KID NON, 0, NULL);
	check_ctx("0201040200000000" KID NON "00", 0, NULL);	/* kernel reads 40 */
	check_ctx("0201040200000000" KID, -EINVAL, "size 24");
	check_ctx("0101040200000000" KID NON, -EINVAL, "version 1");
	check_ctx("0301040200000000" KID NON, -EINVAL, "version 3");
	check_ctx("0201040600000000" KID NON, -EINVAL, "DIRECT_KEY");
	check_ctx("0201040a00000000" KID NON, -EINVAL, "IV_INO_LBLK_64");
	check_ctx("0201041200000000" KID NON, -EINVAL, "IV_INO_LBLK_32");
	check_ctx("0201042000000000" KID NON, -EINVAL, "0x20");
	check_ctx("0201040203000000" KID NON, -EINVAL, "log2_data_unit_size 3");
	check_ctx("0201040200000100" KID NON, -EINVAL, "reserved");
	check_ctx("0201010200000000" KID NON, -EINVAL, "mode pair");
	check_ctx("0202040200000000" KID NON, -EINVAL, "contents 2");
	check_ctx("02010a0200000000" KID NON, 0, NULL);
	check_ctx("0205060200000000" KID NON, 0, NULL);
	check_ctx("0207080200000000" KID NON, 0, NULL);
	check_ctx("0209090200000000" KID NON, 0, NULL);
	check_ctx("0205040200000000" KID NON, -EINVAL, "mode pair");

	CHECK_EQ_INT(unit_unhex("0205060200000000" KID NON, buf, sizeof(buf)), 40);
	CHECK_EQ_INT(fscrypt_context_parse(buf, 40, &ctx, NULL, 0), 0);
	CHECK_EQ_INT(fscrypt_policy_supported(&ctx, reason, sizeof(reason)), -EOPNOTSUPP);
	CHECK(strcmp(reason, "unsupported policy: contents mode 5 (AES-128-CBC-ESSIV)") == 0);
	CHECK_EQ_INT(unit_unhex("02010a0200000000" KID NON, buf, sizeof(buf)), 40);
	CHECK_EQ_INT(fscrypt_context_parse(buf, 40, &ctx, NULL, 0), 0);
	CHECK_EQ_INT(fscrypt_policy_supported(&ctx, reason, sizeof(reason)), -EOPNOTSUPP);
	CHECK(strcmp(reason, "unsupported policy: filenames mode 10 (AES-256-HCTR2)") == 0);
	CHECK_EQ_INT(unit_unhex("0201040200000000" KID NON, buf, sizeof(buf)), 40);
	CHECK_EQ_INT(fscrypt_context_parse(buf, 40, &ctx, NULL, 0), 0);
	CHECK_EQ_INT(fscrypt_policy_supported(&ctx, NULL, 0), 0);
	CHECK_EQ_INT(ctx.flags, 2);
	CHECK_EQ_INT(fscrypt_policy_padding(ctx.flags), 16);
}

UNIT_TEST(master_key_strength_and_nonces)
{
	struct fscrypt_master_key mk;
	struct fscrypt_context_v2 ctx;
	char reason[FSCRYPT_REASON_SIZE] = "";
	uint8_t raw[64], a[16], b[16];

	seq_bytes(raw, sizeof(raw), 0);
	fscrypt_context_init(&ctx, 1, 4, 2, raw, raw);
	CHECK_EQ_INT(fscrypt_master_key_init(&mk, raw, 31), 0);
	CHECK_EQ_INT(fscrypt_master_key_fits_policy(&mk, &ctx, reason, sizeof(reason)), -EINVAL);
	CHECK(strstr(reason, "31 bytes") != NULL);
	CHECK_EQ_INT(fscrypt_master_key_init(&mk, raw, 32), 0);
	CHECK_EQ_INT(fscrypt_master_key_fits_policy(&mk, &ctx, NULL, 0), 0);
	CHECK_EQ_INT(fscrypt_master_key_init(&mk, raw, 16), 0);
	fscrypt_context_init(&ctx, 5, 6, 2, raw, raw);
	CHECK_EQ_INT(fscrypt_master_key_fits_policy(&mk, &ctx, NULL, 0), 0);
	fscrypt_master_key_wipe(&mk);
	CHECK_EQ_INT(fscrypt_mode_security_strength(1), 32);
	CHECK_EQ_INT(fscrypt_mode_security_strength(4), 32);
	CHECK_EQ_INT(fscrypt_new_nonce(a), 0);
	CHECK_EQ_INT(fscrypt_new_nonce(b), 0);
	CHECK(memcmp(a, b, 16) != 0);
}

UNIT_TEST(context_init_roundtrip)
{
	struct fscrypt_context_v2 ctx, back;
	uint8_t id[16], nonce[16];

	seq_bytes(id, 16, 0x40);
	seq_bytes(nonce, 16, 0x50);
	fscrypt_context_init(&ctx, 1, 4, 3, id, nonce);
	CHECK_EQ_INT(fscrypt_context_parse(&ctx, sizeof(ctx), &back, NULL, 0), 0);
	CHECK(memcmp(&ctx, &back, sizeof(ctx)) == 0);
	CHECK_HEX(&ctx, 8, "0201040300000000");
}

UNIT_TEST(extent_context_validation)
{
	struct fscrypt_context_v2 inode;
	struct fscrypt_extent_context ectx;
	char reason[FSCRYPT_REASON_SIZE] = "";
	uint8_t buf[48], ibuf[40];
	int len;

	CHECK_EQ_INT(unit_unhex("0201040200000000" KID NON, ibuf, sizeof(ibuf)), 40);
	CHECK_EQ_INT(fscrypt_context_parse(ibuf, 40, &inode, NULL, 0), 0);
	/* The real v6 item of Documentation/format.rst 5.2. */
	len = unit_unhex("0101" KID "d0dd42ea7ba43ee8c55a2f79cbc890bd", buf, sizeof(buf));
	CHECK_EQ_INT(len, 34);
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 34, &inode, FSCRYPT_PROFILE_V7, &ectx,
						  reason, sizeof(reason)), 0);
	CHECK_HEX(ectx.nonce, 16, "d0dd42ea7ba43ee8c55a2f79cbc890bd");
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 40, &inode, FSCRYPT_PROFILE_V7, NULL,
						  NULL, 0), 0);
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 33, &inode, FSCRYPT_PROFILE_V7, NULL,
						  reason, sizeof(reason)), -EINVAL);
	CHECK(strstr(reason, "size 33") != NULL);
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 41, &inode, FSCRYPT_PROFILE_V7, NULL,
						  NULL, 0), -EINVAL);
	buf[0] = 2;
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 34, &inode, FSCRYPT_PROFILE_V7, NULL,
						  reason, sizeof(reason)), -EINVAL);
	CHECK(strstr(reason, "version 2") != NULL);
	buf[0] = 1;
	buf[1] = 5;
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 34, &inode, FSCRYPT_PROFILE_V7, NULL,
						  reason, sizeof(reason)), -EINVAL);
	CHECK(strstr(reason, "mode 5") != NULL);
	/* v2-v4 left the mode byte uninitialised. */
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 34, &inode, FSCRYPT_PROFILE_V2, NULL,
						  NULL, 0), 0);
	buf[1] = 1;
	buf[5] ^= 1;
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 34, &inode, FSCRYPT_PROFILE_V7, NULL,
						  reason, sizeof(reason)), -EINVAL);
	CHECK(strstr(reason, "key identifier") != NULL);
	CHECK_EQ_INT(fscrypt_extent_context_parse(buf, 34, NULL, FSCRYPT_PROFILE_V7, NULL,
						  NULL, 0), 0);

	fscrypt_extent_context_init(&ectx, 1, inode.master_key_identifier, inode.nonce);
	CHECK_HEX(&ectx, 34, "0101" KID NON);
}

UNIT_TEST(hkdf_limits)
{
	uint8_t prk[64] = { 0 }, out[64];

	CHECK_EQ_INT(hkdf_sha512_extract(prk, 0, prk), -EINVAL);
	CHECK_EQ_INT(hkdf_sha512_expand_fscrypt(prk, 1, NULL, 0, out, 0), -EINVAL);
	CHECK_EQ_INT(hkdf_sha512_expand_fscrypt(prk, 1, NULL, 0, out, HKDF_SHA512_MAX_OUTPUT + 1),
		     -EINVAL);
	CHECK_EQ_INT(hkdf_sha512_expand_fscrypt(prk, 1, out, HKDF_FSCRYPT_MAX_DATA + 1, out, 16),
		     -EINVAL);
	CHECK_EQ_INT(hkdf_sha512_expand_fscrypt(prk, 1, NULL, 0, out, 16), 0);
}

/*
 * Expands reuse one library context per PRK and thread (crypto/hkdf.c):
 * results must not depend on what the context did before.  A derivation
 * after hkdf_forget() makes a fresh context, the path the spec's vectors
 * pin down (test-vectors.c).
 */
UNIT_TEST(hkdf_context_reuse)
{
	uint8_t prk[6][64], fresh[6][3][64], out[64];
	static const uint8_t data[3][16] = { { 1 }, { 2, 3 }, { 0xff } };

	for (int k = 0; k < 6; k++)
		memset(prk[k], 0x11 * (k + 1), sizeof(prk[k]));
	for (int k = 0; k < 6; k++)
		for (int d = 0; d < 3; d++) {
			hkdf_forget();
			CHECK_EQ_INT(hkdf_sha512_expand_fscrypt(prk[k], 2, data[d], 16, fresh[k][d], 64),
				     0);
		}
	hkdf_forget();
	/* Interleaved keys (more than the cache's slots) and contexts. */
	for (int round = 0; round < 3; round++)
		for (int d = 0; d < 3; d++)
			for (int k = 0; k < 6; k += 1 + (round == 1)) {
				CHECK_EQ_INT(hkdf_sha512_expand_fscrypt(prk[k], 2, data[d], 16, out, 64),
					     0);
				CHECK(!memcmp(out, fresh[k][d], 64));
				CHECK_EQ_INT(hkdf_sha512_expand_fscrypt(prk[k], 2, data[d], 16, out, 32),
					     0);
				CHECK(!memcmp(out, fresh[k][d], 32));
			}
	hkdf_forget();
	hkdf_forget();
}

/* ---------------------------------------------------------------------- */
/* XTS */

UNIT_TEST(xts_run_equals_single_units)
{
	uint8_t key[64], pt[8 * 512], run[sizeof(pt)], one[512], back[sizeof(pt)];
	struct xts_ctx *x;

	seq_bytes(key, 64, 3);
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i ^ (i >> 8));
	CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
	if (!x)
		return;
	CHECK_EQ_INT(xts_encrypt(x, 1000, pt, run, 512, 8), 0);
	for (int u = 0; u < 8; u++) {
		CHECK_EQ_INT(xts_encrypt(x, 1000 + u, pt + u * 512, one, 512, 1), 0);
		CHECK(memcmp(one, run + u * 512, 512) == 0);
	}
	CHECK_EQ_INT(xts_decrypt(x, 1000, run, back, 512, 8), 0);
	CHECK(memcmp(back, pt, sizeof(pt)) == 0);
	/* In place. */
	memcpy(back, pt, sizeof(pt));
	CHECK_EQ_INT(xts_encrypt(x, 1000, back, back, 512, 8), 0);
	CHECK(memcmp(back, run, sizeof(pt)) == 0);
	CHECK_EQ_INT(xts_encrypt(x, 0, pt, run, 24, 1), -EINVAL);
	CHECK_EQ_INT(xts_encrypt(x, 0, pt, run, 0, 1), -EINVAL);
	xts_ctx_free(x);
}

UNIT_TEST(xts_fast_and_slow_iv_agree)
{
	uint8_t key[64], pt[4 * 4096], a[sizeof(pt)], b[sizeof(pt)];
	struct xts_ctx *fast, *slow;
	uint64_t duns[] = { 0, 1, 0xffffffffULL, 0x0123456789abcdefULL };

	seq_bytes(key, 64, 9);
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 13);
	CHECK_EQ_INT(xts_ctx_new(&fast, key, 64), 0);
	xts_force_slow_iv(true);
	CHECK_EQ_INT(xts_ctx_new(&slow, key, 64), 0);
	xts_force_slow_iv(false);
	if (!fast || !slow)
		return;
	CHECK(!xts_uses_fast_iv(slow));
	if (!xts_uses_fast_iv(fast))
		printf("    note: the fast IV path is off (self-test failed)\n");
	for (size_t i = 0; i < sizeof(duns) / sizeof(duns[0]); i++) {
		CHECK_EQ_INT(xts_encrypt(fast, duns[i], pt, a, 4096, 4), 0);
		CHECK_EQ_INT(xts_encrypt(slow, duns[i], pt, b, 4096, 4), 0);
		CHECK(memcmp(a, b, sizeof(a)) == 0);
		CHECK_EQ_INT(xts_decrypt(fast, duns[i], a, b, 4096, 4), 0);
		CHECK(memcmp(b, pt, sizeof(pt)) == 0);
	}
	xts_ctx_free(fast);
	xts_ctx_free(slow);
}

UNIT_TEST(xts_bad_keys)
{
	uint8_t key[64];
	struct xts_ctx *x;

	memset(key, 0x5a, sizeof(key));
	CHECK_EQ_INT(xts_ctx_new(&x, key, 64), -EINVAL);	/* equal halves */
	CHECK(x == NULL);
	seq_bytes(key, 64, 0);
	CHECK_EQ_INT(xts_ctx_new(&x, key, 32), -EINVAL);
	CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
	xts_ctx_free(x);
	xts_ctx_free(NULL);
}

/* ---------------------------------------------------------------------- */
/* Filenames and symlinks */

UNIT_TEST(fname_lengths)
{
	static const struct {
		size_t len;
		uint8_t flags;
		size_t want;
	} v[] = {
		{ 1, 0, 16 }, { 15, 0, 16 }, { 16, 0, 16 }, { 17, 0, 20 }, { 17, 1, 24 },
		{ 17, 2, 32 }, { 17, 3, 32 }, { 33, 3, 64 }, { 100, 2, 112 }, { 250, 3, 255 },
		{ 255, 0, 255 }, { 253, 0, 255 }, { 252, 0, 252 }, { 0, 0, 0 }, { 256, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (fname_encrypted_len(v[i].len, v[i].flags, FNAME_MAX_LEN) != v[i].want)
			unit_fail(__FILE__, __LINE__, "len %zu flags %u: %zu, expected %zu",
				  v[i].len, v[i].flags,
				  fname_encrypted_len(v[i].len, v[i].flags, FNAME_MAX_LEN),
				  v[i].want);
}

UNIT_TEST(fname_roundtrip_and_validation)
{
	uint8_t key[32], ct[FNAME_MAX_LEN], pt[FNAME_MAX_LEN], bad[FNAME_MAX_LEN];
	char name[256];
	int len;

	seq_bytes(key, 32, 0x77);
	for (size_t n = 1; n <= 255; n++) {
		for (uint8_t flags = 0; flags < 4; flags++) {
			for (size_t i = 0; i < n; i++)
				name[i] = (char)('a' + (i * 7 + n) % 26);
			len = fname_encrypt(FSCRYPT_MODE_AES_256_CTS, key, flags, name, n, ct);
			if (len != (int)fname_encrypted_len(n, flags, 255)) {
				unit_fail(__FILE__, __LINE__, "encrypt len %zu flags %u: %d", n,
					  flags, len);
				continue;
			}
			if (fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, (size_t)len, pt) != (int)n ||
			    memcmp(pt, name, n))
				unit_fail(__FILE__, __LINE__, "roundtrip len %zu flags %u", n, flags);
		}
	}
	CHECK_EQ_INT(fname_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 0, name, 0, ct), -EINVAL);
	CHECK_EQ_INT(fname_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 0, name, 256, ct), -EINVAL);
	CHECK_EQ_INT(fname_encrypt(FSCRYPT_MODE_AES_256_XTS, key, 0, name, 5, ct), -EINVAL);
	CHECK_EQ_INT(fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, 15, pt), -EINVAL);

	/* Invalid plaintexts: '/', NUL inside, junk after the NUL, all zero. */
	memset(bad, 0, sizeof(bad));
	memcpy(bad, "a/b", 3);
	CHECK_EQ_INT(fname_cts_crypt(FSCRYPT_MODE_AES_256_CTS, key, 1, bad, ct, 16), 0);
	CHECK_EQ_INT(fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, 16, pt), -EBADMSG);
	memcpy(bad, "ab\0cd", 5);
	CHECK_EQ_INT(fname_cts_crypt(FSCRYPT_MODE_AES_256_CTS, key, 1, bad, ct, 16), 0);
	CHECK_EQ_INT(fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, 16, pt), -EBADMSG);
	memset(bad, 0, sizeof(bad));
	CHECK_EQ_INT(fname_cts_crypt(FSCRYPT_MODE_AES_256_CTS, key, 1, bad, ct, 32), 0);
	CHECK_EQ_INT(fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, 32, pt), -EBADMSG);
	/*
	 * The wrong key yields junk: usually caught by the padding check, but a
	 * 16-byte junk name without NUL or '/' is a valid name, so only
	 * "not hello" is certain.
	 */
	len = fname_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 2, "hello", 5, ct);
	CHECK_EQ_INT(len, 16);
	key[0] ^= 1;
	len = fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, 16, pt);
	CHECK(len != 5 || memcmp(pt, "hello", 5) != 0);
	CHECK(len == -EBADMSG || len == 16);
}

/* One keyed cipher for many names gives what fname_decrypt() gives for each. */
UNIT_TEST(fname_cipher_reuse)
{
	static const char *names[] = { "a", "exactly-sixteen!", "seventeen bytes..", "x/y" };
	uint8_t key[64], ct[FNAME_MAX_LEN], p1[FNAME_MAX_LEN], p2[FNAME_MAX_LEN];
	uint8_t ct2[FNAME_MAX_LEN];
	struct fname_cipher *fc, *efc;
	int err, n;

	memset(key, 0x5a, sizeof(key));
	CHECK(fname_cipher_new(99, key, 0, &err) == NULL);
	CHECK_EQ_INT(err, -EINVAL);
	fc = fname_cipher_new(FSCRYPT_MODE_AES_256_CTS, key, 0, &err);
	CHECK(fc != NULL);
	CHECK_EQ_INT(err, 0);
	efc = fname_cipher_new(FSCRYPT_MODE_AES_256_CTS, key, 1, &err);
	CHECK(efc != NULL);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			n = fname_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 0x2, names[i],
					  strlen(names[i]), ct);
			CHECK(n >= 16);
			CHECK_EQ_INT(fname_encrypt_with(efc, 0x2, names[i], strlen(names[i]), ct2), n);
			CHECK(!memcmp(ct, ct2, (size_t)n));
			CHECK_EQ_INT(fname_decrypt_with(fc, ct, (size_t)n, p2),
				     fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, (size_t)n, p1));
			if (!strchr(names[i], '/'))
				CHECK(!memcmp(p1, p2, strlen(names[i])) &&
				      !memcmp(p2, names[i], strlen(names[i])));
			else
				CHECK_EQ_INT(fname_decrypt_with(fc, ct, (size_t)n, p2), -EBADMSG);
		}
	CHECK_EQ_INT(fname_decrypt_with(fc, ct, 15, p2), -EINVAL);
	CHECK_EQ_INT(fname_decrypt_with(efc, ct, 16, p2), -EINVAL);
	CHECK_EQ_INT(fname_encrypt_with(fc, 0x2, "a", 1, ct2), -EINVAL);
	fname_cipher_free(efc);
	fname_cipher_free(fc);
	fname_cipher_free(NULL);
}

UNIT_TEST(fname_aes128_mode6)
{
	uint8_t key[16], ct[FNAME_MAX_LEN], pt[FNAME_MAX_LEN];
	int len;

	seq_bytes(key, 16, 1);
	len = fname_encrypt(FSCRYPT_MODE_AES_128_CTS, key, 0, "some-name.txt-x", 15, ct);
	CHECK_EQ_INT(len, 16);
	CHECK_EQ_INT(fname_decrypt(FSCRYPT_MODE_AES_128_CTS, key, ct, 16, pt), 15);
}

UNIT_TEST(symlink_roundtrip)
{
	uint8_t key[32], data[4096], out[4096];
	const char *target = "../some/dir/target-file";
	int n;

	seq_bytes(key, 32, 0x31);
	n = fscrypt_symlink_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 0, target, strlen(target),
				    4095, data, sizeof(data));
	CHECK_EQ_INT(n, 2 + 24);
	CHECK_EQ_INT(data[0] | data[1] << 8, 24);
	CHECK_EQ_INT(fscrypt_symlink_decrypt(FSCRYPT_MODE_AES_256_CTS, key, data, (size_t)n,
					     out, sizeof(out)), (int)strlen(target));
	CHECK(strcmp((char *)out, target) == 0);
	/* The same bytes as a name of that length (both are fname encryption). */
	{
		uint8_t ct[FNAME_MAX_LEN];

		CHECK_EQ_INT(fname_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 0, target,
					   strlen(target), ct), 24);
		CHECK(memcmp(ct, data + 2, 24) == 0);
	}
	CHECK_EQ_INT(fscrypt_symlink_decrypt(FSCRYPT_MODE_AES_256_CTS, key, data,
					     (size_t)n - 1, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(fscrypt_symlink_decrypt(FSCRYPT_MODE_AES_256_CTS, key, data,
					     (size_t)n, out, 10), -ENOSPC);
	/* Long targets beyond 255 bytes are capped by the inline limit instead. */
	memset(out, 'x', 3000);
	n = fscrypt_symlink_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 3, out, 3000, 3000,
				    data, sizeof(data));
	CHECK_EQ_INT(n, -EINVAL);	/* 3000 + 2 > 3000 */
	n = fscrypt_symlink_encrypt(FSCRYPT_MODE_AES_256_CTS, key, 3, out, 2990, 3000,
				    data, sizeof(data));
	CHECK_EQ_INT(n, 3000);	/* round_up(2990, 32) = 3008, capped to 2998 */
	{
		uint8_t big[3000];

		CHECK_EQ_INT(fscrypt_symlink_decrypt(FSCRYPT_MODE_AES_256_CTS, key, data,
						     (size_t)n, big, sizeof(big)), 2990);
		CHECK(memcmp(big, out, 2990) == 0);
	}
}
