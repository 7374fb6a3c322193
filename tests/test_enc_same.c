/*
 * test_enc_same - the quoted-printable encoder and dot-stuffing give the
 * same bytes as before issue 17 made them faster (16 bytes at a time):
 * the code as it was is kept below, verbatim but renamed (ref_*), and
 * both are run over random text made of the bytes that matter (CR, LF,
 * dots, spaces and tabs before line ends, '=', DEL, controls, UTF-8,
 * runs long and short around the 76-column soft breaks), each input in
 * a buffer of its own size so that ASan sees any write past it; and the
 * encoder in pieces (mime_qp_encode_from) against the old one whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dotstuff.h"
#include "mime_enc.h"

/* --- the code as it was (templates/mime_enc.c, engine/smtp/dotstuff.c
 * at e72a5e1) ------------------------------------------------------------ */

#define MIME_QP_SOFT (MIME_LINE_MAX - 1)
static const char mime_hex[] = "0123456789ABCDEF";
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
 * mime_qp_copy8 - copy blocks of 8 bytes that need no encoding, up to lim.
 * The byte after a block must exist and not end the line, or a space at
 * the block's end might have to be encoded.
 */
static inline const unsigned char *
mime_qp_copy8(const unsigned char *p, const unsigned char *lim,
	      const unsigned char *end, char **op, bool line_start)
{
	const unsigned char *k = mime_qp_class;
	char *o = *op;

	if (line_start && *p == '.')
		return p;
	while (lim - p >= 8 && end - p > 8) {
		/* The first byte alone first: cheap way out for 8-bit text. */
		if (k[p[0]] & QP_STOP)
			break;
		if ((k[p[1]] | k[p[2]] | k[p[3]] | k[p[4]] | k[p[5]] |
		     k[p[6]] | k[p[7]]) & QP_STOP)
			break;
		if (p[8] == '\r' || p[8] == '\n')
			break;
		memcpy(o, p, 8);
		o += 8;
		p += 8;
	}
	*op = o;
	return p;
}

/*
 * Output is at most 3 bytes per input byte, plus a 3-byte soft break per
 * at least 73 of those, plus the final CRLF: 3n + 9n/73 + 2.
 */
#define MIME_QP_WORST(n) ((n) * 3 + (n) / 8 + 8)

static void ref_qp_encode(struct buf *out, const char *src, size_t len)
{
	const unsigned char *p = (const unsigned char *)src;
	const unsigned char *end = p + len;
	char *o, *line;

	if (len == 0)
		return;
	buf_reserve(out, MIME_QP_WORST(len));
	o = mime_buf_end(out);
	line = o;
	while (p < end) {
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
				(size_t)(end - p) > room ? p + room : end;

			p = mime_qp_copy8(p, lim, end, &o, o == line);
			while (p < lim) {
				k = mime_qp_class[*p];
				if (k != QP_LIT &&
				    (k == QP_WSP ? mime_qp_eol(p + 1, end) :
				     k != QP_DOT || o == line))
					break;
				*o++ = (char)*p++;
			}
			if (p == end)
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
			while (p < end && mime_qp_class[*p] == QP_ENC &&
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
	if (o != line) {
		*o++ = '\r';
		*o++ = '\n';
	}
	mime_buf_done(out, o);
}


/* ref_next_eol - the first CR or LF in p[0..len), or NULL */
static const char *ref_next_eol(const char *p, size_t len)
{
	const char *lf = memchr(p, '\n', len);
	const char *cr = memchr(p, '\r', lf != NULL ? (size_t)(lf - p) : len);

	return cr != NULL ? cr : lf;
}

/*
 * dotstuff_body - the body whole, in one pass: dotstuff_step's work
 * without a budget to keep, the hot path of every message up to a piece
 * (test_dotstuff holds the two to the same bytes).  Returns the bytes
 * added.
 */
static size_t ref_dotstuff_body(struct buf *out, const char *body, size_t len,
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
		eol = ref_next_eol(p, (size_t)(end - p));
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


/* --- random text -------------------------------------------------------- */

static uint64_t seed = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return (unsigned)(seed % n);
}

/* text - len bytes, mostly printable runs, with the bytes that matter */
static char *text(size_t len)
{
	static const char *const odd[] = {
		"\r\n", "\n", "\r", ".", " ", "\t", "=", "=_", "\x7f",
		"\x01", "\0", "\xc3\xa9", "\xe2\x80\x94", " \r\n", "\t\n",
		"\r\n.", "\r\n.\r\n", ".\r\n", "  ", "\xff",
	};
	char *p = malloc(len + 1);
	size_t i = 0;

	while (i < len) {
		if (rnd(4) == 0) {
			const char *s = odd[rnd(sizeof(odd) / sizeof(odd[0]))];
			size_t n = s[0] == '\0' ? 1 : strlen(s);

			for (size_t k = 0; k < n && i < len; k++)
				p[i++] = s[k];
		} else {
			size_t run = rnd(4) == 0 ? rnd(200) : rnd(20);

			for (size_t k = 0; k < run && i < len; k++)
				p[i++] = (char)(' ' + 1 + rnd(94));
		}
	}
	p[len] = '\0';
	return p;
}

/* same - old and new output equal, from an empty buffer and after text */
static void same(const struct buf *a, const struct buf *b)
{
	assert_int_equal(a->len, b->len);
	if (a->len > 0)
		assert_memory_equal(a->data, b->data, a->len);
}

static void test_qp_same(void **state)
{
	(void)state;
	for (unsigned round = 0; round < 20000; round++) {
		size_t len = rnd(8) == 0 ? rnd(3000) : rnd(300);
		char *in = text(len);
		struct buf a = BUF_INIT, b = BUF_INIT;

		if (rnd(2) == 0) {
			/* appending after something, as a message does */
			buf_append_str(&a, "header\r\n\r\n");
			buf_append_str(&b, "header\r\n\r\n");
		}
		ref_qp_encode(&a, in, len);
		mime_qp_encode(&b, in, len);
		same(&a, &b);
		buf_free(&a);
		buf_free(&b);
		free(in);
	}
}

/*
 * mime_qp_encode_from in pieces, cut anywhere but inside a CRLF, each
 * piece from the column the one before ended at and shown one byte past
 * its cut: the same bytes as the code as it was, in one piece (what
 * tmpl_render_encoded relies on).
 */
static void test_qp_pieces_same(void **state)
{
	(void)state;
	for (unsigned round = 0; round < 20000; round++) {
		size_t len = rnd(8) == 0 ? rnd(3000) : rnd(300);
		char *in = text(len);
		struct buf a = BUF_INIT, b = BUF_INIT;
		size_t at = 0, col = 0;

		ref_qp_encode(&a, in, len);
		while (at < len) {
			size_t cut = at + 1 + rnd(rnd(4) == 0 ? 200 : 20);

			if (cut > len)
				cut = len;
			if (cut < len && in[cut - 1] == '\r' &&
			    in[cut] == '\n')
				cut++;
			/* one byte past the cut is all it may look at */
			col = mime_qp_encode_from(&b, in + at, cut < len ?
						  cut + 1 - at : len - at,
						  cut - at, col);
			at = cut;
		}
		assert_int_equal(col, 0);
		same(&a, &b);
		buf_free(&a);
		buf_free(&b);
		free(in);
	}
}

static void test_dotstuff_same(void **state)
{
	(void)state;
	for (unsigned round = 0; round < 20000; round++) {
		size_t len = rnd(8) == 0 ? rnd(3000) : rnd(300);
		char *in = text(len);
		struct buf a = BUF_INIT, b = BUF_INIT;
		struct dotstuff_pos pos = { 0 };

		ref_dotstuff_body(&a, in, len, true);
		dotstuff_data(&b, in, len);
		same(&a, &b);
		assert_int_equal(dotstuff_len(in, len, true), b.len);
		buf_reset(&b);
		while (!pos.done)
			dotstuff_step(&b, in, len, true, &pos, 1 + rnd(100));
		same(&a, &b);
		buf_reset(&a);
		buf_reset(&b);
		ref_dotstuff_body(&a, in, len, false);
		dotstuff_crlf(&b, in, len);
		same(&a, &b);
		buf_free(&a);
		buf_free(&b);
		free(in);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qp_same),
		cmocka_unit_test(test_qp_pieces_same),
		cmocka_unit_test(test_dotstuff_same),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
