/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Master key input shared by every command that takes a key (Documentation/design.rst
 * section 4): --key-file PATH ('-' for stdin), --key-fd N, --key-format
 * raw|hex.  Keys never come from argv or the environment.
 *
 * Secrets live in "secret" memory: page-aligned, mlock()ed where the limits
 * allow, excluded from core dumps, and wiped with explicit_bzero() when
 * freed.  While any secret is allocated, core dumps are disabled for the
 * process (PR_SET_DUMPABLE 0 and RLIMIT_CORE 0); both are restored when the
 * last secret is freed.
 *
 * Errors are printed here, as one "ERROR: ..." line that never contains key
 * material; callers map a failed load to EXIT_KEY.
 */
#ifndef EXTCRYPT_KEY_INPUT_H
#define EXTCRYPT_KEY_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_INPUT_MIN_SIZE	16
#define KEY_INPUT_MAX_SIZE	64

/* getopt_long values of the key options (distinct from GETOPT_VAL_HELP). */
#define GETOPT_VAL_KEY_FILE	0x1101
#define GETOPT_VAL_KEY_FD	0x1102
#define GETOPT_VAL_KEY_FORMAT	0x1103
#define GETOPT_VAL_NEW_KEY_FILE	0x1104
#define GETOPT_VAL_NEW_KEY_FD	0x1105

/* Entries for a command's struct option array. */
#define KEY_INPUT_LONG_OPTIONS							\
	{ "key-file", required_argument, NULL, GETOPT_VAL_KEY_FILE },		\
	{ "key-fd", required_argument, NULL, GETOPT_VAL_KEY_FD },		\
	{ "key-format", required_argument, NULL, GETOPT_VAL_KEY_FORMAT }

/* The second key of a command that changes keys (rekey): the same sources. */
#define NEW_KEY_INPUT_LONG_OPTIONS						\
	{ "new-key-file", required_argument, NULL, GETOPT_VAL_NEW_KEY_FILE },	\
	{ "new-key-fd", required_argument, NULL, GETOPT_VAL_NEW_KEY_FD }

#define NEW_KEY_INPUT_OPTLINES(optline)						\
	optline("--new-key-file PATH", "read the new master key from PATH, '-' for standard input"), \
	optline("--new-key-fd N", "read the new master key from file descriptor N")

/* Usage lines for a command's usage array: KEY_INPUT_OPTLINES(OPTLINE). */
#define KEY_INPUT_OPTLINES(optline)						\
	optline("--key-file PATH", "read the master key from PATH, '-' for standard input"), \
	optline("--key-fd N", "read the master key from file descriptor N"),	\
	optline("--key-format raw|hex", "raw bytes (default, 16 to 64) or hex text with an optional trailing newline")
/*
 * The same for a command whose key options repeat (cmds/commands.h
 * CMD_KEYS_MULTI): KEYS_INPUT_OPTLINES(OPTLINE).
 */
#define KEYS_INPUT_OPTLINES(optline)						\
	optline("--key-file PATH", "read a master key from PATH, '-' for standard input; repeatable (up to 8 keys, e.g. the old and the new key of a rekey cut short): each inode is read with the key its context names"), \
	optline("--key-fd N", "read a master key from file descriptor N; repeatable"),	\
	optline("--key-format raw|hex", "raw bytes (default, 16 to 64) or hex text with an optional trailing newline (every key)")

enum key_format {
	KEY_FORMAT_RAW = 0,
	KEY_FORMAT_HEX = 1,
};

struct key_input {
	const char *path;	/* --key-file; "-" is stdin */
	int fd;			/* --key-fd; -1 when not given */
	enum key_format format;
	bool format_given;	/* --key-format was given */
};

void key_input_init(struct key_input *ki);

/*
 * Call from a command's getopt loop for every option character c.  Returns
 * 1 if c was a key option and has been taken, 0 if it is not a key option,
 * or -EINVAL after printing an ERROR (bad --key-fd number, unknown format,
 * two key sources): the command then returns EXIT_USAGE.
 */
int key_input_parse_opt(struct key_input *ki, int c, const char *arg);

/* Whether --key-file or --key-fd was given. */
bool key_input_given(const struct key_input *ki);

/* A key in secret memory. */
struct key_buf {
	uint8_t *data;
	size_t len;
};

/*
 * Read the key from the chosen source.  Returns 0 and *out (free it with
 * key_buf_free()), or a negative errno after printing an ERROR: -ENOKEY if
 * no key option was given, -EINVAL for a key that is not 16..64 bytes or
 * not valid hex, -ENOMEM, or the errno of open/read.  All of them mean
 * EXIT_KEY.  Nothing of the key is left outside *out.
 */
int key_input_read(const struct key_input *ki, struct key_buf **out);

/* Wipe and free; NULL is fine. */
void key_buf_free(struct key_buf *kb);

/*
 * Secret memory for key-derived state (e.g. struct fscrypt_master_key):
 * zeroed, page-granular, locked where possible, not dumped.  Returns NULL on
 * failure.  secret_free() wipes before unmapping; NULL is fine.
 */
void *secret_alloc(size_t size);
void secret_free(void *p, size_t size);

/*
 * Parse hex key text (upper or lower case, an even number of digits, an
 * optional trailing "\n" or "\r\n") into out (out_size bytes).  Returns the
 * number of bytes, or -EINVAL.
 */
int key_parse_hex(const char *text, size_t len, uint8_t *out, size_t out_size);

#endif
