/*
 * fuzz_csv - libFuzzer target for the streaming CSV reader.
 *
 * The first 7 bytes of the input set the reader up: a small record limit
 * (byte 0; 0 keeps the default), a field limit (byte 1, low 4 bits), a
 * read_size (byte 2) and the sizes of the pieces the source hands out,
 * cycled (bytes 3-6: 1 to 32 bytes, or 0xff for a read error).  The rest
 * is the CSV text.  It is read twice: in those pieces, and in one piece
 * with the default read_size.
 *
 * Every reading must keep csv.h's promises: the records' raw bytes and
 * the line ends and empty lines between them tile the input exactly, so
 * each raw text is the input's bytes at the next offset and its line is
 * the line of that offset; a record's fields are what a plain parse of
 * its raw text gives, and they stay readable until the next call; every
 * good record has the header's field count; an error's place lies inside
 * the input; EOF means the input is used up; FATAL and EOF stay as they
 * are.  And both readings must tell the same story, since the answer may
 * not depend on how the input arrived.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "buf.h"
#include "csv.h"
#include "utf8.h"

#define HEADER 7
#define READ_ERROR 0xff

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct source {
	const char *data;
	size_t len;
	size_t pos;
	const uint8_t *pieces;	/* NULL: whatever is asked for */
	size_t next_piece;
	bool failed;		/* a read error was handed out */
};

static ssize_t source_read(void *ctx, void *dst, size_t len)
{
	struct source *s = ctx;
	size_t n = s->len - s->pos;

	if (len == 0)
		abort();
	if (s->pieces != NULL) {
		uint8_t piece = s->pieces[s->next_piece++ % 4];

		if (piece == READ_ERROR && !s->failed) {
			s->failed = true;
			errno = EIO;
			return -1;
		}
		if (n > (size_t)(piece % 32) + 1)
			n = (size_t)(piece % 32) + 1;
	}
	if (n > len)
		n = len;
	memcpy(dst, s->data + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

/* What a reading learnt, for the checks that span records. */
struct reading {
	const char *in;		/* the CSV text */
	size_t len;
	size_t at;		/* where the next record must start */
	unsigned long lines;	/* lines in the input */
	size_t header_fields;	/* 0 until the first good record */
	size_t max_record;
	size_t max_fields;
	struct buf transcript;
	struct buf ref;		/* plain parse of one record, fields */
	size_t ref_len[64];	/* ... as lengths, up to 64 fields */
};

/* skip_line_ends - past the line ends and empty lines at r->at */
static void skip_line_ends(struct reading *r)
{
	for (;;) {
		if (r->at < r->len && r->in[r->at] == '\n')
			r->at++;
		else if (r->len - r->at >= 2 && r->in[r->at] == '\r' &&
			 r->in[r->at + 1] == '\n')
			r->at += 2;
		else
			return;
	}
}

/* line_of - the 1-based line of offset off */
static unsigned long line_of(const struct reading *r, size_t off)
{
	unsigned long line = 1;

	for (size_t i = 0; i < off; i++)
		line += r->in[i] == '\n';
	return line;
}

/* line_len - the bytes of line (1-based) before its LF */
static size_t line_len(const struct reading *r, unsigned long line)
{
	size_t i = 0, start;

	while (line > 1 && i < r->len) {
		if (r->in[i++] == '\n')
			line--;
	}
	if (line > 1)
		abort();
	start = i;
	while (i < r->len && r->in[i] != '\n')
		i++;
	return i - start;
}

/*
 * plain_parse - the fields of a good record's raw text, the simple way;
 * aborts on anything a good record may not hold.  Returns the count.
 */
static size_t plain_parse(struct reading *r, const char *p, size_t n)
{
	size_t i = 0, nf = 0;

	buf_reset(&r->ref);
	for (;;) {
		size_t from = r->ref.len;

		if (i < n && p[i] == '"') {
			for (i++;; i++) {
				if (i == n)
					abort();	/* unterminated */
				if (p[i] == '"') {
					if (i + 1 < n && p[i + 1] == '"')
						i++;
					else
						break;
				}
				buf_putc(&r->ref, p[i]);
			}
			i++;
		} else {
			for (; i < n && p[i] != ','; i++) {
				if (p[i] == '"' || p[i] == '\r' ||
				    p[i] == '\n')
					abort();
				buf_putc(&r->ref, p[i]);
			}
		}
		if (memchr(buf_cstr(&r->ref) + from, '\0', r->ref.len - from) ||
		    !utf8_valid(buf_cstr(&r->ref) + from, r->ref.len - from))
			abort();
		if (nf < 64)
			r->ref_len[nf] = r->ref.len - from;
		nf++;
		if (i == n)
			return nf;
		if (p[i] != ',')
			abort();	/* text after a closing quote */
		i++;
	}
}

/* check_fields - the reader's fields against the plain parse */
static void check_fields(struct reading *r, const struct csv_record *rec)
{
	size_t nf = plain_parse(r, rec->raw, rec->raw_len);
	const char *ref = buf_cstr(&r->ref);
	uintptr_t lo = (uintptr_t)rec->raw, hi = lo + rec->raw_len;

	if (rec->nfields != nf || nf > r->max_fields)
		abort();
	if (r->header_fields == 0)
		r->header_fields = nf;
	else if (nf != r->header_fields)
		abort();
	for (size_t i = 0; i < nf && i < 64; i++) {
		const struct csv_field *f = &rec->fields[i];
		uintptr_t fp = (uintptr_t)f->ptr;

		if (f->len != r->ref_len[i] || memcmp(f->ptr, ref, f->len))
			abort();
		/* Only an unescaped field lives outside the raw text. */
		if ((fp < lo || fp > hi) && !memchr(rec->raw, '"',
						     rec->raw_len))
			abort();
		if (fp >= lo && fp <= hi && fp + f->len > hi)
			abort();
		buf_printf(&r->transcript, " %zu:", f->len);
		buf_append(&r->transcript, f->ptr, f->len);
		ref += f->len;
	}
}

/* check_error - an error's place must be in the input */
static void check_error(const struct reading *r, const struct csv_error *e)
{
	if (e->reason[0] == '\0' ||
	    memchr(e->reason, '\0', sizeof(e->reason)) == NULL)
		abort();
	if (e->line < 1 || e->line > r->lines || e->column < 1 ||
	    e->column > line_len(r, e->line) + 1)
		abort();
}

/*
 * read_all - read the CSV text through src with params, checking every
 * record.  Returns the transcript's length before an injected read
 * error, or its whole length.
 */
static size_t read_all(struct reading *r, struct source *src,
		       const struct csv_params *params)
{
	struct csv_reader *reader = csv_reader_new(source_read, src, params);
	struct csv_record rec;
	struct csv_error err, again;
	enum csv_status st;
	size_t calls = 0, good = r->transcript.len;
	unsigned long long full;

	r->at = r->len >= 3 && memcmp(r->in, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	r->header_fields = 0;
	for (;;) {
		if (calls++ > r->len + 2)
			abort();	/* more records than bytes */
		st = csv_read(reader, &rec, &err);
		if (st != CSV_OK && st != CSV_BAD_RECORD)
			break;
		skip_line_ends(r);
		full = rec.raw_len;
		/* over the limit: raw is only the record's first bytes, and
		 * the reason says how long it is */
		if (st == CSV_BAD_RECORD &&
		    sscanf(err.reason, "record of %llu bytes", &full) == 1 &&
		    (full <= r->max_record || full > r->len - r->at ||
		     rec.raw_len > full))
			abort();
		if (rec.raw_len > r->len - r->at ||
		    memcmp(r->in + r->at, rec.raw, rec.raw_len) != 0 ||
		    rec.line != line_of(r, r->at) ||
		    rec.raw_len > r->max_record)
			abort();
		buf_printf(&r->transcript, "%d %lu %zu+%zu", st, rec.line,
			   r->at, (size_t)full);
		r->at += (size_t)full;
		if (st == CSV_OK) {
			check_fields(r, &rec);
		} else {
			check_error(r, &err);
			if (err.line < rec.line)
				abort();
			buf_printf(&r->transcript, " %lu:%lu %s", err.line,
				   err.column, err.reason);
		}
		buf_putc(&r->transcript, '\n');
		if (!src->failed)
			good = r->transcript.len;
	}
	if (st == CSV_EOF) {
		skip_line_ends(r);
		if (r->at != r->len)
			abort();
		if (csv_read(reader, &rec, &err) != CSV_EOF)
			abort();
		buf_append_str(&r->transcript, "EOF\n");
	} else if (st == CSV_FATAL) {
		check_error(r, &err);
		for (int k = 0; k < 2; k++) {
			if (csv_read(reader, &rec, &again) != CSV_FATAL ||
			    again.line != err.line ||
			    again.column != err.column ||
			    strcmp(again.reason, err.reason) != 0)
				abort();
		}
		buf_printf(&r->transcript, "FATAL %lu:%lu %s\n", err.line,
			   err.column, err.reason);
	} else {
		abort();
	}
	if (!src->failed)
		good = r->transcript.len;
	csv_reader_free(&reader);
	return good;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_params params = { 0 }, whole = { 0 };
	struct source src = { 0 };
	struct reading a = { 0 }, b = { 0 };
	size_t a_good;

	if (size < HEADER)
		return 0;
	params.max_record_bytes = data[0];
	params.max_fields = data[1] & 0x0f;
	params.read_size = data[2] % 17;
	whole.max_record_bytes = params.max_record_bytes;
	whole.max_fields = params.max_fields;

	a.in = (const char *)data + HEADER;
	a.len = size - HEADER;
	a.lines = line_of(&a, a.len);
	a.max_record = params.max_record_bytes ? params.max_record_bytes :
		       1024 * 1024;
	a.max_fields = params.max_fields ? params.max_fields : 4096;
	b.in = a.in;
	b.len = a.len;
	b.lines = a.lines;
	b.max_record = a.max_record;
	b.max_fields = a.max_fields;

	src.data = a.in;
	src.len = a.len;
	src.pieces = data + 3;
	a_good = read_all(&a, &src, &params);

	memset(&src, 0, sizeof(src));
	src.data = b.in;
	src.len = b.len;
	read_all(&b, &src, &whole);

	/* Up to an injected read error, both readings agree. */
	if (b.transcript.len < a_good ||
	    memcmp(a.transcript.data, b.transcript.data, a_good) != 0)
		abort();
	if (a_good == a.transcript.len && a_good != b.transcript.len)
		abort();
	buf_free(&a.transcript);
	buf_free(&a.ref);
	buf_free(&b.transcript);
	buf_free(&b.ref);
	return 0;
}
