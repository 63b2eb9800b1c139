// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of data/read, the file-data read path: plain, encrypted,
 * compressed and encrypted+compressed extents; a csum mismatch on the
 * first copy with a good second one; a mismatch on every copy.  The
 * extents are written with the pipeline itself (encrypt, csums) into a
 * temporary file; no btrfs image is involved (rd is filled by hand, as
 * data_read_map() would from the chunk map and the csum tree).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "crypto/csum.h"
#include "data/read.h"
#include "kernel-shared/disk-io.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

#define DR_UNIT		4096
#define DR_UNITS	8
#define DR_LEN		((size_t)DR_UNITS * DR_UNIT)
#define DR_COPY2	(1ULL << 20)	/* image offset of the second copy */

/* The sink of the tests: plaintext into a buffer at its offset. */
struct dr_sink {
	uint8_t *buf;
	uint64_t cap, got;
};

struct dr_fixture {
	int fd;
	struct fs_info *fs;		/* a handle for the error texts only */
	struct fscrypt_master_key mk;
	uint8_t nonce[FSCRYPT_NONCE_SIZE];
	uint8_t *plain;			/* DR_LEN bytes of file data */
	uint8_t stored[DR_LEN];		/* what is written: plain, or a padded zlib stream */
	uint64_t stored_len;
	uint8_t sums[DR_UNITS * 4];
	struct extent_io *io;
	struct extent_io_params p;
	struct dr_sink sink;		/* DR_LEN bytes */
};

static int dr_collect(void *arg, uint64_t off, const uint8_t *buf, uint64_t len)
{
	struct dr_sink *s = arg;

	if (off + len > s->cap)
		return -ERANGE;
	memcpy(s->buf + off, buf, len);
	__atomic_add_fetch(&s->got, len, __ATOMIC_RELAXED);
	return 0;
}

/* Write the stored bytes (encrypted with nonce, csums computed) at both copies. */
static void dr_write(struct dr_fixture *f, bool encrypt)
{
	struct extent_io_csums out = { .type = CSUM_CRC32C, .logical = EIO_BASE_LOGICAL,
				       .count = f->stored_len / DR_UNIT, .out = f->sums };
	uint8_t copy[DR_LEN];

	for (int c = 0; c < 2; c++) {
		struct extent_io_job job = { .len = f->stored_len, .flags = EXTENT_IO_WRITE };

		memcpy(copy, f->stored, f->stored_len);
		job.mem = copy;
		job.dst = (struct extent_io_loc){ c ? DR_COPY2 : 0, EIO_BASE_LOGICAL, 0,
						  encrypt ? f->nonce : NULL, &out };
		CHECK_EQ_INT(extent_io_run(f->io, &job, 1), 0);
	}
}

static bool dr_setup(struct dr_fixture *f, unsigned int threads)
{
	memset(f, 0, sizeof(*f));
	f->fd = temp_fd();
	f->plain = malloc(DR_LEN);
	f->sink = (struct dr_sink){ calloc(1, DR_LEN), DR_LEN, 0 };
	f->fs = calloc(1, sizeof(*f->fs));
	CHECK(f->fd >= 0 && f->plain && f->sink.buf && f->fs);
	if (f->fd < 0 || !f->plain || !f->sink.buf || !f->fs)
		return false;
	fs_errors_init(&f->fs->errors);
	test_master(&f->mk);
	seq_bytes(f->nonce, sizeof(f->nonce), 0x40);
	/* Compressible but not constant: a few repeating phrases. */
	for (size_t i = 0; i < DR_LEN; i++)
		f->plain[i] = (uint8_t)("file data of the read path "[i % 27] + (i / 4096));
	f->p = (struct extent_io_params){ .fd = f->fd, .dst_fd = -1, .unit_size = DR_UNIT,
					  .threads = threads, .chunk_size = 2 * DR_UNIT,
					  .key = &f->mk, .profile = FSCRYPT_PROFILE_V7,
					  .contents_mode = FSCRYPT_MODE_AES_256_XTS };
	data_read_setup(&f->p, NULL);
	CHECK(f->p.process == extent_io_csum_process);
	CHECK_EQ_INT(extent_io_new(&f->io, &f->p), 0);
	return f->io != NULL;
}

static void dr_teardown(struct dr_fixture *f)
{
	extent_io_free(f->io);
	if (f->fd >= 0)
		close(f->fd);
	free(f->plain);
	free(f->sink.buf);
	if (f->fs)
		fs_errors_free(&f->fs->errors);
	free(f->fs);
}

/* The stored bytes: the plaintext itself, or its zlib stream padded to units. */
static void dr_store(struct dr_fixture *f, bool compress)
{
	uLongf n = sizeof(f->stored);

	memset(f->stored, 0, sizeof(f->stored));
	if (!compress) {
		memcpy(f->stored, f->plain, DR_LEN);
		f->stored_len = DR_LEN;
		return;
	}
	CHECK_EQ_INT(compress2(f->stored, &n, f->plain, DR_LEN, 6), Z_OK);
	f->stored_len = (n + DR_UNIT - 1) / DR_UNIT * DR_UNIT;
	CHECK(f->stored_len < DR_LEN);
}

/* rd as data_read_map() would describe the extent: two copies, csums. */
static void dr_describe(struct dr_fixture *f, struct data_read *rd, bool encrypted)
{
	memset(rd, 0, sizeof(*rd));
	rd->fs = f->fs;
	rd->extent = EIO_BASE_LOGICAL;
	rd->logical = EIO_BASE_LOGICAL;
	rd->len = f->stored_len;
	rd->physical[0] = 0;
	rd->physical[1] = DR_COPY2;
	rd->copies = 2;
	rd->nonce = encrypted ? f->nonce : NULL;
	rd->csums = (struct extent_io_csums){ .type = CSUM_CRC32C, .logical = EIO_BASE_LOGICAL,
					      .count = f->stored_len / DR_UNIT,
					      .expected = f->sums };
}

/* The extent on disk at both copies, and rd describing it. */
static void dr_prepare(struct dr_fixture *f, struct data_read *rd, bool compress, bool encrypt)
{
	dr_store(f, compress);
	dr_write(f, encrypt);
	dr_describe(f, rd, encrypt);
	memset(f->sink.buf, 0, DR_LEN);
	f->sink.got = 0;
}

/* Flip a byte of unit u of copy c on disk. */
static void dr_corrupt(struct dr_fixture *f, int c, unsigned int u)
{
	uint8_t b;
	off_t at = (off_t)((c ? DR_COPY2 : 0) + u * DR_UNIT + 100);

	CHECK(pread(f->fd, &b, 1, at) == 1);
	b ^= 0x5a;
	CHECK(pwrite(f->fd, &b, 1, at) == 1);
}

/* Plain and encrypted, uncompressed: into memory and through a sink. */
static void dr_uncompressed(unsigned int threads, bool encrypted)
{
	struct dr_fixture f;
	struct data_read rd;

	if (dr_setup(&f, threads)) {
		dr_prepare(&f, &rd, false, encrypted);
		CHECK_EQ_INT(data_read_run(f.io, &rd, NULL, dr_collect, &f.sink), 0);
		CHECK(f.sink.got == DR_LEN);
		CHECK(memcmp(f.sink.buf, f.plain, DR_LEN) == 0);
		CHECK(rd.bad_copy == 0);
		memset(f.sink.buf, 0, DR_LEN);
		CHECK_EQ_INT(data_read_run(f.io, &rd, f.sink.buf, NULL, NULL), 0);
		CHECK(memcmp(f.sink.buf, f.plain, DR_LEN) == 0);
		/* Without a nonce the stored bytes come back: ciphertext when encrypted. */
		rd.nonce = NULL;
		CHECK_EQ_INT(data_read_run(f.io, &rd, f.sink.buf, NULL, NULL), 0);
		CHECK((memcmp(f.sink.buf, f.plain, DR_LEN) != 0) == encrypted);
	}
	dr_teardown(&f);
}

UNIT_TEST(data_read_plain)
{
	dr_uncompressed(1, false);
	dr_uncompressed(2, false);
}

UNIT_TEST(data_read_encrypted)
{
	dr_uncompressed(1, true);
	dr_uncompressed(2, true);
}

/* Compressed, plain or encrypted: read, verified, decrypted, decompressed. */
static void dr_compressed(bool encrypted)
{
	struct dr_fixture f;
	struct data_read rd;
	long n = 0;

	if (dr_setup(&f, 2)) {
		dr_prepare(&f, &rd, true, encrypted);
		CHECK_EQ_INT(data_read_decode(f.io, &rd, 1, DR_LEN, dr_collect, &f.sink, &n), 0);
		CHECK(n == (long)DR_LEN);
		CHECK(memcmp(f.sink.buf, f.plain, DR_LEN) == 0);
		/* Not zstd: the stream does not decompress, which is no read error. */
		CHECK_EQ_INT(data_read_decode(f.io, &rd, 3, DR_LEN, NULL, NULL, &n), 0);
		CHECK(n < 0);
		CHECK_EQ_INT(data_read_decode(f.io, &rd, 9, DR_LEN, NULL, NULL, &n), 0);
		CHECK(n == -EINVAL);
	}
	dr_teardown(&f);
}

UNIT_TEST(data_read_compressed)
{
	dr_compressed(false);
}

UNIT_TEST(data_read_encrypted_compressed)
{
	dr_compressed(true);
}

/* A bad unit on the first copy: the second copy is read instead. */
UNIT_TEST(data_read_bad_first_copy)
{
	struct dr_fixture f;
	struct data_read rd;
	uint8_t present[DR_UNITS];
	long n = 0;

	if (dr_setup(&f, 2)) {
		dr_prepare(&f, &rd, false, true);
		dr_corrupt(&f, 0, 5);
		CHECK_EQ_INT(data_read_run(f.io, &rd, NULL, dr_collect, &f.sink), 0);
		CHECK(memcmp(f.sink.buf, f.plain, DR_LEN) == 0);
		CHECK(rd.bad_copy == 1);
		/* One copy only: the mismatch is an error. */
		rd.copies = 1;
		CHECK_EQ_INT(data_read_run(f.io, &rd, f.sink.buf, NULL, NULL), -EBADMSG);
		CHECK(rd.bad_logical == EIO_BASE_LOGICAL + 5 * DR_UNIT);
		/* A unit without a csum (present 0) is not verified. */
		memset(present, 1, sizeof(present));
		present[5] = 0;
		rd.csums.present = present;
		CHECK_EQ_INT(data_read_run(f.io, &rd, f.sink.buf, NULL, NULL), 0);

		/* Compressed and encrypted, the first copy bad too. */
		dr_prepare(&f, &rd, true, true);
		dr_corrupt(&f, 0, 0);
		CHECK_EQ_INT(data_read_decode(f.io, &rd, 1, DR_LEN, dr_collect, &f.sink, &n), 0);
		CHECK(n == (long)DR_LEN && memcmp(f.sink.buf, f.plain, DR_LEN) == 0);
		CHECK(rd.bad_copy == 1);
	}
	dr_teardown(&f);
}

/* Bad units on every copy: -EBADMSG, naming the extent's logical address and the first bad unit. */
UNIT_TEST(data_read_bad_all_copies)
{
	struct dr_fixture f;
	struct data_read rd;
	char want[128];
	long n = 0;

	if (dr_setup(&f, 2)) {
		dr_prepare(&f, &rd, false, false);
		dr_corrupt(&f, 0, 3);
		dr_corrupt(&f, 1, 6);
		dr_corrupt(&f, 1, 2);
		CHECK_EQ_INT(data_read_run(f.io, &rd, f.sink.buf, NULL, NULL), -EBADMSG);
		CHECK(rd.bad_copy == 2);
		CHECK(rd.bad_logical == EIO_BASE_LOGICAL + 2 * DR_UNIT);
		snprintf(want, sizeof(want), "data checksum mismatch in extent %llu",
			 (unsigned long long)EIO_BASE_LOGICAL);
		CHECK(strcmp(fs_errmsg(f.fs), want) == 0);
		/* The same through decode: the read's error, nothing decompressed. */
		CHECK_EQ_INT(data_read_decode(f.io, &rd, 1, DR_LEN, NULL, NULL, &n), -EBADMSG);
		CHECK(strcmp(fs_errmsg(f.fs), want) == 0);
		/* Without csums nothing is verified: the damaged bytes come back. */
		rd.csums.expected = NULL;
		CHECK_EQ_INT(data_read_run(f.io, &rd, f.sink.buf, NULL, NULL), 0);
		CHECK(memcmp(f.sink.buf, f.plain, DR_LEN) != 0);
	}
	dr_teardown(&f);
}
