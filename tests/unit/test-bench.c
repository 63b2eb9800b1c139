// SPDX-License-Identifier: GPL-2.0
/*
 * --bench: throughput of XTS and the checksums, ours and the library's.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <endian.h>
#include <isa-l/crc.h>
#include <xxhash.h>
#include <blake2.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include "crypto/csum.h"
#include "crypto/xts.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

#define BENCH_BUF (1U << 20)

struct bench_arg {
	const char *what;
	double seconds;
	uint64_t bytes;
	pthread_barrier_t *start;
};

static void bench_raw_csum(int type, const uint8_t *buf, size_t len, uint8_t *out)
{
	switch (type) {
	case CSUM_CRC32C: {
		uint32_t c = crc32_iscsi((unsigned char *)buf, (int)len, ~0U);

		memcpy(out, &c, 4);
		break;
	}
	case CSUM_XXHASH64: {
		uint64_t v = XXH64(buf, len, 0);

		memcpy(out, &v, 8);
		break;
	}
	case CSUM_SHA256:
		SHA256(buf, len, out);
		break;
	case CSUM_BLAKE2B:
		blake2b(out, buf, NULL, 32, len, 0);
		break;
	}
}

/*
 * One thread of one measurement:
 *   xts-enc, xts-dec   xts_encrypt/xts_decrypt over a 1 MiB run of 4 KiB units
 *   raw-xts            EVP_EncryptUpdate of one 4 KiB buffer with a fixed IV,
 *                      the loop `openssl speed -evp aes-256-xts` times
 *   csum-T             csum_batch over 4 KiB units of a 1 MiB buffer
 *   raw-T              the library's call on each 4 KiB piece of the same buffer
 */
static void *bench_thread(void *argp)
{
	struct bench_arg *a = argp;
	uint8_t *buf = aligned_alloc(4096, BENCH_BUF), out[BENCH_BUF / 4096 * 32];
	static const uint8_t iv[16];
	EVP_CIPHER_CTX *evp = NULL;
	EVP_CIPHER *cipher = NULL;
	struct xts_ctx *x = NULL;
	uint8_t key[64];
	int type = -1, raw = 0, outl;
	uint64_t dun = 0;
	double end;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < BENCH_BUF; i++)
		buf[i] = (uint8_t)(i * 7);
	seq_bytes(key, 64, 0);
	if (strcmp(a->what, "raw-xts") == 0) {
		cipher = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
		evp = EVP_CIPHER_CTX_new();
		if (!cipher || !evp || EVP_EncryptInit_ex2(evp, cipher, key, iv, NULL) != 1)
			goto out;
	} else if (strncmp(a->what, "xts", 3) == 0) {
		if (xts_ctx_new(&x, key, 64))
			goto out;
	} else {
		raw = strncmp(a->what, "raw-", 4) == 0;
		for (int t = 0; t <= CSUM_BLAKE2B; t++)
			if (strcmp(a->what + 5 - raw, csum_type_name(t)) == 0)
				type = t;
	}
	pthread_barrier_wait(a->start);
	end = now_sec() + a->seconds;
	while (now_sec() < end) {
		for (int rep = 0; rep < 8; rep++) {
			if (evp)
				for (size_t off = 0; off < BENCH_BUF; off += 4096)
					EVP_EncryptUpdate(evp, buf, &outl, buf, 4096);
			else if (x && strcmp(a->what, "xts-enc") == 0)
				xts_encrypt(x, dun, buf, buf, 4096, BENCH_BUF / 4096);
			else if (x)
				xts_decrypt(x, dun, buf, buf, 4096, BENCH_BUF / 4096);
			else if (raw)
				for (size_t off = 0; off < BENCH_BUF; off += 4096)
					bench_raw_csum(type, buf + off, 4096, out);
			else
				csum_batch(type, buf, 4096, BENCH_BUF / 4096, out);
			dun += BENCH_BUF / 4096;
			a->bytes += BENCH_BUF;
		}
	}
	goto done;
out:
	pthread_barrier_wait(a->start);
done:
	EVP_CIPHER_CTX_free(evp);
	EVP_CIPHER_free(cipher);
	xts_ctx_free(x);
	free(buf);
	return NULL;
}

static double bench_one(const char *what, unsigned int threads, double seconds)
{
	pthread_t tid[256];
	struct bench_arg args[256];
	pthread_barrier_t start;
	uint64_t total = 0;
	double t0;

	if (threads > 256)
		threads = 256;
	pthread_barrier_init(&start, NULL, threads + 1);
	for (unsigned int i = 0; i < threads; i++) {
		args[i] = (struct bench_arg){ what, seconds, 0, &start };
		pthread_create(&tid[i], NULL, bench_thread, &args[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now_sec();
	for (unsigned int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		total += args[i].bytes;
	}
	pthread_barrier_destroy(&start);
	return total / (now_sec() - t0);
}

/*
 * Each line: NAME THREADS OURS REF (bytes per second), where REF is the
 * in-process library reference (raw-xts for XTS).  The two are measured in
 * alternating rounds and the best round of each is kept, so that load from
 * other processes (which only ever slows a round down) hits both alike.
 */
static int bench_main(int argc, char **argv)
{
	static const char *const what[][2] = {
		{ "xts-enc", "raw-xts" }, { "xts-dec", "raw-xts" },
		{ "csum-crc32c", "raw-crc32c" }, { "csum-xxhash64", "raw-xxhash64" },
		{ "csum-sha256", "raw-sha256" }, { "csum-blake2b", "raw-blake2b" },
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int all = cpus > 0 ? (unsigned int)cpus : 1, rounds = 3;
	double seconds = 3;
	const char *only = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			all = (unsigned int)atoi(argv[++i]);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = (unsigned int)atoi(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: unit-tests --bench [--seconds S] [--rounds N] [--threads N] [--only PREFIX]\n");
			return 2;
		}
	}
	if (!all || seconds <= 0 || !rounds)
		return 2;
	printf("# name threads ours_bytes_per_second reference_bytes_per_second (best of %u rounds of %.2f s)\n",
	       rounds, seconds / rounds);
	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
		if (only && strncmp(what[i][0], only, strlen(only)))
			continue;
		for (unsigned int t = 1; t <= all; t = t == all ? all + 1 : all) {
			double ours = 0, ref = 0;

			for (unsigned int r = 0; r < rounds; r++) {
				double a = bench_one(what[i][0], t, seconds / rounds);
				double b = bench_one(what[i][1], t, seconds / rounds);

				ours = a > ours ? a : ours;
				ref = b > ref ? b : ref;
			}
			printf("%s %u %.0f %.0f\n", what[i][0], t, ours, ref);
		}
	}
	return 0;
}

UNIT_MODE(bench, "--bench", "--bench [--seconds S] [--rounds N] [--threads N] [--only PREFIX]",
	  bench_main)
