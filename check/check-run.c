// SPDX-License-Identifier: GPL-2.0
/*
 * check's run state and the pre-write verification (check/check-run.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "common/messages.h"
#include "check/check-run.h"
#include "kernel-shared/disk-io.h"

void check_ctx_init(struct check_ctx *c)
{
	vec_init(&c->roots, sizeof(struct root_desc));
	vec_init(&c->ext_recs, sizeof(struct ext_rec));
	vec_init(&c->ext_backrefs, sizeof(struct ext_backref));
	vec_init(&c->tree_refs, sizeof(struct found_tree_ref));
	vec_init(&c->found_blocks, sizeof(struct found_block));
	vec_init(&c->data_refs, sizeof(struct found_data_ref));
	spill_init(&c->file_exts, check_spill_budget(), cmp_file_ext);
	vec_init(&c->compressed_exts, sizeof(struct file_extent_rec));
	vec_init(&c->bgs, sizeof(struct bg_rec));
	vec_init(&c->csums, sizeof(struct csum_range));
	vec_init(&c->fst_infos, sizeof(struct fst_info));
	vec_init(&c->fst_ranges, sizeof(struct fst_range));
	spill_init(&c->nonces, check_spill_budget(), cmp_nonce_rec);
	vec_init(&c->raid56_bad, sizeof(u64));
	spill_init(&c->key_recs, check_spill_budget(), cmp_key_rec);
}

void check_ctx_free(struct check_ctx *c)
{
	for (size_t i = 0; i < c->nr_problems; i++)
		free(c->problems[i].message);
	free(c->problems);
	free(c->require_roots);
	for (size_t i = 0; i < c->nr_require_paths; i++)
		free(c->require_paths[i]);
	free(c->require_paths);
	vec_free(&c->roots);
	vec_free(&c->ext_recs);
	vec_free(&c->ext_backrefs);
	vec_free(&c->tree_refs);
	vec_free(&c->found_blocks);
	vec_free(&c->data_refs);
	spill_free(&c->file_exts);
	vec_free(&c->compressed_exts);
	vec_free(&c->bgs);
	vec_free(&c->csums);
	vec_free(&c->fst_infos);
	vec_free(&c->fst_ranges);
	spill_free(&c->nonces);
	vec_free(&c->raid56_bad);
	free(c->csum_data);
	spill_free(&c->key_recs);
	block_set_free(c);
}

/* The passes of `check` without --check-data-csum; 0, an exit code, or <0. */
static int verify_passes(struct check_ctx *c)
{
	int ret = check_trees(c);

	if (ret)
		return ret;
	if (!block_set_contains(c, c->fs->tree_root.bytenr))
		return fs_err(c->fs, -EUCLEAN, "the root tree is unreadable");
	check_extents(c);
	check_free_space(c);
	check_qgroups(c);
	fs_check_global(c);
	check_csums(c);
	return c->key ? check_with_key(c) : 0;
}

/* The ERROR line of a refusal, and with -v every error found. */
static void report_refusal(const struct check_ctx *c)
{
	const struct check_problem_rec *first = NULL;
	char line[1024];

	for (size_t i = 0; i < c->nr_problems; i++) {
		if (check_problems[c->problems[i].code].severity != SEV_ERROR)
			continue;
		if (!first)
			first = &c->problems[i];
		check_format_problem(&c->problems[i], line, sizeof(line));
		verbose("check: %s", line);
	}
	if (!first) {
		error("check finds %zu errors in the image (not kept): nothing was written",
		      c->nr_by_sev[SEV_ERROR]);
		return;
	}
	check_format_problem(first, line, sizeof(line));
	error("check finds %zu error%s in the image, the first: %s; nothing was written (run btrfs-extcrypt check for the list)",
	      c->nr_by_sev[SEV_ERROR], c->nr_by_sev[SEV_ERROR] == 1 ? "" : "s", line);
}

int check_verify_image(struct fs_info *fs, struct fscrypt_master_key *const *mks, size_t nr_mks)
{
	struct check_ctx *c = fault_calloc(1, sizeof(*c));
	int ret;

	if (!c)
		die_oom();
	c->fs = fs;
	c->threads = 1;
	c->verify = true;
	c->path_keys = (const struct fscrypt_master_key *const *)mks;
	c->nr_path_keys = nr_mks;
	if (nr_mks && check_key_attach(c, mks, nr_mks))
		die_oom();
	check_ctx_init(c);
	ret = verify_passes(c);
	if (ret == -ENOMEM) {
		error("out of memory");
		ret = exit_code(ret, ERR_AT_RUN);
	} else if (ret < 0) {
		error("check cannot verify the image: %s; nothing was written",
		      fs_errmsg(fs)[0] ? fs_errmsg(fs) : strerror(-ret));
		ret = exit_code(ret, ERR_AT_RUN);
	} else if (!ret && c->nr_by_sev[SEV_ERROR]) {
		report_refusal(c);
		ret = exit_code(-EUCLEAN, ERR_AT_RUN);
	}
	fs_clear_err(fs);
	check_key_free(c);
	check_ctx_free(c);
	free(c);
	return ret;
}
