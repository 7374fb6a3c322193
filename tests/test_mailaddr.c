/*
 * test_mailaddr - RFC 5321 / RFC 6531 mailbox syntax: table-driven valid
 * and invalid cases, exact reasons and flags, boundary lengths, every
 * ASCII byte in each position, UTF-8 edge cases, and that only len bytes
 * are ever read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailaddr.h"

#define SU MAILADDR_SMTPUTF8
#define LI MAILADDR_LITERAL
#define QU MAILADDR_QUOTED

struct mailaddr_case {
	const char *addr;
	size_t len;
	bool valid;
	unsigned flags;		/* when valid */
	const char *reason;	/* when invalid */
};

/* sizeof, not strlen, so cases may hold NUL bytes. */
#define V(s, f) { s, sizeof(s) - 1, true, f, NULL }
#define X(s, r) { s, sizeof(s) - 1, false, 0, r }

/* Reasons, spelled once so a typo cannot make a case pass. */
#define R_EMPTY "empty address"
#define R_NO_AT "missing @"
#define R_LOCAL_EMPTY "empty local part"
#define R_LOCAL_LONG "local part longer than 64 octets"
#define R_LONG "address longer than 254 octets"
#define R_LOCAL_DOT "empty label in local part (leading, trailing or " \
		    "double dot)"
#define R_LOCAL_CHAR "invalid character in local part"
#define R_UNTERM "unterminated quoted local part"
#define R_QCHAR "invalid character in quoted local part"
#define R_QPAIR "backslash in quoted local part must be followed by a " \
		"printable ASCII character"
#define R_QAFTER "quoted local part must be followed directly by @"
#define R_DOMAIN_EMPTY "empty domain"
#define R_DOMAIN_DOT "empty label in domain (leading, trailing or " \
		     "double dot)"
#define R_LABEL_LONG "domain label longer than 63 octets"
#define R_HYPHEN "domain label starts or ends with a hyphen"
#define R_DOMAIN_CHAR "invalid character in domain"
#define R_TWO_AT "more than one @ (an @ in the local part must be inside " \
		 "quotes)"
#define R_IPV4 "invalid IPv4 address literal"
#define R_IPV6 "invalid IPv6 address literal"
#define R_TAG "unsupported address literal tag"
#define R_V6TAG "IPv6 address literal needs the \"IPv6:\" prefix"
#define R_LIT_UNTERM "unterminated address literal"
#define R_LIT_AFTER "text after the address literal"
#define R_UTF8 "invalid UTF-8"
#define R_BRACKETS "display name or angle brackets are not allowed; give " \
		   "the bare address"
#define R_SPACE "whitespace is not allowed in an address"

static const struct mailaddr_case mailaddr_valid_cases[] = {
	/* Plain dot-strings. */
	V("a@b", 0),
	V("a@localhost", 0),
	V("jdoe@machine.example", 0),
	V("mary@example.net", 0),
	V("first.last@example.com", 0),
	V("First.Last@EXAMPLE.COM", 0),
	V("a.b.c.d@e.f.g.h", 0),
	V("user+tag@example.com", 0),
	V("x@sub-domain.example", 0),
	V("x@a-b-c.d--e.example", 0),
	V("x@123.example", 0),
	V("x@1.2.3.4", 0),
	V("x@0", 0),
	V("x@xn--bcher-kva.example", 0),
	V("1234567890@example.com", 0),
	/* RFC 3696 section 3 (with errata 246 quoting). */
	V("customer/department=shipping@example.com", 0),
	V("$A12345@example.com", 0),
	V("!def!xyz%abc@example.com", 0),
	V("_somename@example.com", 0),
	V("\"Abc\\@def\"@example.com", QU),
	V("\"Fred\\ Bloggs\"@example.com", QU),
	V("\"Joe.\\\\Blow\"@example.com", QU),
	V("\"Abc@def\"@example.com", QU),
	V("\"Fred Bloggs\"@example.com", QU),
	/* Every atext special. */
	V("!#$%&'*+-/=?^_`{|}~@example.com", 0),
	V("!#$%&'*+-/=?^_`{|}~@example.org", 0),
	V("-@example.com", 0),
	V("a-@example.com", 0),
	/* Quoted strings. */
	V("\"\"@example.com", QU),
	V("\" \"@example.com", QU),
	V("\"a b\"@example.com", QU),
	V("\"a\\\"b\"@example.com", QU),
	V("\"\\\"\"@example.com", QU),
	V("\"\\\\\"@example.com", QU),
	V("\"\\a\"@example.com", QU),
	V("\"\\ \"@example.com", QU),
	V("\"\\~\"@example.com", QU),
	V("\"a.\"@example.com", QU),
	V("\".a..b\"@example.com", QU),
	V("\"john..doe\"@example.org", QU),
	V("\"a\\\"b\"@x.org", QU),
	V("\"\"@example.org", QU),
	V("\"\\\\\\\"\"@x.org", QU),		/* "\\\"" */
	V("\"a@b\"@example.com", QU),
	V("\"(comment)\"@example.com", QU),
	V("\"<a>\"@example.com", QU),
	V("\"[],:;\"@example.com", QU),
	V("\"very.unusual.@.unusual.com\"@example.com", QU),
	V("\"a\"@[192.0.2.1]", QU | LI),
	/* RFC 6530-series and other internationalised examples. */
	V("用户@例子.广告", SU),
	V("θσερ@εχαμπλε.ψομ", SU),
	V("Pelé@example.com", SU),
	V("δοκιμή@παράδειγμα.δοκιμή", SU),
	V("我買@屋企.香港", SU),
	V("二ノ宮@黒川.日本", SU),
	V("медведь@с-балалайкой.рф", SU),
	V("संपर्क@डाटामेल.भारत", SU),
	V("Dörte@Sörensen.example.com", SU),
	V("ascii@bücher.example", SU),
	V("üser@bücher.example", SU),
	V("üser@example.com", SU),
	V("x@ü", SU),
	V("\"Pelé\"@example.com", QU | SU),
	V("\"用 户\"@example.com", QU | SU),
	V("é@[IPv6:::1]", SU | LI),
	/* UTF-8 boundaries that are well-formed. */
	V("\xc2\x80@x", SU),			/* U+0080 */
	V("\xdf\xbf@x", SU),			/* U+07FF */
	V("\xe0\xa0\x80@x", SU),		/* U+0800 */
	V("\xed\x9f\xbf@x", SU),		/* U+D7FF */
	V("\xee\x80\x80@x", SU),		/* U+E000 */
	V("\xef\xbf\xbf@x", SU),		/* U+FFFF */
	V("\xf0\x90\x80\x80@x", SU),		/* U+10000 */
	V("\xf4\x8f\xbf\xbf@x", SU),		/* U+10FFFF */
	V("x@\xf0\x9f\x98\x80", SU),		/* U+1F600 */
	/* Numeric labels and inner hyphens are plain domains. */
	V("a@123.456.example", 0),
	V("a@a-1.b--2.example", 0),
	V("a@3com.com", 0),
	/* IPv4 address literals. */
	V("a@[192.0.2.1]", LI),
	V("j@[192.0.2.1]", LI),
	V("a@[0.0.0.0]", LI),
	V("a@[255.255.255.255]", LI),
	V("a@[001.010.100.000]", LI),
	/* IPv6-full. */
	V("a@[IPv6:1:2:3:4:5:6:7:8]", LI),
	V("a@[IPv6:2001:0db8:85a3:0000:0000:8a2e:0370:7334]", LI),
	V("a@[IPv6:FFFF:ffff:AbCd:0:0:0:0:1]", LI),
	/*
	 * IPv6-comp (RFC 5321 4.1.3):
	 *   [IPv6-hex *5(":" IPv6-hex)] "::" [IPv6-hex *5(":" IPv6-hex)]
	 * Both sides are optional, so "::1", "1::" and a bare "::" are all
	 * valid; "::" must stand for at least two groups, so at most six
	 * groups may be written beside it.
	 */
	V("a@[IPv6:::]", LI),
	V("a@[IPv6:::1]", LI),
	V("a@[IPv6:1::]", LI),
	V("a@[IPv6:2001:db8::1]", LI),
	V("a@[IPv6:1:2:3::4:5:6]", LI),
	V("a@[IPv6:1:2:3:4:5:6::]", LI),
	V("a@[IPv6:::1:2:3:4:5:6]", LI),
	/* IPv6v4-full. */
	V("a@[IPv6:1:2:3:4:5:6:1.2.3.4]", LI),
	V("a@[IPv6:0:0:0:0:0:ffff:192.0.2.1]", LI),
	/*
	 * IPv6v4-comp: [IPv6-hex *3(":" IPv6-hex)] "::"
	 * [IPv6-hex *3(":" IPv6-hex) ":"] IPv4-address-literal, at most four
	 * groups beside the "::", either side possibly empty.
	 */
	V("a@[IPv6:::1.2.3.4]", LI),
	V("a@[IPv6:::ffff:192.0.2.1]", LI),
	V("a@[IPv6:1::1.2.3.4]", LI),
	V("a@[IPv6:1:2::3:4:1.2.3.4]", LI),
	V("a@[IPv6:1:2:3:4::1.2.3.4]", LI),
	V("a@[IPv6:::1:2:3:4:1.2.3.4]", LI),
	/* ABNF literal strings are case-insensitive (RFC 5234 2.3). */
	V("a@[ipv6:::1]", LI),
	V("a@[IPV6:::1]", LI),
};

static const struct mailaddr_case mailaddr_invalid_cases[] = {
	/* Structure. */
	X("", R_EMPTY),
	X("abc", R_NO_AT),
	X("example.com", R_NO_AT),
	X("@example.com", R_LOCAL_EMPTY),
	X("@", R_LOCAL_EMPTY),
	X("a@", R_DOMAIN_EMPTY),
	X("\"a\"@", R_DOMAIN_EMPTY),
	X("a@b@example.com", R_TWO_AT),
	X("j@x@x.org", R_TWO_AT),
	X("\"a@b\"@c@example.com", R_TWO_AT),
	X("a@@example.com", R_TWO_AT),
	X("Abc\\@def@example.com", R_LOCAL_CHAR),
	/* Dot-string. */
	X(".a@example.com", R_LOCAL_DOT),
	X("a.@example.com", R_LOCAL_DOT),
	X("a..b@example.com", R_LOCAL_DOT),
	X(".@example.com", R_LOCAL_DOT),
	X("a\"b@example.com", R_LOCAL_CHAR),
	X("a\\b@example.com", R_LOCAL_CHAR),
	X("a(b)@example.com", R_LOCAL_CHAR),
	X("pete(his account)@silly.test", R_LOCAL_CHAR),
	X("a,b@example.com", R_LOCAL_CHAR),
	X("a;b@example.com", R_LOCAL_CHAR),
	X("a:b@example.com", R_LOCAL_CHAR),
	X("a[b]@example.com", R_LOCAL_CHAR),
	X("a\0b@example.com", R_LOCAL_CHAR),
	X("a\x01@example.com", R_LOCAL_CHAR),
	X("a\x7f@example.com", R_LOCAL_CHAR),
	X("\x01@x.org", R_LOCAL_CHAR),
	X("\0a@x.org", R_LOCAL_CHAR),
	X("a\0@x.org", R_LOCAL_CHAR),
	X("\"a\x01\"@x.org", R_QCHAR),
	X("a@x\x01.org", R_DOMAIN_CHAR),
	X("a@x\x7f.org", R_DOMAIN_CHAR),
	X("a@x.org\0", R_DOMAIN_CHAR),
	X("a@[1.2.3.4\0]", R_IPV4),
	X("a\r\n@example.com", R_LOCAL_CHAR),
	/* Whitespace. */
	X("a b@example.com", R_SPACE),
	X(" a@example.com", R_SPACE),
	X("a@example.com ", R_SPACE),
	X("\ta@example.com", R_SPACE),
	X("a@exa mple.com", R_SPACE),
	X("a @ example.com", R_SPACE),
	X("a@example.com\t", R_SPACE),
	X("a\t@example.com", R_SPACE),
	X("\"a\" @example.com", R_SPACE),
	X("\"a\"\t@example.com", R_SPACE),
	X("a@ [1.2.3.4]", R_SPACE),
	X("a@[1.2.3.4] ", R_SPACE),
	X("a@[1.2.3.4]\t", R_SPACE),
	X("a@[ 1.2.3.4]", R_SPACE),
	X("a@[1.2.3.4 ]", R_SPACE),
	X("a@[IPv6:1:2:3:4:5:6:7:8 ]", R_SPACE),
	X("a@[x400:c=gb;a= ;p=x]", R_SPACE),
	/* Display names and angle brackets. */
	X("John Doe <jdoe@machine.example>", R_BRACKETS),
	X("<jdoe@machine.example>", R_BRACKETS),
	X("jdoe@machine.example>", R_BRACKETS),
	X("\"John Doe\" <jdoe@machine.example>", R_BRACKETS),
	X("Mary Smith <mary@x.test>", R_BRACKETS),
	X("<>", R_BRACKETS),
	X("John <j@x.org>", R_BRACKETS),
	X("<j@x.org>", R_BRACKETS),
	X("j@x.org <j@x.org>", R_BRACKETS),
	X("\"a\"<j@x.org>", R_BRACKETS),
	X("a@[1.2.3.4]>", R_BRACKETS),
	/* Brackets legal inside quotes do not mask the real problem. */
	X("\"<a>\"@", R_DOMAIN_EMPTY),
	/* Quoted strings. */
	X("\"abc@example.com", R_UNTERM),
	X("\"", R_UNTERM),
	X("\"abc\\\"@example.com", R_UNTERM),
	X("\"abc\\", R_UNTERM),
	X("\"a\"b@example.com", R_QAFTER),
	X("\"a\"b@x.org", R_QAFTER),
	X("\"a\"\"b\"@x.org", R_QAFTER),
	X("\"a\".b@example.com", R_QAFTER),
	X("\"a\"", R_NO_AT),
	X("\"a\tb\"@example.com", R_QCHAR),
	X("\"a\nb\"@example.com", R_QCHAR),
	X("\"a\0b\"@example.com", R_QCHAR),
	X("\"a\x7f\"@example.com", R_QCHAR),
	X("\"a\\\tb\"@example.com", R_QPAIR),
	X("\"a\\\x7f\"@example.com", R_QPAIR),
	X("\"a\\é\"@example.com", R_QPAIR),
	X("\"a\\\xff\"@example.com", R_QPAIR),
	X("\"\xff\"@example.com", R_UTF8),
	/* Domain. */
	X("a@example.com.", R_DOMAIN_DOT),
	X("a@.example.com", R_DOMAIN_DOT),
	X("a@example..com", R_DOMAIN_DOT),
	X("a@.", R_DOMAIN_DOT),
	X("a@-example.com", R_HYPHEN),
	X("a@example-.com", R_HYPHEN),
	X("a@example.-com", R_HYPHEN),
	X("a@example.com-", R_HYPHEN),
	X("a@-", R_HYPHEN),
	X("a@-é.example", R_HYPHEN),
	X("a@é-.example", R_HYPHEN),
	X("a@exa_mple.com", R_DOMAIN_CHAR),
	X("a@_dmarc.example.com", R_DOMAIN_CHAR),
	X("a@x.org.", R_DOMAIN_DOT),
	X("a@x..org", R_DOMAIN_DOT),
	X("a@example.com/", R_DOMAIN_CHAR),
	X("a@example.com\n", R_DOMAIN_CHAR),
	X("a@example.com\r", R_DOMAIN_CHAR),
	X("a@example\0.com", R_DOMAIN_CHAR),
	X("a@\"example\".com", R_DOMAIN_CHAR),
	X("c@(Chris's host.)public.example", R_DOMAIN_CHAR),
	X("a@exam]ple.com", R_DOMAIN_CHAR),
	X("a@example.com[1.2.3.4]", R_DOMAIN_CHAR),
	/* IPv4 address literals. */
	X("a@[300.1.1.1]", R_IPV4),
	X("a@[1.2.3.256]", R_IPV4),
	X("a@[1.2.3]", R_IPV4),
	X("a@[1.2.3.4.5]", R_IPV4),
	X("a@[1..2.3]", R_IPV4),
	X("a@[.1.2.3]", R_IPV4),
	X("a@[1.2.3.]", R_IPV4),
	X("a@[1234.1.1.1]", R_IPV4),
	X("a@[0001.1.1.1]", R_IPV4),
	X("a@[-1.2.3.4]", R_IPV4),
	X("a@[a.b.c.d]", R_IPV4),
	X("a@[01234.1.1.1]", R_IPV4),
	X("a@[1.2.3.4.]", R_IPV4),
	X("a@[1.2.3.-4]", R_IPV4),
	X("a@[foo]", R_IPV4),
	X("a@[]", R_IPV4),
	X("a@[example.com]", R_IPV4),
	/* IPv6 address literals. */
	X("a@[IPv6:]", R_IPV6),
	X("a@[IPv6:1::2::3]", R_IPV6),
	X("a@[IPv6:::1::]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:7]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:7:8:9]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:7::]", R_IPV6),
	X("a@[IPv6:::1:2:3:4:5:6:7]", R_IPV6),
	X("a@[IPv6:1:2:3:4::5:6:7]", R_IPV6),
	X("a@[IPv6:12345::1]", R_IPV6),
	X("a@[IPv6:12345::]", R_IPV6),
	X("a@[IPv6:g::]", R_IPV6),
	X("a@[IPv6:::g]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:7:8::]", R_IPV6),
	X("a@[IPv6:::1:2:3:4:5:6:7:8]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:0001.2.3.4]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:7:12345]", R_IPV6),
	X("a@[IPv6::1]", R_IPV6),
	X("a@[IPv6:1:]", R_IPV6),
	X("a@[IPv6::]", R_IPV6),
	X("a@[IPv6::::1]", R_IPV6),
	X("a@[IPv6:1:::2]", R_IPV6),
	X("a@[IPv6:g::1]", R_IPV6),
	X("a@[IPv6:1.2.3.4]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:1.2.3]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:1.2.3.4.5]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:7:1.2.3.4]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:1.2.3.4]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5::1.2.3.4]", R_IPV6),
	X("a@[IPv6:::1:2:3:4:5:1.2.3.4]", R_IPV6),
	X("a@[IPv6:::1.2.3.256]", R_IPV6),
	X("a@[IPv6:::1.2.3.4:1]", R_IPV6),
	X("a@[IPv6:1.2.3.4::]", R_IPV6),
	X("a@[IPv6:::ffff:1a.2.3.4]", R_IPV6),
	X("a@[IPv6:1:2:3:4:5:6:7:é]", R_IPV6),
	/* Other literal tags. */
	X("a@[x400:c=gb;a=x;p=y]", R_TAG),
	X("a@[foo:bar]", R_TAG),
	X("j@[foo:bar]", R_TAG),
	X("a@[IPv6]", R_IPV4),
	X("a@[tag:content]", R_TAG),
	X("a@[IPv7:1::1]", R_TAG),
	X("a@[::1]", R_V6TAG),
	X("a@[2001:db8::1]", R_V6TAG),
	X("a@[1.2.3.4", R_LIT_UNTERM),
	X("a@[IPv6:::1", R_LIT_UNTERM),
	X("a@[", R_LIT_UNTERM),
	X("a@[1.2.3.4]x", R_LIT_AFTER),
	X("a@[1.2.3.4].com", R_LIT_AFTER),
	/* Ill-formed UTF-8. */
	X("\x80@x", R_UTF8),			/* lone continuation */
	X("\xbf@x", R_UTF8),
	X("\xc0\x80@x", R_UTF8),		/* overlong NUL */
	X("\xc1\xbf@x", R_UTF8),		/* overlong U+007F */
	X("\xe0\x80\x80@x", R_UTF8),		/* overlong */
	X("\xe0\x9f\xbf@x", R_UTF8),		/* overlong U+07FF */
	X("\xed\xa0\x80@x", R_UTF8),		/* surrogate U+D800 */
	X("\xed\xbf\xbf@x", R_UTF8),		/* surrogate U+DFFF */
	X("\xf0\x80\x80\x80@x", R_UTF8),	/* overlong */
	X("\xf0\x8f\xbf\xbf@x", R_UTF8),	/* overlong U+FFFF */
	X("\xf4\x90\x80\x80@x", R_UTF8),	/* U+110000 */
	X("\xf5\x80\x80\x80@x", R_UTF8),
	X("\xf8\x88\x80\x80\x80@x", R_UTF8),	/* 5-byte form */
	X("\xfe@x", R_UTF8),
	X("\xff@x", R_UTF8),
	X("\xc3@x", R_UTF8),			/* truncated */
	X("\xe4\xbd@x", R_UTF8),		/* truncated */
	X("\xf0\x9f\x98@x", R_UTF8),		/* truncated */
	X("\xc3\xc3\xa9@x", R_UTF8),
	X("x@\xc3", R_UTF8),			/* truncated at the end */
	X("x@\xe4\xbd", R_UTF8),
	X("x@ex\xe9mple.com", R_UTF8),		/* Latin-1, not UTF-8 */
	X("P\xe9l\xe9@example.com", R_UTF8),
	X("x@\xed\xa0\x80.example", R_UTF8),
	X("x@a\x80", R_UTF8),			/* lone continuation */
	X("\"\xc0\xaf\"@x", R_UTF8),		/* overlong '/' */
	X("\"\xed\xb0\x80\"@x", R_UTF8),	/* surrogate U+DC00 */
	X("\"\xe2\x82\"@x", R_UTF8),		/* truncated */
	X("a.\xc3", R_UTF8),			/* truncated by len */
};

/* mailaddr_show - the address with unprintable bytes escaped */
static const char *mailaddr_show(const char *s, size_t len)
{
	static char out[1200];
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 32 && c < 127)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o,
					      "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

/*
 * mailaddr_expect - check one address, copied to a buffer of exactly len
 * bytes so any read past len trips AddressSanitizer.
 */
static void mailaddr_expect(const char *addr, size_t len, bool valid,
			    unsigned flags, const char *reason)
{
	char *copy = malloc(len > 0 ? len : 1);
	const char *got_reason = "(untouched)";
	unsigned got_flags = 0xdead;
	bool ok;

	assert_non_null(copy);
	memcpy(copy, addr, len);
	ok = mailaddr_check(copy, len, &got_flags, &got_reason);
	if (ok != valid)
		fail_msg("\"%s\": expected %s, got %s (%s)",
			 mailaddr_show(addr, len),
			 valid ? "valid" : "invalid",
			 ok ? "valid" : "invalid",
			 ok ? "-" : got_reason);
	if (valid && got_flags != flags)
		fail_msg("\"%s\": flags %#x, expected %#x",
			 mailaddr_show(addr, len), got_flags, flags);
	if (!valid && (got_reason == NULL || strcmp(got_reason, reason)))
		fail_msg("\"%s\": reason \"%s\", expected \"%s\"",
			 mailaddr_show(addr, len),
			 got_reason ? got_reason : "(null)", reason);
	if (!valid && got_flags != 0)
		fail_msg("\"%s\": flags %#x on failure",
			 mailaddr_show(addr, len), got_flags);

	/* Either output may be NULL without changing the verdict. */
	got_reason = "(untouched)";
	if (mailaddr_check(copy, len, NULL, NULL) != valid ||
	    mailaddr_check(copy, len, &got_flags, NULL) != valid ||
	    mailaddr_check(copy, len, NULL, &got_reason) != valid)
		fail_msg("\"%s\": verdict changes with NULL outputs",
			 mailaddr_show(addr, len));
	if (!valid && (got_reason == NULL || strcmp(got_reason, reason) != 0))
		fail_msg("\"%s\": reason \"%s\" with flags_r NULL",
			 mailaddr_show(addr, len),
			 got_reason ? got_reason : "(null)");
	free(copy);
}

static void mailaddr_run(const struct mailaddr_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mailaddr_expect(cases[i].addr, cases[i].len, cases[i].valid,
				cases[i].flags, cases[i].reason);
}

static void test_valid_addresses(void **state)
{
	(void)state;
	mailaddr_run(mailaddr_valid_cases,
		     sizeof(mailaddr_valid_cases) /
		     sizeof(mailaddr_valid_cases[0]));
}

static void test_invalid_addresses(void **state)
{
	(void)state;
	mailaddr_run(mailaddr_invalid_cases,
		     sizeof(mailaddr_invalid_cases) /
		     sizeof(mailaddr_invalid_cases[0]));
}

/* fill - n copies of the UTF-8 or ASCII string unit at b */
static size_t fill(char *b, const char *unit, size_t n)
{
	size_t u = strlen(unit);

	for (size_t i = 0; i < n; i++)
		memcpy(b + i * u, unit, u);
	return n * u;
}

static void test_local_part_length(void **state)
{
	char b[300];
	size_t n;

	(void)state;
	n = fill(b, "a", 64);
	memcpy(b + n, "@example.com", 12);
	mailaddr_expect(b, n + 12, true, 0, NULL);
	n = fill(b, "a", 65);
	memcpy(b + n, "@example.com", 12);
	mailaddr_expect(b, n + 12, false, 0, R_LOCAL_LONG);

	/* Octets, not characters: 32 two-octet characters fit, 33 do not. */
	n = fill(b, "é", 32);
	memcpy(b + n, "@x", 2);
	mailaddr_expect(b, n + 2, true, SU, NULL);
	n = fill(b, "é", 33);
	memcpy(b + n, "@x", 2);
	mailaddr_expect(b, n + 2, false, 0, R_LOCAL_LONG);

	/* The quotes count: the limit is on the local part as written. */
	b[0] = '"';
	n = 1 + fill(b + 1, "a", 62);
	memcpy(b + n, "\"@x", 3);
	mailaddr_expect(b, n + 3, true, QU, NULL);
	n = 1 + fill(b + 1, "a", 63);
	memcpy(b + n, "\"@x", 3);
	mailaddr_expect(b, n + 3, false, 0, R_LOCAL_LONG);
	n = 1 + fill(b + 1, "\\\"", 31);
	memcpy(b + n, "\"@x", 3);
	mailaddr_expect(b, n + 3, true, QU, NULL);
}

/* build_total - an address of exactly total octets with short labels */
static size_t build_total(char *b, size_t total)
{
	size_t n = fill(b, "l", 64);

	b[n++] = '@';
	while (total - n > 63) {
		n += fill(b + n, "d", 62);
		b[n++] = '.';
	}
	n += fill(b + n, "d", total - n);
	return n;
}

static void test_address_length(void **state)
{
	char b[400];
	size_t n;

	(void)state;
	n = build_total(b, 254);
	assert_int_equal(n, 254);
	mailaddr_expect(b, n, true, 0, NULL);
	n = build_total(b, 255);
	assert_int_equal(n, 255);
	mailaddr_expect(b, n, false, 0, R_LONG);
	n = build_total(b, 320);
	mailaddr_expect(b, n, false, 0, R_LONG);

	/* The limit holds for literals and U-labels as well. */
	n = fill(b, "a", 64);
	n += fill(b + n, "@[IPv6:1:2:3:4:5:6:7:8]", 1);
	mailaddr_expect(b, n, true, LI, NULL);
	n = fill(b, "é", 32);
	b[n++] = '@';
	while (n + 64 < 254) {
		n += fill(b + n, "é", 31);
		b[n++] = '.';
	}
	n += fill(b + n, "x", 254 - n);
	mailaddr_expect(b, n, true, SU, NULL);
	b[n++] = 'x';
	mailaddr_expect(b, n, false, 0, R_LONG);
}

static void test_label_length(void **state)
{
	char b[200];
	size_t n;

	(void)state;
	n = fill(b, "a@", 1);
	n += fill(b + n, "d", 63);
	mailaddr_expect(b, n, true, 0, NULL);
	n += fill(b + n, ".com", 1);
	mailaddr_expect(b, n, true, 0, NULL);

	n = fill(b, "a@", 1);
	n += fill(b + n, "d", 64);
	mailaddr_expect(b, n, false, 0, R_LABEL_LONG);
	n += fill(b + n, ".com", 1);
	mailaddr_expect(b, n, false, 0, R_LABEL_LONG);

	n = fill(b, "a@example.", 1);
	n += fill(b + n, "d", 64);
	mailaddr_expect(b, n, false, 0, R_LABEL_LONG);

	/* U-labels are measured in octets as written: 21 x 3 = 63. */
	n = fill(b, "a@", 1);
	n += fill(b + n, "例", 21);
	mailaddr_expect(b, n, true, SU, NULL);
	n += fill(b + n, "例", 1);
	mailaddr_expect(b, n, false, 0, R_LABEL_LONG);
}

/* Each ASCII byte alone in each position, against the RFC's own sets. */
static void test_ascii_classes(void **state)
{
	static const char atext_specials[] = "!#$%&'*+-/=?^_`{|}~";
	char b[8];

	(void)state;
	for (int c = 0; c < 128; c++) {
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		bool atext = alnum ||
			     (c != 0 && strchr(atext_specials, c) != NULL);
		bool qtext = (c >= 32 && c <= 33) || (c >= 35 && c <= 91) ||
			     (c >= 93 && c <= 126);
		bool ldh = alnum || c == '-';
		unsigned flags;
		const char *reason;
		bool ok;

		/* Unquoted local part: "c@x". */
		b[0] = (char)c;
		memcpy(b + 1, "@x", 2);
		ok = mailaddr_check(b, 3, &flags, &reason);
		if (c == '@' || c == '.')
			assert_false(ok);
		else if (ok != atext)
			fail_msg("local part byte %#x: got %d", c, ok);

		/* Quoted local part: "\"c\"@x". */
		b[0] = '"';
		b[1] = (char)c;
		memcpy(b + 2, "\"@x", 3);
		ok = mailaddr_check(b, 5, &flags, &reason);
		if (ok != qtext)
			fail_msg("quoted byte %#x: got %d", c, ok);

		/* Quoted pair: "\"\\c\"@x". */
		b[0] = '"';
		b[1] = '\\';
		b[2] = (char)c;
		memcpy(b + 3, "\"@x", 3);
		ok = mailaddr_check(b, 6, &flags, &reason);
		if (ok != (c >= 32 && c <= 126))
			fail_msg("quoted pair byte %#x: got %d", c, ok);

		/* Domain label: "a@xcx". */
		memcpy(b, "a@x", 3);
		b[3] = (char)c;
		b[4] = 'x';
		ok = mailaddr_check(b, 5, &flags, &reason);
		if (c != '.' && ok != ldh)
			fail_msg("domain byte %#x: got %d", c, ok);
	}
}

static void test_len_is_honoured(void **state)
{
	static const char buf[] = "user@example.com.trailing garbage";
	unsigned flags;
	const char *reason;

	(void)state;
	/* A prefix of a longer buffer is judged on its own. */
	assert_true(mailaddr_check(buf, 16, &flags, &reason));
	assert_int_equal(flags, 0);
	assert_true(mailaddr_check(buf, 6, &flags, &reason));
	assert_false(mailaddr_check(buf, 5, &flags, &reason));
	assert_string_equal(reason, R_DOMAIN_EMPTY);
	assert_false(mailaddr_check(buf, 4, &flags, &reason));
	assert_string_equal(reason, R_NO_AT);
	assert_false(mailaddr_check(buf, 17, &flags, &reason));
	assert_string_equal(reason, R_DOMAIN_DOT);
	assert_false(mailaddr_check(buf, 0, &flags, &reason));
	assert_string_equal(reason, R_EMPTY);
	assert_false(mailaddr_check(buf, sizeof(buf) - 1, &flags, &reason));
	assert_string_equal(reason, R_SPACE);

	/* The cut falls inside a UTF-8 sequence. */
	assert_false(mailaddr_check("a@b\xc3\xa9", 4, &flags, &reason));
	assert_string_equal(reason, R_UTF8);
	assert_true(mailaddr_check("a@b\xc3\xa9", 5, &flags, &reason));
	assert_int_equal(flags, SU);

	/* The cut falls inside a quoted string or a literal. */
	assert_false(mailaddr_check("\"a\"@b", 2, &flags, &reason));
	assert_string_equal(reason, R_UNTERM);
	assert_false(mailaddr_check("a@[1.2.3.4]", 10, &flags, &reason));
	assert_string_equal(reason, R_LIT_UNTERM);
	assert_true(mailaddr_check("a@[1.2.3.4]", 11, &flags, &reason));
	assert_int_equal(flags, LI);

	/* A valid address followed by garbage, cut at its end and inside. */
	assert_true(mailaddr_check("a@b.orgJUNK <>\"", 7, &flags, &reason));
	assert_int_equal(flags, 0);
	assert_null(reason);
	assert_true(mailaddr_check("a@b.org\0", 7, &flags, &reason));
	assert_false(mailaddr_check("a@b.org\0", 8, &flags, &reason));
	assert_string_equal(reason, R_DOMAIN_CHAR);
	assert_false(mailaddr_check("a@b.orgJUNK", 4, &flags, &reason));
	assert_string_equal(reason, R_DOMAIN_DOT);
	assert_false(mailaddr_check("a@b.orgJUNK", 2, &flags, &reason));
	assert_string_equal(reason, R_DOMAIN_EMPTY);
	assert_false(mailaddr_check("a@b.orgJUNK", 1, &flags, &reason));
	assert_string_equal(reason, R_NO_AT);
	assert_false(mailaddr_check("a@[IPv6:::1]JUNK", 11, &flags,
				    &reason));
	assert_string_equal(reason, R_LIT_UNTERM);
	assert_true(mailaddr_check("a@[IPv6:::1]JUNK", 12, &flags, &reason));
	assert_int_equal(flags, LI);
	assert_false(mailaddr_check("\"a b\"@x.org", 4, &flags, &reason));
	assert_string_equal(reason, R_UNTERM);
	assert_false(mailaddr_check("\"a b\"@x.org", 5, &flags, &reason));
	assert_string_equal(reason, R_NO_AT);

	/* A NUL inside len is data, not the end. */
	assert_false(mailaddr_check("a@b\0c", 5, &flags, &reason));
	assert_string_equal(reason, R_DOMAIN_CHAR);
}

static void test_outputs(void **state)
{
	static const char q[] = "\"é\"@[1.2.3.4]";
	static const char bad[] = "\"é\"@[1.2.3]";
	unsigned flags = 0xdead;
	const char *reason = "stale";

	(void)state;
	/* Either output may be NULL. */
	assert_true(mailaddr_check("a@b", 3, NULL, NULL));
	assert_false(mailaddr_check("a@", 2, NULL, NULL));
	assert_true(mailaddr_check(q, strlen(q), &flags, NULL));
	assert_int_equal(flags, SU | QU | LI);
	assert_false(mailaddr_check("a", 1, NULL, &reason));
	assert_string_equal(reason, R_NO_AT);

	/* Flags are cleared on failure and reason on success. */
	flags = 0xdead;
	assert_false(mailaddr_check(bad, strlen(bad), &flags, &reason));
	assert_int_equal(flags, 0);
	assert_string_equal(reason, R_IPV4);
	assert_true(mailaddr_check("a@b", 3, &flags, &reason));
	assert_null(reason);

	/* No byte is read when len is 0, so addr may be NULL. */
	flags = 0xdead;
	assert_false(mailaddr_check(NULL, 0, &flags, &reason));
	assert_string_equal(reason, R_EMPTY);
	assert_int_equal(flags, 0);
	assert_false(mailaddr_check(NULL, 0, NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_addresses),
		cmocka_unit_test(test_invalid_addresses),
		cmocka_unit_test(test_local_part_length),
		cmocka_unit_test(test_address_length),
		cmocka_unit_test(test_label_length),
		cmocka_unit_test(test_ascii_classes),
		cmocka_unit_test(test_len_is_honoured),
		cmocka_unit_test(test_outputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
