// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of kernel-shared/backref.c: the bounds-checked decode steps of
 * every inline and keyed ref kind, a ref cut short at the end of its item
 * and an unknown type (errors, nothing read past the item), and the
 * iterator over one extent's inline then keyed refs in a scratch image's
 * tree (inside a transaction that is aborted: nothing is written).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel-shared/backref.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/disk-io.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

static void put64(u8 *p, u64 v)
{
	__le64 x = cpu_to_le64(v);

	memcpy(p, &x, sizeof(x));
}

static void put32(u8 *p, u32 v)
{
	__le32 x = cpu_to_le32(v);

	memcpy(p, &x, sizeof(x));
}

/* Inline refs written at p; each returns its size. */
static u32 mk_data_ref(u8 *p, u64 root, u64 ino, u64 off, u32 count)
{
	p[0] = BTRFS_EXTENT_DATA_REF_KEY;
	put64(p + 1, root);
	put64(p + 9, ino);
	put64(p + 17, off);
	put32(p + 25, count);
	return 29;
}

static u32 mk_off_ref(u8 *p, u8 type, u64 off)
{
	p[0] = type;
	put64(p + 1, off);
	return 9;
}

static u32 mk_shared_data_ref(u8 *p, u64 parent, u32 count)
{
	mk_off_ref(p, BTRFS_SHARED_DATA_REF_KEY, parent);
	put32(p + 9, count);
	return 13;
}

UNIT_TEST(backref_decode_inline_kinds)
{
	u8 buf[64];
	struct backref br;

	CHECK_EQ_INT(backref_decode_inline(buf, mk_data_ref(buf, 5, 257, 4096, 3), &br), 29);
	CHECK(br.kind == REF_DATA && br.is_inline && br.type == BTRFS_EXTENT_DATA_REF_KEY);
	CHECK(br.root == 5 && br.objectid == 257 && br.offset == 4096 && br.count == 3);
	CHECK(backref_seq(&br) == btrfs_extent_data_ref_hash(5, 257, 4096));

	CHECK_EQ_INT(backref_decode_inline(buf, mk_shared_data_ref(buf, 1 << 20, 7), &br), 13);
	CHECK(br.kind == REF_SHARED_DATA && br.parent == 1 << 20 && br.count == 7);

	CHECK_EQ_INT(backref_decode_inline(buf, mk_off_ref(buf, BTRFS_TREE_BLOCK_REF_KEY, 5), &br), 9);
	CHECK(br.kind == REF_TREE_BLOCK && br.root == 5 && br.count == 1 && backref_seq(&br) == 5);

	mk_off_ref(buf, BTRFS_SHARED_BLOCK_REF_KEY, 30 << 12);
	CHECK_EQ_INT(backref_decode_inline(buf, 9, &br), 9);
	CHECK(br.kind == REF_SHARED_BLOCK && br.parent == 30 << 12);

	mk_off_ref(buf, BTRFS_EXTENT_OWNER_REF_KEY, 256);
	CHECK_EQ_INT(backref_decode_inline(buf, 9, &br), 9);
	CHECK(br.kind == REF_OWNER && br.root == 256);
}

/* Cut short by one byte, every kind is BACKREF_TRUNCATED with its kind known. */
UNIT_TEST(backref_decode_inline_truncated)
{
	static const u8 types[] = { BTRFS_TREE_BLOCK_REF_KEY, BTRFS_EXTENT_OWNER_REF_KEY,
				    BTRFS_EXTENT_DATA_REF_KEY, BTRFS_SHARED_DATA_REF_KEY,
				    BTRFS_SHARED_BLOCK_REF_KEY };
	struct backref br;

	for (size_t i = 0; i < sizeof(types); i++) {
		u32 size = backref_inline_size(types[i]);
		/* Exactly size - 1 bytes on the heap: ASan sees any read past them. */
		u8 *p = malloc(size - 1);

		CHECK(p != NULL);
		if (!p)
			return;
		memset(p, 0xff, size - 1);
		p[0] = types[i];
		CHECK_EQ_INT(backref_decode_inline(p, size - 1, &br), BACKREF_TRUNCATED);
		CHECK_EQ_INT(br.type, types[i]);
		CHECK(br.is_inline);
		free(p);
	}
	CHECK_EQ_INT(backref_decode_inline((const u8 *)"", 0, &br), BACKREF_TRUNCATED);
}

UNIT_TEST(backref_decode_inline_unknown)
{
	u8 buf[29] = { 0 };
	struct backref br;

	/* The type is judged first: one byte of an unknown type is unknown. */
	buf[0] = 99;
	CHECK_EQ_INT(backref_decode_inline(buf, 1, &br), BACKREF_UNKNOWN);
	CHECK_EQ_INT(br.type, 99);
	buf[0] = BTRFS_EXTENT_ITEM_KEY;
	CHECK_EQ_INT(backref_decode_inline(buf, sizeof(buf), &br), BACKREF_UNKNOWN);
	CHECK_EQ_INT(backref_inline_size(99), 0);
}

UNIT_TEST(backref_decode_keyed_kinds)
{
	u8 buf[29];
	struct backref br;
	struct btrfs_key k = { 1 << 20, BTRFS_EXTENT_DATA_REF_KEY, 12345 };

	mk_data_ref(buf, 5, 258, 8192, 2);
	CHECK_EQ_INT(backref_decode_keyed(&k, buf + 1, 28, &br), 0);
	CHECK(br.kind == REF_DATA && !br.is_inline && br.root == 5 && br.objectid == 258 &&
	      br.offset == 8192 && br.count == 2);
	CHECK_EQ_INT(backref_decode_keyed(&k, buf + 1, 27, &br), BACKREF_TRUNCATED);
	CHECK(br.kind == REF_DATA);

	k.type = BTRFS_SHARED_DATA_REF_KEY;
	k.offset = 40960;
	put32(buf, 4);
	CHECK_EQ_INT(backref_decode_keyed(&k, buf, 4, &br), 0);
	CHECK(br.kind == REF_SHARED_DATA && br.parent == 40960 && br.count == 4);
	CHECK_EQ_INT(backref_decode_keyed(&k, buf, 3, &br), BACKREF_TRUNCATED);
	CHECK(br.kind == REF_SHARED_DATA && br.parent == 40960);

	k.type = BTRFS_TREE_BLOCK_REF_KEY;
	k.offset = 7;
	CHECK_EQ_INT(backref_decode_keyed(&k, NULL, 0, &br), 0);
	CHECK(br.kind == REF_TREE_BLOCK && br.root == 7 && br.count == 1);
	k.type = BTRFS_SHARED_BLOCK_REF_KEY;
	CHECK_EQ_INT(backref_decode_keyed(&k, NULL, 0, &br), 0);
	CHECK(br.kind == REF_SHARED_BLOCK && br.parent == 7);

	/* Not backref keys (an owner ref exists only inline). */
	k.type = BTRFS_EXTENT_OWNER_REF_KEY;
	CHECK_EQ_INT(backref_decode_keyed(&k, NULL, 0, &br), BACKREF_UNKNOWN);
	k.type = BTRFS_BLOCK_GROUP_ITEM_KEY;
	CHECK_EQ_INT(backref_decode_keyed(&k, NULL, 0, &br), BACKREF_UNKNOWN);
}

/* ---- the iterator, in a scratch image -------------------------------------- */

#define BR_X (1ULL << 20)

static bool br_open(struct scratch_tree *f)
{
	return scratch_tree_open(f, BTRFS_CSUM_TREE_OBJECTID);
}

static void br_put(struct scratch_tree *f, u64 objectid, u8 type, u64 offset, const u8 *data, u32 size)
{
	struct btrfs_key k = { objectid, type, offset };

	CHECK_EQ_INT(insert_item(f->t, f->root, &k, data, size), 0);
}

/* A data extent item at bytenr with the inline refs in refs (len bytes). */
static void br_put_extent(struct scratch_tree *f, u64 bytenr, const u8 *refs, u32 len)
{
	u8 item[256] = { 0 };

	put64(item, 9);					/* refs */
	put64(item + 8, 1);				/* generation */
	put64(item + 16, BTRFS_EXTENT_FLAG_DATA);	/* flags */
	memcpy(item + sizeof(struct btrfs_extent_item), refs, len);
	br_put(f, bytenr, BTRFS_EXTENT_ITEM_KEY, 4096, item, sizeof(struct btrfs_extent_item) + len);
}

/* Walk bytenr's refs from its extent item into out (at most max); returns the end code. */
static int br_walk(struct scratch_tree *f, u64 bytenr, struct backref *out, int max, int *nr)
{
	struct btrfs_key key = { bytenr, BTRFS_EXTENT_ITEM_KEY, 0 };
	struct backref_iter it;
	struct btrfs_path p;
	int ret = search_slot(f->fs, &f->root->ref, &key, &p);

	*nr = 0;
	CHECK(ret >= 0);
	backref_iter_init(&it, f->fs, &p, bytenr);
	while ((ret = backref_iter_next(&it, &out[*nr])) == 0 && *nr < max - 1)
		(*nr)++;
	if (ret == BACKREF_BAD && out[*nr].is_inline) {
		/* Past an inline error only by skipping the rest of the item. */
		(*nr)++;
		backref_iter_skip_inline(&it);
		while (*nr < max && (ret = backref_iter_next(&it, &out[*nr])) != 1 && ret >= 0)
			(*nr)++;
	} else if (ret == BACKREF_BAD) {
		(*nr)++;
		while (*nr < max && (ret = backref_iter_next(&it, &out[*nr])) != 1 && ret >= 0)
			(*nr)++;
	}
	path_release(f->fs, &p);
	return ret;
}

UNIT_TEST(backref_iter_inline_then_keyed)
{
	struct scratch_tree f;
	struct backref got[8];
	u8 refs[64], dref[28];
	u32 len = 0;
	int nr;

	if (!br_open(&f)) {
		scratch_tree_close(&f);
		return;
	}
	/* The keyed ref of the extent before must not be seen. */
	mk_data_ref(refs, 5, 300, 0, 1);
	br_put(&f, BR_X - 4096, BTRFS_EXTENT_DATA_REF_KEY, 1, refs + 1, 28);
	len += mk_data_ref(refs + len, 5, 257, 0, 2);
	len += mk_shared_data_ref(refs + len, 8192, 1);
	br_put_extent(&f, BR_X, refs, len);
	mk_data_ref(refs, 5, 258, 4096, 3);
	memcpy(dref, refs + 1, 28);
	br_put(&f, BR_X, BTRFS_EXTENT_DATA_REF_KEY, 77, dref, 28);
	put32(dref, 5);
	br_put(&f, BR_X, BTRFS_SHARED_DATA_REF_KEY, 16384, dref, 4);
	br_put(&f, BR_X, BTRFS_BLOCK_GROUP_ITEM_KEY, 1, dref, 4);	/* not a ref: skipped */
	br_put_extent(&f, BR_X + 4096, refs, mk_data_ref(refs, 5, 999, 0, 1));

	CHECK_EQ_INT(br_walk(&f, BR_X, got, 8, &nr), 1);
	CHECK_EQ_INT(nr, 4);
	if (nr == 4) {
		CHECK(got[0].kind == REF_DATA && got[0].is_inline && got[0].objectid == 257 &&
		      got[0].count == 2);
		CHECK(got[1].kind == REF_SHARED_DATA && got[1].is_inline && got[1].parent == 8192);
		CHECK(got[2].kind == REF_DATA && !got[2].is_inline && got[2].objectid == 258 &&
		      got[2].offset == 4096 && got[2].count == 3);
		CHECK(got[3].kind == REF_SHARED_DATA && !got[3].is_inline &&
		      got[3].parent == 16384 && got[3].count == 5);
	}
	scratch_tree_close(&f);
}

UNIT_TEST(backref_iter_errors)
{
	struct scratch_tree f;
	struct backref got[8];
	u8 refs[64];
	u32 len;
	int nr;

	if (!br_open(&f)) {
		scratch_tree_close(&f);
		return;
	}
	/* An inline data ref cut to 20 bytes, then a keyed shared data ref. */
	len = mk_off_ref(refs, BTRFS_TREE_BLOCK_REF_KEY, 5);
	mk_data_ref(refs + len, 5, 257, 0, 1);
	br_put_extent(&f, BR_X, refs, len + 20);
	put32(refs, 1);
	br_put(&f, BR_X, BTRFS_SHARED_DATA_REF_KEY, 8192, refs, 4);
	CHECK_EQ_INT(br_walk(&f, BR_X, got, 8, &nr), 1);
	CHECK_EQ_INT(nr, 3);
	if (nr == 3) {
		CHECK(got[0].kind == REF_TREE_BLOCK);
		CHECK(got[1].is_inline && got[1].error == BACKREF_TRUNCATED &&
		      got[1].kind == REF_DATA);
		CHECK(got[2].kind == REF_SHARED_DATA && got[2].parent == 8192);
	}

	/* An unknown inline type. */
	refs[0] = 99;
	memset(refs + 1, 0, 8);
	br_put_extent(&f, 2 * BR_X, refs, 9);
	CHECK_EQ_INT(br_walk(&f, 2 * BR_X, got, 8, &nr), 1);
	CHECK(nr == 1 && got[0].error == BACKREF_UNKNOWN && got[0].type == 99);

	/* A keyed data ref too short: reported, and the walk goes on. */
	br_put_extent(&f, 3 * BR_X, refs, 0);
	br_put(&f, 3 * BR_X, BTRFS_EXTENT_DATA_REF_KEY, 1, refs, 10);
	put32(refs, 2);
	br_put(&f, 3 * BR_X, BTRFS_SHARED_DATA_REF_KEY, 4096, refs, 4);
	CHECK_EQ_INT(br_walk(&f, 3 * BR_X, got, 8, &nr), 1);
	CHECK_EQ_INT(nr, 2);
	if (nr == 2) {
		CHECK(!got[0].is_inline && got[0].error == BACKREF_TRUNCATED &&
		      got[0].kind == REF_DATA);
		CHECK(got[1].kind == REF_SHARED_DATA && got[1].count == 2);
	}
	scratch_tree_close(&f);
}
