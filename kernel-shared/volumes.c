// SPDX-License-Identifier: GPL-2.0
/* The chunk map and the stripe layer: logical -> (device, offset) for every profile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <isa-l/erasure_code.h>
#include <isa-l/gf_vect_mul.h>
#include <isa-l/raid.h>
#include "kernel-shared/tree-checker.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "common/containers.h"
#include "common/fault.h"
#include "common/utils.h"

const char *profile_name(u64 flags)
{
	switch (flags & BTRFS_BLOCK_GROUP_PROFILE_MASK) {
	case 0: return "single";
	case BTRFS_BLOCK_GROUP_DUP: return "dup";
	case BTRFS_BLOCK_GROUP_RAID0: return "raid0";
	case BTRFS_BLOCK_GROUP_RAID1: return "raid1";
	case BTRFS_BLOCK_GROUP_RAID10: return "raid10";
	case BTRFS_BLOCK_GROUP_RAID5: return "raid5";
	case BTRFS_BLOCK_GROUP_RAID6: return "raid6";
	case BTRFS_BLOCK_GROUP_RAID1C3: return "raid1c3";
	case BTRFS_BLOCK_GROUP_RAID1C4: return "raid1c4";
	default: return "mixed profile bits";
	}
}

static u32 chunk_item_size(u16 num_stripes)
{
	return offsetof(struct btrfs_chunk, stripe) + (u32)num_stripes * sizeof(struct btrfs_stripe);
}

/* Stripes that hold distinct data in a row: the divisor of a stripe's size. */
static u64 data_stripes(u64 type, u16 num, u16 sub)
{
	switch (type & BTRFS_BLOCK_GROUP_PROFILE_MASK) {
	case BTRFS_BLOCK_GROUP_RAID0: return num;
	case BTRFS_BLOCK_GROUP_RAID10: return sub ? num / sub : 0;
	case BTRFS_BLOCK_GROUP_RAID5: return num > 1 ? num - 1 : 0;
	case BTRFS_BLOCK_GROUP_RAID6: return num > 2 ? num - 2 : 0;
	default: return 1;
	}
}

/* The stripes of a chunk item: count, devices, and extents on the devices given. */
static int validate_stripes(struct fs_info *fs, u64 logical, const struct btrfs_chunk *c)
{
	u16 num_stripes = le16_to_cpu(c->num_stripes), sub = le16_to_cpu(c->sub_stripes);
	u64 type = le64_to_cpu(c->type), profile = type & BTRFS_BLOCK_GROUP_PROFILE_MASK;
	u64 ndata = data_stripes(type, num_stripes, sub), stripe_size;

	if (num_stripes > CHUNK_MAX_STRIPES)
		return fs_err(fs, -EOPNOTSUPP, "chunk %llu: %u stripes; at most %d are supported",
			      (unsigned long long)logical, num_stripes, CHUNK_MAX_STRIPES);
	/*
	 * A partial RAID5/6 stripe write leaves parity that does not match
	 * (the write hole): such filesystems are read, never written.
	 */
	if (fs->writable_open &&
	    (profile & (BTRFS_BLOCK_GROUP_RAID5 | BTRFS_BLOCK_GROUP_RAID6)))
		return fs_err(fs, -EOPNOTSUPP,
			      "chunk %llu: %s profile; RAID5/6 filesystems are not written (the RAID5/6 write hole): nothing was changed",
			      (unsigned long long)logical, profile_name(type));
	if (!ndata ||
	    (profile == BTRFS_BLOCK_GROUP_RAID10 && (sub < 2 || num_stripes % sub)) ||
	    num_stripes != (profile == BTRFS_BLOCK_GROUP_DUP ? 2 : !profile ? 1 : num_stripes))
		return fs_err(fs, -EUCLEAN, "chunk %llu: %s profile with %u stripes (sub_stripes %u)",
			      (unsigned long long)logical, profile_name(type), num_stripes, sub);
	stripe_size = le64_to_cpu(c->length) / ndata;
	for (u16 i = 0; i < num_stripes; i++) {
		const struct btrfs_stripe *st = &c->stripe + i;
		u64 off = le64_to_cpu(st->offset), devid = le64_to_cpu(st->devid);
		int d = fs_dev_index(fs, devid);

		if (d < 0 || fs->devs[d].fd < 0)
			continue;	/* a missing device: readers use other copies */
		if (off + stripe_size < off || off + stripe_size > fs->devs[d].size)
			return fs_err(fs, -EUCLEAN,
				      "chunk %llu: stripe %u [%llu, %llu) lies beyond the end of %s (%llu bytes)",
				      (unsigned long long)logical, i, (unsigned long long)off,
				      (unsigned long long)(off + stripe_size), fs->devs[d].path,
				      (unsigned long long)fs->devs[d].size);
	}
	return 0;
}

int validate_chunk(struct fs_info *fs, u64 logical, const struct btrfs_chunk *c,
		   u32 item_size)
{
	u64 length, type;
	u16 num_stripes;
	char why[200];

	/* The kernel's rules first: a chunk they refuse makes the filesystem unmountable. */
	if (item_size >= offsetof(struct btrfs_chunk, stripe) &&
	    tree_check_chunk(fs, c, item_size, logical, why, sizeof(why)))
		return fs_err(fs, -EUCLEAN, "chunk %llu: %s", (unsigned long long)logical, why);
	if (item_size < sizeof(struct btrfs_chunk))
		return fs_err(fs, -EUCLEAN, "chunk %llu: item too small (%u bytes)",
			      (unsigned long long)logical, item_size);
	num_stripes = le16_to_cpu(c->num_stripes);
	length = le64_to_cpu(c->length);
	type = le64_to_cpu(c->type);
	if (num_stripes == 0 || chunk_item_size(num_stripes) != item_size)
		return fs_err(fs, -EUCLEAN, "chunk %llu: invalid num_stripes %u for item size %u",
			      (unsigned long long)logical, num_stripes, item_size);
	if (!length || length % fs->sectorsize || logical % fs->sectorsize)
		return fs_err(fs, -EUCLEAN, "chunk %llu: invalid length %llu or alignment",
			      (unsigned long long)logical, (unsigned long long)length);
	if (logical + length < logical)
		return fs_err(fs, -EUCLEAN, "chunk %llu: length %llu overflows",
			      (unsigned long long)logical, (unsigned long long)length);
	if (!(type & BTRFS_BLOCK_GROUP_TYPE_MASK))
		return fs_err(fs, -EUCLEAN, "chunk %llu: no data/metadata/system type (0x%llx)",
			      (unsigned long long)logical, (unsigned long long)type);
	if ((type & BTRFS_BLOCK_GROUP_PROFILE_MASK) & ((type & BTRFS_BLOCK_GROUP_PROFILE_MASK) - 1))
		return fs_err(fs, -EUCLEAN, "chunk %llu: several profile bits (0x%llx)",
			      (unsigned long long)logical, (unsigned long long)type);
	if (le64_to_cpu(c->stripe_len) != BTRFS_STRIPE_LEN)
		return fs_err(fs, -EUCLEAN, "chunk %llu: stripe length %llu",
			      (unsigned long long)logical,
			      (unsigned long long)le64_to_cpu(c->stripe_len));
	return validate_stripes(fs, logical, c);
}

static int cmp_chunk(const void *a, const void *b)
{
	const struct chunk_map *x = a, *y = b;

	return x->logical < y->logical ? -1 : x->logical > y->logical;
}

/* Insert or confirm one mapping; duplicates (sys array + chunk tree) must agree. */
static int add_chunk(struct fs_info *fs, u64 logical, const struct btrfs_chunk *c,
		     size_t *cap)
{
	struct chunk_map m = { 0 };

	m.logical = logical;
	m.length = le64_to_cpu(c->length);
	m.type = le64_to_cpu(c->type);
	m.num_stripes = le16_to_cpu(c->num_stripes);
	m.sub_stripes = le16_to_cpu(c->sub_stripes);
	m.stripe_len = (u32)le64_to_cpu(c->stripe_len);
	for (u16 i = 0; i < m.num_stripes && i < CHUNK_MAX_STRIPES; i++) {
		m.physical[i] = le64_to_cpu((&c->stripe + i)->offset);
		m.devid[i] = le64_to_cpu((&c->stripe + i)->devid);
		if (fs_dev_index(fs, m.devid[i]) < 0 && fs_add_missing_dev(fs, m.devid[i]))
			return fs_err(fs, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < fs->nr_chunks; i++) {
		struct chunk_map *o = &fs->chunks[i];

		if (o->logical == m.logical && o->length == m.length) {
			/*
			 * A system chunk, met in the superblock's array first: the
			 * kernel keeps that copy, so do we, but remember a chunk
			 * tree item that says otherwise (check reports it, and
			 * nothing is written through a mapping in doubt).
			 */
			if ((o->type != m.type || o->num_stripes != m.num_stripes ||
			     memcmp(o->physical, m.physical, sizeof(m.physical)) ||
			     memcmp(o->devid, m.devid, sizeof(m.devid))) &&
			    !fs->sys_chunk_mismatch)
				fs->sys_chunk_mismatch = m.logical;
			return 0;
		}
		if (m.logical < o->logical + o->length && o->logical < m.logical + m.length)
			return fs_err(fs, -EUCLEAN, "chunk %llu overlaps chunk %llu",
				      (unsigned long long)m.logical,
				      (unsigned long long)o->logical);
	}
	{
		struct chunk_map *n = array_grow(fs->chunks, cap, fs->nr_chunks, sizeof(*n));

		if (!n)
			return fs_err(fs, -ENOMEM, "out of memory");
		fs->chunks = n;
	}
	fs->chunks[fs->nr_chunks++] = m;
	qsort(fs->chunks, fs->nr_chunks, sizeof(*fs->chunks), cmp_chunk);
	return 0;
}

static int load_sys_array(struct fs_info *fs, size_t *cap)
{
	const u8 *p = fs->super.sys_chunk_array;
	u32 size = le32_to_cpu(fs->super.sys_chunk_array_size);
	u32 pos = 0;
	int ret;

	while (pos < size) {
		const struct btrfs_disk_key *dk = (const void *)(p + pos);
		const struct btrfs_chunk *c;
		struct btrfs_key key;
		u32 item;

		if (size - pos < sizeof(*dk) + sizeof(struct btrfs_chunk))
			return fs_err(fs, -EUCLEAN,
				      "sys_chunk_array: truncated entry at offset %u", pos);
		btrfs_disk_key_to_cpu(&key, dk);
		if (key.type != BTRFS_CHUNK_ITEM_KEY)
			return fs_err(fs, -EUCLEAN,
				      "sys_chunk_array: entry at offset %u has key type %u, expected CHUNK_ITEM",
				      pos, key.type);
		c = (const void *)(p + pos + sizeof(*dk));
		item = chunk_item_size(le16_to_cpu(c->num_stripes));
		if (item > size - pos - sizeof(*dk))
			return fs_err(fs, -EUCLEAN,
				      "sys_chunk_array: chunk %llu with %u stripes overruns the array",
				      (unsigned long long)key.offset,
				      le16_to_cpu(c->num_stripes));
		ret = validate_chunk(fs, key.offset, c, item);
		if (ret)
			return ret;
		if (!(le64_to_cpu(c->type) & BTRFS_BLOCK_GROUP_SYSTEM))
			return fs_err(fs, -EUCLEAN,
				      "sys_chunk_array: chunk %llu is not a SYSTEM chunk",
				      (unsigned long long)key.offset);
		ret = add_chunk(fs, key.offset, c, cap);
		if (ret)
			return ret;
		pos += sizeof(*dk) + item;
	}
	return 0;
}

int load_chunk_map(struct fs_info *fs)
{
	struct btrfs_key min = { BTRFS_FIRST_CHUNK_TREE_OBJECTID, BTRFS_CHUNK_ITEM_KEY, 0 };
	struct btrfs_key max = { (u64)-1, (u8)-1, (u64)-1 };
	struct key_iter it;
	size_t cap = 0;
	int ret;

	ret = load_sys_array(fs, &cap);
	if (!ret)
		ret = check_missing_devices(fs);	/* before reading the chunk tree */
	if (ret)
		return ret;
	ret = key_iter_first(&it, fs, &fs->chunk_root, &min, &max);
	/* Every tree block header repeats this; the write engine copies it. */
	if (ret >= 0)
		memcpy(fs->chunk_tree_uuid,
		       tb_header(it.path.nodes[it.path.root_level])->chunk_tree_uuid,
		       BTRFS_UUID_SIZE);
	for (; ret == 0; ret = key_iter_next(&it)) {
		if (it.key.type != BTRFS_CHUNK_ITEM_KEY)
			continue;
		ret = validate_chunk(fs, it.key.offset, (const void *)it.ptr, it.size);
		if (!ret)
			ret = add_chunk(fs, it.key.offset, (const void *)it.ptr, &cap);
		if (ret)
			break;
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

int chunk_map_insert(struct fs_info *fs, const struct chunk_map *m)
{
	size_t cap = fs->nr_chunks;
	struct chunk_map *n = array_grow(fs->chunks, &cap, fs->nr_chunks, sizeof(*n));

	if (!n)
		return fs_err(fs, -ENOMEM, "out of memory");
	fs->chunks = n;
	fs->chunks[fs->nr_chunks++] = *m;
	qsort(fs->chunks, fs->nr_chunks, sizeof(*fs->chunks), cmp_chunk);
	return 0;
}

void chunk_map_remove(struct fs_info *fs, u64 logical)
{
	for (size_t i = 0; i < fs->nr_chunks; i++) {
		if (fs->chunks[i].logical != logical)
			continue;
		memmove(&fs->chunks[i], &fs->chunks[i + 1],
			(fs->nr_chunks - i - 1) * sizeof(*fs->chunks));
		fs->nr_chunks--;
		return;
	}
}

const struct chunk_map *find_chunk(const struct fs_info *fs, u64 logical)
{
	size_t lo = 0, hi = fs->nr_chunks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct chunk_map *m = &fs->chunks[mid];

		if (logical < m->logical)
			hi = mid;
		else if (logical >= m->logical + m->length)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

/* ---- devices ------------------------------------------------------------ */

int fs_dev_index(const struct fs_info *fs, u64 devid)
{
	for (u32 i = 0; i < fs->nr_devs; i++)
		if (fs->devs[i].devid == devid)
			return (int)i;
	return -1;
}

int fs_add_dev(struct fs_info *fs, const struct fs_device *d)
{
	struct fs_device *nd = realloc(fs->devs, (fs->nr_devs + 1) * sizeof(*nd));
	int *nf;

	if (!nd)
		return -ENOMEM;
	fs->devs = nd;
	nf = realloc(fs->dev_fds, (fs->nr_devs + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	fs->dev_fds = nf;
	fs->devs[fs->nr_devs] = *d;
	fs->dev_fds[fs->nr_devs] = d->fd;
	fs->nr_devs++;
	return 0;
}

int fs_add_missing_dev(struct fs_info *fs, u64 devid)
{
	return fs_add_dev(fs, &(struct fs_device){ .devid = devid, .fd = -1 });
}

static bool raid56(const struct chunk_map *m)
{
	return m->type & (BTRFS_BLOCK_GROUP_RAID5 | BTRFS_BLOCK_GROUP_RAID6);
}

u64 chunk_data_stripes(const struct chunk_map *m)
{
	return data_stripes(m->type, m->num_stripes, m->sub_stripes);
}

static bool stripe_present(const struct fs_info *fs, const struct chunk_map *m, u64 stripe)
{
	int d = fs_dev_index(fs, m->devid[stripe % m->num_stripes]);

	return d >= 0 && fs->devs[d].fd >= 0;
}

/* Whether every byte of chunk m has a copy on the devices given. */
static bool chunk_readable(const struct fs_info *fs, const struct chunk_map *m)
{
	u64 profile = m->type & BTRFS_BLOCK_GROUP_PROFILE_MASK;
	int group = 1;	/* stripes that mirror each other, side by side */

	if (raid56(m)) {	/* RAID5 rebuilds one missing element per row, RAID6 two */
		u64 missing = 0;

		for (u64 s = 0; s < m->num_stripes; s++)
			missing += !stripe_present(fs, m, s);
		return missing <= m->num_stripes - chunk_data_stripes(m);	/* parity elements */
	}
	if (profile & (BTRFS_BLOCK_GROUP_RAID1 | BTRFS_BLOCK_GROUP_RAID1C3 |
		       BTRFS_BLOCK_GROUP_RAID1C4))
		group = m->num_stripes;
	else if (profile == BTRFS_BLOCK_GROUP_RAID10)
		group = m->sub_stripes;
	for (int g = 0; g < m->num_stripes; g += group) {
		bool any = false;

		for (int s = g; s < g + group && s < m->num_stripes; s++) {
			int d = fs_dev_index(fs, m->devid[s]);

			any |= d >= 0 && fs->devs[d].fd >= 0;
		}
		if (!any)
			return false;
	}
	return true;
}

int check_missing_devices(struct fs_info *fs)
{
	for (size_t i = 0; i < fs->nr_chunks; i++) {
		const struct chunk_map *m = &fs->chunks[i];

		if (chunk_readable(fs, m))
			continue;
		for (int s = 0; s < m->num_stripes; s++) {
			int d = fs_dev_index(fs, m->devid[s]);

			if (d >= 0 && fs->devs[d].fd >= 0)
				continue;
			if (raid56(m))
				return fs_err(fs, -ENODEV,
					      "device devid %llu is missing, and more of %s chunk %llu than its parity rebuilds (raid5: one device, raid6: two; give every device with --device PATH)",
					      (unsigned long long)m->devid[s], profile_name(m->type),
					      (unsigned long long)m->logical);
			return fs_err(fs, -ENODEV,
				      "device devid %llu is missing: %s chunk %llu has no copy without it (give every device with --device PATH)",
				      (unsigned long long)m->devid[s], profile_name(m->type),
				      (unsigned long long)m->logical);
		}
	}
	return 0;
}

int check_device_count(struct fs_info *fs)
{
	u64 num = le64_to_cpu(fs->super.num_devices);

	if (num == fs->nr_devs)
		return 0;
	if (num < fs->nr_devs)
		return fs_err(fs, -EUCLEAN,
			      "the superblock says %llu devices, but %u are given or named by chunks",
			      (unsigned long long)num, fs->nr_devs);
	return fs_err(fs, -ENODEV,
		      "the filesystem has %llu devices, %u are known (given, or named by chunks): give the others with --device PATH",
		      (unsigned long long)num, fs->nr_devs);
}

/* ---- the stripe layer ---------------------------------------------------- */

int chunk_num_copies(const struct chunk_map *m)
{
	switch (m->type & BTRFS_BLOCK_GROUP_PROFILE_MASK) {
	case BTRFS_BLOCK_GROUP_DUP:
	case BTRFS_BLOCK_GROUP_RAID1:
	case BTRFS_BLOCK_GROUP_RAID1C3:
	case BTRFS_BLOCK_GROUP_RAID1C4:
		return m->num_stripes < MAX_COPIES ? m->num_stripes : MAX_COPIES;
	case BTRFS_BLOCK_GROUP_RAID10:
		return m->sub_stripes < MAX_COPIES ? m->sub_stripes : MAX_COPIES;
	case BTRFS_BLOCK_GROUP_RAID5:
		return 2;	/* the data element; rebuilt from P */
	case BTRFS_BLOCK_GROUP_RAID6:
		return 3;	/* the data element; rebuilt from P; from Q */
	default:	/* SINGLE, RAID0 */
		return 1;
	}
}

/*
 * Byte `off` of chunk m, copy `copy`: its stripe, the offset on that
 * stripe's device, and how many bytes follow it there contiguously.
 */
static void chunk_locate(const struct chunk_map *m, u64 off, int copy, int *stripe,
			 u64 *physical, u64 *run)
{
	u64 profile = m->type & BTRFS_BLOCK_GROUP_PROFILE_MASK;
	u64 sl = m->stripe_len, nr = off / sl, soff = off % sl, row, idx;

	switch (profile) {
	case BTRFS_BLOCK_GROUP_RAID0:
		idx = nr % m->num_stripes;
		row = nr / m->num_stripes;
		break;
	case BTRFS_BLOCK_GROUP_RAID10: {
		u64 factor = m->num_stripes / m->sub_stripes;

		idx = (nr % factor) * m->sub_stripes + (u64)copy;
		row = nr / factor;
		break;
	}
	case BTRFS_BLOCK_GROUP_RAID5:
	case BTRFS_BLOCK_GROUP_RAID6: {
		u64 ndata = chunk_data_stripes(m);

		/* Parity rotates: row r's data stripe i lies on stripe (r + i) % n. */
		row = nr / ndata;
		idx = (row + nr % ndata) % m->num_stripes;
		break;
	}
	default:	/* one full copy per stripe */
		*stripe = copy;
		*physical = m->physical[copy] + off;
		*run = m->length - off;
		return;
	}
	*stripe = (int)idx;
	*physical = m->physical[idx] + row * sl + soff;
	*run = sl - soff;
	if (*run > m->length - off)
		*run = m->length - off;
}

u64 chunk_stripe_size(const struct chunk_map *m)
{
	u64 n = chunk_data_stripes(m);

	return n ? m->length / n : 0;
}

bool chunk_rmap(const struct chunk_map *m, int stripe, u64 physical, u64 *logical, u64 *len)
{
	u64 profile = m->type & BTRFS_BLOCK_GROUP_PROFILE_MASK, sl = m->stripe_len, off, row, nr;
	u64 ndata = chunk_data_stripes(m);

	if (physical < m->physical[stripe] ||
	    physical >= m->physical[stripe] + chunk_stripe_size(m))
		return false;
	off = physical - m->physical[stripe];
	row = off / sl;
	switch (profile) {
	case BTRFS_BLOCK_GROUP_RAID0:
		nr = row * m->num_stripes + (u64)stripe;
		break;
	case BTRFS_BLOCK_GROUP_RAID10:
		nr = row * ndata + (u64)stripe / m->sub_stripes;
		break;
	case BTRFS_BLOCK_GROUP_RAID5:
	case BTRFS_BLOCK_GROUP_RAID6: {
		u64 di = ((u64)stripe + m->num_stripes - row % m->num_stripes) % m->num_stripes;

		if (di >= ndata) {	/* parity: the whole row it protects */
			*logical = m->logical + row * ndata * sl;
			*len = ndata * sl;
			return true;
		}
		nr = row * ndata + di;
		break;
	}
	default:
		*logical = m->logical + off / sl * sl;
		*len = sl;
		return true;
	}
	*logical = m->logical + nr * sl;
	*len = sl;
	return true;
}

int logical_to_physical(struct fs_info *fs, u64 logical, u64 len, u64 *physical)
{
	struct copy_loc loc;

	if (map_copy(fs, logical, len, 0, &loc))
		return fs_err(fs, -ENOENT, "logical range %llu+%llu is not mapped by one chunk",
			      (unsigned long long)logical, (unsigned long long)len);
	*physical = loc.physical;
	return 0;
}

/* ---- copies ------------------------------------------------------------ */

int num_copies(const struct fs_info *fs, u64 logical)
{
	const struct chunk_map *m = find_chunk(fs, logical);

	return m ? chunk_num_copies(m) : 0;
}

bool copies_rebuilt(const struct fs_info *fs, u64 logical)
{
	const struct chunk_map *m = find_chunk(fs, logical);

	return m && raid56(m);
}

int num_copies_present(const struct fs_info *fs, u64 logical)
{
	int n = num_copies(fs, logical), present = 0;

	for (int i = 0; i < n; i++) {
		struct copy_loc loc;

		present += !map_copy(fs, logical, 1, i, &loc) && loc.fd >= 0;
	}
	return present;
}

/*
 * RAID5/6 copy k (>= 1) of byte off of chunk m: the stripe and device
 * offset of its parity element (P for 1, Q for 2), and whether every
 * element the rebuild reads (that parity, the row's other data) is on a
 * device that was given.
 */
static bool parity_locate(const struct fs_info *fs, const struct chunk_map *m, u64 off, int k,
			  int *stripe, u64 *physical)
{
	u64 sl = m->stripe_len, nr = off / sl;
	u64 ndata = chunk_data_stripes(m), row = nr / ndata;
	int missing = 0;

	*stripe = (int)((row + ndata + (u64)k - 1) % m->num_stripes);
	*physical = m->physical[*stripe] + row * sl + off % sl;
	for (u64 i = 0; i < ndata; i++)
		missing += i != nr % ndata && !stripe_present(fs, m, row + i);
	/* From Q, one other data element may be missing too: P stands in for it. */
	if (k == 2 && missing == 1 && !stripe_present(fs, m, row + ndata))
		return false;
	return missing <= k - 1 && stripe_present(fs, m, (u64)*stripe);
}

/* Where byte `physical` of stripe `stripe` (modulo the stripe count) of chunk m is read. */
static void stripe_loc(const struct fs_info *fs, const struct chunk_map *m, u64 stripe,
		       u64 physical, struct copy_loc *loc)
{
	loc->devid = m->devid[stripe % m->num_stripes];
	loc->physical = physical;
	loc->dev = fs_dev_index(fs, loc->devid);
	loc->fd = loc->dev >= 0 ? fs->devs[loc->dev].fd : -1;
	loc->rebuild = 0;
}

int map_copy_run(const struct fs_info *fs, u64 logical, u64 len, int copy,
		 struct copy_loc *out, u64 *run)
{
	const struct chunk_map *m = find_chunk(fs, logical);
	bool present = true, rebuilt;
	u64 physical;
	int stripe;

	if (!m || !len || logical + len < logical || copy < 0 || copy >= chunk_num_copies(m))
		return -ENOENT;
	rebuilt = raid56(m) && copy;
	chunk_locate(m, logical - m->logical, copy, &stripe, &physical, run);
	if (*run > len)
		*run = len;
	if (rebuilt)
		present = parity_locate(fs, m, logical - m->logical, copy, &stripe, &physical);
	stripe_loc(fs, m, (u64)stripe, physical, out);
	if (rebuilt)
		out->rebuild = copy;
	if (!present)
		out->fd = -1;
	return 0;
}

int map_copy(const struct fs_info *fs, u64 logical, u64 len, int copy, struct copy_loc *out)
{
	u64 run;

	if (map_copy_run(fs, logical, len, copy, out, &run) || run != len)
		return -ENOENT;
	return 0;
}

int copy_pread(struct fs_info *fs, const struct copy_loc *loc, void *buf, u64 len, u64 logical)
{
	ssize_t ret;

	if (loc->rebuild && loc->fd >= 0)
		return copy_rebuild(fs, logical, loc->rebuild, buf, len);
	if (loc->fd < 0)
		return fs_err(fs, -ENODEV, "logical %llu: device devid %llu is missing",
			      (unsigned long long)logical, (unsigned long long)loc->devid);
	if (loc->physical + len < loc->physical || loc->physical + len > fs->devs[loc->dev].size)
		return fs_err(fs, -EIO, "logical %llu maps to %llu, beyond the end of %s",
			      (unsigned long long)logical, (unsigned long long)loc->physical,
			      fs->devs[loc->dev].path);
	ret = pread(loc->fd, buf, len, (off_t)loc->physical);
	if (ret != (ssize_t)len)
		return fs_err(fs, -EIO, "read error at logical %llu: %s", (unsigned long long)logical,
			      ret < 0 ? strerror(errno) : "short read");
	return 0;
}

/* Element `stripe` (taken modulo the stripe count) of chunk m, from byte at of its stripe. */
static int element_pread(struct fs_info *fs, const struct chunk_map *m, u64 stripe, u64 at,
			 void *buf, u64 len, u64 logical)
{
	struct copy_loc loc;

	stripe_loc(fs, m, stripe, m->physical[stripe % m->num_stripes] + at, &loc);
	return copy_pread(fs, &loc, buf, len, logical);
}

/* g^e in GF(2^8), g = 2. */
static u8 gf_pow2(u64 e)
{
	u8 r = 1;

	while (e--)
		r = gf_mul(r, 2);
	return r;
}

/*
 * D_x from Q (read into v[nd + 2]) and the row's other data v[i], with v[x]
 * zeroed and, when y < nd (data element y missing too), v[y] zeroed and P
 * read into v[nd + 3].  pq_gen gives P' and Q' of the data there (into
 * v[nd], v[nd + 1]).  Q + Q' = g^x D_x + g^y D_y and P + P' = D_x + D_y, so
 * D_x = g^-x (Q + Q') without y, else (g^x + g^y)^-1 (Q + Q' + g^y (P + P')).
 * Returns the slot holding D_x.
 */
static u8 *rebuild_from_q(u8 **v, u64 nd, u64 x, u64 y, u64 len)
{
	u8 tbl[32], c = gf_pow2(x);
	void *q[3] = { v[nd + 2], v[nd + 1], v[x] };

	if (nd > 1)
		pq_gen((int)nd + 2, (int)len, (void **)v);
	else
		memset(v[nd + 1], 0, len);	/* one data element: Q = D_0 */
	xor_gen(3, (int)len, q);	/* v[x] = Q + Q' */
	if (y < nd) {
		void *p[3] = { v[nd + 3], v[nd], v[y] };
		void *sum[3] = { v[x], v[nd + 4], v[nd + 1] };

		xor_gen(3, (int)len, p);	/* v[y] = P + P' */
		gf_vect_mul_init(gf_pow2(y), tbl);
		gf_vect_mul((int)len, tbl, v[y], v[nd + 4]);
		xor_gen(3, (int)len, sum);	/* v[nd + 1] = (g^x + g^y) D_x */
		c ^= gf_pow2(y);
		x = nd + 1;
	}
	gf_vect_mul_init(gf_inv(c), tbl);
	gf_vect_mul((int)len, tbl, v[x], v[nd + 4]);
	return v[nd + 4];
}

int copy_rebuild(struct fs_info *fs, u64 logical, int k, void *buf, u64 len)
{
	const struct chunk_map *m = find_chunk(fs, logical);
	u64 off, sl, nd, nr, row, at, y;
	u8 *mem, *v[CHUNK_MAX_STRIPES + 5] = { NULL };
	int ret = 0;

	if (!m || !raid56(m) || k < 1 || (u64)k > m->num_stripes - chunk_data_stripes(m) ||
	    !len || len % fs->sectorsize || logical % fs->sectorsize)
		return fs_err(fs, -EINVAL, "logical %llu: there is no copy %d to rebuild",
			      (unsigned long long)logical, k + 1);
	off = logical - m->logical;
	sl = m->stripe_len;
	if (off % sl + len > sl || len > m->length - off)
		return fs_err(fs, -EINVAL, "logical %llu+%llu crosses a stripe element",
			      (unsigned long long)logical, (unsigned long long)len);
	nd = chunk_data_stripes(m);
	nr = off / sl;
	row = nr / nd;
	at = row * sl + off % sl;
	y = nd;
	if (fault_posix_memalign((void **)&mem, 64, (nd + 5) * len))
		return fs_err(fs, -ENOMEM, "out of memory");
	for (u64 i = 0; i < nd + 5; i++)
		v[i] = mem + i * len;
	memset(v[nr % nd], 0, len);
	for (u64 i = 0; !ret && i < nd; i++) {
		if (i == nr % nd)
			continue;
		if (k == 2 && y == nd && !stripe_present(fs, m, row + i)) {
			y = i;		/* missing too: rebuilt with P as well */
			memset(v[i], 0, len);
			continue;
		}
		ret = element_pread(fs, m, row + i, at, v[i], len, logical);
	}
	/* P into v[nd] (xor_gen's sources are v[0..nd]); Q into v[nd + 2]. */
	if (!ret)
		ret = element_pread(fs, m, row + nd + (u64)k - 1, at, v[k == 1 ? nd : nd + 2], len,
				    logical);
	if (!ret && y < nd)
		ret = element_pread(fs, m, row + nd, at, v[nd + 3], len, logical);
	if (!ret && k == 1) {
		xor_gen((int)nd + 2, (int)len, (void **)v);	/* into v[nd + 1] */
		memcpy(buf, v[nd + 1], len);
	} else if (!ret) {
		memcpy(buf, rebuild_from_q(v, nd, nr % nd, y, len), len);
	}
	free(mem);
	return ret;
}

u64 raid56_rows(const struct chunk_map *m)
{
	return raid56(m) && m->stripe_len ? chunk_stripe_size(m) / m->stripe_len : 0;
}

/* Bit s set where sector s of a and b (sectors of ss bytes, n of them) differ. */
static u64 sectors_differ(const u8 *a, const u8 *b, u64 ss, u64 n)
{
	u64 bits = 0;

	for (u64 s = 0; s < n; s++)
		if (memcmp(a + s * ss, b + s * ss, ss))
			bits |= 1ULL << s;
	return bits;
}

/*
 * Sectors of row `row`'s elements that a superblock copy overlaps on some
 * device: written per device, outside the parity (and never allocated).
 */
static u64 row_super_sectors(const struct chunk_map *m, u64 row, u64 ss)
{
	u64 sl = m->stripe_len, bits = 0;

	for (u64 i = 0; i < m->num_stripes; i++) {
		u64 start = m->physical[i] + row * sl;

		for (int j = 0; j < BTRFS_SUPER_MIRROR_MAX; j++) {
			u64 sb = btrfs_sb_offset(j), end = sb + BTRFS_SUPER_INFO_SIZE;

			for (u64 s = 0; s < sl / ss; s++)
				if (start + s * ss < end && sb < start + (s + 1) * ss)
					bits |= 1ULL << s;
		}
	}
	return bits;
}

int raid56_verify_row(struct fs_info *fs, const struct chunk_map *m, u64 row, u64 *p_bad,
		      u64 *q_bad)
{
	u64 sl = m->stripe_len, ss = fs->sectorsize, nparity = m->num_stripes;
	u64 nd = chunk_data_stripes(m), logical;
	u8 *mem, *v[CHUNK_MAX_STRIPES + 2], *stored[2];
	int ret = 0;

	*p_bad = *q_bad = 0;
	nparity -= nd;
	logical = m->logical + row * nd * sl;
	if (!raid56(m) || sl % ss || sl / ss > 64 || row >= raid56_rows(m))
		return fs_err(fs, -EOPNOTSUPP, "chunk %llu: parity of row %llu is not verified",
			      (unsigned long long)m->logical, (unsigned long long)row);
	for (u64 s = 0; s < m->num_stripes; s++)
		if (!stripe_present(fs, m, s))
			return fs_err(fs, -ENODEV, "chunk %llu: a device is missing",
				      (unsigned long long)m->logical);
	if (fault_posix_memalign((void **)&mem, 64, (nd + 2 * nparity) * sl))
		return fs_err(fs, -ENOMEM, "out of memory");
	/* v[0..nd): the data, v[nd..): the parity computed; stored[]: the parity read. */
	for (u64 i = 0; i < nd + nparity; i++)
		v[i] = mem + i * sl;
	for (u64 k = 0; k < nparity; k++)
		stored[k] = mem + (nd + nparity + k) * sl;
	for (u64 i = 0; !ret && i < nd + nparity; i++)
		ret = element_pread(fs, m, row + i, row * sl, i < nd ? v[i] : stored[i - nd], sl,
				    logical);
	if (!ret && nd == 1) {	/* one data element: P (and Q) = D_0 */
		for (u64 k = 0; k < nparity; k++)
			memcpy(v[1 + k], v[0], sl);
	} else if (!ret && nparity == 1) {
		xor_gen((int)nd + 1, (int)sl, (void **)v);
	} else if (!ret) {
		pq_gen((int)nd + 2, (int)sl, (void **)v);
	}
	if (!ret) {
		u64 super = row_super_sectors(m, row, ss);

		*p_bad = sectors_differ(v[nd], stored[0], ss, sl / ss) & ~super;
		*q_bad = nparity > 1 ? sectors_differ(v[nd + 1], stored[1], ss, sl / ss) & ~super : 0;
	}
	free(mem);
	return ret;
}

void note_bad_copy(struct fs_info *fs, u64 logical, int copy, int good_copy, const char *reason)
{
	struct copy_loc loc = { 0, 0 };
	struct bad_copy *b;
	/* logical is sector aligned: its low bits hold the copy number. */
	u64 key = logical | (u64)(copy & 0xff);

	map_copy(fs, logical, 1, copy, &loc);
	pthread_mutex_lock(&fs->bad.lock);
	if (u64map_find(&fs->bad.seen, key) || !u64map_insert(&fs->bad.seen, key))
		goto out;
	b = array_grow(fs->bad.v, &fs->bad.cap, fs->bad.nr, sizeof(*b));
	if (!b)
		goto out;
	fs->bad.v = b;
	b = &fs->bad.v[fs->bad.nr++];
	*b = (struct bad_copy){ .logical = logical, .devid = loc.devid, .physical = loc.physical,
				.copy = copy, .good_copy = good_copy };
	snprintf(b->reason, sizeof(b->reason), "%s", reason);
out:
	pthread_mutex_unlock(&fs->bad.lock);
}

const struct bad_copy *bad_copies(struct fs_info *fs, size_t *nr)
{
	*nr = fs->bad.nr;
	return fs->bad.v;
}

void bad_copies_free(struct fs_info *fs)
{
	free(fs->bad.v);
	fs->bad.v = NULL;
	fs->bad.nr = fs->bad.cap = 0;
	u64map_free(&fs->bad.seen);
}
