// SPDX-License-Identifier: GPL-2.0
/*
 * Quota group accounting (qgroup.h, Documentation/format.rst 2.10).
 *
 * qgroup_compute() works in three steps:
 *
 *   1. one pass over the extent tree: a record per extent (size, tree block
 *      level, the roots its direct backrefs name) and an edge per shared
 *      backref (parent tree block -> extent);
 *   2. tree blocks by level, from the top: a block's root set is final once
 *      every block above it was done, so it is handed down to the extents
 *      that name it as parent, to the children it points at and, for level 1
 *      nodes, to the data extents of the leaves below;
 *   3. bytes summed per distinct root set, then each set's bytes given to
 *      the qgroups its roots reach through the relations.
 *
 * Root sets are interned: each distinct set is stored once and named by a
 * u32, so a block or extent carries one number whatever the snapshots.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/containers.h"
#include "common/fault.h"
#include "kernel-shared/qgroup.h"
#include "kernel-shared/backref.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/transaction.h"

/* ---- interned root sets ---------------------------------------------- */

struct rs_ent {
	u32 off, len;
};

struct rootsets {
	u64 *ids;		/* the sets' sorted root ids, one after another */
	size_t nr_ids, cap_ids;
	struct rs_ent *ents;	/* set id -> its slice of ids; 0 is the empty set */
	size_t nr, cap;
	struct u64map by_hash;	/* hash of a set -> u32 set id */
	struct u64map unions;	/* (a << 32 | b), a < b -> u32 id of a | b */
	u64 *tmp;
	size_t cap_tmp;
};

static int rs_init(struct rootsets *rs)
{
	memset(rs, 0, sizeof(*rs));
	u64map_init(&rs->by_hash, sizeof(u32));
	u64map_init(&rs->unions, sizeof(u32));
	rs->ents = array_reserve(NULL, &rs->cap, 1, sizeof(*rs->ents));
	if (!rs->ents)
		return -ENOMEM;
	rs->ents[0] = (struct rs_ent){ 0, 0 };
	rs->nr = 1;
	return 0;
}

static void rs_free(struct rootsets *rs)
{
	free(rs->ids);
	free(rs->ents);
	free(rs->tmp);
	u64map_free(&rs->by_hash);
	u64map_free(&rs->unions);
}

static u64 rs_hash(const u64 *ids, u32 n)
{
	u64 h = 0xcbf29ce484222325ULL ^ n;

	for (u32 i = 0; i < n; i++) {
		h ^= ids[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

/* The id of the set ids[0..n) (sorted, no duplicates): 0 or -ENOMEM. */
static int rs_intern(struct rootsets *rs, const u64 *ids, u32 n, u32 *out)
{
	u64 h = rs_hash(ids, n);
	size_t cur = 0;
	u32 *v;
	u64 *nids;

	if (!n) {
		*out = 0;
		return 0;
	}
	while ((v = u64map_next(&rs->by_hash, h, &cur))) {
		const struct rs_ent *e = &rs->ents[*v];

		if (e->len == n && !memcmp(rs->ids + e->off, ids, n * sizeof(u64))) {
			*out = *v;
			return 0;
		}
	}
	if (rs->nr >= UINT32_MAX || rs->nr_ids + n >= UINT32_MAX)
		return -ENOMEM;
	nids = array_reserve(rs->ids, &rs->cap_ids, rs->nr_ids + n, sizeof(u64));
	if (!nids)
		return -ENOMEM;
	rs->ids = nids;
	{
		struct rs_ent *ne = array_grow(rs->ents, &rs->cap, rs->nr, sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		rs->ents = ne;
	}
	v = u64map_insert(&rs->by_hash, h);
	if (!v)
		return -ENOMEM;
	memcpy(rs->ids + rs->nr_ids, ids, n * sizeof(u64));
	rs->ents[rs->nr] = (struct rs_ent){ (u32)rs->nr_ids, n };
	rs->nr_ids += n;
	*v = (u32)rs->nr;
	*out = (u32)rs->nr++;
	return 0;
}

/* *a = *a | b: 0 or -ENOMEM. */
static int rs_union(struct rootsets *rs, u32 *a, u32 b)
{
	u32 x = *a < b ? *a : b, y = *a < b ? b : *a, n = 0, i = 0, j = 0;
	const struct rs_ent *ex, *ey;
	u64 key = (u64)x << 32 | y;
	u32 *v;
	int ret;

	if (x == y || x == 0) {
		*a = y;
		return 0;
	}
	v = u64map_find(&rs->unions, key);
	if (v) {
		*a = *v;
		return 0;
	}
	ex = &rs->ents[x];
	ey = &rs->ents[y];
	{
		u64 *nt = array_reserve(rs->tmp, &rs->cap_tmp, (size_t)ex->len + ey->len,
					sizeof(u64));

		if (!nt)
			return -ENOMEM;
		rs->tmp = nt;
	}
	while (i < ex->len || j < ey->len) {
		u64 p = i < ex->len ? rs->ids[ex->off + i] : UINT64_MAX;
		u64 q = j < ey->len ? rs->ids[ey->off + j] : UINT64_MAX;

		if (i < ex->len && (j >= ey->len || p <= q)) {
			rs->tmp[n++] = p;
			i++;
			if (j < ey->len && p == q)
				j++;
		} else {
			rs->tmp[n++] = q;
			j++;
		}
	}
	ret = rs_intern(rs, rs->tmp, n, a);
	if (ret)
		return ret;
	v = u64map_insert(&rs->unions, key);
	if (!v)
		return -ENOMEM;
	*v = *a;
	return 0;
}

/* *a = *a | {root}. */
static int rs_add(struct rootsets *rs, u32 *a, u64 root)
{
	u32 one;
	int ret = rs_intern(rs, &root, 1, &one);

	return ret ? ret : rs_union(rs, a, one);
}

/* ---- extents and shared backrefs -------------------------------------- */

#define QE_TREE		(1u << 0)	/* a tree block */
#define QE_SHARED	(1u << 1)	/* named by a shared backref */

struct qg_ext {
	u64 bytenr;
	u64 num_bytes;
	u32 set;		/* the roots reaching it, so far */
	u32 direct;		/* the roots its non-shared backrefs name */
	u8 level;
	u8 flags;
};

struct qg_edge {
	u64 parent;
	size_t child;		/* index in exts */
};

struct qg_ctx {
	struct fs_info *fs;
	struct qgroup_state *qs;
	struct rootsets rs;
	struct vec exts;	/* struct qg_ext, by bytenr */
	struct vec edges;	/* struct qg_edge, by parent once scanned */
};

#define EXT(q, i) VEC_AT(&(q)->exts, struct qg_ext, i)

/* The trees qgroups account: the fs tree and subvolumes (not qgroup-level ids). */
static bool is_fstree(u64 root)
{
	return root == BTRFS_FS_TREE_OBJECTID ||
	       ((s64)root >= (s64)BTRFS_FIRST_FREE_OBJECTID && !qgroup_level(root));
}

static int add_backref(struct qg_ctx *q, size_t idx, const struct backref *br)
{
	struct qg_edge *ed;

	switch (br->kind) {
	case REF_TREE_BLOCK:
	case REF_DATA:
		if (!is_fstree(br->root))
			return 0;
		return rs_add(&q->rs, &EXT(q, idx).direct, br->root);
	case REF_SHARED_BLOCK:
	case REF_SHARED_DATA:
		ed = vec_push(&q->edges);
		if (!ed)
			return -ENOMEM;
		ed->parent = br->parent;
		ed->child = idx;
		EXT(q, idx).flags |= QE_SHARED;
		return 0;
	default:
		return 0;	/* owner refs: simple quotas only */
	}
}

/* An EXTENT_ITEM or METADATA_ITEM and its inline refs. */
static int scan_extent_item(struct qg_ctx *q, const struct btrfs_key *k, const u8 *p, u32 size)
{
	const struct btrfs_extent_item *ei = (const void *)p;
	struct qg_ext *e;
	size_t idx = q->exts.nr;
	u64 flags;
	u32 pos;

	if (size < sizeof(*ei))
		return 0;
	e = vec_push(&q->exts);
	if (!e)
		return -ENOMEM;
	flags = le64_to_cpu(ei->flags);
	e->bytenr = k->objectid;
	if (k->type == BTRFS_METADATA_ITEM_KEY) {
		e->num_bytes = q->fs->nodesize;
		e->level = k->offset < BTRFS_MAX_LEVEL ? k->offset : BTRFS_MAX_LEVEL - 1;
		e->flags = QE_TREE;
	} else {
		e->num_bytes = k->offset;
		if (flags & BTRFS_EXTENT_FLAG_TREE_BLOCK) {
			const struct btrfs_tree_block_info *tbi = (const void *)(ei + 1);

			e->flags = QE_TREE;
			if (size >= sizeof(*ei) + sizeof(*tbi))
				e->level = tbi->level < BTRFS_MAX_LEVEL ? tbi->level
									: BTRFS_MAX_LEVEL - 1;
		}
	}
	pos = backref_inline_start(k, p, size);
	while (pos < size) {
		struct backref br;
		int n = backref_decode_inline(p + pos, size - pos, &br);
		int ret;

		if (n <= 0)
			break;
		ret = add_backref(q, idx, &br);
		if (ret)
			return ret;
		pos += n;
	}
	return 0;
}

static int cmp_edge(const void *a, const void *b)
{
	const struct qg_edge *x = a, *y = b;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return x->child < y->child ? -1 : x->child > y->child;
}

/* Step 1: every extent item and backref of the extent tree. */
static int scan_extent_tree(struct qg_ctx *q, const struct root_ref *tree_root)
{
	struct btrfs_key min = { 0, 0, 0 }, max = { (u64)-1, (u8)-1, (u64)-1 };
	struct btrfs_root_item ri;
	struct root_ref ext;
	struct key_iter it;
	int ret;

	ret = read_root_item_in(q->fs, tree_root, BTRFS_EXTENT_TREE_OBJECTID, &ri, NULL);
	if (ret)
		return ret;
	ext = (struct root_ref){ BTRFS_EXTENT_TREE_OBJECTID, le64_to_cpu(ri.bytenr),
				 le64_to_cpu(ri.generation), ri.level };
	for (ret = key_iter_first(&it, q->fs, &ext, &min, &max); ret == 0;
	     ret = key_iter_next(&it)) {
		struct backref br;

		if (it.key.type == BTRFS_EXTENT_ITEM_KEY || it.key.type == BTRFS_METADATA_ITEM_KEY) {
			ret = scan_extent_item(q, &it.key, it.ptr, it.size);
		} else if (it.key.type >= BTRFS_TREE_BLOCK_REF_KEY &&
			   it.key.type <= BTRFS_SHARED_DATA_REF_KEY && q->exts.nr &&
			   EXT(q, q->exts.nr - 1).bytenr == it.key.objectid &&
			   backref_decode_keyed(&it.key, it.ptr, it.size, &br) == 0) {
			ret = add_backref(q, q->exts.nr - 1, &br);
		}
		if (ret)
			break;
	}
	key_iter_release(&it);
	if (ret < 0)
		return ret;
	if (q->edges.nr)
		qsort(q->edges.data, q->edges.nr, sizeof(struct qg_edge), cmp_edge);
	return 0;
}

/* ---- step 2: root sets handed down ------------------------------------- */

/* Index of the extent at bytenr, or -1. */
static ssize_t find_ext(const struct qg_ctx *q, u64 bytenr)
{
	size_t lo = 0, hi = q->exts.nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (EXT(q, mid).bytenr < bytenr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < q->exts.nr && EXT(q, lo).bytenr == bytenr ? (ssize_t)lo : -1;
}

/* The extents a shared backref names bytenr as the parent of get set. */
static int push_shared(struct qg_ctx *q, u64 bytenr, u32 set)
{
	const struct qg_edge *ed = q->edges.data;
	size_t lo = 0, hi = q->edges.nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ed[mid].parent < bytenr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < q->edges.nr && ed[lo].parent == bytenr; lo++) {
		int ret = rs_union(&q->rs, &EXT(q, ed[lo].child).set, set);

		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Whether the leaf at index li, below a node reaching set, must be read:
 * always, unless trusted and the leaf is reached by exactly the one root its
 * own backref names (then its file extents' backrefs name that root, or the
 * leaf itself as parent).
 */
static bool leaf_needed(const struct qg_ctx *q, size_t li, u32 set)
{
	const struct qg_ext *l = &EXT(q, li);

	return !q->qs->trusted || l->direct != set || (l->flags & QE_SHARED) ||
	       q->rs.ents[set].len != 1;
}

/* The data extents of the file extents in leaf bytenr get set. */
static int push_leaf_data(struct qg_ctx *q, u64 bytenr, u32 set)
{
	struct tree_block *b;
	int ret = read_tree_block(q->fs, bytenr, NULL, &b);

	if (ret)
		return ret;
	for (u32 i = 0; tb_level(b) == 0 && i < tb_nritems(b) && !ret; i++) {
		const struct btrfs_file_extent_item *fi;
		struct btrfs_key k;
		ssize_t di;

		tb_item_key(b, i, &k);
		if (k.type != BTRFS_EXTENT_DATA_KEY || tb_item_size(b, i) < sizeof(*fi))
			continue;
		fi = (const void *)tb_item_ptr(b, i);
		if (fi->type == BTRFS_FILE_EXTENT_INLINE || !fi->disk_bytenr)
			continue;
		di = find_ext(q, le64_to_cpu(fi->disk_bytenr));
		if (di >= 0 && !(EXT(q, di).flags & QE_TREE))
			ret = rs_union(&q->rs, &EXT(q, di).set, set);
	}
	tree_block_put(q->fs, b);
	return ret;
}

/* Tree node idx (its set final): its children, and below level 1 their data. */
static int push_node(struct qg_ctx *q, size_t idx)
{
	u64 bytenr = EXT(q, idx).bytenr;
	u32 set = EXT(q, idx).set;
	struct tree_block *b;
	int ret = read_tree_block(q->fs, bytenr, NULL, &b);

	if (ret)
		return ret;
	for (u32 i = 0; tb_level(b) > 0 && i < tb_nritems(b) && !ret; i++) {
		u64 child = tb_node_blockptr(b, i);
		ssize_t ci = find_ext(q, child);

		if (ci < 0 || (size_t)ci == idx || !(EXT(q, ci).flags & QE_TREE))
			continue;
		ret = rs_union(&q->rs, &EXT(q, ci).set, set);
		if (!ret && tb_level(b) == 1 && leaf_needed(q, ci, set))
			ret = push_leaf_data(q, child, set);
	}
	tree_block_put(q->fs, b);
	return ret;
}

/* Step 2: tree blocks from the highest level down. */
static int resolve_tree_blocks(struct qg_ctx *q)
{
	for (size_t i = 0; i < q->exts.nr; i++)
		EXT(q, i).set = EXT(q, i).direct;
	for (int lv = BTRFS_MAX_LEVEL - 1; lv >= 0; lv--) {
		for (size_t i = 0; i < q->exts.nr; i++) {
			struct qg_ext *e = &EXT(q, i);
			int ret;

			if (!(e->flags & QE_TREE) || e->level != lv || !e->set)
				continue;
			ret = push_shared(q, e->bytenr, e->set);
			if (!ret && lv > 0)
				ret = push_node(q, i);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ---- step 3: bytes to qgroups ------------------------------------------ */

static ssize_t find_group(const struct qgroup_state *qs, u64 id)
{
	size_t lo = 0, hi = qs->nr_groups;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (qs->groups[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < qs->nr_groups && qs->groups[lo].id == id ? (ssize_t)lo : -1;
}

struct qg_acct {
	size_t *rel_start;	/* nr_groups + 1: relations of group g by member */
	u64 *walk_mark;		/* per group: the last root walk that reached it */
	u64 *set_mark;		/* per group: the last set that counted it */
	u32 *cnt;		/* per group: roots of the current set reaching it */
	size_t *stack, *touched;
	u64 walk, setno;
};

/* Give bytes reached by root set s to every qgroup its roots reach. */
static void account_set(struct qgroup_state *qs, struct qg_acct *a, const u64 *roots, u32 n,
			u64 bytes)
{
	size_t nt = 0;

	a->setno++;
	for (u32 r = 0; r < n; r++) {
		ssize_t g0 = find_group(qs, roots[r]);
		size_t sp = 0;

		if (g0 < 0)
			continue;
		a->walk++;
		a->stack[sp++] = g0;
		while (sp) {
			size_t g = a->stack[--sp];

			if (a->walk_mark[g] == a->walk)
				continue;
			a->walk_mark[g] = a->walk;
			if (a->set_mark[g] != a->setno) {
				a->set_mark[g] = a->setno;
				a->cnt[g] = 0;
				a->touched[nt++] = g;
			}
			a->cnt[g]++;
			for (size_t k = a->rel_start[g]; k < a->rel_start[g + 1]; k++)
				a->stack[sp++] = qs->rels[k][1];
		}
	}
	for (size_t i = 0; i < nt; i++) {
		struct qgroup_count *g = &qs->groups[a->touched[i]];

		g->rfer += bytes;
		if (a->cnt[a->touched[i]] == n)
			g->excl += bytes;
	}
}

static void acct_free(struct qg_acct *a)
{
	free(a->rel_start);
	free(a->walk_mark);
	free(a->set_mark);
	free(a->cnt);
	free(a->stack);
	free(a->touched);
}

/* The walk state over qs's relations, and every computed count at zero. */
static int acct_init(struct qgroup_state *qs, struct qg_acct *a)
{
	size_t ng = qs->nr_groups;

	a->rel_start = fault_calloc(ng + 1, sizeof(size_t));
	a->walk_mark = fault_calloc(ng + 1, sizeof(u64));
	a->set_mark = fault_calloc(ng + 1, sizeof(u64));
	a->cnt = fault_calloc(ng + 1, sizeof(u32));
	a->stack = fault_calloc(qs->nr_rels + 1, sizeof(size_t));
	a->touched = fault_calloc(ng + 1, sizeof(size_t));
	if (!a->rel_start || !a->walk_mark || !a->set_mark || !a->cnt || !a->stack ||
	    !a->touched) {
		acct_free(a);
		return -ENOMEM;
	}
	for (size_t k = 0; k < qs->nr_rels; k++)
		a->rel_start[qs->rels[k][0] + 1]++;
	for (size_t g = 0; g < ng; g++)
		a->rel_start[g + 1] += a->rel_start[g];
	for (size_t g = 0; g < ng; g++)
		qs->groups[g].rfer = qs->groups[g].excl = 0;
	return 0;
}

static int account_all(struct qg_ctx *q)
{
	struct qgroup_state *qs = q->qs;
	struct qg_acct a = { 0 };
	u64 *bytes = fault_calloc(q->rs.nr, sizeof(u64));
	int ret = bytes ? acct_init(qs, &a) : -ENOMEM;

	if (ret) {
		free(bytes);
		return ret;
	}
	for (size_t i = 0; i < q->exts.nr; i++)
		bytes[EXT(q, i).set] += EXT(q, i).num_bytes;
	for (size_t s = 1; s < q->rs.nr; s++)
		if (bytes[s])
			account_set(qs, &a, q->rs.ids + q->rs.ents[s].off, q->rs.ents[s].len,
				    bytes[s]);
	free(bytes);
	acct_free(&a);
	return 0;
}

/* ---- simple quotas ---------------------------------------------------- */

/*
 * The owner an extent item counts for under simple quotas, 0 for none, and
 * its bytes: a data extent's first inline ref when it is an owner ref, a
 * tree block's header owner (skinny METADATA_ITEMs: btrfs check counts no
 * other tree block).
 */
static int squota_owner(struct fs_info *fs, const struct btrfs_key *k, const u8 *p, u32 size,
			u64 *owner, u64 *bytes)
{
	const struct btrfs_extent_item *ei = (const void *)p;
	u32 pos = backref_inline_start(k, p, size);

	*owner = 0;
	if (k->type == BTRFS_METADATA_ITEM_KEY) {
		struct tree_block *b;
		int ret = read_tree_block_raw(fs, k->objectid, &b);

		if (ret)
			return ret;
		*owner = tb_owner(b);
		*bytes = fs->nodesize;
		tree_block_put(fs, b);
		return 0;
	}
	if ((le64_to_cpu(ei->flags) & BTRFS_EXTENT_FLAG_DATA) && pos < size) {
		struct backref br;

		if (backref_decode_inline(p + pos, size - pos, &br) > 0 && br.kind == REF_OWNER) {
			*owner = br.root;
			*bytes = k->offset;
		}
	}
	return 0;
}

/*
 * Simple quotas (Documentation/format.rst 2.10): every extent made at or
 * after the status item's enable_gen counts, as referenced and exclusive
 * alike, for the qgroup of its owner and once for every qgroup above it.
 * One pass over the extent tree; memory is one counter per qgroup.
 */
static int squota_compute(struct fs_info *fs, const struct root_ref *tree_root,
			  struct qgroup_state *qs)
{
	struct btrfs_key min = { 0, 0, 0 }, max = { (u64)-1, (u8)-1, (u64)-1 };
	u64 *owned = fault_calloc(qs->nr_groups + 1, sizeof(u64));
	struct btrfs_root_item ri;
	struct qg_acct a = { 0 };
	struct root_ref ext;
	struct key_iter it;
	int ret = owned ? acct_init(qs, &a) : -ENOMEM;

	if (!ret)
		ret = read_root_item_in(fs, tree_root, BTRFS_EXTENT_TREE_OBJECTID, &ri, NULL);
	if (ret)
		goto out;
	ext = (struct root_ref){ BTRFS_EXTENT_TREE_OBJECTID, le64_to_cpu(ri.bytenr),
				 le64_to_cpu(ri.generation), ri.level };
	for (ret = key_iter_first(&it, fs, &ext, &min, &max); ret == 0; ret = key_iter_next(&it)) {
		const struct btrfs_extent_item *ei = (const void *)it.ptr;
		u64 owner, bytes = 0;
		ssize_t g;

		if ((it.key.type != BTRFS_EXTENT_ITEM_KEY && it.key.type != BTRFS_METADATA_ITEM_KEY) ||
		    it.size < sizeof(*ei) || le64_to_cpu(ei->generation) < qs->enable_gen)
			continue;
		ret = squota_owner(fs, &it.key, it.ptr, it.size, &owner, &bytes);
		if (ret)
			break;
		g = owner && is_fstree(owner) ? find_group(qs, owner) : -1;
		if (g >= 0)
			owned[g] += bytes;
	}
	key_iter_release(&it);
	for (size_t g = 0; ret >= 0 && g < qs->nr_groups; g++)
		if (owned[g])
			account_set(qs, &a, &qs->groups[g].id, 1, owned[g]);
out:
	free(owned);
	acct_free(&a);
	return ret < 0 ? ret : 0;
}

int qgroup_compute(struct fs_info *fs, const struct root_ref *tree_root, struct qgroup_state *qs)
{
	struct qg_ctx q = { .fs = fs, .qs = qs };
	int ret;

	if (qs->mode == QGROUP_SIMPLE) {
		ret = squota_compute(fs, tree_root, qs);
		return ret == -ENOMEM ? fs_err(fs, ret, "out of memory") : ret;
	}
	vec_init(&q.exts, sizeof(struct qg_ext));
	vec_init(&q.edges, sizeof(struct qg_edge));
	ret = rs_init(&q.rs);
	if (!ret)
		ret = scan_extent_tree(&q, tree_root);
	if (!ret)
		ret = resolve_tree_blocks(&q);
	if (!ret)
		ret = account_all(&q);
	if (ret == -ENOMEM)
		fs_err(fs, ret, "out of memory");
	vec_free(&q.exts);
	vec_free(&q.edges);
	rs_free(&q.rs);
	return ret;
}

/* ---- the quota tree ------------------------------------------------------ */

static int cmp_rel(const void *a, const void *b)
{
	const u64 *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* One item of the quota tree into qs (relations as ids for now). */
static int load_item(struct qgroup_state *qs, struct vec *rels, const struct key_iter *it)
{
	if (it->key.type == BTRFS_QGROUP_STATUS_KEY &&
	    it->size >= offsetof(struct btrfs_qgroup_status_item, enable_gen)) {
		const struct btrfs_qgroup_status_item *st = (const void *)it->ptr;

		qs->status_flags = le64_to_cpu(st->flags);
		qs->status_generation = le64_to_cpu(st->generation);
		if (it->size >= sizeof(*st))
			qs->enable_gen = le64_to_cpu(st->enable_gen);
		qs->mode = QGROUP_OFF;
	} else if (it->key.type == BTRFS_QGROUP_INFO_KEY &&
		   it->size >= sizeof(struct btrfs_qgroup_info_item) &&
		   (!qs->nr_groups || qs->groups[qs->nr_groups - 1].id < it->key.offset)) {
		const struct btrfs_qgroup_info_item *ii = (const void *)it->ptr;
		struct qgroup_count *g = array_grow(qs->groups, &qs->cap_groups, qs->nr_groups,
						    sizeof(*g));

		if (!g)
			return -ENOMEM;
		qs->groups = g;
		g = &qs->groups[qs->nr_groups++];
		memset(g, 0, sizeof(*g));
		g->id = it->key.offset;
		g->disk_rfer = le64_to_cpu(ii->rfer);
		g->disk_rfer_cmpr = le64_to_cpu(ii->rfer_cmpr);
		g->disk_excl = le64_to_cpu(ii->excl);
		g->disk_excl_cmpr = le64_to_cpu(ii->excl_cmpr);
	} else if (it->key.type == BTRFS_QGROUP_RELATION_KEY && it->key.objectid < it->key.offset) {
		u64 *r = vec_push(rels);

		if (!r)
			return -ENOMEM;
		r[0] = it->key.objectid;
		r[1] = it->key.offset;
	}
	return 0;
}

/* Relations by qgroup id -> (member index, parent index), sorted by member. */
static int index_relations(struct qgroup_state *qs, struct vec *rels)
{
	size_t n = 0;

	qs->rels = fault_calloc(rels->nr + 1, sizeof(*qs->rels));
	if (!qs->rels)
		return -ENOMEM;
	for (size_t i = 0; i < rels->nr; i++) {
		u64 *r = &VEC_AT(rels, u64, 2 * i);
		ssize_t m = find_group(qs, r[0]), p = find_group(qs, r[1]);

		if (m < 0 || p < 0)
			continue;
		qs->rels[n][0] = m;
		qs->rels[n][1] = p;
		n++;
	}
	qs->nr_rels = n;
	if (n)
		qsort(qs->rels, n, sizeof(*qs->rels), cmp_rel);
	return 0;
}

static enum qgroup_mode mode_of(u64 flags)
{
	if (!(flags & QGROUP_STATUS_ON))
		return QGROUP_OFF;
	if (flags & QGROUP_STATUS_SIMPLE)
		return QGROUP_SIMPLE;
	if (flags & QGROUP_STATUS_RESCAN)
		return QGROUP_RESCAN;
	if (flags & QGROUP_STATUS_INCONSISTENT)
		return QGROUP_INCONSISTENT;
	return QGROUP_EXACT;
}

int qgroup_load(struct fs_info *fs, const struct root_ref *tree_root, struct qgroup_state *qs)
{
	struct btrfs_key min = { 0, 0, 0 }, max = { (u64)-1, (u8)-1, (u64)-1 };
	struct btrfs_root_item ri;
	struct root_ref quota;
	struct key_iter it;
	struct vec rels;
	int ret;

	qs->mode = QGROUP_NONE;
	ret = read_root_item_in(fs, tree_root, BTRFS_QUOTA_TREE_OBJECTID, &ri, NULL);
	if (ret == -ENOENT) {
		fs_clear_err(fs);
		return 0;
	}
	if (ret)
		return ret;
	quota = (struct root_ref){ BTRFS_QUOTA_TREE_OBJECTID, le64_to_cpu(ri.bytenr),
				   le64_to_cpu(ri.generation), ri.level };
	vec_init(&rels, 2 * sizeof(u64));
	for (ret = key_iter_first(&it, fs, &quota, &min, &max); ret == 0; ret = key_iter_next(&it)) {
		ret = load_item(qs, &rels, &it);
		if (ret)
			break;
	}
	key_iter_release(&it);
	if (ret >= 0)
		ret = index_relations(qs, &rels);
	vec_free(&rels);
	if (ret == -ENOMEM)
		return fs_err(fs, ret, "out of memory");
	if (ret < 0)
		return ret;
	if (qs->mode == QGROUP_OFF)
		qs->mode = mode_of(qs->status_flags);
	return 0;
}

void qgroup_state_free(struct qgroup_state *qs)
{
	free(qs->groups);
	free(qs->rels);
	qs->groups = NULL;
	qs->rels = NULL;
	qs->nr_groups = qs->nr_rels = qs->cap_groups = 0;
}

/* ---- commit ------------------------------------------------------------- */

/* Write g's computed counts into its QGROUP_INFO item (nothing if it vanished). */
static int update_info(struct trans *t, struct trans_root *qr, const struct qgroup_count *g,
		       bool cmpr)
{
	struct btrfs_key key = { 0, BTRFS_QGROUP_INFO_KEY, g->id };
	struct btrfs_qgroup_info_item *ii;
	struct btrfs_path p;
	int ret = search_slot_mod(t, qr, &key, &p, 0);

	if (ret == 0 && path_size(&p) >= sizeof(*ii)) {
		ii = (void *)path_ptr_mut(&p);
		ii->generation = cpu_to_le64(t->transid);
		ii->rfer = cpu_to_le64(g->rfer);
		ii->excl = cpu_to_le64(g->excl);
		if (cmpr) {
			ii->rfer_cmpr = ii->rfer;
			ii->excl_cmpr = ii->excl;
		}
	}
	path_release(t->fs, &p);
	return ret < 0 ? ret : 0;
}

static int update_status(struct trans *t, struct trans_root *qr)
{
	struct btrfs_key key = { 0, BTRFS_QGROUP_STATUS_KEY, 0 };
	struct btrfs_qgroup_status_item *st;
	struct btrfs_path p;
	int ret = search_slot_mod(t, qr, &key, &p, 0);

	if (ret == 0 && path_size(&p) >= offsetof(struct btrfs_qgroup_status_item, enable_gen)) {
		st = (void *)path_ptr_mut(&p);
		st->generation = cpu_to_le64(t->transid);
	}
	path_release(t->fs, &p);
	return ret < 0 ? ret : 0;
}

int qgroup_trans_update(struct trans *t, bool *changed)
{
	struct fs_info *fs = t->fs;
	struct qgroup_state qs = { .trusted = true };
	struct trans_root *rt = trans_get_root(t, BTRFS_ROOT_TREE_OBJECTID), *qr;
	int ret;

	if (!rt)
		return trans_root_err(t);
	ret = qgroup_load(fs, &rt->ref, &qs);
	fs->qgroup_mode = qs.mode;
	if (ret || qs.mode == QGROUP_NONE || qs.mode == QGROUP_OFF)
		goto out;
	if (qs.mode == QGROUP_EXACT || qs.mode == QGROUP_SIMPLE) {
		ret = qgroup_compute(fs, &rt->ref, &qs);
		if (ret)
			goto out;
	}
	qr = trans_get_root(t, BTRFS_QUOTA_TREE_OBJECTID);
	if (!qr) {
		ret = trans_root_err(t);
		goto out;
	}
	for (size_t i = 0; i < qs.nr_groups && !ret; i++) {
		const struct qgroup_count *g = &qs.groups[i];

		/* Simple quotas leave the compressed counts alone, as the kernel does. */
		if ((qs.mode != QGROUP_EXACT && qs.mode != QGROUP_SIMPLE) ||
		    (!qgroup_differs(g) && (qs.mode == QGROUP_SIMPLE ||
					    (g->disk_rfer_cmpr == g->rfer && g->disk_excl_cmpr == g->excl))))
			continue;
		ret = update_info(t, qr, g, qs.mode == QGROUP_EXACT);
		*changed = true;
	}
	if (!ret && qs.status_generation != t->transid) {
		ret = update_status(t, qr);
		*changed = true;
	}
out:
	qgroup_state_free(&qs);
	return ret;
}

const char *qgroup_mode_note(int mode)
{
	switch (mode) {
	case QGROUP_INCONSISTENT:
		return "qgroup counts were marked inconsistent before and are left so: "
		       "run `btrfs quota rescan` after mounting";
	case QGROUP_RESCAN:
		return "a qgroup rescan was in progress: qgroup counts are left to it; "
		       "run `btrfs quota rescan -w` after mounting";
	default:
		return NULL;
	}
}
