// SPDX-License-Identifier: GPL-2.0
/*
 * The file-data read path (data/read.h): stored bytes through the pipeline,
 * csums verified by extent_io_csum_process() before decryption, the second
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
	rd->copies = m->num_stripes > 1 ? 2 : 1;
	for (int i = 0; i < rd->copies; i++)
		rd->physical[i] = m->physical[i] + (rd->logical - m->logical);
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
}

struct sink_ctx {
	data_read_sink_fn fn;
	void *arg;
};

static int read_consume(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
			const uint8_t *buf, uint32_t len, void *priv)
{
	const struct sink_ctx *s = priv;

	return s->fn(s->arg, off, buf, len);
}

void data_read_setup(struct extent_io_params *params)
{
	params->process = extent_io_csum_process;
	params->consume = read_consume;
}

int data_read_run(struct extent_io *io, struct data_read *rd, uint8_t *mem,
		  data_read_sink_fn sink, void *arg)
{
	struct sink_ctx s = { sink, arg };
	int ret = -EINVAL;

	rd->bad_logical = 0;
	rd->bad_copy = 0;
	for (int copy = 0; copy < rd->copies; copy++) {
		struct extent_io_job job = { 0 };

		data_read_job(rd, copy, &job);
		job.mem = mem;
		job.priv = &s;
		rd->bad_logical = 0;
		ret = extent_io_run(io, &job, 1);
		if (ret != -EBADMSG)
			break;
		rd->bad_copy = copy + 1;
	}
	if (ret == -EBADMSG)
		return fs_err(rd->fs, -EBADMSG, "data checksum mismatch in extent %llu", rd->extent);
	if (ret == -ENOMEM)
		return fs_err(rd->fs, ret, "out of memory");
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
