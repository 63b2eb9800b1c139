// SPDX-License-Identifier: GPL-2.0
/* Data checksum items: EXTENT_CSUM (-10, 128, logical of the first sector). */
#include <errno.h>
#include <string.h>
#include "kernel-shared/file-item.h"
#include "kernel-shared/ctree-mod.h"

/*
 * The csum item with the highest start below end, if it reaches past
 * start.  Returns 0 with its key and covered length, 1 if none, <0 on error.
 */
static int overlapping_item(struct trans *t, struct trans_root *cr, u64 start, u64 end,
			    struct btrfs_key *k, u64 *covered)
{
	struct fs_info *fs = t->fs;
	struct btrfs_key key = { BTRFS_EXTENT_CSUM_OBJECTID, BTRFS_EXTENT_CSUM_KEY, end - 1 };
	struct btrfs_path p;
	int ret = search_slot(fs, &cr->ref, &key, &p);

	if (ret < 0)
		return ret;
	if (ret == 1)
		ret = prev_item(fs, &p);
	if (ret == 0) {
		path_key(&p, k);
		*covered = (u64)(path_size(&p) / fs->csum_size) * fs->sectorsize;
		if (k->objectid != BTRFS_EXTENT_CSUM_OBJECTID || k->type != BTRFS_EXTENT_CSUM_KEY ||
		    k->offset + *covered <= start)
			ret = 1;
	}
	path_release(fs, &p);
	return ret;
}

int csum_delete_range(struct trans *t, u64 start, u64 len)
{
	struct fs_info *fs = t->fs;
	struct trans_root *cr = trans_get_root(t, BTRFS_CSUM_TREE_OBJECTID);
	u64 end = start + len;

	if (!cr)
		return trans_root_err(t);
	for (;;) {
		struct btrfs_key k;
		struct btrfs_path p;
		u64 covered, istart, iend;
		int ret = overlapping_item(t, cr, start, end, &k, &covered);

		if (ret)
			return ret > 0 ? 0 : ret;
		istart = k.offset;
		iend = istart + covered;
		ret = search_slot_mod(t, cr, &k, &p, -1);
		if (ret) {
			path_release(fs, &p);
			return ret < 0 ? ret : -EUCLEAN;
		}
		if (istart >= start && iend <= end) {
			ret = del_items(t, cr, &p, 1);
		} else if (istart < start && iend > end) {
			/* Split: keep the head here, re-insert the tail after the range. */
			u32 head = (start - istart) / fs->sectorsize * fs->csum_size;
			u32 skip = (end - istart) / fs->sectorsize * fs->csum_size;
			u32 tail = path_size(&p) - skip;
			u8 buf[65536];
			struct btrfs_key tk = k;

			memcpy(buf, path_ptr(&p) + skip, tail);
			ret = resize_item(t, cr, &p, head);
			path_release(fs, &p);
			if (ret)
				return ret;
			tk.offset = end;
			ret = insert_item(t, cr, &tk, buf, tail);
			if (ret)
				return ret;
			continue;
		} else if (istart < start) {
			ret = resize_item(t, cr, &p, (start - istart) / fs->sectorsize * fs->csum_size);
		} else {
			/* Cut the head: shift the kept csums down, shrink, move the key. */
			u32 skip = (end - istart) / fs->sectorsize * fs->csum_size;
			u8 *ptr = path_ptr_mut(&p);
			struct btrfs_key nk = k;

			memmove(ptr, ptr + skip, path_size(&p) - skip);
			ret = resize_item(t, cr, &p, path_size(&p) - skip);
			nk.offset = end;
			if (!ret)
				ret = set_item_key(t, &p, &nk);
		}
		path_release(fs, &p);
		if (ret)
			return ret;
	}
}

/*
 * Grow the csum item that ends exactly at start, as the kernel does for
 * data written right after csummed data: as many of the csums as its leaf
 * has room for, up to per_item sectors in the item.  Returns the number of
 * sectors taken (0: no such item, or no room), or a negative errno.
 */
static long csum_extend_prev(struct trans *t, struct trans_root *cr, u64 start, const u8 *csums,
			     u64 nsectors, u64 per_item)
{
	struct fs_info *fs = t->fs;
	struct btrfs_key key = { BTRFS_EXTENT_CSUM_OBJECTID, BTRFS_EXTENT_CSUM_KEY, start }, k;
	struct btrfs_path p;
	u64 have, n = 0;
	u32 size;
	int ret = search_slot_mod(t, cr, &key, &p, 0);

	if (ret < 0 || p.slots[0] == 0)
		goto out;
	p.slots[0]--;
	path_key(&p, &k);
	size = path_size(&p);
	have = size / fs->csum_size;
	if (k.objectid != BTRFS_EXTENT_CSUM_OBJECTID || k.type != BTRFS_EXTENT_CSUM_KEY ||
	    size % fs->csum_size || k.offset + have * fs->sectorsize != start || have >= per_item)
		goto out;
	n = leaf_free_space(fs, p.nodes[0]) / fs->csum_size;
	if (n > nsectors)
		n = nsectors;
	if (n > per_item - have)
		n = per_item - have;
	if (n) {
		ret = resize_item(t, cr, &p, size + n * fs->csum_size);
		if (!ret)
			memcpy(path_ptr_mut(&p) + size, csums, n * fs->csum_size);
	}
out:
	path_release(fs, &p);
	return ret < 0 ? ret : (long)n;
}

int csum_insert(struct trans *t, u64 start, const u8 *csums, u64 nsectors)
{
	struct fs_info *fs = t->fs;
	struct trans_root *cr = trans_get_root(t, BTRFS_CSUM_TREE_OBJECTID);
	/* Items of at most this many sectors keep well inside one leaf. */
	u64 per_item = (max_item_size(fs) / 2) / fs->csum_size;
	long took;
	int ret;

	if (!cr)
		return trans_root_err(t);
	ret = csum_delete_range(t, start, nsectors * fs->sectorsize);
	if (ret)
		return ret;
	took = csum_extend_prev(t, cr, start, csums, nsectors, per_item);
	if (took < 0)
		return took;
	csums += took * fs->csum_size;
	start += took * fs->sectorsize;
	nsectors -= took;
	while (!ret && nsectors) {
		u64 n = nsectors < per_item ? nsectors : per_item;
		struct btrfs_key key = { BTRFS_EXTENT_CSUM_OBJECTID, BTRFS_EXTENT_CSUM_KEY, start };

		ret = insert_item(t, cr, &key, csums, n * fs->csum_size);
		csums += n * fs->csum_size;
		start += n * fs->sectorsize;
		nsectors -= n;
	}
	return ret;
}

long csum_lookup_range(struct fs_info *fs, const struct root_ref *csum_root, u64 start,
		       u64 nsectors, u8 *out, u8 *present)
{
	struct btrfs_key key = { BTRFS_EXTENT_CSUM_OBJECTID, BTRFS_EXTENT_CSUM_KEY, start };
	u64 end = start + nsectors * fs->sectorsize;
	struct btrfs_path p;
	long found = 0;
	int ret = search_slot(fs, csum_root, &key, &p);

	if (present)
		memset(present, 0, nsectors);

	if (ret < 0)
		return ret;
	/* The item before may cover the start. */
	if (ret == 1 && (ret = prev_item(fs, &p)) < 0) {
		path_release(fs, &p);
		return ret;
	}
	for (ret = 0; path_item_valid(&p); ) {
		struct btrfs_key k;
		u64 istart, iend;

		path_key(&p, &k);
		if (k.objectid != BTRFS_EXTENT_CSUM_OBJECTID || k.type != BTRFS_EXTENT_CSUM_KEY) {
			if (k.objectid > BTRFS_EXTENT_CSUM_OBJECTID)
				break;
		} else {
			istart = k.offset;
			iend = istart + (u64)(path_size(&p) / fs->csum_size) * fs->sectorsize;
			if (istart >= end)
				break;
			for (u64 a = istart > start ? istart : start; a < iend && a < end;
			     a += fs->sectorsize) {
				memcpy(out + (a - start) / fs->sectorsize * fs->csum_size,
				       path_ptr(&p) + (a - istart) / fs->sectorsize * fs->csum_size,
				       fs->csum_size);
				if (present)
					present[(a - start) / fs->sectorsize] = 1;
				found++;
			}
		}
		ret = next_item(fs, &p);
		if (ret)
			break;
	}
	path_release(fs, &p);
	return ret < 0 ? ret : found;
}
