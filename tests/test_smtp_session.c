/*
 * test_smtp_session - conversations with the session, byte strings in
 * and out: pipelined and lock-step transactions, refusals, the course
 * corrections at DATA, 421, and replies that do not fit their command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dotstuff.h"
#include "smtp_session.h"

static const char *rcpts_bc[] = { "b@y.example", "c@y.example" };
static const char *rcpts_d[] = { "d@y.example" };

/* out_is - the session must want to send exactly want; mark it sent */
static void out_is(struct smtp_session *s, const char *want)
{
	const char *data;
	size_t len;

	smtp_session_output(s, &data, &len);
	if (len != strlen(want) || memcmp(data, want, len) != 0)
		fail_msg("output\n%.*s\nwanted\n%s", (int)len, data, want);
	smtp_session_sent(s, len);
}

/*
 * feed - the server's bytes, as a connection delivers them: everything
 * the session wanted sent went first (smtp_conn writes all it has before
 * it reads), so a reply can only answer a command the server saw
 */
static void feed(struct smtp_session *s, const char *server)
{
	const char *out;
	size_t len;

	smtp_session_output(s, &out, &len);
	smtp_session_sent(s, len);
	smtp_session_feed(s, server, strlen(server));
}

/* feed_unsent - the server's bytes before the session's went out */
static void feed_unsent(struct smtp_session *s, const char *server)
{
	smtp_session_feed(s, server, strlen(server));
}

/* next_event - the next event must be of kind; returns it */
static struct smtp_event next_event(struct smtp_session *s,
				    enum smtp_event_kind kind)
{
	struct smtp_event ev;

	if (!smtp_session_event(s, &ev))
		fail_msg("no event, wanted kind %d", (int)kind);
	if (ev.kind != kind)
		fail_msg("event kind %d, wanted %d (%s)", (int)ev.kind,
			 (int)kind, ev.error ? ev.error : "");
	return ev;
}

static void no_event(struct smtp_session *s)
{
	struct smtp_event ev;

	if (smtp_session_event(s, &ev))
		fail_msg("unexpected event kind %d", (int)ev.kind);
}

static struct smtp_session *ready(const char *ehlo_reply)
{
	struct smtp_session_params p = { .helo_name = "client.example",
					 .pipelining = true };
	struct smtp_session *s = smtp_session_new(&p);

	out_is(s, "");
	feed(s, "220 mx.example ESMTP\r\n");
	out_is(s, "EHLO client.example\r\n");
	feed(s, ehlo_reply);
	next_event(s, SMTP_EV_READY);
	return s;
}

/* PIPELINING and replies with RFC 3463 codes: messages may overlap */
static const char pipelining_ehlo[] =
	"250-mx.example\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
	"250 8BITMIME\r\n";

static struct smtp_message msg(const char **rcpts, size_t n, const char *data,
			       void *ctx)
{
	struct smtp_message m = { .from = "a@x.example", .rcpts = rcpts,
				  .nrcpts = n, .data = data,
				  .len = strlen(data), .ctx = ctx };
	return m;
}

static void test_pipelined_across_messages(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m1 = msg(rcpts_bc, 2, "Subject: 1\r\n\r\nhi\r\n"
				     ".dot\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_d, 1, "Subject: 2\r\n\r\nyo\r\n",
				     (void *)2);
	struct smtp_event ev;

	(void)state;
	assert_true(smtp_session_caps(s)->pipelining);
	assert_int_equal(smtp_session_submit(s, &m1), 0);
	assert_int_equal(smtp_session_submit(s, &m2), 0);
	/* One group, ending with DATA; the second message waits. */
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
		  "RCPT TO:<c@y.example>\r\nDATA\r\n");
	feed(s, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n"
		"354 go ahead\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 0);
	assert_int_equal(ev.code, 250);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 1);
	assert_int_equal(ev.code, 550);
	assert_string_equal(ev.enhanced, "5.1.1");
	assert_string_equal(ev.text, "no such user");
	no_event(s);
	/* Body, end of data and the next message's group: one write. */
	out_is(s, "Subject: 1\r\n\r\nhi\r\n..dot\r\n.\r\n"
		  "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 2.0.0 Ok: queued as ABC\r\n250 Ok\r\n250 Ok\r\n"
		"354 go\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)1);
	assert_true(ev.sent);
	assert_string_equal(ev.text, "Ok: queued as ABC");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_ptr_equal(ev.ctx, (void *)2);
	out_is(s, "Subject: 2\r\n\r\nyo\r\n.\r\n");
	feed(s, "250 Ok\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)2);
	assert_true(ev.sent);
	assert_true(smtp_session_idle(s));
	smtp_session_quit(s);
	out_is(s, "QUIT\r\n");
	feed(s, "221 2.0.0 Bye\r\n");
	next_event(s, SMTP_EV_CLOSED);
	smtp_session_free(&s);
}

/*
 * Every RCPT refused, yet the server answers the pipelined DATA with 354:
 * only the end of data goes, never the body, and the message is not sent.
 */
static void test_354_without_recipients(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m1 = msg(rcpts_d, 1, "secret body\r\n", NULL);
	struct smtp_message m2 = msg(rcpts_d, 1, "two\r\n", NULL);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m1);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 Ok\r\n550 5.1.1 nope\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	out_is(s, ".\r\n");
	feed(s, "250 2.0.0 Ok\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_int_equal(ev.code, 550);
	/* The next transaction starts with RSET. */
	smtp_session_submit(s, &m2);
	out_is(s, "RSET\r\nMAIL FROM:<a@x.example>\r\n"
		  "RCPT TO:<d@y.example>\r\nDATA\r\n");
	smtp_session_free(&s);
}

static void test_mail_refused_pipelined(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m1 = msg(rcpts_bc, 2, "x\r\n", NULL);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m1);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
		  "RCPT TO:<c@y.example>\r\nDATA\r\n");
	feed(s, "553 5.7.1 sender rejected\r\n503 5.5.1 need MAIL\r\n"
		"503 5.5.1 need MAIL\r\n503 5.5.1 no valid recipients\r\n");
	/* The recipients are told why: the MAIL refusal, not "503". */
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.code, 553);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.code, 553);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_int_equal(ev.code, 553);
	assert_string_equal(ev.text, "sender rejected");
	smtp_session_free(&s);
}

static void test_lockstep(void **state)
{
	struct smtp_session *s = ready("250-mx.example\r\n250 SIZE 1000\r\n");
	struct smtp_message m1 = msg(rcpts_bc, 2, "body\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_d, 1, "two\r\n", (void *)2);
	struct smtp_event ev;

	(void)state;
	assert_false(smtp_session_caps(s)->pipelining);
	smtp_session_submit(s, &m1);
	smtp_session_submit(s, &m2);
	out_is(s, "MAIL FROM:<a@x.example> SIZE=6\r\n");
	feed(s, "250 Ok\r\n");
	out_is(s, "RCPT TO:<b@y.example>\r\n");
	feed(s, "450 4.2.0 busy\r\n");
	next_event(s, SMTP_EV_RCPT);
	out_is(s, "RCPT TO:<c@y.example>\r\n");
	feed(s, "550 5.1.1 no\r\n");
	next_event(s, SMTP_EV_RCPT);
	/* No recipient accepted: no DATA; RSET, then the next message. */
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)1);
	assert_false(ev.sent);
	out_is(s, "RSET\r\n");
	feed(s, "250 Ok\r\n");
	out_is(s, "MAIL FROM:<a@x.example> SIZE=5\r\n");
	feed(s, "250 Ok\r\n");
	out_is(s, "RCPT TO:<d@y.example>\r\n");
	feed(s, "250 Ok\r\n");
	next_event(s, SMTP_EV_RCPT);
	out_is(s, "DATA\r\n");
	feed(s, "354 go\r\n");
	out_is(s, "two\r\n.\r\n");
	feed(s, "250 Ok\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)2);
	assert_true(ev.sent);
	smtp_session_free(&s);
}

static void test_helo_fallback(void **state)
{
	struct smtp_session_params p = { .helo_name = "client.example",
					 .pipelining = true };
	struct smtp_session *s = smtp_session_new(&p);

	(void)state;
	feed(s, "220 old.example\r\n");
	out_is(s, "EHLO client.example\r\n");
	feed(s, "502 5.5.2 what?\r\n");
	out_is(s, "HELO client.example\r\n");
	feed(s, "250 old.example\r\n");
	next_event(s, SMTP_EV_READY);
	assert_false(smtp_session_caps(s)->pipelining);
	smtp_session_free(&s);
}

static void test_refused_greeting(void **state)
{
	struct smtp_session_params p = { .helo_name = "client.example",
					 .pipelining = true };
	struct smtp_session *s = smtp_session_new(&p);
	struct smtp_event ev;

	(void)state;
	feed(s, "554 5.7.1 go away\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_non_null(strstr(ev.error, "go away"));
	out_is(s, "");
	smtp_session_free(&s);
}

/* 421 mid-transaction: every unfinished message comes back unsent. */
static void test_421(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m1 = msg(rcpts_d, 1, "one\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_d, 1, "two\r\n", (void *)2);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m1);
	smtp_session_submit(s, &m2);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 Ok\r\n421 4.7.0 too many messages, bye\r\n");
	for (int i = 1; i <= 2; i++) {
		ev = next_event(s, SMTP_EV_DONE);
		assert_ptr_equal(ev.ctx, (void *)(intptr_t)i);
		assert_false(ev.sent);
		assert_int_equal(ev.code, 421);
	}
	ev = next_event(s, SMTP_EV_FAILED);
	assert_non_null(strstr(ev.error, "too many messages"));
	assert_false(ev.out_of_step);
	assert_int_equal(smtp_session_submit(s, &m1), -1);
	smtp_session_free(&s);
}

/* Replies that do not fit: the session stops; nothing counts as sent. */
static void test_out_of_step(void **state)
{
	static const char *const bad[] = {
		"354 go\r\n",			/* 354 for MAIL */
		"250 Ok\r\n250 Ok\r\n250 Ok\r\n",	/* 2xx for DATA */
		"250 Ok\r\n250 Ok\r\n354 go\r\n354 again\r\n", /* 354 for "." */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct smtp_session *s = ready(pipelining_ehlo);
		struct smtp_message m1 = msg(rcpts_d, 1, "one\r\n", (void *)1);
		struct smtp_event ev;

		smtp_session_submit(s, &m1);
		smtp_session_sent(s, 1000);
		feed(s, bad[i]);
		while (smtp_session_event(s, &ev)) {
			if (ev.kind == SMTP_EV_DONE) {
				assert_false(ev.sent);
				assert_true(ev.local);
				assert_int_equal(ev.code / 100, 4);
			}
			if (ev.kind == SMTP_EV_FAILED)
				break;
		}
		assert_int_equal(ev.kind, SMTP_EV_FAILED);
		assert_non_null(strstr(ev.error, "out of step"));
		assert_true(ev.out_of_step);
		smtp_session_free(&s);
	}
}

static void test_reply_with_nothing_outstanding(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_event ev;

	(void)state;
	feed(s, "250 surprise\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_non_null(strstr(ev.error, "no command outstanding"));
	smtp_session_free(&s);
}

/* The server's bytes one at a time, greeting and all: same outcome. */
static void test_byte_by_byte(void **state)
{
	struct smtp_session_params p = { .helo_name = "c",
					 .pipelining = true };
	const char *all = "220 hi\r\n250-x\r\n250 PIPELINING\r\n"
			  "250 Ok\r\n250 Ok\r\n354 go\r\n250 queued\r\n";
	struct smtp_message m1 = msg(rcpts_d, 1, "one\r\n", (void *)1);
	struct smtp_session *s = smtp_session_new(&p);
	struct smtp_event ev;
	int done = 0;

	(void)state;
	for (const char *q = all; *q; q++) {
		const char *out;
		size_t len;

		/* what the session wants sent goes before the next byte */
		smtp_session_output(s, &out, &len);
		smtp_session_sent(s, len);
		smtp_session_feed(s, q, 1);
		while (smtp_session_event(s, &ev)) {
			if (ev.kind == SMTP_EV_READY)
				assert_int_equal(smtp_session_submit(s, &m1),
						 0);
			if (ev.kind == SMTP_EV_DONE) {
				assert_true(ev.sent);
				done++;
			}
			assert_int_not_equal(ev.kind, SMTP_EV_FAILED);
		}
	}
	assert_int_equal(done, 1);
	smtp_session_free(&s);
}

/* session_with - a session with these TLS and AUTH settings, greeted */
static struct smtp_session *session_with(enum smtp_tls tls, const char *user,
					 bool plaintext_ok)
{
	struct smtp_session_params p = {
		.helo_name = "client.example", .pipelining = true, .tls = tls,
		.username = user, .password = "secret",
		.allow_plaintext_auth = plaintext_ok,
	};
	struct smtp_session *s = smtp_session_new(&p);

	feed(s, "220 mx.example ESMTP\r\n");
	out_is(s, "EHLO client.example\r\n");
	return s;
}

static void test_starttls(void **state)
{
	struct smtp_session *s = session_with(SMTP_TLS_STARTTLS, NULL, false);

	(void)state;
	feed(s, "250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
	out_is(s, "STARTTLS\r\n");
	feed(s, "220 2.0.0 Ready to start TLS\r\n");
	next_event(s, SMTP_EV_STARTTLS);
	out_is(s, "");
	smtp_session_tls_done(s);
	/* Everything learned before the handshake is forgotten. */
	assert_false(smtp_session_caps(s)->pipelining);
	out_is(s, "EHLO client.example\r\n");
	feed(s, "250-mx.example\r\n250 8BITMIME\r\n");
	next_event(s, SMTP_EV_READY);
	assert_false(smtp_session_caps(s)->pipelining);
	smtp_session_free(&s);
}

/* Bytes after the 220, before the handshake: never read as replies. */
static void test_starttls_injection(void **state)
{
	struct smtp_session *s;
	struct smtp_event ev;

	(void)state;
	/* in the same read as the 220 */
	s = session_with(SMTP_TLS_STARTTLS, NULL, false);
	feed(s, "250-mx.example\r\n250 STARTTLS\r\n");
	out_is(s, "STARTTLS\r\n");
	feed(s, "220 go ahead\r\n250-injected\r\n250 PIPELINING\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_non_null(strstr(ev.error, "injection"));
	assert_true(ev.permanent);
	out_is(s, "");
	smtp_session_free(&s);

	/* in a later read, before the handshake finished */
	s = session_with(SMTP_TLS_STARTTLS, NULL, false);
	feed(s, "250-mx.example\r\n250 STARTTLS\r\n");
	out_is(s, "STARTTLS\r\n");
	feed(s, "220 go ahead\r\n");
	next_event(s, SMTP_EV_STARTTLS);
	feed(s, "250 ok\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_non_null(strstr(ev.error, "injection"));
	smtp_session_tls_done(s);
	out_is(s, "");
	smtp_session_free(&s);
}

/* "starttls" means required: never a plaintext fallback. */
static void test_starttls_required(void **state)
{
	struct smtp_session *s;
	struct smtp_event ev;

	(void)state;
	s = session_with(SMTP_TLS_STARTTLS, "alice", false);
	feed(s, "250-mx.example\r\n250 AUTH PLAIN\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	assert_non_null(strstr(ev.error, "does not offer STARTTLS"));
	out_is(s, "");
	smtp_session_free(&s);

	s = session_with(SMTP_TLS_STARTTLS, "alice", false);
	feed(s, "250-mx.example\r\n250 STARTTLS\r\n");
	out_is(s, "STARTTLS\r\n");
	feed(s, "454 4.7.0 TLS not available\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_false(ev.permanent);
	out_is(s, "");
	smtp_session_free(&s);
}

static void test_auth_plain_needs_tls(void **state)
{
	struct smtp_session *s = session_with(SMTP_TLS_NONE, "alice", false);
	struct smtp_event ev;

	(void)state;
	feed(s, "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	assert_non_null(strstr(ev.error, "without TLS"));
	out_is(s, "");
	smtp_session_free(&s);

	/* ... unless the user says plaintext is fine */
	s = session_with(SMTP_TLS_NONE, "alice", true);
	feed(s, "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n");
	out_is(s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	feed(s, "235 2.7.0 Authentication successful\r\n");
	next_event(s, SMTP_EV_READY);
	smtp_session_free(&s);
}

static void test_auth_login_and_535(void **state)
{
	struct smtp_session *s =
		session_with(SMTP_TLS_IMPLICIT, "alice", false);
	struct smtp_event ev;

	(void)state;
	feed(s, "250-mx.example\r\n250 AUTH LOGIN\r\n");
	out_is(s, "AUTH LOGIN\r\n");
	feed(s, "334 VXNlcm5hbWU6\r\n");
	out_is(s, "YWxpY2U=\r\n");
	feed(s, "334 UGFzc3dvcmQ6\r\n");
	out_is(s, "c2VjcmV0\r\n");
	feed(s, "535 5.7.8 Error: authentication failed\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	assert_non_null(strstr(ev.error, "authentication failed"));
	smtp_session_free(&s);

	/* 454 is for now, not for good */
	s = session_with(SMTP_TLS_IMPLICIT, "alice", false);
	feed(s, "250-mx.example\r\n250 AUTH PLAIN\r\n");
	out_is(s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	feed(s, "454 4.7.0 Temporary authentication failure\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_false(ev.permanent);
	smtp_session_free(&s);

	/* a 334 for MAIL is out of step */
	s = session_with(SMTP_TLS_IMPLICIT, NULL, false);
	feed(s, "250 mx.example\r\n");
	next_event(s, SMTP_EV_READY);
	smtp_session_free(&s);
}

/* ready_with - a session with params p, greeted with ehlo_reply */
static struct smtp_session *ready_with(struct smtp_session_params p,
				       const char *ehlo_reply)
{
	struct smtp_session *s;

	p.helo_name = "c";
	s = smtp_session_new(&p);
	feed(s, "220 mx\r\n");
	out_is(s, "EHLO c\r\n");
	feed(s, ehlo_reply);
	next_event(s, SMTP_EV_READY);
	return s;
}

/* SIZE: announced on MAIL; a message over the limit never leaves. */
static void test_size(void **state)
{
	struct smtp_session *s = ready(
		"250-mx\r\n250-PIPELINING\r\n250 SIZE 40\r\n");
	struct smtp_message small = msg(rcpts_d, 1, "Subject: s\r\n\r\nhi\r\n",
					(void *)1);
	struct smtp_message big = msg(rcpts_bc, 2, "Subject: big\r\n\r\n"
				      "0123456789012345678901234567890\r\n",
				      (void *)2);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &big), 0);
	for (size_t i = 0; i < 2; i++) {
		ev = next_event(s, SMTP_EV_RCPT);
		assert_int_equal(ev.rcpt, i);
		assert_int_equal(ev.code, 552);
		assert_true(ev.local);
	}
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)2);
	assert_false(ev.sent);
	assert_string_equal(ev.enhanced, "5.3.4");
	assert_non_null(strstr(ev.text, "SIZE limit of 40"));
	out_is(s, "");
	assert_true(smtp_session_idle(s));

	assert_int_equal(smtp_session_submit(s, &small), 0);
	out_is(s, "MAIL FROM:<a@x.example> SIZE=18\r\n"
		  "RCPT TO:<d@y.example>\r\nDATA\r\n");
	smtp_session_free(&s);
}

/*
 * SMTPUTF8 only when an address needs it; without it, a UTF-8 recipient
 * is refused alone and the others still get the message.
 */
static void test_smtputf8(void **state)
{
	static const char *mixed[] = { "j\xc3\xbcrgen@y.example",
				       "d@y.example" };
	static const char *only_utf8[] = { "j\xc3\xbcrgen@y.example" };
	struct smtp_message m = msg(mixed, 2, "x\r\n", (void *)1);
	struct smtp_message u = msg(only_utf8, 1, "x\r\n", (void *)2);
	struct smtp_session *s;
	struct smtp_event ev;

	(void)state;
	s = ready("250-mx\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n");
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example> SMTPUTF8\r\n"
		  "RCPT TO:<j\xc3\xbcrgen@y.example>\r\n"
		  "RCPT TO:<d@y.example>\r\nDATA\r\n");
	smtp_session_free(&s);

	s = ready(pipelining_ehlo);
	assert_int_equal(smtp_session_submit(s, &m), 0);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 0);
	assert_int_equal(ev.code, 553);
	assert_string_equal(ev.enhanced, "5.6.7");
	assert_true(ev.local);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 1);
	assert_int_equal(ev.code, 250);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);

	/* nobody it could go to: refused at once, nothing written */
	assert_int_equal(smtp_session_submit(s, &u), 0);
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)2);
	assert_false(ev.sent);
	assert_int_equal(ev.code, 553);
	out_is(s, "");
	smtp_session_free(&s);
}

/* 8-bit bodies: BODY=8BITMIME when offered, refused when not. */
static void test_8bitmime(void **state)
{
	struct smtp_message m = msg(rcpts_d, 1, "caf\xc3\xa9\r\n", (void *)1);
	struct smtp_session *s;
	struct smtp_event ev;

	(void)state;
	m.eightbit = true;
	s = ready(pipelining_ehlo);
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example> BODY=8BITMIME\r\n"
		  "RCPT TO:<d@y.example>\r\nDATA\r\n");
	smtp_session_free(&s);

	s = ready("250-mx\r\n250 PIPELINING\r\n");
	assert_int_equal(smtp_session_submit(s, &m), 0);
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 554);
	assert_string_equal(ev.enhanced, "5.6.3");
	out_is(s, "");
	smtp_session_free(&s);
}

static const char chunking_ehlo[] =
	"250-mx\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
	"250 CHUNKING\r\n";

static const char *rcpts_4[] = { "r0@y.example", "r1@y.example",
				 "r2@y.example", "r3@y.example" };

/* LIMITS RCPTMAX: the message goes in transactions of that many. */
static void test_limits_rcptmax(void **state)
{
	struct smtp_session *s = ready(
		"250-mx\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=1\r\n");
	struct smtp_message m = msg(rcpts_bc, 2, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 0);
	no_event(s);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued as A\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	assert_true(ev.more);
	assert_string_equal(ev.text, "queued as A");
	no_event(s);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<c@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 1);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued as B\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	assert_false(ev.more);
	assert_string_equal(ev.text, "queued as B");
	assert_true(smtp_session_idle(s));
	smtp_session_free(&s);
}

/*
 * 452 "too many recipients" after some were accepted (RFC 5321
 * 4.5.3.1.10): the rest go in the next transaction, and from then on no
 * transaction asks for more than the server took.
 */
static void test_too_many_recipients(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(rcpts_4, 4, "x\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_4, 3, "y\r\n", (void *)2);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r0@y.example>\r\n"
		  "RCPT TO:<r1@y.example>\r\nRCPT TO:<r2@y.example>\r\n"
		  "RCPT TO:<r3@y.example>\r\nDATA\r\n");
	feed(s, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"
		"452 4.5.3 Too many recipients\r\n"
		"452 4.5.3 Too many recipients\r\n354 go\r\n");
	/* only the two taken hear anything now */
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 0);
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 1);
	no_event(s);
	out_is(s, "x\r\n.\r\n");
	/* a message submitted meanwhile already keeps under the limit */
	assert_int_equal(smtp_session_submit(s, &m2), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r0@y.example>\r\n"
		  "RCPT TO:<r1@y.example>\r\nDATA\r\n");
	feed(s, "250 2.0.0 queued as A\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
		"250 2.1.5 ok\r\n354 go\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)1);
	assert_true(ev.sent && ev.more);
	next_event(s, SMTP_EV_RCPT);
	next_event(s, SMTP_EV_RCPT);
	/* m2 was in the queue first: the rest of m goes behind it */
	out_is(s, "y\r\n.\r\nMAIL FROM:<a@x.example>\r\n"
		  "RCPT TO:<r2@y.example>\r\nRCPT TO:<r3@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 2.0.0 queued as B\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
		"550 5.1.1 no such user\r\n354 go\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)2);
	assert_true(ev.sent && ev.more);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 2);
	assert_int_equal(ev.code, 250);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 3);
	assert_int_equal(ev.code, 550);
	out_is(s, "x\r\n.\r\nMAIL FROM:<a@x.example>\r\n"
		  "RCPT TO:<r2@y.example>\r\nDATA\r\n");
	feed(s, "250 2.0.0 queued as C\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
		"354 go\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)1);
	assert_true(ev.sent);
	assert_false(ev.more);
	assert_string_equal(ev.text, "queued as C");
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 2);
	out_is(s, "y\r\n.\r\n");
	feed(s, "250 2.0.0 queued as D\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)2);
	assert_false(ev.more);
	assert_true(smtp_session_idle(s));
	smtp_session_free(&s);
}

/*
 * Without RFC 3463 codes the text says "too many"; a 552 that means it
 * (RFC 821's code) is the temporary 452 it should have been, even when
 * nothing was taken yet; any other 452 is the recipient's own.
 */
static void test_too_many_plain_and_552(void **state)
{
	struct smtp_session *s = ready("250-mx\r\n250 PIPELINING\r\n");
	struct smtp_message m = msg(rcpts_4, 3, "x\r\n", (void *)1);
	struct smtp_message one = msg(rcpts_d, 1, "x\r\n", (void *)2);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r0@y.example>\r\n"
		  "RCPT TO:<r1@y.example>\r\nRCPT TO:<r2@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n452 mailbox full\r\n"
		"452 Too many recipients\r\n354 go\r\n");
	assert_int_equal(next_event(s, SMTP_EV_RCPT).code, 250);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 1);
	assert_int_equal(ev.code, 452);
	assert_string_equal(ev.text, "mailbox full");
	no_event(s);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued\r\n");
	assert_true(next_event(s, SMTP_EV_DONE).more);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r2@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 2);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued\r\n");
	assert_false(next_event(s, SMTP_EV_DONE).more);

	assert_int_equal(smtp_session_submit(s, &one), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n552 5.5.3 Too many recipients\r\n554 no valid "
		"recipients\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.code, 452);
	assert_string_equal(ev.enhanced, "4.5.3");
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_false(ev.more);
	assert_int_equal(ev.code, 452);
	smtp_session_free(&s);
}

/* Lock-step: after "too many", the rest are not asked about in vain. */
static void test_too_many_lockstep(void **state)
{
	struct smtp_session_params p = { .pipelining = false };
	struct smtp_session *s = ready_with(p, "250 mx\r\n");
	struct smtp_message m = msg(rcpts_4, 4, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\n");
	feed(s, "250 ok\r\n");
	out_is(s, "RCPT TO:<r0@y.example>\r\n");
	feed(s, "250 ok\r\n");
	out_is(s, "RCPT TO:<r1@y.example>\r\n");
	feed(s, "452 4.5.3 Too many recipients\r\n");
	out_is(s, "DATA\r\n");
	feed(s, "354 go\r\n");
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued\r\n");
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 0);
	assert_true(next_event(s, SMTP_EV_DONE).more);
	/* one at a time now: the server took one */
	for (size_t i = 1; i < 4; i++) {
		char line[64];

		out_is(s, "MAIL FROM:<a@x.example>\r\n");
		feed(s, "250 ok\r\n");
		snprintf(line, sizeof(line), "RCPT TO:<r%zu@y.example>\r\n", i);
		out_is(s, line);
		feed(s, "250 ok\r\n");
		out_is(s, "DATA\r\n");
		feed(s, "354 go\r\n");
		out_is(s, "x\r\n.\r\n");
		feed(s, "250 queued\r\n");
		assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, i);
		ev = next_event(s, SMTP_EV_DONE);
		assert_true(ev.sent);
		assert_int_equal(ev.more, i < 3);
	}
	smtp_session_free(&s);
}

/*
 * A server that takes a recipient after saying "too many": that one is
 * in this transaction and never asked for again; MAIL refused in a later
 * transaction is the reason for every recipient left.
 */
static void test_too_many_then_mail_refused(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(rcpts_4, 4, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r0@y.example>\r\n"
		  "RCPT TO:<r1@y.example>\r\nRCPT TO:<r2@y.example>\r\n"
		  "RCPT TO:<r3@y.example>\r\nDATA\r\n");
	feed(s, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n452 4.5.3 Too many\r\n"
		"250 2.1.5 ok after all\r\n452 4.5.3 Too many\r\n354 go\r\n");
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 0);
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 2);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 2.0.0 queued\r\n");
	assert_true(next_event(s, SMTP_EV_DONE).more);
	/* the limit learned is one: r1 alone, then r3 */
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r1@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "451 4.3.0 try later\r\n503 5.5.1 need MAIL\r\n"
		"503 5.5.1 need MAIL\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 1);
	assert_int_equal(ev.code, 451);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 3);
	assert_int_equal(ev.code, 451);
	assert_int_equal(ev.step, SMTP_STEP_MAIL);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_false(ev.more);
	assert_int_equal(ev.code, 451);
	no_event(s);
	assert_true(smtp_session_idle(s));
	smtp_session_free(&s);
}

/*
 * The connection lost in a later transaction: its DONE is the last, and
 * in doubt only for what that transaction sent; MAILMAX reached: the rest
 * are deferred, not dropped.
 */
static void test_split_lost_and_spent(void **state)
{
	struct smtp_session_params p = { .pipelining = true };
	struct smtp_session *s = ready(
		"250-mx\r\n250-PIPELINING\r\n250 LIMITS RCPTMAX=2\r\n");
	struct smtp_message m = msg(rcpts_4, 4, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r0@y.example>\r\n"
		  "RCPT TO:<r1@y.example>\r\nDATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	next_event(s, SMTP_EV_RCPT);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued\r\n");
	assert_true(next_event(s, SMTP_EV_DONE).more);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r2@y.example>\r\n"
		  "RCPT TO:<r3@y.example>\r\nDATA\r\n");
	smtp_session_abort(s, "connection reset", false);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_false(ev.more);
	assert_false(ev.in_doubt);
	assert_int_equal(ev.step, SMTP_STEP_SESSION);
	next_event(s, SMTP_EV_FAILED);
	smtp_session_free(&s);

	s = ready_with(p, "250-mx\r\n250-PIPELINING\r\n"
		       "250 LIMITS RCPTMAX=3 MAILMAX=1\r\n");
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<r0@y.example>\r\n"
		  "RCPT TO:<r1@y.example>\r\nRCPT TO:<r2@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	for (size_t i = 0; i < 3; i++)
		next_event(s, SMTP_EV_RCPT);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 3);
	assert_int_equal(ev.code, 452);
	assert_true(ev.local);
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	assert_false(ev.more);
	out_is(s, "");
	smtp_session_free(&s);
}

/* BDAT: the rest goes in a transaction of its own once the first is
 * answered. */
static void test_too_many_bdat(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	struct smtp_session *s = ready_with(p, chunking_ehlo);
	struct smtp_message m = msg(rcpts_bc, 2, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
		  "RCPT TO:<c@y.example>\r\nBDAT 3 LAST\r\nx\r\n");
	feed(s, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n452 4.5.3 Too many\r\n"
		"250 2.0.0 queued as A\r\n");
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 0);
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent && ev.more);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<c@y.example>\r\n"
		  "BDAT 3 LAST\r\nx\r\n");
	feed(s, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as B\r\n");
	assert_int_equal(next_event(s, SMTP_EV_RCPT).rcpt, 1);
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	assert_false(ev.more);
	smtp_session_free(&s);
}

/* LIMITS MAILMAX and max_messages: the session is spent. */
static void test_spent(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .max_messages = 3 };
	struct smtp_message m = msg(rcpts_d, 1, "x\r\n", (void *)1);
	struct smtp_session *s;

	(void)state;
	s = ready_with(p, "250-mx\r\n250-PIPELINING\r\n"
		       "250 LIMITS MAILMAX=2\r\n");
	assert_false(smtp_session_spent(s));
	assert_int_equal(smtp_session_submit(s, &m), 0);
	assert_int_equal(smtp_session_submit(s, &m), 0);
	assert_true(smtp_session_spent(s));
	assert_int_equal(smtp_session_submit(s, &m), -1);
	smtp_session_free(&s);

	p.max_messages = 1;
	s = ready_with(p, pipelining_ehlo);
	assert_int_equal(smtp_session_submit(s, &m), 0);
	assert_true(smtp_session_spent(s));
	assert_int_equal(smtp_session_submit(s, &m), -1);
	smtp_session_free(&s);
}

/*
 * CHUNKING: whole messages go out ahead of their replies, up to the
 * window; the BDAT body is counted, CRLF-only, and not dot-stuffed.
 */
static void test_bdat_window(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true,
					 .chunking_window = 2 };
	struct smtp_session *s = ready_with(p, chunking_ehlo);
	struct smtp_message m1 = msg(rcpts_d, 1, ".a\nb\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_bc, 2, "two", (void *)2);
	struct smtp_message m3 = msg(rcpts_d, 1, "3\r\n", (void *)3);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m1), 0);
	assert_int_equal(smtp_session_submit(s, &m2), 0);
	assert_int_equal(smtp_session_submit(s, &m3), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "BDAT 7 LAST\r\n.a\r\nb\r\n"
		  "RSET\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
		  "RCPT TO:<c@y.example>\r\nBDAT 5 LAST\r\ntwo\r\n");
	assert_int_equal(smtp_session_waiting(s), SMTP_WAIT_COMMAND);
	feed(s, "250 ok\r\n250 ok\r\n");
	next_event(s, SMTP_EV_RCPT);
	assert_int_equal(smtp_session_waiting(s), SMTP_WAIT_DATA_END);
	out_is(s, "");
	feed(s, "250 2.0.0 queued as 1\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)1);
	assert_true(ev.sent);
	/*
	 * A slot in the window is free: the third message goes, behind an
	 * RSET, since the second may yet fail and leave its transaction.
	 */
	out_is(s, "RSET\r\nMAIL FROM:<a@x.example>\r\n"
		  "RCPT TO:<d@y.example>\r\nBDAT 3 LAST\r\n3\r\n");
	/* every recipient of the second refused: BDAT refused, not sent */
	feed(s, "250 reset\r\n250 ok\r\n550 no\r\n550 no\r\n554 5.5.1 "
		"no valid recipients\r\n");
	next_event(s, SMTP_EV_RCPT);
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)2);
	assert_false(ev.sent);
	/* the first recipient's refusal says more than "no valid ..." */
	assert_int_equal(ev.code, 550);
	feed(s, "250 reset\r\n250 ok\r\n250 ok\r\n250 queued as 3\r\n");
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)3);
	assert_true(ev.sent);
	/* after a failed transaction, RSET leads the next one */
	assert_int_equal(smtp_session_submit(s, &m1), 0);
	out_is(s, "RSET\r\nMAIL FROM:<a@x.example>\r\n"
		  "RCPT TO:<d@y.example>\r\nBDAT 7 LAST\r\n.a\r\nb\r\n");
	smtp_session_free(&s);
}

/*
 * A message that says it needs no stuffing (smtp_message.stuffed) goes
 * as it is: DATA adds the "." line, BDAT counts its bytes; the same
 * bytes the converting path makes for it.
 */
static void test_stuffed(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(rcpts_d, 1, "Subject: s\r\n\r\nhi\r\n"
				    "a.b\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	m.stuffed = true;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	out_is(s, "Subject: s\r\n\r\nhi\r\na.b\r\n.\r\n");
	feed(s, "250 queued\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	smtp_session_free(&s);

	s = ready_with(p, chunking_ehlo);
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "BDAT 23 LAST\r\nSubject: s\r\n\r\nhi\r\na.b\r\n");
	feed(s, "250 ok\r\n250 ok\r\n250 queued\r\n");
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	smtp_session_free(&s);
}

/* big_body - a message of about 70 KB with no line starting with '.' */
static char *big_body(size_t *len)
{
	struct buf b = BUF_INIT;

	buf_append_str(&b, "Subject: big\r\n\r\n");
	for (int i = 0; b.len < 70000; i++)
		buf_printf(&b, "line %d of a large body, not stuffed.\r\n", i);
	*len = b.len;
	return b.data;
}

/*
 * drain - take what the session has to send in writes of at most chunk
 * bytes into got; true if some write came from inside [m, m + len)
 * (the message's own bytes, not a copy)
 */
static bool drain(struct smtp_session *s, struct buf *got, size_t chunk,
		  const char *m, size_t len)
{
	bool direct = false;

	for (;;) {
		const char *data;
		size_t n;

		smtp_session_output(s, &data, &n);
		if (n == 0)
			return direct;
		if (n > chunk)
			n = chunk;
		if (data >= m && data < m + len)
			direct = true;
		buf_append(got, data, n);
		smtp_session_sent(s, n);
	}
}

/*
 * A large message that needs no stuffing goes out from its own bytes,
 * written in pieces of any size: DATA with its "." line after it, BDAT
 * two in a window; replies match as ever.  A connection lost in the
 * middle of it leaves it not sent and not in doubt; lost after it, in
 * doubt.
 */
static void test_stuffed_direct(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m, m2;
	struct buf got = BUF_INIT, want = BUF_INIT;
	struct smtp_event ev;
	const char *data;
	size_t len, n;
	char *body = big_body(&len);

	(void)state;
	m = msg(rcpts_d, 1, body, (void *)1);
	m.stuffed = true;
	m2 = m;
	m2.ctx = (void *)2;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	assert_true(drain(s, &got, 999, body, len));
	buf_append(&want, body, len);
	buf_append_str(&want, ".\r\n");
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	feed_unsent(s, "250 queued\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	smtp_session_free(&s);

	s = ready_with(p, chunking_ehlo);
	assert_int_equal(smtp_session_submit(s, &m), 0);
	assert_int_equal(smtp_session_submit(s, &m2), 0);
	buf_reset(&got);
	assert_true(drain(s, &got, 1 << 20, body, len));
	buf_reset(&want);
	for (int i = 0; i < 2; i++) {
		buf_printf(&want, "%sMAIL FROM:<a@x.example>\r\n"
			   "RCPT TO:<d@y.example>\r\nBDAT %zu LAST\r\n",
			   i ? "RSET\r\n" : "", len);
		buf_append(&want, body, len);
	}
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	feed_unsent(s, "250 ok\r\n250 ok\r\n250 one\r\n250 reset\r\n"
		    "250 ok\r\n250 ok\r\n250 two\r\n");
	for (int i = 0; i < 2; i++) {
		next_event(s, SMTP_EV_RCPT);
		ev = next_event(s, SMTP_EV_DONE);
		assert_true(ev.sent);
	}
	smtp_session_free(&s);

	/* lost in the middle, then lost after the whole body */
	for (int whole = 0; whole < 2; whole++) {
		s = ready(pipelining_ehlo);
		assert_int_equal(smtp_session_submit(s, &m), 0);
		out_is(s, "MAIL FROM:<a@x.example>\r\n"
			  "RCPT TO:<d@y.example>\r\nDATA\r\n");
		feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
		next_event(s, SMTP_EV_RCPT);
		smtp_session_output(s, &data, &n);
		assert_ptr_equal(data, body);
		if (whole) {
			buf_reset(&got);
			drain(s, &got, n, body, len);
		} else {
			smtp_session_sent(s, n / 2);
		}
		smtp_session_abort(s, "lost", false);
		ev = next_event(s, SMTP_EV_DONE);
		assert_false(ev.sent);
		assert_int_equal(ev.in_doubt, whole);
		next_event(s, SMTP_EV_FAILED);
		smtp_session_free(&s);
	}
	buf_free(&got);
	buf_free(&want);
	free(body);
}

/*
 * A MAIL answered 503 (the server still in a transaction volley thought
 * over) is a reason to retry, never a permanent failure.
 */
static void test_mail_503_retried(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(rcpts_d, 1, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "503 5.5.1 nested MAIL command\r\n503 need MAIL\r\n"
		"503 need RCPT\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.code, 451);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_int_equal(ev.code, 451);
	assert_non_null(strstr(ev.text, "nested MAIL"));
	smtp_session_free(&s);
}

/* BDAT replies split at every byte give the same outcome. */
static void test_bdat_split_everywhere(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	const char *replies = "250 ok\r\n250 ok\r\n250 q1\r\n"
			      "250 reset\r\n250 ok\r\n550-no\r\n"
			      "550 really\r\n250 ok\r\n250 q2\r\n";

	(void)state;
	for (size_t cut = 0; cut <= strlen(replies); cut++) {
		struct smtp_session *s = ready_with(p, chunking_ehlo);
		struct smtp_message m1 = msg(rcpts_d, 1, "1\r\n", (void *)1);
		struct smtp_message m2 = msg(rcpts_bc, 2, "2\r\n", (void *)2);
		struct smtp_event ev;
		int sent = 0, rcpts = 0;

		smtp_session_submit(s, &m1);
		smtp_session_submit(s, &m2);
		smtp_session_sent(s, 10000);
		smtp_session_feed(s, replies, cut);
		smtp_session_feed(s, replies + cut, strlen(replies) - cut);
		while (smtp_session_event(s, &ev)) {
			assert_int_not_equal(ev.kind, SMTP_EV_FAILED);
			rcpts += ev.kind == SMTP_EV_RCPT;
			sent += ev.kind == SMTP_EV_DONE && ev.sent;
		}
		assert_int_equal(rcpts, 3);
		assert_int_equal(sent, 2);
		assert_true(smtp_session_idle(s));
		smtp_session_free(&s);
	}
}

/* What a caller's timeout is for: greeting, commands, end of data. */
static void test_waiting(void **state)
{
	struct smtp_session_params p = { .helo_name = "c" };
	struct smtp_session *s = smtp_session_new(&p);
	struct smtp_message m = msg(rcpts_d, 1, "x\r\n", (void *)1);

	(void)state;
	assert_int_equal(smtp_session_waiting(s), SMTP_WAIT_GREETING);
	feed(s, "220 mx\r\n");
	assert_int_equal(smtp_session_waiting(s), SMTP_WAIT_COMMAND);
	feed(s, "250 mx\r\n");
	next_event(s, SMTP_EV_READY);
	assert_int_equal(smtp_session_waiting(s), SMTP_WAIT_NONE);
	smtp_session_submit(s, &m);
	/* lock-step: each reply after its command went */
	feed(s, "250 ok\r\n");
	feed(s, "250 ok\r\n");
	feed(s, "354 go\r\n");
	assert_int_equal(smtp_session_waiting(s), SMTP_WAIT_DATA_END);
	smtp_session_free(&s);
}

/* The transcript: commands as sent, secrets and bodies never. */
static void test_transcript(void **state)
{
	struct smtp_session_params p = {
		.helo_name = "c", .pipelining = true,
		.tls = SMTP_TLS_IMPLICIT, .username = "alice",
		.password = "secret", .transcript = true,
	};
	struct smtp_session *s = smtp_session_new(&p);
	struct smtp_message m = msg(rcpts_d, 1, "Subject: x\r\n\r\nbody\r\n",
				    (void *)1);
	struct buf t = BUF_INIT;

	(void)state;
	feed(s, "220 mx\r\n");
	feed(s, "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n");
	feed(s, "235 2.7.0 ok\r\n");
	next_event(s, SMTP_EV_READY);
	smtp_session_submit(s, &m);
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	smtp_session_transcript(s, &t);
	assert_string_equal(buf_cstr(&t),
			    "C: EHLO c\n"
			    "C: AUTH PLAIN ****\n"
			    "C: MAIL FROM:<a@x.example>\n"
			    "C: RCPT TO:<d@y.example>\n"
			    "C: DATA\n"
			    "C: <message, 20 bytes, then \".\">\n");
	buf_reset(&t);
	smtp_session_transcript(s, &t);
	assert_int_equal(t.len, 0);
	smtp_session_free(&s);

	/* AUTH LOGIN: both answers masked */
	s = smtp_session_new(&p);
	feed(s, "220 mx\r\n");
	feed(s, "250-mx\r\n250 AUTH LOGIN\r\n");
	feed(s, "334 VXNlcm5hbWU6\r\n");
	feed(s, "334 UGFzc3dvcmQ6\r\n");
	smtp_session_transcript(s, &t);
	assert_string_equal(buf_cstr(&t), "C: EHLO c\nC: AUTH LOGIN\n"
			    "C: ****\nC: ****\n");
	assert_null(strstr(buf_cstr(&t), "c2VjcmV0"));
	buf_free(&t);
	smtp_session_free(&s);
}

/* A lost connection: the unfinished messages come back, then FAILED. */
static void test_abort(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(rcpts_d, 1, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	assert_true(smtp_session_can_submit(s));
	smtp_session_submit(s, &m);
	smtp_session_abort(s, "the server closed the connection", false);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_int_equal(ev.code, 451);
	/* only its commands went: certainly not taken */
	assert_false(ev.in_doubt);
	ev = next_event(s, SMTP_EV_FAILED);
	assert_string_equal(ev.error, "the server closed the connection");
	assert_false(smtp_session_can_submit(s));
	smtp_session_free(&s);

	/* the whole message went, then silence: in doubt */
	s = ready(pipelining_ehlo);
	smtp_session_submit(s, &m);
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	out_is(s, "x\r\n.\r\n");
	smtp_session_abort(s, "no reply to the end of a message", false);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_true(ev.in_doubt);
	smtp_session_free(&s);

	/* a 421 is a reply: the server took nothing */
	s = ready(pipelining_ehlo);
	smtp_session_submit(s, &m);
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n421 4.3.2 bye\r\n");
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.in_doubt);
	smtp_session_free(&s);
}

/* A control byte in an address never reaches the wire. */
static void test_injection_refused(void **state)
{
	static const char *evil[] = { "a@x.example>\r\nRCPT TO:<evil@y.example",
				      "d@y.example" };
	static const char *all_evil[] = { "e@x\r\nQUIT" };
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(evil, 2, "x\r\n", (void *)1);
	struct smtp_message all = msg(all_evil, 1, "x\r\n", (void *)2);
	struct smtp_message bad_from = msg(rcpts_d, 1, "x\r\n", (void *)3);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.rcpt, 0);
	assert_int_equal(ev.code, 553);
	assert_string_equal(ev.enhanced, "5.1.3");
	assert_true(ev.local);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 queued\r\n");
	assert_true(next_event(s, SMTP_EV_DONE).sent);

	/* no recipient left: refused at once */
	assert_int_equal(smtp_session_submit(s, &all), 0);
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 553);
	out_is(s, "");

	bad_from.from = "a@x.example>\r\nRSET";
	assert_int_equal(smtp_session_submit(s, &bad_from), 0);
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_string_equal(ev.enhanced, "5.1.7");
	out_is(s, "");
	smtp_session_free(&s);

	/* nor does a helo name that would end the EHLO line */
	{
		struct smtp_session_params p = {
			.helo_name = "me\r\nMAIL FROM:<x@y>" };

		s = smtp_session_new(&p);
		feed(s, "220 mx\r\n");
		out_is(s, "EHLO localhost\r\n");
		smtp_session_free(&s);
	}
}

/* 8-bit body, a UTF-8 recipient, neither SMTPUTF8 nor 8BITMIME. */
static void test_8bit_without_either(void **state)
{
	static const char *mixed[] = { "\xc3\xbc@x.example", "a@x.example" };
	struct smtp_session *s = ready("250-mx\r\n250 PIPELINING\r\n");
	struct smtp_message m = msg(mixed, 2, "caf\xc3\xa9\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	m.eightbit = true;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	next_event(s, SMTP_EV_RCPT);
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 554);
	assert_string_equal(ev.enhanced, "5.6.3");
	out_is(s, "");
	smtp_session_free(&s);
}

/* A 421 after the last reply, with nothing outstanding: not out of step. */
static void test_421_when_idle(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(rcpts_d, 1, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m);
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	feed(s, "250 queued\r\n421 4.3.2 shutting down\r\n");
	next_event(s, SMTP_EV_RCPT);
	assert_true(next_event(s, SMTP_EV_DONE).sent);
	ev = next_event(s, SMTP_EV_FAILED);
	assert_false(ev.out_of_step);
	assert_int_equal(ev.code, 421);
	smtp_session_free(&s);
}

/*
 * One reply too many shifts the rest: with enhanced status codes, a
 * RCPT's 2.1.5 arriving for an end of data is caught, and the message
 * behind it is not reported sent.
 */
static void test_shifted_reply_caught(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	struct smtp_session *s = ready_with(p, "250-mx\r\n250-PIPELINING\r\n"
					    "250-ENHANCEDSTATUSCODES\r\n"
					    "250 CHUNKING\r\n");
	struct smtp_message a = msg(rcpts_d, 1, "A\r\n", (void *)1);
	struct smtp_message b = msg(rcpts_d, 1, "B\r\n", (void *)2);
	struct smtp_event ev;
	bool b_sent = false, failed = false;

	(void)state;
	smtp_session_submit(s, &a);
	smtp_session_submit(s, &b);
	smtp_session_sent(s, 10000);
	/* A: MAIL, RCPT, BDAT answered twice; then B's replies shift */
	feed(s, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 A queued\r\n"
		"250 2.0.0 A again\r\n"		/* extra: eaten by RSET */
		"250 2.0.0 reset\r\n"		/* taken as B's MAIL */
		"250 2.1.0 mail B\r\n"		/* taken as B's RCPT */
		"250 2.1.5 rcpt B\r\n"		/* taken as B's BDAT */
		"554 5.7.1 B rejected\r\n");
	while (smtp_session_event(s, &ev)) {
		if (ev.kind == SMTP_EV_DONE && ev.ctx == (void *)2)
			b_sent = ev.sent;
		if (ev.kind == SMTP_EV_FAILED) {
			failed = true;
			assert_true(ev.out_of_step);
		}
	}
	assert_true(failed);
	assert_false(b_sent);
	smtp_session_free(&s);
}

/*
 * A message whose only recipient was refused ends with that refusal:
 * 550 5.1.1 stays permanent, a greylisting 451 stays temporary - with
 * BDAT and DATA alike.
 */
static void test_done_carries_rcpt_refusal(void **state)
{
	static const char *replies[] = { "550 5.1.1 no such user\r\n",
					 "451 4.7.1 greylisted\r\n" };
	struct smtp_session_params p = { .pipelining = true };
	struct smtp_event ev;

	(void)state;
	for (int chunking = 0; chunking < 2; chunking++) {
		for (int i = 0; i < 2; i++) {
			struct smtp_session *s;
			struct smtp_message m = msg(rcpts_d, 1, "x\r\n",
						    (void *)1);

			p.chunking = chunking;
			s = ready_with(p, chunking_ehlo);
			smtp_session_submit(s, &m);
			smtp_session_sent(s, 1000);
			feed(s, "250 2.1.0 ok\r\n");
			feed(s, replies[i]);
			/* BDAT's or DATA's refusal */
			feed(s, "554 5.5.1 no valid recipients\r\n");
			next_event(s, SMTP_EV_RCPT);
			ev = next_event(s, SMTP_EV_DONE);
			assert_false(ev.sent);
			assert_int_equal(ev.code, i == 0 ? 550 : 451);
			assert_false(ev.local);
			smtp_session_free(&s);
		}
	}
}

/* Lock-step, MAIL refused: every recipient still hears why. */
static void test_lockstep_mail_refused(void **state)
{
	struct smtp_session *s = ready("250 mx\r\n");
	struct smtp_message m = msg(rcpts_bc, 2, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m);
	out_is(s, "MAIL FROM:<a@x.example>\r\n");
	feed(s, "550 5.7.1 sender refused\r\n");
	for (size_t i = 0; i < 2; i++) {
		ev = next_event(s, SMTP_EV_RCPT);
		assert_int_equal(ev.rcpt, i);
		assert_int_equal(ev.code, 550);
	}
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 550);
	out_is(s, "");
	smtp_session_free(&s);
}

/* AUTH: a token the server cannot take, and a server that keeps asking. */
static void test_auth_edges(void **state)
{
	struct smtp_session_params p = {
		.helo_name = "c", .tls = SMTP_TLS_IMPLICIT,
		.username = "alice", .xoauth2_token = "tok",
	};
	struct smtp_session *s = smtp_session_new(&p);
	struct smtp_event ev;

	(void)state;
	feed(s, "220 mx\r\n");
	feed(s, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	assert_non_null(strstr(ev.error, "XOAUTH2"));
	out_is(s, "");
	smtp_session_free(&s);

	s = session_with(SMTP_TLS_IMPLICIT, "alice", false);
	feed(s, "250-mx.example\r\n250 AUTH LOGIN\r\n");
	feed(s, "334 VXNlcm5hbWU6\r\n");
	feed(s, "334 UGFzc3dvcmQ6\r\n");
	feed(s, "334 bW9yZT8=\r\n");	/* base64 "more?" */
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	smtp_session_free(&s);
}

/* A greeting is 220: any other 2xx is a protocol error, not a welcome. */
static void test_greeting_not_220(void **state)
{
	struct smtp_session_params p = { .helo_name = "c" };
	struct smtp_session *s = smtp_session_new(&p);
	struct smtp_event ev;

	(void)state;
	feed(s, "250 hello?\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.malformed);
	assert_false(ev.permanent);
	assert_non_null(strstr(ev.error, "not 220"));
	out_is(s, "");
	smtp_session_free(&s);
}

/*
 * Which command decided each message's fate: the step a policy reads
 * instead of the reply's text (retry.h).
 */
static void test_steps(void **state)
{
	struct smtp_session *s;
	struct smtp_message m1 = msg(rcpts_d, 1, "one\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_d, 1, "two\r\n", (void *)2);
	struct smtp_event ev;

	(void)state;
	/* MAIL refused: the recipient and the message hear MAIL's reply */
	s = ready(pipelining_ehlo);
	smtp_session_submit(s, &m1);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "553 5.7.1 sender rejected\r\n503 5.5.1 need MAIL\r\n"
		"503 5.5.1 no valid recipients\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.step, SMTP_STEP_MAIL);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 553);
	assert_int_equal(ev.step, SMTP_STEP_MAIL);
	assert_string_equal(smtp_step_name(ev.step), "mail");
	smtp_session_free(&s);

	/* the recipient refused */
	s = ready(pipelining_ehlo);
	smtp_session_submit(s, &m1);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n550 5.1.1 no such user\r\n"
		"554 5.5.1 no valid recipients\r\n");
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.step, SMTP_STEP_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 550);
	assert_int_equal(ev.step, SMTP_STEP_RCPT);
	smtp_session_free(&s);

	/* DATA refused, then the end of data of the next message taken */
	s = ready(pipelining_ehlo);
	smtp_session_submit(s, &m1);
	smtp_session_submit(s, &m2);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n451 4.3.0 not now\r\n");
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 451);
	assert_int_equal(ev.step, SMTP_STEP_DATA);
	out_is(s, "RSET\r\nMAIL FROM:<a@x.example>\r\n"
		  "RCPT TO:<d@y.example>\r\nDATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	out_is(s, "two\r\n.\r\n");
	feed(s, "250 2.0.0 queued\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	assert_int_equal(ev.step, SMTP_STEP_END);
	smtp_session_free(&s);

	/* a 421 to RCPT ends the session: each message was cut off
	 * (SESSION), and FAILED says what the 421 answered */
	s = ready(pipelining_ehlo);
	smtp_session_submit(s, &m1);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n421 4.7.0 too many messages\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 421);
	assert_int_equal(ev.step, SMTP_STEP_SESSION);
	assert_false(ev.local);
	ev = next_event(s, SMTP_EV_FAILED);
	assert_int_equal(ev.code, 421);
	assert_string_equal(ev.enhanced, "4.7.0");
	assert_int_equal(ev.step, SMTP_STEP_RCPT);
	smtp_session_free(&s);

	/* a lost connection: cut off, local; FAILED answers nothing */
	s = ready(pipelining_ehlo);
	smtp_session_submit(s, &m1);
	smtp_session_abort(s, "the server closed the connection", false);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.step, SMTP_STEP_SESSION);
	assert_true(ev.local);
	ev = next_event(s, SMTP_EV_FAILED);
	assert_int_equal(ev.code, 0);
	assert_int_equal(ev.step, SMTP_STEP_NONE);
	smtp_session_free(&s);

	/* a 421 greeting */
	s = smtp_session_new(&(struct smtp_session_params){
		.helo_name = "c" });
	feed(s, "421 4.3.2 busy\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_int_equal(ev.code, 421);
	assert_int_equal(ev.step, SMTP_STEP_SESSION);
	smtp_session_free(&s);
}

/* A message refused before anything is written: no command, NONE. */
static void test_step_of_a_local_refusal(void **state)
{
	struct smtp_session_params p = { .pipelining = true };
	struct smtp_session *s = ready_with(p, "250-mx\r\n250 SIZE 10\r\n");
	struct smtp_message m = msg(rcpts_d, 1, "far more than ten bytes\r\n",
				    (void *)1);
	struct smtp_event ev;

	(void)state;
	assert_int_equal(smtp_session_submit(s, &m), 0);
	ev = next_event(s, SMTP_EV_RCPT);
	assert_int_equal(ev.step, SMTP_STEP_NONE);
	ev = next_event(s, SMTP_EV_DONE);
	assert_int_equal(ev.code, 552);
	assert_true(ev.local);
	assert_int_equal(ev.step, SMTP_STEP_NONE);
	smtp_session_free(&s);
}

/*
 * Every change of state is traced by name when asked, in order, and
 * smtp_session_state names where the session is.
 */
static void test_state_trace(void **state)
{
	struct smtp_session_params p = {
		.helo_name = "c", .pipelining = true,
		.tls = SMTP_TLS_STARTTLS, .username = "alice",
		.password = "secret", .trace_states = true,
	};
	struct smtp_session *s = smtp_session_new(&p);
	struct buf trace = BUF_INIT;

	(void)state;
	assert_string_equal(smtp_session_state(s), "GREETING");
	feed(s, "220 mx\r\n");
	out_is(s, "EHLO c\r\n");
	assert_string_equal(smtp_session_state(s), "EHLO");
	feed(s, "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n");
	out_is(s, "STARTTLS\r\n");
	feed(s, "220 go\r\n");
	next_event(s, SMTP_EV_STARTTLS);
	assert_string_equal(smtp_session_state(s), "HANDSHAKE");
	smtp_session_tls_done(s);
	out_is(s, "EHLO c\r\n");
	feed(s, "250-mx\r\n250 AUTH PLAIN\r\n");
	out_is(s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	feed(s, "235 2.7.0 ok\r\n");
	next_event(s, SMTP_EV_READY);
	smtp_session_quit(s);
	out_is(s, "QUIT\r\n");
	feed(s, "221 bye\r\n");
	next_event(s, SMTP_EV_CLOSED);
	assert_string_equal(smtp_session_state(s), "CLOSED");
	smtp_session_transcript(s, &trace);
	assert_string_equal(buf_cstr(&trace),
			    "#: GREETING -> EHLO\n"
			    "#: EHLO -> STARTTLS\n"
			    "#: STARTTLS -> HANDSHAKE\n"
			    "#: HANDSHAKE -> EHLO\n"
			    "#: EHLO -> AUTH\n"
			    "#: AUTH -> READY\n"
			    "#: READY -> QUIT\n"
			    "#: QUIT -> CLOSED\n");
	buf_free(&trace);
	smtp_session_free(&s);

	/* off by default; a failure is traced too */
	p.trace_states = false;
	s = smtp_session_new(&p);
	feed(s, "554 go away\r\n");
	next_event(s, SMTP_EV_FAILED);
	assert_string_equal(smtp_session_state(s), "FAILED");
	smtp_session_transcript(s, &trace);
	assert_int_equal(trace.len, 0);
	smtp_session_free(&s);
	p.trace_states = true;
	s = smtp_session_new(&p);
	feed(s, "554 go away\r\n");
	smtp_session_transcript(s, &trace);
	assert_string_equal(buf_cstr(&trace), "#: GREETING -> FAILED\n");
	buf_free(&trace);
	smtp_session_free(&s);
}

/*
 * A reply to a command not yet sent whole is never its reply: "354" and
 * "250" in one read, before the body could go, must not make the
 * message sent (with or without ENHANCEDSTATUSCODES).
 */
static void test_reply_before_sent(void **state)
{
	static const char *const ehlos[] = {
		"250-mx\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
		"250-mx\r\n250 PIPELINING\r\n",
		"250 mx\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ehlos) / sizeof(ehlos[0]); i++) {
		struct smtp_session *s = ready(ehlos[i]);
		struct smtp_message m = msg(rcpts_d, 1, "body\r\n", (void *)1);
		struct smtp_event ev;
		bool lockstep = i == 2;

		smtp_session_submit(s, &m);
		if (lockstep) {
			feed(s, "250 ok\r\n");
			feed(s, "250 ok\r\n");
		}
		feed(s, lockstep ? "354 go\r\n250 2.0.0 queued\r\n" :
		     "250 ok\r\n250 ok\r\n354 go\r\n250 2.0.0 queued\r\n");
		while (smtp_session_event(s, &ev) && ev.kind == SMTP_EV_RCPT)
			;
		assert_int_equal(ev.kind, SMTP_EV_DONE);
		assert_false(ev.sent);
		/* the body never left: the server cannot have it */
		assert_false(ev.in_doubt);
		assert_true(ev.local);
		ev = next_event(s, SMTP_EV_FAILED);
		assert_true(ev.out_of_step);
		assert_non_null(strstr(ev.error, "before the command"));
		smtp_session_free(&s);
	}

	/* a reply to MAIL before MAIL went out */
	{
		struct smtp_session *s = ready(pipelining_ehlo);
		struct smtp_message m = msg(rcpts_d, 1, "x\r\n", (void *)1);
		struct smtp_event ev;

		smtp_session_submit(s, &m);
		feed_unsent(s, "250 2.1.0 ok\r\n");
		ev = next_event(s, SMTP_EV_DONE);
		assert_false(ev.sent);
		assert_false(ev.in_doubt);
		next_event(s, SMTP_EV_FAILED);
		smtp_session_free(&s);
	}
}

/*
 * MAIL's 2.1.x status on an end of data is a shifted reply, whether or
 * not the server announced ENHANCEDSTATUSCODES.
 */
static void test_shifted_reply_without_the_capability(void **state)
{
	struct smtp_session *s = ready("250-mx\r\n250 SIZE 1000\r\n");
	struct smtp_message m = msg(rcpts_d, 1, "x\r\n", (void *)1);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m);
	out_is(s, "MAIL FROM:<a@x.example> SIZE=3\r\n");
	feed(s, "250 2.1.0 ok\r\n");
	out_is(s, "RCPT TO:<d@y.example>\r\n");
	feed(s, "250 2.1.5 ok\r\n");
	out_is(s, "DATA\r\n");
	feed(s, "354 go\r\n");
	out_is(s, "x\r\n.\r\n");
	feed(s, "250 2.1.0 sender ok\r\n");
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	/* it went whole and its real reply never came */
	assert_true(ev.in_doubt);
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.out_of_step);
	smtp_session_free(&s);
}

/*
 * Without RFC 3463 codes a server's "250" to MAIL cannot be told from
 * its "250" to the end of data, so the next message's commands wait for
 * the previous message's verdict: DATA, and BDAT with a window of one.
 */
static void test_no_overlap_without_enhanced_codes(void **state)
{
	struct smtp_message m1 = msg(rcpts_d, 1, "one\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_d, 1, "two\r\n", (void *)2);
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	struct smtp_session *s;
	struct smtp_event ev;

	(void)state;
	s = ready("250-mx\r\n250 PIPELINING\r\n");
	smtp_session_submit(s, &m1);
	smtp_session_submit(s, &m2);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	/* the body alone: no MAIL behind it */
	out_is(s, "one\r\n.\r\n");
	feed(s, "250 queued\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.sent);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	smtp_session_free(&s);

	/* CHUNKING: one message at a time */
	s = ready_with(p, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
	smtp_session_submit(s, &m1);
	smtp_session_submit(s, &m2);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "BDAT 5 LAST\r\none\r\n");
	feed(s, "250 ok\r\n250 ok\r\n250 queued\r\n");
	next_event(s, SMTP_EV_RCPT);
	assert_true(next_event(s, SMTP_EV_DONE).sent);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "BDAT 5 LAST\r\ntwo\r\n");
	smtp_session_free(&s);
}

/* in doubt only when the end of data really went */
static void test_in_doubt_only_when_sent(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m = msg(rcpts_d, 1, "body\r\n", (void *)1);
	struct smtp_event ev;
	const char *out;
	size_t len;

	(void)state;
	smtp_session_submit(s, &m);
	feed(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	/* the body is queued, and half of it written when the line drops */
	smtp_session_output(s, &out, &len);
	assert_int_equal(len, strlen("body\r\n.\r\n"));
	smtp_session_sent(s, len - 2);
	smtp_session_abort(s, "connection reset", false);
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.in_doubt);
	smtp_session_free(&s);
}

/* take_all - everything the session wants to send now, as sent */
static void take_all(struct smtp_session *s, struct buf *into,
		     size_t *largest)
{
	const char *out;
	size_t len;

	for (;;) {
		smtp_session_output(s, &out, &len);
		if (len == 0)
			return;
		if (len > *largest)
			*largest = len;
		buf_append(into, out, len);
		smtp_session_sent(s, len);
	}
}

/*
 * A large body goes out a piece at a time from the caller's message:
 * no output larger than a piece, the bytes those of a one-pass
 * conversion, nothing else written in the middle of it, and a reply is
 * matched to the end of data only once all of it went - with BDAT and
 * with DATA.
 */
static void test_large_body_in_pieces(void **state)
{
	size_t n = 3 * 1024 * 1024 + 17, largest;
	char *big = malloc(n + 1);
	struct smtp_message m1, m2 = msg(rcpts_d, 1, "small\r\n", (void *)2);
	struct buf got = BUF_INIT, want = BUF_INIT;
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	struct smtp_session *s;
	struct smtp_event ev;
	const char *out;
	size_t len;
	char head[64];

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = i % 77 == 76 ? '\n' : i % 77 == 0 ? '.' : 'x';
	big[n] = '\0';	/* msg() takes its length */
	m1 = msg(rcpts_d, 1, big, (void *)1);
	m1.len = n;

	/* BDAT: the length announced is the whole converted body */
	s = ready_with(p, chunking_ehlo);
	assert_int_equal(smtp_session_submit(s, &m1), 0);
	assert_int_equal(smtp_session_submit(s, &m2), 0);
	smtp_session_output(s, &out, &len);
	assert_true(len < 300 * 1024);
	dotstuff_crlf(&want, big, n);
	snprintf(head, sizeof(head), "BDAT %zu LAST\r\n", want.len);
	assert_non_null(memmem(out, len, head, strlen(head)));
	largest = 0;
	take_all(s, &got, &largest);
	assert_true(largest <= 256 * 1024 + 128);
	/* the body, then (only then) the second message's commands */
	{
		static const char tail[] = "RSET\r\nMAIL FROM:<a@x.example>\r\n"
			"RCPT TO:<d@y.example>\r\nBDAT 7 LAST\r\nsmall\r\n";
		size_t tl = sizeof(tail) - 1;

		assert_true(got.len > want.len + tl);
		assert_memory_equal(got.data + got.len - tl, tail, tl);
		assert_memory_equal(got.data + got.len - tl - want.len,
				    want.data, want.len);
	}
	feed(s, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as A\r\n");
	next_event(s, SMTP_EV_RCPT);
	ev = next_event(s, SMTP_EV_DONE);
	assert_ptr_equal(ev.ctx, (void *)1);
	assert_true(ev.sent);
	smtp_session_free(&s);

	/* DATA: dot-stuffed in pieces; half sent when the line drops: not
	 * in doubt; a reply before the end: out of step */
	buf_reset(&got);
	buf_reset(&want);
	dotstuff_data(&want, big, n);
	s = ready(pipelining_ehlo);
	assert_int_equal(smtp_session_submit(s, &m1), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed_unsent(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	smtp_session_output(s, &out, &len);
	assert_true(len <= 256 * 1024 + 8);
	smtp_session_sent(s, len);
	smtp_session_output(s, &out, &len);
	assert_true(len > 0);
	feed_unsent(s, "250 2.0.0 too soon\r\n");
	ev = next_event(s, SMTP_EV_DONE);
	assert_false(ev.sent);
	assert_false(ev.in_doubt);
	next_event(s, SMTP_EV_FAILED);
	smtp_session_free(&s);

	/* all of it sent, no reply: in doubt; the bytes are right */
	s = ready(pipelining_ehlo);
	assert_int_equal(smtp_session_submit(s, &m1), 0);
	out_is(s, "MAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\n"
		  "DATA\r\n");
	feed_unsent(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	next_event(s, SMTP_EV_RCPT);
	largest = 0;
	take_all(s, &got, &largest);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	smtp_session_abort(s, "no reply within 600 s", false);
	ev = next_event(s, SMTP_EV_DONE);
	assert_true(ev.in_doubt);
	smtp_session_free(&s);

	buf_free(&got);
	buf_free(&want);
	free(big);
}

/*
 * With CHUNKING, messages waiting in the window behind a large body (one
 * written from the message itself, or one converted in pieces) each go
 * with their own body once it is out: every "BDAT n LAST" is followed by
 * its n bytes, never by the next message's commands.
 */
static void test_bdat_window_behind_large_body(void **state)
{
	struct smtp_session_params p = { .pipelining = true,
					 .chunking = true };
	struct smtp_message m[4];
	struct buf got = BUF_INIT, want = BUF_INIT, conv = BUF_INIT;
	struct smtp_session *s;
	struct smtp_event ev;
	size_t direct_len, pieces_len = 300 * 1024, largest;
	char *direct = big_body(&direct_len);
	char *pieces = malloc(pieces_len + 1);

	(void)state;
	assert_non_null(pieces);
	/* bare LF line ends: converted, a piece at a time */
	for (size_t i = 0; i < pieces_len; i++)
		pieces[i] = i % 70 == 69 ? '\n' : 'p';
	pieces[pieces_len] = '\0';
	for (int kind = 0; kind < 2; kind++) {
		const char *body = kind ? pieces : direct;

		buf_reset(&conv);
		if (kind)
			dotstuff_crlf(&conv, pieces, pieces_len);
		else
			buf_append(&conv, direct, direct_len);
		s = ready_with(p, chunking_ehlo);
		for (int i = 0; i < 4; i++) {
			m[i] = msg(rcpts_d, 1, body, (void *)(uintptr_t)(i + 1));
			if (kind)
				m[i].len = pieces_len;
			else
				m[i].stuffed = true;
			assert_int_equal(smtp_session_submit(s, &m[i]), 0);
		}
		buf_reset(&got);
		largest = 0;
		take_all(s, &got, &largest);
		buf_reset(&want);
		for (int i = 0; i < 4; i++) {
			buf_printf(&want, "%sMAIL FROM:<a@x.example>\r\n"
				   "RCPT TO:<d@y.example>\r\nBDAT %zu LAST\r\n",
				   i ? "RSET\r\n" : "", conv.len);
			buf_append(&want, conv.data, conv.len);
		}
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.data, want.data, want.len);
		feed_unsent(s, "250 ok\r\n250 ok\r\n250 one\r\n");
		for (int i = 1; i < 4; i++)
			feed_unsent(s, "250 reset\r\n250 ok\r\n250 ok\r\n"
				    "250 queued\r\n");
		for (int i = 0; i < 4; i++) {
			next_event(s, SMTP_EV_RCPT);
			ev = next_event(s, SMTP_EV_DONE);
			assert_ptr_equal(ev.ctx, (void *)(uintptr_t)(i + 1));
			assert_true(ev.sent);
		}
		smtp_session_free(&s);
	}
	buf_free(&got);
	buf_free(&want);
	buf_free(&conv);
	free(direct);
	free(pieces);
}

/* 534: this mechanism is too weak; the next one offered is tried */
static void test_auth_534_next_mechanism(void **state)
{
	struct smtp_session *s =
		session_with(SMTP_TLS_IMPLICIT, "alice", false);
	struct smtp_event ev;

	(void)state;
	feed(s, "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n");
	out_is(s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	feed(s, "534 5.7.9 Authentication mechanism is too weak\r\n");
	out_is(s, "AUTH LOGIN\r\n");
	feed(s, "334 VXNlcm5hbWU6\r\n");
	out_is(s, "YWxpY2U=\r\n");
	feed(s, "334 UGFzc3dvcmQ6\r\n");
	out_is(s, "c2VjcmV0\r\n");
	feed(s, "235 2.7.0 ok\r\n");
	next_event(s, SMTP_EV_READY);
	smtp_session_free(&s);

	/* every mechanism too weak: a permanent failure that says so */
	s = session_with(SMTP_TLS_IMPLICIT, "alice", false);
	feed(s, "250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n");
	out_is(s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	feed(s, "534 5.7.9 too weak\r\n");
	out_is(s, "AUTH LOGIN\r\n");
	feed(s, "534 5.7.9 too weak\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	assert_non_null(strstr(ev.error, "too weak"));
	out_is(s, "");
	smtp_session_free(&s);
}

/* RFC 4954 4: a challenge that is not base64 is answered "*" */
static void test_auth_challenge_not_base64(void **state)
{
	struct smtp_session *s =
		session_with(SMTP_TLS_IMPLICIT, "alice", false);
	struct smtp_event ev;

	(void)state;
	feed(s, "250-mx.example\r\n250 AUTH LOGIN\r\n");
	out_is(s, "AUTH LOGIN\r\n");
	feed(s, "334 Username?\r\n");
	out_is(s, "*\r\n");
	feed(s, "501 5.7.0 authentication cancelled\r\n");
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	assert_non_null(strstr(ev.error, "not base64"));
	smtp_session_free(&s);

	/* an empty challenge is valid base64 */
	s = session_with(SMTP_TLS_IMPLICIT, "alice", false);
	feed(s, "250-mx.example\r\n250 AUTH LOGIN\r\n");
	out_is(s, "AUTH LOGIN\r\n");
	feed(s, "334 \r\n");
	out_is(s, "YWxpY2U=\r\n");
	smtp_session_free(&s);
}

/*
 * 530 to MAIL: the server wants AUTH.  The session ends for good, the
 * messages come back unsent and not in doubt, FAILED carries the 530.
 */
static void test_530_stops(void **state)
{
	struct smtp_session *s = ready(pipelining_ehlo);
	struct smtp_message m1 = msg(rcpts_d, 1, "one\r\n", (void *)1);
	struct smtp_message m2 = msg(rcpts_d, 1, "two\r\n", (void *)2);
	struct smtp_event ev;

	(void)state;
	smtp_session_submit(s, &m1);
	smtp_session_submit(s, &m2);
	feed(s, "530 5.7.0 Authentication required\r\n");
	for (int i = 1; i <= 2; i++) {
		ev = next_event(s, SMTP_EV_DONE);
		assert_false(ev.sent);
		assert_false(ev.in_doubt);
		assert_true(ev.local);
		assert_int_equal(ev.step, SMTP_STEP_SESSION);
		assert_int_equal(ev.code / 100, 4);
	}
	ev = next_event(s, SMTP_EV_FAILED);
	assert_true(ev.permanent);
	assert_int_equal(ev.code, 530);
	assert_int_equal(ev.step, SMTP_STEP_MAIL);
	assert_non_null(strstr(ev.error, "requires authentication"));
	smtp_session_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_across_messages),
		cmocka_unit_test(test_354_without_recipients),
		cmocka_unit_test(test_mail_refused_pipelined),
		cmocka_unit_test(test_lockstep),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_refused_greeting),
		cmocka_unit_test(test_421),
		cmocka_unit_test(test_out_of_step),
		cmocka_unit_test(test_reply_with_nothing_outstanding),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_starttls_required),
		cmocka_unit_test(test_auth_plain_needs_tls),
		cmocka_unit_test(test_auth_login_and_535),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_smtputf8),
		cmocka_unit_test(test_8bitmime),
		cmocka_unit_test(test_limits_rcptmax),
		cmocka_unit_test(test_too_many_recipients),
		cmocka_unit_test(test_too_many_plain_and_552),
		cmocka_unit_test(test_too_many_lockstep),
		cmocka_unit_test(test_too_many_then_mail_refused),
		cmocka_unit_test(test_split_lost_and_spent),
		cmocka_unit_test(test_too_many_bdat),
		cmocka_unit_test(test_spent),
		cmocka_unit_test(test_bdat_window),
		cmocka_unit_test(test_stuffed),
		cmocka_unit_test(test_stuffed_direct),
		cmocka_unit_test(test_bdat_window_behind_large_body),
		cmocka_unit_test(test_mail_503_retried),
		cmocka_unit_test(test_bdat_split_everywhere),
		cmocka_unit_test(test_waiting),
		cmocka_unit_test(test_transcript),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_injection_refused),
		cmocka_unit_test(test_8bit_without_either),
		cmocka_unit_test(test_421_when_idle),
		cmocka_unit_test(test_shifted_reply_caught),
		cmocka_unit_test(test_done_carries_rcpt_refusal),
		cmocka_unit_test(test_lockstep_mail_refused),
		cmocka_unit_test(test_auth_edges),
		cmocka_unit_test(test_greeting_not_220),
		cmocka_unit_test(test_auth_534_next_mechanism),
		cmocka_unit_test(test_auth_challenge_not_base64),
		cmocka_unit_test(test_530_stops),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_step_of_a_local_refusal),
		cmocka_unit_test(test_state_trace),
		cmocka_unit_test(test_reply_before_sent),
		cmocka_unit_test(test_shifted_reply_without_the_capability),
		cmocka_unit_test(test_no_overlap_without_enhanced_codes),
		cmocka_unit_test(test_in_doubt_only_when_sent),
		cmocka_unit_test(test_large_body_in_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
