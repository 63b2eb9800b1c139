/* SPDX-License-Identifier: GPL-2.0 */
#ifndef EXTCRYPT_CMD_UTILS_H
#define EXTCRYPT_CMD_UTILS_H

#include <stdbool.h>
#include "kernel-shared/ctree.h"

/*
 * Open an image read-only for a command (CMD_IMAGE_RO).  On failure prints
 * one "ERROR:" line and returns exit_code(err, ERR_AT_OPEN_RO); returns 0 on
 * success.  mirror: -1 for the primary superblock, else the copy to use;
 * cache_bytes: tree block cache size, 0 for the default (struct open_args);
 * warn_log: warn that an unreplayed log tree is ignored.
 */
int cmd_open_image(const char *path, int mirror, size_t cache_bytes, bool warn_log,
		   struct fs_info **fs);
/* The same with every open_image() argument (--device: args->devices). */
struct open_args;
int cmd_open_image_args(const char *path, const struct open_args *args, bool warn_log,
			struct fs_info **fs);

/*
 * The same for writing (CMD_IMAGE_RW, open_image_rw_devices()), with the
 * filesystem's other devices (--device): ERR_AT_OPEN_RW.  verify_follows:
 * the command runs check's rules before its first write (CMD_VERIFY).
 */
int cmd_open_image_rw(const char *path, const char *const *devices, int nr_devices,
		      bool verify_follows, struct fs_info **fs);

/*
 * Report a failed engine call: one "ERROR:" line, "what: " (if what is not
 * NULL) and fs_errmsg(fs) (or the errno text), and return
 * exit_code(err, ERR_AT_RUN).
 */
int cmd_engine_error(struct fs_info *fs, int err, const char *what);

/* After a writing command: a note when the qgroup counts were left alone (qgroup.h). */
void cmd_note_qgroups(const struct fs_info *fs);
/*
 * --grow: let chunk allocation extend the image file (kernel-shared/chunk-alloc.h).
 * Refuses a block device with one ERROR line: returns 0 or EXIT_PROBLEMS.
 */
int cmd_allow_grow(struct fs_info *fs);
/* After a run: say by how much the image grew, if it did. */
void cmd_report_grow(const struct fs_info *fs);

struct key_input;
struct fscrypt_master_key;

/*
 * Read the key chosen by the key options and load it as a master key in
 * secret memory.  Returns 0, or prints one ERROR line and returns
 * exit_code(err, ERR_AT_KEY).
 * Free *mk with cmd_free_master_key().
 */
int cmd_load_master_key(const struct key_input *ki, struct fscrypt_master_key **mk);
void cmd_free_master_key(struct fscrypt_master_key *mk);

#endif
