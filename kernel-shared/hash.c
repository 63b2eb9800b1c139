// SPDX-License-Identifier: GPL-2.0
#include <endian.h>
#include "kernel-shared/hash.h"

/*
 * Two CRC-32C runs seeded with ~0: one over the little-endian root, one over
 * objectid then offset; the first shifted left by 31 and xored in.
 */
uint64_t btrfs_extent_data_ref_hash(uint64_t root, uint64_t objectid, uint64_t offset)
{
	uint32_t high_crc = ~0U, low_crc = ~0U;
	uint64_t le;

	le = htole64(root);
	high_crc = crc32c_raw(high_crc, &le, sizeof(le));
	le = htole64(objectid);
	low_crc = crc32c_raw(low_crc, &le, sizeof(le));
	le = htole64(offset);
	low_crc = crc32c_raw(low_crc, &le, sizeof(le));
	return ((uint64_t)high_crc << 31) ^ (uint64_t)low_crc;
}
