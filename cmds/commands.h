/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Command table (design.md section 4).  Each command has one usage array that
 * drives --help and the man-page consistency test:
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
 * Command functions receive argv with argv[0] = the command's name; they parse
 * their options with getopt_long (optind is reset by the dispatcher) and
 * return an exit code from common/messages.h.
 */
#ifndef EXTCRYPT_COMMANDS_H
#define EXTCRYPT_COMMANDS_H

#include <stdbool.h>

#define OPTLINE(opt, text) "\t" opt "\n\t\t\t" text

struct cmd_group;

struct cmd_struct {
	const char *token;
	int (*fn)(const struct cmd_struct *cmd, int argc, char **argv);
	const char *const *usagestr;
	const struct cmd_group *next;	/* subcommands, for a group */
	unsigned int flags;
};

#define CMD_HIDDEN (1U << 0)

struct cmd_group {
	const char *const *usagestr;
	const struct cmd_struct *commands;	/* terminated by a NULL token */
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
int cmd_help_or_usage(const struct cmd_struct *cmd, int c);

/*
 * Check that exactly n positional arguments remain after option parsing;
 * otherwise print a usage error and return EXIT_USAGE (else 0).
 */
int check_argc_exact(const struct cmd_struct *cmd, int argc, int n);

/* Command entry points. */
int cmd_inspect_dump_super(const struct cmd_struct *cmd, int argc, char **argv);
int cmd_inspect_dump_tree(const struct cmd_struct *cmd, int argc, char **argv);
int cmd_inspect_resolve_logical(const struct cmd_struct *cmd, int argc, char **argv);
int cmd_inspect_file(const struct cmd_struct *cmd, int argc, char **argv);
int cmd_key_id(const struct cmd_struct *cmd, int argc, char **argv);
int cmd_key_generate(const struct cmd_struct *cmd, int argc, char **argv);
int cmd_check(const struct cmd_struct *cmd, int argc, char **argv);

extern const char *const cmd_inspect_dump_super_usage[];
extern const char *const cmd_inspect_dump_tree_usage[];
extern const char *const cmd_inspect_resolve_logical_usage[];
extern const char *const cmd_inspect_file_usage[];
extern const char *const cmd_key_id_usage[];
extern const char *const cmd_key_generate_usage[];
extern const char *const cmd_check_usage[];
int cmd_encrypt(const struct cmd_struct *cmd, int argc, char **argv);
int cmd_decrypt(const struct cmd_struct *cmd, int argc, char **argv);
extern const char *const cmd_encrypt_usage[];
extern const char *const cmd_decrypt_usage[];
int cmd_restore(const struct cmd_struct *cmd, int argc, char **argv);
extern const char *const cmd_restore_usage[];
int cmd_reflink(const struct cmd_struct *cmd, int argc, char **argv);
extern const char *const cmd_reflink_usage[];
int cmd_debug_xattrs(const struct cmd_struct *cmd, int argc, char **argv);
extern const char *const cmd_debug_xattrs_usage[];

#endif
