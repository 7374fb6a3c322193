/*
 * test_ratelimit - the shared limiter against a fake clock: exact slots,
 * the window bound of ratelimit.h over every window of a run, both rates,
 * the pause, stop, and 8 threads.
 *
 * The fake clock is a small discrete-event simulator: time stands still
 * while any thread runs and jumps to the earliest wake-up once every
 * thread sleeps.  So a thread that returns from ratelimit_acquire reads
 * its slot as the time, exactly, however the threads are scheduled, and
 * nothing here depends on the speed of the machine.
 */
#include <math.h>	/* NAN */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

#define MAX_THREADS 16

struct fake_clock {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int64_t now;
	int running;			/* threads that are not asleep */
	int64_t wake[MAX_THREADS];	/* of the sleepers */
	int nwake;
	int64_t sleeps;			/* calls of fake_sleep */
	int64_t max_nap;		/* longest single sleep asked for */
	/* set *stop once the time reaches stop_at (0: never) */
	atomic_bool *stop;
	int64_t stop_at;
};

static void fake_init(struct fake_clock *c, int64_t start, int threads)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->now = start;
	c->running = threads;
}

static void fake_destroy(struct fake_clock *c)
{
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
}

static int64_t fake_now(void *ctx)
{
	struct fake_clock *c = ctx;
	int64_t t;

	pthread_mutex_lock(&c->lock);
	t = c->now;
	pthread_mutex_unlock(&c->lock);
	return t;
}

/* fake_advance - everybody sleeps: jump to the earliest wake-up */
static void fake_advance(struct fake_clock *c)
{
	int64_t t = INT64_MAX;

	for (int i = 0; i < c->nwake; i++)
		if (c->wake[i] < t)
			t = c->wake[i];
	if (t != INT64_MAX && t > c->now)
		c->now = t;
	if (c->stop != NULL && c->stop_at != 0 && c->now >= c->stop_at)
		atomic_store(c->stop, true);
	pthread_cond_broadcast(&c->cond);
}

static void fake_sleep(void *ctx, int64_t ms)
{
	struct fake_clock *c = ctx;
	int64_t until;
	int i;

	assert_true(ms > 0);
	pthread_mutex_lock(&c->lock);
	c->sleeps++;
	if (ms > c->max_nap)
		c->max_nap = ms;
	until = c->now + ms;
	assert_true(c->nwake < MAX_THREADS);
	c->wake[c->nwake++] = until;
	c->running--;
	while (c->now < until) {
		/* the last one to fall asleep moves time on; if someone
		 * else is due first, it must run before time moves again */
		if (c->running == 0) {
			fake_advance(c);
			if (c->now >= until)
				break;
		}
		pthread_cond_wait(&c->cond, &c->lock);
	}
	for (i = 0; c->wake[i] != until; i++)
		;
	c->wake[i] = c->wake[--c->nwake];
	c->running++;
	pthread_mutex_unlock(&c->lock);
}

/* fake_done - a thread is finished and will never sleep again */
static void fake_done(struct fake_clock *c)
{
	pthread_mutex_lock(&c->lock);
	c->running--;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static struct ratelimit *new_rl(struct fake_clock *c, double per_second,
				double per_hour, unsigned burst)
{
	struct ratelimit_params p = {
		.per_second = per_second,
		.per_hour = per_hour,
		.burst = burst,
		.now_ms = fake_now,
		.sleep_ms = fake_sleep,
		.clock_ctx = c,
	};
	struct ratelimit *rl;
	const char *err = NULL;

	assert_int_equal(ratelimit_new(&p, &rl, &err), 0);
	assert_non_null(rl);
	return rl;
}

/*
 * check_windows - over every window [t_i, t_i + w] of the sorted grant
 * times, at most burst + floor(w * rate / period) grants; returns the
 * most found in one window (to see the bound is reached, not merely kept).
 */
static int64_t check_windows(const int64_t *t, size_t n, int64_t w,
			     double rate, double period, unsigned burst)
{
	int64_t bound = burst + (int64_t)((double)w * rate / period);
	int64_t most = 0;
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		if (j < i)
			j = i;
		while (j < n && t[j] <= t[i] + w)
			j++;
		if ((int64_t)(j - i) > bound)
			fail_msg("%zu grants in [%lld, %lld], bound %lld",
				 j - i, (long long)t[i],
				 (long long)(t[i] + w), (long long)bound);
		if ((int64_t)(j - i) > most)
			most = (int64_t)(j - i);
	}
	return most;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* 10/s, burst 1: exactly every 100 ms, and the wait is reported */
static void test_spacing(void **state)
{
	struct fake_clock c;
	struct ratelimit *rl;

	(void)state;
	fake_init(&c, 5000, 1);
	rl = new_rl(&c, 10, 0, 1);
	for (int i = 0; i < 20; i++) {
		int64_t waited = ratelimit_acquire(rl, NULL);

		assert_int_equal(waited, i == 0 ? 0 : 100);
		assert_int_equal(ratelimit_now(rl), 5000 + 100 * i);
	}
	assert_true(c.max_nap <= 100);
	/* idle for a while: one slot at once (burst 1), then 100 ms again */
	fake_sleep(&c, 1000);
	c.max_nap = 0;
	assert_int_equal(ratelimit_acquire(rl, NULL), 0);
	assert_int_equal(ratelimit_acquire(rl, NULL), 100);
	assert_true(c.max_nap <= 100);
	ratelimit_free(&rl);
	assert_null(rl);
	fake_destroy(&c);
}

/*
 * ratelimit_try takes a slot only when one is free now and never waits;
 * what it takes counts against the rate like an acquire.
 */
static void test_try(void **state)
{
	struct fake_clock c;
	struct ratelimit *rl;

	(void)state;
	fake_init(&c, 5000, 1);
	rl = new_rl(&c, 10, 0, 1);
	assert_true(ratelimit_try(rl));
	assert_false(ratelimit_try(rl));	/* next slot at 5100 */
	assert_int_equal(ratelimit_now(rl), 5000);
	fake_sleep(&c, 99);
	assert_false(ratelimit_try(rl));
	fake_sleep(&c, 1);
	assert_true(ratelimit_try(rl));
	/* a blocking acquire waits for the slot after the one try took */
	assert_int_equal(ratelimit_acquire(rl, NULL), 100);
	/* a pause holds try back too */
	ratelimit_pause(rl, ratelimit_now(rl) + 1000);
	fake_sleep(&c, 500);
	assert_false(ratelimit_try(rl));
	fake_sleep(&c, 500);
	assert_true(ratelimit_try(rl));
	assert_true(ratelimit_try(NULL));
	ratelimit_free(&rl);
	fake_destroy(&c);
}

/* the default burst is ceil(per_second / 10): 100/s lets 10 go at once */
static void test_default_burst(void **state)
{
	struct fake_clock c;
	struct ratelimit *rl;

	(void)state;
	fake_init(&c, 0, 1);
	rl = new_rl(&c, 100, 0, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(ratelimit_acquire(rl, NULL), 0);
	for (int i = 1; i <= 10; i++) {
		assert_int_equal(ratelimit_acquire(rl, NULL), 10);
		assert_int_equal(ratelimit_now(rl), 10 * i);
	}
	ratelimit_free(&rl);
	/* 25/s: burst 3; below 10/s: burst 1 */
	rl = new_rl(&c, 25, 0, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_acquire(rl, NULL), 0);
	assert_int_equal(ratelimit_acquire(rl, NULL), 40);
	ratelimit_free(&rl);
	rl = new_rl(&c, 2.5, 0, 0);
	assert_int_equal(ratelimit_acquire(rl, NULL), 0);
	assert_int_equal(ratelimit_acquire(rl, NULL), 400);
	ratelimit_free(&rl);
	fake_destroy(&c);
}

/*
 * run_one - n acquisitions by one thread that sometimes idles between
 * them (pseudo-random 0..idle_max ms), grant times into t
 */
static void run_one(struct ratelimit *rl, struct fake_clock *c, int64_t *t,
		    size_t n, int64_t idle_max, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(ratelimit_acquire(rl, NULL) >= 0);
		t[i] = ratelimit_now(rl);
		if (i > 0)
			assert_true(t[i] >= t[i - 1]);
		seed = seed * 1103515245 + 12345;
		if (idle_max > 0 && (seed >> 16) % 3 == 0)
			fake_sleep(c, 1 + (int64_t)((seed >> 8) % idle_max));
	}
}

static const int64_t windows[] = { 0, 1, 19, 20, 21, 99, 100, 333, 999,
				   1000, 1001, 2500, 3000, 10000 };
#define NWINDOWS (sizeof(windows) / sizeof(windows[0]))

/* every window of 1000 grants, backlogged and with idle spells */
static void test_any_window(void **state)
{
	static const struct {
		double rate;
		unsigned burst;
		int64_t idle_max;
	} cases[] = {
		{ 50, 5, 0 }, { 50, 5, 60 }, { 50, 1, 0 }, { 3, 2, 0 },
		{ 3, 2, 700 }, { 7, 1, 300 }, { 1000, 1, 0 }, { 2500, 4, 3 },
		{ 0.5, 3, 5000 },
	};
	int64_t t[1000];

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct fake_clock c;
		struct ratelimit *rl;

		fake_init(&c, 0, 1);
		rl = new_rl(&c, cases[k].rate, 0, cases[k].burst);
		run_one(rl, &c, t, 1000, cases[k].idle_max, (uint32_t)k);
		for (size_t w = 0; w < NWINDOWS; w++) {
			int64_t most = check_windows(t, 1000, windows[w],
						     cases[k].rate, 1000,
						     cases[k].burst);

			/* backlogged at a whole number of ms per message,
			 * the bound is reached: no slack wasted */
			if (cases[k].idle_max == 0 &&
			    1000 / cases[k].rate ==
			    (double)(int64_t)(1000 / cases[k].rate) &&
			    windows[w] < t[999] / 2)
				assert_int_equal(most, cases[k].burst +
					(int64_t)(windows[w] * cases[k].rate /
						  1000));
		}
		ratelimit_free(&rl);
		fake_destroy(&c);
	}
}

/* per hour alone: 3600/h is one a second; 7200/h with burst 3 */
static void test_per_hour(void **state)
{
	struct fake_clock c;
	struct ratelimit *rl;
	int64_t t[500];

	(void)state;
	fake_init(&c, 0, 1);
	rl = new_rl(&c, 0, 3600, 0);
	for (int i = 0; i < 10; i++) {
		assert_true(ratelimit_acquire(rl, NULL) >= 0);
		assert_int_equal(ratelimit_now(rl), 1000 * i);
	}
	ratelimit_free(&rl);

	rl = new_rl(&c, 0, 7200, 3);
	run_one(rl, &c, t, 500, 2000, 1);
	for (size_t w = 0; w < NWINDOWS; w++)
		check_windows(t, 500, windows[w], 7200, 3600000, 3);
	check_windows(t, 500, 3600000, 7200, 3600000, 3);
	ratelimit_free(&rl);
	fake_destroy(&c);
}

/* both: the tighter one sets the pace, both bounds hold */
static void test_both(void **state)
{
	struct fake_clock c;
	struct ratelimit *rl;
	int64_t t[1000];

	(void)state;
	fake_init(&c, 0, 1);
	/* 10/s and 3600/h: one a second */
	rl = new_rl(&c, 10, 3600, 1);
	for (int i = 0; i < 5; i++) {
		assert_true(ratelimit_acquire(rl, NULL) >= 0);
		assert_int_equal(ratelimit_now(rl), c.now);
		assert_int_equal(c.now, 1000 * i);
	}
	ratelimit_free(&rl);
	fake_destroy(&c);
	/* 1/s and 36000/h: one a second too */
	fake_init(&c, 0, 1);
	rl = new_rl(&c, 1, 36000, 1);
	for (int i = 0; i < 5; i++) {
		assert_true(ratelimit_acquire(rl, NULL) >= 0);
		assert_int_equal(c.now, 1000 * i);
	}
	ratelimit_free(&rl);
	fake_destroy(&c);
	/* 40/s and 72000/h (20/s), burst 8, with idle spells */
	fake_init(&c, 0, 1);
	rl = new_rl(&c, 40, 72000, 8);
	run_one(rl, &c, t, 1000, 400, 7);
	for (size_t w = 0; w < NWINDOWS; w++) {
		check_windows(t, 1000, windows[w], 40, 1000, 8);
		check_windows(t, 1000, windows[w], 72000, 3600000, 8);
	}
	ratelimit_free(&rl);
	fake_destroy(&c);
}

/* a pause holds everyone until its end; a shorter one does not cut it */
static void test_pause(void **state)
{
	struct fake_clock c;
	struct ratelimit *rl;

	(void)state;
	fake_init(&c, 0, 1);
	rl = new_rl(&c, 10, 0, 1);
	assert_int_equal(ratelimit_acquire(rl, NULL), 0);
	ratelimit_pause(rl, 5000);
	ratelimit_pause(rl, 3000);
	assert_int_equal(ratelimit_acquire(rl, NULL), 5000);
	assert_int_equal(ratelimit_acquire(rl, NULL), 100);
	/* a pause in the past changes nothing */
	ratelimit_pause(rl, 1000);
	assert_int_equal(ratelimit_acquire(rl, NULL), 100);
	assert_int_equal(c.now, 5200);
	ratelimit_free(&rl);

	/* no rate at all: free, except while paused */
	rl = new_rl(&c, 0, 0, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ratelimit_acquire(rl, NULL), 0);
	ratelimit_pause(rl, c.now + 777);
	assert_int_equal(ratelimit_acquire(rl, NULL), 777);
	assert_int_equal(ratelimit_acquire(rl, NULL), 0);
	ratelimit_free(&rl);
	fake_destroy(&c);
}

/* stop: -1 within 100 ms of it, also from a long pause */
static void test_stop(void **state)
{
	struct fake_clock c;
	struct ratelimit *rl;
	atomic_bool stop = false;

	(void)state;
	fake_init(&c, 0, 1);
	rl = new_rl(&c, 0.001, 0, 1);	/* one per 1000 s */
	assert_int_equal(ratelimit_acquire(rl, &stop), 0);
	c.stop = &stop;
	c.stop_at = 12345;
	assert_int_equal(ratelimit_acquire(rl, &stop), -1);
	assert_true(atomic_load(&stop));
	assert_true(c.now >= 12345 && c.now <= 12345 + 100);
	ratelimit_free(&rl);

	atomic_store(&stop, false);
	rl = new_rl(&c, 0, 0, 0);
	ratelimit_pause(rl, INT64_MAX);
	c.stop_at = c.now + 5000;
	assert_int_equal(ratelimit_acquire(rl, &stop), -1);
	assert_true(c.now >= c.stop_at && c.now <= c.stop_at + 100);
	assert_true(c.max_nap <= 100);
	ratelimit_free(&rl);
	fake_destroy(&c);

	/* no limiter: nothing to wait for */
	assert_int_equal(ratelimit_acquire(NULL, &stop), 0);
}

/* --- 8 threads */

#define NTHREADS 8
#define PER_THREAD 250

struct shared {
	struct ratelimit *rl;
	struct fake_clock *clock;
	pthread_mutex_t lock;
	int64_t t[NTHREADS * PER_THREAD];
	size_t n;
	/* thread 0 pauses the pool after its pause_after-th grant */
	int pause_after;
	int64_t pause_len, paused_at, paused_until;
};

struct worker {
	struct shared *sh;
	int id;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint32_t seed = (uint32_t)w->id * 2654435761u;

	for (int i = 0; i < PER_THREAD; i++) {
		int64_t now;

		if (ratelimit_acquire(sh->rl, NULL) < 0)
			abort();
		now = ratelimit_now(sh->rl);
		pthread_mutex_lock(&sh->lock);
		sh->t[sh->n++] = now;
		pthread_mutex_unlock(&sh->lock);
		if (w->id == 0 && i + 1 == sh->pause_after) {
			sh->paused_at = now;
			sh->paused_until = now + sh->pause_len;
			ratelimit_pause(sh->rl, sh->paused_until);
		}
		/* "sending": some threads take a while between messages */
		seed = seed * 1103515245 + 12345;
		if ((seed >> 16) % 4 == 0)
			fake_sleep(sh->clock, 1 + (seed >> 8) % 250);
	}
	fake_done(sh->clock);
	return NULL;
}

static void run_threads(struct shared *sh)
{
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];

	for (int i = 0; i < NTHREADS; i++) {
		w[i].sh = sh;
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main,
						&w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(sh->n, NTHREADS * PER_THREAD);
	qsort(sh->t, sh->n, sizeof(sh->t[0]), cmp_i64);
}

static void test_threads(void **state)
{
	static struct shared sh;
	struct fake_clock c;

	(void)state;
	memset(&sh, 0, sizeof(sh));
	pthread_mutex_init(&sh.lock, NULL);
	fake_init(&c, 1000, NTHREADS);
	sh.clock = &c;
	sh.rl = new_rl(&c, 100, 180000, 10);	/* 100/s, 50/s by the hour */
	run_threads(&sh);
	for (size_t w = 0; w < NWINDOWS; w++) {
		check_windows(sh.t, sh.n, windows[w], 100, 1000, 10);
		check_windows(sh.t, sh.n, windows[w], 180000, 3600000, 10);
	}
	/* mostly backlogged: the run takes about what the hourly rate
	 * says (the threads' idle spells may leave the limiter idle) */
	assert_true(sh.t[sh.n - 1] - sh.t[0] >=
		    (int64_t)(sh.n - 10) * 20);
	assert_true(sh.t[sh.n - 1] - sh.t[0] <=
		    (int64_t)(sh.n - 10) * 20 * 2);
	ratelimit_free(&sh.rl);
	fake_destroy(&c);
	pthread_mutex_destroy(&sh.lock);
}

/* a pause by one thread holds back the others, asleep or not */
static void test_threads_pause(void **state)
{
	static struct shared sh;
	struct fake_clock c;
	size_t after = 0;

	(void)state;
	memset(&sh, 0, sizeof(sh));
	pthread_mutex_init(&sh.lock, NULL);
	fake_init(&c, 0, NTHREADS);
	sh.clock = &c;
	sh.rl = new_rl(&c, 20, 0, 4);
	sh.pause_after = 30;
	sh.pause_len = 3000;
	run_threads(&sh);
	assert_true(sh.paused_until > 0);
	for (size_t i = 0; i < sh.n; i++) {
		/* grants at the pause's own instant came before it */
		if (sh.t[i] > sh.paused_at && sh.t[i] < sh.paused_until)
			fail_msg("grant at %lld inside the pause [%lld, %lld)",
				 (long long)sh.t[i], (long long)sh.paused_at,
				 (long long)sh.paused_until);
		if (sh.t[i] >= sh.paused_until)
			after++;
	}
	assert_true(after > 0);
	for (size_t w = 0; w < NWINDOWS; w++)
		check_windows(sh.t, sh.n, windows[w], 20, 1000, 4);
	ratelimit_free(&sh.rl);
	fake_destroy(&c);
	pthread_mutex_destroy(&sh.lock);
}

static void test_params(void **state)
{
	static const double bad[][2] = {
		{ -1, 0 }, { 0, -1 }, { NAN, 0 }, { 0, NAN }, { 1e-7, 0 },
		{ 0, 0.001 },
	};
	struct ratelimit_params p = { 0 };
	struct ratelimit *rl = (struct ratelimit *)&p;
	const char *err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.per_second = bad[i][0];
		p.per_hour = bad[i][1];
		err = NULL;
		assert_int_equal(ratelimit_new(&p, &rl, &err), -1);
		assert_non_null(err);
		assert_non_null(strstr(err, "cannot be kept"));
		assert_null(rl);
	}
	p.per_second = 1;
	p.per_hour = 0;
	p.burst = 4000000000u;
	assert_int_equal(ratelimit_new(&p, &rl, &err), -1);
	assert_non_null(strstr(err, "burst of 4000000000"));

	/* huge rates are fine (at most one per ns), and the real clock
	 * works: nothing is timed, only that it runs and moves forward */
	p.per_second = 1e300;
	p.burst = 0;
	assert_int_equal(ratelimit_new(&p, &rl, &err), 0);
	for (int i = 0; i < 10; i++) {
		int64_t t = ratelimit_now(rl);

		assert_true(ratelimit_acquire(rl, NULL) >= 0);
		assert_true(ratelimit_now(rl) >= t);
	}
	ratelimit_pause(rl, INT64_MIN);
	ratelimit_free(&rl);
	ratelimit_free(&rl);
	ratelimit_pause(NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spacing),
		cmocka_unit_test(test_try),
		cmocka_unit_test(test_default_burst),
		cmocka_unit_test(test_any_window),
		cmocka_unit_test(test_per_hour),
		cmocka_unit_test(test_both),
		cmocka_unit_test(test_pause),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_threads_pause),
		cmocka_unit_test(test_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
