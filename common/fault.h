/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Allocation-failure injection for the engine's error paths.  The engine
 * (kernel-shared/) and the containers allocate through fault_malloc(),
 * fault_calloc() and fault_realloc().  In normal builds they are malloc(),
 * calloc() and realloc().  In builds configured with
 * --enable-fault-injection every call is counted, and one of them fails:
 * the Nth of the process with EXTCRYPT_FAIL_ALLOC=N in the environment, or
 * the Nth after fault_alloc_arm(N) (unit tests).  Only that one call
 * fails, so the error path that follows runs with memory as usual.
 * EXTCRYPT_COUNT_ALLOC=1 counts the allocations without failing one and
 * prints "EXTCRYPT_COUNT_ALLOC: N" on stderr at exit.
 */
#ifndef EXTCRYPT_FAULT_H
#define EXTCRYPT_FAULT_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef EXTCRYPT_FAULT_INJECTION
/* Count one allocation; true if this is the one to fail. */
bool fault_alloc_fails(void);
/* Fail the nth allocation from now (1: the next one); 0 disarms. */
void fault_alloc_arm(unsigned long long nth);
/* Whether the armed failure happened since fault_alloc_arm(). */
bool fault_alloc_fired(void);
#else
static inline bool fault_alloc_fails(void)
{
	return false;
}
#endif

static inline void *fault_malloc(size_t size)
{
	return fault_alloc_fails() ? NULL : malloc(size);
}

static inline void *fault_calloc(size_t nmemb, size_t size)
{
	return fault_alloc_fails() ? NULL : calloc(nmemb, size);
}

static inline void *fault_realloc(void *ptr, size_t size)
{
	return fault_alloc_fails() ? NULL : realloc(ptr, size);
}

static inline char *fault_strdup(const char *s)
{
	return fault_alloc_fails() ? NULL : strdup(s);
}

/* posix_memalign(): 0, or ENOMEM (a positive errno, as posix_memalign()). */
static inline int fault_posix_memalign(void **ptr, size_t align, size_t size)
{
	return fault_alloc_fails() ? ENOMEM : posix_memalign(ptr, align, size);
}

#endif
