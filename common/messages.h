/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Diagnostics on stderr: "ERROR: ..." and "WARNING: ..." lines, one per call,
 * never split.  Exit codes are those of design.md section 5.
 */
#ifndef EXTCRYPT_MESSAGES_H
#define EXTCRYPT_MESSAGES_H

#include <stdarg.h>

enum extcrypt_exit {
	EXIT_OK = 0,		/* clean / success */
	EXIT_PROBLEMS = 1,	/* problems found (check) or operation failed */
	EXIT_USAGE = 2,		/* command-line usage error */
	EXIT_UNREADABLE = 3,	/* image unreadable: bad superblock, tree block, I/O */
	EXIT_KEY = 4,		/* key error: bad key input, wrong key, id mismatch */
};

/* -1 quiet, 0 normal, >0 verbose; set once by the global options. */
extern int g_verbose;

void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Informational line on stderr, suppressed by -q. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed only with -v. */
void verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
