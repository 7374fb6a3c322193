/*
 * dotstuff - a message body made safe for SMTP DATA (see dotstuff.h).
 *
 * volley's own messages already have CRLF line ends, so the common case
 * is a run of ordinary bytes up to the next CR or LF: found with memchr
 * and copied whole.  Only line starts and line ends are looked at byte
 * by byte.
 */
#include "dotstuff.h"

#include <stdbool.h>
#include <string.h>

/* dotstuff_next_eol - the first CR or LF in p[0..len), or NULL */
static const char *dotstuff_next_eol(const char *p, size_t len)
{
	const char *lf = memchr(p, '\n', len);
	const char *cr = memchr(p, '\r', lf != NULL ? (size_t)(lf - p) : len);

	return cr != NULL ? cr : lf;
}

void dotstuff_step(struct buf *out, const char *body, size_t len, bool stuff,
		   struct dotstuff_pos *pos, size_t max)
{
	const char *p = body + pos->in, *end = body + len;
	bool mid_line = pos->mid_line;	/* locals: the stores through o */
	char *o, *start, *stop;		/* may alias anything */

	if (pos->done)
		return;
	/*
	 * A line's piece stops at max, but a dot before it and the CRLF
	 * after it, then the final CRLF and "." line, may add 8.
	 */
	buf_reserve(out, max + 8);
	start = o = out->data + out->len;
	stop = start + max;
	while (p < end && o < stop) {
		const char *eol;
		size_t run;

		if (!mid_line) {
			if (*p == '.' && stuff)
				*o++ = '.';
			mid_line = true;
		}
		eol = dotstuff_next_eol(p, (size_t)(end - p));
		run = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
		if (run > (size_t)(stop - o))
			run = o < stop ? (size_t)(stop - o) : 0;	/* long line */
		memcpy(o, p, run);
		o += run;
		p += run;
		if (p != eol)
			continue;
		/* a line end: CRLF, bare LF or lone CR all become CRLF */
		*o++ = '\r';
		*o++ = '\n';
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			p += 2;
		else
			p++;
		mid_line = false;
	}
	if (p == end) {
		if (len > 0 && end[-1] != '\n' && end[-1] != '\r') {
			*o++ = '\r';
			*o++ = '\n';
		}
		if (stuff) {
			memcpy(o, ".\r\n", 3);
			o += 3;
		}
		pos->done = true;
	}
	pos->in = (size_t)(p - body);
	pos->mid_line = mid_line;
	out->len += (size_t)(o - start);
	out->data[out->len] = '\0';
}

size_t dotstuff_len(const char *body, size_t len, bool stuff)
{
	const char *p = body, *end = body + len;
	size_t n = 0;

	/* each turn starts at a line start */
	while (p < end) {
		const char *eol = dotstuff_next_eol(p, (size_t)(end - p));

		if (*p == '.' && stuff)
			n++;
		if (eol == NULL) {
			n += (size_t)(end - p);
			break;
		}
		n += (size_t)(eol - p) + 2;
		if (*eol == '\r' && eol + 1 < end && eol[1] == '\n')
			p = eol + 2;
		else
			p = eol + 1;
	}
	if (len > 0 && end[-1] != '\n' && end[-1] != '\r')
		n += 2;
	return stuff ? n + 3 : n;
}

/*
 * dotstuff_body - the body whole, in one pass: dotstuff_step's work
 * without a budget to keep, the hot path of every message up to a piece
 * (test_dotstuff holds the two to the same bytes).  Returns the bytes
 * added.
 */
static size_t dotstuff_body(struct buf *out, const char *body, size_t len,
			    bool stuff)
{
	const char *p = body, *end = body + len;
	char *o, *start;

	/*
	 * Worst case: every byte a '.' at a line start or a lone line end,
	 * each becoming two bytes; then CRLF "." CRLF.
	 */
	buf_reserve(out, 2 * len + 5);
	start = o = out->data + out->len;
	while (p < end) {
		const char *eol;
		size_t run;

		/* at a line start */
		if (*p == '.' && stuff)
			*o++ = '.';
		eol = dotstuff_next_eol(p, (size_t)(end - p));
		run = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
		memcpy(o, p, run);
		o += run;
		p += run;
		if (p == end)
			break;
		*o++ = '\r';
		*o++ = '\n';
		if (*p == '\r' && p + 1 < end && p[1] == '\n')
			p += 2;
		else
			p++;
	}
	if (len > 0 && end[-1] != '\n' && end[-1] != '\r') {
		*o++ = '\r';
		*o++ = '\n';
	}
	if (stuff) {
		memcpy(o, ".\r\n", 3);
		o += 3;
	}
	out->len += (size_t)(o - start);
	out->data[out->len] = '\0';
	return (size_t)(o - start);
}

void dotstuff_data(struct buf *out, const char *body, size_t len)
{
	dotstuff_body(out, body, len, true);
}

size_t dotstuff_crlf(struct buf *out, const char *body, size_t len)
{
	return dotstuff_body(out, body, len, false);
}
