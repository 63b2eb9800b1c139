// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include "common/key-input.h"
#include "common/messages.h"

/* Hex text: 2 digits per byte plus "\r\n"; one more byte detects "too long". */
#define HEX_TEXT_MAX	(2 * KEY_INPUT_MAX_SIZE + 2)
/* Room for any decodable text, so an oversized key is reported by its size. */
#define KEY_BUF_ROOM	(HEX_TEXT_MAX / 2 + 1)

static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int secret_count;
static int saved_dumpable = -1;
static struct rlimit saved_core;
static bool saved_core_valid;

/* First secret in: no core dumps, no ptrace attach by other users. */
static void secrets_begin(void)
{
	struct rlimit zero = { 0, 0 };

	pthread_mutex_lock(&secret_lock);
	if (secret_count++ == 0) {
		saved_dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
		saved_core_valid = getrlimit(RLIMIT_CORE, &saved_core) == 0;
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		if (saved_core_valid) {
			zero.rlim_max = saved_core.rlim_max;
			setrlimit(RLIMIT_CORE, &zero);
		}
	}
	pthread_mutex_unlock(&secret_lock);
}

/* Last secret out: restore what the process had. */
static void secrets_end(void)
{
	pthread_mutex_lock(&secret_lock);
	if (secret_count && --secret_count == 0) {
		if (saved_core_valid)
			setrlimit(RLIMIT_CORE, &saved_core);
		if (saved_dumpable > 0)
			prctl(PR_SET_DUMPABLE, saved_dumpable, 0, 0, 0);
	}
	pthread_mutex_unlock(&secret_lock);
}

static size_t secret_span(size_t size)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t p = page > 0 ? (size_t)page : 4096;

	return (size + p - 1) / p * p;
}

void *secret_alloc(size_t size)
{
	size_t span;
	void *p;

	if (!size)
		return NULL;
	span = secret_span(size);
	/* Core dumps go off before the first secret byte exists. */
	secrets_begin();
	p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		secrets_end();
		return NULL;
	}
	/* Best effort: RLIMIT_MEMLOCK may forbid it; core dumps are off anyway. */
	(void)mlock(p, span);
	(void)madvise(p, span, MADV_DONTDUMP);
	(void)madvise(p, span, MADV_WIPEONFORK);
	return p;
}

void secret_free(void *p, size_t size)
{
	size_t span;

	if (!p)
		return;
	span = secret_span(size);
	explicit_bzero(p, span);
	munlock(p, span);
	munmap(p, span);
	secrets_end();
}

void key_input_init(struct key_input *ki)
{
	ki->path = NULL;
	ki->fd = -1;
	ki->format = KEY_FORMAT_RAW;
	ki->format_given = false;
}

bool key_input_given(const struct key_input *ki)
{
	return ki->path || ki->fd >= 0;
}

int key_input_parse_opt(struct key_input *ki, int c, const char *arg)
{
	char *end;
	long v;

	switch (c) {
	case GETOPT_VAL_KEY_FILE:
		if (key_input_given(ki)) {
			error("only one of --key-file and --key-fd, once");
			return -EINVAL;
		}
		if (!arg || !*arg) {
			error("--key-file needs a path ('-' for standard input)");
			return -EINVAL;
		}
		ki->path = arg;
		return 1;
	case GETOPT_VAL_KEY_FD:
		if (key_input_given(ki)) {
			error("only one of --key-file and --key-fd, once");
			return -EINVAL;
		}
		errno = 0;
		v = arg ? strtol(arg, &end, 10) : -1;
		if (!arg || !*arg || *end || errno || v < 0 || v > INT_MAX) {
			error("--key-fd needs a file descriptor number, not '%s'", arg ? arg : "");
			return -EINVAL;
		}
		ki->fd = (int)v;
		return 1;
	case GETOPT_VAL_KEY_FORMAT:
		if (arg && strcmp(arg, "raw") == 0) {
			ki->format = KEY_FORMAT_RAW;
		} else if (arg && strcmp(arg, "hex") == 0) {
			ki->format = KEY_FORMAT_HEX;
		} else {
			error("--key-format must be raw or hex, not '%s'", arg ? arg : "");
			return -EINVAL;
		}
		ki->format_given = true;
		return 1;
	}
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A raw key that is nothing but hex digits (at least 32 of them, an even
 * count) is almost surely a hex key file read with the default raw format:
 * 32 random bytes are all hex digits with probability (22/256)^32.
 */
static bool looks_like_hex_text(const uint8_t *text, size_t len)
{
	if (len < 2 * KEY_INPUT_MIN_SIZE || len % 2)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hex_digit((char)text[i]) < 0)
			return false;
	return true;
}

int key_parse_hex(const char *text, size_t len, uint8_t *out, size_t out_size)
{
	if (len && text[len - 1] == '\n') {
		len--;
		if (len && text[len - 1] == '\r')
			len--;
	}
	if (!len || len % 2 || len / 2 > out_size)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);

		if (hi < 0 || lo < 0) {
			explicit_bzero(out, out_size);
			return -EINVAL;
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

/* Read up to cap bytes until EOF; returns the count or -errno. */
static ssize_t read_capped(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

void key_buf_free(struct key_buf *kb)
{
	if (!kb)
		return;
	/* kb and its data share one secret page run. */
	secret_free(kb, sizeof(*kb) + KEY_BUF_ROOM);
}

static const char *source_name(const struct key_input *ki, char *buf, size_t size)
{
	if (ki->path && strcmp(ki->path, "-") != 0)
		return ki->path;
	if (ki->path)
		return "standard input";
	snprintf(buf, size, "file descriptor %d", ki->fd);
	return buf;
}

int key_input_read(const struct key_input *ki, struct key_buf **out)
{
	uint8_t *text = NULL;
	struct key_buf *kb = NULL;
	char namebuf[48];
	const char *name;
	size_t cap;
	ssize_t n;
	int fd = -1, ret;

	*out = NULL;
	if (!key_input_given(ki)) {
		error("no key given: use --key-file PATH or --key-fd N");
		return -ENOKEY;
	}
	name = source_name(ki, namebuf, sizeof(namebuf));
	if (ki->path && strcmp(ki->path, "-") != 0) {
		fd = open(ki->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			ret = -errno;
			error("cannot open key file %s: %m", ki->path);
			return ret;
		}
	}

	kb = secret_alloc(sizeof(*kb) + KEY_BUF_ROOM);
	cap = ki->format == KEY_FORMAT_HEX ? HEX_TEXT_MAX : KEY_INPUT_MAX_SIZE;
	text = secret_alloc(cap + 1);
	if (!kb || !text) {
		error("cannot allocate memory for the key");
		ret = -ENOMEM;
		goto out;
	}
	kb->data = (uint8_t *)(kb + 1);

	n = read_capped(fd >= 0 ? fd : (ki->path ? STDIN_FILENO : ki->fd), text, cap + 1);
	if (n < 0) {
		ret = (int)n;
		errno = -ret;
		error("cannot read the key from %s: %m", name);
		goto out;
	}
	if ((size_t)n > cap) {
		error("key from %s is too long: a key is %d to %d bytes%s", name,
		      KEY_INPUT_MIN_SIZE, KEY_INPUT_MAX_SIZE,
		      ki->format == KEY_FORMAT_HEX ? " (32 to 128 hex digits)" :
		      looks_like_hex_text(text, cap) ? " (use --key-format hex for hex text)" : "");
		ret = -EINVAL;
		goto out;
	}

	if (ki->format == KEY_FORMAT_HEX) {
		ret = key_parse_hex((const char *)text, (size_t)n, kb->data, KEY_BUF_ROOM);
		if (ret < 0) {
			error("key from %s is not valid hex: expected 32 to 128 hex digits and an optional trailing newline",
			      name);
			goto out;
		}
		kb->len = (size_t)ret;
	} else {
		memcpy(kb->data, text, (size_t)n);
		kb->len = (size_t)n;
		if (looks_like_hex_text(text, (size_t)n))
			warning("key from %s is %zu hex digits, read as raw bytes; if it is hex text, use --key-format hex",
				name, (size_t)n);
	}
	if (kb->len < KEY_INPUT_MIN_SIZE || kb->len > KEY_INPUT_MAX_SIZE) {
		error("key from %s is %zu bytes: a key is %d to %d bytes%s", name, kb->len,
		      KEY_INPUT_MIN_SIZE, KEY_INPUT_MAX_SIZE,
		      ki->format == KEY_FORMAT_RAW ? " (use --key-format hex for hex text)" : "");
		ret = -EINVAL;
		goto out;
	}
	*out = kb;
	kb = NULL;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	secret_free(text, cap + 1);
	key_buf_free(kb);
	return ret;
}
