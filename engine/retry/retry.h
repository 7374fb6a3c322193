/*
 * retry - the one retry policy.  Four decisions, each a pure function of
 * structured fields (the reply code, the enhanced code, which command it
 * answered, the code that closed the session) and of the policy:
 *
 *   retry_decide       a recipient after an attempt: sent, deferred (and
 *                      when to try again, or held for the user) or
 *                      failed for good; whether the relay is throttling
 *                      us, so that the whole pool must slow down;
 *   retry_requeue      a message its connection lost: to another
 *                      connection at once, or deferred like any other;
 *   retry_cap_*        a relay that closes every connection after N
 *                      messages: learn N and stay under it;
 *   retry_conn_decide  after a connection ended: connect again at once,
 *                      back off, stop the run (a retry cannot help) or
 *                      give up (nothing can connect).
 *
 * No other code looks at reply codes to decide a recipient's fate or a
 * connection's next step (Postfix keeps the same policy in
 * smtp_trouble.c).  Nothing here does I/O or keeps state: the jitter
 * comes from a random state the caller owns, counters shared by threads
 * stay with the caller, so every decision is testable as a table
 * (tests/test_retry.c).  The text of a server's reply is read for one
 * thing only: the throttle and greylisting phrases below, which no code
 * expresses.  The text of volley's own messages never decides anything.
 *
 * retry_decide's rules, first match wins ("throttle" is the test below):
 *
 *   sent                          SENT
 *   2xx or 3xx, not sent          DEFER (nothing confirmed the delivery)
 *   not 200..599 (no reply)       DEFER
 *   4xx (server's or local)       DEFER, pool backoff if throttle
 *   5xx, throttle                 DEFER + pool backoff: a daily quota or
 *                                 rate limit some providers answer with
 *                                 5xx must not fail the rest of the list
 *   5xx                           FAIL
 *
 * and then a DEFER becomes FAIL once attempts >= max_attempts or
 * now - first_attempt >= max_age (0 turns either limit off).
 *
 * A message in doubt (it went whole and no reply came: the server may
 * have it) is never failed - a slow server is no reason to tell the user
 * a recipient did not get it - and is sent again at most once: it is
 * held for the user (`volley release`) when hold_in_doubt is set, when
 * it was in doubt before, or when it has run out of attempts or time;
 * else deferred like any other.  So nobody gets more than two copies.
 *
 * A deferred recipient is due again after
 *
 *   min(first_delay * factor^(attempts - 1), max_delay) * (1 +- jitter)
 *
 * (jitter after the cap, so recipients that reached the cap still spread
 * out), and for a throttle no sooner than the pool backoff.
 *
 * Throttle: the relay refuses because of how much we send, not because of
 * this recipient.  Case is ignored in texts; the reply's text is all its
 * lines.  Never a throttle:
 *   - a text that mentions greylisting: greylisting is per recipient, and
 *     pausing the pool for it would stall a campaign on every new domain;
 *   - an enhanced code about the recipient's address or mailbox (x.1.x,
 *     x.2.x): "452 4.2.2 mailbox full, too many messages" is the
 *     mailbox's problem, as is Gmail's "450 4.2.1 ... receiving mail at a
 *     rate ...".
 * Otherwise a 4xx is a throttle when it is 421, 450, 451 or 452 and
 *   - its enhanced code is 4.7.28 (rate of unsolicited mail), 4.3.2 (not
 *     accepting messages) or 4.4.5 (system congestion); or
 *   - its text says "rate limit" ("rate-limit", "ratelimit"), "too many
 *     messages", "too many connections", "throttl", "slow down",
 *     "sending quota" or "sending limit"; or
 *   - it is 421 (the server drops the whole connection) with enhanced
 *     code 4.7.0 or 4.7.1, or with "try again later" in its text.  On
 *     450/451/452 these mean a policy deferral of one recipient, most
 *     often greylisting with a terse text, so they are a plain DEFER;
 * and a 5xx is a throttle when
 *   - its enhanced code is 5.4.5 (Gmail's "daily sending quota
 *     exceeded"); or
 *   - its text says one of the phrases above; or
 *   - its text says "quota" and it has an enhanced code (other than x.1.x
 *     or x.2.x, see above).  A bare "552 Quota exceeded" is the classic
 *     full mailbox and fails.
 *
 * An enhanced code whose class differs from the reply code's ("550 4.2.2
 * ..."; RFC 3463 says they must agree) is ignored: the reply code is
 * trusted, as Postfix does, and why says so.  A code that is not of the
 * form d.ddd.ddd is ignored silently.  (smtp_reply already drops the first
 * kind, but other callers may not.)
 */
#ifndef VOLLEY_RETRY_H
#define VOLLEY_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "smtp_session.h"

struct retry_policy {
	int64_t first_delay_ms;	/* after the first attempt; default 60 s */
	int64_t max_delay_ms;	/* cap of the backoff; default 6 h */
	double factor;		/* growth per attempt (>= 1); default 2 */
	double jitter;		/* 0..1: delays vary +-jitter; default 0.2 */
	int max_attempts;	/* 0: no limit; default 8 */
	int64_t max_age_ms;	/* since the first attempt; 0: no limit;
				 * default 3 days */
	int64_t pool_backoff_ms;	/* pause of the whole pool when the
					 * relay throttles; default 60 s */
	/* a message in doubt is held for the user instead of deferred
	 * (send.in_doubt = "hold"); default false */
	bool hold_in_doubt;
	/* retry_requeue: how often one message may go straight to another
	 * connection in a run after losing its own; default 3, and 20 when
	 * the connection had delivered first (a per-connection cap the run
	 * is still learning) */
	int requeue_max;
	int requeue_max_capped;
};

void retry_policy_defaults(struct retry_policy *p);

enum retry_verdict {
	RETRY_SENT,
	RETRY_DEFER,
	RETRY_FAIL,
};

/* One attempt at one recipient: what the session's DONE event said. */
struct retry_attempt {
	int code;		/* the reply that decided: the server's, or
				 * one made up locally (451 4.4.2 for a
				 * lost connection); 0: none */
	const char *enhanced;	/* "4.2.2", "" or NULL */
	const char *text;	/* all its lines; NULL is "" */
	enum smtp_step step;	/* which command it answered */
	bool local;		/* made up by volley, not the server's */
	bool sent;		/* the server took the message (2xx to the
				 * end of data) */
	bool in_doubt;		/* it went whole and no reply came */
	int doubts;		/* times it was in doubt before this one */
	int attempts;		/* so far, this one included (< 1 is 1) */
	int64_t first_attempt_ms;	/* on the clock now_ms is on */
};

struct retry_outcome {
	enum retry_verdict verdict;
	int64_t next_attempt_ms;	/* DEFER: when the job is due again;
					 * else 0 */
	bool hold;			/* DEFER: held for the user (in doubt,
					 * see above): no date is due */
	/*
	 * The relay is throttling us: pause the whole pool for backoff_ms
	 * (ratelimit_pause).  Set whatever the verdict, also when the
	 * recipient itself has run out of attempts.
	 */
	bool pool_backoff;
	int64_t backoff_ms;		/* 0 unless pool_backoff */
	/*
	 * NULL, or static text to append to the reply when it does not speak
	 * for itself: the verdict differs from the reply's class ("gave up:
	 * too many attempts", "sending limit: deferred") or the enhanced code
	 * was ignored.
	 */
	const char *why;
};

/*
 * retry_decide - the fate of one recipient after one attempt a.
 *   now_ms: on the clock of a->first_attempt_ms and next_attempt_ms
 *     (the store's: clock_wall_ms);
 *   rng: xorshift state for the jitter, caller-owned (one per thread);
 *     0 is replaced by a fixed seed; NULL means no jitter.
 */
void retry_decide(const struct retry_policy *p, const struct retry_attempt *a,
		  int64_t now_ms, uint64_t *rng, struct retry_outcome *out);

/* retry_throttled - is this reply a throttle (the test above)? */
bool retry_throttled(int code, const char *enhanced, const char *text);

/*
 * retry_jitter_ms - ms spread over [ms / 2, ms] (rng as retry_decide's):
 * connections that failed together do not all come back at once
 */
int64_t retry_jitter_ms(int64_t ms, uint64_t *rng);

/* retry_verdict_name - "sent", "deferred" or "failed" */
const char *retry_verdict_name(enum retry_verdict v);

/*
 * retry_requeue - a message its connection lost - a 421 or a drop that
 * ended the session under it (step SMTP_STEP_SESSION), or volley's own
 * 451 for a 503 to MAIL (the server still held an older transaction) -
 * and not in doubt: nothing was wrong with the recipient, so another
 * connection takes it now rather than deferring it for minutes.  Never
 * when the relay asks us to slow down (a throttle), even after this
 * connection delivered: a per-connection cap is learned from repeated
 * closes at the same count (retry_cap_*), not guessed from a reply's
 * words.  At most requeue_max times per message and run
 * (requeue_max_capped when the connection delivered first).
 *   requeues: how often this message was requeued in this run so far;
 *   delivered: messages this connection delivered before losing it.
 */
bool retry_requeue(const struct retry_policy *p, const struct retry_attempt *a,
		   int requeues, unsigned delivered);

/*
 * retry_lost - a message its connection lost, as retry_requeue means it:
 * the server cannot have it, so when the run is stopping it goes back
 * untried rather than spend an attempt on nothing.
 */
bool retry_lost(const struct retry_attempt *a);

/* How a connection ended: from smtp_conn's result, plus what the caller
 * counted of it. */
struct retry_conn_end {
	bool closed;		/* QUIT was answered: a clean end */
	bool permanent;		/* a retry cannot help: credentials
				 * refused, a certificate that does not
				 * verify, STARTTLS required and missing */
	bool out_of_step;	/* replies did not fit their commands */
	unsigned messages;	/* messages the connection took */
	unsigned delivered;	/* of them, delivered */
	int closing_code;	/* the reply that ended the session (421),
				 * 0 if none did */
};

/*
 * retry_cap_evidence - N when the connection was closed by a 421 after
 * delivering N messages, which is what a relay that caps messages per
 * connection does; else 0.
 */
unsigned retry_cap_evidence(const struct retry_conn_end *end);

/*
 * retry_cap_learn - the cap the run keeps under from now on: learned
 * stays once known; else two pieces of evidence in a row with the same
 * N (previous, the last connection's, and evidence) make N the cap.  A
 * relay dropping connections at random never gives the same N twice in
 * a row for long, so it is not taken for a cap.
 */
unsigned retry_cap_learn(unsigned learned, unsigned previous,
			 unsigned evidence);

/* What to do after a connection ended. */
enum retry_conn_action {
	RETRY_CONN_AGAIN,	/* connect again at once */
	RETRY_CONN_BACKOFF,	/* wait backoff_ms, then connect again */
	RETRY_CONN_STOP,	/* a retry cannot help: stop the run */
	RETRY_CONN_GIVE_UP,	/* connections keep failing: stop the run */
};

struct retry_conn_policy {
	int64_t backoff_first_ms;	/* the first pause after a failure */
	int64_t backoff_max_ms;		/* pauses double up to this */
	/* failed connections in a row, over the whole pool, before giving
	 * up; 0: never */
	unsigned give_up_after;
};

struct retry_conn_outcome {
	enum retry_conn_action action;
	int64_t backoff_ms;		/* BACKOFF: how long to wait */
	/* the connection counts as a failure toward give_up_after (it was
	 * not closed cleanly and carried nothing); else the failures in a
	 * row start again from 0 */
	bool failed;
	/* the server's replies went out of step: no pipelining to it for
	 * the rest of the run */
	bool stop_pipelining;
};

/* retry_conn_failed - does this end count as a failed connection? */
bool retry_conn_failed(const struct retry_conn_end *end);

/*
 * retry_conn_decide - what next after end.
 *   failures: failed connections in a row over the pool, this one
 *     included if retry_conn_failed(end);
 *   *backoff_ms: this connection slot's next pause: 0 at the start, and
 *     kept by the caller between calls (doubled here after a failure,
 *     back to the first after a connection that carried messages).
 */
void retry_conn_decide(const struct retry_conn_policy *p,
		       const struct retry_conn_end *end, unsigned failures,
		       int64_t *backoff_ms, struct retry_conn_outcome *out);

#endif
