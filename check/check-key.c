// SPDX-License-Identifier: GPL-2.0
/*
 * The checks of `check` that need the master key (Documentation/format.rst 11, C12).
 *
 * While the trees are walked, the fs checker hands over (only when a key
 * was given) the contexts of encrypted inodes, the stored names of entries
 * in encrypted directories and the data of encrypted symlinks.  Here the key
 * identifier is compared with the contexts first: a key that matches none
 * of them is a wrong key (exit 4); contexts of other keys are counted and
 * noted.  Then every name under a matching directory policy must decrypt to
 * a valid name (non-empty, no NUL or '/', zero padding only), and every
 * symlink target must decrypt.
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

struct check_key {
	struct fscrypt_master_key *mk;	/* the dispatcher's, in secret memory */
};

int check_key_attach(struct check_ctx *c, struct fscrypt_master_key *mk)
{
	c->key = fault_calloc(1, sizeof(*c->key));
	if (!c->key) {
		error("out of memory");
		return -ENOMEM;
	}
	c->key->mk = mk;
	return 0;
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

/* Names and symlink data of one inode whose context uses our key. */
static void check_inode_with_key(struct check_ctx *c, const struct key_rec *ctxr,
				 const struct key_rec *recs, size_t n)
{
	const struct fscrypt_context_v2 *ctx = (const void *)ctxr->ctx;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE], out[FNAME_MAX_LEN + 1];
	u8 target[4096];
	unsigned int ksize;
	int ret;

	ret = fscrypt_derive_file_key(c->key->mk, ctx->nonce, ctx->filenames_mode, key, &ksize);
	if (ret) {
		check_report(c, PR_NAME_DECRYPT_BAD, LOC_INODE(ctxr->root, ctxr->ino), "any", 0U,
			     ctxr->ino, "cannot derive the directory key");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct key_rec *r = &recs[i];
		const u8 *data = c->key_arena + r->data_off;

		if (r->kind == KR_NAME) {
			ret = fname_decrypt(ctx->filenames_mode, key, data, r->data_len, out);
			c->cnt.names_decrypted++;
			if (ret < 0)
				check_report(c, PR_NAME_DECRYPT_BAD,
					     LOC(r->root, r->ino, r->key_offset, NOLOC),
					     r->key_type == BTRFS_DIR_ITEM_KEY ? "DIR_ITEM" : "DIR_INDEX",
					     r->data_len, r->ino, decrypt_error(ret));
		} else if (r->kind == KR_SYMLINK) {
			ret = fscrypt_symlink_decrypt(ctx->filenames_mode, key, data, r->data_len,
						      target, sizeof(target));
			if (ret < 0)
				check_report(c, PR_SYMLINK_DECRYPT_BAD, LOC_INODE(r->root, r->ino),
					     decrypt_error(ret));
		}
	}
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

/* The compressed encrypted extents under our key, sorted by disk address; NULL on no memory. */
static struct file_extent_rec **select_compressed(struct check_ctx *c, size_t max_ram, size_t *n)
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
		    !memcmp(ec->master_key_identifier, c->key->mk->identifier, 16) &&
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
static void check_compressed_with_key(struct check_ctx *c)
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
	sel = select_compressed(c, max_ram, &n);
	if (!sel)
		die_oom();
	if (!n)
		goto out;
	params.fd = fs->fd;
	params.dst_fd = -1;
	params.unit_size = fs->sectorsize;
	params.threads = 1;
	params.key = c->key->mk;
	params.profile = FSCRYPT_PROFILE_V7;
	params.contents_mode = FSCRYPT_MODE_AES_256_XTS;
	data_read_setup(&params);
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

int check_with_key(struct check_ctx *c)
{
	struct key_rec *v = c->key_recs.data;
	size_t n = c->key_recs.nr, ours = 0, others = 0;
	char other_id[33] = "";

	check_qsort(v, n, sizeof(*v), cmp_rec);
	for (size_t i = 0; i < n; i++) {
		const struct fscrypt_context_v2 *ctx = (const void *)v[i].ctx;

		if (v[i].kind != KR_CTX)
			continue;
		if (!memcmp(ctx->master_key_identifier, c->key->mk->identifier, 16)) {
			ours++;
		} else if (!others++) {
			for (int q = 0; q < 16; q++)
				snprintf(other_id + 2 * q, 3, "%02x", ctx->master_key_identifier[q]);
		}
	}
	if (!ours && others) {
		char id[33];

		for (int q = 0; q < 16; q++)
			snprintf(id + 2 * q, 3, "%02x", c->key->mk->identifier[q]);
		error("wrong key: its identifier %s matches none of the %zu encryption contexts (for example %s)",
		      id, others, other_id);
		return exit_code(-EKEYREJECTED, ERR_AT_RUN);
	}
	if (others)
		check_report(c, PR_KEY_NOT_USED, LOC_NONE, (unsigned long long)others, other_id);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && v[j].root == v[i].root && v[j].ino == v[i].ino)
			j++;
		if (v[i].kind == KR_CTX &&
		    !memcmp(((const struct fscrypt_context_v2 *)v[i].ctx)->master_key_identifier,
			    c->key->mk->identifier, 16))
			check_inode_with_key(c, &v[i], v + i + 1, j - i - 1);
		i = j;
	}
	check_compressed_with_key(c);
	return 0;
}
