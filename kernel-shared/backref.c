// SPDX-License-Identifier: GPL-2.0
/*
 * Extent backrefs: bounds-checked decoding of inline and keyed refs, and an
 * iterator over one extent's refs (see backref.h).
 */
#include <string.h>
#include "kernel-shared/backref.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/hash.h"

u32 backref_inline_size(u8 type)
{
	switch (type) {
	case BTRFS_TREE_BLOCK_REF_KEY:
	case BTRFS_SHARED_BLOCK_REF_KEY:
	case BTRFS_EXTENT_OWNER_REF_KEY:
		return sizeof(struct btrfs_extent_inline_ref);
	case BTRFS_EXTENT_DATA_REF_KEY:
		return 1 + sizeof(struct btrfs_extent_data_ref);
	case BTRFS_SHARED_DATA_REF_KEY:
		return sizeof(struct btrfs_extent_inline_ref) + sizeof(struct btrfs_shared_data_ref);
	default:
		return 0;
	}
}

u8 backref_key_type(enum ref_kind kind)
{
	switch (kind) {
	case REF_TREE_BLOCK: return BTRFS_TREE_BLOCK_REF_KEY;
	case REF_SHARED_BLOCK: return BTRFS_SHARED_BLOCK_REF_KEY;
	case REF_DATA: return BTRFS_EXTENT_DATA_REF_KEY;
	case REF_SHARED_DATA: return BTRFS_SHARED_DATA_REF_KEY;
	default: return BTRFS_EXTENT_OWNER_REF_KEY;
	}
}

u64 backref_seq(const struct backref *br)
{
	switch (br->kind) {
	case REF_DATA: return btrfs_extent_data_ref_hash(br->root, br->objectid, br->offset);
	case REF_TREE_BLOCK:
	case REF_OWNER: return br->root;
	default: return br->parent;
	}
}

static u64 le64_at(const u8 *p)
{
	__le64 v;

	memcpy(&v, p, sizeof(v));
	return le64_to_cpu(v);
}

static u32 le32_at(const u8 *p)
{
	__le32 v;

	memcpy(&v, p, sizeof(v));
	return le32_to_cpu(v);
}

static bool kind_of_type(u8 type, enum ref_kind *kind)
{
	switch (type) {
	case BTRFS_TREE_BLOCK_REF_KEY: *kind = REF_TREE_BLOCK; return true;
	case BTRFS_SHARED_BLOCK_REF_KEY: *kind = REF_SHARED_BLOCK; return true;
	case BTRFS_EXTENT_DATA_REF_KEY: *kind = REF_DATA; return true;
	case BTRFS_SHARED_DATA_REF_KEY: *kind = REF_SHARED_DATA; return true;
	case BTRFS_EXTENT_OWNER_REF_KEY: *kind = REF_OWNER; return true;
	default: return false;
	}
}

/* The fields of an EXTENT_DATA_REF body (28 bytes at p). */
static void decode_data_ref(const u8 *p, struct backref *br)
{
	br->root = le64_at(p + offsetof(struct btrfs_extent_data_ref, root));
	br->objectid = le64_at(p + offsetof(struct btrfs_extent_data_ref, objectid));
	br->offset = le64_at(p + offsetof(struct btrfs_extent_data_ref, offset));
	br->count = le32_at(p + offsetof(struct btrfs_extent_data_ref, count));
}

int backref_decode_inline(const u8 *p, u32 avail, struct backref *br)
{
	u32 size;
	u64 off;

	memset(br, 0, sizeof(*br));
	br->is_inline = true;
	if (!avail)
		return BACKREF_TRUNCATED;
	br->type = p[0];
	if (!kind_of_type(br->type, &br->kind))
		return BACKREF_UNKNOWN;
	size = backref_inline_size(br->type);
	if (avail < size)
		return BACKREF_TRUNCATED;
	br->size = size;
	br->count = 1;
	if (br->kind == REF_DATA) {
		decode_data_ref(p + 1, br);
		return size;
	}
	off = le64_at(p + offsetof(struct btrfs_extent_inline_ref, offset));
	if (br->kind == REF_TREE_BLOCK || br->kind == REF_OWNER) {
		br->root = off;
	} else {
		br->parent = off;
		if (br->kind == REF_SHARED_DATA)
			br->count = le32_at(p + sizeof(struct btrfs_extent_inline_ref));
	}
	return size;
}

int backref_decode_keyed(const struct btrfs_key *k, const u8 *p, u32 size,
			 struct backref *br)
{
	memset(br, 0, sizeof(*br));
	br->type = k->type;
	if (k->type == BTRFS_EXTENT_OWNER_REF_KEY || !kind_of_type(k->type, &br->kind))
		return BACKREF_UNKNOWN;
	br->count = 1;
	switch (br->kind) {
	case REF_TREE_BLOCK:
		br->root = k->offset;
		return 0;
	case REF_SHARED_BLOCK:
		br->parent = k->offset;
		return 0;
	case REF_SHARED_DATA:
		br->parent = k->offset;
		if (size < sizeof(struct btrfs_shared_data_ref))
			return BACKREF_TRUNCATED;
		br->count = le32_at(p);
		return 0;
	default:
		if (size < sizeof(struct btrfs_extent_data_ref))
			return BACKREF_TRUNCATED;
		decode_data_ref(p, br);
		return 0;
	}
}

u32 backref_inline_start(const struct btrfs_key *k, const u8 *item, u32 size)
{
	u32 hdr = sizeof(struct btrfs_extent_item);

	if (k->type == BTRFS_EXTENT_ITEM_KEY && size >= hdr &&
	    (le64_at(item + offsetof(struct btrfs_extent_item, flags)) &
	     BTRFS_EXTENT_FLAG_TREE_BLOCK))
		hdr += sizeof(struct btrfs_tree_block_info);
	return hdr;
}

void backref_iter_init(struct backref_iter *it, struct fs_info *fs, struct btrfs_path *path,
		       u64 bytenr)
{
	memset(it, 0, sizeof(*it));
	it->fs = fs;
	it->path = path;
	it->bytenr = bytenr;
}

/* Enter the item under the path.  Returns 0, or 1 if it is not bytenr's. */
static int enter_item(struct backref_iter *it)
{
	struct btrfs_key k;

	if (!path_item_valid(it->path))
		return 1;
	path_key(it->path, &k);
	if (k.objectid != it->bytenr)
		return 1;
	it->started = true;
	it->in_item = k.type == BTRFS_EXTENT_ITEM_KEY || k.type == BTRFS_METADATA_ITEM_KEY;
	if (it->in_item)
		it->pos = backref_inline_start(&k, path_ptr(it->path), path_size(it->path));
	return 0;
}

/* Step to the next item.  Returns 0, 1 at the end of the extent's items, or <0. */
static int advance(struct backref_iter *it)
{
	int ret = next_item(it->fs, it->path);

	if (ret)
		return ret;
	return enter_item(it);
}

/* Returns 0 to go on, else what backref_iter_next() returns (and ends the walk). */
static int finish(struct backref_iter *it, int ret)
{
	if (ret)
		it->done = ret;
	return ret;
}

int backref_iter_next(struct backref_iter *it, struct backref *br)
{
	int ret;

	if (it->done)
		return it->done;
	if (!it->started)
		ret = enter_item(it);
	else if (it->step)
		ret = advance(it);
	else
		ret = 0;
	it->step = false;
	if (ret)
		return finish(it, ret);
	for (;;) {
		struct btrfs_key k;
		u32 size = path_size(it->path);

		if (it->in_item && it->pos < size) {
			ret = backref_decode_inline(path_ptr(it->path) + it->pos, size - it->pos, br);
			if (ret < 0) {
				br->error = ret;
				return BACKREF_BAD;
			}
			it->pos += (u32)ret;
			return 0;
		}
		if (!it->in_item) {
			path_key(it->path, &k);
			ret = backref_decode_keyed(&k, path_ptr(it->path), size, br);
			if (ret != BACKREF_UNKNOWN) {
				it->step = true;	/* the next call starts at the next item */
				br->error = ret;
				return ret ? BACKREF_BAD : 0;
			}
		}
		it->in_item = false;
		ret = advance(it);
		if (ret)
			return finish(it, ret);
	}
}

void backref_iter_skip_inline(struct backref_iter *it)
{
	if (it->in_item)
		it->pos = path_size(it->path);
}
