/*
 * send - a campaign run: the store, the templates and the SMTP engine
 * joined into `volley send` (see shared/DESIGN.md, "Data flow").
 *
 *   the calling thread, the store writer (send_writer.c): the store's one
 *     user; it reclaims leases left by a dead run, claims batches of due
 *     jobs into a bounded queue, and commits results in batches (every
 *     commit_interval_ms or commit_batch results, one transaction each);
 *   N worker threads (send_worker.c): each owns one persistent connection
 *     (smtp_conn), takes jobs from the queue as its session can take
 *     them, renders each recipient's message into buffers of its own,
 *     and hands every result back.
 * send_run.c joins them: start, the writer's loop, drain, teardown.
 *
 * Job objects come from a fixed pool sized at the start and travel
 * claim -> queue -> worker -> results -> pool; buffers grow to the
 * largest message once, so the hot path allocates nothing per message.
 *
 * Results: the retry policy (retry.h) decides everything - each reply
 * to sent, deferred (with the next attempt time, or held when in doubt
 * and retry.hold_in_doubt) or failed; a message lost with its connection
 * to another connection at once; the relay's cap of messages per
 * connection; what follows a connection's end.  Every attempt's code,
 * enhanced code and text is recorded.  A reply that says the relay is
 * throttling pauses the whole pool (ratelimit_pause).  A failure that no
 * retry can fix (credentials refused, a certificate that does not
 * verify, STARTTLS missing) or a relay nobody can connect to stops the
 * run with one message, the untried jobs given back.
 *
 * Stopping: setting *stop (a signal handler may) stops claiming; workers
 * finish the transactions in flight and QUIT; results are committed and
 * the leases of untried jobs released.  Past stop_timeout_ms the run
 * leaves the workers still busy behind (stats.detached): what they hold
 * keeps its lease, which the next run takes back, and the caller must
 * exit without freeing anything.  After SIGKILL the
 * next run reclaims the leases (store_reclaim): those jobs are due again
 * and may be sent twice (at least once; the window is the commit
 * interval plus the messages in flight).
 */
#ifndef VOLLEY_SEND_H
#define VOLLEY_SEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bounce_rules.h"
#include "dkim.h"
#include "message.h"
#include "ratelimit.h"
#include "retry.h"
#include "smtp_conn.h"
#include "store.h"

struct send_campaign {
	int64_t id;
	const char *name;
	const char *sender;		/* envelope sender; may hold {{verp}} */
	bool verp;			/* it does: a token per recipient */
	int files_fd;			/* folder of per-recipient attachments
					 * (campaign create --files), or -1 */
	int64_t created;		/* ms, for Message-IDs */
	const struct message_tmpl *tmpl;
};

struct send_stats;

struct send_params {
	const char *store_path;
	struct store_params store;
	const struct send_campaign *campaigns;
	size_t ncampaigns;

	struct smtp_conn_params conn;	/* the relay; session.max_messages is
					 * the per-connection cap */
	unsigned connections;
	struct retry_policy retry;	/* hold_in_doubt: send.in_doubt */
	/* every message is signed by the keys for its From domain; NULL
	 * or none: unsigned */
	const struct dkim_keys *dkim;
	/* the secret of {{verp}} tokens (volley.cfg verp.secret_file);
	 * NULL when no campaign's sender has one */
	const char *verp_secret;
	/*
	 * Permanent replies to RCPT and the end of data are classified by
	 * these rules (bounces.rules_file; NULL: no classifying) and
	 * recorded as bounces: a hard one suppresses the address for later
	 * campaigns, soft ones count towards bounce_policy's limit.
	 */
	const struct bounce_rules *bounce_rules;
	struct store_bounce_policy bounce_policy;
	struct ratelimit *rate;		/* NULL: no limit */
	/* connections opened again after one that ended badly (dropped, a
	 * 421, refused), over the pool, per second; 0: no cap */
	double reconnects_per_second;

	size_t claim_batch;		/* jobs per claim; 0: 500 */
	int64_t lease_ms;		/* 0: 10 minutes */
	int64_t commit_interval_ms;	/* 0: 100 */
	size_t commit_batch;		/* 0: 1000 */
	int64_t stop_timeout_ms;	/* 0: 30 s */
	bool follow;			/* keep polling for new jobs */
	/*
	 * accounting - when not NULL, one CSV line per delivery attempt is
	 * appended to it as results commit (the accounting files bulk MTAs
	 * write): time, campaign, address, result, attempt, code, enhanced
	 * code, reply, queue id.  Flushed after each commit.
	 */
	FILE *accounting;

	atomic_bool *stop;		/* set to stop (signal handler) */
	/* progress, called from the main thread about once a second and at
	 * the end; may be NULL */
	void (*progress)(void *ctx, const struct send_stats *st, bool last);
	void *progress_ctx;
	/* notice - one line the user should see while the run goes on (a
	 * server out of step: no more pipelining to it); called from the
	 * worker threads, so it must be thread-safe; may be NULL */
	void (*notice)(void *ctx, const char *line);
	void *notice_ctx;
};

/* What a run did, for the progress line and the summary. */
#define SEND_TOP_REASONS 5
struct send_stats {
	uint64_t sent, deferred, failed;	/* results committed */
	uint64_t in_flight;			/* claimed, not yet committed */
	int64_t remaining;			/* due or queued, not claimed */
	uint64_t connections;			/* opened */
	uint64_t reclaimed;			/* leases taken back at start */
	uint64_t suppressed;	/* not sent: suppressed since their import */
	int64_t elapsed_ms;
	/* where the time went, summed over the workers (ms) */
	int64_t rate_wait_ms;		/* waiting for the rate limiter */
	int64_t render_ms;		/* rendering messages */
	int64_t connect_ms;		/* connecting, TLS, greeting, AUTH */
	int64_t server_wait_ms;		/* waiting for replies */
	int64_t commit_ms;		/* committing results (main thread) */
	bool pipelining_off;		/* a server went out of step */
	/* the stop deadline passed with messages in flight: worker threads
	 * still run; the caller must exit without freeing anything */
	bool detached;
	unsigned learned_cap;		/* the relay closes connections after
					 * this many messages: the run kept
					 * under it (0: none seen) */
	/* the reply code that made the run stop for good (530: the relay
	 * wants AUTH), 0 if none did */
	int stop_code;
	/* the most frequent reasons for deferred and failed results */
	struct {
		char reply[160];
		uint64_t count;
	} top[SEND_TOP_REASONS];
};

/*
 * send_run - run until nothing is due and nothing is in flight (or, with
 * follow, until *stop).  Returns 0, or -1 with *error_r when the run had
 * to stop (the stats say what was done before).
 */
int send_run(const struct send_params *p, struct send_stats *stats,
	     const char **error_r);

#endif
