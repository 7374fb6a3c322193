/*
 * test_sink - the sink's fault-file parser and its protocol state
 * machine, by byte strings: every conversation is a list of client
 * writes; the session's replies, pauses, TLS handshakes, stored messages
 * and JSON records are collected and compared whole.  Conversations are
 * also replayed with every write split at every byte, and one byte at a
 * time, and must not change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "sink_faults.h"
#include "sink_session.h"

/* --- a conversation harness ---------------------------------------------- */

struct conv {
	struct sink_params p;
	struct sink_faults *f;
	struct sink_session *s;
	struct buf pending;	/* fed, not yet consumed */
	struct buf out;		/* replies, with <delay N> and <tls> marks */
	struct buf stored;	/* every stored message, each ended by '|' */
	struct buf records;
	unsigned stores;
	bool closed;
};

static struct sink_params params(void)
{
	struct sink_params p = {
		.hostname = "sink.test", .pipelining = true,
		.chunking = true, .smtputf8 = true, .eightbitmime = true,
		.store = true, .log = true,
	};

	return p;
}

static void conv_collect(struct conv *c)
{
	const char *d;
	size_t n;

	sink_session_output(c->s, &d, &n);
	buf_append(&c->out, d, n);
	sink_session_sent(c->s);
	sink_session_records(c->s, &d, &n);
	buf_append(&c->records, d, n);
	sink_session_records_taken(c->s);
}

/*
 * conv_drive - act as the sink's I/O loop does, until it wants input;
 * off: what the call that returned act consumed of c->pending
 */
static void conv_drive(struct conv *c, enum sink_action act, size_t off)
{
	size_t used;

	for (;;) {
		const char *d;
		size_t n;

		conv_collect(c);
		switch (act) {
		case SINK_MORE:
			if (off > 0) {
				memmove(c->pending.data, c->pending.data + off,
					c->pending.len - off);
				buf_truncate(&c->pending, c->pending.len - off);
			}
			return;
		case SINK_CLOSE:
			c->closed = true;
			buf_reset(&c->pending);
			return;
		case SINK_DELAY:
			buf_printf(&c->out, "<delay %u>",
				   sink_session_delay_ms(c->s));
			sink_session_delay_done(c->s);
			break;
		case SINK_STORE:
			sink_session_message(c->s, &d, &n);
			buf_append(&c->stored, d, n);
			buf_putc(&c->stored, '|');
			c->stores++;
			act = sink_session_stored(c->s, "new/m");
			if (act != SINK_MORE)
				continue;
			break;
		case SINK_STARTTLS:
			buf_append_str(&c->out, "<tls>");
			off = c->pending.len;	/* RFC 3207: dropped */
			sink_session_tls_done(c->s);
			break;
		}
		act = sink_session_feed(c->s, c->pending.data + off,
					c->pending.len - off, &used);
		off += used;
	}
}

static struct conv *conv_new(const struct sink_params *p,
			     const char *faults)
{
	struct conv *c = calloc(1, sizeof(*c));
	const char *err = NULL;

	c->p = *p;
	if (faults != NULL) {
		if (sink_faults_parse("t", faults, strlen(faults), &c->f,
				      &err) < 0)
			fail_msg("faults: %s", err);
		c->p.faults = c->f;
	}
	c->s = sink_session_new(&c->p, 1, false);
	conv_drive(c, sink_session_start(c->s), 0);
	return c;
}

static void conv_send(struct conv *c, const char *data, size_t len)
{
	enum sink_action act;
	size_t used;

	if (c->closed)
		return;
	buf_append(&c->pending, data, len);
	act = sink_session_feed(c->s, c->pending.data, c->pending.len, &used);
	conv_drive(c, act, used);
}

static void conv_free(struct conv *c)
{
	sink_session_free(&c->s);
	sink_faults_free(&c->f);
	buf_free(&c->pending);
	buf_free(&c->out);
	buf_free(&c->stored);
	buf_free(&c->records);
	free(c);
}

/* conv_take - the replies so far as a string; forget them */
static const char *conv_take(struct conv *c)
{
	static char copy[16384];

	snprintf(copy, sizeof(copy), "%s", buf_cstr(&c->out));
	buf_reset(&c->out);
	return copy;
}

#define SEND(c, str) conv_send((c), (str), strlen(str))

/* EXPECT - the next replies must be exactly want */
#define EXPECT(c, want) assert_string_equal(conv_take(c), (want))

static const char greeting[] = "220 sink.test ESMTP volley sink\r\n";
static const char ehlo_all[] =
	"250-sink.test Hello client.test\r\n"
	"250-PIPELINING\r\n"
	"250-SIZE\r\n"
	"250-8BITMIME\r\n"
	"250-SMTPUTF8\r\n"
	"250-ENHANCEDSTATUSCODES\r\n"
	"250 CHUNKING\r\n";

/* conv_ready - a session past EHLO */
static struct conv *conv_ready(const struct sink_params *p,
			       const char *faults)
{
	struct conv *c = conv_new(p, faults);

	SEND(c, "EHLO client.test\r\n");
	conv_take(c);
	return c;
}

/* --- the fault file ------------------------------------------------------- */

static void test_faults_good(void **state)
{
	static const char text[] =
		"# a comment\n"
		"\n"
		"rcpt *@defer.test 451 4.3.0 try again later\n"
		"rcpt *@full.test msg=2 452 mailbox full\r\n"
		"mail <> 550 5.7.1 no bounces\n"
		"message *@x.test delay 250 554 5.6.0 no\n"
		"message msg=3 drop 100\n"
		"data 354 go ahead\n"
		"quit silent\n"
		"noop malformed 2x0 bad\n"
		"rset overlong 4000\n"
		"ehlo conn=2 502 5.5.1 HELO please\n"
		"greeting delay 10\n"
		"close-after 5\n"
		"starttls-inject 250 injected\n";
	struct sink_faults *f = NULL;
	const char *err = NULL;
	const struct sink_rule *r, *cr = NULL;
	const char *addr;

	(void)state;
	if (sink_faults_parse("f", text, sizeof(text) - 1, &f, &err) < 0)
		fail_msg("%s", err);
	assert_int_equal(sink_faults_count(f), 11);
	r = sink_faults_rule(f, 0);
	assert_int_equal(r->cmd, SINK_CMD_RCPT);
	assert_string_equal(r->pattern, "*@defer.test");
	assert_int_equal(r->code, 451);
	assert_string_equal(r->enhanced, "4.3.0");
	assert_string_equal(r->text, "try again later");
	assert_int_equal(r->line, 3);
	r = sink_faults_rule(f, 1);
	assert_int_equal(r->msg, 2);
	assert_string_equal(r->enhanced, "4.0.0");	/* the default */
	assert_string_equal(r->text, "mailbox full");
	r = sink_faults_rule(f, 2);
	assert_string_equal(r->pattern, "");		/* <> */
	r = sink_faults_rule(f, 3);
	assert_int_equal(r->delay_ms, 250);
	assert_int_equal(r->action, SINK_FAULT_REPLY);
	r = sink_faults_rule(f, 4);
	assert_int_equal(r->action, SINK_FAULT_DROP);
	assert_int_equal(r->drop_after, 100);
	r = sink_faults_rule(f, 5);
	assert_int_equal(r->code, 354);
	assert_string_equal(r->enhanced, "");
	assert_int_equal(sink_faults_rule(f, 6)->action, SINK_FAULT_SILENT);
	r = sink_faults_rule(f, 7);
	assert_int_equal(r->action, SINK_FAULT_MALFORMED);
	assert_string_equal(r->text, "2x0 bad");
	assert_int_equal(sink_faults_rule(f, 8)->length, 4000);
	assert_int_equal(sink_faults_rule(f, 9)->conn, 2);
	r = sink_faults_rule(f, 10);
	assert_int_equal(r->action, SINK_FAULT_NORMAL);
	assert_int_equal(r->delay_ms, 10);
	assert_int_equal(sink_faults_close_after(f, &cr), 5);
	assert_int_equal(cr->code, 421);
	assert_string_equal(sink_faults_starttls_inject(f), "250 injected");

	/* matching: first rule wins, conditions hold */
	addr = "Bob@DEFER.test";
	r = sink_faults_match(f, SINK_CMD_RCPT, &addr, 1, 1, 1);
	assert_non_null(r);
	assert_int_equal(r->line, 3);
	addr = "bob@full.test";
	assert_null(sink_faults_match(f, SINK_CMD_RCPT, &addr, 1, 1, 1));
	assert_non_null(sink_faults_match(f, SINK_CMD_RCPT, &addr, 1, 2, 1));
	addr = "";
	assert_non_null(sink_faults_match(f, SINK_CMD_MAIL, &addr, 1, 1, 1));
	addr = "a@b";
	assert_null(sink_faults_match(f, SINK_CMD_MAIL, &addr, 1, 1, 1));
	assert_null(sink_faults_match(f, SINK_CMD_EHLO, NULL, 0, 1, 1));
	assert_non_null(sink_faults_match(f, SINK_CMD_EHLO, NULL, 0, 1, 2));
	assert_null(sink_faults_match(NULL, SINK_CMD_EHLO, NULL, 0, 1, 2));
	sink_faults_free(&f);
	assert_null(f);
}

static void test_faults_errors(void **state)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{ "rcptt x 451\n", "f:1: unknown command 'rcptt'" },
		{ "\n# ok\nrcpt *@x\n", "f:3: rcpt rule does nothing" },
		{ "rcpt *@x 451 5.1.1 no\n", "f:1: enhanced code 5.1.1 does "
		  "not go with reply code 451" },
		{ "rcpt 354 go\n", "f:1: reply code 354: 3xx is only for "
		  "data" },
		{ "data 250 ok\n", "f:1: reply code 250: data takes 354" },
		{ "rcpt a b 451\n", "f:1: a second pattern 'b'" },
		{ "ehlo *@x 502\n", "f:1: '*@x' is not a condition or action "
		  "for ehlo" },
		{ "rcpt msg=0 451\n", "f:1: msg= takes a message number" },
		{ "rcpt conn=x 451\n", "f:1: conn= takes a connection number" },
		{ "rcpt delay x\n", "f:1: delay takes milliseconds" },
		{ "rcpt delay\n", "f:1: delay takes milliseconds" },
		{ "rcpt silent 451\n", "f:1: unexpected '451' after the "
		  "action" },
		{ "rcpt overlong 10\n", "f:1: overlong takes a line length" },
		{ "rcpt drop 10\n", "f:1: drop N (after N bytes of content) "
		  "is for data, bdat and message" },
		{ "message drop x\n", "f:1: drop takes a number of content "
		  "bytes" },
		{ "close-after\n", "f:1: close-after needs a number" },
		{ "close-after 2 250 ok\n", "f:1: close-after: '250' is not a "
		  "4xx or 5xx" },
		{ "close-after 2\nclose-after 3\n", "f:2: close-after is given "
		  "twice" },
		{ "starttls-inject\n", "f:1: starttls-inject needs the text" },
		{ "starttls-inject a\nstarttls-inject b\n", "f:2: "
		  "starttls-inject is given twice" },
		{ "rcpt a\001b 451\n", "f:1: control character in pattern" },
		{ "ok\n", "f:1: unknown command 'ok'" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sink_faults *f = NULL;
		const char *err = NULL;

		if (sink_faults_parse("f", cases[i].text,
				      strlen(cases[i].text), &f, &err) == 0)
			fail_msg("'%s' parsed", cases[i].text);
		if (strncmp(err, cases[i].error,
			    strlen(cases[i].error)) != 0)
			fail_msg("'%s': got '%s', wanted '%s...'",
				 cases[i].text, err,
				 cases[i].error);
		assert_null(f);
	}
}

static void test_faults_load(void **state)
{
	struct sink_faults *f = NULL;
	const char *err = NULL;

	(void)state;
	assert_int_equal(sink_faults_load("/nonexistent/faults", &f, &err),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/faults: "));
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(sink_glob("*@x.test", "a@x.test"));
	assert_true(sink_glob("*@x.test", "A@X.TEST"));
	assert_false(sink_glob("*@x.test", "a@x.test.org"));
	assert_true(sink_glob("a?c", "abc"));
	assert_false(sink_glob("a?c", "ac"));
	assert_true(sink_glob("*", ""));
	assert_true(sink_glob("a*b*c", "aXXbYYbZc"));
	assert_false(sink_glob("a*b*c", "aXXbYY"));
	assert_true(sink_glob("", ""));
	assert_false(sink_glob("", "a"));
	assert_true(sink_glob("**x", "abx"));
}

/* --- the protocol ---------------------------------------------------------- */

static void test_basic(void **state)
{
	struct sink_params p = params();
	struct conv *c = conv_new(&p, NULL);

	(void)state;
	EXPECT(c, greeting);
	SEND(c, "EHLO client.test\r\n");
	EXPECT(c, ehlo_all);
	SEND(c, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
		"RCPT TO:<c@y.test>\r\nDATA\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "250 2.1.5 Recipient ok\r\n"
		  "354 End data with <CR><LF>.<CR><LF>\r\n");
	/* the body, its end and the next transaction in one write */
	SEND(c, "Subject: x\r\n\r\n..dot\r\n..\r\n...two\r\nbare\rcr\n"
		"\r\n.\r\nMAIL FROM:<>\r\nRSET\r\nNOOP\r\nQUIT\r\n");
	EXPECT(c, "250 2.0.0 Ok: queued as new/m\r\n250 2.1.0 Sender ok\r\n"
		  "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n");
	assert_string_equal(buf_cstr(&c->stored),
			    "Subject: x\r\n\r\n.dot\r\n.\r\n..two\r\n"
			    "bare\rcr\n\r\n|");
	assert_true(c->closed);
	assert_string_equal(buf_cstr(&c->records),
		"{\"conn\":1,\"msg\":1,\"helo\":\"client.test\",\"tls\":false,"
		"\"auth\":false,\"from\":\"a@x.test\",\"mail_code\":250,"
		"\"rcpts\":[{\"to\":\"b@y.test\",\"code\":250},"
		"{\"to\":\"c@y.test\",\"code\":250}],\"accepted\":2,"
		"\"refused\":0,\"body\":\"DATA\",\"size\":40,\"code\":250,"
		"\"file\":\"new/m\",\"end\":\"eod\"}\n"
		"{\"conn\":1,\"msg\":2,\"helo\":\"client.test\",\"tls\":false,"
		"\"auth\":false,\"from\":\"\",\"mail_code\":250,\"rcpts\":[],"
		"\"accepted\":0,\"refused\":0,\"body\":null,\"size\":0,"
		"\"code\":0,\"file\":null,\"end\":\"rset\"}\n");
	assert_int_equal(sink_session_stats(c->s)->messages, 1);
	assert_int_equal(sink_session_stats(c->s)->recipients, 2);
	assert_int_equal(sink_session_stats(c->s)->bytes, 40);
	conv_free(c);
}

/*
 * The conversation of test_basic plus BDAT, as client writes; replayed
 * whole, with each write split in two at every byte, and one byte at a
 * time: the replies and the stored messages must not change.
 */
static const char *const split_writes[] = {
	"EHLO client.test\r\n",
	"MAIL FROM:<a@x.test> SIZE=100 BODY=8BITMIME\r\n"
	"RCPT TO:<b@y.test>\r\nDATA\r\n",
	"..one\r\n\r\n..x\r\n.\r\n"
	"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
	"BDAT 7\r\n.\r\n.\r\nxBDAT 3 LAST\r\nabc"
	"MAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\nBDAT 0 LAST\r\n",
	"QUIT\r\n",
};

static void split_run(size_t which, size_t at, bool bytewise,
		      struct buf *out, struct buf *stored)
{
	struct sink_params p = params();
	struct conv *c = conv_new(&p, NULL);

	for (size_t i = 0; i < sizeof(split_writes) / sizeof(*split_writes);
	     i++) {
		const char *w = split_writes[i];
		size_t n = strlen(w);

		if (bytewise) {
			for (size_t k = 0; k < n; k++)
				conv_send(c, w + k, 1);
		} else if (i == which) {
			conv_send(c, w, at);
			conv_send(c, w + at, n - at);
		} else {
			conv_send(c, w, n);
		}
	}
	buf_append(out, c->out.data, c->out.len);
	buf_append(stored, c->stored.data, c->stored.len);
	conv_free(c);
}

static void test_split_everywhere(void **state)
{
	struct buf out0 = BUF_INIT, st0 = BUF_INIT;

	(void)state;
	split_run(99, 0, false, &out0, &st0);
	assert_string_equal(buf_cstr(&out0),
		"220 sink.test ESMTP volley sink\r\n"
		"250-sink.test Hello client.test\r\n250-PIPELINING\r\n"
		"250-SIZE\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
		"250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n"
		"250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		"354 End data with <CR><LF>.<CR><LF>\r\n"
		"250 2.0.0 Ok: queued as new/m\r\n"
		"250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		"250 2.0.0 7 octets received\r\n"
		"250 2.0.0 Ok: queued as new/m\r\n"
		"250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		"250 2.0.0 Ok: queued as new/m\r\n221 2.0.0 Bye\r\n");
	assert_string_equal(buf_cstr(&st0),
			    ".one\r\n\r\n.x\r\n|.\r\n.\r\nxabc||");
	for (size_t w = 0; w < sizeof(split_writes) / sizeof(*split_writes);
	     w++) {
		for (size_t at = 1; at < strlen(split_writes[w]); at++) {
			struct buf out = BUF_INIT, st = BUF_INIT;

			split_run(w, at, false, &out, &st);
			if (strcmp(buf_cstr(&out), buf_cstr(&out0)) != 0 ||
			    strcmp(buf_cstr(&st), buf_cstr(&st0)) != 0)
				fail_msg("write %zu split at %zu:\n%s\n%s", w,
					 at, buf_cstr(&out), buf_cstr(&st));
			buf_free(&out);
			buf_free(&st);
		}
	}
	{
		struct buf out = BUF_INIT, st = BUF_INIT;

		split_run(99, 0, true, &out, &st);
		assert_string_equal(buf_cstr(&out), buf_cstr(&out0));
		assert_string_equal(buf_cstr(&st), buf_cstr(&st0));
		buf_free(&out);
		buf_free(&st);
	}
	buf_free(&out0);
	buf_free(&st0);
}

static void test_sequence_errors(void **state)
{
	struct sink_params p = params();
	struct conv *c = conv_new(&p, NULL);

	(void)state;
	conv_take(c);
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "503 5.5.1 EHLO or HELO first\r\n");
	SEND(c, "HELO client.test\r\n");
	EXPECT(c, "250 sink.test Hello client.test\r\n");
	SEND(c, "MAIL FROM:<a@x> SIZE=10\r\n");
	EXPECT(c, "555 5.5.4 Parameters need EHLO\r\n");
	SEND(c, "EHLO client.test\r\n");
	conv_take(c);
	SEND(c, "RCPT TO:<b@y>\r\n");
	EXPECT(c, "503 5.5.1 MAIL first\r\n");
	SEND(c, "DATA\r\n");
	EXPECT(c, "503 5.5.1 MAIL first\r\n");
	SEND(c, "MAIL FROM:a@x\r\n");
	EXPECT(c, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
	SEND(c, "MAIL FROM:<a@x> FOO=1\r\n");
	EXPECT(c, "555 5.5.4 Unsupported parameter FOO=1\r\n");
	SEND(c, "MAIL FROM:<\xc3\xa9@x>\r\n");
	EXPECT(c, "553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n");
	SEND(c, "MAIL FROM:<\xc3\xa9@x> SMTPUTF8\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "503 5.5.1 Nested MAIL command\r\n");
	SEND(c, "RCPT TO:<>\r\n");
	EXPECT(c, "501 5.1.3 Bad recipient address syntax\r\n");
	SEND(c, "RCPT TO:<b@y> NOTIFY=NEVER\r\n");
	EXPECT(c, "555 5.5.4 Unsupported parameter NOTIFY=NEVER\r\n");
	SEND(c, "DATA\r\n");
	EXPECT(c, "554 5.5.1 No valid recipients\r\n");
	SEND(c, "BDAT 3 LAST\r\nabc");
	EXPECT(c, "503 5.5.1 No valid recipients\r\n");
	SEND(c, "RCPT TO:<\"q >\"@y>\r\n");
	EXPECT(c, "250 2.1.5 Recipient ok\r\n");
	SEND(c, "BDAT 2\r\nab");
	EXPECT(c, "250 2.0.0 2 octets received\r\n");
	SEND(c, "DATA\r\n");
	EXPECT(c, "503 5.5.1 DATA after BDAT\r\n");
	SEND(c, "RCPT TO:<c@y>\r\n");
	EXPECT(c, "503 5.5.1 RCPT after BDAT\r\n");
	SEND(c, "BDAT x\r\n");
	EXPECT(c, "501 5.5.4 Syntax: BDAT size [LAST]\r\n");
	SEND(c, "BDAT 1 LAST\r\nc");
	EXPECT(c, "250 2.0.0 Ok: queued as new/m\r\n");
	assert_string_equal(buf_cstr(&c->stored), "abc|");
	SEND(c, "BDAT 1\r\nc");
	EXPECT(c, "503 5.5.1 MAIL first\r\n");
	SEND(c, "FOO\r\nVRFY x\r\nEXPN x\r\nHELP\r\n");
	EXPECT(c, "500 5.5.2 Command unrecognized\r\n"
		  "252 2.1.5 Cannot VRFY user, but will accept the message\r\n"
		  "502 5.5.1 Command not implemented\r\n"
		  "214 2.0.0 volley sink: a test SMTP server\r\n");
	conv_send(c, "NO\0OP\r\n", 7);
	EXPECT(c, "500 5.5.2 NUL in command\r\n");
	SEND(c, "STARTTLS\r\n");
	EXPECT(c, "502 5.5.1 STARTTLS not available\r\n");
	SEND(c, "AUTH PLAIN\r\n");
	EXPECT(c, "502 5.5.1 AUTH not available\r\n");
	conv_free(c);
}

/*
 * Verbs in any case, and words that only look like one (sink_verb_of
 * compares four bytes at once); the numbers of the replies every message
 * gets (made without snprintf), zero among them; BDAT's sizes (parsed
 * without strtoull) and paths (most bytes skipped by a table).
 */
static void test_verbs_and_numbers(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	p.store = false;
	c = conv_ready(&p, NULL);
	SEND(c, "mAiL FROM:<a@x>\r\nRcPt TO:<b@y>\r\nbdat 0\r\n"
	     "BdAt 3 LAST\r\nabc");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "250 2.0.0 0 octets received\r\n250 2.0.0 Ok: 3 bytes\r\n");
	SEND(c, "M@IL FROM:<a@x>\r\nMAI\r\nMAILS\r\nMA\x09L\r\n"
	     "m\xc1il\r\nSTARTTLX\r\n");
	EXPECT(c, "500 5.5.2 Command unrecognized\r\n"
		  "500 5.5.2 Command unrecognized\r\n"
		  "500 5.5.2 Command unrecognized\r\n"
		  "500 5.5.2 Command unrecognized\r\n"
		  "500 5.5.2 Command unrecognized\r\n"
		  "500 5.5.2 Command unrecognized\r\n");
	/* BDAT sizes of 15 digits at most; paths byte by byte */
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
	     "BDAT 0000000000000001234\r\nBDAT 000000000000003 LAST\r\n"
	     "abc");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "501 5.5.4 Syntax: BDAT size [LAST]\r\n"
		  "250 2.0.0 Ok: 3 bytes\r\n");
	SEND(c, "MAIL FROM:<\"a\\\">b\"@x>\r\nRCPT TO:<b c@y>\r\n"
	     "RCPT TO:<b\x7f@y>\r\nRCPT TO:<b\x01@y>\r\nRCPT TO:<b@y\r\n"
	     "RCPT TO:<\"b c\"@y> \r\nRCPT TO:<\xc3\xa9@y>\r\nRSET\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n"
		  "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
		  "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
		  "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
		  "501 5.5.4 Syntax: RCPT TO:<address>\r\n"
		  "250 2.1.5 Recipient ok\r\n"
		  "553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n"
		  "250 2.0.0 Ok\r\n");
	SEND(c, "noop\r\nRSet\r\nstartTLS\r\nvrfy x\r\n");
	EXPECT(c, "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
		  "502 5.5.1 STARTTLS not available\r\n"
		  "252 2.1.5 Cannot VRFY user, but will accept the message\r\n");
	conv_free(c);
}

static void test_line_too_long(void **state)
{
	struct sink_params p = params();
	struct conv *c = conv_ready(&p, NULL);
	char line[3000];

	(void)state;
	memset(line, 'x', sizeof(line));
	/* in pieces, so the session sees it grow past the limit */
	conv_send(c, "NOOP ", 5);
	conv_send(c, line, 600);
	conv_send(c, line, 600);
	EXPECT(c, "");
	conv_send(c, line, sizeof(line));
	SEND(c, "\r\nNOOP\r\n");
	EXPECT(c, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
	/* whole, in one piece */
	memcpy(line, "NOOP ", 5);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	conv_send(c, line, sizeof(line));
	EXPECT(c, "500 5.5.2 Line too long\r\n");
	conv_free(c);
}

static void test_data_with_no_recipient(void **state)
{
	struct sink_params p = params();
	struct conv *c = conv_ready(&p, "rcpt *@bad.test 550 5.1.1 no such "
				    "user\ndata 354 go on anyway\n");

	(void)state;
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@bad.test>\r\nDATA\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n550 5.1.1 no such user\r\n"
		  "354 go on anyway\r\n");
	SEND(c, "body\r\n.\r\n");
	EXPECT(c, "554 5.5.1 No valid recipients\r\n");
	assert_int_equal(c->stores, 0);
	assert_non_null(strstr(buf_cstr(&c->records),
			       "\"rcpts\":[{\"to\":\"b@bad.test\","
			       "\"code\":550}],\"accepted\":0,\"refused\":1,"
			       "\"body\":\"DATA\",\"size\":6,\"code\":554"));
	conv_free(c);
}

static void test_starttls(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	p.starttls = p.tls_configured = true;
	p.auth_user = "u";
	p.auth_pass = "p";
	p.pipelining = false;
	c = conv_ready(&p, NULL);
	SEND(c, "EHLO client.test\r\n");
	EXPECT(c, "250-sink.test Hello client.test\r\n250-SIZE\r\n"
		  "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
		  "250-CHUNKING\r\n250 STARTTLS\r\n");
	SEND(c, "AUTH PLAIN AHUAcA==\r\n");
	EXPECT(c, "538 5.7.11 Encryption required for requested "
		  "authentication mechanism\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "530 5.7.0 Authentication required\r\n");
	/* what comes behind STARTTLS is dropped, never answered */
	SEND(c, "STARTTLS\r\nMAIL FROM:<evil@x>\r\n");
	EXPECT(c, "220 2.0.0 Ready to start TLS\r\n<tls>");
	/* the session starts over: EHLO first, no STARTTLS, AUTH now */
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "503 5.5.1 EHLO or HELO first\r\n");
	SEND(c, "EHLO client.test\r\n");
	EXPECT(c, "250-sink.test Hello client.test\r\n250-SIZE\r\n"
		  "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
		  "250-CHUNKING\r\n250 AUTH PLAIN LOGIN XOAUTH2\r\n");
	SEND(c, "STARTTLS\r\n");
	EXPECT(c, "503 5.5.1 TLS is already active\r\n");
	SEND(c, "AUTH PLAIN AHUAcA==\r\n");
	EXPECT(c, "235 2.7.0 Authentication successful\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n");
	SEND(c, "QUIT\r\n");
	conv_take(c);
	assert_non_null(strstr(buf_cstr(&c->records),
			       "\"tls\":true,\"auth\":true"));
	conv_free(c);
}

static void test_starttls_inject(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	p.starttls = p.tls_configured = true;
	c = conv_ready(&p, "starttls-inject 250 injected\n");
	SEND(c, "STARTTLS\r\n");
	EXPECT(c, "220 2.0.0 Ready to start TLS\r\n250 injected\r\n<tls>");
	conv_free(c);

	c = conv_ready(&p, "starttls 454 4.7.0 TLS not available\n");
	SEND(c, "STARTTLS\r\n");
	EXPECT(c, "454 4.7.0 TLS not available\r\n");
	conv_free(c);
}

static void test_auth(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	p.auth_user = "user";
	p.auth_pass = "secret";
	c = conv_ready(&p, NULL);
	/* PLAIN with a 334: "\0user\0wrong", then the right one */
	SEND(c, "AUTH PLAIN\r\n");
	EXPECT(c, "334 \r\n");
	SEND(c, "AHVzZXIAd3Jvbmc=\r\n");
	EXPECT(c, "535 5.7.8 Authentication credentials invalid\r\n");
	SEND(c, "AUTH PLAIN\r\n");
	SEND(c, "*\r\n");
	EXPECT(c, "334 \r\n501 5.0.0 Authentication cancelled\r\n");
	SEND(c, "AUTH PLAIN !!!!\r\n");
	EXPECT(c, "501 5.5.2 Invalid base64 data\r\n");
	SEND(c, "AUTH CRAM-MD5\r\n");
	EXPECT(c, "504 5.5.4 Unrecognized authentication type\r\n");
	/* LOGIN: user, then password */
	SEND(c, "AUTH LOGIN\r\n");
	EXPECT(c, "334 VXNlcm5hbWU6\r\n");
	SEND(c, "dXNlcg==\r\n");
	EXPECT(c, "334 UGFzc3dvcmQ6\r\n");
	SEND(c, "c2VjcmV0\r\n");
	EXPECT(c, "235 2.7.0 Authentication successful\r\n");
	SEND(c, "AUTH LOGIN dXNlcg==\r\n");
	EXPECT(c, "503 5.5.1 Already authenticated\r\n");
	conv_free(c);

	/* PLAIN with an initial response; authzid must be the user */
	c = conv_ready(&p, NULL);
	SEND(c, "AUTH PLAIN dXNlcgB1c2VyAHNlY3JldA==\r\n");
	EXPECT(c, "235 2.7.0 Authentication successful\r\n");
	conv_free(c);
	c = conv_ready(&p, NULL);
	SEND(c, "AUTH PLAIN b3RoZXIAdXNlcgBzZWNyZXQ=\r\n");
	EXPECT(c, "535 5.7.8 Authentication credentials invalid\r\n");
	conv_free(c);
	/* AUTH LOGIN with the user name on the command line */
	c = conv_ready(&p, NULL);
	SEND(c, "AUTH LOGIN dXNlcg==\r\n");
	EXPECT(c, "334 UGFzc3dvcmQ6\r\n");
	conv_free(c);
	/* the fault: AUTH refused whatever the credentials */
	c = conv_ready(&p, "auth 454 4.7.0 Temporary authentication "
		       "failure\n");
	SEND(c, "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	EXPECT(c, "454 4.7.0 Temporary authentication failure\r\n");
	conv_free(c);
}

/* XOAUTH2: the token is the sink's password; a refusal is a 334 with
 * the reason, then a 535 after the client's empty line */
static void test_auth_xoauth2(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	p.auth_user = "user";
	p.auth_pass = "secret";
	p.log = true;
	c = conv_ready(&p, NULL);
	SEND(c, "EHLO client.test\r\n");
	assert_non_null(strstr(buf_cstr(&c->out), "AUTH PLAIN LOGIN XOAUTH2"));
	buf_reset(&c->out);
	/* "user=user^Aauth=Bearer secret^A^A" */
	SEND(c, "AUTH XOAUTH2 dXNlcj11c2VyAWF1dGg9QmVhcmVyIHNlY3JldAEB\r\n");
	EXPECT(c, "235 2.7.0 Authentication successful\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n");
	SEND(c, "x\r\n.\r\nQUIT\r\n");
	conv_take(c);
	assert_non_null(strstr(buf_cstr(&c->records),
			       "\"auth\":true,\"auth_mechanism\":\"XOAUTH2\""));
	conv_free(c);

	/* without an initial response; a wrong token */
	c = conv_ready(&p, NULL);
	SEND(c, "AUTH XOAUTH2\r\n");
	EXPECT(c, "334 \r\n");
	SEND(c, "dXNlcj11c2VyAWF1dGg9QmVhcmVyIG5vcGUBAQ==\r\n");
	EXPECT(c, "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOi"
		  "JodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n");
	SEND(c, "\r\n");
	EXPECT(c, "535 5.7.8 Authentication credentials invalid\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "530 5.7.0 Authentication required\r\n");
	/* another user with the right token */
	SEND(c, "AUTH XOAUTH2 dXNlcj1vdGhlcgFhdXRoPUJlYXJlciBzZWNyZXQBAQ==\r\n");
	EXPECT(c, "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOi"
		  "JodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n");
	SEND(c, "\r\n");
	EXPECT(c, "535 5.7.8 Authentication credentials invalid\r\n");
	/* not the XOAUTH2 format, and not base64 */
	SEND(c, "AUTH XOAUTH2 dXNlcj11c2VyIGF1dGg9QmVhcmVyIHNlY3JldA==\r\n");
	EXPECT(c, "501 5.5.2 Invalid XOAUTH2 response\r\n");
	SEND(c, "AUTH XOAUTH2 !!!!\r\n");
	EXPECT(c, "501 5.5.2 Invalid base64 data\r\n");
	SEND(c, "AUTH XOAUTH2 =\r\n");
	EXPECT(c, "501 5.5.2 Invalid XOAUTH2 response\r\n");
	SEND(c, "AUTH XOAUTH2 dXNlcj0BAQ==\r\n");	/* "user=^A^A" */
	EXPECT(c, "501 5.5.2 Invalid XOAUTH2 response\r\n");
	conv_free(c);
}

static void test_limits(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	p.rcptmax = 2;
	p.mailmax = 2;
	p.size_max = 10;
	c = conv_new(&p, NULL);
	conv_take(c);
	SEND(c, "EHLO client.test\r\n");
	EXPECT(c, "250-sink.test Hello client.test\r\n250-PIPELINING\r\n"
		  "250-SIZE 10\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
		  "250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n"
		  "250 LIMITS RCPTMAX=2 MAILMAX=2\r\n");
	SEND(c, "MAIL FROM:<a@x> SIZE=11\r\n");
	EXPECT(c, "552 5.3.4 Message size exceeds fixed maximum message "
		  "size\r\n");
	SEND(c, "MAIL FROM:<a@x> SIZE=10\r\nRCPT TO:<b@y>\r\n"
		"RCPT TO:<c@y>\r\nRCPT TO:<d@y>\r\nDATA\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "250 2.1.5 Recipient ok\r\n452 4.5.3 Too many recipients\r\n"
		  "354 End data with <CR><LF>.<CR><LF>\r\n");
	SEND(c, "0123456789X\r\n.\r\n");
	EXPECT(c, "552 5.3.4 Message size exceeds fixed maximum message "
		  "size\r\n");
	assert_int_equal(c->stores, 0);
	/* MAILMAX counts every MAIL, the refused one too */
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "421 4.5.3 Too many transactions in this session "
		  "(MAILMAX 2), closing\r\n");
	assert_true(c->closed);
	conv_free(c);

	/* BDAT over SIZE: refused at the chunk that crosses it */
	c = conv_ready(&p, NULL);
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 8\r\n12345678");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "250 2.0.0 8 octets received\r\n");
	SEND(c, "BDAT 8\r\n12345678");
	EXPECT(c, "552 5.3.4 Message size exceeds fixed maximum message "
		  "size\r\n");
	SEND(c, "BDAT 1 LAST\r\nx");
	EXPECT(c, "503 5.5.1 An earlier BDAT failed: RSET first\r\n");
	conv_free(c);
}

static void test_improper_pipelining(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	p.pipelining = false;
	/* one at a time is fine */
	c = conv_ready(&p, NULL);
	SEND(c, "MAIL FROM:<a@x>\r\n");
	SEND(c, "RCPT TO:<b@y>\r\n");
	SEND(c, "DATA\r\n");
	SEND(c, "x\r\n.\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "354 End data with <CR><LF>.<CR><LF>\r\n"
		  "250 2.0.0 Ok: queued as new/m\r\n");
	/* MAIL with RCPT behind it in the same read */
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
	EXPECT(c, "554 5.5.0 Improper pipelining: MAIL was followed by more "
		  "input before its reply\r\n");
	assert_true(c->closed);
	assert_non_null(strstr(buf_cstr(&c->records),
			       "\"event\":\"improper_pipelining\","
			       "\"command\":\"MAIL\""));
	assert_int_equal(sink_session_stats(c->s)->improper, 1);
	conv_free(c);

	/* the end of data with the next MAIL behind it */
	c = conv_ready(&p, NULL);
	SEND(c, "MAIL FROM:<a@x>\r\n");
	SEND(c, "RCPT TO:<b@y>\r\n");
	SEND(c, "DATA\r\n");
	SEND(c, "x\r\n.\r\nMAIL FROM:<a@x>\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "354 End data with <CR><LF>.<CR><LF>\r\n"
		  "554 5.5.0 Improper pipelining: the end of data was followed "
		  "by more input before its reply\r\n");
	conv_free(c);

	/* with PIPELINING, DATA must still wait for its 354 */
	p.pipelining = true;
	c = conv_ready(&p, NULL);
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nbody\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n"
		  "554 5.5.0 Improper pipelining: DATA was followed by more "
		  "input before its reply\r\n");
	conv_free(c);
}

static void test_faults_replies(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	c = conv_ready(&p,
		"mail bounce@* 550 5.7.1 sender refused\n"
		"rcpt *@defer.test 451 4.3.0 try again later\n"
		"rcpt *@full.test 452 4.2.2 mailbox full\n"
		"rcpt *@gone.test 550 5.1.1 no such user\n"
		"rcpt *@big.test 552 5.2.2 over quota\n"
		"message *@spam.test 554 5.7.1 content refused\n");
	SEND(c, "MAIL FROM:<bounce@x>\r\n");
	EXPECT(c, "550 5.7.1 sender refused\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<a@defer.test>\r\n"
		"RCPT TO:<a@full.test>\r\nRCPT TO:<a@gone.test>\r\n"
		"RCPT TO:<a@big.test>\r\nRCPT TO:<a@spam.test>\r\nDATA\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n451 4.3.0 try again later\r\n"
		  "452 4.2.2 mailbox full\r\n550 5.1.1 no such user\r\n"
		  "552 5.2.2 over quota\r\n250 2.1.5 Recipient ok\r\n"
		  "354 End data with <CR><LF>.<CR><LF>\r\n");
	SEND(c, "x\r\n.\r\n");
	EXPECT(c, "554 5.7.1 content refused\r\n");
	assert_int_equal(c->stores, 0);
	assert_non_null(strstr(buf_cstr(&c->records),
			       "\"from\":\"bounce@x\",\"mail_code\":550"));
	assert_non_null(strstr(buf_cstr(&c->records),
			       "{\"to\":\"a@defer.test\",\"code\":451}"));
	assert_non_null(strstr(buf_cstr(&c->records),
			       "\"accepted\":1,\"refused\":4,\"body\":\"DATA\","
			       "\"size\":3,\"code\":554"));
	conv_free(c);
}

static void test_faults_connection(void **state)
{
	struct sink_params p = params();
	struct conv *c;

	(void)state;
	/* 421 after two messages, at the next MAIL */
	c = conv_ready(&p, "close-after 2\n");
	for (int i = 0; i < 2; i++) {
		SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 1 LAST\r\n"
			"x");
		conv_take(c);
	}
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
	EXPECT(c, "421 4.7.0 Too many messages on this connection, "
		  "closing\r\n");
	assert_true(c->closed);
	conv_free(c);

	/* the connection drops 5 bytes into the second message */
	c = conv_ready(&p, "message msg=2 drop 5\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
	SEND(c, "0123456789\r\n.\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
	conv_take(c);
	SEND(c, "0123456789\r\n.\r\n");
	EXPECT(c, "");
	assert_true(c->closed);
	assert_int_equal(c->stores, 1);
	assert_non_null(strstr(buf_cstr(&c->records),
			       "\"msg\":2,\"helo\":\"client.test\""));
	assert_non_null(strstr(buf_cstr(&c->records), "\"end\":\"dropped\""));
	conv_free(c);

	/* a drop at the end of data, BDAT too */
	c = conv_ready(&p, "message *@drop.test drop\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@drop.test>\r\n"
		"BDAT 3 LAST\r\nabc");
	EXPECT(c, "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n");
	assert_true(c->closed);
	conv_free(c);

	/* delays: the reply before the pause goes first */
	c = conv_ready(&p, "rcpt *@slow.test delay 1500\n"
		       "rcpt *@slower.test delay 20 451 4.3.0 later\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<a@slow.test>\r\n"
		"RCPT TO:<a@slower.test>\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n<delay 1500>"
		  "250 2.1.5 Recipient ok\r\n<delay 20>"
		  "451 4.3.0 later\r\n");
	conv_free(c);

	/* silent: no reply ever again, nothing more read */
	c = conv_ready(&p, "rcpt *@hang.test silent\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<a@hang.test>\r\n"
		"RCPT TO:<b@y>\r\n");
	SEND(c, "QUIT\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n");
	assert_false(c->closed);
	conv_free(c);

	/* malformed and overlong replies */
	c = conv_ready(&p, "mail msg=1 malformed\nmail overlong 3000\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRSET\r\nMAIL FROM:<a@x>\r\n");
	{
		const char *got = conv_take(c);
		const char *third = strstr(got, "250 2.0.0 Ok\r\n");

		assert_non_null(third);
		assert_memory_equal(got, "2x0 malformed reply line\r\n", 26);
		third += 14;
		assert_memory_equal(third, "250 2.1.0 Sender ok xxx", 23);
		assert_int_equal(strlen(third), 3002);
	}
	conv_free(c);

	/* EHLO refused: the client falls back to HELO */
	c = conv_new(&p, "ehlo 502 5.5.1 EHLO not here\n");
	conv_take(c);
	SEND(c, "EHLO client.test\r\n");
	EXPECT(c, "502 5.5.1 EHLO not here\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "503 5.5.1 EHLO or HELO first\r\n");
	SEND(c, "HELO client.test\r\n");
	SEND(c, "MAIL FROM:<a@x>\r\n");
	EXPECT(c, "250 sink.test Hello client.test\r\n250 2.1.0 Sender ok\r\n");
	conv_free(c);

	/* a refused greeting: only QUIT */
	c = conv_new(&p, "greeting 554 5.7.1 go away\n");
	EXPECT(c, "554 5.7.1 go away\r\n");
	SEND(c, "EHLO client.test\r\n");
	EXPECT(c, "503 5.5.1 Bad sequence of commands: only QUIT now\r\n");
	SEND(c, "QUIT\r\n");
	EXPECT(c, "221 2.0.0 Bye\r\n");
	conv_free(c);

	/* a 421 anywhere closes */
	c = conv_ready(&p, "rcpt msg=1 421 4.3.2 shutting down\n");
	SEND(c, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n");
	EXPECT(c, "250 2.1.0 Sender ok\r\n421 4.3.2 shutting down\r\n");
	assert_true(c->closed);
	conv_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_good),
		cmocka_unit_test(test_faults_errors),
		cmocka_unit_test(test_faults_load),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_sequence_errors),
		cmocka_unit_test(test_verbs_and_numbers),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_data_with_no_recipient),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_starttls_inject),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_auth_xoauth2),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_improper_pipelining),
		cmocka_unit_test(test_faults_replies),
		cmocka_unit_test(test_faults_connection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
