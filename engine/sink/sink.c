/*
 * sink - listeners, connection threads, TLS, maildir and log of `volley
 * sink` (see sink.h).
 *
 * The main thread polls the listening sockets and a stop pipe and queues
 * every accepted connection for a worker thread, which owns it (socket,
 * TLS, session) until it ends.  Workers are started when none is idle and
 * kept for the next connections (an idle minute ends one): a client that
 * connects for every message must not pay for a thread each time.  Each
 * worker has its 64 KiB read buffer for life.  The only shared state is
 * the list of live connections (so that a stop can shut them down), the
 * queue, the log file (one mutex) and the totals (atomics, added once per
 * connection).
 *
 * The stop pipe is written once and never read: it stays readable, so
 * every poll on it - the accept loop's, a fault's delay - wakes at once
 * and for good.
 */
#include "sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "clock.h"
#include "errmsg.h"
#include "xalloc.h"

#define SINK_READ_BUF (64 * 1024)
#define SINK_STACK (512 * 1024)
#define SINK_STOP_WAIT_MS 5000
#define SINK_IDLE_WORKER_S 60

struct sink_listener {
	int fd;
	bool implicit_tls;
	char name[80];
};

struct sink_conn {
	struct sink *sink;
	int fd;
	bool implicit_tls;
	bool tls_nowait;	/* the BIO's recv() must not block */
	bool tls_eof;		/* its recv() returned 0 */
	unsigned long id;
	SSL *ssl;
	char peer[80];
	struct buf path;		/* maildir path scratch */
	struct sink_conn *prev, *next;	/* live connections */
	struct sink_conn *queued;	/* the queue for workers */
};

/* a worker thread: joined once it has finished (see sink_reap) */
struct sink_worker {
	struct sink *sink;
	pthread_t thread;
	struct sink_worker *next;
};

struct sink {
	const struct sink_config *cfg;
	struct sink_listener listeners[2 * SINK_LISTENERS_MAX];
	size_t nlisteners;
	SSL_CTX *tls;
	int stop_pipe[2];
	int log_fd;
	pthread_mutex_t log_lock;
	char host_safe[64];		/* the host name, safe in a file name */

	pthread_mutex_t lock;		/* everything down to "stopping" */
	pthread_cond_t idle;		/* a connection or worker ended */
	pthread_cond_t work;		/* a connection was queued */
	struct sink_conn *conns;	/* live, queued or served */
	struct sink_conn *queue, *queue_tail;
	size_t active;			/* live connections */
	size_t queued;
	size_t workers, idle_workers;
	struct sink_worker *finished;	/* to be joined */
	bool stopping;

	atomic_ulong next_id;
	_Atomic uint64_t connections, messages, recipients, bytes, refused,
		improper;
};

/* sink_tls_error - the last OpenSSL error as text */
static const char *sink_tls_error(char *out, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(out, size, "unknown error");
	else
		ERR_error_string_n(e, out, size);
	ERR_clear_error();
	return out;
}

static void sink_notify(struct sink *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sink_notify(struct sink *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (s->cfg->notify == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->cfg->notify(s->cfg->notify_ctx, line);
}

/* sink_addr_name - "1.2.3.4:25" or "[::1]:25" */
static void sink_addr_name(const struct sockaddr_storage *ss, char *out,
			   size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, size, "[%s]:%u", host, port);
		return;
	}
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	}
	snprintf(out, size, "%s:%u", host, port);
}

/* sink_listen - bind "ADDR:PORT" ("[V6]:PORT") and listen */
static int sink_listen(struct sink *s, const char *spec, bool implicit_tls,
		       const char **error_r)
{
	struct sink_listener *l = &s->listeners[s->nlisteners];
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[256];
	const char *port, *colon = strrchr(spec, ':');
	size_t hlen;
	int fd, one = 1, rc;

	if (colon == NULL || colon[1] == '\0')
		return errmsg_set(error_r,
				  "listen address '%s': want ADDR:PORT or "
				  "[IPV6]:PORT", spec);
	port = colon + 1;
	hlen = (size_t)(colon - spec);
	if (spec[0] == '[') {
		if (hlen < 2 || spec[hlen - 1] != ']')
			return errmsg_set(error_r, "listen address '%s': want "
					  "[IPV6]:PORT", spec);
		spec++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return errmsg_set(error_r, "listen address '%s': no address",
				  spec);
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		return errmsg_set(error_r, "listen address %s:%s: %s", host,
				  port, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return errmsg_set(error_r, "socket: %s", strerror(errno));
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		int e = errno;

		freeaddrinfo(ai);
		close(fd);
		return errmsg_set(error_r, "listen on %s:%s: %s", host, port,
				  strerror(e));
	}
	freeaddrinfo(ai);
	l->fd = fd;
	l->implicit_tls = implicit_tls;
	sink_addr_name(&ss, l->name, sizeof(l->name));
	s->nlisteners++;
	return 0;
}

/*
 * The socket BIO of a TLS connection, instead of OpenSSL's: the same
 * recv() and send() on the connection's blocking socket, except that a
 * recv() can be made not to wait (sink_conn_read drains what OpenSSL has
 * buffered without blocking on a record cut in half) and send() cannot
 * raise SIGPIPE.  Its data is the struct sink_conn: nothing allocated.
 */
static int sink_bio_write(BIO *b, const char *data, int len)
{
	struct sink_conn *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(c->fd, data, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && errno == EINTR)
		BIO_set_retry_write(b);
	return (int)n;
}

static int sink_bio_read(BIO *b, char *buf, int len)
{
	struct sink_conn *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (buf == NULL || len <= 0)
		return 0;
	n = recv(c->fd, buf, (size_t)len, c->tls_nowait ? MSG_DONTWAIT : 0);
	if (n == 0)
		c->tls_eof = true;
	else if (n < 0 && (errno == EINTR || (c->tls_nowait &&
			   (errno == EAGAIN || errno == EWOULDBLOCK))))
		BIO_set_retry_read(b);
	return (int)n;
}

static int sink_bio_puts(BIO *b, const char *str)
{
	return sink_bio_write(b, str, (int)strlen(str));
}

static long sink_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct sink_conn *c = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:	/* tells an unexpected EOF from an error */
		return c != NULL && c->tls_eof;
	case BIO_C_GET_FD:
		if (c == NULL)
			return -1;
		if (ptr != NULL)
			*(int *)ptr = c->fd;
		return c->fd;
	default:
		return 0;
	}
}

static BIO_METHOD *sink_bio_method;
static pthread_once_t sink_bio_once = PTHREAD_ONCE_INIT;

static void sink_bio_method_new(void)
{
	int type = BIO_get_new_index();
	BIO_METHOD *m;

	if (type == -1)
		return;
	m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
			 "volley sink socket");
	if (m == NULL)
		return;
	if (BIO_meth_set_write(m, sink_bio_write) != 1 ||
	    BIO_meth_set_read(m, sink_bio_read) != 1 ||
	    BIO_meth_set_puts(m, sink_bio_puts) != 1 ||
	    BIO_meth_set_ctrl(m, sink_bio_ctrl) != 1) {
		BIO_meth_free(m);
		return;
	}
	/* kept for the life of the process (BIO types are few), shared by
	 * every sink and connection */
	sink_bio_method = m;
}

static int sink_tls_open(struct sink *s, const char **error_r)
{
	const struct sink_config *c = s->cfg;
	char e[256];

	if (c->tls_cert == NULL && c->tls_key == NULL)
		return 0;
	if (c->tls_cert == NULL || c->tls_key == NULL)
		return errmsg_set(error_r, "TLS needs both a certificate and a "
				  "key");
	s->tls = SSL_CTX_new(TLS_server_method());
	if (s->tls == NULL)
		return errmsg_set(error_r, "TLS: %s",
				  sink_tls_error(e, sizeof(e)));
	SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION);
	SSL_CTX_set_mode(s->tls, SSL_MODE_AUTO_RETRY);
	/*
	 * Read what the socket has, as much as OpenSSL's buffer takes (a
	 * record and a bit), not a record's header and then its body: two
	 * recv() per record otherwise.  A larger buffer (34 or 65 KB) took
	 * fewer recv() (0.13 a 4 KB message against 0.25) but cost 3,400
	 * instructions more a message (callgrind): OpenSSL moves what is
	 * left in its buffer to the front before every record it reads.
	 * Only TLS records are read ahead: what came before the handshake
	 * is the session's, never OpenSSL's.
	 */
	SSL_CTX_set_read_ahead(s->tls, 1);
	/*
	 * TLS 1.3: OpenSSL's three suites, AES-128-GCM first and chosen
	 * by the sink's order, as volley's client offers them (transport.c):
	 * Python and Node.js offer AES-256 first, fourteen AES rounds for
	 * ten, 2,000 instructions more a 4 KB message on each side.  A
	 * client that puts ChaCha20 first (no AES in its hardware) still
	 * gets it.  Nothing is given up: the same suites as before.
	 */
	SSL_CTX_set_ciphersuites(s->tls, "TLS_AES_128_GCM_SHA256:"
				 "TLS_AES_256_GCM_SHA384:"
				 "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_options(s->tls, SSL_OP_CIPHER_SERVER_PREFERENCE |
			    SSL_OP_PRIORITIZE_CHACHA);
	pthread_once(&sink_bio_once, sink_bio_method_new);
	if (sink_bio_method == NULL)
		return errmsg_set(error_r, "TLS: %s",
				  sink_tls_error(e, sizeof(e)));
	if (SSL_CTX_use_certificate_chain_file(s->tls, c->tls_cert) != 1)
		return errmsg_set(error_r, "%s: %s", c->tls_cert,
				  sink_tls_error(e, sizeof(e)));
	if (SSL_CTX_use_PrivateKey_file(s->tls, c->tls_key,
					SSL_FILETYPE_PEM) != 1)
		return errmsg_set(error_r, "%s: %s", c->tls_key,
				  sink_tls_error(e, sizeof(e)));
	if (SSL_CTX_check_private_key(s->tls) != 1)
		return errmsg_set(error_r, "%s does not match %s", c->tls_key,
				  c->tls_cert);
	return 0;
}

/* sink_mkdir - mkdir that accepts an existing folder */
static int sink_mkdir(const char *path, const char **error_r)
{
	struct stat st;

	if (mkdir(path, 0777) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return errmsg_set(error_r, "%s: %s", path, errno == EEXIST ?
			  "exists and is not a folder" : strerror(errno));
}

static int sink_maildir_open(struct sink *s, const char **error_r)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	struct buf path = BUF_INIT;
	int ret = 0;

	if (s->cfg->maildir == NULL)
		return 0;
	ret = sink_mkdir(s->cfg->maildir, error_r);
	for (size_t i = 0; i < 3 && ret == 0; i++) {
		buf_reset(&path);
		buf_printf(&path, "%s/%s", s->cfg->maildir, sub[i]);
		ret = sink_mkdir(path.data, error_r);
	}
	buf_free(&path);
	return ret;
}

int sink_open(const struct sink_config *cfg, struct sink **s_r,
	      const char **error_r)
{
	struct sink *s = xcalloc(1, sizeof(*s));
	const char *h = cfg->proto.hostname ? cfg->proto.hostname : "sink";
	size_t j = 0;

	s->cfg = cfg;
	s->log_fd = -1;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->log_lock, NULL);
	clock_cond_init(&s->idle);
	clock_cond_init(&s->work);
	atomic_init(&s->next_id, 1);
	for (; *h && j < sizeof(s->host_safe) - 1; h++)
		/* maildir names: no '/' and no ':' (the info separator) */
		s->host_safe[j++] = (*h == '/' || *h == ':') ? '_' : *h;
	s->host_safe[j] = '\0';

	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
		errmsg_set(error_r, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (sink_tls_open(s, error_r) < 0)
		goto fail;
	if (cfg->nimplicit > 0 && s->tls == NULL) {
		errmsg_set(error_r, "--implicit-tls needs --tls-cert and "
			   "--tls-key");
		goto fail;
	}
	if (sink_maildir_open(s, error_r) < 0)
		goto fail;
	if (cfg->log_path != NULL) {
		s->log_fd = open(cfg->log_path, O_WRONLY | O_CREAT | O_APPEND |
				 O_CLOEXEC, 0644);
		if (s->log_fd < 0) {
			errmsg_set(error_r, "%s: %s", cfg->log_path,
				   strerror(errno));
			goto fail;
		}
	}
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (sink_listen(s, cfg->listen[i], false, error_r) < 0)
			goto fail;
	for (size_t i = 0; i < cfg->nimplicit; i++)
		if (sink_listen(s, cfg->implicit_tls[i], true, error_r) < 0)
			goto fail;
	*s_r = s;
	return 0;
fail:
	sink_free(&s);
	return -1;
}

void sink_free(struct sink **sp)
{
	struct sink *s = *sp;

	if (s == NULL)
		return;
	if (s->workers > 0) {
		/* a connection outlived sink_run's wait: its thread still
		 * uses the sink, so the sink stays (the process is ending) */
		*sp = NULL;
		return;
	}
	for (size_t i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].fd >= 0)
			close(s->listeners[i].fd);
	if (s->tls != NULL)
		SSL_CTX_free(s->tls);
	if (s->log_fd >= 0)
		close(s->log_fd);
	for (int i = 0; i < 2; i++)
		if (s->stop_pipe[i] >= 0)
			close(s->stop_pipe[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->log_lock);
	pthread_cond_destroy(&s->idle);
	pthread_cond_destroy(&s->work);
	free(s);
	*sp = NULL;
}

const char *sink_listener_name(const struct sink *s, size_t i)
{
	return i < s->nlisteners ? s->listeners[i].name : NULL;
}

void sink_stop(struct sink *s)
{
	ssize_t n = write(s->stop_pipe[1], "x", 1);

	(void)n;
}

/* sink_stopping - has sink_stop been called? */
static bool sink_stopping(struct sink *s)
{
	struct pollfd p = { .fd = s->stop_pipe[0], .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

void sink_totals(const struct sink *s, struct sink_totals *t)
{
	t->connections = atomic_load(&s->connections);
	t->messages = atomic_load(&s->messages);
	t->recipients = atomic_load(&s->recipients);
	t->bytes = atomic_load(&s->bytes);
	t->refused = atomic_load(&s->refused);
	t->improper = atomic_load(&s->improper);
}

/* --- one connection ------------------------------------------------------- */

static int sink_conn_write(struct sink_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, n > 1 << 30 ? 1 << 30 :
					  (int)n);

			if (r <= 0)
				return -1;
			w = r;
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * sink_conn_tls_read - what the client sent through TLS, up to n bytes.
 * SSL_read gives one record at most (16 KB), while read-ahead has taken
 * as many as came: the records OpenSSL holds are drained too, so that
 * the session answers all of them in one write, as it answers what one
 * recv() gives in plaintext (one write per record otherwise).  Draining
 * never waits: a record cut in half stays for the next call.
 */
static ssize_t sink_conn_tls_read(struct sink_conn *c, char *p, size_t n)
{
	size_t got;
	int k = SSL_read(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);

	if (k <= 0)
		return -1;
	got = (size_t)k;
	c->tls_nowait = true;
	while (got < n && SSL_has_pending(c->ssl)) {
		size_t left = n - got;

		k = SSL_read(c->ssl, p + got, left > INT_MAX ? INT_MAX :
			     (int)left);
		/* a record not all there (WANT_READ, nothing queued),
		 * or an error or the end, which the next call sees again */
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	c->tls_nowait = false;
	return (ssize_t)got;
}

static ssize_t sink_conn_read(struct sink_conn *c, char *p, size_t n)
{
	if (c->ssl != NULL)
		return sink_conn_tls_read(c, p, n);
	for (;;) {
		ssize_t r = recv(c->fd, p, n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/*
 * sink_log_records - append the session's records to the log, each
 * stamped with the wall-clock time it was written ("t": ms since the
 * epoch), so tests can count what arrived per second
 */
static void sink_log_records(struct sink *s, const char *p, size_t n)
{
	struct buf b = BUF_INIT;
	long long ms = clock_wall_ms();
	ssize_t w;

	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl != NULL ? (size_t)(nl - p) + 1 : n;

		if (len > 1 && p[0] == '{')
			buf_printf(&b, "{\"t\":%lld,%.*s", ms, (int)(len - 1),
				   p + 1);
		else
			buf_append(&b, p, len);
		p += len;
		n -= len;
	}
	pthread_mutex_lock(&s->log_lock);
	w = write(s->log_fd, b.data, b.len);
	pthread_mutex_unlock(&s->log_lock);
	(void)w;
	buf_free(&b);
}

/* sink_conn_flush - send the session's output, log its records */
static int sink_conn_flush(struct sink_conn *c, struct sink_session *ss)
{
	struct sink *s = c->sink;
	const char *p;
	size_t n;
	int ret = 0;

	sink_session_records(ss, &p, &n);
	if (n > 0) {
		if (s->log_fd >= 0)
			sink_log_records(s, p, n);
		sink_session_records_taken(ss);
	}
	sink_session_output(ss, &p, &n);
	if (n > 0)
		ret = sink_conn_write(c, p, n);
	sink_session_sent(ss);
	return ret;
}

static int sink_conn_tls(struct sink_conn *c)
{
	char e[256];

	BIO *bio = NULL;

	c->ssl = SSL_new(c->sink->tls);
	if (c->ssl != NULL)
		bio = BIO_new(sink_bio_method);
	if (bio != NULL) {
		BIO_set_data(bio, c);
		BIO_set_init(bio, 1);
		SSL_set_bio(c->ssl, bio, bio);	/* the SSL's from now on */
	}
	if (c->ssl == NULL || bio == NULL || SSL_accept(c->ssl) != 1) {
		sink_notify(c->sink, "connection %lu from %s: TLS handshake "
			    "failed: %s", c->id, c->peer,
			    sink_tls_error(e, sizeof(e)));
		return -1;
	}
	return 0;
}

/*
 * sink_conn_store - the message into the maildir: DIR/tmp/NAME, then
 * renamed to DIR/new/NAME.  Returns "new/NAME" (in c->path) or NULL.
 */
static const char *sink_conn_store(struct sink_conn *c,
				   struct sink_session *ss)
{
	const char *dir = c->sink->cfg->maildir, *p;
	int64_t us = clock_wall_us();
	size_t n, dirlen = strlen(dir);
	char name[160], *tmp;
	int fd, e = 0;

	sink_session_message(ss, &p, &n);
	snprintf(name, sizeof(name), "%lld.M%06lldP%dC%luN%u.%s",
		 (long long)(us / 1000000), (long long)(us % 1000000),
		 (int)getpid(), c->id,
		 sink_session_msgno(ss), c->sink->host_safe);
	/* DIR/tmp/NAME, a NUL, then DIR/new/NAME for rename() */
	buf_reset(&c->path);
	buf_printf(&c->path, "%s/tmp/%s", dir, name);
	buf_putc(&c->path, '\0');
	buf_printf(&c->path, "%s/new/%s", dir, name);
	tmp = c->path.data;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		e = errno;
	while (fd >= 0 && n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : EIO;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	if (fd >= 0 && close(fd) < 0 && e == 0)
		e = errno;
	if (e == 0 && rename(tmp, tmp + strlen(tmp) + 1) < 0)
		e = errno;
	if (e != 0) {
		sink_notify(c->sink, "connection %lu: storing %s: %s", c->id,
			    tmp, strerror(e));
		unlink(tmp);
		return NULL;
	}
	/* "new/NAME": the tail of the second path */
	return tmp + strlen(tmp) + 1 + dirlen + 1;
}

/* sink_conn_wait - a fault's delay; false if the sink stops meanwhile */
static bool sink_conn_wait(struct sink_conn *c, unsigned ms)
{
	struct pollfd p = { .fd = c->sink->stop_pipe[0], .events = POLLIN };

	return poll(&p, 1, (int)ms) == 0;
}

/* sink_conn_serve - the conversation, until either side ends it */
static void sink_conn_serve(struct sink_conn *c, struct sink_session *ss,
			    char *in)
{
	size_t have = 0, off = 0, used;
	enum sink_action act = sink_session_start(ss);

	for (;;) {
		if (sink_conn_flush(c, ss) < 0)
			return;
		switch (act) {
		case SINK_CLOSE:
			return;
		case SINK_DELAY:
			if (!sink_conn_wait(c, sink_session_delay_ms(ss)))
				return;
			sink_session_delay_done(ss);
			break;
		case SINK_STORE:
			/* SINK_MORE here means: go on with what is buffered */
			act = sink_session_stored(ss, sink_conn_store(c, ss));
			if (act != SINK_MORE)
				continue;
			break;
		case SINK_STARTTLS:
			/* RFC 3207 5: what came after STARTTLS is dropped */
			off = have;
			if (sink_conn_tls(c) < 0)
				return;
			sink_session_tls_done(ss);
			break;
		case SINK_MORE: {
			ssize_t r;

			/* keep a partial command line for the next feed */
			memmove(in, in + off, have - off);
			have -= off;
			off = 0;
			if (have == SINK_READ_BUF)
				return;	/* the session never leaves that */
			r = sink_conn_read(c, in + have, SINK_READ_BUF - have);
			if (r <= 0)
				return;
			have += (size_t)r;
			break;
		}
		}
		act = sink_session_feed(ss, in + off, have - off, &used);
		off += used;
	}
}

static void sink_conn_unlink(struct sink_conn *c)
{
	struct sink *s = c->sink;

	pthread_mutex_lock(&s->lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->active--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/* sink_conn_run - serve one connection to its end, then free it */
static void sink_conn_run(struct sink_conn *c, char *in)
{
	struct sink *s = c->sink;
	struct sink_session *ss;
	const struct sink_stats *st;

	if (!c->implicit_tls || sink_conn_tls(c) == 0) {
		ss = sink_session_new(&s->cfg->proto, c->id, c->implicit_tls);
		sink_conn_serve(c, ss, in);
		sink_session_end(ss);
		sink_session_sent(ss);	/* nothing more will be sent */
		sink_conn_flush(c, ss);	/* the records */
		st = sink_session_stats(ss);
		atomic_fetch_add(&s->messages, st->messages);
		atomic_fetch_add(&s->recipients, st->recipients);
		atomic_fetch_add(&s->bytes, st->bytes);
		atomic_fetch_add(&s->refused, st->refused);
		atomic_fetch_add(&s->improper, st->improper);
		if (s->cfg->verbose || st->improper > 0)
			sink_notify(s, "connection %lu from %s: %" PRIu64
				    " messages accepted, %" PRIu64 " refused%s",
				    c->id, c->peer, st->messages, st->refused,
				    st->improper > 0 ?
				    ", improper pipelining" : "");
		sink_session_free(&ss);
	}
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		/* this thread serves other connections next: an error of
		 * this one (a read that failed) must not be reported as
		 * theirs (a handshake's failure reads the queue) */
		if (ERR_peek_error() != 0)
			ERR_clear_error();
	}
	sink_conn_unlink(c);
	close(c->fd);
	buf_free(&c->path);
	free(c);
}

/* sink_worker - serve queued connections; end after an idle minute */
static void *sink_worker(void *arg)
{
	struct sink_worker *w = arg;
	struct sink *s = w->sink;
	char *in = xmalloc(SINK_READ_BUF);

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct sink_conn *c;

		while (s->queue == NULL && !s->stopping) {
			struct timespec until = clock_deadline_ms(
				SINK_IDLE_WORKER_S * 1000LL);
			int rc;

			s->idle_workers++;
			rc = pthread_cond_timedwait(&s->work, &s->lock, &until);
			s->idle_workers--;
			if (rc == ETIMEDOUT && s->queue == NULL)
				goto out;
		}
		/* when stopping, the queue is still served: its sockets
		 * are shut down, so that is quick */
		if (s->queue == NULL)
			break;
		c = s->queue;
		s->queue = c->queued;
		if (s->queue == NULL)
			s->queue_tail = NULL;
		s->queued--;
		pthread_mutex_unlock(&s->lock);
		sink_conn_run(c, in);
		pthread_mutex_lock(&s->lock);
	}
out:
	pthread_mutex_unlock(&s->lock);
	free(in);
	pthread_mutex_lock(&s->lock);
	s->workers--;
	w->next = s->finished;
	s->finished = w;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/*
 * sink_reap - join the workers that finished.  Joined, not detached: a
 * thread's exit runs OpenSSL's per-thread clean-up, which must be over
 * before the process exits.
 */
static void sink_reap(struct sink *s)
{
	struct sink_worker *w;

	pthread_mutex_lock(&s->lock);
	w = s->finished;
	s->finished = NULL;
	pthread_mutex_unlock(&s->lock);
	while (w != NULL) {
		struct sink_worker *next = w->next;

		pthread_join(w->thread, NULL);
		free(w);
		w = next;
	}
}

/* sink_start_worker - one more worker thread (s->lock held); -1 if not */
static int sink_start_worker(struct sink *s)
{
	struct sink_worker *w = xcalloc(1, sizeof(*w));
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	w->sink = s;
	/* signals are for the main thread: workers block them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SINK_STACK);
	rc = pthread_create(&w->thread, &attr, sink_worker, w);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		free(w);
		return -1;
	}
	s->workers++;
	return 0;
}

/* sink_spawn - queue the connection on fd for a worker */
static void sink_spawn(struct sink *s, int fd, bool implicit_tls,
		       const struct sockaddr_storage *peer)
{
	struct sink_conn *c = xcalloc(1, sizeof(*c));
	int one = 1, timeout = s->cfg->idle_timeout_s ?
			       s->cfg->idle_timeout_s : 300;
	struct timeval tv = { .tv_sec = timeout };
	unsigned long id = atomic_fetch_add(&s->next_id, 1);
	bool none;

	/* the replies to one read go in one write: no Nagle wait */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->sink = s;
	c->fd = fd;
	c->implicit_tls = implicit_tls;
	c->id = id;
	sink_addr_name(peer, c->peer, sizeof(c->peer));
	atomic_fetch_add(&s->connections, 1);

	pthread_mutex_lock(&s->lock);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->active++;
	if (s->queue_tail != NULL)
		s->queue_tail->queued = c;
	else
		s->queue = c;
	s->queue_tail = c;
	s->queued++;
	/*
	 * A worker for every queued connection: an idle one if there are
	 * enough, else a new one (if none can start, the others will do).
	 */
	if (s->idle_workers >= s->queued || sink_start_worker(s) < 0)
		pthread_cond_signal(&s->work);
	none = s->workers == 0;
	pthread_mutex_unlock(&s->lock);
	if (none)
		sink_notify(s, "connection %lu: no thread to serve it (yet)",
			    id);
}

/* sink_drain - shut every connection down and wait for the workers */
static void sink_drain(struct sink *s)
{
	struct timespec deadline = clock_deadline_ms(SINK_STOP_WAIT_MS);

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->work);
	for (struct sink_conn *c = s->conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (s->active > 0 || s->workers > 0)
		if (pthread_cond_timedwait(&s->idle, &s->lock, &deadline) != 0)
			break;
	pthread_mutex_unlock(&s->lock);
	sink_reap(s);
}

int sink_run(struct sink *s, const char **error_r)
{
	struct pollfd pfd[2 * SINK_LISTENERS_MAX + 1];
	size_t n = s->nlisteners;
	int ret = 0;

	for (size_t i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = s->listeners[i].fd,
					  .events = POLLIN };
	pfd[n] = (struct pollfd){ .fd = s->stop_pipe[0], .events = POLLIN };
	while (!sink_stopping(s)) {
		if (poll(pfd, n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = errmsg_set(error_r, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[n].revents != 0)
			break;
		for (size_t i = 0; i < n; i++) {
			struct sockaddr_storage peer;
			socklen_t len = sizeof(peer);
			int fd;

			if (pfd[i].revents == 0)
				continue;
			fd = accept4(pfd[i].fd, (struct sockaddr *)&peer, &len,
				     SOCK_CLOEXEC);
			if (fd < 0) {
				/* out of descriptors: let some close */
				if (errno == EMFILE || errno == ENFILE)
					poll(NULL, 0, 10);
				continue;
			}
			sink_spawn(s, fd, s->listeners[i].implicit_tls, &peer);
		}
		sink_reap(s);
	}
	for (size_t i = 0; i < n; i++) {
		close(s->listeners[i].fd);
		s->listeners[i].fd = -1;
	}
	sink_drain(s);
	return ret;
}
