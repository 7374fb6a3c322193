/*
 * test_clock - common/clock.h: the monotonic and wall clocks agree with
 * the system's, deadlines land on the monotonic clock, and a condition
 * variable from clock_cond_init times out on it.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"

static void test_units(void **state)
{
	int64_t ns, us, ms;

	(void)state;
	ns = clock_mono_ns();
	us = clock_mono_us();
	ms = clock_mono_ms();
	/* read in that order: each is no earlier than the one before */
	assert_true(us >= ns / 1000);
	assert_true(ms >= us / 1000);
	assert_true(ms - ns / 1000000 < 1000);
}

static void test_wall_is_the_epoch(void **state)
{
	int64_t before = (int64_t)time(NULL) * 1000;
	int64_t wall = clock_wall_ms();
	/*
	 * time() reads the kernel's coarse clock, which may still be in the
	 * second before the one clock_gettime() already reads: hence the
	 * second second (CI once met that edge with one).
	 */
	int64_t after = (int64_t)time(NULL) * 1000 + 2000;

	(void)state;
	assert_true(wall >= before);
	assert_true(wall < after);
	assert_true(clock_wall_us() / 1000 >= wall);
}

static void test_timespec(void **state)
{
	struct timespec ts = clock_timespec(3 * CLOCK_NS_PER_S + 999999999);

	(void)state;
	assert_int_equal(ts.tv_sec, 3);
	assert_int_equal(ts.tv_nsec, 999999999);
	ts = clock_timespec(0);
	assert_int_equal(ts.tv_sec, 0);
	assert_int_equal(ts.tv_nsec, 0);
}

/* a timed wait on a clock_cond_init variable ends at a monotonic
 * deadline: not before it, and with ETIMEDOUT */
static void test_cond_waits_on_the_monotonic_clock(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	struct timespec until;
	int64_t start, waited;
	int rc;

	(void)state;
	assert_int_equal(clock_cond_init(&cond), 0);
	start = clock_mono_ns();
	until = clock_deadline_ms(30);
	pthread_mutex_lock(&lock);
	do
		rc = pthread_cond_timedwait(&cond, &lock, &until);
	while (rc == 0);	/* spurious wake-ups are allowed */
	pthread_mutex_unlock(&lock);
	waited = clock_mono_ns() - start;
	assert_int_equal(rc, ETIMEDOUT);
	assert_true(waited >= 30 * 1000000LL);
	pthread_cond_destroy(&cond);
}

static void test_sleep_until(void **state)
{
	int64_t when = clock_mono_ns() + 20 * 1000000LL;

	(void)state;
	clock_sleep_until_ns(when);
	assert_true(clock_mono_ns() >= when);
	/* an instant already past returns at once */
	clock_sleep_until_ns(when - CLOCK_NS_PER_S);
	clock_sleep_ms(0);
	clock_sleep_ms(-5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_wall_is_the_epoch),
		cmocka_unit_test(test_timespec),
		cmocka_unit_test(test_cond_waits_on_the_monotonic_clock),
		cmocka_unit_test(test_sleep_until),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
