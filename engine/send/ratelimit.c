/*
 * ratelimit - GCRA under a mutex, shared by the workers (see ratelimit.h).
 *
 * Times of the buckets are in nanoseconds so that intervals such as
 * 1/3 s stay exact enough (rounded up: the rate can only come out lower);
 * the clock and the slots are in milliseconds.  A slot is rounded up to
 * the next millisecond and then used as the arrival time in the bucket
 * update, so the sequence of slots itself conforms to GCRA and the bound
 * of the header holds for the slots exactly, not only for the
 * theoretical times behind them.
 */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "errmsg.h"
#include "xalloc.h"

#define NS_PER_MS 1000000LL
#define RL_MAX_INTERVAL_NS 1000000000000000LL	/* about 11.6 days */
#define RL_MAX_TOLERANCE_NS 100000000000000000LL	/* about 3 years */
#define RL_MAX_MS 4000000000000LL	/* about 127 years: ms * 10^6 fits */
#define RL_POLL_MS 100			/* how often *stop is looked at */

/* One rate: T and tau of GCRA, and the theoretical arrival time. */
struct rl_bucket {
	int64_t interval;	/* ns between messages; 0: no limit */
	int64_t tolerance;	/* (burst - 1) * interval */
	int64_t tat;		/* ns */
};

struct ratelimit {
	pthread_mutex_t lock;
	struct rl_bucket second, hour;
	int64_t pause_until;	/* ms; nobody before it */
	int64_t (*now_ms)(void *ctx);
	void (*sleep_ms)(void *ctx, int64_t ms);
	void *ctx;
};

static int64_t rl_mono_ms(void *ctx)
{
	(void)ctx;
	return clock_mono_ms();
}

static void rl_sleep_ms(void *ctx, int64_t ms)
{
	(void)ctx;
	/* EINTR: the caller looks at the clock and sleeps again */
	clock_sleep_ms(ms);
}

/* rl_clamp_ms - keep a time where ms * 10^6 cannot overflow */
static int64_t rl_clamp_ms(int64_t ms)
{
	if (ms > RL_MAX_MS)
		return RL_MAX_MS;
	if (ms < -RL_MAX_MS)
		return -RL_MAX_MS;
	return ms;
}

/* rl_ceil_ms - ns to ms, rounded up (C division truncates toward zero,
 * which is already up for negative values) */
static int64_t rl_ceil_ms(int64_t ns)
{
	int64_t q = ns / NS_PER_MS;

	return ns % NS_PER_MS > 0 ? q + 1 : q;
}

/* rl_ceil - x rounded up, for 0 <= x <= 2^62 (no libm) */
static int64_t rl_ceil(double x)
{
	int64_t i = (int64_t)x;

	return (double)i < x ? i + 1 : i;
}

/*
 * rl_bucket_init - per messages per period_ns; 0 when per is 0.  -1 if
 * per is not a number, negative, or so small (or the burst so large)
 * that the arithmetic would leave int64.
 */
static int rl_bucket_init(struct rl_bucket *b, double per, double period_ns,
			  unsigned burst, int64_t now_ms)
{
	double t;

	b->interval = 0;
	b->tolerance = 0;
	b->tat = rl_clamp_ms(now_ms) * NS_PER_MS;
	if (per == 0)
		return 0;
	if (!(per > 0))
		return -1;
	t = period_ns / per;
	if (!(t <= (double)RL_MAX_INTERVAL_NS))
		return -1;
	b->interval = t >= 1 ? rl_ceil(t) : 1;
	if ((double)(burst - 1) * (double)b->interval >
	    (double)RL_MAX_TOLERANCE_NS)
		return -1;
	b->tolerance = (int64_t)(burst - 1) * b->interval;
	return 0;
}

int ratelimit_new(const struct ratelimit_params *p, struct ratelimit **rl_r,
		  const char **error_r)
{
	struct ratelimit *rl;
	unsigned burst = p->burst;
	int64_t now;

	*rl_r = NULL;
	if (burst == 0) {
		/* max(1, ceil(per_second / 10)); NaN is refused below */
		double b = p->per_second / 10;

		burst = b > 1e6 ? 1000000 : b > 1 ? (unsigned)rl_ceil(b) : 1;
	}
	rl = xcalloc(1, sizeof(*rl));
	rl->now_ms = p->now_ms != NULL ? p->now_ms : rl_mono_ms;
	rl->sleep_ms = p->sleep_ms != NULL ? p->sleep_ms : rl_sleep_ms;
	rl->ctx = p->clock_ctx;
	now = rl->now_ms(rl->ctx);
	if (rl_bucket_init(&rl->second, p->per_second, 1e9, burst, now) < 0) {
		free(rl);
		return errmsg_set(error_r, "a rate of %g per second with a "
				  "burst of %u cannot be kept: from 0.000001 "
				  "per second up, with (burst - 1) / rate at "
				  "most 10^8 s", p->per_second, burst);
	}
	if (rl_bucket_init(&rl->hour, p->per_hour, 3.6e12, burst, now) < 0) {
		free(rl);
		return errmsg_set(error_r, "a rate of %g per hour with a "
				  "burst of %u cannot be kept: from 0.0036 per "
				  "hour up, with (burst - 1) / rate at most "
				  "10^8 s", p->per_hour, burst);
	}
	rl->pause_until = INT64_MIN;
	pthread_mutex_init(&rl->lock, NULL);
	*rl_r = rl;
	return 0;
}

void ratelimit_free(struct ratelimit **rlp)
{
	struct ratelimit *rl = *rlp;

	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
	*rlp = NULL;
}

/* rl_bucket_earliest - the first ms this bucket lets a message go */
static int64_t rl_bucket_earliest(const struct rl_bucket *b)
{
	return b->interval != 0 ? rl_ceil_ms(b->tat - b->tolerance) : INT64_MIN;
}

/* rl_bucket_take - one message at slot_ms: TAT = max(TAT, slot) + T,
 * saturating (slots reserved and then abandoned on stop still count) */
static void rl_bucket_take(struct rl_bucket *b, int64_t slot_ms)
{
	int64_t base = slot_ms * NS_PER_MS;

	if (b->interval == 0)
		return;
	if (b->tat > base)
		base = b->tat;
	if (base > RL_MAX_MS * NS_PER_MS)
		base = RL_MAX_MS * NS_PER_MS;
	b->tat = base + b->interval;
}

/* rl_earliest - the first slot at or after now (ms) that both buckets
 * and any pause allow.  Called with the lock held. */
static int64_t rl_earliest(const struct ratelimit *rl, int64_t now)
{
	int64_t slot = rl_clamp_ms(now), t;

	if (rl->pause_until > slot)
		slot = rl->pause_until;
	t = rl_bucket_earliest(&rl->second);
	if (t > slot)
		slot = t;
	t = rl_bucket_earliest(&rl->hour);
	if (t > slot)
		slot = t;
	return slot;
}

/*
 * rl_reserve - the next slot at or after now (ms), taken from both
 * buckets.  Called with the lock held.
 */
static int64_t rl_reserve(struct ratelimit *rl, int64_t now)
{
	int64_t slot = rl_earliest(rl, now);

	rl_bucket_take(&rl->second, slot);
	rl_bucket_take(&rl->hour, slot);
	return slot;
}

bool ratelimit_try(struct ratelimit *rl)
{
	int64_t now;
	bool ok;

	if (rl == NULL)
		return true;
	now = rl_clamp_ms(rl->now_ms(rl->ctx));
	pthread_mutex_lock(&rl->lock);
	ok = rl_earliest(rl, now) <= now;
	if (ok) {
		rl_bucket_take(&rl->second, now);
		rl_bucket_take(&rl->hour, now);
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

int64_t ratelimit_acquire(struct ratelimit *rl, const atomic_bool *stop)
{
	int64_t t0, now, slot, nap;

	if (rl == NULL)
		return 0;
	t0 = rl->now_ms(rl->ctx);
	pthread_mutex_lock(&rl->lock);
	slot = rl_reserve(rl, t0);
	for (;;) {
		now = rl->now_ms(rl->ctx);
		/* a pause came after the reservation and covers it */
		if (rl->pause_until > slot)
			slot = rl_reserve(rl, now);
		/* decided under the lock: a pause is before or after us */
		if (now >= slot)
			break;
		pthread_mutex_unlock(&rl->lock);
		if (stop != NULL && atomic_load(stop))
			return -1;
		nap = slot - now;
		rl->sleep_ms(rl->ctx, nap < RL_POLL_MS ? nap : RL_POLL_MS);
		pthread_mutex_lock(&rl->lock);
	}
	pthread_mutex_unlock(&rl->lock);
	return now > t0 ? now - t0 : 0;
}

void ratelimit_pause(struct ratelimit *rl, int64_t until_ms)
{
	if (rl == NULL)
		return;
	until_ms = rl_clamp_ms(until_ms);
	pthread_mutex_lock(&rl->lock);
	if (until_ms > rl->pause_until)
		rl->pause_until = until_ms;
	pthread_mutex_unlock(&rl->lock);
}

int64_t ratelimit_now(struct ratelimit *rl)
{
	return rl != NULL ? rl->now_ms(rl->ctx) : rl_mono_ms(NULL);
}
