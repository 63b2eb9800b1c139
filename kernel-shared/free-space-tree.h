/* SPDX-License-Identifier: GPL-2.0 */
/* free-space-tree.c: the free-space tree kept in step with allocations. */
#ifndef EXTCRYPT_FREE_SPACE_TREE_H
#define EXTCRYPT_FREE_SPACE_TREE_H

#include "kernel-shared/transaction.h"

/*
 * Mark [start, start + len) allocated (remove) or free (add) in the
 * free-space tree of its block group, converting between the extent and
 * bitmap forms at the kernel's thresholds.  Returns 0 or a negative errno;
 * -EUCLEAN when the tree disagrees (the range is not free / already free).
 */
int fst_remove_range(struct trans *t, u64 start, u64 len);
int fst_add_range(struct trans *t, u64 start, u64 len);

/*
 * A new block group: its info item and one free extent over all of it, as
 * the kernel writes them.  fst_remove_group() deletes every item of a
 * removed one.
 */
int fst_add_group(struct trans *t, u64 start, u64 len);
int fst_remove_group(struct trans *t, u64 start, u64 len);

#endif
