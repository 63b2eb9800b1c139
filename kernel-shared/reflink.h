/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Offline clone of a file range, with FICLONERANGE's semantics
 * (Documentation/format.rst section 10).
 */
#ifndef EXTCRYPT_REFLINK_H
#define EXTCRYPT_REFLINK_H

#include "kernel-shared/transaction.h"

struct clone_args {
	u64 src_root, src_ino, src_off;
	u64 len;		/* 0: to the end of the source */
	u64 dst_root, dst_ino, dst_off;
	u64 now_sec;		/* time stamp for the destination's mtime/ctime */
	u64 cloned;		/* out: bytes cloned (len, or to the source's EOF) */
	u32 now_nsec;
};

/*
 * Why a clone is refused; the error is EXIT_PROBLEMS material, not
 * corruption.  clone_range() returns -EINVAL / -EOPNOTSUPP / -EXDEV / -EROFS
 * with fs_errmsg(fs) set to one of these reasons.
 */

/*
 * Clone in transaction t.  Validates like the kernel (alignment, EOF,
 * overlap within one file, plain vs encrypted, key id and mode of every
 * encrypted source extent against the destination policy, inline extents,
 * read-only destination subvolume), then drops the destination range,
 * inserts the clipped source items with their extent context items and
 * data references, and updates the destination inode.  Returns 0 or a
 * negative errno with fs_errmsg(fs) set.
 */
int clone_range(struct trans *t, struct clone_args *a);

/* Recompute an inode's nbytes from its extents, as btrfs check counts them. */
int inode_count_nbytes(struct fs_info *fs, const struct root_ref *root, u64 ino, u64 *nbytes);

#endif
