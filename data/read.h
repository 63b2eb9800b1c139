/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one file-data read path (Documentation/design.rst section 2):
 *
 *   read stored bytes -> verify csums (extent_io_csum_process) -> decrypt -> decompress -> sink
 *
 * used by restore, check's key checks (rule C12) and the read half of the
 * encrypt/decrypt engine's copies.  A struct data_read describes a range of
 * one disk extent's stored bytes: its copies in the image, its DUN and
 * nonce, and the csums that cover it.  data_read_map() fills one from the
 * image (stripe layer, csum tree); data_read_run() reads it through a
 * pipeline, verifying the csums before decryption and trying the next
 * copy (DUP, RAID1*, RAID10) when one's csums do not match; data_read_decode()
 * does that for a whole compressed extent and decompresses it.  Writers
 * that copy an extent (the engine) take the read half of their jobs from
 * data_read_job() and run the jobs themselves.
 *
 * The pipeline (crypto/extent-io.h) must be set up by data_read_setup():
 * extent_io_csum_process as its process callback, this module's consume
 * callback, and the devices of the filesystem (params.fds).  Errors are negative errnos described in
 * fs_errmsg(fs) (kernel-shared/ctree.h).
 */
#ifndef EXTCRYPT_DATA_READ_H
#define EXTCRYPT_DATA_READ_H

#include <stdbool.h>
#include <stdint.h>
#include "crypto/extent-io.h"
#include "kernel-shared/ctree.h"

#define DATA_READ_MAX_COPIES	4	/* RAID1C4 (kernel-shared/volumes.h MAX_COPIES) */

struct data_read {
	struct fs_info *fs;		/* for messages; may be NULL */
	u64 extent;		/* logical address of the disk extent (messages) */
	u64 logical;		/* logical address of the first byte read */
	u64 len;			/* bytes: a non-zero multiple of the unit */
	/*
	 * Where each copy starts: device offset and index (fs->devs, the
	 * pipeline's params.fds; 0 on a one-device image).  A copy on a missing
	 * device is skipped.  split: the range crosses stripe elements (RAID0,
	 * RAID10, RAID5/6), and data_read_run() maps it piece by piece
	 * through rd->fs's stripe layer (data_read_job() takes contiguous
	 * ranges only).
	 */
	u64 physical[DATA_READ_MAX_COPIES];
	u32 dev[DATA_READ_MAX_COPIES];
	bool missing[DATA_READ_MAX_COPIES];
	int rebuild[DATA_READ_MAX_COPIES];	/* copy_loc.rebuild: a RAID5/6 copy rebuilt from parity */
	int copies;			/* physical[] in use: 1 to DATA_READ_MAX_COPIES */
	bool split;
	u64 dun;			/* DUN of the first data unit */
	const u8 *nonce;		/* extent nonce; NULL: deliver the stored bytes */
	/*
	 * The identifier of the extent's master key (its context's), kept as
	 * a pointer: the pipeline decrypts with the key of params.keys (or
	 * params.key) that has it, and a read fails with -ENOKEY when none
	 * has.  NULL (as data_read_map() leaves it): params.key.
	 */
	const u8 *key_id;
	/*
	 * The csums of the range (csums.expected NULL: none are verified);
	 * csums.present (optional) says which units have one.  Its mismatch
	 * handler and arg are set by data_read_job().
	 */
	struct extent_io_csums csums;
	u8 *owned_sums, *owned_present;	/* data_read_map()'s, freed by data_read_release() */
	/* After a failed verification: the first bad unit of the last copy tried. */
	u64 bad_logical;
	int bad_copy;			/* 1-based; 0: none */
};

/* What data_read_map() looks up. */
#define DATA_READ_CSUMS		(1U << 0)	/* verify csums: every unit must have one */
#define DATA_READ_SOME_CSUMS	(1U << 1)	/* verify the csums that exist (present map) */

/*
 * Describe [start, start + len) of the disk extent at logical disk for
 * reading: its copies (chunk map), DUN start / sectorsize, nonce (kept as
 * a pointer: keep it alive), and with DATA_READ_CSUMS or
 * DATA_READ_SOME_CSUMS its csums from csum_root (NULL: look the csum tree
 * up).  On a metadata dump none are verified: DATA_READ_CSUMS looks
 * nothing up, DATA_READ_SOME_CSUMS only fills the present map.  Returns 0, -EUCLEAN ("extent %llu is not mapped", "extent %llu:
 * checksums missing"), -ENOMEM, or an error of the csum lookup.  Release
 * rd with data_read_release() whatever the result.
 */
int data_read_map(struct fs_info *fs, const struct root_ref *csum_root, u64 disk, u64 start,
		  u64 len, unsigned int flags, const u8 *nonce, struct data_read *rd);
void data_read_release(struct data_read *rd);

/*
 * The read half of a pipeline job for copy (0-based) of rd: EXTENT_IO_READ
 * is added to job->flags and job->src set, the csums of rd as its process
 * priv.  rd must stay where it is until the job has run.
 */
void data_read_job(struct data_read *rd, int copy, struct extent_io_job *job);

/*
 * Plaintext of a read: len bytes at byte off of what was read (of the range,
 * or of the decompressed data).  Without compression it runs on pipeline
 * workers, several at once on disjoint ranges.  0 or a negative errno.
 */
typedef int (*data_read_sink_fn)(void *arg, uint64_t off, const uint8_t *buf, uint64_t len);

/*
 * Set the pipeline's process, consume and rebuild callbacks and fs's
 * devices (fs may be NULL).
 */
void data_read_setup(struct extent_io_params *params, const struct fs_info *fs);
/* The pipeline's rebuild hook (extent_io_params.rebuild): arg is the fs_info. */
int data_read_rebuild(void *arg, uint64_t logical, int k, uint8_t *buf, uint32_t len);

/*
 * Read rd through io into mem (rd->len bytes) or, with mem NULL, to sink.
 * Copies are tried in turn while the csums do not match.  Returns 0;
 * -EBADMSG when no copy matches ("data checksum mismatch in extent %llu",
 * rd->bad_logical and bad_copy set); or another negative errno ("reading
 * extent %llu failed: ...").  Some plaintext may have reached sink before
 * an error, and a later copy delivers it again.
 */
int data_read_run(struct extent_io *io, struct data_read *rd, uint8_t *mem,
		  data_read_sink_fn sink, void *arg);

/*
 * A whole compressed extent: read rd (its stored bytes) as data_read_run()
 * does, then decompress with btrfs compression type compression into at
 * most ram bytes.  Returns the read's error (negative), or 0 with *decoded
 * set to btrfs_decompress()'s result: the plaintext length, handed to sink
 * (if any) at offset 0 when >= 0, or -EINVAL / -EUCLEAN when the stream
 * does not decompress.  An error of sink is returned.
 */
int data_read_decode(struct extent_io *io, struct data_read *rd, int compression, u64 ram,
		     data_read_sink_fn sink, void *arg, long *decoded);

#endif
