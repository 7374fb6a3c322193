/*
 * test_retry - the retry policy: a table of replies and what becomes of
 * the recipient, then the backoff schedule (growth, cap, jitter, limits,
 * overflow), in-doubt holds, and the decisions about connections: which
 * lost messages go to another connection at once, the per-connection cap,
 * and what follows a connection's end.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "retry.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define NOW (1700000000LL * SEC)	/* any wall-clock time */

enum { S = RETRY_SENT, D = RETRY_DEFER, F = RETRY_FAIL };

/* decide - retry_decide for a server's reply to the end of data */
static void decide(const struct retry_policy *p, int code,
		   const char *enhanced, const char *text, bool sent,
		   int attempts, int64_t first_attempt_ms, int64_t now_ms,
		   uint64_t *rng, struct retry_outcome *out)
{
	struct retry_attempt a = {
		.code = code, .enhanced = enhanced, .text = text,
		.step = SMTP_STEP_END, .sent = sent, .attempts = attempts,
		.first_attempt_ms = first_attempt_ms,
	};

	retry_decide(p, &a, now_ms, rng, out);
}

struct row {
	int code;
	const char *enhanced;
	const char *text;
	bool sent;
	int attempts;
	int64_t age;		/* now - first attempt */
	int verdict;
	bool pool;
	const char *why;	/* a substring of out.why; NULL: none */
	int64_t delay;		/* DEFER: next - now with no jitter; -1 any */
};

static const struct row rows[] = {
	/* sent, and 2xx/3xx that did not confirm anything */
	{ 250, "2.0.0", "Ok: queued as 4Xyz", true, 1, 0, S, false, NULL, 0 },
	{ 250, "2.0.0", "Ok", true, 9, 9 * DAY, S, false, NULL, 0 },
	{ 250, "", "Ok", false, 1, 0, D, false, "nothing confirmed", MIN },
	{ 354, "", "go ahead", false, 2, 0, D, false, "nothing confirmed",
	  2 * MIN },
	{ 0, NULL, NULL, false, 1, 0, D, false, "no valid reply code", MIN },
	{ 600, "", "", false, 1, 0, D, false, "no valid reply code", MIN },

	/* 4xx: plain deferrals, with the schedule 1, 2, 4 ... minutes */
	{ 452, "4.2.2", "Mailbox full", false, 1, 0, D, false, NULL, MIN },
	{ 452, "4.2.2", "mailbox full: too many messages", false, 2, 0, D,
	  false, NULL, 2 * MIN },
	{ 450, "4.2.1", "The user you are trying to contact is receiving "
	  "mail at a rate that prevents additional messages from being "
	  "delivered", false, 3, 0, D, false, NULL, 4 * MIN },
	{ 451, "4.4.2", "connection lost", false, 1, 0, D, false, NULL,
	  MIN },	/* local */
	{ 451, "4.5.0", "", false, 1, 0, D, false, NULL, MIN },
	{ 451, "4.3.0", "Temporary lookup failure, try again later", false,
	  1, 0, D, false, NULL, MIN },
	{ 454, "4.7.0", "TLS not available due to local problem", false, 1,
	  0, D, false, NULL, MIN },
	{ 421, "", "Service not available, closing channel", false, 1, 0, D,
	  false, NULL, MIN },
	{ 451, "4.7.1", NULL, false, 1, 0, D, false, NULL, MIN },

	/* greylisting is per recipient: never a pool backoff */
	{ 451, "4.7.1", "greylisted", false, 1, 0, D, false, NULL, MIN },
	{ 450, "4.2.0", "Recipient address rejected: Greylisted, see "
	  "http://postgrey.schweikert.ch/help/example.com.html", false, 1, 0,
	  D, false, NULL, MIN },
	{ 451, "4.7.1", "Greylisting in action, please come back later",
	  false, 1, 0, D, false, NULL, MIN },
	{ 451, "4.7.1", "Please try again later", false, 1, 0, D, false,
	  NULL, MIN },
	{ 421, "4.7.1", "Gray-listed, try again later", false, 1, 0, D,
	  false, NULL, MIN },
	{ 450, "4.7.1", "too many messages, you are GREYLISTED", false, 1, 0,
	  D, false, NULL, MIN },

	/* 4xx throttles: the whole pool backs off */
	{ 421, "4.7.0", "Try again later, closing connection.", false, 1, 0,
	  D, true, NULL, MIN },
	{ 421, "4.7.0", "[TSS04] Messages from 192.0.2.1 temporarily "
	  "deferred due to unexpected volume or user complaints", false, 1,
	  0, D, true, NULL, MIN },
	{ 421, "4.7.1", "go away for a while", false, 1, 0, D, true, NULL,
	  MIN },
	{ 421, "", "Too many connections from your IP", false, 1, 0, D,
	  true, NULL, MIN },
	{ 421, "", "try AGAIN later", false, 1, 0, D, true, NULL, MIN },
	{ 421, "4.7.28", "Our system has detected an unusual rate of "
	  "unsolicited mail", false, 2, 0, D, true, NULL, 2 * MIN },
	{ 450, "4.7.1", "Client host rejected: rate limit exceeded", false,
	  1, 0, D, true, NULL, MIN },
	{ 451, "4.3.2", "System not accepting network messages", false, 1,
	  0, D, true, NULL, MIN },
	{ 451, "4.4.5", "Insufficient system resources", false, 1, 0, D,
	  true, NULL, MIN },
	{ 451, "", "Ratelimit exceeded", false, 1, 0, D, true, NULL, MIN },
	{ 451, "", "Rate-limited, please wait", false, 1, 0, D, true, NULL,
	  MIN },
	{ 450, "", "Requested action THROTTLED", false, 1, 0, D, true, NULL,
	  MIN },
	{ 452, "4.5.3", "Slow down", false, 1, 0, D, true, NULL, MIN },
	{ 451, "", "first line\nRATE LIMIT reached", false, 1, 0, D, true,
	  NULL, MIN },
	{ 451, "", "Daily sending quota exceeded", false, 1, 0, D, true,
	  NULL, MIN },
	/* only 421/450/451/452 */
	{ 432, "4.7.12", "rate limit", false, 1, 0, D, false, NULL, MIN },
	/* a malformed enhanced code is ignored, silently */
	{ 421, "4.7", "closing", false, 1, 0, D, false, NULL, MIN },
	{ 421, "4.7.0x", "closing", false, 1, 0, D, false, NULL, MIN },

	/* 5xx: failed for good */
	{ 550, "5.1.1", "No such user", false, 1, 0, F, false, NULL, 0 },
	{ 552, "5.2.2", "Quota exceeded", false, 1, 0, F, false, NULL, 0 },
	{ 552, "", "Quota exceeded (mailbox for user is full)", false, 1, 0,
	  F, false, NULL, 0 },
	{ 552, "5.2.2", "Mailbox full: too many messages", false, 1, 0, F,
	  false, NULL, 0 },
	{ 554, "5.7.1", "Message rejected as spam", false, 1, 0, F, false,
	  NULL, 0 },
	{ 550, "5.7.1", "Client host blocked using zen.spamhaus.org", false,
	  1, 0, F, false, NULL, 0 },
	{ 554, "5.6.3", "8-bit data not accepted", false, 1, 0, F, false,
	  NULL, 0 },
	{ 535, "5.7.8", "Authentication credentials invalid", false, 1, 0, F,
	  false, NULL, 0 },

	/* 5xx that are sending limits: deferred, and the pool backs off */
	{ 550, "5.4.5", "Daily user sending quota exceeded", false, 1, 0, D,
	  true, "sending limit", MIN },
	{ 550, "5.4.5", "", false, 1, 0, D, true, "sending limit", MIN },
	{ 550, "5.7.1", "Daily sending quota exceeded", false, 2, 0, D, true,
	  "sending limit", 2 * MIN },
	{ 550, "5.7.0", "Quota exceeded for this sender", false, 1, 0, D,
	  true, "sending limit", MIN },
	{ 554, "", "Too many messages, try later", false, 1, 0, D, true,
	  "sending limit", MIN },
	{ 550, "5.7.1", "Throttling failure: Maximum sending rate exceeded",
	  false, 1, 0, D, true, "sending limit", MIN },
	{ 550, "5.1.1", "unknown user; rate limit", false, 1, 0, F, false,
	  NULL, 0 },
	/* a 5xx sending limit still runs out of attempts */
	{ 550, "5.4.5", "Daily user sending quota exceeded", false, 8, 0, F,
	  true, "too many attempts", 0 },

	/* enhanced code of the other class: the reply code wins */
	{ 550, "4.2.2", "mailbox full", false, 1, 0, F, false, "contradicts",
	  0 },
	{ 450, "5.1.1", "no such user", false, 1, 0, D, false, "contradicts",
	  MIN },
	{ 451, "5.7.28", "unusual rate", false, 1, 0, D, false,
	  "contradicts", MIN },
	{ 550, "2.0.0", "ok?", false, 1, 0, F, false, "contradicts", 0 },

	/* attempts and age, at the boundaries (defaults: 8 and 3 days) */
	{ 451, "4.7.1", "later", false, 7, 0, D, false, NULL, 64 * MIN },
	{ 451, "4.7.1", "later", false, 8, 0, F, false, "too many attempts",
	  0 },
	{ 451, "4.7.1", "later", false, 9, 0, F, false, "too many attempts",
	  0 },
	{ 451, "4.7.1", "later", false, 1, 3 * DAY - 1, D, false, NULL, MIN },
	{ 451, "4.7.1", "later", false, 1, 3 * DAY, F, false, "too old", 0 },
	{ 421, "4.7.0", "rate limit", false, 8, 0, F, true,
	  "too many attempts", 0 },
	{ 421, "4.7.0", "rate limit", false, 2, 4 * DAY, F, true, "too old",
	  0 },
	{ 250, "", "", false, 8, 0, F, false, "too many attempts", 0 },
	{ 451, "", "later", false, 0, 0, D, false, NULL, MIN },
	{ 451, "", "later", false, -5, -DAY, D, false, NULL, MIN },
};

static void check_row(const struct retry_policy *p, const struct row *r,
		      size_t i)
{
	struct retry_outcome out;
	char what[160];

	snprintf(what, sizeof(what), "row %zu: %d %s %s", i, r->code,
		 r->enhanced != NULL ? r->enhanced : "(null)",
		 r->text != NULL ? r->text : "(null)");
	memset(&out, 0x5a, sizeof(out));
	decide(p, r->code, r->enhanced, r->text, r->sent, r->attempts,
	       NOW - r->age, NOW, NULL, &out);
	if ((int)out.verdict != r->verdict || out.pool_backoff != r->pool)
		fail_msg("%s: got %s pool %d, want %s pool %d", what,
			 retry_verdict_name(out.verdict), out.pool_backoff,
			 retry_verdict_name(r->verdict), r->pool);
	if (r->why == NULL && out.why != NULL)
		fail_msg("%s: unexpected why \"%s\"", what, out.why);
	if (r->why != NULL &&
	    (out.why == NULL || strstr(out.why, r->why) == NULL))
		fail_msg("%s: why \"%s\", want \"%s\"", what,
			 out.why != NULL ? out.why : "(null)", r->why);
	if (out.verdict == RETRY_DEFER) {
		if (r->delay >= 0 && out.next_attempt_ms - NOW != r->delay)
			fail_msg("%s: delay %lld, want %lld", what,
				 (long long)(out.next_attempt_ms - NOW),
				 (long long)r->delay);
	} else if (out.next_attempt_ms != 0) {
		fail_msg("%s: next_attempt_ms set on %s", what,
			 retry_verdict_name(out.verdict));
	}
	if (out.pool_backoff != (out.backoff_ms == MIN))
		fail_msg("%s: backoff_ms %lld", what,
			 (long long)out.backoff_ms);
	/* the public test agrees with the decision */
	if (r->code >= 200 && r->code <= 599 && r->code / 100 != 2 &&
	    retry_throttled(r->code, r->enhanced, r->text) != r->pool)
		fail_msg("%s: retry_throttled disagrees", what);
}

static void test_table(void **state)
{
	struct retry_policy p;

	(void)state;
	retry_policy_defaults(&p);
	p.jitter = 0;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(&p, &rows[i], i);
}

static void test_defaults(void **state)
{
	struct retry_policy p;

	(void)state;
	retry_policy_defaults(&p);
	assert_int_equal(p.first_delay_ms, 60 * SEC);
	assert_int_equal(p.max_delay_ms, 6 * HOUR);
	assert_true(p.factor == 2.0);
	assert_true(p.jitter == 0.2);
	assert_int_equal(p.max_attempts, 8);
	assert_int_equal(p.max_age_ms, 3 * DAY);
	assert_int_equal(p.pool_backoff_ms, 60 * SEC);
	assert_string_equal(retry_verdict_name(RETRY_SENT), "sent");
	assert_string_equal(retry_verdict_name(RETRY_DEFER), "deferred");
	assert_string_equal(retry_verdict_name(RETRY_FAIL), "failed");
}

static int64_t delay_of(const struct retry_policy *p, int attempts,
			uint64_t *rng)
{
	struct retry_outcome out;

	decide(p, 451, "4.3.0", "later", false, attempts, NOW, NOW,
	       rng, &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
	return out.next_attempt_ms - NOW;
}

/* 1, 2, 4 ... minutes up to 6 hours, and 6 hours from then on */
static void test_backoff_grows_and_caps(void **state)
{
	struct retry_policy p;
	int64_t want = MIN, prev = 0;

	(void)state;
	retry_policy_defaults(&p);
	p.jitter = 0;
	p.max_attempts = 0;
	p.max_age_ms = 0;
	for (int n = 1; n <= 40; n++) {
		int64_t d = delay_of(&p, n, NULL);

		assert_int_equal(d, want < 6 * HOUR ? want : 6 * HOUR);
		assert_true(d >= prev);
		prev = d;
		want *= 2;
		if (want > 6 * HOUR)
			want = 6 * HOUR;
	}
	assert_int_equal(delay_of(&p, 9, NULL), 256 * MIN);
	assert_int_equal(delay_of(&p, 10, NULL), 6 * HOUR);

	/* a factor of 3 and a cap of one hour */
	p.factor = 3;
	p.max_delay_ms = HOUR;
	assert_int_equal(delay_of(&p, 1, NULL), MIN);
	assert_int_equal(delay_of(&p, 2, NULL), 3 * MIN);
	assert_int_equal(delay_of(&p, 4, NULL), 27 * MIN);
	assert_int_equal(delay_of(&p, 5, NULL), HOUR);

	/* odd policies: a factor below 1 is 1, no first delay is now */
	p.factor = 0.5;
	assert_int_equal(delay_of(&p, 5, NULL), MIN);
	p.first_delay_ms = 0;
	p.factor = 2;
	assert_int_equal(delay_of(&p, 5, NULL), 0);
	assert_int_equal(delay_of(&p, 1000, NULL), 0);
}

/* jitter: within +-jitter, spread over it, same seed same sequence */
static void test_jitter(void **state)
{
	struct retry_policy p;
	uint64_t a = 42, b = 42, c = 43, z = 0;
	int64_t lo = INT64_MAX, hi = 0, base = 4 * MIN;
	bool differs = false;

	(void)state;
	retry_policy_defaults(&p);
	p.max_attempts = 0;
	for (int i = 0; i < 10000; i++) {
		int64_t d = delay_of(&p, 3, &a);

		assert_true(d >= base * 8 / 10 && d <= base * 12 / 10);
		assert_int_equal(d, delay_of(&p, 3, &b));
		if (d != delay_of(&p, 3, &c))
			differs = true;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(differs);
	assert_true(lo < base * 81 / 100 && hi > base * 119 / 100);

	/* jitter applies at the cap too, so capped recipients spread out */
	lo = INT64_MAX;
	hi = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t d = delay_of(&p, 50, &a);

		assert_true(d >= 6 * HOUR * 8 / 10 && d <= 6 * HOUR * 12 / 10);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(lo < 6 * HOUR * 85 / 100 && hi > 6 * HOUR * 115 / 100);

	/* a zero state is seeded and then moves; no rng, no jitter */
	delay_of(&p, 1, &z);
	assert_true(z != 0);
	assert_int_equal(delay_of(&p, 3, NULL), base);

	/* jitter beyond 1 is 1: never negative */
	p.jitter = 5;
	for (int i = 0; i < 1000; i++) {
		int64_t d = delay_of(&p, 3, &a);

		assert_true(d >= 0 && d <= 2 * base);
	}
}

/* the pool backoff is also the least a throttled recipient waits */
static void test_pool_backoff(void **state)
{
	struct retry_policy p;
	struct retry_outcome out;

	(void)state;
	retry_policy_defaults(&p);
	p.jitter = 0;
	p.pool_backoff_ms = 10 * MIN;
	decide(&p, 421, "4.7.0", "rate limit exceeded", false, 1, NOW,
	       NOW, NULL, &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
	assert_true(out.pool_backoff);
	assert_int_equal(out.backoff_ms, 10 * MIN);
	assert_int_equal(out.next_attempt_ms, NOW + 10 * MIN);
	assert_null(out.why);
	/* later attempts: the schedule when it is longer */
	decide(&p, 421, "4.7.0", "rate limit exceeded", false, 6, NOW,
	       NOW, NULL, &out);
	assert_int_equal(out.next_attempt_ms, NOW + 32 * MIN);
	/* a plain deferral does not touch the pool */
	decide(&p, 451, "4.7.1", "greylisted", false, 1, NOW, NOW,
	       NULL, &out);
	assert_false(out.pool_backoff);
	assert_int_equal(out.backoff_ms, 0);
	assert_int_equal(out.next_attempt_ms, NOW + MIN);
}

/* huge attempts, huge policies, clocks at the ends of int64: no
 * overflow (UBSan watches) and the next attempt is never in the past */
static void test_no_overflow(void **state)
{
	static const int attempts[] = { 1, 2, 63, 64, 1000, 100000,
					INT_MAX };
	struct retry_policy p;
	struct retry_outcome out;
	uint64_t rng = 7;

	(void)state;
	retry_policy_defaults(&p);
	p.max_attempts = 0;
	p.max_age_ms = 0;
	for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		int64_t d = delay_of(&p, attempts[i], &rng);

		assert_true(d > 0 && d <= 6 * HOUR * 12 / 10);
	}
	p.max_delay_ms = INT64_MAX;
	p.first_delay_ms = INT64_MAX;
	p.factor = 1e308;
	p.pool_backoff_ms = INT64_MAX;
	for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
		decide(&p, 421, "", "rate limit", false, attempts[i],
		       INT64_MIN, INT64_MAX - 5, &rng, &out);
		assert_int_equal(out.verdict, RETRY_DEFER);
		assert_int_equal(out.next_attempt_ms, INT64_MAX);
		decide(&p, 451, "", "", false, attempts[i], 0, 0, &rng,
		       &out);
		assert_true(out.next_attempt_ms > 0);
	}
	/* a max age reached from a first attempt far in the past */
	p.max_age_ms = 3 * DAY;
	decide(&p, 451, "", "", false, 1, INT64_MIN, INT64_MAX, &rng,
	       &out);
	assert_int_equal(out.verdict, RETRY_FAIL);
	assert_string_equal(out.why, "gave up: too old");
	/* the first attempt in the future (clock stepped back): age 0 */
	decide(&p, 451, "", "", false, 1, NOW + DAY * 10, NOW, &rng,
	       &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
}

/* in doubt: deferred as usual, or held for the user when asked */
static void test_in_doubt(void **state)
{
	struct retry_policy p;
	struct retry_outcome out;
	struct retry_attempt a = {
		.code = 451, .enhanced = "4.4.2", .text = "no reply to the end "
		"of a message", .step = SMTP_STEP_SESSION, .local = true,
		.in_doubt = true, .attempts = 1, .first_attempt_ms = NOW,
	};

	(void)state;
	retry_policy_defaults(&p);
	p.jitter = 0;
	retry_decide(&p, &a, NOW, NULL, &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
	assert_false(out.hold);
	assert_int_equal(out.next_attempt_ms, NOW + MIN);
	p.hold_in_doubt = true;
	retry_decide(&p, &a, NOW, NULL, &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
	assert_true(out.hold);
	/* only a message in doubt is held */
	a.in_doubt = false;
	retry_decide(&p, &a, NOW, NULL, &out);
	assert_false(out.hold);

	/* without hold: sent again once, then held */
	p.hold_in_doubt = false;
	a.in_doubt = true;
	a.doubts = 1;
	retry_decide(&p, &a, NOW, NULL, &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
	assert_true(out.hold);
	assert_string_equal(out.why, "held: in doubt a second time");

	/* in doubt is never failed: out of attempts or time, it is held */
	a.doubts = 0;
	a.attempts = 8;
	retry_decide(&p, &a, NOW, NULL, &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
	assert_true(out.hold);
	assert_non_null(strstr(out.why, "out of attempts"));
	a.attempts = 1;
	a.first_attempt_ms = NOW - 4 * DAY;
	retry_decide(&p, &a, NOW, NULL, &out);
	assert_int_equal(out.verdict, RETRY_DEFER);
	assert_true(out.hold);
	/* ... while the same reply, not in doubt, fails */
	a.in_doubt = false;
	retry_decide(&p, &a, NOW, NULL, &out);
	assert_int_equal(out.verdict, RETRY_FAIL);
	assert_false(out.hold);
}

/* a message its connection lost: to another connection now, or not */
static const struct requeue_row {
	int code;
	const char *enhanced;
	const char *text;
	enum smtp_step step;
	bool local, sent, in_doubt;
	int requeues;
	unsigned delivered;	/* by its connection, before the loss */
	bool want;
} requeue_rows[] = {
	/* the connection dropped under it: another one takes it */
	{ 451, "4.4.2", "the server closed the connection", SMTP_STEP_SESSION,
	  true, false, false, 0, 0, true },
	{ 451, "4.4.2", "connection lost", SMTP_STEP_SESSION, true, false,
	  false, 2, 0, true },
	{ 451, "4.4.2", "connection lost", SMTP_STEP_SESSION, true, false,
	  false, 3, 0, false },	/* requeue_max */
	/* but not when the server may have it */
	{ 451, "4.4.2", "no reply", SMTP_STEP_SESSION, true, false, true, 0,
	  0, false },
	/* a plain 421 ended the session */
	{ 421, "", "closing channel", SMTP_STEP_SESSION, false, false, false,
	  0, 0, true },
	/* a 421 throttle with nothing delivered: the pool must slow down */
	{ 421, "4.7.0", "too many messages", SMTP_STEP_SESSION, false, false,
	  false, 0, 0, false },
	{ 421, "", "rate limit exceeded", SMTP_STEP_SESSION, false, false,
	  false, 0, 0, false },
	/* ... and after deliveries on that connection: the pool pauses
	 * all the same (a cap is learned from repeated closes instead) */
	{ 421, "4.7.0", "too many messages", SMTP_STEP_SESSION, false, false,
	  false, 0, 5, false },
	{ 421, "4.7.28", "slow down", SMTP_STEP_SESSION, false, false,
	  false, 0, 5, false },
	/* a 421 that is no throttle after deliveries: a cap, go on */
	{ 421, "4.3.0", "closing: limit per connection", SMTP_STEP_SESSION,
	  false, false, false, 0, 5, true },
	{ 421, "4.3.0", "closing: limit per connection", SMTP_STEP_SESSION,
	  false, false, false, 19, 5, true },
	{ 421, "4.3.0", "closing: limit per connection", SMTP_STEP_SESSION,
	  false, false, false, 20, 5, false },	/* requeue_max_capped */
	/* volley's 451 for a 503 to MAIL: the server held a transaction */
	{ 451, "4.5.0", "the server answered MAIL with 503", SMTP_STEP_MAIL,
	  true, false, false, 0, 0, true },
	/* replies about this message: not lost, decided */
	{ 451, "4.3.0", "try later", SMTP_STEP_DATA, false, false, false, 0,
	  0, false },
	{ 451, "4.7.1", "greylisted", SMTP_STEP_RCPT, false, false, false, 0,
	  0, false },
	{ 550, "5.1.1", "no such user", SMTP_STEP_RCPT, false, false, false,
	  0, 0, false },
	{ 552, "5.3.4", "too big", SMTP_STEP_NONE, true, false, false, 0, 0,
	  false },
	{ 250, "2.0.0", "queued", SMTP_STEP_END, false, true, false, 0, 0,
	  false },
};

/* connections that failed together come back spread over [ms/2, ms] */
static void test_reconnect_jitter(void **state)
{
	uint64_t rng = 12345;
	int64_t lo = INT64_MAX, hi = 0;

	(void)state;
	assert_int_equal(retry_jitter_ms(0, &rng), 0);
	assert_int_equal(retry_jitter_ms(1, &rng), 1);
	assert_int_equal(retry_jitter_ms(1000, NULL), 1000);
	for (int i = 0; i < 10000; i++) {
		int64_t ms = retry_jitter_ms(1000, &rng);

		assert_true(ms >= 500 && ms <= 1000);
		lo = ms < lo ? ms : lo;
		hi = ms > hi ? ms : hi;
	}
	/* spread over the whole range, not one value */
	assert_true(lo < 510);
	assert_true(hi > 990);
	for (int i = 0; i < 1000; i++) {
		int64_t ms = retry_jitter_ms(3, &rng);

		assert_true(ms >= 2 && ms <= 3);
	}
}

static void test_requeue(void **state)
{
	struct retry_policy p;

	(void)state;
	retry_policy_defaults(&p);
	assert_int_equal(p.requeue_max, 3);
	assert_int_equal(p.requeue_max_capped, 20);
	for (size_t i = 0; i < sizeof(requeue_rows) / sizeof(requeue_rows[0]);
	     i++) {
		const struct requeue_row *r = &requeue_rows[i];
		struct retry_attempt a = {
			.code = r->code, .enhanced = r->enhanced,
			.text = r->text, .step = r->step, .local = r->local,
			.sent = r->sent, .in_doubt = r->in_doubt,
			.attempts = 1,
		};

		if (retry_requeue(&p, &a, r->requeues, r->delivered) != r->want)
			fail_msg("requeue row %zu (%d %s, %s): want %d", i,
				 r->code, r->text, smtp_step_name(r->step),
				 r->want);
	}
}

/* the per-connection cap: the same N twice in a row, from 421s only */
static void test_cap(void **state)
{
	struct retry_conn_end end = { .closing_code = 421, .messages = 6,
				      .delivered = 5 };

	(void)state;
	assert_int_equal(retry_cap_evidence(&end), 5);
	end.delivered = 0;
	assert_int_equal(retry_cap_evidence(&end), 0);
	end.delivered = 5;
	end.closing_code = 0;		/* dropped without a reply */
	assert_int_equal(retry_cap_evidence(&end), 0);
	end.closing_code = 554;
	assert_int_equal(retry_cap_evidence(&end), 0);
	end.closing_code = 421;
	end.closed = true;		/* QUIT answered: no cap */
	assert_int_equal(retry_cap_evidence(&end), 0);

	assert_int_equal(retry_cap_learn(0, 0, 5), 0);	/* first sight */
	assert_int_equal(retry_cap_learn(0, 5, 5), 5);	/* confirmed */
	assert_int_equal(retry_cap_learn(0, 4, 5), 0);	/* random drops */
	assert_int_equal(retry_cap_learn(0, 5, 0), 0);
	assert_int_equal(retry_cap_learn(7, 5, 5), 7);	/* once learned */
	assert_int_equal(retry_cap_learn(7, 0, 0), 7);
}

/* after a connection: again, back off, stop, give up */
static void test_conn(void **state)
{
	struct retry_conn_policy p = { .backoff_first_ms = 1000,
				       .backoff_max_ms = 30000,
				       .give_up_after = 24 };
	struct retry_conn_end refused = { 0 };
	struct retry_conn_end clean = { .closed = true, .messages = 100,
					.delivered = 100 };
	struct retry_conn_end capped = { .messages = 11, .delivered = 10,
					 .closing_code = 421 };
	struct retry_conn_end denied = { .permanent = true };
	struct retry_conn_outcome out;
	int64_t backoff = 0;
	static const int64_t pauses[] = { 1000, 2000, 4000, 8000, 16000,
					  30000, 30000 };

	(void)state;
	/* a failure: the first pause, then doubling to the cap */
	for (size_t i = 0; i < sizeof(pauses) / sizeof(pauses[0]); i++) {
		retry_conn_decide(&p, &refused, (unsigned)i + 1, &backoff,
				  &out);
		assert_int_equal(out.action, RETRY_CONN_BACKOFF);
		assert_true(out.failed);
		assert_int_equal(out.backoff_ms, pauses[i]);
	}
	/* a connection that carried messages: again at once, pauses and
	 * failures start over */
	retry_conn_decide(&p, &capped, 0, &backoff, &out);
	assert_int_equal(out.action, RETRY_CONN_AGAIN);
	assert_false(out.failed);
	assert_int_equal(backoff, 1000);
	retry_conn_decide(&p, &clean, 0, &backoff, &out);
	assert_int_equal(out.action, RETRY_CONN_AGAIN);
	assert_false(out.failed);
	assert_false(retry_conn_failed(&clean));
	assert_false(retry_conn_failed(&capped));
	assert_true(retry_conn_failed(&refused));
	/* a retry cannot help: stop, and it is no "failure" to count */
	retry_conn_decide(&p, &denied, 0, &backoff, &out);
	assert_int_equal(out.action, RETRY_CONN_STOP);
	assert_false(out.failed);
	/* failures in a row over the pool: give up at the limit */
	retry_conn_decide(&p, &refused, 23, &backoff, &out);
	assert_int_equal(out.action, RETRY_CONN_BACKOFF);
	retry_conn_decide(&p, &refused, 24, &backoff, &out);
	assert_int_equal(out.action, RETRY_CONN_GIVE_UP);
	/* no limit: never */
	p.give_up_after = 0;
	retry_conn_decide(&p, &refused, 100000, &backoff, &out);
	assert_int_equal(out.action, RETRY_CONN_BACKOFF);
	/* replies out of step: stop pipelining, whatever else happens */
	capped.out_of_step = true;
	retry_conn_decide(&p, &capped, 0, &backoff, &out);
	assert_true(out.stop_pipelining);
	assert_int_equal(out.action, RETRY_CONN_AGAIN);
	refused.out_of_step = true;
	retry_conn_decide(&p, &refused, 1, &backoff, &out);
	assert_true(out.stop_pipelining);
	/* an odd policy: no pause at all, no cap below the first */
	p = (struct retry_conn_policy){ 0 };
	backoff = 0;
	retry_conn_decide(&p, &refused, 1, &backoff, &out);
	assert_int_equal(out.action, RETRY_CONN_BACKOFF);
	assert_int_equal(out.backoff_ms, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_backoff_grows_and_caps),
		cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_pool_backoff),
		cmocka_unit_test(test_no_overflow),
		cmocka_unit_test(test_in_doubt),
		cmocka_unit_test(test_requeue),
		cmocka_unit_test(test_reconnect_jitter),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_conn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
