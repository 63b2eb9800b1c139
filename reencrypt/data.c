// SPDX-License-Identifier: GPL-2.0
/*
 * File data of re-encryption: every disk extent is copied once through
 * the data pipeline (verify csums, decrypt and/or encrypt, new csums) in
 * batches that overlap the tree work; file extent items are repointed with
 * their extent contexts; inline data and symlink targets are converted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/fault.h"
#include "reencrypt/internal.h"
#include "kernel-shared/compression.h"
#include "kernel-shared/data-write.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/fscrypt-item.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/reflink.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/qgroup.h"
#include "crypto/csum.h"
#include "crypto/fname.h"
#include "common/containers.h"
#include "common/utils.h"

/* Queued copies run when they reach this much data or this many extents. */
#define FLUSH_BYTES (32ULL << 20)
#define FLUSH_COPIES 8192

static u64 extent_refs(struct reenc *c, u64 bytenr);

/* A file's EXTENT_DATA item, copied out of its leaf. */
struct file_item {
	struct btrfs_key key;
	u32 size;
	u8 data[sizeof(struct btrfs_file_extent_item)];
	u8 *inline_data;	/* inline extents: their bytes */
	u32 inline_len;
	bool shared_leaf;	/* another tree may see this item too */
};

static int reinline_candidate(struct reenc *c, struct trans_root *root,
			      const struct file_item *fi, u64 *size);

/* The entry for old usable by ino: shared by all, or private to ino. */
static struct extent_map_entry *map_find(struct reenc *c, u64 old, u64 ino)
{
	struct extent_map_entry *m;
	size_t cursor = 0;

	while ((m = u64map_next(&c->map, old, &cursor)))
		if (!m->owner_ino || m->owner_ino == ino)
			return m;
	return NULL;
}

/* A new zeroed entry for old (pointers into the map die at the next map_add). */
static struct extent_map_entry *map_add(struct reenc *c, u64 old)
{
	struct extent_map_entry *m = u64map_insert(&c->map, old);

	if (m)
		m->old = old;
	return m;
}

/* ---- data ---------------------------------------------------------------- */

/*
 * The next data extent of the file being converted: the one reserved for
 * it (reenc_reserve_file(), in the order the file allocates them), else a
 * new allocation.
 */
static int take_data_extent(struct reenc *c, u64 len, u64 *bytenr)
{
	struct reenc_allocs *r = &c->resv;

	for (size_t j = r->next; j < r->nr; j++) {
		if (r->len[j] != len)
			continue;
		/* Taken out of order (an item not counted): the first of its length. */
		*bytenr = r->at[j];
		r->at[j] = r->at[r->next];
		r->len[j] = r->len[r->next];
		r->next++;
		return 0;
	}
	return alloc_data_extent(c->t, len, bytenr);
}

static int allocs_add(struct fs_info *fs, struct reenc_allocs *a, u64 len, u64 old, bool private)
{
	if (a->nr == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		u64 *l = fault_realloc(a->len, cap * sizeof(u64));

		if (l)
			a->len = l;
		l = l ? fault_realloc(a->old, cap * sizeof(u64)) : NULL;
		if (l)
			a->old = l;
		l = l ? fault_realloc(a->at, cap * sizeof(u64)) : NULL;
		if (l)
			a->at = l;
		if (!l)
			return fs_err(fs, -ENOMEM, "out of memory");
		a->cap = cap;
	}
	a->len[a->nr] = len;
	a->old[a->nr] = private ? old : 0;
	a->nr++;
	return 0;
}

/* Whether old was met before in this file's items (its copy is made once). */
static bool allocs_has(const u64 *olds, size_t nr, u64 old)
{
	for (size_t i = 0; i < nr; i++)
		if (olds[i] == old)
			return true;
	return false;
}

/*
 * What reencrypt_file_data() below allocates, in its order: inline data
 * made a regular extent (a rounded-up sector run), and a copy of each old
 * extent in the source state not copied before (this file's earlier items;
 * with use_map, the run's extent map).  A small file decrypt puts back
 * inline allocates nothing (a->reinline_*; the budget is spent by the
 * caller once the file is sure to be converted).  Without
 * use_map, a->old names the old extents this file's conversion frees (its
 * item is the one reference, in a tree never snapshotted), 0 for the others.
 */
int reenc_file_allocs(struct reenc *c, struct trans_root *root, u64 ino, bool use_map,
		      struct reenc_allocs *a)
{
	struct key_iter it;
	struct file_item first = { 0 };
	u64 *seen = NULL;
	size_t nr_seen = 0, cap_seen = 0, nr_items = 0;
	int ret;

	a->nr = a->next = 0;
	a->reinline_old = a->reinline_len = 0;
	for (ret = key_iter_type(&it, c->fs, &root->ref, ino, BTRFS_EXTENT_DATA_KEY, 0); ret == 0;
	     ret = key_iter_next(&it)) {
		const struct btrfs_file_extent_item *fe = (const void *)it.ptr;
		u64 old, len, sec = c->fs->sectorsize;
		bool private;

		if (!nr_items++) {
			first.key = it.key;
			first.size = it.size;
			memcpy(first.data, fe, it.size < sizeof(first.data) ? it.size : sizeof(first.data));
			first.shared_leaf = root->last_snapshot ||
					    tb_owner(it.path.nodes[0]) != root->ref.objectid;
		}

		if (it.size < BTRFS_FILE_EXTENT_INLINE_DATA_START ||
		    (fe->type != BTRFS_FILE_EXTENT_INLINE && it.size < sizeof(*fe)))
			continue;	/* reencrypt_file_data() refuses it */
		if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
			u64 ram = le64_to_cpu(fe->ram_bytes);
			u64 in = it.size - BTRFS_FILE_EXTENT_INLINE_DATA_START;

			len = fe->compression || ram < in ? ram : in;
			len = (len + sec - 1) / sec * sec;
			if (!c->ops->src_encrypted && len && (ret = allocs_add(c->fs, a, len, 0, false)))
				break;
			continue;
		}
		old = le64_to_cpu(fe->disk_bytenr);
		len = le64_to_cpu(fe->disk_num_bytes);
		if (!old || !!fe->encryption != c->ops->src_encrypted ||
		    allocs_has(seen, nr_seen, old) || (use_map && map_find(c, old, ino)))
			continue;
		{
			u64 *n = array_grow(seen, &cap_seen, nr_seen, sizeof(*n));

			if (!n) {
				ret = fs_err(c->fs, -ENOMEM, "out of memory");
				break;
			}
			seen = n;
			seen[nr_seen++] = old;
		}
		/* Only the preflight's replay gives old extents back (no map there). */
		private = !use_map && !root->last_snapshot &&
			  tb_owner(it.path.nodes[0]) == root->ref.objectid && extent_refs(c, old) == 1;
		ret = allocs_add(c->fs, a, len, old, private);
		if (ret)
			break;
	}
	key_iter_release(&it);
	free(seen);
	if (ret < 0)
		return ret;
	ret = 0;	/* > 0: the end of the items */
	/*
	 * Back inline (decrypt) while the metadata budget lasts: no copy, the
	 * old extent freed; its data, leaves half full, spent from the budget.
	 */
	a->reinline_cost = 0;
	if (c->ops->reinline && nr_items == 1 && a->nr == 1) {
		u64 size, cost;

		ret = reinline_candidate(c, root, &first, &size);
		cost = 2 * (size + 32);
		if (!ret && size && cost <= c->reinline_budget) {
			a->reinline_old = le64_to_cpu(((struct btrfs_file_extent_item *)first.data)->disk_bytenr);
			a->reinline_len = a->len[0];
			a->reinline_cost = cost;
			a->nr = 0;
		}
	}
	return ret;
}

int reenc_reserve_file(struct reenc *c, struct trans_root *root, u64 ino, bool *fits)
{
	int ret = reenc_file_allocs(c, root, ino, true, &c->resv);

	*fits = true;
	if (!ret && c->resv.nr)
		ret = space_alloc_all(c->t, BTRFS_BLOCK_GROUP_DATA, c->resv.len, c->resv.nr,
				      c->resv.at, fits);
	/* Nothing reserved: none to take or give back (the lengths stay, for a message). */
	if (ret || !*fits)
		c->resv.next = c->resv.nr;
	return ret;
}

void reenc_unreserve(struct reenc *c)
{
	struct reenc_allocs *r = &c->resv;

	/* Reserved but not taken (a small file decrypt put back inline): free again. */
	for (; c->t && r->next < r->nr; r->next++)
		space_unmark(c->t, r->at[r->next], r->len[r->next]);
	r->nr = r->next = 0;
	r->reinline_old = r->reinline_len = r->reinline_cost = 0;
}

/* Insert the csums of the present sectors (present NULL: all), run by run. */
static int insert_present_csums(struct reenc *c, u64 start, const u8 *sums, const u8 *present,
				u64 nsec)
{
	struct fs_info *fs = c->fs;
	int ret = 0;

	for (u64 i = 0; !ret && i < nsec; ) {
		u64 j = i;

		if (present && !present[i]) {
			i++;
			continue;
		}
		while (j < nsec && (!present || present[j]))
			j++;
		ret = csum_insert(c->t, start + i * fs->sectorsize, sums + i * fs->csum_size, j - i);
		i = j;
	}
	return ret;
}

static void pending_free(struct pending_copy *pc)
{
	free(pc->mem);
	data_read_release(&pc->src);
	free(pc->new_sums);
}

/* Free the buffers of *nr copies of v; *nr becomes 0. */
static void free_copies(struct pending_copy *v, size_t *nr)
{
	for (size_t i = 0; i < *nr; i++)
		pending_free(&v[i]);
	*nr = 0;
}

static void drop_pending(struct reenc *c)
{
	free_copies(c->pend, &c->nr_pend);
	c->pend_bytes = 0;
}

/* The copy's job: the read half from the read path (data/read.h), then the write half. */
static void pending_job(struct reenc *c, struct pending_copy *pc, int src_copy,
			struct extent_io_job *job)
{
	memset(job, 0, sizeof(*job));
	if (pc->mem) {
		job->len = pc->len;
		job->mem = pc->mem;
	} else {
		/* The copies moved since they were queued: point into this one now. */
		pc->src.nonce = pc->has_old_nonce ? pc->old_nonce : NULL;
		data_read_job(&pc->src, src_copy, job);
		job->src.key = c->src_mk;
	}
	job->flags |= EXTENT_IO_WRITE;
	job->dst = (struct extent_io_loc){ 0, pc->new_bytenr, 0,
					   pc->has_new_nonce ? pc->new_nonce : NULL,
					   pc->datasum ? &pc->vout : NULL, c->dst_mk };
}

/*
 * One piece of a copy from byte off: the bytes that lie contiguously in the
 * source copy src_copy (a striped source: RAID0, RAID10) and in every copy
 * of the destination (DUP, RAID1*, RAID10 mirrors; RAID0/10 stripe
 * elements).  *run gets its length; with job, the piece's job is filled
 * from base.  0 or -EUCLEAN.
 */
static int copy_piece(struct reenc *c, const struct pending_copy *pc, int src_copy,
		      const struct extent_io_job *base, u64 off, u64 *run, struct extent_io_job *job)
{
	struct fs_info *fs = c->fs;
	struct copy_loc src = { 0 }, dst[MAX_COPIES];
	int n = num_copies(fs, pc->new_bytenr + off);
	u64 r;

	*run = pc->len - off;
	if (!pc->mem && pc->src.split) {
		if (map_copy_run(fs, pc->src.logical + off, *run, src_copy, &src, run))
			return fs_err(fs, -EUCLEAN, "extent %llu is not mapped", pc->old);
	} else if (!pc->mem) {
		src.physical = pc->src.physical[src_copy] + off;
		src.dev = (int)pc->src.dev[src_copy];
	}
	if (n < 1 || n > MAX_COPIES)
		return fs_err(fs, -EUCLEAN, "extent %llu: new address %llu is not mapped", pc->old,
			      pc->new_bytenr);
	for (int k = 0; k < n; k++) {
		if (map_copy_run(fs, pc->new_bytenr + off, *run, k, &dst[k], &r))
			return fs_err(fs, -EUCLEAN, "new extent %llu: copy %d is not mapped",
				      pc->new_bytenr, k);
		*run = r;
	}
	if (!job)
		return 0;
	*job = *base;
	job->len = *run;
	if (job->mem)
		job->mem += off;
	if (!pc->mem) {
		job->src.physical = src.physical;
		job->src.dev = (u32)src.dev;
		job->src.logical += off;
		job->src.dun += off / fs->sectorsize;
	}
	job->dst.physical = dst[0].physical;
	job->dst.dev = (u32)dst[0].dev;
	job->dst.logical += off;
	job->dst.dun += off / fs->sectorsize;
	for (int k = 1; k < n; k++)
		job->more[k - 1] = (struct extent_io_copy){ dst[k].physical, (u32)dst[k].dev };
	job->nr_more = (u32)(n - 1);
	return 0;
}

/*
 * The jobs of a copy reading source copy src_copy (copy_piece()): into jobs
 * (NULL: only counted), their number in *nr.  0 or -EUCLEAN.
 */
static int copy_jobs(struct reenc *c, struct pending_copy *pc, int src_copy,
		     struct extent_io_job *jobs, size_t *nr)
{
	struct extent_io_job base;
	u64 run;
	int ret = 0;

	pending_job(c, pc, src_copy, &base);
	*nr = 0;
	for (u64 off = 0; !ret && off < pc->len; off += run, (*nr)++)
		ret = copy_piece(c, pc, src_copy, &base, off, &run, jobs ? &jobs[*nr] : NULL);
	return ret;
}

/*
 * Queued copies go to the pipeline a batch at a time: while the workers
 * copy one batch, this thread goes on with the trees and queues the next.
 * The items already point at the copies; every batch is done, and its
 * csums inserted, before the commit (reenc_flush_copies()).
 */

/*
 * After a csum mismatch in the batch: run the copies one by one, each
 * from its other source copies (DUP, RAID1*, RAID10) when the first does
 * not match; name the extent none of them matches.
 */
static int rerun_copies(struct reenc *c)
{
	struct fs_info *fs = c->fs;
	int ret = 0;

	for (size_t i = 0; !ret && i < c->nr_fly; i++) {
		struct pending_copy *pc = &c->fly[i];
		int copies = pc->mem ? 1 : pc->src.copies;

		ret = -EBADMSG;
		for (int k = 0; ret == -EBADMSG && k < copies; k++) {
			struct extent_io_job *jobs;
			size_t nr;

			ret = copy_jobs(c, pc, k, NULL, &nr);
			jobs = ret ? NULL : fault_calloc(nr, sizeof(*jobs));
			if (!ret && !jobs)
				ret = fs_err(fs, -ENOMEM, "out of memory");
			if (!ret)
				ret = copy_jobs(c, pc, k, jobs, &nr);
			if (!ret)
				ret = extent_io_run(c->io, jobs, nr);
			free(jobs);
		}
		if (ret == -EBADMSG)
			ret = fs_err(fs, -EUCLEAN, "extent %llu: data checksum mismatch%s; "
				     "not converting it", pc->old, copies > 1 ? " in every copy" : "");
		else if (ret && ret != -ENOMEM && ret != -EUCLEAN)
			ret = fs_err(fs, ret, "data copy failed: %s", strerror(-ret));
	}
	return ret;
}

/* Wait for the batch in flight, then insert the csums of its copies. */
static int finish_flight(struct reenc *c)
{
	struct fs_info *fs = c->fs;
	int ret;

	if (!c->nr_fly)
		return 0;
	ret = extent_io_wait(c->io);
	if (ret == -EBADMSG)
		ret = rerun_copies(c);
	else if (ret)
		ret = fs_err(fs, ret, "data copy failed: %s", strerror(-ret));
	for (size_t i = 0; !ret && i < c->nr_fly; i++) {
		struct pending_copy *pc = &c->fly[i];

		if (pc->datasum)
			ret = insert_present_csums(c, pc->new_bytenr, pc->new_sums,
						   pc->mem ? NULL : pc->src.owned_present,
						   pc->len / fs->sectorsize);
	}
	free_copies(c->fly, &c->nr_fly);
	return ret;
}

/* Send the queued copies to the workers (after the previous batch is done). */
static int start_flight(struct reenc *c)
{
	struct pending_copy *swap = c->fly;
	struct extent_io_job *jobs;
	size_t cap = c->cap_fly, njobs = 0;
	int ret = finish_flight(c);

	if (ret || !c->nr_pend)
		return ret;
	c->fly = c->pend;
	c->cap_fly = c->cap_pend;
	c->nr_fly = c->nr_pend;
	c->pend = swap;
	c->cap_pend = cap;
	c->nr_pend = 0;
	c->pend_bytes = 0;
	/* One job per copy, more where a side is striped (copy_piece()). */
	for (size_t i = 0; !ret && i < c->nr_fly; i++) {
		size_t nr;

		ret = copy_jobs(c, &c->fly[i], 0, NULL, &nr);
		njobs += nr;
	}
	jobs = ret ? NULL : array_reserve(c->fly_jobs, &c->cap_jobs, njobs, sizeof(*jobs));
	if (!ret && !jobs)
		ret = fs_err(c->fs, -ENOMEM, "out of memory");
	if (jobs)
		c->fly_jobs = jobs;
	for (size_t i = 0, at = 0, nr; !ret && i < c->nr_fly; i++, at += nr)
		ret = copy_jobs(c, &c->fly[i], 0, c->fly_jobs + at, &nr);
	if (ret) {
		free_copies(c->fly, &c->nr_fly);
		return ret;
	}
	ret = extent_io_start(c->io, c->fly_jobs, njobs);
	if (ret) {
		free_copies(c->fly, &c->nr_fly);
		return fs_err(c->fs, ret, "cannot start the data copies: %s", strerror(-ret));
	}
	return 0;
}

/* Every queued copy done and its csums inserted. */
int reenc_flush_copies(struct reenc *c)
{
	int ret = start_flight(c);

	return ret ? ret : finish_flight(c);
}

/* On the way out after an error: let the workers finish, forget the copies. */
void reenc_drop_copies(struct reenc *c)
{
	extent_io_wait(c->io);
	free_copies(c->fly, &c->nr_fly);
	drop_pending(c);
}

/*
 * Copy one disk extent (or mem: len bytes of plaintext, taken over) to a
 * newly allocated one through the pipeline: verify the stored bytes' csums,
 * decrypt (old nonce) and/or encrypt (new nonce), compute the new csums,
 * write.  The copy is queued: the new address is known at once, the data
 * moves at a later start_flight().
 */
static int queue_copy(struct reenc *c, u64 old, u8 *mem, u64 len, bool datasum,
		      const u8 *old_nonce, const u8 *new_nonce, u64 *new_out)
{
	struct fs_info *fs = c->fs;
	struct trans_root *cr = trans_get_root(c->t, BTRFS_CSUM_TREE_OBJECTID);
	struct pending_copy pc = { .mem = mem, .old = old, .len = len, .datasum = datasum };
	const struct chunk_map *nm;
	struct pending_copy *v;
	int ret;

	if (!cr) {
		free(mem);
		return fs_err(fs, -EUCLEAN, "extent %llu is not mapped", old);
	}
	/* The read half: where old is and, with datasum, the csums it has. */
	ret = mem ? 0 : data_read_map(fs, &cr->ref, old, 0, len,
				      datasum ? DATA_READ_SOME_CSUMS : 0, NULL, &pc.src);
	if (!ret)
		ret = take_data_extent(c, len, &pc.new_bytenr);
	nm = ret ? NULL : find_chunk(fs, pc.new_bytenr);
	if (!ret && !nm)
		ret = fs_err(fs, -EUCLEAN, "new extent %llu is not mapped", pc.new_bytenr);
	if (!ret && datasum && !(pc.new_sums = fault_malloc(len / fs->sectorsize * fs->csum_size)))
		ret = fs_err(fs, -ENOMEM, "out of memory");
	v = ret ? NULL : array_grow(c->pend, &c->cap_pend, c->nr_pend, sizeof(*v));
	if (!v) {
		pending_free(&pc);
		return ret ? ret : fs_err(fs, -ENOMEM, "out of memory");
	}
	c->pend = v;
	if (old_nonce) {
		memcpy(pc.old_nonce, old_nonce, sizeof(pc.old_nonce));
		pc.has_old_nonce = true;
	}
	if (new_nonce) {
		memcpy(pc.new_nonce, new_nonce, sizeof(pc.new_nonce));
		pc.has_new_nonce = true;
	}
	pc.vout = (struct extent_io_csums){ .type = fs->csum_type, .logical = pc.new_bytenr,
					    .count = len / fs->sectorsize, .out = pc.new_sums };
	c->pend[c->nr_pend++] = pc;
	c->pend_bytes += len;
	*new_out = pc.new_bytenr;
	if (c->pend_bytes >= FLUSH_BYTES || c->nr_pend >= FLUSH_COPIES)
		return start_flight(c);
	return 0;
}

static int copy_extent(struct reenc *c, u64 old, u64 len, bool datasum, const u8 *old_nonce,
		       const u8 *new_nonce, u64 *new_out)
{
	int ret = queue_copy(c, old, NULL, len, datasum, old_nonce, new_nonce, new_out);

	if (!ret) {
		c->since_commit += len;
		c->sv->bytes += len;
		c->st->bytes += len;
	}
	return ret;
}


static int collect_file_items(struct reenc *c, struct trans_root *root, u64 ino,
			      struct file_item **out, size_t *nr)
{
	struct key_iter it;
	size_t cap = 0;
	int ret;

	*out = NULL;
	*nr = 0;
	for (ret = key_iter_type(&it, c->fs, &root->ref, ino, BTRFS_EXTENT_DATA_KEY, 0); ret == 0;
	     ret = key_iter_next(&it)) {
		struct file_item *fi;
		const struct btrfs_file_extent_item *fe = (const void *)it.ptr;

		if (it.size < BTRFS_FILE_EXTENT_INLINE_DATA_START ||
		    (fe->type != BTRFS_FILE_EXTENT_INLINE && it.size < sizeof(*fe))) {
			ret = fs_err(c->fs, -EUCLEAN, "inode %llu: bad file extent at %llu", ino,
				     it.key.offset);
			break;
		}
		{
			struct file_item *n = array_grow(*out, &cap, *nr, sizeof(*n));

			if (!n) {
				ret = fs_err(c->fs, -ENOMEM, "out of memory");
				break;
			}
			*out = n;
		}
		fi = &(*out)[(*nr)++];
		memset(fi, 0, sizeof(*fi));
		fi->key = it.key;
		fi->size = it.size;
		/*
		 * Another tree may reach this item if the tree was ever
		 * snapshotted, or the leaf is not its own.  (A leaf's generation
		 * says nothing here: one COWed earlier in this transaction may
		 * come from a shared leaf whose new references are not in the
		 * extent tree before the commit.)
		 */
		fi->shared_leaf = root->last_snapshot ||
				  tb_owner(it.path.nodes[0]) != root->ref.objectid;
		memcpy(fi->data, fe, fi->size < sizeof(fi->data) ? fi->size : sizeof(fi->data));
		if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
			fi->inline_len = fi->size - BTRFS_FILE_EXTENT_INLINE_DATA_START;
			fi->inline_data = fault_malloc(fi->inline_len + 1);
			if (!fi->inline_data) {
				ret = fs_err(c->fs, -ENOMEM, "out of memory");
				break;
			}
			memcpy(fi->inline_data, it.ptr + BTRFS_FILE_EXTENT_INLINE_DATA_START,
			       fi->inline_len);
		}
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

static void free_file_items(struct file_item *v, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		free(v[i].inline_data);
	free(v);
}

/* Rewrite one EXTENT_DATA item to point at a converted extent. */
static int repoint_item(struct reenc *c, struct trans_root *root, const struct file_item *fi,
			u64 new_bytenr, bool new_extent, const u8 *nonce)
{
	const struct btrfs_file_extent_item *fe = (const void *)fi->data;
	u64 ino = fi->key.objectid, backref = fi->key.offset - le64_to_cpu(fe->offset);
	struct btrfs_path p;
	struct ref_change rc = { 0 };
	int ret = search_slot_mod(c->t, root, &fi->key, &p, 0);

	if (ret) {
		path_release(c->fs, &p);
		return ret < 0 ? ret : -EUCLEAN;
	}
	{
		struct btrfs_file_extent_item *mf = (void *)path_ptr_mut(&p);

		mf->disk_bytenr = cpu_to_le64(new_bytenr);
		mf->encryption = c->ops->dst_encrypted ? BTRFS_ENCRYPTION_FSCRYPT : BTRFS_ENCRYPTION_NONE;
		mf->generation = cpu_to_le64(c->t->transid);
	}
	path_release(c->fs, &p);
	rc.num_bytes = le64_to_cpu(fe->disk_num_bytes);
	rc.kind = REF_DATA;
	rc.root = root->ref.objectid;
	rc.objectid = ino;
	rc.offset = backref;
	rc.bytenr = le64_to_cpu(fe->disk_bytenr);
	rc.delta = -1;
	ret = queue_ref(c->t, &rc);
	if (ret)
		return ret;
	/* Simple quotas: the copy stays charged to the old extent's owner. */
	if (new_extent && c->fs->qgroup_mode == QGROUP_SIMPLE)
		ret = extent_owner(c->t, rc.bytenr, rc.num_bytes, &rc.owner);
	if (ret)
		return ret;
	rc.bytenr = new_bytenr;
	rc.delta = 1;
	rc.new_extent = new_extent;
	rc.generation = c->t->transid;
	ret = queue_ref(c->t, &rc);
	if (ret)
		return ret;
	if (c->ops->src_encrypted) {
		ret = fscrypt_extent_ctx_delete(c->t, root, ino, fi->key.offset);
		if (ret < 0)
			return ret;
	}
	if (c->ops->dst_encrypted) {
		struct fscrypt_extent_context ectx;

		fscrypt_extent_context_init(&ectx, c->contents_mode, c->dst_mk->identifier, nonce);
		return fscrypt_extent_ctx_insert(c->t, root, ino, fi->key.offset, &ectx, sizeof(ectx));
	}
	return 0;
}

/* The extent context of an encrypted item (decrypt needs its nonce). */
static int item_nonce(struct reenc *c, struct trans_root *root, const struct file_item *fi,
		      u8 *nonce)
{
	u8 buf[FSCRYPT_EXTENT_CONTEXT_MAX_SIZE];
	struct fscrypt_extent_context ectx;
	u32 size;
	int ret = fscrypt_extent_ctx_read(c->fs, &root->ref, fi->key.objectid, fi->key.offset,
					  buf, &size);

	if (!ret)
		memcpy(&ectx, buf, sizeof(ectx));
	if (ret > 0)
		return fs_err(c->fs, -EUCLEAN, "inode %llu: encrypted extent at %llu has no context",
			      fi->key.objectid, fi->key.offset);
	if (!ret && memcmp(ectx.master_key_identifier, c->src_mk->identifier,
			   FSCRYPT_KEY_IDENTIFIER_SIZE))
		return fs_err(c->fs, -EKEYREJECTED, "inode %llu: extent at %llu uses another key",
			      fi->key.objectid, fi->key.offset);
	if (!ret)
		memcpy(nonce, ectx.nonce, FSCRYPT_NONCE_SIZE);
	return ret;
}

/* refs of an extent item (0 if absent or unreadable). */
static u64 extent_refs(struct reenc *c, u64 bytenr)
{
	struct trans_root *er = trans_get_root(c->t, BTRFS_EXTENT_TREE_OBJECTID);
	struct btrfs_key key = { bytenr, BTRFS_EXTENT_ITEM_KEY, 0 }, k;
	struct btrfs_path p;
	u64 refs = 0;

	if (!er || search_slot(c->fs, &er->ref, &key, &p) < 0)
		return 0;
	if (path_item_valid(&p)) {
		path_key(&p, &k);
		if (k.objectid == bytenr && k.type == BTRFS_EXTENT_ITEM_KEY &&
		    path_size(&p) >= sizeof(struct btrfs_extent_item))
			refs = le64_to_cpu(((const struct btrfs_extent_item *)path_ptr(&p))->refs);
	}
	path_release(c->fs, &p);
	return refs;
}

/*
 * After a file: forget the extents no later item can reach.  Private copies
 * and extents whose every reference is an item of this file, all in leaves
 * no snapshot shares, are done; the others stay for their other sharers.
 */
static void map_forget_file(struct reenc *c, u64 ino, const u64 *created, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		struct extent_map_entry *m = map_find(c, created[i], ino);

		if (!m || m->shared_leaf)
			continue;
		if (!m->owner_ino && extent_refs(c, m->old) != m->visits)
			continue;
		u64map_remove(&c->map, m);
	}
}

/* Inline data of a file becomes a regular encrypted extent. */
static int encrypt_new_extent(struct reenc *c, struct trans_root *root, u64 ino, u64 off,
			      const u8 *data, u64 len, bool datasum)
{
	struct fs_info *fs = c->fs;
	struct fscrypt_extent_context ectx;
	u8 nonce[FSCRYPT_NONCE_SIZE], *buf;
	u64 alen = (len + fs->sectorsize - 1) / fs->sectorsize * fs->sectorsize, bytenr;
	int ret = reenc_random_bytes(fs, nonce, sizeof(nonce));

	if (ret)
		return ret;
	buf = fault_calloc(1, alen);
	if (!buf)
		return fs_err(fs, -ENOMEM, "out of memory");
	memcpy(buf, data, len);
	ret = queue_copy(c, 0, buf, alen, datasum, NULL, nonce, &bytenr);
	if (ret)
		return ret;
	fscrypt_extent_context_init(&ectx, c->contents_mode, c->dst_mk->identifier, nonce);
	ret = data_extent_insert(c->t, root, ino, off, bytenr, alen, &ectx);
	if (!ret) {
		c->sv->extents++;
		c->st->extents++;
		c->since_commit += alen;
	}
	return ret;
}

/* An inline extent's plaintext (decompressed) as a new encrypted regular extent. */
static int encrypt_inline(struct reenc *c, struct trans_root *root, u64 ino,
			  const struct file_item *fi, bool datasum)
{
	const struct btrfs_file_extent_item *fe = (const void *)fi->data;
	u64 ram = le64_to_cpu(fe->ram_bytes);
	u8 *plain;
	long n;
	int ret;

	if (!fe->compression)
		return encrypt_new_extent(c, root, ino, fi->key.offset, fi->inline_data,
					  ram < fi->inline_len ? ram : fi->inline_len, datasum);
	if (ram > c->fs->sectorsize * 4ULL)
		return fs_err(c->fs, -EUCLEAN, "inode %llu: inline extent of %llu bytes", ino, ram);
	plain = fault_calloc(1, ram + 1);
	if (!plain)
		return fs_err(c->fs, -ENOMEM, "out of memory");
	n = btrfs_decompress(fe->compression, fi->inline_data, fi->inline_len, plain, ram,
			     c->fs->sectorsize);
	if (n < 0 && n != -ENOMEM && fs_is_metadump(c->fs)) {
		/* btrfs-image zeroes inline data: a dump holds none to keep (disk-io.h). */
		memset(plain, 0, ram);
		n = (long)ram;
	}
	if (n == -ENOMEM)
		ret = fs_err(c->fs, -ENOMEM, "out of memory");
	else if (n < 0)
		ret = fs_err(c->fs, -EUCLEAN, "inode %llu: compressed inline extent does not decompress",
			     ino);
	else
		ret = encrypt_new_extent(c, root, ino, fi->key.offset, plain, ram, datasum);
	free(plain);
	return ret;
}

/*
 * Whether a file whose data is the one item fi goes back inline: the kernel
 * never makes an inline extent of an encrypted file, so encrypt moved the
 * inline data of small files into regular extents (encrypt_inline()); this
 * is mkfs.btrfs --rootdir's rule for an inline file (Documentation/format.rst
 * 14): i_size above 0, below a sector and within BTRFS_MAX_INLINE_DATA_SIZE,
 * the whole data in one uncompressed regular extent at file offset 0 that
 * nothing else references.
 */
static int reinline_candidate(struct reenc *c, struct trans_root *root,
			      const struct file_item *fi, u64 *size)
{
	const struct btrfs_file_extent_item *fe = (const void *)fi->data;
	struct fs_info *fs = c->fs;
	struct btrfs_inode_item ii;
	int ret;

	*size = 0;
	if (fi->key.offset || fe->type != BTRFS_FILE_EXTENT_REG || fe->compression ||
	    fe->other_encoding || !fe->disk_bytenr || fe->offset || fi->shared_leaf ||
	    !!fe->encryption != c->ops->src_encrypted ||
	    le64_to_cpu(fe->disk_num_bytes) < fs->sectorsize)
		return 0;
	ret = trans_inode_read(c->t, root, fi->key.objectid, &ii);
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	if (!ii.size || le64_to_cpu(ii.size) >= fs->sectorsize ||
	    le64_to_cpu(ii.size) > max_item_size(fs) - BTRFS_FILE_EXTENT_INLINE_DATA_START ||
	    le64_to_cpu(ii.size) > le64_to_cpu(fe->num_bytes) ||
	    extent_refs(c, le64_to_cpu(fe->disk_bytenr)) != 1)
		return 0;
	*size = le64_to_cpu(ii.size);
	return 0;
}

/*
 * The first size bytes of the extent of fi, read (and decrypted) through
 * the read path, replace fi as an uncompressed inline extent; the old
 * extent loses its last reference, so the commit of this transaction
 * deletes its extent item and csums and frees its space.
 */
static int reinline_file(struct reenc *c, struct trans_root *root, const struct file_item *fi,
			 u64 size, bool datasum)
{
	const struct btrfs_file_extent_item *fe = (const void *)fi->data;
	struct fs_info *fs = c->fs;
	struct trans_root *cr = trans_get_root(c->t, BTRFS_CSUM_TREE_OBJECTID);
	const u32 hdr = BTRFS_FILE_EXTENT_INLINE_DATA_START;
	u64 ino = fi->key.objectid, old = le64_to_cpu(fe->disk_bytenr);
	struct ref_change rc = { .bytenr = old, .num_bytes = le64_to_cpu(fe->disk_num_bytes),
				 .kind = REF_DATA, .root = root->ref.objectid, .objectid = ino,
				 .offset = 0, .delta = -1 };
	u8 nonce[FSCRYPT_NONCE_SIZE], *buf = NULL;
	struct btrfs_file_extent_item *ne;
	struct data_read rd = { 0 };
	int ret = cr ? 0 : fs_err(fs, -EUCLEAN, "no csum tree");

	if (!ret && fe->encryption)
		ret = item_nonce(c, root, fi, nonce);
	/* The pipeline runs one batch at a time: the queued copies go first. */
	if (!ret)
		ret = reenc_flush_copies(c);
	if (!ret && !(buf = fault_calloc(1, hdr + fs->sectorsize)))
		ret = fs_err(fs, -ENOMEM, "out of memory");
	if (!ret)
		ret = data_read_map(fs, &cr->ref, old, 0, fs->sectorsize,
				    datasum ? DATA_READ_SOME_CSUMS : 0,
				    fe->encryption ? nonce : NULL, &rd);
	if (!ret)
		ret = data_read_run(c->io, &rd, buf + hdr, NULL, NULL);
	data_read_release(&rd);
	if (ret == -EBADMSG)
		ret = fs_err(fs, -EUCLEAN, "extent %llu: data checksum mismatch; not converting it",
			     old);
	ne = (void *)buf;
	if (!ret) {
		ne->generation = cpu_to_le64(c->t->transid);
		ne->ram_bytes = cpu_to_le64(size);
		ne->type = BTRFS_FILE_EXTENT_INLINE;
		ret = trans_delete_item(c->t, root, &fi->key);
	}
	if (!ret)
		ret = insert_item(c->t, root, &fi->key, buf, hdr + size);
	if (buf) {
		explicit_bzero(buf, hdr + fs->sectorsize);
		free(buf);
	}
	if (!ret)
		ret = queue_ref(c->t, &rc);
	if (!ret && fe->encryption)
		ret = fscrypt_extent_ctx_delete(c->t, root, ino, fi->key.offset);
	if (ret < 0)
		return ret;
	c->nbytes_changed = true;
	c->since_commit += size;
	c->sv->bytes += rc.num_bytes;	/* as the preflight counts it */
	c->st->bytes += rc.num_bytes;
	c->sv->extents++;
	c->st->extents++;
	return 0;
}

/* With the mode's reinline: a small file's one extent back inline (*done). */
static int reinline_small_file(struct reenc *c, struct trans_root *root,
			       const struct file_item *items, size_t nr, bool datasum, bool *done)
{
	u64 size;
	int ret;

	*done = false;
	/*
	 * Decided before the file began (reenc_file_allocs()): a file the
	 * metadata budget has no room for stays a regular extent, still a
	 * valid plain file.
	 */
	if (!c->ops->reinline || nr != 1 || !c->resv.reinline_old ||
	    c->resv.reinline_old != le64_to_cpu(((const struct btrfs_file_extent_item *)
						  items[0].data)->disk_bytenr))
		return 0;
	ret = reinline_candidate(c, root, &items[0], &size);
	if (ret || !size)
		return ret;
	*done = true;
	return reinline_file(c, root, &items[0], size, datasum);
}

static int reencrypt_file_data(struct reenc *c, struct trans_root *root, u64 ino, bool datasum)
{
	struct file_item *items;
	u64 *created = NULL;
	size_t nr, nr_created = 0, todo;
	bool inlined = false;
	int ret = collect_file_items(c, root, ino, &items, &nr);

	if (!ret)
		ret = reinline_small_file(c, root, items, nr, datasum, &inlined);
	todo = inlined ? 0 : nr;
	if (!ret && todo && !(created = fault_malloc(nr * sizeof(*created))))
		ret = fs_err(c->fs, -ENOMEM, "out of memory");
	for (size_t i = 0; !ret && i < todo; i++) {
		struct file_item *fi = &items[i];
		const struct btrfs_file_extent_item *fe = (const void *)fi->data;
		u64 old = le64_to_cpu(fe->disk_bytenr), len = le64_to_cpu(fe->disk_num_bytes);
		struct extent_map_entry *m;
		u8 old_nonce[FSCRYPT_NONCE_SIZE];
		bool fresh = false;

		if (fe->type == BTRFS_FILE_EXTENT_INLINE && c->ops->src_encrypted) {
			/* Encrypted files have none (Documentation/format.rst 5.3). */
			if (!c->ops->dst_encrypted)
				continue;
			ret = fs_err(c->fs, -EUCLEAN, "encrypted inode %llu has an inline extent", ino);
			break;
		}
		if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
			/* Inline data becomes a regular encrypted extent (Documentation/format.rst 5.3). */
			ret = trans_delete_item(c->t, root, &fi->key);
			if (!ret)
				ret = encrypt_inline(c, root, ino, fi, datasum);
			c->nbytes_changed = true;
			continue;
		}
		if (!old)
			continue;	/* holes stay holes */
		if (!!fe->encryption != c->ops->src_encrypted)
			continue;	/* already in the wanted state */
		if (fe->encryption && (ret = item_nonce(c, root, fi, old_nonce)))
			break;
		m = map_find(c, old, ino);
		if (!m) {
			bool all, unwritten = false;

			ret = reenc_all_refs_in_target(c, old, &all);
			if (ret)
				break;
			m = map_add(c, old);
			if (!m) {
				ret = fs_err(c->fs, -ENOMEM, "out of memory");
				break;
			}
			m->owner_ino = all ? 0 : ino;
			created[nr_created++] = old;
			if (c->ops->dst_encrypted &&
			    (ret = reenc_random_bytes(c->fs, m->nonce, sizeof(m->nonce))))
				break;
			if (fe->type == BTRFS_FILE_EXTENT_PREALLOC &&
			    (ret = reenc_extent_unwritten(c, old, len, &unwritten)))
				break;
			if (fe->type == BTRFS_FILE_EXTENT_PREALLOC && unwritten) {
				/* Never written: contexts only, no data or csums (reads as zeros). */
				ret = take_data_extent(c, len, &m->new_bytenr);
			} else {
				ret = copy_extent(c, old, len, datasum,
						  c->ops->src_encrypted ? old_nonce : NULL,
						  c->ops->dst_encrypted ? m->nonce : NULL,
						  &m->new_bytenr);
			}
			if (ret)
				break;
			fresh = true;
		}
		m->visits++;
		m->shared_leaf |= fi->shared_leaf;
		ret = repoint_item(c, root, fi, m->new_bytenr, fresh, m->nonce);
		/* Counted per file extent item, as the dry run counts them. */
		c->sv->extents++;
		c->st->extents++;
	}
	if (!ret)
		map_forget_file(c, ino, created, nr_created);
	free(created);
	free_file_items(items, nr);
	return ret;
}

/* ---- per inode ------------------------------------------------------------- */

static int fix_nbytes(struct reenc *c, struct trans_root *root, u64 ino, u64 size_override,
		      bool set_size)
{
	struct btrfs_inode_item ii;
	u64 nbytes;
	int ret = inode_count_nbytes(c->fs, &root->ref, ino, &nbytes);

	if (!ret)
		ret = trans_inode_read(c->t, root, ino, &ii);
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	ii.nbytes = cpu_to_le64(nbytes);
	if (set_size)
		ii.size = cpu_to_le64(size_override);
	ii.transid = cpu_to_le64(c->t->transid);
	return trans_inode_write(c->t, root, ino, &ii);
}

/*
 * The new inline data of a symlink whose item holds in[0..in_len) and whose
 * i_size is isize: the target decrypted under old (if encrypted now), then
 * encrypted under new (if it ends encrypted), into out.  Between the two
 * the target lies in c->plain.  Returns its length or <0.
 */
static int symlink_convert(struct reenc *c, u64 ino, const u8 *in, u32 in_len, u64 isize,
			   const struct fscrypt_context_v2 *old,
			   const struct fscrypt_context_v2 *new, u8 *out, size_t out_size)
{
	struct fs_info *fs = c->fs;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE];
	u32 max_data = fs->sectorsize - 1;
	int len = 0, ret = 0;

	if (max_data > max_item_size(fs) - BTRFS_FILE_EXTENT_INLINE_DATA_START)
		max_data = max_item_size(fs) - BTRFS_FILE_EXTENT_INLINE_DATA_START;
	if (in_len > PLAIN_SCRATCH || in_len > out_size)
		return fs_err(fs, -EOPNOTSUPP, "symlink %llu: target of %u bytes", ino, in_len);
	if (old) {
		ret = fscrypt_derive_file_key(c->src_mk, old->nonce, old->filenames_mode, key, NULL);
		len = ret ? ret : fscrypt_symlink_decrypt(old->filenames_mode, key, in, in_len,
							  c->plain, PLAIN_SCRATCH);
	} else {
		/* mkfs 6.2 stores the target with a trailing NUL: the target is i_size bytes. */
		len = isize < in_len ? (int)isize : (int)in_len;
		memcpy(c->plain, in, len);
	}
	if (len >= 0 && new) {
		ret = fscrypt_derive_file_key(c->dst_mk, new->nonce, new->filenames_mode, key, NULL);
		len = ret ? ret : fscrypt_symlink_encrypt(new->filenames_mode, key, new->flags,
							  c->plain, len, max_data, out, out_size);
	} else if (len >= 0) {
		memcpy(out, c->plain, len);
	}
	explicit_bzero(key, sizeof(key));
	explicit_bzero(c->plain, PLAIN_SCRATCH);
	if (len < 0)
		return len == -EBADMSG ? fs_err(fs, -EKEYREJECTED, "symlink %llu does not decrypt", ino)
				       : fs_err(fs, len, "symlink %llu: target cannot be converted", ino);
	return len;
}

static int reencrypt_symlink(struct reenc *c, struct trans_root *root, u64 ino,
			     const struct fscrypt_context_v2 *old,
			     const struct fscrypt_context_v2 *new)
{
	struct fs_info *fs = c->fs;
	struct file_item *items;
	size_t nr;
	u8 out[4096 + 64];
	u8 item[BTRFS_FILE_EXTENT_INLINE_DATA_START + sizeof(out)];
	struct btrfs_file_extent_item *fe = (void *)item;
	struct btrfs_inode_item ii;
	int len, ret;

	ret = trans_inode_read(c->t, root, ino, &ii);
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	ret = collect_file_items(c, root, ino, &items, &nr);
	if (ret)
		return ret;
	if (nr != 1 || items[0].key.offset != 0 ||
	    ((struct btrfs_file_extent_item *)items[0].data)->type != BTRFS_FILE_EXTENT_INLINE ||
	    ((struct btrfs_file_extent_item *)items[0].data)->compression) {
		free_file_items(items, nr);
		return fs_err(fs, -EOPNOTSUPP, "symlink %llu does not keep its target inline", ino);
	}
	len = symlink_convert(c, ino, items[0].inline_data, items[0].inline_len,
			      le64_to_cpu(ii.size), old, new, out, sizeof(out));
	ret = len < 0 ? len : 0;
	if (!ret) {
		memset(item, 0, BTRFS_FILE_EXTENT_INLINE_DATA_START);
		memcpy(fe, items[0].data, BTRFS_FILE_EXTENT_INLINE_DATA_START);
		fe->ram_bytes = cpu_to_le64(len);
		fe->encryption = 0;
		fe->generation = cpu_to_le64(c->t->transid);
		memcpy(item + BTRFS_FILE_EXTENT_INLINE_DATA_START, out, len);
		ret = trans_delete_item(c->t, root, &items[0].key);
		if (!ret)
			ret = insert_item(c->t, root, &items[0].key, item,
					  BTRFS_FILE_EXTENT_INLINE_DATA_START + len);
		if (!ret)
			ret = fix_nbytes(c, root, ino, len, true);
	}
	free_file_items(items, nr);
	return ret;
}

int reencrypt_nondir(struct reenc *c, struct trans_root *root, const struct inode_info *ii)
{
	struct fscrypt_context_v2 old, new;
	const struct fscrypt_context_v2 *oldp = c->ops->src_encrypted ? &old : NULL;
	const struct fscrypt_context_v2 *newp = c->ops->dst_encrypted ? &new : NULL;
	bool is_link = S_ISLNK(ii->mode), todo;
	int ret;

	if (!S_ISREG(ii->mode) && !is_link)
		return 0;
	ret = reenc_begin(c);
	if (!ret)
		ret = reenc_inode_todo(c, root, ii, &old, &todo);
	if (ret || !todo)
		return ret;	/* not to do, or done already (resume), with the key verified */
	c->nbytes_changed = false;
	if (newp) {
		ret = reenc_new_inode_ctx(c, root, ii->ino, oldp, &new);
		c->contents_mode = new.contents_mode;
	}
	if (!ret && is_link)
		ret = reencrypt_symlink(c, root, ii->ino, oldp, newp);
	else if (!ret)
		ret = reencrypt_file_data(c, root, ii->ino, !(ii->flags & BTRFS_INODE_NODATASUM));
	if (!ret && !newp)
		ret = reenc_clear_inode_ctx(c, root, ii->ino);
	/* Extents are replaced one for one: only inline data turned regular changes nbytes. */
	if (!ret && !is_link && c->nbytes_changed)
		ret = fix_nbytes(c, root, ii->ino, 0, false);
	if (ret)
		return ret;
	c->sv->inodes++;
	c->st->inodes++;
	if (c->o->progress)
		c->o->progress(c->st->bytes, c->st->bytes_total, c->o->progress_arg);
	if (is_link)
		c->sv->symlinks++;
	else
		c->sv->files++;
	if (c->since_commit >= c->batch)
		return reenc_commit(c);
	return 0;
}
