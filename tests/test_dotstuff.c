/*
 * test_dotstuff - DATA content: line ends, leading dots, the end-of-data
 * line; and that no body, whatever its bytes, can end the DATA early or
 * leave a bare CR or LF on the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dotstuff.h"

static const char *stuff(const char *in, size_t len)
{
	static struct buf out;

	buf_reset(&out);
	dotstuff_data(&out, in, len);
	return buf_cstr(&out);
}

static void test_cases(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", ".\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ ".\r\n", "..\r\n.\r\n" },
		{ "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n" },
		{ "..x\r\n", "...x\r\n.\r\n" },
		{ "a.b\r\n", "a.b\r\n.\r\n" },
		/* bare LF and lone CR become CRLF: no smuggling */
		{ "a\n.\nb", "a\r\n..\r\nb\r\n.\r\n" },
		{ "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n" },
		{ "a\r\r\n", "a\r\n\r\n.\r\n" },
		{ "\n", "\r\n.\r\n" },
		{ "\r", "\r\n.\r\n" },
		{ "a\r\n\r\n.\r\n\r\n", "a\r\n\r\n..\r\n\r\n.\r\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(stuff(cases[i].in, strlen(cases[i].in)),
				    cases[i].out);
}

/* unstuff - what a server keeps: lines up to the lone ".", dots undone */
static size_t unstuff(const char *s, char *out, int *end_lines)
{
	size_t n = 0;

	*end_lines = 0;
	while (*s) {
		const char *eol = strstr(s, "\r\n");

		assert_non_null(eol);
		if (eol == s + 1 && s[0] == '.') {
			(*end_lines)++;
			s = eol + 2;
			assert_int_equal(*s, '\0');	/* the very end */
			break;
		}
		if (s[0] == '.') {
			assert_int_equal(s[1], '.');
			s++;
		}
		memcpy(out + n, s, (size_t)(eol - s));
		n += (size_t)(eol - s);
		memcpy(out + n, "\r\n", 2);
		n += 2;
		s = eol + 2;
	}
	return n;
}

/*
 * Random bodies over the bytes that matter: the server sees exactly one
 * end-of-data line, at the end, no bare CR or LF, and the body back with
 * its line ends made CRLF.
 */
static void test_random_bodies(void **state)
{
	static const char alphabet[] = { '.', '\r', '\n', 'a', ' ' };
	char in[64], want[200], got[200];
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len, w = 0;
		const char *out;
		int end_lines;

		seed = seed * 1103515245 + 12345;
		len = (seed >> 16) % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			in[i] = alphabet[(seed >> 16) % sizeof(alphabet)];
		}
		out = stuff(in, len);
		for (const char *p = out; *p; p++) {
			if (*p == '\r')
				assert_int_equal(p[1], '\n');
			if (*p == '\n')
				assert_true(p > out && p[-1] == '\r');
		}
		/* the body, line ends normalised the same way */
		for (size_t i = 0; i < len; i++) {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				continue;
			if (in[i] == '\r' || in[i] == '\n') {
				memcpy(want + w, "\r\n", 2);
				w += 2;
			} else {
				want[w++] = in[i];
			}
		}
		if (w > 0 && want[w - 1] != '\n') {
			memcpy(want + w, "\r\n", 2);
			w += 2;
		}
		assert_int_equal(unstuff(out, got, &end_lines), w);
		assert_int_equal(end_lines, 1);
		assert_memory_equal(got, want, w);

		/* BDAT content: the same line ends, dots left alone */
		{
			struct buf b = BUF_INIT;

			assert_int_equal(dotstuff_crlf(&b, in, len), w);
			assert_int_equal(b.len, w);
			if (w > 0)
				assert_memory_equal(b.data, want, w);
			buf_free(&b);
		}
	}
}

/*
 * A piece at a time, through any size of buffer, the same bytes as in
 * one pass; no piece longer than allowed; and dotstuff_len knew the
 * total beforehand.
 */
static void test_pieces(void **state)
{
	static const char alphabet[] = { '.', '\r', '\n', 'a', ' ', 'b' };
	static const size_t maxes[] = { 1, 2, 3, 5, 8, 64, 1000 };
	static char in[3000];
	unsigned seed = 777;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		size_t len;

		seed = seed * 1103515245 + 12345;
		len = (seed >> 16) % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			/* long lines now and then: a run of 'a' */
			in[i] = (seed >> 20) % 50 == 0 ? '\n' :
				(seed >> 16) % 3 == 0 ?
				alphabet[(seed >> 8) % sizeof(alphabet)] : 'a';
		}
		for (int stuffing = 0; stuffing < 2; stuffing++) {
			struct buf whole = BUF_INIT;

			if (stuffing)
				dotstuff_data(&whole, in, len);
			else
				dotstuff_crlf(&whole, in, len);
			assert_int_equal(dotstuff_len(in, len, stuffing),
					 whole.len);
			for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]);
			     k++) {
				struct dotstuff_pos pos = { 0 };
				struct buf pieces = BUF_INIT, one = BUF_INIT;
				int steps = 0;

				while (!pos.done) {
					buf_reset(&one);
					dotstuff_step(&one, in, len, stuffing,
						      &pos, maxes[k]);
					assert_true(one.len <= maxes[k] + 8);
					buf_append(&pieces, one.data ?
						   one.data : "", one.len);
					assert_true(++steps <= 2 * 3000 + 10);
				}
				assert_int_equal(pieces.len, whole.len);
				if (whole.len > 0)
					assert_memory_equal(pieces.data,
							    whole.data,
							    whole.len);
				buf_free(&pieces);
				buf_free(&one);
			}
			buf_free(&whole);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_random_bodies),
		cmocka_unit_test(test_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
