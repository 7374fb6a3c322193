/*
 * smtp_session - the client side of one SMTP connection, without I/O.
 *
 * The session is fed the bytes the server sent (smtp_session_feed) and
 * asked for the bytes to send (smtp_session_output, then
 * smtp_session_sent); it never reads, writes or touches a socket, so every
 * protocol behaviour is testable with byte strings.  What happened comes
 * out as events (smtp_session_event).
 *
 * So far (issue 4 in progress): greeting, EHLO with a HELO fallback,
 * capabilities, and any number of transactions per connection, pipelined
 * when the server offers PIPELINING (MAIL, every RCPT and DATA in one
 * write; after 354, the body, the end of data and the next message's
 * MAIL/RCPT/DATA in one write), lock-step otherwise; QUIT.  Not yet:
 * STARTTLS, AUTH, CHUNKING, SIZE and SMTPUTF8 parameters.
 *
 * Every reply is matched to the oldest outstanding command and checked
 * against it (354 only for DATA, never 3xx for MAIL, RCPT or the end of
 * data, nothing when nothing is outstanding).  A mismatch means the
 * session is out of step: it fails, and no message is ever reported sent
 * from an unmatched reply.  421 at any point ends the session.  When a
 * session fails, every message not yet finished gets a DONE event with a
 * local 4xx result (to be retried), before the FAILED event.
 */
#ifndef VOLLEY_SMTP_SESSION_H
#define VOLLEY_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/smtp_caps.h"
#include "engine/smtp_reply.h"

struct smtp_session;

#define SMTP_SESSION_MAX_RCPTS 1000	/* per message */
#define SMTP_SESSION_WINDOW 64		/* messages submitted, not done */

struct smtp_session_params {
	const char *helo_name;	/* our name for EHLO/HELO */
	bool pipelining;	/* use PIPELINING when the server offers it */
};

/* One message to send; the session keeps pointers, not copies. */
struct smtp_message {
	const char *from;		/* envelope sender, may be "" */
	const char *const *rcpts;
	size_t nrcpts;
	const char *data;		/* the message, CRLF line ends */
	size_t len;
	void *ctx;			/* the caller's, given back in events */
};

enum smtp_event_kind {
	SMTP_EV_READY,	/* greeted: messages may be submitted */
	SMTP_EV_RCPT,	/* the reply to one RCPT TO (rcpt is its index) */
	SMTP_EV_DONE,	/* a message is finished: see reply and sent */
	SMTP_EV_FAILED,	/* the session is over; error says why */
	SMTP_EV_CLOSED,	/* QUIT answered: the connection may close */
};

struct smtp_event {
	enum smtp_event_kind kind;
	void *ctx;			/* the message's, for RCPT and DONE */
	size_t rcpt;
	/* the server's reply, or a local one (code 4xx, local = true) */
	int code;
	const char *enhanced;
	const char *text;
	bool local;
	bool sent;			/* DONE: the server took the message */
	const char *error;		/* FAILED */
};

struct smtp_session *smtp_session_new(const struct smtp_session_params *p);
void smtp_session_free(struct smtp_session **sp);

/* smtp_session_feed - the server's bytes; events may follow */
void smtp_session_feed(struct smtp_session *s, const char *data, size_t len);

/*
 * smtp_session_output - the bytes to send now (len 0: nothing); after
 * writing some of them, say how many with smtp_session_sent().
 */
void smtp_session_output(struct smtp_session *s, const char **data,
			 size_t *len);
void smtp_session_sent(struct smtp_session *s, size_t n);

/*
 * smtp_session_submit - queue a message (after READY).  Returns -1 if the
 * session cannot take it now (not ready, failed, window full, too many
 * recipients); the caller keeps it.
 */
int smtp_session_submit(struct smtp_session *s, const struct smtp_message *m);

/* smtp_session_quit - say QUIT once every submitted message is done */
void smtp_session_quit(struct smtp_session *s);

/*
 * smtp_session_event - the next event, oldest first; false if none.  The
 * strings in it stay valid until the next call into the session.
 */
bool smtp_session_event(struct smtp_session *s, struct smtp_event *ev);

/* smtp_session_caps - what the server offered (valid after READY) */
const struct smtp_caps *smtp_session_caps(const struct smtp_session *s);

/* smtp_session_idle - ready, with nothing submitted still in flight */
bool smtp_session_idle(const struct smtp_session *s);

#endif
