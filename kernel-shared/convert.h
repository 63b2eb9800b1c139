/* SPDX-License-Identifier: GPL-2.0 */
/*
 * encrypt / decrypt of whole subvolumes in place (format.md sections 5-9).
 *
 * Order makes every commit a valid image: encrypt does regular files and
 * symlinks first (an encrypted file in a plain directory is fine), then
 * directories deepest first (an encrypted directory never holds a plain
 * child).  decrypt runs the reverse: directories shallowest first, then
 * files.  Each inode (or directory with its entries) changes within one
 * transaction, so an interrupted run leaves whole inodes done or not, and
 * running the command again finishes the job.
 */
#ifndef EXTCRYPT_CONVERT_H
#define EXTCRYPT_CONVERT_H

#include "kernel-shared/transaction.h"
#include "crypto/fscrypt-keys.h"

/* A directory subtree to convert: the directory and everything below it. */
struct convert_path {
	u64 tree;
	u64 dir;
};

struct convert_opts {
	bool decrypt;
	const struct fscrypt_master_key *mk;
	u8 contents_mode;	/* FSCRYPT_MODE_AES_256_XTS */
	u8 filenames_mode;	/* FSCRYPT_MODE_AES_256_CTS */
	u8 policy_flags;	/* padding */
	const u64 *subvols;	/* trees to convert; NULL/0: every subvolume */
	size_t nr_subvols;
	const struct convert_path *paths;	/* --path selections (with or without subvols) */
	size_t nr_paths;
	bool dry_run;
	bool wipe;		/* zero freed blocks that held plaintext (encrypt) */
	u64 batch_bytes;	/* commit after this much data (0: 256 MiB) */
	unsigned int threads;
	void (*progress)(u64 done, u64 total, void *arg);
	void *progress_arg;
};

struct convert_subvol_stats {
	u64 tree;
	u64 inodes, dirs, files, symlinks, extents, bytes, names;
};

struct convert_stats {
	struct convert_subvol_stats *subvols;
	size_t nr_subvols;
	u64 inodes, extents, bytes, bytes_total, commits, wiped_bytes;
	bool incompat_changed;
};

/*
 * Run the conversion.  Returns 0, or a negative errno with fs_errmsg(fs) set:
 * -EKEYREJECTED when an inode is encrypted with another key, -ENOSPC when
 * the image lacks room (checked before the first write), -EOPNOTSUPP for
 * content the tool refuses, -EUCLEAN for corruption.
 */
int convert_image(struct fs_info *fs, const struct convert_opts *o, struct convert_stats *st);
void convert_stats_free(struct convert_stats *st);

#endif
