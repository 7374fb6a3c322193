/*
 * bench_clock - the two clocks every benchmark reads: wall time and the
 * process's CPU time (all threads, user + system), in seconds.  CPU time
 * is what a rate per CPU-second divides by: on a shared machine wall
 * time also counts the moments another tenant had the core.
 */
#ifndef VOLLEY_BENCH_CLOCK_H
#define VOLLEY_BENCH_CLOCK_H

#include <time.h>

static inline double bench_clock_read(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double bench_now(void)
{
	return bench_clock_read(CLOCK_MONOTONIC);
}

static inline double bench_cpu(void)
{
	return bench_clock_read(CLOCK_PROCESS_CPUTIME_ID);
}

#endif
