/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the unit-test files; the framework itself is unit.h. */
#ifndef EXTCRYPT_UNIT_HELPERS_H
#define EXTCRYPT_UNIT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "crypto/fscrypt-keys.h"
#include "kernel-shared/ondisk.h"

/* The extent-io fixtures map logical = physical + EIO_BASE_LOGICAL. */
#define EIO_BASE_LOGICAL (1ULL << 34)

/* p[i] = first + i. */
void seq_bytes(uint8_t *p, size_t n, uint8_t first);
/* The Documentation/format.rst section 13 master key (bytes 00..3f); a failure is a CHECK. */
void test_master(struct fscrypt_master_key *mk);
/* An unlinked temporary file in $TMPDIR (or /tmp); -1 on failure. */
int temp_fd(void);
/* CLOCK_MONOTONIC in seconds. */
double now_sec(void);

struct fs_info;
struct trans;
struct trans_root;
/*
 * A fresh empty mkfs.btrfs image (128 MiB, 4 KiB nodes), opened for
 * writing and already unlinked; NULL (saying why) without mkfs.btrfs or
 * on failure (a CHECK).  Close with close_image().
 */
struct fs_info *scratch_image_open(void);

/* A scratch image with a transaction on one of its trees (aborted at the close). */
struct scratch_tree {
	struct fs_info *fs;
	struct trans *t;
	struct trans_root *root;
};

/* false (a CHECK, or no mkfs.btrfs) if it cannot; scratch_tree_close() in either case. */
bool scratch_tree_open(struct scratch_tree *s, u64 tree);
void scratch_tree_close(struct scratch_tree *s);

#endif
