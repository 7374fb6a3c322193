/*
 * transport - one TCP connection, optionally TLS, with deadlines (see
 * transport.h).  The only file of volley that includes OpenSSL.
 */
#include "engine/transport.h"

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

#include "common/xalloc.h"

#define TRANSPORT_CONNECT_TIMEOUT_MS 30000
#define TRANSPORT_IO_TIMEOUT_MS 300000

struct transport_tls {
	SSL_CTX *ctx;
	bool verify;
	pthread_mutex_t lock;	/* guards session */
	SSL_SESSION *session;	/* the last one, for resumption */
};

struct transport {
	struct transport_params p;
	char *host;
	char *tls_name;
	int fd;
	SSL *ssl;
	bool ssl_broken;	/* a fatal TLS error: no shutdown alert */
	struct transport_tls *tls;
};

static long transport_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * transport_wait - poll fd for events until deadline (ms, monotonic).
 * Returns 1 when ready, 0 on timeout, -1 on error.
 */
static int transport_wait(int fd, short events, long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		long left = deadline - transport_now_ms();

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * transport_ssl_error - the reason of OpenSSL's last error, into err; with
 * no OpenSSL error queued, errno's (a reset) or else a plain close.
 */
static void transport_ssl_error(char *err, size_t errsize, const char *what)
{
	unsigned long e = ERR_get_error();

	snprintf(err, errsize, "%s: %s", what,
		 e ? ERR_reason_error_string(e) :
		 errno ? strerror(errno) : "connection closed");
	ERR_clear_error();
}

int transport_tls_new(const struct transport_tls_params *p,
		      struct transport_tls **tls_r, char *err, size_t errsize)
{
	struct transport_tls *tls = xcalloc(1, sizeof(*tls));

	*tls_r = NULL;
	tls->verify = p->verify;
	tls->ctx = SSL_CTX_new(TLS_client_method());
	if (tls->ctx == NULL) {
		transport_ssl_error(err, errsize, "TLS");
		free(tls);
		return -1;
	}
	SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
	SSL_CTX_set_session_cache_mode(tls->ctx, SSL_SESS_CACHE_CLIENT);
	if (p->verify) {
		SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
		if ((p->ca_file != NULL &&
		     SSL_CTX_load_verify_locations(tls->ctx, p->ca_file,
						   NULL) != 1) ||
		    (p->ca_file == NULL &&
		     SSL_CTX_set_default_verify_paths(tls->ctx) != 1)) {
			transport_ssl_error(err, errsize, p->ca_file ?
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
	if (tls->session != NULL)
		SSL_SESSION_free(tls->session);
	SSL_CTX_free(tls->ctx);
	pthread_mutex_destroy(&tls->lock);
	free(tls);
	*tlsp = NULL;
}

/* transport_try_connect - one address, within the deadline */
static int transport_try_connect(const struct addrinfo *ai, long deadline,
				 int *errno_r)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			SOCK_CLOEXEC, ai->ai_protocol);
	int one = 1, soerr = 0;
	socklen_t len = sizeof(soerr);

	if (fd < 0) {
		*errno_r = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			*errno_r = errno;
			close(fd);
			return -1;
		}
		if (transport_wait(fd, POLLOUT, deadline) <= 0) {
			*errno_r = ETIMEDOUT;
			close(fd);
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 ||
		    soerr != 0) {
			*errno_r = soerr ? soerr : errno;
			close(fd);
			return -1;
		}
	}
	/* Pipelined groups are written whole: no Nagle delay between. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int transport_connect(const struct transport_params *p,
		      struct transport **t_r, char *err, size_t errsize)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_family = AF_UNSPEC };
	struct addrinfo *res, *ai;
	struct transport *t;
	long deadline;
	int rc, fd = -1, last_errno = 0;

	*t_r = NULL;
	t = xcalloc(1, sizeof(*t));
	t->p = *p;
	if (t->p.connect_timeout_ms <= 0)
		t->p.connect_timeout_ms = TRANSPORT_CONNECT_TIMEOUT_MS;
	if (t->p.io_timeout_ms <= 0)
		t->p.io_timeout_ms = TRANSPORT_IO_TIMEOUT_MS;
	t->host = xstrdup(p->host);
	t->p.host = t->host;
	/* An empty name would switch the name check off: it means "host". */
	t->tls_name = xstrdup(p->tls_name != NULL && *p->tls_name != '\0' ?
			      p->tls_name : p->host);
	t->fd = -1;
	deadline = transport_now_ms() + t->p.connect_timeout_ms;

	rc = getaddrinfo(p->host, p->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errsize, "%s: %s", p->host, gai_strerror(rc));
		goto out_fail;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = transport_try_connect(ai, deadline, &last_errno);
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errsize, "connecting to %s port %s: %s",
			 p->host, p->port, strerror(last_errno));
		goto out_fail;
	}
	t->fd = fd;
	*t_r = t;
	return 0;

out_fail:
	free(t->host);
	free(t->tls_name);
	free(t);
	return -1;
}

void transport_close(struct transport **tp)
{
	struct transport *t = *tp;

	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		if (!t->ssl_broken)
			SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	if (t->fd >= 0)
		close(t->fd);
	free(t->host);
	free(t->tls_name);
	free(t);
	*tp = NULL;
}

bool transport_is_tls(const struct transport *t)
{
	return t->ssl != NULL;
}

/*
 * transport_ssl_wait - after an SSL call returned rc: wait for what it
 * wants.  Returns 1 to retry, 0 on timeout, -1 on error (err filled).
 */
static int transport_ssl_wait(struct transport *t, int rc, long deadline,
			      const char *what, char *err, size_t errsize)
{
	int e, w;

	errno = 0;
	e = SSL_get_error(t->ssl, rc);
	if (e == SSL_ERROR_WANT_READ)
		w = transport_wait(t->fd, POLLIN, deadline);
	else if (e == SSL_ERROR_WANT_WRITE)
		w = transport_wait(t->fd, POLLOUT, deadline);
	else {
		/* No close_notify on a broken connection (see close). */
		t->ssl_broken = true;
		transport_ssl_error(err, errsize, what);
		return -1;
	}
	if (w == 0)
		snprintf(err, errsize, "%s: timed out", what);
	else if (w < 0)
		snprintf(err, errsize, "%s: %s", what, strerror(errno));
	return w;
}

int transport_start_tls(struct transport *t, struct transport_tls *tls,
			char *err, size_t errsize)
{
	long deadline = transport_now_ms() + t->p.connect_timeout_ms;
	int rc;

	t->tls = tls;
	t->ssl = SSL_new(tls->ctx);
	if (t->ssl == NULL) {
		transport_ssl_error(err, errsize, "TLS");
		return -1;
	}
	SSL_set_fd(t->ssl, t->fd);
	SSL_set_tlsext_host_name(t->ssl, t->tls_name);
	if (tls->verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		unsigned char ip[16];

		/* An address literal must match an IP SAN; a name, a DNS
		 * name (a wildcard only as a whole label). */
		int ok;

		if (inet_pton(AF_INET, t->tls_name, ip) == 1 ||
		    inet_pton(AF_INET6, t->tls_name, ip) == 1) {
			ok = X509_VERIFY_PARAM_set1_ip_asc(vp, t->tls_name);
		} else {
			SSL_set_hostflags(t->ssl,
					  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			ok = *t->tls_name != '\0' &&
			     SSL_set1_host(t->ssl, t->tls_name);
		}
		/* Never go on with a check that did not take. */
		if (ok != 1) {
			snprintf(err, errsize, "TLS: cannot check the "
				 "certificate for the name '%s'", t->tls_name);
			return -1;
		}
	}
	pthread_mutex_lock(&tls->lock);
	if (tls->session != NULL)
		SSL_set_session(t->ssl, tls->session);
	pthread_mutex_unlock(&tls->lock);

	while ((rc = SSL_connect(t->ssl)) != 1) {
		long verify = SSL_get_verify_result(t->ssl);

		if (verify != X509_V_OK) {
			snprintf(err, errsize, "TLS handshake with %s: "
				 "certificate verify failed: %s", t->tls_name,
				 X509_verify_cert_error_string(verify));
			ERR_clear_error();
			return -1;
		}
		if (transport_ssl_wait(t, rc, deadline, "TLS handshake", err,
				       errsize) <= 0)
			return -1;
	}
	pthread_mutex_lock(&tls->lock);
	if (tls->session != NULL)
		SSL_SESSION_free(tls->session);
	tls->session = SSL_get1_session(t->ssl);
	pthread_mutex_unlock(&tls->lock);
	return 0;
}

int transport_write(struct transport *t, const void *data, size_t n,
		    char *err, size_t errsize)
{
	const char *p = data;
	long deadline = transport_now_ms() + t->p.io_timeout_ms;

	while (n > 0) {
		ssize_t w;

		if (t->ssl != NULL) {
			size_t done = 0;
			int rc = SSL_write_ex(t->ssl, p, n, &done);

			if (rc == 1) {
				p += done;
				n -= done;
				continue;
			}
			if (transport_ssl_wait(t, rc, deadline, "writing",
					       err, errsize) <= 0)
				return -1;
			continue;
		}
		w = send(t->fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(err, errsize, "writing to %s: %s", t->host,
				 strerror(errno));
			return -1;
		}
		if (transport_wait(t->fd, POLLOUT, deadline) <= 0) {
			snprintf(err, errsize, "writing to %s: timed out",
				 t->host);
			return -1;
		}
	}
	return 0;
}

ssize_t transport_read(struct transport *t, void *buf, size_t n, char *err,
		       size_t errsize)
{
	long deadline = transport_now_ms() + t->p.io_timeout_ms;

	for (;;) {
		ssize_t r;

		if (t->ssl != NULL) {
			size_t got = 0;
			int rc = SSL_read_ex(t->ssl, buf, n, &got);

			if (rc == 1)
				return (ssize_t)got;
			if (SSL_get_error(t->ssl, rc) == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (transport_ssl_wait(t, rc, deadline, "reading",
					       err, errsize) <= 0)
				return -1;
			continue;
		}
		r = recv(t->fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(err, errsize, "reading from %s: %s", t->host,
				 strerror(errno));
			return -1;
		}
		if (transport_wait(t->fd, POLLIN, deadline) <= 0) {
			snprintf(err, errsize, "reading from %s: no reply "
				 "within %d s", t->host,
				 t->p.io_timeout_ms / 1000);
			return -1;
		}
	}
}
