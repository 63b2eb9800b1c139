// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the metadata of one seed image, fed in-process through
 * the open path (superblock, sys chunk array, chunk tree), the verified read
 * of every tree block and the whole of `check` (tests/fuzz/README.md).
 *
 * Built with clang -fsanitize=fuzzer,address,undefined by `make
 * fuzz-libfuzzer`, which first runs tests/fuzz/libfuzzer_prep.py to write the
 * working directory (EXTCRYPT_LF_DIR, default "."): seed.img, seed.map (one
 * line per metadata region: its length, then each physical copy) and key.
 *
 * An input is the regions' bytes, concatenated in map order; a short input
 * leaves the rest of the seed as it is.  Each region is written over an
 * in-memory copy of the seed with its checksum recomputed (so mutations
 * reach the parsers behind the checksum), to every copy.  The image lives in
 * a memfd and the commands run through the command dispatcher as
 * `btrfs-extcrypt -q <command> /proc/self/fd/N` would, without a fork: a
 * crash, a sanitizer report, a leak or an exit code outside 0-4 is a finding.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <getopt.h>
#include <sys/mman.h>
#include "crypto/csum.h"

#define SUPER_OFFSET	65536
#define SUPER_SIZE	4096
#define MAX_COPIES	4
#define CHUNK		4096

int extcrypt_main(int argc, char **argv);

struct region {
	size_t len;
	unsigned int ncopies;
	uint64_t off[MAX_COPIES];
};

struct extent {
	uint64_t off;
	size_t len;
};

static unsigned char *seed;	/* the whole seed image */
static size_t seed_size;
static struct extent *data;	/* its non-zero runs, in CHUNK units */
static size_t nr_data;
static struct region *regs;
static size_t nr_regs;
static int csum_type;
static bool encrypted;
static int img_fd = -1;
static char img_path[64], key_path[4096];

static void fail(const char *what)
{
	fprintf(stderr, "libfuzzer target: %s: %s\n", what, strerror(errno));
	abort();
}

static char *dir_file(const char *name)
{
	const char *dir = getenv("EXTCRYPT_LF_DIR");
	char *p;

	if (asprintf(&p, "%s/%s", dir ? dir : ".", name) < 0)
		fail("asprintf");
	return p;
}

static void load_seed(void)
{
	char *path = dir_file("seed.img");
	FILE *f = fopen(path, "rb");

	if (!f || fseek(f, 0, SEEK_END) || (long)(seed_size = ftell(f)) < 0)
		fail(path);
	rewind(f);
	seed = malloc(seed_size);
	if (!seed || fread(seed, 1, seed_size, f) != seed_size)
		fail(path);
	fclose(f);
	free(path);
	for (size_t o = 0; o < seed_size; o += CHUNK) {
		size_t n = seed_size - o < CHUNK ? seed_size - o : CHUNK, i;

		for (i = 0; i < n && !seed[o + i]; i++)
			;
		if (i == n)
			continue;
		if (nr_data && data[nr_data - 1].off + data[nr_data - 1].len == o) {
			data[nr_data - 1].len += n;
			continue;
		}
		data = realloc(data, (nr_data + 1) * sizeof(*data));
		if (!data)
			fail("realloc");
		data[nr_data++] = (struct extent){ o, n };
	}
	csum_type = seed[SUPER_OFFSET + 0xc4] | seed[SUPER_OFFSET + 0xc5] << 8;
	encrypted = seed[SUPER_OFFSET + 0xbc + 1] & 0x80;	/* incompat bit 15 */
}

static void load_map(void)
{
	char *path = dir_file("seed.map");
	FILE *f = fopen(path, "r");
	char line[512];

	if (!f)
		fail(path);
	while (fgets(line, sizeof(line), f)) {
		struct region r = { 0 };
		char *p = line, *end;

		r.len = strtoull(p, &end, 10);
		for (p = end; r.ncopies < MAX_COPIES; p = end) {
			uint64_t v = strtoull(p, &end, 10);

			if (end == p)
				break;
			if (v + r.len <= seed_size)
				r.off[r.ncopies++] = v;
		}
		if (!r.len || !r.ncopies)
			continue;
		regs = realloc(regs, (nr_regs + 1) * sizeof(*regs));
		if (!regs)
			fail("realloc");
		regs[nr_regs++] = r;
	}
	fclose(f);
	free(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *key = dir_file("key");

	load_seed();
	load_map();
	if (!realpath(key, key_path))
		fail(key);
	free(key);
	img_fd = memfd_create("extcrypt-lf", 0);
	if (img_fd < 0)
		fail("memfd_create");
	snprintf(img_path, sizeof(img_path), "/proc/self/fd/%d", img_fd);
	return 0;
}

/* The seed with the input's regions written over it. */
static void make_image(const uint8_t *in, size_t size)
{
	unsigned char *buf = malloc(65536);
	size_t pos = 0;

	if (!buf || ftruncate(img_fd, 0) || ftruncate(img_fd, seed_size))
		fail("ftruncate");
	for (size_t i = 0; i < nr_data; i++)
		if (pwrite(img_fd, seed + data[i].off, data[i].len, data[i].off) !=
		    (ssize_t)data[i].len)
			fail("pwrite");
	for (size_t i = 0; i < nr_regs && pos < size; i++) {
		const struct region *r = &regs[i];
		size_t n = size - pos < r->len ? size - pos : r->len;

		if (r->len > 65536)
			continue;
		memcpy(buf, seed + r->off[0], r->len);
		memcpy(buf, in + pos, n);
		pos += n;
		csum_compute(csum_type, buf + 32, r->len - 32, buf);
		for (unsigned int c = 0; c < r->ncopies; c++)
			if (pwrite(img_fd, buf, r->len, r->off[c]) != (ssize_t)r->len)
				fail("pwrite");
	}
	free(buf);
}

static void run(const char *const *args)
{
	char *argv[16];
	int argc = 0, ret;

	argv[argc++] = (char *)"btrfs-extcrypt";
	argv[argc++] = (char *)"-q";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	if (encrypted && strcmp(argv[2], "check") == 0) {
		argv[argc++] = (char *)"--key-file";
		argv[argc++] = key_path;
	}
	argv[argc++] = img_path;
	argv[argc] = NULL;
	optind = 0;	/* a full getopt reset, as for a new process */
	ret = extcrypt_main(argc, argv);
	fflush(stdout);
	if (ret < 0 || ret > 4) {
		fprintf(stderr, "libfuzzer target: %s exited %d\n", argv[2], ret);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
	static const char *const check[] = { "check", "--check-data-csum", NULL };
	static const char *const dump_tree[] = { "inspect", "dump-tree", NULL };
	static const char *const dump_super[] = { "inspect", "dump-super", "--all", NULL };

	make_image(in, size);
	run(dump_super);
	run(dump_tree);
	run(check);
	return 0;
}
