/*
 * loadtest - the load generator behind `volley loadtest`: a number of
 * connections, one thread each, driving smtp_conn against a relay with
 * messages made up front, and what they measured.
 *
 * Two modes:
 *   closed loop (rate 0): each connection sends as fast as the server
 *     answers - as many messages in flight as go out at once (one
 *     lock-step, two with PIPELINING, the BDAT window with CHUNKING);
 *   open loop (rate > 0): message k is due at a fixed time, k / rate
 *     after the start (with a ramp, the rate grows linearly from 0 over
 *     ramp_us first).  A connection with nothing in flight takes the next
 *     slot and sleeps until it is due; one with messages in flight takes
 *     only slots already due.  A message's latency runs from its slot,
 *     not from when it left: a server that stalls makes every message
 *     due during the stall late, and the histogram shows each of them
 *     (the "coordinated omission" correction wrk2 makes for HTTP).  The
 *     start lag - slot to hand-out - says how far behind the client was.
 *
 * Latency of a transaction, to the reply to its end of data, from:
 *   closed loop: the moment the message is handed to smtp_conn (it is
 *     written at once, see above) or, with DATA, when it was pipelined
 *     behind the connection's previous message, that one's reply - its
 *     body cannot go before (the 354 comes with that reply), and the
 *     server works through a connection in order, so that is when it
 *     could start on this one: the figure is the server's time per
 *     transaction, not a queue of the client's making.  With BDAT each
 *     message goes whole at once, and its time runs from then (the
 *     window's wait included);
 *   open loop: its slot.
 * Only messages the server took are in that histogram, the others are
 * counted by reply code.  The
 * opening steps (connect, TLS, greeting, EHLO, AUTH) are timed per
 * connection by smtp_conn (struct smtp_conn_phases).  All in
 * microseconds, in log-linear histograms (engine/loadtest/histogram.h): each
 * thread records into its own, under its own lock, and a report merges
 * them.
 *
 * Messages: a few prepared contents (one per size, with weights), each
 * copied once into a buffer per message slot of a connection; per message
 * only the sequence number in the Message-ID is written over, and the
 * envelope addresses are made from the patterns: nothing is allocated per
 * message.  Sequence numbers start at 1; in the patterns, {n} is the
 * message's number in the sender and the recipient's own number in a
 * recipient (message k's recipients are (k-1)*recipients + 1 ...
 * k*recipients), so every recipient address differs.
 *
 * Connections are made again after messages_per_connection messages (the
 * session's max_messages), after the server's MAILMAX, and after a
 * failure (with a backoff from 100 ms to 2 s, so a refusing server is not
 * hammered).  With a count, a connection is opened only while the
 * messages left outnumber the connections that may still take some, so
 * --count 3 with 8 connections opens 3.  The run gives up (loadtest_report's fatal) on a
 * permanent failure (AUTH refused, a certificate that does not verify)
 * and when no connection has ever been ready after every connection has
 * failed twice (nothing listening).
 *
 * Thread rules: loadtest_start returns with the threads running; the
 * caller polls with loadtest_wait and loadtest_report from one thread.
 * loadtest_stop may be called at any time, from that thread.
 */
#ifndef VOLLEY_LOADTEST_H
#define VOLLEY_LOADTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "histogram.h"
#include "smtp_conn.h"

struct loadtest;

#define LOADTEST_MAX_CONNECTIONS 1000
#define LOADTEST_MAX_RECIPIENTS 100
#define LOADTEST_MAX_PATTERN 200	/* bytes of an address pattern */
#define LOADTEST_SEQ_DIGITS 20		/* the sequence in a Message-ID */
#define LOADTEST_CODES 600		/* reply codes counted: 0 .. 599 */

enum loadtest_phase {
	LOADTEST_CONNECT,
	LOADTEST_TLS,
	LOADTEST_GREETING,
	LOADTEST_EHLO,
	LOADTEST_AUTH,
	LOADTEST_TRANSACTION,
	LOADTEST_START_LAG,	/* open loop: slot to hand-out */
	LOADTEST_PHASES,
};

/* loadtest_phase_name - "connect", "tls", ... "transaction", "start_lag" */
const char *loadtest_phase_name(enum loadtest_phase ph);

/* One message to send, whole, with CRLF line ends. */
struct loadtest_content {
	const char *data;
	size_t len;
	/* LOADTEST_SEQ_DIGITS digits at data + seq_at are overwritten with
	 * each message's sequence number; SIZE_MAX: sent as it is */
	size_t seq_at;
	unsigned weight;	/* how often, relative to the others */
};

struct loadtest_params {
	struct smtp_conn_params conn;	/* the relay, TLS, AUTH, pipelining,
					 * chunking, messages per connection
					 * (session.max_messages) */
	unsigned connections;
	uint64_t count;		/* messages to hand out; 0: no limit */
	uint64_t duration_us;	/* how long; 0: no limit (count must be
				 * set) */
	double rate;		/* messages per second; 0: closed loop */
	uint64_t ramp_us;	/* open loop: the rate grows from 0 over
				 * this; closed loop: connections start
				 * spread over it */
	unsigned recipients;	/* per message */
	const char *from;	/* address patterns, {n} for the number */
	const char *to;
	const struct loadtest_content *contents;
	size_t ncontents;
};

/* What was measured: a sum over the connection threads. */
struct loadtest_stats {
	uint64_t attempted;	/* messages handed out */
	uint64_t sent;		/* end of data answered 2xx */
	uint64_t refused;	/* the server said 4xx/5xx (by code below) */
	uint64_t lost;		/* not sent for a local reason: the
				 * connection failed under it, or volley
				 * refused it (over the server's SIZE) */
	uint64_t in_doubt;	/* lost after it went whole: the server may
				 * have it */
	/* transactions beyond one per message: the server took fewer
	 * recipients than a message has, so it went in several (sent,
	 * refused and lost count each) */
	uint64_t split;
	uint64_t bytes_sent;	/* of the messages sent */
	uint64_t connections;	/* attempts, successful or not */
	/* a message's final reply (the reply to its end of data, else the
	 * refusal of its MAIL or its first recipient), from the server */
	uint64_t replies[LOADTEST_CODES];
	uint64_t rcpt_replies[LOADTEST_CODES];	/* each RCPT's, the server's */
	/* connections that ended without QUIT answered, by kind */
	uint64_t failures[SMTP_CONN_FAILURES];
	struct histogram phases[LOADTEST_PHASES];
};

struct loadtest_report {
	struct loadtest_stats s;
	double elapsed_s;	/* from the start to the end (or now) */
	bool finished;		/* every connection thread has ended */
	bool stopped;		/* loadtest_stop was called */
	char fatal[640];	/* why the run gave up; "" if it did not */
};

/*
 * loadtest_build_message - a plain-text message of exactly size bytes:
 * headers (Date, From: from, To: undisclosed-recipients, Subject,
 * Message-ID <loadtest.NNN.id_right>, MIME) and lines of text, all CRLF.
 * *seq_at is where the Message-ID's digits are.  Returns -1 with
 * *error_r if size cannot hold the headers.
 */
int loadtest_build_message(struct buf *out, size_t size, const char *from,
			   const char *id_right, size_t *seq_at,
			   const char **error_r);

/*
 * loadtest_set_message_id - replace msg's Message-ID header (or add one
 * first, if it has none) with <loadtest.NNN.id_right>; *seq_at is where
 * the digits are.  For a message rendered from a template.
 */
void loadtest_set_message_id(struct buf *msg, const char *id_right,
			     size_t *seq_at);

/*
 * loadtest_format - pattern with every {n} replaced by n, into out (at
 * most size bytes with the NUL).  Returns the length, or -1 when it does
 * not fit.
 */
int loadtest_format(const char *pattern, uint64_t n, char *out, size_t size);

/*
 * loadtest_start - check p, start the connection threads.  Returns 0, or
 * -1 with *error_r (bad parameters, threads that cannot start).
 * The strings and contents p points to must outlive the run.
 */
int loadtest_start(const struct loadtest_params *p, struct loadtest **lt_r,
		   const char **error_r);

/* loadtest_stop - hand out no more messages: connections finish what is
 * in flight and QUIT */
void loadtest_stop(struct loadtest *lt);

/*
 * loadtest_wait - wait up to timeout_ms for every connection thread to
 * end; true once they all have.
 */
bool loadtest_wait(struct loadtest *lt, int timeout_ms);

/*
 * loadtest_report - the sums so far (final once loadtest_wait returned
 * true).  all_phases false merges only the transaction histogram (the
 * others stay empty): enough for a progress line, and cheaper.
 */
void loadtest_report(struct loadtest *lt, struct loadtest_report *r,
		     bool all_phases);

/* loadtest_free - wait for the threads (after loadtest_stop if they are
 * still running), free everything */
void loadtest_free(struct loadtest **ltp);

#endif
