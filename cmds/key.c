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

/*
 * getopt's own message would echo a mistyped option with its value, and a
 * value there may be a key pasted onto the command line: name the option
 * only, up to any '='.
 */
static int bad_option(const struct cmd_struct *cmd, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	int n = (int)strcspn(arg, "=");

	if (c == ':')
		error("option '%.*s' needs an argument", n, arg);
	else if (optopt && optopt < 0x100 && arg[0] == '-' && arg[1] != '-')
		error("unrecognized option '-%c'", optopt);
	else
		error("unrecognized option '%.*s'", n, arg);
	return cmd_help_or_usage(cmd, '?');
}

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

int cmd_key_id(const struct cmd_struct *cmd, int argc, char **argv)
{
	static const struct option long_opts[] = {
		KEY_INPUT_LONG_OPTIONS,
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct fscrypt_master_key *mk;
	struct key_input ki;
	struct key_buf *kb;
	int c, ret;

	key_input_init(&ki);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		if (c == '?' || c == ':')
			return bad_option(cmd, c, argv);
		ret = key_input_parse_opt(&ki, c, optarg);
		if (ret < 0)
			return usage_error(cmd, NULL);
		if (ret > 0)
			continue;
		return cmd_help_or_usage(cmd, c);
	}
	ret = check_argc_exact(cmd, argc - optind, 0);
	if (ret)
		return ret;
	if (!key_input_given(&ki))
		return usage_error(cmd, "a key is needed: --key-file PATH or --key-fd N");

	if (key_input_read(&ki, &kb))
		return EXIT_KEY;
	mk = master_key_from(kb->data, kb->len);
	key_buf_free(kb);
	if (!mk)
		return EXIT_KEY;
	print_key_id(mk->identifier, NULL);
	secret_free(mk, sizeof(*mk));
	return EXIT_OK;
}

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

int cmd_key_generate(const struct cmd_struct *cmd, int argc, char **argv)
{
	enum { GETOPT_VAL_OUTPUT = 0x1200 };
	static const struct option long_opts[] = {
		{ "output", required_argument, NULL, GETOPT_VAL_OUTPUT },
		{ "key-format", required_argument, NULL, GETOPT_VAL_KEY_FORMAT },
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	const size_t key_len = FSCRYPT_MAX_KEY_SIZE;
	const size_t buf_len = 2 * FSCRYPT_MAX_KEY_SIZE + 1;
	struct fscrypt_master_key *mk = NULL;
	const char *path = NULL;
	struct key_input ki;
	uint8_t *buf = NULL;
	char *hex;
	int c, fd = -1, ret, exit_code = EXIT_PROBLEMS;

	key_input_init(&ki);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		if (c == '?' || c == ':')
			return bad_option(cmd, c, argv);
		if (c == GETOPT_VAL_OUTPUT) {
			path = optarg;
			continue;
		}
		ret = key_input_parse_opt(&ki, c, optarg);
		if (ret < 0)
			return usage_error(cmd, NULL);
		if (ret > 0)
			continue;
		return cmd_help_or_usage(cmd, c);
	}
	ret = check_argc_exact(cmd, argc - optind, 0);
	if (ret)
		return ret;
	if (!path || !*path)
		return usage_error(cmd, "--output FILE is required");

	/* Raw key then its hex text, both in secret memory. */
	buf = secret_alloc(key_len + buf_len);
	if (!buf) {
		error("cannot allocate memory for the key");
		return EXIT_PROBLEMS;
	}
	hex = (char *)buf + key_len;
	ret = random_bytes(buf, key_len);
	if (ret) {
		errno = -ret;
		error("cannot get random bytes: %m");
		goto out;
	}
	mk = master_key_from(buf, key_len);
	if (!mk)
		goto out;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			error("%s already exists: refusing to overwrite a key file", path);
		else
			error("cannot create %s: %m", path);
		goto out;
	}
	/* The umask can only narrow 0600; make it exact anyway. */
	if (fchmod(fd, 0600) < 0) {
		error("cannot set mode 0600 on %s: %m", path);
		goto fail_unlink;
	}
	if (ki.format == KEY_FORMAT_HEX) {
		hex_encode(buf, key_len, hex);
		hex[2 * key_len] = '\n';
		ret = write_all(fd, hex, 2 * key_len + 1);
	} else {
		ret = write_all(fd, buf, key_len);
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (ret) {
		errno = -ret;
		error("cannot write %s: %m", path);
		goto fail_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		error("cannot write %s: %m", path);
		goto fail_unlink;
	}
	fd = -1;
	print_key_id(mk->identifier, path);
	exit_code = EXIT_OK;
	goto out;

fail_unlink:
	/* Only reached after O_EXCL created the file: it is ours to remove. */
	unlink(path);
out:
	if (fd >= 0)
		close(fd);
	secret_free(mk, sizeof(*mk));
	secret_free(buf, key_len + buf_len);
	return exit_code;
}
