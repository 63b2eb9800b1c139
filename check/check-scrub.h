/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The offline scrub of `check --check-data-csum`: verifies data csums over
 * the stored bytes (ciphertext for encrypted extents, Documentation/format.rst section 7)
 * through the crypto/extent-io pipeline, on all worker threads.
 *
 * Kept free of btrfs headers: crypto/ headers and kernel-shared/ondisk.h
 * both define the fscrypt context structs, so this file sees only the
 * pipeline and plain integers.
 */
#ifndef EXTCRYPT_CHECK_SCRUB_H
#define EXTCRYPT_CHECK_SCRUB_H

#include <stddef.h>
#include <stdint.h>

/* One contiguous run of csummed sectors on one mirror. */
struct scrub_range {
	uint64_t logical;
	uint64_t physical;	/* device offset of logical on this mirror */
	uint32_t dev;		/* the device: index in scrub_params.fds (0 without) */
	uint64_t len;		/* bytes, a multiple of the unit */
	const uint8_t *csums;	/* len / unit packed digests */
	int mirror;		/* 1-based, as btrfs numbers mirrors */
	int rebuild;		/* extent_io_loc.rebuild: a RAID5/6 copy rebuilt from parity */
};

/* Called once per bad sector, serialised; found/expected are csum_size bytes. */
typedef void (*scrub_bad_fn)(void *arg, uint64_t logical, int mirror,
			     const uint8_t *found, const uint8_t *expected);

struct scrub_params {
	int fd;
	const int *fds;		/* the devices of a multi-device filesystem; NULL: fd only */
	uint32_t nfds;
	int csum_type;
	uint32_t unit;		/* sectorsize */
	unsigned int threads;	/* 0: online CPUs */
	scrub_bad_fn bad;
	void *arg;
	/* Optional: bytes verified so far, called while scrub_finish() waits. */
	void (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
	/* For ranges with rebuild: extent_io_params.rebuild and its arg. */
	int (*rebuild)(void *arg, uint64_t logical, int k, uint8_t *buf, uint32_t len);
	void *rebuild_arg;
};

/*
 * Verify all ranges in the background: scrub_start() hands them to the
 * workers and returns 0 (or a negative errno with a reason in err, and then
 * *out is NULL); the caller's thread is free until scrub_finish(), which
 * waits, frees, and returns 0 (bad sectors went to bad()) or a negative
 * errno for an I/O error or a pipeline failure, with a reason in err.
 * *bytes (optional) receives the number of bytes read.  p and r must stay
 * valid until then.  scrub_finish(NULL, ...) returns 0.
 */
struct scrub_job;
int scrub_start(const struct scrub_params *p, const struct scrub_range *r, size_t n,
		struct scrub_job **out, char *err, size_t errlen);
int scrub_finish(struct scrub_job *s, uint64_t *bytes, char *err, size_t errlen);

#endif
