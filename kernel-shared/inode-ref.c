// SPDX-License-Identifier: GPL-2.0
/* Inode back references: INODE_REF and INODE_EXTREF (see inode-ref.h). */
#include <errno.h>
#include <string.h>
#include "kernel-shared/inode-ref.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/dir-item.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/transaction.h"

u32 inode_ref_entry_len(const u8 *item, u32 size, u32 pos, bool ext)
{
	u32 fixed = ext ? sizeof(struct btrfs_inode_extref) : sizeof(struct btrfs_inode_ref);
	u16 nl;

	if (pos > size || size - pos < fixed)
		return 0;
	/* name_len is the last field of both headers. */
	memcpy(&nl, item + pos + fixed - sizeof(nl), sizeof(nl));
	nl = le16_to_cpu(nl);
	return (u64)fixed + nl > size - pos ? 0 : fixed + nl;
}

int inode_ref_find_index(const u8 *item, u32 size, u64 index, u32 *pos, u32 *len)
{
	u32 at = 0, l;

	while ((l = inode_ref_entry_len(item, size, at, false))) {
		const struct btrfs_inode_ref *r = (const void *)(item + at);

		if (le64_to_cpu(r->index) == index) {
			*pos = at;
			*len = l;
			return 0;
		}
		at += l;
	}
	return 1;
}

int inode_extref_find(const u8 *item, u32 size, u64 parent, const void *name, u32 nl,
		      u32 *pos, u32 *len)
{
	u32 at = 0, l;

	while ((l = inode_ref_entry_len(item, size, at, true))) {
		const struct btrfs_inode_extref *x = (const void *)(item + at);

		if (le64_to_cpu(x->parent_objectid) == parent && le16_to_cpu(x->name_len) == nl &&
		    !memcmp(x + 1, name, nl)) {
			*pos = at;
			*len = l;
			return 0;
		}
		at += l;
	}
	return 1;
}

int inode_ref_first(struct fs_info *fs, const struct root_ref *root, u64 ino, u64 *parent,
		    char *name, u16 *name_len)
{
	struct btrfs_key min = { ino, BTRFS_INODE_REF_KEY, 0 };
	struct btrfs_key max = { ino, BTRFS_INODE_EXTREF_KEY, (u64)-1 };
	struct key_iter it;
	bool ext;
	u32 len;
	int ret;

	ret = key_iter_first(&it, fs, root, &min, &max);
	if (ret) {
		key_iter_release(&it);
		return ret;
	}
	ext = it.key.type == BTRFS_INODE_EXTREF_KEY;
	len = inode_ref_entry_len(it.ptr, it.size, 0, ext);
	if (!len || len > (ext ? sizeof(struct btrfs_inode_extref) :
			   sizeof(struct btrfs_inode_ref)) + BTRFS_NAME_LEN) {
		key_iter_release(&it);
		return fs_err(fs, -EUCLEAN, "inode %llu in tree %llu: %s", (unsigned long long)ino,
			      (unsigned long long)root->objectid,
			      len ? "inode ref name longer than 255 bytes" : "truncated inode ref");
	}
	if (ext) {
		const struct btrfs_inode_extref *x = (const void *)it.ptr;

		*parent = le64_to_cpu(x->parent_objectid);
		*name_len = le16_to_cpu(x->name_len);
		memcpy(name, x + 1, *name_len);
	} else {
		const struct btrfs_inode_ref *r = (const void *)it.ptr;

		*parent = it.key.offset;
		*name_len = le16_to_cpu(r->name_len);
		memcpy(name, r + 1, *name_len);
	}
	key_iter_release(&it);
	return 0;
}

int inode_extref_insert(struct trans *t, struct trans_root *root, u64 ino, u64 parent,
			u64 index, const void *name, u32 nl)
{
	struct btrfs_key key = { ino, BTRFS_INODE_EXTREF_KEY, btrfs_extref_hash(parent, name, nl) };
	u8 buf[sizeof(struct btrfs_inode_extref) + BTRFS_NAME_LEN];
	struct btrfs_inode_extref *x = (void *)buf;

	if (nl > BTRFS_NAME_LEN)
		return fs_err(t->fs, -ENAMETOOLONG, "inode %llu: a name of %u bytes", ino, nl);
	x->parent_objectid = cpu_to_le64(parent);
	x->index = cpu_to_le64(index);
	x->name_len = cpu_to_le16(nl);
	memcpy(x + 1, name, nl);
	return item_append_entry(t, root, &key, buf, sizeof(*x) + nl);
}

struct extref_arg {
	u64 parent;
	const void *name;
	u32 nl;
};

static int find_extref(const u8 *item, u32 size, const void *arg, u32 *pos, u32 *len)
{
	const struct extref_arg *a = arg;

	return inode_extref_find(item, size, a->parent, a->name, a->nl, pos, len);
}

int inode_extref_remove(struct trans *t, struct trans_root *root, u64 ino, u64 parent,
			const void *name, u32 nl)
{
	struct btrfs_key key = { ino, BTRFS_INODE_EXTREF_KEY, btrfs_extref_hash(parent, name, nl) };
	struct extref_arg a = { parent, name, nl };
	int ret = item_remove_entry(t, root, &key, find_extref, &a);

	return ret == DIR_ITEM_NO_ENTRY ? 1 : ret;
}
