// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include "kernel-shared/inode.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/dir-item.h"
#include "kernel-shared/fscrypt-item.h"
#include <sys/stat.h>

int trans_lookup(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		 void *buf, u32 buflen, u32 *size)
{
	return lookup_item(t->fs, &root->ref, key, buf, buflen, size);
}

int trans_inode_read(struct trans *t, struct trans_root *root, u64 ino,
		     struct btrfs_inode_item *ii)
{
	struct btrfs_key key = { ino, BTRFS_INODE_ITEM_KEY, 0 };
	u32 size;
	int ret;

	memset(ii, 0, sizeof(*ii));
	ret = trans_lookup(t, root, &key, ii, sizeof(*ii), &size);
	if (ret)
		return ret;
	if (size < sizeof(*ii))
		return fs_err(t->fs, -EUCLEAN, "inode %llu in tree %llu: item too small", ino,
			      root->ref.objectid);
	return 0;
}

int trans_inode_write(struct trans *t, struct trans_root *root, u64 ino,
		      const struct btrfs_inode_item *ii)
{
	struct btrfs_key key = { ino, BTRFS_INODE_ITEM_KEY, 0 };
	struct btrfs_path p;
	int ret = search_slot_mod(t, root, &key, &p, 0);

	if (ret == 0)
		memcpy(path_ptr_mut(&p), ii, sizeof(*ii));
	path_release(t->fs, &p);
	return ret > 0 ? fs_err(t->fs, -EUCLEAN, "inode %llu vanished", ino) : ret;
}

int trans_delete_item(struct trans *t, struct trans_root *root, const struct btrfs_key *key)
{
	struct btrfs_path p;
	int ret = search_slot_mod(t, root, key, &p, -1);

	if (ret == 0)
		ret = del_items(t, root, &p, 1);
	path_release(t->fs, &p);
	return ret;
}

/* Highest objectid used in a tree (for a new inode number). */
static int highest_objectid(struct trans *t, struct trans_root *root, u64 *out)
{
	struct btrfs_key key = { BTRFS_LAST_FREE_OBJECTID, (u8)-1, (u64)-1 }, k;
	struct btrfs_path p;
	int ret = search_slot(t->fs, &root->ref, &key, &p);

	if (ret < 0)
		return ret;
	*out = BTRFS_FIRST_FREE_OBJECTID;
	ret = prev_item(t->fs, &p);
	if (ret == 0) {
		path_key(&p, &k);
		if (k.objectid >= BTRFS_FIRST_FREE_OBJECTID && k.objectid <= BTRFS_LAST_FREE_OBJECTID)
			*out = k.objectid;
	}
	path_release(t->fs, &p);
	return ret < 0 ? ret : 0;
}

/* Next free DIR_INDEX of a directory (indexes start at 2). */
static int next_dir_index(struct trans *t, struct trans_root *root, u64 dir, u64 *out)
{
	struct btrfs_key key = { dir, BTRFS_DIR_INDEX_KEY, (u64)-1 }, k;
	struct btrfs_path p;
	int ret = search_slot(t->fs, &root->ref, &key, &p);

	if (ret < 0)
		return ret;
	*out = 2;
	ret = prev_item(t->fs, &p);
	if (ret == 0) {
		path_key(&p, &k);
		if (k.objectid == dir && k.type == BTRFS_DIR_INDEX_KEY)
			*out = k.offset + 1;
	}
	path_release(t->fs, &p);
	return ret < 0 ? ret : 0;
}

int inode_create_file(struct trans *t, struct trans_root *root, u64 dir, const void *name,
		      size_t nlen, const struct fscrypt_context_v2 *ctx, u32 mode, u32 uid,
		      u32 gid, u64 now_sec, u32 now_nsec, u64 *ino)
{
	struct fs_info *fs = t->fs;
	struct btrfs_inode_item pi, ii;
	struct btrfs_key loc, key;
	u8 buf[sizeof(struct btrfs_dir_item) + BTRFS_NAME_LEN];
	u32 elen;
	u8 type;
	u64 index, pflags, flags = 0;
	int ret;

	if (!nlen || nlen > BTRFS_NAME_LEN || (!ctx && (memchr(name, '/', nlen) || memchr(name, 0, nlen))))
		return fs_err(fs, -EINVAL, "invalid file name '%.*s'", (int)nlen, (const char *)name);
	ret = trans_inode_read(t, root, dir, &pi);
	if (ret)
		return ret < 0 ? ret : fs_err(fs, -ENOENT, "directory %llu not found", dir);
	if (!S_ISDIR(le32_to_cpu(pi.mode)))
		return fs_err(fs, -ENOTDIR, "inode %llu is not a directory", dir);
	pflags = le64_to_cpu(pi.flags);
	if (!(pflags & BTRFS_INODE_ENCRYPT) != !ctx)
		return fs_err(fs, -EOPNOTSUPP, ctx ? "directory %llu is not encrypted" :
			      "cannot create a file in encrypted directory %llu without its key",
			      (unsigned long long)dir);
	ret = dir_lookup(fs, &root->ref, dir, name, nlen, &loc, &type);
	if (ret <= 0)
		return ret ? ret : fs_err(fs, -EEXIST, "the name already exists in directory %llu",
					  (unsigned long long)dir);
	ret = highest_objectid(t, root, ino);
	if (!ret)
		ret = next_dir_index(t, root, dir, &index);
	if (ret)
		return ret;
	(*ino)++;
	/* btrfs_inherit_iflags(): nodatacow implies nodatasum; compression settings pass on. */
	if (pflags & BTRFS_INODE_NODATACOW)
		flags |= BTRFS_INODE_NODATACOW | BTRFS_INODE_NODATASUM;
	flags |= pflags & (BTRFS_INODE_COMPRESS | BTRFS_INODE_NOCOMPRESS);
	if (ctx)
		flags |= BTRFS_INODE_ENCRYPT;
	memset(&ii, 0, sizeof(ii));
	ii.generation = cpu_to_le64(t->transid);
	ii.transid = cpu_to_le64(t->transid);
	ii.nlink = cpu_to_le32(1);
	ii.uid = cpu_to_le32(uid);
	ii.gid = cpu_to_le32(gid);
	ii.mode = cpu_to_le32(S_IFREG | (mode & 07777));
	ii.flags = cpu_to_le64(flags);
	ii.atime.sec = ii.ctime.sec = ii.mtime.sec = ii.otime.sec = cpu_to_le64(now_sec);
	ii.atime.nsec = ii.ctime.nsec = ii.mtime.nsec = ii.otime.nsec = cpu_to_le32(now_nsec);
	key = (struct btrfs_key){ *ino, BTRFS_INODE_ITEM_KEY, 0 };
	ret = insert_item(t, root, &key, &ii, sizeof(ii));
	if (!ret && ctx)
		ret = fscrypt_inode_ctx_insert(t, root, *ino, ctx);
	if (ret)
		return ret;
	{
		u8 rbuf[sizeof(struct btrfs_inode_ref) + BTRFS_NAME_LEN];
		struct btrfs_inode_ref *ref = (void *)rbuf;

		ref->index = cpu_to_le64(index);
		ref->name_len = cpu_to_le16(nlen);
		memcpy(ref + 1, name, nlen);
		key = (struct btrfs_key){ *ino, BTRFS_INODE_REF_KEY, dir };
		ret = insert_item(t, root, &key, rbuf, sizeof(*ref) + nlen);
		if (ret)
			return ret;
	}
	loc = (struct btrfs_key){ *ino, BTRFS_INODE_ITEM_KEY, 0 };
	elen = dir_entry_fill(buf, &loc, t->transid,
			      BTRFS_FT_REG_FILE | (ctx ? BTRFS_FT_ENCRYPTED : 0), name, nlen);
	ret = dir_item_insert(t, root, dir, name, nlen, buf, elen);
	if (ret)
		return ret;
	ret = dir_index_insert(t, root, dir, index, buf, elen);
	if (ret)
		return ret;
	pi.size = cpu_to_le64(le64_to_cpu(pi.size) + 2 * nlen);
	pi.transid = cpu_to_le64(t->transid);
	pi.sequence = cpu_to_le64(le64_to_cpu(pi.sequence) + 1);
	pi.mtime.sec = pi.ctime.sec = cpu_to_le64(now_sec);
	pi.mtime.nsec = pi.ctime.nsec = cpu_to_le32(now_nsec);
	return trans_inode_write(t, root, dir, &pi);
}
