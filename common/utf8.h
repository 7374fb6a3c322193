/*
 * utf8 - the one check of UTF-8 well-formedness, shared by every parser
 * and encoder in volley (CSV, addresses, MIME headers, messages).
 *
 * The second-byte ranges are those of RFC 3629 section 4 (Unicode's table
 * 3-7): they are what rule out overlong forms, UTF-16 surrogates and
 * values past U+10FFFF, so the later bytes need only be continuations.
 */
#ifndef VOLLEY_UTF8_H
#define VOLLEY_UTF8_H

#include <stddef.h>

/*
 * utf8_seq - the length (1..4) of the well-formed character at p, with
 * left bytes available (left >= 1); 0 if it is ill-formed; -1 if the
 * bytes run out before it could tell (a prefix that is fine so far).
 */
static inline int utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	int n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((size_t)i >= left)
			return -1;
		if (p[i] < lo || p[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/* utf8_char_len - utf8_seq(), with a cut-short character counted bad */
static inline size_t utf8_char_len(const unsigned char *p, size_t left)
{
	int n = utf8_seq(p, left);

	return n > 0 ? (size_t)n : 0;
}

/* utf8_valid - is all of p[0..len) well-formed UTF-8? */
static inline int utf8_valid(const char *p, size_t len)
{
	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_char_len((const unsigned char *)p + i, len - i);
		if (n == 0)
			return 0;
	}
	return 1;
}

#endif
