/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Free space of the block groups during a transaction: allocation bitmaps
 * (t->space), ranges pinned until the commit, and the accounting of
 * allocated and freed ranges.  Functions return 0 or a negative errno with
 * fs_errmsg(fs) set unless said otherwise.
 */
#ifndef EXTCRYPT_SPACE_MAP_H
#define EXTCRYPT_SPACE_MAP_H

#include "kernel-shared/transaction.h"

/* Free bytes in metadata / data block groups, for ENOSPC checks up front. */
int space_free_bytes(struct trans *t, u64 type_flag, u64 *free_bytes);

/*
 * Call fn for every free range (as of the committed trees plus this
 * transaction) of the block groups with any of the type bits.  Stops at
 * fn's first non-zero return and returns it.
 */
int space_for_each_free(struct trans *t, u64 type,
			int (*fn)(u64 start, u64 len, void *arg), void *arg);

/* space_for_each_free() restricted to [start, start + len) of one block group. */
int space_free_subranges(struct trans *t, u64 start, u64 len,
			 int (*fn)(u64 start, u64 len, void *arg), void *arg);

/* The longest run of free bytes in one block group of the type: *largest. */
int space_largest_free(struct trans *t, u64 type, u64 *largest);

/*
 * Allocate extents of the n lengths one after the other in block groups
 * of the type, as n calls of space_alloc() would (first fit from the hint,
 * a new chunk when no group has room), their addresses into at[]: *fits.
 * All or nothing: when one finds no room, *fits is false and none stays
 * allocated (the chunks made on the way do; the hint is as it was).
 */
int space_alloc_all(struct trans *t, u64 type, const u64 *lens, size_t n, u64 *at, bool *fits);

/*
 * The range's bits in this transaction's bitmap back to free, with no
 * accounting: for a preflight that replays allocations in a transaction it
 * aborts, the space of a simulated commit's freed extents (reencrypt/room.c).
 */
int space_unmark(struct trans *t, u64 start, u64 len);

void space_map_free(struct space_map *sm);

/* The tree holding the block group items (block-group tree or extent tree), or NULL. */
struct trans_root *space_bg_root(struct trans *t);

/* A block group chunk_alloc() has just created: empty, usable at once. */
int space_map_add_group(struct trans *t, u64 start, u64 length, u64 flags);

/*
 * chunk_flush() has put the items of the new block group at start into the
 * trees: write its free-space tree entries, with the changes that waited.
 */
int space_group_flushed(struct trans *t, u64 start);

/*
 * At commit, once the reference changes are applied: remove the chunk of
 * every data or metadata block group that something freed in this
 * transaction, or in an earlier one listed in fs->emptied_bgs, and that is
 * now empty (never the last one of its type, never a system or new one),
 * as the kernel's cleaner does; the list is then cleared.  *removed says
 * whether any was.  A transaction with keep_emptied set removes none: it
 * adds the block groups it emptied to the list.
 */
int space_remove_empty(struct trans *t, bool *removed);

/*
 * A job that rewrites all the data (Documentation/design.rst 3, "Draining
 * block groups"): the data block groups that hold data now drain.  Until
 * space_drain_end(), allocations put new data in other groups, and in new
 * chunks made from unallocated space, before they use a group that still
 * holds some of that data, so that those empty and are removed.  Never
 * with mixed block groups.
 */
int space_drain_begin(struct trans *t);
void space_drain_end(struct fs_info *fs);

/*
 * The preflight's replay gave back len bytes at start as a commit would
 * (reencrypt/plan.c): a group whose data is all given back no longer
 * drains.  The run's commits do the same with what they freed.
 */
int space_drain_release(struct trans *t, u64 start, u64 len);

/* The block group holding bytenr: 0 with start/length/flags, or -ENOENT. */
int block_group_of(struct trans *t, u64 bytenr, u64 *start, u64 *length, u64 *flags);

/*
 * The block group type that serves allocations of `type`: on a filesystem
 * with mixed block groups (mkfs.btrfs --mixed), data and metadata share
 * groups of type DATA|METADATA; otherwise type itself.
 */
u64 space_group_type(const struct fs_info *fs, u64 type);

/*
 * Allocate len bytes (aligned to align) in a block group of the type: the
 * range is marked used in this transaction's bitmap; *out gets its address.
 * -ENOSPC when no block group of the type has room.
 */
int space_alloc(struct trans *t, u64 type, u64 len, u64 align, u64 *out);

/*
 * An extent of [start, start + len) was allocated (alloc) or freed: update
 * its block group's used counter and the free-space tree; a freed range is
 * pinned (not reused before the commit) and reported to t->on_free.
 */
int account_range(struct trans *t, u64 start, u64 len, bool alloc);

/* Write the used counters of block groups that changed. */
int update_block_groups(struct trans *t);

/* Whether some block group's used counter waits to be written. */
bool space_map_dirty(const struct trans *t);

#endif
