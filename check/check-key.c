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
	u64 ours, others;	/* inode contexts under a given key, under another */
	char other_id[33];	/* the first other key's identifier */
};

/* One inode's names and symlink data, checked as its records come out of the store. */
struct key_inode {
	bool active;		/* a context under a given key is being followed */
	bool derived, failed;	/* the key derivation: done, or it failed (reported) */
	u64 root, ino;
	struct fscrypt_context_v2 ctx;
	u8 key[FSCRYPT_MAX_MODE_KEY_SIZE];
	struct fname_cipher *fc;
	int fc_err;
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

static void hex_id(const u8 *id, char *out)
{
	for (int q = 0; q < 16; q++)
		snprintf(out + 2 * q, 3, "%02x", id[q]);
}

/* An inode context: counted under its key here, while the walk hands it over. */
static void count_context(struct check_ctx *c, const struct fscrypt_context_v2 *ctx)
{
	struct check_key *k = c->key;
	const struct fscrypt_master_key *mk = key_of(c, ctx->master_key_identifier);

	for (size_t i = 0; mk && i < k->n; i++)
		k->used[i] += k->mks[i] == mk;
	if (mk)
		k->ours++;
	else if (!k->others++)
		hex_id(ctx->master_key_identifier, k->other_id);
}

void check_key_collect(struct check_ctx *c, u8 kind, u64 root, u64 ino, u64 key_offset,
		       u8 key_type, u32 mode, const u8 *data, u32 len)
{
	struct {
		struct key_rec r;
		u8 data[SPILL_MAX_REC - sizeof(struct key_rec)];
	} rec;

	/* A name is 255 bytes at most; symlink data this long fails its decryption anyway. */
	if (len > sizeof(rec.data))
		len = sizeof(rec.data);
	rec.r = (struct key_rec){ .root = root, .ino = ino, .key_offset = key_offset,
				  .mode = mode, .data_len = len, .kind = kind,
				  .key_type = key_type };
	memcpy(rec.data, data, len);
	if (kind == KR_CTX)
		count_context(c, (const void *)data);
	spill_add_or_die(&c->key_recs, &rec, sizeof(rec.r) + len);
}

int cmp_key_rec(const void *x, const void *y)
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

/* The end of an inode's records: wipe its key; a context alone only needs a known mode. */
static void key_inode_end(struct check_ctx *c, struct key_inode *ki)
{
	if (ki->active && !ki->derived && !fscrypt_mode_key_size(ki->ctx.filenames_mode))
		check_report(c, PR_NAME_DECRYPT_BAD, LOC_INODE(ki->root, ki->ino), "any", 0U,
			     ki->ino, "cannot derive the directory key");
	fname_cipher_free(ki->fc);
	explicit_bzero(ki, sizeof(*ki));
}

/*
 * The directory key, derived at the inode's first name or symlink data: a
 * file's key derivation (an HKDF expand, ~20,000 instructions) only for
 * inodes with something to decrypt.
 */
static bool key_inode_key(struct check_ctx *c, struct key_inode *ki)
{
	unsigned int ksize;

	if (!ki->derived) {
		ki->derived = true;
		ki->failed = fscrypt_derive_file_key(key_of(c, ki->ctx.master_key_identifier),
						     ki->ctx.nonce, ki->ctx.filenames_mode, ki->key,
						     &ksize) != 0;
		if (ki->failed)
			check_report(c, PR_NAME_DECRYPT_BAD, LOC_INODE(ki->root, ki->ino), "any", 0U,
				     ki->ino, "cannot derive the directory key");
	}
	return !ki->failed;
}

/* One name or symlink data of the inode being followed. */
static void key_inode_rec(struct check_ctx *c, struct key_inode *ki, const struct key_rec *r,
			  const u8 *data)
{
	u8 out[FNAME_MAX_LEN + 1], target[4096];
	int ret;

	if (!key_inode_key(c, ki))
		return;
	if (r->kind == KR_NAME) {
		/* One key schedule for the directory (a failure: name by name, as before). */
		if (!ki->fc && !ki->fc_err)
			ki->fc = fname_cipher_new(ki->ctx.filenames_mode, ki->key, 0, &ki->fc_err);
		ret = ki->fc ? fname_decrypt_with(ki->fc, data, r->data_len, out) :
			       fname_decrypt(ki->ctx.filenames_mode, ki->key, data, r->data_len, out);
		c->cnt.names_decrypted++;
		if (ret < 0)
			check_report(c, PR_NAME_DECRYPT_BAD, LOC(r->root, r->ino, r->key_offset, NOLOC),
				     r->key_type == BTRFS_DIR_ITEM_KEY ? "DIR_ITEM" : "DIR_INDEX",
				     r->data_len, r->ino, decrypt_error(ret));
		explicit_bzero(out, sizeof(out));
	} else if (r->kind == KR_SYMLINK && !fs_is_metadump(c->fs)) {
		/* A metadata dump's inline data was zeroed: no target to judge. */
		ret = fscrypt_symlink_decrypt(ki->ctx.filenames_mode, ki->key, data, r->data_len,
					      target, sizeof(target));
		if (ret < 0)
			check_report(c, PR_SYMLINK_DECRYPT_BAD, LOC_INODE(r->root, r->ino),
				     decrypt_error(ret));
		explicit_bzero(target, sizeof(target));
	}
}


/* The compressed encrypted extents under mk, sorted by disk address; NULL on no memory. */
static struct file_extent_rec **select_compressed(struct check_ctx *c,
						  const struct fscrypt_master_key *mk,
						  size_t max_ram, size_t *n)
{
	struct file_extent_rec *v = c->compressed_exts.data, **sel;

	*n = 0;
	sel = fault_malloc((c->compressed_exts.nr + 1) * sizeof(*sel));
	if (!sel)
		return NULL;
	for (size_t i = 0; i < c->compressed_exts.nr; i++) {
		const struct fscrypt_extent_context *ec = (const void *)v[i].ctx;

		/* file_extents_pass() kept only compressed encrypted extents with a context */
		if (!memcmp(ec->master_key_identifier, mk->identifier, 16) &&
		    v[i].disk_num_bytes <= max_ram && v[i].disk_num_bytes % c->fs->sectorsize == 0)
			sel[(*n)++] = &v[i];
	}
	return sel;	/* in disk order, as the list is */
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
	struct check_key *k = c->key;
	struct key_inode ki = { 0 };
	const struct key_rec *r;
	u32 len;

	/* A write command says itself that its key is wrong, in its own words. */
	if (!k->ours && k->others && c->verify)
		return 0;
	if (!k->ours && k->others) {
		char id[33];

		hex_id(k->mks[0]->identifier, id);
		error("wrong key: %s %s matches none of the %llu encryption contexts (for example %s)",
		      k->n > 1 ? "no key given, for example" : "its identifier", id,
		      (unsigned long long)k->others, k->other_id);
		return exit_code(-EKEYREJECTED, ERR_AT_RUN);
	}
	if (k->others)
		check_report(c, PR_KEY_NOT_USED, LOC_NONE, (unsigned long long)k->others, k->other_id);
	report_rekey_state(c);
	/* By inode, its context first: the records of an inode under a given key are checked. */
	spill_finish_or_die(&c->key_recs);
	while ((r = spill_next_or_die(&c->key_recs, &len))) {
		const u8 *data = (const u8 *)(r + 1);

		if (r->kind == KR_CTX) {
			key_inode_end(c, &ki);
			if (!key_of(c, ((const struct fscrypt_context_v2 *)data)->master_key_identifier))
				continue;
			ki.active = true;
			ki.root = r->root;
			ki.ino = r->ino;
			memcpy(&ki.ctx, data, sizeof(ki.ctx));
		} else if (ki.active && r->root == ki.root && r->ino == ki.ino) {
			key_inode_rec(c, &ki, r, data);
		}
	}
	key_inode_end(c, &ki);
	for (size_t i = 0; i < k->n; i++)
		check_compressed_with_key(c, k->mks[i]);
	return 0;
}
