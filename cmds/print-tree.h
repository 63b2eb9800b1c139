/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Text (and JSON) rendering of tree blocks, keys and items in the format of
 * btrfs-progs 6.14 `inspect-internal dump-tree`, plus the fscrypt additions of
 * Documentation/format.rst section 12.
 *
 * Text goes through one large output buffer (pt_out_*) instead of stdio so
 * that dumping a big image costs little more than formatting; call
 * pt_out_flush() before writing to stdout by other means and at exit.
 *
 * Every field is read through bounds-checked accessors: a read that would
 * leave the block yields zero bytes, so corrupt items (truncated bodies,
 * huge name lengths) never read outside the buffer.  Within the block the
 * reads match what btrfs-progs reads, so the text matches too.
 */
#ifndef EXTCRYPT_PRINT_TREE_H
#define EXTCRYPT_PRINT_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>
#include "kernel-shared/ondisk.h"

struct print_opts {
	u32 nodesize;
	u32 sectorsize;
	u32 csum_size;
	bool csum_items;	/* --csum-items: list every data csum */
	bool csum_headers;	/* --csum-headers: csum on the header line */
	bool hide_names;	/* --hide-names */
	bool simple_quota;	/* incompat SIMPLE_QUOTA: qgroup status shows enable_gen */
};

/* Output buffer on stdout. */
void pt_out_init(void);
void pt_out_flush(void);
void pt_out_str(const char *s);
void pt_out_mem(const void *p, size_t len);
void pt_out_chr(char c);
void pt_out_u64(u64 v);
void pt_out_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "(objectid TYPE offset)" pieces exactly as btrfs-progs prints them. */
void pt_print_objectid(u64 objectid, u8 type);
void pt_print_key_type(u64 objectid, u8 type);
/* "key (OBJ TYPE OFF)" */
void pt_print_key(const struct btrfs_key *key);
/* Names into a caller buffer (for JSON and messages); returns buf. */
const char *pt_objectid_str(u64 objectid, u8 type, char *buf, size_t len);
const char *pt_key_type_str(u64 objectid, u8 type, char *buf, size_t len);

/*
 * Print one tree block: header lines, then the items of a leaf or the key
 * pointers of a node.  blk holds opts->nodesize bytes.  Returns 0, or -1 if
 * the leaf has an item pointing outside the block (a message describing it is
 * stored in errbuf, and the items before it were printed).
 */
int pt_print_block(const struct print_opts *opts, const u8 *blk,
		   char *errbuf, size_t errlen);

/*
 * Print a chunk item found in the superblock's sys_chunk_array.  base is the
 * superblock (limit its size), off the chunk's offset inside it.
 */
void pt_print_chunk(const u8 *base, u32 limit, u32 off);

/* True when s is valid UTF-8 without control bytes (C0, DEL) or NUL. */
bool pt_plain_text(const u8 *s, size_t n);

/* JSON: one object for a block, with "items" or "ptrs" arrays. */
struct json_object *pt_block_json(const struct print_opts *opts, const u8 *blk);

/* Little-endian reads of a buffer of len bytes; out of range reads give 0. */
static inline u64 pt_get_le(const u8 *buf, size_t len, size_t off, unsigned int n)
{
	u64 v = 0;
	unsigned int i;

	if (off <= len && n <= len - off) {
		for (i = 0; i < n; i++)
			v |= (u64)buf[off + i] << (8 * i);
		return v;
	}
	for (i = 0; i < n; i++) {
		if (off + i < len && off + i >= off)
			v |= (u64)buf[off + i] << (8 * i);
	}
	return v;
}

#endif
