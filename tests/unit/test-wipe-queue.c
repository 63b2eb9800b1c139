// SPDX-License-Identifier: GPL-2.0
/*
 * The background wipe (kernel-shared/wipe-queue.h) on a scratch mkfs image:
 * queued ranges end as holes that read as zeros, chunk_alloc() drains the
 * queue before it takes device space, and a wipe that fails is reported by
 * the next drain with its text, in the caller's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "kernel-shared/chunk-alloc.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/wipe-queue.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

#define RANGE (256ULL << 10)
#define NR_RANGES 3

/* The first unallocated device range of at least 4 ranges' room. */
static int first_hole(u32 dev, u64 start, u64 len, void *arg)
{
	u64 *at = arg;

	if (dev || len < (NR_RANGES + 1) * 2 * RANGE)
		return 0;
	*at = start;
	return 1;
}

/* Whether [off, off + len) of fd reads as zeros and holds no data (a hole). */
static bool is_hole(int fd, u64 off, u64 len)
{
	static u8 buf[RANGE];
	off_t data = lseek(fd, off, SEEK_DATA);

	if (len > sizeof(buf) || pread(fd, buf, len, off) != (ssize_t)len)
		return false;
	for (u64 i = 0; i < len; i++)
		if (buf[i])
			return false;
	return data < 0 || (u64)data >= off + len;
}

#define RELEASE_SECS 0.2

static void *release_later(void *arg)
{
	usleep(RELEASE_SECS * 1e6);
	wipe_queue_hold(arg, false);
	return NULL;
}

UNIT_TEST(wipe_queue_background_and_chunk_alloc_drain)
{
	static u8 pattern[RANGE];
	struct fs_info *fs = scratch_image_open();
	struct wipe_queue *q = NULL;
	struct trans *t = NULL;
	pthread_t th;
	double start;
	u64 at = 0;

	if (!fs)
		return;
	memset(pattern, 0xab, sizeof(pattern));
	CHECK_EQ_INT(trans_begin(fs, &t), 0);
	if (!t)
		goto out;
	CHECK_EQ_INT(chunk_for_each_unallocated(t, first_hole, &at), 1);
	if (!at)
		goto out;
	/* 2 * NR_RANGES ranges of "plaintext"; every other one is wiped. */
	for (int i = 0; i < 2 * NR_RANGES; i++)
		CHECK_EQ_INT(dev_pwrite(fs, 0, pattern, RANGE, at + i * RANGE), 0);
	CHECK_EQ_INT(wipe_queue_start(fs, &q), 0);
	if (!q)
		goto out;
	CHECK(fs->wipeq == q);
	/* Held: nothing is wiped until the releasing thread lets the worker go. */
	wipe_queue_hold(q, true);
	for (int i = 0; i < NR_RANGES; i++)
		CHECK_EQ_INT(wipe_queue_add(q, 0, at + 2 * i * RANGE, RANGE), 0);
	CHECK_EQ_INT(pthread_create(&th, NULL, release_later, q), 0);
	/* A new chunk may land on the queued ranges: it is made only after their wipe. */
	start = now_sec();
	CHECK_EQ_INT(chunk_alloc(t, BTRFS_BLOCK_GROUP_DATA, 1 << 20), 0);
	CHECK(now_sec() - start >= RELEASE_SECS * 0.9);
	CHECK(wipe_queue_done_bytes(q) == NR_RANGES * RANGE);
	pthread_join(th, NULL);
	for (int i = 0; i < NR_RANGES; i++) {
		static u8 back[RANGE];

		CHECK(is_hole(fs->devs[0].fd, at + 2 * i * RANGE, RANGE));
		/* Nothing beyond a queued range is touched. */
		CHECK(pread(fs->devs[0].fd, back, RANGE, at + (2 * i + 1) * RANGE) == (ssize_t)RANGE);
		CHECK(!memcmp(back, pattern, RANGE));
	}
	CHECK_EQ_INT(wipe_queue_drain(q), 0);
	CHECK_EQ_INT(wipe_queue_stop(q), 0);
	CHECK(fs->wipeq == NULL);
out:
	if (t)
		trans_abort(t);
	close_image(fs);
}

UNIT_TEST(wipe_queue_error_reaches_the_drain)
{
	static u8 pattern[RANGE];
	struct fs_info *fs = scratch_image_open();
	struct wipe_queue *q = NULL;
	char proc[64];
	int rw, ro;

	if (!fs)
		return;
	memset(pattern, 0xcd, sizeof(pattern));
	rw = fs->devs[0].fd;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", rw);
	ro = open(proc, O_RDONLY | O_CLOEXEC);
	CHECK(ro >= 0);
	if (ro < 0)
		goto out;
	CHECK_EQ_INT(wipe_queue_start(fs, &q), 0);
	/* Neither a hole nor zeros can go through a read-only descriptor. */
	fs->devs[0].fd = ro;
	CHECK_EQ_INT(wipe_queue_add(q, 0, 100ULL << 20, RANGE), 0);
	CHECK_EQ_INT(wipe_queue_drain(q), -EBADF);
	CHECK(strstr(fs_errmsg(fs), "wiping") != NULL);
	fs_clear_err(fs);
	/* Later ranges are refused with the first error, and the stop reports it too. */
	CHECK_EQ_INT(wipe_queue_add(q, 0, 101ULL << 20, RANGE), -EBADF);
	CHECK(strstr(fs_errmsg(fs), "wiping") != NULL);
	CHECK_EQ_INT(wipe_queue_stop(q), -EBADF);
	CHECK(fs->wipeq == NULL);
	fs->devs[0].fd = rw;
	close(ro);
	CHECK(wipe_queue_drain(NULL) == 0);
	CHECK(wipe_queue_stop(NULL) == 0);
out:
	close_image(fs);
}
