// SPDX-License-Identifier: GPL-2.0
/* Directory items: DIR_ITEM and DIR_INDEX (see dir-item.h). */
#include <errno.h>
#include <string.h>
#include "kernel-shared/dir-item.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/disk-io.h"

u32 dir_entry_len(const u8 *item, u32 size, u32 pos)
{
	const struct btrfs_dir_item *di = (const void *)(item + pos);
	u64 len;

	if (pos > size || size - pos < sizeof(*di))
		return 0;
	len = sizeof(*di) + (u64)le16_to_cpu(di->name_len) + le16_to_cpu(di->data_len);
	return len > size - pos ? 0 : (u32)len;
}

int dir_item_find(const u8 *item, u32 size, const void *name, u32 nl, u32 *pos, u32 *len)
{
	u32 at = 0;

	while (at + sizeof(struct btrfs_dir_item) <= size) {
		const struct btrfs_dir_item *di = (const void *)(item + at);
		u32 l = dir_entry_len(item, size, at);

		if (!l)
			return -EUCLEAN;
		if (le16_to_cpu(di->name_len) == nl && memcmp(di + 1, name, nl) == 0) {
			*pos = at;
			*len = l;
			return 0;
		}
		at += l;
	}
	return DIR_ITEM_NO_ENTRY;
}

u32 dir_entry_fill(u8 *buf, const struct btrfs_key *location, u64 transid, u8 type,
		   const void *name, u32 nl)
{
	struct btrfs_dir_item *di = (void *)buf;

	memset(di, 0, sizeof(*di));
	btrfs_cpu_key_to_disk(&di->location, location);
	di->transid = cpu_to_le64(transid);
	di->name_len = cpu_to_le16(nl);
	di->type = type;
	memcpy(di + 1, name, nl);
	return sizeof(*di) + nl;
}

int item_append_entry(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		      const u8 *entry, u32 len)
{
	struct btrfs_path p;
	int ret = insert_item(t, root, key, entry, len);

	if (ret != -EEXIST)
		return ret;
	ret = search_slot_mod(t, root, key, &p, len);
	if (!ret) {
		u32 old = path_size(&p);

		ret = resize_item(t, root, &p, old + len);
		if (!ret)
			memcpy(path_ptr_mut(&p) + old, entry, len);
	}
	path_release(t->fs, &p);
	return ret > 0 ? -EUCLEAN : ret;
}

int item_cut_entry(struct trans *t, struct trans_root *root, struct btrfs_path *p, u32 pos,
		   u32 len)
{
	u8 *ptr = path_ptr_mut(p);
	u32 size = path_size(p);
	int ret;

	if (len == size) {
		ret = del_items(t, root, p, 1);
	} else {
		memmove(ptr + pos, ptr + pos + len, size - pos - len);
		ret = resize_item(t, root, p, size - len);
	}
	path_release(t->fs, p);
	return ret;
}

int dir_item_insert(struct trans *t, struct trans_root *root, u64 dir, const void *name,
		    u32 nl, const u8 *entry, u32 len)
{
	struct btrfs_key key = { dir, BTRFS_DIR_ITEM_KEY, btrfs_name_hash(name, nl) };

	return item_append_entry(t, root, &key, entry, len);
}

int dir_index_insert(struct trans *t, struct trans_root *root, u64 dir, u64 index,
		     const u8 *entry, u32 len)
{
	struct btrfs_key key = { dir, BTRFS_DIR_INDEX_KEY, index };

	return insert_item(t, root, &key, entry, len);
}

int item_remove_entry(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		      item_entry_find_fn find, const void *arg)
{
	struct btrfs_path p;
	u32 pos, len;
	int ret = search_slot_mod(t, root, key, &p, -1);

	if (ret) {
		path_release(t->fs, &p);
		return ret;
	}
	if (find(path_ptr(&p), path_size(&p), arg, &pos, &len)) {
		path_release(t->fs, &p);
		return DIR_ITEM_NO_ENTRY;
	}
	return item_cut_entry(t, root, &p, pos, len);
}

struct name_arg {
	const void *name;
	u32 nl;
};

static int find_dir_entry(const u8 *item, u32 size, const void *arg, u32 *pos, u32 *len)
{
	const struct name_arg *a = arg;

	return dir_item_find(item, size, a->name, a->nl, pos, len);
}

int dir_item_remove(struct trans *t, struct trans_root *root, u64 dir, const void *name,
		    u32 nl)
{
	struct btrfs_key key = { dir, BTRFS_DIR_ITEM_KEY, btrfs_name_hash(name, nl) };
	struct name_arg a = { name, nl };

	return item_remove_entry(t, root, &key, find_dir_entry, &a);
}

int dir_lookup(struct fs_info *fs, const struct root_ref *root, u64 dir,
	       const char *name, size_t name_len, struct btrfs_key *location, u8 *type)
{
	struct btrfs_key key = { dir, BTRFS_DIR_ITEM_KEY, btrfs_name_hash(name, name_len) };
	struct btrfs_path p;
	u32 pos, len;
	int ret;

	ret = search_slot(fs, root, &key, &p);
	if (ret)
		goto out;
	/* Hash collisions share one item: find the entry among them. */
	ret = dir_item_find(path_ptr(&p), path_size(&p), name, name_len, &pos, &len);
	if (ret == -EUCLEAN) {
		ret = fs_err(fs, -EUCLEAN, "dir %llu in tree %llu: truncated dir item",
			     (unsigned long long)dir, (unsigned long long)root->objectid);
	} else if (ret) {
		ret = 1;
	} else {
		const struct btrfs_dir_item *di = (const void *)(path_ptr(&p) + pos);

		btrfs_disk_key_to_cpu(location, &di->location);
		*type = di->type;
	}
out:
	path_release(fs, &p);
	return ret;
}
