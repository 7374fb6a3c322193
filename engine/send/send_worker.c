/*
 * send_worker - the worker threads of a campaign run (see send.h and
 * send_private.h): each keeps one connection to the relay open, feeds it
 * jobs from the ready list as its session can take them, renders each
 * recipient's message into buffers of its own, and hands the results
 * back to the store writer.
 *
 * What a worker decides about a reply or a connection's end it asks the
 * retry policy (retry.h): whether a lost message goes to another
 * connection now, what the relay's per-connection cap is, and whether to
 * connect again, back off, or stop the run.
 */
#include "send_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "errmsg.h"
#include "ratelimit.h"
#include "recipient.h"
#include "retry.h"
#include "token.h"

/* --- jobs in and results out ------------------------------------------- */

/* send_flush - the worker's results go to the store writer, one lock */
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
	/* a batch to commit, or the last results of all in flight: no
	 * reason to wait for the commit interval (at the end of a run it
	 * was up to 100 ms more before the last results were recorded) */
	if (run->ndone >= (run->p->commit_batch ? run->p->commit_batch :
			   SEND_COMMIT_BATCH) || run->ndone == run->in_flight)
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
 * send_return_local - the connection is over: the jobs this worker
 * popped and never handed to it go back to the front of the ready list
 * at once, for the other connections (while this one reconnects or backs
 * off, they would wait for nothing); when the run is stopping, back to
 * the store untried.
 */
static void send_return_local(struct send_worker *w)
{
	struct send_run *run = w->run;
	struct send_job *last = w->local;

	if (last == NULL)
		return;
	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&run->lock);
	if (run->stopping) {
		pthread_mutex_unlock(&run->lock);
		send_give_back(w);
		return;
	}
	last->next = run->ready;
	run->ready = w->local;
	if (run->ready_tail == NULL)
		run->ready_tail = last;
	run->nready += w->nlocal;
	pthread_cond_broadcast(&run->work);
	pthread_mutex_unlock(&run->lock);
	w->local = NULL;
	w->nlocal = 0;
}

/*
 * send_pop - the next ready job; blocks up to wait_ms when there is none
 * (0: not at all).  NULL when none came or the run is stopping.  Takes
 * up to max at once, max being what the connection has room for: no
 * connection holds more jobs than its window, so a stalled one keeps
 * nobody else's work.
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
		/* running low: the writer claims more now, not at its next
		 * commit interval */
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

/* send_requeue - a lost job goes to the front of the ready list (for
 * another connection); false if the run is stopping */
static bool send_requeue(struct send_worker *w, struct send_job *job)
{
	struct send_run *run = w->run;
	bool queued = false;

	pthread_mutex_lock(&run->lock);
	if (!run->stopping) {
		job->requeues++;
		job->next = run->ready;
		run->ready = job;
		if (run->ready_tail == NULL)
			run->ready_tail = job;
		run->nready++;
		pthread_cond_signal(&run->work);
		queued = true;
	}
	pthread_mutex_unlock(&run->lock);
	return queued;
}

/*
 * send_throttle - pause the pool for the policy's pool backoff (the
 * writer does it again when it decides the result: pauses never shorten
 * each other)
 */
static void send_throttle(struct send_run *run)
{
	struct ratelimit *rl = run->p->rate;

	if (rl != NULL)
		ratelimit_pause(rl, ratelimit_now(rl) +
				run->p->retry.pool_backoff_ms);
}

/* --- one message ------------------------------------------------------- */

/* send_attach - message_job.attach: a recipient's file, into w->file */
static int send_attach(void *ctx, const char *path, const void **data,
		       size_t *len, const char **error_r)
{
	struct send_worker *w = ctx;
	int rc = recipient_file_read(w->files_fd, path, &w->file, error_r);

	if (rc < 0) {
		w->render_transient = rc == -2;
		return -1;
	}
	*data = w->file.data;
	*len = w->file.len;
	return 0;
}

/*
 * send_sender - the envelope sender of job: the campaign's, with the
 * recipient's VERP token in place of {{verp}} (in slot->from)
 */
static const char *send_sender(struct send_worker *w,
			       const struct send_campaign *c,
			       const struct send_job *job,
			       struct send_slot *slot, const char **error_r)
{
	char token[TOKEN_VERP_MAX];

	if (!c->verp)
		return c->sender;
	if (w->verp == NULL) {
		/* send_params.verp_secret is the caller's to set */
		errmsg_set(error_r, "{{verp}} in the sender, and no secret");
		return NULL;
	}
	if (token_verp(w->verp, c->id, job->id, job->addr.data, job->addr.len,
		       token) < 0) {
		errmsg_set(error_r, "cannot make the VERP token");
		return NULL;
	}
	buf_reset(&slot->from);
	message_envelope_expand(c->sender, token, &slot->from);
	return slot->from.data;
}

/*
 * send_unsafe_url - the message went with a URL replaced: say so, once
 * a run (volley preview names every recipient it happens to).  Sent, not
 * failed: the rest of the message is good, and the link harmless now.
 */
static void send_unsafe_url(struct send_worker *w, const struct send_job *job)
{
	const struct tmpl_notes *n = &w->bufs.notes;
	struct send_run *run = w->run;
	char line[900];

	if (run->p->notice == NULL ||
	    atomic_exchange(&run->unsafe_url_said, true))
		return;
	snprintf(line, sizeof(line), "%.*s: %s:%u:%u: {{%.*s}} is not a "
		 "safe URL, sent as %s (said once a run: 'volley preview' "
		 "shows each recipient's)", (int)job->addr.len,
		 job->addr.data, n->file, n->line, n->column,
		 (int)n->name_len, n->name, TMPL_UNSAFE_URL);
	run->p->notice(run->p->notice_ctx, line);
}

/* send_local_result - a result volley made itself, for job */
static void send_local_result(struct send_job *job, int code,
			      const char *enhanced, const char *what,
			      const char *error)
{
	job->tried = true;
	job->sent = false;
	job->local = true;
	job->code = code;
	job->step = SMTP_STEP_NONE;
	snprintf(job->enhanced, sizeof(job->enhanced), "%s", enhanced);
	buf_reset(&job->reply);
	buf_printf(&job->reply, "%s: %s", what, error);
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
		.attach = c->files_fd >= 0 ? send_attach : NULL,
		.attach_ctx = w,
	};
	/* signatures go in front: rendered after room for them, the
	 * message is not moved to make it */
	size_t room = w->dkim != NULL ? dkim_keys_room(p->dkim) : 0;
	size_t start = 0;
	const char *error, *sender;

	w->files_fd = c->files_fd;
	w->render_transient = false;
	sender = send_sender(w, c, job, slot, &error);
	if (sender == NULL)
		goto transient;
	buf_reset(&slot->msg);
	buf_reserve(&slot->msg, room);
	slot->msg.len = room;
	if (recipient_vars(job->names, job->addr.data, job->addr.len,
			   job->vars.data, job->vars.len, &w->vd, &error) < 0)
		goto refused;
	if (w->unsub != NULL) {
		buf_reset(&w->unsub_url);
		if (token_unsub_url(w->unsub, p->unsubscribe_base_url, c->id,
				    job->id, job->addr.data, job->addr.len,
				    &w->unsub_url) < 0) {
			error = "cannot make the unsubscribe token";
			goto transient;
		}
		vars_data_set_unsubscribe_url(&w->vd, w->unsub_url.data,
					      w->unsub_url.len);
		if (!c->transactional) {
			mj.unsubscribe_url = w->unsub_url.data;
			mj.unsubscribe_url_len = w->unsub_url.len;
		}
	}
	if (message_render(c->tmpl, &w->vd.data, &mj, &w->bufs, &slot->msg,
			   &error) < 0)
		goto refused;
	/* keys were checked at start: a failure here is OpenSSL's (memory) */
	if (w->dkim != NULL &&
	    dkim_sign_buf(w->dkim, &slot->msg, room, mj.date, &start,
			  &error) < 0)
		goto transient;
	if (w->bufs.notes.unsafe_urls > 0)
		send_unsafe_url(w, job);
	slot->job = job;
	slot->rcpt[0] = job->addr.data;
	slot->m = (struct smtp_message){
		.from = sender, .rcpts = slot->rcpt, .nrcpts = 1,
		.data = slot->msg.data + start, .len = slot->msg.len - start,
		.ctx = slot,
		.smtputf8 = (job->addr_flags & STORE_ADDR_SMTPUTF8) != 0,
		.stuffed = w->bufs.stuffed,
	};
	return true;

refused:
	if (!w->render_transient) {
		/* the recipient's data cannot make a message: for good */
		send_local_result(job, 554, "5.6.0",
				  "cannot render the message", error);
		return false;
	}
transient:
	/* this machine's fault for now, not the recipient's: deferred */
	send_local_result(job, 451, "4.3.0", "cannot make the message now",
			  error);
	return false;
}

/* send_next - smtp_conn_source.next: the next message for the session */
static const struct smtp_message *send_next(void *ctx, bool *later)
{
	struct send_worker *w = ctx;
	struct send_run *run = w->run;
	struct send_slot *slot = NULL;
	unsigned busy = 0;
	size_t held = 0;

	/*
	 * The free slot with the largest buffer: the few messages of a
	 * large campaign in flight at once reuse the same buffers, and the
	 * other slots stay small.
	 */
	for (unsigned i = 0; i < w->nslots; i++) {
		if (w->slots[i].busy) {
			busy++;
			held += w->slots[i].msg.len;
		} else if (slot == NULL || w->slots[i].msg.cap > slot->msg.cap) {
			slot = &w->slots[i];
		}
	}
	/*
	 * No more than SEND_HELD_BYTES of messages in flight (one at a
	 * time when they are larger): a connection's memory is its
	 * messages', and 50 MB messages must not take a window's worth.
	 */
	if (slot == NULL ||
	    (busy > 0 && held + w->last_len > SEND_HELD_BYTES)) {
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
		job = send_pop(w, busy > 0 ? 0 : SEND_IDLE_WAIT_MS,
			       w->nslots - busy);
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
			w->last_len = slot->msg.len;
			slot->busy = true;
			return &slot->m;
		}
		send_finish(w, job);
	}
}

/* send_event - smtp_conn_source.event: a message's fate */
static void send_event(void *ctx, const struct smtp_event *ev)
{
	struct send_worker *w = ctx;
	struct send_slot *slot = ev->ctx;
	struct send_job *job = slot->job;
	struct retry_attempt a = {
		.code = ev->code, .enhanced = ev->enhanced, .text = ev->text,
		.step = ev->step, .local = ev->local, .sent = ev->sent,
		.in_doubt = ev->in_doubt,
	};

	/* One recipient per message: its DONE says the same or more, and
	 * it is never split, so that DONE is its last. */
	if (ev->kind == SMTP_EV_RCPT)
		return;
	slot->busy = false;
	slot->job = NULL;
	if (ev->sent)
		w->sent_on_conn++;
	/* the relay says slow down: every connection stops now, not when
	 * the writer gets to the result */
	if (!ev->sent && !ev->local &&
	    retry_throttled(ev->code, ev->enhanced, ev->text))
		send_throttle(w->run);
	if (retry_requeue(&w->run->p->retry, &a, job->requeues,
			  w->sent_on_conn) && send_requeue(w, job))
		return;
	/* lost as the run stops (a 530 stopped it, say): nothing was
	 * tried, so nothing is counted */
	if (retry_lost(&a) && atomic_load(&w->run->halt)) {
		job->tried = false;
		send_finish(w, job);
		return;
	}
	job->tried = true;
	job->sent = ev->sent;
	job->in_doubt = ev->in_doubt;
	job->local = ev->local;
	job->code = ev->code;
	job->step = ev->step;
	/* once a message: a copy, not snprintf's format walk (~570
	 * instructions) */
	if (ev->enhanced != NULL) {
		size_t n = strnlen(ev->enhanced, sizeof(job->enhanced) - 1);

		memcpy(job->enhanced, ev->enhanced, n);
		job->enhanced[n] = '\0';
	} else {
		job->enhanced[0] = '\0';
	}
	buf_reset(&job->reply);
	if (ev->text != NULL)
		buf_append_str(&job->reply, ev->text);
	if (ev->in_doubt)
		buf_append_str(&job->reply, " (in doubt: the whole message "
			       "went but no reply came; the server may have "
			       "taken it)");
	send_finish(w, job);
}

/* --- one connection after another -------------------------------------- */

/*
 * send_wait_for_work - block until a job is ready; false: the run is
 * over, or asked to stop - then no new connection opens, even before
 * the writer has seen the request
 */
static bool send_wait_for_work(struct send_worker *w)
{
	struct send_run *run = w->run;
	bool go;

	pthread_mutex_lock(&run->lock);
	while (run->ready == NULL && !run->stopping && !send_stop_asked(run))
		pthread_cond_wait(&run->work, &run->lock);
	go = !run->stopping && !send_stop_asked(run);
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

/* send_conn_params - the relay's parameters, with what the run learned */
static void send_conn_params(struct send_run *run, struct smtp_conn_params *cp)
{
	unsigned cap = atomic_load(&run->learned_cap);

	*cp = run->p->conn;
	if (atomic_load(&run->pipelining_off))
		cp->session.pipelining = false;
	if (cap > 0 && (cp->session.max_messages == 0 ||
			cap < cp->session.max_messages))
		cp->session.max_messages = cap;
}

/*
 * send_conn_learn - what a connection's end teaches the run: the relay's
 * cap of messages per connection, and a server whose replies go out of
 * step (no more pipelining to it).
 */
static void send_conn_learn(struct send_run *run,
			    const struct retry_conn_end *end,
			    const struct retry_conn_outcome *next,
			    const char *error)
{
	unsigned evidence = retry_cap_evidence(end);

	if (evidence > 0) {
		unsigned previous = atomic_exchange(&run->last_cap_seen,
						    evidence);
		unsigned cap = retry_cap_learn(atomic_load(&run->learned_cap),
					       previous, evidence), none = 0;

		if (cap > 0)
			atomic_compare_exchange_strong(&run->learned_cap,
						       &none, cap);
	}
	if (next->stop_pipelining &&
	    !atomic_exchange(&run->pipelining_off, true) &&
	    run->p->notice != NULL) {
		char line[700];

		snprintf(line, sizeof(line), "%s; not pipelining to this "
			 "server for the rest of the run", error);
		run->p->notice(run->p->notice_ctx, line);
	}
}

void *send_worker_main(void *arg)
{
	struct send_worker *w = arg;
	struct send_run *run = w->run;
	struct smtp_conn_source src = {
		.next = send_next, .event = send_event, .ctx = w,
		.max_in_flight = w->nslots,
		/* with messages in flight send_next never waits (it says
		 * "later" instead) */
		.next_returns_at_once = true,
	};
	const struct retry_conn_policy policy = {
		.backoff_first_ms = 1000, .backoff_max_ms = 32000,
		.give_up_after = SEND_CONNECT_FAILURES_MAX *
				 run->p->connections,
	};
	int64_t backoff = 0;
	bool paced = false;

	while (send_wait_for_work(w)) {
		struct smtp_conn_params cp;
		struct smtp_conn_result res;
		struct retry_conn_end end;
		struct retry_conn_outcome next;
		unsigned failures = 0;
		bool throttled;

		/*
		 * After a connection that ended badly, the next one waits its
		 * turn on the pool's reconnect rate: a relay that drops every
		 * connection at once does not get them all back at once.
		 */
		if (paced && (ratelimit_acquire(run->reconnects,
						&run->halt) < 0 ||
			      !send_wait_for_work(w)))
			break;
		send_conn_params(run, &cp);
		atomic_fetch_add(&run->connections, 1);
		w->sent_on_conn = 0;
		smtp_conn_run(&cp, &src, &res);
		send_return_local(w);
		send_flush(w);	/* every DONE of the connection is in */
		atomic_fetch_add(&run->connect_ms, res.connect_ms);
		atomic_fetch_add(&run->wait_ms, res.wait_ms);

		end = (struct retry_conn_end){
			.closed = res.closed, .permanent = res.permanent,
			.out_of_step = res.out_of_step,
			.messages = res.messages, .delivered = res.delivered,
			.closing_code = res.closing_code,
		};
		if (retry_conn_failed(&end))
			failures = atomic_fetch_add(&run->connect_failures,
						    1) + 1;
		else if (!end.permanent)
			atomic_store(&run->connect_failures, 0);
		retry_conn_decide(&policy, &end, failures, &backoff, &next);
		send_conn_learn(run, &end, &next, res.error);

		if (next.action == RETRY_CONN_STOP) {
			atomic_store(&run->stop_code, res.closing_code);
			send_fatal(run, res.error);
			break;
		}
		if (next.action == RETRY_CONN_GIVE_UP) {
			char msg[700];

			snprintf(msg, sizeof(msg), "giving up on %s port %s: "
				 "%s", cp.transport.host, cp.transport.port,
				 res.error);
			send_fatal(run, msg);
			break;
		}
		paced = !res.closed;
		throttled = res.closing_code != 0 &&
			    retry_throttled(res.closing_code,
					    res.closing_enhanced,
					    res.closing_text);
		/* closed because we send too much: the whole pool pauses,
		 * this connection with it */
		if (throttled) {
			send_throttle(run);
			send_backoff(run, run->p->retry.pool_backoff_ms);
		} else if (next.action == RETRY_CONN_BACKOFF) {
			send_backoff(run, retry_jitter_ms(next.backoff_ms,
							  &w->rng));
		}
	}
	send_give_back(w);
	pthread_mutex_lock(&run->lock);
	run->workers_running--;
	pthread_cond_broadcast(&run->results);
	pthread_mutex_unlock(&run->lock);
	return NULL;
}
