/*
 * tmpl - Mustache templates: the compiler and the renderer (see tmpl.h).
 *
 * A campaign renders one template for every recipient, so everything that
 * does not depend on the recipient is done once, by tmpl_compile: finding
 * tags under the current delimiters, the standalone-line rules, splitting
 * dotted names, matching section tags, loading partials and indenting
 * them.  What is left for tmpl_render is a walk over a flat array of ops
 * that copies text spans, looks names up through struct tmpl_data and
 * jumps over or back to sections.  It keeps its context stack and its
 * frames in fixed arrays on the C stack, so it never allocates; the only
 * allocation while rendering is the caller's buffer growing, which stops
 * once it has held the largest message.
 *
 * A compiled template is a set of units.  Unit 0 is the template itself;
 * each other unit is one partial compiled for one indentation, because
 * the spec indents every line of a partial that stands alone on an
 * indented line, and baking the indentation into the partial's ops keeps
 * that work out of the renderer.  Units are made lazily, once per
 * distinct (name, indentation) pair, and a partial op refers to its unit
 * by index; a partial that includes itself at the same indentation finds
 * its own, half-built unit, so recursion ends at compile time.  Only a
 * partial that includes itself on an ever deeper indented line makes new
 * units forever, which the nesting cap turns into an error.
 *
 * Text ops point into copies of the sources that the template owns (and
 * into the indentation strings), so nothing is copied twice.
 */
#include "tmpl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Distinct root-level names a render remembers the values of. */
#define TMPL_NAME_CACHE 64

/* RFC 5322 2.1.1: a line of mail is at most 998 bytes before its CRLF. */
#define TMPL_MAIL_LINE_MAX 998

/* Deeper than this, partial loading is taken to be runaway recursion. */
#define TMPL_MAX_PARTIAL_NESTING 64

enum tmpl_op_type {
	TMPL_OP_TEXT,		/* copy text, len */
	TMPL_OP_VAR_HTML,	/* {{name}} in an HTML template */
	TMPL_OP_VAR_RAW,	/* {{{name}}}, {{&name}}, {{name}} in text */
	TMPL_OP_VAR_CTX,	/* a variable escaped by context: esc, check */
	TMPL_OP_SECTION,	/* {{#name}}: jump is its END */
	TMPL_OP_INVERTED,	/* {{^name}}: jump is its END */
	TMPL_OP_END,		/* {{/name}}: jump is its SECTION or INVERTED */
	TMPL_OP_PARTIAL,	/* {{>name}}: jump is the unit to run */
};

struct tmpl_op {
	enum tmpl_op_type type;
	unsigned line;		/* of the tag, for tmpl_top_names */
	unsigned column;
	const char *text;	/* TEXT: the bytes; others: the tag's name */
	size_t len;
	size_t seg;		/* first name segment in tmpl.segs */
	size_t nseg;		/* 0 for the implicit iterator "." */
	size_t jump;
	/*
	 * TEXT ops of a crlf template, for tmpl_render_mail(): is the text
	 * clean 7bit mail text by itself, and how long are its first and
	 * last lines (head and tail: the bytes before the first CRLF and
	 * after the last), so a render can tell whether the whole message
	 * is clean without scanning the template's text again.
	 */
	bool mail_ok;
	bool has_crlf;
	bool dot_first;		/* it starts with '.' */
	bool dot_line;		/* a line after a CRLF in it starts with '.' */
	size_t head;
	size_t tail;
	/*
	 * TEXT ops of a template with an encoder (tmpl_set_encoder): what
	 * comes after its first LF (from mid), but its last byte when that
	 * is no LF (from rest), encoded (enc, NULL if not worth it), and
	 * the output column that leaves (enc_col), for
	 * tmpl_render_encoded() to copy.
	 */
	size_t mid;
	size_t rest;
	const char *enc;
	size_t enc_len;
	size_t enc_col;
	/*
	 * The first name segment's number among the template's distinct
	 * first segments (-1 past TMPL_NAME_CACHE): a render looks each
	 * root-level name up once, however often the template uses it.
	 */
	int name_id;
	/*
	 * Variables: raw is what the tag said ({{{x}}}, {{&x}}, or any tag
	 * of a template that escapes nothing); esc and check are what its
	 * place in the HTML or URL asks for (TMPL_OP_VAR_CTX only).
	 */
	bool raw;
	uint8_t esc;		/* enum tmpl_esc */
	uint8_t check;		/* enum tmpl_check */
};

/* How a TMPL_OP_VAR_CTX value is written. */
enum tmpl_esc {
	TMPL_ESC_NONE,		/* as it is */
	TMPL_ESC_HTML,		/* & < > " ' as references */
	TMPL_ESC_HTML_BARE,	/* and spaces, = and `: an unquoted value */
	TMPL_ESC_PERCENT,	/* RFC 3986 percent-encoding */
};

/* What a TMPL_OP_VAR_CTX value must be before it is written. */
enum tmpl_check {
	TMPL_CHECK_NONE,
	TMPL_CHECK_URL,		/* a safe URL (tmpl_url_safe) */
	TMPL_CHECK_URL_RAW,	/* the same, and unescaped: no '&' early */
};

/* one part of a dotted name, split at compile time */
struct tmpl_seg {
	const char *name;
	size_t len;
};

struct tmpl_source {
	char *name;		/* the partial's name; NULL for unit 0 */
	char *label;		/* its file, for messages: "body.html" */
	struct buf text;
	bool found;		/* false: the loader had no such partial */
};

/*
 * Where the HTML pass is in the HTML (tmpl_h_*; the only states it tells
 * apart are those that change how a value is escaped or where the next
 * tag starts).  Byte fields only, no padding: contexts compare with
 * memcmp, and every field a state does not use is 0.
 */
enum tmpl_hstate {
	TMPL_H_TEXT,		/* between tags */
	TMPL_H_LT,		/* after '<' */
	TMPL_H_END_OPEN,	/* after "</" */
	TMPL_H_TAG_NAME,	/* name: the tag's so far */
	TMPL_H_BEFORE_ATTR,	/* in a tag, before an attribute */
	TMPL_H_ATTR_NAME,	/* name: the attribute's so far */
	TMPL_H_AFTER_ATTR,	/* after an attribute's name, before '=' */
	TMPL_H_BEFORE_VALUE,	/* after '=': url says what the value is */
	TMPL_H_VALUE,		/* quote, url, part */
	TMPL_H_MARKUP,		/* after "<!": n dashes so far */
	TMPL_H_COMMENT,		/* <!-- ... -->: n as in tmpl_h_comment */
	TMPL_H_BOGUS,		/* <!DOCTYPE ...>, <?...>: up to '>' */
	TMPL_H_RAW,		/* in elem (<script> ...): n bytes of its
				 * end tag seen */
	TMPL_H_URL,		/* TMPL_ESCAPE_URL: all one URL; part */
};

/* Where a value in a URL is: what the URL has before it. */
enum tmpl_url_part {
	TMPL_URL_START,		/* nothing but spaces */
	TMPL_URL_REST,		/* the URL has begun */
	TMPL_URL_EITHER,	/* sections before it make it either */
};

#define TMPL_H_NAME 14

struct tmpl_hctx {
	uint8_t state;		/* enum tmpl_hstate */
	uint8_t elem;		/* in a tag or RAW: 1 + its tmpl_h_raw_elems
				 * index, if it is one of those */
	uint8_t end_tag;	/* in a tag: </x> */
	uint8_t quote;		/* VALUE: '"', '\'' or 0 */
	uint8_t url;		/* BEFORE_VALUE, VALUE: a URL attribute */
	uint8_t part;		/* VALUE with url, URL: enum tmpl_url_part */
	uint8_t n;		/* name's length (TMPL_H_NAME: too long) or
				 * a count, as the state says */
	uint8_t dynamic;	/* a variable is part of the name */
	char name[TMPL_H_NAME];	/* lower case */
};

struct tmpl_unit {
	struct tmpl_op *ops;
	size_t nops;
	size_t cap;
	size_t source;		/* index in tmpl.sources */
	char *indent;		/* prefixed to each non-empty line; or NULL */
	size_t indent_len;
	bool indent_first;	/* false: the first line goes on an open line */
	/*
	 * A partial used in two HTML contexts is escaped differently in
	 * each, so the HTML pass gives it a copy per context (see
	 * tmpl_h_call): origin is the unit it copies (itself for others),
	 * and hstate, h_in and h_out what the pass knows of this one.
	 */
	size_t origin;
	uint8_t hstate;		/* TMPL_HS_* */
	bool h_assumed;		/* a call to itself took h_out for h_in, */
	size_t h_call_unit;	/* this call */
	size_t h_call_op;
	struct tmpl_hctx h_in;
	struct tmpl_hctx h_out;
};

struct tmpl_top {
	const char *name;
	size_t len;
	unsigned line;
	unsigned column;
};

struct tmpl {
	enum tmpl_escape escape;
	struct tmpl_unit *units;
	size_t nunits;
	size_t units_cap;
	struct tmpl_source *sources;
	size_t nsources;
	size_t sources_cap;
	struct tmpl_seg *segs;
	size_t nsegs;
	size_t segs_cap;
	struct tmpl_top *top;
	size_t ntop;
	size_t top_cap;
	char **owned;		/* CRLF copies and encodings of text ops */
	size_t nowned;
	tmpl_encode_fn *encode;	/* see tmpl_set_encoder(); or NULL */
	bool crlf;
	bool text_8bit;		/* see tmpl_text_8bit() */
};

/* What one tmpl_compile call shares between the units it compiles. */
struct tmpl_cc {
	struct tmpl *t;
	const struct tmpl_params *p;
	struct tmpl_error *err;
};

/* The state of compiling one unit. */
struct tmpl_uc {
	struct tmpl_cc *cc;
	size_t unit;
	unsigned nesting;	/* partial nesting: 0 for the template */
	const char *file;	/* for messages */
	const char *src;
	size_t len;
	size_t pos;
	const char *otag;	/* current delimiters: static or into src */
	size_t olen;
	const char *ctag;
	size_t clen;
	size_t next_tag;	/* cached offset of the next otag, or len */
	bool next_tag_valid;
	size_t lt_off;		/* line tracking: scanned up to here, */
	unsigned lt_line;	/* which is on this line, */
	size_t lt_bol;		/* which begins here */
	size_t *open;		/* op indices of the open sections */
	size_t nopen;
	size_t open_cap;
};

struct tmpl_tag {
	char sigil;		/* # ^ / > ! = & { or 0 for a plain name */
	size_t start;		/* offset of the opening delimiter */
	size_t end;		/* offset just past the closing delimiter */
	const char *name;	/* the trimmed contents */
	size_t nlen;
};

/* tmpl_grow - make room for element n of a growable array */
static void *tmpl_grow(void *arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return arr;
	*cap = *cap ? *cap * 2 : 8;
	return xrealloc(arr, *cap * size);
}

/* tmpl_is_blank - whitespace that may pad a tag's contents */
static bool tmpl_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* tmpl_where - line and column of offset off of the unit's source */
static void tmpl_where(struct tmpl_uc *u, size_t off, unsigned *line,
		       unsigned *column)
{
	const char *nl;

	/* Offsets mostly only grow, so scan on from the last one. */
	if (off < u->lt_off) {
		u->lt_off = 0;
		u->lt_line = 1;
		u->lt_bol = 0;
	}
	while ((nl = memchr(u->src + u->lt_off, '\n', off - u->lt_off))) {
		u->lt_line++;
		u->lt_off = (size_t)(nl - u->src) + 1;
		u->lt_bol = u->lt_off;
	}
	u->lt_off = off;
	*line = u->lt_line;
	*column = (unsigned)(off - u->lt_bol) + 1;
}

/* tmpl_fail_at - fill the error as "FILE:LINE:COLUMN: reason"; returns -1 */
static int tmpl_fail_at(struct tmpl_uc *u, unsigned line, unsigned column,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int tmpl_fail_at(struct tmpl_uc *u, unsigned line, unsigned column,
			const char *fmt, ...)
{
	struct tmpl_error *err = u->cc->err;
	va_list ap;
	int n;

	err->line = line;
	err->column = column;
	err->in_partial = u->cc->t->units[u->unit].source != 0;
	err->reason = 0;
	n = snprintf(err->message, sizeof(err->message), "%s:%u:%u: ",
		     u->file, line, column);
	if (n < 0 || (size_t)n >= sizeof(err->message))
		return -1;
	err->reason = (size_t)n;
	va_start(ap, fmt);
	vsnprintf(err->message + n, sizeof(err->message) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* tmpl_find_close - offset of the closing delimiter, or SIZE_MAX */
static size_t tmpl_find_close(const struct tmpl_uc *u, size_t from, char pre)
{
	size_t at = from;
	const char *c;

	/*
	 * pre is the '}' of "}}}" or the '=' of "=}}", which must come
	 * right before the ctag and after the tag's opening.
	 */
	while (at < u->len &&
	       (c = memmem(u->src + at, u->len - at, u->ctag, u->clen))) {
		size_t off = (size_t)(c - u->src);

		if (pre == 0)
			return off;
		if (off > from && u->src[off - 1] == pre)
			return off - 1;
		at = off + 1;
	}
	return SIZE_MAX;
}

/* tmpl_parse_tag - read the tag whose opening delimiter is at start */
static int tmpl_parse_tag(struct tmpl_uc *u, size_t start,
			  struct tmpl_tag *tag)
{
	size_t p = start + u->olen;
	size_t close, end;
	char pre = 0;
	unsigned line, column;

	tag->start = start;
	tag->sigil = 0;
	if (p < u->len && u->src[p] != '\0' && strchr("#^/>!=&{", u->src[p]))
		tag->sigil = u->src[p++];
	if (tag->sigil == '{')
		pre = '}';
	else if (tag->sigil == '=')
		pre = '=';
	close = tmpl_find_close(u, p, pre);
	if (close == SIZE_MAX) {
		tmpl_where(u, start, &line, &column);
		if (pre == '=')
			return tmpl_fail_at(u, line, column,
					    "bad set-delimiter tag");
		return tmpl_fail_at(u, line, column,
				    "unclosed tag (expected '%s%.*s')",
				    pre ? "}" : "", (int)u->clen, u->ctag);
	}
	end = close + (pre ? 1 : 0) + u->clen;

	/*
	 * An opening delimiter inside a name means the tag before it was
	 * never closed ("Dear {{name, see {{url}}"): better to say so than
	 * to look up a name nobody meant.
	 */
	if (tag->sigil != '!' && tag->sigil != '=' &&
	    memmem(u->src + p, close - p, u->otag, u->olen)) {
		tmpl_where(u, start, &line, &column);
		return tmpl_fail_at(u, line, column,
				    "unclosed tag (expected '%s%.*s')",
				    pre ? "}" : "", (int)u->clen, u->ctag);
	}
	while (p < close && tmpl_is_blank(u->src[p]))
		p++;
	while (close > p && tmpl_is_blank(u->src[close - 1]))
		close--;
	tag->name = u->src + p;
	tag->nlen = close - p;
	tag->end = end;
	if (tag->nlen == 0 && tag->sigil != '!' && tag->sigil != '=') {
		tmpl_where(u, start, &line, &column);
		return tmpl_fail_at(u, line, column, "empty tag name");
	}
	return 0;
}

/* tmpl_add_op - append an op to the unit; returns its index */
static size_t tmpl_add_op(struct tmpl_uc *u, enum tmpl_op_type type,
			  const char *text, size_t len)
{
	struct tmpl_unit *un = &u->cc->t->units[u->unit];
	struct tmpl_op *op;

	un->ops = tmpl_grow(un->ops, &un->cap, un->nops, sizeof(*un->ops));
	op = &un->ops[un->nops];
	memset(op, 0, sizeof(*op));
	op->type = type;
	op->text = text;
	op->len = len;
	return un->nops++;
}

/* tmpl_op_at - op i of the unit; re-fetched as the arrays move */
static struct tmpl_op *tmpl_op_at(struct tmpl_uc *u, size_t i)
{
	return &u->cc->t->units[u->unit].ops[i];
}

/* tmpl_emit_text - add literal text, extending the previous span if it can */
static void tmpl_emit_text(struct tmpl_uc *u, const char *text, size_t len)
{
	struct tmpl_unit *un = &u->cc->t->units[u->unit];
	struct tmpl_op *last;

	if (len == 0)
		return;
	/* Lines are emitted one by one; one op per run keeps render short. */
	last = un->nops ? &un->ops[un->nops - 1] : NULL;
	if (last && last->type == TMPL_OP_TEXT && last->text + last->len == text) {
		last->len += len;
		return;
	}
	tmpl_add_op(u, TMPL_OP_TEXT, text, len);
}

/* tmpl_add_name_op - add an op that looks a name up, splitting it at dots */
static size_t tmpl_add_name_op(struct tmpl_uc *u, enum tmpl_op_type type,
			       const struct tmpl_tag *tag)
{
	struct tmpl *t = u->cc->t;
	size_t i = tmpl_add_op(u, type, tag->name, tag->nlen);
	struct tmpl_op *op = tmpl_op_at(u, i);
	const char *p = tag->name, *end = tag->name + tag->nlen;

	tmpl_where(u, tag->start, &op->line, &op->column);
	op->seg = t->nsegs;
	if (tag->nlen == 1 && tag->name[0] == '.')
		return i;
	for (;;) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *stop = dot ? dot : end;

		t->segs = tmpl_grow(t->segs, &t->segs_cap, t->nsegs,
				    sizeof(*t->segs));
		t->segs[t->nsegs].name = p;
		t->segs[t->nsegs].len = (size_t)(stop - p);
		t->nsegs++;
		op->nseg++;
		if (!dot)
			break;
		p = dot + 1;
	}
	return i;
}

/* tmpl_set_delimiters - apply {{=open close=}} */
static int tmpl_set_delimiters(struct tmpl_uc *u, const struct tmpl_tag *tag)
{
	const char *p = tag->name, *end = tag->name + tag->nlen;
	const char *o, *c;
	size_t olen, clen;
	unsigned line, column;

	o = p;
	while (p < end && !tmpl_is_blank(*p))
		p++;
	olen = (size_t)(p - o);
	while (p < end && tmpl_is_blank(*p))
		p++;
	c = p;
	while (p < end && !tmpl_is_blank(*p))
		p++;
	clen = (size_t)(p - c);
	if (olen == 0 || clen == 0 || p != end ||
	    memchr(o, '=', olen) || memchr(c, '=', clen)) {
		tmpl_where(u, tag->start, &line, &column);
		return tmpl_fail_at(u, line, column, "bad set-delimiter tag");
	}
	u->otag = o;
	u->olen = olen;
	u->ctag = c;
	u->clen = clen;
	u->next_tag_valid = false;
	return 0;
}

/* tmpl_close_section - match {{/name}} with the innermost open section */
static int tmpl_close_section(struct tmpl_uc *u, const struct tmpl_tag *tag)
{
	struct tmpl_op *open;
	size_t oi, ci;
	unsigned line, column;

	tmpl_where(u, tag->start, &line, &column);
	if (u->nopen == 0)
		return tmpl_fail_at(u, line, column, "stray close tag '%.*s'",
				    (int)tag->nlen, tag->name);
	oi = u->open[u->nopen - 1];
	open = tmpl_op_at(u, oi);
	if (open->len != tag->nlen || memcmp(open->text, tag->name, tag->nlen))
		return tmpl_fail_at(u, line, column,
				    "close tag '%.*s' does not match open section '%.*s' (opened at %u:%u)",
				    (int)tag->nlen, tag->name,
				    (int)open->len, open->text,
				    open->line, open->column);
	ci = tmpl_add_op(u, TMPL_OP_END, tag->name, tag->nlen);
	tmpl_op_at(u, ci)->jump = oi;
	tmpl_op_at(u, ci)->line = line;
	tmpl_op_at(u, ci)->column = column;
	tmpl_op_at(u, oi)->jump = ci;
	u->nopen--;
	return 0;
}

static int tmpl_compile_unit(struct tmpl_cc *cc, size_t unit,
			     unsigned nesting);

/*
 * tmpl_partial - the unit for a partial tag: ind is the indentation of its
 * standalone line, or NULL for a tag inside a line.  *unit_r is SIZE_MAX
 * if there is no such partial.
 */
static int tmpl_partial(struct tmpl_uc *u, const struct tmpl_tag *tag,
			const char *ind, size_t ind_len, size_t *unit_r)
{
	struct tmpl_cc *cc = u->cc;
	struct tmpl *t = cc->t;
	const struct tmpl_unit *parent = &t->units[u->unit];
	struct tmpl_source *s = NULL;
	struct tmpl_unit *nu;
	size_t si, i, indent_len;
	char *indent;
	bool first = ind != NULL;
	unsigned line, column;

	*unit_r = SIZE_MAX;
	for (si = 1; si < t->nsources; si++) {
		s = &t->sources[si];
		if (strlen(s->name) == tag->nlen &&
		    memcmp(s->name, tag->name, tag->nlen) == 0)
			break;
	}
	if (si == t->nsources) {
		/* Load each partial once, however many units it becomes. */
		int rc = 0;

		t->sources = tmpl_grow(t->sources, &t->sources_cap,
				       t->nsources, sizeof(*t->sources));
		s = &t->sources[t->nsources++];
		memset(s, 0, sizeof(*s));
		s->name = xstrndup(tag->name, tag->nlen);
		s->label = xmalloc(tag->nlen + 32 + (cc->p->partial_ext ?
				   strlen(cc->p->partial_ext) : 0));
		if (cc->p->partial_ext)
			sprintf(s->label, "%s%s", s->name, cc->p->partial_ext);
		else
			sprintf(s->label, "partial '%s'", s->name);
		if (cc->p->partial)
			rc = cc->p->partial(cc->p->partial_ctx, s->name,
					    &s->text);
		if (rc < 0) {
			tmpl_where(u, tag->start, &line, &column);
			return tmpl_fail_at(u, line, column,
					    "cannot load partial '%s': %s",
					    s->name, buf_cstr(&s->text));
		}
		s->found = rc > 0;
	}
	if (!s->found)
		return 0;

	/*
	 * Inside an indented partial, a partial's lines after its first
	 * still belong to the indented block; its first line is indented
	 * only if the tag stood alone, else it continues the open line.
	 */
	indent_len = parent->indent_len + ind_len;
	indent = NULL;
	if (indent_len > 0) {
		indent = xmalloc(indent_len + 1);
		if (parent->indent_len)
			memcpy(indent, parent->indent, parent->indent_len);
		if (ind_len)
			memcpy(indent + parent->indent_len, ind, ind_len);
		indent[indent_len] = '\0';
	}
	for (i = 1; i < t->nunits; i++) {
		const struct tmpl_unit *c = &t->units[i];

		if (c->source == si && c->indent_len == indent_len &&
		    (indent_len == 0 || (c->indent_first == first &&
		     memcmp(c->indent, indent, indent_len) == 0))) {
			free(indent);
			*unit_r = i;
			return 0;
		}
	}
	if (u->nesting >= TMPL_MAX_PARTIAL_NESTING) {
		free(indent);
		tmpl_where(u, tag->start, &line, &column);
		return tmpl_fail_at(u, line, column,
				    "partials nested too deep");
	}
	t->units = tmpl_grow(t->units, &t->units_cap, t->nunits,
			     sizeof(*t->units));
	nu = &t->units[t->nunits];
	memset(nu, 0, sizeof(*nu));
	nu->source = si;
	nu->indent = indent;
	nu->indent_len = indent_len;
	nu->indent_first = first;
	nu->origin = t->nunits;
	*unit_r = t->nunits++;
	/* Registered before compiling, so a self-inclusion finds it. */
	return tmpl_compile_unit(cc, *unit_r, u->nesting + 1);
}

/* tmpl_tag - compile one tag; ind is the indentation of a standalone line */
static int tmpl_tag(struct tmpl_uc *u, const struct tmpl_tag *tag,
		    const char *ind, size_t ind_len)
{
	enum tmpl_escape esc;
	size_t i, unit;

	switch (tag->sigil) {
	case '!':
		return 0;
	case '=':
		return tmpl_set_delimiters(u, tag);
	case '#':
	case '^':
		i = tmpl_add_name_op(u, tag->sigil == '#' ? TMPL_OP_SECTION :
				     TMPL_OP_INVERTED, tag);
		u->open = tmpl_grow(u->open, &u->open_cap, u->nopen,
				    sizeof(*u->open));
		u->open[u->nopen++] = i;
		return 0;
	case '/':
		return tmpl_close_section(u, tag);
	case '>':
		if (tmpl_partial(u, tag, ind, ind_len, &unit) < 0)
			return -1;
		if (unit != SIZE_MAX) {
			i = tmpl_add_op(u, TMPL_OP_PARTIAL, tag->name,
					tag->nlen);
			tmpl_op_at(u, i)->jump = unit;
			tmpl_where(u, tag->start, &tmpl_op_at(u, i)->line,
				   &tmpl_op_at(u, i)->column);
		}
		return 0;
	case '&':
	case '{':
		i = tmpl_add_name_op(u, TMPL_OP_VAR_RAW, tag);
		tmpl_op_at(u, i)->raw = true;
		return 0;
	default:
		esc = u->cc->t->escape;
		/* TMPL_ESCAPE_URL's are raw until the URL pass says */
		i = tmpl_add_name_op(u, esc == TMPL_ESCAPE_HTML ||
				     esc == TMPL_ESCAPE_HTML_PLAIN ?
				     TMPL_OP_VAR_HTML : TMPL_OP_VAR_RAW, tag);
		tmpl_op_at(u, i)->raw = esc == TMPL_ESCAPE_NONE;
		return 0;
	}
}

/*
 * tmpl_standalone - if the line at u->pos holds nothing but whitespace and
 * one section, close, comment, partial or delimiter tag, compile the tag
 * and drop the line (returns 1); else 0, or -1 on error.
 */
static int tmpl_standalone(struct tmpl_uc *u)
{
	struct tmpl_tag tag;
	size_t p = u->pos, q, eol;

	while (p < u->len && (u->src[p] == ' ' || u->src[p] == '\t'))
		p++;
	if (u->len - p < u->olen || memcmp(u->src + p, u->otag, u->olen))
		return 0;
	if (tmpl_parse_tag(u, p, &tag) < 0)
		return -1;
	if (tag.sigil == 0 || tag.sigil == '&' || tag.sigil == '{')
		return 0;
	q = tag.end;
	while (q < u->len && (u->src[q] == ' ' || u->src[q] == '\t'))
		q++;
	if (q == u->len)
		eol = q;
	else if (u->src[q] == '\n')
		eol = q + 1;
	else if (u->src[q] == '\r' && q + 1 < u->len && u->src[q + 1] == '\n')
		eol = q + 2;
	else
		return 0;
	if (tmpl_tag(u, &tag, u->src + u->pos, p - u->pos) < 0)
		return -1;
	u->pos = eol;
	return 1;
}

/* tmpl_indent - start a partial's line with its indentation */
static void tmpl_indent(struct tmpl_uc *u)
{
	const struct tmpl_unit *un = &u->cc->t->units[u->unit];
	const char *s = u->src + u->pos;
	size_t left = u->len - u->pos;

	/* Blank lines stay blank: trailing spaces only upset mail clients. */
	if (un->indent_len == 0 || left == 0 || s[0] == '\n' ||
	    (u->pos == 0 && !un->indent_first) ||
	    (left >= 2 && s[0] == '\r' && s[1] == '\n'))
		return;
	tmpl_add_op(u, TMPL_OP_TEXT, un->indent, un->indent_len);
}

/* tmpl_compile_unit - compile a unit's source into its ops */
static int tmpl_compile_unit(struct tmpl_cc *cc, size_t unit,
			     unsigned nesting)
{
	struct tmpl *t = cc->t;
	const struct tmpl_source *s = &t->sources[t->units[unit].source];
	struct tmpl_uc u;
	bool bol = true;
	int rc = -1;

	memset(&u, 0, sizeof(u));
	u.cc = cc;
	u.unit = unit;
	u.nesting = nesting;
	u.src = buf_cstr(&s->text);
	u.len = s->text.len;
	u.otag = "{{";
	u.olen = 2;
	u.ctag = "}}";
	u.clen = 2;
	u.lt_line = 1;
	u.file = s->label;

	while (u.pos < u.len) {
		struct tmpl_tag tag;
		const char *nl;
		size_t at;

		if (bol) {
			int sa = tmpl_standalone(&u);

			if (sa < 0)
				goto out;
			if (sa > 0)
				continue;
			tmpl_indent(&u);
			bol = false;
		}
		if (!u.next_tag_valid || u.next_tag < u.pos) {
			const char *o = memmem(u.src + u.pos, u.len - u.pos,
					       u.otag, u.olen);

			u.next_tag = o ? (size_t)(o - u.src) : u.len;
			u.next_tag_valid = true;
		}
		at = u.next_tag;
		nl = memchr(u.src + u.pos, '\n', at - u.pos);
		if (nl) {
			at = (size_t)(nl - u.src) + 1;
			tmpl_emit_text(&u, u.src + u.pos, at - u.pos);
			u.pos = at;
			bol = true;
			continue;
		}
		tmpl_emit_text(&u, u.src + u.pos, at - u.pos);
		u.pos = at;
		if (at == u.len)
			break;
		if (tmpl_parse_tag(&u, at, &tag) < 0 ||
		    tmpl_tag(&u, &tag, NULL, 0) < 0)
			goto out;
		u.pos = tag.end;
	}
	if (u.nopen > 0) {
		const struct tmpl_op *op = tmpl_op_at(&u, u.open[u.nopen - 1]);

		tmpl_fail_at(&u, op->line, op->column,
			     "unclosed section '%.*s'", (int)op->len, op->text);
		goto out;
	}
	rc = 0;
out:
	free(u.open);
	return rc;
}

/* tmpl_add_top - note a root name unless it is already known */
static void tmpl_add_top(struct tmpl *t, const struct tmpl_seg *seg,
			 unsigned line, unsigned column)
{
	size_t i;

	for (i = 0; i < t->ntop; i++)
		if (t->top[i].len == seg->len &&
		    memcmp(t->top[i].name, seg->name, seg->len) == 0)
			return;
	t->top = tmpl_grow(t->top, &t->top_cap, t->ntop, sizeof(*t->top));
	t->top[t->ntop].name = seg->name;
	t->top[t->ntop].len = seg->len;
	t->top[t->ntop].line = line;
	t->top[t->ntop].column = column;
	t->ntop++;
}

/*
 * tmpl_collect_top - gather the names unit looks up at depth 0.  Names
 * found in a partial are placed at the template's {{>partial}} tag (via),
 * since the caller reports them against the template's file.
 */
static void tmpl_collect_top(struct tmpl *t, size_t unit, bool *seen,
			     const struct tmpl_op *via)
{
	const struct tmpl_unit *un = &t->units[unit];
	size_t i, depth = 0;

	for (i = 0; i < un->nops; i++) {
		const struct tmpl_op *op = &un->ops[i];
		const struct tmpl_op *at = via ? via : op;

		switch (op->type) {
		case TMPL_OP_VAR_HTML:
		case TMPL_OP_VAR_RAW:
		case TMPL_OP_VAR_CTX:
			if (depth == 0 && op->nseg > 0)
				tmpl_add_top(t, &t->segs[op->seg], at->line,
					     at->column);
			break;
		case TMPL_OP_SECTION:
		case TMPL_OP_INVERTED:
			/*
			 * A section over a missing name is how Mustache
			 * says "optional", so its name is not required.
			 */
			depth++;
			break;
		case TMPL_OP_END:
			depth--;
			break;
		case TMPL_OP_PARTIAL:
			if (depth == 0 && !seen[op->jump]) {
				seen[op->jump] = true;
				tmpl_collect_top(t, op->jump, seen, at);
			}
			break;
		case TMPL_OP_TEXT:
			break;
		}
	}
}

/* tmpl_text_mail - the TEXT op's facts for tmpl_render_mail() */
static void tmpl_text_mail(struct tmpl_op *op)
{
	const unsigned char *p = (const unsigned char *)op->text;
	size_t line = 0;
	bool first = true;

	op->mail_ok = true;
	op->has_crlf = false;
	op->dot_first = op->len > 0 && p[0] == '.';
	for (size_t k = 0; k < op->len; k++) {
		unsigned char c = p[k];

		if (c == '\r' && k + 1 < op->len && p[k + 1] == '\n') {
			if (first)
				op->head = line;
			else if (line > TMPL_MAIL_LINE_MAX)
				op->mail_ok = false;
			first = false;
			op->has_crlf = true;
			line = 0;
			k++;
			if (k + 1 < op->len && p[k + 1] == '.')
				op->dot_line = true;
			continue;
		}
		if (c >= 0x80 || c == 0 || c == '\r' || c == '\n' ||
		    (c == '=' && k + 1 < op->len && p[k + 1] == '_'))
			op->mail_ok = false;
		line++;
	}
	if (first)
		op->head = line;
	op->tail = line;
}

/* tmpl_own - keep b's bytes (or none) for as long as the template */
static const char *tmpl_own(struct tmpl *t, struct buf *b)
{
	t->owned = xrealloc(t->owned, (t->nowned + 1) * sizeof(*t->owned));
	t->owned[t->nowned++] = b->data;
	return b->data;
}

/*
 * tmpl_text_crlf - give every text op with a bare LF or CR a copy whose
 * line ends are CRLF (see tmpl_params.crlf).
 */
static void tmpl_text_crlf(struct tmpl *t)
{
	for (size_t u = 0; u < t->nunits; u++) {
		for (size_t i = 0; i < t->units[u].nops; i++) {
			struct tmpl_op *op = &t->units[u].ops[i];
			struct buf b = BUF_INIT;
			bool bare = false;

			if (op->type != TMPL_OP_TEXT)
				continue;
			for (size_t k = 0; k < op->len && !bare; k++) {
				if ((op->text[k] == '\n' &&
				     (k == 0 || op->text[k - 1] != '\r')) ||
				    (op->text[k] == '\r' &&
				     (k + 1 == op->len || op->text[k + 1] != '\n')))
					bare = true;
			}
			if (!bare)
				continue;
			for (size_t k = 0; k < op->len; k++) {
				char c = op->text[k];

				if (c == '\r' && k + 1 < op->len &&
				    op->text[k + 1] == '\n')
					continue;	/* the LF adds the pair */
				if (c == '\n' || c == '\r')
					buf_append(&b, "\r\n", 2);
				else
					buf_putc(&b, c);
			}
			op->text = tmpl_own(t, &b);
			op->len = b.len;
		}
	}
	for (size_t u = 0; u < t->nunits; u++) {
		for (size_t i = 0; i < t->units[u].nops; i++) {
			if (t->units[u].ops[i].type == TMPL_OP_TEXT)
				tmpl_text_mail(&t->units[u].ops[i]);
		}
	}
	t->crlf = true;
}

/*
 * Text shorter than this after a line end is left to the render:
 * encoding it costs less than the extra encoder call a copy needs.
 */
#define TMPL_ENC_MIN 32

/*
 * tmpl_set_encoder - encode each text op's text after its first line end
 * once: it starts at column 0 whatever came before, so it encodes the
 * same for every recipient.  Its last byte is left to the render when
 * it ends no line (how a byte goes depends on the byte after it, which
 * a value may give), the column before it kept.
 */
void tmpl_set_encoder(struct tmpl *t, tmpl_encode_fn *encode)
{
	t->encode = encode;
	for (size_t u = 0; u < t->nunits; u++) {
		for (size_t i = 0; i < t->units[u].nops; i++) {
			struct tmpl_op *op = &t->units[u].ops[i];
			const char *first;
			struct buf b = BUF_INIT;

			if (op->type != TMPL_OP_TEXT || op->len == 0)
				continue;
			first = memchr(op->text, '\n', op->len);
			if (first == NULL)
				continue;
			op->mid = (size_t)(first + 1 - op->text);
			op->rest = op->len;
			if (op->text[op->len - 1] != '\n')
				op->rest--;
			if (op->rest < op->mid + TMPL_ENC_MIN)
				continue;
			op->enc_col = t->encode(&b, op->text + op->mid,
						op->len - op->mid,
						op->rest - op->mid, 0);
			op->enc_len = b.len;
			op->enc = tmpl_own(t, &b);
		}
	}
}

/*
 * tmpl_find_8bit - does text outside every section of the template (not
 * counting partials) hold a byte >= 0x80?  Then every rendering does.
 */
static bool tmpl_find_8bit(const struct tmpl *t)
{
	const struct tmpl_unit *u = &t->units[0];
	size_t depth = 0;

	for (size_t i = 0; i < u->nops; i++) {
		const struct tmpl_op *op = &u->ops[i];

		if (op->type == TMPL_OP_SECTION || op->type == TMPL_OP_INVERTED)
			depth++;
		else if (op->type == TMPL_OP_END)
			depth--;
		else if (op->type != TMPL_OP_TEXT || depth > 0)
			continue;
		for (size_t k = 0; k < op->len; k++) {
			if ((unsigned char)op->text[k] >= 0x80)
				return true;
		}
	}
	return false;
}

/*
 * tmpl_number_names - give each op that looks a name up the number of its
 * first segment among the distinct ones (see tmpl_op.name_id).
 */
static void tmpl_number_names(struct tmpl *t)
{
	const struct tmpl_seg *names[TMPL_NAME_CACHE];
	int nnames = 0;

	for (size_t u = 0; u < t->nunits; u++) {
		for (size_t i = 0; i < t->units[u].nops; i++) {
			struct tmpl_op *op = &t->units[u].ops[i];
			const struct tmpl_seg *seg;
			int id;

			op->name_id = -1;
			if (op->type == TMPL_OP_TEXT || op->type == TMPL_OP_END ||
			    op->type == TMPL_OP_PARTIAL || op->nseg == 0)
				continue;
			seg = &t->segs[op->seg];
			for (id = 0; id < nnames; id++) {
				if (names[id]->len == seg->len &&
				    memcmp(names[id]->name, seg->name,
					   seg->len) == 0)
					break;
			}
			if (id == nnames) {
				if (nnames == TMPL_NAME_CACHE)
					continue;
				names[nnames++] = seg;
			}
			op->name_id = id;
		}
	}
}

/* --- the HTML pass: each variable's context ---------------------------- */

/*
 * Which of tmpl.h's escapes a variable gets depends on where it is in the
 * HTML, and that is the same for every recipient: this pass finds it once.
 * It reads the ops in order as a browser would read their text (an HTML
 * tokenizer cut down to the states that matter here) and sets each
 * variable's op.  A section's body may run zero, one or many times, so
 * the context after it is the join of the context before it and after
 * its body (tmpl_h_join), and a section's body starts from that join too
 * (the next item of a list follows the last).  A partial is read in the
 * context of its call; called in another context, it is copied.
 *
 * The lattice is shallow (a URL's part only moves from START to REST or
 * EITHER, an attribute's name only to dynamic), so a section settles in
 * two or three passes; a budget of work still bounds what a hostile
 * template can make it do.
 */

/* HTML elements whose content is text up to their end tag. */
static const char *const tmpl_h_raw_elems[] = {
	"script", "style", "textarea", "title", "xmp", "iframe", "noembed",
	"noframes",
};

/* Attributes whose value is a URL (HTML 4 and 5, SVG's xlink:href). */
static const char *const tmpl_h_url_attrs[] = {
	"href", "src", "action", "formaction", "cite", "poster",
	"background", "longdesc", "usemap", "codebase", "manifest", "icon",
	"data", "classid", "archive", "lowsrc", "dynsrc", "xlink:href",
};

/* Past this many sections and calls deep, the pass gives up. */
#define TMPL_H_MAX_DEPTH 256
/* Partials copied per context: at most this many units in all. */
#define TMPL_H_MAX_UNITS 1024

enum tmpl_hs {
	TMPL_HS_NEW,		/* not read yet */
	TMPL_HS_BUSY,		/* being read (a call to itself) */
	TMPL_HS_DONE,
};

/* What one HTML pass shares. */
struct tmpl_hc {
	struct tmpl *t;
	struct tmpl_error *err;
	unsigned depth;
	size_t budget;		/* ops and bytes it may still read */
};

_Static_assert(sizeof(struct tmpl_hctx) == 8 + TMPL_H_NAME,
	       "struct tmpl_hctx must have no padding: it is compared whole");

static bool tmpl_h_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool tmpl_h_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool tmpl_h_eq(const struct tmpl_hctx *a, const struct tmpl_hctx *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* tmpl_h_in_tag - states inside a start or end tag, before a value */
static bool tmpl_h_in_tag(uint8_t state)
{
	return state == TMPL_H_TAG_NAME || state == TMPL_H_BEFORE_ATTR ||
	       state == TMPL_H_ATTR_NAME || state == TMPL_H_AFTER_ATTR;
}

/*
 * tmpl_h_go - enter state, clearing what it does not use (a tag keeps
 * which element it is, so '>' knows what follows)
 */
static void tmpl_h_go(struct tmpl_hctx *c, enum tmpl_hstate state)
{
	uint8_t elem = c->elem, end_tag = c->end_tag;

	memset(c, 0, sizeof(*c));
	c->state = (uint8_t)state;
	if (tmpl_h_in_tag((uint8_t)state) || state == TMPL_H_BEFORE_VALUE ||
	    state == TMPL_H_VALUE) {
		c->elem = elem;
		c->end_tag = end_tag;
	} else if (state == TMPL_H_RAW) {
		c->elem = elem;
	}
}

/* tmpl_h_name_add - a byte of a tag's or attribute's name */
static void tmpl_h_name_add(struct tmpl_hctx *c, unsigned char ch)
{
	if (c->n >= TMPL_H_NAME - 1) {
		c->n = TMPL_H_NAME;	/* too long to be one we know */
		return;
	}
	c->name[c->n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
}

/* tmpl_h_name_is - is the name so far (known, not too long) word? */
static bool tmpl_h_name_is(const struct tmpl_hctx *c, const char *word)
{
	return !c->dynamic && c->n < TMPL_H_NAME && strlen(word) == c->n &&
	       memcmp(c->name, word, c->n) == 0;
}

/* tmpl_h_tag_named - the tag's name is complete: which element is it */
static void tmpl_h_tag_named(struct tmpl_hctx *c)
{
	uint8_t elem = 0;

	for (size_t i = 0; i < sizeof(tmpl_h_raw_elems) /
			       sizeof(tmpl_h_raw_elems[0]); i++) {
		if (tmpl_h_name_is(c, tmpl_h_raw_elems[i]))
			elem = (uint8_t)(i + 1);
	}
	c->elem = c->end_tag ? 0 : elem;
	tmpl_h_go(c, TMPL_H_BEFORE_ATTR);
}

/*
 * tmpl_h_equals - '=' after an attribute's name: its value is a URL if
 * the name says so, or if a variable makes the name (it might say so)
 */
static void tmpl_h_equals(struct tmpl_hctx *c)
{
	bool url = c->dynamic;

	for (size_t i = 0; i < sizeof(tmpl_h_url_attrs) /
			       sizeof(tmpl_h_url_attrs[0]) && !url; i++)
		url = tmpl_h_name_is(c, tmpl_h_url_attrs[i]);
	tmpl_h_go(c, TMPL_H_BEFORE_VALUE);
	c->url = url;
}

/* tmpl_h_tag_end - '>': text, or the content of a raw-text element */
static void tmpl_h_tag_end(struct tmpl_hctx *c)
{
	if (c->elem != 0 && !c->end_tag)
		tmpl_h_go(c, TMPL_H_RAW);
	else
		tmpl_h_go(c, TMPL_H_TEXT);
}

/*
 * tmpl_h_ref_space - is s[0..len) (from its '&') a whole character
 * reference to a space or a C0 control, which a browser drops from the
 * start of a URL?  A reference cut short by the end of the text counts
 * as not: the URL is then taken to have begun, which is the safe side.
 */
static bool tmpl_h_ref_space(const char *s, size_t len, size_t *ref_len)
{
	static const struct {
		const char *name;
		size_t len;
	} named[] = { { "&Tab;", 5 }, { "&NewLine;", 9 } };
	unsigned long cp = 0;
	size_t i = 2, digits = 0;
	bool hex;

	for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
		if (len >= named[k].len &&
		    memcmp(s, named[k].name, named[k].len) == 0) {
			*ref_len = named[k].len;
			return true;
		}
	}
	if (len < 3 || s[1] != '#')
		return false;
	hex = s[2] == 'x' || s[2] == 'X';
	if (hex)
		i++;
	for (; i < len; i++, digits++) {
		unsigned char ch = (unsigned char)s[i];
		unsigned d;

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (hex && ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (hex && ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			break;
		if (cp < 0x110000)
			cp = cp * (hex ? 16 : 10) + d;
	}
	if (digits == 0 || i == len)
		return false;
	/* the ';' is optional after a number */
	*ref_len = i + (s[i] == ';');
	/* &#0; reads as U+FFFD, not as a control */
	return cp >= 1 && cp <= 0x20;
}

/*
 * tmpl_h_comment - a byte of a comment.  n: 0, 1 dash, 2 two dashes or
 * more (the comment may end at '>'; "<!--" counts as two, for "<!-->"),
 * 3 "--!" (also ends at '>').  A mistake here must only ever end the
 * comment early: then what follows is escaped for HTML, never less.
 */
static void tmpl_h_comment(struct tmpl_hctx *c, unsigned char ch)
{
	if (ch == '-')
		c->n = c->n == 3 ? 1 : (uint8_t)(c->n < 2 ? c->n + 1 : 2);
	else if (ch == '>' && c->n >= 2)
		tmpl_h_go(c, TMPL_H_TEXT);
	else if (ch == '!' && c->n == 2)
		c->n = 3;
	else
		c->n = 0;
}

/*
 * tmpl_h_raw - a byte inside a raw-text element; n counts the bytes of
 * "</name" seen.  Returns false if ch must be read again (a partial
 * match that failed).
 */
static bool tmpl_h_raw(struct tmpl_hctx *c, unsigned char ch)
{
	const char *name = tmpl_h_raw_elems[c->elem - 1];
	size_t total = 2 + strlen(name);
	unsigned char want, low = (unsigned char)(ch >= 'A' && ch <= 'Z' ?
						  ch + 32 : ch);

	if (c->n == total) {
		if (tmpl_h_space(ch) || ch == '/') {
			tmpl_h_go(c, TMPL_H_BEFORE_ATTR);
			c->elem = 0;
			c->end_tag = 1;
			return true;
		}
		if (ch == '>') {
			tmpl_h_go(c, TMPL_H_TEXT);
			return true;
		}
		c->n = 0;
		return false;
	}
	want = (unsigned char)(c->n == 0 ? '<' : c->n == 1 ? '/' :
			       name[c->n - 2]);
	if (low == want) {
		c->n++;
		return true;
	}
	if (c->n == 0)
		return true;
	c->n = 0;
	return false;
}

/* tmpl_h_text - read literal text: where it leaves the context */
static void tmpl_h_text(struct tmpl_hctx *c, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)s[i];
		const char *p;
		size_t ref;

		switch ((enum tmpl_hstate)c->state) {
		case TMPL_H_TEXT:
			p = memchr(s + i, '<', len - i);
			if (p == NULL)
				return;
			i = (size_t)(p - s) + 1;
			tmpl_h_go(c, TMPL_H_LT);
			continue;
		case TMPL_H_LT:
			if (tmpl_h_alpha(ch)) {
				tmpl_h_go(c, TMPL_H_TAG_NAME);
				tmpl_h_name_add(c, ch);
			} else if (ch == '/') {
				tmpl_h_go(c, TMPL_H_END_OPEN);
			} else if (ch == '!') {
				tmpl_h_go(c, TMPL_H_MARKUP);
			} else if (ch == '?') {
				tmpl_h_go(c, TMPL_H_BOGUS);
			} else {
				tmpl_h_go(c, TMPL_H_TEXT);
				continue;	/* "a < b": '<' was text */
			}
			break;
		case TMPL_H_END_OPEN:
			if (tmpl_h_alpha(ch)) {
				tmpl_h_go(c, TMPL_H_TAG_NAME);
				c->end_tag = 1;
				tmpl_h_name_add(c, ch);
			} else if (ch == '>') {
				tmpl_h_go(c, TMPL_H_TEXT);
			} else {
				tmpl_h_go(c, TMPL_H_BOGUS);
				continue;
			}
			break;
		case TMPL_H_TAG_NAME:
			if (tmpl_h_space(ch) || ch == '/') {
				tmpl_h_tag_named(c);
			} else if (ch == '>') {
				tmpl_h_tag_named(c);
				tmpl_h_tag_end(c);
			} else {
				tmpl_h_name_add(c, ch);
			}
			break;
		case TMPL_H_BEFORE_ATTR:
			if (ch == '>') {
				tmpl_h_tag_end(c);
			} else if (!tmpl_h_space(ch) && ch != '/') {
				tmpl_h_go(c, TMPL_H_ATTR_NAME);
				tmpl_h_name_add(c, ch);
			}
			break;
		case TMPL_H_ATTR_NAME:
		case TMPL_H_AFTER_ATTR:
			if (tmpl_h_space(ch)) {
				c->state = TMPL_H_AFTER_ATTR;	/* name kept */
			} else if (ch == '/') {
				tmpl_h_go(c, TMPL_H_BEFORE_ATTR);
			} else if (ch == '=') {
				tmpl_h_equals(c);
			} else if (ch == '>') {
				tmpl_h_tag_end(c);
			} else if (c->state == TMPL_H_ATTR_NAME) {
				tmpl_h_name_add(c, ch);
			} else {
				tmpl_h_go(c, TMPL_H_ATTR_NAME);
				tmpl_h_name_add(c, ch);
			}
			break;
		case TMPL_H_BEFORE_VALUE:
			if (tmpl_h_space(ch))
				break;
			if (ch == '>') {
				tmpl_h_tag_end(c);
				break;
			}
			c->state = TMPL_H_VALUE;	/* url kept */
			c->part = TMPL_URL_START;
			if (ch == '"' || ch == '\'') {
				c->quote = ch;
				break;
			}
			continue;	/* an unquoted value's first byte */
		case TMPL_H_VALUE:
			if (c->quote ? ch == c->quote : tmpl_h_space(ch)) {
				tmpl_h_go(c, TMPL_H_BEFORE_ATTR);
				break;
			}
			if (!c->quote && ch == '>') {
				tmpl_h_tag_end(c);
				break;
			}
			if (!c->url || c->part == TMPL_URL_REST)
				break;
			/* a browser drops spaces and controls first */
			if (ch == '&' && tmpl_h_ref_space(s + i, len - i,
							  &ref)) {
				i += ref;
				continue;
			}
			if (ch > 0x20)
				c->part = TMPL_URL_REST;
			break;
		case TMPL_H_MARKUP:
			if (ch == '-' && c->n == 0) {
				c->n = 1;
			} else if (ch == '-') {
				tmpl_h_go(c, TMPL_H_COMMENT);
				c->n = 2;
			} else {
				tmpl_h_go(c, TMPL_H_BOGUS);
				continue;
			}
			break;
		case TMPL_H_COMMENT:
			tmpl_h_comment(c, ch);
			break;
		case TMPL_H_BOGUS:
			if (ch == '>')
				tmpl_h_go(c, TMPL_H_TEXT);
			break;
		case TMPL_H_RAW:
			if (!tmpl_h_raw(c, ch))
				continue;
			break;
		case TMPL_H_URL:
			if (ch > 0x20) {
				c->part = TMPL_URL_REST;
				return;
			}
			break;
		}
		i++;
	}
}

/*
 * tmpl_h_var - a variable in context c: set how its op escapes, and
 * move c past it.  A value is taken to be non-empty (so a URL has begun
 * after it) and to be anything escaping lets through: after '<' it may
 * start a tag, in a name it makes the name unknown, in a comment it may
 * end in "--".  Each guess errs towards escaping more.
 */
static void tmpl_h_var(struct tmpl_hctx *c, struct tmpl_op *op)
{
	enum tmpl_esc esc = op->raw ? TMPL_ESC_NONE : TMPL_ESC_HTML;
	enum tmpl_check check = TMPL_CHECK_NONE;

	switch ((enum tmpl_hstate)c->state) {
	case TMPL_H_TEXT:
	case TMPL_H_BOGUS:
		break;
	case TMPL_H_LT:
	case TMPL_H_END_OPEN: {
		uint8_t end_tag = c->state == TMPL_H_END_OPEN;

		tmpl_h_go(c, TMPL_H_TAG_NAME);
		c->end_tag = end_tag;
		c->dynamic = 1;
		break;
	}
	case TMPL_H_TAG_NAME:
	case TMPL_H_ATTR_NAME:
		c->dynamic = 1;
		break;
	case TMPL_H_BEFORE_ATTR:
	case TMPL_H_AFTER_ATTR:
		tmpl_h_go(c, TMPL_H_ATTR_NAME);
		c->dynamic = 1;
		break;
	case TMPL_H_BEFORE_VALUE:
		c->state = TMPL_H_VALUE;	/* an unquoted value */
		c->part = TMPL_URL_START;
		/* fall through */
	case TMPL_H_VALUE:
		if (!c->quote && !op->raw)
			esc = TMPL_ESC_HTML_BARE;
		if (c->url) {
			if (c->part != TMPL_URL_REST)
				check = op->raw ? TMPL_CHECK_URL_RAW :
						  TMPL_CHECK_URL;
			else if (!op->raw)
				esc = TMPL_ESC_PERCENT;
			c->part = TMPL_URL_REST;
		}
		break;
	case TMPL_H_MARKUP:
		tmpl_h_go(c, TMPL_H_BOGUS);
		break;
	case TMPL_H_COMMENT:
		c->n = 2;
		break;
	case TMPL_H_RAW:
		c->n = 0;
		break;
	case TMPL_H_URL:
		/* The caller checks the scheme of the whole URL. */
		if (c->part == TMPL_URL_REST && !op->raw)
			esc = TMPL_ESC_PERCENT;
		c->part = TMPL_URL_REST;
		break;
	}
	op->esc = (uint8_t)esc;
	op->check = (uint8_t)check;
	if (check == TMPL_CHECK_NONE && esc == TMPL_ESC_HTML)
		op->type = TMPL_OP_VAR_HTML;
	else if (check == TMPL_CHECK_NONE && esc == TMPL_ESC_NONE)
		op->type = TMPL_OP_VAR_RAW;
	else
		op->type = TMPL_OP_VAR_CTX;
}

/*
 * tmpl_h_join - the context after "either a or b" into r; -1 if no one
 * context can stand for both (then no escaping is right for both).
 */
static int tmpl_h_join(const struct tmpl_hctx *a, const struct tmpl_hctx *b,
		       struct tmpl_hctx *r)
{
	struct tmpl_hctx x = *a, y = *b;

	if (tmpl_h_eq(&x, &y)) {
		*r = x;
		return 0;
	}
	/*
	 * A tag's name that may go on is taken as done (<td{{#w}} width=
	 * "1"{{/w}}>); either side must then be the same element.
	 */
	if (x.state == TMPL_H_TAG_NAME)
		tmpl_h_tag_named(&x);
	if (y.state == TMPL_H_TAG_NAME)
		tmpl_h_tag_named(&y);
	if (x.elem != y.elem || x.end_tag != y.end_tag)
		return -1;
	if (tmpl_h_in_tag(x.state) && tmpl_h_in_tag(y.state)) {
		/* <input {{#c}}checked{{/c}}>: some attribute, or none */
		tmpl_h_go(&x, TMPL_H_AFTER_ATTR);
		x.dynamic = 1;
		*r = x;
		return 0;
	}
	if (x.state != y.state)
		return -1;
	switch ((enum tmpl_hstate)x.state) {
	case TMPL_H_VALUE:
		if (x.quote != y.quote)
			return -1;
		/* fall through */
	case TMPL_H_BEFORE_VALUE:
	case TMPL_H_URL:
		if (x.url != y.url || x.part != y.part) {
			x.url = x.state != TMPL_H_URL;
			x.part = TMPL_URL_EITHER;
		}
		*r = x;
		return 0;
	case TMPL_H_MARKUP:
	case TMPL_H_COMMENT:
	case TMPL_H_RAW:
		/* the one further on ends sooner: the safe side */
		if (x.n < y.n)
			x.n = y.n;
		*r = x;
		return 0;
	default:
		return -1;
	}
}

/* tmpl_h_what - a context in words, for messages */
static const char *tmpl_h_what(const struct tmpl_hctx *c)
{
	switch ((enum tmpl_hstate)c->state) {
	case TMPL_H_TEXT:
		return "text";
	case TMPL_H_LT:
	case TMPL_H_END_OPEN:
	case TMPL_H_TAG_NAME:
	case TMPL_H_BEFORE_ATTR:
	case TMPL_H_ATTR_NAME:
	case TMPL_H_AFTER_ATTR:
	case TMPL_H_BEFORE_VALUE:
		return "a tag";
	case TMPL_H_VALUE:
		return c->quote ? "a quoted attribute value" :
				  "an unquoted attribute value";
	case TMPL_H_MARKUP:
	case TMPL_H_COMMENT:
	case TMPL_H_BOGUS:
		return "a comment";
	case TMPL_H_RAW:
		return "a <script>, <style>, <title> or <textarea>";
	case TMPL_H_URL:
		return "the URL";
	}
	return "?";
}

/*
 * tmpl_h_fail - fail the pass at op i of unit, as tmpl_fail_at does (at
 * the nearest tag before it for text, which has no place of its own)
 */
static int tmpl_h_fail(struct tmpl_hc *hc, size_t unit, size_t i,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int tmpl_h_fail(struct tmpl_hc *hc, size_t unit, size_t i,
		       const char *fmt, ...)
{
	const struct tmpl_unit *un = &hc->t->units[unit];
	struct tmpl_error *err = hc->err;
	va_list ap;
	int n;

	err->line = 1;
	err->column = 1;
	for (size_t k = i + 1; k-- > 0;) {
		if (k < un->nops && un->ops[k].line > 0) {
			err->line = un->ops[k].line;
			err->column = un->ops[k].column;
			break;
		}
	}
	err->in_partial = un->source != 0;
	err->reason = 0;
	n = snprintf(err->message, sizeof(err->message), "%s:%u:%u: ",
		     hc->t->sources[un->source].label, err->line,
		     err->column);
	if (n < 0 || (size_t)n >= sizeof(err->message))
		return -1;
	err->reason = (size_t)n;
	va_start(ap, fmt);
	vsnprintf(err->message + n, sizeof(err->message) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int tmpl_h_unit(struct tmpl_hc *hc, size_t unit,
		       struct tmpl_hctx *c);

/* tmpl_h_copy - a copy of unit's ops, to be read in another context */
static size_t tmpl_h_copy(struct tmpl *t, size_t unit)
{
	struct tmpl_unit *nu, *o;

	t->units = tmpl_grow(t->units, &t->units_cap, t->nunits,
			     sizeof(*t->units));
	o = &t->units[unit];
	nu = &t->units[t->nunits];
	*nu = *o;
	nu->ops = xmalloc((o->nops ? o->nops : 1) * sizeof(*nu->ops));
	if (o->nops)
		memcpy(nu->ops, o->ops, o->nops * sizeof(*nu->ops));
	nu->cap = o->nops;
	nu->indent = o->indent ? xstrdup(o->indent) : NULL;
	nu->hstate = TMPL_HS_NEW;
	nu->h_assumed = false;
	return t->nunits++;
}

/*
 * tmpl_h_call - the partial op i of unit calls, read in context c: the
 * unit read in c (made if need be) becomes the op's target.
 */
static int tmpl_h_call(struct tmpl_hc *hc, size_t unit, size_t i,
		       struct tmpl_hctx *c)
{
	struct tmpl *t = hc->t;
	size_t target = t->units[unit].ops[i].jump;
	size_t origin = t->units[target].origin, k;
	struct tmpl_unit *tu;

	for (k = 0; k < t->nunits; k++) {
		tu = &t->units[k];
		if (tu->origin == origin && tu->hstate != TMPL_HS_NEW &&
		    tmpl_h_eq(&tu->h_in, c))
			break;
	}
	if (k < t->nunits) {
		tu = &t->units[k];
		if (tu->hstate == TMPL_HS_BUSY) {
			/* It calls itself: take it to end where it began. */
			if (!tu->h_assumed) {
				tu->h_call_unit = unit;
				tu->h_call_op = i;
			}
			tu->h_assumed = true;
		} else {
			*c = tu->h_out;
		}
		t->units[unit].ops[i].jump = k;
		return 0;
	}
	if (hc->depth >= TMPL_H_MAX_DEPTH)
		return tmpl_h_fail(hc, unit, i, "sections and partials nest "
				   "too deep to follow the HTML");
	if (t->units[origin].hstate == TMPL_HS_NEW) {
		k = origin;
	} else {
		if (t->nunits >= TMPL_H_MAX_UNITS)
			return tmpl_h_fail(hc, unit, i, "partials used in too "
					   "many HTML contexts");
		k = tmpl_h_copy(t, origin);
	}
	t->units[unit].ops[i].jump = k;
	hc->depth++;
	if (tmpl_h_unit(hc, k, c) < 0)
		return -1;
	hc->depth--;
	return 0;
}

static int tmpl_h_ops(struct tmpl_hc *hc, size_t unit, size_t from,
		      size_t to, struct tmpl_hctx *c);

/* tmpl_h_section - the section whose op is i: c is before, then after */
static int tmpl_h_section(struct tmpl_hc *hc, size_t unit, size_t i,
			  struct tmpl_hctx *c)
{
	const struct tmpl_op *op = &hc->t->units[unit].ops[i];
	bool inverted = op->type == TMPL_OP_INVERTED;
	size_t end = op->jump;
	struct tmpl_hctx start = *c, body, joined;

	if (hc->depth >= TMPL_H_MAX_DEPTH)
		return tmpl_h_fail(hc, unit, i, "sections and partials nest "
				   "too deep to follow the HTML");
	for (;;) {
		body = start;
		hc->depth++;
		if (tmpl_h_ops(hc, unit, i + 1, end, &body) < 0)
			return -1;
		hc->depth--;
		op = &hc->t->units[unit].ops[i];
		if (inverted)
			break;
		/* A list's next item starts where the last one ended. */
		if (tmpl_h_join(&start, &body, &joined) < 0)
			goto mismatch;
		if (tmpl_h_eq(&joined, &start))
			break;
		start = joined;
	}
	if (tmpl_h_join(c, &body, &joined) < 0)
		goto mismatch;
	*c = joined;
	return 0;

mismatch:
	return tmpl_h_fail(hc, unit, i, "section '%.*s' ends inside %s but "
			   "begins inside %s, so what follows cannot be "
			   "escaped right (close inside a section the tags, "
			   "quotes and comments it opens)", (int)op->len,
			   op->text, tmpl_h_what(&body), tmpl_h_what(&start));
}

/* tmpl_h_ops - read ops [from, to) of unit on from context c */
static int tmpl_h_ops(struct tmpl_hc *hc, size_t unit, size_t from,
		      size_t to, struct tmpl_hctx *c)
{
	for (size_t i = from; i < to; i++) {
		struct tmpl_op *op = &hc->t->units[unit].ops[i];

		if (hc->budget < op->len + 1)
			return tmpl_h_fail(hc, unit, i, "the template's "
					   "sections are too many and too "
					   "deep to follow the HTML");
		hc->budget -= op->len + 1;
		switch (op->type) {
		case TMPL_OP_TEXT:
			tmpl_h_text(c, op->text, op->len);
			break;
		case TMPL_OP_VAR_HTML:
		case TMPL_OP_VAR_RAW:
		case TMPL_OP_VAR_CTX:
			tmpl_h_var(c, op);
			break;
		case TMPL_OP_SECTION:
		case TMPL_OP_INVERTED:
			if (tmpl_h_section(hc, unit, i, c) < 0)
				return -1;
			i = hc->t->units[unit].ops[i].jump;
			break;
		case TMPL_OP_END:
			break;
		case TMPL_OP_PARTIAL:
			if (tmpl_h_call(hc, unit, i, c) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

/* tmpl_h_unit - read a whole unit from context c (then after it) */
static int tmpl_h_unit(struct tmpl_hc *hc, size_t unit,
		       struct tmpl_hctx *c)
{
	struct tmpl_unit *un = &hc->t->units[unit];

	un->hstate = TMPL_HS_BUSY;
	un->h_in = *c;
	if (tmpl_h_ops(hc, unit, 0, un->nops, c) < 0)
		return -1;
	un = &hc->t->units[unit];
	if (un->h_assumed && !tmpl_h_eq(c, &un->h_in))
		return tmpl_h_fail(hc, un->h_call_unit, un->h_call_op,
				   "partial '%s' includes itself here, and "
				   "ends inside %s but begins inside %s",
				   hc->t->sources[un->source].name,
				   tmpl_h_what(c), tmpl_h_what(&un->h_in));
	un->h_out = *c;
	un->hstate = TMPL_HS_DONE;
	return 0;
}

/* tmpl_h_pass - set every variable's escaping from its context */
static int tmpl_h_pass(struct tmpl *t, struct tmpl_error *err)
{
	struct tmpl_hc hc = { .t = t, .err = err, .depth = 0 };
	struct tmpl_hctx c;
	size_t work = 0;

	for (size_t u = 0; u < t->nunits; u++) {
		for (size_t i = 0; i < t->units[u].nops; i++)
			work += t->units[u].ops[i].len + 1;
	}
	/* Real templates read each op a few times at most. */
	hc.budget = 64 * work + 1000000;
	memset(&c, 0, sizeof(c));
	c.state = t->escape == TMPL_ESCAPE_URL ? TMPL_H_URL : TMPL_H_TEXT;
	return tmpl_h_unit(&hc, 0, &c);
}

/* tmpl_compile - compile the template and, through it, its partials */
int tmpl_compile(const char *src, size_t len, const struct tmpl_params *p,
		 struct tmpl **t_r, struct tmpl_error *err)
{
	static const struct tmpl_params defaults = {
		.file = NULL, .escape = TMPL_ESCAPE_NONE,
	};
	struct tmpl_cc cc;
	struct tmpl *t;
	bool *seen;

	*t_r = NULL;
	memset(err, 0, sizeof(*err));
	if (p == NULL)
		p = &defaults;
	t = xcalloc(1, sizeof(*t));
	t->escape = p->escape;
	t->sources = tmpl_grow(NULL, &t->sources_cap, 0, sizeof(*t->sources));
	memset(&t->sources[0], 0, sizeof(t->sources[0]));
	buf_append(&t->sources[0].text, src, len);
	t->sources[0].label = xstrdup(p->file ? p->file : "template");
	t->sources[0].found = true;
	t->nsources = 1;
	t->units = tmpl_grow(NULL, &t->units_cap, 0, sizeof(*t->units));
	memset(&t->units[0], 0, sizeof(t->units[0]));
	t->nunits = 1;

	cc.t = t;
	cc.p = p;
	cc.err = err;
	if (tmpl_compile_unit(&cc, 0, 0) < 0) {
		tmpl_free(&t);
		return -1;
	}
	seen = xcalloc(t->nunits, sizeof(*seen));
	tmpl_collect_top(t, 0, seen, NULL);
	free(seen);
	if ((p->escape == TMPL_ESCAPE_HTML || p->escape == TMPL_ESCAPE_URL) &&
	    tmpl_h_pass(t, err) < 0) {
		tmpl_free(&t);
		return -1;
	}
	tmpl_number_names(t);
	if (p->crlf)
		tmpl_text_crlf(t);
	t->text_8bit = tmpl_find_8bit(t);
	*t_r = t;
	return 0;
}

/* tmpl_free - free a compiled template and set *tp to NULL */
void tmpl_free(struct tmpl **tp)
{
	struct tmpl *t = *tp;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nunits; i++) {
		free(t->units[i].ops);
		free(t->units[i].indent);
	}
	for (i = 0; i < t->nsources; i++) {
		free(t->sources[i].name);
		free(t->sources[i].label);
		buf_free(&t->sources[i].text);
	}
	for (i = 0; i < t->nowned; i++)
		free(t->owned[i]);
	free(t->owned);
	free(t->units);
	free(t->sources);
	free(t->segs);
	free(t->top);
	free(t);
	*tp = NULL;
}

/* tmpl_top_names - report the root names gathered at compile time */
void tmpl_top_names(const struct tmpl *t, tmpl_name_fn *fn, void *ctx)
{
	size_t i;

	for (i = 0; i < t->ntop; i++)
		fn(ctx, t->top[i].name, t->top[i].len, t->top[i].line,
		   t->top[i].column);
}

/* What one tmpl_names() call shares. */
struct tmpl_walk {
	const struct tmpl *t;
	tmpl_names_fn *fn;
	void *ctx;
	bool *seen;		/* [origin * 2 + in a section]: walked */
};

/* tmpl_walk_unit - report the names of a unit called at depth */
static void tmpl_walk_unit(struct tmpl_walk *w, size_t unit, unsigned depth)
{
	const struct tmpl *t = w->t;
	const struct tmpl_unit *un = &t->units[unit];
	struct tmpl_name n = {
		.file = t->sources[un->source].label,
		.in_partial = un->source != 0,
	};

	for (size_t i = 0; i < un->nops; i++) {
		const struct tmpl_op *op = &un->ops[i];
		size_t key;

		switch (op->type) {
		case TMPL_OP_VAR_HTML:
		case TMPL_OP_VAR_RAW:
		case TMPL_OP_VAR_CTX:
		case TMPL_OP_SECTION:
		case TMPL_OP_INVERTED:
			if (op->nseg > 0) {
				n.name = op->text;
				n.len = op->len;
				n.in_section = depth > 0;
				n.section = op->type == TMPL_OP_SECTION ||
					    op->type == TMPL_OP_INVERTED;
				n.line = op->line;
				n.column = op->column;
				w->fn(w->ctx, &n);
			}
			if (op->type == TMPL_OP_SECTION ||
			    op->type == TMPL_OP_INVERTED)
				depth++;
			break;
		case TMPL_OP_END:
			depth--;
			break;
		case TMPL_OP_PARTIAL:
			key = t->units[op->jump].origin * 2 + (depth > 0);
			if (!w->seen[key]) {
				w->seen[key] = true;
				tmpl_walk_unit(w, op->jump, depth);
			}
			break;
		case TMPL_OP_TEXT:
			break;
		}
	}
}

/* tmpl_names - report every name the template and its partials use */
void tmpl_names(const struct tmpl *t, tmpl_names_fn *fn, void *ctx)
{
	struct tmpl_walk w = { t, fn, ctx, NULL };

	w.seen = xcalloc(2 * t->nunits, sizeof(*w.seen));
	tmpl_walk_unit(&w, 0, 0);
	free(w.seen);
}

/* --- rendering ---------------------------------------------------------- */

enum tmpl_frame_kind {
	TMPL_FRAME_ONCE,	/* a section entered with one value */
	TMPL_FRAME_LIST,	/* a section repeated per list item */
	TMPL_FRAME_CALL,	/* a partial: where to return to */
};

struct tmpl_frame {
	enum tmpl_frame_kind kind;
	size_t unit;		/* CALL: the caller's unit */
	size_t pc;		/* CALL: return pc; sections: the opener */
	struct tmpl_value list;	/* LIST */
	size_t i;
	size_t n;
};

/*
 * What one render remembers of root-level lookups: outside sections the
 * context is the root alone, so a name's value cannot change.
 */
struct tmpl_root_cache {
	uint64_t have;
	struct tmpl_value v[TMPL_NAME_CACHE];
};

/* tmpl_lookup_slow - resolve op's name on the context stack (the spec) */
static void tmpl_lookup_slow(const struct tmpl *t,
			     const struct tmpl_data *d,
			     const struct tmpl_value *ctx, size_t nctx,
			     const struct tmpl_op *op, struct tmpl_value *v,
			     struct tmpl_root_cache *rc)
{
	const struct tmpl_seg *seg;
	struct tmpl_value obj;
	size_t i, k;

	if (op->nseg == 0) {
		*v = ctx[nctx - 1];
		return;
	}
	/* Not before: a template whose only names are "." has no segs. */
	seg = &t->segs[op->seg];
	if (nctx == 1 && op->name_id >= 0 &&
	    (rc->have & (1ULL << op->name_id))) {
		*v = rc->v[op->name_id];
		i = 1;
		goto rest;
	}
	/* The first part is searched for outward; the rest only within it. */
	for (i = nctx; i > 0; i--)
		if (ctx[i - 1].kind == TMPL_OBJECT &&
		    d->get(d, &ctx[i - 1], seg[0].name, seg[0].len, v))
			break;
	if (i == 0)
		v->kind = TMPL_MISSING;
	if (nctx == 1 && op->name_id >= 0) {
		rc->v[op->name_id] = *v;
		rc->have |= 1ULL << op->name_id;
	}
	if (i == 0)
		return;
rest:
	for (k = 1; k < op->nseg; k++) {
		obj = *v;
		if (obj.kind != TMPL_OBJECT ||
		    !d->get(d, &obj, seg[k].name, seg[k].len, v)) {
			v->kind = TMPL_MISSING;
			return;
		}
	}
}

/*
 * tmpl_lookup - a root-level name already looked up, at the cost of a
 * load; the rest through tmpl_lookup_slow
 */
static inline void tmpl_lookup(const struct tmpl *t,
			       const struct tmpl_data *d,
			       const struct tmpl_value *ctx, size_t nctx,
			       const struct tmpl_op *op, struct tmpl_value *v,
			       struct tmpl_root_cache *rc)
{
	if (nctx == 1 && op->nseg == 1 && op->name_id >= 0 &&
	    (rc->have & (1ULL << op->name_id))) {
		*v = rc->v[op->name_id];
		return;
	}
	tmpl_lookup_slow(t, d, ctx, nctx, op, v, rc);
}

/* tmpl_truthy - does a section run; *n is a list's length */
static bool tmpl_truthy(const struct tmpl_data *d, const struct tmpl_value *v,
			size_t *n)
{
	switch (v->kind) {
	case TMPL_MISSING:
	case TMPL_NULL:
		return false;
	case TMPL_BOOL:
		return v->boolean;
	case TMPL_STRING:
		return v->len > 0;
	case TMPL_LIST:
		*n = d->list_len(d, v);
		return *n > 0;
	case TMPL_NUMBER:
	case TMPL_OBJECT:
		break;
	}
	return true;
}

/* tmpl_html_special - the bytes tmpl_put_html escapes */
static const bool tmpl_html_special[256] = {
	['&'] = true, ['<'] = true, ['>'] = true, ['"'] = true,
	['\''] = true,
};

/* tmpl_put_html - append s with & < > " ' escaped */
static void tmpl_put_html(struct buf *out, const char *s, size_t len)
{
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		const char *rep;

		if (!tmpl_html_special[(unsigned char)s[i]])
			continue;
		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		buf_append(out, s + run, i - run);
		buf_append_str(out, rep);
		run = i + 1;
	}
	buf_append(out, s + run, len - run);
}

/* tmpl_put - append a value; lists, objects and nothing render as "" */
static void tmpl_put(struct buf *out, const struct tmpl_value *v, bool html)
{
	switch (v->kind) {
	case TMPL_STRING:
	case TMPL_NUMBER:
		if (html)
			tmpl_put_html(out, v->str, v->len);
		else
			buf_append(out, v->str, v->len);
		break;
	case TMPL_BOOL:
		buf_append_str(out, v->boolean ? "true" : "false");
		break;
	case TMPL_MISSING:
	case TMPL_NULL:
	case TMPL_LIST:
	case TMPL_OBJECT:
		break;
	}
}

/*
 * tmpl_url_safe - may s start a URL in an href?  It must have no scheme
 * (a relative URL) or http, https or mailto.  The scheme is read as a
 * browser reads it, after dropping leading spaces and controls and every
 * tab and line break; and, as Go's html/template does, more strictly:
 * whatever comes before a ':' that no '/', '?' or '#' precedes is the
 * scheme, even if a browser would not take it for one.  An unescaped
 * value (raw) with '&' there fails: a character reference such as
 * "&colon;" could make a ':' that is not there yet.
 */
static bool tmpl_url_safe(const char *s, size_t len, bool raw)
{
	static const char *const safe[] = { "http", "https", "mailto" };
	char scheme[8];
	size_t i = 0, n = 0;

	while (i < len && (unsigned char)s[i] <= 0x20)
		i++;
	for (; i < len; i++) {
		char c = s[i];

		if (c == '\t' || c == '\n' || c == '\r')
			continue;
		if (c == ':')
			break;
		if (c == '/' || c == '?' || c == '#')
			return true;
		if (raw && c == '&')
			return false;
		if (n < sizeof(scheme))
			scheme[n] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		n++;
	}
	if (i == len)
		return true;
	for (size_t k = 0; k < sizeof(safe) / sizeof(safe[0]); k++) {
		if (strlen(safe[k]) == n && memcmp(scheme, safe[k], n) == 0)
			return true;
	}
	return false;
}

/*
 * tmpl_put_bare - append s escaped for an unquoted attribute value: as
 * tmpl_put_html, and the bytes that would end the value or start another
 * attribute (spaces, '=', '`') as numeric references
 */
static void tmpl_put_bare(struct buf *out, const char *s, size_t len)
{
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!tmpl_h_space(c) && c != '=' && c != '`' && c != '&' &&
		    c != '<' && c != '>' && c != '"' && c != '\'')
			continue;
		buf_append(out, s + run, i - run);
		buf_printf(out, "&#%u;", c);
		run = i + 1;
	}
	buf_append(out, s + run, len - run);
}

/* tmpl_pct - the bytes percent-encoding encodes: all but A-Z a-z 0-9 -._~ */
static const bool tmpl_pct[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x0_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x1_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1,	/* 0x2_ */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,	/* 0x3_ */
	1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 0x4_ */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0,	/* 0x5_ */
	1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 0x6_ */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1,	/* 0x7_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x8_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x9_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0xA_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0xB_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0xC_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0xD_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0xE_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0xF_ */
};

/* tmpl_put_percent - append s percent-encoded (RFC 3986, section 2) */
static void tmpl_put_percent(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *o;

	buf_reserve(out, 3 * len);
	o = out->data + out->len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!tmpl_pct[c]) {
			*o++ = (char)c;
			continue;
		}
		o[0] = '%';
		o[1] = hex[c >> 4];
		o[2] = hex[c & 15];
		o += 3;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

/*
 * tmpl_put_ctx - append a value escaped as its place asks (op->esc),
 * after op->check; false if it failed the check and TMPL_UNSAFE_URL went
 * in its place
 */
static bool tmpl_put_ctx(struct buf *out, const struct tmpl_value *v,
			 const struct tmpl_op *op)
{
	const char *s = "";
	size_t len = 0;

	switch (v->kind) {
	case TMPL_STRING:
	case TMPL_NUMBER:
		s = v->str;
		len = v->len;
		break;
	case TMPL_BOOL:
		s = v->boolean ? "true" : "false";
		len = strlen(s);
		break;
	case TMPL_MISSING:
	case TMPL_NULL:
	case TMPL_LIST:
	case TMPL_OBJECT:
		break;
	}
	if (op->check != TMPL_CHECK_NONE &&
	    !tmpl_url_safe(s, len, op->check == TMPL_CHECK_URL_RAW)) {
		buf_append_str(out, TMPL_UNSAFE_URL);
		return false;
	}
	switch ((enum tmpl_esc)op->esc) {
	case TMPL_ESC_NONE:
		buf_append(out, s, len);
		break;
	case TMPL_ESC_HTML:
		tmpl_put_html(out, s, len);
		break;
	case TMPL_ESC_HTML_BARE:
		tmpl_put_bare(out, s, len);
		break;
	case TMPL_ESC_PERCENT:
		tmpl_put_percent(out, s, len);
		break;
	}
	return true;
}

/* tmpl_note_unsafe - count a replaced URL; the first one's place */
static void tmpl_note_unsafe(const struct tmpl *t, const struct tmpl_unit *u,
			     const struct tmpl_op *op, struct tmpl_notes *notes)
{
	if (notes == NULL || notes->unsafe_urls++ > 0)
		return;
	notes->file = t->sources[u->source].label;
	notes->line = op->line;
	notes->column = op->column;
	notes->name = op->text;
	notes->name_len = op->len;
}

/*
 * What tmpl_render_mail() learns while rendering: the output is clean
 * mail text until a byte or a line says otherwise.
 */
struct tmpl_mail {
	bool clean;
	bool dot;		/* a line may start with '.' */
	bool prev_eq;		/* the last byte out was '=' */
	size_t line;		/* bytes on the current line so far */
};

/* tmpl_mail_text - account for a TEXT op just appended */
static void tmpl_mail_text(struct tmpl_mail *m, const struct tmpl_op *op)
{
	if (!op->mail_ok || (m->prev_eq && op->len > 0 && op->text[0] == '_'))
		m->clean = false;
	if (op->dot_line || (op->dot_first && m->line == 0))
		m->dot = true;
	if (op->has_crlf) {
		if (m->line + op->head > TMPL_MAIL_LINE_MAX)
			m->clean = false;
		m->line = op->tail;
	} else {
		m->line += op->len;
	}
	if (op->len > 0)
		m->prev_eq = op->text[op->len - 1] == '=';
}

/*
 * tmpl_mail_special - bytes a value may not hold in clean mail text (or,
 * for '=', only when "_" follows): one table lookup per byte.
 */
static const bool tmpl_mail_special[256] = {
	[0] = true, ['\r'] = true, ['\n'] = true, ['='] = true,
	[0x80 ... 0xff] = true,
};

/* tmpl_mail_value - account for a value just appended at out[from..] */
static void tmpl_mail_value(struct tmpl_mail *m, const struct buf *out,
			    size_t from)
{
	const unsigned char *p = (const unsigned char *)out->data + from;
	size_t n = out->len - from;

	if (n == 0)
		return;
	if (m->prev_eq && p[0] == '_')
		m->clean = false;
	if (m->line == 0 && p[0] == '.')
		m->dot = true;
	for (size_t k = 0; k < n && m->clean; k++) {
		if (!tmpl_mail_special[p[k]])
			continue;
		if (p[k] != '=' || (k + 1 < n && p[k + 1] == '_'))
			m->clean = false;
	}
	m->line += n;
	m->prev_eq = p[n - 1] == '=';
}

/*
 * tmpl_run - run the ops of unit 0, and of the partials it calls; into
 * out, or (enc) encoded into enc through out.  Inlined into each caller,
 * so that the mail and plain renders do not test for enc.
 */
static inline __attribute__((always_inline))
int tmpl_run(const struct tmpl *t, const struct tmpl_data *data,
	     struct buf *out, struct tmpl_mail *m, struct tmpl_notes *notes,
	     struct buf *enc)
{
	/*
	 * The context stack holds the root and one value per entered
	 * section; partial calls are limited to the same depth, which also
	 * stops a partial that includes itself outside any section.
	 */
	struct tmpl_value ctx[TMPL_MAX_DEPTH + 1];
	struct tmpl_frame fr[2 * TMPL_MAX_DEPTH];
	struct tmpl_root_cache rc;
	size_t nctx = 1, nfr = 0, ncalls = 0;
	size_t unit = 0, pc = 0, n = 0;
	size_t ecol = 0;	/* enc: the output column out starts at */
	const struct tmpl_unit *u = &t->units[0];
	struct tmpl_value v;

	ctx[0] = data->root;
	rc.have = 0;
	for (;;) {
		const struct tmpl_op *op;
		struct tmpl_frame *f;

		if (pc == u->nops) {
			/* Sections are balanced per unit: only calls remain. */
			if (nfr == 0) {
				if (enc != NULL)
					t->encode(enc, out->data, out->len,
						  out->len, ecol);
				return 0;
			}
			f = &fr[--nfr];
			ncalls--;
			unit = f->unit;
			pc = f->pc;
			u = &t->units[unit];
			continue;
		}
		op = &u->ops[pc];
		switch (op->type) {
		case TMPL_OP_TEXT:
			if (enc != NULL && op->enc != NULL) {
				/*
				 * out holds what is not encoded yet, from
				 * column ecol: encode it up to the first
				 * line end, then copy what was encoded
				 */
				buf_append(out, op->text, op->mid);
				t->encode(enc, out->data, out->len, out->len,
					  ecol);
				buf_reset(out);
				buf_append(enc, op->enc, op->enc_len);
				ecol = op->enc_col;
				buf_append(out, op->text + op->rest,
					   op->len - op->rest);
				pc++;
				break;
			}
			buf_append(out, op->text, op->len);
			if (m != NULL)
				tmpl_mail_text(m, op);
			pc++;
			break;
		case TMPL_OP_VAR_HTML:
		case TMPL_OP_VAR_RAW: {
			size_t from = out->len;

			tmpl_lookup(t, data, ctx, nctx, op, &v, &rc);
			tmpl_put(out, &v, op->type == TMPL_OP_VAR_HTML);
			if (m != NULL)
				tmpl_mail_value(m, out, from);
			pc++;
			break;
		}
		case TMPL_OP_VAR_CTX: {
			size_t from = out->len;

			tmpl_lookup(t, data, ctx, nctx, op, &v, &rc);
			if (!tmpl_put_ctx(out, &v, op))
				tmpl_note_unsafe(t, u, op, notes);
			if (m != NULL)
				tmpl_mail_value(m, out, from);
			pc++;
			break;
		}
		case TMPL_OP_SECTION:
			tmpl_lookup(t, data, ctx, nctx, op, &v, &rc);
			if (!tmpl_truthy(data, &v, &n)) {
				pc = op->jump + 1;
				break;
			}
			if (nctx > TMPL_MAX_DEPTH)
				return -1;
			f = &fr[nfr++];
			f->pc = pc;
			if (v.kind == TMPL_LIST) {
				f->kind = TMPL_FRAME_LIST;
				f->list = v;
				f->i = 0;
				f->n = n;
				data->list_item(data, &v, 0, &ctx[nctx++]);
			} else {
				f->kind = TMPL_FRAME_ONCE;
				ctx[nctx++] = v;
			}
			pc++;
			break;
		case TMPL_OP_INVERTED:
			tmpl_lookup(t, data, ctx, nctx, op, &v, &rc);
			pc = tmpl_truthy(data, &v, &n) ? op->jump + 1 : pc + 1;
			break;
		case TMPL_OP_END:
			if (u->ops[op->jump].type == TMPL_OP_INVERTED) {
				pc++;
				break;
			}
			f = &fr[nfr - 1];
			nctx--;
			if (f->kind == TMPL_FRAME_LIST && ++f->i < f->n) {
				data->list_item(data, &f->list, f->i,
						&ctx[nctx++]);
				pc = f->pc + 1;
			} else {
				nfr--;
				pc++;
			}
			break;
		case TMPL_OP_PARTIAL:
			if (ncalls == TMPL_MAX_DEPTH)
				return -1;
			f = &fr[nfr++];
			f->kind = TMPL_FRAME_CALL;
			f->unit = unit;
			f->pc = pc + 1;
			ncalls++;
			unit = op->jump;
			u = &t->units[unit];
			pc = 0;
			break;
		}
	}
}

bool tmpl_text_8bit(const struct tmpl *t)
{
	return t->text_8bit;
}

bool tmpl_constant(const struct tmpl *t)
{
	const struct tmpl_unit *u = &t->units[0];

	for (size_t i = 0; i < u->nops; i++)
		if (u->ops[i].type != TMPL_OP_TEXT)
			return false;
	return true;
}

int tmpl_render(const struct tmpl *t, const struct tmpl_data *data,
		struct buf *out)
{
	return tmpl_run(t, data, out, NULL, NULL, NULL);
}

int tmpl_render_encoded(const struct tmpl *t, const struct tmpl_data *data,
			struct buf *tmp, struct buf *out,
			struct tmpl_notes *notes)
{
	int ret;

	if (t->encode == NULL)
		return -1;
	buf_reset(tmp);
	ret = tmpl_run(t, data, tmp, NULL, notes, out);
	buf_reset(tmp);
	return ret;
}

int tmpl_render_mail_dot(const struct tmpl *t, const struct tmpl_data *data,
			 struct buf *out, bool *clean_r, bool *dot_r,
			 struct tmpl_notes *notes)
{
	struct tmpl_mail m = { .clean = t->crlf, .line = 0 };
	int ret = tmpl_run(t, data, out, &m, notes, NULL);

	*clean_r = m.clean && m.line <= TMPL_MAIL_LINE_MAX;
	*dot_r = m.dot;
	return ret;
}

int tmpl_render_mail(const struct tmpl *t, const struct tmpl_data *data,
		     struct buf *out, bool *clean_r, struct tmpl_notes *notes)
{
	bool dot;

	return tmpl_render_mail_dot(t, data, out, clean_r, &dot, notes);
}
