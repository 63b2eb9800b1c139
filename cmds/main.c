// SPDX-License-Identifier: GPL-2.0
/*
 * btrfs-extcrypt: global options, the command table and dispatch with
 * unambiguous prefixes (Documentation/design.rst section 4).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "check/check-run.h"
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/key-input.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/progress.h"
#include "common/utils.h"
#include "crypto/csum.h"
#include "crypto/fscrypt-keys.h"
#include <uuid/uuid.h>
#include "kernel-shared/ctree.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/disk-io.h"

static const char *const inspect_group_usage[] = {
	"btrfs-extcrypt inspect <command> [options] <image>",
	"Read-only inspection of an image",
	NULL
};

static const struct cmd_struct *const inspect_cmds[] = {
	&cmd_struct_inspect_dump_super,
	&cmd_struct_inspect_dump_tree,
	&cmd_struct_inspect_resolve_logical,
	&cmd_struct_inspect_file,
	NULL
};

static const struct cmd_group inspect_group = { inspect_group_usage, inspect_cmds };

static const char *const key_group_usage[] = {
	"btrfs-extcrypt key <command> [options]",
	"Master key utilities",
	NULL
};

static const struct cmd_struct *const key_cmds[] = {
	&cmd_struct_key_id,
	&cmd_struct_key_generate,
	NULL
};

static const struct cmd_group key_group = { key_group_usage, key_cmds };

static const char *const top_usage[] = {
	"btrfs-extcrypt [--format text|json] [-v|-q] [--progress-fd N] <command> [options] <image>",
	"Offline tools for btrfs images with fscrypt per-extent encryption",
	"",
	"Global options:",
	OPTLINE("--format text|json", "output format (default text)"),
	OPTLINE("-v, --verbose", "more messages"),
	OPTLINE("-q, --quiet", "only errors"),
	OPTLINE("--progress-fd N", "progress of long jobs as JSON lines on file descriptor N"),
	OPTLINE("--help", "this help; 'btrfs-extcrypt <command> --help' for a command"),
	OPTLINE("--version", "print the version"),
	"",
	"Exit codes: 0 success, 1 problems found or operation failed, 2 usage error,",
	"3 image unreadable, 4 key error.",
	NULL
};

static const char *const debug_group_usage[] = {
	"btrfs-extcrypt debug <command> [options] <image>",
	"Developer commands that exercise the write engine (not for users)",
	NULL
};

static const struct cmd_struct *const debug_cmds[] = {
	&cmd_struct_debug_xattrs,
	NULL
};

static const struct cmd_group debug_group = { debug_group_usage, debug_cmds };

static const struct cmd_struct inspect_cmd = {
	.token = "inspect", .usagestr = inspect_group_usage, .next = &inspect_group
};
static const struct cmd_struct key_cmd = {
	.token = "key", .usagestr = key_group_usage, .next = &key_group
};
static const struct cmd_struct debug_cmd = {
	.token = "debug", .usagestr = debug_group_usage, .next = &debug_group,
	.flags = CMD_HIDDEN
};

static const struct cmd_struct *const top_cmds[] = {
	&inspect_cmd,
	&key_cmd,
	&cmd_struct_encrypt,
	&cmd_struct_decrypt,
	&cmd_struct_rekey,
	&cmd_struct_reflink,
	&cmd_struct_restore,
	&cmd_struct_check,
	&debug_cmd,
	NULL
};

static const struct cmd_group top_group = { top_usage, top_cmds };

void usage_print(const char *const *usagestr, bool full, bool to_stderr)
{
	FILE *out = to_stderr ? stderr : stdout;
	int i = 0;

	if (!usagestr || !usagestr[0])
		return;
	fprintf(out, "usage: %s\n", usagestr[i++]);
	/* Further synopsis lines come before the summary line starting with a capital. */
	while (usagestr[i] && usagestr[i][0] && strncmp(usagestr[i], "btrfs-extcrypt", 14) == 0)
		fprintf(out, "       %s\n", usagestr[i++]);
	if (!full)
		return;
	/* Summary and description indented by 4; option lines carry their tabs. */
	for (; usagestr[i]; i++)
		fprintf(out, "%s%s\n", usagestr[i][0] && usagestr[i][0] != '\t' ? "    " : "",
			usagestr[i]);
}

/* The one-line summary: the first line after the synopsis lines. */
static const char *usage_summary(const char *const *usagestr)
{
	for (int i = 0; usagestr && usagestr[i]; i++)
		if (strncmp(usagestr[i], "btrfs-extcrypt", 14) != 0)
			return usagestr[i];
	return "";
}

static int cmd_struct_print_list(const struct cmd_group *grp, const char *prefix, FILE *out)
{
	for (const struct cmd_struct *const *cp = grp->commands; *cp; cp++) {
		const struct cmd_struct *c = *cp;
		char name[128];

		if (c->flags & CMD_HIDDEN)
			continue;
		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? " " : "", c->token);
		if (c->next)
			cmd_struct_print_list(c->next, name, out);
		else
			fprintf(out, "  %-28s %s\n", name, usage_summary(c->usagestr));
	}
	return 0;
}

int usage_error(const struct cmd_struct *cmd, const char *msg, ...)
{
	if (msg) {
		char line[1024];
		va_list ap;

		va_start(ap, msg);
		vsnprintf(line, sizeof(line), msg, ap);
		va_end(ap);
		error("%s", line);
	}
	if (cmd)
		usage_print(cmd->usagestr, false, true);
	return EXIT_USAGE;
}

/* The running command's argv, for naming a bad option (getopt prints nothing: opterr 0). */
static char **cmd_argv;

/*
 * getopt's '?' (unknown option, or a long option without its argument) or
 * ':' as one ERROR line, naming the option as given, up to any '='.
 */
static void report_bad_option(int c)
{
	const char *arg = optind > 0 && cmd_argv ? cmd_argv[optind - 1] : "";
	int n = (int)strcspn(arg, "=");

	if (c == ':' || (optopt && arg[0] == '-' && arg[1] == '-'))
		error("option '%.*s' needs an argument", n, arg);
	else if (optopt && optopt < 0x100)
		error("unrecognized option '-%c', or it needs an argument", optopt);
	else
		error("unrecognized option '%.*s'", n, arg);
}

int cmd_help_or_usage(const struct cmd_struct *cmd, int c)
{
	if (c == GETOPT_VAL_HELP) {
		usage_print(cmd->usagestr, true, false);
		return EXIT_OK;
	}
	if (c == '?' || c == ':')
		report_bad_option(c);
	usage_print(cmd->usagestr, false, true);
	return EXIT_USAGE;
}

/* A key option after the first key (CMD_KEYS_MULTI), or a new-key option (CMD_NEW_KEY). */
static int parse_extra_key(struct cmd_context *ctx, int c, const char *arg)
{
	unsigned int flags = ctx->cmd->flags;
	bool key_opt = c == GETOPT_VAL_KEY_FILE || c == GETOPT_VAL_KEY_FD;
	struct key_input *ki;

	if (key_opt && (flags & CMD_KEYS_MULTI) && key_input_given(&ctx->key)) {
		if (ctx->nr_more_keys == CMD_MAX_KEYS - 1)
			return usage_error(ctx->cmd, "at most %d keys", CMD_MAX_KEYS);
		ki = &ctx->more_keys[ctx->nr_more_keys++];
		key_input_init(ki);
		return key_input_parse_opt(ki, c, arg) > 0 ? CMD_PARSE_OK
							   : usage_error(ctx->cmd, NULL);
	}
	if ((c != GETOPT_VAL_NEW_KEY_FILE && c != GETOPT_VAL_NEW_KEY_FD) || !(flags & CMD_NEW_KEY))
		return 0;
	if (key_input_given(&ctx->new_key))
		return usage_error(ctx->cmd, "only one of --new-key-file and --new-key-fd, once");
	return key_input_parse_opt(&ctx->new_key, c == GETOPT_VAL_NEW_KEY_FILE ?
				   GETOPT_VAL_KEY_FILE : GETOPT_VAL_KEY_FD, arg) > 0 ?
	       CMD_PARSE_OK : usage_error(ctx->cmd, NULL);
}

int cmd_parse_common(struct cmd_context *ctx, int c, const char *arg)
{
	int ret = parse_extra_key(ctx, c, arg);

	if (ret)
		return ret;
	ret = key_input_parse_opt(&ctx->key, c, arg);

	if (c == GETOPT_VAL_FORCE && (ctx->cmd->flags & CMD_NOT_MOUNTED)) {
		ctx->force = true;
		return CMD_PARSE_OK;
	}
	if (c == GETOPT_VAL_DEVICE && (ctx->cmd->flags & CMD_MULTI_DEVICE)) {
		if (ctx->nr_devices == CMD_MAX_DEVICES)
			return usage_error(ctx->cmd, "at most %d --device options", CMD_MAX_DEVICES);
		ctx->devices[ctx->nr_devices++] = arg;
		return CMD_PARSE_OK;
	}
	if (c == GETOPT_VAL_SUPER) {
		u64 mirror;

		if (parse_u64(arg, &mirror) || mirror > 2)
			return usage_error(ctx->cmd, "invalid superblock copy '%s' (0, 1 or 2)", arg);
		ctx->super_mirror = (int)mirror;
		return CMD_PARSE_OK;
	}
	if (ret > 0)
		return CMD_PARSE_OK;
	if (ret < 0)
		return usage_error(ctx->cmd, NULL);
	return cmd_help_or_usage(ctx->cmd, c);
}

int check_argc_exact(const struct cmd_struct *cmd, int argc, int n)
{
	if (argc < n)
		return usage_error(cmd, "not enough arguments: %d needed", n);
	if (argc > n)
		return usage_error(cmd, "too many arguments: %d needed", n);
	return 0;
}

/*
 * Find the command named by token: an exact match or the only command it is
 * a prefix of.  Returns NULL after printing an error otherwise.
 */
static const struct cmd_struct *lookup_cmd(const struct cmd_group *grp, const char *token)
{
	const struct cmd_struct *match = NULL;
	size_t len = strlen(token);
	int nmatch = 0;

	for (const struct cmd_struct *const *cp = grp->commands; *cp; cp++) {
		const struct cmd_struct *c = *cp;

		if (strcmp(c->token, token) == 0)
			return c;
		if (strncmp(c->token, token, len) == 0) {
			match = c;
			nmatch++;
		}
	}
	if (nmatch == 1)
		return match;
	if (nmatch > 1)
		error("ambiguous command '%s'", token);
	else
		error("unknown command '%s'", token);
	return NULL;
}

static void print_group_help(const struct cmd_group *grp, const char *prefix, bool to_stderr)
{
	FILE *out = to_stderr ? stderr : stdout;

	usage_print(grp->usagestr, grp == &top_group, to_stderr);
	fprintf(out, "\nCommands:\n");
	cmd_struct_print_list(grp, prefix, out);
}

/*
 * A mounted filesystem changes under a reader: as btrfs check and btrfs
 * restore do, refuse it unless --force, which only warns.
 */
static int refuse_mounted(struct cmd_context *ctx)
{
	char why[512];
	u32 i;

	for (i = 0; i < ctx->fs->nr_devs; i++)
		if (ctx->fs->devs[i].fd >= 0 &&
		    image_check_not_mounted(ctx->fs->devs[i].fd, ctx->fs->devs[i].path, why,
					    sizeof(why)))
			break;
	if (i == ctx->fs->nr_devs)
		return 0;
	if (ctx->force) {
		warning("%s; going on because of --force: results may be stale", why);
		return 0;
	}
	error("%s; use --force to %s it anyway", why, ctx->cmd->token);
	return exit_code(-EBUSY, ERR_AT_OPEN_RW);
}

/* -v: what was opened. */
static void describe_image(const struct fs_info *fs, const char *path)
{
	char uuid[37];

	uuid_unparse(fs->fsid, uuid);
	verbose("Opened %s%s: fsid %s, generation %llu, nodesize %u, sectorsize %u, csum %s, %zu chunks, incompat 0x%llx, compat_ro 0x%llx%s",
		path, fs->writable ? " for writing" : "", uuid, fs->generation, fs->nodesize,
		fs->sectorsize, csum_type_name(fs->csum_type), fs->nr_chunks, fs->incompat,
		fs->compat_ro,
		fs->incompat & BTRFS_FEATURE_INCOMPAT_ENCRYPT ? ", encryption in use" : "");
}

/* Whether two of the key inputs read standard input. */
static bool stdin_twice(const struct cmd_context *ctx)
{
	const struct key_input *all[CMD_MAX_KEYS + 1];
	size_t n = 0, from_stdin = 0;

	all[n++] = &ctx->key;
	all[n++] = &ctx->new_key;
	for (size_t i = 0; i < ctx->nr_more_keys; i++)
		all[n++] = &ctx->more_keys[i];
	for (size_t i = 0; i < n; i++)
		from_stdin += (all[i]->path && !strcmp(all[i]->path, "-")) || all[i]->fd == 0;
	return from_stdin > 1;
}

/* Load one more key with the format of the first; refuse an identifier seen already. */
static int load_other_key(struct cmd_context *ctx, struct key_input *ki,
			  struct fscrypt_master_key **mk, const char *what)
{
	int ret;

	ki->format = ctx->key.format;
	ret = cmd_load_master_key(ki, mk);
	if (ret)
		return ret;
	for (size_t i = 0; i < ctx->nr_mks; i++) {
		if (ctx->mks[i] != *mk &&
		    !memcmp(ctx->mks[i]->identifier, (*mk)->identifier, FSCRYPT_KEY_IDENTIFIER_SIZE)) {
			error("%s is the same key as another one given (same identifier): the keys must differ",
			      what);
			return exit_code(-EINVAL, ERR_AT_KEY);
		}
	}
	return 0;
}

/*
 * A write command builds on nothing check rejects: its rules, before the
 * first write (with the keys given for the commands that decrypt).
 */
static int verify_image(struct cmd_context *ctx)
{
	struct fscrypt_master_key *keys[CMD_MAX_KEYS + 1];
	size_t n = 0;

	if (ctx->cmd->flags & CMD_VERIFY_KEYS) {
		for (size_t i = 0; i < ctx->nr_mks; i++)
			keys[n++] = ctx->mks[i];
		if (!ctx->nr_mks && ctx->mk)
			keys[n++] = ctx->mk;
		if (ctx->new_mk)
			keys[n++] = ctx->new_mk;
	}
	return check_verify_image(ctx->fs, keys, n);
}

/* Every key the options name: ctx->mk (= mks[0]), the others, the new key. */
static int load_keys(struct cmd_context *ctx)
{
	int ret;

	if (stdin_twice(ctx))
		return usage_error(ctx->cmd, "only one key can come from standard input");
	ret = cmd_load_master_key(&ctx->key, &ctx->mk);
	if (ret)
		return ret;
	ctx->mks[ctx->nr_mks++] = ctx->mk;
	for (size_t i = 0; i < ctx->nr_more_keys; i++) {
		ret = load_other_key(ctx, &ctx->more_keys[i], &ctx->mks[ctx->nr_mks], "a --key-file");
		if (ctx->mks[ctx->nr_mks])
			ctx->nr_mks++;
		if (ret)
			return ret;
	}
	if (key_input_given(&ctx->new_key))
		ret = load_other_key(ctx, &ctx->new_key, &ctx->new_mk, "the new key");
	return ret;
}

/*
 * Provide what cmd->flags ask for: the key (before the image is touched, so
 * that a bad key is a key error whatever the image), then the image.
 * Returns 0 or the exit code, after one ERROR line.
 */
static int cmd_setup(struct cmd_context *ctx)
{
	const struct cmd_struct *cmd = ctx->cmd;
	bool key_given = key_input_given(&ctx->key);
	int ret;

	if ((cmd->flags & CMD_KEY_REQUIRED) && !key_given)
		return usage_error(cmd, "a key is needed: --key-file PATH or --key-fd N");
	if ((cmd->flags & CMD_KEY_OPTIONAL) && ctx->key.format_given && !key_given)
		return usage_error(cmd, "--key-format needs --key-file or --key-fd");
	if ((cmd->flags & CMD_NEW_KEY) && !key_input_given(&ctx->new_key))
		return usage_error(cmd, "a new key is needed: --new-key-file PATH or --new-key-fd N");
	if ((cmd->flags & (CMD_KEY_REQUIRED | CMD_KEY_OPTIONAL)) && key_given) {
		ret = load_keys(ctx);
		if (ret)
			return ret;
	}
	if (cmd->flags & CMD_IMAGE_RW) {
		ret = cmd_open_image_rw(ctx->image_path, ctx->devices, ctx->nr_devices,
					cmd->flags & CMD_VERIFY, &ctx->fs);
	} else if (cmd->flags & CMD_IMAGE_RO) {
		struct open_args args = { .super_mirror = ctx->super_mirror,
					  .cache_bytes = ctx->cache_bytes,
					  .devices = ctx->devices, .nr_devices = ctx->nr_devices };

		ret = cmd_open_image_args(ctx->image_path, &args, !ctx->quiet_log_tree, &ctx->fs);
		if (!ret && (cmd->flags & CMD_NOT_MOUNTED))
			ret = refuse_mounted(ctx);
	} else {
		return 0;
	}
	if (!ret)
		describe_image(ctx->fs, ctx->image_path);
	if (!ret && (cmd->flags & CMD_VERIFY))
		ret = verify_image(ctx);
	return ret;
}

/* Parse, set up, run and tear down one command (see cmds/commands.h). */
static int run_command(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct cmd_context ctx = { .cmd = cmd, .super_mirror = -1 };
	int ret;

	key_input_init(&ctx.key);
	key_input_init(&ctx.new_key);
	ctx.opts = fault_calloc(1, cmd->opts_size ? cmd->opts_size : 1);
	if (!ctx.opts)
		die_oom();
	cmd_argv = argv;
	opterr = 0;
	ret = cmd->parse(&ctx, argc, argv);
	if (ret == CMD_PARSE_OK) {
		ret = cmd_setup(&ctx);
		if (!ret)
			ret = cmd->run(&ctx);
	}
	if (cmd->release)
		cmd->release(&ctx);
	close_image(ctx.fs);
	for (size_t i = 0; i < ctx.nr_mks; i++)
		cmd_free_master_key(ctx.mks[i]);
	if (!ctx.nr_mks)
		cmd_free_master_key(ctx.mk);
	cmd_free_master_key(ctx.new_mk);
	free(ctx.opts);
	return ret;
}

static int dispatch(const struct cmd_group *grp, const char *prefix, int argc, char **argv)
{
	const struct cmd_struct *cmd;
	char name[128];

	if (argc < 1) {
		error("no command given");
		print_group_help(grp, prefix, true);
		return EXIT_USAGE;
	}
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0) {
		print_group_help(grp, prefix, false);
		return EXIT_OK;
	}
	cmd = lookup_cmd(grp, argv[0]);
	if (!cmd) {
		print_group_help(grp, prefix, true);
		return EXIT_USAGE;
	}
	snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? " " : "", cmd->token);
	if (cmd->next)
		return dispatch(cmd->next, name, argc - 1, argv + 1);
	argv[0] = name;
	optind = 0;	/* full getopt reset for the command's own parsing */
	return run_command(cmd, argc, argv);
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "format", required_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "progress-fd", required_argument, NULL, 'P' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c, ret;

	/* Global options stop at the first non-option: the command name. */
	while ((c = getopt_long(argc, argv, "+vqh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'F':
			if (strcmp(optarg, "text") == 0) {
				g_format = FORMAT_TEXT;
			} else if (strcmp(optarg, "json") == 0) {
				g_format = FORMAT_JSON;
			} else {
				error("unknown output format '%s' (text or json)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'P': {
			unsigned long long fd;

			if (parse_u64(optarg, &fd) || fd > 1000000 || fcntl((int)fd, F_GETFD) < 0) {
				error("--progress-fd needs an open file descriptor, not '%s'", optarg);
				return EXIT_USAGE;
			}
			g_progress_fd = (int)fd;
			break;
		}
		case 'v':
			g_verbose++;
			break;
		case 'q':
			g_verbose = -1;
			break;
		case 'h':
			print_group_help(&top_group, "", false);
			return EXIT_OK;
		case 'V':
			printf("btrfs-extcrypt %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			usage_print(top_usage, false, true);
			return EXIT_USAGE;
		}
	}
	ret = dispatch(&top_group, "", argc - optind, argv + optind);
	if (g_format == FORMAT_JSON && ret != EXIT_OK && !json_doc_printed())
		json_error_doc_print(ret);
	return ret;
}
