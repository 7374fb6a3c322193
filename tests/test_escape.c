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
	/* C1 controls written in UTF-8 (U+009B is CSI to some terminals)
	 * and the raw byte 9B are escaped; U+00A0 and beyond are text */
	assert_string_equal(esc(&b, "a\xc2\x9b" "31m\x9b" "0m", 9, 100),
			    "a\\xC2\\x9B31m\\x9B0m");
	assert_string_equal(esc(&b, "\xc2\xa0\xc2\x80", 4, 100),
			    "\xc2\xa0\\xC2\\x80");
	buf_free(&b);
}

/*
 * escape_controls: the last pass over a message that may hold text
 * escape_text made (it stays as it is) and raw text (its controls go)
 */
static void test_escape_controls(void **state)
{
	struct buf b = BUF_INIT, once = BUF_INIT;

	(void)state;
	escape_text(&once, "\x1b[2J", 4, 100);
	escape_controls(&b, once.data, once.len);
	assert_string_equal(buf_cstr(&b), "\\x1B[2J");
	buf_reset(&b);
	escape_controls(&b, "a\\b \x1b]0;x\x07 \xc2\x9b", 13);
	assert_string_equal(buf_cstr(&b), "a\\b \\x1B]0;x\\x07 \\xC2\\x9B");
	buf_free(&b);
	buf_free(&once);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_controls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
