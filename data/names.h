/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Names in encrypted directories (Documentation/format.rst section 8) for
 * every option or argument that names a path inside an image, and for the
 * paths the tool prints.
 *
 * With the key, a path component in an encrypted directory is encrypted
 * under the directory's key and looked up by the btrfs name hash of the
 * ciphertext, as the directory stores it; shown names are decrypted.
 * Without it (or in a directory the key does not open), components are the
 * kernel's no-key names, which nokey_name() computes and restore writes:
 * base64url of 8 zero bytes (btrfs has no dirhash) and the ciphertext, or,
 * for ciphertext longer than 149 bytes, its first 149 bytes and the SHA-256
 * of the rest.  A no-key name is accepted with a key too.
 *
 * The codec lives here, above kernel-shared/ and crypto/, because it needs
 * both (Documentation/design.rst section 1).  Errors are negative errnos
 * with fs_errmsg(fs) set; a key that is not the key of an encrypted
 * directory on the path, for a component that is not a no-key name of it,
 * is -EKEYREJECTED (a wrong key: exit 4).
 */
#ifndef EXTCRYPT_DATA_NAMES_H
#define EXTCRYPT_DATA_NAMES_H

#include <stdbool.h>
#include "common/fscrypt-format.h"
#include "crypto/fscrypt-keys.h"
#include "kernel-shared/fs-walk.h"

/* Room for the longest no-key name (252 characters: base64url of 8 + 149 + 32 bytes) and its NUL. */
#define NOKEY_NAME_SIZE	NAME_SHOW_SIZE

/* The fscrypt no-key name of the stored name ct (len bytes) into out (NOKEY_NAME_SIZE). */
void nokey_name(const u8 *ct, u32 len, char *out);

/*
 * A path codec (kernel-shared/fs-walk.h) for an image and an optional
 * master key (NULL: no key, no-key names only), or a set of keys
 * (enc_names_init_keys()): each encrypted directory is opened with the key
 * its context names, the way an image cut in the middle of a rekey is
 * read.  "The key" below is whichever given key that is; a directory none
 * of them opens is one "another key" encrypts.  Nothing to release.
 */
struct enc_names {
	struct name_codec nc;
	struct fs_info *fs;
	const struct fscrypt_master_key *mks[FSCRYPT_MAX_KEY_SET];	/* the pointers, copied */
	size_t nr_mks;
};

void enc_names_init(struct enc_names *en, struct fs_info *fs,
		    const struct fscrypt_master_key *mk);
/* The same with n keys (at most FSCRYPT_MAX_KEY_SET are used; n == 0: no key). */
void enc_names_init_keys(struct enc_names *en, struct fs_info *fs,
			 const struct fscrypt_master_key *const *mks, size_t n);

/*
 * With a key, an encrypted inode must be one it opens: 0 if ino is plain,
 * no key was given or a given key is the inode's; -EKEYREJECTED (wrong key)
 * otherwise, or <0.
 */
int enc_names_check_inode(const struct enc_names *en, const struct root_ref *root, u64 ino);

/*
 * What a new entry of directory dir is stored as: for an encrypted
 * directory, its name encrypted under the directory's key into stored
 * (FNAME_MAX_LEN bytes) with *stored_len, and the context a new inode in it
 * inherits (the directory's policy, a fresh nonce) into *ctx; returns 0.
 * Returns 1 for a plain directory (nothing filled), -ENOKEY when the
 * directory is encrypted and no key was given, -EKEYREJECTED when the key
 * is not the directory's, or <0.
 */
int enc_names_new_entry(const struct enc_names *en, const struct root_ref *root, u64 dir,
			const char *name, size_t len, u8 *stored, size_t *stored_len,
			struct fscrypt_context_v2 *ctx);

#endif
