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

#include "engine/smtp_session.h"
#include "engine/transport.h"

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
	void *ctx;
	/* at most this many messages taken and not DONE (0: as many as the
	 * session takes): what the caller keeps buffers for */
	unsigned max_in_flight;
};

struct smtp_conn_result {
	bool closed;		/* QUIT was answered: a clean end */
	bool permanent;		/* a retry cannot help (see smtp_event) */
	bool out_of_step;	/* stop pipelining to this server */
	bool spent;		/* ended because the session was spent */
	unsigned messages;	/* messages taken from source->next */
	long connect_ms;	/* connect, TLS, greeting, EHLO, AUTH */
	long wait_ms;		/* blocked reading the server's replies */
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
