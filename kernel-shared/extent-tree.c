// SPDX-License-Identifier: GPL-2.0
/*
 * Extent allocation and reference counting (Documentation/format.rst 2.8, Documentation/design.rst 3).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/free-space-tree.h"
#include "kernel-shared/file-item.h"
#include "crypto/csum.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/qgroup.h"
#include "common/containers.h"
#include "common/utils.h"

struct ref_queue {
	struct ref_change *v;
	size_t nr, cap;
};

void ref_queue_free(struct ref_queue *q)
{
	if (!q)
		return;
	free(q->v);
	free(q);
}

bool queue_pending(const struct trans *t)
{
	return t->refs && t->refs->nr;
}

/* ---- reference queue -------------------------------------------------- */

int queue_ref(struct trans *t, const struct ref_change *rc)
{
	struct ref_queue *q = t->refs;

	if (!q) {
		q = t->refs = fault_calloc(1, sizeof(*q));
		if (!q)
			return fs_err(t->fs, -ENOMEM, "out of memory");
	}
	{
		struct ref_change *n = array_grow(q->v, &q->cap, q->nr, sizeof(*n));

		if (!n)
			return fs_err(t->fs, -ENOMEM, "out of memory");
		q->v = n;
	}
	q->v[q->nr++] = *rc;
	return 0;
}

static bool is_metadata_ref(enum ref_kind k)
{
	return k == REF_TREE_BLOCK || k == REF_SHARED_BLOCK;
}

/* Sum of queued deltas and flags for an extent, for lookups before apply. */
static void pending_for(const struct trans *t, u64 bytenr, s64 *delta, u64 *flags)
{
	*delta = 0;
	*flags = 0;
	if (!t->refs)
		return;
	for (size_t i = 0; i < t->refs->nr; i++) {
		const struct ref_change *rc = &t->refs->v[i];

		if (rc->bytenr == bytenr) {
			*delta += rc->delta;
			*flags |= rc->set_flags;
		}
	}
}

/* ---- extent item lookup --------------------------------------------- */

static bool skinny(const struct fs_info *fs)
{
	return fs->incompat & BTRFS_FEATURE_INCOMPAT_SKINNY_METADATA;
}

/*
 * Find the extent item of bytenr in the extent tree (read-only path).
 * Returns 0 with refs/flags, 1 if absent, <0 on error.
 */
static int read_extent_info(struct trans *t, u64 bytenr, u64 *refs, u64 *flags)
{
	struct fs_info *fs = t->fs;
	struct trans_root *er = trans_get_root(t, BTRFS_EXTENT_TREE_OBJECTID);
	struct btrfs_key key = { bytenr, BTRFS_EXTENT_ITEM_KEY, 0 };
	struct btrfs_path p;
	int ret;

	if (!er)
		return trans_root_err(t);
	ret = search_slot(fs, &er->ref, &key, &p);
	if (ret < 0)
		return ret;
	ret = 1;
	for (; path_item_valid(&p); ) {
		struct btrfs_key k;

		path_key(&p, &k);
		if (k.objectid != bytenr || k.type > BTRFS_METADATA_ITEM_KEY)
			break;
		if ((k.type == BTRFS_EXTENT_ITEM_KEY || k.type == BTRFS_METADATA_ITEM_KEY) &&
		    path_size(&p) >= sizeof(struct btrfs_extent_item)) {
			const struct btrfs_extent_item *ei = (const void *)path_ptr(&p);

			*refs = le64_to_cpu(ei->refs);
			*flags = le64_to_cpu(ei->flags);
			ret = 0;
			break;
		}
		if (next_item(fs, &p))
			break;
	}
	path_release(fs, &p);
	return ret;
}

int extent_owner(struct trans *t, u64 bytenr, u64 num_bytes, u64 *owner)
{
	struct trans_root *er = trans_get_root(t, BTRFS_EXTENT_TREE_OBJECTID);
	struct btrfs_key key = { bytenr, BTRFS_EXTENT_ITEM_KEY, num_bytes };
	u8 buf[sizeof(struct btrfs_extent_item) + sizeof(struct btrfs_extent_inline_ref)];
	u32 size = 0;
	int ret;

	*owner = 0;
	if (!er)
		return trans_root_err(t);
	ret = lookup_item(t->fs, &er->ref, &key, buf, sizeof(buf), &size);
	if (ret < 0)
		return ret;
	if (!ret && size >= sizeof(buf)) {
		struct backref br;

		if (backref_decode_inline(buf + sizeof(struct btrfs_extent_item),
					  sizeof(buf) - sizeof(struct btrfs_extent_item), &br) > 0 &&
		    br.kind == REF_OWNER)
			*owner = br.root;
	}
	return 0;
}

/* refs and flags of an extent as they will be after the queued changes. */
static int lookup_extent_info(struct trans *t, u64 bytenr, u64 *refs, u64 *flags)
{
	s64 delta;
	u64 pflags;
	int ret = read_extent_info(t, bytenr, refs, flags);

	if (ret < 0)
		return ret;
	if (ret > 0) {
		*refs = 0;
		*flags = 0;
	}
	pending_for(t, bytenr, &delta, &pflags);
	*refs += delta;
	*flags |= pflags;
	return 0;
}

/* ---- tree blocks --------------------------------------------------------- */

int alloc_tree_block(struct trans *t, struct trans_root *root, int level,
		     struct tree_block **out)
{
	struct fs_info *fs = t->fs;
	struct tree_block *b;
	struct btrfs_header *h;
	struct ref_change rc = { 0 };
	u64 bytenr;
	int ret;

	/* The chunk tree lives in SYSTEM chunks: the superblock's array maps them. */
	ret = space_alloc(t, root->ref.objectid == BTRFS_CHUNK_TREE_OBJECTID ?
			  BTRFS_BLOCK_GROUP_SYSTEM : BTRFS_BLOCK_GROUP_METADATA,
			  fs->nodesize, fs->nodesize, &bytenr);
	if (ret)
		return ret;
	ret = cache_new_block(fs, bytenr, &b);
	if (ret)
		return ret;
	h = (struct btrfs_header *)b->data;
	memcpy(h->fsid, fs->metadata_uuid, BTRFS_FSID_SIZE);
	memcpy(h->chunk_tree_uuid, fs->chunk_tree_uuid, BTRFS_UUID_SIZE);
	h->bytenr = cpu_to_le64(bytenr);
	h->generation = cpu_to_le64(t->transid);
	h->owner = cpu_to_le64(root->ref.objectid);
	h->level = level;
	h->flags = cpu_to_le64((u64)BTRFS_MIXED_BACKREF_REV << BTRFS_BACKREF_REV_SHIFT);
	ret = trans_add_dirty(t, b);
	if (ret) {
		tree_block_put(fs, b);
		return ret;
	}
	rc.bytenr = bytenr;
	rc.num_bytes = fs->nodesize;
	rc.kind = REF_TREE_BLOCK;
	rc.root = root->ref.objectid;
	rc.delta = 1;
	rc.level = level;
	rc.new_extent = true;
	rc.generation = t->transid;
	ret = queue_ref(t, &rc);
	if (ret) {
		tree_block_put(fs, b);
		return ret;
	}
	*out = b;
	return 0;
}

/*
 * Add (delta > 0) or drop references held by the items or pointers of b: with
 * full_backref they name b as parent, else b's owner as root.
 */
static int mod_child_refs(struct trans *t, const struct tree_block *b, bool full_backref,
			  int delta)
{
	struct fs_info *fs = t->fs;
	u32 n = tb_nritems(b);
	int ret;

	for (u32 i = 0; i < n; i++) {
		struct ref_change rc = { 0 };

		rc.delta = delta;
		if (tb_level(b) == 0) {
			struct btrfs_key k;
			const struct btrfs_file_extent_item *fe;

			tb_item_key(b, i, &k);
			if (k.type != BTRFS_EXTENT_DATA_KEY || tb_item_size(b, i) < sizeof(*fe))
				continue;
			fe = (const void *)tb_item_ptr(b, i);
			if (fe->type == BTRFS_FILE_EXTENT_INLINE || !fe->disk_bytenr)
				continue;
			rc.bytenr = le64_to_cpu(fe->disk_bytenr);
			rc.num_bytes = le64_to_cpu(fe->disk_num_bytes);
			if (full_backref) {
				rc.kind = REF_SHARED_DATA;
				rc.parent = b->bytenr;
			} else {
				rc.kind = REF_DATA;
				rc.root = tb_owner(b);
				rc.objectid = k.objectid;
				rc.offset = k.offset - le64_to_cpu(fe->offset);
			}
		} else {
			rc.bytenr = tb_node_blockptr(b, i);
			rc.num_bytes = fs->nodesize;
			rc.level = tb_level(b) - 1;
			if (full_backref) {
				rc.kind = REF_SHARED_BLOCK;
				rc.parent = b->bytenr;
			} else {
				rc.kind = REF_TREE_BLOCK;
				rc.root = tb_owner(b);
			}
		}
		ret = queue_ref(t, &rc);
		if (ret)
			return ret;
	}
	return 0;
}

/* Blocks of subvolume trees older than the last snapshot may be shared. */
static bool block_may_be_shared(const struct trans_root *root, const struct tree_block *b,
				bool is_root)
{
	return is_subvol_tree(root->ref.objectid) && !is_root &&
	       tb_generation(b) <= root->last_snapshot;
}

static int drop_tree_block_ref(struct trans *t, struct trans_root *root,
			       const struct tree_block *b)
{
	struct ref_change rc = { 0 };

	rc.bytenr = b->bytenr;
	rc.num_bytes = t->fs->nodesize;
	rc.kind = REF_TREE_BLOCK;
	rc.root = root->ref.objectid;
	rc.level = tb_level(b);
	rc.delta = -1;
	return queue_ref(t, &rc);
}

int cow_update_refs(struct trans *t, struct trans_root *root,
		    struct tree_block *old, struct tree_block *cow)
{
	bool is_root = old->bytenr == root->ref.bytenr;
	u64 refs = 1, flags = 0;
	int ret;

	if (block_may_be_shared(root, old, is_root)) {
		ret = lookup_extent_info(t, old->bytenr, &refs, &flags);
		if (ret)
			return ret;
		if (refs == 0)
			return fs_err(t->fs, -EUCLEAN, "tree block %llu has no extent item",
				      old->bytenr);
	}
	if (refs > 1) {
		if (tb_owner(old) == root->ref.objectid &&
		    !(flags & BTRFS_BLOCK_FLAG_FULL_BACKREF)) {
			/* Other sharers keep reaching the children through old. */
			struct ref_change rc = { 0 };

			ret = mod_child_refs(t, old, true, 1);
			if (ret)
				return ret;
			rc.bytenr = old->bytenr;
			rc.num_bytes = t->fs->nodesize;
			rc.kind = REF_TREE_BLOCK;
			rc.root = root->ref.objectid;
			rc.level = tb_level(old);
			rc.delta = 0;
			rc.set_flags = BTRFS_BLOCK_FLAG_FULL_BACKREF;
			ret = queue_ref(t, &rc);
		} else {
			ret = mod_child_refs(t, cow, false, 1);
		}
		if (ret)
			return ret;
	} else if (flags & BTRFS_BLOCK_FLAG_FULL_BACKREF) {
		ret = mod_child_refs(t, cow, false, 1);
		if (!ret)
			ret = mod_child_refs(t, old, true, -1);
		if (ret)
			return ret;
	}
	return drop_tree_block_ref(t, root, old);
}

int free_tree_block(struct trans *t, struct trans_root *root, struct tree_block *b)
{
	if (b->dirty)
		trans_drop_dirty(t, b);
	return drop_tree_block_ref(t, root, b);
}

int alloc_data_extent(struct trans *t, u64 num_bytes, u64 *bytenr)
{
	if (num_bytes % t->fs->sectorsize)
		return fs_err(t->fs, -EINVAL, "data extent of %llu bytes is not sector aligned",
			      num_bytes);
	return space_alloc(t, BTRFS_BLOCK_GROUP_DATA, num_bytes, t->fs->sectorsize, bytenr);
}

/* ---- applying references -------------------------------------------- */

static u32 inline_ref_size(enum ref_kind k)
{
	return backref_inline_size(backref_key_type(k));
}

/* The ordering value of a ref within its type: inline refs sort descending by it. */
static u64 ref_order(const struct ref_change *rc)
{
	switch (rc->kind) {
	case REF_DATA: return btrfs_extent_data_ref_hash(rc->root, rc->objectid, rc->offset);
	case REF_TREE_BLOCK: return rc->root;
	default: return rc->parent;
	}
}

/* Whether a decoded backref is the one rc changes. */
static bool ref_matches(const struct backref *br, const struct ref_change *rc)
{
	if (br->kind != rc->kind)
		return false;
	switch (rc->kind) {
	case REF_DATA:
		return br->root == rc->root && br->objectid == rc->objectid &&
		       br->offset == rc->offset;
	case REF_TREE_BLOCK:
		return br->root == rc->root;
	default:
		return br->parent == rc->parent;
	}
}

/* Write ref rc (count n) as an inline ref at p. */
static void write_inline_ref(u8 *p, const struct ref_change *rc, u32 count)
{
	struct btrfs_extent_inline_ref *iref = (void *)p;

	*p = backref_key_type(rc->kind);
	switch (rc->kind) {
	case REF_DATA: {
		struct btrfs_extent_data_ref *dr = (void *)(p + 1);

		dr->root = cpu_to_le64(rc->root);
		dr->objectid = cpu_to_le64(rc->objectid);
		dr->offset = cpu_to_le64(rc->offset);
		dr->count = cpu_to_le32(count);
		break;
	}
	case REF_SHARED_DATA: {
		struct btrfs_shared_data_ref *sr = (void *)(p + sizeof(*iref));

		iref->offset = cpu_to_le64(rc->parent);
		sr->count = cpu_to_le32(count);
		break;
	}
	case REF_TREE_BLOCK:
		iref->offset = cpu_to_le64(rc->root);
		break;
	case REF_SHARED_BLOCK:
		iref->offset = cpu_to_le64(rc->parent);
		break;
	case REF_OWNER:
		iref->offset = cpu_to_le64(rc->root);
		break;
	}
}

/* Where the count of a data ref lives in an inline ref, or NULL for tree refs. */
static u8 *inline_count_ptr(u8 *p)
{
	if (*p == BTRFS_EXTENT_DATA_REF_KEY)
		return p + 1 + offsetof(struct btrfs_extent_data_ref, count);
	if (*p == BTRFS_SHARED_DATA_REF_KEY)
		return p + sizeof(struct btrfs_extent_inline_ref);
	return NULL;
}

/* Unaligned little-endian u32 access: counts sit at odd offsets in items. */
static u32 get_le32(const u8 *p)
{
	__le32 v;

	memcpy(&v, p, sizeof(v));
	return le32_to_cpu(v);
}

static void put_le32(u8 *p, u32 x)
{
	__le32 v = cpu_to_le32(x);

	memcpy(p, &v, sizeof(v));
}

static u32 max_extent_item_size(const struct fs_info *fs)
{
	return ((fs->nodesize - sizeof(struct btrfs_header)) >> 4) - sizeof(struct btrfs_item);
}

struct apply_ctx {
	struct trans *t;
	struct trans_root *er;
};

/* Create the extent item for a fresh allocation with its first reference. */
static int insert_extent_item(struct apply_ctx *ac, const struct ref_change *rc)
{
	struct trans *t = ac->t;
	struct fs_info *fs = t->fs;
	bool meta = is_metadata_ref(rc->kind);
	struct btrfs_key key = { rc->bytenr, BTRFS_EXTENT_ITEM_KEY, rc->num_bytes };
	u32 size = sizeof(struct btrfs_extent_item) + inline_ref_size(rc->kind);
	/* Simple quotas: a new data extent names its owner, the inode's tree, first. */
	bool owner = rc->kind == REF_DATA && fs->qgroup_mode == QGROUP_SIMPLE;
	struct btrfs_extent_item *ei;
	struct btrfs_path p;
	u8 *ptr;
	int ret;

	if (meta && skinny(fs)) {
		key.type = BTRFS_METADATA_ITEM_KEY;
		key.offset = rc->level;
	} else if (meta) {
		size += sizeof(struct btrfs_tree_block_info);
	}
	size += owner ? inline_ref_size(REF_OWNER) : 0;
	ret = insert_empty_item(t, ac->er, &p, &key, size);
	if (ret)
		return ret == -EEXIST ? fs_err(fs, -EUCLEAN, "extent %llu already exists",
					       rc->bytenr) : ret;
	ptr = path_ptr_mut(&p);
	ei = (void *)ptr;
	ei->refs = cpu_to_le64(rc->delta);
	ei->generation = cpu_to_le64(rc->generation ? rc->generation : t->transid);
	ei->flags = cpu_to_le64((meta ? BTRFS_EXTENT_FLAG_TREE_BLOCK : BTRFS_EXTENT_FLAG_DATA) |
				rc->set_flags);
	ptr += sizeof(*ei);
	if (meta && !skinny(fs)) {
		struct btrfs_tree_block_info *info = (void *)ptr;
		struct tree_block *b;

		/* The block is this transaction's: its first key is current now. */
		ret = read_tree_block_raw(fs, rc->bytenr, &b);
		if (!ret) {
			struct btrfs_key first = { 0 };

			if (tb_nritems(b)) {
				if (tb_level(b))
					tb_node_key(b, 0, &first);
				else
					tb_item_key(b, 0, &first);
			}
			btrfs_cpu_key_to_disk(&info->key, &first);
			info->level = rc->level;
			tree_block_put(fs, b);
		}
		ptr += sizeof(*info);
		if (ret) {
			path_release(fs, &p);
			return ret;
		}
	}
	if (owner) {
		struct ref_change orc = { .kind = REF_OWNER, .root = rc->owner ? rc->owner : rc->root };

		write_inline_ref(ptr, &orc, 0);
		ptr += inline_ref_size(REF_OWNER);
	}
	write_inline_ref(ptr, rc, rc->delta);
	path_release(fs, &p);
	return account_range(t, rc->bytenr, rc->num_bytes, true);
}

/* Key of a keyed ref; EXTENT_DATA_REF starts at its hash (collisions probe +1). */
static void keyed_ref_key(const struct ref_change *rc, struct btrfs_key *k)
{
	k->objectid = rc->bytenr;
	k->type = backref_key_type(rc->kind);
	k->offset = rc->kind == REF_DATA ? btrfs_extent_data_ref_hash(rc->root, rc->objectid,
								       rc->offset)
		    : rc->kind == REF_TREE_BLOCK ? rc->root : rc->parent;
}

/*
 * Find the keyed ref item for rc.  Returns 0 with *key the item's key, 1 if
 * absent (then *key is the free key to insert at), <0 on error.
 */
static int find_keyed_ref(struct apply_ctx *ac, const struct ref_change *rc,
			  struct btrfs_key *key)
{
	struct fs_info *fs = ac->t->fs;

	keyed_ref_key(rc, key);
	for (int probe = 0; probe < 1024; probe++) {
		struct btrfs_path p;
		struct backref br;
		int ret = search_slot(fs, &ac->er->ref, key, &p);

		if (ret < 0)
			return ret;
		if (ret > 0) {
			path_release(fs, &p);
			return 1;
		}
		if (rc->kind != REF_DATA) {
			path_release(fs, &p);
			return 0;
		}
		if (!backref_decode_keyed(key, path_ptr(&p), path_size(&p), &br) &&
		    ref_matches(&br, rc)) {
			path_release(fs, &p);
			return 0;
		}
		path_release(fs, &p);
		key->offset++;
	}
	return fs_err(fs, -EUCLEAN, "extent %llu: too many colliding data refs", rc->bytenr);
}

/* Apply delta to a keyed ref: create, change its count, or delete it. */
static int apply_keyed_ref(struct apply_ctx *ac, const struct ref_change *rc, s64 delta)
{
	struct trans *t = ac->t;
	struct fs_info *fs = t->fs;
	struct btrfs_key key;
	struct btrfs_path p;
	int ret = find_keyed_ref(ac, rc, &key);

	if (ret < 0)
		return ret;
	if (ret > 0) {
		u32 size = rc->kind == REF_DATA ? sizeof(struct btrfs_extent_data_ref) :
			   rc->kind == REF_SHARED_DATA ? sizeof(struct btrfs_shared_data_ref) : 0;

		if (delta < 0)
			return fs_err(fs, -EUCLEAN, "extent %llu: dropping a reference it does not have",
				      rc->bytenr);
		if (is_metadata_ref(rc->kind) && delta != 1)
			return fs_err(fs, -EUCLEAN, "tree block %llu referenced twice by one owner",
				      rc->bytenr);
		ret = insert_empty_item(t, ac->er, &p, &key, size);
		if (ret)
			return ret;
		if (rc->kind == REF_DATA) {
			struct btrfs_extent_data_ref *dr = (void *)path_ptr_mut(&p);

			dr->root = cpu_to_le64(rc->root);
			dr->objectid = cpu_to_le64(rc->objectid);
			dr->offset = cpu_to_le64(rc->offset);
			dr->count = cpu_to_le32((u32)delta);
		} else if (rc->kind == REF_SHARED_DATA) {
			((struct btrfs_shared_data_ref *)path_ptr_mut(&p))->count =
				cpu_to_le32((u32)delta);
		}
		path_release(fs, &p);
		return 0;
	}
	ret = search_slot_mod(t, ac->er, &key, &p, -1);
	if (ret) {
		path_release(fs, &p);
		return ret < 0 ? ret : -EUCLEAN;
	}
	if (rc->kind == REF_DATA || rc->kind == REF_SHARED_DATA) {
		u8 *ptr = path_ptr_mut(&p);
		u8 *cnt = rc->kind == REF_DATA ?
			  ptr + offsetof(struct btrfs_extent_data_ref, count) : ptr;
		s64 n = (s64)get_le32(cnt) + delta;

		if (n < 0) {
			path_release(fs, &p);
			return fs_err(fs, -EUCLEAN, "extent %llu: reference count below zero",
				      rc->bytenr);
		}
		if (n > 0) {
			put_le32(cnt, (u32)n);
			path_release(fs, &p);
			return 0;
		}
	} else if (delta > 0) {
		path_release(fs, &p);
		return fs_err(fs, -EUCLEAN, "tree block %llu referenced twice by one owner",
			      rc->bytenr);
	}
	ret = del_items(t, ac->er, &p, 1);
	path_release(fs, &p);
	return ret;
}

/* Delete every keyed backref item of an extent (after its last reference). */
static int del_keyed_refs(struct apply_ctx *ac, u64 bytenr)
{
	struct trans *t = ac->t;

	for (;;) {
		struct btrfs_key key = { bytenr, BTRFS_TREE_BLOCK_REF_KEY, 0 }, k;
		struct btrfs_path p;
		int ret = search_slot(t->fs, &ac->er->ref, &key, &p);

		if (ret < 0)
			return ret;
		if (!path_item_valid(&p)) {
			path_release(t->fs, &p);
			return 0;
		}
		path_key(&p, &k);
		path_release(t->fs, &p);
		if (k.objectid != bytenr || k.type > BTRFS_SHARED_DATA_REF_KEY)
			return 0;
		ret = search_slot_mod(t, ac->er, &k, &p, -1);
		if (!ret)
			ret = del_items(t, ac->er, &p, 1);
		path_release(t->fs, &p);
		if (ret)
			return ret < 0 ? ret : -EUCLEAN;
	}
}

/* Delete the extent item and release the space: its last reference is gone. */
static int free_extent(struct apply_ctx *ac, const struct ref_change *rc,
		       const struct btrfs_key *ikey)
{
	struct trans *t = ac->t;
	struct btrfs_path p;
	int ret;

	ret = search_slot_mod(t, ac->er, ikey, &p, -1);
	if (ret) {
		path_release(t->fs, &p);
		return ret < 0 ? ret : -EUCLEAN;
	}
	ret = del_items(t, ac->er, &p, 1);
	path_release(t->fs, &p);
	if (ret)
		return ret;
	ret = del_keyed_refs(ac, rc->bytenr);
	if (ret)
		return ret;
	ret = account_range(t, rc->bytenr, rc->num_bytes, false);
	if (ret)
		return ret;
	if (is_metadata_ref(rc->kind))
		cache_forget(t->fs, rc->bytenr);
	else
		ret = csum_delete_range(t, rc->bytenr, rc->num_bytes);
	return ret;
}

/*
 * Whether any keyed backref item exists for the extent.  Like the kernel, a
 * new reference then goes to a keyed item too: an inline ref may never
 * duplicate a keyed one.
 */
static bool has_keyed_refs(struct apply_ctx *ac, u64 bytenr)
{
	struct btrfs_key key = { bytenr, BTRFS_METADATA_ITEM_KEY + 1, 0 }, k;
	struct btrfs_path p;
	bool found = false;

	if (search_slot(ac->t->fs, &ac->er->ref, &key, &p) >= 0 && path_item_valid(&p)) {
		path_key(&p, &k);
		found = k.objectid == bytenr && k.type < BTRFS_BLOCK_GROUP_ITEM_KEY;
	}
	path_release(ac->t->fs, &p);
	return found;
}

/* Apply one aggregated change to an existing extent item. */
/*
 * Apply rc to the inline ref at ptr of the extent item at p (size bytes,
 * ending at end): change its count, or remove it when the count reaches
 * zero.  Releases p.
 */
static int change_inline_ref(struct apply_ctx *ac, struct btrfs_path *p, u8 *ptr, u8 *end,
			     u32 size, const struct ref_change *rc)
{
	struct fs_info *fs = ac->t->fs;
	u8 *cnt = inline_count_ptr(ptr);
	s64 n = cnt ? (s64)get_le32(cnt) + rc->delta : 1 + rc->delta;
	u32 isz = backref_inline_size(*ptr);
	int ret;

	if (n < 0 || (!cnt && n > 1)) {
		path_release(fs, p);
		return fs_err(fs, -EUCLEAN, "extent %llu: bad reference change", rc->bytenr);
	}
	if (n > 0) {
		put_le32(cnt, (u32)n);
		path_release(fs, p);
		return 0;
	}
	/* Remove this inline ref: shift the rest down, shrink the item. */
	memmove(ptr, ptr + isz, end - ptr - isz);
	ret = resize_item(ac->t, ac->er, p, size - isz);
	path_release(fs, p);
	return ret;
}

static int apply_existing(struct apply_ctx *ac, const struct ref_change *rc)
{
	struct trans *t = ac->t;
	struct fs_info *fs = t->fs;
	struct btrfs_path p;
	struct btrfs_key ikey;
	struct btrfs_extent_item *ei;
	u8 *base, *ptr, *end, *ins = NULL;
	u32 size, hdr;
	u64 refs;
	s64 nrefs;
	int ret;
	bool meta = is_metadata_ref(rc->kind);

	ikey.objectid = rc->bytenr;
	ikey.type = meta && skinny(fs) ? BTRFS_METADATA_ITEM_KEY : BTRFS_EXTENT_ITEM_KEY;
	ikey.offset = meta && skinny(fs) ? (u64)rc->level : rc->num_bytes;
	/* Room for one more inline ref, in case we add it inline. */
	ret = search_slot_mod(t, ac->er, &ikey, &p, inline_ref_size(rc->kind));
	if (ret) {
		path_release(fs, &p);
		if (ret > 0 && meta && skinny(fs))
			return fs_err(fs, -EUCLEAN, "tree block %llu: no METADATA_ITEM of level %d",
				      rc->bytenr, rc->level);
		return ret < 0 ? ret : 1;
	}
	base = path_ptr_mut(&p);
	size = path_size(&p);
	hdr = sizeof(struct btrfs_extent_item) +
	      (meta && !skinny(fs) ? sizeof(struct btrfs_tree_block_info) : 0);
	if (size < hdr) {
		path_release(fs, &p);
		return fs_err(fs, -EUCLEAN, "extent %llu: item too small", rc->bytenr);
	}
	ei = (void *)base;
	ei->flags = cpu_to_le64(le64_to_cpu(ei->flags) | rc->set_flags);
	if (rc->delta == 0) {
		path_release(fs, &p);
		return 0;
	}
	refs = le64_to_cpu(ei->refs);
	/* A count above INT64_MAX is no real count: corruption, not arithmetic. */
	if (refs > (u64)INT64_MAX || __builtin_add_overflow((s64)refs, rc->delta, &nrefs) ||
	    nrefs < 0) {
		path_release(fs, &p);
		return fs_err(fs, -EUCLEAN, "extent %llu: reference count %llu changed by %lld is out of range",
			      rc->bytenr, (unsigned long long)refs, (long long)rc->delta);
	}
	refs = (u64)nrefs;
	ei->refs = cpu_to_le64(refs);
	if (refs == 0) {
		path_release(fs, &p);
		return free_extent(ac, rc, &ikey);
	}
	/* Look for the ref inline, noting where a new one would go. */
	ptr = base + hdr;
	end = base + size;
	while (ptr < end) {
		struct backref br;
		int isz = backref_decode_inline(ptr, end - ptr, &br);

		if (isz < 0) {
			path_release(fs, &p);
			return fs_err(fs, -EUCLEAN, "extent %llu: bad inline ref", rc->bytenr);
		}
		if (ref_matches(&br, rc))
			break;
		if (!ins && (br.type > backref_key_type(rc->kind) ||
			     (br.type == backref_key_type(rc->kind) && backref_seq(&br) < ref_order(rc))))
			ins = ptr;
		ptr += isz;
	}
	if (ptr < end)
		return change_inline_ref(ac, &p, ptr, end, size, rc);
	if (rc->delta > 0 && size + inline_ref_size(rc->kind) < max_extent_item_size(fs) &&
	    !has_keyed_refs(ac, rc->bytenr)) {
		/* Add inline, keeping the order of Documentation/format.rst 2.8. */
		u32 off = (ins ? ins : end) - base;

		ret = resize_item(t, ac->er, &p, size + inline_ref_size(rc->kind));
		if (!ret) {
			base = path_ptr_mut(&p);
			memmove(base + off + inline_ref_size(rc->kind), base + off, size - off);
			write_inline_ref(base + off, rc, (u32)rc->delta);
		}
		path_release(fs, &p);
		return ret;
	}
	path_release(fs, &p);
	return apply_keyed_ref(ac, rc, rc->delta);
}

static int cmp_ref(const void *a, const void *b)
{
	const struct ref_change *x = a, *y = b;

#define CMP(f) do { if (x->f != y->f) return x->f < y->f ? -1 : 1; } while (0)
	CMP(bytenr);
	CMP(kind);
	CMP(root);
	CMP(parent);
	CMP(objectid);
	CMP(offset);
#undef CMP
	return 0;
}

/*
 * Within one extent: the change that creates its item first, then
 * additions, then drops, so the count never passes through zero (which
 * would free the extent) while references remain to be added.
 */
static int cmp_apply_order(const void *a, const void *b)
{
	const struct ref_change *x = a, *y = b;

	if (x->bytenr != y->bytenr)
		return x->bytenr < y->bytenr ? -1 : 1;
	if (x->new_extent != y->new_extent)
		return x->new_extent ? -1 : 1;
	if ((x->delta > 0) != (y->delta > 0))
		return x->delta > 0 ? -1 : 1;
	return cmp_ref(a, b);
}

/* Apply one batch: identical refs aggregate, then apply extent by extent. */
static int apply_batch(struct apply_ctx *ac, struct ref_change *v, size_t nr)
{
	size_t n = 0;

	qsort(v, nr, sizeof(*v), cmp_ref);
	for (size_t i = 0; i < nr; ) {
		struct ref_change agg = v[i];
		size_t j = i + 1;

		while (j < nr && cmp_ref(&v[j], &agg) == 0) {
			agg.delta += v[j].delta;
			agg.new_extent |= v[j].new_extent;
			agg.set_flags |= v[j].set_flags;
			if (v[j].new_extent) {
				agg.level = v[j].level;
				agg.generation = v[j].generation;
				agg.owner = v[j].owner;
			}
			j++;
		}
		i = j;
		if (agg.new_extent && agg.delta == 0)
			continue;	/* allocated and freed in this transaction */
		if (!agg.new_extent && agg.delta == 0 && !agg.set_flags)
			continue;
		v[n++] = agg;
	}
	qsort(v, n, sizeof(*v), cmp_apply_order);
	for (size_t i = 0; i < n; i++) {
		int ret;

		if (v[i].new_extent) {
			ret = insert_extent_item(ac, &v[i]);
		} else {
			ret = apply_existing(ac, &v[i]);
			if (ret > 0)
				ret = fs_err(ac->t->fs, -EUCLEAN, "extent %llu has no extent item",
					     v[i].bytenr);
		}
		if (ret)
			return ret;
	}
	return 0;
}

int apply_ref_queue(struct trans *t)
{
	struct apply_ctx ac = { .t = t };
	int rounds = 0, ret;

	ac.er = trans_get_root(t, BTRFS_EXTENT_TREE_OBJECTID);
	if (!ac.er)
		return trans_root_err(t);
	for (;;) {
		struct ref_queue *q = t->refs;
		struct ref_change *v;
		size_t nr;

		if (++rounds > 1000)
			return fs_err(t->fs, -EUCLEAN, "extent reference updates do not converge");
		if ((!q || !q->nr) && !space_map_dirty(t))
			return 0;
		if (q && q->nr) {
			/* Take the batch; changes it causes queue up anew. */
			v = q->v;
			nr = q->nr;
			q->v = NULL;
			q->nr = q->cap = 0;
			ret = apply_batch(&ac, v, nr);
			free(v);
			if (ret)
				return ret;
		}
		ret = update_block_groups(t);
		if (ret)
			return ret;
	}
}
