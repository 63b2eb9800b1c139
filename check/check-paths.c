// SPDX-License-Identifier: GPL-2.0
/*
 * --require-encryption=/path,...: every file, directory and symbolic link
 * at and below the named paths of the top-level subvolume, crossing into
 * the subvolumes below them, must be encrypted (NOT_ENCRYPTED); a path that
 * does not resolve is REQUIRED_PATH_MISSING; a subvolume ID that does not
 * exist is REQUIRED_SUBVOL_MISSING.  Also here: how a report shows the name
 * of a directory entry (check_shown_name()).
 *
 * Paths are resolved through the path codec (data/names.h): plaintext
 * names through encrypted directories with the keys given, the
 * kernel's no-key names with or without one.  The walk reads each
 * directory's DIR_INDEX items once.  A set of visited (tree, inode) pairs
 * ends it on hostile images whose directory entries form cycles, and
 * reports an inode reached twice (hard links, nested or repeated paths)
 * once.  Inodes of subvolumes that the IDs of the same option cover are
 * reported by the inode pass (check-fs.c), not again here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "check/check.h"
#include "common/escape.h"
#include "common/containers.h"
#include "common/messages.h"
#include "data/names.h"
#include "kernel-shared/disk-io.h"

struct seen_ino {
	u64 tree, ino;
};

struct walk_item {
	struct root_ref root;
	u64 ino;
};

struct path_walk {
	struct check_ctx *c;
	struct u64map seen;	/* struct seen_ino, keyed by a mix of both */
	struct vec todo;	/* struct walk_item */
	const char *what;	/* "path /a" for the messages */
};

static u64 seen_hash(u64 tree, u64 ino)
{
	return (ino * 0x9e3779b97f4a7c15ULL) ^ tree;
}

/* Mark (tree, ino) visited: true the first time. */
static bool first_visit(struct path_walk *w, u64 tree, u64 ino)
{
	u64 h = seen_hash(tree, ino);
	struct seen_ino *s;
	size_t cursor = 0;

	while ((s = u64map_next(&w->seen, h, &cursor)))
		if (s->tree == tree && s->ino == ino)
			return false;
	s = u64map_insert(&w->seen, h);
	if (!s)
		die_oom();
	s->tree = tree;
	s->ino = ino;
	return true;
}

static void push(struct path_walk *w, const struct root_ref *root, u64 ino)
{
	struct walk_item *it;

	if (!first_visit(w, root->objectid, ino))
		return;
	it = vec_push(&w->todo);
	if (!it)
		die_oom();
	it->root = *root;
	it->ino = ino;
}

static bool tree_covered_by_ids(const struct check_ctx *c, u64 tree)
{
	for (size_t i = 0; i < c->nr_require_roots; i++)
		if (c->require_roots[i] == tree)
			return true;
	return false;
}

/* Queue the inodes directory dir names: its entries, subvolumes by their root directory. */
static void push_entries(struct path_walk *w, const struct root_ref *root, u64 dir)
{
	struct fs_info *fs = w->c->fs;
	struct key_iter it;
	int ret;

	for (ret = key_iter_type(&it, fs, root, dir, BTRFS_DIR_INDEX_KEY, 0); ret == 0;
	     ret = key_iter_next(&it)) {
		const struct btrfs_dir_item *di = (const void *)it.ptr;
		struct root_ref sub;
		u64 loc, subdir;

		if (it.size < sizeof(*di))
			continue;	/* the inode pass reports malformed items */
		loc = le64_to_cpu(di->location.objectid);
		if (di->location.type == BTRFS_INODE_ITEM_KEY) {
			push(w, root, loc);
		} else if (di->location.type == BTRFS_ROOT_ITEM_KEY &&
			   !find_root(fs, loc, &sub) && !subvol_root_dir(fs, loc, &subdir)) {
			push(w, &sub, subdir);
		}
	}
	key_iter_release(&it);
}

/* Report every plain inode at and below (root, ino). */
static void walk_subtree(struct path_walk *w, const struct root_ref *root, u64 ino)
{
	struct check_ctx *c = w->c;

	push(w, root, ino);
	while (w->todo.nr) {
		struct walk_item cur = VEC_AT(&w->todo, struct walk_item, --w->todo.nr);
		struct btrfs_inode_item ii;
		u32 mode;

		if (inode_lookup(c->fs, &cur.root, cur.ino, &ii))
			continue;	/* missing or unreadable: the inode pass reports it */
		mode = le32_to_cpu(ii.mode);
		if (!(le64_to_cpu(ii.flags) & BTRFS_INODE_ENCRYPT) &&
		    cur.ino >= BTRFS_FIRST_FREE_OBJECTID &&
		    (S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode)) &&
		    !tree_covered_by_ids(c, cur.root.objectid))
			check_report(c, PR_NOT_ENCRYPTED, LOC_INODE(cur.root.objectid, cur.ino),
				     mode, w->what);
		if (S_ISDIR(mode))
			push_entries(w, &cur.root, cur.ino);
	}
}

int check_required_paths(struct check_ctx *c)
{
	struct path_walk w = { .c = c };
	struct enc_names en;
	int err = 0;

	if (!c->nr_require_paths)
		return 0;
	enc_names_init_keys(&en, c->fs, c->path_keys, c->nr_path_keys);
	u64map_init(&w.seen, sizeof(struct seen_ino));
	vec_init(&w.todo, sizeof(struct walk_item));
	for (size_t i = 0; i < c->nr_require_paths && !err; i++) {
		const char *p = c->require_paths[i];
		struct root_ref root;
		char *what;
		u64 ino;
		int ret = path_lookup(c->fs, &en.nc, p, &root, &ino);

		if (ret == -EKEYREJECTED) {
			error("--require-encryption path %s: %s", p, fs_errmsg(c->fs));
			err = exit_code(ret, ERR_AT_RUN);
		} else if (ret > 0 || ret == -ENOENT) {
			check_report(c, PR_REQUIRED_PATH_MISSING, LOC_NONE, p, "does not exist");
		} else if (ret < 0) {
			char why[512];

			snprintf(why, sizeof(why), "cannot be resolved: %s", fs_errmsg(c->fs));
			check_report(c, PR_REQUIRED_PATH_MISSING, LOC_NONE, p, why);
		} else {
			if (asprintf(&what, "path %s", p) < 0)
				die_oom();
			w.what = what;
			walk_subtree(&w, &root, ino);
			free(what);
		}
	}
	u64map_free(&w.seen);
	vec_free(&w.todo);
	return err;
}

/* Each subvolume that --require-encryption names must exist. */
void check_required_subvols(struct check_ctx *c)
{
	for (size_t i = 0; i < c->nr_require_roots; i++) {
		u64 id = c->require_roots[i];
		bool found = false;

		for (size_t k = 0; k < c->roots.nr && !found; k++)
			found = VEC_AT(&c->roots, struct root_desc, k).objectid == id;
		if (!found)
			check_report(c, PR_REQUIRED_SUBVOL_MISSING, LOC(id, NOLOC, NOLOC, NOLOC),
				     (unsigned long long)id);
	}
}

/*
 * The name of an entry of directory dir in tree root as a report shows it
 * (common/escape.h): in an encrypted directory decrypted with the key, its
 * no-key name without it (or when the directory's context cannot be read),
 * never the ciphertext; escaped.  Called only to make a report.
 */
const char *check_shown_name(struct check_ctx *c, u64 root, u64 dir, const u8 *name,
			     size_t len, char *out, size_t outlen)
{
	char shown[NAME_SHOW_SIZE];
	struct enc_names en;
	struct root_ref rr;
	int n = -1;

	enc_names_init_keys(&en, c->fs, c->path_keys, c->nr_path_keys);
	if (find_root(c->fs, root, &rr) == 0)
		n = en.nc.show(&en.nc, &rr, dir, name, len, shown);
	if (n < 0) {
		fs_clear_err(c->fs);
		nokey_name(name, (u32)len, shown);
		n = (int)strlen(shown);
	}
	return name_text(shown, (size_t)n, out, outlen);
}
