/* SPDX-License-Identifier: GPL-2.0 */
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

/* Set fs_errmsg(fs) from a format and return err. */
int fs_err(struct fs_info *fs, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
