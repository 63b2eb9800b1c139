// SPDX-License-Identifier: GPL-2.0
/*
 * The file-data read path (data/read.h): stored bytes through the pipeline,
 * csums verified by extent_io_csum_process() before decryption, the next
 * copy tried on a mismatch, then decompression.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "data/read.h"
#include "kernel-shared/compression.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"

/* Look up the csums of rd's range into buffers rd owns; 0 or a negative errno. */
static int map_csums(struct fs_info *fs, const struct root_ref *csum_root, unsigned int flags,
		     struct data_read *rd)
{
	u64 nsec = rd->len / fs->sectorsize;
	struct root_ref cr;
	long found;
	int ret;

	if (!csum_root) {
		ret = find_root(fs, BTRFS_CSUM_TREE_OBJECTID, &cr);
		if (ret)
			return ret;
		csum_root = &cr;
	}
	rd->owned_sums = fault_malloc(nsec * fs->csum_size);
	if (flags & DATA_READ_SOME_CSUMS)
		rd->owned_present = fault_malloc(nsec);
	if (!rd->owned_sums || ((flags & DATA_READ_SOME_CSUMS) && !rd->owned_present))
		return fs_err(fs, -ENOMEM, "out of memory");
	found = csum_lookup_range(fs, csum_root, rd->logical, nsec, rd->owned_sums,
				  rd->owned_present);
	if (found < 0)
		return found;
	if (!(flags & DATA_READ_SOME_CSUMS) && (u64)found != nsec)
		return fs_err(fs, -EUCLEAN, "extent %llu: checksums missing", rd->extent);
	rd->csums = (struct extent_io_csums){ .type = fs->csum_type, .logical = rd->logical,
					      .count = nsec, .expected = rd->owned_sums,
					      .present = rd->owned_present };
	return 0;
}

int data_read_map(struct fs_info *fs, const struct root_ref *csum_root, u64 disk, u64 start,
		  u64 len, unsigned int flags, const u8 *nonce, struct data_read *rd)
{
	const struct chunk_map *m = find_chunk(fs, disk + start);

	memset(rd, 0, sizeof(*rd));
	rd->fs = fs;
	rd->extent = disk;
	rd->logical = disk + start;
	rd->len = len;
	rd->dun = start / fs->sectorsize;
	rd->nonce = nonce;
	if (!m || disk + start + len > m->logical + m->length)
		return fs_err(fs, -EUCLEAN, "extent %llu is not mapped", disk);
	rd->copies = chunk_num_copies(m);
	if (rd->copies > DATA_READ_MAX_COPIES)
		rd->copies = DATA_READ_MAX_COPIES;
	for (int i = 0; i < rd->copies; i++) {
		struct copy_loc loc;
		u64 run;

		if (map_copy_run(fs, rd->logical, len, i, &loc, &run))
			return fs_err(fs, -EUCLEAN, "extent %llu is not mapped", disk);
		rd->physical[i] = loc.physical;
		rd->dev[i] = (u32)loc.dev;
		rd->missing[i] = loc.fd < 0;
		rd->split |= run < len;
	}
	if (!(flags & (DATA_READ_CSUMS | DATA_READ_SOME_CSUMS)))
		return 0;
	if (fs_is_metadump(fs)) {
		int ret;

		/*
		 * A metadata dump holds no file data: nothing to verify
		 * (disk-io.h).  Which units have a csum is still told: a copy
		 * gets csums where its source had them, no more.
		 */
		if (!(flags & DATA_READ_SOME_CSUMS))
			return 0;
		ret = map_csums(fs, csum_root, flags, rd);
		rd->csums.expected = NULL;
		return ret;
	}
	return map_csums(fs, csum_root, flags, rd);
}

void data_read_release(struct data_read *rd)
{
	free(rd->owned_sums);
	free(rd->owned_present);
	rd->owned_sums = NULL;
	rd->owned_present = NULL;
}

/* The csum callback's mismatch handler: note the first bad unit, stop the run. */
static int note_mismatch(struct extent_io *io, uint64_t logical, const uint8_t *found,
			 const uint8_t *expected, void *arg)
{
	struct data_read *rd = arg;

	/* Serialised by the pipeline: units of several chunks may be bad. */
	if (!rd->bad_logical || logical < rd->bad_logical)
		rd->bad_logical = logical;
	return -EBADMSG;
}

void data_read_job(struct data_read *rd, int copy, struct extent_io_job *job)
{
	bool sums = rd->csums.expected != NULL;

	if (sums) {
		rd->csums.mismatch = note_mismatch;
		rd->csums.arg = rd;
	}
	job->len = rd->len;
	job->flags |= EXTENT_IO_READ;
	job->src = (struct extent_io_loc){ rd->physical[copy], rd->logical, rd->dun, rd->nonce,
					   sums ? &rd->csums : NULL };
	job->src.dev = rd->dev[copy];
	job->src.key_id = rd->key_id;
}

struct sink_ctx {
	data_read_sink_fn fn;
	void *arg;
	u64 base;	/* byte of the range where the job starts */
};

static int read_consume(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
			const uint8_t *buf, uint32_t len, void *priv)
{
	const struct sink_ctx *s = priv;

	return s->fn(s->arg, s->base + off, buf, len);
}

void data_read_setup(struct extent_io_params *params, const struct fs_info *fs)
{
	params->process = extent_io_csum_process;
	params->consume = read_consume;
	if (fs && fs->nr_devs > 1) {
		params->fds = fs->dev_fds;
		params->nfds = fs->nr_devs;
	}
}

/*
 * A split range for attempt `copy`: one job per stripe element, each from
 * copy `copy` of its piece or, where that is on a missing device, the
 * next copy that is not.  0, -ENODEV (no copy of a piece), or -ENOMEM.
 */
static int split_jobs(struct data_read *rd, int copy, uint8_t *mem, const struct sink_ctx *s,
		      struct extent_io_job **jobs_out, struct sink_ctx **ctx_out, size_t *n_out)
{
	struct extent_io_job *jobs = NULL;
	struct sink_ctx *ctx = NULL;
	size_t n = 0, cap = 0;
	u64 unit = rd->fs->sectorsize;

	for (u64 off = 0, run = 0; off < rd->len; off += run) {
		struct copy_loc loc = { .fd = -1 };
		int c;

		for (c = 0; c < rd->copies; c++)
			if (!map_copy_run(rd->fs, rd->logical + off, rd->len - off,
					  (copy + c) % rd->copies, &loc, &run) && loc.fd >= 0)
				break;
		if (c == rd->copies || run % unit) {
			free(jobs);
			free(ctx);
			return -ENODEV;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct extent_io_job *nj = realloc(jobs, ncap * sizeof(*nj));
			struct sink_ctx *nc = nj ? realloc(ctx, ncap * sizeof(*nc)) : NULL;

			if (nj)
				jobs = nj;
			if (!nc) {
				free(jobs);
				free(ctx);
				return -ENOMEM;
			}
			ctx = nc;
			cap = ncap;
		}
		memset(&jobs[n], 0, sizeof(jobs[n]));
		data_read_job(rd, 0, &jobs[n]);
		jobs[n].len = run;
		jobs[n].src.physical = loc.physical;
		jobs[n].src.dev = (u32)loc.dev;
		jobs[n].src.logical = rd->logical + off;
		jobs[n].src.dun = rd->dun + off / unit;
		jobs[n].mem = mem ? mem + off : NULL;
		ctx[n] = (struct sink_ctx){ s->fn, s->arg, off };
		n++;
	}
	*jobs_out = jobs;
	*ctx_out = ctx;
	*n_out = n;
	return 0;
}

/* One attempt: copy `copy` of rd (a split range: see split_jobs()). */
static int run_copy(struct extent_io *io, struct data_read *rd, int copy, uint8_t *mem,
		    struct sink_ctx *s)
{
	struct extent_io_job job = { 0 }, *jobs;
	struct sink_ctx *ctx;
	size_t n;
	int ret;

	if (!rd->split) {
		data_read_job(rd, copy, &job);
		job.mem = mem;
		job.priv = s;
		return extent_io_run(io, &job, 1);
	}
	ret = split_jobs(rd, copy, mem, s, &jobs, &ctx, &n);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++)
		jobs[i].priv = &ctx[i];
	ret = extent_io_run(io, jobs, n);
	free(jobs);
	free(ctx);
	return ret;
}

int data_read_run(struct extent_io *io, struct data_read *rd, uint8_t *mem,
		  data_read_sink_fn sink, void *arg)
{
	struct sink_ctx s = { sink, arg, 0 };
	int ret = -ENODEV;

	rd->bad_logical = 0;
	rd->bad_copy = 0;
	for (int copy = 0; copy < rd->copies; copy++) {
		if (!rd->split && rd->missing[copy])
			continue;	/* on a missing device */
		rd->bad_logical = 0;
		ret = run_copy(io, rd, copy, mem, &s);
		if (ret != -EBADMSG)
			break;
		rd->bad_copy = copy + 1;
	}
	if (ret == -EBADMSG)
		return fs_err(rd->fs, -EBADMSG, "data checksum mismatch in extent %llu", rd->extent);
	if (ret == -ENOMEM)
		return fs_err(rd->fs, ret, "out of memory");
	if (ret == -ENODEV)
		return fs_err(rd->fs, ret, "extent %llu: no copy on the devices given", rd->extent);
	if (ret == -ENOKEY)
		return fs_err(rd->fs, ret, "extent %llu is encrypted with a key that was not given",
			      rd->extent);
	if (ret)
		return fs_err(rd->fs, ret, "reading extent %llu failed: %s", rd->extent,
			      strerror(-ret));
	return 0;
}

int data_read_decode(struct extent_io *io, struct data_read *rd, int compression, u64 ram,
		     data_read_sink_fn sink, void *arg, long *decoded)
{
	u8 *stored = fault_malloc(rd->len), *plain = fault_calloc(1, ram + 1);
	int ret = stored && plain ? 0 : fs_err(rd->fs, -ENOMEM, "out of memory");

	*decoded = -EUCLEAN;
	if (!ret)
		ret = data_read_run(io, rd, stored, NULL, NULL);
	if (!ret) {
		*decoded = btrfs_decompress(compression, stored, rd->len, plain, ram,
					    extent_io_unit_size(io));
		if (*decoded >= 0 && sink)
			ret = sink(arg, 0, plain, (u64)*decoded);
	}
	if (plain && rd->nonce && *decoded > 0)
		explicit_bzero(plain, (size_t)*decoded);	/* an encrypted extent's plaintext */
	free(stored);
	free(plain);
	return ret;
}
