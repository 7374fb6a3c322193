/*
 * jsonw - the little JSON writing volley's --json outputs need.
 */
#ifndef VOLLEY_JSONW_H
#define VOLLEY_JSONW_H

#include <stddef.h>

struct buf;

/* jsonw_string - append s as a JSON string, quoted and escaped */
void jsonw_string(struct buf *out, const char *s, size_t len);

#endif
