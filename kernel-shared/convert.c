// SPDX-License-Identifier: GPL-2.0
/*
 * encrypt / decrypt in place.  See convert.h for the ordering that keeps
 * every commit valid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kernel-shared/convert.h"
#include "kernel-shared/data-write.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/reflink.h"
#include "kernel-shared/volumes.h"
#include "crypto/csum.h"
#include "crypto/extent-io.h"
#include "crypto/fname.h"
#include "kernel-shared/compression.h"
#include "common/utils.h"

#define DEFAULT_BATCH (256ULL << 20)
/* Queued copies run when they reach this much data or this many extents. */
#define FLUSH_BYTES (32ULL << 20)
#define FLUSH_COPIES 8192

struct inode_info {
	u64 ino;
	u32 mode;
	u64 flags;
	u64 parent;	/* directories: the parent directory */
	u32 depth;
	bool selected;	/* inside a --path selection (or the whole tree) */
};

/*
 * Old disk extent -> its converted copy, shared by every referencing item.
 * An open-addressing hash on old (0 marks a free slot: disk_bytenr 0 is a
 * hole).  Only extents that other items may still reference stay in it once
 * their file is done, so it grows with the shared extents, not the image.
 */
struct extent_map_entry {
	u64 old, new_bytenr;
	u64 owner_ino;		/* 0: shared by all sharers; else private to this inode */
	u8 nonce[FSCRYPT_NONCE_SIZE];
	u32 visits;		/* items of the current file that use it */
	bool shared_leaf;	/* another tree may see one of them */
};

/*
 * A copy queued for the pipeline, run in batches before the commit: an old
 * extent to a new one, or (mem set) plaintext from memory to a new extent.
 */
struct pending_copy {
	u8 *mem;		/* owned; NULL: read from old */
	u64 old, new_bytenr, len;
	u64 src_phys, dst_phys;
	bool datasum, has_old_nonce, has_new_nonce;
	u8 old_nonce[FSCRYPT_NONCE_SIZE], new_nonce[FSCRYPT_NONCE_SIZE];
	u8 *old_sums, *new_sums, *present;
	struct sector_sums vin, vout;
};

struct range {
	u64 start, len;
};

struct conv {
	struct fs_info *fs;
	const struct convert_opts *o;
	struct convert_stats *st;
	struct convert_subvol_stats *sv;
	struct trans *t;
	struct extent_io *io;
	u64 batch, since_commit;
	bool all_subvols;
	struct extent_map_entry *map;
	size_t map_slots, map_used;	/* slots: 0 or a power of two */
	struct pending_copy *pend;	/* queued */
	size_t nr_pend, cap_pend;
	u64 pend_bytes;
	struct pending_copy *fly;	/* with the workers */
	size_t nr_fly, cap_fly;
	struct extent_io_job *fly_jobs;
	size_t cap_jobs;
	struct range *freed;
	size_t nr_freed, cap_freed;
	u64 cur_tree;		/* the tree being converted */
	bool image_file;	/* wipe punches all free space: no list of freed ranges */
	bool nbytes_changed;	/* the file being converted had inline data */
};

static int flush_copies(struct conv *c);

/* ---- small helpers ------------------------------------------------------ */

/*
 * Nonces come from getrandom(), drawn 4 KiB at a time: one system call per
 * 256 nonces instead of one each (a second of system time on 40k files).
 */
static int random_bytes(struct fs_info *fs, u8 *buf, size_t len)
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

static void on_free(u64 start, u64 len, void *arg)
{
	struct conv *c = arg;
	struct range *n = array_grow(c->freed, &c->cap_freed, c->nr_freed, sizeof(*n));

	if (!n)
		return;	/* wiping is best effort; the image is consistent either way */
	c->freed = n;
	c->freed[c->nr_freed++] = (struct range){ start, len };
}

static bool image_is_file(struct fs_info *fs)
{
	struct stat st;

	return fstat(fs->fd, &st) == 0 && S_ISREG(st.st_mode);
}

static int begin(struct conv *c)
{
	int ret;

	if (c->t)
		return 0;
	ret = trans_begin(c->fs, &c->t);
	if (ret)
		return ret;
	if (!c->image_file) {
		c->t->on_free = on_free;
		c->t->on_free_arg = c;
	}
	return 0;
}

static int commit_tx(struct conv *c, bool force)
{
	int ret;

	if (!c->t)
		return 0;
	ret = c->o->dry_run ? 0 : flush_copies(c);
	if (ret)
		return ret;
	/* Nothing changed: no new generation (re-running a finished job is a no-op). */
	if (c->o->dry_run || (!force && trans_is_empty(c->t))) {
		trans_abort(c->t);
		c->t = NULL;
		return 0;
	}
	ret = trans_commit(c->t);
	c->t = NULL;
	c->since_commit = 0;
	c->st->commits++;
	return ret;
}

static int commit(struct conv *c)
{
	return commit_tx(c, false);
}

static size_t map_home(const struct conv *c, u64 old)
{
	return (size_t)((old >> 12) * 0x9E3779B97F4A7C15ULL >> 20) & (c->map_slots - 1);
}

/* The entry for old usable by ino: shared by all, or private to ino. */
static struct extent_map_entry *map_find(struct conv *c, u64 old, u64 ino)
{
	if (!c->map_slots)
		return NULL;
	for (size_t i = map_home(c, old); c->map[i].old; i = (i + 1) & (c->map_slots - 1))
		if (c->map[i].old == old && (!c->map[i].owner_ino || c->map[i].owner_ino == ino))
			return &c->map[i];
	return NULL;
}

static struct extent_map_entry *map_slot_for(struct conv *c, u64 old)
{
	size_t i = map_home(c, old);

	while (c->map[i].old)
		i = (i + 1) & (c->map_slots - 1);
	return &c->map[i];
}

/* A new zeroed entry for old (pointers into the map die at the next map_add). */
static struct extent_map_entry *map_add(struct conv *c, u64 old)
{
	struct extent_map_entry *m;

	if ((c->map_used + 1) * 2 > c->map_slots) {
		size_t n = c->map_slots ? c->map_slots * 2 : 1024;
		struct extent_map_entry *prev = c->map;
		size_t prev_slots = c->map_slots;

		c->map = calloc(n, sizeof(*c->map));
		if (!c->map) {
			c->map = prev;
			return NULL;
		}
		c->map_slots = n;
		for (size_t i = 0; i < prev_slots; i++)
			if (prev[i].old)
				*map_slot_for(c, prev[i].old) = prev[i];
		free(prev);
	}
	m = map_slot_for(c, old);
	memset(m, 0, sizeof(*m));
	m->old = old;
	c->map_used++;
	return m;
}

/* Remove an entry; later entries of its probe run move back (no tombstones). */
static void map_remove(struct conv *c, struct extent_map_entry *m)
{
	size_t mask = c->map_slots - 1, hole = m - c->map, j = hole;

	m->old = 0;
	c->map_used--;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!c->map[j].old)
			return;
		home = map_home(c, c->map[j].old);
		/* Movable unless its home lies cyclically in (hole, j]. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			c->map[hole] = c->map[j];
			c->map[j].old = 0;
			hole = j;
		}
	}
}

/* ---- inventory ------------------------------------------------------------ */

static int list_inodes(struct fs_info *fs, const struct root_ref *root,
		       struct inode_info **out, size_t *nr)
{
	struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, BTRFS_INODE_ITEM_KEY, 0 }, k;
	struct btrfs_path p;
	size_t cap = 0;
	int ret = search_slot(fs, root, &key, &p);

	*out = NULL;
	*nr = 0;
	if (ret < 0)
		return ret;
	for (ret = 0; path_item_valid(&p); ret = next_item(fs, &p)) {
		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid > BTRFS_LAST_FREE_OBJECTID)
			break;
		if (k.type == BTRFS_INODE_ITEM_KEY && path_size(&p) >= sizeof(struct btrfs_inode_item)) {
			const struct btrfs_inode_item *ii = (const void *)path_ptr(&p);

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
	path_release(fs, &p);
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
static void compute_depths(struct inode_info *v, size_t nr)
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

/*
 * Mark what lies inside the selected directories: directories below one
 * (or one itself), and files or symlinks with any link in such a directory
 * (an encrypted directory may not hold a plain entry).
 */
static int mark_selected(struct fs_info *fs, const struct root_ref *root, struct inode_info *v,
			 size_t nr, const u64 *sel, size_t nsel)
{
	struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, BTRFS_INODE_REF_KEY, 0 }, k;
	struct btrfs_path p;
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
	ret = search_slot(fs, root, &key, &p);
	if (ret < 0)
		return ret;
	for (ret = 0; path_item_valid(&p); ret = next_item(fs, &p)) {
		struct inode_info *child, *parent = NULL;

		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid > BTRFS_LAST_FREE_OBJECTID)
			break;
		if (k.type == BTRFS_INODE_REF_KEY)
			parent = find_inode(v, nr, k.offset);
		else if (k.type == BTRFS_INODE_EXTREF_KEY &&
			 path_size(&p) >= sizeof(struct btrfs_inode_extref))
			parent = find_inode(v, nr, le64_to_cpu(((const struct btrfs_inode_extref *)
								path_ptr(&p))->parent_objectid));
		child = parent ? find_inode(v, nr, k.objectid) : NULL;
		if (child && !S_ISDIR(child->mode) && parent->selected)
			child->selected = true;
	}
	path_release(fs, &p);
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

static int list_subvols(struct fs_info *fs, u64 **out, size_t *nr)
{
	struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, BTRFS_ROOT_ITEM_KEY, 0 }, k;
	struct btrfs_path p;
	size_t cap = 16;
	int ret;

	*out = malloc(cap * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	(*out)[0] = BTRFS_FS_TREE_OBJECTID;
	*nr = 1;
	ret = search_slot(fs, &fs->tree_root, &key, &p);
	if (ret < 0)
		return ret;
	for (ret = 0; path_item_valid(&p); ret = next_item(fs, &p)) {
		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid > BTRFS_LAST_FREE_OBJECTID)
			break;
		if (k.type != BTRFS_ROOT_ITEM_KEY || path_size(&p) < BTRFS_ROOT_ITEM_V0_SIZE ||
		    !le32_to_cpu(((const struct btrfs_root_item *)path_ptr(&p))->refs))
			continue;
		{
			u64 *n = array_grow(*out, &cap, *nr, sizeof(*n));

			if (!n) {
				ret = -ENOMEM;
				break;
			}
			*out = n;
		}
		(*out)[(*nr)++] = k.objectid;
	}
	path_release(fs, &p);
	return ret < 0 ? ret : 0;
}

/* ---- inode contexts --------------------------------------------------------- */

static int read_inode_ctx(struct conv *c, struct trans_root *root, u64 ino,
			  struct fscrypt_context_v2 *ctx)
{
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };
	u32 size;
	int ret = trans_lookup(c->t, root, &key, ctx, sizeof(*ctx), &size);

	if (ret > 0 || (!ret && size < sizeof(*ctx)))
		return fs_err(c->fs, -EUCLEAN, "encrypted inode %llu has no valid context item", ino);
	if (!ret && memcmp(ctx->master_key_identifier, c->o->mk->identifier,
			   FSCRYPT_KEY_IDENTIFIER_SIZE))
		return fs_err(c->fs, -EKEYREJECTED,
			      "inode %llu in tree %llu is encrypted with another master key", ino,
			      root->ref.objectid);
	return ret;
}

/* Give ino a fresh inode context and the ENCRYPT flag (or take them away). */
static int set_inode_encrypted(struct conv *c, struct trans_root *root, u64 ino, bool on,
			       struct fscrypt_context_v2 *ctx)
{
	struct btrfs_inode_item ii;
	struct btrfs_key key = { ino, BTRFS_FSCRYPT_INODE_CTX_KEY, 0 };
	int ret;

	if (on) {
		u8 nonce[FSCRYPT_NONCE_SIZE];

		ret = random_bytes(c->fs, nonce, sizeof(nonce));
		if (ret)
			return ret;
		fscrypt_context_init(ctx, c->o->contents_mode, c->o->filenames_mode,
				     c->o->policy_flags, c->o->mk->identifier, nonce);
		ret = insert_item(c->t, root, &key, ctx, sizeof(*ctx));
	} else {
		ret = trans_delete_item(c->t, root, &key);
	}
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	ret = trans_inode_read(c->t, root, ino, &ii);
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	if (on)
		ii.flags = cpu_to_le64(le64_to_cpu(ii.flags) | BTRFS_INODE_ENCRYPT);
	else
		ii.flags = cpu_to_le64(le64_to_cpu(ii.flags) & ~(u64)BTRFS_INODE_ENCRYPT);
	ii.transid = cpu_to_le64(c->t->transid);
	return trans_inode_write(c->t, root, ino, &ii);
}

static int encrypt_new_extent(struct conv *c, struct trans_root *root, u64 ino, u64 off,
			      const u8 *data, u64 len, bool datasum);
struct file_item;
static bool prealloc_only(struct conv *c, const struct file_item *items, size_t nr, u64 bytenr);
static int encrypt_inline(struct conv *c, struct trans_root *root, u64 ino,
			  const struct file_item *fi, bool datasum);

/* ---- data ---------------------------------------------------------------- */

/* Insert the csums of the present sectors, run by run. */
static int insert_present_csums(struct conv *c, u64 start, const u8 *sums, const u8 *present,
				u64 nsec)
{
	struct fs_info *fs = c->fs;
	int ret = 0;

	for (u64 i = 0; !ret && i < nsec; ) {
		u64 j = i;

		if (!present[i]) {
			i++;
			continue;
		}
		while (j < nsec && present[j])
			j++;
		ret = csum_insert(c->t, start + i * fs->sectorsize, sums + i * fs->csum_size, j - i);
		i = j;
	}
	return ret;
}

static void pending_free(struct pending_copy *pc)
{
	free(pc->mem);
	free(pc->old_sums);
	free(pc->new_sums);
	free(pc->present);
}

/* Free the buffers of *nr copies of v; *nr becomes 0. */
static void free_copies(struct pending_copy *v, size_t *nr)
{
	for (size_t i = 0; i < *nr; i++)
		pending_free(&v[i]);
	*nr = 0;
}

static void drop_pending(struct conv *c)
{
	free_copies(c->pend, &c->nr_pend);
	c->pend_bytes = 0;
}

static void pending_job(struct pending_copy *pc, struct extent_io_job *job)
{
	memset(job, 0, sizeof(*job));
	job->len = pc->len;
	job->flags = pc->mem ? EXTENT_IO_WRITE : EXTENT_IO_READ | EXTENT_IO_WRITE;
	job->mem = pc->mem;
	job->src = (struct extent_io_loc){ pc->src_phys, pc->old, 0,
					   pc->has_old_nonce ? pc->old_nonce : NULL,
					   pc->datasum ? &pc->vin : NULL };
	job->dst = (struct extent_io_loc){ pc->dst_phys, pc->new_bytenr, 0,
					   pc->has_new_nonce ? pc->new_nonce : NULL,
					   pc->datasum ? &pc->vout : NULL };
}

/*
 * Queued copies go to the pipeline a batch at a time: while the workers
 * copy one batch, this thread goes on with the trees and queues the next.
 * The items already point at the copies; every batch is done, and its
 * csums inserted, before the commit (flush_copies()).
 */

/* Wait for the batch in flight, then insert the csums of its copies. */
static int finish_flight(struct conv *c)
{
	struct fs_info *fs = c->fs;
	int ret;

	if (!c->nr_fly)
		return 0;
	ret = extent_io_wait(c->io);
	if (ret == -EBADMSG) {
		/* Name the extent: run the copies one by one up to the bad one. */
		for (size_t i = 0; i < c->nr_fly; i++) {
			if (extent_io_run(c->io, &c->fly_jobs[i], 1) == -EBADMSG) {
				ret = fs_err(fs, -EUCLEAN, "extent %llu: data checksum mismatch; "
					     "not converting it", c->fly[i].old);
				break;
			}
		}
		if (ret == -EBADMSG)
			ret = fs_err(fs, -EUCLEAN, "data checksum mismatch; not converting");
	} else if (ret) {
		ret = fs_err(fs, ret, "data copy failed: %s", strerror(-ret));
	}
	for (size_t i = 0; !ret && i < c->nr_fly; i++) {
		struct pending_copy *pc = &c->fly[i];

		if (pc->datasum)
			ret = insert_present_csums(c, pc->new_bytenr, pc->new_sums, pc->present,
						   pc->len / fs->sectorsize);
	}
	free_copies(c->fly, &c->nr_fly);
	return ret;
}

/* Send the queued copies to the workers (after the previous batch is done). */
static int start_flight(struct conv *c)
{
	struct pending_copy *swap = c->fly;
	size_t cap = c->cap_fly;
	int ret = finish_flight(c);

	if (ret || !c->nr_pend)
		return ret;
	if (c->nr_pend > c->cap_jobs) {
		struct extent_io_job *n = realloc(c->fly_jobs, c->nr_pend * sizeof(*n));

		if (!n)
			return fs_err(c->fs, -ENOMEM, "out of memory");
		c->fly_jobs = n;
		c->cap_jobs = c->nr_pend;
	}
	c->fly = c->pend;
	c->cap_fly = c->cap_pend;
	c->nr_fly = c->nr_pend;
	c->pend = swap;
	c->cap_pend = cap;
	c->nr_pend = 0;
	c->pend_bytes = 0;
	for (size_t i = 0; i < c->nr_fly; i++)
		pending_job(&c->fly[i], &c->fly_jobs[i]);
	ret = extent_io_start(c->io, c->fly_jobs, c->nr_fly);
	if (ret) {
		free_copies(c->fly, &c->nr_fly);
		return fs_err(c->fs, ret, "cannot start the data copies: %s", strerror(-ret));
	}
	return 0;
}

/* Every queued copy done and its csums inserted. */
static int flush_copies(struct conv *c)
{
	int ret = start_flight(c);

	return ret ? ret : finish_flight(c);
}

/* On the way out after an error: let the workers finish, forget the copies. */
static void drop_copies(struct conv *c)
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
static int queue_copy(struct conv *c, u64 old, u8 *mem, u64 len, bool datasum,
		      const u8 *old_nonce, const u8 *new_nonce, u64 *new_out)
{
	struct fs_info *fs = c->fs;
	struct trans_root *cr = trans_get_root(c->t, BTRFS_CSUM_TREE_OBJECTID);
	u64 nsec = len / fs->sectorsize, new_bytenr;
	const struct chunk_map *om = mem ? NULL : find_chunk(fs, old), *nm;
	struct pending_copy *pc;
	int ret;

	if (!cr || (!mem && !om)) {
		free(mem);
		return fs_err(fs, -EUCLEAN, "extent %llu is not mapped", old);
	}
	ret = alloc_data_extent(c->t, len, &new_bytenr);
	nm = ret ? NULL : find_chunk(fs, new_bytenr);
	if (!ret && (!nm || nm->num_stripes > 1 || (om && om->num_stripes > 1)))
		ret = fs_err(fs, -EOPNOTSUPP, "data in DUP block groups is not supported");
	pc = ret ? NULL : array_grow(c->pend, &c->cap_pend, c->nr_pend, sizeof(*pc));
	if (!pc) {
		free(mem);
		return ret ? ret : fs_err(fs, -ENOMEM, "out of memory");
	}
	c->pend = pc;
	pc = &c->pend[c->nr_pend];
	memset(pc, 0, sizeof(*pc));
	pc->mem = mem;
	pc->old = old;
	pc->new_bytenr = new_bytenr;
	pc->len = len;
	pc->src_phys = om ? om->physical[0] + (old - om->logical) : 0;
	pc->dst_phys = nm->physical[0] + (new_bytenr - nm->logical);
	pc->datasum = datasum;
	if (old_nonce) {
		memcpy(pc->old_nonce, old_nonce, sizeof(pc->old_nonce));
		pc->has_old_nonce = true;
	}
	if (new_nonce) {
		memcpy(pc->new_nonce, new_nonce, sizeof(pc->new_nonce));
		pc->has_new_nonce = true;
	}
	if (datasum) {
		long found = nsec;

		pc->old_sums = malloc(nsec * fs->csum_size);
		pc->new_sums = malloc(nsec * fs->csum_size);
		pc->present = malloc(nsec);
		if (!pc->old_sums || !pc->new_sums || !pc->present) {
			pending_free(pc);
			return fs_err(fs, -ENOMEM, "out of memory");
		}
		if (mem)
			memset(pc->present, 1, nsec);	/* new data: every sector gets a csum */
		else
			found = csum_lookup_range(fs, &cr->ref, old, nsec, pc->old_sums, pc->present);
		if (found < 0) {
			pending_free(pc);
			return found;
		}
		pc->vin = (struct sector_sums){ fs->csum_type, fs->csum_size, fs->sectorsize, old,
						nsec, pc->old_sums, pc->present, true };
		pc->vout = (struct sector_sums){ fs->csum_type, fs->csum_size, fs->sectorsize,
						 new_bytenr, nsec, pc->new_sums, pc->present, false };
	}
	c->nr_pend++;
	c->pend_bytes += len;
	*new_out = new_bytenr;
	if (c->pend_bytes >= FLUSH_BYTES || c->nr_pend >= FLUSH_COPIES)
		return start_flight(c);
	return 0;
}

static int copy_extent(struct conv *c, u64 old, u64 len, bool datasum, const u8 *old_nonce,
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

static int all_refs_in_target(struct conv *c, u64 bytenr, bool *all)
{
	struct trans_root *er = trans_get_root(c->t, BTRFS_EXTENT_TREE_OBJECTID);
	struct btrfs_key key = { bytenr, BTRFS_EXTENT_ITEM_KEY, 0 }, k;
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
	for (ret = 0; path_item_valid(&p) && *all; ret = next_item(c->fs, &p)) {
		const u8 *ptr, *end;

		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid != bytenr)
			break;
		ptr = path_ptr(&p);
		end = ptr + path_size(&p);
		if (k.type == BTRFS_EXTENT_ITEM_KEY) {
			for (ptr += sizeof(struct btrfs_extent_item); ptr < end; ) {
				if (*ptr == BTRFS_EXTENT_DATA_REF_KEY &&
				    ptr + 1 + sizeof(struct btrfs_extent_data_ref) <= end) {
					const struct btrfs_extent_data_ref *dr = (const void *)(ptr + 1);
					bool in = false;

					for (size_t i = 0; i < c->o->nr_subvols; i++)
						in |= c->o->subvols[i] == le64_to_cpu(dr->root);
					*all &= in;
					ptr += 1 + sizeof(*dr);
				} else {
					*all = false;	/* shared leaf refs: sharers unknown */
					break;
				}
			}
		} else if (k.type == BTRFS_SHARED_DATA_REF_KEY) {
			*all = false;
		} else if (k.type == BTRFS_EXTENT_DATA_REF_KEY &&
			   path_size(&p) >= sizeof(struct btrfs_extent_data_ref)) {
			const struct btrfs_extent_data_ref *dr = (const void *)ptr;
			bool in = false;

			for (size_t i = 0; i < c->o->nr_subvols; i++)
				in |= c->o->subvols[i] == le64_to_cpu(dr->root);
			*all &= in;
		}
	}
	path_release(c->fs, &p);
	return ret < 0 ? ret : 0;
}

struct file_item {
	struct btrfs_key key;
	u32 size;
	u8 data[sizeof(struct btrfs_file_extent_item)];
	u8 *inline_data;	/* inline extents: their bytes */
	u32 inline_len;
	bool shared_leaf;	/* another tree may see this item too */
};

static int collect_file_items(struct conv *c, struct trans_root *root, u64 ino,
			      struct file_item **out, size_t *nr)
{
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, 0 }, k;
	struct btrfs_path p;
	size_t cap = 0;
	int ret = search_slot(c->fs, &root->ref, &key, &p);

	*out = NULL;
	*nr = 0;
	if (ret < 0)
		return ret;
	for (ret = 0; path_item_valid(&p); ret = next_item(c->fs, &p)) {
		struct file_item *fi;
		const struct btrfs_file_extent_item *fe = (const void *)path_ptr(&p);

		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid != ino || k.type != BTRFS_EXTENT_DATA_KEY)
			break;
		if (path_size(&p) < BTRFS_FILE_EXTENT_INLINE_DATA_START ||
		    (fe->type != BTRFS_FILE_EXTENT_INLINE && path_size(&p) < sizeof(*fe))) {
			ret = fs_err(c->fs, -EUCLEAN, "inode %llu: bad file extent at %llu", ino,
				     k.offset);
			break;
		}
		{
			struct file_item *n = array_grow(*out, &cap, *nr, sizeof(*n));

			if (!n) {
				ret = -ENOMEM;
				break;
			}
			*out = n;
		}
		fi = &(*out)[(*nr)++];
		memset(fi, 0, sizeof(*fi));
		fi->key = k;
		fi->size = path_size(&p);
		/*
		 * Another tree may reach this item if the tree was ever
		 * snapshotted, or the leaf is not its own.  (A leaf's generation
		 * says nothing here: one COWed earlier in this transaction may
		 * come from a shared leaf whose new references are not in the
		 * extent tree before the commit.)
		 */
		fi->shared_leaf = root->last_snapshot ||
				  tb_owner(p.nodes[0]) != root->ref.objectid;
		memcpy(fi->data, fe, fi->size < sizeof(fi->data) ? fi->size : sizeof(fi->data));
		if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
			fi->inline_len = fi->size - BTRFS_FILE_EXTENT_INLINE_DATA_START;
			fi->inline_data = malloc(fi->inline_len + 1);
			if (!fi->inline_data) {
				ret = -ENOMEM;
				break;
			}
			memcpy(fi->inline_data, path_ptr(&p) + BTRFS_FILE_EXTENT_INLINE_DATA_START,
			       fi->inline_len);
		}
	}
	path_release(c->fs, &p);
	return ret < 0 ? ret : 0;
}

static void free_file_items(struct file_item *v, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		free(v[i].inline_data);
	free(v);
}

/* Rewrite one EXTENT_DATA item to point at a converted extent. */
static int repoint_item(struct conv *c, struct trans_root *root, const struct file_item *fi,
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
		mf->encryption = c->o->decrypt ? BTRFS_ENCRYPTION_NONE : BTRFS_ENCRYPTION_FSCRYPT;
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
	rc.bytenr = new_bytenr;
	rc.delta = 1;
	rc.new_extent = new_extent;
	rc.generation = c->t->transid;
	ret = queue_ref(c->t, &rc);
	if (ret)
		return ret;
	if (c->o->decrypt) {
		struct btrfs_key ck = { ino, BTRFS_FSCRYPT_CTX_KEY, fi->key.offset };

		ret = trans_delete_item(c->t, root, &ck);
		return ret > 0 ? 0 : ret;
	} else {
		struct fscrypt_extent_context ectx;
		struct btrfs_key ck = { ino, BTRFS_FSCRYPT_CTX_KEY, fi->key.offset };

		fscrypt_extent_context_init(&ectx, c->o->contents_mode, c->o->mk->identifier, nonce);
		return insert_item(c->t, root, &ck, &ectx, sizeof(ectx));
	}
}

/* The extent context of an encrypted item (decrypt needs its nonce). */
static int item_nonce(struct conv *c, struct trans_root *root, const struct file_item *fi,
		      u8 *nonce)
{
	struct btrfs_key ck = { fi->key.objectid, BTRFS_FSCRYPT_CTX_KEY, fi->key.offset };
	struct fscrypt_extent_context ectx;
	u32 size;
	int ret = trans_lookup(c->t, root, &ck, &ectx, sizeof(ectx), &size);

	if (ret > 0 || (!ret && size < sizeof(ectx)))
		return fs_err(c->fs, -EUCLEAN, "inode %llu: encrypted extent at %llu has no context",
			      fi->key.objectid, fi->key.offset);
	if (!ret && memcmp(ectx.master_key_identifier, c->o->mk->identifier,
			   FSCRYPT_KEY_IDENTIFIER_SIZE))
		return fs_err(c->fs, -EKEYREJECTED, "inode %llu: extent at %llu uses another key",
			      fi->key.objectid, fi->key.offset);
	if (!ret)
		memcpy(nonce, ectx.nonce, FSCRYPT_NONCE_SIZE);
	return ret;
}

/* refs of an extent item (0 if absent or unreadable). */
static u64 extent_refs(struct conv *c, u64 bytenr)
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
 * Whether nothing can read data of this extent: every reference is a
 * PREALLOC item of this inode.  A partly written prealloc extent is also
 * referenced by REG items, whose data must be copied.
 */
static bool prealloc_only(struct conv *c, const struct file_item *items, size_t nr, u64 bytenr)
{
	u64 mine = 0;

	for (size_t i = 0; i < nr; i++) {
		const struct btrfs_file_extent_item *fe = (const void *)items[i].data;

		if (fe->type == BTRFS_FILE_EXTENT_INLINE || le64_to_cpu(fe->disk_bytenr) != bytenr)
			continue;
		if (fe->type != BTRFS_FILE_EXTENT_PREALLOC)
			return false;
		mine++;
	}
	return extent_refs(c, bytenr) == mine;
}

/*
 * After a file: forget the extents no later item can reach.  Private copies
 * and extents whose every reference is an item of this file, all in leaves
 * no snapshot shares, are done; the others stay for their other sharers.
 */
static void map_forget_file(struct conv *c, u64 ino, const u64 *created, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		struct extent_map_entry *m = map_find(c, created[i], ino);

		if (!m || m->shared_leaf)
			continue;
		if (!m->owner_ino && extent_refs(c, m->old) != m->visits)
			continue;
		map_remove(c, m);
	}
}

static int convert_file_data(struct conv *c, struct trans_root *root, u64 ino, bool datasum)
{
	struct file_item *items;
	u64 *created = NULL;
	size_t nr, nr_created = 0;
	int ret = collect_file_items(c, root, ino, &items, &nr);

	if (!ret && nr && !(created = malloc(nr * sizeof(*created))))
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < nr; i++) {
		struct file_item *fi = &items[i];
		const struct btrfs_file_extent_item *fe = (const void *)fi->data;
		u64 old = le64_to_cpu(fe->disk_bytenr), len = le64_to_cpu(fe->disk_num_bytes);
		struct extent_map_entry *m;
		u8 old_nonce[FSCRYPT_NONCE_SIZE];
		bool fresh = false;

		if (fe->type == BTRFS_FILE_EXTENT_INLINE) {
			if (c->o->decrypt)
				continue;	/* encrypted files have none */
			/* Inline data becomes a regular encrypted extent (format.md 5.3). */
			ret = trans_delete_item(c->t, root, &fi->key);
			if (!ret)
				ret = encrypt_inline(c, root, ino, fi, datasum);
			c->nbytes_changed = true;
			continue;
		}
		if (!old)
			continue;	/* holes stay holes */
		if (c->o->decrypt && fe->encryption) {
			ret = item_nonce(c, root, fi, old_nonce);
			if (ret)
				break;
		} else if (c->o->decrypt || fe->encryption) {
			continue;	/* already in the wanted state */
		}
		m = map_find(c, old, ino);
		if (!m) {
			bool all;

			ret = all_refs_in_target(c, old, &all);
			if (ret)
				break;
			m = map_add(c, old);
			if (!m) {
				ret = -ENOMEM;
				break;
			}
			m->owner_ino = all ? 0 : ino;
			created[nr_created++] = old;
			if (!c->o->decrypt && (ret = random_bytes(c->fs, m->nonce, sizeof(m->nonce))))
				break;
			if (fe->type == BTRFS_FILE_EXTENT_PREALLOC &&
			    prealloc_only(c, items, nr, old)) {
				/* Prealloc: contexts only, no data to convert (reads as zeros). */
				ret = alloc_data_extent(c->t, len, &m->new_bytenr);
			} else {
				ret = copy_extent(c, old, len, datasum,
						  c->o->decrypt ? old_nonce : NULL,
						  c->o->decrypt ? NULL : m->nonce, &m->new_bytenr);
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

/* An inline extent's plaintext (decompressed) as a new encrypted regular extent. */
static int encrypt_inline(struct conv *c, struct trans_root *root, u64 ino,
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
	plain = calloc(1, ram + 1);
	if (!plain)
		return -ENOMEM;
	n = btrfs_decompress(fe->compression, fi->inline_data, fi->inline_len, plain, ram,
			     c->fs->sectorsize);
	if (n < 0)
		ret = fs_err(c->fs, -EUCLEAN, "inode %llu: compressed inline extent does not decompress",
			     ino);
	else
		ret = encrypt_new_extent(c, root, ino, fi->key.offset, plain, ram, datasum);
	free(plain);
	return ret;
}

/* ---- per inode ------------------------------------------------------------- */

static int fix_nbytes(struct conv *c, struct trans_root *root, u64 ino, u64 size_override,
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

static int convert_symlink(struct conv *c, struct trans_root *root, u64 ino,
			   const struct fscrypt_context_v2 *ctx)
{
	struct fs_info *fs = c->fs;
	struct file_item *items;
	size_t nr;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE], out[4096 + 64];
	u8 item[BTRFS_FILE_EXTENT_INLINE_DATA_START + sizeof(out)];
	struct btrfs_file_extent_item *fe = (void *)item;
	struct btrfs_inode_item ii;
	u32 max_data = fs->sectorsize - 1;
	int len, ret;

	if (max_data > max_item_size(fs) - BTRFS_FILE_EXTENT_INLINE_DATA_START)
		max_data = max_item_size(fs) - BTRFS_FILE_EXTENT_INLINE_DATA_START;
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
	ret = fscrypt_derive_file_key(c->o->mk, ctx->nonce, ctx->filenames_mode, key, NULL);
	if (!ret && !c->o->decrypt) {
		u64 tlen = le64_to_cpu(ii.size);

		/* mkfs 6.2 stores the target with a trailing NUL: the target is i_size bytes. */
		if (tlen > items[0].inline_len)
			tlen = items[0].inline_len;
		len = fscrypt_symlink_encrypt(ctx->filenames_mode, key, ctx->flags,
					      items[0].inline_data, tlen, max_data, out, sizeof(out));
	} else if (!ret) {
		len = fscrypt_symlink_decrypt(ctx->filenames_mode, key, items[0].inline_data,
					      items[0].inline_len, out, sizeof(out));
	}
	explicit_bzero(key, sizeof(key));
	if (!ret && len < 0)
		ret = len == -EBADMSG ? fs_err(fs, -EKEYREJECTED, "symlink %llu does not decrypt", ino)
				      : fs_err(fs, len, "symlink %llu: target cannot be converted", ino);
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

static int convert_nondir(struct conv *c, struct trans_root *root, const struct inode_info *ii)
{
	struct fscrypt_context_v2 ctx;
	bool is_link = S_ISLNK(ii->mode);
	int ret;

	if (!S_ISREG(ii->mode) && !is_link)
		return 0;
	if (!!(ii->flags & BTRFS_INODE_ENCRYPT) != c->o->decrypt) {
		/* Already in the wanted state: verify the key (resume). */
		if (ii->flags & BTRFS_INODE_ENCRYPT) {
			ret = begin(c);
			return ret ? ret : read_inode_ctx(c, root, ii->ino, &ctx);
		}
		return 0;
	}
	ret = begin(c);
	if (ret)
		return ret;
	c->nbytes_changed = false;
	if (c->o->decrypt) {
		ret = read_inode_ctx(c, root, ii->ino, &ctx);
		if (ret)
			return ret;
		if (is_link)
			ret = convert_symlink(c, root, ii->ino, &ctx);
		else
			ret = convert_file_data(c, root, ii->ino, !(ii->flags & BTRFS_INODE_NODATASUM));
		if (!ret)
			ret = set_inode_encrypted(c, root, ii->ino, false, &ctx);
	} else {
		ret = set_inode_encrypted(c, root, ii->ino, true, &ctx);
		if (!ret && is_link)
			ret = convert_symlink(c, root, ii->ino, &ctx);
		else if (!ret)
			ret = convert_file_data(c, root, ii->ino, !(ii->flags & BTRFS_INODE_NODATASUM));
	}
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
		return commit(c);
	return 0;
}

/* Inline data of a file becomes a regular encrypted extent. */
static int encrypt_new_extent(struct conv *c, struct trans_root *root, u64 ino, u64 off,
			      const u8 *data, u64 len, bool datasum)
{
	struct fs_info *fs = c->fs;
	struct fscrypt_extent_context ectx;
	u8 nonce[FSCRYPT_NONCE_SIZE], *buf;
	u64 alen = (len + fs->sectorsize - 1) / fs->sectorsize * fs->sectorsize, bytenr;
	int ret = random_bytes(fs, nonce, sizeof(nonce));

	if (ret)
		return ret;
	buf = calloc(1, alen);
	if (!buf)
		return fs_err(fs, -ENOMEM, "out of memory");
	memcpy(buf, data, len);
	ret = queue_copy(c, 0, buf, alen, datasum, NULL, nonce, &bytenr);
	if (ret)
		return ret;
	fscrypt_extent_context_init(&ectx, c->o->contents_mode, c->o->mk->identifier, nonce);
	ret = data_extent_insert(c->t, root, ino, off, bytenr, alen, &ectx);
	if (!ret) {
		c->sv->extents++;
		c->st->extents++;
		c->since_commit += alen;
	}
	return ret;
}

/* ---- directories ------------------------------------------------------------ */

struct dir_entry {
	u64 index;
	struct btrfs_dir_item di;	/* location, transid, data_len, name_len, type */
	u8 name[BTRFS_NAME_LEN];
	u8 new_name[FNAME_MAX_LEN];
	u32 new_len;
};

static int collect_entries(struct conv *c, struct trans_root *root, u64 dir,
			   struct dir_entry **out, size_t *nr)
{
	struct btrfs_key key = { dir, BTRFS_DIR_INDEX_KEY, 0 }, k;
	struct btrfs_path p;
	size_t cap = 0;
	int ret = search_slot(c->fs, &root->ref, &key, &p);

	*out = NULL;
	*nr = 0;
	if (ret < 0)
		return ret;
	for (ret = 0; path_item_valid(&p); ret = next_item(c->fs, &p)) {
		const struct btrfs_dir_item *di = (const void *)path_ptr(&p);
		struct dir_entry *e;
		u32 nl;

		if (ret < 0)
			break;
		path_key(&p, &k);
		if (k.objectid != dir || k.type != BTRFS_DIR_INDEX_KEY)
			break;
		nl = path_size(&p) >= sizeof(*di) ? le16_to_cpu(di->name_len) : 0;
		if (!nl || nl > BTRFS_NAME_LEN || sizeof(*di) + nl > path_size(&p)) {
			ret = fs_err(c->fs, -EUCLEAN, "dir %llu: bad dir index %llu", dir, k.offset);
			break;
		}
		{
			struct dir_entry *n = array_grow(*out, &cap, *nr, sizeof(*n));

			if (!n) {
				ret = -ENOMEM;
				break;
			}
			*out = n;
		}
		e = &(*out)[(*nr)++];
		e->index = k.offset;
		memcpy(&e->di, di, sizeof(*di));
		memcpy(e->name, di + 1, nl);
	}
	path_release(c->fs, &p);
	return ret < 0 ? ret : 0;
}

/* Remove the entry named name from the (possibly shared) DIR_ITEM at key. */
static int remove_dir_item_entry(struct conv *c, struct trans_root *root,
				 const struct btrfs_key *key, const u8 *name, u32 nl)
{
	struct btrfs_path p;
	int ret = search_slot_mod(c->t, root, key, &p, -1);
	u8 *ptr;
	u32 size, pos = 0;

	if (ret) {
		path_release(c->fs, &p);
		return ret < 0 ? ret : fs_err(c->fs, -EUCLEAN, "dir %llu: missing dir item for an entry",
					      key->objectid);
	}
	ptr = path_ptr_mut(&p);
	size = path_size(&p);
	while (pos + sizeof(struct btrfs_dir_item) <= size) {
		struct btrfs_dir_item *di = (void *)(ptr + pos);
		u32 len = sizeof(*di) + le16_to_cpu(di->name_len) + le16_to_cpu(di->data_len);

		if (pos + len > size)
			break;
		if (le16_to_cpu(di->name_len) == nl && !memcmp(di + 1, name, nl)) {
			if (len == size) {
				ret = del_items(c->t, root, &p, 1);
			} else {
				memmove(ptr + pos, ptr + pos + len, size - pos - len);
				ret = resize_item(c->t, root, &p, size - len);
			}
			path_release(c->fs, &p);
			return ret;
		}
		pos += len;
	}
	path_release(c->fs, &p);
	return fs_err(c->fs, -EUCLEAN, "dir %llu: dir item does not hold an entry of its index",
		      key->objectid);
}

static int add_dir_item_entry(struct conv *c, struct trans_root *root, const struct btrfs_key *key,
			      const u8 *entry, u32 len)
{
	struct btrfs_path p;
	int ret = insert_item(c->t, root, key, entry, len);

	if (ret != -EEXIST)
		return ret;
	ret = search_slot_mod(c->t, root, key, &p, len);
	if (!ret) {
		u32 old = path_size(&p);

		ret = resize_item(c->t, root, &p, old + len);
		if (!ret)
			memcpy(path_ptr_mut(&p) + old, entry, len);
	}
	path_release(c->fs, &p);
	return ret > 0 ? -EUCLEAN : ret;
}

/*
 * INODE_EXTREF (ino, 13, crc32c_raw(parent, name)): items with colliding
 * hashes hold several {parent, index, name_len, name} entries.
 */
static int del_extref(struct conv *c, struct trans_root *root, u64 ino, u64 dir,
		      const u8 *name, u32 nl)
{
	struct btrfs_key key = { ino, BTRFS_INODE_EXTREF_KEY, crc32c_raw((u32)dir, name, nl) };
	struct btrfs_path p;
	int ret = search_slot_mod(c->t, root, &key, &p, -1);
	u8 *ptr;
	u32 size, pos = 0;

	if (ret) {
		path_release(c->fs, &p);
		return ret;
	}
	ptr = path_ptr_mut(&p);
	size = path_size(&p);
	while (pos + sizeof(struct btrfs_inode_extref) <= size) {
		struct btrfs_inode_extref *x = (void *)(ptr + pos);
		u32 len = sizeof(*x) + le16_to_cpu(x->name_len);

		if (pos + len > size)
			break;
		if (le64_to_cpu(x->parent_objectid) == dir && le16_to_cpu(x->name_len) == nl &&
		    !memcmp(x + 1, name, nl)) {
			if (len == size) {
				ret = del_items(c->t, root, &p, 1);
			} else {
				memmove(ptr + pos, ptr + pos + len, size - pos - len);
				ret = resize_item(c->t, root, &p, size - len);
			}
			path_release(c->fs, &p);
			return ret;
		}
		pos += len;
	}
	path_release(c->fs, &p);
	return 1;
}

static int add_extref(struct conv *c, struct trans_root *root, u64 ino, u64 dir,
		      const struct dir_entry *e)
{
	struct btrfs_key key = { ino, BTRFS_INODE_EXTREF_KEY,
				 crc32c_raw((u32)dir, e->new_name, e->new_len) };
	u8 buf[sizeof(struct btrfs_inode_extref) + FNAME_MAX_LEN];
	struct btrfs_inode_extref *x = (void *)buf;
	u32 len = sizeof(*x) + e->new_len;
	struct btrfs_path p;
	int ret;

	x->parent_objectid = cpu_to_le64(dir);
	x->index = cpu_to_le64(e->index);
	x->name_len = cpu_to_le16(e->new_len);
	memcpy(x + 1, e->new_name, e->new_len);
	ret = insert_item(c->t, root, &key, buf, len);
	if (ret != -EEXIST)
		return ret;
	ret = search_slot_mod(c->t, root, &key, &p, len);
	if (!ret) {
		u32 old = path_size(&p);

		ret = resize_item(c->t, root, &p, old + len);
		if (!ret)
			memcpy(path_ptr_mut(&p) + old, buf, len);
	}
	path_release(c->fs, &p);
	return ret > 0 ? -EUCLEAN : ret;
}

/* Replace the name of the back reference with this index (INODE_REF / EXTREF / ROOT refs). */
static int rename_backref(struct conv *c, struct trans_root *root, u64 dir,
			  const struct dir_entry *e)
{
	struct btrfs_key loc, key;
	struct btrfs_path p;
	u32 old_nl = le16_to_cpu(e->di.name_len);
	int ret;

	btrfs_disk_key_to_cpu(&loc, &e->di.location);
	if (loc.type == BTRFS_ROOT_ITEM_KEY) {
		/* A subvolume entry: ROOT_REF and ROOT_BACKREF in the root tree hold the name. */
		struct trans_root *rt = trans_get_root(c->t, BTRFS_ROOT_TREE_OBJECTID);
		struct btrfs_key keys[2] = {
			{ root->ref.objectid, BTRFS_ROOT_REF_KEY, loc.objectid },
			{ loc.objectid, BTRFS_ROOT_BACKREF_KEY, root->ref.objectid },
		};

		for (int i = 0; i < 2; i++) {
			u8 buf[sizeof(struct btrfs_root_ref) + BTRFS_NAME_LEN];
			struct btrfs_root_ref *rr = (void *)buf;
			u32 size;

			ret = trans_lookup(c->t, rt, &keys[i], buf, sizeof(buf), &size);
			/*
			 * No ROOT_REF from this tree: the entry was copied into a
			 * snapshot and names no subvolume here (the kernel shows an
			 * empty directory), so there is no back reference to rename.
			 */
			if (ret > 0 && i == 0)
				return 0;
			if (ret)
				return ret > 0 ? fs_err(c->fs, -EUCLEAN, "subvolume %llu: missing root backref",
							loc.objectid) : ret;
			rr->name_len = cpu_to_le16(e->new_len);
			memcpy(rr + 1, e->new_name, e->new_len);
			ret = trans_delete_item(c->t, rt, &keys[i]);
			if (!ret)
				ret = insert_item(c->t, rt, &keys[i], buf, sizeof(*rr) + e->new_len);
			if (ret)
				return ret > 0 ? -EUCLEAN : ret;
		}
		return 0;
	}
	key = (struct btrfs_key){ loc.objectid, BTRFS_INODE_REF_KEY, dir };
	{
		u32 cur = 0;

		/* If the grown item could not fit any leaf, do not ask for room: spill. */
		if (trans_lookup(c->t, root, &key, NULL, 0, &cur) == 0 &&
		    cur - old_nl + e->new_len > max_item_size(c->fs))
			ret = search_slot_mod(c->t, root, &key, &p, 0);
		else
			ret = search_slot_mod(c->t, root, &key, &p,
					      e->new_len > old_nl ? e->new_len - old_nl : 0);
	}
	if (ret == 0) {
		u8 *ptr = path_ptr_mut(&p);
		u32 size = path_size(&p), pos = 0;

		while (pos + sizeof(struct btrfs_inode_ref) <= size) {
			struct btrfs_inode_ref *r = (void *)(ptr + pos);
			u32 nl = le16_to_cpu(r->name_len), len = sizeof(*r) + nl;

			if (pos + len > size)
				break;
			if (le64_to_cpu(r->index) == e->index) {
				u32 nsize = size - nl + e->new_len;

				if (nsize > max_item_size(c->fs) &&
				    (c->fs->incompat & BTRFS_FEATURE_INCOMPAT_EXTENDED_IREF) &&
				    size > len) {
					/*
					 * The renamed ref would make the item larger than
					 * any leaf holds: move it to an INODE_EXTREF, as the
					 * kernel does when an INODE_REF cannot grow.
					 */
					memmove(ptr + pos, ptr + pos + len, size - pos - len);
					ret = resize_item(c->t, root, &p, size - len);
					path_release(c->fs, &p);
					return ret ? ret : add_extref(c, root, loc.objectid, dir, e);
				}
				if (nsize > size) {
					ret = resize_item(c->t, root, &p, nsize);
					ptr = path_ptr_mut(&p);
					r = (void *)(ptr + pos);
				}
				if (ret)
					break;
				memmove(ptr + pos + sizeof(*r) + e->new_len, ptr + pos + len,
					size - pos - len);
				memcpy(r + 1, e->new_name, e->new_len);
				r->name_len = cpu_to_le16(e->new_len);
				if (nsize < size)
					ret = resize_item(c->t, root, &p, nsize);
				path_release(c->fs, &p);
				return ret;
			}
			pos += len;
		}
	}
	path_release(c->fs, &p);
	if (ret < 0)
		return ret;
	/* Not in the INODE_REF: an INODE_EXTREF keyed by the name's hash. */
	ret = del_extref(c, root, loc.objectid, dir, e->name, old_nl);
	if (ret)
		return ret > 0 ? fs_err(c->fs, -EUCLEAN, "inode %llu: no ref for index %llu",
					loc.objectid, e->index) : ret;
	return add_extref(c, root, loc.objectid, dir, e);
}

/*
 * An encrypted directory may only name an encrypted subvolume root, and a
 * plain one only a plain root: nested subvolumes are converted first on
 * encrypt and last on decrypt, so this holds unless the selection split them.
 */
static int check_subvol_entry(struct conv *c, const struct dir_entry *e)
{
	struct btrfs_key loc;
	struct trans_root *sub;
	struct btrfs_inode_item ii;
	u64 top;
	int ret;

	btrfs_disk_key_to_cpu(&loc, &e->di.location);
	if (loc.type != BTRFS_ROOT_ITEM_KEY || c->o->decrypt)
		return 0;
	{
		struct btrfs_key rk = { c->cur_tree, BTRFS_ROOT_REF_KEY, loc.objectid };

		if (trans_lookup(c->t, trans_get_root(c->t, BTRFS_ROOT_TREE_OBJECTID), &rk,
				 NULL, 0, NULL) > 0)
			return 0;	/* a snapshot's placeholder, not a link */
	}
	sub = trans_get_root(c->t, loc.objectid);
	if (!sub)
		return 0;	/* a dangling entry: nothing to protect */
	ret = subvol_root_dir(c->fs, loc.objectid, &top);
	if (!ret)
		ret = trans_inode_read(c->t, sub, top, &ii);
	if (ret)
		return ret < 0 ? ret : 0;
	if (!(le64_to_cpu(ii.flags) & BTRFS_INODE_ENCRYPT))
		return fs_err(c->fs, -EOPNOTSUPP,
			      "a selected directory contains subvolume %llu, which is not being encrypted; select it too (--subvol %llu)",
			      loc.objectid, loc.objectid);
	return 0;
}

static int convert_dir(struct conv *c, struct trans_root *root, const struct inode_info *ii)
{
	struct fs_info *fs = c->fs;
	struct fscrypt_context_v2 ctx;
	struct dir_entry *ents = NULL;
	size_t nr = 0;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE];
	u64 dsize = 0;
	int ret;

	if (!!(ii->flags & BTRFS_INODE_ENCRYPT) != c->o->decrypt) {
		if (ii->flags & BTRFS_INODE_ENCRYPT) {
			ret = begin(c);
			return ret ? ret : read_inode_ctx(c, root, ii->ino, &ctx);
		}
		return 0;
	}
	ret = begin(c);
	if (ret)
		return ret;
	if (c->o->decrypt)
		ret = read_inode_ctx(c, root, ii->ino, &ctx);
	else
		ret = set_inode_encrypted(c, root, ii->ino, true, &ctx);
	if (!ret)
		ret = fscrypt_derive_file_key(c->o->mk, ctx.nonce, ctx.filenames_mode, key, NULL);
	if (!ret)
		ret = collect_entries(c, root, ii->ino, &ents, &nr);
	for (size_t i = 0; !ret && i < nr; i++) {
		struct dir_entry *e = &ents[i];
		u32 nl = le16_to_cpu(e->di.name_len);
		int n;

		if (c->o->decrypt)
			n = fname_decrypt(ctx.filenames_mode, key, e->name, nl, e->new_name);
		else
			n = fname_encrypt(ctx.filenames_mode, key, ctx.flags, e->name, nl, e->new_name);
		if (n < 0) {
			ret = n == -EBADMSG ? fs_err(fs, -EKEYREJECTED,
						     "dir %llu: entry %llu does not decrypt to a valid name",
						     ii->ino, e->index)
					    : fs_err(fs, n, "dir %llu: cannot convert entry %llu", ii->ino,
						     e->index);
			break;
		}
		e->new_len = n;
		dsize += 2 * (u64)n;
		ret = check_subvol_entry(c, e);
	}
	explicit_bzero(key, sizeof(key));
	for (size_t i = 0; !ret && i < nr; i++) {
		struct dir_entry *e = &ents[i];
		u32 nl = le16_to_cpu(e->di.name_len);
		u8 entry[sizeof(struct btrfs_dir_item) + FNAME_MAX_LEN];
		struct btrfs_dir_item *di = (void *)entry;
		struct btrfs_key k = { ii->ino, BTRFS_DIR_ITEM_KEY, btrfs_name_hash(e->name, nl) };

		memcpy(di, &e->di, sizeof(*di));
		di->name_len = cpu_to_le16(e->new_len);
		di->data_len = 0;
		di->type = c->o->decrypt ? (u8)(e->di.type & ~BTRFS_FT_ENCRYPTED)
					 : (u8)(e->di.type | BTRFS_FT_ENCRYPTED);
		memcpy(di + 1, e->new_name, e->new_len);
		ret = remove_dir_item_entry(c, root, &k, e->name, nl);
		k.offset = btrfs_name_hash(e->new_name, e->new_len);
		if (!ret)
			ret = add_dir_item_entry(c, root, &k, entry, sizeof(*di) + e->new_len);
		k = (struct btrfs_key){ ii->ino, BTRFS_DIR_INDEX_KEY, e->index };
		if (!ret)
			ret = trans_delete_item(c->t, root, &k);
		if (!ret)
			ret = insert_item(c->t, root, &k, entry, sizeof(*di) + e->new_len);
		if (!ret)
			ret = rename_backref(c, root, ii->ino, e);
		c->sv->names++;
	}
	if (!ret && c->o->decrypt)
		ret = set_inode_encrypted(c, root, ii->ino, false, &ctx);
	if (!ret) {
		struct btrfs_inode_item di;

		ret = trans_inode_read(c->t, root, ii->ino, &di);
		if (!ret) {
			di.size = cpu_to_le64(dsize);
			di.transid = cpu_to_le64(c->t->transid);
			ret = trans_inode_write(c->t, root, ii->ino, &di);
		}
	}
	free(ents);
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	c->sv->inodes++;
	c->sv->dirs++;
	c->st->inodes++;
	/* Directory work is metadata only: commit every few thousand names. */
	c->since_commit += 4096 * (nr + 1);
	if (c->since_commit >= c->batch)
		return commit(c);
	return 0;
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

static int convert_subvol(struct conv *c, u64 tree, const u64 *sel, size_t nsel)
{
	struct fs_info *fs = c->fs;
	struct inode_info *inodes = NULL, **dirs = NULL;
	struct root_ref rr;
	size_t nr, nr_dirs = 0;
	int ret;

	/* The inventory comes from the committed tree: commit what is pending first. */
	ret = commit(c);
	if (!ret)
		ret = find_root(fs, tree, &rr);
	if (!ret)
		ret = list_inodes(fs, &rr, &inodes, &nr);
	if (ret)
		return ret;
	compute_depths(inodes, nr);
	for (size_t i = 0; i < nr; i++)
		inodes[i].selected = !nsel;
	if (nsel && (ret = mark_selected(fs, &rr, inodes, nr, sel, nsel))) {
		free(inodes);
		return ret;
	}
	dirs = malloc((nr + 1) * sizeof(*dirs));
	if (!dirs) {
		free(inodes);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nr; i++)
		if (S_ISDIR(inodes[i].mode) && inodes[i].selected)
			dirs[nr_dirs++] = &inodes[i];
	qsort(dirs, nr_dirs, sizeof(*dirs), cmp_depth_desc);
	/* encrypt: files, then directories deepest first; decrypt: the reverse. */
	for (int phase = 0; !ret && phase < 2; phase++) {
		bool do_dirs = c->o->decrypt ? phase == 0 : phase == 1;

		if (do_dirs) {
			for (size_t j = 0; !ret && j < nr_dirs; j++) {
				size_t i = c->o->decrypt ? nr_dirs - 1 - j : j;
				struct trans_root *root;

				ret = begin(c);
				root = ret ? NULL : trans_get_root(c->t, tree);
				if (!ret && !root)
					ret = -EIO;
				if (!ret)
					ret = convert_dir(c, root, dirs[i]);
			}
		} else {
			for (size_t i = 0; !ret && i < nr; i++) {
				struct trans_root *root;

				if (S_ISDIR(inodes[i].mode) || !inodes[i].selected)
					continue;
				ret = begin(c);
				root = ret ? NULL : trans_get_root(c->t, tree);
				if (!ret && !root)
					ret = -EIO;
				if (!ret)
					ret = convert_nondir(c, root, &inodes[i]);
			}
		}
	}
	free(dirs);
	free(inodes);
	return ret;
}

/* Any item 41 left in any subvolume? (decides the incompat bit after decrypt) */
static int anything_encrypted(struct fs_info *fs, const u64 *trees, size_t nr, bool *any)
{
	*any = false;
	for (size_t i = 0; i < nr && !*any; i++) {
		struct root_ref rr;
		struct inode_info *inodes;
		size_t n;
		int ret = find_root(fs, trees[i], &rr);

		if (!ret)
			ret = list_inodes(fs, &rr, &inodes, &n);
		if (ret)
			return ret;
		for (size_t j = 0; j < n; j++)
			*any |= !!(inodes[j].flags & BTRFS_INODE_ENCRYPT);
		free(inodes);
	}
	return 0;
}

static int wipe_range(u64 start, u64 len, void *arg)
{
	struct conv *c = arg;
	int ret = wipe_logical(c->fs, start, len);

	if (!ret)
		c->st->wiped_bytes += len;
	return ret;
}

/*
 * After encrypt: make every free byte of the metadata and system block
 * groups read as zeros (old tree blocks held plaintext names and inline
 * data, including blocks freed before this run), and the data extents this
 * run freed that nothing uses now.  A crash in here leaves zeros in free
 * space only: harmless.
 */
static int wipe_freed(struct conv *c)
{
	struct fs_info *fs = c->fs;
	struct trans *t;
	int ret = trans_begin(fs, &t);

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
	/* Freed data (a file had all of it above): whatever part of each range is still free. */
	for (size_t i = 0; !ret && i < c->nr_freed; i++) {
		u64 start, len, flags;

		if (block_group_of(t, c->freed[i].start, &start, &len, &flags) ||
		    !(flags & BTRFS_BLOCK_GROUP_DATA) || (flags & BTRFS_BLOCK_GROUP_METADATA))
			continue;
		ret = space_free_subranges(t, c->freed[i].start, c->freed[i].len, wipe_range, c);
	}
	trans_abort(t);
	if (!ret && fdatasync(fs->fd) < 0)
		ret = fs_err(fs, -errno, "fdatasync failed");
	return ret;
}

/*
 * Before any write: every context in the targets carries our key, and the
 * image has room for a batch of copies plus its largest file.
 */
static int preflight(struct conv *c, const u64 *trees, size_t nr_trees)
{
	struct fs_info *fs = c->fs;
	u64 total = 0, largest = 0, free_data = 0, free_meta = 0, need_data, need_meta;
	u64 inline_bytes = 0;
	struct trans *t;
	int ret = 0;

	for (size_t i = 0; !ret && i < nr_trees; i++) {
		struct btrfs_key key = { BTRFS_FIRST_FREE_OBJECTID, 0, 0 }, k;
		struct btrfs_path p;
		struct root_ref rr;
		u64 cur_ino = 0, cur_bytes = 0;
		u32 cur_mode = 0;

		ret = find_root(fs, trees[i], &rr);
		if (ret == -ENOENT)
			return fs_err(fs, -ENOENT, "no subvolume with id %llu", trees[i]);
		if (!ret)
			ret = search_slot(fs, &rr, &key, &p);
		if (ret < 0)
			return ret;
		for (ret = 0; path_item_valid(&p); ret = next_item(fs, &p)) {
			if (ret < 0)
				break;
			path_key(&p, &k);
			if (k.objectid != cur_ino) {
				largest = cur_bytes > largest ? cur_bytes : largest;
				cur_ino = k.objectid;
				cur_bytes = 0;
			}
			if (k.type == BTRFS_FSCRYPT_INODE_CTX_KEY &&
			    path_size(&p) >= sizeof(struct fscrypt_context_v2) &&
			    memcmp(((const struct fscrypt_context_v2 *)path_ptr(&p))->master_key_identifier,
				   c->o->mk->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE)) {
				ret = fs_err(fs, -EKEYREJECTED,
					     "inode %llu in tree %llu is encrypted with another master key (wrong key?)",
					     k.objectid, trees[i]);
				break;
			}
			if (k.type == BTRFS_EXTENT_DATA_KEY &&
			    path_size(&p) >= BTRFS_FILE_EXTENT_INLINE_DATA_START) {
				const struct btrfs_file_extent_item *fe = (const void *)path_ptr(&p);
				bool full = path_size(&p) >= sizeof(*fe);

				if (!full && fe->type != BTRFS_FILE_EXTENT_INLINE)
					continue;
				if (fe->type == BTRFS_FILE_EXTENT_PREALLOC && fe->disk_bytenr &&
				    !!fe->encryption == c->o->decrypt) {
					c->st->extents++;
				} else if (fe->type == BTRFS_FILE_EXTENT_REG && fe->disk_bytenr &&
				    !!fe->encryption == c->o->decrypt) {
					cur_bytes += le64_to_cpu(fe->disk_num_bytes);
					total += le64_to_cpu(fe->disk_num_bytes);
					c->st->extents++;	/* what a dry run reports */
				} else if (fe->type == BTRFS_FILE_EXTENT_INLINE && S_ISREG(cur_mode) &&
					   !c->o->decrypt) {
					c->st->extents++;	/* becomes a regular encrypted extent */
					inline_bytes += fs->sectorsize;	/* new space, nothing freed */
				}
			}
			if (k.type == BTRFS_INODE_ITEM_KEY &&
			    path_size(&p) >= sizeof(struct btrfs_inode_item)) {
				const struct btrfs_inode_item *ii = (const void *)path_ptr(&p);
				u32 mode = le32_to_cpu(ii->mode);

				cur_mode = mode;
				if ((S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode)) &&
				    !!(le64_to_cpu(ii->flags) & BTRFS_INODE_ENCRYPT) == c->o->decrypt)
					c->st->inodes++;
			}
		}
		largest = cur_bytes > largest ? cur_bytes : largest;
		path_release(fs, &p);
		if (ret > 0)
			ret = 0;	/* the end of the tree */
	}
	if (ret)
		return ret;
	ret = trans_begin(fs, &t);
	if (ret)
		return ret;
	ret = space_free_bytes(t, BTRFS_BLOCK_GROUP_DATA, &free_data);
	if (!ret)
		ret = space_free_bytes(t, BTRFS_BLOCK_GROUP_METADATA, &free_meta);
	trans_abort(t);
	if (ret)
		return ret;
	/*
	 * Old extents become free again at each commit, so the copies of one
	 * batch plus the largest file must fit: shrink the batch to the room
	 * there is (an inode never splits across commits).
	 */
	if (total + inline_bytes > free_data && free_data > largest + inline_bytes + (2ULL << 20))
		c->batch = (free_data - largest - inline_bytes) / 2 < c->batch ?
			   (free_data - largest - inline_bytes) / 2 : c->batch;
	need_data = total < c->batch + largest ? total : c->batch + largest;
	/* Inline files become sector-sized extents: space taken, none given back. */
	need_data += inline_bytes;
	need_meta = 64ULL * fs->nodesize;
	if (free_data < need_data)
		return fs_err(fs, -ENOSPC,
			      "not enough free data space: need %llu bytes, %llu are free in the existing data block groups",
			      need_data, free_data);
	if (free_meta < need_meta)
		return fs_err(fs, -ENOSPC,
			      "not enough free metadata space: need %llu bytes, %llu are free",
			      need_meta, free_meta);
	c->st->bytes_total = total;
	return 0;
}

struct tree_job {
	u64 tree;
	u64 *sel;	/* selected directories; NULL: the whole tree */
	size_t nsel;
	u32 depth;
	bool decrypt;
};

static int cmp_job(const void *a, const void *b)
{
	const struct tree_job *x = a, *y = b;

	/* encrypt: nested subvolumes first (their roots must be encrypted before
	 * the directory naming them); decrypt: the reverse. */
	if (x->depth != y->depth)
		return (x->depth > y->depth) != x->decrypt ? -1 : 1;
	return x->tree < y->tree ? -1 : x->tree > y->tree;
}

/* Trees to convert: whole ones (--subvol, or all), and --path selections. */
static int plan_jobs(struct fs_info *fs, const struct convert_opts *o, const u64 *all,
		     size_t nr_all, struct tree_job **out, size_t *nr)
{
	struct tree_job *jobs = calloc(nr_all + o->nr_subvols + o->nr_paths + 1, sizeof(*jobs));
	size_t n = 0;

	if (!jobs)
		return -ENOMEM;
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
			j->sel = calloc(o->nr_paths, sizeof(u64));
			if (!j->sel)
				return -ENOMEM;
		}
		if (j->sel)
			j->sel[j->nsel++] = o->paths[i].dir;
	}
	for (size_t i = 0; i < n; i++) {
		jobs[i].depth = subvol_depth(fs, jobs[i].tree);
		jobs[i].decrypt = o->decrypt;
	}
	qsort(jobs, n, sizeof(*jobs), cmp_job);
	*out = jobs;
	*nr = n;
	return 0;
}

int convert_image(struct fs_info *fs, const struct convert_opts *o, struct convert_stats *st)
{
	struct conv c = { .fs = fs, .o = o, .st = st };
	struct extent_io_params params = { 0 };
	struct tree_job *jobs = NULL;
	size_t nr_jobs = 0;
	u64 *all = NULL, *trees = NULL;
	size_t nr_all;
	int ret;

	memset(st, 0, sizeof(*st));
	c.batch = o->batch_bytes ? o->batch_bytes : DEFAULT_BATCH;
	ret = list_subvols(fs, &all, &nr_all);
	if (!ret)
		ret = plan_jobs(fs, o, all, nr_all, &jobs, &nr_jobs);
	if (ret)
		goto out;
	c.all_subvols = !o->nr_subvols && !o->nr_paths;
	c.image_file = image_is_file(fs);
	trees = calloc(nr_jobs + 1, sizeof(*trees));
	st->subvols = calloc(nr_jobs + 1, sizeof(*st->subvols));
	if (!trees || !st->subvols) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nr_jobs; i++)
		trees[i] = jobs[i].tree;
	st->nr_subvols = nr_jobs;
	ret = preflight(&c, trees, nr_jobs);
	if (ret || o->dry_run) {
		/* A dry run stops here: key, policy and space checked, work counted. */
		if (!ret)
			st->bytes = st->bytes_total;
		goto out;
	}
	st->inodes = st->extents = 0;
	params.fd = fs->fd;
	params.dst_fd = -1;
	params.unit_size = fs->sectorsize;
	params.threads = o->threads;
	params.key = o->mk;
	params.profile = FSCRYPT_PROFILE_V7;
	params.contents_mode = o->contents_mode;
	params.process = sector_sums_process;
	params.pwrite_fn = fault_pwrite;
	params.start_writeback = true;	/* copies reach the disk while the trees are worked on */
	ret = extent_io_new(&c.io, &params);
	if (ret) {
		fs_err(fs, ret, "cannot start the data pipeline");
		goto out;
	}
	/* The incompat bit goes to disk with the first commit, before any encrypted item. */
	if (!o->decrypt && !(fs->incompat & BTRFS_FEATURE_INCOMPAT_ENCRYPT)) {
		fs->incompat |= BTRFS_FEATURE_INCOMPAT_ENCRYPT;
		fs->super.incompat_flags = cpu_to_le64(fs->incompat);
		st->incompat_changed = true;
	}
	for (size_t i = 0; !ret && i < nr_jobs; i++) {
		c.cur_tree = jobs[i].tree;
		c.sv = &st->subvols[i];
		c.sv->tree = jobs[i].tree;
		ret = convert_subvol(&c, jobs[i].tree, jobs[i].sel, jobs[i].nsel);
	}
	if (!ret)
		ret = commit(&c);
	if (!ret && o->decrypt && !o->dry_run) {
		bool any;

		ret = anything_encrypted(fs, all, nr_all, &any);
		if (!ret && !any && (fs->incompat & BTRFS_FEATURE_INCOMPAT_ENCRYPT)) {
			/* A commit with no changes writes the superblock without the bit. */
			fs->incompat &= ~BTRFS_FEATURE_INCOMPAT_ENCRYPT;
			fs->super.incompat_flags = cpu_to_le64(fs->incompat);
			st->incompat_changed = true;
			ret = begin(&c);
			if (!ret)
				ret = commit_tx(&c, true);	/* the superblock alone changes */
		}
	}
	if (!ret && !o->decrypt && o->wipe && !o->dry_run) {
		ret = wipe_freed(&c);
		if (!ret)
			ret = reset_backup_roots(fs);
	}
out:
	if (c.t)
		trans_abort(c.t);
	if (ret && st->incompat_changed && !o->decrypt && !st->commits) {
		fs->incompat &= ~BTRFS_FEATURE_INCOMPAT_ENCRYPT;
		fs->super.incompat_flags = cpu_to_le64(fs->incompat);
	}
	if (c.io)
		drop_copies(&c);
	free(c.pend);
	free(c.fly);
	free(c.fly_jobs);
	extent_io_free(c.io);
	free(c.map);
	free(c.freed);
	for (size_t i = 0; i < nr_jobs; i++)
		free(jobs[i].sel);
	free(jobs);
	free(trees);
	free(all);
	return ret;
}

void convert_stats_free(struct convert_stats *st)
{
	free(st->subvols);
	st->subvols = NULL;
}
