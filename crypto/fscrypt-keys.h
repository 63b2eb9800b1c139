/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fscrypt v2 key hierarchy and contexts (Documentation/format.rst sections 3, 4 and 5.2):
 * master key, key identifier, per-file and per-extent keys, the 40-byte inode
 * context and the 34-byte extent context (their layouts are in
 * common/fscrypt-format.h).  No btrfs knowledge.
 *
 * Functions that can fail return 0 or a negative errno.  Validation functions
 * also write a one-line, lowercase reason into an optional caller buffer
 * (FSCRYPT_REASON_SIZE bytes is always enough).
 */
#ifndef EXTCRYPT_FSCRYPT_KEYS_H
#define EXTCRYPT_FSCRYPT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/fscrypt-format.h"

#define FSCRYPT_REASON_SIZE		128

/* HKDF context bytes (Documentation/format.rst section 4). */
#define FSCRYPT_HKDF_KEY_IDENTIFIER	1
#define FSCRYPT_HKDF_PER_FILE_ENC_KEY	2
#define FSCRYPT_HKDF_PER_EXTENT_V5	8
#define FSCRYPT_HKDF_PER_EXTENT_V7	9

/*
 * Format profiles (Documentation/format.rst section 1): which HKDF context byte derives the
 * extent keys.  Nothing on disk stores it, so the layout decides.
 */
enum fscrypt_profile {
	FSCRYPT_PROFILE_V7 = 0,	/* v6/v7 kernel series: context 9, read and write */
	FSCRYPT_PROFILE_V5 = 1,	/* legacy v5 layout: context 8, read only */
	FSCRYPT_PROFILE_V2 = 2,	/* v2-v4 series: context 2 (same as a per-file key) */
};

struct fscrypt_profile_info {
	const char *name;	/* "v7", "v5", "v2" */
	uint8_t extent_hkdf_ctx;
	bool check_extent_mode;	/* v2-v4 left the extent mode byte uninitialised */
	bool writable;
};

/* Profile table entry, or NULL for an unknown profile. */
const struct fscrypt_profile_info *fscrypt_profile_info(enum fscrypt_profile profile);
/* Profile by name ("v7", "v5", "v2"): the enum value, or -EINVAL. */
int fscrypt_profile_from_name(const char *name);

/* Mode name as the kernel spells it ("AES-256-XTS", ...), or "unknown". */
const char *fscrypt_mode_name(int mode);
/* Key size in bytes of a mode, or 0 for an unknown mode. */
unsigned int fscrypt_mode_key_size(int mode);
/*
 * Security strength of a mode in bytes (the minimum master key size the
 * kernel accepts for a v2 policy using it), or 0 for an unknown mode.
 */
unsigned int fscrypt_mode_security_strength(int mode);
/* Filename padding in bytes for policy flags: 4 << (flags & 3). */
static inline unsigned int fscrypt_policy_padding(uint8_t flags)
{
	return 4U << (flags & FSCRYPT_POLICY_FLAGS_PAD_MASK);
}

/*
 * A loaded master key.  Only the HKDF pseudorandom key is kept, not the raw
 * bytes.  Wipe it with fscrypt_master_key_wipe() on every path.
 */
struct fscrypt_master_key {
	uint8_t prk[64];
	uint8_t identifier[FSCRYPT_KEY_IDENTIFIER_SIZE];
	size_t raw_size;
};

/*
 * Extract the master key and compute its identifier (context 1).  Returns 0,
 * -EINVAL if len is outside FSCRYPT_MIN_KEY_SIZE..FSCRYPT_MAX_KEY_SIZE, or
 * -EIO if the library fails (mk is wiped then).
 */
int fscrypt_master_key_init(struct fscrypt_master_key *mk, const uint8_t *raw, size_t len);
/* Zero all of mk (explicit_bzero); safe on a zeroed or half-initialised key. */
void fscrypt_master_key_wipe(struct fscrypt_master_key *mk);

/* Master keys a command reads one image with at most (cmds/commands.h CMD_MAX_KEYS). */
#define FSCRYPT_MAX_KEY_SET	8

/*
 * The key of a set (n keys, NULL entries skipped) whose identifier is id
 * (FSCRYPT_KEY_IDENTIFIER_SIZE bytes, as a context names it), or NULL.
 * Several keys are how an image cut in the middle of a rekey is read: each
 * inode, name and extent with the key its context names.
 */
const struct fscrypt_master_key *fscrypt_key_find(const struct fscrypt_master_key *const *keys,
						  size_t n, const uint8_t *id);

/*
 * Whether the kernel would use this master key with a policy: its size must
 * reach the security strength of both modes (fs/crypto/keysetup.c).  A
 * 16-byte key has an identifier but cannot unlock AES-256 policies.
 * Returns 0, or -EINVAL with a reason.
 */
int fscrypt_master_key_fits_policy(const struct fscrypt_master_key *mk,
				   const struct fscrypt_context_v2 *ctx,
				   char *reason, size_t reason_size);

/* 16 random bytes from getrandom(2) for a new inode or extent nonce; 0 or -errno. */
int fscrypt_new_nonce(uint8_t nonce[FSCRYPT_NONCE_SIZE]);

/*
 * Generic expand: out[0..len) = HKDF-Expand(prk, "fscrypt\0" || ctx || nonce).
 * nonce may be NULL for context 1.  Returns 0, -EINVAL or -EIO.
 */
int fscrypt_derive(const struct fscrypt_master_key *mk, uint8_t hkdf_ctx,
		   const uint8_t *nonce, uint8_t *out, size_t len);

/*
 * Per-file key (context 2 + inode nonce) of size fscrypt_mode_key_size(mode);
 * for directories and symlinks mode is the filenames mode.  out must hold
 * FSCRYPT_MAX_MODE_KEY_SIZE bytes; *key_size (optional) receives the size.
 * Returns 0, -EINVAL for an unknown mode, or -EIO.
 */
int fscrypt_derive_file_key(const struct fscrypt_master_key *mk,
			    const uint8_t nonce[FSCRYPT_NONCE_SIZE], int mode,
			    uint8_t *out, unsigned int *key_size);

/*
 * Per-extent key: context byte from the profile table + extent nonce, size of
 * the inode's contents mode (64 for AES-256-XTS).  out must hold
 * FSCRYPT_MAX_MODE_KEY_SIZE bytes.  Returns 0, -EINVAL for an unknown mode or
 * profile, or -EIO.
 */
int fscrypt_derive_extent_key(const struct fscrypt_master_key *mk,
			      enum fscrypt_profile profile, int contents_mode,
			      const uint8_t nonce[FSCRYPT_NONCE_SIZE],
			      uint8_t *out, unsigned int *key_size);

/* Fill a v2 context (no validation). */
void fscrypt_context_init(struct fscrypt_context_v2 *ctx, uint8_t contents_mode,
			  uint8_t filenames_mode, uint8_t flags,
			  const uint8_t key_id[FSCRYPT_KEY_IDENTIFIER_SIZE],
			  const uint8_t nonce[FSCRYPT_NONCE_SIZE]);

/*
 * Parse and validate an inode context item exactly as Documentation/format.rst 3.2: at
 * least 40 bytes (only the first 40 are used, as the kernel reads
 * min(40, item size)), version 2, flags & ~3 == 0 (so no DIRECT_KEY,
 * IV_INO_LBLK_64/32), log2_data_unit_size 0, reserved 0, and a valid
 * (contents, filenames) mode pair.  out may be NULL.
 * Returns 0 if valid, -EINVAL with a reason otherwise.
 */
int fscrypt_context_parse(const void *buf, size_t len, struct fscrypt_context_v2 *out,
			  char *reason, size_t reason_size);

/* true if (contents, filenames) is one of the pairs Documentation/format.rst 3.2 allows. */
bool fscrypt_valid_mode_pair(int contents_mode, int filenames_mode);

/*
 * Whether this tool implements a valid policy: 0 for (1,4), else
 * -EOPNOTSUPP with a reason such as
 * "unsupported policy: contents mode 5 (AES-128-CBC-ESSIV)".
 */
int fscrypt_policy_supported(const struct fscrypt_context_v2 *ctx,
			     char *reason, size_t reason_size);

/* Fill an extent context (version 1). */
void fscrypt_extent_context_init(struct fscrypt_extent_context *ectx, uint8_t mode,
				 const uint8_t key_id[FSCRYPT_KEY_IDENTIFIER_SIZE],
				 const uint8_t nonce[FSCRYPT_NONCE_SIZE]);

/*
 * Parse and validate an extent context item (Documentation/format.rst 5.2) against the
 * inode's context: size 34..40 (the first 34 are used), version 1, key
 * identifier equal to the inode's, and mode equal to the inode's contents
 * mode unless the profile's mode byte is garbage (v2).  inode may be NULL to
 * skip the two comparisons; out may be NULL.
 * Returns 0 if valid, -EINVAL with a reason otherwise.
 */
int fscrypt_extent_context_parse(const void *buf, size_t len,
				 const struct fscrypt_context_v2 *inode,
				 enum fscrypt_profile profile,
				 struct fscrypt_extent_context *out,
				 char *reason, size_t reason_size);

#endif
