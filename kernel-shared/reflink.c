// SPDX-License-Identifier: GPL-2.0
/*
 * Offline FICLONERANGE (Documentation/format.rst section 10).
 *
 * The source items of the range are copied into memory first, so a clone
 * within one file sees the source as it was; then the destination range is
 * emptied by the rules of the kernel's btrfs_drop_extents (whole items go,
 * items reaching in are trimmed or split), except that every trim, split and
 * move also moves or copies the extent context item (the v7 "ctx gap" is
 * never reproduced); then the clipped source items are inserted with a data
 * reference each and, when encrypted, a byte copy of their context.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/fault.h"
#include "kernel-shared/reflink.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/fscrypt-item.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/data-write.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "common/containers.h"
#include "common/utils.h"

struct src_item {
	struct btrfs_key key;
	u32 size;
	u8 *data;		/* the EXTENT_DATA item */
	u32 ctx_size;
	u8 ctx[FSCRYPT_EXTENT_CONTEXT_MAX_SIZE];
};

struct src_items {
	struct src_item *v;
	size_t nr, cap;
};

static void src_items_free(struct src_items *s)
{
	for (size_t i = 0; i < s->nr; i++)
		free(s->v[i].data);
	free(s->v);
}

static inline u64 round_up_to(u64 x, u64 a)
{
	return (x + a - 1) / a * a;
}

/* End of the file range an EXTENT_DATA item covers (inline: rounded to a sector). */
static u64 item_end(const struct fs_info *fs, const struct btrfs_key *k, const u8 *data, u32 size)
{
	const struct btrfs_file_extent_item *fe = (const void *)data;

	if (fe->type == BTRFS_FILE_EXTENT_INLINE)
		return round_up_to(k->offset + le64_to_cpu(fe->ram_bytes), fs->sectorsize);
	if (size < sizeof(*fe))
		return k->offset;
	return k->offset + le64_to_cpu(fe->num_bytes);
}

static int check_item(struct fs_info *fs, u64 ino, const struct btrfs_key *k, u32 size,
		      const u8 *data)
{
	const struct btrfs_file_extent_item *fe = (const void *)data;

	if (size < BTRFS_FILE_EXTENT_INLINE_DATA_START ||
	    (fe->type != BTRFS_FILE_EXTENT_INLINE && size < sizeof(*fe)) ||
	    fe->type > BTRFS_FILE_EXTENT_PREALLOC)
		return fs_err(fs, -EUCLEAN, "inode %llu: bad file extent item at %llu", ino, k->offset);
	return 0;
}

/*
 * Find the first EXTENT_DATA item of ino that ends after `start` and begins
 * before `end`.  Returns 0 with its key, 1 if none, <0 on error.
 */
static int first_overlap(struct trans *t, struct trans_root *root, u64 ino, u64 start, u64 end,
			 struct btrfs_key *out)
{
	struct fs_info *fs = t->fs;
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, start };
	struct btrfs_path p;
	int ret = search_slot(fs, &root->ref, &key, &p);

	if (ret < 0)
		return ret;
	/* The item before may reach into the range. */
	if (ret == 1 && prev_item(fs, &p) == 0) {
		struct btrfs_key k;

		path_key(&p, &k);
		if (k.objectid == ino && k.type == BTRFS_EXTENT_DATA_KEY &&
		    !check_item(fs, ino, &k, path_size(&p), path_ptr(&p)) &&
		    item_end(fs, &k, path_ptr(&p), path_size(&p)) > start) {
			*out = k;
			path_release(fs, &p);
			return 0;
		}
		ret = next_item(fs, &p);
		if (ret < 0)
			goto out;
	}
	ret = 1;
	if (path_item_valid(&p)) {
		path_key(&p, out);
		if (out->objectid == ino && out->type == BTRFS_EXTENT_DATA_KEY && out->offset < end)
			ret = 0;
	}
out:
	path_release(fs, &p);
	return ret;
}

static int read_ctx(struct trans *t, struct trans_root *root, u64 ino, u64 off, u8 *buf,
		    u32 *size)
{
	int ret = fscrypt_extent_ctx_read(t->fs, &root->ref, ino, off, buf, size);

	if (ret == 1)
		return fs_err(t->fs, -EUCLEAN,
			      "inode %llu: encrypted extent at %llu has no context item", ino, off);
	if (ret == FSCRYPT_ITEM_SHORT || (!ret && *size > FSCRYPT_EXTENT_CONTEXT_MAX_SIZE))
		return fs_err(t->fs, -EUCLEAN, "inode %llu: context item at %llu has size %u", ino,
			      off, *size);
	return ret;
}

static int collect_source(struct trans *t, struct trans_root *root, u64 ino, u64 start,
			  u64 end, struct src_items *out)
{
	struct fs_info *fs = t->fs;
	u64 pos = start;

	for (;;) {
		struct btrfs_key k;
		struct src_item *it;
		u32 size;
		int ret = first_overlap(t, root, ino, pos, end, &k);

		if (ret)
			return ret > 0 ? 0 : ret;
		{
			struct src_item *n = array_grow(out->v, &out->cap, out->nr, sizeof(*n));

			if (!n)
				return fs_err(fs, -ENOMEM, "out of memory");
			out->v = n;
		}
		it = &out->v[out->nr];
		memset(it, 0, sizeof(*it));
		it->data = fault_malloc(fs->nodesize);
		if (!it->data)
			return fs_err(fs, -ENOMEM, "out of memory");
		out->nr++;
		it->key = k;
		ret = trans_lookup(t, root, &k, it->data, fs->nodesize, &size);
		if (ret)
			return ret < 0 ? ret : -EUCLEAN;
		it->size = size;
		ret = check_item(fs, ino, &k, size, it->data);
		if (ret)
			return ret;
		if (((struct btrfs_file_extent_item *)it->data)->encryption) {
			ret = read_ctx(t, root, ino, k.offset, it->ctx, &it->ctx_size);
			if (ret)
				return ret;
		}
		pos = item_end(fs, &k, it->data, size);
		if (pos <= k.offset)
			return fs_err(fs, -EUCLEAN, "inode %llu: empty file extent at %llu", ino,
				      k.offset);
	}
}

/* Queue a data reference change for an EXTENT_DATA item (holes and inline: none). */
static int item_ref(struct trans *t, u64 root, u64 ino, u64 key_off,
		    const struct btrfs_file_extent_item *fe, int delta)
{
	struct ref_change rc = { 0 };

	if (fe->type == BTRFS_FILE_EXTENT_INLINE || !fe->disk_bytenr)
		return 0;
	rc.bytenr = le64_to_cpu(fe->disk_bytenr);
	rc.num_bytes = le64_to_cpu(fe->disk_num_bytes);
	rc.kind = REF_DATA;
	rc.root = root;
	rc.objectid = ino;
	rc.offset = key_off - le64_to_cpu(fe->offset);	/* wraps, as the kernel's does */
	rc.delta = delta;
	return queue_ref(t, &rc);
}

/* Insert a file extent item (and its context) and take a reference for it. */
static int insert_extent(struct trans *t, struct trans_root *root, u64 ino, u64 off,
			 const u8 *item, u32 size, const u8 *ctx, u32 ctx_size)
{
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, off };
	const struct btrfs_file_extent_item *fe = (const void *)item;
	int ret = insert_item(t, root, &key, item, size);

	if (ret)
		return ret == -EEXIST ? fs_err(t->fs, -EUCLEAN,
					       "inode %llu: extent at %llu already exists", ino, off)
				      : ret;
	if (file_extent_has_ctx(fe)) {
		ret = fscrypt_extent_ctx_insert(t, root, ino, off, ctx, ctx_size);
		if (ret)
			return ret;
	}
	return item_ref(t, root->ref.objectid, ino, off, fe, 1);
}

/*
 * Empty [start, end) of ino: btrfs_drop_extents' four cases, each keeping
 * exactly one context item per encrypted EXTENT_DATA item.
 */
static int drop_range(struct trans *t, struct trans_root *root, u64 ino, u64 start, u64 end)
{
	struct fs_info *fs = t->fs;
	u64 pos = start;

	while (pos < end) {
		struct btrfs_key k;
		u8 item[sizeof(struct btrfs_file_extent_item)];
		u8 ctx[FSCRYPT_EXTENT_CONTEXT_MAX_SIZE];
		struct btrfs_file_extent_item *fe = (void *)item;
		u32 size, ctx_size = 0;
		u64 ks, ke;
		bool inl, enc;
		int ret = first_overlap(t, root, ino, pos, end, &k);

		if (ret)
			return ret > 0 ? 0 : ret;
		memset(item, 0, sizeof(item));
		ret = trans_lookup(t, root, &k, item, sizeof(item), &size);
		if (ret)
			return ret < 0 ? ret : -EUCLEAN;
		ks = k.offset;
		ke = item_end(fs, &k, item, size);
		inl = fe->type == BTRFS_FILE_EXTENT_INLINE;
		enc = file_extent_has_ctx(fe);
		if (enc && (ret = read_ctx(t, root, ino, ks, ctx, &ctx_size)))
			return ret;
		if (inl && (ks < start || ke > end))
			return fs_err(fs, -EOPNOTSUPP,
				      "inode %llu: the range cuts through an inline extent", ino);
		if (ks >= start && ke <= end) {
			/* Wholly inside: the item, its context and its reference go. */
			ret = file_extent_delete_with_ctx(t, root, ino, ks, enc);
			if (!ret)
				ret = item_ref(t, root->ref.objectid, ino, ks, fe, -1);
		} else if (ks < start) {
			/* Reaches in from the left: keep its head; a split keeps its tail too. */
			struct btrfs_path p;
			u8 tail[sizeof(item)];
			struct btrfs_file_extent_item *tf = (void *)tail;

			memcpy(tail, item, sizeof(item));
			ret = search_slot_mod(t, root, &k, &p, 0);
			if (!ret)
				((struct btrfs_file_extent_item *)path_ptr_mut(&p))->num_bytes =
					cpu_to_le64(start - ks);
			path_release(fs, &p);
			if (!ret && ke > end) {
				tf->offset = cpu_to_le64(le64_to_cpu(fe->offset) + (end - ks));
				tf->num_bytes = cpu_to_le64(ke - end);
				ret = insert_extent(t, root, ino, end, tail, size, ctx, ctx_size);
			}
		} else {
			/* Reaches out to the right: its front is trimmed, its key moves to end. */
			struct btrfs_path p;
			struct btrfs_key nk = { ino, BTRFS_EXTENT_DATA_KEY, end };

			ret = search_slot_mod(t, root, &k, &p, 0);
			if (!ret) {
				struct btrfs_file_extent_item *mf = (void *)path_ptr_mut(&p);

				mf->offset = cpu_to_le64(le64_to_cpu(fe->offset) + (end - ks));
				mf->num_bytes = cpu_to_le64(ke - end);
				ret = set_item_key(t, &p, &nk);
			}
			path_release(fs, &p);
			if (!ret && enc)
				ret = fscrypt_extent_ctx_move(t, root, ino, ks, end, ctx, ctx_size);
		}
		if (ret)
			return ret > 0 ? -EUCLEAN : ret;
		pos = ke < end ? ke : end;
		if (ks >= start && ke > end)
			break;
	}
	return 0;
}

int inode_count_nbytes(struct fs_info *fs, const struct root_ref *root, u64 ino, u64 *nbytes)
{
	struct key_iter it;
	int ret = key_iter_type(&it, fs, root, ino, BTRFS_EXTENT_DATA_KEY, 0);

	if (ret < 0) {
		key_iter_release(&it);
		return ret;
	}
	*nbytes = 0;
	for (; ret == 0; ret = key_iter_next(&it)) {
		const struct btrfs_file_extent_item *fe = (const void *)it.ptr;

		if (it.size >= BTRFS_FILE_EXTENT_INLINE_DATA_START) {
			if (fe->type == BTRFS_FILE_EXTENT_INLINE)
				*nbytes += le64_to_cpu(fe->ram_bytes);
			else if (it.size >= sizeof(*fe) && fe->disk_bytenr)
				*nbytes += le64_to_cpu(fe->num_bytes);
		}
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

/* The inode context (item 41) of an encrypted inode. */
static int read_inode_ctx(struct trans *t, struct trans_root *root, u64 ino,
			  struct fscrypt_context_v2 *ctx)
{
	int ret = fscrypt_inode_ctx_read(t->fs, &root->ref, ino, ctx);

	if (ret > 0)
		return fs_err(t->fs, -EUCLEAN, "encrypted inode %llu has no valid context item", ino);
	return ret;
}

struct clone_plan {
	u64 count;		/* bytes requested (may end unaligned at the source EOF) */
	u64 bcount;		/* block-aligned bytes cloned */
	bool encrypted;
	struct fscrypt_context_v2 dst_ctx;
};

/* The kernel's clone checks (generic_remap_* and btrfs_remap_file_range_prep). */
static int validate(struct trans *t, const struct clone_args *a, struct trans_root *sroot,
		    struct trans_root *droot, const struct btrfs_inode_item *si,
		    const struct btrfs_inode_item *di, struct clone_plan *plan)
{
	struct fs_info *fs = t->fs;
	u64 bs = fs->sectorsize, ssize = le64_to_cpu(si->size), dsize = le64_to_cpu(di->size);
	u64 sflags = le64_to_cpu(si->flags), dflags = le64_to_cpu(di->flags);
	u64 len = a->len;
	bool same = a->src_root == a->dst_root && a->src_ino == a->dst_ino;
	struct btrfs_root_item ri;
	struct trans_root *rt;
	int ret;

	if (S_ISDIR(le32_to_cpu(si->mode)) || S_ISDIR(le32_to_cpu(di->mode)))
		return fs_err(fs, -EISDIR, "cannot clone a directory");
	if (!S_ISREG(le32_to_cpu(si->mode)) || !S_ISREG(le32_to_cpu(di->mode)))
		return fs_err(fs, -EINVAL, "source and destination must be regular files");
	if (!!(sflags & BTRFS_INODE_ENCRYPT) != !!(dflags & BTRFS_INODE_ENCRYPT))
		return fs_err(fs, -EINVAL, "cannot clone between an encrypted and a plain file");
	if ((sflags & BTRFS_INODE_NODATASUM) != (dflags & BTRFS_INODE_NODATASUM))
		return fs_err(fs, -EINVAL,
			      "cannot clone between files with and without data checksums (nodatasum)");
	if (dflags & (BTRFS_INODE_IMMUTABLE | BTRFS_INODE_APPEND))
		return fs_err(fs, -EPERM, "the destination is immutable or append-only");
	rt = trans_get_root(t, BTRFS_ROOT_TREE_OBJECTID);
	if (!rt)
		return trans_root_err(t);
	ret = read_root_item_in(fs, &rt->ref, a->dst_root, &ri, NULL);
	if (ret)
		return ret;
	if (le64_to_cpu(ri.flags) & BTRFS_ROOT_SUBVOL_RDONLY)
		return fs_err(fs, -EROFS, "the destination subvolume %llu is read-only", a->dst_root);
	if (len == 0) {
		if (a->src_off > ssize)
			return fs_err(fs, -EINVAL, "source offset %llu is beyond the end of the file (%llu)",
				      a->src_off, ssize);
		len = ssize - a->src_off;
	}
	if (a->src_off % bs || a->dst_off % bs)
		return fs_err(fs, -EINVAL, "offsets must be multiples of the sector size (%llu)", bs);
	if (a->src_off + len < a->src_off || a->dst_off + len < a->dst_off)
		return fs_err(fs, -EINVAL, "range overflows");
	if (len && a->src_off >= ssize)
		return fs_err(fs, -EINVAL, "source offset %llu is beyond the end of the file (%llu)",
			      a->src_off, ssize);
	if (a->src_off + len > ssize)
		return fs_err(fs, -EINVAL, "source range ends beyond the end of the file (%llu)",
			      ssize);
	/*
	 * The kernel's limit (s_maxbytes): a clone that would end beyond it is
	 * refused with EINVAL, since FICLONERANGE cannot shorten the request.
	 */
	if (a->dst_off > BTRFS_MAX_FILE_SIZE || len > BTRFS_MAX_FILE_SIZE - a->dst_off)
		return fs_err(fs, -EINVAL,
			      "the destination range would end beyond the maximum file size (%llu)",
			      BTRFS_MAX_FILE_SIZE);
	plan->count = len;
	if (a->src_off + len == ssize)
		plan->bcount = round_up_to(ssize, bs) - a->src_off;
	else if (len % bs)
		return fs_err(fs, -EINVAL, "length must be a multiple of the sector size unless it reaches the end of the source");
	else
		plan->bcount = len;
	if (same && a->dst_off + plan->bcount > a->src_off &&
	    a->dst_off < a->src_off + plan->bcount)
		return fs_err(fs, -EINVAL, "source and destination ranges overlap in one file");
	if (len % bs && a->dst_off + len < dsize)
		return fs_err(fs, -EINVAL,
			      "a partial last block can only be cloned to or beyond the destination's end of file");
	if (a->dst_off > dsize && dsize % bs)
		return fs_err(fs, -EOPNOTSUPP,
			      "cloning beyond an unaligned end of file needs the last block rewritten, which is not supported offline");
	plan->encrypted = dflags & BTRFS_INODE_ENCRYPT;
	if (plan->encrypted)
		return read_inode_ctx(t, droot, a->dst_ino, &plan->dst_ctx);
	(void)sroot;
	return 0;
}

/* Every encrypted source extent must carry the destination policy's key and mode. */
static int check_contexts(struct trans *t, const struct clone_plan *plan, const struct src_items *s)
{
	for (size_t i = 0; plan->encrypted && i < s->nr; i++) {
		const struct src_item *it = &s->v[i];
		const struct fscrypt_extent_context *c = (const void *)it->ctx;

		if (!it->ctx_size)
			continue;
		if (c->version != FSCRYPT_EXTENT_CONTEXT_V1)
			return fs_err(t->fs, -EINVAL, "extent at %llu has context version %u",
				      it->key.offset, c->version);
		if (memcmp(c->master_key_identifier, plan->dst_ctx.master_key_identifier,
			   FSCRYPT_KEY_IDENTIFIER_SIZE))
			return fs_err(t->fs, -EINVAL,
				      "extent at %llu is encrypted with another master key than the destination's policy",
				      it->key.offset);
		if (c->encryption_mode != plan->dst_ctx.contents_mode)
			return fs_err(t->fs, -EINVAL,
				      "extent at %llu uses contents mode %u, the destination's policy mode %u",
				      it->key.offset, c->encryption_mode, plan->dst_ctx.contents_mode);
	}
	return 0;
}

/*
 * A source inline extent: copied inline when it lands at offset 0 of a
 * destination no longer than it, else written as a regular extent (the
 * kernel copies it through the page cache then).
 */
static int clone_inline(struct trans *t, struct trans_root *droot, const struct clone_args *a,
			const struct src_item *it, u64 dst_size)
{
	const struct btrfs_file_extent_item *fe = (const void *)it->data;
	u64 datal = le64_to_cpu(fe->ram_bytes);
	u32 inl = it->size - BTRFS_FILE_EXTENT_INLINE_DATA_START;
	struct btrfs_key key = { a->dst_ino, BTRFS_EXTENT_DATA_KEY, a->dst_off };

	if (a->dst_off == 0 && dst_size <= datal)
		return insert_item(t, droot, &key, it->data, it->size);
	if (fe->compression)
		return fs_err(t->fs, -EOPNOTSUPP,
			      "copying a compressed inline extent into the middle of a file is not supported");
	return data_write_new_extent(t, droot, a->dst_ino, a->dst_off,
				     it->data + BTRFS_FILE_EXTENT_INLINE_DATA_START,
				     inl < datal ? inl : datal);
}

static int clone_items(struct trans *t, struct trans_root *droot, const struct clone_args *a,
		       const struct clone_plan *plan, const struct src_items *s, u64 dst_size)
{
	struct fs_info *fs = t->fs;
	bool no_holes = fs->incompat & BTRFS_FEATURE_INCOMPAT_NO_HOLES;
	u64 send = a->src_off + plan->bcount, covered = a->dst_off;
	int ret;

	for (size_t i = 0; i < s->nr; i++) {
		const struct src_item *it = &s->v[i];
		const struct btrfs_file_extent_item *fe = (const void *)it->data;
		u64 ks = it->key.offset, ke = item_end(fs, &it->key, it->data, it->size);
		u64 cs = ks > a->src_off ? ks : a->src_off, ce = ke < send ? ke : send;
		u64 doff = a->dst_off + (cs - a->src_off);
		u8 item[sizeof(struct btrfs_file_extent_item)];
		struct btrfs_file_extent_item *nf = (void *)item;

		if (cs >= ce)
			continue;
		if (!no_holes && doff > covered) {
			ret = data_insert_hole(t, droot, a->dst_ino, covered, doff - covered);
			if (ret)
				return ret;
		}
		covered = a->dst_off + (ce - a->src_off);
		if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
			ret = clone_inline(t, droot, a, it, dst_size);
			if (ret)
				return ret;
			continue;
		}
		if (!fe->disk_bytenr && no_holes)
			continue;
		memcpy(item, it->data, sizeof(item));
		nf->offset = cpu_to_le64(le64_to_cpu(fe->offset) + (cs - ks));
		nf->num_bytes = cpu_to_le64(ce - cs);
		ret = insert_extent(t, droot, a->dst_ino, doff, item, sizeof(item), it->ctx,
				    it->ctx_size);
		if (ret)
			return ret;
	}
	if (!no_holes && covered < a->dst_off + plan->bcount)
		return data_insert_hole(t, droot, a->dst_ino, covered,
					a->dst_off + plan->bcount - covered);
	return 0;
}

int clone_range(struct trans *t, struct clone_args *a)
{
	struct fs_info *fs = t->fs;
	struct trans_root *sroot = trans_get_root(t, a->src_root);
	struct trans_root *droot = trans_get_root(t, a->dst_root);
	struct btrfs_inode_item si, di;
	struct clone_plan plan = { 0 };
	struct src_items src = { 0 };
	u64 dsize, nbytes;
	int ret;

	if (!sroot || !droot)
		return trans_root_err(t);
	ret = trans_inode_read(t, sroot, a->src_ino, &si);
	if (ret > 0)
		return fs_err(fs, -ENOENT, "source inode %llu not found in tree %llu",
			      a->src_ino, a->src_root);
	if (!ret)
		ret = trans_inode_read(t, droot, a->dst_ino, &di);
	if (ret > 0)
		return fs_err(fs, -ENOENT, "destination inode %llu not found in tree %llu",
			      a->dst_ino, a->dst_root);
	if (ret)
		return ret;
	ret = validate(t, a, sroot, droot, &si, &di, &plan);
	a->cloned = plan.count;
	if (ret || plan.count == 0)
		return ret;
	dsize = le64_to_cpu(di.size);
	ret = collect_source(t, sroot, a->src_ino, a->src_off, a->src_off + plan.bcount, &src);
	if (!ret)
		ret = check_contexts(t, &plan, &src);
	/* Growing past the old end: without NO_HOLES the gap gets a hole item. */
	if (!ret && a->dst_off > dsize && !(fs->incompat & BTRFS_FEATURE_INCOMPAT_NO_HOLES))
		ret = data_insert_hole(t, droot, a->dst_ino, dsize, a->dst_off - dsize);
	if (!ret)
		ret = drop_range(t, droot, a->dst_ino, a->dst_off, a->dst_off + plan.bcount);
	if (!ret)
		ret = clone_items(t, droot, a, &plan, &src, dsize);
	src_items_free(&src);
	if (ret)
		return ret;
	/* The destination inode: new size, nbytes as counted from its extents, times. */
	ret = trans_inode_read(t, droot, a->dst_ino, &di);
	if (!ret)
		ret = inode_count_nbytes(fs, &droot->ref, a->dst_ino, &nbytes);
	if (ret)
		return ret < 0 ? ret : -EUCLEAN;
	if (a->dst_off + plan.count > le64_to_cpu(di.size))
		di.size = cpu_to_le64(a->dst_off + plan.count);
	di.nbytes = cpu_to_le64(nbytes);
	di.transid = cpu_to_le64(t->transid);
	di.sequence = cpu_to_le64(le64_to_cpu(di.sequence) + 1);
	di.mtime.sec = di.ctime.sec = cpu_to_le64(a->now_sec);
	di.mtime.nsec = di.ctime.nsec = cpu_to_le32(a->now_nsec);
	return trans_inode_write(t, droot, a->dst_ino, &di);
}
