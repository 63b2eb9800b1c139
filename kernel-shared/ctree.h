/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The core types of the image engine and the read-only tree search of
 * ctree.c.
 *
 * Types shared by every module stay here: the open image (struct fs_info)
 * with its chunk map and block cache, verified tree blocks (struct
 * tree_block) and their header, leaf and node accessors, tree roots (struct
 * root_ref) and paths (struct btrfs_path).  ctree.c's API follows: key
 * search, item-by-item stepping, the key-range iterator, and root and item
 * lookups.  Opening images, the error text and block reads are disk-io.h;
 * the chunk map functions are volumes.h; tree modification is ctree-mod.h.
 *
 * No printing happens in kernel-shared/: failures are returned as negative
 * errno values and described in fs_errmsg(fs) (disk-io.h), which the command
 * layer turns into one "ERROR:" line.  Readers may share one fs_info between
 * threads: the block cache has its own lock and each thread has its own
 * error text in the handle (struct fs_errors).  The write engine is not
 * thread-safe: one thread only while a transaction runs.
 */
#ifndef EXTCRYPT_CTREE_H
#define EXTCRYPT_CTREE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include "common/containers.h"
#include "kernel-shared/ondisk.h"

/* Stripes a chunk may have here; a chunk item with more is refused by name. */
#define CHUNK_MAX_STRIPES	32

/*
 * One mapping of the chunk tree: every profile (volumes.h maps a logical
 * address to a (device, offset) per copy).  Stripe s lies on devid[s] at
 * byte physical[s]; the write engine (single device only) uses SINGLE and
 * DUP chunks, whose stripes are all on that device.
 */
struct chunk_map {
	u64 logical;
	u64 length;
	u64 type;
	u16 num_stripes;
	u16 sub_stripes;	/* RAID10: copies of each stripe (2) */
	u32 stripe_len;		/* bytes per stripe element (64 KiB) */
	u64 physical[CHUNK_MAX_STRIPES];
	u64 devid[CHUNK_MAX_STRIPES];
};

/*
 * One device of the filesystem: devs[0] is the image the command was given,
 * the others come from --device or, with fd -1, are devices the chunk items
 * name that were not given (missing: readers use other copies).
 */
struct fs_device {
	u64 devid;
	int fd;			/* -1: missing */
	const char *path;	/* NULL: missing */
	u64 size;		/* bytes */
	u64 generation;		/* of its superblock */
	u8 uuid[BTRFS_UUID_SIZE];	/* its superblock's dev_item.uuid (given devices) */
};

/*
 * A verified tree block.  The buffer is owned by the block cache: take a
 * reference with tree_block_get() (done by read_tree_block()) and drop it
 * with tree_block_put().  Readers must treat data[] as immutable.  refs is
 * accessed atomically (see disk-io.c).
 */
struct tree_block {
	u64 bytenr;
	u32 len;
	int refs;
	bool dirty;	/* written in the running transaction; private copy */
	u8 *data;
	/* cache bookkeeping */
	struct tree_block *hash_next;
	struct tree_block *lru_prev, *lru_next;
};

struct block_cache {
	pthread_mutex_t lock;	/* everything below and the blocks' LRU links */
	bool threaded;		/* lock taken: readers on several threads */
	struct tree_block **buckets;
	size_t nbuckets;
	size_t nr_cached;
	size_t max_cached;	/* blocks kept when unreferenced */
	struct tree_block *lru_head, *lru_tail;	/* unreferenced, head = newest */
	struct tree_block *spares;	/* evicted, for reuse; linked by hash_next */
	size_t nr_spares;
	size_t max_spares;
};

#define FS_ERRMSG_SIZE 512

/*
 * The error texts of one handle, one per thread that set one.  A thread's
 * slot is found by pthread_self() in a list that only grows while the
 * handle is open: slots are published with a release store and never move,
 * so readers walk the list without the lock; the lock serializes adding a
 * slot.  The first slot is part of the handle (the opening thread's, and
 * the only one a single-threaded command ever uses); the others are
 * allocated when a thread first fails.  If that allocation fails, the
 * thread writes the shared `lost` text instead: threads then may overwrite
 * each other's text, but every failing call still leaves one.
 * pthread_t values of exited threads may be reused by new ones, which then
 * inherit the slot: a text is only read after a failing call of the same
 * thread, so nobody sees another thread's stale text.
 */
struct fs_err_slot {
	pthread_t owner;
	struct fs_err_slot *next;
	char msg[FS_ERRMSG_SIZE];
};

struct fs_errors {
	pthread_mutex_t lock;		/* adding a slot */
	struct fs_err_slot *head;	/* newest first; ends with `first` */
	struct fs_err_slot first;
	char lost[FS_ERRMSG_SIZE];	/* threads without a slot (out of memory) */
};

/* A tree root as the root tree (or superblock) describes it. */
struct root_ref {
	u64 objectid;
	u64 bytenr;
	u64 generation;
	u8 level;
};

struct wipe_queue;

struct fs_info {
	int fd;				/* devs[0].fd */
	const char *path;		/* devs[0].path */
	u64 image_size;			/* devs[0].size */
	/* Every device (volumes.h); the data pipeline takes dev_fds[] (index = devs[] index). */
	struct fs_device *devs;
	int *dev_fds;
	u32 nr_devs;
	int super_mirror;		/* which copy was used */
	struct btrfs_super_block super;	/* verified raw copy */
	u64 generation;
	u32 nodesize;
	u32 sectorsize;
	u16 csum_type;
	u32 csum_size;
	u64 incompat;
	u64 compat_ro;
	u8 fsid[BTRFS_FSID_SIZE];
	u8 metadata_uuid[BTRFS_FSID_SIZE];	/* what tree block headers carry */
	u8 chunk_tree_uuid[BTRFS_UUID_SIZE];

	struct chunk_map *chunks;	/* sorted by logical */
	size_t nr_chunks;

	struct root_ref chunk_root;
	struct root_ref tree_root;

	struct block_cache cache;

	bool writable;			/* opened by open_image_rw() */
	bool writable_open;		/* being opened for writing (open_args.writable) */
	u64 sys_chunk_mismatch;		/* a system chunk whose array copy and item differ, or 0 */
	u64 alloc_hint[3];		/* where to look first: data, metadata, system */
	int qgroup_mode;		/* enum qgroup_mode at the last commit (qgroup.h) */
	/* Chunk allocation (chunk-alloc.h): may the image file grow, by how much it has. */
	bool may_grow;
	u64 grown_bytes;
	/*
	 * Device ranges of chunks the last commit removed, until the next
	 * trans_begin(); dev: the index in devs[].
	 */
	struct dev_range { u64 offset, len; u32 dev; } *freed_dev;
	size_t nr_freed_dev, cap_freed_dev;
	/* Block groups emptied by commits that kept them (trans.keep_emptied). */
	u64 *emptied_bgs;
	size_t nr_emptied_bgs, cap_emptied_bgs;
	/*
	 * Data block groups a job drains (space_drain_begin()), by start, with
	 * the bytes of the data they held that no commit has freed yet; and the
	 * smallest request a new chunk without growing could not serve since
	 * the device space last changed (0: none).
	 */
	struct drain_bg { u64 start, left; } *drain_bgs;
	size_t nr_drain_bgs;
	u64 drain_nochunk;
	u64 drain_meta;		/* metadata the job may add: room kept beside new data chunks */
	/* Ranges still to be wiped (wipe-queue.h): chunk_alloc() drains it first. */
	struct wipe_queue *wipeq;

	struct fs_errors errors;	/* fs_errmsg() texts, per thread */

	/* Bad copies met by readers that used another copy (volumes.h). */
	struct {
		pthread_mutex_t lock;
		struct bad_copy *v;
		size_t nr, cap;
		struct u64map seen;	/* logical | copy -> nothing */
	} bad;
};

/* A subvolume tree: the top level or a subvolume id (not the relocation trees). */
static inline bool is_subvol_tree(u64 id)
{
	return id == BTRFS_FS_TREE_OBJECTID ||
	       (id >= BTRFS_FIRST_FREE_OBJECTID && id <= BTRFS_LAST_FREE_OBJECTID);
}

/* Header accessors. */
static inline const struct btrfs_header *tb_header(const struct tree_block *b)
{
	return (const struct btrfs_header *)b->data;
}
static inline u32 tb_nritems(const struct tree_block *b)
{
	return le32_to_cpu(tb_header(b)->nritems);
}
static inline u8 tb_level(const struct tree_block *b)
{
	return tb_header(b)->level;
}
static inline u64 tb_generation(const struct tree_block *b)
{
	return le64_to_cpu(tb_header(b)->generation);
}
static inline u64 tb_owner(const struct tree_block *b)
{
	return le64_to_cpu(tb_header(b)->owner);
}
static inline u64 tb_flags(const struct tree_block *b)
{
	return le64_to_cpu(tb_header(b)->flags);
}

/* Leaf accessors (level 0); slot < nritems is the caller's duty. */
static inline const struct btrfs_item *tb_item(const struct tree_block *b, u32 slot)
{
	return (const struct btrfs_item *)(b->data + sizeof(struct btrfs_header)) + slot;
}
static inline void tb_item_key(const struct tree_block *b, u32 slot, struct btrfs_key *k)
{
	btrfs_disk_key_to_cpu(k, &tb_item(b, slot)->key);
}
static inline u32 tb_item_size(const struct tree_block *b, u32 slot)
{
	return le32_to_cpu(tb_item(b, slot)->size);
}
static inline u32 tb_item_offset(const struct tree_block *b, u32 slot)
{
	return le32_to_cpu(tb_item(b, slot)->offset);
}
static inline const u8 *tb_item_ptr(const struct tree_block *b, u32 slot)
{
	return b->data + sizeof(struct btrfs_header) + tb_item_offset(b, slot);
}

/* Node accessors (level > 0). */
static inline const struct btrfs_key_ptr *tb_ptr(const struct tree_block *b, u32 slot)
{
	return (const struct btrfs_key_ptr *)(b->data + sizeof(struct btrfs_header)) + slot;
}
static inline void tb_node_key(const struct tree_block *b, u32 slot, struct btrfs_key *k)
{
	btrfs_disk_key_to_cpu(k, &tb_ptr(b, slot)->key);
}
static inline u64 tb_node_blockptr(const struct tree_block *b, u32 slot)
{
	return le64_to_cpu(tb_ptr(b, slot)->blockptr);
}
static inline u64 tb_node_gen(const struct tree_block *b, u32 slot)
{
	return le64_to_cpu(tb_ptr(b, slot)->generation);
}

/*
 * A position in a tree: nodes[0] is the leaf.  Every level holds a reference
 * on its block; release with path_release().
 */
struct btrfs_path {
	struct tree_block *nodes[BTRFS_MAX_LEVEL];
	u32 slots[BTRFS_MAX_LEVEL];
	int root_level;
	u64 owner;
};

void path_release(struct fs_info *fs, struct btrfs_path *p);

/* Index of the first key >= key in a leaf (may be nritems); *exact if equal. */
u32 leaf_lower_bound(const struct tree_block *b, const struct btrfs_key *key, bool *exact);
/* Slot of the last pointer whose key <= key (0 if key precedes them all). */
u32 node_slot(const struct tree_block *b, const struct btrfs_key *key);

/*
 * Position p at the first item >= key in the tree rooted at root.
 * Returns 0 if an item with exactly this key was found, 1 if p points at the
 * next larger item (which may be past the end: then path_item_valid() is
 * false), or a negative errno.
 */
int search_slot(struct fs_info *fs, const struct root_ref *root,
		const struct btrfs_key *key, struct btrfs_path *p);
/*
 * Advance to the next item, crossing leaves.  Returns 0 when p points at an
 * item, 1 at the end of the tree, or a negative errno.
 */
int next_item(struct fs_info *fs, struct btrfs_path *p);
/* Step to the previous item.  Returns 0, 1 at the start of the tree, or <0. */
int prev_item(struct fs_info *fs, struct btrfs_path *p);

static inline bool path_item_valid(const struct btrfs_path *p)
{
	return p->nodes[0] && p->slots[0] < tb_nritems(p->nodes[0]);
}
static inline void path_key(const struct btrfs_path *p, struct btrfs_key *k)
{
	tb_item_key(p->nodes[0], p->slots[0], k);
}
static inline const u8 *path_ptr(const struct btrfs_path *p)
{
	return tb_item_ptr(p->nodes[0], p->slots[0]);
}
static inline u32 path_size(const struct btrfs_path *p)
{
	return tb_item_size(p->nodes[0], p->slots[0]);
}

/*
 * Every item of one tree with a key in [min, max], in key order, across
 * leaves: a plain range scan.
 *
 *	for (ret = key_iter_first(&it, fs, root, &min, &max); ret == 0;
 *	     ret = key_iter_next(&it)) {
 *		... it.key, it.ptr, it.size; it.path.nodes[0] is the leaf ...
 *	}
 *	key_iter_release(&it);
 *	if (ret < 0) ... error ...
 *
 * key_iter_first() and key_iter_next() return 0 with the iterator at an
 * item, 1 when no item of the range is left (past max or the end of the
 * tree), or a negative errno with fs_errmsg(fs) set (I/O, a corrupt block,
 * keys out of order).  After 1 or an error, do not call key_iter_next()
 * again.  it.ptr is valid until the next call or key_iter_release(), which
 * is needed after every key_iter_first() whatever it returned.  The
 * iterator holds a read path: the tree must not change while it runs, so
 * loops that modify the tree as they go search with search_slot_mod().
 */
struct key_iter {
	struct fs_info *fs;
	struct btrfs_path path;
	struct btrfs_key max;
	struct btrfs_key key;	/* the current item: its key, data and size */
	const u8 *ptr;
	u32 size;
};

int key_iter_first(struct key_iter *it, struct fs_info *fs, const struct root_ref *root,
		   const struct btrfs_key *min, const struct btrfs_key *max);
/* key_iter_first() over the keys (objectid, type, offset >= min_offset). */
int key_iter_type(struct key_iter *it, struct fs_info *fs, const struct root_ref *root,
		  u64 objectid, u8 type, u64 min_offset);
int key_iter_next(struct key_iter *it);
void key_iter_release(struct key_iter *it);

/*
 * Find the root of tree objectid: 1 (root tree) and 3 (chunk tree) come from
 * the superblock, the rest from the ROOT_ITEM in the root tree (the newest
 * one, whatever its key offset).  Returns 0, -ENOENT if absent, or <0.
 */
int find_root(struct fs_info *fs, u64 objectid, struct root_ref *out);

/* Copy of a ROOT_ITEM body (zero-extended when the item is the old short form). */
int read_root_item(struct fs_info *fs, u64 objectid, struct btrfs_root_item *ri,
		   struct btrfs_key *found_key);

/* read_root_item() in a given root tree (the write engine's current one). */
int read_root_item_in(struct fs_info *fs, const struct root_ref *tree_root, u64 objectid,
		      struct btrfs_root_item *ri, struct btrfs_key *found_key);

/*
 * Look up one item by exact key.  On success copies up to buflen bytes of the
 * item into buf, stores the item size in *size and returns 0; returns 1 if
 * absent, or a negative errno.
 */
int lookup_item(struct fs_info *fs, const struct root_ref *root,
		const struct btrfs_key *key, void *buf, u32 buflen, u32 *size);

#endif
