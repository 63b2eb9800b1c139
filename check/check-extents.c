// SPDX-License-Identifier: GPL-2.0
/*
 * Extent tree, block groups and free space tree of `check`.
 *
 * The extent tree is read into flat arrays (extent items, backrefs) and
 * compared with the references the tree walk found, after resolving each
 * found reference the way btrfs records it: a reference from a block whose
 * extent item has FULL_BACKREF is a shared (parent) backref, any other is
 * keyed by the owner root of the referring block (btrfs-progs check does
 * the same).  Block group `used` and the free space tree are derived from
 * the extent items alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "check/check.h"
#include "common/messages.h"
#include "kernel-shared/volumes.h"


/* ---- collection --------------------------------------------------------- */

static void bad_item(struct check_ctx *c, const struct tree_block *leaf,
		     const struct btrfs_key *k, const char *why)
{
	check_report(c, PR_EXTENT_ITEM_BAD, LOC_BLOCK(BTRFS_EXTENT_TREE_OBJECTID, leaf->bytenr),
		     k->objectid, k->type, k->offset, why);
}

static struct ext_backref *push_backref(struct check_ctx *c, u64 bytenr, u8 kind)
{
	struct ext_backref *r = vec_push_or_die(&c->ext_backrefs);

	r->bytenr = bytenr;
	r->kind = kind;
	return r;
}

static struct ext_rec *last_ext(struct check_ctx *c)
{
	return c->ext_recs.nr ? &VEC_AT(&c->ext_recs, struct ext_rec, c->ext_recs.nr - 1) : NULL;
}

/* The backref record of a decoded ref (root holds the parent of the shared kinds). */
static struct ext_backref *push_decoded(struct check_ctx *c, u64 bytenr, const struct backref *br)
{
	struct ext_backref *r = push_backref(c, bytenr, br->kind);

	r->root = br->kind == REF_SHARED_BLOCK || br->kind == REF_SHARED_DATA ? br->parent : br->root;
	r->owner = br->objectid;
	r->offset = br->offset;
	r->count = br->count;
	return r;
}

/* Parse the inline refs of an extent item; returns false if malformed. */
static bool parse_inline_refs(struct check_ctx *c, struct ext_rec *e, const u8 *p, u32 len,
			      const char **why)
{
	u32 pos = 0;

	while (pos < len) {
		struct backref br;
		int n;

		if (pos + sizeof(struct btrfs_extent_inline_ref) > len) {
			*why = "inline ref overruns the item";
			return false;
		}
		n = backref_decode_inline(p + pos, len - pos, &br);
		if (n < 0) {
			*why = n == BACKREF_UNKNOWN ? "unknown inline ref type" :
			       "inline ref overruns the item";
			return false;
		}
		pos += n;
		if (br.kind == REF_OWNER)
			continue;
		e->backref_sum += push_decoded(c, e->bytenr, &br)->count;
	}
	return true;
}

static void extent_item(struct check_ctx *c, const struct tree_block *leaf, u32 slot,
			const struct btrfs_key *k)
{
	const u8 *p = tb_item_ptr(leaf, slot);
	u32 size = tb_item_size(leaf, slot), hdr = sizeof(struct btrfs_extent_item);
	const struct btrfs_extent_item *ei = (const void *)p;
	const char *why = NULL;
	struct ext_rec *e;

	if (size < sizeof(*ei)) {
		bad_item(c, leaf, k, "extent item too small (old v0 format?)");
		return;
	}
	e = vec_push_or_die(&c->ext_recs);
	e->bytenr = k->objectid;
	e->refs = le64_to_cpu(ei->refs);
	e->generation = le64_to_cpu(ei->generation);
	e->flags = le64_to_cpu(ei->flags);
	if (k->type == BTRFS_METADATA_ITEM_KEY) {
		e->metadata = true;
		e->len = c->fs->nodesize;
		e->level = (u8)k->offset;
		if (k->offset >= BTRFS_MAX_LEVEL)
			bad_item(c, leaf, k, "tree block level out of range");
	} else {
		e->len = k->offset;
		if (e->flags & BTRFS_EXTENT_FLAG_TREE_BLOCK) {
			const struct btrfs_tree_block_info *tbi = (const void *)(p + hdr);

			e->metadata = true;
			if (size < hdr + sizeof(*tbi)) {
				bad_item(c, leaf, k, "tree block info missing");
				return;
			}
			e->level = tbi->level;
			hdr += sizeof(*tbi);
		}
	}
	if (!(e->flags & (BTRFS_EXTENT_FLAG_DATA | BTRFS_EXTENT_FLAG_TREE_BLOCK)) ||
	    ((e->flags & BTRFS_EXTENT_FLAG_DATA) && e->metadata))
		bad_item(c, leaf, k, "invalid extent flags");
	if (e->metadata)
		c->cnt.metadata_extents++;
	else
		c->cnt.data_extents++;
	if (!parse_inline_refs(c, e, p + hdr, size - hdr, &why))
		bad_item(c, leaf, k, why);
}

static void keyed_ref(struct check_ctx *c, const struct tree_block *leaf, u32 slot,
		      const struct btrfs_key *k)
{
	struct ext_rec *e = last_ext(c);
	const u8 *p = tb_item_ptr(leaf, slot);
	u32 size = tb_item_size(leaf, slot);
	struct ext_backref *r;
	struct backref br;
	int ret;

	if (!e || e->bytenr != k->objectid) {
		bad_item(c, leaf, k, "backref without an extent item");
		return;
	}
	ret = backref_decode_keyed(k, p, size, &br);
	if (ret == BACKREF_UNKNOWN)
		return;
	if (ret < 0) {
		bad_item(c, leaf, k, "item too small");
		return;
	}
	r = push_decoded(c, k->objectid, &br);
	e->backref_sum += r->count;
}

static void block_group_item(struct check_ctx *c, const struct tree_block *leaf, u32 slot,
			     const struct btrfs_key *k, u64 tree)
{
	const struct btrfs_block_group_item *bi = (const void *)tb_item_ptr(leaf, slot);
	struct bg_rec *bg;

	if (tb_item_size(leaf, slot) < sizeof(*bi)) {
		check_report(c, PR_EXTENT_ITEM_BAD, LOC_BLOCK(tree, leaf->bytenr), k->objectid,
			     k->type, k->offset, "block group item too small");
		return;
	}
	bg = vec_push_or_die(&c->bgs);
	bg->start = k->objectid;
	bg->len = k->offset;
	bg->used = le64_to_cpu(bi->used);
	bg->flags = le64_to_cpu(bi->flags);
	c->cnt.block_groups++;
}

void extent_tree_leaf(struct check_ctx *c, const struct tree_block *leaf)
{
	for (u32 i = 0; i < tb_nritems(leaf); i++) {
		struct btrfs_key k;

		tb_item_key(leaf, i, &k);
		switch (k.type) {
		case BTRFS_EXTENT_ITEM_KEY:
		case BTRFS_METADATA_ITEM_KEY:
			extent_item(c, leaf, i, &k);
			break;
		case BTRFS_TREE_BLOCK_REF_KEY:
		case BTRFS_SHARED_BLOCK_REF_KEY:
		case BTRFS_EXTENT_DATA_REF_KEY:
		case BTRFS_SHARED_DATA_REF_KEY:
			keyed_ref(c, leaf, i, &k);
			break;
		case BTRFS_BLOCK_GROUP_ITEM_KEY:
			block_group_item(c, leaf, i, &k, BTRFS_EXTENT_TREE_OBJECTID);
			break;
		default:
			break;
		}
	}
}

void bg_tree_leaf(struct check_ctx *c, const struct tree_block *leaf)
{
	for (u32 i = 0; i < tb_nritems(leaf); i++) {
		struct btrfs_key k;

		tb_item_key(leaf, i, &k);
		if (k.type == BTRFS_BLOCK_GROUP_ITEM_KEY)
			block_group_item(c, leaf, i, &k, BTRFS_BLOCK_GROUP_TREE_OBJECTID);
	}
}

/*
 * Whether a free space extent or bitmap lies inside the range of the last
 * FREE_SPACE_INFO before it in key order, as btrfs check requires of every
 * range (mkfs leftovers before the first block group included).
 */
static bool fst_in_info(const struct check_ctx *c, const struct btrfs_key *k)
{
	const struct fst_info *info;

	if (!c->fst_infos.nr)
		return false;
	info = &VEC_AT(&c->fst_infos, struct fst_info, c->fst_infos.nr - 1);
	return k->objectid >= info->start && k->offset <= info->start + info->len - k->objectid &&
	       info->start + info->len >= info->start;
}

void fst_leaf(struct check_ctx *c, const struct tree_block *leaf)
{
	u32 ss = c->fs->sectorsize;

	for (u32 i = 0; i < tb_nritems(leaf); i++) {
		struct btrfs_key k;
		u32 size = tb_item_size(leaf, i);
		const u8 *p = tb_item_ptr(leaf, i);

		tb_item_key(leaf, i, &k);
		if ((k.type == BTRFS_FREE_SPACE_EXTENT_KEY || k.type == BTRFS_FREE_SPACE_BITMAP_KEY) &&
		    !fst_in_info(c, &k)) {
			check_report(c, PR_FREE_SPACE_ITEM_BAD,
				     LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, leaf->bytenr), k.objectid,
				     k.type, k.offset, "it lies outside the free space info before it");
			continue;
		}
		if (k.type == BTRFS_FREE_SPACE_EXTENT_KEY || k.type == BTRFS_FREE_SPACE_BITMAP_KEY) {
			/* The info's USING_BITMAPS flag says which of the two its block group holds. */
			bool bitmaps = VEC_AT(&c->fst_infos, struct fst_info, c->fst_infos.nr - 1).flags &
				       BTRFS_FREE_SPACE_USING_BITMAPS;

			if (bitmaps != (k.type == BTRFS_FREE_SPACE_BITMAP_KEY))
				check_report(c, PR_FREE_SPACE_ITEM_BAD,
					     LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, leaf->bytenr),
					     k.objectid, k.type, k.offset, bitmaps ?
					     "an extent item where the free space info says bitmaps" :
					     "a bitmap item where the free space info says extents");
		}
		if (k.type == BTRFS_FREE_SPACE_INFO_KEY) {
			const struct btrfs_free_space_info *fi = (const void *)p;
			struct fst_info *info;

			if (size < sizeof(*fi)) {
				check_report(c, PR_FREE_SPACE_ITEM_BAD,
					     LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, leaf->bytenr),
					     k.objectid, k.type, k.offset, "item too small");
				continue;
			}
			info = vec_push_or_die(&c->fst_infos);
			info->start = k.objectid;
			info->len = k.offset;
			info->extent_count = le32_to_cpu(fi->extent_count);
			info->flags = le32_to_cpu(fi->flags);
			info->leaf = leaf->bytenr;
		} else if (k.type == BTRFS_FREE_SPACE_EXTENT_KEY) {
			struct fst_range *r = vec_push_or_die(&c->fst_ranges);

			r->start = r->item_start = k.objectid;
			r->len = k.offset;
		} else if (k.type == BTRFS_FREE_SPACE_BITMAP_KEY) {
			u64 bits = k.offset / ss, run_start = 0;
			bool in_run = false;

			if (k.offset % ss || size < (bits + 7) / 8) {
				check_report(c, PR_FREE_SPACE_ITEM_BAD,
					     LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, leaf->bytenr),
					     k.objectid, k.type, k.offset,
					     "bitmap size does not match its length");
				continue;
			}
			for (u64 b = 0; b <= bits; b++) {
				bool set = b < bits && (p[b / 8] >> (b % 8)) & 1;

				if (set && !in_run) {
					run_start = b;
					in_run = true;
				} else if (!set && in_run) {
					struct fst_range *r = vec_push_or_die(&c->fst_ranges);

					r->start = k.objectid + run_start * ss;
					r->len = (b - run_start) * ss;
					r->bitmap = true;
					r->item_start = k.objectid;
					in_run = false;
				}
			}
		}
	}
}

/* ---- extent items against references ------------------------------------ */

static int cmp_ext_rec(const void *a, const void *b)
{
	const struct ext_rec *x = a, *y = b;

	return cmp_u64(x->bytenr, y->bytenr);
}

const struct ext_rec *ext_rec_find(const struct check_ctx *c, u64 bytenr)
{
	size_t lo = 0, hi = c->ext_recs.nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ext_rec *e = &VEC_AT(&c->ext_recs, struct ext_rec, mid);

		if (e->bytenr == bytenr)
			return e;
		if (e->bytenr < bytenr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_backref(const void *a, const void *b)
{
	const struct ext_backref *x = a, *y = b;
	int r;

	if ((r = cmp_u64(x->bytenr, y->bytenr)))
		return r;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if ((r = cmp_u64(x->root, y->root)))
		return r;
	if ((r = cmp_u64(x->owner, y->owner)))
		return r;
	return cmp_u64(x->offset, y->offset);
}

static bool same_ref(const struct ext_backref *x, const struct ext_backref *y)
{
	return x->bytenr == y->bytenr && x->kind == y->kind && x->root == y->root &&
	       x->owner == y->owner && x->offset == y->offset;
}

/* Merge equal neighbours of a sorted backref array, summing counts. */
static size_t aggregate(struct ext_backref *v, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		if (out && same_ref(&v[out - 1], &v[i])) {
			v[out - 1].count += v[i].count;
			continue;
		}
		v[out++] = v[i];
	}
	return out;
}

static bool full_backref(const struct check_ctx *c, u64 bytenr)
{
	const struct ext_rec *e = ext_rec_find(c, bytenr);

	return e && (e->flags & BTRFS_BLOCK_FLAG_FULL_BACKREF);
}

static void describe_ref(const struct ext_backref *r, char *buf, size_t len)
{
	switch (r->kind) {
	case REF_TREE_BLOCK:
		snprintf(buf, len, "tree block ref root %llu", r->root);
		break;
	case REF_SHARED_BLOCK:
		snprintf(buf, len, "shared block ref parent %llu", r->root);
		break;
	case REF_DATA:
		snprintf(buf, len, "data ref root %llu inode %llu offset %llu", r->root,
			 r->owner, r->offset);
		break;
	default:
		snprintf(buf, len, "shared data ref parent %llu", r->root);
		break;
	}
}

static u64 ref_root_for_loc(const struct ext_backref *r)
{
	return (r->kind == REF_TREE_BLOCK || r->kind == REF_DATA) ? r->root : NOLOC;
}

static struct ext_backref *resolve_found(struct check_ctx *c, size_t *nr)
{
	size_t n = c->tree_refs.nr + c->data_refs.nr, k = 0;
	struct ext_backref *v = fault_calloc(n ? n : 1, sizeof(*v));

	if (!v)
		die_oom();
	for (size_t i = 0; i < c->tree_refs.nr; i++) {
		const struct found_tree_ref *t = &VEC_AT(&c->tree_refs, struct found_tree_ref, i);
		struct ext_backref *r = &v[k++];

		r->bytenr = t->bytenr;
		r->count = 1;
		r->num_bytes = t->level;	/* carried for the level check */
		if (t->parent && full_backref(c, t->parent)) {
			r->kind = REF_SHARED_BLOCK;
			r->root = t->parent;
		} else if (!t->parent && t->root == BTRFS_TREE_RELOC_OBJECTID &&
			   full_backref(c, t->bytenr)) {
			/* A relocation tree's root block refers to itself. */
			r->kind = REF_SHARED_BLOCK;
			r->root = t->bytenr;
		} else {
			r->kind = REF_TREE_BLOCK;
			r->root = t->root;
		}
	}
	for (size_t i = 0; i < c->data_refs.nr; i++) {
		const struct found_data_ref *d = &VEC_AT(&c->data_refs, struct found_data_ref, i);
		struct ext_backref *r = &v[k++];

		r->bytenr = d->bytenr;
		r->count = 1;
		r->num_bytes = d->num_bytes;
		if (full_backref(c, d->leaf)) {
			r->kind = REF_SHARED_DATA;
			r->root = d->leaf;
		} else {
			r->kind = REF_DATA;
			r->root = d->root;
			r->owner = d->ino;
			r->offset = d->offset;
		}
	}
	/* Resolved: the walk's records are no longer needed, and the peak is here. */
	vec_free(&c->tree_refs);
	vec_free(&c->data_refs);
	check_qsort(v, k, sizeof(*v), cmp_backref);
	*nr = k;
	return v;
}

/* Checks of one extent item that need nothing but the item and the chunks. */
static void check_ext_rec_alone(struct check_ctx *c, const struct ext_rec *e,
				const struct ext_rec *next)
{
	const struct chunk_map *m = find_chunk(c->fs, e->bytenr);
	const char *kind = e->metadata ? "tree block" : "data";

	if (next && e->bytenr + e->len > next->bytenr)
		check_report(c, PR_EXTENT_ITEM_OVERLAP, LOC_BLOCK(NOLOC, e->bytenr),
			     e->bytenr, e->bytenr + e->len, next->bytenr);
	if (e->generation > c->fs->generation)
		check_report(c, PR_EXTENT_GENERATION, LOC_BLOCK(NOLOC, e->bytenr),
			     e->generation, c->fs->generation);
	if (!m || e->bytenr + e->len > m->logical + m->length ||
	    !(m->type & (e->metadata ? (BTRFS_BLOCK_GROUP_METADATA | BTRFS_BLOCK_GROUP_SYSTEM) :
			 BTRFS_BLOCK_GROUP_DATA)))
		check_report(c, PR_EXTENT_CHUNK_TYPE, LOC_BLOCK(NOLOC, e->bytenr), kind,
			     e->bytenr, e->bytenr + e->len, m ? m->type : 0ULL);
}

static void compare_group(struct check_ctx *c, const struct ext_rec *e,
			  const struct ext_backref *found, size_t nf,
			  const struct ext_backref *have, size_t nh, bool walks_complete)
{
	u64 found_sum = 0;
	size_t i = 0, j = 0;
	char desc[128];
	u64 bytenr = e ? e->bytenr : (nf ? found[0].bytenr : have[0].bytenr);

	for (size_t k = 0; k < nf; k++)
		found_sum += found[k].count;
	if (!e) {
		if (nf)
			check_report(c, PR_EXTENT_ITEM_MISSING,
				     LOC_BLOCK(ref_root_for_loc(&found[0]), bytenr),
				     found[0].kind <= REF_SHARED_BLOCK ? "tree block" : "data",
				     found[0].kind <= REF_SHARED_BLOCK ? (u64)c->fs->nodesize :
				     found[0].num_bytes, found_sum);
		return;
	}
	if (!nf) {
		if (walks_complete)
			check_report(c, PR_EXTENT_ITEM_UNUSED, LOC_BLOCK(NOLOC, bytenr), e->len, e->refs);
		return;
	}
	if (e->refs != e->backref_sum || (e->refs != found_sum && (walks_complete || found_sum > e->refs)))
		check_report(c, PR_EXTENT_REFS_MISMATCH, LOC_BLOCK(NOLOC, bytenr), e->refs,
			     e->backref_sum, found_sum);
	for (size_t k = 0; k < nf; k++) {
		if (e->metadata && found[k].num_bytes != e->level)
			check_report(c, PR_EXTENT_ITEM_BAD, LOC_BLOCK(NOLOC, bytenr), bytenr,
				     e->metadata ? BTRFS_METADATA_ITEM_KEY : BTRFS_EXTENT_ITEM_KEY,
				     e->len, "level differs from the tree block's");
		if (!e->metadata && found[k].kind >= REF_DATA && found[k].num_bytes != e->len)
			check_report(c, PR_EXTENT_SIZE_MISMATCH,
				     LOC_BLOCK(ref_root_for_loc(&found[k]), bytenr),
				     found[k].num_bytes, e->len);
		if (e->metadata != (found[k].kind <= REF_SHARED_BLOCK))
			check_report(c, PR_EXTENT_ITEM_BAD, LOC_BLOCK(NOLOC, bytenr), bytenr,
				     BTRFS_EXTENT_ITEM_KEY, e->len,
				     e->metadata ? "tree block extent referenced as data" :
				     "data extent referenced as a tree block");
		if (e->metadata || found[k].kind <= REF_SHARED_BLOCK)
			break;	/* one report of the level/kind is enough */
	}
	while (i < nf || j < nh) {
		int r = i < nf && j < nh ? cmp_backref(&found[i], &have[j]) : (i < nf ? -1 : 1);

		if (r == 0) {
			if (found[i].count != have[j].count &&
			    (walks_complete || found[i].count > have[j].count)) {
				describe_ref(&have[j], desc, sizeof(desc));
				check_report(c, PR_EXTENT_BACKREF_COUNT,
					     LOC_BLOCK(ref_root_for_loc(&have[j]), bytenr),
					     desc, have[j].count, found[i].count);
			}
			i++;
			j++;
		} else if (r < 0) {
			describe_ref(&found[i], desc, sizeof(desc));
			check_report(c, PR_EXTENT_BACKREF_MISSING,
				     LOC_BLOCK(ref_root_for_loc(&found[i]), bytenr), desc,
				     found[i].count);
			i++;
		} else {
			if (walks_complete) {
				describe_ref(&have[j], desc, sizeof(desc));
				check_report(c, PR_EXTENT_BACKREF_UNUSED,
					     LOC_BLOCK(ref_root_for_loc(&have[j]), bytenr), desc,
					     have[j].count);
			}
			j++;
		}
	}
}

static int cmp_found_block(const void *a, const void *b)
{
	return cmp_u64(((const struct found_block *)a)->bytenr, ((const struct found_block *)b)->bytenr);
}

/*
 * A tree block's header against its extent item, as btrfs check compares
 * them: the item's generation is the block's (lowmem: "backref generation
 * mismatch"), and unless the item has FULL_BACKREF, the header's owner is
 * the root of a reference the walk found or the tree whose walk reached it
 * ("owner ref check failed").  A block with the header flag RELOC was
 * written by relocation (or belongs to a reloc tree), whose blocks the
 * kernel gives full backrefs: btrfs check then expects them ("bad full
 * backref"), so its extent item must have FULL_BACKREF.
 */
static void check_block_header_refs(struct check_ctx *c, const struct ext_rec *e,
				    const struct ext_backref *found, size_t nf)
{
	struct found_block key = { .bytenr = e->bytenr }, *fb;
	char msg[200];
	bool owned = false;

	if (!c->found_blocks.nr)
		return;
	fb = bsearch(&key, c->found_blocks.data, c->found_blocks.nr, sizeof(key), cmp_found_block);
	if (!fb)
		return;
	if (fb->generation != e->generation)
		check_report(c, PR_EXTENT_ITEM_BAD, LOC_BLOCK(NOLOC, e->bytenr), e->bytenr,
			     BTRFS_METADATA_ITEM_KEY, e->len, "generation differs from the tree block's");
	if (e->flags & BTRFS_BLOCK_FLAG_FULL_BACKREF)
		return;
	if (fb->reloc) {
		check_report(c, PR_EXTENT_ITEM_BAD, LOC_BLOCK(NOLOC, e->bytenr), e->bytenr,
			     BTRFS_METADATA_ITEM_KEY, e->len,
			     "the block's header has the RELOC flag but the item lacks FULL_BACKREF (bad full backref)");
		return;
	}
	for (size_t k = 0; k < nf && !owned; k++)
		owned = found[k].kind == REF_TREE_BLOCK && found[k].root == fb->owner;
	if (owned || fb->tree == fb->owner)
		return;
	snprintf(msg, sizeof(msg),
		 "%s owner %llu: no reference to the block comes from tree %llu (owner ref check failed)",
		 e->level ? "node" : "leaf", fb->owner, fb->owner);
	check_report(c, PR_TREE_BLOCK_OWNER, LOC_BLOCK(fb->tree, e->bytenr), msg);
}

static void check_block_groups(struct check_ctx *c)
{
	struct bg_rec *bgs = c->bgs.data;
	size_t nbg = c->bgs.nr, e = 0;
	u64 total = 0;
	char msg[160];

	for (size_t i = 0; i < c->ext_recs.nr; i++)
		total += VEC_AT(&c->ext_recs, struct ext_rec, i).len;
	for (size_t i = 0; i < nbg; i++) {
		u64 used = 0;

		while (e < c->ext_recs.nr &&
		       VEC_AT(&c->ext_recs, struct ext_rec, e).bytenr < bgs[i].start)
			e++;
		for (size_t k = e; k < c->ext_recs.nr; k++) {
			const struct ext_rec *x = &VEC_AT(&c->ext_recs, struct ext_rec, k);

			if (x->bytenr >= bgs[i].start + bgs[i].len)
				break;
			used += x->len;
		}
		if (used != bgs[i].used)
			check_report(c, PR_BLOCK_GROUP_USED, LOC_BLOCK(NOLOC, bgs[i].start),
				     bgs[i].start, bgs[i].start + bgs[i].len, bgs[i].used, used);
	}
	/* Every chunk has its block group and the reverse. */
	for (size_t i = 0; i < c->fs->nr_chunks; i++) {
		const struct chunk_map *m = &c->fs->chunks[i];
		bool found = false;

		for (size_t k = 0; k < nbg; k++) {
			if (bgs[k].start != m->logical)
				continue;
			found = true;
			/* All flag bits, unknown ones too (btrfs check lowmem). */
			if (bgs[k].len != m->length || bgs[k].flags != m->type) {
				snprintf(msg, sizeof(msg),
					 "block group [%llu, +%llu) type 0x%llx does not match its chunk (+%llu, type 0x%llx)",
					 bgs[k].start, bgs[k].len, bgs[k].flags, m->length, m->type);
				check_report(c, PR_BLOCK_GROUP_CHUNK, LOC_BLOCK(NOLOC, m->logical), msg);
			}
		}
		if (!found && c->extent_tree_ok) {
			snprintf(msg, sizeof(msg), "chunk [%llu, +%llu) has no block group item",
				 m->logical, m->length);
			check_report(c, PR_BLOCK_GROUP_CHUNK, LOC_BLOCK(NOLOC, m->logical), msg);
		}
	}
	for (size_t k = 0; k < nbg; k++) {
		const struct chunk_map *m = find_chunk(c->fs, bgs[k].start);

		if (!m || m->logical != bgs[k].start) {
			snprintf(msg, sizeof(msg), "block group [%llu, +%llu) has no chunk",
				 bgs[k].start, bgs[k].len);
			check_report(c, PR_BLOCK_GROUP_CHUNK, LOC_BLOCK(NOLOC, bgs[k].start), msg);
		}
	}
	if (c->extent_tree_ok && total != le64_to_cpu(c->fs->super.bytes_used))
		check_report(c, PR_SUPER_BYTES_USED, LOC_NONE,
			     (unsigned long long)le64_to_cpu(c->fs->super.bytes_used), total);
}

static int cmp_bg(const void *a, const void *b)
{
	return cmp_u64(((const struct bg_rec *)a)->start, ((const struct bg_rec *)b)->start);
}

void check_extents(struct check_ctx *c)
{
	struct ext_rec *recs = c->ext_recs.data;
	size_t nrec = c->ext_recs.nr, nfound, nhave, i = 0, f = 0, h = 0;
	struct ext_backref *found, *have = c->ext_backrefs.data;
	bool complete = c->nr_by_sev[SEV_ERROR] == 0 || c->extent_tree_ok;

	check_qsort(recs, nrec, sizeof(*recs), cmp_ext_rec);
	check_qsort(c->found_blocks.data, c->found_blocks.nr, sizeof(struct found_block),
		    cmp_found_block);
	check_qsort(c->bgs.data, c->bgs.nr, sizeof(struct bg_rec), cmp_bg);
	for (size_t k = 0; k < nrec; k++)
		check_ext_rec_alone(c, &recs[k], k + 1 < nrec ? &recs[k + 1] : NULL);

	/* Did every tree walk reach all its blocks?  Otherwise references are
	 * necessarily missing and only the "more found than recorded" direction
	 * is meaningful. */
	for (size_t k = 0; k < c->nr_problems; k++)
		if (c->problems[k].code == PR_TREE_BLOCK_BAD || c->problems[k].code == PR_TREE_ROOT_BAD)
			complete = false;

	found = resolve_found(c, &nfound);
	nfound = aggregate(found, nfound);
	check_qsort(have, c->ext_backrefs.nr, sizeof(*have), cmp_backref);
	nhave = aggregate(have, c->ext_backrefs.nr);
	c->ext_backrefs.nr = nhave;

	while (i < nrec || f < nfound || h < nhave) {
		u64 next = (u64)-1;
		size_t f0 = f, h0 = h;
		const struct ext_rec *e = NULL;

		if (i < nrec && recs[i].bytenr < next)
			next = recs[i].bytenr;
		if (f < nfound && found[f].bytenr < next)
			next = found[f].bytenr;
		if (h < nhave && have[h].bytenr < next)
			next = have[h].bytenr;
		if (i < nrec && recs[i].bytenr == next)
			e = &recs[i++];
		while (f < nfound && found[f].bytenr == next)
			f++;
		while (h < nhave && have[h].bytenr == next)
			h++;
		if (!e && f == f0)
			continue;	/* stray backrefs: reported while reading */
		/* No pointer arithmetic on an empty list's NULL (UB). */
		compare_group(c, e, nfound ? found + f0 : NULL, f - f0,
			      nhave ? have + h0 : NULL, h - h0, complete);
		if (e && e->metadata)
			check_block_header_refs(c, e, nfound ? found + f0 : NULL, f - f0);
	}
	free(found);
	if (c->extent_tree_ok)
		check_block_groups(c);
}

/* ---- free space tree ------------------------------------------------------ */

struct range {
	u64 start, end;
};

static int cmp_range(const void *a, const void *b)
{
	return cmp_u64(((const struct range *)a)->start, ((const struct range *)b)->start);
}

/* Logical ranges that hold superblock copies: never free, never extents. */
static size_t super_ranges(const struct check_ctx *c, struct range *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < c->fs->nr_chunks; i++) {
		const struct chunk_map *m = &c->fs->chunks[i];

		for (int mir = 0; mir < BTRFS_SUPER_MIRROR_MAX; mir++) {
			u64 phys = btrfs_sb_offset(mir);

			for (int s = 0; s < m->num_stripes; s++) {
				u64 start, end, len;

				/* Every device holds the copies at the same offsets. */
				if (!chunk_rmap(m, s, phys, &start, &len))
					continue;
				end = start + len;
				if (end > m->logical + m->length)
					end = m->logical + m->length;
				if (n < max)
					out[n++] = (struct range){ start, end };
			}
		}
	}
	return n;
}

static void report_fs_diff(struct check_ctx *c, const struct bg_rec *bg, const char *what,
			   u64 s, u64 e, const char *how, int *budget)
{
	if ((*budget)-- <= 0)
		return;
	check_report(c, PR_FREE_SPACE_MISMATCH, LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, bg->start),
		     bg->start, bg->start + bg->len, what, s, e, how);
}

/* Used space of a block group: extent items and superblock copies, unsorted. */
static int bg_used_ranges(struct check_ctx *c, const struct bg_rec *bg, const struct range *sup,
			  size_t nsup, struct vec *used)
{
	const struct ext_rec *recs = c->ext_recs.data;
	u64 bg_end = bg->start + bg->len;
	size_t lo = 0, hi = c->ext_recs.nr;
	struct range *r;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (recs[mid].bytenr < bg->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k < c->ext_recs.nr && recs[k].bytenr < bg_end; k++) {
		r = vec_push(used);
		if (!r)
			return -ENOMEM;
		*r = (struct range){ recs[k].bytenr, recs[k].bytenr + recs[k].len };
	}
	for (size_t k = 0; k < nsup; k++) {
		if (sup[k].end <= bg->start || sup[k].start >= bg_end)
			continue;
		r = vec_push(used);
		if (!r)
			return -ENOMEM;
		*r = sup[k];
	}
	return 0;
}

/* The gaps between the sorted used ranges: the free space there should be. */
static int bg_free_gaps(const struct bg_rec *bg, const struct vec *used, struct vec *want)
{
	const struct range *u = used->data;
	u64 cur = bg->start, bg_end = bg->start + bg->len;
	struct range *r;

	if (vec_reserve(want, used->nr + 1))
		return -ENOMEM;
	for (size_t k = 0; k < used->nr; k++) {
		if (u[k].start > cur) {
			r = vec_push(want);	/* reserved */
			*r = (struct range){ cur, u[k].start };
		}
		if (u[k].end > cur)
			cur = u[k].end;
	}
	if (cur < bg_end) {
		r = vec_push(want);
		*r = (struct range){ cur, bg_end };
	}
	return 0;
}

/* Free space as the tree says, adjacent runs merged; bad entries reported. */
static int bg_tree_free(struct check_ctx *c, const struct bg_rec *bg, struct vec *have,
			int *budget)
{
	const struct fst_range *r = c->fst_ranges.data;
	u64 bg_end = bg->start + bg->len;

	for (size_t k = 0; k < c->fst_ranges.nr; k++) {
		struct range *last = have->nr ? &VEC_AT(have, struct range, have->nr - 1) : NULL;
		struct range *n;

		if (r[k].start < bg->start || r[k].start >= bg_end)
			continue;
		if (r[k].start + r[k].len > bg_end)
			report_fs_diff(c, bg, "entry", r[k].start, r[k].start + r[k].len,
				       "runs past the end of the block group", budget);
		if (last && last->end == r[k].start) {
			last->end += r[k].len;
			continue;
		}
		if (last && last->end > r[k].start)
			report_fs_diff(c, bg, "entry", r[k].start, r[k].start + r[k].len,
				       "overlaps the previous entry", budget);
		n = vec_push(have);
		if (!n)
			return -ENOMEM;
		*n = (struct range){ r[k].start, r[k].start + r[k].len };
	}
	return 0;
}

/* Compare the two sorted lists, reporting each range only one side has. */
static void bg_compare_free(struct check_ctx *c, const struct bg_rec *bg, const struct vec *wv,
			    const struct vec *hv, int *budget)
{
	const struct range *want = wv->data, *have = hv->data;
	size_t nwant = wv->nr, nhave = hv->nr, a = 0, b = 0;

	while (a < nwant || b < nhave) {
		if (a < nwant && b < nhave && want[a].start == have[b].start &&
		    want[a].end == have[b].end) {
			a++;
			b++;
		} else if (b >= nhave || (a < nwant && want[a].start < have[b].start) ||
			   (a < nwant && want[a].start == have[b].start && want[a].end > have[b].end)) {
			report_fs_diff(c, bg, "lacks free range", want[a].start, want[a].end,
				       "that no extent uses", budget);
			a++;
		} else {
			report_fs_diff(c, bg, "has free range", have[b].start, have[b].end,
				       "that extents or superblocks use", budget);
			b++;
		}
	}
}

static void check_bg_free_space(struct check_ctx *c, const struct bg_rec *bg,
				const struct range *sup, size_t nsup)
{
	u64 bg_end = bg->start + bg->len;
	struct vec used, want, have;
	const struct fst_info *info = NULL;
	int budget = 8;

	for (size_t i = 0; i < c->fst_infos.nr; i++) {
		const struct fst_info *f = &VEC_AT(&c->fst_infos, struct fst_info, i);

		if (f->start == bg->start && f->len == bg->len)
			info = f;
	}
	if (!info) {
		check_report(c, PR_FREE_SPACE_INFO_MISSING, LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, bg->start),
			     bg->start, bg_end);
		return;
	}
	vec_init(&used, sizeof(struct range));
	vec_init(&want, sizeof(struct range));
	vec_init(&have, sizeof(struct range));
	/* Their only failure is -ENOMEM; a group left unchecked would pass. */
	if (bg_used_ranges(c, bg, sup, nsup, &used))
		die_oom();
	check_qsort(used.data, used.nr, sizeof(struct range), cmp_range);
	if (bg_free_gaps(bg, &used, &want) || bg_tree_free(c, bg, &have, &budget))
		die_oom();
	bg_compare_free(c, bg, &want, &have, &budget);
	if (info->extent_count != have.nr)
		check_report(c, PR_FREE_SPACE_COUNT, LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, bg->start),
			     bg->start, bg_end, info->extent_count, (unsigned long long)have.nr);
	vec_free(&used);
	vec_free(&want);
	vec_free(&have);
}

void check_free_space(struct check_ctx *c)
{
	const struct bg_rec *bgs = c->bgs.data;
	struct range sup[64];
	size_t nsup;
	u64 first_bg = c->bgs.nr ? bgs[0].start : (u64)-1;

	if (!c->have_fst || !c->fst_ok || !c->extent_tree_ok)
		return;
	if (!(c->fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE))
		return;
	/* The tree records superblock copies as free (the kernel adds whole
	 * block groups and only the in-memory cache excludes them). */
	nsup = 0;
	(void)super_ranges;
	for (size_t i = 0; i < c->bgs.nr; i++)
		check_bg_free_space(c, &bgs[i], sup, nsup);

	/* Items outside every block group. */
	for (size_t i = 0; i < c->fst_infos.nr; i++) {
		const struct fst_info *f = &VEC_AT(&c->fst_infos, struct fst_info, i);
		bool inside = false;

		for (size_t k = 0; k < c->bgs.nr && !inside; k++)
			inside = f->start == bgs[k].start && f->len == bgs[k].len;
		if (inside)
			continue;
		check_report(c, f->start + f->len <= first_bg ? PR_FREE_SPACE_LEFTOVER :
			     PR_FREE_SPACE_ORPHAN, LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, f->leaf),
			     f->start, BTRFS_FREE_SPACE_INFO_KEY, f->len);
	}
	for (size_t i = 0; i < c->fst_ranges.nr; i++) {
		const struct fst_range *r = &VEC_AT(&c->fst_ranges, struct fst_range, i);
		bool inside = false;

		if (i && r->bitmap && VEC_AT(&c->fst_ranges, struct fst_range, i - 1).item_start ==
		    r->item_start)
			continue;
		for (size_t k = 0; k < c->bgs.nr && !inside; k++)
			inside = r->start >= bgs[k].start && r->start < bgs[k].start + bgs[k].len;
		if (inside)
			continue;
		if (r->start + r->len <= first_bg)
			continue;	/* the leftover's info item was reported */
		check_report(c, PR_FREE_SPACE_ORPHAN, LOC_BLOCK(BTRFS_FREE_SPACE_TREE_OBJECTID, NOLOC),
			     r->item_start, r->bitmap ? BTRFS_FREE_SPACE_BITMAP_KEY :
			     BTRFS_FREE_SPACE_EXTENT_KEY, r->len);
	}
}
