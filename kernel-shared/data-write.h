/* SPDX-License-Identifier: GPL-2.0 */
/* New file data and holes, written through the data pipeline (crypto/extent-io). */
#ifndef EXTCRYPT_DATA_WRITE_H
#define EXTCRYPT_DATA_WRITE_H

#include <sys/types.h>
#include "kernel-shared/transaction.h"

struct extent_io;
struct fscrypt_extent_context;

/* Insert a hole item for [off, off + len) of ino (images without NO_HOLES). */
int data_insert_hole(struct trans *t, struct trans_root *root, u64 ino, u64 off, u64 len);

/*
 * Write len bytes of plaintext as a new regular extent of ino at file offset
 * off (zero-padded to whole sectors): allocate it, write it through the
 * pipeline (computing csums unless the inode is NODATASUM), insert the csums,
 * the file extent item and its reference.  The range must hold no extent.
 */
int data_write_new_extent(struct trans *t, struct trans_root *root, u64 ino, u64 off,
			  const u8 *data, u64 len);

/*
 * The items of a new extent whose data is (or will be) at bytenr: the file
 * extent item of ino at off (len bytes, encrypted when ectx is given, with
 * ectx as its context item) and the reference.  Csums are the caller's.
 */
int data_extent_insert(struct trans *t, struct trans_root *root, u64 ino, u64 off, u64 bytenr,
		       u64 len, const struct fscrypt_extent_context *ectx);

/*
 * The same through a caller's pipeline (io, which holds the master key),
 * encrypting with ectx's nonce when ectx is not NULL: the item then has
 * encryption 1 and ectx is stored as its context item.
 */
int data_write_extent(struct trans *t, struct extent_io *io, struct trans_root *root,
		      u64 ino, u64 off, const u8 *data, u64 len,
		      const struct fscrypt_extent_context *ectx);

/*
 * Csums of data going through the pipeline, sector by sector: only sectors
 * marked present are verified on read and computed on write.  A partly
 * written prealloc extent has csums for its written part only (format.md
 * 2.9, 6).  sector_sums_process() is the process callback for it (priv may
 * be NULL: nothing to do).
 */
struct sector_sums {
	int type;
	uint32_t csum_size, unit;
	uint64_t logical, count;
	uint8_t *sums;		/* verify: expected; compute: output */
	const uint8_t *present;	/* one byte per sector */
	bool verify;
};

int sector_sums_process(struct extent_io *io, const uint8_t *buf, uint64_t logical,
			uint32_t len, void *priv);

/* extent_io_csum_process() that lets jobs without csums (priv NULL) pass. */
int data_csum_process(struct extent_io *io, const uint8_t *buf, uint64_t logical, uint32_t len,
		      void *priv);

/* pwrite(2) with the fault-injection hook of image_pwrite(), for the pipeline. */
ssize_t fault_pwrite(int fd, const void *buf, size_t count, off_t offset);

#endif
