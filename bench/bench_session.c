/*
 * bench_session - the SMTP protocol core without I/O (engine/smtp_reply,
 * engine/smtp_session), one core: what it costs in CPU, and how many
 * bytes it puts on the wire each way per message.
 *
 *   bench_session [-s SECONDS] [-n MESSAGES] [-c CHUNK] [-w WINDOW]
 *
 *   -s  seconds per case and round (default 1)
 *   -n  messages per session (default 1000)
 *   -c  bytes per read for the reply parser (default 1448, one TCP
 *       segment's payload)
 *   -w  BDAT messages in flight (default 0: the session's own, 8)
 *
 * Cases:
 *   replies     smtp_reply_parse on the replies of one pipelined session
 *               as a Postfix server writes them: an 11-line EHLO reply,
 *               then per message "250 2.1.0 Ok", "250 2.1.5 Ok", "354 End
 *               data with <CR><LF>.<CR><LF>" and "250 2.0.0 Ok: queued
 *               as ..." (-n messages), handed over CHUNK bytes at a time
 *               (so replies are split across reads): replies per second
 *               and MB/s of replies.
 *   data, bdat  a session of -n messages of 4096 bytes (headers and
 *               76-column text, CRLF, no line starting with '.'), one
 *               recipient each, PIPELINING (data) or PIPELINING and
 *               CHUNKING (bdat), to a server offering PIPELINING, SIZE,
 *               8BITMIME, ENHANCEDSTATUSCODES and CHUNKING that takes
 *               everything.  The caller does what engine/net/smtp_conn.c
 *               does: submits while smtp_session_can_submit, takes the
 *               whole output each turn, feeds the whole answer.
 *
 * The data and bdat sessions are first run against a scripted server
 * written here, which parses what the client writes (commands, the DATA
 * body to its "." line, BDAT chunks by their count), checks the order
 * and the body length, and answers 220/250/354/221 as Postfix words
 * them.  That run gives the bytes per message: what the client wrote
 * (commands and body) and what it consumed (replies) between READY and
 * the last message done, divided by -n; greeting, EHLO and QUIT are
 * counted apart.  It also records the server's answer to each turn.
 * The timed runs then replay those answers to fresh sessions (the
 * session is deterministic: the same answers give the same output,
 * which is checked turn by turn), so the CPU measured is the session's
 * alone - new, EHLO, the messages, QUIT, free - and not the scripted
 * server's.
 *
 * Rates are per CPU-second of this single-threaded process
 * (CLOCK_PROCESS_CPUTIME_ID), with the wall-clock rate beside them.
 * Five rounds run the cases in turn; the summary gives the median of the
 * rounds (min-max), then one "RESULT name value unit" line per figure.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "smtp_reply.h"
#include "smtp_session.h"

#define BENCH_ROUNDS 5
#define BENCH_MSG_SIZE 4096

static void bench_die(const char *what)
{
	fprintf(stderr, "bench_session: %s\n", what);
	exit(1);
}

/* Postfix's words (smtpd.c, cleanup), ENHANCEDSTATUSCODES on. */
static const char greeting[] = "220 mx.sink.example ESMTP Postfix\r\n";
static const char ehlo_reply[] =
	"250-mx.sink.example\r\n"
	"250-PIPELINING\r\n"
	"250-SIZE 10240000\r\n"
	"250-VRFY\r\n"
	"250-ETRN\r\n"
	"250-ENHANCEDSTATUSCODES\r\n"
	"250-8BITMIME\r\n"
	"250-DSN\r\n"
	"250-SMTPUTF8\r\n"
	"250-CHUNKING\r\n"
	"250 2.0.0 Ok\r\n";
static const char mail_ok[] = "250 2.1.0 Ok\r\n";
static const char rcpt_ok[] = "250 2.1.5 Ok\r\n";
static const char rset_ok[] = "250 2.0.0 Ok\r\n";
static const char data_go[] = "354 End data with <CR><LF>.<CR><LF>\r\n";
static const char quit_ok[] = "221 2.0.0 Bye\r\n";

/* queued - "250 2.0.0 Ok: queued as " and a 12-character queue id */
static void queued(struct buf *out, unsigned long id)
{
	buf_printf(out, "250 2.0.0 Ok: queued as %012llX\r\n",
		   (unsigned long long)id * 2654435761ULL & 0xffffffffffffULL);
}

/* --- replies parsed per second ----------------------------------------- */

static struct buf replies_in;
static size_t replies_count;

static void replies_setup(long messages)
{
	buf_append_str(&replies_in, ehlo_reply);
	replies_count = 1;
	for (long i = 0; i < messages; i++) {
		buf_append_str(&replies_in, mail_ok);
		buf_append_str(&replies_in, rcpt_ok);
		buf_append_str(&replies_in, data_go);
		queued(&replies_in, (unsigned long)i);
		replies_count += 4;
	}
}

/* replies_parse_all - parse the whole buffer, chunk bytes per read */
static size_t replies_parse_all(struct smtp_reply_parser *p, size_t chunk)
{
	size_t n = 0, codes = 0;

	for (size_t off = 0; off < replies_in.len; off += chunk) {
		const char *data = replies_in.data + off;
		size_t len = replies_in.len - off < chunk ?
			     replies_in.len - off : chunk;
		const struct smtp_reply *r;
		const char *error;
		int rc;

		while ((rc = smtp_reply_parse(p, &data, &len, &r, &error))
		       == 1) {
			n++;
			codes += (size_t)r->code;
		}
		if (rc < 0)
			bench_die(error);
	}
	if (n != replies_count || codes < 250 * n)
		bench_die("the reply parser miscounted");
	return n;
}

/* --- the scripted server ----------------------------------------------- */

enum srv_state { SRV_CMD, SRV_DATA, SRV_BDAT };

struct srv {
	enum srv_state state;
	struct buf in;		/* client bytes not yet used */
	struct buf out;		/* replies not yet fed */
	bool in_mail;
	size_t rcpts;
	size_t body;		/* body bytes of this message, unstuffed */
	size_t bdat_left;
	unsigned long messages;
};

/* srv_line - one command line (CRLF included) */
static void srv_line(struct srv *v, const char *l, size_t n)
{
	if (n >= 5 && memcmp(l, "EHLO ", 5) == 0) {
		buf_append_str(&v->out, ehlo_reply);
	} else if (n >= 10 && memcmp(l, "MAIL FROM:", 10) == 0) {
		if (v->in_mail)
			bench_die("server: MAIL inside a transaction");
		v->in_mail = true;
		v->rcpts = 0;
		buf_append_str(&v->out, mail_ok);
	} else if (n >= 8 && memcmp(l, "RCPT TO:", 8) == 0) {
		if (!v->in_mail)
			bench_die("server: RCPT without MAIL");
		v->rcpts++;
		buf_append_str(&v->out, rcpt_ok);
	} else if (n == 6 && memcmp(l, "DATA\r\n", 6) == 0) {
		if (v->rcpts == 0)
			bench_die("server: DATA without RCPT");
		v->state = SRV_DATA;
		v->body = 0;
		buf_append_str(&v->out, data_go);
	} else if (n >= 5 && memcmp(l, "BDAT ", 5) == 0) {
		char *end;

		if (v->rcpts == 0)
			bench_die("server: BDAT without RCPT");
		v->bdat_left = strtoul(l + 5, &end, 10);
		if (strncmp(end, " LAST\r\n", 7) != 0)
			bench_die("server: BDAT not LAST");
		v->body = v->bdat_left;
		v->state = SRV_BDAT;
	} else if (n == 6 && memcmp(l, "RSET\r\n", 6) == 0) {
		v->in_mail = false;
		buf_append_str(&v->out, rset_ok);
	} else if (n == 6 && memcmp(l, "QUIT\r\n", 6) == 0) {
		buf_append_str(&v->out, quit_ok);
	} else {
		bench_die("server: unknown command");
	}
}

/* srv_end - a message taken whole */
static void srv_end(struct srv *v)
{
	if (v->body != BENCH_MSG_SIZE)
		bench_die("server: the body is not the message");
	queued(&v->out, v->messages++);
	v->in_mail = false;
	v->rcpts = 0;
	v->state = SRV_CMD;
}

/* srv_take - the client's bytes; answers go to v->out */
static void srv_take(struct srv *v, const char *data, size_t len)
{
	size_t pos = 0;

	buf_append(&v->in, data, len);
	while (pos < v->in.len) {
		const char *p = v->in.data + pos, *nl;
		size_t left = v->in.len - pos, n;

		if (v->state == SRV_BDAT) {
			n = left < v->bdat_left ? left : v->bdat_left;
			pos += n;
			v->bdat_left -= n;
			if (v->bdat_left == 0)
				srv_end(v);
			continue;
		}
		nl = memchr(p, '\n', left);
		if (nl == NULL)
			break;
		n = (size_t)(nl - p) + 1;
		if (n < 2 || p[n - 2] != '\r')
			bench_die("server: a line without CRLF");
		pos += n;
		if (v->state == SRV_CMD)
			srv_line(v, p, n);
		else if (n == 3 && p[0] == '.')
			srv_end(v);
		else
			v->body += n - (p[0] == '.');
	}
	memmove(v->in.data, v->in.data + pos, v->in.len - pos);
	buf_truncate(&v->in, v->in.len - pos);
}

/* --- the client: what smtp_conn does, minus the socket ----------------- */

static const char *const rcpt[] = { "recipient@example.net" };
static struct smtp_message message;
static struct buf message_data;

/* message_setup - 4096 bytes: headers, then text lines of <= 76 */
static void message_setup(void)
{
	static const char words[] = "the spring offer for members is "
				    "available now and your order ships "
				    "this week with tracking ";
	struct buf *b = &message_data;
	size_t w = 0;

	buf_append_str(b, "From: Example Shop <orders@shop.example>\r\n"
		       "To: recipient@example.net\r\n"
		       "Subject: Your order has shipped\r\n"
		       "Date: Mon, 24 Nov 2025 15:20:00 +0000\r\n"
		       "Message-ID: <1.42.1764000000000@shop.example>\r\n"
		       "MIME-Version: 1.0\r\n"
		       "Content-Type: text/plain; charset=utf-8\r\n"
		       "Content-Transfer-Encoding: 7bit\r\n\r\n");
	while (b->len < BENCH_MSG_SIZE) {
		size_t left = BENCH_MSG_SIZE - b->len;
		/* 72 columns, and the rest (3 to 76) on the last line */
		size_t line = left <= 78 ? left - 2 : 72;

		for (size_t i = 0; i < line; i++) {
			char ch = words[w++ % (sizeof(words) - 1)];

			buf_putc(b, i == 0 && ch == ' ' ? 'x' : ch);
		}
		buf_append_str(b, "\r\n");
	}
	if (b->len != BENCH_MSG_SIZE)
		bench_die("the message is not 4096 bytes");
	message = (struct smtp_message){
		.from = "bounces+42@shop.example", .rcpts = rcpt,
		.nrcpts = 1, .data = b->data, .len = b->len,
	};
}

enum phase { PH_SETUP, PH_MESSAGES, PH_TEARDOWN };

struct client {
	long messages;		/* to send */
	long submitted, sent;
	bool ready, quit, closed;
};

/* client_turn - take events, submit what may go, QUIT when all is done */
static void client_turn(struct smtp_session *s, struct client *c)
{
	struct smtp_event ev;

	for (;;) {
		while (smtp_session_event(s, &ev)) {
			switch (ev.kind) {
			case SMTP_EV_READY:
				c->ready = true;
				break;
			case SMTP_EV_RCPT:
				if (ev.code != 250)
					bench_die("a recipient was refused");
				break;
			case SMTP_EV_DONE:
				if (!ev.sent)
					bench_die("a message was not sent");
				c->sent++;
				break;
			case SMTP_EV_CLOSED:
				c->closed = true;
				break;
			case SMTP_EV_FAILED:
				bench_die(ev.error);
				break;
			case SMTP_EV_STARTTLS:
				bench_die("STARTTLS was not asked for");
				break;
			}
		}
		if (!c->ready || c->submitted >= c->messages ||
		    !smtp_session_can_submit(s))
			break;
		if (smtp_session_submit(s, &message) < 0)
			bench_die("submit refused a message");
		c->submitted++;
	}
	if (c->ready && c->sent == c->messages && !c->quit) {
		smtp_session_quit(s);
		c->quit = true;
	}
}

static enum phase client_phase(const struct client *c)
{
	if (!c->ready)
		return PH_SETUP;
	return c->sent < c->messages ? PH_MESSAGES : PH_TEARDOWN;
}

/* One turn of a recorded session: what went out, what came back. */
struct turn {
	size_t out_len;
	size_t in_off, in_len;
};

struct script {
	struct smtp_session_params params;
	const char *name;
	struct turn *turns;
	size_t nturns;
	struct buf answers;	/* the server's, turn after turn */
	/* bytes by phase: [phase][0] written, [phase][1] consumed */
	size_t bytes[3][2];
};

/* script_record - one session against the scripted server */
static void script_record(struct script *sc, long messages)
{
	struct smtp_session *s = smtp_session_new(&sc->params);
	struct client c = { .messages = messages };
	struct srv v = { .state = SRV_CMD };
	size_t cap = 0;

	buf_append_str(&v.out, greeting);
	for (;;) {
		const char *data;
		size_t len;
		enum phase ph;

		client_turn(s, &c);
		if (c.closed)
			break;
		ph = client_phase(&c);
		smtp_session_output(s, &data, &len);
		if (len > 0)
			srv_take(&v, data, len);
		smtp_session_sent(s, len);
		if (len == 0 && v.out.len == 0)
			bench_die("the session stalled");
		if (sc->nturns == cap) {
			cap = cap ? cap * 2 : 256;
			sc->turns = realloc(sc->turns,
					    cap * sizeof(*sc->turns));
			if (sc->turns == NULL)
				bench_die("out of memory");
		}
		sc->turns[sc->nturns++] = (struct turn){
			.out_len = len, .in_off = sc->answers.len,
			.in_len = v.out.len };
		sc->bytes[ph][0] += len;
		sc->bytes[ph][1] += v.out.len;
		buf_append(&sc->answers, v.out.data, v.out.len);
		smtp_session_feed(s, v.out.data, v.out.len);
		buf_reset(&v.out);
	}
	if (c.sent != messages || v.messages != (unsigned long)messages)
		bench_die("the recorded session lost messages");
	smtp_session_free(&s);
	buf_free(&v.in);
	buf_free(&v.out);
}

/* script_replay - one session fed the recorded answers; checks output */
static void script_replay(const struct script *sc, long messages)
{
	struct smtp_session *s = smtp_session_new(&sc->params);
	struct client c = { .messages = messages };

	for (size_t i = 0;; i++) {
		const char *data;
		size_t len;

		client_turn(s, &c);
		if (c.closed)
			break;
		smtp_session_output(s, &data, &len);
		if (i >= sc->nturns || len != sc->turns[i].out_len)
			bench_die("the replayed session wrote otherwise");
		smtp_session_sent(s, len);
		smtp_session_feed(s, sc->answers.data + sc->turns[i].in_off,
				  sc->turns[i].in_len);
	}
	if (c.sent != messages)
		bench_die("the replayed session lost messages");
	smtp_session_free(&s);
}

/* --- timing ------------------------------------------------------------ */

struct rate {
	double per_cpu, per_wall;
};

static struct rate time_replies(double seconds, size_t chunk)
{
	struct smtp_reply_parser p;
	size_t n = 0, bytes = 0;
	double t0, c0, wall, cpu;
	struct rate r;

	smtp_reply_parser_init(&p, 0, 0);
	t0 = clock_mono_s();
	c0 = clock_cpu_s();
	do {
		n += replies_parse_all(&p, chunk);
		bytes += replies_in.len;
		wall = clock_mono_s() - t0;
	} while (wall < seconds);
	cpu = clock_cpu_s() - c0;
	smtp_reply_parser_free(&p);
	r.per_cpu = (double)n / cpu;
	r.per_wall = (double)n / wall;
	printf("  %-8s %10.0f replies per CPU-second (%10.0f wall)  "
	       "%6.1f MB/s of replies\n", "replies", r.per_cpu, r.per_wall,
	       (double)bytes / cpu / 1e6);
	return r;
}

static struct rate time_session(const struct script *sc, double seconds,
				long messages)
{
	long sessions = 0;
	double t0, c0, wall, cpu, n;
	struct rate r;

	t0 = clock_mono_s();
	c0 = clock_cpu_s();
	do {
		script_replay(sc, messages);
		sessions++;
		wall = clock_mono_s() - t0;
	} while (wall < seconds);
	cpu = clock_cpu_s() - c0;
	n = (double)sessions * (double)messages;
	r.per_cpu = n / cpu;
	r.per_wall = n / wall;
	printf("  %-8s %10.0f messages per CPU-second (%10.0f wall)  "
	       "%6.2f us/message  %ld sessions\n", sc->name, r.per_cpu,
	       r.per_wall, cpu * 1e6 / n, sessions);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* median - sort v and print "median (min-max)"; returns the median */
static double median(double *v)
{
	qsort(v, BENCH_ROUNDS, sizeof(double), cmp_double);
	printf("%.0f (%.0f-%.0f)", v[BENCH_ROUNDS / 2], v[0],
	       v[BENCH_ROUNDS - 1]);
	return v[BENCH_ROUNDS / 2];
}

int main(int argc, char **argv)
{
	static struct script sc[2];
	double seconds = 1, rep[BENCH_ROUNDS], ses[2][BENCH_ROUNDS];
	double rep_med, ses_med[2];
	long messages = 1000, chunk = 1448;
	unsigned window = 0;
	int c;

	while ((c = getopt(argc, argv, "s:n:c:w:")) != -1) {
		switch (c) {
		case 's': seconds = atof(optarg); break;
		case 'n': messages = atol(optarg); break;
		case 'c': chunk = atol(optarg); break;
		case 'w': window = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_session [-s SECONDS] "
				"[-n MESSAGES] [-c CHUNK] [-w WINDOW]\n");
			return 2;
		}
	}
	if (seconds <= 0 || messages < 1 || chunk < 1)
		return 2;

	replies_setup(messages);
	message_setup();
	for (int k = 0; k < 2; k++) {
		sc[k].name = k == 0 ? "data" : "bdat";
		sc[k].params = (struct smtp_session_params){
			.helo_name = "client.volley.example",
			.pipelining = true, .chunking = k == 1,
			.chunking_window = window,
		};
		script_record(&sc[k], messages);
	}

	printf("bench_session: %zu replies in %zu bytes, read %ld bytes at "
	       "a time; sessions of %ld messages of %d bytes, 1 recipient\n",
	       replies_count, replies_in.len, chunk, messages,
	       BENCH_MSG_SIZE);
	for (int k = 0; k < 2; k++) {
		const struct script *s = &sc[k];

		printf("%s: per message %.1f bytes written, %.1f bytes of "
		       "replies consumed (%zu turns); per session: setup "
		       "%zu out %zu in, teardown %zu out %zu in\n", s->name,
		       (double)s->bytes[PH_MESSAGES][0] / (double)messages,
		       (double)s->bytes[PH_MESSAGES][1] / (double)messages,
		       s->nturns, s->bytes[PH_SETUP][0],
		       s->bytes[PH_SETUP][1], s->bytes[PH_TEARDOWN][0],
		       s->bytes[PH_TEARDOWN][1]);
	}

	for (int r = 0; r < BENCH_ROUNDS; r++) {
		printf("round %d\n", r + 1);
		rep[r] = time_replies(seconds, (size_t)chunk).per_cpu;
		for (int k = 0; k < 2; k++)
			ses[k][r] = time_session(&sc[k], seconds,
						 messages).per_cpu;
	}

	printf("summary: median (min-max) of %d rounds of %.1f s, per "
	       "CPU-second\n", BENCH_ROUNDS, seconds);
	printf("replies  ");
	rep_med = median(rep);
	printf(" replies/s, %.1f MB/s\n",
	       rep_med * (double)replies_in.len / (double)replies_count /
	       1e6);
	for (int k = 0; k < 2; k++) {
		printf("%-8s ", sc[k].name);
		ses_med[k] = median(ses[k]);
		printf(" messages/s (session logic alone)\n");
	}

	printf("RESULT replies_per_s %.0f replies/s\n", rep_med);
	for (int k = 0; k < 2; k++) {
		printf("RESULT bytes_out_per_msg_%s %.1f bytes\n", sc[k].name,
		       (double)sc[k].bytes[PH_MESSAGES][0] /
		       (double)messages);
		printf("RESULT bytes_in_per_msg_%s %.1f bytes\n", sc[k].name,
		       (double)sc[k].bytes[PH_MESSAGES][1] /
		       (double)messages);
	}
	for (int k = 0; k < 2; k++)
		printf("RESULT session_msgs_per_s_%s %.0f msgs/s\n",
		       sc[k].name, ses_med[k]);

	for (int k = 0; k < 2; k++) {
		free(sc[k].turns);
		buf_free(&sc[k].answers);
	}
	buf_free(&replies_in);
	buf_free(&message_data);
	return 0;
}
