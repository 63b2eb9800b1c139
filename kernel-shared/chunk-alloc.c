// SPDX-License-Identifier: GPL-2.0
/*
 * Chunk allocation and removal in a transaction (Documentation/format.rst
 * 2.11): sizes by the kernel's rule, device extents first fit beyond the
 * reserved first MiB, every item through the transaction, the superblock's
 * copies at commit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/fault.h"
#include "common/containers.h"
#include "kernel-shared/chunk-alloc.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/free-space-tree.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/wipe-queue.h"

#define SZ_1M (1ULL << 20)
#define SZ_16M (16ULL << 20)
#define SZ_32M (32ULL << 20)
#define SZ_256M (256ULL << 20)
#define SZ_1G (1ULL << 30)
#define CHUNK_STRIPE_LEN (64ULL << 10)
#define DEV_RESERVED SZ_1M			/* the kernel never allocates below 1 MiB */
#define MAX_DATA_CHUNK (10ULL * SZ_1G)

struct chunk_change {
	struct chunk_map m;
	u64 stripe_size;
	bool removed;		/* false: allocated by the transaction */
	bool inserted;		/* its items are in the trees (chunk_flush()) */
};

struct chunk_state {
	struct chunk_change *v;
	size_t nr, cap;
	s64 dev_used_delta;	/* device bytes_used */
	u64 new_total;		/* grown device size, 0: unchanged */
	bool total_pending;	/* the device item does not say new_total yet */
};

struct dev_range_list {
	struct dev_range *v;
	size_t nr, cap;
};

/* The kernel's btrfs_raid_array, for the profiles written here (not RAID5/6). */
static const struct chunk_profile profiles[] = {
	/* flag                      dev_stripes ncopies sub  min max inc */
	{ 0,                           1, 1, 1,   1, 1, 1 },	/* SINGLE */
	{ BTRFS_BLOCK_GROUP_DUP,       2, 2, 1,   1, 1, 1 },	/* both stripes on one device */
	{ BTRFS_BLOCK_GROUP_RAID0,     1, 1, 1,   1, 0, 1 },
	{ BTRFS_BLOCK_GROUP_RAID1,     1, 2, 1,   2, 2, 2 },
	{ BTRFS_BLOCK_GROUP_RAID1C3,   1, 3, 1,   3, 3, 3 },
	{ BTRFS_BLOCK_GROUP_RAID1C4,   1, 4, 1,   4, 4, 4 },
	{ BTRFS_BLOCK_GROUP_RAID10,    1, 2, 2,   2, 0, 2 },
};

const struct chunk_profile *chunk_profile_of(u64 flags)
{
	u64 p = flags & BTRFS_BLOCK_GROUP_PROFILE_MASK;

	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (profiles[i].flag == p)
			return &profiles[i];
	return NULL;
}

void chunk_size_limits(u64 fs_bytes, u64 type, u64 *max_stripe, u64 *max_chunk)
{
	u64 size;

	if (type & BTRFS_BLOCK_GROUP_DATA)
		size = MAX_DATA_CHUNK;
	else if (type & BTRFS_BLOCK_GROUP_SYSTEM)
		size = SZ_32M;
	else
		size = fs_bytes > 50 * SZ_1G ? SZ_1G : SZ_256M;
	*max_stripe = size < SZ_1G ? size : SZ_1G;
	*max_chunk = fs_bytes / 10 < size ? fs_bytes / 10 : size;	/* 10% of the filesystem */
}

void chunk_state_free(struct chunk_state *cs)
{
	if (!cs)
		return;
	free(cs->v);
	free(cs);
}

static struct chunk_state *state(struct trans *t)
{
	if (!t->chunks)
		t->chunks = fault_calloc(1, sizeof(*t->chunks));
	if (!t->chunks)
		fs_err(t->fs, -ENOMEM, "out of memory");
	return t->chunks;
}

static int record_change(struct trans *t, const struct chunk_map *m, u64 stripe, bool removed)
{
	struct chunk_state *cs = state(t);
	struct chunk_change *n;

	if (!cs)
		return -ENOMEM;
	n = array_grow(cs->v, &cs->cap, cs->nr, sizeof(*n));
	if (!n)
		return fs_err(t->fs, -ENOMEM, "out of memory");
	cs->v = n;
	cs->v[cs->nr++] = (struct chunk_change){ *m, stripe, removed, removed };
	return 0;
}

static u64 devid_of(const struct fs_info *fs)
{
	return le64_to_cpu(fs->super.dev_item.devid);
}

/* Whether chunks of prof go through the allocator of several devices. */
static bool multi_path(const struct fs_info *fs, const struct chunk_profile *prof)
{
	return fs->nr_devs > 1 || prof->devs_min > 1 || prof->devs_max != 1;
}

/* Stripes holding distinct data in a chunk of num_stripes stripes of prof (at least 1). */
static u32 data_stripes(const struct chunk_profile *prof, u32 num_stripes)
{
	return num_stripes / prof->ncopies ? num_stripes / prof->ncopies : 1;
}

static u64 dev_total(const struct trans *t)
{
	if (t->chunks && t->chunks->new_total)
		return t->chunks->new_total;
	return le64_to_cpu(t->fs->super.dev_item.total_bytes);
}

static u64 fs_total(const struct trans *t)
{
	if (t->chunks && t->chunks->new_total)
		return t->chunks->new_total;
	return le64_to_cpu(t->fs->super.total_bytes);
}

/* ---- device space ------------------------------------------------------ */

static int add_range(struct fs_info *fs, struct dev_range_list *l, u64 off, u64 len, u32 dev)
{
	struct dev_range *n = array_grow(l->v, &l->cap, l->nr, sizeof(*n));

	if (!n)
		return fs_err(fs, -ENOMEM, "out of memory");
	l->v = n;
	l->v[l->nr++] = (struct dev_range){ off, len, dev };
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct dev_range *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * Device ranges in use: the device extents of the tree as this transaction
 * has it, plus every chunk the transaction added or removed (the committed
 * generation still uses a removed one), sorted.
 */
static int dev_used_ranges(struct trans *t, u64 devid, struct dev_range_list *l)
{
	struct fs_info *fs = t->fs;
	struct trans_root *dr = trans_get_root(t, BTRFS_DEV_TREE_OBJECTID);
	struct key_iter it;
	int ret;

	if (!dr)
		return trans_root_err(t);
	for (ret = key_iter_type(&it, fs, &dr->ref, devid, BTRFS_DEV_EXTENT_KEY, 0);
	     ret == 0; ret = key_iter_next(&it)) {
		const struct btrfs_dev_extent *de = (const void *)it.ptr;

		if (it.size < sizeof(*de)) {
			ret = fs_err(fs, -EUCLEAN, "device extent %llu: item too small",
				     it.key.offset);
			break;
		}
		ret = add_range(fs, l, it.key.offset, le64_to_cpu(de->length), 0);
		if (ret)
			break;
	}
	key_iter_release(&it);
	if (ret < 0)
		return ret;
	for (size_t i = 0; t->chunks && i < t->chunks->nr; i++) {
		const struct chunk_change *c = &t->chunks->v[i];

		for (u16 s = 0; s < c->m.num_stripes; s++) {
			if (c->m.devid[s] != devid)
				continue;
			ret = add_range(fs, l, c->m.physical[s], c->stripe_size, 0);
			if (ret)
				return ret;
		}
	}
	/* A device can hold no chunk at all (a job removed its last one): no array. */
	if (l->nr > 1)
		qsort(l->v, l->nr, sizeof(*l->v), cmp_range);
	return 0;
}

struct holes {
	u64 want;
	u64 total, largest, largest_at;
	u64 fit_at, fit_len;	/* the first hole of at least want bytes (fit_len 0: none) */
	u64 end;		/* the end of the last used range */
	int (*fn)(u32 dev, u64 start, u64 len, void *arg);	/* told of every hole, if set */
	u32 dev;
	void *arg;
	int err;
};

static void hole(struct holes *h, u64 start, u64 len)
{
	if (h->fn && !h->err)
		h->err = h->fn(h->dev, start, len, h->arg);
	h->total += len;
	if (len > h->largest) {
		h->largest = len;
		h->largest_at = start;
	}
	if (!h->fit_len && len >= h->want) {
		h->fit_at = start;
		h->fit_len = len;
	}
}

/*
 * The size chunk allocation may use of device dev (index in fs->devs): its
 * device item's total_bytes as of this transaction, within the file or
 * device itself.
 */
static int dev_limit(struct trans *t, u32 dev, u64 *limit)
{
	struct fs_info *fs = t->fs;
	struct trans_root *cr;
	struct btrfs_dev_item di;
	u64 total;
	int ret;

	if (dev == 0) {
		total = dev_total(t);
		*limit = total < fs->image_size ? total : fs->image_size;
		return 0;
	}
	cr = trans_get_root(t, BTRFS_CHUNK_TREE_OBJECTID);
	if (!cr)
		return trans_root_err(t);
	ret = dev_item_in(fs, &cr->ref, fs->devs[dev].devid, &di);
	if (ret)
		return ret;
	total = le64_to_cpu(di.total_bytes);
	*limit = total < fs->devs[dev].size ? total : fs->devs[dev].size;
	return 0;
}

/*
 * Walk the free space of device dev (index in fs->devs) beyond the reserved
 * first MiB; a missing device has none.
 */
static int dev_find_hole(struct trans *t, u32 dev, struct holes *h)
{
	struct dev_range_list l = { 0 };
	u64 limit = 0;
	u64 pos = DEV_RESERVED;
	int ret;

	if (t->fs->devs[dev].fd < 0)
		return 0;
	ret = dev_limit(t, dev, &limit);

	if (!ret)
		ret = dev_used_ranges(t, t->fs->devs[dev].devid, &l);

	h->end = DEV_RESERVED;
	for (size_t i = 0; !ret && i < l.nr; i++) {
		u64 s = l.v[i].offset, e = s + l.v[i].len;

		if (s > pos && pos < limit)
			hole(h, pos, (s < limit ? s : limit) - pos);
		if (e > pos)
			pos = e;
		if (e > h->end)
			h->end = e;
	}
	if (!ret && limit > pos)
		hole(h, pos, limit - pos);
	free(l.v);
	return ret ? ret : h->err;
}

int chunk_for_each_unallocated(struct trans *t, int (*fn)(u32 dev, u64 start, u64 len, void *arg),
			       void *arg)
{
	for (u32 d = 0; d < t->fs->nr_devs; d++) {
		struct holes h = { .want = (u64)-1, .fn = fn, .dev = d, .arg = arg };
		int ret = dev_find_hole(t, d, &h);

		if (ret)
			return ret;
	}
	return 0;
}

int chunk_dev_unallocated(struct trans *t, u64 *total, u64 *largest)
{
	u64 sum = 0, most = 0;

	for (u32 d = 0; d < t->fs->nr_devs; d++) {
		struct holes h = { .want = (u64)-1 };
		int ret = dev_find_hole(t, d, &h);

		if (ret)
			return ret;
		sum += h.total;
		most = h.largest > most ? h.largest : most;
	}
	if (total)
		*total = sum;
	if (largest)
		*largest = most;
	return 0;
}

/* ---- profile of a type ------------------------------------------------- */

/* The profile the filesystem's chunks of `type` have (SINGLE if it has none). */
static int type_profile(struct fs_info *fs, u64 type, const struct chunk_profile **out)
{
	u64 flags = 0;
	bool found = false;

	for (size_t i = 0; i < fs->nr_chunks; i++) {
		if ((fs->chunks[i].type & BTRFS_BLOCK_GROUP_TYPE_MASK) != type)
			continue;
		flags = fs->chunks[i].type;
		found = true;
		break;
	}
	*out = chunk_profile_of(flags);
	if (!*out || (!found && type != BTRFS_BLOCK_GROUP_DATA && type != BTRFS_BLOCK_GROUP_METADATA &&
		      type != BTRFS_BLOCK_GROUP_SYSTEM))
		return fs_err(fs, -EOPNOTSUPP, "cannot allocate a chunk of type 0x%llx (%s)",
			      (unsigned long long)type, profile_name(flags));
	return 0;
}

/* ---- items ---------------------------------------------------------------- */

/*
 * Add to device devid's item's bytes_used, and set its total_bytes (0:
 * unchanged); the superblock's own device is also counted for its copy.
 */
static int dev_item_update(struct trans *t, u64 devid, s64 used_delta, u64 new_total)
{
	struct fs_info *fs = t->fs;
	struct trans_root *cr = trans_get_root(t, BTRFS_CHUNK_TREE_OBJECTID);
	struct btrfs_key key = { BTRFS_DEV_ITEMS_OBJECTID, BTRFS_DEV_ITEM_KEY, devid };
	struct btrfs_dev_item *di;
	struct btrfs_path p;
	int ret;

	if (!cr)
		return trans_root_err(t);
	ret = search_slot_mod(t, cr, &key, &p, 0);
	if (ret || path_size(&p) < sizeof(*di)) {
		path_release(fs, &p);
		return ret < 0 ? ret : fs_err(fs, -EUCLEAN, "device item %llu missing or too small",
					      (unsigned long long)devid);
	}
	di = (void *)path_ptr_mut(&p);
	di->bytes_used = cpu_to_le64(le64_to_cpu(di->bytes_used) + used_delta);
	if (new_total)
		di->total_bytes = cpu_to_le64(new_total);
	path_release(fs, &p);
	if (devid == devid_of(fs))
		t->chunks->dev_used_delta += used_delta;
	return 0;
}

static u32 chunk_item_bytes(u16 num_stripes)
{
	return offsetof(struct btrfs_chunk, stripe) + num_stripes * sizeof(struct btrfs_stripe);
}

/* The uuid of device devid (every device of a writable filesystem is given). */
static const u8 *dev_uuid(const struct fs_info *fs, u64 devid)
{
	for (u32 d = 0; d < fs->nr_devs; d++)
		if (fs->devs[d].devid == devid)
			return fs->devs[d].uuid;
	return fs->super.dev_item.uuid;
}

/* A chunk item of up to CHUNK_MAX_STRIPES stripes. */
#define CHUNK_ITEM_MAX (sizeof(struct btrfs_chunk) + (CHUNK_MAX_STRIPES - 1) * sizeof(struct btrfs_stripe))

static void build_chunk_item(struct fs_info *fs, const struct chunk_map *m,
			     const struct chunk_profile *prof, struct btrfs_chunk *c)
{
	c->length = cpu_to_le64(m->length);
	c->owner = cpu_to_le64(BTRFS_EXTENT_TREE_OBJECTID);
	c->stripe_len = cpu_to_le64(CHUNK_STRIPE_LEN);
	c->type = cpu_to_le64(m->type);
	c->io_align = cpu_to_le32(CHUNK_STRIPE_LEN);
	c->io_width = cpu_to_le32(CHUNK_STRIPE_LEN);
	c->sector_size = cpu_to_le32(fs->sectorsize);
	c->num_stripes = cpu_to_le16(m->num_stripes);
	c->sub_stripes = cpu_to_le16(prof->sub_stripes);
	for (u16 s = 0; s < m->num_stripes && s < CHUNK_MAX_STRIPES; s++) {
		struct btrfs_stripe *st = &c->stripe + s;

		st->devid = cpu_to_le64(m->devid[s]);
		st->offset = cpu_to_le64(m->physical[s]);
		memcpy(st->dev_uuid, dev_uuid(fs, m->devid[s]), BTRFS_UUID_SIZE);
	}
}

static int insert_chunk_items(struct trans *t, const struct chunk_map *m, u64 stripe,
			      const struct chunk_profile *prof)
{
	struct fs_info *fs = t->fs;
	u8 buf[CHUNK_ITEM_MAX] = { 0 };
	struct btrfs_key key = { BTRFS_FIRST_CHUNK_TREE_OBJECTID, BTRFS_CHUNK_ITEM_KEY, m->logical };
	struct trans_root *cr = trans_get_root(t, BTRFS_CHUNK_TREE_OBJECTID);
	struct trans_root *dr = cr ? trans_get_root(t, BTRFS_DEV_TREE_OBJECTID) : NULL;
	struct trans_root *bgr = dr ? space_bg_root(t) : NULL;
	struct btrfs_block_group_item bi = { 0 };
	int ret;

	if (!bgr)
		return trans_root_err(t);
	build_chunk_item(fs, m, prof, (struct btrfs_chunk *)buf);
	ret = insert_item(t, cr, &key, buf, chunk_item_bytes(m->num_stripes));
	for (u16 s = 0; !ret && s < m->num_stripes; s++) {
		struct btrfs_dev_extent de = { 0 };
		struct btrfs_key dk = { m->devid[s], BTRFS_DEV_EXTENT_KEY, m->physical[s] };

		de.chunk_tree = cpu_to_le64(BTRFS_CHUNK_TREE_OBJECTID);
		de.chunk_objectid = cpu_to_le64(BTRFS_FIRST_CHUNK_TREE_OBJECTID);
		de.chunk_offset = cpu_to_le64(m->logical);
		de.length = cpu_to_le64(stripe);
		memcpy(de.chunk_tree_uuid, fs->chunk_tree_uuid, BTRFS_UUID_SIZE);
		ret = insert_item(t, dr, &dk, &de, sizeof(de));
		if (!ret)
			ret = dev_item_update(t, m->devid[s], (s64)stripe, 0);
	}
	if (!ret) {
		struct btrfs_key bk = { m->logical, BTRFS_BLOCK_GROUP_ITEM_KEY, m->length };

		bi.chunk_objectid = cpu_to_le64(BTRFS_FIRST_CHUNK_TREE_OBJECTID);
		bi.flags = cpu_to_le64(m->type);
		ret = insert_item(t, bgr, &bk, &bi, sizeof(bi));
	}
	return ret;
}

/* ---- allocation ---------------------------------------------------------- */

static u64 round_up_to(u64 x, u64 a)
{
	return (x + a - 1) / a * a;
}

/* The end of the highest chunk: new chunks go above every logical address in use. */
static u64 next_logical(const struct fs_info *fs)
{
	u64 end = 0;

	for (size_t i = 0; i < fs->nr_chunks; i++)
		if (fs->chunks[i].logical + fs->chunks[i].length > end)
			end = fs->chunks[i].logical + fs->chunks[i].length;
	return end;
}

/* Stripe size by the kernel's rule for a hole of hole_len bytes (0: too small). */
static u64 stripe_for(const struct trans *t, u64 type, const struct chunk_profile *prof,
		      u64 hole_len)
{
	u64 max_stripe, max_chunk, stripe;
	u32 ds = data_stripes(prof, prof->dev_stripes);

	chunk_size_limits(fs_total(t), type, &max_stripe, &max_chunk);
	stripe = hole_len / prof->dev_stripes;
	if (stripe > max_stripe)
		stripe = max_stripe;
	if (stripe * ds > max_chunk && round_up_to(max_chunk / ds, SZ_16M) < stripe)
		stripe = round_up_to(max_chunk / ds, SZ_16M);
	return stripe / CHUNK_STRIPE_LEN * CHUNK_STRIPE_LEN;
}

/* Find device room for a chunk holding need bytes: growing the image if allowed. */
static int place_chunk(struct trans *t, u64 type, const struct chunk_profile *prof, u64 need,
		       u64 *at, u64 *stripe)
{
	struct fs_info *fs = t->fs;
	u64 need_stripe = round_up_to(need ? need : 1, CHUNK_STRIPE_LEN);
	u64 max_stripe, max_chunk;
	struct holes h = { 0 };
	int ret;

	chunk_size_limits(fs_total(t), type, &max_stripe, &max_chunk);
	h.want = (max_stripe > need_stripe ? max_stripe : need_stripe) * prof->dev_stripes;
	ret = dev_find_hole(t, 0, &h);
	if (ret)
		return ret;
	if (!h.fit_len && h.largest / prof->dev_stripes < need_stripe) {
		u64 want = stripe_for(t, type, prof, (u64)-1);

		if (!fs->may_grow)
			return fs_err(fs, -ENOSPC,
				      "the device has %llu bytes unallocated (largest hole %llu), a %s chunk for %llu bytes needs %llu",
				      h.total, h.largest, profile_name(prof->flag),
				      need, need_stripe * prof->dev_stripes);
		want = want > need_stripe ? want : need_stripe;
		ret = chunk_grow_device(t, want * prof->dev_stripes);
		if (ret)
			return ret;
		memset(&h, 0, sizeof(h));
		h.want = want * prof->dev_stripes;
		ret = dev_find_hole(t, 0, &h);
		if (ret)
			return ret;
	}
	if (h.fit_len) {
		*at = h.fit_at;
		*stripe = stripe_for(t, type, prof, h.fit_len);
	} else {
		*at = h.largest_at;
		*stripe = stripe_for(t, type, prof, h.largest);
	}
	/* An extent is never split across chunks: the chunk holds the whole request. */
	if (*stripe < need_stripe)
		*stripe = need_stripe;
	if (*stripe * prof->dev_stripes > (h.fit_len ? h.fit_len : h.largest))
		return fs_err(fs, -ENOSPC, "the device has no room for a chunk of %llu bytes",
			      need_stripe * prof->dev_stripes);
	return 0;
}

/* One device as the allocator of several devices sees it. */
struct dev_pick {
	u32 dev;	/* index in fs->devs */
	u64 at;		/* the hole taken: the first of the wanted size, else the largest */
	u64 avail;	/* what the hole offers, at most the wanted size */
	u64 free;	/* all unallocated bytes of the device */
};

/* Most room first, then most free space, then device order (the kernel's sort). */
static int cmp_pick(const void *a, const void *b)
{
	const struct dev_pick *x = a, *y = b;

	if (x->avail != y->avail)
		return x->avail > y->avail ? -1 : 1;
	if (x->free != y->free)
		return x->free > y->free ? -1 : 1;
	return x->dev < y->dev ? -1 : x->dev > y->dev;
}

/* The system chunk array holds a chunk item of at most this many stripes (the kernel's limit). */
#define MAX_DEVS_SYS_CHUNK \
	((BTRFS_SYSTEM_CHUNK_ARRAY_SIZE / 2 - sizeof(struct btrfs_disk_key) - sizeof(struct btrfs_chunk)) / \
	 sizeof(struct btrfs_stripe) + 1)

/*
 * How many devices a chunk of prof takes out of nr with room: the profile's
 * maximum, a multiple of its increment, within the stripes a chunk item
 * holds; 0 when fewer than its minimum.
 */
static u32 pick_count(const struct chunk_profile *prof, u64 type, u32 nr)
{
	u32 max = prof->devs_max ? prof->devs_max : nr;
	u32 cap = CHUNK_MAX_STRIPES / prof->dev_stripes;

	if (type & BTRFS_BLOCK_GROUP_SYSTEM && cap > MAX_DEVS_SYS_CHUNK)
		cap = MAX_DEVS_SYS_CHUNK;
	if (max > nr)
		max = nr;
	if (max > cap)
		max = cap;
	max -= max % prof->devs_increment;
	return max < prof->devs_min ? 0 : max;
}

/*
 * Devices for a chunk of prof, as the kernel gathers them: on each device
 * with room the first hole of the wanted size (the largest stripe times the
 * stripes per device), or else its largest hole; sorted most room first.
 * *nr: the devices with at least one stripe element of room each.
 */
static int gather_devices(struct trans *t, const struct chunk_profile *prof, u64 want,
			  struct dev_pick *picks, u32 *nr)
{
	struct fs_info *fs = t->fs;

	*nr = 0;
	for (u32 d = 0; d < fs->nr_devs; d++) {
		struct holes h = { .want = want };
		int ret = dev_find_hole(t, d, &h);
		u64 avail = h.fit_len ? want : h.largest;

		if (ret)
			return ret;
		if (avail < CHUNK_STRIPE_LEN * prof->dev_stripes)
			continue;
		picks[(*nr)++] = (struct dev_pick){ d, h.fit_len ? h.fit_at : h.largest_at, avail,
						    h.total };
	}
	qsort(picks, *nr, sizeof(*picks), cmp_pick);
	return 0;
}

/*
 * The stripe size of a chunk over the first n picks, by the kernel's rule
 * (the smallest room among them, the chunk within the size limits, 64 KiB
 * elements), raised to hold need bytes when the picks have that room;
 * 0 when they do not.
 */
static u64 multi_stripe(const struct trans *t, u64 type, const struct chunk_profile *prof,
			const struct dev_pick *picks, u32 n, u64 need)
{
	u64 max_stripe, max_chunk, stripe, need_stripe;
	u32 ds = data_stripes(prof, n * prof->dev_stripes);

	chunk_size_limits(fs_total(t), type, &max_stripe, &max_chunk);
	stripe = picks[n - 1].avail / prof->dev_stripes;
	if (stripe * ds > max_chunk && round_up_to(max_chunk / ds, SZ_16M) < stripe)
		stripe = round_up_to(max_chunk / ds, SZ_16M);
	if (stripe > SZ_1G)
		stripe = SZ_1G;
	stripe = stripe / CHUNK_STRIPE_LEN * CHUNK_STRIPE_LEN;
	need_stripe = round_up_to((need + ds - 1) / ds, CHUNK_STRIPE_LEN);
	if (stripe < need_stripe)
		stripe = picks[n - 1].avail / prof->dev_stripes >= need_stripe ? need_stripe : 0;
	return stripe;
}

/* At most this many devices take part in chunk allocation. */
#define MAX_PICKS (CHUNK_MAX_STRIPES * 4)

/*
 * The kernel's choice for a chunk of prof holding need bytes: picks[0..*n)
 * the devices it takes (of *nr with room), *stripe its stripe size (0:
 * no chunk fits).
 */
static int choose_devices(struct trans *t, u64 type, const struct chunk_profile *prof, u64 need,
			  struct dev_pick picks[MAX_PICKS], u32 *nr, u32 *n, u64 *stripe)
{
	u64 max_stripe, max_chunk;
	int ret;

	*nr = *n = 0;
	*stripe = 0;
	if (t->fs->nr_devs > MAX_PICKS)
		return fs_err(t->fs, -EOPNOTSUPP, "chunk allocation over %u devices is not supported",
			      t->fs->nr_devs);
	chunk_size_limits(fs_total(t), type, &max_stripe, &max_chunk);
	ret = gather_devices(t, prof, max_stripe * prof->dev_stripes, picks, nr);
	if (ret)
		return ret;
	*n = pick_count(prof, type, *nr);
	*stripe = *n ? multi_stripe(t, type, prof, picks, *n, need) : 0;
	return 0;
}

/*
 * Place a chunk of prof on several devices (or a profile that needs them):
 * the kernel's choice of devices and stripe size; fills m's stripes and
 * length.  Never grows a device.
 */
static int place_multi(struct trans *t, u64 type, const struct chunk_profile *prof, u64 need,
		       struct chunk_map *m, u64 *stripe)
{
	struct fs_info *fs = t->fs;
	struct dev_pick picks[MAX_PICKS];
	u64 unalloc = 0;
	u32 nr, n;
	int ret = choose_devices(t, type, prof, need, picks, &nr, &n, stripe);

	if (ret)
		return ret;
	if (!*stripe) {
		chunk_dev_unallocated(t, &unalloc, NULL);
		return fs_err(fs, -ENOSPC,
			      "no room for a %s chunk for %llu bytes: %u of %u devices have room (the profile needs %u), %llu bytes are unallocated",
			      profile_name(prof->flag), (unsigned long long)need, nr, fs->nr_devs,
			      prof->devs_min, (unsigned long long)unalloc);
	}
	m->num_stripes = n * prof->dev_stripes;
	m->length = *stripe * data_stripes(prof, m->num_stripes);
	for (u32 i = 0; i < n; i++) {
		for (u16 j = 0; j < prof->dev_stripes; j++) {
			m->devid[i * prof->dev_stripes + j] = fs->devs[picks[i].dev].devid;
			m->physical[i * prof->dev_stripes + j] = picks[i].at + j * *stripe;
		}
	}
	return 0;
}

/* The single-device placement: SINGLE or DUP on devs[0], which may grow. */
static int place_single(struct trans *t, u64 type, const struct chunk_profile *prof, u64 need,
			struct chunk_map *m, u64 *stripe)
{
	u64 at = 0;
	int ret = place_chunk(t, type, prof, need, &at, stripe);

	if (ret)
		return ret;
	m->num_stripes = prof->dev_stripes;
	m->length = *stripe * data_stripes(prof, m->num_stripes);
	for (u16 s = 0; s < m->num_stripes; s++) {
		m->physical[s] = at + s * *stripe;
		m->devid[s] = devid_of(t->fs);	/* the stripe layer maps copies by devid */
	}
	return 0;
}

int chunk_alloc(struct trans *t, u64 type, u64 need)
{
	struct fs_info *fs = t->fs;
	struct chunk_state *cs = state(t);
	const struct chunk_profile *prof;
	struct chunk_map m = { 0 };
	u64 stripe = 0;
	int ret;

	if (!cs)
		return -ENOMEM;
	type = space_group_type(fs, type);
	ret = type_profile(fs, type, &prof);
	if (ret)
		return ret;
	/* Device space freed by a commit is taken again only once it is wiped. */
	if (fs->wipeq && (ret = wipe_queue_drain(fs->wipeq)))
		return ret;
	ret = multi_path(fs, prof) ? place_multi(t, type, prof, need, &m, &stripe)
				   : place_single(t, type, prof, need, &m, &stripe);
	if (ret)
		return ret;
	if ((type & BTRFS_BLOCK_GROUP_SYSTEM) &&
	    le32_to_cpu(fs->super.sys_chunk_array_size) + sizeof(struct btrfs_disk_key) +
	    chunk_item_bytes(m.num_stripes) > BTRFS_SYSTEM_CHUNK_ARRAY_SIZE)
		return fs_err(fs, -ENOSPC, "the superblock's system chunk array is full");
	m.logical = next_logical(fs);
	m.type = type | prof->flag;
	m.sub_stripes = prof->sub_stripes;	/* as the item says (chunk_flush()) */
	m.stripe_len = CHUNK_STRIPE_LEN;	/* the stripe layer divides by it */
	ret = chunk_map_insert(fs, &m);
	if (ret)
		return ret;
	ret = record_change(t, &m, stripe, false);
	if (ret) {
		chunk_map_remove(fs, m.logical);
		return ret;
	}
	/*
	 * Usable at once; the items follow at the commit (chunk_flush()): the
	 * caller may be in the middle of changing a tree, even the chunk or
	 * extent tree these items go to.
	 */
	return space_map_add_group(t, m.logical, m.length, m.type);
}

bool chunk_pending(const struct trans *t)
{
	if (!t->chunks)
		return false;
	if (t->chunks->total_pending)
		return true;
	for (size_t i = 0; i < t->chunks->nr; i++)
		if (!t->chunks->v[i].inserted)
			return true;
	return false;
}

int chunk_flush(struct trans *t)
{
	struct chunk_state *cs = t->chunks;
	int ret;

	/* Inserting may allocate further chunks: cs->v grows, index it afresh. */
	for (size_t i = 0; cs && i < cs->nr; i++) {
		struct chunk_change c = cs->v[i];
		const struct chunk_profile *prof = chunk_profile_of(c.m.type);

		if (c.inserted)
			continue;
		cs->v[i].inserted = true;
		ret = prof ? insert_chunk_items(t, &c.m, c.stripe_size, prof) : -EOPNOTSUPP;
		if (!ret)
			ret = space_group_flushed(t, c.m.logical);
		if (ret)
			return ret;
	}
	if (cs && cs->total_pending) {
		cs->total_pending = false;
		return dev_item_update(t, devid_of(t->fs), 0, cs->new_total);
	}
	return 0;
}

/* ---- removal -------------------------------------------------------------- */

static int delete_key(struct trans *t, struct trans_root *root, const struct btrfs_key *key)
{
	struct btrfs_path p;
	int ret = search_slot_mod(t, root, key, &p, -1);

	if (!ret)
		ret = del_items(t, root, &p, 1);
	path_release(t->fs, &p);
	return ret > 0 ? fs_err(t->fs, -EUCLEAN, "item (%llu %u %llu) to remove is missing",
				key->objectid, key->type, key->offset) : ret;
}

int chunk_remove(struct trans *t, u64 logical, u64 length)
{
	struct fs_info *fs = t->fs;
	const struct chunk_map *cm = find_chunk(fs, logical);
	struct chunk_map m;
	struct btrfs_key key = { BTRFS_FIRST_CHUNK_TREE_OBJECTID, BTRFS_CHUNK_ITEM_KEY, logical };
	struct trans_root *cr = trans_get_root(t, BTRFS_CHUNK_TREE_OBJECTID);
	struct trans_root *dr = cr ? trans_get_root(t, BTRFS_DEV_TREE_OBJECTID) : NULL;
	struct trans_root *bgr = dr ? space_bg_root(t) : NULL;
	const struct chunk_profile *prof;
	u64 stripe;
	int ret;

	if (!bgr)
		return trans_root_err(t);
	if (!cm || cm->logical != logical || cm->length != length || !state(t))
		return fs_err(fs, cm ? -EUCLEAN : -ENOENT, "block group %llu has no chunk of its size",
			      logical);
	m = *cm;
	prof = chunk_profile_of(m.type);
	if (!prof)
		return fs_err(fs, -EOPNOTSUPP, "chunk %llu: profile not supported", logical);
	stripe = m.length / data_stripes(prof, m.num_stripes);
	ret = record_change(t, &m, stripe, true);
	if (!ret)
		ret = delete_key(t, cr, &key);
	for (u16 s = 0; !ret && s < m.num_stripes; s++) {
		struct btrfs_key dk = { m.devid[s], BTRFS_DEV_EXTENT_KEY, m.physical[s] };

		ret = delete_key(t, dr, &dk);
		if (!ret)
			ret = dev_item_update(t, m.devid[s], -(s64)stripe, 0);
	}
	if (!ret) {
		struct btrfs_key bk = { logical, BTRFS_BLOCK_GROUP_ITEM_KEY, length };

		ret = delete_key(t, bgr, &bk);
	}
	if (!ret && (fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE))
		ret = fst_remove_group(t, logical, length);
	fs->drain_nochunk = 0;	/* device room changes: new chunks may fit again */
	return ret;
}

/* ---- growing ---------------------------------------------------------------- */

int chunk_grow_device(struct trans *t, u64 more)
{
	struct fs_info *fs = t->fs;
	struct chunk_state *cs = state(t);
	struct holes h = { .want = (u64)-1 };
	u64 old = dev_total(t), new_total;
	struct stat st;
	int ret;

	if (!cs)
		return -ENOMEM;
	if (fstat(fs->fd, &st) < 0)
		return fs_err(fs, -errno, "cannot stat the image: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fs_err(fs, -EOPNOTSUPP, "cannot grow %s: only an image file can grow, not a block device",
			      fs->path);
	if (fs->nr_devs > 1)
		return fs_err(fs, -EOPNOTSUPP, "a filesystem of %u devices cannot grow (--grow is for one image file)",
			      fs->nr_devs);
	ret = dev_find_hole(t, 0, &h);
	if (ret)
		return ret;
	new_total = round_up_to(h.end + more, SZ_1M);
	if (new_total <= old)
		new_total = round_up_to(old + more, SZ_1M);
	if ((u64)st.st_size < new_total && ftruncate(fs->fd, (off_t)new_total) < 0)
		return fs_err(fs, -errno, "cannot grow the image file to %llu bytes: %s", new_total,
			      strerror(errno));
	if (fs->image_size < new_total)
		fs->image_size = fs->devs[0].size = new_total;
	fs->drain_nochunk = 0;	/* device room changed: new chunks may fit again */
	cs->new_total = new_total;
	cs->total_pending = true;
	fs->grown_bytes += new_total - old;
	return 0;
}

/* ---- commit and abort -------------------------------------------------------- */

static int sys_array_append(struct fs_info *fs, const struct chunk_change *c)
{
	struct btrfs_super_block *sb = &fs->super;
	u32 size = le32_to_cpu(sb->sys_chunk_array_size);
	u32 item = chunk_item_bytes(c->m.num_stripes);
	struct btrfs_disk_key dk;
	const struct chunk_profile *prof = chunk_profile_of(c->m.type);

	if (!prof || size + sizeof(dk) + item > BTRFS_SYSTEM_CHUNK_ARRAY_SIZE)
		return fs_err(fs, -ENOSPC, "the superblock's system chunk array is full");
	dk.objectid = cpu_to_le64(BTRFS_FIRST_CHUNK_TREE_OBJECTID);
	dk.type = BTRFS_CHUNK_ITEM_KEY;
	dk.offset = cpu_to_le64(c->m.logical);
	memcpy(sb->sys_chunk_array + size, &dk, sizeof(dk));
	{
		u8 buf[CHUNK_ITEM_MAX] = { 0 };

		build_chunk_item(fs, &c->m, prof, (struct btrfs_chunk *)buf);
		memcpy(sb->sys_chunk_array + size + sizeof(dk), buf, item);
	}
	sb->sys_chunk_array_size = cpu_to_le32(size + sizeof(dk) + item);
	return 0;
}

int chunk_commit_super(struct trans *t)
{
	struct fs_info *fs = t->fs;
	struct btrfs_super_block *sb = &fs->super;
	struct chunk_state *cs = t->chunks;
	int ret;

	for (size_t i = 0; i < t->nr_roots; i++) {
		struct trans_root *r = &t->roots[i];

		if (r->ref.objectid != BTRFS_CHUNK_TREE_OBJECTID ||
		    r->ref.bytenr == le64_to_cpu(sb->chunk_root))
			continue;
		sb->chunk_root = cpu_to_le64(r->ref.bytenr);
		sb->chunk_root_level = r->ref.level;
		sb->chunk_root_generation = cpu_to_le64(t->transid);
		fs->chunk_root = r->ref;
		fs->chunk_root.generation = t->transid;
	}
	if (!cs)
		return 0;
	sb->dev_item.bytes_used = cpu_to_le64(le64_to_cpu(sb->dev_item.bytes_used) +
					      cs->dev_used_delta);
	if (cs->new_total) {
		sb->dev_item.total_bytes = cpu_to_le64(cs->new_total);
		sb->total_bytes = cpu_to_le64(cs->new_total);
	}
	for (size_t i = 0; i < cs->nr; i++) {
		if (cs->v[i].removed || !(cs->v[i].m.type & BTRFS_BLOCK_GROUP_SYSTEM))
			continue;
		ret = sys_array_append(fs, &cs->v[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int chunk_commit_prepare(struct trans *t)
{
	struct fs_info *fs = t->fs;
	const struct chunk_state *cs = t->chunks;
	size_t need = fs->nr_freed_dev;
	struct dev_range *n;

	for (size_t i = 0; cs && i < cs->nr; i++)
		need += cs->v[i].removed ? cs->v[i].m.num_stripes : 0;
	if (need <= fs->cap_freed_dev)
		return 0;
	n = array_reserve(fs->freed_dev, &fs->cap_freed_dev, need, sizeof(*n));
	if (!n)
		return fs_err(fs, -ENOMEM, "out of memory");
	fs->freed_dev = n;
	return 0;
}

void chunk_commit_done(struct trans *t)
{
	struct fs_info *fs = t->fs;
	struct chunk_state *cs = t->chunks;
	/* chunk_commit_prepare() made the room: add_range() allocates nothing here. */
	struct dev_range_list l = { fs->freed_dev, fs->nr_freed_dev, fs->cap_freed_dev };

	for (size_t i = 0; cs && i < cs->nr; i++) {
		const struct chunk_change *c = &cs->v[i];

		if (!c->removed)
			continue;
		chunk_map_remove(fs, c->m.logical);
		for (u16 s = 0; s < c->m.num_stripes; s++) {
			int dev = fs_dev_index(fs, c->m.devid[s]);

			if (dev >= 0 && add_range(fs, &l, c->m.physical[s], c->stripe_size, (u32)dev))
				break;
		}
	}
	fs->freed_dev = l.v;
	fs->nr_freed_dev = l.nr;
	fs->cap_freed_dev = l.cap;
}

void chunk_abort(struct trans *t)
{
	struct fs_info *fs = t->fs;
	struct chunk_state *cs = t->chunks;

	for (size_t i = 0; cs && i < cs->nr; i++)
		if (!cs->v[i].removed)
			chunk_map_remove(fs, cs->v[i].m.logical);
	fs->chunk_root.bytenr = le64_to_cpu(fs->super.chunk_root);
	fs->chunk_root.level = fs->super.chunk_root_level;
	fs->chunk_root.generation = le64_to_cpu(fs->super.chunk_root_generation);
}

/* Device bytes of the next chunk of prof over several devices (0: none fits). */
static int multi_device_bytes(struct trans *t, u64 type, const struct chunk_profile *prof,
			      u64 *bytes)
{
	struct dev_pick picks[MAX_PICKS];
	u64 stripe;
	u32 nr, n;
	int ret;

	*bytes = 0;
	if (t->fs->nr_devs > MAX_PICKS)
		return 0;
	ret = choose_devices(t, type, prof, 0, picks, &nr, &n, &stripe);
	*bytes = ret ? 0 : stripe * n * prof->dev_stripes;
	return ret;
}

int chunk_device_bytes(struct trans *t, u64 type, u64 *bytes)
{
	const struct chunk_profile *prof;
	int ret;

	type = space_group_type(t->fs, type);
	*bytes = 0;
	ret = type_profile(t->fs, type, &prof);
	if (ret)
		return ret;
	if (multi_path(t->fs, prof))
		return multi_device_bytes(t, type, prof, bytes);
	*bytes = stripe_for(t, type, prof, (u64)-1) * prof->dev_stripes;
	return 0;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x > y ? -1 : x < y;
}

/*
 * chunk_available() on several devices: reserve taken from the devices
 * with the most room, then chunks of prof cut in turn from the devices
 * with the most room left, each as large as the size rule allows.
 */
static int multi_available(struct trans *t, u64 type, const struct chunk_profile *prof,
			   u64 reserve, u64 *bytes)
{
	struct fs_info *fs = t->fs;
	u64 free_b[MAX_PICKS], max_stripe, max_chunk;
	u32 nr = 0;

	*bytes = 0;
	if (fs->nr_devs > sizeof(free_b) / sizeof(free_b[0]))
		return 0;
	for (u32 d = 0; d < fs->nr_devs; d++) {
		struct holes h = { .want = (u64)-1 };
		int ret = dev_find_hole(t, d, &h);

		if (ret)
			return ret;
		free_b[nr++] = h.total;
	}
	chunk_size_limits(fs_total(t), type, &max_stripe, &max_chunk);
	for (;;) {
		u32 with_room = 0, n;
		u64 stripe;

		qsort(free_b, nr, sizeof(*free_b), cmp_u64_desc);
		if (reserve) {
			u64 take = reserve < free_b[0] ? reserve : free_b[0];

			free_b[0] -= take;
			reserve -= take;
			if (take)
				continue;
			reserve = 0;
		}
		while (with_room < nr && free_b[with_room] >= CHUNK_STRIPE_LEN * prof->dev_stripes)
			with_room++;
		n = pick_count(prof, type, with_room);
		if (!n)
			return 0;
		stripe = free_b[n - 1] / prof->dev_stripes;
		stripe = stripe > max_stripe ? max_stripe : stripe;
		stripe = stripe / CHUNK_STRIPE_LEN * CHUNK_STRIPE_LEN;
		for (u32 i = 0; i < n; i++)
			free_b[i] -= stripe * prof->dev_stripes;
		*bytes += stripe * (n * prof->dev_stripes / prof->ncopies);
	}
}

int chunk_available(struct trans *t, u64 type, u64 reserve, u64 *bytes)
{
	const struct chunk_profile *prof;
	u64 unalloc;
	int ret = chunk_dev_unallocated(t, &unalloc, NULL);

	if (ret)
		return ret;
	*bytes = 0;
	type = space_group_type(t->fs, type);
	if (type_profile(t->fs, type, &prof)) {
		fs_clear_err(t->fs);	/* no chunks of this kind can be made: none available */
		return 0;
	}
	if (multi_path(t->fs, prof))
		return multi_available(t, type, prof, reserve, bytes);
	if (unalloc > reserve)
		*bytes = (unalloc - reserve) / prof->ncopies;
	return 0;
}
