// SPDX-License-Identifier: GPL-2.0
/* The chunk map: logical -> physical for single-device SINGLE and DUP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel-shared/tree-checker.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "common/containers.h"
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

int validate_chunk(struct fs_info *fs, u64 logical, const struct btrfs_chunk *c,
		   u32 item_size)
{
	u64 length, type, profile;
	u16 num_stripes;
	u64 devid = le64_to_cpu(fs->super.dev_item.devid);
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
	profile = type & BTRFS_BLOCK_GROUP_PROFILE_MASK;
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
	if (profile && profile != BTRFS_BLOCK_GROUP_DUP)
		return fs_err(fs, -EOPNOTSUPP,
			      "chunk %llu: %s profile is not supported (only single and dup)",
			      (unsigned long long)logical, profile_name(type));
	if (num_stripes != (profile == BTRFS_BLOCK_GROUP_DUP ? 2 : 1))
		return fs_err(fs, -EUCLEAN, "chunk %llu: %s profile with %u stripes",
			      (unsigned long long)logical, profile_name(type), num_stripes);
	for (u16 i = 0; i < num_stripes; i++) {
		const struct btrfs_stripe *s = &c->stripe + i;
		u64 off = le64_to_cpu(s->offset);

		if (le64_to_cpu(s->devid) != devid)
			return fs_err(fs, -EOPNOTSUPP,
				      "chunk %llu: stripe on device %llu; multi-device filesystems are not supported",
				      (unsigned long long)logical,
				      (unsigned long long)le64_to_cpu(s->devid));
		if (off + length < off || off + length > fs->image_size)
			return fs_err(fs, -EUCLEAN,
				      "chunk %llu: stripe %u [%llu, %llu) lies beyond the end of the image (%llu bytes)",
				      (unsigned long long)logical, i, (unsigned long long)off,
				      (unsigned long long)(off + length),
				      (unsigned long long)fs->image_size);
	}
	return 0;
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
	for (u16 i = 0; i < m.num_stripes && i < 2; i++)
		m.physical[i] = le64_to_cpu((&c->stripe + i)->offset);
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
			     o->physical[0] != m.physical[0] || o->physical[1] != m.physical[1]) &&
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

int logical_to_physical(struct fs_info *fs, u64 logical, u64 len, u64 *physical)
{
	const struct chunk_map *m = find_chunk(fs, logical);

	if (!m || logical + len > m->logical + m->length)
		return fs_err(fs, -ENOENT, "logical range %llu+%llu is not mapped by one chunk",
			      (unsigned long long)logical, (unsigned long long)len);
	*physical = m->physical[0] + (logical - m->logical);
	return 0;
}

/* ---- copies ------------------------------------------------------------ */

int num_copies(const struct fs_info *fs, u64 logical)
{
	const struct chunk_map *m = find_chunk(fs, logical);

	if (!m)
		return 0;
	/* SINGLE: one stripe, one copy; DUP: two stripes, each a full copy. */
	return m->num_stripes < 2 ? 1 : 2;
}

int map_copy(const struct fs_info *fs, u64 logical, u64 len, int copy, struct copy_loc *out)
{
	const struct chunk_map *m = find_chunk(fs, logical);

	if (!m || logical + len < logical || logical + len > m->logical + m->length ||
	    copy < 0 || copy >= num_copies(fs, logical))
		return -ENOENT;
	out->devid = le64_to_cpu(fs->super.dev_item.devid);
	out->physical = m->physical[copy] + (logical - m->logical);
	return 0;
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
