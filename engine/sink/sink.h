/*
 * sink - `volley sink`, the SMTP server that tests, benchmarks and users
 * point clients at: listeners, one thread per connection, TLS, the
 * maildir, the transaction log, the totals.  The protocol itself is
 * sink_session (sans I/O); the scripted faults are sink_faults.
 *
 * Each connection has a thread with a blocking socket and one 64 KiB
 * read buffer; everything the session answers to one read leaves in one
 * write.  With TLS, one read is every record OpenSSL holds (it reads
 * ahead), so a pipelined group costs the system calls plaintext's does.
 * In discard mode (no maildir) nothing is allocated per message.
 *
 * With a maildir, each accepted message is written to DIR/tmp/NAME and
 * renamed to DIR/new/NAME: exactly the bytes received (dot-stuffing of
 * DATA undone, BDAT chunks as sent), nothing added.  NAME is unique:
 * time, process, connection and message numbers.
 *
 * With a log, every transaction becomes one JSON line (see docs/sink.md).
 *
 * Errors: sink_open returns -1 with *error_r; after that, trouble
 * on one connection only ends that connection, and is reported through
 * the notify callback (never printed here).
 */
#ifndef VOLLEY_SINK_H
#define VOLLEY_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink_session.h"

struct sink;

#define SINK_LISTENERS_MAX 16

struct sink_config {
	struct sink_params proto;	/* faults included */
	const char *listen[SINK_LISTENERS_MAX];	/* "ADDR:PORT", "[V6]:PORT" */
	size_t nlisten;
	const char *implicit_tls[SINK_LISTENERS_MAX];
	size_t nimplicit;
	const char *tls_cert;		/* PEM chain; with tls_key or not */
	const char *tls_key;
	const char *maildir;		/* NULL: discard */
	const char *log_path;		/* NULL: no transaction log */
	int idle_timeout_s;		/* 0: 300 (RFC 5321 4.5.3.2.7) */
	/*
	 * notify - one line about a connection (its summary when verbose,
	 * a failed handshake, a failed store); called from connection
	 * threads, so it must be thread-safe.  May be NULL.
	 */
	void (*notify)(void *ctx, const char *line);
	void *notify_ctx;
	bool verbose;			/* a summary line per connection */
};

struct sink_totals {
	uint64_t connections;
	uint64_t messages;		/* accepted */
	uint64_t recipients;		/* of accepted messages */
	uint64_t bytes;			/* of accepted messages */
	uint64_t refused;		/* messages refused at end of data */
	uint64_t improper;		/* improper pipelining */
};

/*
 * sink_open - bind every listener, load the certificate, make the
 * maildir, open the log.  The config (and the strings and faults it
 * points to) must outlive the sink.
 */
int sink_open(const struct sink_config *cfg, struct sink **s_r,
	      const char **error_r);
void sink_free(struct sink **sp);

/* sink_listener_name - "127.0.0.1:2525" (the real port) of listener i:
 * the --listen ones first, then the implicit TLS ones; NULL past them */
const char *sink_listener_name(const struct sink *s, size_t i);

/*
 * sink_run - accept connections until sink_stop(); then close every
 * connection and wait for their threads.  Returns 0, or -1 with *error_r.
 */
int sink_run(struct sink *s, const char **error_r);

/* sink_stop - make sink_run return; async-signal-safe */
void sink_stop(struct sink *s);

void sink_totals(const struct sink *s, struct sink_totals *t);

#endif
