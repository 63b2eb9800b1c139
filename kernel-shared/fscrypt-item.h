/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fscrypt items of a subvolume tree (Documentation/format.rst):
 * FSCRYPT_INODE_CTX (41), an encrypted inode's fscrypt_context_v2 at
 * (ino, 41, 0), and FSCRYPT_CTX (42), the per-extent context of an
 * encrypted regular or prealloc EXTENT_DATA item at (ino, 42, its offset).
 * A 42 item lives and dies with its EXTENT_DATA item: it is inserted,
 * deleted and moved with it.
 *
 * Reads work on any tree (a transaction's current tree is &root->ref);
 * what a missing or bad item means is the caller's to say.
 */
#ifndef EXTCRYPT_FSCRYPT_ITEM_H
#define EXTCRYPT_FSCRYPT_ITEM_H

#include <stdbool.h>
#include "common/fscrypt-format.h"
#include "kernel-shared/ondisk.h"

struct fs_info;
struct root_ref;
struct trans;
struct trans_root;

/* The item exists but is too small to hold its context. */
#define FSCRYPT_ITEM_SHORT 2

/*
 * The inode context of ino into *ctx.  Returns 0, 1 if absent,
 * FSCRYPT_ITEM_SHORT if smaller than a v2 context, or <0.
 */
int fscrypt_inode_ctx_read(struct fs_info *fs, const struct root_ref *root, u64 ino,
			   struct fscrypt_context_v2 *ctx);
/* Insert ino's inode context.  Returns 0, -EEXIST, or <0. */
int fscrypt_inode_ctx_insert(struct trans *t, struct trans_root *root, u64 ino,
			     const struct fscrypt_context_v2 *ctx);
/* Delete ino's inode context.  Returns 0, 1 if absent, <0. */
int fscrypt_inode_ctx_delete(struct trans *t, struct trans_root *root, u64 ino);

/*
 * The extent context of the EXTENT_DATA item at (ino, off): up to
 * FSCRYPT_EXTENT_CONTEXT_MAX_SIZE bytes into buf, the item's size in
 * *size.  Returns 0, 1 if absent, FSCRYPT_ITEM_SHORT if smaller than
 * FSCRYPT_EXTENT_CONTEXT_SIZE, or <0.  (An item above the maximum is the
 * tree-checker's to refuse; *size tells.)
 */
int fscrypt_extent_ctx_read(struct fs_info *fs, const struct root_ref *root, u64 ino, u64 off,
			    u8 *buf, u32 *size);
/* Insert the extent context of the item at (ino, off).  Returns 0, -EEXIST, or <0. */
int fscrypt_extent_ctx_insert(struct trans *t, struct trans_root *root, u64 ino, u64 off,
			      const void *ctx, u32 size);
/* Delete the extent context at (ino, off).  Returns 0, 1 if absent, <0. */
int fscrypt_extent_ctx_delete(struct trans *t, struct trans_root *root, u64 ino, u64 off);
/*
 * The EXTENT_DATA item at (ino, from) moved to (ino, to): its context
 * (ctx, size bytes, as read before) moves with it.  Returns 0 or <0
 * (1 if there was none at from).
 */
int fscrypt_extent_ctx_move(struct trans *t, struct trans_root *root, u64 ino, u64 from, u64 to,
			    const void *ctx, u32 size);

/* Whether an EXTENT_DATA item has a 42 item: encrypted, and not inline. */
bool file_extent_has_ctx(const struct btrfs_file_extent_item *fe);

/*
 * Insert an EXTENT_DATA item at (ino, off) and, when it has one, its
 * context (ctx, ctx_size bytes).  Returns 0 or the first insert_item()
 * error (-EEXIST if either exists).
 */
int file_extent_insert_with_ctx(struct trans *t, struct trans_root *root, u64 ino, u64 off,
				const void *item, u32 size, const void *ctx, u32 ctx_size);
/*
 * Delete the EXTENT_DATA item at (ino, off) and, if with_ctx, its context.
 * Returns 0, 1 if one is absent, or <0.
 */
int file_extent_delete_with_ctx(struct trans *t, struct trans_root *root, u64 ino, u64 off,
				bool with_ctx);

#endif
