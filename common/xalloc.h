/*
 * xalloc - allocation that never returns NULL.
 *
 * volley is a program, not a library: when memory runs out there is no
 * sensible recovery, so these abort with a message instead of making every
 * caller carry an error path that is never tested.
 */
#ifndef VOLLEY_XALLOC_H
#define VOLLEY_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
