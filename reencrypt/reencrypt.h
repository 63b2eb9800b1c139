/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The re-encryption engine: encrypt / decrypt of whole subvolumes in place
 * (Documentation/format.rst sections 5-9), one engine whose direction is a mode.  The
 * name follows cryptsetup's "reencrypt", which likewise encrypts, decrypts
 * or changes the key of a device in place ("convert" in btrfs-progs means
 * ext4 to btrfs).
 *
 * Order makes every commit a valid image: encrypt does regular files and
 * symlinks first (an encrypted file in a plain directory is fine), then
 * directories deepest first (an encrypted directory never holds a plain
 * child).  decrypt runs the reverse: directories shallowest first, then
 * files.  rekey cannot avoid pairs of a directory and an entry under
 * different keys before it is done (the kernel refuses to open such an
 * entry); it goes directory by directory, depth first, each directory
 * followed by its files, so that only the files of the directory at hand
 * and the subdirectories not yet reached from the directories done are such
 * pairs.  Each inode (or directory with its entries) changes within one
 * transaction, so an interrupted run leaves whole inodes done or not, each
 * wholly under one key, and running the command again finishes the job.
 */
#ifndef EXTCRYPT_REENCRYPT_H
#define EXTCRYPT_REENCRYPT_H

#include "kernel-shared/transaction.h"
#include "crypto/fscrypt-keys.h"

/*
 * What a run turns the selected inodes into.  The mode is looked up once in
 * a table (reencrypt_mode_ops()); the engine asks the table what it reads and
 * writes and never tests the mode itself.
 */
enum reencrypt_mode {
	REENCRYPT_ENCRYPT,	/* plain -> encrypted */
	REENCRYPT_DECRYPT,	/* encrypted -> plain */
	REENCRYPT_REKEY,	/* encrypted under mk -> encrypted under new_mk */
};

/* The order of the inodes of a tree (see above). */
enum reencrypt_order {
	REENCRYPT_FILES_THEN_DIRS,	/* files, then directories deepest first */
	REENCRYPT_DIRS_THEN_FILES,	/* directories shallowest first, then files */
	REENCRYPT_BY_DIRECTORY,		/* depth first, each directory with its files */
};

struct reencrypt_mode_ops {
	const char *name;	/* "encrypt", "decrypt", "rekey" */
	bool src_encrypted;	/* the inodes to do are encrypted now: read them with the key */
	bool dst_encrypted;	/* they end encrypted: new nonces, contexts, encrypted names */
	bool new_key;		/* reads under mk, writes under new_mk */
	enum reencrypt_order order;
	/*
	 * Enclosing subvolumes before nested ones (decrypt, rekey), else nested
	 * ones first (encrypt): no commit leaves an encrypted directory naming
	 * a plain subvolume.
	 */
	bool outer_first;
	/*
	 * Plain results: a file whose data is one small regular extent gets
	 * it back inline, as mkfs.btrfs --rootdir stores it (decrypt undoes
	 * encrypt's move of inline data out of the tree).
	 */
	bool reinline;
};

/* The table entry of a mode, or NULL for a value outside the enum. */
const struct reencrypt_mode_ops *reencrypt_mode_ops(enum reencrypt_mode mode);

/* A directory subtree to convert: the directory and everything below it. */
struct reencrypt_path {
	u64 tree;
	u64 dir;
};

struct reencrypt_opts {
	enum reencrypt_mode mode;
	const struct fscrypt_master_key *mk;	/* the key the inodes are under now (encrypt: to be) */
	const struct fscrypt_master_key *new_mk;	/* rekey: the key they end under */
	u8 contents_mode;	/* FSCRYPT_MODE_AES_256_XTS */
	u8 filenames_mode;	/* FSCRYPT_MODE_AES_256_CTS */
	u8 policy_flags;	/* padding */
	bool keep_policy;	/* rekey: each inode keeps its modes and flags (the three above unused) */
	const u64 *subvols;	/* trees to convert; NULL/0: every subvolume */
	size_t nr_subvols;
	const struct reencrypt_path *paths;	/* --path selections (with or without subvols) */
	size_t nr_paths;
	bool dry_run;
	bool wipe;		/* zero freed blocks that held plaintext (encrypt) or old ciphertext (rekey) */
	u64 batch_bytes;	/* commit after this much data (0: 256 MiB) */
	unsigned int threads;
	void (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
};

struct reencrypt_subvol_stats {
	u64 tree;
	u64 inodes, dirs, files, symlinks, extents, bytes, names;
};

struct reencrypt_stats {
	struct reencrypt_subvol_stats *subvols;
	size_t nr_subvols;
	u64 inodes, extents, bytes, bytes_total, commits, wiped_bytes;
	/*
	 * The preflight's space figures: the data its copies hold at once at
	 * the peak, the free and allocatable data space, and about how much
	 * --grow would add (0: none needed).
	 */
	u64 space_needed, space_available, grow_bytes;
	bool incompat_changed;
};

/*
 * Run the conversion.  Returns 0, or a negative errno with fs_errmsg(fs) set:
 * -EINVAL for a mode outside the table or a rekey without two different keys,
 * -EKEYREJECTED when an inode is encrypted with another key, -ENOSPC when
 * the image lacks room (checked before the first write), -EOPNOTSUPP for
 * content the tool refuses, -EUCLEAN for corruption.
 */
int reencrypt_image(struct fs_info *fs, const struct reencrypt_opts *o,
		    struct reencrypt_stats *st);
void reencrypt_stats_free(struct reencrypt_stats *st);

#endif
