/*
 * smtp_conn - one SMTP connection driven from connect to QUIT: the
 * transport (TCP, TLS) under the session (the protocol), in a loop of
 * submit, write, read with the timeout RFC 5321 4.5.3.2 gives for what is
 * awaited, feed, and hand out events.
 *
 * Messages are pulled from the caller (source->next) while the session
 * can take them, so a pipelined or chunked connection always has work in
 * flight; every message taken gets exactly one DONE event before
 * smtp_conn_run returns, whatever happens to the connection (a lost
 * connection gives the unfinished ones a local 4xx: retry them).
 *
 * What the caller decides, because it sees many connections: whether to
 * reconnect (after a spent session, or a failure that is not permanent),
 * and to stop pipelining to a server whose replies went out of step
 * (result.out_of_step).
 *
 * Thread rules: a connection runs entirely in the calling thread;
 * different threads may run connections at once, sharing one
 * transport_tls.
 */
#ifndef VOLLEY_SMTP_CONN_H
#define VOLLEY_SMTP_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp_session.h"
#include "transport.h"

struct smtp_conn_params {
	struct transport_params transport;	/* host, port, tls_name,
						 * connect_timeout_ms */
	struct transport_tls *tls;	/* needed unless session.tls is NONE */
	struct smtp_session_params session;
	/* milliseconds; 0: RFC 5321's 5, 5 and 10 minutes */
	int greeting_timeout_ms;
	int command_timeout_ms;
	int data_end_timeout_ms;
};

struct smtp_conn_source {
	/*
	 * next - the next message for this connection, or NULL when there
	 * is none: the connection then finishes what is in flight and
	 * QUITs - unless next set *later, which means "none now, keep the
	 * connection": next is asked again once a reply has come in, or at
	 * once when nothing is in flight (it may then block until work
	 * comes).  The message (and what it points to) must stay valid
	 * until its DONE event.
	 */
	const struct smtp_message *(*next)(void *ctx, bool *later);
	/* event - a message's RCPT and DONE events, in order */
	void (*event)(void *ctx, const struct smtp_event *ev);
	/*
	 * trace - when not NULL, the conversation a line at a time: dir 'C'
	 * for what volley sent (credentials masked, bodies as their size),
	 * 'S' for what the server said (control bytes shown as \xNN), '*'
	 * for what happened (connected, TLS up).
	 */
	void (*trace)(void *ctx, char dir, const char *line, size_t len);
	/*
	 * ready - when not NULL, called once the session is ready (greeted,
	 * TLS and AUTH done), with what the server offers: a caller that
	 * times messages from the moment next hands them out takes no more
	 * than go out at once (one lock-step, two with PIPELINING, the
	 * window with CHUNKING), so none waits in the session unsent.
	 */
	void (*ready)(void *ctx, const struct smtp_caps *caps);
	void *ctx;
	/* at most this many messages taken and not DONE (0: as many as the
	 * session takes): what the caller keeps buffers for */
	unsigned max_in_flight;
	/*
	 * next never blocks while messages are in flight (it may when none
	 * is): then what the session has ready need not be written before
	 * next is asked, and a message's commands leave in the same write
	 * as the body before them - one read and one reply for the server
	 * instead of two.
	 */
	bool next_returns_at_once;
};

/* Why a connection ended without QUIT answered, to count failures by
 * kind (result.error says it in words). */
enum smtp_conn_failure {
	SMTP_CONN_OK,		/* QUIT answered: no failure */
	SMTP_CONN_REFUSED,	/* TCP connection refused: nothing listens */
	SMTP_CONN_RESET,	/* the server reset or closed the connection
				 * while a reply was awaited */
	SMTP_CONN_TIMEOUT,	/* connecting or a reply took too long */
	SMTP_CONN_TLS,		/* the TLS handshake failed (certificate,
				 * protocol), STARTTLS refused, missing or
				 * with bytes injected behind its 220 */
	SMTP_CONN_REJECTED,	/* the server refused the session by a reply:
				 * greeting, EHLO, AUTH; or 421 */
	SMTP_CONN_PROTOCOL,	/* replies malformed or out of step */
	SMTP_CONN_OTHER,	/* no route, a name that does not resolve, a
				 * local refusal */
};
#define SMTP_CONN_FAILURES (SMTP_CONN_OTHER + 1)

/* smtp_conn_failure_name - "refused", "reset" ...; "ok" for SMTP_CONN_OK */
const char *smtp_conn_failure_name(enum smtp_conn_failure f);

/*
 * How long each step of opening the connection took, in microseconds;
 * -1 when the step did not happen or did not finish.  Each is one
 * exchange with nothing else in flight, timed from the moment it began
 * to its reply:
 *   connect  the TCP handshake (name resolution included when host is a
 *            name: pass an address to time TCP alone);
 *   tls      implicit TLS: the handshake; STARTTLS: the STARTTLS command,
 *            its 220 and the handshake;
 *   greeting from connected (and TLS up, when implicit) to the 220;
 *   ehlo     EHLO (or HELO) to its reply; with STARTTLS the sum of the
 *            two EHLOs, before and after TLS;
 *   auth     AUTH to 235, every step of it.
 */
struct smtp_conn_phases {
	long long connect_us;
	long long tls_us;
	long long greeting_us;
	long long ehlo_us;
	long long auth_us;
};

struct smtp_conn_result {
	bool closed;		/* QUIT was answered: a clean end */
	bool permanent;		/* a retry cannot help (see smtp_event) */
	bool out_of_step;	/* stop pipelining to this server */
	bool spent;		/* ended because the session was spent */
	unsigned messages;	/* messages taken from source->next */
	unsigned delivered;	/* of them, DONE with sent */
	/* the reply that ended the session (a 421), the command it
	 * answered; closing_code 0 when no reply ended it */
	int closing_code;
	char closing_enhanced[16];
	char closing_text[200];		/* its text, cut to fit */
	enum smtp_step closing_step;
	long connect_ms;	/* connect, TLS, greeting, EHLO, AUTH */
	long wait_ms;		/* blocked reading the server's replies */
	struct smtp_conn_phases phases;
	bool ready;		/* the session got as far as READY */
	enum smtp_conn_failure failure;	/* SMTP_CONN_OK when closed */
	char error[512];	/* why it ended, when not closed */
};

/*
 * smtp_conn_run - connect, run the session until there is nothing more
 * to send (or it fails), QUIT, close.  Returns 0 when the session ended
 * with QUIT answered, -1 otherwise (result->error says why).
 */
int smtp_conn_run(const struct smtp_conn_params *p,
		  const struct smtp_conn_source *source,
		  struct smtp_conn_result *result);

#endif
