/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Running check's passes: the state of one run (check_ctx_init/free, for
 * cmds/check.c), and the verification a write command runs before its
 * first write (Documentation/design.rst section 3, "Nothing unchecked is
 * written").
 */
#ifndef EXTCRYPT_CHECK_RUN_H
#define EXTCRYPT_CHECK_RUN_H

#include "check/check.h"

/* Empty containers for a run; c->fs and the options are the caller's. */
void check_ctx_init(struct check_ctx *c);
/* Everything a run allocated; c itself is the caller's. */
void check_ctx_free(struct check_ctx *c);

/*
 * Every rule of `check` but the data csum pass, on an image a write command
 * has opened (and locked), with the master keys it was given (none: the
 * rules that need no key).  Problems are not printed: with errors, one
 * ERROR line gives their number and the first of them, and the exit code
 * is 3; out of memory 1.  When no key given opens any of the image's
 * contexts the key rules are skipped: the command says itself that the key
 * is wrong, in its own words (exit 4).  Returns 0 when check finds no
 * error (warnings and notes do not stop a write).  With -v every error is
 * listed.
 */
int check_verify_image(struct fs_info *fs, struct fscrypt_master_key *const *mks, size_t nr_mks);

#endif
