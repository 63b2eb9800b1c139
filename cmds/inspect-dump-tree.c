// SPDX-License-Identifier: GPL-2.0
/*
 * inspect dump-tree: the text of btrfs-progs 6.14 `inspect-internal dump-tree`
 * (same tree order, section headers and trailer), with the fscrypt additions
 * of Documentation/format.rst section 12, or one JSON document with `--format json`.
 *
 * Every block is read through the verifying engine; the first block that
 * fails verification ends the dump with one ERROR line and exit code 3
 * (btrfs-progs would skip it silently or print a warning).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>
#include "common/fault.h"
#include "cmds/commands.h"
#include "cmds/print-tree.h"
#include "common/messages.h"
#include "common/output.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/disk-io.h"

/*
 * The first line btrfs-progs prints is its own version.  Tests compare our
 * output with btrfs-progs 6.14 (bookworm-backports) byte for byte, so we print the line
 * of the release whose format we reproduce.
 */
#define DUMP_TREE_COMPAT_BANNER "btrfs-progs v6.14"

const char *const cmd_inspect_dump_tree_usage[] = {
	"btrfs-extcrypt inspect dump-tree [options] <image> [<device>...]",
	"Dump tree structures of an image in textual form",
	"",
	"The text is that of btrfs-progs' inspect-internal dump-tree, with the",
	"fscrypt item names, context values and encryption fields added.",
	"Note: contains file names, consider that if you're asked to send the dump",
	"for analysis.  A filesystem of several devices is given as the image and",
	"its other devices (every other command takes them with --device PATH).",
	"",
	OPTLINE("-t|--tree <tree_id>", "print only tree with the given id (name or number)"),
	OPTLINE("-b|--block <bytenr>", "print info from the specified block only, can be given multiple times"),
	OPTLINE("--follow", "use with -b, to show all children tree blocks of <bytenr>"),
	OPTLINE("-e|--extents", "print only extent info: extent and device trees"),
	OPTLINE("-d|--device", "print only device info: tree root, chunk and device trees"),
	OPTLINE("-r|--roots", "print only short root node info"),
	OPTLINE("-R|--backups", "same as --roots plus print backup root info"),
	OPTLINE("-u|--uuid", "print only the uuid tree"),
	OPTLINE("--bfs", "breadth-first traversal of the trees, print nodes, then leaves (default)"),
	OPTLINE("--dfs", "depth-first traversal of the trees"),
	OPTLINE("--hide-names", "hide filenames/subvolume/xattrs and other name references"),
	OPTLINE("--csum-headers", "print node checksums stored in headers (metadata)"),
	OPTLINE("--csum-items", "print checksums stored in checksum items (data)"),
	OPTLINE("--noscan", "accepted for compatibility, ignored (devices are the arguments)"),
	NULL
};

enum traverse { TRAVERSE_BFS, TRAVERSE_DFS };

struct dump_ctx {
	struct fs_info *fs;
	struct print_opts opts;
	enum traverse traverse;
	bool json;
	struct json_object *blocks;	/* JSON: "blocks" array of the current tree */
	struct json_object *trees;	/* JSON: "trees" array */
	int err;			/* set once an ERROR line was printed */
	bool dropping;			/* printing a tree whose root has refs 0 */
};

/* Report an engine failure: one ERROR line, remembered for the exit code. */
static int dump_fail(struct dump_ctx *ctx, int ret)
{
	pt_out_flush();
	if (ctx->dropping) {
		/*
		 * A deleted subvolume being dropped: the blocks left of its
		 * drop_progress are already freed, so an unreadable block is
		 * expected.  btrfs-progs stops printing that tree; so do we.
		 */
		warning("%s (tree partially dropped, rest of it skipped)",
			fs_errmsg(ctx->fs)[0] ? fs_errmsg(ctx->fs) : strerror(ret < 0 ? -ret : EIO));
		return ret < 0 ? ret : -EIO;
	}
	if (ctx->fs && fs_errmsg(ctx->fs)[0])
		error("%s", fs_errmsg(ctx->fs));
	else
		error("cannot read tree block: %s", strerror(ret < 0 ? -ret : EIO));
	ctx->err = 1;
	return ret < 0 ? ret : -EIO;
}

static int emit_block(struct dump_ctx *ctx, struct tree_block *tb)
{
	char msg[256];

	if (ctx->json) {
		json_object_array_add(ctx->blocks, pt_block_json(&ctx->opts, tb->data));
		return 0;
	}
	if (pt_print_block(&ctx->opts, tb->data, msg, sizeof(msg)) < 0) {
		pt_out_flush();
		error("%s", msg);
		ctx->err = 1;
		return -EUCLEAN;
	}
	return 0;
}

/* Last key of a block (it has items). */
static void block_last_key(const struct tree_block *b, struct btrfs_key *k)
{
	if (tb_level(b))
		tb_node_key(b, tb_nritems(b) - 1, k);
	else
		tb_item_key(b, tb_nritems(b) - 1, k);
}

/*
 * The child's keys must stay below the next key in its ancestors: a pointer
 * to a block that belongs further right (a duplicated or misplaced pointer)
 * would otherwise print keys going backwards.
 */
static int check_upper_bound(struct dump_ctx *ctx, const struct tree_block *child,
			     const struct btrfs_key *upper)
{
	struct btrfs_key last;

	if (!upper || !tb_nritems(child))
		return 0;
	block_last_key(child, &last);
	if (btrfs_comp_keys(&last, upper) < 0)
		return 0;
	pt_out_flush();
	error("tree block %llu: key (%llu %u %llu) is not below the parent's next key (%llu %u %llu)",
	      (unsigned long long)child->bytenr, (unsigned long long)last.objectid, last.type,
	      (unsigned long long)last.offset, (unsigned long long)upper->objectid, upper->type,
	      (unsigned long long)upper->offset);
	ctx->err = 1;
	return -EUCLEAN;
}

/* Read the child at slot of a verified node, checked against the pointer. */
static int read_child(struct dump_ctx *ctx, struct tree_block *parent, u32 slot,
		      struct tree_block **out)
{
	struct btrfs_key key;
	struct block_check chk = { 0 };
	int ret;

	if (slot >= tb_nritems(parent) || tb_level(parent) == 0) {
		pt_out_flush();
		error("tree block %llu: no child at slot %u",
		      (unsigned long long)parent->bytenr, slot);
		ctx->err = 1;
		return -EUCLEAN;
	}
	tb_node_key(parent, slot, &key);
	chk.level = tb_level(parent) - 1;
	chk.generation = tb_node_gen(parent, slot);
	chk.first_key = &key;
	ret = read_tree_block(ctx->fs, tb_node_blockptr(parent, slot), &chk, out);
	if (ret)
		return dump_fail(ctx, ret);
	return 0;
}

/*
 * Print every block at one level of the tree under root, left to right,
 * walking a path from the root (bounded memory whatever the tree size).
 */
static int print_level(struct dump_ctx *ctx, struct tree_block *root, int level)
{
	struct tree_block *nodes[BTRFS_MAX_LEVEL] = { NULL };
	u32 slots[BTRFS_MAX_LEVEL] = { 0 };
	int top = tb_level(root);
	int i, j, ret = 0;

	nodes[top] = root;
	for (i = top; i > level; i--) {
		ret = read_child(ctx, nodes[i], 0, &nodes[i - 1]);
		if (ret)
			goto out;
	}
	while (1) {
		struct btrfs_key upper;
		bool bounded = false;

		/* The nearest next key among the ancestors bounds this block. */
		for (i = level + 1; i <= top && !bounded; i++) {
			if (slots[i] + 1 < tb_nritems(nodes[i])) {
				tb_node_key(nodes[i], slots[i] + 1, &upper);
				bounded = true;
			}
		}
		ret = check_upper_bound(ctx, nodes[level], bounded ? &upper : NULL);
		if (!ret)
			ret = emit_block(ctx, nodes[level]);
		if (ret)
			goto out;
		for (i = level + 1; i <= top; i++)
			if (slots[i] + 1 < tb_nritems(nodes[i]))
				break;
		if (i > top)
			break;
		slots[i]++;
		for (j = i; j > level; j--) {
			tree_block_put(ctx->fs, nodes[j - 1]);
			nodes[j - 1] = NULL;
			slots[j - 1] = 0;
			ret = read_child(ctx, nodes[j], slots[j], &nodes[j - 1]);
			if (ret)
				goto out;
		}
	}
out:
	for (i = 0; i < top; i++)
		if (nodes[i])
			tree_block_put(ctx->fs, nodes[i]);
	return ret;
}

static int print_dfs(struct dump_ctx *ctx, struct tree_block *tb, const struct btrfs_key *upper)
{
	u32 i, nr = tb_nritems(tb);
	int ret;

	ret = check_upper_bound(ctx, tb, upper);
	if (!ret)
		ret = emit_block(ctx, tb);
	if (ret || tb_level(tb) == 0)
		return ret;
	for (i = 0; i < nr; i++) {
		struct tree_block *child;
		struct btrfs_key next;

		ret = read_child(ctx, tb, i, &child);
		if (ret && ctx->dropping)
			continue;	/* as btrfs-progs: skip the freed child */
		if (ret)
			return ret;
		if (i + 1 < nr)
			tb_node_key(tb, i + 1, &next);
		ret = print_dfs(ctx, child, i + 1 < nr ? &next : upper);
		tree_block_put(ctx->fs, child);
		if (ret)
			return ret;
	}
	return 0;
}

/* Print a block and, with follow, everything below it. */
static int print_tree_from(struct dump_ctx *ctx, struct tree_block *tb, bool follow)
{
	int level, ret;

	if (!follow || tb_level(tb) == 0)
		return emit_block(ctx, tb);
	if (ctx->traverse == TRAVERSE_DFS)
		return print_dfs(ctx, tb, NULL);
	ret = emit_block(ctx, tb);
	for (level = tb_level(tb) - 1; !ret && level >= 0; level--)
		ret = print_level(ctx, tb, level);
	return ret;
}

static int read_root_block(struct dump_ctx *ctx, const struct root_ref *root,
			   struct tree_block **out)
{
	struct block_check chk = { 0 };
	int ret;

	chk.level = root->level;
	chk.generation = root->generation;
	ret = read_tree_block(ctx->fs, root->bytenr, &chk, out);
	if (ret)
		return dump_fail(ctx, ret);
	return 0;
}

/* JSON: start a new entry in "trees". */
static void json_tree_begin(struct dump_ctx *ctx, const char *name, u64 id,
			    const struct btrfs_key *key)
{
	struct json_object *t = json_object_new_object();

	json_object_object_add(t, "name", json_object_new_string(name));
	json_object_object_add(t, "tree-id", json_u64(id));
	if (key) {
		struct json_object *k = json_object_new_object();
		char buf[48];

		json_object_object_add(k, "objectid", json_u64(key->objectid));
		json_object_object_add(k, "type",
			json_object_new_string(pt_key_type_str(key->objectid, key->type,
							       buf, sizeof(buf))));
		json_object_object_add(k, "offset", json_u64(key->offset));
		json_object_object_add(t, "key", k);
	}
	ctx->blocks = json_object_new_array();
	json_object_object_add(t, "blocks", ctx->blocks);
	json_object_array_add(ctx->trees, t);
}

/* "root tree", "chunk tree", ...: a tree printed from its root reference. */
static int dump_named_tree(struct dump_ctx *ctx, const char *title, u64 id,
			   const struct root_ref *root)
{
	struct tree_block *tb;
	int ret;

	ret = read_root_block(ctx, root, &tb);
	if (ret)
		return ret;
	if (ctx->json) {
		json_tree_begin(ctx, title, id, NULL);
	} else {
		pt_out_str(title);
		pt_out_chr('\n');
	}
	ret = print_tree_from(ctx, tb, true);
	tree_block_put(ctx->fs, tb);
	return ret;
}

/* The word btrfs-progs puts before " tree key (...)". */
static const char *tree_title(u64 objectid)
{
	switch (objectid) {
	case BTRFS_ROOT_TREE_OBJECTID: return "root";
	case BTRFS_EXTENT_TREE_OBJECTID: return "extent";
	case BTRFS_CHUNK_TREE_OBJECTID: return "chunk";
	case BTRFS_DEV_TREE_OBJECTID: return "device";
	case BTRFS_FS_TREE_OBJECTID: return "fs";
	case BTRFS_ROOT_TREE_DIR_OBJECTID: return "directory";
	case BTRFS_CSUM_TREE_OBJECTID: return "checksum";
	case BTRFS_ORPHAN_OBJECTID: return "orphan";
	case BTRFS_TREE_LOG_OBJECTID: return "log";
	case BTRFS_TREE_LOG_FIXUP_OBJECTID: return "log fixup";
	case BTRFS_TREE_RELOC_OBJECTID: return "reloc";
	case BTRFS_DATA_RELOC_TREE_OBJECTID: return "data reloc";
	case BTRFS_EXTENT_CSUM_OBJECTID: return "extent checksum";
	case BTRFS_QUOTA_TREE_OBJECTID: return "quota";
	case BTRFS_UUID_TREE_OBJECTID: return "uuid";
	case BTRFS_FREE_SPACE_TREE_OBJECTID: return "free space";
	case BTRFS_MULTIPLE_OBJECTIDS: return "multiple";
	case BTRFS_BLOCK_GROUP_TREE_OBJECTID: return "block group";
	}
	return "file";
}

struct dump_args {
	u64 tree_id;
	bool extent_only;
	bool device_only;
	bool uuid_only;
	bool roots_only;
	bool root_backups;
};

/* -e: leaves only, depth first, no node headers. */
static int print_extents(struct dump_ctx *ctx, struct tree_block *tb)
{
	u32 i, nr = tb_nritems(tb);
	int ret;

	if (tb_level(tb) == 0)
		return emit_block(ctx, tb);
	for (i = 0; i < nr; i++) {
		struct tree_block *child;

		ret = read_child(ctx, tb, i, &child);
		if (ret && ctx->dropping)
			continue;
		if (ret)
			return ret;
		ret = print_extents(ctx, child);
		tree_block_put(ctx->fs, child);
		if (ret)
			return ret;
	}
	return 0;
}

static int dump_root_tree(struct dump_ctx *ctx, const struct dump_args *a,
			  const struct btrfs_key *key, struct tree_block *tb);

/* One ROOT_ITEM of the root (or log root) tree. */
static int dump_root_item(struct dump_ctx *ctx, const struct dump_args *a,
			  const struct btrfs_key *key, const u8 *item, u32 size)
{
	struct root_ref ref;
	struct tree_block *tb;
	bool skip = a->extent_only || a->device_only || a->uuid_only;
	int ret;

	if (a->tree_id && key->objectid != a->tree_id)
		return 0;
	switch (key->objectid) {
	case BTRFS_EXTENT_TREE_OBJECTID:
		if (!a->device_only && !a->uuid_only)
			skip = false;
		break;
	case BTRFS_DEV_TREE_OBJECTID:
		if (!a->uuid_only)
			skip = false;
		break;
	case BTRFS_ROOT_TREE_DIR_OBJECTID:
		skip = false;
		break;
	case BTRFS_UUID_TREE_OBJECTID:
		if (!a->extent_only && !a->device_only)
			skip = false;
		break;
	}
	if (skip)
		return 0;

	ref.objectid = key->objectid;
	ref.bytenr = pt_get_le(item, size, 176, 8);
	ref.generation = pt_get_le(item, size, 160, 8);
	ref.level = (u8)pt_get_le(item, size, 238, 1);
	ret = read_root_block(ctx, &ref, &tb);
	if (ret)
		return ret;
	ctx->dropping = pt_get_le(item, size, 216, 4) == 0 &&
			key->objectid >= BTRFS_FIRST_FREE_OBJECTID;
	ret = dump_root_tree(ctx, a, key, tb);
	tree_block_put(ctx->fs, tb);
	if (ctx->dropping && ret && !ctx->err)
		ret = 0;
	ctx->dropping = false;
	return ret;
}

static int dump_root_tree(struct dump_ctx *ctx, const struct dump_args *a,
			  const struct btrfs_key *key, struct tree_block *tb)
{
	const char *title;
	int ret;

	title = tree_title(key->objectid);
	if (ctx->json) {
		char name[64];

		snprintf(name, sizeof(name), "%s tree", title);
		json_tree_begin(ctx, name, key->objectid, key);
		if (a->roots_only) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "bytenr", json_u64(tb->bytenr));
			json_object_object_add(o, "level", json_object_new_int(tb_level(tb)));
			json_object_array_add(ctx->blocks, o);
			ret = 0;
		} else if (a->extent_only) {
			ret = print_extents(ctx, tb);
		} else {
			ret = print_tree_from(ctx, tb, true);
		}
		return ret;
	}

	pt_out_str(title);
	pt_out_str(" tree ");
	pt_print_key(key);
	if (a->extent_only) {
		pt_out_chr('\n');
		ret = print_extents(ctx, tb);
	} else if (a->roots_only) {
		pt_out_chr(' ');
		pt_out_u64(tb->bytenr);
		pt_out_printf(" level %d\n", tb_level(tb));
		ret = 0;
	} else {
		pt_out_str(" \n");
		ret = print_tree_from(ctx, tb, true);
	}
	return ret;
}

static int scan_root_items(struct dump_ctx *ctx, const struct dump_args *a,
			   const struct root_ref *tree)
{
	struct btrfs_path path;
	struct btrfs_key key = { 0, BTRFS_ROOT_ITEM_KEY, 0 };
	int ret;

	memset(&path, 0, sizeof(path));
	ret = search_slot(ctx->fs, tree, &key, &path);
	if (ret < 0) {
		dump_fail(ctx, ret);
		goto out;
	}
	ret = 0;
	while (1) {
		if (!path_item_valid(&path)) {
			ret = next_item(ctx->fs, &path);
			if (ret < 0) {
				dump_fail(ctx, ret);
				break;
			}
			if (ret > 0) {
				ret = 0;
				break;
			}
			continue;
		}
		path_key(&path, &key);
		if (key.type == BTRFS_ROOT_ITEM_KEY) {
			ret = dump_root_item(ctx, a, &key, path_ptr(&path), path_size(&path));
			if (ret)
				break;
		}
		ret = next_item(ctx->fs, &path);
		if (ret < 0) {
			dump_fail(ctx, ret);
			break;
		}
		if (ret > 0) {
			ret = 0;
			break;
		}
	}
out:
	path_release(ctx->fs, &path);
	return ret;
}

static void print_old_roots(const struct btrfs_super_block *sb)
{
	bool v2 = le64_to_cpu(sb->incompat_flags) & BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2;
	int i;

	for (i = 0; i < BTRFS_NUM_BACKUP_ROOTS; i++) {
		const struct btrfs_root_backup *b = &sb->super_roots[i];

		pt_out_printf("btrfs root backup slot %d\n", i);
		pt_out_printf("\ttree root gen %llu block %llu\n",
			      (unsigned long long)le64_to_cpu(b->tree_root_gen), (unsigned long long)le64_to_cpu(b->tree_root));
		pt_out_printf("\t\t%s gen %llu block %llu\n",
			      v2 ? "block group root" : "extent root",
			      (unsigned long long)le64_to_cpu(b->extent_root_gen), (unsigned long long)le64_to_cpu(b->extent_root));
		pt_out_printf("\t\tchunk root gen %llu block %llu\n",
			      (unsigned long long)le64_to_cpu(b->chunk_root_gen), (unsigned long long)le64_to_cpu(b->chunk_root));
		pt_out_printf("\t\tdevice root gen %llu block %llu\n",
			      (unsigned long long)le64_to_cpu(b->dev_root_gen), (unsigned long long)le64_to_cpu(b->dev_root));
		pt_out_printf("\t\tcsum root gen %llu block %llu\n",
			      (unsigned long long)le64_to_cpu(b->csum_root_gen), (unsigned long long)le64_to_cpu(b->csum_root));
		pt_out_printf("\t\tfs root gen %llu block %llu\n",
			      (unsigned long long)le64_to_cpu(b->fs_root_gen), (unsigned long long)le64_to_cpu(b->fs_root));
		pt_out_printf("\t\t%llu used %llu total %llu devices\n",
			      (unsigned long long)le64_to_cpu(b->bytes_used), (unsigned long long)le64_to_cpu(b->total_bytes),
			      (unsigned long long)le64_to_cpu(b->num_devices));
	}
}

/*
 * Accepted -t forms, as btrfs-progs: a number, or a name with optional
 * BTRFS_ prefix and _TREE / _OBJECTID suffixes, any case.  Returns 0 if
 * not recognized.
 */
static u64 parse_tree_id(const char *str)
{
	static const struct {
		const char *name;
		u64 id;
	} names[] = {
		{ "ROOT", BTRFS_ROOT_TREE_OBJECTID },
		{ "EXTENT", BTRFS_EXTENT_TREE_OBJECTID },
		{ "CHUNK", BTRFS_CHUNK_TREE_OBJECTID },
		{ "DEVICE", BTRFS_DEV_TREE_OBJECTID },
		{ "DEV", BTRFS_DEV_TREE_OBJECTID },
		{ "FS", BTRFS_FS_TREE_OBJECTID },
		{ "CSUM", BTRFS_CSUM_TREE_OBJECTID },
		{ "CHECKSUM", BTRFS_CSUM_TREE_OBJECTID },
		{ "QUOTA", BTRFS_QUOTA_TREE_OBJECTID },
		{ "UUID", BTRFS_UUID_TREE_OBJECTID },
		{ "FREE_SPACE", BTRFS_FREE_SPACE_TREE_OBJECTID },
		{ "BLOCK_GROUP", BTRFS_BLOCK_GROUP_TREE_OBJECTID },
		{ "TREE_LOG_FIXUP", BTRFS_TREE_LOG_FIXUP_OBJECTID },
		{ "TREE_LOG", BTRFS_TREE_LOG_OBJECTID },
		{ "TREE_RELOC", BTRFS_TREE_RELOC_OBJECTID },
		{ "DATA_RELOC", BTRFS_DATA_RELOC_TREE_OBJECTID },
	};
	char buf[64];
	const char *p = buf;
	size_t i;
	u64 id = 0;

	/* "free-space" as well as btrfs-progs' "free_space" */
	if (strlen(str) >= sizeof(buf))
		return 0;
	for (i = 0; str[i]; i++)
		buf[i] = str[i] == '-' ? '_' : str[i];
	buf[i] = 0;

	if (*p && strspn(p, "0123456789") == strlen(p)) {
		errno = 0;
		id = strtoull(p, NULL, 10);
		return errno ? 0 : id;
	}
	if (strncasecmp(p, "BTRFS_", 6) == 0)
		p += 6;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len = strlen(names[i].name);

		if (strncasecmp(names[i].name, p, len) == 0) {
			id = names[i].id;
			p += len;
			break;
		}
	}
	if (!id)
		return 0;
	if (strncasecmp(p, "_TREE", 5) == 0)
		p += 5;
	if (strncasecmp(p, "_OBJECTID", 9) == 0)
		p += 9;
	return *p ? 0 : id;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* -b: selected blocks, ascending, each once. */
static int dump_blocks(struct dump_ctx *ctx, u64 *blocks, size_t n, bool follow)
{
	size_t i;
	int ret = 0;

	qsort(blocks, n, sizeof(u64), cmp_u64);
	if (ctx->json)
		json_tree_begin(ctx, "blocks", 0, NULL);
	for (i = 0; i < n; i++) {
		struct tree_block *tb;
		int r;

		if (i && blocks[i] == blocks[i - 1])
			continue;
		if (blocks[i] % ctx->fs->sectorsize) {
			pt_out_flush();
			error("tree block bytenr %llu is not aligned to sectorsize %u",
			      (unsigned long long)blocks[i], ctx->fs->sectorsize);
			ctx->err = 1;
			continue;
		}
		r = read_tree_block_raw(ctx->fs, blocks[i], &tb);
		if (r) {
			dump_fail(ctx, r);
			continue;
		}
		r = print_tree_from(ctx, tb, follow);
		tree_block_put(ctx->fs, tb);
		if (r)
			ret = r;
	}
	return ret;
}

/* The log tree and the block group tree, when the image has them. */
struct extra_roots {
	struct root_ref log, bg;
	bool have_log, have_bg;
};

static void extra_roots_find(struct fs_info *fs, struct extra_roots *x)
{
	const struct btrfs_super_block *sb = &fs->super;

	memset(x, 0, sizeof(*x));
	x->log.objectid = BTRFS_TREE_LOG_OBJECTID;
	x->have_log = le64_to_cpu(sb->log_root) != 0;
	if (x->have_log) {
		x->log.bytenr = le64_to_cpu(sb->log_root);
		x->log.level = sb->log_root_level;
	}
	if (fs->compat_ro & BTRFS_FEATURE_COMPAT_RO_BLOCK_GROUP_TREE)
		x->have_bg = find_root(fs, BTRFS_BLOCK_GROUP_TREE_OBJECTID, &x->bg) == 0;
}

/* -r in text: "<name>: <bytenr> level <n>" of one root block. */
static int print_root_pointer(struct dump_ctx *ctx, const char *name, const struct root_ref *r)
{
	struct tree_block *tb;
	int ret;

	ret = read_root_block(ctx, r, &tb);
	if (ret)
		return ret;
	pt_out_printf("%s: %llu level %d\n", name, (unsigned long long)tb->bytenr, tb_level(tb));
	tree_block_put(ctx->fs, tb);
	return 0;
}

/* What comes before the trees the root tree lists: the root, chunk, log, bg trees. */
static int dump_top_trees(struct dump_ctx *ctx, const struct dump_args *a,
			  const struct extra_roots *x)
{
	struct fs_info *fs = ctx->fs;
	int ret;

	if (a->roots_only && !ctx->json) {
		ret = print_root_pointer(ctx, "root tree", &fs->tree_root);
		if (!ret)
			ret = print_root_pointer(ctx, "chunk tree", &fs->chunk_root);
		if (!ret && x->have_log)
			ret = print_root_pointer(ctx, "log root tree", &x->log);
		return ret;
	}
	if (a->roots_only)
		return 0;
	ret = dump_named_tree(ctx, "root tree", BTRFS_ROOT_TREE_OBJECTID, &fs->tree_root);
	if (!ret)
		ret = dump_named_tree(ctx, "chunk tree", BTRFS_CHUNK_TREE_OBJECTID,
				      &fs->chunk_root);
	if (!ret && x->have_log)
		ret = dump_named_tree(ctx, "log root tree", BTRFS_TREE_LOG_OBJECTID, &x->log);
	if (!ret && x->have_bg)
		ret = dump_named_tree(ctx, "block group tree", BTRFS_BLOCK_GROUP_TREE_OBJECTID,
				      &x->bg);
	return ret;
}

static int missing_tree(struct dump_ctx *ctx, const char *name)
{
	pt_out_flush();
	error("cannot print %s, invalid pointer", name);
	ctx->err = 1;
	return -ENOENT;
}

/*
 * -t naming a tree the superblock points to: dump it and return 0 or the
 * error; 1 for a tree found through the root tree.
 */
static int dump_pointed_tree(struct dump_ctx *ctx, u64 id, const struct extra_roots *x)
{
	struct fs_info *fs = ctx->fs;

	switch (id) {
	case BTRFS_ROOT_TREE_OBJECTID:
		return dump_named_tree(ctx, "root tree", id, &fs->tree_root);
	case BTRFS_CHUNK_TREE_OBJECTID:
		return dump_named_tree(ctx, "chunk tree", id, &fs->chunk_root);
	case BTRFS_TREE_LOG_OBJECTID:
		if (!x->have_log)
			return missing_tree(ctx, "log root tree");
		return dump_named_tree(ctx, "log root tree", id, &x->log);
	case BTRFS_BLOCK_GROUP_TREE_OBJECTID:
		if (!x->have_bg)
			return missing_tree(ctx, "block group tree");
		return dump_named_tree(ctx, "block group tree", id, &x->bg);
	}
	return 1;
}

static void print_totals(const struct btrfs_super_block *sb)
{
	char u[37];

	pt_out_str("total bytes ");
	pt_out_u64(le64_to_cpu(sb->total_bytes));
	pt_out_str("\nbytes used ");
	pt_out_u64(le64_to_cpu(sb->bytes_used));
	pt_out_str("\nuuid ");
	uuid_unparse(sb->fsid, u);
	pt_out_str(u);
	pt_out_chr('\n');
}

static int dump_all(struct dump_ctx *ctx, const struct dump_args *a)
{
	struct fs_info *fs = ctx->fs;
	struct extra_roots x;
	int ret;

	extra_roots_find(fs, &x);
	if (!(a->extent_only || a->uuid_only || a->tree_id)) {
		ret = dump_top_trees(ctx, a, &x);
		if (ret)
			return ret;
	}
	ret = dump_pointed_tree(ctx, a->tree_id, &x);
	if (ret <= 0)
		return ret;
	ret = scan_root_items(ctx, a, &fs->tree_root);
	if (!ret && x.have_log)
		ret = scan_root_items(ctx, a, &x.log);
	if (ret)
		return ret;
	if (a->extent_only || a->device_only || a->uuid_only || ctx->json)
		return 0;
	if (a->root_backups)
		print_old_roots(&fs->super);
	print_totals(&fs->super);
	return 0;
}

struct dump_tree_opts {
	struct dump_ctx ctx;
	struct dump_args a;
	u64 *blocks;		/* -b, in the order given */
	size_t nblocks;
	bool follow;
};

enum {
	OPT_FOLLOW = 0x100, OPT_BFS, OPT_DFS, OPT_NOSCAN, OPT_HIDE_NAMES,
	OPT_CSUM_HEADERS, OPT_CSUM_ITEMS,
};

/* -b BYTENR, added to o->blocks; returns CMD_PARSE_OK or the exit code. */
static int add_block(struct cmd_context *ctx, const char *arg)
{
	struct dump_tree_opts *o = ctx->opts;
	char *end;
	u64 *nb;

	errno = 0;
	nb = fault_realloc(o->blocks, (o->nblocks + 1) * sizeof(u64));
	if (!nb) {
		error("out of memory");
		return exit_code(-ENOMEM, ERR_AT_RUN);
	}
	o->blocks = nb;
	o->blocks[o->nblocks] = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-')
		return usage_error(ctx->cmd, "invalid block number: %s", arg);
	o->nblocks++;
	return CMD_PARSE_OK;
}

/* One option of dump-tree; returns CMD_PARSE_OK or the exit code. */
static int dump_tree_opt(struct cmd_context *ctx, int c, const char *arg)
{
	struct dump_tree_opts *o = ctx->opts;

	switch (c) {
	case 'e': o->a.extent_only = true; break;
	case 'd': o->a.device_only = true; break;
	case 'r': o->a.roots_only = true; break;
	case 'R': o->a.roots_only = true; o->a.root_backups = true; break;
	case 'u': o->a.uuid_only = true; break;
	case 'b': return add_block(ctx, arg);
	case 't':
		o->a.tree_id = parse_tree_id(arg);
		if (!o->a.tree_id)
			return usage_error(ctx->cmd, "unrecognized tree id: %s", arg);
		break;
	case OPT_FOLLOW: o->follow = true; break;
	case OPT_BFS: o->ctx.traverse = TRAVERSE_BFS; break;
	case OPT_DFS: o->ctx.traverse = TRAVERSE_DFS; break;
	case OPT_NOSCAN: break;
	case OPT_HIDE_NAMES: o->ctx.opts.hide_names = true; break;
	case OPT_CSUM_HEADERS: o->ctx.opts.csum_headers = true; break;
	case OPT_CSUM_ITEMS: o->ctx.opts.csum_items = true; break;
	default:
		return cmd_parse_common(ctx, c, arg);
	}
	return CMD_PARSE_OK;
}

static int inspect_dump_tree_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "extents", no_argument, NULL, 'e' },
		{ "device", no_argument, NULL, 'd' },
		{ "roots", no_argument, NULL, 'r' },
		{ "backups", no_argument, NULL, 'R' },
		{ "uuid", no_argument, NULL, 'u' },
		{ "block", required_argument, NULL, 'b' },
		{ "tree", required_argument, NULL, 't' },
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "bfs", no_argument, NULL, OPT_BFS },
		{ "dfs", no_argument, NULL, OPT_DFS },
		{ "noscan", no_argument, NULL, OPT_NOSCAN },
		{ "hide-names", no_argument, NULL, OPT_HIDE_NAMES },
		{ "csum-headers", no_argument, NULL, OPT_CSUM_HEADERS },
		{ "csum-items", no_argument, NULL, OPT_CSUM_ITEMS },
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct dump_tree_opts *o = ctx->opts;
	int c, ret;

	o->ctx.traverse = TRAVERSE_BFS;
	while ((c = getopt_long(argc, argv, "deb:rRut:", long_options, NULL)) != -1) {
		ret = dump_tree_opt(ctx, c, optarg);
		if (ret != CMD_PARSE_OK)
			return ret;
	}
	if (argc - optind < 1)
		return usage_error(ctx->cmd, "not enough arguments: an image is needed");
	if (argc - optind - 1 > CMD_MAX_DEVICES)
		return usage_error(ctx->cmd, "at most %d more devices", CMD_MAX_DEVICES);
	ctx->image_path = argv[optind];
	/* -d|--device means "device trees" here, as in btrfs-progs: more devices are arguments. */
	for (int i = optind + 1; i < argc; i++)
		ctx->devices[ctx->nr_devices++] = argv[i];
	/* the walk holds its path; a small cache is enough and keeps RSS low */
	ctx->cache_bytes = 8 << 20;
	ctx->quiet_log_tree = true;
	return CMD_PARSE_OK;
}

static void inspect_dump_tree_release(struct cmd_context *ctx)
{
	struct dump_tree_opts *o = ctx->opts;

	free(o->blocks);
}

static int inspect_dump_tree_run(struct cmd_context *cctx)
{
	struct dump_tree_opts *o = cctx->opts;
	struct dump_ctx *ctx = &o->ctx;
	const struct dump_args *a = &o->a;
	struct json_object *doc = NULL;
	int ret;

	ctx->fs = cctx->fs;
	ctx->opts.nodesize = ctx->fs->nodesize;
	ctx->opts.sectorsize = ctx->fs->sectorsize;
	ctx->opts.csum_size = ctx->fs->csum_size;
	ctx->opts.simple_quota = ctx->fs->incompat & BTRFS_FEATURE_INCOMPAT_SIMPLE_QUOTA;
	ctx->json = g_format == FORMAT_JSON;

	pt_out_init();
	if (ctx->json) {
		doc = json_doc_new();
		ctx->trees = json_object_new_array();
		json_object_object_add(doc, "trees", ctx->trees);
	} else {
		pt_out_str(DUMP_TREE_COMPAT_BANNER "\n");
	}

	if (o->nblocks)
		ret = dump_blocks(ctx, o->blocks, o->nblocks, o->follow);
	else
		ret = dump_all(ctx, a);

	if (ctx->json && !ctx->err) {
		const struct btrfs_super_block *sb = &ctx->fs->super;

		if (!o->nblocks && !(a->extent_only || a->device_only || a->uuid_only)) {
			json_object_object_add(doc, "total-bytes", json_u64(le64_to_cpu(sb->total_bytes)));
			json_object_object_add(doc, "bytes-used", json_u64(le64_to_cpu(sb->bytes_used)));
			json_object_object_add(doc, "uuid", json_uuid(sb->fsid));
		}
		json_doc_print(doc);
		doc = NULL;
	}
	if (doc)
		json_object_put(doc);
	pt_out_flush();
	/* Every failure of the dump is a tree that cannot be read, but memory. */
	if (ctx->err || ret)
		return exit_code(ret == -ENOMEM ? ret : -EUCLEAN, ERR_AT_RUN);
	if (ferror(stdout)) {
		error("cannot write the dump to stdout");
		return EXIT_PROBLEMS;
	}
	return EXIT_OK;
}

const struct cmd_struct cmd_struct_inspect_dump_tree = {
	.token = "dump-tree", .parse = inspect_dump_tree_parse, .run = inspect_dump_tree_run,
	.usagestr = cmd_inspect_dump_tree_usage, .flags = CMD_IMAGE_RO | CMD_MULTI_DEVICE,
	.opts_size = sizeof(struct dump_tree_opts), .release = inspect_dump_tree_release,
};
