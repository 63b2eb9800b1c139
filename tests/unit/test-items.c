// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the item modules kernel-shared/dir-item.c (insert, lookup
 * and remove, hash collisions sharing one DIR_ITEM, truncated entries),
 * kernel-shared/inode-ref.c (INODE_REF and INODE_EXTREF entries: bounds,
 * insert, remove, an inode's first ref, a name too long for a path) and
 * kernel-shared/fscrypt-item.c (items 41 and 42: write, read back, short
 * items, delete, and a 42 item moving with its EXTENT_DATA item), in the
 * top-level subvolume of a scratch image inside an aborted transaction.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include "kernel-shared/ctree.h"
#include "kernel-shared/dir-item.h"
#include "kernel-shared/fscrypt-item.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/inode-ref.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/disk-io.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

#define IT_DIR 256ULL	/* the top-level directory */

static bool it_open(struct scratch_tree *f)
{
	return scratch_tree_open(f, BTRFS_FS_TREE_OBJECTID);
}

/* Insert name -> ino into IT_DIR as a DIR_ITEM and a DIR_INDEX. */
static void it_link(struct scratch_tree *f, const char *name, u64 ino, u64 index)
{
	u8 buf[sizeof(struct btrfs_dir_item) + BTRFS_NAME_LEN];
	struct btrfs_key loc = { ino, BTRFS_INODE_ITEM_KEY, 0 };
	u32 nl = strlen(name);
	u32 len = dir_entry_fill(buf, &loc, 7, BTRFS_FT_REG_FILE, name, nl);

	CHECK_EQ_INT(len, sizeof(struct btrfs_dir_item) + nl);
	CHECK_EQ_INT(dir_item_insert(f->t, f->root, IT_DIR, name, nl, buf, len), 0);
	CHECK_EQ_INT(dir_index_insert(f->t, f->root, IT_DIR, index, buf, len), 0);
}

static int it_lookup(struct scratch_tree *f, const char *name, u64 *ino)
{
	struct btrfs_key loc;
	u8 type = 0;
	int ret = dir_lookup(f->fs, &f->root->ref, IT_DIR, name, strlen(name), &loc, &type);

	if (!ret) {
		CHECK_EQ_INT(type, BTRFS_FT_REG_FILE);
		CHECK_EQ_INT(loc.type, BTRFS_INODE_ITEM_KEY);
		*ino = loc.objectid;
	}
	return ret;
}

UNIT_TEST(dir_item_insert_lookup_remove)
{
	struct scratch_tree f;
	u64 ino = 0;

	if (!it_open(&f)) {
		scratch_tree_close(&f);
		return;
	}
	it_link(&f, "alpha", 300, 10);
	it_link(&f, "beta", 301, 11);
	CHECK_EQ_INT(it_lookup(&f, "alpha", &ino), 0);
	CHECK_EQ_INT(ino, 300);
	CHECK_EQ_INT(it_lookup(&f, "beta", &ino), 0);
	CHECK_EQ_INT(ino, 301);
	CHECK_EQ_INT(it_lookup(&f, "gamma", &ino), 1);
	/* The same name twice in one DIR_ITEM (as on a hash collision): both kept, first found. */
	it_link(&f, "alpha", 302, 12);
	CHECK_EQ_INT(it_lookup(&f, "alpha", &ino), 0);
	CHECK_EQ_INT(ino, 300);
	CHECK_EQ_INT(dir_item_remove(f.t, f.root, IT_DIR, "alpha", 5), 0);
	CHECK_EQ_INT(it_lookup(&f, "alpha", &ino), 0);
	CHECK_EQ_INT(ino, 302);
	CHECK_EQ_INT(dir_item_remove(f.t, f.root, IT_DIR, "alpha", 5), 0);
	CHECK_EQ_INT(it_lookup(&f, "alpha", &ino), 1);
	CHECK_EQ_INT(dir_item_remove(f.t, f.root, IT_DIR, "alpha", 5), 1);
	CHECK_EQ_INT(it_lookup(&f, "beta", &ino), 0);
	/* The DIR_INDEX items stay: one entry each, at their index. */
	{
		struct btrfs_key k = { IT_DIR, BTRFS_DIR_INDEX_KEY, 12 };
		u8 buf[64];
		u32 size, pos, len;

		CHECK_EQ_INT(lookup_item(f.fs, &f.root->ref, &k, buf, sizeof(buf), &size), 0);
		CHECK_EQ_INT(dir_item_find(buf, size, "alpha", 5, &pos, &len), 0);
		CHECK(pos == 0 && len == size);
	}
	scratch_tree_close(&f);
}

UNIT_TEST(dir_item_find_bounds)
{
	u8 item[2 * (sizeof(struct btrfs_dir_item) + 8)];
	struct btrfs_key loc = { 257, BTRFS_INODE_ITEM_KEY, 0 };
	u32 a = dir_entry_fill(item, &loc, 1, BTRFS_FT_DIR, "one", 3);
	u32 b = dir_entry_fill(item + a, &loc, 1, BTRFS_FT_DIR, "two", 3);
	u32 pos, len;

	CHECK_EQ_INT(dir_item_find(item, a + b, "two", 3, &pos, &len), 0);
	CHECK(pos == a && len == b);
	CHECK_EQ_INT(dir_item_find(item, a + b, "six", 3, &pos, &len), DIR_ITEM_NO_ENTRY);
	/* The second entry cut short: an error, not a read past the item. */
	CHECK_EQ_INT(dir_item_find(item, a + b - 1, "two", 3, &pos, &len), -EUCLEAN);
	CHECK_EQ_INT(dir_entry_len(item, a + b - 1, a), 0);
	CHECK_EQ_INT(dir_entry_len(item, a + b, a), b);
	CHECK_EQ_INT(dir_entry_len(item, a + b, a + b), 0);
	/* A name length running past the item. */
	((struct btrfs_dir_item *)item)->name_len = cpu_to_le16(0xffff);
	CHECK_EQ_INT(dir_item_find(item, a + b, "two", 3, &pos, &len), -EUCLEAN);
}

/* Insert an INODE_REF of ino in IT_DIR holding one entry whose name is nl bytes of c. */
static void it_ref(struct scratch_tree *f, u64 ino, u64 index, u32 nl, char c)
{
	u8 buf[sizeof(struct btrfs_inode_ref) + 1024];
	struct btrfs_inode_ref *r = (void *)buf;
	struct btrfs_key key = { ino, BTRFS_INODE_REF_KEY, IT_DIR };

	r->index = cpu_to_le64(index);
	r->name_len = cpu_to_le16(nl);
	memset(r + 1, c, nl);
	CHECK_EQ_INT(insert_item(f->t, f->root, &key, buf, sizeof(*r) + nl), 0);
}

/* A ref name longer than BTRFS_NAME_LEN (the tree-checker allows it) is corrupt, not copied. */
UNIT_TEST(inode_path_long_ref_name)
{
	struct scratch_tree f;
	char path[PATH_MAX];

	if (!it_open(&f)) {
		scratch_tree_close(&f);
		return;
	}
	it_ref(&f, 300, 20, 255, 'a');
	CHECK_EQ_INT(inode_path(f.fs, NULL, &f.root->ref, 300, path, sizeof(path)), 0);
	CHECK(strlen(path) == 256 && path[0] == '/' && path[1] == 'a' && path[255] == 'a');
	it_ref(&f, 301, 21, 1000, 'b');
	CHECK_EQ_INT(inode_path(f.fs, NULL, &f.root->ref, 301, path, sizeof(path)), -EUCLEAN);
	CHECK(strstr(fs_errmsg(f.fs), "longer than 255") != NULL);
	scratch_tree_close(&f);
}

/* Two packed INODE_REF entries, then the same as INODE_EXTREF entries: parsing bounds. */
UNIT_TEST(inode_ref_find_bounds)
{
	u8 item[2 * (sizeof(struct btrfs_inode_extref) + 8)];
	struct btrfs_inode_ref *r = (void *)item;
	struct btrfs_inode_extref *x;
	u32 a = sizeof(*r) + 3, b = sizeof(*r) + 5, pos, len;

	r->index = cpu_to_le64(7);
	r->name_len = cpu_to_le16(3);
	memcpy(r + 1, "one", 3);
	r = (void *)(item + a);
	r->index = cpu_to_le64(9);
	r->name_len = cpu_to_le16(5);
	memcpy(r + 1, "three", 5);
	CHECK_EQ_INT(inode_ref_entry_len(item, a + b, 0, false), a);
	CHECK_EQ_INT(inode_ref_entry_len(item, a + b, a, false), b);
	CHECK_EQ_INT(inode_ref_entry_len(item, a + b, a + b, false), 0);
	CHECK_EQ_INT(inode_ref_find_index(item, a + b, 9, &pos, &len), 0);
	CHECK(pos == a && len == b);
	CHECK_EQ_INT(inode_ref_find_index(item, a + b, 8, &pos, &len), 1);
	/* The second entry cut short: not found, and not read past the item. */
	CHECK_EQ_INT(inode_ref_find_index(item, a + b - 1, 9, &pos, &len), 1);
	CHECK_EQ_INT(inode_ref_find_index(item, a + b - 1, 7, &pos, &len), 0);

	x = (void *)item;
	x->parent_objectid = cpu_to_le64(IT_DIR);
	x->index = cpu_to_le64(7);
	x->name_len = cpu_to_le16(3);
	memcpy(x + 1, "one", 3);
	a = sizeof(*x) + 3;
	x = (void *)(item + a);
	x->parent_objectid = cpu_to_le64(IT_DIR + 1);
	x->index = cpu_to_le64(9);
	x->name_len = cpu_to_le16(3);
	memcpy(x + 1, "one", 3);
	b = sizeof(*x) + 3;
	CHECK_EQ_INT(inode_extref_find(item, a + b, IT_DIR + 1, "one", 3, &pos, &len), 0);
	CHECK(pos == a && len == b);
	CHECK_EQ_INT(inode_extref_find(item, a + b, IT_DIR, "one", 3, &pos, &len), 0);
	CHECK(pos == 0 && len == a);
	CHECK_EQ_INT(inode_extref_find(item, a + b, IT_DIR, "two", 3, &pos, &len), 1);
	CHECK_EQ_INT(inode_extref_find(item, a + b - 1, IT_DIR + 1, "one", 3, &pos, &len), 1);
	/* A name length running past the item. */
	((struct btrfs_inode_extref *)item)->name_len = cpu_to_le16(0xffff);
	CHECK_EQ_INT(inode_ref_entry_len(item, a + b, 0, true), 0);
	CHECK_EQ_INT(inode_extref_find(item, a + b, IT_DIR + 1, "one", 3, &pos, &len), 1);
}

/* INODE_EXTREF insert (appending on the same hash), remove, and the first ref of an inode. */
UNIT_TEST(inode_extref_insert_remove_first)
{
	struct scratch_tree f;
	char name[BTRFS_NAME_LEN];
	u64 parent = 0;
	u16 nl = 0;

	if (!it_open(&f)) {
		scratch_tree_close(&f);
		return;
	}
	CHECK_EQ_INT(inode_ref_first(f.fs, &f.root->ref, 310, &parent, name, &nl), 1);
	CHECK_EQ_INT(inode_extref_insert(f.t, f.root, 310, IT_DIR, 30, "ext", 3), 0);
	/* The same parent and name again: one item, two entries. */
	CHECK_EQ_INT(inode_extref_insert(f.t, f.root, 310, IT_DIR, 31, "ext", 3), 0);
	{
		struct btrfs_key k = { 310, BTRFS_INODE_EXTREF_KEY,
				       btrfs_extref_hash(IT_DIR, "ext", 3) };
		u8 buf[128];
		u32 size;

		CHECK_EQ_INT(lookup_item(f.fs, &f.root->ref, &k, buf, sizeof(buf), &size), 0);
		CHECK_EQ_INT(size, 2 * (sizeof(struct btrfs_inode_extref) + 3));
	}
	CHECK_EQ_INT(inode_ref_first(f.fs, &f.root->ref, 310, &parent, name, &nl), 0);
	CHECK(parent == IT_DIR && nl == 3 && !memcmp(name, "ext", 3));
	CHECK_EQ_INT(inode_extref_remove(f.t, f.root, 310, IT_DIR + 5, "ext", 3), 1);
	CHECK_EQ_INT(inode_extref_remove(f.t, f.root, 310, IT_DIR, "ext", 3), 0);
	CHECK_EQ_INT(inode_extref_remove(f.t, f.root, 310, IT_DIR, "ext", 3), 0);
	CHECK_EQ_INT(inode_extref_remove(f.t, f.root, 310, IT_DIR, "ext", 3), 1);
	CHECK_EQ_INT(inode_ref_first(f.fs, &f.root->ref, 310, &parent, name, &nl), 1);
	CHECK(inode_extref_insert(f.t, f.root, 310, IT_DIR, 32, name, BTRFS_NAME_LEN + 1) ==
	      -ENAMETOOLONG);
	/* An INODE_REF comes first, its parent from the key. */
	it_ref(&f, 311, 40, 4, 'r');
	CHECK_EQ_INT(inode_extref_insert(f.t, f.root, 311, IT_DIR + 1, 41, "ext", 3), 0);
	CHECK_EQ_INT(inode_ref_first(f.fs, &f.root->ref, 311, &parent, name, &nl), 0);
	CHECK(parent == IT_DIR && nl == 4 && !memcmp(name, "rrrr", 4));
	scratch_tree_close(&f);
}

UNIT_TEST(fscrypt_item_round_trip)
{
	struct scratch_tree f;
	struct fscrypt_context_v2 ctx, back;
	u8 ectx[FSCRYPT_EXTENT_CONTEXT_MAX_SIZE], eback[FSCRYPT_EXTENT_CONTEXT_MAX_SIZE];
	u32 size = 0;

	if (!it_open(&f)) {
		scratch_tree_close(&f);
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.version = 2;
	ctx.contents_mode = 1;
	ctx.filenames_mode = 4;
	memset(ctx.master_key_identifier, 0xab, sizeof(ctx.master_key_identifier));
	memset(ctx.nonce, 0x5a, sizeof(ctx.nonce));
	CHECK_EQ_INT(fscrypt_inode_ctx_read(f.fs, &f.root->ref, 300, &back), 1);
	CHECK_EQ_INT(fscrypt_inode_ctx_insert(f.t, f.root, 300, &ctx), 0);
	CHECK_EQ_INT(fscrypt_inode_ctx_insert(f.t, f.root, 300, &ctx), -EEXIST);
	memset(&back, 0, sizeof(back));
	CHECK_EQ_INT(fscrypt_inode_ctx_read(f.fs, &f.root->ref, 300, &back), 0);
	CHECK(!memcmp(&ctx, &back, sizeof(ctx)));
	CHECK_EQ_INT(fscrypt_inode_ctx_delete(f.t, f.root, 300), 0);
	CHECK_EQ_INT(fscrypt_inode_ctx_delete(f.t, f.root, 300), 1);
	{
		struct btrfs_key k = { 301, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };

		CHECK_EQ_INT(insert_item(f.t, f.root, &k, &ctx, sizeof(ctx) - 1), 0);
		CHECK_EQ_INT(fscrypt_inode_ctx_read(f.fs, &f.root->ref, 301, &back),
			     FSCRYPT_ITEM_SHORT);
	}

	/* Item 42, at its largest size, read back whole. */
	for (u32 i = 0; i < sizeof(ectx); i++)
		ectx[i] = (u8)(i * 3 + 1);
	CHECK_EQ_INT(fscrypt_extent_ctx_insert(f.t, f.root, 300, 8192, ectx, sizeof(ectx)), 0);
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 8192, eback, &size), 0);
	CHECK_EQ_INT(size, sizeof(ectx));
	CHECK(!memcmp(ectx, eback, sizeof(ectx)));
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 4096, eback, &size), 1);
	CHECK_EQ_INT(fscrypt_extent_ctx_insert(f.t, f.root, 300, 0, ectx,
					       FSCRYPT_EXTENT_CONTEXT_SIZE - 1), 0);
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 0, eback, &size),
		     FSCRYPT_ITEM_SHORT);
	/* It moves with its extent; then goes with it. */
	CHECK_EQ_INT(fscrypt_extent_ctx_move(f.t, f.root, 300, 8192, 12288, ectx, sizeof(ectx)), 0);
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 8192, eback, &size), 1);
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 12288, eback, &size), 0);
	CHECK_EQ_INT(fscrypt_extent_ctx_delete(f.t, f.root, 300, 12288), 0);
	scratch_tree_close(&f);
}

UNIT_TEST(fscrypt_item_with_file_extent)
{
	struct scratch_tree f;
	struct btrfs_file_extent_item fe;
	u8 ectx[FSCRYPT_EXTENT_CONTEXT_SIZE], back[FSCRYPT_EXTENT_CONTEXT_MAX_SIZE];
	struct btrfs_key k = { 300, BTRFS_EXTENT_DATA_KEY, 4096 };
	u32 size;

	if (!it_open(&f)) {
		scratch_tree_close(&f);
		return;
	}
	memset(ectx, 0x42, sizeof(ectx));
	memset(&fe, 0, sizeof(fe));
	fe.type = BTRFS_FILE_EXTENT_REG;
	fe.encryption = BTRFS_ENCRYPTION_FSCRYPT;
	CHECK(file_extent_has_ctx(&fe));
	CHECK_EQ_INT(file_extent_insert_with_ctx(f.t, f.root, 300, 4096, &fe, sizeof(fe), ectx,
						 sizeof(ectx)), 0);
	CHECK_EQ_INT(lookup_item(f.fs, &f.root->ref, &k, NULL, 0, &size), 0);
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 4096, back, &size), 0);
	CHECK(size == sizeof(ectx) && !memcmp(back, ectx, sizeof(ectx)));
	CHECK_EQ_INT(file_extent_delete_with_ctx(f.t, f.root, 300, 4096, true), 0);
	CHECK_EQ_INT(lookup_item(f.fs, &f.root->ref, &k, NULL, 0, &size), 1);
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 4096, back, &size), 1);
	/* Plain and inline extents have no context item. */
	fe.encryption = BTRFS_ENCRYPTION_NONE;
	CHECK(!file_extent_has_ctx(&fe));
	CHECK_EQ_INT(file_extent_insert_with_ctx(f.t, f.root, 300, 4096, &fe, sizeof(fe), NULL, 0),
		     0);
	CHECK_EQ_INT(fscrypt_extent_ctx_read(f.fs, &f.root->ref, 300, 4096, back, &size), 1);
	fe.encryption = BTRFS_ENCRYPTION_FSCRYPT;
	fe.type = BTRFS_FILE_EXTENT_INLINE;
	CHECK(!file_extent_has_ctx(&fe));
	scratch_tree_close(&f);
}
