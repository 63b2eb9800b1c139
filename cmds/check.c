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
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "check/check.h"
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
	OPTLINE("--key-file PATH", "master key for the checks that decrypt (names, symlinks, compressed data); '-' for stdin"),
	OPTLINE("--key-fd N", "read the master key from file descriptor N"),
	OPTLINE("--key-format raw|hex", "how the key is encoded (default raw)"),
	OPTLINE("--super N", "use superblock copy N (0, 1 or 2) instead of the primary"),
	OPTLINE("--threads N", "worker threads for --check-data-csum (default: one per CPU)"),
	NULL
};

enum {
	OPT_DATA_CSUM = 0x100,
	OPT_KEY_FILE,
	OPT_KEY_FD,
	OPT_KEY_FORMAT,
	OPT_SUPER,
	OPT_THREADS,
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

static void print_text_summary(const struct check_ctx *c)
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
	printf("Result: %s\n", c->nr_by_sev[SEV_ERROR] ? "problems found" : "clean");
}

static void print_json(const struct check_ctx *c)
{
	struct json_object *doc = json_doc_new();

	json_object_object_add(doc, "image", json_object_new_string(c->image_path));
	json_object_object_add(doc, "result",
			       json_object_new_string(c->nr_by_sev[SEV_ERROR] ? "problems-found" : "clean"));
	json_object_object_add(doc, "errors", json_u64(c->nr_by_sev[SEV_ERROR]));
	json_object_object_add(doc, "warnings", json_u64(c->nr_by_sev[SEV_WARNING]));
	json_object_object_add(doc, "notes", json_u64(c->nr_by_sev[SEV_NOTE]));
	json_object_object_add(doc, "counters", counters_json(&c->cnt));
	json_object_object_add(doc, "problems", check_problems_json(c));
	json_doc_print(doc);
}

static void free_ctx(struct check_ctx *c)
{
	for (size_t i = 0; i < c->nr_problems; i++)
		free(c->problems[i].message);
	free(c->problems);
	vec_free(&c->roots);
	vec_free(&c->ext_recs);
	vec_free(&c->ext_backrefs);
	vec_free(&c->tree_refs);
	vec_free(&c->data_refs);
	vec_free(&c->file_exts);
	vec_free(&c->bgs);
	vec_free(&c->csums);
	vec_free(&c->fst_infos);
	vec_free(&c->fst_ranges);
	vec_free(&c->nonces);
	free(c->csum_data);
	vec_free(&c->key_recs);
	free(c->key_arena);
	block_set_free(c);
}

static int parse_uint(const struct cmd_struct *cmd, const char *opt, const char *arg,
		      unsigned long long max, unsigned long long *out)
{
	if (parse_u64(arg, out) || *out > max)
		return usage_error(cmd, "invalid value for %s: '%s'", opt, arg);
	return 0;
}

int cmd_check(const struct cmd_struct *cmd, int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "check-data-csum", no_argument, NULL, OPT_DATA_CSUM },
		{ "key-file", required_argument, NULL, OPT_KEY_FILE },
		{ "key-fd", required_argument, NULL, OPT_KEY_FD },
		{ "key-format", required_argument, NULL, OPT_KEY_FORMAT },
		{ "super", required_argument, NULL, OPT_SUPER },
		{ "threads", required_argument, NULL, OPT_THREADS },
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct check_ctx ctx = { 0 };
	struct check_ctx *c = &ctx;
	const char *key_file = NULL, *key_format = NULL;
	int key_fd = -1, mirror = -1, opt, ret;
	unsigned long long v;

	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_DATA_CSUM:
			c->check_data_csum = true;
			break;
		case OPT_KEY_FILE:
			key_file = optarg;
			break;
		case OPT_KEY_FD:
			if ((ret = parse_uint(cmd, "--key-fd", optarg, 1 << 20, &v)))
				return ret;
			key_fd = (int)v;
			break;
		case OPT_KEY_FORMAT:
			if (strcmp(optarg, "raw") && strcmp(optarg, "hex"))
				return usage_error(cmd, "--key-format must be raw or hex");
			key_format = optarg;
			break;
		case OPT_SUPER:
			if ((ret = parse_uint(cmd, "--super", optarg, 2, &v)))
				return ret;
			mirror = (int)v;
			break;
		case OPT_THREADS:
			if ((ret = parse_uint(cmd, "--threads", optarg, 1024, &v)))
				return ret;
			if (!v)
				return usage_error(cmd, "--threads must be at least 1");
			c->threads = (unsigned int)v;
			break;
		default:
			return cmd_help_or_usage(cmd, opt);
		}
	}
	if ((ret = check_argc_exact(cmd, argc - optind, 1)))
		return ret;
	if (key_file && key_fd >= 0)
		return usage_error(cmd, "--key-file and --key-fd are mutually exclusive");
	if (key_format && !key_file && key_fd < 0)
		return usage_error(cmd, "--key-format needs --key-file or --key-fd");
	c->image_path = argv[optind];

	if (key_file || key_fd >= 0) {
		ret = check_key_load(c, key_file, key_fd, key_format ? key_format : "raw");
		if (ret)
			return ret;
	}
	/*
	 * check reads each tree block about once: a small cache whose evicted
	 * blocks are reused beats keeping the whole metadata (64 MiB default).
	 * Fresh memory costs a page fault per 4 KiB; on a 1 GiB image that was
	 * most of what the encrypted image's larger trees cost over the plain.
	 */
	ret = cmd_open_image(c->image_path, mirror, CHECK_CACHE_BYTES, &c->fs);
	if (ret) {
		check_key_free(c);
		return ret;
	}
	c->print_now = g_format == FORMAT_TEXT;
	vec_init(&c->roots, sizeof(struct root_desc));
	vec_init(&c->ext_recs, sizeof(struct ext_rec));
	vec_init(&c->ext_backrefs, sizeof(struct ext_backref));
	vec_init(&c->tree_refs, sizeof(struct found_tree_ref));
	vec_init(&c->data_refs, sizeof(struct found_data_ref));
	vec_init(&c->file_exts, sizeof(struct file_extent_rec));
	vec_init(&c->bgs, sizeof(struct bg_rec));
	vec_init(&c->csums, sizeof(struct csum_range));
	vec_init(&c->fst_infos, sizeof(struct fst_info));
	vec_init(&c->fst_ranges, sizeof(struct fst_range));
	vec_init(&c->nonces, sizeof(struct nonce_rec));
	vec_init(&c->key_recs, sizeof(struct key_rec));

	ret = check_trees(c);
	if (ret) {
		error("check failed: %s", strerror(-ret));
		ret = EXIT_UNREADABLE;
		goto out;
	}
	if (!block_set_contains(c, c->fs->tree_root.bytenr)) {
		/* Nothing can be checked without the root tree. */
		if (g_format == FORMAT_JSON)
			print_json(c);
		error("the root tree is unreadable");
		ret = EXIT_UNREADABLE;
		goto out;
	}
	check_extents(c);
	check_free_space(c);
	fs_check_global(c);
	check_csums(c);
	check_scrub_finish(c);
	ret = 0;
	if (c->key)
		ret = check_with_key(c);
	if (g_format == FORMAT_JSON)
		print_json(c);
	else
		print_text_summary(c);
	if (!ret)
		ret = c->nr_by_sev[SEV_ERROR] ? EXIT_PROBLEMS : EXIT_OK;
out:
	check_scrub_free(c);
	check_key_free(c);
	close_image(c->fs);
	free_ctx(c);
	return ret;
}
