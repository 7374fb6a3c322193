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
	size_t head;
	size_t tail;
	/*
	 * The first name segment's number among the template's distinct
	 * first segments (-1 past TMPL_NAME_CACHE): a render looks each
	 * root-level name up once, however often the template uses it.
	 */
	int name_id;
};

/* one part of a dotted name, split at compile time */
struct tmpl_seg {
	const char *name;
	size_t len;
};

struct tmpl_source {
	char *name;		/* the partial's name; NULL for unit 0 */
	struct buf text;
	bool found;		/* false: the loader had no such partial */
};

struct tmpl_unit {
	struct tmpl_op *ops;
	size_t nops;
	size_t cap;
	size_t source;		/* index in tmpl.sources */
	char *indent;		/* prefixed to each non-empty line; or NULL */
	size_t indent_len;
	bool indent_first;	/* false: the first line goes on an open line */
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
	char **owned;		/* CRLF copies of text ops (params->crlf) */
	size_t nowned;
	bool crlf;
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
	char file_buf[160];
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
	n = snprintf(err->message, sizeof(err->message), "%s:%u:%u: ",
		     u->file, line, column);
	if (n < 0 || (size_t)n >= sizeof(err->message))
		return -1;
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
	*unit_r = t->nunits++;
	/* Registered before compiling, so a self-inclusion finds it. */
	return tmpl_compile_unit(cc, *unit_r, u->nesting + 1);
}

/* tmpl_tag - compile one tag; ind is the indentation of a standalone line */
static int tmpl_tag(struct tmpl_uc *u, const struct tmpl_tag *tag,
		    const char *ind, size_t ind_len)
{
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
		tmpl_add_name_op(u, TMPL_OP_VAR_RAW, tag);
		return 0;
	default:
		tmpl_add_name_op(u, u->cc->t->escape == TMPL_ESCAPE_HTML ?
				 TMPL_OP_VAR_HTML : TMPL_OP_VAR_RAW, tag);
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
	if (s->name) {
		snprintf(u.file_buf, sizeof(u.file_buf), "partial '%s'",
			 s->name);
		u.file = u.file_buf;
	} else {
		u.file = cc->p->file ? cc->p->file : "template";
	}

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
			t->owned = xrealloc(t->owned, (t->nowned + 1) *
					    sizeof(*t->owned));
			t->owned[t->nowned++] = b.data;
			op->text = b.data;
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
	tmpl_number_names(t);
	if (p->crlf)
		tmpl_text_crlf(t);
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

/* tmpl_lookup - resolve op's name on the context stack, as the spec says */
/*
 * What one render remembers of root-level lookups: outside sections the
 * context is the root alone, so a name's value cannot change.
 */
struct tmpl_root_cache {
	uint64_t have;
	struct tmpl_value v[TMPL_NAME_CACHE];
};

static void tmpl_lookup(const struct tmpl *t, const struct tmpl_data *d,
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

/* tmpl_put_html - append s with & < > " ' escaped */
static void tmpl_put_html(struct buf *out, const char *s, size_t len)
{
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		const char *rep;

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
 * What tmpl_render_mail() learns while rendering: the output is clean
 * mail text until a byte or a line says otherwise.
 */
struct tmpl_mail {
	bool clean;
	bool prev_eq;		/* the last byte out was '=' */
	size_t line;		/* bytes on the current line so far */
};

/* tmpl_mail_text - account for a TEXT op just appended */
static void tmpl_mail_text(struct tmpl_mail *m, const struct tmpl_op *op)
{
	if (!op->mail_ok || (m->prev_eq && op->len > 0 && op->text[0] == '_'))
		m->clean = false;
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
	for (size_t k = 0; k < n && m->clean; k++) {
		if (!tmpl_mail_special[p[k]])
			continue;
		if (p[k] != '=' || (k + 1 < n && p[k + 1] == '_'))
			m->clean = false;
	}
	m->line += n;
	m->prev_eq = p[n - 1] == '=';
}

/* tmpl_run - run the ops of unit 0, and of the partials it calls */
static int tmpl_run(const struct tmpl *t, const struct tmpl_data *data,
		    struct buf *out, struct tmpl_mail *m)
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
	const struct tmpl_unit *u = &t->units[0];
	struct tmpl_value v;

	ctx[0] = data->root;
	rc.have = 0;
	for (;;) {
		const struct tmpl_op *op;
		struct tmpl_frame *f;

		if (pc == u->nops) {
			/* Sections are balanced per unit: only calls remain. */
			if (nfr == 0)
				return 0;
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

int tmpl_render(const struct tmpl *t, const struct tmpl_data *data,
		struct buf *out)
{
	return tmpl_run(t, data, out, NULL);
}

int tmpl_render_mail(const struct tmpl *t, const struct tmpl_data *data,
		     struct buf *out, bool *clean_r)
{
	struct tmpl_mail m = { .clean = t->crlf, .prev_eq = false, .line = 0 };
	int ret = tmpl_run(t, data, out, &m);

	*clean_r = m.clean && m.line <= TMPL_MAIL_LINE_MAX;
	return ret;
}
