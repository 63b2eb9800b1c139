// SPDX-License-Identifier: GPL-2.0
/*
 * The test vectors of Documentation/format.rst section 13 (key identifiers, extent keys,
 * filenames, kernel-made data, backref hashes) and the btrfs csums.
 */
#include <stdio.h>
#include <string.h>
#include <isa-l/crc.h>
#include <xxhash.h>
#include <blake2.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include "crypto/csum.h"
#include "kernel-shared/hash.h"
#include "crypto/fname.h"
#include "crypto/fscrypt-keys.h"
#include "crypto/hkdf.h"
#include "crypto/xts.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

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
	/* Documentation/format.rst 2.2: crc32c value 0xb0038ce3 is stored e3 8c 03 b0. */
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
