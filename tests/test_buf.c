/*
 * test_buf - the byte buffer and the packed variable format.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "vars.h"

static void test_buf_grows_and_stays_terminated(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	assert_string_equal(buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		buf_putc(&b, (char)('a' + i % 26));
	assert_int_equal(b.len, 1000);
	assert_true(b.cap > 1000);
	assert_int_equal(b.data[1000], '\0');
	buf_printf(&b, "%d-%s", 42, "x");
	assert_int_equal(b.len, 1004);
	assert_string_equal(b.data + 1000, "42-x");
	buf_truncate(&b, 3);
	assert_string_equal(buf_cstr(&b), "abc");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
	assert_null(b.data);
}

/* Once a buffer has held the largest value, refilling never reallocates. */
static void test_buf_reuse_keeps_storage(void **state)
{
	struct buf b = BUF_INIT;
	char big[5000];
	char *before;

	(void)state;
	memset(big, 'x', sizeof(big));
	buf_append(&b, big, sizeof(big));
	before = b.data;
	for (int i = 0; i < 100; i++) {
		buf_reset(&b);
		buf_append(&b, big, sizeof(big) - (size_t)i);
	}
	assert_ptr_equal(b.data, before);
	buf_free(&b);
}

/* buf_append_u64 writes what printf's PRIu64 would, after what is there */
static void test_buf_append_u64_matches_printf(void **state)
{
	static const uint64_t fixed[] = {
		0, 1, 9, 10, 99, 100, 4096, 65535, 262144, 4294967295u,
		4294967296u, UINT64_MAX / 10, UINT64_MAX - 1, UINT64_MAX,
	};
	struct buf b = BUF_INIT;
	char want[32];
	uint64_t p10 = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "x=");
		buf_append_u64(&b, fixed[i]);
		snprintf(want, sizeof(want), "x=%" PRIu64, fixed[i]);
		assert_string_equal(buf_cstr(&b), want);
		assert_int_equal(b.len, strlen(want));
	}
	/* every power of ten, and the numbers either side of it */
	for (int d = 0; d < 20; d++, p10 *= 10) {
		for (int k = -1; k <= 1; k++) {
			uint64_t v = p10 + (uint64_t)(int64_t)k;

			buf_reset(&b);
			buf_append_u64(&b, v);
			snprintf(want, sizeof(want), "%" PRIu64, v);
			assert_string_equal(buf_cstr(&b), want);
		}
	}
	buf_free(&b);
}

static void test_vars_round_trip(void **state)
{
	static const size_t lens[] = { 0, 1, 127, 128, 300, 16384, 70000 };
	struct buf b = BUF_INIT;
	struct vars_iter it;
	char *val = malloc(70000);
	const char *p;
	size_t len;

	(void)state;
	vars_pack_begin(&b);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memset(val, (int)('a' + i), lens[i]);
		vars_pack_str(&b, val, lens[i]);
	}
	assert_int_equal(vars_iter_init(&it, b.data, b.len), 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(vars_next(&it, &p, &len), 1);
		assert_int_equal(len, lens[i]);
		memset(val, (int)('a' + i), lens[i]);
		assert_memory_equal(p, val, len);
	}
	assert_int_equal(vars_next(&it, &p, &len), 0);
	free(val);
	buf_free(&b);
}

static void test_vars_refuses_corrupt(void **state)
{
	static const unsigned char unknown_format[] = { 0x7f, 0 };
	static const unsigned char too_long[] = { VARS_FORMAT_FLAT, 5, 'a' };
	static const unsigned char cut_length[] = { VARS_FORMAT_FLAT, 0x80 };
	struct vars_iter it;
	const char *p;
	size_t len;

	(void)state;
	assert_int_equal(vars_iter_init(&it, unknown_format, 2), -1);
	assert_int_equal(vars_iter_init(&it, unknown_format, 0), -1);
	assert_int_equal(vars_iter_init(&it, too_long, 3), 0);
	assert_int_equal(vars_next(&it, &p, &len), -1);
	assert_int_equal(vars_iter_init(&it, cut_length, 2), 0);
	assert_int_equal(vars_next(&it, &p, &len), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_stays_terminated),
		cmocka_unit_test(test_buf_reuse_keeps_storage),
		cmocka_unit_test(test_buf_append_u64_matches_printf),
		cmocka_unit_test(test_vars_round_trip),
		cmocka_unit_test(test_vars_refuses_corrupt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
