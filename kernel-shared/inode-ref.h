/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inode back references (Documentation/format.rst, "Refs"): INODE_REF
 * (ino, 12, parent dir) holds the names ino has in that directory, packed
 * {index, name_len, name} entries; INODE_EXTREF (ino, 13,
 * btrfs_extref_hash(parent, name)) holds {parent, index, name_len, name}
 * entries, several when their hashes collide (incompat EXTENDED_IREF: the
 * kernel moves a ref there when its INODE_REF cannot grow).  The entry
 * parsers are bounds checked and never read past the item; the writers work
 * inside a transaction.  The directory side is kernel-shared/dir-item.h.
 */
#ifndef EXTCRYPT_INODE_REF_H
#define EXTCRYPT_INODE_REF_H

#include <stdbool.h>
#include "kernel-shared/ondisk.h"

struct fs_info;
struct root_ref;
struct trans;
struct trans_root;

/*
 * Length of the entry at pos of a packed INODE_REF (ext false) or
 * INODE_EXTREF (ext true) item of size bytes, or 0 if no whole entry is
 * there.
 */
u32 inode_ref_entry_len(const u8 *item, u32 size, u32 pos, bool ext);

/*
 * The INODE_REF entry with index: 0 with its offset in *pos and length in
 * *len, or 1 if there is none before the end or an entry cut short.
 */
int inode_ref_find_index(const u8 *item, u32 size, u64 index, u32 *pos, u32 *len);

/*
 * The INODE_EXTREF entry of parent named name (nl bytes): 0 with *pos and
 * *len, or 1 if there is none before the end or an entry cut short.
 */
int inode_extref_find(const u8 *item, u32 size, u64 parent, const void *name, u32 nl,
		      u32 *pos, u32 *len);

/*
 * The first back reference of ino (its first INODE_REF, else its first
 * INODE_EXTREF): 0 with the parent directory and the name (name holds
 * BTRFS_NAME_LEN bytes), 1 if ino has none, -EUCLEAN if the entry is cut
 * short or its name is longer than BTRFS_NAME_LEN, or <0.
 */
int inode_ref_first(struct fs_info *fs, const struct root_ref *root, u64 ino, u64 *parent,
		    char *name, u16 *name_len);

/*
 * Add the INODE_EXTREF entry {parent, index, name} of ino, appended to the
 * item at the name's hash if there is one.  0, or <0 (-ENAMETOOLONG beyond
 * BTRFS_NAME_LEN).
 */
int inode_extref_insert(struct trans *t, struct trans_root *root, u64 ino, u64 parent,
			u64 index, const void *name, u32 nl);
/*
 * Remove ino's INODE_EXTREF entry of parent named name, or the whole item
 * if it is the only entry.  0, 1 if there is no such item or entry, or <0.
 */
int inode_extref_remove(struct trans *t, struct trans_root *root, u64 ino, u64 parent,
			const void *name, u32 nl);

#endif
