// SPDX-License-Identifier: GPL-2.0
/*
 * The spilling sorted store (common/spill.h).
 *
 * A record is stored as a u64 length and its bytes padded to 8, in the
 * arena while adding and the same way in the runs, so a record read back
 * from a buffer is 8-byte aligned.  Sorting sorts the arena offsets with the
 * caller's comparator and, for equal records, by offset (insertion order);
 * the merge takes equal records from the earlier run first.  Both keep the
 * store stable.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/spill.h"
#include "common/fault.h"

#define HDR 8u
#define CURSOR_BUF (256u * 1024)	/* per run while merging: >= 2 records of the largest size */
#define WRITE_BUF (1024u * 1024)

struct spill_cursor {
	uint8_t *buf;
	size_t have, pos;		/* bytes in buf; next record's offset in buf */
	uint64_t next, end;		/* file offsets: next to read, end of the run */
	const uint8_t *rec;		/* current record (its bytes), NULL when the run is done */
	uint32_t rec_len;
};

static inline size_t padded(uint32_t len)
{
	return HDR + (((size_t)len + 7) & ~(size_t)7);
}

void spill_init(struct spill *s, size_t budget, int (*cmp)(const void *a, const void *b))
{
	memset(s, 0, sizeof(*s));
	s->cmp = cmp;
	s->budget = budget < 2 * padded(SPILL_MAX_REC) ? 2 * padded(SPILL_MAX_REC) : budget;
	s->fd = -1;
}

static int cmp_idx(const void *x, const void *y, void *arg)
{
	const struct spill *s = arg;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int r = s->cmp(s->arena + a + HDR, s->arena + b + HDR);

	if (r)
		return r;
	return a < b ? -1 : a > b;
}

const char *spill_tmpdir(void)
{
	const char *dir = getenv("TMPDIR");

	return dir && *dir ? dir : "/tmp";
}

static int open_tmp(void)
{
	const char *dir = spill_tmpdir();
	char path[PATH_MAX];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* No O_TMPFILE on that filesystem: a named file, unlinked at once. */
	if (snprintf(path, sizeof(path), "%s/btrfs-extcrypt-sort-XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Sort the records held and append them to the file as one run. */
static int write_run(struct spill *s)
{
	uint64_t *ends;
	uint8_t *wb;
	size_t used = 0;
	int ret = 0;

	if (s->fd < 0) {
		s->fd = open_tmp();
		if (s->fd < 0) {
			ret = s->fd;
			s->fd = -1;
			return ret;
		}
	}
	ends = fault_realloc(s->run_end, (s->nruns + 1) * sizeof(*ends));
	if (!ends)
		return -ENOMEM;
	s->run_end = ends;
	wb = fault_malloc(WRITE_BUF);
	if (!wb)
		return -ENOMEM;
	qsort_r(s->idx, s->nr, sizeof(*s->idx), cmp_idx, s);
	for (size_t i = 0; i < s->nr && !ret; i++) {
		const uint8_t *r = s->arena + s->idx[i];
		size_t sz = padded((uint32_t)*(const uint64_t *)r);

		if (used + sz > WRITE_BUF) {
			ret = write_all(s->fd, wb, used, s->file_len);
			s->file_len += used;
			used = 0;
		}
		memcpy(wb + used, r, sz);
		used += sz;
	}
	if (!ret && used) {
		ret = write_all(s->fd, wb, used, s->file_len);
		s->file_len += used;
	}
	free(wb);
	if (ret)
		return ret;
	s->run_end[s->nruns++] = s->file_len;
	s->len = 0;
	s->nr = 0;
	return 0;
}

int spill_add(struct spill *s, const void *rec, uint32_t len)
{
	size_t sz = padded(len);
	int ret;

	if (!len || len > SPILL_MAX_REC || s->reading)
		return -EINVAL;
	if (s->nr && s->len + sz + (s->nr + 1) * sizeof(*s->idx) > s->budget) {
		ret = write_run(s);
		if (ret)
			return ret;
	}
	if (s->len + sz > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		uint8_t *a;

		while (cap < s->len + sz)
			cap *= 2;
		if (cap > s->budget && s->budget >= s->len + sz)
			cap = s->budget;
		a = fault_realloc(s->arena, cap);
		if (!a)
			return -ENOMEM;
		s->arena = a;
		s->cap = cap;
	}
	if (s->nr == s->idx_cap) {
		size_t cap = s->idx_cap ? s->idx_cap * 2 : 1024;
		size_t *ix = fault_realloc(s->idx, cap * sizeof(*ix));

		if (!ix)
			return -ENOMEM;
		s->idx = ix;
		s->idx_cap = cap;
	}
	*(uint64_t *)(s->arena + s->len) = len;
	memcpy(s->arena + s->len + HDR, rec, len);
	memset(s->arena + s->len + HDR + len, 0, sz - HDR - len);
	s->idx[s->nr++] = s->len;
	s->len += sz;
	return 0;
}

/* Make the cursor's next record current (rec NULL at the run's end). */
static int cursor_step(struct spill *s, struct spill_cursor *c)
{
	uint64_t len;

	if (c->have - c->pos < HDR ||
	    c->have - c->pos < padded((uint32_t)*(const uint64_t *)(c->buf + c->pos))) {
		size_t keep = c->have - c->pos, want = CURSOR_BUF - keep;

		memmove(c->buf, c->buf + c->pos, keep);
		c->have = keep;
		c->pos = 0;
		if (want > c->end - c->next)
			want = (size_t)(c->end - c->next);
		while (want) {
			ssize_t r = pread(s->fd, c->buf + c->have, want, (off_t)c->next);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			c->have += (size_t)r;
			c->next += (uint64_t)r;
			want -= (size_t)r;
		}
	}
	if (c->have == c->pos) {
		c->rec = NULL;
		return 0;
	}
	len = *(const uint64_t *)(c->buf + c->pos);
	/* Our own file: a size out of range means it changed under us. */
	if (c->have - c->pos < HDR || !len || len > SPILL_MAX_REC ||
	    c->have - c->pos < padded((uint32_t)len))
		return -EIO;
	c->rec = c->buf + c->pos + HDR;
	c->rec_len = (uint32_t)len;
	c->pos += padded((uint32_t)len);
	return 0;
}

/* Put run k's cursor (its buffer allocated) at the run's first record. */
static int cursor_start(struct spill *s, size_t k)
{
	struct spill_cursor *c = &s->cur[k];

	c->have = c->pos = 0;
	c->next = k ? s->run_end[k - 1] : 0;
	c->end = s->run_end[k];
	return cursor_step(s, c);
}

static int start_merge(struct spill *s)
{
	int ret;

	s->cur = fault_calloc(s->nruns, sizeof(*s->cur));
	if (!s->cur)
		return -ENOMEM;
	for (size_t k = 0; k < s->nruns; k++) {
		s->cur[k].buf = fault_malloc(CURSOR_BUF);
		if (!s->cur[k].buf)
			return -ENOMEM;
		ret = cursor_start(s, k);
		if (ret)
			return ret;
	}
	return 0;
}

int spill_finish(struct spill *s)
{
	int ret;

	if (s->reading)
		return -EINVAL;
	s->reading = true;
	if (!s->nruns) {
		if (s->nr > 1)
			qsort_r(s->idx, s->nr, sizeof(*s->idx), cmp_idx, s);
		return 0;
	}
	if (s->nr) {
		ret = write_run(s);
		if (ret)
			return ret;
	}
	free(s->arena);
	free(s->idx);
	s->arena = NULL;
	s->idx = NULL;
	s->cap = s->idx_cap = 0;
	return start_merge(s);
}

const void *spill_next(struct spill *s, uint32_t *len, int *err)
{
	struct spill_cursor *best = NULL;
	const void *rec;

	*err = 0;
	if (!s->reading) {
		*err = -EINVAL;
		return NULL;
	}
	if (!s->nruns) {
		const uint8_t *r;

		if (s->pos == s->nr)
			return NULL;
		r = s->arena + s->idx[s->pos++];
		*len = (uint32_t)*(const uint64_t *)r;
		return r + HDR;
	}
	/* The cursor of the last record moves on only now: its bytes were valid until this call. */
	if (s->pending) {
		*err = cursor_step(s, s->pending);
		s->pending = NULL;
		if (*err)
			return NULL;
	}
	/* Few runs (the data over the budget): a linear pick of the least, the earlier run on a tie. */
	for (size_t k = 0; k < s->nruns; k++) {
		struct spill_cursor *c = &s->cur[k];

		if (c->rec && (!best || s->cmp(c->rec, best->rec) < 0))
			best = c;
	}
	if (!best)
		return NULL;
	rec = best->rec;
	*len = best->rec_len;
	s->pending = best;
	return rec;
}

int spill_rewind(struct spill *s)
{
	int ret;

	if (!s->reading)
		return -EINVAL;
	s->pos = 0;
	s->pending = NULL;
	for (size_t k = 0; k < s->nruns; k++) {
		ret = cursor_start(s, k);
		if (ret)
			return ret;
	}
	return 0;
}

void spill_free(struct spill *s)
{
	if (s->cur)
		for (size_t k = 0; k < s->nruns; k++)
			free(s->cur[k].buf);
	free(s->cur);
	free(s->arena);
	free(s->idx);
	free(s->run_end);
	if (s->fd >= 0)
		close(s->fd);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}
