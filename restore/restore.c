// SPDX-License-Identifier: GPL-2.0
/* restore_image(): one run of the restore engine (see restore.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "common/fault.h"
#include "common/progress.h"
#include "common/utils.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/disk-io.h"
#include "data/names.h"
#include "data/read.h"
#include "kernel-shared/volumes.h"
#include "restore/internal.h"

/* The subvolume's top directory, or p->sel in it; 0 or a negative errno with its text. */
static int start_point(struct restore *r, const struct restore_params *p, struct root_ref *root,
		       u64 *start_ino)
{
	struct enc_names en;
	struct root_ref rr;
	int ret;

	enc_names_init_keys(&en, r->fs, r->mks, r->nr_mks);
	ret = find_root(r->fs, p->root_id, root);
	if (!ret)
		ret = subvol_root_dir(r->fs, p->root_id, start_ino);
	if (ret > 0 || ret == -ENOENT)
		return fs_err(r->fs, -ENOENT, "no subvolume with id %llu", p->root_id);
	if (ret || !p->sel)
		return ret;
	ret = path_lookup_from(r->fs, &en.nc, root, *start_ino, p->sel, &rr, start_ino);
	if (ret > 0 || ret == -ENOENT)
		return fs_err(r->fs, -ENOENT, "--path %s: no such file in the image", p->sel);
	if (!ret)
		*root = rr;
	return ret;
}

/* The pipelines and the workers' memory; 0 or a negative errno. */
static int start_workers(struct restore *r, const struct restore_params *p, struct worker **ws)
{
	struct extent_io_params params = { 0 };
	int ret;

	params.fd = r->fs->fd;
	params.dst_fd = -1;
	params.unit_size = r->fs->sectorsize;
	params.threads = p->threads;
	params.keys = r->mks;	/* each extent's key by its context's identifier */
	params.nr_keys = r->nr_mks;
	params.profile = FSCRYPT_PROFILE_V7;
	params.contents_mode = FSCRYPT_MODE_AES_256_XTS;
	data_read_setup(&params, r->fs);	/* csums verified, plaintext to each read's sink */
	*ws = fault_calloc(p->threads, sizeof(**ws));
	ret = *ws ? rs_workers_start(r, *ws, p->threads, &params) : -ENOMEM;
	if (ret == -ENOMEM)
		return fs_err(r->fs, ret, "out of memory");
	if (ret)
		return fs_err(r->fs, ret, "cannot start the data pipeline: %s", strerror(-ret));
	return 0;
}

/* The output directory, made if missing and held open; 0 or a negative errno. */
static int open_outdir(struct restore *r, const char *outdir, struct stat *top)
{
	if (r->dry_run)
		return 0;
	if ((mkdir(outdir, 0755) && errno != EEXIST) ||
	    (r->outfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(r->outfd, top))
		return fs_err(r->fs, -errno, "cannot create %s: %s", outdir, strerror(errno));
	return 0;
}

/*
 * The last name of a --path ("b" of "/a/b/" and of "/a/b/."), into name;
 * false when the path names the start directory itself ("/", "", "/.").
 */
static bool last_name(const char *path, char name[BTRFS_NAME_LEN + 1])
{
	bool found = false;

	while (*path) {
		const char *end;

		while (*path == '/')
			path++;
		end = strchrnul(path, '/');
		if (end > path && !(end - path == 1 && *path == '.') && end - path <= BTRFS_NAME_LEN) {
			memcpy(name, path, end - path);
			name[end - path] = 0;
			found = true;
		}
		path = end;
	}
	return found;
}

/* Restore the start point's entry (p->sel) or directory; 0 or a negative errno. */
static int restore_top(struct worker *w, const struct restore_params *p,
		       const struct root_ref *root, u64 start_ino, const struct stat *top)
{
	struct fs_info *fs = w->r->fs;
	struct btrfs_inode_item ii;
	char name[BTRFS_NAME_LEN + 1];
	int ret;

	if (p->sel && last_name(p->sel, name)) {
		char child[PATH_MAX];
		struct target t = { w->r->outfd, name, child, -1 };

		snprintf(child, sizeof(child), "%s/%s", p->outdir, t.name);
		return rs_restore_entry(w, NULL, root, start_ino, &t, 0);
	}
	ret = inode_lookup(fs, root, start_ino, &ii);
	if (ret > 0)
		ret = fs_err(fs, -EUCLEAN, "directory %llu is missing", start_ino);
	if (!ret)
		ret = rs_dir_claim(w->r, root->objectid, start_ino, p->outdir);
	if (!ret)
		ret = rs_start_dir(w, NULL, root, start_ino, &ii, p->outdir, 0, false,
				   w->r->dry_run ? NULL : top);
	return ret;
}

static void sum_counts(const struct worker *ws, unsigned int n, struct restore_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned int i = 0; ws && i < n; i++) {
		st->files += ws[i].n.files;
		st->dirs += ws[i].n.dirs;
		st->symlinks += ws[i].n.symlinks;
		st->specials += ws[i].n.specials;
		st->bytes += ws[i].n.bytes;
		st->skipped += ws[i].n.skipped;
		st->failed += ws[i].n.failed;
		st->links_made += ws[i].n.links_made;
		st->enc_opened += ws[i].n.enc_opened;
		st->enc_locked += ws[i].n.enc_locked;
	}
}

static void restore_init(struct restore *r, const struct restore_params *p)
{
	memset(r, 0, sizeof(*r));
	r->fs = p->fs;
	for (size_t i = 0; i < p->nr_mks && i < FSCRYPT_MAX_KEY_SET; i++)
		r->mks[r->nr_mks++] = p->mks[i];
	r->raw = p->raw;
	r->dry_run = p->dry_run;
	r->outfd = -1;
	r->as_root = geteuid() == 0;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_mutex_init(&r->shared_io_lock, NULL);
	pthread_mutex_init(&r->links.lock, NULL);
	pthread_cond_init(&r->links.settled, NULL);
	u64map_init(&r->links.map, sizeof(struct hardlink *));
	u64map_init(&r->dirs.map, sizeof(struct hardlink *));
	pthread_mutex_init(&r->dirs.lock, NULL);
	pthread_cond_init(&r->dirs.settled, NULL);
}

static void restore_free(struct restore *r, struct worker *ws, unsigned int n)
{
	while (r->jobs) {
		struct dir_job *j = r->jobs;

		r->jobs = j->next;
		free(j);
	}
	while (r->all_dirs) {
		struct rdir *d = r->all_dirs;

		r->all_dirs = d->all_next;
		explicit_bzero(d->key, sizeof(d->key));
		free(d);
	}
	rs_workers_free(r, ws, n);
	rs_link_table_free(&r->links);
	rs_link_table_free(&r->dirs);
	if (r->outfd >= 0)
		close(r->outfd);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->shared_io_lock);
	pthread_mutex_destroy(&r->links.lock);
	pthread_cond_destroy(&r->links.settled);
	pthread_mutex_destroy(&r->dirs.lock);
	pthread_cond_destroy(&r->dirs.settled);
}

int restore_image(const struct restore_params *p, struct restore_stats *st, char *err,
		  size_t errlen)
{
	struct restore r;
	struct worker *ws = NULL;
	struct root_ref root;
	struct stat top;
	u64 start_ino;
	int ret;

	restore_init(&r, p);
	fs_clear_err(r.fs);
	ret = start_point(&r, p, &root, &start_ino);
	if (!ret) {
		r.have_csum_root = find_root(r.fs, BTRFS_CSUM_TREE_OBJECTID, &r.csum_root) == 0;
		ret = start_workers(&r, p, &ws);
	}
	if (!ret)
		ret = open_outdir(&r, p->outdir, &top);
	if (ret) {
		snprintf(err, errlen, "%s", fs_errmsg(r.fs)[0] ? fs_errmsg(r.fs) : strerror(-ret));
		restore_free(&r, ws, p->threads);
		return ret;
	}
	r.outlen = strlen(p->outdir);
	fs_clear_err(r.fs);
	progress_init(&r.prog, "restore", "bytes");
	ret = restore_top(&ws[0], p, &root, start_ino, &top);
	if (ret)
		rs_set_fatal(&r, ret);
	else
		rs_workers_run(&r, ws, p->threads);
	progress_end(&r.prog, r.done_bytes, 0);
	sum_counts(ws, p->threads, st);
	ret = r.fatal;
	if (ret)
		snprintf(err, errlen, "%s", r.fatal_msg[0] ? r.fatal_msg : strerror(-ret));
	restore_free(&r, ws, p->threads);
	return ret;
}
