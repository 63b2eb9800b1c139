// SPDX-License-Identifier: GPL-2.0
/*
 * Inodes, names, file extents and the encryption rules of `check`.
 *
 * Items of one inode are contiguous and come in key order (INODE_ITEM,
 * refs, xattrs, item 41, items 42, dir entries, EXTENT_DATA), so each inode
 * is checked as a stream: its state builds up item by item and is judged
 * when the next inode starts.  What links inodes to each other (directory
 * entries against inode refs, link counts, encrypted directories holding
 * plain inodes) is kept per tree and matched when the tree ends.
 *
 * Rules mirror btrfs-progs check's original mode where it has one (nbytes
 * sums num_bytes of REG/PREALLOC items with a disk extent and ram_bytes of
 * inline ones; directory size sums name lengths of DIR_ITEM and DIR_INDEX;
 * the link count equals the number of DIR_ITEMs naming the inode; orphans
 * with nlink 0 skip the size checks) and Documentation/format.rst section 11 for
 * encryption.  C14: dir and xattr `transid` are never looked at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/escape.h"
#include "common/fault.h"
#include "check/check.h"
#include "crypto/csum.h"
#include "kernel-shared/hash.h"
#include "common/messages.h"
#include "common/utils.h"
#include "data/names.h"
#include "kernel-shared/disk-io.h"

#define MAX_NAME 255

struct ctx42 {
	u64 offset;
	u32 size;
	bool matched;
	u8 data[FSCRYPT_MAX_EXTENT_CONTEXT_SIZE];
};

struct inode_cur {
	u64 ino;
	bool active, have_item, any_item;
	u32 mode, nlink;
	u64 size, nbytes, flags, generation, transid;
	u64 found_size;
	bool found_extent, found_dir_entry;
	u64 extent_start, extent_end, first_gap;
	bool reported_overlap;
	/* encryption */
	bool has_ctx41, ctx41_valid;
	u32 ctx41_size;
	u8 ctx41[FSCRYPT_CONTEXT_V2_SIZE];
	struct ctx42 *c42;
	size_t n42, cap42;
	bool symlink_inline_seen;
};

struct ino_sum {
	u64 ino;
	u32 mode, nlink;
	bool have_item, encrypted;
	u16 policy;		/* 1 + index into fs_tree_state.policies; 0: no valid context */
	u32 links;		/* DIR_ITEMs naming it */
};

/* The policy part of an inode context: all but the nonce (version, modes, flags, key id). */
#define POLICY_BYTES offsetof(struct fscrypt_context_v2, nonce)
#define KEY_ID_OFFSET offsetof(struct fscrypt_context_v2, master_key_identifier)

enum { SRC_REF = 0, SRC_ITEM = 1, SRC_INDEX = 2 };

/* A record of fs_tree_state.ents; its name_len bytes of name follow it in the store. */
struct dent {
	u64 dir;
	u64 child;
	u64 index;		/* DIR_INDEX key offset / inode ref index */
	u32 name_hash;		/* compared before the bytes: sorting touches few names */
	u16 name_len;
	u8 src;
	u8 loc_type;
	u8 ftype;
	bool dir_encrypted;
};

struct fs_tree_state {
	const struct root_desc *root;
	struct inode_cur cur;
	struct vec inodes;	/* struct ino_sum */
	struct spill ents;	/* struct dent and its name, by (dir, name, source, child) */
	struct vec orphans;	/* u64 */
	u8 (*policies)[POLICY_BYTES];	/* each distinct policy of the tree once (few) */
	size_t nr_policies, cap_policies;
	bool no_holes;
	bool root_ref_seen;	/* the root directory's INODE_REF to itself */
};

/*
 * The order of the entries for matching them: by directory and name (hash
 * and length first, so few names are compared byte by byte), then source
 * and child.  The three sources of one name in one directory (INODE_REF,
 * DIR_ITEM, DIR_INDEX) come out of the store together.  An order for
 * matching, not for people.
 */
static int cmp_dent(const void *x, const void *y)
{
	const struct dent *a = x, *b = y;
	int r;

	if ((r = cmp_u64(a->dir, b->dir)))
		return r;
	if (a->name_hash != b->name_hash)
		return a->name_hash < b->name_hash ? -1 : 1;
	if (a->name_len != b->name_len)
		return a->name_len < b->name_len ? -1 : 1;
	if ((r = memcmp(a + 1, b + 1, a->name_len)))
		return r;
	if (a->src != b->src)
		return a->src < b->src ? -1 : 1;
	return cmp_u64(a->child, b->child);
}

/* An entry (its fields but the name's) and its name, into the tree's store. */
static void push_dent(struct fs_tree_state *st, const struct dent *d, const u8 *name, u16 len)
{
	struct {
		struct dent d;
		u8 name[MAX_NAME];
	} rec;

	rec.d = *d;
	rec.d.name_len = len;
	rec.d.name_hash = btrfs_name_hash(name, len);
	memcpy(rec.name, name, len);
	spill_add_or_die(&st->ents, &rec, sizeof(rec.d) + len);
}

static bool valid_mode_pair(u8 contents, u8 filenames)
{
	return (contents == 1 && (filenames == 4 || filenames == 10)) ||
	       (contents == 5 && filenames == 6) || (contents == 7 && filenames == 8) ||
	       (contents == 9 && filenames == 9);
}

/* Documentation/format.rst 3.2: why an inode context is invalid, or NULL. */
static const char *ctx41_problem(const u8 *p, u32 size)
{
	const struct fscrypt_context_v2 *x = (const void *)p;

	if (size != FSCRYPT_CONTEXT_V2_SIZE)
		return size < FSCRYPT_CONTEXT_V2_SIZE ? "item shorter than 40 bytes" :
		       "item longer than 40 bytes";
	if (x->version != FSCRYPT_CONTEXT_V2)
		return "version is not 2";
	if (x->flags & ~0x03)
		return "flags other than filename padding (DIRECT_KEY / IV_INO_LBLK are not allowed)";
	if (x->log2_data_unit_size)
		return "log2_data_unit_size is not 0";
	if (x->reserved[0] || x->reserved[1] || x->reserved[2])
		return "reserved bytes are not 0";
	if (!valid_mode_pair(x->contents_mode, x->filenames_mode))
		return "not an allowed (contents, filenames) mode pair";
	return NULL;
}

static bool cur_encrypted(const struct inode_cur *cur)
{
	return cur->have_item && (cur->flags & BTRFS_INODE_ENCRYPT);
}

static void note_encrypted(struct check_ctx *c, const struct fs_tree_state *st, u64 ino)
{
	if (c->saw_encrypted_items)
		return;
	c->saw_encrypted_items = true;
	c->first_encrypted_root = st->root->objectid;
	c->first_encrypted_ino = ino;
}

static void push_nonce(struct check_ctx *c, const u8 *nonce, u64 root, u64 ino, u64 offset,
		       u64 bytenr, bool inode)
{
	struct nonce_rec n = { .root = root, .ino = ino, .offset = offset, .bytenr = bytenr,
			       .inode = inode };

	memcpy(n.nonce, nonce, 16);
	spill_add_or_die(&c->nonces, &n, sizeof(n));
}

/* ---- per inode ----------------------------------------------------------------- */

/* The number (from 1) of a policy among the tree's; they are few, a scan is enough. */
static u16 intern_policy(struct fs_tree_state *st, const u8 *ctx)
{
	for (size_t i = 0; i < st->nr_policies; i++)
		if (!memcmp(st->policies[i], ctx, POLICY_BYTES))
			return (u16)(i + 1);
	if (st->nr_policies == 0xfffe)
		return 0xffff;	/* more policies than anyone uses: not compared */
	st->policies = array_grow(st->policies, &st->cap_policies, st->nr_policies,
				  sizeof(*st->policies));
	if (!st->policies)
		die_oom();
	memcpy(st->policies[st->nr_policies], ctx, POLICY_BYTES);
	return (u16)++st->nr_policies;
}

/* --require-encryption: every file, directory and symlink of the subvolumes it names. */
static void check_required_encryption(struct check_ctx *c, u64 root, const struct inode_cur *cur)
{
	bool covered = !c->nr_require_roots && !c->nr_require_paths;
	char what[48];

	if (!c->require_encryption || (cur->flags & BTRFS_INODE_ENCRYPT) ||
	    cur->ino < BTRFS_FIRST_FREE_OBJECTID ||
	    !(S_ISREG(cur->mode) || S_ISDIR(cur->mode) || S_ISLNK(cur->mode)))
		return;
	if (root != BTRFS_FS_TREE_OBJECTID &&
	    (root < BTRFS_FIRST_FREE_OBJECTID || root > BTRFS_LAST_FREE_OBJECTID))
		return;		/* not a subvolume: the data relocation tree */
	for (size_t i = 0; i < c->nr_require_roots && !covered; i++)
		covered = c->require_roots[i] == root;
	if (!covered)
		return;
	snprintf(what, sizeof(what), "subvolume %llu", (unsigned long long)root);
	check_report(c, PR_NOT_ENCRYPTED, LOC_INODE(root, cur->ino), cur->mode, what);
}

static void finish_inode(struct check_ctx *c, struct fs_tree_state *st)
{
	struct inode_cur *cur = &st->cur;
	u64 root = st->root->objectid;
	struct ino_sum *s;

	if (!cur->active)
		return;
	cur->active = false;
	if (!cur->have_item) {
		if (cur->any_item)
			check_report(c, PR_INODE_ITEM_MISSING, LOC_INODE(root, cur->ino), "items");
		goto out;
	}
	s = vec_push_or_die(&st->inodes);
	s->ino = cur->ino;
	s->mode = cur->mode;
	s->nlink = cur->nlink;
	s->have_item = true;
	s->encrypted = cur->flags & BTRFS_INODE_ENCRYPT;
	s->policy = cur->has_ctx41 && cur->ctx41_valid ? intern_policy(st, cur->ctx41) : 0;
	c->cnt.inodes++;

	if (S_ISDIR(cur->mode)) {
		c->cnt.dirs++;
		if (cur->nlink > 0 && cur->found_size != cur->size)
			check_report(c, PR_INODE_SIZE, LOC_INODE(root, cur->ino), "directory",
				     cur->size, cur->found_size);
		if (cur->found_extent)
			check_report(c, PR_FILE_EXTENT_BAD, LOC_INODE(root, cur->ino),
				     "a directory has file extent items");
	} else if (S_ISREG(cur->mode) || S_ISLNK(cur->mode)) {
		if (cur->found_dir_entry)
			check_report(c, PR_DIR_ITEM_BAD, LOC_INODE(root, cur->ino), "directory",
				     "entries inside a file or symlink");
		if (cur->nlink > 0 && cur->found_size != cur->nbytes)
			check_report(c, PR_INODE_NBYTES, LOC_INODE(root, cur->ino), cur->nbytes,
				     cur->found_size);
		if (cur->nlink > 0 && !st->no_holes && cur->size) {
			u64 gap_start = NOLOC, gap_end = 0;

			if (!cur->found_extent || cur->extent_start != 0) {
				gap_start = 0;
				gap_end = cur->found_extent ? cur->extent_start : cur->size;
			} else if (cur->first_gap != NOLOC && cur->first_gap < cur->size) {
				gap_start = cur->first_gap;
				gap_end = cur->size;
			} else if (cur->extent_end < cur->size) {
				gap_start = cur->extent_end;
				gap_end = cur->size;
			}
			if (gap_start != NOLOC)
				check_report(c, PR_FILE_EXTENT_GAP, LOC_INODE(root, cur->ino),
					     gap_start, gap_end);
		}
	} else if (cur->nlink > 0 && cur->found_size != cur->nbytes) {
		/* A device, fifo or socket holds no data (btrfs check lowmem). */
		check_report(c, PR_INODE_NBYTES, LOC_INODE(root, cur->ino), cur->nbytes,
			     cur->found_size);
	}

	/* C2 */
	if ((cur->flags & BTRFS_INODE_ENCRYPT) && !cur->has_ctx41)
		check_report(c, PR_INODE_CTX_MISSING, LOC_INODE(root, cur->ino));
	if (!(cur->flags & BTRFS_INODE_ENCRYPT) && cur->has_ctx41)
		check_report(c, PR_INODE_CTX_ORPHAN, LOC_INODE(root, cur->ino));
	if (cur->has_ctx41 && !S_ISREG(cur->mode) && !S_ISDIR(cur->mode) && !S_ISLNK(cur->mode))
		check_report(c, PR_INODE_CTX_WRONG_TYPE, LOC_INODE(root, cur->ino), cur->mode);
	if (cur->flags & BTRFS_INODE_ENCRYPT)
		c->cnt.encrypted_inodes++;
	check_required_encryption(c, root, cur);
	if (c->key && cur->has_ctx41 && cur->ctx41_valid)
		check_key_collect(c, KR_CTX, root, cur->ino, 0, 0, cur->mode, cur->ctx41,
				  FSCRYPT_CONTEXT_V2_SIZE);
	if (cur_encrypted(cur) && S_ISLNK(cur->mode) && !cur->symlink_inline_seen && cur->size)
		check_report(c, PR_SYMLINK_DATA_BAD, LOC_INODE(root, cur->ino),
			     "no inline extent holds the target");
out:
	/* C6: context items that no encrypted extent claimed. */
	for (size_t i = 0; i < cur->n42; i++)
		if (!cur->c42[i].matched)
			check_report(c, PR_EXTENT_CTX_STALE,
				     LOC(root, cur->ino, cur->c42[i].offset, NOLOC));
	cur->n42 = 0;
}

static void start_inode(struct fs_tree_state *st, u64 ino)
{
	struct inode_cur *cur = &st->cur;
	struct ctx42 *keep = cur->c42;
	size_t cap = cur->cap42;

	memset(cur, 0, sizeof(*cur));
	cur->c42 = keep;
	cur->cap42 = cap;
	cur->ino = ino;
	cur->active = true;
	cur->extent_start = NOLOC;
	cur->first_gap = NOLOC;
}

static void inode_item(struct check_ctx *c, struct fs_tree_state *st,
		       const struct tree_block *leaf, u32 slot)
{
	struct inode_cur *cur = &st->cur;
	const struct btrfs_inode_item *ii = (const void *)tb_item_ptr(leaf, slot);
	u64 root = st->root->objectid, gen_limit = c->fs->generation + 1;
	u32 fmt;

	if (tb_item_size(leaf, slot) < sizeof(*ii)) {
		check_report(c, PR_INODE_ITEM_BAD, LOC_INODE(root, cur->ino), "item too small");
		return;
	}
	if (cur->have_item) {
		check_report(c, PR_INODE_ITEM_BAD, LOC_INODE(root, cur->ino), "duplicate inode item");
		return;
	}
	cur->have_item = true;
	cur->mode = le32_to_cpu(ii->mode);
	cur->nlink = le32_to_cpu(ii->nlink);
	cur->size = le64_to_cpu(ii->size);
	cur->nbytes = le64_to_cpu(ii->nbytes);
	cur->flags = le64_to_cpu(ii->flags);
	cur->generation = le64_to_cpu(ii->generation);
	cur->transid = le64_to_cpu(ii->transid);
	fmt = cur->mode & S_IFMT;
	if (fmt != S_IFREG && fmt != S_IFDIR && fmt != S_IFLNK && fmt != S_IFCHR &&
	    fmt != S_IFBLK && fmt != S_IFIFO && fmt != S_IFSOCK)
		check_report(c, PR_INODE_MODE, LOC_INODE(root, cur->ino), cur->mode);
	if (cur->generation > gen_limit || cur->transid > gen_limit)
		check_report(c, PR_INODE_GENERATION, LOC_INODE(root, cur->ino), cur->generation,
			     cur->transid, c->fs->generation);
	if (S_ISLNK(cur->mode) && (cur->flags & (BTRFS_INODE_IMMUTABLE | BTRFS_INODE_APPEND)))
		check_report(c, PR_INODE_FLAGS, LOC_INODE(root, cur->ino),
			     (unsigned long long)cur->flags, "immutable or append-only symlink");
	if (S_ISDIR(cur->mode) && cur->nlink >= 2)
		check_report(c, PR_INODE_NLINK, LOC_INODE(root, cur->ino), cur->nlink, 1U);
	if (cur->flags & BTRFS_INODE_ENCRYPT)
		note_encrypted(c, st, cur->ino);
}

static void inode_refs(struct check_ctx *c, struct fs_tree_state *st,
		       const struct tree_block *leaf, u32 slot, const struct btrfs_key *k)
{
	const u8 *p = tb_item_ptr(leaf, slot);
	u32 size = tb_item_size(leaf, slot), pos = 0;
	bool ext = k->type == BTRFS_INODE_EXTREF_KEY;
	u32 hdr = ext ? sizeof(struct btrfs_inode_extref) : sizeof(struct btrfs_inode_ref);

	while (pos < size) {
		u64 parent, index;
		u16 len;

		if (pos + hdr > size)
			goto bad;
		if (ext) {
			const struct btrfs_inode_extref *r = (const void *)(p + pos);

			parent = le64_to_cpu(r->parent_objectid);
			index = le64_to_cpu(r->index);
			len = le16_to_cpu(r->name_len);
		} else {
			const struct btrfs_inode_ref *r = (const void *)(p + pos);

			parent = k->offset;
			index = le64_to_cpu(r->index);
			len = le16_to_cpu(r->name_len);
		}
		if (pos + hdr + len > size || len == 0 || len > MAX_NAME)
			goto bad;
		push_dent(st, &(struct dent){ .dir = parent, .child = k->objectid, .index = index,
					      .src = SRC_REF },
			  p + pos + hdr, len);
		pos += hdr + len;
	}
	return;
bad:
	check_report(c, PR_DIR_ITEM_BAD, LOC_INODE(st->root->objectid, k->objectid),
		     ext ? "inode extref" : "inode ref", "name overruns the item or has a bad length");
}

/* The name of one directory entry: its hash (DIR_ITEM), C9 and C10. */
static void check_entry_name(struct check_ctx *c, u64 root, const struct btrfs_key *k,
			     const char *what, const u8 *name, u16 nlen, u8 type, bool enc_dir,
			     unsigned int pad)
{
	char nb[4 * MAX_NAME + 8];

	if (k->type == BTRFS_DIR_ITEM_KEY) {
		u64 h = btrfs_name_hash(name, nlen);

		if (h != k->offset) {
			if (enc_dir)
				check_report(c, PR_ENCRYPTED_NAME_HASH,
					     LOC(root, k->objectid, k->offset, NOLOC), h, k->offset);
			else
				check_report(c, PR_DIR_ITEM_HASH,
					     LOC(root, k->objectid, k->offset, NOLOC),
					     name_text(name, nlen, nb, sizeof(nb)), h, k->offset);
		}
	}
	/* C9: the type bit follows the directory's state. */
	if (enc_dir != !!(type & BTRFS_FT_ENCRYPTED))
		check_report(c, PR_DIR_ENTRY_FT_ENCRYPTED, LOC(root, k->objectid, k->offset, NOLOC),
			     what, check_shown_name(c, root, k->objectid, name, nlen, nb, sizeof(nb)),
			     enc_dir ? "n encrypted" : " plain",
			     enc_dir ? "lacks" : "has", type);
	/* C10 */
	if (enc_dir) {
		const char *why = NULL;

		if (nlen < 16)
			why = "shorter than 16";
		else if (nlen < MAX_NAME && nlen % pad)
			why = "not a multiple of the policy padding";
		if (why)
			check_report(c, PR_ENCRYPTED_NAME_LENGTH,
				     LOC(root, k->objectid, k->offset, NOLOC), nlen, what, why);
	}
}

static void dir_entries(struct check_ctx *c, struct fs_tree_state *st,
			const struct tree_block *leaf, u32 slot, const struct btrfs_key *k)
{
	struct inode_cur *cur = &st->cur;
	const u8 *p = tb_item_ptr(leaf, slot);
	u32 size = tb_item_size(leaf, slot), pos = 0;
	u64 root = st->root->objectid;
	bool enc_dir = cur_encrypted(cur);
	const char *what = k->type == BTRFS_DIR_ITEM_KEY ? "DIR_ITEM" :
			   k->type == BTRFS_DIR_INDEX_KEY ? "DIR_INDEX" : "XATTR";
	unsigned int pad = 4;

	if (enc_dir && cur->ctx41_valid)
		pad = 4U << (((const struct fscrypt_context_v2 *)cur->ctx41)->flags & 3);
	while (pos < size) {
		const struct btrfs_dir_item *di = (const void *)(p + pos);
		u16 nlen, dlen;
		const u8 *name;
		struct btrfs_key loc;
		u8 type;

		if (pos + sizeof(*di) > size)
			goto bad;
		nlen = le16_to_cpu(di->name_len);
		dlen = le16_to_cpu(di->data_len);
		if (pos + sizeof(*di) + nlen + dlen > size)
			goto bad;
		name = p + pos + sizeof(*di);
		pos += sizeof(*di) + nlen + dlen;
		if (k->type == BTRFS_XATTR_ITEM_KEY)
			continue;
		type = di->type;
		btrfs_disk_key_to_cpu(&loc, &di->location);
		if (nlen == 0 || nlen > MAX_NAME) {
			check_report(c, PR_DIR_ITEM_BAD, LOC(root, k->objectid, k->offset, NOLOC), what,
				     "name length out of range");
			continue;
		}
		if ((type & ~BTRFS_FT_ENCRYPTED) == BTRFS_FT_UNKNOWN ||
		    (type & ~BTRFS_FT_ENCRYPTED) >= BTRFS_FT_XATTR ||
		    (loc.type != BTRFS_INODE_ITEM_KEY && loc.type != BTRFS_ROOT_ITEM_KEY)) {
			check_report(c, PR_DIR_ITEM_BAD, LOC(root, k->objectid, k->offset, NOLOC), what,
				     "invalid file type or location key");
			continue;
		}
		if (dlen)
			check_report(c, PR_DIR_ITEM_BAD, LOC(root, k->objectid, k->offset, NOLOC), what,
				     "directory entry with xattr data");
		cur->found_size += nlen;
		cur->found_dir_entry = true;
		check_entry_name(c, root, k, what, name, nlen, type, enc_dir, pad);
		if (enc_dir && c->key)
			check_key_collect(c, KR_NAME, root, k->objectid, k->offset, k->type, 0,
					  name, nlen);
		push_dent(st, &(struct dent){ .dir = k->objectid, .child = loc.objectid,
					      .index = k->offset,
					      .src = k->type == BTRFS_DIR_ITEM_KEY ? SRC_ITEM : SRC_INDEX,
					      .loc_type = loc.type, .ftype = type, .dir_encrypted = enc_dir },
			  name, nlen);
		if (k->type == BTRFS_DIR_INDEX_KEY)
			break;	/* one entry per index */
	}
	return;
bad:
	check_report(c, PR_DIR_ITEM_BAD, LOC(root, k->objectid, k->offset, NOLOC), what,
		     "entry overruns the item");
}

static void inode_ctx(struct check_ctx *c, struct fs_tree_state *st,
		      const struct tree_block *leaf, u32 slot, bool first_visit)
{
	struct inode_cur *cur = &st->cur;
	u32 size = tb_item_size(leaf, slot);
	const u8 *p = tb_item_ptr(leaf, slot);
	const char *why;

	note_encrypted(c, st, cur->ino);
	cur->has_ctx41 = true;
	cur->ctx41_size = size;
	memset(cur->ctx41, 0, sizeof(cur->ctx41));
	memcpy(cur->ctx41, p, size < sizeof(cur->ctx41) ? size : sizeof(cur->ctx41));
	why = ctx41_problem(p, size);
	cur->ctx41_valid = !why;
	if (why)
		check_report(c, PR_INODE_CTX_INVALID, LOC_INODE(st->root->objectid, cur->ino), why);
	if (first_visit && size >= FSCRYPT_CONTEXT_V2_SIZE)
		push_nonce(c, p + 24, st->root->objectid, cur->ino, NOLOC, NOLOC, true);
}

static void extent_ctx(struct check_ctx *c, struct fs_tree_state *st,
		       const struct tree_block *leaf, u32 slot, const struct btrfs_key *k)
{
	struct inode_cur *cur = &st->cur;
	u32 size = tb_item_size(leaf, slot);
	const u8 *p = tb_item_ptr(leaf, slot);
	struct check_loc loc = LOC(st->root->objectid, cur->ino, k->offset, NOLOC);
	struct ctx42 *x;

	note_encrypted(c, st, cur->ino);
	x = array_grow(cur->c42, &cur->cap42, cur->n42, sizeof(*cur->c42));
	if (!x) {
		die_oom();
	}
	cur->c42 = x;
	x = &cur->c42[cur->n42++];
	memset(x, 0, sizeof(*x));
	x->offset = k->offset;
	x->size = size;
	memcpy(x->data, p, size < sizeof(x->data) ? size : sizeof(x->data));

	if (k->offset % c->fs->sectorsize) {
		check_report(c, PR_EXTENT_CTX_INVALID, loc, "key offset not sectorsize aligned");
		return;
	}
	if (size < FSCRYPT_EXTENT_CONTEXT_SIZE || size > FSCRYPT_MAX_EXTENT_CONTEXT_SIZE) {
		check_report(c, PR_EXTENT_CTX_INVALID, loc, size < FSCRYPT_EXTENT_CONTEXT_SIZE ?
			     "item shorter than 34 bytes" : "item longer than 40 bytes");
		return;
	}
	if (size != FSCRYPT_EXTENT_CONTEXT_SIZE)
		check_report(c, PR_EXTENT_CTX_SIZE, loc, size);
	if (p[0] != FSCRYPT_EXTENT_CONTEXT_V1) {
		check_report(c, PR_EXTENT_CTX_INVALID, loc, "version is not 1");
		return;
	}
	if (cur->has_ctx41 && cur->ctx41_size >= FSCRYPT_CONTEXT_V2_SIZE) {
		const struct fscrypt_context_v2 *ic = (const void *)cur->ctx41;

		if (memcmp(p + 2, ic->master_key_identifier, 16)) {
			char a[33], b[33];

			for (int i = 0; i < 16; i++) {
				snprintf(a + 2 * i, 3, "%02x", p[2 + i]);
				snprintf(b + 2 * i, 3, "%02x", ic->master_key_identifier[i]);
			}
			check_report(c, PR_EXTENT_CTX_KEY_MISMATCH, loc, a, b);
		}
		if (p[1] != ic->contents_mode)
			check_report(c, PR_EXTENT_CTX_MODE_MISMATCH, loc, p[1],
				     ic->contents_mode);
	}
}

static struct ctx42 *find_ctx42(struct inode_cur *cur, u64 offset)
{
	size_t lo = 0, hi = cur->n42;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cur->c42[mid].offset == offset)
			return &cur->c42[mid];
		if (cur->c42[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void symlink_data(struct check_ctx *c, struct fs_tree_state *st, const u8 *data,
			 u32 len, u64 ram)
{
	struct inode_cur *cur = &st->cur;
	struct check_loc loc = LOC(st->root->objectid, cur->ino, 0, NOLOC);
	u32 n;

	cur->symlink_inline_seen = true;
	if (c->key)
		check_key_collect(c, KR_SYMLINK, st->root->objectid, cur->ino, 0, 0, 0, data, len);
	if (len < 2) {
		check_report(c, PR_SYMLINK_DATA_BAD, loc, "shorter than its 2-byte length field");
		return;
	}
	n = data[0] | (u32)data[1] << 8;
	if (2 + n != len)
		check_report(c, PR_SYMLINK_DATA_BAD, loc, "length field disagrees with the item size");
	else if (2 + n != ram)
		check_report(c, PR_SYMLINK_DATA_BAD, loc, "length field disagrees with ram_bytes");
	else if (n < 16)
		check_report(c, PR_SYMLINK_DATA_BAD, loc, "ciphertext shorter than 16 bytes");
	if (2 + n > c->fs->sectorsize - 1)
		check_report(c, PR_SYMLINK_DATA_LONG, loc, 2 + n, c->fs->sectorsize - 1);
}

/* Encryption rules C3, C4, C5 for one file extent. */
static void extent_encryption(struct check_ctx *c, struct fs_tree_state *st,
			      const struct btrfs_key *k, const struct btrfs_file_extent_item *fi,
			      u32 size, struct ctx42 **ctx_out)
{
	struct inode_cur *cur = &st->cur;
	struct check_loc loc = LOC(st->root->objectid, cur->ino, k->offset, NOLOC);
	bool enc_inode = cur_encrypted(cur), reg = S_ISREG(cur->mode), lnk = S_ISLNK(cur->mode);
	u8 type = fi->type, enc = fi->encryption;
	bool hole = type != BTRFS_FILE_EXTENT_INLINE && !le64_to_cpu(fi->disk_bytenr);
	struct ctx42 *x;

	*ctx_out = NULL;
	if (enc >= 2) {
		check_report(c, PR_EXTENT_ENCRYPTION_INVALID, loc, enc);
		return;
	}
	if (enc_inode && reg && type == BTRFS_FILE_EXTENT_INLINE)
		check_report(c, PR_INLINE_IN_ENCRYPTED_FILE, loc,
			     (unsigned long long)le64_to_cpu(fi->ram_bytes));
	if (enc == 1) {
		note_encrypted(c, st, cur->ino);
		if (type == BTRFS_FILE_EXTENT_INLINE) {
			if (!(enc_inode && lnk))
				check_report(c, PR_EXTENT_ENCRYPTION_UNEXPECTED, loc,
					     "an inline extent that is not an encrypted symlink's");
			return;
		}
		if (hole)
			check_report(c, PR_EXTENT_ENCRYPTION_UNEXPECTED, loc, "a hole");
		else if (!enc_inode || !reg)
			check_report(c, PR_EXTENT_ENCRYPTION_UNEXPECTED, loc,
				     !enc_inode ? "an extent of an unencrypted inode" :
				     "an extent of a non-regular file");
		if (size != sizeof(*fi)) {
			check_report(c, PR_LEGACY_EXTENT_CTX, loc, size);
			return;
		}
		c->cnt.encrypted_extents++;
		x = find_ctx42(cur, k->offset);
		if (!x) {
			check_report(c, PR_EXTENT_CTX_MISSING, loc,
				     (unsigned long long)le64_to_cpu(fi->disk_bytenr));
			return;
		}
		x->matched = true;
		*ctx_out = x;
		return;
	}
	if (enc_inode && reg && !hole && type != BTRFS_FILE_EXTENT_INLINE)
		check_report(c, PR_EXTENT_PLAINTEXT, loc,
			     type == BTRFS_FILE_EXTENT_PREALLOC ? "prealloc" : "regular");
}

/* A file extent with a disk extent, for the checks after the walk (file_exts). */
static void record_file_extent(struct check_ctx *c, struct fs_tree_state *st,
			       const struct btrfs_key *k, const struct btrfs_file_extent_item *fi,
			       u64 num, bool nodatasum, const struct ctx42 *x)
{
	u64 root = st->root->objectid;
	struct file_extent_rec r = {
		.disk_bytenr = le64_to_cpu(fi->disk_bytenr),
		.disk_num_bytes = le64_to_cpu(fi->disk_num_bytes),
		.root = root,
		.ino = st->cur.ino,
		.file_offset = k->offset,
		.extent_offset = le64_to_cpu(fi->offset),
		.num_bytes = num,
		.type = fi->type,
		.compression = fi->compression,
		.encryption = fi->encryption,
		.nodatasum = nodatasum || root == BTRFS_DATA_RELOC_TREE_OBJECTID,
	};

	if (x && x->size >= FSCRYPT_EXTENT_CONTEXT_SIZE) {
		r.has_ctx = true;
		memcpy(r.ctx, x->data, FSCRYPT_EXTENT_CONTEXT_SIZE);
		push_nonce(c, x->data + 18, root, st->cur.ino, k->offset, r.disk_bytenr, false);
	}
	spill_add_or_die(&c->file_exts, &r, sizeof(r));
}

static void file_extent(struct check_ctx *c, struct fs_tree_state *st,
			const struct tree_block *leaf, u32 slot, const struct btrfs_key *k,
			bool first_visit)
{
	struct inode_cur *cur = &st->cur;
	const struct btrfs_file_extent_item *fi = (const void *)tb_item_ptr(leaf, slot);
	u32 size = tb_item_size(leaf, slot), ss = c->fs->sectorsize;
	struct check_loc loc = LOC(st->root->objectid, cur->ino, k->offset, NOLOC);
	u32 max_inline = c->fs->nodesize - sizeof(struct btrfs_header) - sizeof(struct btrfs_item) -
			 BTRFS_FILE_EXTENT_INLINE_DATA_START;
	u64 num = 0, disk_bytenr = 0;
	struct ctx42 *x = NULL;
	bool nodatasum = cur->flags & BTRFS_INODE_NODATASUM;

	if (max_inline > ss - 1)
		max_inline = ss - 1;
	c->cnt.file_extents++;
	if (size < BTRFS_FILE_EXTENT_INLINE_DATA_START) {
		check_report(c, PR_FILE_EXTENT_BAD, loc, "item too small");
		return;
	}
	if (cur->extent_start == NOLOC)
		cur->extent_start = cur->extent_end = k->offset;
	cur->found_extent = true;
	if (cur->extent_end > k->offset) {
		check_report(c, PR_FILE_EXTENT_OVERLAP, loc, cur->extent_end);
	} else if (cur->extent_end < k->offset && cur->first_gap == NOLOC) {
		cur->first_gap = cur->extent_end;
	}
	if (fi->compression > BTRFS_COMPRESS_ZSTD)
		check_report(c, PR_FILE_EXTENT_BAD, loc, "unknown compression type");
	if (fi->type == BTRFS_FILE_EXTENT_INLINE) {
		u64 ram = le64_to_cpu(fi->ram_bytes);
		u32 inline_len = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;
		bool enc_link = cur_encrypted(cur) && S_ISLNK(cur->mode);

		if (ram == 0)
			check_report(c, PR_FILE_EXTENT_BAD, loc, "inline extent with ram_bytes 0");
		if (enc_link) {
			symlink_data(c, st, (const u8 *)fi + BTRFS_FILE_EXTENT_INLINE_DATA_START,
				     inline_len, ram);
		} else if (fi->compression) {
			if (inline_len > max_inline || ram > ss)
				check_report(c, PR_INLINE_EXTENT_BAD, loc, "compressed inline extent too large");
		} else {
			if (ram > max_inline)
				check_report(c, PR_INLINE_EXTENT_BAD, loc, "inline extent too large");
			if (inline_len != ram)
				check_report(c, PR_INLINE_EXTENT_BAD, loc,
					     "ram_bytes differs from the stored length");
		}
		cur->found_size += ram;
		num = (ram + ss - 1) / ss * ss;
	} else if (fi->type == BTRFS_FILE_EXTENT_REG || fi->type == BTRFS_FILE_EXTENT_PREALLOC) {
		if (size < sizeof(*fi)) {
			check_report(c, PR_FILE_EXTENT_BAD, loc, "item too small");
			return;
		}
		num = le64_to_cpu(fi->num_bytes);
		disk_bytenr = le64_to_cpu(fi->disk_bytenr);
		if (size != sizeof(*fi) && fi->encryption != 1)
			check_report(c, PR_FILE_EXTENT_BAD, loc, "item size is not 53");
		if (num == 0 || num % ss)
			check_report(c, PR_FILE_EXTENT_BAD, loc, "num_bytes zero or not sector aligned");
		if (num + le64_to_cpu(fi->offset) > le64_to_cpu(fi->ram_bytes))
			check_report(c, PR_FILE_EXTENT_BAD, loc, "offset + num_bytes beyond ram_bytes");
		if (fi->type == BTRFS_FILE_EXTENT_PREALLOC &&
		    (fi->compression || le16_to_cpu(fi->other_encoding)))
			check_report(c, PR_FILE_EXTENT_BAD, loc, "compressed or encoded prealloc extent");
		if (fi->compression && nodatasum)
			check_report(c, PR_FILE_EXTENT_BAD, loc, "compressed extent in a NODATASUM inode");
		if (k->offset + num < k->offset)
			check_report(c, PR_FILE_EXTENT_BAD, loc, "extent end overflows");
		if (disk_bytenr)
			cur->found_size += num;
	} else {
		check_report(c, PR_FILE_EXTENT_BAD, loc, "unknown extent type");
	}
	cur->extent_end = k->offset + num;
	extent_encryption(c, st, k, fi, size, &x);

	if (first_visit && disk_bytenr && size >= sizeof(*fi))
		record_file_extent(c, st, k, fi, num, nodatasum, x);
}

/* ---- tree level ------------------------------------------------------------------ */

struct fs_tree_state *fs_tree_begin(struct check_ctx *c, const struct root_desc *root)
{
	struct fs_tree_state *st = fault_calloc(1, sizeof(*st));

	if (!st) {
		die_oom();
	}
	st->root = root;
	vec_init(&st->inodes, sizeof(struct ino_sum));
	spill_init(&st->ents, check_spill_budget(), cmp_dent);
	vec_init(&st->orphans, sizeof(u64));
	st->no_holes = c->fs->incompat & BTRFS_FEATURE_INCOMPAT_NO_HOLES;
	return st;
}

void fs_tree_leaf(struct check_ctx *c, struct fs_tree_state *st, const struct tree_block *leaf,
		  bool first_visit)
{
	for (u32 i = 0; i < tb_nritems(leaf); i++) {
		struct btrfs_key k;

		tb_item_key(leaf, i, &k);
		if (k.objectid == BTRFS_ORPHAN_OBJECTID && k.type == BTRFS_ORPHAN_ITEM_KEY) {
			*(u64 *)vec_push_or_die(&st->orphans) = k.offset;
			continue;
		}
		if (k.objectid < BTRFS_FIRST_FREE_OBJECTID || k.objectid > BTRFS_LAST_FREE_OBJECTID)
			continue;
		if (!st->cur.active || st->cur.ino != k.objectid) {
			finish_inode(c, st);
			start_inode(st, k.objectid);
		}
		if (k.type != BTRFS_INODE_ITEM_KEY)
			st->cur.any_item = true;
		switch (k.type) {
		case BTRFS_INODE_ITEM_KEY:
			inode_item(c, st, leaf, i);
			break;
		case BTRFS_INODE_REF_KEY:
		case BTRFS_INODE_EXTREF_KEY:
			inode_refs(c, st, leaf, i, &k);
			break;
		case BTRFS_XATTR_ITEM_KEY:
		case BTRFS_DIR_ITEM_KEY:
		case BTRFS_DIR_INDEX_KEY:
			dir_entries(c, st, leaf, i, &k);
			break;
		case BTRFS_FSCRYPT_INODE_CTX_KEY:
			inode_ctx(c, st, leaf, i, first_visit);
			break;
		case BTRFS_FSCRYPT_CTX_KEY:
			extent_ctx(c, st, leaf, i, &k);
			break;
		case BTRFS_EXTENT_DATA_KEY:
			file_extent(c, st, leaf, i, &k, first_visit);
			break;
		default:
			break;
		}
	}
}

/*
 * The entries of one name in one directory, as they come out of the store:
 * sorted by source, then child.  A directory holds a name once, so more than
 * a few means a corrupt tree; past GROUP_MAX the rest are reported once and
 * not matched, which keeps a crafted tree from costing memory or time.
 */
#define GROUP_MAX 64

struct dent_group {
	struct dent v[GROUP_MAX];
	size_t n;
	u64 more;		/* entries past GROUP_MAX */
	u8 name[MAX_NAME];
};

/* The first entry of source src in the group (of child, when match_child). */
static const struct dent *group_find(const struct dent_group *g, u8 src, u64 child,
				     bool match_child)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->v[i].src == src && (!match_child || g->v[i].child == child))
			return &g->v[i];
	return NULL;
}

static int cmp_ino_sum(const void *x, const void *y)
{
	return cmp_u64(((const struct ino_sum *)x)->ino, ((const struct ino_sum *)y)->ino);
}

/*
 * The inode's summary; inodes are sorted by number (fs_tree_end()).  The
 * steps of bsearch() without its calls through a comparator: with two
 * summaries of one number (a corrupt tree) the same one is found.
 */
static struct ino_sum *find_ino(struct fs_tree_state *st, u64 ino)
{
	struct ino_sum *v = st->inodes.data;
	size_t lo = 0, hi = st->inodes.nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ino < v[mid].ino)
			hi = mid;
		else if (ino > v[mid].ino)
			lo = mid + 1;
		else
			return &v[mid];
	}
	return NULL;
}

static bool has_orphan(const struct fs_tree_state *st, u64 ino)
{
	for (size_t i = 0; i < st->orphans.nr; i++)
		if (VEC_AT(&st->orphans, u64, i) == ino)
			return true;
	return false;
}

static u8 mode_to_ftype(u32 mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return BTRFS_FT_REG_FILE;
	case S_IFDIR: return BTRFS_FT_DIR;
	case S_IFCHR: return BTRFS_FT_CHRDEV;
	case S_IFBLK: return BTRFS_FT_BLKDEV;
	case S_IFIFO: return BTRFS_FT_FIFO;
	case S_IFSOCK: return BTRFS_FT_SOCK;
	case S_IFLNK: return BTRFS_FT_SYMLINK;
	default: return BTRFS_FT_UNKNOWN;
	}
}

/*
 * The kernel opens an entry of an encrypted directory only if its own policy
 * is the directory's (fscrypt_has_permitted_context(): EPERM otherwise).
 */
static void check_entry_policy(struct check_ctx *c, struct fs_tree_state *st, const struct dent *d,
			       const u8 *name, const struct ino_sum *child)
{
	struct ino_sum *dir = find_ino(st, d->dir);
	char nb[4 * MAX_NAME + 8];

	if (!dir || !dir->policy || !child->policy || dir->policy == child->policy ||
	    dir->policy == 0xffff || child->policy == 0xffff)
		return;
	/* Both under keys given to check: the state of a rekey cut short (a note). */
	if (check_key_given(c, st->policies[dir->policy - 1] + KEY_ID_OFFSET) &&
	    check_key_given(c, st->policies[child->policy - 1] + KEY_ID_OFFSET) &&
	    memcmp(st->policies[dir->policy - 1] + KEY_ID_OFFSET,
		   st->policies[child->policy - 1] + KEY_ID_OFFSET, FSCRYPT_KEY_IDENTIFIER_SIZE)) {
		c->cnt.rekey_mixed_entries++;
		return;
	}
	/* The name is escaped only for the report: every entry passes here. */
	check_report(c, PR_POLICY_MISMATCH, LOC(st->root->objectid, d->dir, d->index, NOLOC),
		     check_shown_name(c, st->root->objectid, d->dir, name, d->name_len, nb, sizeof(nb)),
		     d->dir, d->child);
}

/* The root directory's ".." ref to itself: btrfs check wants index 0 and that name. */
static void root_dir_ref(struct check_ctx *c, struct fs_tree_state *st, const struct dent *d,
			 const u8 *name)
{
	st->root_ref_seen = true;
	if (d->index || d->name_len != 2 || memcmp(name, "..", 2))
		check_report(c, PR_ROOT_DIR_BAD, LOC_INODE(st->root->objectid, d->child),
			     "its inode ref to itself is not \"..\" with index 0");
}

/* Formatted only for a report: most entries never need it. */
#define NAME_OF(d) check_shown_name(c, root, (d)->dir, g->name, (d)->name_len, nb, sizeof(nb))

/* An INODE_REF: the directory has a DIR_ITEM and a DIR_INDEX (of its index) for it. */
static void match_ref(struct check_ctx *c, struct fs_tree_state *st, const struct dent_group *g,
		      const struct dent *d)
{
	u64 root = st->root->objectid, rootdir = st->root->root_dirid;
	const struct dent *idx, *item;
	char nb[4 * MAX_NAME + 8];

	if (d->child == rootdir && d->dir == rootdir) {
		root_dir_ref(c, st, d, g->name);
		return;
	}
	item = group_find(g, SRC_ITEM, d->child, true);
	idx = group_find(g, SRC_INDEX, d->child, true);
	if (!idx || idx->index != d->index)
		check_report(c, PR_DIR_INDEX_MISSING, LOC_INODE(root, d->child), NAME_OF(d), d->dir,
			     d->child);
	if (!item)
		check_report(c, PR_DIR_ITEM_MISSING, LOC_INODE(root, d->child), NAME_OF(d), d->dir,
			     d->child);
}

/* A DIR_INDEX: its inode has a ref with the name, a DIR_ITEM agrees, the inode fits. */
static void match_index(struct check_ctx *c, struct fs_tree_state *st, const struct dent_group *g,
			const struct dent *d)
{
	u64 root = st->root->objectid;
	const struct dent *ref = group_find(g, SRC_REF, d->child, true);
	const struct dent *item = group_find(g, SRC_ITEM, d->child, true);
	struct ino_sum *s = find_ino(st, d->child);
	char nb[4 * MAX_NAME + 8], msg[160];

	if (!item)
		item = group_find(g, SRC_ITEM, 0, false);
	if (!ref) {
		check_report(c, PR_INODE_REF_MISSING, LOC(root, d->dir, d->index, NOLOC), NAME_OF(d),
			     d->dir, d->index, d->child);
		if (!item)
			check_report(c, PR_DIR_ITEM_MISSING, LOC_INODE(root, d->child), NAME_OF(d),
				     d->dir, d->child);
	}
	if (item && (item->child != d->child || item->ftype != d->ftype)) {
		snprintf(msg, sizeof(msg),
			 "DIR_ITEM points to inode %llu type %u, DIR_INDEX to inode %llu type %u",
			 item->child, item->ftype, d->child, d->ftype);
		check_report(c, PR_DIR_ENTRY_MISMATCH, LOC(root, d->dir, d->index, NOLOC), NAME_OF(d),
			     d->dir, msg);
	}
	if (!s) {
		check_report(c, PR_INODE_ITEM_MISSING, LOC_INODE(root, d->child), "a directory entry");
		return;
	}
	if (mode_to_ftype(s->mode) != (d->ftype & ~BTRFS_FT_ENCRYPTED)) {
		snprintf(msg, sizeof(msg), "file type %u but inode %llu has mode 0%o",
			 d->ftype & ~BTRFS_FT_ENCRYPTED, d->child, s->mode);
		check_report(c, PR_DIR_ENTRY_MISMATCH, LOC(root, d->dir, d->index, NOLOC), NAME_OF(d),
			     d->dir, msg);
	}
	if (d->dir_encrypted && !s->encrypted &&
	    (S_ISREG(s->mode) || S_ISDIR(s->mode) || S_ISLNK(s->mode)))
		check_report(c, PR_PLAIN_INODE_IN_ENCRYPTED_DIR, LOC(root, d->dir, d->index, NOLOC),
			     NAME_OF(d), d->dir, d->child, s->mode);
	check_entry_policy(c, st, d, g->name, s);
}

/* A DIR_ITEM: counted as a link of its inode; a DIR_INDEX or a ref names the same. */
static void match_item(struct check_ctx *c, struct fs_tree_state *st, const struct dent_group *g,
		       const struct dent *d)
{
	u64 root = st->root->objectid;
	struct ino_sum *s = find_ino(st, d->child);
	char nb[4 * MAX_NAME + 8];

	if (s)
		s->links++;
	if (!group_find(g, SRC_INDEX, d->child, true) && !group_find(g, SRC_REF, d->child, true))
		check_report(c, PR_DIR_INDEX_MISSING, LOC_INODE(root, d->child), NAME_OF(d), d->dir,
			     d->child);
}
#undef NAME_OF

/* Every entry of one name in one directory, refs first, then DIR_ITEMs, then DIR_INDEXes. */
static void match_group(struct check_ctx *c, struct fs_tree_state *st, const struct dent_group *g)
{
	if (g->more) {
		char what[64];

		snprintf(what, sizeof(what), "%llu entries of one name", (unsigned long long)g->more + g->n);
		check_report(c, PR_DIR_ITEM_BAD, LOC_INODE(st->root->objectid, g->v[0].dir), what,
			     "a name held more than once; the entries past the first 64 are not matched");
	}
	for (u8 src = SRC_REF; src <= SRC_INDEX; src++)
		for (size_t i = 0; i < g->n; i++) {
			const struct dent *d = &g->v[i];

			if (d->src != src)
				continue;
			if (src == SRC_REF) {
				match_ref(c, st, g, d);
				continue;
			}
			if (d->loc_type != BTRFS_INODE_ITEM_KEY)
				continue;	/* subvolume entries have ROOT_REFs, not inode refs */
			{
				struct ino_sum *dir = find_ino(st, d->dir);

				if (dir && dir->nlink == 0)
					continue;	/* a deleted directory awaiting its orphan cleanup */
			}
			if (src == SRC_INDEX)
				match_index(c, st, g, d);
			else
				match_item(c, st, g, d);
		}
}

/* The entries of the tree, a (directory, name) group at a time out of the store. */
static void match_entries(struct check_ctx *c, struct fs_tree_state *st)
{
	struct dent_group *g = fault_malloc(sizeof(*g));
	const struct dent *d;
	u32 len;

	if (!g)
		die_oom();
	g->n = 0;
	g->more = 0;
	spill_finish_or_die(&st->ents);
	while ((d = spill_next_or_die(&st->ents, &len))) {
		if (g->n && (d->dir != g->v[0].dir || d->name_len != g->v[0].name_len ||
			     d->name_hash != g->v[0].name_hash || memcmp(d + 1, g->name, d->name_len))) {
			match_group(c, st, g);
			g->n = 0;
			g->more = 0;
		}
		if (!g->n)
			memcpy(g->name, d + 1, d->name_len);
		if (g->n < GROUP_MAX)
			g->v[g->n++] = *d;
		else
			g->more++;
	}
	if (g->n)
		match_group(c, st, g);
	free(g);
}

static void check_links(struct check_ctx *c, struct fs_tree_state *st)
{
	u64 root = st->root->objectid, rootdir = st->root->root_dirid;
	bool rootdir_seen = false;

	for (size_t i = 0; i < st->inodes.nr; i++) {
		struct ino_sum *s = &VEC_AT(&st->inodes, struct ino_sum, i);

		if (s->ino == rootdir) {
			rootdir_seen = true;
			if (s->nlink != 1 || s->links != 0)
				check_report(c, PR_ROOT_DIR_BAD, LOC_INODE(root, s->ino),
					     "link count is not 1 or it has directory entries");
			continue;
		}
		if (s->nlink == 0) {
			if (!has_orphan(st, s->ino))
				check_report(c, PR_INODE_NO_ORPHAN_ITEM, LOC_INODE(root, s->ino));
			if (s->links)
				check_report(c, PR_INODE_NLINK, LOC_INODE(root, s->ino), s->nlink, s->links);
			continue;
		}
		if (s->nlink != s->links && !S_ISDIR(s->mode))
			check_report(c, PR_INODE_NLINK, LOC_INODE(root, s->ino), s->nlink, s->links);
		else if (S_ISDIR(s->mode) && s->links != 1 && s->nlink < 2)
			check_report(c, PR_INODE_NLINK, LOC_INODE(root, s->ino), s->nlink, s->links);
	}
	if (!rootdir_seen && rootdir)
		check_report(c, PR_ROOT_DIR_BAD, LOC_INODE(root, rootdir), "no inode item");
	else if (rootdir && !st->root_ref_seen)	/* btrfs check: "errors 400" on it */
		check_report(c, PR_ROOT_DIR_BAD, LOC_INODE(root, rootdir),
			     "it has no inode ref to itself (\"..\", index 0)");
}

void fs_tree_end(struct check_ctx *c, struct fs_tree_state *st)
{
	finish_inode(c, st);
	check_qsort(st->inodes.data, st->inodes.nr, sizeof(struct ino_sum), cmp_ino_sum);
	match_entries(c, st);
	check_links(c, st);
	vec_free(&st->inodes);
	spill_free(&st->ents);
	vec_free(&st->orphans);
	free(st->cur.c42);
	free(st->policies);
	free(st);
}
