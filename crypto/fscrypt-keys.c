// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include "crypto/fscrypt-keys.h"
#include "crypto/hkdf.h"

_Static_assert(sizeof(struct fscrypt_context_v2) == FSCRYPT_CONTEXT_V2_SIZE,
	       "fscrypt_context_v2 must be 40 bytes");
_Static_assert(sizeof(struct fscrypt_extent_context) == FSCRYPT_EXTENT_CONTEXT_SIZE,
	       "fscrypt_extent_context must be 34 bytes");

static const struct fscrypt_profile_info profiles[] = {
	[FSCRYPT_PROFILE_V7] = { "v7", FSCRYPT_HKDF_PER_EXTENT_V7, true, true },
	[FSCRYPT_PROFILE_V5] = { "v5", FSCRYPT_HKDF_PER_EXTENT_V5, true, false },
	[FSCRYPT_PROFILE_V2] = { "v2", FSCRYPT_HKDF_PER_FILE_ENC_KEY, false, false },
};

/* Names follow the kernel's fscrypt_modes[] friendly names. */
static const struct {
	const char *name;
	unsigned int key_size;
	unsigned int security_strength;
} modes[] = {
	[FSCRYPT_MODE_AES_256_XTS] = { "AES-256-XTS", 64, 32 },
	[FSCRYPT_MODE_AES_256_CTS] = { "AES-256-CBC-CTS", 32, 32 },
	[FSCRYPT_MODE_AES_128_CBC] = { "AES-128-CBC-ESSIV", 16, 16 },
	[FSCRYPT_MODE_AES_128_CTS] = { "AES-128-CBC-CTS", 16, 16 },
	[FSCRYPT_MODE_SM4_XTS] = { "SM4-XTS", 32, 16 },
	[FSCRYPT_MODE_SM4_CTS] = { "SM4-CBC-CTS", 16, 16 },
	[FSCRYPT_MODE_ADIANTUM] = { "Adiantum", 32, 32 },
	[FSCRYPT_MODE_AES_256_HCTR2] = { "AES-256-HCTR2", 32, 32 },
};

const struct fscrypt_profile_info *fscrypt_profile_info(enum fscrypt_profile profile)
{
	if ((unsigned int)profile >= sizeof(profiles) / sizeof(profiles[0]))
		return NULL;
	return &profiles[profile];
}

int fscrypt_profile_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (name && strcmp(name, profiles[i].name) == 0)
			return (int)i;
	return -EINVAL;
}

const char *fscrypt_mode_name(int mode)
{
	if (mode < 0 || mode >= (int)(sizeof(modes) / sizeof(modes[0])) || !modes[mode].name)
		return "unknown";
	return modes[mode].name;
}

unsigned int fscrypt_mode_key_size(int mode)
{
	if (mode < 0 || mode >= (int)(sizeof(modes) / sizeof(modes[0])))
		return 0;
	return modes[mode].key_size;
}

unsigned int fscrypt_mode_security_strength(int mode)
{
	if (mode < 0 || mode >= (int)(sizeof(modes) / sizeof(modes[0])))
		return 0;
	return modes[mode].security_strength;
}

int fscrypt_new_nonce(uint8_t nonce[FSCRYPT_NONCE_SIZE])
{
	size_t got = 0;

	while (got < FSCRYPT_NONCE_SIZE) {
		ssize_t r = getrandom(nonce + got, FSCRYPT_NONCE_SIZE - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

void fscrypt_master_key_wipe(struct fscrypt_master_key *mk)
{
	if (mk)
		explicit_bzero(mk, sizeof(*mk));
	hkdf_forget();
}

int fscrypt_master_key_init(struct fscrypt_master_key *mk, const uint8_t *raw, size_t len)
{
	int ret;

	memset(mk, 0, sizeof(*mk));
	if (!raw || len < FSCRYPT_MIN_KEY_SIZE || len > FSCRYPT_MAX_KEY_SIZE)
		return -EINVAL;
	ret = hkdf_sha512_extract(raw, len, mk->prk);
	if (!ret)
		ret = hkdf_sha512_expand_fscrypt(mk->prk, FSCRYPT_HKDF_KEY_IDENTIFIER,
						 NULL, 0, mk->identifier,
						 FSCRYPT_KEY_IDENTIFIER_SIZE);
	if (ret) {
		fscrypt_master_key_wipe(mk);
		return ret;
	}
	mk->raw_size = len;
	return 0;
}

int fscrypt_derive(const struct fscrypt_master_key *mk, uint8_t hkdf_ctx,
		   const uint8_t *nonce, uint8_t *out, size_t len)
{
	return hkdf_sha512_expand_fscrypt(mk->prk, hkdf_ctx, nonce,
					  nonce ? FSCRYPT_NONCE_SIZE : 0, out, len);
}

int fscrypt_derive_file_key(const struct fscrypt_master_key *mk,
			    const uint8_t nonce[FSCRYPT_NONCE_SIZE], int mode,
			    uint8_t *out, unsigned int *key_size)
{
	unsigned int size = fscrypt_mode_key_size(mode);

	if (!size || !nonce)
		return -EINVAL;
	if (key_size)
		*key_size = size;
	return fscrypt_derive(mk, FSCRYPT_HKDF_PER_FILE_ENC_KEY, nonce, out, size);
}

int fscrypt_derive_extent_key(const struct fscrypt_master_key *mk,
			      enum fscrypt_profile profile, int contents_mode,
			      const uint8_t nonce[FSCRYPT_NONCE_SIZE],
			      uint8_t *out, unsigned int *key_size)
{
	const struct fscrypt_profile_info *info = fscrypt_profile_info(profile);
	unsigned int size = fscrypt_mode_key_size(contents_mode);

	if (!info || !size || !nonce)
		return -EINVAL;
	if (key_size)
		*key_size = size;
	return fscrypt_derive(mk, info->extent_hkdf_ctx, nonce, out, size);
}

static int set_reason(char *reason, size_t size, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int set_reason(char *reason, size_t size, int err, const char *fmt, ...)
{
	va_list ap;

	if (reason && size) {
		va_start(ap, fmt);
		vsnprintf(reason, size, fmt, ap);
		va_end(ap);
	}
	return err;
}

bool fscrypt_valid_mode_pair(int contents, int filenames)
{
	return (contents == FSCRYPT_MODE_AES_256_XTS && filenames == FSCRYPT_MODE_AES_256_CTS) ||
	       (contents == FSCRYPT_MODE_AES_256_XTS && filenames == FSCRYPT_MODE_AES_256_HCTR2) ||
	       (contents == FSCRYPT_MODE_AES_128_CBC && filenames == FSCRYPT_MODE_AES_128_CTS) ||
	       (contents == FSCRYPT_MODE_SM4_XTS && filenames == FSCRYPT_MODE_SM4_CTS) ||
	       (contents == FSCRYPT_MODE_ADIANTUM && filenames == FSCRYPT_MODE_ADIANTUM);
}

void fscrypt_context_init(struct fscrypt_context_v2 *ctx, uint8_t contents_mode,
			  uint8_t filenames_mode, uint8_t flags,
			  const uint8_t key_id[FSCRYPT_KEY_IDENTIFIER_SIZE],
			  const uint8_t nonce[FSCRYPT_NONCE_SIZE])
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->version = FSCRYPT_CONTEXT_V2;
	ctx->contents_mode = contents_mode;
	ctx->filenames_mode = filenames_mode;
	ctx->flags = flags;
	memcpy(ctx->master_key_identifier, key_id, FSCRYPT_KEY_IDENTIFIER_SIZE);
	memcpy(ctx->nonce, nonce, FSCRYPT_NONCE_SIZE);
}

/* Name the first forbidden flag bit, for a reason that says what is wrong. */
static const char *flag_name(uint8_t flags)
{
	if (flags & FSCRYPT_POLICY_FLAG_DIRECT_KEY)
		return "DIRECT_KEY";
	if (flags & FSCRYPT_POLICY_FLAG_IV_INO_LBLK_64)
		return "IV_INO_LBLK_64";
	if (flags & FSCRYPT_POLICY_FLAG_IV_INO_LBLK_32)
		return "IV_INO_LBLK_32";
	return "unknown flag";
}

int fscrypt_context_parse(const void *buf, size_t len, struct fscrypt_context_v2 *out,
			  char *reason, size_t rsize)
{
	struct fscrypt_context_v2 ctx;

	if (len < 1)
		return set_reason(reason, rsize, -EINVAL, "empty fscrypt context");
	memcpy(&ctx, buf, len < sizeof(ctx) ? len : sizeof(ctx));
	if (ctx.version != FSCRYPT_CONTEXT_V2) {
		if (ctx.version == 1)
			return set_reason(reason, rsize, -EINVAL,
					  "fscrypt context version 1 (v1 policies are not supported)");
		return set_reason(reason, rsize, -EINVAL,
				  "fscrypt context version %u, expected 2", ctx.version);
	}
	if (len < sizeof(ctx))
		return set_reason(reason, rsize, -EINVAL,
				  "fscrypt context size %zu, expected %u", len,
				  FSCRYPT_CONTEXT_V2_SIZE);
	if (ctx.flags & ~FSCRYPT_POLICY_FLAGS_PAD_MASK)
		return set_reason(reason, rsize, -EINVAL,
				  "fscrypt policy flags 0x%02x: %s is not allowed with per-extent encryption",
				  ctx.flags, flag_name(ctx.flags));
	if (ctx.log2_data_unit_size)
		return set_reason(reason, rsize, -EINVAL,
				  "fscrypt log2_data_unit_size %u, expected 0",
				  ctx.log2_data_unit_size);
	if (ctx.reserved[0] || ctx.reserved[1] || ctx.reserved[2])
		return set_reason(reason, rsize, -EINVAL,
				  "fscrypt context reserved bytes %02x%02x%02x, expected 0",
				  ctx.reserved[0], ctx.reserved[1], ctx.reserved[2]);
	if (!fscrypt_valid_mode_pair(ctx.contents_mode, ctx.filenames_mode))
		return set_reason(reason, rsize, -EINVAL,
				  "invalid fscrypt mode pair: contents %u (%s), filenames %u (%s)",
				  ctx.contents_mode, fscrypt_mode_name(ctx.contents_mode),
				  ctx.filenames_mode, fscrypt_mode_name(ctx.filenames_mode));
	if (out)
		*out = ctx;
	return 0;
}

const struct fscrypt_master_key *fscrypt_key_find(const struct fscrypt_master_key *const *keys,
						  size_t n, const uint8_t *id)
{
	for (size_t i = 0; keys && i < n; i++)
		if (keys[i] && !memcmp(keys[i]->identifier, id, FSCRYPT_KEY_IDENTIFIER_SIZE))
			return keys[i];
	return NULL;
}

int fscrypt_master_key_fits_policy(const struct fscrypt_master_key *mk,
				   const struct fscrypt_context_v2 *ctx,
				   char *reason, size_t rsize)
{
	unsigned int need = fscrypt_mode_security_strength(ctx->contents_mode);

	if (fscrypt_mode_security_strength(ctx->filenames_mode) > need)
		need = fscrypt_mode_security_strength(ctx->filenames_mode);
	if (!need)
		return set_reason(reason, rsize, -EINVAL, "unknown encryption mode");
	if (mk->raw_size < need)
		return set_reason(reason, rsize, -EINVAL,
				  "master key is %zu bytes, too short for this policy (at least %u: %s / %s)",
				  mk->raw_size, need, fscrypt_mode_name(ctx->contents_mode),
				  fscrypt_mode_name(ctx->filenames_mode));
	return 0;
}

int fscrypt_policy_supported(const struct fscrypt_context_v2 *ctx, char *reason, size_t rsize)
{
	if (ctx->contents_mode != FSCRYPT_MODE_AES_256_XTS)
		return set_reason(reason, rsize, -EOPNOTSUPP,
				  "unsupported policy: contents mode %u (%s)",
				  ctx->contents_mode, fscrypt_mode_name(ctx->contents_mode));
	if (ctx->filenames_mode != FSCRYPT_MODE_AES_256_CTS)
		return set_reason(reason, rsize, -EOPNOTSUPP,
				  "unsupported policy: filenames mode %u (%s)",
				  ctx->filenames_mode, fscrypt_mode_name(ctx->filenames_mode));
	return 0;
}

void fscrypt_extent_context_init(struct fscrypt_extent_context *ectx, uint8_t mode,
				 const uint8_t key_id[FSCRYPT_KEY_IDENTIFIER_SIZE],
				 const uint8_t nonce[FSCRYPT_NONCE_SIZE])
{
	ectx->version = FSCRYPT_EXTENT_CONTEXT_V1;
	ectx->encryption_mode = mode;
	memcpy(ectx->master_key_identifier, key_id, FSCRYPT_KEY_IDENTIFIER_SIZE);
	memcpy(ectx->nonce, nonce, FSCRYPT_NONCE_SIZE);
}

int fscrypt_extent_context_parse(const void *buf, size_t len,
				 const struct fscrypt_context_v2 *inode,
				 enum fscrypt_profile profile,
				 struct fscrypt_extent_context *out,
				 char *reason, size_t rsize)
{
	const struct fscrypt_profile_info *info = fscrypt_profile_info(profile);
	struct fscrypt_extent_context ectx;

	if (!info)
		return set_reason(reason, rsize, -EINVAL, "unknown format profile %d", (int)profile);
	if (len < FSCRYPT_EXTENT_CONTEXT_SIZE || len > FSCRYPT_EXTENT_CONTEXT_MAX_SIZE)
		return set_reason(reason, rsize, -EINVAL,
				  "extent context size %zu, expected %u..%u", len,
				  FSCRYPT_EXTENT_CONTEXT_SIZE, FSCRYPT_EXTENT_CONTEXT_MAX_SIZE);
	memcpy(&ectx, buf, sizeof(ectx));
	if (ectx.version != FSCRYPT_EXTENT_CONTEXT_V1)
		return set_reason(reason, rsize, -EINVAL,
				  "extent context version %u, expected 1", ectx.version);
	if (inode && memcmp(ectx.master_key_identifier, inode->master_key_identifier,
			    FSCRYPT_KEY_IDENTIFIER_SIZE))
		return set_reason(reason, rsize, -EINVAL,
				  "extent context key identifier differs from the inode's");
	if (inode && info->check_extent_mode && ectx.encryption_mode != inode->contents_mode)
		return set_reason(reason, rsize, -EINVAL,
				  "extent context mode %u (%s), inode contents mode %u (%s)",
				  ectx.encryption_mode, fscrypt_mode_name(ectx.encryption_mode),
				  inode->contents_mode, fscrypt_mode_name(inode->contents_mode));
	if (out)
		*out = ectx;
	return 0;
}
