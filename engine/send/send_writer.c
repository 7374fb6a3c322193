/*
 * send_writer - the store writer of a campaign run (see send.h and
 * send_private.h): the one thread that talks to the store.  It claims
 * due jobs into the ready list and commits the workers' results in
 * batches, each result decided by the retry policy (retry_decide), with
 * the accounting log and the summary's counts beside.
 */
#include "send_private.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "errmsg.h"
#include "ratelimit.h"
#include "retry.h"

static bool send_owner_alive(void *ctx, const char *owner)
{
	return store_lease_owner_alive(owner, ctx);
}

int send_writer_open(struct send_run *run, struct send_stats *stats,
		     const char **error_r)
{
	const struct send_params *p = run->p;
	struct send_writer *wr = &run->w;
	int64_t reclaimed = 0;
	const char *error;

	if (store_open(p->store_path, &p->store, &wr->st, &error) < 0)
		return errmsg_set(error_r, "%s", error);
	store_lease_owner_self(wr->owner, sizeof(wr->owner));
	if (store_reclaim(wr->st, clock_wall_ms(), p->retry.hold_in_doubt,
			  send_owner_alive, wr->owner, &reclaimed,
			  &error) < 0)
		return errmsg_set(error_r, "%s", error);
	stats->reclaimed = (uint64_t)reclaimed;
	return 0;
}

/* send_ready - a claimed job joins the ready list, for the workers */
static void send_ready(struct send_run *run, struct send_job *j)
{
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

/* send_job_load - a free job object becomes the claimed job sj */
static void send_job_load(struct send_job *j, const struct store_job *sj,
			  size_t campaign, const struct recipient_import *nm)
{
	j->next = NULL;
	j->id = sj->id;
	j->campaign = campaign;
	j->attempts = sj->attempts;
	j->doubts = sj->doubts;
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
	j->step = SMTP_STEP_NONE;
	j->enhanced[0] = '\0';
	buf_reset(&j->reply);
}

long send_claim(struct send_run *run, const char **error_r)
{
	const struct send_params *p = run->p;
	struct send_writer *wr = &run->w;
	size_t want = p->claim_batch ? p->claim_batch : SEND_CLAIM_BATCH;
	size_t nfree = 0;
	long total = 0;
	struct send_job *j;

	pthread_mutex_lock(&run->lock);
	for (j = run->free; j != NULL && nfree < want; j = j->next)
		nfree++;
	pthread_mutex_unlock(&run->lock);
	if (nfree < want / 2 + 1)
		return 0;

	for (size_t k = 0; k < p->ncampaigns && nfree > 0; k++) {
		size_t ci = (wr->next_campaign + k) % p->ncampaigns;
		const char *error;

		if (store_claim(wr->st, p->campaigns[ci].id, wr->owner,
				clock_wall_ms(),
				p->lease_ms ? p->lease_ms : SEND_LEASE_MS,
				nfree, &wr->batch, &error) < 0)
			return errmsg_set(error_r, "%s", error);
		for (size_t i = 0; i < wr->batch.count; i++) {
			const struct store_job *sj = &wr->batch.jobs[i];
			const struct recipient_import *nm;

			nm = recipient_import_get(&wr->names, wr->st,
						  sj->import_id, error_r);
			if (nm == NULL)
				return -1;
			pthread_mutex_lock(&run->lock);
			j = run->free;
			run->free = j->next;
			pthread_mutex_unlock(&run->lock);
			send_job_load(j, sj, ci, nm);
			send_ready(run, j);
		}
		nfree -= wr->batch.count;
		total += (long)wr->batch.count;
	}
	wr->next_campaign = (wr->next_campaign + 1) % p->ncampaigns;
	return total;
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
		if (st->top[i].count > 0 &&
		    strcmp(st->top[i].reply, key) == 0) {
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

/* send_result - a finished job as the store's result, decided by the
 * retry policy */
static void send_result(struct send_run *run, struct send_job *job,
			int64_t now, struct store_result *r, char *qid,
			struct send_stats *stats)
{
	const struct send_params *p = run->p;
	struct retry_attempt a = {
		.code = job->code, .enhanced = job->enhanced,
		.text = buf_cstr(&job->reply), .step = job->step,
		.local = job->local, .sent = job->sent,
		.in_doubt = job->in_doubt, .doubts = job->doubts,
		.attempts = job->attempts,
		.first_attempt_ms = job->first_attempt_at ?
				    job->first_attempt_at : now,
	};
	struct retry_outcome out;

	memset(r, 0, sizeof(*r));
	r->job_id = job->id;
	r->at = now;
	if (!job->tried) {
		r->state = JOB_QUEUED;
		return;
	}
	retry_decide(&p->retry, &a, now, &run->w.rng, &out);
	if (out.pool_backoff && p->rate != NULL)
		ratelimit_pause(p->rate, ratelimit_now(p->rate) +
				out.backoff_ms);
	if (out.why != NULL)
		buf_printf(&job->reply, " (%s)", out.why);
	r->in_doubt = job->in_doubt;
	r->code = job->code;
	r->enhanced = job->enhanced[0] ? job->enhanced : NULL;
	r->reply = buf_cstr(&job->reply);
	switch (out.verdict) {
	case RETRY_SENT:
		r->state = JOB_SENT;
		r->queue_id = send_queue_id(r->reply, qid, 64);
		stats->sent++;
		break;
	case RETRY_DEFER:
		r->state = JOB_DEFERRED;
		/* held until the user says: `volley release` */
		r->next_attempt_at = out.hold ? STORE_HELD :
				     out.next_attempt_ms;
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

int send_commit(struct send_run *run, struct send_job *done, size_t n,
		struct send_stats *stats, const char **error_r)
{
	const struct send_params *p = run->p;
	struct send_writer *wr = &run->w;
	int64_t now = clock_wall_ms(), t0 = clock_mono_ms();
	struct send_job *job;
	const char *error;
	size_t i = 0, stale;
	int rc;

	for (job = done; job != NULL; job = job->next, i++)
		send_result(run, job, now, &wr->results[i], wr->qids[i],
			    stats);
	rc = store_record(wr->st, wr->owner, wr->results, n, &stale, &error);
	stats->commit_ms += clock_mono_ms() - t0;
	if (rc == 0 && p->accounting != NULL)
		send_account(p, done, wr->results, n);
	/* recorded (or not: the caller stops the run), so the objects are
	 * free for the next claim */
	pthread_mutex_lock(&run->lock);
	while (done != NULL) {
		job = done->next;
		done->next = run->free;
		run->free = done;
		done = job;
	}
	run->in_flight -= n;
	pthread_mutex_unlock(&run->lock);
	if (rc < 0)
		return errmsg_set(error_r, "%s", error);
	return 0;
}

int64_t send_remaining(struct send_run *run)
{
	const struct send_params *p = run->p;
	int64_t n = 0;

	if (run->w.st == NULL)
		return 0;
	for (size_t i = 0; i < p->ncampaigns; i++) {
		struct store_counts c;
		const char *error;

		if (store_counts(run->w.st, p->campaigns[i].id, &c,
				 &error) == 0)
			n += c.by_state[JOB_QUEUED] + c.by_state[JOB_DEFERRED];
	}
	return n;
}

int send_writer_release(struct send_run *run, const char **error_r)
{
	const char *error;

	if (store_release(run->w.st, run->w.owner, NULL, &error) < 0)
		return errmsg_set(error_r, "%s", error);
	return 0;
}

void send_writer_close(struct send_run *run, bool detached)
{
	struct send_writer *wr = &run->w;

	/* the workers may still read the imports' names */
	if (!detached)
		recipient_names_free(&wr->names);
	store_batch_free(&wr->batch);
	free(wr->results);
	free(wr->qids);
	store_close(&wr->st);
}
