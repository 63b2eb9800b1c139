// SPDX-License-Identifier: GPL-2.0
/*
 * The checks of `check` that need the master key (Documentation/format.rst 11, C12).
 *
 * While the trees are walked, the fs checker hands over (only when a key
 * was given) the contexts of encrypted inodes, the stored names of entries
 * in encrypted directories and the data of encrypted symlinks.  Here the key
 * identifiers are compared with the contexts first: keys that match none
 * of them are wrong keys (exit 4); contexts of other keys are counted and
 * noted.  Then every name under a directory policy of a given key must
 * decrypt to a valid name (non-empty, no NUL or '/', zero padding only), and
 * every symlink target must decrypt, each with the key its context names.
 * Several keys are how an image cut in the middle of a rekey is checked:
 * contexts under two of them are a rekey in progress (a note with the
 * counts, and entries whose inode is under the other key than their
 * directory, which check-fs.c counts instead of reporting them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "check/check.h"
#include "crypto/extent-io.h"
#include "data/read.h"
#include "kernel-shared/disk-io.h"
#include "common/key-input.h"
#include "common/messages.h"
#include "crypto/fname.h"
#include "crypto/fscrypt-keys.h"

#define MAX_KEYS FSCRYPT_MAX_KEY_SET

struct check_key {
	struct fscrypt_master_key *mks[MAX_KEYS];	/* the dispatcher's, in secret memory */
	size_t n;
	u64 used[MAX_KEYS];	/* inode contexts under each */
};

int check_key_attach(struct check_ctx *c, struct fscrypt_master_key *const *mks, size_t n)
{
	c->key = fault_calloc(1, sizeof(*c->key));
	if (!c->key) {
		error("out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && i < MAX_KEYS; i++)
		c->key->mks[c->key->n++] = mks[i];
	return 0;
}

/* The given key with this identifier, or NULL. */
static const struct fscrypt_master_key *key_of(const struct check_ctx *c, const u8 *identifier)
{
	return c->key ? fscrypt_key_find((const struct fscrypt_master_key *const *)c->key->mks,
					 c->key->n, identifier) : NULL;
}

bool check_key_given(const struct check_ctx *c, const u8 *identifier)
{
	return key_of(c, identifier) != NULL;
}

void check_key_free(struct check_ctx *c)
{
	if (!c->key)
		return;
	free(c->key);
	c->key = NULL;
}

void check_key_collect(struct check_ctx *c, u8 kind, u64 root, u64 ino, u64 key_offset,
		       u8 key_type, u32 mode, const u8 *data, u32 len)
{
	struct key_rec *r = vec_push_or_die(&c->key_recs);

	r->kind = kind;
	r->root = root;
	r->ino = ino;
	r->key_offset = key_offset;
	r->key_type = key_type;
	r->mode = mode;
	if (kind == KR_CTX) {
		memcpy(r->ctx, data, len < sizeof(r->ctx) ? len : sizeof(r->ctx));
		return;
	}
	r->data_off = bytes_append(&c->key_arena, &c->key_arena_len, &c->key_arena_cap, data, len);
	r->data_len = len;
}

static int cmp_rec(const void *x, const void *y)
{
	const struct key_rec *a = x, *b = y;
	int r;

	if ((r = cmp_u64(a->root, b->root)))
		return r;
	if ((r = cmp_u64(a->ino, b->ino)))
		return r;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return cmp_u64(a->key_offset, b->key_offset);
}

static const char *decrypt_error(int ret)
{
	switch (ret) {
	case -EBADMSG:
		return "the plaintext is not a valid name (bad padding, NUL or '/')";
	case -EINVAL:
		return "invalid ciphertext length or unsupported mode";
	default:
		return strerror(-ret);
	}
}

/* Names and symlink data of one inode whose context uses a given key. */
static void check_inode_with_key(struct check_ctx *c, const struct key_rec *ctxr,
				 const struct key_rec *recs, size_t n)
{
	const struct fscrypt_context_v2 *ctx = (const void *)ctxr->ctx;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE], out[FNAME_MAX_LEN + 1];
	u8 target[4096];
	struct fname_cipher *fc = NULL;
	unsigned int ksize;
	int ret, fc_err = 0;

	/*
	 * A file's key derivation (an HKDF expand, ~20,000 instructions) only
	 * for inodes with names or a target to decrypt; the others (regular
	 * files, empty directories) fail it only on a mode it does not know.
	 */
	if (!n)
		ret = fscrypt_mode_key_size(ctx->filenames_mode) ? 0 : -EINVAL;
	else
		ret = fscrypt_derive_file_key(key_of(c, ctx->master_key_identifier), ctx->nonce,
					      ctx->filenames_mode, key, &ksize);
	if (ret) {
		check_report(c, PR_NAME_DECRYPT_BAD, LOC_INODE(ctxr->root, ctxr->ino), "any", 0U,
			     ctxr->ino, "cannot derive the directory key");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct key_rec *r = &recs[i];
		const u8 *data = c->key_arena + r->data_off;

		if (r->kind == KR_NAME) {
			/* One key schedule for the directory (a failure: name by name, as before). */
			if (!fc && !fc_err)
				fc = fname_cipher_new(ctx->filenames_mode, key, 0, &fc_err);
			ret = fc ? fname_decrypt_with(fc, data, r->data_len, out) :
				   fname_decrypt(ctx->filenames_mode, key, data, r->data_len, out);
			c->cnt.names_decrypted++;
			if (ret < 0)
				check_report(c, PR_NAME_DECRYPT_BAD,
					     LOC(r->root, r->ino, r->key_offset, NOLOC),
					     r->key_type == BTRFS_DIR_ITEM_KEY ? "DIR_ITEM" : "DIR_INDEX",
					     r->data_len, r->ino, decrypt_error(ret));
		} else if (r->kind == KR_SYMLINK && !fs_is_metadump(c->fs)) {
			/* A metadata dump's inline data was zeroed: no target to judge. */
			ret = fscrypt_symlink_decrypt(ctx->filenames_mode, key, data, r->data_len,
						      target, sizeof(target));
			if (ret < 0)
				check_report(c, PR_SYMLINK_DECRYPT_BAD, LOC_INODE(r->root, r->ino),
					     decrypt_error(ret));
		}
	}
	fname_cipher_free(fc);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(out, sizeof(out));
	explicit_bzero(target, sizeof(target));
}

static int cmp_fe_bytenr(const void *x, const void *y)
{
	const struct file_extent_rec *a = *(struct file_extent_rec *const *)x;
	const struct file_extent_rec *b = *(struct file_extent_rec *const *)y;

	return cmp_u64(a->disk_bytenr, b->disk_bytenr);
}

/* The compressed encrypted extents under mk, sorted by disk address; NULL on no memory. */
static struct file_extent_rec **select_compressed(struct check_ctx *c,
						  const struct fscrypt_master_key *mk,
						  size_t max_ram, size_t *n)
{
	struct file_extent_rec *v = c->file_exts.data, **sel;

	*n = 0;
	sel = fault_malloc((c->file_exts.nr + 1) * sizeof(*sel));
	if (!sel)
		return NULL;
	for (size_t i = 0; i < c->file_exts.nr; i++) {
		const struct fscrypt_extent_context *ec = (const void *)v[i].ctx;

		if (v[i].type == BTRFS_FILE_EXTENT_REG && v[i].compression && v[i].encryption == 1 &&
		    v[i].disk_bytenr && v[i].has_ctx &&
		    !memcmp(ec->master_key_identifier, mk->identifier, 16) &&
		    v[i].disk_num_bytes <= max_ram && v[i].disk_num_bytes % c->fs->sectorsize == 0)
			sel[(*n)++] = &v[i];
	}
	qsort(sel, *n, sizeof(*sel), cmp_fe_bytenr);
	return sel;
}

/*
 * C12: every compressed encrypted extent under our key decrypts (through
 * the read path, data/read.h, with its extent nonce) to a stream that
 * decompresses.  Each disk extent is checked once; csums are the scrub's
 * business, so none are verified here.  A metadata dump holds no file data
 * (disk-io.h): nothing to decode there.
 */
static void check_compressed_with_key(struct check_ctx *c, const struct fscrypt_master_key *mk)
{
	struct fs_info *fs = c->fs;
	struct extent_io_params params = { 0 };
	struct extent_io *io = NULL;
	size_t n;
	const size_t max_ram = 128 * 1024;	/* btrfs caps compressed extents at 128 KiB */
	struct file_extent_rec **sel;
	int ret;

	if (fs_is_metadump(fs))
		return;	/* no decoding of a metadata dump's compressed extents */
	sel = select_compressed(c, mk, max_ram, &n);
	if (!sel)
		die_oom();
	if (!n)
		goto out;
	params.fd = fs->fd;
	params.dst_fd = -1;
	params.unit_size = fs->sectorsize;
	params.threads = 1;
	params.key = mk;
	params.profile = FSCRYPT_PROFILE_V7;
	params.contents_mode = FSCRYPT_MODE_AES_256_XTS;
	data_read_setup(&params, fs);
	ret = extent_io_new(&io, &params);
	if (ret == -ENOMEM)
		die_oom();
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct file_extent_rec *r = sel[i];
		const struct fscrypt_extent_context *ec = (const void *)r->ctx;
		struct data_read rd;
		const char *why = NULL;
		long got;

		if (i && sel[i - 1]->disk_bytenr == r->disk_bytenr)
			continue;
		ret = data_read_map(fs, NULL, r->disk_bytenr, 0, r->disk_num_bytes, 0, ec->nonce, &rd);
		if (ret == -ENOMEM)
			die_oom();	/* not a problem of the image */
		if (ret) {
			data_read_release(&rd);
			continue;	/* not mapped: reported by the extent checks */
		}
		ret = data_read_decode(io, &rd, r->compression, max_ram, NULL, NULL, &got);
		if (ret == -ENOMEM || (!ret && got == -ENOMEM))
			die_oom();
		if (ret)
			why = "cannot read or decrypt it";
		else if (got <= 0)
			why = got == -EINVAL ? "unknown compression type" : "corrupt stream";
		data_read_release(&rd);
		c->cnt.compressed_decoded++;
		if (why)
			check_report(c, PR_COMPRESSED_DECODE_BAD,
				     LOC(r->root, r->ino, r->file_offset, r->disk_bytenr),
				     (unsigned long long)r->disk_bytenr, why);
	}
out:
	extent_io_free(io);
	free(sel);
}

static void hex_id(const u8 *id, char *out)
{
	for (int q = 0; q < 16; q++)
		snprintf(out + 2 * q, 3, "%02x", id[q]);
}

/*
 * Count the inode contexts under each given key (c->key->used) and under
 * others (*others, one of them in other_id).  Returns how many contexts are
 * under given keys.
 */
static size_t count_contexts(struct check_ctx *c, size_t *others, char *other_id)
{
	const struct key_rec *v = c->key_recs.data;
	size_t ours = 0;

	*others = 0;
	for (size_t i = 0; i < c->key_recs.nr; i++) {
		const struct fscrypt_context_v2 *ctx = (const void *)v[i].ctx;
		const struct fscrypt_master_key *mk;

		if (v[i].kind != KR_CTX)
			continue;
		mk = key_of(c, ctx->master_key_identifier);
		for (size_t k = 0; mk && k < c->key->n; k++)
			c->key->used[k] += c->key->mks[k] == mk;
		if (mk)
			ours++;
		else if (!(*others)++)
			hex_id(ctx->master_key_identifier, other_id);
	}
	return ours;
}

/* Contexts under two given keys: a rekey cut short (a note, not an error). */
static void report_rekey_state(struct check_ctx *c)
{
	size_t a = MAX_KEYS, b = MAX_KEYS;
	char ida[33], idb[33];

	for (size_t k = 0; k < c->key->n; k++) {
		if (!c->key->used[k])
			continue;
		if (a == MAX_KEYS)
			a = k;
		else if (b == MAX_KEYS)
			b = k;
	}
	if (b == MAX_KEYS && !c->cnt.rekey_mixed_entries)
		return;
	if (b == MAX_KEYS)
		b = a == 0 ? 1 : 0;
	if (a == MAX_KEYS || b >= c->key->n)
		return;
	hex_id(c->key->mks[a]->identifier, ida);
	hex_id(c->key->mks[b]->identifier, idb);
	check_report(c, PR_REKEY_IN_PROGRESS, LOC_NONE, (unsigned long long)c->key->used[a], ida,
		     (unsigned long long)c->key->used[b], idb,
		     (unsigned long long)c->cnt.rekey_mixed_entries);
}

int check_with_key(struct check_ctx *c)
{
	struct key_rec *v = c->key_recs.data;
	size_t n = c->key_recs.nr, ours, others;
	char other_id[33] = "";

	check_qsort(v, n, sizeof(*v), cmp_rec);
	ours = count_contexts(c, &others, other_id);
	/* A write command says itself that its key is wrong, in its own words. */
	if (!ours && others && c->verify)
		return 0;
	if (!ours && others) {
		char id[33];

		hex_id(c->key->mks[0]->identifier, id);
		error("wrong key: %s %s matches none of the %zu encryption contexts (for example %s)",
		      c->key->n > 1 ? "no key given, for example" : "its identifier", id, others,
		      other_id);
		return exit_code(-EKEYREJECTED, ERR_AT_RUN);
	}
	if (others)
		check_report(c, PR_KEY_NOT_USED, LOC_NONE, (unsigned long long)others, other_id);
	report_rekey_state(c);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && v[j].root == v[i].root && v[j].ino == v[i].ino)
			j++;
		if (v[i].kind == KR_CTX &&
		    key_of(c, ((const struct fscrypt_context_v2 *)v[i].ctx)->master_key_identifier))
			check_inode_with_key(c, &v[i], v + i + 1, j - i - 1);
		i = j;
	}
	for (size_t k = 0; k < c->key->n; k++)
		check_compressed_with_key(c, c->key->mks[k]);
	return 0;
}
