// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of B-tree edits (kernel-shared/ctree-mod.c) at the boundaries:
 * insert and delete at slot 0 and at the last slot, a leaf split, a push to
 * a sibling, a merge, and root collapse.  Each test edits the csum tree of a
 * fresh mkfs.btrfs image (empty, 4 KiB nodes, so a leaf holds 31 items of
 * 100 bytes) inside a transaction that is aborted at the end: nothing is
 * written.  After each edit the whole tree is walked (levels, generations,
 * parent keys equal to child first keys, keys in order, no empty non-root
 * block), every key that should be there is found by search_slot() with its
 * data intact, and the shape (height, items per leaf) is what the edit must
 * give.  The same trees test the key-range iterator of ctree.c (key_iter_*):
 * empty ranges, ranges over several leaves, the first and the last leaf,
 * and an error inside the range.  Without mkfs.btrfs the tests say so and
 * pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kernel-shared/ctree.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

#define BT_TREE BTRFS_CSUM_TREE_OBJECTID
#define BT_OBJECTID 1000ULL
#define BT_DATA 100		/* item data bytes: 125 with the item header */
#define BT_PER_LEAF 31		/* (4096 - 101) / 125 */
#define BT_MAX_OFF 50000	/* keys are (BT_OBJECTID, TEMPORARY_ITEM, 0..BT_MAX_OFF-1) */
#define BT_MAX_LEAVES 256

struct bt {
	struct fs_info *fs;
	struct trans *t;
	struct trans_root *root;
	unsigned char present[BT_MAX_OFF];	/* the keys the tree must hold */
	u32 count;
};

/* What a walk of the tree found. */
struct bt_shape {
	int height;			/* root level + 1 */
	u32 blocks[BTRFS_MAX_LEVEL];	/* blocks per level */
	u32 leaf_items[BT_MAX_LEAVES];	/* items of each leaf, left to right */
	u32 items;
	bool ordered;
	struct btrfs_key last;
};

static struct btrfs_key bt_key(u32 off)
{
	return (struct btrfs_key){ BT_OBJECTID, BTRFS_TEMPORARY_ITEM_KEY, off };
}

static void bt_fill(u8 *buf, u32 off)
{
	for (u32 i = 0; i < BT_DATA; i++)
		buf[i] = (u8)(off * 7 + i);
}

static bool bt_begin(struct bt *b)
{
	CHECK_EQ_INT(trans_begin(b->fs, &b->t), 0);
	if (!b->t)
		return false;
	b->root = trans_get_root(b->t, BT_TREE);
	CHECK(b->root != NULL);
	memset(b->present, 0, sizeof(b->present));
	b->count = 0;
	return b->root != NULL;
}

/* A fresh image, opened for writing, with a transaction on its empty csum tree. */
static bool bt_open(struct bt *b)
{
	memset(b, 0, sizeof(*b));
	b->fs = scratch_image_open();
	if (!b->fs)
		return false;
	return bt_begin(b);
}

/* Drop every change: the tree is empty again. */
static bool bt_reset(struct bt *b)
{
	trans_abort(b->t);
	b->t = NULL;
	return bt_begin(b);
}

static void bt_close(struct bt *b)
{
	if (b->t)
		trans_abort(b->t);
	if (b->fs)
		close_image(b->fs);
}

static int bt_insert(struct bt *b, u32 off)
{
	struct btrfs_key key = bt_key(off);
	u8 data[BT_DATA];
	int ret;

	bt_fill(data, off);
	ret = insert_item(b->t, b->root, &key, data, sizeof(data));
	CHECK_EQ_INT(ret, 0);
	if (!ret) {
		b->present[off] = 1;
		b->count++;
	}
	return ret;
}

/* Insert offsets from, from + step, ... (n of them) in this order. */
static void bt_insert_run(struct bt *b, u32 from, u32 step, u32 n)
{
	for (u32 i = 0; i < n; i++)
		if (bt_insert(b, from + i * step))
			return;
}

static int bt_delete(struct bt *b, u32 off)
{
	struct btrfs_key key = bt_key(off);
	struct btrfs_path p;
	int ret;

	memset(&p, 0, sizeof(p));
	ret = search_slot_mod(b->t, b->root, &key, &p, -1);
	CHECK_EQ_INT(ret, 0);
	if (!ret)
		ret = del_items(b->t, b->root, &p, 1);
	CHECK_EQ_INT(ret, 0);
	path_release(b->fs, &p);
	if (!ret) {
		b->present[off] = 0;
		b->count--;
	}
	return ret;
}

/* The slot search_slot() finds off at, and the item count of its leaf. */
static void bt_slot(struct bt *b, u32 off, u32 *slot, u32 *nritems)
{
	struct btrfs_key key = bt_key(off);
	struct btrfs_path p;

	memset(&p, 0, sizeof(p));
	*slot = *nritems = (u32)-1;
	CHECK_EQ_INT(search_slot(b->fs, &b->root->ref, &key, &p), 0);
	if (p.nodes[0]) {
		*slot = p.slots[0];
		*nritems = tb_nritems(p.nodes[0]);
	}
	path_release(b->fs, &p);
}

static void walk_leaf(const struct tree_block *tb, struct bt_shape *s)
{
	u32 n = tb_nritems(tb);

	if (s->blocks[0] <= BT_MAX_LEAVES)
		s->leaf_items[s->blocks[0] - 1] = n;
	for (u32 slot = 0; slot < n; slot++) {
		struct btrfs_key k;

		tb_item_key(tb, slot, &k);
		if (s->items && btrfs_comp_keys(&s->last, &k) >= 0)
			s->ordered = false;
		s->last = k;
		s->items++;
	}
}

/* Read a block as its parent describes it (read_tree_block checks that). */
static int walk_block(struct fs_info *fs, u64 bytenr, int level, u64 gen,
		      const struct btrfs_key *first, struct bt_shape *s)
{
	struct block_check chk = { .level = level, .generation = gen, .first_key = first };
	struct tree_block *tb;
	int ret = read_tree_block(fs, bytenr, &chk, &tb);

	if (ret) {
		unit_fail(__FILE__, __LINE__, "block %llu: %s", (unsigned long long)bytenr,
			  fs_errmsg(fs));
		return ret;
	}
	s->blocks[level]++;
	if (level == 0) {
		walk_leaf(tb, s);
	} else {
		for (u32 slot = 0; slot < tb_nritems(tb) && !ret; slot++) {
			struct btrfs_key k;

			tb_node_key(tb, slot, &k);
			ret = walk_block(fs, tb_node_blockptr(tb, slot), level - 1,
					 tb_node_gen(tb, slot), &k, s);
		}
	}
	tree_block_put(fs, tb);
	return ret;
}

/*
 * Walk the whole tree into s, and find every key that must be there, with
 * its data, and no other.  Returns false if anything is wrong (reported).
 */
static bool bt_verify(struct bt *b, struct bt_shape *s)
{
	const struct root_ref *ref = &b->root->ref;
	u32 found = 0, failures = 0;

	memset(s, 0, sizeof(*s));
	s->ordered = true;
	s->height = ref->level + 1;
	if (walk_block(b->fs, ref->bytenr, ref->level, ref->generation, NULL, s))
		return false;
	CHECK(s->ordered);
	CHECK_EQ_INT(s->items, b->count);
	for (u32 off = 0; off < BT_MAX_OFF; off++) {
		struct btrfs_key key = bt_key(off);
		struct btrfs_path p;
		u8 want[BT_DATA];
		int ret;

		memset(&p, 0, sizeof(p));
		ret = search_slot(b->fs, ref, &key, &p);
		if (ret == 0) {
			bt_fill(want, off);
			if (!b->present[off] || path_size(&p) != BT_DATA ||
			    memcmp(path_ptr(&p), want, BT_DATA))
				failures++;
			found++;
		} else if (ret != 1 || b->present[off]) {
			failures++;
		}
		path_release(b->fs, &p);
	}
	CHECK_EQ_INT(failures, 0);
	CHECK_EQ_INT(found, b->count);
	return s->ordered && s->items == b->count && !failures && found == b->count;
}

/* Check the shape: height and the item count of each leaf (n leaves). */
static void bt_expect(struct bt *b, int height, u32 n, const u32 *leaf_items)
{
	struct bt_shape s;

	char got[256] = "", want[256] = "";
	size_t gl = 0, wl = 0;

	if (!bt_verify(b, &s))
		return;
	for (u32 i = 0; i < s.blocks[0] && i < BT_MAX_LEAVES && gl < sizeof(got) - 12; i++)
		gl += snprintf(got + gl, sizeof(got) - gl, " %u", s.leaf_items[i]);
	for (u32 i = 0; i < n && wl < sizeof(want) - 12; i++)
		wl += snprintf(want + wl, sizeof(want) - wl, " %u", leaf_items[i]);
	if (s.height != height || strcmp(got, want))
		unit_fail(__FILE__, __LINE__, "height %d, leaves:%s; expected height %d, leaves:%s",
			  s.height, got, height, want);
}

#define BT_EXPECT(b, height, ...)						\
	do {									\
		const u32 _items[] = { __VA_ARGS__ };				\
		bt_expect(b, height, sizeof(_items) / sizeof(_items[0]), _items); \
	} while (0)

/* Run body on a fresh tree, then drop the transaction and the image. */
static void bt_run(void (*body)(struct bt *b))
{
	struct bt *b = calloc(1, sizeof(*b));

	CHECK(b != NULL);
	if (b && bt_open(b))
		body(b);
	if (b)
		bt_close(b);
	free(b);
}

static void insert_first_and_last_slot(struct bt *b)
{
	u32 slot, n;

	BT_EXPECT(b, 1, 0);
	bt_insert_run(b, 100, 100, 3);		/* 100 200 300 */
	bt_insert(b, 50);			/* before everything */
	bt_slot(b, 50, &slot, &n);
	CHECK_EQ_INT(slot, 0);
	bt_insert(b, 400);			/* after everything */
	bt_slot(b, 400, &slot, &n);
	CHECK_EQ_INT(slot, n - 1);
	BT_EXPECT(b, 1, 5);

	/* Two leaves: the tree's last slot, then slot 0 of the full first leaf. */
	if (!bt_reset(b))
		return;
	bt_insert_run(b, 10, 10, 2 * BT_PER_LEAF - 2);	/* 10..310, 320..600 */
	BT_EXPECT(b, 2, BT_PER_LEAF, BT_PER_LEAF - 2);
	bt_insert(b, 615);
	bt_slot(b, 615, &slot, &n);
	CHECK_EQ_INT(slot, n - 1);
	CHECK_EQ_INT(n, BT_PER_LEAF - 1);
	bt_insert(b, 5);			/* 310 moves right to make room */
	bt_slot(b, 5, &slot, &n);
	CHECK_EQ_INT(slot, 0);
	BT_EXPECT(b, 2, BT_PER_LEAF, BT_PER_LEAF);
	/* Both leaves full: slot 0 gets a new leaf of its own on the left. */
	bt_insert(b, 1);
	bt_slot(b, 1, &slot, &n);
	CHECK_EQ_INT(slot, 0);
	BT_EXPECT(b, 2, 1, BT_PER_LEAF, BT_PER_LEAF);
}

UNIT_TEST(ctree_mod_insert_first_and_last_slot)
{
	bt_run(insert_first_and_last_slot);
}

static void delete_first_and_last_slot(struct bt *b)
{
	bt_insert_run(b, 10, 10, 10);		/* 10 .. 100 */
	bt_delete(b, 10);
	bt_delete(b, 100);
	BT_EXPECT(b, 1, 8);

	/* Slot 0 of the second leaf (its parent key must follow) and the last slot. */
	if (!bt_reset(b))
		return;
	bt_insert_run(b, 10, 10, 2 * BT_PER_LEAF);	/* 10 .. 620 */
	BT_EXPECT(b, 2, BT_PER_LEAF, BT_PER_LEAF);
	bt_delete(b, 320);
	bt_delete(b, 330);
	bt_delete(b, 620);
	bt_delete(b, 10);			/* slot 0 of the tree */
	BT_EXPECT(b, 2, BT_PER_LEAF - 1, BT_PER_LEAF - 3);
}

UNIT_TEST(ctree_mod_delete_first_and_last_slot)
{
	bt_run(delete_first_and_last_slot);
}

static void leaf_split(struct bt *b)
{
	bt_insert_run(b, 10, 10, BT_PER_LEAF);
	BT_EXPECT(b, 1, BT_PER_LEAF);
	/* Appending to a full root leaf: a new root above two leaves. */
	bt_insert(b, 10 * (BT_PER_LEAF + 1));
	BT_EXPECT(b, 2, BT_PER_LEAF, 1);

	/* In the middle of a full leaf whose neighbours are full too: split by bytes. */
	if (!bt_reset(b))
		return;
	bt_insert_run(b, 10, 10, 2 * BT_PER_LEAF);
	bt_insert(b, 155);			/* 16 items stay left (half the bytes), 155 joins them */
	BT_EXPECT(b, 2, 17, 15, BT_PER_LEAF);
}

UNIT_TEST(ctree_mod_leaf_split)
{
	bt_run(leaf_split);
}

static void push_to_sibling(struct bt *b)
{
	/* Room on the left: the full right leaf gives its first item instead of splitting. */
	bt_insert_run(b, 10, 10, 2 * BT_PER_LEAF);	/* leaves 10..310, 320..620 */
	bt_delete(b, 100);
	bt_delete(b, 110);
	bt_delete(b, 120);
	BT_EXPECT(b, 2, BT_PER_LEAF - 3, BT_PER_LEAF);
	bt_insert(b, 345);
	BT_EXPECT(b, 2, BT_PER_LEAF - 2, BT_PER_LEAF);

	/* Room on the right: the full left leaf gives its last item. */
	if (!bt_reset(b))
		return;
	bt_insert_run(b, 10, 10, 2 * BT_PER_LEAF);
	bt_delete(b, 400);
	bt_delete(b, 410);
	bt_delete(b, 420);
	bt_insert(b, 155);
	BT_EXPECT(b, 2, BT_PER_LEAF, BT_PER_LEAF - 2);
}

UNIT_TEST(ctree_mod_push_to_sibling)
{
	bt_run(push_to_sibling);
}

static void merge(struct bt *b)
{
	/* Three full leaves: 10..310, 320..620, 630..930. */
	bt_insert_run(b, 10, 10, 3 * BT_PER_LEAF);
	BT_EXPECT(b, 2, BT_PER_LEAF, BT_PER_LEAF, BT_PER_LEAF);
	/* Make room in the first leaf (still over a quarter full: no merge). */
	for (u32 off = 110; off <= 200; off += 10)
		bt_delete(b, off);
	BT_EXPECT(b, 2, BT_PER_LEAF - 10, BT_PER_LEAF, BT_PER_LEAF);
	/* Shrink the middle leaf: at 8 items (1000 bytes) it stays ... */
	for (u32 off = 400; off < 400 + 10 * (BT_PER_LEAF - 8); off += 10)
		bt_delete(b, off);
	BT_EXPECT(b, 2, BT_PER_LEAF - 10, 8, BT_PER_LEAF);
	/* ... at 7 (875 bytes, under a quarter) it merges into its left sibling. */
	bt_delete(b, 320);
	BT_EXPECT(b, 2, BT_PER_LEAF - 10 + 7, BT_PER_LEAF);
}

UNIT_TEST(ctree_mod_merge)
{
	bt_run(merge);
}

static void root_collapse(struct bt *b)
{
	struct bt_shape s;
	u32 left, x = 12345;

	/* Two leaves merging leave a root node with one pointer: the leaf becomes the root. */
	bt_insert_run(b, 10, 10, 2 * BT_PER_LEAF);	/* 10..310, 320..620 */
	for (u32 off = 20; off <= 260; off += 10)
		bt_delete(b, off);		/* first leaf: 6 items, no room for 31 */
	for (u32 off = 330; off <= 550; off += 10)
		bt_delete(b, off);
	BT_EXPECT(b, 2, 6, 8);
	bt_delete(b, 560);			/* 7 items: merged left, root collapses */
	BT_EXPECT(b, 1, 6 + 7);

	/* Three levels (over 121 leaves), then deleted in a scattered order. */
	if (!bt_reset(b))
		return;
	bt_insert_run(b, 0, 10, 4000);
	if (!bt_verify(b, &s))
		return;
	CHECK_EQ_INT(s.height, 3);
	for (left = 4000; left > 5; ) {
		u32 off;

		x = x * 1103515245 + 12345;
		off = (x >> 8) % 4000 * 10;
		if (!b->present[off])
			continue;
		if (bt_delete(b, off))
			return;
		left--;
		if (left == 2000 || left == 200) {
			bt_verify(b, &s);
			CHECK(s.height >= 2);
		}
	}
	BT_EXPECT(b, 1, 5);
	for (u32 off = 0; off < 40000; off += 10)
		if (b->present[off])
			bt_delete(b, off);
	BT_EXPECT(b, 1, 0);			/* an empty root leaf */
}

UNIT_TEST(ctree_mod_root_collapse)
{
	bt_run(root_collapse);
}

/* ---- the key-range iterator (kernel-shared/ctree.c) ---------------------- */

/* What one run of the iterator over [from, to] of BT_OBJECTID saw. */
struct iter_run {
	int ret;		/* what ended it: 1 or an errno */
	u32 items, first, last;
	u32 leaves;		/* distinct leaves the items came from */
	bool data_ok;		/* keys in order, sizes and data as inserted */
};

static struct iter_run bt_iter(struct bt *b, u64 objectid, u32 from, u32 to)
{
	struct btrfs_key min = { objectid, BTRFS_TEMPORARY_ITEM_KEY, from };
	struct btrfs_key max = { objectid, BTRFS_TEMPORARY_ITEM_KEY, to };
	struct iter_run r = { .data_ok = true };
	struct key_iter it;
	u64 leaf = 0;
	int ret;

	for (ret = key_iter_first(&it, b->fs, &b->root->ref, &min, &max); ret == 0;
	     ret = key_iter_next(&it)) {
		u8 want[BT_DATA];
		u32 off = (u32)it.key.offset;

		bt_fill(want, off);
		if (it.key.objectid != objectid || it.key.type != BTRFS_TEMPORARY_ITEM_KEY ||
		    off < from || off > to || (r.items && off <= r.last) || !b->present[off] ||
		    it.size != BT_DATA || memcmp(it.ptr, want, BT_DATA))
			r.data_ok = false;
		if (!r.items)
			r.first = off;
		r.last = off;
		r.items++;
		if (it.path.nodes[0]->bytenr != leaf)
			r.leaves++;
		leaf = it.path.nodes[0]->bytenr;
	}
	key_iter_release(&it);
	r.ret = ret;
	return r;
}

/* How many keys of [from, to] the tree must hold. */
static u32 bt_present_in(const struct bt *b, u32 from, u32 to)
{
	u32 n = 0;

	for (u32 off = from; off <= to && off < BT_MAX_OFF; off++)
		n += b->present[off];
	return n;
}

static void key_iter_empty_ranges(struct bt *b)
{
	struct iter_run r = bt_iter(b, BT_OBJECTID, 0, BT_MAX_OFF);

	/* An empty tree. */
	CHECK_EQ_INT(r.ret, 1);
	CHECK_EQ_INT(r.items, 0);
	bt_insert_run(b, 10, 10, 3 * BT_PER_LEAF);	/* 10..930, three leaves or more */
	/* Between two keys, before the first, after the last, another objectid. */
	r = bt_iter(b, BT_OBJECTID, 11, 19);
	CHECK(r.ret == 1 && r.items == 0);
	r = bt_iter(b, BT_OBJECTID, 0, 9);
	CHECK(r.ret == 1 && r.items == 0);
	r = bt_iter(b, BT_OBJECTID, 931, BT_MAX_OFF);
	CHECK(r.ret == 1 && r.items == 0);
	r = bt_iter(b, BT_OBJECTID + 1, 0, BT_MAX_OFF);
	CHECK(r.ret == 1 && r.items == 0);
	r = bt_iter(b, BT_OBJECTID - 1, 0, BT_MAX_OFF);
	CHECK(r.ret == 1 && r.items == 0);
	/* max below min. */
	r = bt_iter(b, BT_OBJECTID, 500, 400);
	CHECK(r.ret == 1 && r.items == 0);
}

UNIT_TEST(key_iter_empty_range)
{
	bt_run(key_iter_empty_ranges);
}

static void key_iter_leaves(struct bt *b)
{
	const u32 n = 5 * BT_PER_LEAF;
	struct iter_run r;

	bt_insert_run(b, 10, 10, n);			/* 10 .. 10 * n */
	/* All of it: every leaf, in order. */
	r = bt_iter(b, BT_OBJECTID, 0, BT_MAX_OFF);
	CHECK_EQ_INT(r.ret, 1);
	CHECK(r.data_ok);
	CHECK_EQ_INT(r.items, n);
	CHECK(r.leaves >= 5);
	CHECK(r.first == 10 && r.last == 10 * n);
	/* A middle range over several leaves, bounds between keys and on keys. */
	r = bt_iter(b, BT_OBJECTID, 295, 1205);
	CHECK(r.ret == 1 && r.data_ok);
	CHECK_EQ_INT(r.items, bt_present_in(b, 295, 1205));
	CHECK(r.first == 300 && r.last == 1200 && r.leaves >= 3);
	r = bt_iter(b, BT_OBJECTID, 300, 1200);
	CHECK(r.ret == 1 && r.data_ok && r.first == 300 && r.last == 1200);
	CHECK_EQ_INT(r.items, bt_present_in(b, 300, 1200));
	/* The first leaf alone, from the tree's first key. */
	r = bt_iter(b, BT_OBJECTID, 0, 30);
	CHECK(r.ret == 1 && r.data_ok && r.items == 3 && r.leaves == 1 && r.first == 10);
	/* The last leaf, up to the tree's last key and past it. */
	r = bt_iter(b, BT_OBJECTID, 10 * n - 20, 10 * n);
	CHECK(r.ret == 1 && r.data_ok && r.items == 3 && r.last == 10 * n);
	r = bt_iter(b, BT_OBJECTID, 10 * n, BT_MAX_OFF);
	CHECK(r.ret == 1 && r.data_ok && r.items == 1 && r.first == 10 * n);
	/* One item. */
	r = bt_iter(b, BT_OBJECTID, 500, 500);
	CHECK(r.ret == 1 && r.data_ok && r.items == 1 && r.first == 500);
	/* key_iter_type(): one objectid and type, from an offset. */
	{
		struct key_iter it;
		u32 items = 0;
		int ret;

		for (ret = key_iter_type(&it, b->fs, &b->root->ref, BT_OBJECTID,
					 BTRFS_TEMPORARY_ITEM_KEY, 10 * n - 15);
		     ret == 0; ret = key_iter_next(&it))
			items++;
		key_iter_release(&it);
		CHECK_EQ_INT(ret, 1);
		CHECK_EQ_INT(items, 2);
	}
}

UNIT_TEST(key_iter_spans_leaves)
{
	bt_run(key_iter_leaves);
}

/*
 * An error inside the range is returned as such, after the items before
 * it, with fs_errmsg() set: the second leaf is made empty (in the
 * transaction's private copy), which reading it refuses.
 */
static void key_iter_corrupt(struct bt *b)
{
	struct btrfs_key key;
	struct btrfs_path p;
	struct iter_run r;
	u32 first_leaf;

	bt_insert_run(b, 10, 10, 3 * BT_PER_LEAF);
	bt_slot(b, 10, &(u32){ 0 }, &first_leaf);
	/* The first key of the second leaf. */
	key = bt_key(10 * (first_leaf + 1));
	memset(&p, 0, sizeof(p));
	CHECK_EQ_INT(search_slot(b->fs, &b->root->ref, &key, &p), 0);
	if (!p.nodes[0])
		return;
	CHECK_EQ_INT(p.slots[0], 0);
	((struct btrfs_header *)p.nodes[0]->data)->nritems = 0;
	path_release(b->fs, &p);
	fs_clear_err(b->fs);
	r = bt_iter(b, BT_OBJECTID, 0, BT_MAX_OFF);
	CHECK_EQ_INT(r.ret, -EUCLEAN);
	CHECK(r.data_ok);
	CHECK_EQ_INT(r.items, first_leaf);
	/* "tree block N: empty, parent expects a first key" */
	if (!strstr(fs_errmsg(b->fs), "empty"))
		unit_fail(__FILE__, __LINE__, "error text: %s", fs_errmsg(b->fs));
	/*
	 * A range that ends before the first leaf's last item never reads the
	 * second (one that ends on it does: the next key tells the end).
	 */
	r = bt_iter(b, BT_OBJECTID, 0, 10 * (first_leaf - 1));
	CHECK(r.ret == 1 && r.data_ok && r.items == first_leaf - 1);
}

UNIT_TEST(key_iter_error_in_range)
{
	bt_run(key_iter_corrupt);
}
