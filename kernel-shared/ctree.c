// SPDX-License-Identifier: GPL-2.0
/*
 * Read-only B-tree search and iteration.  Every block on a path is verified
 * against what its parent pointer expects (level, generation, first key), and
 * iteration checks that keys strictly increase across leaves, so corrupt
 * trees with shared or cyclic pointers fail with an error instead of looping.
 */
#include <errno.h>
#include <string.h>
#include "kernel-shared/ctree.h"
#include "kernel-shared/disk-io.h"

void path_release(struct fs_info *fs, struct btrfs_path *p)
{
	for (int i = 0; i < BTRFS_MAX_LEVEL; i++) {
		if (p->nodes[i])
			tree_block_put(fs, p->nodes[i]);
		p->nodes[i] = NULL;
		p->slots[i] = 0;
	}
}

u32 leaf_lower_bound(const struct tree_block *b, const struct btrfs_key *key,
			    bool *exact)
{
	u32 lo = 0, hi = tb_nritems(b);

	*exact = false;
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		struct btrfs_key k;
		int c;

		tb_item_key(b, mid, &k);
		c = btrfs_comp_keys(&k, key);
		if (c < 0) {
			lo = mid + 1;
		} else {
			if (c == 0)
				*exact = true;
			hi = mid;
		}
	}
	return lo;
}

u32 node_slot(const struct tree_block *b, const struct btrfs_key *key)
{
	u32 lo = 0, hi = tb_nritems(b);

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;
		struct btrfs_key k;

		tb_node_key(b, mid, &k);
		if (btrfs_comp_keys(&k, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : 0;
}

/* Read the child of nodes[level] at slots[level] into nodes[level - 1]. */
static int read_child(struct fs_info *fs, struct btrfs_path *p, int level)
{
	const struct tree_block *parent = p->nodes[level];
	u32 slot = p->slots[level];
	struct btrfs_key first;
	struct block_check check = {
		.level = level - 1,
		.generation = tb_node_gen(parent, slot),
		.first_key = &first,
	};
	struct tree_block *child;
	int ret;

	tb_node_key(parent, slot, &first);
	ret = read_tree_block(fs, tb_node_blockptr(parent, slot), &check, &child);
	if (ret)
		return ret;
	if (p->nodes[level - 1])
		tree_block_put(fs, p->nodes[level - 1]);
	p->nodes[level - 1] = child;
	return 0;
}

static int read_root_block(struct fs_info *fs, const struct root_ref *root,
			   struct tree_block **out)
{
	struct block_check check = {
		.level = root->level,
		.generation = root->generation,
	};

	/*
	 * The root block of a tree that is never shared names that tree as its
	 * owner; subvolume roots may be owned by the tree they were copied from.
	 */
	if (root->objectid < BTRFS_FIRST_FREE_OBJECTID && root->objectid != BTRFS_FS_TREE_OBJECTID)
		check.owner = root->objectid;
	return read_tree_block(fs, root->bytenr, &check, out);
}

int search_slot(struct fs_info *fs, const struct root_ref *root,
		const struct btrfs_key *key, struct btrfs_path *p)
{
	struct tree_block *b;
	bool exact;
	int ret;

	memset(p, 0, sizeof(*p));
	ret = read_root_block(fs, root, &b);
	if (ret)
		return ret;
	p->root_level = tb_level(b);
	p->owner = root->objectid;
	p->nodes[p->root_level] = b;
	for (int level = p->root_level; level > 0; level--) {
		p->slots[level] = node_slot(p->nodes[level], key);
		ret = read_child(fs, p, level);
		if (ret) {
			path_release(fs, p);
			return ret;
		}
	}
	p->slots[0] = leaf_lower_bound(p->nodes[0], key, &exact);
	if (exact)
		return 0;
	if (p->slots[0] >= tb_nritems(p->nodes[0])) {
		/* Step onto the first item of the next leaf, if any. */
		p->slots[0] = tb_nritems(p->nodes[0]) ? tb_nritems(p->nodes[0]) - 1 : 0;
		ret = next_item(fs, p);
		if (ret < 0) {
			path_release(fs, p);
			return ret;
		}
	}
	return 1;
}

/*
 * Move the path to the leftmost (dir > 0) or rightmost (dir < 0) leaf below
 * the pointer now selected at `level`.
 */
static int descend(struct fs_info *fs, struct btrfs_path *p, int level, int dir)
{
	int ret;

	for (; level > 0; level--) {
		ret = read_child(fs, p, level);
		if (ret)
			return ret;
		if (dir > 0)
			p->slots[level - 1] = 0;
		else
			p->slots[level - 1] = tb_nritems(p->nodes[level - 1]) ?
					      tb_nritems(p->nodes[level - 1]) - 1 : 0;
	}
	return 0;
}

static int check_order(struct fs_info *fs, const struct btrfs_path *p,
		       const struct btrfs_key *prev, int dir)
{
	struct btrfs_key cur;
	int c;

	path_key(p, &cur);
	c = btrfs_comp_keys(&cur, prev);
	if ((dir > 0 && c <= 0) || (dir < 0 && c >= 0))
		return fs_err(fs, -EUCLEAN,
			      "tree block %llu: key (%llu %u %llu) out of order after (%llu %u %llu) in tree %llu",
			      (unsigned long long)p->nodes[0]->bytenr,
			      (unsigned long long)cur.objectid, cur.type,
			      (unsigned long long)cur.offset,
			      (unsigned long long)prev->objectid, prev->type,
			      (unsigned long long)prev->offset,
			      (unsigned long long)p->owner);
	return 0;
}

/* Shared body of next_item / prev_item. */
static int step_item(struct fs_info *fs, struct btrfs_path *p, int dir)
{
	struct btrfs_key prev;
	bool have_prev = path_item_valid(p);
	int level, ret;

	if (!p->nodes[0])
		return 1;
	if (have_prev)
		path_key(p, &prev);
	for (;;) {
		u32 nr = tb_nritems(p->nodes[0]);

		if (dir > 0 && p->slots[0] + 1 < nr) {
			p->slots[0]++;
			break;
		}
		if (dir < 0 && p->slots[0] > 0 && nr) {
			p->slots[0]--;
			break;
		}
		/* Leave the leaf: find the lowest level with a sibling pointer. */
		for (level = 1; level <= p->root_level; level++) {
			u32 n = tb_nritems(p->nodes[level]);

			if (dir > 0 && p->slots[level] + 1 < n)
				break;
			if (dir < 0 && p->slots[level] > 0)
				break;
		}
		if (level > p->root_level) {
			/* End of tree: park past the last (or before the first) item. */
			if (dir > 0)
				p->slots[0] = nr;
			return 1;
		}
		p->slots[level] += dir;
		ret = descend(fs, p, level, dir);
		if (ret)
			return ret;
		if (tb_nritems(p->nodes[0]) == 0)
			return fs_err(fs, -EUCLEAN, "tree block %llu: empty leaf inside tree %llu",
				      (unsigned long long)p->nodes[0]->bytenr,
				      (unsigned long long)p->owner);
		break;
	}
	if (have_prev)
		return check_order(fs, p, &prev, dir);
	return 0;
}

int next_item(struct fs_info *fs, struct btrfs_path *p)
{
	return step_item(fs, p, 1);
}

int prev_item(struct fs_info *fs, struct btrfs_path *p)
{
	/* From the parked end position, the previous item is the last one. */
	if (p->nodes[0] && p->slots[0] >= tb_nritems(p->nodes[0]) && tb_nritems(p->nodes[0])) {
		p->slots[0] = tb_nritems(p->nodes[0]) - 1;
		return 0;
	}
	return step_item(fs, p, -1);
}

/* Present the item the path is at, or end the range (1), or pass an error on. */
static int key_iter_load(struct key_iter *it, int ret)
{
	it->ptr = NULL;
	it->size = 0;
	if (ret < 0)
		return ret;
	if (ret > 0 || !path_item_valid(&it->path))
		return 1;
	path_key(&it->path, &it->key);
	if (btrfs_comp_keys(&it->key, &it->max) > 0)
		return 1;
	it->ptr = path_ptr(&it->path);
	it->size = path_size(&it->path);
	return 0;
}

int key_iter_first(struct key_iter *it, struct fs_info *fs, const struct root_ref *root,
		   const struct btrfs_key *min, const struct btrfs_key *max)
{
	int ret;

	memset(it, 0, sizeof(*it));
	it->fs = fs;
	it->max = *max;
	ret = search_slot(fs, root, min, &it->path);
	return key_iter_load(it, ret < 0 ? ret : 0);
}

int key_iter_type(struct key_iter *it, struct fs_info *fs, const struct root_ref *root,
		  u64 objectid, u8 type, u64 min_offset)
{
	struct btrfs_key min = { objectid, type, min_offset };
	struct btrfs_key max = { objectid, type, (u64)-1 };

	return key_iter_first(it, fs, root, &min, &max);
}

int key_iter_next(struct key_iter *it)
{
	return key_iter_load(it, next_item(it->fs, &it->path));
}

void key_iter_release(struct key_iter *it)
{
	path_release(it->fs, &it->path);
}

int lookup_item(struct fs_info *fs, const struct root_ref *root,
		const struct btrfs_key *key, void *buf, u32 buflen, u32 *size)
{
	struct btrfs_path p;
	int ret;

	ret = search_slot(fs, root, key, &p);
	if (ret == 0) {
		u32 sz = path_size(&p);

		if (buf)
			memcpy(buf, path_ptr(&p), sz < buflen ? sz : buflen);
		if (size)
			*size = sz;
	}
	path_release(fs, &p);
	return ret;
}

int read_root_item(struct fs_info *fs, u64 objectid, struct btrfs_root_item *ri,
		   struct btrfs_key *found_key)
{
	return read_root_item_in(fs, &fs->tree_root, objectid, ri, found_key);
}

int read_root_item_in(struct fs_info *fs, const struct root_ref *tree_root, u64 objectid,
		      struct btrfs_root_item *ri, struct btrfs_key *found_key)
{
	struct btrfs_key key = { objectid, BTRFS_ROOT_ITEM_KEY, (u64)-1 };
	struct btrfs_path p;
	struct btrfs_key k = { 0 };
	u32 size;
	int ret;

	ret = search_slot(fs, tree_root, &key, &p);
	if (ret < 0)
		return ret;
	ret = prev_item(fs, &p);
	if (ret < 0)
		goto out;
	if (ret == 0 && path_item_valid(&p))
		path_key(&p, &k);
	if (ret > 0 || !path_item_valid(&p) || k.objectid != objectid ||
	    k.type != BTRFS_ROOT_ITEM_KEY) {
		ret = fs_err(fs, -ENOENT, "no root item for tree %llu",
			     (unsigned long long)objectid);
		goto out;
	}
	size = path_size(&p);
	if (size < BTRFS_ROOT_ITEM_V0_SIZE) {
		ret = fs_err(fs, -EUCLEAN, "root item of tree %llu is too small (%u bytes)",
			     (unsigned long long)objectid, size);
		goto out;
	}
	memset(ri, 0, sizeof(*ri));
	memcpy(ri, path_ptr(&p), size < sizeof(*ri) ? size : sizeof(*ri));
	if (found_key)
		*found_key = k;
	ret = 0;
out:
	path_release(fs, &p);
	return ret;
}

int find_root(struct fs_info *fs, u64 objectid, struct root_ref *out)
{
	struct btrfs_root_item ri;
	int ret;

	if (objectid == BTRFS_ROOT_TREE_OBJECTID) {
		*out = fs->tree_root;
		return 0;
	}
	if (objectid == BTRFS_CHUNK_TREE_OBJECTID) {
		*out = fs->chunk_root;
		return 0;
	}
	ret = read_root_item(fs, objectid, &ri, NULL);
	if (ret)
		return ret;
	out->objectid = objectid;
	out->bytenr = le64_to_cpu(ri.bytenr);
	out->generation = le64_to_cpu(ri.generation);
	out->level = ri.level;
	if (out->level >= BTRFS_MAX_LEVEL || !out->bytenr)
		return fs_err(fs, -EUCLEAN, "root item of tree %llu: invalid bytenr %llu or level %u",
			      (unsigned long long)objectid,
			      (unsigned long long)out->bytenr, out->level);
	return 0;
}
