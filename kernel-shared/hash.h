/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hashes btrfs puts into key offsets: the directory name hash (DIR_ITEM
 * and XATTR_ITEM, Documentation/format.rst 2.7), the INODE_EXTREF hash and the extent data
 * ref hash (keyed EXTENT_DATA_REF items, Documentation/format.rst 2.8).  All are raw CRC-32C
 * from crypto/csum.h; this is the btrfs knowledge on top of it.
 */
#ifndef EXTCRYPT_HASH_H
#define EXTCRYPT_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "crypto/csum.h"

/* Key offset of a DIR_ITEM for name[0..len): crc32c_raw(~1, name). */
static inline uint32_t btrfs_name_hash(const void *name, size_t len)
{
	return crc32c_raw((uint32_t)~1U, name, len);
}

/* Key offset of an INODE_EXTREF naming name[0..len) in directory parent. */
static inline uint32_t btrfs_extref_hash(uint64_t parent, const void *name, size_t len)
{
	return crc32c_raw((uint32_t)parent, name, len);
}

/* Key offset of a keyed EXTENT_DATA_REF for (root, objectid, offset). */
uint64_t btrfs_extent_data_ref_hash(uint64_t root, uint64_t objectid, uint64_t offset);

#endif
