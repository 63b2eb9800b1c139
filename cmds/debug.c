// SPDX-License-Identifier: GPL-2.0
/*
 * Hidden developer commands that drive the write engine directly, for the
 * engine's own tests: they make many small, valid changes (xattr items) so
 * that splits, merges, copy-on-write and extent accounting all run, and the
 * result can be judged by btrfs check.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/messages.h"
#include "common/utils.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"

const char *const cmd_debug_xattrs_usage[] = {
	"btrfs-extcrypt debug xattrs [options] <image>",
	"Add or remove numbered user.* xattrs on an inode (engine test)",
	"",
	OPTLINE("--root ID", "tree of the inode (default 5)"),
	OPTLINE("--inode INO", "inode to change (default 256)"),
	OPTLINE("--add N", "add xattrs user.t<first>..user.t<first+N-1>"),
	OPTLINE("--remove N", "remove xattrs user.t<first>..user.t<first+N-1>"),
	OPTLINE("--first K", "first number (default 0)"),
	OPTLINE("--value-size B", "bytes of value per xattr (default 40)"),
	OPTLINE("--commit-every N", "commit after every N changes (default: once)"),
	OPTLINE("--help", "show this help"),
	NULL
};

static int xattr_change(struct trans *t, struct trans_root *root, u64 ino, u64 n,
			u32 value_size, bool add)
{
	char name[64];
	u8 item[sizeof(struct btrfs_dir_item) + 64 + 4096];
	struct btrfs_dir_item *di = (void *)item;
	int nlen = snprintf(name, sizeof(name), "user.t%llu", n);
	struct btrfs_key key = { ino, BTRFS_XATTR_ITEM_KEY, btrfs_name_hash(name, nlen) };
	struct btrfs_path p;
	int ret;

	if (!add) {
		ret = search_slot_mod(t, root, &key, &p, -1);
		if (ret == 0)
			ret = del_items(t, root, &p, 1);
		path_release(t->fs, &p);
		return ret > 0 ? -ENOENT : ret;
	}
	memset(item, 0, sizeof(item));
	di->transid = cpu_to_le64(t->transid);
	di->data_len = cpu_to_le16(value_size);
	di->name_len = cpu_to_le16(nlen);
	di->type = BTRFS_FT_XATTR;
	memcpy(item + sizeof(*di), name, nlen);
	for (u32 i = 0; i < value_size; i++)
		item[sizeof(*di) + nlen + i] = (u8)(n + i);
	return insert_item(t, root, &key, item, sizeof(*di) + nlen + value_size);
}

struct debug_xattrs_opts {
	unsigned long long root_id, ino, count, first, vsize, every;
	bool add;
};

static int debug_xattrs_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "inode", required_argument, NULL, 'i' },
		{ "add", required_argument, NULL, 'a' },
		{ "remove", required_argument, NULL, 'd' },
		{ "first", required_argument, NULL, 'f' },
		{ "value-size", required_argument, NULL, 'v' },
		{ "commit-every", required_argument, NULL, 'c' },
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct debug_xattrs_opts *o = ctx->opts;
	int c, ret;

	*o = (struct debug_xattrs_opts){ .root_id = 5, .ino = 256, .vsize = 40, .add = true };
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long long *dst;

		switch (c) {
		case 'r': dst = &o->root_id; break;
		case 'i': dst = &o->ino; break;
		case 'a': dst = &o->count; o->add = true; break;
		case 'd': dst = &o->count; o->add = false; break;
		case 'f': dst = &o->first; break;
		case 'v': dst = &o->vsize; break;
		case 'c': dst = &o->every; break;
		default:
			return cmd_parse_common(ctx, c, optarg);
		}
		if (parse_u64(optarg, dst))
			return usage_error(ctx->cmd, "invalid number '%s'", optarg);
	}
	if ((ret = check_argc_exact(ctx->cmd, argc - optind, 1)))
		return ret;
	if (o->vsize > 4000)
		return usage_error(ctx->cmd, "--value-size is at most 4000");
	ctx->image_path = argv[optind];
	return CMD_PARSE_OK;
}

static int debug_xattrs_run(struct cmd_context *ctx)
{
	const struct debug_xattrs_opts *o = ctx->opts;
	struct fs_info *fs = ctx->fs;
	struct trans *t = NULL;
	int ret = 0;

	for (unsigned long long i = 0; i < o->count; i++) {
		struct trans_root *root;

		if (!t && (ret = trans_begin(fs, &t)))
			break;
		root = trans_get_root(t, o->root_id);
		if (!root) {
			ret = -ENOENT;
			break;
		}
		ret = xattr_change(t, root, o->ino, o->first + i, o->vsize, o->add);
		if (ret)
			break;
		if (o->every && (i + 1) % o->every == 0) {
			ret = trans_commit(t);
			t = NULL;
			if (ret)
				break;
		}
	}
	if (t) {
		if (ret)
			trans_abort(t);
		else
			ret = trans_commit(t);
	}
	if (ret == -ENOENT && !fs_errmsg(fs)[0]) {
		error("no such xattr or tree");
		return EXIT_PROBLEMS;
	}
	if (ret)
		return cmd_engine_error(fs, ret, NULL);
	return EXIT_OK;
}

DEFINE_COMMAND(debug_xattrs, "xattrs", CMD_IMAGE_RW, struct debug_xattrs_opts);
