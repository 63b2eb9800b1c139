// SPDX-License-Identifier: GPL-2.0
/* Names in encrypted directories: lookups, shown names, no-key names (see names.h). */
#include <openssl/evp.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include "crypto/fname.h"
#include "crypto/fscrypt-keys.h"
#include "data/names.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/fscrypt-item.h"

/* struct fscrypt_nokey_name of Linux fs/crypto/fname.c: dirhash[2], bytes[149], sha256[32]. */
#define NOKEY_HASH_BYTES	8
#define NOKEY_CT_BYTES		149
#define NOKEY_SHA_BYTES		32
#define NOKEY_MAX		(NOKEY_HASH_BYTES + NOKEY_CT_BYTES + NOKEY_SHA_BYTES)

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void nokey_name(const u8 *ct, u32 len, char *out)
{
	u8 buf[NOKEY_MAX] = { 0 };
	size_t n, o = 0;
	u32 acc = 0;
	int bits = 0;

	if (len <= NOKEY_CT_BYTES) {
		memcpy(buf + NOKEY_HASH_BYTES, ct, len);
		n = NOKEY_HASH_BYTES + len;
	} else {
		unsigned int dl;

		memcpy(buf + NOKEY_HASH_BYTES, ct, NOKEY_CT_BYTES);
		EVP_Digest(ct + NOKEY_CT_BYTES, len - NOKEY_CT_BYTES,
			   buf + NOKEY_HASH_BYTES + NOKEY_CT_BYTES, &dl, EVP_sha256(), NULL);
		n = sizeof(buf);
	}
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | buf[i];
		bits += 8;
		while (bits >= 6) {
			out[o++] = b64url[(acc >> (bits - 6)) & 63];
			bits -= 6;
		}
		acc &= (1U << bits) - 1;
	}
	if (bits)
		out[o++] = b64url[(acc << (6 - bits)) & 63];
	out[o] = 0;
}

/*
 * Decode a no-key name (len characters) into out (NOKEY_MAX bytes): its
 * byte count if it is one the kernel accepts (base64url without padding,
 * no stray bits, 9..157 or 189 bytes), else -1.
 */
static int nokey_decode(const char *s, size_t len, u8 *out)
{
	u32 acc = 0;
	int bits = 0, n = 0;

	if (len > (NOKEY_MAX * 8 + 5) / 6)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p = s[i] ? strchr(b64url, s[i]) : NULL;

		if (!p)
			return -1;
		acc = (acc << 6) | (u32)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (u8)(acc >> bits);
			acc &= (1U << bits) - 1;
		}
	}
	if (bits >= 6 || acc)
		return -1;
	if (n < NOKEY_HASH_BYTES + 1 ||
	    (n > NOKEY_HASH_BYTES + NOKEY_CT_BYTES && n != NOKEY_MAX))
		return -1;
	return n;
}

/* Directory dir: 0 if plain (or absent), 1 if encrypted with its context in *ctx, or <0. */
static int dir_policy(const struct enc_names *en, const struct root_ref *root, u64 dir,
		      struct fscrypt_context_v2 *ctx)
{
	struct btrfs_inode_item ii;
	int ret = inode_lookup(en->fs, root, dir, &ii);

	if (ret)
		return ret < 0 ? ret : 0;
	if (!S_ISDIR(le32_to_cpu(ii.mode)) || !(le64_to_cpu(ii.flags) & BTRFS_INODE_ENCRYPT))
		return 0;
	ret = fscrypt_inode_ctx_read(en->fs, root, dir, ctx);
	if (ret > 0)
		return fs_err(en->fs, -EUCLEAN, "encrypted directory %llu in tree %llu has no valid context item",
			      (unsigned long long)dir, (unsigned long long)root->objectid);
	return ret < 0 ? ret : 1;
}

/* The given key a context names, or NULL. */
static const struct fscrypt_master_key *key_of(const struct enc_names *en,
					       const struct fscrypt_context_v2 *ctx)
{
	return fscrypt_key_find(en->mks, en->nr_mks, ctx->master_key_identifier);
}

/* What a directory or inode none of the given keys opens is encrypted with. */
static const char *other_key(const struct enc_names *en)
{
	return en->nr_mks > 1 ? "a key other than those given" : "another key";
}

/* The directory's name key: 0, 1 without a key or with others only, or <0. */
static int dir_key(const struct enc_names *en, const struct fscrypt_context_v2 *ctx, u8 *key)
{
	const struct fscrypt_master_key *mk = key_of(en, ctx);
	int ret;

	if (!mk)
		return 1;
	ret = fscrypt_derive_file_key(mk, ctx->nonce, ctx->filenames_mode, key, NULL);
	return ret ? fs_err(en->fs, ret == -EIO ? -EIO : -EOPNOTSUPP,
			    "cannot derive the key of a directory: %s", strerror(-ret)) : 0;
}

/* A long no-key name (nk, NOKEY_MAX bytes): the entry whose ciphertext it digests. */
static int nokey_scan(const struct enc_names *en, const struct root_ref *root, u64 dir,
		      const u8 *nk, struct btrfs_key *loc)
{
	struct key_iter it;
	int ret = key_iter_type(&it, en->fs, root, dir, BTRFS_DIR_INDEX_KEY, 0);

	for (; ret == 0; ret = key_iter_next(&it)) {
		struct btrfs_dir_item di;
		u8 digest[NOKEY_SHA_BYTES];
		const u8 *name = it.ptr + sizeof(di);
		unsigned int dl;
		u32 nl;

		if (it.size < sizeof(di) ||
		    sizeof(di) + le16_to_cpu(((const struct btrfs_dir_item *)it.ptr)->name_len) > it.size) {
			ret = fs_err(en->fs, -EUCLEAN, "dir %llu in tree %llu: truncated dir index item",
				     (unsigned long long)dir, (unsigned long long)root->objectid);
			break;
		}
		memcpy(&di, it.ptr, sizeof(di));
		nl = le16_to_cpu(di.name_len);
		if (nl <= NOKEY_CT_BYTES || memcmp(name, nk + NOKEY_HASH_BYTES, NOKEY_CT_BYTES))
			continue;
		EVP_Digest(name + NOKEY_CT_BYTES, nl - NOKEY_CT_BYTES, digest, &dl, EVP_sha256(), NULL);
		if (!memcmp(digest, nk + NOKEY_HASH_BYTES + NOKEY_CT_BYTES, NOKEY_SHA_BYTES)) {
			btrfs_disk_key_to_cpu(loc, &di.location);
			break;
		}
	}
	key_iter_release(&it);
	return ret;
}

/* name as a no-key name of an entry of dir: 0 with its location, 1 if it is none, <0. */
static int nokey_lookup(const struct enc_names *en, const struct root_ref *root, u64 dir,
			const char *name, size_t len, struct btrfs_key *loc)
{
	u8 nk[NOKEY_MAX];
	int n = nokey_decode(name, len, nk);
	u8 type;

	if (n < 0)
		return 1;
	if (n == NOKEY_MAX)
		return nokey_scan(en, root, dir, nk, loc);
	return dir_lookup(en->fs, root, dir, (const char *)nk + NOKEY_HASH_BYTES,
			  n - NOKEY_HASH_BYTES, loc, &type);
}

static int enc_lookup(const struct name_codec *nc, const struct root_ref *root, u64 dir,
		      const char *name, size_t len, struct btrfs_key *loc)
{
	const struct enc_names *en = (const void *)nc;
	struct fscrypt_context_v2 ctx;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE], ct[FNAME_MAX_LEN], type;
	int ret = dir_policy(en, root, dir, &ctx), have, n;

	if (ret <= 0)
		return ret ? ret : dir_lookup(en->fs, root, dir, name, len, loc, &type);
	have = dir_key(en, &ctx, key);
	if (have < 0)
		return have;
	if (have == 0) {
		n = fname_encrypt(ctx.filenames_mode, key, ctx.flags, name, len, ct);
		explicit_bzero(key, sizeof(key));
		if (n == -EINVAL)
			return 1;	/* no name of this directory: too long */
		if (n < 0)
			return fs_err(en->fs, n, "cannot encrypt a name: %s", strerror(-n));
		ret = dir_lookup(en->fs, root, dir, (const char *)ct, n, loc, &type);
		if (ret <= 0)
			return ret;
	}
	ret = nokey_lookup(en, root, dir, name, len, loc);
	if (ret == 1 && en->nr_mks && have == 1)
		return fs_err(en->fs, -EKEYREJECTED,
			      "wrong key: directory %llu in tree %llu is encrypted with %s",
			      (unsigned long long)dir, (unsigned long long)root->objectid,
			      other_key(en));
	return ret;
}

static int enc_show(const struct name_codec *nc, const struct root_ref *root, u64 dir,
		    const u8 *stored, size_t len, char *out)
{
	const struct enc_names *en = (const void *)nc;
	struct fscrypt_context_v2 ctx;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE], plain[FNAME_MAX_LEN];
	int ret = dir_policy(en, root, dir, &ctx), n = -1;

	if (ret < 0)
		return ret;
	if (ret == 0 || len >= NAME_SHOW_SIZE) {
		len = len < NAME_SHOW_SIZE ? len : NAME_SHOW_SIZE - 1;
		memcpy(out, stored, len);
		out[len] = 0;
		return (int)len;
	}
	ret = dir_key(en, &ctx, key);
	if (ret < 0)
		return ret;
	if (ret == 0) {
		n = fname_decrypt(ctx.filenames_mode, key, stored, len, plain);
		explicit_bzero(key, sizeof(key));
	}
	if (n > 0) {
		memcpy(out, plain, n);
		out[n] = 0;
		return n;
	}
	/* No key for it, or a name that does not decrypt: its no-key form. */
	nokey_name(stored, len, out);
	return (int)strlen(out);
}

void enc_names_init(struct enc_names *en, struct fs_info *fs,
		    const struct fscrypt_master_key *mk)
{
	en->nc.lookup = enc_lookup;
	en->nc.show = enc_show;
	en->fs = fs;
	en->mks[0] = mk;
	en->nr_mks = mk ? 1 : 0;
}

void enc_names_init_keys(struct enc_names *en, struct fs_info *fs,
			 const struct fscrypt_master_key *const *mks, size_t n)
{
	enc_names_init(en, fs, NULL);
	for (size_t i = 0; i < n && i < FSCRYPT_MAX_KEY_SET; i++)
		en->mks[en->nr_mks++] = mks[i];
}

int enc_names_new_entry(const struct enc_names *en, const struct root_ref *root, u64 dir,
			const char *name, size_t len, u8 *stored, size_t *stored_len,
			struct fscrypt_context_v2 *ctx)
{
	struct fscrypt_context_v2 pctx;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE], nonce[FSCRYPT_NONCE_SIZE];
	int ret = dir_policy(en, root, dir, &pctx), n;

	if (ret <= 0)
		return ret ? ret : 1;
	if (!en->nr_mks)
		return fs_err(en->fs, -ENOKEY,
			      "directory %llu is encrypted: a new name in it needs its key",
			      (unsigned long long)dir);
	ret = dir_key(en, &pctx, key);
	if (ret)
		return ret < 0 ? ret : fs_err(en->fs, -EKEYREJECTED,
					      "wrong key: directory %llu in tree %llu is encrypted with %s",
					      (unsigned long long)dir, (unsigned long long)root->objectid,
					      other_key(en));
	n = fname_encrypt(pctx.filenames_mode, key, pctx.flags, name, len, stored);
	explicit_bzero(key, sizeof(key));
	if (n < 0)
		return fs_err(en->fs, n, "cannot encrypt the name: %s", strerror(-n));
	*stored_len = n;
	ret = fscrypt_new_nonce(nonce);
	if (ret)
		return fs_err(en->fs, ret, "cannot get random bytes: %s", strerror(-ret));
	fscrypt_context_init(ctx, pctx.contents_mode, pctx.filenames_mode, pctx.flags,
			     pctx.master_key_identifier, nonce);
	return 0;
}

int enc_names_check_inode(const struct enc_names *en, const struct root_ref *root, u64 ino)
{
	struct fscrypt_context_v2 ctx;
	int ret;

	if (!en->nr_mks)
		return 0;
	ret = fscrypt_inode_ctx_read(en->fs, root, ino, &ctx);
	if (ret < 0)
		return ret;
	if (ret == 0 && !key_of(en, &ctx))
		return fs_err(en->fs, -EKEYREJECTED,
			      "wrong key: inode %llu in tree %llu is encrypted with %s",
			      (unsigned long long)ino, (unsigned long long)root->objectid,
			      other_key(en));
	return 0;
}
