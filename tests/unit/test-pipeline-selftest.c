// SPDX-License-Identifier: GPL-2.0
/*
 * --pipeline-selftest: a 1 GiB round trip through crypto/extent-io.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "crypto/csum.h"
#include "crypto/extent-io.h"
#include "crypto/fscrypt-keys.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The plaintext of the byte range at logical address a: a function of the address. */
static void pattern_fill(uint8_t *buf, uint64_t a, uint32_t len)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t v = splitmix64((a + i) ^ 0x5eed);

		memcpy(buf + i, &v, 8);
	}
}

struct selftest {
	uint64_t size;
	uint64_t plain_bad;	/* consumer saw wrong plaintext (atomic) */
	uint64_t consumed;
	pthread_mutex_t lock;
	uint64_t reported[8];
	unsigned int nreported;
};

static int st_produce(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
		      uint8_t *buf, uint32_t len, void *priv)
{
	pattern_fill(buf, job->dst.logical + off, len);
	return 0;
}

static int st_consume(struct extent_io *io, const struct extent_io_job *job, uint64_t off,
		      const uint8_t *buf, uint32_t len, void *priv)
{
	struct selftest *t = priv;
	uint8_t want[4096];

	for (uint32_t i = 0; i < len; i += sizeof(want)) {
		uint32_t n = len - i < sizeof(want) ? len - i : (uint32_t)sizeof(want);

		pattern_fill(want, job->src.logical + off + i, n);
		if (memcmp(want, buf + i, n))
			__atomic_add_fetch(&t->plain_bad, 1, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&t->consumed, len, __ATOMIC_RELAXED);
	return 0;
}

static int st_mismatch(struct extent_io *io, uint64_t logical, const uint8_t *found,
		       const uint8_t *expected, void *arg)
{
	struct selftest *t = arg;

	/* Serialised by extent-io's report lock. */
	if (t->nreported < 8)
		t->reported[t->nreported] = logical;
	t->nreported++;
	return 0;
}

static void st_progress(uint64_t done, uint64_t total, void *arg)
{
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r%llu/%llu MiB ", (unsigned long long)(done >> 20),
			(unsigned long long)(total >> 20));
}

#define ST_FAIL(t, ...)								\
	do {									\
		printf("pipeline-selftest: FAILED: " __VA_ARGS__);		\
		printf("\n");							\
		(t)->failed = 1;						\
	} while (0)

/* The run: its extents, their csums, the pipeline and the image file. */
struct st_run {
	struct selftest t;
	uint64_t size, base;
	uint32_t unit;
	unsigned int njobs;
	struct extent_io_job *jobs;
	uint8_t (*nonces)[16];
	uint8_t *csums;
	struct extent_io_csums sums;
	struct extent_io *io;
	int fd, failed;
};

/* Returns 0, or 2 after a usage message. */
static int st_parse_args(int argc, char **argv, uint64_t *size, unsigned int *threads,
			 int *csum_type)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size-mib") == 0 && i + 1 < argc)
			*size = strtoull(argv[++i], NULL, 0) << 20;
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			*threads = (unsigned int)atoi(argv[++i]);
		else if (strcmp(argv[i], "--csum") == 0 && i + 1 < argc)
			*csum_type = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: unit-tests --pipeline-selftest [--size-mib N] [--threads N] [--csum TYPE]\n");
			return 2;
		}
	}
	if (*size < (16U << 20) || !csum_type_size(*csum_type)) {
		fprintf(stderr, "pipeline-selftest: --size-mib must be >= 16, --csum 0..3\n");
		return 2;
	}
	return 0;
}

/* Extents of 1 unit to 32 MiB, every fourth one plain, DUNs from 0. */
static int st_plan(struct st_run *r)
{
	uint64_t pos;

	r->jobs = calloc(r->size / r->unit, sizeof(*r->jobs));
	r->nonces = calloc(r->size / r->unit, sizeof(*r->nonces));
	r->sums.count = r->size / r->unit;
	r->sums.logical = r->base;
	r->csums = calloc(r->sums.count, csum_type_size(r->sums.type));
	r->sums.out = r->csums;
	if (!r->jobs || !r->nonces || !r->csums) {
		ST_FAIL(r, "out of memory");
		return -ENOMEM;
	}
	for (pos = 0; pos < r->size; r->njobs++) {
		unsigned int n = r->njobs;
		uint64_t x = splitmix64(n), len;

		len = (x % 8 == 0) ? r->unit : ((x >> 8) % (32ULL << 20) / r->unit + 1) * r->unit;
		if (len > r->size - pos)
			len = r->size - pos;
		for (int k = 0; k < 16; k++)
			r->nonces[n][k] = (uint8_t)(splitmix64(n * 16 + k + 1000) >> 7);
		r->jobs[n].len = len;
		r->jobs[n].dst.physical = pos;
		r->jobs[n].dst.logical = r->base + pos;
		r->jobs[n].dst.dun = 0;
		r->jobs[n].dst.nonce = n % 4 == 3 ? NULL : r->nonces[n];
		r->jobs[n].dst.priv = &r->sums;
		r->jobs[n].priv = &r->t;
		pos += len;
	}
	return 0;
}

/* 1. producer -> encrypt -> csum -> pwrite */
static int st_write(struct st_run *r)
{
	double t0;
	int ret;

	for (unsigned int i = 0; i < r->njobs; i++)
		r->jobs[i].flags = EXTENT_IO_WRITE;
	t0 = now_sec();
	ret = extent_io_run(r->io, r->jobs, r->njobs);
	printf("encrypt+csum+write: %.0f MiB/s\n", r->size / (now_sec() - t0) / 1048576);
	if (ret)
		ST_FAIL(r, "write run: %s", strerror(-ret));
	return ret;
}

/* 2. pread -> verify -> decrypt -> consumer */
static void st_read(struct st_run *r)
{
	double t0;
	int ret;

	r->sums.expected = r->csums;
	r->sums.out = NULL;
	r->sums.mismatch = st_mismatch;
	r->sums.arg = &r->t;
	for (unsigned int i = 0; i < r->njobs; i++) {
		r->jobs[i].flags = EXTENT_IO_READ;
		r->jobs[i].src = r->jobs[i].dst;
	}
	t0 = now_sec();
	ret = extent_io_run(r->io, r->jobs, r->njobs);
	printf("read+verify+decrypt: %.0f MiB/s\n", r->size / (now_sec() - t0) / 1048576);
	if (ret)
		ST_FAIL(r, "read run: %s", strerror(-ret));
	if (r->t.nreported)
		ST_FAIL(r, "%u csum mismatches on intact data", r->t.nreported);
	if (r->t.plain_bad || r->t.consumed != r->size)
		ST_FAIL(r, "round trip: %llu bad pieces, %llu of %llu bytes consumed",
			(unsigned long long)r->t.plain_bad, (unsigned long long)r->t.consumed,
			(unsigned long long)r->size);
}

/* 3. one flipped ciphertext byte: exactly its data unit is reported */
static void st_flip(struct st_run *r)
{
	struct selftest *t = &r->t;
	uint64_t flip_at, unit_logical;
	uint8_t b;
	int ret;

	flip_at = splitmix64((uint64_t)time(NULL)) % r->size;
	unit_logical = r->base + flip_at / r->unit * r->unit;
	if (pread(r->fd, &b, 1, (off_t)flip_at) != 1)
		ST_FAIL(r, "pread");
	b ^= 0x01;
	if (pwrite(r->fd, &b, 1, (off_t)flip_at) != 1)
		ST_FAIL(r, "pwrite");
	t->nreported = 0;
	t->consumed = 0;
	t->plain_bad = 0;
	ret = extent_io_run(r->io, r->jobs, r->njobs);
	if (ret)
		ST_FAIL(r, "verify run after the flip: %s", strerror(-ret));
	printf("flipped byte at offset %llu (logical %llu, unit logical %llu): %u report(s)",
	       (unsigned long long)flip_at, (unsigned long long)(r->base + flip_at),
	       (unsigned long long)unit_logical, t->nreported);
	for (unsigned int i = 0; i < t->nreported && i < 8; i++)
		printf(" %llu", (unsigned long long)t->reported[i]);
	printf("\n");
	if (t->nreported != 1 || t->reported[0] != unit_logical)
		ST_FAIL(r, "expected exactly one report, of logical %llu",
			(unsigned long long)unit_logical);
	if (t->plain_bad)
		ST_FAIL(r, "bad plaintext was consumed");
	if (t->consumed >= r->size || r->size - t->consumed > EXTENT_IO_DEFAULT_CHUNK)
		ST_FAIL(r, "%llu bytes consumed: more than the flipped chunk was dropped",
			(unsigned long long)t->consumed);
}

static int pipeline_selftest_main(int argc, char **argv)
{
	struct st_run *r;
	struct fscrypt_master_key mk;
	unsigned int threads = 0;
	uint64_t size = 1ULL << 30;
	int csum_type = CSUM_CRC32C, failed, ret;

	ret = st_parse_args(argc, argv, &size, &threads, &csum_type);
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r) {
		printf("pipeline-selftest: FAILED: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&r->t.lock, NULL);
	r->t.size = r->size = size;
	r->base = EIO_BASE_LOGICAL;
	r->unit = 4096;
	r->sums.type = csum_type;
	test_master(&mk);
	r->fd = temp_fd();
	if (r->fd < 0) {
		perror("pipeline-selftest: temporary file");
		free(r);
		return 1;
	}
	if (st_plan(r))
		goto out;
	ret = extent_io_new(&r->io, &(struct extent_io_params){
		.unit_size = r->unit, .dst_fd = -1, .fd = r->fd, .threads = threads,
		.key = &mk, .profile = FSCRYPT_PROFILE_V7,
		.contents_mode = FSCRYPT_MODE_AES_256_XTS, .process = extent_io_csum_process,
		.produce = st_produce, .consume = st_consume, .progress = st_progress });
	if (ret) {
		ST_FAIL(r, "extent_io_new: %s", strerror(-ret));
		goto out;
	}
	printf("pipeline-selftest: %llu MiB in %u extents, %u threads, csum %s\n",
	       (unsigned long long)(size >> 20), r->njobs, extent_io_threads(r->io),
	       csum_type_name(r->sums.type));
	if (st_write(r))
		goto out;
	st_read(r);
	st_flip(r);
out:
	failed = r->failed;
	if (!failed)
		printf("pipeline-selftest: OK\n");
	extent_io_free(r->io);
	fscrypt_master_key_wipe(&mk);
	free(r->jobs);
	free(r->nonces);
	free(r->csums);
	close(r->fd);
	pthread_mutex_destroy(&r->t.lock);
	free(r);
	return failed;
}

UNIT_MODE(pipeline, "--pipeline-selftest",
	  "--pipeline-selftest [--size-mib N] [--threads N] [--csum TYPE]", pipeline_selftest_main)
