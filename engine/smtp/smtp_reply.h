/*
 * smtp_reply - an incremental parser for SMTP replies (RFC 5321 4.2),
 * with RFC 3463 enhanced status codes split out.
 *
 * Fed whatever bytes arrived, in pieces of any size, it hands out one
 * complete reply at a time, single or multiline:
 *
 *   250-mx.example.com greets you
 *   250-PIPELINING
 *   250 8BITMIME
 *
 * It never does I/O and never allocates after init (its line buffer is
 * bounded by max_line), so the session above it can be tested and fuzzed
 * with byte strings.
 *
 * Protocol errors (the session must then end the connection): a line
 * longer than max_line, more than max_lines lines in one reply, a code
 * that is not three digits with the first 2..5 and the second 0..5, a
 * continuation line whose code differs from the first line's, a separator
 * other than space or '-', a NUL byte.  A bare LF ends a line as CRLF
 * does, as most clients accept.
 */
#ifndef VOLLEY_SMTP_REPLY_H
#define VOLLEY_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SMTP_REPLY_LINE_MAX 2048
#define SMTP_REPLY_LINES_MAX 128

struct smtp_reply {
	int code;		/* 200..599 */
	char enhanced[16];	/* "5.1.1", or "" when the reply has none */
	/*
	 * The text of every line after the code and the separator (and the
	 * enhanced code, which is stripped from each line that repeats it),
	 * lines joined by '\n'.
	 */
	struct buf text;
	size_t lines;
};

struct smtp_reply_parser {
	size_t max_line;
	size_t max_lines;
	struct buf line;	/* the line being assembled */
	struct smtp_reply reply;
	bool done;		/* reply is complete and was handed out */
	bool failed;
	char error[128];
};

/* smtp_reply_parser_init - max_line/max_lines 0 take the defaults */
void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line,
			    size_t max_lines);
void smtp_reply_parser_free(struct smtp_reply_parser *p);

/*
 * smtp_reply_parse - consume bytes from *data (advancing *data and *len)
 * until one reply is complete.  Returns 1 with *reply_r pointing at it
 * (valid until the next call), 0 when all bytes were consumed and more
 * are needed, or -1 on a protocol error (*error_r says which; every later
 * call fails the same way).  Bytes after a complete reply stay in *data
 * for the next call.
 */
int smtp_reply_parse(struct smtp_reply_parser *p, const char **data,
		     size_t *len, const struct smtp_reply **reply_r,
		     const char **error_r);

/*
 * smtp_reply_enhanced - if text starts with an RFC 3463 code whose class
 * matches the reply's first digit ("5.1.1 "), copy it to out (16 bytes)
 * and return its length including the following space; else return 0.
 */
size_t smtp_reply_enhanced(int code, const char *text, size_t len,
			   char out[16]);

#endif
