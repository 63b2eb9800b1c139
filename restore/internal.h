/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside the restore engine (restore/): the state shared by its files.
 * restore.c runs a restore; tree.c walks directories and creates inodes
 * with the worker threads; data.c writes file data through the read path (data/read.h);
 * contain.c keeps every name inside the output directory and holds the
 * hard-link and directory tables.  See restore.h for the design.
 */
#ifndef EXTCRYPT_RESTORE_INTERNAL_H
#define EXTCRYPT_RESTORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include "common/containers.h"
#include "common/progress.h"
#include "crypto/extent-io.h"
#include "crypto/fscrypt-keys.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/disk-io.h"
#include "restore/restore.h"

#define DIR_BATCH	128	/* directory entries per job */

/* What a run did; one set per worker, added up at the end. */
struct counts {
	u64 files, dirs, symlinks, specials, bytes, skipped, failed, links_made;
	u64 enc_opened, enc_locked;	/* encrypted inodes a key opened, or none did */
};

/*
 * A file with several links.  Inode numbers repeat across subvolumes
 * (snapshots): links key on both.  The first worker to meet the inode
 * creates the file (LINK_PENDING until it is there); the others wait for it
 * and link to path.
 */
enum { LINK_PENDING, LINK_DONE, LINK_FAILED };

struct hardlink {
	u64 root, ino;
	int state;
	int err;		/* LINK_FAILED: why */
	char path[];
};

struct link_table {
	pthread_mutex_t lock;
	pthread_cond_t settled;	/* some entry left LINK_PENDING */
	struct u64map map;	/* link_key(root, ino) -> struct hardlink * */
};

/*
 * A directory being restored.  pending counts its jobs not yet finished and
 * its subdirectories not yet complete; at zero the directory is complete.
 */
struct rdir {
	struct rdir *parent;	/* NULL: the top */
	struct rdir *all_next;	/* list of every rdir, freed at the end */
	struct root_ref root;
	u64 ino;
	struct btrfs_inode_item ii;
	dev_t host_dev;		/* the host directory this run made for it */
	ino_t host_ino;
	int depth;
	bool set_meta;		/* false for outdir itself */
	bool encrypted, have_key;
	u8 names_mode;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE];
	unsigned int pending;	/* atomic */
	bool failed;		/* atomic: reported, keep its metadata unset */
	char path[];
};

struct dir_job {
	struct dir_job *next;
	struct rdir *dir;
	u64 index;		/* first DIR_INDEX key offset to read */
};

/* One entry read from a directory. */
struct dent {
	struct btrfs_key loc;
	char name[512];		/* as restored: plaintext or no-key form */
};

struct restore {
	struct fs_info *fs;
	/* The keys given (restore_params.mks): rs_key() picks one by identifier. */
	const struct fscrypt_master_key *mks[FSCRYPT_MAX_KEY_SET];
	size_t nr_mks;
	bool raw, dry_run, as_root;
	struct root_ref csum_root;
	bool have_csum_root;
	/* Runs of more than one chunk: one pipeline with every thread. */
	struct extent_io *shared_io;
	pthread_mutex_t shared_io_lock;
	struct link_table links;
	struct link_table dirs;	/* every directory inode met, by (root, ino) */
	int outfd;		/* the output directory; every path is beneath it */
	struct progress prog;	/* bytes restored (terminal line, --progress-fd) */
	u64 done_bytes;		/* atomic */
	size_t outlen;		/* strlen of its path, the prefix of every path */

	pthread_mutex_t lock;	/* the job queue and what follows */
	pthread_cond_t cv;	/* a job was queued, the run ended or stops */
	struct dir_job *jobs, *jobs_tail;
	struct rdir *all_dirs;
	unsigned int active;	/* workers inside a job */
	unsigned int idle;	/* workers waiting for a job */
	bool stop;		/* atomic: a fatal error, every worker ends */
	int fatal;
	char fatal_msg[FS_ERRMSG_SIZE];
};

struct worker {
	struct restore *r;
	struct extent_io *io;	/* single-threaded, for runs of one chunk */
	struct dent *batch;	/* DIR_BATCH entries */
	struct counts n;
	pthread_t thread;
	bool started;
};

/* Where an inode is created: name in dirfd, the full path for messages. */
struct target {
	int dirfd;
	const char *name;
	const char *path;
	int fd;			/* the inode itself, open; -1: use dirfd and name */
};

/* Errors of one entry: reported, and the run goes on with the others. */

/* ---- tree.c ---- */
/* Errors of one entry: reported, and the run goes on with the others. */
bool rs_recoverable(int err);
bool rs_stopping(struct restore *r);
/* Stop the run for err, keeping the first error and its text. */
void rs_set_fatal(struct restore *r, int err);
/* The inode context of ino, if it has one (1 if not). */
int rs_inode_ctx(struct restore *r, const struct root_ref *root, u64 ino,
		 struct fscrypt_context_v2 *ctx);
/* The given key with this identifier (a context's), or NULL. */
const struct fscrypt_master_key *rs_key(const struct restore *r, const u8 *identifier);
/* The per-file key of an encrypted directory or symlink, or 1 without its key. */
int rs_file_key(struct restore *r, const struct fscrypt_context_v2 *ctx, u8 *key);
/* Restore inode ino of root at t; a directory becomes a job of its own below parent. */
int rs_restore_entry(struct worker *w, struct rdir *parent, const struct root_ref *root,
		     u64 ino, const struct target *t, int depth);
/* Start directory ino (made at path, as host; NULL in a dry run) as a job of its own. */
int rs_start_dir(struct worker *w, struct rdir *parent, const struct root_ref *root, u64 ino,
		 const struct btrfs_inode_item *ii, const char *path, int depth, bool set_meta,
		 const struct stat *host);
int rs_workers_start(struct restore *r, struct worker *ws, unsigned int n,
		     const struct extent_io_params *params);
void rs_workers_free(struct restore *r, struct worker *ws, unsigned int n);
/* Run the jobs queued so far with n workers, the caller's thread being one. */
void rs_workers_run(struct restore *r, struct worker *ws, unsigned int n);

/* ---- data.c ---- */
/* Write the data of ino into fd: extents only, so holes stay holes. */
int rs_restore_data(struct worker *w, const struct root_ref *root, u64 ino, int fd,
		    bool datasum, bool encrypted);

/* ---- contain.c ---- */
/* A name usable as one path component: no '/', no NUL, not "." or "..". */
bool rs_name_ok(const u8 *name, size_t len);
/* Open directory d, if it is still the host directory this run made for it. */
int rs_open_rdir(struct restore *r, const struct rdir *d);
/* The error of a failed mkdirat, openat, symlinkat, mknodat or linkat of path. */
int rs_create_err(struct fs_info *fs, const char *path);
/* Link name in dirfd to first, a file this run created (its path). */
int rs_link_beneath(struct restore *r, const char *first, int dirfd, const char *name);
/*
 * Claim inode (root, ino) for the file at path: 0 when the caller must create
 * it (then settle *claim), 1 when it exists at *first, or a negative errno.
 */
int rs_link_claim(struct restore *r, u64 root, u64 ino, const char *path,
		  struct hardlink **claim, const char **first);
/* Claim directory inode (root, ino), met at path; -ELOOP when met before. */
int rs_dir_claim(struct restore *r, u64 root, u64 ino, const char *path);
void rs_link_settle(struct restore *r, struct hardlink *h, int err);
void rs_link_table_free(struct link_table *lt);

#endif
