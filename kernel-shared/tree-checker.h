/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's read-time tree-checker, as a library (Documentation/format.rst,
 * "Tree-checker rules").
 *
 * The kernel checks every leaf and node it reads from disk against a set of
 * rules on keys, item sizes and item contents, and refuses the whole block
 * ("corrupt leaf") when one is broken: an image whose blocks break them
 * cannot be used, whatever else is right with it.  These functions apply the
 * same rules, plus the few item-shape rules btrfs check adds, to a block the
 * engine has read (its checksum, header and item table already verified by
 * read_tree_block()), and report every item that breaks one.
 *
 * tree-checker.c holds the rules; tree_check_image() (tree-check-image.h)
 * applies them to every block of an image.
 *
 * The rules follow the kernel of the fscrypt series (Documentation/format.rst section 5):
 * EXTENT_DATA may carry encryption 1, and the extent context item (42) has a
 * key and size rule; the inode context item (41) has none.
 */
#ifndef EXTCRYPT_TREE_CHECKER_H
#define EXTCRYPT_TREE_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include "kernel-shared/ctree.h"

/*
 * Where violations go: bad() is called once per broken rule with the block,
 * the slot (-1 for the block as a whole) and the rule in words, in the
 * kernel's terms ("unaligned file_offset for file extent, have 256 should be
 * aligned to 4096").
 */
struct tree_check_report {
	void (*bad)(void *arg, const struct tree_block *b, int slot, const char *why);
	void *arg;
};

/*
 * Check a leaf or a node.  Returns the number of violations reported (0: the
 * kernel accepts the block).
 */
unsigned int tree_check_block(const struct fs_info *fs, const struct tree_block *b,
			      const struct tree_check_report *r);

/* What tree_check_header() found wrong with a block's header. */
enum tree_header_problem { TREE_HEADER_OK = 0, TREE_HEADER_FLAGS, TREE_HEADER_OWNER };

/*
 * The header of block b of tree `tree`: the kernel's owner rule (a block of
 * a subvolume tree is owned by a subvolume tree, any other block by its own
 * tree; log and relocation trees are not judged) and btrfs check's flag
 * rules (no unknown flags, the filesystem's backref revision).  Returns
 * what is wrong, with the rule in why.
 */
enum tree_header_problem tree_check_header(const struct fs_info *fs, const struct tree_block *b,
					   u64 tree, char *why, size_t whylen);

/*
 * Check one chunk item: a leaf item of size item_size, or an entry of the
 * superblock's system chunk array (item_size 0: its size is not known apart
 * from num_stripes).  logical is the chunk's key offset.  Returns 0, or
 * -EUCLEAN with the rule in why (whylen bytes).
 */
int tree_check_chunk(const struct fs_info *fs, const struct btrfs_chunk *chunk, u32 item_size,
		     u64 logical, char *why, size_t whylen);

/*
 * The superblock's flags: NULL when they are fine, else why not (unknown
 * bits, an interrupted btrfstune change; and for writing, a seed device).
 */
const char *tree_check_super_flags(u64 flags, bool writing);

/* Whether id is a subvolume tree (the top level or a subvolume/snapshot id). */
bool tree_is_fs_tree(u64 id);

#endif
