// SPDX-License-Identifier: GPL-2.0
/* Unit tests of common/containers.c: the growable array and the u64 map. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/containers.h"
#include "tests/unit/unit.h"

UNIT_TEST(vec_push_reserve_free)
{
	struct vec v;

	vec_init(&v, sizeof(uint64_t));
	for (uint64_t i = 0; i < 1000; i++) {
		uint64_t *p = vec_push(&v);

		CHECK(p != NULL);
		if (p) {
			CHECK(*p == 0);	/* zeroed */
			*p = i * 3;
		}
	}
	CHECK(v.nr == 1000);
	CHECK(v.cap >= 1000);
	for (size_t i = 0; i < v.nr; i++)
		CHECK(VEC_AT(&v, uint64_t, i) == i * 3);
	CHECK(vec_reserve(&v, 5000) == 0);
	CHECK(v.cap >= 6000);
	CHECK(v.nr == 1000);
	/* A size that would overflow: -ENOMEM, the vec untouched. */
	CHECK(vec_reserve(&v, SIZE_MAX / 2) == -ENOMEM);
	CHECK(v.nr == 1000 && VEC_AT(&v, uint64_t, 999) == 999 * 3);
	vec_free(&v);
	CHECK(v.nr == 0 && v.cap == 0 && v.data == NULL);
	CHECK(vec_push(&v) != NULL);	/* reusable after free */
	vec_free(&v);
}

UNIT_TEST(array_grow_doubles)
{
	int *a = NULL;
	size_t cap = 0, nr = 0;

	for (int i = 0; i < 100; i++) {
		int *n = array_grow(a, &cap, nr, sizeof(*a));

		CHECK(n != NULL);
		if (!n)
			break;
		a = n;
		a[nr++] = i;
	}
	CHECK(cap == 128);
	CHECK(a[99] == 99);
	free(a);
	/* array_reserve: to the next doubling at once; NULL on overflow, v intact. */
	cap = 0;
	a = array_reserve(NULL, &cap, 1000, sizeof(*a));
	CHECK(a != NULL && cap == 1024);
	CHECK(array_reserve(a, &cap, 10, sizeof(*a)) == a && cap == 1024);
	CHECK(array_reserve(a, &cap, SIZE_MAX / 2, sizeof(*a)) == NULL && cap == 1024);
	free(a);
}

struct val {
	uint64_t key, payload;
};

UNIT_TEST(u64map_insert_find_remove)
{
	struct u64map m;
	struct val *v;

	u64map_init(&m, sizeof(struct val));
	CHECK(u64map_find(&m, 42) == NULL);	/* empty map */
	/* Keys 4 KiB apart, as disk addresses are, plus key 0. */
	for (uint64_t i = 0; i < 5000; i++) {
		v = u64map_insert(&m, i << 12);
		CHECK(v != NULL);
		if (!v)
			break;
		CHECK(v->key == 0 && v->payload == 0);
		v->key = i << 12;
		v->payload = i + 1;
	}
	CHECK(m.nr == 5000);
	CHECK(m.slots >= 10000);
	for (uint64_t i = 0; i < 5000; i++) {
		v = u64map_find(&m, i << 12);
		CHECK(v && v->payload == i + 1);
	}
	CHECK(u64map_find(&m, 5000ULL << 12) == NULL);
	CHECK(u64map_find(&m, 1) == NULL);
	/* Remove every other key: the rest stay reachable (backward shift). */
	for (uint64_t i = 0; i < 5000; i += 2) {
		v = u64map_find(&m, i << 12);
		CHECK(v != NULL);
		if (v)
			u64map_remove(&m, v);
	}
	CHECK(m.nr == 2500);
	for (uint64_t i = 0; i < 5000; i++) {
		v = u64map_find(&m, i << 12);
		CHECK(i % 2 ? v && v->payload == i + 1 : v == NULL);
	}
	u64map_free(&m);
	CHECK(m.nr == 0 && m.slots == 0);
}

UNIT_TEST(u64map_duplicate_keys)
{
	struct u64map m;
	struct val *v;
	size_t cursor = 0, seen = 0;
	uint64_t sum = 0;

	u64map_init(&m, sizeof(struct val));
	/* Colliding neighbours: the same key three times among others. */
	for (uint64_t i = 0; i < 40; i++) {
		v = u64map_insert(&m, i % 4 == 0 ? 7 : 1000 + i);
		CHECK(v != NULL);
		if (v)
			v->payload = i;
	}
	while ((v = u64map_next(&m, 7, &cursor))) {
		seen++;
		sum += v->payload;
	}
	CHECK(seen == 10);
	CHECK(sum == 0 + 4 + 8 + 12 + 16 + 20 + 24 + 28 + 32 + 36);
	/* Remove one of them: the others are still found. */
	v = u64map_find(&m, 7);
	CHECK(v != NULL);
	if (v)
		u64map_remove(&m, v);
	cursor = seen = 0;
	while ((v = u64map_next(&m, 7, &cursor)))
		seen++;
	CHECK(seen == 9);
	for (uint64_t i = 1; i < 40; i++)
		if (i % 4)
			CHECK(u64map_find(&m, 1000 + i) != NULL);
	u64map_free(&m);
}

UNIT_TEST(u64map_reserve_enomem)
{
	struct u64map m;
	struct val *v;

	u64map_init(&m, sizeof(struct val));
	CHECK(u64map_reserve(&m, 100) == 0);
	CHECK(m.slots == 256);
	v = u64map_insert(&m, 5);
	CHECK(v != NULL);
	if (v)
		v->payload = 55;
	/* A table size that would overflow: -ENOMEM, the map as it was. */
	CHECK(u64map_reserve(&m, SIZE_MAX / 2) == -ENOMEM);
	CHECK(m.slots == 256 && m.nr == 1);
	v = u64map_find(&m, 5);
	CHECK(v && v->payload == 55);
	u64map_free(&m);
}
