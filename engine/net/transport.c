/*
 * transport - one TCP connection, optionally TLS, with deadlines (see
 * transport.h).  The client's only file that includes OpenSSL (the test
 * server has its own, engine/sink/sink.c).
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "errmsg.h"
#include "xalloc.h"

#define TRANSPORT_CONNECT_TIMEOUT_MS 30000
#define TRANSPORT_IO_TIMEOUT_MS 300000
/* RFC 8305 5's recommended Connection Attempt Delay */
#define TRANSPORT_ATTEMPT_DELAY_MS 250
/*
 * The most plaintext given to OpenSSL in one go while the socket BIO
 * gathers its records (see transport_tls_write): the session's body
 * pieces are at most 256 KB, so a piece goes out in one send().
 */
#define TRANSPORT_TLS_BATCH (256 * 1024)
/* relays remembered for resumption; the least recently used goes first */
#define TRANSPORT_SESSIONS 64

/* Where MSG_NOSIGNAL is missing, SO_NOSIGPIPE on the socket does it. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* One relay's latest session, for resumption. */
struct transport_session {
	char *key;		/* transport_session_key(); NULL: a free slot */
	SSL_SESSION *session;
	unsigned long used;	/* tls->clock when last stored or taken */
};

/*
 * The session cache is ours, not OpenSSL's (SSL_SESS_CACHE_NO_INTERNAL_
 * STORE): sessions arrive through transport_new_session(), which OpenSSL
 * calls at the end of a TLS 1.2 handshake and for each TLS 1.3 ticket,
 * which comes after the handshake, with the first data read.  It belongs
 * to one context, so a session is only ever offered with the
 * verification settings that accepted it; its key holds the name checked
 * too (see transport_session_key).
 */
struct transport_tls {
	SSL_CTX *ctx;
	bool verify;
	pthread_mutex_t lock;	/* guards sessions and clock */
	struct transport_session sessions[TRANSPORT_SESSIONS];
	unsigned long clock;
};

struct transport_bio;

struct transport {
	struct transport_params p;
	char *host;
	char *port;
	char *tls_name;
	char *session_key;	/* with TLS: this connection's cache key */
	int fd;
	SSL *ssl;
	struct transport_bio *bio;	/* ssl's socket BIO's state */
	bool ssl_broken;	/* a fatal TLS error: no shutdown alert */
	bool verify_failed;	/* the certificate did not verify */
	enum transport_error error;	/* of the last failed call */
	struct transport_tls *tls;
};

/*
 * transport_wait - poll fd for events until deadline (ms, monotonic).
 * Returns 1 when ready, 0 on timeout, -1 on error.
 */
static int transport_wait(int fd, short events, long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		long left = deadline - clock_mono_ms();

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

enum transport_error transport_errno_kind(int e)
{
	switch (e) {
	case 0:
		return TRANSPORT_ERR_OTHER;
	case ECONNREFUSED:
		return TRANSPORT_ERR_REFUSED;
	case ECONNRESET:
	case ECONNABORTED:
	case EPIPE:
		return TRANSPORT_ERR_RESET;
	case ETIMEDOUT:
		return TRANSPORT_ERR_TIMEOUT;
	default:
		return TRANSPORT_ERR_OTHER;
	}
}

/*
 * transport_ssl_kind - after a fatal SSL_get_error() result e, before
 * the error queue is read: a connection the peer cut (a reset, or an EOF
 * without close_notify) is a reset, not a TLS failure.
 */
static enum transport_error transport_ssl_kind(int e)
{
	unsigned long err = ERR_peek_error();

	if (e == SSL_ERROR_SYSCALL && err == 0)
		return errno == 0 ? TRANSPORT_ERR_RESET :
		       transport_errno_kind(errno);
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		return TRANSPORT_ERR_RESET;
#endif
	return TRANSPORT_ERR_TLS;
}

/*
 * transport_ssl_error - the reason of OpenSSL's last error, into *error_r;
 * with no OpenSSL error queued, errno's (a reset) or else a plain close.
 * A system error (a file OpenSSL could not open) is told by its errno's
 * words: OpenSSL has no reason string for it, only a code.
 */
static void transport_ssl_error(const char **error_r, const char *what)
{
	unsigned long e = ERR_get_error();
	const char *reason = NULL;
	char buf[256];

	if (e != 0 && ERR_SYSTEM_ERROR(e))
		reason = strerror(ERR_GET_REASON(e));
	else if (e != 0)
		reason = ERR_reason_error_string(e);
	if (e != 0 && reason == NULL) {
		ERR_error_string_n(e, buf, sizeof(buf));
		reason = buf;
	}
	errmsg_set(error_r, "%s: %s", what, reason ? reason :
		   errno ? strerror(errno) : "connection closed");
	ERR_clear_error();
}

/*
 * transport_queued_errno - the first system error OpenSSL queued (an
 * errno), or 0; the queue is left empty
 */
static int transport_queued_errno(void)
{
	unsigned long e;
	int found = 0;

	while ((e = ERR_get_error()) != 0)
		if (found == 0 && ERR_SYSTEM_ERROR(e))
			found = ERR_GET_REASON(e);
	return found;
}

/*
 * transport_session_key - what a session is filed under: the name checked
 * in the certificate (and sent as SNI), the host and the port, each
 * length-prefixed so no two triples give the same key.  The context's
 * verification settings need no place in it: the cache is per context.
 */
static char *transport_session_key(const struct transport *t)
{
#define TRANSPORT_KEY_FMT "%zu:%s %zu:%s %s"
	size_t nl = strlen(t->tls_name), hl = strlen(t->host);
	int len = snprintf(NULL, 0, TRANSPORT_KEY_FMT, nl, t->tls_name, hl,
			   t->host, t->port);
	char *key = xmalloc((size_t)len + 1);

	snprintf(key, (size_t)len + 1, TRANSPORT_KEY_FMT, nl, t->tls_name, hl,
		 t->host, t->port);
#undef TRANSPORT_KEY_FMT
	return key;
}

static void transport_session_clear(struct transport_session *s)
{
	free(s->key);
	if (s->session != NULL)
		SSL_SESSION_free(s->session);
	memset(s, 0, sizeof(*s));
}

/* transport_session_find - the slot for key, or NULL; tls->lock held */
static struct transport_session *
transport_session_find(struct transport_tls *tls, const char *key)
{
	for (size_t i = 0; i < TRANSPORT_SESSIONS; i++)
		if (tls->sessions[i].key != NULL &&
		    strcmp(tls->sessions[i].key, key) == 0)
			return &tls->sessions[i];
	return NULL;
}

/* transport_session_put - file session under key (taking a reference) */
static void transport_session_put(struct transport_tls *tls, const char *key,
				  SSL_SESSION *session)
{
	struct transport_session *s;

	SSL_SESSION_up_ref(session);
	pthread_mutex_lock(&tls->lock);
	s = transport_session_find(tls, key);
	if (s == NULL) {
		/* a free slot, else the least recently used */
		s = &tls->sessions[0];
		for (size_t i = 0; i < TRANSPORT_SESSIONS &&
		     s->key != NULL; i++)
			if (tls->sessions[i].key == NULL ||
			    tls->sessions[i].used < s->used)
				s = &tls->sessions[i];
		transport_session_clear(s);
		s->key = xstrdup(key);
	} else {
		SSL_SESSION_free(s->session);
	}
	s->session = session;
	s->used = ++tls->clock;
	pthread_mutex_unlock(&tls->lock);
}

/*
 * transport_session_get - a resumable session filed under key, with a
 * reference for the caller, or NULL
 */
static SSL_SESSION *transport_session_get(struct transport_tls *tls,
					  const char *key)
{
	struct transport_session *s;
	SSL_SESSION *session = NULL;

	pthread_mutex_lock(&tls->lock);
	s = transport_session_find(tls, key);
	if (s != NULL && !SSL_SESSION_is_resumable(s->session)) {
		transport_session_clear(s);
	} else if (s != NULL) {
		session = s->session;
		SSL_SESSION_up_ref(session);
		s->used = ++tls->clock;
	}
	pthread_mutex_unlock(&tls->lock);
	return session;
}

/*
 * transport_session_drop - forget session if it is still the one filed
 * under key: a handshake that offered it failed.  A newer one, from
 * another connection, stays.
 */
static void transport_session_drop(struct transport_tls *tls, const char *key,
				   const SSL_SESSION *session)
{
	struct transport_session *s;

	if (session == NULL)
		return;
	pthread_mutex_lock(&tls->lock);
	s = transport_session_find(tls, key);
	if (s != NULL && s->session == session)
		transport_session_clear(s);
	pthread_mutex_unlock(&tls->lock);
}

/*
 * transport_new_session - OpenSSL's new-session callback: a full TLS 1.2
 * handshake ended, or a TLS 1.3 ticket came.  Returns 0: OpenSSL keeps
 * (and drops) its reference, the cache took its own.
 */
static int transport_new_session(SSL *ssl, SSL_SESSION *session)
{
	struct transport *t = SSL_get_app_data(ssl);

	if (t == NULL || t->session_key == NULL ||
	    !SSL_SESSION_is_resumable(session))
		return 0;
	/* Belt and braces: verification failures abort the handshake. */
	if (t->tls->verify && SSL_get_verify_result(ssl) != X509_V_OK)
		return 0;
	transport_session_put(t->tls, t->session_key, session);
	return 0;
}

/*
 * A socket BIO that cannot raise SIGPIPE: OpenSSL's own writes with
 * write(), which kills a process that does not ignore SIGPIPE when the
 * server has closed the connection.  This one sends with MSG_NOSIGNAL (or
 * relies on SO_NOSIGPIPE, set on the socket where MSG_NOSIGNAL is
 * missing).  The fd stays the transport's: freeing the BIO leaves it open.
 *
 * While corked it sends nothing: the records OpenSSL writes gather in
 * out, and transport_tls_write sends them in one go.  OpenSSL writes
 * each record (16 KB at most) to its BIO at once, so a 100 KB message
 * cost seven send() calls where plaintext takes one.
 */
struct transport_bio {
	int fd;
	bool eof;		/* recv() returned 0 */
	bool cork;
	char *out;		/* records gathered while corked */
	size_t out_len, out_cap;
};

static BIO_METHOD *transport_bio_method;
static pthread_once_t transport_bio_once = PTHREAD_ONCE_INIT;

static int transport_bio_write(BIO *b, const char *data, int len)
{
	struct transport_bio *tb = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (tb->cork && len > 0) {
		if (tb->out_cap - tb->out_len < (size_t)len) {
			size_t cap = tb->out_cap ? tb->out_cap : 16384;

			while (cap - tb->out_len < (size_t)len)
				cap *= 2;
			tb->out = xrealloc(tb->out, cap);
			tb->out_cap = cap;
		}
		memcpy(tb->out + tb->out_len, data, (size_t)len);
		tb->out_len += (size_t)len;
		return len;
	}
	n = send(tb->fd, data, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int transport_bio_read(BIO *b, char *buf, int len)
{
	struct transport_bio *tb = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (buf == NULL || len <= 0)
		return 0;
	n = recv(tb->fd, buf, (size_t)len, 0);
	if (n == 0)
		tb->eof = true;
	else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
			   errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static int transport_bio_puts(BIO *b, const char *s)
{
	return transport_bio_write(b, s, (int)strlen(s));
}

static long transport_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct transport_bio *tb = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:	/* tells an unexpected EOF from an error */
		return tb != NULL && tb->eof;
	case BIO_C_GET_FD:
		if (tb == NULL)
			return -1;
		if (ptr != NULL)
			*(int *)ptr = tb->fd;
		return tb->fd;
	default:
		return 0;
	}
}

static int transport_bio_destroy(BIO *b)
{
	struct transport_bio *tb = BIO_get_data(b);

	if (tb != NULL)
		free(tb->out);
	free(tb);
	BIO_set_data(b, NULL);
	BIO_set_init(b, 0);
	return 1;
}

static void transport_bio_method_new(void)
{
	int type = BIO_get_new_index();
	BIO_METHOD *m;

	if (type == -1)
		return;
	m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
			 "volley socket");
	if (m == NULL)
		return;
	if (BIO_meth_set_write(m, transport_bio_write) != 1 ||
	    BIO_meth_set_read(m, transport_bio_read) != 1 ||
	    BIO_meth_set_puts(m, transport_bio_puts) != 1 ||
	    BIO_meth_set_ctrl(m, transport_bio_ctrl) != 1 ||
	    BIO_meth_set_destroy(m, transport_bio_destroy) != 1) {
		BIO_meth_free(m);
		return;
	}
	/* Kept for the life of the process, shared by every connection. */
	transport_bio_method = m;
}

/* transport_bio_new - a BIO over fd, or NULL (OpenSSL's error queued);
 * its state into *tb_r */
static BIO *transport_bio_new(int fd, struct transport_bio **tb_r)
{
	struct transport_bio *tb;
	BIO *b;

	pthread_once(&transport_bio_once, transport_bio_method_new);
	if (transport_bio_method == NULL)
		return NULL;
	b = BIO_new(transport_bio_method);
	if (b == NULL)
		return NULL;
	tb = xcalloc(1, sizeof(*tb));
	tb->fd = fd;
	*tb_r = tb;
	BIO_set_data(b, tb);
	BIO_set_init(b, 1);
	return b;
}

int transport_tls_new(const struct transport_tls_params *p,
		      struct transport_tls **tls_r, const char **error_r)
{
	struct transport_tls *tls = xcalloc(1, sizeof(*tls));

	*tls_r = NULL;
	ERR_clear_error();	/* what transport_ssl_error finds is ours */
	tls->verify = p->verify;
	tls->ctx = SSL_CTX_new(TLS_client_method());
	if (tls->ctx == NULL) {
		transport_ssl_error(error_r, "TLS");
		free(tls);
		return -1;
	}
	SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
	/*
	 * Read as much as the socket has, not a record's header and then
	 * its body: a pipelined group's replies come as one record each,
	 * and without this every one cost two recv() (2.0 a message at
	 * 4 KB against 0.14 in plaintext).  Only TLS records are read
	 * ahead, never bytes from before the handshake.
	 */
	SSL_CTX_set_read_ahead(tls->ctx, 1);
	/*
	 * OpenSSL's TLS 1.3 suites, AES-128-GCM first (OpenSSL offers
	 * AES-256 first, and servers mostly take the client's order): ten
	 * AES rounds instead of fourteen, 2,000 instructions less per 4 KB
	 * message on each side, and the suite every TLS 1.3 peer must have
	 * (RFC 8446 9.1).  The same three suites: nothing is given up.
	 */
	SSL_CTX_set_ciphersuites(tls->ctx, "TLS_AES_128_GCM_SHA256:"
				 "TLS_AES_256_GCM_SHA384:"
				 "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_session_cache_mode(tls->ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(tls->ctx, transport_new_session);
	if (p->verify) {
		SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
		if ((p->ca_file != NULL &&
		     SSL_CTX_load_verify_locations(tls->ctx, p->ca_file,
						   NULL) != 1) ||
		    (p->ca_file == NULL &&
		     SSL_CTX_set_default_verify_paths(tls->ctx) != 1)) {
			transport_ssl_error(error_r, p->ca_file ?
					    p->ca_file : "the system CA store");
			SSL_CTX_free(tls->ctx);
			free(tls);
			return -1;
		}
	} else {
		SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_NONE, NULL);
	}
	pthread_mutex_init(&tls->lock, NULL);
	*tls_r = tls;
	return 0;
}

void transport_tls_free(struct transport_tls **tlsp)
{
	struct transport_tls *tls = *tlsp;

	if (tls == NULL)
		return;
	for (size_t i = 0; i < TRANSPORT_SESSIONS; i++)
		transport_session_clear(&tls->sessions[i]);
	SSL_CTX_free(tls->ctx);
	pthread_mutex_destroy(&tls->lock);
	free(tls);
	*tlsp = NULL;
}

/*
 * transport_attempt - start connecting to ai: the socket, with
 * *connected_r telling whether it is done already, or -1 and *errno_r
 */
static int transport_attempt(const struct addrinfo *ai, bool *connected_r,
			     int *errno_r)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			SOCK_CLOEXEC, ai->ai_protocol);

	*connected_r = false;
	if (fd < 0) {
		*errno_r = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		*connected_r = true;
	} else if (errno != EINPROGRESS) {
		*errno_r = errno;
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * transport_attempt_result - a connecting socket that polled ready: 0
 * when it connected, else why not
 */
static int transport_attempt_result(int fd)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return errno;
	return soerr;
}

/*
 * transport_order - addrs in the order to try them: the families take
 * turns, the first address's first, each family in the resolver's order
 * (RFC 8305 4), so that a broken IPv6 costs one attempt's delay, not one
 * per IPv6 address.  Returns how many, into a new array *order_r.
 */
static size_t transport_order(const struct addrinfo *addrs,
			      const struct addrinfo ***order_r)
{
	const struct addrinfo *first = addrs, *other = addrs, *ai;
	const struct addrinfo **order;
	size_t n = 0, i = 0;

	for (ai = addrs; ai != NULL; ai = ai->ai_next)
		n++;
	order = xcalloc(n > 0 ? n : 1, sizeof(*order));
	while (i < n) {
		while (first != NULL && first->ai_family != addrs->ai_family)
			first = first->ai_next;
		if (first != NULL) {
			order[i++] = first;
			first = first->ai_next;
		}
		while (other != NULL && other->ai_family == addrs->ai_family)
			other = other->ai_next;
		if (other != NULL) {
			order[i++] = other;
			other = other->ai_next;
		}
	}
	*order_r = order;
	return n;
}

/*
 * transport_connect_fd - Happy Eyeballs (RFC 8305): each address in
 * transport_order()'s order gets its attempt TRANSPORT_ATTEMPT_DELAY_MS
 * after the one before (at once when that one failed), while the earlier
 * attempts go on; all end at deadline, and the first to connect wins.
 * So a blackholed address costs one delay, not the whole timeout, and a
 * slow but working one is still waited for.  Returns the socket, or -1
 * with *errno_r: the last failure's errno, or ETIMEDOUT.
 */
static int transport_connect_fd(const struct addrinfo *addrs, long deadline,
				int *errno_r)
{
	const struct addrinfo **order;
	size_t n = transport_order(addrs, &order), next = 0, live = 0, i;
	struct pollfd *pfd = xcalloc(n > 0 ? n : 1, sizeof(*pfd));
	long now, next_at = 0, wait;
	int fd = -1, one = 1, rc;
	bool connected;

	*errno_r = ETIMEDOUT;
	while (fd < 0) {
		now = clock_mono_ms();
		if (next < n && (live == 0 || now >= next_at)) {
			rc = transport_attempt(order[next++], &connected,
					       errno_r);
			if (rc >= 0 && connected) {
				fd = rc;
			} else if (rc >= 0) {
				pfd[live++] = (struct pollfd){
					.fd = rc, .events = POLLOUT };
				next_at = now + TRANSPORT_ATTEMPT_DELAY_MS;
			}
			continue;
		}
		if (live == 0)
			break;		/* every address failed */
		if (now >= deadline) {
			*errno_r = ETIMEDOUT;
			break;
		}
		wait = deadline - now;
		if (next < n && next_at - now < wait)
			wait = next_at - now;
		rc = poll(pfd, live, wait > 60000 ? 60000 : (int)wait);
		if (rc < 0 && errno != EINTR) {
			*errno_r = errno;
			break;
		}
		for (i = 0; rc > 0 && i < live && fd < 0;) {
			int e;

			if (pfd[i].revents == 0) {
				i++;
				continue;
			}
			e = transport_attempt_result(pfd[i].fd);
			if (e == 0) {
				fd = pfd[i].fd;
			} else {
				*errno_r = e;
				close(pfd[i].fd);
				next_at = now;	/* the next one now */
			}
			pfd[i] = pfd[--live];
		}
	}
	for (i = 0; i < live; i++)
		close(pfd[i].fd);
	free(pfd);
	free(order);
	if (fd < 0)
		return -1;
	/* Pipelined groups are written whole: no Nagle delay between. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#ifdef SO_NOSIGPIPE
	setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
	return fd;
}

/*
 * transport_connect_by - connect to one of addrs, within p's connect
 * timeout counted from start (ms, monotonic)
 */
static int transport_connect_by(const struct transport_params *p,
				const struct addrinfo *addrs, long start,
				struct transport **t_r, const char **error_r)
{
	struct transport *t;
	long deadline;
	int fd = -1, last_errno = 0;

	*t_r = NULL;
	t = xcalloc(1, sizeof(*t));
	t->p = *p;
	if (t->p.connect_timeout_ms <= 0)
		t->p.connect_timeout_ms = TRANSPORT_CONNECT_TIMEOUT_MS;
	if (t->p.io_timeout_ms <= 0)
		t->p.io_timeout_ms = TRANSPORT_IO_TIMEOUT_MS;
	t->host = xstrdup(p->host);
	t->p.host = t->host;
	/* kept for the session cache's key, long after the caller's went */
	t->port = xstrdup(p->port != NULL ? p->port : "");
	t->p.port = t->port;
	/* An empty name would switch the name check off: it means "host". */
	t->tls_name = xstrdup(p->tls_name != NULL && *p->tls_name != '\0' ?
			      p->tls_name : p->host);
	t->fd = -1;
	deadline = start + t->p.connect_timeout_ms;

	if (addrs == NULL) {
		errmsg_set(error_r, "%s: no address to connect to", p->host);
		goto out_fail;
	}
	fd = transport_connect_fd(addrs, deadline, &last_errno);
	if (fd < 0) {
		errmsg_set(error_r, "connecting to %s port %s: %s",
			   p->host, p->port, strerror(last_errno));
		goto out_fail;
	}
	t->fd = fd;
	*t_r = t;
	return 0;

out_fail:
	free(t->host);
	free(t->port);
	free(t->tls_name);
	free(t);
	errno = last_errno;	/* the reason, for transport_errno_kind() */
	return -1;
}

int transport_connect_addrs(const struct transport_params *p,
			    const struct addrinfo *addrs,
			    struct transport **t_r, const char **error_r)
{
	return transport_connect_by(p, addrs, clock_mono_ms(), t_r, error_r);
}

int transport_connect(const struct transport_params *p,
		      struct transport **t_r, const char **error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_family = AF_UNSPEC };
	struct addrinfo *res;
	long start = clock_mono_ms();	/* the name's lookup counts too */
	int rc, saved;

	*t_r = NULL;
	errno = 0;
	rc = getaddrinfo(p->host, p->port, &hints, &res);
	if (rc != 0) {
		saved = errno;
		/* glibc says "Name or service not known" when it could not
		 * open /etc/hosts for want of a descriptor: the cause is in
		 * errno, and it is not the name's fault. */
		if ((rc == EAI_SYSTEM && saved != 0) || saved == EMFILE ||
		    saved == ENFILE) {
			errmsg_set(error_r, "%s: %s", p->host,
				   strerror(saved));
		} else {
			errmsg_set(error_r, "%s: %s", p->host,
				   gai_strerror(rc));
			saved = 0;
		}
		errno = saved;
		return -1;
	}
	rc = transport_connect_by(p, res, start, t_r, error_r);
	saved = errno;
	freeaddrinfo(res);
	errno = saved;
	return rc;
}

void transport_close(struct transport **tp)
{
	struct transport *t = *tp;

	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		/* Before the handshake there is nothing to close. */
		if (!t->ssl_broken && SSL_is_init_finished(t->ssl))
			SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
		/* How the close went (a peer gone) matters to nobody, and left
		 * queued it would be the reason of this thread's next error. */
		ERR_clear_error();
	}
	if (t->fd >= 0)
		close(t->fd);
	free(t->host);
	free(t->port);
	free(t->tls_name);
	free(t->session_key);
	free(t);
	*tp = NULL;
}

bool transport_is_tls(const struct transport *t)
{
	return t->ssl != NULL;
}

enum transport_error transport_error(const struct transport *t)
{
	return t->error;
}

bool transport_verify_failed(const struct transport *t)
{
	return t->verify_failed;
}

bool transport_tls_resumed(const struct transport *t)
{
	return t->ssl != NULL && SSL_session_reused((SSL *)t->ssl) == 1;
}

/*
 * transport_ssl_begin - before each SSL call: an empty error queue and
 * errno, so that what SSL_get_error() and transport_ssl_error() find
 * after it comes from that call.  The queue is nearly always empty
 * already: looking is cheaper than clearing all its slots every time.
 */
static void transport_ssl_begin(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
	errno = 0;
}

/*
 * transport_ssl_wait - after an SSL call returned rc: wait for what it
 * wants.  Returns 1 to retry, 0 on timeout, -1 on error (*error_r set).
 */
static int transport_ssl_wait(struct transport *t, int rc, long deadline,
			      const char *what, const char **error_r)
{
	int saved = errno, e, w;

	e = SSL_get_error(t->ssl, rc);
	errno = saved;		/* for an SSL_ERROR_SYSCALL */
	if (e == SSL_ERROR_WANT_READ)
		w = transport_wait(t->fd, POLLIN, deadline);
	else if (e == SSL_ERROR_WANT_WRITE)
		w = transport_wait(t->fd, POLLOUT, deadline);
	else {
		/* No close_notify on a broken connection (see close). */
		t->ssl_broken = true;
		t->error = transport_ssl_kind(e);
		transport_ssl_error(error_r, what);
		return -1;
	}
	if (w == 0) {
		t->error = TRANSPORT_ERR_TIMEOUT;
		errmsg_set(error_r, "%s: timed out", what);
	} else if (w < 0) {
		t->error = TRANSPORT_ERR_OTHER;
		errmsg_set(error_r, "%s: %s", what, strerror(errno));
	}
	return w;
}

/*
 * transport_mismatch_note - after a failed check of the name or address:
 * when the certificate has no subjectAltName at all, the words that save
 * its owner from staring at a CN that looks right; "" otherwise.
 */
static const char *transport_mismatch_note(SSL *ssl, long verify)
{
	/* the client's peer chain starts with the server's certificate */
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	X509 *leaf;

	if ((verify != X509_V_ERR_HOSTNAME_MISMATCH &&
	     verify != X509_V_ERR_IP_ADDRESS_MISMATCH) ||
	    chain == NULL || sk_X509_num(chain) < 1)
		return "";
	leaf = sk_X509_value(chain, 0);
	if (X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1) >= 0)
		return "";
	return ": the certificate has no subjectAltName (its CN is not "
	       "checked)";
}

/*
 * transport_is_address - whether name is an IP address literal: dotted
 * IPv4, or anything with a colon (IPv6, with a zone or not), which no
 * host name has
 */
static bool transport_is_address(const char *name)
{
	struct in_addr a4;

	return inet_pton(AF_INET, name, &a4) == 1 || strchr(name, ':');
}

int transport_start_tls(struct transport *t, struct transport_tls *tls,
			const char **error_r)
{
	long deadline = clock_mono_ms() + t->p.connect_timeout_ms;
	bool address = transport_is_address(t->tls_name);
	SSL_SESSION *session;
	BIO *bio;
	int rc;

	t->error = TRANSPORT_ERR_TLS;	/* any early return below */
	if (t->ssl != NULL) {
		errmsg_set(error_r, "TLS: already started");
		return -1;
	}
	ERR_clear_error();
	t->tls = tls;
	t->ssl = SSL_new(tls->ctx);
	if (t->ssl == NULL) {
		transport_ssl_error(error_r, "TLS");
		return -1;
	}
	bio = transport_bio_new(t->fd, &t->bio);
	if (bio == NULL) {
		t->ssl_broken = true;
		transport_ssl_error(error_r, "TLS");
		return -1;
	}
	SSL_set_bio(t->ssl, bio, bio);
	/* SNI carries host names only, never an address (RFC 6066 3). */
	if (!address && *t->tls_name != '\0' &&
	    SSL_set_tlsext_host_name(t->ssl, t->tls_name) != 1) {
		errmsg_set(error_r, "TLS: cannot send the name '%s' (SNI)",
			   t->tls_name);
		ERR_clear_error();
		return -1;
	}
	if (tls->verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		int ok;

		/* An address literal must match an IP SAN; a name, a DNS
		 * name (a wildcard only as a whole label).  Never the
		 * subject CN, which OpenSSL reads when there is no SAN of
		 * the kind: browsers and curl stopped (RFC 6125 6.4.4), and
		 * a relay should not pass here that fails everywhere else. */
		SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
				  X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
		if (address)
			ok = X509_VERIFY_PARAM_set1_ip_asc(vp, t->tls_name);
		else
			ok = *t->tls_name != '\0' &&
			     SSL_set1_host(t->ssl, t->tls_name);
		/* Never go on with a check that did not take. */
		if (ok != 1) {
			errmsg_set(error_r, "TLS: cannot check the "
				   "certificate for the name '%s'",
				   t->tls_name);
			return -1;
		}
	}
	/*
	 * Resumption: only a session for this very name, host and port, from
	 * this context (so verified the same way).  New sessions come through
	 * transport_new_session(): TLS 1.3 tickets with the first data read
	 * (the greeting for implicit TLS, the EHLO reply after STARTTLS).
	 */
	t->session_key = transport_session_key(t);
	SSL_set_app_data(t->ssl, t);
	session = transport_session_get(tls, t->session_key);
	if (session != NULL)
		SSL_set_session(t->ssl, session);	/* takes a reference */

	for (;;) {
		long verify;

		transport_ssl_begin();
		rc = SSL_connect(t->ssl);
		if (rc == 1)
			break;
		/* recorded even with verification off: only then ignored */
		verify = SSL_get_verify_result(t->ssl);
		if (tls->verify && verify != X509_V_OK) {
			int sys = transport_queued_errno();

			t->ssl_broken = true;
			/* A CA folder is read during the check, a file per
			 * issuer sought: without a descriptor to read with,
			 * the check says nothing of the certificate, and a
			 * later try may pass. */
			if (sys == EMFILE || sys == ENFILE) {
				errmsg_set(error_r, "TLS handshake with %s: "
					   "cannot read the CA store to check "
					   "the certificate: %s", t->tls_name,
					   strerror(sys));
				break;
			}
			errmsg_set(error_r, "TLS handshake with %s: "
				   "certificate verify failed: %s%s",
				   t->tls_name,
				   X509_verify_cert_error_string(verify),
				   transport_mismatch_note(t->ssl, verify));
			t->verify_failed = true;
			break;
		}
		if (transport_ssl_wait(t, rc, deadline, "TLS handshake",
				       error_r) <= 0)
			break;
	}
	if (session != NULL) {
		if (rc != 1)
			transport_session_drop(tls, t->session_key, session);
		SSL_SESSION_free(session);
	}
	if (rc != 1)
		t->error = TRANSPORT_ERR_TLS;
	return rc == 1 ? 0 : -1;
}

/* transport_send - all n bytes to the socket by deadline, or -1 */
static int transport_send(struct transport *t, const char *p, size_t n,
			  long deadline, const char **error_r)
{
	while (n > 0) {
		ssize_t w = send(t->fd, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			t->error = transport_errno_kind(errno);
			errmsg_set(error_r, "writing to %s: %s", t->host,
				   strerror(errno));
			return -1;
		}
		if (transport_wait(t->fd, POLLOUT, deadline) <= 0) {
			t->error = TRANSPORT_ERR_TIMEOUT;
			errmsg_set(error_r, "writing to %s: timed out",
				   t->host);
			return -1;
		}
	}
	return 0;
}

/*
 * transport_tls_write - n bytes through TLS: OpenSSL cuts them into
 * records with the BIO corked, and what it wrote leaves in one send()
 * per TRANSPORT_TLS_BATCH, as a plaintext write would.  Should OpenSSL
 * want to read first (a TLS 1.2 renegotiation), what it wrote goes out,
 * the wait is made and the same bytes are given again, as it requires.
 */
static int transport_tls_write(struct transport *t, const char *p, size_t n,
			       long deadline, const char **error_r)
{
	struct transport_bio *tb = t->bio;

	while (n > 0) {
		size_t chunk = n < TRANSPORT_TLS_BATCH ? n :
			       TRANSPORT_TLS_BATCH, done = 0;
		int rc, sent;

		transport_ssl_begin();
		tb->cork = true;
		rc = SSL_write_ex(t->ssl, p, chunk, &done);
		tb->cork = false;
		sent = transport_send(t, tb->out, tb->out_len, deadline,
				      error_r);
		tb->out_len = 0;
		if (sent < 0) {
			/* a record may be cut: no close_notify after it */
			t->ssl_broken = true;
			return -1;
		}
		if (rc == 1) {
			p += done;
			n -= done;
		} else if (transport_ssl_wait(t, rc, deadline, "writing",
					      error_r) <= 0) {
			return -1;
		}
	}
	return 0;
}

int transport_write(struct transport *t, const void *data, size_t n,
		    const char **error_r)
{
	long deadline = clock_mono_ms() + t->p.io_timeout_ms;

	if (t->ssl != NULL)
		return transport_tls_write(t, data, n, deadline, error_r);
	return transport_send(t, data, n, deadline, error_r);
}

ssize_t transport_read(struct transport *t, void *buf, size_t n,
		       const char **error_r)
{
	long deadline = clock_mono_ms() + t->p.io_timeout_ms;

	for (;;) {
		ssize_t r;

		if (t->ssl != NULL) {
			size_t got = 0;
			int rc;

			transport_ssl_begin();
			rc = SSL_read_ex(t->ssl, buf, n, &got);

			if (rc == 1)
				return (ssize_t)got;
			if (SSL_get_error(t->ssl, rc) == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (transport_ssl_wait(t, rc, deadline, "reading",
					       error_r) <= 0)
				return -1;
			continue;
		}
		r = recv(t->fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno != EAGAIN && errno != EINTR) {
			t->error = transport_errno_kind(errno);
			errmsg_set(error_r, "reading from %s: %s", t->host,
				   strerror(errno));
			return -1;
		}
		if (transport_wait(t->fd, POLLIN, deadline) <= 0) {
			t->error = TRANSPORT_ERR_TIMEOUT;
			errmsg_set(error_r, "reading from %s: no reply "
				   "within %d s", t->host,
				   t->p.io_timeout_ms / 1000);
			return -1;
		}
	}
}

void transport_set_io_timeout(struct transport *t, int ms)
{
	t->p.io_timeout_ms = ms > 0 ? ms : TRANSPORT_IO_TIMEOUT_MS;
}
