/*
 * send - a campaign run (see send.h).
 *
 * One mutex (run->lock) guards the three lists jobs move through - free,
 * ready, done - and the counters beside them.  A worker takes it once per
 * several jobs: it pops a handful into a queue of its own and hands its
 * results back in batches (SEND_FLUSH_RESULTS, or whenever it would wait);
 * rendering and all network I/O happen outside the lock.
 */
#include "send.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "xalloc.h"
#include "vars_data.h"

#define SEND_CONNECT_FAILURES_MAX 3	/* per connection slot, in a row */
#define SEND_REQUEUES_MAX 3		/* per job and run, lost connections */
#define SEND_FLUSH_RESULTS 8		/* results a worker holds at most */
/* ... and when the connection had delivered first: a per-connection cap
 * the run is still learning; the cap, once learned, ends the 421s */
#define SEND_REQUEUES_CAPPED 20

/* The names of one import's variables, read once per run. */
struct send_names {
	int64_t import_id;
	struct buf packed;
	char *address_column;
	struct send_names *next;
};

struct send_job {
	struct send_job *next;		/* in free, ready or done */
	int64_t id;
	size_t campaign;		/* index into params->campaigns */
	int attempts;
	int64_t first_attempt_at;
	const struct send_names *names;
	struct buf addr;		/* NUL-terminated */
	struct buf vars;
	unsigned addr_flags;
	bool in_doubt;			/* sent whole, no reply came */
	int requeues;			/* lost with its connection, retried
					 * at once in this run */
	/* the result */
	bool tried;			/* false: hand back untried */
	bool sent;
	bool local;
	int code;
	char enhanced[16];
	struct buf reply;
};

struct send_worker;

/* A message the worker's connection holds until its DONE. */
struct send_slot {
	bool busy;
	struct send_job *job;
	const char *rcpt[1];
	struct smtp_message m;
	struct buf msg;
};

struct send_run {
	const struct send_params *p;
	pthread_mutex_t lock;
	pthread_cond_t work;		/* ready got a job, or stopping */
	pthread_cond_t results;		/* done got enough, or a worker left */
	struct send_job *free, *ready, *ready_tail, *done;
	size_t nready, ndone, in_flight;
	size_t low_water;		/* claim more when nready falls to it */
	size_t workers_running;
	bool stopping;			/* no more claims, workers drain */
	bool fatal;
	char fatal_msg[1024];
	atomic_bool pipelining_off;
	atomic_bool halt;		/* stopping, for waits outside the lock */
	/* the relay closes connections after this many messages: keep
	 * under it (0: no cap learned); and the last cap seen, to confirm */
	atomic_uint learned_cap, last_cap_seen;
	atomic_int connect_failures;	/* in a row, over the pool */
	/* summed worker times */
	atomic_llong rate_wait_ms, render_ms, connect_ms, wait_ms;
	atomic_ullong connections;
};

struct send_worker {
	struct send_run *run;
	pthread_t thread;
	struct send_job *local;		/* popped, not yet taken */
	unsigned nlocal;
	struct send_job *results;	/* finished, not yet handed back */
	unsigned nresults;
	unsigned sent_on_conn;		/* this connection's deliveries */
	unsigned nslots;
	struct send_slot *slots;
	struct message_bufs bufs;
	struct vars_data vd;
};

static bool send_stop_asked(const struct send_run *run)
{
	return run->p->stop != NULL && atomic_load(run->p->stop);
}

/* send_fatal - stop the run for a reason no retry can fix */
static void send_fatal(struct send_run *run, const char *msg)
{
	pthread_mutex_lock(&run->lock);
	if (!run->fatal) {
		run->fatal = true;
		snprintf(run->fatal_msg, sizeof(run->fatal_msg), "%s", msg);
	}
	run->stopping = true;
	atomic_store(&run->halt, true);
	pthread_cond_broadcast(&run->work);
	pthread_cond_broadcast(&run->results);
	pthread_mutex_unlock(&run->lock);
}

/* --- the worker side ---------------------------------------------------- */

/* send_flush - the worker's results go to the main thread, one lock */
static void send_flush(struct send_worker *w)
{
	struct send_run *run = w->run;
	struct send_job *last = w->results;

	if (w->nresults == 0)
		return;
	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&run->lock);
	last->next = run->done;
	run->done = w->results;
	run->ndone += w->nresults;
	if (run->ndone >= (run->p->commit_batch ? run->p->commit_batch :
			   1000))
		pthread_cond_signal(&run->results);
	pthread_mutex_unlock(&run->lock);
	w->results = NULL;
	w->nresults = 0;
}

/* send_finish - a job's result, handed back in batches (send_flush) */
static void send_finish(struct send_worker *w, struct send_job *job)
{
	job->next = w->results;
	w->results = job;
	if (++w->nresults >= SEND_FLUSH_RESULTS)
		send_flush(w);
}

/* send_give_back - the jobs popped but not taken go back untried */
static void send_give_back(struct send_worker *w)
{
	while (w->local != NULL) {
		struct send_job *job = w->local;

		w->local = job->next;
		job->tried = false;
		send_finish(w, job);
	}
	w->nlocal = 0;
	send_flush(w);
}

/*
 * send_pop - the next ready job; blocks up to wait_ms when there is none
 * (0: not at all).  NULL when none came or the run is stopping.
 */
static struct send_job *send_pop(struct send_worker *w, int64_t wait_ms,
				  unsigned max)
{
	struct send_run *run = w->run;
	struct send_job *job = NULL, **tail = &w->local;
	struct timespec until = clock_deadline_ms(wait_ms);

	if (w->local != NULL) {
		job = w->local;
		w->local = job->next;
		w->nlocal--;
		return job;
	}
	pthread_mutex_lock(&run->lock);
	while (run->ready == NULL && !run->stopping && wait_ms > 0) {
		if (pthread_cond_timedwait(&run->work, &run->lock, &until) ==
		    ETIMEDOUT)
			break;
	}
	/* a handful at once: one lock for several messages */
	while (run->ready != NULL && !run->stopping && !send_stop_asked(run) &&
	       w->nlocal < max) {
		struct send_job *j = run->ready;

		run->ready = j->next;
		if (run->ready == NULL)
			run->ready_tail = NULL;
		run->nready--;
		/* running low: the main thread claims more now, not at its
		 * next commit interval */
		if (run->nready == run->low_water)
			pthread_cond_signal(&run->results);
		j->next = NULL;
		*tail = j;
		tail = &j->next;
		w->nlocal++;
	}
	pthread_mutex_unlock(&run->lock);
	if (w->local != NULL) {
		job = w->local;
		w->local = job->next;
		w->nlocal--;
	}
	return job;
}

/* send_render - the job's message into slot; false if it cannot be */
static bool send_render(struct send_worker *w, struct send_slot *slot,
			struct send_job *job)
{
	const struct send_params *p = w->run->p;
	const struct send_campaign *c = &p->campaigns[job->campaign];
	struct message_job mj = {
		.to = job->addr.data, .to_len = job->addr.len,
		.campaign_id = c->id, .job_id = job->id,
		.campaign_created = c->created, .date = time(NULL),
	};
	const char *error;

	buf_reset(&slot->msg);
	if (vars_data_init(&w->vd, job->names->packed.data,
			   job->names->packed.len, job->names->address_column,
			   job->addr.data, job->addr.len, job->vars.data,
			   job->vars.len) < 0) {
		error = "the recipient's stored variables cannot be read";
		goto refused;
	}
	if (message_render(c->tmpl, &w->vd.data, &mj, &w->bufs, &slot->msg,
			   &error) < 0)
		goto refused;
	slot->job = job;
	slot->rcpt[0] = job->addr.data;
	slot->m = (struct smtp_message){
		.from = c->sender, .rcpts = slot->rcpt, .nrcpts = 1,
		.data = slot->msg.data, .len = slot->msg.len, .ctx = slot,
		.smtputf8 = (job->addr_flags & STORE_ADDR_SMTPUTF8) != 0,
	};
	return true;

refused:
	/* the recipient's data cannot make a message: for good */
	job->tried = true;
	job->sent = false;
	job->local = true;
	job->code = 554;
	snprintf(job->enhanced, sizeof(job->enhanced), "5.6.0");
	buf_reset(&job->reply);
	buf_printf(&job->reply, "cannot render the message: %s", error);
	return false;
}

static const struct smtp_message *send_next(void *ctx, bool *later)
{
	struct send_worker *w = ctx;
	struct send_run *run = w->run;
	struct send_slot *slot = NULL;
	unsigned busy = 0;

	for (unsigned i = 0; i < w->nslots; i++) {
		if (w->slots[i].busy)
			busy++;
		else if (slot == NULL)
			slot = &w->slots[i];
	}
	if (slot == NULL) {
		*later = true;
		return NULL;
	}
	/*
	 * With messages in flight, their replies must not wait for the rate
	 * limiter: take a slot only if one is free now, else come back after
	 * the next reply (smtp_conn asks again), blocking only when idle.
	 */
	if (busy > 0 && run->p->rate != NULL && !ratelimit_try(run->p->rate)) {
		*later = true;
		return NULL;
	}
	for (;;) {
		struct send_job *job;
		int64_t t0, waited;

		/*
		 * Messages in flight: do not block, their replies wait.
		 * Idle: wait a while for work, then let the connection go.
		 */
		if (atomic_load(&run->halt) || send_stop_asked(run)) {
			/* stopping: what this worker popped goes back */
			send_give_back(w);
			*later = false;
			return NULL;
		}
		/* about to wait (for work or for replies): results first */
		if (busy == 0 && w->local == NULL)
			send_flush(w);
		job = send_pop(w, busy > 0 ? 0 : 5000, 2 * w->nslots);
		if (job == NULL) {
			send_flush(w);
			*later = busy > 0 && !atomic_load(&run->halt);
			return NULL;
		}
		if (run->p->rate != NULL && busy == 0) {
			waited = ratelimit_acquire(run->p->rate, &run->halt);
			if (waited < 0) {
				/* stopping: the job goes back untried */
				job->tried = false;
				send_finish(w, job);
				send_give_back(w);
				*later = false;
				return NULL;
			}
			atomic_fetch_add(&run->rate_wait_ms, waited);
		}
		t0 = clock_mono_ms();
		if (send_render(w, slot, job)) {
			atomic_fetch_add(&run->render_ms, clock_mono_ms() - t0);
			slot->busy = true;
			return &slot->m;
		}
		send_finish(w, job);
	}
}

static void send_event(void *ctx, const struct smtp_event *ev)
{
	struct send_worker *w = ctx;
	struct send_slot *slot = ev->ctx;
	struct send_job *job = slot->job;

	if (ev->kind == SMTP_EV_RCPT) {
		/* one recipient per message: its DONE says the same or more */
		return;
	}
	slot->busy = false;
	slot->job = NULL;
	if (ev->sent)
		w->sent_on_conn++;
	/*
	 * Lost with its connection (a 421, a drop): nothing was wrong with
	 * the recipient; another connection takes it now, a few times at
	 * most, rather than deferring it for minutes.  Not when the relay
	 * asks us to slow down - unless this connection delivered first:
	 * then the 421 is a per-connection cap ("too many messages on this
	 * connection"), which the run learns (learned_cap).
	 */
	if (!ev->sent && !ev->in_doubt &&
	    (ev->code == 421 || (ev->local && ev->code == 451)) &&
	    (w->sent_on_conn > 0 ||
	     !retry_throttled(ev->code, ev->enhanced, ev->text)) &&
	    job->requeues < (w->sent_on_conn > 0 ? SEND_REQUEUES_CAPPED :
			     SEND_REQUEUES_MAX)) {
		struct send_run *run = w->run;

		job->requeues++;
		pthread_mutex_lock(&run->lock);
		if (!run->stopping) {
			job->next = run->ready;
			run->ready = job;
			if (run->ready_tail == NULL)
				run->ready_tail = job;
			run->nready++;
			pthread_cond_signal(&run->work);
			pthread_mutex_unlock(&run->lock);
			return;
		}
		pthread_mutex_unlock(&run->lock);
	}
	job->tried = true;
	job->sent = ev->sent;
	job->in_doubt = ev->in_doubt;
	job->local = ev->local;
	job->code = ev->code;
	snprintf(job->enhanced, sizeof(job->enhanced), "%s",
		 ev->enhanced ? ev->enhanced : "");
	buf_reset(&job->reply);
	buf_append_str(&job->reply, ev->text ? ev->text : "");
	if (ev->in_doubt)
		buf_append_str(&job->reply, " (in doubt: the whole message "
			       "went but no reply came; the server may have "
			       "taken it)");
	send_finish(w, job);
}

/* send_wait_for_work - block until a job is ready; false: run over */
static bool send_wait_for_work(struct send_worker *w)
{
	struct send_run *run = w->run;
	bool go;

	if (w->local != NULL && !atomic_load(&run->halt))
		return true;
	pthread_mutex_lock(&run->lock);
	while (run->ready == NULL && !run->stopping)
		pthread_cond_wait(&run->work, &run->lock);
	go = !run->stopping;
	pthread_mutex_unlock(&run->lock);
	return go;
}

/* send_backoff - sleep ms, or less if the run stops */
static void send_backoff(struct send_run *run, int64_t ms)
{
	while (ms > 0 && !send_stop_asked(run)) {
		clock_sleep_ms(ms < 100 ? ms : 100);
		ms -= 100;
		pthread_mutex_lock(&run->lock);
		if (run->stopping) {
			pthread_mutex_unlock(&run->lock);
			return;
		}
		pthread_mutex_unlock(&run->lock);
	}
}

static void *send_worker_main(void *arg)
{
	struct send_worker *w = arg;
	struct send_run *run = w->run;
	struct smtp_conn_source src = {
		.next = send_next, .event = send_event, .ctx = w,
		.max_in_flight = w->nslots,
	};
	int64_t backoff = 1000;

	while (send_wait_for_work(w)) {
		struct smtp_conn_params cp = run->p->conn;
		struct smtp_conn_result res;
		int rc;

		unsigned cap = atomic_load(&run->learned_cap);

		if (atomic_load(&run->pipelining_off))
			cp.session.pipelining = false;
		if (cap > 0 && (cp.session.max_messages == 0 ||
				cap < cp.session.max_messages))
			cp.session.max_messages = cap;
		atomic_fetch_add(&run->connections, 1);
		w->sent_on_conn = 0;
		rc = smtp_conn_run(&cp, &src, &res);
		send_flush(w);	/* every DONE of the connection is in */
		/*
		 * Closed with 421 after N messages, twice with the same N:
		 * the relay caps messages per connection.  Stay under it.
		 */
		if (rc < 0 && strstr(res.error, "closed the session: 421") &&
		    w->sent_on_conn > 0 &&
		    atomic_exchange(&run->last_cap_seen, w->sent_on_conn) ==
		    w->sent_on_conn && atomic_load(&run->learned_cap) == 0)
			atomic_store(&run->learned_cap, w->sent_on_conn);
		atomic_fetch_add(&run->connect_ms, res.connect_ms);
		atomic_fetch_add(&run->wait_ms, res.wait_ms);
		if (res.out_of_step && !atomic_exchange(&run->pipelining_off,
							true))
			fprintf(stderr, "volley: %s; not pipelining to this "
				"server for the rest of the run\n", res.error);
		if (rc == 0 || res.messages > 0) {
			atomic_store(&run->connect_failures, 0);
			backoff = 1000;
		}
		if (rc == 0)
			continue;
		if (res.permanent) {
			send_fatal(run, res.error);
			break;
		}
		if (res.messages == 0 &&
		    atomic_fetch_add(&run->connect_failures, 1) + 1 >=
		    (int)(SEND_CONNECT_FAILURES_MAX * run->p->connections)) {
			char msg[600];

			snprintf(msg, sizeof(msg), "giving up on %s port %s: "
				 "%s", cp.transport.host, cp.transport.port,
				 res.error);
			send_fatal(run, msg);
			break;
		}
		/* it worked for a while (a 421 after N): go again at once */
		if (res.messages > 0)
			continue;
		send_backoff(run, backoff);
		if (backoff < 30000)
			backoff *= 2;
	}
	send_give_back(w);
	pthread_mutex_lock(&run->lock);
	run->workers_running--;
	pthread_cond_broadcast(&run->results);
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

/* --- the main thread: claims and results -------------------------------- */

/* send_names_get - the names of an import, read once */
static const struct send_names *send_names_get(struct send_names **list,
					       struct store *st,
					       int64_t import_id,
					       const char **error_r)
{
	struct send_names *n;
	const void *packed;
	const char *column;
	size_t len;

	for (n = *list; n != NULL; n = n->next) {
		if (n->import_id == import_id)
			return n;
	}
	if (store_import_var_names(st, import_id, &packed, &len, &column,
				   error_r) < 0)
		return NULL;
	n = xcalloc(1, sizeof(*n));
	n->import_id = import_id;
	buf_append(&n->packed, packed, len);
	n->address_column = xstrdup(column ? column : "email");
	n->next = *list;
	*list = n;
	return n;
}

/* send_queue_id - "queued as ID" in a 250 reply, else NULL */
static const char *send_queue_id(const char *text, char *dst, size_t size)
{
	const char *p = strstr(text, "queued as ");
	size_t n = 0;

	if (p == NULL)
		return NULL;
	p += strlen("queued as ");
	while (p[n] != '\0' && p[n] != ' ' && p[n] != ')' && n + 1 < size)
		n++;
	if (n == 0)
		return NULL;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return dst;
}

/* send_csv_field - a CSV field (RFC 4180): quoted when it must be */
static void send_csv_field(FILE *f, const char *v)
{
	if (v == NULL || strpbrk(v, ",\"\r\n") == NULL) {
		fputs(v ? v : "", f);
		return;
	}
	fputc('"', f);
	for (; *v != '\0'; v++) {
		if (*v == '"')
			fputc('"', f);
		fputc(*v, f);
	}
	fputc('"', f);
}

/* send_account - one accounting line per attempt just committed */
static void send_account(const struct send_params *p,
			 const struct send_job *done,
			 const struct store_result *results, size_t n)
{
	const struct send_job *job = done;
	char when[40];
	struct tm tm;

	for (size_t i = 0; i < n && job != NULL; i++, job = job->next) {
		const struct store_result *r = &results[i];
		time_t t = (time_t)(r->at / 1000);
		char num[32];

		if (r->state == JOB_QUEUED)	/* handed back untried */
			continue;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(p->accounting, "%s.%03dZ,", when, (int)(r->at % 1000));
		send_csv_field(p->accounting,
			       p->campaigns[job->campaign].name);
		fputc(',', p->accounting);
		send_csv_field(p->accounting, job->addr.data);
		fprintf(p->accounting, ",%s,%d,", job_state_name(r->state),
			job->attempts);
		snprintf(num, sizeof(num), "%d", r->code);
		fputs(r->code ? num : "", p->accounting);
		fputc(',', p->accounting);
		send_csv_field(p->accounting, r->enhanced);
		fputc(',', p->accounting);
		send_csv_field(p->accounting, r->reply);
		fputc(',', p->accounting);
		send_csv_field(p->accounting, r->queue_id);
		fputs("\r\n", p->accounting);
	}
	fflush(p->accounting);
}

/* send_tally - count a deferred or failed reply among the top reasons */
static void send_tally(struct send_stats *st, const struct send_job *job)
{
	char key[160];
	size_t i, min = 0;

	snprintf(key, sizeof(key), "%d %s%s%.120s", job->code, job->enhanced,
		 job->enhanced[0] ? " " : "", buf_cstr(&job->reply));
	for (i = 0; i < SEND_TOP_REASONS; i++) {
		if (st->top[i].count > 0 && strcmp(st->top[i].reply, key) == 0) {
			st->top[i].count++;
			return;
		}
		if (st->top[i].count < st->top[min].count)
			min = i;
	}
	/* a new reason replaces the rarest, inheriting its count (the
	 * space-saving count: a reason that comes to dominate gets in) */
	snprintf(st->top[min].reply, sizeof(st->top[min].reply), "%s", key);
	st->top[min].count++;
}

/*
 * send_commit - record the results in done, one transaction; the jobs
 * go back to the free list.  Returns -1 (error set) if the store fails.
 */
static int send_commit(struct send_run *run, struct store *st,
		       const char *owner, struct send_job *done, size_t n,
		       struct store_result *results, char (*qids)[64],
		       struct send_stats *stats, uint64_t *rng,
		       const char **error_r)
{
	const struct send_params *p = run->p;
	int64_t now = clock_wall_ms(), t0 = clock_mono_ms();
	struct send_job *job;
	size_t i = 0, stale;
	int rc;

	for (job = done; job != NULL; job = job->next, i++) {
		struct store_result *r = &results[i];
		struct retry_outcome out;

		memset(r, 0, sizeof(*r));
		r->job_id = job->id;
		r->at = now;
		if (!job->tried) {
			r->state = JOB_QUEUED;
			continue;
		}
		retry_decide(&p->retry, job->code, job->enhanced,
			     buf_cstr(&job->reply), job->sent, job->attempts,
			     job->first_attempt_at ? job->first_attempt_at :
			     now, now, rng, &out);
		if (out.pool_backoff && p->rate != NULL)
			ratelimit_pause(p->rate, ratelimit_now(p->rate) +
					out.backoff_ms);
		if (out.why != NULL) {
			buf_printf(&job->reply, " (%s)", out.why);
		}
		r->code = job->code;
		r->enhanced = job->enhanced[0] ? job->enhanced : NULL;
		r->reply = buf_cstr(&job->reply);
		switch (out.verdict) {
		case RETRY_SENT:
			r->state = JOB_SENT;
			r->queue_id = send_queue_id(r->reply, qids[i], 64);
			stats->sent++;
			break;
		case RETRY_DEFER:
			r->state = JOB_DEFERRED;
			r->next_attempt_at = out.next_attempt_ms;
			/* held until the user says: `volley release` */
			if (job->in_doubt && p->hold_in_doubt)
				r->next_attempt_at = STORE_HELD;
			stats->deferred++;
			send_tally(stats, job);
			break;
		case RETRY_FAIL:
			r->state = JOB_FAILED;
			stats->failed++;
			send_tally(stats, job);
			break;
		}
	}
	rc = store_record(st, owner, results, n, &stale, error_r);
	stats->commit_ms += clock_mono_ms() - t0;
	if (rc == 0 && p->accounting != NULL)
		send_account(p, done, results, n);
	/* the job objects go back to the pool */
	pthread_mutex_lock(&run->lock);
	while (done != NULL) {
		job = done->next;
		done->next = run->free;
		run->free = done;
		done = job;
	}
	run->in_flight -= n;
	pthread_mutex_unlock(&run->lock);
	return rc;
}

/*
 * send_claim - claim due jobs into the ready list, as many as free job
 * objects allow, campaigns in turn.  Returns how many, or -1.
 */
static long send_claim(struct send_run *run, struct store *st,
		       const char *owner, struct store_batch *batch,
		       struct send_names **names, size_t *next_campaign,
		       const char **error_r)
{
	const struct send_params *p = run->p;
	size_t want = p->claim_batch ? p->claim_batch : 500, nfree = 0;
	long total = 0;
	struct send_job *j;

	pthread_mutex_lock(&run->lock);
	for (j = run->free; j != NULL && nfree < want; j = j->next)
		nfree++;
	pthread_mutex_unlock(&run->lock);
	if (nfree < want / 2 + 1)
		return 0;

	for (size_t k = 0; k < p->ncampaigns && nfree > 0; k++) {
		size_t ci = (*next_campaign + k) % p->ncampaigns;

		if (store_claim(st, p->campaigns[ci].id, owner, clock_wall_ms(),
				p->lease_ms ? p->lease_ms : 600000, nfree,
				batch, error_r) < 0)
			return -1;
		for (size_t i = 0; i < batch->count; i++) {
			const struct store_job *sj = &batch->jobs[i];
			const struct send_names *nm;

			nm = send_names_get(names, st, sj->import_id, error_r);
			if (nm == NULL)
				return -1;
			pthread_mutex_lock(&run->lock);
			j = run->free;
			run->free = j->next;
			pthread_mutex_unlock(&run->lock);
			j->next = NULL;
			j->id = sj->id;
			j->campaign = ci;
			j->attempts = sj->attempts;
			j->first_attempt_at = sj->first_attempt_at;
			j->names = nm;
			buf_reset(&j->addr);
			buf_append(&j->addr, sj->address, sj->address_len);
			buf_reset(&j->vars);
			if (sj->vars_len > 0)
				buf_append(&j->vars, sj->vars, sj->vars_len);
			j->addr_flags = sj->addr_flags;
			j->requeues = 0;
			j->in_doubt = false;
			j->tried = false;
			j->sent = false;
			j->local = false;
			j->code = 0;
			j->enhanced[0] = '\0';
			buf_reset(&j->reply);
			pthread_mutex_lock(&run->lock);
			if (run->ready_tail != NULL)
				run->ready_tail->next = j;
			else
				run->ready = j;
			run->ready_tail = j;
			run->nready++;
			run->in_flight++;
			pthread_cond_signal(&run->work);
			pthread_mutex_unlock(&run->lock);
		}
		nfree -= batch->count;
		total += (long)batch->count;
	}
	*next_campaign = (*next_campaign + 1) % p->ncampaigns;
	return total;
}

/* send_remaining - due or queued jobs not yet claimed, for progress */
static int64_t send_remaining(struct store *st, const struct send_params *p)
{
	int64_t n = 0;

	for (size_t i = 0; i < p->ncampaigns; i++) {
		struct store_counts c;
		const char *error;

		if (store_counts(st, p->campaigns[i].id, &c, &error) == 0)
			n += c.by_state[JOB_QUEUED] + c.by_state[JOB_DEFERRED];
	}
	return n;
}

static bool send_owner_alive(void *ctx, const char *owner)
{
	return store_lease_owner_alive(owner, ctx);
}

int send_run(const struct send_params *p, struct send_stats *stats,
	     char *err, size_t errsize)
{
	/* on the heap: after a stop deadline, workers may outlive us */
	struct send_run *runp = xcalloc(1, sizeof(*runp));
	struct send_worker *workers;
	struct store *st = NULL;
	struct store_batch batch = { 0 };
	struct send_names *names = NULL;
	struct store_result *results = NULL;
	char (*qids)[64] = NULL;
	char owner[300];
	const char *error = NULL;
	size_t npool, next_campaign = 0, window;
	int64_t started = clock_mono_ms(), last_progress = 0, reclaimed = 0;
	int64_t stop_deadline = 0;
	uint64_t rng = (uint64_t)clock_wall_ms() | 1;
	bool detached = false;
	bool claimable = true;	/* the last claim found jobs */
	unsigned nstarted = 0;
	int ret = -1;

	memset(stats, 0, sizeof(*stats));
	err[0] = '\0';
	runp->p = p;
	runp->low_water = (p->claim_batch ? p->claim_batch : 500) / 2;
	pthread_mutex_init(&runp->lock, NULL);
	clock_cond_init(&runp->work);
	clock_cond_init(&runp->results);

	if (store_open(p->store_path, &p->store, &st, &error) < 0) {
		snprintf(err, errsize, "%s", error);
		goto out;
	}
	store_lease_owner_self(owner, sizeof(owner));
	if (store_reclaim(st, clock_wall_ms(), p->hold_in_doubt,
			  send_owner_alive, owner,
			  &reclaimed, &error) < 0) {
		snprintf(err, errsize, "%s", error);
		goto out;
	}
	stats->reclaimed = (uint64_t)reclaimed;

	/* the job pool: the queue plus what every connection may hold */
	window = p->conn.session.chunking ?
		 (p->conn.session.chunking_window ?
		  p->conn.session.chunking_window : 8) : 2;
	npool = 2 * (p->claim_batch ? p->claim_batch : 500) +
		p->connections * (window + 1);
	for (size_t i = 0; i < npool; i++) {
		struct send_job *j = xcalloc(1, sizeof(*j));

		j->next = runp->free;
		runp->free = j;
	}
	results = xcalloc(npool, sizeof(*results));
	qids = xcalloc(npool, sizeof(*qids));

	workers = xcalloc(p->connections, sizeof(*workers));
	runp->workers_running = p->connections;
	for (unsigned i = 0; i < p->connections; i++) {
		workers[i].run = runp;
		workers[i].nslots = (unsigned)window + 1;
		workers[i].slots = xcalloc(workers[i].nslots,
					   sizeof(*workers[i].slots));
		if (pthread_create(&workers[i].thread, NULL, send_worker_main,
				   &workers[i]) != 0) {
			pthread_mutex_lock(&runp->lock);
			runp->workers_running -= p->connections - i;
			pthread_mutex_unlock(&runp->lock);
			send_fatal(runp, "cannot start the worker threads");
			break;
		}
		nstarted = i + 1;
	}

	for (;;) {
		struct send_job *done;
		size_t ndone, nready, in_flight, running;
		bool stopping, fatal;
		struct timespec until = clock_deadline_ms(
			p->commit_interval_ms ? p->commit_interval_ms : 100);

		pthread_mutex_lock(&runp->lock);
		if (runp->ndone < (p->commit_batch ? p->commit_batch : 1000) &&
		    runp->workers_running > 0 &&
		    (runp->nready > runp->low_water || runp->stopping ||
		     !claimable))
			pthread_cond_timedwait(&runp->results, &runp->lock, &until);
		if (send_stop_asked(runp) && !runp->stopping) {
			runp->stopping = true;
			atomic_store(&runp->halt, true);
			pthread_cond_broadcast(&runp->work);
		}
		done = runp->done;
		ndone = runp->ndone;
		runp->done = NULL;
		runp->ndone = 0;
		stopping = runp->stopping;
		fatal = runp->fatal;
		running = runp->workers_running;
		pthread_mutex_unlock(&runp->lock);

		if (ndone > 0 &&
		    send_commit(runp, st, owner, done, ndone, results, qids,
				stats, &rng, &error) < 0) {
			snprintf(err, errsize, "recording results: %s", error);
			send_fatal(runp, err);
		}

		pthread_mutex_lock(&runp->lock);
		nready = runp->nready;
		in_flight = runp->in_flight;
		pthread_mutex_unlock(&runp->lock);

		if (stopping || fatal) {
			if (stop_deadline == 0)
				stop_deadline = clock_mono_ms() +
					(p->stop_timeout_ms ?
					 p->stop_timeout_ms : 30000);
			/* untried jobs in the queue go back at once */
			pthread_mutex_lock(&runp->lock);
			while (runp->ready != NULL) {
				struct send_job *j = runp->ready;

				runp->ready = j->next;
				j->tried = false;
				j->next = runp->done;
				runp->done = j;
				runp->ndone++;
				runp->nready--;
			}
			runp->ready_tail = NULL;
			pthread_mutex_unlock(&runp->lock);
			if (running == 0 && in_flight == 0)
				break;
			if (clock_mono_ms() > stop_deadline) {
				/* leases left: the next run reclaims them */
				char why[1200];

				snprintf(why, sizeof(why), "%s%sstopped after "
					 "%lld s with %zu messages still in "
					 "flight; their leases will expire",
					 err, err[0] ? "; " : "",
					 (long long)((p->stop_timeout_ms ?
						      p->stop_timeout_ms :
						      30000) / 1000),
					 in_flight);
				snprintf(err, errsize, "%s", why);
				goto out_detached;
			}
		} else if (nready < (p->claim_batch ? p->claim_batch : 500)) {
			long got = send_claim(runp, st, owner, &batch, &names,
					      &next_campaign, &error);

			/* nothing due: wait the interval before asking again */
			claimable = got > 0;

			if (got < 0) {
				snprintf(err, errsize, "claiming jobs: %s",
					 error);
				send_fatal(runp, err);
			} else if (got == 0 && nready == 0 && in_flight == 0) {
				if (!p->follow) {
					pthread_mutex_lock(&runp->lock);
					runp->stopping = true;
					atomic_store(&runp->halt, true);
					pthread_cond_broadcast(&runp->work);
					pthread_mutex_unlock(&runp->lock);
				}
			}
		}

		if (p->progress != NULL &&
		    clock_mono_ms() - last_progress >= 1000) {
			last_progress = clock_mono_ms();
			stats->in_flight = in_flight;
			stats->remaining = send_remaining(st, p);
			stats->elapsed_ms = last_progress - started;
			stats->connections = atomic_load(&runp->connections);
			p->progress(p->progress_ctx, stats, false);
		}
	}
	for (unsigned i = 0; i < nstarted; i++)
		pthread_join(workers[i].thread, NULL);
	/* a last commit: what the workers finished while stopping */
	if (runp->ndone > 0 &&
	    send_commit(runp, st, owner, runp->done, runp->ndone, results, qids,
			stats, &rng, &error) < 0)
		snprintf(err, errsize, "recording results: %s", error);
	runp->done = NULL;
	runp->ndone = 0;
	/* nothing is in flight now: any lease still held (a claim cut short
	 * by an error) goes back, untried */
	if (store_release(st, owner, NULL, &error) < 0 && err[0] == '\0')
		snprintf(err, errsize, "giving back leases: %s", error);
	if (runp->fatal && err[0] == '\0')
		snprintf(err, errsize, "%s", runp->fatal_msg);
	ret = runp->fatal || err[0] != '\0' ? -1 : 0;
	for (unsigned i = 0; i < p->connections; i++) {
		for (unsigned k = 0; k < workers[i].nslots; k++)
			buf_free(&workers[i].slots[k].msg);
		free(workers[i].slots);
		message_bufs_free(&workers[i].bufs);
	}
	free(workers);
	while (runp->free != NULL) {
		struct send_job *j = runp->free;

		runp->free = j->next;
		buf_free(&j->addr);
		buf_free(&j->vars);
		buf_free(&j->reply);
		free(j);
	}
	goto out;

out_detached:
	/*
	 * Workers still hold connections and what they point to: what they
	 * finished is committed now; what they hold keeps its lease, which
	 * the next run takes back.  The caller must exit at once, freeing
	 * nothing (stats->detached).
	 */
	detached = true;
	stats->detached = true;
	pthread_mutex_lock(&runp->lock);
	{
		struct send_job *done = runp->done;
		size_t ndone = runp->ndone;

		runp->done = NULL;
		runp->ndone = 0;
		pthread_mutex_unlock(&runp->lock);
		if (ndone > 0)
			send_commit(runp, st, owner, done, ndone, results, qids,
				    stats, &rng, &error);
	}
	ret = -1;
out:
	stats->elapsed_ms = clock_mono_ms() - started;
	stats->rate_wait_ms = atomic_load(&runp->rate_wait_ms);
	stats->render_ms = atomic_load(&runp->render_ms);
	stats->connect_ms = atomic_load(&runp->connect_ms);
	stats->server_wait_ms = atomic_load(&runp->wait_ms);
	stats->connections = atomic_load(&runp->connections);
	stats->pipelining_off = atomic_load(&runp->pipelining_off);
	stats->learned_cap = atomic_load(&runp->learned_cap);
	if (st != NULL)
		stats->remaining = send_remaining(st, p);
	if (p->progress != NULL)
		p->progress(p->progress_ctx, stats, true);
	while (names != NULL && !detached) {
		struct send_names *n = names->next;

		buf_free(&names->packed);
		free(names->address_column);
		free(names);
		names = n;
	}
	store_batch_free(&batch);
	free(results);
	free(qids);
	store_close(&st);
	if (!detached) {
		pthread_mutex_destroy(&runp->lock);
		pthread_cond_destroy(&runp->work);
		pthread_cond_destroy(&runp->results);
		free(runp);
	}
	return ret;
}
