/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tiny unit-test framework.  A test is a void function declared with
 * UNIT_TEST(name) { ... }; it registers itself before main() runs.  CHECK*
 * record a failure (file:line and what) and let the test go on.
 */
#ifndef EXTCRYPT_UNIT_H
#define EXTCRYPT_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
	struct unit_test *next;
};

void unit_register(struct unit_test *t);

/*
 * An extra mode of the binary, selected by its first argument (e.g.
 * "--oracle"): fn gets argc/argv with argv[0] = the flag and returns the
 * exit code.  Declared with UNIT_MODE(flag, help, fn).
 */
struct unit_mode {
	const char *flag;
	const char *help;
	int (*fn)(int argc, char **argv);
	struct unit_mode *next;
};

void unit_register_mode(struct unit_mode *m);

#define UNIT_MODE(ident, flag, help, fn)					\
	static struct unit_mode ident##_mode = { flag, help, fn, NULL };	\
	__attribute__((constructor)) static void ident##_register(void)	\
	{									\
		unit_register_mode(&ident##_mode);				\
	}
/* Record one failed check of the running test. */
void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define UNIT_TEST(name)								\
	static void name(void);							\
	static struct unit_test name##_unit = { #name, name, NULL };		\
	__attribute__((constructor)) static void name##_register(void)		\
	{									\
		unit_register(&name##_unit);					\
	}									\
	static void name(void)

#define CHECK(cond)								\
	do {									\
		if (!(cond))							\
			unit_fail(__FILE__, __LINE__, "%s", #cond);		\
	} while (0)

#define CHECK_EQ_INT(a, b)							\
	do {									\
		long long _a = (long long)(a), _b = (long long)(b);		\
		if (_a != _b)							\
			unit_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", \
				  #a, _a, #b, _b);				\
	} while (0)

/* Compare len bytes with a lowercase hex string of 2*len digits. */
#define CHECK_HEX(buf, len, hex)						\
	unit_check_hex(__FILE__, __LINE__, #buf, (const void *)(buf), (len), (hex))

void unit_check_hex(const char *file, int line, const char *what, const void *buf,
		    size_t len, const char *hex);

/* Decode hex into out (out_size bytes); returns the byte count or -1. */
int unit_unhex(const char *hex, uint8_t *out, size_t out_size);
/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void unit_hex(const void *buf, size_t len, char *out);

#endif
