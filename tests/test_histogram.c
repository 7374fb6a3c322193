/*
 * test_histogram - the load test's log-linear histogram: buckets tile the
 * whole range without gaps; percentiles are within 1% of (and never
 * below) the exact ones computed from the sorted data, over values from
 * 1 to 2^35; merging gives exactly what recording everything in one
 * histogram gives; and the edges (empty, 0, values past the range,
 * UINT64_MAX, p = 0 and 100).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "histogram.h"

#define NVALUES 200000

/* xorshift64*: a fixed sequence, so a failure can be replayed */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* rng_log - log-uniform in [1, 2^bits): every magnitude as likely */
static uint64_t rng_log(unsigned bits)
{
	unsigned e = (unsigned)(rng() % bits);
	uint64_t v = ((uint64_t)1 << e) | (rng() & (((uint64_t)1 << e) - 1));

	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* exact_percentile - the value of rank ceil(p/100 * n) in sorted data */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
	double want = p / 100.0 * (double)n;
	size_t rank = (size_t)want;

	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	return sorted[rank - 1];
}

static struct histogram *hist_new(void)
{
	struct histogram *h = malloc(sizeof(*h));

	assert_non_null(h);
	histogram_init(h);
	return h;
}

static void test_buckets_tile(void **state)
{
	uint64_t lo, hi, prev_hi = 0;

	(void)state;
	for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
		histogram_bucket(i, &lo, &hi);
		if (i > 0)
			assert_int_equal(lo, prev_hi + 1);
		else
			assert_int_equal(lo, 0);
		assert_true(hi >= lo);
		assert_int_equal(histogram_index(lo), i);
		assert_int_equal(histogram_index(hi), i);
		/* the width bound that gives the precision */
		if (i + 1 < HISTOGRAM_BUCKETS)
			assert_true((hi - lo) * 128 <= lo);
		prev_hi = hi;
	}
	assert_int_equal(prev_hi, UINT64_MAX);
	/* below 256, one bucket per value */
	for (uint64_t v = 0; v < 256; v++)
		assert_int_equal(histogram_index(v), v);
	assert_int_equal(histogram_index(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
	assert_int_equal(histogram_index((uint64_t)1 << HISTOGRAM_MAX_BITS),
			 HISTOGRAM_BUCKETS - 1);
	/* fixed memory: about 30 KB, whatever is recorded */
	assert_true(sizeof(struct histogram) < 32 * 1024);
}

static void test_precision(void **state)
{
	static const double ps[] = { 0.001, 0.1, 1, 5, 10, 25, 50, 75, 90,
				     95, 99, 99.5, 99.9, 99.99, 99.999 };
	uint64_t *v = malloc(NVALUES * sizeof(*v));
	struct histogram *h = hist_new();

	(void)state;
	assert_non_null(v);
	for (size_t i = 0; i < NVALUES; i++) {
		v[i] = rng_log(35);
		histogram_record(h, v[i]);
	}
	qsort(v, NVALUES, sizeof(*v), cmp_u64);
	assert_int_equal(h->count, NVALUES);
	assert_int_equal(h->min, v[0]);
	assert_int_equal(h->max, v[NVALUES - 1]);
	assert_int_equal(histogram_percentile(h, 100), v[NVALUES - 1]);
	assert_int_equal(histogram_percentile(h, 0), v[0]);
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		uint64_t want = exact_percentile(v, NVALUES, ps[k]);
		uint64_t got = histogram_percentile(h, ps[k]);

		/* never below the truth, and at most 1% above it */
		if (got < want || (double)(got - want) > (double)want * 0.01)
			fail_msg("p%g: got %llu, exact %llu", ps[k],
				 (unsigned long long)got,
				 (unsigned long long)want);
	}
	/* every single value: its percentile rank reads back within 1% */
	for (size_t i = 0; i < NVALUES; i += 997) {
		double p = 100.0 * (double)(i + 1) / NVALUES;
		uint64_t want = exact_percentile(v, NVALUES, p);
		uint64_t got = histogram_percentile(h, p);

		assert_true(got >= want);
		assert_true((double)(got - want) <= (double)want * 0.01);
	}
	free(v);
	free(h);
}

/* a narrow, realistic spread: 50 ms +- a little, in microseconds */
static void test_precision_narrow(void **state)
{
	struct histogram *h = hist_new();
	uint64_t *v = malloc(10000 * sizeof(*v));

	(void)state;
	assert_non_null(v);
	for (size_t i = 0; i < 10000; i++) {
		v[i] = 50000 + rng() % 3000;
		histogram_record(h, v[i]);
	}
	qsort(v, 10000, sizeof(*v), cmp_u64);
	for (double p = 1; p < 100; p += 1) {
		uint64_t want = exact_percentile(v, 10000, p);
		uint64_t got = histogram_percentile(h, p);

		assert_true(got >= want);
		assert_true((double)(got - want) <= (double)want * 0.01);
	}
	assert_true(histogram_mean(h) > 50000 && histogram_mean(h) < 53000);
	free(v);
	free(h);
}

static void test_merge(void **state)
{
	struct histogram *all = hist_new(), *sum = hist_new();
	struct histogram *empty = hist_new();
	struct histogram *part[4];

	(void)state;
	for (int k = 0; k < 4; k++)
		part[k] = hist_new();
	for (size_t i = 0; i < 50000; i++) {
		/* each part its own range, so min and max come from some */
		uint64_t x = rng_log(20 + (unsigned)(i % 4) * 4);

		histogram_record(all, x);
		histogram_record(part[i % 4], x);
	}
	/* merging an empty one changes nothing */
	histogram_merge(sum, empty);
	for (int k = 0; k < 4; k++)
		histogram_merge(sum, part[k]);
	assert_int_equal(sum->count, all->count);
	assert_int_equal(sum->min, all->min);
	assert_int_equal(sum->max, all->max);
	assert_int_equal(sum->sum, all->sum);
	assert_int_equal(sum->top, all->top);
	assert_memory_equal(sum->counts, all->counts, sizeof(all->counts));
	for (double p = 0; p <= 100; p += 0.5)
		assert_int_equal(histogram_percentile(sum, p),
				 histogram_percentile(all, p));
	for (int k = 0; k < 4; k++)
		free(part[k]);
	free(empty);
	free(all);
	free(sum);
}

static void test_edges(void **state)
{
	struct histogram *h = hist_new();
	uint64_t value, n, total = 0;
	size_t i = 0;

	(void)state;
	/* empty */
	assert_int_equal(histogram_percentile(h, 50), 0);
	assert_int_equal(histogram_percentile(h, 100), 0);
	assert_true(histogram_mean(h) == 0.0);
	assert_false(histogram_next(h, &i, &value, &n));

	/* zero, the exact range, a value past the range, UINT64_MAX */
	histogram_record(h, 0);
	assert_int_equal(histogram_percentile(h, 50), 0);
	assert_int_equal(h->min, 0);
	histogram_record(h, 255);
	histogram_record(h, 256);
	histogram_record_n(h, 1000, 7);
	histogram_record(h, (uint64_t)1 << 40);
	histogram_record(h, UINT64_MAX);
	assert_int_equal(h->count, 12);
	assert_int_equal(h->max, UINT64_MAX);
	assert_int_equal(h->sum, UINT64_MAX);	/* saturated, not wrapped */
	assert_int_equal(histogram_percentile(h, 100), UINT64_MAX);
	assert_int_equal(histogram_percentile(h, 0), 0);
	/* rank 1 of 12 is the 0; rank 2 the 255 (exact); rank 3 the 256,
	 * in a bucket two wide: reported as 257 */
	assert_int_equal(histogram_percentile(h, 100.0 / 12), 0);
	assert_int_equal(histogram_percentile(h, 200.0 / 12), 255);
	assert_int_equal(histogram_percentile(h, 300.0 / 12), 257);
	/* the seven 1000s: within 1% above */
	value = histogram_percentile(h, 50);
	assert_true(value >= 1000 && value <= 1010);
	/* the two past the range share the last bucket; each is at most
	 * the maximum */
	assert_int_equal(histogram_percentile(h, 99), UINT64_MAX);

	/* the walk sees every value once */
	i = 0;
	while (histogram_next(h, &i, &value, &n)) {
		assert_true(value <= h->max);
		total += n;
	}
	assert_int_equal(total, h->count);

	/* one value only: every percentile is it, exactly */
	histogram_init(h);
	histogram_record(h, 123456);
	for (double p = 0; p <= 100; p += 10)
		assert_int_equal(histogram_percentile(h, p), 123456);
	histogram_record_n(h, 5, 0);	/* n = 0 records nothing */
	assert_int_equal(h->count, 1);
	assert_int_equal(h->min, 123456);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_tile),
		cmocka_unit_test(test_precision),
		cmocka_unit_test(test_precision_narrow),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
