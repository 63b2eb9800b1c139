// SPDX-License-Identifier: GPL-2.0
/*
 * Tree modification: copy-on-write search, item insert / delete / resize,
 * leaf and node splits, merges with siblings, new roots and root collapse.
 *
 * Every block touched is first copied on write (cow_block), top-down, so a
 * parent is always a private copy before its child pointer is rewritten.
 * Splits restart the search from the root: simpler than fixing the path up,
 * and splits are rare next to plain inserts.
 */
#include <errno.h>
#include <string.h>
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/disk-io.h"

#define MAX_SPLIT_RETRIES 16

static inline u32 leaf_data_size(const struct fs_info *fs)
{
	return fs->nodesize - sizeof(struct btrfs_header);
}

static inline u32 node_max_ptrs(const struct fs_info *fs)
{
	return leaf_data_size(fs) / sizeof(struct btrfs_key_ptr);
}

static inline struct btrfs_header *hdr_mut(struct tree_block *b)
{
	return (struct btrfs_header *)b->data;
}

static inline struct btrfs_item *item_mut(struct tree_block *b, u32 slot)
{
	return (struct btrfs_item *)(b->data + sizeof(struct btrfs_header)) + slot;
}

static inline struct btrfs_key_ptr *ptr_mut(struct tree_block *b, u32 slot)
{
	return (struct btrfs_key_ptr *)(b->data + sizeof(struct btrfs_header)) + slot;
}

static inline u8 *leaf_data(struct tree_block *b)
{
	return b->data + sizeof(struct btrfs_header);
}

static inline void set_nritems(struct tree_block *b, u32 n)
{
	hdr_mut(b)->nritems = cpu_to_le32(n);
}

static inline void set_item_offset(struct tree_block *b, u32 slot, u32 off)
{
	item_mut(b, slot)->offset = cpu_to_le32(off);
}

static inline void set_item_size(struct tree_block *b, u32 slot, u32 size)
{
	item_mut(b, slot)->size = cpu_to_le32(size);
}

/* Start of the packed item data (the lowest item offset). */
static u32 leaf_data_end(const struct fs_info *fs, const struct tree_block *b)
{
	u32 n = tb_nritems(b);

	return n ? tb_item_offset(b, n - 1) : leaf_data_size(fs);
}

u32 leaf_free_space(const struct fs_info *fs, const struct tree_block *b)
{
	return leaf_data_end(fs, b) - tb_nritems(b) * (u32)sizeof(struct btrfs_item);
}

static u32 leaf_used(const struct fs_info *fs, const struct tree_block *b)
{
	return leaf_data_size(fs) - leaf_free_space(fs, b);
}

u8 *path_ptr_mut(struct btrfs_path *p)
{
	return p->nodes[0]->data + sizeof(struct btrfs_header) +
	       tb_item_offset(p->nodes[0], p->slots[0]);
}

static void block_first_key(const struct tree_block *b, struct btrfs_key *k)
{
	if (tb_level(b))
		tb_node_key(b, 0, k);
	else
		tb_item_key(b, 0, k);
}

/* Copy nodes[level] on write unless it is already this transaction's copy. */
static int cow_block(struct trans *t, struct trans_root *root, struct btrfs_path *p, int level)
{
	struct tree_block *b = p->nodes[level], *cow;
	int ret;

	if (b->dirty)
		return 0;
	ret = alloc_tree_block(t, root, tb_level(b), &cow);
	if (ret)
		return ret;
	memcpy(cow->data + sizeof(struct btrfs_header), b->data + sizeof(struct btrfs_header),
	       t->fs->nodesize - sizeof(struct btrfs_header));
	hdr_mut(cow)->nritems = tb_header(b)->nritems;
	ret = cow_update_refs(t, root, b, cow);
	if (ret) {
		tree_block_put(t->fs, cow);
		return ret;
	}
	if (level == p->root_level) {
		root->ref.bytenr = cow->bytenr;
		root->ref.generation = t->transid;
		root->ref.level = level;
		root->dirty = true;
	} else {
		struct btrfs_key_ptr *kp = ptr_mut(p->nodes[level + 1], p->slots[level + 1]);

		kp->blockptr = cpu_to_le64(cow->bytenr);
		kp->generation = cpu_to_le64(t->transid);
	}
	tree_block_put(t->fs, b);
	p->nodes[level] = cow;
	return 0;
}

/*
 * Read the child under nodes[level] at slots[level], verified against the
 * pointer.  This transaction's own blocks skip the first-key check: a split
 * may leave a fresh leaf empty until the insert that caused it lands.
 */
static int read_child_mod(struct trans *t, struct btrfs_path *p, int level,
			  struct tree_block **out)
{
	const struct tree_block *parent = p->nodes[level];
	u32 slot = p->slots[level];
	struct btrfs_key want, first;
	struct block_check check = {
		.level = level - 1,
		.generation = tb_node_gen(parent, slot),
	};
	struct tree_block *b;
	int ret;

	tb_node_key(parent, slot, &want);
	ret = read_tree_block(t->fs, tb_node_blockptr(parent, slot), &check, &b);
	if (ret)
		return ret;
	if (!b->dirty) {
		if (!tb_nritems(b)) {
			ret = fs_err(t->fs, -EUCLEAN, "tree block %llu: empty, parent expects a first key",
				     b->bytenr);
		} else {
			block_first_key(b, &first);
			if (btrfs_comp_keys(&first, &want))
				ret = fs_err(t->fs, -EUCLEAN,
					     "tree block %llu: first key (%llu %u %llu), parent expects (%llu %u %llu)",
					     b->bytenr, first.objectid, first.type, first.offset,
					     want.objectid, want.type, want.offset);
		}
		if (ret) {
			tree_block_put(t->fs, b);
			return ret;
		}
	}
	*out = b;
	return 0;
}

/* Propagate a changed first key of nodes[level] up while it is slot 0. */
static void fixup_low_keys(struct btrfs_path *p, int level, const struct btrfs_key *key)
{
	for (int l = level; l < p->root_level; l++) {
		btrfs_cpu_key_to_disk(&ptr_mut(p->nodes[l + 1], p->slots[l + 1])->key, key);
		if (p->slots[l + 1] != 0)
			break;
	}
}

/* Put a new root node above the current root (level + 1) with one pointer. */
static int insert_new_root(struct trans *t, struct trans_root *root, struct btrfs_path *p)
{
	int level = p->root_level + 1;
	struct tree_block *old = p->nodes[p->root_level], *nr;
	struct btrfs_key first;
	struct btrfs_key_ptr *kp;
	int ret;

	if (level >= BTRFS_MAX_LEVEL)
		return fs_err(t->fs, -EOVERFLOW, "tree %llu would exceed %d levels",
			      root->ref.objectid, BTRFS_MAX_LEVEL);
	ret = alloc_tree_block(t, root, level, &nr);
	if (ret)
		return ret;
	block_first_key(old, &first);
	kp = ptr_mut(nr, 0);
	btrfs_cpu_key_to_disk(&kp->key, &first);
	kp->blockptr = cpu_to_le64(old->bytenr);
	kp->generation = cpu_to_le64(tb_generation(old));
	set_nritems(nr, 1);
	p->nodes[level] = nr;
	p->slots[level] = 0;
	p->root_level = level;
	root->ref.bytenr = nr->bytenr;
	root->ref.level = level;
	root->ref.generation = t->transid;
	root->dirty = true;
	return 0;
}

/* Insert a key pointer into the (dirty) node at level, slot. */
static void node_insert_ptr(struct trans *t, struct tree_block *node, u32 slot,
			    const struct btrfs_key *key, u64 blockptr, u64 gen)
{
	u32 n = tb_nritems(node);
	struct btrfs_key_ptr *kp;

	memmove(ptr_mut(node, slot + 1), ptr_mut(node, slot),
		(n - slot) * sizeof(struct btrfs_key_ptr));
	kp = ptr_mut(node, slot);
	btrfs_cpu_key_to_disk(&kp->key, key);
	kp->blockptr = cpu_to_le64(blockptr);
	kp->generation = cpu_to_le64(gen);
	set_nritems(node, n + 1);
}

/* Make sure nodes[level] has a parent; returns 0 or <0. */
static int ensure_parent(struct trans *t, struct trans_root *root, struct btrfs_path *p, int level)
{
	if (level < p->root_level)
		return 0;
	return insert_new_root(t, root, p);
}

static int split_node(struct trans *t, struct trans_root *root, struct btrfs_path *p, int level)
{
	struct tree_block *b = p->nodes[level], *right;
	u32 n = tb_nritems(b), mid = (n + 1) / 2;
	struct btrfs_key first;
	int ret;

	ret = ensure_parent(t, root, p, level);
	if (ret)
		return ret;
	ret = alloc_tree_block(t, root, level, &right);
	if (ret)
		return ret;
	memcpy(ptr_mut(right, 0), ptr_mut(b, mid), (n - mid) * sizeof(struct btrfs_key_ptr));
	set_nritems(right, n - mid);
	set_nritems(b, mid);
	tb_node_key(right, 0, &first);
	node_insert_ptr(t, p->nodes[level + 1], p->slots[level + 1] + 1, &first,
			right->bytenr, t->transid);
	tree_block_put(t->fs, right);
	return 0;
}

/* Move leaf items [mid, n) of b into the empty leaf `right`. */
static void move_leaf_tail(const struct fs_info *fs, struct tree_block *b, u32 mid,
			   struct tree_block *right)
{
	u32 n = tb_nritems(b), k = n - mid;
	u32 end_mid = mid ? tb_item_offset(b, mid - 1) : leaf_data_size(fs);
	u32 start = leaf_data_end(fs, b);
	u32 shift = leaf_data_size(fs) - end_mid;

	memcpy(item_mut(right, 0), item_mut(b, mid), k * sizeof(struct btrfs_item));
	memcpy(leaf_data(right) + start + shift, leaf_data(b) + start, end_mid - start);
	for (u32 i = 0; i < k; i++)
		set_item_offset(right, i, tb_item_offset(right, i) + shift);
	set_nritems(right, k);
	set_nritems(b, mid);
}

/* Bytes (headers + data) that items [from, to) of a leaf use. */
static u32 items_used(const struct tree_block *b, u32 from, u32 to)
{
	u32 sum = 0;

	for (u32 i = from; i < to; i++)
		sum += tb_item_size(b, i) + sizeof(struct btrfs_item);
	return sum;
}

/*
 * Read the sibling at slot sslot of the (dirty) parent at level + 1 and copy
 * it on write, the parent's pointer updated.  The caller owns a reference.
 */
static int cow_sibling(struct trans *t, struct trans_root *root, struct tree_block *parent,
		       int level, u32 sslot, struct tree_block **out)
{
	struct btrfs_path sp = { 0 };
	int ret;

	sp.root_level = level + 1;
	sp.nodes[level + 1] = parent;
	sp.slots[level + 1] = sslot;
	ret = read_child_mod(t, &sp, level + 1, out);
	if (ret)
		return ret;
	sp.nodes[level] = *out;
	ret = cow_block(t, root, &sp, level);
	*out = sp.nodes[level];
	if (ret) {
		tree_block_put(t->fs, *out);
		*out = NULL;
	}
	return ret;
}

/* Move the first k items of leaf src to the end of leaf dst (dst has room). */
static void leaf_move_head(const struct fs_info *fs, struct tree_block *dst, struct tree_block *src,
			   u32 k)
{
	u32 dn = tb_nritems(dst), sn = tb_nritems(src);
	u32 dend = leaf_data_end(fs, dst);
	u32 kstart = tb_item_offset(src, k - 1);	/* data of items [0, k) */
	u32 kbytes = leaf_data_size(fs) - kstart;
	u32 rest_end = leaf_data_end(fs, src);

	/* Append: the data lands just below dst's, offsets shift accordingly. */
	memcpy(leaf_data(dst) + dend - kbytes, leaf_data(src) + kstart, kbytes);
	memcpy(item_mut(dst, dn), item_mut(src, 0), k * sizeof(struct btrfs_item));
	for (u32 i = 0; i < k; i++)
		set_item_offset(dst, dn + i, tb_item_offset(dst, dn + i) - (leaf_data_size(fs) - dend));
	set_nritems(dst, dn + k);
	/* The rest of src slides to the end of its data area and to slot 0. */
	memmove(leaf_data(src) + rest_end + kbytes, leaf_data(src) + rest_end, kstart - rest_end);
	memmove(item_mut(src, 0), item_mut(src, k), (sn - k) * sizeof(struct btrfs_item));
	for (u32 i = 0; i < sn - k; i++)
		set_item_offset(src, i, tb_item_offset(src, i) + kbytes);
	set_nritems(src, sn - k);
}

/* Move the last k items of leaf src to the front of leaf dst (dst has room). */
static void leaf_move_tail(const struct fs_info *fs, struct tree_block *dst, struct tree_block *src,
			   u32 k)
{
	u32 dn = tb_nritems(dst), sn = tb_nritems(src), m = sn - k;
	u32 dend = leaf_data_end(fs, dst), send = leaf_data_end(fs, src);
	u32 mend = m ? tb_item_offset(src, m - 1) : leaf_data_size(fs);	/* data of [m, sn) */
	u32 kbytes = mend - send;
	u32 dbytes = leaf_data_size(fs) - dend;

	/* Make room at the front of dst: its data moves down by kbytes. */
	memmove(leaf_data(dst) + dend - kbytes, leaf_data(dst) + dend, dbytes);
	memmove(item_mut(dst, k), item_mut(dst, 0), dn * sizeof(struct btrfs_item));
	for (u32 i = k; i < dn + k; i++)
		set_item_offset(dst, i, tb_item_offset(dst, i) - kbytes);
	/* The moved items' data goes to the top of dst's data area. */
	memcpy(leaf_data(dst) + leaf_data_size(fs) - kbytes, leaf_data(src) + send, kbytes);
	memcpy(item_mut(dst, 0), item_mut(src, m), k * sizeof(struct btrfs_item));
	for (u32 i = 0; i < k; i++)
		set_item_offset(dst, i, tb_item_offset(dst, i) + (leaf_data_size(fs) - mend));
	set_nritems(dst, dn + k);
	set_nritems(src, m);
}

/*
 * Before splitting a full leaf, push items into a sibling under the same
 * parent that has room, as btrfs does: items before the insertion slot go
 * left (at least one stays, so the new key still sorts into this leaf),
 * items from the slot on go right (an item that grows stays).  Returns 1
 * if the leaf now has room for ins_len, 0 if not (nothing moved), <0.
 */
static int push_to_siblings(struct trans *t, struct trans_root *root, struct btrfs_path *p,
			    u32 ins_len, bool exact)
{
	struct fs_info *fs = t->fs;
	struct tree_block *b = p->nodes[0], *parent = p->nodes[1], *sib;
	u32 pslot = p->slots[1], slot = p->slots[0], n = tb_nritems(b);
	u32 need = ins_len - leaf_free_space(fs, b);
	int ret;

	if (!parent)
		return 0;
	for (int dir = -1; dir <= 1; dir += 2) {
		u32 k = 0, moved = 0, limit;

		if (dir < 0 ? pslot == 0 : pslot + 1 >= tb_nritems(parent))
			continue;
		limit = dir < 0 ? (slot ? slot - 1 : 0) : (exact ? n - slot - 1 : n - slot);
		if (!limit)
			continue;
		/* How many items to move: enough for ins_len, within the sibling's room. */
		ret = cow_sibling(t, root, parent, 0, dir < 0 ? pslot - 1 : pslot + 1, &sib);
		if (ret)
			return ret;
		while (k < limit && moved < need) {
			u32 idx = dir < 0 ? k : n - 1 - k;
			u32 sz = tb_item_size(b, idx) + sizeof(struct btrfs_item);

			if (moved + sz > leaf_free_space(fs, sib))
				break;
			moved += sz;
			k++;
		}
		if (moved < need) {
			tree_block_put(fs, sib);
			continue;
		}
		if (dir < 0) {
			struct btrfs_key first;

			leaf_move_head(fs, sib, b, k);
			tb_item_key(b, 0, &first);
			fixup_low_keys(p, 0, &first);
		} else {
			struct btrfs_key first;

			leaf_move_tail(fs, sib, b, k);
			tb_item_key(sib, 0, &first);
			btrfs_cpu_key_to_disk(&ptr_mut(parent, pslot + 1)->key, &first);
		}
		tree_block_put(fs, sib);
		return 1;
	}
	return 0;
}

/*
 * Make room for an item of ins_len bytes (header included) at slots[0].
 * Splits in one of three ways, then the caller searches again:
 *   at the end or start: a new empty leaf beside b, keyed by the new key;
 *   in the middle: items split by bytes, or at the slot if that fits better.
 * For an existing item that grows (exact), its followers move out, or it
 * moves out alone.
 */
static int split_leaf(struct trans *t, struct trans_root *root, struct btrfs_path *p,
		      const struct btrfs_key *key, u32 ins_len, bool exact)
{
	struct fs_info *fs = t->fs;
	struct tree_block *b = p->nodes[0], *nb;
	u32 n = tb_nritems(b), slot = p->slots[0], mid;
	u32 pslot;
	int ret;

	ret = ensure_parent(t, root, p, 0);
	if (ret)
		return ret;
	pslot = p->slots[1];
	ret = alloc_tree_block(t, root, 0, &nb);
	if (ret)
		return ret;
	if (exact) {
		if (slot + 1 < n)
			mid = slot + 1;
		else if (slot > 0)
			mid = slot;
		else {
			tree_block_put(fs, nb);
			return fs_err(fs, -EOVERFLOW, "item (%llu %u %llu) cannot grow beyond a leaf",
				      key->objectid, key->type, key->offset);
		}
	} else if (slot >= n) {
		/* Appending: the new item starts an empty leaf on the right. */
		node_insert_ptr(t, p->nodes[1], pslot + 1, key, nb->bytenr, t->transid);
		tree_block_put(fs, nb);
		return 0;
	} else if (slot == 0) {
		/* Before everything: an empty leaf on the left, keyed by the new key. */
		node_insert_ptr(t, p->nodes[1], pslot, key, nb->bytenr, t->transid);
		if (pslot == 0)
			fixup_low_keys(p, 1, key);
		tree_block_put(fs, nb);
		return 0;
	} else {
		u32 total = items_used(b, 0, n), acc = 0;

		for (mid = 0; mid < n - 1 && acc < total / 2; mid++)
			acc += tb_item_size(b, mid) + sizeof(struct btrfs_item);
		if (mid == 0)
			mid = 1;
		/* The new item joins the side it sorts into; it must fit there. */
		if (slot < mid ? items_used(b, 0, mid) + ins_len > leaf_data_size(fs)
			       : items_used(b, mid, n) + ins_len > leaf_data_size(fs))
			mid = slot;
	}
	move_leaf_tail(fs, b, mid, nb);
	{
		struct btrfs_key first;

		tb_item_key(nb, 0, &first);
		node_insert_ptr(t, p->nodes[1], pslot + 1, &first, nb->bytenr, t->transid);
	}
	tree_block_put(fs, nb);
	return 0;
}

int search_slot_mod(struct trans *t, struct trans_root *root,
		    const struct btrfs_key *key, struct btrfs_path *p, int ins_len)
{
	struct fs_info *fs = t->fs;
	int tries = 0, ret;

again:
	if (++tries > MAX_SPLIT_RETRIES)
		return fs_err(fs, -EUCLEAN, "tree %llu: no room for an item after %d splits",
			      root->ref.objectid, MAX_SPLIT_RETRIES);
	memset(p, 0, sizeof(*p));
	p->owner = root->ref.objectid;
	{
		struct block_check check = { .level = root->ref.level,
					     .generation = root->ref.generation };
		struct tree_block *b;

		ret = read_tree_block(fs, root->ref.bytenr, &check, &b);
		if (ret)
			return ret;
		p->root_level = tb_level(b);
		p->nodes[p->root_level] = b;
	}
	ret = cow_block(t, root, p, p->root_level);
	if (ret)
		goto fail;
	for (int level = p->root_level; level > 0; level--) {
		struct tree_block *b = p->nodes[level], *child;

		if (ins_len > 0 && tb_nritems(b) >= node_max_ptrs(fs) - 3) {
			p->slots[level] = node_slot(b, key);
			ret = split_node(t, root, p, level);
			if (ret)
				goto fail;
			path_release(fs, p);
			goto again;
		}
		p->slots[level] = node_slot(b, key);
		ret = read_child_mod(t, p, level, &child);
		if (ret)
			goto fail;
		p->nodes[level - 1] = child;
		ret = cow_block(t, root, p, level - 1);
		if (ret)
			goto fail;
	}
	{
		bool exact;
		struct tree_block *leaf = p->nodes[0];

		p->slots[0] = leaf_lower_bound(leaf, key, &exact);
		if (ins_len > 0 && leaf_free_space(fs, leaf) < (u32)ins_len) {
			/* 1: a sibling took items; 0: nothing to push, split instead. */
			ret = push_to_siblings(t, root, p, ins_len, exact);
			if (ret == 0)
				ret = split_leaf(t, root, p, key, ins_len, exact);
			if (ret < 0)
				goto fail;
			path_release(fs, p);
			goto again;
		}
		return exact ? 0 : 1;
	}
fail:
	path_release(fs, p);
	return ret;
}

int insert_empty_item(struct trans *t, struct trans_root *root, struct btrfs_path *p,
		      const struct btrfs_key *key, u32 data_size)
{
	struct fs_info *fs = t->fs;
	struct tree_block *leaf;
	u32 slot, n, data_end, end_slot;
	int ret;

	if (data_size > max_item_size(fs))
		return fs_err(fs, -EOVERFLOW, "item of %u bytes exceeds the leaf size", data_size);
	ret = search_slot_mod(t, root, key, p, data_size + sizeof(struct btrfs_item));
	if (ret == 0) {
		path_release(fs, p);
		return fs_err(fs, -EEXIST, "item (%llu %u %llu) already exists",
			      (unsigned long long)key->objectid, key->type,
			      (unsigned long long)key->offset);
	}
	if (ret < 0)
		return ret;
	leaf = p->nodes[0];
	slot = p->slots[0];
	n = tb_nritems(leaf);
	data_end = leaf_data_end(fs, leaf);
	end_slot = slot ? tb_item_offset(leaf, slot - 1) : leaf_data_size(fs);
	/* Items slot..n-1 move down by data_size to open the new item's data. */
	if (slot < n) {
		memmove(leaf_data(leaf) + data_end - data_size, leaf_data(leaf) + data_end,
			end_slot - data_end);
		for (u32 i = slot; i < n; i++)
			set_item_offset(leaf, i, tb_item_offset(leaf, i) - data_size);
		memmove(item_mut(leaf, slot + 1), item_mut(leaf, slot),
			(n - slot) * sizeof(struct btrfs_item));
	}
	btrfs_cpu_key_to_disk(&item_mut(leaf, slot)->key, key);
	set_item_offset(leaf, slot, end_slot - data_size);
	set_item_size(leaf, slot, data_size);
	set_nritems(leaf, n + 1);
	memset(leaf_data(leaf) + end_slot - data_size, 0, data_size);
	if (slot == 0)
		fixup_low_keys(p, 0, key);
	return 0;
}

int insert_item(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		const void *data, u32 data_size)
{
	struct btrfs_path p;
	int ret = insert_empty_item(t, root, &p, key, data_size);

	if (ret)
		return ret;
	if (data_size)
		memcpy(path_ptr_mut(&p), data, data_size);
	path_release(t->fs, &p);
	return 0;
}

int set_item_key(struct trans *t, struct btrfs_path *p, const struct btrfs_key *key)
{
	struct tree_block *leaf = p->nodes[0];
	u32 slot = p->slots[0];
	struct btrfs_key k;

	if (slot > 0) {
		tb_item_key(leaf, slot - 1, &k);
		if (btrfs_comp_keys(&k, key) >= 0)
			return fs_err(t->fs, -EINVAL, "new key sorts before its left neighbour");
	}
	if (slot + 1 < tb_nritems(leaf)) {
		tb_item_key(leaf, slot + 1, &k);
		if (btrfs_comp_keys(&k, key) <= 0)
			return fs_err(t->fs, -EINVAL, "new key sorts after its right neighbour");
	}
	btrfs_cpu_key_to_disk(&item_mut(leaf, slot)->key, key);
	if (slot == 0)
		fixup_low_keys(p, 0, key);
	return 0;
}

int resize_item(struct trans *t, struct trans_root *root, struct btrfs_path *p,
		u32 new_size)
{
	struct fs_info *fs = t->fs;
	struct tree_block *leaf = p->nodes[0];
	u32 slot = p->slots[0], n = tb_nritems(leaf);
	u32 old_size = tb_item_size(leaf, slot), data_end = leaf_data_end(fs, leaf);
	u32 item_off = tb_item_offset(leaf, slot);

	if (new_size == old_size)
		return 0;
	if (new_size > old_size) {
		u32 diff = new_size - old_size;

		if (leaf_free_space(fs, leaf) < diff)
			return fs_err(fs, -ENOSPC, "leaf %llu has no room to grow an item",
				      leaf->bytenr);
		/* Items slot..n-1 slide down; the item's old bytes stay at its start. */
		memmove(leaf_data(leaf) + data_end - diff, leaf_data(leaf) + data_end,
			item_off + old_size - data_end);
		for (u32 i = slot; i < n; i++)
			set_item_offset(leaf, i, tb_item_offset(leaf, i) - diff);
		memset(leaf_data(leaf) + item_off - diff + old_size, 0, diff);
	} else {
		u32 diff = old_size - new_size;

		/* Cut from the end: the item's first new_size bytes stay. */
		memmove(leaf_data(leaf) + data_end + diff, leaf_data(leaf) + data_end,
			item_off + new_size - data_end);
		for (u32 i = slot; i < n; i++)
			set_item_offset(leaf, i, tb_item_offset(leaf, i) + diff);
	}
	set_item_size(leaf, slot, new_size);
	(void)root;
	return 0;
}

/* Append all items of leaf src after those of leaf dst (dst has room). */
static void leaf_append(const struct fs_info *fs, struct tree_block *dst, struct tree_block *src)
{
	u32 dn = tb_nritems(dst), sn = tb_nritems(src);
	u32 dend = leaf_data_end(fs, dst), send = leaf_data_end(fs, src);
	u32 sbytes = leaf_data_size(fs) - send;
	u32 shift = leaf_data_size(fs) - dend;	/* src offsets move down by this */

	memcpy(leaf_data(dst) + dend - sbytes, leaf_data(src) + send, sbytes);
	memcpy(item_mut(dst, dn), item_mut(src, 0), sn * sizeof(struct btrfs_item));
	for (u32 i = 0; i < sn; i++)
		set_item_offset(dst, dn + i, tb_item_offset(dst, dn + i) - shift);
	set_nritems(dst, dn + sn);
	set_nritems(src, 0);
}

static void node_append(struct tree_block *dst, struct tree_block *src)
{
	u32 dn = tb_nritems(dst), sn = tb_nritems(src);

	memcpy(ptr_mut(dst, dn), ptr_mut(src, 0), sn * sizeof(struct btrfs_key_ptr));
	set_nritems(dst, dn + sn);
	set_nritems(src, 0);
}

static int del_ptr(struct trans *t, struct trans_root *root, struct btrfs_path *p, int level);

/*
 * Replace the root by its only child while the root is a node with one
 * pointer.  The old root block is freed.
 */
static int collapse_root(struct trans *t, struct trans_root *root, struct btrfs_path *p)
{
	while (p->root_level > 0 && tb_nritems(p->nodes[p->root_level]) == 1) {
		int level = p->root_level;
		struct tree_block *old = p->nodes[level], *child = p->nodes[level - 1];
		int ret;

		p->slots[level] = 0;
		if (!child || child->bytenr != tb_node_blockptr(old, 0)) {
			ret = read_child_mod(t, p, level, &child);
			if (ret)
				return ret;
			if (p->nodes[level - 1])
				tree_block_put(t->fs, p->nodes[level - 1]);
			p->nodes[level - 1] = child;
		}
		/* The new root must be this transaction's copy, like any changed root. */
		ret = cow_block(t, root, p, level - 1);
		if (ret)
			return ret;
		child = p->nodes[level - 1];
		root->ref.bytenr = child->bytenr;
		root->ref.level = level - 1;
		root->ref.generation = tb_generation(child);
		root->dirty = true;
		ret = free_tree_block(t, root, old);
		tree_block_put(t->fs, old);
		p->nodes[level] = NULL;
		p->slots[level] = 0;
		p->root_level = level - 1;
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Merge nodes[level] with a sibling when both fit in one block: into the
 * left sibling if there is one, else the right sibling into it.  The emptied
 * block's pointer is removed (which may cascade upwards).
 */
static int try_merge(struct trans *t, struct trans_root *root, struct btrfs_path *p, int level)
{
	struct fs_info *fs = t->fs;
	struct tree_block *b = p->nodes[level], *parent, *sib;
	u32 pslot;
	bool left;
	int ret;

	if (level >= p->root_level)
		return 0;
	parent = p->nodes[level + 1];
	pslot = p->slots[level + 1];
	if (level == 0 ? leaf_used(fs, b) > leaf_data_size(fs) / 4
		       : tb_nritems(b) > node_max_ptrs(fs) / 4)
		return 0;
	left = pslot > 0;
	if (!left && pslot + 1 >= tb_nritems(parent))
		return 0;
	ret = cow_sibling(t, root, parent, level, left ? pslot - 1 : pslot + 1, &sib);
	if (ret)
		return ret;
	if (level == 0) {
		struct tree_block *dst = left ? sib : b, *src = left ? b : sib;

		if (leaf_used(fs, src) > leaf_free_space(fs, dst)) {
			tree_block_put(fs, sib);
			return 0;
		}
		leaf_append(fs, dst, src);
	} else {
		struct tree_block *dst = left ? sib : b, *src = left ? b : sib;

		if (tb_nritems(dst) + tb_nritems(src) > node_max_ptrs(fs) - 3) {
			tree_block_put(fs, sib);
			return 0;
		}
		node_append(dst, src);
	}
	if (left) {
		/* b is empty now: drop it; the path moves to the sibling. */
		ret = free_tree_block(t, root, b);
		tree_block_put(fs, b);
		p->nodes[level] = sib;
		if (!ret)
			ret = del_ptr(t, root, p, level + 1);
		p->slots[level + 1] = pslot - 1;
	} else {
		ret = free_tree_block(t, root, sib);
		tree_block_put(fs, sib);
		if (!ret) {
			p->slots[level + 1] = pslot + 1;
			ret = del_ptr(t, root, p, level + 1);
			p->slots[level + 1] = pslot;
		}
	}
	return ret;
}

/*
 * Remove the pointer at slots[level] of nodes[level]; empty nodes go away,
 * small ones merge, a one-pointer root collapses.
 */
static int del_ptr(struct trans *t, struct trans_root *root, struct btrfs_path *p, int level)
{
	struct tree_block *node = p->nodes[level];
	u32 slot = p->slots[level], n = tb_nritems(node);
	int ret;

	memmove(ptr_mut(node, slot), ptr_mut(node, slot + 1),
		(n - slot - 1) * sizeof(struct btrfs_key_ptr));
	set_nritems(node, n - 1);
	if (n - 1 == 0) {
		if (level == p->root_level) {
			/* Every pointer is gone: the tree becomes one empty leaf. */
			struct tree_block *leaf;

			ret = alloc_tree_block(t, root, 0, &leaf);
			if (ret)
				return ret;
			ret = free_tree_block(t, root, node);
			root->ref.bytenr = leaf->bytenr;
			root->ref.level = 0;
			root->ref.generation = t->transid;
			root->dirty = true;
			tree_block_put(t->fs, leaf);
			return ret;
		}
		ret = free_tree_block(t, root, node);
		if (ret)
			return ret;
		return del_ptr(t, root, p, level + 1);
	}
	if (slot == 0) {
		struct btrfs_key first;

		tb_node_key(node, 0, &first);
		fixup_low_keys(p, level, &first);
	}
	if (level == p->root_level)
		return collapse_root(t, root, p);
	return try_merge(t, root, p, level);
}

int del_items(struct trans *t, struct trans_root *root, struct btrfs_path *p, u32 nr)
{
	struct fs_info *fs = t->fs;
	struct tree_block *leaf = p->nodes[0];
	u32 slot = p->slots[0], n = tb_nritems(leaf);
	u32 data_end = leaf_data_end(fs, leaf), dsize = 0;
	int ret;

	if (!nr || slot + nr > n)
		return fs_err(fs, -EINVAL, "deleting %u items at slot %u of %u", nr, slot, n);
	for (u32 i = slot; i < slot + nr; i++)
		dsize += tb_item_size(leaf, i);
	if (slot + nr < n) {
		u32 last_del_off = tb_item_offset(leaf, slot + nr - 1);

		memmove(leaf_data(leaf) + data_end + dsize, leaf_data(leaf) + data_end,
			last_del_off - data_end);
		for (u32 i = slot + nr; i < n; i++)
			set_item_offset(leaf, i, tb_item_offset(leaf, i) + dsize);
		memmove(item_mut(leaf, slot), item_mut(leaf, slot + nr),
			(n - slot - nr) * sizeof(struct btrfs_item));
	}
	set_nritems(leaf, n - nr);
	if (n - nr == 0) {
		if (p->root_level == 0)
			return 0;	/* an empty root leaf is a valid empty tree */
		ret = free_tree_block(t, root, leaf);
		if (ret)
			return ret;
		return del_ptr(t, root, p, 1);
	}
	if (slot == 0) {
		struct btrfs_key first;

		tb_item_key(leaf, 0, &first);
		fixup_low_keys(p, 0, &first);
	}
	return try_merge(t, root, p, 0);
}

/* ---- packing a transaction's leaves ------------------------------------------- */

/* The child at slot of node (this transaction's block, so in the cache). */
static int read_new_child(struct trans *t, const struct tree_block *node, u32 slot,
			  struct tree_block **out)
{
	struct block_check check = {
		.level = tb_level(node) - 1,
		.generation = tb_node_gen(node, slot),
	};

	return read_tree_block(t->fs, tb_node_blockptr(node, slot), &check, out);
}

/* Pack the leaves under one level-1 node of this transaction. */
static int pack_under(struct trans *t, struct trans_root *root, struct tree_block *node, bool is_root)
{
	struct fs_info *fs = t->fs;
	u32 i = 0;
	int ret = 0;

	while (!ret && i + 1 < tb_nritems(node)) {
		struct tree_block *l, *r;
		u32 k = 0, room, rn;

		if (tb_node_gen(node, i) != t->transid || tb_node_gen(node, i + 1) != t->transid) {
			i++;
			continue;
		}
		ret = read_new_child(t, node, i, &l);
		if (ret)
			break;
		ret = read_new_child(t, node, i + 1, &r);
		if (ret) {
			tree_block_put(fs, l);
			break;
		}
		room = leaf_free_space(fs, l);
		rn = tb_nritems(r);
		while (k < rn && tb_item_size(r, k) + sizeof(struct btrfs_item) <= room)
			room -= tb_item_size(r, k++) + sizeof(struct btrfs_item);
		/* A root keeps two children: one would be a root to collapse. */
		if (k == rn && is_root && tb_nritems(node) <= 2)
			k = rn - 1;
		if (!l->dirty || !r->dirty || !k) {
			i++;
		} else if (k == rn) {
			leaf_append(fs, l, r);
			memmove(ptr_mut(node, i + 1), ptr_mut(node, i + 2),
				(tb_nritems(node) - i - 2) * sizeof(struct btrfs_key_ptr));
			set_nritems(node, tb_nritems(node) - 1);
			ret = free_tree_block(t, root, r);
		} else {
			struct btrfs_key first;

			leaf_move_head(fs, l, r, k);
			tb_item_key(r, 0, &first);
			btrfs_cpu_key_to_disk(&ptr_mut(node, i + 1)->key, &first);
			i++;
		}
		tree_block_put(fs, l);
		tree_block_put(fs, r);
	}
	return ret;
}

/* Down the nodes this transaction wrote, to the level-1 ones (depth is bounded by the levels). */
static int pack_node(struct trans *t, struct trans_root *root, struct tree_block *node,
		     bool is_root)
{
	int ret = 0;

	if (!node->dirty)
		return 0;
	if (tb_level(node) == 1)
		return pack_under(t, root, node, is_root);
	for (u32 i = 0; !ret && i < tb_nritems(node); i++) {
		struct tree_block *child;

		if (tb_node_gen(node, i) != t->transid)
			continue;
		ret = read_new_child(t, node, i, &child);
		if (ret)
			break;
		ret = pack_node(t, root, child, false);
		tree_block_put(t->fs, child);
	}
	return ret;
}

int tree_pack_new_leaves(struct trans *t, struct trans_root *root)
{
	struct block_check check = { .level = root->ref.level, .generation = root->ref.generation };
	struct tree_block *top;
	int ret;

	if (root->ref.generation != t->transid || root->ref.level < 1)
		return 0;
	ret = read_tree_block(t->fs, root->ref.bytenr, &check, &top);
	if (ret)
		return ret;
	ret = pack_node(t, root, top, true);
	tree_block_put(t->fs, top);
	return ret;
}
