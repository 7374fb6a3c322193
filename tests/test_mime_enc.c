/*
 * test_mime_enc - the MIME encoders: quoted-printable, base64, RFC 2047
 * encoded-words and header folding.
 *
 * Beside exact outputs for the cases the RFCs single out, every encoder is
 * checked the way a receiver would see it: independent decoders written
 * here turn the output back into the input, for fixed cases and for many
 * pseudo-random inputs, while every line is checked against the limits
 * (76 for bodies and for header lines holding encoded-words, 78 where a
 * header can be folded, 998 always) and no bare CR or LF ever appears.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"
#include "buf.h"
#include "mime_enc.h"

/* rng - xorshift64*, seeded so failures reproduce */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed;
}

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static size_t rng_below(size_t n)
{
	return n ? rng() % n : 0;
}

/* check_crlf_only - every CR is followed by LF and every LF follows CR */
static void check_crlf_only(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < n);
			assert_int_equal(s[i + 1], '\n');
		} else if (s[i] == '\n') {
			assert_true(i > 0);
			assert_int_equal(s[i - 1], '\r');
		}
	}
}

/* hexval - value of an upper-case hex digit, asserting it is one */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	assert_true(c >= 'A' && c <= 'F');
	return c - 'A' + 10;
}

/* t_utf8_valid - strict UTF-8 check, written apart from the encoder's */
static bool t_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000))
			return false;
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

/*
 * Bodies.
 */

/* norm_lines - the input as QP decodes: CRLF line ends, the last one too */
static void norm_lines(const char *s, size_t n, struct buf *o)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 < n && s[i + 1] == '\n')
				i++;
			buf_append(o, "\r\n", 2);
		} else if (s[i] == '\n') {
			buf_append(o, "\r\n", 2);
		} else {
			buf_putc(o, s[i]);
		}
	}
	if (n > 0 && s[n - 1] != '\r' && s[n - 1] != '\n')
		buf_append(o, "\r\n", 2);
}

/*
 * qp_decode - decode quoted-printable, asserting on the way every rule of
 * RFC 2045 6.7 and the header's promises about the form of each line.
 */
static void qp_decode(const char *s, size_t n, struct buf *dec)
{
	size_t i = 0;

	check_crlf_only(s, n);
	while (i < n) {
		const char *line = s + i;
		const char *e = memmem(line, n - i, "\r\n", 2);
		size_t len, end, j;
		bool soft;

		assert_non_null(e);
		len = (size_t)(e - line);
		assert_true(len <= MIME_LINE_MAX);
		if (len > 0) {
			assert_true(line[len - 1] != ' ');
			assert_true(line[len - 1] != '\t');
			assert_true(line[0] != '.');
		}
		soft = len > 0 && line[len - 1] == '=';
		end = soft ? len - 1 : len;
		for (j = 0; j < end; j++) {
			unsigned char c = (unsigned char)line[j];

			if (c == '=') {
				/* An =XX is never split by a soft break. */
				assert_true(j + 2 < end);
				buf_putc(dec, (char)(hexval(line[j + 1]) << 4 |
						     hexval(line[j + 2])));
				j += 2;
			} else {
				assert_true(c == '\t' ||
					    (c >= 0x20 && c < 0x7F));
				buf_putc(dec, (char)c);
			}
		}
		if (!soft)
			buf_append(dec, "\r\n", 2);
		i += len + 2;
	}
}

/* qp_round_trip - encode s, check every rule, decode and compare */
static void qp_round_trip(const char *s, size_t n)
{
	struct buf out = BUF_INIT, dec = BUF_INIT, want = BUF_INIT;

	buf_append_str(&out, "prefix");
	mime_qp_encode(&out, s, n);
	assert_memory_equal(out.data, "prefix", 6);
	qp_decode(out.data + 6, out.len - 6, &dec);
	norm_lines(s, n, &want);
	assert_int_equal(dec.len, want.len);
	if (want.len > 0)
		assert_memory_equal(dec.data, want.data, want.len);
	buf_free(&out);
	buf_free(&dec);
	buf_free(&want);
}

/* qp_expect - encode s and compare with the exact output wanted */
static void qp_expect(const char *s, const char *want)
{
	struct buf out = BUF_INIT;

	mime_qp_encode(&out, s, strlen(s));
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
	qp_round_trip(s, strlen(s));
}

static void test_qp_basic(void **state)
{
	(void)state;
	qp_expect("", "");
	qp_expect("Hello, world", "Hello, world\r\n");
	qp_expect("a=b", "a=3Db\r\n");
	qp_expect("a\tb c", "a\tb c\r\n");
	qp_expect("caf\xc3\xa9", "caf=C3=A9\r\n");
	qp_expect("nul\x01\x7f" "del", "nul=01=7Fdel\r\n");
}

static void test_qp_line_ends(void **state)
{
	(void)state;
	qp_expect("a\rb\nc\r\nd", "a\r\nb\r\nc\r\nd\r\n");
	qp_expect("a\n", "a\r\n");
	qp_expect("a\r\n", "a\r\n");
	qp_expect("\n\n", "\r\n\r\n");
	qp_expect("\r\r\n\n\r", "\r\n\r\n\r\n\r\n");
}

/* RFC 2045 6.7 (3): whitespace ending a line is encoded, elsewhere not. */
static void test_qp_trailing_whitespace(void **state)
{
	(void)state;
	qp_expect("a \nb", "a=20\r\nb\r\n");
	qp_expect("a\t\r\nb", "a=09\r\nb\r\n");
	qp_expect("a  ", "a =20\r\n");
	qp_expect("x\t", "x=09\r\n");
	qp_expect(" ", "=20\r\n");
	qp_expect("a \rb", "a=20\r\nb\r\n");
	/* Whitespace at the end of a run of plain text of any length. */
	qp_expect("abcdefg \nb", "abcdefg=20\r\nb\r\n");
	qp_expect("abcdefgh \r\nb", "abcdefgh=20\r\nb\r\n");
	qp_expect("abcdefghijklmno\t", "abcdefghijklmno=09\r\n");
	qp_expect("abcdefghijklmnop \n", "abcdefghijklmnop=20\r\n");
}

static void test_qp_leading_dot(void **state)
{
	(void)state;
	qp_expect(".", "=2E\r\n");
	qp_expect(".\n..x\na.b", "=2E\r\n=2E.x\r\na.b\r\n");
	qp_expect("x\n.abcdefghijklmnop.", "x\r\n=2Eabcdefghijklmnop.\r\n");
	qp_expect("x\r.abcdefghijklmnop", "x\r\n=2Eabcdefghijklmnop\r\n");
}

static void test_qp_soft_breaks(void **state)
{
	char in[300];
	char want[400];
	struct buf out = BUF_INIT;

	(void)state;
	/* 76 fit on the last line of a paragraph; 77 need a soft break. */
	memset(in, 'a', 77);
	in[76] = '\0';
	memcpy(want, in, 76);
	strcpy(want + 76, "\r\n");
	qp_expect(in, want);
	in[76] = 'a';
	in[77] = '\0';
	memset(want, 'a', 75);
	strcpy(want + 75, "=\r\naa\r\n");
	qp_expect(in, want);

	/* An =XX that would pass column 75 moves whole to the next line. */
	memset(in, 'a', 74);
	strcpy(in + 74, "\xc3\xa9");
	memset(want, 'a', 74);
	strcpy(want + 74, "=\r\n=C3=A9\r\n");
	qp_expect(in, want);

	/* ... but the last one of a line may end in column 76. */
	memset(in, 'a', 73);
	strcpy(in + 73, "=");
	memset(want, 'a', 73);
	strcpy(want + 73, "=3D\r\n");
	qp_expect(in, want);

	/* Trailing space at the limit: encoded on a line of its own. */
	memset(in, 'a', 75);
	strcpy(in + 75, " ");
	memset(want, 'a', 75);
	strcpy(want + 75, "=\r\n=20\r\n");
	qp_expect(in, want);
	memset(in, 'a', 73);
	strcpy(in + 73, " ");
	memset(want, 'a', 73);
	strcpy(want + 73, "=20\r\n");
	qp_expect(in, want);

	/* A '.' that a soft break puts first on a line is encoded. */
	memset(in, 'a', 75);
	strcpy(in + 75, ".b");
	memset(want, 'a', 75);
	strcpy(want + 75, "=\r\n=2Eb\r\n");
	qp_expect(in, want);

	/* Long line of non-printables: 25 triples and '=' per line. */
	memset(in, 1, 200);
	mime_qp_encode(&out, in, 200);
	for (size_t i = 0; i + 78 <= out.len; i += 78) {
		assert_memory_equal(out.data + i,
				    "=01=01=01=01=01=01=01=01=01=01=01=01=01"
				    "=01=01=01=01=01=01=01=01=01=01=01=01=\r\n",
				    78);
	}
	assert_int_equal(out.len, 200 * 3 + 7 * 3 + 2);
	buf_free(&out);
	qp_round_trip(in, 200);
}

/* Many inputs biased to the hard cases, each decoded back. */
static void test_qp_random_round_trip(void **state)
{
	static const char alphabet[] = "abcXYZ019 \t.=\r\n\x01\x7f\x80\xc3\xff";
	char in[3000];

	(void)state;
	rng_seed(0x5eed0001);
	for (int iter = 0; iter < 3000; iter++) {
		size_t n = rng_below(iter < 2000 ? 300 : sizeof(in));
		size_t mode = rng_below(3);

		for (size_t i = 0; i < n; i++) {
			if (mode == 0)
				in[i] = (char)rng();
			else if (mode == 1 && rng_below(8) != 0)
				in[i] = 'a';
			else
				in[i] = alphabet[rng_below(sizeof(alphabet) - 1)];
		}
		qp_round_trip(in, n);
	}
}

/* b64_decode - decode base64 lines, asserting line lengths and the alphabet */
static void b64_decode(const char *s, size_t n, struct buf *dec)
{
	static const char *alpha =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i = 0;
	bool last = false;

	check_crlf_only(s, n);
	while (i < n) {
		const char *line = s + i;
		const char *e = memmem(line, n - i, "\r\n", 2);
		size_t len;

		assert_non_null(e);
		assert_false(last);
		len = (size_t)(e - line);
		assert_true(len > 0 && len <= MIME_LINE_MAX && len % 4 == 0);
		if (len < MIME_LINE_MAX)
			last = true;
		for (size_t j = 0; j < len; j += 4) {
			uint32_t v = 0;
			int pad = 0;

			for (int k = 0; k < 4; k++) {
				char c = line[j + k];

				if (c == '=') {
					assert_true(k >= 2);
					pad++;
					v <<= 6;
					continue;
				}
				assert_int_equal(pad, 0);
				assert_non_null(strchr(alpha, c));
				v = v << 6 | (uint32_t)(strchr(alpha, c) - alpha);
			}
			if (pad > 0) {
				assert_true(j + 4 == len);
				last = true;
			}
			buf_putc(dec, (char)(v >> 16));
			if (pad < 2)
				buf_putc(dec, (char)(v >> 8));
			if (pad < 1)
				buf_putc(dec, (char)v);
		}
		i += len + 2;
	}
}

/* RFC 4648 10. */
static void test_base64_vectors(void **state)
{
	static const char *const vec[][2] = {
		{ "", "" },
		{ "f", "Zg==\r\n" },
		{ "fo", "Zm8=\r\n" },
		{ "foo", "Zm9v\r\n" },
		{ "foob", "Zm9vYg==\r\n" },
		{ "fooba", "Zm9vYmE=\r\n" },
		{ "foobar", "Zm9vYmFy\r\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		struct buf out = BUF_INIT;

		mime_base64_encode(&out, vec[i][0], strlen(vec[i][0]));
		assert_string_equal(buf_cstr(&out), vec[i][1]);
		buf_free(&out);
	}
}

static void test_base64_lines(void **state)
{
	unsigned char in[57 * 3 + 1];
	struct buf out = BUF_INIT;

	(void)state;
	memset(in, 0xff, sizeof(in));
	mime_base64_encode(&out, in, 57 * 3);
	assert_int_equal(out.len, 78 * 3);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(out.data + i * 78 + 76, "\r\n", 2);
	buf_reset(&out);
	mime_base64_encode(&out, in, 57 * 3 + 1);
	assert_int_equal(out.len, 78 * 3 + 6);
	assert_string_equal(out.data + 78 * 3, "/w==\r\n");
	buf_free(&out);
}

/*
 * base64_valid decides whether volley answers an AUTH challenge or cancels
 * it with "*" (RFC 4954 4): what it encodes itself is valid, and a server's
 * plain-text prompt is not.
 */
static void test_base64_valid(void **state)
{
	static const char *good[] = { "", "Zg==", "Zm8=", "Zm9v",
				      "VXNlcm5hbWU6", "UGFzc3dvcmQ6", "+/+/" };
	static const char *bad[] = { "Username:", "Zg=", "Z===", "Zg=a",
				     "Zm9v\r\n", "Zm9v ", "====", "Zm9v=",
				     "Zg==Zg==", "Zm-_" };
	unsigned char in[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(base64_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(base64_valid(bad[i], strlen(bad[i])));
	/* a NUL inside is not base64 either */
	assert_false(base64_valid("Zm\0v", 4));
	rng_seed(0x5eed0003);
	for (size_t n = 0; n < sizeof(in); n++) {
		struct buf out = BUF_INIT;

		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)rng();
		base64_encode(&out, in, n);
		assert_true(base64_valid(buf_cstr(&out), out.len));
		buf_free(&out);
	}
}

static void test_base64_random_round_trip(void **state)
{
	unsigned char in[5000];

	(void)state;
	rng_seed(0x5eed0002);
	for (int iter = 0; iter < 1500; iter++) {
		size_t n = iter < 700 ? (size_t)iter : rng_below(sizeof(in));
		struct buf out = BUF_INIT, dec = BUF_INIT;

		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)rng();
		buf_append_str(&out, "x");
		mime_base64_encode(&out, in, n);
		assert_int_equal(out.data[0], 'x');
		b64_decode(out.data + 1, out.len - 1, &dec);
		assert_int_equal(dec.len, n);
		if (n > 0)
			assert_memory_equal(dec.data, in, n);
		buf_free(&out);
		buf_free(&dec);
	}
}

static void test_is_7bit(void **state)
{
	char in[2100];

	(void)state;
	assert_true(mime_is_7bit("", 0));
	assert_true(mime_is_7bit("plain text\r\nand more\n", 21));
	memset(in, 'a', sizeof(in));
	assert_true(mime_is_7bit(in, 998));
	assert_false(mime_is_7bit(in, 999));
	memcpy(in + 998, "\r\n", 2);
	assert_true(mime_is_7bit(in, 1000 + 998));
	assert_false(mime_is_7bit(in, 1000 + 999));
	memcpy(in + 998, "\n", 1);
	assert_true(mime_is_7bit(in, 999 + 998));
	memcpy(in + 998, "a\r\n", 3);
	assert_false(mime_is_7bit(in, 1001 + 10));
	assert_false(mime_is_7bit("a\rb", 3));
	assert_false(mime_is_7bit("a\r", 2));
	assert_true(mime_is_7bit("a\r\n", 3));
	assert_false(mime_is_7bit("a\0b", 3));
	assert_false(mime_is_7bit("caf\xc3\xa9", 5));
	assert_false(mime_is_7bit("\x80", 1));
	assert_true(mime_is_7bit("\t\x01\x7f", 3));
}

/* The word-at-a-time scan must see a fault in any of the 8 positions. */
static void test_is_7bit_crlf(void **state)
{
	static const char bad[] = { '\x80', '\0', '\r', '\xff' };
	char in[64];

	(void)state;
	assert_true(mime_is_7bit_crlf("", 0));
	assert_true(mime_is_7bit_crlf("a\r\nb\r\n", 6));
	assert_true(mime_is_7bit_crlf("no line end", 11));
	assert_false(mime_is_7bit_crlf("a\nb", 3));
	assert_true(mime_is_7bit("a\nb", 3));
	assert_false(mime_is_7bit_crlf("a\r\nb\n", 5));
	for (size_t pos = 0; pos < 40; pos++) {
		for (size_t k = 0; k < sizeof(bad); k++) {
			memset(in, 'x', sizeof(in));
			in[pos] = bad[k];
			assert_false(mime_is_7bit_crlf(in, 48));
			assert_false(mime_is_7bit(in, 48));
		}
	}
	memset(in, 'x', sizeof(in));
	assert_true(mime_is_7bit_crlf(in, sizeof(in)));
}

static void test_crlf(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	buf_append_str(&out, "[");
	mime_crlf(&out, "a\nb\r\nc\rd\r", 9);
	assert_string_equal(buf_cstr(&out), "[a\r\nb\r\nc\r\nd\r\n");
	buf_reset(&out);
	mime_crlf(&out, "\r\r\n\n", 4);
	assert_string_equal(buf_cstr(&out), "\r\n\r\n\r\n");
	buf_reset(&out);
	mime_crlf(&out, "no end", 6);
	assert_string_equal(buf_cstr(&out), "no end");
	buf_reset(&out);
	mime_crlf(&out, "", 0);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/*
 * Headers.
 */

/* One line of output; limits checked by hdr_unfold. */
struct hdr_stats {
	size_t lines;
	size_t longest;
	size_t words;		/* encoded-words */
	size_t b_words;
};

/*
 * hdr_unfold - check a header's lines and return its unfolded value:
 * starts "Name: ", ends in CRLF, continuation lines start with WSP and are
 * not all WSP, no line passes max (998 at most), and lines holding an
 * encoded-word keep to RFC 2047's 76.
 */
static void hdr_unfold(const char *s, size_t n, const char *name, size_t max,
		       struct buf *val, struct hdr_stats *st)
{
	size_t nl = strlen(name), i = 0;

	memset(st, 0, sizeof(*st));
	check_crlf_only(s, n);
	assert_true(n >= nl + 4);
	assert_memory_equal(s, name, nl);
	assert_memory_equal(s + nl, ": ", 2);
	assert_memory_equal(s + n - 2, "\r\n", 2);
	while (i < n) {
		const char *line = s + i;
		const char *e = memmem(line, n - i, "\r\n", 2);
		size_t len = (size_t)(e - line), j;

		assert_true(len <= max);
		assert_true(len <= MIME_HEADER_HARD_MAX);
		if (len > st->longest)
			st->longest = len;
		if (memmem(line, len, "=?", 2) != NULL && max < 998)
			assert_true(len <= 76);
		if (i > 0) {
			assert_true(line[0] == ' ' || line[0] == '\t');
			j = 0;
			while (j < len && (line[j] == ' ' || line[j] == '\t'))
				j++;
			assert_true(j < len);
		}
		buf_append(val, line + (i == 0 ? nl + 2 : 0),
			   len - (i == 0 ? nl + 2 : 0));
		st->lines++;
		i += len + 2;
	}
}

/*
 * ew_decode_one - decode one encoded-word, asserting its form: at most
 * 75 characters, UTF-8, Q text using only the characters allowed where
 * it stands, and a payload that is valid UTF-8 on its own.
 */
static void ew_decode_one(const char *w, size_t n, bool phrase,
			  struct buf *dec, struct hdr_stats *st)
{
	static const char *phrase_ok =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/";
	struct buf one = BUF_INIT;
	const char *p;
	size_t plen;

	assert_true(n <= 75);
	assert_true(n >= 12);
	assert_memory_equal(w, "=?UTF-8?", 8);
	assert_true(w[8] == 'Q' || w[8] == 'B');
	assert_int_equal(w[9], '?');
	assert_memory_equal(w + n - 2, "?=", 2);
	p = w + 10;
	plen = n - 12;
	assert_true(plen > 0);
	st->words++;
	if (w[8] == 'B') {
		st->b_words++;
		buf_append(&one, "", 0);
		assert_int_equal(plen % 4, 0);
		{
			struct buf tmp = BUF_INIT;

			buf_append(&tmp, p, plen);
			buf_append(&tmp, "\r\n", 2);
			b64_decode(tmp.data, tmp.len, &one);
			buf_free(&tmp);
		}
	} else {
		for (size_t i = 0; i < plen; i++) {
			unsigned char c = (unsigned char)p[i];

			if (c == '=') {
				assert_true(i + 2 < plen);
				buf_putc(&one, (char)(hexval(p[i + 1]) << 4 |
						      hexval(p[i + 2])));
				i += 2;
			} else if (c == '_') {
				buf_putc(&one, ' ');
			} else {
				if (phrase)
					assert_non_null(strchr(phrase_ok, c));
				else
					assert_true(c > 0x20 && c < 0x7f &&
						    c != '?');
				buf_putc(&one, (char)c);
			}
		}
	}
	assert_true(one.len > 0);
	assert_true(t_utf8_valid((const unsigned char *)one.data, one.len));
	buf_append(dec, one.data, one.len);
	buf_free(&one);
}

/*
 * ew_decode - decode an unfolded unstructured value or phrase the way
 * RFC 2047 6.2 says: whitespace between two encoded-words is dropped,
 * other whitespace kept.  A word starting "=?" must be an encoded-word.
 */
static void ew_decode(const char *s, size_t n, bool phrase, struct buf *dec,
		      struct hdr_stats *st)
{
	size_t i = 0;
	bool prev_ew = false;

	while (i < n) {
		size_t a = i, b;

		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		b = i;
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		if (b == i) {
			buf_append(dec, s + a, b - a);
			break;
		}
		if (i - b >= 2 && s[b] == '=' && s[b + 1] == '?') {
			if (!prev_ew)
				buf_append(dec, s + a, b - a);
			ew_decode_one(s + b, i - b, phrase, dec, st);
			prev_ew = true;
		} else {
			assert_null(memmem(s + b, i - b, "=?", 2));
			buf_append(dec, s + a, i - a);
			prev_ew = false;
		}
	}
}

/*
 * text_round_trip - mime_header_text on value, every check, and the
 * decoded value compared with the input; returns the stats.
 */
static struct hdr_stats text_round_trip(const char *name, const char *v,
					size_t n, size_t max)
{
	struct buf out = BUF_INIT, val = BUF_INIT, dec = BUF_INIT;
	struct hdr_stats st, st2;

	memset(&st2, 0, sizeof(st2));
	buf_append_str(&out, "X: y\r\n");
	assert_int_equal(mime_header_text(&out, name, v, n), 0);
	assert_memory_equal(out.data, "X: y\r\n", 6);
	hdr_unfold(out.data + 6, out.len - 6, name, max, &val, &st);
	ew_decode(val.data, val.len, false, &dec, &st2);
	st.words = st2.words;
	st.b_words = st2.b_words;
	assert_int_equal(dec.len, n);
	assert_memory_equal(dec.data, v, n);
	buf_free(&out);
	buf_free(&val);
	buf_free(&dec);
	return st;
}

/* text_expect - mime_header_text's exact output for a value */
static void text_expect(const char *name, const char *v, const char *want)
{
	struct buf out = BUF_INIT;

	assert_int_equal(mime_header_text(&out, name, v, strlen(v)), 0);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
	text_round_trip(name, v, strlen(v), MIME_HEADER_FOLD);
}

static void test_text_ascii(void **state)
{
	(void)state;
	text_expect("Subject", "Hello world", "Subject: Hello world\r\n");
	text_expect("Subject", "", "Subject: \r\n");
	text_expect("Subject", "a  b\tc ", "Subject: a  b\tc \r\n");
	text_expect("Subject", "50% off_now? yes=no",
		    "Subject: 50% off_now? yes=no\r\n");
}

static void test_text_ascii_folding(void **state)
{
	static const char v[] =
		"This is a rather long subject line that will certainly need "
		"to be folded somewhere, because it goes on and on well past "
		"the seventy-eight columns a header line should keep to, and "
		"then some more words for a third line";
	struct buf out = BUF_INIT;
	struct hdr_stats st;

	(void)state;
	st = text_round_trip("Subject", v, strlen(v), MIME_HEADER_FOLD);
	assert_true(st.lines >= 3);
	assert_int_equal(st.words, 0);
	/* Folding only inserts CRLF before existing whitespace. */
	assert_int_equal(mime_header_text(&out, "Subject", v, strlen(v)), 0);
	assert_null(memchr(out.data, '=', out.len));
	assert_int_equal(out.len, strlen("Subject: ") + strlen(v) + 2 +
				  2 * (st.lines - 1));
	buf_free(&out);
}

/* A word that a decoder would take for an encoded-word is encoded. */
static void test_text_ew_lookalike(void **state)
{
	static const char v[] = "Price =?ISO-8859-1?Q?a?= now";
	struct buf out = BUF_INIT;
	struct hdr_stats st;

	(void)state;
	st = text_round_trip("Subject", v, strlen(v), MIME_HEADER_FOLD);
	assert_int_equal(st.words, 1);
	assert_int_equal(mime_header_text(&out, "Subject", v, strlen(v)), 0);
	assert_string_equal(buf_cstr(&out),
		"Subject: Price =?UTF-8?B?PT9JU08tODg1OS0xP1E/YT89?= now\r\n");
	buf_free(&out);
}

static void test_text_utf8_short(void **state)
{
	(void)state;
	/* B (12) is shorter than Q (15) here ... */
	text_expect("Subject", "Gr\xc3\xbc\xc3\x9f" "e",
		    "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n");
	/* ... and Q (24) than B (28) here. */
	text_expect("Subject", "The na\xc3\xafve-implementation",
		    "Subject: The =?UTF-8?Q?na=C3=AFve-implementation?=\r\n");
	/*
	 * Plain words stay plain, with the space beside them outside; a
	 * short plain gap between two encoded words goes inside.
	 */
	text_expect("Subject", "Re: Gr\xc3\xbc\xc3\x9f" "e aus "
		    "K\xc3\xb6ln und dem ganzen Rheinland",
		    "Subject: Re: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?= "
		    "und dem ganzen Rheinland\r\n");
	text_expect("Subject", "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xae"
		    "\xe5\xa4\xa9\xe6\xb0\x97",
		    "Subject: =?UTF-8?B?5p2x5Lqs44Gu5aSp5rCX?=\r\n");
	/* Q in *text may leave '(' ',' '"' as they are (RFC 2047 5(1)). */
	text_expect("Subject", "(na\xc3\xafve, \"quoted\" text)",
		    "Subject: =?UTF-8?Q?(na=C3=AFve,?= \"quoted\" text)\r\n");
}

/* The long mixed-script subject the module exists for. */
static void test_text_utf8_long(void **state)
{
	static const char piece[] =
		"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x94 "
		"\xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x9a\x80 ";
	char v[400];
	size_t n = 0;
	struct hdr_stats st;

	(void)state;
	while (n < 290) {
		memcpy(v + n, piece, sizeof(piece) - 1);
		n += sizeof(piece) - 1;
	}
	memcpy(v + n, "\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80 end", 12);
	n += 12;
	assert_true(n >= 300);
	st = text_round_trip("Subject", v, n, MIME_HEADER_FOLD);
	assert_true(st.words >= 5);
	assert_true(st.lines >= 5);
	st = text_round_trip("X-A-Rather-Long-Header-Name-For-Volley", v, n,
			     MIME_HEADER_FOLD);
	assert_true(st.words >= 5);

	/* Every split point, for both encodings, keeps 4-byte characters. */
	for (size_t cut = 1; cut < 69; cut++) {
		char w[200];
		size_t m = 0;

		memset(w, 'x', cut);
		m = cut;
		w[m++] = ' ';
		for (int k = 0; k < 30; k++) {
			memcpy(w + m, "\xf0\x9f\x9a\x80", 4);
			m += 4;
		}
		text_round_trip("Subject", w, m, MIME_HEADER_FOLD);
		text_round_trip("Subject", w + cut + 1, m - cut - 1,
				MIME_HEADER_FOLD);
	}
}

/* Words too long for 998 columns go as encoded-words; shorter stay. */
static void test_text_long_word(void **state)
{
	char v[3000];
	struct hdr_stats st;

	(void)state;
	memset(v, 'w', sizeof(v));
	memcpy(v, "Short ", 6);
	st = text_round_trip("Subject", v, sizeof(v), MIME_HEADER_HARD_MAX);
	assert_true(st.words > 30);
	assert_int_equal(st.b_words, 0);
	assert_true(st.longest <= MIME_HEADER_FOLD);

	st = text_round_trip("Subject", v, 990, MIME_HEADER_HARD_MAX);
	assert_int_equal(st.words, 0);
	assert_int_equal(st.longest, 985);

	/* The first word shares its line with "Subject: ". */
	st = text_round_trip("Subject", v + 6, 989, MIME_HEADER_HARD_MAX);
	assert_int_equal(st.words, 0);
	st = text_round_trip("Subject", v + 6, 990, MIME_HEADER_HARD_MAX);
	assert_true(st.words > 0);

	/* A whitespace run too long for a line. */
	memset(v, ' ', sizeof(v));
	memcpy(v, "a", 1);
	memcpy(v + 2000, "b", 1);
	st = text_round_trip("Subject", v, 2001, MIME_HEADER_HARD_MAX);
	assert_true(st.words > 0);
}

static void test_text_refusal(void **state)
{
	static const char *const bad[] = {
		"a\rb", "a\nb", "line\r\n", "\xc3", "\xc0\x80", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\xff", "ok \xe2\x82", "\xe2\x28\xa1",
		"\xe0\x80\xaf", "\xf0\x8f\xbf\xbf", "\xc1\xbf", "\x80",
	};
	struct buf out = BUF_INIT;

	(void)state;
	buf_append_str(&out, "keep");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mime_header_text(&out, "Subject", bad[i],
						  strlen(bad[i])), -1);
		assert_string_equal(buf_cstr(&out), "keep");
	}
	assert_int_equal(mime_header_text(&out, "Subject", "a\0b", 3), -1);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_free(&out);
}

/* Control characters are not text (RFC 5322 VCHAR): encoded, not sent. */
static void test_text_controls(void **state)
{
	struct hdr_stats st;

	(void)state;
	st = text_round_trip("Subject", "bell\x07 and del\x7f", 14,
			     MIME_HEADER_FOLD);
	assert_int_equal(st.words, 1);
}

/* rand_text - a random header value from pieces that stress the encoder */
static size_t rand_text(char *v, size_t max)
{
	static const char *const pieces[] = {
		"a", "word", "Volley", "x", "=?", "?=", "_", "?", "=", "\"q\"",
		" ", " ", " ", "  ", "\t", "\xc3\xbc", "Gr\303\274\303\237e",
		"\xe2\x80\x94", "\xe6\x9d\xb1\xe4\xba\xac", "\xf0\x9f\x9a\x80",
		"\x01", "(c)", "<a@b>", "e\xcc\x81", "0123456789",
	};
	size_t n = 0, want = rng_below(max);

	while (n < want) {
		const char *p = pieces[rng_below(sizeof(pieces) /
						 sizeof(pieces[0]))];
		size_t l = strlen(p);

		if (n + l > max)
			break;
		memcpy(v + n, p, l);
		n += l;
	}
	return n;
}

static void test_text_random_round_trip(void **state)
{
	static const char *const names[] = {
		"Subject", "X", "Comments", "X-Some-Quite-Long-Header-Name",
	};
	char v[700];

	(void)state;
	rng_seed(0x5eed0003);
	for (int iter = 0; iter < 4000; iter++) {
		size_t n = rand_text(v, iter < 3000 ? 120 : sizeof(v));

		text_round_trip(names[iter % 4], v, n, MIME_HEADER_FOLD);
	}
}

/*
 * mailbox_round_trip - mime_header_mailbox, every check, and the display
 * name and address read back as a receiver would.
 */
static struct hdr_stats mailbox_round_trip(const char *d, size_t dn,
					   const char *addr)
{
	struct buf out = BUF_INIT, val = BUF_INIT, dec = BUF_INIT;
	struct hdr_stats st, st2;
	size_t an = strlen(addr), pn;
	const char *v;

	memset(&st2, 0, sizeof(st2));
	assert_int_equal(mime_header_mailbox(&out, "From", d, dn, addr, an), 0);
	hdr_unfold(out.data, out.len, "From", MIME_HEADER_FOLD, &val, &st);
	v = val.data;
	if (dn == 0) {
		assert_int_equal(val.len, an);
		assert_memory_equal(v, addr, an);
		goto done;
	}
	assert_true(val.len > an + 3);
	assert_memory_equal(v + val.len - an - 3, " <", 2);
	assert_memory_equal(v + val.len - an - 1, addr, an);
	assert_int_equal(v[val.len - 1], '>');
	pn = val.len - an - 3;
	if (v[0] == '"') {
		assert_int_equal(v[pn - 1], '"');
		for (size_t i = 1; i < pn - 1; i++) {
			if (v[i] == '\\')
				i++;
			else
				assert_true(v[i] != '"');
			buf_putc(&dec, v[i]);
		}
	} else if (memmem(v, pn, "=?", 2) != NULL) {
		/* The whole phrase is encoded-words: no plain words between. */
		for (size_t i = 0; i < pn; i++)
			if (i == 0 || v[i - 1] == ' ')
				assert_memory_equal(v + i, "=?", 2);
		ew_decode(v, pn, true, &dec, &st2);
	} else {
		for (size_t i = 0; i < pn; i++)
			assert_true(v[i] == ' ' || v[i] == '\t' ||
				    strchr("!#$%&'*+-/=?^_`{|}~", v[i]) ||
				    (v[i] >= 'a' && v[i] <= 'z') ||
				    (v[i] >= 'A' && v[i] <= 'Z') ||
				    (v[i] >= '0' && v[i] <= '9'));
		buf_append(&dec, v, pn);
	}
	assert_int_equal(dec.len, dn);
	assert_memory_equal(dec.data, d, dn);
done:
	st.words = st2.words;
	st.b_words = st2.b_words;
	buf_free(&out);
	buf_free(&val);
	buf_free(&dec);
	return st;
}

/* mailbox_expect - exact output of mime_header_mailbox */
static void mailbox_expect(const char *d, const char *addr, const char *want)
{
	struct buf out = BUF_INIT;

	assert_int_equal(mime_header_mailbox(&out, "From", d, strlen(d), addr,
					     strlen(addr)), 0);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
	mailbox_round_trip(d, strlen(d), addr);
}

static void test_mailbox_forms(void **state)
{
	(void)state;
	mailbox_expect("John Doe", "john@example.com",
		       "From: John Doe <john@example.com>\r\n");
	mailbox_expect("", "john@example.com", "From: john@example.com\r\n");
	mailbox_expect("Doe, John", "john@example.com",
		       "From: \"Doe, John\" <john@example.com>\r\n");
	mailbox_expect("Say \"hi\" \\o/", "a@b.example",
		       "From: \"Say \\\"hi\\\" \\\\o/\" <a@b.example>\r\n");
	mailbox_expect(" padded", "a@b.example",
		       "From: \" padded\" <a@b.example>\r\n");
	mailbox_expect("J\xc3\xbcrgen M\xc3\xbcller", "j@example.de",
		       "From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= "
		       "<j@example.de>\r\n");
	/*
	 * Q in a phrase may not leave ',' and the like (RFC 2047 5(3)); and
	 * with the address the line would pass 76, so it is folded.
	 */
	mailbox_expect("\xc3\x85ngstr\xc3\xb6m Laboratories, Incorporated",
		       "j@example.de",
		       "From: =?UTF-8?Q?=C3=85ngstr=C3=B6m_Laboratories=2C_"
		       "Incorporated?=\r\n <j@example.de>\r\n");
	mailbox_expect("=?x?= Administrator Account", "a@b.example",
		       "From: =?UTF-8?Q?=3D=3Fx=3F=3D_Administrator_Account?= "
		       "<a@b.example>\r\n");
	mailbox_expect("a\tb", "a@b.example",
		       "From: \"a\tb\" <a@b.example>\r\n");
	/* An SMTPUTF8 address goes as it is. */
	mailbox_expect("Bob", "b\xc3\xb6" "b@example.de",
		       "From: Bob <b\xc3\xb6" "b@example.de>\r\n");
}

static void test_mailbox_folding(void **state)
{
	static const char d[] =
		"The Quite Extraordinarily Long Display Name Of Some Company";
	static const char q[] =
		"Support, Billing and Accounts Receivable Department of "
		"The Quite Extraordinarily Long Company Name, Ltd.";
	static const char addr[] = "notifications-and-updates@mail.example.com";
	char u[600];
	size_t n = 0;
	struct buf out = BUF_INIT;
	struct hdr_stats st;

	(void)state;
	st = mailbox_round_trip(d, strlen(d), addr);
	assert_int_equal(st.lines, 2);
	assert_int_equal(mime_header_mailbox(&out, "From", d, strlen(d), addr,
					     strlen(addr)), 0);
	assert_non_null(strstr(out.data, d));
	assert_non_null(strstr(out.data, "\r\n <notifications"));
	buf_free(&out);

	st = mailbox_round_trip(q, strlen(q), addr);
	assert_true(st.lines >= 3);

	while (n + 21 < sizeof(u)) {
		memcpy(u + n, "J\xc3\xbcrgen M\xc3\xbcller \xf0\x9f\x9a\x80 ", 21);
		n += 21;
	}
	st = mailbox_round_trip(u, n - 1, addr);
	assert_true(st.words >= 5);
}

static void test_mailbox_refusal(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	buf_append_str(&out, "keep");
	assert_int_equal(mime_header_mailbox(&out, "To", "a\r\nBcc: x", 9,
					     "a@b", 3), -1);
	assert_int_equal(mime_header_mailbox(&out, "To", "a", 1,
					     "a@b\r\nBcc: x@y", 13), -1);
	assert_int_equal(mime_header_mailbox(&out, "To", "", 0, "a@b\n", 4),
			 -1);
	assert_int_equal(mime_header_mailbox(&out, "To", "a\0b", 3, "a@b", 3),
			 -1);
	assert_int_equal(mime_header_mailbox(&out, "To", "a", 1, "a\0@b", 4),
			 -1);
	assert_int_equal(mime_header_mailbox(&out, "To", "\xc3(", 2, "a@b", 3),
			 -1);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_free(&out);
}

static void test_mailbox_random(void **state)
{
	char d[300];

	(void)state;
	rng_seed(0x5eed0004);
	for (int iter = 0; iter < 3000; iter++) {
		size_t n = rand_text(d, sizeof(d));

		mailbox_round_trip(d, n, iter % 2 ? "a@b.example" :
				   "a-much-longer-address-for-folding@example.com");
	}
}

static void test_raw(void **state)
{
	static const char lu[] =
		"<https://example.com/unsubscribe/0123456789abcdef0123456789abcdef"
		"?list=weekly>, <mailto:unsubscribe@example.com?subject=unsub>";
	struct buf out = BUF_INIT, val = BUF_INIT;
	struct hdr_stats st;
	char big[1200];

	(void)state;
	assert_int_equal(mime_header_raw(&out, "Content-Type",
			 "text/plain; charset=UTF-8", 25), 0);
	assert_string_equal(buf_cstr(&out),
			    "Content-Type: text/plain; charset=UTF-8\r\n");
	buf_reset(&out);

	/*
	 * Folds at the space; the first URL with "List-Unsubscribe: " passes
	 * 78 but is never folded away from the name it follows.
	 */
	assert_int_equal(mime_header_raw(&out, "List-Unsubscribe", lu,
					 strlen(lu)), 0);
	hdr_unfold(out.data, out.len, "List-Unsubscribe", MIME_HEADER_HARD_MAX,
		   &val, &st);
	assert_int_equal(st.lines, 2);
	assert_int_equal(val.len, strlen(lu));
	assert_memory_equal(val.data, lu, val.len);
	assert_non_null(strstr(out.data, "List-Unsubscribe: <https://"));
	assert_non_null(strstr(out.data, ",\r\n <mailto:"));
	buf_reset(&out);
	buf_reset(&val);

	/* Trailing whitespace never makes a whitespace-only line. */
	memset(big, 'a', 70);
	memset(big + 70, ' ', 20);
	assert_int_equal(mime_header_raw(&out, "X-T", big, 90), 0);
	assert_int_equal(out.len, 5 + 90 + 2);
	buf_reset(&out);

	buf_append_str(&out, "keep");
	assert_int_equal(mime_header_raw(&out, "X", "a\r\nb", 4), -1);
	assert_int_equal(mime_header_raw(&out, "X", "a\nb", 3), -1);
	assert_int_equal(mime_header_raw(&out, "X", "a\rb", 3), -1);
	assert_int_equal(mime_header_raw(&out, "X", "a\0b", 3), -1);
	assert_int_equal(mime_header_raw(&out, "X", "caf\xc3\xa9", 5), -1);
	/* A token no line can hold cannot be encoded in a structured field. */
	memset(big, 'a', sizeof(big));
	assert_int_equal(mime_header_raw(&out, "X", big, 995), 0);
	assert_int_equal(out.len, 4 + 998 + 2);
	buf_truncate(&out, 4);
	assert_int_equal(mime_header_raw(&out, "X", big, 996), -1);
	assert_int_equal(mime_header_raw(&out, "X", big, sizeof(big)), -1);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_free(&out);
	buf_free(&val);
}

/* Whatever goes in, no encoder ever emits a bare CR or LF. */
static void test_never_bare_cr_lf(void **state)
{
	static const char alphabet[] = "ab \t\r\n\r\r\n\n\0=?.\xc3\xbc\x80";
	char in[400];
	struct buf out = BUF_INIT;

	(void)state;
	rng_seed(0x5eed0005);
	for (int iter = 0; iter < 3000; iter++) {
		size_t n = rng_below(sizeof(in));

		for (size_t i = 0; i < n; i++)
			in[i] = iter % 3 == 0 ? (char)rng() :
				alphabet[rng_below(sizeof(alphabet) - 1)];
		buf_reset(&out);
		mime_crlf(&out, in, n);
		mime_qp_encode(&out, in, n);
		mime_base64_encode(&out, in, n);
		(void)mime_header_text(&out, "Subject", in, n);
		(void)mime_header_mailbox(&out, "To", in, n, in, n / 4);
		(void)mime_header_raw(&out, "X", in, n);
		check_crlf_only(out.data, out.len);
	}
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qp_basic),
		cmocka_unit_test(test_qp_line_ends),
		cmocka_unit_test(test_qp_trailing_whitespace),
		cmocka_unit_test(test_qp_leading_dot),
		cmocka_unit_test(test_qp_soft_breaks),
		cmocka_unit_test(test_qp_random_round_trip),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_lines),
		cmocka_unit_test(test_base64_random_round_trip),
		cmocka_unit_test(test_base64_valid),
		cmocka_unit_test(test_is_7bit),
		cmocka_unit_test(test_is_7bit_crlf),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_text_ascii),
		cmocka_unit_test(test_text_ascii_folding),
		cmocka_unit_test(test_text_ew_lookalike),
		cmocka_unit_test(test_text_utf8_short),
		cmocka_unit_test(test_text_utf8_long),
		cmocka_unit_test(test_text_long_word),
		cmocka_unit_test(test_text_refusal),
		cmocka_unit_test(test_text_controls),
		cmocka_unit_test(test_text_random_round_trip),
		cmocka_unit_test(test_mailbox_forms),
		cmocka_unit_test(test_mailbox_folding),
		cmocka_unit_test(test_mailbox_refusal),
		cmocka_unit_test(test_mailbox_random),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_never_bare_cr_lf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
