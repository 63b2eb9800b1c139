// SPDX-License-Identifier: GPL-2.0
/*
 * restore's file data: every extent through the pipeline (crypto/extent-io),
 * csums of the stored bytes verified before decryption, then decompressed.
 */
#include "kernel-shared/compression.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/volumes.h"
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

/* ---- data ------------------------------------------------------------------- */

struct sink {
	int fd;
	u64 file_off;	/* file offset of the job's first byte */
	u64 skip;	/* bytes of the job before the wanted range */
	u64 want;	/* bytes wanted */
};

int rs_consume(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
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

/* Bytes written to a restored file: the worker's count and the run's progress. */
static void add_bytes(struct worker *w, u64 n)
{
	u64 done = __atomic_add_fetch(&w->r->done_bytes, n, __ATOMIC_RELAXED);

	w->n.bytes += n;
	progress_update(&w->r->prog, done, 0);
}

/*
 * One file extent item into fd.  nonce: decrypt with it; as_stored: an
 * encrypted extent restored with --raw, whose stored bytes (compressed or
 * not) are written as they are.
 */
static int restore_extent(struct worker *w, int fd, const struct btrfs_key *k, const u8 *ptr,
			  u32 size, bool datasum, const u8 *nonce, bool as_stored)
{
	struct fs_info *fs = w->r->fs;
	const struct btrfs_file_extent_item *fe = (const void *)ptr;
	u64 ram = le64_to_cpu(fe->ram_bytes);
	int ret = 0;

	if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
		const u8 *data = ptr + BTRFS_FILE_EXTENT_INLINE_DATA_START;
		u32 dlen = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;

		if (fe->compression && !as_stored) {
			u8 *plain = calloc(1, ram + 1);
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
		if (!ret && as_stored) {
			/* Ciphertext of the compressed data: as stored, in the extent's range. */
			u64 num = le64_to_cpu(fe->num_bytes) < dlen ? le64_to_cpu(fe->num_bytes) : dlen;

			if (pwrite(fd, stored, num, k->offset) != (ssize_t)num)
				ret = fs_err(fs, -errno, "write failed: %s", strerror(errno));
			add_bytes(w, num);
			free(stored);
			free(plain);
			return ret;
		}
		n = ret ? ret : btrfs_decompress(fe->compression, stored, dlen, plain, ram,
						 fs->sectorsize);
		if (!ret && n == -ENOMEM)
			ret = fs_err(fs, -ENOMEM, "out of memory");
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
			add_bytes(w, num);
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
		bool have_nonce = false, as_stored;

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
		as_stored = encrypted && ((struct btrfs_file_extent_item *)item)->encryption && r->raw;
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
			ret = restore_extent(w, fd, &k, copy, size, datasum, NULL, as_stored);
			free(copy);
		} else {
			ret = restore_extent(w, fd, &k, item, size, datasum,
					     have_nonce ? nonce : NULL, as_stored);
		}
		if (ret)
			break;
	}
	path_release(fs, &p);
	return ret < 0 ? ret : 0;
}

