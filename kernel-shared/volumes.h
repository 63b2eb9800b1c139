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
 * CHUNK_ITEM of the chunk tree.  Devices the stripes name that were not
 * given are added to fs->devs as missing (fd -1); a chunk left without a
 * copy is refused (check_missing_devices()).  An image opened for writing
 * refuses RAID5/6 chunks (the write hole).
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

/* Map a logical range to a device offset (first copy).  Returns 0 or -ENOENT. */
int logical_to_physical(struct fs_info *fs, u64 logical, u64 len, u64 *physical);
/*
 * Add a mapping (a chunk allocated in a transaction) or drop one (a chunk
 * removed, or an allocation undone).  Insert returns 0 or -ENOMEM.
 */
int chunk_map_insert(struct fs_info *fs, const struct chunk_map *m);
void chunk_map_remove(struct fs_info *fs, u64 logical);

/* Chunk covering a logical address, or NULL. */
const struct chunk_map *find_chunk(const struct fs_info *fs, u64 logical);

/* ---- devices ----
 * fs->devs[] (ctree.h): the index of devid, or -1; add one (0 or -ENOMEM);
 * add a missing one (fd -1).
 */
int fs_dev_index(const struct fs_info *fs, u64 devid);
int fs_add_dev(struct fs_info *fs, const struct fs_device *d);
int fs_add_missing_dev(struct fs_info *fs, u64 devid);
/*
 * With devices missing: 0 when every chunk keeps a copy of each byte on the
 * devices given, else -ENODEV naming the first missing devid that leaves
 * a chunk without one.  A RAID5 chunk's rows are rebuilt from parity
 * with one device missing, a RAID6 chunk's with two.
 */
int check_missing_devices(struct fs_info *fs);
/*
 * After the chunk map: the superblock's num_devices against the devices
 * known (given, or missing but named by a chunk).  0, -EUCLEAN (fewer
 * devices than that), or -ENODEV (devices holding no chunk not given).
 */
int check_device_count(struct fs_info *fs);

/*
 * Copies of a logical range (the stripe layer).  Readers try copy 0, 1, ...
 * in order and take the first good one (skipping copies on missing
 * devices); writers write every copy.  A copy is, per
 * profile: SINGLE 1, DUP 2 (both on the one device), RAID1/RAID1C3/RAID1C4
 * one per stripe, RAID10 one per sub-stripe; RAID0 1, striped over the
 * devices in stripe_len elements; RAID5 2 and RAID6 3, as the kernel counts
 * them: copy 0 is the data element read directly, copy 1 the element
 * rebuilt from the row's other data elements and P, copy 2 (RAID6) rebuilt
 * from them and Q.  A rebuilt copy is named by its parity element (devid,
 * physical: the bytes that differ when it is bad) and is on a missing
 * device when a device it reads is missing.  The copy rebuilt from Q also
 * rebuilds with a second data element of the row missing (from P and Q
 * together), so RAID6 is read with two devices missing, RAID5 with one.
 * Writers (kernel-shared/transaction.h) write every copy, split at stripe
 * elements with map_copy_run(); RAID5/6 chunks are never written
 * (validate_stripes()).
 */
#define MAX_COPIES	4	/* RAID1C4 */

struct copy_loc {
	u64 devid;
	u64 physical;	/* byte offset on that device */
	int dev;	/* index in fs->devs */
	int fd;		/* fs->devs[dev].fd; -1: the device is missing */
	int rebuild;	/* 0: read at physical; k > 0: RAID5/6 copy k, rebuilt (copy_rebuild()) */
};

/* How many copies the chunk holding logical keeps (0: not mapped). */
int num_copies(const struct fs_info *fs, u64 logical);
/*
 * Whether copies after the first are rebuilt from parity (RAID5/6): they
 * agree with the first when the whole row is sound, so a verifier reads
 * them only when the first is bad or missing (a bad element elsewhere in
 * the row would make them look bad).
 */
bool copies_rebuilt(const struct fs_info *fs, u64 logical);
int chunk_num_copies(const struct chunk_map *m);
/* Stripes holding distinct data in a row (RAID5: stripes - 1, RAID6: - 2, RAID10: / 2...). */
u64 chunk_data_stripes(const struct chunk_map *m);
/* Bytes of a chunk's stripe on its device (length / data stripes). */
u64 chunk_stripe_size(const struct chunk_map *m);
/*
 * Reverse map: the stripe element of chunk m that holds byte `physical` of
 * stripe `stripe`'s device, as a logical range (a parity element: the row
 * of data it protects).  false: physical is not on that stripe.
 */
bool chunk_rmap(const struct chunk_map *m, int stripe, u64 physical, u64 *logical, u64 *len);
/* Copies of the byte at logical on devices that were given. */
int num_copies_present(const struct fs_info *fs, u64 logical);
/*
 * Where copy `copy` (0-based) of [logical, logical + len) is.  The range must
 * lie in one chunk and, on a striped profile, in one stripe element.
 * Returns 0 or -ENOENT (not mapped, no such copy, or not contiguous).
 */
int map_copy(const struct fs_info *fs, u64 logical, u64 len, int copy, struct copy_loc *out);
/*
 * The same for the first bytes of the range: *run (<= len, > 0) bytes from
 * logical lie contiguously at *out.
 */
int map_copy_run(const struct fs_info *fs, u64 logical, u64 len, int copy,
		 struct copy_loc *out, u64 *run);
/*
 * Read len bytes of a copy (map_copy()'s loc) for logical: 0, -ENODEV
 * (device missing), or -EIO (beyond the device's end, read error), with
 * fs_errmsg() set.
 */
int copy_pread(struct fs_info *fs, const struct copy_loc *loc, void *buf, u64 len, u64 logical);
/*
 * RAID5/6 copy k (1: from P, 2: from Q) of [logical, logical + len), a
 * range of whole sectors in one stripe element: the row's other data
 * elements and the parity are read and the element computed (ISA-L's
 * xor_gen, pq_gen and GF(2^8) arithmetic, the kernel's polynomial).  0,
 * -ENODEV, -EIO or -EINVAL, with fs_errmsg() set.  Thread-safe.
 */
int copy_rebuild(struct fs_info *fs, u64 logical, int k, void *buf, u64 len);
/*
 * RAID5/6 chunk m: its rows (stripe elements per device), and row `row`'s
 * parity recomputed from its data elements and compared with the stored P
 * (and Q) sector by sector: bit s of *p_bad (*q_bad) is set when sector s
 * differs (sectors a superblock copy overlaps on some device are left
 * out: superblocks are written per device).  0, -ENODEV (a device of the
 * chunk is missing: nothing compared), -EIO, -EOPNOTSUPP (more than 64
 * sectors per element) or -ENOMEM, with fs_errmsg() set.
 */
u64 raid56_rows(const struct chunk_map *m);
int raid56_verify_row(struct fs_info *fs, const struct chunk_map *m, u64 row, u64 *p_bad,
		      u64 *q_bad);

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
