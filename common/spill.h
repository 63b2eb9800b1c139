/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A sorted store that spills to disk: records go in in any order and come
 * out once, in the order of a comparator, with a memory use that does not
 * grow with their number (Documentation/design.rst section 7, "Memory").
 *
 * Up to a budget of bytes, records stay in memory.  Beyond it, the records
 * held are sorted and written as one sorted run to an unlinked temporary
 * file in TMPDIR (else /tmp), and reading merges the runs: memory is then
 * the budget while adding and one read buffer per run while reading.  The
 * order is stable: records that compare equal come out in the order they
 * went in.  Records are copied in and may differ in size (up to
 * SPILL_MAX_REC bytes); a record read back is 8-byte aligned and stays
 * valid until the next read.  The file holds whatever the records hold:
 * callers put no secret in them.
 *
 * Errors are negative errnos (-ENOMEM, or the temporary file's); the store
 * neither prints nor exits, and after an error it can only be freed.
 */
#ifndef EXTCRYPT_SPILL_H
#define EXTCRYPT_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPILL_MAX_REC 8192u

struct spill_cursor;

struct spill {
	int (*cmp)(const void *a, const void *b);
	size_t budget;
	/* adding: records (a u64 length, then the bytes, padded to 8) */
	uint8_t *arena;
	size_t len, cap;
	size_t *idx;		/* arena offsets of the records held, sorted before a run */
	size_t nr, idx_cap;
	/* runs in the temporary file */
	int fd;			/* -1 until the first run */
	uint64_t file_len;
	uint64_t *run_end;	/* end offset of each run; run k starts where k - 1 ends */
	size_t nruns;
	/* reading */
	bool reading;
	size_t pos;			/* next record held in memory (no runs) */
	struct spill_cursor *cur;	/* one per run */
	struct spill_cursor *pending;	/* the last record's run: steps at the next read */
};

/* Where runs go: TMPDIR, else /tmp (for the callers' messages too). */
const char *spill_tmpdir(void);
/* budget: bytes of records (and their index) held before a run is written. */
void spill_init(struct spill *s, size_t budget, int (*cmp)(const void *a, const void *b));
/* Copy in a record of len (1..SPILL_MAX_REC) bytes: 0 or a negative errno. */
int spill_add(struct spill *s, const void *rec, uint32_t len);
/* Done adding: sort what is held, or write it as the last run and start the merge. */
int spill_finish(struct spill *s);
/*
 * The next record in order (after spill_finish()), or NULL at the end or
 * on an error (*err set, else 0).  *len: its size.
 */
const void *spill_next(struct spill *s, uint32_t *len, int *err);
/* Read the records again from the first (after spill_finish()): 0 or a negative errno. */
int spill_rewind(struct spill *s);
/* Runs written so far (0: everything stayed in memory). */
static inline size_t spill_runs(const struct spill *s)
{
	return s->nruns;
}
void spill_free(struct spill *s);

#endif
