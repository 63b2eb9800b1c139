// SPDX-License-Identifier: GPL-2.0
/*
 * restore: extract files from an image without a kernel, decrypting what is
 * encrypted when the key is given.  All file data goes through the pipeline
 * (crypto/extent-io): csums of the stored bytes are verified before
 * decryption.  Holes stay holes (only extents are written, then the size is
 * set), hard links stay hard links, symlinks, modes, owners (as root), times
 * and xattrs are kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
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
#include "kernel-shared/data-write.h"
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
	OPTLINE("--threads N", "worker threads for checksums and decryption"),
	KEY_INPUT_OPTLINES(OPTLINE),
	OPTLINE("--help", "show this help"),
	"",
	"Exit status: 0 everything restored (warnings allowed), 1 some files failed,",
	"2 usage error, 3 image unreadable, 4 key error.",
	NULL
};

/* Inode numbers repeat across subvolumes (snapshots): links key on both. */
struct hardlink {
	u64 root, ino;
	char *path;
};

struct restore {
	struct fs_info *fs;
	struct root_ref root;
	struct extent_io *io;
	struct fscrypt_master_key *mk;
	bool raw, dry_run, as_root;
	struct hardlink *links;
	size_t nr_links, cap_links;
	u64 files, dirs, symlinks, specials, bytes, skipped, failed, links_made;
};

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

/* The inode context, if the inode has one (1 if not). */
static int inode_ctx(struct restore *r, u64 ino, struct fscrypt_context_v2 *ctx)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };
	u32 size;
	int ret = lookup_item(r->fs, &r->root, &key, ctx, sizeof(*ctx), &size);

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

/*
 * Read [start, start + len) of a disk extent through the pipeline, csums
 * verified, decrypted with nonce when given; into mem, or to the sink.
 */
static int read_extent_range(struct restore *r, u64 disk, u64 start, u64 len, bool datasum,
			     const u8 *nonce, u8 *mem, struct sink *sink)
{
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
		struct root_ref cr;
		long found;

		ret = find_root(fs, BTRFS_CSUM_TREE_OBJECTID, &cr);
		if (ret)
			return ret;
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
	ret = extent_io_run(r->io, &job, 1);
	free(expected);
	if (ret == -EBADMSG)
		return fs_err(fs, -EBADMSG, "data checksum mismatch in extent %llu", disk);
	return ret ? fs_err(fs, ret, "reading extent %llu failed: %s", disk, strerror(-ret)) : 0;
}

static int restore_extent(struct restore *r, int fd, const struct btrfs_key *k, const u8 *ptr,
			  u32 size, bool datasum, const u8 *nonce)
{
	struct fs_info *fs = r->fs;
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
			r->bytes += n > 0 ? n : 0;
			return n < 0 ? fs_err(fs, -EUCLEAN, "inline extent does not decompress") : 0;
		}
		if (dlen > ram)
			dlen = ram;
		if (pwrite(fd, data, dlen, k->offset) != (ssize_t)dlen)
			return fs_err(fs, -errno, "write failed: %s", strerror(errno));
		r->bytes += dlen;
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
		ret = read_extent_range(r, le64_to_cpu(fe->disk_bytenr), 0, dlen, datasum, nonce,
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
			r->bytes += num;
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

		ret = read_extent_range(r, le64_to_cpu(fe->disk_bytenr), astart, aend - astart,
					datasum, nonce, NULL, &s);
		if (!ret)
			r->bytes += num;
		return ret;
	}
}

/* Write the data of ino into fd: extents only, so holes stay holes. */
static int restore_data(struct restore *r, u64 ino, int fd, bool datasum, bool encrypted)
{
	struct fs_info *fs = r->fs;
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_CTX_KEY, 0 }, k;
	struct btrfs_path p;
	int ret = search_slot(fs, &r->root, &key, &p);

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

			ret = lookup_item(fs, &r->root, &ck, &ectx, sizeof(ectx), &csize);
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
			ret = restore_extent(r, fd, &k, copy, size, datasum, NULL);
			free(copy);
		} else {
			ret = restore_extent(r, fd, &k, item, size, datasum,
					     have_nonce ? nonce : NULL);
		}
		if (ret)
			break;
	}
	path_release(fs, &p);
	return ret < 0 ? ret : 0;
}

/* ---- inodes ------------------------------------------------------------------ */

static void restore_xattrs(struct restore *r, u64 ino, const char *path)
{
	struct fs_info *fs = r->fs;
	struct btrfs_key key = { ino, BTRFS_XATTR_ITEM_KEY, 0 }, k;
	struct btrfs_path p;
	int ret = search_slot(fs, &r->root, &key, &p);

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
			char name[BTRFS_NAME_LEN + 1];

			if (pos + sizeof(*di) + nl + dl > size || nl > BTRFS_NAME_LEN)
				break;
			memcpy(name, di + 1, nl);
			name[nl] = 0;
			/* btrfs.* are btrfs properties: they exist on btrfs only. */
			if (!r->dry_run && lsetxattr(path, name, (const u8 *)(di + 1) + nl, dl, 0) &&
			    strncmp(name, "btrfs.", 6) &&
			    (r->as_root || strncmp(name, "user.", 5) == 0))
				warning("cannot set xattr %s on %s: %m", name, path);
			pos += sizeof(*di) + nl + dl;
		}
	}
	path_release(fs, &p);
}

static void restore_meta(struct restore *r, const struct btrfs_inode_item *ii, const char *path,
			 bool is_link)
{
	struct timespec ts[2] = {
		{ le64_to_cpu(ii->atime.sec), le32_to_cpu(ii->atime.nsec) },
		{ le64_to_cpu(ii->mtime.sec), le32_to_cpu(ii->mtime.nsec) },
	};

	if (r->dry_run)
		return;
	if (r->as_root && lchown(path, le32_to_cpu(ii->uid), le32_to_cpu(ii->gid)))
		warning("cannot set the owner of %s: %m", path);
	if (!is_link && chmod(path, le32_to_cpu(ii->mode) & 07777))
		warning("cannot set the mode of %s: %m", path);
	utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static const char *link_of(struct restore *r, u64 ino)
{
	for (size_t i = 0; i < r->nr_links; i++)
		if (r->links[i].ino == ino && r->links[i].root == r->root.objectid)
			return r->links[i].path;
	return NULL;
}

static void remember_link(struct restore *r, u64 ino, const char *path)
{
	{
		struct hardlink *n = array_grow(r->links, &r->cap_links, r->nr_links, sizeof(*n));

		if (!n)
			return;
		r->links = n;
	}
	r->links[r->nr_links].ino = ino;
	r->links[r->nr_links].root = r->root.objectid;
	r->links[r->nr_links].path = strdup(path);
	if (r->links[r->nr_links].path)
		r->nr_links++;
}

static int restore_file(struct restore *r, u64 ino, const struct btrfs_inode_item *ii,
			const char *path)
{
	u64 flags = le64_to_cpu(ii->flags);
	bool encrypted = flags & BTRFS_INODE_ENCRYPT;
	struct fscrypt_context_v2 ctx;
	int fd, ret = 0;

	if (encrypted && !r->raw &&
	    (!r->mk || inode_ctx(r, ino, &ctx) ||
	     memcmp(ctx.master_key_identifier, r->mk->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE))) {
		warning("%s is encrypted and no key for it was given: skipped", path);
		r->skipped++;
		return 1;
	}
	if (le32_to_cpu(ii->nlink) > 1) {
		const char *first = link_of(r, ino);

		if (first) {
			if (!r->dry_run && link(first, path))
				return fs_err(r->fs, -errno, "cannot link %s: %s", path, strerror(errno));
			r->links_made++;
			return 1;	/* the first link already has the metadata */
		}
		remember_link(r, ino, path);
	}
	r->files++;
	if (r->dry_run)
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fs_err(r->fs, -errno, "cannot create %s: %s", path, strerror(errno));
	ret = restore_data(r, ino, fd, !(flags & BTRFS_INODE_NODATASUM), encrypted);
	if (!ret && ftruncate(fd, le64_to_cpu(ii->size)))
		ret = fs_err(r->fs, -errno, "cannot set the size of %s: %s", path, strerror(errno));
	close(fd);
	if (ret)
		unlink(path);
	return ret;
}

static int restore_symlink(struct restore *r, u64 ino, const struct btrfs_inode_item *ii,
			   const char *path)
{
	struct fs_info *fs = r->fs;
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, 0 };
	u8 item[4096 + 64], target[4096 + 64], fkey[FSCRYPT_MAX_MODE_KEY_SIZE];
	struct fscrypt_context_v2 ctx;
	char nokey[512];
	u32 size;
	int ret = lookup_item(fs, &r->root, &key, item, sizeof(item), &size);
	const u8 *data = item + BTRFS_FILE_EXTENT_INLINE_DATA_START;
	u32 dlen;

	if (ret || size < BTRFS_FILE_EXTENT_INLINE_DATA_START)
		return fs_err(fs, -EUCLEAN, "symlink %llu has no target", ino);
	dlen = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;
	if (le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) {
		ret = inode_ctx(r, ino, &ctx);
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
	r->symlinks++;
	if (!r->dry_run && symlink((char *)target, path))
		return fs_err(fs, -errno, "cannot create symlink %s: %s", path, strerror(errno));
	return 0;
}

static int restore_dir(struct restore *r, u64 dir, const char *path, int depth);

/* Restore one directory entry (child ino of type t, named name) at path. */
static int restore_entry(struct restore *r, u64 ino, const char *path, int depth)
{
	struct btrfs_inode_item ii;
	u32 mode;
	int ret = inode_lookup(r->fs, &r->root, ino, &ii);

	if (ret)
		return ret > 0 ? fs_err(r->fs, -EUCLEAN, "inode %llu is missing", ino) : ret;
	mode = le32_to_cpu(ii.mode);
	if (S_ISDIR(mode)) {
		r->dirs++;
		if (!r->dry_run && mkdir(path, 0700) && errno != EEXIST)
			return fs_err(r->fs, -errno, "cannot create %s: %s", path, strerror(errno));
		ret = restore_dir(r, ino, path, depth + 1);
	} else if (S_ISREG(mode)) {
		ret = restore_file(r, ino, &ii, path);
	} else if (S_ISLNK(mode)) {
		ret = restore_symlink(r, ino, &ii, path);
	} else {
		r->specials++;
		if (!r->dry_run && mknod(path, mode, makedev(major(le64_to_cpu(ii.rdev)),
							  minor(le64_to_cpu(ii.rdev))))) {
			warning("cannot create %s: %m", path);
			ret = 1;
		}
	}
	if (!ret) {
		restore_xattrs(r, ino, path);
		restore_meta(r, &ii, path, S_ISLNK(mode));
	}
	return ret > 0 ? 0 : ret;	/* 1: skipped or linked, nothing more to set */
}

/* Whether this tree holds the ROOT_REF of subvolume id (its entry is real here). */
static bool subvol_linked_here(struct restore *r, u64 id)
{
	struct btrfs_key key = { r->root.objectid, BTRFS_ROOT_REF_KEY, id };

	return lookup_item(r->fs, &r->fs->tree_root, &key, NULL, 0, NULL) == 0;
}

static int restore_dir(struct restore *r, u64 dir, const char *path, int depth)
{
	struct fs_info *fs = r->fs;
	struct btrfs_key key = { dir, BTRFS_DIR_INDEX_KEY, 0 }, k;
	struct btrfs_inode_item dii;
	struct fscrypt_context_v2 ctx;
	u8 dkey[FSCRYPT_MAX_MODE_KEY_SIZE];
	bool encrypted = false, have_key = false;
	u64 next = 0;
	int ret;

	if (depth > 4096)
		return fs_err(fs, -EUCLEAN, "directory nesting deeper than 4096 at %s", path);
	ret = inode_lookup(fs, &r->root, dir, &dii);
	if (ret)
		return ret > 0 ? fs_err(fs, -EUCLEAN, "directory %llu is missing", dir) : ret;
	if (le64_to_cpu(dii.flags) & BTRFS_INODE_ENCRYPT) {
		encrypted = true;
		ret = inode_ctx(r, dir, &ctx);
		have_key = !ret && file_key(r, &ctx, dkey) == 0;
	}
	/* Entries one at a time by index: the path is not kept across recursion. */
	for (;;) {
		struct btrfs_path p;
		struct btrfs_dir_item di;
		u8 name[BTRFS_NAME_LEN + 1];
		char child[PATH_MAX], shown[512];
		struct btrfs_key loc;
		u32 nl;

		key.offset = next;
		ret = search_slot(fs, &r->root, &key, &p);
		if (ret < 0)
			break;
		ret = 0;
		if (!path_item_valid(&p)) {
			path_release(fs, &p);
			break;
		}
		path_key(&p, &k);
		if (k.objectid != dir || k.type != BTRFS_DIR_INDEX_KEY) {
			path_release(fs, &p);
			break;
		}
		memcpy(&di, path_ptr(&p), sizeof(di) <= path_size(&p) ? sizeof(di) : 0);
		nl = le16_to_cpu(di.name_len);
		if (path_size(&p) < sizeof(di) || nl > BTRFS_NAME_LEN || sizeof(di) + nl > path_size(&p)) {
			path_release(fs, &p);
			ret = fs_err(fs, -EUCLEAN, "dir %llu: bad entry %llu", dir, k.offset);
			break;
		}
		memcpy(name, path_ptr(&p) + sizeof(di), nl);
		path_release(fs, &p);
		next = k.offset + 1;
		if (encrypted && have_key) {
			u8 plain[FNAME_MAX_LEN + 1];
			int n = fname_decrypt(ctx.filenames_mode, dkey, name, nl, plain);

			if (n < 0) {
				ret = fs_err(fs, -EKEYREJECTED, "dir %llu: a name does not decrypt", dir);
				break;
			}
			plain[n] = 0;
			snprintf(shown, sizeof(shown), "%s", plain);
		} else if (encrypted) {
			nokey_name(name, nl, shown);
		} else {
			name[nl] = 0;
			if (memchr(name, '/', nl) || strlen((char *)name) != nl) {
				ret = fs_err(fs, -EUCLEAN, "dir %llu: invalid name", dir);
				break;
			}
			snprintf(shown, sizeof(shown), "%s", name);
		}
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, shown) >= sizeof(child)) {
			warning("path too long under %s: skipped", path);
			r->skipped++;
			continue;
		}
		btrfs_disk_key_to_cpu(&loc, &di.location);
		if (loc.type == BTRFS_ROOT_ITEM_KEY && !subvol_linked_here(r, loc.objectid)) {
			/*
			 * A subvolume entry copied into a snapshot: the kernel shows
			 * an empty directory there, since the subvolume's ROOT_REF
			 * belongs to the original parent.
			 */
			r->dirs++;
			if (!r->dry_run && mkdir(child, 0755) && errno != EEXIST) {
				ret = fs_err(fs, -errno, "cannot create %s: %s", child, strerror(errno));
			} else if (!r->dry_run) {
				/* The kernel gives the placeholder its parent's times. */
				struct timespec ts[2] = {
					{ le64_to_cpu(dii.atime.sec), le32_to_cpu(dii.atime.nsec) },
					{ le64_to_cpu(dii.mtime.sec), le32_to_cpu(dii.mtime.nsec) },
				};

				utimensat(AT_FDCWD, child, ts, AT_SYMLINK_NOFOLLOW);
			}
		} else if (loc.type == BTRFS_ROOT_ITEM_KEY) {
			/* A subvolume: restored as a directory holding its tree. */
			struct root_ref saved = r->root;
			u64 top;

			ret = find_root(fs, loc.objectid, &r->root);
			if (!ret)
				ret = subvol_root_dir(fs, loc.objectid, &top);
			if (!ret)
				ret = restore_entry(r, top, child, depth + 1);
			r->root = saved;
		} else {
			ret = restore_entry(r, loc.objectid, child, depth + 1);
		}
		if (ret == -EBADMSG || ret == -EKEYREJECTED || ret == -EUCLEAN) {
			error("%s: %s", child, fs->errmsg);
			r->failed++;
			ret = 0;	/* report and go on with the other files */
		} else if (ret) {
			break;
		}
	}
	explicit_bzero(dkey, sizeof(dkey));
	return ret;
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
	struct key_input ki;
	struct extent_io_params params = { 0 };
	unsigned long long root_id = BTRFS_FS_TREE_OBJECTID, threads = 0;
	const char *sel = NULL, *outdir;
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
	if (key_input_given(&ki) && (ret = cmd_load_master_key(&ki, &r.mk)))
		return ret;
	ret = cmd_open_image(argv[optind], -1, &r.fs);
	if (ret)
		goto out_key;
	r.as_root = geteuid() == 0;
	ret = find_root(r.fs, root_id, &r.root);
	if (!ret)
		ret = subvol_root_dir(r.fs, root_id, &start_ino);
	if (ret) {
		error("no subvolume with id %llu", root_id);
		ret = EXIT_PROBLEMS;
		goto out;
	}
	if (sel) {
		struct root_ref rr;

		ret = path_lookup_from(r.fs, &r.root, start_ino, sel, &rr, &start_ino);
		if (ret) {
			error("--path %s: no such file in the image", sel);
			ret = EXIT_PROBLEMS;
			goto out;
		}
		r.root = rr;
	}
	params.fd = r.fs->fd;
	params.dst_fd = -1;
	params.unit_size = r.fs->sectorsize;
	params.threads = threads;
	params.key = r.mk;
	params.profile = FSCRYPT_PROFILE_V7;
	params.contents_mode = FSCRYPT_MODE_AES_256_XTS;
	params.process = data_csum_process;
	params.consume = consume;
	ret = extent_io_new(&r.io, &params);
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
	if (sel) {
		char child[PATH_MAX];
		const char *base = strrchr(sel, '/');

		snprintf(child, sizeof(child), "%s/%s", outdir, base && base[1] ? base + 1 : sel);
		ret = restore_entry(&r, start_ino, child, 0);
	} else {
		ret = restore_dir(&r, start_ino, outdir, 0);
	}
	if (ret) {
		error("%s", r.fs->errmsg[0] ? r.fs->errmsg : strerror(-ret));
		ret = ret == -EUCLEAN || ret == -EIO ? EXIT_UNREADABLE : EXIT_PROBLEMS;
		goto out;
	}
	if (g_format == FORMAT_JSON) {
		struct json_object *doc = json_doc_new();

		json_object_object_add(doc, "files", json_u64(r.files));
		json_object_object_add(doc, "directories", json_u64(r.dirs));
		json_object_object_add(doc, "symlinks", json_u64(r.symlinks));
		json_object_object_add(doc, "special-files", json_u64(r.specials));
		json_object_object_add(doc, "hard-links", json_u64(r.links_made));
		json_object_object_add(doc, "bytes", json_u64(r.bytes));
		json_object_object_add(doc, "skipped", json_u64(r.skipped));
		json_object_object_add(doc, "failed", json_u64(r.failed));
		json_object_object_add(doc, "dry-run", json_object_new_boolean(r.dry_run));
		json_doc_print(doc);
	} else {
		note("%s %llu files, %llu directories, %llu symlinks, %llu hard links, %llu bytes; %llu skipped, %llu failed",
		     r.dry_run ? "Would restore" : "Restored", r.files, r.dirs, r.symlinks, r.links_made,
		     r.bytes, r.skipped, r.failed);
	}
	ret = r.failed ? EXIT_PROBLEMS : EXIT_OK;
out:
	extent_io_free(r.io);
	for (size_t i = 0; i < r.nr_links; i++)
		free(r.links[i].path);
	free(r.links);
	close_image(r.fs);
out_key:
	cmd_free_master_key(r.mk);
	return ret;
}
