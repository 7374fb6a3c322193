/*
 * histogram - a log-linear histogram of non-negative integers (volley
 * records microseconds) with fixed memory and a bounded relative error,
 * in the manner of HdrHistogram: what the load test keeps per phase.
 *
 * Layout: values below 2^(HISTOGRAM_SUB_BITS + 1) = 256 each have their
 * own bucket (exact).  Above, every power of two [2^e, 2^(e+1)) is cut
 * into 2^HISTOGRAM_SUB_BITS = 128 equal buckets, so a bucket is never
 * wider than 1/128 of the values in it: a value reported from a bucket
 * (its highest value) is at most 0.79% above the value recorded, and
 * never below it.  Values of 2^HISTOGRAM_MAX_BITS or more (19 hours in
 * microseconds) all land in the last bucket; the exact maximum is kept
 * apart, so max is always exact.
 *
 * Recording is O(1) and allocates nothing (a count of leading zeros and
 * a shift); a histogram is one flat struct of about 30 KB, the same
 * whatever it holds.  Threads each record into their own and the
 * reporter merges them (histogram_merge); a histogram has no lock.
 */
#ifndef VOLLEY_HISTOGRAM_H
#define VOLLEY_HISTOGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_SUB_BITS 7
#define HISTOGRAM_MAX_BITS 36
/* 256 exact buckets, then 128 per power of two from 2^8 to 2^35 */
#define HISTOGRAM_BUCKETS \
	((HISTOGRAM_MAX_BITS - HISTOGRAM_SUB_BITS + 1) << HISTOGRAM_SUB_BITS)

struct histogram {
	uint64_t count;
	uint64_t min;		/* exact; meaningless while count is 0 */
	uint64_t max;		/* exact */
	uint64_t sum;		/* for the mean (saturates, never wraps) */
	size_t top;		/* one past the highest non-empty bucket */
	uint64_t counts[HISTOGRAM_BUCKETS];
};

/* histogram_init - empty (a zeroed struct is empty too) */
void histogram_init(struct histogram *h);

/* histogram_record - one value */
void histogram_record(struct histogram *h, uint64_t v);

/* histogram_record_n - the same value n times */
void histogram_record_n(struct histogram *h, uint64_t v, uint64_t n);

/* histogram_merge - add every value of from into into */
void histogram_merge(struct histogram *into, const struct histogram *from);

/*
 * histogram_percentile - the value at or below which p percent (0..100)
 * of the values lie: the highest value of the bucket holding the value
 * of rank ceil(p/100 * count), never above max nor below min; 0 when
 * empty.  p = 100 gives max, p = 0 gives min.
 */
uint64_t histogram_percentile(const struct histogram *h, double p);

/* histogram_mean - the mean of the values recorded (0 when empty) */
double histogram_mean(const struct histogram *h);

/*
 * histogram_bucket - the range [lo, hi] of values that share bucket i
 * (i < HISTOGRAM_BUCKETS); the last bucket's hi is UINT64_MAX.
 */
void histogram_bucket(size_t i, uint64_t *lo, uint64_t *hi);

/* histogram_index - the bucket v falls in */
size_t histogram_index(uint64_t v);

/*
 * histogram_next - walk the non-empty buckets: start with *i = 0; each
 * call sets *i past the bucket it returns.  Returns false at the end.
 * *value is the bucket's highest value (capped at max), *n its count.
 */
bool histogram_next(const struct histogram *h, size_t *i, uint64_t *value,
		    uint64_t *n);

#endif
