/* SPDX-License-Identifier: GPL-2.0 */
/* file-item.c: data checksum items (EXTENT_CSUM) of the csum tree. */
#ifndef EXTCRYPT_FILE_ITEM_H
#define EXTCRYPT_FILE_ITEM_H

#include "kernel-shared/transaction.h"

/*
 * Remove the data checksums of logical range [start, start + len) from the
 * csum tree: whole items are deleted, items reaching into the range are cut
 * at either end or split in two.  Returns 0 or a negative errno.
 */
int csum_delete_range(struct trans *t, u64 start, u64 len);

/*
 * Insert the csums of nsectors consecutive sectors starting at logical
 * `start` (csums packed, fs->csum_size bytes each), replacing any csums the
 * range had.  Returns 0 or a negative errno.
 */
int csum_insert(struct trans *t, u64 start, const u8 *csums, u64 nsectors);

/*
 * Read the stored csums of nsectors sectors from logical start into out
 * (fs->csum_size bytes each); present (optional, one byte per sector) says
 * which sectors had one.  Returns the number of sectors that had a csum (all
 * of them for a fully summed extent), or a negative errno.
 */
long csum_lookup_range(struct fs_info *fs, const struct root_ref *csum_root, u64 start,
		       u64 nsectors, u8 *out, u8 *present);

#endif
