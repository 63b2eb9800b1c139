// SPDX-License-Identifier: GPL-2.0
/* The fscrypt items 41 and 42 (see fscrypt-item.h). */
#include <string.h>
#include "kernel-shared/fscrypt-item.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/disk-io.h"

int fscrypt_inode_ctx_read(struct fs_info *fs, const struct root_ref *root, u64 ino,
			   struct fscrypt_context_v2 *ctx)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };
	u32 size;
	int ret = lookup_item(fs, root, &key, ctx, sizeof(*ctx), &size);

	if (!ret && size < sizeof(*ctx))
		return FSCRYPT_ITEM_SHORT;
	return ret;
}

int fscrypt_inode_ctx_insert(struct trans *t, struct trans_root *root, u64 ino,
			     const struct fscrypt_context_v2 *ctx)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };

	return insert_item(t, root, &key, ctx, sizeof(*ctx));
}

int fscrypt_inode_ctx_delete(struct trans *t, struct trans_root *root, u64 ino)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };

	return trans_delete_item(t, root, &key);
}

int fscrypt_extent_ctx_read(struct fs_info *fs, const struct root_ref *root, u64 ino, u64 off,
			    u8 *buf, u32 *size)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_CTX_KEY, off };
	int ret = lookup_item(fs, root, &key, buf, FSCRYPT_EXTENT_CONTEXT_MAX_SIZE, size);

	if (!ret && *size < FSCRYPT_EXTENT_CONTEXT_SIZE)
		return FSCRYPT_ITEM_SHORT;
	return ret;
}

int fscrypt_extent_ctx_insert(struct trans *t, struct trans_root *root, u64 ino, u64 off,
			      const void *ctx, u32 size)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_CTX_KEY, off };

	return insert_item(t, root, &key, ctx, size);
}

int fscrypt_extent_ctx_delete(struct trans *t, struct trans_root *root, u64 ino, u64 off)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_CTX_KEY, off };

	return trans_delete_item(t, root, &key);
}

int fscrypt_extent_ctx_move(struct trans *t, struct trans_root *root, u64 ino, u64 from, u64 to,
			    const void *ctx, u32 size)
{
	int ret = fscrypt_extent_ctx_delete(t, root, ino, from);

	if (!ret)
		ret = fscrypt_extent_ctx_insert(t, root, ino, to, ctx, size);
	return ret;
}

bool file_extent_has_ctx(const struct btrfs_file_extent_item *fe)
{
	return fe->encryption && fe->type != BTRFS_FILE_EXTENT_INLINE;
}

int file_extent_insert_with_ctx(struct trans *t, struct trans_root *root, u64 ino, u64 off,
				const void *item, u32 size, const void *ctx, u32 ctx_size)
{
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, off };
	int ret = insert_item(t, root, &key, item, size);

	if (!ret && file_extent_has_ctx(item))
		ret = fscrypt_extent_ctx_insert(t, root, ino, off, ctx, ctx_size);
	return ret;
}

int file_extent_delete_with_ctx(struct trans *t, struct trans_root *root, u64 ino, u64 off,
				bool with_ctx)
{
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, off };
	int ret = trans_delete_item(t, root, &key);

	if (!ret && with_ctx)
		ret = fscrypt_extent_ctx_delete(t, root, ino, off);
	return ret;
}
