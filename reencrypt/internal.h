/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internals of the re-encryption engine, shared by its four files:
 *
 *   plan.c     selection and planning: which trees and inodes, in what
 *              order, the preflight (key and space) before any write
 *   data.c     file data: the extent map, copies through the data pipeline
 *              in batches, file extent items and their contexts, symlinks
 *   names.c    directories: entry names, DIR_ITEM/DIR_INDEX, back references
 *   driver.c   the mode table, transactions (batching, commit), inode
 *              contexts, the per-subvolume walk, the final wipe
 *
 * The direction is never tested as such: code asks c->ops (struct
 * reencrypt_mode_ops) whether the inodes to do are encrypted now and
 * whether they end encrypted, reads under c->src_mk and writes under
 * c->dst_mk (the same key unless the mode changes keys).
 */
#ifndef EXTCRYPT_REENCRYPT_INTERNAL_H
#define EXTCRYPT_REENCRYPT_INTERNAL_H

#include "reencrypt/reencrypt.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/inode.h"
#include "crypto/extent-io.h"
#include "data/read.h"
#include "common/containers.h"

struct inode_info {
	u64 ino;
	u32 mode;
	u64 flags;
	u64 parent;	/* directories: the parent directory */
	u32 depth;
	bool selected;	/* inside a --path selection (or the whole tree) */
};

/*
 * Old disk extent -> its converted copy, shared by every referencing item,
 * kept in c->map keyed by old (one key has several entries when copies are
 * private to an inode: owner_ino tells them apart).  Only extents that other
 * items may still reference stay in it once their file is done, so it grows
 * with the shared extents, not the image.
 */
struct extent_map_entry {
	u64 old, new_bytenr;
	u64 owner_ino;		/* 0: shared by all sharers; else private to this inode */
	u8 nonce[FSCRYPT_NONCE_SIZE];
	u32 visits;		/* items of the current file that use it */
	bool shared_leaf;	/* another tree may see one of them */
};

/*
 * A copy queued for the pipeline, run in batches before the commit: an old
 * extent to a new one, or (mem set) plaintext from memory to a new extent.
 */
/*
 * One extent copy: its read half is the file-data read path's
 * (data/read.h), csums verified where the old extent has them (a partly
 * written prealloc extent has csums for its written part only,
 * Documentation/format.rst 2.9, 6); the new csums are computed for every
 * sector and inserted where the old ones were present.
 */
struct pending_copy {
	u8 *mem;		/* owned; NULL: read from old */
	u64 old, new_bytenr, len;
	bool datasum, has_old_nonce, has_new_nonce;
	u8 old_nonce[FSCRYPT_NONCE_SIZE], new_nonce[FSCRYPT_NONCE_SIZE];
	struct data_read src;	/* without mem: where old is, its csums with datasum */
	u8 *new_sums;		/* with datasum */
	struct extent_io_csums vout;
};

struct range {
	u64 start, len;
};

/* Data extents a file's conversion allocates (reenc_file_allocs()). */
struct reenc_allocs {
	u64 *len;	/* each extent's length, in the order of allocation */
	u64 *old;	/* the old extent its conversion frees, or 0 */
	u64 *at;	/* reserved addresses (reenc_reserve_file()) */
	size_t nr, cap, next;	/* next: the first reserved one not yet taken */
	/* Decrypt puts the file back inline: its extent, and the metadata it takes. */
	u64 reinline_old, reinline_len, reinline_cost;
};

struct reenc {
	struct fs_info *fs;
	const struct reencrypt_opts *o;
	const struct reencrypt_mode_ops *ops;	/* what the mode reads and writes */
	const struct fscrypt_master_key *src_mk;	/* what encrypted inodes to do are under */
	const struct fscrypt_master_key *dst_mk;	/* what converted inodes end under */
	u8 contents_mode;	/* of the inode being converted (its extent contexts) */
	u8 *plain;		/* PLAIN_SCRATCH bytes of secret memory: names, symlink targets */
	struct reencrypt_stats *st;
	struct reencrypt_subvol_stats *sv;
	struct trans *t;
	struct extent_io *io;
	u64 batch, since_commit;
	bool batch_auto;	/* no size given: the preflight sizes it (plan.c) */
	bool all_subvols;
	struct u64map map;	/* old disk_bytenr -> struct extent_map_entry */
	struct pending_copy *pend;	/* queued */
	size_t nr_pend, cap_pend;
	u64 pend_bytes;
	struct pending_copy *fly;	/* with the workers */
	size_t nr_fly, cap_fly;
	struct extent_io_job *fly_jobs;
	size_t cap_jobs;
	struct range *freed;
	size_t nr_freed, cap_freed;
	u64 cur_tree;		/* the tree being converted */
	bool image_file;	/* every device an image file: the wipe punches all free space */
	struct wipe_queue *wipeq;	/* removed chunks' device space, wiped in the background */
	bool nbytes_changed;	/* the file being converted had inline data */
	struct { u64 inodes, extents, bytes; double secs; } shown;	/* at the last -v batch line */
	struct reenc_allocs resv;	/* the data extents of the file being converted */
	u64 meta_need;		/* metadata the job needs free (plan.c, metadata_need()) */
	u64 meta_free;		/* free metadata when the running transaction began; 0: not known */
	/*
	 * Decrypt: metadata the small files put back inline may still take
	 * (plan.c sets it, the replay and the run spend it in the same order).
	 */
	u64 reinline_budget;
};

/* Room for a name or a symlink target in plaintext between two keys. */
#define PLAIN_SCRATCH 8192

struct tree_job {
	u64 tree;
	u64 *sel;	/* selected directories; NULL: the whole tree */
	size_t nsel;
	u32 depth;
	bool outer_first;	/* enclosing subvolumes before nested ones */
};

/* driver.c */
int reenc_random_bytes(struct fs_info *fs, u8 *buf, size_t len);
/* Start a transaction unless one runs; 0 or <0. */
int reenc_begin(struct reenc *c);
/* Commit the running transaction, if it changed anything (the copies first). */
int reenc_commit(struct reenc *c);

/*
 * Whether the run converts inode ii (*todo), with its current context in
 * *ctx when it is encrypted: encrypted under src_mk with a source that is
 * encrypted, or plain with a plain source.  An inode under dst_mk is done;
 * one under any other key is -EKEYREJECTED.
 */
int reenc_inode_todo(struct reenc *c, struct trans_root *root, const struct inode_info *ii,
		     struct fscrypt_context_v2 *ctx, bool *todo);
/*
 * Give ino a fresh inode context under dst_mk (*ctx) and the ENCRYPT flag,
 * replacing old (its current context, or NULL); with keep_policy it keeps
 * old's modes and flags.
 */
int reenc_new_inode_ctx(struct reenc *c, struct trans_root *root, u64 ino,
			const struct fscrypt_context_v2 *old, struct fscrypt_context_v2 *ctx);
/* Take ino's inode context and ENCRYPT flag away. */
int reenc_clear_inode_ctx(struct reenc *c, struct trans_root *root, u64 ino);
/*
 * The inodes of a committed tree (*inodes, malloc'ed) and the selected ones
 * (sel: --path directories, none: all) in the mode's order (*order).
 */
int reenc_tree_inventory(struct reenc *c, u64 tree, const u64 *sel, size_t nsel,
			 struct inode_info **inodes, struct inode_info ***order, size_t *nr_order);

/*
 * New metadata chunks, in the running transaction, until the free metadata
 * space reaches c->meta_need or the device has no room (*free: what it
 * is then).  The preflight's replay does it first, and so does the run.
 */
int reenc_reserve_meta(struct reenc *c, u64 *free);

/* plan.c */
int reenc_list_inodes(struct fs_info *fs, const struct root_ref *root,
		      struct inode_info **out, size_t *nr);
void reenc_compute_depths(struct inode_info *v, size_t nr);
/*
 * The selected inodes of v in the order of REENCRYPT_BY_DIRECTORY: the
 * directories depth first, each followed by the files and symlinks whose
 * first link is in it, then the others.  *out (malloc'ed), *nr_out.
 */
int reenc_order_by_dir(struct inode_info *v, size_t nr, struct inode_info ***out,
		       size_t *nr_out);
int reenc_mark_selected(struct fs_info *fs, const struct root_ref *root, struct inode_info *v,
			size_t nr, const u64 *sel, size_t nsel);
int reenc_list_subvols(struct fs_info *fs, u64 **out, size_t *nr);
int reenc_all_refs_in_target(struct reenc *c, u64 bytenr, bool *all);
/*
 * Whether no file extent item anywhere reads the data extent at bytenr:
 * every reference, in any tree, is a PREALLOC item (a prealloc extent
 * never written to, shared by reflinks or snapshots).  Its bytes read as
 * zeros and carry no data csums.
 */
int reenc_extent_unwritten(struct reenc *c, u64 bytenr, u64 len, bool *unwritten);
int reenc_anything_encrypted(struct fs_info *fs, const u64 *trees, size_t nr, bool *any);
/*
 * Before any write: every context in the targets carries our key, and the
 * run's data copies fit (a replay of its allocations, room in plan.c).
 */
int reenc_preflight(struct reenc *c, const struct tree_job *jobs, size_t nr_jobs);
int reenc_plan_jobs(struct fs_info *fs, const struct reencrypt_opts *o,
		    const struct reencrypt_mode_ops *ops, const u64 *all, size_t nr_all,
		    struct tree_job **out, size_t *nr);

/* data.c */
/* Every queued copy done and its csums inserted. */
int reenc_flush_copies(struct reenc *c);
/* On the way out after an error: let the workers finish, forget the copies. */
void reenc_drop_copies(struct reenc *c);
int reencrypt_nondir(struct reenc *c, struct trans_root *root, const struct inode_info *ii);
/* The data extents the conversion of ino allocates, in order (data.c says which): *a. */
int reenc_file_allocs(struct reenc *c, struct trans_root *root, u64 ino, bool use_map,
		      struct reenc_allocs *a);
/*
 * Allocate them all now (c->resv), where the file's copies will take them:
 * *fits false, and nothing allocated, when they do not all fit.
 */
int reenc_reserve_file(struct reenc *c, struct trans_root *root, u64 ino, bool *fits);
/* After the file: reserved extents it did not take are free again. */
void reenc_unreserve(struct reenc *c);

/* names.c */
int reencrypt_dir(struct reenc *c, struct trans_root *root, const struct inode_info *ii);

#endif
