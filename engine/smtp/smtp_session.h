/*
 * smtp_session - the client side of one SMTP connection, without I/O.
 *
 * The session is fed the bytes the server sent (smtp_session_feed) and
 * asked for the bytes to send (smtp_session_output, then
 * smtp_session_sent); it never reads, writes or touches a socket, so every
 * protocol behaviour is testable with byte strings.  What happened comes
 * out as events (smtp_session_event).
 *
 * It speaks: greeting, EHLO with a HELO fallback, capabilities, STARTTLS,
 * AUTH PLAIN, LOGIN and XOAUTH2, and any number of transactions per
 * connection:
 *   - with CHUNKING (and PIPELINING): MAIL, every RCPT and "BDAT n LAST"
 *     with the body in one write, and up to chunking_window messages in
 *     flight at once - no 354 to wait for;
 *   - with PIPELINING: MAIL, every RCPT and DATA in one write; after 354,
 *     the body, the end of data and the next message's MAIL/RCPT/DATA in
 *     one write (RFC 2920 3.1);
 *   - otherwise lock-step, one command per reply.
 * MAIL carries SIZE= when the server offers SIZE, SMTPUTF8 when an
 * address (or the caller) needs it, BODY=8BITMIME for 8-bit bodies.
 * What the server announced is honoured before anything is sent: a
 * message over its SIZE, a message needing SMTPUTF8 or 8BITMIME that the
 * server lacks are refused locally with the reply a server would give
 * (552 5.3.4, 553 5.6.7, 554 5.6.3), and MAILMAX or max_messages caps the
 * transactions of the session (smtp_session_spent).  Timeouts are the
 * caller's: smtp_session_waiting says which one applies.
 *
 * A message with more recipients than the server takes in one
 * transaction - its LIMITS RCPTMAX (RFC 9422), or what it had accepted
 * when it answered a RCPT with 452 "too many recipients" (or 552 with
 * X.5.3, RFC 5321 4.5.3.1.10) - is split: the rest go in further
 * transactions on the same connection, each with at most that many.
 * Each transaction has its own DONE; all but the last say "more".  A
 * 552 that means "too many" is reported as the 452 it should have been.

 * STARTTLS is never pipelined and "starttls" means required: no
 * STARTTLS capability, a refusal or a failed handshake ends the session
 * before AUTH or MAIL.  Any byte after the 220 that answers STARTTLS and
 * before the handshake is an injection attempt and ends the session; it
 * is never read as a reply.  After the handshake every capability is
 * forgotten and EHLO is sent again.  Credentials go only over TLS unless
 * allow_plaintext_auth is set; 535 is a permanent failure.  The AUTH
 * lines of smtp_session_output() hold credentials: a transcript must
 * mask every line that follows "AUTH".
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

#include "buf.h"
#include "smtp_caps.h"
#include "smtp_reply.h"

struct smtp_session;

#define SMTP_SESSION_MAX_RCPTS 1000	/* per message */
#define SMTP_SESSION_WINDOW 64		/* messages submitted, not done */

enum smtp_tls {
	SMTP_TLS_NONE,		/* plaintext (then no AUTH without the flag) */
	SMTP_TLS_STARTTLS,	/* required: STARTTLS before anything else */
	SMTP_TLS_IMPLICIT,	/* the transport speaks TLS from the start */
};

struct smtp_session_params {
	const char *helo_name;	/* our name for EHLO/HELO */
	bool pipelining;	/* use PIPELINING when the server offers it */
	enum smtp_tls tls;
	const char *username;	/* NULL: no AUTH */
	const char *password;
	const char *xoauth2_token;	/* preferred when set and offered */
	bool allow_plaintext_auth;
	bool chunking;		/* use BDAT when CHUNKING and PIPELINING are
				 * offered and pipelining is on */
	unsigned chunking_window;	/* BDAT messages in flight; 0: 8 */
	unsigned max_messages;	/* transactions per session; 0: no limit */
	/* keep a transcript of what is sent (smtp_session_transcript) */
	bool transcript;
	/* and of every change of state in it, "#: EHLO -> READY" */
	bool trace_states;
};

/*
 * One message to send; the session keeps pointers, not copies.  An
 * address with a control byte (CR, LF, NUL ...) is refused locally (553),
 * never written.  data should have CRLF line ends already (bare ones are
 * repaired on the way) for SIZE= to be exact.
 */
struct smtp_message {
	const char *from;		/* envelope sender, may be "" */
	const char *const *rcpts;
	size_t nrcpts;
	const char *data;		/* the message, CRLF line ends */
	size_t len;
	void *ctx;			/* the caller's, given back in events */
	/* the message has UTF-8 headers (non-ASCII addresses in from or
	 * rcpts are found by the session itself) */
	bool smtputf8;
	bool eightbit;			/* the body has 8-bit bytes */
	/*
	 * data is its own content, the caller vouches: every line end
	 * CRLF, the last line ended, no line starting with '.'.  It then
	 * goes out as it is, not through dot-stuffing (DATA adds the "."
	 * line; BDAT counts len).
	 */
	bool stuffed;
};

/*
 * Which command a reply answered, so that a policy can tell a refused
 * sender from a refused recipient or a refused message (retry.h) without
 * reading the reply's text.
 */
enum smtp_step {
	SMTP_STEP_NONE,		/* no reply: refused or failed locally */
	SMTP_STEP_SESSION,	/* the session's own commands (greeting,
				 * EHLO, STARTTLS, AUTH, RSET, QUIT); in a
				 * DONE: the session ended under the
				 * message (a 421, a lost connection) */
	SMTP_STEP_MAIL,		/* MAIL FROM */
	SMTP_STEP_RCPT,		/* RCPT TO */
	SMTP_STEP_DATA,		/* DATA, before its 354 */
	SMTP_STEP_END,		/* the end of data: "." or BDAT LAST */
};

/* smtp_step_name - "none", "session", "mail", "rcpt", "data", "end" */
const char *smtp_step_name(enum smtp_step step);

enum smtp_event_kind {
	SMTP_EV_READY,	/* greeted: messages may be submitted */
	SMTP_EV_RCPT,	/* the reply to one RCPT TO (rcpt is its index) */
	SMTP_EV_DONE,	/* a transaction is finished: see reply and sent;
			 * the message is, unless "more" */
	SMTP_EV_FAILED,	/* the session is over; error says why */
	SMTP_EV_CLOSED,	/* QUIT answered: the connection may close */
	SMTP_EV_STARTTLS, /* do the TLS handshake, then smtp_session_tls_done */
};

struct smtp_event {
	enum smtp_event_kind kind;
	void *ctx;			/* the message's, for RCPT and DONE */
	size_t rcpt;
	/* the server's reply, or one volley made up (local = true): for a
	 * DONE not sent, MAIL's refusal, else - no recipient accepted - the
	 * first recipient's refusal, else the reply to the end of data */
	int code;
	const char *enhanced;
	const char *text;
	/* which command that reply answered; for FAILED, the command the
	 * reply that ended the session answered (code 421), else NONE */
	enum smtp_step step;
	bool local;
	bool sent;			/* DONE: the server took the message */
	/* DONE, not sent: the message went whole but its reply never came
	 * (connection lost, timeout): the server may have taken it */
	bool in_doubt;
	/*
	 * DONE: the message goes on in another transaction.  Every
	 * recipient has one RCPT event, with its last reply; a recipient
	 * accepted shares the fate of the first DONE after its RCPT event,
	 * and those with no RCPT event (the session ended before their
	 * turn) share the last DONE's.  A split message's last DONE may
	 * come after the DONEs of messages submitted later.
	 */
	bool more;
	const char *error;		/* FAILED */
	/* FAILED: retrying cannot help (credentials refused, TLS required
	 * but not offered): stop the run rather than hammer the server */
	bool permanent;
	/* FAILED: a reply did not fit its command: do not pipeline to
	 * this server again in this run (smtp_session_params.pipelining) */
	bool out_of_step;
	/* FAILED: the server sent something that is not a reply (bad
	 * syntax, an overlong line): a protocol error, not a refusal */
	bool malformed;
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
 * session cannot take it now (not ready, failed, window full, spent, no
 * or too many recipients); the caller keeps it.  DONE events come in the
 * order messages were submitted, except for a message refused locally at
 * once (over SIZE, SMTPUTF8 or 8BITMIME missing), whose RCPT and DONE
 * events are queued before submit returns 0, and for a split message's
 * later transactions (see smtp_event.more).
 */
int smtp_session_submit(struct smtp_session *s, const struct smtp_message *m);

/*
 * smtp_session_transcript - append what was written since the last call,
 * one "C: ..." line per command (and, with trace_states, a "#: OLD ->
 * NEW" line per change of state), and clear it.  Credentials are masked
 * ("C: AUTH PLAIN ****") and a body is one line ("C: <message, 4123
 * bytes>"), so a transcript is safe to print.  Empty unless
 * params.transcript or params.trace_states is set.
 */
void smtp_session_transcript(struct smtp_session *s, struct buf *out);

/*
 * smtp_session_abort - the connection is gone (closed, timed out, TLS
 * failed): every unfinished message gets its DONE (not sent, local 4xx),
 * then FAILED with why, permanent when retrying cannot help (a
 * certificate that does not verify).
 */
void smtp_session_abort(struct smtp_session *s, const char *why,
			bool permanent);

/* smtp_session_replies - replies parsed so far: the caller's timeouts
 * run per reply, not per read (a server dribbling bytes gains nothing) */
unsigned long smtp_session_replies(const struct smtp_session *s);

/*
 * smtp_session_can_submit - would smtp_session_submit take a message now
 * (ready, window not full, not spent, QUIT not asked)?
 */
bool smtp_session_can_submit(const struct smtp_session *s);

/* smtp_session_tls_done - the handshake asked for by STARTTLS succeeded */
void smtp_session_tls_done(struct smtp_session *s);

/* smtp_session_quit - say QUIT once every submitted message is done */
void smtp_session_quit(struct smtp_session *s);

/*
 * smtp_session_event - the next event, oldest first; false if none.  The
 * strings in it stay valid until the next call into the session.
 */
bool smtp_session_event(struct smtp_session *s, struct smtp_event *ev);

/*
 * smtp_session_state - where the session is, by name: "GREETING",
 * "EHLO", "STARTTLS", "HANDSHAKE", "AUTH", "READY", "QUIT", "CLOSED" or
 * "FAILED" (the names the transcript's "#:" lines use)
 */
const char *smtp_session_state(const struct smtp_session *s);

/* smtp_session_caps - what the server offered (valid after READY) */
const struct smtp_caps *smtp_session_caps(const struct smtp_session *s);

/* smtp_session_idle - ready, with nothing submitted still in flight */
bool smtp_session_idle(const struct smtp_session *s);

/*
 * smtp_session_spent - the session has begun as many transactions as
 * max_messages or the server's MAILMAX allow, counting those a split
 * message in flight still needs: finish, QUIT and connect again for more.
 */
bool smtp_session_spent(const struct smtp_session *s);

/*
 * Where the session is, coarsely: what a caller timing the opening of a
 * connection needs (each step is one exchange: nothing else is in
 * flight while it lasts).
 */
enum smtp_phase {
	SMTP_PHASE_GREETING,	/* waiting for the 220 */
	SMTP_PHASE_EHLO,	/* EHLO (or HELO) sent, before or after TLS */
	SMTP_PHASE_STARTTLS,	/* STARTTLS sent, or its handshake due */
	SMTP_PHASE_AUTH,	/* AUTH under way */
	SMTP_PHASE_READY,	/* greeted: transactions, then QUIT */
	SMTP_PHASE_OVER,	/* closed or failed */
};
enum smtp_phase smtp_session_phase(const struct smtp_session *s);

/* What the oldest outstanding command waits for: picks the timeout
 * (RFC 5321 4.5.3.2). */
enum smtp_wait {
	SMTP_WAIT_NONE,		/* nothing outstanding */
	SMTP_WAIT_GREETING,	/* the 220 (5 minutes) */
	SMTP_WAIT_COMMAND,	/* a reply to a command (5 minutes) */
	SMTP_WAIT_DATA_END,	/* the reply to the end of data (10 min) */
	SMTP_WAIT_QUIT,		/* QUIT's: everything else is done */
};
enum smtp_wait smtp_session_waiting(const struct smtp_session *s);

#endif
