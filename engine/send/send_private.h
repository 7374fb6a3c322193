/*
 * send_private - what the three parts of a campaign run share: the run,
 * its jobs and its workers.  Not for use outside engine/send/.
 *
 * Who owns what:
 *   - struct send_job objects come from a pool made at the start and
 *     travel free -> ready (claimed) -> a worker -> done (a result) ->
 *     free.  Whoever holds a job owns it; the lists are under run->lock.
 *   - The store writer (the thread that called send_run) alone touches
 *     the store and everything in struct send_writer.
 *   - A worker alone touches its struct send_worker: its connection, its
 *     slots and its buffers.  What workers share with each other and the
 *     writer is under run->lock, or atomic.
 *
 * One mutex (run->lock) guards the three lists and the counters beside
 * them.  A worker takes it once per several jobs: it pops a handful into
 * a queue of its own and hands its results back in batches
 * (SEND_FLUSH_RESULTS, or whenever it would wait); rendering and all
 * network I/O happen outside the lock.
 */
#ifndef VOLLEY_SEND_PRIVATE_H
#define VOLLEY_SEND_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "message.h"
#include "recipient.h"
#include "send.h"
#include "store.h"
#include "vars_data.h"

#define SEND_CLAIM_BATCH 1000		/* send_params.claim_batch 0 */
#define SEND_LEASE_MS 600000		/* send_params.lease_ms 0 */
#define SEND_COMMIT_INTERVAL_MS 100	/* send_params.commit_interval_ms 0 */
#define SEND_COMMIT_BATCH 500		/* send_params.commit_batch 0 */
#define SEND_STOP_TIMEOUT_MS 30000	/* send_params.stop_timeout_ms 0 */
#define SEND_CONNECT_FAILURES_MAX 3	/* per connection slot, in a row */
#define SEND_FLUSH_RESULTS 8		/* results a worker holds at most */
#define SEND_IDLE_WAIT_MS 5000		/* an idle connection waits for work */
#define SEND_HELD_BYTES (8 << 20)	/* messages a connection holds, at
					 * most (or one, when larger) */
#define SEND_STORE_RETRY_MS 100		/* the first wait for a failed store */
#define SEND_STORE_RETRY_MAX_MS 5000	/* ... doubling up to this */
/* a store failing for this long, not for another process's lock (out of
 * memory or disk, I/O errors), stops the run */
#define SEND_STORE_PATIENCE_MS 60000

struct send_job {
	struct send_job *next;		/* in free, ready or done */
	int64_t id;
	size_t campaign;		/* index into params->campaigns */
	int attempts;
	int doubts;			/* in doubt before this claim */
	int64_t first_attempt_at;
	int64_t claim_id;		/* store_job.claim_id */
	const struct recipient_import *names;
	struct buf addr;		/* NUL-terminated */
	struct buf vars;
	unsigned addr_flags;
	int requeues;			/* lost with its connection, retried
					 * at once in this run */
	/* the result */
	bool tried;			/* false: hand back untried */
	bool sent;
	bool local;
	bool in_doubt;			/* sent whole, no reply came */
	int code;
	enum smtp_step step;
	char enhanced[16];
	struct buf reply;
	/* decided by the writer (send_collect), then kept until the store
	 * takes it: a result is never dropped */
	struct store_result result;
	char qid[64];			/* result.queue_id points here */
};

/* A message the worker's connection holds until its DONE. */
struct send_slot {
	bool busy;
	struct send_job *job;
	const char *rcpt[1];
	struct smtp_message m;
	struct buf msg;
	struct buf from;	/* the envelope sender, when it has a VERP
				 * token */
};

struct send_run;

struct send_worker {
	struct send_run *run;
	pthread_t thread;
	struct send_job *local;		/* popped, not yet taken */
	unsigned nlocal;
	struct send_job *results;	/* finished, not yet handed back */
	unsigned nresults;
	unsigned sent_on_conn;		/* this connection's deliveries */
	uint64_t rng;			/* the reconnect jitter's */
	size_t last_len;		/* the last message rendered, bytes */
	unsigned nslots;
	struct send_slot *slots;
	struct message_bufs bufs;
	struct vars_data vd;
	struct dkim_signer *dkim;	/* NULL: no keys configured */
	struct token_key *verp;		/* NULL: no VERP secret */
	struct token_key *unsub;	/* NULL: no unsubscribe secret */
	struct buf unsub_url;		/* the message's {{unsubscribe_url}} */
	int files_fd;			/* the rendering campaign's files
					 * folder, for send_attach */
	struct buf file;		/* a recipient's attachment */
	bool render_transient;		/* send_attach failed for now */
};

/* The store writer's own: no other thread touches these. */
struct send_writer {
	struct store *st;
	char owner[300];		/* the lease owner (store.h) */
	struct store_batch batch;	/* the last claim */
	struct recipient_names names;	/* of every import met */
	struct store_result *results;	/* one per job object */
	/*
	 * Results decided and not yet in the store: while the store fails
	 * (another process holds its lock, the disk is full) they wait here
	 * and the commit is tried again after retry_ms; claims pause.
	 */
	struct send_job *pending, **pending_tail;
	size_t npending;
	int64_t retry_at_ms, retry_ms;
	bool store_failing;		/* the last commit failed */
	int64_t claim_retry_at_ms, claim_retry_ms;	/* a claim failed */
	/* since when the store has failed without a break, 0 if it works */
	int64_t failing_since_ms;
	char store_error[512];		/* and why */
	/* lines the accounting log could not take, and why */
	uint64_t accounting_lost;
	char accounting_error[200];
	uint64_t rng;			/* the retry policy's jitter */
	size_t next_campaign;		/* claims go round the campaigns */
	bool claimable;			/* the last claim found jobs */
	bool claim_more;		/* ... or says more may be due */
	int64_t last_progress_ms;
	int64_t stop_deadline_ms;	/* 0 until the run stops */
	char error[1200];		/* why the run failed, or "" */
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
	char fatal_msg[1200];
	atomic_bool pipelining_off;
	atomic_bool halt;		/* stopping, for lock-free waits */
	/* the relay closes connections after this many messages: keep
	 * under it (0: no cap learned); and the last evidence seen, for
	 * retry_cap_learn */
	atomic_uint learned_cap, last_cap_seen;
	atomic_uint connect_failures;	/* in a row, over the pool */
	atomic_int stop_code;		/* the reply that stopped the run */
	/* reconnects after a connection that ended badly, over the pool
	 * (send_params.reconnects_per_second; NULL: no cap) */
	struct ratelimit *reconnects;
	/* summed worker times */
	atomic_llong rate_wait_ms, render_ms, connect_ms, wait_ms;
	atomic_ullong connections;
	/* a message went with a URL replaced (tmpl_notes): said once */
	atomic_bool unsafe_url_said;

	size_t npool;			/* job objects */
	struct send_worker *workers;	/* p->connections of them */
	unsigned nstarted;		/* threads started */
	int64_t started_ms;
	struct send_writer w;
};

/* send_run.c */
bool send_stop_asked(const struct send_run *run);
/* send_fatal - stop the run for a reason no retry can fix */
void send_fatal(struct send_run *run, const char *msg);
/* send_stop_claiming - no more claims: the workers drain (under lock) */
void send_stop_claiming(struct send_run *run);

/* send_worker.c: one thread per connection slot */
void *send_worker_main(void *arg);

/* send_writer.c: the store writer */
/* send_writer_open - open the store, take back a dead run's leases */
int send_writer_open(struct send_run *run, struct send_stats *stats,
		     const char **error_r);
/*
 * send_store_patience - a store call failed with error: true if it may
 * be tried again (another process's lock, or a failure not yet older
 * than SEND_STORE_PATIENCE_MS), else the run is made to stop
 */
bool send_store_patience(struct send_run *run, const char *doing,
			 const char *error);
/* send_store_works - a store call succeeded: the patience starts over */
void send_store_works(struct send_run *run);
/* send_claim - due jobs into the ready list; how many, or -1 */
long send_claim(struct send_run *run, const char **error_r);
/* send_collect - the n results in done decided by the retry policy and
 * put with the others waiting for the store */
void send_collect(struct send_run *run, struct send_job *done, size_t n);
/*
 * send_commit - record every waiting result, one transaction, counting
 * them in stats and giving the job objects back to the pool.  Returns
 * 1 if it recorded some, 0 when none waits or the retry after a failure
 * is not due (unless now is set), -1 with *error_r when the store failed
 * (the results keep waiting).
 */
int send_commit(struct send_run *run, struct send_stats *stats, bool now,
		const char **error_r);
/* send_remaining - due or queued jobs not yet claimed, for progress */
int64_t send_remaining(struct send_run *run);
/* send_writer_release - every lease still held goes back untried, but
 * those of results the store never took (their message may have left) */
int send_writer_release(struct send_run *run, const char **error_r);
/* send_writer_close - close the store and free the writer's own; the
 * imports' names stay when the run left workers behind (detached) */
void send_writer_close(struct send_run *run, bool detached);

#endif
