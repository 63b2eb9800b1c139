/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wiping device ranges in the background (Documentation/design.rst
 * section 3): a queue of ranges of the filesystem's devices that one
 * worker thread makes read as zeros with wipe_physical(), while the caller
 * goes on (the conversion engine: with its wipe of the free space left in
 * block groups).
 *
 * The ranges are free device space in the committed generation (the old
 * stripes of chunks a commit removed).  Free device space may be taken
 * again only by chunk_alloc(), and chunk_alloc() drains the queue before it
 * looks for room (fs->wipeq): a range is never handed out while its wipe is
 * still to come, so a wipe can never hit a new chunk.  A crash with ranges
 * still queued leaves plaintext in free space only, which the final wipe of
 * a re-run clears (as for an interrupted run without the queue).
 */
#ifndef EXTCRYPT_WIPE_QUEUE_H
#define EXTCRYPT_WIPE_QUEUE_H

#include "kernel-shared/ctree.h"

struct wipe_queue;

/*
 * Start the queue and its worker, and attach it to fs (fs->wipeq); 0 or
 * -ENOMEM.  When no thread can be started, the queue still works: every
 * range is wiped at once, in wipe_queue_add().
 */
int wipe_queue_start(struct fs_info *fs, struct wipe_queue **out);
/*
 * Queue a range: physical offset and length on device dev (index in
 * fs->devs).  0, -ENOMEM, or the error of an earlier wipe (fs_errmsg(fs)
 * set).
 */
int wipe_queue_add(struct wipe_queue *q, u32 dev, u64 phys, u64 len);
/*
 * Wait until every queued range is wiped (q may be NULL: 0).  0, or the
 * first wipe error with fs_errmsg(fs) set for the calling thread.
 */
int wipe_queue_drain(struct wipe_queue *q);
/*
 * Tests: while held, the worker takes no range (a drain waits for the
 * release), so that a test can show who waits for the queue.
 */
void wipe_queue_hold(struct wipe_queue *q, bool hold);
/* Bytes wiped so far (ranges done, not queued). */
u64 wipe_queue_done_bytes(struct wipe_queue *q);
/*
 * Drain, stop the worker, detach from fs and free; NULL is allowed.
 * Returns what wipe_queue_drain() returns.
 */
int wipe_queue_stop(struct wipe_queue *q);

#endif
