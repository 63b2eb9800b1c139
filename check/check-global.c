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

static int cmp_file_ext(const void *x, const void *y)
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

/*
 * A nonce may repeat only for the same disk extent or the same inode.  Each
 * nonce's first user goes into a map keyed by its first 8 bytes (random
 * nonces hash themselves); a later user of the same nonce that is not the same extent
 * or inode is reported, once per nonce.
 */
static void check_nonces(struct check_ctx *c)
{
	struct nonce_rec *v = c->nonces.data;
	size_t n = c->nonces.nr;
	/* 5 bytes: a map slot of 16 with its key (the table is the size of 4 n slots). */
	struct nonce_slot {
		u32 first;	/* index of the nonce's first user */
		u8 reported;
	} __attribute__((packed)) *ns;
	struct u64map tab;

	u64map_init(&tab, sizeof(struct nonce_slot));
	if (n > UINT32_MAX || u64map_reserve(&tab, n)) {
		die_oom();
	}
	for (size_t k = 0; k < n; k++) {
		size_t cursor = 0;
		u64 h;

		memcpy(&h, v[k].nonce, sizeof(h));
		while ((ns = u64map_next(&tab, h, &cursor)))
			if (!memcmp(v[ns->first].nonce, v[k].nonce, 16))
				break;
		if (!ns) {
			ns = u64map_insert(&tab, h);	/* reserved: cannot fail */
			ns->first = (u32)k;
		} else if (!ns->reported) {
			const struct nonce_rec *f = &v[ns->first];
			bool same = v[k].inode == f->inode &&
				    (v[k].inode ? v[k].ino == f->ino : v[k].bytenr == f->bytenr);

			if (!same) {
				char hex[33], a[96], b[96];

				for (int q = 0; q < 16; q++)
					snprintf(hex + 2 * q, 3, "%02x", f->nonce[q]);
				describe_nonce_user(f, a, sizeof(a));
				describe_nonce_user(&v[k], b, sizeof(b));
				check_report(c, PR_NONCE_REUSE, LOC(v[k].root, v[k].ino, v[k].offset,
								   v[k].bytenr), hex, a, b);
				ns->reported = true;
			}
		}
	}
	u64map_free(&tab);
}

void fs_check_global(struct check_ctx *c)
{
	struct file_extent_rec *v = c->file_exts.data;
	size_t n = c->file_exts.nr;

	/* C1 */
	if (c->saw_encrypted_items && !(c->fs->incompat & BTRFS_FEATURE_INCOMPAT_ENCRYPT)) {
		char what[96], rn[32];

		snprintf(what, sizeof(what), "root %s inode %llu",
			 check_root_name(c->first_encrypted_root, rn, sizeof(rn)),
			 c->first_encrypted_ino);
		check_report(c, PR_ENCRYPT_INCOMPAT_MISSING, LOC_NONE, what);
	}
	/* C8: all references to one disk extent agree. */
	check_qsort(v, n, sizeof(*v), cmp_file_ext);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && v[j].disk_bytenr == v[i].disk_bytenr)
			j++;
		for (size_t k = i + 1; k < j; k++) {
			const char *why = NULL;

			if (v[k].encryption != v[i].encryption)
				why = "one is encrypted, the other not";
			else if (v[k].has_ctx && v[i].has_ctx && memcmp(v[k].ctx, v[i].ctx, 34))
				why = "different encryption contexts";
			if (why) {
				check_report(c, PR_SHARED_EXTENT_MISMATCH,
					     LOC(v[k].root, v[k].ino, v[k].file_offset, v[k].disk_bytenr),
					     v[k].disk_bytenr, why, v[i].root, v[i].ino, v[i].file_offset);
				break;
			}
		}
		i = j;
	}
	check_nonces(c);
}
