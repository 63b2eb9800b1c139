/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Chunk allocation and removal inside a transaction (Documentation/format.rst
 * 2.11, Documentation/design.rst 3): a new DATA, METADATA or SYSTEM chunk
 * from unallocated device space when no block group of the type has room,
 * sized like the kernel's; the removal of a block group a transaction left
 * empty; growing an image file when the device has no room left.
 *
 * Every item goes through the transaction (chunk and device items in the
 * chunk tree, device extents, block group item, free-space tree); the
 * superblock's copies (dev_item, sys_chunk_array, total_bytes, the chunk
 * root) change only when trans_commit() writes it.  On abort the chunk map
 * forgets the chunks the transaction added.  Functions return 0 or a
 * negative errno with fs_errmsg(fs) set.
 *
 * Profiles and device placement are kept behind struct chunk_profile and
 * dev_find_hole() (chunk-alloc.c): SINGLE and DUP on one device (which may
 * grow), and on several devices SINGLE, DUP, RAID0, RAID1, RAID1C3/4 and
 * RAID10 with the kernel's device choice (most room first).  RAID5/6 are
 * never written (open_image_rw_devices() refuses them).
 */
#ifndef EXTCRYPT_CHUNK_ALLOC_H
#define EXTCRYPT_CHUNK_ALLOC_H

#include "kernel-shared/transaction.h"

/*
 * A profile as the kernel's allocator sees it (its btrfs_raid_array): the
 * flag, stripes placed on each device, copies of each byte, sub_stripes,
 * and how many devices a chunk takes: at least devs_min, at most devs_max
 * (0: all that have room), a multiple of devs_increment.
 */
struct chunk_profile {
	u64 flag;		/* BTRFS_BLOCK_GROUP_DUP, ..., or 0 for SINGLE */
	u16 dev_stripes;
	u16 ncopies;
	u16 sub_stripes;
	u16 devs_min, devs_max, devs_increment;
};

/* The profile of a flags value, or NULL for the ones not supported here. */
const struct chunk_profile *chunk_profile_of(u64 flags);

/*
 * The kernel's size limits for a new chunk of `type` on a filesystem of
 * fs_bytes writable bytes: *max_stripe per device stripe, *max_chunk of
 * logical length (format.rst 2.11).
 */
void chunk_size_limits(u64 fs_bytes, u64 type, u64 *max_stripe, u64 *max_chunk);

/*
 * Allocate a chunk of `type` (DATA, METADATA or SYSTEM) with the profile
 * the filesystem uses for it, able to hold `need` contiguous bytes, and add
 * its block group to the transaction's space map.  Changes no tree (its
 * items wait for chunk_flush()), so it may run from inside any tree
 * change.  -ENOSPC when the devices have no room (and the image may not
 * grow, or there are several devices).
 */
int chunk_alloc(struct trans *t, u64 type, u64 need);

/*
 * Remove the chunk of an empty block group: chunk item, device extents
 * (on every device it has stripes on), device bytes_used, block group
 * item, free-space tree entries.  The chunk map keeps it until the commit.
 */
int chunk_remove(struct trans *t, u64 logical, u64 length);

/*
 * Unallocated space of the devices as of this transaction: *total bytes
 * (all devices) and the *largest contiguous hole of one device (either may
 * be NULL).
 */
int chunk_dev_unallocated(struct trans *t, u64 *total, u64 *largest);

/*
 * Call fn for every unallocated range of every device given (dev: its
 * index in fs->devs); stops at its first non-zero return.
 */
int chunk_for_each_unallocated(struct trans *t, int (*fn)(u32 dev, u64 start, u64 len, void *arg),
			       void *arg);

/*
 * Bytes of `type` that chunk allocation could still add, for preflight
 * checks: the unallocated space less `reserve` bytes kept back (for other
 * types), divided by the copies of the type's profile.  On several devices
 * an estimate: chunks taken in turn from the devices with the most room,
 * as the allocator does, holes not counted (the preflight's replay of the
 * real allocator is what decides).
 */
int chunk_available(struct trans *t, u64 type, u64 reserve, u64 *bytes);

/* Device bytes a new chunk of `type` would take by the size rule, holes permitting. */
int chunk_device_bytes(struct trans *t, u64 type, u64 *bytes);

/*
 * Grow the image file and the device so that `more` bytes beyond the
 * device's last allocated byte are unallocated.  -EOPNOTSUPP for a block
 * device or a filesystem of several devices.  The file grows at once (a longer file is consistent); the device
 * size changes with the commit.
 */
int chunk_grow_device(struct trans *t, u64 more);

/*
 * Items of allocated chunks (and the grown device size) go into the trees
 * here, at the commit, where no tree is being changed: chunk_alloc() only
 * makes the space usable.  chunk_pending() says whether some wait.
 */
int chunk_flush(struct trans *t);
bool chunk_pending(const struct trans *t);

/* Commit: put the chunk changes into the superblock copy being written. */
int chunk_commit_super(struct trans *t);
/*
 * Before anything of the commit is written: room in fs->freed_dev for the
 * device ranges of the chunks it removes, so that chunk_commit_done(), after
 * the superblocks, cannot fail (the ranges are what the wipe must clear).
 */
int chunk_commit_prepare(struct trans *t);
/* After the superblocks are written: forget removed chunks, note their device space. */
void chunk_commit_done(struct trans *t);
/* Abort: forget the chunks the transaction added. */
void chunk_abort(struct trans *t);
void chunk_state_free(struct chunk_state *cs);

#endif
