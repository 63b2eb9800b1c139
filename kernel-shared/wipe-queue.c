// SPDX-License-Identifier: GPL-2.0
/*
 * The background wipe (wipe-queue.h): one worker thread takes ranges off a
 * queue and wipes them with wipe_physical(); the first error is kept, with
 * its text, for the next drain, and later ranges are then dropped (the
 * command fails anyway).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "common/containers.h"
#include "common/fault.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/wipe-queue.h"

struct wipe_queue {
	struct fs_info *fs;
	pthread_mutex_t lock;
	pthread_cond_t work;	/* a range was queued, or stop */
	pthread_cond_t idle;	/* a range was done */
	struct dev_range *v;	/* queued, taken from the front */
	size_t head, nr, cap;
	bool busy;		/* the worker is wiping one */
	bool stop;
	bool held;		/* wipe_queue_hold() */
	bool threaded;
	pthread_t worker;
	u64 done_bytes;
	int err;		/* the first error, 0 if none */
	char msg[FS_ERRMSG_SIZE];
};

/* One range, by the calling thread; on error the first text is kept. Called unlocked. */
static void wipe_one(struct wipe_queue *q, u32 dev, u64 phys, u64 len)
{
	int ret = wipe_physical(q->fs, dev, phys, len);

	pthread_mutex_lock(&q->lock);
	if (ret && !q->err) {
		q->err = ret;
		snprintf(q->msg, sizeof(q->msg), "%s", fs_errmsg(q->fs));
	}
	if (!ret)
		q->done_bytes += len;
	pthread_mutex_unlock(&q->lock);
}

static void *worker(void *arg)
{
	struct wipe_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct dev_range r;

		while ((q->head == q->nr || q->held) && !q->stop)
			pthread_cond_wait(&q->work, &q->lock);
		if (q->head == q->nr)
			break;
		r = q->v[q->head++];
		if (q->err) {
			/* Dropped: the run fails at its next drain. */
			pthread_cond_broadcast(&q->idle);
			continue;
		}
		q->busy = true;
		pthread_mutex_unlock(&q->lock);
		wipe_one(q, r.dev, r.offset, r.len);
		pthread_mutex_lock(&q->lock);
		q->busy = false;
		pthread_cond_broadcast(&q->idle);
	}
	pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int wipe_queue_start(struct fs_info *fs, struct wipe_queue **out)
{
	struct wipe_queue *q = fault_calloc(1, sizeof(*q));

	*out = NULL;
	if (!q)
		return fs_err(fs, -ENOMEM, "out of memory");
	q->fs = fs;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->idle, NULL);
	q->threaded = pthread_create(&q->worker, NULL, worker, q) == 0;
	fs->wipeq = q;
	*out = q;
	return 0;
}

/* The error kept by the queue, set as the calling thread's text; locked. */
static int queue_error(struct wipe_queue *q)
{
	return q->err ? fs_err(q->fs, q->err, "%s", q->msg) : 0;
}

int wipe_queue_add(struct wipe_queue *q, u32 dev, u64 phys, u64 len)
{
	struct dev_range *v;
	int ret;

	if (!q->threaded) {
		wipe_one(q, dev, phys, len);
		return queue_error(q);
	}
	pthread_mutex_lock(&q->lock);
	ret = queue_error(q);
	if (!ret && q->head == q->nr)
		q->head = q->nr = 0;	/* all taken: reuse the array from the front */
	v = ret ? NULL : array_grow(q->v, &q->cap, q->nr, sizeof(*q->v));
	if (!ret && !v)
		ret = fs_err(q->fs, -ENOMEM, "out of memory");
	if (!ret) {
		q->v = v;
		q->v[q->nr++] = (struct dev_range){ phys, len, dev };
		pthread_cond_signal(&q->work);
	}
	pthread_mutex_unlock(&q->lock);
	return ret;
}

int wipe_queue_drain(struct wipe_queue *q)
{
	int ret;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (q->threaded && (q->head < q->nr || q->busy))
		pthread_cond_wait(&q->idle, &q->lock);
	ret = queue_error(q);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

void wipe_queue_hold(struct wipe_queue *q, bool hold)
{
	pthread_mutex_lock(&q->lock);
	q->held = hold;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
}

u64 wipe_queue_done_bytes(struct wipe_queue *q)
{
	u64 n;

	pthread_mutex_lock(&q->lock);
	n = q->done_bytes;
	pthread_mutex_unlock(&q->lock);
	return n;
}

int wipe_queue_stop(struct wipe_queue *q)
{
	int ret;

	if (!q)
		return 0;
	ret = wipe_queue_drain(q);
	if (q->threaded) {
		pthread_mutex_lock(&q->lock);
		q->stop = true;
		pthread_cond_signal(&q->work);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->worker, NULL);
	}
	if (q->fs->wipeq == q)
		q->fs->wipeq = NULL;
	pthread_cond_destroy(&q->idle);
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->lock);
	free(q->v);
	free(q);
	return ret;
}
