// SPDX-License-Identifier: GPL-2.0
/* reflink: share extents of one file range into another, offline. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/utils.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/reflink.h"
#include "kernel-shared/volumes.h"

const char *const cmd_reflink_usage[] = {
	"btrfs-extcrypt reflink [options] <src> <dst> <image>",
	"btrfs-extcrypt reflink [options] --src-inode <ino> --dst-inode <ino> <image>",
	"Share a range of one file's extents into another file, like FICLONERANGE",
	"",
	"Paths are inside the image, from the top-level subvolume (or from the",
	"subvolume given with --root).  The data is not copied: the destination",
	"references the source's extents, their checksums and, for encrypted",
	"files, their encryption contexts.  Both files must be plain or both",
	"encrypted with the same master key and contents mode; offsets must be",
	"sector aligned, and so must the length unless it reaches the source's",
	"end of file.  The image is changed in one transaction: an interrupted",
	"run leaves it as it was.",
	"",
	OPTLINE("--root ID", "subvolume the paths (or inode numbers) are in; default: top level"),
	OPTLINE("--src-offset O", "first byte of the source range (default 0)"),
	OPTLINE("--length L", "bytes to clone; 0 (default): to the source's end of file"),
	OPTLINE("--dest-offset D", "where the range goes in the destination (default 0)"),
	OPTLINE("--create", "create the destination as an empty file if it does not exist"),
	OPTLINE("--src-inode INO", "source by inode number (in --root) instead of a path"),
	OPTLINE("--dst-inode INO", "destination by inode number (in --root) instead of a path"),
	OPTLINE("--dry-run", "check everything, change nothing"),
	OPTLINE("--help", "show this help"),
	"",
	"Exit status: 0 done, 1 refused or failed (nothing changed), 2 usage error,",
	"3 image unreadable.",
	NULL
};

struct file_spec {
	const char *path;
	unsigned long long ino;
	bool by_ino;
};

/* Resolve a path (or inode) to tree and inode; --create makes a missing destination. */
static int resolve(struct fs_info *fs, u64 root_id, const struct file_spec *f,
		   struct root_ref *root, u64 *ino)
{
	u64 dir;
	int ret;

	ret = find_root(fs, root_id, root);
	if (ret == -ENOENT)
		return fs_err(fs, -ENOENT, "no subvolume with id %llu", root_id);
	if (ret)
		return ret;
	if (f->by_ino) {
		*ino = f->ino;
		return 0;
	}
	ret = subvol_root_dir(fs, root_id, &dir);
	if (ret)
		return ret < 0 ? ret : fs_err(fs, -ENOENT, "tree %llu is not a subvolume", root_id);
	ret = path_lookup_from(fs, root, dir, f->path, root, ino);
	if (ret > 0)
		return fs_err(fs, -ENOENT, "no such file in the image: %s", f->path);
	return ret;
}

struct reflink_opts {
	unsigned long long root_id, soff, len, doff;
	struct file_spec src, dst;
	bool create, dry_run;
};

static int reflink_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "src-offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		{ "dest-offset", required_argument, NULL, 'd' },
		{ "create", no_argument, NULL, 'c' },
		{ "src-inode", required_argument, NULL, 's' },
		{ "dst-inode", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct reflink_opts *o = ctx->opts;
	int c, ret, need;

	o->root_id = BTRFS_FS_TREE_OBJECTID;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long long *v = NULL;

		switch (c) {
		case 'r': v = &o->root_id; break;
		case 'o': v = &o->soff; break;
		case 'l': v = &o->len; break;
		case 'd': v = &o->doff; break;
		case 's': v = &o->src.ino; o->src.by_ino = true; break;
		case 't': v = &o->dst.ino; o->dst.by_ino = true; break;
		case 'c': o->create = true; break;
		case 'n': o->dry_run = true; break;
		default:
			return cmd_parse_common(ctx, c, optarg);
		}
		if (v && parse_u64(optarg, v))
			return usage_error(ctx->cmd, "invalid number '%s'", optarg);
	}
	need = 1 + !o->src.by_ino + !o->dst.by_ino;
	if ((ret = check_argc_exact(ctx->cmd, argc - optind, need)))
		return ret;
	if (!o->src.by_ino)
		o->src.path = argv[optind++];
	if (!o->dst.by_ino)
		o->dst.path = argv[optind++];
	if (o->create && o->dst.by_ino)
		return usage_error(ctx->cmd, "--create needs a destination path");
	ctx->image_path = argv[optind];
	return CMD_PARSE_OK;
}

/*
 * --create: make the missing destination an empty file in its parent
 * directory, with the source's owner and mode.  Returns 0 or a negative errno.
 */
static int create_destination(struct trans *t, const struct reflink_opts *o,
			      const struct root_ref *sroot, struct root_ref *droot,
			      struct clone_args *a, const struct timespec *now)
{
	struct fs_info *fs = t->fs;
	char *copy = strdup(o->dst.path), *copy2 = strdup(o->dst.path);
	struct file_spec parent = { .path = copy ? dirname(copy) : "/" };
	struct btrfs_inode_item si;
	struct trans_root *tr;
	u64 pdir;
	int ret;

	/* "name" alone lives at the top of the subvolume: dirname says ".". */
	if (!strcmp(parent.path, "."))
		parent.path = "/";
	fs_errmsg(fs)[0] = 0;
	ret = resolve(fs, o->root_id, &parent, droot, &pdir);
	tr = ret ? NULL : trans_get_root(t, droot->objectid);
	if (!ret && !tr)
		ret = -EIO;
	if (!ret)
		ret = trans_inode_read(t, trans_get_root(t, sroot->objectid), a->src_ino, &si);
	if (ret > 0)
		ret = fs_err(fs, -ENOENT, "source inode %llu not found", a->src_ino);
	if (!ret)
		ret = inode_create_file(t, tr, pdir, copy2 ? basename(copy2) : "",
					le32_to_cpu(si.mode), le32_to_cpu(si.uid),
					le32_to_cpu(si.gid), now->tv_sec, now->tv_nsec,
					&a->dst_ino);
	free(copy);
	free(copy2);
	return ret;
}

static void print_result(const struct clone_args *a, bool dry_run)
{
	if (g_format == FORMAT_JSON) {
		struct json_object *doc = json_doc_new();

		json_object_object_add(doc, "src-root", json_u64(a->src_root));
		json_object_object_add(doc, "src-inode", json_u64(a->src_ino));
		json_object_object_add(doc, "src-offset", json_u64(a->src_off));
		json_object_object_add(doc, "dst-root", json_u64(a->dst_root));
		json_object_object_add(doc, "dst-inode", json_u64(a->dst_ino));
		json_object_object_add(doc, "dst-offset", json_u64(a->dst_off));
		json_object_object_add(doc, "length", json_u64(a->cloned));
		json_object_object_add(doc, "dry-run", json_object_new_boolean(dry_run));
		json_doc_print(doc);
		return;
	}
	note("%s: root %llu inode %llu offset %llu -> root %llu inode %llu offset %llu, length %llu%s",
	     dry_run ? "Would reflink" : "Reflinked", a->src_root, a->src_ino, a->src_off,
	     a->dst_root, a->dst_ino, a->dst_off, a->cloned,
	     a->len ? "" : " (to the end of the source)");
}

/* Source, destination and the clone in transaction t; 0 or the exit code. */
static int reflink_in(struct trans *t, const struct reflink_opts *o, struct clone_args *a)
{
	struct fs_info *fs = t->fs;
	struct root_ref sroot, droot;
	struct timespec now;
	int ret;

	clock_gettime(CLOCK_REALTIME, &now);
	ret = resolve(fs, o->root_id, &o->src, &sroot, &a->src_ino);
	if (ret)
		return cmd_engine_error(fs, ret, "source");
	ret = resolve(fs, o->root_id, &o->dst, &droot, &a->dst_ino);
	if (ret == -ENOENT && o->create)
		ret = create_destination(t, o, &sroot, &droot, a, &now);
	if (ret)
		return cmd_engine_error(fs, ret, "destination");
	a->src_root = sroot.objectid;
	a->dst_root = droot.objectid;
	a->src_off = o->soff;
	a->len = o->len;
	a->dst_off = o->doff;
	a->now_sec = now.tv_sec;
	a->now_nsec = now.tv_nsec;
	ret = clone_range(t, a);
	if (ret)
		return cmd_engine_error(fs, ret, "cannot reflink");
	return 0;
}

static int reflink_run(struct cmd_context *ctx)
{
	const struct reflink_opts *o = ctx->opts;
	struct clone_args a = { 0 };
	struct trans *t = NULL;
	int ret;

	ret = trans_begin(ctx->fs, &t);
	if (ret)
		return cmd_engine_error(ctx->fs, ret, "cannot start a transaction");
	ret = reflink_in(t, o, &a);
	if (ret || o->dry_run) {
		trans_abort(t);
	} else {
		ret = trans_commit(t);
		if (ret)
			ret = cmd_engine_error(ctx->fs, ret, "commit failed");
	}
	if (!ret)
		print_result(&a, o->dry_run);
	return ret;
}

DEFINE_COMMAND(reflink, "reflink", CMD_IMAGE_RW, struct reflink_opts);
