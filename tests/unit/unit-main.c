// SPDX-License-Identifier: GPL-2.0
/*
 * Unit-test runner.  With no arguments it runs every registered test; with
 * arguments that are not a mode flag, only the tests whose name contains one
 * of them.  The last line is always "N passed, N failed" and the exit status
 * is non-zero if any test failed.  Test files can add modes (oracles,
 * self-tests, benchmarks) with UNIT_MODE().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/unit.h"

static struct unit_test *tests, **tests_tail = &tests;
static struct unit_mode *modes;
static unsigned int cur_failures;
static const char *cur_name;

void unit_register(struct unit_test *t)
{
	/* Keep registration order (per file, constructors run in order). */
	t->next = NULL;
	*tests_tail = t;
	tests_tail = &t->next;
}

void unit_register_mode(struct unit_mode *m)
{
	m->next = modes;
	modes = m;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("    %s:%d: %s: check failed: %s\n", file, line, cur_name, msg);
	cur_failures++;
}

void unit_hex(const void *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = 0;
}

int unit_unhex(const char *hex, uint8_t *out, size_t out_size)
{
	size_t len = strlen(hex);

	if (len % 2 || len / 2 > out_size)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned int v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (int)(len / 2);
}

void unit_check_hex(const char *file, int line, const char *what, const void *buf,
		    size_t len, const char *hex)
{
	char *got = malloc(2 * len + 1);

	if (!got) {
		unit_fail(file, line, "out of memory");
		return;
	}
	unit_hex(buf, len, got);
	if (strlen(hex) != 2 * len || strcmp(got, hex) != 0)
		unit_fail(file, line, "%s = %s, expected %s", what, got, hex);
	free(got);
}

static bool selected(const char *name, int argc, char **argv)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

static void usage(void)
{
	printf("usage: unit-tests [--list] [NAME-FILTER...]\n");
	for (struct unit_mode *m = modes; m; m = m->next)
		printf("       unit-tests %s\n", m->help);
}

int main(int argc, char **argv)
{
	unsigned int passed = 0, failed = 0;

	/* Line-buffered so the runner's output interleaves sanely with stderr. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		for (struct unit_mode *m = modes; m; m = m->next)
			if (strcmp(argv[1], m->flag) == 0)
				return m->fn(argc - 1, argv + 1);
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			usage();
			return 0;
		}
		if (strcmp(argv[1], "--list") == 0) {
			for (struct unit_test *t = tests; t; t = t->next)
				printf("%s\n", t->name);
			return 0;
		}
		if (argv[1][0] == '-') {
			fprintf(stderr, "unit-tests: unknown option %s\n", argv[1]);
			usage();
			return 2;
		}
	}

	for (struct unit_test *t = tests; t; t = t->next) {
		if (!selected(t->name, argc, argv))
			continue;
		cur_name = t->name;
		cur_failures = 0;
		t->fn();
		if (cur_failures) {
			printf("FAIL %s\n", t->name);
			failed++;
		} else {
			printf("ok   %s\n", t->name);
			passed++;
		}
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
