// SPDX-License-Identifier: GPL-2.0
/*
 * Tree block printing in the text format of btrfs-progs 6.14 dump-tree, with
 * the fscrypt additions of format.md section 12.  The strings and their
 * quirks (missing separators, unterminated lines, a mistyped owner ref line) are
 * reproduced on purpose: tests compare our output with btrfs-progs byte for
 * byte.  See print-tree.h for the reading rules.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>
#include "cmds/print-tree.h"
#include "common/messages.h"
#include "common/utils.h"
#include "kernel-shared/hash.h"
#include "crypto/csum.h"

#define HDR_SIZE ((u32)sizeof(struct btrfs_header))
#define ITEM_SIZE ((u32)sizeof(struct btrfs_item))
#define PTR_SIZE ((u32)sizeof(struct btrfs_key_ptr))

/* Objects, types and constants that ondisk.h has no name for. */
#define KEY_CSUM_ITEM 120
#define KEY_EXTENT_REF_V0 180
#define QGROUP_STATUS_FLAG_ON (1ULL << 0)
#define QGROUP_STATUS_FLAG_RESCAN (1ULL << 1)
#define QGROUP_STATUS_FLAG_INCONSISTENT (1ULL << 2)
#define QGROUP_STATUS_FLAG_SIMPLE_MODE (1ULL << 3)
#define QGROUP_STATUS_FLAGS_KNOWN 0xfULL
#define DEV_STAT_VALUES_MAX 5

/* ------------------------------------------------------------------ */
/* Output buffer                                                       */

static char obuf[1 << 20];
static size_t opos;

void pt_out_init(void)
{
	opos = 0;
}

static void out_drain(void)
{
	if (opos) {
		fwrite(obuf, 1, opos, stdout);
		opos = 0;
	}
}

void pt_out_flush(void)
{
	out_drain();
	fflush(stdout);
}

static inline void out_room(size_t n)
{
	if (opos + n > sizeof(obuf))
		out_drain();
}

void pt_out_mem(const void *p, size_t len)
{
	if (len > sizeof(obuf) / 2) {
		out_drain();
		fwrite(p, 1, len, stdout);
		return;
	}
	out_room(len);
	memcpy(obuf + opos, p, len);
	opos += len;
}

void pt_out_str(const char *s)
{
	pt_out_mem(s, strlen(s));
}

void pt_out_chr(char c)
{
	out_room(1);
	obuf[opos++] = c;
}

void pt_out_u64(u64 v)
{
	char tmp[24];
	int i = sizeof(tmp);

	do {
		tmp[--i] = '0' + (v % 10);
		v /= 10;
	} while (v);
	pt_out_mem(tmp + i, sizeof(tmp) - i);
}

void pt_out_printf(const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		pt_out_mem(tmp, n);
		return;
	}
	out_drain();
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
}

/* Lowercase hex of n bytes. */
static void out_hex(const u8 *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out_room(2);
		obuf[opos++] = digits[p[i] >> 4];
		obuf[opos++] = digits[p[i] & 15];
	}
}

static void out_uuid(const u8 *uuid)
{
	char s[37];

	uuid_unparse(uuid, s);
	pt_out_mem(s, 36);
}

/* ------------------------------------------------------------------ */
/* Bounds-checked access to one block                                  */

struct blk {
	const u8 *b;
	u32 len;
	const struct print_opts *o;
};

#define R8(c, off) ((u8)pt_get_le((c)->b, (c)->len, (off), 1))
#define R16(c, off) ((u16)pt_get_le((c)->b, (c)->len, (off), 2))
#define R32(c, off) ((u32)pt_get_le((c)->b, (c)->len, (off), 4))
#define R64(c, off) (pt_get_le((c)->b, (c)->len, (off), 8))

/* Copy n bytes at off into dst, zero-filling what lies outside the block. */
static void rd_bytes(const struct blk *c, size_t off, void *dst, size_t n)
{
	u8 *d = dst;
	size_t i;

	if (off <= c->len && n <= c->len - off) {
		memcpy(d, c->b + off, n);
		return;
	}
	for (i = 0; i < n; i++)
		d[i] = (off + i < c->len && off + i >= off) ? c->b[off + i] : 0;
}

static void rd_key(const struct blk *c, size_t off, struct btrfs_key *k)
{
	k->objectid = R64(c, off);
	k->type = R8(c, off + 8);
	k->offset = R64(c, off + 9);
}

/*
 * Escaping of names and xattr values as btrfs-progs 6.14 prints them: the C
 * escapes \a \b \e \f \n \r \t \v, a backslash before space and
 * backslash, and three octal digits for every other byte outside 0x21-0x7e
 * (NUL, the rest of the control bytes, DEL and every byte >= 0x80, so
 * UTF-8 text is escaped byte by byte too).  The result is printable ASCII.
 */
static size_t esc_byte(u8 ch, char *d)
{
	static const char letter[] = "abtnvfr";	/* bytes 7 to 13 */

	if (ch > ' ' && ch < 0x7f && ch != '\\') {
		d[0] = (char)ch;
		return 1;
	}
	d[0] = '\\';
	if (ch >= 7 && ch <= 13) {
		d[1] = letter[ch - 7];
		return 2;
	}
	if (ch == 27 || ch == ' ' || ch == '\\') {
		d[1] = ch == 27 ? 'e' : (char)ch;
		return 2;
	}
	d[1] = (char)('0' + (ch >> 6));
	d[2] = (char)('0' + ((ch >> 3) & 7));
	d[3] = (char)('0' + (ch & 7));
	return 4;
}

size_t pt_escape(const u8 *s, size_t n, char *dst)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += esc_byte(s[i], dst + len);
	dst[len] = 0;
	return len;
}

bool pt_plain_text(const u8 *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		u8 ch = s[i], next = i + 1 < n ? s[i + 1] : 0;

		if (ch < 0x20 || ch == 0x7f)
			return false;
		/*
		 * What utf8_valid() lets through and strict decoders refuse:
		 * overlong 3/4-byte forms, surrogates, code points > 0x10ffff.
		 */
		if ((ch == 0xe0 && next < 0xa0) || (ch == 0xed && next >= 0xa0) ||
		    (ch == 0xf0 && next < 0x90) || (ch == 0xf4 && next >= 0x90))
			return false;
	}
	return utf8_valid(s, n);
}

/* n bytes at off (clamped to the block), escaped; never stops at a NUL. */
static void out_escaped(const struct blk *c, size_t off, size_t n)
{
	size_t i;

	if (off >= c->len)
		return;
	if (n > c->len - off)
		n = c->len - off;
	for (i = 0; i < n; i++) {
		out_room(4);
		opos += esc_byte(c->b[off + i], obuf + opos);
	}
}

/*
 * A name that btrfs-progs prints raw with "%.*s" (subvolume names of root
 * refs, string items): the same bytes when they are plain text, else the
 * whole name escaped, so that no control byte or invalid UTF-8 reaches the
 * terminal.
 */
static void out_text_or_escaped(const struct blk *c, size_t off, size_t n)
{
	if (off >= c->len)
		return;
	if (n > c->len - off)
		n = c->len - off;
	if (pt_plain_text(c->b + off, n))
		pt_out_mem(c->b + off, n);
	else
		out_escaped(c, off, n);
}

static void out_uuid_at(const struct blk *c, size_t off)
{
	u8 u[16];

	rd_bytes(c, off, u, 16);
	out_uuid(u);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

static const char *const key_type_names[256] = {
	[BTRFS_INODE_ITEM_KEY] = "INODE_ITEM",
	[BTRFS_INODE_REF_KEY] = "INODE_REF",
	[BTRFS_INODE_EXTREF_KEY] = "INODE_EXTREF",
	[BTRFS_DIR_ITEM_KEY] = "DIR_ITEM",
	[BTRFS_DIR_INDEX_KEY] = "DIR_INDEX",
	[BTRFS_DIR_LOG_ITEM_KEY] = "DIR_LOG_ITEM",
	[BTRFS_DIR_LOG_INDEX_KEY] = "DIR_LOG_INDEX",
	[BTRFS_XATTR_ITEM_KEY] = "XATTR_ITEM",
	[BTRFS_VERITY_DESC_ITEM_KEY] = "VERITY_DESC_ITEM",
	[BTRFS_VERITY_MERKLE_ITEM_KEY] = "VERITY_MERKLE_ITEM",
	[BTRFS_FSCRYPT_INODE_CTX_KEY] = "FSCRYPT_INODE_CTX",
	[BTRFS_FSCRYPT_CTX_KEY] = "FSCRYPT_CTX",
	[BTRFS_ORPHAN_ITEM_KEY] = "ORPHAN_ITEM",
	[BTRFS_ROOT_ITEM_KEY] = "ROOT_ITEM",
	[BTRFS_ROOT_REF_KEY] = "ROOT_REF",
	[BTRFS_ROOT_BACKREF_KEY] = "ROOT_BACKREF",
	[BTRFS_EXTENT_ITEM_KEY] = "EXTENT_ITEM",
	[BTRFS_METADATA_ITEM_KEY] = "METADATA_ITEM",
	[BTRFS_TREE_BLOCK_REF_KEY] = "TREE_BLOCK_REF",
	[BTRFS_SHARED_BLOCK_REF_KEY] = "SHARED_BLOCK_REF",
	[BTRFS_EXTENT_DATA_REF_KEY] = "EXTENT_DATA_REF",
	[BTRFS_SHARED_DATA_REF_KEY] = "SHARED_DATA_REF",
	[KEY_EXTENT_REF_V0] = "EXTENT_REF_V0",
	[KEY_CSUM_ITEM] = "CSUM_ITEM",
	[BTRFS_EXTENT_CSUM_KEY] = "EXTENT_CSUM",
	[BTRFS_EXTENT_DATA_KEY] = "EXTENT_DATA",
	[BTRFS_BLOCK_GROUP_ITEM_KEY] = "BLOCK_GROUP_ITEM",
	[BTRFS_FREE_SPACE_INFO_KEY] = "FREE_SPACE_INFO",
	[BTRFS_FREE_SPACE_EXTENT_KEY] = "FREE_SPACE_EXTENT",
	[BTRFS_FREE_SPACE_BITMAP_KEY] = "FREE_SPACE_BITMAP",
	[BTRFS_CHUNK_ITEM_KEY] = "CHUNK_ITEM",
	[BTRFS_DEV_ITEM_KEY] = "DEV_ITEM",
	[BTRFS_DEV_EXTENT_KEY] = "DEV_EXTENT",
	[BTRFS_TEMPORARY_ITEM_KEY] = "TEMPORARY_ITEM",
	[BTRFS_DEV_REPLACE_KEY] = "DEV_REPLACE",
	[BTRFS_STRING_ITEM_KEY] = "STRING_ITEM",
	[BTRFS_QGROUP_STATUS_KEY] = "QGROUP_STATUS",
	[BTRFS_QGROUP_RELATION_KEY] = "QGROUP_RELATION",
	[BTRFS_QGROUP_INFO_KEY] = "QGROUP_INFO",
	[BTRFS_QGROUP_LIMIT_KEY] = "QGROUP_LIMIT",
	[BTRFS_PERSISTENT_ITEM_KEY] = "PERSISTENT_ITEM",
	[BTRFS_UUID_KEY_SUBVOL] = "UUID_KEY_SUBVOL",
	[BTRFS_UUID_KEY_RECEIVED_SUBVOL] = "UUID_KEY_RECEIVED_SUBVOL",
};

const char *pt_key_type_str(u64 objectid, u8 type, char *buf, size_t len)
{
	if (type == 0 && objectid == BTRFS_FREE_SPACE_OBJECTID)
		return "UNTYPED";
	if (key_type_names[type])
		return key_type_names[type];
	snprintf(buf, len, "UNKNOWN.%d", type);
	return buf;
}

void pt_print_key_type(u64 objectid, u8 type)
{
	char buf[16];

	pt_out_str(pt_key_type_str(objectid, type, buf, sizeof(buf)));
}

static const char *objectid_name(u64 objectid, u8 type)
{
	switch (objectid) {
	case BTRFS_ROOT_TREE_OBJECTID:
		return type == BTRFS_DEV_ITEM_KEY ? "DEV_ITEMS" : "ROOT_TREE";
	case BTRFS_EXTENT_TREE_OBJECTID: return "EXTENT_TREE";
	case BTRFS_CHUNK_TREE_OBJECTID: return "CHUNK_TREE";
	case BTRFS_DEV_TREE_OBJECTID: return "DEV_TREE";
	case BTRFS_FS_TREE_OBJECTID: return "FS_TREE";
	case BTRFS_ROOT_TREE_DIR_OBJECTID: return "ROOT_TREE_DIR";
	case BTRFS_CSUM_TREE_OBJECTID: return "CSUM_TREE";
	case BTRFS_BALANCE_OBJECTID: return "BALANCE";
	case BTRFS_ORPHAN_OBJECTID: return "ORPHAN";
	case BTRFS_TREE_LOG_OBJECTID: return "TREE_LOG";
	case BTRFS_TREE_LOG_FIXUP_OBJECTID: return "LOG_FIXUP";
	case BTRFS_TREE_RELOC_OBJECTID: return "TREE_RELOC";
	case BTRFS_DATA_RELOC_TREE_OBJECTID: return "DATA_RELOC_TREE";
	case BTRFS_EXTENT_CSUM_OBJECTID: return "EXTENT_CSUM";
	case BTRFS_FREE_SPACE_OBJECTID: return "FREE_SPACE";
	case BTRFS_FREE_INO_OBJECTID: return "FREE_INO";
	case BTRFS_QUOTA_TREE_OBJECTID: return "QUOTA_TREE";
	case BTRFS_UUID_TREE_OBJECTID: return "UUID_TREE";
	case BTRFS_FREE_SPACE_TREE_OBJECTID: return "FREE_SPACE_TREE";
	case BTRFS_MULTIPLE_OBJECTIDS: return "MULTIPLE";
	case BTRFS_BLOCK_GROUP_TREE_OBJECTID: return "BLOCK_GROUP_TREE";
	case (u64)-1: return "-1";
	case BTRFS_FIRST_CHUNK_TREE_OBJECTID:
		if (type == BTRFS_CHUNK_ITEM_KEY)
			return "FIRST_CHUNK_TREE";
		return NULL;
	}
	return NULL;
}

const char *pt_objectid_str(u64 objectid, u8 type, char *buf, size_t len)
{
	const char *name;

	switch (type) {
	case BTRFS_PERSISTENT_ITEM_KEY:
		if (objectid == BTRFS_DEV_STATS_OBJECTID)
			return "DEV_STATS";
		snprintf(buf, len, "%llu", (unsigned long long)objectid);
		return buf;
	case BTRFS_DEV_EXTENT_KEY:
		snprintf(buf, len, "%llu", (unsigned long long)objectid);
		return buf;
	case BTRFS_QGROUP_RELATION_KEY:
		snprintf(buf, len, "%llu/%llu", (unsigned long long)(objectid >> 48),
			 (unsigned long long)(objectid & ((1ULL << 48) - 1)));
		return buf;
	case BTRFS_UUID_KEY_SUBVOL:
	case BTRFS_UUID_KEY_RECEIVED_SUBVOL:
		snprintf(buf, len, "0x%016llx", (unsigned long long)objectid);
		return buf;
	}
	name = objectid_name(objectid, type);
	if (name)
		return name;
	snprintf(buf, len, "%llu", (unsigned long long)objectid);
	return buf;
}

void pt_print_objectid(u64 objectid, u8 type)
{
	char buf[48];

	switch (type) {
	case BTRFS_PERSISTENT_ITEM_KEY:
	case BTRFS_DEV_EXTENT_KEY:
	case BTRFS_QGROUP_RELATION_KEY:
	case BTRFS_UUID_KEY_SUBVOL:
	case BTRFS_UUID_KEY_RECEIVED_SUBVOL:
		pt_out_str(pt_objectid_str(objectid, type, buf, sizeof(buf)));
		return;
	}
	{
		const char *name = objectid_name(objectid, type);

		if (name)
			pt_out_str(name);
		else
			pt_out_u64(objectid);
	}
}

static void print_key_offset(u64 objectid, u8 type, u64 offset)
{
	switch (type) {
	case BTRFS_QGROUP_RELATION_KEY:
	case BTRFS_QGROUP_INFO_KEY:
	case BTRFS_QGROUP_LIMIT_KEY:
		pt_out_printf(" %llu/%llu)", (unsigned long long)(offset >> 48),
			      (unsigned long long)(offset & ((1ULL << 48) - 1)));
		return;
	case BTRFS_UUID_KEY_SUBVOL:
	case BTRFS_UUID_KEY_RECEIVED_SUBVOL:
		pt_out_printf(" 0x%016llx)", (unsigned long long)offset);
		return;
	case BTRFS_ROOT_ITEM_KEY:
		pt_out_chr(' ');
		if (objectid == BTRFS_TREE_RELOC_OBJECTID)
			pt_print_objectid(offset, type);
		else
			pt_out_u64(offset);
		pt_out_chr(')');
		return;
	}
	if (offset == (u64)-1) {
		pt_out_str(" -1)");
		return;
	}
	pt_out_chr(' ');
	pt_out_u64(offset);
	pt_out_chr(')');
}

void pt_print_key(const struct btrfs_key *key)
{
	pt_out_str("key (");
	pt_print_objectid(key->objectid, key->type);
	pt_out_chr(' ');
	pt_print_key_type(key->objectid, key->type);
	print_key_offset(key->objectid, key->type, key->offset);
}

static void print_key_at(const struct blk *c, size_t off)
{
	struct btrfs_key k;

	rd_key(c, off, &k);
	pt_print_key(&k);
}

/* ------------------------------------------------------------------ */
/* Flag strings                                                        */

#define FLAG_STR_LEN 64

/*
 * Block group / chunk type: btrfs-progs only puts a '|' before METADATA and
 * SYSTEM when DATA is set, and names SINGLE in lower case.
 */
static void bg_flags_str(u64 flags, char *ret)
{
	bool empty = true;
	const char *profile;

	ret[0] = 0;
	if (flags & BTRFS_BLOCK_GROUP_DATA) {
		empty = false;
		strcat(ret, "DATA");
	}
	if (flags & BTRFS_BLOCK_GROUP_METADATA) {
		if (!empty)
			strcat(ret, "|");
		strcat(ret, "METADATA");
	}
	if (flags & BTRFS_BLOCK_GROUP_SYSTEM) {
		if (!empty)
			strcat(ret, "|");
		strcat(ret, "SYSTEM");
	}
	if (flags & BTRFS_BLOCK_GROUP_RAID10)
		profile = "RAID10";
	else if (flags & BTRFS_BLOCK_GROUP_RAID1)
		profile = "RAID1";
	else if (flags & BTRFS_BLOCK_GROUP_RAID1C3)
		profile = "RAID1C3";
	else if (flags & BTRFS_BLOCK_GROUP_RAID1C4)
		profile = "RAID1C4";
	else if (flags & BTRFS_BLOCK_GROUP_DUP)
		profile = "DUP";
	else if (flags & BTRFS_BLOCK_GROUP_RAID0)
		profile = "RAID0";
	else if (flags & BTRFS_BLOCK_GROUP_RAID5)
		profile = "RAID5";
	else if (flags & BTRFS_BLOCK_GROUP_RAID6)
		profile = "RAID6";
	else
		profile = "single";
	strcat(ret, "|");
	strcat(ret, profile);
}

static const char *compress_str(u8 type, char *buf)
{
	switch (type) {
	case BTRFS_COMPRESS_NONE: return "none";
	case BTRFS_COMPRESS_ZLIB: return "zlib";
	case BTRFS_COMPRESS_LZO: return "lzo";
	case BTRFS_COMPRESS_ZSTD: return "zstd";
	}
	sprintf(buf, "UNKNOWN.%d", type);
	return buf;
}

static const char *file_extent_type_str(u8 type)
{
	switch (type) {
	case BTRFS_FILE_EXTENT_INLINE: return "inline";
	case BTRFS_FILE_EXTENT_PREALLOC: return "prealloc";
	case BTRFS_FILE_EXTENT_REG: return "regular";
	}
	return "unknown";
}

/* DATA, TREE_BLOCK; FULL_BACKREF is always preceded by '|'. */
static void extent_flags_str(u64 flags, char *ret)
{
	bool empty = true;

	ret[0] = 0;
	if (flags & BTRFS_EXTENT_FLAG_DATA) {
		empty = false;
		strcpy(ret, "DATA");
	}
	if (flags & BTRFS_EXTENT_FLAG_TREE_BLOCK) {
		if (!empty)
			strcat(ret, "|");
		strcat(ret, "TREE_BLOCK");
	}
	if (flags & BTRFS_BLOCK_FLAG_FULL_BACKREF)
		strcat(ret, "|FULL_BACKREF");
}

static void inode_flags_str(u64 flags, char *ret)
{
	static const struct {
		u64 bit;
		const char *name;
	} names[] = {
		{ BTRFS_INODE_NODATASUM, "NODATASUM" },
		{ BTRFS_INODE_NODATACOW, "NODATACOW" },
		{ BTRFS_INODE_READONLY, "READONLY" },
		{ BTRFS_INODE_NOCOMPRESS, "NOCOMPRESS" },
		{ BTRFS_INODE_PREALLOC, "PREALLOC" },
		{ BTRFS_INODE_SYNC, "SYNC" },
		{ BTRFS_INODE_IMMUTABLE, "IMMUTABLE" },
		{ BTRFS_INODE_APPEND, "APPEND" },
		{ BTRFS_INODE_NODUMP, "NODUMP" },
		{ BTRFS_INODE_NOATIME, "NOATIME" },
		{ BTRFS_INODE_DIRSYNC, "DIRSYNC" },
		{ BTRFS_INODE_COMPRESS, "COMPRESS" },
		{ BTRFS_INODE_ENCRYPT, "ENCRYPT" },
		{ 1ULL << 31, "ROOT_ITEM_INIT" },
	};
	bool empty = true;
	size_t i;

	ret[0] = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		if (!empty)
			strcat(ret, "|");
		strcat(ret, names[i].name);
		empty = false;
		flags &= ~names[i].bit;
	}
	/* as btrfs-progs 6.14: the bits it has no name for, together */
	if (flags)
		sprintf(ret + strlen(ret), "%sUNKNOWN: 0x%llx", empty ? "" : "|",
			(unsigned long long)flags);
	else if (empty)
		strcpy(ret, "none");
}

static void header_flags_str(u64 flags, char *ret)
{
	ret[0] = 0;
	if (flags & BTRFS_HEADER_FLAG_WRITTEN)
		strcpy(ret, "WRITTEN");
	if (flags & BTRFS_HEADER_FLAG_RELOC) {
		if (ret[0])
			strcat(ret, "|");
		strcat(ret, "RELOC");
	}
}

static const char *dir_type_str(u8 type, char *buf)
{
	static const char *const names[] = {
		[BTRFS_FT_REG_FILE] = "FILE",
		[BTRFS_FT_DIR] = "DIR",
		[BTRFS_FT_CHRDEV] = "CHRDEV",
		[BTRFS_FT_BLKDEV] = "BLKDEV",
		[BTRFS_FT_FIFO] = "FIFO",
		[BTRFS_FT_SOCK] = "SOCK",
		[BTRFS_FT_SYMLINK] = "SYMLINK",
		[BTRFS_FT_XATTR] = "XATTR",
	};

	/* like btrfs-progs 6.14, the type without BTRFS_FT_ENCRYPTED */
	type &= ~BTRFS_FT_ENCRYPTED;
	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	sprintf(buf, "DIR_ITEM.%u", type);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Timestamps: "sec.nsec (YYYY-mm-dd HH:MM:SS)" in local time           */

static const char *time_str(u64 sec)
{
	static struct {
		u64 sec;
		bool valid;
		struct tm tm;
		char s[64];
	} cache[8];
	/*
	 * btrfs-progs formats into an uninitialised struct tm on the stack,
	 * which in practice still holds the previous call's result.  On
	 * overflow glibc sets only some fields (and returns NULL), so the
	 * rest shows through; keep the previous tm to print the same.
	 */
	static struct tm last;
	static unsigned int next;
	unsigned int i;
	time_t t = (time_t)sec;
	bool ok;

	for (i = 0; i < 8; i++) {
		if (cache[i].valid && cache[i].sec == sec) {
			last = cache[i].tm;
			return cache[i].s;
		}
	}
	i = next++ & 7;
	ok = localtime_r(&t, &last) != NULL;
	if (!strftime(cache[i].s, sizeof(cache[i].s), "%Y-%m-%d %H:%M:%S", &last))
		cache[i].s[0] = 0;
	cache[i].tm = last;
	cache[i].sec = sec;
	cache[i].valid = ok;	/* a failed conversion depends on the previous one */
	return cache[i].s;
}

static void print_timespec_at(const struct blk *c, size_t off, const char *prefix)
{
	u64 sec = R64(c, off);
	u32 nsec = R32(c, off + 8);

	pt_out_str(prefix);
	pt_out_u64(sec);
	pt_out_chr('.');
	pt_out_u64(nsec);
	pt_out_str(" (");
	pt_out_str(time_str(sec));
	pt_out_str(")\n");
}

/* ------------------------------------------------------------------ */
/* Item bodies.  p is the offset of the item data inside the block.     */

static void print_inode_item(const struct blk *c, size_t p)
{
	char flags[256];
	u64 f = R64(c, p + 64);

	inode_flags_str(f, flags);
	pt_out_str("\t\tgeneration ");
	pt_out_u64(R64(c, p));
	pt_out_str(" transid ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" size ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" nbytes ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str("\n\t\tblock group ");
	pt_out_u64(R64(c, p + 32));
	pt_out_printf(" mode %o links %u uid %u gid %u rdev ", R32(c, p + 52),
		      R32(c, p + 40), R32(c, p + 44), R32(c, p + 48));
	pt_out_u64(R64(c, p + 56));
	pt_out_str("\n\t\tsequence ");
	pt_out_u64(R64(c, p + 72));
	pt_out_printf(" flags 0x%llx(%s)\n", (unsigned long long)f, flags);
	print_timespec_at(c, p + 112, "\t\tatime ");
	print_timespec_at(c, p + 124, "\t\tctime ");
	print_timespec_at(c, p + 136, "\t\tmtime ");
	print_timespec_at(c, p + 148, "\t\totime ");
}

static void print_inode_ref(const struct blk *c, size_t p, u32 size)
{
	u32 cur = 0;

	while (cur < size) {
		u64 index = R64(c, p + cur);
		u32 name_len = R16(c, p + cur + 8);

		pt_out_str("\t\tindex ");
		pt_out_u64(index);
		pt_out_str(" namelen ");
		pt_out_u64(name_len);
		if (c->o->hide_names) {
			pt_out_str(" name: HIDDEN\n");
		} else {
			pt_out_str(" name: ");
			out_escaped(c, p + cur + 10, name_len < BTRFS_NAME_LEN ? name_len : BTRFS_NAME_LEN);
			pt_out_chr('\n');
		}
		cur += 10 + name_len;
	}
}

static void print_inode_extref(const struct blk *c, size_t p, u32 size)
{
	u32 cur = 0;

	while (cur < size) {
		u64 parent = R64(c, p + cur);
		u64 index = R64(c, p + cur + 8);
		u32 name_len = R16(c, p + cur + 16);

		pt_out_str("\t\tindex ");
		pt_out_u64(index);
		pt_out_str(" parent ");
		pt_out_u64(parent);
		pt_out_str(" namelen ");
		pt_out_u64(name_len);
		if (c->o->hide_names) {
			pt_out_str(" name: HIDDEN\n");
		} else {
			pt_out_str(" name: ");
			out_escaped(c, p + cur + 18, name_len < BTRFS_NAME_LEN ? name_len : BTRFS_NAME_LEN);
			pt_out_chr('\n');
		}
		cur += 18 + name_len;
	}
}

static void print_dir_item(const struct blk *c, size_t p, u32 size)
{
	u32 cur = 0;
	char tbuf[24];

	while (cur < size) {
		size_t di = p + cur;
		u32 name_len = R16(c, di + 27);
		u32 data_len = R16(c, di + 25);

		pt_out_str("\t\tlocation ");
		print_key_at(c, di);
		pt_out_str(" type ");
		pt_out_str(dir_type_str(R8(c, di + 29), tbuf));
		pt_out_chr('\n');
		if ((u64)cur + name_len + data_len > size) {
			/* btrfs-progs 6.14 stops here too (with an error on stderr) */
			warning("invalid dir item length, cur=%u name_len=%u data_len=%u size=%u",
				cur, name_len, data_len, size);
			break;
		}
		pt_out_str("\t\ttransid ");
		pt_out_u64(R64(c, di + 17));
		pt_out_str(" data_len ");
		pt_out_u64(data_len);
		pt_out_str(" name_len ");
		pt_out_u64(name_len);
		pt_out_chr('\n');
		if (c->o->hide_names) {
			pt_out_str("\t\tname: HIDDEN\n");
		} else {
			pt_out_str("\t\tname: ");
			out_escaped(c, di + 30, name_len < BTRFS_NAME_LEN ? name_len : BTRFS_NAME_LEN);
			pt_out_chr('\n');
		}
		if (data_len) {
			if (c->o->hide_names) {
				pt_out_str("\t\tdata HIDDEN\n");
			} else {
				pt_out_str("\t\tdata ");
				out_escaped(c, di + 30 + name_len,
					 data_len < BTRFS_NAME_LEN ? data_len : BTRFS_NAME_LEN);
				pt_out_chr('\n');
			}
		}
		cur += 30 + name_len + data_len;
	}
}

static void print_root_item(const struct blk *c, size_t p, u32 size)
{
	/* progs copies min(size, struct) bytes into a zeroed struct ... */
	u8 ri[sizeof(struct btrfs_root_item)];
	struct blk r = { ri, sizeof(ri), c->o };
	u64 flags, gen, gen2;

	memset(ri, 0, sizeof(ri));
	rd_bytes(c, p, ri, size < sizeof(ri) ? size : sizeof(ri));
	flags = R64(&r, 208);
	gen = R64(&r, 160);
	gen2 = R64(&r, 239);

	pt_out_str("\t\tgeneration ");
	pt_out_u64(gen);
	pt_out_str(" root_dirid ");
	pt_out_u64(R64(&r, 168));
	pt_out_str(" bytenr ");
	pt_out_u64(R64(&r, 176));
	pt_out_str(" byte_limit ");
	pt_out_u64(R64(&r, 184));
	pt_out_str(" bytes_used ");
	pt_out_u64(R64(&r, 192));
	pt_out_str("\n\t\tlast_snapshot ");
	pt_out_u64(R64(&r, 200));
	pt_out_printf(" flags 0x%llx(%s) refs %u\n", (unsigned long long)flags,
		      (flags & BTRFS_ROOT_SUBVOL_RDONLY) ? "RDONLY" : "none",
		      R32(&r, 216));
	pt_out_str("\t\tdrop_progress ");
	print_key_at(&r, 220);
	pt_out_str(" drop_level ");
	pt_out_u64(R8(&r, 237));
	pt_out_str("\n\t\tlevel ");
	pt_out_u64(R8(&r, 238));
	pt_out_str(" generation_v2 ");
	pt_out_u64(gen2);
	pt_out_chr('\n');
	if (gen != gen2)
		return;
	pt_out_str("\t\tuuid ");
	out_uuid(ri + 247);
	pt_out_str("\n\t\tparent_uuid ");
	out_uuid(ri + 263);
	pt_out_str("\n\t\treceived_uuid ");
	out_uuid(ri + 279);
	pt_out_str("\n\t\tctransid ");
	pt_out_u64(R64(&r, 295));
	pt_out_str(" otransid ");
	pt_out_u64(R64(&r, 303));
	pt_out_str(" stransid ");
	pt_out_u64(R64(&r, 311));
	pt_out_str(" rtransid ");
	pt_out_u64(R64(&r, 319));
	pt_out_chr('\n');
	/* ... but reads the times from the leaf itself. */
	print_timespec_at(c, p + 327, "\t\tctime ");
	print_timespec_at(c, p + 339, "\t\totime ");
	print_timespec_at(c, p + 351, "\t\tstime ");
	print_timespec_at(c, p + 363, "\t\trtime ");
}

static void print_root_ref(const struct blk *c, size_t p, const char *tag)
{
	u32 name_len = R16(c, p + 16);

	pt_out_printf("\t\troot %s key dirid ", tag);
	pt_out_u64(R64(c, p));
	pt_out_str(" sequence ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" name ");
	out_text_or_escaped(c, p + 18, name_len < BTRFS_NAME_LEN ? name_len : BTRFS_NAME_LEN);
	pt_out_chr('\n');
}

static void print_file_extent(const struct blk *c, size_t p, u32 size)
{
	u8 type = R8(c, p + 20);
	u8 comp = R8(c, p + 16);
	u8 enc = R8(c, p + 17);
	char cbuf[24];
	const char *cs = compress_str(comp, cbuf);

	pt_out_str("\t\tgeneration ");
	pt_out_u64(R64(c, p));
	pt_out_printf(" type %hhu (%s)\n", type, file_extent_type_str(type));
	if (type == BTRFS_FILE_EXTENT_INLINE) {
		pt_out_str("\t\tinline extent data size ");
		pt_out_u64((u32)(size - BTRFS_FILE_EXTENT_INLINE_DATA_START));
		pt_out_str(" ram_bytes ");
		pt_out_u64(R64(c, p + 8));
		pt_out_printf(" compression %hhu (%s) encryption %hhu\n", comp, cs, enc);
		return;
	}
	if (type == BTRFS_FILE_EXTENT_PREALLOC) {
		pt_out_str("\t\tprealloc data disk byte ");
		pt_out_u64(R64(c, p + 21));
		pt_out_str(" nr ");
		pt_out_u64(R64(c, p + 29));
		pt_out_str("\n\t\tprealloc data offset ");
		pt_out_u64(R64(c, p + 37));
		pt_out_str(" nr ");
		pt_out_u64(R64(c, p + 45));
		pt_out_chr('\n');
		return;
	}
	pt_out_str("\t\textent data disk byte ");
	pt_out_u64(R64(c, p + 21));
	pt_out_str(" nr ");
	pt_out_u64(R64(c, p + 29));
	pt_out_str("\n\t\textent data offset ");
	pt_out_u64(R64(c, p + 37));
	pt_out_str(" nr ");
	pt_out_u64(R64(c, p + 45));
	pt_out_str(" ram ");
	pt_out_u64(R64(c, p + 8));
	pt_out_printf("\n\t\textent compression %hhu (%s)\n", comp, cs);
	pt_out_printf("\t\textent encryption %hhu\n", enc);
}

static u32 inline_ref_size(u8 type)
{
	switch (type) {
	case BTRFS_TREE_BLOCK_REF_KEY:
	case BTRFS_SHARED_BLOCK_REF_KEY:
		return 9;
	case BTRFS_SHARED_DATA_REF_KEY:
		return 13;
	case BTRFS_EXTENT_DATA_REF_KEY:
		return 29;
	case BTRFS_EXTENT_OWNER_REF_KEY:
		return 9;
	}
	return 0;
}

static void print_extent_item(const struct blk *c, size_t p, u32 size,
			      const struct btrfs_key *key, bool metadata)
{
	char flags_str[48];
	u64 flags;
	size_t ptr, end;

	if (size < sizeof(struct btrfs_extent_item))
		return;
	flags = R64(c, p + 16);
	extent_flags_str(flags, flags_str);
	pt_out_str("\t\trefs ");
	pt_out_u64(R64(c, p));
	pt_out_str(" gen ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" flags ");
	pt_out_str(flags_str);
	pt_out_chr('\n');

	ptr = p + sizeof(struct btrfs_extent_item);
	if ((flags & BTRFS_EXTENT_FLAG_TREE_BLOCK) && !metadata) {
		pt_out_str("\t\ttree block ");
		print_key_at(c, ptr);
		pt_out_printf(" level %d\n", R8(c, ptr + 17));
		ptr += sizeof(struct btrfs_tree_block_info);
	} else if (metadata) {
		pt_out_printf("\t\ttree block skinny level %d\n", (int)key->offset);
	}

	end = p + size;
	while (ptr < end) {
		u8 type = R8(c, ptr);
		u64 offset = R64(c, ptr + 1);
		u64 seq = offset;

		/*
		 * btrfs-progs 6.14 puts "(type sequence) " before every inline
		 * ref; its owner ref line has one tab and reads "textent" (sic).
		 */
		if (type == BTRFS_EXTENT_DATA_REF_KEY)
			seq = btrfs_extent_data_ref_hash(offset, R64(c, ptr + 9), R64(c, ptr + 17));
		if (inline_ref_size(type))
			pt_out_printf("%s(%u 0x%llx) ", type == BTRFS_EXTENT_OWNER_REF_KEY ?
				      "\t" : "\t\t", type, (unsigned long long)seq);
		switch (type) {
		case BTRFS_TREE_BLOCK_REF_KEY:
			pt_out_str("tree block backref root ");
			pt_print_objectid(offset, 0);
			pt_out_chr('\n');
			break;
		case BTRFS_SHARED_BLOCK_REF_KEY:
			pt_out_str("shared block backref parent ");
			pt_out_u64(offset);
			pt_out_chr('\n');
			break;
		case BTRFS_EXTENT_DATA_REF_KEY:
			pt_out_str("extent data backref root ");
			pt_print_objectid(offset, 0);
			pt_out_str(" objectid ");
			pt_out_u64(R64(c, ptr + 9));
			pt_out_str(" offset ");
			pt_out_u64(R64(c, ptr + 17));
			pt_out_str(" count ");
			pt_out_u64(R32(c, ptr + 25));
			pt_out_chr('\n');
			break;
		case BTRFS_SHARED_DATA_REF_KEY:
			pt_out_str("shared data backref parent ");
			pt_out_u64(offset);
			pt_out_str(" count ");
			pt_out_u64(R32(c, ptr + 9));
			pt_out_chr('\n');
			break;
		case BTRFS_EXTENT_OWNER_REF_KEY:
			pt_out_str("textent owner root ");
			pt_out_u64(offset);
			pt_out_chr('\n');
			break;
		default:
			return;
		}
		ptr += inline_ref_size(type);
	}
}

static void print_extent_csum(const struct blk *c, size_t p, u32 size, u64 start)
{
	const struct print_opts *o = c->o;
	u32 csum_size = o->csum_size ? o->csum_size : 4;
	u32 len = (size / csum_size) * o->sectorsize;
	int one_line, curline;
	size_t cp = p;

	pt_out_str("\t\trange start ");
	pt_out_u64(start);
	pt_out_str(" end ");
	pt_out_u64(start + len);
	pt_out_str(" length ");
	pt_out_u64(len);
	pt_out_chr('\n');
	if (!o->csum_items)
		return;
	one_line = (int)(BTRFS_CSUM_SIZE / csum_size / 2);
	if (one_line < 1)
		one_line = 1;
	curline = one_line;
	while (len > 0) {
		u8 cs[BTRFS_CSUM_SIZE];

		if (curline == one_line) {
			pt_out_str("\t\t");
		} else if (curline == 0) {
			curline = one_line;
			pt_out_str("\n\t\t");
		} else {
			pt_out_chr(' ');
		}
		pt_out_chr('[');
		pt_out_u64(start);
		pt_out_str("] 0x");
		rd_bytes(c, cp, cs, csum_size);
		out_hex(cs, csum_size);
		cp += csum_size;
		start += o->sectorsize;
		len -= o->sectorsize;
		curline--;
	}
	pt_out_chr('\n');
}

static void print_chunk_body(const struct blk *c, size_t p)
{
	u16 num_stripes = R16(c, p + 44);
	char flags[FLAG_STR_LEN];
	u32 i;

	if (num_stripes < 1) {
		pt_out_printf("invalid num_stripes: %u\n", num_stripes);
		return;
	}
	if (p + 48 + (size_t)num_stripes * 32 > c->len) {
		pt_out_str("\t\tchunk item invalid\n");
		return;
	}
	bg_flags_str(R64(c, p + 24), flags);
	pt_out_str("\t\tlength ");
	pt_out_u64(R64(c, p));
	pt_out_str(" owner ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" stripe_len ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" type ");
	pt_out_str(flags);
	pt_out_printf("\n\t\tio_align %u io_width %u sector_size %u\n",
		      R32(c, p + 32), R32(c, p + 36), R32(c, p + 40));
	pt_out_printf("\t\tnum_stripes %hu sub_stripes %hu\n", num_stripes,
		      R16(c, p + 46));
	for (i = 0; i < num_stripes; i++) {
		size_t s = p + 48 + (size_t)i * 32;

		pt_out_printf("\t\t\tstripe %u devid ", i);
		pt_out_u64(R64(c, s));
		pt_out_str(" offset ");
		pt_out_u64(R64(c, s + 8));
		pt_out_str("\n\t\t\tdev_uuid ");
		out_uuid_at(c, s + 16);
		pt_out_chr('\n');
	}
}

void pt_print_chunk(const u8 *base, u32 limit, u32 off)
{
	struct print_opts o = { 0 };
	struct blk c = { base, limit, &o };

	print_chunk_body(&c, off);
}

static void print_dev_item(const struct blk *c, size_t p)
{
	pt_out_str("\t\tdevid ");
	pt_out_u64(R64(c, p));
	pt_out_str(" total_bytes ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" bytes_used ");
	pt_out_u64(R64(c, p + 16));
	pt_out_printf("\n\t\tio_align %u io_width %u sector_size %u type ",
		      R32(c, p + 24), R32(c, p + 28), R32(c, p + 32));
	pt_out_u64(R64(c, p + 36));
	pt_out_str("\n\t\tgeneration ");
	pt_out_u64(R64(c, p + 44));
	pt_out_str(" start_offset ");
	pt_out_u64(R64(c, p + 52));
	pt_out_printf(" dev_group %u\n\t\tseek_speed %hhu bandwidth %hhu\n\t\tuuid ",
		      R32(c, p + 60), R8(c, p + 64), R8(c, p + 65));
	out_uuid_at(c, p + 66);
	pt_out_str("\n\t\tfsid ");
	out_uuid_at(c, p + 82);
	pt_out_chr('\n');
}

static void print_dev_extent(const struct blk *c, size_t p)
{
	pt_out_str("\t\tdev extent chunk_tree ");
	pt_out_u64(R64(c, p));
	pt_out_str("\n\t\tchunk_objectid ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" chunk_offset ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" length ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str("\n\t\tchunk_tree_uuid ");
	out_uuid_at(c, p + 32);
	pt_out_chr('\n');
}

static void print_qgroup_status(const struct blk *c, size_t p)
{
	u64 flags = R64(c, p + 16);

	pt_out_str("\t\tversion ");
	pt_out_u64(R64(c, p));
	pt_out_str(" generation ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" flags ");
	pt_out_str((flags & QGROUP_STATUS_FLAG_ON) ? "ON" : "OFF");
	if (flags & QGROUP_STATUS_FLAG_SIMPLE_MODE)
		pt_out_str("|SIMPLE_MODE");
	if (flags & QGROUP_STATUS_FLAG_RESCAN)
		pt_out_str("|SCANNING");
	if (flags & QGROUP_STATUS_FLAG_INCONSISTENT)
		pt_out_str("|INCONSISTENT");
	if (flags & ~QGROUP_STATUS_FLAGS_KNOWN)
		pt_out_printf("|UNKNOWN(0x%llx)",
			      (unsigned long long)(flags & ~QGROUP_STATUS_FLAGS_KNOWN));
	pt_out_str(" scan ");
	pt_out_u64(R64(c, p + 24));
	if (c->o->simple_quota) {
		pt_out_str(" enable_gen ");
		pt_out_u64(R64(c, p + 32));
	}
	pt_out_chr('\n');
}

static void print_qgroup_info(const struct blk *c, size_t p)
{
	pt_out_str("\t\tgeneration ");
	pt_out_u64(R64(c, p));
	pt_out_str("\n\t\treferenced ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" referenced_compressed ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str("\n\t\texclusive ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str(" exclusive_compressed ");
	pt_out_u64(R64(c, p + 32));
	pt_out_chr('\n');
}

static void print_qgroup_limit(const struct blk *c, size_t p)
{
	pt_out_printf("\t\tflags %llx\n\t\tmax_referenced %lld max_exclusive %lld\n"
		      "\t\trsv_referenced %lld rsv_exclusive %lld\n",
		      (unsigned long long)R64(c, p), (long long)R64(c, p + 8),
		      (long long)R64(c, p + 16), (long long)R64(c, p + 24),
		      (long long)R64(c, p + 32));
}

static void print_dev_stats(const struct blk *c, size_t p, u32 size)
{
	u32 known = DEV_STAT_VALUES_MAX * 8;
	u32 i;

	pt_out_str("\t\tdevice stats\n\t\twrite_errs ");
	pt_out_u64(R64(c, p));
	pt_out_str(" read_errs ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" flush_errs ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" corruption_errs ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str(" generation ");
	pt_out_u64(R64(c, p + 32));
	pt_out_chr('\n');
	if (known < size) {
		/* sic: no newline after the byte count */
		pt_out_printf("\t\tunknown stats item bytes %u", size - known);
		for (i = DEV_STAT_VALUES_MAX; (u64)i * 8 < size; i++) {
			pt_out_printf("\t\tunknown item %u offset %u value ", i, i * 8);
			pt_out_u64(R64(c, p + (size_t)i * 8));
			pt_out_chr('\n');
		}
	}
}

static void print_balance_args(const struct blk *c, size_t a)
{
	pt_out_str("\t\tprofiles ");
	pt_out_u64(R64(c, a));
	pt_out_str(" devid ");
	pt_out_u64(R64(c, a + 16));
	pt_out_str(" target ");
	pt_out_u64(R64(c, a + 56));
	pt_out_str(" flags ");
	pt_out_u64(R64(c, a + 64));
	pt_out_printf("\n\t\tusage_min %u usage_max %u pstart ", R32(c, a + 8),
		      R32(c, a + 12));
	pt_out_u64(R64(c, a + 24));
	pt_out_str(" pend ");
	pt_out_u64(R64(c, a + 32));
	pt_out_str("\n\t\tvstart ");
	pt_out_u64(R64(c, a + 40));
	pt_out_str(" vend ");
	pt_out_u64(R64(c, a + 48));
	pt_out_printf(" limit_min %u limit_max %u\n", R32(c, a + 72), R32(c, a + 76));
	pt_out_printf("\t\tstripes_min %u stripes_max %u\n", R32(c, a + 80),
		      R32(c, a + 84));
}

static void print_balance_item(const struct blk *c, size_t p)
{
	const size_t args = sizeof(struct btrfs_balance_args);

	pt_out_str("\t\tbalance status flags ");
	pt_out_u64(R64(c, p));
	pt_out_str("\n\t\tDATA\n");
	print_balance_args(c, p + 8);
	pt_out_str("\t\tMETADATA\n");
	print_balance_args(c, p + 8 + args);
	pt_out_str("\t\tSYSTEM\n");
	print_balance_args(c, p + 8 + 2 * args);
}

static void print_uuid_item(const struct blk *c, size_t p, u32 size)
{
	if (size & 7) {
		pt_out_printf("btrfs: uuid item with illegal size %lu!\n",
			      (unsigned long)size);
		return;
	}
	while (size) {
		pt_out_str("\t\tsubvol_id ");
		pt_out_u64(R64(c, p));
		pt_out_chr('\n');
		size -= 8;
		p += 8;
	}
}

static void print_free_space_header(const struct blk *c, size_t p)
{
	pt_out_str("\t\tlocation ");
	print_key_at(c, p);
	pt_out_str("\n\t\tcache generation ");
	pt_out_u64(R64(c, p + 17));
	pt_out_str(" entries ");
	pt_out_u64(R64(c, p + 25));
	pt_out_str(" bitmaps ");
	pt_out_u64(R64(c, p + 33));
	pt_out_chr('\n');
}

static void print_fscrypt_ctx(const struct blk *c, size_t p, u32 size)
{
	size_t n = size;

	if (p > c->len)
		n = 0;
	else if (n > c->len - p)
		n = c->len - p;
	pt_out_str("\t\tvalue: ");
	out_hex(c->b + p, n);
	pt_out_chr('\n');
}

/* Block group, free space, chunk, device, qgroup, uuid and other items. */
static void print_item_body_other(const struct blk *c, const struct btrfs_key *key,
				  size_t p, u32 size)
{
	switch (key->type) {
	case BTRFS_BLOCK_GROUP_ITEM_KEY: {
		char flags[FLAG_STR_LEN];

		bg_flags_str(R64(c, p + 16), flags);
		pt_out_str("\t\tblock group used ");
		pt_out_u64(R64(c, p));
		pt_out_str(" chunk_objectid ");
		pt_out_u64(R64(c, p + 8));
		pt_out_str(" flags ");
		pt_out_str(flags);
		pt_out_chr('\n');
		break;
	}
	case BTRFS_FREE_SPACE_INFO_KEY:
		pt_out_str("\t\tfree space info extent count ");
		pt_out_u64(R32(c, p));
		pt_out_str(" flags ");
		pt_out_u64(R32(c, p + 4));
		pt_out_chr('\n');
		break;
	case BTRFS_FREE_SPACE_EXTENT_KEY:
		pt_out_str("\t\tfree space extent\n");
		break;
	case BTRFS_FREE_SPACE_BITMAP_KEY:
		pt_out_str("\t\tfree space bitmap\n");
		break;
	case BTRFS_CHUNK_ITEM_KEY:
		print_chunk_body(c, p);
		break;
	case BTRFS_DEV_ITEM_KEY:
		print_dev_item(c, p);
		break;
	case BTRFS_DEV_EXTENT_KEY:
		print_dev_extent(c, p);
		break;
	case BTRFS_QGROUP_STATUS_KEY:
		print_qgroup_status(c, p);
		break;
	case BTRFS_QGROUP_RELATION_KEY:
		break;
	case BTRFS_QGROUP_INFO_KEY:
		print_qgroup_info(c, p);
		break;
	case BTRFS_QGROUP_LIMIT_KEY:
		print_qgroup_limit(c, p);
		break;
	case BTRFS_UUID_KEY_SUBVOL:
	case BTRFS_UUID_KEY_RECEIVED_SUBVOL:
		print_uuid_item(c, p, size);
		break;
	case BTRFS_STRING_ITEM_KEY:
		pt_out_str("\t\titem data ");
		out_text_or_escaped(c, p, size);
		pt_out_chr('\n');
		break;
	case BTRFS_PERSISTENT_ITEM_KEY:
		pt_out_str("\t\tpersistent item objectid ");
		pt_print_objectid(key->objectid, BTRFS_PERSISTENT_ITEM_KEY);
		pt_out_str(" offset ");
		pt_out_u64(key->offset);
		pt_out_chr('\n');
		if (key->objectid == BTRFS_DEV_STATS_OBJECTID)
			print_dev_stats(c, p, size);
		else
			pt_out_printf("\t\tunknown persistent item objectid %llu\n",
				      (unsigned long long)key->objectid);
		break;
	case BTRFS_TEMPORARY_ITEM_KEY:
		pt_out_str("\t\ttemporary item objectid ");
		pt_print_objectid(key->objectid, BTRFS_TEMPORARY_ITEM_KEY);
		pt_out_str(" offset ");
		pt_out_u64(key->offset);
		pt_out_chr('\n');
		if (key->objectid == BTRFS_BALANCE_OBJECTID)
			print_balance_item(c, p);
		else
			pt_out_printf("\t\tunknown temporary item objectid %llu\n",
				      (unsigned long long)key->objectid);
		break;
	}
}

/* Extent tree, csum and file extent items. */
static void print_item_body_extent(const struct blk *c, const struct btrfs_key *key,
				  size_t p, u32 size)
{
	switch (key->type) {
	case BTRFS_EXTENT_ITEM_KEY:
		print_extent_item(c, p, size, key, false);
		break;
	case BTRFS_METADATA_ITEM_KEY:
		print_extent_item(c, p, size, key, true);
		break;
	case BTRFS_TREE_BLOCK_REF_KEY:
		pt_out_str("\t\ttree block backref\n");
		break;
	case BTRFS_SHARED_BLOCK_REF_KEY:
		pt_out_str("\t\tshared block backref\n");
		break;
	case BTRFS_EXTENT_DATA_REF_KEY:
		pt_out_str("\t\textent data backref root ");
		pt_print_objectid(R64(c, p), 0);
		pt_out_str(" objectid ");
		pt_out_u64(R64(c, p + 8));
		pt_out_str(" offset ");
		pt_out_u64(R64(c, p + 16));
		pt_out_str(" count ");
		pt_out_u64(R32(c, p + 24));
		pt_out_chr('\n');
		break;
	case BTRFS_SHARED_DATA_REF_KEY:
		pt_out_str("\t\tshared data backref count ");
		pt_out_u64(R32(c, p));
		pt_out_chr('\n');
		break;
	case KEY_EXTENT_REF_V0:
		pt_out_str("\t\textent ref v0 (deprecated)\n");
		break;
	case KEY_CSUM_ITEM:
		pt_out_str("\t\tcsum item\n");
		break;
	case BTRFS_EXTENT_CSUM_KEY:
		print_extent_csum(c, p, size, key->offset);
		break;
	case BTRFS_EXTENT_DATA_KEY:
		print_file_extent(c, p, size);
		break;
	default:
		print_item_body_other(c, key, p, size);
		break;
	}
}

static void print_item_body(const struct blk *c, const struct btrfs_key *key,
			    size_t p, u32 size)
{
	if (key->type == 0 && key->objectid == BTRFS_FREE_SPACE_OBJECTID)
		print_free_space_header(c, p);

	switch (key->type) {
	case BTRFS_INODE_ITEM_KEY:
		print_inode_item(c, p);
		break;
	case BTRFS_INODE_REF_KEY:
		print_inode_ref(c, p, size);
		break;
	case BTRFS_INODE_EXTREF_KEY:
		print_inode_extref(c, p, size);
		break;
	case BTRFS_DIR_ITEM_KEY:
	case BTRFS_DIR_INDEX_KEY:
	case BTRFS_XATTR_ITEM_KEY:
		print_dir_item(c, p, size);
		break;
	case BTRFS_DIR_LOG_INDEX_KEY:
	case BTRFS_DIR_LOG_ITEM_KEY:
		pt_out_str("\t\tdir log end ");
		pt_out_u64(R64(c, p));
		pt_out_chr('\n');
		break;
	case BTRFS_ORPHAN_ITEM_KEY:
		pt_out_str("\t\torphan item\n");
		break;
	case BTRFS_FSCRYPT_INODE_CTX_KEY:
	case BTRFS_FSCRYPT_CTX_KEY:
		print_fscrypt_ctx(c, p, size);
		break;
	case BTRFS_ROOT_ITEM_KEY:
		print_root_item(c, p, size);
		break;
	case BTRFS_ROOT_REF_KEY:
		print_root_ref(c, p, "ref");
		break;
	case BTRFS_ROOT_BACKREF_KEY:
		print_root_ref(c, p, "backref");
		break;
	default:
		print_item_body_extent(c, key, p, size);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Blocks                                                              */

static void print_header(const struct blk *c)
{
	const struct print_opts *o = c->o;
	u64 raw_flags = R64(c, 0x38);
	u64 flags = raw_flags & ~(0xffULL << BTRFS_BACKREF_REV_SHIFT);
	u8 level = R8(c, 0x64);
	u32 nr = R32(c, 0x60);
	u64 bytenr = R64(c, 0x30);
	char fstr[32];

	header_flags_str(flags, fstr);
	if (level) {
		u32 ptrs = (o->nodesize - HDR_SIZE) / PTR_SIZE;

		pt_out_str("node ");
		pt_out_u64(bytenr);
		pt_out_str(" level ");
		pt_out_u64(level);
		pt_out_str(" items ");
		pt_out_u64(nr);
		pt_out_str(" free space ");
		pt_out_u64((u32)(ptrs - nr));
	} else {
		u32 data_size = o->nodesize - HDR_SIZE;
		u32 used = 0;

		if (nr) {
			size_t first = HDR_SIZE;
			size_t last = HDR_SIZE + (size_t)(nr - 1) * ITEM_SIZE;
			u32 end0 = R32(c, first + 17) + R32(c, first + 21);

			used = end0 - R32(c, last + 17) + nr * ITEM_SIZE;
		}
		pt_out_str("leaf ");
		pt_out_u64(bytenr);
		pt_out_str(" items ");
		pt_out_u64(nr);
		pt_out_printf(" free space %d", (int)(data_size - used));
	}
	pt_out_str(" generation ");
	pt_out_u64(R64(c, 0x50));
	pt_out_str(" owner ");
	pt_print_objectid(R64(c, 0x58), 0);
	pt_out_chr('\n');
	pt_out_str(level ? "node " : "leaf ");
	pt_out_u64(bytenr);
	pt_out_printf(" flags 0x%llx(%s) backref revision %d", (unsigned long long)flags,
		      fstr, (int)(raw_flags >> BTRFS_BACKREF_REV_SHIFT));
	if (o->csum_headers) {
		pt_out_str(" csum 0x");
		out_hex(c->b, o->csum_size <= BTRFS_CSUM_SIZE ? o->csum_size : BTRFS_CSUM_SIZE);
	}
	pt_out_str("\nfs uuid ");
	out_uuid_at(c, 0x20);
	pt_out_str("\nchunk uuid ");
	out_uuid_at(c, 0x40);
	pt_out_chr('\n');
}

int pt_print_block(const struct print_opts *o, const u8 *b, char *errbuf, size_t errlen)
{
	struct blk c = { b, o->nodesize, o };
	u32 nr = R32(&c, 0x60);
	u32 i;

	print_header(&c);
	if (R8(&c, 0x64)) {
		u32 ptrs = (o->nodesize - HDR_SIZE) / PTR_SIZE;

		for (i = 0; i < nr && i < ptrs; i++) {
			size_t kp = HDR_SIZE + (size_t)i * PTR_SIZE;

			pt_out_chr('\t');
			print_key_at(&c, kp);
			pt_out_str(" block ");
			pt_out_u64(R64(&c, kp + 17));
			pt_out_str(" gen ");
			pt_out_u64(R64(&c, kp + 25));
			pt_out_chr('\n');
		}
		return 0;
	}

	for (i = 0; i < nr; i++) {
		u32 data_size = o->nodesize - HDR_SIZE;
		size_t ip = HDR_SIZE + (size_t)i * ITEM_SIZE;
		u32 off = R32(&c, ip + 17);
		u32 size = R32(&c, ip + 21);
		struct btrfs_key key;

		if (ip + ITEM_SIZE > c.len || off > data_size ||
		    (u64)off + size > data_size) {
			snprintf(errbuf, errlen,
				 "leaf %llu slot %u pointer invalid, offset %u size %u leaf data limit %u",
				 (unsigned long long)R64(&c, 0x30), i, off, size, data_size);
			return -1;
		}
		rd_key(&c, ip, &key);
		pt_out_printf("\titem %u ", i);
		pt_print_key(&key);
		pt_out_str(" itemoff ");
		pt_out_u64(off);
		pt_out_str(" itemsize ");
		pt_out_u64(size);
		pt_out_chr('\n');
		print_item_body(&c, &key, HDR_SIZE + (size_t)off, size);
	}
	return 0;
}

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
	char *s = malloc(2 * n + 1);
	size_t i;

	if (!s)
		return NULL;
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

	rd_bytes(c, off, u, 16);
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
	esc = malloc(4 * n + 1);
	if (!esc)
		die_oom();
	len = pt_escape(c->b + off, n, esc);
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

	rd_key(c, off, &k);
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

	inode_flags_str(R64(c, p + 64), flags);
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
		JADD(d, "type", json_object_new_string(dir_type_str(type, tbuf)));
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
	rd_bytes(c, p, ri, size < sizeof(ri) ? size : sizeof(ri));
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
	JADD(o, "extent-type", json_object_new_string(file_extent_type_str(type)));
	JADD(o, "extent-type-id", json_object_new_int(type));
	JADD(o, "ram-bytes", j_u64(R64(c, p + 8)));
	JADD(o, "compression", json_object_new_int(R8(c, p + 16)));
	JADD(o, "compression-name", json_object_new_string(compress_str(R8(c, p + 16), cbuf)));
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
	extent_flags_str(flags, flags_str);
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
		if (!inline_ref_size(type))
			break;
		ptr += inline_ref_size(type);
	}
	JADD(o, "inline-refs", arr);
}

static void j_chunk(struct json_object *o, const struct blk *c, size_t p)
{
	u16 num = R16(c, p + 44);
	char flags[FLAG_STR_LEN];
	struct json_object *arr = json_object_new_array();
	u32 i;

	bg_flags_str(R64(c, p + 24), flags);
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
		bg_flags_str(R64(c, p + 16), buf);
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
		rd_key(&c, ip, &key);
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
