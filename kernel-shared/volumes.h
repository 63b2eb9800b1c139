/* SPDX-License-Identifier: GPL-2.0 */
/*
 * volumes.c: the chunk map (logical to physical addresses) built from the
 * superblock's system chunk array and the chunk tree, and chunk item checks.
 */
#ifndef EXTCRYPT_VOLUMES_H
#define EXTCRYPT_VOLUMES_H

#include "kernel-shared/ctree.h"

/*
 * Build fs->chunks from the superblock's sys_chunk_array, then from every
 * CHUNK_ITEM of the chunk tree.  Refuses profiles other than SINGLE and DUP.
 * Returns 0 or a negative errno with fs_errmsg(fs) set.
 */
int load_chunk_map(struct fs_info *fs);

/*
 * Validate one chunk item body of item_size bytes at logical address
 * `logical`.  Returns 0 or -EUCLEAN / -EOPNOTSUPP with fs_errmsg(fs) set.
 */
int validate_chunk(struct fs_info *fs, u64 logical, const struct btrfs_chunk *c,
		   u32 item_size);

/* Human name of a block group profile ("single", "dup", "raid1", ...). */
const char *profile_name(u64 flags);

/* Map a logical range to an image offset (first stripe).  Returns 0 or -ENOENT. */
int logical_to_physical(struct fs_info *fs, u64 logical, u64 len, u64 *physical);
/*
 * Add a mapping (a chunk allocated in a transaction) or drop one (a chunk
 * removed, or an allocation undone).  Insert returns 0 or -ENOMEM.
 */
int chunk_map_insert(struct fs_info *fs, const struct chunk_map *m);
void chunk_map_remove(struct fs_info *fs, u64 logical);

/* Chunk covering a logical address, or NULL. */
const struct chunk_map *find_chunk(const struct fs_info *fs, u64 logical);

/*
 * Copies of a logical range (the mirror layer).  Readers try copy 0, 1, ...
 * in order and take the first good one; writers write every copy.  Today a
 * copy is one stripe of a SINGLE (1 copy) or DUP (2 copies) chunk on the one
 * device; a stripe layer for RAID1* / RAID10 (a copy per mirror) and RAID5/6
 * (a copy rebuilt from parity) implements these two and nothing above them
 * changes.
 */
#define MAX_COPIES	4	/* RAID1C4; today at most 2 (DUP) */

struct copy_loc {
	u64 devid;
	u64 physical;	/* byte offset on that device */
};

/* How many copies the chunk holding logical keeps (0: not mapped). */
int num_copies(const struct fs_info *fs, u64 logical);
/*
 * Where copy `copy` (0-based) of [logical, logical + len) is.  The range must
 * lie in one chunk.  Returns 0 or -ENOENT (not mapped, or no such copy).
 */
int map_copy(const struct fs_info *fs, u64 logical, u64 len, int copy, struct copy_loc *out);

/*
 * Bad copies met by readers whose data came from another, good copy: a tree
 * block's copy that failed its checksum or its parent's expectations.
 * `check` reports them (TREE_BLOCK_BAD_COPY); other commands go on with the
 * good copy.  Recorded once per (logical, copy); thread-safe.
 */
struct bad_copy {
	u64 logical;
	u64 devid;
	u64 physical;
	int copy;		/* 0-based */
	int good_copy;		/* the copy that was used */
	char reason[160];
};

/* Record one; out of memory drops the record (the read itself succeeded). */
void note_bad_copy(struct fs_info *fs, u64 logical, int copy, int good_copy, const char *reason);
/* The records so far, in the order they were met; valid until close_image(). */
const struct bad_copy *bad_copies(struct fs_info *fs, size_t *nr);
void bad_copies_free(struct fs_info *fs);

#endif
