/*
 * clock - the one clock of volley.
 *
 * Two clocks, never mixed:
 *   monotonic (clock_mono_*): durations, deadlines, timeouts, rates and
 *     latencies.  It never jumps when someone sets the system time, so a
 *     timeout cannot fire early or never;
 *   wall (clock_wall_ms): instants that are stored or shown - a job's
 *     next attempt, a report's times, the sink's log: milliseconds since
 *     the Unix epoch, UTC.
 * A condition variable waited on with a timeout is made by
 * clock_cond_init, so that its waits run on the monotonic clock too, and
 * clock_deadline_ms gives the absolute time they take.
 *
 * The readers are inline: they sit on hot paths (a latency per message)
 * and are one vDSO call each.
 */
#ifndef VOLLEY_CLOCK_H
#define VOLLEY_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define CLOCK_NS_PER_S 1000000000LL

static inline int64_t clock_read_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * CLOCK_NS_PER_S + ts.tv_nsec;
}

/* clock_mono_ns, _us, _ms, _s - the monotonic clock */
static inline int64_t clock_mono_ns(void)
{
	return clock_read_ns(CLOCK_MONOTONIC);
}

static inline int64_t clock_mono_us(void)
{
	return clock_mono_ns() / 1000;
}

static inline int64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

static inline double clock_mono_s(void)
{
	return (double)clock_mono_ns() / 1e9;
}

/* clock_wall_ms, _us - now, since the Unix epoch (UTC) */
static inline int64_t clock_wall_ms(void)
{
	return clock_read_ns(CLOCK_REALTIME) / 1000000;
}

static inline int64_t clock_wall_us(void)
{
	return clock_read_ns(CLOCK_REALTIME) / 1000;
}

/*
 * clock_cpu_s - the CPU time of the whole process (every thread, user
 * and system), for benchmarks: rates per CPU-second
 */
static inline double clock_cpu_s(void)
{
	return (double)clock_read_ns(CLOCK_PROCESS_CPUTIME_ID) / 1e9;
}

/* clock_timespec - a monotonic instant (ns) as a struct timespec */
static inline struct timespec clock_timespec(int64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / CLOCK_NS_PER_S),
		.tv_nsec = (long)(ns % CLOCK_NS_PER_S),
	};

	return ts;
}

/*
 * clock_deadline_ms - ms from now on the monotonic clock, for
 * pthread_cond_timedwait on a condition variable from clock_cond_init
 */
static inline struct timespec clock_deadline_ms(int64_t ms)
{
	return clock_timespec(clock_mono_ns() + ms * 1000000);
}

/*
 * clock_cond_init - a condition variable whose timed waits use the
 * monotonic clock (pthread's default is the wall clock, which a change
 * of the system time would move).  Returns pthread_cond_init's result.
 */
int clock_cond_init(pthread_cond_t *cond);

/*
 * clock_sleep_until_ns - sleep until a monotonic instant (ns); returns
 * early only when a signal interrupts, so callers that care loop
 */
void clock_sleep_until_ns(int64_t ns);

/* clock_sleep_ms - sleep ms milliseconds (a signal may cut it short) */
void clock_sleep_ms(int64_t ms);

#endif
