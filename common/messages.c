// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include "common/escape.h"
#include "common/messages.h"

int g_verbose;
static char first_error[2048];

const char *messages_first_error(void)
{
	return first_error;
}

static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
	/*
	 * One fprintf of a pre-formatted line keeps the message atomic.  Names
	 * in messages are rendered by their callers (common/escape.h); what
	 * still holds a control byte or malformed UTF-8 is escaped here, so no
	 * message can move the cursor or break a line.
	 */
	char line[2048], esc[4 * sizeof(line)];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "%s%s\n", prefix, str_text(line, esc, sizeof(esc)));
}

void error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (!first_error[0]) {
		va_list copy;

		va_copy(copy, ap);
		vsnprintf(first_error, sizeof(first_error), fmt, copy);
		va_end(copy);
	}
	vmsg("ERROR: ", fmt, ap);
	va_end(ap);
}

void warning(const char *fmt, ...)
{
	va_list ap;

	if (g_verbose < 0)
		return;
	va_start(ap, fmt);
	vmsg("WARNING: ", fmt, ap);
	va_end(ap);
}

void note(const char *fmt, ...)
{
	va_list ap;

	if (g_verbose < 0)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void verbose(const char *fmt, ...)
{
	va_list ap;

	if (g_verbose <= 0)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

int exit_code(int err, enum err_stage stage)
{
	if (!err)
		return EXIT_OK;
	if (err == -ENOMEM)
		return EXIT_PROBLEMS;
	if (stage == ERR_AT_KEY || err == -EKEYREJECTED || err == -ENOKEY)
		return EXIT_KEY;
	if (err == -EUCLEAN || err == -EIO)
		return EXIT_UNREADABLE;
	switch (stage) {
	case ERR_AT_OPEN_RO:
		return EXIT_UNREADABLE;
	case ERR_AT_OPEN_RW:
		return err == -EBUSY || err == -EOPNOTSUPP ? EXIT_PROBLEMS : EXIT_UNREADABLE;
	default:
		return EXIT_PROBLEMS;
	}
}

void die_oom(void)
{
	error("out of memory");
	exit(exit_code(-ENOMEM, ERR_AT_RUN));
}
