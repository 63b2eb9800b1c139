/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tree-check-image.c: the tree-checker's rules (tree-checker.h) over every
 * block of an image, each block once.
 */
#ifndef EXTCRYPT_TREE_CHECK_IMAGE_H
#define EXTCRYPT_TREE_CHECK_IMAGE_H

#include "kernel-shared/ctree.h"

/*
 * Apply the rules to every block of the image once: the chunk tree, the root
 * tree and every tree it lists, except dead and half-dropped subvolumes
 * (their freed blocks are never read).  The write commands call this before
 * their first write, so that they never build on a block the kernel would
 * refuse.  Returns 0, or -EUCLEAN with fs_errmsg(fs) naming the first
 * block, slot, key and rule broken, or another errno from reading.
 */
int tree_check_image(struct fs_info *fs);

/*
 * The superblock-level part of tree_check_image() alone (its flags, the
 * system chunk array against the chunk tree): for a command that runs
 * check's rules (check/check-run.h, check_verify_image()) over every block
 * before its first write, which include the tree-checker's rules of every
 * block this walk would see.  Same returns.
 */
int tree_check_super(struct fs_info *fs);

#endif
