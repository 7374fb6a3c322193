/*
 * sink_session - the server side of one SMTP connection of `volley sink`,
 * without I/O: fed the client's bytes, it produces the reply bytes, asks
 * its caller to act (store a message, pause, do the TLS handshake, close)
 * and writes one JSON record per transaction.
 *
 * It speaks RFC 5321 with ENHANCEDSTATUSCODES (RFC 2034: every reply but
 * the greeting and the EHLO/HELO lines carries one), PIPELINING (RFC
 * 2920), CHUNKING (RFC 3030), 8BITMIME, SMTPUTF8 (RFC 6531), SIZE (RFC
 * 1870), STARTTLS (RFC 3207), AUTH PLAIN and LOGIN (RFC 4954) and LIMITS
 * RCPTMAX/MAILMAX (RFC 9422), each as configured, plus the scripted
 * faults of sink_faults.h.
 *
 * Contract with the caller (the I/O loop, or a test):
 *   - sink_session_start() once, then sink_session_feed() with every byte
 *     received that was not yet consumed: the session consumes complete
 *     command lines and content, and leaves a partial command line for
 *     the caller to hand back, with more bytes behind it, next time.
 *     Everything the caller holds when it calls feed is "already
 *     waiting": that is how early (improper) pipelining is seen.
 *   - after every call that returns an action, write what
 *     sink_session_output() gives and call sink_session_sent(); then
 *     act: SINK_MORE read more; SINK_DELAY wait sink_session_delay_ms()
 *     then call sink_session_delay_done() (more output follows);
 *     SINK_STORE store sink_session_message() and call
 *     sink_session_stored() (then feed the rest); SINK_STARTTLS drop every unconsumed byte,
 *     do the handshake, call sink_session_tls_done(); SINK_CLOSE close.
 *   - drain sink_session_records() whenever convenient; call
 *     sink_session_end() when the connection is gone.
 *
 * Buffers are per session and reused: after the first messages, a
 * session in discard mode allocates nothing per message.
 */
#ifndef VOLLEY_SINK_SESSION_H
#define VOLLEY_SINK_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink_faults.h"

/* RFC 5321 4.5.3.1.4 says 512; extensions' parameters need a bit more */
#define SINK_LINE_MAX 1000
/* RFC 4954 4: AUTH lines may reach 12288 octets */
#define SINK_AUTH_LINE_MAX 12288
/* recipients per transaction when no RCPTMAX is set */
#define SINK_RCPTS_MAX 10000

struct sink_session;

/* What the whole sink shares, read-only, with every session. */
struct sink_params {
	const char *hostname;
	bool pipelining, chunking, smtputf8, eightbitmime;
	bool starttls;		/* offer STARTTLS on plaintext connections */
	bool tls_configured;	/* a certificate is loaded */
	const char *auth_user;	/* NULL: no AUTH */
	const char *auth_pass;
	bool auth_plaintext;	/* AUTH without TLS even if TLS is there */
	uint64_t size_max;	/* 0: SIZE offered without a limit */
	unsigned rcptmax;	/* RFC 9422; 0: not announced */
	unsigned mailmax;
	bool store;		/* hand accepted messages out (SINK_STORE) */
	bool log;		/* write JSON records */
	const struct sink_faults *faults;	/* may be NULL */
};

enum sink_action {
	SINK_MORE,	/* everything usable was consumed: read more */
	SINK_DELAY,	/* wait sink_session_delay_ms(), then delay_done */
	SINK_STORE,	/* store sink_session_message(), then stored */
	SINK_STARTTLS,	/* discard unconsumed input, handshake, tls_done */
	SINK_CLOSE,	/* send the output, then close the connection */
};

/* What one connection did, for the sink's totals. */
struct sink_stats {
	uint64_t messages;	/* accepted (2xx at the end of data) */
	uint64_t recipients;	/* accepted, of accepted messages */
	uint64_t bytes;		/* content of accepted messages */
	uint64_t refused;	/* messages refused at the end of data */
	uint64_t improper;	/* improper pipelining seen */
};

/* sink_session_new - conn: the connection's number; tls: implicit TLS */
struct sink_session *sink_session_new(const struct sink_params *p,
				      unsigned long conn, bool tls);
void sink_session_free(struct sink_session **sp);

/* sink_session_start - the greeting (or the fault that replaces it) */
enum sink_action sink_session_start(struct sink_session *s);

/*
 * sink_session_feed - process data[0..len); *used says how much was
 * consumed (the rest must come back, with what follows, next time).
 */
enum sink_action sink_session_feed(struct sink_session *s, const char *data,
				   size_t len, size_t *used);

/* sink_session_output - the bytes to send now (len 0: none) */
void sink_session_output(const struct sink_session *s, const char **data,
			 size_t *len);
/* sink_session_sent - they were sent (or the connection is gone) */
void sink_session_sent(struct sink_session *s);

unsigned sink_session_delay_ms(const struct sink_session *s);
void sink_session_delay_done(struct sink_session *s);

/* sink_session_message - SINK_STORE: the message, exactly as received */
void sink_session_message(const struct sink_session *s, const char **data,
			  size_t *len);
/* sink_session_msgno - the current transaction's number (1 = first) */
unsigned sink_session_msgno(const struct sink_session *s);
/*
 * sink_session_stored - the message was stored under name (e.g.
 * "new/1700000000.123_1_1.host"), or not (name NULL: 451 4.3.0).
 * Returns the next action, as feed does, except that SINK_MORE means:
 * feed the rest of what was received (which may be nothing).
 */
enum sink_action sink_session_stored(struct sink_session *s,
				     const char *name);

/* sink_session_tls_done - the handshake succeeded: start afresh */
void sink_session_tls_done(struct sink_session *s);

/*
 * sink_session_records - JSON records, one per line, not yet taken;
 * sink_session_records_taken() forgets them.
 */
void sink_session_records(const struct sink_session *s, const char **data,
			  size_t *len);
void sink_session_records_taken(struct sink_session *s);

/*
 * sink_session_end - the connection is gone: record an unfinished
 * transaction (drain the records after this).
 */
void sink_session_end(struct sink_session *s);

const struct sink_stats *sink_session_stats(const struct sink_session *s);

#endif
