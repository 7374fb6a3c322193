/*
 * mime_enc - MIME encoders for the send path (see mime_enc.h).
 *
 * Every message volley sends passes through here once per recipient:
 * bodies as quoted-printable or base64, headers folded and, where they
 * hold non-ASCII text, written as RFC 2047 encoded-words.  The body
 * encoders are written for throughput: byte classes come from tables, the
 * worst-case output size is reserved once, and bytes are written through
 * a plain pointer.  The header encoders are written for safety on hostile
 * input instead: recipient data must never be able to start a new header
 * or make a line that a relay would reject, so every header is built with
 * its longest line measured and is taken back if that passes 998.
 */
#include "mime_enc.h"


#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base64.h"
#include "utf8.h"

/* A line broken by a soft break: 75 characters and the '='. */
#define MIME_QP_SOFT (MIME_LINE_MAX - 1)
/* 57 bytes make one 76-character base64 line. */
#define MIME_B64_LINE_IN (MIME_LINE_MAX / 4 * 3)
/* RFC 5322 2.1.1, and RFC 2045 2.7 for 7bit bodies. */
#define MIME_7BIT_LINE_MAX 998

/* RFC 2047 2: an encoded-word is at most 75 characters ... */
#define MIME_EW_MAX 75
/* ... of which "=?UTF-8?Q?" and "?=" are overhead ... */
#define MIME_EW_OVERHEAD 12
#define MIME_EW_PAYLOAD (MIME_EW_MAX - MIME_EW_OVERHEAD)
/* ... and a header line holding one is at most 76. */
#define MIME_EW_LINE 76
/*
 * Plain text no longer than this between two stretches that must be
 * encoded is encoded with them: one encoded-word costs less than closing
 * and reopening one (12 characters of overhead).
 */
#define MIME_EW_GAP 16
/* With less payload room than this left, a fresh line beats a stub word. */
#define MIME_EW_MIN_ROOM 16

static const char mime_hex[] = "0123456789ABCDEF";
/*
 * Quoted-printable classes: literal, '.' (literal except first on a line),
 * space or tab (literal except before a line end), always =XX, CR, LF.
 * The last three share the QP_STOP bit so that one OR over a block of
 * bytes tells whether any of them needs a closer look.
 */
enum {
	QP_LIT = 0,
	QP_DOT = 1,
	QP_WSP = 2,
	QP_STOP = 4,
	QP_ENC = QP_STOP,
	QP_CR = QP_STOP | 1,
	QP_LF = QP_STOP | 2,
};

#define L QP_LIT
#define D QP_DOT
#define W QP_WSP
#define E QP_ENC
#define R QP_CR
#define N QP_LF
static const unsigned char mime_qp_class[256] = {
	E, E, E, E, E, E, E, E, E, W, N, E, E, R, E, E,	/* 0x0_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0x1_ */
	W, L, L, L, L, L, L, L, L, L, L, L, L, L, D, L,	/* 0x2_ */
	L, L, L, L, L, L, L, L, L, L, L, L, L, E, L, L,	/* 0x3_ */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,	/* 0x4_ */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,	/* 0x5_ */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,	/* 0x6_ */
	L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, E,	/* 0x7_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0x8_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0x9_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0xA_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0xB_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0xC_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0xD_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0xE_ */
	E, E, E, E, E, E, E, E, E, E, E, E, E, E, E, E,	/* 0xF_ */
};
#undef L
#undef D
#undef W
#undef E
#undef R
#undef N

/* Header byte classes (bits). */
#define H_BAD		0x01	/* NUL, CR, LF: could end the header */
#define H_WSP		0x02	/* space, tab: where folding may happen */
#define H_CTL		0x04	/* other controls: not text (RFC 5322 VCHAR) */
#define H_8BIT		0x08
#define H_ATEXT		0x10	/* may stand in an atom (RFC 5322 3.2.3) */
#define H_QTEXT		0x20	/* literal in Q in *text (RFC 2047 4.2) */
#define H_QPHRASE	0x40	/* literal in Q in a phrase (RFC 2047 5(3)) */

#define B H_BAD
#define W H_WSP
#define C H_CTL
#define X H_8BIT
#define P (H_ATEXT | H_QTEXT | H_QPHRASE)
#define T (H_ATEXT | H_QTEXT)
#define Q H_QTEXT
#define A H_ATEXT
static const unsigned char mime_hdr_class[256] = {
	B, C, C, C, C, C, C, C, C, W, B, C, C, B, C, C,	/* 0x0_ */
	C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, C,	/* 0x1_ */
	W, P, Q, T, T, T, T, T, Q, Q, P, P, Q, P, Q, P,	/* 0x2_ */
	P, P, P, P, P, P, P, P, P, P, Q, Q, Q, A, Q, A,	/* 0x3_ */
	Q, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,	/* 0x4_ */
	P, P, P, P, P, P, P, P, P, P, P, Q, Q, Q, T, A,	/* 0x5_ */
	T, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,	/* 0x6_ */
	P, P, P, P, P, P, P, P, P, P, P, T, T, T, T, C,	/* 0x7_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0x8_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0x9_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0xA_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0xB_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0xC_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0xD_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0xE_ */
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,	/* 0xF_ */
};
#undef B
#undef W
#undef C
#undef X
#undef P
#undef T
#undef Q
#undef A

/* mime_buf_end - the write position after a buf_reserve */
static inline char *mime_buf_end(struct buf *b)
{
	return b->data + b->len;
}

/* mime_buf_done - account for bytes written through a pointer */
static inline void mime_buf_done(struct buf *b, char *o)
{
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
}

/*
 * mime_7bit_word_ok - no byte of the 8 at p has the high bit set or is
 * NUL or CR: the common case, tested a word at a time.
 */
static inline bool mime_7bit_word_ok(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;
	uint64_t w, cr;

	memcpy(&w, p, 8);
	cr = w ^ (ones * '\r');
	return ((w | ((w - ones) & ~w) | ((cr - ones) & ~cr)) & highs) == 0;
}

/* mime_7bit_scan - mime_is_7bit(), and whether every line end is CRLF */
static bool mime_7bit_scan(const char *src, size_t len, bool *crlf_r)
{
	const unsigned char *p = (const unsigned char *)src;
	const unsigned char *end = p + len;
	bool crlf = true;

	/* One line at a time: its length, then its bytes. */
	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		const unsigned char *stop = nl != NULL ? nl : end;
		const unsigned char *q = p;

		if (stop > p && stop[-1] == '\r' && nl != NULL)
			stop--;	/* CRLF: the CR is the line end */
		else if (nl != NULL)
			crlf = false;
		if ((size_t)(stop - p) > MIME_7BIT_LINE_MAX)
			return false;
		while (stop - q >= 8 && mime_7bit_word_ok(q))
			q += 8;
		for (; q < stop; q++) {
			if (*q >= 0x80 || *q == '\0' || *q == '\r')
				return false;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	*crlf_r = crlf;
	return true;
}

bool mime_is_7bit(const char *src, size_t len)
{
	bool crlf;

	return mime_7bit_scan(src, len, &crlf);
}

bool mime_is_7bit_crlf(const char *src, size_t len)
{
	bool crlf;

	return mime_7bit_scan(src, len, &crlf) && crlf;
}

void mime_crlf(struct buf *out, const char *src, size_t len)
{
	const char *p = src;
	const char *end = src + len;
	char *o;

	if (len == 0)
		return;
	/* Worst case: every byte a lone LF or CR. */
	buf_reserve(out, len * 2);
	o = mime_buf_end(out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl != NULL ? nl : end;
		const char *cr;
		bool pair = false;

		/* Lone CRs are rare: memchr skips over text that has none. */
		while ((cr = memchr(p, '\r', (size_t)(stop - p))) != NULL) {
			memcpy(o, p, (size_t)(cr - p));
			o += cr - p;
			*o++ = '\r';
			*o++ = '\n';
			p = cr + 1;
			if (p == nl) {
				pair = true;
				break;
			}
		}
		memcpy(o, p, (size_t)(stop - p));
		o += stop - p;
		if (nl == NULL)
			break;
		if (!pair) {
			*o++ = '\r';
			*o++ = '\n';
		}
		p = nl + 1;
	}
	mime_buf_done(out, o);
}

/* mime_qp_eol - true if the input line ends at p */
static inline bool mime_qp_eol(const unsigned char *p, const unsigned char *end)
{
	return p == end || *p == '\r' || *p == '\n';
}

/* mime_qp_soft - end the output line with a soft break */
static inline char *mime_qp_soft(char *o, char **line)
{
	*o++ = '=';
	*o++ = '\r';
	*o++ = '\n';
	*line = o;
	return o;
}

/* mime_qp_escape - write c as =XX, breaking first unless it fits */
static inline char *mime_qp_escape(char *o, char **line, unsigned char c,
				   bool eol)
{
	size_t col = (size_t)(o - *line);

	/* The last token of a line may use column 76: no '=' follows it. */
	if (col + 3 > MIME_QP_SOFT && !(eol && col + 3 <= MIME_LINE_MAX))
		o = mime_qp_soft(o, line);
	o[0] = '=';
	o[1] = mime_hex[c >> 4];
	o[2] = mime_hex[c & 15];
	return o + 3;
}

/*
 * mime_qp_plain - the length of the run at p (at most n bytes) of bytes
 * that are literal wherever they are: printable ASCII but '='.  (Space,
 * '.' and tab are not in it when they end or start a line: the caller
 * sees to those.)  Up to avail >= n bytes may be read.  With SSE2, 16
 * bytes at a time, each block stored to o as it is read: o has room for
 * the run and 32 bytes more (mime_qp_encode reserves them: the run ends
 * at most 17 bytes before the last byte stored), and what is stored past
 * the run is written over later.
 */
static inline size_t mime_qp_plain(const unsigned char *p, size_t n,
				   size_t avail, char *o)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i ctl = _mm_set1_epi8(0x20);	/* signed: 8-bit too */
	const __m128i eq = _mm_set1_epi8('=');
	const __m128i del = _mm_set1_epi8(0x7f);

	for (; i < n && avail - i >= 16; i += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(p + i));
		__m128i odd = _mm_or_si128(_mm_cmpeq_epi8(x, eq),
					   _mm_cmpeq_epi8(x, del));
		__m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, ctl), odd);
		unsigned m = (unsigned)_mm_movemask_epi8(bad);

		_mm_storeu_si128((__m128i *)(o + i), x);
		if (m != 0) {
			i += (size_t)__builtin_ctz(m);
			return i < n ? i : n;
		}
	}
	if (i >= n)
		return n;
#endif
	for (; i < n; i++) {
		unsigned char c = p[i];

		if (c < 0x20 || c >= 0x7f || c == '=')
			break;
		o[i] = (char)c;
	}
	return i;
}

/*
 * mime_qp_copy - copy the literal bytes at p that fit on the line
 * before lim, as the byte-by-byte loop would: not a '.' that starts the
 * line, not a space that ends one.
 */
static inline const unsigned char *
mime_qp_copy(const unsigned char *p, const unsigned char *lim,
	     const unsigned char *end, char **op, bool line_start)
{
	size_t r;

	if (line_start && *p == '.')
		return p;
	r = mime_qp_plain(p, (size_t)(lim - p), (size_t)(end - p), *op);
	if (r > 0 && p[r - 1] == ' ' &&
	    (p + r == end || p[r] == '\r' || p[r] == '\n'))
		r--;
	*op += r;
	return p + r;
}

/*
 * Output is at most 3 bytes per input byte, plus a 3-byte soft break per
 * at least 73 of those, plus the final CRLF: 3n + 9n/73 + 2.
 */
#define MIME_QP_WORST(n) ((n) * 3 + (n) / 8 + 8)

/*
 * mime_qp_run - encode src[0..stop) into out from column col, the bytes
 * from stop to len read only to decide what comes before them, as
 * mime_qp_encode reads what follows a byte; returns the column it ends
 * at.  A line that is not ended at stop is left open.
 */
static size_t mime_qp_run(struct buf *out, const char *src, size_t len,
			  size_t stop_at, size_t col0)
{
	const unsigned char *p = (const unsigned char *)src;
	const unsigned char *end = p + len, *stop = p + stop_at;
	char *o, *line;

	/* and room for mime_qp_plain's blocks past the end (see there) */
	buf_reserve(out, MIME_QP_WORST(stop_at) + 32);
	o = mime_buf_end(out);
	line = o - col0;
	while (p < stop) {
		size_t col = (size_t)(o - line);
		unsigned char c, k;
		bool eol;

		/*
		 * The hot loop: bytes that go as they are, while the line has
		 * room for them without a look at what follows.
		 */
		if (col < MIME_QP_SOFT) {
			size_t room = MIME_QP_SOFT - col;
			const unsigned char *lim =
				(size_t)(stop - p) > room ? p + room : stop;

			p = mime_qp_copy(p, lim, end, &o, o == line);
			/*
			 * It stops at all that may need encoding; of that,
			 * only a tab inside a line goes as it is.
			 */
			if (p < lim && *p == '\t' && !mime_qp_eol(p + 1, end)) {
				*o++ = (char)*p++;
				continue;
			}
			/*
			 * and an '=' (every HTML attribute has one) that fits
			 * on the line as =3D: what the escape below would
			 * write, without its look at what follows
			 */
			if (p < lim && *p == '=' &&
			    (size_t)(o - line) + 3 <= MIME_QP_SOFT) {
				o[0] = '=';
				o[1] = '3';
				o[2] = 'D';
				o += 3;
				p++;
				continue;
			}
			if (p == stop)
				break;
		}

		c = *p++;
		k = mime_qp_class[c];
		eol = mime_qp_eol(p, end);
		switch (k) {
		case QP_CR:
			if (p < end && *p == '\n')
				p++;
			/* fall through */
		case QP_LF:
			*o++ = '\r';
			*o++ = '\n';
			line = o;
			break;
		case QP_ENC:
			o = mime_qp_escape(o, &line, c, eol);
			/* Non-ASCII text comes in runs: stay for the rest. */
			while (p < stop && mime_qp_class[*p] == QP_ENC &&
			       (size_t)(o - line) + 3 <= MIME_QP_SOFT) {
				c = *p++;
				o[0] = '=';
				o[1] = mime_hex[c >> 4];
				o[2] = mime_hex[c & 15];
				o += 3;
			}
			break;
		default:
			/* RFC 2045 6.7 (3): no whitespace may end a line. */
			if (k == QP_WSP && eol) {
				o = mime_qp_escape(o, &line, c, eol);
				break;
			}
			if ((size_t)(o - line) >= MIME_QP_SOFT && !eol)
				o = mime_qp_soft(o, &line);
			if (k == QP_DOT && o == line) {
				o = mime_qp_escape(o, &line, c, eol);
				break;
			}
			*o++ = (char)c;
			break;
		}
	}
	if (stop == end && o != line) {
		*o++ = '\r';
		*o++ = '\n';
		line = o;
	}
	mime_buf_done(out, o);
	return (size_t)(o - line);
}

void mime_qp_encode(struct buf *out, const char *src, size_t len)
{
	if (len > 0)
		mime_qp_run(out, src, len, len, 0);
}

size_t mime_qp_encode_from(struct buf *out, const char *src, size_t len,
			   size_t stop, size_t col)
{
	if (len == 0)
		return col;
	return mime_qp_run(out, src, len, stop, col);
}

void mime_base64_encode(struct buf *out, const void *src, size_t len)
{
	const unsigned char *p = src;
	char *o;

	if (len == 0)
		return;
	buf_reserve(out, (len + 2) / 3 * 4 +
			 (len + MIME_B64_LINE_IN - 1) / MIME_B64_LINE_IN * 2);
	o = mime_buf_end(out);
	for (; len >= MIME_B64_LINE_IN; len -= MIME_B64_LINE_IN) {
		o = base64_block(o, p, MIME_B64_LINE_IN);
		p += MIME_B64_LINE_IN;
		*o++ = '\r';
		*o++ = '\n';
	}
	if (len > 0) {
		o = base64_block(o, p, len);
		*o++ = '\r';
		*o++ = '\n';
	}
	mime_buf_done(out, o);
}

/*
 * Headers.
 */

/* mime_is_wsp - space or tab: the only places a header may be folded */
static inline bool mime_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}


/* mime_scan - gather s's byte classes; -1 on CR, LF, NUL or bad UTF-8 */
static int mime_scan(const unsigned char *s, size_t n, unsigned char *seen)
{
	unsigned char acc = 0;
	size_t i = 0;

	while (i < n) {
		unsigned char k = mime_hdr_class[s[i]];

		acc |= k;
		if (k & H_8BIT) {
			size_t clen = utf8_char_len(s + i, n - i);

			if (clen == 0)
				return -1;
			i += clen;
		} else {
			i++;
		}
	}
	*seen = acc;
	return (acc & H_BAD) ? -1 : 0;
}

/* mime_has_ew_start - true if s holds "=?", which decoders would parse */
static bool mime_has_ew_start(const unsigned char *s, size_t n)
{
	const unsigned char *q = s;

	while ((q = memchr(q, '=', n - (size_t)(q - s))) != NULL) {
		if (q + 1 < s + n && q[1] == '?')
			return true;
		q++;
	}
	return false;
}

/* mime_fold - a header being written, and how its lines stand */
struct mime_fold {
	struct buf *out;
	size_t start;		/* where the header began, to take it back */
	size_t line;		/* where the current line began */
	size_t longest;		/* longest finished line */
	bool content;		/* the line has a word we may fold after */
	bool ew;		/* the line has an encoded-word: 76 applies */
};

/* mime_col - the current line's length so far */
static inline size_t mime_col(const struct mime_fold *f)
{
	return f->out->len - f->line;
}

/* mime_fold_start - write "Name: " */
static void mime_fold_start(struct mime_fold *f, struct buf *out,
			    const char *name)
{
	f->out = out;
	f->start = out->len;
	f->line = out->len;
	f->longest = 0;
	f->content = false;
	f->ew = false;
	buf_append_str(out, name);
	buf_append(out, ": ", 2);
}

/* mime_fold_measure - note the current line's length */
static void mime_fold_measure(struct mime_fold *f)
{
	if (mime_col(f) > f->longest)
		f->longest = mime_col(f);
}

/* mime_fold_break - end the line; the caller supplies the leading WSP */
static void mime_fold_break(struct mime_fold *f)
{
	mime_fold_measure(f);
	buf_append(f->out, "\r\n", 2);
	f->line = f->out->len;
	f->content = false;
	f->ew = false;
}

/* mime_fold_end - finish the header, or take it back if a line is too long */
static int mime_fold_end(struct mime_fold *f)
{
	mime_fold_measure(f);
	if (f->longest > MIME_HEADER_HARD_MAX) {
		buf_truncate(f->out, f->start);
		return -1;
	}
	buf_append(f->out, "\r\n", 2);
	return 0;
}

/*
 * mime_fold_sep - write the whitespace before a word w columns wide,
 * folding before it (RFC 5322 2.2.3) if the word would pass the limit.
 */
static void mime_fold_sep(struct mime_fold *f, const char *ws, size_t wslen,
			  size_t w)
{
	size_t lim = f->ew ? MIME_EW_LINE : MIME_HEADER_FOLD;

	/*
	 * Folding before whitespace that ends the value would leave a line
	 * of nothing but whitespace, which RFC 5322 3.2.2 forbids.
	 */
	if (f->content && wslen > 0 && w > 0 && mime_col(f) + wslen + w > lim)
		mime_fold_break(f);
	buf_append(f->out, ws, wslen);
}

/* mime_fold_plain - write s as it stands, folding at its whitespace */
static void mime_fold_plain(struct mime_fold *f, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t a = i, b, j;

		while (i < n && mime_is_wsp(u[i]))
			i++;
		b = i;
		while (i < n && !mime_is_wsp(u[i]))
			i++;
		/*
		 * Whitespace ending the value cannot be folded before, so the
		 * last word must leave room for it.
		 */
		for (j = i; j < n && mime_is_wsp(u[j]); j++)
			;
		mime_fold_sep(f, s + a, b - a,
			      i > b && j == n ? n - b : i - b);
		buf_append(f->out, s + b, i - b);
		if (i > b)
			f->content = true;
	}
}

/*
 * mime_fold_quoted - write s as a quoted-string, folding at its
 * whitespace: RFC 5322 3.2.4 allows FWS inside one, and unfolding only
 * removes the CRLF, so the text is unchanged.
 */
static void mime_fold_quoted(struct mime_fold *f, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	buf_putc(f->out, '"');
	f->content = true;
	do {
		size_t a = i, b, w, j;
		char *o;

		while (i < n && mime_is_wsp(u[i]))
			i++;
		b = i;
		while (i < n && !mime_is_wsp(u[i]))
			i++;
		w = i - b + (i == n);
		for (j = b; j < i; j++)
			w += u[j] == '"' || u[j] == '\\';
		mime_fold_sep(f, s + a, b - a, w);
		buf_reserve(f->out, w);
		o = mime_buf_end(f->out);
		for (j = b; j < i; j++) {
			if (u[j] == '"' || u[j] == '\\')
				*o++ = '\\';
			*o++ = (char)u[j];
		}
		if (i == n)
			*o++ = '"';
		mime_buf_done(f->out, o);
		if (w > 0)
			f->content = true;
	} while (i < n);
}

/* mime_ew - how a header's encoded-words are written */
struct mime_ew {
	bool b;			/* B encoding rather than Q */
	unsigned char qlit;	/* class bit of bytes Q writes as they are */
};

/* mime_utf8_step - length of the (already validated) character at p */
static inline size_t mime_utf8_step(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0x80 ? 1 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;

	return len < n ? len : n;
}

/* mime_q_cost - Q-encoded length of one byte */
static inline size_t mime_q_cost(unsigned char c, unsigned char qlit)
{
	return (mime_hdr_class[c] & qlit) || c == ' ' ? 1 : 3;
}

/* mime_q_len - Q-encoded length of s */
static size_t mime_q_len(const unsigned char *s, size_t n, unsigned char qlit)
{
	size_t len = 0, i;

	for (i = 0; i < n; i++)
		len += mime_q_cost(s[i], qlit);
	return len;
}

/* mime_ew_fit - bytes of s, in whole characters, whose encoding fits room */
static size_t mime_ew_fit(const struct mime_ew *ew, const unsigned char *s,
			  size_t n, size_t room)
{
	size_t i = 0, used = 0;

	while (i < n) {
		size_t clen = mime_utf8_step(s + i, n - i);

		if (ew->b) {
			if ((i + clen + 2) / 3 * 4 > room)
				break;
		} else {
			size_t cost = mime_q_len(s + i, clen, ew->qlit);

			if (used + cost > room)
				break;
			used += cost;
		}
		i += clen;
	}
	return i;
}

/* mime_ew_room - payload room for an encoded-word after used columns */
static size_t mime_ew_room(size_t used)
{
	used += MIME_EW_OVERHEAD;
	if (used >= MIME_EW_LINE)
		return 0;
	return MIME_EW_LINE - used < MIME_EW_PAYLOAD ?
	       MIME_EW_LINE - used : MIME_EW_PAYLOAD;
}

/* mime_ew_put - write one encoded-word holding s (fitted by mime_ew_fit) */
static void mime_ew_put(struct mime_fold *f, const struct mime_ew *ew,
			const unsigned char *s, size_t n)
{
	char *o;
	size_t i;

	buf_reserve(f->out, MIME_EW_MAX);
	o = mime_buf_end(f->out);
	memcpy(o, ew->b ? "=?UTF-8?B?" : "=?UTF-8?Q?", 10);
	o += 10;
	if (ew->b) {
		o = base64_block(o, s, n);
	} else {
		for (i = 0; i < n; i++) {
			unsigned char c = s[i];

			if (mime_hdr_class[c] & ew->qlit) {
				*o++ = (char)c;
			} else if (c == ' ') {
				*o++ = '_';
			} else {
				o[0] = '=';
				o[1] = mime_hex[c >> 4];
				o[2] = mime_hex[c & 15];
				o += 3;
			}
		}
	}
	*o++ = '?';
	*o++ = '=';
	mime_buf_done(f->out, o);
}

/*
 * mime_fold_ew - write s as encoded-words after the whitespace ws,
 * filling the current line if there is room and then one word to a line.
 */
static void mime_fold_ew(struct mime_fold *f, const char *ws, size_t wslen,
			 const unsigned char *s, size_t n,
			 const struct mime_ew *ew)
{
	while (n > 0) {
		bool can_fold = f->content && wslen > 0;
		size_t room = mime_ew_room(mime_col(f) + wslen);
		size_t take = mime_ew_fit(ew, s, n, room);

		if (can_fold && (take == 0 ||
				 (take < n && room < MIME_EW_MIN_ROOM))) {
			mime_fold_break(f);
			take = mime_ew_fit(ew, s, n, mime_ew_room(wslen));
		}
		/*
		 * Only a very long name or whitespace run leaves no room, and
		 * then a long line is the lesser evil than an overlong word.
		 */
		if (take == 0)
			take = mime_ew_fit(ew, s, n, MIME_EW_PAYLOAD);
		buf_append(f->out, ws, wslen);
		mime_ew_put(f, ew, s, take);
		f->content = true;
		f->ew = true;
		s += take;
		n -= take;
		/*
		 * Decoders drop whitespace between adjacent encoded-words
		 * (RFC 2047 6.2), so any will do: real spaces in the text
		 * travel inside the words.
		 */
		ws = " ";
		wslen = 1;
	}
}

/*
 * mime_text_word_ew - true if the word [b, c), after whitespace from a,
 * cannot go as plain text: non-ASCII or control bytes, something a
 * decoder would take for an encoded-word, or too long for any line.
 */
static bool mime_text_word_ew(const unsigned char *v, size_t a, size_t b,
			      size_t c, size_t prefix)
{
	size_t i;

	/* Only the first word shares its line with "Name: ". */
	if (c - a + (a == 0 ? prefix : 0) > MIME_HEADER_HARD_MAX)
		return true;
	for (i = b; i < c; i++)
		if (mime_hdr_class[v[i]] & (H_CTL | H_8BIT))
			return true;
	return mime_has_ew_start(v + b, c - b);
}

/*
 * mime_text_run - find the next stretch [*rs, *re) from pos, starting and
 * ending with a word that must be encoded, with short plain gaps inside.
 */
static bool mime_text_run(const unsigned char *v, size_t len, size_t prefix,
			  size_t pos, size_t *rs, size_t *re)
{
	bool found = false;
	size_t i = pos;

	while (i < len) {
		size_t a = i, b;

		while (i < len && mime_is_wsp(v[i]))
			i++;
		b = i;
		while (i < len && !mime_is_wsp(v[i]))
			i++;
		if (i == b) {
			/*
			 * Whitespace ending the value right after an encoded
			 * word goes inside it: after the word it could not be
			 * folded before, and might overrun the line.
			 */
			if (found && a == *re)
				*re = i;
			break;
		}
		if (mime_text_word_ew(v, a, b, i, prefix)) {
			if (!found)
				*rs = b;
			found = true;
			*re = i;
		} else if (found && i - *re > MIME_EW_GAP) {
			break;
		}
	}
	return found;
}

/* mime_text_put - write value's words, encoding those that need it */
static void mime_text_put(struct mime_fold *f, const char *value,
			  size_t len, size_t prefix)
{
	const unsigned char *v = (const unsigned char *)value;
	struct mime_ew ew = { false, H_QTEXT };
	size_t blen = 0, qlen = 0, pos = 0, rs = 0, re = 0;

	/* One encoding for the whole header, so cost it over every run. */
	while (mime_text_run(v, len, prefix, pos, &rs, &re)) {
		blen += (re - rs + 2) / 3 * 4;
		qlen += mime_q_len(v + rs, re - rs, H_QTEXT);
		pos = re;
	}
	ew.b = blen < qlen;

	pos = 0;
	while (mime_text_run(v, len, prefix, pos, &rs, &re)) {
		size_t ws = rs;

		while (ws > pos && mime_is_wsp(v[ws - 1]))
			ws--;
		mime_fold_plain(f, value + pos, ws - pos);
		mime_fold_ew(f, value + ws, rs - ws, v + rs, re - rs, &ew);
		pos = re;
	}
	mime_fold_plain(f, value + pos, len - pos);
}

/* mime_ew_all - write all of s as encoded-words (q: Q's literal class) */
static void mime_ew_all(struct mime_fold *f, const char *s, size_t n,
			unsigned char q)
{
	const unsigned char *u = (const unsigned char *)s;
	struct mime_ew ew;

	ew.qlit = q;
	ew.b = (n + 2) / 3 * 4 < mime_q_len(u, n, q);
	mime_fold_ew(f, "", 0, u, n, &ew);
}

int mime_header_text(struct buf *out, const char *name, const char *value,
		     size_t len)
{
	struct mime_fold f;
	unsigned char seen;
	size_t prefix = strlen(name) + 2;

	if (mime_scan((const unsigned char *)value, len, &seen) < 0)
		return -1;
	mime_fold_start(&f, out, name);
	/*
	 * No word of printable ASCII without "=?" that fits on one line
	 * with "Name: " needs encoding (mime_text_word_ew): mime_text_put
	 * would find no run in its two passes and write it all plain.
	 */
	if (!(seen & (H_CTL | H_8BIT)) && len + prefix <= MIME_HEADER_HARD_MAX &&
	    !mime_has_ew_start((const unsigned char *)value, len))
		mime_fold_plain(&f, value, len);
	else
		mime_text_put(&f, value, len, prefix);
	if (mime_fold_end(&f) == 0)
		return 0;
	/*
	 * Only a whitespace run too long for any line gets here; encoded
	 * whole, the text carries its whitespace inside the words.
	 */
	mime_fold_start(&f, out, name);
	mime_ew_all(&f, value, len, H_QTEXT);
	return mime_fold_end(&f);
}

/* How a display name goes out. */
enum mime_phrase { MIME_ATOMS, MIME_QUOTED, MIME_EWORDS };

/* mime_phrase_kind - the plainest form RFC 5322/2047 allow for s */
static enum mime_phrase mime_phrase_kind(const unsigned char *s, size_t n,
					 unsigned char seen)
{
	size_t i;

	/*
	 * Decoders may find "=?" even inside a quoted-string, though RFC
	 * 2047 5 says not to, so such a name is encoded to be read as is.
	 */
	if ((seen & (H_8BIT | H_CTL)) || mime_has_ew_start(s, n))
		return MIME_EWORDS;
	/* Leading or trailing space would be lost as folding whitespace. */
	if (s[0] == ' ' || s[n - 1] == ' ')
		return MIME_QUOTED;
	for (i = 0; i < n; i++)
		if (s[i] != ' ' && !(mime_hdr_class[s[i]] & H_ATEXT))
			return MIME_QUOTED;
	return MIME_ATOMS;
}

int mime_header_mailbox(struct buf *out, const char *name,
			const char *display, size_t display_len,
			const char *addr, size_t addr_len)
{
	const unsigned char *d = (const unsigned char *)display;
	enum mime_phrase kind = MIME_ATOMS;
	struct mime_fold f;
	unsigned char seen;
	size_t i;

	if (mime_scan(d, display_len, &seen) < 0)
		return -1;
	for (i = 0; i < addr_len; i++)
		if (mime_hdr_class[(unsigned char)addr[i]] & H_BAD)
			return -1;
	if (display_len > 0)
		kind = mime_phrase_kind(d, display_len, seen);

	for (;;) {
		mime_fold_start(&f, out, name);
		if (display_len == 0) {
			buf_append(out, addr, addr_len);
			return mime_fold_end(&f);
		}
		if (kind == MIME_ATOMS)
			mime_fold_plain(&f, display, display_len);
		else if (kind == MIME_QUOTED)
			mime_fold_quoted(&f, display, display_len);
		else
			mime_ew_all(&f, display, display_len, H_QPHRASE);
		mime_fold_sep(&f, " ", 1, addr_len + 2);
		buf_reserve(out, addr_len + 2);
		buf_putc(out, '<');
		buf_append(out, addr, addr_len);
		buf_putc(out, '>');
		if (mime_fold_end(&f) == 0)
			return 0;
		if (kind == MIME_EWORDS)
			return -1;
		/* A word too long for a line: encoded-words can be split. */
		kind = MIME_EWORDS;
	}
}

int mime_header_raw(struct buf *out, const char *name, const char *value,
		    size_t len)
{
	struct mime_fold f;
	size_t i;

	for (i = 0; i < len; i++)
		if (mime_hdr_class[(unsigned char)value[i]] & (H_BAD | H_8BIT))
			return -1;
	mime_fold_start(&f, out, name);
	mime_fold_plain(&f, value, len);
	/*
	 * A structured value cannot be encoded to shorten it, so a token
	 * too long for any line is refused rather than sent to be bounced.
	 */
	return mime_fold_end(&f);
}
