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

/* Map an engine error to an exit code: corruption and I/O are 3, refusals 1. */
static int fail(struct fs_info *fs, int err, const char *what)
{
	error("%s: %s", what, fs_errmsg(fs)[0] ? fs_errmsg(fs) : strerror(-err));
	return (err == -EUCLEAN || err == -EIO) ? EXIT_UNREADABLE : EXIT_PROBLEMS;
}

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

int cmd_reflink(const struct cmd_struct *cmd, int argc, char **argv)
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
	unsigned long long root_id = BTRFS_FS_TREE_OBJECTID, soff = 0, len = 0, doff = 0;
	struct file_spec src = { 0 }, dst = { 0 };
	bool create = false, dry_run = false;
	struct clone_args a = { 0 };
	struct root_ref sroot, droot;
	struct fs_info *fs;
	struct trans *t = NULL;
	struct timespec now;
	char errbuf[512];
	int c, ret, need;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long long *v = NULL;

		switch (c) {
		case 'r': v = &root_id; break;
		case 'o': v = &soff; break;
		case 'l': v = &len; break;
		case 'd': v = &doff; break;
		case 's': v = &src.ino; src.by_ino = true; break;
		case 't': v = &dst.ino; dst.by_ino = true; break;
		case 'c': create = true; break;
		case 'n': dry_run = true; break;
		default:
			return cmd_help_or_usage(cmd, c);
		}
		if (v && parse_u64(optarg, v))
			return usage_error(cmd, "invalid number '%s'", optarg);
	}
	need = 1 + !src.by_ino + !dst.by_ino;
	if ((ret = check_argc_exact(cmd, argc - optind, need)))
		return ret;
	if (!src.by_ino)
		src.path = argv[optind++];
	if (!dst.by_ino)
		dst.path = argv[optind++];
	if (create && dst.by_ino)
		return usage_error(cmd, "--create needs a destination path");
	ret = open_image_rw(argv[optind], &fs, errbuf);
	if (ret) {
		error("%s", errbuf);
		return ret == -EBUSY || ret == -EOPNOTSUPP ? EXIT_PROBLEMS : EXIT_UNREADABLE;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	ret = resolve(fs, root_id, &src, &sroot, &a.src_ino);
	if (ret) {
		ret = fail(fs, ret, "source");
		goto out;
	}
	ret = trans_begin(fs, &t);
	if (ret) {
		ret = fail(fs, ret, "cannot start a transaction");
		goto out;
	}
	ret = resolve(fs, root_id, &dst, &droot, &a.dst_ino);
	if (ret == -ENOENT && create) {
		/* Create it in its parent directory, with the source's owner and mode. */
		char *copy = strdup(dst.path), *copy2 = strdup(dst.path);
		struct file_spec parent = { .path = copy ? dirname(copy) : "/" };

		/* "name" alone lives at the top of the subvolume: dirname says ".". */
		if (!strcmp(parent.path, "."))
			parent.path = "/";
		struct btrfs_inode_item si;
		struct trans_root *tr;
		u64 pdir;

		fs_errmsg(fs)[0] = 0;
		ret = resolve(fs, root_id, &parent, &droot, &pdir);
		tr = ret ? NULL : trans_get_root(t, droot.objectid);
		if (!ret && !tr)
			ret = -EIO;
		if (!ret)
			ret = trans_inode_read(t, trans_get_root(t, sroot.objectid), a.src_ino, &si);
		if (ret > 0)
			ret = fs_err(fs, -ENOENT, "source inode %llu not found", a.src_ino);
		if (!ret)
			ret = inode_create_file(t, tr, pdir, copy2 ? basename(copy2) : "",
						le32_to_cpu(si.mode), le32_to_cpu(si.uid),
						le32_to_cpu(si.gid), now.tv_sec, now.tv_nsec,
						&a.dst_ino);
		free(copy);
		free(copy2);
	}
	if (ret) {
		ret = fail(fs, ret, "destination");
		goto out;
	}
	a.src_root = sroot.objectid;
	a.dst_root = droot.objectid;
	a.src_off = soff;
	a.len = len;
	a.dst_off = doff;
	a.now_sec = now.tv_sec;
	a.now_nsec = now.tv_nsec;
	ret = clone_range(t, &a);
	if (ret) {
		ret = fail(fs, ret, "cannot reflink");
		goto out;
	}
	if (dry_run) {
		trans_abort(t);
		t = NULL;
	} else {
		ret = trans_commit(t);
		t = NULL;
		if (ret) {
			ret = fail(fs, ret, "commit failed");
			goto out;
		}
	}
	if (g_format == FORMAT_JSON) {
		struct json_object *doc = json_doc_new();

		json_object_object_add(doc, "src-root", json_u64(a.src_root));
		json_object_object_add(doc, "src-inode", json_u64(a.src_ino));
		json_object_object_add(doc, "src-offset", json_u64(a.src_off));
		json_object_object_add(doc, "dst-root", json_u64(a.dst_root));
		json_object_object_add(doc, "dst-inode", json_u64(a.dst_ino));
		json_object_object_add(doc, "dst-offset", json_u64(a.dst_off));
		json_object_object_add(doc, "length", json_u64(a.cloned));
		json_object_object_add(doc, "dry-run", json_object_new_boolean(dry_run));
		json_doc_print(doc);
	} else {
		note("%s: root %llu inode %llu offset %llu -> root %llu inode %llu offset %llu, length %llu%s",
		     dry_run ? "Would reflink" : "Reflinked", a.src_root, a.src_ino, a.src_off,
		     a.dst_root, a.dst_ino, a.dst_off, a.cloned,
		     a.len ? "" : " (to the end of the source)");
	}
	ret = EXIT_OK;
out:
	if (t)
		trans_abort(t);
	close_image(fs);
	return ret;
}
