// SPDX-License-Identifier: GPL-2.0
/*
 * The checks over the whole filesystem once every fs tree is walked: the
 * incompat bit (C1), every reference to one disk extent agreeing on its
 * encryption (C8), and no nonce used twice (Documentation/format.rst
 * section 11).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check/check.h"
#include "common/containers.h"
#include "common/messages.h"

int cmp_file_ext(const void *x, const void *y)
{
	const struct file_extent_rec *a = x, *b = y;
	int r;

	if ((r = cmp_u64(a->disk_bytenr, b->disk_bytenr)))
		return r;
	if ((r = cmp_u64(a->root, b->root)))
		return r;
	if ((r = cmp_u64(a->ino, b->ino)))
		return r;
	return cmp_u64(a->file_offset, b->file_offset);
}

static void describe_nonce_user(const struct nonce_rec *n, char *buf, size_t len)
{
	char rn[32];

	if (n->inode)
		snprintf(buf, len, "inode %llu of root %s", n->ino,
			 check_root_name(n->root, rn, sizeof(rn)));
	else
		snprintf(buf, len, "the disk extent at %llu", n->bytenr);
}

int cmp_nonce_rec(const void *x, const void *y)
{
	return memcmp(((const struct nonce_rec *)x)->nonce, ((const struct nonce_rec *)y)->nonce, 16);
}

/*
 * A nonce may repeat only for the same disk extent or the same inode.  The
 * users of a nonce come out of the store together (sorted by nonce, in walk
 * order among themselves); a later user that is not the same extent or
 * inode as the first is reported, once per nonce.
 */
static void check_nonces(struct check_ctx *c)
{
	struct nonce_rec first;
	const struct nonce_rec *r;
	bool any = false, reported = false;
	u32 len;

	spill_finish_or_die(&c->nonces);
	while ((r = spill_next_or_die(&c->nonces, &len))) {
		bool same;

		if (!any || memcmp(r->nonce, first.nonce, 16)) {
			first = *r;
			any = true;
			reported = false;
			continue;
		}
		same = r->inode == first.inode && (r->inode ? r->ino == first.ino : r->bytenr == first.bytenr);
		if (same || reported)
			continue;
		{
			char hex[33], a[96], b[96];

			for (int q = 0; q < 16; q++)
				snprintf(hex + 2 * q, 3, "%02x", first.nonce[q]);
			describe_nonce_user(&first, a, sizeof(a));
			describe_nonce_user(r, b, sizeof(b));
			check_report(c, PR_NONCE_REUSE, LOC(r->root, r->ino, r->offset, r->bytenr), hex, a, b);
			reported = true;
		}
	}
}

/* C8: a later reference to one disk extent that disagrees with the first; true once reported. */
static bool shared_mismatch(struct check_ctx *c, const struct file_extent_rec *first,
			    const struct file_extent_rec *r)
{
	const char *why = NULL;

	if (r->encryption != first->encryption)
		why = "one is encrypted, the other not";
	else if (r->has_ctx && first->has_ctx && memcmp(r->ctx, first->ctx, 34))
		why = "different encryption contexts";
	if (why)
		check_report(c, PR_SHARED_EXTENT_MISMATCH,
			     LOC(r->root, r->ino, r->file_offset, r->disk_bytenr), r->disk_bytenr, why,
			     first->root, first->ino, first->file_offset);
	return why != NULL;
}

/*
 * One pass over the file extents in disk order (the references to one disk
 * extent together): C8, the csums each needs (with a readable csum tree)
 * and the list of encrypted compressed extents that check_with_key() decodes.
 */
static void file_extents_pass(struct check_ctx *c)
{
	struct file_extent_rec first = { 0 };
	const struct file_extent_rec *r;
	bool written = false, mismatch = false;
	u32 len;

	spill_finish_or_die(&c->file_exts);
	while ((r = spill_next_or_die(&c->file_exts, &len))) {
		bool w = r->type != BTRFS_FILE_EXTENT_PREALLOC ||
			 r->root == BTRFS_DATA_RELOC_TREE_OBJECTID;

		if (!first.disk_bytenr || r->disk_bytenr != first.disk_bytenr) {
			if (first.disk_bytenr && !written && c->csum_tree_ok)
				check_csum_prealloc(c, &first);
			first = *r;
			written = w;
			mismatch = false;
		} else {
			written |= w;
			if (!mismatch)
				mismatch = shared_mismatch(c, &first, r);
		}
		if (c->csum_tree_ok)
			check_csum_coverage(c, r);
		if (r->type == BTRFS_FILE_EXTENT_REG && r->compression && r->encryption == 1 &&
		    r->has_ctx)
			*(struct file_extent_rec *)vec_push_or_die(&c->compressed_exts) = *r;
	}
	if (first.disk_bytenr && !written && c->csum_tree_ok)
		check_csum_prealloc(c, &first);
}

void fs_check_global(struct check_ctx *c)
{
	/* C1 */
	if (c->saw_encrypted_items && !(c->fs->incompat & BTRFS_FEATURE_INCOMPAT_ENCRYPT)) {
		char what[96], rn[32];

		snprintf(what, sizeof(what), "root %s inode %llu",
			 check_root_name(c->first_encrypted_root, rn, sizeof(rn)),
			 c->first_encrypted_ino);
		check_report(c, PR_ENCRYPT_INCOMPAT_MISSING, LOC_NONE, what);
	}
	file_extents_pass(c);
	check_nonces(c);
}
