/*
 * test_snapshot - snapshot_read_dir, the copy of a template folder that
 * `campaign create` keeps, against folders that change as they are read.
 *
 * A file swapped, over and over, for a symbolic link to a file outside
 * the folder must never bring that file in: whatever the timing, each
 * read either gets the folder's own file or refuses the link.  Checking a
 * name and then opening it by name would let the swap slip in between:
 * against a version that opened without O_NOFOLLOW, this second of tries
 * caught it in four runs of five.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "errmsg.h"
#include "snapshot.h"

#define SECRET "outside the folder"
#define PUBLIC "the folder's own"

struct swapper {
	char dir[256];		/* the template folder */
	char secret[300];	/* a file outside it */
	atomic_bool stop;
	unsigned long swaps;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* swap - make dir/f a link to the secret, then a regular file, again */
static void *swap(void *arg)
{
	struct swapper *s = arg;
	char f[300], tmp[300];

	snprintf(f, sizeof(f), "%s/f", s->dir);
	snprintf(tmp, sizeof(tmp), "%s/.tmp", s->dir);
	while (!atomic_load(&s->stop)) {
		unlink(tmp);
		if (symlink(s->secret, tmp) < 0 || rename(tmp, f) < 0)
			abort();
		write_file(tmp, PUBLIC);
		if (rename(tmp, f) < 0)
			abort();
		s->swaps++;
	}
	return NULL;
}

static void test_swapped_for_a_link(void **state)
{
	struct swapper s = { .stop = false };
	char base[] = "/tmp/volley-test-snapshot-XXXXXX";
	unsigned long read_ok = 0, refused = 0;
	const char *leaked = NULL;
	char odd[ERRMSG_MAX];
	double until;
	pthread_t t;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(s.dir, sizeof(s.dir), "%s/tpl", base);
	snprintf(s.secret, sizeof(s.secret), "%s/secret.txt", base);
	assert_int_equal(mkdir(s.dir, 0700), 0);
	write_file(s.secret, SECRET);
	{
		char f[300];

		snprintf(f, sizeof(f), "%s/f", s.dir);
		write_file(f, PUBLIC);
	}
	assert_int_equal(pthread_create(&t, NULL, swap, &s), 0);
	/*
	 * A second of reads, longer (up to 10 s) until both states were met:
	 * on a loaded machine the swapping thread may barely run at first.
	 */
	until = clock_mono_s() + 1.0;
	while (leaked == NULL && (clock_mono_s() < until ||
				  ((read_ok == 0 || refused == 0) &&
				   clock_mono_s() < until + 9.0))) {
		struct snapshot snap;
		const char *error;

		if (snapshot_read_dir(&snap, s.dir, &error) < 0) {
			/* the link, or the file changing under the read */
			if (strstr(error, "is a symbolic link to") == NULL &&
			    strstr(error, "changed while it was read") ==
			    NULL) {
				snprintf(odd, sizeof(odd), "%s", error);
				leaked = odd;
			}
			refused++;
			continue;
		}
		for (size_t i = 0; i < snap.nfiles; i++) {
			const struct store_file *f = &snap.files[i];

			if (f->len == strlen(SECRET) &&
			    memcmp(f->data, SECRET, f->len) == 0)
				leaked = "the file outside came in";
		}
		read_ok++;
		snapshot_free(&snap);
	}
	atomic_store(&s.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		assert_int_equal(system(cmd), 0);
	}
	print_message("%lu reads, %lu refused, %lu swaps\n", read_ok,
		      refused, s.swaps);
	if (leaked != NULL)
		fail_msg("%s, after %lu reads", leaked, read_ok);
	/* both states were met, or the test proved nothing */
	assert_true(read_ok > 0);
	assert_true(refused > 0);
}

/* A FIFO in the folder is passed over, not opened (it would block). */
static void test_fifo_passed_over(void **state)
{
	char base[] = "/tmp/volley-test-snapshot-XXXXXX";
	char path[300];
	struct snapshot snap;
	const char *error;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/pipe", base);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/body.txt", base);
	write_file(path, "Hi\n");
	assert_int_equal(snapshot_read_dir(&snap, base, &error), 0);
	assert_int_equal(snap.nfiles, 1);
	assert_string_equal(snap.files[0].name, "body.txt");
	snapshot_free(&snap);
	unlink(path);
	snprintf(path, sizeof(path), "%s/pipe", base);
	unlink(path);
	assert_int_equal(rmdir(base), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swapped_for_a_link),
		cmocka_unit_test(test_fifo_passed_over),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
