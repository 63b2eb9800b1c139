// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of crypto/extent-io, the data pipeline: small exact cases.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "crypto/csum.h"
#include "crypto/extent-io.h"
#include "crypto/fscrypt-keys.h"
#include "crypto/xts.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

#define EIO_UNIT 4096


struct mismatch_log {
	uint64_t logical[16];
	unsigned int n;
};

static int log_mismatch(struct extent_io *io, uint64_t logical, const uint8_t *found,
			const uint8_t *expected, void *arg)
{
	struct mismatch_log *log = arg;

	if (log->n < 16)
		log->logical[log->n] = logical;
	log->n++;
	return 0;
}

static int fail_process(struct extent_io *io, const uint8_t *buf, uint64_t logical,
			uint32_t len, void *priv)
{
	return priv ? -EL2HLT : 0;
}

enum { SMALL_UNITS = 16, SMALL_JOBS = 3 };
#define SMALL_LEN ((size_t)SMALL_UNITS * EIO_UNIT)

/* The state the phases of extent_io_small() share. */
struct eio_small {
	int fd;
	struct fscrypt_master_key mk;
	uint8_t nonce[SMALL_JOBS][16];
	uint8_t *plain, *back, *raw;
	uint8_t csums[SMALL_JOBS * SMALL_UNITS * 4];
	struct extent_io_csums sink;
	struct extent_io_params p;
	struct extent_io_job jobs[SMALL_JOBS];
	struct mismatch_log log;
	struct extent_io *io;
};

/* Write: job 1 is plain, jobs 0 and 2 encrypted, DUN starting at 0 and 5. */
static void small_write(struct eio_small *e)
{
	const size_t len = SMALL_LEN;

	memset(e->jobs, 0, sizeof(e->jobs));
	for (int j = 0; j < SMALL_JOBS; j++) {
		seq_bytes(e->nonce[j], 16, (uint8_t)(0x10 * j + 1));
		e->jobs[j].len = len;
		e->jobs[j].flags = EXTENT_IO_WRITE;
		e->jobs[j].dst.physical = j * len;
		e->jobs[j].dst.logical = EIO_BASE_LOGICAL + j * len;
		e->jobs[j].dst.dun = j == 2 ? 5 : 0;
		e->jobs[j].dst.nonce = j == 1 ? NULL : e->nonce[j];
		e->jobs[j].dst.priv = &e->sink;
		e->jobs[j].mem = e->plain + j * len;
	}
	CHECK_EQ_INT(extent_io_run(e->io, e->jobs, SMALL_JOBS), 0);
}

/* What landed is XTS under the context-9 key at the right DUNs, and the csums cover it. */
static void small_check_written(struct eio_small *e)
{
	const size_t len = SMALL_LEN;
	uint8_t key[64], want[SMALL_UNITS * 4];
	struct xts_ctx *x;

	for (int j = 0; j < SMALL_JOBS; j++) {
		CHECK_EQ_INT(pread(e->fd, e->raw, len, (off_t)(j * len)), (ssize_t)len);
		if (j == 1) {
			CHECK(memcmp(e->raw, e->plain + j * len, len) == 0);
		} else {
			CHECK_EQ_INT(fscrypt_derive_extent_key(&e->mk, FSCRYPT_PROFILE_V7, 1,
							       e->nonce[j], key, NULL), 0);
			CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
			if (x) {
				CHECK_EQ_INT(xts_encrypt(x, j == 2 ? 5 : 0, e->plain + j * len,
							 e->back, EIO_UNIT, SMALL_UNITS), 0);
				CHECK(memcmp(e->raw, e->back, len) == 0);
				xts_ctx_free(x);
			}
		}
		csum_batch(CSUM_CRC32C, e->raw, EIO_UNIT, SMALL_UNITS, want);
		CHECK(memcmp(e->csums + j * SMALL_UNITS * 4, want, sizeof(want)) == 0);
	}
}

/* Read back through verify + decrypt into memory. */
static void small_read(struct eio_small *e)
{
	e->sink.expected = e->csums;
	e->sink.out = NULL;
	e->sink.mismatch = log_mismatch;
	e->sink.arg = &e->log;
	for (int j = 0; j < SMALL_JOBS; j++) {
		e->jobs[j].flags = EXTENT_IO_READ;
		e->jobs[j].src = e->jobs[j].dst;
		e->jobs[j].mem = e->back + j * SMALL_LEN;
	}
	memset(e->back, 0, SMALL_JOBS * SMALL_LEN);
	CHECK_EQ_INT(extent_io_run(e->io, e->jobs, SMALL_JOBS), 0);
	CHECK(memcmp(e->back, e->plain, SMALL_JOBS * SMALL_LEN) == 0);
	CHECK_EQ_INT(e->log.n, 0);
}

/* One flipped ciphertext byte: exactly that unit is reported, its chunk dropped. */
static void small_flipped_byte(struct eio_small *e)
{
	const size_t len = SMALL_LEN;
	off_t where = (off_t)(2 * len + 7 * EIO_UNIT + 123);
	uint8_t b;

	CHECK_EQ_INT(pread(e->fd, &b, 1, where), 1);
	b ^= 0x40;
	CHECK_EQ_INT(pwrite(e->fd, &b, 1, where), 1);
	memset(e->back, 0, SMALL_JOBS * len);
	CHECK_EQ_INT(extent_io_run(e->io, e->jobs, SMALL_JOBS), 0);
	CHECK_EQ_INT(e->log.n, 1);
	CHECK_EQ_INT(e->log.logical[0], EIO_BASE_LOGICAL + 2 * len + 7 * EIO_UNIT);
	/* Chunks are 3 units: units 6..8 of job 2 were dropped, the rest decrypted. */
	CHECK(memcmp(e->back, e->plain, 2 * len + 6 * EIO_UNIT) == 0);
	CHECK(memcmp(e->back + 2 * len + 9 * EIO_UNIT, e->plain + 2 * len + 9 * EIO_UNIT,
		     len - 9 * EIO_UNIT) == 0);
	b ^= 0x40;
	CHECK_EQ_INT(pwrite(e->fd, &b, 1, where), 1);
	/* Without a mismatch handler the run stops with -EBADMSG. */
	b ^= 0x40;
	CHECK_EQ_INT(pwrite(e->fd, &b, 1, where), 1);
	e->sink.mismatch = NULL;
	CHECK_EQ_INT(extent_io_run(e->io, e->jobs, SMALL_JOBS), -EBADMSG);
	b ^= 0x40;
	CHECK_EQ_INT(pwrite(e->fd, &b, 1, where), 1);
	e->sink.mismatch = log_mismatch;
}

/* Copy: job 0 re-encrypted under a new nonce to a new place (copy-on-write). */
static void small_copy(struct eio_small *e)
{
	const size_t len = SMALL_LEN;
	uint8_t new_nonce[16], csums2[SMALL_UNITS * 4];
	struct extent_io_csums sink2 = { .type = CSUM_CRC32C,
					 .logical = EIO_BASE_LOGICAL + 3 * len,
					 .count = SMALL_UNITS, .out = csums2 };
	struct extent_io_job cp = e->jobs[0];

	seq_bytes(new_nonce, 16, 0xe0);
	cp.flags = EXTENT_IO_READ | EXTENT_IO_WRITE;
	cp.mem = NULL;
	cp.dst.physical = 3 * len;
	cp.dst.logical = EIO_BASE_LOGICAL + 3 * len;
	cp.dst.dun = 0;
	cp.dst.nonce = new_nonce;
	cp.dst.priv = &sink2;
	CHECK_EQ_INT(extent_io_run(e->io, &cp, 1), 0);
	cp.flags = EXTENT_IO_READ;
	cp.src = cp.dst;
	sink2.expected = csums2;
	sink2.out = NULL;
	cp.mem = e->back;
	memset(e->back, 0, len);
	CHECK_EQ_INT(extent_io_run(e->io, &cp, 1), 0);
	CHECK(memcmp(e->back, e->plain, len) == 0);
}

/* Malformed jobs and errors; then the run's statistics. */
static void small_bad_jobs(struct eio_small *e)
{
	struct extent_io_job bad = e->jobs[0];
	struct extent_io_stats st;

	bad.len = EIO_UNIT + 1;
	CHECK_EQ_INT(extent_io_run(e->io, &bad, 1), -EINVAL);
	bad.len = EIO_UNIT;
	bad.flags = 0;
	CHECK_EQ_INT(extent_io_run(e->io, &bad, 1), -EINVAL);
	bad.flags = EXTENT_IO_READ;
	bad.src.physical = 1ULL << 40;	/* beyond the end of the file */
	CHECK_EQ_INT(extent_io_run(e->io, &bad, 1), -EIO);
	bad.src.physical = 0;
	bad.src.logical = EIO_BASE_LOGICAL - EIO_UNIT;	/* outside the csums */
	CHECK_EQ_INT(extent_io_run(e->io, &bad, 1), -ERANGE);

	extent_io_get_stats(e->io, &st);
	CHECK(st.bytes_written == 4 * SMALL_LEN);
	CHECK(st.chunks_dropped >= 1);
	CHECK(st.keys_derived >= 3);
}

/* A process error stops the run and is returned; reads past EOF are -EIO. */
static void small_process_error(struct eio_small *e)
{
	struct extent_io_job j = e->jobs[0];

	extent_io_free(e->io);
	e->io = NULL;
	e->p.process = fail_process;
	CHECK_EQ_INT(extent_io_new(&e->io, &e->p), 0);
	if (!e->io)
		return;
	j.src.priv = (void *)1;
	CHECK_EQ_INT(extent_io_run(e->io, &j, 1), -EL2HLT);
	j.src.priv = NULL;
	j.src.physical = 1ULL << 40;
	CHECK_EQ_INT(extent_io_run(e->io, &j, 1), -EIO);
	j.src.physical = 0;
	j.src.nonce = e->nonce[0];
	CHECK_EQ_INT(extent_io_run(e->io, &j, 1), 0);
	CHECK(memcmp(e->back, e->plain, SMALL_LEN) == 0);
}

static void extent_io_small(unsigned int threads)
{
	struct eio_small *e = calloc(1, sizeof(*e));

	CHECK(e != NULL);
	if (!e)
		return;
	e->fd = temp_fd();
	test_master(&e->mk);
	e->sink = (struct extent_io_csums){ .type = CSUM_CRC32C, .logical = EIO_BASE_LOGICAL,
					    .count = SMALL_JOBS * SMALL_UNITS, .out = e->csums };
	e->p = (struct extent_io_params){ .unit_size = EIO_UNIT, .threads = threads,
					  .chunk_size = 3 * EIO_UNIT, .key_cache = 2,
					  .key = &e->mk, .profile = FSCRYPT_PROFILE_V7,
					  .contents_mode = FSCRYPT_MODE_AES_256_XTS,
					  .process = extent_io_csum_process, .dst_fd = -1,
					  .fd = e->fd };
	e->plain = malloc(SMALL_JOBS * SMALL_LEN);
	e->back = malloc(SMALL_JOBS * SMALL_LEN);
	e->raw = malloc(SMALL_LEN);
	CHECK(e->fd >= 0 && e->plain && e->back && e->raw);
	if (e->fd < 0 || !e->plain || !e->back || !e->raw)
		goto out;
	for (size_t i = 0; i < SMALL_JOBS * SMALL_LEN; i++)
		e->plain[i] = (uint8_t)(i * 2654435761U >> 13);
	CHECK_EQ_INT(extent_io_new(&e->io, &e->p), 0);
	if (!e->io)
		goto out;
	CHECK_EQ_INT(extent_io_threads(e->io), threads);

	small_write(e);
	small_check_written(e);
	small_read(e);
	small_flipped_byte(e);
	small_copy(e);
	small_bad_jobs(e);
	small_process_error(e);
out:
	extent_io_free(e->io);
	fscrypt_master_key_wipe(&e->mk);
	free(e->plain);
	free(e->back);
	free(e->raw);
	if (e->fd >= 0)
		close(e->fd);
	free(e);
}

UNIT_TEST(extent_io_one_thread)
{
	extent_io_small(1);
}

UNIT_TEST(extent_io_three_threads)
{
	extent_io_small(3);
}

/*
 * Small jobs share chunks ("gangs"): copies whose destinations follow each
 * other go out in one write even when their sources are scattered; one bad
 * source csum drops only its own job; start/wait run in the background.
 */
/* A job whose copy was never written: the file is still a hole (or ends) there. */
static void gang_check_hole(int fd, uint8_t *raw, const struct extent_io_job *job)
{
	ssize_t got = pread(fd, raw, job->len, (off_t)job->dst.physical);

	for (ssize_t i = 0; i < got; i++)
		CHECK(raw[i] == 0);
}

/*
 * A job's copy on disk is the XTS ciphertext of its source (plain) under the
 * job's extent key at DUN 0, and sums (4 bytes per unit) are its crc32c.
 */
static void gang_check_copy(int fd, uint8_t *raw, const struct fscrypt_master_key *mk,
			    const struct extent_io_job *job, const uint8_t *plain,
			    const uint8_t *sums)
{
	size_t len = job->len, units = len / EIO_UNIT;
	ssize_t got = pread(fd, raw, len, (off_t)job->dst.physical);
	uint8_t key[64], want[4];
	struct xts_ctx *x;

	CHECK_EQ_INT(got, (ssize_t)len);
	CHECK_EQ_INT(fscrypt_derive_extent_key(mk, FSCRYPT_PROFILE_V7, 1, job->dst.nonce, key,
					       NULL), 0);
	CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
	if (x) {
		uint8_t ct[2 * EIO_UNIT];

		CHECK_EQ_INT(xts_encrypt(x, 0, plain, ct, EIO_UNIT, units), 0);
		CHECK(memcmp(raw, ct, len) == 0);
		xts_ctx_free(x);
	}
	for (size_t u = 0; u < units; u++) {
		csum_batch(CSUM_CRC32C, raw + u * EIO_UNIT, EIO_UNIT, 1, want);
		CHECK(memcmp(sums + u * 4, want, 4) == 0);
	}
}

static void extent_io_gangs(unsigned int threads)
{
	enum { N = 24 };
	const size_t area = 64 * EIO_UNIT;	/* sources in [0, area), copies after */
	struct fscrypt_master_key mk;
	uint8_t *plain, *raw, nonce[N][16];
	uint8_t src_sums[N * 2 * 4], dst_sums[N * 2 * 4];
	struct extent_io_csums vin[N], vout[N];
	struct extent_io_params p = { .unit_size = EIO_UNIT, .threads = threads,
				      .chunk_size = 8 * EIO_UNIT, .key = &mk,
				      .profile = FSCRYPT_PROFILE_V7,
				      .contents_mode = FSCRYPT_MODE_AES_256_XTS,
				      .process = extent_io_csum_process, .dst_fd = -1 };
	struct extent_io_job jobs[N];
	struct mismatch_log log = { .n = 0 };
	struct extent_io *io = NULL;
	uint64_t src_off[N], dst = area, units[N];
	int fd = temp_fd();

	test_master(&mk);
	plain = malloc(area);
	raw = malloc(2 * EIO_UNIT);
	CHECK(fd >= 0 && plain && raw);
	if (fd < 0 || !plain || !raw)
		goto out;
	for (size_t i = 0; i < area; i++)
		plain[i] = (uint8_t)(i * 40503U >> 7);
	CHECK_EQ_INT(pwrite(fd, plain, area, 0), (ssize_t)area);
	p.fd = fd;
	CHECK_EQ_INT(extent_io_new(&io, &p), 0);
	if (!io)
		goto out;
	memset(jobs, 0, sizeof(jobs));
	for (int j = 0; j < N; j++) {
		/* 1 or 2 units each, sources in reverse order with gaps, copies packed */
		units[j] = 1 + (j % 3 == 0);
		src_off[j] = (uint64_t)(N - 1 - j) * 2 * EIO_UNIT;
		csum_batch(CSUM_CRC32C, plain + src_off[j], EIO_UNIT, units[j], src_sums + j * 8);
		seq_bytes(nonce[j], 16, (uint8_t)(7 * j + 3));
		vin[j] = (struct extent_io_csums){ .type = CSUM_CRC32C,
						   .logical = EIO_BASE_LOGICAL + src_off[j],
						   .count = units[j], .expected = src_sums + j * 8,
						   .mismatch = log_mismatch, .arg = &log };
		vout[j] = (struct extent_io_csums){ .type = CSUM_CRC32C,
						    .logical = EIO_BASE_LOGICAL + dst,
						    .count = units[j], .out = dst_sums + j * 8 };
		jobs[j].len = units[j] * EIO_UNIT;
		jobs[j].flags = EXTENT_IO_READ | EXTENT_IO_WRITE;
		jobs[j].src = (struct extent_io_loc){ src_off[j], EIO_BASE_LOGICAL + src_off[j], 0,
						      NULL, &vin[j] };
		jobs[j].dst = (struct extent_io_loc){ dst, EIO_BASE_LOGICAL + dst, 0, nonce[j],
						      &vout[j] };
		dst += jobs[j].len;
	}
	/* Job 5's source is corrupt on disk: its copy is not written, the others are. */
	src_sums[5 * 8] ^= 1;
	CHECK_EQ_INT(extent_io_start(io, jobs, N), 0);
	CHECK_EQ_INT(extent_io_run(io, jobs, 1), -EBUSY);
	CHECK_EQ_INT(extent_io_wait(io), 0);
	CHECK_EQ_INT(extent_io_wait(io), 0);	/* nothing running: nothing to wait for */
	CHECK_EQ_INT(log.n, 1);
	CHECK_EQ_INT(log.logical[0], EIO_BASE_LOGICAL + src_off[5]);
	for (int j = 0; j < N; j++) {
		if (j == 5)
			gang_check_hole(fd, raw, &jobs[j]);
		else
			gang_check_copy(fd, raw, &mk, &jobs[j], plain + src_off[j],
					dst_sums + j * 8);
	}
out:
	extent_io_free(io);
	fscrypt_master_key_wipe(&mk);
	free(plain);
	free(raw);
	if (fd >= 0)
		close(fd);
}

UNIT_TEST(extent_io_gangs_one_thread)
{
	extent_io_gangs(1);
}

UNIT_TEST(extent_io_gangs_two_threads)
{
	extent_io_gangs(2);
}

UNIT_TEST(extent_io_bad_params)
{
	struct extent_io_params p = { .fd = 0, .unit_size = 4000, .dst_fd = -1 };
	struct extent_io *io;

	CHECK_EQ_INT(extent_io_new(&io, &p), -EINVAL);
	p.unit_size = 4096;
	p.chunk_size = 100;
	CHECK_EQ_INT(extent_io_new(&io, &p), -EINVAL);
	p.chunk_size = 0;
	p.fd = -1;
	CHECK_EQ_INT(extent_io_new(&io, &p), -EINVAL);
	p.fd = 0;
	p.threads = 2;
	CHECK_EQ_INT(extent_io_new(&io, &p), 0);
	extent_io_free(io);
}

/*
 * A key set (params.keys): each side that names its key by identifier
 * (loc.key_id) is read with that key; an identifier none of the keys has
 * is -ENOKEY before anything is done.  Jobs 0 and 1 are written under keys
 * A and B (loc.key), checked against XTS under each key's extent key.
 */
UNIT_TEST(extent_io_key_set)
{
	enum { UNITS = 3 };
	const size_t len = UNITS * EIO_UNIT;
	struct fscrypt_master_key ka, kb, kc;
	const struct fscrypt_master_key *set[2] = { &kb, &ka };
	uint8_t raw_b[64], raw_c[64], nonce[2][16], key[64], *plain = malloc(2 * len);
	uint8_t *back = malloc(2 * len), *ct = malloc(len);
	struct extent_io_params p = { .unit_size = EIO_UNIT, .threads = 2, .dst_fd = -1,
				      .keys = set, .nr_keys = 2, .profile = FSCRYPT_PROFILE_V7,
				      .contents_mode = FSCRYPT_MODE_AES_256_XTS };
	struct extent_io_job jobs[2];
	struct extent_io *io = NULL;
	struct xts_ctx *x;
	int fd = temp_fd();

	test_master(&ka);
	seq_bytes(raw_b, 64, 0x40);
	seq_bytes(raw_c, 64, 0x80);
	CHECK_EQ_INT(fscrypt_master_key_init(&kb, raw_b, 64), 0);
	CHECK_EQ_INT(fscrypt_master_key_init(&kc, raw_c, 64), 0);
	CHECK(fd >= 0 && plain && back && ct);
	if (fd < 0 || !plain || !back || !ct)
		goto out;
	p.fd = fd;
	seq_bytes(plain, 2 * len, 7);
	CHECK_EQ_INT(extent_io_new(&io, &p), 0);
	if (!io)
		goto out;
	memset(jobs, 0, sizeof(jobs));
	for (int j = 0; j < 2; j++) {
		seq_bytes(nonce[j], 16, (uint8_t)(0x21 * j + 5));
		jobs[j].len = len;
		jobs[j].flags = EXTENT_IO_WRITE;
		jobs[j].dst = (struct extent_io_loc){ j * len, EIO_BASE_LOGICAL + j * len, 0,
						      nonce[j], NULL, j ? &kb : &ka };
		jobs[j].mem = plain + j * len;
	}
	CHECK_EQ_INT(extent_io_run(io, jobs, 2), 0);
	for (int j = 0; j < 2; j++) {
		CHECK_EQ_INT(fscrypt_derive_extent_key(j ? &kb : &ka, FSCRYPT_PROFILE_V7, 1,
						       nonce[j], key, NULL), 0);
		CHECK_EQ_INT(xts_ctx_new(&x, key, 64), 0);
		CHECK_EQ_INT(pread(fd, back, len, (off_t)(j * len)), (ssize_t)len);
		if (x) {
			CHECK_EQ_INT(xts_encrypt(x, 0, plain + j * len, ct, EIO_UNIT, UNITS), 0);
			CHECK(memcmp(back, ct, len) == 0);
			xts_ctx_free(x);
		}
		jobs[j].flags = EXTENT_IO_READ;
		jobs[j].src = jobs[j].dst;
		jobs[j].src.key = NULL;
		jobs[j].src.key_id = (j ? &kb : &ka)->identifier;
		jobs[j].mem = back + j * len;
	}
	memset(back, 0, 2 * len);
	CHECK_EQ_INT(extent_io_run(io, jobs, 2), 0);
	CHECK(memcmp(back, plain, 2 * len) == 0);
	/* An identifier of no key given: refused, nothing read. */
	memset(back, 0, 2 * len);
	jobs[1].src.key_id = kc.identifier;
	CHECK_EQ_INT(extent_io_run(io, jobs, 2), -ENOKEY);
	CHECK(back[0] == 0);
	/* Without a key_id a side still needs params.key. */
	jobs[1].src.key_id = NULL;
	CHECK_EQ_INT(extent_io_run(io, jobs, 2), -EINVAL);
out:
	extent_io_free(io);
	fscrypt_master_key_wipe(&ka);
	fscrypt_master_key_wipe(&kb);
	fscrypt_master_key_wipe(&kc);
	free(plain);
	free(back);
	free(ct);
	if (fd >= 0)
		close(fd);
}
