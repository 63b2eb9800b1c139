/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The four btrfs checksums behind one interface (Documentation/format.rst 2.2): crc32c
 * through ISA-L, xxhash64 through libxxhash, sha256 through OpenSSL and
 * BLAKE2b-256 through libb2.  No btrfs knowledge beyond the type numbers.
 */
#ifndef EXTCRYPT_CSUM_H
#define EXTCRYPT_CSUM_H

#include <stddef.h>
#include <stdint.h>

#define CSUM_MAX_SIZE 32

enum csum_type {
	CSUM_CRC32C = 0,
	CSUM_XXHASH64 = 1,
	CSUM_SHA256 = 2,
	CSUM_BLAKE2B = 3,
};

/* Digest size of a type, or 0 for an unknown type. */
unsigned int csum_type_size(int type);
/* Name as btrfs-progs prints it ("crc32c", "xxhash64", "sha256", "blake2b"), or NULL. */
const char *csum_type_name(int type);

/*
 * Checksum len bytes into out[CSUM_MAX_SIZE]; bytes past the digest size are
 * zeroed, as in the 32-byte on-disk csum field.
 */
void csum_compute(int type, const void *data, size_t len, uint8_t *out);

/*
 * Checksum n consecutive units of unit bytes each; out receives n digests of
 * csum_type_size(type) bytes, packed as in an EXTENT_CSUM item.
 */
void csum_batch(int type, const void *data, size_t unit, size_t n, uint8_t *out);

/*
 * CRC-32C with the given seed and no final inversion (the btrfs name and
 * backref hashes of kernel-shared/hash.h are built on it).
 */
uint32_t crc32c_raw(uint32_t seed, const void *data, size_t len);

#endif
