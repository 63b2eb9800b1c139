// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the unit-test files (unit-helpers.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/disk-io.h"

void seq_bytes(uint8_t *p, size_t n, uint8_t first)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(first + i);
}

void test_master(struct fscrypt_master_key *mk)
{
	uint8_t raw[64];

	seq_bytes(raw, sizeof(raw), 0);
	CHECK_EQ_INT(fscrypt_master_key_init(mk, raw, sizeof(raw)), 0);
}

int temp_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/extcrypt-unit-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct fs_info *scratch_image_open(void)
{
	char path[64], cmd[256], errbuf[512];
	struct fs_info *fs = NULL;
	int fd;

	if (system("command -v mkfs.btrfs >/dev/null 2>&1 || test -x /usr/sbin/mkfs.btrfs")) {
		printf("    mkfs.btrfs not found (Debian package btrfs-progs): not run\n");
		return NULL;
	}
	snprintf(path, sizeof(path), "/tmp/extcrypt-unit-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return NULL;
	CHECK_EQ_INT(ftruncate(fd, 128 << 20), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "PATH=$PATH:/usr/sbin mkfs.btrfs -q -f -n 4096 -s 4096 %s "
		 ">/dev/null 2>&1", path);
	CHECK_EQ_INT(system(cmd), 0);
	CHECK_EQ_INT(open_image_rw(path, &fs, errbuf), 0);
	unlink(path);
	return fs;
}

bool scratch_tree_open(struct scratch_tree *s, u64 tree)
{
	memset(s, 0, sizeof(*s));
	s->fs = scratch_image_open();
	if (!s->fs)
		return false;
	CHECK_EQ_INT(trans_begin(s->fs, &s->t), 0);
	if (s->t)
		s->root = trans_get_root(s->t, tree);
	CHECK(s->root != NULL);
	return s->root != NULL;
}

void scratch_tree_close(struct scratch_tree *s)
{
	if (s->t)
		trans_abort(s->t);
	if (s->fs)
		close_image(s->fs);
}
