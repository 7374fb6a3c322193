/*
 * fuzz_mime_header - libFuzzer target for the MIME encoders of
 * templates/mime_enc.h, above all the header encoders that recipient
 * data reaches: RFC 2047 encoded-words and folding.
 *
 * The first byte picks the function (and a header name), the rest is the
 * value; for mime_header_mailbox a 0xff byte (never in UTF-8) splits it
 * into the display name and the address.  Every header written must be
 * "Name: " and CRLF-ended lines, each CRLF followed by a space or tab that
 * starts a line not made of whitespace alone, no line over 998 octets,
 * every byte 7-bit (but an address, which goes as it is), encoded-words
 * of at most 75 characters that never split a UTF-8 character; and it
 * must read back to the value, unfolded and decoded as RFC 2047 6.2 says.
 * A refusal must append nothing, and come only for the reasons
 * mime_enc.h names.  The body encoders must decode back to their input,
 * and mime_is_7bit and mime_is_7bit_crlf must agree with a plain
 * byte-by-byte reading of their definition.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime_enc.h"
#include "utf8.h"

#define PREFIX "X: y\r\n"
#define PREFIX_LEN 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"Subject", "X", "Comments", "X-A-Rather-Long-Header-Name-For-Folding",
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	abort();	/* the encoders write upper-case hex only */
}

static int b64val(char c)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789+/";
	const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

	if (p == NULL)
		abort();
	return (int)(p - alphabet);
}

/* b64_decode - n characters (a multiple of 4, padded) onto out */
static void b64_decode(const char *s, size_t n, struct buf *out)
{
	if (n % 4 != 0)
		abort();
	for (size_t i = 0; i < n; i += 4) {
		unsigned v = 0;
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			v <<= 6;
			if (s[i + k] == '=' && i + 4 == n && k >= 2)
				pad++;
			else if (pad == 0)
				v |= (unsigned)b64val(s[i + k]);
			else
				abort();	/* data after padding */
		}
		buf_putc(out, (char)(v >> 16));
		if (pad < 2)
			buf_putc(out, (char)(v >> 8));
		if (pad < 1)
			buf_putc(out, (char)v);
	}
}

/* to_crlf - p with every LF, CRLF or lone CR made CRLF, the plain way */
static void to_crlf(struct buf *out, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			if (i + 1 < n && p[i + 1] == '\n')
				i++;
			buf_append(out, "\r\n", 2);
		} else if (p[i] == '\n') {
			buf_append(out, "\r\n", 2);
		} else {
			buf_putc(out, p[i]);
		}
	}
}

/* crlf_only - every CR starts a CRLF and every LF ends one */
static void crlf_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) ||
		    (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
			abort();
	}
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * unfold - check a header's lines and append its unfolded value (after
 * "Name: ") to val.  seven_bit_end: bytes from here on (an address) may
 * be 8-bit.
 */
static void unfold(const char *s, size_t n, const char *name,
		   size_t seven_bit_end, struct buf *val)
{
	size_t nl = strlen(name), i = 0;

	crlf_only(s, n);
	if (n < nl + 4 || memcmp(s, name, nl) != 0 ||
	    memcmp(s + nl, ": ", 2) != 0 || memcmp(s + n - 2, "\r\n", 2))
		abort();
	for (size_t k = 0; k < n; k++) {
		if (s[k] == '\0' ||
		    ((unsigned char)s[k] >= 0x80 && k < seven_bit_end))
			abort();
	}
	while (i < n) {
		const char *line = s + i;
		const char *e = memmem(line, n - i, "\r\n", 2);
		size_t len = (size_t)(e - line), j = 0;

		if (len > MIME_HEADER_HARD_MAX)
			abort();
		if (i > 0) {
			/* a fold: WSP, and not a line of WSP alone */
			while (j < len && is_wsp(line[j]))
				j++;
			if (j == 0 || j == len)
				abort();
		}
		j = i == 0 ? nl + 2 : 0;
		buf_append(val, line + j, len - j);
		i += len + 2;
	}
}

/*
 * ew_decode_one - one encoded-word: at most 75 characters, UTF-8, Q text
 * of the characters allowed where it stands, a payload that is whole
 * UTF-8 characters.
 */
static void ew_decode_one(const char *w, size_t n, bool phrase,
			  struct buf *dec)
{
	static const char phrase_ok[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"0123456789!*+-/";
	struct buf one = BUF_INIT;
	const char *p = w + 10;
	size_t plen;

	if (n > 75 || n < 13 || memcmp(w, "=?UTF-8?", 8) != 0 ||
	    (w[8] != 'Q' && w[8] != 'B') || w[9] != '?' ||
	    memcmp(w + n - 2, "?=", 2) != 0)
		abort();
	plen = n - 12;
	if (w[8] == 'B') {
		b64_decode(p, plen, &one);
	} else {
		for (size_t i = 0; i < plen; i++) {
			char c = p[i];

			if (c == '=') {
				if (i + 2 >= plen)
					abort();
				buf_putc(&one, (char)(hexval(p[i + 1]) << 4 |
						      hexval(p[i + 2])));
				i += 2;
			} else if (c == '_') {
				buf_putc(&one, ' ');
			} else if (phrase ? strchr(phrase_ok, c) == NULL :
				   (c <= 0x20 || c >= 0x7f || c == '?')) {
				abort();
			} else {
				buf_putc(&one, c);
			}
		}
	}
	if (one.len == 0 || !utf8_valid(one.data, one.len))
		abort();
	buf_append(dec, one.data, one.len);
	buf_free(&one);
}

/*
 * ew_decode - an unfolded value as RFC 2047 6.2 reads it: whitespace
 * between two encoded-words is dropped, other whitespace kept; a word
 * that holds "=?" must be an encoded-word.
 */
static void ew_decode(const char *s, size_t n, bool phrase, struct buf *dec)
{
	bool prev_ew = false;
	size_t i = 0;

	while (i < n) {
		size_t a = i, b;

		while (i < n && is_wsp(s[i]))
			i++;
		b = i;
		while (i < n && !is_wsp(s[i]))
			i++;
		if (b == i) {
			buf_append(dec, s + a, b - a);
			break;
		}
		if (i - b >= 2 && s[b] == '=' && s[b + 1] == '?') {
			if (!prev_ew)
				buf_append(dec, s + a, b - a);
			ew_decode_one(s + b, i - b, phrase, dec);
			prev_ew = true;
		} else {
			if (memmem(s + b, i - b, "=?", 2) != NULL)
				abort();
			buf_append(dec, s + a, i - a);
			prev_ew = false;
		}
	}
}

static bool has_byte(const char *p, size_t n, bool (*bad)(unsigned char))
{
	for (size_t i = 0; i < n; i++)
		if (bad((unsigned char)p[i]))
			return true;
	return false;
}

static bool crlfnul(unsigned char c)
{
	return c == '\r' || c == '\n' || c == '\0';
}

static bool crlfnul_8bit(unsigned char c)
{
	return crlfnul(c) || c >= 0x80;
}

/*
 * longest_unbreakable - the shortest possible longest line of value
 * folded only at its whitespace: each word with the whitespace before it
 * (the first with "Name: " too), the last with the whitespace after it.
 */
static size_t longest_unbreakable(const char *v, size_t n, size_t prefix)
{
	size_t i = 0, k, longest = prefix;
	bool first = true;

	while (i < n) {
		size_t a = i, cost;

		while (i < n && is_wsp(v[i]))
			i++;
		while (i < n && !is_wsp(v[i]))
			i++;
		cost = i - a + (first ? prefix : 0);
		first = false;
		for (k = i; k < n && is_wsp(v[k]); k++)
			;
		if (k == n) {
			cost += k - i;
			i = k;
		}
		if (cost > longest)
			longest = cost;
	}
	return longest;
}

static void fuzz_text(const char *name, const char *v, size_t n)
{
	struct buf out = BUF_INIT, val = BUF_INIT, dec = BUF_INIT;

	buf_append(&out, PREFIX, PREFIX_LEN);
	if (mime_header_text(&out, name, v, n) < 0) {
		if (out.len != PREFIX_LEN ||
		    (!has_byte(v, n, crlfnul) && utf8_valid(v, n)))
			abort();
		goto out;
	}
	if (memcmp(out.data, PREFIX, PREFIX_LEN) != 0)
		abort();
	unfold(out.data + PREFIX_LEN, out.len - PREFIX_LEN, name, SIZE_MAX,
	       &val);
	ew_decode(buf_cstr(&val), val.len, false, &dec);
	if (dec.len != n || memcmp(buf_cstr(&dec), v, n) != 0)
		abort();
out:
	buf_free(&out);
	buf_free(&val);
	buf_free(&dec);
}

static void fuzz_mailbox(const char *name, const char *d, size_t dn,
			 const char *addr, size_t an)
{
	struct buf out = BUF_INIT, val = BUF_INIT, dec = BUF_INIT;
	size_t pn, tail = an + (dn > 0 ? 3 : 2);
	const char *v;
	int rc;

	buf_append(&out, PREFIX, PREFIX_LEN);
	rc = mime_header_mailbox(&out, name, d, dn, addr, an);
	if (rc < 0) {
		/* the reasons mime_enc.h gives, and nothing appended */
		if (out.len != PREFIX_LEN)
			abort();
		if (!has_byte(d, dn, crlfnul) && !has_byte(addr, an, crlfnul) &&
		    utf8_valid(d, dn) &&
		    (dn > 0 ? an + 3 : strlen(name) + 2 + an) <=
		    MIME_HEADER_HARD_MAX)
			abort();
		goto out;
	}
	unfold(out.data + PREFIX_LEN, out.len - PREFIX_LEN, name,
	       out.len - PREFIX_LEN - tail, &val);
	v = buf_cstr(&val);
	if (dn == 0) {
		if (val.len != an || memcmp(v, addr, an) != 0)
			abort();
		goto out;
	}
	if (val.len < an + 4 || memcmp(v + val.len - an - 3, " <", 2) != 0 ||
	    memcmp(v + val.len - an - 1, addr, an) != 0 ||
	    v[val.len - 1] != '>')
		abort();
	pn = val.len - an - 3;
	if (v[0] == '"') {
		if (pn < 2 || v[pn - 1] != '"')
			abort();
		for (size_t i = 1; i < pn - 1; i++) {
			if (v[i] == '\\')
				i++;
			else if (v[i] == '"')
				abort();
			buf_putc(&dec, v[i]);
		}
	} else if (memmem(v, pn, "=?", 2) != NULL) {
		/* all of it encoded-words: no plain word among them */
		for (size_t i = 0; i < pn; i++)
			if ((i == 0 || v[i - 1] == ' ') &&
			    (pn - i < 2 || memcmp(v + i, "=?", 2) != 0))
				abort();
		ew_decode(v, pn, true, &dec);
	} else {
		for (size_t i = 0; i < pn; i++)
			if (!is_wsp(v[i]) &&
			    !strchr("!#$%&'*+-/=?^_`{|}~", v[i]) &&
			    !(v[i] >= 'a' && v[i] <= 'z') &&
			    !(v[i] >= 'A' && v[i] <= 'Z') &&
			    !(v[i] >= '0' && v[i] <= '9'))
				abort();
		buf_append(&dec, v, pn);
	}
	if (dec.len != dn || memcmp(buf_cstr(&dec), d, dn) != 0)
		abort();
out:
	buf_free(&out);
	buf_free(&val);
	buf_free(&dec);
}

static void fuzz_raw(const char *name, const char *v, size_t n)
{
	struct buf out = BUF_INIT, val = BUF_INIT;
	bool fits = longest_unbreakable(v, n, strlen(name) + 2) <=
		    MIME_HEADER_HARD_MAX;

	buf_append(&out, PREFIX, PREFIX_LEN);
	if (mime_header_raw(&out, name, v, n) < 0) {
		if (out.len != PREFIX_LEN ||
		    (!has_byte(v, n, crlfnul_8bit) && fits))
			abort();
		goto out;
	}
	if (!fits)
		abort();
	unfold(out.data + PREFIX_LEN, out.len - PREFIX_LEN, name, SIZE_MAX,
	       &val);
	if (val.len != n || memcmp(buf_cstr(&val), v, n) != 0)
		abort();
out:
	buf_free(&out);
	buf_free(&val);
}

/* fuzz_qp - quoted-printable: its line rules, and it decodes back */
static void fuzz_qp(const char *v, size_t n)
{
	struct buf out = BUF_INIT, dec = BUF_INIT, want = BUF_INIT;
	const char *s;
	size_t i = 0;

	mime_qp_encode(&out, v, n);
	s = buf_cstr(&out);
	crlf_only(s, out.len);
	if ((n == 0) != (out.len == 0) ||
	    (n > 0 && memcmp(s + out.len - 2, "\r\n", 2) != 0))
		abort();
	while (i < out.len) {
		const char *line = s + i;
		size_t len = (size_t)((const char *)memmem(line, out.len - i,
							   "\r\n", 2) - line);
		bool soft = len > 0 && line[len - 1] == '=';
		size_t body = soft ? len - 1 : len;

		/* no '.' to start a line, no whitespace to end one */
		if (len > MIME_LINE_MAX || (len > 0 && line[0] == '.') ||
		    (!soft && body > 0 && is_wsp(line[body - 1])))
			abort();
		for (size_t k = 0; k < body; k++) {
			unsigned char c = (unsigned char)line[k];

			if (c == '=') {
				if (k + 2 >= body)
					abort();	/* a split =XX */
				buf_putc(&dec, (char)(hexval(line[k + 1]) << 4 |
						      hexval(line[k + 2])));
				k += 2;
			} else if ((c < 0x20 && c != '\t') || c >= 0x7f) {
				abort();
			} else {
				buf_putc(&dec, (char)c);
			}
		}
		if (!soft)
			buf_append(&dec, "\r\n", 2);
		i += len + 2;
	}
	to_crlf(&want, v, n);
	if (want.len > 0 && (want.len < 2 ||
			     memcmp(want.data + want.len - 2, "\r\n", 2) != 0))
		buf_append(&want, "\r\n", 2);
	if (dec.len != want.len ||
	    memcmp(buf_cstr(&dec), buf_cstr(&want), dec.len) != 0)
		abort();
	buf_free(&out);
	buf_free(&dec);
	buf_free(&want);
}

/* fuzz_base64 - lines of 76 (the last shorter), and it decodes back */
static void fuzz_base64(const char *v, size_t n)
{
	struct buf out = BUF_INIT, dec = BUF_INIT;
	const char *s;
	size_t i = 0;

	mime_base64_encode(&out, v, n);
	s = buf_cstr(&out);
	crlf_only(s, out.len);
	while (i < out.len) {
		const char *e = memmem(s + i, out.len - i, "\r\n", 2);
		size_t len = (size_t)(e - (s + i));

		if (e == NULL || len == 0 || len > MIME_LINE_MAX ||
		    (len < MIME_LINE_MAX && i + len + 2 != out.len))
			abort();
		b64_decode(s + i, len, &dec);
		i += len + 2;
	}
	if (dec.len != n || memcmp(buf_cstr(&dec), v, n) != 0)
		abort();
	buf_free(&out);
	buf_free(&dec);
}

/* fuzz_7bit - mime_crlf, mime_is_7bit and mime_is_7bit_crlf */
static void fuzz_7bit(const char *v, size_t n)
{
	struct buf out = BUF_INIT, want = BUF_INIT;
	bool seven = true, crlf = true;
	size_t line = 0;

	mime_crlf(&out, v, n);
	to_crlf(&want, v, n);
	crlf_only(buf_cstr(&out), out.len);
	if (out.len != want.len ||
	    memcmp(buf_cstr(&out), buf_cstr(&want), out.len) != 0)
		abort();

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '\n') {
			if (i == 0 || v[i - 1] != '\r')
				crlf = false;
			line = 0;
			continue;
		}
		if (c == '\r' && i + 1 < n && v[i + 1] == '\n')
			continue;
		if (c >= 0x80 || c == '\0' || c == '\r' ||
		    ++line > MIME_HEADER_HARD_MAX)
			seven = false;
	}
	if (mime_is_7bit(v, n) != seven ||
	    mime_is_7bit_crlf(v, n) != (seven && crlf))
		abort();
	buf_free(&out);
	buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v = (const char *)data + 1, *split;
	const char *name;
	size_t n;

	if (size == 0)
		return 0;
	n = size - 1;
	name = names[(data[0] / 8) % 4];
	switch (data[0] % 8) {
	case 0:
	case 1:
		fuzz_text(name, v, n);
		break;
	case 2:
	case 3:
		split = memchr(v, 0xff, n);
		if (split == NULL)
			fuzz_mailbox(name, v, n, "a@example.org", 13);
		else
			fuzz_mailbox(name, v, (size_t)(split - v), split + 1,
				     n - (size_t)(split - v) - 1);
		break;
	case 4:
		fuzz_raw(name, v, n);
		break;
	case 5:
		fuzz_qp(v, n);
		break;
	case 6:
		fuzz_base64(v, n);
		break;
	default:
		fuzz_7bit(v, n);
		break;
	}
	return 0;
}
