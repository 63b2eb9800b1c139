/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Filesystem-level lookups on top of the tree search: inodes, names, paths.
 * All return 0 on success, 1 if the thing looked for does not exist, or a
 * negative errno (fs_errmsg(fs) set) on corruption or I/O errors.
 */
#ifndef EXTCRYPT_FS_WALK_H
#define EXTCRYPT_FS_WALK_H

#include "kernel-shared/ctree.h"
#include "kernel-shared/dir-item.h"

/* Read the INODE_ITEM of ino in tree root. */
int inode_lookup(struct fs_info *fs, const struct root_ref *root, u64 ino,
		 struct btrfs_inode_item *out);

/*
 * Path of ino inside its subvolume, from its first INODE_REF or INODE_EXTREF
 * up to the subvolume's root directory, written as "/a/b" into buf.  Names
 * are raw bytes (ciphertext in encrypted directories).
 */
int inode_path(struct fs_info *fs, const struct root_ref *root, u64 ino,
	       char *buf, size_t len);

/*
 * Resolve a path inside the image, starting at the FS tree (5) root
 * directory and following subvolume entries.  Stores the tree and inode
 * reached.
 */
int path_lookup(struct fs_info *fs, const char *path, struct root_ref *root_out,
		u64 *ino_out);

/* Like path_lookup(), starting at directory dir of tree start. */
int path_lookup_from(struct fs_info *fs, const struct root_ref *start, u64 dir,
		     const char *path, struct root_ref *root_out, u64 *ino_out);

/* Root directory inode of a subvolume tree (root_dirid of its ROOT_ITEM). */
int subvol_root_dir(struct fs_info *fs, u64 tree_id, u64 *dirid);

#endif
