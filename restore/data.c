// SPDX-License-Identifier: GPL-2.0
/*
 * restore's file data: every extent through the read path (data/read.h):
 * csums of the stored bytes verified before decryption, then decompressed.
 */
#include "common/fault.h"
#include "kernel-shared/compression.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/fscrypt-item.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
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
#include "data/read.h"
#include "restore/internal.h"

/* ---- data ------------------------------------------------------------------- */

struct sink {
	int fd;
	u64 file_off;	/* file offset of the range's first byte */
	u64 skip;	/* bytes of the range before the wanted part */
	u64 want;	/* bytes wanted */
};

/* The read path's sink: the wanted part of the plaintext into the file. */
static int rs_sink(void *arg, uint64_t off, const uint8_t *buf, uint64_t len)
{
	struct sink *s = arg;
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

/* The pipeline for a read of len bytes: the worker's, or the shared one (locked) if longer than a chunk. */
static struct extent_io *get_io(struct worker *w, u64 len)
{
	struct restore *r = w->r;

	if (!r->shared_io || len <= EXTENT_IO_DEFAULT_CHUNK)
		return w->io;
	pthread_mutex_lock(&r->shared_io_lock);
	return r->shared_io;
}

static void put_io(struct worker *w, struct extent_io *io)
{
	if (io != w->io)
		pthread_mutex_unlock(&w->r->shared_io_lock);
}

/* Read rd (data/read.h) into mem, or to the sink. */
static int read_range(struct worker *w, struct data_read *rd, u8 *mem, struct sink *sink)
{
	struct extent_io *io = get_io(w, rd->len);
	int ret = data_read_run(io, rd, mem, sink ? rs_sink : NULL, sink);

	put_io(w, io);
	return ret;
}

/*
 * Describe [start, start + len) of disk extent disk for read_range(), to be
 * decrypted with the nonce and the key that ec (NULL: none) names.
 */
static int map_range(struct worker *w, u64 disk, u64 start, u64 len, bool datasum,
		     const struct fscrypt_extent_context *ec, struct data_read *rd)
{
	struct restore *r = w->r;
	int ret = data_read_map(r->fs, r->have_csum_root ? &r->csum_root : NULL, disk, start, len,
				datasum ? DATA_READ_CSUMS : 0, ec ? ec->nonce : NULL, rd);

	rd->key_id = ec ? ec->master_key_identifier : NULL;
	return ret;
}

/* Bytes written to a restored file: the worker's count and the run's progress. */
static void add_bytes(struct worker *w, u64 n)
{
	u64 done = __atomic_add_fetch(&w->r->done_bytes, n, __ATOMIC_RELAXED);

	w->n.bytes += n;
	progress_update(&w->r->prog, done, 0);
}

/* A compressed extent's plaintext, decompressed: its part in the file. */
struct zsink {
	struct worker *w;
	int fd;
	u64 file_off, off, num;
};

static int zsink_write(void *arg, uint64_t pos, const uint8_t *plain, uint64_t n)
{
	struct zsink *z = arg;
	u64 off = z->off, num = z->num;
	int ret = 0;

	if (off > n)
		off = n;
	if (num > n - off)
		num = n - off;
	if (pwrite(z->fd, plain + off, num, z->file_off) != (ssize_t)num)
		ret = fs_err(z->w->r->fs, -errno, "write failed: %s", strerror(errno));
	add_bytes(z->w, num);
	return ret;
}

/*
 * A compressed extent: read, verified, decrypted as its context ec says
 * when given, decompressed; as_stored (--raw): the stored bytes as they
 * are, in the extent's range.
 */
static int restore_compressed(struct worker *w, int fd, const struct btrfs_key *k,
			      const struct btrfs_file_extent_item *fe, bool datasum,
			      const struct fscrypt_extent_context *ec, bool as_stored)
{
	struct fs_info *fs = w->r->fs;
	u64 disk = le64_to_cpu(fe->disk_bytenr), dlen = le64_to_cpu(fe->disk_num_bytes);
	struct zsink z = { w, fd, k->offset, le64_to_cpu(fe->offset), le64_to_cpu(fe->num_bytes) };
	struct data_read rd;
	long n;
	int ret = map_range(w, disk, 0, dlen, datasum, ec, &rd);

	if (!ret && as_stored) {
		u8 *stored = fault_malloc(dlen);
		u64 num = z.num < dlen ? z.num : dlen;

		ret = stored ? read_range(w, &rd, stored, NULL) : fs_err(fs, -ENOMEM, "out of memory");
		if (!ret) {
			if (pwrite(fd, stored, num, k->offset) != (ssize_t)num)
				ret = fs_err(fs, -errno, "write failed: %s", strerror(errno));
			add_bytes(w, num);
		}
		free(stored);
	} else if (!ret) {
		struct extent_io *io = get_io(w, dlen);

		ret = data_read_decode(io, &rd, fe->compression, le64_to_cpu(fe->ram_bytes),
				       zsink_write, &z, &n);
		put_io(w, io);
		if (!ret && n == -ENOMEM)
			ret = fs_err(fs, -ENOMEM, "out of memory");
		else if (!ret && n < 0)
			ret = fs_err(fs, -EUCLEAN, "compressed extent %llu does not decompress", disk);
	}
	data_read_release(&rd);
	return ret;
}

/*
 * One file extent item into fd.  ec: its extent context, decrypt with the
 * nonce and the master key it names; as_stored: an encrypted extent
 * restored with --raw, whose stored bytes (compressed or not) are written
 * as they are.
 */
static int restore_extent(struct worker *w, int fd, const struct btrfs_key *k, const u8 *ptr,
			  u32 size, bool datasum, const struct fscrypt_extent_context *ec,
			  bool as_stored)
{
	struct fs_info *fs = w->r->fs;
	const struct btrfs_file_extent_item *fe = (const void *)ptr;
	u64 ram = le64_to_cpu(fe->ram_bytes);
	int ret = 0;

	if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
		const u8 *data = ptr + BTRFS_FILE_EXTENT_INLINE_DATA_START;
		u32 dlen = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;

		if (fe->compression && !as_stored) {
			u8 *plain = fault_calloc(1, ram + 1);
			long n = plain ? btrfs_decompress(fe->compression, data, dlen, plain, ram,
							 fs->sectorsize) : -ENOMEM;
			int werr = 0;

			if (n >= 0 && pwrite(fd, plain, n, k->offset) != n)
				werr = errno ? errno : EIO;
			free(plain);
			add_bytes(w, n > 0 && !werr ? n : 0);
			if (n == -ENOMEM)
				return fs_err(fs, -ENOMEM, "out of memory");
			if (werr)
				return fs_err(fs, -werr, "write failed: %s", strerror(werr));
			return n < 0 ? fs_err(fs, -EUCLEAN, "inline extent does not decompress") : 0;
		}
		if (dlen > ram)
			dlen = ram;
		if (pwrite(fd, data, dlen, k->offset) != (ssize_t)dlen)
			return fs_err(fs, -errno, "write failed: %s", strerror(errno));
		add_bytes(w, dlen);
		return 0;
	}
	if (size < sizeof(*fe) || !fe->disk_bytenr || fe->type == BTRFS_FILE_EXTENT_PREALLOC)
		return 0;	/* holes and prealloc read as zeros: leave a hole */
	if (fe->compression)
		return restore_compressed(w, fd, k, fe, datasum, ec, as_stored);
	{
		u64 off = le64_to_cpu(fe->offset), num = le64_to_cpu(fe->num_bytes);
		u64 astart = off / fs->sectorsize * fs->sectorsize;
		u64 aend = (off + num + fs->sectorsize - 1) / fs->sectorsize * fs->sectorsize;
		struct sink s = { fd, k->offset, off - astart, num };
		struct data_read rd;

		ret = map_range(w, le64_to_cpu(fe->disk_bytenr), astart, aend - astart, datasum,
				ec, &rd);
		if (!ret)
			ret = read_range(w, &rd, NULL, &s);
		data_read_release(&rd);
		if (!ret)
			add_bytes(w, num);
		return ret;
	}
}

/* Write the data of ino into fd: extents only, so holes stay holes. */
int rs_restore_data(struct worker *w, const struct root_ref *root, u64 ino, int fd,
			bool datasum, bool encrypted)
{
	struct restore *r = w->r;
	struct fs_info *fs = r->fs;
	/* Items 42 (extent contexts) to 108 (file extents) of ino: the extents count. */
	struct btrfs_key min = { ino, BTRFS_FSCRYPT_CTX_KEY, 0 }, k;
	struct btrfs_key max = { ino, BTRFS_EXTENT_DATA_KEY, (u64)-1 };
	struct key_iter it;
	int ret;

	for (ret = key_iter_first(&it, fs, root, &min, &max); ret == 0; ret = key_iter_next(&it)) {
		u8 item[sizeof(struct btrfs_file_extent_item)];
		struct fscrypt_extent_context ec;
		const u8 *ptr;
		u32 size;
		bool have_ctx = false, as_stored;

		k = it.key;
		if (k.type != BTRFS_EXTENT_DATA_KEY)
			continue;
		size = it.size;
		ptr = it.ptr;
		if (size < BTRFS_FILE_EXTENT_INLINE_DATA_START) {
			ret = fs_err(fs, -EUCLEAN, "inode %llu: bad file extent item", ino);
			break;
		}
		memset(item, 0, sizeof(item));
		memcpy(item, ptr, size < sizeof(item) ? size : sizeof(item));
		as_stored = encrypted && ((struct btrfs_file_extent_item *)item)->encryption && r->raw;
		if (encrypted && ((struct btrfs_file_extent_item *)item)->encryption && !r->raw) {
			u8 cbuf[FSCRYPT_EXTENT_CONTEXT_MAX_SIZE];
			u32 csize;

			ret = fscrypt_extent_ctx_read(fs, root, ino, k.offset, cbuf, &csize);
			if (ret == -ENOMEM)
				break;
			if (ret) {
				ret = fs_err(fs, -EUCLEAN, "inode %llu: extent at %llu has no context",
					     ino, k.offset);
				break;
			}
			memcpy(&ec, cbuf, sizeof(ec));
			have_ctx = true;
		}
		if (((struct btrfs_file_extent_item *)item)->type == BTRFS_FILE_EXTENT_INLINE) {
			/* The path's leaf may go away while we read: copy the inline item. */
			u8 *copy = fault_malloc(size);

			if (!copy) {
				ret = fs_err(fs, -ENOMEM, "out of memory");
				break;
			}
			memcpy(copy, ptr, size);
			ret = restore_extent(w, fd, &k, copy, size, datasum, NULL, as_stored);
			free(copy);
		} else {
			ret = restore_extent(w, fd, &k, item, size, datasum,
					     have_ctx ? &ec : NULL, as_stored);
		}
		if (ret)
			break;
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

