// SPDX-License-Identifier: GPL-2.0
/* encrypt, decrypt and rekey: whole subvolumes in place, crash-safe and resumable. */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/key-input.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/progress.h"
#include "common/utils.h"
#include "reencrypt/reencrypt.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/inode-ref.h"
#include "data/names.h"
#include "kernel-shared/disk-io.h"

#define COMMON_LINES(verb)							\
	OPTLINE("--subvol ID|PATH", "only this subvolume (repeatable); default: every subvolume"), \
	OPTLINE("--path DIR", "only this directory and everything below it (repeatable)"), \
	OPTLINE("--dry-run", "check the key, policy and free space, and say what would be " verb ", changing nothing"), \
	OPTLINE("--threads N", "crypto worker threads (default: online CPUs)"),	\
	OPTLINE("--grow", "extend the image file when the job needs more room than it has"), \
	DEVICE_OPTLINE,								\
	KEY_INPUT_OPTLINES(OPTLINE),						\
	OPTLINE("--help", "show this help")

const char *const cmd_encrypt_usage[] = {
	"btrfs-extcrypt encrypt --key-file K [options] <image>",
	"Encrypt subvolumes of a plain image in place, as the btrfs fscrypt kernel would",
	"",
	"Every directory, regular file and symlink gets an fscrypt v2 context and the",
	"ENCRYPT flag; names and symlink targets are encrypted with AES-256-CTS; the",
	"data of every extent is copied to a new extent encrypted with AES-256-XTS",
	"under a fresh per-extent nonce, with checksums of the ciphertext.  Work is",
	"committed file by file in batches: an interrupted run leaves a consistent",
	"image, and running the command again finishes it.",
	"",
	"Security caveat: encryption in place cannot reach copies of the plaintext",
	"outside the image's trees: snapshots not selected, other copies of the image",
	"file, and blocks the storage device remapped.  Freed blocks that held",
	"plaintext are overwritten with zeros unless --no-wipe is given.",
	"",
	OPTLINE("--policy C:F", "contents and filenames modes (default AES-256-XTS:AES-256-CTS)"),
	OPTLINE("--padding 4|8|16|32", "filename padding in bytes (default 32)"),
	OPTLINE("--no-wipe", "do not overwrite freed blocks that held plaintext"),
	COMMON_LINES("encrypted"),
	"",
	"When no block group has room, new chunks are allocated from unallocated",
	"device space, sized as the kernel sizes them; block groups left empty are",
	"removed.  With --grow an image file too small for the job is extended.",
	"",
	MULTI_DEVICE_WRITE_LINES,
	"",
	"Exit status: 0 done, 1 refused or failed, 2 usage error, 3 image unreadable,",
	"4 key error (bad key input, or the image is encrypted with another key).",
	NULL
};

const char *const cmd_decrypt_usage[] = {
	"btrfs-extcrypt decrypt --key-file K [options] <image>",
	"Decrypt an encrypted image in place, back to a plain btrfs image",
	"",
	"The exact reverse of encrypt.  Once nothing encrypted remains, the ENCRYPT",
	"incompat bit is cleared and the image is a plain btrfs image again.",
	"",
	COMMON_LINES("decrypted"),
	"",
	"Exit status: 0 done, 1 refused or failed, 2 usage error, 3 image unreadable,",
	"4 key error (bad key input, or a context with another key identifier).",
	NULL
};

const char *const cmd_rekey_usage[] = {
	"btrfs-extcrypt rekey --key-file OLD --new-key-file NEW [options] <image>",
	"Change the master key of an encrypted image in place, offline",
	"",
	"Every inode under the old key gets a fresh context under the new key; names,",
	"symlink targets and the data of every extent are decrypted and encrypted",
	"again in memory (plaintext only in locked memory, never on the disk) under",
	"fresh nonces, with checksums of the new ciphertext.  Compressed extents stay",
	"compressed, shared extents stay shared when every sharer is converted.",
	"Work is committed in batches, each inode wholly under one key: running the",
	"command again with the same two keys finishes an interrupted run, and must",
	"be done before the image is mounted.  Freed blocks that held the old",
	"ciphertext are overwritten with zeros unless --no-wipe is given.",
	"",
	NEW_KEY_INPUT_OPTLINES(OPTLINE),
	OPTLINE("--policy C:F", "new contents and filenames modes (default: each inode keeps its own)"),
	OPTLINE("--padding 4|8|16|32", "new filename padding in bytes (with --policy; default 32)"),
	OPTLINE("--no-wipe", "do not overwrite freed blocks that held the old ciphertext"),
	COMMON_LINES("rekeyed"),
	"",
	"Exit status: 0 done, 1 refused or failed, 2 usage error, 3 image unreadable,",
	"4 key error (bad key input, the same key twice, or an inode under a third key).",
	NULL
};

/* "AES-256-XTS:AES-256-CTS" or "1:4" -> modes. */
static int parse_policy(const char *s, u8 *contents, u8 *filenames)
{
	static const struct { const char *name; int mode; } modes[] = {
		{ "AES-256-XTS", 1 }, { "AES-256-CTS", 4 }, { "AES-128-CBC", 5 },
		{ "AES-128-CTS", 6 }, { "SM4-XTS", 7 }, { "SM4-CTS", 8 }, { "Adiantum", 9 },
		{ "AES-256-HCTR2", 10 },
	};
	char buf[64], *colon;
	int m[2] = { -1, -1 };

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = 0;
	for (int side = 0; side < 2; side++) {
		const char *tok = side ? colon + 1 : buf;
		unsigned long long v;

		if (!parse_u64(tok, &v) && v < 256)
			m[side] = (int)v;
		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
			if (!strcasecmp(tok, modes[i].name))
				m[side] = modes[i].mode;
		if (m[side] < 0)
			return -EINVAL;
	}
	*contents = m[0];
	*filenames = m[1];
	return 0;
}

enum { OPT_POLICY = 0x2000, OPT_PADDING, OPT_SUBVOL, OPT_PATH, OPT_DRY, OPT_NOWIPE,
       OPT_THREADS, OPT_GROW };

/* --subvol ID or PATH (a path must name a subvolume's top directory). */
static int resolve_subvol(struct fs_info *fs, const struct name_codec *nc, const char *arg, u64 *id)
{
	unsigned long long v;
	struct root_ref root;
	u64 ino, top;
	int ret;

	if (!parse_u64(arg, &v)) {
		*id = v;
		return 0;
	}
	ret = path_lookup(fs, nc, arg, &root, &ino);
	if (ret)
		return ret < 0 ? ret : fs_err(fs, -ENOENT, "no such path in the image: %s", arg);
	ret = subvol_root_dir(fs, root.objectid, &top);
	if (ret || ino != top)
		return fs_err(fs, -EINVAL, "%s is not a subvolume", arg);
	*id = root.objectid;
	return 0;
}

/* What encrypt and decrypt parse; the key and the image come from the dispatcher. */
struct convert_cmd_opts {
	struct reencrypt_opts o;
	const char *subvol_args[64], *path_args[64];
	size_t nr_subvols, nr_paths;
	struct reencrypt_path paths[64];
	u64 subvols[64];
	bool grow;
};

/* One option of encrypt or decrypt; returns CMD_PARSE_OK or the exit code. */
static int convert_opt(struct cmd_context *ctx, int c, const char *arg)
{
	struct convert_cmd_opts *co = ctx->opts;
	struct reencrypt_opts *o = &co->o;
	const struct cmd_struct *cmd = ctx->cmd;
	bool decrypt = o->mode == REENCRYPT_DECRYPT;
	unsigned long long v;

	switch (c) {
	case OPT_POLICY:
		if (decrypt || parse_policy(arg, &o->contents_mode, &o->filenames_mode))
			return usage_error(cmd, "invalid policy '%s' (CONTENTS:FILENAMES)", arg);
		o->keep_policy = false;
		break;
	case OPT_PADDING:
		if (decrypt || parse_u64(arg, &v) || (v != 4 && v != 8 && v != 16 && v != 32))
			return usage_error(cmd, "padding must be 4, 8, 16 or 32");
		o->policy_flags = v == 4 ? 0 : v == 8 ? 1 : v == 16 ? 2 : 3;
		o->keep_policy = false;
		break;
	case OPT_SUBVOL:
		if (co->nr_subvols == 64)
			return usage_error(cmd, "at most 64 --subvol options");
		co->subvol_args[co->nr_subvols++] = arg;
		break;
	case OPT_PATH:
		if (co->nr_paths == 64)
			return usage_error(cmd, "at most 64 --path options");
		co->path_args[co->nr_paths++] = arg;
		break;
	case OPT_DRY:
		o->dry_run = true;
		break;
	case OPT_NOWIPE:
		if (decrypt)
			return usage_error(cmd, "--no-wipe is an encrypt and rekey option");
		o->wipe = false;
		break;
	case OPT_GROW:
		co->grow = true;
		break;
	case OPT_THREADS:
		if (parse_u64(arg, &v) || !v || v > 256)
			return usage_error(cmd, "invalid thread count '%s'", arg);
		o->threads = v;
		break;
	case GETOPT_VAL_NEW_KEY_FILE:
	case GETOPT_VAL_NEW_KEY_FD:
		if (o->mode != REENCRYPT_REKEY)
			return usage_error(cmd, "unrecognized option '%s'", c == GETOPT_VAL_NEW_KEY_FILE ?
					   "--new-key-file" : "--new-key-fd");
		return cmd_parse_common(ctx, c, arg);
	default:
		return cmd_parse_common(ctx, c, arg);
	}
	return CMD_PARSE_OK;
}

static int convert_parse(struct cmd_context *ctx, int argc, char **argv,
			 enum reencrypt_mode mode)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "padding", required_argument, NULL, OPT_PADDING },
		{ "subvol", required_argument, NULL, OPT_SUBVOL },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "no-wipe", no_argument, NULL, OPT_NOWIPE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "grow", no_argument, NULL, OPT_GROW },
		GETOPT_DEVICE_OPTION,
		KEY_INPUT_LONG_OPTIONS,
		NEW_KEY_INPUT_LONG_OPTIONS,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	bool decrypt = mode == REENCRYPT_DECRYPT;
	struct convert_cmd_opts *co = ctx->opts;
	struct reencrypt_opts *o = &co->o;
	char reason[FSCRYPT_REASON_SIZE];
	struct fscrypt_context_v2 probe;
	int c, ret;

	*o = (struct reencrypt_opts){ .mode = mode, .contents_mode = 1, .filenames_mode = 4,
				      .policy_flags = FSCRYPT_POLICY_FLAGS_PAD_32, .wipe = true,
				      .keep_policy = mode == REENCRYPT_REKEY };
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		ret = convert_opt(ctx, c, optarg);
		if (ret != CMD_PARSE_OK)
			return ret;
	}
	if ((ret = check_argc_exact(ctx->cmd, argc - optind, 1)))
		return ret;
	ctx->image_path = argv[optind];
	if (decrypt || o->keep_policy)
		return CMD_PARSE_OK;
	fscrypt_context_init(&probe, o->contents_mode, o->filenames_mode, o->policy_flags,
			     (const u8 *)"0123456789abcdef", (const u8 *)"0123456789abcdef");
	if (fscrypt_context_parse(&probe, sizeof(probe), NULL, reason, sizeof(reason)) ||
	    fscrypt_policy_supported(&probe, reason, sizeof(reason))) {
		error("%s", reason);
		return EXIT_PROBLEMS;
	}
	return CMD_PARSE_OK;
}

/* The kernel refuses a master key weaker than the policy's modes: EXIT_KEY. */
static int check_key_fits(const struct fscrypt_master_key *mk, const struct reencrypt_opts *o)
{
	char reason[FSCRYPT_REASON_SIZE];
	struct fscrypt_context_v2 probe;

	fscrypt_context_init(&probe, o->contents_mode, o->filenames_mode, o->policy_flags,
			     mk->identifier, mk->identifier);
	if (fscrypt_master_key_fits_policy(mk, &probe, reason, sizeof(reason))) {
		error("%s", reason);
		return EXIT_KEY;
	}
	return 0;
}

/*
 * decrypt --path: a directory whose parent stays encrypted would leave a plain
 * entry in an encrypted directory (Documentation/format.rst section 8).
 * 0, or a negative errno with its text.
 */
static int decrypt_parent_plain(struct fs_info *fs, const struct root_ref *root, u64 dir)
{
	struct btrfs_inode_item pi;
	char name[NAME_SHOW_SIZE];
	u64 parent, top;
	u16 nlen;
	int ret = subvol_root_dir(fs, root->objectid, &top);

	if (ret || dir == top)
		return ret < 0 ? ret : 0;
	ret = inode_ref_first(fs, root, dir, &parent, name, &nlen);
	if (!ret)
		ret = inode_lookup(fs, root, parent, &pi);
	if (ret)
		return ret < 0 ? ret : 0;
	if (le64_to_cpu(pi.flags) & BTRFS_INODE_ENCRYPT)
		return fs_err(fs, -EINVAL, "its parent directory is encrypted: decrypt the "
			      "parent (or the subvolume) instead");
	return 0;
}

/* --subvol and --path arguments to tree ids and directories; 0 or the exit code. */
static int resolve_selection(struct fs_info *fs, const struct fscrypt_master_key *mk,
			     struct convert_cmd_opts *co)
{
	char what[PATH_MAX + 16];
	struct enc_names en;
	int ret;

	enc_names_init(&en, fs, mk);
	for (size_t i = 0; i < co->nr_subvols; i++) {
		ret = resolve_subvol(fs, &en.nc, co->subvol_args[i], &co->subvols[i]);
		if (ret) {
			snprintf(what, sizeof(what), "--subvol %s", co->subvol_args[i]);
			return cmd_engine_error(fs, ret, what);
		}
	}
	for (size_t i = 0; i < co->nr_paths; i++) {
		struct root_ref root;
		struct btrfs_inode_item ii;

		ret = path_lookup(fs, &en.nc, co->path_args[i], &root, &co->paths[i].dir);
		if (ret > 0)
			ret = fs_err(fs, -ENOENT, "no such directory in the image");
		if (!ret)
			ret = inode_lookup(fs, &root, co->paths[i].dir, &ii);
		if (!ret && !S_ISDIR(le32_to_cpu(ii.mode)))
			ret = fs_err(fs, -ENOTDIR, "not a directory");
		if (!ret && co->o.mode == REENCRYPT_DECRYPT)
			ret = decrypt_parent_plain(fs, &root, co->paths[i].dir);
		if (ret) {
			snprintf(what, sizeof(what), "--path %s", co->path_args[i]);
			return cmd_engine_error(fs, ret, what);
		}
		co->paths[i].tree = root.objectid;
	}
	co->o.subvols = co->subvols;
	co->o.nr_subvols = co->nr_subvols;
	co->o.paths = co->paths;
	co->o.nr_paths = co->nr_paths;
	return 0;
}

static void print_summary_json(const struct reencrypt_opts *o, const struct reencrypt_stats *st,
			       double secs)
{
	struct json_object *doc = json_doc_new(), *arr = json_object_new_array();

	json_object_object_add(doc, "operation",
			       json_object_new_string(reencrypt_mode_ops(o->mode)->name));
	json_object_object_add(doc, "dry-run", json_object_new_boolean(o->dry_run));
	json_object_object_add(doc, "inodes", json_u64(st->inodes));
	json_object_object_add(doc, "extents", json_u64(st->extents));
	json_object_object_add(doc, "bytes", json_u64(st->bytes));
	json_object_object_add(doc, "commits", json_u64(st->commits));
	json_object_object_add(doc, "wiped-bytes", json_u64(st->wiped_bytes));
	json_object_object_add(doc, "space-needed", json_u64(st->space_needed));
	json_object_object_add(doc, "space-available", json_u64(st->space_available));
	json_object_object_add(doc, "grow-bytes", json_u64(st->grow_bytes));
	json_object_object_add(doc, "seconds", json_object_new_double(secs));
	for (size_t i = 0; i < st->nr_subvols; i++) {
		const struct reencrypt_subvol_stats *s = &st->subvols[i];
		struct json_object *o2 = json_object_new_object();

		json_object_object_add(o2, "subvolume", json_u64(s->tree));
		json_object_object_add(o2, "inodes", json_u64(s->inodes));
		json_object_object_add(o2, "directories", json_u64(s->dirs));
		json_object_object_add(o2, "files", json_u64(s->files));
		json_object_object_add(o2, "symlinks", json_u64(s->symlinks));
		json_object_object_add(o2, "names", json_u64(s->names));
		json_object_object_add(o2, "extents", json_u64(s->extents));
		json_object_object_add(o2, "bytes", json_u64(s->bytes));
		json_object_array_add(arr, o2);
	}
	json_object_object_add(doc, "subvolumes", arr);
	json_doc_print(doc);
}

static void print_summary(const struct reencrypt_opts *o, const struct reencrypt_stats *st,
			  double secs)
{
	if (g_format == FORMAT_JSON) {
		print_summary_json(o, st, secs);
		return;
	}
	static const char *const done[] = {
		[REENCRYPT_ENCRYPT] = "encrypted", [REENCRYPT_DECRYPT] = "decrypted",
		[REENCRYPT_REKEY] = "rekeyed",
	};
	const char *verb = done[o->mode];

	note("%s%c%s %llu inodes, %llu extents, %llu bytes in %zu subvolume(s), %llu commits, %.2f s",
	     o->dry_run ? "Dry run: would have " : "", o->dry_run ? verb[0] : verb[0] - 'a' + 'A',
	     verb + 1, st->inodes, st->extents, st->bytes, st->nr_subvols, st->commits, secs);
	if (o->dry_run)
		note("Space: the copies need %llu bytes of data at their peak, %llu are free or can be allocated%s",
		     st->space_needed, st->space_available,
		     st->grow_bytes ? "; --grow adds room as needed" : "");
}

/* encrypt and decrypt: the dispatcher has loaded the key and opened the image. */
static int convert_run(struct cmd_context *ctx)
{
	struct convert_cmd_opts *co = ctx->opts;
	struct reencrypt_opts *o = &co->o;
	struct reencrypt_stats st = { 0 };
	struct progress prog;
	struct timespec t0, t1;
	int ret;

	o->mk = ctx->mk;
	o->new_mk = ctx->new_mk;
	if (o->mode == REENCRYPT_ENCRYPT && (ret = check_key_fits(ctx->mk, o)))
		return ret;
	if (o->mode == REENCRYPT_REKEY && !o->keep_policy && (ret = check_key_fits(ctx->new_mk, o)))
		return ret;
	ret = resolve_selection(ctx->fs, ctx->mk, co);
	if (!ret && co->grow)
		ret = cmd_allow_grow(ctx->fs);
	if (ret)
		return ret;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	progress_init(&prog, reencrypt_mode_ops(o->mode)->name, "bytes");
	o->progress = progress_cb;
	o->progress_arg = &prog;
	ret = reencrypt_image(ctx->fs, o, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	progress_end(&prog, st.bytes, st.bytes);
	if (ret) {
		ret = cmd_engine_error(ctx->fs, ret, NULL);
	} else {
		print_summary(o, &st, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
		cmd_note_qgroups(ctx->fs);
		ret = EXIT_OK;
	}
	cmd_report_grow(ctx->fs);
	reencrypt_stats_free(&st);
	return ret;
}

static int encrypt_parse(struct cmd_context *ctx, int argc, char **argv)
{
	return convert_parse(ctx, argc, argv, REENCRYPT_ENCRYPT);
}

static int decrypt_parse(struct cmd_context *ctx, int argc, char **argv)
{
	return convert_parse(ctx, argc, argv, REENCRYPT_DECRYPT);
}

static int rekey_parse(struct cmd_context *ctx, int argc, char **argv)
{
	return convert_parse(ctx, argc, argv, REENCRYPT_REKEY);
}

#define encrypt_run convert_run
#define decrypt_run convert_run
#define rekey_run convert_run
DEFINE_COMMAND(encrypt, "encrypt", CMD_IMAGE_RW | CMD_MULTI_DEVICE | CMD_KEY_REQUIRED | CMD_VERIFY, struct convert_cmd_opts);
DEFINE_COMMAND(decrypt, "decrypt", CMD_IMAGE_RW | CMD_MULTI_DEVICE | CMD_KEY_REQUIRED | CMD_VERIFY | CMD_VERIFY_KEYS,
	       struct convert_cmd_opts);
DEFINE_COMMAND(rekey, "rekey", CMD_IMAGE_RW | CMD_MULTI_DEVICE | CMD_KEY_REQUIRED | CMD_NEW_KEY | CMD_VERIFY |
	       CMD_VERIFY_KEYS, struct convert_cmd_opts);
