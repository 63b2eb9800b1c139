// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include <endian.h>
#include <isa-l/crc.h>
#include <xxhash.h>
#include <blake2.h>
#include <openssl/sha.h>
#include "crypto/csum.h"

static const struct {
	const char *name;
	unsigned int size;
} csum_types[] = {
	[CSUM_CRC32C] = { "crc32c", 4 },
	[CSUM_XXHASH64] = { "xxhash64", 8 },
	[CSUM_SHA256] = { "sha256", 32 },
	[CSUM_BLAKE2B] = { "blake2b", 32 },
};

unsigned int csum_type_size(int type)
{
	if (type < 0 || type > CSUM_BLAKE2B)
		return 0;
	return csum_types[type].size;
}

const char *csum_type_name(int type)
{
	if (type < 0 || type > CSUM_BLAKE2B)
		return NULL;
	return csum_types[type].name;
}

uint32_t crc32c_raw(uint32_t seed, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = seed;

	/* crc32_iscsi takes an int length: feed huge buffers in pieces. */
	while (len) {
		size_t n = len > (1U << 30) ? (1U << 30) : len;

		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return crc;
}

static void csum_one(int type, const void *data, size_t len, uint8_t *out)
{
	switch (type) {
	case CSUM_CRC32C: {
		uint32_t v = htole32(~crc32c_raw(~0U, data, len));

		memcpy(out, &v, 4);
		break;
	}
	case CSUM_XXHASH64: {
		uint64_t v = htole64(XXH64(data, len, 0));

		memcpy(out, &v, 8);
		break;
	}
	case CSUM_SHA256:
		SHA256(data, len, out);
		break;
	case CSUM_BLAKE2B:
		blake2b(out, data, NULL, 32, len, 0);
		break;
	}
}

void csum_compute(int type, const void *data, size_t len, uint8_t *out)
{
	memset(out, 0, CSUM_MAX_SIZE);
	csum_one(type, data, len, out);
}

void csum_batch(int type, const void *data, size_t unit, size_t n, uint8_t *out)
{
	const uint8_t *p = data;
	unsigned int size = csum_type_size(type);

	for (size_t i = 0; i < n; i++)
		csum_one(type, p + i * unit, unit, out + i * size);
}
