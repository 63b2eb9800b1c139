// SPDX-License-Identifier: GPL-2.0
/*
 * The engine's error texts (kernel-shared/, struct fs_errors in ctree.h):
 * every error path these tests can reach returns a negative errno and
 * leaves a non-empty fs_errmsg() (or open_image()'s errbuf): corrupt
 * superblock fields, corrupt tree blocks (checksum, bytenr, level, owner),
 * addresses outside every chunk, a read past the end of a truncated image,
 * and, in fault-injection builds, the failure of each allocation in turn
 * while opening an image and committing a transaction, which must say
 * "out of memory" with -ENOMEM.  The texts are per handle and per thread.
 * The image comes from mkfs.btrfs; without it the tests say so and pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/fault.h"
#include "crypto/csum.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "tests/unit/unit.h"

#define ERR_IMAGE_BYTES (128 << 20)

/* A fresh empty image with 4 KiB nodes at path (64 bytes); false if none. */
static bool err_mkfs(char *path)
{
	char cmd[256];
	int fd;

	if (system("command -v mkfs.btrfs >/dev/null 2>&1 || test -x /usr/sbin/mkfs.btrfs")) {
		printf("    mkfs.btrfs not found (Debian package btrfs-progs): not run\n");
		return false;
	}
	snprintf(path, 64, "/tmp/extcrypt-err-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return false;
	CHECK_EQ_INT(ftruncate(fd, ERR_IMAGE_BYTES), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "PATH=$PATH:/usr/sbin mkfs.btrfs -q -f -n 4096 -s 4096 %s "
		 ">/dev/null 2>&1", path);
	CHECK_EQ_INT(system(cmd), 0);
	return true;
}

static void err_pread(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0 && pread(fd, buf, len, off) == (ssize_t)len);
	if (fd >= 0)
		close(fd);
}

static void err_pwrite(const char *path, const void *buf, size_t len, off_t off)
{
	int fd = open(path, O_WRONLY);

	CHECK(fd >= 0 && pwrite(fd, buf, len, off) == (ssize_t)len);
	if (fd >= 0)
		close(fd);
}

/* A failed call: a negative errno and a text. */
#define CHECK_FAILED(ret, msg)							\
	do {									\
		CHECK((ret) < 0);						\
		if (!(msg)[0])							\
			unit_fail(__FILE__, __LINE__, "no error text for %s", #ret); \
	} while (0)

/* ---- superblock fields ------------------------------------------------ */

struct sb_case {
	const char *what;
	size_t off;		/* byte offset in the superblock */
	u64 value;
	int width;		/* 1, 2, 4 or 8 bytes, little endian */
	bool keep_csum;		/* leave the old checksum (its mismatch is the case) */
};

#define SB_OFF(f) offsetof(struct btrfs_super_block, f)

static const struct sb_case sb_cases[] = {
	{ "magic", SB_OFF(magic), 0x1234, 8, false },
	{ "checksum", SB_OFF(generation), 12345, 8, true },
	{ "csum_type", SB_OFF(csum_type), 77, 2, false },
	{ "bytenr", SB_OFF(bytenr), 4096, 8, false },
	{ "sectorsize", SB_OFF(sectorsize), 3000, 4, false },
	{ "nodesize", SB_OFF(nodesize), 1 << 20, 4, false },
	{ "sys_chunk_array_size", SB_OFF(sys_chunk_array_size), 5000, 4, false },
	{ "root alignment", SB_OFF(root), 4097, 8, false },
	{ "chunk root alignment", SB_OFF(chunk_root), 0, 8, false },
	{ "root level", SB_OFF(root_level), 9, 1, false },
	{ "total_bytes", SB_OFF(total_bytes), 0, 8, false },
	{ "generation", SB_OFF(generation), 0, 8, false },
	{ "root_dir_objectid", SB_OFF(root_dir_objectid), 7, 8, false },
	{ "incompat", SB_OFF(incompat_flags), 1ULL << 12, 8, false },
	{ "num_devices", SB_OFF(num_devices), 2, 8, false },
	{ "chunk root past the image", SB_OFF(chunk_root), 1ULL << 40, 8, false },
};

static void sb_apply(struct btrfs_super_block *sb, const struct sb_case *c)
{
	u8 *p = (u8 *)sb + c->off;
	u64 v = c->value;

	if (c->off == SB_OFF(incompat_flags))
		v |= le64_to_cpu(sb->incompat_flags);
	for (int i = 0; i < c->width; i++)
		p[i] = (u8)(v >> (8 * i));
	if (!c->keep_csum)
		csum_compute(le16_to_cpu(sb->csum_type), (u8 *)sb + BTRFS_CSUM_SIZE,
			     BTRFS_SUPER_INFO_SIZE - BTRFS_CSUM_SIZE, sb->csum);
}

UNIT_TEST(errors_superblock_fields)
{
	static struct btrfs_super_block good, bad;
	char path[64], errbuf[FS_ERRMSG_SIZE];
	struct open_args args = { .super_mirror = 0 };

	if (!err_mkfs(path))
		return;
	err_pread(path, &good, sizeof(good), btrfs_sb_offset(0));
	for (size_t i = 0; i < sizeof(sb_cases) / sizeof(sb_cases[0]); i++) {
		struct fs_info *fs = NULL;
		int ret;

		bad = good;
		sb_apply(&bad, &sb_cases[i]);
		err_pwrite(path, &bad, sizeof(bad), btrfs_sb_offset(0));
		errbuf[0] = 0;
		ret = open_image(path, &args, &fs, errbuf);
		if (ret >= 0 || !errbuf[0])
			unit_fail(__FILE__, __LINE__, "superblock %s: ret %d, text '%s'",
				  sb_cases[i].what, ret, errbuf);
		CHECK(fs == NULL);
		close_image(fs);
	}
	err_pwrite(path, &good, sizeof(good), btrfs_sb_offset(0));
	unlink(path);
}

/* ---- tree blocks -------------------------------------------------------- */

/* Rewrite the root tree's block with one header field changed, csum fixed. */
static void tb_corrupt(const char *path, u64 phys, u32 nodesize, size_t off, u64 value,
		       int width, bool fix_csum)
{
	u8 buf[4096];

	CHECK(nodesize == sizeof(buf));
	err_pread(path, buf, sizeof(buf), phys);
	for (int i = 0; i < width; i++)
		buf[off + i] = (u8)(value >> (8 * i));
	if (fix_csum)
		csum_compute(0, buf + BTRFS_CSUM_SIZE, sizeof(buf) - BTRFS_CSUM_SIZE, buf);
	err_pwrite(path, buf, sizeof(buf), phys);
}

#define HDR_OFF(f) offsetof(struct btrfs_header, f)

static void tb_corrupt_all(const char *path, const struct copy_loc *copy, int n, size_t off,
			   u64 value, int width, bool fix_csum)
{
	for (int i = 0; i < n; i++)
		tb_corrupt(path, copy[i].physical, 4096, off, value, width, fix_csum);
}

static void tb_restore_all(const char *path, const u8 *saved, const struct copy_loc *copy, int n)
{
	for (int i = 0; i < n; i++)
		err_pwrite(path, saved, 4096, copy[i].physical);
}

/* Open, read the root tree's root block with its parent's expectations. */
static int tb_read(const char *path, u64 owner, char *msg)
{
	struct fs_info *fs = NULL;
	struct tree_block *b = NULL;
	char errbuf[FS_ERRMSG_SIZE] = "";
	int ret = open_image(path, NULL, &fs, errbuf);

	if (ret) {
		snprintf(msg, FS_ERRMSG_SIZE, "%s", errbuf);
		return ret;
	}
	struct block_check check = { .level = fs->tree_root.level, .owner = owner };

	ret = read_tree_block(fs, fs->tree_root.bytenr, &check, &b);
	snprintf(msg, FS_ERRMSG_SIZE, "%s", ret ? fs_errmsg(fs) : "");
	tree_block_put(fs, b);
	close_image(fs);
	return ret;
}

UNIT_TEST(errors_tree_blocks)
{
	char path[64], msg[FS_ERRMSG_SIZE];
	u8 saved[4096];
	struct fs_info *fs = NULL;
	u64 root, phys;
	struct copy_loc copy[2] = { { 0, 0 }, { 0, 0 } };
	int ncopies = 0;
	u8 buf[16];
	int ret;

	if (!err_mkfs(path))
		return;
	CHECK_EQ_INT(open_image(path, NULL, &fs, msg), 0);
	if (!fs)
		return;
	root = fs->tree_root.bytenr;
	CHECK_EQ_INT(logical_to_physical(fs, root, 4096, &phys), 0);
	ncopies = num_copies(fs, root);
	CHECK(ncopies >= 1 && ncopies <= 2);
	for (int i = 0; i < ncopies; i++)
		CHECK_EQ_INT(map_copy(fs, root, 4096, i, &copy[i]), 0);
	CHECK_EQ_INT(map_copy(fs, root, 4096, ncopies, &(struct copy_loc){ 0, 0 }), -ENOENT);
	CHECK(copy[0].physical == phys);
	/* Addresses: unaligned, outside every chunk, a data chunk, unmapped. */
	ret = read_tree_block_raw(fs, root + 1, &(struct tree_block *){ NULL });
	CHECK_FAILED(ret, fs_errmsg(fs));
	fs_clear_err(fs);
	ret = read_tree_block_raw(fs, 1ULL << 50, &(struct tree_block *){ NULL });
	CHECK_FAILED(ret, fs_errmsg(fs));
	fs_clear_err(fs);
	CHECK(!fs_errmsg(fs)[0]);
	ret = read_logical(fs, 1ULL << 50, buf, sizeof(buf));
	CHECK_FAILED(ret, fs_errmsg(fs));
	fs_clear_err(fs);
	ret = logical_to_physical(fs, 1ULL << 50, 1, &(u64){ 0 });
	CHECK_FAILED(ret, fs_errmsg(fs));
	close_image(fs);

	/* Every copy (both of DUP metadata) gets the same damage: the read fails. */
	err_pread(path, saved, sizeof(saved), phys);
	CHECK_FAILED(tb_read(path, 999, msg), msg);			/* owner */
	tb_corrupt_all(path, copy, ncopies, 200, 0x5a, 1, false);	/* checksum */
	CHECK_FAILED(tb_read(path, 0, msg), msg);
	tb_restore_all(path, saved, copy, ncopies);
	tb_corrupt_all(path, copy, ncopies, HDR_OFF(bytenr), root + 4096, 8, true);
	CHECK_FAILED(tb_read(path, 0, msg), msg);
	tb_restore_all(path, saved, copy, ncopies);
	tb_corrupt_all(path, copy, ncopies, HDR_OFF(level), 9, 1, true);
	CHECK_FAILED(tb_read(path, 0, msg), msg);
	tb_restore_all(path, saved, copy, ncopies);
	tb_corrupt_all(path, copy, ncopies, HDR_OFF(level), 1, 1, true);	/* parent expects 0 */
	CHECK_FAILED(tb_read(path, 0, msg), msg);
	tb_restore_all(path, saved, copy, ncopies);
	tb_corrupt_all(path, copy, ncopies, HDR_OFF(nritems), 5000, 4, true);
	CHECK_FAILED(tb_read(path, 0, msg), msg);
	tb_restore_all(path, saved, copy, ncopies);
	CHECK_EQ_INT(tb_read(path, 0, msg), 0);

	/* An image cut short after it was opened: a short read, -EIO. */
	CHECK_EQ_INT(open_image(path, NULL, &fs, msg), 0);
	if (fs) {
		struct tree_block *b = NULL;

		CHECK_EQ_INT(truncate(path, phys), 0);
		ret = read_tree_block(fs, root, NULL, &b);
		CHECK_EQ_INT(ret, -EIO);
		CHECK_FAILED(ret, fs_errmsg(fs));
		close_image(fs);
	}
	unlink(path);
}

/* Open, read the root tree's root block, return the bad copies noted. */
static int tb_read_copies(const char *path, struct bad_copy *out, size_t *nr)
{
	struct fs_info *fs = NULL;
	struct tree_block *b = NULL;
	char errbuf[FS_ERRMSG_SIZE] = "";
	const struct bad_copy *v;
	int ret = open_image(path, NULL, &fs, errbuf);

	*nr = 0;
	if (ret)
		return ret;
	struct block_check check = { .level = fs->tree_root.level,
				     .generation = fs->tree_root.generation };

	ret = read_tree_block(fs, fs->tree_root.bytenr, &check, &b);
	/* Read again (a cached block, then a reread): noted once. */
	tree_block_put(fs, b);
	cache_forget(fs, fs->tree_root.bytenr);
	if (!ret)
		ret = read_tree_block(fs, fs->tree_root.bytenr, &check, &b);
	v = bad_copies(fs, nr);
	if (*nr)
		memcpy(out, v, sizeof(*v));
	tree_block_put(fs, b);
	close_image(fs);
	return ret;
}

/* DUP metadata: one bad copy of a tree block is read from the other. */
UNIT_TEST(errors_tree_block_mirror)
{
	char path[64], msg[FS_ERRMSG_SIZE];
	struct fs_info *fs = NULL;
	struct copy_loc copy[2];
	struct bad_copy bc;
	u8 saved[4096];
	size_t nr;
	u64 root;

	if (!err_mkfs(path))
		return;
	CHECK_EQ_INT(open_image(path, NULL, &fs, msg), 0);
	if (!fs)
		return;
	root = fs->tree_root.bytenr;
	if (num_copies(fs, root) != 2) {	/* mkfs made SINGLE metadata: nothing to test */
		close_image(fs);
		unlink(path);
		return;
	}
	CHECK_EQ_INT(map_copy(fs, root, 4096, 0, &copy[0]), 0);
	CHECK_EQ_INT(map_copy(fs, root, 4096, 1, &copy[1]), 0);
	CHECK(copy[0].physical != copy[1].physical);
	CHECK(copy[0].devid == le64_to_cpu(fs->super.dev_item.devid));
	close_image(fs);
	err_pread(path, saved, sizeof(saved), copy[0].physical);
	CHECK_EQ_INT(tb_read_copies(path, &bc, &nr), 0);
	CHECK_EQ_INT((int)nr, 0);
	for (int i = 0; i < 2; i++) {
		/* Copy i: a bad checksum, then a stale generation with a good checksum. */
		tb_corrupt(path, copy[i].physical, 4096, 200, 0x5a, 1, false);
		CHECK_EQ_INT(tb_read_copies(path, &bc, &nr), 0);
		CHECK_EQ_INT((int)nr, i == 0 ? 1 : 0);	/* copy 1 is never read when copy 0 is good */
		if (nr) {
			CHECK(bc.logical == root && bc.copy == 0 && bc.good_copy == 1);
			CHECK(bc.physical == copy[0].physical && bc.devid == copy[0].devid);
			CHECK(strstr(bc.reason, "checksum mismatch") != NULL);
		}
		err_pwrite(path, saved, sizeof(saved), copy[i].physical);
		tb_corrupt(path, copy[i].physical, 4096, HDR_OFF(generation), 0x7777, 8, true);
		CHECK_EQ_INT(tb_read_copies(path, &bc, &nr), 0);
		CHECK_EQ_INT((int)nr, i == 0 ? 1 : 0);
		if (nr)
			CHECK(strstr(bc.reason, "generation 30583, parent expects") != NULL);
		err_pwrite(path, saved, sizeof(saved), copy[i].physical);
	}
	unlink(path);
}

/* ---- per-thread texts ---------------------------------------------------- */

struct err_thread {
	struct fs_info *fs;
	int id;
	int bad;
};

static void *err_thread_fn(void *arg)
{
	struct err_thread *a = arg;
	char want[64];

	snprintf(want, sizeof(want), "thread %d", a->id);
	for (int i = 0; i < 2000; i++) {
		if (fs_err(a->fs, -EIO, "thread %d", a->id) != -EIO)
			a->bad++;
		sched_yield();
		if (strcmp(fs_errmsg(a->fs), want))
			a->bad++;
		fs_clear_err(a->fs);
		if (fs_errmsg(a->fs)[0])
			a->bad++;
	}
	fs_err(a->fs, -EIO, "thread %d", a->id);
	return NULL;
}

UNIT_TEST(errors_texts_per_thread_and_handle)
{
	char path[64], errbuf[FS_ERRMSG_SIZE];
	struct fs_info *fs = NULL, *fs2 = NULL;
	struct err_thread a[8];
	pthread_t th[8];

	if (!err_mkfs(path))
		return;
	CHECK_EQ_INT(open_image(path, NULL, &fs, errbuf), 0);
	CHECK_EQ_INT(open_image(path, NULL, &fs2, errbuf), 0);
	unlink(path);
	if (!fs || !fs2)
		goto out;
	CHECK(!fs_errmsg(fs)[0]);
	fs_err(fs, -EUCLEAN, "main");
	fs_err(fs2, -EUCLEAN, "other handle");
	for (int i = 0; i < 8; i++) {
		a[i] = (struct err_thread){ fs, i, 0 };
		CHECK_EQ_INT(pthread_create(&th[i], NULL, err_thread_fn, &a[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(a[i].bad, 0);
	}
	CHECK(!strcmp(fs_errmsg(fs), "main"));
	CHECK(!strcmp(fs_errmsg(fs2), "other handle"));
	fs_clear_err(fs);
	CHECK(!fs_errmsg(fs)[0]);
	CHECK(!strcmp(fs_errmsg(fs2), "other handle"));
out:
	close_image(fs);
	close_image(fs2);
}

/* ---- out of memory at each allocation ------------------------------------ */

#ifdef EXTCRYPT_FAULT_INJECTION
#define OOM_ITEMS 80	/* more than two leaves of 100-byte items */

/* Open the image, add items to its csum tree (leaf splits), commit. */
static int oom_run(const char *path, char *msg)
{
	struct fs_info *fs = NULL;
	struct trans *t = NULL;
	struct trans_root *root;
	u8 data[100] = { 0 };
	int ret;

	msg[0] = 0;
	ret = open_image_rw(path, &fs, msg);
	if (ret)
		return ret;
	ret = trans_begin(fs, &t);
	root = ret ? NULL : trans_get_root(t, BTRFS_CSUM_TREE_OBJECTID);
	if (!ret && !root)
		ret = trans_root_err(t);
	for (u32 i = 0; !ret && i < OOM_ITEMS; i++) {
		struct btrfs_key key = { 1000, BTRFS_TEMPORARY_ITEM_KEY, i };

		ret = insert_item(t, root, &key, data, sizeof(data));
	}
	if (!ret) {
		ret = trans_commit(t);
		t = NULL;
	}
	if (t)
		trans_abort(t);
	if (ret)
		snprintf(msg, FS_ERRMSG_SIZE, "%s", fs_errmsg(fs));
	close_image(fs);
	return ret;
}

UNIT_TEST(errors_out_of_memory_at_each_allocation)
{
	char path[64], msg[FS_ERRMSG_SIZE], snap[96], cmd[256];
	unsigned long long n;
	int ret;

	if (!err_mkfs(path))
		return;
	/* Each run works on the image as mkfs made it. */
	snprintf(snap, sizeof(snap), "%s.orig", path);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always %s %s", path, snap);
	CHECK_EQ_INT(system(cmd), 0);
	for (n = 1; n < 100000; n++) {
		bool fired;

		snprintf(cmd, sizeof(cmd), "cp --sparse=always %s %s", snap, path);
		CHECK_EQ_INT(system(cmd), 0);
		fault_alloc_arm(n);
		ret = oom_run(path, msg);
		fired = fault_alloc_fired();
		fault_alloc_arm(0);
		if (!fired) {
			CHECK_EQ_INT(ret, 0);
			break;
		}
		if (ret != -ENOMEM || strcmp(msg, "out of memory"))
			unit_fail(__FILE__, __LINE__, "allocation %llu failed: ret %d, text '%s'",
				  n, ret, msg);
	}
	printf("    %llu allocations failed in turn\n", n - 1);
	CHECK(n > 10);
	unlink(snap);
	unlink(path);
}
#endif
