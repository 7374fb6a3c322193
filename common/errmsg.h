/*
 * errmsg - the one error convention of volley's libraries.
 *
 * A function that can fail returns -1 (or NULL, or the failure value its
 * comment names) and points *error_r at one line that says what failed
 * and where: "body.html:3:1: unclosed section 'items'",
 * "smtp.example.com port 587: connection refused".  Library code never
 * prints; the CLI decides what reaches the user.
 *
 * The message belongs to the library.  It stays valid until the calling
 * thread's next failing call into any of volley's libraries (most keep
 * it in the thread's error buffer below; the store in buffers of its
 * own, which its next call may reuse); a caller that keeps it longer,
 * or hands it to another thread, copies it.
 *
 * errmsg_set formats into the calling thread's error buffer.  Its
 * arguments may point into that same buffer, so a caller can add
 * context to a message it got:
 *
 *	if (store_record(st, ..., &error) < 0)
 *		return errmsg_set(error_r, "recording results: %s", error);
 *
 * Messages longer than ERRMSG_MAX - 1 bytes are cut (with "...").
 */
#ifndef VOLLEY_ERRMSG_H
#define VOLLEY_ERRMSG_H

#include <stdarg.h>

#define ERRMSG_MAX 2048

/*
 * errmsg_set - *error_r = the message made from fmt (error_r may be
 * NULL: nothing is kept); returns -1, for "return errmsg_set(...)"
 */
int errmsg_set(const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int errmsg_vset(const char **error_r, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#endif
