/* SPDX-License-Identifier: GPL-2.0 */
/*
 * volumes.c: the chunk map (logical to physical addresses) built from the
 * superblock's system chunk array and the chunk tree, and chunk item checks.
 */
#ifndef EXTCRYPT_VOLUMES_H
#define EXTCRYPT_VOLUMES_H

#include "kernel-shared/ctree.h"

/*
 * Build fs->chunks from the superblock's sys_chunk_array, then from every
 * CHUNK_ITEM of the chunk tree.  Refuses profiles other than SINGLE and DUP.
 * Returns 0 or a negative errno with fs_errmsg(fs) set.
 */
int load_chunk_map(struct fs_info *fs);

/*
 * Validate one chunk item body of item_size bytes at logical address
 * `logical`.  Returns 0 or -EUCLEAN / -EOPNOTSUPP with fs_errmsg(fs) set.
 */
int validate_chunk(struct fs_info *fs, u64 logical, const struct btrfs_chunk *c,
		   u32 item_size);

/* Human name of a block group profile ("single", "dup", "raid1", ...). */
const char *profile_name(u64 flags);

/* Map a logical range to an image offset (first stripe).  Returns 0 or -ENOENT. */
int logical_to_physical(struct fs_info *fs, u64 logical, u64 len, u64 *physical);
/*
 * Add a mapping (a chunk allocated in a transaction) or drop one (a chunk
 * removed, or an allocation undone).  Insert returns 0 or -ENOMEM.
 */
int chunk_map_insert(struct fs_info *fs, const struct chunk_map *m);
void chunk_map_remove(struct fs_info *fs, u64 logical);

/* Chunk covering a logical address, or NULL. */
const struct chunk_map *find_chunk(const struct fs_info *fs, u64 logical);

#endif
