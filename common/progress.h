/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Progress of a long job (encrypt, decrypt, check --check-data-csum,
 * restore), shown two ways:
 *   - on a terminal: one line on stderr, rewritten in place at most five
 *     times a second ("\r... MiB / ... MiB  ... MiB/s  ETA ... s"), and
 *     ended with a newline; nothing when stderr is not a terminal or with -q;
 *   - with the global option --progress-fd N: JSON Lines on file descriptor
 *     N, at most one a second and always a last one with "final": true:
 *       {"command": "restore", "done": 123, "total": 456, "unit": "bytes",
 *        "elapsed": 1.5, "eta": 3.2, "final": false}
 *     "total" and "eta" are null when the total is not known beforehand.
 * Updates may come from several threads.
 */
#ifndef EXTCRYPT_PROGRESS_H
#define EXTCRYPT_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* --progress-fd N of the command line; -1: none. */
extern int g_progress_fd;

struct progress {
	const char *command;
	const char *unit;	/* "bytes" or "files" */
	bool tty;
	struct timespec start, last_tty, last_fd;
	pthread_mutex_t lock;
	bool active;		/* anything to show it on */
	bool shown;		/* a terminal line is on the screen */
};

/* Start; total 0 when it is not known. */
void progress_init(struct progress *p, const char *command, const char *unit);
/* done (and total, 0 if unknown) so far; cheap when nothing is due. */
void progress_update(struct progress *p, uint64_t done, uint64_t total);
/* progress_update() in the shape of a pipeline's progress callback (arg: the progress). */
void progress_cb(uint64_t done, uint64_t total, void *arg);
/* The last report, and the terminal line ended. */
void progress_end(struct progress *p, uint64_t done, uint64_t total);

#endif
