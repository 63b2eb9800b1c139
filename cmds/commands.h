/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Command table (Documentation/design.rst section 4).
 *
 * A command is two functions and a set of flags, git-style: the flags say what
 * the command needs before it can work, and the dispatcher (cmds/main.c)
 * provides it once, the same way for every command:
 *
 *   1. parse(ctx, argc, argv): the command's own getopt loop.  It fills its
 *      options (ctx->opts, opts_size zeroed bytes owned by the dispatcher)
 *      and ctx->image_path, and hands every option it does not handle itself
 *      to cmd_parse_common() (the shared key options and --help).  It returns
 *      CMD_PARSE_OK or an exit code (usage error, --help).
 *   2. The dispatcher satisfies the flags: CMD_KEY_REQUIRED refuses a missing
 *      key as a usage error; a given key is read and loaded as a master key
 *      (ctx->mk) through common/key-input.h, before the image is touched;
 *      CMD_KEYS_MULTI lets the key options repeat (every key in ctx->mks,
 *      distinct identifiers); CMD_NEW_KEY loads a second, different key from
 *      --new-key-file or --new-key-fd (ctx->new_mk);
 *      CMD_IMAGE_RO / CMD_IMAGE_RW open ctx->image_path (ctx->fs) with the
 *      lock and the mounted/log-tree refusals of open_image_rw().
 *   3. run(ctx): the work.  It returns an exit code; engine errors become
 *      exit codes only through exit_code() (common/messages.h), most often
 *      by way of cmd_engine_error() (cmds/cmd-utils.h).
 *   4. The dispatcher calls release(ctx) if the command has one (to free what
 *      parse() allocated), closes the image and wipes the key.
 *
 * Parsing before setup is what lets options come in any order around the
 * image path, and keeps every command's run() free of key and image
 * plumbing.  Each command defines its struct cmd_struct in its own file
 * (DEFINE_COMMAND), next to the options struct whose size it carries.
 *
 * Each command has one usage array that drives --help and the man-page
 * consistency test:
 *
 *   static const char * const cmd_key_id_usage[] = {
 *           "btrfs-extcrypt key id [options]",          synopsis line(s)
 *           "Print the identifier of a master key",     one-line summary
 *           "",
 *           "Longer description lines...",
 *           "",
 *           OPTLINE("--key-file PATH", "read the key from PATH, '-' for stdin"),
 *           NULL
 *   };
 *
 * parse() receives argv with argv[0] = the command's name; optind is reset
 * by the dispatcher.
 */
#ifndef EXTCRYPT_COMMANDS_H
#define EXTCRYPT_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include "common/key-input.h"
#include "crypto/fscrypt-keys.h"

#define OPTLINE(opt, text) "\t" opt "\n\t\t\t" text

struct cmd_group;
struct cmd_context;
struct fs_info;

/* Command flags: what the dispatcher provides before run(). */
#define CMD_HIDDEN		(1U << 0)	/* not listed in --help */
#define CMD_IMAGE_RO		(1U << 1)	/* open ctx->image_path read-only */
#define CMD_IMAGE_RW		(1U << 2)	/* open it for writing: lock, not mounted, no log */
#define CMD_KEY_REQUIRED	(1U << 3)	/* a key option must be given; load it */
#define CMD_KEY_OPTIONAL	(1U << 4)	/* load the key if one is given */
#define CMD_MULTI_DEVICE	(1U << 5)	/* a filesystem of several devices: --device */
#define CMD_NOT_MOUNTED		(1U << 6)	/* refuse a mounted image unless --force */
#define CMD_KEYS_MULTI		(1U << 7)	/* the key options may repeat: every key is loaded */
#define CMD_NEW_KEY		(1U << 8)	/* --new-key-file/--new-key-fd required: ctx->new_mk */
#define CMD_VERIFY		(1U << 9)	/* run check's rules before the first write (check/check-run.h) */
#define CMD_VERIFY_KEYS		(1U << 10)	/* ... with the keys given, the new one included */

/* Keys a CMD_KEYS_MULTI command takes at most. */
#define CMD_MAX_KEYS		FSCRYPT_MAX_KEY_SET
/* --device options a CMD_MULTI_DEVICE command takes at most. */
#define CMD_MAX_DEVICES		64

struct cmd_struct {
	const char *token;
	int (*parse)(struct cmd_context *ctx, int argc, char **argv);
	int (*run)(struct cmd_context *ctx);
	const char *const *usagestr;
	const struct cmd_group *next;	/* subcommands, for a group */
	unsigned int flags;
	size_t opts_size;		/* bytes of the command's options (ctx->opts) */
	/* optional: free what parse() allocated in ctx->opts (always called) */
	void (*release)(struct cmd_context *ctx);
};

#define DEFINE_COMMAND(name, tok, flg, opts_type)				\
	const struct cmd_struct cmd_struct_##name = {				\
		.token = tok, .parse = name##_parse, .run = name##_run,	\
		.usagestr = cmd_##name##_usage, .flags = flg,		\
		.opts_size = sizeof(opts_type),				\
	}

/* What one run of a command works with. */
struct cmd_context {
	const struct cmd_struct *cmd;
	void *opts;			/* the command's own options, zeroed */
	/* set by parse() */
	const char *image_path;
	int super_mirror;		/* -1 (preset): the primary superblock */
	size_t cache_bytes;		/* tree block cache; 0 (preset): default */
	bool quiet_log_tree;		/* read-only: no warning about a log tree */
	bool force;			/* --force: CMD_NOT_MOUNTED warns instead */
	const char *devices[CMD_MAX_DEVICES];	/* --device: the filesystem's other devices */
	int nr_devices;
	struct key_input key;		/* the shared key options (the first key) */
	struct key_input more_keys[CMD_MAX_KEYS - 1];	/* CMD_KEYS_MULTI: the others */
	size_t nr_more_keys;
	struct key_input new_key;	/* CMD_NEW_KEY */
	/* provided by the dispatcher from cmd->flags */
	struct fs_info *fs;
	struct fscrypt_master_key *mk;	/* NULL when no key was given */
	struct fscrypt_master_key *mks[CMD_MAX_KEYS];	/* every key given, mks[0] == mk */
	size_t nr_mks;
	struct fscrypt_master_key *new_mk;	/* CMD_NEW_KEY: the new key */
};

/*
 * ctx->mks (ctx->nr_mks of them) as the read-only key set the readers take
 * (enc_names_init_keys(), restore_params.mks, extent_io_params.keys): each
 * inode, name and extent is read with the key its context names.
 */
static inline const struct fscrypt_master_key *const *cmd_keys(const struct cmd_context *ctx)
{
	return (const struct fscrypt_master_key *const *)ctx->mks;
}

#define CMD_PARSE_OK	(-1)	/* parse() went well: go on to run() */

/*
 * For the default case of a command's getopt loop: the shared key options
 * (KEY_INPUT_LONG_OPTIONS in the command's option array), --help, and
 * getopt's '?'.  Returns CMD_PARSE_OK when the option was taken, else the
 * exit code to return (EXIT_OK after --help, EXIT_USAGE).
 */
int cmd_parse_common(struct cmd_context *ctx, int c, const char *arg);

struct cmd_group {
	const char *const *usagestr;
	const struct cmd_struct *const *commands;	/* terminated by NULL */
};

/* Print the usage of a command; full = with options and description. */
void usage_print(const char *const *usagestr, bool full, bool to_stderr);
/*
 * Report a usage error for cmd: prints "ERROR: <msg>" (if msg) and the
 * synopsis on stderr; returns EXIT_USAGE for the caller to return.
 */
int usage_error(const struct cmd_struct *cmd, const char *msg, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Common handling inside a command's getopt loop: call it for '?' and for the
 * long option "help" (GETOPT_HELP below).  Returns the exit code to return.
 */
#define GETOPT_VAL_HELP 0x1000
#define GETOPT_HELP_OPTION { "help", no_argument, NULL, GETOPT_VAL_HELP }
/* --force of the CMD_NOT_MOUNTED commands, taken by cmd_parse_common(). */
#define GETOPT_VAL_FORCE 0x1001
#define GETOPT_FORCE_OPTION { "force", no_argument, NULL, GETOPT_VAL_FORCE }
#define FORCE_OPTLINE OPTLINE("--force", "run even if the filesystem is mounted (results may be stale)")
/* --super N of the commands that read an image through a superblock copy, taken by cmd_parse_common(). */
#define GETOPT_VAL_SUPER 0x1002
#define GETOPT_SUPER_OPTION { "super", required_argument, NULL, GETOPT_VAL_SUPER }
#define SUPER_OPTLINE OPTLINE("--super N", "use superblock copy N (0, 1 or 2) instead of the primary")
/*
 * --device PATH of the CMD_MULTI_DEVICE commands (repeatable, as mount's
 * -o device=), taken by cmd_parse_common(): the filesystem's other devices
 * beside the image argument.  They are matched by fsid and devid; a device
 * not given is missing, which reads survive where the profile keeps
 * another copy (a warning names its devid).
 */
#define GETOPT_VAL_DEVICE 0x1003
#define GETOPT_DEVICE_OPTION { "device", required_argument, NULL, GETOPT_VAL_DEVICE }
#define DEVICE_OPTLINE OPTLINE("--device PATH", "another device (image file) of a multi-device filesystem; repeat for each")
/* The --help lines of the writing commands on several devices (--device). */
#define MULTI_DEVICE_WRITE_LINES						\
	"On a filesystem of several devices, give every device: the image and each",	\
	"other one with --device.  Every copy (DUP, RAID1, RAID1C3/4, RAID10) is",	\
	"written on its device, and each device's superblocks at the commit.  New",	\
	"chunks take the devices with the most room, as the kernel's allocator",	\
	"does, emptied ones are removed, and the devices never grow.  A missing",	\
	"device and a RAID5/6 chunk (the write hole) are refused before the first",	\
	"write (exit 1)."
int cmd_help_or_usage(const struct cmd_struct *cmd, int c);

/*
 * Check that exactly n positional arguments remain after option parsing;
 * otherwise print a usage error and return EXIT_USAGE (else 0).
 */
int check_argc_exact(const struct cmd_struct *cmd, int argc, int n);

/* The commands, each defined in its own file. */
extern const struct cmd_struct cmd_struct_inspect_dump_super;
extern const struct cmd_struct cmd_struct_inspect_dump_tree;
extern const struct cmd_struct cmd_struct_inspect_resolve_logical;
extern const struct cmd_struct cmd_struct_inspect_file;
extern const struct cmd_struct cmd_struct_key_id;
extern const struct cmd_struct cmd_struct_key_generate;
extern const struct cmd_struct cmd_struct_check;
extern const struct cmd_struct cmd_struct_encrypt;
extern const struct cmd_struct cmd_struct_decrypt;
extern const struct cmd_struct cmd_struct_rekey;
extern const struct cmd_struct cmd_struct_restore;
extern const struct cmd_struct cmd_struct_reflink;
extern const struct cmd_struct cmd_struct_debug_xattrs;

extern const char *const cmd_inspect_dump_super_usage[];
extern const char *const cmd_inspect_dump_tree_usage[];
extern const char *const cmd_inspect_resolve_logical_usage[];
extern const char *const cmd_inspect_file_usage[];
extern const char *const cmd_key_id_usage[];
extern const char *const cmd_key_generate_usage[];
extern const char *const cmd_check_usage[];
extern const char *const cmd_encrypt_usage[];
extern const char *const cmd_decrypt_usage[];
extern const char *const cmd_rekey_usage[];
extern const char *const cmd_restore_usage[];
extern const char *const cmd_reflink_usage[];
extern const char *const cmd_debug_xattrs_usage[];

#endif
