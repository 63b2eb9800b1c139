/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The restore engine: extract the files of an image into a directory of the
 * host without a kernel, decrypting what is encrypted when its key is given.
 * The command (cmds/restore.c) parses options, calls restore_image() and
 * reports.
 *
 * All file data goes through the pipeline (crypto/extent-io): csums of the
 * stored bytes are verified before decryption.  Holes stay holes (only
 * extents are written, then the size is set), hard links stay hard links,
 * symlinks, modes, owners (as root), times and xattrs are kept.
 *
 * Work is shared by --threads workers through a queue of directory jobs: a
 * job goes through one directory DIR_BATCH entries at a time, creating them
 * relative to an fd of the directory.  Subdirectories are created at once
 * and queued as jobs of their own, newest first.  A job hands the rest of
 * its directory to the queue only when a worker is idle with nothing
 * queued: otherwise workers stay in different directories (creating in one
 * serialises on its inode lock) and near each other in the trees (the
 * block cache keeps its hits).  A directory counts what is left to do in it
 * (its jobs and its subdirectories); whoever brings that to zero sets its
 * mode and times, so they come after every child.  Each worker has its own
 * single-threaded pipeline for small runs; runs of more than one pipeline
 * chunk share one pipeline with all the threads.  Hard links: the first
 * worker to meet an inode creates it, the others wait for it and link.
 *
 * Containment: the image is hostile, so nothing it names may reach outside
 * the output directory.  Every inode is created relative to the fd of its
 * parent directory, with O_EXCL (files), mkdirat (directories), symlinkat or
 * mknodat, all of which fail on an existing name instead of following it:
 * an existing name (a duplicate entry in the image, or something already in
 * the output directory) is reported and that entry skipped.  Directories are
 * reopened beneath the output directory with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS (a component walk with O_NOFOLLOW where openat2 is
 * missing), and only if they are still the directory this run made (device
 * and inode number recorded at mkdirat).  A directory inode is restored once:
 * a second entry for it (a cycle, or a directory with two links) is reported
 * and skipped.  Metadata is set only on what this run created.
 */
#ifndef EXTCRYPT_RESTORE_H
#define EXTCRYPT_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include "kernel-shared/ctree.h"

struct fscrypt_master_key;

struct restore_params {
	struct fs_info *fs;
	/*
	 * The keys (none: no key): each inode, name and extent is decrypted
	 * with the one its context names, so an image cut in the middle of a
	 * rekey restores whole with the old and the new key.
	 */
	const struct fscrypt_master_key *const *mks;
	size_t nr_mks;
	u64 root_id;		/* the subvolume */
	const char *sel;	/* a path inside it to restore alone, or NULL */
	const char *outdir;	/* made if missing; every name goes beneath it */
	unsigned int threads;
	bool raw;		/* without a key: write ciphertext as stored */
	bool dry_run;		/* walk and count, create nothing */
};

/* What a run did. */
struct restore_stats {
	u64 files, dirs, symlinks, specials, bytes, skipped, failed, links_made;
	u64 enc_opened, enc_locked;	/* encrypted inodes a key opened, or none did */
};

/*
 * Restore p->root_id (or p->sel in it) into p->outdir.  Each file or
 * directory that cannot be restored is reported with one ERROR line and
 * counted in st->failed; the run goes on.  Returns 0, or a negative errno
 * that stopped the run, with its text in err (errlen bytes): -ENOENT for a
 * missing subvolume or path, the engine's errors otherwise.
 */
int restore_image(const struct restore_params *p, struct restore_stats *st, char *err,
		  size_t errlen);

#endif
