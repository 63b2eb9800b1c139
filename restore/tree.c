// SPDX-License-Identifier: GPL-2.0
/*
 * restore's walk: the worker threads, the queue of directory jobs, and the
 * creation of every inode with its metadata (see restore.h).
 */
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include "common/escape.h"
#include "common/fault.h"
#include "crypto/fname.h"
#include "data/names.h"
#include "kernel-shared/dir-item.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/fscrypt-item.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "common/messages.h"
#include "common/utils.h"
#include "restore/internal.h"

bool rs_recoverable(int err)
{
	return err == -EBADMSG || err == -EKEYREJECTED || err == -EUCLEAN || err == -EEXIST ||
	       err == -ELOOP || err == -ENOKEY;
}

bool rs_stopping(struct restore *r)
{
	return __atomic_load_n(&r->stop, __ATOMIC_RELAXED);
}

/* Stop the run for err, keeping the first error and its text. */
void rs_set_fatal(struct restore *r, int err)
{
	pthread_mutex_lock(&r->lock);
	if (!r->fatal) {
		r->fatal = err;
		snprintf(r->fatal_msg, sizeof(r->fatal_msg), "%s", fs_errmsg(r->fs));
	}
	__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
}

/* The inode context, if the inode has one (1 if not). */
int rs_inode_ctx(struct restore *r, const struct root_ref *root, u64 ino,
		     struct fscrypt_context_v2 *ctx)
{
	int ret = fscrypt_inode_ctx_read(r->fs, root, ino, ctx);

	return ret == FSCRYPT_ITEM_SHORT ? 1 : ret;
}

const struct fscrypt_master_key *rs_key(const struct restore *r, const u8 *identifier)
{
	return fscrypt_key_find(r->mks, r->nr_mks, identifier);
}

/* The per-file key of an encrypted directory or symlink, or 1 without its key. */
int rs_file_key(struct restore *r, const struct fscrypt_context_v2 *ctx, u8 *key)
{
	const struct fscrypt_master_key *mk = rs_key(r, ctx->master_key_identifier);

	if (!mk)
		return 1;
	return fscrypt_derive_file_key(mk, ctx->nonce, ctx->filenames_mode, key, NULL);
}
/* ---- inodes ------------------------------------------------------------------ */

static void restore_xattrs(struct worker *w, const struct root_ref *root, u64 ino,
			   const struct target *t)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	struct key_iter it;
	char at_path[64 + BTRFS_NAME_LEN * 4];
	int ret = key_iter_type(&it, fs, root, ino, BTRFS_XATTR_ITEM_KEY, 0);

	if (ret) {
		key_iter_release(&it);
		return;
	}
	/* No fd (symlinks, device nodes): the name in its parent's fd, not the path. */
	if (t->fd < 0 && (t->dirfd == AT_FDCWD ||
			  (size_t)snprintf(at_path, sizeof(at_path), "/proc/self/fd/%d/%s", t->dirfd,
					   t->name) >= sizeof(at_path) ||
			  access("/proc/self/fd", X_OK)))
		snprintf(at_path, sizeof(at_path), "%s", t->path);
	for (; ret == 0; ret = key_iter_next(&it)) {
		const u8 *ptr = it.ptr;
		u32 size = it.size, pos = 0;

		while (pos + sizeof(struct btrfs_dir_item) <= size) {
			const struct btrfs_dir_item *di = (const void *)(ptr + pos);
			u32 nl = le16_to_cpu(di->name_len), dl = le16_to_cpu(di->data_len);
			const u8 *val = (const u8 *)(di + 1) + nl;
			char name[BTRFS_NAME_LEN + 1];
			int err;

			if (!dir_entry_len(ptr, size, pos) || nl > BTRFS_NAME_LEN)
				break;
			memcpy(name, di + 1, nl);
			name[nl] = 0;
			err = t->fd >= 0 ? fsetxattr(t->fd, name, val, dl, 0) :
					   lsetxattr(at_path, name, val, dl, 0);
			/* btrfs.* are btrfs properties: they exist on btrfs only. */
			if (err && strncmp(name, "btrfs.", 6) &&
			    (r->as_root || strncmp(name, "user.", 5) == 0))
				warning("cannot set xattr %s on %s: %m", name, t->path);
			pos += sizeof(*di) + nl + dl;
		}
	}
	key_iter_release(&it);
}

/*
 * Owner, xattrs, mode and times, in this order: a change of owner would
 * drop security.capability, and the mode goes last but for the times.
 */
static void set_meta(struct worker *w, const struct root_ref *root, u64 ino,
		     const struct btrfs_inode_item *ii, const struct target *t, bool is_link)
{
	struct timespec ts[2] = {
		{ le64_to_cpu(ii->atime.sec), le32_to_cpu(ii->atime.nsec) },
		{ le64_to_cpu(ii->mtime.sec), le32_to_cpu(ii->mtime.nsec) },
	};
	uid_t uid = le32_to_cpu(ii->uid);
	gid_t gid = le32_to_cpu(ii->gid);
	mode_t mode = le32_to_cpu(ii->mode) & 07777;
	bool fd = t->fd >= 0;

	if (w->r->dry_run)
		return;
	if (w->r->as_root && (fd ? fchown(t->fd, uid, gid) :
			      fchownat(t->dirfd, t->name, uid, gid, AT_SYMLINK_NOFOLLOW)))
		warning("cannot set the owner of %s: %m", t->path);
	restore_xattrs(w, root, ino, t);
	if (!is_link && (fd ? fchmod(t->fd, mode) : fchmodat(t->dirfd, t->name, mode, 0)))
		warning("cannot set the mode of %s: %m", t->path);
	if (fd)
		futimens(t->fd, ts);
	else
		utimensat(t->dirfd, t->name, ts, AT_SYMLINK_NOFOLLOW);
}

/* Create the file, write its data and set its metadata. */
static int create_file(struct worker *w, const struct root_ref *root, u64 ino,
		       const struct btrfs_inode_item *ii, const struct target *t)
{
	struct fs_info *fs = w->r->fs;
	u64 flags = le64_to_cpu(ii->flags);
	struct target ft = *t;
	int ret;

	ft.fd = openat(t->dirfd, t->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0600);
	if (ft.fd < 0)
		return rs_create_err(fs, t->path);
	ret = rs_restore_data(w, root, ino, ft.fd, !(flags & BTRFS_INODE_NODATASUM),
			   flags & BTRFS_INODE_ENCRYPT);
	if (!ret && ftruncate(ft.fd, le64_to_cpu(ii->size)))
		ret = fs_err(fs, -errno, "cannot set the size of %s: %s", t->path, strerror(errno));
	if (!ret)
		set_meta(w, root, ino, ii, &ft, false);
	close(ft.fd);
	if (ret)
		unlinkat(t->dirfd, t->name, 0);
	return ret;
}

static int restore_file(struct worker *w, const struct root_ref *root, u64 ino,
			const struct btrfs_inode_item *ii, const struct target *t)
{
	struct restore *r = w->r;
	struct hardlink *claim = NULL;
	struct fscrypt_context_v2 ctx;
	int ret = 0;

	if ((le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) && !r->raw &&
	    (!r->nr_mks || rs_inode_ctx(r, root, ino, &ctx) ||
	     !rs_key(r, ctx.master_key_identifier))) {
		warning("%s is encrypted and no key for it was given: skipped", t->path);
		w->n.skipped++;
		w->n.enc_locked++;
		return 0;
	}
	if (le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT && !r->raw)
		w->n.enc_opened++;
	if (le32_to_cpu(ii->nlink) > 1) {
		const char *first = NULL;

		ret = rs_link_claim(r, root->objectid, ino, t->path, &claim, &first);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			/* The first link already has the metadata. */
			if (!r->dry_run && rs_link_beneath(r, first, t->dirfd, t->name))
				return rs_create_err(r->fs, t->path);
			w->n.links_made++;
			return 0;
		}
	}
	if (!r->dry_run)
		ret = create_file(w, root, ino, ii, t);
	if (!ret)
		w->n.files++;	/* a failed file is counted as failed only */
	if (claim)
		rs_link_settle(r, claim, ret);
	return ret;
}

static int restore_symlink(struct worker *w, const struct root_ref *root, u64 ino,
			   const struct btrfs_inode_item *ii, const struct target *t)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, 0 };
	u8 item[4096 + 64], target[4096 + 64], fkey[FSCRYPT_MAX_MODE_KEY_SIZE];
	struct fscrypt_context_v2 ctx;
	char nokey[NOKEY_NAME_SIZE];
	u32 size;
	int ret = lookup_item(fs, root, &key, item, sizeof(item), &size);
	const u8 *data = item + BTRFS_FILE_EXTENT_INLINE_DATA_START;
	u32 dlen;

	if (ret || size < BTRFS_FILE_EXTENT_INLINE_DATA_START)
		return fs_err(fs, -EUCLEAN, "symlink %llu has no target", ino);
	dlen = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;
	if (le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) {
		ret = rs_inode_ctx(r, root, ino, &ctx);
		if (!ret)
			ret = rs_file_key(r, &ctx, fkey);
		if (ret == 0)
			w->n.enc_opened++;
		else
			w->n.enc_locked++;
		if (ret == 0) {
			int n = fscrypt_symlink_decrypt(ctx.filenames_mode, fkey, data, dlen, target,
							sizeof(target));

			explicit_bzero(fkey, sizeof(fkey));
			if (n < 0)
				return fs_err(fs, -EKEYREJECTED, "symlink %llu does not decrypt", ino);
			target[n] = 0;
		} else {
			/* No key: the no-key form of the stored ciphertext. */
			nokey_name(data + 2, dlen > 2 ? dlen - 2 : 0, nokey);
			snprintf((char *)target, sizeof(target), "%s", nokey);
		}
	} else {
		u64 len = le64_to_cpu(ii->size) < dlen ? le64_to_cpu(ii->size) : dlen;

		memcpy(target, data, len);
		target[len] = 0;
	}
	if (!r->dry_run && symlinkat((char *)target, t->dirfd, t->name))
		return rs_create_err(fs, t->path);
	w->n.symlinks++;
	return 0;
}

/* ---- directories ------------------------------------------------------------- */

/* Queue a job for d from index on, at the back or the front. */
static int push_job(struct restore *r, struct rdir *d, u64 index, bool back)
{
	struct dir_job *j = fault_malloc(sizeof(*j));

	if (!j)
		return fs_err(r->fs, -ENOMEM, "out of memory");
	j->dir = d;
	j->index = index;
	j->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (!r->jobs) {
		r->jobs = r->jobs_tail = j;
	} else if (back) {
		r->jobs_tail->next = j;
		r->jobs_tail = j;
	} else {
		j->next = r->jobs;
		r->jobs = j;
	}
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/*
 * Start directory ino (already created at path, as host: NULL in a dry run)
 * as a job of its own; its metadata is set once everything in it is done
 * (if set_meta).
 */
int rs_start_dir(struct worker *w, struct rdir *parent, const struct root_ref *root, u64 ino,
		     const struct btrfs_inode_item *ii, const char *path, int depth, bool set_meta,
		     const struct stat *host)
{
	struct restore *r = w->r;
	size_t len = strlen(path) + 1;
	struct rdir *d;
	int ret;

	if (depth > 4096)
		return fs_err(r->fs, -EUCLEAN, "directory nesting deeper than 4096 at %s", path);
	d = fault_calloc(1, sizeof(*d) + len);
	if (!d)
		return fs_err(r->fs, -ENOMEM, "out of memory");
	d->parent = parent;
	d->root = *root;
	d->ino = ino;
	d->ii = *ii;
	d->depth = depth;
	d->set_meta = set_meta;
	if (host) {
		d->host_dev = host->st_dev;
		d->host_ino = host->st_ino;
	}
	d->pending = 1;		/* the job pushed below */
	memcpy(d->path, path, len);
	if (le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) {
		struct fscrypt_context_v2 ctx;

		d->encrypted = true;
		if (!rs_inode_ctx(r, root, ino, &ctx) && rs_file_key(r, &ctx, d->key) == 0) {
			d->have_key = true;
			d->names_mode = ctx.filenames_mode;
		}
		if (d->have_key)
			w->n.enc_opened++;
		else
			w->n.enc_locked++;
	}
	pthread_mutex_lock(&r->lock);
	d->all_next = r->all_dirs;
	r->all_dirs = d;
	pthread_mutex_unlock(&r->lock);
	if (parent)
		__atomic_fetch_add(&parent->pending, 1, __ATOMIC_RELAXED);
	ret = push_job(r, d, 0, false);
	if (ret && parent)
		__atomic_fetch_sub(&parent->pending, 1, __ATOMIC_RELAXED);
	return ret;
}

/*
 * One job of d is finished: count it, and complete the directories this
 * completes, setting their metadata.  fd: d open, or -1.
 */
static void dir_done(struct worker *w, struct rdir *d, int fd)
{
	for (; d; d = d->parent, fd = -1) {
		struct target t = { -1, NULL, d->path, fd };

		if (__atomic_sub_fetch(&d->pending, 1, __ATOMIC_ACQ_REL))
			return;
		if (!d->set_meta || __atomic_load_n(&d->failed, __ATOMIC_RELAXED) ||
		    rs_stopping(w->r) || w->r->dry_run)
			continue;
		if (fd < 0)
			t.fd = rs_open_rdir(w->r, d);
		if (t.fd < 0) {
			warning("cannot set the metadata of %s: %s", d->path, fs_errmsg(w->r->fs));
			continue;
		}
		set_meta(w, &d->root, d->ino, &d->ii, &t, false);
		if (fd < 0)
			close(t.fd);
	}
}

/* An entry whose name cannot be a path component ('/', NUL, "." or ".."): reported and skipped. */
static void bad_name(struct worker *w, const struct rdir *d, u64 index, const u8 *name, u32 len)
{
	char esc[BTRFS_NAME_LEN * 4 + 1];

	error("%s: entry %llu of directory %llu has the name \"%s\", which is not a valid file name: skipped",
	      d->path, index, d->ino, name_text(name, len, esc, sizeof(esc)));
	w->n.failed++;
}

/*
 * Read up to DIR_BATCH entries of d from DIR_INDEX offset index into
 * w->batch; *next is where the rest starts (0: nothing more).  Returns the
 * number of entries read; an error (<0) comes in *err, after the entries
 * read before it.
 */
static int read_entries(struct worker *w, struct rdir *d, u64 index, u64 *next, int *err)
{
	struct fs_info *fs = w->r->fs;
	struct btrfs_key k;
	struct key_iter it;
	int n = 0, ret;

	*next = 0;
	*err = 0;
	for (ret = key_iter_type(&it, fs, &d->root, d->ino, BTRFS_DIR_INDEX_KEY, index); ret == 0;
	     ret = key_iter_next(&it)) {
		struct dent *e = &w->batch[n];
		struct btrfs_dir_item di;
		u8 name[BTRFS_NAME_LEN + 1];
		u32 nl, size = it.size;

		k = it.key;
		if (n == DIR_BATCH) {
			*next = k.offset;
			break;
		}
		if (size < sizeof(di)) {
			ret = fs_err(fs, -EUCLEAN, "dir %llu: bad entry %llu", d->ino, k.offset);
			break;
		}
		memcpy(&di, it.ptr, sizeof(di));
		nl = le16_to_cpu(di.name_len);
		if (nl > BTRFS_NAME_LEN || sizeof(di) + nl > size) {
			ret = fs_err(fs, -EUCLEAN, "dir %llu: bad entry %llu", d->ino, k.offset);
			break;
		}
		memcpy(name, it.ptr + sizeof(di), nl);
		if (d->encrypted && d->have_key) {
			u8 plain[FNAME_MAX_LEN + 1];
			int len = fname_decrypt(d->names_mode, d->key, name, nl, plain);

			if (len < 0) {
				ret = fs_err(fs, -EKEYREJECTED, "dir %llu: a name does not decrypt",
					     d->ino);
				break;
			}
			if (!rs_name_ok(plain, len)) {
				bad_name(w, d, k.offset, plain, len);
				continue;
			}
			memcpy(e->name, plain, len);
			e->name[len] = 0;
		} else if (d->encrypted) {
			nokey_name(name, nl, e->name);
		} else {
			if (!rs_name_ok(name, nl)) {
				bad_name(w, d, k.offset, name, nl);
				continue;
			}
			memcpy(e->name, name, nl);
			e->name[nl] = 0;
		}
		btrfs_disk_key_to_cpu(&e->loc, &di.location);
		n++;
	}
	key_iter_release(&it);
	*err = ret < 0 ? ret : 0;
	return n;
}

/*
 * The device number of an inode item: btrfs stores the kernel's own dev_t
 * (MKDEV: the major above 20 bits of minor), not glibc's encoding.
 */
static dev_t rdev_decode(u64 rdev)
{
	return makedev((unsigned int)(rdev >> 20) & 0xfff, (unsigned int)rdev & 0xfffff);
}

/* Whether tree root holds the ROOT_REF of subvolume id (its entry is real here). */
static bool subvol_linked_here(struct restore *r, const struct root_ref *root, u64 id)
{
	struct btrfs_key key = { root->objectid, BTRFS_ROOT_REF_KEY, id };

	return lookup_item(r->fs, &r->fs->tree_root, &key, NULL, 0, NULL) == 0;
}

/*
 * Restore inode ino of tree root at t; a directory becomes a job of its own
 * below parent (NULL: the top, whose metadata is set too).
 */
int rs_restore_entry(struct worker *w, struct rdir *parent, const struct root_ref *root,
			 u64 ino, const struct target *t, int depth)
{
	struct restore *r = w->r;
	struct btrfs_inode_item ii;
	u32 mode;
	int ret = inode_lookup(r->fs, root, ino, &ii);

	if (ret)
		return ret > 0 ? fs_err(r->fs, -EUCLEAN, "inode %llu is missing", ino) : ret;
	mode = le32_to_cpu(ii.mode);
	if (S_ISDIR(mode)) {
		struct stat st;

		ret = rs_dir_claim(r, root->objectid, ino, t->path);
		if (ret)
			return ret;
		if (!r->dry_run && (mkdirat(t->dirfd, t->name, 0700) ||
				    fstatat(t->dirfd, t->name, &st, AT_SYMLINK_NOFOLLOW)))
			return rs_create_err(r->fs, t->path);
		w->n.dirs++;
		return rs_start_dir(w, parent, root, ino, &ii, t->path, depth + 1, true,
				 r->dry_run ? NULL : &st);
	}
	if (S_ISREG(mode))
		return restore_file(w, root, ino, &ii, t);
	if (S_ISLNK(mode)) {
		ret = restore_symlink(w, root, ino, &ii, t);
	} else {
		if (!r->dry_run && mknodat(t->dirfd, t->name, mode,
					   rdev_decode(le64_to_cpu(ii.rdev)))) {
			if (errno == EEXIST)
				return rs_create_err(r->fs, t->path);
			warning("cannot create %s: %m", t->path);
			w->n.skipped++;
			return 0;
		}
		w->n.specials++;
	}
	if (!ret)
		set_meta(w, root, ino, &ii, t, S_ISLNK(mode));
	return ret;
}

/* One directory entry e of d, created in dirfd at path. */
static int restore_dent(struct worker *w, struct rdir *d, int dirfd, const struct dent *e,
			const char *path)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	struct target t = { dirfd, e->name, path, -1 };

	if (e->loc.type == BTRFS_ROOT_ITEM_KEY && !subvol_linked_here(r, &d->root, e->loc.objectid)) {
		/*
		 * A subvolume entry copied into a snapshot: the kernel shows
		 * an empty directory there, since the subvolume's ROOT_REF
		 * belongs to the original parent.  It gets its parent's times.
		 */
		struct timespec ts[2] = {
			{ le64_to_cpu(d->ii.atime.sec), le32_to_cpu(d->ii.atime.nsec) },
			{ le64_to_cpu(d->ii.mtime.sec), le32_to_cpu(d->ii.mtime.nsec) },
		};

		w->n.dirs++;
		if (r->dry_run)
			return 0;
		if (mkdirat(dirfd, e->name, 0755))
			return rs_create_err(fs, path);
		utimensat(dirfd, e->name, ts, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	if (e->loc.type == BTRFS_ROOT_ITEM_KEY) {
		/* A subvolume: restored as a directory holding its tree. */
		struct root_ref sub;
		u64 top;
		int ret = find_root(fs, e->loc.objectid, &sub);

		if (!ret)
			ret = subvol_root_dir(fs, e->loc.objectid, &top);
		return ret ? ret : rs_restore_entry(w, d, &sub, top, &t, d->depth);
	}
	return rs_restore_entry(w, d, &d->root, e->loc.objectid, &t, d->depth);
}

/* A directory-level error of d: reported like a failed file, or stops the run at the top. */
static void dir_failed(struct worker *w, struct rdir *d, int err)
{
	if (!d->parent || !rs_recoverable(err)) {
		rs_set_fatal(w->r, err);
		return;
	}
	error("%s: %s", d->path, fs_errmsg(w->r->fs));
	w->n.failed++;
	__atomic_store_n(&d->failed, true, __ATOMIC_RELAXED);
}

/* Whether a worker waits with nothing queued. */
static bool want_help(struct restore *r)
{
	bool ret;

	pthread_mutex_lock(&r->lock);
	ret = r->idle && !r->jobs;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static void run_job(struct worker *w, const struct dir_job *job)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	struct rdir *d = job->dir;
	int dirfd = -1, err, n, ret = 0;
	u64 index = job->index, next;

	do {
		fs_clear_err(fs);
		n = read_entries(w, d, index, &next, &err);
		if (next && want_help(r)) {
			/* The rest of the directory for the idle worker. */
			__atomic_fetch_add(&d->pending, 1, __ATOMIC_RELAXED);
			ret = push_job(r, d, next, true);
			if (ret) {
				__atomic_fetch_sub(&d->pending, 1, __ATOMIC_RELAXED);
				rs_set_fatal(r, ret);
			}
			next = 0;
		}
		if (n && dirfd < 0 && !r->dry_run && !rs_stopping(r)) {
			dirfd = rs_open_rdir(r, d);
			if (dirfd < 0) {
				err = dirfd;
				n = 0;
				next = 0;
			}
		}
		for (int i = 0; i < n && !rs_stopping(r); i++) {
			char path[PATH_MAX];

			if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->path,
					     w->batch[i].name) >= sizeof(path)) {
				warning("path too long under %s: skipped", d->path);
				w->n.skipped++;
				continue;
			}
			fs_clear_err(fs);
			ret = restore_dent(w, d, dirfd, &w->batch[i], path);
			if (rs_recoverable(ret)) {
				error("%s: %s", path, fs_errmsg(fs));
				w->n.failed++;	/* report and go on with the other files */
			} else if (ret) {
				rs_set_fatal(r, ret);
			}
		}
		if (err && !rs_stopping(r))
			dir_failed(w, d, err);
		index = next;
	} while (next && !err && !rs_stopping(r));
	dir_done(w, d, dirfd);
	if (dirfd >= 0)
		close(dirfd);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct restore *r = w->r;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct dir_job *j;

		while (!r->stop && !r->jobs && r->active) {
			r->idle++;
			pthread_cond_wait(&r->cv, &r->lock);
			r->idle--;
		}
		if (r->stop || !r->jobs)
			break;	/* stopped, or nothing queued and nobody to queue more */
		j = r->jobs;
		r->jobs = j->next;
		if (!r->jobs)
			r->jobs_tail = NULL;
		r->active++;
		pthread_mutex_unlock(&r->lock);
		run_job(w, j);
		free(j);
		pthread_mutex_lock(&r->lock);
		if (--r->active == 0 && !r->jobs)
			pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- setup ------------------------------------------------------------------- */

int rs_workers_start(struct restore *r, struct worker *ws, unsigned int n,
			 const struct extent_io_params *params)
{
	struct extent_io_params one = *params;
	int ret;

	one.threads = 1;
	for (unsigned int i = 0; i < n; i++) {
		ws[i].r = r;
		ws[i].batch = fault_malloc(DIR_BATCH * sizeof(*ws[i].batch));
		if (!ws[i].batch)
			return fs_err(r->fs, -ENOMEM, "out of memory");
		ret = extent_io_new(&ws[i].io, &one);
		if (ret)
			return ret;
	}
	if (n > 1)
		return extent_io_new(&r->shared_io, params);
	return 0;
}

void rs_workers_free(struct restore *r, struct worker *ws, unsigned int n)
{
	for (unsigned int i = 0; ws && i < n; i++) {
		extent_io_free(ws[i].io);
		free(ws[i].batch);
	}
	free(ws);
	extent_io_free(r->shared_io);
}

/* Run the jobs queued so far with n workers, the caller's thread being one. */
void rs_workers_run(struct restore *r, struct worker *ws, unsigned int n)
{
	if (n > 1)
		cache_set_threaded(r->fs);
	for (unsigned int i = 1; i < n; i++) {
		int ret = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);

		if (ret) {
			warning("cannot start a worker thread: %s", strerror(ret));
			break;
		}
		ws[i].started = true;
		pthread_setname_np(ws[i].thread, "extcrypt-restore");
	}
	worker_main(&ws[0]);
	for (unsigned int i = 1; i < n; i++)
		if (ws[i].started)
			pthread_join(ws[i].thread, NULL);
}

