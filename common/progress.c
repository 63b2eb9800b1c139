// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <unistd.h>
#include <json-c/json.h>
#include "common/messages.h"
#include "common/progress.h"

int g_progress_fd = -1;

static double since(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) + (b->tv_nsec - a->tv_nsec) / 1e9;
}

void progress_init(struct progress *p, const char *command, const char *unit)
{
	p->command = command;
	p->unit = unit;
	p->tty = isatty(STDERR_FILENO) && g_verbose >= 0;
	p->active = p->tty || g_progress_fd >= 0;
	p->shown = false;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->last_tty = p->last_fd = p->start;
	p->last_tty.tv_sec--;	/* the terminal line appears with the first update */
	pthread_mutex_init(&p->lock, NULL);
}

static void show_tty(struct progress *p, uint64_t done, uint64_t total, double secs)
{
	bool bytes = p->unit[0] == 'b';
	double rate = secs > 0 ? done / secs : 0, scale = bytes ? 1 << 20 : 1;
	const char *u = bytes ? " MiB" : " files";

	if (total)
		fprintf(stderr, "\r%s: %.0f / %.0f%s  %.0f%s/s  ETA %.0f s   ", p->command,
			done / scale, total / scale, u, rate / scale, u,
			rate > 0 && total > done ? (total - done) / rate : 0.0);
	else
		fprintf(stderr, "\r%s: %.0f%s  %.0f%s/s  %.0f s   ", p->command, done / scale, u,
			rate / scale, u, secs);
	p->shown = true;
}

static void show_fd(struct progress *p, uint64_t done, uint64_t total, double secs, bool final)
{
	struct json_object *o = json_object_new_object();
	double rate = secs > 0 ? done / secs : 0;
	const char *s;

	json_object_object_add(o, "command", json_object_new_string(p->command));
	json_object_object_add(o, "done", json_object_new_uint64(done));
	json_object_object_add(o, "total", total ? json_object_new_uint64(total) : NULL);
	json_object_object_add(o, "unit", json_object_new_string(p->unit));
	json_object_object_add(o, "elapsed", json_object_new_double(secs));
	json_object_object_add(o, "eta", total && rate > 0 ?
			       json_object_new_double(total > done ? (total - done) / rate : 0) :
			       NULL);
	json_object_object_add(o, "final", json_object_new_boolean(final));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	/* A closed or bad descriptor must not stop the job: the report is dropped. */
	if (dprintf(g_progress_fd, "%s\n", s) < 0)
		g_progress_fd = -1;
	json_object_put(o);
}

void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
	struct timespec now;

	if (!p->active)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&p->lock);
	if (p->tty && since(&p->last_tty, &now) >= 0.2) {
		p->last_tty = now;
		show_tty(p, done, total, since(&p->start, &now));
	}
	if (g_progress_fd >= 0 && since(&p->last_fd, &now) >= 1.0) {
		p->last_fd = now;
		show_fd(p, done, total, since(&p->start, &now), false);
	}
	pthread_mutex_unlock(&p->lock);
}

void progress_cb(uint64_t done, uint64_t total, void *arg)
{
	progress_update(arg, done, total);
}

void progress_end(struct progress *p, uint64_t done, uint64_t total)
{
	struct timespec now;

	if (p->active) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		pthread_mutex_lock(&p->lock);
		if (p->shown) {
			show_tty(p, done, total, since(&p->start, &now));
			fputc('\n', stderr);
		}
		if (g_progress_fd >= 0)
			show_fd(p, done, total, since(&p->start, &now), true);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_destroy(&p->lock);
}
