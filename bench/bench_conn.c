/*
 * bench_conn - the SMTP client alone: N connections (threads), each
 * pushing pre-built messages through smtp_conn to a sink, as fast as the
 * sink takes them.  No store, no rendering: this is the ceiling the
 * engine puts on a campaign, and the way to compare sinks.
 *
 *   bench_conn [--host H] [--port P] [--connections N] [--messages M]
 *              [--size BYTES] [--no-pipelining] [--no-chunking]
 *              [--window W] [--max-per-connection K]
 *
 * Prints messages per second (wall clock) and client CPU time per
 * message (getrusage, all threads).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"
#include "smtp_conn.h"

struct bench {
	struct smtp_conn_params params;
	struct smtp_message msg;
	atomic_long left;		/* messages not yet taken */
	atomic_long sent, failed;
	atomic_int errors;
};

struct worker {
	struct bench *b;
	pthread_t thread;
};

static const struct smtp_message *bench_next(void *ctx, bool *later)
{
	struct bench *b = ctx;

	(void)later;	/* no "later": when there is none, QUIT */
	if (atomic_fetch_sub(&b->left, 1) <= 0)
		return NULL;
	return &b->msg;
}

static void bench_event(void *ctx, const struct smtp_event *ev)
{
	struct bench *b = ctx;

	if (ev->kind != SMTP_EV_DONE)
		return;
	if (ev->sent)
		atomic_fetch_add(&b->sent, 1);
	else
		atomic_fetch_add(&b->failed, 1);
}

static void *bench_worker(void *arg)
{
	struct worker *w = arg;
	struct smtp_conn_source src = { .next = bench_next,
					.event = bench_event, .ctx = w->b };
	struct smtp_conn_result res;

	/* Reconnect while there is work: max messages per connection. */
	while (atomic_load(&w->b->left) > 0) {
		if (smtp_conn_run(&w->b->params, &src, &res) < 0) {
			if (atomic_fetch_add(&w->b->errors, 1) < 3)
				fprintf(stderr, "bench_conn: %s\n", res.error);
			if (res.permanent || atomic_load(&w->b->errors) > 100)
				break;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "connections", required_argument, NULL, 'c' },
		{ "messages", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 's' },
		{ "no-pipelining", no_argument, NULL, 'P' },
		{ "no-chunking", no_argument, NULL, 'C' },
		{ "window", required_argument, NULL, 'w' },
		{ "max-per-connection", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *rcpt[] = { "bench@sink.test" };
	static struct bench b;
	const char *host = "127.0.0.1", *port = "2525";
	long connections = 8, messages = 100000, size = 4096;
	struct worker *w;
	double t0, c0, wall, cpu;
	char *body;
	int c;

	b.params.session.pipelining = true;
	b.params.session.chunking = true;
	b.params.session.max_messages = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h': host = optarg; break;
		case 'p': port = optarg; break;
		case 'c': connections = atol(optarg); break;
		case 'm': messages = atol(optarg); break;
		case 's': size = atol(optarg); break;
		case 'P': b.params.session.pipelining = false; break;
		case 'C': b.params.session.chunking = false; break;
		case 'w':
			b.params.session.chunking_window =
				(unsigned)atoi(optarg);
			break;
		case 'k':
			b.params.session.max_messages = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: see the head of "
				"bench/bench_conn.c\n");
			return 2;
		}
	}
	if (connections < 1 || messages < 1 || size < 64)
		return 2;
	signal(SIGPIPE, SIG_IGN);

	/* A message of size bytes: headers, then 76-column lines. */
	body = malloc((size_t)size + 1);
	{
		long n = snprintf(body, (size_t)size, "From: bench@volley.test"
				  "\r\nTo: bench@sink.test\r\nSubject: bench"
				  "\r\n\r\n");

		while (n < size - 2) {
			long line = size - 2 - n < 76 ? size - 2 - n : 76;

			memset(body + n, 'x', (size_t)line);
			n += line;
			body[n++] = '\r';
			body[n++] = '\n';
		}
		body[n] = '\0';
		size = n;
	}
	b.msg = (struct smtp_message){ .from = "bench@volley.test",
				       .rcpts = rcpt, .nrcpts = 1,
				       .data = body, .len = (size_t)size };
	b.params.transport = (struct transport_params){
		.host = host, .port = port, .connect_timeout_ms = 10000 };
	b.params.session.helo_name = "bench.volley.test";
	b.params.session.tls = SMTP_TLS_NONE;
	atomic_store(&b.left, messages);

	w = calloc((size_t)connections, sizeof(*w));
	t0 = clock_mono_s();
	c0 = clock_cpu_s();
	for (long i = 0; i < connections; i++) {
		w[i].b = &b;
		pthread_create(&w[i].thread, NULL, bench_worker, &w[i]);
	}
	for (long i = 0; i < connections; i++)
		pthread_join(w[i].thread, NULL);
	wall = clock_mono_s() - t0;
	cpu = clock_cpu_s() - c0;

	printf("bench_conn: %ld connections, %ld messages of %ld bytes, "
	       "pipelining %s, chunking %s\n", connections, messages, size,
	       b.params.session.pipelining ? "on" : "off",
	       b.params.session.chunking ? "on" : "off");
	printf("  sent %ld, not sent %ld, connection errors %d\n",
	       atomic_load(&b.sent), atomic_load(&b.failed),
	       atomic_load(&b.errors));
	printf("  %.0f messages/s (%.2f s), client CPU %.1f us/message\n",
	       (double)atomic_load(&b.sent) / wall, wall,
	       cpu * 1e6 / (double)(atomic_load(&b.sent) ?
				     atomic_load(&b.sent) : 1));
	free(w);
	free(body);
	return atomic_load(&b.sent) == messages ? 0 : 1;
}
