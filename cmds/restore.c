// SPDX-License-Identifier: GPL-2.0
/*
 * restore: extract the files of an image into a directory, decrypting what
 * is encrypted when the key is given.  The work is the restore engine's
 * (restore/restore.h); this is the command: options, exit status, summary.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/key-input.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/utils.h"
#include "restore/restore.h"
#include "kernel-shared/disk-io.h"

const char *const cmd_restore_usage[] = {
	"btrfs-extcrypt restore [options] <image> <outdir>",
	"Extract files from an image, decrypting encrypted ones with the key",
	"",
	"Reads the image only.  Data checksums (of the stored, encrypted bytes) are",
	"verified before decryption; a file with a bad checksum is reported and left",
	"out.  Without a key, encrypted names appear in the fscrypt no-key form and",
	"encrypted contents are skipped with a warning (or written as stored",
	"ciphertext with --raw), and so are those under a key not given.  Several",
	"keys restore an image whose rekey was cut short whole.  Hard links,",
	"symlinks, holes, modes, times, xattrs and, when run as root, owners and",
	"device nodes are kept.  Never prompts.",
	"",
	OPTLINE("--root ID", "subvolume to restore (default: the top level, 5)"),
	OPTLINE("--path P", "restore only this directory or file (a path inside the subvolume; plaintext or no-key names in encrypted directories)"),
	OPTLINE("--raw", "without a key, write the ciphertext of encrypted files"),
	OPTLINE("--dry-run", "walk and report, write nothing"),
	OPTLINE("--threads N", "worker threads restoring files at once (default: online CPUs)"),
	SUPER_OPTLINE,
	DEVICE_OPTLINE,
	KEYS_INPUT_OPTLINES(OPTLINE),
	FORCE_OPTLINE,
	OPTLINE("--help", "show this help"),
	"",
	"Exit status: 0 everything restored (warnings allowed), 1 some files failed,",
	"2 usage error, 3 image unreadable, 4 key error (no key given opens any",
	"encrypted inode).",
	NULL
};

struct restore_opts {
	unsigned long long root_id, threads;
	const char *sel, *outdir;	/* --path; the output directory */
	bool raw, dry_run;
};

static int restore_parse(struct cmd_context *ctx, int argc, char **argv)
{
	enum { OPT_ROOT = 0x2100, OPT_PATH, OPT_RAW, OPT_DRY, OPT_THREADS };
	static const struct option opts[] = {
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "threads", required_argument, NULL, OPT_THREADS },
		GETOPT_SUPER_OPTION,
		GETOPT_DEVICE_OPTION,
		KEY_INPUT_LONG_OPTIONS,
		GETOPT_FORCE_OPTION,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct restore_opts *o = ctx->opts;
	int c, ret;

	o->root_id = BTRFS_FS_TREE_OBJECTID;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT:
			if (parse_u64(optarg, &o->root_id))
				return usage_error(ctx->cmd, "invalid root id '%s'", optarg);
			break;
		case OPT_PATH:
			o->sel = optarg;
			break;
		case OPT_RAW:
			o->raw = true;
			break;
		case OPT_DRY:
			o->dry_run = true;
			break;
		case OPT_THREADS:
			if (parse_u64(optarg, &o->threads) || !o->threads || o->threads > 256)
				return usage_error(ctx->cmd, "invalid thread count '%s'", optarg);
			break;
		default:
			ret = cmd_parse_common(ctx, c, optarg);
			if (ret != CMD_PARSE_OK)
				return ret;
		}
	}
	if ((ret = check_argc_exact(ctx->cmd, argc - optind, 2)))
		return ret;
	ctx->image_path = argv[optind];
	o->outdir = argv[optind + 1];
	if (!o->threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		o->threads = cpus < 1 ? 1 : cpus > 256 ? 256 : cpus;
	}
	return CMD_PARSE_OK;
}

/* The summary; returns the exit code (keys that open nothing are a key error). */
static int restore_report(const struct restore_params *p, const struct restore_stats *st)
{
	int ret = EXIT_OK;

	/* Keys that open none of the encrypted inodes are wrong keys, not a success. */
	if (p->nr_mks && st->enc_locked && !st->enc_opened) {
		if (p->nr_mks == 1)
			error("wrong key: it opens none of the %llu encrypted inodes", st->enc_locked);
		else
			error("wrong keys: none of the %zu keys opens any of the %llu encrypted inodes",
			      p->nr_mks, st->enc_locked);
		ret = EXIT_KEY;
	} else if (p->nr_mks && st->enc_locked) {
		/* Part of the image (a rekey cut short?) is under a key not given. */
		warning("%llu of the %llu encrypted inodes are under keys that were not given: files among them skipped, names in directories among them left in no-key form",
			st->enc_locked, st->enc_locked + st->enc_opened);
	}
	if (g_format == FORMAT_JSON) {
		struct json_object *doc = json_doc_new();

		json_object_object_add(doc, "files", json_u64(st->files));
		json_object_object_add(doc, "directories", json_u64(st->dirs));
		json_object_object_add(doc, "symlinks", json_u64(st->symlinks));
		json_object_object_add(doc, "special-files", json_u64(st->specials));
		json_object_object_add(doc, "hard-links", json_u64(st->links_made));
		json_object_object_add(doc, "bytes", json_u64(st->bytes));
		json_object_object_add(doc, "skipped", json_u64(st->skipped));
		json_object_object_add(doc, "failed", json_u64(st->failed));
		json_object_object_add(doc, "dry-run", json_object_new_boolean(p->dry_run));
		if (ret)
			json_add_error(doc, ret);
		json_doc_print(doc);
	} else {
		note("%s %llu files, %llu directories, %llu symlinks, %llu hard links, %llu bytes; %llu skipped, %llu failed",
		     p->dry_run ? "Would restore" : "Restored", st->files, st->dirs, st->symlinks,
		     st->links_made, st->bytes, st->skipped, st->failed);
	}
	return ret ? ret : st->failed ? EXIT_PROBLEMS : EXIT_OK;
}

/* The dispatcher has loaded the key, if given, and opened the image. */
static int restore_run(struct cmd_context *ctx)
{
	const struct restore_opts *o = ctx->opts;
	struct restore_params p = {
		.fs = ctx->fs, .mks = cmd_keys(ctx), .nr_mks = ctx->nr_mks,
		.root_id = o->root_id, .sel = o->sel,
		.outdir = o->outdir, .threads = o->threads, .raw = o->raw, .dry_run = o->dry_run,
	};
	struct restore_stats st = { 0 };
	char err[FS_ERRMSG_SIZE];
	int ret = restore_image(&p, &st, err, sizeof(err));

	if (ret) {
		/* Whoever ran out of memory, and whatever text is left: it says so. */
		error("%s", ret == -ENOMEM ? "out of memory" : err);
		return exit_code(ret, ERR_AT_RUN);
	}
	return restore_report(&p, &st);
}

DEFINE_COMMAND(restore, "restore",
	       CMD_IMAGE_RO | CMD_MULTI_DEVICE | CMD_NOT_MOUNTED | CMD_KEY_OPTIONAL | CMD_KEYS_MULTI,
	       struct restore_opts);
