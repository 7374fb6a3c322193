/*
 * test_csv - the strict streaming CSV reader and csv_write_field.
 *
 * Every input is read many times: from a memory source that hands out at
 * most K bytes per call (K = 1, 2, 3, 7, 65536), with read_size from 1 to
 * the default, so records, fields and multi-byte characters are cut at
 * every possible place and the buffer refill path runs.  Each reading must
 * give exactly the same transcript (statuses, lines, raw bytes, fields,
 * error positions and reasons); the expected values are then checked
 * against the reference reading.
 */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "csv.h"

/* a string literal as (pointer, length), NUL bytes included */
#define S(lit) (lit), (sizeof(lit) - 1)

#define MAX_GOT 64
#define MAX_GOT_FIELDS 64

static const size_t chunk_sizes[] = { 1, 2, 3, 7, 65536 };
static const size_t read_sizes[] = { 1, 2, 3, 5, 8, 0 };

/* A memory source: at most k bytes per call, and EIO from fail_at on. */
struct mem_src {
	const char *data;
	size_t len;
	size_t pos;
	size_t k;
	size_t fail_at;		/* (size_t)-1: never */
	unsigned calls_after_end;
};

static ssize_t mem_read(void *ctx, void *dst, size_t len)
{
	struct mem_src *m = ctx;
	size_t n = m->len - m->pos;

	assert_true(len > 0);
	if (m->pos >= m->fail_at) {
		errno = EIO;
		return -1;
	}
	if (n == 0)
		m->calls_after_end++;
	if (n > m->k)
		n = m->k;
	if (n > len)
		n = len;
	if (m->fail_at != (size_t)-1 && n > m->fail_at - m->pos)
		n = m->fail_at - m->pos;
	memcpy(dst, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* One csv_read result, copied out of the reader's buffers. */
struct got {
	enum csv_status st;
	unsigned long line;
	struct buf raw;
	size_t nfields;
	struct buf fields[MAX_GOT_FIELDS];
	struct csv_error err;
};

struct run {
	struct got g[MAX_GOT];
	size_t n;
	struct buf text;	/* the transcript, for comparing readings */
};

static void run_free(struct run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		buf_free(&run->g[i].raw);
		for (size_t j = 0; j < MAX_GOT_FIELDS; j++)
			buf_free(&run->g[i].fields[j]);
	}
	buf_free(&run->text);
	free(run);
}

static void put_escaped(struct buf *b, const char *p, size_t len)
{
	buf_putc(b, '<');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '>')
			buf_printf(b, "\\x%02X", c);
		else
			buf_putc(b, (char)c);
	}
	buf_putc(b, '>');
}

static const char *status_name(enum csv_status st)
{
	switch (st) {
	case CSV_OK:
		return "OK";
	case CSV_BAD_RECORD:
		return "BAD";
	case CSV_EOF:
		return "EOF";
	case CSV_FATAL:
		return "FATAL";
	}
	return "?";
}

static void transcribe(struct run *run, const struct got *g)
{
	struct buf *t = &run->text;

	buf_printf(t, "%s line=%lu", status_name(g->st), g->line);
	if (g->st == CSV_OK || g->st == CSV_BAD_RECORD) {
		buf_append_str(t, " raw=");
		put_escaped(t, buf_cstr(&g->raw), g->raw.len);
	}
	if (g->st == CSV_OK) {
		buf_printf(t, " n=%zu", g->nfields);
		for (size_t i = 0; i < g->nfields; i++)
			put_escaped(t, buf_cstr(&g->fields[i]),
				    g->fields[i].len);
	}
	if (g->st == CSV_BAD_RECORD || g->st == CSV_FATAL)
		buf_printf(t, " err=%lu:%lu %s", g->err.line, g->err.column,
			   g->err.reason);
	buf_putc(t, '\n');
}

static bool same_error(const struct csv_error *a, const struct csv_error *b)
{
	return a->line == b->line && a->column == b->column &&
	       strcmp(a->reason, b->reason) == 0;
}

/* read_reader - every record until EOF or FATAL, then check it stays so */
static struct run *read_reader(struct csv_reader *r)
{
	struct run *run = calloc(1, sizeof(*run));
	struct csv_record rec;
	struct csv_error err;
	enum csv_status st;

	assert_non_null(run);
	do {
		struct got *g;

		assert_true(run->n < MAX_GOT);
		memset(&err, 0xa5, sizeof(err));
		st = csv_read(r, &rec, &err);
		g = &run->g[run->n++];
		g->st = st;
		assert_true(st == CSV_OK || st == CSV_BAD_RECORD ||
			    st == CSV_EOF || st == CSV_FATAL);
		if (st == CSV_OK || st == CSV_BAD_RECORD) {
			g->line = rec.line;
			assert_true(rec.line >= 1);
			assert_non_null(rec.raw);
			buf_append(&g->raw, rec.raw, rec.raw_len);
		}
		if (st == CSV_OK) {
			g->nfields = rec.nfields;
			assert_true(rec.nfields >= 1);
			assert_true(rec.nfields <= MAX_GOT_FIELDS);
			for (size_t i = 0; i < rec.nfields; i++) {
				assert_non_null(rec.fields[i].ptr);
				buf_append(&g->fields[i], rec.fields[i].ptr,
					   rec.fields[i].len);
			}
		}
		if (st == CSV_BAD_RECORD || st == CSV_FATAL) {
			g->err = err;
			assert_non_null(memchr(err.reason, '\0',
					       sizeof(err.reason)));
			assert_true(err.reason[0] != '\0');
			assert_true(err.line >= 1);
		}
		transcribe(run, g);
	} while (st == CSV_OK || st == CSV_BAD_RECORD);

	/* the end is sticky: EOF stays EOF, FATAL stays FATAL */
	for (int i = 0; i < 3; i++) {
		struct csv_error again;

		memset(&rec, 0xa5, sizeof(rec));
		assert_int_equal(csv_read(r, &rec, &again), st);
		if (st == CSV_FATAL)
			assert_true(same_error(&again,
					       &run->g[run->n - 1].err));
	}
	return run;
}

static struct run *read_mem(const char *data, size_t len,
			    const struct csv_params *params, size_t k,
			    size_t fail_at)
{
	struct mem_src m = { data, len, 0, k, fail_at, 0 };
	struct csv_reader *r = csv_reader_new(mem_read, &m, params);
	struct run *run;

	assert_non_null(r);
	run = read_reader(r);
	csv_reader_free(&r);
	assert_null(r);
	if (fail_at == (size_t)-1 &&
	    run->g[run->n - 1].st == CSV_EOF) {
		/* all the input was consumed; end of input seen once */
		assert_int_equal(m.pos, len);
		assert_int_equal(m.calls_after_end, 1);
	}
	return run;
}

/*
 * parse_ex - read data with every chunk size and read size; all readings
 * must agree.  Returns the reference reading (default read size, large
 * chunks), for the caller to check and run_free.
 */
static struct run *parse_ex(const char *data, size_t len,
			    const struct csv_params *base, size_t fail_at)
{
	struct csv_params p = { 0, 0, 0 };
	struct run *ref;

	if (base != NULL)
		p = *base;
	p.read_size = 0;
	ref = read_mem(data, len, &p, 65536, fail_at);
	for (size_t i = 0; i < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]);
	     i++) {
		for (size_t j = 0;
		     j < sizeof(read_sizes) / sizeof(read_sizes[0]); j++) {
			struct run *run;

			p.read_size = read_sizes[j];
			run = read_mem(data, len, &p, chunk_sizes[i], fail_at);
			if (strcmp(buf_cstr(&run->text),
				   buf_cstr(&ref->text)) != 0) {
				print_error("K=%zu read_size=%zu:\n%s\n"
					    "reference:\n%s\n",
					    chunk_sizes[i], read_sizes[j],
					    buf_cstr(&run->text),
					    buf_cstr(&ref->text));
				fail();
			}
			run_free(run);
		}
	}
	return ref;
}

static struct run *parse(const char *data, size_t len,
			 const struct csv_params *base)
{
	return parse_ex(data, len, base, (size_t)-1);
}

static void check_raw(const struct got *g, const char *raw, size_t raw_len)
{
	if (g->raw.len != raw_len ||
	    memcmp(buf_cstr(&g->raw), raw, raw_len) != 0) {
		struct buf a = BUF_INIT, b = BUF_INIT;

		put_escaped(&a, buf_cstr(&g->raw), g->raw.len);
		put_escaped(&b, raw, raw_len);
		print_error("raw %s, expected %s\n", buf_cstr(&a),
			    buf_cstr(&b));
		buf_free(&a);
		buf_free(&b);
		fail();
	}
}

/* want_ok - result i is a good record: line, raw and the fields */
static void want_ok(const struct run *run, size_t i, unsigned long line,
		    const char *raw, size_t nfields, ...)
{
	const struct got *g;
	va_list ap;

	assert_true(i < run->n);
	g = &run->g[i];
	if (g->st != CSV_OK)
		print_error("result %zu: %s", i, buf_cstr(&run->text));
	assert_int_equal(g->st, CSV_OK);
	assert_int_equal(g->line, line);
	check_raw(g, raw, strlen(raw));
	assert_int_equal(g->nfields, nfields);
	va_start(ap, nfields);
	for (size_t f = 0; f < nfields; f++) {
		const char *want = va_arg(ap, const char *);

		assert_int_equal(g->fields[f].len, strlen(want));
		assert_memory_equal(buf_cstr(&g->fields[f]), want,
				    strlen(want));
	}
	va_end(ap);
}

/* want_bad - result i is a bad record, its raw bytes and the fault */
static void want_bad(const struct run *run, size_t i, unsigned long line,
		     const char *raw, size_t raw_len, unsigned long eline,
		     unsigned long ecol, const char *reason)
{
	const struct got *g;

	assert_true(i < run->n);
	g = &run->g[i];
	if (g->st != CSV_BAD_RECORD)
		print_error("result %zu: %s", i, buf_cstr(&run->text));
	assert_int_equal(g->st, CSV_BAD_RECORD);
	assert_int_equal(g->line, line);
	check_raw(g, raw, raw_len);
	assert_int_equal(g->err.line, eline);
	assert_int_equal(g->err.column, ecol);
	if (strstr(g->err.reason, reason) == NULL) {
		print_error("reason '%s' lacks '%s'\n", g->err.reason, reason);
		fail();
	}
}

/* want_end - result i, the last one, is EOF (or FATAL: checked by caller) */
static void want_end(const struct run *run, size_t i, enum csv_status st)
{
	if (run->n != i + 1 || run->g[i].st != st)
		print_error("expected %s as result %zu:\n%s", status_name(st),
			    i, buf_cstr(&run->text));
	assert_int_equal(run->n, i + 1);
	assert_int_equal(run->g[i].st, st);
}

static void want_fatal(const struct run *run, size_t i, unsigned long eline,
		       const char *reason)
{
	want_end(run, i, CSV_FATAL);
	assert_int_equal(run->g[i].err.line, eline);
	if (strstr(run->g[i].err.reason, reason) == NULL) {
		print_error("reason '%s' lacks '%s'\n", run->g[i].err.reason,
			    reason);
		fail();
	}
}

/* want_fatal_at - result i, the last, is FATAL at line:column */
static void want_fatal_at(const struct run *run, size_t i,
			  unsigned long eline, unsigned long ecol,
			  const char *reason)
{
	want_fatal(run, i, eline, reason);
	assert_int_equal(run->g[i].err.column, ecol);
}

/* ---- accepted input ------------------------------------------------- */

static void test_simple(void **state)
{
	struct run *run = parse(S("name,email\nann,a@x.org\nbob,b@y.org\n"),
				NULL);

	(void)state;
	want_ok(run, 0, 1, "name,email", 2, "name", "email");
	want_ok(run, 1, 2, "ann,a@x.org", 2, "ann", "a@x.org");
	want_ok(run, 2, 3, "bob,b@y.org", 2, "bob", "b@y.org");
	want_end(run, 3, CSV_EOF);
	run_free(run);
}

static void test_empty_input(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S(""), NULL);
	want_end(run, 0, CSV_EOF);
	run_free(run);
	run = parse(S("\n\r\n\n"), NULL);
	want_end(run, 0, CSV_EOF);
	run_free(run);
	run = parse(S("\xEF\xBB\xBF"), NULL);
	want_end(run, 0, CSV_EOF);
	run_free(run);
}

static void test_crlf_lf_mixed(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\r\nc,d\r\n"), NULL);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_ok(run, 1, 2, "c,d", 2, "c", "d");
	want_end(run, 2, CSV_EOF);
	run_free(run);

	run = parse(S("a,b\r\nc,d\ne,f\r\ng,h\n"), NULL);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_ok(run, 1, 2, "c,d", 2, "c", "d");
	want_ok(run, 2, 3, "e,f", 2, "e", "f");
	want_ok(run, 3, 4, "g,h", 2, "g", "h");
	want_end(run, 4, CSV_EOF);
	run_free(run);
}

static void test_no_final_newline(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\nc,d"), NULL);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_ok(run, 1, 2, "c,d", 2, "c", "d");
	want_end(run, 2, CSV_EOF);
	run_free(run);

	run = parse(S("a,b\r\n\"c\",\"d\""), NULL);
	want_ok(run, 1, 2, "\"c\",\"d\"", 2, "c", "d");
	want_end(run, 2, CSV_EOF);
	run_free(run);

	/* a last field that is empty, without a line end */
	run = parse(S("a,b\nc,"), NULL);
	want_ok(run, 1, 2, "c,", 2, "c", "");
	want_end(run, 2, CSV_EOF);
	run_free(run);

	run = parse(S("only"), NULL);
	want_ok(run, 0, 1, "only", 1, "only");
	want_end(run, 1, CSV_EOF);
	run_free(run);
}

static void test_bom(void **state)
{
	struct run *run;

	(void)state;
	/* at the very start: skipped, not part of the first field or raw */
	run = parse(S("\xEF\xBB\xBF" "email,name\r\nx@y,X\r\n"), NULL);
	want_ok(run, 0, 1, "email,name", 2, "email", "name");
	want_ok(run, 1, 2, "x@y,X", 2, "x@y", "X");
	want_end(run, 2, CSV_EOF);
	run_free(run);

	/* a BOM then an empty line */
	run = parse(S("\xEF\xBB\xBF\na\n"), NULL);
	want_ok(run, 0, 2, "a", 1, "a");
	want_end(run, 1, CSV_EOF);
	run_free(run);

	/* anywhere else it is data (U+FEFF is valid UTF-8) */
	run = parse(S("a,b\n\xEF\xBB\xBFx,y\n"), NULL);
	want_ok(run, 1, 2, "\xEF\xBB\xBFx,y", 2, "\xEF\xBB\xBFx", "y");
	want_end(run, 2, CSV_EOF);
	run_free(run);

	/* only the first one is skipped */
	run = parse(S("\xEF\xBB\xBF\xEF\xBB\xBF" "a\n"), NULL);
	want_ok(run, 0, 1, "\xEF\xBB\xBF" "a", 1, "\xEF\xBB\xBF" "a");
	want_end(run, 1, CSV_EOF);
	run_free(run);

	run = parse(S("a,\xEF\xBB\xBF\n"), NULL);
	want_ok(run, 0, 1, "a,\xEF\xBB\xBF", 2, "a", "\xEF\xBB\xBF");
	run_free(run);

	/* a cut BOM is just bad UTF-8 */
	run = parse(S("\xEF\xBB" "a\n"), NULL);
	want_bad(run, 0, 1, S("\xEF\xBB" "a"), 1, 1, "UTF-8");
	want_end(run, 1, CSV_EOF);
	run_free(run);
}

static void test_quoted_fields(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b,c,d\n"
		      "\"x,y\",\"say \"\"hi\"\"\",\"p\r\nq\",\"r\ns\"\n"
		      "next,1,2,3\r\n"
		      "\"\",\"\"\"\",\"\"\"\"\"\",\"a\"\"\"\n"
		      "\"\r\n\r\n\",\",\",\"\n\",end\n"
		      "last,1,2,3\n"), NULL);
	want_ok(run, 0, 1, "a,b,c,d", 4, "a", "b", "c", "d");
	want_ok(run, 1, 2,
		"\"x,y\",\"say \"\"hi\"\"\",\"p\r\nq\",\"r\ns\"", 4,
		"x,y", "say \"hi\"", "p\r\nq", "r\ns");
	/* the record above spans lines 2 to 4 */
	want_ok(run, 2, 5, "next,1,2,3", 4, "next", "1", "2", "3");
	want_ok(run, 3, 6, "\"\",\"\"\"\",\"\"\"\"\"\",\"a\"\"\"", 4,
		"", "\"", "\"\"", "a\"");
	want_ok(run, 4, 7, "\"\r\n\r\n\",\",\",\"\n\",end", 4,
		"\r\n\r\n", ",", "\n", "end");
	want_ok(run, 5, 11, "last,1,2,3", 4, "last", "1", "2", "3");
	want_end(run, 6, CSV_EOF);
	run_free(run);

	/* text before, between and after doubled quotes */
	run = parse(S("\"a\"\"b\",\"\"\"c\",\"d\"\"\"\"e\"\n"), NULL);
	want_ok(run, 0, 1, "\"a\"\"b\",\"\"\"c\",\"d\"\"\"\"e\"", 3,
		"a\"b", "\"c", "d\"\"e");
	want_end(run, 1, CSV_EOF);
	run_free(run);

	/* a lone CR inside quotes is data and no line break */
	run = parse(S("\"a\rb\",c\nd,e\n"), NULL);
	want_ok(run, 0, 1, "\"a\rb\",c", 2, "a\rb", "c");
	want_ok(run, 1, 2, "d,e", 2, "d", "e");
	run_free(run);
}

/* Unescaped fields live in scratch: many of them, long, in one record. */
static void test_many_escaped_fields(void **state)
{
	struct buf in = BUF_INIT, want = BUF_INIT;
	struct run *run;

	(void)state;
	for (int rec = 0; rec < 2; rec++) {
		for (int f = 0; f < 40; f++) {
			if (f > 0)
				buf_putc(&in, ',');
			if (f % 3 == 0) {
				buf_printf(&in, "plain%d", f);
				continue;
			}
			buf_putc(&in, '"');
			for (int i = 0; i < 30; i++)
				buf_printf(&in, "%d\"\"", f);
			buf_putc(&in, '"');
		}
		buf_append_str(&in, "\r\n");
	}
	run = parse(in.data, in.len, NULL);
	for (size_t r = 0; r < 2; r++) {
		const struct got *g = &run->g[r];

		assert_int_equal(g->st, CSV_OK);
		assert_int_equal(g->nfields, 40);
		for (int f = 0; f < 40; f++) {
			buf_reset(&want);
			if (f % 3 == 0) {
				buf_printf(&want, "plain%d", f);
			} else {
				for (int i = 0; i < 30; i++)
					buf_printf(&want, "%d\"", f);
			}
			assert_string_equal(buf_cstr(&g->fields[f]),
					    buf_cstr(&want));
		}
	}
	want_end(run, 2, CSV_EOF);
	run_free(run);
	buf_free(&in);
	buf_free(&want);
}

static void test_empty_fields(void **state)
{
	struct run *run = parse(S(",,\na,,c\n,b,\n\"\",,\"\"\n,,\r\n"), NULL);

	(void)state;
	want_ok(run, 0, 1, ",,", 3, "", "", "");
	want_ok(run, 1, 2, "a,,c", 3, "a", "", "c");
	want_ok(run, 2, 3, ",b,", 3, "", "b", "");
	want_ok(run, 3, 4, "\"\",,\"\"", 3, "", "", "");
	want_ok(run, 4, 5, ",,", 3, "", "", "");
	want_end(run, 5, CSV_EOF);
	run_free(run);

	/* a line holding only "" is a record with one empty field */
	run = parse(S("h\n\"\"\n\nx\n"), NULL);
	want_ok(run, 0, 1, "h", 1, "h");
	want_ok(run, 1, 2, "\"\"", 1, "");
	want_ok(run, 2, 4, "x", 1, "x");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* spaces are data, kept as they are */
	run = parse(S(" a , b \n"), NULL);
	want_ok(run, 0, 1, " a , b ", 2, " a ", " b ");
	run_free(run);
}

static void test_empty_lines(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("\n\r\n\na,b\n\n\r\nc,d\r\n\r\n\ne,f\n\n\r\n\n"), NULL);
	want_ok(run, 0, 4, "a,b", 2, "a", "b");
	want_ok(run, 1, 7, "c,d", 2, "c", "d");
	want_ok(run, 2, 10, "e,f", 2, "e", "f");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* after a multi-line quoted field, and after a bad record */
	run = parse(S("a,b\n\"1\n2\",x\n\n\"3\",y,z\n\r\nc,d"), NULL);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_ok(run, 1, 2, "\"1\n2\",x", 2, "1\n2", "x");
	want_bad(run, 2, 5, S("\"3\",y,z"), 5, 6, "expected 2 fields");
	want_ok(run, 3, 7, "c,d", 2, "c", "d");
	want_end(run, 4, CSV_EOF);
	run_free(run);
}

static void test_header_sets_field_count(void **state)
{
	struct run *run;

	(void)state;
	/* the header may have one field: then every record must */
	run = parse(S("email\na@b\nx,y\nc@d\n"), NULL);
	want_ok(run, 0, 1, "email", 1, "email");
	want_ok(run, 1, 2, "a@b", 1, "a@b");
	want_bad(run, 2, 3, S("x,y"), 3, 2, "expected 1 fields, found 2");
	want_ok(run, 3, 4, "c@d", 1, "c@d");
	want_end(run, 4, CSV_EOF);
	run_free(run);

	/* a bad first record is no header: the first good one is */
	run = parse(S("a\"b,c\nx,y,z\n1,2,3\n1,2\n"), NULL);
	want_bad(run, 0, 1, S("a\"b,c"), 1, 2, "quote");
	want_ok(run, 1, 2, "x,y,z", 3, "x", "y", "z");
	want_ok(run, 2, 3, "1,2,3", 3, "1", "2", "3");
	want_bad(run, 3, 4, S("1,2"), 4, 4, "expected 3 fields, found 2");
	want_end(run, 4, CSV_EOF);
	run_free(run);
}

/* More fields than the first 16 the reader allocates for. */
static void test_wide_records(void **state)
{
	struct buf in = BUF_INIT;
	struct run *run;

	(void)state;
	for (int r = 0; r < 3; r++) {
		for (int f = 0; f < 60; f++)
			buf_printf(&in, "%s%d", f > 0 ? "," : "", r * 100 + f);
		buf_putc(&in, '\n');
	}
	run = parse(in.data, in.len, NULL);
	for (int r = 0; r < 3; r++) {
		assert_int_equal(run->g[r].st, CSV_OK);
		assert_int_equal(run->g[r].nfields, 60);
		for (int f = 0; f < 60; f++) {
			char want[16];

			snprintf(want, sizeof(want), "%d", r * 100 + f);
			assert_string_equal(buf_cstr(&run->g[r].fields[f]),
					    want);
		}
	}
	want_end(run, 3, CSV_EOF);
	run_free(run);
	buf_free(&in);
}

/* Valid multi-byte characters, cut by every chunk size. */
static void test_utf8_valid(void **state)
{
	static const char *const chars[] = {
		"\xC2\x80",		/* U+0080, smallest 2-byte */
		"\xC3\xA9",		/* é */
		"\xDF\xBF",		/* U+07FF */
		"\xE0\xA0\x80",		/* U+0800, smallest 3-byte */
		"\xE2\x82\xAC",		/* € */
		"\xED\x9F\xBF",		/* U+D7FF, below the surrogates */
		"\xEE\x80\x80",		/* U+E000, above them */
		"\xEF\xBF\xBF",		/* U+FFFF */
		"\xF0\x90\x80\x80",	/* U+10000, smallest 4-byte */
		"\xF0\x9F\x98\x80",	/* 😀 */
		"\xF4\x8F\xBF\xBF",	/* U+10FFFF, the last one */
	};
	struct buf in = BUF_INIT;
	struct run *run;

	(void)state;
	buf_append_str(&in, "a,b\n");
	for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++)
		buf_printf(&in, "x%s,\"%s%s\"\n", chars[i], chars[i],
			   chars[i]);
	run = parse(in.data, in.len, NULL);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++) {
		struct buf f0 = BUF_INIT, f1 = BUF_INIT;
		const struct got *g = &run->g[i + 1];

		buf_printf(&f0, "x%s", chars[i]);
		buf_printf(&f1, "%s%s", chars[i], chars[i]);
		assert_int_equal(g->st, CSV_OK);
		assert_int_equal(g->line, i + 2);
		assert_string_equal(buf_cstr(&g->fields[0]), buf_cstr(&f0));
		assert_string_equal(buf_cstr(&g->fields[1]), buf_cstr(&f1));
		buf_free(&f0);
		buf_free(&f1);
	}
	want_end(run, sizeof(chars) / sizeof(chars[0]) + 1, CSV_EOF);
	run_free(run);
	buf_free(&in);
}

/* ---- refused input: position, reason, raw, and reading goes on ------ */

static void test_field_count(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\nx\nc,d\nx,y,z\r\ne,f\n\"p\nq\"\ng,h"), NULL);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	/* too few: where the line ended instead of a separator */
	want_bad(run, 1, 2, S("x"), 2, 2, "expected 2 fields, found 1");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	/* too many: the separator of the first field too many */
	want_bad(run, 3, 4, S("x,y,z"), 4, 4, "expected 2 fields, found 3");
	want_ok(run, 4, 5, "e,f", 2, "e", "f");
	/* a record spanning lines ends on its last line */
	want_bad(run, 5, 6, S("\"p\nq\""), 7, 3, "expected 2 fields, found 1");
	want_ok(run, 6, 8, "g,h", 2, "g", "h");
	want_end(run, 7, CSV_EOF);
	run_free(run);

	/* the last record, without a line end */
	run = parse(S("a,b\nx"), NULL);
	want_bad(run, 1, 2, S("x"), 2, 2, "expected 2 fields, found 1");
	want_end(run, 2, CSV_EOF);
	run_free(run);
}

static void test_quote_in_unquoted_field(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\nab\"c,d\ne,f\n"), NULL);
	want_bad(run, 1, 2, S("ab\"c,d"), 2, 3, "quote character inside");
	want_ok(run, 2, 3, "e,f", 2, "e", "f");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* two stray quotes must not swallow the records after them */
	run = parse(S("a,b\nHe said \"hi\" there,x\r\nc,d\n5\" 3\",y\ne,f\n"),
		    NULL);
	want_bad(run, 1, 2, S("He said \"hi\" there,x"), 2, 9,
		 "quote character inside");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	want_bad(run, 3, 4, S("5\" 3\",y"), 4, 2, "quote character inside");
	want_ok(run, 4, 5, "e,f", 2, "e", "f");
	want_end(run, 5, CSV_EOF);
	run_free(run);

	/*
	 * After the fault, a quote that starts a field still opens one: its
	 * line break belongs to the bad record.
	 */
	run = parse(S("a,b\nx\"y,\"1\n2\"\nc,d\n"), NULL);
	want_bad(run, 1, 2, S("x\"y,\"1\n2\""), 2, 2, "quote character");
	want_ok(run, 2, 4, "c,d", 2, "c", "d");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* ... and a doubled quote in it does not close it */
	run = parse(S("a,b\nx\"y,\"1\"\"\n2\"\nc,d\n"), NULL);
	want_bad(run, 1, 2, S("x\"y,\"1\"\"\n2\""), 2, 2, "quote character");
	want_ok(run, 2, 4, "c,d", 2, "c", "d");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* in the second field, on a line after a multi-line field */
	run = parse(S("a,b\n\"1\n2\",3\"\nc,d\n"), NULL);
	want_bad(run, 1, 2, S("\"1\n2\",3\""), 3, 5, "quote character");
	want_ok(run, 2, 4, "c,d", 2, "c", "d");
	run_free(run);
}

static void test_text_after_closing_quote(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\n\"ab\"c,d\ne,f\n\"x\ny\" ,1\r\ng,h\n"), NULL);
	want_bad(run, 1, 2, S("\"ab\"c,d"), 2, 5, "after closing quote");
	want_ok(run, 2, 3, "e,f", 2, "e", "f");
	want_bad(run, 3, 4, S("\"x\ny\" ,1"), 5, 3, "after closing quote");
	want_ok(run, 4, 6, "g,h", 2, "g", "h");
	want_end(run, 5, CSV_EOF);
	run_free(run);

	/* more quotes after the fault are stray, not opening ones */
	run = parse(S("a,b\n\"a\"b\"c\",d\ne,f\n"), NULL);
	want_bad(run, 1, 2, S("\"a\"b\"c\",d"), 2, 4, "after closing quote");
	want_ok(run, 2, 3, "e,f", 2, "e", "f");
	run_free(run);
}

static void test_bare_cr(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\nx\ry,z\ne,f\n\rq,r\nc,d\r\r\ng,h\n\"1\"\r2\n"
		      "i,j\nk,l\r"), NULL);
	want_bad(run, 1, 2, S("x\ry,z"), 2, 2, "bare CR");
	want_ok(run, 2, 3, "e,f", 2, "e", "f");
	want_bad(run, 3, 4, S("\rq,r"), 4, 1, "bare CR");
	/* CR CR LF: the first CR is bare, CR LF ends the line */
	want_bad(run, 4, 5, S("c,d\r"), 5, 4, "bare CR");
	want_ok(run, 5, 6, "g,h", 2, "g", "h");
	want_bad(run, 6, 7, S("\"1\"\r2"), 7, 4, "bare CR");
	want_ok(run, 7, 8, "i,j", 2, "i", "j");
	/* a CR at the very end is bare too, and part of the raw text */
	want_bad(run, 8, 9, S("k,l\r"), 9, 4, "bare CR");
	want_end(run, 9, CSV_EOF);
	run_free(run);
}

static void test_nul_byte(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\nx\0y,z\nc,d\n1,\"p\nq\0r\"\ne,f\n\0,1\n"), NULL);
	want_bad(run, 1, 2, S("x\0y,z"), 2, 2, "NUL");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	want_bad(run, 3, 4, S("1,\"p\nq\0r\""), 5, 2, "NUL");
	want_ok(run, 4, 6, "e,f", 2, "e", "f");
	want_bad(run, 5, 7, S("\0,1"), 7, 1, "NUL");
	want_end(run, 6, CSV_EOF);
	run_free(run);
}

static void test_utf8_invalid(void **state)
{
	static const struct {
		const char *bytes;
		const char *byte_hex;	/* the byte the error names */
	} cases[] = {
		{ "\xC0\x80", "0xC0" },		/* overlong NUL */
		{ "\xC1\xBF", "0xC1" },		/* overlong 2-byte */
		{ "\xE0\x80\x80", "0xE0" },	/* overlong 3-byte */
		{ "\xE0\x9F\xBF", "0xE0" },	/* overlong U+07FF */
		{ "\xF0\x80\x80\x80", "0xF0" },	/* overlong 4-byte */
		{ "\xF0\x8F\xBF\xBF", "0xF0" },	/* overlong U+FFFF */
		{ "\xED\xA0\x80", "0xED" },	/* surrogate U+D800 */
		{ "\xED\xBF\xBF", "0xED" },	/* surrogate U+DFFF */
		{ "\xF4\x90\x80\x80", "0xF4" },	/* U+110000 */
		{ "\xF5\x80\x80\x80", "0xF5" },
		{ "\xF8\x88\x80\x80\x80", "0xF8" },
		{ "\xFE", "0xFE" },
		{ "\xFF", "0xFF" },
		{ "\x80", "0x80" },		/* stray continuation */
		{ "\xBF\xBF", "0xBF" },
		{ "\xE2\x82", "0xE2" },		/* truncated at field end */
		{ "\xF0\x9F\x98", "0xF0" },
		{ "\xC3", "0xC3" },
		{ "\xE2\x82" "A", "0xE2" },	/* not a continuation */
		{ "\xC3\xC3\xA9", "0xC3" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf in = BUF_INIT, raw2 = BUF_INIT, raw3 = BUF_INIT;
		struct buf raw4 = BUF_INIT;
		struct run *run;

		/*
		 * unquoted, at column 5; quoted, on the second line of a
		 * multi-line record; at the start of a line
		 */
		buf_printf(&raw2, "ab,c%s", cases[i].bytes);
		buf_printf(&raw3, "\"x\ny\",\"%s\"", cases[i].bytes);
		buf_printf(&raw4, "%s,e", cases[i].bytes);
		buf_printf(&in, "a,b\n%s\nc,d\n%s\r\n%s\ng,h\n",
			   buf_cstr(&raw2), buf_cstr(&raw3), buf_cstr(&raw4));
		run = parse(in.data, in.len, NULL);
		want_ok(run, 0, 1, "a,b", 2, "a", "b");
		want_bad(run, 1, 2, raw2.data, raw2.len, 2, 5,
			 "invalid UTF-8");
		want_bad(run, 1, 2, raw2.data, raw2.len, 2, 5,
			 cases[i].byte_hex);
		want_ok(run, 2, 3, "c,d", 2, "c", "d");
		want_bad(run, 3, 4, raw3.data, raw3.len, 5, 5,
			 "invalid UTF-8");
		want_bad(run, 4, 6, raw4.data, raw4.len, 6, 1,
			 cases[i].byte_hex);
		want_ok(run, 5, 7, "g,h", 2, "g", "h");
		want_end(run, 6, CSV_EOF);
		run_free(run);
		buf_free(&in);
		buf_free(&raw2);
		buf_free(&raw3);
		buf_free(&raw4);
	}
}

/* An error inside quotes: the rest of that quoted field is skipped too. */
static void test_error_inside_quotes_resync(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\n\"\xFF,\nx\",y\nc,d\n"), NULL);
	want_bad(run, 1, 2, S("\"\xFF,\nx\",y"), 2, 2,
		 "invalid UTF-8 byte 0xFF");
	want_ok(run, 2, 4, "c,d", 2, "c", "d");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* a doubled quote after the fault does not close the field */
	run = parse(S("a,b\n\"p\0\nq\"\"\n,r\",s\nc,d\n"), NULL);
	want_bad(run, 1, 2, S("\"p\0\nq\"\"\n,r\",s"), 2, 3, "NUL byte");
	want_ok(run, 2, 5, "c,d", 2, "c", "d");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* a NUL right after the closing quote is named as such */
	run = parse(S("a,b\n\"x\"\0,y\nc,d\n"), NULL);
	want_bad(run, 1, 2, S("\"x\"\0,y"), 2, 4, "NUL byte");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	run_free(run);

	/* a truncated character at the very end of a quoted field */
	run = parse(S("a,b\n\"x\xC3\",y\nc,d\n"), NULL);
	want_bad(run, 1, 2, S("\"x\xC3\",y"), 2, 3,
		 "invalid UTF-8 byte 0xC3");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	run_free(run);
}

/* The reasons are meant for people: check them word for word. */
static void test_exact_reasons(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *reason;
	} cases[] = {
		{ S("a,b\nx,y,z\n"), "expected 2 fields, found 3" },
		{ S("a,b\nx\n"), "expected 2 fields, found 1" },
		{ S("a,b\nx\"y,z\n"),
		  "quote character inside an unquoted field" },
		{ S("a,b\n\"x\"y,z\n"),
		  "unexpected character after closing quote" },
		{ S("a,b\nx\ry,z\n"), "bare CR (not followed by LF)" },
		{ S("a,b\nx\0,z\n"), "NUL byte" },
		{ S("a,b\nx\xC3,z\n"), "invalid UTF-8 byte 0xC3" },
	};
	static const struct {
		const char *in;
		size_t len;
		const char *reason;
	} fatal[] = {
		{ S("a,b\nx,\"y\n"),
		  "unterminated quoted field (opened at line 2, column 3) "
		  "on the last line of the input" },
		{ S("a,b\nx,\"y\nc,d\n\ne,f"),
		  "unterminated quoted field (opened at line 2, column 3): "
		  "it runs 4 lines to the end of the input, so the records "
		  "in them cannot be told apart" },
	};
	struct csv_params p = { 16, 0, 0 };
	struct run *run_long;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run *run = parse(cases[i].in, cases[i].len, NULL);

		assert_int_equal(run->g[1].st, CSV_BAD_RECORD);
		assert_string_equal(run->g[1].err.reason, cases[i].reason);
		run_free(run);
	}
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		struct run *run = parse(fatal[i].in, fatal[i].len, NULL);

		want_end(run, 1, CSV_FATAL);
		assert_string_equal(run->g[1].err.reason, fatal[i].reason);
		run_free(run);
	}

	run_long = parse(S("a,b\n0123456789,abcdef\n\"x\ny\",0123456789012\n"),
			 &p);
	assert_string_equal(run_long->g[1].err.reason,
			    "record of 17 bytes, over the limit of 16 (only "
			    "its first 16 bytes are kept)");
	assert_string_equal(run_long->g[2].err.reason,
			    "record of 19 bytes on lines 3 to 4, over the "
			    "limit of 16 (only its first 16 bytes are kept)");
	run_free(run_long);
}

/* The first fault of a field is the one reported. */
static void test_first_fault_wins(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\nx\xFFy\"z,1\nc,d\nx\0\"\n"), NULL);
	want_bad(run, 1, 2, S("x\xFFy\"z,1"), 2, 2, "UTF-8");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	want_bad(run, 3, 4, S("x\0\""), 4, 2, "NUL");
	want_end(run, 4, CSV_EOF);
	run_free(run);
}

/*
 * An unterminated quote is fatal: every line after it is inside the
 * field, so no record after it can be told apart, and rejecting it all as
 * one bad record would quietly lose them.  The error points at the
 * opening quote and says how many lines the field took.
 */
static void test_unterminated_quote(void **state)
{
	struct run *run;

	(void)state;
	run = parse(S("a,b\nc,d\ne,\"fg\nh,i\n"), NULL);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_ok(run, 1, 2, "c,d", 2, "c", "d");
	want_fatal_at(run, 2, 3, 3, "unterminated quoted field (opened at "
		      "line 3, column 3): it runs 2 lines to the end");
	run_free(run);

	run = parse(S("a,b\r\n\"x\r\n"), NULL);
	want_fatal_at(run, 1, 2, 1, "unterminated quoted field (opened at "
		      "line 2, column 1) on the last line of the input");
	run_free(run);

	/* no line end at all; a doubled quote does not close it */
	run = parse(S("a,b\n1,\"x\"\"y\"\""), NULL);
	want_fatal_at(run, 1, 2, 3, "unterminated quoted field (opened at "
		      "line 2, column 3) on the last line");
	run_free(run);

	/*
	 * An open quote that swallows the rest of the input outranks an
	 * earlier fault in the record: it is why the record is so long.
	 */
	run = parse(S("a,b\n\"\xC3x,y\nc,d\n"), NULL);
	want_fatal_at(run, 1, 2, 1, "(opened at line 2, column 1): it runs "
		      "2 lines");
	run_free(run);
	run = parse(S("a,b\nx\"y,\"z\r\nc,d\r\n"), NULL);
	want_fatal_at(run, 1, 2, 5, "(opened at line 2, column 5): it runs "
		      "2 lines");
	run_free(run);

	/* a quote opened on a later line of a multi-line record */
	run = parse(S("a,b\n\"1\n2\",\"3\n"), NULL);
	want_fatal_at(run, 1, 3, 4, "(opened at line 3, column 4) on the "
		      "last line");
	run_free(run);

	/* bad records before it are still reported, each on its own */
	run = parse(S("a,b\n1\nc,d\nx,\"y\nz\n\nw\n"), NULL);
	want_bad(run, 1, 2, S("1"), 2, 2, "expected 2 fields, found 1");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	want_fatal_at(run, 3, 4, 3, "(opened at line 4, column 3): it runs "
		      "4 lines");
	run_free(run);

	/* the header itself */
	run = parse(S("\"a,b\nc,d\n"), NULL);
	want_fatal_at(run, 0, 1, 1, "it runs 2 lines");
	run_free(run);
}

/* Several bad records in one pass, each reported once, in order. */
static void test_every_bad_record_reported(void **state)
{
	struct run *run = parse(S("h1,h2\n"
				  "1\n"
				  "a\"b,c\n"
				  "ok,1\n"
				  "\"x\"y,z\n"
				  "\xC0\x80,v\n"
				  "ok,2\n"
				  "x\ry,z\n"
				  "1,2,3\n"
				  "ok,3\n"), NULL);

	(void)state;
	want_ok(run, 0, 1, "h1,h2", 2, "h1", "h2");
	want_bad(run, 1, 2, S("1"), 2, 2, "expected 2 fields");
	want_bad(run, 2, 3, S("a\"b,c"), 3, 2, "quote");
	want_ok(run, 3, 4, "ok,1", 2, "ok", "1");
	want_bad(run, 4, 5, S("\"x\"y,z"), 5, 4, "closing quote");
	want_bad(run, 5, 6, S("\xC0\x80,v"), 6, 1, "UTF-8");
	want_ok(run, 6, 7, "ok,2", 2, "ok", "2");
	want_bad(run, 7, 8, S("x\ry,z"), 8, 2, "bare CR");
	want_bad(run, 8, 9, S("1,2,3"), 9, 4, "expected 2 fields, found 3");
	want_ok(run, 9, 10, "ok,3", 2, "ok", "3");
	want_end(run, 10, CSV_EOF);
	run_free(run);
}

/* With a BOM, columns on line 1 count from after it. */
static void test_bom_columns(void **state)
{
	struct run *run = parse(S("\xEF\xBB\xBF" "ab\"c\nx\n"), NULL);

	(void)state;
	want_bad(run, 0, 1, S("ab\"c"), 1, 3, "quote");
	want_ok(run, 1, 2, "x", 1, "x");
	run_free(run);
}

/* ---- limits and fatal errors ---------------------------------------- */

/*
 * A record longer than the limit is a bad record, not the end: the
 * reader scans on to its end (the next line end outside quotes), keeps
 * only a prefix of its raw bytes and says how long it was.
 */
static void test_max_record_bytes(void **state)
{
	struct csv_params p = { 16, 0, 0 };
	struct run *run;

	(void)state;
	/* exactly 16 bytes is allowed, whatever the terminator */
	run = parse(S("a,b\n0123456789,abcde\r\n0123456789,abcd\"\n"
		      "\"0123456789,abc\"\r\n"), &p);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_ok(run, 1, 2, "0123456789,abcde", 2, "0123456789", "abcde");
	want_bad(run, 2, 3, S("0123456789,abcd\""), 3, 16, "quote");
	want_bad(run, 3, 4, S("\"0123456789,abc\""), 4, 17,
		 "expected 2 fields, found 1");
	want_end(run, 4, CSV_EOF);
	run_free(run);

	/* 17 bytes is a bad record, however the input arrives */
	run = parse(S("a,b\nc,d\n0123456789,abcdef\ne,f\n"), &p);
	want_ok(run, 1, 2, "c,d", 2, "c", "d");
	want_bad(run, 2, 3, S("0123456789,abcde"), 3, 1,
		 "record of 17 bytes, over the limit of 16");
	want_ok(run, 3, 4, "e,f", 2, "e", "f");
	want_end(run, 4, CSV_EOF);
	run_free(run);

	/* far longer, CRLF, and the last record without a terminator */
	run = parse(S("a,b\r\n0123456789,0123456789,0123456789\r\nc,d\r\n"
		      "0123456789,abcdef"), &p);
	want_bad(run, 1, 2, S("0123456789,01234"), 2, 1, "record of 32 bytes");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	want_bad(run, 3, 4, S("0123456789,abcde"), 4, 1, "record of 17 bytes");
	want_end(run, 4, CSV_EOF);
	run_free(run);

	/* bad records are held to the same limit */
	run = parse(S("a,b\n\"\"0123456789,abcdef\nc,d\n"), &p);
	want_bad(run, 1, 2, S("\"\"0123456789,abc"), 2, 1,
		 "record of 19 bytes");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	run_free(run);

	/*
	 * A quoted field over several lines: the record ends at the first
	 * line end outside quotes, a doubled quote does not close it, and
	 * a quote in the middle of a field does not open one.
	 */
	run = parse(S("a,b\n\"x\ny\"\"\n,z\n0123456789\",q\"\"\"\n"
		      "c,d\n"), &p);
	want_bad(run, 1, 2, S("\"x\ny\"\"\n,z\n012345"), 2, 1,
		 "record of 26 bytes on lines 2 to 5, over the limit of 16");
	want_ok(run, 2, 6, "c,d", 2, "c", "d");
	want_end(run, 3, CSV_EOF);
	run_free(run);

	/* the kept prefix never ends inside a UTF-8 character */
	run = parse(S("a\nx\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
		      "\xC3\xA9\xC3\xA9\nb\n"), &p);
	want_bad(run, 1, 2, S("x\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
			      "\xC3\xA9\xC3\xA9"), 2, 1, "record of 17 bytes");
	want_ok(run, 2, 3, "b", 1, "b");
	run_free(run);

	/* a record that is too long and bad: the length is what is said */
	run = parse(S("a,b\nx\xFF" "0123456789,abcdef\nc,d\n"), &p);
	want_bad(run, 1, 2, S("x\xFF" "0123456789,abc"), 2, 1,
		 "record of 19 bytes");
	want_ok(run, 2, 3, "c,d", 2, "c", "d");
	run_free(run);

	/* an unclosed quote runs past the limit to the end: fatal */
	run = parse(S("a,b\n\"\nc,d\ne,f\ng,h\ni,j\nk,l\nm,n\n"), &p);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_fatal_at(run, 1, 2, 1, "unterminated quoted field (opened at "
		      "line 2, column 1): it runs 7 lines to the end");
	run_free(run);

	/* the header may be too long too */
	run = parse(S("0123456789,abcdefgh\nc,d\n"), &p);
	want_bad(run, 0, 1, S("0123456789,abcde"), 1, 1, "record of 19");
	want_ok(run, 1, 2, "c,d", 2, "c", "d");
	run_free(run);

	/* unterminated at the end of input: within the limit or not */
	run = parse(S("a,b\n\"0123456789,abcd\r\n"), &p);
	want_fatal_at(run, 1, 2, 1, "on the last line of the input");
	run_free(run);
	run = parse(S("a,b\n\"0123456789,abcde\r\n"), &p);
	want_fatal_at(run, 1, 2, 1, "on the last line of the input");
	run_free(run);
}

/* A source of n copies of a pattern, with no copy of it in memory. */
struct gen_src {
	const char *head;	/* once, first */
	const char *pat;
	size_t n;		/* copies of pat */
	const char *tail;	/* once, last */
	size_t pos;		/* bytes handed out */
};

static ssize_t gen_read(void *ctx, void *dst, size_t len)
{
	struct gen_src *g = ctx;
	size_t hl = strlen(g->head), pl = strlen(g->pat);
	size_t tl = strlen(g->tail), total = hl + pl * g->n + tl, i;
	char *d = dst;

	for (i = 0; i < len && g->pos < total; i++, g->pos++) {
		if (g->pos < hl)
			d[i] = g->head[g->pos];
		else if (g->pos < hl + pl * g->n)
			d[i] = g->pat[(g->pos - hl) % pl];
		else
			d[i] = g->tail[g->pos - hl - pl * g->n];
	}
	return (ssize_t)i;
}

/* malloc_used - bytes the process has allocated and not freed */
static size_t malloc_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	/* large blocks are mapped on their own, outside the arena */
	return mi.uordblks + mi.hblkhd;
}

/*
 * A record of 64 MB, and an open quote over 64 MB of lines: the reader
 * reads them through without holding them (it keeps a prefix, a count
 * and where the quote opened).
 */
static void test_max_record_memory(void **state)
{
	struct csv_params p = { 1000, 0, 4096 };
	struct gen_src g = { "a,b\nx,", "0123456789abcdef", 4u << 20,
			     "\nc,d\n", 0 };
	struct csv_reader *r;
	struct csv_record rec;
	struct csv_error err;
	size_t before, peak = 0;

	(void)state;
	before = malloc_used();
	r = csv_reader_new(gen_read, &g, &p);
	assert_int_equal(csv_read(r, &rec, &err), CSV_OK);
	assert_int_equal(csv_read(r, &rec, &err), CSV_BAD_RECORD);
	peak = malloc_used();
	assert_int_equal(rec.line, 2);
	assert_int_equal(rec.raw_len, 1000);
	assert_memory_equal(rec.raw, "x,0123456789abcdef", 18);
	assert_non_null(strstr(err.reason, "record of 67108866 bytes, over "
			       "the limit of 1000"));
	assert_int_equal(csv_read(r, &rec, &err), CSV_OK);
	assert_int_equal(rec.line, 3);
	assert_int_equal(csv_read(r, &rec, &err), CSV_EOF);
	csv_reader_free(&r);
	assert_true(peak - before < (1u << 20));

	g = (struct gen_src){ "a,b\n\"oops,1\n", "c,d\n", 16u << 20, "",
			      0 };
	before = malloc_used();
	r = csv_reader_new(gen_read, &g, &p);
	assert_int_equal(csv_read(r, &rec, &err), CSV_OK);
	assert_int_equal(csv_read(r, &rec, &err), CSV_FATAL);
	peak = malloc_used();
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 1);
	assert_non_null(strstr(err.reason, "(opened at line 2, column 1): "
			       "it runs 16777217 lines to the end"));
	csv_reader_free(&r);
	assert_true(peak - before < (1u << 20));
}

static void test_max_record_default_reads(void **state)
{
	struct csv_params p = { 100, 0, 0 };
	struct buf in = BUF_INIT;
	struct run *run;

	(void)state;
	/* with the default 64 KiB reads the whole input is read at once */
	buf_append_str(&in, "a\n");
	for (int i = 0; i < 150; i++)
		buf_putc(&in, 'x');
	buf_append_str(&in, "\nb\n");
	run = read_mem(in.data, in.len, &p, 65536, (size_t)-1);
	want_ok(run, 0, 1, "a", 1, "a");
	want_bad(run, 1, 2, in.data + 2, 100, 2, 1, "record of 150 bytes");
	want_ok(run, 2, 3, "b", 1, "b");
	want_end(run, 3, CSV_EOF);
	run_free(run);
	buf_free(&in);
}

static void test_read_error(void **state)
{
	static const char in[] = "a,b\nc,d\ne,f\n";
	struct run *run;

	(void)state;
	/* at the start, mid-record, between records */
	run = parse_ex(in, sizeof(in) - 1, NULL, 0);
	want_fatal(run, 0, 1, strerror(EIO));
	assert_non_null(strstr(run->g[0].err.reason, "read error"));
	run_free(run);

	run = parse_ex(in, sizeof(in) - 1, NULL, 6);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_fatal(run, 1, 2, strerror(EIO));
	run_free(run);

	run = parse_ex(in, sizeof(in) - 1, NULL, 8);
	want_ok(run, 1, 2, "c,d", 2, "c", "d");
	want_fatal(run, 2, 3, strerror(EIO));
	run_free(run);

	/* in the middle of a quoted field spanning lines */
	run = parse_ex(S("a\n\"x\ny\nz\"\n"), NULL, 6);
	want_ok(run, 0, 1, "a", 1, "a");
	want_fatal(run, 1, 2, strerror(EIO));
	run_free(run);
}

/* A source whose first read fails, and would give data afterwards. */
struct flaky_src {
	int calls;
};

static ssize_t flaky_read(void *ctx, void *dst, size_t len)
{
	static const char data[] = "a,b\n";
	struct flaky_src *f = ctx;

	if (f->calls++ == 0) {
		errno = EIO;
		return -1;
	}
	if (f->calls > 2 || len < sizeof(data) - 1)
		return 0;
	memcpy(dst, data, sizeof(data) - 1);
	return (ssize_t)(sizeof(data) - 1);
}

/* After CSV_FATAL nothing more is read, even if the source recovers. */
static void test_fatal_is_final(void **state)
{
	struct flaky_src f = { 0 };
	struct csv_reader *r = csv_reader_new(flaky_read, &f, NULL);
	struct csv_record rec;
	struct csv_error err, again;

	(void)state;
	assert_int_equal(csv_read(r, &rec, &err), CSV_FATAL);
	assert_non_null(strstr(err.reason, strerror(EIO)));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(csv_read(r, &rec, &again), CSV_FATAL);
		assert_true(same_error(&err, &again));
	}
	assert_int_equal(f.calls, 1);
	csv_reader_free(&r);
}

static void test_max_fields(void **state)
{
	struct csv_params p = { 0, 3, 0 };
	struct run *run;

	(void)state;
	run = parse(S("a,b\n1,2,3,\"4\n\",5\nc,d\n1,2,3\nw,x,y,z\n"), &p);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	/* the error points at the first field too many */
	want_bad(run, 1, 2, S("1,2,3,\"4\n\",5"), 2, 7, "more than 3 fields");
	want_ok(run, 2, 4, "c,d", 2, "c", "d");
	want_bad(run, 3, 5, S("1,2,3"), 5, 4, "expected 2 fields, found 3");
	want_bad(run, 4, 6, S("w,x,y,z"), 6, 7, "more than 3 fields");
	want_end(run, 5, CSV_EOF);
	run_free(run);

	/* the header itself */
	run = parse(S("a,b,c,d\n1,2,3\n"), &p);
	want_bad(run, 0, 1, S("a,b,c,d"), 1, 7, "more than 3 fields");
	want_ok(run, 1, 2, "1,2,3", 3, "1", "2", "3");
	want_end(run, 2, CSV_EOF);
	run_free(run);
}

/* NULL params mean the defaults; freeing twice is harmless. */
static void test_defaults_null_params(void **state)
{
	static const char in[] = "a,b\n";
	struct mem_src m = { in, sizeof(in) - 1, 0, 65536, (size_t)-1, 0 };
	struct csv_reader *r = csv_reader_new(mem_read, &m, NULL);
	struct csv_record rec;
	struct csv_error err;

	(void)state;
	assert_int_equal(csv_read(r, &rec, &err), CSV_OK);
	assert_int_equal(rec.nfields, 2);
	assert_int_equal(rec.raw_len, 3);
	assert_memory_equal(rec.raw, "a,b", 3);
	assert_int_equal(csv_read(r, &rec, &err), CSV_EOF);
	csv_reader_free(&r);
	assert_null(r);
	csv_reader_free(&r);	/* freeing NULL is harmless */
}

/*
 * Fields without doubled quotes point into the record's raw bytes (no
 * copy); one record after another reuses the same buffers.
 */
static void test_zero_copy_and_reuse(void **state)
{
	struct csv_params p = { 0, 0, 4096 };
	struct buf in = BUF_INIT;
	struct mem_src m;
	struct csv_reader *r;
	struct csv_record rec;
	struct csv_error err;
	const char *lo = NULL, *hi = NULL;
	const struct csv_field *fields;

	(void)state;
	buf_append_str(&in,
		       "plain,\"quoted, no escapes\",\"say \"\"hi\"\"\"\n");
	for (int i = 0; i < 20000; i++)
		buf_printf(&in, "row%d,\"q%d\",\"\"\"%d\"\"\"\r\n", i, i, i);
	m = (struct mem_src){ in.data, in.len, 0, 65536, (size_t)-1, 0 };
	r = csv_reader_new(mem_read, &m, &p);

	assert_int_equal(csv_read(r, &rec, &err), CSV_OK);
	assert_int_equal(rec.nfields, 3);
	assert_ptr_equal(rec.fields[0].ptr, rec.raw);
	assert_ptr_equal(rec.fields[1].ptr, rec.raw + 7);
	assert_int_equal(rec.fields[1].len, 18);
	/* an unescaped field is a copy, outside the raw bytes */
	assert_int_equal(rec.fields[2].len, 8);
	assert_memory_equal(rec.fields[2].ptr, "say \"hi\"", 8);
	assert_true(rec.fields[2].ptr < rec.raw ||
		    rec.fields[2].ptr >= rec.raw + rec.raw_len);
	fields = rec.fields;

	for (int i = 0; i < 20000; i++) {
		char want[32];
		int wlen;

		assert_int_equal(csv_read(r, &rec, &err), CSV_OK);
		assert_ptr_equal(rec.fields, fields);
		assert_true(rec.fields[0].ptr == rec.raw);
		assert_ptr_equal(rec.fields[1].ptr,
				 rec.raw + rec.fields[0].len + 2);
		wlen = snprintf(want, sizeof(want), "\"%d\"", i);
		assert_int_equal(rec.fields[2].len, (size_t)wlen);
		assert_memory_equal(rec.fields[2].ptr, want, (size_t)wlen);
		if (lo == NULL || rec.raw < lo)
			lo = rec.raw;
		if (hi == NULL || rec.raw + rec.raw_len > hi)
			hi = rec.raw + rec.raw_len;
	}
	assert_int_equal(csv_read(r, &rec, &err), CSV_EOF);
	/* ~500 KB of input went through one buffer of a few reads */
	assert_true((size_t)(hi - lo) <= 3 * 4096);
	csv_reader_free(&r);
	buf_free(&in);
}

/* A record far larger than one read makes the buffer grow to hold it. */
static void test_long_record_grows_buffer(void **state)
{
	static const size_t read_sizes_long[] = { 4096, 0 };
	static const size_t ks[] = { 1000, 4093, 65536 };
	struct buf in = BUF_INIT, big = BUF_INIT;

	(void)state;
	/* 300 KB of quoted text: multi-byte characters, escapes, lines */
	for (int i = 0; i < 20000; i++)
		buf_append_str(&big, i % 7 ? "\xC3\xA9\xE2\x82\xAC-" :
					     "\"\"\xF0\x9F\x98\x80\n");
	buf_append_str(&in, "id,text\n1,\"");
	for (size_t i = 0; i < big.len; i++) {
		buf_putc(&in, big.data[i]);
		if (big.data[i] == '"')
			buf_putc(&in, '"');
	}
	buf_append_str(&in, "\"\r\n2,end\n");
	for (size_t i = 0; i < sizeof(read_sizes_long) / sizeof(size_t); i++) {
		for (size_t k = 0; k < sizeof(ks) / sizeof(ks[0]); k++) {
			struct csv_params p = { 0, 0, read_sizes_long[i] };
			struct run *run = read_mem(in.data, in.len, &p, ks[k],
						   (size_t)-1);
			unsigned long lines = 0;

			for (size_t j = 0; j < big.len; j++)
				lines += big.data[j] == '\n';
			assert_int_equal(run->g[1].st, CSV_OK);
			assert_int_equal(run->g[1].line, 2);
			assert_int_equal(run->g[1].fields[1].len, big.len);
			assert_memory_equal(run->g[1].fields[1].data,
					    big.data, big.len);
			want_ok(run, 2, 2 + lines + 1, "2,end", 2, "2",
				"end");
			want_end(run, 3, CSV_EOF);
			run_free(run);
		}
	}
	buf_free(&in);
	buf_free(&big);
}

/* ---- csv_write_field ------------------------------------------------ */

static void check_written(const char *field, const char *want)
{
	struct buf out = BUF_INIT;

	csv_write_field(&out, field, strlen(field));
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
}

static void test_write_field_quoting(void **state)
{
	(void)state;
	check_written("plain", "plain");
	check_written("a b", "a b");
	check_written("x@y.org", "x@y.org");
	check_written("\xC3\xA9t\xC3\xA9", "\xC3\xA9t\xC3\xA9");
	check_written("", "");
	check_written("a,b", "\"a,b\"");
	check_written("say \"hi\"", "\"say \"\"hi\"\"\"");
	check_written("\"", "\"\"\"\"");
	check_written("a\rb", "\"a\rb\"");
	check_written("a\nb", "\"a\nb\"");
	check_written(" lead", "\" lead\"");
	check_written("trail ", "\"trail \"");
	check_written(" ", "\" \"");
}

static void test_write_field_round_trip(void **state)
{
	static const char *const fields[] = {
		"plain", "with,comma", "say \"hi\"", "\"", "\"\"",
		"cr\rhere", "lf\nhere", "crlf\r\nhere", " lead", "trail ",
		"", "a b", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", ",", "\n",
	};
	enum { NF = sizeof(fields) / sizeof(fields[0]) };
	struct buf in = BUF_INIT;
	struct run *run;

	(void)state;
	/* a header, then the fields in three rotations */
	for (int r = 0; r < 4; r++) {
		for (size_t f = 0; f < NF; f++) {
			const char *s = r == 0 ? "h" :
					fields[(f + (size_t)r * 5) % NF];

			if (f > 0)
				buf_putc(&in, ',');
			csv_write_field(&in, s, strlen(s));
		}
		buf_append_str(&in, r % 2 ? "\n" : "\r\n");
	}
	run = parse(in.data, in.len, NULL);
	for (int r = 1; r < 4; r++) {
		const struct got *g = &run->g[r];

		assert_int_equal(g->st, CSV_OK);
		assert_int_equal(g->nfields, NF);
		for (size_t f = 0; f < NF; f++) {
			const char *s = fields[(f + (size_t)r * 5) % NF];

			assert_int_equal(g->fields[f].len, strlen(s));
			assert_memory_equal(buf_cstr(&g->fields[f]), s,
					    strlen(s));
		}
	}
	want_end(run, 4, CSV_EOF);
	run_free(run);
	buf_free(&in);
}

/* ---- csv_reader_new_fd ---------------------------------------------- */

static void test_fd_pipe(void **state)
{
	static const char in[] = "\xEF\xBB\xBF" "a,b\r\n\"x\ny\",2\nbad\n";
	int fds[2];
	struct csv_reader *r;
	struct run *run;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], in, sizeof(in) - 1),
			 (ssize_t)(sizeof(in) - 1));
	assert_int_equal(close(fds[1]), 0);
	r = csv_reader_new_fd(fds[0], NULL);
	run = read_reader(r);
	csv_reader_free(&r);
	want_ok(run, 0, 1, "a,b", 2, "a", "b");
	want_ok(run, 1, 2, "\"x\ny\",2", 2, "x\ny", "2");
	want_bad(run, 2, 4, S("bad"), 4, 4, "expected 2 fields, found 1");
	want_end(run, 3, CSV_EOF);
	run_free(run);
	/* the reader does not close the descriptor */
	assert_int_equal(close(fds[0]), 0);
}

/* More than a pipe holds, written in small pieces by another process. */
static void test_fd_pipe_large(void **state)
{
	struct csv_params p = { 0, 0, 1000 };
	struct csv_reader *r;
	struct csv_record rec;
	struct csv_error err;
	enum csv_status st;
	struct buf in = BUF_INIT;
	int fds[2], status;
	unsigned long n = 0;
	pid_t pid;

	(void)state;
	buf_append_str(&in, "id,text\n");
	for (int i = 0; i < 20000; i++)
		buf_printf(&in, "%d,\"line %d\nsecond, \"\"part\"\"\"\r\n", i,
			   i);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t off = 0;

		close(fds[0]);
		while (off < in.len) {
			size_t n1 = in.len - off < 777 ? in.len - off : 777;
			ssize_t w = write(fds[1], in.data + off, n1);

			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	close(fds[1]);
	r = csv_reader_new_fd(fds[0], &p);
	assert_int_equal(csv_read(r, &rec, &err), CSV_OK);
	while ((st = csv_read(r, &rec, &err)) == CSV_OK) {
		char want[64];
		int wlen = snprintf(want, sizeof(want),
				    "line %lu\nsecond, \"part\"", n);

		assert_int_equal(rec.nfields, 2);
		assert_int_equal(rec.line, 2 + 2 * n);
		assert_int_equal(rec.fields[1].len, (size_t)wlen);
		assert_memory_equal(rec.fields[1].ptr, want, (size_t)wlen);
		n++;
	}
	assert_int_equal(st, CSV_EOF);
	assert_int_equal(n, 20000);
	csv_reader_free(&r);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	buf_free(&in);
}

/* A regular file, read with small reads. */
static void test_fd_tmpfile(void **state)
{
	static const char in[] = "email,name\nann@x.org,\"Ann, A.\"\n"
				 "bob@y.org\n\"\xC3\xA9l\xC3\xA9\",x\n";
	struct csv_params p = { 0, 0, 5 };
	FILE *f = tmpfile();
	struct csv_reader *r;
	struct run *run;

	(void)state;
	assert_non_null(f);
	assert_int_equal(fwrite(in, 1, sizeof(in) - 1, f), sizeof(in) - 1);
	assert_int_equal(fflush(f), 0);
	assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
	r = csv_reader_new_fd(fileno(f), &p);
	run = read_reader(r);
	csv_reader_free(&r);
	want_ok(run, 0, 1, "email,name", 2, "email", "name");
	want_ok(run, 1, 2, "ann@x.org,\"Ann, A.\"", 2, "ann@x.org",
		"Ann, A.");
	want_bad(run, 2, 3, S("bob@y.org"), 3, 10,
		 "expected 2 fields, found 1");
	want_ok(run, 3, 4, "\"\xC3\xA9l\xC3\xA9\",x", 2, "\xC3\xA9l\xC3\xA9",
		"x");
	want_end(run, 4, CSV_EOF);
	run_free(run);
	fclose(f);
}

static void test_fd_read_error(void **state)
{
	struct csv_reader *r = csv_reader_new_fd(-1, NULL);
	struct run *run = read_reader(r);

	(void)state;
	csv_reader_free(&r);
	want_fatal(run, 0, 1, strerror(EBADF));
	run_free(run);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_crlf_lf_mixed),
		cmocka_unit_test(test_no_final_newline),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_quoted_fields),
		cmocka_unit_test(test_many_escaped_fields),
		cmocka_unit_test(test_empty_fields),
		cmocka_unit_test(test_empty_lines),
		cmocka_unit_test(test_header_sets_field_count),
		cmocka_unit_test(test_wide_records),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_field_count),
		cmocka_unit_test(test_quote_in_unquoted_field),
		cmocka_unit_test(test_text_after_closing_quote),
		cmocka_unit_test(test_bare_cr),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_error_inside_quotes_resync),
		cmocka_unit_test(test_exact_reasons),
		cmocka_unit_test(test_first_fault_wins),
		cmocka_unit_test(test_unterminated_quote),
		cmocka_unit_test(test_every_bad_record_reported),
		cmocka_unit_test(test_bom_columns),
		cmocka_unit_test(test_max_record_bytes),
		cmocka_unit_test(test_max_record_memory),
		cmocka_unit_test(test_max_record_default_reads),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_fatal_is_final),
		cmocka_unit_test(test_max_fields),
		cmocka_unit_test(test_defaults_null_params),
		cmocka_unit_test(test_zero_copy_and_reuse),
		cmocka_unit_test(test_long_record_grows_buffer),
		cmocka_unit_test(test_write_field_quoting),
		cmocka_unit_test(test_write_field_round_trip),
		cmocka_unit_test(test_fd_pipe),
		cmocka_unit_test(test_fd_pipe_large),
		cmocka_unit_test(test_fd_tmpfile),
		cmocka_unit_test(test_fd_read_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
