/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Directory items (Documentation/format.rst): DIR_ITEM (dir, 84, name
 * hash), where entries whose names collide share one item, packed one after
 * another, and DIR_INDEX (dir, 96, index), one entry each.  An entry is a
 * struct btrfs_dir_item, then name_len name bytes, then data_len data bytes
 * (XATTR_ITEM uses the same layout).  The name hash is btrfs_name_hash()
 * of kernel-shared/hash.h.
 *
 * Parsing is bounds checked: an entry that runs past its item is an error,
 * never read.  The writers work inside a transaction.
 */
#ifndef EXTCRYPT_DIR_ITEM_H
#define EXTCRYPT_DIR_ITEM_H

#include <stddef.h>
#include "kernel-shared/ondisk.h"

struct btrfs_path;
struct fs_info;
struct root_ref;
struct trans;
struct trans_root;

/* The packed item does not hold the name (dir_item_find(), dir_item_remove()). */
#define DIR_ITEM_NO_ENTRY 2

/*
 * Length of the entry at pos of a packed item of size bytes (header, name
 * and data), or 0 if no whole entry is there.
 */
u32 dir_entry_len(const u8 *item, u32 size, u32 pos);

/*
 * Find the entry named name (nl bytes) in the packed item (size bytes at
 * item).  Returns 0 with its offset in *pos and its length in *len,
 * DIR_ITEM_NO_ENTRY if absent, or -EUCLEAN if an entry before it runs past
 * the item.
 */
int dir_item_find(const u8 *item, u32 size, const void *name, u32 nl, u32 *pos, u32 *len);

/*
 * Write a dir entry (no data) into buf, which must hold
 * sizeof(struct btrfs_dir_item) + nl bytes.  Returns its length.
 */
u32 dir_entry_fill(u8 *buf, const struct btrfs_key *location, u64 transid, u8 type,
		   const void *name, u32 nl);

/*
 * Insert an item holding one entry at key, or append the entry to the
 * item already there (a name hash collision).  Returns 0 or <0.
 */
int item_append_entry(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		      const u8 *entry, u32 len);
/*
 * Cut the entry at [pos, pos + len) out of the item at p (from
 * search_slot_mod(..., -1)), or delete the item if the entry is all of it;
 * releases p.
 */
int item_cut_entry(struct trans *t, struct trans_root *root, struct btrfs_path *p, u32 pos,
		   u32 len);
/* Locate an entry in a packed item: 0 with *pos and *len, or not 0. */
typedef int (*item_entry_find_fn)(const u8 *item, u32 size, const void *arg, u32 *pos,
				  u32 *len);
/*
 * Cut the entry find() locates out of the item at key (item_cut_entry()).
 * Returns 0, 1 if there is no item at key, DIR_ITEM_NO_ENTRY if find()
 * does not locate it, or <0.
 */
int item_remove_entry(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		      item_entry_find_fn find, const void *arg);

/* Add entry (len bytes, named name) to dir's DIR_ITEM at the name's hash. */
int dir_item_insert(struct trans *t, struct trans_root *root, u64 dir, const void *name,
		    u32 nl, const u8 *entry, u32 len);
/* The DIR_INDEX item of dir at index: entry (len bytes).  0, -EEXIST, or <0. */
int dir_index_insert(struct trans *t, struct trans_root *root, u64 dir, u64 index,
		     const u8 *entry, u32 len);
/*
 * Remove the entry named name from dir's DIR_ITEM.  Returns 0, 1 if there
 * is no DIR_ITEM at the name's hash, DIR_ITEM_NO_ENTRY if the item does not
 * hold the name (or an entry runs past it), or <0.
 */
int dir_item_remove(struct trans *t, struct trans_root *root, u64 dir, const void *name,
		    u32 nl);

/*
 * Look up name in directory dir: 0 with the entry's location key and type,
 * 1 if absent, <0 on error (a truncated entry is -EUCLEAN).
 */
int dir_lookup(struct fs_info *fs, const struct root_ref *root, u64 dir,
	       const char *name, size_t name_len, struct btrfs_key *location, u8 *type);

#endif
