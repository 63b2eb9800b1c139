// SPDX-License-Identifier: GPL-2.0
/*
 * Pass 1 of `check`: walk every tree of the image, verify every block
 * against what its parent expects, record the references each block makes
 * (child pointers, data extents of leaves) and hand leaves to the
 * collectors of the other passes.
 *
 * Each block is verified and its references recorded once, however many
 * trees share it (snapshots).  Leaves of fs trees are still handed to the
 * per-inode checker once per tree that reaches them, because an inode is
 * checked in every subvolume it appears in.  A block that fails
 * verification is reported once and its subtree skipped; the walk goes on
 * with the next pointer, so one bad block never hides the rest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "check/check.h"
#include "common/messages.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/volumes.h"

/* ---- visited blocks: open-addressing set of bytenr ---------------------- */

enum { BLK_OK = 1, BLK_BAD = 2 };

struct block_ent {
	u64 bytenr;		/* 0: empty slot (no block lives at 0) */
	u64 tree;		/* first tree that reached it */
	u8 state;
};

struct block_set {
	struct block_ent *tab;
	size_t cap, nr;
};

static size_t bs_hash(u64 v, size_t cap)
{
	return (size_t)((v >> 12) * 0x9E3779B97F4A7C15ULL >> 17) & (cap - 1);
}

static struct block_ent *bs_find(struct block_set *s, u64 bytenr, bool insert)
{
	size_t i;

	if (insert && (s->nr + 1) * 4 > s->cap * 3) {
		size_t ncap = s->cap ? s->cap * 2 : 4096;
		struct block_ent *nt = fault_calloc(ncap, sizeof(*nt));

		if (!nt)
			die_oom();
		for (size_t j = 0; j < s->cap; j++) {
			if (!s->tab[j].bytenr)
				continue;
			i = bs_hash(s->tab[j].bytenr, ncap);
			while (nt[i].bytenr)
				i = (i + 1) & (ncap - 1);
			nt[i] = s->tab[j];
		}
		free(s->tab);
		s->tab = nt;
		s->cap = ncap;
	}
	if (!s->cap)
		return NULL;
	i = bs_hash(bytenr, s->cap);
	while (s->tab[i].bytenr) {
		if (s->tab[i].bytenr == bytenr)
			return &s->tab[i];
		i = (i + 1) & (s->cap - 1);
	}
	if (!insert)
		return NULL;
	s->tab[i].bytenr = bytenr;
	s->nr++;
	return &s->tab[i];
}

bool block_set_contains(const struct check_ctx *c, u64 bytenr)
{
	struct block_ent *e = bs_find(c->blocks, bytenr, false);

	return e && e->state == BLK_OK;
}

void block_set_free(struct check_ctx *c)
{
	if (!c->blocks)
		return;
	free(c->blocks->tab);
	free(c->blocks);
	c->blocks = NULL;
}

/* ---- the walk ----------------------------------------------------------- */

enum walk_kind { WK_ROOT, WK_CHUNK, WK_EXTENT, WK_CSUM, WK_FST, WK_BG, WK_FS, WK_OTHER };

struct walk {
	struct check_ctx *c;
	const struct root_desc *root;
	enum walk_kind kind;
	struct fs_tree_state *fs;	/* WK_FS with inode checks */
	bool dropping;			/* drop_progress set: skip dropped subtrees */
	int depth;
};

static void collect_root_items(struct check_ctx *c, const struct tree_block *leaf)
{
	for (u32 i = 0; i < tb_nritems(leaf); i++) {
		struct btrfs_key k;
		struct btrfs_root_item ri;
		struct root_desc *r;
		u32 size = tb_item_size(leaf, i);

		tb_item_key(leaf, i, &k);
		if (k.type != BTRFS_ROOT_ITEM_KEY)
			continue;
		if (size < BTRFS_ROOT_ITEM_V0_SIZE) {
			check_report(c, PR_TREE_ROOT_BAD, LOC_BLOCK(k.objectid, leaf->bytenr),
				     "?", "root item too small");
			continue;
		}
		/*
		 * The top-level subvolume is made by mkfs and never snapshotted
		 * into being: its key offset (a snapshot's creation transid) is 0.
		 * The kernel finds it by objectid alone; btrfs check lowmem
		 * rejects any other offset.
		 */
		if (k.objectid == BTRFS_FS_TREE_OBJECTID && k.offset)
			check_report(c, PR_TREE_ROOT_BAD, LOC_BLOCK(k.objectid, leaf->bytenr), "5",
				     "the top-level subvolume's ROOT_ITEM key offset is not 0");
		memset(&ri, 0, sizeof(ri));
		memcpy(&ri, tb_item_ptr(leaf, i), size < sizeof(ri) ? size : sizeof(ri));
		/* Never deleted: the kernel cannot mount it with refs 0 (btrfs check: "refs 1 not found"). */
		if (k.objectid == BTRFS_FS_TREE_OBJECTID && !le32_to_cpu(ri.refs))
			check_report(c, PR_TREE_ROOT_BAD, LOC_BLOCK(k.objectid, leaf->bytenr), "5",
				     "the top-level subvolume's root item has refs 0, as if deleted");
		r = vec_push_or_die(&c->roots);
		r->objectid = k.objectid;
		r->offset = k.offset;
		r->bytenr = le64_to_cpu(ri.bytenr);
		r->generation = le64_to_cpu(ri.generation);
		r->root_dirid = le64_to_cpu(ri.root_dirid);
		r->flags = le64_to_cpu(ri.flags);
		r->refs = le32_to_cpu(ri.refs);
		r->level = ri.level;
		r->drop_level = ri.drop_level;
		btrfs_disk_key_to_cpu(&r->drop_progress, &ri.drop_progress);
	}
}

/* References every leaf makes to data extents (all trees but the extent tree). */
static void record_data_refs(struct check_ctx *c, const struct tree_block *leaf)
{
	for (u32 i = 0; i < tb_nritems(leaf); i++) {
		const struct btrfs_file_extent_item *fi;
		struct found_data_ref *r;
		struct btrfs_key k;

		tb_item_key(leaf, i, &k);
		if (k.type != BTRFS_EXTENT_DATA_KEY ||
		    tb_item_size(leaf, i) < sizeof(*fi))
			continue;
		fi = (const void *)tb_item_ptr(leaf, i);
		if (fi->type != BTRFS_FILE_EXTENT_REG && fi->type != BTRFS_FILE_EXTENT_PREALLOC)
			continue;
		if (!le64_to_cpu(fi->disk_bytenr))
			continue;
		r = vec_push_or_die(&c->data_refs);
		r->bytenr = le64_to_cpu(fi->disk_bytenr);
		r->num_bytes = le64_to_cpu(fi->disk_num_bytes);
		r->leaf = leaf->bytenr;
		r->root = tb_owner(leaf);
		r->ino = k.objectid;
		r->offset = k.offset - le64_to_cpu(fi->offset);
	}
}

static void leaf_first_visit(struct walk *w, const struct tree_block *leaf)
{
	struct check_ctx *c = w->c;

	c->cnt.leaves++;
	c->cnt.items += tb_nritems(leaf);
	switch (w->kind) {
	case WK_ROOT:
		collect_root_items(c, leaf);
		break;
	case WK_EXTENT:
		extent_tree_leaf(c, leaf);
		return;
	case WK_BG:
		bg_tree_leaf(c, leaf);
		return;
	case WK_CSUM:
		csum_tree_leaf(c, leaf);
		return;
	case WK_FST:
		fst_leaf(c, leaf);
		return;
	case WK_CHUNK:
		return;
	default:
		break;
	}
	record_data_refs(c, leaf);
}

static void record_block(struct check_ctx *c, u64 tree, const struct tree_block *b)
{
	struct found_block *r = vec_push_or_die(&c->found_blocks);

	r->bytenr = b->bytenr;
	r->owner = tb_owner(b);
	r->generation = tb_generation(b);
	r->tree = tree;
	r->reloc = tb_flags(b) & BTRFS_HEADER_FLAG_RELOC;
}

static void record_tree_ref(struct walk *w, u64 bytenr, u64 parent, u64 parent_owner, int level)
{
	struct found_tree_ref *r = vec_push_or_die(&w->c->tree_refs);

	r->bytenr = bytenr;
	r->parent = parent;
	r->root = parent ? parent_owner : w->root->objectid;
	r->level = level;
}

/* Whether the child at slot of a node lies wholly before drop_progress. */
static bool child_dropped(const struct walk *w, const struct tree_block *node, u32 slot)
{
	struct btrfs_key next;

	if (!w->dropping || slot + 1 >= tb_nritems(node))
		return false;
	tb_node_key(node, slot + 1, &next);
	return btrfs_comp_keys(&next, &w->root->drop_progress) <= 0;
}

static void walk_block(struct walk *w, u64 bytenr, const struct block_check *chk,
		       u64 parent, u64 parent_owner, bool record, const struct btrfs_key *hi);

/* Children of node b; hi: the bound of b's own keys (NULL: none). */
static void walk_children(struct walk *w, const struct tree_block *b, bool record,
			  const struct btrfs_key *hi)
{
	for (u32 i = 0; i < tb_nritems(b); i++) {
		struct btrfs_key first, next;
		struct block_check chk = {
			.level = tb_level(b) - 1,
			.generation = tb_node_gen(b, i),
			.first_key = &first,
		};

		if (child_dropped(w, b, i))
			continue;
		/* The kernel skips the transid check for 0; btrfs check does not. */
		if (record && !chk.generation) {
			char why[128];

			snprintf(why, sizeof(why), "node %llu slot %u points to this block with generation 0",
				 b->bytenr, i);
			check_report(w->c, PR_TREE_BLOCK_HEADER,
				     LOC_BLOCK(w->root->objectid, tb_node_blockptr(b, i)), why);
		}
		tb_node_key(b, i, &first);
		if (i + 1 < tb_nritems(b))
			tb_node_key(b, i + 1, &next);
		walk_block(w, tb_node_blockptr(b, i), &chk, b->bytenr, tb_owner(b), record,
			   i + 1 < tb_nritems(b) ? &next : hi);
	}
}

/*
 * Every key of a block lies below the key of its parent's next pointer (hi),
 * or a search would never reach it; the tree-checker sees one block at a
 * time and misses this (btrfs check: "bad key ordering" between blocks).
 * The block's own keys are in order (tree-checker rule): its last is enough.
 */
static void check_key_range(struct check_ctx *c, u64 tree, const struct tree_block *b,
			    const struct btrfs_key *hi)
{
	struct btrfs_key last;
	char name[32];

	if (!hi || !tb_nritems(b))
		return;
	if (tb_level(b))
		tb_node_key(b, tb_nritems(b) - 1, &last);
	else
		tb_item_key(b, tb_nritems(b) - 1, &last);
	if (btrfs_comp_keys(&last, hi) >= 0)
		check_report(c, PR_TREE_KEY_RANGE, LOC_BLOCK(tree, b->bytenr),
			     check_root_name(tree, name, sizeof(name)), b->bytenr, last.objectid,
			     last.type, last.offset, hi->objectid, hi->type, hi->offset);
}

static void walk_block(struct walk *w, u64 bytenr, const struct block_check *chk,
		       u64 parent, u64 parent_owner, bool record, const struct btrfs_key *hi)
{
	struct check_ctx *c = w->c;
	struct block_ent *e;
	struct tree_block *b;
	bool first;
	char name[32];
	int ret;

	if (record)
		record_tree_ref(w, bytenr, parent, parent_owner, chk->level);
	e = bs_find(c->blocks, bytenr, true);
	first = e->state == 0;
	if (e->state == BLK_BAD)
		return;
	if (!first && !w->fs)
		return;
	if (!first && e->tree == w->root->objectid && w->root->objectid != BTRFS_TREE_RELOC_OBJECTID) {
		check_report(c, PR_TREE_BLOCK_SHARED, LOC_BLOCK(w->root->objectid, bytenr),
			     chk->level, check_root_name(w->root->objectid, name, sizeof(name)));
		return;
	}
	if (++w->depth > BTRFS_MAX_LEVEL + 1) {
		w->depth--;
		return;
	}
	ret = read_tree_block(c->fs, bytenr, chk, &b);
	if (ret == -ENOMEM)
		die_oom();	/* not a problem of the image */
	if (ret) {
		if (first) {
			e->state = BLK_BAD;
			e->tree = w->root->objectid;
			check_report(c, PR_TREE_BLOCK_BAD, LOC_BLOCK(w->root->objectid, bytenr),
				     check_root_name(w->root->objectid, name, sizeof(name)),
				     fs_errmsg(c->fs));
		}
		w->depth--;
		return;
	}
	if (first) {
		e->state = BLK_OK;
		e->tree = w->root->objectid;
		c->cnt.tree_blocks++;
		c->cnt.tree_bytes += b->len;
		/*
		 * A bad copy beside a good one is a warning, which never stops a
		 * write command: its verification (c->verify) skips reading them.
		 */
		if (!c->verify && verify_tree_block_copies(c->fs, b, chk) == -ENOMEM)
			die_oom();
		check_block_rules(c, w->root->objectid, b);
		check_key_range(c, w->root->objectid, b, hi);
		record_block(c, w->root->objectid, b);
	}
	if (tb_level(b) == 0) {
		if (first)
			leaf_first_visit(w, b);
		if (w->fs)
			fs_tree_leaf(c, w->fs, b, first);
	} else {
		walk_children(w, b, first, hi);
	}
	tree_block_put(c->fs, b);
	w->depth--;
}

static void walk_tree(struct check_ctx *c, const struct root_desc *root, enum walk_kind kind)
{
	struct walk w = { .c = c, .root = root, .kind = kind };
	struct block_check chk = {
		.level = root->level,
		.generation = root->generation,
	};
	u64 blocks = c->cnt.tree_blocks, items = c->cnt.items;
	char name[32];

	c->cnt.trees++;
	if (kind == WK_FS && root->refs > 0 && root->objectid != BTRFS_TREE_RELOC_OBJECTID)
		w.fs = fs_tree_begin(c, root);
	w.dropping = root->drop_progress.objectid != 0 || root->drop_progress.type != 0 ||
		     root->drop_progress.offset != 0;
	walk_block(&w, root->bytenr, &chk, 0, 0, true, NULL);
	if (w.fs)
		fs_tree_end(c, w.fs);
	verbose("tree %s: %llu blocks, %llu items", check_root_name(root->objectid, name, sizeof(name)),
		c->cnt.tree_blocks - blocks, c->cnt.items - items);
}

static bool is_fs_tree(u64 id)
{
	return id == BTRFS_FS_TREE_OBJECTID || id == BTRFS_DATA_RELOC_TREE_OBJECTID ||
	       id == BTRFS_TREE_RELOC_OBJECTID ||
	       (id >= BTRFS_FIRST_FREE_OBJECTID && id <= BTRFS_LAST_FREE_OBJECTID);
}

static const struct root_desc *find_root_desc(const struct check_ctx *c, u64 id)
{
	for (size_t i = 0; i < c->roots.nr; i++)
		if (VEC_AT(&c->roots, struct root_desc, i).objectid == id)
			return &VEC_AT(&c->roots, struct root_desc, i);
	return NULL;
}

static bool root_desc_valid(struct check_ctx *c, const struct root_desc *r)
{
	char name[32];
	const char *why = NULL;

	if (r->level >= BTRFS_MAX_LEVEL)
		why = "level out of range";
	else if (!r->bytenr || r->bytenr % c->fs->sectorsize)
		why = "bytenr not aligned";
	if (why) {
		check_report(c, PR_TREE_ROOT_BAD, LOC_BLOCK(r->objectid, r->bytenr),
			     check_root_name(r->objectid, name, sizeof(name)), why);
		return false;
	}
	if (r->generation > c->fs->generation)
		check_report(c, PR_ROOT_GENERATION, LOC_BLOCK(r->objectid, r->bytenr),
			     r->generation, c->fs->generation);
	return true;
}

/*
 * An unreplayed log tree is not checked, but its root block must be
 * readable: the kernel replays it at mount and btrfs check cannot open the
 * filesystem without it ("Couldn't setup log root tree").
 */
static void check_log_root(struct check_ctx *c)
{
	u64 bytenr = le64_to_cpu(c->fs->super.log_root);
	struct block_check chk = {
		.level = c->fs->super.log_root_level,
		.generation = c->fs->generation + 1,
		.owner = BTRFS_TREE_LOG_OBJECTID,
	};
	struct tree_block *b;
	int ret = read_tree_block(c->fs, bytenr, &chk, &b);

	if (ret == -ENOMEM)
		die_oom();
	if (ret) {
		check_report(c, PR_TREE_BLOCK_BAD, LOC_BLOCK(BTRFS_TREE_LOG_OBJECTID, bytenr),
			     "log", fs_errmsg(c->fs));
		return;
	}
	tree_block_put(c->fs, b);
	check_report(c, PR_LOG_TREE_IGNORED, LOC_NONE, (unsigned long long)bytenr);
}

int check_trees(struct check_ctx *c)
{
	struct root_desc root_tree = {
		.objectid = BTRFS_ROOT_TREE_OBJECTID,
		.bytenr = c->fs->tree_root.bytenr,
		.generation = c->fs->tree_root.generation,
		.level = c->fs->tree_root.level,
		.refs = 1,
	};
	struct root_desc chunk_tree = {
		.objectid = BTRFS_CHUNK_TREE_OBJECTID,
		.bytenr = c->fs->chunk_root.bytenr,
		.generation = c->fs->chunk_root.generation,
		.level = c->fs->chunk_root.level,
		.refs = 1,
	};
	static const struct { u64 id; enum walk_kind kind; } first_trees[] = {
		{ BTRFS_EXTENT_TREE_OBJECTID, WK_EXTENT },
		{ BTRFS_BLOCK_GROUP_TREE_OBJECTID, WK_BG },
		{ BTRFS_CSUM_TREE_OBJECTID, WK_CSUM },
		{ BTRFS_FREE_SPACE_TREE_OBJECTID, WK_FST },
	};
	size_t nr_before;

	c->blocks = fault_calloc(1, sizeof(*c->blocks));
	if (!c->blocks)
		return -ENOMEM;
	walk_tree(c, &root_tree, WK_ROOT);
	walk_tree(c, &chunk_tree, WK_CHUNK);

	for (size_t t = 0; t < sizeof(first_trees) / sizeof(first_trees[0]); t++) {
		const struct root_desc *r = find_root_desc(c, first_trees[t].id);

		if (!r) {
			if (first_trees[t].id == BTRFS_EXTENT_TREE_OBJECTID) {
				check_report(c, PR_TREE_ROOT_BAD, LOC_NONE, "2", "no root item");
			}
			continue;
		}
		if (!root_desc_valid(c, r))
			continue;
		nr_before = c->nr_by_sev[SEV_ERROR];
		walk_tree(c, r, first_trees[t].kind);
		if (first_trees[t].id == BTRFS_EXTENT_TREE_OBJECTID)
			c->extent_tree_ok = c->nr_by_sev[SEV_ERROR] == nr_before;
		else if (first_trees[t].id == BTRFS_CSUM_TREE_OBJECTID)
			c->csum_tree_ok = c->nr_by_sev[SEV_ERROR] == nr_before;
		else if (first_trees[t].id == BTRFS_FREE_SPACE_TREE_OBJECTID) {
			c->have_fst = true;
			c->fst_ok = c->nr_by_sev[SEV_ERROR] == nr_before;
		}
	}
	if (!find_root_desc(c, BTRFS_CSUM_TREE_OBJECTID))
		c->csum_tree_ok = true;	/* empty filesystems may lack one */
	/* The data scrub needs only the csums: it runs while the rest is checked. */
	check_scrub_start(c);

	/* Everything else the root tree lists, in its order. */
	for (size_t i = 0; i < c->roots.nr; i++) {
		const struct root_desc *r = &VEC_AT(&c->roots, struct root_desc, i);
		bool done = false;

		for (size_t t = 0; t < sizeof(first_trees) / sizeof(first_trees[0]); t++)
			if (r->objectid == first_trees[t].id)
				done = true;
		if (done || !root_desc_valid(c, r))
			continue;
		walk_tree(c, r, is_fs_tree(r->objectid) ? WK_FS : WK_OTHER);
		/* c->roots may grow only while walking the root tree. */
	}
	check_devices(c);
	if (le64_to_cpu(c->fs->super.log_root))
		check_log_root(c);
	return 0;
}

static int cmp_bad_copy(const void *x, const void *y)
{
	const struct bad_copy *a = x, *b = y;
	int r = cmp_u64(a->logical, b->logical);

	return r ? r : a->copy - b->copy;
}

void check_bad_copies(struct check_ctx *c)
{
	size_t nr;
	const struct bad_copy *v = bad_copies(c->fs, &nr);
	struct bad_copy *s;

	if (!nr)
		return;
	s = fault_malloc(nr * sizeof(*s));
	if (!s)
		die_oom();
	memcpy(s, v, nr * sizeof(*s));
	check_qsort(s, nr, sizeof(*s), cmp_bad_copy);
	for (size_t i = 0; i < nr; i++)
		check_report(c, PR_TREE_BLOCK_BAD_COPY, LOC_BLOCK(NOLOC, s[i].logical), s[i].copy + 1,
			     (unsigned long long)s[i].devid, (unsigned long long)s[i].physical,
			     s[i].good_copy + 1, s[i].reason);
	free(s);
}
