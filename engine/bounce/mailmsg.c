/*
 * mailmsg - a small RFC 5322 / MIME reader (see mailmsg.h).
 *
 * Every scan is over a span whose length it knows; memchr and memmem do
 * the searching, so a hostile input costs a pass per nesting level at
 * most (MAILMSG_DEPTH_MAX passes), never a pass per part.
 */
#include "mailmsg.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* line_end - the offset just past the line starting at i (past its LF) */
static size_t line_end(const char *p, size_t len, size_t i)
{
	const char *nl = memchr(p + i, '\n', len - i);

	return nl != NULL ? (size_t)(nl - p) + 1 : len;
}

/* line_is_blank - is p[i..e) an empty line (nothing but CR LF)? */
static bool line_is_blank(const char *p, size_t i, size_t e)
{
	while (i < e && (p[i] == '\r' || p[i] == '\n'))
		i++;
	return i == e;
}

void mailmsg_split(const char *p, size_t len, struct mailmsg_span *head,
		   struct mailmsg_span *body)
{
	size_t i = 0;

	while (i < len) {
		size_t e = line_end(p, len, i);

		if (line_is_blank(p, i, e)) {
			head->p = p;
			head->len = i;
			body->p = p + e;
			body->len = len - e;
			return;
		}
		i = e;
	}
	head->p = p;
	head->len = len;
	body->p = p + len;
	body->len = 0;
}

bool mailmsg_field_next(const struct mailmsg_span *head, size_t *pos,
			struct mailmsg_field *f)
{
	const char *p = head->p;
	size_t len = head->len, i = *pos;

	while (i < len) {
		size_t e = line_end(p, len, i), n = i, end;

		/* name: printable, no space, up to the colon */
		while (n < e && p[n] != ':' && p[n] > ' ' && p[n] < 127)
			n++;
		if (n == i || n >= e || p[n] != ':' ||
		    p[i] == ' ' || p[i] == '\t') {
			i = e;
			continue;
		}
		/* the value runs on over continuation lines */
		end = e;
		while (end < len && (p[end] == ' ' || p[end] == '\t'))
			end = line_end(p, len, end);
		f->name.p = p + i;
		f->name.len = n - i;
		f->value.p = p + n + 1;
		f->value.len = end - n - 1;
		*pos = end;
		return true;
	}
	*pos = len;
	return false;
}

bool mailmsg_name_is(const struct mailmsg_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name.len == n && strncasecmp(f->name.p, name, n) == 0;
}

static bool is_fold_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void mailmsg_unfold(const char *v, size_t len, struct buf *out)
{
	size_t i = 0, start = out->len;
	bool space = false;

	while (i < len && is_fold_space(v[i]))
		i++;
	for (; i < len; i++) {
		if (is_fold_space(v[i])) {
			space = true;
			continue;
		}
		if (space)
			buf_putc(out, ' ');
		space = false;
		buf_putc(out, v[i]);
	}
	if (out->len == start)
		buf_append(out, "", 0);	/* so out->data is never NULL */
}

bool mailmsg_header(const struct mailmsg_span *head, const char *name,
		    struct buf *out)
{
	struct mailmsg_field f;
	size_t pos = 0;

	buf_reset(out);
	while (mailmsg_field_next(head, &pos, &f)) {
		if (mailmsg_name_is(&f, name)) {
			mailmsg_unfold(f.value.p, f.value.len, out);
			return true;
		}
	}
	return false;
}

static bool is_tspecial_or_space(char c)
{
	return c <= ' ' || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c);
}

bool mailmsg_param(const char *v, size_t len, const char *name, char *out,
		   size_t outsz)
{
	size_t nlen = strlen(name), i = 0;

	/* parameters follow ';'; a ';' inside quotes is skipped below */
	while (i < len) {
		size_t o = 0, n;

		if (v[i] == '"') {	/* a quoted string before a ';' */
			for (i++; i < len && v[i] != '"'; i++)
				if (v[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (v[i++] != ';')
			continue;
		while (i < len && is_fold_space(v[i]))
			i++;
		n = i;
		while (n < len && !is_tspecial_or_space(v[n]))
			n++;
		if (n - i != nlen || strncasecmp(v + i, name, nlen) != 0)
			continue;
		i = n;
		while (i < len && is_fold_space(v[i]))
			i++;
		if (i >= len || v[i] != '=')
			continue;
		i++;
		while (i < len && is_fold_space(v[i]))
			i++;
		if (i < len && v[i] == '"') {
			for (i++; i < len && v[i] != '"'; i++) {
				if (v[i] == '\\' && i + 1 < len)
					i++;
				if (v[i] == '\r' || v[i] == '\n')
					continue;	/* folded */
				if (o + 1 >= outsz)
					return false;
				out[o++] = v[i];
			}
		} else {
			for (; i < len && !is_tspecial_or_space(v[i]); i++) {
				if (o + 1 >= outsz)
					return false;
				out[o++] = v[i];
			}
		}
		if (outsz == 0)
			return false;
		out[o] = '\0';
		return true;
	}
	return false;
}

static void lower_copy(char *out, size_t outsz, const char *p, size_t n)
{
	size_t i;

	if (n >= outsz)
		n = outsz - 1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[n] = '\0';
}

void mailmsg_ctype_parse(const char *v, size_t len, struct mailmsg_ctype *ct)
{
	size_t i = 0, s;

	memset(ct, 0, sizeof(*ct));
	while (i < len && is_fold_space(v[i]))
		i++;
	s = i;
	while (i < len && v[i] != ';' && !is_fold_space(v[i]))
		i++;
	if (i - s < 3 || i - s >= sizeof(ct->type) ||
	    memchr(v + s, '/', i - s) == NULL)
		strcpy(ct->type, "text/plain");
	else
		lower_copy(ct->type, sizeof(ct->type), v + s, i - s);
	if (!mailmsg_param(v, len, "boundary", ct->boundary,
			   sizeof(ct->boundary)))
		ct->boundary[0] = '\0';
	if (mailmsg_param(v, len, "report-type", ct->report_type,
			  sizeof(ct->report_type)))
		lower_copy(ct->report_type, sizeof(ct->report_type),
			   ct->report_type, strlen(ct->report_type));
}

/* part_fill - the header facts of a part whose span is p[0..len) */
static void part_fill(struct mailmsg_part *part, const char *p, size_t len,
		      int depth, int parent, const char *default_type)
{
	struct mailmsg_field f;
	size_t pos = 0;
	bool have_ct = false;

	memset(part, 0, sizeof(*part));
	mailmsg_split(p, len, &part->head, &part->body);
	part->depth = depth;
	part->parent = parent;
	while (mailmsg_field_next(&part->head, &pos, &f)) {
		if (!have_ct && mailmsg_name_is(&f, "Content-Type")) {
			mailmsg_ctype_parse(f.value.p, f.value.len, &part->ct);
			have_ct = true;
		} else if (mailmsg_name_is(&f, "Content-Transfer-Encoding")) {
			char cte[32];
			size_t i = 0, n;

			while (i < f.value.len && is_fold_space(f.value.p[i]))
				i++;
			n = f.value.len - i;
			while (n > 0 && is_fold_space(f.value.p[i + n - 1]))
				n--;
			lower_copy(cte, sizeof(cte), f.value.p + i, n);
			if (strcmp(cte, "base64") == 0)
				part->cte = MAILMSG_CTE_BASE64;
			else if (strcmp(cte, "quoted-printable") == 0)
				part->cte = MAILMSG_CTE_QP;
		}
	}
	if (!have_ct)
		strcpy(part->ct.type, default_type);
}

/*
 * delimiter - if the line p[i..e) is "--boundary" or "--boundary--"
 * (trailing space allowed), 1 or 2; else 0
 */
static int delimiter(const char *p, size_t i, size_t e, const char *b,
		     size_t blen)
{
	int kind = 1;

	if (e - i < blen + 2 || p[i] != '-' || p[i + 1] != '-' ||
	    memcmp(p + i + 2, b, blen) != 0)
		return 0;
	i += blen + 2;
	if (e - i >= 2 && p[i] == '-' && p[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	while (i < e && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
			 p[i] == '\n'))
		i++;
	return i == e ? kind : 0;
}

/*
 * split_multipart - append the parts of parts[idx]'s body to the table.
 * The line break before a delimiter belongs to the delimiter.
 */
static void split_multipart(struct mailmsg *m, int idx)
{
	struct mailmsg_part *mp = &m->parts[idx];
	const char *p = mp->body.p, *b = mp->ct.boundary;
	const char *dflt = strcmp(mp->ct.type, "multipart/digest") == 0 ?
			   "message/rfc822" : "text/plain";
	size_t len = mp->body.len, blen = strlen(b), i = 0, start = 0;
	bool in_part = false;
	int depth = mp->depth + 1;

	while (i < len) {
		const char *hit;
		size_t e, at;
		int kind;

		/* the next "--boundary" that starts a line */
		hit = memmem(p + i, len - i, "--", 2);
		if (hit == NULL)
			break;
		at = (size_t)(hit - p);
		if (at > 0 && p[at - 1] != '\n') {
			i = at + 1;
			continue;
		}
		e = line_end(p, len, at);
		kind = delimiter(p, at, e, b, blen);
		if (kind == 0) {
			i = at + 2;
			continue;
		}
		if (in_part) {
			size_t end = at;

			if (end > start && p[end - 1] == '\n')
				end--;
			if (end > start && p[end - 1] == '\r')
				end--;
			if (m->nparts >= MAILMSG_PARTS_MAX) {
				m->truncated = true;
				return;
			}
			part_fill(&m->parts[m->nparts++], p + start,
				  end - start, depth, idx, dflt);
			m->parts[idx].children++;
		}
		if (kind == 2)
			return;
		in_part = true;
		start = e;
		i = e;
	}
	/* no closing delimiter: the last part runs to the end */
	if (in_part) {
		if (m->nparts >= MAILMSG_PARTS_MAX) {
			m->truncated = true;
			return;
		}
		part_fill(&m->parts[m->nparts++], p + start, len - start,
			  depth, idx, dflt);
		m->parts[idx].children++;
	}
}

void mailmsg_parse(struct mailmsg *m, const char *p, size_t len)
{
	m->nparts = 1;
	m->truncated = false;
	part_fill(&m->parts[0], p, len, 0, -1, "text/plain");
	/* breadth first: each multipart's children go to the table's end */
	for (size_t i = 0; i < m->nparts; i++) {
		struct mailmsg_part *part = &m->parts[i];

		if (strncmp(part->ct.type, "multipart/", 10) != 0 ||
		    part->ct.boundary[0] == '\0')
			continue;
		if (part->depth >= MAILMSG_DEPTH_MAX) {
			m->truncated = true;
			continue;
		}
		split_multipart(m, (int)i);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void mailmsg_decode_qp(const char *p, size_t len, struct buf *out)
{
	buf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (p[i] != '=') {
			buf_putc(out, p[i]);
			continue;
		}
		/* soft line break: '=', optional space, then EOL or the end
		 * (a part's last line break belongs to the delimiter) */
		{
			size_t k = i + 1;

			while (k < len && (p[k] == ' ' || p[k] == '\t'))
				k++;
			if (k == len || p[k] == '\n' || p[k] == '\r') {
				if (k < len && p[k] == '\r' && k + 1 < len &&
				    p[k + 1] == '\n')
					k++;
				i = k;
				continue;
			}
		}
		if (i + 2 < len && (hi = hexval(p[i + 1])) >= 0 &&
		    (lo = hexval(p[i + 2])) >= 0) {
			buf_putc(out, (char)(hi * 16 + lo));
			i += 2;
			continue;
		}
		buf_putc(out, '=');	/* a stray '=' stays as it is */
	}
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void mailmsg_decode_base64(const char *p, size_t len, struct buf *out)
{
	unsigned acc = 0;
	int bits = 0;

	buf_reserve(out, len / 4 * 3 + 3);
	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)p[i]);

		if (p[i] == '=')
			bits = 0;	/* padding ends a group */
		if (v < 0)
			continue;	/* line breaks, noise */
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_putc(out, (char)(acc >> bits & 0xff));
		}
	}
}

void mailmsg_decode(const struct mailmsg_part *part, struct buf *out)
{
	switch (part->cte) {
	case MAILMSG_CTE_QP:
		mailmsg_decode_qp(part->body.p, part->body.len, out);
		break;
	case MAILMSG_CTE_BASE64:
		mailmsg_decode_base64(part->body.p, part->body.len, out);
		break;
	default:
		buf_append(out, part->body.p, part->body.len);
		break;
	}
}
