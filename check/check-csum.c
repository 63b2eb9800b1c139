// SPDX-License-Identifier: GPL-2.0
/*
 * Csum tree of `check`: items well formed and not overlapping, every
 * sector of every checksummed data extent covered, no csum outside a data
 * extent; and the --check-data-csum scrub of the stored bytes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/escape.h"
#include "common/fault.h"
#include "check/check.h"
#include "check/check-scrub.h"
#include "crypto/csum.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/volumes.h"
#include "data/names.h"
#include "data/read.h"
#include "common/messages.h"
#include "common/progress.h"

void csum_tree_leaf(struct check_ctx *c, const struct tree_block *leaf)
{
	u32 cs = c->fs->csum_size, ss = c->fs->sectorsize;

	for (u32 i = 0; i < tb_nritems(leaf); i++) {
		struct btrfs_key k;
		u32 size = tb_item_size(leaf, i);
		struct csum_range *r;

		tb_item_key(leaf, i, &k);
		if (k.objectid != BTRFS_EXTENT_CSUM_OBJECTID || k.type != BTRFS_EXTENT_CSUM_KEY)
			continue;
		c->cnt.csum_items++;
		if (!size || size % cs || k.offset % ss) {
			check_report(c, PR_CSUM_ITEM_BAD, LOC_BLOCK(BTRFS_CSUM_TREE_OBJECTID, leaf->bytenr),
				     k.objectid, k.type, k.offset,
				     k.offset % ss ? "start not sector aligned" :
				     "size not a multiple of the csum size");
			continue;
		}
		r = vec_push_or_die(&c->csums);
		r->start = k.offset;
		r->nsectors = size / cs;
		r->leaf = leaf->bytenr;
		r->data_off = (u64)-1;
		c->cnt.csum_bytes_covered += r->nsectors * ss;
		if (c->check_data_csum)
			r->data_off = bytes_append(&c->csum_data, &c->csum_data_len, &c->csum_data_cap,
						   tb_item_ptr(leaf, i), size);
	}
}

/* Bytes of [start, end) covered by csum items (items sorted, overlaps ignored). */
static u64 covered_bytes(const struct check_ctx *c, u64 start, u64 end)
{
	const struct csum_range *v = c->csums.data;
	size_t lo = 0, hi = c->csums.nr;
	u64 ss = c->fs->sectorsize, total = 0, cur = start;

	/* First item whose end is past start. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].start + v[mid].nsectors * ss <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < c->csums.nr && v[i].start < end; i++) {
		u64 s = v[i].start > cur ? v[i].start : cur;
		u64 e = v[i].start + v[i].nsectors * ss;

		if (e > end)
			e = end;
		if (e > s) {
			total += e - s;
			cur = e;
		}
	}
	return total;
}

static void check_overlaps(struct check_ctx *c)
{
	const struct csum_range *v = c->csums.data;
	u64 ss = c->fs->sectorsize, prev_end = 0;

	for (size_t i = 0; i < c->csums.nr; i++) {
		if (i && v[i].start < prev_end)
			check_report(c, PR_CSUM_OVERLAP, LOC_BLOCK(BTRFS_CSUM_TREE_OBJECTID, v[i].leaf),
				     v[i].start, prev_end);
		if (v[i].start + v[i].nsectors * ss > prev_end)
			prev_end = v[i].start + v[i].nsectors * ss;
	}
}

/* A file extent's csums: all of what it references, or none under NODATASUM. */
void check_csum_coverage(struct check_ctx *c, const struct file_extent_rec *f)
{
	u64 start, len, have;

	if (f->type != BTRFS_FILE_EXTENT_REG || f->root == BTRFS_DATA_RELOC_TREE_OBJECTID)
		return;
	if (f->compression) {
		start = f->disk_bytenr;
		len = f->disk_num_bytes;
	} else {
		start = f->disk_bytenr + f->extent_offset;
		len = f->num_bytes;
	}
	have = covered_bytes(c, start, start + len);
	if (!f->nodatasum && have < len)
		check_report(c, PR_CSUM_MISSING, LOC(f->root, f->ino, f->file_offset, f->disk_bytenr),
			     len - have, len, f->disk_bytenr);
	else if (f->nodatasum && have)
		check_report(c, PR_CSUM_NODATASUM, LOC(f->root, f->ino, f->file_offset, f->disk_bytenr),
			     have, f->disk_bytenr);
}

/*
 * A data extent only prealloc items refer to (first: the first of them) was
 * never written: it has no csums.  The data relocation tree's prealloc
 * extents receive relocated data with its csums: the caller leaves them out.
 */
void check_csum_prealloc(struct check_ctx *c, const struct file_extent_rec *first)
{
	u64 have = covered_bytes(c, first->disk_bytenr, first->disk_bytenr + first->disk_num_bytes);

	if (have)
		check_report(c, PR_CSUM_PREALLOC,
			     LOC(first->root, first->ino, first->file_offset, first->disk_bytenr),
			     have, first->disk_bytenr);
}

/* Csums must lie inside data extent items. */
static void check_orphans(struct check_ctx *c)
{
	const struct csum_range *v = c->csums.data;
	const struct ext_rec *e = c->ext_recs.data;
	size_t ne = c->ext_recs.nr, k = 0;
	u64 ss = c->fs->sectorsize;
	int budget = 64;

	for (size_t i = 0; i < c->csums.nr && budget > 0; i++) {
		u64 cur = v[i].start, end = v[i].start + v[i].nsectors * ss;

		while (k > 0 && e[k - 1].bytenr + e[k - 1].len > cur)
			k--;
		while (cur < end) {
			while (k < ne && (e[k].metadata || e[k].bytenr + e[k].len <= cur))
				k++;
			if (k >= ne || e[k].bytenr >= end) {
				check_report(c, PR_CSUM_ORPHAN, LOC_BLOCK(BTRFS_CSUM_TREE_OBJECTID, v[i].leaf),
					     cur, end);
				budget--;
				break;
			}
			if (e[k].bytenr > cur) {
				check_report(c, PR_CSUM_ORPHAN, LOC_BLOCK(BTRFS_CSUM_TREE_OBJECTID, v[i].leaf),
					     cur, e[k].bytenr);
				budget--;
			}
			cur = e[k].bytenr + e[k].len;
		}
	}
}

void check_csums(struct check_ctx *c)
{
	if (!c->csum_tree_ok)
		return;
	check_overlaps(c);	/* file extents: check_csum_coverage(), check_csum_prealloc() */
	/* An unreplayed log may hold the only references to csummed data. */
	if (c->extent_tree_ok && !le64_to_cpu(c->fs->super.log_root))
		check_orphans(c);
}

/* ---- scrub ------------------------------------------------------------------- */

struct bad_sector {
	u64 logical;
	int mirror;
	u8 found[32], expected[32];
};

struct bad_list {
	pthread_mutex_t lock;
	struct vec v;
	u32 csum_size;
};

static void on_bad(void *arg, uint64_t logical, int mirror, const uint8_t *found,
		   const uint8_t *expected)
{
	struct bad_list *bl = arg;
	struct bad_sector *b;

	pthread_mutex_lock(&bl->lock);
	b = vec_push_or_die(&bl->v);
	b->logical = logical;
	b->mirror = mirror;
	memcpy(b->found, found, bl->csum_size);
	memcpy(b->expected, expected, bl->csum_size);
	pthread_mutex_unlock(&bl->lock);
}

static int cmp_bad(const void *x, const void *y)
{
	const struct bad_sector *a = x, *b = y;
	int r = cmp_u64(a->logical, b->logical);

	return r ? r : a->mirror - b->mirror;
}

/* The file extent a bad sector is reported with (found false: none). */
struct bad_owner {
	struct file_extent_rec f;
	u64 file_off;		/* the sector's offset in the file, or NOLOC */
	bool found;
};

/* File extents kept while their disk extent may still hold a later bad sector. */
#define OWNER_WINDOW 4096

/* Keep the window's extents whose disk extent reaches past logical. */
static size_t window_prune(struct file_extent_rec *w, size_t nw, u64 logical)
{
	size_t kept = 0;

	for (size_t k = 0; k < nw; k++)
		if (w[k].disk_bytenr + w[k].disk_num_bytes > logical)
			w[kept++] = w[k];
	return kept;
}

/*
 * Of the window's extents (all hold logical, in disk order), the last that
 * references the sector or compresses its extent, else the last of all.
 */
static void window_pick(const struct file_extent_rec *w, size_t nw, u64 logical,
			struct bad_owner *o)
{
	for (size_t k = nw; k-- > 0;) {
		const struct file_extent_rec *f = &w[k];

		if (f->compression) {
			o->file_off = f->file_offset;
		} else if (logical >= f->disk_bytenr + f->extent_offset &&
			   logical < f->disk_bytenr + f->extent_offset + f->num_bytes) {
			o->file_off = f->file_offset + (logical - f->disk_bytenr - f->extent_offset);
		} else {
			if (!o->found) {
				o->f = *f;
				o->found = true;
				o->file_off = NOLOC;
			}
			continue;
		}
		o->f = *f;
		o->found = true;
		return;
	}
}

/*
 * The owner of each bad sector (bad: sorted by logical), in one pass over the
 * file extents in disk order beside them: the extents that start at or
 * before the sector and whose disk extent still holds it stay in a window
 * (the last OWNER_WINDOW of them: an extent referenced more often than that
 * is reported with one of its last references).
 */
static struct bad_owner *find_owners(struct check_ctx *c, const struct bad_sector *bad, size_t n)
{
	struct bad_owner *out = fault_calloc(n ? n : 1, sizeof(*out));
	struct file_extent_rec *w = fault_malloc(OWNER_WINDOW * sizeof(*w));
	const struct file_extent_rec *r = NULL;
	size_t nw = 0;
	u32 len;

	if (!out || !w)
		die_oom();
	if (n && c->file_exts.reading) {	/* else the walk stopped before the file extents */
		spill_rewind_or_die(&c->file_exts);
		r = spill_next_or_die(&c->file_exts, &len);
	}
	for (size_t i = 0; i < n; i++) {
		u64 logical = bad[i].logical;

		while (r && r->disk_bytenr <= logical) {
			if (nw == OWNER_WINDOW) {
				nw = window_prune(w, nw, logical);
				if (nw == OWNER_WINDOW) {	/* the older half goes */
					memmove(w, w + nw / 2, (nw - nw / 2) * sizeof(*w));
					nw -= nw / 2;
				}
			}
			w[nw++] = *r;
			r = spill_next_or_die(&c->file_exts, &len);
		}
		nw = window_prune(w, nw, logical);
		window_pick(w, nw, logical, &out[i]);
	}
	free(w);
	return out;
}

/*
 * One bad copy of a sector: an error when no copy of it is good, else a
 * warning (DATA_BAD_COPY): readers use the good copy, as the kernel does.
 */
static void report_bad(struct check_ctx *c, const struct bad_sector *b, bool other_good,
		       const struct bad_owner *o)
{
	char found[65], expected[65], path[4096] = "", shown[4 * sizeof(path)];
	u64 off = o->file_off;
	const struct file_extent_rec *f = o->found ? &o->f : NULL;
	struct check_loc loc = LOC(NOLOC, NOLOC, NOLOC, b->logical);

	for (u32 i = 0; i < c->fs->csum_size; i++) {
		snprintf(found + 2 * i, 3, "%02x", b->found[i]);
		snprintf(expected + 2 * i, 3, "%02x", b->expected[i]);
	}
	if (f) {
		struct root_ref rr;
		struct enc_names en;

		loc.root = f->root;
		loc.ino = f->ino;
		loc.offset = off;
		enc_names_init_keys(&en, c->fs, c->path_keys, c->nr_path_keys);
		if (find_root(c->fs, f->root, &rr) ||
		    inode_path(c->fs, &en.nc, &rr, f->ino, path, sizeof(path)))
			path[0] = 0;
		name_text(path, strlen(path), shown, sizeof(shown));
	}
	if (other_good) {
		struct copy_loc cl = { 0, 0 };

		map_copy(c->fs, b->logical, c->fs->sectorsize, b->mirror - 1, &cl);
		check_report(c, PR_DATA_BAD_COPY, loc, (unsigned long long)b->logical, b->mirror,
			     (unsigned long long)cl.devid, (unsigned long long)cl.physical,
			     path[0] ? " path " : "", shown, found, expected);
		return;
	}
	check_report(c, PR_DATA_CSUM_MISMATCH, loc, (unsigned long long)b->logical, b->mirror,
		     path[0] ? " path " : "", shown, found, expected);
}

/* A scrub running in the background while the other checks go on. */
struct check_scrub {
	struct scrub_params p;
	struct bad_list bl;
	struct vec ranges;
	struct scrub_job *job;
	struct progress prog;	/* shown while check_scrub_finish() waits */
	bool prog_ended;
};

/* The first copy of [logical, logical + len) on devices that were given (-1: none). */
static int first_present(struct fs_info *fs, u64 logical, u64 len)
{
	for (int k = 0; k < num_copies(fs, logical); k++) {
		struct copy_loc loc;

		if (!map_copy(fs, logical, len, k, &loc) && loc.fd >= 0)
			return k;
	}
	return -1;
}

/*
 * The scrub ranges of [cur, cur + n) (one chunk), every copy on a device
 * that was given, cut where the stripe layer cuts them (RAID0/10/5/6
 * stripe elements).  RAID5/6: the data elements only, or where one is on
 * a missing device the first copy rebuilt without it; the other rebuilt
 * copies are tried for the bad sectors (retry_rebuilt()).
 */
static void scrub_add_copies(struct check_ctx *c, struct check_scrub *s, u64 cur, u64 n,
			     const u8 *csums)
{
	u64 ss = c->fs->sectorsize;
	int copies = num_copies(c->fs, cur);
	bool rebuilt = copies_rebuilt(c->fs, cur);

	for (int st = 0; st < copies; st++) {
		for (u64 off = 0, run; off < n; off += run) {
			struct copy_loc loc;
			struct scrub_range *r;

			if (map_copy_run(c->fs, cur + off, n - off, st, &loc, &run) || run % ss) {
				check_report(c, PR_DATA_READ_ERROR, LOC_BLOCK(NOLOC, cur + off),
					     "data is not mapped by the stripe layer");
				break;
			}
			if (rebuilt && st != first_present(c->fs, cur + off, run))
				continue;
			if (loc.fd < 0)
				continue;	/* a missing device */
			if (loc.physical + run > c->fs->devs[loc.dev].size) {
				check_report(c, PR_DATA_READ_ERROR, LOC_BLOCK(NOLOC, cur + off),
					     "data lies beyond the end of the device");
				continue;
			}
			r = vec_push_or_die(&s->ranges);
			r->logical = cur + off;
			r->physical = loc.physical;
			r->dev = (uint32_t)loc.dev;
			r->len = run;
			r->csums = csums + off / ss * c->fs->csum_size;
			r->mirror = st + 1;
			r->rebuild = loc.rebuild;
		}
	}
}

/*
 * Hand every csummed range to the pipeline's workers and return: called as
 * soon as the csum tree is read, so the data is read and verified while the
 * other trees are walked and checked.  check_scrub_finish() collects.
 */
void check_scrub_start(struct check_ctx *c)
{
	const struct csum_range *v = c->csums.data;
	struct check_scrub *s;
	u64 ss = c->fs->sectorsize;
	char err[256];
	int ret;

	if (!c->check_data_csum || !c->csum_data || c->scrub)
		return;
	if (fs_is_metadump(c->fs)) {	/* as btrfs check does */
		check_report(c, PR_METADUMP_DATA_NOT_CHECKED, LOC_NONE);
		return;
	}
	s = fault_calloc(1, sizeof(*s));
	if (!s)
		die_oom();
	s->bl.csum_size = c->fs->csum_size;
	s->p = (struct scrub_params){
		.fd = c->fs->fd,
		.fds = c->fs->nr_devs > 1 ? c->fs->dev_fds : NULL,
		.nfds = c->fs->nr_devs,
		.csum_type = c->fs->csum_type,
		.unit = c->fs->sectorsize,
		.threads = c->threads,
		.bad = on_bad,
		.arg = &s->bl,
		.progress = progress_cb,
		.progress_arg = &s->prog,
		.rebuild = data_read_rebuild,
		.rebuild_arg = c->fs,
	};
	progress_init(&s->prog, "check", "bytes");
	vec_init(&s->ranges, sizeof(struct scrub_range));
	vec_init(&s->bl.v, sizeof(struct bad_sector));
	pthread_mutex_init(&s->bl.lock, NULL);
	c->scrub = s;
	for (size_t i = 0; i < c->csums.nr;) {
		/* Merge items that continue each other on disk and in csum_data. */
		u64 start = v[i].start, end = start + v[i].nsectors * ss;
		u64 data_off = v[i].data_off;
		size_t j = i + 1;

		while (j < c->csums.nr && v[j].start == end &&
		       v[j].data_off == data_off + (end - start) / ss * c->fs->csum_size) {
			end += v[j].nsectors * ss;
			j++;
		}
		/* Split at chunk boundaries, one range per mirror. */
		for (u64 cur = start; cur < end;) {
			const struct chunk_map *m = find_chunk(c->fs, cur);
			u64 n;

			if (!m) {
				check_report(c, PR_DATA_READ_ERROR, LOC_BLOCK(NOLOC, cur),
					     "csummed data lies outside every chunk");
				break;
			}
			n = m->logical + m->length - cur;
			if (n > end - cur)
				n = end - cur;
			scrub_add_copies(c, s, cur, n, c->csum_data + data_off +
					 (cur - start) / ss * c->fs->csum_size);
			cur += n;
		}
		i = j;
	}
	ret = s->ranges.nr ? scrub_start(&s->p, s->ranges.data, s->ranges.nr, &s->job, err,
					 sizeof(err)) : 0;
	if (ret == -ENOMEM)
		die_oom();	/* not a problem of the image */
	if (ret)
		check_report(c, PR_DATA_READ_ERROR, LOC_NONE, err);
}

/*
 * RAID5/6: a bad sector's later copies, rebuilt from parity, in turn until
 * one is good; each bad one joins the list, so that report_bad() tells a
 * sector with a good copy from one without.
 */
static void retry_rebuilt(struct check_ctx *c, struct bad_list *bl)
{
	struct fs_info *fs = c->fs;
	size_t nr = bl->v.nr;
	u8 *buf = NULL;

	for (size_t i = 0; i < nr; i++) {
		struct bad_sector b = VEC_AT(&bl->v, struct bad_sector, i);

		if (!copies_rebuilt(fs, b.logical))
			continue;
		if (!buf && !(buf = fault_malloc(fs->sectorsize)))
			die_oom();
		for (int k = b.mirror; k < num_copies(fs, b.logical); k++) {
			struct copy_loc loc;
			u8 sum[32];

			if (map_copy(fs, b.logical, fs->sectorsize, k, &loc) || loc.fd < 0)
				continue;
			if (copy_pread(fs, &loc, buf, fs->sectorsize, b.logical)) {
				check_report(c, PR_DATA_READ_ERROR, LOC_BLOCK(NOLOC, b.logical),
					     fs_errmsg(fs));
				continue;
			}
			csum_compute(fs->csum_type, buf, fs->sectorsize, sum);
			if (!memcmp(sum, b.expected, fs->csum_size))
				break;
			on_bad(bl, b.logical, k + 1, sum, b.expected);
		}
	}
	free(buf);
}

/* Wait for the scrub, then report each bad sector with its file and path. */
void check_scrub_finish(struct check_ctx *c)
{
	struct check_scrub *s = c->scrub;
	uint64_t bytes = 0;
	char err[256];
	struct bad_owner *owners;
	int ret;

	if (!s)
		return;
	ret = scrub_finish(s->job, &bytes, err, sizeof(err));
	progress_end(&s->prog, bytes, 0);
	s->prog_ended = true;
	if (ret == -ENOMEM)
		die_oom();
	if (ret)
		check_report(c, PR_DATA_READ_ERROR, LOC_NONE, err);
	s->job = NULL;
	c->cnt.data_bytes_checked = bytes;
	c->cnt.csums_checked = bytes / c->fs->sectorsize;
	retry_rebuilt(c, &s->bl);
	for (size_t i = 0; i < s->bl.v.nr; i++) {	/* for check_parity() */
		const struct bad_sector *b = &VEC_AT(&s->bl.v, struct bad_sector, i);

		if (b->mirror == 1 && copies_rebuilt(c->fs, b->logical))
			*(u64 *)vec_push_or_die(&c->raid56_bad) = b->logical;
	}
	check_qsort(s->bl.v.data, s->bl.v.nr, sizeof(struct bad_sector), cmp_bad);
	owners = find_owners(c, s->bl.v.data, s->bl.v.nr);
	for (size_t i = 0, j; i < s->bl.v.nr; i = j) {
		const struct bad_sector *b = &VEC_AT(&s->bl.v, struct bad_sector, i);

		/* The bad copies of one sector are next to each other. */
		for (j = i + 1; j < s->bl.v.nr &&
		     VEC_AT(&s->bl.v, struct bad_sector, j).logical == b->logical; j++)
			;
		for (size_t k = i; k < j; k++)
			report_bad(c, &VEC_AT(&s->bl.v, struct bad_sector, k),
				   (int)(j - i) < num_copies_present(c->fs, b->logical), &owners[k]);
	}
	free(owners);
	check_scrub_free(c);
}

/* Stop waiting for nothing: let a running scrub end, drop its results. */
void check_scrub_free(struct check_ctx *c)
{
	struct check_scrub *s = c->scrub;
	char err[256];

	if (!s)
		return;
	scrub_finish(s->job, NULL, err, sizeof(err));
	if (!s->prog_ended)
		progress_end(&s->prog, 0, 0);	/* a consumer always gets its final line */
	pthread_mutex_destroy(&s->bl.lock);
	vec_free(&s->bl.v);
	vec_free(&s->ranges);
	free(s);
	c->scrub = NULL;
}
