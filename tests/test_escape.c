/*
 * test_escape - text from a file or a server, made safe for a terminal:
 * nothing that moves the cursor or starts a line survives, UTF-8 does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "escape.h"

static const char *esc(struct buf *b, const char *in, size_t len, size_t max)
{
	buf_reset(b);
	escape_text(b, in, len, max);
	return buf_cstr(b);
}

static void test_escape(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_string_equal(esc(&b, "plain text", 10, 100), "plain text");
	/* control bytes, a terminal escape sequence, DEL */
	assert_string_equal(esc(&b, "a\r\nb\tc", 6, 100),
			    "a\\x0D\\x0Ab\\x09c");
	assert_string_equal(esc(&b, "\x1b[2J\x7f", 5, 100),
			    "\\x1B[2J\\x7F");
	/* a backslash is doubled, so escapes cannot be forged */
	assert_string_equal(esc(&b, "\\x41", 4, 100), "\\\\x41");
	/* valid UTF-8 stays; invalid or cut short is escaped */
	assert_string_equal(esc(&b, "J\xc3\xbcrgen \xe4\xbe\x8b", 11, 100),
			    "J\xc3\xbcrgen \xe4\xbe\x8b");
	assert_string_equal(esc(&b, "\xff\xc3", 2, 100), "\\xFF\\xC3");
	assert_string_equal(esc(&b, "\xe4\xbe", 2, 100), "\\xE4\\xBE");
	/* a NUL inside the length is shown, not an end */
	assert_string_equal(esc(&b, "a\0b", 3, 100), "a\\x00b");
	/* at most max bytes of input, and a mark that there was more */
	assert_string_equal(esc(&b, "abcdef", 6, 3), "abc...");
	assert_string_equal(esc(&b, "abc", 3, 3), "abc");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
