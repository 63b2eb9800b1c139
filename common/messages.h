/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Diagnostics on stderr: "ERROR: ..." and "WARNING: ..." lines, one per call,
 * never split.  Exit codes are those of Documentation/design.rst section 5.
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

/*
 * Where an error happened, for exit_code(): the same errno means something
 * else while an image is being opened than while a command works on it.
 */
enum err_stage {
	ERR_AT_RUN,		/* a command's work on an open image (or none) */
	ERR_AT_OPEN_RO,		/* opening an image to read it */
	ERR_AT_OPEN_RW,		/* opening an image to change it (lock, mount, log checks) */
	ERR_AT_KEY,		/* reading or loading the master key */
};

/*
 * The one mapping from an engine error (0 or a negative errno) to the exit
 * codes above, as README.md and btrfs-extcrypt(8) document them:
 *   0                                   EXIT_OK
 *   -ENOMEM, anywhere                   EXIT_PROBLEMS ("out of memory")
 *   -EKEYREJECTED, -ENOKEY; ERR_AT_KEY  EXIT_KEY (wrong key, key input)
 *   -EUCLEAN, -EIO                      EXIT_UNREADABLE (corruption, I/O)
 *   ERR_AT_OPEN_RO: anything else       EXIT_UNREADABLE (cannot be opened)
 *   ERR_AT_OPEN_RW: -EBUSY, -EOPNOTSUPP EXIT_PROBLEMS (locked, mounted, log
 *                                       tree, unsupported features: refused)
 *                   anything else       EXIT_UNREADABLE
 *   ERR_AT_RUN: anything else           EXIT_PROBLEMS (refused or failed)
 */
int exit_code(int err, enum err_stage stage);

/* Print "ERROR: out of memory" and exit with exit_code(-ENOMEM, ...). */
void die_oom(void) __attribute__((noreturn));

/* -1 quiet, 0 normal, >0 verbose; set once by the global options. */
extern int g_verbose;

void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The text of the first error() of the run, without its prefix ("" if none). */
const char *messages_first_error(void);
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Informational line on stderr, suppressed by -q. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed only with -v. */
void verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
