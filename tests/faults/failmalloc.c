/*
 * failmalloc - an LD_PRELOAD library that makes one allocation fail, or
 * every one from some point on, for the fault suite (tests/faults/run.py,
 * scenario alloc-fail).
 *
 *   VOLLEY_FAILMALLOC_NTH=N      the Nth call to malloc, calloc or realloc
 *                                (counted over all threads from the start)
 *                                returns NULL with errno ENOMEM
 *   VOLLEY_FAILMALLOC_PERSIST=1  ... and every call after it too
 *   VOLLEY_FAILMALLOC_COUNT=FILE at exit, write how many calls there were
 *
 * The real allocator is glibc's, called by its exported __libc_ names
 * (dlsym would itself allocate).  Calls inside glibc (strdup, fopen) do
 * not go through these and are not counted.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t nmemb, size_t size);
void *__libc_realloc(void *ptr, size_t size);

static atomic_ulong failmalloc_calls;
static unsigned long failmalloc_nth;
static bool failmalloc_persist;
static const char *failmalloc_count_file;

__attribute__((constructor)) static void failmalloc_init(void)
{
	const char *nth = getenv("VOLLEY_FAILMALLOC_NTH");
	const char *persist = getenv("VOLLEY_FAILMALLOC_PERSIST");

	failmalloc_nth = nth != NULL ? strtoul(nth, NULL, 10) : 0;
	failmalloc_persist = persist != NULL && *persist == '1';
	failmalloc_count_file = getenv("VOLLEY_FAILMALLOC_COUNT");
}

__attribute__((destructor)) static void failmalloc_fini(void)
{
	FILE *f;

	if (failmalloc_count_file == NULL)
		return;
	f = fopen(failmalloc_count_file, "w");
	if (f == NULL)
		return;
	fprintf(f, "%lu\n", atomic_load(&failmalloc_calls));
	fclose(f);
}

/* failmalloc_fails - does this call fail? */
static bool failmalloc_fails(void)
{
	unsigned long n = atomic_fetch_add(&failmalloc_calls, 1) + 1;

	if (failmalloc_nth == 0)
		return false;
	return n == failmalloc_nth || (failmalloc_persist && n > failmalloc_nth);
}

void *malloc(size_t size)
{
	if (failmalloc_fails()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(size);
}

void *calloc(size_t nmemb, size_t size)
{
	if (failmalloc_fails()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(nmemb, size);
}

void *realloc(void *ptr, size_t size)
{
	if (failmalloc_fails()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(ptr, size);
}
