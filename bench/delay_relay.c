/*
 * delay_relay - a TCP relay that adds a fixed one-way delay, for
 * benchmarks on kernels without netem.
 *
 *   delay_relay --listen ADDR:PORT --to ADDR:PORT --delay-ms D
 *
 * Accepts any number of connections.  For each it connects to the
 * target and forwards bytes both ways, holding every chunk it reads for
 * D ms (counted from the moment it was read) before writing it onward.
 * Each direction therefore gets D ms of one-way delay, an application
 * round trip gets 2*D, and byte order is kept.  An EOF is delayed like
 * data and forwarded (shutdown(SHUT_WR)) after everything read before
 * it, so half-closed connections behave as they would on a slow link.
 * A connection is closed when both directions have ended, or at once
 * when either socket fails.
 *
 * What it does not model: the TCP handshake (the target is dialled at
 * once, so connecting costs nothing extra) and TCP's own reaction to a
 * long path (both TCP legs are local and see a tiny RTT).  The queue cap
 * below stands in for the window: a direction stops reading while it
 * holds RELAY_QUEUE_MAX bytes, which bounds memory per connection and
 * caps one connection at RELAY_QUEUE_MAX per D ms (400 MB/s at 10 ms).
 *
 * Design: one thread, one epoll set (edge-triggered).  Because D is the
 * same for every chunk and the clock is monotonic, chunks fall due in
 * the order they were read, whichever connection they belong to.  So a
 * single FIFO of not-yet-due chunks (the "due list") is enough: the
 * loop sleeps in epoll_pwait2() (nanosecond timeout; glibc 2.35, Linux
 * 5.11) until its head is due, then releases every chunk that is due to
 * its direction, which writes its released prefix with one writev.
 * Each chunk costs O(1) work and no chunk is looked at before it is
 * due.  (A timerfd would cost two or three more syscalls per chunk when
 * traffic is sparse.)
 *
 * Diagnostics go to stderr; it runs until killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* A direction stops reading its source while it holds this much. */
#define RELAY_QUEUE_MAX		(4u << 20)
/* One recv() reads at most this much into one chunk. */
#define RELAY_READ_MAX		(64u << 10)
/* Released chunks written by one writev(). */
#define RELAY_IOV_MAX		64
#define RELAY_EVENTS_MAX	256

struct relay_dir;

/*
 * One read's worth of bytes (or an EOF marker), waiting in its
 * direction's queue.  Until it is due it is also on the due list.
 */
struct chunk {
	struct chunk *next;			/* in its direction, read order */
	struct chunk *due_prev, *due_next;	/* on the due list */
	struct relay_dir *dir;
	uint64_t due_ns;			/* CLOCK_MONOTONIC */
	size_t len, off;			/* off: bytes already written */
	bool released;				/* due: may be written */
	bool eof;				/* forward EOF, carries no bytes */
	char data[];
};

struct relay_conn;

/* One socket of a connection; the epoll data points here. */
struct side {
	struct relay_conn *conn;
	int fd;
	bool can_read, can_write;	/* edge-triggered readiness we hold */
	bool connecting;		/* the target side, before connect ends */
};

/* Bytes read from src, queued, then written to dst. */
struct relay_dir {
	struct side *src, *dst;
	struct chunk *head, *tail;
	size_t queued;			/* bytes in the queue */
	bool read_eof;			/* src has sent EOF (queued as a chunk) */
	bool shut;			/* EOF forwarded to dst */
	bool dirty;			/* on the flush list */
	struct relay_dir *dirty_next;
};

struct relay_conn {
	struct side client, target;
	struct relay_dir up, down;	/* client->target, target->client */
	bool closing;			/* freed once the current batch is done */
	struct relay_conn *free_next;
};

struct relay {
	int epfd, listen_fd;
	bool listen_paused;		/* out of descriptors: see relay_accept */
	struct addrinfo *target;
	uint64_t delay_ns;
	struct chunk *due_head, *due_tail;
	struct relay_dir *dirty;	/* directions with newly released chunks */
	struct relay_conn *to_free;
	char *readbuf;
	long conns_open;
};

/* The tag of the one descriptor that is not a connection side. */
static char tag_listen;

/* parse_hostport - "HOST:PORT" or "[V6]:PORT" into getaddrinfo results */
static int parse_hostport(const char *arg, bool passive, struct addrinfo **res)
{
	char host[256];
	const char *colon = strrchr(arg, ':');
	const char *h = arg;
	size_t hlen;
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	int rc;

	if (colon == NULL || colon[1] == '\0')
		return -1;
	hlen = (size_t)(colon - arg);
	if (hlen >= 2 && arg[0] == '[' && arg[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, colon + 1, &hints, res);
	if (rc != 0) {
		fprintf(stderr, "delay_relay: %s: %s\n", arg, gai_strerror(rc));
		return -1;
	}
	return 0;
}

static void set_nodelay(int fd)
{
	int one = 1;

	/* Nagle would hold small writes (SMTP replies) for an ACK, adding
	 * delay of its own on top of ours. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void due_unlink(struct relay *r, struct chunk *c)
{
	if (c->due_prev != NULL)
		c->due_prev->due_next = c->due_next;
	else
		r->due_head = c->due_next;
	if (c->due_next != NULL)
		c->due_next->due_prev = c->due_prev;
	else
		r->due_tail = c->due_prev;
	c->due_prev = c->due_next = NULL;
}

/*
 * conn_close - stop the connection; it is freed after the current batch.
 * err is the errno that ended it, 0 for a clean end.
 */
static void conn_close(struct relay *r, struct relay_conn *c, int err)
{
	if (c->closing)
		return;
	/* Many clients (smtp-source among them) end with a reset, and a
	 * reset makes the other side's next write fail with EPIPE: both are
	 * ordinary ends, not worth a line each. */
	if (err != 0 && err != ECONNRESET && err != EPIPE)
		fprintf(stderr, "delay_relay: connection closed: %s\n",
			strerror(err));
	c->closing = true;
	c->free_next = r->to_free;
	r->to_free = c;
}

static void dir_free_chunks(struct relay *r, struct relay_dir *d)
{
	struct chunk *ch, *next;

	for (ch = d->head; ch != NULL; ch = next) {
		next = ch->next;
		if (!ch->released)
			due_unlink(r, ch);
		free(ch);
	}
	d->head = d->tail = NULL;
	d->queued = 0;
}

static void conn_free(struct relay *r, struct relay_conn *c)
{
	dir_free_chunks(r, &c->up);
	dir_free_chunks(r, &c->down);
	/* close() also drops the descriptors from the epoll set. */
	close(c->client.fd);
	if (c->target.fd >= 0)
		close(c->target.fd);
	free(c);
	r->conns_open--;
}

/* dir_push - queue a chunk read now; it falls due delay_ns later */
static int dir_push(struct relay *r, struct relay_dir *d, const char *buf,
		    size_t len, bool eof)
{
	struct chunk *ch = malloc(sizeof(*ch) + len);

	if (ch == NULL)
		return -1;
	memset(ch, 0, sizeof(*ch));
	memcpy(ch->data, buf, len);
	ch->len = len;
	ch->eof = eof;
	ch->dir = d;
	ch->due_ns = (uint64_t)clock_mono_ns() + r->delay_ns;
	if (d->tail != NULL)
		d->tail->next = ch;
	else
		d->head = ch;
	d->tail = ch;
	d->queued += len;

	/* Appending keeps the due list sorted (see the file comment). */
	ch->due_prev = r->due_tail;
	if (r->due_tail != NULL)
		r->due_tail->due_next = ch;
	else
		r->due_head = ch;
	r->due_tail = ch;
	return 0;
}

/* dir_read - read src until it would block, ends, or the queue is full */
static void dir_read(struct relay *r, struct relay_dir *d)
{
	struct relay_conn *c = d->src->conn;

	while (!c->closing && d->src->can_read && !d->read_eof &&
	       d->queued < RELAY_QUEUE_MAX) {
		ssize_t n = recv(d->src->fd, r->readbuf, RELAY_READ_MAX, 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				d->src->can_read = false;
			} else if (errno != EINTR) {
				conn_close(r, c, errno);
			}
			continue;
		}
		if (n == 0)
			d->read_eof = true;
		if (dir_push(r, d, r->readbuf, (size_t)n, n == 0) < 0)
			conn_close(r, c, ENOMEM);
	}
}

static bool conn_done(const struct relay_conn *c)
{
	return c->up.shut && c->down.shut;
}

/* dir_flush - write dst what has been released, in order, until it blocks */
static void dir_flush(struct relay *r, struct relay_dir *d)
{
	struct relay_conn *c = d->dst->conn;
	bool was_full = d->queued >= RELAY_QUEUE_MAX;

	while (!c->closing && d->dst->can_write && !d->dst->connecting &&
	       d->head != NULL && d->head->released) {
		struct iovec iov[RELAY_IOV_MAX];
		struct chunk *ch;
		int niov = 0;
		ssize_t n;

		if (d->head->eof) {
			/* Everything read before the EOF is written. */
			if (shutdown(d->dst->fd, SHUT_WR) < 0 && errno != ENOTCONN)
				conn_close(r, c, errno);
			d->shut = true;
			ch = d->head;
			d->head = d->tail = NULL;	/* nothing follows an EOF */
			free(ch);
			if (conn_done(c))
				conn_close(r, c, 0);
			break;
		}
		for (ch = d->head; ch != NULL && ch->released && !ch->eof &&
		     niov < RELAY_IOV_MAX; ch = ch->next) {
			iov[niov].iov_base = ch->data + ch->off;
			iov[niov].iov_len = ch->len - ch->off;
			niov++;
		}
		n = writev(d->dst->fd, iov, niov);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				d->dst->can_write = false;
			else if (errno != EINTR)
				conn_close(r, c, errno);
			continue;
		}
		d->queued -= (size_t)n;
		while (n > 0) {
			ch = d->head;
			if ((size_t)n < ch->len - ch->off) {
				ch->off += (size_t)n;
				break;
			}
			n -= (ssize_t)(ch->len - ch->off);
			d->head = ch->next;
			if (d->head == NULL)
				d->tail = NULL;
			free(ch);
		}
	}
	/* Reading stopped at the cap; edge-triggered epoll will not tell us
	 * again about bytes already waiting, so resume here. */
	if (was_full && d->queued < RELAY_QUEUE_MAX)
		dir_read(r, d);
}

/* relay_release - hand every chunk now due to its direction, then write */
static void relay_release(struct relay *r)
{
	uint64_t now = (uint64_t)clock_mono_ns();
	struct relay_dir *d;

	while (r->due_head != NULL && r->due_head->due_ns <= now) {
		struct chunk *ch = r->due_head;

		due_unlink(r, ch);
		ch->released = true;
		if (!ch->dir->dirty) {
			ch->dir->dirty = true;
			ch->dir->dirty_next = r->dirty;
			r->dirty = ch->dir;
		}
	}
	/* One writev per direction for everything that fell due together. */
	while ((d = r->dirty) != NULL) {
		r->dirty = d->dirty_next;
		d->dirty = false;
		dir_flush(r, d);
	}
}

static int epoll_add(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* conn_open - take an accepted client and start dialling the target */
static void conn_open(struct relay *r, int cfd)
{
	const uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	struct relay_conn *c = calloc(1, sizeof(*c));
	const struct addrinfo *ai = r->target;
	int tfd;

	if (c == NULL) {
		close(cfd);
		return;
	}
	c->client = (struct side){ .conn = c, .fd = cfd };
	c->target = (struct side){ .conn = c, .fd = -1, .connecting = true };
	c->up = (struct relay_dir){ .src = &c->client, .dst = &c->target };
	c->down = (struct relay_dir){ .src = &c->target, .dst = &c->client };
	r->conns_open++;

	tfd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		     SOCK_CLOEXEC, ai->ai_protocol);
	if (tfd < 0) {
		fprintf(stderr, "delay_relay: socket: %s\n", strerror(errno));
		goto out_free;
	}
	c->target.fd = tfd;
	set_nodelay(cfd);
	set_nodelay(tfd);
	if (connect(tfd, ai->ai_addr, ai->ai_addrlen) < 0 &&
	    errno != EINPROGRESS) {
		fprintf(stderr, "delay_relay: connect: %s\n", strerror(errno));
		goto out_free;
	}
	if (epoll_add(r->epfd, cfd, ev, &c->client) < 0 ||
	    epoll_add(r->epfd, tfd, ev, &c->target) < 0) {
		fprintf(stderr, "delay_relay: epoll_ctl: %s\n", strerror(errno));
		goto out_free;
	}
	return;

out_free:
	conn_free(r, c);
}

/* relay_accept - accept all waiting clients */
static void relay_accept(struct relay *r)
{
	for (;;) {
		int fd = accept4(r->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_open(r, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			/* Level-triggered, the listener would wake us at once,
			 * forever: leave it until a connection is freed. */
			fprintf(stderr, "delay_relay: accept: %s (pausing)\n",
				strerror(errno));
			epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->listen_fd, NULL);
			r->listen_paused = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			fprintf(stderr, "delay_relay: accept: %s\n",
				strerror(errno));
		}
		return;
	}
}

/* side_event - readiness on one socket of a connection */
static void side_event(struct relay *r, struct side *s, uint32_t events)
{
	struct relay_conn *c = s->conn;
	struct relay_dir *from = s == &c->client ? &c->up : &c->down;
	struct relay_dir *to = s == &c->client ? &c->down : &c->up;

	if (c->closing)
		return;
	if (s->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			conn_close(r, c, err);
			return;
		}
		s->connecting = false;
	}
	/* An error or hangup shows up as a failed or empty read/write. */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
		s->can_read = true;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		s->can_write = true;
	if (s->connecting)
		return;
	dir_read(r, from);
	dir_flush(r, to);
}

static int relay_listen(struct relay *r, const char *arg)
{
	struct addrinfo *ai;
	int one = 1;

	if (parse_hostport(arg, true, &ai) < 0)
		return -1;
	r->listen_fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			      SOCK_CLOEXEC, ai->ai_protocol);
	if (r->listen_fd < 0 ||
	    setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof(one)) < 0 ||
	    bind(r->listen_fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(r->listen_fd, 1024) < 0) {
		fprintf(stderr, "delay_relay: listen %s: %s\n", arg,
			strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return 0;
}

/* raise_nofile - one relayed connection costs two descriptors */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int relay_setup(struct relay *r, const char *listen_arg,
		       const char *to_arg)
{
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	/* The default 50 us of timer slack would be added to every delay. */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	if (parse_hostport(to_arg, false, &r->target) < 0)
		return -1;
	if (relay_listen(r, listen_arg) < 0)
		return -1;
	r->readbuf = malloc(RELAY_READ_MAX);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->readbuf == NULL || r->epfd < 0 ||
	    epoll_add(r->epfd, r->listen_fd, EPOLLIN, &tag_listen) < 0) {
		fprintf(stderr, "delay_relay: setup: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* relay_run - the event loop; returns only on a fatal error */
static int relay_run(struct relay *r)
{
	struct epoll_event events[RELAY_EVENTS_MAX];
	bool freed;

	for (;;) {
		struct timespec ts, *timeout = NULL;	/* nothing due: sleep */
		int i, n;

		if (r->due_head != NULL) {
			uint64_t now = (uint64_t)clock_mono_ns();
			uint64_t due = r->due_head->due_ns;
			uint64_t wait = due > now ? due - now : 0;

			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			timeout = &ts;
		}
		n = epoll_pwait2(r->epfd, events, RELAY_EVENTS_MAX, timeout,
				 NULL);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "delay_relay: epoll_pwait2: %s\n",
				strerror(errno));
			return -1;
		}
		for (i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &tag_listen)
				relay_accept(r);
			else
				side_event(r, p, events[i].events);
		}
		relay_release(r);
		/* Only now may closed connections go: events of this batch
		 * could still have pointed at them. */
		freed = false;
		while (r->to_free != NULL) {
			struct relay_conn *c = r->to_free;

			r->to_free = c->free_next;
			conn_free(r, c);
			freed = true;
		}
		if (r->listen_paused && freed) {
			if (epoll_add(r->epfd, r->listen_fd, EPOLLIN,
				      &tag_listen) == 0)
				r->listen_paused = false;
		}
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: delay_relay --listen ADDR:PORT --to ADDR:PORT --delay-ms D\n"
		"  forwards each accepted connection to --to, delaying every\n"
		"  chunk D ms (fractions allowed) in each direction\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct relay r = { .listen_fd = -1, .epfd = -1 };
	const char *listen_arg = NULL, *to_arg = NULL;
	double delay_ms = -1;
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_arg = optarg;
			break;
		case 't':
			to_arg = optarg;
			break;
		case 'd':
			delay_ms = strtod(optarg, &end);
			if (*end != '\0' || !(delay_ms >= 0) || delay_ms > 1e6)
				usage();
			break;
		default:
			usage();
		}
	}
	if (listen_arg == NULL || to_arg == NULL || delay_ms < 0 ||
	    optind != argc)
		usage();
	r.delay_ns = (uint64_t)(delay_ms * 1e6);
	if (relay_setup(&r, listen_arg, to_arg) < 0)
		return 1;
	fprintf(stderr, "delay_relay: %s -> %s, %g ms each way\n", listen_arg,
		to_arg, delay_ms);
	return relay_run(&r) < 0 ? 1 : 0;
}
