// SPDX-License-Identifier: GPL-2.0
/*
 * key id: the fscrypt v2 identifier of a master key, as the kernel reports it
 * when the key is added (HKDF context 1).
 * key generate: a new 64-byte random master key in a new file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include "cmds/commands.h"
#include "common/key-input.h"
#include "common/messages.h"
#include "common/output.h"
#include "crypto/fscrypt-keys.h"

const char *const cmd_key_id_usage[] = {
	"btrfs-extcrypt key id [options]",
	"Print the identifier of a master key",
	"",
	"The identifier is what the kernel reports when the key is added",
	"(FS_IOC_ADD_ENCRYPTION_KEY) and what fscrypt v2 policies store.",
	"The key is read from a file or file descriptor, never from the command line.",
	"",
	KEY_INPUT_OPTLINES(OPTLINE),
	OPTLINE("--help", "show this help"),
	NULL
};

const char *const cmd_key_generate_usage[] = {
	"btrfs-extcrypt key generate [options] --output FILE",
	"Write a new random 64-byte master key to a new file",
	"",
	"FILE is created with mode 0600 and must not exist yet.",
	"The identifier of the new key is printed.",
	"",
	OPTLINE("--output FILE", "the key file to create"),
	OPTLINE("--key-format raw|hex", "write raw bytes (default) or hex text and a newline"),
	OPTLINE("--help", "show this help"),
	NULL
};

/* getopt value of key generate's --output */
#define GETOPT_VAL_OUTPUT	0x1200

static void print_key_id(const uint8_t id[FSCRYPT_KEY_IDENTIFIER_SIZE], const char *path)
{
	char hex[2 * FSCRYPT_KEY_IDENTIFIER_SIZE + 1];

	if (g_format == FORMAT_JSON) {
		struct json_object *doc = json_doc_new();

		json_object_object_add(doc, "key-identifier",
				       json_hex(id, FSCRYPT_KEY_IDENTIFIER_SIZE));
		if (path)
			json_object_object_add(doc, "path", json_object_new_string(path));
		json_doc_print(doc);
		return;
	}
	hex_encode(id, FSCRYPT_KEY_IDENTIFIER_SIZE, hex);
	if (path)
		printf("Key file: %s\n", path);
	printf("Key identifier: %s\n", hex);
}

/* Master key state from raw bytes, in secret memory; returns NULL after an ERROR. */
static struct fscrypt_master_key *master_key_from(const uint8_t *raw, size_t len)
{
	struct fscrypt_master_key *mk = secret_alloc(sizeof(*mk));
	int ret;

	if (!mk) {
		error("cannot allocate memory for the key");
		return NULL;
	}
	ret = fscrypt_master_key_init(mk, raw, len);
	if (ret) {
		error("cannot derive the key identifier: %s", strerror(-ret));
		secret_free(mk, sizeof(*mk));
		return NULL;
	}
	return mk;
}

/* key id and key generate have no options of their own beyond these. */
struct key_generate_opts {
	const char *path;	/* --output */
};

/* Both commands' getopt loop: key options (key id) or --output (key generate). */
static int key_parse(struct cmd_context *ctx, int argc, char **argv,
		     const struct option *long_opts)
{
	struct key_generate_opts *o = ctx->opts;
	int c, ret;

	while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		if (c == '?' || c == ':')
			return cmd_help_or_usage(ctx->cmd, c);
		if (c == GETOPT_VAL_OUTPUT) {
			o->path = optarg;
			continue;
		}
		ret = cmd_parse_common(ctx, c, optarg);
		if (ret != CMD_PARSE_OK)
			return ret;
	}
	ret = check_argc_exact(ctx->cmd, argc - optind, 0);
	return ret ? ret : CMD_PARSE_OK;
}

static int key_id_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option long_opts[] = {
		KEY_INPUT_LONG_OPTIONS,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};

	return key_parse(ctx, argc, argv, long_opts);
}

/* The dispatcher has loaded the key (CMD_KEY_REQUIRED). */
static int key_id_run(struct cmd_context *ctx)
{
	print_key_id(ctx->mk->identifier, NULL);
	return EXIT_OK;
}

DEFINE_COMMAND(key_id, "id", CMD_KEY_REQUIRED, char);

/* Write all of buf; returns 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = write(fd, p, len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Fill buf from getrandom(2), blocking until the pool is ready. */
static int random_bytes(uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t r = getrandom(buf, len, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

#define KEYGEN_LEN	FSCRYPT_MAX_KEY_SIZE
#define KEYGEN_HEX_LEN	(2 * FSCRYPT_MAX_KEY_SIZE + 1)

/*
 * Create path (mode 0600, never an existing file) holding key (KEYGEN_LEN
 * bytes), raw or as hex text and a newline written through hex (secret
 * memory of KEYGEN_HEX_LEN bytes).  Returns 0, or -1 after an ERROR line,
 * with the file removed again.
 */
static int write_key_file(const char *path, const uint8_t *key, char *hex, enum key_format fmt)
{
	int fd, ret;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			error("%s already exists: refusing to overwrite a key file", path);
		else
			error("cannot create %s: %m", path);
		return -1;
	}
	/* The umask can only narrow 0600; make it exact anyway. */
	if (fchmod(fd, 0600) < 0) {
		error("cannot set mode 0600 on %s: %m", path);
		goto fail_unlink;
	}
	if (fmt == KEY_FORMAT_HEX) {
		hex_encode(key, KEYGEN_LEN, hex);
		hex[2 * KEYGEN_LEN] = '\n';
		ret = write_all(fd, hex, 2 * KEYGEN_LEN + 1);
	} else {
		ret = write_all(fd, key, KEYGEN_LEN);
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (ret) {
		errno = -ret;
		error("cannot write %s: %m", path);
		goto fail_unlink;
	}
	ret = close(fd);
	fd = -1;
	if (ret < 0) {
		error("cannot write %s: %m", path);
		goto fail_unlink;
	}
	return 0;

fail_unlink:
	/* Only reached after O_EXCL created the file: it is ours to remove. */
	if (fd >= 0)
		close(fd);
	unlink(path);
	return -1;
}

static int key_generate_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "output", required_argument, NULL, GETOPT_VAL_OUTPUT },
		{ "key-format", required_argument, NULL, GETOPT_VAL_KEY_FORMAT },
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	const struct key_generate_opts *o = ctx->opts;
	int ret;

	ret = key_parse(ctx, argc, argv, long_opts);
	if (ret != CMD_PARSE_OK)
		return ret;
	if (!o->path || !*o->path)
		return usage_error(ctx->cmd, "--output FILE is required");
	return CMD_PARSE_OK;
}

static int key_generate_run(struct cmd_context *ctx)
{
	const struct key_generate_opts *o = ctx->opts;
	struct fscrypt_master_key *mk = NULL;
	int ret, status = EXIT_PROBLEMS;
	uint8_t *buf;

	/* Raw key then its hex text, both in secret memory. */
	buf = secret_alloc(KEYGEN_LEN + KEYGEN_HEX_LEN);
	if (!buf) {
		error("cannot allocate memory for the key");
		return EXIT_PROBLEMS;
	}
	ret = random_bytes(buf, KEYGEN_LEN);
	if (ret) {
		errno = -ret;
		error("cannot get random bytes: %m");
		goto out;
	}
	mk = master_key_from(buf, KEYGEN_LEN);
	if (!mk)
		goto out;
	if (write_key_file(o->path, buf, (char *)buf + KEYGEN_LEN, ctx->key.format))
		goto out;
	print_key_id(mk->identifier, o->path);
	status = EXIT_OK;
out:
	secret_free(mk, sizeof(*mk));
	secret_free(buf, KEYGEN_LEN + KEYGEN_HEX_LEN);
	return status;
}

DEFINE_COMMAND(key_generate, "generate", 0, struct key_generate_opts);
