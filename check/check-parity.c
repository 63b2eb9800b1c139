// SPDX-License-Identifier: GPL-2.0
/*
 * RAID5/6 parity (check --check-data-csum; Documentation/format.rst 2.11,
 * "Copies"): every row of every RAID5/6 chunk is read, its P (and Q)
 * computed from its data elements and compared with the stored parity,
 * sector by sector, as the kernel's scrub compares the full stripes it
 * visits.  A differing parity sector is the parity's fault when no data
 * element of that sector is known bad (the data scrub's mirror 1, a tree
 * block's copy 1): PARITY_MISMATCH, a warning, since readers read the
 * data elements and only rebuild from parity when one of those is bad.
 */
#include <errno.h>
#include <stdlib.h>
#include "check/check.h"
#include "common/fault.h"
#include "common/messages.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/volumes.h"

static int cmp_logical(const void *a, const void *b)
{
	return cmp_u64(*(const u64 *)a, *(const u64 *)b);
}

/* Whether a data element of sector s of the row at `logical` is known bad. */
static bool data_known_bad(const struct check_ctx *c, const struct chunk_map *m, u64 logical,
			   u64 nd, u64 s)
{
	for (u64 i = 0; c->raid56_bad.nr && i < nd; i++) {
		u64 at = logical + i * m->stripe_len + s * c->fs->sectorsize;

		if (bsearch(&at, c->raid56_bad.data, c->raid56_bad.nr, sizeof(u64), cmp_logical))
			return true;
	}
	return false;
}

/* The parity sectors set in bits (k: 1 P, 2 Q) not explained by a bad data element. */
static void report_row(struct check_ctx *c, const struct chunk_map *m, u64 row, int k, u64 bits)
{
	u64 nd = chunk_data_stripes(m);
	u64 logical = m->logical + row * nd * m->stripe_len, first = 0;
	unsigned int n = 0;
	struct copy_loc loc;

	for (u64 s = 0; s < 64; s++) {
		if (!(bits & (1ULL << s)) || data_known_bad(c, m, logical, nd, s))
			continue;
		if (!n++)
			first = s;
	}
	if (!n || map_copy(c->fs, logical + first * c->fs->sectorsize, c->fs->sectorsize, k, &loc))
		return;
	check_report(c, PR_PARITY_MISMATCH, LOC_BLOCK(NOLOC, logical), k == 1 ? "P" : "Q",
		     (unsigned long long)logical, (unsigned long long)loc.devid,
		     (unsigned long long)loc.physical, n,
		     (unsigned int)(m->stripe_len / c->fs->sectorsize));
}

void check_parity(struct check_ctx *c)
{
	struct fs_info *fs = c->fs;
	size_t nr;
	const struct bad_copy *bc = bad_copies(fs, &nr);

	if (!c->check_data_csum)
		return;
	for (size_t i = 0; i < nr; i++)	/* tree blocks whose own element is bad */
		for (u64 off = 0; bc[i].copy == 0 && off < fs->nodesize; off += fs->sectorsize)
			*(u64 *)vec_push_or_die(&c->raid56_bad) = bc[i].logical + off;
	check_qsort(c->raid56_bad.data, c->raid56_bad.nr, sizeof(u64), cmp_logical);
	for (size_t i = 0; i < fs->nr_chunks; i++) {
		const struct chunk_map *m = &fs->chunks[i];

		for (u64 row = 0; row < raid56_rows(m); row++) {
			u64 p_bad, q_bad;
			int ret = raid56_verify_row(fs, m, row, &p_bad, &q_bad);

			if (ret == -ENOMEM)
				die_oom();
			if (ret == -ENODEV)
				break;	/* degraded: the parity stands in for the missing element */
			if (ret) {
				check_report(c, PR_DATA_READ_ERROR, LOC_BLOCK(NOLOC, m->logical),
					     fs_errmsg(fs));
				break;
			}
			report_row(c, m, row, 1, p_bad);
			report_row(c, m, row, 2, q_bad);
		}
	}
	fs_clear_err(fs);
}
