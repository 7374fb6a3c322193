/*
 * test_mailbox - engine/bounce's mailbox readers: Maildir, mbox (mboxrd
 * unquoting, CRLF, empty), one file, a stream, and the size bound.
 * Each test works in a fresh folder under /tmp, removed at its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "mailbox.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/volley-mailbox-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* path - tmpdir/name, in one of a few rotating buffers */
static const char *path(const char *name)
{
	static char bufs[4][256];
	static int n;
	char *p = bufs[n++ % 4];

	snprintf(p, 256, "%s%s%s", tmpdir, *name ? "/" : "", name);
	return p;
}

static void write_file(const char *name, const char *data, size_t len)
{
	FILE *f = fopen(path(name), "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_str(const char *name, const char *data)
{
	write_file(name, data, strlen(data));
}

static void make_dir(const char *name)
{
	assert_int_equal(mkdir(path(name), 0700), 0);
}

/* expect_msg - the next message is data, found at where */
static void expect_msg(struct mailbox *mb, const char *data,
		       const char *where)
{
	struct mailbox_msg m;
	const char *error = NULL;
	int r = mailbox_next(mb, &m, &error);

	if (r != 1)
		fail_msg("wanted a message, got %d (%s)", r,
			 error ? error : "");
	assert_false(m.skipped);
	assert_int_equal(m.len, strlen(data));
	assert_memory_equal(m.data, data, m.len);
	assert_int_equal(m.data[m.len], '\0');
	if (where != NULL)
		assert_string_equal(m.where, where);
}

static void expect_end(struct mailbox *mb)
{
	struct mailbox_msg m;
	const char *error = NULL;

	assert_int_equal(mailbox_next(mb, &m, &error), 0);
	assert_int_equal(mailbox_next(mb, &m, &error), 0);
}

static struct mailbox *open_ok(const char *name, enum mailbox_kind kind)
{
	struct mailbox *mb = NULL;
	const char *error = NULL;

	if (mailbox_open(path(name), &mb, &error) < 0)
		fail_msg("mailbox_open %s: %s", name, error);
	assert_int_equal(mailbox_kind(mb), kind);
	return mb;
}

/* ------------------------------------------------------------------ */

static void test_mbox_rd(void **state)
{
	struct mailbox *mb;
	char where[300];

	(void)state;
	write_str("box",
		  "From MAILER-DAEMON Mon Dec  7 10:00:00 2026\n"
		  "Subject: one\n"
		  "\n"
		  ">From the start\n"
		  ">>From twice quoted\n"
		  "a line with From inside\n"
		  "From not after an empty line stays\n"
		  "\n"
		  "From MAILER-DAEMON Mon Dec  7 10:00:01 2026\n"
		  "Subject: two\n"
		  "\n"
		  "> From is not a quoted From_ line\n"
		  "\n"
		  "\n"
		  "From x@y Mon Dec  7 10:00:02 2026\n"
		  "Subject: three\n"
		  "\n"
		  "no empty line at the end");
	mb = open_ok("box", MAILBOX_MBOX);
	snprintf(where, sizeof(where), "%s:1", path("box"));
	expect_msg(mb, "Subject: one\n\nFrom the start\n>From twice quoted\n"
		   "a line with From inside\n"
		   "From not after an empty line stays\n", where);
	snprintf(where, sizeof(where), "%s:9", path("box"));
	expect_msg(mb, "Subject: two\n\n> From is not a quoted From_ line\n"
		   "\n", where);
	snprintf(where, sizeof(where), "%s:15", path("box"));
	expect_msg(mb, "Subject: three\n\nno empty line at the end", where);
	expect_end(mb);
	mailbox_close(&mb);
	assert_null(mb);
}

static void test_mbox_crlf(void **state)
{
	struct mailbox *mb;

	(void)state;
	write_str("crlf",
		  "From a@b Mon Dec  7 10:00:00 2026\r\n"
		  "Subject: one\r\n\r\nbody\r\n>From x\r\n\r\n"
		  "From a@b Mon Dec  7 10:00:01 2026\r\n"
		  "Subject: two\r\n\r\nbody two\r\n\r\n");
	mb = open_ok("crlf", MAILBOX_MBOX);
	expect_msg(mb, "Subject: one\r\n\r\nbody\r\nFrom x\r\n", NULL);
	expect_msg(mb, "Subject: two\r\n\r\nbody two\r\n", NULL);
	expect_end(mb);
	mailbox_close(&mb);
}

static void test_mbox_empty(void **state)
{
	struct mailbox *mb;

	(void)state;
	write_str("empty", "");
	mb = open_ok("empty", MAILBOX_MBOX);
	expect_end(mb);
	mailbox_close(&mb);

	/* a separator and nothing else: one empty message */
	write_str("one", "From a@b Mon Dec  7 10:00:00 2026\n");
	mb = open_ok("one", MAILBOX_MBOX);
	expect_msg(mb, "", NULL);
	expect_end(mb);
	mailbox_close(&mb);
}

static void test_mbox_too_big(void **state)
{
	struct mailbox *mb;
	struct mailbox_msg m;
	const char *error = NULL;
	struct buf b = BUF_INIT;
	char line[1001];

	(void)state;
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	buf_append_str(&b, "From a@b Mon Dec  7 10:00:00 2026\n"
		       "Subject: big\n\n");
	while (b.len < MAILBOX_MESSAGE_MAX + 5000)
		buf_append_str(&b, line);
	buf_append_str(&b, "\nFrom a@b Mon Dec  7 10:00:01 2026\n"
		       "Subject: small\n\nok\n");
	/* one line longer than the limit, in the third message */
	buf_append_str(&b, "\nFrom a@b Mon Dec  7 10:00:02 2026\n"
		       "Subject: long line\n\n");
	for (size_t i = 0; i < MAILBOX_MESSAGE_MAX + 10; i++)
		buf_putc(&b, 'y');
	buf_append_str(&b, "\n\nFrom a@b Mon Dec  7 10:00:03 2026\n\nlast\n");
	write_file("big", b.data, b.len);
	buf_free(&b);

	mb = open_ok("big", MAILBOX_MBOX);
	assert_int_equal(mailbox_next(mb, &m, &error), 1);
	assert_true(m.skipped);
	assert_null(m.data);
	assert_true(m.len > MAILBOX_MESSAGE_MAX);
	expect_msg(mb, "Subject: small\n\nok\n", NULL);
	assert_int_equal(mailbox_next(mb, &m, &error), 1);
	assert_true(m.skipped);
	assert_true(m.len > MAILBOX_MESSAGE_MAX);
	expect_msg(mb, "\nlast\n", NULL);
	expect_end(mb);
	mailbox_close(&mb);
}

static void test_maildir(void **state)
{
	struct mailbox *mb;
	char where[300];
	FILE *f;

	(void)state;
	make_dir("md");
	make_dir("md/cur");
	make_dir("md/new");
	make_dir("md/tmp");
	make_dir("md/new/subfolder");
	write_str("md/dovecot-uidlist", "3 V1 N1\n");
	write_str("md/tmp/1700000000.P3.host", "Subject: tmp\n\nnot yet\n");
	write_str("md/new/1700000002.P2.host", "Subject: b\r\n\r\nB\r\n");
	write_str("md/cur/1700000001.P1.host:2,S", "Subject: a\n\nA\n");
	write_str("md/new/1700000003.P4.host", "not a message at all");
	write_str("md/new/.hidden", "Subject: hidden\n\n");
	assert_int_equal(symlink("/etc/passwd", path("md/new/1700000000.L")),
			 0);
	/* larger than the limit: not read (its size says so) */
	f = fopen(path("md/new/1700000004.big"), "wb");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), MAILBOX_MESSAGE_MAX + 1), 0);
	fclose(f);

	mb = open_ok("md", MAILBOX_MAILDIR);
	snprintf(where, sizeof(where), "%s/cur/1700000001.P1.host:2,S",
		 path("md"));
	expect_msg(mb, "Subject: a\n\nA\n", where);
	expect_msg(mb, "Subject: b\r\n\r\nB\r\n", NULL);
	expect_msg(mb, "not a message at all", NULL);
	{
		struct mailbox_msg m;
		const char *error = NULL;

		assert_int_equal(mailbox_next(mb, &m, &error), 1);
		assert_true(m.skipped);
		assert_int_equal(m.len, MAILBOX_MESSAGE_MAX + 1);
		assert_non_null(strstr(m.where, "1700000004.big"));
	}
	expect_end(mb);
	mailbox_close(&mb);

	/* an empty Maildir */
	make_dir("md2");
	make_dir("md2/cur");
	make_dir("md2/new");
	mb = open_ok("md2", MAILBOX_MAILDIR);
	expect_end(mb);
	mailbox_close(&mb);
}

static void test_not_maildir(void **state)
{
	struct mailbox *mb = NULL;
	const char *error = NULL;

	(void)state;
	make_dir("plain");
	make_dir("plain/new");
	assert_int_equal(mailbox_open(path("plain"), &mb, &error), -1);
	assert_null(mb);
	assert_non_null(strstr(error, path("plain")));
	assert_non_null(strstr(error, "not a Maildir"));

	assert_int_equal(mailbox_open(path("missing"), &mb, &error), -1);
	assert_non_null(strstr(error, path("missing")));
	assert_non_null(strstr(error, "No such file"));
}

static void test_eml(void **state)
{
	struct mailbox *mb;
	struct mailbox_msg m;
	const char *error = NULL;
	FILE *f;

	(void)state;
	write_str("one.eml", "Received: x\r\nFrom: a@b\r\n\r\nFrom here\r\n"
		  "\r\nFrom there\r\n");
	mb = open_ok("one.eml", MAILBOX_FILE);
	expect_msg(mb, "Received: x\r\nFrom: a@b\r\n\r\nFrom here\r\n"
		   "\r\nFrom there\r\n", path("one.eml"));
	expect_end(mb);
	mailbox_close(&mb);

	f = fopen(path("big.eml"), "wb");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), MAILBOX_MESSAGE_MAX + 7), 0);
	fclose(f);
	mb = open_ok("big.eml", MAILBOX_FILE);
	assert_int_equal(mailbox_next(mb, &m, &error), 1);
	assert_true(m.skipped);
	assert_int_equal(m.len, MAILBOX_MESSAGE_MAX + 7);
	expect_end(mb);
	mailbox_close(&mb);
}

static void test_stream(void **state)
{
	static char text[] = "From: mailer-daemon@x\n\nbody\nFrom x\n";
	struct mailbox *mb;
	struct mailbox_msg m;
	const char *error = NULL;
	FILE *f;

	(void)state;
	f = fmemopen(text, strlen(text), "r");
	assert_non_null(f);
	mailbox_open_stream(f, "standard input", &mb);
	assert_int_equal(mailbox_kind(mb), MAILBOX_STREAM);
	expect_msg(mb, text, "standard input");
	expect_end(mb);
	mailbox_close(&mb);
	fclose(f);

	/* over the limit: read to its end (a pipe's writer never hangs),
	 * kept nowhere */
	f = tmpfile();
	assert_non_null(f);
	for (size_t i = 0; i < MAILBOX_MESSAGE_MAX / 4096 + 2; i++) {
		char block[4096];

		memset(block, 'z', sizeof(block));
		assert_int_equal(fwrite(block, 1, sizeof(block), f),
				 sizeof(block));
	}
	rewind(f);
	mailbox_open_stream(f, "standard input", &mb);
	assert_int_equal(mailbox_next(mb, &m, &error), 1);
	assert_true(m.skipped);
	assert_int_equal(m.len, (MAILBOX_MESSAGE_MAX / 4096 + 2) * 4096);
	assert_true(feof(f));
	expect_end(mb);
	mailbox_close(&mb);
	fclose(f);

	/* empty input is one empty message: the caller says "not a bounce" */
	f = tmpfile();
	assert_non_null(f);
	mailbox_open_stream(f, "standard input", &mb);
	expect_msg(mb, "", NULL);
	expect_end(mb);
	mailbox_close(&mb);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mbox_rd, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mbox_crlf, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mbox_empty, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mbox_too_big, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_maildir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_not_maildir, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eml, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
