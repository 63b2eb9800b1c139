// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of common/spill.c: records of random keys and sizes come back
 * in the order of a stable sort, whether they stayed in memory or went
 * through many runs on disk; errors of the temporary file are returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/spill.h"
#include "common/fault.h"
#include "tests/unit/unit.h"

struct rec {
	uint32_t key;
	uint32_t seq;		/* insertion order: the stable tie-break to check */
	uint8_t fill;		/* the payload after the header repeats it */
};

static int cmp_rec(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;

	return a->key < b->key ? -1 : a->key > b->key;
}

static int cmp_expect(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;
	int r = cmp_rec(a, b);

	return r ? r : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

/* Add n records (keys in 0..keys-1, sizes up to maxlen), read them back, compare. */
static void round_trip(size_t n, uint32_t keys, uint32_t maxlen, size_t budget, bool want_runs)
{
	struct rec *want = calloc(n, sizeof(*want));
	uint8_t buf[SPILL_MAX_REC];
	struct spill s;
	size_t got = 0;
	uint32_t len;
	int err = 0;
	const uint8_t *r;

	CHECK(want != NULL);
	if (!want)
		return;
	srand(7);
	spill_init(&s, budget, cmp_rec);
	for (size_t i = 0; i < n; i++) {
		struct rec *w = &want[i];
		uint32_t sz = sizeof(*w) + (uint32_t)rand() % (maxlen - sizeof(*w) + 1);

		w->key = (uint32_t)rand() % keys;
		w->seq = (uint32_t)i;
		w->fill = (uint8_t)sz;
		memcpy(buf, w, sizeof(*w));
		memset(buf + sizeof(*w), w->fill, sz - sizeof(*w));
		CHECK_EQ_INT(spill_add(&s, buf, sz), 0);
	}
	CHECK_EQ_INT(spill_finish(&s), 0);
	CHECK(want_runs ? spill_runs(&s) > 2 : spill_runs(&s) == 0);
	qsort(want, n, sizeof(*want), cmp_expect);
	while ((r = spill_next(&s, &len, &err))) {
		const struct rec *h = (const void *)r;
		bool same = got < n && h->key == want[got].key && h->seq == want[got].seq &&
			    (uint8_t)len == h->fill && ((uintptr_t)r & 7) == 0;

		for (uint32_t q = sizeof(*h); same && q < len; q++)
			same = r[q] == h->fill;
		CHECK(same);
		if (!same)
			break;
		got++;
	}
	CHECK_EQ_INT(err, 0);
	CHECK(got == n);
	CHECK(spill_next(&s, &len, &err) == NULL && err == 0);	/* stays at the end */
	spill_free(&s);
	free(want);
}

UNIT_TEST(spill_in_memory_sorted_stable)
{
	round_trip(5000, 50, 40, 1u << 24, false);
}

UNIT_TEST(spill_runs_merge_sorted_stable)
{
	/* ~30 runs of a 64 KiB budget, records up to 1 KiB crossing read buffers */
	round_trip(20000, 300, 1024, 65536, true);
	/* records of the largest size */
	round_trip(300, 5, SPILL_MAX_REC, 65536, true);
}

UNIT_TEST(spill_empty_and_bad_calls)
{
	struct spill s;
	uint32_t len;
	int err;
	uint8_t big[SPILL_MAX_REC + 1] = { 0 };

	spill_init(&s, 0, cmp_rec);
	CHECK_EQ_INT(spill_add(&s, big, 0), -EINVAL);
	CHECK_EQ_INT(spill_add(&s, big, SPILL_MAX_REC + 1), -EINVAL);
	CHECK(spill_next(&s, &len, &err) == NULL && err == -EINVAL);	/* not finished */
	CHECK_EQ_INT(spill_finish(&s), 0);
	CHECK(spill_next(&s, &len, &err) == NULL && err == 0);
	CHECK_EQ_INT(spill_add(&s, big, 8), -EINVAL);	/* reading: no more adds */
	spill_free(&s);
}

UNIT_TEST(spill_tmpdir_errors)
{
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	struct rec r = { 0 };
	struct spill s;
	int ret = 0;

	/* A TMPDIR that does not exist: the first run fails with its errno. */
	setenv("TMPDIR", "/nonexistent-extcrypt-dir", 1);
	spill_init(&s, 0, cmp_rec);
	for (int i = 0; i < 100000 && !ret; i++)
		ret = spill_add(&s, &r, sizeof(r));
	CHECK_EQ_INT(ret, -ENOENT);
	spill_free(&s);
	if (saved)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
}

#ifdef EXTCRYPT_FAULT_INJECTION
UNIT_TEST(spill_enomem)
{
	struct rec r = { 0 };
	int ret = 0;

	/* Every allocation the store makes, failed in turn: -ENOMEM, then freed cleanly. */
	for (unsigned long long nth = 1; nth < 12; nth++) {
		struct spill s;
		uint32_t len;
		int err = 0;

		spill_init(&s, 0, cmp_rec);
		fault_alloc_arm(nth);
		ret = 0;
		for (int i = 0; i < 5000 && !ret; i++)
			ret = spill_add(&s, &r, sizeof(r));
		if (!ret)
			ret = spill_finish(&s);
		while (!ret && spill_next(&s, &len, &err))
			;
		if (!ret)
			ret = err;
		CHECK(fault_alloc_fired() ? ret == -ENOMEM : ret == 0);
		fault_alloc_arm(0);
		spill_free(&s);
	}
}
#endif
