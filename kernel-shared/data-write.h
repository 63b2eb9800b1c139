/* SPDX-License-Identifier: GPL-2.0 */
/*
 * New plain file data and holes, and the items of a new extent.  Encrypted
 * data is written by the re-encryption engine (reencrypt/) through the data
 * pipeline; this file knows no cipher.
 */
#ifndef EXTCRYPT_DATA_WRITE_H
#define EXTCRYPT_DATA_WRITE_H

#include "kernel-shared/transaction.h"

struct fscrypt_extent_context;

/* Insert a hole item for [off, off + len) of ino (images without NO_HOLES). */
int data_insert_hole(struct trans *t, struct trans_root *root, u64 ino, u64 off, u64 len);

/*
 * Write len bytes of plaintext as a new regular extent of ino at file offset
 * off (zero-padded to whole sectors): allocate it, write it to every copy
 * (computing csums unless the inode is NODATASUM), insert the csums, the
 * file extent item and its reference.  The range must hold no extent.
 * Meant for small amounts (an inline extent's data); returns 0 or <0 with
 * fs_errmsg(fs) set.
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

#endif
