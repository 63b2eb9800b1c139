/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Extent backrefs (Documentation/format.rst 2.8): decoding the inline refs
 * packed after an EXTENT_ITEM / METADATA_ITEM and the keyed ref items that
 * follow it, and an iterator over both.
 *
 * Every byte is treated as hostile: each decode step is bounds checked
 * against the end of its item and never reads past it.  The decode steps
 * are also what the tree-checker and `check` use on raw leaves; the
 * iterator walks a path in the extent tree.
 */
#ifndef EXTCRYPT_BACKREF_H
#define EXTCRYPT_BACKREF_H

#include <errno.h>
#include <stdbool.h>
#include "kernel-shared/ondisk.h"

struct fs_info;
struct btrfs_path;

/* What a reference is: the backref kinds of Documentation/format.rst 2.8. */
enum ref_kind {
	REF_TREE_BLOCK = 0,	/* TREE_BLOCK_REF: root */
	REF_SHARED_BLOCK = 1,	/* SHARED_BLOCK_REF: parent */
	REF_DATA = 2,		/* EXTENT_DATA_REF: root, objectid, offset, count */
	REF_SHARED_DATA = 3,	/* SHARED_DATA_REF: parent, count */
	REF_OWNER = 4,		/* EXTENT_OWNER_REF (inline only, simple quotas): root */
};

/* A decoded backref. */
struct backref {
	enum ref_kind kind;
	u8 type;		/* the on-disk type (inline type byte or key type) */
	bool is_inline;
	u64 root;		/* TREE_BLOCK, DATA, OWNER */
	u64 parent;		/* SHARED_BLOCK, SHARED_DATA */
	u64 objectid;		/* DATA: inode */
	u64 offset;		/* DATA: file offset (as stored, wrapping) */
	u32 count;		/* DATA, SHARED_DATA as stored; 1 for the others */
	u32 size;		/* inline: bytes the ref takes in the item */
	int error;		/* backref_iter_next() BACKREF_BAD: the decode error */
};

/* Decode errors (negative errno values). */
#define BACKREF_TRUNCATED	(-EUCLEAN)	/* the ref runs past the end of its item */
#define BACKREF_UNKNOWN		(-EPROTO)	/* not a backref type */

/* Bytes an inline ref of this type takes, or 0 for an unknown type. */
u32 backref_inline_size(u8 type);

/* The key type of a kind's keyed ref (and of its inline ref). */
u8 backref_key_type(enum ref_kind kind);

/* The ordering value inside one type: the data ref hash, else the root or parent. */
u64 backref_seq(const struct backref *br);

/*
 * Decode the inline ref at p, with avail bytes left in the item.  Returns
 * its size (> 0), BACKREF_UNKNOWN (br->type set) or BACKREF_TRUNCATED
 * (br->type and br->kind set).  The type is judged before the length.
 */
int backref_decode_inline(const u8 *p, u32 avail, struct backref *br);

/*
 * Decode a keyed ref item (key k, size bytes at p).  Returns 0,
 * BACKREF_UNKNOWN if k is not a backref key, or BACKREF_TRUNCATED if the
 * item is too small for its count (then the key-derived fields are set).
 * Tree block refs carry nothing but the key: their size is not judged here.
 */
int backref_decode_keyed(const struct btrfs_key *k, const u8 *p, u32 size,
			 struct backref *br);

/*
 * Bytes before the inline refs of an extent item: the extent item, and the
 * tree block info of a non-skinny tree block.
 */
u32 backref_inline_start(const struct btrfs_key *k, const u8 *item, u32 size);

/* Iterator over the backrefs of one extent: its inline refs, then its keyed refs. */
struct backref_iter {
	struct fs_info *fs;
	struct btrfs_path *path;
	u64 bytenr;
	u32 pos;		/* next inline ref in the extent item */
	bool in_item;		/* inside the extent item's inline refs */
	bool started;
	bool step;		/* a keyed ref was returned: move past it first */
	int done;		/* 1 or a tree error once the walk ended */
};

/*
 * Start at the item under path: normally the extent item of bytenr (an
 * item too small to hold one has no inline refs).  Items of bytenr that
 * are not backrefs are skipped; the walk ends at the first other objectid.
 */
void backref_iter_init(struct backref_iter *it, struct fs_info *fs, struct btrfs_path *path,
		       u64 bytenr);

/*
 * The next backref.  Returns 0 with *br set, 1 at the end, a negative errno
 * from the tree, or BACKREF_BAD for a ref that does not decode: br->error
 * says why (fields decoded as for the decode steps).  After a bad inline
 * ref (br->is_inline) the walk cannot go on except by
 * backref_iter_skip_inline(); after a bad keyed ref it goes on.
 */
#define BACKREF_BAD 2
int backref_iter_next(struct backref_iter *it, struct backref *br);

/* Leave the rest of the extent item's inline refs unread: go on with the keyed refs. */
void backref_iter_skip_inline(struct backref_iter *it);

#endif
