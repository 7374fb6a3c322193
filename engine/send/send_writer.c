/*
 * send_writer - the store writer of a campaign run (see send.h and
 * send_private.h): the one thread that talks to the store.  It claims
 * due jobs into the ready list and commits the workers' results in
 * batches, each result decided by the retry policy (retry_decide), with
 * the accounting log and the summary's counts beside.
 */
#include "send_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce_rules.h"
#include "clock.h"
#include "errmsg.h"
#include "ratelimit.h"
#include "retry.h"
#include "utf8.h"
#include "xalloc.h"

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
	store_set_bounce_policy(wr->st, &p->bounce_policy);
	/*
	 * An import holding the lock as the run starts is normal use: wait
	 * for it (a stop request ends the wait).  Anything else - memory,
	 * a full disk - is said at once: nothing is in flight yet.
	 */
	for (int64_t wait = SEND_STORE_RETRY_MS;;) {
		if (store_reclaim(wr->st, clock_wall_ms(),
				  p->retry.hold_in_doubt, send_owner_alive,
				  wr->owner, &reclaimed, &error) == 0)
			break;
		if (!store_error_busy(wr->st) || send_stop_asked(run))
			return errmsg_set(error_r, "%s", error);
		if (wait == SEND_STORE_RETRY_MS && p->notice != NULL) {
			char line[700];

			snprintf(line, sizeof(line), "%s; waiting for the "
				 "store", error);
			p->notice(p->notice_ctx, line);
		}
		for (int64_t left = wait; left > 0 && !send_stop_asked(run);
		     left -= 100)
			clock_sleep_ms(left < 100 ? left : 100);
		wait = wait * 2 > SEND_STORE_RETRY_MAX_MS ?
		       SEND_STORE_RETRY_MAX_MS : wait * 2;
	}
	stats->reclaimed = (uint64_t)reclaimed;
	return 0;
}

/*
 * send_ready - a claim's n jobs, first to last, join the ready list for
 * the workers: one lock and one wake-up for the batch (a lock and a
 * signal per job made the workers contend with the writer for the lock
 * a thousand times a claim)
 */
static void send_ready(struct send_run *run, struct send_job *first,
		       struct send_job *last, size_t n)
{
	if (n == 0)
		return;
	last->next = NULL;
	pthread_mutex_lock(&run->lock);
	if (run->ready_tail != NULL)
		run->ready_tail->next = first;
	else
		run->ready = first;
	run->ready_tail = last;
	run->nready += n;
	run->in_flight += n;
	pthread_cond_broadcast(&run->work);
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
	j->claim_id = sj->claim_id;
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

/* send_unclaimed - job objects taken for a claim and not used go back */
static void send_unclaimed(struct send_run *run, struct send_job *chain)
{
	struct send_job *last = chain;

	if (chain == NULL)
		return;
	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&run->lock);
	last->next = run->free;
	run->free = chain;
	pthread_mutex_unlock(&run->lock);
}

long send_claim(struct send_run *run, const char **error_r)
{
	const struct send_params *p = run->p;
	struct send_writer *wr = &run->w;
	size_t want = p->claim_batch ? p->claim_batch : SEND_CLAIM_BATCH;
	size_t nfree = 0;
	long total = 0;
	struct send_job *j, *first, *last, *spare;

	pthread_mutex_lock(&run->lock);
	for (j = run->free; j != NULL && nfree < want; j = j->next)
		nfree++;
	pthread_mutex_unlock(&run->lock);
	wr->claim_more = false;
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
		wr->claim_more |= wr->batch.more;
		if (wr->batch.count == 0)
			continue;
		/* free job objects for the batch, detached at once (only
		 * this thread takes from the free list: nfree are there) */
		pthread_mutex_lock(&run->lock);
		spare = j = run->free;
		for (size_t i = 1; i < wr->batch.count; i++)
			j = j->next;
		run->free = j->next;
		j->next = NULL;
		pthread_mutex_unlock(&run->lock);
		first = last = NULL;
		for (size_t i = 0; i < wr->batch.count; i++) {
			const struct store_job *sj = &wr->batch.jobs[i];
			const struct recipient_import *nm;

			nm = recipient_import_get(&wr->names, wr->st,
						  sj->import_id, error_r);
			if (nm == NULL) {
				/* the rest stay leased: the drain gives
				 * them back (store_release) */
				send_ready(run, first, last, i);
				send_unclaimed(run, spare);
				return -1;
			}
			j = spare;
			spare = j->next;
			send_job_load(j, sj, ci, nm);	/* j->next = NULL */
			if (last != NULL)
				last->next = j;
			else
				first = j;
			last = j;
		}
		send_ready(run, first, last, wr->batch.count);
		nfree -= wr->batch.count;
		total += (long)wr->batch.count;
	}
	wr->next_campaign = (wr->next_campaign + 1) % p->ncampaigns;
	return total;
}

/*
 * send_classify - a permanent reply to this recipient (its RCPT or its
 * message) as a bounce for the store to record and suppress by.  The
 * server that answers is often the sender's own relay, so only what is
 * about the recipient's mailbox counts (it does not exist, or is full);
 * a relay that refuses the client, the content or the sender at RCPT
 * would otherwise suppress a whole list after a few campaigns: those are
 * recorded as about the sender.  volley's own errors are left out.
 */
static void send_classify(const struct send_params *p,
			  const struct send_job *job, struct store_result *r)
{
	struct bounce_class cls;

	if (p->bounce_rules == NULL || job->local || job->code < 500 ||
	    job->code > 599 ||
	    (job->step != SMTP_STEP_RCPT && job->step != SMTP_STEP_END))
		return;
	bounce_rules_classify(p->bounce_rules, job->code, r->enhanced,
			      r->reply, &cls);
	r->bounce_category = bounce_category_name(cls.category);
	r->bounce_hard = cls.hard;
	r->bounce_sender_side = cls.category != BOUNCE_CAT_BAD_MAILBOX &&
				cls.category != BOUNCE_CAT_BAD_DOMAIN &&
				cls.category != BOUNCE_CAT_INACTIVE_MAILBOX &&
				cls.category != BOUNCE_CAT_QUOTA_ISSUES;
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
	const unsigned char *u = (const unsigned char *)(v ? v : "");
	size_t len = strlen((const char *)u);
	bool quote = strpbrk((const char *)u, ",\"\r\n") != NULL;

	if (quote)
		fputc('"', f);
	/*
	 * A server's text as UTF-8 with no control in it but the line ends
	 * of a multi-line reply: a byte that is not UTF-8, or a control
	 * (C1 too), becomes U+FFFD, so `cat` on the log cannot drive a
	 * terminal.
	 */
	for (size_t i = 0; i < len;) {
		size_t n = utf8_char_len(u + i, len - i);

		bool c1 = n == 2 && u[i] == 0xc2 && u[i + 1] <= 0x9f;

		if (n == 0 || c1 || u[i] == 0x7f ||
		    (u[i] < 0x20 && u[i] != '\n' && u[i] != '\t')) {
			fputs("\xef\xbf\xbd", f);
			i += n > 0 ? n : 1;
			continue;
		}
		if (u[i] == '"')
			fputc('"', f);
		fwrite(u + i, 1, n, f);
		i += n;
	}
	if (quote)
		fputc('"', f);
}

/*
 * send_account - one accounting line per attempt just committed.  A
 * write that fails (a full disk) is counted and said once: the user
 * relies on the file, and the store still has every result.
 */
static void send_account(struct send_run *run, const struct send_job *done,
			 const struct store_result *results, size_t n)
{
	const struct send_params *p = run->p;
	struct send_writer *wr = &run->w;
	const struct send_job *job = done;
	uint64_t lines = 0;
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
		lines++;
	}
	if (fflush(p->accounting) != 0 || ferror(p->accounting)) {
		int e = errno;

		if (wr->accounting_lost == 0 && p->notice != NULL) {
			char line[300];

			snprintf(line, sizeof(line), "send.accounting_log: %s; "
				 "lines are missing from it (the store has "
				 "every result)", strerror(e));
			p->notice(p->notice_ctx, line);
		}
		snprintf(wr->accounting_error, sizeof(wr->accounting_error),
			 "%s", strerror(e));
		wr->accounting_lost += lines;
		clearerr(p->accounting);
	}
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

/*
 * send_decide - a finished job's result, decided by the retry policy once
 * (its jitter and the pool's pause happen here), into job->result
 */
static void send_decide(struct send_run *run, struct send_job *job,
			int64_t now)
{
	const struct send_params *p = run->p;
	struct store_result *r = &job->result;
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
	r->campaign_id = p->campaigns[job->campaign].id;
	r->claim_id = job->claim_id;
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
		r->queue_id = send_queue_id(r->reply, job->qid,
					    sizeof(job->qid));
		break;
	case RETRY_DEFER:
		r->state = JOB_DEFERRED;
		/* held until the user says: `volley release` */
		r->next_attempt_at = out.hold ? STORE_HELD :
				     out.next_attempt_ms;
		break;
	case RETRY_FAIL:
		r->state = JOB_FAILED;
		send_classify(p, job, r);
		break;
	}
}

void send_collect(struct send_run *run, struct send_job *done, size_t n)
{
	struct send_writer *wr = &run->w;
	int64_t now = clock_wall_ms();

	(void)n;
	if (wr->pending_tail == NULL)
		wr->pending_tail = &wr->pending;
	while (done != NULL) {
		struct send_job *job = done;

		done = job->next;
		send_decide(run, job, now);
		job->next = NULL;
		*wr->pending_tail = job;
		wr->pending_tail = &job->next;
		wr->npending++;
	}
}

/* send_count - a recorded result in the run's stats */
static void send_count(struct send_stats *stats, const struct send_job *job)
{
	switch (job->result.state) {
	case JOB_SENT:
		stats->sent++;
		break;
	case JOB_DEFERRED:
		stats->deferred++;
		send_tally(stats, job);
		break;
	case JOB_FAILED:
		stats->failed++;
		send_tally(stats, job);
		break;
	default:
		break;
	}
}

/* send_store_failed - the commit failed: wait, longer each time */
bool send_store_patience(struct send_run *run, const char *doing,
			 const char *error)
{
	struct send_writer *wr = &run->w;
	int64_t now = clock_mono_ms();
	char msg[900];

	if (wr->failing_since_ms == 0)
		wr->failing_since_ms = now;
	if (store_error_busy(wr->st))
		return true;
	if (store_error_transient(wr->st) &&
	    now - wr->failing_since_ms < SEND_STORE_PATIENCE_MS)
		return true;
	if (store_error_transient(wr->st))
		snprintf(msg, sizeof(msg), "%s: %s (failing for %lld s)", doing,
			 error, (long long)((now - wr->failing_since_ms) /
					    1000));
	else
		snprintf(msg, sizeof(msg), "%s: %s", doing, error);
	if (wr->error[0] == '\0')
		snprintf(wr->error, sizeof(wr->error), "%s", msg);
	send_fatal(run, msg);
	return false;
}

void send_store_works(struct send_run *run)
{
	run->w.failing_since_ms = 0;
}

static int send_store_failed(struct send_run *run, const char *error,
			     const char **error_r)
{
	struct send_writer *wr = &run->w;
	const struct send_params *p = run->p;

	/* a damaged store, or failing too long: the run stops; what may
	 * have left stays leased (send_drain) */
	send_store_patience(run, "recording results", error);

	wr->retry_ms = wr->retry_ms == 0 ? SEND_STORE_RETRY_MS :
		       wr->retry_ms * 2 > SEND_STORE_RETRY_MAX_MS ?
		       SEND_STORE_RETRY_MAX_MS : wr->retry_ms * 2;
	wr->retry_at_ms = clock_mono_ms() + wr->retry_ms;
	snprintf(wr->store_error, sizeof(wr->store_error), "%s", error);
	if (!wr->store_failing && p->notice != NULL) {
		char line[700];

		snprintf(line, sizeof(line), "recording results: %s; they "
			 "wait in memory and are tried again, and no more "
			 "recipients are claimed meanwhile", error);
		p->notice(p->notice_ctx, line);
	}
	wr->store_failing = true;
	return errmsg_set(error_r, "recording results: %s", error);
}

int send_commit(struct send_run *run, struct send_stats *stats, bool now,
		const char **error_r)
{
	const struct send_params *p = run->p;
	struct send_writer *wr = &run->w;
	int64_t t0 = clock_mono_ms();
	struct send_job *job;
	const char *error;
	size_t i = 0, n = wr->npending, stale;

	if (n == 0 || (!now && wr->store_failing && t0 < wr->retry_at_ms))
		return 0;
	for (job = wr->pending; job != NULL; job = job->next)
		wr->results[i++] = job->result;
	if (store_record(wr->st, wr->owner, wr->results, n, &stale,
			 &error) < 0) {
		stats->commit_ms += clock_mono_ms() - t0;
		return send_store_failed(run, error, error_r);
	}
	stats->commit_ms += clock_mono_ms() - t0;
	send_store_works(run);
	if (wr->store_failing && p->notice != NULL)
		p->notice(p->notice_ctx, "recording results: the store takes "
			  "them again");
	wr->store_failing = false;
	wr->retry_ms = 0;
	if (p->accounting != NULL)
		send_account(run, wr->pending, wr->results, n);
	/* recorded: counted, and the objects are free for the next claim */
	for (job = wr->pending; job != NULL; job = job->next)
		send_count(stats, job);
	pthread_mutex_lock(&run->lock);
	while (wr->pending != NULL) {
		job = wr->pending->next;
		wr->pending->next = run->free;
		run->free = wr->pending;
		wr->pending = job;
	}
	run->in_flight -= n;
	pthread_mutex_unlock(&run->lock);
	wr->pending_tail = &wr->pending;
	wr->npending = 0;
	return 1;
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
	struct send_writer *wr = &run->w;
	int64_t *keep = xcalloc(wr->npending + 1, sizeof(*keep));
	size_t nkeep = 0;
	const char *error;
	int ret = 0;

	for (struct send_job *j = wr->pending; j != NULL; j = j->next)
		if (j->result.state != JOB_QUEUED)
			keep[nkeep++] = j->id;
	if (store_release(wr->st, wr->owner, keep, nkeep, NULL, &error) < 0)
		ret = errmsg_set(error_r, "%s", error);
	free(keep);
	return ret;
}

void send_writer_close(struct send_run *run, bool detached)
{
	struct send_writer *wr = &run->w;

	/* the workers may still read the imports' names */
	if (!detached)
		recipient_names_free(&wr->names);
	store_batch_free(&wr->batch);
	free(wr->results);
	store_close(&wr->st);
}
