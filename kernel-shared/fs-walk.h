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

/* Room for one shown name (name_codec.show) with its NUL. */
#define NAME_SHOW_SIZE	256

/*
 * How paths treat the names of directory entries.  A NULL codec means the
 * stored bytes, which in an encrypted directory are ciphertext; a codec that
 * knows fscrypt (data/names.h) turns them into plaintext or no-key names.
 *   lookup: find the entry of directory dir called name (len bytes, one
 *           path component): 0 with its location key, 1 if absent, <0.
 *   show:   the name to show for the stored name (len bytes) of an entry of
 *           dir, NUL terminated into out (NAME_SHOW_SIZE bytes): its
 *           length, or <0.
 */
struct name_codec {
	int (*lookup)(const struct name_codec *nc, const struct root_ref *root, u64 dir,
		      const char *name, size_t len, struct btrfs_key *location);
	int (*show)(const struct name_codec *nc, const struct root_ref *root, u64 dir,
		    const u8 *stored, size_t len, char *out);
};

/*
 * Path of ino inside its subvolume, from its first INODE_REF or INODE_EXTREF
 * up to the subvolume's root directory, written as "/a/b" into buf.  Names
 * are shown through nc (NULL: raw bytes, ciphertext in encrypted
 * directories).
 */
int inode_path(struct fs_info *fs, const struct name_codec *nc, const struct root_ref *root,
	       u64 ino, char *buf, size_t len);

/*
 * Resolve a path inside the image, starting at the FS tree (5) root
 * directory and following subvolume entries, each component looked up
 * through nc (NULL: by its stored bytes).  Stores the tree and inode
 * reached.
 */
int path_lookup(struct fs_info *fs, const struct name_codec *nc, const char *path,
		struct root_ref *root_out, u64 *ino_out);

/* Like path_lookup(), starting at directory dir of tree start. */
int path_lookup_from(struct fs_info *fs, const struct name_codec *nc,
		     const struct root_ref *start, u64 dir, const char *path,
		     struct root_ref *root_out, u64 *ino_out);

/* Root directory inode of a subvolume tree (root_dirid of its ROOT_ITEM). */
int subvol_root_dir(struct fs_info *fs, u64 tree_id, u64 *dirid);

#endif
