/*
 * ratelimit - the one rate limiter all worker threads of a send share:
 * messages per second, per hour (either, both or none), a burst, and a
 * pause of the whole pool that any thread can impose when the relay says
 * it is throttling us.
 *
 * It is a token bucket in its exact form, GCRA (virtual scheduling): per
 * rate it keeps the theoretical arrival time TAT of the next message, and
 * each acquire, under a mutex, reserves the earliest slot that conforms
 * to both rates and to the pause,
 *
 *   slot = max(now, TAT_s - (burst - 1) * T_s, TAT_h - (burst - 1) * T_h,
 *              pause end),  then  TAT = max(TAT, slot) + T  for each rate
 *
 * (T = 1 / rate, rounded up to the nanosecond; slots are whole
 * milliseconds of the limiter's clock, rounded up), then sleeps outside
 * the lock until its slot.  Reservations are taken in the order threads
 * come, so there is no thundering herd and no thread starves.
 *
 * The guarantee: over ANY window of W ms, at most
 *
 *   burst + floor(W * per_second / 1000)    and
 *   burst + floor(W * per_hour / 3600000)
 *
 * slots are granted, at any number of threads; acquire never returns
 * before its slot.  (A thread the scheduler wakes late sends late; the
 * bound is on slots, the instants the limiter allows, and no limiter can
 * do better than the scheduler.)  The burst applies to both rates: with
 * per_hour alone and burst 1 the messages are evenly spread.
 *
 * A pause moves every slot not yet reached: a thread asleep until a slot
 * inside the pause takes a new slot after it (the slot it leaves unused
 * stays counted, so the bound still holds).
 *
 * For tests the clock and the sleep can be replaced; a fake clock whose
 * sleep advances it makes the limiter deterministic.
 */
#ifndef VOLLEY_RATELIMIT_H
#define VOLLEY_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

struct ratelimit_params {
	double per_second;	/* 0: no limit */
	double per_hour;	/* 0: no limit */
	/* slots granted at once after an idle spell; 0: the default,
	 * max(1, ceil(per_second / 10)) */
	unsigned burst;
	/* the clock (ms) and the sleep; NULL: clock_mono_ms, clock_sleep_ms */
	int64_t (*now_ms)(void *ctx);
	void (*sleep_ms)(void *ctx, int64_t ms);
	void *clock_ctx;
};

/*
 * ratelimit_new - returns 0, or -1 with *error_r when a rate is negative
 * or not a number, per_second is below 0.000001 (one in 11.6 days) or
 * per_hour below 0.0036, or (burst - 1) / rate exceeds 10^8 s.
 */
int ratelimit_new(const struct ratelimit_params *p, struct ratelimit **rl_r,
		  const char **error_r);
void ratelimit_free(struct ratelimit **rlp);

/*
 * ratelimit_acquire - wait until one message may go.  Returns the ms
 * spent waiting (for the send's "where did the time go" summary), or -1
 * if *stop (may be NULL) became true while waiting: it is checked at
 * least every 100 ms.  rl NULL: no limit, returns 0 at once.
 */
int64_t ratelimit_acquire(struct ratelimit *rl, const atomic_bool *stop);

/*
 * ratelimit_pause - nobody acquires before until_ms (on the limiter's
 * clock: ratelimit_now() + backoff) from now on; pauses do not shorten
 * each other.
 */
void ratelimit_pause(struct ratelimit *rl, int64_t until_ms);

/*
 * ratelimit_try - take a slot only if one is free now (true), never
 * waiting: for a caller with other work (replies to read) meanwhile.
 * rl NULL: true.
 */
bool ratelimit_try(struct ratelimit *rl);

/* ratelimit_now - the limiter's clock, in ms */
int64_t ratelimit_now(struct ratelimit *rl);

#endif
