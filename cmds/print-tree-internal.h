/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside the tree printer: what print-tree.c (text) and print-tree-json.c
 * (JSON) share.
 */
#ifndef EXTCRYPT_PRINT_TREE_INTERNAL_H
#define EXTCRYPT_PRINT_TREE_INTERNAL_H

#include "cmds/print-tree.h"
#include "kernel-shared/backref.h"

#define HDR_SIZE ((u32)sizeof(struct btrfs_header))
#define ITEM_SIZE ((u32)sizeof(struct btrfs_item))
#define PTR_SIZE ((u32)sizeof(struct btrfs_key_ptr))
#define KEY_CSUM_ITEM 120
#define KEY_EXTENT_REF_V0 180
#define QGROUP_STATUS_FLAG_ON (1ULL << 0)
#define QGROUP_STATUS_FLAG_RESCAN (1ULL << 1)
#define QGROUP_STATUS_FLAG_INCONSISTENT (1ULL << 2)
#define QGROUP_STATUS_FLAG_SIMPLE_MODE (1ULL << 3)
#define QGROUP_STATUS_FLAGS_KNOWN 0xfULL
#define DEV_STAT_VALUES_MAX 5
#define R8(c, off) ((u8)pt_get_le((c)->b, (c)->len, (off), 1))
#define R16(c, off) ((u16)pt_get_le((c)->b, (c)->len, (off), 2))
#define R32(c, off) ((u32)pt_get_le((c)->b, (c)->len, (off), 4))
#define R64(c, off) (pt_get_le((c)->b, (c)->len, (off), 8))
#define FLAG_STR_LEN 64

struct blk {
	const u8 *b;
	u32 len;
	const struct print_opts *o;
};

void pt_bg_flags_str(u64 flags, char *ret);
const char *pt_compress_str(u8 type, char *buf);
const char *pt_dir_type_str(u8 type, char *buf);
void pt_extent_flags_str(u64 flags, char *ret);
const char *pt_file_extent_type_str(u8 type);
void pt_inode_flags_str(u64 flags, char *ret);
void pt_rd_bytes(const struct blk *c, size_t off, void *dst, size_t n);
void pt_rd_key(const struct blk *c, size_t off, struct btrfs_key *k);
void pt_out_escaped(const struct blk *c, size_t off, size_t n);
void pt_out_hex(const u8 *p, size_t n);
void pt_out_text_or_escaped(const struct blk *c, size_t off, size_t n);
void pt_out_uuid(const u8 *uuid);
void pt_out_uuid_at(const struct blk *c, size_t off);
void pt_print_key_at(const struct blk *c, size_t off);
void pt_print_timespec_at(const struct blk *c, size_t off, const char *prefix);
void pt_print_item_body(const struct blk *c, const struct btrfs_key *key, size_t p, u32 size);

#endif
