/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The write side of the image engine (Documentation/design.rst section 3):
 * transaction.c's transactions, opening an image for writing, and image
 * writes.  Changing a tree inside a transaction is ctree-mod.h.
 *
 * A transaction collects every change in memory: tree blocks are copied on
 * write into newly allocated locations, extent reference changes are queued,
 * and nothing the committed superblock can reach is ever overwritten.  Only
 * data written through the pipeline goes to the image before commit, and it
 * goes to space that is free in the committed generation.  trans_commit()
 * applies the queued reference changes to the extent, free-space and csum
 * trees, writes every dirty block (both DUP copies), flushes, then writes
 * the superblocks with generation + 1 — so a crash at any write leaves the
 * previous generation intact.
 */
#ifndef EXTCRYPT_TRANSACTION_H
#define EXTCRYPT_TRANSACTION_H

#include <errno.h>
#include <sys/types.h>
#include "kernel-shared/ctree.h"

struct space_map;
struct ref_queue;
struct chunk_state;

/* A tree this transaction has changed or may change. */
struct trans_root {
	struct root_ref ref;	/* current root; updated by COW / split / collapse */
	u64 last_snapshot;	/* from its ROOT_ITEM: blocks older may be shared */
	bool dirty;		/* ROOT_ITEM (or superblock pointer) needs updating */
};

struct trans {
	struct fs_info *fs;
	u64 transid;

	struct trans_root *roots;
	size_t nr_roots, cap_roots;

	struct tree_block **dirty;	/* blocks written at commit, each holding a ref */
	size_t nr_dirty, cap_dirty;

	struct ref_queue *refs;		/* extent reference changes not yet applied */
	struct space_map *space;	/* per block-group allocation bitmaps */
	struct chunk_state *chunks;	/* chunks allocated or removed (chunk-alloc.h) */

	s64 bytes_used_delta;		/* superblock bytes_used */
	/* Told about every extent freed at commit (blocks to wipe later); optional. */
	void (*on_free)(u64 start, u64 len, void *arg);
	void *on_free_arg;
	bool aborted;
	/*
	 * One commit of a longer job (the conversion engine's batches): the
	 * block groups it empties are kept and listed in fs->emptied_bgs; the
	 * job's last commit, made without this flag, removes them
	 * (space_remove_empty()).
	 */
	bool keep_emptied;
	int root_err;			/* why the last trans_get_root() failed */
};

/*
 * Open an image for writing: O_RDWR, an exclusive flock, refuse an image the
 * running kernel has mounted (directly or through a loop device) and one with
 * an unreplayed log; with simple quotas, read their mode (fs->qgroup_mode)
 * so that new data extents get owner refs.  Returns 0 or a negative
 * errno with errbuf (512 bytes) describing the reason; -EBUSY for locked or
 * mounted images.
 */
int open_image_rw(const char *path, struct fs_info **out, char *errbuf);
/*
 * The same with the filesystem's other devices (--device): each is opened
 * O_RDWR, locked and checked like the image.  A device not given, a RAID5/6
 * chunk (kernel-shared/volumes.h) are refused with -EOPNOTSUPP.
 * verify_follows: see struct open_args (the caller runs check's rules over
 * every block before its first write).
 */
int open_image_rw_devices(const char *path, const char *const *devices, int nr_devices,
			  bool verify_follows, struct fs_info **out, char *errbuf);

/*
 * Whether the kernel is using the image open at fd (path for messages): a
 * block device that is mounted, or a file backing a loop device that is
 * mounted.  Returns 0, or -EBUSY with why (len bytes) set.
 */
int image_check_not_mounted(int fd, const char *path, char *why, size_t len);

/* Start a transaction on an image opened with open_image_rw(). */
int trans_begin(struct fs_info *fs, struct trans **out);

/*
 * Commit: apply queued refs, write dirty blocks, fdatasync, write every
 * superblock copy.  Frees the transaction whether it succeeds or not.
 * Returns 0 or a negative errno (fs_errmsg(fs) set); on failure the image still
 * holds the previous generation unless the superblock writes themselves
 * failed part way (then the copies that were written are valid and newer).
 */
int trans_commit(struct trans *t);

/*
 * Point every backup root slot at the current trees and rewrite the
 * superblocks (same generation): after encrypt wiped the old trees, no
 * backup may lead to blocks that held plaintext.
 */
int reset_backup_roots(struct fs_info *fs);

/* True while the transaction has changed nothing. */
bool trans_is_empty(const struct trans *t);

/* Drop all changes; nothing was written to the committed trees. */
void trans_abort(struct trans *t);

/*
 * The current root of tree objectid inside the transaction, loaded on first
 * use.  The pointer stays valid until commit/abort.  Returns NULL with
 * fs_errmsg(fs) set if the tree does not exist or cannot be read;
 * trans_root_err(t) is then the negative errno.
 */
struct trans_root *trans_get_root(struct trans *t, u64 objectid);
/* The errno of the last trans_get_root() that returned NULL. */
static inline int trans_root_err(const struct trans *t)
{
	return t->root_err ? t->root_err : -EIO;
}

/* Mark a freshly allocated or COWed block dirty (the transaction takes a ref). */
int trans_add_dirty(struct trans *t, struct tree_block *b);

/* Forget a dirty block freed before commit (drops the transaction's ref). */
void trans_drop_dirty(struct trans *t, struct tree_block *b);

/*
 * Image writes go through here so fault injection can cut any of them:
 * dev_pwrite() on device dev (index in fs->devs), image_pwrite() on the
 * image itself (devs[0]).  -ENODEV for a missing device.
 */
int dev_pwrite(struct fs_info *fs, int dev, const void *buf, size_t len, u64 offset);
int image_pwrite(struct fs_info *fs, const void *buf, size_t len, u64 offset);
/* pwrite(2) with the same fault-injection hook, for writers outside fs_info (the pipeline). */
ssize_t fault_pwrite(int fd, const void *buf, size_t count, off_t offset);
/* fdatasync() every device of fs: 0 or a negative errno with fs_errmsg(fs) set. */
int fs_sync_devices(struct fs_info *fs);

/*
 * Make a logical range read as zeros in every copy (kernel-shared/volumes.h:
 * DUP, RAID1*, RAID10 mirrors, split at stripe elements): punch a hole in
 * an image file (it stays sparse), or write zeros to a device.  Returns 0 or <0.
 */
int wipe_logical(struct fs_info *fs, u64 logical, u64 len);

/*
 * wipe_logical() of a range of device dev (index in fs->devs), around its
 * superblock copies: a removed chunk's old stripes, unallocated space.
 */
int wipe_physical(struct fs_info *fs, u32 dev, u64 phys, u64 len);

/*
 * Write len bytes at a logical address to every copy, each on its device
 * (split at stripe elements, as wipe_logical()).
 */
int write_logical(struct fs_info *fs, u64 logical, const void *buf, u64 len);

#endif
