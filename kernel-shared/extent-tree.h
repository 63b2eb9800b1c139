/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Extent allocation and reference counting for the write engine.
 *
 * Reference changes are queued during the transaction (struct ref_queue) and
 * applied to the extent tree at commit, in a loop, because applying them
 * copies extent-tree blocks on write, which queues further changes.  Space
 * freed in a transaction is never reused by it: the committed generation may
 * still point there.
 */
#ifndef EXTCRYPT_EXTENT_TREE_H
#define EXTCRYPT_EXTENT_TREE_H

#include "kernel-shared/transaction.h"
#include "kernel-shared/backref.h"

struct ref_change {
	u64 bytenr;
	u64 num_bytes;
	enum ref_kind kind;
	u64 root;		/* TREE_BLOCK, DATA */
	u64 parent;		/* SHARED_* */
	u64 objectid;		/* DATA: inode */
	u64 offset;		/* DATA: backref offset (wrapping) */
	s64 delta;		/* +n adds references, -n drops them */
	/* For a newly allocated tree block: its level (the first key is read at apply time). */
	int level;
	bool new_extent;	/* create the extent item (fresh allocation) */
	u64 generation;
	u64 set_flags;		/* extent item flags to set (FULL_BACKREF) */
	u64 owner;		/* new data extent, simple quotas: its owner (0: root) */
};

/*
 * The owner a data extent's EXTENT_OWNER_REF names (simple quotas), as the
 * transaction's extent tree has it: 0 with *owner (0 when it has none), or
 * <0.
 */
int extent_owner(struct trans *t, u64 bytenr, u64 num_bytes, u64 *owner);

/* Queue a reference change.  Returns 0 or -ENOMEM. */
int queue_ref(struct trans *t, const struct ref_change *rc);

/*
 * Allocate a new tree block of `level` for root (metadata block groups),
 * initialise its header (bytenr, fsid, chunk tree uuid, generation, owner,
 * level, backref revision) and queue its extent item with a TREE_BLOCK_REF.
 * The block is dirty and returned with one reference for the caller.
 */
int alloc_tree_block(struct trans *t, struct trans_root *root, int level,
		     struct tree_block **out);

/*
 * Account for copying `old` to `cow` in root: shared-block handling
 * (FULL_BACKREF conversion, child reference increments) and dropping root's
 * reference on `old`, freeing it when that was the last one.
 */
int cow_update_refs(struct trans *t, struct trans_root *root,
		    struct tree_block *old, struct tree_block *cow);

/*
 * A block the tree no longer references (merged away, emptied, old root
 * collapsed): drop root's reference.  Dirty blocks allocated in this
 * transaction are released at once; committed ones are pinned until commit.
 */
int free_tree_block(struct trans *t, struct trans_root *root, struct tree_block *b);

/*
 * Reserve num_bytes in a data block group.  Returns 0 with *bytenr set,
 * -ENOSPC (fs_errmsg(fs) says how much is free), or another negative errno.
 * The caller queues the references (REF_DATA with new_extent on the first).
 */
int alloc_data_extent(struct trans *t, u64 num_bytes, u64 *bytenr);

/*
 * Apply every queued reference change to the extent tree, block group items,
 * the free-space tree and (for freed data extents) the csum tree, until the
 * queue is empty.  Called by trans_commit().
 */
int apply_ref_queue(struct trans *t);

/* True while reference changes wait to be applied. */
bool queue_pending(const struct trans *t);

void ref_queue_free(struct ref_queue *q);

#endif
