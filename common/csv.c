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
 * Each record is checked in one pass: a byte class table stops the scan
 * only at bytes that need a decision (separators, line ends, quotes, NUL,
 * non-ASCII), and a NUL kept after the buffered data stops it at the end
 * without a bounds check per byte.
 *
 * Fields point straight into the input buffer unless they are quoted and
 * contain doubled quotes; only those are unescaped, into a scratch buffer.
 */
#include "csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "utf8.h"
#include "xalloc.h"

#define CSV_DEFAULT_MAX_RECORD (1024 * 1024)
#define CSV_DEFAULT_MAX_FIELDS 4096
#define CSV_DEFAULT_READ_SIZE (64 * 1024)
/* Of a record over the limit, this much is kept (see csv.h). */
#define CSV_LONG_KEEP 1024

/* Where the scan of a field must stop: outside quotes, inside them. */
#define CSV_STOP_BARE	1
#define CSV_STOP_QUOTED	2
#define CSV_STOP_BOTH	(CSV_STOP_BARE | CSV_STOP_QUOTED)
#define CSV_HI4		CSV_STOP_BOTH, CSV_STOP_BOTH, CSV_STOP_BOTH, \
			CSV_STOP_BOTH
#define CSV_HI16	CSV_HI4, CSV_HI4, CSV_HI4, CSV_HI4

/* Inside quotes a comma and a CR are plain data. */
static const unsigned char csv_class[256] = {
	[0] = CSV_STOP_BOTH,
	['\n'] = CSV_STOP_BOTH,
	['\r'] = CSV_STOP_BARE,
	['"'] = CSV_STOP_BOTH,
	[','] = CSV_STOP_BARE,
	[0x80] = CSV_HI16, CSV_HI16, CSV_HI16, CSV_HI16,
	CSV_HI16, CSV_HI16, CSV_HI16, CSV_HI16,
};

struct csv_reader {
	csv_read_fn *read;
	void *ctx;
	int fd;
	struct csv_params p;

	char *in;		/* input buffer, cap + 1 bytes */
	size_t cap;
	size_t pos;		/* start of the next record */
	size_t len;		/* bytes of input; in[len] is always NUL */
	bool eof;
	bool started;		/* BOM check done */
	unsigned long line;	/* physical line at pos */

	bool have_header;
	size_t nfields_expected;
	struct csv_field *fields;
	size_t fields_cap;
	struct buf scratch;	/* unescaped quoted fields */
	struct buf long_raw;	/* the kept prefix of a record too long */

	bool fatal;
	struct csv_error fatal_err;
};

enum csv_parse {
	CSV_PARSE_OK,
	CSV_PARSE_BAD,
	CSV_PARSE_MORE,		/* the record runs past the data read */
	CSV_PARSE_UNTERMINATED,	/* a quote open at the end: fatal */
};

/* Where the scan to the end of a bad record starts. */
enum csv_skip_from {
	CSV_SKIP_FIELD_START,	/* a quote here opens a quoted field */
	CSV_SKIP_IN_FIELD,
	CSV_SKIP_IN_QUOTES,
};

/* csv_read_fd - the csv_read_fn of csv_reader_new_fd */
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
	r->in = xmalloc(r->cap + 1);
	r->in[0] = '\0';
	r->line = 1;
	r->fields_cap = 16;
	r->fields = xmalloc(r->fields_cap * sizeof(*r->fields));
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
	buf_free(&r->scratch);
	buf_free(&r->long_raw);
	free(r);
	*rp = NULL;
}

/* csv_set_error - fill err; a reason too long for it is cut short */
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
		r->in[r->len] = '\0';
	}
	if (r->cap - r->len < r->p.read_size) {
		/*
		 * Doubling: reads shorter than read_size (a pipe) must not
		 * cost one realloc each while a long record comes in.
		 */
		r->cap = r->cap * 2 > r->len + r->p.read_size ?
			 r->cap * 2 : r->len + r->p.read_size;
		r->in = xrealloc(r->in, r->cap + 1);
	}
	n = r->read(r->ctx, r->in + r->len, r->p.read_size);
	if (n < 0) {
		csv_set_error(err, r->line, 1, "read error: %s",
			      strerror(errno));
		return -1;
	}
	if (n == 0) {
		r->eof = true;
		return 0;
	}
	r->len += (size_t)n;
	r->in[r->len] = '\0';
	return 1;
}

/*
 * csv_scan - the first byte from p of a class in stop.  The NUL after the
 * buffered data stops it, and a byte is only looked at once the one
 * before it did not stop the scan, so it never reads past that NUL.
 */
static inline const char *csv_scan(const char *p, unsigned stop)
{
	const unsigned char *u = (const unsigned char *)p;

	for (;; u += 4) {
		if (csv_class[u[0]] & stop)
			return (const char *)u;
		if (csv_class[u[1]] & stop)
			return (const char *)u + 1;
		if (csv_class[u[2]] & stop)
			return (const char *)u + 2;
		if (csv_class[u[3]] & stop)
			return (const char *)u + 3;
	}
}

/* csv_col - the 1-based byte column of at on the line starting there */
static inline unsigned long csv_col(const char *at, const char *line_start)
{
	return (unsigned long)(at - line_start) + 1;
}

/*
 * csv_scratch_start - where the next unescaped field begins in scratch.
 * The first one of a record reserves room for all the bytes the record
 * can span, so the scratch never moves under the fields already pointing
 * into it.
 */
static char *csv_scratch_start(struct csv_reader *r)
{
	if (r->scratch.len == 0)
		buf_reserve(&r->scratch, r->len - r->pos);
	return r->scratch.data + r->scratch.len;
}

/* csv_add_field - append a field, growing the array if needed */
static inline void csv_add_field(struct csv_reader *r, size_t n,
				 const char *p, size_t len)
{
	if (n == r->fields_cap) {
		r->fields_cap *= 2;
		r->fields = xrealloc(r->fields,
				     r->fields_cap * sizeof(*r->fields));
	}
	r->fields[n].ptr = p;
	r->fields[n].len = len;
}

/*
 * The scan to the end of a bad record: the next LF outside quotes.  Only
 * a quote that starts a field opens a quoted field: a stray quote in the
 * middle of one ('5" disk', the very fault often reported) must not
 * swallow the good records after it.  The state carries over from one
 * stretch of input to the next, so that a record too long to hold is
 * scanned through as it is read.
 */
struct csv_skip {
	bool in_quotes;
	bool field_start;	/* the next byte starts a field */
	/* in quotes, the last byte was a quote: it closed the field unless
	 * the next byte is a quote too */
	bool quote_seen;
	bool cr;		/* the last byte was a CR */
	unsigned long line;	/* the line of the next byte */
	unsigned long col;	/* bytes before it on that line */
	unsigned long oline;	/* where the quoted field still open */
	unsigned long ocol;	/* ... opened */
};

/*
 * csv_skip_scan - scan from p: returns the byte after the LF that ends the
 * record, or NULL at end (s says where the scan stands).  s->cr then
 * tells whether that LF came after a CR.
 */
static const char *csv_skip_scan(struct csv_skip *s, const char *p,
				 const char *end)
{
	while (p < end) {
		char ch = *p++;

		s->col++;
		if (s->quote_seen) {
			s->quote_seen = false;
			if (ch == '"') {
				s->cr = false;
				continue;
			}
			s->in_quotes = false;
		}
		if (s->in_quotes) {
			if (ch == '"')
				s->quote_seen = true;
		} else if (ch == '"' && s->field_start) {
			s->in_quotes = true;
			s->oline = s->line;
			s->ocol = s->col;
		}
		if (ch == '\n') {
			s->line++;
			s->col = 0;
			if (!s->in_quotes)
				return p;
		}
		s->field_start = ch == ',';
		s->cr = ch == '\r';
	}
	return NULL;
}

/* csv_skip_open - at the end of the input, is a quoted field still open? */
static inline bool csv_skip_open(const struct csv_skip *s)
{
	/* a quote as the last byte closed it */
	return s->in_quotes && !s->quote_seen;
}

/*
 * csv_unterminated - the error for a quote still open at the end of the
 * input, last being the input's last line
 */
static void csv_unterminated(struct csv_error *err, unsigned long oline,
			     unsigned long ocol, unsigned long last)
{
	if (last <= oline)
		csv_set_error(err, oline, ocol, "unterminated quoted field "
			      "(opened at line %lu, column %lu) on the last "
			      "line of the input", oline, ocol);
	else
		csv_set_error(err, oline, ocol, "unterminated quoted field "
			      "(opened at line %lu, column %lu): it runs %lu "
			      "lines to the end of the input, so the records "
			      "in them cannot be told apart", oline, ocol,
			      last - oline + 1);
}

/*
 * csv_parse_record - parse the record at r->pos.  On OK or BAD, *next and
 * *next_line are where the record after it starts, and rec->raw_len is
 * set.  The field count is checked here, where the position of the fault
 * is known: the separator of the first field too many, or the line end
 * that came while fields were missing.  A quote still open at the end
 * of the input is CSV_PARSE_UNTERMINATED, err filled.
 */
static enum csv_parse csv_parse_record(struct csv_reader *r,
				       struct csv_record *rec,
				       struct csv_error *err,
				       const char **next,
				       unsigned long *next_line)
{
	const char *start = r->in + r->pos;
	const char *end = r->in + r->len;
	const char *p = start, *line_start = start;
	unsigned long line = r->line;
	unsigned long count_line = 0, count_col = 0;
	size_t nfields = 0, want = r->nfields_expected;
	bool check_count = r->have_header;
	enum csv_skip_from skip_from = CSV_SKIP_IN_FIELD;
	unsigned long oline = 0, ocol = 0;
	struct csv_skip skip;
	const char *q;
	int n;

	buf_reset(&r->scratch);
	rec->line = line;
	rec->raw = start;

	for (;;) {
		const char *fstart = p;

		if (nfields == r->p.max_fields) {
			csv_set_error(err, line, csv_col(p, line_start),
				      "more than %zu fields", r->p.max_fields);
			skip_from = CSV_SKIP_FIELD_START;
			goto bad;
		}
		if (*p != '"') {
			for (;;) {
				p = csv_scan(p, CSV_STOP_BARE);
				if (p == end) {
					if (!r->eof)
						return CSV_PARSE_MORE;
					break;
				}
				if (*p == ',' || *p == '\n' || *p == '\r')
					break;
				if (*p == '"') {
					csv_set_error(err, line,
						      csv_col(p, line_start),
						      "quote character inside "
						      "an unquoted field");
					p++;
					goto bad;
				}
				if (*p == '\0')
					goto nul;
				n = utf8_seq((const unsigned char *)p,
					     (size_t)(end - p));
				if (n < 0 && !r->eof)
					return CSV_PARSE_MORE;
				if (n <= 0)
					goto bad_utf8;
				p += n;
			}
			csv_add_field(r, nfields++, fstart,
				      (size_t)(p - fstart));
		} else {
			const char *seg = p + 1;
			const char *esc = NULL;

			oline = line;
			ocol = csv_col(p, line_start);
			p = seg;
			for (;;) {
				p = csv_scan(p, CSV_STOP_QUOTED);
				if (p == end) {
					if (!r->eof)
						return CSV_PARSE_MORE;
					goto unterminated;
				}
				if (*p == '"') {
					if (p + 1 == end && !r->eof)
						return CSV_PARSE_MORE;
					if (p[1] != '"')
						break;
					/* a doubled quote: unescape */
					if (esc == NULL)
						esc = csv_scratch_start(r);
					buf_append(&r->scratch, seg,
						   (size_t)(p + 1 - seg));
					p += 2;
					seg = p;
					continue;
				}
				if (*p == '\n') {
					line++;
					line_start = ++p;
					continue;
				}
				n = *p == '\0' ? 0 :
				    utf8_seq((const unsigned char *)p,
					     (size_t)(end - p));
				if (n < 0 && !r->eof)
					return CSV_PARSE_MORE;
				if (n <= 0) {
					skip_from = CSV_SKIP_IN_QUOTES;
					if (*p == '\0')
						goto nul;
					goto bad_utf8;
				}
				p += n;
			}
			if (esc == NULL) {
				csv_add_field(r, nfields++, seg,
					      (size_t)(p - seg));
			} else {
				buf_append(&r->scratch, seg,
					   (size_t)(p - seg));
				csv_add_field(r, nfields++, esc,
					      (size_t)(r->scratch.data +
					      r->scratch.len - esc));
			}
			p++;
			if (p < end && *p != ',' && *p != '\n' && *p != '\r') {
				if (*p == '\0')
					goto nul;
				csv_set_error(err, line, csv_col(p, line_start),
					      "unexpected character after "
					      "closing quote");
				p++;
				goto bad;
			}
		}

		/* After a field: a separator, a line end, or the end. */
		if (p < end && *p == ',') {
			if (check_count && nfields == want) {
				count_line = line;
				count_col = csv_col(p, line_start);
			}
			p++;
			continue;
		}
		if (p < end && *p == '\r') {
			if (p + 1 == end && !r->eof)
				return CSV_PARSE_MORE;
			/* at the end, p[1] is the NUL after the data */
			if (p[1] != '\n') {
				csv_set_error(err, line, csv_col(p, line_start),
					      "bare CR (not followed by LF)");
				p++;
				goto bad;
			}
		}
		rec->raw_len = (size_t)(p - start);
		if (check_count && nfields < want) {
			count_line = line;
			count_col = csv_col(p, line_start);
		}
		if (p < end) {
			p += *p == '\r' ? 2 : 1;
			line++;
		}
		break;
	}

	*next = p;
	*next_line = line;
	if (check_count && nfields != want) {
		csv_set_error(err, count_line, count_col,
			      "expected %zu fields, found %zu", want, nfields);
		return CSV_PARSE_BAD;
	}
	rec->fields = r->fields;
	rec->nfields = nfields;
	return CSV_PARSE_OK;

nul:
	csv_set_error(err, line, csv_col(p, line_start), "NUL byte");
	p++;
	goto bad;
bad_utf8:
	csv_set_error(err, line, csv_col(p, line_start),
		      "invalid UTF-8 byte 0x%02X", (unsigned char)*p);
	p++;
bad:
	skip = (struct csv_skip){
		.in_quotes = skip_from == CSV_SKIP_IN_QUOTES,
		.field_start = skip_from == CSV_SKIP_FIELD_START,
		.line = line, .col = csv_col(p, line_start) - 1,
		.oline = oline, .ocol = ocol,
	};
	q = csv_skip_scan(&skip, p, end);
	line = skip.line;
	if (q == NULL) {
		if (!r->eof)
			return CSV_PARSE_MORE;
		/*
		 * A quote left open swallowed the rest of the input: that,
		 * not the fault before it, is what the reader has to hear
		 * about.
		 */
		if (csv_skip_open(&skip)) {
			oline = skip.oline;
			ocol = skip.ocol;
			goto unterminated;
		}
		q = end;
	}
	p = q;
	goto bad_end;
unterminated:
	/* line is the line at end; a final LF ends the line before it */
	csv_unterminated(err, oline, ocol,
			 end > start && end[-1] == '\n' ? line - 1 : line);
	return CSV_PARSE_UNTERMINATED;
bad_end:
	*next = p;
	*next_line = line;
	rec->raw_len = (size_t)(p - start);
	/* the raw text excludes the terminator (a lone CR is not one) */
	if (rec->raw_len > 0 && start[rec->raw_len - 1] == '\n') {
		rec->raw_len--;
		if (rec->raw_len > 0 && start[rec->raw_len - 1] == '\r')
			rec->raw_len--;
	}
	return CSV_PARSE_BAD;
}

/*
 * csv_utf8_cut - how much of p to keep, at most n bytes, so as not to cut
 * a UTF-8 character (p holds more than n bytes)
 */
static size_t csv_utf8_cut(const char *p, size_t n)
{
	for (int i = 0; i < 3 && n > 0 &&
	     ((unsigned char)p[n] & 0xC0) == 0x80; i++)
		n--;
	return n;
}

/*
 * csv_skip_long - the record at r->pos is longer than max_record_bytes.
 * Holding it would let one record take any amount of memory, so the
 * reader keeps its first bytes, scans on to its end as the input comes
 * (from its start: the state of the scan is the record's own) and makes
 * it a bad record.  A quote that stays open to the end of the input is
 * fatal, as it is in a short record.
 */
static enum csv_status csv_skip_long(struct csv_reader *r,
				     struct csv_record *rec,
				     struct csv_error *err)
{
	struct csv_skip s = { .field_start = true, .line = r->line };
	size_t keep = r->p.max_record_bytes < CSV_LONG_KEEP ?
		      r->p.max_record_bytes : CSV_LONG_KEEP;
	unsigned long first = r->line, last;
	unsigned long long len = 0;
	const char *q;

	buf_reset(&r->long_raw);
	buf_append(&r->long_raw, r->in + r->pos,
		   csv_utf8_cut(r->in + r->pos, keep));
	for (;;) {
		const char *p = r->in + r->pos;
		int n;

		q = csv_skip_scan(&s, p, r->in + r->len);
		if (q != NULL) {
			len += (unsigned long long)(q - p);
			r->pos = (size_t)(q - r->in);
			break;
		}
		len += r->len - r->pos;
		r->pos = r->len;
		n = csv_fill(r, err);
		if (n < 0)
			return csv_fail(r, err);
		if (n == 0)
			break;
	}
	if (q == NULL) {
		last = s.col == 0 ? s.line - 1 : s.line;
		if (csv_skip_open(&s)) {
			csv_unterminated(err, s.oline, s.ocol, last);
			return csv_fail(r, err);
		}
	} else {
		/* the raw text excludes the terminator */
		last = s.line - 1;
		len -= s.cr ? 2 : 1;
	}
	r->line = s.line;
	memset(rec, 0, sizeof(*rec));
	rec->line = first;
	rec->raw = r->long_raw.data;
	rec->raw_len = r->long_raw.len;
	if (last == first)
		csv_set_error(err, first, 1, "record of %llu bytes, over the "
			      "limit of %zu (only its first %zu bytes are "
			      "kept)", len, r->p.max_record_bytes,
			      r->long_raw.len);
	else
		csv_set_error(err, first, 1, "record of %llu bytes on lines "
			      "%lu to %lu, over the limit of %zu (only its "
			      "first %zu bytes are kept)", len, first, last,
			      r->p.max_record_bytes, r->long_raw.len);
	return CSV_BAD_RECORD;
}

/*
 * csv_skip_empty_lines - step over lines with nothing on them.  Returns 0,
 * or -1 on a read error (err filled).
 */
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
	enum csv_parse res;
	const char *next = NULL;
	unsigned long next_line = 0;

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
		size_t have;

		res = csv_parse_record(r, rec, err, &next, &next_line);
		if (res != CSV_PARSE_MORE)
			break;
		/*
		 * All the data from r->pos is this record's raw text, but
		 * perhaps a CR LF (its terminator): beyond that the record
		 * is too long already, and reading on would only grow the
		 * buffer.
		 */
		have = r->len - r->pos;
		if (have > 2 && have - 2 > r->p.max_record_bytes)
			return csv_skip_long(r, rec, err);
		if (csv_fill(r, err) < 0)
			return csv_fail(r, err);
	}
	/*
	 * The limit is on the record itself, not on the data that happened
	 * to be buffered: the same input must give the same answer whatever
	 * the sizes of the reads.  So a record too long is always scanned
	 * again by csv_skip_long, however much of it was buffered.
	 */
	if (res == CSV_PARSE_UNTERMINATED)
		return csv_fail(r, err);
	if (rec->raw_len > r->p.max_record_bytes)
		return csv_skip_long(r, rec, err);
	r->pos = (size_t)(next - r->in);
	r->line = next_line;
	if (res == CSV_PARSE_BAD)
		return CSV_BAD_RECORD;
	if (!r->have_header) {
		r->have_header = true;
		r->nfields_expected = rec->nfields;
	}
	return CSV_OK;
}

void csv_write_field(struct buf *out, const char *p, size_t len)
{
	bool quote = len > 0 && (p[0] == ' ' || p[len - 1] == ' ');
	const char *q;

	for (size_t i = 0; i < len && !quote; i++) {
		if (p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n')
			quote = true;
	}
	if (!quote) {
		buf_append(out, p, len);
		return;
	}
	buf_putc(out, '"');
	/* each quote is written twice: once ending a run, once alone */
	while ((q = memchr(p, '"', len)) != NULL) {
		buf_append(out, p, (size_t)(q - p) + 1);
		len -= (size_t)(q - p) + 1;
		p = q + 1;
		buf_putc(out, '"');
	}
	buf_append(out, p, len);
	buf_putc(out, '"');
}
