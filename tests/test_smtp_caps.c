/*
 * test_smtp_caps - EHLO replies as real servers send them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_caps.h"

static void parse(const char *wire, struct smtp_caps *c)
{
	struct smtp_reply_parser p;
	const struct smtp_reply *r;
	const char *error;
	size_t len = strlen(wire);

	smtp_reply_parser_init(&p, 0, 0);
	assert_int_equal(smtp_reply_parse(&p, &wire, &len, &r, &error), 1);
	smtp_caps_parse(c, r);
	smtp_reply_parser_free(&p);
}

static void test_postfix(void **state)
{
	struct smtp_caps c;

	(void)state;
	parse("250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	      "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n"
	      "250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n"
	      "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
	      "250-SMTPUTF8\r\n250 CHUNKING\r\n", &c);
	assert_true(c.pipelining);
	assert_true(c.chunking);
	assert_true(c.starttls);
	assert_true(c.eightbitmime);
	assert_true(c.smtputf8);
	assert_true(c.enhancedstatuscodes);
	assert_true(c.dsn);
	assert_true(c.size);
	assert_int_equal(c.size_max, 10240000);
	assert_int_equal(c.auth, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN);
	assert_int_equal(c.mailmax, 0);
}

static void test_minimal_and_odd(void **state)
{
	struct smtp_caps c;

	(void)state;
	/* A greeting line is not a capability, even if it looks like one. */
	parse("250 PIPELINING\r\n", &c);
	assert_false(c.pipelining);

	parse("250-x\r\n250-pipelining\r\n250-Auth xoauth2 CRAM-MD5\r\n"
	      "250-SIZE\r\n250 LIMITS RCPTMAX=50 MAILMAX=10 RCPTDOMAINMAX=1\r\n",
	      &c);
	assert_true(c.pipelining);
	assert_int_equal(c.auth, SMTP_AUTH_XOAUTH2);
	assert_true(c.size);
	assert_int_equal(c.size_max, 0);
	assert_int_equal(c.rcptmax, 50);
	assert_int_equal(c.mailmax, 10);

	/* Malformed values leave the capability off. */
	parse("250-x\r\n250-SIZE lots\r\n250 LIMITS RCPTMAX=-1 MAILMAX=0\r\n",
	      &c);
	assert_false(c.size);
	assert_int_equal(c.rcptmax, 0);
	assert_int_equal(c.mailmax, 0);

	/* Not a 250: nothing at all. */
	parse("550 no\r\n", &c);
	assert_false(c.pipelining);
	/* Prefixes of keywords are not the keywords. */
	parse("250-x\r\n250-PIPELININGX\r\n250 STARTTLSY\r\n", &c);
	assert_false(c.pipelining);
	assert_false(c.starttls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postfix),
		cmocka_unit_test(test_minimal_and_odd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
