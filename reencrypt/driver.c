// SPDX-License-Identifier: GPL-2.0
/*
 * The re-encryption driver: the mode table, transactions committed in
 * batches, inode contexts, the walk of one subvolume (files and directories
 * in the order of reencrypt.h) and, after encrypt, the wipe of free space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "common/fault.h"
#include "reencrypt/internal.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/fscrypt-item.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/chunk-alloc.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/wipe-queue.h"
#include "common/containers.h"
#include "common/key-input.h"
#include "common/messages.h"
#include "common/utils.h"

#define DEFAULT_BATCH (256ULL << 20)

/* ---- modes ---------------------------------------------------------------- */

static const struct reencrypt_mode_ops mode_table[] = {
	[REENCRYPT_ENCRYPT] = { "encrypt", false, true, false, REENCRYPT_FILES_THEN_DIRS, false,
				false },
	[REENCRYPT_DECRYPT] = { "decrypt", true, false, false, REENCRYPT_DIRS_THEN_FILES, true,
				true },
	[REENCRYPT_REKEY] = { "rekey", true, true, true, REENCRYPT_BY_DIRECTORY, true, false },
};

const struct reencrypt_mode_ops *reencrypt_mode_ops(enum reencrypt_mode mode)
{
	if ((unsigned int)mode >= sizeof(mode_table) / sizeof(mode_table[0]))
		return NULL;
	return &mode_table[mode];
}

/* ---- small helpers ------------------------------------------------------ */

/*
 * Nonces come from getrandom(), drawn 4 KiB at a time: one system call per
 * 256 nonces instead of one each (a second of system time on 40k files).
 */
int reenc_random_bytes(struct fs_info *fs, u8 *buf, size_t len)
{
	static u8 pool[4096];
	static size_t avail;

	while (len) {
		size_t n;

		if (!avail) {
			size_t got = 0;

			while (got < sizeof(pool)) {
				ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);

				if (r < 0)
					return fs_err(fs, -errno, "getrandom failed");
				got += r;
			}
			avail = sizeof(pool);
		}
		n = len < avail ? len : avail;
		memcpy(buf, pool + sizeof(pool) - avail, n);
		explicit_bzero(pool + sizeof(pool) - avail, n);	/* each byte used once */
		avail -= n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Whether the run wipes what held plaintext (encrypt and rekey, unless --no-wipe or --dry-run). */
static bool wipes(const struct reenc *c)
{
	return c->ops->dst_encrypted && c->o->wipe && !c->o->dry_run;
}

static void on_free(u64 start, u64 len, void *arg)
{
	struct reenc *c = arg;
	struct range *n = array_grow(c->freed, &c->cap_freed, c->nr_freed, sizeof(*n));

	if (!n)
		return;	/* wiping is best effort; the image is consistent either way */
	c->freed = n;
	c->freed[c->nr_freed++] = (struct range){ start, len };
}

/* Whether every device is an image file (holes can be punched in all). */
static bool image_is_file(struct fs_info *fs)
{
	for (u32 d = 0; d < fs->nr_devs; d++) {
		struct stat st;

		if (fs->devs[d].fd < 0 || fstat(fs->devs[d].fd, &st) || !S_ISREG(st.st_mode))
			return false;
	}
	return true;
}

int reenc_begin(struct reenc *c)
{
	int ret;

	if (c->t)
		return 0;
	ret = trans_begin(c->fs, &c->t);
	if (ret)
		return ret;
	/*
	 * Block groups a batch empties stay until the last commit (finish_run()):
	 * the next batches reuse their space, as the preflight's replay assumes,
	 * instead of new chunks being made beside removed ones.
	 */
	c->t->keep_emptied = true;
	if (!c->image_file) {
		c->t->on_free = on_free;
		c->t->on_free_arg = c;
	}
	return 0;
}

/* -v: one line per committed batch, with what it converted and the run so far. */
static void show_batch(struct reenc *c)
{
	const struct reencrypt_stats *st = c->st;
	double secs;

	if (g_verbose <= 0)
		return;
	secs = mono_secs();
	verbose("%s: commit %llu, generation %llu: %llu inodes, %llu extents, %llu bytes in %.2f s; %llu of %llu bytes done",
		c->ops->name, (unsigned long long)st->commits, (unsigned long long)c->fs->generation,
		(unsigned long long)(st->inodes - c->shown.inodes),
		(unsigned long long)(st->extents - c->shown.extents),
		(unsigned long long)(st->bytes - c->shown.bytes), secs - c->shown.secs,
		(unsigned long long)st->bytes, (unsigned long long)st->bytes_total);
	c->shown.inodes = st->inodes;
	c->shown.extents = st->extents;
	c->shown.bytes = st->bytes;
	c->shown.secs = secs;
}

static int commit_tx(struct reenc *c, bool force)
{
	int ret;

	if (!c->t)
		return 0;
	ret = c->o->dry_run ? 0 : reenc_flush_copies(c);
	if (ret)
		return ret;
	/* Nothing changed: no new generation (re-running a finished job is a no-op). */
	if (c->o->dry_run || (!force && trans_is_empty(c->t))) {
		trans_abort(c->t);
		c->t = NULL;
		c->meta_free = 0;
		return 0;
	}
	ret = trans_commit(c->t);
	c->t = NULL;
	c->since_commit = 0;
	c->meta_free = 0;
	c->st->commits++;
	if (!ret)
		show_batch(c);
	/*
	 * Chunks the commit removed (emptied block groups, at the last commit)
	 * held plaintext.  On a device the queue wipes them while wipe_freed()
	 * wipes the rest, and before a later chunk may take their space
	 * (chunk_alloc() drains the queue first).  In an image file
	 * wipe_freed() punches all unallocated space, theirs too.
	 */
	for (size_t i = 0; !ret && wipes(c) && i < c->fs->nr_freed_dev; i++) {
		if (c->wipeq)
			ret = wipe_queue_add(c->wipeq, c->fs->freed_dev[i].dev,
					     c->fs->freed_dev[i].offset, c->fs->freed_dev[i].len);
		if (!ret)
			c->st->wiped_bytes += c->fs->freed_dev[i].len;
	}
	return ret;
}

int reenc_commit(struct reenc *c)
{
	return commit_tx(c, false);
}

int reenc_reserve_meta(struct reenc *c, u64 *free)
{
	int ret = space_free_bytes(c->t, BTRFS_BLOCK_GROUP_METADATA, free);

	while (!ret && *free < c->meta_need) {
		u64 before = *free;

		ret = chunk_alloc(c->t, BTRFS_BLOCK_GROUP_METADATA, c->fs->nodesize);
		if (ret == -ENOSPC)
			return 0;	/* the preflight refuses, or --grow is on */
		if (!ret)
			ret = space_free_bytes(c->t, BTRFS_BLOCK_GROUP_METADATA, free);
		if (!ret && *free <= before)
			break;
	}
	return ret;
}

/*
 * Whether the running batch should be committed before the next inode:
 * the tree blocks it made dirty (each a new block, its old one free only
 * after the commit), twice over for what the commit itself changes, plus
 * 64 blocks for the next inode, would outgrow the metadata space that was
 * free when the batch began.
 */
static int meta_tight(struct reenc *c, bool *tight)
{
	u64 nodesize = c->fs->nodesize;
	int ret = 0;

	*tight = false;
	if (!c->t)
		return 0;
	if (!c->meta_free)
		ret = space_free_bytes(c->t, BTRFS_BLOCK_GROUP_METADATA, &c->meta_free);
	*tight = !ret && 2 * c->t->nr_dirty * nodesize + 64 * nodesize > c->meta_free;
	return ret;
}


/* ---- inode contexts --------------------------------------------------------- */

static bool same_key(const struct fscrypt_context_v2 *ctx, const struct fscrypt_master_key *mk)
{
	return !memcmp(ctx->master_key_identifier, mk->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE);
}

int reenc_inode_todo(struct reenc *c, struct trans_root *root, const struct inode_info *ii,
		     struct fscrypt_context_v2 *ctx, bool *todo)
{
	int ret;

	*todo = false;
	if (!(ii->flags & BTRFS_INODE_ENCRYPT)) {
		*todo = !c->ops->src_encrypted;
		return 0;
	}
	ret = fscrypt_inode_ctx_read(c->fs, &root->ref, ii->ino, ctx);
	if (ret > 0)
		return fs_err(c->fs, -EUCLEAN, "encrypted inode %llu has no valid context item",
			      ii->ino);
	if (ret)
		return ret;
	if (c->ops->src_encrypted && same_key(ctx, c->src_mk))
		*todo = true;
	else if (!c->ops->dst_encrypted || !same_key(ctx, c->dst_mk))
		return fs_err(c->fs, -EKEYREJECTED,
			      "inode %llu in tree %llu is encrypted with another master key",
			      ii->ino, root->ref.objectid);
	return 0;
}

/* Set or clear the ENCRYPT flag of ino. */
static int set_encrypt_flag(struct reenc *c, struct trans_root *root, u64 ino, bool on)
{
	struct btrfs_inode_item ii;
	int ret = trans_inode_read(c->t, root, ino, &ii);

	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	if (on)
		ii.flags = cpu_to_le64(le64_to_cpu(ii.flags) | BTRFS_INODE_ENCRYPT);
	else
		ii.flags = cpu_to_le64(le64_to_cpu(ii.flags) & ~(u64)BTRFS_INODE_ENCRYPT);
	ii.transid = cpu_to_le64(c->t->transid);
	return trans_inode_write(c->t, root, ino, &ii);
}

int reenc_new_inode_ctx(struct reenc *c, struct trans_root *root, u64 ino,
			const struct fscrypt_context_v2 *old, struct fscrypt_context_v2 *ctx)
{
	const struct reencrypt_opts *o = c->o;
	u8 nonce[FSCRYPT_NONCE_SIZE];
	int ret = reenc_random_bytes(c->fs, nonce, sizeof(nonce));

	if (ret)
		return ret;
	if (old && o->keep_policy) {
		*ctx = *old;	/* the policy as it is: modes, flags, data unit size */
		memcpy(ctx->master_key_identifier, c->dst_mk->identifier,
		       FSCRYPT_KEY_IDENTIFIER_SIZE);
		memcpy(ctx->nonce, nonce, FSCRYPT_NONCE_SIZE);
	} else {
		fscrypt_context_init(ctx, o->contents_mode, o->filenames_mode, o->policy_flags,
				     c->dst_mk->identifier, nonce);
	}
	explicit_bzero(nonce, sizeof(nonce));
	ret = old ? fscrypt_inode_ctx_delete(c->t, root, ino) : 0;
	if (!ret)
		ret = fscrypt_inode_ctx_insert(c->t, root, ino, ctx);
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	return set_encrypt_flag(c, root, ino, true);
}

int reenc_clear_inode_ctx(struct reenc *c, struct trans_root *root, u64 ino)
{
	int ret = fscrypt_inode_ctx_delete(c->t, root, ino);

	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	return set_encrypt_flag(c, root, ino, false);
}

/* ---- driver -------------------------------------------------------------- */

static int cmp_depth_desc(const void *a, const void *b)
{
	const struct inode_info *x = *(struct inode_info *const *)a;
	const struct inode_info *y = *(struct inode_info *const *)b;

	if (x->depth != y->depth)
		return x->depth > y->depth ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * The selected inodes of a tree in the mode's order (reencrypt.h): *out
 * (malloc'ed) and *nr_out.
 */
static int order_inodes(struct reenc *c, struct inode_info *inodes, size_t nr,
			struct inode_info ***out, size_t *nr_out)
{
	enum reencrypt_order order = c->ops->order;
	struct inode_info **v, **dirs;
	size_t n = 0, nr_dirs = 0;

	if (order == REENCRYPT_BY_DIRECTORY) {
		int ret = reenc_order_by_dir(inodes, nr, out, nr_out);

		return ret == -ENOMEM ? fs_err(c->fs, -ENOMEM, "out of memory") : ret;
	}
	v = fault_malloc((nr + 1) * sizeof(*v));
	dirs = fault_malloc((nr + 1) * sizeof(*dirs));
	if (!v || !dirs) {
		free(v);
		free(dirs);
		return fs_err(c->fs, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nr; i++)
		if (S_ISDIR(inodes[i].mode) && inodes[i].selected)
			dirs[nr_dirs++] = &inodes[i];
	qsort(dirs, nr_dirs, sizeof(*dirs), cmp_depth_desc);
	if (order == REENCRYPT_DIRS_THEN_FILES)
		for (size_t j = 0; j < nr_dirs; j++)
			v[n++] = dirs[nr_dirs - 1 - j];
	for (size_t i = 0; i < nr; i++)
		if (!S_ISDIR(inodes[i].mode) && inodes[i].selected)
			v[n++] = &inodes[i];
	if (order == REENCRYPT_FILES_THEN_DIRS)
		for (size_t j = 0; j < nr_dirs; j++)
			v[n++] = dirs[j];
	free(dirs);
	*out = v;
	*nr_out = n;
	return 0;
}

int reenc_tree_inventory(struct reenc *c, u64 tree, const u64 *sel, size_t nsel,
			 struct inode_info **inodes, struct inode_info ***order, size_t *nr_order)
{
	struct fs_info *fs = c->fs;
	struct root_ref rr;
	size_t nr;
	int ret = find_root(fs, tree, &rr);

	*inodes = NULL;
	*order = NULL;
	*nr_order = 0;
	if (!ret)
		ret = reenc_list_inodes(fs, &rr, inodes, &nr);
	if (ret)
		return ret;
	reenc_compute_depths(*inodes, nr);
	for (size_t i = 0; i < nr; i++)
		(*inodes)[i].selected = !nsel;
	if (nsel)
		ret = reenc_mark_selected(fs, &rr, *inodes, nr, sel, nsel);
	if (!ret)
		ret = order_inodes(c, *inodes, nr, order, nr_order);
	if (ret) {
		free(*inodes);
		*inodes = NULL;
	}
	return ret;
}

/* Data extents of ii that fit nowhere, even after a commit: what there is. */
static int no_room(struct reenc *c, u64 tree, const struct inode_info *ii)
{
	u64 need = 0, largest = 0, free_bytes = 0, piece = 0, unalloc = 0;

	for (size_t i = 0; i < c->resv.nr; i++) {
		need += c->resv.len[i];
		largest = c->resv.len[i] > largest ? c->resv.len[i] : largest;
	}
	space_free_bytes(c->t, BTRFS_BLOCK_GROUP_DATA, &free_bytes);
	space_largest_free(c->t, BTRFS_BLOCK_GROUP_DATA, &piece);
	chunk_dev_unallocated(c->t, &unalloc, NULL);
	c->resv.nr = 0;
	return fs_err(c->fs, -ENOSPC,
		      "not enough free data space for inode %llu of tree %llu: its copies need %llu bytes in extents of up to %llu bytes; %llu are free in the data block groups (the largest free piece %llu bytes) and %llu bytes of the device are unallocated",
		      ii->ino, tree, need, largest, free_bytes, piece, unalloc);
}

/*
 * Begin (or go on with) the transaction for inode ii of tree, *root that
 * tree in it; for a regular file to do, its copies' data extents are
 * reserved first (c->resv, taken by data.c in order).  When they do not fit
 * beside the batch's copies, the batch is committed first: its old extents
 * are free then.  The preflight replayed the same (plan.c): a file that
 * does not fit even after a commit was refused there.
 */
static int begin_inode(struct reenc *c, u64 tree, const struct inode_info *ii,
		       struct trans_root **root)
{
	struct fscrypt_context_v2 ctx;
	bool todo, fits = false;
	int ret = 0;

	bool tight;

	ret = meta_tight(c, &tight);
	if (!ret && tight)
		ret = reenc_commit(c);
	for (int pass = 0; !ret && !fits && pass < 2; pass++) {
		if (pass)
			ret = reenc_commit(c);
		if (!ret)
			ret = reenc_begin(c);
		*root = ret ? NULL : trans_get_root(c->t, tree);
		if (!ret && !*root)
			ret = trans_root_err(c->t);
		if (ret || !S_ISREG(ii->mode))
			return ret;
		ret = reenc_inode_todo(c, *root, ii, &ctx, &todo);
		if (ret || !todo)
			return ret;
		ret = reenc_reserve_file(c, *root, ii->ino, &fits);
	}
	if (!ret && fits)
		c->reinline_budget -= c->resv.reinline_cost;
	return ret || fits ? ret : no_room(c, tree, ii);
}

static int reencrypt_subvol(struct reenc *c, u64 tree, const u64 *sel, size_t nsel)
{
	struct inode_info *inodes = NULL, **order = NULL;
	size_t nr_order = 0;
	/* The inventory comes from the committed tree: commit what is pending first. */
	int ret = reenc_commit(c);

	if (!ret)
		ret = reenc_tree_inventory(c, tree, sel, nsel, &inodes, &order, &nr_order);
	for (size_t i = 0; !ret && i < nr_order; i++) {
		struct trans_root *root = NULL;

		ret = begin_inode(c, tree, order[i], &root);
		if (!ret && S_ISDIR(order[i]->mode))
			ret = reencrypt_dir(c, root, order[i]);
		else if (!ret)
			ret = reencrypt_nondir(c, root, order[i]);
		reenc_unreserve(c);
	}
	free(order);
	free(inodes);
	return ret;
}

static int wipe_range(u64 start, u64 len, void *arg)
{
	struct reenc *c = arg;
	int ret = wipe_logical(c->fs, start, len);

	if (!ret)
		c->st->wiped_bytes += len;
	return ret;
}

static int wipe_dev_range(u32 dev, u64 start, u64 len, void *arg)
{
	struct reenc *c = arg;

	return wipe_physical(c->fs, dev, start, len);
}

/*
 * After encrypt: make every free byte of the metadata and system block
 * groups read as zeros (old tree blocks held plaintext names and inline
 * data, including blocks freed before this run), and the data extents this
 * run freed that nothing uses now.  A crash in here leaves zeros in free
 * space only: harmless.
 */
static int wipe_freed(struct reenc *c)
{
	struct fs_info *fs = c->fs;
	struct trans *t;
	int ret = trans_begin(fs, &t), qret;

	if (ret)
		return ret;
	/*
	 * An image file gets holes punched over all its free space, data too:
	 * cheap, and it also clears plaintext freed by an earlier, interrupted
	 * run.  On a device, writing zeros over all free data would take long:
	 * only what this run freed is zeroed there.
	 */
	ret = space_for_each_free(t, BTRFS_BLOCK_GROUP_METADATA | BTRFS_BLOCK_GROUP_SYSTEM |
				  (c->image_file ? BTRFS_BLOCK_GROUP_DATA : 0), wipe_range, c);
	/* Unallocated device space: removed chunks held plaintext (an interrupted run's too). */
	if (!ret && c->image_file)
		ret = chunk_for_each_unallocated(t, wipe_dev_range, c);
	/* Freed data (a file had all of it above): whatever part of each range is still free. */
	for (size_t i = 0; !ret && i < c->nr_freed; i++) {
		u64 start, len, flags;

		if (block_group_of(t, c->freed[i].start, &start, &len, &flags) ||
		    !(flags & BTRFS_BLOCK_GROUP_DATA) || (flags & BTRFS_BLOCK_GROUP_METADATA))
			continue;
		ret = space_free_subranges(t, c->freed[i].start, c->freed[i].len, wipe_range, c);
	}
	trans_abort(t);
	/* The removed chunks' stripes, wiped by the queue meanwhile (disjoint from the above). */
	qret = wipe_queue_drain(c->wipeq);
	ret = ret ? ret : qret;
	if (!ret)
		ret = fs_sync_devices(fs);
	return ret;
}

/* The data pipeline of the run: the master key, csums through the one csum callback. */
static int start_pipeline(struct reenc *c)
{
	struct extent_io_params params = { 0 };
	int ret;

	params.fd = c->fs->fd;
	params.dst_fd = -1;
	if (c->fs->nr_devs > 1) {	/* copies go to every device (data.c) */
		params.fds = c->fs->dev_fds;
		params.nfds = c->fs->nr_devs;
	}
	params.unit_size = c->fs->sectorsize;
	params.threads = c->o->threads;
	params.key = c->src_mk;	/* each job names the key of each side (data.c) */
	params.profile = FSCRYPT_PROFILE_V7;
	params.contents_mode = c->o->contents_mode;
	params.process = extent_io_csum_process;
	params.pwrite_fn = fault_pwrite;
	params.start_writeback = true;	/* copies reach the disk while the trees are worked on */
	ret = extent_io_new(&c->io, &params);
	if (ret)
		fs_err(c->fs, ret, "cannot start the data pipeline");
	return ret;
}

/* After decrypt: no item 41 left anywhere, so the incompat bit goes. */
static int clear_incompat_if_unused(struct reenc *c, const u64 *all, size_t nr_all)
{
	struct fs_info *fs = c->fs;
	bool any;
	int ret = reenc_anything_encrypted(fs, all, nr_all, &any);

	if (ret || any || !(fs->incompat & BTRFS_FEATURE_INCOMPAT_ENCRYPT))
		return ret;
	/* A commit with no changes writes the superblock without the bit. */
	fs->incompat &= ~BTRFS_FEATURE_INCOMPAT_ENCRYPT;
	fs->super.incompat_flags = cpu_to_le64(fs->incompat);
	c->st->incompat_changed = true;
	ret = reenc_begin(c);
	if (!ret)
		ret = commit_tx(c, true);	/* the superblock alone changes */
	return ret;
}

/* Stop the pipeline (after its copies) and free the run's tables. */
static void reenc_release(struct reenc *c)
{
	if (c->io)
		reenc_drop_copies(c);
	free(c->pend);
	free(c->fly);
	free(c->fly_jobs);
	extent_io_free(c->io);
	u64map_free(&c->map);
	free(c->freed);
	free(c->resv.len);
	free(c->resv.old);
	free(c->resv.at);
	secret_free(c->plain, PLAIN_SCRATCH);
}

/*
 * The last commit removes the block groups the batches emptied (a commit of
 * its own when the last batch was committed already).
 */
static int last_commit(struct reenc *c)
{
	bool kept = c->fs->nr_emptied_bgs > 0;
	int ret = kept ? reenc_begin(c) : 0;

	if (c->t)
		c->t->keep_emptied = false;
	return ret ? ret : commit_tx(c, kept);
}

/* After the last inode: the last commit, then the incompat bit or the wipe. */
static int finish_run(struct reenc *c, const u64 *all, size_t nr_all)
{
	int ret = last_commit(c);

	if (!ret && !c->ops->dst_encrypted && !c->o->dry_run)
		ret = clear_incompat_if_unused(c, all, nr_all);
	if (!ret && wipes(c)) {
		ret = wipe_freed(c);
		if (!ret)
			ret = reset_backup_roots(c->fs);
	}
	return ret;
}

int reencrypt_image(struct fs_info *fs, const struct reencrypt_opts *o, struct reencrypt_stats *st)
{
	struct reenc c = { .fs = fs, .o = o, .st = st, .shown.secs = mono_secs() };
	struct tree_job *jobs = NULL;
	size_t nr_jobs = 0;
	u64 *all = NULL, *trees = NULL;
	size_t nr_all;
	u64 reserved;
	int ret, wret;

	memset(st, 0, sizeof(*st));
	u64map_init(&c.map, sizeof(struct extent_map_entry));
	c.ops = reencrypt_mode_ops(o->mode);
	if (!c.ops)
		return fs_err(fs, -EINVAL, "no such conversion mode");
	c.src_mk = o->mk;
	c.dst_mk = c.ops->new_key ? o->new_mk : o->mk;
	if (!c.src_mk || !c.dst_mk || (c.ops->new_key && !memcmp(c.src_mk->identifier,
			c.dst_mk->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE)))
		return fs_err(fs, -EINVAL, "%s needs two different keys", c.ops->name);
	c.plain = secret_alloc(PLAIN_SCRATCH);
	if (!c.plain)
		return fs_err(fs, -ENOMEM, "out of memory");
	c.batch = o->batch_bytes ? o->batch_bytes : DEFAULT_BATCH;
	c.batch_auto = !o->batch_bytes;
#ifdef EXTCRYPT_FAULT_INJECTION
	/* Test builds: small batches, so that a small image has many commits to cut between. */
	if (getenv("EXTCRYPT_BATCH_BYTES")) {
		c.batch = strtoull(getenv("EXTCRYPT_BATCH_BYTES"), NULL, 0) ?: 1;
		c.batch_auto = false;
	}
#endif
	ret = reenc_list_subvols(fs, &all, &nr_all);
	if (!ret)
		ret = reenc_plan_jobs(fs, o, c.ops, all, nr_all, &jobs, &nr_jobs);
	if (ret)
		goto out;
	c.all_subvols = !o->nr_subvols && !o->nr_paths;
	c.image_file = image_is_file(fs);
	trees = fault_calloc(nr_jobs + 1, sizeof(*trees));
	st->subvols = fault_calloc(nr_jobs + 1, sizeof(*st->subvols));
	if (!trees || !st->subvols) {
		ret = fs_err(fs, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nr_jobs; i++)
		trees[i] = jobs[i].tree;
	st->nr_subvols = nr_jobs;
	ret = reenc_preflight(&c, jobs, nr_jobs);
	if (ret || o->dry_run) {
		/* A dry run stops here: key, policy and space checked, work counted. */
		if (!ret)
			st->bytes = st->bytes_total;
		goto out;
	}
	st->inodes = st->extents = 0;
	ret = start_pipeline(&c);
	/* An image file needs no queue: its final wipe punches all unallocated space. */
	if (!ret && wipes(&c) && !c.image_file)
		ret = wipe_queue_start(fs, &c.wipeq);
	/* The metadata chunks the preflight's replay set aside first, made first. */
	if (!ret)
		ret = reenc_begin(&c);
	if (!ret)
		ret = reenc_reserve_meta(&c, &reserved);
	if (ret)
		goto out;
	/* The incompat bit goes to disk with the first commit, before any encrypted item. */
	if (c.ops->dst_encrypted && !(fs->incompat & BTRFS_FEATURE_INCOMPAT_ENCRYPT)) {
		fs->incompat |= BTRFS_FEATURE_INCOMPAT_ENCRYPT;
		fs->super.incompat_flags = cpu_to_le64(fs->incompat);
		st->incompat_changed = true;
	}
	for (size_t i = 0; !ret && i < nr_jobs; i++) {
		c.cur_tree = jobs[i].tree;
		c.sv = &st->subvols[i];
		c.sv->tree = jobs[i].tree;
		ret = reencrypt_subvol(&c, jobs[i].tree, jobs[i].sel, jobs[i].nsel);
	}
	if (!ret)
		ret = finish_run(&c, all, nr_all);
out:
	/* The wipes still queued finish first: a failed one fails the run. */
	wret = wipe_queue_stop(c.wipeq);
	if (!ret)
		ret = wret;
	if (c.t)
		trans_abort(c.t);
	if (ret && st->incompat_changed && c.ops->dst_encrypted && !st->commits) {
		fs->incompat &= ~BTRFS_FEATURE_INCOMPAT_ENCRYPT;
		fs->super.incompat_flags = cpu_to_le64(fs->incompat);
	}
	reenc_release(&c);
	space_drain_end(fs);
	for (size_t i = 0; i < nr_jobs; i++)
		free(jobs[i].sel);
	free(jobs);
	free(trees);
	free(all);
	return ret;
}

void reencrypt_stats_free(struct reencrypt_stats *st)
{
	free(st->subvols);
	st->subvols = NULL;
}
