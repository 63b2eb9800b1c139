// SPDX-License-Identifier: GPL-2.0
/*
 * restore: extract files from an image without a kernel, decrypting what is
 * encrypted when the key is given.  All file data goes through the pipeline
 * (crypto/extent-io): csums of the stored bytes are verified before
 * decryption.  Holes stay holes (only extents are written, then the size is
 * set), hard links stay hard links, symlinks, modes, owners (as root), times
 * and xattrs are kept.
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
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/key-input.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/utils.h"
#include "crypto/extent-io.h"
#include "crypto/fname.h"
#include "kernel-shared/compression.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/volumes.h"

const char *const cmd_restore_usage[] = {
	"btrfs-extcrypt restore [options] <image> <outdir>",
	"Extract files from an image, decrypting encrypted ones with the key",
	"",
	"Reads the image only.  Data checksums (of the stored, encrypted bytes) are",
	"verified before decryption; a file with a bad checksum is reported and left",
	"out.  Without a key, encrypted names appear in the fscrypt no-key form and",
	"encrypted contents are skipped with a warning (or written as stored",
	"ciphertext with --raw).  Hard links, symlinks, holes, modes, times, xattrs",
	"and, when run as root, owners and device nodes are kept.  Never prompts.",
	"",
	OPTLINE("--root ID", "subvolume to restore (default: the top level, 5)"),
	OPTLINE("--path P", "restore only this directory or file (a path inside the subvolume)"),
	OPTLINE("--raw", "without a key, write the ciphertext of encrypted files"),
	OPTLINE("--dry-run", "walk and report, write nothing"),
	OPTLINE("--threads N", "worker threads restoring files at once (default: online CPUs)"),
	KEY_INPUT_OPTLINES(OPTLINE),
	OPTLINE("--help", "show this help"),
	"",
	"Exit status: 0 everything restored (warnings allowed), 1 some files failed,",
	"2 usage error, 3 image unreadable, 4 key error.",
	NULL
};

#define DIR_BATCH	128	/* directory entries per job */

/* What a run did; one set per worker, added up at the end. */
struct counts {
	u64 files, dirs, symlinks, specials, bytes, skipped, failed, links_made;
};

/*
 * A file with several links.  Inode numbers repeat across subvolumes
 * (snapshots): links key on both.  The first worker to meet the inode
 * creates the file (LINK_PENDING until it is there); the others wait for it
 * and link to path.
 */
enum { LINK_PENDING, LINK_DONE, LINK_FAILED };

struct hardlink {
	struct hardlink *next;	/* hash chain */
	u64 root, ino;
	int state;
	int err;		/* LINK_FAILED: why */
	char path[];
};

struct link_table {
	pthread_mutex_t lock;
	pthread_cond_t settled;	/* some entry left LINK_PENDING */
	struct hardlink **buckets;
	size_t nbuckets, count;
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
	struct fscrypt_master_key *mk;
	bool raw, dry_run, as_root;
	struct root_ref csum_root;
	bool have_csum_root;
	/* Runs of more than one chunk: one pipeline with every thread. */
	struct extent_io *shared_io;
	pthread_mutex_t shared_io_lock;
	struct link_table links;

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

static bool recoverable(int err)
{
	return err == -EBADMSG || err == -EKEYREJECTED || err == -EUCLEAN;
}

static bool stopping(struct restore *r)
{
	return __atomic_load_n(&r->stop, __ATOMIC_RELAXED);
}

/* Stop the run for err, keeping the first error and its text. */
static void set_fatal(struct restore *r, int err)
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

/* ---- names ------------------------------------------------------------------- */

/* The fscrypt no-key name: base64url(dirhash[2] = 0, ct or ct[0..149) + sha256(rest)). */
static void nokey_name(const u8 *ct, u32 len, char *out)
{
	u8 buf[8 + 149 + 32] = { 0 };
	size_t n;
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	u32 acc = 0;
	int bits = 0;

	if (len <= 149) {
		memcpy(buf + 8, ct, len);
		n = 8 + len;
	} else {
		unsigned int dl;

		memcpy(buf + 8, ct, 149);
		EVP_Digest(ct + 149, len - 149, buf + 8 + 149, &dl, EVP_sha256(), NULL);
		n = sizeof(buf);
	}
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | buf[i];
		bits += 8;
		while (bits >= 6) {
			out[o++] = tbl[(acc >> (bits - 6)) & 63];
			bits -= 6;
		}
	}
	if (bits)
		out[o++] = tbl[(acc << (6 - bits)) & 63];
	out[o] = 0;
}

/* A name usable as one path component: no '/', no NUL, not "." or "..". */
static bool name_ok(const u8 *name, size_t len)
{
	if (!len || memchr(name, '/', len) || memchr(name, 0, len))
		return false;
	return !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

/* The inode context, if the inode has one (1 if not). */
static int inode_ctx(struct restore *r, const struct root_ref *root, u64 ino,
		     struct fscrypt_context_v2 *ctx)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };
	u32 size;
	int ret = lookup_item(r->fs, root, &key, ctx, sizeof(*ctx), &size);

	if (!ret && size < sizeof(*ctx))
		return 1;
	return ret;
}

/* The per-file key of an encrypted directory or symlink, or 1 without a key. */
static int file_key(struct restore *r, const struct fscrypt_context_v2 *ctx, u8 *key)
{
	if (!r->mk)
		return 1;
	if (memcmp(ctx->master_key_identifier, r->mk->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE))
		return 1;
	return fscrypt_derive_file_key(r->mk, ctx->nonce, ctx->filenames_mode, key, NULL);
}

/* ---- hard links -------------------------------------------------------------- */

static size_t link_bucket(const struct link_table *lt, u64 root, u64 ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) ^ (root * 0xC2B2AE3D27D4EB4FULL)) &
	       (lt->nbuckets - 1);
}

/* Double the buckets when the table is full; the lock is held.  Failing is harmless. */
static void link_table_grow(struct link_table *lt)
{
	size_t n = lt->nbuckets ? lt->nbuckets * 2 : 256;
	struct hardlink **nb = calloc(n, sizeof(*nb));
	struct hardlink **old = lt->buckets;
	size_t oldn = lt->nbuckets;

	if (!nb)
		return;
	lt->buckets = nb;
	lt->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		struct hardlink *h = old[i], *next;

		for (; h; h = next) {
			size_t b = link_bucket(lt, h->root, h->ino);

			next = h->next;
			h->next = nb[b];
			nb[b] = h;
		}
	}
	free(old);
}

/*
 * Claim inode (root, ino) for the file at path.  Returns 0 when the caller
 * is the first and must create the file, then settle *claim; 1 when the
 * file exists: *first is the path to link to; or a negative errno (the
 * first link failed, or no memory).
 */
static int link_claim(struct restore *r, u64 root, u64 ino, const char *path,
		      struct hardlink **claim, const char **first)
{
	struct link_table *lt = &r->links;
	struct hardlink *h;
	int ret;

	*claim = NULL;
	pthread_mutex_lock(&lt->lock);
	if (lt->count >= lt->nbuckets)
		link_table_grow(lt);
	if (!lt->nbuckets) {
		pthread_mutex_unlock(&lt->lock);
		return fs_err(r->fs, -ENOMEM, "out of memory");
	}
	for (h = lt->buckets[link_bucket(lt, root, ino)]; h; h = h->next)
		if (h->ino == ino && h->root == root)
			break;
	if (!h) {
		size_t len = strlen(path) + 1, b = link_bucket(lt, root, ino);

		h = malloc(sizeof(*h) + len);
		if (!h) {
			pthread_mutex_unlock(&lt->lock);
			return fs_err(r->fs, -ENOMEM, "out of memory");
		}
		h->root = root;
		h->ino = ino;
		h->state = LINK_PENDING;
		h->err = 0;
		memcpy(h->path, path, len);
		h->next = lt->buckets[b];
		lt->buckets[b] = h;
		lt->count++;
		pthread_mutex_unlock(&lt->lock);
		*claim = h;
		return 0;
	}
	/* The creator makes no claim while it holds this one: no cycle. */
	while (h->state == LINK_PENDING)
		pthread_cond_wait(&lt->settled, &lt->lock);
	if (h->state == LINK_DONE) {
		*first = h->path;
		ret = 1;
	} else if (recoverable(h->err)) {
		ret = fs_err(r->fs, h->err, "its first link %s could not be restored", h->path);
	} else {
		ret = h->err;	/* the run is stopping for it */
	}
	pthread_mutex_unlock(&lt->lock);
	return ret;
}

static void link_settle(struct restore *r, struct hardlink *h, int err)
{
	pthread_mutex_lock(&r->links.lock);
	h->state = err ? LINK_FAILED : LINK_DONE;
	h->err = err;
	pthread_cond_broadcast(&r->links.settled);
	pthread_mutex_unlock(&r->links.lock);
}

static void link_table_free(struct link_table *lt)
{
	for (size_t i = 0; i < lt->nbuckets; i++) {
		struct hardlink *h = lt->buckets[i], *next;

		for (; h; h = next) {
			next = h->next;
			free(h);
		}
	}
	free(lt->buckets);
}

/* ---- data ------------------------------------------------------------------- */

struct sink {
	int fd;
	u64 file_off;	/* file offset of the job's first byte */
	u64 skip;	/* bytes of the job before the wanted range */
	u64 want;	/* bytes wanted */
};

static int consume(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
		   const uint8_t *buf, uint32_t len, void *priv)
{
	struct sink *s = job->priv;
	u64 a = off, b = off + len;

	if (b <= s->skip || a >= s->skip + s->want)
		return 0;
	if (a < s->skip)
		a = s->skip;
	if (b > s->skip + s->want)
		b = s->skip + s->want;
	if (pwrite(s->fd, buf + (a - off), b - a, s->file_off + (a - s->skip)) != (ssize_t)(b - a))
		return -errno ? -errno : -EIO;
	return 0;
}

/* Run one job on the worker's pipeline, or on the shared one if it is long. */
static int run_io(struct worker *w, const struct extent_io_job *job)
{
	struct restore *r = w->r;
	int ret;

	if (!r->shared_io || job->len <= EXTENT_IO_DEFAULT_CHUNK)
		return extent_io_run(w->io, job, 1);
	pthread_mutex_lock(&r->shared_io_lock);
	ret = extent_io_run(r->shared_io, job, 1);
	pthread_mutex_unlock(&r->shared_io_lock);
	return ret;
}

/*
 * Read [start, start + len) of a disk extent through the pipeline, csums
 * verified, decrypted with nonce when given; into mem, or to the sink.
 */
static int read_extent_range(struct worker *w, u64 disk, u64 start, u64 len, bool datasum,
			     const u8 *nonce, u8 *mem, struct sink *sink)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	const struct chunk_map *m = find_chunk(fs, disk + start);
	struct extent_io_job job = { 0 };
	struct extent_io_csums sums = { 0 };
	u8 *expected = NULL;
	u64 nsec = len / fs->sectorsize;
	int ret;

	if (!m || disk + start + len > m->logical + m->length)
		return fs_err(fs, -EUCLEAN, "extent %llu is not mapped", disk);
	if (datasum) {
		struct root_ref cr = r->csum_root;
		long found;

		if (!r->have_csum_root) {
			ret = find_root(fs, BTRFS_CSUM_TREE_OBJECTID, &cr);
			if (ret)
				return ret;
		}
		expected = malloc(nsec * fs->csum_size);
		if (!expected)
			return -ENOMEM;
		found = csum_lookup_range(fs, &cr, disk + start, nsec, expected, NULL);
		if (found < 0 || (u64)found != nsec) {
			free(expected);
			return found < 0 ? found : fs_err(fs, -EUCLEAN,
							  "extent %llu: checksums missing", disk);
		}
		sums = (struct extent_io_csums){ .type = fs->csum_type, .logical = disk + start,
						 .count = nsec, .expected = expected };
	}
	job.len = len;
	job.flags = EXTENT_IO_READ;
	job.src = (struct extent_io_loc){ m->physical[0] + (disk + start - m->logical), disk + start,
					  start / fs->sectorsize, nonce, datasum ? &sums : NULL };
	job.mem = mem;
	job.priv = sink;
	ret = run_io(w, &job);
	free(expected);
	if (ret == -EBADMSG)
		return fs_err(fs, -EBADMSG, "data checksum mismatch in extent %llu", disk);
	return ret ? fs_err(fs, ret, "reading extent %llu failed: %s", disk, strerror(-ret)) : 0;
}

static int restore_extent(struct worker *w, int fd, const struct btrfs_key *k, const u8 *ptr,
			  u32 size, bool datasum, const u8 *nonce)
{
	struct fs_info *fs = w->r->fs;
	const struct btrfs_file_extent_item *fe = (const void *)ptr;
	u64 ram = le64_to_cpu(fe->ram_bytes);
	int ret = 0;

	if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
		const u8 *data = ptr + BTRFS_FILE_EXTENT_INLINE_DATA_START;
		u32 dlen = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;

		if (fe->compression) {
			u8 *plain = calloc(1, ram + 1);
			long n = plain ? btrfs_decompress(fe->compression, data, dlen, plain, ram,
							 fs->sectorsize) : -ENOMEM;

			if (n >= 0 && pwrite(fd, plain, n, k->offset) != n)
				n = -errno;
			free(plain);
			w->n.bytes += n > 0 ? n : 0;
			return n < 0 ? fs_err(fs, -EUCLEAN, "inline extent does not decompress") : 0;
		}
		if (dlen > ram)
			dlen = ram;
		if (pwrite(fd, data, dlen, k->offset) != (ssize_t)dlen)
			return fs_err(fs, -errno, "write failed: %s", strerror(errno));
		w->n.bytes += dlen;
		return 0;
	}
	if (size < sizeof(*fe) || !fe->disk_bytenr || fe->type == BTRFS_FILE_EXTENT_PREALLOC)
		return 0;	/* holes and prealloc read as zeros: leave a hole */
	if (fe->compression) {
		u64 dlen = le64_to_cpu(fe->disk_num_bytes);
		u8 *stored = malloc(dlen), *plain = calloc(1, ram + 1);
		long n;

		if (!stored || !plain) {
			free(stored);
			free(plain);
			return -ENOMEM;
		}
		ret = read_extent_range(w, le64_to_cpu(fe->disk_bytenr), 0, dlen, datasum, nonce,
					stored, NULL);
		n = ret ? ret : btrfs_decompress(fe->compression, stored, dlen, plain, ram,
						 fs->sectorsize);
		if (!ret && n < 0)
			ret = fs_err(fs, -EUCLEAN, "compressed extent %llu does not decompress",
				     le64_to_cpu(fe->disk_bytenr));
		if (!ret) {
			u64 off = le64_to_cpu(fe->offset), num = le64_to_cpu(fe->num_bytes);

			if (off > (u64)n)
				off = n;
			if (num > (u64)n - off)
				num = n - off;
			if (pwrite(fd, plain + off, num, k->offset) != (ssize_t)num)
				ret = fs_err(fs, -errno, "write failed: %s", strerror(errno));
			w->n.bytes += num;
		}
		free(stored);
		free(plain);
		return ret;
	}
	{
		u64 off = le64_to_cpu(fe->offset), num = le64_to_cpu(fe->num_bytes);
		u64 astart = off / fs->sectorsize * fs->sectorsize;
		u64 aend = (off + num + fs->sectorsize - 1) / fs->sectorsize * fs->sectorsize;
		struct sink s = { fd, k->offset, off - astart, num };

		ret = read_extent_range(w, le64_to_cpu(fe->disk_bytenr), astart, aend - astart,
					datasum, nonce, NULL, &s);
		if (!ret)
			w->n.bytes += num;
		return ret;
	}
}

/* Write the data of ino into fd: extents only, so holes stay holes. */
static int restore_data(struct worker *w, const struct root_ref *root, u64 ino, int fd,
			bool datasum, bool encrypted)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_CTX_KEY, 0 }, k;
	struct btrfs_path p;
	int ret = search_slot(fs, root, &key, &p);

	if (ret < 0)
		return ret;
	for (ret = 0; path_item_valid(&p); ret = next_item(fs, &p)) {
		u8 item[sizeof(struct btrfs_file_extent_item)];
		u8 nonce[FSCRYPT_NONCE_SIZE];
		const u8 *ptr;
		u32 size;
		bool have_nonce = false;

		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid != ino || k.type > BTRFS_EXTENT_DATA_KEY)
			break;
		if (k.type != BTRFS_EXTENT_DATA_KEY)
			continue;
		size = path_size(&p);
		ptr = path_ptr(&p);
		if (size < BTRFS_FILE_EXTENT_INLINE_DATA_START) {
			ret = fs_err(fs, -EUCLEAN, "inode %llu: bad file extent item", ino);
			break;
		}
		memset(item, 0, sizeof(item));
		memcpy(item, ptr, size < sizeof(item) ? size : sizeof(item));
		if (encrypted && ((struct btrfs_file_extent_item *)item)->encryption && !r->raw) {
			struct btrfs_key ck = { ino, BTRFS_FSCRYPT_CTX_KEY, k.offset };
			struct fscrypt_extent_context ectx;
			u32 csize;

			ret = lookup_item(fs, root, &ck, &ectx, sizeof(ectx), &csize);
			if (ret || csize < sizeof(ectx)) {
				ret = fs_err(fs, -EUCLEAN, "inode %llu: extent at %llu has no context",
					     ino, k.offset);
				break;
			}
			memcpy(nonce, ectx.nonce, sizeof(nonce));
			have_nonce = true;
		}
		if (((struct btrfs_file_extent_item *)item)->type == BTRFS_FILE_EXTENT_INLINE) {
			/* The path's leaf may go away while we read: copy the inline item. */
			u8 *copy = malloc(size);

			if (!copy) {
				ret = -ENOMEM;
				break;
			}
			memcpy(copy, ptr, size);
			ret = restore_extent(w, fd, &k, copy, size, datasum, NULL);
			free(copy);
		} else {
			ret = restore_extent(w, fd, &k, item, size, datasum,
					     have_nonce ? nonce : NULL);
		}
		if (ret)
			break;
	}
	path_release(fs, &p);
	return ret < 0 ? ret : 0;
}

/* ---- inodes ------------------------------------------------------------------ */

static void restore_xattrs(struct worker *w, const struct root_ref *root, u64 ino,
			   const struct target *t)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	struct btrfs_key key = { ino, BTRFS_XATTR_ITEM_KEY, 0 }, k;
	struct btrfs_path p;
	int ret = search_slot(fs, root, &key, &p);

	if (ret < 0)
		return;
	for (ret = 0; path_item_valid(&p) && !ret; ret = next_item(fs, &p)) {
		const u8 *ptr = path_ptr(&p);
		u32 size = path_size(&p), pos = 0;

		path_key(&p, &k);
		if (k.objectid != ino || k.type != BTRFS_XATTR_ITEM_KEY)
			break;
		while (pos + sizeof(struct btrfs_dir_item) <= size) {
			const struct btrfs_dir_item *di = (const void *)(ptr + pos);
			u32 nl = le16_to_cpu(di->name_len), dl = le16_to_cpu(di->data_len);
			const u8 *val = (const u8 *)(di + 1) + nl;
			char name[BTRFS_NAME_LEN + 1];
			int err;

			if (pos + sizeof(*di) + nl + dl > size || nl > BTRFS_NAME_LEN)
				break;
			memcpy(name, di + 1, nl);
			name[nl] = 0;
			err = t->fd >= 0 ? fsetxattr(t->fd, name, val, dl, 0) :
					   lsetxattr(t->path, name, val, dl, 0);
			/* btrfs.* are btrfs properties: they exist on btrfs only. */
			if (err && strncmp(name, "btrfs.", 6) &&
			    (r->as_root || strncmp(name, "user.", 5) == 0))
				warning("cannot set xattr %s on %s: %m", name, t->path);
			pos += sizeof(*di) + nl + dl;
		}
	}
	path_release(fs, &p);
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

	ft.fd = openat(t->dirfd, t->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ft.fd < 0)
		return fs_err(fs, -errno, "cannot create %s: %s", t->path, strerror(errno));
	ret = restore_data(w, root, ino, ft.fd, !(flags & BTRFS_INODE_NODATASUM),
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
	    (!r->mk || inode_ctx(r, root, ino, &ctx) ||
	     memcmp(ctx.master_key_identifier, r->mk->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE))) {
		warning("%s is encrypted and no key for it was given: skipped", t->path);
		w->n.skipped++;
		return 0;
	}
	if (le32_to_cpu(ii->nlink) > 1) {
		const char *first = NULL;

		ret = link_claim(r, root->objectid, ino, t->path, &claim, &first);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			/* The first link already has the metadata. */
			if (!r->dry_run && linkat(AT_FDCWD, first, t->dirfd, t->name, 0))
				return fs_err(r->fs, -errno, "cannot link %s: %s", t->path,
					      strerror(errno));
			w->n.links_made++;
			return 0;
		}
	}
	w->n.files++;
	if (!r->dry_run)
		ret = create_file(w, root, ino, ii, t);
	if (claim)
		link_settle(r, claim, ret);
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
	char nokey[512];
	u32 size;
	int ret = lookup_item(fs, root, &key, item, sizeof(item), &size);
	const u8 *data = item + BTRFS_FILE_EXTENT_INLINE_DATA_START;
	u32 dlen;

	if (ret || size < BTRFS_FILE_EXTENT_INLINE_DATA_START)
		return fs_err(fs, -EUCLEAN, "symlink %llu has no target", ino);
	dlen = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;
	if (le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) {
		ret = inode_ctx(r, root, ino, &ctx);
		if (!ret)
			ret = file_key(r, &ctx, fkey);
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
	w->n.symlinks++;
	if (!r->dry_run && symlinkat((char *)target, t->dirfd, t->name))
		return fs_err(fs, -errno, "cannot create symlink %s: %s", t->path, strerror(errno));
	return 0;
}

/* ---- directories ------------------------------------------------------------- */

/* Queue a job for d from index on, at the back or the front. */
static int push_job(struct restore *r, struct rdir *d, u64 index, bool back)
{
	struct dir_job *j = malloc(sizeof(*j));

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
 * Start directory ino (already created at path) as a job of its own; its
 * metadata is set once everything in it is done (if set_meta).
 */
static int start_dir(struct worker *w, struct rdir *parent, const struct root_ref *root, u64 ino,
		     const struct btrfs_inode_item *ii, const char *path, int depth, bool set_meta)
{
	struct restore *r = w->r;
	size_t len = strlen(path) + 1;
	struct rdir *d;
	int ret;

	if (depth > 4096)
		return fs_err(r->fs, -EUCLEAN, "directory nesting deeper than 4096 at %s", path);
	d = calloc(1, sizeof(*d) + len);
	if (!d)
		return fs_err(r->fs, -ENOMEM, "out of memory");
	d->parent = parent;
	d->root = *root;
	d->ino = ino;
	d->ii = *ii;
	d->depth = depth;
	d->set_meta = set_meta;
	d->pending = 1;		/* the job pushed below */
	memcpy(d->path, path, len);
	if (le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) {
		struct fscrypt_context_v2 ctx;

		d->encrypted = true;
		if (!inode_ctx(r, root, ino, &ctx) && file_key(r, &ctx, d->key) == 0) {
			d->have_key = true;
			d->names_mode = ctx.filenames_mode;
		}
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
		struct target t = { AT_FDCWD, d->path, d->path, fd };

		if (__atomic_sub_fetch(&d->pending, 1, __ATOMIC_ACQ_REL))
			return;
		if (!d->set_meta || __atomic_load_n(&d->failed, __ATOMIC_RELAXED) ||
		    stopping(w->r) || w->r->dry_run)
			continue;
		if (fd < 0)
			t.fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (t.fd < 0) {
			warning("cannot set the metadata of %s: %m", d->path);
			continue;
		}
		set_meta(w, &d->root, d->ino, &d->ii, &t, false);
		if (fd < 0)
			close(t.fd);
	}
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
	struct btrfs_key key = { d->ino, BTRFS_DIR_INDEX_KEY, index }, k;
	struct btrfs_path p;
	int n = 0, ret = search_slot(fs, &d->root, &key, &p);

	*next = 0;
	*err = 0;
	if (ret < 0) {
		*err = ret;
		return 0;
	}
	for (ret = 0; path_item_valid(&p); ret = next_item(fs, &p)) {
		struct dent *e = &w->batch[n];
		struct btrfs_dir_item di;
		u8 name[BTRFS_NAME_LEN + 1];
		u32 nl, size = path_size(&p);

		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid != d->ino || k.type != BTRFS_DIR_INDEX_KEY)
			break;
		if (n == DIR_BATCH) {
			*next = k.offset;
			break;
		}
		if (size < sizeof(di)) {
			ret = fs_err(fs, -EUCLEAN, "dir %llu: bad entry %llu", d->ino, k.offset);
			break;
		}
		memcpy(&di, path_ptr(&p), sizeof(di));
		nl = le16_to_cpu(di.name_len);
		if (nl > BTRFS_NAME_LEN || sizeof(di) + nl > size) {
			ret = fs_err(fs, -EUCLEAN, "dir %llu: bad entry %llu", d->ino, k.offset);
			break;
		}
		memcpy(name, path_ptr(&p) + sizeof(di), nl);
		if (d->encrypted && d->have_key) {
			u8 plain[FNAME_MAX_LEN + 1];
			int len = fname_decrypt(d->names_mode, d->key, name, nl, plain);

			if (len < 0) {
				ret = fs_err(fs, -EKEYREJECTED, "dir %llu: a name does not decrypt",
					     d->ino);
				break;
			}
			if (!name_ok(plain, len)) {
				ret = fs_err(fs, -EUCLEAN, "dir %llu: invalid name", d->ino);
				break;
			}
			memcpy(e->name, plain, len);
			e->name[len] = 0;
		} else if (d->encrypted) {
			nokey_name(name, nl, e->name);
		} else {
			if (!name_ok(name, nl)) {
				ret = fs_err(fs, -EUCLEAN, "dir %llu: invalid name", d->ino);
				break;
			}
			memcpy(e->name, name, nl);
			e->name[nl] = 0;
		}
		btrfs_disk_key_to_cpu(&e->loc, &di.location);
		n++;
	}
	path_release(fs, &p);
	*err = ret < 0 ? ret : 0;
	return n;
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
static int restore_entry(struct worker *w, struct rdir *parent, const struct root_ref *root,
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
		w->n.dirs++;
		if (!r->dry_run && mkdirat(t->dirfd, t->name, 0700) && errno != EEXIST)
			return fs_err(r->fs, -errno, "cannot create %s: %s", t->path,
				      strerror(errno));
		return start_dir(w, parent, root, ino, &ii, t->path, depth + 1, true);
	}
	if (S_ISREG(mode))
		return restore_file(w, root, ino, &ii, t);
	if (S_ISLNK(mode)) {
		ret = restore_symlink(w, root, ino, &ii, t);
	} else {
		w->n.specials++;
		if (!r->dry_run && mknodat(t->dirfd, t->name, mode,
					   makedev(major(le64_to_cpu(ii.rdev)),
						   minor(le64_to_cpu(ii.rdev))))) {
			warning("cannot create %s: %m", t->path);
			return 0;
		}
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
		if (mkdirat(dirfd, e->name, 0755) && errno != EEXIST)
			return fs_err(fs, -errno, "cannot create %s: %s", path, strerror(errno));
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
		return ret ? ret : restore_entry(w, d, &sub, top, &t, d->depth);
	}
	return restore_entry(w, d, &d->root, e->loc.objectid, &t, d->depth);
}

/* A directory-level error of d: reported like a failed file, or stops the run at the top. */
static void dir_failed(struct worker *w, struct rdir *d, int err)
{
	if (!d->parent || !recoverable(err)) {
		set_fatal(w->r, err);
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
		fs_errmsg(fs)[0] = 0;
		n = read_entries(w, d, index, &next, &err);
		if (next && want_help(r)) {
			/* The rest of the directory for the idle worker. */
			__atomic_fetch_add(&d->pending, 1, __ATOMIC_RELAXED);
			ret = push_job(r, d, next, true);
			if (ret) {
				__atomic_fetch_sub(&d->pending, 1, __ATOMIC_RELAXED);
				set_fatal(r, ret);
			}
			next = 0;
		}
		if (n && dirfd < 0 && !r->dry_run && !stopping(r)) {
			dirfd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dirfd < 0)
				set_fatal(r, fs_err(fs, -errno, "cannot open %s: %s", d->path,
						    strerror(errno)));
		}
		for (int i = 0; i < n && !stopping(r); i++) {
			char path[PATH_MAX];

			if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->path,
					     w->batch[i].name) >= sizeof(path)) {
				warning("path too long under %s: skipped", d->path);
				w->n.skipped++;
				continue;
			}
			fs_errmsg(fs)[0] = 0;
			ret = restore_dent(w, d, dirfd, &w->batch[i], path);
			if (recoverable(ret)) {
				error("%s: %s", path, fs_errmsg(fs));
				w->n.failed++;	/* report and go on with the other files */
			} else if (ret) {
				set_fatal(r, ret);
			}
		}
		if (err && !stopping(r))
			dir_failed(w, d, err);
		index = next;
	} while (next && !err && !stopping(r));
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

static int workers_start(struct restore *r, struct worker *ws, unsigned int n,
			 const struct extent_io_params *params)
{
	struct extent_io_params one = *params;
	int ret;

	one.threads = 1;
	for (unsigned int i = 0; i < n; i++) {
		ws[i].r = r;
		ws[i].batch = malloc(DIR_BATCH * sizeof(*ws[i].batch));
		if (!ws[i].batch)
			return -ENOMEM;
		ret = extent_io_new(&ws[i].io, &one);
		if (ret)
			return ret;
	}
	if (n > 1)
		return extent_io_new(&r->shared_io, params);
	return 0;
}

static void workers_free(struct restore *r, struct worker *ws, unsigned int n)
{
	for (unsigned int i = 0; ws && i < n; i++) {
		extent_io_free(ws[i].io);
		free(ws[i].batch);
	}
	free(ws);
	extent_io_free(r->shared_io);
}

/* Run the jobs queued so far with n workers, the caller's thread being one. */
static void workers_run(struct restore *r, struct worker *ws, unsigned int n)
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

int cmd_restore(const struct cmd_struct *cmd, int argc, char **argv)
{
	enum { OPT_ROOT = 0x2100, OPT_PATH, OPT_RAW, OPT_DRY, OPT_THREADS };
	static const struct option opts[] = {
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "threads", required_argument, NULL, OPT_THREADS },
		KEY_INPUT_LONG_OPTIONS,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct restore r = { 0 };
	struct worker *ws = NULL;
	struct counts tot = { 0 };
	struct key_input ki;
	struct extent_io_params params = { 0 };
	unsigned long long root_id = BTRFS_FS_TREE_OBJECTID, threads = 0;
	const char *sel = NULL, *outdir;
	struct root_ref root;
	u64 start_ino;
	int c, ret;

	key_input_init(&ki);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		ret = key_input_parse_opt(&ki, c, optarg);
		if (ret < 0)
			return EXIT_USAGE;
		if (ret > 0)
			continue;
		switch (c) {
		case OPT_ROOT:
			if (parse_u64(optarg, &root_id))
				return usage_error(cmd, "invalid root id '%s'", optarg);
			break;
		case OPT_PATH:
			sel = optarg;
			break;
		case OPT_RAW:
			r.raw = true;
			break;
		case OPT_DRY:
			r.dry_run = true;
			break;
		case OPT_THREADS:
			if (parse_u64(optarg, &threads) || !threads || threads > 256)
				return usage_error(cmd, "invalid thread count '%s'", optarg);
			break;
		default:
			return cmd_help_or_usage(cmd, c);
		}
	}
	if ((ret = check_argc_exact(cmd, argc - optind, 2)))
		return ret;
	outdir = argv[optind + 1];
	if (!threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		threads = cpus < 1 ? 1 : cpus > 256 ? 256 : cpus;
	}
	if (key_input_given(&ki) && (ret = cmd_load_master_key(&ki, &r.mk)))
		return ret;
	ret = cmd_open_image(argv[optind], -1, 0, &r.fs);
	if (ret)
		goto out_key;
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cv, NULL);
	pthread_mutex_init(&r.shared_io_lock, NULL);
	pthread_mutex_init(&r.links.lock, NULL);
	pthread_cond_init(&r.links.settled, NULL);
	r.as_root = geteuid() == 0;
	ret = find_root(r.fs, root_id, &root);
	if (!ret)
		ret = subvol_root_dir(r.fs, root_id, &start_ino);
	if (ret) {
		error("no subvolume with id %llu", root_id);
		ret = EXIT_PROBLEMS;
		goto out;
	}
	if (sel) {
		struct root_ref rr;

		ret = path_lookup_from(r.fs, &root, start_ino, sel, &rr, &start_ino);
		if (ret) {
			error("--path %s: no such file in the image", sel);
			ret = EXIT_PROBLEMS;
			goto out;
		}
		root = rr;
	}
	r.have_csum_root = find_root(r.fs, BTRFS_CSUM_TREE_OBJECTID, &r.csum_root) == 0;
	params.fd = r.fs->fd;
	params.dst_fd = -1;
	params.unit_size = r.fs->sectorsize;
	params.threads = threads;
	params.key = r.mk;
	params.profile = FSCRYPT_PROFILE_V7;
	params.contents_mode = FSCRYPT_MODE_AES_256_XTS;
	params.process = extent_io_csum_process_opt;
	params.consume = consume;
	ws = calloc(threads, sizeof(*ws));
	ret = ws ? workers_start(&r, ws, threads, &params) : -ENOMEM;
	if (ret) {
		error("cannot start the data pipeline: %s", strerror(-ret));
		ret = EXIT_PROBLEMS;
		goto out;
	}
	if (!r.dry_run && mkdir(outdir, 0755) && errno != EEXIST) {
		error("cannot create %s: %m", outdir);
		ret = EXIT_PROBLEMS;
		goto out;
	}
	fs_errmsg(r.fs)[0] = 0;
	if (sel) {
		char child[PATH_MAX];
		const char *base = strrchr(sel, '/');
		struct target t = { AT_FDCWD, child, child, -1 };

		snprintf(child, sizeof(child), "%s/%s", outdir, base && base[1] ? base + 1 : sel);
		ret = restore_entry(&ws[0], NULL, &root, start_ino, &t, 0);
	} else {
		struct btrfs_inode_item ii;

		ret = inode_lookup(r.fs, &root, start_ino, &ii);
		if (ret > 0)
			ret = fs_err(r.fs, -EUCLEAN, "directory %llu is missing", start_ino);
		if (!ret)
			ret = start_dir(&ws[0], NULL, &root, start_ino, &ii, outdir, 0, false);
	}
	if (ret)
		set_fatal(&r, ret);
	else
		workers_run(&r, ws, threads);
	if (r.fatal) {
		error("%s", r.fatal_msg[0] ? r.fatal_msg : strerror(-r.fatal));
		ret = r.fatal == -EUCLEAN || r.fatal == -EIO ? EXIT_UNREADABLE : EXIT_PROBLEMS;
		goto out;
	}
	for (unsigned int i = 0; i < threads; i++) {
		const struct counts *n = &ws[i].n;

		tot.files += n->files;
		tot.dirs += n->dirs;
		tot.symlinks += n->symlinks;
		tot.specials += n->specials;
		tot.bytes += n->bytes;
		tot.skipped += n->skipped;
		tot.failed += n->failed;
		tot.links_made += n->links_made;
	}
	if (g_format == FORMAT_JSON) {
		struct json_object *doc = json_doc_new();

		json_object_object_add(doc, "files", json_u64(tot.files));
		json_object_object_add(doc, "directories", json_u64(tot.dirs));
		json_object_object_add(doc, "symlinks", json_u64(tot.symlinks));
		json_object_object_add(doc, "special-files", json_u64(tot.specials));
		json_object_object_add(doc, "hard-links", json_u64(tot.links_made));
		json_object_object_add(doc, "bytes", json_u64(tot.bytes));
		json_object_object_add(doc, "skipped", json_u64(tot.skipped));
		json_object_object_add(doc, "failed", json_u64(tot.failed));
		json_object_object_add(doc, "dry-run", json_object_new_boolean(r.dry_run));
		json_doc_print(doc);
	} else {
		note("%s %llu files, %llu directories, %llu symlinks, %llu hard links, %llu bytes; %llu skipped, %llu failed",
		     r.dry_run ? "Would restore" : "Restored", tot.files, tot.dirs, tot.symlinks,
		     tot.links_made, tot.bytes, tot.skipped, tot.failed);
	}
	ret = tot.failed ? EXIT_PROBLEMS : EXIT_OK;
out:
	while (r.jobs) {
		struct dir_job *j = r.jobs;

		r.jobs = j->next;
		free(j);
	}
	while (r.all_dirs) {
		struct rdir *d = r.all_dirs;

		r.all_dirs = d->all_next;
		explicit_bzero(d->key, sizeof(d->key));
		free(d);
	}
	workers_free(&r, ws, threads);
	link_table_free(&r.links);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.shared_io_lock);
	pthread_mutex_destroy(&r.links.lock);
	pthread_cond_destroy(&r.links.settled);
	close_image(r.fs);
out_key:
	cmd_free_master_key(r.mk);
	return ret;
}
