/*
 * fuzz_tmpl - libFuzzer target for the Mustache compiler and renderer.
 *
 * The first byte holds flags (HTML escaping, CRLF line ends, data as a
 * raw blob, tmpl_render_mail, the template as one URL); the rest is
 * split at 0xff bytes (never in
 * UTF-8) into the template, partials "a" and "b", and data.  The data
 * becomes a small tree of variables (common/vars.h) next to fixed members
 * full of markup, or, with the flag, is taken as a packed blob as it
 * stands, damage and all; the template reads it through vars_data, as
 * on the send path.  A partial named "fail" fails to load.
 *
 * Compiling must succeed or fill the structured error with a line and
 * column inside the source it names.  Rendering must leave what the
 * buffer held alone, give the same bytes every time, and keep the
 * promises of tmpl.h: with HTML escaping and no way for a value to go
 * out raw ('&', '=' and "{{{" absent), no '<' reaches the output unless
 * the template wrote it; a render that tmpl_render_mail calls clean is
 * clean 7bit mail text; what it notes as replaced URLs is in the output
 * and placed inside a source, as every name tmpl_names reports is; a
 * clean render it says has no line starting with '.' has none, and the
 * render encoded quoted-printable (tmpl_render_encoded, the template's
 * text after line ends encoded at compile time) is the render encoded
 * whole.
 * Lookups have a budget, so sections over lists nested deep end in
 * reasonable time.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime_enc.h"
#include "tmpl.h"
#include "vars.h"
#include "vars_data.h"

#define F_HTML 1
#define F_CRLF 2
#define F_RAW_BLOB 4
#define F_MAIL 8
#define F_URL 16

#define PIECES 4	/* template, partial a, partial b, data */
#define LOOKUP_BUDGET 20000
#define FILE_NAME "body.html"
#define PREFIX "kept\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct piece {
	const char *p;		/* "" for a piece the input lacks */
	size_t len;
	bool present;
};

static int load_partial(void *ctx, const char *name, struct buf *src)
{
	const struct piece *pieces = ctx;

	if (strcmp(name, "fail") == 0) {
		buf_append_str(src, "no such file");
		return -1;
	}
	if (strcmp(name, "a") == 0 && pieces[1].present) {
		buf_append(src, pieces[1].p, pieces[1].len);
		return 1;
	}
	if (strcmp(name, "b") == 0 && pieces[2].present) {
		buf_append(src, pieces[2].p, pieces[2].len);
		return 1;
	}
	return 0;
}

/* --- the data ---------------------------------------------------------- */

struct maker {
	const uint8_t *p;
	const uint8_t *end;
	struct buf *out;
};

static uint8_t take(struct maker *m)
{
	return m->p < m->end ? *m->p++ : 0;
}

static void make_bytes(struct maker *m, enum vars_tag tag, size_t len)
{
	size_t left = (size_t)(m->end - m->p);

	if (len > left)
		len = left;
	if (tag == VARS_STRING || tag == VARS_NUMBER)
		vars_put_scalar(m->out, tag, (const char *)m->p, len);
	else
		vars_put_name(m->out, (const char *)m->p, len);
	m->p += len;
}

static void make_value(struct maker *m, int depth)
{
	uint8_t c = take(m);
	size_t mark;
	uint32_t n;

	switch (depth >= 6 ? c % 5 : c % 7) {
	case 0:
		vars_put_scalar(m->out, VARS_NULL, NULL, 0);
		break;
	case 1:
		vars_put_scalar(m->out, c & 0x80 ? VARS_TRUE : VARS_FALSE,
				NULL, 0);
		break;
	case 2:
		make_bytes(m, VARS_STRING, take(m) % 16);
		break;
	case 3:
		make_bytes(m, VARS_NUMBER, take(m) % 4);
		break;
	case 4:
		vars_put_scalar(m->out, VARS_STRING, "<b>'&\"</b>", 10);
		break;
	case 5:
		mark = vars_open(m->out, VARS_LIST);
		n = take(m) % 4;
		for (uint32_t i = 0; i < n; i++)
			make_value(m, depth + 1);
		vars_close(m->out, mark, n);
		break;
	default:
		mark = vars_open(m->out, VARS_OBJECT);
		n = take(m) % 4;
		for (uint32_t i = 0; i < n; i++) {
			make_bytes(m, 0, take(m) % 3);
			make_value(m, depth + 1);
		}
		vars_close(m->out, mark, n);
		break;
	}
}

/* make_tree - fixed members full of markup, then the input's */
static void make_tree(struct buf *out, const struct piece *d)
{
	struct maker m = { (const uint8_t *)d->p,
			   (const uint8_t *)d->p + d->len, out };
	size_t root, list, item;
	uint32_t n = 4;

	vars_tree_begin(out);
	root = vars_open(out, VARS_OBJECT);
	vars_put_name(out, "name", 4);
	vars_put_scalar(out, VARS_STRING, "<Tom & 'Jerry'>", 15);
	vars_put_name(out, "empty", 5);
	vars_put_scalar(out, VARS_STRING, "", 0);
	vars_put_name(out, "no", 2);
	vars_put_scalar(out, VARS_FALSE, NULL, 0);
	vars_put_name(out, "items", 5);
	list = vars_open(out, VARS_LIST);
	for (int i = 0; i < 2; i++) {
		item = vars_open(out, VARS_OBJECT);
		vars_put_name(out, "x", 1);
		vars_put_scalar(out, VARS_STRING, "<i>=_\r\n", 7);
		vars_put_name(out, "y", 1);
		vars_put_scalar(out, VARS_TRUE, NULL, 0);
		vars_close(out, item, 2);
	}
	vars_close(out, list, 2);
	while (m.p < m.end && n < 20) {
		make_bytes(&m, 0, take(&m) % 3 + 1);
		make_value(&m, 1);
		n++;
	}
	vars_close(out, root, n);
}

/*
 * A lookup budget around vars_data: once spent, every name is missing,
 * so no section is entered any more and a render ends soon.
 */
struct budget {
	struct tmpl_data data;
	const struct tmpl_data *inner;
	size_t left;
};

static bool budget_get(const struct tmpl_data *d, const struct tmpl_value *obj,
		       const char *name, size_t len, struct tmpl_value *out)
{
	struct budget *b = d->ctx;

	if (b->left == 0)
		return false;
	b->left--;
	return b->inner->get(b->inner, obj, name, len, out);
}

static size_t budget_list_len(const struct tmpl_data *d,
			      const struct tmpl_value *list)
{
	struct budget *b = d->ctx;

	if (b->left == 0)
		return 0;
	b->left--;
	return b->inner->list_len(b->inner, list);
}

static void budget_list_item(const struct tmpl_data *d,
			     const struct tmpl_value *list, size_t i,
			     struct tmpl_value *out)
{
	struct budget *b = d->ctx;

	b->inner->list_item(b->inner, list, i, out);
}

/* --- the checks -------------------------------------------------------- */

/* line_len - bytes of line (1-based) of s before its LF; -1 if none */
static long line_len(const char *s, size_t n, unsigned line)
{
	size_t i = 0, start;

	while (line > 1 && i < n) {
		if (s[i++] == '\n')
			line--;
	}
	if (line > 1)
		return -1;
	start = i;
	while (i < n && s[i] != '\n')
		i++;
	return (long)(i - start);
}

static const char *const files[] = {
	FILE_NAME, "partial 'a'", "partial 'b'",
};

/* check_place - line and column are inside the source file names */
static void check_place(const struct piece *pieces, const char *file,
			bool in_partial, unsigned line, unsigned column)
{
	long len;

	for (int k = 0; k < 3; k++) {
		if (strcmp(file, files[k]) != 0)
			continue;
		len = line_len(pieces[k].p, pieces[k].len, line);
		if (line < 1 || column < 1 || len < 0 ||
		    column > (unsigned long)len || in_partial != (k > 0))
			abort();
		return;
	}
	abort();
}

/* check_name - a name tmpl_names reports is where it says */
static void check_name(void *ctx, const struct tmpl_name *n)
{
	volatile char last = 0;

	check_place(ctx, n->file, n->in_partial, n->line, n->column);
	if (n->len == 0)
		abort();
	last = n->name[n->len - 1];	/* readable, for ASan */
	(void)last;
}

/* check_error - the error names a source and a place inside it */
static void check_error(const struct tmpl_error *err,
			const struct piece *pieces)
{
	char head[64];
	long len;

	if (err->line < 1 || err->column < 1)
		abort();
	for (int k = 0; k < 3; k++) {
		snprintf(head, sizeof(head), "%s:%u:%u: ", files[k], err->line,
			 err->column);
		if (strncmp(err->message, head, strlen(head)) != 0)
			continue;
		if (err->message[strlen(head)] == '\0' ||
		    err->reason != strlen(head) || err->in_partial != (k > 0))
			abort();	/* no reason, or not where it says */
		len = line_len(pieces[k].p, pieces[k].len, err->line);
		if (len < 0 || err->column > (unsigned long)len + 1)
			abort();
		return;
	}
	abort();
}

/* check_top_name - a required name is placed inside the template */
static void check_top_name(void *ctx, const char *name, size_t len,
			   unsigned line, unsigned column)
{
	const struct piece *src = ctx;
	long ll = line_len(src->p, src->len, line);
	volatile char last = 0;

	/* a partial's names are placed at its tag in the template */
	if (line < 1 || column < 1 || ll < 0 || column > (unsigned long)ll)
		abort();
	if (len > 0)
		last = name[len - 1];	/* readable, for ASan */
	(void)last;
}

/* check_clean - what tmpl_render_mail calls clean must be so */
static void check_clean(const char *s, size_t n)
{
	size_t line = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
			line = 0;
			i++;
			continue;
		}
		if (c == 0 || c >= 0x80 || c == '\r' || c == '\n' ||
		    ++line > 998 || (c == '=' && i + 1 < n && s[i + 1] == '_'))
			abort();
	}
}

/* no_raw_output - nothing in the sources lets a value out unescaped */
static bool no_raw_output(const struct piece *pieces)
{
	for (int k = 0; k < 3; k++) {
		const char *p = pieces[k].p;
		size_t n = pieces[k].len;

		if (memchr(p, '<', n) || memchr(p, '&', n) ||
		    memchr(p, '=', n) || memmem(p, n, "{{{", 3))
			return false;
	}
	return true;
}

static int render(const struct tmpl *t, struct budget *b,
		  const struct tmpl_data *inner, bool mail, struct buf *out,
		  bool *clean, bool *dot, struct tmpl_notes *notes)
{
	b->inner = inner;
	b->left = LOOKUP_BUDGET;
	memset(&b->data, 0, sizeof(b->data));
	b->data.get = budget_get;
	b->data.list_len = budget_list_len;
	b->data.list_item = budget_list_item;
	b->data.root = inner->root;
	b->data.ctx = b;
	buf_reset(out);
	buf_append_str(out, PREFIX);
	*clean = false;
	memset(notes, 0, sizeof(*notes));
	*dot = true;
	if (mail)
		return tmpl_render_mail_dot(t, &b->data, out, clean, dot,
					    notes);
	return tmpl_render(t, &b->data, out);
}

/*
 * check_encoded - tmpl_render_encoded gives the rendering s[0..n)
 * quoted-printable, as mime_qp_encode does it whole
 */
static void check_encoded(const struct tmpl *t, struct budget *b,
			  const char *s, size_t n)
{
	struct buf want = BUF_INIT, have = BUF_INIT, tmp = BUF_INIT;

	b->left = LOOKUP_BUDGET;
	mime_qp_encode(&want, s, n);
	if (tmpl_render_encoded(t, &b->data, &tmp, &have, NULL) != 0 ||
	    want.len != have.len ||
	    (want.len > 0 && memcmp(want.data, have.data, want.len) != 0))
		abort();
	buf_free(&want);
	buf_free(&have);
	buf_free(&tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct piece pieces[PIECES];
	struct tmpl_params p = { .file = FILE_NAME, .partial = load_partial,
				 .partial_ctx = pieces };
	struct buf tree = BUF_INIT, blob = BUF_INIT;
	struct buf out1 = BUF_INIT, out2 = BUF_INIT;
	struct vars_data vd;
	struct budget b;
	struct tmpl_error err;
	struct tmpl_notes notes1, notes2, *notes;
	struct tmpl *t;
	const char *in, *end;
	bool clean1, clean2, dot1, dot2, mail;
	int flags, k, rc1, rc2;

	if (size == 0)
		return 0;
	flags = data[0];
	in = (const char *)data + 1;
	end = (const char *)data + size;
	for (k = 0; k < PIECES; k++)
		pieces[k] = (struct piece){ "", 0, false };
	for (k = 0; k < PIECES; k++) {
		const char *cut = k < PIECES - 1 ?
				  memchr(in, 0xff, (size_t)(end - in)) : NULL;

		pieces[k].p = in;
		pieces[k].len = (size_t)((cut ? cut : end) - in);
		pieces[k].present = true;
		if (cut == NULL)
			break;
		in = cut + 1;
	}
	p.escape = flags & F_HTML ? TMPL_ESCAPE_HTML : TMPL_ESCAPE_NONE;
	if (flags & F_URL)
		p.escape = TMPL_ESCAPE_URL;
	p.crlf = flags & F_CRLF;
	mail = flags & F_MAIL;

	if (tmpl_compile(pieces[0].p, pieces[0].len, &p, &t, &err) < 0) {
		if (t != NULL)
			abort();
		check_error(&err, pieces);
		return 0;
	}
	tmpl_set_encoder(t, mime_qp_encode_from);
	tmpl_top_names(t, check_top_name, &pieces[0]);
	tmpl_names(t, check_name, pieces);

	make_tree(&tree, &pieces[3]);
	if (vars_data_init(&vd, NULL, 0, "Email", "<a@x.example>", 13,
			   tree.data, tree.len) < 0)
		abort();
	if (flags & F_RAW_BLOB) {
		buf_putc(&blob, VARS_FORMAT_TREE);
		buf_append(&blob, pieces[3].p, pieces[3].len);
		if (vars_data_init(&vd, NULL, 0, "Email", "<a@x.example>", 13,
				   blob.data, blob.len) < 0 &&
		    vars_data_init(&vd, NULL, 0, "Email", "<a@x.example>", 13,
				   tree.data, tree.len) < 0)
			abort();
	}

	rc1 = render(t, &b, &vd.data, mail, &out1, &clean1, &dot1, &notes1);
	rc2 = render(t, &b, &vd.data, !mail, &out2, &clean2, &dot2, &notes2);
	notes = mail ? &notes1 : &notes2;
	if ((rc1 != 0 && rc1 != -1) || rc1 != rc2 || out1.len != out2.len ||
	    memcmp(out1.data, out2.data, out1.len) != 0 ||
	    memcmp(out1.data, PREFIX, strlen(PREFIX)) != 0)
		abort();
	if (rc1 == 0) {
		const char *s = out1.data + strlen(PREFIX);
		size_t n = out1.len - strlen(PREFIX);

		if ((mail ? clean1 : clean2) && p.crlf)
			check_clean(s, n);
		else if (mail ? clean1 : clean2)
			abort();	/* only a crlf template is clean */
		/* clean and no dot: no line starts with '.' */
		if ((mail ? clean1 && !dot1 : clean2 && !dot2) &&
		    ((n > 0 && s[0] == '.') || memmem(s, n, "\n.", 2)))
			abort();
		if (b.left > 0)
			check_encoded(t, &b, s, n);
		if ((flags & (F_HTML | F_URL)) == F_HTML &&
		    no_raw_output(pieces) && memchr(s, '<', n) != NULL)
			abort();
		if (notes->unsafe_urls > 0) {
			if (!memmem(s, n, TMPL_UNSAFE_URL,
				    strlen(TMPL_UNSAFE_URL)))
				abort();
			check_place(pieces, notes->file,
				    strcmp(notes->file, FILE_NAME) != 0,
				    notes->line, notes->column);
		}
	}
	tmpl_free(&t);
	buf_free(&tree);
	buf_free(&blob);
	buf_free(&out1);
	buf_free(&out2);
	return 0;
}
