/*
 * mailaddr - RFC 5321 mailbox syntax with RFC 6531 (SMTPUTF8) extensions
 * (see mailaddr.h).
 *
 * It runs once per imported row, so it is a single left-to-right pass
 * with no allocation, and ASCII classes come from one lookup table.  The
 * grammar, from RFC 5321 4.1.2 and 4.1.3 (atext from RFC 5322 3.2.3):
 *
 *   Mailbox         = Local-part "@" ( Domain / address-literal )
 *   Local-part      = Dot-string / Quoted-string
 *   Dot-string      = Atom *("." Atom)
 *   Atom            = 1*atext
 *   Quoted-string   = DQUOTE *QcontentSMTP DQUOTE
 *   QcontentSMTP    = qtextSMTP / quoted-pairSMTP
 *   quoted-pairSMTP = %d92 %d32-126
 *   qtextSMTP       = %d32-33 / %d35-91 / %d93-126
 *   Domain          = sub-domain *("." sub-domain)
 *   sub-domain      = Let-dig [Ldh-str]
 *   address-literal = "[" ( IPv4-address-literal /
 *                           IPv6-address-literal /
 *                           General-address-literal ) "]"
 *
 * RFC 6531 3.3 adds UTF8-non-ascii to atext and qtextSMTP, and U-labels
 * to sub-domain.  UTF8-non-ascii is RFC 3629 UTF-8, so overlong forms,
 * surrogates and code points past U+10FFFF are refused.  U-labels are
 * checked for well-formed UTF-8, the hyphen rule and 63 octets as
 * written; full IDNA2008 validation needs Unicode tables and belongs to
 * whoever resolves the domain.
 *
 * Reasons are static strings meant for the person who typed the address.
 */
#include "mailaddr.h"

#include <stdint.h>
#include <string.h>

#include "utf8.h"

/* Character classes for ASCII; bytes >= 0x80 are handled as UTF-8. */
#define MAILADDR_C_ATEXT	0x01	/* RFC 5322 atext */
#define MAILADDR_C_LDH		0x02	/* letter, digit or hyphen */
#define MAILADDR_C_HEX		0x04	/* HEXDIG */
#define MAILADDR_C_DIGIT	0x08	/* DIGIT */
#define MAILADDR_C_QTEXT	0x10	/* qtextSMTP */

#define NO 0
#define QT MAILADDR_C_QTEXT
#define SP (MAILADDR_C_ATEXT | MAILADDR_C_QTEXT)
#define HY (MAILADDR_C_ATEXT | MAILADDR_C_QTEXT | MAILADDR_C_LDH)
#define LT (MAILADDR_C_ATEXT | MAILADDR_C_QTEXT | MAILADDR_C_LDH)
#define HX (LT | MAILADDR_C_HEX)
#define DG (HX | MAILADDR_C_DIGIT)

static const unsigned char mailaddr_ctype[128] = {
	/* 0x00 */ NO, NO, NO, NO, NO, NO, NO, NO,
	/* 0x08 */ NO, NO, NO, NO, NO, NO, NO, NO,
	/* 0x10 */ NO, NO, NO, NO, NO, NO, NO, NO,
	/* 0x18 */ NO, NO, NO, NO, NO, NO, NO, NO,
	/* 0x20 */ QT, SP, NO, SP, SP, SP, SP, SP,
	/* 0x28 */ QT, QT, SP, SP, QT, HY, QT, SP,
	/* 0x30 */ DG, DG, DG, DG, DG, DG, DG, DG,
	/* 0x38 */ DG, DG, QT, QT, QT, SP, QT, SP,
	/* 0x40 */ QT, HX, HX, HX, HX, HX, HX, LT,
	/* 0x48 */ LT, LT, LT, LT, LT, LT, LT, LT,
	/* 0x50 */ LT, LT, LT, LT, LT, LT, LT, LT,
	/* 0x58 */ LT, LT, LT, QT, NO, QT, SP, SP,
	/* 0x60 */ SP, HX, HX, HX, HX, HX, HX, LT,
	/* 0x68 */ LT, LT, LT, LT, LT, LT, LT, LT,
	/* 0x70 */ LT, LT, LT, LT, LT, LT, LT, LT,
	/* 0x78 */ LT, LT, LT, SP, SP, SP, SP, NO,
};

#undef NO
#undef QT
#undef SP
#undef HY
#undef LT
#undef HX
#undef DG

#define MAILADDR_DOMAIN_LABEL_MAX 63

static const char mailaddr_err_brackets[] =
	"display name or angle brackets are not allowed; give the bare address";
static const char mailaddr_err_space[] =
	"whitespace is not allowed in an address";
static const char mailaddr_err_utf8[] = "invalid UTF-8";

/* mailaddr_is - whether ASCII byte c is in class cls */
static inline bool mailaddr_is(unsigned char c, unsigned cls)
{
	return c < 0x80 && (mailaddr_ctype[c] & cls) != 0;
}

/* mailaddr_bad_char - the reason for an ASCII byte that may not be here */
static const char *mailaddr_bad_char(unsigned char c, const char *reason)
{
	/* Stray spaces are the commonest import error; say so plainly. */
	if (c == ' ' || c == '\t')
		return mailaddr_err_space;
	return reason;
}

/*
 * mailaddr_dot_string - an unquoted local part ending at the first '@';
 * *at_r is that '@'.
 */
static const char *mailaddr_dot_string(const unsigned char *p, size_t len,
				       size_t *at_r, unsigned *flags)
{
	size_t i = 0, atom = 0;

	for (;;) {
		unsigned char c;

		if (i == len)
			return "missing @";
		c = p[i];
		if (c < 0x80) {
			if (mailaddr_ctype[c] & MAILADDR_C_ATEXT) {
				i++;
				continue;
			}
			if (c == '.' || c == '@') {
				if (i == 0 && c == '@')
					return "empty local part";
				if (i == atom)
					return "empty label in local part "
					       "(leading, trailing or double "
					       "dot)";
				if (c == '@')
					break;
				atom = ++i;
				continue;
			}
			return mailaddr_bad_char(c,
					"invalid character in local part");
		} else {
			size_t n = utf8_char_len(p + i, len - i);

			if (n == 0)
				return mailaddr_err_utf8;
			*flags |= MAILADDR_SMTPUTF8;
			i += n;
		}
	}
	*at_r = i;
	return NULL;
}

/*
 * mailaddr_quoted_string - a quoted local part, p[0] being the opening
 * quote; *at_r is the '@' that must follow the closing quote.
 */
static const char *mailaddr_quoted_string(const unsigned char *p,
					  size_t len, size_t *at_r,
					  unsigned *flags)
{
	size_t i = 1;

	for (;;) {
		unsigned char c;

		if (i == len)
			return "unterminated quoted local part";
		c = p[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 == len)
				return "unterminated quoted local part";
			/* quoted-pairSMTP is ASCII only, even in RFC 6531. */
			if (p[i + 1] < 32 || p[i + 1] > 126)
				return "backslash in quoted local part must be "
				       "followed by a printable ASCII "
				       "character";
			i += 2;
		} else if (c >= 0x80) {
			size_t n = utf8_char_len(p + i, len - i);

			if (n == 0)
				return mailaddr_err_utf8;
			*flags |= MAILADDR_SMTPUTF8;
			i += n;
		} else if (mailaddr_ctype[c] & MAILADDR_C_QTEXT) {
			i++;
		} else {
			return "invalid character in quoted local part";
		}
	}
	*flags |= MAILADDR_QUOTED;
	i++;
	if (i == len)
		return "missing @";
	if (p[i] != '@')
		return mailaddr_bad_char(p[i], "quoted local part must be "
					 "followed directly by @");
	*at_r = i;
	return NULL;
}

/*
 * mailaddr_domain - dot-separated labels of letters, digits and hyphens,
 * or U-labels; p[0..len) is everything after the '@'.
 */
static const char *mailaddr_domain(const unsigned char *p, size_t len,
				   unsigned *flags)
{
	size_t i = 0, start = 0;

	for (;;) {
		unsigned char c;

		if (i == len || p[i] == '.') {
			if (i == start)
				return "empty label in domain (leading, "
				       "trailing or double dot)";
			if (i - start > MAILADDR_DOMAIN_LABEL_MAX)
				return "domain label longer than 63 octets";
			if (p[start] == '-' || p[i - 1] == '-')
				return "domain label starts or ends with a "
				       "hyphen";
			if (i == len)
				return NULL;
			start = ++i;
			continue;
		}
		c = p[i];
		if (c < 0x80) {
			if (mailaddr_ctype[c] & MAILADDR_C_LDH) {
				i++;
				continue;
			}
			if (c == '@')
				return "more than one @ (an @ in the local "
				       "part must be inside quotes)";
			return mailaddr_bad_char(c,
						 "invalid character in domain");
		} else {
			size_t n = utf8_char_len(p + i, len - i);

			if (n == 0)
				return mailaddr_err_utf8;
			*flags |= MAILADDR_SMTPUTF8;
			i += n;
		}
	}
}

/* mailaddr_ipv4 - Snum 3("." Snum), Snum being 1*3DIGIT of 0..255 */
static bool mailaddr_ipv4(const unsigned char *p, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0) {
			if (i == len || p[i] != '.')
				return false;
			i++;
		}
		while (i < len && digits < 3 &&
		       mailaddr_is(p[i], MAILADDR_C_DIGIT)) {
			v = v * 10 + (unsigned)(p[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == len;
}

/*
 * mailaddr_ipv6 - IPv6-addr of RFC 5321 4.1.3: IPv6-full (8 groups),
 * IPv6-comp (at most 6 groups beside "::"), IPv6v4-full (6 groups and an
 * IPv4 address) or IPv6v4-comp (at most 4 groups beside "::", then IPv4).
 * These are stricter than RFC 4291: "::" may not stand for a single group.
 */
static bool mailaddr_ipv6(const unsigned char *p, size_t len)
{
	unsigned groups = 0;
	bool compressed = false, v4 = false;
	size_t i = 0;

	if (len >= 2 && p[0] == ':' && p[1] == ':') {
		compressed = true;
		i = 2;
	}
	while (i < len) {
		size_t start = i;

		while (i < len && mailaddr_is(p[i], MAILADDR_C_HEX))
			i++;
		/* A run of digits followed by a dot starts the IPv4 tail. */
		if (i < len && p[i] == '.') {
			if (!mailaddr_ipv4(p + start, len - start))
				return false;
			v4 = true;
			break;
		}
		if (i == start || i - start > 4)
			return false;
		groups++;
		if (i == len)
			break;
		if (p[i] != ':' || ++i == len)
			return false;
		if (p[i] == ':') {
			if (compressed)
				return false;
			compressed = true;
			i++;
		}
	}
	if (compressed)
		return groups <= (v4 ? 4u : 6u);
	return groups == (v4 ? 6u : 8u);
}

/* mailaddr_tag_is_ipv6 - ABNF strings are case-insensitive (RFC 5234) */
static bool mailaddr_tag_is_ipv6(const unsigned char *p, size_t len)
{
	return len >= 5 && (p[0] | 0x20) == 'i' && (p[1] | 0x20) == 'p' &&
	       (p[2] | 0x20) == 'v' && p[3] == '6' && p[4] == ':';
}

/*
 * mailaddr_literal - "[" ... "]" up to the end of the address; p[0] is
 * the '['.
 */
static const char *mailaddr_literal(const unsigned char *p, size_t len,
				    unsigned *flags)
{
	const unsigned char *in = p + 1;
	size_t n;

	if (len < 2 || p[len - 1] != ']') {
		if (memchr(p, ']', len) != NULL)
			return "text after the address literal";
		return "unterminated address literal";
	}
	n = len - 2;
	*flags |= MAILADDR_LITERAL;
	if (mailaddr_tag_is_ipv6(in, n)) {
		if (!mailaddr_ipv6(in + 5, n - 5))
			return "invalid IPv6 address literal";
		return NULL;
	}
	if (memchr(in, ':', n) == NULL) {
		if (!mailaddr_ipv4(in, n))
			return "invalid IPv4 address literal";
		return NULL;
	}
	/* "[::1]" and "[2001:db8::1]" are common; point at the fix. */
	if (mailaddr_ipv6(in, n))
		return "IPv6 address literal needs the \"IPv6:\" prefix";
	return "unsupported address literal tag";
}

/* mailaddr_parse - the whole mailbox; NULL or the reason it is invalid */
static const char *mailaddr_parse(const unsigned char *p, size_t len,
				  unsigned *flags)
{
	const char *reason;
	size_t at;

	if (len == 0)
		return "empty address";
	if (len > MAILADDR_MAX)
		return "address longer than 254 octets";
	if (p[0] == '"')
		reason = mailaddr_quoted_string(p, len, &at, flags);
	else
		reason = mailaddr_dot_string(p, len, &at, flags);
	if (reason != NULL)
		return reason;
	if (at > MAILADDR_LOCAL_MAX)
		return "local part longer than 64 octets";
	at++;
	if (at == len)
		return "empty domain";
	if (p[at] != '[')
		return mailaddr_domain(p + at, len - at, flags);
	reason = mailaddr_literal(p + at, len - at, flags);
	/*
	 * A literal with a stray space (often a trailing one) would
	 * otherwise read as a bad IP address or as text after the
	 * literal; say what domains and local parts say.
	 */
	if (reason != NULL && (memchr(p + at, ' ', len - at) != NULL ||
			       memchr(p + at, '\t', len - at) != NULL))
		return mailaddr_err_space;
	return reason;
}

/*
 * mailaddr_has_brackets - whether '<' or '>' occurs outside a leading
 * quoted string, where it would be legal.
 */
static bool mailaddr_has_brackets(const unsigned char *p, size_t len)
{
	size_t i = 0;

	/* addr may be NULL when len is 0, and memchr() must not see it. */
	if (len == 0)
		return false;
	if (p[0] == '"') {
		for (i = 1; i < len && p[i] != '"'; i++) {
			if (p[i] == '\\')
				i++;
		}
		if (i >= len)
			return false;
	}
	return memchr(p + i, '<', len - i) != NULL ||
	       memchr(p + i, '>', len - i) != NULL;
}

bool mailaddr_check(const char *addr, size_t len, unsigned *flags_r,
		    const char **reason_r)
{
	const unsigned char *p = (const unsigned char *)addr;
	unsigned flags = 0;
	const char *reason;

	reason = mailaddr_parse(p, len, &flags);
	if (reason != NULL) {
		/*
		 * "Name <addr>" fails wherever the parse trips first, often
		 * on the space; the useful advice is about the brackets.
		 * Done only on failure so valid addresses pay nothing.
		 */
		if (mailaddr_has_brackets(p, len))
			reason = mailaddr_err_brackets;
		flags = 0;
	}
	if (flags_r != NULL)
		*flags_r = flags;
	if (reason_r != NULL)
		*reason_r = reason;
	return reason == NULL;
}
