// SPDX-License-Identifier: GPL-2.0
/*
 * Tree block printing in the text format of btrfs-progs 6.14 dump-tree, with
 * the fscrypt additions of Documentation/format.rst section 12.  The strings and their
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
#include "cmds/print-tree-internal.h"
#include "common/escape.h"
#include "common/messages.h"
#include "common/utils.h"
#include "kernel-shared/hash.h"
#include "crypto/csum.h"


/* Objects, types and constants that ondisk.h has no name for. */

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
void pt_out_hex(const u8 *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out_room(2);
		obuf[opos++] = digits[p[i] >> 4];
		obuf[opos++] = digits[p[i] & 15];
	}
}

void pt_out_uuid(const u8 *uuid)
{
	char s[37];

	uuid_unparse(uuid, s);
	pt_out_mem(s, 36);
}

/* ------------------------------------------------------------------ */
/* Bounds-checked access to one block                                  */



/* Copy n bytes at off into dst, zero-filling what lies outside the block. */
void pt_rd_bytes(const struct blk *c, size_t off, void *dst, size_t n)
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

void pt_rd_key(const struct blk *c, size_t off, struct btrfs_key *k)
{
	k->objectid = R64(c, off);
	k->type = R8(c, off + 8);
	k->offset = R64(c, off + 9);
}

bool pt_plain_text(const u8 *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return utf8_valid(s, n);
}

/* n bytes at off (clamped to the block), escaped; never stops at a NUL. */
void pt_out_escaped(const struct blk *c, size_t off, size_t n)
{
	size_t i;

	if (off >= c->len)
		return;
	if (n > c->len - off)
		n = c->len - off;
	for (i = 0; i < n; i++) {
		out_room(4);
		opos += esc_progs_byte(c->b[off + i], obuf + opos);
	}
}

/*
 * A name that btrfs-progs prints raw with "%.*s" (subvolume names of root
 * refs, string items): the same bytes when they are plain text, else the
 * whole name escaped, so that no control byte or invalid UTF-8 reaches the
 * terminal.
 */
void pt_out_text_or_escaped(const struct blk *c, size_t off, size_t n)
{
	if (off >= c->len)
		return;
	if (n > c->len - off)
		n = c->len - off;
	if (pt_plain_text(c->b + off, n))
		pt_out_mem(c->b + off, n);
	else
		pt_out_escaped(c, off, n);
}

void pt_out_uuid_at(const struct blk *c, size_t off)
{
	u8 u[16];

	pt_rd_bytes(c, off, u, 16);
	pt_out_uuid(u);
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

void pt_print_key_at(const struct blk *c, size_t off)
{
	struct btrfs_key k;

	pt_rd_key(c, off, &k);
	pt_print_key(&k);
}

/* ------------------------------------------------------------------ */
/* Flag strings                                                        */


/*
 * Block group / chunk type: btrfs-progs only puts a '|' before METADATA and
 * SYSTEM when DATA is set, and names SINGLE in lower case.
 */
void pt_bg_flags_str(u64 flags, char *ret)
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

const char *pt_compress_str(u8 type, char *buf)
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

const char *pt_file_extent_type_str(u8 type)
{
	switch (type) {
	case BTRFS_FILE_EXTENT_INLINE: return "inline";
	case BTRFS_FILE_EXTENT_PREALLOC: return "prealloc";
	case BTRFS_FILE_EXTENT_REG: return "regular";
	}
	return "unknown";
}

/* DATA, TREE_BLOCK; FULL_BACKREF is always preceded by '|'. */
void pt_extent_flags_str(u64 flags, char *ret)
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

void pt_inode_flags_str(u64 flags, char *ret)
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

const char *pt_dir_type_str(u8 type, char *buf)
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

void pt_print_timespec_at(const struct blk *c, size_t off, const char *prefix)
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
		pt_out_hex(c->b, o->csum_size <= BTRFS_CSUM_SIZE ? o->csum_size : BTRFS_CSUM_SIZE);
	}
	pt_out_str("\nfs uuid ");
	pt_out_uuid_at(c, 0x20);
	pt_out_str("\nchunk uuid ");
	pt_out_uuid_at(c, 0x40);
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
			pt_print_key_at(&c, kp);
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
		pt_rd_key(&c, ip, &key);
		pt_out_printf("\titem %u ", i);
		pt_print_key(&key);
		pt_out_str(" itemoff ");
		pt_out_u64(off);
		pt_out_str(" itemsize ");
		pt_out_u64(size);
		pt_out_chr('\n');
		pt_print_item_body(&c, &key, HDR_SIZE + (size_t)off, size);
	}
	return 0;
}
