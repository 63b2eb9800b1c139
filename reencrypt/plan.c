// SPDX-License-Identifier: GPL-2.0
/*
 * Selection and planning for re-encryption: the subvolumes and inodes a
 * run covers, their order, and the preflight that checks key and space
 * before the first write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/fault.h"
#include "reencrypt/internal.h"
#include "kernel-shared/backref.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/chunk-alloc.h"
#include "kernel-shared/disk-io.h"
#include "common/containers.h"
#include "common/utils.h"

/* ---- inventory ------------------------------------------------------------ */

/* The last key of the free objectids: inode numbers and subvolume ids. */
static const struct btrfs_key last_free_key = { BTRFS_LAST_FREE_OBJECTID, (u8)-1, (u64)-1 };

int reenc_list_inodes(struct fs_info *fs, const struct root_ref *root,
		      struct inode_info **out, size_t *nr)
{
	struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, BTRFS_INODE_ITEM_KEY, 0 }, k;
	struct key_iter it;
	size_t cap = 0;
	int ret;

	*out = NULL;
	*nr = 0;
	for (ret = key_iter_first(&it, fs, root, &key, &last_free_key); ret == 0;
	     ret = key_iter_next(&it)) {
		k = it.key;
		if (k.type == BTRFS_INODE_ITEM_KEY && it.size >= sizeof(struct btrfs_inode_item)) {
			const struct btrfs_inode_item *ii = (const void *)it.ptr;

			{
				struct inode_info *n = array_grow(*out, &cap, *nr, sizeof(*n));

				if (!n) {
					ret = fs_err(fs, -ENOMEM, "out of memory");
					break;
				}
				*out = n;
			}
			(*out)[(*nr)++] = (struct inode_info){ k.objectid, le32_to_cpu(ii->mode),
							       le64_to_cpu(ii->flags), 0, 0 };
		} else if (k.type == BTRFS_INODE_REF_KEY && *nr &&
			   (*out)[*nr - 1].ino == k.objectid) {
			(*out)[*nr - 1].parent = k.offset;
		}
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

static struct inode_info *find_inode(struct inode_info *v, size_t nr, u64 ino)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].ino < ino)
			lo = mid + 1;
		else if (v[mid].ino > ino)
			hi = mid;
		else
			return &v[mid];
	}
	return NULL;
}

/* Depth of every directory below the subvolume root (bounded: no loops). */
void reenc_compute_depths(struct inode_info *v, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		u32 d = 0;
		struct inode_info *cur = &v[i];

		while (cur && cur->parent && cur->parent != cur->ino && d < 4096) {
			cur = find_inode(v, nr, cur->parent);
			d++;
		}
		v[i].depth = d;
	}
}

static int cmp_by_parent(const void *a, const void *b)
{
	const struct inode_info *x = *(struct inode_info *const *)a;
	const struct inode_info *y = *(struct inode_info *const *)b;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* The first of the n entries of v (sorted by parent) whose parent is p; n if none. */
static size_t first_child(struct inode_info **v, size_t n, u64 p)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid]->parent < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Append the selected files of directory d to out; mark them taken. */
static void take_files(struct inode_info **files, size_t nf, bool *taken, u64 d,
		       struct inode_info **out, size_t *n)
{
	for (size_t i = first_child(files, nf, d); i < nf && files[i]->parent == d; i++) {
		taken[i] = true;
		if (files[i]->selected)
			out[(*n)++] = files[i];
	}
}

int reenc_order_by_dir(struct inode_info *v, size_t nr, struct inode_info ***out,
		       size_t *nr_out)
{
	struct inode_info **dirs = fault_malloc((nr + 1) * sizeof(*dirs));
	struct inode_info **files = fault_malloc((nr + 1) * sizeof(*files));
	struct inode_info **stack = fault_malloc((nr + 1) * sizeof(*stack));
	struct inode_info **res = fault_malloc((nr + 1) * sizeof(*res));
	bool *taken = fault_calloc(nr + 1, 1), *seen = fault_calloc(nr + 1, 1);
	size_t nd = 0, nf = 0, n = 0;
	int ret = 0;

	if (!dirs || !files || !stack || !res || !taken || !seen) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nr; i++) {
		if (S_ISDIR(v[i].mode))
			dirs[nd++] = &v[i];
		else
			files[nf++] = &v[i];
	}
	qsort(dirs, nd, sizeof(*dirs), cmp_by_parent);
	qsort(files, nf, sizeof(*files), cmp_by_parent);
	/* Depth first from each directory whose parent is no directory here (the top). */
	for (size_t r = 0; r < nd; r++) {
		size_t top = 0, i0, j;
		struct inode_info *p = dirs[r]->parent && dirs[r]->parent != dirs[r]->ino ?
				       find_inode(v, nr, dirs[r]->parent) : NULL;

		if ((p && S_ISDIR(p->mode)) || seen[dirs[r] - v])
			continue;
		stack[top++] = dirs[r];
		while (top) {
			struct inode_info *d = stack[--top];

			if (seen[d - v])
				continue;
			seen[d - v] = true;
			if (d->selected)
				res[n++] = d;
			take_files(files, nf, taken, d->ino, res, &n);
			/* Children pushed last-first: the first is taken next. */
			i0 = first_child(dirs, nd, d->ino);
			for (j = i0; j < nd && dirs[j]->parent == d->ino; j++)
				;
			for (size_t k = j; k-- > i0;)
				if (dirs[k] != d && !seen[dirs[k] - v])
					stack[top++] = dirs[k];
		}
	}
	/* Directories off any path from a top (loops in a corrupt tree), then the rest. */
	for (size_t r = 0; r < nd; r++)
		if (!seen[dirs[r] - v] && dirs[r]->selected)
			res[n++] = dirs[r];
	for (size_t i = 0; i < nf; i++)
		if (!taken[i] && files[i]->selected)
			res[n++] = files[i];
out:
	free(dirs);
	free(files);
	free(stack);
	free(taken);
	free(seen);
	if (ret)
		free(res);
	*out = ret ? NULL : res;
	*nr_out = n;
	return ret;
}

/*
 * Mark what lies inside the selected directories: directories below one
 * (or one itself), and files or symlinks with any link in such a directory
 * (an encrypted directory may not hold a plain entry).
 */
int reenc_mark_selected(struct fs_info *fs, const struct root_ref *root, struct inode_info *v,
			size_t nr, const u64 *sel, size_t nsel)
{
	struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, BTRFS_INODE_REF_KEY, 0 }, k;
	struct key_iter it;
	int ret;

	for (size_t i = 0; i < nr; i++) {
		struct inode_info *cur = &v[i];
		int guard = 0;

		if (!S_ISDIR(v[i].mode))
			continue;
		while (cur && !v[i].selected && guard++ < 4096) {
			for (size_t j = 0; j < nsel; j++)
				v[i].selected |= cur->ino == sel[j];
			if (!cur->parent || cur->parent == cur->ino)
				break;
			cur = find_inode(v, nr, cur->parent);
		}
	}
	for (ret = key_iter_first(&it, fs, root, &key, &last_free_key); ret == 0;
	     ret = key_iter_next(&it)) {
		struct inode_info *child, *parent = NULL;

		k = it.key;
		if (k.type == BTRFS_INODE_REF_KEY)
			parent = find_inode(v, nr, k.offset);
		else if (k.type == BTRFS_INODE_EXTREF_KEY &&
			 it.size >= sizeof(struct btrfs_inode_extref))
			parent = find_inode(v, nr, le64_to_cpu(((const struct btrfs_inode_extref *)
								it.ptr)->parent_objectid));
		child = parent ? find_inode(v, nr, k.objectid) : NULL;
		if (child && !S_ISDIR(child->mode) && parent->selected)
			child->selected = true;
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

/* Nesting depth of a subvolume (ROOT_BACKREF chain up to the FS tree). */
static u32 subvol_depth(struct fs_info *fs, u64 id)
{
	u32 d = 0;

	while (id != BTRFS_FS_TREE_OBJECTID && d < 1024) {
		struct btrfs_key key = { id, BTRFS_ROOT_BACKREF_KEY, 0 }, k;
		struct btrfs_path p;
		int ret = search_slot(fs, &fs->tree_root, &key, &p);

		if (ret < 0 || !path_item_valid(&p)) {
			path_release(fs, &p);
			break;
		}
		path_key(&p, &k);
		path_release(fs, &p);
		if (k.objectid != id || k.type != BTRFS_ROOT_BACKREF_KEY)
			break;
		id = k.offset;
		d++;
	}
	return d;
}

int reenc_list_subvols(struct fs_info *fs, u64 **out, size_t *nr)
{
	struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, BTRFS_ROOT_ITEM_KEY, 0 }, k;
	struct key_iter it;
	size_t cap = 16;
	int ret;

	*out = fault_malloc(cap * sizeof(**out));
	if (!*out)
		return fs_err(fs, -ENOMEM, "out of memory");
	(*out)[0] = BTRFS_FS_TREE_OBJECTID;
	*nr = 1;
	for (ret = key_iter_first(&it, fs, &fs->tree_root, &key, &last_free_key); ret == 0;
	     ret = key_iter_next(&it)) {
		k = it.key;
		if (k.type != BTRFS_ROOT_ITEM_KEY || it.size < BTRFS_ROOT_ITEM_V0_SIZE ||
		    !le32_to_cpu(((const struct btrfs_root_item *)it.ptr)->refs))
			continue;
		{
			u64 *n = array_grow(*out, &cap, *nr, sizeof(*n));

			if (!n) {
				ret = fs_err(fs, -ENOMEM, "out of memory");
				break;
			}
			*out = n;
		}
		(*out)[(*nr)++] = k.objectid;
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

int reenc_all_refs_in_target(struct reenc *c, u64 bytenr, bool *all)
{
	struct trans_root *er = trans_get_root(c->t, BTRFS_EXTENT_TREE_OBJECTID);
	struct btrfs_key key = { bytenr, BTRFS_EXTENT_ITEM_KEY, 0 };
	struct backref_iter it;
	struct backref br;
	struct btrfs_path p;
	int ret;

	*all = c->all_subvols && !c->o->nr_paths;
	if (*all || !er || c->o->nr_paths)
		return er ? 0 : -EIO;
	if (c->o->nr_paths)
		return 0;	/* inode-level selections: always a private copy */
	*all = true;
	ret = search_slot(c->fs, &er->ref, &key, &p);
	if (ret < 0)
		return ret;
	backref_iter_init(&it, c->fs, &p, bytenr);
	while (*all) {
		ret = backref_iter_next(&it, &br);
		if (ret == 1 || ret < 0)
			break;
		if (!ret && br.kind == REF_DATA) {
			bool in = false;

			for (size_t i = 0; i < c->o->nr_subvols; i++)
				in |= c->o->subvols[i] == br.root;
			*all &= in;
		} else if (br.is_inline || br.kind == REF_SHARED_DATA) {
			*all = false;	/* shared leaf refs: sharers unknown */
		}
		/* Keyed tree refs and keyed data refs too short to read: ignored. */
	}
	path_release(c->fs, &p);
	return ret < 0 ? ret : 0;
}

/*
 * Whether any file extent item of the data ref (root, ino, backref offset)
 * reads the extent at bytenr (len bytes) as written data: a REG item.  Its
 * items sit at key offsets backref + extent offset (wrapping, as stored),
 * with the extent offset below len.
 */
static int data_ref_reads(struct reenc *c, const struct backref *br, u64 bytenr, u64 len,
			  bool *reads)
{
	struct trans_root *root = trans_get_root(c->t, br->root);
	bool wraps = br->offset > (u64)-1 - len;
	struct btrfs_key min = { br->objectid, BTRFS_EXTENT_DATA_KEY, wraps ? 0 : br->offset };
	struct btrfs_key max = { br->objectid, BTRFS_EXTENT_DATA_KEY, br->offset + len - 1 };
	struct key_iter it;
	int ret;

	if (!root) {
		*reads = true;	/* a tree we cannot read: assume its items read the data */
		return 0;
	}
	for (ret = key_iter_first(&it, c->fs, &root->ref, &min, &max); ret == 0 && !*reads;
	     ret = key_iter_next(&it)) {
		const struct btrfs_file_extent_item *fe = (const void *)it.ptr;

		if (it.size < sizeof(*fe) || fe->type == BTRFS_FILE_EXTENT_INLINE ||
		    le64_to_cpu(fe->disk_bytenr) != bytenr ||
		    it.key.offset - le64_to_cpu(fe->offset) != br->offset)
			continue;
		*reads = fe->type != BTRFS_FILE_EXTENT_PREALLOC;
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

/* Whether a leaf named by a SHARED_DATA_REF holds a REG item of the extent. */
static int shared_ref_reads(struct reenc *c, u64 parent, u64 bytenr, bool *reads)
{
	struct tree_block *b;
	int ret = read_tree_block(c->fs, parent, &(struct block_check){ .level = 0 }, &b);

	if (ret)
		return ret;
	for (u32 i = 0; i < tb_nritems(b) && !*reads; i++) {
		const struct btrfs_file_extent_item *fe = (const void *)tb_item_ptr(b, i);
		struct btrfs_key k;

		tb_item_key(b, i, &k);
		if (k.type == BTRFS_EXTENT_DATA_KEY && tb_item_size(b, i) >= sizeof(*fe) &&
		    fe->type != BTRFS_FILE_EXTENT_INLINE && le64_to_cpu(fe->disk_bytenr) == bytenr)
			*reads = fe->type != BTRFS_FILE_EXTENT_PREALLOC;
	}
	tree_block_put(c->fs, b);
	return 0;
}

int reenc_extent_unwritten(struct reenc *c, u64 bytenr, u64 len, bool *unwritten)
{
	struct trans_root *er = trans_get_root(c->t, BTRFS_EXTENT_TREE_OBJECTID);
	struct btrfs_key key = { bytenr, BTRFS_EXTENT_ITEM_KEY, 0 };
	struct backref_iter it;
	struct backref br;
	struct btrfs_path p;
	bool reads = false;
	int ret;

	*unwritten = false;
	if (!er)
		return trans_root_err(c->t);
	ret = search_slot(c->fs, &er->ref, &key, &p);
	if (ret < 0)
		return ret;
	backref_iter_init(&it, c->fs, &p, bytenr);
	while (!reads) {
		ret = backref_iter_next(&it, &br);
		if (ret == 1 || ret < 0)
			break;
		if (ret == BACKREF_BAD)
			reads = true;	/* a ref we cannot follow: keep the data */
		else if (br.kind == REF_DATA)
			ret = data_ref_reads(c, &br, bytenr, len, &reads);
		else if (br.kind == REF_SHARED_DATA)
			ret = shared_ref_reads(c, br.parent, bytenr, &reads);
		if (ret < 0)
			break;
	}
	path_release(c->fs, &p);
	if (ret < 0)
		return ret;
	*unwritten = !reads;
	return 0;
}

/* Any item 41 left in any subvolume? (decides the incompat bit after decrypt) */
int reenc_anything_encrypted(struct fs_info *fs, const u64 *trees, size_t nr, bool *any)
{
	*any = false;
	for (size_t i = 0; i < nr && !*any; i++) {
		struct root_ref rr;
		struct inode_info *inodes;
		size_t n;
		int ret = find_root(fs, trees[i], &rr);

		if (!ret)
			ret = reenc_list_inodes(fs, &rr, &inodes, &n);
		if (ret)
			return ret;
		for (size_t j = 0; j < n; j++)
			*any |= !!(inodes[j].flags & BTRFS_INODE_ENCRYPT);
		free(inodes);
	}
	return 0;
}

/*
 * Before any write: every context in the targets carries our key, and the
 * image has room for a batch of copies plus its largest file.
 */
/* Work left in one tree: bytes to copy, its largest file, inline data to place. */
struct preflight_need {
	u64 total, largest, inline_bytes;
};

/*
 * Count what a tree still needs (into n and the stats a dry run prints), and
 * refuse an inode context made by another master key.
 */
/*
 * Whether a plain symlink's target (the item's inline data, i_size bytes of
 * it: mkfs 6.2 adds a NUL) can be encrypted: fscrypt ends a target at its
 * first NUL, so an empty one or one holding a NUL would not decrypt back.
 */
static bool symlink_target_ok(const u8 *item, u32 size, u64 isize)
{
	u64 len = size - BTRFS_FILE_EXTENT_INLINE_DATA_START;

	if (isize < len)
		len = isize;
	return len && !memchr(item + BTRFS_FILE_EXTENT_INLINE_DATA_START, 0, len);
}

static int preflight_tree(struct reenc *c, u64 tree, struct preflight_need *n)
{
	struct fs_info *fs = c->fs;
	struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, 0, 0 }, k;
	struct btrfs_key max = { (u64)-1, (u8)-1, (u64)-1 };
	struct key_iter it;
	struct root_ref rr;
	u64 cur_ino = 0, cur_bytes = 0, cur_counted = 0;
	u32 cur_mode = 0;
	u64 cur_size = 0;
	bool cur_done = false;
	int ret;

	ret = find_root(fs, tree, &rr);
	if (ret == -ENOENT)
		return fs_err(fs, -ENOENT, "no subvolume with id %llu", tree);
	if (ret < 0)
		return ret;
	for (ret = key_iter_first(&it, fs, &rr, &key, &max); ret == 0; ret = key_iter_next(&it)) {
		k = it.key;
		if (k.objectid != cur_ino) {
			n->largest = cur_bytes > n->largest ? cur_bytes : n->largest;
			cur_ino = k.objectid;
			cur_bytes = 0;
			cur_done = false;
			cur_counted = 0;
		}
		if (k.type == BTRFS_FSCRYPT_INODE_CTX_KEY &&
		    it.size >= sizeof(struct fscrypt_context_v2)) {
			const u8 *id = ((const struct fscrypt_context_v2 *)it.ptr)->master_key_identifier;

			if (c->ops->new_key && !memcmp(id, c->dst_mk->identifier,
						       FSCRYPT_KEY_IDENTIFIER_SIZE)) {
				cur_done = true;	/* rekeyed already (resume) */
				c->st->inodes -= cur_counted;
			} else if (memcmp(id, c->src_mk->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE)) {
				ret = fs_err(fs, -EKEYREJECTED,
					     "inode %llu in tree %llu is encrypted with another master key (wrong key?)",
					     k.objectid, tree);
				break;
			}
		}
		if (cur_done)
			continue;
		if (k.type == BTRFS_EXTENT_DATA_KEY &&
		    it.size >= BTRFS_FILE_EXTENT_INLINE_DATA_START) {
			const struct btrfs_file_extent_item *fe = (const void *)it.ptr;
			bool full = it.size >= sizeof(*fe);

			if (!full && fe->type != BTRFS_FILE_EXTENT_INLINE)
				continue;
			if (fe->type == BTRFS_FILE_EXTENT_PREALLOC && fe->disk_bytenr &&
			    !!fe->encryption == c->ops->src_encrypted) {
				c->st->extents++;
			} else if (fe->type == BTRFS_FILE_EXTENT_REG && fe->disk_bytenr &&
			    !!fe->encryption == c->ops->src_encrypted) {
				cur_bytes += le64_to_cpu(fe->disk_num_bytes);
				n->total += le64_to_cpu(fe->disk_num_bytes);
				c->st->extents++;	/* what a dry run reports */
			} else if (fe->type == BTRFS_FILE_EXTENT_INLINE && S_ISREG(cur_mode) &&
				   !c->ops->src_encrypted) {
				c->st->extents++;	/* becomes a regular encrypted extent */
				n->inline_bytes += fs->sectorsize;	/* new space, nothing freed */
			} else if (fe->type == BTRFS_FILE_EXTENT_INLINE && S_ISLNK(cur_mode) &&
				   cur_counted && !c->ops->src_encrypted && !fe->compression &&
				   !symlink_target_ok(it.ptr, it.size, cur_size)) {
				ret = fs_err(fs, -EOPNOTSUPP,
					     "symlink %llu in tree %llu has an empty target or one holding a NUL byte (a metadata dump zeroes them): fscrypt cannot encrypt it",
					     k.objectid, tree);
				break;
			}
		}
		if (k.type == BTRFS_INODE_ITEM_KEY &&
		    it.size >= sizeof(struct btrfs_inode_item)) {
			const struct btrfs_inode_item *ii = (const void *)it.ptr;
			u32 mode = le32_to_cpu(ii->mode);

			cur_mode = mode;
			cur_size = le64_to_cpu(ii->size);
			cur_counted = (S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode)) &&
				      !!(le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) ==
				      c->ops->src_encrypted;
			c->st->inodes += cur_counted;
		}
	}
	n->largest = cur_bytes > n->largest ? cur_bytes : n->largest;
	key_iter_release(&it);
	return ret > 0 ? 0 : ret;	/* > 0: the end of the tree */
}

/*
 * The preflight's replay of the run's data allocations (Documentation/
 * btrfs-extcrypt-encrypt.rst, FREE SPACE), in a transaction it aborts:
 * every file to do, in the run's order, reserves its copies as the run
 * does (space_alloc_all(): the same first fit from the same hint, new
 * chunks by the same rule), a simulated commit gives back the old extents
 * the batch freed when a file does not fit beside the batch or the batch
 * is full, as the run commits (driver.c, begin_inode()).
 */
struct replay {
	struct range *held;	/* old extents freed by the batch: free at its commit */
	size_t nr_held, cap_held;
	u64 batch_bytes, grow;
	s64 net, peak;		/* data the job holds (copies less old extents given back) */
	bool failed;
	u64 fail_ino, fail_tree, fail_largest, fail_free, fail_piece, fail_unalloc;
};

static int replay_commit(struct reenc *c, struct replay *r)
{
	for (size_t i = 0; i < r->nr_held; i++) {
		int ret = space_unmark(c->t, r->held[i].start, r->held[i].len);

		if (!ret)
			ret = space_drain_release(c->t, r->held[i].start, r->held[i].len);
		if (ret)
			return ret;
		r->net -= r->held[i].len;
	}
	r->nr_held = 0;
	r->batch_bytes = 0;
	return 0;
}

/* An old extent the batch frees: free again at the batch's commit. */
static int replay_hold(struct reenc *c, struct replay *r, u64 start, u64 len)
{
	struct range *n = array_grow(r->held, &r->cap_held, r->nr_held, sizeof(*n));

	if (!n)
		return fs_err(c->fs, -ENOMEM, "out of memory");
	r->held = n;
	r->held[r->nr_held++] = (struct range){ start, len };
	return 0;
}

/* The first file that fits nowhere: the numbers of the refusal. */
static void replay_failed(struct reenc *c, struct replay *r, u64 tree, u64 ino, u64 need)
{
	r->grow += need;
	if (r->failed)
		return;
	r->failed = true;
	r->fail_tree = tree;
	r->fail_ino = ino;
	for (size_t i = 0; i < c->resv.nr; i++)
		r->fail_largest = c->resv.len[i] > r->fail_largest ? c->resv.len[i] : r->fail_largest;
	space_free_bytes(c->t, BTRFS_BLOCK_GROUP_DATA, &r->fail_free);
	space_largest_free(c->t, BTRFS_BLOCK_GROUP_DATA, &r->fail_piece);
	chunk_dev_unallocated(c->t, &r->fail_unalloc, NULL);
}

static int replay_file(struct reenc *c, struct trans_root *root, const struct inode_info *ii,
		       struct replay *r)
{
	struct reenc_allocs *a = &c->resv;
	struct fscrypt_context_v2 ctx;
	bool fits, todo;
	u64 sum = 0;
	int ret = reenc_inode_todo(c, root, ii, &ctx, &todo);

	if (!ret && todo)
		ret = reenc_file_allocs(c, root, ii->ino, false, a);
	if (!ret && todo && a->reinline_old) {
		c->reinline_budget -= a->reinline_cost;
		ret = replay_hold(c, r, a->reinline_old, a->reinline_len);
	}
	if (ret || !todo || !a->nr)
		return ret;
	for (size_t i = 0; i < a->nr; i++)
		sum += a->len[i];
	ret = space_alloc_all(c->t, BTRFS_BLOCK_GROUP_DATA, a->len, a->nr, a->at, &fits);
	if (!ret && !fits && r->batch_bytes) {
		ret = replay_commit(c, r);
		if (!ret)
			ret = space_alloc_all(c->t, BTRFS_BLOCK_GROUP_DATA, a->len, a->nr, a->at,
					      &fits);
	}
	if (ret)
		return ret;
	/* One that fits nowhere is counted as if in grown space (--grow). */
	if (!fits)
		replay_failed(c, r, root->ref.objectid, ii->ino, sum);
	r->batch_bytes += sum;
	r->net += sum;
	r->peak = r->net > r->peak ? r->net : r->peak;
	for (size_t i = 0; !ret && i < a->nr; i++)
		if (a->old[i])
			ret = replay_hold(c, r, a->old[i], a->len[i]);
	return ret || r->batch_bytes < c->batch ? ret : replay_commit(c, r);
}

static int replay_jobs(struct reenc *c, const struct tree_job *jobs, size_t nr_jobs,
		       struct replay *r)
{
	int ret = 0;

	for (size_t j = 0; !ret && j < nr_jobs; j++) {
		struct inode_info *inodes, **order;
		struct trans_root *root;
		size_t nr;

		/* The run commits before each tree. */
		ret = replay_commit(c, r);
		if (!ret)
			ret = reenc_tree_inventory(c, jobs[j].tree, jobs[j].sel, jobs[j].nsel,
						   &inodes, &order, &nr);
		if (ret)
			break;
		root = trans_get_root(c->t, jobs[j].tree);
		if (!root)
			ret = trans_root_err(c->t);
		for (size_t i = 0; !ret && i < nr; i++)
			if (S_ISREG(order[i]->mode))
				ret = replay_file(c, root, order[i], r);
		free(order);
		free(inodes);
	}
	c->resv.nr = c->resv.next = 0;
	return ret;
}

/* Free space as the preflight sees it, before the replay. */
struct preflight_space {
	u64 free_data, free_meta, free_sys, chunk_data, chunk_meta, unalloc;
	u64 meta_chunk, sys_chunk;
	u64 meta_after;		/* free metadata with the chunks reserved for it */
};

static int preflight_space(struct reenc *c, struct trans *t, struct preflight_space *sp)
{
	struct fs_info *fs = c->fs;
	int ret = space_free_bytes(t, BTRFS_BLOCK_GROUP_DATA, &sp->free_data);

	if (!ret)
		ret = space_free_bytes(t, BTRFS_BLOCK_GROUP_METADATA, &sp->free_meta);
	if (!ret)
		ret = space_free_bytes(t, BTRFS_BLOCK_GROUP_SYSTEM, &sp->free_sys);
	if (!ret)
		ret = chunk_device_bytes(t, BTRFS_BLOCK_GROUP_METADATA, &sp->meta_chunk);
	if (!ret)
		ret = chunk_device_bytes(t, BTRFS_BLOCK_GROUP_SYSTEM, &sp->sys_chunk);
	/*
	 * New chunks come from unallocated device space (kernel-shared/chunk-alloc.h).
	 * Data may take it all but a metadata chunk, kept back when the
	 * metadata block groups are short of room, and a system chunk when the
	 * system ones are (copy-on-write of the chunk tree).
	 */
	if (!ret)
		ret = chunk_available(t, BTRFS_BLOCK_GROUP_DATA,
				      (sp->free_meta < c->meta_need ? sp->meta_chunk : 0) +
				      (sp->free_sys < 16ULL * fs->nodesize ? sp->sys_chunk : 0),
				      &sp->chunk_data);
	if (!ret)
		ret = chunk_available(t, BTRFS_BLOCK_GROUP_METADATA, 0, &sp->chunk_meta);
	if (!ret)
		ret = chunk_dev_unallocated(t, &sp->unalloc, NULL);
	return ret;
}

/*
 * Replay the data allocations in a transaction that is aborted: the
 * metadata chunks the run reserves first (reenc_reserve_meta()), then the
 * files.  The image never grows here, and the allocation hint is put back
 * for the run.
 */
static int preflight_replay(struct reenc *c, const struct tree_job *jobs, size_t nr_jobs,
			    struct preflight_space *sp, struct replay *r)
{
	struct fs_info *fs = c->fs;
	u64 hint[3], budget;
	bool may_grow = fs->may_grow;
	int ret = trans_begin(fs, &c->t);

	if (ret)
		return ret;
	memcpy(hint, fs->alloc_hint, sizeof(hint));
	fs->may_grow = false;
	/* A job over every subvolume drains the data block groups (space-map.h). */
	ret = c->all_subvols ? space_drain_begin(c->t) : 0;
	fs->drain_meta = c->meta_need;
	if (!ret)
		ret = preflight_space(c, c->t, sp);
	if (!ret)
		ret = reenc_reserve_meta(c, &sp->meta_after);
	/*
	 * Decrypt: what small files put back inline may take (data.c).  Mixed
	 * block groups: nothing, the data copies share that space.
	 */
	budget = sp->meta_after > c->meta_need ? sp->meta_after - c->meta_need : 0;
	if (fs->incompat & BTRFS_FEATURE_INCOMPAT_MIXED_GROUPS)
		budget = 0;
	c->reinline_budget = budget;
	if (!ret)
		ret = replay_jobs(c, jobs, nr_jobs, r);
	c->reinline_budget = budget;	/* the run spends it again, the same way */
	trans_abort(c->t);
	c->t = NULL;
	fs->may_grow = may_grow;
	fs->drain_nochunk = 0;	/* the replay's chunks are gone with it */
	memcpy(fs->alloc_hint, hint, sizeof(hint));
	free(r->held);
	return ret;
}

/*
 * Metadata the job adds for good (a bound): per inode to do its context
 * item and longer (padded) names, per file extent item its extent context
 * or the items inline data becomes; half-full leaves counted.  Plus 64
 * blocks for what one inode's change and a commit's copy-on-write hold at
 * once: the run commits its batch before the dirty blocks outgrow the free
 * metadata space (driver.c, begin_inode()).
 */
static u64 metadata_need(const struct reenc *c)
{
	u64 n = 64ULL * c->fs->nodesize;

	if (c->ops->dst_encrypted && !c->ops->new_key)
		n += c->st->inodes * 288 + c->st->extents * 192;
	return n;
}

int reenc_preflight(struct reenc *c, const struct tree_job *jobs, size_t nr_jobs)
{
	struct fs_info *fs = c->fs;
	struct preflight_need n = { 0 };
	struct preflight_space sp = { 0 };
	struct replay r = { 0 };
	u64 avail;
	int ret = 0;

	for (size_t i = 0; !ret && i < nr_jobs; i++)
		ret = preflight_tree(c, jobs[i].tree, &n);
	c->meta_need = metadata_need(c);
	/*
	 * No batch size given: a quarter of the job's data, at least 16 MiB and
	 * at most the default.  A small job on a full image then commits a few
	 * times, and the groups one commit drains take the next batches' copies
	 * (space_drain_begin()): in one batch, copies that found no new chunk
	 * went to groups still draining, and kept them.
	 */
	if (c->batch_auto) {
		u64 quarter = n.total / 4;

		c->batch = quarter < (16ULL << 20) ? 16ULL << 20 : quarter < c->batch ? quarter : c->batch;
	}
	if (!ret)
		ret = preflight_replay(c, jobs, nr_jobs, &sp, &r);
	if (ret)
		return ret;
	avail = sp.free_data + sp.chunk_data;
	c->st->space_needed = r.peak > 0 ? r.peak : 0;
	/* Mixed block groups: one pool, counted once (format.rst 2.11). */
	if (fs->incompat & BTRFS_FEATURE_INCOMPAT_MIXED_GROUPS)
		sp.meta_after = avail > c->st->space_needed ? avail - c->st->space_needed : 0;
	c->st->space_available = avail;
	c->st->grow_bytes = r.failed ? r.grow : 0;
	/* Several devices never grow (chunk_grow_device()). */
	if (fs->nr_devs > 1 && r.failed)
		return fs_err(fs, -ENOSPC,
			      "not enough free data space: need %llu bytes, %llu are free in the existing data block groups and %llu can be allocated from %llu unallocated bytes of the %u devices; the copies of inode %llu of tree %llu (extents of up to %llu bytes) find no free piece that large after the copies before them (%llu bytes free, the largest piece %llu)",
			      c->st->space_needed, sp.free_data, sp.chunk_data, sp.unalloc, fs->nr_devs,
			      r.fail_ino, r.fail_tree, r.fail_largest, r.fail_free, r.fail_piece);
	/* With --grow, chunk allocation grows the image when it runs out of room. */
	if (r.failed && !fs->may_grow)
		return fs_err(fs, -ENOSPC,
			      "not enough free data space: need %llu bytes, %llu are free in the existing data block groups and %llu can be allocated from %llu unallocated bytes of the device; the copies of inode %llu of tree %llu (extents of up to %llu bytes) find no free piece that large after the copies before them (%llu bytes free, the largest piece %llu); --grow would extend the image by about %llu bytes",
			      c->st->space_needed, sp.free_data, sp.chunk_data, sp.unalloc, r.fail_ino,
			      r.fail_tree, r.fail_largest, r.fail_free, r.fail_piece, r.grow);
	if (sp.meta_after < c->meta_need && !fs->may_grow)
		return fs_err(fs, -ENOSPC,
			      "not enough free metadata space: need %llu bytes, %llu are free in the metadata block groups and %llu can be allocated beside the data copies",
			      c->meta_need, sp.free_meta,
			      sp.meta_after > sp.free_meta ? sp.meta_after - sp.free_meta : 0);
	c->st->bytes_total = n.total;
	return 0;
}

static int cmp_job(const void *a, const void *b)
{
	const struct tree_job *x = a, *y = b;

	/*
	 * Nested subvolumes first when the result is encrypted (their roots
	 * must be encrypted before the directory naming them), else the reverse.
	 */
	if (x->depth != y->depth)
		return (x->depth > y->depth) != x->outer_first ? -1 : 1;
	return x->tree < y->tree ? -1 : x->tree > y->tree;
}

/* Trees to convert: whole ones (--subvol, or all), and --path selections. */
int reenc_plan_jobs(struct fs_info *fs, const struct reencrypt_opts *o,
		    const struct reencrypt_mode_ops *ops, const u64 *all, size_t nr_all,
		    struct tree_job **out, size_t *nr)
{
	struct tree_job *jobs = fault_calloc(nr_all + o->nr_subvols + o->nr_paths + 1, sizeof(*jobs));
	size_t n = 0;

	if (!jobs)
		return fs_err(fs, -ENOMEM, "out of memory");
	if (!o->nr_subvols && !o->nr_paths) {
		for (size_t i = 0; i < nr_all; i++)
			jobs[n++].tree = all[i];
	}
	for (size_t i = 0; i < o->nr_subvols; i++) {
		bool dup = false;

		for (size_t j = 0; j < n; j++)
			dup |= jobs[j].tree == o->subvols[i];
		if (!dup)
			jobs[n++].tree = o->subvols[i];
	}
	for (size_t i = 0; i < o->nr_paths; i++) {
		struct tree_job *j = NULL;

		for (size_t k = 0; k < n; k++)
			if (jobs[k].tree == o->paths[i].tree)
				j = &jobs[k];
		if (j && !j->sel)
			continue;	/* the whole tree is converted anyway */
		if (!j) {
			j = &jobs[n++];
			j->tree = o->paths[i].tree;
			j->sel = fault_calloc(o->nr_paths, sizeof(u64));
			if (!j->sel) {
				for (size_t k = 0; k < n; k++)
					free(jobs[k].sel);
				free(jobs);
				return fs_err(fs, -ENOMEM, "out of memory");
			}
		}
		if (j->sel)
			j->sel[j->nsel++] = o->paths[i].dir;
	}
	for (size_t i = 0; i < n; i++) {
		jobs[i].depth = subvol_depth(fs, jobs[i].tree);
		jobs[i].outer_first = ops->outer_first;
	}
	qsort(jobs, n, sizeof(*jobs), cmp_job);
	*out = jobs;
	*nr = n;
	return 0;
}
