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

/*
 * dotstuff_body - the body with CRLF line ends, each line start doubled
 * when stuff is set and it is a dot.  Returns the bytes added.
 */
static size_t dotstuff_body(struct buf *out, const char *body, size_t len,
			    bool stuff)
{
	const char *p = body, *end = body + len;
	size_t start;
	char *o;

	/*
	 * Worst case: every byte a '.' at a line start or a lone line end,
	 * each becoming two bytes; then CRLF "." CRLF.
	 */
	buf_reserve(out, 2 * len + 5);
	start = out->len;
	o = out->data + out->len;
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
		/* a line end: CRLF, bare LF or lone CR all become CRLF */
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
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
	return out->len - start;
}

void dotstuff_data(struct buf *out, const char *body, size_t len)
{
	dotstuff_body(out, body, len, true);
	buf_append(out, ".\r\n", 3);
}

size_t dotstuff_crlf(struct buf *out, const char *body, size_t len)
{
	return dotstuff_body(out, body, len, false);
}
