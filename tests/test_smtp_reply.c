/*
 * test_smtp_reply - the reply parser, table-driven, each input fed whole
 * and split at every byte position (and byte by byte).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_reply.h"

struct good_case {
	const char *in;
	int code;
	const char *enhanced;
	const char *text;
	size_t lines;
};

static const struct good_case good[] = {
	{ "220 mx.example.com ESMTP ready\r\n", 220, "",
	  "mx.example.com ESMTP ready", 1 },
	{ "250 2.1.0 Ok\r\n", 250, "2.1.0", "Ok", 1 },
	{ "550 5.1.1 <x@y>: Recipient address rejected\r\n", 550, "5.1.1",
	  "<x@y>: Recipient address rejected", 1 },
	{ "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	  "250 CHUNKING\r\n", 250, "",
	  "mx.example.com\nPIPELINING\nSIZE 10240000\nCHUNKING", 4 },
	{ "451-4.7.1 Please try\r\n451-4.7.1 again later\r\n451 4.7.1 bye\r\n",
	  451, "4.7.1", "Please try\nagain later\nbye", 3 },
	/* A code alone, and LF line ends. */
	{ "250\r\n", 250, "", "", 1 },
	{ "354 End data with <CR><LF>.<CR><LF>\n", 354, "",
	  "End data with <CR><LF>.<CR><LF>", 1 },
	/* Class must match: 2.x.x on a 5xx is text, not an enhanced code. */
	{ "550 2.1.1 odd\r\n", 550, "", "2.1.1 odd", 1 },
	{ "250 2.0.0\r\n", 250, "2.0.0", "", 1 },
	{ "250 2.0 not enhanced\r\n", 250, "", "2.0 not enhanced", 1 },
	{ "421 4.3.2 Service shutting down\r\n", 421, "4.3.2",
	  "Service shutting down", 1 },
};

struct bad_case {
	const char *in;
	const char *error;
};

static const struct bad_case bad[] = {
	{ "hello\r\n", "does not start with a reply code" },
	{ "25\r\n", "does not start with a reply code" },
	{ "650 no\r\n", "does not start with a reply code" },
	{ "160 no\r\n", "does not start with a reply code" },
	{ "2a0 no\r\n", "does not start with a reply code" },
	{ "250_x\r\n", "not followed by a space or '-'" },
	{ "250-a\r\n251 b\r\n", "different codes" },
	{ "250 a\0b\r\n", "NUL byte" },
	/* a bare CR, an escape sequence, a C1 control: never passed on to
	 * a terminal, a report or a log */
	{ "250 ok\rX-Injected: 1\r\n", "control character" },
	{ "550 \x1b[2Jgone\r\n", "control character" },
	{ "250-a\r\n250 b\x07\r\n", "control character" },
	{ "250 del\x7f\r\n", "control character" },
	{ "451 \xc2\x9b" "2J\r\n", "control character" },
};

/* parse_all - feed in, in pieces of at most step bytes, expect one reply */
static const struct smtp_reply *parse_all(struct smtp_reply_parser *p,
					  const char *in, size_t len,
					  size_t split, const char **error)
{
	const struct smtp_reply *r = NULL;
	const char *data = in;
	size_t left = split, rest = len - split;
	int rc;

	*error = NULL;
	rc = smtp_reply_parse(p, &data, &left, &r, error);
	if (rc < 0)
		return NULL;
	if (rc == 1) {
		assert_int_equal(left + rest, len - (size_t)(data - in));
		return r;
	}
	assert_int_equal(left, 0);
	left = rest;
	rc = smtp_reply_parse(p, &data, &left, &r, error);
	if (rc != 1)
		return NULL;
	assert_int_equal(left, 0);
	return r;
}

static void test_good_replies_split_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		size_t len = strlen(good[i].in);

		for (size_t split = 0; split <= len; split++) {
			struct smtp_reply_parser p;
			const struct smtp_reply *r;
			const char *error;

			smtp_reply_parser_init(&p, 0, 0);
			r = parse_all(&p, good[i].in, len, split, &error);
			if (r == NULL)
				fail_msg("case %zu split %zu: %s", i, split,
					 error ? error : "incomplete");
			assert_int_equal(r->code, good[i].code);
			assert_string_equal(r->enhanced, good[i].enhanced);
			assert_string_equal(buf_cstr(&r->text), good[i].text);
			assert_int_equal(r->lines, good[i].lines);
			smtp_reply_parser_free(&p);
		}
	}
}

static void test_bad_replies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct smtp_reply_parser p;
		const struct smtp_reply *r;
		const char *data = bad[i].in, *error = NULL;
		size_t len = strlen(bad[i].in);
		int rc = 0;

		if (strstr(bad[i].error, "NUL") != NULL)
			len = 10;	/* the literal holds a NUL */
		smtp_reply_parser_init(&p, 0, 0);
		while (len > 0 && (rc = smtp_reply_parse(&p, &data, &len, &r,
							 &error)) == 1)
			;
		assert_int_equal(rc, -1);
		assert_non_null(strstr(error, bad[i].error));
		/* A failed parser stays failed. */
		data = "250 ok\r\n";
		len = 8;
		assert_int_equal(smtp_reply_parse(&p, &data, &len, &r, &error),
				 -1);
		smtp_reply_parser_free(&p);
	}
}

/*
 * A control anywhere in a line - early, late, across the parser's
 * eight-byte steps - is refused; a tab and UTF-8 (U+00A0, the euro
 * sign, U+00E9) are text.
 */
static void test_controls_everywhere(void **state)
{
	static const char *const bad_bytes[] = { "\x01", "\x0d", "\x1b",
						 "\x7f", "\xc2\x9b",
						 "\xc2\x80" };
	static const char *const fine[] = { "\t", "\xc2\xa0", "\xe2\x82\xac",
					    "\xc3\xa9" };

	(void)state;
	for (size_t pos = 0; pos < 40; pos++) {
		for (size_t k = 0; k < 10; k++) {
			bool ok = k >= 6;
			const char *ins = ok ? fine[k - 6] : bad_bytes[k];
			struct smtp_reply_parser p;
			const struct smtp_reply *r;
			const char *data, *error = NULL;
			char line[128];
			size_t len;
			int rc;

			snprintf(line, sizeof(line), "250 %.*s%sz\r\n",
				 (int)pos, "abcdefghijklmnopqrstuvwxyz0123456789"
				 "ABCDEFGH", ins);
			data = line;
			len = strlen(line);
			smtp_reply_parser_init(&p, 0, 0);
			rc = smtp_reply_parse(&p, &data, &len, &r, &error);
			assert_int_equal(rc, ok ? 1 : -1);
			if (!ok)
				assert_non_null(strstr(error, "control"));
			smtp_reply_parser_free(&p);
		}
	}
}

/* Pipelined replies arrive together: each is handed out in turn. */
static void test_pipelined_replies(void **state)
{
	const char *in = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no\r\n"
			 "354 go ahead\r\n";
	static const int codes[] = { 250, 250, 550, 354 };
	struct smtp_reply_parser p;
	const struct smtp_reply *r;
	const char *data = in, *error;
	size_t len = strlen(in);

	(void)state;
	smtp_reply_parser_init(&p, 0, 0);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(smtp_reply_parse(&p, &data, &len, &r, &error),
				 1);
		assert_int_equal(r->code, codes[i]);
	}
	assert_int_equal(len, 0);
	assert_int_equal(smtp_reply_parse(&p, &data, &len, &r, &error), 0);
	smtp_reply_parser_free(&p);

	/* Byte by byte, the same four replies. */
	smtp_reply_parser_init(&p, 0, 0);
	data = in;
	for (size_t i = 0, got = 0; i < strlen(in); i++) {
		size_t one = 1;

		if (smtp_reply_parse(&p, &data, &one, &r, &error) == 1)
			assert_int_equal(r->code, codes[got++]);
	}
	smtp_reply_parser_free(&p);
}

static void test_limits(void **state)
{
	struct smtp_reply_parser p;
	const struct smtp_reply *r;
	const char *data, *error;
	char line[64];
	size_t len;

	(void)state;
	/* A line of exactly max_line is fine; one more byte is not. */
	smtp_reply_parser_init(&p, 20, 3);
	data = "250 0123456789abcdef\r\n";	/* 20 bytes before CRLF */
	len = strlen(data);
	assert_int_equal(smtp_reply_parse(&p, &data, &len, &r, &error), 1);
	data = "250 0123456789abcdefg\r\n";
	len = strlen(data);
	assert_int_equal(smtp_reply_parse(&p, &data, &len, &r, &error), -1);
	assert_non_null(strstr(error, "longer than the limit"));
	smtp_reply_parser_free(&p);

	/* Without a line end the limit still holds: no unbounded buffer. */
	smtp_reply_parser_init(&p, 20, 3);
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	data = line;
	len = sizeof(line);
	assert_int_equal(smtp_reply_parse(&p, &data, &len, &r, &error), -1);
	smtp_reply_parser_free(&p);

	/* max_lines */
	smtp_reply_parser_init(&p, 0, 3);
	data = "250-a\r\n250-b\r\n250-c\r\n250 d\r\n";
	len = strlen(data);
	assert_int_equal(smtp_reply_parse(&p, &data, &len, &r, &error), -1);
	assert_non_null(strstr(error, "too many lines"));
	smtp_reply_parser_free(&p);
}

static void test_enhanced_codes(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(smtp_reply_enhanced(550, "5.1.1 x", 7, out), 6);
	assert_string_equal(out, "5.1.1");
	assert_int_equal(smtp_reply_enhanced(451, "4.7.100 x", 9, out), 8);
	assert_string_equal(out, "4.7.100");
	assert_int_equal(smtp_reply_enhanced(250, "2.0.0", 5, out), 5);
	assert_int_equal(smtp_reply_enhanced(250, "5.0.0 x", 7, out), 0);
	assert_int_equal(smtp_reply_enhanced(250, "2.0.0x", 6, out), 0);
	assert_int_equal(smtp_reply_enhanced(250, "2.0000.0 x", 10, out), 0);
	assert_int_equal(smtp_reply_enhanced(250, "2..0 x", 6, out), 0);
	assert_int_equal(smtp_reply_enhanced(250, "", 0, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_replies_split_everywhere),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_controls_everywhere),
		cmocka_unit_test(test_pipelined_replies),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_enhanced_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
