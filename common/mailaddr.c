/*
 * mailaddr - RFC 5321 mailbox syntax with RFC 6531 extensions (see
 * mailaddr.h).
 *
 * One pass, no allocation, a table for atext: it runs once per imported
 * row.  The grammar (RFC 5321 4.1.2, 4.1.3):
 *
 *   Mailbox        = Local-part "@" ( Domain / address-literal )
 *   Local-part     = Dot-string / Quoted-string
 *   Dot-string     = Atom *("."  Atom)
 *   Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
 *   QcontentSMTP   = qtextSMTP / quoted-pairSMTP
 *   quoted-pairSMTP = %d92 %d32-126
 *   qtextSMTP      = %d32-33 / %d35-91 / %d93-126
 *   Domain         = sub-domain *("." sub-domain)
 *   sub-domain     = Let-dig [Ldh-str]
 *
 * RFC 6531 3.3 adds UTF8-non-ascii to atext, qtextSMTP and sub-domain
 * (as U-labels).
 */
#include "common/mailaddr.h"

#include <stdint.h>
#include <string.h>

/* atext (RFC 5322 3.2.3): letters, digits and these specials. */
static const char mailaddr_atext_specials[] = "!#$%&'*+-/=?^_`{|}~";

static bool mailaddr_atext_table[256];
static bool mailaddr_table_ready;

/* mailaddr_init_table - the atext lookup table, built on first use */
static void mailaddr_init_table(void)
{
	for (int c = 0; c < 256; c++) {
		mailaddr_atext_table[c] =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') ||
			(c != 0 && strchr(mailaddr_atext_specials, c) != NULL);
	}
	/* Benign race: every thread writes the same values. */
	mailaddr_table_ready = true;
}

/*
 * mailaddr_utf8 - length of the well-formed UTF-8 sequence at p (a
 * non-ASCII lead byte), or 0.
 */
static size_t mailaddr_utf8(const unsigned char *p, size_t left)
{
	size_t n;
	uint32_t cp;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

static bool mailaddr_fail(const char **reason_r, const char *reason)
{
	if (reason_r != NULL)
		*reason_r = reason;
	return false;
}

/* mailaddr_ipv4 - a dotted quad of 1-3 digit numbers 0..255 */
static bool mailaddr_ipv4(const char *p, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= len || p[i] != '.')
				return false;
			i++;
		}
		while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(p[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return false;
	}
	return i == len;
}

/*
 * mailaddr_hex_groups - parse "h:h:...:h" (1-4 hex digits each) at the
 * start of p[0..len); returns the number of groups, or -1.  An empty
 * string is zero groups.  *used_r is the bytes consumed.
 */
static int mailaddr_hex_groups(const char *p, size_t len, size_t *used_r)
{
	size_t i = 0;
	int groups = 0;

	if (len == 0) {
		*used_r = 0;
		return 0;
	}
	for (;;) {
		size_t digits = 0;

		while (i < len && digits < 5 &&
		       ((p[i] >= '0' && p[i] <= '9') ||
			(p[i] >= 'a' && p[i] <= 'f') ||
			(p[i] >= 'A' && p[i] <= 'F'))) {
			i++;
			digits++;
		}
		if (digits == 0 || digits > 4)
			return -1;
		groups++;
		if (i == len || p[i] != ':')
			break;
		i++;
	}
	*used_r = i;
	return groups;
}

/*
 * mailaddr_ipv6_part - hex groups, optionally ending in an IPv4 address
 * when v4 is allowed.  Returns the number of 16-bit groups (an IPv4
 * address counts 2), or -1.
 */
static int mailaddr_ipv6_part(const char *p, size_t len, bool v4)
{
	const char *last_colon;
	size_t used;
	int groups;

	if (len == 0)
		return 0;
	/* An IPv4 tail follows the last colon and holds dots. */
	if (v4 && memchr(p, '.', len) != NULL) {
		size_t head;

		last_colon = NULL;
		for (size_t i = len; i > 0; i--) {
			if (p[i - 1] == ':') {
				last_colon = p + i - 1;
				break;
			}
		}
		if (last_colon == NULL)
			return mailaddr_ipv4(p, len) ? 2 : -1;
		head = (size_t)(last_colon - p);
		if (!mailaddr_ipv4(last_colon + 1, len - head - 1))
			return -1;
		groups = mailaddr_hex_groups(p, head, &used);
		if (groups < 0 || used != head || head == 0)
			return -1;
		return groups + 2;
	}
	groups = mailaddr_hex_groups(p, len, &used);
	if (groups < 0 || used != len || p[len - 1] == ':')
		return -1;
	return groups;
}

/*
 * mailaddr_ipv6 - the four RFC 5321 forms: IPv6-full (8 groups),
 * IPv6-comp (at most 6 groups around "::"), IPv6v4-full (6 groups and an
 * IPv4 address), IPv6v4-comp (at most 4 groups around "::", then IPv4).
 */
static bool mailaddr_ipv6(const char *p, size_t len)
{
	const char *dc = NULL;
	int before, after;
	bool v4;

	for (size_t i = 0; i + 1 < len; i++) {
		if (p[i] == ':' && p[i + 1] == ':') {
			dc = p + i;
			break;
		}
	}
	v4 = memchr(p, '.', len) != NULL;
	if (dc == NULL) {
		int groups = mailaddr_ipv6_part(p, len, true);

		return groups == 8;
	}
	/* One "::" only, and no ":::". */
	if (dc + 2 < p + len && dc[2] == ':')
		return false;
	for (const char *q = dc + 2; q + 1 < p + len; q++) {
		if (q[0] == ':' && q[1] == ':')
			return false;
	}
	before = mailaddr_ipv6_part(p, (size_t)(dc - p), false);
	after = mailaddr_ipv6_part(dc + 2, (size_t)(p + len - dc - 2), true);
	if (before < 0 || after < 0)
		return false;
	if (v4)
		return before + (after - 2) <= 4 && after >= 2;
	return before + after <= 6;
}

/* mailaddr_literal - "[" ... "]" */
static bool mailaddr_literal(const char *p, size_t len, const char **reason_r)
{
	const char *in = p + 1;
	size_t n = len - 2;

	if (len < 2 || p[len - 1] != ']')
		return mailaddr_fail(reason_r, "unterminated address literal");
	if (n >= 5 && memcmp(in, "IPv6:", 5) == 0) {
		if (!mailaddr_ipv6(in + 5, n - 5))
			return mailaddr_fail(reason_r,
					     "invalid IPv6 address literal");
		return true;
	}
	if (memchr(in, ':', n) != NULL)
		return mailaddr_fail(reason_r,
				     "unsupported address literal tag");
	if (!mailaddr_ipv4(in, n))
		return mailaddr_fail(reason_r, "invalid IPv4 address literal");
	return true;
}

/* mailaddr_domain - labels of letters, digits, hyphens (or U-labels) */
static bool mailaddr_domain(const unsigned char *p, size_t len,
			    unsigned *flags, const char **reason_r)
{
	size_t label = 0;

	if (len == 0)
		return mailaddr_fail(reason_r, "empty domain");
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? p[i] : '.';

		if (c == '.') {
			if (label == 0)
				return mailaddr_fail(reason_r, "empty label in "
						     "domain (leading, "
						     "trailing or double "
						     "dot)");
			if (label > 63)
				return mailaddr_fail(reason_r, "domain label "
						     "longer than 63 octets");
			if (p[i - 1] == '-' || p[i - label] == '-')
				return mailaddr_fail(reason_r, "domain label "
						     "starts or ends with a "
						     "hyphen");
			label = 0;
			continue;
		}
		if (c >= 0x80) {
			size_t n = mailaddr_utf8(p + i, len - i);

			if (n == 0)
				return mailaddr_fail(reason_r,
						     "invalid UTF-8");
			*flags |= MAILADDR_SMTPUTF8;
			label += n;
			i += n - 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-')) {
			if (c == ' ' || c == '\t')
				return mailaddr_fail(reason_r, "whitespace is "
						     "not allowed in an "
						     "address");
			if (c == '<' || c == '>')
				return mailaddr_fail(reason_r, "display name "
						     "or angle brackets are "
						     "not allowed; give the "
						     "bare address");
			if (c == '@')
				return mailaddr_fail(reason_r, "more than one "
						     "@ outside quotes");
			return mailaddr_fail(reason_r,
					     "invalid character in domain");
		}
		label++;
	}
	return true;
}

/*
 * mailaddr_local - the local part, p[0..len); *flags gains QUOTED and
 * SMTPUTF8 as found.
 */
static bool mailaddr_local(const unsigned char *p, size_t len,
			   unsigned *flags, const char **reason_r)
{
	size_t atom = 0;

	if (len == 0)
		return mailaddr_fail(reason_r, "empty local part");
	if (len > MAILADDR_LOCAL_MAX)
		return mailaddr_fail(reason_r,
				     "local part longer than 64 octets");
	if (p[0] == '"') {
		/* The caller found the closing quote right before '@'. */
		*flags |= MAILADDR_QUOTED;
		for (size_t i = 1; i + 1 < len; i++) {
			unsigned char c = p[i];

			if (c == '\\') {
				if (i + 2 >= len || p[i + 1] < 32 ||
				    p[i + 1] > 126)
					return mailaddr_fail(reason_r,
						"invalid quoted pair in local "
						"part");
				i++;
			} else if (c >= 0x80) {
				size_t n = mailaddr_utf8(p + i, len - 1 - i);

				if (n == 0)
					return mailaddr_fail(reason_r,
							     "invalid UTF-8");
				*flags |= MAILADDR_SMTPUTF8;
				i += n - 1;
			} else if (c < 32 || c > 126 || c == '"') {
				return mailaddr_fail(reason_r, "invalid "
						     "character in quoted "
						     "local part");
			}
		}
		return true;
	}
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? p[i] : '.';

		if (c == '.') {
			if (atom == 0)
				return mailaddr_fail(reason_r, "empty label in "
						     "local part (leading, "
						     "trailing or double "
						     "dot)");
			atom = 0;
		} else if (c >= 0x80) {
			size_t n = mailaddr_utf8(p + i, len - i);

			if (n == 0)
				return mailaddr_fail(reason_r,
						     "invalid UTF-8");
			*flags |= MAILADDR_SMTPUTF8;
			atom += n;
			i += n - 1;
		} else if (mailaddr_atext_table[c]) {
			atom++;
		} else if (c == ' ' || c == '\t') {
			return mailaddr_fail(reason_r, "whitespace is not "
					     "allowed in an address");
		} else if (c == '<' || c == '>') {
			return mailaddr_fail(reason_r, "display name or angle "
					     "brackets are not allowed; give "
					     "the bare address");
		} else {
			return mailaddr_fail(reason_r,
					     "invalid character in local part");
		}
	}
	return true;
}

bool mailaddr_check(const char *addr, size_t len, unsigned *flags_r,
		    const char **reason_r)
{
	const unsigned char *p = (const unsigned char *)addr;
	size_t at;
	unsigned flags = 0;

	if (!mailaddr_table_ready)
		mailaddr_init_table();
	if (flags_r != NULL)
		*flags_r = 0;
	if (len == 0)
		return mailaddr_fail(reason_r, "empty address");
	if (memchr(addr, '<', len) != NULL || memchr(addr, '>', len) != NULL) {
		/* '<' is legal only inside a quoted local part. */
		if (p[0] != '"')
			return mailaddr_fail(reason_r, "display name or angle "
					     "brackets are not allowed; give "
					     "the bare address");
	}

	/* Find the '@' that ends the local part: after a quoted string,
	 * or the last one (a dot-string cannot hold '@'). */
	if (p[0] == '"') {
		size_t i = 1;

		while (i < len && p[i] != '"') {
			if (p[i] == '\\' && i + 1 < len)
				i++;
			i++;
		}
		if (i >= len)
			return mailaddr_fail(reason_r,
					     "unterminated quoted local part");
		at = i + 1;
		if (at >= len || p[at] != '@')
			return mailaddr_fail(reason_r, at >= len ?
					     "missing @" :
					     "text after the quoted local "
					     "part");
	} else {
		const char *a = memchr(addr, '@', len);

		if (a == NULL)
			return mailaddr_fail(reason_r, "missing @");
		at = (size_t)(a - addr);
	}
	if (len > MAILADDR_MAX)
		return mailaddr_fail(reason_r, "address longer than 254 "
				     "octets");
	if (!mailaddr_local(p, at, &flags, reason_r))
		return false;
	if (at + 1 < len && p[at + 1] == '[') {
		if (!mailaddr_literal(addr + at + 1, len - at - 1, reason_r))
			return false;
		flags |= MAILADDR_LITERAL;
	} else if (!mailaddr_domain(p + at + 1, len - at - 1, &flags,
				    reason_r)) {
		return false;
	}
	if (flags_r != NULL)
		*flags_r = flags;
	return true;
}
