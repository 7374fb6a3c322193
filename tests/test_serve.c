/*
 * test_serve - what volley serve reads from its command line: the
 * --listen address (the server itself is driven end to end, with curl,
 * by tests/integration/serve.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "serve.h"

static void test_parse_listen(void **state)
{
	static const struct {
		const char *in, *host;
		unsigned port;
	} good[] = {
		{ "127.0.0.1:8025", "127.0.0.1", 8025 },
		{ "0.0.0.0:0", "0.0.0.0", 0 },
		{ "localhost:65535", "localhost", 65535 },
		{ "[::1]:8025", "::1", 8025 },
		{ "[fe80::1%lo]:80", "fe80::1%lo", 80 },
	};
	static const char *const bad[] = {
		"", "8025", ":8025", "127.0.0.1", "127.0.0.1:", "[::1]",
		"[::1]8025", "::1:8025", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1:+1", "127.0.0.1: 1", "127.0.0.1:80x", "[]:80",
		"127.0.0.1:99999999999999999999",
	};
	char host[64];
	unsigned port;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		port = 1;
		if (!serve_parse_listen(good[i].in, host, sizeof(host), &port))
			fail_msg("'%s' refused", good[i].in);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (serve_parse_listen(bad[i], host, sizeof(host), &port))
			fail_msg("'%s' taken", bad[i]);
	}
	/* a host that does not fit is refused, not cut */
	assert_false(serve_parse_listen("averyveryverylonghostname:80", host,
					 8, &port));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
