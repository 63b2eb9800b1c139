/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ctree-mod.c: changing a tree inside a transaction.  Every block on a
 * modified path is copied on write (Documentation/design.rst section 3);
 * leaves and nodes are split, merged and collapsed as items come and go.
 * The transaction and its roots (struct trans, struct trans_root) are
 * transaction.h; paths and the read-only search are ctree.h.
 */
#ifndef EXTCRYPT_CTREE_MOD_H
#define EXTCRYPT_CTREE_MOD_H

#include "kernel-shared/ctree.h"

struct trans;
struct trans_root;

/*
 * Search for key in root for modification: every block on the path is
 * copied on write.  ins_len > 0 makes room for an item of ins_len bytes
 * (header included) in the leaf, splitting nodes and leaves on the way;
 * ins_len < 0 prepares for a deletion.  Returns like search_slot(); unlike
 * it, a miss leaves p at the insertion slot of the leaf (slot may equal
 * nritems) so that insert_empty_item() can be called directly.
 */
int search_slot_mod(struct trans *t, struct trans_root *root,
		    const struct btrfs_key *key, struct btrfs_path *p, int ins_len);

/*
 * Insert an item of data_size bytes with key (which must not exist) and
 * return its data pointer through *ptr, zero-filled.  Returns 0, -EEXIST, or
 * another negative errno.  The path is released.
 */
int insert_item(struct trans *t, struct trans_root *root, const struct btrfs_key *key,
		const void *data, u32 data_size);
/* Like insert_item but leaves p at the new item for the caller to fill. */
int insert_empty_item(struct trans *t, struct trans_root *root, struct btrfs_path *p,
		      const struct btrfs_key *key, u32 data_size);

/* Delete nr items starting at p's slot (from a search_slot_mod(..., -1)). */
int del_items(struct trans *t, struct trans_root *root, struct btrfs_path *p, u32 nr);

/* Grow or shrink the item at p's slot to new_size bytes (data kept; growth zeroed). */
int resize_item(struct trans *t, struct trans_root *root, struct btrfs_path *p,
		u32 new_size);

/* Change the key of the item at p's slot; order with neighbours must hold. */
int set_item_key(struct trans *t, struct btrfs_path *p, const struct btrfs_key *key);

/* Writable pointer to the item at p's slot (the leaf is dirty after search_slot_mod). */
u8 *path_ptr_mut(struct btrfs_path *p);

/*
 * Before a commit: the leaves this transaction wrote, under a node it wrote,
 * are packed left, each filled from the next as far as whole items fit;
 * emptied ones are freed.  Splits in the middle leave a tree edited front
 * to back half full; this gives it back the density it had.  Blocks of
 * earlier transactions are neither read nor copied.
 */
int tree_pack_new_leaves(struct trans *t, struct trans_root *root);

/* Free bytes in a leaf (for items and their headers). */
u32 leaf_free_space(const struct fs_info *fs, const struct tree_block *b);
/* Max bytes of item data in one leaf (nodesize - header - one item header). */
static inline u32 max_item_size(const struct fs_info *fs)
{
	return fs->nodesize - sizeof(struct btrfs_header) - sizeof(struct btrfs_item);
}

#endif
