/*
 * clock - the one clock of volley (see clock.h).
 */
#include "clock.h"

int clock_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc;

	rc = pthread_condattr_init(&attr);
	if (rc != 0)
		return rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

void clock_sleep_until_ns(int64_t ns)
{
	struct timespec ts = clock_timespec(ns);

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

void clock_sleep_ms(int64_t ms)
{
	if (ms > 0)
		clock_sleep_until_ns(clock_mono_ns() + ms * 1000000);
}
