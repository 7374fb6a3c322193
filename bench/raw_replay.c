/*
 * raw_replay - the ceiling a sink allows: replay pre-built, fully
 * pipelined SMTP streams at it as fast as its sockets take them.
 *
 *   raw_replay --server ADDR:PORT --connections C --count N --size BYTES
 *              [--from ADDR] [--wait-354 | --bdat] [--rtt] [--timeout S]
 *
 * Before timing it builds, for each connection, the whole byte stream of
 * its share of the N messages: per message
 *
 *   MAIL FROM:<from>  RCPT TO:<rcptI@example.org>  DATA  <message>  .
 *
 * (with --bdat, "BDAT BYTES LAST" and the message, without the dot),
 * where <message> is exactly BYTES bytes (RFC 5322 headers, then
 * printable ASCII body lines of at most 76 characters; no line starts
 * with '.', so no dot-stuffing), and the stream ends with QUIT.  It then
 * connects, reads the greeting, sends EHLO and checks that PIPELINING is
 * offered.  Timing starts when every connection has done so and stops
 * at the last message's final reply.  One thread polls all connections,
 * writing whatever the socket takes while reading and counting replies,
 * so neither direction's buffers can fill and deadlock it.
 *
 * By default the stream sends DATA and the body without waiting for the
 * RCPT or DATA replies ("pure" pipelining).  Postfix's smtp-sink takes
 * that; RFC 2920 does not allow it (DATA must end a group: the body may
 * only follow its 354), and `volley sink` enforces this, answering 554
 * improper pipelining.  Two conforming modes exist for such servers:
 *   --wait-354  the body waits for its DATA's 354; the body, the dot and
 *               the next MAIL, RCPT and DATA then leave together, as RFC
 *               2920 section 3.1 allows.  One round trip per message per
 *               connection, which is what a DATA client must pay.
 *   --bdat      CHUNKING (RFC 3030): MAIL, RCPT, "BDAT size LAST" and
 *               the message, never waiting: the real ceiling of a
 *               conforming client.  Needs CHUNKING offered.
 * If DATA is refused anyway, the server would read the body as commands,
 * so that connection is given up and its remaining messages count as
 * errors.  This is a tool for sinks that accept everything: after a
 * refusal a blind stream can fall out of step with the server (a failed
 * BDAT LAST may leave the transaction open, so the next MAIL gets 503),
 * and though every reply is still counted, it does not test error
 * handling.
 *
 * A message is ok when its end-of-data (or BDAT LAST) reply is 2xx and
 * none of its MAIL/RCPT/DATA replies was 4xx/5xx (354 is DATA's
 * intermediate reply); any 4xx/5xx, or no answer at all, makes it an
 * error.
 *
 * --rtt times 20 NOOPs on the first connection after EHLO (before the
 * timed run) and adds their median, in ms, to the output.  With --rtt,
 * --count may be left out (0): then only the RTT is measured.
 *
 * Prints one JSON line on stdout,
 *   {"client":"raw-replay","messages":N,"ok":k,"errors":e,"seconds":s}
 * (plus "mode" outside the default mode and "rtt_ms" with --rtt), and a
 * readable summary on stderr.  Exits 0 iff ok == N.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define REPLAY_INBUF		65536	/* longest reply line we accept */
#define REPLAY_SEND_MAX		(1u << 20)	/* bytes per send() call */
#define REPLAY_RTT_PROBES	20
#define REPLAY_LINE_MAX		76	/* body line, without CRLF */
#define REPLAY_EHLO_NAME	"raw-replay.example.org"

enum replay_mode {
	REPLAY_PIPE,			/* DATA, body sent before the 354 */
	REPLAY_WAIT_354,		/* DATA, body sent after the 354 */
	REPLAY_BDAT,			/* BDAT size LAST, never waiting */
};

static const char *const replay_mode_names[] = {
	[REPLAY_PIPE] = "pipe", [REPLAY_WAIT_354] = "wait-354",
	[REPLAY_BDAT] = "bdat",
};

struct opts {
	enum replay_mode mode;
	const char *server;
	const char *from;
	int connections;
	long count;
	long size;
	bool rtt;
	int timeout_s;			/* give up after this long idle */
};

/* A growable byte buffer for the pre-built streams. */
struct buf {
	char *p;
	size_t len, cap;
};

/* One connection: its pre-built stream and the replies it has had. */
struct conn {
	int fd;
	char *out;			/* the whole stream, QUIT included */
	size_t out_len, out_off;
	size_t *gates;			/* --wait-354: stream offset just after
					 * each message's DATA line */
	long data_go;			/* 354s received: gates passed */
	char in[REPLAY_INBUF];
	size_t in_len;
	long msgs;			/* messages in this connection's stream */
	long replies;			/* final replies since EHLO's */
	long ok, errors;		/* messages settled so far */
	bool cur_failed;		/* current message had a 4xx/5xx */
	bool done;
};

static const char *first_error;		/* reported once on stderr */

static void note_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void note_error(const char *fmt, ...)
{
	static char msg[160];
	va_list ap;

	if (first_error != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	first_error = msg;
}

static int buf_reserve(struct buf *b, size_t more)
{
	size_t cap = b->cap * 2;
	char *p;

	if (b->len + more <= b->cap)
		return 0;
	if (cap < b->len + more)
		cap = b->len + more;
	p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* body_line - one body line of n printable characters (n <= 76) + CRLF */
static int body_line(struct buf *b, size_t n, unsigned long k)
{
	/* Three copies of the alphabet, so any 76-character window fits.
	 * No character is '.', so no line needs dot-stuffing. */
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	if (buf_add(b, abc + k % 62, n) < 0)
		return -1;
	return buf_add(b, "\r\n", 2);
}

/*
 * message_add - append message i, exactly size bytes: headers, blank
 * line, body.  Returns -1 when out of memory or when size cannot hold
 * the headers (the message is then not written).
 */
static int message_add(struct buf *b, long i, long size, const char *from,
		       const char *date)
{
	char hdr[1024];
	int hlen = snprintf(hdr, sizeof(hdr),
		"From: <%s>\r\n"
		"To: <rcpt%ld@example.org>\r\n"
		"Subject: raw-replay message %ld\r\n"
		"Date: %s\r\n"
		"Message-ID: <%ld.%ld@" REPLAY_EHLO_NAME ">\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n", from, i, i, date, i, (long)getpid());
	long rem;
	unsigned long k = (unsigned long)i;

	if (hlen < 0 || (size_t)hlen >= sizeof(hdr))
		return -1;
	rem = size - hlen;
	/* Every line ends in CRLF, so 1 byte cannot be filled. */
	if (rem < 0 || rem == 1) {
		fprintf(stderr, "raw_replay: --size %ld cannot hold message "
			"%ld's %d bytes of headers (and a body line); use a "
			"larger --size\n", size, i, hlen);
		return -1;
	}
	if (buf_add(b, hdr, (size_t)hlen) < 0)
		return -1;
	while (rem > 0) {
		size_t n;

		if (rem >= REPLAY_LINE_MAX + 2 + 2 || rem == REPLAY_LINE_MAX + 2)
			n = REPLAY_LINE_MAX;
		else if (rem > REPLAY_LINE_MAX + 2)
			n = REPLAY_LINE_MAX - 1;  /* leaves 2: an empty line */
		else
			n = (size_t)rem - 2;
		if (body_line(b, n, k++) < 0)
			return -1;
		rem -= (long)n + 2;
	}
	return 0;
}

/* stream_build - a connection's whole stream: messages first..first+n-1 */
static int stream_build(struct conn *c, long first, long n,
			const struct opts *o, const char *date)
{
	struct buf b = { 0 };
	const char *data_cmd = "DATA\r\n";
	char cmd[512], bdat[64];
	long i;

	if (o->mode == REPLAY_BDAT) {
		/* Every message is exactly size bytes. */
		snprintf(bdat, sizeof(bdat), "BDAT %ld LAST\r\n", o->size);
		data_cmd = bdat;
	}
	if (o->mode == REPLAY_WAIT_354) {
		c->gates = calloc((size_t)n + 1, sizeof(*c->gates));
		if (c->gates == NULL)
			goto out_nomem;
	}
	if (buf_reserve(&b, (size_t)n * ((size_t)o->size + 200) + 64) < 0)
		goto out_nomem;
	for (i = first; i < first + n; i++) {
		int len = snprintf(cmd, sizeof(cmd),
			"MAIL FROM:<%s>\r\nRCPT TO:<rcpt%ld@example.org>\r\n"
			"%s", o->from, i, data_cmd);

		if (len < 0 || (size_t)len >= sizeof(cmd) ||
		    buf_add(&b, cmd, (size_t)len) < 0)
			goto out_nomem;
		if (c->gates != NULL)
			c->gates[i - first] = b.len;
		if (message_add(&b, i, o->size, o->from, date) < 0)
			goto out_free;
		if (o->mode != REPLAY_BDAT && buf_add(&b, ".\r\n", 3) < 0)
			goto out_nomem;
	}
	if (buf_add(&b, "QUIT\r\n", 6) < 0)
		goto out_nomem;
	c->out = b.p;
	c->out_len = b.len;
	c->msgs = n;
	return 0;

out_nomem:
	fprintf(stderr, "raw_replay: out of memory building the streams\n");
out_free:
	free(b.p);
	return -1;
}

/*
 * next_line - take one complete reply line out of c->in into line (NUL
 * terminated, CRLF stripped).  Returns 1 with a line, 0 when more input
 * is needed, -1 when a line is too long to be a reply.
 */
static int next_line(struct conn *c, char *line, size_t linesz)
{
	char *nl = memchr(c->in, '\n', c->in_len);
	size_t n, used;

	if (nl == NULL)
		return c->in_len == sizeof(c->in) ? -1 : 0;
	used = (size_t)(nl - c->in) + 1;
	n = used - 1;
	if (n > 0 && c->in[n - 1] == '\r')
		n--;
	if (n >= linesz)
		n = linesz - 1;
	memcpy(line, c->in, n);
	line[n] = '\0';
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	return 1;
}

/* reply_code - the code of a reply line, and whether the line is final */
static int reply_code(const char *line, bool *final)
{
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' ||
	    (line[3] != '\0' && line[3] != ' ' && line[3] != '-'))
		return -1;
	*final = line[3] != '-';
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* ehlo_offers - does this EHLO reply line offer the keyword? */
static bool ehlo_offers(const char *line, const char *keyword)
{
	size_t n = strlen(keyword);

	return strlen(line) >= 4 + n && strncasecmp(line + 4, keyword, n) == 0 &&
	       (line[4 + n] == '\0' || line[4 + n] == ' ');
}

#define EXT_PIPELINING	0x1
#define EXT_CHUNKING	0x2

/*
 * read_reply_blocking - read one whole (maybe multi-line) reply during
 * set-up.  With ext, adds the EXT_* bits of the extensions it offers.
 */
static int read_reply_blocking(struct conn *c, unsigned *ext)
{
	char line[1024];

	for (;;) {
		int rc = next_line(c, line, sizeof(line));
		bool final;
		int code;
		ssize_t n;

		if (rc < 0)
			return -1;
		if (rc == 1) {
			code = reply_code(line, &final);
			if (code < 0) {
				fprintf(stderr, "raw_replay: not an SMTP reply: "
					"%.80s\n", line);
				return -1;
			}
			if (ext != NULL && ehlo_offers(line, "PIPELINING"))
				*ext |= EXT_PIPELINING;
			if (ext != NULL && ehlo_offers(line, "CHUNKING"))
				*ext |= EXT_CHUNKING;
			if (final)
				return code;
			continue;
		}
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n <= 0) {
			fprintf(stderr, "raw_replay: %s during set-up\n",
				n == 0 ? "connection closed" :
				errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
		c->in_len += (size_t)n;
	}
}

static int send_all(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "raw_replay: send: %s\n", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

static int dial(const char *server, int timeout_s)
{
	char host[256];
	const char *colon = strrchr(server, ':');
	const char *h = server;
	size_t hlen;
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = -1, one = 1, rc;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - server);
	if (hlen >= 2 && server[0] == '[' && server[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "raw_replay: %s: %s\n", server, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "raw_replay: cannot connect to %s: %s\n", server,
			strerror(errno));
		return -1;
	}
	/* NOOP timing must not wait for Nagle; the set-up reads must not
	 * hang on a silent server. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* conn_open - connect, greeting, EHLO (PIPELINING, and CHUNKING for
 * --bdat, required); blocking */
static int conn_open(struct conn *c, const struct opts *o)
{
	unsigned ext = 0;
	int code;

	c->fd = dial(o->server, o->timeout_s);
	if (c->fd < 0)
		return -1;
	code = read_reply_blocking(c, NULL);
	if (code != 220) {
		if (code > 0)
			fprintf(stderr, "raw_replay: greeting %d\n", code);
		return -1;
	}
	if (send_all(c->fd, "EHLO " REPLAY_EHLO_NAME "\r\n") < 0)
		return -1;
	code = read_reply_blocking(c, &ext);
	if (code != 250) {
		if (code > 0)
			fprintf(stderr, "raw_replay: EHLO refused: %d\n", code);
		return -1;
	}
	if (!(ext & EXT_PIPELINING)) {
		fprintf(stderr, "raw_replay: %s does not offer PIPELINING; "
			"a pipelined replay would desynchronise\n", o->server);
		return -1;
	}
	if (o->mode == REPLAY_BDAT && !(ext & EXT_CHUNKING)) {
		fprintf(stderr, "raw_replay: %s does not offer CHUNKING, "
			"needed by --bdat\n", o->server);
		return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* measure_rtt - median of REPLAY_RTT_PROBES NOOP round trips, in ms */
static int measure_rtt(struct conn *c, double *median_ms)
{
	double t[REPLAY_RTT_PROBES];
	int i;

	for (i = 0; i < REPLAY_RTT_PROBES; i++) {
		double t0 = clock_mono_s();

		if (send_all(c->fd, "NOOP\r\n") < 0)
			return -1;
		if (read_reply_blocking(c, NULL) != 250) {
			fprintf(stderr, "raw_replay: NOOP not answered 250\n");
			return -1;
		}
		t[i] = (clock_mono_s() - t0) * 1e3;
	}
	qsort(t, REPLAY_RTT_PROBES, sizeof(t[0]), cmp_double);
	*median_ms = (t[REPLAY_RTT_PROBES / 2 - 1] + t[REPLAY_RTT_PROBES / 2]) / 2;
	fprintf(stderr, "raw_replay: NOOP RTT min %.3f median %.3f max %.3f ms\n",
		t[0], *median_ms, t[REPLAY_RTT_PROBES - 1]);
	return 0;
}

/* conn_give_up - stop this connection; unanswered messages are errors */
static void conn_give_up(struct conn *c, const char *why)
{
	long unsettled = c->msgs - c->ok - c->errors;

	if (unsettled > 0) {
		fprintf(stderr, "raw_replay: %s; %ld message(s) unanswered\n",
			why, unsettled);
		c->errors += unsettled;
	}
	c->done = true;
	close(c->fd);
	c->fd = -1;
}

/*
 * on_reply - one final reply of the stream.  Replies come in the order
 * of the commands: per message MAIL, RCPT, DATA and end-of-data (or
 * MAIL, RCPT and BDAT LAST); then QUIT.  Returns true when the reply
 * settled a message.
 */
static bool on_reply(struct conn *c, enum replay_mode mode, int code)
{
	long per_msg = mode == REPLAY_BDAT ? 3 : 4;
	long stage = c->replies % per_msg;

	if (c->replies++ == per_msg * c->msgs) {	/* QUIT */
		c->done = true;
		close(c->fd);
		c->fd = -1;
		return false;
	}
	if (mode == REPLAY_BDAT && stage == 2)
		stage = 3;		/* BDAT LAST ends the message */
	switch (stage) {
	case 0:		/* MAIL */
	case 1:		/* RCPT */
		if (code >= 400) {
			note_error("MAIL or RCPT refused: %d", code);
			c->cur_failed = true;
		}
		return false;
	case 2:		/* DATA */
		if (code == 354) {
			c->data_go++;	/* --wait-354: the body may go */
			return false;
		}
		note_error("DATA answered %d instead of 354%s", code,
			   mode == REPLAY_PIPE ? " (a server that enforces "
			   "RFC 2920 needs --wait-354 or --bdat)" : "");
		conn_give_up(c, "DATA not accepted, the body would be read "
			     "as commands");
		return true;
	default:	/* end of data, BDAT LAST */
		if (code >= 200 && code < 300 && !c->cur_failed) {
			c->ok++;
		} else {
			if (code >= 400)
				note_error("end of data refused: %d", code);
			c->errors++;
		}
		c->cur_failed = false;
		return true;
	}
}

/* conn_input - read what has arrived and settle the replies it holds */
static bool conn_input(struct conn *c, enum replay_mode mode)
{
	char line[1024];
	bool settled = false;
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
			 MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	if (n <= 0) {
		conn_give_up(c, n == 0 ? "server closed the connection" :
			     strerror(errno));
		return true;
	}
	c->in_len += (size_t)n;
	while (!c->done) {
		int rc = next_line(c, line, sizeof(line));
		bool final = false;
		int code;

		if (rc == 0)
			break;
		code = rc < 0 ? -1 : reply_code(line, &final);
		if (code < 0) {
			conn_give_up(c, "unparsable reply");
			return true;
		}
		if (final && on_reply(c, mode, code))
			settled = true;
	}
	return settled;
}

/* conn_sendable - where writing must stop for now */
static size_t conn_sendable(const struct conn *c)
{
	/* --wait-354: a body leaves only after its DATA's 354. */
	if (c->gates != NULL && c->data_go < c->msgs)
		return c->gates[c->data_go];
	return c->out_len;
}

/* conn_output - write as much of the stream as the socket takes */
static void conn_output(struct conn *c)
{
	size_t limit = conn_sendable(c);

	while (c->out_off < limit) {
		size_t want = limit - c->out_off;
		ssize_t n = send(c->fd, c->out + c->out_off,
				 want > REPLAY_SEND_MAX ? REPLAY_SEND_MAX : want,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_give_up(c, strerror(errno));
			return;
		}
		c->out_off += (size_t)n;
	}
}

/*
 * run - drive every connection until all are done; returns the time of
 * the last settled message.  Gives up on connections idle for timeout_s.
 */
static double run(struct conn *conns, int nc, const struct opts *o,
		  double start)
{
	struct pollfd *pfd = calloc((size_t)nc, sizeof(*pfd));
	double last = start;

	if (pfd == NULL) {
		fprintf(stderr, "raw_replay: out of memory\n");
		exit(1);
	}
	for (;;) {
		int i, live = 0, n;

		for (i = 0; i < nc; i++) {
			struct conn *c = &conns[i];

			pfd[i].fd = c->done ? -1 : c->fd;
			pfd[i].events = POLLIN;
			if (c->out_off < conn_sendable(c))
				pfd[i].events |= POLLOUT;
			pfd[i].revents = 0;
			live += !c->done;
		}
		if (live == 0)
			break;
		n = poll(pfd, (nfds_t)nc, o->timeout_s * 1000);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "raw_replay: poll: %s\n", strerror(errno));
			exit(1);
		}
		if (n == 0) {
			for (i = 0; i < nc; i++)
				if (!conns[i].done)
					conn_give_up(&conns[i], "timed out");
			break;
		}
		for (i = 0; i < nc; i++) {
			struct conn *c = &conns[i];

			if (c->done || pfd[i].revents == 0)
				continue;
			/* Read first: the replies free the server to take
			 * more of what we write. */
			if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				if (conn_input(c, o->mode))
					last = clock_mono_s();
			/* A 354 just read may have opened the gate. */
			if (!c->done && c->out_off < conn_sendable(c))
				conn_output(c);
		}
	}
	free(pfd);
	return last;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: raw_replay --server ADDR:PORT --connections C --count N\n"
		"                  --size BYTES [--from ADDR] [--wait-354 | --bdat]\n"
		"                  [--rtt] [--timeout S]\n");
	exit(2);
}

static long parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
		usage();
	return v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "connections", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'z' },
		{ "from", required_argument, NULL, 'f' },
		{ "rtt", no_argument, NULL, 'r' },
		{ "wait-354", no_argument, NULL, 'w' },
		{ "bdat", no_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int opt, nmodes = 0;

	*o = (struct opts){ .from = "bench@example.org", .connections = 1,
			    .count = -1, .size = 4096, .timeout_s = 60 };
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o->server = optarg; break;
		case 'c': o->connections = (int)parse_long(optarg, 1, 10000); break;
		case 'n': o->count = parse_long(optarg, 0, 100000000); break;
		case 'z': o->size = parse_long(optarg, 1, 100000000); break;
		case 'f': o->from = optarg; break;
		case 'r': o->rtt = true; break;
		case 'w': o->mode = REPLAY_WAIT_354; nmodes++; break;
		case 'b': o->mode = REPLAY_BDAT; nmodes++; break;
		case 't': o->timeout_s = (int)parse_long(optarg, 1, 3600); break;
		default: usage();
		}
	}
	if (o->count < 0 && o->rtt)
		o->count = 0;
	if (o->server == NULL || o->count < 0 || optind != argc || nmodes > 1 ||
	    strlen(o->from) > 300)
		usage();
}

int main(int argc, char **argv)
{
	struct opts o;
	struct conn *conns;
	char date[64];
	time_t t = time(NULL);
	double rtt_ms = 0, start, end;
	long ok = 0, errors = 0, first = 0;
	int i;

	parse_opts(argc, argv, &o);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime(&t));
	conns = calloc((size_t)o.connections, sizeof(*conns));
	if (conns == NULL) {
		fprintf(stderr, "raw_replay: out of memory\n");
		return 1;
	}
	/* Everything the timed run sends is built first. */
	for (i = 0; i < o.connections; i++) {
		long n = o.count / o.connections + (i < o.count % o.connections);

		if (stream_build(&conns[i], first, n, &o, date) < 0)
			return 1;
		first += n;
	}
	for (i = 0; i < o.connections; i++)
		if (conn_open(&conns[i], &o) < 0)
			return 1;
	if (o.rtt && measure_rtt(&conns[0], &rtt_ms) < 0)
		return 1;

	start = clock_mono_s();
	end = run(conns, o.connections, &o, start);
	for (i = 0; i < o.connections; i++) {
		ok += conns[i].ok;
		errors += conns[i].errors;
	}
	if (first_error != NULL)
		fprintf(stderr, "raw_replay: first error: %s\n", first_error);
	fprintf(stderr, "raw_replay: %s, %ld messages of %ld bytes over %d "
		"connection(s): %ld ok, %ld errors, %.3f s, %.0f msg/s\n",
		replay_mode_names[o.mode], o.count, o.size, o.connections, ok,
		errors, end - start,
		end > start ? (double)ok / (end - start) : 0.0);
	printf("{\"client\":\"raw-replay\",\"messages\":%ld,\"ok\":%ld,"
	       "\"errors\":%ld,\"seconds\":%.3f", o.count, ok, errors,
	       end - start);
	if (o.mode != REPLAY_PIPE)
		printf(",\"mode\":\"%s\"", replay_mode_names[o.mode]);
	if (o.rtt)
		printf(",\"rtt_ms\":%.3f", rtt_ms);
	printf("}\n");
	for (i = 0; i < o.connections; i++) {
		free(conns[i].out);
		free(conns[i].gates);
	}
	free(conns);
	return ok == o.count ? 0 : 1;
}
