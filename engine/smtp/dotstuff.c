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
	size_t start;
	char *o;

	if (pos->done)
		return;
	/*
	 * A line's piece stops at max, but a dot before it and the CRLF
	 * after it, then the final CRLF and "." line, may add 8.
	 */
	buf_reserve(out, max + 8);
	start = out->len;
	o = out->data + out->len;
	while (p < end && (size_t)(o - out->data) - start < max) {
		size_t left, run;
		const char *eol;

		if (!pos->mid_line) {
			if (*p == '.' && stuff)
				*o++ = '.';
			pos->mid_line = true;
		}
		left = max - ((size_t)(o - out->data) - start);
		eol = dotstuff_next_eol(p, (size_t)(end - p));
		run = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
		if (run > left)
			run = left;	/* a long line: the rest next time */
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
		pos->mid_line = false;
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
	out->len = (size_t)(o - out->data);
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
 * Worst case for the whole body at once: every byte a '.' at a line
 * start or a lone line end, each becoming two bytes; then CRLF "." CRLF.
 */
void dotstuff_data(struct buf *out, const char *body, size_t len)
{
	struct dotstuff_pos pos = { 0 };

	dotstuff_step(out, body, len, true, &pos, 2 * len + 5);
}

size_t dotstuff_crlf(struct buf *out, const char *body, size_t len)
{
	struct dotstuff_pos pos = { 0 };
	size_t before = out->len;

	dotstuff_step(out, body, len, false, &pos, 2 * len + 5);
	return out->len - before;
}
