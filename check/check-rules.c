// SPDX-License-Identifier: GPL-2.0
/*
 * The rules the kernel applies to every block it reads (kernel-shared/
 * tree-checker.c), the block header rules btrfs check adds (owner, flags,
 * backref revision), the superblock's system chunk array, and the device
 * tree against the chunk tree: every chunk stripe has its dev extent of the
 * right length inside its device, no dev extent is left over or overlaps
 * another, device items add up (bytes_used, the device count, the
 * filesystem size), as btrfs check verifies them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/messages.h"
#include "check/check.h"
#include "cmds/print-tree.h"
#include "kernel-shared/tree-checker.h"
#include "kernel-shared/volumes.h"

struct rules_arg {
	struct check_ctx *c;
	u64 tree;
};

static void on_violation(void *arg, const struct tree_block *b, int slot, const char *why)
{
	struct rules_arg *a = arg;
	char where[128] = "", tbuf[16];

	if (slot >= 0 && !tb_level(b)) {
		struct btrfs_key k;

		tb_item_key(b, slot, &k);
		snprintf(where, sizeof(where), " key (%llu %s %llu)", k.objectid,
			 pt_key_type_str(k.objectid, k.type, tbuf, sizeof(tbuf)), k.offset);
	}
	check_report(a->c, PR_TREE_CHECKER, LOC_BLOCK(a->tree, b->bytenr),
		     tb_level(b) ? "node" : "leaf", slot, where, why);
}

void check_block_rules(struct check_ctx *c, u64 tree, const struct tree_block *b)
{
	struct rules_arg a = { c, tree };
	struct tree_check_report r = { on_violation, &a };

	char why[160];
	enum tree_header_problem hp;

	tree_check_block(c->fs, b, &r);
	hp = tree_check_header(c->fs, b, tree, why, sizeof(why));
	if (hp != TREE_HEADER_OK)
		check_report(c, hp == TREE_HEADER_OWNER ? PR_TREE_BLOCK_OWNER : PR_TREE_BLOCK_HEADER,
			     LOC_BLOCK(tree, b->bytenr), why);
}

/* ---- the system chunk array -------------------------------------------------------- */

static void check_super_flags(struct check_ctx *c)
{
	u64 flags = le64_to_cpu(c->fs->super.flags);
	const char *why = tree_check_super_flags(flags, false);

	struct root_ref r;

	if (why)
		check_report(c, PR_SUPER_FLAGS, LOC_NONE, flags, why);
	if (!(c->fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE) &&
	    !find_root(c->fs, BTRFS_FREE_SPACE_TREE_OBJECTID, &r))
		check_report(c, PR_SUPER_FEATURES, LOC_NONE, (unsigned long long)c->fs->compat_ro,
			     "the free space tree exists but the FREE_SPACE_TREE bit is clear");
	if ((c->fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) &&
	    find_root(c->fs, BTRFS_BLOCK_GROUP_TREE_OBJECTID, &r))
		check_report(c, PR_SUPER_FEATURES, LOC_NONE, (unsigned long long)c->fs->compat_ro,
			     "the BLOCK_GROUP_TREE bit is set but there is no block group tree");
}

/*
 * Whether the stripes of a sys chunk array entry (avail bytes left) are on
 * devices of this filesystem: a device given (its devid and uuid), or a
 * missing one the chunks name (devid only: its superblock is not there).
 */
static bool sys_stripes_on_device(const struct fs_info *fs, const struct btrfs_chunk *ch,
				  u32 avail)
{
	u16 n = le16_to_cpu(ch->num_stripes);

	for (u16 i = 0; i < n; i++) {
		const struct btrfs_stripe *st = &ch->stripe + i;
		int d;

		if (sizeof(struct btrfs_disk_key) + offsetof(struct btrfs_chunk, stripe) +
		    (i + 1) * sizeof(*st) > avail)
			return true;	/* truncated: tree_check_chunk's to report */
		d = fs_dev_index(fs, le64_to_cpu(st->devid));
		if (d < 0 || (fs->devs[d].fd >= 0 &&
			      memcmp(st->dev_uuid, fs->devs[d].uuid, BTRFS_UUID_SIZE)))
			return false;
	}
	return true;
}

static void check_sys_chunk_array(struct check_ctx *c)
{
	if (c->fs->sys_chunk_mismatch)
		check_report(c, PR_SYS_CHUNK_BAD, LOC_NONE, c->fs->sys_chunk_mismatch,
			     "it maps the chunk differently than the chunk tree's item does");
	const struct btrfs_super_block *sb = &c->fs->super;
	u32 size = le32_to_cpu(sb->sys_chunk_array_size), off = 0;
	char why[200];

	while (off + sizeof(struct btrfs_disk_key) + offsetof(struct btrfs_chunk, stripe) <= size) {
		struct btrfs_key k;
		const struct btrfs_chunk *ch;
		u16 n;

		btrfs_disk_key_to_cpu(&k, (const void *)(sb->sys_chunk_array + off));
		ch = (const void *)(sb->sys_chunk_array + off + sizeof(struct btrfs_disk_key));
		n = le16_to_cpu(ch->num_stripes);
		why[0] = 0;
		if (k.type != BTRFS_CHUNK_ITEM_KEY)
			snprintf(why, sizeof(why), "key type %u is not CHUNK_ITEM", k.type);
		else if (!sys_stripes_on_device(c->fs, ch, size - off))
			snprintf(why, sizeof(why), "a stripe names a device (devid and uuid) that is not this filesystem's");
		else if (tree_check_chunk(c->fs, ch, 0, k.offset, why, sizeof(why)) == 0 &&
			 !(le64_to_cpu(ch->type) & BTRFS_BLOCK_GROUP_SYSTEM))
			snprintf(why, sizeof(why), "a chunk of type 0x%llx in the system chunk array",
				 le64_to_cpu(ch->type));
		if (why[0]) {
			check_report(c, PR_SYS_CHUNK_BAD, LOC_NONE, k.offset, why);
			return;
		}
		off += sizeof(struct btrfs_disk_key) + offsetof(struct btrfs_chunk, stripe) +
		       n * sizeof(struct btrfs_stripe);
	}
}

/* ---- devices ------------------------------------------------------------------------- */

struct dev_rec {
	u64 devid, total_bytes, bytes_used, extents_sum;
	u8 uuid[BTRFS_UUID_SIZE];
};

/* A dev extent as a chunk stripe expects it, or as the device tree holds it. */
struct dext_rec {
	u64 devid, physical, length, chunk;
	u64 chunk_oid;			/* the chunk item's key objectid; the dev extent's chunk_objectid */
	u8 dev_uuid[BTRFS_UUID_SIZE];	/* chunk stripes only */
	bool matched;
};

struct dev_state {
	struct vec devs;	/* struct dev_rec */
	struct vec want;	/* struct dext_rec: one per chunk stripe */
	struct vec have;	/* struct dext_rec: dev extents of the device tree */
};

static u64 stripe_length(u64 type, u64 length, u16 num, u16 sub)
{
	switch (type & BTRFS_BLOCK_GROUP_PROFILE_MASK) {
	case BTRFS_BLOCK_GROUP_RAID0:
		return length / num;
	case BTRFS_BLOCK_GROUP_RAID10:
		return length / (num / sub);
	case BTRFS_BLOCK_GROUP_RAID5:
		return length / (num - 1);
	case BTRFS_BLOCK_GROUP_RAID6:
		return length / (num - 2);
	default:
		return length;
	}
}

static void chunk_tree_item(struct check_ctx *c, struct dev_state *s, const struct btrfs_key *k,
			    const u8 *p, u32 size)
{
	char why[200];

	if (k->type == BTRFS_DEV_ITEM_KEY && size == sizeof(struct btrfs_dev_item)) {
		const struct btrfs_dev_item *d = (const void *)p;
		struct dev_rec *r = vec_push_or_die(&s->devs);

		r->devid = le64_to_cpu(d->devid);
		r->total_bytes = le64_to_cpu(d->total_bytes);
		r->bytes_used = le64_to_cpu(d->bytes_used);
		memcpy(r->uuid, d->uuid, BTRFS_UUID_SIZE);
		/* The kernel looks the device up by this fsid: another one is a missing device. */
		if (memcmp(d->fsid, c->fs->metadata_uuid, BTRFS_FSID_SIZE))
			check_report(c, PR_DEVICE_ITEM_MISMATCH, LOC_NONE, r->devid,
				     "the device item's fsid is not the filesystem's");
	} else if (k->type == BTRFS_CHUNK_ITEM_KEY &&
		   !tree_check_chunk(c->fs, (const void *)p, size, k->offset, why, sizeof(why))) {
		const struct btrfs_chunk *ch = (const void *)p;
		u16 n = le16_to_cpu(ch->num_stripes);
		u64 len = stripe_length(le64_to_cpu(ch->type), le64_to_cpu(ch->length), n,
					le16_to_cpu(ch->sub_stripes));

		for (u16 i = 0; i < n; i++) {
			struct dext_rec *w = vec_push_or_die(&s->want);

			w->devid = le64_to_cpu((&ch->stripe)[i].devid);
			w->physical = le64_to_cpu((&ch->stripe)[i].offset);
			memcpy(w->dev_uuid, (&ch->stripe)[i].dev_uuid, BTRFS_UUID_SIZE);
			w->length = len;
			w->chunk = k->offset;
			w->chunk_oid = k->objectid;
		}
	}
}

/* Collect what the chunk tree and the device tree say; 0, or <0 when a tree cannot be read. */
static int collect_devices(struct check_ctx *c, struct dev_state *s)
{
	struct btrfs_key min = { 0, 0, 0 }, max = { (u64)-1, (u8)-1, (u64)-1 };
	struct root_ref dev_root;
	struct key_iter it;
	int ret;

	for (ret = key_iter_first(&it, c->fs, &c->fs->chunk_root, &min, &max); ret == 0;
	     ret = key_iter_next(&it))
		chunk_tree_item(c, s, &it.key, it.ptr, it.size);
	key_iter_release(&it);
	if (ret == -ENOMEM)
		die_oom();	/* not a problem of the image */
	if (ret < 0 || find_root(c->fs, BTRFS_DEV_TREE_OBJECTID, &dev_root))
		return ret < 0 ? ret : -ENOENT;
	for (ret = key_iter_first(&it, c->fs, &dev_root, &min, &max); ret == 0;
	     ret = key_iter_next(&it)) {
		const struct btrfs_dev_extent *de = (const void *)it.ptr;
		struct dext_rec *h;

		if (it.key.type != BTRFS_DEV_EXTENT_KEY || it.size != sizeof(*de))
			continue;
		h = vec_push_or_die(&s->have);
		h->devid = it.key.objectid;
		h->physical = it.key.offset;
		h->length = le64_to_cpu(de->length);
		h->chunk = le64_to_cpu(de->chunk_offset);
		h->chunk_oid = le64_to_cpu(de->chunk_objectid);
	}
	key_iter_release(&it);
	if (ret == -ENOMEM)
		die_oom();
	return ret < 0 ? ret : 0;
}

static int cmp_dext(const void *x, const void *y)
{
	const struct dext_rec *a = x, *b = y;

	return a->devid != b->devid ? cmp_u64(a->devid, b->devid) : cmp_u64(a->physical, b->physical);
}

static struct dev_rec *find_dev(struct dev_state *s, u64 devid)
{
	for (size_t i = 0; i < s->devs.nr; i++)
		if (VEC_AT(&s->devs, struct dev_rec, i).devid == devid)
			return &VEC_AT(&s->devs, struct dev_rec, i);
	return NULL;
}

/* Whether the superblock's sys chunk array has a chunk at logical. */
static bool in_sys_chunk_array(const struct btrfs_super_block *sb, u64 logical)
{
	u32 size = le32_to_cpu(sb->sys_chunk_array_size), off = 0;

	if (size > BTRFS_SYSTEM_CHUNK_ARRAY_SIZE)
		return false;
	while (off + sizeof(struct btrfs_disk_key) + offsetof(struct btrfs_chunk, stripe) <= size) {
		struct btrfs_key k;
		const struct btrfs_chunk *ch;

		btrfs_disk_key_to_cpu(&k, (const void *)(sb->sys_chunk_array + off));
		if (k.offset == logical)
			return true;
		ch = (const void *)(sb->sys_chunk_array + off + sizeof(struct btrfs_disk_key));
		off += sizeof(struct btrfs_disk_key) + offsetof(struct btrfs_chunk, stripe) +
		       le16_to_cpu(ch->num_stripes) * sizeof(struct btrfs_stripe);
	}
	return false;
}

/* Every chunk stripe against the dev extent at its place. */
static void match_stripes(struct check_ctx *c, struct dev_state *s)
{
	struct dext_rec *have = s->have.data;

	for (size_t i = 0; i < s->want.nr; i++) {
		struct dext_rec *w = &VEC_AT(&s->want, struct dext_rec, i);
		/* bsearch() on an empty list's NULL is UB (no dev extents read). */
		struct dext_rec *h = s->have.nr ? bsearch(w, have, s->have.nr, sizeof(*have),
							  cmp_dext) : NULL;
		const struct dev_rec *d = find_dev(s, w->devid);
		char what[160];

		/*
		 * The kernel finds a stripe's device by devid and uuid; a chunk the
		 * sys chunk array maps already is not read from the chunk tree.
		 */
		if (!d || (memcmp(d->uuid, w->dev_uuid, BTRFS_UUID_SIZE) &&
			   !in_sys_chunk_array(&c->fs->super, w->chunk)))
			check_report(c, PR_DEVICE_MISSING, LOC_NONE, w->devid, w->chunk);
		if (!h) {
			check_report(c, PR_DEV_EXTENT_MISSING, LOC_NONE, w->chunk, w->devid, w->physical,
				     w->length);
			continue;
		}
		h->matched = true;
		/*
		 * Every chunk item is keyed (FIRST_CHUNK_TREE, CHUNK_ITEM, logical)
		 * and its dev extents name that objectid (btrfs check lowmem: "did
		 * not find the related dev extent" otherwise).
		 */
		if (h->length == w->length && h->chunk == w->chunk &&
		    w->chunk_oid == BTRFS_FIRST_CHUNK_TREE_OBJECTID &&
		    h->chunk_oid == BTRFS_FIRST_CHUNK_TREE_OBJECTID)
			continue;
		snprintf(what, sizeof(what), "chunk %llu (objectid %llu), %llu bytes; the chunk stripe says chunk %llu (objectid %llu), %llu bytes",
			 h->chunk, h->chunk_oid, h->length, w->chunk, w->chunk_oid, w->length);
		check_report(c, PR_DEV_EXTENT_MISMATCH, LOC_NONE, h->devid, h->physical, what);
	}
}

/* Dev extents: used by a stripe, inside the device, not overlapping; device sums. */
static void check_dev_extents(struct check_ctx *c, struct dev_state *s)
{
	for (size_t i = 0; i < s->have.nr; i++) {
		struct dext_rec *h = &VEC_AT(&s->have, struct dext_rec, i);
		struct dev_rec *d = find_dev(s, h->devid);

		if (!h->matched)
			check_report(c, PR_DEV_EXTENT_ORPHAN, LOC_NONE, h->devid, h->physical, h->length,
				     h->chunk);
		if (!d) {
			if (h->matched)
				continue;	/* reported with its stripe */
			check_report(c, PR_DEVICE_MISSING, LOC_NONE, h->devid, h->chunk);
			continue;
		}
		d->extents_sum += h->length;
		if (h->physical + h->length < h->physical || h->physical + h->length > d->total_bytes)
			check_report(c, PR_DEV_EXTENT_BEYOND, LOC_NONE, h->devid, h->physical, h->length,
				     d->total_bytes);
		if (i + 1 < s->have.nr) {
			const struct dext_rec *n = h + 1;

			if (n->devid == h->devid && h->physical + h->length > n->physical)
				check_report(c, PR_DEV_EXTENT_OVERLAP, LOC_NONE, h->devid, h->physical,
					     h->physical + h->length, n->physical);
		}
	}
}

static void check_device_items(struct check_ctx *c, struct dev_state *s)
{
	const struct btrfs_super_block *sb = &c->fs->super;
	u64 sum_total = 0, super_devid = le64_to_cpu(sb->dev_item.devid);
	struct dev_rec *self = find_dev(s, super_devid);
	char what[160];

	for (size_t i = 0; i < s->devs.nr; i++) {
		const struct dev_rec *d = &VEC_AT(&s->devs, struct dev_rec, i);

		sum_total += d->total_bytes;
		if (d->bytes_used != d->extents_sum)
			check_report(c, PR_DEV_BYTES_USED, LOC_NONE, d->devid, d->bytes_used,
				     d->extents_sum);
		if (d->total_bytes % c->fs->sectorsize) {
			snprintf(what, sizeof(what), "total_bytes %llu is not aligned to %u",
				 d->total_bytes, c->fs->sectorsize);
			check_report(c, PR_DEVICE_SIZE_UNALIGNED, LOC_NONE, d->devid, what);
		}
	}
	if (le64_to_cpu(sb->num_devices) != s->devs.nr)
		check_report(c, PR_DEVICE_COUNT, LOC_NONE, le64_to_cpu(sb->num_devices),
			     (unsigned long long)s->devs.nr);
	if (le64_to_cpu(sb->total_bytes) < sum_total)
		check_report(c, PR_SUPER_TOTAL_BYTES, LOC_NONE, le64_to_cpu(sb->total_bytes), sum_total);
	if (!self) {
		check_report(c, PR_DEVICE_MISSING, LOC_NONE, super_devid, 0ULL);
	} else if (le64_to_cpu(sb->dev_item.total_bytes) != self->total_bytes ||
		   le64_to_cpu(sb->dev_item.bytes_used) != self->bytes_used) {
		snprintf(what, sizeof(what),
			 "the superblock's copy of its device item (total_bytes %llu, bytes_used %llu) differs from the chunk tree's (%llu, %llu)",
			 le64_to_cpu(sb->dev_item.total_bytes), le64_to_cpu(sb->dev_item.bytes_used),
			 self->total_bytes, self->bytes_used);
		check_report(c, PR_DEVICE_ITEM_MISMATCH, LOC_NONE, super_devid, what);
	}
}

void check_devices(struct check_ctx *c)
{
	struct dev_state s;

	vec_init(&s.devs, sizeof(struct dev_rec));
	vec_init(&s.want, sizeof(struct dext_rec));
	vec_init(&s.have, sizeof(struct dext_rec));
	check_super_flags(c);
	check_sys_chunk_array(c);
	/* Unreadable trees are reported by the walk; nothing to compare then. */
	if (!collect_devices(c, &s)) {
		if (s.have.nr)
			qsort(s.have.data, s.have.nr, sizeof(struct dext_rec), cmp_dext);
		match_stripes(c, &s);
		check_dev_extents(c, &s);
		check_device_items(c, &s);
	}
	vec_free(&s.devs);
	vec_free(&s.want);
	vec_free(&s.have);
}
