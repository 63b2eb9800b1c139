/* SPDX-License-Identifier: GPL-2.0 */
/* Inode items inside a transaction. */
#ifndef EXTCRYPT_INODE_H
#define EXTCRYPT_INODE_H

#include "common/fscrypt-format.h"
#include "kernel-shared/transaction.h"

/* Read the inode item of ino from the transaction's current tree.  0, 1 if absent, <0. */
int trans_inode_read(struct trans *t, struct trans_root *root, u64 ino,
		     struct btrfs_inode_item *ii);
/* Overwrite the inode item of ino (it must exist).  Returns 0 or <0. */
int trans_inode_write(struct trans *t, struct trans_root *root, u64 ino,
		      const struct btrfs_inode_item *ii);
/* Exact item lookup in the transaction's current tree: like lookup_item(). */
int trans_lookup(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		 void *buf, u32 buflen, u32 *size);
/* Delete the item with exactly this key.  Returns 0, 1 if absent, <0. */
int trans_delete_item(struct trans *t, struct trans_root *root, const struct btrfs_key *key);

/*
 * Create an empty regular file in directory dir: inode item, inode ref, dir
 * item and dir index, parent size and times.  Flags are inherited from the
 * directory as the kernel does.  In a plain directory ctx is NULL and name
 * (nlen bytes) the name.  In an encrypted one (Documentation/format.rst
 * section 8), name is the stored ciphertext and ctx the new inode's
 * context: the entries get type bit 0x80, the inode the ENCRYPT flag and
 * its context item.  Returns 0 with *ino, -EEXIST if the name exists, or <0.
 */
int inode_create_file(struct trans *t, struct trans_root *root, u64 dir, const void *name,
		      size_t nlen, const struct fscrypt_context_v2 *ctx, u32 mode, u32 uid,
		      u32 gid, u64 now_sec, u32 now_nsec, u64 *ino);

#endif
