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
		rd->rebuild[i] = loc.rebuild;
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
	job->src.rebuild = rd->rebuild[copy];
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

/* The stripe layer's copy_rebuild(). */
int data_read_rebuild(void *arg, uint64_t logical, int k, uint8_t *buf, uint32_t len)
{
	return copy_rebuild(arg, logical, k, buf, len);
}

void data_read_setup(struct extent_io_params *params, const struct fs_info *fs)
{
	params->process = extent_io_csum_process;
	params->consume = read_consume;
	params->rebuild = data_read_rebuild;
	params->rebuild_arg = (void *)fs;
	if (fs && fs->nr_devs > 1) {
		params->fds = fs->dev_fds;
		params->nfds = fs->nr_devs;
	}
}

/*
 * A split range (RAID0, RAID10, RAID5/6): one job per stripe element, each
 * read from its own copy.  A piece with a bad unit is read again from its
 * next copy, alone: on RAID5/6 a copy rebuilt from parity is only good
 * while the rest of its row is, so the other pieces stay on their own
 * elements.
 */
struct split {
	struct data_read *rd;
	struct extent_io_job *jobs;
	struct sink_ctx *ctx;
	int *copy;		/* the copy each piece is read from */
	bool *redo;		/* a unit of the piece was bad in the last attempt */
	size_t n;
};

static void split_free(struct split *sp)
{
	free(sp->jobs);
	free(sp->ctx);
	free(sp->copy);
	free(sp->redo);
}

/* Piece i from its first copy from `from` on on a device given; 0 or -ENODEV. */
static int piece_copy(struct split *sp, size_t i, int from)
{
	struct data_read *rd = sp->rd;
	struct extent_io_job *j = &sp->jobs[i];

	for (int c = from; c < rd->copies; c++) {
		struct copy_loc loc;
		u64 run;

		if (map_copy_run(rd->fs, j->src.logical, j->len, c, &loc, &run) || run != j->len ||
		    loc.fd < 0)
			continue;
		j->src.physical = loc.physical;
		j->src.dev = (u32)loc.dev;
		j->src.rebuild = loc.rebuild;
		sp->copy[i] = c;
		return 0;
	}
	return -ENODEV;
}

/* The split mismatch handler: mark the piece for another copy, go on. */
static int note_piece_mismatch(struct extent_io *io, uint64_t logical, const uint8_t *found,
			       const uint8_t *expected, void *arg)
{
	struct split *sp = arg;
	size_t lo = 0, hi = sp->n;

	while (hi - lo > 1) {	/* the last piece starting at or before logical */
		size_t mid = lo + (hi - lo) / 2;

		if (sp->jobs[mid].src.logical <= logical)
			lo = mid;
		else
			hi = mid;
	}
	sp->redo[lo] = true;
	if (!sp->rd->bad_logical || logical < sp->rd->bad_logical)
		sp->rd->bad_logical = logical;
	return 0;
}

/* The pieces of rd, each from its first copy on a device given; 0, -ENODEV or -ENOMEM. */
static int split_build(struct data_read *rd, uint8_t *mem, const struct sink_ctx *s,
		       struct split *sp)
{
	u64 unit = rd->fs->sectorsize, off, run;
	size_t n = 0;

	memset(sp, 0, sizeof(*sp));
	sp->rd = rd;
	for (off = 0; off < rd->len; off += run, n++) {
		struct copy_loc loc;

		if (map_copy_run(rd->fs, rd->logical + off, rd->len - off, 0, &loc, &run) ||
		    run % unit)
			return -ENODEV;
	}
	sp->jobs = fault_calloc(n, sizeof(*sp->jobs));
	sp->ctx = fault_calloc(n, sizeof(*sp->ctx));
	sp->copy = fault_calloc(n, sizeof(*sp->copy));
	sp->redo = fault_calloc(n, sizeof(*sp->redo));
	if (!sp->jobs || !sp->ctx || !sp->copy || !sp->redo)
		return -ENOMEM;
	for (off = 0; sp->n < n; off += run, sp->n++) {
		struct extent_io_job *j = &sp->jobs[sp->n];
		struct copy_loc loc;

		map_copy_run(rd->fs, rd->logical + off, rd->len - off, 0, &loc, &run);
		data_read_job(rd, 0, j);
		j->len = run;
		j->src.logical = rd->logical + off;
		j->src.dun = rd->dun + off / unit;
		j->mem = mem ? mem + off : NULL;
		j->priv = &sp->ctx[sp->n];
		sp->ctx[sp->n] = (struct sink_ctx){ s->fn, s->arg, off };
		if (piece_copy(sp, sp->n, 0))
			return -ENODEV;
	}
	rd->csums.mismatch = note_piece_mismatch;
	rd->csums.arg = sp;
	return 0;
}

/*
 * Read a split range: every piece, then the pieces that had a bad unit
 * from their next copies until none has; 0, -EBADMSG (a piece without a
 * good copy) or another negative errno.
 */
static int run_split(struct extent_io *io, struct data_read *rd, uint8_t *mem,
		     struct sink_ctx *s)
{
	struct extent_io_job *batch = NULL;
	struct split sp;
	int ret = split_build(rd, mem, s, &sp);
	size_t nb = sp.n;

	if (!ret && !(batch = fault_malloc(sp.n * sizeof(*batch))))
		ret = -ENOMEM;
	if (!ret)
		memcpy(batch, sp.jobs, sp.n * sizeof(*batch));
	while (!ret && nb) {
		ret = extent_io_run(io, batch, nb);
		if (ret > 0)
			ret = 0;
		nb = 0;
		for (size_t i = 0; !ret && i < sp.n; i++) {
			if (!sp.redo[i])
				continue;
			sp.redo[i] = false;
			if (sp.copy[i] + 1 > rd->bad_copy)
				rd->bad_copy = sp.copy[i] + 1;
			if (piece_copy(&sp, i, sp.copy[i] + 1))
				ret = -EBADMSG;	/* no good copy left for this piece */
			batch[nb++] = sp.jobs[i];
		}
	}
	free(batch);
	split_free(&sp);
	return ret;
}

/* One attempt of an unsplit range: copy `copy`. */
static int run_copy(struct extent_io *io, struct data_read *rd, int copy, uint8_t *mem,
		    struct sink_ctx *s)
{
	struct extent_io_job job = { 0 };

	data_read_job(rd, copy, &job);
	job.mem = mem;
	job.priv = s;
	return extent_io_run(io, &job, 1);
}

int data_read_run(struct extent_io *io, struct data_read *rd, uint8_t *mem,
		  data_read_sink_fn sink, void *arg)
{
	struct sink_ctx s = { sink, arg, 0 };
	int ret = -ENODEV;

	rd->bad_logical = 0;
	rd->bad_copy = 0;
	if (rd->split)
		ret = run_split(io, rd, mem, &s);
	for (int copy = 0; !rd->split && copy < rd->copies; copy++) {
		if (rd->missing[copy])
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
