/*
 * csv - a strict, streaming RFC 4180 reader (see csv.h).
 *
 * The reader keeps one input buffer.  A record is always parsed from a
 * contiguous stretch of it: when the data runs out in the middle of a
 * record, the record's bytes move to the front of the buffer (which grows
 * up to max_record_bytes if it must), more input is read, and the record
 * is parsed again from its start.  Re-parsing a record costs far less than
 * carrying a half-parsed state across reads, and it means fields, raw text
 * and multi-byte characters never straddle two reads.
 *
 * Fields point straight into the input buffer unless they are quoted and
 * contain doubled quotes; only those are unescaped, into a scratch buffer.
 */
#include "common/csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xalloc.h"

#define CSV_DEFAULT_MAX_RECORD (1024 * 1024)
#define CSV_DEFAULT_MAX_FIELDS 4096
#define CSV_DEFAULT_READ_SIZE (64 * 1024)

struct csv_reader {
	csv_read_fn *read;
	void *ctx;
	int fd;
	struct csv_params p;

	char *in;		/* input buffer */
	size_t cap;
	size_t pos;		/* start of the next record */
	size_t len;		/* bytes of input in the buffer */
	bool eof;
	bool started;		/* BOM check done */
	unsigned long line;	/* physical line at pos */

	long nfields_expected;	/* -1 until the header is read */
	struct csv_field *fields;
	size_t fields_cap;
	struct buf scratch;	/* unescaped quoted fields */
	size_t *scratch_fields;	/* which fields point into scratch */

	bool fatal;
	struct csv_error fatal_err;
};

enum csv_parse {
	CSV_PARSE_OK,
	CSV_PARSE_BAD,
	CSV_PARSE_MORE,		/* the record runs past the data read */
};

/* The state of parsing one record from the input buffer. */
struct csv_cursor {
	const char *p;		/* next byte */
	const char *end;	/* end of data read */
	const char *line_start;	/* start of the current physical line */
	const char *rec_start;
	unsigned long line;
};

static ssize_t csv_read_fd(void *ctx, void *dst, size_t len)
{
	const int *fd = ctx;
	ssize_t n;

	do {
		n = read(*fd, dst, len);
	} while (n < 0 && errno == EINTR);
	return n;
}

struct csv_reader *csv_reader_new(csv_read_fn *fn, void *ctx,
				  const struct csv_params *params)
{
	struct csv_reader *r = xcalloc(1, sizeof(*r));

	if (params != NULL)
		r->p = *params;
	if (r->p.max_record_bytes == 0)
		r->p.max_record_bytes = CSV_DEFAULT_MAX_RECORD;
	if (r->p.max_fields == 0)
		r->p.max_fields = CSV_DEFAULT_MAX_FIELDS;
	if (r->p.read_size == 0)
		r->p.read_size = CSV_DEFAULT_READ_SIZE;
	r->read = fn;
	r->ctx = ctx;
	r->cap = r->p.read_size * 2;
	r->in = xmalloc(r->cap);
	r->line = 1;
	r->nfields_expected = -1;
	r->fields_cap = 16;
	r->fields = xmalloc(r->fields_cap * sizeof(*r->fields));
	r->scratch_fields = xmalloc(r->fields_cap * sizeof(size_t));
	return r;
}

struct csv_reader *csv_reader_new_fd(int fd, const struct csv_params *params)
{
	struct csv_reader *r = csv_reader_new(csv_read_fd, NULL, params);

	r->fd = fd;
	r->ctx = &r->fd;
	return r;
}

void csv_reader_free(struct csv_reader **rp)
{
	struct csv_reader *r = *rp;

	if (r == NULL)
		return;
	free(r->in);
	free(r->fields);
	free(r->scratch_fields);
	buf_free(&r->scratch);
	free(r);
	*rp = NULL;
}

__attribute__((format(printf, 4, 5)))
static void csv_set_error(struct csv_error *err, unsigned long line,
			  unsigned long column, const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	err->column = column;
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
}

/* csv_fail - enter the fatal state; every later call returns it */
static enum csv_status csv_fail(struct csv_reader *r, struct csv_error *err)
{
	r->fatal = true;
	r->fatal_err = *err;
	return CSV_FATAL;
}

/*
 * csv_fill - read more input after what is there, first moving the
 * unparsed bytes (from r->pos) to the front.  Returns 1 if bytes were
 * added, 0 at end of input, -1 on a read error (err filled).
 */
static int csv_fill(struct csv_reader *r, struct csv_error *err)
{
	ssize_t n;

	if (r->eof)
		return 0;
	if (r->pos > 0) {
		memmove(r->in, r->in + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	if (r->cap - r->len < r->p.read_size) {
		r->cap = r->len + r->p.read_size;
		r->in = xrealloc(r->in, r->cap);
	}
	n = r->read(r->ctx, r->in + r->len, r->p.read_size);
	if (n < 0) {
		csv_set_error(err, r->line, 0, "read error: %s",
			      strerror(errno));
		return -1;
	}
	if (n == 0) {
		r->eof = true;
		return 0;
	}
	r->len += (size_t)n;
	return 1;
}

/*
 * csv_utf8_bad - the first byte of p[0..len) that is not well-formed
 * UTF-8, or NULL.  ASCII runs are skipped eight bytes at a time.
 */
static const char *csv_utf8_bad(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;

	while (p < end) {
		unsigned c = *p;
		size_t n;
		unsigned cp;

		if (end - p >= 8) {
			uint64_t w;

			memcpy(&w, p, 8);
			if ((w & 0x8080808080808080ULL) == 0) {
				p += 8;
				continue;
			}
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 4, cp = c & 0x07;
		else
			return (const char *)p;
		if ((size_t)(end - p) < n)
			return (const char *)p;
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return (const char *)p;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return (const char *)p;
		p += n;
	}
	return NULL;
}

/* csv_column - the 1-based column of at on the cursor's line */
static unsigned long csv_column(const struct csv_cursor *c, const char *at)
{
	return (unsigned long)(at - c->line_start) + 1;
}

/*
 * csv_check_span - NUL bytes and UTF-8 in a field's bytes, which may span
 * lines (a quoted field): the error points at the offending byte's line.
 */
static bool csv_check_span(const struct csv_cursor *c, const char *s,
			   size_t len, struct csv_error *err)
{
	const char *bad = memchr(s, '\0', len);
	const char *utf8 = csv_utf8_bad(s, len);
	const char *at, *line_start = c->line_start;
	unsigned long line = c->line;

	if (bad == NULL && utf8 == NULL)
		return true;
	at = bad != NULL && (utf8 == NULL || bad < utf8) ? bad : utf8;
	/* The cursor is past the span: count lines back to the fault. */
	for (const char *q = at; q < c->p; q++) {
		if (*q == '\n')
			line--;
	}
	for (line_start = at;
	     line_start > c->rec_start && line_start[-1] != '\n';)
		line_start--;
	if (at == bad)
		csv_set_error(err, line, (unsigned long)(at - line_start) + 1,
			      "NUL byte");
	else
		csv_set_error(err, line, (unsigned long)(at - line_start) + 1,
			      "invalid UTF-8 byte 0x%02X",
			      (unsigned char)*at);
	return false;
}

/*
 * csv_add_field - append a field, growing the arrays if needed.  A field
 * in the input buffer is (p, len); an unescaped one is (NULL, offset in
 * scratch, scratch_len), since scratch may move as it grows.
 */
static bool csv_add_field(struct csv_reader *r, size_t *n, const char *p,
			  size_t len, size_t scratch_len)
{
	if (*n == r->p.max_fields)
		return false;
	if (*n == r->fields_cap) {
		r->fields_cap *= 2;
		r->fields = xrealloc(r->fields,
				     r->fields_cap * sizeof(*r->fields));
		r->scratch_fields = xrealloc(r->scratch_fields,
					     r->fields_cap * sizeof(size_t));
	}
	r->fields[*n].ptr = p;
	r->fields[*n].len = p != NULL ? len : scratch_len;
	r->scratch_fields[*n] = p != NULL ? (size_t)-1 : len;
	(*n)++;
	return true;
}

/*
 * csv_skip_record - after a bad record, find where it ends: the next LF
 * outside quotes, starting at c->p with the given quote state.  Returns
 * false if the data read so far ends first (and the input has more).
 */
static bool csv_skip_record(struct csv_cursor *c, bool in_quotes, bool eof)
{
	while (c->p < c->end) {
		char ch = *c->p++;

		if (ch == '"') {
			in_quotes = !in_quotes;
		} else if (ch == '\n') {
			c->line++;
			c->line_start = c->p;
			if (!in_quotes)
				return true;
		}
	}
	return eof;
}

/*
 * csv_parse_record - parse the record at r->pos.  On OK or BAD, c->p is
 * past the record's terminator and rec->raw_len is set.
 */
static enum csv_parse csv_parse_record(struct csv_reader *r,
				       struct csv_cursor *c,
				       struct csv_record *rec,
				       struct csv_error *err)
{
	const char *start = r->in + r->pos;
	size_t nfields = 0;
	bool in_quotes = false;

	c->p = start;
	c->end = r->in + r->len;
	c->line_start = start;
	c->rec_start = start;
	c->line = r->line;
	buf_reset(&r->scratch);
	rec->line = r->line;
	rec->raw = start;

	for (;;) {
		const char *fstart = c->p;

		if (c->p < c->end && *c->p == '"') {
			const char *q = c->p + 1, *span = q;
			size_t soff = r->scratch.len;
			unsigned long open_line = c->line;
			unsigned long open_col = csv_column(c, c->p);
			bool escaped = false;

			in_quotes = true;
			for (;;) {
				const char *dq = memchr(q, '"',
							(size_t)(c->end - q));

				if (dq == NULL) {
					if (!r->eof)
						return CSV_PARSE_MORE;
					/* count lines for the raw record */
					for (; q < c->end; q++) {
						if (*q == '\n') {
							c->line++;
							c->line_start = q + 1;
						}
					}
					c->p = c->end;
					csv_set_error(err, open_line, open_col,
						      "unterminated quoted "
						      "field: the quote opened "
						      "here is never closed");
					goto unterminated;
				}
				for (const char *k = q; k < dq; k++) {
					if (*k == '\n') {
						c->line++;
						c->line_start = k + 1;
					}
				}
				if (dq + 1 == c->end && !r->eof)
					return CSV_PARSE_MORE;
				if (dq + 1 < c->end && dq[1] == '"') {
					/* a doubled quote: unescape */
					if (!escaped) {
						buf_append(&r->scratch, span,
							   (size_t)(dq - span));
						escaped = true;
					} else {
						buf_append(&r->scratch, q,
							   (size_t)(dq - q));
					}
					buf_putc(&r->scratch, '"');
					q = dq + 2;
					continue;
				}
				if (escaped)
					buf_append(&r->scratch, q,
						   (size_t)(dq - q));
				c->p = dq + 1;
				in_quotes = false;
				if (!csv_check_span(c, span,
						    (size_t)(dq - span), err))
					goto bad;
				if (!csv_add_field(r, &nfields, escaped ? NULL :
						   span, escaped ? soff :
						   (size_t)(dq - span),
						   escaped ? r->scratch.len -
						   soff : 0))
					goto too_many;
				break;
			}
			if (c->p < c->end && *c->p != ',' && *c->p != '\n' &&
			    *c->p != '\r') {
				csv_set_error(err, c->line,
					      csv_column(c, c->p),
					      "unexpected character after "
					      "closing quote");
				goto bad;
			}
		} else {
			const char *q = c->p;

			while (q < c->end && *q != ',' && *q != '\n' &&
			       *q != '\r' && *q != '"')
				q++;
			if (q < c->end && *q == '"') {
				c->p = q + 1;
				csv_set_error(err, c->line, csv_column(c, q),
					      "quote character inside an "
					      "unquoted field");
				goto bad;
			}
			if (q == c->end && !r->eof)
				return CSV_PARSE_MORE;
			c->p = q;
			if (!csv_check_span(c, fstart, (size_t)(q - fstart),
					    err))
				goto bad;
			if (!csv_add_field(r, &nfields, fstart,
					   (size_t)(q - fstart), 0))
				goto too_many;
		}

		/* After a field: a separator, a line end, or the end. */
		if (c->p == c->end) {
			rec->raw_len = (size_t)(c->p - start);
			break;
		}
		if (*c->p == ',') {
			c->p++;
			continue;
		}
		if (*c->p == '\r') {
			if (c->p + 1 == c->end && !r->eof)
				return CSV_PARSE_MORE;
			if (c->p + 1 == c->end || c->p[1] != '\n') {
				csv_set_error(err, c->line,
					      csv_column(c, c->p),
					      "bare CR (not followed by LF)");
				c->p++;
				goto bad;
			}
			rec->raw_len = (size_t)(c->p - start);
			c->p += 2;
		} else {
			rec->raw_len = (size_t)(c->p - start);
			c->p++;
		}
		c->line++;
		c->line_start = c->p;
		break;
	}

	/* Fields into scratch may now get their final pointers. */
	for (size_t i = 0; i < nfields; i++) {
		if (r->scratch_fields[i] != (size_t)-1)
			r->fields[i].ptr = r->scratch.data +
					   r->scratch_fields[i];
	}
	rec->fields = r->fields;
	rec->nfields = nfields;
	return CSV_PARSE_OK;

too_many:
	csv_set_error(err, c->line, csv_column(c, c->p),
		      "more than %zu fields", r->p.max_fields);
	in_quotes = false;
	/* fall through */
bad:
	if (!csv_skip_record(c, in_quotes, r->eof))
		return CSV_PARSE_MORE;
	rec->raw_len = (size_t)(c->p - start);
	/* the raw text excludes the terminator */
	if (rec->raw_len > 0 && start[rec->raw_len - 1] == '\n') {
		rec->raw_len--;
		if (rec->raw_len > 0 && start[rec->raw_len - 1] == '\r')
			rec->raw_len--;
	}
	return CSV_PARSE_BAD;

unterminated:
	rec->raw_len = (size_t)(c->p - start);
	if (rec->raw_len > 0 && start[rec->raw_len - 1] == '\n')
		rec->raw_len--;
	if (rec->raw_len > 0 && start[rec->raw_len - 1] == '\r')
		rec->raw_len--;
	return CSV_PARSE_BAD;
}

/* csv_skip_empty_lines - step over lines with nothing on them */
static int csv_skip_empty_lines(struct csv_reader *r, struct csv_error *err)
{
	for (;;) {
		int n;

		if (r->pos < r->len) {
			char ch = r->in[r->pos];

			if (ch == '\n') {
				r->pos++;
				r->line++;
				continue;
			}
			if (ch != '\r')
				return 0;
			if (r->pos + 1 < r->len) {
				if (r->in[r->pos + 1] != '\n')
					return 0;
				r->pos += 2;
				r->line++;
				continue;
			}
			if (r->eof)
				return 0;
		}
		n = csv_fill(r, err);
		if (n < 0)
			return -1;
		if (n == 0 && r->pos >= r->len)
			return 0;
	}
}

enum csv_status csv_read(struct csv_reader *r, struct csv_record *rec,
			 struct csv_error *err)
{
	struct csv_cursor c;
	enum csv_parse res;

	memset(rec, 0, sizeof(*rec));
	if (r->fatal) {
		*err = r->fatal_err;
		return CSV_FATAL;
	}
	if (!r->started) {
		while (r->len < 3 && !r->eof) {
			if (csv_fill(r, err) < 0)
				return csv_fail(r, err);
		}
		if (r->len >= 3 && memcmp(r->in, "\xef\xbb\xbf", 3) == 0)
			r->pos = 3;
		r->started = true;
	}
	if (csv_skip_empty_lines(r, err) < 0)
		return csv_fail(r, err);
	if (r->pos >= r->len)
		return CSV_EOF;

	for (;;) {
		res = csv_parse_record(r, &c, rec, err);
		if (res != CSV_PARSE_MORE)
			break;
		if (r->len - r->pos >= r->p.max_record_bytes) {
			csv_set_error(err, r->line, 0, "a record longer than "
				      "%zu bytes starts here (an unclosed "
				      "quote?); giving up",
				      r->p.max_record_bytes);
			return csv_fail(r, err);
		}
		if (csv_fill(r, err) < 0)
			return csv_fail(r, err);
	}
	r->pos = (size_t)(c.p - r->in);
	r->line = c.line;
	if (res == CSV_PARSE_BAD)
		return CSV_BAD_RECORD;
	if (r->nfields_expected < 0) {
		r->nfields_expected = (long)rec->nfields;
	} else if ((long)rec->nfields != r->nfields_expected) {
		csv_set_error(err, rec->line, 0, "expected %ld fields, found "
			      "%zu", r->nfields_expected, rec->nfields);
		return CSV_BAD_RECORD;
	}
	return CSV_OK;
}

void csv_write_field(struct buf *out, const char *p, size_t len)
{
	bool quote = len > 0 && (p[0] == ' ' || p[len - 1] == ' ');

	for (size_t i = 0; i < len && !quote; i++) {
		if (p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n')
			quote = true;
	}
	if (!quote) {
		buf_append(out, p, len);
		return;
	}
	buf_putc(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '"')
			buf_putc(out, '"');
		buf_putc(out, p[i]);
	}
	buf_putc(out, '"');
}
