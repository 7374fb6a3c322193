/*
 * test_smtp_conn - the whole client (smtp_conn: transport + session)
 * against the real `volley sink`, started for each test with the faults
 * a relay may show: per-recipient refusals, 421 after N messages, a
 * connection dropped in the middle of a message, silence, malformed and
 * overlong replies, replies out of step, plaintext injected after
 * STARTTLS, and the limits a server announces.  What must hold in every
 * case: each message gets exactly one DONE, and none is reported sent
 * unless the sink stored it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cmocka.h>

#include "buf.h"
#include "dotstuff.h"
#include "smtp_conn.h"

#define MAX_MSGS 64

static char dir[64];		/* the test's temp folder */
static char cert[128], key[128];
static const char *volley_bin;
static pid_t sink_pid = -1;
static char sink_port[16];
static char sink_tls_port[16];	/* --implicit-tls, when asked for */
static int nsink;		/* sinks started, for unique folders */
static char maildir[160];

/* --- the sink ------------------------------------------------------------ */

/*
 * start_sink - volley sink on a free loopback port with the given extra
 * arguments (NULL-terminated) and, if faults is not NULL, a faults file
 * holding it; its Maildir is a fresh folder (maildir).
 */
static void start_sink(const char *faults, const char *const *extra)
{
	char faults_path[160], line[256], *colon;
	const char *argv[32];
	int pipefd[2], n = 0, implicit = 0;
	FILE *f;

	snprintf(maildir, sizeof(maildir), "%s/maildir%d", dir, ++nsink);
	argv[n++] = volley_bin;
	argv[n++] = "sink";
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--maildir";
	argv[n++] = maildir;
	argv[n++] = "--quiet";
	if (faults != NULL) {
		snprintf(faults_path, sizeof(faults_path), "%s/faults%d", dir,
			 nsink);
		f = fopen(faults_path, "w");
		assert_non_null(f);
		fputs(faults, f);
		fclose(f);
		argv[n++] = "--faults";
		argv[n++] = faults_path;
	}
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		argv[n++] = extra[i];
		implicit |= strcmp(extra[i], "--implicit-tls") == 0;
	}
	argv[n] = NULL;

	assert_int_equal(pipe(pipefd), 0);
	sink_pid = fork();
	assert_true(sink_pid >= 0);
	if (sink_pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(volley_bin, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	assert_non_null(f);
	/* "volley sink: listening on 127.0.0.1:PORT" per listener, the
	 * --listen ones first */
	sink_port[0] = sink_tls_port[0] = '\0';
	for (int i = 0; i < 1 + implicit; i++) {
		if (fgets(line, sizeof(line), f) == NULL)
			fail_msg("volley sink did not start (see its stderr)");
		colon = strrchr(line, ':');
		assert_non_null(colon);
		assert_true(atoi(colon + 1) > 0);
		snprintf(i == 0 ? sink_port : sink_tls_port, sizeof(sink_port),
			 "%d", atoi(colon + 1));
	}
	fclose(f);
}

static void stop_sink(void)
{
	int status;

	if (sink_pid > 0) {
		kill(sink_pid, SIGTERM);
		waitpid(sink_pid, &status, 0);
		sink_pid = -1;
	}
}

/* stored - how many messages the sink's Maildir holds */
static int stored(void)
{
	char path[200];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/new", maildir);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* stored_holds - does some stored message have exactly these bytes? */
static bool stored_holds(const char *want, size_t len)
{
	char path[200], file[520];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "%s/new", maildir);
	d = opendir(path);
	if (d == NULL)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		struct buf b = BUF_INIT;
		char chunk[4096];
		size_t n;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		f = fopen(file, "rb");
		if (f == NULL)
			continue;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&b, chunk, n);
		fclose(f);
		found = b.len == len && memcmp(b.data, want, len) == 0;
		buf_free(&b);
	}
	closedir(d);
	return found;
}

/* --- the client side ---------------------------------------------------- */

struct run {
	struct smtp_message m[MAX_MSGS];
	size_t n, next;
	int done[MAX_MSGS];		/* DONE events seen */
	int parts[MAX_MSGS];		/* DONEs with "more" */
	int parts_sent[MAX_MSGS];	/* ... with sent */
	bool sent[MAX_MSGS];
	int code[MAX_MSGS];		/* of the DONE */
	bool local[MAX_MSGS];
	char text[MAX_MSGS][256];
	int rcpt_code[MAX_MSGS][4];
	bool rcpt_local[MAX_MSGS][4];
};

static const struct smtp_message *run_next(void *ctx, bool *later)
{
	struct run *r = ctx;

	(void)later;	/* no "later": when there is none, QUIT */
	return r->next < r->n ? &r->m[r->next++] : NULL;
}

static void run_event(void *ctx, const struct smtp_event *ev)
{
	struct run *r = ctx;
	size_t i = (size_t)(uintptr_t)ev->ctx - 1;

	assert_true(i < r->n);
	if (ev->kind == SMTP_EV_RCPT) {
		assert_true(ev->rcpt < 4);
		r->rcpt_code[i][ev->rcpt] = ev->code;
		r->rcpt_local[i][ev->rcpt] = ev->local;
		return;
	}
	assert_int_equal(ev->kind, SMTP_EV_DONE);
	if (ev->more) {
		/* a transaction of a split message: it goes on */
		r->parts[i]++;
		r->parts_sent[i] += ev->sent;
		return;
	}
	r->done[i]++;
	r->sent[i] = ev->sent;
	r->code[i] = ev->code;
	r->local[i] = ev->local;
	snprintf(r->text[i], sizeof(r->text[i]), "%s", ev->text ? ev->text :
		 "");
}

/* add - a message to rcpts (NULL-terminated), with body */
static void add(struct run *r, const char *const *rcpts, const char *body)
{
	size_t n = 0;

	while (rcpts[n] != NULL)
		n++;
	assert_true(r->n < MAX_MSGS);
	r->m[r->n] = (struct smtp_message){
		.from = "sender@volley.test", .rcpts = rcpts, .nrcpts = n,
		.data = body, .len = strlen(body),
		.ctx = (void *)(uintptr_t)(r->n + 1),
	};
	r->n++;
}

static struct smtp_conn_params params(enum smtp_tls tls)
{
	struct smtp_conn_params p = {
		.transport = { .host = "127.0.0.1", .port = sink_port,
			       .connect_timeout_ms = 5000 },
		.session = { .helo_name = "client.volley.test",
			     .pipelining = true, .chunking = false,
			     .tls = tls },
		.greeting_timeout_ms = 5000,
		.command_timeout_ms = 5000,
		.data_end_timeout_ms = 5000,
	};
	return p;
}

/*
 * conn - one connection over what is left of r; the invariant checked
 * after every run: each message taken has exactly one DONE, and one
 * reported sent is in the Maildir.
 */
static int conn(const struct smtp_conn_params *p, struct run *r,
		struct smtp_conn_result *res)
{
	struct smtp_conn_source src = { .next = run_next,
					.event = run_event, .ctx = r };
	size_t first = r->next;
	int rc = smtp_conn_run(p, &src, res);

	/* Said on every run, so a failing assertion has its context. */
	if (rc < 0)
		printf("    (connection ended: %s)\n", res->error);

	for (size_t i = first; i < r->next; i++) {
		assert_int_equal(r->done[i], 1);
		if (r->sent[i])
			assert_true(r->code[i] / 100 == 2);
	}
	return rc;
}

/* --- tests --------------------------------------------------------------- */

static const char *const to_a[] = { "a@volley.test", NULL };

/*
 * Many messages on one pipelined connection, bodies that need care (dots
 * at line starts, bare LF, no final line end): all stored byte for byte,
 * as CRLF-only and unstuffed.
 */
static void test_pipelined_bytes(bool chunking)
{
	static const char *bodies[] = {
		"Subject: one\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n",
		"Subject: two\n\nbare LF\nlines\n",
		"Subject: three\r\n\r\nno final line end",
	};
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;
	const char *args[] = { NULL };

	memset(&r, 0, sizeof(r));
	start_sink(NULL, args);
	for (int i = 0; i < 30; i++)
		add(&r, to_a, bodies[i % 3]);
	p = params(SMTP_TLS_NONE);
	p.session.chunking = chunking;
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(res.closed);
	assert_true(res.ready);
	assert_int_equal(res.failure, SMTP_CONN_OK);
	/* the opening steps that happened are timed, the others -1 */
	assert_true(res.phases.connect_us >= 0);
	assert_true(res.phases.greeting_us >= 0);
	assert_true(res.phases.ehlo_us >= 0);
	assert_int_equal(res.phases.tls_us, -1);
	assert_int_equal(res.phases.auth_us, -1);
	for (size_t i = 0; i < r.n; i++)
		assert_true(r.sent[i]);
	assert_int_equal(stored(), 30);
	for (int i = 0; i < 3; i++) {
		struct buf want = BUF_INIT;

		dotstuff_crlf(&want, bodies[i], strlen(bodies[i]));
		assert_true(stored_holds(want.data, want.len));
		buf_free(&want);
	}
	stop_sink();
}

static void test_pipelined_data(void **state)
{
	(void)state;
	test_pipelined_bytes(false);
}

static void test_pipelined_bdat(void **state)
{
	(void)state;
	test_pipelined_bytes(true);
}

/*
 * Bodies larger than the session's piece (256 KB) go out a piece at a
 * time: stored byte for byte all the same, with a small message between
 * them, a line longer than a piece, dots and bare LFs across piece ends.
 */
static void test_large_bytes(bool chunking)
{
	static char big[3 * 1024 * 1024 + 5], long_line[700 * 1024];
	const char *small = "Subject: small\r\n\r\nbetween the large\r\n";
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;
	const char *args[] = { NULL };
	const char *bodies[3];
	size_t lens[3];

	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = i % 61 == 60 ? '\n' : i % 61 == 0 ? '.' :
			 (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\0';
	memcpy(long_line, "Subject: long\r\n\r\n", 17);
	memset(long_line + 17, 'L', sizeof(long_line) - 18);
	long_line[sizeof(long_line) - 1] = '\0';
	bodies[0] = big;
	bodies[1] = small;
	bodies[2] = long_line;
	memset(&r, 0, sizeof(r));
	start_sink(NULL, args);
	for (int i = 0; i < 6; i++) {
		lens[i % 3] = strlen(bodies[i % 3]);
		add(&r, to_a, bodies[i % 3]);
	}
	p = params(SMTP_TLS_NONE);
	p.session.chunking = chunking;
	assert_int_equal(conn(&p, &r, &res), 0);
	for (size_t i = 0; i < r.n; i++)
		assert_true(r.sent[i]);
	assert_int_equal(stored(), 6);
	for (int i = 0; i < 3; i++) {
		struct buf want = BUF_INIT;

		dotstuff_crlf(&want, bodies[i], lens[i]);
		assert_true(stored_holds(want.data, want.len));
		buf_free(&want);
	}
	stop_sink();
}

static void test_large_data(void **state)
{
	(void)state;
	test_large_bytes(false);
}

static void test_large_bdat(void **state)
{
	(void)state;
	test_large_bytes(true);
}

/* Per-recipient replies by pattern: each recipient gets its own. */
static void test_recipient_replies(void **state)
{
	static const char *const mixed[] = { "ok@volley.test",
					     "later@defer.test",
					     "nobody@bad.test", NULL };
	static const char *const all_bad[] = { "x@bad.test",
					       "y@full.test", NULL };
	struct smtp_conn_params p = { 0 };
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink("rcpt *@defer.test 451 4.3.0 try again later\n"
		   "rcpt *@bad.test 550 5.1.1 no such user\n"
		   "rcpt *@full.test 452 4.2.2 mailbox full\n", NULL);
	add(&r, mixed, "Subject: m\r\n\r\nmixed\r\n");
	add(&r, all_bad, "Subject: b\r\n\r\nnobody\r\n");
	add(&r, to_a, "Subject: a\r\n\r\nafter\r\n");
	for (int chunking = 0; chunking < 2; chunking++) {
		p = params(SMTP_TLS_NONE);
		p.session.chunking = chunking;
		r.next = 0;
		memset(r.done, 0, sizeof(r.done));
		assert_int_equal(conn(&p, &r, &res), 0);
		assert_int_equal(r.rcpt_code[0][0], 250);
		assert_int_equal(r.rcpt_code[0][1], 451);
		assert_int_equal(r.rcpt_code[0][2], 550);
		assert_true(r.sent[0]);
		assert_int_equal(r.rcpt_code[1][0], 550);
		assert_int_equal(r.rcpt_code[1][1], 452);
		assert_false(r.sent[1]);
		/* the failed transaction does not spill into the next */
		assert_true(r.sent[2]);
	}
	assert_int_equal(stored(), 4);
	stop_sink();
}

/*
 * 421 after N messages: the rest come back to be retried, and a caller
 * that reconnects gets everything through.
 */
static void test_421_then_reconnect(void **state)
{
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;
	int connections = 0;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink("close-after 3\n", NULL);
	for (int i = 0; i < 10; i++)
		add(&r, to_a, "Subject: x\r\n\r\nbody\r\n");
	p = params(SMTP_TLS_NONE);
	while (r.next < r.n || connections == 0) {
		size_t first = r.next;
		size_t retry = SIZE_MAX;

		connections++;
		assert_true(connections < 20);
		conn(&p, &r, &res);
		/* give back what was not sent, as a caller would */
		for (size_t i = first; i < r.next; i++) {
			if (!r.sent[i]) {
				assert_int_equal(r.code[i] / 100, 4);
				r.done[i] = 0;
				if (retry == SIZE_MAX)
					retry = i;
			}
		}
		if (retry != SIZE_MAX) {
			/* move unsent ones to the end, in order */
			for (size_t i = retry; i < r.next; i++) {
				if (!r.sent[i]) {
					r.m[r.n] = r.m[i];
					r.m[r.n].ctx =
						(void *)(uintptr_t)(r.n + 1);
					r.n++;
					r.done[i] = 1;
					r.sent[i] = false;
				}
			}
		}
		if (!res.closed) {
			assert_non_null(strstr(res.error, "421"));
			assert_int_equal(res.failure, SMTP_CONN_REJECTED);
		}
	}
	assert_int_equal(stored(), 10);
	assert_true(connections >= 4);
	stop_sink();
}

/* The connection dropped in the middle of a message: nothing is sent. */
static void test_drop_mid_data(void **state)
{
	static const char *const to_drop[] = { "x@drop.test", NULL };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;
	char body[8192];

	(void)state;
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	memcpy(body, "Subject: big\r\n\r\n", 16);
	for (int chunking = 0; chunking < 2; chunking++) {
		memset(&r, 0, sizeof(r));
		start_sink("message *@drop.test drop 100\n", NULL);
		add(&r, to_a, "Subject: 1\r\n\r\nfirst\r\n");
		add(&r, to_drop, body);
		add(&r, to_a, "Subject: 3\r\n\r\nthird\r\n");
		p = params(SMTP_TLS_NONE);
		p.session.chunking = chunking;
		assert_int_equal(conn(&p, &r, &res), -1);
		assert_false(res.closed);
		assert_false(res.permanent);
		assert_int_equal(res.failure, SMTP_CONN_RESET);
		assert_false(r.sent[1]);
		assert_true(r.local[1]);
		assert_int_equal(r.code[1] / 100, 4);
		assert_int_equal(stored(), r.sent[0] + r.sent[2]);
		stop_sink();
	}
}

/* A server that stops answering: the timeout ends it, nothing hangs. */
static void test_silent_server(void **state)
{
	static const char *const to_slow[] = { "x@slow.test", NULL };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink("rcpt *@slow.test silent\n", NULL);
	add(&r, to_slow, "Subject: s\r\n\r\nslow\r\n");
	p = params(SMTP_TLS_NONE);
	p.command_timeout_ms = 700;
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_non_null(strstr(res.error, "no reply to a command within"));
	assert_int_equal(res.failure, SMTP_CONN_TIMEOUT);
	assert_false(r.sent[0]);
	assert_int_equal(r.code[0] / 100, 4);
	stop_sink();
}

/* A slow but live server is waited for. */
static void test_delayed_replies(void **state)
{
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink("message delay 300\nrcpt delay 100\n", NULL);
	add(&r, to_a, "Subject: d\r\n\r\ndelayed\r\n");
	add(&r, to_a, "Subject: d\r\n\r\ndelayed\r\n");
	p = params(SMTP_TLS_NONE);
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(r.sent[0] && r.sent[1]);
	stop_sink();
}

/* Malformed and overlong replies end the session; nothing is sent. */
static void test_bad_replies(void **state)
{
	static const char *const faults[] = {
		"rcpt malformed 25x what\n",
		"rcpt overlong 3000\n",
		"message malformed 2500 ok\n",
	};
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		memset(&r, 0, sizeof(r));
		start_sink(faults[i], NULL);
		add(&r, to_a, "Subject: m\r\n\r\nmalformed\r\n");
		p = params(SMTP_TLS_NONE);
		assert_int_equal(conn(&p, &r, &res), -1);
		assert_int_equal(res.failure, SMTP_CONN_PROTOCOL);
		assert_false(r.sent[0]);
		assert_int_equal(r.code[0] / 100, 4);
		stop_sink();
	}
}

/*
 * A reply that does not fit its command (2xx for DATA) puts the session
 * out of step: nothing counts as sent, the result says so, and the same
 * server without pipelining then takes the message.
 */
static void test_out_of_step(void **state)
{
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink("data conn=1 malformed 250 2.0.0 pretend it went\n", NULL);
	add(&r, to_a, "Subject: o\r\n\r\nout of step\r\n");
	p = params(SMTP_TLS_NONE);
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_true(res.out_of_step);
	assert_int_equal(res.failure, SMTP_CONN_PROTOCOL);
	assert_false(r.sent[0]);
	assert_int_equal(stored(), 0);

	r.next = 0;
	r.done[0] = 0;
	p.session.pipelining = false;
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(r.sent[0]);
	assert_int_equal(stored(), 1);
	stop_sink();
}

/* Every recipient refused, yet DATA answered 354: nothing delivered. */
static void test_354_after_refusals(void **state)
{
	static const char *const to_bad[] = { "x@bad.test", NULL };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink("rcpt *@bad.test 550 5.1.1 no\n"
		   "data 354 go ahead anyway\n", NULL);
	add(&r, to_bad, "Subject: n\r\n\r\nnobody\r\n");
	add(&r, to_a, "Subject: a\r\n\r\nnext\r\n");
	p = params(SMTP_TLS_NONE);
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_false(r.sent[0]);
	assert_int_equal(r.code[0], 550);
	assert_true(r.sent[1]);
	assert_int_equal(stored(), 1);
	stop_sink();
}

/* Without PIPELINING, lock-step: the sink sees no improper pipelining. */
static void test_no_pipelining(void **state)
{
	static const char *const two[] = { "a@volley.test", "b@volley.test",
					   NULL };
	const char *args[] = { "--no-pipelining", "--no-chunking", NULL };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink(NULL, args);
	for (int i = 0; i < 5; i++)
		add(&r, two, "Subject: l\r\n\r\nlockstep\r\n");
	p = params(SMTP_TLS_NONE);
	p.session.chunking = true;
	assert_int_equal(conn(&p, &r, &res), 0);
	for (int i = 0; i < 5; i++)
		assert_true(r.sent[i]);
	assert_int_equal(stored(), 5);
	stop_sink();
}

/* EHLO refused: HELO, and plain lock-step SMTP still works. */
static void test_helo_fallback(void **state)
{
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	start_sink("ehlo 502 5.5.2 what is EHLO\n", NULL);
	add(&r, to_a, "Subject: h\r\n\r\nhelo\r\n");
	p = params(SMTP_TLS_NONE);
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(r.sent[0]);
	stop_sink();
}

/* LIMITS and SIZE, announced by the server, honoured by the client. */
static void test_limits_and_size(void **state)
{
	static const char *const three[] = { "a@volley.test", "b@volley.test",
					     "c@volley.test", NULL };
	const char *args[] = { "--limits", "RCPTMAX=2,MAILMAX=3", "--size",
			       "2000", NULL };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;
	static char big[3000];

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(big, 'y', sizeof(big) - 1);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	start_sink(NULL, args);
	add(&r, to_a, big);
	add(&r, three, "Subject: 3\r\n\r\nthree\r\n");
	add(&r, to_a, "Subject: a\r\n\r\nsecond transaction\r\n");
	add(&r, to_a, "Subject: a\r\n\r\nnext connection\r\n");
	p = params(SMTP_TLS_NONE);
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(res.spent);
	assert_int_equal(r.next, 3);
	/* over SIZE: refused before sending */
	assert_false(r.sent[0]);
	assert_int_equal(r.code[0], 552);
	assert_true(r.local[0]);
	/*
	 * RCPTMAX: two transactions for three recipients, the second taking
	 * one of the three MAILMAX allows before the next message could
	 */
	assert_int_equal(r.parts[1], 1);
	assert_int_equal(r.parts_sent[1], 1);
	assert_true(r.sent[1]);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r.rcpt_code[1][i], 250);
		assert_false(r.rcpt_local[1][i]);
	}
	assert_true(r.sent[2]);
	/* MAILMAX: the fourth needs a new connection */
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(r.sent[3]);
	assert_int_equal(stored(), 4);
	stop_sink();
}

/* STARTTLS with a verified certificate, then AUTH. */
static void test_starttls_auth(void **state)
{
	const char *args[] = { "--tls-cert", cert, "--tls-key", key,
			       "--auth", "alice:s3cret", NULL };
	struct transport_tls_params tp = { .verify = true, .ca_file = cert };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	struct transport_tls *tls;
	static struct run r;
	const char *err = NULL;

	(void)state;
	assert_int_equal(transport_tls_new(&tp, &tls, &err), 0);
	memset(&r, 0, sizeof(r));
	start_sink(NULL, args);
	add(&r, to_a, "Subject: t\r\n\r\nover TLS\r\n");
	p = params(SMTP_TLS_STARTTLS);
	p.tls = tls;
	p.transport.tls_name = "localhost";
	p.session.username = "alice";
	p.session.password = "s3cret";
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(r.sent[0]);
	/* every opening step timed: STARTTLS's is the tls phase */
	assert_true(res.phases.connect_us >= 0);
	assert_true(res.phases.greeting_us >= 0);
	assert_true(res.phases.ehlo_us >= 0);
	assert_true(res.phases.tls_us > 0);
	assert_true(res.phases.auth_us > 0);

	/* the wrong password: permanent, nothing sent */
	memset(&r, 0, sizeof(r));
	add(&r, to_a, "Subject: t\r\n\r\nover TLS\r\n");
	p.session.password = "wrong";
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_true(res.permanent);
	assert_non_null(strstr(res.error, "535"));
	assert_int_equal(res.failure, SMTP_CONN_REJECTED);
	assert_int_equal(res.phases.auth_us, -1);	/* it did not finish */
	assert_int_equal(r.next, 0);
	assert_int_equal(stored(), 1);

	/* tls = none and a username: credentials never go in clear */
	p = params(SMTP_TLS_NONE);
	p.session.username = "alice";
	p.session.password = "s3cret";
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_true(res.permanent);
	stop_sink();
	transport_tls_free(&tls);
}

/* Plaintext injected after the STARTTLS 220 ends the connection. */
static void test_starttls_injection(void **state)
{
	const char *args[] = { "--tls-cert", cert, "--tls-key", key, NULL };
	struct transport_tls_params tp = { .verify = true, .ca_file = cert };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	struct transport_tls *tls;
	static struct run r;
	const char *err = NULL;

	(void)state;
	assert_int_equal(transport_tls_new(&tp, &tls, &err), 0);
	memset(&r, 0, sizeof(r));
	start_sink("starttls-inject 250-injected\n", args);
	add(&r, to_a, "Subject: i\r\n\r\ninjected\r\n");
	p = params(SMTP_TLS_STARTTLS);
	p.tls = tls;
	p.transport.tls_name = "localhost";
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_true(res.permanent);
	assert_non_null(strstr(res.error, "injection"));
	assert_int_equal(res.failure, SMTP_CONN_TLS);
	assert_int_equal(r.next, 0);
	assert_int_equal(stored(), 0);
	stop_sink();
	transport_tls_free(&tls);
}

/* Implicit TLS on its own listener. */
static void test_implicit_tls(void **state)
{
	const char *args[] = { "--tls-cert", cert, "--tls-key", key,
			       "--implicit-tls", "127.0.0.1:0", NULL };
	struct transport_tls_params tp = { .verify = true, .ca_file = cert };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	struct transport_tls *tls;
	static struct run r;
	const char *err = NULL;

	(void)state;
	assert_int_equal(transport_tls_new(&tp, &tls, &err), 0);
	memset(&r, 0, sizeof(r));
	start_sink(NULL, args);
	assert_true(sink_tls_port[0] != '\0');
	add(&r, to_a, "Subject: i\r\n\r\nimplicit\r\n");
	p = params(SMTP_TLS_IMPLICIT);
	p.tls = tls;
	p.transport.port = sink_tls_port;
	p.transport.tls_name = "localhost";
	assert_int_equal(conn(&p, &r, &res), 0);
	assert_true(r.sent[0]);
	assert_true(res.phases.tls_us > 0);
	assert_true(res.phases.greeting_us >= 0);

	/* the name must match the certificate */
	memset(&r, 0, sizeof(r));
	add(&r, to_a, "Subject: i\r\n\r\nimplicit\r\n");
	p.transport.tls_name = "wrong.example";
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_int_equal(r.next, 0);
	assert_non_null(strstr(res.error, "certificate"));
	/* a certificate that does not verify will not verify next time */
	assert_true(res.permanent);
	assert_int_equal(res.failure, SMTP_CONN_TLS);
	assert_int_equal(stored(), 1);
	stop_sink();
	transport_tls_free(&tls);
}

/*
 * A server that hangs up, or says nothing, instead of answering QUIT:
 * everything was done, so the connection still counts as a clean end,
 * and it does not wait the whole command timeout for it.
 */
static void test_quit_unanswered(void **state)
{
	static const char *const faults[] = { "quit drop\n", "quit silent\n" };
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	static struct run r;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		memset(&r, 0, sizeof(r));
		start_sink(faults[i], NULL);
		add(&r, to_a, "Subject: q\r\n\r\nquit\r\n");
		p = params(SMTP_TLS_NONE);
		p.command_timeout_ms = 800;
		assert_int_equal(conn(&p, &r, &res), 0);
		assert_true(res.closed);
		assert_true(r.sent[0]);
		stop_sink();
	}
}

/*
 * Failures by kind, as a load test counts them: nothing listening, a
 * greeting refused, STARTTLS refused.
 */
static void test_failure_kinds(void **state)
{
	const char *args[] = { "--tls-cert", cert, "--tls-key", key, NULL };
	struct transport_tls_params tp = { .verify = true, .ca_file = cert };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	struct smtp_conn_params p;
	struct smtp_conn_result res;
	struct transport_tls *tls;
	static struct run r;
	const char *err = NULL;
	int fd;

	(void)state;
	/* a port that was free a moment ago: nothing listens there */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(sink_port, sizeof(sink_port), "%d", ntohs(sa.sin_port));
	close(fd);
	memset(&r, 0, sizeof(r));
	add(&r, to_a, "Subject: r\r\n\r\nrefused\r\n");
	p = params(SMTP_TLS_NONE);
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_int_equal(res.failure, SMTP_CONN_REFUSED);
	assert_false(res.ready);
	assert_int_equal(res.phases.connect_us, -1);
	assert_int_equal(r.next, 0);

	memset(&r, 0, sizeof(r));
	start_sink("greeting 554 5.7.1 go away\n", NULL);
	add(&r, to_a, "Subject: g\r\n\r\ngreeting\r\n");
	p = params(SMTP_TLS_NONE);
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_int_equal(res.failure, SMTP_CONN_REJECTED);
	assert_true(res.phases.connect_us >= 0);
	assert_int_equal(res.phases.greeting_us, -1);
	stop_sink();

	assert_int_equal(transport_tls_new(&tp, &tls, &err), 0);
	memset(&r, 0, sizeof(r));
	start_sink("starttls 454 4.7.0 not now\n", args);
	add(&r, to_a, "Subject: s\r\n\r\nstarttls\r\n");
	p = params(SMTP_TLS_STARTTLS);
	p.tls = tls;
	p.transport.tls_name = "localhost";
	assert_int_equal(conn(&p, &r, &res), -1);
	assert_int_equal(res.failure, SMTP_CONN_TLS);
	assert_true(res.phases.ehlo_us >= 0);
	assert_int_equal(res.phases.tls_us, -1);
	stop_sink();
	transport_tls_free(&tls);
}

/* --- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
	char cmd[600];

	(void)state;
	volley_bin = getenv("VOLLEY_BIN");
	if (volley_bin == NULL) {
		fprintf(stderr, "VOLLEY_BIN is not set\n");
		return -1;
	}
	strcpy(dir, "/tmp/volley-test-conn-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
		 "/CN=localhost -addext "
		 "subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s "
		 "-out %s 2>/dev/null", key, cert);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	stop_sink();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_data),
		cmocka_unit_test(test_pipelined_bdat),
		cmocka_unit_test(test_large_data),
		cmocka_unit_test(test_large_bdat),
		cmocka_unit_test(test_recipient_replies),
		cmocka_unit_test(test_421_then_reconnect),
		cmocka_unit_test(test_drop_mid_data),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_delayed_replies),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_out_of_step),
		cmocka_unit_test(test_354_after_refusals),
		cmocka_unit_test(test_no_pipelining),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_limits_and_size),
		cmocka_unit_test(test_starttls_auth),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_quit_unanswered),
		cmocka_unit_test(test_failure_kinds),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
