/*
 * smtp_conn - one SMTP connection driven from connect to QUIT (see
 * smtp_conn.h).
 *
 * The loop keeps one rule: the session is always asked for output after
 * anything that may have produced some (a submit, a feed, the end of a
 * handshake), and everything it produced is written before the next
 * read.  So no command ever sits unsent while volley waits for a reply
 * to it.
 */
#include "smtp_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"

#define SMTP_CONN_READ_SIZE 16384
/*
 * With a source whose next never blocks, messages are written once this
 * much is ready (or when the session can take no more): on loopback a
 * write per 4 KB message was most of a message's CPU, in the kernel,
 * while a server waiting for 256 KB of pipelined messages loses little.
 */
#define SMTP_CONN_WRITE_BATCH (256 * 1024)
/* QUIT's reply is a courtesy: everything is done when it is awaited */
#define SMTP_CONN_QUIT_TIMEOUT_MS 10000

enum smtp_conn_state {
	SMTP_CONN_RUNNING,
	SMTP_CONN_DRAINING,	/* no more messages: QUIT when done */
	SMTP_CONN_OVER,		/* CLOSED or FAILED came */
};

struct smtp_conn {
	const struct smtp_conn_params *p;
	const struct smtp_conn_source *src;
	struct smtp_conn_result *res;
	struct transport *t;
	struct smtp_session *s;
	enum smtp_conn_state state;
	bool ready;
	bool later;		/* the source has none now, but will */
	unsigned in_flight;	/* taken, no DONE yet */
	long started_ms;
	/* the deadline for the reply awaited, reset by each reply parsed */
	long deadline_ms;
	unsigned long replies_seen;
	enum smtp_wait waiting_for;
	/* the opening step under way (never OVER: the last live one, which
	 * says where a failure struck) and when it began, for the phases */
	enum smtp_phase phase;
	long long phase_start_us;
	/* why smtp_conn itself aborted the session, SMTP_CONN_OK if it did
	 * not (the session then failed on what the server said) */
	enum smtp_conn_failure fail;
	struct buf trace;	/* the session's transcript, and S: lines */
	struct buf partial;	/* a server line not yet ended, for trace */
	char err[256];
};

const char *smtp_conn_failure_name(enum smtp_conn_failure f)
{
	static const char *const names[SMTP_CONN_FAILURES] = {
		"ok", "refused", "reset", "timeout", "tls", "rejected",
		"protocol", "other",
	};

	return (unsigned)f < SMTP_CONN_FAILURES ? names[f] : "other";
}

/* smtp_conn_kind - a transport's kind of failure as a connection's */
static enum smtp_conn_failure smtp_conn_kind(enum transport_error e)
{
	switch (e) {
	case TRANSPORT_ERR_REFUSED:
		return SMTP_CONN_REFUSED;
	case TRANSPORT_ERR_RESET:
		return SMTP_CONN_RESET;
	case TRANSPORT_ERR_TIMEOUT:
		return SMTP_CONN_TIMEOUT;
	case TRANSPORT_ERR_TLS:
		return SMTP_CONN_TLS;
	default:
		return SMTP_CONN_OTHER;
	}
}

/*
 * smtp_conn_phase - after anything that may move the session on (a feed,
 * the end of a handshake): when its phase changed, the step that ended
 * is timed.  A step the session failed in is not: it did not finish.
 */
static void smtp_conn_phase(struct smtp_conn *c)
{
	struct smtp_conn_phases *ph = &c->res->phases;
	enum smtp_phase p = smtp_session_phase(c->s);
	long long now, *slot = NULL;

	if (p == c->phase || p == SMTP_PHASE_OVER)
		return;
	now = clock_mono_us();
	switch (c->phase) {
	case SMTP_PHASE_GREETING:
		slot = &ph->greeting_us;
		break;
	case SMTP_PHASE_EHLO:
		slot = &ph->ehlo_us;
		break;
	case SMTP_PHASE_STARTTLS:
		slot = &ph->tls_us;
		break;
	case SMTP_PHASE_AUTH:
		slot = &ph->auth_us;
		break;
	default:
		break;
	}
	if (slot != NULL)
		*slot = (*slot < 0 ? 0 : *slot) + (now - c->phase_start_us);
	c->phase = p;
	c->phase_start_us = now;
}

/*
 * smtp_conn_failed_kind - the kind of a session's FAILED: smtp_conn's
 * own reason when it aborted, else what the session ran into
 */
static enum smtp_conn_failure smtp_conn_failed_kind(const struct smtp_conn *c,
						    const struct smtp_event *ev)
{
	if (c->fail != SMTP_CONN_OK)
		return c->fail;
	if (ev->out_of_step || ev->malformed)
		return SMTP_CONN_PROTOCOL;
	if (c->phase == SMTP_PHASE_STARTTLS)
		return SMTP_CONN_TLS;
	/* "starttls" required and the server does not offer it */
	if (ev->permanent && c->p->session.tls == SMTP_TLS_STARTTLS &&
	    !transport_is_tls(c->t))
		return SMTP_CONN_TLS;
	return SMTP_CONN_REJECTED;
}

/* smtp_conn_trace_lines - hand each "X: line\n" of text to the tracer */
static void smtp_conn_trace_lines(struct smtp_conn *c, const struct buf *b)
{
	const char *p = b->data, *end = b->data + b->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		/* "C: " is three bytes before the line itself */
		if (len >= 3)
			c->src->trace(c->src->ctx, p[0], p + 3, len - 3);
		p += len + 1;
	}
}

/* smtp_conn_note - a '*' line for the trace */
static void smtp_conn_note(struct smtp_conn *c, const char *what)
{
	if (c->src->trace != NULL)
		c->src->trace(c->src->ctx, '*', what, strlen(what));
}

/* smtp_conn_flush_transcript - the session's "C:" lines, if tracing */
static void smtp_conn_flush_transcript(struct smtp_conn *c)
{
	if (c->src->trace == NULL)
		return;
	buf_reset(&c->trace);
	smtp_session_transcript(c->s, &c->trace);
	smtp_conn_trace_lines(c, &c->trace);
}

/*
 * smtp_conn_trace_server - the server's bytes as "S:" lines, control
 * bytes escaped so that no reply can forge a line of the trace
 */
static void smtp_conn_trace_server(struct smtp_conn *c, const char *data,
				   size_t len)
{
	if (c->src->trace == NULL)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)data[i];

		if (ch == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;
		if (ch == '\n') {
			c->src->trace(c->src->ctx, 'S', c->partial.data ?
				      c->partial.data : "", c->partial.len);
			buf_reset(&c->partial);
		} else if (ch >= 0x20 && ch != 0x7f) {
			buf_putc(&c->partial, (char)ch);
		} else {
			buf_printf(&c->partial, "\\x%02x", ch);
		}
	}
}

/* smtp_conn_drain - pass on the session's events; act on the rest */
static void smtp_conn_drain(struct smtp_conn *c)
{
	struct smtp_event ev;
	const char *error;

	while (smtp_session_event(c->s, &ev)) {
		switch (ev.kind) {
		case SMTP_EV_READY:
			c->ready = true;
			c->res->ready = true;
			c->res->connect_ms = clock_mono_ms() - c->started_ms;
			if (c->src->ready != NULL)
				c->src->ready(c->src->ctx,
					      smtp_session_caps(c->s));
			break;
		case SMTP_EV_RCPT:
			c->src->event(c->src->ctx, &ev);
			break;
		case SMTP_EV_DONE:
			/* a transaction of a split message: it goes on */
			if (c->in_flight > 0 && !ev.more)
				c->in_flight--;
			if (ev.sent)
				c->res->delivered++;
			c->later = false;	/* a slot is free: ask again */
			c->src->event(c->src->ctx, &ev);
			break;
		case SMTP_EV_STARTTLS:
			smtp_conn_flush_transcript(c);
			if (transport_start_tls(c->t, c->p->tls, &error) < 0) {
				c->fail = SMTP_CONN_TLS;
				smtp_session_abort(c->s, error,
						   transport_verify_failed(c->t));
				break;
			}
			smtp_conn_note(c, "TLS handshake done");
			smtp_session_tls_done(c->s);
			smtp_conn_phase(c);
			break;
		case SMTP_EV_FAILED:
			snprintf(c->res->error, sizeof(c->res->error), "%s",
				 ev.error ? ev.error : "the session failed");
			c->res->permanent = ev.permanent;
			c->res->out_of_step = ev.out_of_step;
			c->res->closing_code = ev.code;
			snprintf(c->res->closing_enhanced,
				 sizeof(c->res->closing_enhanced), "%s",
				 ev.enhanced ? ev.enhanced : "");
			snprintf(c->res->closing_text,
				 sizeof(c->res->closing_text), "%s",
				 ev.text ? ev.text : "");
			c->res->closing_step = ev.step;
			c->res->failure = smtp_conn_failed_kind(c, &ev);
			c->state = SMTP_CONN_OVER;
			break;
		case SMTP_EV_CLOSED:
			c->res->closed = true;
			c->state = SMTP_CONN_OVER;
			break;
		}
	}
}

static int smtp_conn_write(struct smtp_conn *c);

/* smtp_conn_pending - bytes the session has ready and not yet written */
static size_t smtp_conn_pending(struct smtp_conn *c)
{
	const char *out;
	size_t len;

	smtp_session_output(c->s, &out, &len);
	return len;
}

/*
 * smtp_conn_submit - take messages while the session can: every one
 * taken is submitted, or finished here if the session will not have it
 */
static void smtp_conn_submit(struct smtp_conn *c)
{
	while (c->state == SMTP_CONN_RUNNING && c->ready) {
		const struct smtp_message *m;

		if (!smtp_session_can_submit(c->s)) {
			if (smtp_session_spent(c->s) &&
			    smtp_session_idle(c->s)) {
				c->res->spent = true;
				c->state = SMTP_CONN_DRAINING;
				smtp_session_quit(c->s);
			}
			return;
		}
		if (c->src->max_in_flight > 0 &&
		    c->in_flight >= c->src->max_in_flight)
			return;
		/* "none now": ask again after a reply, unless idle */
		if (c->later && c->in_flight > 0)
			return;
		c->later = false;
		/*
		 * What is ready goes out first: next may block (a rate
		 * limit, an empty queue), and a message must not sit unsent
		 * meanwhile - nor leave in a burst after.
		 */
		if (c->in_flight > 0 && (!c->src->next_returns_at_once ||
					 smtp_conn_pending(c) >=
					 SMTP_CONN_WRITE_BATCH) &&
		    smtp_conn_write(c) < 0)
			return;
		m = c->src->next(c->src->ctx, &c->later);
		if (m == NULL) {
			if (c->later)
				return;
			c->state = SMTP_CONN_DRAINING;
			smtp_session_quit(c->s);
			return;
		}
		c->later = false;
		c->res->messages++;
		c->in_flight++;
		if (smtp_session_submit(c->s, m) < 0) {
			/* can_submit said yes: the message itself is bad */
			struct smtp_event ev = {
				.kind = SMTP_EV_DONE, .ctx = m->ctx,
				.code = 554, .enhanced = "5.5.4",
				.text = m->nrcpts == 0 ? "no recipient" :
					"too many recipients for one message",
				.local = true,
			};

			if (c->in_flight > 0)
				c->in_flight--;
			c->src->event(c->src->ctx, &ev);
		}
		smtp_conn_drain(c);
	}
}

/*
 * smtp_conn_write_failed - the write failed: a server that hung up may
 * have said why first (a 421 to a RCPT while the rest of the pipeline
 * was on its way): read it, so the replies count, not a local "in
 * doubt".  Returns -1.
 */
static int smtp_conn_write_failed(struct smtp_conn *c, const char *why)
{
	char buf[4096];
	const char *error;
	ssize_t n;

	snprintf(c->err, sizeof(c->err), "%s", why);
	transport_set_io_timeout(c->t, 200);
	n = transport_read(c->t, buf, sizeof(buf), &error);
	if (n > 0) {
		smtp_conn_trace_server(c, buf, (size_t)n);
		smtp_session_feed(c->s, buf, (size_t)n);
	}
	c->fail = smtp_conn_kind(transport_error(c->t));
	smtp_session_abort(c->s, c->err, false);
	smtp_conn_drain(c);
	return -1;
}

/*
 * smtp_conn_write - everything the session has to send (a large body
 * comes a piece at a time: the session gives the next once the last
 * was sent)
 */
static int smtp_conn_write(struct smtp_conn *c)
{
	const char *out, *error;
	size_t len;

	smtp_conn_flush_transcript(c);
	for (;;) {
		smtp_session_output(c->s, &out, &len);
		if (len == 0)
			return 0;
		if (transport_write(c->t, out, len, &error) < 0)
			return smtp_conn_write_failed(c, error);
		smtp_session_sent(c->s, len);
	}
}

/* smtp_conn_timeout - how long the reply awaited may take (ms) */
static int smtp_conn_timeout(const struct smtp_conn *c, enum smtp_wait wait,
			     const char **what)
{
	const struct smtp_conn_params *p = c->p;
	int ms;

	switch (wait) {
	case SMTP_WAIT_GREETING:
		*what = "the greeting";
		return p->greeting_timeout_ms ? p->greeting_timeout_ms : 300000;
	case SMTP_WAIT_DATA_END:
		*what = "the end of a message";
		return p->data_end_timeout_ms ? p->data_end_timeout_ms : 600000;
	case SMTP_WAIT_QUIT:
		*what = "QUIT";
		ms = p->command_timeout_ms ? p->command_timeout_ms : 300000;
		return ms < SMTP_CONN_QUIT_TIMEOUT_MS ? ms :
			    SMTP_CONN_QUIT_TIMEOUT_MS;
	default:
		*what = "a command";
		return p->command_timeout_ms ? p->command_timeout_ms : 300000;
	}
}

/*
 * smtp_conn_read - one read from the server, fed to the session.  The
 * timeout runs from the last reply parsed (or from when the kind of
 * reply awaited changed), so a server sending a byte now and then cannot
 * hold a connection past it (RFC 5321 4.5.3.2 times replies, not reads).
 */
static void smtp_conn_read(struct smtp_conn *c)
{
	char buf[SMTP_CONN_READ_SIZE];
	enum smtp_wait wait = smtp_session_waiting(c->s);
	const char *what, *error;
	int timeout = smtp_conn_timeout(c, wait, &what);
	unsigned long replies = smtp_session_replies(c->s);
	long now = clock_mono_ms(), left;
	ssize_t n;

	if (replies != c->replies_seen || wait != c->waiting_for ||
	    c->deadline_ms == 0) {
		c->replies_seen = replies;
		c->waiting_for = wait;
		c->deadline_ms = now + timeout;
	}
	left = c->deadline_ms - now;
	if (left <= 0) {
		n = -1;
		snprintf(c->err, sizeof(c->err), "no reply within");
	} else {
		transport_set_io_timeout(c->t, (int)left);
		n = transport_read(c->t, buf, sizeof(buf), &error);
		c->res->wait_ms += clock_mono_ms() - now;
		if (n < 0)
			snprintf(c->err, sizeof(c->err), "%s", error);
	}
	if (n > 0) {
		smtp_conn_trace_server(c, buf, (size_t)n);
		smtp_session_feed(c->s, buf, (size_t)n);
		smtp_conn_phase(c);
		return;
	}
	if (wait == SMTP_WAIT_QUIT) {
		/* Everything was done: a server that hangs up (or says
		 * nothing) instead of answering QUIT loses nothing. */
		smtp_conn_note(c, n == 0 ? "the server closed the connection "
			       "without answering QUIT" : "no reply to QUIT");
		c->res->closed = true;
		c->state = SMTP_CONN_OVER;
		return;
	}
	if (n == 0) {
		c->fail = SMTP_CONN_RESET;
		snprintf(c->err, sizeof(c->err), "the server closed the "
			 "connection while volley waited for the reply to %s",
			 what);
	} else if (left <= 0 ||
		   transport_error(c->t) == TRANSPORT_ERR_TIMEOUT) {
		c->fail = SMTP_CONN_TIMEOUT;
		snprintf(c->err, sizeof(c->err), "no reply to %s within %d s",
			 what, timeout / 1000);
	} else {
		c->fail = smtp_conn_kind(transport_error(c->t));
	}
	smtp_session_abort(c->s, c->err, false);
}

int smtp_conn_run(const struct smtp_conn_params *p,
		  const struct smtp_conn_source *source,
		  struct smtp_conn_result *result)
{
	struct smtp_conn c = { .p = p, .src = source, .res = result };
	const char *error;
	char note[300];
	long long t0;

	memset(result, 0, sizeof(*result));
	result->phases = (struct smtp_conn_phases){ -1, -1, -1, -1, -1 };
	c.started_ms = clock_mono_ms();
	if (p->session.tls != SMTP_TLS_NONE && p->tls == NULL) {
		snprintf(result->error, sizeof(result->error), "TLS is asked "
			 "for but no TLS context was given");
		result->permanent = true;
		result->failure = SMTP_CONN_OTHER;
		return -1;
	}
	t0 = clock_mono_us();
	if (transport_connect(&p->transport, &c.t, &error) < 0) {
		result->failure = smtp_conn_kind(transport_errno_kind(errno));
		snprintf(result->error, sizeof(result->error), "%s", error);
		return -1;
	}
	result->phases.connect_us = clock_mono_us() - t0;
	snprintf(note, sizeof(note), "connected to %s port %s",
		 p->transport.host, p->transport.port);
	smtp_conn_note(&c, note);
	if (p->session.tls == SMTP_TLS_IMPLICIT) {
		t0 = clock_mono_us();
		if (transport_start_tls(c.t, p->tls, &error) < 0) {
			snprintf(result->error, sizeof(result->error), "%s",
				 error);
			result->permanent = transport_verify_failed(c.t);
			result->failure = SMTP_CONN_TLS;
			transport_close(&c.t);
			return -1;
		}
		result->phases.tls_us = clock_mono_us() - t0;
		smtp_conn_note(&c, "TLS handshake done");
	}
	c.s = smtp_session_new(&p->session);
	c.phase = SMTP_PHASE_GREETING;
	c.phase_start_us = clock_mono_us();

	while (c.state != SMTP_CONN_OVER) {
		smtp_conn_drain(&c);
		smtp_conn_submit(&c);
		if (c.state == SMTP_CONN_OVER)
			break;
		if (smtp_conn_write(&c) < 0)
			break;
		if (smtp_session_waiting(c.s) == SMTP_WAIT_NONE) {
			/* Nothing awaited: more to submit, or a stall. */
			if (c.state == SMTP_CONN_RUNNING && c.ready &&
			    smtp_session_can_submit(c.s)) {
				c.later = false;	/* idle: next may block */
				continue;
			}
			c.fail = SMTP_CONN_OTHER;
			smtp_session_abort(c.s, "internal error: the session "
					   "awaits nothing and can take "
					   "nothing", false);
			smtp_conn_drain(&c);
			break;
		}
		smtp_conn_read(&c);
	}
	smtp_conn_flush_transcript(&c);
	smtp_session_free(&c.s);
	transport_close(&c.t);
	buf_free(&c.trace);
	buf_free(&c.partial);
	/* every end that is not a clean QUIT has a kind */
	if (result->closed)
		result->failure = SMTP_CONN_OK;
	else if (result->failure == SMTP_CONN_OK)
		result->failure = SMTP_CONN_OTHER;
	return result->closed ? 0 : -1;
}
