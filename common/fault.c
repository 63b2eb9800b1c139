// SPDX-License-Identifier: GPL-2.0
/* Allocation-failure injection (common/fault.h); empty in normal builds. */
#include "common/fault.h"

#ifdef EXTCRYPT_FAULT_INJECTION
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/*
 * Allocations counted, and the one that fails (0: none); atomics, as workers
 * allocate too.  EXTCRYPT_COUNT_ALLOC=1 counts without failing and prints
 * the count at exit, for the sweeps that fail each allocation in turn.
 */
static unsigned long long alloc_count;
static unsigned long long alloc_fail_at;
static bool alloc_fired;
static bool alloc_counting;

static void print_alloc_count(void)
{
	fprintf(stderr, "EXTCRYPT_COUNT_ALLOC: %llu\n",
		__atomic_load_n(&alloc_count, __ATOMIC_SEQ_CST));
}

static void read_fail_alloc(void)
{
	const char *s = getenv("EXTCRYPT_FAIL_ALLOC");
	const char *count = getenv("EXTCRYPT_COUNT_ALLOC");

	if (s)
		__atomic_store_n(&alloc_fail_at, strtoull(s, NULL, 0), __ATOMIC_SEQ_CST);
	if (count && *count && strcmp(count, "0") && !atexit(print_alloc_count))
		__atomic_store_n(&alloc_counting, true, __ATOMIC_SEQ_CST);
}

static pthread_once_t env_once = PTHREAD_ONCE_INIT;

bool fault_alloc_fails(void)
{
	unsigned long long n, at;

	pthread_once(&env_once, read_fail_alloc);
	at = __atomic_load_n(&alloc_fail_at, __ATOMIC_SEQ_CST);
	if (!at && !__atomic_load_n(&alloc_counting, __ATOMIC_SEQ_CST))
		return false;
	n = __atomic_add_fetch(&alloc_count, 1, __ATOMIC_SEQ_CST);
	if (!at || n != at)
		return false;
	__atomic_store_n(&alloc_fired, true, __ATOMIC_SEQ_CST);
	return true;
}

void fault_alloc_arm(unsigned long long nth)
{
	pthread_once(&env_once, read_fail_alloc);
	__atomic_store_n(&alloc_fail_at, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&alloc_count, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&alloc_fired, false, __ATOMIC_SEQ_CST);
	__atomic_store_n(&alloc_fail_at, nth, __ATOMIC_SEQ_CST);
}

bool fault_alloc_fired(void)
{
	return __atomic_load_n(&alloc_fired, __ATOMIC_SEQ_CST);
}
#endif
