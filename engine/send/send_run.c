/*
 * send_run - a campaign run from start to end (see send.h): start the
 * store writer and the workers, run the writer's loop, drain, tear down.
 * The workers are send_worker.c, the store writer's work send_writer.c.
 */
#include "send_private.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errmsg.h"
#include "token.h"
#include "xalloc.h"

bool send_stop_asked(const struct send_run *run)
{
	return run->p->stop != NULL && atomic_load(run->p->stop);
}

void send_stop_claiming(struct send_run *run)
{
	run->stopping = true;
	atomic_store(&run->halt, true);
	pthread_cond_broadcast(&run->work);
}

void send_fatal(struct send_run *run, const char *msg)
{
	pthread_mutex_lock(&run->lock);
	if (!run->fatal) {
		run->fatal = true;
		snprintf(run->fatal_msg, sizeof(run->fatal_msg), "%s", msg);
	}
	send_stop_claiming(run);
	pthread_cond_broadcast(&run->results);
	pthread_mutex_unlock(&run->lock);
}

/* send_window - the messages one connection may hold at once */
static size_t send_window(const struct send_params *p)
{
	if (!p->conn.session.chunking)
		return 2;	/* one waiting for its 354, one behind it */
	return p->conn.session.chunking_window ?
	       p->conn.session.chunking_window : 8;
}

/* send_pool_free - the job objects not in use (all, once stopped) */
static void send_pool_free(struct send_run *run)
{
	while (run->free != NULL) {
		struct send_job *j = run->free;

		run->free = j->next;
		buf_free(&j->addr);
		buf_free(&j->vars);
		buf_free(&j->reply);
		free(j);
	}
}

/*
 * send_start - open the store (taking back a dead run's leases), make
 * the job pool and start the workers.  -1 (run->w.error set) if the run
 * cannot begin; a worker that cannot start makes the run stop at once.
 */
static int send_start(struct send_run *run, struct send_stats *stats)
{
	const struct send_params *p = run->p;
	size_t window = send_window(p);
	const char *error;

	if (send_writer_open(run, stats, &error) < 0) {
		snprintf(run->w.error, sizeof(run->w.error), "%s", error);
		return -1;
	}
	/* the job pool: the queue plus what every connection may hold */
	run->npool = 2 * (p->claim_batch ? p->claim_batch : SEND_CLAIM_BATCH) +
		     p->connections * (window + 1);
	for (size_t i = 0; i < run->npool; i++) {
		struct send_job *j = xcalloc(1, sizeof(*j));

		/*
		 * Room for a usual address, its variables and a reply now,
		 * so that no message allocates, the first ones included:
		 * they would each grow three buffers of a job object the
		 * pool hands out for the first time (a pool of a thousand
		 * and more, each used once before any is used again).
		 */
		buf_reserve(&j->addr, 63);
		buf_reserve(&j->vars, 127);
		buf_reserve(&j->reply, 127);
		j->next = run->free;
		run->free = j;
	}
	run->w.results = xcalloc(run->npool, sizeof(*run->w.results));

	if (p->reconnects_per_second > 0) {
		struct ratelimit_params rp = {
			.per_second = p->reconnects_per_second, .burst = 1,
		};

		if (ratelimit_new(&rp, &run->reconnects, &error) < 0) {
			snprintf(run->w.error, sizeof(run->w.error),
				 "reconnects per second: %s", error);
			send_pool_free(run);
			return -1;
		}
	}
	run->workers = xcalloc(p->connections, sizeof(*run->workers));
	/* each worker signs and makes tokens with its own contexts, made
	 * before any starts */
	for (unsigned i = 0; i < p->connections; i++) {
		struct send_worker *w = &run->workers[i];

		error = "VERP or unsubscribe: cannot set up HMAC-SHA256";
		if ((dkim_keys_count(p->dkim) > 0 &&
		     dkim_signer_new(p->dkim, &w->dkim, &error) < 0) ||
		    (p->verp_secret != NULL &&
		     token_key_new(p->verp_secret, strlen(p->verp_secret),
				   &w->verp) < 0) ||
		    (p->unsubscribe_secret != NULL &&
		     p->unsubscribe_base_url != NULL &&
		     token_key_new(p->unsubscribe_secret,
				   strlen(p->unsubscribe_secret),
				   &w->unsub) < 0)) {
			snprintf(run->w.error, sizeof(run->w.error), "%s",
				 error);
			for (unsigned k = 0; k <= i; k++) {
				dkim_signer_free(&run->workers[k].dkim);
				token_key_free(&run->workers[k].verp);
				token_key_free(&run->workers[k].unsub);
			}
			free(run->workers);
			run->workers = NULL;
			send_pool_free(run);
			return -1;
		}
	}
	run->workers_running = p->connections;
	for (unsigned i = 0; i < p->connections; i++) {
		struct send_worker *w = &run->workers[i];

		w->run = run;
		w->rng = (uint64_t)clock_mono_ns() ^
			 ((uint64_t)(i + 1) * UINT64_C(0x9e3779b97f4a7c15));
		w->nslots = (unsigned)window + 1;
		w->slots = xcalloc(w->nslots, sizeof(*w->slots));
		if (pthread_create(&w->thread, NULL, send_worker_main,
				   w) != 0) {
			pthread_mutex_lock(&run->lock);
			run->workers_running -= p->connections - i;
			pthread_mutex_unlock(&run->lock);
			send_fatal(run, "cannot start the worker threads");
			break;
		}
		run->nstarted = i + 1;
	}
	return 0;
}

/* send_take_done - the results the workers handed back, all of them */
static struct send_job *send_take_done(struct send_run *run, size_t *n)
{
	struct send_job *done = run->done;

	*n = run->ndone;
	run->done = NULL;
	run->ndone = 0;
	return done;
}

/* send_return_ready - stopping: the untried jobs in the queue go back */
static void send_return_ready(struct send_run *run)
{
	pthread_mutex_lock(&run->lock);
	while (run->ready != NULL) {
		struct send_job *j = run->ready;

		run->ready = j->next;
		j->tried = false;
		j->next = run->done;
		run->done = j;
		run->ndone++;
		run->nready--;
	}
	run->ready_tail = NULL;
	pthread_mutex_unlock(&run->lock);
}

/* send_progress - the progress callback, about once a second */
static void send_progress(struct send_run *run, struct send_stats *stats,
			  size_t in_flight)
{
	const struct send_params *p = run->p;
	int64_t now = clock_mono_ms();

	if (p->progress == NULL || now - run->w.last_progress_ms < 1000)
		return;
	run->w.last_progress_ms = now;
	stats->in_flight = in_flight;
	stats->remaining = send_remaining(run);
	if (run->w.st != NULL)	/* NULL when the store did not open */
		stats->suppressed =
			(uint64_t)store_claim_suppressed(run->w.st);
	stats->elapsed_ms = now - run->started_ms;
	stats->connections = atomic_load(&run->connections);
	p->progress(p->progress_ctx, stats, false);
}

/* send_claim_failed - a claim the store refused: again later if it may
 * pass (a lock, a full disk), else the run stops */
static void send_claim_failed(struct send_run *run, const char *error)
{
	struct send_writer *wr = &run->w;
	const struct send_params *p = run->p;

	if (!send_store_patience(run, "claiming jobs", error))
		return;
	wr->claim_retry_ms = wr->claim_retry_ms == 0 ? SEND_STORE_RETRY_MS :
			     wr->claim_retry_ms * 2 > SEND_STORE_RETRY_MAX_MS ?
			     SEND_STORE_RETRY_MAX_MS : wr->claim_retry_ms * 2;
	wr->claim_retry_at_ms = clock_mono_ms() + wr->claim_retry_ms;
	if (wr->claim_retry_ms == SEND_STORE_RETRY_MS && p->notice != NULL) {
		char line[700];

		snprintf(line, sizeof(line), "claiming jobs: %s; tried again",
			 error);
		p->notice(p->notice_ctx, line);
	}
}

/* send_wait_until - the longest the writer may sleep: the commit
 * interval, or less when a failed commit is due again */
static struct timespec send_wait_until(struct send_run *run)
{
	const struct send_params *p = run->p;
	int64_t ms = p->commit_interval_ms ? p->commit_interval_ms :
		     SEND_COMMIT_INTERVAL_MS;

	if (run->w.store_failing) {
		int64_t left = run->w.retry_at_ms - clock_mono_ms();

		ms = left < 1 ? 1 : left < ms ? left : ms;
	}
	return clock_deadline_ms(ms);
}

/*
 * send_loop - the store writer's loop: wait for results (or the commit
 * interval), commit them, claim more while the queue runs low, and stop
 * when nothing is due or the run is asked to.  While the store refuses a
 * commit the results wait and no more is claimed (send_commit).  Returns
 * once every worker has left and nothing is in flight, or when the stop
 * deadline passed (false); true when it passed with workers still
 * holding messages: the run must leave them behind.
 */
static bool send_loop(struct send_run *run, struct send_stats *stats)
{
	const struct send_params *p = run->p;
	struct send_writer *wr = &run->w;
	size_t claim_batch = p->claim_batch ? p->claim_batch :
			     SEND_CLAIM_BATCH;
	int64_t stop_timeout = p->stop_timeout_ms ? p->stop_timeout_ms :
			       SEND_STOP_TIMEOUT_MS;

	wr->claimable = true;
	for (;;) {
		struct send_job *done;
		size_t ndone, nready, in_flight, running;
		bool stopping, fatal;
		const char *error;
		struct timespec until = send_wait_until(run);

		pthread_mutex_lock(&run->lock);
		if (run->ndone < (p->commit_batch ? p->commit_batch :
				  SEND_COMMIT_BATCH) &&
		    (run->ndone == 0 || run->ndone < run->in_flight ||
		     wr->store_failing) &&
		    run->workers_running > 0 &&
		    (run->nready > run->low_water || run->stopping ||
		     !wr->claimable || wr->store_failing))
			pthread_cond_timedwait(&run->results, &run->lock,
					       &until);
		if (send_stop_asked(run) && !run->stopping)
			send_stop_claiming(run);
		done = send_take_done(run, &ndone);
		stopping = run->stopping;
		fatal = run->fatal;
		running = run->workers_running;
		pthread_mutex_unlock(&run->lock);

		if (ndone > 0)
			send_collect(run, done, ndone);
		send_commit(run, stats, false, &error);

		pthread_mutex_lock(&run->lock);
		nready = run->nready;
		in_flight = run->in_flight;
		pthread_mutex_unlock(&run->lock);

		if (stopping || fatal) {
			if (wr->stop_deadline_ms == 0)
				wr->stop_deadline_ms = clock_mono_ms() +
						       stop_timeout;
			send_return_ready(run);
			if (running == 0 && in_flight == 0)
				return false;
			/* the workers are done, the store is not: drain
			 * keeps what it cannot record */
			if (clock_mono_ms() > wr->stop_deadline_ms &&
			    running == 0)
				return false;
			if (clock_mono_ms() > wr->stop_deadline_ms) {
				/* leases left: the next run reclaims them */
				size_t len;

				/* why it stopped, if a worker said */
				pthread_mutex_lock(&run->lock);
				if (wr->error[0] == '\0' && run->fatal)
					snprintf(wr->error, sizeof(wr->error),
						 "%s", run->fatal_msg);
				pthread_mutex_unlock(&run->lock);
				len = strlen(wr->error);

				snprintf(wr->error + len,
					 sizeof(wr->error) - len, "%sstopped "
					 "after %lld s with %zu messages still "
					 "in flight; their leases will expire",
					 len > 0 ? "; " : "",
					 (long long)(stop_timeout / 1000),
					 in_flight);
				return true;
			}
		} else if (wr->npending == 0 && nready < claim_batch &&
			   clock_mono_ms() >= wr->claim_retry_at_ms) {
			long got = send_claim(run, &error);

			/* nothing due: wait the interval before asking again */
			wr->claimable = got > 0 || wr->claim_more;
			if (got < 0) {
				send_claim_failed(run, error);
			} else {
				send_store_works(run);
				wr->claim_retry_ms = 0;
				if (got == 0 && !wr->claim_more &&
				    nready == 0 && in_flight == 0 &&
				    !p->follow) {
					pthread_mutex_lock(&run->lock);
					send_stop_claiming(run);
					pthread_mutex_unlock(&run->lock);
				}
			}
		}
		send_progress(run, stats, in_flight);
	}
}

/*
 * send_drain - every worker has left: the last results are committed,
 * every lease still held goes back untried, and the run's resources
 * are freed but for the writer's.
 */
static void send_drain(struct send_run *run, struct send_stats *stats)
{
	struct send_writer *wr = &run->w;
	struct send_job *done;
	const char *error;
	size_t ndone;

	for (unsigned i = 0; i < run->nstarted; i++)
		pthread_join(run->workers[i].thread, NULL);
	/* a last commit: what the workers finished while stopping */
	done = send_take_done(run, &ndone);
	if (ndone > 0)
		send_collect(run, done, ndone);
	if (send_commit(run, stats, true, &error) < 0) {
		size_t kept = 0;

		for (struct send_job *j = wr->pending; j != NULL; j = j->next)
			kept += j->result.state != JOB_QUEUED;
		snprintf(wr->error, sizeof(wr->error), "%s; %zu recipients "
			 "whose message may have left stay leased: the next "
			 "`volley send` takes them as in doubt", error, kept);
	}
	/* nothing is in flight now: any lease still held (a claim cut short
	 * by an error) goes back untried - but what may have left */
	if (send_writer_release(run, &error) < 0 && wr->error[0] == '\0')
		snprintf(wr->error, sizeof(wr->error), "giving back leases: "
			 "%s", error);
	if (wr->accounting_lost > 0 && wr->error[0] == '\0')
		snprintf(wr->error, sizeof(wr->error), "send.accounting_log: "
			 "%llu lines could not be written: %s",
			 (unsigned long long)wr->accounting_lost,
			 wr->accounting_error);
	if (run->fatal && wr->error[0] == '\0')
		snprintf(wr->error, sizeof(wr->error), "%s", run->fatal_msg);
	for (unsigned i = 0; i < run->p->connections; i++) {
		struct send_worker *w = &run->workers[i];

		for (unsigned k = 0; k < w->nslots; k++) {
			buf_free(&w->slots[k].msg);
			buf_free(&w->slots[k].from);
		}
		free(w->slots);
		buf_free(&w->file);
		message_bufs_free(&w->bufs);
		dkim_signer_free(&w->dkim);
		token_key_free(&w->verp);
		token_key_free(&w->unsub);
		buf_free(&w->unsub_url);
	}
	free(run->workers);
	send_pool_free(run);
}

/*
 * send_abandon - the stop deadline passed with workers still holding
 * connections and what those point to: what they finished is committed
 * now; what they hold keeps its lease, which the next run takes back.
 * The caller must exit at once, freeing nothing (stats->detached).
 */
static void send_abandon(struct send_run *run, struct send_stats *stats)
{
	struct send_job *done;
	const char *error;
	size_t ndone;

	stats->detached = true;
	pthread_mutex_lock(&run->lock);
	done = send_take_done(run, &ndone);
	pthread_mutex_unlock(&run->lock);
	if (ndone > 0)
		send_collect(run, done, ndone);
	send_commit(run, stats, true, &error);
}

/* send_teardown - the final stats and progress, and free what is ours */
static void send_teardown(struct send_run *run, struct send_stats *stats,
			  bool detached)
{
	const struct send_params *p = run->p;

	stats->elapsed_ms = clock_mono_ms() - run->started_ms;
	stats->rate_wait_ms = atomic_load(&run->rate_wait_ms);
	stats->render_ms = atomic_load(&run->render_ms);
	stats->connect_ms = atomic_load(&run->connect_ms);
	stats->server_wait_ms = atomic_load(&run->wait_ms);
	stats->connections = atomic_load(&run->connections);
	stats->pipelining_off = atomic_load(&run->pipelining_off);
	stats->learned_cap = atomic_load(&run->learned_cap);
	stats->stop_code = atomic_load(&run->stop_code);
	stats->remaining = send_remaining(run);
	if (run->w.st != NULL)	/* NULL when the store did not open */
		stats->suppressed =
			(uint64_t)store_claim_suppressed(run->w.st);
	if (p->progress != NULL)
		p->progress(p->progress_ctx, stats, true);
	send_writer_close(run, detached);
	if (!detached) {
		ratelimit_free(&run->reconnects);
		pthread_mutex_destroy(&run->lock);
		pthread_cond_destroy(&run->work);
		pthread_cond_destroy(&run->results);
		free(run);
	}
}

int send_run(const struct send_params *p, struct send_stats *stats,
	     const char **error_r)
{
	/* on the heap: after a stop deadline, workers may outlive us */
	struct send_run *run = xcalloc(1, sizeof(*run));
	char error[sizeof(run->w.error)];
	bool detached = false;
	int ret;

	memset(stats, 0, sizeof(*stats));
	run->p = p;
	run->started_ms = clock_mono_ms();
	run->low_water = (p->claim_batch ? p->claim_batch :
			  SEND_CLAIM_BATCH) / 2;
	run->w.rng = (uint64_t)clock_wall_ms() | 1;
	pthread_mutex_init(&run->lock, NULL);
	clock_cond_init(&run->work);
	clock_cond_init(&run->results);

	if (send_start(run, stats) == 0) {
		detached = send_loop(run, stats);
		if (detached)
			send_abandon(run, stats);
		else
			send_drain(run, stats);
	}
	ret = detached || run->fatal || run->w.error[0] != '\0' ? -1 : 0;
	snprintf(error, sizeof(error), "%s", run->w.error[0] ? run->w.error :
		 run->fatal_msg);
	/* teardown runs the caller's progress and frees the run: the
	 * message is set after it, so nothing there can overwrite it */
	send_teardown(run, stats, detached);
	if (ret < 0)
		errmsg_set(error_r, "%s", error);
	return ret;
}
