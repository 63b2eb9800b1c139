// SPDX-License-Identifier: GPL-2.0
/*
 * Offline scrub through the data pipeline (design.md section 2): each run
 * of csummed sectors becomes one read-only job without a consumer and
 * without a nonce, so the pipeline only reads large chunks and runs the
 * csum process callback on its worker threads.  Nothing is decrypted: the
 * csums cover the stored bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmds/check-scrub.h"
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

int scrub_run(const struct scrub_params *p, const struct scrub_range *r, size_t n,
	      uint64_t *bytes, char *err, size_t errlen)
{
	struct extent_io_params params = {
		.fd = p->fd,
		.dst_fd = -1,
		.unit_size = p->unit,
		.threads = p->threads,
		.process = extent_io_csum_process,
	};
	struct extent_io *io = NULL;
	struct extent_io_job *jobs;
	struct extent_io_csums *csums;
	struct range_arg *args;
	struct extent_io_stats st;
	int ret;

	if (bytes)
		*bytes = 0;
	if (!n)
		return 0;
	jobs = calloc(n, sizeof(*jobs));
	csums = calloc(n, sizeof(*csums));
	args = calloc(n, sizeof(*args));
	if (!jobs || !csums || !args) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		args[i].p = p;
		args[i].mirror = r[i].mirror;
		csums[i].type = p->csum_type;
		csums[i].logical = r[i].logical;
		csums[i].count = r[i].len / p->unit;
		csums[i].expected = r[i].csums;
		csums[i].mismatch = on_mismatch;
		csums[i].arg = &args[i];
		jobs[i].len = r[i].len;
		jobs[i].flags = EXTENT_IO_READ;
		jobs[i].src.physical = r[i].physical;
		jobs[i].src.logical = r[i].logical;
		jobs[i].src.priv = &csums[i];
	}
	ret = extent_io_new(&io, &params);
	if (ret) {
		snprintf(err, errlen, "cannot start the data pipeline: %s", strerror(-ret));
		goto out;
	}
	ret = extent_io_run(io, jobs, n);
	if (ret)
		snprintf(err, errlen, "data pipeline: %s", strerror(-ret));
	extent_io_get_stats(io, &st);
	if (bytes)
		*bytes = st.bytes_read;
out:
	extent_io_free(io);
	free(jobs);
	free(csums);
	free(args);
	return ret;
}
