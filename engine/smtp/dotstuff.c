/*
 * dotstuff - a message body made safe for SMTP DATA (see dotstuff.h).
 *
 * volley's own messages already have CRLF line ends, so the common case
 * is a run of ordinary bytes up to the next CR or LF: found with memchr
 * (or, for a whole body, 16 bytes at a time while they are copied) and
 * copied whole.  Only line starts and line ends are looked at byte by
 * byte.
 */
#include "dotstuff.h"

#include <stdbool.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
 * dotstuff_copy_line - copy p[0..n) to o up to the first CR or LF and
 * return how many bytes that is (n if none).  Mail lines are short
 * (76 bytes in encoded parts), so one pass that finds the line end while
 * it copies, 16 bytes at a time, beats two memchr calls and a memcpy.
 * Whole blocks are stored: o must have room for n bytes (the caller's
 * output never holds fewer than its remaining input).
 */
static inline size_t dotstuff_copy_line(const char *p, size_t n, char *o)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');

	/* two blocks a turn: most lines are 76 bytes and a CRLF */
	for (; n - i >= 32; i += 32) {
		__m128i x = _mm_loadu_si128((const __m128i *)(p + i));
		__m128i y = _mm_loadu_si128((const __m128i *)(p + i + 16));
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_or_si128(_mm_cmpeq_epi8(x, cr),
				     _mm_cmpeq_epi8(x, lf))) |
			(unsigned)_mm_movemask_epi8(
			_mm_or_si128(_mm_cmpeq_epi8(y, cr),
				     _mm_cmpeq_epi8(y, lf))) << 16;

		_mm_storeu_si128((__m128i *)(o + i), x);
		_mm_storeu_si128((__m128i *)(o + i + 16), y);
		if (m != 0)
			return i + (size_t)__builtin_ctz(m);
	}
	for (; n - i >= 16; i += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(p + i));
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_or_si128(_mm_cmpeq_epi8(x, cr),
				     _mm_cmpeq_epi8(x, lf)));

		_mm_storeu_si128((__m128i *)(o + i), x);
		if (m != 0)
			return i + (size_t)__builtin_ctz(m);
	}
#endif
	for (; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			break;
		o[i] = p[i];
	}
	return i;
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
		size_t run;

		/* at a line start */
		if (*p == '.' && stuff)
			*o++ = '.';
		run = dotstuff_copy_line(p, (size_t)(end - p), o);
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
