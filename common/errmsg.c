/*
 * errmsg - the one error convention (see errmsg.h).
 */
#include "errmsg.h"

#include <stdio.h>
#include <string.h>

/* One per thread: a worker's error never overwrites another's. */
static _Thread_local char errmsg_buf[ERRMSG_MAX];

int errmsg_vset(const char **error_r, const char *fmt, va_list ap)
{
	/* formatted aside first: an argument may point into errmsg_buf */
	char tmp[ERRMSG_MAX];
	int n;

	if (error_r == NULL)
		return -1;
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	if (n < 0)
		snprintf(tmp, sizeof(tmp), "(an error message could not be "
			 "formatted: %s)", fmt);
	else if ((size_t)n >= sizeof(tmp))
		memcpy(tmp + sizeof(tmp) - 4, "...", 4);
	memcpy(errmsg_buf, tmp, strlen(tmp) + 1);
	*error_r = errmsg_buf;
	return -1;
}

int errmsg_set(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_vset(error_r, fmt, ap);
	va_end(ap);
	return -1;
}
