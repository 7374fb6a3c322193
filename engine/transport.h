/*
 * transport - one TCP connection, optionally TLS (OpenSSL), with
 * deadlines: the I/O under an SMTP session, which knows no SMTP.
 *
 * The socket is non-blocking; every call waits with poll() for at most
 * its deadline (connect_timeout_ms for the connection and the TLS
 * handshake, io_timeout_ms for each read or write), so a silent server
 * never hangs a worker.  Host names are resolved once per connect, IPv6
 * and IPv4 addresses tried in the resolver's order; TCP_NODELAY is set.
 *
 * TLS: 1.2 at least; the certificate chain is verified against the
 * system store (or ca_file) and the host name against the certificate,
 * with SNI, unless verify is false - which the caller should say loudly.
 * A failed handshake says why ("certificate verify failed: self-signed
 * certificate", "hostname mismatch").  A session from an earlier
 * connection to the same relay is offered for resumption.
 *
 * Errors: functions return -1 and write one line into err.
 *
 * The process must ignore SIGPIPE (volley's main does): OpenSSL writes to
 * the socket with write(), and a server that has closed the connection
 * would otherwise kill the whole run with the next write.
 */
#ifndef VOLLEY_TRANSPORT_H
#define VOLLEY_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct transport;
struct transport_tls;

struct transport_params {
	const char *host;
	const char *port;		/* "25", "587", "465" ... */
	/* the name to find in the certificate and send as SNI; NULL: host
	 * (set it to reach a relay by address yet check its name) */
	const char *tls_name;
	int connect_timeout_ms;		/* 0: 30 s */
	int io_timeout_ms;		/* 0: 300 s (RFC 5321 4.5.3.2) */
};

/*
 * A TLS context, shared by every connection of a run (thread-safe): the
 * verification settings and the session cache for resumption.
 */
struct transport_tls_params {
	bool verify;			/* chain and host name; default true */
	const char *ca_file;		/* NULL: the system store */
};
int transport_tls_new(const struct transport_tls_params *p,
		      struct transport_tls **tls_r, char *err, size_t errsize);
void transport_tls_free(struct transport_tls **tlsp);

int transport_connect(const struct transport_params *p,
		      struct transport **t_r, char *err, size_t errsize);
void transport_close(struct transport **tp);

/*
 * transport_start_tls - the TLS handshake on the open connection (right
 * after connecting for implicit TLS, after the 220 for STARTTLS); the
 * name checked and sent as SNI is p->tls_name, or p->host.
 */
int transport_start_tls(struct transport *t, struct transport_tls *tls,
			char *err, size_t errsize);
bool transport_is_tls(const struct transport *t);

/* transport_write - all n bytes, or -1 */
int transport_write(struct transport *t, const void *data, size_t n,
		    char *err, size_t errsize);

/*
 * transport_read - up to n bytes: > 0 bytes read, 0 when the server
 * closed the connection, -1 on an error or when io_timeout_ms passes.
 */
ssize_t transport_read(struct transport *t, void *buf, size_t n, char *err,
		       size_t errsize);

#endif
