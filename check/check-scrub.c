// SPDX-License-Identifier: GPL-2.0
/*
 * Offline scrub through the data pipeline (Documentation/design.rst section 2): each run
 * of csummed sectors becomes one read-only job without a consumer and
 * without a nonce, so the pipeline only reads large chunks and runs the
 * csum process callback on its worker threads.  Nothing is decrypted: the
 * csums cover the stored bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "check/check-scrub.h"
#include "crypto/csum.h"
#include "crypto/extent-io.h"

struct range_arg {
	const struct scrub_params *p;
	int mirror;
};

static int on_mismatch(struct extent_io *io, uint64_t logical, const uint8_t *found,
		       const uint8_t *expected, void *arg)
{
	struct range_arg *ra = arg;

	ra->p->bad(ra->p->arg, logical, ra->mirror, found, expected);
	return 0;
}

struct scrub_job {
	struct extent_io *io;
	struct extent_io_job *jobs;
	struct extent_io_csums *csums;
	struct range_arg *args;
	int ret;		/* of extent_io_start() */
};

static void scrub_free(struct scrub_job *s)
{
	extent_io_free(s->io);
	free(s->jobs);
	free(s->csums);
	free(s->args);
	free(s);
}

int scrub_start(const struct scrub_params *p, const struct scrub_range *r, size_t n,
		struct scrub_job **out, char *err, size_t errlen)
{
	struct extent_io_params params = {
		.fd = p->fd,
		.fds = p->fds,
		.nfds = p->fds ? p->nfds : 0,
		.dst_fd = -1,
		.unit_size = p->unit,
		.threads = p->threads,
		.process = extent_io_csum_process,
		.progress = p->progress,
		.progress_arg = p->progress_arg,
		.rebuild = p->rebuild,
		.rebuild_arg = p->rebuild_arg,
	};
	struct scrub_job *s = fault_calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s || !(s->jobs = fault_calloc(n + 1, sizeof(*s->jobs))) ||
	    !(s->csums = fault_calloc(n + 1, sizeof(*s->csums))) ||
	    !(s->args = fault_calloc(n + 1, sizeof(*s->args)))) {
		if (s)
			scrub_free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		s->args[i].p = p;
		s->args[i].mirror = r[i].mirror;
		s->csums[i].type = p->csum_type;
		s->csums[i].logical = r[i].logical;
		s->csums[i].count = r[i].len / p->unit;
		s->csums[i].expected = r[i].csums;
		s->csums[i].mismatch = on_mismatch;
		s->csums[i].arg = &s->args[i];
		s->jobs[i].len = r[i].len;
		s->jobs[i].flags = EXTENT_IO_READ;
		s->jobs[i].src.physical = r[i].physical;
		s->jobs[i].src.dev = r[i].dev;
		s->jobs[i].src.rebuild = r[i].rebuild;
		s->jobs[i].src.logical = r[i].logical;
		s->jobs[i].src.priv = &s->csums[i];
	}
	ret = extent_io_new(&s->io, &params);
	if (ret) {
		snprintf(err, errlen, "cannot start the data pipeline: %s", strerror(-ret));
		scrub_free(s);
		return ret;
	}
	if (n)
		s->ret = extent_io_start(s->io, s->jobs, n);
	*out = s;
	return 0;
}

int scrub_finish(struct scrub_job *s, uint64_t *bytes, char *err, size_t errlen)
{
	struct extent_io_stats st;
	int ret;

	if (bytes)
		*bytes = 0;
	if (!s)
		return 0;
	ret = s->ret ? s->ret : extent_io_wait(s->io);
	if (ret)
		snprintf(err, errlen, "data pipeline: %s", strerror(-ret));
	extent_io_get_stats(s->io, &st);
	if (bytes)
		*bytes = st.bytes_read;
	scrub_free(s);
	return ret;
}
