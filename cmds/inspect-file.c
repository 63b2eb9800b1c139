// SPDX-License-Identifier: GPL-2.0
/*
 * inspect file: one inode, its fscrypt context and every file extent with its
 * extent context.  The text format is documented in
 * Documentation/btrfs-extcrypt-inspect.rst and is stable:
 *
 *   root: 5
 *   inode: 257
 *   ...                         ("key: value" lines for the inode)
 *   context: version 2 contents-mode 1 filenames-mode 4 flags 0x02 key-id HEX nonce HEX
 *   extent: file-offset 0 type regular disk-bytenr N disk-num-bytes N offset N
 *           num-bytes N ram-bytes N compression none encryption 1
 *           [ctx-version 1 ctx-mode 1 ctx-key-id HEX ctx-nonce HEX]   (one line)
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/escape.h"
#include "common/fault.h"
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/containers.h"
#include "common/utils.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/fs-walk.h"
#include "data/names.h"

const char *const cmd_inspect_file_usage[] = {
	"btrfs-extcrypt inspect file [options] <path> <image>",
	"btrfs-extcrypt inspect file [options] --root <id> --inode <ino> <image>",
	"Show an inode, its fscrypt context and its extents with their contexts",
	"",
	"The path is inside the image, from the top-level subvolume.  In an",
	"encrypted directory, a path component is the plaintext name (with the",
	"key) or the fscrypt no-key name that restore writes (with or without it);",
	"with the key, the path shown is the plaintext one.  Several keys (a rekey",
	"cut short): each directory and the inode with the key its context names;",
	"when none of them opens one on the way, it is a key error (exit 4).",
	"",
	OPTLINE("--root ID", "tree (subvolume) id of the inode, with --inode"),
	OPTLINE("--inode INO", "inode number, instead of a path"),
	SUPER_OPTLINE,
	DEVICE_OPTLINE,
	KEYS_INPUT_OPTLINES(OPTLINE),
	OPTLINE("--help", "show this help"),
	NULL
};

struct ctx_item {
	u64 offset;
	u32 size;
	u8 data[FSCRYPT_MAX_EXTENT_CONTEXT_SIZE];
};

struct file_report {
	struct json_object *extents;	/* JSON mode */
	struct ctx_item *ctx;
	size_t nr_ctx, cap_ctx;
	u64 nr_extents;
};

static const char *type_name(u8 type)
{
	switch (type) {
	case BTRFS_FILE_EXTENT_INLINE: return "inline";
	case BTRFS_FILE_EXTENT_REG: return "regular";
	case BTRFS_FILE_EXTENT_PREALLOC: return "prealloc";
	default: return "unknown";
	}
}

static const char *compression_name(u8 c)
{
	static const char *const names[] = { "none", "zlib", "lzo", "zstd" };

	return c < 4 ? names[c] : "unknown";
}

static const char *mode_type_name(u32 mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "regular";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "chardev";
	case S_IFBLK: return "blockdev";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "unknown";
	}
}

static const struct ctx_item *find_ctx(const struct file_report *r, u64 offset)
{
	for (size_t i = 0; i < r->nr_ctx; i++)
		if (r->ctx[i].offset == offset)
			return &r->ctx[i];
	return NULL;
}

static void print_inode(u64 root, u64 ino, const char *path,
			const struct btrfs_inode_item *ii, struct json_object *doc)
{
	u32 mode = le32_to_cpu(ii->mode);
	u64 flags = le64_to_cpu(ii->flags);

	if (doc) {
		json_object_object_add(doc, "root", json_u64(root));
		json_object_object_add(doc, "inode", json_u64(ino));
		json_name_add(doc, "path", "path-hex", path, path ? strlen(path) : 0);
		json_object_object_add(doc, "type", json_object_new_string(mode_type_name(mode)));
		json_object_object_add(doc, "mode", json_u64(mode));
		json_object_object_add(doc, "size", json_u64(le64_to_cpu(ii->size)));
		json_object_object_add(doc, "nbytes", json_u64(le64_to_cpu(ii->nbytes)));
		json_object_object_add(doc, "nlink", json_u64(le32_to_cpu(ii->nlink)));
		json_object_object_add(doc, "uid", json_u64(le32_to_cpu(ii->uid)));
		json_object_object_add(doc, "gid", json_u64(le32_to_cpu(ii->gid)));
		json_object_object_add(doc, "flags", json_u64(flags));
		json_object_object_add(doc, "encrypted",
				       json_object_new_boolean(!!(flags & BTRFS_INODE_ENCRYPT)));
		json_object_object_add(doc, "generation", json_u64(le64_to_cpu(ii->generation)));
		json_object_object_add(doc, "transid", json_u64(le64_to_cpu(ii->transid)));
		return;
	}
	printf("root: %llu\n", root);
	printf("inode: %llu\n", ino);
	if (path) {
		char *text = name_text_dup(path, strlen(path));

		printf("path: %s\n", text);
		free(text);
	}
	printf("type: %s\n", mode_type_name(mode));
	printf("mode: 0%o\n", mode);
	printf("size: %llu\n", le64_to_cpu(ii->size));
	printf("nbytes: %llu\n", le64_to_cpu(ii->nbytes));
	printf("nlink: %u\n", le32_to_cpu(ii->nlink));
	printf("uid: %u\n", le32_to_cpu(ii->uid));
	printf("gid: %u\n", le32_to_cpu(ii->gid));
	printf("flags: 0x%llx\n", flags);
	printf("encrypted: %s\n", (flags & BTRFS_INODE_ENCRYPT) ? "yes" : "no");
	printf("generation: %llu\n", le64_to_cpu(ii->generation));
	printf("transid: %llu\n", le64_to_cpu(ii->transid));
}

static void print_inode_ctx(const u8 *data, u32 size, struct json_object *doc)
{
	const struct fscrypt_context_v2 *c = (const void *)data;
	char id[33], nonce[33];

	if (size < sizeof(*c)) {
		if (doc)
			json_object_object_add(doc, "context", json_hex(data, size));
		else
			printf("context: invalid size %u raw %s\n", size, "");
		return;
	}
	hex_encode(c->master_key_identifier, 16, id);
	hex_encode(c->nonce, 16, nonce);
	if (doc) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "version", json_u64(c->version));
		json_object_object_add(o, "contents-mode", json_u64(c->contents_mode));
		json_object_object_add(o, "filenames-mode", json_u64(c->filenames_mode));
		json_object_object_add(o, "flags", json_u64(c->flags));
		json_object_object_add(o, "log2-data-unit-size", json_u64(c->log2_data_unit_size));
		json_object_object_add(o, "key-id", json_object_new_string(id));
		json_object_object_add(o, "nonce", json_object_new_string(nonce));
		json_object_object_add(doc, "context", o);
		return;
	}
	printf("context: version %u contents-mode %u filenames-mode %u flags 0x%02x key-id %s nonce %s\n",
	       c->version, c->contents_mode, c->filenames_mode,
	       c->flags, id, nonce);
}

static void print_extent(const struct btrfs_key *key, const u8 *ptr, u32 size,
			 const struct ctx_item *ctx, struct file_report *r)
{
	const struct btrfs_file_extent_item *fe = (const void *)ptr;
	struct json_object *o = NULL;
	bool inl;

	if (size < BTRFS_FILE_EXTENT_INLINE_DATA_START)
		return;
	inl = fe->type == BTRFS_FILE_EXTENT_INLINE;
	if (!inl && size < sizeof(*fe))
		return;
	r->nr_extents++;
	if (r->extents) {
		o = json_object_new_object();
		json_object_object_add(o, "file-offset", json_u64(key->offset));
		json_object_object_add(o, "type", json_object_new_string(type_name(fe->type)));
		json_object_object_add(o, "generation", json_u64(le64_to_cpu(fe->generation)));
		if (inl) {
			json_object_object_add(o, "inline-size",
					       json_u64(size - BTRFS_FILE_EXTENT_INLINE_DATA_START));
		} else {
			json_object_object_add(o, "disk-bytenr", json_u64(le64_to_cpu(fe->disk_bytenr)));
			json_object_object_add(o, "disk-num-bytes",
					       json_u64(le64_to_cpu(fe->disk_num_bytes)));
			json_object_object_add(o, "offset", json_u64(le64_to_cpu(fe->offset)));
			json_object_object_add(o, "num-bytes", json_u64(le64_to_cpu(fe->num_bytes)));
		}
		json_object_object_add(o, "ram-bytes", json_u64(le64_to_cpu(fe->ram_bytes)));
		json_object_object_add(o, "compression",
				       json_object_new_string(compression_name(fe->compression)));
		json_object_object_add(o, "encryption", json_u64(fe->encryption));
		json_object_array_add(r->extents, o);
	} else {
		printf("extent: file-offset %llu type %s", key->offset, type_name(fe->type));
		if (inl)
			printf(" inline-size %u", size - (u32)BTRFS_FILE_EXTENT_INLINE_DATA_START);
		else
			printf(" disk-bytenr %llu disk-num-bytes %llu offset %llu num-bytes %llu",
			       le64_to_cpu(fe->disk_bytenr), le64_to_cpu(fe->disk_num_bytes),
			       le64_to_cpu(fe->offset), le64_to_cpu(fe->num_bytes));
		printf(" ram-bytes %llu compression %s encryption %u",
		       le64_to_cpu(fe->ram_bytes), compression_name(fe->compression),
		       fe->encryption);
	}
	if (ctx && ctx->size >= FSCRYPT_EXTENT_CONTEXT_SIZE) {
		const struct fscrypt_extent_context *c = (const void *)ctx->data;
		char id[33], nonce[33];

		hex_encode(c->master_key_identifier, 16, id);
		hex_encode(c->nonce, 16, nonce);
		if (o) {
			struct json_object *co = json_object_new_object();

			json_object_object_add(co, "version", json_u64(c->version));
			json_object_object_add(co, "mode", json_u64(c->encryption_mode));
			json_object_object_add(co, "key-id", json_object_new_string(id));
			json_object_object_add(co, "nonce", json_object_new_string(nonce));
			json_object_object_add(o, "context", co);
		} else {
			printf(" ctx-version %u ctx-mode %u ctx-key-id %s ctx-nonce %s",
			       c->version, c->encryption_mode, id, nonce);
		}
	}
	if (!o)
		putchar('\n');
}

static int add_ctx(struct fs_info *fs, struct file_report *r, const struct btrfs_key *key,
		   const u8 *ptr, u32 size)
{
	struct ctx_item *c, *n = array_grow(r->ctx, &r->cap_ctx, r->nr_ctx, sizeof(*n));

	if (!n)
		return fs_err(fs, -ENOMEM, "out of memory");
	r->ctx = n;
	c = &r->ctx[r->nr_ctx++];
	c->offset = key->offset;
	c->size = size;
	memcpy(c->data, ptr, size < sizeof(c->data) ? size : sizeof(c->data));
	return 0;
}

/* One item of the inode; 0 or -ENOMEM. */
static int report_item(struct fs_info *fs, const struct name_codec *nc, const struct root_ref *root,
		       const struct key_iter *it, struct file_report *r, char *path, bool *have_inode,
		       struct json_object *doc)
{
	int ret;

	if (it->key.type == BTRFS_INODE_ITEM_KEY && it->size >= sizeof(struct btrfs_inode_item)) {
		struct btrfs_inode_item ii;

		memcpy(&ii, it->ptr, sizeof(ii));
		ret = inode_path(fs, nc, root, it->key.objectid, path, PATH_MAX * 2);
		if (ret == -ENOMEM)
			return ret;
		if (ret)
			strcpy(path, "");
		print_inode(root->objectid, it->key.objectid, path[0] ? path : NULL, &ii, doc);
		*have_inode = true;
	} else if (it->key.type == BTRFS_FSCRYPT_INODE_CTX_KEY) {
		print_inode_ctx(it->ptr, it->size, doc);
	} else if (it->key.type == BTRFS_FSCRYPT_CTX_KEY) {
		return add_ctx(fs, r, &it->key, it->ptr, it->size);
	} else if (it->key.type == BTRFS_EXTENT_DATA_KEY && *have_inode) {
		print_extent(&it->key, it->ptr, it->size, find_ctx(r, it->key.offset), r);
	}
	return 0;
}

/*
 * Walk all items of one inode; ctx items (42) sort before EXTENT_DATA (108).
 * 0, 1 when there is no inode item, or <0.
 */
static int report_inode(struct fs_info *fs, const struct name_codec *nc, const struct root_ref *root,
			u64 ino, struct json_object *doc)
{
	struct btrfs_key min = { ino, 0, 0 }, max = { ino, (u8)-1, (u64)-1 };
	struct file_report r = { 0 };
	struct key_iter it;
	bool have_inode = false;
	char *path = fault_malloc(PATH_MAX * 2);
	int ret;

	if (!path)
		return fs_err(fs, -ENOMEM, "out of memory");
	if (doc)
		r.extents = json_object_new_array();
	for (ret = key_iter_first(&it, fs, root, &min, &max); ret == 0; ret = key_iter_next(&it)) {
		ret = report_item(fs, nc, root, &it, &r, path, &have_inode, doc);
		if (ret)
			break;
	}
	key_iter_release(&it);
	if (ret >= 0) {
		ret = have_inode ? 0 : 1;
		if (have_inode && doc) {
			json_object_object_add(doc, "extents", r.extents);
			r.extents = NULL;
		}
	}
	if (r.extents)
		json_object_put(r.extents);
	free(r.ctx);
	free(path);
	return ret;
}

struct inspect_file_opts {
	u64 root_id, ino;
	bool have_ino;
	const char *fpath;	/* the file by path, NULL: by --inode */
};

static int inspect_file_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "inode", required_argument, NULL, 'i' },
		GETOPT_SUPER_OPTION,
		GETOPT_DEVICE_OPTION,
		KEY_INPUT_LONG_OPTIONS,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	const struct cmd_struct *cmd = ctx->cmd;
	struct inspect_file_opts *o = ctx->opts;
	bool have_root = false;
	int c, ret;

	o->root_id = BTRFS_FS_TREE_OBJECTID;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (parse_u64(optarg, &o->root_id))
				return usage_error(cmd, "invalid root id '%s'", optarg);
			have_root = true;
			break;
		case 'i':
			if (parse_u64(optarg, &o->ino))
				return usage_error(cmd, "invalid inode number '%s'", optarg);
			o->have_ino = true;
			break;
		default:
			ret = cmd_parse_common(ctx, c, optarg);
			if (ret != CMD_PARSE_OK)
				return ret;
		}
	}
	if (o->have_ino) {
		if ((ret = check_argc_exact(cmd, argc - optind, 1)))
			return ret;
	} else {
		if (have_root)
			return usage_error(cmd, "--root needs --inode");
		if ((ret = check_argc_exact(cmd, argc - optind, 2)))
			return ret;
		o->fpath = argv[optind++];
	}
	ctx->image_path = argv[optind];
	return CMD_PARSE_OK;
}

/* The tree and inode number the options name; 0 or the exit code. */
static int inspect_file_find(struct fs_info *fs, const struct name_codec *nc,
			     const struct inspect_file_opts *o, struct root_ref *root, u64 *ino)
{
	int ret;

	*ino = o->ino;
	if (o->fpath) {
		ret = path_lookup(fs, nc, o->fpath, root, ino);
		if (ret > 0) {
			error("no such file in the image: %s", o->fpath);
			return EXIT_PROBLEMS;
		}
	} else {
		ret = find_root(fs, o->root_id, root);
		if (ret == -ENOENT) {
			error("no tree with id %llu in the image", o->root_id);
			return EXIT_PROBLEMS;
		}
	}
	if (ret < 0)
		return cmd_engine_error(fs, ret, "cannot look up the inode");
	return 0;
}

static int inspect_file_run(struct cmd_context *ctx)
{
	const struct inspect_file_opts *o = ctx->opts;
	struct fs_info *fs = ctx->fs;
	struct json_object *doc = NULL;
	struct enc_names en;
	struct root_ref root;
	u64 ino;
	int ret;

	enc_names_init_keys(&en, fs, cmd_keys(ctx), ctx->nr_mks);
	ret = inspect_file_find(fs, &en.nc, ctx->opts, &root, &ino);
	if (!ret) {
		ret = enc_names_check_inode(&en, &root, ino);
		if (ret)
			return cmd_engine_error(fs, ret, NULL);
	}
	if (ret)
		return ret;
	if (g_format == FORMAT_JSON)
		doc = json_doc_new();
	ret = report_inode(fs, &en.nc, &root, ino, doc);
	if (ret > 0 && !o->have_ino) {
		/* A directory entry names it: a dangling entry is a corrupt image. */
		ret = fs_err(fs, -EUCLEAN, "%s: its directory entry names inode %llu, which tree %llu does not have",
			     o->fpath, ino, root.objectid);
		ret = cmd_engine_error(fs, ret, NULL);
	} else if (ret > 0) {
		error("inode %llu not found in tree %llu", ino, root.objectid);
		ret = EXIT_PROBLEMS;
	} else if (ret < 0) {
		ret = cmd_engine_error(fs, ret, "cannot read the inode");
	} else if (doc) {
		json_doc_print(doc);
		doc = NULL;
	}
	if (doc)
		json_object_put(doc);
	return ret;
}

DEFINE_COMMAND(inspect_file, "file", CMD_IMAGE_RO | CMD_MULTI_DEVICE | CMD_KEY_OPTIONAL | CMD_KEYS_MULTI,
	       struct inspect_file_opts);
