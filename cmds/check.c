// SPDX-License-Identifier: GPL-2.0
/*
 * btrfs-extcrypt check: read-only consistency checker for plain and
 * encrypted images, with an optional offline scrub of all data and, given
 * the master key, the checks that need it.  The passes are described in
 * check/check.h, the findings in the problem table of check/check-problems.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include "common/fault.h"
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "check/check.h"
#include "check/check-run.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/utils.h"

/* Tree block cache of check (see cmd_check) */
#define CHECK_CACHE_BYTES (4u << 20)

const char *const cmd_check_usage[] = {
	"btrfs-extcrypt check [options] <image>",
	"Check the consistency of an image, encryption included (read-only)",
	"",
	"Walks every tree and checks tree blocks, extent references, block group",
	"usage, the free space tree, csum items, inodes, directory entries and the",
	"encryption rules (contexts, extent contexts, names, symlinks, nonces).",
	"Every finding has a stable code; --format json lists them with counters.",
	"Exit status: 0 clean (warnings allowed), 1 problems found, 2 usage error,",
	"3 image unreadable, 4 key error (wrong key).",
	"",
	OPTLINE("--check-data-csum", "also read all data and verify its csums (ciphertext for encrypted extents)"),
	OPTLINE("--key-file PATH", "master key for the checks that decrypt (names, symlinks, compressed data); '-' for stdin; repeatable (several keys, e.g. during a rekey)"),
	OPTLINE("--key-fd N", "read the master key from file descriptor N"),
	OPTLINE("--key-format raw|hex", "how the key is encoded (default raw)"),
	OPTLINE("--require-encryption[=ID|PATH,...]", "every file, directory and symlink of every subvolume (or of these subvolumes, or below these /paths) must be encrypted"),
	SUPER_OPTLINE,
	DEVICE_OPTLINE,
	OPTLINE("--threads N", "worker threads for --check-data-csum (default: one per CPU)"),
	FORCE_OPTLINE,
	NULL
};

enum {
	OPT_DATA_CSUM = 0x100,
	OPT_THREADS,
	OPT_REQUIRE_ENC,
};

static void add_counter(struct json_object *o, const char *name, u64 v)
{
	json_object_object_add(o, name, json_u64(v));
}

static struct json_object *counters_json(const struct check_counters *n)
{
	struct json_object *o = json_object_new_object();

	add_counter(o, "trees", n->trees);
	add_counter(o, "tree-blocks", n->tree_blocks);
	add_counter(o, "tree-bytes", n->tree_bytes);
	add_counter(o, "leaves", n->leaves);
	add_counter(o, "items", n->items);
	add_counter(o, "inodes", n->inodes);
	add_counter(o, "directories", n->dirs);
	add_counter(o, "file-extents", n->file_extents);
	add_counter(o, "data-extents", n->data_extents);
	add_counter(o, "metadata-extents", n->metadata_extents);
	add_counter(o, "block-groups", n->block_groups);
	add_counter(o, "csum-items", n->csum_items);
	add_counter(o, "csum-bytes-covered", n->csum_bytes_covered);
	add_counter(o, "data-bytes-checked", n->data_bytes_checked);
	add_counter(o, "csums-checked", n->csums_checked);
	add_counter(o, "encrypted-inodes", n->encrypted_inodes);
	add_counter(o, "encrypted-extents", n->encrypted_extents);
	add_counter(o, "names-decrypted", n->names_decrypted);
	add_counter(o, "compressed-extents-decoded", n->compressed_decoded);
	return o;
}

/*
 * The result in words: a key that opens nothing, or an image that cannot be
 * checked, is never called clean, whatever the problem count says.
 */
static const char *result_word(const struct check_ctx *c, int status, bool json)
{
	if (status == EXIT_KEY)
		return json ? "key-error" : "key error";
	if (status == EXIT_UNREADABLE)
		return "unreadable";
	if (c->nr_by_sev[SEV_ERROR])
		return json ? "problems-found" : "problems found";
	return "clean";
}

static void print_text_summary(const struct check_ctx *c, int status)
{
	const struct check_counters *n = &c->cnt;

	printf("Image: %s\n", c->image_path);
	printf("Trees: %llu\n", n->trees);
	printf("Tree blocks: %llu\n", n->tree_blocks);
	printf("Tree bytes: %llu\n", n->tree_bytes);
	printf("Items: %llu\n", n->items);
	printf("Inodes: %llu\n", n->inodes);
	printf("Directories: %llu\n", n->dirs);
	printf("File extents: %llu\n", n->file_extents);
	printf("Data extents: %llu\n", n->data_extents);
	printf("Metadata extents: %llu\n", n->metadata_extents);
	printf("Block groups: %llu\n", n->block_groups);
	printf("Csum items: %llu\n", n->csum_items);
	printf("Encrypted inodes: %llu\n", n->encrypted_inodes);
	printf("Encrypted extents: %llu\n", n->encrypted_extents);
	if (c->check_data_csum) {
		printf("Data bytes checked: %llu\n", n->data_bytes_checked);
		printf("Csums checked: %llu\n", n->csums_checked);
	}
	if (c->key) {
		printf("Names decrypted: %llu\n", n->names_decrypted);
		printf("Compressed extents decoded: %llu\n", n->compressed_decoded);
	}
	printf("Errors: %zu\n", c->nr_by_sev[SEV_ERROR]);
	printf("Warnings: %zu\n", c->nr_by_sev[SEV_WARNING]);
	printf("Notes: %zu\n", c->nr_by_sev[SEV_NOTE]);
	printf("Result: %s\n", result_word(c, status, false));
}

/* status: the exit status when it is decided before the problems count (key, unreadable). */
static void print_json(const struct check_ctx *c, int status)
{
	struct json_object *doc = json_doc_new();

	json_object_object_add(doc, "image", json_object_new_string(c->image_path));
	json_object_object_add(doc, "result", json_object_new_string(result_word(c, status, true)));
	json_object_object_add(doc, "errors", json_u64(c->nr_by_sev[SEV_ERROR]));
	json_object_object_add(doc, "warnings", json_u64(c->nr_by_sev[SEV_WARNING]));
	json_object_object_add(doc, "notes", json_u64(c->nr_by_sev[SEV_NOTE]));
	json_object_object_add(doc, "counters", counters_json(&c->cnt));
	json_object_object_add(doc, "problems", check_problems_json(c));
	if (status == EXIT_KEY || status == EXIT_UNREADABLE)
		json_add_error(doc, status);
	json_doc_print(doc);
}

static int parse_uint(const struct cmd_struct *cmd, const char *opt, const char *arg,
		      unsigned long long max, unsigned long long *out)
{
	if (parse_u64(arg, out) || *out > max)
		return usage_error(cmd, "invalid value for %s: '%s'", opt, arg);
	return 0;
}

/* A --require-encryption token starting with '/': a path in the top-level subvolume. */
static void add_required_path(struct check_ctx *c, const char *tok)
{
	char **n = reallocarray(c->require_paths, c->nr_require_paths + 1, sizeof(*n));

	if (!n)
		die_oom();
	c->require_paths = n;
	if (!(c->require_paths[c->nr_require_paths] = fault_strdup(tok)))
		die_oom();
	c->nr_require_paths++;
}

/*
 * --require-encryption=ID,/path,...: subvolume IDs (5, or 256 and above)
 * and paths in the top-level subvolume.
 */
static int parse_subvol_list(const struct cmd_struct *cmd, const char *arg, struct check_ctx *c)
{
	char *copy = fault_strdup(arg), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		die_oom();
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long long v;
		u64 *n;

		if (tok[0] == '/') {
			add_required_path(c, tok);
			continue;
		}
		if (parse_u64(tok, &v) || (v != BTRFS_FS_TREE_OBJECTID &&
		    (v < BTRFS_FIRST_FREE_OBJECTID || v > BTRFS_LAST_FREE_OBJECTID))) {
			ret = usage_error(cmd, "invalid subvolume ID for --require-encryption: '%s'", tok);
			break;
		}
		n = reallocarray(c->require_roots, c->nr_require_roots + 1, sizeof(*n));
		if (!n)
			die_oom();
		c->require_roots = n;
		c->require_roots[c->nr_require_roots++] = v;
	}
	if (!ret && !c->nr_require_roots && !c->nr_require_paths)
		ret = usage_error(cmd, "--require-encryption= needs subvolume IDs or paths");
	free(copy);
	return ret;
}

/*
 * check's options are fields of its whole context (struct check_ctx, the
 * command's opts): --check-data-csum and --threads go straight there.
 */
static int check_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "check-data-csum", no_argument, NULL, OPT_DATA_CSUM },
		GETOPT_SUPER_OPTION,
		GETOPT_DEVICE_OPTION,
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "require-encryption", optional_argument, NULL, OPT_REQUIRE_ENC },
		KEY_INPUT_LONG_OPTIONS,
		GETOPT_FORCE_OPTION,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	const struct cmd_struct *cmd = ctx->cmd;
	struct check_ctx *c = ctx->opts;
	unsigned long long v;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_DATA_CSUM:
			c->check_data_csum = true;
			break;
		case OPT_REQUIRE_ENC:
			c->require_encryption = true;
			if (optarg && (ret = parse_subvol_list(cmd, optarg, c)))
				return ret;
			break;
		case OPT_THREADS:
			if ((ret = parse_uint(cmd, "--threads", optarg, 1024, &v)))
				return ret;
			if (!v)
				return usage_error(cmd, "--threads must be at least 1");
			c->threads = (unsigned int)v;
			break;
		default:
			ret = cmd_parse_common(ctx, opt, optarg);
			if (ret != CMD_PARSE_OK)
				return ret;
		}
	}
	if ((ret = check_argc_exact(cmd, argc - optind, 1)))
		return ret;
	ctx->image_path = argv[optind];
	/*
	 * check reads each tree block about once: a small cache whose evicted
	 * blocks are reused beats keeping the whole metadata (64 MiB default).
	 * Fresh memory costs a page fault per 4 KiB; on a 1 GiB image that was
	 * most of what the encrypted image's larger trees cost over the plain.
	 */
	ctx->cache_bytes = CHECK_CACHE_BYTES;
	return CMD_PARSE_OK;
}

/* The passes of cmds/check.h, in order; returns the exit code. */
static int check_passes(struct check_ctx *c)
{
	int ret, path_ret;

	ret = check_trees(c);
	if (ret) {
		return cmd_engine_error(c->fs, ret, "check failed");
	}
	if (!block_set_contains(c, c->fs->tree_root.bytenr)) {
		/* Nothing can be checked without the root tree. */
		error("the root tree is unreadable");
		ret = exit_code(-EUCLEAN, ERR_AT_RUN);
		if (g_format == FORMAT_JSON)
			print_json(c, ret);
		return ret;
	}
	check_extents(c);
	check_free_space(c);
	check_qgroups(c);
	fs_check_global(c);
	check_required_subvols(c);
	path_ret = check_required_paths(c);
	check_csums(c);
	check_scrub_finish(c);
	ret = 0;
	if (c->key)
		ret = check_with_key(c);
	if (!ret)
		ret = path_ret;
	check_bad_copies(c);
	check_parity(c);
	if (g_format == FORMAT_JSON)
		print_json(c, ret);
	else
		print_text_summary(c, ret);
	if (!ret)
		ret = c->nr_by_sev[SEV_ERROR] ? EXIT_PROBLEMS : EXIT_OK;
	return ret;
}

/* The dispatcher has loaded the key, if given, and opened the image. */
static int check_run(struct cmd_context *ctx)
{
	struct check_ctx *c = ctx->opts;
	int ret;

	c->image_path = ctx->image_path;
	c->fs = ctx->fs;
	c->path_keys = cmd_keys(ctx);
	c->nr_path_keys = ctx->nr_mks;
	if (ctx->mk && check_key_attach(c, ctx->mks, ctx->nr_mks))
		return exit_code(-ENOMEM, ERR_AT_RUN);
	c->print_now = g_format == FORMAT_TEXT;
	check_ctx_init(c);
	ret = check_passes(c);
	check_scrub_free(c);
	check_key_free(c);
	check_ctx_free(c);
	return ret;
}

DEFINE_COMMAND(check, "check", CMD_IMAGE_RO | CMD_MULTI_DEVICE | CMD_NOT_MOUNTED | CMD_KEY_OPTIONAL | CMD_KEYS_MULTI,
	       struct check_ctx);
