/* SPDX-License-Identifier: GPL-2.0 */
/*
 * disk-io.c: opening and closing an image (superblock copies, then the chunk
 * map through volumes.c), the per-thread error text (fs_errmsg(), fs_err()),
 * verified tree-block reads through the size-bounded block cache, and reads
 * of logical addresses.  The types it works on (struct fs_info, struct
 * tree_block, the block cache) are the core types of kernel-shared/ctree.h.
 */
#ifndef EXTCRYPT_DISK_IO_H
#define EXTCRYPT_DISK_IO_H

#include <stdbool.h>
#include <stddef.h>
#include "kernel-shared/ctree.h"

/*
 * The last error of this handle described in words, valid after a failing
 * call on it made by the same thread: each thread reading through one
 * handle has its own text (struct fs_errors in ctree.h); "" if this thread
 * has none.  Every negative errno the engine returns comes with a text here.
 */
const char *fs_errmsg(const struct fs_info *fs);
/* Forget the calling thread's error text of this handle (fs_errmsg() is ""). */
void fs_clear_err(struct fs_info *fs);
/*
 * Set up and free the error texts of a handle; open_image() and close_image()
 * do this.  For a struct fs_info made by hand (unit tests of modules that only
 * need the error texts of a handle).
 */
void fs_errors_init(struct fs_errors *e);
void fs_errors_free(struct fs_errors *e);
/* Set fs_errmsg(fs) from a format and return err. */
int fs_err(struct fs_info *fs, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The image is a metadata dump restored by btrfs-image (superblock flag
 * METADUMP or METADUMP_V2): it holds the trees but not the file data, so
 * data checksums cannot match.  The kernel and btrfs check skip data csum
 * verification on such images, and so do we (Documentation/format.rst).
 */
bool fs_is_metadump(const struct fs_info *fs);

/* Options for open_image(). */
struct open_args {
	int super_mirror;	/* -1: primary, falling back to none; 0..2 that copy */
	bool writable;		/* reserved for the write engine */
	/*
	 * With writable: the caller runs check's rules over every block before
	 * its first write (check_verify_image()), so the open applies only the
	 * superblock-level tree-checker rules, not its own walk of every block.
	 */
	bool verify_follows;
	size_t cache_bytes;	/* 0: default (64 MiB) */
	/*
	 * The filesystem's other devices (--device): each must carry the
	 * image's fsid and generation and a devid not given yet.  Devices
	 * not given are missing: reads use other copies where the profile
	 * has them (volumes.h).
	 */
	const char *const *devices;
	int nr_devices;
};

/*
 * Open an image file read-only, verify the chosen superblock, load the system
 * chunk array and the chunk tree.  Returns 0 or a negative errno; on failure
 * *out is NULL and errbuf (if not NULL, 512 bytes) holds the reason.
 */
int open_image(const char *path, const struct open_args *args,
	       struct fs_info **out, char *errbuf);
void close_image(struct fs_info *fs);

/*
 * Device devid's DEV_ITEM in the chunk tree the superblock names (what the
 * kernel writes into that device's superblock copy): 0, or -EUCLEAN when
 * there is none, or the error of reading the tree.
 */
int chunk_tree_dev_item(struct fs_info *fs, u64 devid, struct btrfs_dev_item *out);
/* The same in the chunk tree at chunk_root (a transaction's, for example). */
int dev_item_in(struct fs_info *fs, const struct root_ref *chunk_root, u64 devid,
		struct btrfs_dev_item *out);

/*
 * Read and verify a superblock copy at the given mirror index into sb.
 * Returns 0 if valid, -ENOENT if the copy lies beyond the end of the image,
 * -EUCLEAN (with errbuf set) if it is present but invalid, or -EIO.
 * Usable before the chunk tree is loaded (fs only needs fd and image_size).
 */
int read_super_copy(int fd, u64 image_size, int mirror,
		    struct btrfs_super_block *sb, char *errbuf, size_t errlen);

/*
 * Expectations a parent places on a child block; zero/NULL fields are not
 * checked.  level == -1 means "any level".
 */
struct block_check {
	int level;
	u64 generation;
	const struct btrfs_key *first_key;
	u64 owner;	/* 0: not checked */
};

/*
 * Read the tree block at logical address bytenr and verify it completely:
 * checksum, bytenr, fsid, level and generation against the parent, first key,
 * item offsets and sizes inside the block, key order.  Returns 0 or a
 * negative errno (-EUCLEAN for a corrupt block, -EIO for I/O); on error
 * fs_errmsg(fs) names the block and the reason.
 */
int read_tree_block(struct fs_info *fs, u64 bytenr,
		    const struct block_check *check, struct tree_block **out);
/*
 * Read every copy of a verified block b (DUP: both) and note each that fails
 * the checks read_tree_block() makes (note_bad_copy(), volumes.h), also the
 * copies a read never needed: for `check`.  Returns 0 or -ENOMEM.
 */
int verify_tree_block_copies(struct fs_info *fs, const struct tree_block *b,
			     const struct block_check *check);
/* Read a block without parent expectations and without structural checks
 * beyond the checksum failing: for dump-tree -b.  Returns like read_tree_block. */
int read_tree_block_raw(struct fs_info *fs, u64 bytenr, struct tree_block **out);
/*
 * A new, zeroed block at bytenr for the write engine (refs = 1) in *out,
 * replacing any stale cached copy.  Returns 0, -EBUSY if a reader still
 * holds a block at that address or -ENOMEM, with fs_errmsg(fs) set.
 */
int cache_new_block(struct fs_info *fs, u64 bytenr, struct tree_block **out);
/* Forget a cached block at bytenr if nobody holds it (after it is freed). */
void cache_forget(struct fs_info *fs, u64 bytenr);
/*
 * Readers are about to run on several threads: from now on the cache takes
 * its lock (without this call it is for one thread only).  Call before
 * starting them; it is never undone.
 */
void cache_set_threaded(struct fs_info *fs);
/* Another reference on a block the caller already holds one on. */
void tree_block_get(struct tree_block *b);
void tree_block_put(struct fs_info *fs, struct tree_block *b);

/* Data checksum of one buffer with the image's csum type (32-byte output). */
void fs_csum(const struct fs_info *fs, const void *data, size_t len, u8 *out);

/* Read bytes at a logical address (first mirror), bounds-checked against chunks. */
int read_logical(struct fs_info *fs, u64 logical, void *buf, u64 len);

#endif
