// SPDX-License-Identifier: GPL-2.0
/*
 * Free-space tree maintenance (Documentation/format.rst 2.9): every allocation removes a
 * range from its block group's free space, every free adds one back, in
 * extent form (FREE_SPACE_EXTENT items) or bitmap form (FREE_SPACE_BITMAP),
 * with the kernel's conversion thresholds between the two.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "kernel-shared/free-space-tree.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"

#define FST_BITMAP_BYTES 256
#define FST_BITMAP_BITS (FST_BITMAP_BYTES * 8)

struct fst_bg {
	struct trans *t;
	struct trans_root *root;
	u64 start, len;
	u32 count, flags;
};

static int fst_load_info(struct fst_bg *g)
{
	struct btrfs_key key = { g->start, BTRFS_FREE_SPACE_INFO_KEY, g->len };
	struct btrfs_free_space_info info;
	u32 size;
	int ret = lookup_item(g->t->fs, &g->root->ref, &key, &info, sizeof(info), &size);

	if (ret)
		return ret < 0 ? ret : fs_err(g->t->fs, -EUCLEAN,
					      "free space tree: no info item for block group %llu",
					      g->start);
	if (size < sizeof(info))
		return fs_err(g->t->fs, -EUCLEAN, "free space info of block group %llu too small",
			      g->start);
	g->count = le32_to_cpu(info.extent_count);
	g->flags = le32_to_cpu(info.flags);
	return 0;
}

static int fst_store_info(struct fst_bg *g)
{
	struct btrfs_key key = { g->start, BTRFS_FREE_SPACE_INFO_KEY, g->len };
	struct btrfs_free_space_info *info;
	struct btrfs_path p;
	int ret = search_slot_mod(g->t, g->root, &key, &p, 0);

	if (ret) {
		path_release(g->t->fs, &p);
		return ret < 0 ? ret : -EUCLEAN;
	}
	info = (void *)path_ptr_mut(&p);
	info->extent_count = cpu_to_le32(g->count);
	info->flags = cpu_to_le32(g->flags);
	path_release(g->t->fs, &p);
	return 0;
}

static int fst_delete_key(struct fst_bg *g, const struct btrfs_key *key)
{
	struct btrfs_path p;
	int ret = search_slot_mod(g->t, g->root, key, &p, -1);

	if (!ret)
		ret = del_items(g->t, g->root, &p, 1);
	path_release(g->t->fs, &p);
	return ret > 0 ? fs_err(g->t->fs, -EUCLEAN, "free space item (%llu %u %llu) vanished",
				key->objectid, key->type, key->offset) : ret;
}

static int fst_insert_extent(struct fst_bg *g, u64 start, u64 len)
{
	struct btrfs_key key = { start, BTRFS_FREE_SPACE_EXTENT_KEY, len };

	return insert_item(g->t, g->root, &key, NULL, 0);
}

/*
 * The last item at or before (objectid, type, (u64)-1).  Returns 0 with *k,
 * 1 if there is none, <0 on error.
 */
static int fst_item_before(struct fst_bg *g, u64 objectid, u8 type, struct btrfs_key *k)
{
	struct btrfs_key key = { objectid, type, (u64)-1 };
	struct btrfs_path p;
	int ret = search_slot(g->t->fs, &g->root->ref, &key, &p);

	if (ret < 0)
		return ret;
	if (ret == 1)
		ret = prev_item(g->t->fs, &p);
	if (ret == 0)
		path_key(&p, k);
	path_release(g->t->fs, &p);
	return ret;
}

/* Free extent starting exactly at start, if any (its length in *len). */
static int fst_extent_at(struct fst_bg *g, u64 start, u64 *len)
{
	struct btrfs_key key = { start, BTRFS_FREE_SPACE_EXTENT_KEY, 0 }, k;
	struct btrfs_path p;
	int ret = search_slot(g->t->fs, &g->root->ref, &key, &p);

	if (ret < 0)
		return ret;
	ret = 1;
	if (path_item_valid(&p)) {
		path_key(&p, &k);
		if (k.objectid == start && k.type == BTRFS_FREE_SPACE_EXTENT_KEY) {
			*len = k.offset;
			ret = 0;
		}
	}
	path_release(g->t->fs, &p);
	return ret;
}

static int extent_remove(struct fst_bg *g, u64 s, u64 e)
{
	struct btrfs_key k;
	u64 es, ee;
	int ret = fst_item_before(g, s, BTRFS_FREE_SPACE_EXTENT_KEY, &k);

	if (ret < 0)
		return ret;
	if (ret || k.type != BTRFS_FREE_SPACE_EXTENT_KEY || k.objectid + k.offset < e ||
	    k.objectid < g->start)
		return fs_err(g->t->fs, -EUCLEAN,
			      "free space tree: range [%llu, %llu) is not free", s, e);
	es = k.objectid;
	ee = k.objectid + k.offset;
	ret = fst_delete_key(g, &k);
	if (!ret && es < s)
		ret = fst_insert_extent(g, es, s - es);
	if (!ret && e < ee)
		ret = fst_insert_extent(g, e, ee - e);
	if (ret)
		return ret;
	g->count += (es < s) + (e < ee) - 1;
	return 0;
}

static int extent_add(struct fst_bg *g, u64 s, u64 e)
{
	struct btrfs_key k;
	u64 ns = s, ne = e, rlen;
	int merged = 0, ret;

	if (s > g->start) {
		ret = fst_item_before(g, s - 1, BTRFS_FREE_SPACE_EXTENT_KEY, &k);
		if (ret < 0)
			return ret;
		if (!ret && k.type == BTRFS_FREE_SPACE_EXTENT_KEY && k.objectid >= g->start) {
			if (k.objectid + k.offset > s)
				return fs_err(g->t->fs, -EUCLEAN,
					      "free space tree: range [%llu, %llu) is already free", s, e);
			if (k.objectid + k.offset == s) {
				ret = fst_delete_key(g, &k);
				if (ret)
					return ret;
				ns = k.objectid;
				merged++;
			}
		}
	}
	if (e < g->start + g->len) {
		ret = fst_extent_at(g, e, &rlen);
		if (ret < 0)
			return ret;
		if (!ret) {
			struct btrfs_key rk = { e, BTRFS_FREE_SPACE_EXTENT_KEY, rlen };

			ret = fst_delete_key(g, &rk);
			if (ret)
				return ret;
			ne = e + rlen;
			merged++;
		}
	}
	ret = fst_insert_extent(g, ns, ne - ns);
	if (ret)
		return ret == -EEXIST ? fs_err(g->t->fs, -EUCLEAN,
					       "free space tree: range [%llu, %llu) is already free",
					       s, e) : ret;
	g->count += 1 - merged;
	return 0;
}

/* ---- bitmap form ------------------------------------------------------ */

static u64 bitmap_range(const struct fs_info *fs)
{
	return (u64)fs->sectorsize * FST_BITMAP_BITS;
}

/* Read bit for sector at x (1 = free).  x must lie inside the group. */
static int bitmap_get(struct fst_bg *g, u64 x, bool *free_bit)
{
	struct fs_info *fs = g->t->fs;
	struct btrfs_key k;
	u8 buf[FST_BITMAP_BYTES];
	u32 size;
	u64 bit;
	int ret = fst_item_before(g, x, BTRFS_FREE_SPACE_BITMAP_KEY, &k);

	if (ret < 0)
		return ret;
	if (ret || k.type != BTRFS_FREE_SPACE_BITMAP_KEY || x >= k.objectid + k.offset)
		return fs_err(fs, -EUCLEAN, "free space tree: no bitmap covers %llu", x);
	ret = lookup_item(fs, &g->root->ref, &k, buf, sizeof(buf), &size);
	if (ret)
		return ret < 0 ? ret : -EUCLEAN;
	bit = (x - k.objectid) / fs->sectorsize;
	if (bit / 8 >= size)
		return fs_err(fs, -EUCLEAN, "free space bitmap %llu too small", k.objectid);
	*free_bit = buf[bit / 8] & (1 << (bit % 8));
	return 0;
}

/* Set (free) or clear (allocated) the bits of [s, e), checking their old state. */
static int bitmap_flip(struct fst_bg *g, u64 s, u64 e, bool make_free)
{
	struct fs_info *fs = g->t->fs;

	while (s < e) {
		struct btrfs_key k;
		struct btrfs_path p;
		u8 *bits;
		u64 stop;
		int ret = fst_item_before(g, s, BTRFS_FREE_SPACE_BITMAP_KEY, &k);

		if (ret < 0)
			return ret;
		if (ret || k.type != BTRFS_FREE_SPACE_BITMAP_KEY || s >= k.objectid + k.offset)
			return fs_err(fs, -EUCLEAN, "free space tree: no bitmap covers %llu", s);
		ret = search_slot_mod(g->t, g->root, &k, &p, 0);
		if (ret) {
			path_release(fs, &p);
			return ret < 0 ? ret : -EUCLEAN;
		}
		bits = path_ptr_mut(&p);
		stop = e < k.objectid + k.offset ? e : k.objectid + k.offset;
		for (; s < stop; s += fs->sectorsize) {
			u64 bit = (s - k.objectid) / fs->sectorsize;
			bool was = bits[bit / 8] & (1 << (bit % 8));

			if (bit / 8 >= path_size(&p) || was == make_free) {
				path_release(fs, &p);
				return fs_err(fs, -EUCLEAN, "free space tree: sector %llu is already %s",
					      s, make_free ? "free" : "allocated");
			}
			bits[bit / 8] ^= 1 << (bit % 8);
		}
		path_release(fs, &p);
	}
	return 0;
}

static int bitmap_change(struct fst_bg *g, u64 s, u64 e, bool make_free)
{
	bool before = false, after = false;
	int ret;

	if (s > g->start && (ret = bitmap_get(g, s - g->t->fs->sectorsize, &before)))
		return ret;
	if (e < g->start + g->len && (ret = bitmap_get(g, e, &after)))
		return ret;
	ret = bitmap_flip(g, s, e, make_free);
	if (ret)
		return ret;
	/* A free run is split or created (free), or joined or removed (allocated). */
	if (make_free)
		g->count += 1 - (int)before - (int)after;
	else
		g->count += (int)before + (int)after - 1;
	return 0;
}

/* ---- conversions --------------------------------------------------------- */

static void thresholds(const struct fst_bg *g, u32 *low, u32 *high)
{
	u64 range = bitmap_range(g->t->fs);
	u64 nbitmaps = (g->len + range - 1) / range;
	u64 total = nbitmaps * (sizeof(struct btrfs_item) + FST_BITMAP_BYTES);

	*high = total / sizeof(struct btrfs_item);
	*low = *high > 100 ? *high - 100 : 0;
}

/* Free sectors of the group as a bitmap (1 = free), from either form. */
static int load_free_bitmap(struct fst_bg *g, u8 *map)
{
	struct fs_info *fs = g->t->fs;
	struct btrfs_key key = { g->start, BTRFS_FREE_SPACE_INFO_KEY, g->len };
	struct btrfs_path p;
	int ret = search_slot(fs, &g->root->ref, &key, &p);

	if (ret < 0)
		return ret;
	for (ret = next_item(fs, &p); ret == 0; ret = next_item(fs, &p)) {
		struct btrfs_key k;

		path_key(&p, &k);
		if (k.objectid >= g->start + g->len ||
		    (k.type != BTRFS_FREE_SPACE_EXTENT_KEY && k.type != BTRFS_FREE_SPACE_BITMAP_KEY))
			break;
		for (u64 x = k.objectid; x < k.objectid + k.offset && x < g->start + g->len;
		     x += fs->sectorsize) {
			u64 bit = (x - g->start) / fs->sectorsize;
			bool f = true;

			if (k.type == BTRFS_FREE_SPACE_BITMAP_KEY) {
				u64 b = (x - k.objectid) / fs->sectorsize;

				f = b / 8 < path_size(&p) && (path_ptr(&p)[b / 8] & (1 << (b % 8)));
			}
			if (f)
				map[bit / 8] |= 1 << (bit % 8);
		}
	}
	path_release(fs, &p);
	return ret < 0 ? ret : 0;
}

/* Delete every extent / bitmap item of the group. */
static int delete_group_items(struct fst_bg *g)
{
	for (;;) {
		struct btrfs_key key = { g->start, BTRFS_FREE_SPACE_INFO_KEY, g->len }, k;
		struct btrfs_path p;
		int ret = search_slot(g->t->fs, &g->root->ref, &key, &p);

		if (ret < 0)
			return ret;
		ret = next_item(g->t->fs, &p);
		if (ret == 0)
			path_key(&p, &k);
		path_release(g->t->fs, &p);
		if (ret < 0)
			return ret;
		if (ret > 0 || k.objectid >= g->start + g->len ||
		    (k.type != BTRFS_FREE_SPACE_EXTENT_KEY && k.type != BTRFS_FREE_SPACE_BITMAP_KEY))
			return 0;
		ret = fst_delete_key(g, &k);
		if (ret)
			return ret;
	}
}

static int convert(struct fst_bg *g, bool to_bitmaps)
{
	struct fs_info *fs = g->t->fs;
	u64 nbits = g->len / fs->sectorsize;
	u8 *map = fault_calloc(nbits / 8 + 2, 1);
	u32 count = 0;
	int ret;

	if (!map)
		return fs_err(fs, -ENOMEM, "out of memory");
	ret = load_free_bitmap(g, map);
	if (!ret)
		ret = delete_group_items(g);
	for (u64 i = 0; !ret && i < nbits; ) {
		if (!(map[i / 8] & (1 << (i % 8)))) {
			i++;
			continue;
		}
		u64 j = i;

		while (j < nbits && (map[j / 8] & (1 << (j % 8))))
			j++;
		count++;
		if (!to_bitmaps)
			ret = fst_insert_extent(g, g->start + i * fs->sectorsize, (j - i) * fs->sectorsize);
		i = j;
	}
	if (!ret && to_bitmaps) {
		u64 range = bitmap_range(fs);

		for (u64 off = 0; !ret && off < g->len; off += range) {
			u64 len = g->len - off < range ? g->len - off : range;
			u64 first = off / fs->sectorsize, n = len / fs->sectorsize;
			u8 bits[FST_BITMAP_BYTES] = { 0 };
			struct btrfs_key key = { g->start + off, BTRFS_FREE_SPACE_BITMAP_KEY, len };

			for (u64 b = 0; b < n; b++)
				if (map[(first + b) / 8] & (1 << ((first + b) % 8)))
					bits[b / 8] |= 1 << (b % 8);
			ret = insert_item(g->t, g->root, &key, bits, (n + 7) / 8);
		}
	}
	free(map);
	if (ret)
		return ret;
	g->count = count;
	if (to_bitmaps)
		g->flags |= BTRFS_FREE_SPACE_USING_BITMAPS;
	else
		g->flags &= ~BTRFS_FREE_SPACE_USING_BITMAPS;
	return 0;
}

static int fst_change(struct trans *t, u64 start, u64 len, bool make_free)
{
	struct fst_bg g = { .t = t };
	u64 flags;
	u32 low, high;
	int ret;

	g.root = trans_get_root(t, BTRFS_FREE_SPACE_TREE_OBJECTID);
	if (!g.root)
		return trans_root_err(t);
	ret = block_group_of(t, start, &g.start, &g.len, &flags);
	if (ret && ret != -ENOENT)
		return ret;
	if (ret)
		return fs_err(t->fs, -EUCLEAN, "range %llu is outside every block group", start);
	ret = fst_load_info(&g);
	if (ret)
		return ret;
	if (g.flags & BTRFS_FREE_SPACE_USING_BITMAPS)
		ret = bitmap_change(&g, start, start + len, make_free);
	else if (make_free)
		ret = extent_add(&g, start, start + len);
	else
		ret = extent_remove(&g, start, start + len);
	if (ret)
		return ret;
	thresholds(&g, &low, &high);
	if (!(g.flags & BTRFS_FREE_SPACE_USING_BITMAPS) && g.count > high)
		ret = convert(&g, true);
	else if ((g.flags & BTRFS_FREE_SPACE_USING_BITMAPS) && g.count < low)
		ret = convert(&g, false);
	if (ret)
		return ret;
	return fst_store_info(&g);
}

int fst_remove_range(struct trans *t, u64 start, u64 len)
{
	return fst_change(t, start, len, false);
}

int fst_add_range(struct trans *t, u64 start, u64 len)
{
	return fst_change(t, start, len, true);
}

int fst_add_group(struct trans *t, u64 start, u64 len)
{
	struct btrfs_key key = { start, BTRFS_FREE_SPACE_INFO_KEY, len };
	struct btrfs_free_space_info info = { cpu_to_le32(1), 0 };
	struct fst_bg g = { .t = t, .start = start, .len = len };
	int ret;

	g.root = trans_get_root(t, BTRFS_FREE_SPACE_TREE_OBJECTID);
	if (!g.root)
		return trans_root_err(t);
	ret = insert_item(t, g.root, &key, &info, sizeof(info));
	return ret ? ret : fst_insert_extent(&g, start, len);
}

int fst_remove_group(struct trans *t, u64 start, u64 len)
{
	struct btrfs_key key = { start, BTRFS_FREE_SPACE_INFO_KEY, len };
	struct fst_bg g = { .t = t, .start = start, .len = len };
	int ret;

	g.root = trans_get_root(t, BTRFS_FREE_SPACE_TREE_OBJECTID);
	if (!g.root)
		return trans_root_err(t);
	ret = delete_group_items(&g);
	return ret ? ret : fst_delete_key(&g, &key);
}
