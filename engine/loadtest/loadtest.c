/*
 * loadtest - the load generator (see loadtest.h).
 *
 * Shared by the threads, lock-free: the next sequence number (an atomic
 * counter: in closed loop taken with fetch_add, in open loop with a
 * compare-and-swap after checking the slot is due), the stop flag, and
 * what later connections must know (pipelining off, a connection was
 * ready once).  Each thread owns its connection, its message slots and
 * its statistics; the statistics have a lock only because the reporter
 * reads them while the run goes on.
 */
#include "loadtest.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "clock.h"
#include "errmsg.h"
#include "retry.h"
#include "xalloc.h"

#define LT_ADDR_MAX (LOADTEST_MAX_PATTERN + 4 * 20 + 1)
#define LT_BACKOFF_FIRST_MS 100
#define LT_BACKOFF_MAX_MS 2000
/* no connection ever ready after this many failures per connection:
 * there is nothing to test */
#define LT_GIVE_UP_PER_CONNECTION 2
/* a sleep for a slot wakes this often to see a stop */
#define LT_SLEEP_STEP_NS (50 * 1000000LL)

struct lt_slot {
	struct smtp_message m;
	const char *rcpt_ptrs[LOADTEST_MAX_RECIPIENTS];
	char (*rcpts)[LT_ADDR_MAX];
	char from[LT_ADDR_MAX];
	char *data;		/* a copy of a content, when it is patched */
	size_t cap;
	size_t content;		/* which content data holds; SIZE_MAX: none */
	long long start_ns;	/* handed out, or its slot (open loop) */
	bool busy;
};

struct lt_worker {
	struct loadtest *lt;
	unsigned index;
	pthread_t thread;
	bool started;
	struct lt_slot *slots;
	unsigned nslots;
	unsigned in_flight;	/* handed out, no DONE yet */
	unsigned depth;		/* what goes out at once on this connection */
	long long last_done_ns;	/* the last DONE on this connection */
	unsigned taken;		/* messages handed out on this connection */
	bool accepting;		/* counted in loadtest.accepting */
	bool pipelining;	/* asked for on this connection */
	bool chunking;		/* in use on this connection */
	pthread_mutex_t lock;	/* guards stats */
	struct loadtest_stats stats;
};

struct loadtest {
	struct loadtest_params p;
	uint64_t total_weight;
	unsigned window;	/* BDAT messages in flight, when chunking */
	atomic_uint_fast64_t next_seq;	/* 0-based: message k+1 next */
	atomic_bool stop;
	atomic_bool pipelining_off;
	atomic_bool ever_ready;
	atomic_uint failed_attempts;
	long long start_ns;
	long long end_ns;	/* duration: the end; else 0 */

	pthread_mutex_t lock;	/* guards running, accepting, go,
				 * finish_ns, fatal */
	pthread_cond_t done;	/* running reached 0, or go was set */
	pthread_cond_t gate;	/* accepting went down */
	unsigned running;
	unsigned accepting;	/* connections that may still take
				 * messages (or are backing off after a
				 * failure, to come back) */
	bool go;		/* start_ns is set: the threads may start */
	long long finish_ns;
	char fatal[640];

	struct lt_worker **workers;
	unsigned nworkers;
};

const char *loadtest_phase_name(enum loadtest_phase ph)
{
	static const char *const names[LOADTEST_PHASES] = {
		"connect", "tls", "greeting", "ehlo", "auth", "transaction",
		"start_lag",
	};

	return (unsigned)ph < LOADTEST_PHASES ? names[ph] : "?";
}

/* --- messages ----------------------------------------------------------- */

int loadtest_format(const char *pattern, uint64_t n, char *out, size_t size)
{
	char digits[24], *d = digits + sizeof(digits);
	size_t len = 0, nd;

	/* by hand: twice per message, snprintf showed in the profile */
	do {
		*--d = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	nd = (size_t)(digits + sizeof(digits) - d);

	for (const char *p = pattern; *p != '\0';) {
		const char *piece = p;
		size_t plen = 1;

		if (p[0] == '{' && p[1] == 'n' && p[2] == '}') {
			piece = d;
			plen = nd;
			p += 3;
		} else {
			p++;
		}
		if (len + plen + 1 > size)
			return -1;
		memcpy(out + len, piece, plen);
		len += plen;
	}
	if (len + 1 > size)
		return -1;
	out[len] = '\0';
	return (int)len;
}

/* lt_put_seq - n as LOADTEST_SEQ_DIGITS decimal digits, zero-padded */
static void lt_put_seq(char *at, uint64_t n)
{
	for (int i = LOADTEST_SEQ_DIGITS - 1; i >= 0; i--) {
		at[i] = (char)('0' + n % 10);
		n /= 10;
	}
}

/* lt_message_id - "Message-ID: <loadtest.000...0.id_right>\r\n" */
static void lt_message_id(struct buf *out, const char *id_right,
			  size_t *seq_at)
{
	char zeros[LOADTEST_SEQ_DIGITS];

	buf_append_str(out, "Message-ID: <loadtest.");
	*seq_at = out->len;
	lt_put_seq(zeros, 0);
	buf_append(out, zeros, sizeof(zeros));
	buf_printf(out, ".%s>\r\n", id_right);
}

int loadtest_build_message(struct buf *out, size_t size, const char *from,
			   const char *id_right, size_t *seq_at,
			   const char **error_r)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed",
					    "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
					      "May", "Jun", "Jul", "Aug",
					      "Sep", "Oct", "Nov", "Dec" };
	static const char text[] =
		"volley loadtest filler: the quick brown fox jumps over the "
		"lazy dog 0123456789 ";
	time_t now = time(NULL);
	size_t start = out->len, left, line = 0;
	struct tm tm;

	gmtime_r(&now, &tm);
	buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
		   days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	buf_printf(out, "From: <%s>\r\n", from);
	buf_append_str(out, "To: undisclosed-recipients:;\r\n");
	buf_printf(out, "Subject: volley loadtest, %zu bytes\r\n", size);
	lt_message_id(out, id_right, seq_at);
	buf_append_str(out, "MIME-Version: 1.0\r\n"
			    "Content-Type: text/plain; charset=us-ascii\r\n"
			    "Content-Transfer-Encoding: 7bit\r\n\r\n");
	if (out->len - start + 2 > size) {
		errmsg_set(error_r, "a message of %zu bytes cannot hold "
			   "its headers (%zu bytes and a line)", size,
			   out->len - start);
		buf_truncate(out, start);
		return -1;
	}
	/* Lines of up to 76 characters; never leave a single byte, which
	 * could not end in CRLF. */
	left = size - (out->len - start);
	while (left > 0) {
		size_t n = left - 2 < 76 ? left - 2 : 76;

		if (left - (n + 2) == 1)
			n--;
		for (size_t i = 0; i < n; i++)
			buf_putc(out, text[(line * 7 + i) % (sizeof(text) - 1)]);
		buf_append_str(out, "\r\n");
		left -= n + 2;
		line++;
	}
	return 0;
}

void loadtest_set_message_id(struct buf *msg, const char *id_right,
			     size_t *seq_at)
{
	struct buf out = BUF_INIT;
	const char *p = msg->data ? msg->data : "";
	const char *end = p + msg->len, *hdr_end, *line;
	size_t id_at;

	hdr_end = memmem(p, msg->len, "\r\n\r\n", 4);
	hdr_end = hdr_end != NULL ? hdr_end + 2 : end;
	/* ours first, then every header but the old Message-ID (with its
	 * folded continuation lines) */
	lt_message_id(&out, id_right, &id_at);
	for (line = p; line < hdr_end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *next = nl != NULL ? nl + 1 : end;
		bool skip = strncasecmp(line, "Message-ID:", 11) == 0;

		while (skip && next < hdr_end && (*next == ' ' ||
						  *next == '\t')) {
			nl = memchr(next, '\n', (size_t)(end - next));
			next = nl != NULL ? nl + 1 : end;
		}
		if (!skip)
			buf_append(&out, line, (size_t)(next - line));
		line = next;
	}
	buf_append(&out, hdr_end, (size_t)(end - hdr_end));
	buf_free(msg);
	*msg = out;
	*seq_at = id_at;
}

/* lt_pick - which content message k gets: fixed per k, spread by the
 * weights (a hash of k, so sizes mix evenly over time) */
static size_t lt_pick(const struct loadtest *lt, uint64_t k)
{
	uint64_t x = k + 0x9e3779b97f4a7c15ULL, w;

	if (lt->p.ncontents == 1)
		return 0;
	/* splitmix64 */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	w = x % lt->total_weight;
	/* equal weights (a template's --vars rows): no walk */
	if (lt->total_weight == lt->p.ncontents)
		return (size_t)w;
	for (size_t i = 0; i < lt->p.ncontents; i++) {
		if (w < lt->p.contents[i].weight)
			return i;
		w -= lt->p.contents[i].weight;
	}
	return lt->p.ncontents - 1;
}

/* lt_fill - slot becomes message k (0-based) */
static void lt_fill(struct loadtest *lt, struct lt_slot *slot, uint64_t k)
{
	size_t c = lt_pick(lt, k);
	const struct loadtest_content *ct = &lt->p.contents[c];
	uint64_t first = k * lt->p.recipients + 1;

	loadtest_format(lt->p.from, k + 1, slot->from, sizeof(slot->from));
	for (unsigned i = 0; i < lt->p.recipients; i++)
		loadtest_format(lt->p.to, first + i, slot->rcpts[i],
				LT_ADDR_MAX);
	slot->m.from = slot->from;
	slot->m.nrcpts = lt->p.recipients;
	slot->m.len = ct->len;
	if (ct->seq_at == SIZE_MAX) {
		slot->m.data = ct->data;
		return;
	}
	/* copied once per slot and content, then only the digits change */
	if (slot->content != c) {
		if (slot->cap < ct->len) {
			free(slot->data);
			slot->data = xmalloc(ct->len);
			slot->cap = ct->len;
		}
		memcpy(slot->data, ct->data, ct->len);
		slot->content = c;
	}
	lt_put_seq(slot->data + ct->seq_at, k + 1);
	slot->m.data = slot->data;
}

/* --- schedule ----------------------------------------------------------- */

/*
 * lt_due - when message k (0-based) is due, open loop: k / rate after the
 * start, or with a ramp (rate growing linearly from 0 to R over T) the
 * time its count is reached: R t^2 / 2T = k, so t = sqrt(2 T k / R),
 * and after the ramp T + (k - R T / 2) / R.
 */
static long long lt_due(const struct loadtest *lt, uint64_t k)
{
	double rate = lt->p.rate, ramp = (double)lt->p.ramp_us / 1e6, t;
	double kk = (double)k;

	if (ramp > 0 && kk < rate * ramp / 2)
		t = sqrt(2.0 * ramp * kk / rate);
	else if (ramp > 0)
		t = ramp + (kk - rate * ramp / 2) / rate;
	else
		t = kk / rate;
	return lt->start_ns + (long long)(t * 1e9);
}

/* lt_sleep_until - false if the run was stopped first */
static bool lt_sleep_until(struct loadtest *lt, long long when_ns)
{
	for (;;) {
		long long now = clock_mono_ns(), until = when_ns;

		if (atomic_load(&lt->stop))
			return false;
		if (now >= when_ns)
			return true;
		if (until - now > LT_SLEEP_STEP_NS)
			until = now + LT_SLEEP_STEP_NS;
		clock_sleep_until_ns(until);
	}
}

/* lt_more - could a message still be handed out? */
static bool lt_more(struct loadtest *lt)
{
	uint64_t k = atomic_load(&lt->next_seq);

	if (atomic_load(&lt->stop))
		return false;
	if (lt->p.count > 0 && k >= lt->p.count)
		return false;
	if (lt->end_ns > 0)
		return (lt->p.rate > 0 ? lt_due(lt, k) : clock_mono_ns()) <
		       lt->end_ns;
	return true;
}

/*
 * lt_connect_gate - wait until this thread may open a connection; false
 * when the run has no more messages for it.  With --count, a connection
 * is opened only while the messages left outnumber the connections that
 * may still take some: a spare one would only greet, find nothing and
 * QUIT, and its phases would skew the report.  A thread turned away waits
 * until one of those stops taking messages (its share taken, or it
 * ended) rather than leaving, so connections that end their share
 * (--messages-per-connection) are replaced as fast as they would be
 * without the gate; and as the decision is taken under the lock, the
 * last of them to stop always leaves a thread to carry what is left.
 */
static bool lt_connect_gate(struct loadtest *lt, struct lt_worker *w)
{
	bool go;

	pthread_mutex_lock(&lt->lock);
	for (;;) {
		uint64_t k = atomic_load(&lt->next_seq);
		struct timespec ts;

		go = lt_more(lt);
		if (!go || lt->p.count == 0 ||
		    (k < lt->p.count && lt->p.count - k > lt->accepting))
			break;
		/* woken when accepting goes down; the timeout sees a stop */
		ts = clock_timespec(clock_mono_ns() + LT_SLEEP_STEP_NS);
		pthread_cond_timedwait(&lt->gate, &lt->lock, &ts);
	}
	if (go) {
		lt->accepting++;
		w->accepting = true;
		w->taken = 0;
	}
	pthread_mutex_unlock(&lt->lock);
	return go;
}

/* lt_stop_accepting - w's connection takes no more messages */
static void lt_stop_accepting(struct loadtest *lt, struct lt_worker *w)
{
	if (!w->accepting)
		return;
	pthread_mutex_lock(&lt->lock);
	lt->accepting--;
	w->accepting = false;
	pthread_cond_broadcast(&lt->gate);
	pthread_mutex_unlock(&lt->lock);
}

/* --- the connection's source -------------------------------------------- */

static const struct smtp_message *lt_next(void *ctx, bool *later)
{
	struct lt_worker *w = ctx;
	struct loadtest *lt = w->lt;
	struct lt_slot *slot = NULL;
	long long due, now;
	uint64_t k;

	for (unsigned i = 0; i < w->nslots && slot == NULL; i++)
		if (!w->slots[i].busy)
			slot = &w->slots[i];
	/* depth <= nslots: a free slot while below it */
	if (w->in_flight >= w->depth || slot == NULL) {
		*later = w->in_flight > 0;
		return NULL;
	}
	if (atomic_load(&lt->stop))
		return NULL;
	if (lt->p.rate <= 0) {
		now = clock_mono_ns();
		if (lt->end_ns > 0 && now >= lt->end_ns)
			return NULL;
		k = atomic_fetch_add(&lt->next_seq, 1);
		if (lt->p.count > 0 && k >= lt->p.count)
			return NULL;
		due = now;
	} else {
		k = atomic_load(&lt->next_seq);
		for (;;) {
			if (lt->p.count > 0 && k >= lt->p.count)
				return NULL;
			due = lt_due(lt, k);
			if (lt->end_ns > 0 && due >= lt->end_ns)
				return NULL;
			now = clock_mono_ns();
			/* Not due, and replies to read: read them first. */
			if (due > now && w->in_flight > 0) {
				*later = true;
				return NULL;
			}
			if (atomic_compare_exchange_weak(&lt->next_seq, &k,
							 k + 1))
				break;
		}
		/* The slot is ours; a stop while waiting gives it up. */
		if (due > now && !lt_sleep_until(lt, due))
			return NULL;
	}
	lt_fill(lt, slot, k);
	slot->busy = true;
	slot->start_ns = due;
	w->in_flight++;
	/* its share taken: a waiting thread may open the next connection */
	if (++w->taken == lt->p.conn.session.max_messages &&
	    lt->p.conn.session.max_messages > 0)
		lt_stop_accepting(lt, w);
	pthread_mutex_lock(&w->lock);
	w->stats.attempted++;
	if (lt->p.rate > 0)
		histogram_record(&w->stats.phases[LOADTEST_START_LAG],
				 (uint64_t)(clock_mono_ns() - due) / 1000);
	pthread_mutex_unlock(&w->lock);
	return &slot->m;
}

static void lt_event(void *ctx, const struct smtp_event *ev)
{
	struct lt_worker *w = ctx;
	struct loadtest *lt = w->lt;
	struct lt_slot *slot = ev->ctx;
	struct loadtest_stats *st = &w->stats;
	unsigned code = ev->code >= 0 && ev->code < LOADTEST_CODES ?
			(unsigned)ev->code : 0;
	long long now, start;

	if (ev->kind == SMTP_EV_RCPT) {
		if (!ev->local) {
			pthread_mutex_lock(&w->lock);
			st->rcpt_replies[code]++;
			pthread_mutex_unlock(&w->lock);
		}
		return;
	}
	if (ev->kind != SMTP_EV_DONE)
		return;
	now = clock_mono_ns();
	start = slot->start_ns;
	/*
	 * Closed loop with DATA: a message pipelined behind another cannot
	 * go whole before that one's reply (its body waits for a 354 that
	 * comes with it); from then on it is its own time.  With BDAT each
	 * message left whole when handed out: its time runs from then, the
	 * window's wait included (replies come in batches, so the gap
	 * between two would say nothing).  Open loop keeps its slot:
	 * waiting is the point.
	 */
	if (lt->p.rate <= 0 && !w->chunking && w->last_done_ns > start)
		start = w->last_done_ns;
	w->last_done_ns = now;
	pthread_mutex_lock(&w->lock);
	if (ev->sent) {
		st->sent++;
		st->bytes_sent += slot->m.len;
		st->replies[code]++;
		histogram_record(&st->phases[LOADTEST_TRANSACTION],
				 (uint64_t)(now - start) / 1000);
	} else if (!ev->local) {
		st->refused++;
		st->replies[code]++;
	} else {
		st->lost++;
		st->in_doubt += ev->in_doubt;
	}
	st->split += ev->more;
	pthread_mutex_unlock(&w->lock);
	/* a message split over transactions keeps its slot to the end */
	if (ev->more)
		return;
	slot->busy = false;
	if (w->in_flight > 0)
		w->in_flight--;
}

/* lt_ready - how many messages go out at once on this connection */
static void lt_ready(void *ctx, const struct smtp_caps *caps)
{
	struct lt_worker *w = ctx;
	struct loadtest *lt = w->lt;
	bool pipelining = w->pipelining && caps->pipelining;

	atomic_store(&lt->ever_ready, true);
	w->depth = 1;
	if (pipelining)
		w->depth = 2;
	w->chunking = pipelining && lt->p.conn.session.chunking &&
		      caps->chunking;
	if (w->chunking)
		w->depth = lt->window;
	if (w->depth > w->nslots)
		w->depth = w->nslots;
}

/* --- the connection threads --------------------------------------------- */

/* lt_fatal - give up the run, keeping the first reason */
static void lt_fatal(struct loadtest *lt, const char *why)
{
	pthread_mutex_lock(&lt->lock);
	if (lt->fatal[0] == '\0')
		snprintf(lt->fatal, sizeof(lt->fatal), "%s", why);
	pthread_mutex_unlock(&lt->lock);
	atomic_store(&lt->stop, true);
}

/* lt_record - a connection's opening steps and how it ended */
static void lt_record(struct lt_worker *w, const struct smtp_conn_result *res,
		      int rc)
{
	const long long us[] = {
		res->phases.connect_us, res->phases.tls_us,
		res->phases.greeting_us, res->phases.ehlo_us,
		res->phases.auth_us,
	};

	pthread_mutex_lock(&w->lock);
	w->stats.connections++;
	for (int i = 0; i <= LOADTEST_AUTH; i++)
		if (us[i] >= 0)
			histogram_record(&w->stats.phases[i], (uint64_t)us[i]);
	if (rc < 0)
		w->stats.failures[res->failure]++;
	pthread_mutex_unlock(&w->lock);
}

/* how many connections a run opens at once: --count may be fewer */
static unsigned lt_connections_wanted(const struct loadtest *lt)
{
	if (lt->p.count > 0 && lt->p.count < lt->p.connections)
		return (unsigned)lt->p.count;
	return lt->p.connections;
}

static void *lt_thread(void *arg)
{
	struct lt_worker *w = arg;
	struct loadtest *lt = w->lt;
	struct smtp_conn_source src = {
		.next = lt_next, .event = lt_event, .ready = lt_ready,
		.ctx = w, .max_in_flight = w->nslots,
		/* it sleeps for a slot only with nothing in flight */
		.next_returns_at_once = true,
	};
	struct retry_conn_policy policy = {
		.backoff_first_ms = LT_BACKOFF_FIRST_MS,
		.backoff_max_ms = LT_BACKOFF_MAX_MS,
	};
	int64_t backoff_ms = 0;

#ifdef __linux__
	/* sleeps until a slot wake on time, not 50 us late */
	prctl(PR_SET_TIMERSLACK, 1000UL);
#endif
	pthread_mutex_lock(&lt->lock);
	while (!lt->go)
		pthread_cond_wait(&lt->done, &lt->lock);
	pthread_mutex_unlock(&lt->lock);
	/* closed loop with a ramp: the connections start one by one */
	if (lt->p.rate <= 0 && lt->p.ramp_us > 0 && lt->p.connections > 1)
		lt_sleep_until(lt, lt->start_ns + (long long)(lt->p.ramp_us *
			       1000.0 * w->index / lt->p.connections));

	while (lt_connect_gate(lt, w)) {
		struct smtp_conn_params cp = lt->p.conn;
		struct smtp_conn_result res;
		struct retry_conn_end end;
		struct retry_conn_outcome next;
		unsigned failures;
		int rc;

		if (atomic_load(&lt->pipelining_off))
			cp.session.pipelining = false;
		w->pipelining = cp.session.pipelining;
		w->depth = 1;
		w->chunking = false;
		w->in_flight = 0;
		w->last_done_ns = 0;
		rc = smtp_conn_run(&cp, &src, &res);
		lt_record(w, &res, rc);
		end = (struct retry_conn_end){
			.closed = res.closed, .permanent = res.permanent,
			.out_of_step = res.out_of_step,
			.messages = res.messages, .delivered = res.delivered,
			.closing_code = res.closing_code,
		};
		/* Nothing was ever ready: every connection failing twice
		 * means nobody is there.  Once one was, failures are the
		 * server's answer under load, which the run is measuring. */
		failures = 0;
		if (retry_conn_failed(&end) && !atomic_load(&lt->ever_ready))
			failures = (unsigned)atomic_fetch_add(
				&lt->failed_attempts, 1) + 1;
		policy.give_up_after = LT_GIVE_UP_PER_CONNECTION *
				       lt_connections_wanted(lt);
		retry_conn_decide(&policy, &end, failures, &backoff_ms, &next);
		if (next.stop_pipelining)
			atomic_store(&lt->pipelining_off, true);
		/* the stop first: a waiting thread must not take the place */
		if (next.action == RETRY_CONN_STOP) {
			lt_fatal(lt, res.error);
			lt_stop_accepting(lt, w);
			break;
		}
		if (next.action == RETRY_CONN_GIVE_UP) {
			char why[600];

			snprintf(why, sizeof(why), "no connection could be "
				 "made ready: %s", res.error);
			lt_fatal(lt, why);
			lt_stop_accepting(lt, w);
			break;
		}
		/* Still counted while it backs off: a waiting thread taking
		 * its place at once would defeat the backoff. */
		if (next.action == RETRY_CONN_BACKOFF)
			lt_sleep_until(lt, clock_mono_ns() +
				       next.backoff_ms * 1000000LL);
		lt_stop_accepting(lt, w);
	}

	pthread_mutex_lock(&lt->lock);
	if (--lt->running == 0) {
		lt->finish_ns = clock_mono_ns();
		pthread_cond_broadcast(&lt->done);
	}
	pthread_mutex_unlock(&lt->lock);
	return NULL;
}

/* --- the public face ---------------------------------------------------- */

/* lt_check - the parameters make a run; 0 or -1 with *error_r */
static int lt_check(const struct loadtest_params *p, const char **error_r)
{
	char a[LT_ADDR_MAX];

	if (p->connections < 1 || p->connections > LOADTEST_MAX_CONNECTIONS) {
		errmsg_set(error_r, "connections: 1 to %d",
			   LOADTEST_MAX_CONNECTIONS);
		return -1;
	}
	if (p->count == 0 && p->duration_us == 0) {
		errmsg_set(error_r, "a count or a duration is needed");
		return -1;
	}
	if (p->rate < 0 || (p->rate > 0 && !isfinite(p->rate))) {
		errmsg_set(error_r, "rate: a number of messages per second");
		return -1;
	}
	if (p->recipients < 1 || p->recipients > LOADTEST_MAX_RECIPIENTS) {
		errmsg_set(error_r, "recipients: 1 to %d per message",
			   LOADTEST_MAX_RECIPIENTS);
		return -1;
	}
	if (p->from == NULL || p->to == NULL ||
	    strlen(p->from) > LOADTEST_MAX_PATTERN ||
	    strlen(p->to) > LOADTEST_MAX_PATTERN ||
	    loadtest_format(p->from, UINT64_MAX, a, sizeof(a)) < 0 ||
	    loadtest_format(p->to, UINT64_MAX, a, sizeof(a)) < 0) {
		errmsg_set(error_r, "address patterns: at most %d bytes "
			   "and 4 {n}", LOADTEST_MAX_PATTERN);
		return -1;
	}
	if (p->ncontents == 0) {
		errmsg_set(error_r, "no message to send");
		return -1;
	}
	for (size_t i = 0; i < p->ncontents; i++) {
		const struct loadtest_content *c = &p->contents[i];

		if (c->weight == 0 || c->len == 0 ||
		    (c->seq_at != SIZE_MAX &&
		     c->seq_at + LOADTEST_SEQ_DIGITS > c->len)) {
			errmsg_set(error_r, "message %zu: empty, weight 0 "
				   "or a sequence outside it", i + 1);
			return -1;
		}
	}
	return 0;
}

static void lt_worker_free(struct lt_worker *w)
{
	if (w == NULL)
		return;
	for (unsigned i = 0; i < w->nslots; i++) {
		free(w->slots[i].data);
		free(w->slots[i].rcpts);
	}
	free(w->slots);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static struct lt_worker *lt_worker_new(struct loadtest *lt, unsigned index)
{
	struct lt_worker *w = xcalloc(1, sizeof(*w));

	w->lt = lt;
	w->index = index;
	/* two for PIPELINING, the window for CHUNKING */
	w->nslots = lt->p.conn.session.chunking && lt->window > 2 ?
		    lt->window : 2;
	w->slots = xcalloc(w->nslots, sizeof(*w->slots));
	for (unsigned i = 0; i < w->nslots; i++) {
		struct lt_slot *s = &w->slots[i];

		s->rcpts = xcalloc(lt->p.recipients, sizeof(*s->rcpts));
		for (unsigned r = 0; r < lt->p.recipients; r++)
			s->rcpt_ptrs[r] = s->rcpts[r];
		s->m.rcpts = s->rcpt_ptrs;
		s->m.ctx = s;
		s->content = SIZE_MAX;
	}
	pthread_mutex_init(&w->lock, NULL);
	w->depth = 1;
	return w;
}

int loadtest_start(const struct loadtest_params *p, struct loadtest **lt_r,
		   const char **error_r)
{
	struct loadtest *lt;
	sigset_t all, old;
	int rc = 0;

	*lt_r = NULL;
	if (lt_check(p, error_r) < 0)
		return -1;
	lt = xcalloc(1, sizeof(*lt));
	lt->p = *p;
	for (size_t i = 0; i < p->ncontents; i++)
		lt->total_weight += p->contents[i].weight;
	lt->window = p->conn.session.chunking_window ?
		     p->conn.session.chunking_window : 8;
	if (lt->window > SMTP_SESSION_WINDOW)
		lt->window = SMTP_SESSION_WINDOW;
	atomic_init(&lt->next_seq, 0);
	atomic_init(&lt->stop, false);
	atomic_init(&lt->pipelining_off, false);
	atomic_init(&lt->ever_ready, false);
	atomic_init(&lt->failed_attempts, 0);
	pthread_mutex_init(&lt->lock, NULL);
	clock_cond_init(&lt->done);
	clock_cond_init(&lt->gate);
	lt->workers = xcalloc(p->connections, sizeof(*lt->workers));
	lt->nworkers = p->connections;
	for (unsigned i = 0; i < p->connections; i++)
		lt->workers[i] = lt_worker_new(lt, i);
	/* Signals are for the caller's thread: the workers block them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	lt->running = 0;
	for (unsigned i = 0; i < p->connections; i++) {
		rc = pthread_create(&lt->workers[i]->thread, NULL, lt_thread,
				    lt->workers[i]);
		if (rc != 0)
			break;
		lt->workers[i]->started = true;
		lt->running++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errmsg_set(error_r, "cannot start connection thread %u: %s",
			   lt->running + 1, strerror(rc));
		/* the ones started go, see the stop and end at once */
		atomic_store(&lt->stop, true);
	}
	/* every thread waits for the start time, so the schedule and the
	 * duration begin once they all exist */
	pthread_mutex_lock(&lt->lock);
	lt->start_ns = clock_mono_ns();
	if (p->duration_us > 0)
		lt->end_ns = lt->start_ns + (long long)p->duration_us * 1000;
	lt->go = true;
	pthread_cond_broadcast(&lt->done);
	pthread_mutex_unlock(&lt->lock);
	if (rc != 0) {
		loadtest_free(&lt);
		return -1;
	}
	*lt_r = lt;
	return 0;
}

void loadtest_stop(struct loadtest *lt)
{
	atomic_store(&lt->stop, true);
}

bool loadtest_wait(struct loadtest *lt, int timeout_ms)
{
	struct timespec ts = clock_deadline_ms(timeout_ms);
	bool done;

	pthread_mutex_lock(&lt->lock);
	while (lt->running > 0) {
		int rc = pthread_cond_timedwait(&lt->done, &lt->lock, &ts);

		if (rc == ETIMEDOUT)
			break;
	}
	done = lt->running == 0;
	pthread_mutex_unlock(&lt->lock);
	return done;
}

/* lt_add - into += from */
static void lt_add(struct loadtest_stats *into,
		   const struct loadtest_stats *from, bool all_phases)
{
	into->attempted += from->attempted;
	into->sent += from->sent;
	into->refused += from->refused;
	into->lost += from->lost;
	into->in_doubt += from->in_doubt;
	into->split += from->split;
	into->bytes_sent += from->bytes_sent;
	into->connections += from->connections;
	for (int i = 0; i < LOADTEST_CODES; i++) {
		into->replies[i] += from->replies[i];
		into->rcpt_replies[i] += from->rcpt_replies[i];
	}
	for (int i = 0; i < SMTP_CONN_FAILURES; i++)
		into->failures[i] += from->failures[i];
	for (int i = 0; i < LOADTEST_PHASES; i++)
		if (all_phases || i == LOADTEST_TRANSACTION)
			histogram_merge(&into->phases[i], &from->phases[i]);
}

void loadtest_report(struct loadtest *lt, struct loadtest_report *r,
		     bool all_phases)
{
	long long end;

	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < lt->nworkers; i++) {
		struct lt_worker *w = lt->workers[i];

		pthread_mutex_lock(&w->lock);
		lt_add(&r->s, &w->stats, all_phases);
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_lock(&lt->lock);
	r->finished = lt->running == 0;
	end = r->finished ? lt->finish_ns : clock_mono_ns();
	snprintf(r->fatal, sizeof(r->fatal), "%s", lt->fatal);
	pthread_mutex_unlock(&lt->lock);
	r->elapsed_s = (double)(end - lt->start_ns) / 1e9;
	r->stopped = atomic_load(&lt->stop) && r->fatal[0] == '\0';
}

void loadtest_free(struct loadtest **ltp)
{
	struct loadtest *lt = *ltp;

	if (lt == NULL)
		return;
	atomic_store(&lt->stop, true);
	for (unsigned i = 0; i < lt->nworkers; i++)
		if (lt->workers[i]->started)
			pthread_join(lt->workers[i]->thread, NULL);
	for (unsigned i = 0; i < lt->nworkers; i++)
		lt_worker_free(lt->workers[i]);
	free(lt->workers);
	pthread_cond_destroy(&lt->done);
	pthread_cond_destroy(&lt->gate);
	pthread_mutex_destroy(&lt->lock);
	free(lt);
	*ltp = NULL;
}
