/*
 * transport - one TCP connection, optionally TLS (OpenSSL), with
 * deadlines: the I/O under an SMTP session, which knows no SMTP.
 *
 * The socket is non-blocking; every call waits with poll() for at most
 * its deadline (connect_timeout_ms for the connection and the TLS
 * handshake, io_timeout_ms for each read or write), so a silent server
 * never hangs a worker.  Host names are resolved once per connect, and
 * the addresses raced as RFC 8305 (Happy Eyeballs) says: the families
 * take turns, each address is tried 250 ms after the one before (at once
 * if that one failed) while the earlier go on, the first to connect wins,
 * all within connect_timeout_ms; so a blackholed address costs 250 ms,
 * not the whole timeout.  TCP_NODELAY is set.
 *
 * TLS: 1.2 at least; the certificate chain is verified against the
 * system store (or ca_file) and the host name against the certificate's
 * subjectAltName (never its CN), unless verify is false - which the
 * caller should say loudly.  SNI carries the name, never an address
 * (RFC 6066 3).  A failed handshake says why
 * ("certificate verify failed: self-signed certificate", "hostname
 * mismatch: the certificate has no subjectAltName ...").
 *
 * Resumption (TLS 1.2 and 1.3): each transport_tls keeps the latest
 * session of every relay it talked to, keyed by the name checked
 * (tls_name or host), the host and the port, and offers it on the next
 * connection to the same; never to another name, and never across
 * contexts, so never with other verification settings.  TLS 1.3 servers
 * send their tickets after the handshake: they are taken in by the first
 * transport_read (the greeting for implicit TLS, the EHLO reply after
 * STARTTLS), so a connection closed before reading anything leaves none.
 *
 * Errors: functions return -1 and point *error_r at one line (errmsg.h).
 * Running out of file descriptors is named ("Too many open files")
 * wherever it strikes: the name's lookup, the socket, OpenSSL reading a
 * CA file or folder (which is then no verdict on the certificate).
 *
 * TLS costs no more system calls than plaintext: a transport_write's
 * records leave in one send() (per 256 KB), and reads take what the
 * socket has, many records at once (read-ahead), not a record header
 * and then its body.  Kernel TLS is not used: OpenSSL asks its BIO to
 * switch it on (BIO_CTRL_SET_KTLS), and ours (below) says no, so the
 * records are made in user space; the kernels here have no TLS
 * (CONFIG_TLS) to offer anyway (docs/performance.md).
 *
 * Writes cannot raise SIGPIPE (send() with MSG_NOSIGNAL, for TLS too,
 * through a socket BIO of our own): a server that has closed the
 * connection makes a write fail with an error, whatever the process does
 * with SIGPIPE.
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
		      struct transport_tls **tls_r, const char **error_r);
void transport_tls_free(struct transport_tls **tlsp);

/*
 * Why a call failed, as a kind a caller can count (a load test's error
 * table) without reading the text in err.
 */
enum transport_error {
	TRANSPORT_ERR_NONE,
	TRANSPORT_ERR_REFUSED,	/* nothing listens there (ECONNREFUSED) */
	TRANSPORT_ERR_RESET,	/* the peer reset or cut the connection */
	TRANSPORT_ERR_TIMEOUT,	/* a deadline passed */
	TRANSPORT_ERR_TLS,	/* the TLS handshake failed, or a TLS record
				 * was bad */
	TRANSPORT_ERR_OTHER,	/* no route, a name that does not resolve,
				 * a local error */
};

/* transport_errno_kind - the kind of a socket errno value */
enum transport_error transport_errno_kind(int e);

/*
 * transport_connect - resolve and connect.  On failure errno is left at
 * the reason, for transport_errno_kind(): connect()'s error
 * (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH ...), the lookup's own (EMFILE
 * when no descriptor was left to read /etc/hosts with ...), or 0 when
 * the name did not resolve.
 */
int transport_connect(const struct transport_params *p,
		      struct transport **t_r, const char **error_r);

/*
 * transport_connect_addrs - transport_connect to addresses known already
 * (a getaddrinfo() list, or one a test made by hand), in their order;
 * p->host and p->port only name the relay (messages, the certificate
 * check, the session cache).
 */
struct addrinfo;
int transport_connect_addrs(const struct transport_params *p,
			    const struct addrinfo *addrs,
			    struct transport **t_r, const char **error_r);
void transport_close(struct transport **tp);

/*
 * transport_start_tls - the TLS handshake on the open connection (right
 * after connecting for implicit TLS, after the 220 for STARTTLS); the
 * name checked and sent as SNI is p->tls_name, or p->host (an address
 * is checked, not sent).
 */
int transport_start_tls(struct transport *t, struct transport_tls *tls,
			const char **error_r);
bool transport_is_tls(const struct transport *t);

/*
 * transport_tls_resumed - whether the TLS handshake resumed an earlier
 * session (an abbreviated handshake, no certificate sent: it was checked
 * when the session was made); false without TLS
 */
bool transport_tls_resumed(const struct transport *t);

/*
 * transport_error - what the last failed call on t (a read, a write, the
 * handshake) ran into.  Every failure of transport_start_tls is
 * TRANSPORT_ERR_TLS, whatever broke the handshake: for the operator it
 * is TLS that failed.
 */
enum transport_error transport_error(const struct transport *t);

/*
 * transport_verify_failed - the last handshake failed because the
 * certificate did not verify (chain or name): retrying will not help.
 */
bool transport_verify_failed(const struct transport *t);

/*
 * transport_set_io_timeout - the deadline for each later read or write
 * (ms; 0: the default), as what is awaited changes (RFC 5321 4.5.3.2)
 */
void transport_set_io_timeout(struct transport *t, int ms);

/* transport_write - all n bytes, or -1 */
int transport_write(struct transport *t, const void *data, size_t n,
		    const char **error_r);

/*
 * transport_read - up to n bytes: > 0 bytes read, 0 when the server
 * closed the connection, -1 on an error or when io_timeout_ms passes.
 */
ssize_t transport_read(struct transport *t, void *buf, size_t n,
		       const char **error_r);

#endif
