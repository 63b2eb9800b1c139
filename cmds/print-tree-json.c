// SPDX-License-Identifier: GPL-2.0
/* The tree printer's JSON form (dump-tree --format json); the text form is print-tree.c. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>
#include "common/escape.h"
#include "common/fault.h"
#include "cmds/print-tree-internal.h"
#include "common/messages.h"
#include "common/utils.h"
#include "kernel-shared/hash.h"
#include "crypto/csum.h"

/* ------------------------------------------------------------------ */
/* JSON                                                                */

#define JADD(o, k, v) json_object_object_add((o), (k), (v))

static struct json_object *j_u64(u64 v)
{
	if (v <= (u64)INT64_MAX)
		return json_object_new_int64((int64_t)v);
	return json_object_new_uint64(v);
}

static struct json_object *j_hex(const struct blk *c, size_t off, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	struct json_object *o;
	char *s = fault_malloc(2 * n + 1);
	size_t i;

	if (!s)
		die_oom();
	for (i = 0; i < n; i++) {
		u8 b = (off + i < c->len && off + i >= off) ? c->b[off + i] : 0;

		s[2 * i] = digits[b >> 4];
		s[2 * i + 1] = digits[b & 15];
	}
	s[2 * n] = 0;
	o = json_object_new_string(s);
	free(s);
	return o;
}

static struct json_object *j_uuid(const struct blk *c, size_t off)
{
	u8 u[16];
	char s[37];

	pt_rd_bytes(c, off, u, 16);
	uuid_unparse(u, s);
	return json_object_new_string(s);
}

/*
 * A name (or xattr value) of n bytes at off, clamped to the block.  "key" is
 * always there and always valid UTF-8: the bytes themselves when they are
 * plain text (pt_plain_text), else the escaped form of the text output.  In
 * the second case "hexkey" holds the exact bytes in lowercase hex, so a
 * script gets them back from hexkey when present, else from key.
 */
static void j_name(struct json_object *o, const struct blk *c, size_t off, size_t n,
		   const char *key, const char *hexkey)
{
	char *esc;
	size_t len;

	if (c->o->hide_names) {
		JADD(o, key, json_object_new_string("HIDDEN"));
		return;
	}
	if (off > c->len)
		n = 0;
	else if (n > c->len - off)
		n = c->len - off;
	if (pt_plain_text(c->b + off, n)) {
		JADD(o, key, json_object_new_string_len((const char *)c->b + off, (int)n));
		return;
	}
	esc = fault_malloc(4 * n + 1);
	if (!esc)
		die_oom();
	len = esc_progs(c->b + off, n, esc);
	JADD(o, key, json_object_new_string_len(esc, (int)len));
	free(esc);
	JADD(o, hexkey, j_hex(c, off, n));
}

static struct json_object *j_key(const struct btrfs_key *k)
{
	struct json_object *o = json_object_new_object();
	char buf[32];

	JADD(o, "objectid", j_u64(k->objectid));
	JADD(o, "type", json_object_new_string(pt_key_type_str(k->objectid, k->type,
							       buf, sizeof(buf))));
	JADD(o, "type-id", json_object_new_int(k->type));
	JADD(o, "offset", j_u64(k->offset));
	return o;
}

static struct json_object *j_key_at(const struct blk *c, size_t off)
{
	struct btrfs_key k;

	pt_rd_key(c, off, &k);
	return j_key(&k);
}

static struct json_object *j_time(const struct blk *c, size_t off)
{
	struct json_object *o = json_object_new_object();

	JADD(o, "sec", j_u64(R64(c, off)));
	JADD(o, "nsec", j_u64(R32(c, off + 8)));
	return o;
}

static void j_inode(struct json_object *o, const struct blk *c, size_t p)
{
	char flags[160];

	pt_inode_flags_str(R64(c, p + 64), flags);
	JADD(o, "generation", j_u64(R64(c, p)));
	JADD(o, "transid", j_u64(R64(c, p + 8)));
	JADD(o, "size", j_u64(R64(c, p + 16)));
	JADD(o, "nbytes", j_u64(R64(c, p + 24)));
	JADD(o, "block-group", j_u64(R64(c, p + 32)));
	JADD(o, "nlink", j_u64(R32(c, p + 40)));
	JADD(o, "uid", j_u64(R32(c, p + 44)));
	JADD(o, "gid", j_u64(R32(c, p + 48)));
	JADD(o, "mode", j_u64(R32(c, p + 52)));
	JADD(o, "rdev", j_u64(R64(c, p + 56)));
	JADD(o, "flags", j_u64(R64(c, p + 64)));
	JADD(o, "flags-names", json_object_new_string(flags));
	JADD(o, "sequence", j_u64(R64(c, p + 72)));
	JADD(o, "atime", j_time(c, p + 112));
	JADD(o, "ctime", j_time(c, p + 124));
	JADD(o, "mtime", j_time(c, p + 136));
	JADD(o, "otime", j_time(c, p + 148));
}

static void j_refs(struct json_object *o, const struct blk *c, size_t p, u32 size,
		   bool ext)
{
	struct json_object *arr = json_object_new_array();
	u32 cur = 0;
	u32 hdr = ext ? 18 : 10;

	while (cur < size) {
		struct json_object *r = json_object_new_object();
		u32 name_len = R16(c, p + cur + hdr - 2);

		if (ext) {
			JADD(r, "parent", j_u64(R64(c, p + cur)));
			JADD(r, "index", j_u64(R64(c, p + cur + 8)));
		} else {
			JADD(r, "index", j_u64(R64(c, p + cur)));
		}
		JADD(r, "name-len", j_u64(name_len));
		j_name(r, c, p + cur + hdr, name_len, "name", "name-hex");
		json_object_array_add(arr, r);
		cur += hdr + name_len;
	}
	JADD(o, "refs", arr);
}

static void j_dir(struct json_object *o, const struct blk *c, size_t p, u32 size)
{
	struct json_object *arr = json_object_new_array();
	u32 cur = 0;
	char tbuf[24];

	while (cur < size) {
		struct json_object *d = json_object_new_object();
		size_t di = p + cur;
		u32 name_len = R16(c, di + 27);
		u32 data_len = R16(c, di + 25);
		u8 type = R8(c, di + 29);

		JADD(d, "location", j_key_at(c, di));
		JADD(d, "type", json_object_new_string(pt_dir_type_str(type, tbuf)));
		JADD(d, "type-id", json_object_new_int(type));
		JADD(d, "transid", j_u64(R64(c, di + 17)));
		JADD(d, "data-len", j_u64(data_len));
		JADD(d, "name-len", j_u64(name_len));
		j_name(d, c, di + 30, name_len, "name", "name-hex");
		if (data_len)
			j_name(d, c, di + 30 + name_len, data_len, "data", "data-hex");
		json_object_array_add(arr, d);
		cur += 30 + name_len + data_len;
	}
	JADD(o, "entries", arr);
}

static void j_root_item(struct json_object *o, const struct blk *c, size_t p, u32 size)
{
	u8 ri[sizeof(struct btrfs_root_item)];
	struct blk r = { ri, sizeof(ri), c->o };

	memset(ri, 0, sizeof(ri));
	pt_rd_bytes(c, p, ri, size < sizeof(ri) ? size : sizeof(ri));
	JADD(o, "generation", j_u64(R64(&r, 160)));
	JADD(o, "root-dirid", j_u64(R64(&r, 168)));
	JADD(o, "bytenr", j_u64(R64(&r, 176)));
	JADD(o, "byte-limit", j_u64(R64(&r, 184)));
	JADD(o, "bytes-used", j_u64(R64(&r, 192)));
	JADD(o, "last-snapshot", j_u64(R64(&r, 200)));
	JADD(o, "flags", j_u64(R64(&r, 208)));
	JADD(o, "refs", j_u64(R32(&r, 216)));
	JADD(o, "drop-progress", j_key_at(&r, 220));
	JADD(o, "drop-level", json_object_new_int(R8(&r, 237)));
	JADD(o, "level", json_object_new_int(R8(&r, 238)));
	JADD(o, "generation-v2", j_u64(R64(&r, 239)));
	if (size >= sizeof(ri)) {
		JADD(o, "uuid", j_uuid(&r, 247));
		JADD(o, "parent-uuid", j_uuid(&r, 263));
		JADD(o, "received-uuid", j_uuid(&r, 279));
		JADD(o, "ctransid", j_u64(R64(&r, 295)));
		JADD(o, "otransid", j_u64(R64(&r, 303)));
		JADD(o, "stransid", j_u64(R64(&r, 311)));
		JADD(o, "rtransid", j_u64(R64(&r, 319)));
		JADD(o, "ctime", j_time(&r, 327));
		JADD(o, "otime", j_time(&r, 339));
		JADD(o, "stime", j_time(&r, 351));
		JADD(o, "rtime", j_time(&r, 363));
	}
}

static void j_file_extent(struct json_object *o, const struct blk *c, size_t p, u32 size)
{
	u8 type = R8(c, p + 20);
	char cbuf[24];

	JADD(o, "generation", j_u64(R64(c, p)));
	JADD(o, "extent-type", json_object_new_string(pt_file_extent_type_str(type)));
	JADD(o, "extent-type-id", json_object_new_int(type));
	JADD(o, "ram-bytes", j_u64(R64(c, p + 8)));
	JADD(o, "compression", json_object_new_int(R8(c, p + 16)));
	JADD(o, "compression-name", json_object_new_string(pt_compress_str(R8(c, p + 16), cbuf)));
	JADD(o, "encryption", json_object_new_int(R8(c, p + 17)));
	JADD(o, "other-encoding", json_object_new_int(R16(c, p + 18)));
	if (type == BTRFS_FILE_EXTENT_INLINE) {
		JADD(o, "inline-size", j_u64((u32)(size - BTRFS_FILE_EXTENT_INLINE_DATA_START)));
		return;
	}
	JADD(o, "disk-bytenr", j_u64(R64(c, p + 21)));
	JADD(o, "disk-num-bytes", j_u64(R64(c, p + 29)));
	JADD(o, "offset", j_u64(R64(c, p + 37)));
	JADD(o, "num-bytes", j_u64(R64(c, p + 45)));
}

static void j_extent_item(struct json_object *o, const struct blk *c, size_t p, u32 size,
			  const struct btrfs_key *key, bool metadata)
{
	struct json_object *arr;
	char flags_str[48];
	u64 flags;
	size_t ptr, end;

	if (size < sizeof(struct btrfs_extent_item))
		return;
	flags = R64(c, p + 16);
	pt_extent_flags_str(flags, flags_str);
	JADD(o, "refs", j_u64(R64(c, p)));
	JADD(o, "generation", j_u64(R64(c, p + 8)));
	JADD(o, "flags", j_u64(flags));
	JADD(o, "flags-names", json_object_new_string(flags_str));
	ptr = p + sizeof(struct btrfs_extent_item);
	if ((flags & BTRFS_EXTENT_FLAG_TREE_BLOCK) && !metadata) {
		JADD(o, "tree-block-key", j_key_at(c, ptr));
		JADD(o, "tree-block-level", json_object_new_int(R8(c, ptr + 17)));
		ptr += sizeof(struct btrfs_tree_block_info);
	} else if (metadata) {
		JADD(o, "tree-block-level", j_u64(key->offset));
	}
	arr = json_object_new_array();
	end = p + size;
	while (ptr < end) {
		struct json_object *r = json_object_new_object();
		u8 type = R8(c, ptr);
		char buf[32];

		JADD(r, "type", json_object_new_string(pt_key_type_str(0, type, buf, sizeof(buf))));
		switch (type) {
		case BTRFS_TREE_BLOCK_REF_KEY:
			JADD(r, "root", j_u64(R64(c, ptr + 1)));
			break;
		case BTRFS_SHARED_BLOCK_REF_KEY:
			JADD(r, "parent", j_u64(R64(c, ptr + 1)));
			break;
		case BTRFS_EXTENT_DATA_REF_KEY:
			JADD(r, "root", j_u64(R64(c, ptr + 1)));
			JADD(r, "objectid", j_u64(R64(c, ptr + 9)));
			JADD(r, "offset", j_u64(R64(c, ptr + 17)));
			JADD(r, "count", j_u64(R32(c, ptr + 25)));
			break;
		case BTRFS_SHARED_DATA_REF_KEY:
			JADD(r, "parent", j_u64(R64(c, ptr + 1)));
			JADD(r, "count", j_u64(R32(c, ptr + 9)));
			break;
		}
		json_object_array_add(arr, r);
		if (!backref_inline_size(type))
			break;
		ptr += backref_inline_size(type);
	}
	JADD(o, "inline-refs", arr);
}

static void j_chunk(struct json_object *o, const struct blk *c, size_t p)
{
	u16 num = R16(c, p + 44);
	char flags[FLAG_STR_LEN];
	struct json_object *arr = json_object_new_array();
	u32 i;

	pt_bg_flags_str(R64(c, p + 24), flags);
	JADD(o, "length", j_u64(R64(c, p)));
	JADD(o, "owner", j_u64(R64(c, p + 8)));
	JADD(o, "stripe-len", j_u64(R64(c, p + 16)));
	JADD(o, "type", j_u64(R64(c, p + 24)));
	JADD(o, "type-names", json_object_new_string(flags));
	JADD(o, "io-align", j_u64(R32(c, p + 32)));
	JADD(o, "io-width", j_u64(R32(c, p + 36)));
	JADD(o, "sector-size", j_u64(R32(c, p + 40)));
	JADD(o, "num-stripes", j_u64(num));
	JADD(o, "sub-stripes", j_u64(R16(c, p + 46)));
	for (i = 0; i < num && p + 48 + (size_t)(i + 1) * 32 <= c->len; i++) {
		struct json_object *s = json_object_new_object();
		size_t sp = p + 48 + (size_t)i * 32;

		JADD(s, "devid", j_u64(R64(c, sp)));
		JADD(s, "offset", j_u64(R64(c, sp + 8)));
		JADD(s, "dev-uuid", j_uuid(c, sp + 16));
		json_object_array_add(arr, s);
	}
	JADD(o, "stripes", arr);
}

static void j_dev_item(struct json_object *o, const struct blk *c, size_t p)
{
	JADD(o, "devid", j_u64(R64(c, p)));
	JADD(o, "total-bytes", j_u64(R64(c, p + 8)));
	JADD(o, "bytes-used", j_u64(R64(c, p + 16)));
	JADD(o, "io-align", j_u64(R32(c, p + 24)));
	JADD(o, "io-width", j_u64(R32(c, p + 28)));
	JADD(o, "sector-size", j_u64(R32(c, p + 32)));
	JADD(o, "type", j_u64(R64(c, p + 36)));
	JADD(o, "generation", j_u64(R64(c, p + 44)));
	JADD(o, "start-offset", j_u64(R64(c, p + 52)));
	JADD(o, "dev-group", j_u64(R32(c, p + 60)));
	JADD(o, "seek-speed", j_u64(R8(c, p + 64)));
	JADD(o, "bandwidth", j_u64(R8(c, p + 65)));
	JADD(o, "uuid", j_uuid(c, p + 66));
	JADD(o, "fsid", j_uuid(c, p + 82));
}

/* Block group, free space, chunk, device, qgroup, uuid and other items. */
static void j_item_body_other(struct json_object *o, const struct blk *c,
			      const struct btrfs_key *key, size_t p, u32 size)
{
	char buf[FLAG_STR_LEN];

	switch (key->type) {
	case BTRFS_BLOCK_GROUP_ITEM_KEY:
		pt_bg_flags_str(R64(c, p + 16), buf);
		JADD(o, "used", j_u64(R64(c, p)));
		JADD(o, "chunk-objectid", j_u64(R64(c, p + 8)));
		JADD(o, "flags", j_u64(R64(c, p + 16)));
		JADD(o, "flags-names", json_object_new_string(buf));
		break;
	case BTRFS_FREE_SPACE_INFO_KEY:
		JADD(o, "extent-count", j_u64(R32(c, p)));
		JADD(o, "flags", j_u64(R32(c, p + 4)));
		break;
	case BTRFS_FREE_SPACE_BITMAP_KEY:
		JADD(o, "bitmap-hex", j_hex(c, p, size));
		break;
	case BTRFS_CHUNK_ITEM_KEY:
		j_chunk(o, c, p);
		break;
	case BTRFS_DEV_ITEM_KEY:
		j_dev_item(o, c, p);
		break;
	case BTRFS_DEV_EXTENT_KEY:
		JADD(o, "chunk-tree", j_u64(R64(c, p)));
		JADD(o, "chunk-objectid", j_u64(R64(c, p + 8)));
		JADD(o, "chunk-offset", j_u64(R64(c, p + 16)));
		JADD(o, "length", j_u64(R64(c, p + 24)));
		JADD(o, "chunk-tree-uuid", j_uuid(c, p + 32));
		break;
	case BTRFS_QGROUP_STATUS_KEY:
		JADD(o, "version", j_u64(R64(c, p)));
		JADD(o, "generation", j_u64(R64(c, p + 8)));
		JADD(o, "flags", j_u64(R64(c, p + 16)));
		JADD(o, "scan", j_u64(R64(c, p + 24)));
		break;
	case BTRFS_QGROUP_INFO_KEY:
		JADD(o, "generation", j_u64(R64(c, p)));
		JADD(o, "referenced", j_u64(R64(c, p + 8)));
		JADD(o, "referenced-compressed", j_u64(R64(c, p + 16)));
		JADD(o, "exclusive", j_u64(R64(c, p + 24)));
		JADD(o, "exclusive-compressed", j_u64(R64(c, p + 32)));
		break;
	case BTRFS_QGROUP_LIMIT_KEY:
		JADD(o, "flags", j_u64(R64(c, p)));
		JADD(o, "max-referenced", j_u64(R64(c, p + 8)));
		JADD(o, "max-exclusive", j_u64(R64(c, p + 16)));
		JADD(o, "rsv-referenced", j_u64(R64(c, p + 24)));
		JADD(o, "rsv-exclusive", j_u64(R64(c, p + 32)));
		break;
	case BTRFS_UUID_KEY_SUBVOL:
	case BTRFS_UUID_KEY_RECEIVED_SUBVOL: {
		struct json_object *arr = json_object_new_array();
		u32 i;

		for (i = 0; i + 8 <= size; i += 8)
			json_object_array_add(arr, j_u64(R64(c, p + i)));
		JADD(o, "subvol-ids", arr);
		break;
	}
	case BTRFS_PERSISTENT_ITEM_KEY:
		if (key->objectid == BTRFS_DEV_STATS_OBJECTID) {
			struct json_object *arr = json_object_new_array();
			u32 i;

			for (i = 0; i + 8 <= size; i += 8)
				json_object_array_add(arr, j_u64(R64(c, p + i)));
			JADD(o, "dev-stats", arr);
			break;
		}
		JADD(o, "data-hex", j_hex(c, p, size));
		break;
	case BTRFS_STRING_ITEM_KEY:
		j_name(o, c, p, size, "string", "string-hex");
		break;
	case BTRFS_ORPHAN_ITEM_KEY:
	case BTRFS_FREE_SPACE_EXTENT_KEY:
	case BTRFS_TREE_BLOCK_REF_KEY:
	case BTRFS_SHARED_BLOCK_REF_KEY:
	case BTRFS_QGROUP_RELATION_KEY:
		break;
	default:
		if (size)
			JADD(o, "data-hex", j_hex(c, p, size));
		break;
	}
}

static void j_item_body(struct json_object *o, const struct blk *c,
			const struct btrfs_key *key, size_t p, u32 size)
{
	switch (key->type) {
	case BTRFS_INODE_ITEM_KEY:
		j_inode(o, c, p);
		break;
	case BTRFS_INODE_REF_KEY:
		j_refs(o, c, p, size, false);
		break;
	case BTRFS_INODE_EXTREF_KEY:
		j_refs(o, c, p, size, true);
		break;
	case BTRFS_DIR_ITEM_KEY:
	case BTRFS_DIR_INDEX_KEY:
	case BTRFS_XATTR_ITEM_KEY:
		j_dir(o, c, p, size);
		break;
	case BTRFS_DIR_LOG_INDEX_KEY:
	case BTRFS_DIR_LOG_ITEM_KEY:
		JADD(o, "end", j_u64(R64(c, p)));
		break;
	case BTRFS_FSCRYPT_INODE_CTX_KEY:
	case BTRFS_FSCRYPT_CTX_KEY:
		JADD(o, "value", j_hex(c, p, size));
		break;
	case BTRFS_ROOT_ITEM_KEY:
		j_root_item(o, c, p, size);
		break;
	case BTRFS_ROOT_REF_KEY:
	case BTRFS_ROOT_BACKREF_KEY:
		JADD(o, "dirid", j_u64(R64(c, p)));
		JADD(o, "sequence", j_u64(R64(c, p + 8)));
		JADD(o, "name-len", j_u64(R16(c, p + 16)));
		j_name(o, c, p + 18, R16(c, p + 16), "name", "name-hex");
		break;
	case BTRFS_EXTENT_ITEM_KEY:
	case BTRFS_METADATA_ITEM_KEY:
		j_extent_item(o, c, p, size, key, key->type == BTRFS_METADATA_ITEM_KEY);
		break;
	case BTRFS_EXTENT_DATA_REF_KEY:
		JADD(o, "root", j_u64(R64(c, p)));
		JADD(o, "objectid", j_u64(R64(c, p + 8)));
		JADD(o, "offset", j_u64(R64(c, p + 16)));
		JADD(o, "count", j_u64(R32(c, p + 24)));
		break;
	case BTRFS_SHARED_DATA_REF_KEY:
		JADD(o, "count", j_u64(R32(c, p)));
		break;
	case BTRFS_EXTENT_CSUM_KEY: {
		u32 cs = c->o->csum_size ? c->o->csum_size : 4;
		u64 len = (u64)(size / cs) * c->o->sectorsize;

		JADD(o, "range-start", j_u64(key->offset));
		JADD(o, "range-end", j_u64(key->offset + len));
		JADD(o, "length", j_u64(len));
		if (c->o->csum_items) {
			struct json_object *arr = json_object_new_array();
			u32 i;

			for (i = 0; i < size / cs; i++)
				json_object_array_add(arr, j_hex(c, p + (size_t)i * cs, cs));
			JADD(o, "csums", arr);
		}
		break;
	}
	case BTRFS_EXTENT_DATA_KEY:
		j_file_extent(o, c, p, size);
		break;
	default:
		j_item_body_other(o, c, key, p, size);
		break;
	}
}

struct json_object *pt_block_json(const struct print_opts *opts, const u8 *b)
{
	struct blk c = { b, opts->nodesize, opts };
	struct json_object *o = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	u64 raw_flags = R64(&c, 0x38);
	u8 level = R8(&c, 0x64);
	u32 nr = R32(&c, 0x60);
	u32 i;
	char buf[48];

	JADD(o, "bytenr", j_u64(R64(&c, 0x30)));
	JADD(o, "level", json_object_new_int(level));
	JADD(o, "nritems", j_u64(nr));
	JADD(o, "generation", j_u64(R64(&c, 0x50)));
	JADD(o, "owner", j_u64(R64(&c, 0x58)));
	JADD(o, "owner-name", json_object_new_string(pt_objectid_str(R64(&c, 0x58), 0,
								     buf, sizeof(buf))));
	JADD(o, "flags", j_u64(raw_flags & ~(0xffULL << BTRFS_BACKREF_REV_SHIFT)));
	JADD(o, "backref-rev", json_object_new_int((int)(raw_flags >> BTRFS_BACKREF_REV_SHIFT)));
	JADD(o, "fsid", j_uuid(&c, 0x20));
	JADD(o, "chunk-tree-uuid", j_uuid(&c, 0x40));
	if (opts->csum_headers)
		JADD(o, "csum", j_hex(&c, 0, opts->csum_size));
	if (level) {
		u32 ptrs = (opts->nodesize - HDR_SIZE) / PTR_SIZE;

		for (i = 0; i < nr && i < ptrs; i++) {
			struct json_object *k = json_object_new_object();
			size_t kp = HDR_SIZE + (size_t)i * PTR_SIZE;

			JADD(k, "key", j_key_at(&c, kp));
			JADD(k, "blockptr", j_u64(R64(&c, kp + 17)));
			JADD(k, "generation", j_u64(R64(&c, kp + 25)));
			json_object_array_add(arr, k);
		}
		JADD(o, "ptrs", arr);
		return o;
	}
	for (i = 0; i < nr; i++) {
		u32 data_size = opts->nodesize - HDR_SIZE;
		size_t ip = HDR_SIZE + (size_t)i * ITEM_SIZE;
		u32 off = R32(&c, ip + 17);
		u32 size = R32(&c, ip + 21);
		struct json_object *it;
		struct btrfs_key key;

		if (ip + ITEM_SIZE > c.len || off > data_size || (u64)off + size > data_size)
			break;
		pt_rd_key(&c, ip, &key);
		it = json_object_new_object();
		JADD(it, "slot", j_u64(i));
		JADD(it, "key", j_key(&key));
		JADD(it, "itemoff", j_u64(off));
		JADD(it, "itemsize", j_u64(size));
		j_item_body(it, &c, &key, HDR_SIZE + (size_t)off, size);
		json_object_array_add(arr, it);
	}
	JADD(o, "items", arr);
	return o;
}
