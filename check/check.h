/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internals of the `check` command, shared by the files of check/ and cmds/check.c.
 *
 * The checker runs in passes over an image opened read-only:
 *   1. trees      every tree is walked once, every block verified
 *                 (check-trees.c); leaves are handed to collectors:
 *                 extent tree records, block groups, csum items, free
 *                 space entries and, for fs trees, the per-inode checker
 *   2. fs trees   inodes, names, file extents and the encryption rules
 *                 C2..C11 (check-fs.c)
 *   3. extents    extent items and backrefs against the references found
 *                 in step 1, block group `used`, free space tree
 *                 (check-extents.c)
 *   4. csums      csum items against data extents; --check-data-csum
 *                 scrub of all data through the extent-io pipeline
 *                 (check-csum.c)
 *   5. key        with a master key: C12 (check-key.c)
 * Every finding goes through check_report() with a code of the problem
 * table in check-problems.c, which is the one source of message text.
 */
#ifndef EXTCRYPT_CHECK_H
#define EXTCRYPT_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include "kernel-shared/ctree.h"
#include "kernel-shared/backref.h"
#include "common/containers.h"
#include "common/spill.h"

/* ---- problem table (check-problems.c) --------------------------------- */

enum check_severity { SEV_ERROR = 0, SEV_WARNING = 1, SEV_NOTE = 2 };

enum check_problem {
	/* tree structure */
	PR_TREE_BLOCK_BAD,
	PR_TREE_ROOT_BAD,
	PR_TREE_BLOCK_SHARED,
	PR_LOG_TREE_IGNORED,
	PR_METADUMP_DATA_NOT_CHECKED,
	PR_TREE_CHECKER,
	PR_TREE_BLOCK_OWNER,
	PR_TREE_BLOCK_HEADER,
	PR_TREE_BLOCK_BAD_COPY,
	PR_TREE_KEY_RANGE,
	/* chunks and devices */
	PR_SYS_CHUNK_BAD,
	PR_DEV_EXTENT_MISSING,
	PR_DEV_EXTENT_MISMATCH,
	PR_DEV_EXTENT_ORPHAN,
	PR_DEV_EXTENT_BEYOND,
	PR_DEV_EXTENT_OVERLAP,
	PR_DEV_BYTES_USED,
	PR_DEVICE_MISSING,
	PR_DEVICE_COUNT,
	PR_DEVICE_SIZE_UNALIGNED,
	PR_DEVICE_ITEM_MISMATCH,
	PR_SUPER_TOTAL_BYTES,
	PR_SUPER_FLAGS,
	PR_SUPER_FEATURES,
	/* extent tree */
	PR_EXTENT_ITEM_MISSING,
	PR_EXTENT_ITEM_UNUSED,
	PR_EXTENT_ITEM_BAD,
	PR_EXTENT_ITEM_OVERLAP,
	PR_EXTENT_REFS_MISMATCH,
	PR_EXTENT_BACKREF_MISSING,
	PR_EXTENT_BACKREF_UNUSED,
	PR_EXTENT_BACKREF_COUNT,
	PR_EXTENT_SIZE_MISMATCH,
	PR_EXTENT_CHUNK_TYPE,
	PR_EXTENT_GENERATION,
	PR_BLOCK_GROUP_USED,
	PR_BLOCK_GROUP_CHUNK,
	PR_SUPER_BYTES_USED,
	/* quota groups */
	PR_QGROUP_COUNT_MISMATCH,
	PR_QGROUP_NOT_VERIFIED,
	/* free space tree */
	PR_FREE_SPACE_MISMATCH,
	PR_FREE_SPACE_COUNT,
	PR_FREE_SPACE_INFO_MISSING,
	PR_FREE_SPACE_ORPHAN,
	PR_FREE_SPACE_LEFTOVER,
	PR_FREE_SPACE_ITEM_BAD,
	/* csums */
	PR_CSUM_MISSING,
	PR_CSUM_ORPHAN,
	PR_CSUM_OVERLAP,
	PR_CSUM_ITEM_BAD,
	PR_CSUM_NODATASUM,
	PR_CSUM_PREALLOC,
	PR_DATA_CSUM_MISMATCH,
	PR_DATA_BAD_COPY,
	PR_PARITY_MISMATCH,
	PR_DATA_READ_ERROR,
	/* inodes and names */
	PR_INODE_ITEM_MISSING,
	PR_INODE_ITEM_BAD,
	PR_INODE_NBYTES,
	PR_INODE_SIZE,
	PR_INODE_NLINK,
	PR_INODE_NO_ORPHAN_ITEM,
	PR_INODE_FLAGS,
	PR_INODE_MODE,
	PR_INODE_GENERATION,
	PR_FILE_EXTENT_BAD,
	PR_FILE_EXTENT_OVERLAP,
	PR_FILE_EXTENT_GAP,
	PR_INLINE_EXTENT_BAD,
	PR_DIR_INDEX_MISSING,
	PR_DIR_ITEM_MISSING,
	PR_INODE_REF_MISSING,
	PR_DIR_ENTRY_MISMATCH,
	PR_DIR_ITEM_HASH,
	PR_DIR_ITEM_BAD,
	PR_ROOT_DIR_BAD,
	PR_ROOT_GENERATION,
	/* encryption (Documentation/format.rst section 11) */
	PR_ENCRYPT_INCOMPAT_MISSING,
	PR_INODE_CTX_MISSING,
	PR_INODE_CTX_ORPHAN,
	PR_INODE_CTX_INVALID,
	PR_INODE_CTX_WRONG_TYPE,
	PR_EXTENT_ENCRYPTION_INVALID,
	PR_EXTENT_ENCRYPTION_UNEXPECTED,
	PR_EXTENT_PLAINTEXT,
	PR_INLINE_IN_ENCRYPTED_FILE,
	PR_EXTENT_CTX_MISSING,
	PR_EXTENT_CTX_STALE,
	PR_EXTENT_CTX_INVALID,
	PR_EXTENT_CTX_SIZE,
	PR_EXTENT_CTX_KEY_MISMATCH,
	PR_EXTENT_CTX_MODE_MISMATCH,
	PR_SHARED_EXTENT_MISMATCH,
	PR_DIR_ENTRY_FT_ENCRYPTED,
	PR_PLAIN_INODE_IN_ENCRYPTED_DIR,
	PR_POLICY_MISMATCH,
	PR_ENCRYPTED_NAME_HASH,
	PR_ENCRYPTED_NAME_LENGTH,
	PR_SYMLINK_DATA_BAD,
	PR_SYMLINK_DATA_LONG,
	PR_NONCE_REUSE,
	PR_LEGACY_EXTENT_CTX,
	PR_NOT_ENCRYPTED,
	PR_REQUIRED_SUBVOL_MISSING,
	PR_REQUIRED_PATH_MISSING,
	/* with a key (C12) */
	PR_KEY_NOT_USED,
	PR_REKEY_IN_PROGRESS,
	PR_NAME_DECRYPT_BAD,
	PR_SYMLINK_DECRYPT_BAD,
	PR_COMPRESSED_DECODE_BAD,
	PR_MAX
};

struct check_problem_def {
	const char *code;		/* stable identifier, e.g. "EXTENT_CTX_MISSING" */
	enum check_severity severity;
	const char *rule;		/* "C1".."C14" of Documentation/format.rst 11, or a category */
	const char *fmt;		/* printf template of the message */
};

extern const struct check_problem_def check_problems[PR_MAX];

/* "Not applicable" for a location field of a problem. */
#define NOLOC ((u64)-1)

struct check_loc {
	u64 root, ino, offset, bytenr;
};

#define LOC(r, i, o, b) ((struct check_loc){ (r), (i), (o), (b) })
#define LOC_NONE LOC(NOLOC, NOLOC, NOLOC, NOLOC)
#define LOC_BLOCK(r, b) LOC((r), NOLOC, NOLOC, (b))
#define LOC_INODE(r, i) LOC((r), (i), NOLOC, NOLOC)

struct check_problem_rec {
	enum check_problem code;
	struct check_loc loc;
	char *message;
};

/* ---- collected state -------------------------------------------------- */

struct check_counters {
	u64 trees;
	u64 tree_blocks;
	u64 tree_bytes;
	u64 leaves;
	u64 items;
	u64 inodes;
	u64 dirs;
	u64 file_extents;
	u64 data_extents;
	u64 metadata_extents;
	u64 block_groups;
	u64 csum_items;
	u64 csum_bytes_covered;
	u64 data_bytes_checked;		/* --check-data-csum */
	u64 csums_checked;
	u64 encrypted_inodes;
	u64 encrypted_extents;
	u64 names_decrypted;
	u64 compressed_decoded;	/* compressed encrypted extents decrypted and decompressed */
	u64 rekey_mixed_entries;	/* entries whose inode is under another given key than the directory */
};

/* An extent item of the extent tree (data or tree block). */
struct ext_rec {
	u64 bytenr;
	u64 len;		/* data: key offset; tree block: nodesize */
	u64 refs;		/* extent_item.refs */
	u64 generation;
	u64 flags;
	u64 backref_sum;	/* sum of counts of its inline and keyed refs */
	u8 level;		/* tree blocks */
	bool metadata;
};

/* A backref, as the extent tree stores it or as the trees imply it. */
struct ext_backref {
	u64 bytenr;
	u64 root;		/* root id, or parent bytenr for the shared kinds */
	u64 owner;		/* data: inode; tree: level */
	u64 offset;		/* data: backref offset */
	u64 num_bytes;		/* found data refs: disk_num_bytes of the item */
	u32 count;
	u8 kind;		/* enum ref_kind (kernel-shared/backref.h) */
};

/* A reference found while walking: resolved to a backref after the walk. */
struct found_tree_ref {
	u64 bytenr;
	u64 parent;		/* 0 for a tree root */
	u64 root;		/* parent's owner, or the tree id for a root */
	u8 level;
};

/* A tree block as the walk read it: its header's owner and generation. */
struct found_block {
	u64 bytenr;
	u64 owner;
	u64 generation;
	u64 tree;		/* the tree whose walk reached it first */
	bool reloc;		/* its header has the flag RELOC */
};

struct found_data_ref {
	u64 bytenr;
	u64 num_bytes;		/* disk_num_bytes */
	u64 leaf;
	u64 root;		/* owner of the leaf */
	u64 ino;
	u64 offset;		/* backref offset (wrapping) */
};

/* One EXTENT_DATA item with a disk extent (for csums, scrub and C8). */
struct file_extent_rec {
	u64 disk_bytenr;
	u64 disk_num_bytes;
	u64 root;
	u64 ino;
	u64 file_offset;	/* key offset */
	u64 extent_offset;
	u64 num_bytes;
	u8 type;
	u8 compression;
	u8 encryption;
	bool nodatasum;
	bool has_ctx;
	u8 ctx[34];		/* the ctx item bytes when has_ctx */
};

struct bg_rec {
	u64 start, len, used, flags;
};

struct csum_range {
	u64 start;		/* logical of the first sector */
	u64 nsectors;
	u64 leaf;		/* where the item lives (for messages) */
	u64 data_off;		/* offset into ctx->csum_data, or -1 when not kept */
};

struct fst_info {
	u64 start, len;
	u32 extent_count;
	u32 flags;
	u64 leaf;
};

struct fst_range {
	u64 start, len;
	bool bitmap;		/* came from a bitmap item */
	u64 item_start;		/* key objectid of its item */
};

struct root_desc {
	u64 objectid;
	u64 offset;		/* ROOT_ITEM key offset */
	u64 bytenr;
	u64 generation;
	u64 root_dirid;
	u64 flags;
	u32 refs;
	u8 level;
	u8 drop_level;
	struct btrfs_key drop_progress;
};

/* A nonce of an inode context (item 41) or an extent context (item 42). */
struct nonce_rec {
	u8 nonce[16];
	u64 root, ino, offset, bytenr;
	bool inode;
};

/* vec_push() of common/containers.h that stops the check when out of memory. */
void *vec_push_or_die(struct vec *v);
/*
 * The record stores of check (common/spill.h): their memory budget each,
 * and the calls that stop the check with one ERROR line when memory or the
 * temporary file fails.
 */
size_t check_spill_budget(void);
void spill_add_or_die(struct spill *s, const void *rec, u32 len);
void spill_finish_or_die(struct spill *s);
const void *spill_next_or_die(struct spill *s, u32 *len);
/* The orders of the stores: nonce_rec by nonce, key_rec by (root, ino, kind, key offset). */
int cmp_nonce_rec(const void *x, const void *y);
int cmp_key_rec(const void *x, const void *y);
int cmp_file_ext(const void *x, const void *y);
void spill_rewind_or_die(struct spill *s);
/*
 * Append n bytes to the byte buffer *buf (*len used, *cap allocated,
 * doubling from 64 KiB); returns their offset.  Aborts on ENOMEM.
 */
size_t bytes_append(u8 **buf, size_t *len, size_t *cap, const void *data, size_t n);

struct check_key;	/* check-key.c */
struct fscrypt_master_key;

/* Collected only with a key: what C12 decrypts. */
enum key_rec_kind { KR_CTX = 0, KR_NAME = 1, KR_SYMLINK = 2 };

/*
 * A record of check_ctx.key_recs; data_len bytes follow it in the store:
 * the inode context (KR_CTX), the stored name (KR_NAME) or the symlink data.
 */
struct key_rec {
	u64 root, ino;		/* KR_NAME: ino is the directory */
	u64 key_offset;		/* KR_NAME: DIR_INDEX/DIR_ITEM key offset */
	u32 mode;		/* KR_CTX */
	u32 data_len;
	u8 kind;
	u8 key_type;		/* KR_NAME: DIR_ITEM or DIR_INDEX */
};

struct check_ctx {
	struct fs_info *fs;
	bool check_data_csum;
	bool require_encryption;	/* --require-encryption */
	u64 *require_roots;		/* its subvolume IDs; none (and no paths): every subvolume */
	size_t nr_require_roots;
	char **require_paths;		/* its paths in the top-level subvolume (check-paths.c) */
	size_t nr_require_paths;
	/*
	 * The keys given (none: no-key names): they resolve those paths and
	 * show names in messages, each directory with the key its context names.
	 */
	const struct fscrypt_master_key *const *path_keys;
	size_t nr_path_keys;
	bool verify;			/* a write command's check (check-run.h): no wrong-key verdict */
	unsigned int threads;
	struct check_key *key;		/* NULL without a key */
	const char *image_path;

	/* problems */
	struct check_problem_rec *problems;
	size_t nr_problems, cap_problems;
	size_t nr_by_sev[3];
	bool print_now;			/* text mode: print each problem as found */

	struct check_counters cnt;

	/* collected by the tree walk */
	struct vec roots;		/* struct root_desc, from the root tree */
	struct vec ext_recs;		/* struct ext_rec, sorted by bytenr */
	struct vec ext_backrefs;	/* struct ext_backref from the extent tree */
	struct vec tree_refs;		/* struct found_tree_ref */
	struct vec found_blocks;	/* struct found_block */
	struct vec data_refs;		/* struct found_data_ref */
	struct spill file_exts;		/* struct file_extent_rec, by disk_bytenr (cmp_file_ext) */
	struct vec compressed_exts;	/* struct file_extent_rec: encrypted compressed, by disk_bytenr */
	struct vec bgs;			/* struct bg_rec */
	struct vec csums;		/* struct csum_range */
	u8 *csum_data;			/* packed csums when scrubbing */
	struct check_scrub *scrub;	/* the scrub running in the background */
	size_t csum_data_len, csum_data_cap;
	struct vec fst_infos;		/* struct fst_info */
	struct vec fst_ranges;		/* struct fst_range */
	struct spill nonces;		/* struct nonce_rec (check-fs.c), by nonce */
	struct vec raid56_bad;		/* u64: RAID5/6 sectors whose data element is bad */

	/* with a key */
	struct spill key_recs;		/* struct key_rec and its data, by inode */

	/* visited tree blocks */
	struct block_set *blocks;

	/* encryption state seen anywhere */
	bool saw_encrypted_items;
	u64 first_encrypted_root, first_encrypted_ino;

	bool extent_tree_ok;		/* extent tree fully readable */
	bool csum_tree_ok;
	bool fst_ok;
	bool have_fst;
};

/* Report a problem; the message is the table's template with the arguments. */
void check_report(struct check_ctx *c, enum check_problem code, struct check_loc loc, ...);
void check_required_subvols(struct check_ctx *c);
/*
 * The name (len bytes) of an entry of directory dir in tree root as a report
 * shows it (common/escape.h): decrypted with a key given, the no-key name
 * without one (or when the directory's context cannot be read), never the
 * ciphertext; escaped into out.  Returns out.  Only for reports (check-paths.c).
 */
const char *check_shown_name(struct check_ctx *c, u64 root, u64 dir, const u8 *name,
			     size_t len, char *out, size_t outlen);
/*
 * --require-encryption's paths (check-paths.c): reports NOT_ENCRYPTED
 * below them and REQUIRED_PATH_MISSING; returns 0, or EXIT_KEY after an
 * ERROR line when the key given is not the one of a directory on a path.
 */
int check_required_paths(struct check_ctx *c);
/* Print all problems (text) or add them to doc (JSON). */
void check_print_problem(const struct check_ctx *c, const struct check_problem_rec *p);
struct json_object;
struct json_object *check_problems_json(const struct check_ctx *c);
/* A problem's text line, "[CODE] root 5 inode 257 offset 4096: message". */
void check_format_problem(const struct check_problem_rec *p, char *buf, size_t len);

/* check-rules.c */
/* The kernel's tree-checker rules and btrfs check's header rules on block b of tree. */
void check_block_rules(struct check_ctx *c, u64 tree, const struct tree_block *b);
/* The system chunk array, and the device tree against the chunk tree. */
void check_devices(struct check_ctx *c);

/* check-trees.c */
int check_trees(struct check_ctx *c);
/* Report the bad tree block copies readers replaced with a good copy (volumes.h). */
void check_bad_copies(struct check_ctx *c);

/* check-parity.c: with --check-data-csum, the parity of RAID5/6 chunks (PARITY_MISMATCH). */
void check_parity(struct check_ctx *c);
bool block_set_contains(const struct check_ctx *c, u64 bytenr);
void block_set_free(struct check_ctx *c);

/* check-fs.c: called for each leaf of an fs tree, every time it is reached */
struct fs_tree_state;
struct fs_tree_state *fs_tree_begin(struct check_ctx *c, const struct root_desc *root);
void fs_tree_leaf(struct check_ctx *c, struct fs_tree_state *st, const struct tree_block *leaf,
		  bool first_visit);
void fs_tree_end(struct check_ctx *c, struct fs_tree_state *st);
void fs_check_global(struct check_ctx *c);	/* nonce reuse, C8, C1 */

/* check-extents.c */
void extent_tree_leaf(struct check_ctx *c, const struct tree_block *leaf);
void bg_tree_leaf(struct check_ctx *c, const struct tree_block *leaf);
void fst_leaf(struct check_ctx *c, const struct tree_block *leaf);
void check_extents(struct check_ctx *c);
void check_free_space(struct check_ctx *c);
const struct ext_rec *ext_rec_find(const struct check_ctx *c, u64 bytenr);

/* check-qgroup.c: qgroup counts against the extent and fs trees, as btrfs check */
void check_qgroups(struct check_ctx *c);

/* check-csum.c */
void csum_tree_leaf(struct check_ctx *c, const struct tree_block *leaf);
void check_csums(struct check_ctx *c);
/* The csums of one file extent, and of a disk extent only prealloc items name (check-global.c's pass). */
void check_csum_coverage(struct check_ctx *c, const struct file_extent_rec *f);
void check_csum_prealloc(struct check_ctx *c, const struct file_extent_rec *first);
/*
 * --check-data-csum: check_scrub_start() starts verifying every csummed
 * range in the background once the csum tree is read (from check_trees());
 * check_scrub_finish() waits and reports bad sectors; check_scrub_free()
 * drops a scrub on the way out (nothing if none runs).
 */
void check_scrub_start(struct check_ctx *c);
void check_scrub_finish(struct check_ctx *c);
void check_scrub_free(struct check_ctx *c);

/* check-key.c */
/*
 * Use the master keys the dispatcher loaded (not copied, not freed); 0 or
 * -ENOMEM.  Every inode is checked with the key its context names.
 */
int check_key_attach(struct check_ctx *c, struct fscrypt_master_key *const *mks, size_t n);
/* Whether one of the given keys has this identifier (false without a key). */
bool check_key_given(const struct check_ctx *c, const u8 *identifier);
void check_key_free(struct check_ctx *c);	/* leaves the master key alone */
int check_with_key(struct check_ctx *c);
void check_key_collect(struct check_ctx *c, u8 kind, u64 root, u64 ino, u64 key_offset,
		       u8 key_type, u32 mode, const u8 *data, u32 len);

/* helpers */
/*
 * qsort that accepts an empty (NULL) array and leaves an array that is in
 * order already as it is: most of check's arrays are collected in key order
 * of the tree they come from, and one pass of cmp is cheaper than a sort.
 */
void check_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

static inline u64 get_unaligned_le64(const void *p)
{
	__le64 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return le64_to_cpu(v);
}

static inline u32 get_unaligned_le32(const void *p)
{
	__le32 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return le32_to_cpu(v);
}

const char *check_root_name(u64 objectid, char *buf, size_t len);

/* Inline: the comparators of check's sorts call it millions of times. */
static inline int cmp_u64(u64 a, u64 b)
{
	return a < b ? -1 : a > b;
}

#endif
