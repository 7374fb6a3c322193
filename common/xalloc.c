/*
 * xalloc - allocation that never returns NULL (see xalloc.h).
 */
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * xalloc_die - say so and leave at once: no stdio (it may want memory
 * itself), no atexit handlers, no core.  The store is left as a crash
 * leaves it: what was committed stays, and the next run takes back what
 * this one held (in doubt where its message may have left).
 */
static void xalloc_die(size_t size)
{
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "volley: out of memory (wanted %zu "
			 "bytes); stopping\n", size);

	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nothing more to try */
	}
	_exit(EXIT_FAILURE);
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		xalloc_die(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		xalloc_die(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		xalloc_die(size);
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
