/*
 * test_errmsg - the error convention: a message set is the message read,
 * a caller can add context to a message it got, long messages are cut
 * visibly, and each thread keeps its own.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "errmsg.h"

static void test_set(void **state)
{
	const char *error = NULL;

	(void)state;
	assert_int_equal(errmsg_set(&error, "%s:%d: %s", "body.html", 3,
				    "unclosed section"), -1);
	assert_string_equal(error, "body.html:3: unclosed section");
	/* NULL: the caller does not want it, nothing breaks */
	assert_int_equal(errmsg_set(NULL, "ignored %d", 1), -1);
}

/* context added to a message that lives in the same buffer */
static void test_compose(void **state)
{
	const char *error = NULL, *inner;

	(void)state;
	errmsg_set(&inner, "database is locked");
	errmsg_set(&error, "recording results: %s", inner);
	assert_string_equal(error, "recording results: database is locked");
	errmsg_set(&error, "%s (%s)", error, error);
	assert_string_equal(error, "recording results: database is locked "
			    "(recording results: database is locked)");
}

static void test_cut(void **state)
{
	char big[ERRMSG_MAX * 2];
	const char *error;
	size_t len;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	errmsg_set(&error, "start %s", big);
	len = strlen(error);
	assert_int_equal(len, ERRMSG_MAX - 1);
	assert_memory_equal(error, "start xx", 8);
	assert_string_equal(error + len - 3, "...");
}

struct other {
	const char *error;
	pthread_barrier_t *both_set;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;

	errmsg_set(&o->error, "the other thread's");
	pthread_barrier_wait(o->both_set);	/* both messages are set */
	pthread_barrier_wait(o->both_set);	/* both were read */
	return NULL;
}

/* a worker's error never overwrites another thread's */
static void test_threads(void **state)
{
	pthread_barrier_t both_set;
	struct other o = { .both_set = &both_set };
	const char *mine;
	pthread_t t;

	(void)state;
	pthread_barrier_init(&both_set, NULL, 2);
	assert_int_equal(pthread_create(&t, NULL, other_thread, &o), 0);
	errmsg_set(&mine, "this thread's");
	pthread_barrier_wait(&both_set);
	assert_string_equal(mine, "this thread's");
	assert_string_equal(o.error, "the other thread's");
	assert_ptr_not_equal(mine, o.error);
	pthread_barrier_wait(&both_set);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&both_set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_compose),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
