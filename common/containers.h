/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The two containers of the project: a growable array and a hash map keyed
 * by u64.  Both report allocation failure as -ENOMEM (or NULL where a
 * pointer is returned) and leave the container as it was; neither prints
 * or exits.  Not thread-safe: callers lock if they share one.
 */
#ifndef EXTCRYPT_CONTAINERS_H
#define EXTCRYPT_CONTAINERS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>

/* ---- growable array ------------------------------------------------------- */

struct vec {
	void *data;
	size_t nr, cap, esize;
};

void vec_init(struct vec *v, size_t esize);
/* Room for n more elements: 0 or -ENOMEM.  Capacity doubles (at least 16). */
int vec_reserve(struct vec *v, size_t n);
/* Append a zeroed element and return it; NULL when out of memory. */
void *vec_push_slow(struct vec *v);
static inline void *vec_push(struct vec *v)
{
	void *p;

	if (v->nr >= v->cap)	/* growing: out of line */
		return vec_push_slow(v);
	p = (char *)v->data + v->nr++ * v->esize;
	memset(p, 0, v->esize);
	return p;
}
/* Free the elements; v is empty (and reusable) afterwards. */
void vec_free(struct vec *v);
#define VEC_AT(v, type, i) (((type *)(v)->data)[i])

/*
 * Room for need elements in a bare array of esize-byte elements with *cap
 * slots: returns v, or v reallocated to the next doubling (at least 16
 * slots) with *cap updated; NULL when out of memory (v is still valid
 * then).  For arrays kept as a pointer and two counts rather than a vec;
 * vec_reserve() is built on it.
 */
void *array_reserve(void *v, size_t *cap, size_t need, size_t esize);
/* Room for one more element after nr: array_reserve(v, cap, nr + 1, esize). */
void *array_grow(void *v, size_t *cap, size_t nr, size_t esize);

/* ---- u64-keyed hash map ------------------------------------------------------ */

/*
 * Open addressing with linear probing and backward-shift removal (no
 * tombstones); at most half full.  Values of vsize bytes live in the table:
 * a value pointer stays valid until the next insert or remove.  A key may
 * be inserted several times (a multimap): u64map_next() walks all values of
 * a key, and callers that want unique keys look before they insert.
 */
struct u64map {
	/*
	 * slots entries of slot_size bytes (a multiple of 8), each the key,
	 * the value (at offset 8) and a used byte: one probe touches one
	 * place in memory.
	 */
	uint8_t *table;
	size_t slots;		/* 0 or a power of two */
	size_t nr, vsize, slot_size;
};

/* vsize: bytes of each value (stored 8-byte aligned). */
void u64map_init(struct u64map *m, size_t vsize);
void u64map_free(struct u64map *m);
/* Room for n entries in all without growing: 0 or -ENOMEM. */
int u64map_reserve(struct u64map *m, size_t n);
/* Add an entry for key; returns its zeroed value, or NULL when out of memory. */
void *u64map_insert(struct u64map *m, uint64_t key);
/*
 * Values of key, one per call: start with *cursor = 0; returns NULL when
 * there are no more.  Do not insert or remove between calls.
 */
void *u64map_next(const struct u64map *m, uint64_t key, size_t *cursor);
/* The first value of key, or NULL. */
static inline void *u64map_find(const struct u64map *m, uint64_t key)
{
	size_t cursor = 0;

	return u64map_next(m, key, &cursor);
}
/*
 * Every value, by slot: the value of slot i (0 <= i < m->slots) or NULL when
 * the slot is free.  For walking the whole map, e.g. to free what values hold.
 */
void *u64map_slot_value(const struct u64map *m, size_t i);
/* Remove the entry whose value is val (a pointer from this map). */
void u64map_remove(struct u64map *m, void *val);

#endif
