/* SPDX-License-Identifier: GPL-2.0 */
#ifndef EXTCRYPT_CMD_UTILS_H
#define EXTCRYPT_CMD_UTILS_H

#include "kernel-shared/ctree.h"

/*
 * Open an image read-only for a command.  On failure prints one "ERROR:"
 * line and returns the exit code (EXIT_UNREADABLE); returns 0 on success.
 * mirror: -1 for the primary superblock, else the copy to use.
 */
/* cache_bytes: tree block cache size, 0 for the default (struct open_args) */
int cmd_open_image(const char *path, int mirror, size_t cache_bytes, struct fs_info **fs);

/*
 * Report a failed engine call: one "ERROR:" line with fs_errmsg(fs) (or the
 * errno text) and the exit code for it: EXIT_UNREADABLE for corruption and
 * I/O, EXIT_PROBLEMS otherwise.
 */
int cmd_engine_error(struct fs_info *fs, int err, const char *what);

struct key_input;
struct fscrypt_master_key;

/*
 * Read the key chosen by the key options and load it as a master key in
 * secret memory.  Returns 0, or prints one ERROR line and returns EXIT_KEY.
 * Free *mk with cmd_free_master_key().
 */
int cmd_load_master_key(const struct key_input *ki, struct fscrypt_master_key **mk);
void cmd_free_master_key(struct fscrypt_master_key *mk);

#endif
