/*
 * rowfmt - the fields of report rows (CSV and JSON Lines) written safely.
 *
 * Text in a row may come from a remote server or a bounce message and is
 * treated as hostile: each field is made valid UTF-8 (each maximal
 * ill-formed subpart becomes U+FFFD), then escaped for its format, so no
 * text can end a row, add a field or make the output unparsable.
 *   CSV   RFC 4180: a field holding a comma, a quote or any control
 *         character is quoted, quotes doubled; the caller ends rows CRLF.
 *   JSON  one object per line: controls, DEL and U+2028/U+2029 as \u
 *         escapes, so a line never holds a raw line break of any kind.
 * Times are RFC 3339 UTC with milliseconds (2026-11-29T07:40:01.123Z).
 */
#ifndef VOLLEY_ROWFMT_H
#define VOLLEY_ROWFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* escapes one well-formed character c (n bytes); false: append as is */
typedef bool rowfmt_escape_fn(struct buf *out, const unsigned char *c,
			      size_t n);

/* rowfmt_text - s as valid UTF-8, each character through escape (may be
 * NULL) */
void rowfmt_text(struct buf *out, const char *s, rowfmt_escape_fn *escape);
/* rowfmt_time - ms since the epoch as RFC 3339 UTC with milliseconds */
void rowfmt_time(struct buf *out, int64_t ms);

bool rowfmt_csv_escape(struct buf *out, const unsigned char *c, size_t n);
/* rowfmt_csv_field - ',' (unless first) and s; NULL is an empty field */
void rowfmt_csv_field(struct buf *out, const char *s, bool first);
/* rowfmt_csv_time - ',' and the time if present */
void rowfmt_csv_time(struct buf *out, int64_t ms, bool present);

bool rowfmt_json_escape(struct buf *out, const unsigned char *c, size_t n);
/* rowfmt_json_key - ,"key": (keys are ours, plain ASCII) */
void rowfmt_json_key(struct buf *out, const char *key);
/* rowfmt_json_member - ,"key":"s" made safe; NULL is null */
void rowfmt_json_member(struct buf *out, const char *key, const char *s);
/* rowfmt_json_time - ,"key":"time", or null when not present */
void rowfmt_json_time(struct buf *out, const char *key, int64_t ms,
		      bool present);

#endif
