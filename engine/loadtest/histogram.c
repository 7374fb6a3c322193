/*
 * histogram - a log-linear histogram with fixed memory (see histogram.h).
 *
 * Bucket index of v, with S = HISTOGRAM_SUB_BITS:
 *   v < 2^(S+1):  v itself (one bucket per value);
 *   otherwise:    e = floor(log2 v), shift = e - S,
 *                 index = (e - S) * 2^S + (v >> shift)
 * where v >> shift lies in [2^S, 2^(S+1)), so each power of two gets 2^S
 * buckets of width 2^shift and the index grows with v without gaps.
 */
#include "histogram.h"

#include <string.h>

#define HISTOGRAM_EXACT (1u << (HISTOGRAM_SUB_BITS + 1))

void histogram_init(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

size_t histogram_index(uint64_t v)
{
	unsigned e, shift;

	if (v < HISTOGRAM_EXACT)
		return (size_t)v;
	if (v >> HISTOGRAM_MAX_BITS)
		return HISTOGRAM_BUCKETS - 1;
	e = 63u - (unsigned)__builtin_clzll(v);
	shift = e - HISTOGRAM_SUB_BITS;
	return ((size_t)shift << HISTOGRAM_SUB_BITS) + (size_t)(v >> shift);
}

void histogram_bucket(size_t i, uint64_t *lo, uint64_t *hi)
{
	unsigned shift;
	uint64_t sub;

	if (i < HISTOGRAM_EXACT) {
		*lo = *hi = i;
		return;
	}
	shift = (unsigned)(i >> HISTOGRAM_SUB_BITS) - 1;
	sub = (uint64_t)(i & ((1u << HISTOGRAM_SUB_BITS) - 1)) +
	      (1u << HISTOGRAM_SUB_BITS);
	*lo = sub << shift;
	*hi = i == HISTOGRAM_BUCKETS - 1 ? UINT64_MAX :
	      *lo + ((uint64_t)1 << shift) - 1;
}

void histogram_record_n(struct histogram *h, uint64_t v, uint64_t n)
{
	size_t i = histogram_index(v);

	if (n == 0)
		return;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count += n;
	/* A sum that would wrap stays at the top: the mean is then a
	 * lower bound, which beats a small number. */
	if (v != 0 && n > (UINT64_MAX - h->sum) / v)
		h->sum = UINT64_MAX;
	else
		h->sum += v * n;
	h->counts[i] += n;
	if (i + 1 > h->top)
		h->top = i + 1;
}

void histogram_record(struct histogram *h, uint64_t v)
{
	histogram_record_n(h, v, 1);
}

void histogram_merge(struct histogram *into, const struct histogram *from)
{
	if (from->count == 0)
		return;
	if (into->count == 0 || from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
	into->count += from->count;
	into->sum = from->sum > UINT64_MAX - into->sum ? UINT64_MAX :
		    into->sum + from->sum;
	/* Only up to the highest bucket used: most phases are sparse. */
	for (size_t i = 0; i < from->top; i++)
		into->counts[i] += from->counts[i];
	if (from->top > into->top)
		into->top = from->top;
}

/* histogram_clamp - a bucket's value, within what was really recorded */
static uint64_t histogram_clamp(const struct histogram *h, uint64_t v)
{
	if (v > h->max)
		return h->max;
	if (v < h->min)
		return h->min;
	return v;
}

uint64_t histogram_percentile(const struct histogram *h, double p)
{
	uint64_t rank, seen = 0, lo, hi;
	double want;

	if (h->count == 0)
		return 0;
	if (!(p > 0.0))
		return h->min;
	if (p >= 100.0)
		return h->max;
	want = p / 100.0 * (double)h->count;
	rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	for (size_t i = 0; i < h->top; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			histogram_bucket(i, &lo, &hi);
			return histogram_clamp(h, hi);
		}
	}
	return h->max;
}

double histogram_mean(const struct histogram *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

bool histogram_next(const struct histogram *h, size_t *i, uint64_t *value,
		    uint64_t *n)
{
	uint64_t lo, hi;

	while (*i < h->top && h->counts[*i] == 0)
		(*i)++;
	if (*i >= h->top)
		return false;
	histogram_bucket(*i, &lo, &hi);
	*value = histogram_clamp(h, hi);
	*n = h->counts[*i];
	(*i)++;
	return true;
}
