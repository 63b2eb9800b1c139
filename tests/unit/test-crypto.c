// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of crypto/ and common/key-input against format.md section 13,
 * plus the extra modes of the unit binary:
 *   --oracle hkdf|xts|fname|csum   batch answers for the pytest comparisons
 *   --pipeline-selftest            1 GiB round trip through extent-io
 *   --bench                        crypto and checksum throughput
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <endian.h>
#include <isa-l/crc.h>
#include <xxhash.h>
#include <blake2.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include "common/key-input.h"
#include "crypto/csum.h"
#include "kernel-shared/hash.h"
#include "crypto/extent-io.h"
#include "crypto/fname.h"
#include "crypto/fscrypt-keys.h"
#include "crypto/hkdf.h"
#include "crypto/xts.h"
#include "tests/unit/unit.h"

/* ---------------------------------------------------------------------- */
/* format.md section 13 inputs */

/* An unlinked temporary file in $TMPDIR (or /tmp); -1 on failure. */
static int temp_fd(void);

static void seq_bytes(uint8_t *p, size_t n, uint8_t first)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(first + i);
}

static void test_master(struct fscrypt_master_key *mk)
{
	uint8_t raw[64];

	seq_bytes(raw, sizeof(raw), 0);
	CHECK_EQ_INT(fscrypt_master_key_init(mk, raw, sizeof(raw)), 0);
}

static void hex_to(const char *hex, uint8_t *out, size_t size)
{
	CHECK_EQ_INT(unit_unhex(hex, out, size), (int)(strlen(hex) / 2));
}

/* First 32 bytes of the XTS ciphertext of one zero sector at dun. */
static void xts_first32(const uint8_t *key, uint64_t dun, uint8_t out[32])
{
	static uint8_t zero[4096];
	uint8_t ct[4096];
	struct xts_ctx *x;

	memset(out, 0, 32);
	CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
	if (!x)
		return;
	CHECK_EQ_INT(xts_encrypt(x, dun, zero, ct, sizeof(ct), 1), 0);
	memcpy(out, ct, 32);
	xts_ctx_free(x);
}

UNIT_TEST(vector_13_1_key_identifier)
{
	struct fscrypt_master_key mk;

	test_master(&mk);
	CHECK_HEX(mk.identifier, 16, "8699c2c53707405da5aba5ae4d8583c0");
	CHECK_EQ_INT(mk.raw_size, 64);
	fscrypt_master_key_wipe(&mk);
}

static void check_extent_profile(enum fscrypt_profile profile, const char *key_hex,
				 const char *xts0, const char *xts1)
{
	struct fscrypt_master_key mk;
	uint8_t nonce[16], key[64], ct[32];
	unsigned int size = 0;

	test_master(&mk);
	seq_bytes(nonce, 16, 0x10);
	CHECK_EQ_INT(fscrypt_derive_extent_key(&mk, profile, FSCRYPT_MODE_AES_256_XTS,
					       nonce, key, &size), 0);
	CHECK_EQ_INT(size, 64);
	CHECK_HEX(key, 64, key_hex);
	xts_first32(key, 0, ct);
	CHECK_HEX(ct, 32, xts0);
	xts_first32(key, 1, ct);
	CHECK_HEX(ct, 32, xts1);
	fscrypt_master_key_wipe(&mk);
}

UNIT_TEST(vector_13_2_extent_key_v7_context9)
{
	check_extent_profile(FSCRYPT_PROFILE_V7,
		"fc3b851ea05ba37c40077f7f15ef91d0d7452a0a989b670afb668bbac30ced69"
		"0cf8402a58e7dd008811c06494f94846ec163c6e0b7e61a2c6ed2991acc87468",
		"e2854601e641cf59697e9b98f4f3243126f5abe1537ccffdd436f198410d3552",
		"ee71073340c8bd04701063e7ab292f9e22f8fc45bcf4c71ca6993c5084ebd887");
}

UNIT_TEST(vector_13_2_extent_key_v5_context8)
{
	check_extent_profile(FSCRYPT_PROFILE_V5,
		"caf2b39e599bbc9bc91b7e01d7badf8dd6208032d757db99b014cb08006be995"
		"4fddea4ef2f75def32776f58dcfd392731738aaeeb5e145d2d8816c76b54e78e",
		"f544812622dc16140a3495151476d39589e44665d4cdbd4a6cfb2d2dc0be92da",
		"df238c159fda481d9f2c841417126a6ae0ac2708bddb0c5f297374a5c3d83afa");
}

UNIT_TEST(vector_13_2_extent_key_v2_context2)
{
	check_extent_profile(FSCRYPT_PROFILE_V2,
		"661abec4a365fe5730e9781264d00a9816f0b5f50e41e49f3200b78ed390ed41"
		"0be87de1011e6342781b08ab011f12107a4c08eb07a5d9e0b6cce65d31463010",
		"3908c2e68ea54ae5eff9ece6c4534ea0ff39b7f864ca0b508bb66752adeab431",
		"ad5e9e34e7740c3a151a88c9fb176c2fa0bbe5ab06b10cf226b082646ae8fa86");
}

UNIT_TEST(vector_13_2_context2_equals_per_file_key)
{
	struct fscrypt_master_key mk;
	uint8_t nonce[16], a[64], b[64];

	test_master(&mk);
	seq_bytes(nonce, 16, 0x10);
	CHECK_EQ_INT(fscrypt_derive_file_key(&mk, nonce, FSCRYPT_MODE_AES_256_XTS, a, NULL), 0);
	CHECK_EQ_INT(fscrypt_derive_extent_key(&mk, FSCRYPT_PROFILE_V2,
					       FSCRYPT_MODE_AES_256_XTS, nonce, b, NULL), 0);
	CHECK(memcmp(a, b, 64) == 0);
	fscrypt_master_key_wipe(&mk);
}

/* Encrypt name under key, compare ciphertext and hash, and decrypt back. */
static void check_name(const uint8_t *key, uint8_t flags, const char *name,
		       const char *ct_hex, uint32_t hash)
{
	uint8_t ct[FNAME_MAX_LEN], pt[FNAME_MAX_LEN];
	int len = fname_encrypt(FSCRYPT_MODE_AES_256_CTS, key, flags, name, strlen(name), ct);

	CHECK_EQ_INT(len, (int)strlen(ct_hex) / 2);
	if (len <= 0)
		return;
	CHECK_HEX(ct, (size_t)len, ct_hex);
	if (hash)
		CHECK_EQ_INT(btrfs_name_hash(ct, (size_t)len), hash);
	CHECK_EQ_INT(fname_decrypt(FSCRYPT_MODE_AES_256_CTS, key, ct, (size_t)len, pt),
		     (int)strlen(name));
	CHECK(memcmp(pt, name, strlen(name)) == 0);
}

UNIT_TEST(vector_13_3_filenames)
{
	struct fscrypt_master_key mk;
	uint8_t nonce[16], key[64];
	unsigned int size = 0;

	test_master(&mk);
	seq_bytes(nonce, 16, 0x20);
	CHECK_EQ_INT(fscrypt_derive_file_key(&mk, nonce, FSCRYPT_MODE_AES_256_CTS, key, &size), 0);
	CHECK_EQ_INT(size, 32);
	CHECK_HEX(key, 32, "d398ccce6ae321a5bec42c33e515e50fd8c627139a780defb57f044bbaa60746");
	check_name(key, FSCRYPT_POLICY_FLAGS_PAD_16, "hello",
		   "07aded59318f6629c6fbde1c654cc8cb", 0x10cca503);
	check_name(key, FSCRYPT_POLICY_FLAGS_PAD_16, "a_longer_filename_123",
		   "928b4ca7483c2d697c197ef80ccd39ae285773690501479c018b3c559613c416",
		   0x6e48651f);
	fscrypt_master_key_wipe(&mk);
}

UNIT_TEST(vector_13_4_kernel_filenames)
{
	struct fscrypt_master_key mk;
	uint8_t nonce[16], key[64];

	test_master(&mk);
	hex_to("4c9d8e5fdbf0cceffaa2149fb55fdb80", nonce, 16);
	CHECK_EQ_INT(fscrypt_derive_file_key(&mk, nonce, FSCRYPT_MODE_AES_256_CTS, key, NULL), 0);
	check_name(key, FSCRYPT_POLICY_FLAGS_PAD_16, "hello",
		   "dc6929b9b1224463b85d4a73cabc9b1a", 0);
	check_name(key, FSCRYPT_POLICY_FLAGS_PAD_16, "a_longer_filename_123",
		   "a7bb9a93c8f0f69fd82808314d1547a0427b6834517a70a154a7fc6c1a744305", 0);
	fscrypt_master_key_wipe(&mk);
}

UNIT_TEST(vector_13_4_kernel_data)
{
	struct fscrypt_master_key mk;
	uint8_t nonce[16], key[64], ct[32];

	test_master(&mk);
	hex_to("7ac0cd4afd69d50ee322783ed75f1060", nonce, 16);
	CHECK_EQ_INT(fscrypt_derive_file_key(&mk, nonce, FSCRYPT_MODE_AES_256_XTS, key, NULL), 0);
	xts_first32(key, 0, ct);
	CHECK_HEX(ct, 32, "2b037bb1169a50831211451686dd21d5d60d1da154176c8b663073d027f0c9cd");
	xts_first32(key, 1, ct);
	CHECK_HEX(ct, 32, "d500c75e91908ebf785e755ef9a3bc62e2b2b2ef3f43ae5783f5fb9a011df2cc");
	fscrypt_master_key_wipe(&mk);
}

UNIT_TEST(vector_13_5_fscryptctl_identifiers)
{
	static const struct {
		const char *raw, *id;
	} v[] = {
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa11111111111111111111111111111111",
		  "912ae510a458723a839a9fad701538ac" },
		{ "abcdefghijklmnopqrstuvwxyz0123456", "1c2d6754b6cc7daacb599875d7faf9bb" },
		{ "abcdefghijklmnop", "7eb80af3f24ef086726a4cea3a154ce0" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct fscrypt_master_key mk;

		CHECK_EQ_INT(fscrypt_master_key_init(&mk, (const uint8_t *)v[i].raw,
						     strlen(v[i].raw)), 0);
		CHECK_HEX(mk.identifier, 16, v[i].id);
		fscrypt_master_key_wipe(&mk);
	}
}

UNIT_TEST(vector_13_6_backref_hashes)
{
	static const struct {
		uint64_t objectid, offset, hash;
	} v[] = {
		{ 257, 0, 0x0dfb591fa80d95eaULL },
		{ 10955414, 1048576, 0x0dfb591fde01b53cULL },
		{ 10955453, 1048576, 0x0dfb591f6850ab96ULL },
		{ 10955454, 18446744073709486080ULL, 0x0dfb591f1def0ffcULL },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint64_t h = btrfs_extent_data_ref_hash(5, v[i].objectid, v[i].offset);

		if (h != v[i].hash)
			unit_fail(__FILE__, __LINE__, "hash(5, %llu, %llu) = 0x%016llx, expected 0x%016llx",
				  (unsigned long long)v[i].objectid,
				  (unsigned long long)v[i].offset, (unsigned long long)h,
				  (unsigned long long)v[i].hash);
	}
}

UNIT_TEST(csum_known_values)
{
	uint8_t out[CSUM_MAX_SIZE], zero[CSUM_MAX_SIZE] = { 0 };
	uint32_t crc;

	csum_compute(CSUM_CRC32C, "123456789", 9, out);
	memcpy(&crc, out, 4);
	CHECK_EQ_INT(le32toh(crc), 0xe3069283U);
	CHECK(memcmp(out + 4, zero, CSUM_MAX_SIZE - 4) == 0);
	/* format.md 2.2: crc32c value 0xb0038ce3 is stored e3 8c 03 b0. */
	CHECK_EQ_INT(~crc32c_raw(~0U, "123456789", 9), 0xe3069283U);
	csum_compute(CSUM_XXHASH64, "", 0, out);
	CHECK_HEX(out, 8, "99e9d85137db46ef");	/* XXH64("") = 0xef46db3751d8e999, LE */
	csum_compute(CSUM_SHA256, "abc", 3, out);
	CHECK_HEX(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	csum_compute(CSUM_BLAKE2B, "abc", 3, out);
	CHECK_HEX(out, 32, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
	CHECK_EQ_INT(csum_type_size(CSUM_CRC32C), 4);
	CHECK_EQ_INT(csum_type_size(CSUM_BLAKE2B), 32);
	CHECK_EQ_INT(csum_type_size(7), 0);
	CHECK(strcmp(csum_type_name(CSUM_XXHASH64), "xxhash64") == 0);
	CHECK(csum_type_name(-1) == NULL);
	CHECK_EQ_INT(btrfs_name_hash("hello", 5), crc32c_raw(0xfffffffeU, "hello", 5));
}

UNIT_TEST(csum_batch_matches_single)
{
	uint8_t data[4 * 512], batch[4 * 32], one[CSUM_MAX_SIZE];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	for (int type = 0; type <= CSUM_BLAKE2B; type++) {
		unsigned int size = csum_type_size(type);

		csum_batch(type, data, 512, 4, batch);
		for (int u = 0; u < 4; u++) {
			csum_compute(type, data + u * 512, 512, one);
			CHECK(memcmp(batch + u * size, one, size) == 0);
		}
	}
}

/* ---------------------------------------------------------------------- */
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

	/* The real v6 example of format.md 3.1. */
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
	/* The real v6 item of format.md 5.2. */
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

/* ---------------------------------------------------------------------- */
/* Key input */

UNIT_TEST(key_hex_parsing)
{
	uint8_t out[64];

	CHECK_EQ_INT(key_parse_hex("00ff10AB", 8, out, sizeof(out)), 4);
	CHECK_HEX(out, 4, "00ff10ab");
	CHECK_EQ_INT(key_parse_hex("00ff\n", 5, out, sizeof(out)), 2);
	CHECK_EQ_INT(key_parse_hex("00ff\r\n", 6, out, sizeof(out)), 2);
	CHECK_EQ_INT(key_parse_hex("00ff\n\n", 6, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("0ff", 3, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("0g", 2, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex(" 00f", 4, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("", 0, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("000000", 6, out, 2), -EINVAL);
}

/* Write data to a pipe and read it as a key with the given format. */
static int key_from_pipe(const void *data, size_t len, enum key_format fmt,
			 struct key_buf **kb)
{
	struct key_input ki;
	char fdarg[16];
	int fds[2], ret;

	if (pipe(fds))
		return -errno;
	if (write(fds[1], data, len) != (ssize_t)len) {
		close(fds[0]);
		close(fds[1]);
		return -EIO;
	}
	close(fds[1]);
	key_input_init(&ki);
	snprintf(fdarg, sizeof(fdarg), "%d", fds[0]);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, fdarg), 1);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FORMAT,
					 fmt == KEY_FORMAT_HEX ? "hex" : "raw"), 1);
	ret = key_input_read(&ki, kb);
	close(fds[0]);
	return ret;
}

UNIT_TEST(key_input_sources)
{
	struct key_input ki;
	struct key_buf *kb = NULL;
	uint8_t raw[70];
	char hex[200];

	int saved = dup(STDERR_FILENO), cap = temp_fd();
	char msgs[4096] = "";
	ssize_t got;

	/* The ERROR lines go to a file, to be checked instead of shown. */
	fflush(stderr);
	if (saved >= 0 && cap >= 0)
		dup2(cap, STDERR_FILENO);
	seq_bytes(raw, sizeof(raw), 0xa0);
	CHECK_EQ_INT(key_from_pipe(raw, 64, KEY_FORMAT_RAW, &kb), 0);
	if (kb) {
		CHECK_EQ_INT(kb->len, 64);
		CHECK(memcmp(kb->data, raw, 64) == 0);
	}
	key_buf_free(kb);
	CHECK_EQ_INT(key_from_pipe(raw, 16, KEY_FORMAT_RAW, &kb), 0);
	key_buf_free(kb);
	CHECK_EQ_INT(key_from_pipe(raw, 15, KEY_FORMAT_RAW, &kb), -EINVAL);
	CHECK_EQ_INT(key_from_pipe(raw, 65, KEY_FORMAT_RAW, &kb), -EINVAL);
	CHECK_EQ_INT(key_from_pipe(raw, 0, KEY_FORMAT_RAW, &kb), -EINVAL);
	unit_hex(raw, 32, hex);
	strcat(hex, "\n");
	CHECK_EQ_INT(key_from_pipe(hex, strlen(hex), KEY_FORMAT_HEX, &kb), 0);
	if (kb) {
		CHECK_EQ_INT(kb->len, 32);
		CHECK(memcmp(kb->data, raw, 32) == 0);
	}
	key_buf_free(kb);
	CHECK_EQ_INT(key_from_pipe(hex, 30, KEY_FORMAT_HEX, &kb), -EINVAL);	/* 15 bytes */
	unit_hex(raw, 65, hex);
	CHECK_EQ_INT(key_from_pipe(hex, strlen(hex), KEY_FORMAT_HEX, &kb), -EINVAL);
	CHECK_EQ_INT(key_from_pipe("zz", 2, KEY_FORMAT_HEX, &kb), -EINVAL);
	CHECK(kb == NULL);

	key_input_init(&ki);
	CHECK_EQ_INT(key_input_read(&ki, &kb), -ENOKEY);
	CHECK_EQ_INT(key_input_parse_opt(&ki, 'x', NULL), 0);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, "-1"), -EINVAL);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, "3x"), -EINVAL);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FORMAT, "base64"), -EINVAL);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FILE, "/nonexistent/key"), 1);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, "3"), -EINVAL);
	CHECK_EQ_INT(key_input_read(&ki, &kb), -ENOENT);

	fflush(stderr);
	if (saved >= 0 && cap >= 0) {
		dup2(saved, STDERR_FILENO);
		got = pread(cap, msgs, sizeof(msgs) - 1, 0);
		msgs[got > 0 ? got : 0] = 0;
		CHECK(strstr(msgs, "ERROR: key from file descriptor") != NULL);
		CHECK(strstr(msgs, "is 15 bytes: a key is 16 to 64 bytes") != NULL);
		CHECK(strstr(msgs, "is not valid hex") != NULL);
		CHECK(strstr(msgs, "cannot open key file /nonexistent/key") != NULL);
		/* No key material in the messages, raw or hex. */
		unit_hex(raw, 4, hex);
		CHECK(strstr(msgs, hex) == NULL);
		CHECK(memmem(msgs, strlen(msgs), raw, 4) == NULL);
	}
	if (saved >= 0)
		close(saved);
	if (cap >= 0)
		close(cap);
}

UNIT_TEST(secret_memory_disables_core_dumps)
{
	struct rlimit before, during;
	void *p, *q;

	getrlimit(RLIMIT_CORE, &before);
	p = secret_alloc(100);
	q = secret_alloc(5000);
	CHECK(p != NULL && q != NULL);
	getrlimit(RLIMIT_CORE, &during);
	CHECK_EQ_INT(during.rlim_cur, 0);
	CHECK_EQ_INT(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	if (p)
		memset(p, 0xaa, 100);
	secret_free(p, 100);
	getrlimit(RLIMIT_CORE, &during);
	CHECK_EQ_INT(during.rlim_cur, 0);	/* q still alive */
	secret_free(q, 5000);
	getrlimit(RLIMIT_CORE, &during);
	CHECK_EQ_INT(during.rlim_cur, before.rlim_cur);
}

/* ---------------------------------------------------------------------- */
/* extent-io, small and exact */

#define EIO_UNIT 4096
#define EIO_BASE_LOGICAL (1ULL << 34)	/* logical = physical + this */

struct eio_fixture {
	int fd;
	struct fscrypt_master_key mk;
	uint8_t nonce[3][16];
};

static int temp_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/extcrypt-unit-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

struct mismatch_log {
	uint64_t logical[16];
	unsigned int n;
};

static int log_mismatch(struct extent_io *io, uint64_t logical, const uint8_t *found,
			const uint8_t *expected, void *arg)
{
	struct mismatch_log *log = arg;

	if (log->n < 16)
		log->logical[log->n] = logical;
	log->n++;
	return 0;
}

static int fail_process(struct extent_io *io, const uint8_t *buf, uint64_t logical,
			uint32_t len, void *priv)
{
	return priv ? -EL2HLT : 0;
}

static void extent_io_small(unsigned int threads)
{
	enum { UNITS = 16, JOBS = 3 };
	const size_t len = UNITS * EIO_UNIT;
	struct fscrypt_master_key mk;
	uint8_t nonce[JOBS][16], *plain, *back, *raw, key[64];
	uint8_t csums[JOBS * UNITS * 4], want[UNITS * 4];
	struct extent_io_csums sink = { .type = CSUM_CRC32C, .logical = EIO_BASE_LOGICAL,
					.count = JOBS * UNITS, .out = csums };
	struct extent_io_params p = { .unit_size = EIO_UNIT, .threads = threads,
				      .chunk_size = 3 * EIO_UNIT, .key_cache = 2,
				      .key = &mk, .profile = FSCRYPT_PROFILE_V7,
				      .contents_mode = FSCRYPT_MODE_AES_256_XTS,
				      .process = extent_io_csum_process, .dst_fd = -1 };
	struct extent_io_job jobs[JOBS];
	struct mismatch_log log = { .n = 0 };
	struct extent_io_stats st;
	struct extent_io *io = NULL;
	struct xts_ctx *x;
	int fd = temp_fd();

	test_master(&mk);
	plain = malloc(JOBS * len);
	back = malloc(JOBS * len);
	raw = malloc(len);
	CHECK(fd >= 0 && plain && back && raw);
	if (fd < 0 || !plain || !back || !raw)
		goto out;
	for (size_t i = 0; i < JOBS * len; i++)
		plain[i] = (uint8_t)(i * 2654435761U >> 13);
	p.fd = fd;
	CHECK_EQ_INT(extent_io_new(&io, &p), 0);
	if (!io)
		goto out;
	CHECK_EQ_INT(extent_io_threads(io), threads);

	/* Write: job 1 is plain, jobs 0 and 2 encrypted, DUN starting at 0 and 5. */
	memset(jobs, 0, sizeof(jobs));
	for (int j = 0; j < JOBS; j++) {
		seq_bytes(nonce[j], 16, (uint8_t)(0x10 * j + 1));
		jobs[j].len = len;
		jobs[j].flags = EXTENT_IO_WRITE;
		jobs[j].dst.physical = j * len;
		jobs[j].dst.logical = EIO_BASE_LOGICAL + j * len;
		jobs[j].dst.dun = j == 2 ? 5 : 0;
		jobs[j].dst.nonce = j == 1 ? NULL : nonce[j];
		jobs[j].dst.priv = &sink;
		jobs[j].mem = plain + j * len;
	}
	CHECK_EQ_INT(extent_io_run(io, jobs, JOBS), 0);

	/* What landed is XTS under the context-9 key at the right DUNs, and the csums cover it. */
	for (int j = 0; j < JOBS; j++) {
		CHECK_EQ_INT(pread(fd, raw, len, (off_t)(j * len)), (ssize_t)len);
		if (j == 1) {
			CHECK(memcmp(raw, plain + j * len, len) == 0);
		} else {
			CHECK_EQ_INT(fscrypt_derive_extent_key(&mk, FSCRYPT_PROFILE_V7, 1, nonce[j],
							       key, NULL), 0);
			CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
			if (x) {
				CHECK_EQ_INT(xts_encrypt(x, j == 2 ? 5 : 0, plain + j * len, back,
							 EIO_UNIT, UNITS), 0);
				CHECK(memcmp(raw, back, len) == 0);
				xts_ctx_free(x);
			}
		}
		csum_batch(CSUM_CRC32C, raw, EIO_UNIT, UNITS, want);
		CHECK(memcmp(csums + j * UNITS * 4, want, sizeof(want)) == 0);
	}

	/* Read back through verify + decrypt into memory. */
	sink.expected = csums;
	sink.out = NULL;
	sink.mismatch = log_mismatch;
	sink.arg = &log;
	for (int j = 0; j < JOBS; j++) {
		jobs[j].flags = EXTENT_IO_READ;
		jobs[j].src = jobs[j].dst;
		jobs[j].mem = back + j * len;
	}
	memset(back, 0, JOBS * len);
	CHECK_EQ_INT(extent_io_run(io, jobs, JOBS), 0);
	CHECK(memcmp(back, plain, JOBS * len) == 0);
	CHECK_EQ_INT(log.n, 0);

	/* One flipped ciphertext byte: exactly that unit is reported, its chunk dropped. */
	{
		uint8_t b;
		off_t where = (off_t)(2 * len + 7 * EIO_UNIT + 123);

		CHECK_EQ_INT(pread(fd, &b, 1, where), 1);
		b ^= 0x40;
		CHECK_EQ_INT(pwrite(fd, &b, 1, where), 1);
		memset(back, 0, JOBS * len);
		CHECK_EQ_INT(extent_io_run(io, jobs, JOBS), 0);
		CHECK_EQ_INT(log.n, 1);
		CHECK_EQ_INT(log.logical[0], EIO_BASE_LOGICAL + 2 * len + 7 * EIO_UNIT);
		/* Chunks are 3 units: units 6..8 of job 2 were dropped, the rest decrypted. */
		CHECK(memcmp(back, plain, 2 * len + 6 * EIO_UNIT) == 0);
		CHECK(memcmp(back + 2 * len + 9 * EIO_UNIT, plain + 2 * len + 9 * EIO_UNIT,
			     len - 9 * EIO_UNIT) == 0);
		b ^= 0x40;
		CHECK_EQ_INT(pwrite(fd, &b, 1, where), 1);
		/* Without a mismatch handler the run stops with -EBADMSG. */
		b ^= 0x40;
		CHECK_EQ_INT(pwrite(fd, &b, 1, where), 1);
		sink.mismatch = NULL;
		CHECK_EQ_INT(extent_io_run(io, jobs, JOBS), -EBADMSG);
		b ^= 0x40;
		CHECK_EQ_INT(pwrite(fd, &b, 1, where), 1);
		sink.mismatch = log_mismatch;
	}

	/* Copy: job 0 re-encrypted under a new nonce to a new place (copy-on-write). */
	{
		uint8_t new_nonce[16], csums2[UNITS * 4];
		struct extent_io_csums sink2 = { .type = CSUM_CRC32C,
						 .logical = EIO_BASE_LOGICAL + 3 * len,
						 .count = UNITS, .out = csums2 };
		struct extent_io_job cp = jobs[0];

		seq_bytes(new_nonce, 16, 0xe0);
		cp.flags = EXTENT_IO_READ | EXTENT_IO_WRITE;
		cp.mem = NULL;
		cp.dst.physical = 3 * len;
		cp.dst.logical = EIO_BASE_LOGICAL + 3 * len;
		cp.dst.dun = 0;
		cp.dst.nonce = new_nonce;
		cp.dst.priv = &sink2;
		CHECK_EQ_INT(extent_io_run(io, &cp, 1), 0);
		cp.flags = EXTENT_IO_READ;
		cp.src = cp.dst;
		sink2.expected = csums2;
		sink2.out = NULL;
		cp.mem = back;
		memset(back, 0, len);
		CHECK_EQ_INT(extent_io_run(io, &cp, 1), 0);
		CHECK(memcmp(back, plain, len) == 0);
	}

	/* Malformed jobs and errors. */
	{
		struct extent_io_job bad = jobs[0];

		bad.len = EIO_UNIT + 1;
		CHECK_EQ_INT(extent_io_run(io, &bad, 1), -EINVAL);
		bad.len = EIO_UNIT;
		bad.flags = 0;
		CHECK_EQ_INT(extent_io_run(io, &bad, 1), -EINVAL);
		bad.flags = EXTENT_IO_READ;
		bad.src.physical = 1ULL << 40;	/* beyond the end of the file */
		CHECK_EQ_INT(extent_io_run(io, &bad, 1), -EIO);
		bad.src.physical = 0;
		bad.src.logical = EIO_BASE_LOGICAL - EIO_UNIT;	/* outside the csums */
		CHECK_EQ_INT(extent_io_run(io, &bad, 1), -ERANGE);
	}
	extent_io_get_stats(io, &st);
	CHECK(st.bytes_written == 4 * len);
	CHECK(st.chunks_dropped >= 1);
	CHECK(st.keys_derived >= 3);
	extent_io_free(io);
	io = NULL;

	/* A process error stops the run and is returned; reads past EOF are -EIO. */
	p.process = fail_process;
	CHECK_EQ_INT(extent_io_new(&io, &p), 0);
	if (io) {
		struct extent_io_job j = jobs[0];

		j.src.priv = (void *)1;
		CHECK_EQ_INT(extent_io_run(io, &j, 1), -EL2HLT);
		j.src.priv = NULL;
		j.src.physical = 1ULL << 40;
		CHECK_EQ_INT(extent_io_run(io, &j, 1), -EIO);
		j.src.physical = 0;
		j.src.nonce = nonce[0];
		CHECK_EQ_INT(extent_io_run(io, &j, 1), 0);
		CHECK(memcmp(back, plain, len) == 0);
	}
out:
	extent_io_free(io);
	fscrypt_master_key_wipe(&mk);
	free(plain);
	free(back);
	free(raw);
	if (fd >= 0)
		close(fd);
}

UNIT_TEST(extent_io_one_thread)
{
	extent_io_small(1);
}

UNIT_TEST(extent_io_three_threads)
{
	extent_io_small(3);
}

/*
 * Small jobs share chunks ("gangs"): copies whose destinations follow each
 * other go out in one write even when their sources are scattered; one bad
 * source csum drops only its own job; start/wait run in the background.
 */
static void extent_io_gangs(unsigned int threads)
{
	enum { N = 24 };
	const size_t area = 64 * EIO_UNIT;	/* sources in [0, area), copies after */
	struct fscrypt_master_key mk;
	uint8_t *plain, *raw, nonce[N][16], key[64], want[4];
	uint8_t src_sums[N * 2 * 4], dst_sums[N * 2 * 4];
	struct extent_io_csums vin[N], vout[N];
	struct extent_io_params p = { .unit_size = EIO_UNIT, .threads = threads,
				      .chunk_size = 8 * EIO_UNIT, .key = &mk,
				      .profile = FSCRYPT_PROFILE_V7,
				      .contents_mode = FSCRYPT_MODE_AES_256_XTS,
				      .process = extent_io_csum_process, .dst_fd = -1 };
	struct extent_io_job jobs[N];
	struct mismatch_log log = { .n = 0 };
	struct extent_io *io = NULL;
	uint64_t src_off[N], dst = area, units[N];
	int fd = temp_fd();

	test_master(&mk);
	plain = malloc(area);
	raw = malloc(2 * EIO_UNIT);
	CHECK(fd >= 0 && plain && raw);
	if (fd < 0 || !plain || !raw)
		goto out;
	for (size_t i = 0; i < area; i++)
		plain[i] = (uint8_t)(i * 40503U >> 7);
	CHECK_EQ_INT(pwrite(fd, plain, area, 0), (ssize_t)area);
	p.fd = fd;
	CHECK_EQ_INT(extent_io_new(&io, &p), 0);
	if (!io)
		goto out;
	memset(jobs, 0, sizeof(jobs));
	for (int j = 0; j < N; j++) {
		/* 1 or 2 units each, sources in reverse order with gaps, copies packed */
		units[j] = 1 + (j % 3 == 0);
		src_off[j] = (uint64_t)(N - 1 - j) * 2 * EIO_UNIT;
		csum_batch(CSUM_CRC32C, plain + src_off[j], EIO_UNIT, units[j], src_sums + j * 8);
		seq_bytes(nonce[j], 16, (uint8_t)(7 * j + 3));
		vin[j] = (struct extent_io_csums){ .type = CSUM_CRC32C,
						   .logical = EIO_BASE_LOGICAL + src_off[j],
						   .count = units[j], .expected = src_sums + j * 8,
						   .mismatch = log_mismatch, .arg = &log };
		vout[j] = (struct extent_io_csums){ .type = CSUM_CRC32C,
						    .logical = EIO_BASE_LOGICAL + dst,
						    .count = units[j], .out = dst_sums + j * 8 };
		jobs[j].len = units[j] * EIO_UNIT;
		jobs[j].flags = EXTENT_IO_READ | EXTENT_IO_WRITE;
		jobs[j].src = (struct extent_io_loc){ src_off[j], EIO_BASE_LOGICAL + src_off[j], 0,
						      NULL, &vin[j] };
		jobs[j].dst = (struct extent_io_loc){ dst, EIO_BASE_LOGICAL + dst, 0, nonce[j],
						      &vout[j] };
		dst += jobs[j].len;
	}
	/* Job 5's source is corrupt on disk: its copy is not written, the others are. */
	src_sums[5 * 8] ^= 1;
	CHECK_EQ_INT(extent_io_start(io, jobs, N), 0);
	CHECK_EQ_INT(extent_io_run(io, jobs, 1), -EBUSY);
	CHECK_EQ_INT(extent_io_wait(io), 0);
	CHECK_EQ_INT(extent_io_wait(io), 0);	/* nothing running: nothing to wait for */
	CHECK_EQ_INT(log.n, 1);
	CHECK_EQ_INT(log.logical[0], EIO_BASE_LOGICAL + src_off[5]);
	for (int j = 0; j < N; j++) {
		struct xts_ctx *x;
		size_t len = jobs[j].len;
		ssize_t got = pread(fd, raw, len, (off_t)jobs[j].dst.physical);

		if (j == 5) {
			/* never written: the file is still a hole (or ends) there */
			for (ssize_t i = 0; i < got; i++)
				CHECK(raw[i] == 0);
			continue;
		}
		CHECK_EQ_INT(got, (ssize_t)len);
		CHECK_EQ_INT(fscrypt_derive_extent_key(&mk, FSCRYPT_PROFILE_V7, 1, nonce[j], key,
						       NULL), 0);
		CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
		if (x) {
			uint8_t ct[2 * EIO_UNIT];

			CHECK_EQ_INT(xts_encrypt(x, 0, plain + src_off[j], ct, EIO_UNIT, units[j]), 0);
			CHECK(memcmp(raw, ct, len) == 0);
			xts_ctx_free(x);
		}
		for (uint64_t u = 0; u < units[j]; u++) {
			csum_batch(CSUM_CRC32C, raw + u * EIO_UNIT, EIO_UNIT, 1, want);
			CHECK(memcmp(dst_sums + j * 8 + u * 4, want, 4) == 0);
		}
	}
out:
	extent_io_free(io);
	fscrypt_master_key_wipe(&mk);
	free(plain);
	free(raw);
	if (fd >= 0)
		close(fd);
}

UNIT_TEST(extent_io_gangs_one_thread)
{
	extent_io_gangs(1);
}

UNIT_TEST(extent_io_gangs_two_threads)
{
	extent_io_gangs(2);
}

UNIT_TEST(extent_io_bad_params)
{
	struct extent_io_params p = { .fd = 0, .unit_size = 4000, .dst_fd = -1 };
	struct extent_io *io;

	CHECK_EQ_INT(extent_io_new(&io, &p), -EINVAL);
	p.unit_size = 4096;
	p.chunk_size = 100;
	CHECK_EQ_INT(extent_io_new(&io, &p), -EINVAL);
	p.chunk_size = 0;
	p.fd = -1;
	CHECK_EQ_INT(extent_io_new(&io, &p), -EINVAL);
	p.fd = 0;
	p.threads = 2;
	CHECK_EQ_INT(extent_io_new(&io, &p), 0);
	extent_io_free(io);
}

/* ---------------------------------------------------------------------- */
/* --oracle KIND: one case per stdin line, one answer per stdout line */

/* Decode a hex token into a fresh buffer ("-" is empty); returns the size or -1. */
static long token_hex(const char *tok, uint8_t **out)
{
	size_t len = tok ? strlen(tok) : 0;

	*out = malloc(len / 2 + 1);
	if (!tok || !*out)
		return -1;
	if (strcmp(tok, "-") == 0)
		return 0;
	return unit_unhex(tok, *out, len / 2 + 1);
}

static void print_hex_line(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	putchar('\n');
}

/* hkdf: "IKM CTX DATA|- LEN" -> OKM, through the fscrypt derivation functions. */
static int oracle_hkdf(char **tok)
{
	struct fscrypt_master_key mk;
	uint8_t *ikm = NULL, *data = NULL, out[256];
	long ikm_len = token_hex(tok[0], &ikm), data_len = token_hex(tok[2], &data);
	int ctx = tok[1] ? atoi(tok[1]) : -1, len = tok[3] ? atoi(tok[3]) : 0, ret = -EINVAL;

	if (ikm_len < 0 || data_len < 0 || len <= 0 || len > (int)sizeof(out))
		goto out;
	ret = fscrypt_master_key_init(&mk, ikm, (size_t)ikm_len);
	if (ret)
		goto out;
	if (ctx == FSCRYPT_HKDF_KEY_IDENTIFIER && len == 16 && data_len == 0) {
		memcpy(out, mk.identifier, 16);
	} else if (ctx == FSCRYPT_HKDF_PER_FILE_ENC_KEY && data_len == 16 &&
		   (len == 64 || len == 32 || len == 16)) {
		ret = fscrypt_derive_file_key(&mk, data, len == 64 ? 1 : len == 32 ? 4 : 6,
					      out, NULL);
	} else if ((ctx == 9 || ctx == 8) && data_len == 16 && len == 64) {
		ret = fscrypt_derive_extent_key(&mk, ctx == 9 ? FSCRYPT_PROFILE_V7 :
						FSCRYPT_PROFILE_V5, 1, data, out, NULL);
	} else {
		ret = hkdf_sha512_expand_fscrypt(mk.prk, (uint8_t)ctx, data, (size_t)data_len,
						 out, (size_t)len);
	}
	fscrypt_master_key_wipe(&mk);
out:
	if (ret)
		printf("ERR %d\n", ret);
	else
		print_hex_line(out, (size_t)len);
	free(ikm);
	free(data);
	return ret;
}

/* xts: "KEY DUN UNIT enc|dec DATA" -> DATA' (a run of units starting at DUN). */
static int oracle_xts(char **tok)
{
	uint8_t *key = NULL, *data = NULL;
	long key_len = token_hex(tok[0], &key), len = token_hex(tok[4], &data);
	unsigned long long dun = tok[1] ? strtoull(tok[1], NULL, 0) : 0;
	long unit = tok[2] ? atol(tok[2]) : 0;
	struct xts_ctx *x = NULL;
	int ret = -EINVAL;

	if (key_len < 0 || len <= 0 || unit <= 0 || len % unit || !tok[3])
		goto out;
	ret = xts_ctx_new(&x, key, (size_t)key_len);
	if (ret)
		goto out;
	if (strcmp(tok[3], "enc") == 0)
		ret = xts_encrypt(x, dun, data, data, (size_t)unit, (size_t)(len / unit));
	else
		ret = xts_decrypt(x, dun, data, data, (size_t)unit, (size_t)(len / unit));
out:
	if (ret)
		printf("ERR %d\n", ret);
	else
		print_hex_line(data, (size_t)len);
	xts_ctx_free(x);
	free(key);
	free(data);
	return ret;
}

/*
 * fname: "enc KEY MODE FLAGS NAME" -> "CT HASH"; "dec KEY MODE CT" -> NAME;
 * "symenc KEY MODE FLAGS MAXDATA TARGET" -> DATA; "symdec KEY MODE DATA" -> TARGET.
 */
static int oracle_fname(char **tok)
{
	uint8_t *key = NULL, *in = NULL, out[8192];
	int mode = tok[2] ? atoi(tok[2]) : 0, ret = -EINVAL;
	const char *op = tok[0] ? tok[0] : "";
	long in_len;

	token_hex(tok[1], &key);
	if (strcmp(op, "enc") == 0 && tok[3]) {
		in_len = token_hex(tok[4], &in);
		if (in_len >= 0)
			ret = fname_encrypt(mode, key, (uint8_t)atoi(tok[3]), in, (size_t)in_len, out);
		if (ret > 0) {
			for (int i = 0; i < ret; i++)
				printf("%02x", out[i]);
			printf(" %08x\n", btrfs_name_hash(out, (size_t)ret));
		}
	} else if (strcmp(op, "dec") == 0) {
		in_len = token_hex(tok[3], &in);
		if (in_len >= 0)
			ret = fname_decrypt(mode, key, in, (size_t)in_len, out);
		if (ret > 0)
			print_hex_line(out, (size_t)ret);
	} else if (strcmp(op, "symenc") == 0 && tok[3] && tok[4]) {
		in_len = token_hex(tok[5], &in);
		if (in_len >= 0)
			ret = fscrypt_symlink_encrypt(mode, key, (uint8_t)atoi(tok[3]), in,
						      (size_t)in_len, (size_t)atol(tok[4]),
						      out, sizeof(out));
		if (ret > 0)
			print_hex_line(out, (size_t)ret);
	} else if (strcmp(op, "symdec") == 0) {
		in_len = token_hex(tok[3], &in);
		if (in_len >= 0)
			ret = fscrypt_symlink_decrypt(mode, key, in, (size_t)in_len, out, sizeof(out));
		if (ret > 0)
			print_hex_line(out, (size_t)ret);
	}
	if (ret <= 0)
		printf("ERR %d\n", ret);
	free(key);
	free(in);
	return ret > 0 ? 0 : ret;
}

/* csum: "TYPE DATA" -> digest (csum_type_size bytes); "batch TYPE UNIT DATA" -> digests. */
static int oracle_csum(char **tok)
{
	uint8_t *data = NULL, out[CSUM_MAX_SIZE];
	long len;
	int ret = 0;

	if (tok[0] && strcmp(tok[0], "batch") == 0) {
		int type = tok[1] ? atoi(tok[1]) : -1;
		long unit = tok[2] ? atol(tok[2]) : 0;
		uint8_t *digests;

		len = token_hex(tok[3], &data);
		if (!csum_type_size(type) || unit <= 0 || len < 0 || len % unit) {
			printf("ERR %d\n", -EINVAL);
			free(data);
			return -EINVAL;
		}
		digests = malloc((size_t)(len / unit) * csum_type_size(type) + 1);
		csum_batch(type, data, (size_t)unit, (size_t)(len / unit), digests);
		print_hex_line(digests, (size_t)(len / unit) * csum_type_size(type));
		free(digests);
		free(data);
		return 0;
	}
	len = token_hex(tok[1], &data);
	if (!tok[0] || !csum_type_size(atoi(tok[0])) || len < 0) {
		ret = -EINVAL;
		printf("ERR %d\n", ret);
	} else {
		csum_compute(atoi(tok[0]), data, (size_t)len, out);
		print_hex_line(out, csum_type_size(atoi(tok[0])));
	}
	free(data);
	return ret;
}

static int oracle_main(int argc, char **argv)
{
	int (*fn)(char **tok) = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long cases = 0;

	if (argc == 2 && strcmp(argv[1], "hkdf") == 0)
		fn = oracle_hkdf;
	else if (argc == 2 && strcmp(argv[1], "xts") == 0)
		fn = oracle_xts;
	else if (argc == 2 && strcmp(argv[1], "fname") == 0)
		fn = oracle_fname;
	else if (argc == 2 && strcmp(argv[1], "csum") == 0)
		fn = oracle_csum;
	if (!fn) {
		fprintf(stderr, "usage: unit-tests --oracle hkdf|xts|fname|csum < cases\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	while ((n = getline(&line, &cap, stdin)) > 0) {
		char *tok[8] = { 0 }, *save = NULL, *t = strtok_r(line, " \t\r\n", &save);
		int nt = 0;

		if (!t)
			continue;
		while (t && nt < 8) {
			tok[nt++] = t;
			t = strtok_r(NULL, " \t\r\n", &save);
		}
		fn(tok);
		cases++;
	}
	free(line);
	fflush(stdout);
	fprintf(stderr, "oracle %s: %lu cases\n", argv[1], cases);
	return 0;
}

UNIT_MODE(oracle, "--oracle", "--oracle hkdf|xts|fname|csum   (cases on stdin, answers on stdout)",
	  oracle_main)

/* ---------------------------------------------------------------------- */
/* --pipeline-selftest: a large round trip through extent-io */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The plaintext of the byte range at logical address a: a function of the address. */
static void pattern_fill(uint8_t *buf, uint64_t a, uint32_t len)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t v = splitmix64((a + i) ^ 0x5eed);

		memcpy(buf + i, &v, 8);
	}
}

struct selftest {
	uint64_t size;
	uint64_t plain_bad;	/* consumer saw wrong plaintext (atomic) */
	uint64_t consumed;
	pthread_mutex_t lock;
	uint64_t reported[8];
	unsigned int nreported;
};

static int st_produce(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
		      uint8_t *buf, uint32_t len, void *priv)
{
	pattern_fill(buf, job->dst.logical + off, len);
	return 0;
}

static int st_consume(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
		      const uint8_t *buf, uint32_t len, void *priv)
{
	struct selftest *t = priv;
	uint8_t want[4096];

	for (uint32_t i = 0; i < len; i += sizeof(want)) {
		uint32_t n = len - i < sizeof(want) ? len - i : (uint32_t)sizeof(want);

		pattern_fill(want, job->src.logical + off + i, n);
		if (memcmp(want, buf + i, n))
			__atomic_add_fetch(&t->plain_bad, 1, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&t->consumed, len, __ATOMIC_RELAXED);
	return 0;
}

static int st_mismatch(struct extent_io *io, uint64_t logical, const uint8_t *found,
		       const uint8_t *expected, void *arg)
{
	struct selftest *t = arg;

	/* Serialised by extent-io's report lock. */
	if (t->nreported < 8)
		t->reported[t->nreported] = logical;
	t->nreported++;
	return 0;
}

static void st_progress(uint64_t done, uint64_t total, void *arg)
{
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r%llu/%llu MiB ", (unsigned long long)(done >> 20),
			(unsigned long long)(total >> 20));
}

#define ST_FAIL(...) do { printf("pipeline-selftest: FAILED: " __VA_ARGS__); printf("\n"); failed = 1; } while (0)

static int pipeline_selftest_main(int argc, char **argv)
{
	uint64_t size = 1ULL << 30, base = EIO_BASE_LOGICAL;
	const uint32_t unit = 4096;
	unsigned int threads = 0, njobs = 0;
	struct extent_io_job *jobs = NULL;
	uint8_t (*nonces)[16] = NULL, *csums = NULL;
	struct extent_io_params p = { .unit_size = unit, .dst_fd = -1 };
	struct extent_io_csums sums = { .type = CSUM_CRC32C };
	struct fscrypt_master_key mk;
	struct extent_io *io = NULL;
	struct selftest t = { 0 };
	uint64_t flip_at = 0, pos;
	double t0;
	int fd, failed = 0, ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size-mib") == 0 && i + 1 < argc)
			size = strtoull(argv[++i], NULL, 0) << 20;
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned int)atoi(argv[++i]);
		else if (strcmp(argv[i], "--csum") == 0 && i + 1 < argc)
			sums.type = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: unit-tests --pipeline-selftest [--size-mib N] [--threads N] [--csum TYPE]\n");
			return 2;
		}
	}
	if (size < (16U << 20) || !csum_type_size(sums.type)) {
		fprintf(stderr, "pipeline-selftest: --size-mib must be >= 16, --csum 0..3\n");
		return 2;
	}
	pthread_mutex_init(&t.lock, NULL);
	t.size = size;
	test_master(&mk);
	fd = temp_fd();
	if (fd < 0) {
		perror("pipeline-selftest: temporary file");
		return 1;
	}

	/* Extents of 1 unit to 32 MiB, every fourth one plain, DUNs from 0. */
	jobs = calloc(size / unit, sizeof(*jobs));
	nonces = calloc(size / unit, sizeof(*nonces));
	sums.count = size / unit;
	sums.logical = base;
	csums = calloc(sums.count, csum_type_size(sums.type));
	sums.out = csums;
	if (!jobs || !nonces || !csums) {
		ST_FAIL("out of memory");
		goto out;
	}
	for (pos = 0; pos < size; njobs++) {
		uint64_t r = splitmix64(njobs), len;

		len = (r % 8 == 0) ? unit : ((r >> 8) % (32ULL << 20) / unit + 1) * unit;
		if (len > size - pos)
			len = size - pos;
		for (int k = 0; k < 16; k++)
			nonces[njobs][k] = (uint8_t)(splitmix64(njobs * 16 + k + 1000) >> 7);
		jobs[njobs].len = len;
		jobs[njobs].dst.physical = pos;
		jobs[njobs].dst.logical = base + pos;
		jobs[njobs].dst.dun = 0;
		jobs[njobs].dst.nonce = njobs % 4 == 3 ? NULL : nonces[njobs];
		jobs[njobs].dst.priv = &sums;
		jobs[njobs].priv = &t;
		pos += len;
	}
	p.fd = fd;
	p.threads = threads;
	p.key = &mk;
	p.profile = FSCRYPT_PROFILE_V7;
	p.contents_mode = FSCRYPT_MODE_AES_256_XTS;
	p.process = extent_io_csum_process;
	p.produce = st_produce;
	p.consume = st_consume;
	p.progress = st_progress;
	ret = extent_io_new(&io, &p);
	if (ret) {
		ST_FAIL("extent_io_new: %s", strerror(-ret));
		goto out;
	}
	printf("pipeline-selftest: %llu MiB in %u extents, %u threads, csum %s\n",
	       (unsigned long long)(size >> 20), njobs, extent_io_threads(io),
	       csum_type_name(sums.type));

	/* 1. producer -> encrypt -> csum -> pwrite */
	for (unsigned int i = 0; i < njobs; i++)
		jobs[i].flags = EXTENT_IO_WRITE;
	t0 = now_sec();
	ret = extent_io_run(io, jobs, njobs);
	printf("encrypt+csum+write: %.0f MiB/s\n", size / (now_sec() - t0) / 1048576);
	if (ret) {
		ST_FAIL("write run: %s", strerror(-ret));
		goto out;
	}

	/* 2. pread -> verify -> decrypt -> consumer */
	sums.expected = csums;
	sums.out = NULL;
	sums.mismatch = st_mismatch;
	sums.arg = &t;
	for (unsigned int i = 0; i < njobs; i++) {
		jobs[i].flags = EXTENT_IO_READ;
		jobs[i].src = jobs[i].dst;
	}
	t0 = now_sec();
	ret = extent_io_run(io, jobs, njobs);
	printf("read+verify+decrypt: %.0f MiB/s\n", size / (now_sec() - t0) / 1048576);
	if (ret)
		ST_FAIL("read run: %s", strerror(-ret));
	if (t.nreported)
		ST_FAIL("%u csum mismatches on intact data", t.nreported);
	if (t.plain_bad || t.consumed != size)
		ST_FAIL("round trip: %llu bad pieces, %llu of %llu bytes consumed",
			(unsigned long long)t.plain_bad, (unsigned long long)t.consumed,
			(unsigned long long)size);

	/* 3. one flipped ciphertext byte: exactly its data unit is reported */
	{
		uint8_t b;

		flip_at = splitmix64((uint64_t)time(NULL)) % size;
		if (pread(fd, &b, 1, (off_t)flip_at) != 1)
			ST_FAIL("pread");
		b ^= 0x01;
		if (pwrite(fd, &b, 1, (off_t)flip_at) != 1)
			ST_FAIL("pwrite");
	}
	t.nreported = 0;
	t.consumed = 0;
	t.plain_bad = 0;
	ret = extent_io_run(io, jobs, njobs);
	if (ret)
		ST_FAIL("verify run after the flip: %s", strerror(-ret));
	printf("flipped byte at offset %llu (logical %llu, unit logical %llu): %u report(s)",
	       (unsigned long long)flip_at, (unsigned long long)(base + flip_at),
	       (unsigned long long)(base + flip_at / unit * unit), t.nreported);
	for (unsigned int i = 0; i < t.nreported && i < 8; i++)
		printf(" %llu", (unsigned long long)t.reported[i]);
	printf("\n");
	if (t.nreported != 1 || t.reported[0] != base + flip_at / unit * unit)
		ST_FAIL("expected exactly one report, of logical %llu",
			(unsigned long long)(base + flip_at / unit * unit));
	if (t.plain_bad)
		ST_FAIL("bad plaintext was consumed");
	if (t.consumed >= size || size - t.consumed > EXTENT_IO_DEFAULT_CHUNK)
		ST_FAIL("%llu bytes consumed: more than the flipped chunk was dropped",
			(unsigned long long)t.consumed);
out:
	if (!failed)
		printf("pipeline-selftest: OK\n");
	extent_io_free(io);
	fscrypt_master_key_wipe(&mk);
	free(jobs);
	free(nonces);
	free(csums);
	if (fd >= 0)
		close(fd);
	pthread_mutex_destroy(&t.lock);
	return failed;
}

UNIT_MODE(pipeline, "--pipeline-selftest",
	  "--pipeline-selftest [--size-mib N] [--threads N] [--csum TYPE]", pipeline_selftest_main)

/* ---------------------------------------------------------------------- */
/* --bench: throughput of XTS and the checksums, ours and the library's */

#define BENCH_BUF (1U << 20)

struct bench_arg {
	const char *what;
	double seconds;
	uint64_t bytes;
	pthread_barrier_t *start;
};

static void bench_raw_csum(int type, const uint8_t *buf, size_t len, uint8_t *out)
{
	switch (type) {
	case CSUM_CRC32C: {
		uint32_t c = crc32_iscsi((unsigned char *)buf, (int)len, ~0U);

		memcpy(out, &c, 4);
		break;
	}
	case CSUM_XXHASH64: {
		uint64_t v = XXH64(buf, len, 0);

		memcpy(out, &v, 8);
		break;
	}
	case CSUM_SHA256:
		SHA256(buf, len, out);
		break;
	case CSUM_BLAKE2B:
		blake2b(out, buf, NULL, 32, len, 0);
		break;
	}
}

/*
 * One thread of one measurement:
 *   xts-enc, xts-dec   xts_encrypt/xts_decrypt over a 1 MiB run of 4 KiB units
 *   raw-xts            EVP_EncryptUpdate of one 4 KiB buffer with a fixed IV,
 *                      the loop `openssl speed -evp aes-256-xts` times
 *   csum-T             csum_batch over 4 KiB units of a 1 MiB buffer
 *   raw-T              the library's call on each 4 KiB piece of the same buffer
 */
static void *bench_thread(void *argp)
{
	struct bench_arg *a = argp;
	uint8_t *buf = aligned_alloc(4096, BENCH_BUF), out[BENCH_BUF / 4096 * 32];
	static const uint8_t iv[16];
	EVP_CIPHER_CTX *evp = NULL;
	EVP_CIPHER *cipher = NULL;
	struct xts_ctx *x = NULL;
	uint8_t key[64];
	int type = -1, raw = 0, outl;
	uint64_t dun = 0;
	double end;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < BENCH_BUF; i++)
		buf[i] = (uint8_t)(i * 7);
	seq_bytes(key, 64, 0);
	if (strcmp(a->what, "raw-xts") == 0) {
		cipher = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
		evp = EVP_CIPHER_CTX_new();
		if (!cipher || !evp || EVP_EncryptInit_ex2(evp, cipher, key, iv, NULL) != 1)
			goto out;
	} else if (strncmp(a->what, "xts", 3) == 0) {
		if (xts_ctx_new(&x, key, 64))
			goto out;
	} else {
		raw = strncmp(a->what, "raw-", 4) == 0;
		for (int t = 0; t <= CSUM_BLAKE2B; t++)
			if (strcmp(a->what + 5 - raw, csum_type_name(t)) == 0)
				type = t;
	}
	pthread_barrier_wait(a->start);
	end = now_sec() + a->seconds;
	while (now_sec() < end) {
		for (int rep = 0; rep < 8; rep++) {
			if (evp)
				for (size_t off = 0; off < BENCH_BUF; off += 4096)
					EVP_EncryptUpdate(evp, buf, &outl, buf, 4096);
			else if (x && strcmp(a->what, "xts-enc") == 0)
				xts_encrypt(x, dun, buf, buf, 4096, BENCH_BUF / 4096);
			else if (x)
				xts_decrypt(x, dun, buf, buf, 4096, BENCH_BUF / 4096);
			else if (raw)
				for (size_t off = 0; off < BENCH_BUF; off += 4096)
					bench_raw_csum(type, buf + off, 4096, out);
			else
				csum_batch(type, buf, 4096, BENCH_BUF / 4096, out);
			dun += BENCH_BUF / 4096;
			a->bytes += BENCH_BUF;
		}
	}
	goto done;
out:
	pthread_barrier_wait(a->start);
done:
	EVP_CIPHER_CTX_free(evp);
	EVP_CIPHER_free(cipher);
	xts_ctx_free(x);
	free(buf);
	return NULL;
}

static double bench_one(const char *what, unsigned int threads, double seconds)
{
	pthread_t tid[256];
	struct bench_arg args[256];
	pthread_barrier_t start;
	uint64_t total = 0;
	double t0;

	if (threads > 256)
		threads = 256;
	pthread_barrier_init(&start, NULL, threads + 1);
	for (unsigned int i = 0; i < threads; i++) {
		args[i] = (struct bench_arg){ what, seconds, 0, &start };
		pthread_create(&tid[i], NULL, bench_thread, &args[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now_sec();
	for (unsigned int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		total += args[i].bytes;
	}
	pthread_barrier_destroy(&start);
	return total / (now_sec() - t0);
}

/*
 * Each line: NAME THREADS OURS REF (bytes per second), where REF is the
 * in-process library reference (raw-xts for XTS).  The two are measured in
 * alternating rounds and the best round of each is kept, so that load from
 * other processes (which only ever slows a round down) hits both alike.
 */
static int bench_main(int argc, char **argv)
{
	static const char *const what[][2] = {
		{ "xts-enc", "raw-xts" }, { "xts-dec", "raw-xts" },
		{ "csum-crc32c", "raw-crc32c" }, { "csum-xxhash64", "raw-xxhash64" },
		{ "csum-sha256", "raw-sha256" }, { "csum-blake2b", "raw-blake2b" },
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int all = cpus > 0 ? (unsigned int)cpus : 1, rounds = 3;
	double seconds = 3;
	const char *only = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			all = (unsigned int)atoi(argv[++i]);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = (unsigned int)atoi(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: unit-tests --bench [--seconds S] [--rounds N] [--threads N] [--only PREFIX]\n");
			return 2;
		}
	}
	if (!all || seconds <= 0 || !rounds)
		return 2;
	printf("# name threads ours_bytes_per_second reference_bytes_per_second (best of %u rounds of %.2f s)\n",
	       rounds, seconds / rounds);
	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		if (only && strncmp(what[i][0], only, strlen(only)))
			continue;
		for (unsigned int t = 1; t <= all; t = t == all ? all + 1 : all) {
			double ours = 0, ref = 0;

			for (unsigned int r = 0; r < rounds; r++) {
				double a = bench_one(what[i][0], t, seconds / rounds);
				double b = bench_one(what[i][1], t, seconds / rounds);

				ours = a > ours ? a : ours;
				ref = b > ref ? b : ref;
			}
			printf("%s %u %.0f %.0f\n", what[i][0], t, ours, ref);
		}
	}
	return 0;
}

UNIT_MODE(bench, "--bench", "--bench [--seconds S] [--rounds N] [--threads N] [--only PREFIX]",
	  bench_main)
