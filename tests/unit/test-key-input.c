// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of common/key-input: hex parsing, key sources, secret memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include "common/key-input.h"
#include "tests/unit/unit.h"
#include "tests/unit/unit-helpers.h"

UNIT_TEST(key_hex_parsing)
{
	uint8_t out[64];

	CHECK_EQ_INT(key_parse_hex("00ff10AB", 8, out, sizeof(out)), 4);
	CHECK_HEX(out, 4, "00ff10ab");
	CHECK_EQ_INT(key_parse_hex("00ff\n", 5, out, sizeof(out)), 2);
	CHECK_EQ_INT(key_parse_hex("00ff\r\n", 6, out, sizeof(out)), 2);
	CHECK_EQ_INT(key_parse_hex("00ff\n\n", 6, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("0ff", 3, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("0g", 2, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex(" 00f", 4, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("", 0, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(key_parse_hex("000000", 6, out, 2), -EINVAL);
}

/* Write data to a pipe and read it as a key with the given format. */
static int key_from_pipe(const void *data, size_t len, enum key_format fmt,
			 struct key_buf **kb)
{
	struct key_input ki;
	char fdarg[16];
	int fds[2], ret;

	if (pipe(fds))
		return -errno;
	if (write(fds[1], data, len) != (ssize_t)len) {
		close(fds[0]);
		close(fds[1]);
		return -EIO;
	}
	close(fds[1]);
	key_input_init(&ki);
	snprintf(fdarg, sizeof(fdarg), "%d", fds[0]);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, fdarg), 1);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FORMAT,
					 fmt == KEY_FORMAT_HEX ? "hex" : "raw"), 1);
	ret = key_input_read(&ki, kb);
	close(fds[0]);
	return ret;
}

UNIT_TEST(key_input_sources)
{
	struct key_input ki;
	struct key_buf *kb = NULL;
	uint8_t raw[70];
	char hex[200];

	int saved = dup(STDERR_FILENO), cap = temp_fd();
	char msgs[4096] = "";
	ssize_t got;

	/* The ERROR lines go to a file, to be checked instead of shown. */
	fflush(stderr);
	if (saved >= 0 && cap >= 0)
		dup2(cap, STDERR_FILENO);
	seq_bytes(raw, sizeof(raw), 0xa0);
	CHECK_EQ_INT(key_from_pipe(raw, 64, KEY_FORMAT_RAW, &kb), 0);
	if (kb) {
		CHECK_EQ_INT(kb->len, 64);
		CHECK(memcmp(kb->data, raw, 64) == 0);
	}
	key_buf_free(kb);
	CHECK_EQ_INT(key_from_pipe(raw, 16, KEY_FORMAT_RAW, &kb), 0);
	key_buf_free(kb);
	CHECK_EQ_INT(key_from_pipe(raw, 15, KEY_FORMAT_RAW, &kb), -EINVAL);
	CHECK_EQ_INT(key_from_pipe(raw, 65, KEY_FORMAT_RAW, &kb), -EINVAL);
	CHECK_EQ_INT(key_from_pipe(raw, 0, KEY_FORMAT_RAW, &kb), -EINVAL);
	unit_hex(raw, 32, hex);
	strcat(hex, "\n");
	CHECK_EQ_INT(key_from_pipe(hex, strlen(hex), KEY_FORMAT_HEX, &kb), 0);
	if (kb) {
		CHECK_EQ_INT(kb->len, 32);
		CHECK(memcmp(kb->data, raw, 32) == 0);
	}
	key_buf_free(kb);
	CHECK_EQ_INT(key_from_pipe(hex, 30, KEY_FORMAT_HEX, &kb), -EINVAL);	/* 15 bytes */
	unit_hex(raw, 65, hex);
	CHECK_EQ_INT(key_from_pipe(hex, strlen(hex), KEY_FORMAT_HEX, &kb), -EINVAL);
	CHECK_EQ_INT(key_from_pipe("zz", 2, KEY_FORMAT_HEX, &kb), -EINVAL);
	CHECK(kb == NULL);

	key_input_init(&ki);
	CHECK_EQ_INT(key_input_read(&ki, &kb), -ENOKEY);
	CHECK_EQ_INT(key_input_parse_opt(&ki, 'x', NULL), 0);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, "-1"), -EINVAL);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, "3x"), -EINVAL);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FORMAT, "base64"), -EINVAL);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FILE, "/nonexistent/key"), 1);
	CHECK_EQ_INT(key_input_parse_opt(&ki, GETOPT_VAL_KEY_FD, "3"), -EINVAL);
	CHECK_EQ_INT(key_input_read(&ki, &kb), -ENOENT);

	fflush(stderr);
	if (saved >= 0 && cap >= 0) {
		dup2(saved, STDERR_FILENO);
		got = pread(cap, msgs, sizeof(msgs) - 1, 0);
		msgs[got > 0 ? got : 0] = 0;
		CHECK(strstr(msgs, "ERROR: key from file descriptor") != NULL);
		CHECK(strstr(msgs, "is 15 bytes: a key is 16 to 64 bytes") != NULL);
		CHECK(strstr(msgs, "is not valid hex") != NULL);
		CHECK(strstr(msgs, "cannot open key file /nonexistent/key") != NULL);
		/* No key material in the messages, raw or hex. */
		unit_hex(raw, 4, hex);
		CHECK(strstr(msgs, hex) == NULL);
		CHECK(memmem(msgs, strlen(msgs), raw, 4) == NULL);
	}
	if (saved >= 0)
		close(saved);
	if (cap >= 0)
		close(cap);
}

UNIT_TEST(secret_memory_disables_core_dumps)
{
	struct rlimit before, during;
	void *p, *q;

	getrlimit(RLIMIT_CORE, &before);
	p = secret_alloc(100);
	q = secret_alloc(5000);
	CHECK(p != NULL && q != NULL);
	getrlimit(RLIMIT_CORE, &during);
	CHECK_EQ_INT(during.rlim_cur, 0);
	CHECK_EQ_INT(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	if (p)
		memset(p, 0xaa, 100);
	secret_free(p, 100);
	getrlimit(RLIMIT_CORE, &during);
	CHECK_EQ_INT(during.rlim_cur, 0);	/* q still alive */
	secret_free(q, 5000);
	getrlimit(RLIMIT_CORE, &during);
	CHECK_EQ_INT(during.rlim_cur, before.rlim_cur);
}
