/*
 * retry - what to do with a recipient after a delivery attempt: sent,
 * deferred (and when to try again) or failed for good, and whether the
 * relay is throttling us so that the whole pool must slow down.
 *
 * This is the one place that maps a reply to a job state (Postfix keeps
 * the same policy in smtp_trouble.c): no other code looks at reply codes
 * to decide a recipient's fate.  It does no I/O and keeps no state; the
 * jitter comes from a random state the caller owns, so a decision is a
 * pure function of its arguments and testable as a table.
 *
 * The rules, first match wins.  "Throttle" is the test below.
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
 * now - first_attempt >= max_age (0 turns either limit off).  A deferred
 * recipient is due again after
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
};

void retry_policy_defaults(struct retry_policy *p);

enum retry_verdict {
	RETRY_SENT,
	RETRY_DEFER,
	RETRY_FAIL,
};

struct retry_outcome {
	enum retry_verdict verdict;
	int64_t next_attempt_ms;	/* DEFER: when the job is due again;
					 * else 0 */
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
 * retry_decide - the fate of one recipient after one attempt.
 *   code, enhanced ("4.2.2", "" or NULL), text: the reply, the server's
 *     or one made up locally (451 4.4.2 for a lost connection);
 *   sent: the server took the message (2xx to the end of data);
 *   attempts: attempts so far, this one included (< 1 counts as 1);
 *   first_attempt_ms, now_ms: on one clock, the one next_attempt_ms is
 *     given on (the store's wall clock);
 *   rng: xorshift state for the jitter, caller-owned (one per thread);
 *     0 is replaced by a fixed seed; NULL means no jitter.
 */
void retry_decide(const struct retry_policy *p, int code,
		  const char *enhanced, const char *text, bool sent,
		  int attempts, int64_t first_attempt_ms, int64_t now_ms,
		  uint64_t *rng, struct retry_outcome *out);

/* retry_throttled - is this reply a throttle (the test above)? */
bool retry_throttled(int code, const char *enhanced, const char *text);

/* retry_verdict_name - "sent", "deferred" or "failed" */
const char *retry_verdict_name(enum retry_verdict v);

#endif
