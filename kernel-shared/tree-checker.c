// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel's read-time tree-checker rules (see tree-checker.h).  Each item
 * type has one function; a function reports the first rule its item breaks
 * and returns false, so one bad item is one report.  Checks of the leaf as a
 * whole (key order, item table) stop at their first failure: past it, slots
 * cannot be trusted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "kernel-shared/backref.h"
#include "kernel-shared/hash.h"
#include "common/utils.h"
#include "kernel-shared/tree-checker.h"

/* The kernel's inode flags: the low 32 bits (ENCRYPT belongs to them in the fscrypt series). */
#define INODE_FLAG_MASK                                                      \
	(BTRFS_INODE_NODATASUM | BTRFS_INODE_NODATACOW | BTRFS_INODE_READONLY | \
	 BTRFS_INODE_NOCOMPRESS | BTRFS_INODE_PREALLOC | BTRFS_INODE_SYNC |    \
	 BTRFS_INODE_IMMUTABLE | BTRFS_INODE_APPEND | BTRFS_INODE_NODUMP |     \
	 BTRFS_INODE_NOATIME | BTRFS_INODE_DIRSYNC | BTRFS_INODE_COMPRESS |    \
	 BTRFS_INODE_ENCRYPT | BTRFS_INODE_ROOT_ITEM_INIT)
#define ROOT_SUBVOL_DEAD (1ULL << 48)
#define STRIPE_LEN 65536ULL
#define FREE_SPACE_FLAGS_MASK BTRFS_FREE_SPACE_USING_BITMAPS
#define EXTENT_CTX_MAX_SIZE 40
#define MODE_VALID_MASK (S_IFMT | S_ISUID | S_ISGID | S_ISVTX | 0777)

/* A check in progress over one block. */
struct tc {
	const struct fs_info *fs;
	const struct tree_block *b;
	const struct tree_check_report *r;
	unsigned int bad;
	u64 max_gen;		/* superblock generation + 1 (a log tree may be one ahead) */
	u32 leaf_data;		/* bytes of a leaf after its header */
};

static bool __attribute__((format(printf, 3, 4)))
tc_bad(struct tc *t, int slot, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	t->bad++;
	if (t->r && t->r->bad)
		t->r->bad(t->r->arg, t->b, slot, why);
	return false;
}

static bool aligned(u64 v, u64 a)
{
	return (v & (a - 1)) == 0;
}

static unsigned int bits_set(u64 v)
{
	return (unsigned int)__builtin_popcountll(v);
}

/* bits_set(v) == 1 without the library call popcount is without -mpopcnt (hot paths). */
static bool one_bit(u64 v)
{
	return v && !(v & (v - 1));
}

bool tree_is_fs_tree(u64 id)
{
	/* Ids with high bits set are qgroup levels or special trees, not subvolumes. */
	return id == BTRFS_FS_TREE_OBJECTID ||
	       (id >= BTRFS_FIRST_FREE_OBJECTID && id < (1ULL << 48));
}

/* Items of an inode in a subvolume tree follow its INODE_ITEM: the previous key has its objectid. */
static bool prev_same_ino(struct tc *t, int slot, const struct btrfs_key *key,
			  const struct btrfs_key *prev)
{
	if (slot == 0 || !tree_is_fs_tree(tb_owner(t->b)) || prev->objectid == key->objectid)
		return true;
	return tc_bad(t, slot, "invalid previous key objectid, have %llu expect %llu",
		      prev->objectid, key->objectid);
}

/* ---- file extents and csums ---------------------------------------------------- */

static u64 file_extent_end(const struct tc *t, const struct btrfs_key *k,
			   const struct btrfs_file_extent_item *fi)
{
	if (fi->type == BTRFS_FILE_EXTENT_INLINE) {
		u64 end = k->offset + le64_to_cpu(fi->ram_bytes);

		return (end + t->fs->sectorsize - 1) / t->fs->sectorsize * t->fs->sectorsize;
	}
	return k->offset + le64_to_cpu(fi->num_bytes);
}

static bool fe_aligned(struct tc *t, int slot, const char *name, u64 v)
{
	if (aligned(v, t->fs->sectorsize))
		return true;
	return tc_bad(t, slot, "invalid %s for file extent, have %llu, should be aligned to %u",
		      name, v, t->fs->sectorsize);
}

static bool check_file_extent(struct tc *t, int slot, const struct btrfs_key *k,
			      const struct btrfs_key *prev)
{
	const u8 *p = tb_item_ptr(t->b, slot);
	const struct btrfs_file_extent_item *fi = (const void *)p;
	u32 size = tb_item_size(t->b, slot);
	u64 end;

	if (!aligned(k->offset, t->fs->sectorsize))
		return tc_bad(t, slot, "unaligned file_offset for file extent, have %llu should be aligned to %u",
			      k->offset, t->fs->sectorsize);
	if (!prev_same_ino(t, slot, k, prev))
		return false;
	if (size < BTRFS_FILE_EXTENT_INLINE_DATA_START)
		return tc_bad(t, slot, "invalid item size, have %u expect [%zu, 4096)", size,
			      (size_t)BTRFS_FILE_EXTENT_INLINE_DATA_START);
	if (fi->type > BTRFS_FILE_EXTENT_PREALLOC)
		return tc_bad(t, slot, "invalid type for file extent, have %u expect range [0, %u]",
			      fi->type, BTRFS_FILE_EXTENT_PREALLOC);
	if (fi->compression > BTRFS_COMPRESS_ZSTD)
		return tc_bad(t, slot, "invalid compression for file extent, have %u expect range [0, %u]",
			      fi->compression, BTRFS_COMPRESS_ZSTD);
	if (fi->encryption > BTRFS_ENCRYPTION_FSCRYPT)
		return tc_bad(t, slot, "invalid encryption for file extent, have %u expect range [0, %u]",
			      fi->encryption, BTRFS_ENCRYPTION_FSCRYPT);
	if (fi->type == BTRFS_FILE_EXTENT_INLINE) {
		if (k->offset)
			return tc_bad(t, slot, "invalid file_offset for inline file extent, have %llu expect 0",
				      k->offset);
		if (fi->compression == BTRFS_COMPRESS_NONE &&
		    size != BTRFS_FILE_EXTENT_INLINE_DATA_START + le64_to_cpu(fi->ram_bytes))
			return tc_bad(t, slot, "invalid ram_bytes for uncompressed inline extent, have %u expect %llu",
				      size, BTRFS_FILE_EXTENT_INLINE_DATA_START +
					    le64_to_cpu(fi->ram_bytes));
		return true;
	}
	if (size != sizeof(*fi))
		return tc_bad(t, slot, "invalid item size for reg/prealloc file extent, have %u expect %zu",
			      size, sizeof(*fi));
	/* btrfs check's rule (both modes) for a regular or prealloc extent. */
	if (le64_to_cpu(fi->generation) > t->max_gen)
		return tc_bad(t, slot, "invalid file extent generation, have %llu expect (0, %llu]",
			      le64_to_cpu(fi->generation), t->max_gen);
	if (!fe_aligned(t, slot, "ram_bytes", le64_to_cpu(fi->ram_bytes)) ||
	    !fe_aligned(t, slot, "disk_bytenr", le64_to_cpu(fi->disk_bytenr)) ||
	    !fe_aligned(t, slot, "disk_num_bytes", le64_to_cpu(fi->disk_num_bytes)) ||
	    !fe_aligned(t, slot, "offset", le64_to_cpu(fi->offset)) ||
	    !fe_aligned(t, slot, "num_bytes", le64_to_cpu(fi->num_bytes)))
		return false;
	if (__builtin_add_overflow(k->offset, le64_to_cpu(fi->num_bytes), &end))
		return tc_bad(t, slot, "extent end overflow, have file offset %llu extent num bytes %llu",
			      k->offset, le64_to_cpu(fi->num_bytes));
	if (slot > 0 && prev->objectid == k->objectid && prev->type == BTRFS_EXTENT_DATA_KEY &&
	    tb_item_size(t->b, slot - 1) >= BTRFS_FILE_EXTENT_INLINE_DATA_START) {
		u64 prev_end = file_extent_end(t, prev, (const void *)tb_item_ptr(t->b, slot - 1));

		if (prev_end > k->offset)
			return tc_bad(t, slot - 1,
				      "file extent end range (%llu) goes beyond start offset (%llu) of the next file extent",
				      prev_end, k->offset);
	}
	return true;
}

static bool check_csum(struct tc *t, int slot, const struct btrfs_key *k,
		       const struct btrfs_key *prev)
{
	u32 ss = t->fs->sectorsize, cs = t->fs->csum_size;

	if (k->objectid != BTRFS_EXTENT_CSUM_OBJECTID)
		return tc_bad(t, slot, "invalid key objectid for csum item, have %llu expect %llu",
			      k->objectid, BTRFS_EXTENT_CSUM_OBJECTID);
	if (!aligned(k->offset, ss))
		return tc_bad(t, slot, "unaligned key offset for csum item, have %llu should be aligned to %u",
			      k->offset, ss);
	if (tb_item_size(t->b, slot) % cs)
		return tc_bad(t, slot, "unaligned item size for csum item, have %u should be aligned to %u",
			      tb_item_size(t->b, slot), cs);
	if (slot > 0 && prev->type == BTRFS_EXTENT_CSUM_KEY) {
		u64 prev_end = prev->offset + (u64)(tb_item_size(t->b, slot - 1) / cs) * ss;

		if (prev_end > k->offset)
			return tc_bad(t, slot - 1,
				      "csum end range (%llu) goes beyond the start range (%llu) of the next csum item",
				      prev_end, k->offset);
	}
	return true;
}

/* ---- keys pointing at inodes and roots ------------------------------------------- */

/* The location of a directory entry (or the key of an inode item) naming an inode. */
static bool check_inode_key(struct tc *t, int slot, const struct btrfs_key *loc, u8 item_type)
{
	if (item_type == BTRFS_XATTR_ITEM_KEY) {
		if (loc->objectid || loc->type || loc->offset)
			return tc_bad(t, slot, "invalid location key for xattr item, expect (0 0 0)");
		return true;
	}
	if ((loc->objectid < BTRFS_FIRST_FREE_OBJECTID || loc->objectid > BTRFS_LAST_FREE_OBJECTID) &&
	    loc->objectid != BTRFS_ROOT_TREE_DIR_OBJECTID && loc->objectid != BTRFS_FREE_INO_OBJECTID)
		return tc_bad(t, slot, "invalid %skey objectid: has %llu expect %llu or [%llu, %llu] or %llu",
			      item_type == BTRFS_INODE_ITEM_KEY ? "" : "location ", loc->objectid,
			      BTRFS_ROOT_TREE_DIR_OBJECTID, BTRFS_FIRST_FREE_OBJECTID,
			      BTRFS_LAST_FREE_OBJECTID, BTRFS_FREE_INO_OBJECTID);
	if (loc->offset)
		return tc_bad(t, slot, "invalid %skey offset: has %llu expect 0",
			      item_type == BTRFS_INODE_ITEM_KEY ? "" : "location ", loc->offset);
	return true;
}

/* The key of a root item, or the location of a directory entry naming a subvolume. */
static bool check_root_key(struct tc *t, int slot, const struct btrfs_key *key, bool is_root_item)
{
	/*
	 * Kernels before 5.x relocated the data relocation tree too and left
	 * reloc trees for it; btrfs check accepts them (fsck test 020), so do we.
	 */
	if (is_root_item && key->objectid == BTRFS_TREE_RELOC_OBJECTID &&
	    !tree_is_fs_tree(key->offset) && key->offset != BTRFS_DATA_RELOC_TREE_OBJECTID)
		return tc_bad(t, slot, "invalid reloc tree for root %lld, root id is not a subvolume tree",
			      (long long)key->offset);
	if (!key->objectid)
		return tc_bad(t, slot, is_root_item ? "invalid root id 0" : "invalid location key root id 0");
	if (!is_root_item && !tree_is_fs_tree(key->objectid))
		return tc_bad(t, slot, "invalid location key objectid, have %llu expect [%llu, %llu]",
			      key->objectid, BTRFS_FIRST_FREE_OBJECTID, BTRFS_LAST_FREE_OBJECTID);
	if (key->objectid == BTRFS_TREE_RELOC_OBJECTID && !key->offset)
		return tc_bad(t, slot, "invalid root id 0 for reloc tree");
	/* btrfs check: a tree that is not a subvolume has one root item, at offset 0. */
	if (is_root_item && !tree_is_fs_tree(key->objectid) && key->offset &&
	    key->objectid != BTRFS_TREE_RELOC_OBJECTID && key->objectid != BTRFS_TREE_LOG_OBJECTID)
		return tc_bad(t, slot, "root item of tree %llu has key offset %llu, expect 0 (btrfs check)",
			      key->objectid, key->offset);
	return true;
}

/* ---- directory entries, xattrs, references ------------------------------------------ */

static bool check_dir_entry(struct tc *t, int slot, const struct btrfs_key *k, const u8 *p,
			    u32 room, u32 *used)
{
	const struct btrfs_dir_item *di = (const void *)p;
	struct btrfs_key loc;
	u32 max_data = t->leaf_data - sizeof(struct btrfs_item) - sizeof(*di);
	u32 nl, dl;
	u8 ft;

	if (room < sizeof(*di))
		return tc_bad(t, slot, "dir item header crosses item boundary, have %zu boundary %u",
			      sizeof(*di), room);
	btrfs_disk_key_to_cpu(&loc, &di->location);
	if (loc.type == BTRFS_ROOT_ITEM_KEY) {
		if (!check_root_key(t, slot, &loc, false))
			return false;
	} else if (loc.type == BTRFS_INODE_ITEM_KEY || loc.type == 0) {
		if (!check_inode_key(t, slot, &loc, k->type))
			return false;
	} else {
		return tc_bad(t, slot, "invalid location key type, have %u, expect %u or %u", loc.type,
			      BTRFS_ROOT_ITEM_KEY, BTRFS_INODE_ITEM_KEY);
	}
	ft = di->type & ~BTRFS_FT_ENCRYPTED;
	if (ft == BTRFS_FT_UNKNOWN || ft >= BTRFS_FT_MAX)
		return tc_bad(t, slot, "invalid dir item type, have %u expect (0, %u)", ft, BTRFS_FT_MAX);
	if (k->type == BTRFS_XATTR_ITEM_KEY && ft != BTRFS_FT_XATTR)
		return tc_bad(t, slot, "invalid dir item type for XATTR key, have %u expect %u", ft,
			      BTRFS_FT_XATTR);
	if (ft == BTRFS_FT_XATTR && k->type != BTRFS_XATTR_ITEM_KEY)
		return tc_bad(t, slot, "xattr dir type found for non-XATTR key");
	nl = le16_to_cpu(di->name_len);
	dl = le16_to_cpu(di->data_len);
	if (nl > BTRFS_NAME_LEN)
		return tc_bad(t, slot, "dir item name len too long, have %u max %u", nl, BTRFS_NAME_LEN);
	if (nl + dl > max_data)
		return tc_bad(t, slot, "dir item name and data len too long, have %u max %u", nl + dl,
			      max_data);
	if (dl && ft != BTRFS_FT_XATTR)
		return tc_bad(t, slot, "dir item with invalid data len, have %u expect 0", dl);
	if (sizeof(*di) + nl + dl > room)
		return tc_bad(t, slot, "dir item data crosses item boundary, have %zu boundary %u",
			      sizeof(*di) + nl + dl, room);
	if ((k->type == BTRFS_DIR_ITEM_KEY || k->type == BTRFS_XATTR_ITEM_KEY) &&
	    btrfs_name_hash(p + sizeof(*di), nl) != k->offset)
		return tc_bad(t, slot, "name hash mismatch with key, have 0x%016x expect 0x%016llx",
			      btrfs_name_hash(p + sizeof(*di), nl), k->offset);
	*used = sizeof(*di) + nl + dl;
	return true;
}

static bool check_dir_item(struct tc *t, int slot, const struct btrfs_key *k,
			   const struct btrfs_key *prev)
{
	const u8 *p = tb_item_ptr(t->b, slot);
	u32 size = tb_item_size(t->b, slot), cur = 0, used = 0;

	if (!prev_same_ino(t, slot, k, prev))
		return false;
	/* A DIR_ITEM or XATTR_ITEM may hold several entries (hash collisions); each is checked. */
	while (cur < size) {
		if (!check_dir_entry(t, slot, k, p + cur, size - cur, &used))
			return false;
		cur += used;
	}
	return true;
}

/* INODE_REF (fixed part 10 bytes) and INODE_EXTREF (18 bytes): each name within the item. */
static bool check_refs(struct tc *t, int slot, const struct btrfs_key *k,
		       const struct btrfs_key *prev)
{
	bool ext = k->type == BTRFS_INODE_EXTREF_KEY;
	u32 fixed = ext ? sizeof(struct btrfs_inode_extref) : sizeof(struct btrfs_inode_ref);
	u32 size = tb_item_size(t->b, slot), cur = 0;
	const u8 *p = tb_item_ptr(t->b, slot);

	if (!prev_same_ino(t, slot, k, prev))
		return false;
	if (!ext && size <= fixed)
		return tc_bad(t, slot, "invalid item size, have %u expect (%u, %u)", size, fixed,
			      t->leaf_data);
	while (cur < size) {
		u16 nl;

		if (cur + fixed > size)
			return tc_bad(t, slot, "inode %sref overflow, ptr %u end %u %s size %u",
				      ext ? "ext" : "", cur, size, ext ? "inode_extref" : "inode_ref",
				      fixed);
		memcpy(&nl, p + cur + fixed - 2, 2);
		nl = le16_to_cpu(nl);
		if (cur + fixed + nl > size)
			return tc_bad(t, slot, "inode %sref overflow, ptr %u end %u namelen %u",
				      ext ? "ext" : "", cur, size, nl);
		cur += fixed + nl;
	}
	return true;
}

/* ROOT_REF and ROOT_BACKREF (btrfs check): the name inside the item. */
static bool check_root_ref(struct tc *t, int slot)
{
	const struct btrfs_root_ref *rr = (const void *)tb_item_ptr(t->b, slot);
	u32 size = tb_item_size(t->b, slot);

	if (size < sizeof(*rr))
		return tc_bad(t, slot, "root ref item too small, have %u expect at least %zu", size,
			      sizeof(*rr));
	if (sizeof(*rr) + le16_to_cpu(rr->name_len) != size ||
	    le16_to_cpu(rr->name_len) > BTRFS_NAME_LEN)
		return tc_bad(t, slot, "root ref name length %u does not fit item size %u",
			      le16_to_cpu(rr->name_len), size);
	return true;
}

/* ---- inodes and roots -------------------------------------------------------------- */

static bool check_inode_item(struct tc *t, int slot, const struct btrfs_key *k)
{
	const struct btrfs_inode_item *ii = (const void *)tb_item_ptr(t->b, slot);
	u32 size = tb_item_size(t->b, slot), mode;
	u64 flags;

	if (!check_inode_key(t, slot, k, BTRFS_INODE_ITEM_KEY))
		return false;
	if (size != sizeof(*ii))
		return tc_bad(t, slot, "invalid item size: has %u expect %zu", size, sizeof(*ii));
	if (le64_to_cpu(ii->generation) > t->max_gen)
		return tc_bad(t, slot, "invalid inode generation: has %llu expect (0, %llu]",
			      le64_to_cpu(ii->generation), t->max_gen);
	if (le64_to_cpu(ii->transid) > t->max_gen)
		return tc_bad(t, slot, "invalid inode transid: has %llu expect [0, %llu]",
			      le64_to_cpu(ii->transid), t->max_gen);
	mode = le32_to_cpu(ii->mode);
	if (mode & ~MODE_VALID_MASK)
		return tc_bad(t, slot, "unknown mode bit detected: 0x%x", mode & ~MODE_VALID_MASK);
	if (!one_bit(mode & S_IFMT) && !S_ISLNK(mode) && !S_ISBLK(mode) && !S_ISSOCK(mode))
		return tc_bad(t, slot, "invalid mode: has 0%o expect valid S_IF* bit(s)", mode & S_IFMT);
	if (S_ISDIR(mode) && le32_to_cpu(ii->nlink) > 1)
		return tc_bad(t, slot, "invalid nlink: has %u expect no more than 1 for dir",
			      le32_to_cpu(ii->nlink));
	flags = le64_to_cpu(ii->flags);
	if ((u32)flags & ~(u32)INODE_FLAG_MASK)
		return tc_bad(t, slot, "unknown incompat flags detected: 0x%x",
			      (u32)flags & ~(u32)INODE_FLAG_MASK);
	return true;
}

static bool check_root_item(struct tc *t, int slot, const struct btrfs_key *k)
{
	struct btrfs_root_item ri;
	u32 size = tb_item_size(t->b, slot);

	if (!check_root_key(t, slot, k, true))
		return false;
	if (size != sizeof(ri) && size != BTRFS_ROOT_ITEM_V0_SIZE)
		return tc_bad(t, slot, "invalid root item size, have %u expect %zu or %zu", size,
			      sizeof(ri), (size_t)BTRFS_ROOT_ITEM_V0_SIZE);
	memset(&ri, 0, sizeof(ri));
	memcpy(&ri, tb_item_ptr(t->b, slot), size);
	if (le64_to_cpu(ri.generation) > t->max_gen)
		return tc_bad(t, slot, "invalid root generation, have %llu expect (0, %llu]",
			      le64_to_cpu(ri.generation), t->max_gen);
	if (le64_to_cpu(ri.generation_v2) > t->max_gen)
		return tc_bad(t, slot, "invalid root v2 generation, have %llu expect (0, %llu]",
			      le64_to_cpu(ri.generation_v2), t->max_gen);
	if (le64_to_cpu(ri.last_snapshot) > t->max_gen)
		return tc_bad(t, slot, "invalid root last_snapshot, have %llu expect (0, %llu]",
			      le64_to_cpu(ri.last_snapshot), t->max_gen);
	if (!aligned(le64_to_cpu(ri.bytenr), t->fs->sectorsize))
		return tc_bad(t, slot, "invalid root bytenr, have %llu expect to be aligned to %u",
			      le64_to_cpu(ri.bytenr), t->fs->sectorsize);
	if (ri.level >= BTRFS_MAX_LEVEL)
		return tc_bad(t, slot, "invalid root level, have %u expect [0, %u]", ri.level,
			      BTRFS_MAX_LEVEL - 1);
	if (ri.drop_level >= BTRFS_MAX_LEVEL)
		return tc_bad(t, slot, "invalid root drop_level, have %u expect [0, %u]",
			      ri.drop_level, BTRFS_MAX_LEVEL - 1);
	if (le64_to_cpu(ri.flags) & ~(BTRFS_ROOT_SUBVOL_RDONLY | ROOT_SUBVOL_DEAD))
		return tc_bad(t, slot, "invalid root flags, have 0x%llx expect mask 0x%llx",
			      le64_to_cpu(ri.flags), BTRFS_ROOT_SUBVOL_RDONLY | ROOT_SUBVOL_DEAD);
	return true;
}

/* ---- extent tree --------------------------------------------------------------------- */

/* Trees whose data extents may carry a backref naming them (v1 space cache: the root tree). */
static bool data_ref_root_ok(u64 root)
{
	return tree_is_fs_tree(root) || root == BTRFS_DATA_RELOC_TREE_OBJECTID ||
	       root == BTRFS_ROOT_TREE_OBJECTID;
}

static bool check_data_ref_fields(struct tc *t, int slot, const struct btrfs_extent_data_ref *d,
				  const char *what)
{
	u64 root = le64_to_cpu(d->root), oid = le64_to_cpu(d->objectid);

	if (!data_ref_root_ok(root))
		return tc_bad(t, slot, "invalid %s root value %llu", what, root);
	if (oid < BTRFS_FIRST_FREE_OBJECTID || oid > BTRFS_LAST_FREE_OBJECTID)
		return tc_bad(t, slot, "invalid %s objectid value %llu", what, oid);
	if (!aligned(le64_to_cpu(d->offset), t->fs->sectorsize))
		return tc_bad(t, slot, "invalid %s offset, have %llu expect aligned to %u", what,
			      le64_to_cpu(d->offset), t->fs->sectorsize);
	if (!le32_to_cpu(d->count))
		return tc_bad(t, slot, "invalid %s count, should have non-zero value", what);
	return true;
}

/*
 * The inline refs of an extent item, from p to end: types ascending, and
 * inside one type the sequence (offset, or the data ref hash) descending.
 * Adds their counts to *refs.  A sequence is worked out only for a ref that
 * has a neighbour of its type (a data ref's is a hash; most extents have one
 * ref).
 */
static bool check_inline_refs(struct tc *t, int slot, const u8 *p, const u8 *end, u64 *refs)
{
	u8 last_type = 0;
	u64 last_seq = (u64)-1;
	struct backref last;	/* the ref before, when last_type is set */
	bool last_seq_known = true;

	while (p < end) {
		struct backref br;
		int rsize;
		u64 off, seq = (u64)-1;

		if ((size_t)(end - p) < sizeof(struct btrfs_extent_inline_ref))
			return tc_bad(t, slot, "inline ref item overflows extent item");
		rsize = backref_decode_inline(p, end - p, &br);
		if (rsize == BACKREF_UNKNOWN)
			return tc_bad(t, slot, "unknown inline ref type: %u", br.type);
		if (rsize < 0)
			return tc_bad(t, slot, "inline ref item overflows extent item, iref size %u",
				      backref_inline_size(br.type));
		off = le64_to_cpu(((const struct btrfs_extent_inline_ref *)p)->offset);
		if (br.kind == REF_DATA) {
			if (!check_data_ref_fields(t, slot, (const void *)(p + 1), "data ref"))
				return false;
			*refs += br.count;
		} else if (br.kind == REF_SHARED_DATA) {
			if (!aligned(off, t->fs->sectorsize))
				return tc_bad(t, slot, "invalid data parent bytenr, have %llu expect aligned to %u",
					      off, t->fs->sectorsize);
			if (!br.count)
				return tc_bad(t, slot, "invalid shared data ref count, should have non-zero value");
			*refs += br.count;
		} else if (br.kind == REF_SHARED_BLOCK) {
			if (!aligned(off, t->fs->sectorsize))
				return tc_bad(t, slot, "invalid tree parent bytenr, have %llu expect aligned to %u",
					      off, t->fs->sectorsize);
			*refs += 1;
		} else if (br.kind == REF_TREE_BLOCK) {
			*refs += 1;
		}
		if (br.type < last_type)
			return tc_bad(t, slot, "inline ref out-of-order: has type %u, prev type %u",
				      br.type, last_type);
		if (br.type > last_type) {
			last_seq = (u64)-1;
			last_seq_known = false;
		} else {
			if (!last_seq_known)
				last_seq = backref_seq(&last);
			seq = backref_seq(&br);
			if (seq > last_seq)
				return tc_bad(t, slot, "inline ref out-of-order: has type %u offset %llu seq 0x%llx, prev type %u seq 0x%llx",
					      br.type, off, seq, last_type, last_seq);
			last_seq = seq;
			last_seq_known = true;
		}
		last_type = br.type;
		last = br;
		p += rsize;
	}
	return true;
}

static bool check_extent_item(struct tc *t, int slot, const struct btrfs_key *k,
			      const struct btrfs_key *prev)
{
	const u8 *p = tb_item_ptr(t->b, slot);
	u32 size = tb_item_size(t->b, slot);
	const struct btrfs_extent_item *ei = (const void *)p;
	bool skinny = t->fs->incompat & BTRFS_FEATURE_INCOMPAT_SKINNY_METADATA;
	u64 flags, refs = 0;
	bool tree;

	if (k->type == BTRFS_METADATA_ITEM_KEY && !skinny)
		return tc_bad(t, slot, "invalid key type, METADATA_ITEM type invalid when SKINNY_METADATA feature disabled");
	if (!aligned(k->objectid, t->fs->sectorsize))
		return tc_bad(t, slot, "invalid key objectid, have %llu expect to be aligned to %u",
			      k->objectid, t->fs->sectorsize);
	if (k->type == BTRFS_METADATA_ITEM_KEY && k->offset >= BTRFS_MAX_LEVEL)
		return tc_bad(t, slot, "invalid tree level, have %llu expect [0, %u]", k->offset,
			      BTRFS_MAX_LEVEL - 1);
	if (size < sizeof(*ei))
		return tc_bad(t, slot, "invalid item size, have %u expect [%zu, %u)", size, sizeof(*ei),
			      t->leaf_data);
	flags = le64_to_cpu(ei->flags);
	if (le64_to_cpu(ei->generation) > t->max_gen)
		return tc_bad(t, slot, "invalid generation, have %llu expect (0, %llu]",
			      le64_to_cpu(ei->generation), t->max_gen);
	if (!one_bit(flags & (BTRFS_EXTENT_FLAG_DATA | BTRFS_EXTENT_FLAG_TREE_BLOCK)))
		return tc_bad(t, slot, "invalid extent flag, have 0x%llx expect 1 bit set in 0x%llx",
			      flags, BTRFS_EXTENT_FLAG_DATA | BTRFS_EXTENT_FLAG_TREE_BLOCK);
	tree = flags & BTRFS_EXTENT_FLAG_TREE_BLOCK;
	if (tree && k->type == BTRFS_EXTENT_ITEM_KEY && k->offset != t->fs->nodesize)
		return tc_bad(t, slot, "invalid extent length, have %llu expect %u", k->offset,
			      t->fs->nodesize);
	if (!tree) {
		if (k->type != BTRFS_EXTENT_ITEM_KEY)
			return tc_bad(t, slot, "invalid key type, have %u expect %u for data backref",
				      k->type, BTRFS_EXTENT_ITEM_KEY);
		if (!aligned(k->offset, t->fs->sectorsize))
			return tc_bad(t, slot, "invalid extent length, have %llu expect aligned to %u",
				      k->offset, t->fs->sectorsize);
		if (flags & BTRFS_BLOCK_FLAG_FULL_BACKREF)
			return tc_bad(t, slot, "invalid extent flag, data has full backref set");
	}
	p += sizeof(*ei);
	if (tree && k->type == BTRFS_EXTENT_ITEM_KEY) {
		const struct btrfs_tree_block_info *info = (const void *)p;

		if (size < sizeof(*ei) + sizeof(*info))
			return tc_bad(t, slot, "inline ref item overflows extent item");
		if (info->level >= BTRFS_MAX_LEVEL)
			return tc_bad(t, slot, "invalid tree block info level, have %u expect [0, %u]",
				      info->level, BTRFS_MAX_LEVEL - 1);
		p += sizeof(*info);
	}
	if (!check_inline_refs(t, slot, p, tb_item_ptr(t->b, slot) + size, &refs))
		return false;
	if (refs > le64_to_cpu(ei->refs))
		return tc_bad(t, slot, "invalid extent refs, have %llu expect >= inline %llu",
			      le64_to_cpu(ei->refs), refs);
	if (slot > 0 && (prev->type == BTRFS_EXTENT_ITEM_KEY || prev->type == BTRFS_METADATA_ITEM_KEY)) {
		u64 prev_end = prev->objectid + (prev->type == BTRFS_METADATA_ITEM_KEY ?
						 t->fs->nodesize : prev->offset);

		if (prev_end > k->objectid)
			return tc_bad(t, slot, "previous extent (%llu %u %llu) overlaps current extent (%llu %u %llu)",
				      prev->objectid, prev->type, prev->offset, k->objectid, k->type,
				      k->offset);
	}
	return true;
}

/* TREE_BLOCK_REF, SHARED_BLOCK_REF (empty items) and SHARED_DATA_REF (a count). */
static bool check_keyed_ref(struct tc *t, int slot, const struct btrfs_key *k)
{
	u32 expect = 0, size = tb_item_size(t->b, slot);

	if (k->type == BTRFS_SHARED_DATA_REF_KEY) {
		const struct btrfs_shared_data_ref *s = (const void *)tb_item_ptr(t->b, slot);

		expect = sizeof(*s);
		if (size == expect && !le32_to_cpu(s->count))
			return tc_bad(t, slot, "invalid shared data backref count, should have non-zero value");
	}
	if (size != expect)
		return tc_bad(t, slot, "invalid item size, have %u expect %u for key type %u", size,
			      expect, k->type);
	if (!aligned(k->objectid, t->fs->sectorsize))
		return tc_bad(t, slot, "invalid key objectid for shared block ref, have %llu expect aligned to %u",
			      k->objectid, t->fs->sectorsize);
	if (k->type != BTRFS_TREE_BLOCK_REF_KEY && !aligned(k->offset, t->fs->sectorsize))
		return tc_bad(t, slot, "invalid tree parent bytenr, have %llu expect aligned to %u",
			      k->offset, t->fs->sectorsize);
	return true;
}

static bool check_keyed_data_ref(struct tc *t, int slot, const struct btrfs_key *k)
{
	u32 size = tb_item_size(t->b, slot);
	const u8 *p = tb_item_ptr(t->b, slot);

	if (size % sizeof(struct btrfs_extent_data_ref))
		return tc_bad(t, slot, "invalid item size, have %u expect aligned to %zu for key type %u",
			      size, sizeof(struct btrfs_extent_data_ref), k->type);
	if (!aligned(k->objectid, t->fs->sectorsize))
		return tc_bad(t, slot, "invalid key objectid for shared block ref, have %llu expect aligned to %u",
			      k->objectid, t->fs->sectorsize);
	for (u32 off = 0; off < size; off += sizeof(struct btrfs_extent_data_ref))
		if (!check_data_ref_fields(t, slot, (const void *)(p + off), "extent data backref"))
			return false;
	return true;
}

/* ---- chunks, devices, block groups, free space ------------------------------------------ */

static bool check_block_group(struct tc *t, int slot, const struct btrfs_key *k)
{
	const struct btrfs_block_group_item *bg = (const void *)tb_item_ptr(t->b, slot);
	u32 size = tb_item_size(t->b, slot);
	u64 flags, type;

	if (!k->offset)
		return tc_bad(t, slot, "invalid block group size 0");
	if (size != sizeof(*bg))
		return tc_bad(t, slot, "invalid item size, have %u expect %zu", size, sizeof(*bg));
	if (le64_to_cpu(bg->chunk_objectid) != BTRFS_FIRST_CHUNK_TREE_OBJECTID)
		return tc_bad(t, slot, "invalid block group chunk objectid, have %llu expect %llu",
			      le64_to_cpu(bg->chunk_objectid), BTRFS_FIRST_CHUNK_TREE_OBJECTID);
	if (le64_to_cpu(bg->used) > k->offset)
		return tc_bad(t, slot, "invalid block group used, have %llu expect [0, %llu)",
			      le64_to_cpu(bg->used), k->offset);
	flags = le64_to_cpu(bg->flags);
	if (bits_set(flags & BTRFS_BLOCK_GROUP_PROFILE_MASK) > 1)
		return tc_bad(t, slot, "invalid profile flags, have 0x%llx (%u bits set) expect no more than 1 bit set",
			      flags & BTRFS_BLOCK_GROUP_PROFILE_MASK,
			      bits_set(flags & BTRFS_BLOCK_GROUP_PROFILE_MASK));
	type = flags & BTRFS_BLOCK_GROUP_TYPE_MASK;
	if (type != BTRFS_BLOCK_GROUP_DATA && type != BTRFS_BLOCK_GROUP_METADATA &&
	    type != BTRFS_BLOCK_GROUP_SYSTEM &&
	    type != (BTRFS_BLOCK_GROUP_METADATA | BTRFS_BLOCK_GROUP_DATA))
		return tc_bad(t, slot, "invalid type, have 0x%llx (%u bits set)", type, bits_set(type));
	return true;
}

/* Copies of the data of a profile, its parity stripes, and whether num_stripes fits it. */
static bool profile_stripes_ok(u64 profile, u16 num, u16 sub, int *ncopies, int *nparity)
{
	*nparity = 0;
	switch (profile) {
	case 0:
		*ncopies = 1;
		return num == 1;
	case BTRFS_BLOCK_GROUP_DUP:
		*ncopies = 2;
		return num == 2;
	case BTRFS_BLOCK_GROUP_RAID0:
		*ncopies = 1;
		return true;
	case BTRFS_BLOCK_GROUP_RAID1:
		*ncopies = 2;
		return num == 2;
	case BTRFS_BLOCK_GROUP_RAID1C3:
		*ncopies = 3;
		return num == 3;
	case BTRFS_BLOCK_GROUP_RAID1C4:
		*ncopies = 4;
		return num == 4;
	case BTRFS_BLOCK_GROUP_RAID10:
		*ncopies = 2;
		return sub == 2;
	case BTRFS_BLOCK_GROUP_RAID5:
		*ncopies = 1;
		*nparity = 1;
		return num >= 2;
	case BTRFS_BLOCK_GROUP_RAID6:
		*ncopies = 1;
		*nparity = 2;
		return num >= 3;
	default:
		*ncopies = 1;
		return false;
	}
}

#define CHUNK_BAD(...) (snprintf(why, whylen, __VA_ARGS__), -EUCLEAN)

int tree_check_chunk(const struct fs_info *fs, const struct btrfs_chunk *c, u32 item_size,
		     u64 logical, char *why, size_t whylen)
{
	u64 length = le64_to_cpu(c->length), stripe_len = le64_to_cpu(c->stripe_len);
	u64 type = le64_to_cpu(c->type), profile = type & BTRFS_BLOCK_GROUP_PROFILE_MASK, end;
	u16 num = le16_to_cpu(c->num_stripes), sub = le16_to_cpu(c->sub_stripes);
	u32 ss = fs->sectorsize;
	int ncopies = 1, nparity = 0;
	bool stripes_ok;

	if (item_size && item_size < offsetof(struct btrfs_chunk, stripe))
		return CHUNK_BAD("invalid chunk item size: have %u expect [%zu, %u)", item_size,
				 offsetof(struct btrfs_chunk, stripe), fs->nodesize);
	if (item_size && num &&
	    item_size != offsetof(struct btrfs_chunk, stripe) + num * sizeof(struct btrfs_stripe))
		return CHUNK_BAD("invalid chunk item size: have %u expect %zu", item_size,
				 offsetof(struct btrfs_chunk, stripe) + num * sizeof(struct btrfs_stripe));
	stripes_ok = bits_set(profile) <= 1 && profile_stripes_ok(profile, num, sub, &ncopies, &nparity);
	if (!num)
		return CHUNK_BAD("invalid chunk num_stripes, have %u", num);
	if (num < ncopies)
		return CHUNK_BAD("invalid chunk num_stripes < ncopies, have %u < %d", num, ncopies);
	if (nparity && num == nparity)
		return CHUNK_BAD("invalid chunk num_stripes == nparity, have %u == %d", num, nparity);
	if (!aligned(logical, ss))
		return CHUNK_BAD("invalid chunk logical, have %llu should aligned to %u", logical, ss);
	if (le32_to_cpu(c->sector_size) != ss)
		return CHUNK_BAD("invalid chunk sectorsize, have %u expect %u",
				 le32_to_cpu(c->sector_size), ss);
	if (!length || !aligned(length, ss))
		return CHUNK_BAD("invalid chunk length, have %llu", length);
	if (__builtin_add_overflow(logical, length, &end))
		return CHUNK_BAD("invalid chunk logical start and length, have logical start %llu length %llu",
				 logical, length);
	if (stripe_len != STRIPE_LEN)
		return CHUNK_BAD("invalid chunk stripe length: %llu", stripe_len);
	if (length >= STRIPE_LEN * 0xffffffffULL)
		return CHUNK_BAD("chunk length too large: have %llu limit %llu", length,
				 STRIPE_LEN * 0xffffffffULL);
	if (type & ~(BTRFS_BLOCK_GROUP_TYPE_MASK | BTRFS_BLOCK_GROUP_PROFILE_MASK))
		return CHUNK_BAD("unrecognized chunk type: 0x%llx",
				 type & ~(BTRFS_BLOCK_GROUP_TYPE_MASK | BTRFS_BLOCK_GROUP_PROFILE_MASK));
	if (bits_set(profile) > 1)
		return CHUNK_BAD("invalid chunk profile flag: 0x%llx, expect 0 or 1 bit set", profile);
	if (!(type & BTRFS_BLOCK_GROUP_TYPE_MASK))
		return CHUNK_BAD("missing chunk type flag, have 0x%llx one bit must be set in 0x%llx", type,
				 BTRFS_BLOCK_GROUP_TYPE_MASK);
	if ((type & BTRFS_BLOCK_GROUP_SYSTEM) &&
	    (type & (BTRFS_BLOCK_GROUP_METADATA | BTRFS_BLOCK_GROUP_DATA)))
		return CHUNK_BAD("system chunk with data or metadata type: 0x%llx", type);
	if (!(fs->incompat & BTRFS_FEATURE_INCOMPAT_MIXED_GROUPS) &&
	    (type & BTRFS_BLOCK_GROUP_METADATA) && (type & BTRFS_BLOCK_GROUP_DATA))
		return CHUNK_BAD("mixed chunk type in non-mixed mode: 0x%llx", type);
	if (!stripes_ok)
		return CHUNK_BAD("invalid num_stripes:sub_stripes %u:%u for profile %llu", num, sub,
				 profile);
	return 0;
}

static bool check_chunk_item(struct tc *t, int slot, const struct btrfs_key *k)
{
	char why[200];

	if (tree_check_chunk(t->fs, (const void *)tb_item_ptr(t->b, slot), tb_item_size(t->b, slot),
			     k->offset, why, sizeof(why)))
		return tc_bad(t, slot, "chunk_start=%llu, %s", k->offset, why);
	return true;
}

static bool check_dev_item(struct tc *t, int slot, const struct btrfs_key *k)
{
	const struct btrfs_dev_item *d = (const void *)tb_item_ptr(t->b, slot);
	u32 size = tb_item_size(t->b, slot);

	if (k->objectid != BTRFS_DEV_ITEMS_OBJECTID)
		return tc_bad(t, slot, "invalid objectid: has=%llu expect=%llu", k->objectid,
			      BTRFS_DEV_ITEMS_OBJECTID);
	if (size != sizeof(*d))
		return tc_bad(t, slot, "invalid item size: has %u expect %zu", size, sizeof(*d));
	if (le64_to_cpu(d->devid) != k->offset)
		return tc_bad(t, slot, "devid mismatch: key has=%llu item has=%llu", k->offset,
			      le64_to_cpu(d->devid));
	if (le64_to_cpu(d->bytes_used) > le64_to_cpu(d->total_bytes))
		return tc_bad(t, slot, "invalid bytes used: have %llu expect [0, %llu]",
			      le64_to_cpu(d->bytes_used), le64_to_cpu(d->total_bytes));
	return true;
}

static bool check_dev_extent(struct tc *t, int slot, const struct btrfs_key *k,
			     const struct btrfs_key *prev)
{
	const struct btrfs_dev_extent *de = (const void *)tb_item_ptr(t->b, slot);
	u32 ss = t->fs->sectorsize;

	if (tb_item_size(t->b, slot) != sizeof(*de))
		return tc_bad(t, slot, "invalid dev extent item size, have %u expect %zu (btrfs check)",
			      tb_item_size(t->b, slot), sizeof(*de));
	if (le64_to_cpu(de->chunk_tree) != BTRFS_CHUNK_TREE_OBJECTID)
		return tc_bad(t, slot, "invalid dev extent chunk tree id, has %llu expect %llu",
			      le64_to_cpu(de->chunk_tree), BTRFS_CHUNK_TREE_OBJECTID);
	if (le64_to_cpu(de->chunk_objectid) != BTRFS_FIRST_CHUNK_TREE_OBJECTID)
		return tc_bad(t, slot, "invalid dev extent chunk objectid, has %llu expect %llu",
			      le64_to_cpu(de->chunk_objectid), BTRFS_FIRST_CHUNK_TREE_OBJECTID);
	if (!aligned(k->offset, ss))
		return tc_bad(t, slot, "invalid dev extent key.offset, has %llu not aligned to %u",
			      k->offset, ss);
	if (!aligned(le64_to_cpu(de->chunk_offset), ss))
		return tc_bad(t, slot, "invalid dev extent chunk offset, has %llu not aligned to %u",
			      le64_to_cpu(de->chunk_offset), ss);
	if (!aligned(le64_to_cpu(de->length), ss))
		return tc_bad(t, slot, "invalid dev extent length, has %llu not aligned to %u",
			      le64_to_cpu(de->length), ss);
	if (slot && prev->objectid == k->objectid && prev->type == k->type &&
	    tb_item_size(t->b, slot - 1) == sizeof(*de)) {
		const struct btrfs_dev_extent *pde = (const void *)tb_item_ptr(t->b, slot - 1);

		if (prev->offset + le64_to_cpu(pde->length) > k->offset)
			return tc_bad(t, slot, "dev extent overlap, prev offset %llu len %llu current offset %llu",
				      prev->offset, le64_to_cpu(pde->length), k->offset);
	}
	return true;
}

static bool check_free_space_info(struct tc *t, int slot, const struct btrfs_key *k)
{
	const struct btrfs_free_space_info *fi = (const void *)tb_item_ptr(t->b, slot);
	u32 ss = t->fs->sectorsize;

	if (!aligned(k->objectid, ss) || !aligned(k->offset, ss))
		return tc_bad(t, slot, "free space info key (%llu %u %llu) is not aligned to %u",
			      k->objectid, k->type, k->offset, ss);
	if (tb_item_size(t->b, slot) != sizeof(*fi))
		return tc_bad(t, slot, "invalid item size for free space info, has %u expect %zu",
			      tb_item_size(t->b, slot), sizeof(*fi));
	if (le32_to_cpu(fi->flags) & ~FREE_SPACE_FLAGS_MASK)
		return tc_bad(t, slot, "unknown flags for free space info, has 0x%x valid mask 0x%x",
			      le32_to_cpu(fi->flags), FREE_SPACE_FLAGS_MASK);
	if (le32_to_cpu(fi->extent_count) > k->offset / ss)
		return tc_bad(t, slot, "suspicious extent count, has %u max valid %llu",
			      le32_to_cpu(fi->extent_count), k->offset / ss);
	return true;
}

/* Free space extents and bitmaps (btrfs check): aligned, not empty, no wrap, bitmap sized. */
static bool check_free_space_range(struct tc *t, int slot, const struct btrfs_key *k)
{
	u32 ss = t->fs->sectorsize, size = tb_item_size(t->b, slot);
	u64 end;

	if (!aligned(k->objectid, ss) || !aligned(k->offset, ss) || !k->offset ||
	    __builtin_add_overflow(k->objectid, k->offset, &end))
		return tc_bad(t, slot, "invalid free space %s (%llu %u %llu): start and length must be aligned to %u, not empty and not wrap (btrfs check)",
			      k->type == BTRFS_FREE_SPACE_EXTENT_KEY ? "extent" : "bitmap",
			      k->objectid, k->type, k->offset, ss);
	if (k->type == BTRFS_FREE_SPACE_EXTENT_KEY && size)
		return tc_bad(t, slot, "free space extent item has size %u, expect 0 (btrfs check)", size);
	if (k->type == BTRFS_FREE_SPACE_BITMAP_KEY && size != (k->offset / ss + 7) / 8)
		return tc_bad(t, slot, "free space bitmap item has size %u, expect %llu (btrfs check)",
			      size, (k->offset / ss + 7) / 8);
	return true;
}

/* Extent context item (42) of the fscrypt series: aligned offset, after its inode, at most 40 bytes. */
static bool check_extent_ctx(struct tc *t, int slot, const struct btrfs_key *k,
			     const struct btrfs_key *prev)
{
	if (!aligned(k->offset, t->fs->sectorsize))
		return tc_bad(t, slot, "unaligned file_offset for encryption context, have %llu should be aligned to %u",
			      k->offset, t->fs->sectorsize);
	if (!prev_same_ino(t, slot, k, prev))
		return false;
	if (tb_item_size(t->b, slot) > EXTENT_CTX_MAX_SIZE)
		return tc_bad(t, slot, "invalid encryption context item size, have %u max %u",
			      tb_item_size(t->b, slot), EXTENT_CTX_MAX_SIZE);
	return true;
}

/* ---- blocks ---------------------------------------------------------------------------- */

#define HEADER_KNOWN_FLAGS (BTRFS_HEADER_FLAG_WRITTEN | BTRFS_HEADER_FLAG_RELOC)

enum tree_header_problem tree_check_header(const struct fs_info *fs, const struct tree_block *b,
					   u64 tree, char *why, size_t whylen)
{
	u64 flags = tb_flags(b), owner = tb_owner(b), rev = flags >> BTRFS_BACKREF_REV_SHIFT;
	u64 want_rev = fs->incompat & BTRFS_FEATURE_INCOMPAT_MIXED_BACKREF ? BTRFS_MIXED_BACKREF_REV : 0;

	if (flags & ~HEADER_KNOWN_FLAGS & ((1ULL << BTRFS_BACKREF_REV_SHIFT) - 1)) {
		snprintf(why, whylen, "header flags 0x%llx: unknown flags", flags);
		return TREE_HEADER_FLAGS;
	}
	if (rev != want_rev) {
		snprintf(why, whylen, "header flags 0x%llx: backref revision %llu, the filesystem's is %llu",
			 flags, rev, want_rev);
		return TREE_HEADER_FLAGS;
	}
	if (tree == BTRFS_TREE_LOG_OBJECTID || tree == BTRFS_TREE_RELOC_OBJECTID)
		return TREE_HEADER_OK;
	if (tree_is_fs_tree(tree) ? !tree_is_fs_tree(owner) : owner != tree) {
		snprintf(why, whylen, "%s of tree %llu has owner %llu%s", tb_level(b) ? "node" : "leaf",
			 tree, owner, tree_is_fs_tree(tree) ? ", which is not a subvolume tree" : "");
		return TREE_HEADER_OWNER;
	}
	return TREE_HEADER_OK;
}

static bool check_item(struct tc *t, int slot, const struct btrfs_key *k, const struct btrfs_key *prev)
{
	switch (k->type) {
	case BTRFS_EXTENT_DATA_KEY:
		return check_file_extent(t, slot, k, prev);
	case BTRFS_EXTENT_CSUM_KEY:
		return check_csum(t, slot, k, prev);
	case BTRFS_DIR_ITEM_KEY:
	case BTRFS_DIR_INDEX_KEY:
	case BTRFS_XATTR_ITEM_KEY:
		return check_dir_item(t, slot, k, prev);
	case BTRFS_INODE_REF_KEY:
	case BTRFS_INODE_EXTREF_KEY:
		return check_refs(t, slot, k, prev);
	case BTRFS_ROOT_REF_KEY:
	case BTRFS_ROOT_BACKREF_KEY:
		return check_root_ref(t, slot);
	case BTRFS_BLOCK_GROUP_ITEM_KEY:
		return check_block_group(t, slot, k);
	case BTRFS_CHUNK_ITEM_KEY:
		return check_chunk_item(t, slot, k);
	case BTRFS_DEV_ITEM_KEY:
		return check_dev_item(t, slot, k);
	case BTRFS_DEV_EXTENT_KEY:
		return check_dev_extent(t, slot, k, prev);
	case BTRFS_INODE_ITEM_KEY:
		return check_inode_item(t, slot, k);
	case BTRFS_ROOT_ITEM_KEY:
		return check_root_item(t, slot, k);
	case BTRFS_EXTENT_ITEM_KEY:
	case BTRFS_METADATA_ITEM_KEY:
		return check_extent_item(t, slot, k, prev);
	case BTRFS_TREE_BLOCK_REF_KEY:
	case BTRFS_SHARED_DATA_REF_KEY:
	case BTRFS_SHARED_BLOCK_REF_KEY:
		return check_keyed_ref(t, slot, k);
	case BTRFS_EXTENT_DATA_REF_KEY:
		return check_keyed_data_ref(t, slot, k);
	case BTRFS_FREE_SPACE_INFO_KEY:
		return check_free_space_info(t, slot, k);
	case BTRFS_FREE_SPACE_EXTENT_KEY:
	case BTRFS_FREE_SPACE_BITMAP_KEY:
		return check_free_space_range(t, slot, k);
	case BTRFS_FSCRYPT_CTX_KEY:
		return check_extent_ctx(t, slot, k, prev);
	default:
		return true;
	}
}

/* Trees the kernel never accepts empty (the extent tree too, without extent-tree-v2). */
static bool never_empty(const struct fs_info *fs, u64 owner)
{
	return owner == BTRFS_ROOT_TREE_OBJECTID || owner == BTRFS_CHUNK_TREE_OBJECTID ||
	       owner == BTRFS_DEV_TREE_OBJECTID || owner == BTRFS_FS_TREE_OBJECTID ||
	       owner == BTRFS_DATA_RELOC_TREE_OBJECTID ||
	       (owner == BTRFS_EXTENT_TREE_OBJECTID &&
		!(fs->incompat & BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2));
}

static void check_leaf(struct tc *t)
{
	struct btrfs_key prev = { 0, 0, 0 }, k;
	u32 n = tb_nritems(t->b);

	if (!n) {
		if (tb_flags(t->b) & BTRFS_HEADER_FLAG_RELOC)
			return;
		if (never_empty(t->fs, tb_owner(t->b)))
			tc_bad(t, -1, "invalid root, root %llu must never be empty", tb_owner(t->b));
		else if (!tb_owner(t->b))
			tc_bad(t, -1, "invalid owner, root 0 is not defined");
		return;
	}
	for (u32 slot = 0; slot < n; slot++) {
		u64 end = (u64)tb_item_offset(t->b, slot) + tb_item_size(t->b, slot);
		u32 expect = slot ? tb_item_offset(t->b, slot - 1) : t->leaf_data;

		tb_item_key(t->b, slot, &k);
		if (slot && btrfs_comp_keys(&prev, &k) >= 0) {
			tc_bad(t, slot, "bad key order, prev (%llu %u %llu) current (%llu %u %llu)",
			       prev.objectid, prev.type, prev.offset, k.objectid, k.type, k.offset);
			return;
		}
		if (end != expect || end > t->leaf_data ||
		    tb_item_offset(t->b, slot) < (slot + 1) * sizeof(struct btrfs_item)) {
			tc_bad(t, slot, "unexpected item end, have %llu expect %u", end, expect);
			return;
		}
		check_item(t, slot, &k, &prev);
		prev = k;
	}
}

static void check_node(struct tc *t)
{
	u32 n = tb_nritems(t->b);
	u32 max = (t->fs->nodesize - sizeof(struct btrfs_header)) / sizeof(struct btrfs_key_ptr);
	struct btrfs_key k, next;

	if (tb_level(t->b) >= BTRFS_MAX_LEVEL) {
		tc_bad(t, -1, "invalid level for node, have %d expect [1, %d]", tb_level(t->b),
		       BTRFS_MAX_LEVEL - 1);
		return;
	}
	if (!n || n > max) {
		tc_bad(t, -1, "nritems too %s, have %u expect range [1,%u]", n ? "large" : "small", n,
		       max);
		return;
	}
	for (u32 slot = 0; slot < n; slot++) {
		u64 ptr = tb_node_blockptr(t->b, slot);

		if (!ptr || !aligned(ptr, t->fs->sectorsize)) {
			tc_bad(t, slot, ptr ? "unaligned pointer, have %llu should be aligned to %u" :
					      "invalid NULL node pointer", ptr, t->fs->sectorsize);
			return;
		}
		if (slot + 1 < n) {
			tb_node_key(t->b, slot, &k);
			tb_node_key(t->b, slot + 1, &next);
			if (btrfs_comp_keys(&k, &next) >= 0) {
				tc_bad(t, slot, "bad key order, current (%llu %u %llu) next (%llu %u %llu)",
				       k.objectid, k.type, k.offset, next.objectid, next.type,
				       next.offset);
				return;
			}
		}
	}
}

unsigned int tree_check_block(const struct fs_info *fs, const struct tree_block *b,
			      const struct tree_check_report *r)
{
	struct tc t = {
		.fs = fs, .b = b, .r = r,
		.max_gen = le64_to_cpu(fs->super.generation) + 1,
		.leaf_data = fs->nodesize - sizeof(struct btrfs_header),
	};

	if (!(tb_flags(b) & BTRFS_HEADER_FLAG_WRITTEN))
		tc_bad(&t, -1, "invalid flag for %s, WRITTEN not set", tb_level(b) ? "node" : "leaf");
	if (tb_level(b))
		check_node(&t);
	else
		check_leaf(&t);
	return t.bad;
}

const char *tree_check_super_flags(u64 flags, bool writing)
{
	const u64 changing = BTRFS_SUPER_FLAG_CHANGING_FSID | BTRFS_SUPER_FLAG_CHANGING_FSID_V2 |
			     BTRFS_SUPER_FLAG_CHANGING_BG_TREE | BTRFS_SUPER_FLAG_CHANGING_DATA_CSUM |
			     BTRFS_SUPER_FLAG_CHANGING_META_CSUM;
	const u64 known = BTRFS_HEADER_FLAG_WRITTEN | BTRFS_HEADER_FLAG_RELOC |
			  BTRFS_SUPER_FLAG_ERROR | BTRFS_SUPER_FLAG_SEEDING | BTRFS_SUPER_FLAG_METADUMP |
			  BTRFS_SUPER_FLAG_METADUMP_V2 | changing;

	if (flags & ~known)
		return "unknown superblock flags";
	if (flags & changing)
		return "an interrupted change of the filesystem (btrfstune: fsid, block group tree or checksums) is in progress";
	if (writing && (flags & BTRFS_SUPER_FLAG_SEEDING))
		return "the filesystem is a seed device, which is read-only";
	return NULL;
}
