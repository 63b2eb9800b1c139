// SPDX-License-Identifier: GPL-2.0
/*
 * tree_check_image(): the tree-checker's rules over every block of an image,
 * each block once (snapshots share blocks), for the write commands to run
 * before their first write (see tree-check-image.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel-shared/tree-check-image.h"
#include "common/fault.h"
#include "kernel-shared/tree-checker.h"
#include "kernel-shared/disk-io.h"
#include "common/containers.h"

struct first_bad {
	char msg[FS_ERRMSG_SIZE];
	bool set;
};

static void keep_first(void *arg, const struct tree_block *b, int slot, const char *why)
{
	struct first_bad *f = arg;
	char key[96] = "";

	if (f->set)
		return;
	if (slot >= 0 && !tb_level(b)) {
		struct btrfs_key k;

		tb_item_key(b, slot, &k);
		snprintf(key, sizeof(key), " key (%llu %u %llu)", k.objectid, k.type, k.offset);
	}
	snprintf(f->msg, sizeof(f->msg), "%s %llu of tree %llu, slot %d%s: %s",
		 tb_level(b) ? "node" : "leaf", b->bytenr, tb_owner(b), slot, key, why);
	f->set = true;
}

struct pending_block {
	u64 bytenr, generation;
	struct btrfs_key first_key;
	int level;
	bool has_key;
};

/* Check every block of the tree at root once (seen: blocks done, shared with other trees). */
static int check_tree_blocks(struct fs_info *fs, const struct root_ref *root, struct u64map *seen)
{
	struct tree_check_report r;
	struct first_bad bad = { .set = false };
	struct pending_block *stack = NULL;
	size_t nr = 0, cap = 0;
	int ret = 0;

	r.bad = keep_first;
	r.arg = &bad;
	stack = fault_malloc(sizeof(*stack) * (cap = 64));
	if (!stack)
		return fs_err(fs, -ENOMEM, "out of memory");
	stack[nr++] = (struct pending_block){ root->bytenr, root->generation, { 0 }, root->level, false };
	while (nr && !ret) {
		struct pending_block pb = stack[--nr];
		struct block_check chk = { pb.level, pb.generation, pb.has_key ? &pb.first_key : NULL, 0 };
		struct tree_block *b;

		if (u64map_find(seen, pb.bytenr))
			continue;
		if (!u64map_insert(seen, pb.bytenr)) {
			ret = fs_err(fs, -ENOMEM, "out of memory");
			break;
		}
		ret = read_tree_block(fs, pb.bytenr, &chk, &b);
		if (ret)
			break;
		if (tree_check_block(fs, b, &r))
			ret = fs_err(fs, -EUCLEAN, "%s (the kernel refuses this block)", bad.msg);
		else if (tree_check_header(fs, b, root->objectid, bad.msg, sizeof(bad.msg)))
			ret = fs_err(fs, -EUCLEAN, "block %llu: %s", b->bytenr, bad.msg);
		for (u32 i = 0; !ret && tb_level(b) && i < tb_nritems(b); i++) {
			if (nr == cap) {
				struct pending_block *n = fault_realloc(stack, sizeof(*stack) * cap * 2);

				if (!n) {
					ret = fs_err(fs, -ENOMEM, "out of memory");
					break;
				}
				stack = n;
				cap *= 2;
			}
			stack[nr].bytenr = tb_node_blockptr(b, i);
			stack[nr].generation = tb_node_gen(b, i);
			stack[nr].level = tb_level(b) - 1;
			stack[nr].has_key = true;
			tb_node_key(b, i, &stack[nr].first_key);
			nr++;
		}
		tree_block_put(fs, b);
	}
	free(stack);
	return ret;
}

/*
 * The root of a live tree from the ROOT_ITEM at it, added to roots; dead
 * and half-dropped subvolumes hold freed blocks the kernel never reads, and
 * are left out.  0 or -ENOMEM.
 */
static int add_live_root(struct fs_info *fs, const struct key_iter *it, struct root_ref **roots,
			 size_t *nr, size_t *cap)
{
	struct btrfs_root_item ri;

	if (it->key.type != BTRFS_ROOT_ITEM_KEY || it->size < BTRFS_ROOT_ITEM_V0_SIZE)
		return 0;
	memset(&ri, 0, sizeof(ri));
	memcpy(&ri, it->ptr, it->size < sizeof(ri) ? it->size : sizeof(ri));
	if (!le32_to_cpu(ri.refs) || ri.drop_progress.objectid || ri.drop_progress.type)
		return 0;
	if (*nr == *cap) {
		struct root_ref *n = array_grow(*roots, cap, *nr, sizeof(**roots));

		if (!n)
			return fs_err(fs, -ENOMEM, "out of memory");
		*roots = n;
	}
	(*roots)[(*nr)++] = (struct root_ref){ it->key.objectid, le64_to_cpu(ri.bytenr),
					       le64_to_cpu(ri.generation), ri.level };
	return 0;
}

int tree_check_super(struct fs_info *fs)
{
	const char *why = tree_check_super_flags(le64_to_cpu(fs->super.flags), true);

	/* A seed device is not corrupt, only read-only: refused, not unreadable. */
	if (why)
		return fs_err(fs, le64_to_cpu(fs->super.flags) & BTRFS_SUPER_FLAG_SEEDING &&
				  !tree_check_super_flags(le64_to_cpu(fs->super.flags), false) ?
			      -EOPNOTSUPP : -EUCLEAN, "superblock flags 0x%llx: %s",
			      (unsigned long long)le64_to_cpu(fs->super.flags), why);
	if (fs->sys_chunk_mismatch)
		return fs_err(fs, -EUCLEAN,
			      "chunk %llu: the superblock's system chunk array and the chunk tree map it differently",
			      fs->sys_chunk_mismatch);
	return 0;
}

int tree_check_image(struct fs_info *fs)
{
	struct u64map seen;
	struct btrfs_key min = { 0, BTRFS_ROOT_ITEM_KEY, 0 };
	struct btrfs_key max = { (u64)-1, (u8)-1, (u64)-1 };
	struct root_ref *roots = NULL;
	size_t nr = 0, cap = 0;
	struct key_iter it;
	int ret = tree_check_super(fs);

	if (ret)
		return ret;
	u64map_init(&seen, 1);
	ret = check_tree_blocks(fs, &fs->chunk_root, &seen);

	if (!ret)
		ret = check_tree_blocks(fs, &fs->tree_root, &seen);
	/* The roots first, then their trees: the iterator holds blocks of the root tree. */
	if (!ret) {
		for (ret = key_iter_first(&it, fs, &fs->tree_root, &min, &max); ret == 0;
		     ret = key_iter_next(&it)) {
			ret = add_live_root(fs, &it, &roots, &nr, &cap);
			if (ret)
				break;
		}
		key_iter_release(&it);
	}
	ret = ret < 0 ? ret : 0;
	for (size_t i = 0; !ret && i < nr; i++)
		ret = check_tree_blocks(fs, &roots[i], &seen);
	free(roots);
	u64map_free(&seen);
	return ret;
}
