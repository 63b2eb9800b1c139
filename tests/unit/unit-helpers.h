/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the unit-test files; the framework itself is unit.h. */
#ifndef EXTCRYPT_UNIT_HELPERS_H
#define EXTCRYPT_UNIT_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include "crypto/fscrypt-keys.h"

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
/*
 * A fresh empty mkfs.btrfs image (128 MiB, 4 KiB nodes), opened for
 * writing and already unlinked; NULL (saying why) without mkfs.btrfs or
 * on failure (a CHECK).  Close with close_image().
 */
struct fs_info *scratch_image_open(void);

#endif
