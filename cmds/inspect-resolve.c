// SPDX-License-Identifier: GPL-2.0
/*
 * inspect resolve-logical: offline logical address -> (root, inode, file
 * offset, path) for data, or the owning tree for metadata.  Data references
 * come from the extent tree's backrefs (inline and keyed, EXTENT_DATA_REF and
 * SHARED_DATA_REF); each is confirmed against the file extent items that
 * actually cover the address.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/escape.h"
#include "common/fault.h"
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/utils.h"
#include "kernel-shared/backref.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "data/names.h"

const char *const cmd_inspect_resolve_logical_usage[] = {
	"btrfs-extcrypt inspect resolve-logical [options] <logical> <image>",
	"Map a logical address to the files (or tree) that use it, without mounting",
	"",
	"For data: one line per file position holding the address:",
	"  root R inode I offset O path P",
	"For metadata: the tree block, its owner tree and level.",
	"Exit status 1 when nothing references the address.",
	"",
	"Names in encrypted directories are shown decrypted with the key, as",
	"fscrypt no-key names without it.  With several keys (a rekey cut short),",
	"each directory's names are decrypted with the key its context names.",
	"",
	SUPER_OPTLINE,
	DEVICE_OPTLINE,
	KEYS_INPUT_OPTLINES(OPTLINE),
	OPTLINE("--help", "show this help"),
	NULL
};

struct resolve_ctx {
	struct fs_info *fs;
	struct enc_names names;		/* shows the names of paths */
	u64 logical;
	u64 ext_bytenr, ext_len;
	struct json_object *refs;	/* JSON mode */
	u64 nr_found;
};

/* One reference: 0, or -ENOMEM (a path that cannot be resolved is printed as "?"). */
static int emit_ref(struct resolve_ctx *rc, const struct root_ref *root, u64 ino,
		    u64 file_offset, bool compressed)
{
	char *path = fault_malloc(PATH_MAX * 2);
	int ret;

	if (!path)
		return fs_err(rc->fs, -ENOMEM, "out of memory");
	ret = inode_path(rc->fs, &rc->names.nc, root, ino, path, PATH_MAX * 2);
	if (ret == -ENOMEM) {
		free(path);
		return ret;
	}
	if (ret)
		path[0] = 0;
	rc->nr_found++;
	if (rc->refs) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "root", json_u64(root->objectid));
		json_object_object_add(o, "inode", json_u64(ino));
		json_object_object_add(o, "offset", json_u64(file_offset));
		json_object_object_add(o, "compressed", json_object_new_boolean(compressed));
		json_name_add(o, "path", "path-hex", path[0] ? path : NULL, strlen(path));
		json_object_array_add(rc->refs, o);
	} else {
		char *text = name_text_dup(path, strlen(path));

		printf("root %llu inode %llu offset %llu%s path %s\n", root->objectid, ino,
		       file_offset, compressed ? " compressed" : "", path[0] ? text : "?");
		free(text);
	}
	free(path);
	return 0;
}

/*
 * Check one EXTENT_DATA item against the address: emit the file offset it
 * maps to.  For compressed extents the whole item range is reported by its
 * start, since a stored byte has no single file position.  0 or -ENOMEM.
 */
static int match_extent_item(struct resolve_ctx *rc, const struct root_ref *root,
			      const struct btrfs_key *k, const u8 *ptr, u32 size,
			      u64 want_backref, bool check_backref)
{
	const struct btrfs_file_extent_item *fe = (const void *)ptr;
	u64 off, num, start;

	if (size < sizeof(*fe) || fe->type == BTRFS_FILE_EXTENT_INLINE)
		return 0;
	if (le64_to_cpu(fe->disk_bytenr) != rc->ext_bytenr)
		return 0;
	off = le64_to_cpu(fe->offset);
	num = le64_to_cpu(fe->num_bytes);
	if (check_backref && k->offset - off != want_backref)
		return 0;
	if (fe->compression)
		return emit_ref(rc, root, k->objectid, k->offset, true);
	start = rc->ext_bytenr + off;
	if (rc->logical < start || rc->logical - start >= num)
		return 0;
	return emit_ref(rc, root, k->objectid, k->offset + (rc->logical - start), false);
}

/* EXTENT_DATA_REF (root, ino, backref offset): scan that inode's extents. */
static int resolve_data_ref(struct resolve_ctx *rc, u64 root_id, u64 ino, u64 backref)
{
	struct root_ref root;
	struct key_iter it;
	int ret;

	ret = find_root(rc->fs, root_id, &root);
	if (ret == -ENOENT)
		return 0;	/* a ref to a deleted subvolume; nothing to show */
	if (ret)
		return ret;
	for (ret = key_iter_type(&it, rc->fs, &root, ino, BTRFS_EXTENT_DATA_KEY, 0); ret == 0;
	     ret = key_iter_next(&it)) {
		ret = match_extent_item(rc, &root, &it.key, it.ptr, it.size, backref, true);
		if (ret)
			break;
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

/* SHARED_DATA_REF: the referencing leaf is named directly. */
static int resolve_shared_ref(struct resolve_ctx *rc, u64 parent)
{
	struct tree_block *b;
	struct root_ref root = { 0 };
	int ret;

	ret = read_tree_block(rc->fs, parent, &(struct block_check){ .level = 0 }, &b);
	if (ret)
		return ret;
	root.objectid = tb_owner(b);
	for (u32 i = 0; i < tb_nritems(b); i++) {
		struct btrfs_key k;

		tb_item_key(b, i, &k);
		if (k.type == BTRFS_EXTENT_DATA_KEY) {
			struct root_ref r;

			ret = find_root(rc->fs, root.objectid, &r);
			if (ret == 0)
				ret = match_extent_item(rc, &r, &k, tb_item_ptr(b, i),
							tb_item_size(b, i), 0, false);
			else if (ret != -ENOMEM)
				ret = 0;	/* the owner tree is gone: nothing to show */
			if (ret)
				break;
		}
	}
	tree_block_put(rc->fs, b);
	return ret;
}

/* Resolve one backref: ret is what the iterator returned for it (0 or BACKREF_BAD). */
static int resolve_backref(struct resolve_ctx *rc, int ret, const struct backref *br)
{
	if (ret && br->error == BACKREF_UNKNOWN)
		return fs_err(rc->fs, -EUCLEAN, "extent %llu: unknown inline ref type %u",
			      rc->ext_bytenr, br->type);
	if (ret && br->is_inline)
		return fs_err(rc->fs, -EUCLEAN, "extent %llu: truncated inline ref", rc->ext_bytenr);
	if (br->kind == REF_SHARED_DATA)	/* keyed: the parent is in the key */
		return resolve_shared_ref(rc, br->parent);
	if (!ret && br->kind == REF_DATA)
		return resolve_data_ref(rc, br->root, br->objectid, br->offset);
	return 0;	/* tree and owner refs; keyed data refs too short to read */
}

/* The extent's backrefs, inline then keyed: each data ref is resolved to its paths. */
static int walk_refs(struct resolve_ctx *rc, struct btrfs_path *p)
{
	struct backref_iter it;
	struct backref br;
	int ret;

	backref_iter_init(&it, rc->fs, p, rc->ext_bytenr);
	for (;;) {
		ret = backref_iter_next(&it, &br);
		if (ret == 1 || ret < 0)
			return ret;
		/* A tree or owner ref cut short ends the inline refs, as it always did here. */
		if (ret == BACKREF_BAD && br.error == BACKREF_TRUNCATED && br.is_inline &&
		    br.kind != REF_DATA && br.kind != REF_SHARED_DATA) {
			backref_iter_skip_inline(&it);
			continue;
		}
		ret = resolve_backref(rc, ret, &br);
		if (ret)
			return ret;
	}
}

/*
 * Find the extent item covering the address.  Returns 0 with the item's key
 * in *found and path at it, 1 if no extent covers it, or <0.
 */
static int find_extent_item(struct resolve_ctx *rc, const struct root_ref *extent_root,
			    struct btrfs_path *p, struct btrfs_key *found)
{
	struct btrfs_key key = { rc->logical, (u8)-1, (u64)-1 };
	int ret;

	ret = search_slot(rc->fs, extent_root, &key, p);
	if (ret < 0)
		return ret;
	for (;;) {
		ret = prev_item(rc->fs, p);
		if (ret)
			return ret;
		path_key(p, found);
		if (found->type == BTRFS_EXTENT_ITEM_KEY || found->type == BTRFS_METADATA_ITEM_KEY) {
			u64 len = found->type == BTRFS_METADATA_ITEM_KEY ?
				  rc->fs->nodesize : found->offset;

			if (rc->logical >= found->objectid && rc->logical - found->objectid < len)
				return 0;
			return 1;
		}
		/* Block group items and keyed refs sort among extents: skip them. */
	}
}

static int resolve(struct resolve_ctx *rc, struct json_object *doc)
{
	const struct chunk_map *m = find_chunk(rc->fs, rc->logical);
	struct root_ref extent_root;
	struct btrfs_path p;
	struct btrfs_key k;
	int ret;

	if (!m) {
		error("logical %llu is not mapped by any chunk", rc->logical);
		return EXIT_PROBLEMS;
	}
	ret = find_root(rc->fs, BTRFS_EXTENT_TREE_OBJECTID, &extent_root);
	if (ret)
		return cmd_engine_error(rc->fs, ret, "cannot read the extent tree");
	ret = find_extent_item(rc, &extent_root, &p, &k);
	if (ret < 0) {
		path_release(rc->fs, &p);
		return cmd_engine_error(rc->fs, ret, "cannot search the extent tree");
	}
	if (ret > 0) {
		path_release(rc->fs, &p);
		error("logical %llu is not allocated", rc->logical);
		return EXIT_PROBLEMS;
	}
	rc->ext_bytenr = k.objectid;
	rc->ext_len = k.type == BTRFS_METADATA_ITEM_KEY ? rc->fs->nodesize : k.offset;
	if (doc) {
		json_object_object_add(doc, "logical", json_u64(rc->logical));
		json_object_object_add(doc, "extent-bytenr", json_u64(rc->ext_bytenr));
		json_object_object_add(doc, "extent-length", json_u64(rc->ext_len));
	}
	if (k.type == BTRFS_METADATA_ITEM_KEY ||
	    (path_size(&p) >= sizeof(struct btrfs_extent_item) &&
	     (le64_to_cpu(((const struct btrfs_extent_item *)path_ptr(&p))->flags) &
	      BTRFS_EXTENT_FLAG_TREE_BLOCK))) {
		struct tree_block *b;

		path_release(rc->fs, &p);
		ret = read_tree_block_raw(rc->fs, rc->ext_bytenr, &b);
		if (ret)
			return cmd_engine_error(rc->fs, ret, "cannot read the tree block");
		if (doc) {
			json_object_object_add(doc, "type", json_object_new_string("metadata"));
			json_object_object_add(doc, "owner", json_u64(tb_owner(b)));
			json_object_object_add(doc, "level", json_u64(tb_level(b)));
		} else {
			printf("tree block %llu owner %llu level %u\n", rc->ext_bytenr,
			       tb_owner(b), tb_level(b));
		}
		tree_block_put(rc->fs, b);
		return EXIT_OK;
	}
	if (doc) {
		json_object_object_add(doc, "type", json_object_new_string("data"));
		rc->refs = json_object_new_array();
		json_object_object_add(doc, "references", rc->refs);
	}
	ret = walk_refs(rc, &p);
	path_release(rc->fs, &p);
	if (ret < 0)
		return cmd_engine_error(rc->fs, ret, "cannot resolve the references");
	if (!rc->nr_found) {
		if (!doc)
			error("no file references logical %llu", rc->logical);
		return EXIT_PROBLEMS;
	}
	return EXIT_OK;
}

static int inspect_resolve_logical_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		GETOPT_SUPER_OPTION,
		GETOPT_DEVICE_OPTION,
		KEY_INPUT_LONG_OPTIONS,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct resolve_ctx *rc = ctx->opts;
	int c, ret;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		ret = cmd_parse_common(ctx, c, optarg);
		if (ret != CMD_PARSE_OK)
			return ret;
	}
	if ((ret = check_argc_exact(ctx->cmd, argc - optind, 2)))
		return ret;
	if (parse_u64(argv[optind], &rc->logical))
		return usage_error(ctx->cmd, "invalid logical address '%s'", argv[optind]);
	ctx->image_path = argv[optind + 1];
	return CMD_PARSE_OK;
}

static int inspect_resolve_logical_run(struct cmd_context *ctx)
{
	struct resolve_ctx *rc = ctx->opts;
	struct json_object *doc = NULL;
	int ret;

	rc->fs = ctx->fs;
	enc_names_init_keys(&rc->names, ctx->fs, cmd_keys(ctx), ctx->nr_mks);
	if (g_format == FORMAT_JSON)
		doc = json_doc_new();
	ret = resolve(rc, doc);
	if (doc) {
		if (ret == EXIT_OK || ret == EXIT_PROBLEMS)
			json_doc_print(doc);
		else
			json_object_put(doc);
	}
	return ret;
}

DEFINE_COMMAND(inspect_resolve_logical, "resolve-logical",
	       CMD_IMAGE_RO | CMD_MULTI_DEVICE | CMD_KEY_OPTIONAL | CMD_KEYS_MULTI, struct resolve_ctx);
