// SPDX-License-Identifier: GPL-2.0
/*
 * Free space of the block groups during a transaction (Documentation/design.rst 3): one
 * bitmap per block group, loaded on first use from the extent tree, with
 * ranges freed in this transaction pinned until its commit; and the
 * accounting of every allocated or freed range (block group used counters,
 * the free-space tree).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "kernel-shared/chunk-alloc.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/free-space-tree.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "common/containers.h"

struct bg_space {
	u64 start, length, flags;
	u8 *bitmap;		/* one bit per sector: set = allocated, pinned or new */
	s64 used_delta;		/* change to the BLOCK_GROUP_ITEM used field */
	bool loaded;
	bool is_new;		/* allocated by this transaction (chunk-alloc.c) */
	bool emptied;		/* something in it was freed: removed at commit if empty */
	bool removed;		/* its chunk is removed: no allocations */
	bool draining;		/* in fs->drain_bgs with data left: new data elsewhere */
	u64 item_used;		/* used as the block group item had it when loaded */
	u64 drain_left;		/* its fs->drain_bgs count, less what the replay gave back */
	u64 drain_freed;	/* freed in this transaction while draining */
	size_t drain_idx;	/* its place in fs->drain_bgs */
	/* New, items not yet in the trees: free-space tree changes wait here. */
	bool items_pending;
	struct fst_op { u64 start, len; bool alloc; } *ops;
	size_t nr_ops, cap_ops;
};

struct pinned_range {
	u64 start, len;
};

struct space_map {
	struct bg_space *bgs;
	size_t nr, nr_draining;
	struct pinned_range *pinned;	/* freed in this transaction: never reused by it */
	size_t nr_pinned, cap_pinned;
};

void space_map_free(struct space_map *sm)
{
	if (!sm)
		return;
	for (size_t i = 0; i < sm->nr; i++) {
		free(sm->bgs[i].bitmap);
		free(sm->bgs[i].ops);
	}
	free(sm->bgs);
	free(sm->pinned);
	free(sm);
}

struct trans_root *space_bg_root(struct trans *t)
{
	u64 id = (t->fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_BLOCK_GROUP_TREE) ?
		 BTRFS_BLOCK_GROUP_TREE_OBJECTID : BTRFS_EXTENT_TREE_OBJECTID;

	return trans_get_root(t, id);
}

static struct root_ref *block_group_root(struct trans *t, struct trans_root **tr)
{
	*tr = space_bg_root(t);
	return *tr ? &(*tr)->ref : NULL;
}

/* Load the block group list (not yet the bitmaps). */
static int space_map_init(struct trans *t)
{
	struct fs_info *fs = t->fs;
	struct space_map *sm;
	struct trans_root *tr;
	struct root_ref *bgroot;
	struct btrfs_key key = { 0, BTRFS_BLOCK_GROUP_ITEM_KEY, 0 };
	struct btrfs_key max = { (u64)-1, (u8)-1, (u64)-1 };
	struct key_iter it;
	size_t cap = 0, nd = 0;
	int ret;

	if (t->space)
		return 0;
	sm = fault_calloc(1, sizeof(*sm));
	if (!sm)
		return fs_err(fs, -ENOMEM, "out of memory");
	t->space = sm;
	bgroot = block_group_root(t, &tr);
	if (!bgroot)
		return trans_root_err(t);
	for (ret = key_iter_first(&it, fs, bgroot, &key, &max); ret == 0; ret = key_iter_next(&it)) {
		struct btrfs_key k = it.key;
		const struct btrfs_block_group_item *bi;
		struct bg_space *bg;

		if (k.type != BTRFS_BLOCK_GROUP_ITEM_KEY)
			continue;
		if (it.size < sizeof(*bi)) {
			ret = fs_err(fs, -EUCLEAN, "block group %llu: item too small", k.objectid);
			break;
		}
		bi = (const void *)it.ptr;
		{
			struct bg_space *n = array_grow(sm->bgs, &cap, sm->nr, sizeof(*n));

			if (!n) {
				ret = fs_err(fs, -ENOMEM, "out of memory");
				break;
			}
			sm->bgs = n;
		}
		bg = &sm->bgs[sm->nr++];
		memset(bg, 0, sizeof(*bg));
		bg->start = k.objectid;
		bg->length = k.offset;
		bg->flags = le64_to_cpu(bi->flags);
		bg->item_used = le64_to_cpu(bi->used);
		/* Both are in ascending order: one walk through the draining list. */
		while (nd < fs->nr_drain_bgs && fs->drain_bgs[nd].start < bg->start)
			nd++;
		if (nd < fs->nr_drain_bgs && fs->drain_bgs[nd].start == bg->start &&
		    fs->drain_bgs[nd].left) {
			bg->draining = true;
			bg->drain_left = fs->drain_bgs[nd].left;
			bg->drain_idx = nd;
			sm->nr_draining++;
		}
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

static struct bg_space *bg_of(struct space_map *sm, u64 bytenr)
{
	size_t lo = 0, hi = sm->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct bg_space *bg = &sm->bgs[mid];

		if (bytenr < bg->start)
			hi = mid;
		else if (bytenr >= bg->start + bg->length)
			lo = mid + 1;
		else
			return bg;
	}
	return NULL;
}

/* The block group holding bytenr into *bg (NULL: none), the map loaded first. */
static int bg_lookup(struct trans *t, u64 bytenr, struct bg_space **bg)
{
	int ret = space_map_init(t);

	*bg = ret ? NULL : bg_of(t->space, bytenr);
	return ret;
}

int block_group_of(struct trans *t, u64 bytenr, u64 *start, u64 *length, u64 *flags)
{
	struct bg_space *bg;
	int ret = bg_lookup(t, bytenr, &bg);

	if (ret)
		return ret;
	if (!bg)
		return fs_err(t->fs, -ENOENT, "no block group holds %llu",
			      (unsigned long long)bytenr);
	*start = bg->start;
	*length = bg->length;
	*flags = bg->flags;
	return 0;
}

/*
 * First sector at or after i, below nbits, whose bit is `used` (nbits when
 * none).  Whole words and bytes that cannot hold it are skipped: the scans
 * below run over block groups of up to 10 GiB, one bit per sector.
 */
static u64 bm_next(const u8 *bm, u64 i, u64 nbits, bool used)
{
	u8 skip = used ? 0x00 : 0xff;

	while (i < nbits) {
		if ((i & 63) == 0 && nbits - i >= 64) {
			u64 w;

			memcpy(&w, bm + (i >> 3), sizeof(w));
			if (w == (used ? 0 : ~0ULL)) {
				i += 64;
				continue;
			}
		}
		if ((i & 7) == 0 && bm[i >> 3] == skip) {
			i += 8;
			continue;
		}
		if (!!(bm[i >> 3] & (1 << (i & 7))) == used)
			return i;
		i++;
	}
	return nbits;
}

/* Set or clear one bit. */
static inline void bm_put(u8 *bm, u64 bit, bool set)
{
	u8 mask = 1 << (bit & 7);

	bm[bit >> 3] = set ? bm[bit >> 3] | mask : bm[bit >> 3] & ~mask;
}

/* Sectors [first, last) of the bitmap to used (set) or free. */
static void bm_fill(u8 *bm, u64 first, u64 last, bool set)
{
	for (; first < last && (first & 7); first++)
		bm_put(bm, first, set);
	if (last - first >= 8) {
		memset(bm + (first >> 3), set ? 0xff : 0, (last - first) >> 3);
		first += (last - first) & ~7ULL;
	}
	for (; first < last; first++)
		bm_put(bm, first, set);
}

static void bitmap_set_range(struct fs_info *fs, struct bg_space *bg, u64 start, u64 len)
{
	u64 first, last;

	if (start + len <= bg->start || start >= bg->start + bg->length)
		return;
	if (start < bg->start) {
		len -= bg->start - start;
		start = bg->start;
	}
	if (start + len > bg->start + bg->length)
		len = bg->start + bg->length - start;
	first = (start - bg->start) / fs->sectorsize;
	last = (start + len - bg->start + fs->sectorsize - 1) / fs->sectorsize;
	bm_fill(bg->bitmap, first, last, true);
}

/*
 * Never hand out space whose stripe covers a superblock copy: the copies
 * sit at fixed *physical* offsets (64 MiB is usually inside the first
 * metadata chunk), and the next commit writes them.  Nor, as the kernel's
 * exclude_super_stripes() does, the logical range below the primary copy's
 * offset (64 KiB) of a group that starts there: old mkfs put the SYSTEM
 * chunk at logical 0, and a block at logical 0 would read as "no block".
 */
static void exclude_supers(struct fs_info *fs, struct bg_space *bg)
{
	const struct chunk_map *cm = find_chunk(fs, bg->start);

	if (bg->start < BTRFS_SUPER_INFO_OFFSET)
		bitmap_set_range(fs, bg, bg->start, BTRFS_SUPER_INFO_OFFSET - bg->start);

	/* Every stripe, on every device (kernel-shared/volumes.h chunk_rmap()). */
	for (int m = 0; cm && m < BTRFS_SUPER_MIRROR_MAX; m++) {
		u64 sb = btrfs_sb_offset(m);

		for (u16 st = 0; st < cm->num_stripes && st < CHUNK_MAX_STRIPES; st++) {
			u64 logical, len;

			if (!chunk_rmap(cm, st, sb, &logical, &len) || len != cm->stripe_len)
				continue;	/* not on this stripe, or parity */
			bitmap_set_range(fs, bg, logical + (sb - cm->physical[st]) % cm->stripe_len,
					 BTRFS_SUPER_INFO_SIZE);
		}
	}
}

int space_map_add_group(struct trans *t, u64 start, u64 length, u64 flags)
{
	struct fs_info *fs = t->fs;
	struct space_map *sm;
	struct bg_space *n, bg = { .start = start, .length = length, .flags = flags };
	size_t cap, at;
	int ret = space_map_init(t);

	if (ret)
		return ret;
	sm = t->space;
	bg.bitmap = fault_calloc(length / fs->sectorsize / 8 + 2, 1);
	if (!bg.bitmap)
		return fs_err(fs, -ENOMEM, "out of memory");
	cap = sm->nr;
	n = array_grow(sm->bgs, &cap, sm->nr, sizeof(*n));
	if (!n) {
		free(bg.bitmap);
		return fs_err(fs, -ENOMEM, "out of memory");
	}
	sm->bgs = n;
	bg.loaded = true;
	bg.is_new = true;
	bg.items_pending = true;
	exclude_supers(fs, &bg);
	for (at = sm->nr; at > 0 && sm->bgs[at - 1].start > start; at--)
		;
	memmove(&sm->bgs[at + 1], &sm->bgs[at], (sm->nr - at) * sizeof(*sm->bgs));
	sm->bgs[at] = bg;
	sm->nr++;
	return 0;
}

/* Mark everything the extent tree holds in the block group, plus pinned space. */
static int bg_load(struct trans *t, struct bg_space *bg)
{
	struct fs_info *fs = t->fs;
	struct trans_root *er = trans_get_root(t, BTRFS_EXTENT_TREE_OBJECTID);
	struct btrfs_key key = { bg->start, 0, 0 };
	/* Objectids below start + length (a sum that wraps to 0 ends the range at once). */
	struct btrfs_key max = { bg->start + bg->length ? bg->start + bg->length - 1 : 0,
				 (u8)-1, (u64)-1 };
	struct key_iter it;
	u64 nbits = bg->length / fs->sectorsize;
	int ret;

	if (!er)
		return trans_root_err(t);
	bg->bitmap = fault_calloc((nbits + 7) / 8 + 1, 1);
	if (!bg->bitmap)
		return fs_err(fs, -ENOMEM, "out of memory");
	/* An extent starting before the group cannot reach into it: start here. */
	for (ret = key_iter_first(&it, fs, &er->ref, &key, &max); ret == 0;
	     ret = key_iter_next(&it)) {
		if (it.key.type == BTRFS_EXTENT_ITEM_KEY)
			bitmap_set_range(fs, bg, it.key.objectid, it.key.offset);
		else if (it.key.type == BTRFS_METADATA_ITEM_KEY)
			bitmap_set_range(fs, bg, it.key.objectid, fs->nodesize);
	}
	key_iter_release(&it);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < t->space->nr_pinned; i++)
		bitmap_set_range(fs, bg, t->space->pinned[i].start, t->space->pinned[i].len);
	exclude_supers(fs, bg);
	bg->loaded = true;
	return 0;
}

/*
 * First fit of len bytes aligned to align within one block group, from
 * sector `from` up to `stop`.  Returns the start sector or nbits.
 */
static u64 bg_find(const struct bg_space *bg, u64 first, u64 from, u64 stop, u64 sectors,
		   u64 step, u64 nbits)
{
	u64 i = from < first ? first : from;

	while (i + sectors <= nbits && i < stop) {
		u64 j;

		i = bm_next(bg->bitmap, i, nbits, false);
		if (step > 1 && (i - first) % step)
			i += step - (i - first) % step;
		if (i + sectors > nbits || i >= stop)
			break;
		j = bm_next(bg->bitmap, i, i + sectors, true);
		if (j == i + sectors)
			return i;
		i = j + 1;	/* past the used sector that ended this run */
	}
	return nbits;
}

u64 space_group_type(const struct fs_info *fs, u64 type)
{
	if ((fs->incompat & BTRFS_FEATURE_INCOMPAT_MIXED_GROUPS) &&
	    (type & (BTRFS_BLOCK_GROUP_DATA | BTRFS_BLOCK_GROUP_METADATA)))
		return BTRFS_BLOCK_GROUP_DATA | BTRFS_BLOCK_GROUP_METADATA;
	return type;
}

/*
 * First fit of len bytes aligned to align within block groups of type
 * `type`, starting where the last allocation of that type ended (a hint
 * kept in fs_info across transactions) and wrapping once; past the
 * draining groups when avoid is set.
 */
static int space_find(struct trans *t, u64 type, u64 len, u64 align, u64 *out, bool avoid)
{
	struct fs_info *fs = t->fs;
	u64 sectors = len / fs->sectorsize, step = align / fs->sectorsize;
	int hint_idx, ret;
	size_t lo;
	u64 hint;

	type = space_group_type(fs, type);
	hint_idx = type & BTRFS_BLOCK_GROUP_DATA ? 0 : type & BTRFS_BLOCK_GROUP_SYSTEM ? 2 : 1;
	hint = fs->alloc_hint[hint_idx];
	ret = space_map_init(t);
	if (ret)
		return ret;
	/*
	 * The groups are sorted and disjoint: the first one ending past the hint
	 * by bisection, not a walk over the thousands of a large filesystem.
	 */
	lo = 0;
	for (size_t hi = t->space->nr; lo < hi; ) {
		size_t mid = lo + (hi - lo) / 2;

		if (hint >= t->space->bgs[mid].start + t->space->bgs[mid].length)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Pass 0: from the hint onwards; pass 1: before it (up to its group). */
	for (int pass = 0; pass < 2; pass++) {
		size_t g0 = pass == 0 ? lo : 0;
		size_t g1 = pass == 0 ? t->space->nr : lo < t->space->nr ? lo + 1 : lo;

		for (size_t g = g0; g < g1; g++) {
			struct bg_space *bg = &t->space->bgs[g];
			u64 nbits, first, from, stop, i;

			if ((bg->flags & BTRFS_BLOCK_GROUP_TYPE_MASK) != type || bg->removed ||
			    (avoid && bg->draining))
				continue;
			if (!bg->loaded && (ret = bg_load(t, bg)))
				return ret;
			nbits = bg->length / fs->sectorsize;
			first = ((bg->start + align - 1) / align * align - bg->start) / fs->sectorsize;
			from = pass == 0 && hint > bg->start ? (hint - bg->start) / fs->sectorsize : 0;
			stop = pass == 1 && hint > bg->start && hint < bg->start + bg->length ?
			       (hint - bg->start) / fs->sectorsize : nbits;
			i = bg_find(bg, first, from, stop, sectors, step, nbits);
			if (i < nbits) {
				u64 start = bg->start + i * fs->sectorsize;

				bitmap_set_range(fs, bg, start, len);
				fs->alloc_hint[hint_idx] = start + len;
				*out = start;
				return 0;
			}
		}
	}
	return 1;
}

/*
 * Whether a draining job may make a data chunk now.  A job that adds
 * metadata for good (fs->drain_meta above the 64 blocks every job counts
 * for a commit's copy-on-write) keeps room beside the chunk for twice that,
 * up to a metadata chunk: data that does not drain leaves the unallocated
 * space to the metadata, which may need more than the preflight's bound
 * while a batch holds old and new tree blocks (a kernel image of 20,000
 * small files, half full, ran out of metadata space half-way when draining
 * took all of it).  The chunk is as large as the size rule allows, or the
 * largest hole.  1: yes, 0: no (also when the sizes cannot be known: the
 * draining groups come next), or -ENOMEM: the job stops.
 */
static int drain_chunk_room(struct trans *t)
{
	u64 unalloc = 0, largest = 0, data = 0, meta = 0, keep = 0;
	int ret = chunk_dev_unallocated(t, &unalloc, &largest);

	if (!ret)
		ret = chunk_device_bytes(t, BTRFS_BLOCK_GROUP_DATA, &data);
	if (!ret)
		ret = chunk_device_bytes(t, BTRFS_BLOCK_GROUP_METADATA, &meta);
	if (ret == -ENOMEM)
		return ret;
	if (ret) {
		fs_clear_err(t->fs);
		return 0;
	}
	if (t->fs->drain_meta > 64ULL * t->fs->nodesize)
		keep = 2 * t->fs->drain_meta < meta ? 2 * t->fs->drain_meta : meta;
	return unalloc >= keep + (data < largest ? data : largest);
}

/*
 * Room for len bytes (Documentation/design.rst 3, "Draining block groups"):
 * a block group of the type that is not being drained; else a new chunk
 * made from unallocated space without growing the image, when
 * drain_chunk_room() allows it; else a draining
 * group; else a new chunk, growing the image when that is allowed.  1 when
 * none has room, or chunk_alloc()'s error (-ENOSPC: no device room).
 */
static int find_room(struct trans *t, u64 type, u64 len, u64 align, u64 *out)
{
	struct fs_info *fs = t->fs;
	bool grow = fs->may_grow;
	int ret = space_find(t, type, len, align, out, true);

	if (ret <= 0 || !t->space->nr_draining || type != BTRFS_BLOCK_GROUP_DATA)
		goto last;
	if (!fs->drain_nochunk || len < fs->drain_nochunk) {
		ret = drain_chunk_room(t);
		if (ret < 0)
			return ret;
		fs->may_grow = false;
		ret = ret ? chunk_alloc(t, type, len) : -ENOSPC;
		fs->may_grow = grow;
		if (!ret && (ret = space_find(t, type, len, align, out, true)) <= 0)
			return ret;
		if (ret == -ENOSPC) {
			/* Not an error yet: the draining groups come next. */
			fs_clear_err(fs);
			fs->drain_nochunk = len;
		} else if (ret < 0) {
			return ret;
		}
	}
	ret = space_find(t, type, len, align, out, false);
last:
	if (ret <= 0)
		return ret;
	/* No block group of the type has room: a new chunk (chunk-alloc.h). */
	ret = chunk_alloc(t, type, len);
	return ret ? ret : space_find(t, type, len, align, out, false);
}

int space_alloc(struct trans *t, u64 type, u64 len, u64 align, u64 *out)
{
	struct fs_info *fs = t->fs;
	u64 free_bytes = 0, unalloc = 0, largest = 0;
	int ret = find_room(t, type, len, align, out);

	if (ret <= 0 && ret != -ENOSPC)
		return ret;
	type = space_group_type(fs, type);
	space_free_bytes(t, type, &free_bytes);
	space_largest_free(t, type, &largest);
	chunk_dev_unallocated(t, &unalloc, NULL);
	return fs_err(fs, -ENOSPC,
		      "not enough free %s space: need %llu contiguous bytes, %llu are free in the existing block groups (the largest free piece %llu bytes) and %llu bytes of the device are unallocated",
		      type == (BTRFS_BLOCK_GROUP_DATA | BTRFS_BLOCK_GROUP_METADATA) ? "mixed data and metadata" :
		      type & BTRFS_BLOCK_GROUP_DATA ? "data" :
		      type & BTRFS_BLOCK_GROUP_SYSTEM ? "system" : "metadata",
		      len, free_bytes, largest, unalloc);
}

/* The bits of [start, start + len) within bg back to free. */
static void bitmap_clear_range(struct fs_info *fs, struct bg_space *bg, u64 start, u64 len)
{
	u64 first = (start - bg->start) / fs->sectorsize;
	u64 last = (start + len - bg->start + fs->sectorsize - 1) / fs->sectorsize;
	u64 nbits = bg->length / fs->sectorsize;

	if (first < nbits)
		bm_fill(bg->bitmap, first, last < nbits ? last : nbits, false);
}

int space_unmark(struct trans *t, u64 start, u64 len)
{
	struct bg_space *bg;
	int ret = bg_lookup(t, start, &bg);

	if (ret)
		return ret;
	if (!bg || start + len > bg->start + bg->length)
		return fs_err(t->fs, -EUCLEAN, "range %llu+%llu is outside every block group",
			      start, len);
	if (!bg->loaded && (ret = bg_load(t, bg)))
		return ret;
	bitmap_clear_range(t->fs, bg, start, len);
	return 0;
}

int space_alloc_all(struct trans *t, u64 type, const u64 *lens, size_t n, u64 *at, bool *fits)
{
	struct fs_info *fs = t->fs;
	u64 gtype = space_group_type(fs, type);
	int hint_idx = gtype & BTRFS_BLOCK_GROUP_DATA ? 0 : gtype & BTRFS_BLOCK_GROUP_SYSTEM ? 2 : 1;
	u64 hint = fs->alloc_hint[hint_idx];
	size_t placed = 0;
	int ret = 0;

	*fits = true;
	for (size_t i = 0; !ret && i < n; i++) {
		ret = find_room(t, type, lens[i], fs->sectorsize, &at[i]);
		if (ret == 1 || ret == -ENOSPC) {
			*fits = false;
			ret = 0;
			break;
		}
		placed += !ret;
	}
	if (*fits && !ret)
		return 0;
	/* All or nothing: the bits back, the hint as it was (new chunks stay). */
	for (size_t i = 0; i < placed; i++) {
		struct bg_space *bg = bg_of(t->space, at[i]);

		if (bg)
			bitmap_clear_range(fs, bg, at[i], lens[i]);
	}
	fs->alloc_hint[hint_idx] = hint;
	return ret;
}

int space_free_bytes(struct trans *t, u64 type, u64 *free_bytes)
{
	struct fs_info *fs = t->fs;
	int ret = space_map_init(t);

	if (ret)
		return ret;
	type = space_group_type(fs, type);
	*free_bytes = 0;
	for (size_t g = 0; g < t->space->nr; g++) {
		struct bg_space *bg = &t->space->bgs[g];
		u64 nbits;

		if ((bg->flags & BTRFS_BLOCK_GROUP_TYPE_MASK) != type || bg->removed)
			continue;
		if (!bg->loaded && (ret = bg_load(t, bg)))
			return ret;
		nbits = bg->length / fs->sectorsize;
		for (u64 i = bm_next(bg->bitmap, 0, nbits, false), j; i < nbits;
		     i = bm_next(bg->bitmap, j, nbits, false)) {
			j = bm_next(bg->bitmap, i, nbits, true);
			*free_bytes += (j - i) * fs->sectorsize;
		}
	}
	return 0;
}

int space_largest_free(struct trans *t, u64 type, u64 *largest)
{
	struct fs_info *fs = t->fs;
	int ret = space_map_init(t);

	type = space_group_type(fs, type);
	*largest = 0;
	for (size_t g = 0; !ret && g < t->space->nr; g++) {
		struct bg_space *bg = &t->space->bgs[g];
		u64 nbits = bg->length / fs->sectorsize;

		if ((bg->flags & BTRFS_BLOCK_GROUP_TYPE_MASK) != type || bg->removed)
			continue;
		if (!bg->loaded && (ret = bg_load(t, bg)))
			break;
		for (u64 i = bm_next(bg->bitmap, 0, nbits, false), j; i < nbits;
		     i = bm_next(bg->bitmap, j, nbits, false)) {
			j = bm_next(bg->bitmap, i, nbits, true);
			if ((j - i) * fs->sectorsize > *largest)
				*largest = (j - i) * fs->sectorsize;
		}
	}
	return ret;
}

/* Call fn for each run of free sectors in [from, end) of a loaded group. */
static int bg_for_each_free_run(struct fs_info *fs, const struct bg_space *bg, u64 from, u64 end,
				int (*fn)(u64 start, u64 len, void *arg), void *arg)
{
	int ret = 0;

	for (u64 i = bm_next(bg->bitmap, from, end, false), j; !ret && i < end;
	     i = bm_next(bg->bitmap, j, end, false)) {
		j = bm_next(bg->bitmap, i, end, true);
		ret = fn(bg->start + i * fs->sectorsize, (j - i) * fs->sectorsize, arg);
	}
	return ret;
}

int space_for_each_free(struct trans *t, u64 type,
			int (*fn)(u64 start, u64 len, void *arg), void *arg)
{
	struct fs_info *fs = t->fs;
	int ret = space_map_init(t);

	for (size_t g = 0; !ret && g < t->space->nr; g++) {
		struct bg_space *bg = &t->space->bgs[g];

		if (!(bg->flags & type) || bg->removed)
			continue;
		if (!bg->loaded && (ret = bg_load(t, bg)))
			return ret;
		ret = bg_for_each_free_run(fs, bg, 0, bg->length / fs->sectorsize, fn, arg);
	}
	return ret;
}

int space_free_subranges(struct trans *t, u64 start, u64 len,
			 int (*fn)(u64 start, u64 len, void *arg), void *arg)
{
	struct fs_info *fs = t->fs;
	struct bg_space *bg;
	int ret = bg_lookup(t, start, &bg);

	if (ret || !bg)
		return ret;
	if (!bg->loaded && (ret = bg_load(t, bg)))
		return ret;
	if (start + len > bg->start + bg->length)
		len = bg->start + bg->length - start;
	return bg_for_each_free_run(fs, bg, (start - bg->start) / fs->sectorsize,
				    (start + len - bg->start) / fs->sectorsize, fn, arg);
}

static int pin_range(struct trans *t, u64 start, u64 len)
{
	struct space_map *sm = t->space;
	struct pinned_range *n = array_grow(sm->pinned, &sm->cap_pinned, sm->nr_pinned, sizeof(*n));

	if (!n)
		return fs_err(t->fs, -ENOMEM, "out of memory");
	sm->pinned = n;
	sm->pinned[sm->nr_pinned++] = (struct pinned_range){ start, len };
	return 0;
}

/* Update the block group used counter and the free-space tree for a range. */
int account_range(struct trans *t, u64 start, u64 len, bool alloc)
{
	struct bg_space *bg;
	int ret = bg_lookup(t, start, &bg);

	if (ret)
		return ret;
	if (!bg)
		return fs_err(t->fs, -EUCLEAN, "extent %llu is outside every block group", start);
	bg->used_delta += alloc ? (s64)len : -(s64)len;
	t->bytes_used_delta += alloc ? (s64)len : -(s64)len;
	if (!alloc) {
		bg->emptied = true;
		bg->drain_freed += bg->draining ? len : 0;
		if (t->on_free)
			t->on_free(start, len, t->on_free_arg);
		ret = pin_range(t, start, len);
		if (ret)
			return ret;
		if (bg->loaded)
			bitmap_set_range(t->fs, bg, start, len);
	}
	if (!(t->fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE))
		return 0;
	if (bg->items_pending) {
		struct fst_op *n = array_grow(bg->ops, &bg->cap_ops, bg->nr_ops, sizeof(*n));

		if (!n)
			return fs_err(t->fs, -ENOMEM, "out of memory");
		bg->ops = n;
		bg->ops[bg->nr_ops++] = (struct fst_op){ start, len, alloc };
		return 0;
	}
	return alloc ? fst_remove_range(t, start, len) : fst_add_range(t, start, len);
}

int space_group_flushed(struct trans *t, u64 start)
{
	struct bg_space *bg;
	struct fst_op *ops;
	size_t nr;
	u64 length;
	int ret = bg_lookup(t, start, &bg);

	if (ret || !bg)
		return ret ? ret : fs_err(t->fs, -ENOENT, "no block group at %llu", start);
	ops = bg->ops;
	nr = bg->nr_ops;
	length = bg->length;
	bg->ops = NULL;
	bg->nr_ops = bg->cap_ops = 0;
	bg->items_pending = false;	/* bg may move from here on */
	if (t->fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE)
		ret = fst_add_group(t, start, length);
	for (size_t i = 0; !ret && i < nr; i++)
		ret = ops[i].alloc ? fst_remove_range(t, ops[i].start, ops[i].len) :
		      fst_add_range(t, ops[i].start, ops[i].len);
	free(ops);
	return ret;
}

/* Write the used counters of block groups that changed. */
int update_block_groups(struct trans *t)
{
	struct trans_root *tr;
	int ret;

	if (!t->space || !block_group_root(t, &tr))
		return t->space ? -EIO : 0;
	for (size_t i = 0; i < t->space->nr; i++) {
		struct bg_space *bg = &t->space->bgs[i];
		struct btrfs_key key = { bg->start, BTRFS_BLOCK_GROUP_ITEM_KEY, bg->length };
		struct btrfs_block_group_item *bi;
		struct btrfs_path p;

		if (!bg->used_delta || bg->items_pending)
			continue;
		ret = search_slot_mod(t, tr, &key, &p, 0);
		if (ret) {
			path_release(t->fs, &p);
			return ret < 0 ? ret : fs_err(t->fs, -EUCLEAN, "block group %llu vanished",
						      bg->start);
		}
		bi = (void *)path_ptr_mut(&p);
		bi->used = cpu_to_le64(le64_to_cpu(bi->used) + bg->used_delta);
		bg->used_delta = 0;
		path_release(t->fs, &p);
	}
	return 0;
}

bool space_map_dirty(const struct trans *t)
{
	if (t->space)
		for (size_t i = 0; i < t->space->nr; i++)
			if (t->space->bgs[i].used_delta && !t->space->bgs[i].items_pending)
				return true;
	return false;
}

int space_drain_begin(struct trans *t)
{
	struct fs_info *fs = t->fs;
	struct space_map *sm;
	int ret = space_map_init(t);

	if (ret)
		return ret;
	space_drain_end(fs);
	/* Mixed block groups hold the metadata too: they never drain. */
	if (fs->incompat & BTRFS_FEATURE_INCOMPAT_MIXED_GROUPS)
		return 0;
	sm = t->space;
	fs->drain_bgs = fault_calloc(sm->nr ? sm->nr : 1, sizeof(*fs->drain_bgs));
	if (!fs->drain_bgs)
		return fs_err(fs, -ENOMEM, "out of memory");
	sm->nr_draining = 0;
	for (size_t i = 0; i < sm->nr; i++) {
		struct bg_space *bg = &sm->bgs[i];
		s64 used = (s64)bg->item_used + bg->used_delta;

		bg->draining = (bg->flags & BTRFS_BLOCK_GROUP_TYPE_MASK) == BTRFS_BLOCK_GROUP_DATA &&
			       used > 0 && !bg->removed && !bg->is_new;
		if (!bg->draining)
			continue;
		bg->drain_left = (u64)used;
		bg->drain_freed = 0;
		bg->drain_idx = fs->nr_drain_bgs;
		fs->drain_bgs[fs->nr_drain_bgs++] = (struct drain_bg){ bg->start, (u64)used };
		sm->nr_draining++;
	}
	return 0;
}

/* A draining group gave back len bytes of its data: drained when none is left. */
static void drain_less(struct space_map *sm, struct bg_space *bg, u64 len)
{
	bg->drain_left -= len < bg->drain_left ? len : bg->drain_left;
	if (!bg->drain_left) {
		bg->draining = false;
		sm->nr_draining--;
	}
}

int space_drain_release(struct trans *t, u64 start, u64 len)
{
	struct bg_space *bg;
	int ret = bg_lookup(t, start, &bg);

	if (!ret && bg && bg->draining)
		drain_less(t->space, bg, len);
	return ret;
}

/* At commit: what the transaction freed in draining groups leaves the list's counts. */
static void drain_commit(struct trans *t)
{
	struct fs_info *fs = t->fs;

	for (size_t i = 0; t->space && i < t->space->nr; i++) {
		struct bg_space *bg = &t->space->bgs[i];

		if (!bg->draining || !bg->drain_freed)
			continue;
		drain_less(t->space, bg, bg->drain_freed);
		bg->drain_freed = 0;
		fs->drain_bgs[bg->drain_idx].left = bg->drain_left;
	}
}

void space_drain_end(struct fs_info *fs)
{
	free(fs->drain_bgs);
	fs->drain_bgs = NULL;
	fs->nr_drain_bgs = 0;
	fs->drain_nochunk = 0;
	fs->drain_meta = 0;
}

/* The used counter of a block group as the trees of the transaction have it. */
static int bg_used(struct trans *t, const struct bg_space *bg, u64 *used)
{
	struct trans_root *tr = space_bg_root(t);
	struct btrfs_key key = { bg->start, BTRFS_BLOCK_GROUP_ITEM_KEY, bg->length };
	struct btrfs_block_group_item bi;
	u32 size;
	int ret;

	if (!tr)
		return trans_root_err(t);
	ret = lookup_item(t->fs, &tr->ref, &key, &bi, sizeof(bi), &size);
	if (ret)
		return ret < 0 ? ret : fs_err(t->fs, -EUCLEAN, "block group %llu vanished", bg->start);
	*used = le64_to_cpu(bi.used) + bg->used_delta;
	return 0;
}

/* Another usable block group of the same type than number i. */
static bool has_sibling(const struct space_map *sm, size_t i)
{
	u64 type = sm->bgs[i].flags & BTRFS_BLOCK_GROUP_TYPE_MASK;

	for (size_t j = 0; j < sm->nr; j++)
		if (j != i && !sm->bgs[j].removed &&
		    (sm->bgs[j].flags & BTRFS_BLOCK_GROUP_TYPE_MASK) == type)
			return true;
	return false;
}

/* Keep the block groups this transaction emptied in fs->emptied_bgs, once each. */
static int keep_emptied(struct trans *t)
{
	struct fs_info *fs = t->fs;

	for (size_t i = 0; t->space && i < t->space->nr; i++) {
		const struct bg_space *bg = &t->space->bgs[i];
		size_t j = 0;
		u64 *n;

		if (!bg->emptied || bg->removed)
			continue;
		while (j < fs->nr_emptied_bgs && fs->emptied_bgs[j] != bg->start)
			j++;
		if (j < fs->nr_emptied_bgs)
			continue;
		n = array_grow(fs->emptied_bgs, &fs->cap_emptied_bgs, fs->nr_emptied_bgs, sizeof(*n));
		if (!n)
			return fs_err(fs, -ENOMEM, "out of memory");
		fs->emptied_bgs = n;
		fs->emptied_bgs[fs->nr_emptied_bgs++] = bg->start;
	}
	return 0;
}

/* The block groups earlier commits kept are candidates of this one. */
static int take_kept(struct trans *t)
{
	struct fs_info *fs = t->fs;

	for (size_t i = 0; i < fs->nr_emptied_bgs; i++) {
		struct bg_space *bg;
		int ret = bg_lookup(t, fs->emptied_bgs[i], &bg);

		if (ret)
			return ret;
		if (bg && bg->start == fs->emptied_bgs[i])
			bg->emptied = true;
	}
	fs->nr_emptied_bgs = 0;
	return 0;
}

int space_remove_empty(struct trans *t, bool *removed)
{
	int ret;

	*removed = false;
	drain_commit(t);
	if (t->keep_emptied)
		return keep_emptied(t);
	ret = take_kept(t);
	if (ret)
		return ret;
	for (size_t i = 0; t->space && i < t->space->nr; i++) {
		struct bg_space *bg = &t->space->bgs[i];
		u64 type = bg->flags & BTRFS_BLOCK_GROUP_TYPE_MASK, used = 0, start, length;

		if (!bg->emptied || bg->removed || bg->is_new ||
		    (type != BTRFS_BLOCK_GROUP_DATA && type != BTRFS_BLOCK_GROUP_METADATA) ||
		    !has_sibling(t->space, i))
			continue;
		ret = bg_used(t, bg, &used);
		if (ret)
			return ret;
		if (used)
			continue;
		bg->removed = true;
		start = bg->start;
		length = bg->length;
		/* The edits may allocate (and add block groups): bg is not used after. */
		ret = chunk_remove(t, start, length);
		if (ret)
			return ret;
		*removed = true;
	}
	return 0;
}
