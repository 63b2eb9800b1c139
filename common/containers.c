// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "common/containers.h"

void vec_init(struct vec *v, size_t esize)
{
	memset(v, 0, sizeof(*v));
	v->esize = esize;
}

int vec_reserve(struct vec *v, size_t n)
{
	void *nd;

	if (n > SIZE_MAX - v->nr)
		return -ENOMEM;
	nd = array_reserve(v->data, &v->cap, v->nr + n, v->esize);
	if (!nd)
		return -ENOMEM;
	v->data = nd;
	return 0;
}

void *vec_push_slow(struct vec *v)
{
	void *p;

	if (vec_reserve(v, 1))
		return NULL;
	p = (char *)v->data + v->nr * v->esize;
	memset(p, 0, v->esize);
	v->nr++;
	return p;
}

void vec_free(struct vec *v)
{
	free(v->data);
	v->data = NULL;
	v->nr = v->cap = 0;
}

void *array_reserve(void *v, size_t *cap, size_t need, size_t esize)
{
	size_t ncap = *cap ? *cap : 16;
	void *n;

	if (need <= *cap)
		return v;
	/* Sizes that would overflow are out of memory too, and never reach malloc. */
	if (need > PTRDIFF_MAX / esize / 2)
		return NULL;
	while (ncap < need)
		ncap *= 2;
	n = fault_realloc(v, ncap * esize);
	if (n)
		*cap = ncap;
	return n;
}

void *array_grow(void *v, size_t *cap, size_t nr, size_t esize)
{
	return array_reserve(v, cap, nr + 1, esize);
}

void u64map_init(struct u64map *m, size_t vsize)
{
	memset(m, 0, sizeof(*m));
	m->vsize = vsize;
	m->slot_size = (sizeof(uint64_t) + vsize + 1 + 7) / 8 * 8;
}

void u64map_free(struct u64map *m)
{
	free(m->table);
	u64map_init(m, m->vsize);
}

static uint8_t *slot_at(const struct u64map *m, size_t i)
{
	return m->table + i * m->slot_size;
}

static uint64_t *key_of(uint8_t *slot)
{
	return (uint64_t *)slot;
}

static uint8_t *used_of(const struct u64map *m, uint8_t *slot)
{
	return slot + sizeof(uint64_t) + m->vsize;
}

#define VAL_OFF sizeof(uint64_t)

/* Fibonacci hashing: the top bits of key * 2^64/phi pick the home slot. */
static size_t home_slot(const struct u64map *m, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 32) & (m->slots - 1);
}

static uint8_t *free_slot(const struct u64map *m, uint64_t key)
{
	size_t i = home_slot(m, key);

	while (*used_of(m, slot_at(m, i)))
		i = (i + 1) & (m->slots - 1);
	return slot_at(m, i);
}

static int rehash(struct u64map *m, size_t slots)
{
	struct u64map old = *m;
	/* Cache-line aligned: a slot of up to 64 bytes never spans two lines. */
	size_t bytes = (slots * m->slot_size + 63) / 64 * 64;
	uint8_t *table = fault_alloc_fails() ? NULL : aligned_alloc(64, bytes);

	if (!table)
		return -ENOMEM;
	memset(table, 0, slots * m->slot_size);
	m->table = table;
	m->slots = slots;
	for (size_t i = 0; i < old.slots; i++) {
		uint8_t *from = slot_at(&old, i);

		if (*used_of(&old, from))
			memcpy(free_slot(m, *key_of(from)), from, m->slot_size);
	}
	free(old.table);
	return 0;
}

int u64map_reserve(struct u64map *m, size_t n)
{
	size_t slots = m->slots ? m->slots : 16;

	if (n > PTRDIFF_MAX / m->slot_size / 4)
		return -ENOMEM;
	while (n * 2 > slots)
		slots *= 2;
	return slots == m->slots ? 0 : rehash(m, slots);
}

void *u64map_insert(struct u64map *m, uint64_t key)
{
	uint8_t *slot;

	if (u64map_reserve(m, m->nr + 1))
		return NULL;
	slot = free_slot(m, key);
	memset(slot, 0, m->slot_size);
	*key_of(slot) = key;
	*used_of(m, slot) = 1;
	m->nr++;
	return slot + VAL_OFF;
}

void *u64map_next(const struct u64map *m, uint64_t key, size_t *cursor)
{
	/* Locals: a store through cursor could alias *m and force reloads. */
	const size_t mask = m->slots - 1, size = m->slot_size, used = sizeof(uint64_t) + m->vsize;
	uint8_t *const table = m->table;
	size_t steps = *cursor, i;

	if (!table)
		return NULL;
	/* The cursor counts probe steps from the home slot. */
	for (i = (home_slot(m, key) + steps) & mask; table[i * size + used]; i = (i + 1) & mask) {
		uint8_t *slot = table + i * size;

		steps++;
		if (*key_of(slot) == key) {
			*cursor = steps;
			return slot + VAL_OFF;
		}
	}
	*cursor = steps;
	return NULL;
}

void u64map_remove(struct u64map *m, void *val)
{
	size_t mask = m->slots - 1;
	size_t hole = ((uint8_t *)val - VAL_OFF - m->table) / m->slot_size, j = hole;

	*used_of(m, slot_at(m, hole)) = 0;
	m->nr--;
	for (;;) {
		uint8_t *sj;
		size_t home;

		j = (j + 1) & mask;
		sj = slot_at(m, j);
		if (!*used_of(m, sj))
			return;
		home = home_slot(m, *key_of(sj));
		/* Movable unless its home lies cyclically in (hole, j]. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			memcpy(slot_at(m, hole), sj, m->slot_size);
			*used_of(m, sj) = 0;
			hole = j;
		}
	}
}

void *u64map_slot_value(const struct u64map *m, size_t i)
{
	uint8_t *slot;

	if (i >= m->slots)
		return NULL;
	slot = slot_at(m, i);
	return *used_of(m, slot) ? slot + VAL_OFF : NULL;
}
