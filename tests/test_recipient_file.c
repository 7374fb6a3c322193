/*
 * test_recipient_file - a recipient's attachment read from the
 * campaign's files folder: its own files, never a way out, never a
 * hang, and a failure of this machine told apart from a missing file
 * (the first defers the recipient, the second fails it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "recipient.h"

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_files(void **state)
{
	char top[] = "/tmp/volley-rfile-XXXXXX", path[300];
	struct buf out = BUF_INIT;
	const char *error;
	int dir;

	(void)state;
	assert_non_null(mkdtemp(top));
	snprintf(path, sizeof(path), "%s/in", top);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/in/inv", top);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/in/inv/1.pdf", top);
	put(path, "one");
	snprintf(path, sizeof(path), "%s/secret", top);
	put(path, "secret");
	snprintf(path, sizeof(path), "%s/in/inv/out.pdf", top);
	assert_int_equal(symlink("../../secret", path), 0);
	snprintf(path, sizeof(path), "%s/in/inv/abs.pdf", top);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/in/inv/same.pdf", top);
	assert_int_equal(symlink("1.pdf", path), 0);
	snprintf(path, sizeof(path), "%s/in/inv/fifo.pdf", top);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/in", top);
	dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dir >= 0);

	assert_int_equal(recipient_file_read(dir, "inv/1.pdf", &out, &error),
			 0);
	assert_string_equal(buf_cstr(&out), "one");
	/* a link that stays inside is followed */
	assert_int_equal(recipient_file_read(dir, "inv/same.pdf", &out,
					     &error), 0);
	assert_string_equal(buf_cstr(&out), "one");
	/* missing, and every way out: the file's fault, for good */
	assert_int_equal(recipient_file_read(dir, "inv/2.pdf", &out, &error),
			 -1);
	assert_non_null(strstr(error, "attachment inv/2.pdf: No such file"));
	assert_int_equal(recipient_file_read(dir, "inv/out.pdf", &out,
					     &error), -1);
	assert_non_null(strstr(error, "leads out"));
	assert_int_equal(recipient_file_read(dir, "inv/abs.pdf", &out,
					     &error), -1);
	assert_int_equal(recipient_file_read(dir, "../secret", &out, &error),
			 -1);
	assert_int_equal(recipient_file_read(dir, "/etc/passwd", &out,
					     &error), -1);
	assert_int_equal(recipient_file_read(dir, "inv", &out, &error), -1);
	assert_non_null(strstr(error, "not a regular file"));
	/* a FIFO: refused at once, not waited on */
	assert_int_equal(recipient_file_read(dir, "inv/fifo.pdf", &out,
					     &error), -1);
	assert_non_null(strstr(error, "not a regular file"));
	/* this machine failing (here: no folder to read from) is -2 */
	assert_int_equal(recipient_file_read(-1, "inv/1.pdf", &out, &error),
			 -2);
	close(dir);
	buf_free(&out);
	snprintf(path, sizeof(path), "rm -rf '%s'", top);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
