/*
 * retry - the one retry policy (see retry.h for the rules).
 */
#include "retry.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

/* No delay beyond this, whatever the policy says: keeps every sum below
 * in range (about 100 years). */
#define RETRY_DELAY_LIMIT_MS 3153600000000LL

#define RETRY_SEED 0x9e3779b97f4a7c15ULL

/* An RFC 3463 code split up; class 0 means none (or ignored). */
struct retry_enh {
	int klass, subject, detail;
};

void retry_policy_defaults(struct retry_policy *p)
{
	p->first_delay_ms = 60 * 1000;
	p->max_delay_ms = 6 * 3600 * 1000;
	p->factor = 2.0;
	p->jitter = 0.2;
	p->max_attempts = 8;
	p->max_age_ms = 3LL * 24 * 3600 * 1000;
	p->pool_backoff_ms = 60 * 1000;
	p->hold_in_doubt = false;
	p->requeue_max = 3;
	p->requeue_max_capped = 20;
}

const char *retry_verdict_name(enum retry_verdict v)
{
	switch (v) {
	case RETRY_SENT:
		return "sent";
	case RETRY_DEFER:
		return "deferred";
	case RETRY_FAIL:
		return "failed";
	}
	return "?";
}

/* retry_number - 1 to 3 digits at *sp, advancing it; -1 if none */
static int retry_number(const char **sp)
{
	const char *s = *sp;
	int v = 0, n = 0;

	while (n < 3 && s[n] >= '0' && s[n] <= '9') {
		v = v * 10 + (s[n] - '0');
		n++;
	}
	if (n == 0 || (s[n] >= '0' && s[n] <= '9'))
		return -1;
	*sp = s + n;
	return v;
}

/*
 * retry_parse_enhanced - "class.subject.detail" into e; false (e zeroed)
 * if s is NULL, empty or not of that form.
 */
static bool retry_parse_enhanced(const char *s, struct retry_enh *e)
{
	struct retry_enh v;

	memset(e, 0, sizeof(*e));
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return false;
	v.klass = s[0] - '0';
	s += 2;
	v.subject = retry_number(&s);
	if (v.subject < 0 || *s++ != '.')
		return false;
	v.detail = retry_number(&s);
	if (v.detail < 0 || *s != '\0')
		return false;
	*e = v;
	return true;
}

/* retry_has - does text contain word, ignoring ASCII case? */
static bool retry_has(const char *text, const char *word)
{
	size_t n = strlen(word);

	for (; *text != '\0'; text++) {
		size_t i = 0;

		while (i < n && text[i] != '\0' &&
		       tolower((unsigned char)text[i]) == word[i])
			i++;
		if (i == n)
			return true;
	}
	return false;
}

/* retry_has_any - does text contain one of the words (lower case)? */
static bool retry_has_any(const char *text, const char *const *words)
{
	for (; *words != NULL; words++)
		if (retry_has(text, *words))
			return true;
	return false;
}

/* Phrases that mean "you send too much", on a 4xx or a 5xx. */
static const char *const retry_throttle_words[] = {
	"rate limit", "rate-limit", "ratelimit", "too many messages",
	"too many connections", "throttl", "slow down", "sending quota",
	"sending limit", NULL,
};

static const char *const retry_greylist_words[] = {
	"greylist", "graylist", "grey-list", "gray-list", "grey list",
	"gray list", NULL,
};

static bool retry_enh_is(const struct retry_enh *e, int subject, int detail)
{
	return e->subject == subject && e->detail == detail;
}

/*
 * retry_throttle - the test of retry.h, given the reply's class, the
 * enhanced code already checked against it (class 0: none), and a text.
 */
static bool retry_throttle(int code, const struct retry_enh *e,
			   const char *text)
{
	if (retry_has_any(text, retry_greylist_words))
		return false;
	if (e->klass != 0 && (e->subject == 1 || e->subject == 2))
		return false;
	if (code / 100 == 4) {
		if (code != 421 && code != 450 && code != 451 && code != 452)
			return false;
		if (retry_enh_is(e, 7, 28) || retry_enh_is(e, 3, 2) ||
		    retry_enh_is(e, 4, 5))
			return true;
		if (retry_has_any(text, retry_throttle_words))
			return true;
		return code == 421 && (retry_enh_is(e, 7, 0) ||
				       retry_enh_is(e, 7, 1) ||
				       retry_has(text, "try again later"));
	}
	if (code / 100 == 5) {
		if (retry_enh_is(e, 4, 5))
			return true;
		if (retry_has_any(text, retry_throttle_words))
			return true;
		return e->klass != 0 && retry_has(text, "quota");
	}
	return false;
}

/*
 * retry_enhanced - the enhanced code to go by: parsed, and dropped when
 * its class contradicts the reply code.  Returns true if it was dropped
 * for that reason.
 */
static bool retry_enhanced(int code, const char *enhanced,
			   struct retry_enh *e)
{
	if (!retry_parse_enhanced(enhanced, e))
		return false;
	if (e->klass == code / 100)
		return false;
	memset(e, 0, sizeof(*e));
	return true;
}

bool retry_throttled(int code, const char *enhanced, const char *text)
{
	struct retry_enh e;

	if (code < 200 || code > 599)
		return false;
	retry_enhanced(code, enhanced, &e);
	return retry_throttle(code, &e, text != NULL ? text : "");
}

/* retry_random - xorshift64*, one uniform double in [0, 1) */
static double retry_random(uint64_t *s)
{
	uint64_t x = *s != 0 ? *s : RETRY_SEED;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) /
	       9007199254740992.0;
}

/* retry_pow - x^n for n >= 0 by squaring (no libm); may be inf */
static double retry_pow(double x, int n)
{
	double r = 1;

	for (; n > 0; n >>= 1) {
		if (n & 1)
			r *= x;
		x *= x;
	}
	return r;
}

/*
 * retry_delay - the backoff after attempt number attempts: computed in
 * double, where factor^999 is merely large and overflow is inf, which
 * the cap then catches (!(d <= cap) also catches NaN).
 */
static int64_t retry_delay(const struct retry_policy *p, int attempts,
			   uint64_t *rng)
{
	double first = p->first_delay_ms > 0 ? (double)p->first_delay_ms : 0;
	double cap = p->max_delay_ms > 0 ? (double)p->max_delay_ms :
		     (double)RETRY_DELAY_LIMIT_MS;
	double factor = p->factor >= 1 ? p->factor : 1;
	double jitter = p->jitter > 0 ? (p->jitter < 1 ? p->jitter : 1) : 0;
	double d;

	d = first > 0 ? first * retry_pow(factor, attempts - 1) : 0;
	if (!(d <= cap))
		d = cap;
	if (rng != NULL && jitter > 0)
		d *= 1 + jitter * (2 * retry_random(rng) - 1);
	if (!(d <= (double)RETRY_DELAY_LIMIT_MS))
		d = (double)RETRY_DELAY_LIMIT_MS;
	if (!(d >= 0))
		d = 0;
	return (int64_t)(d + 0.5);
}

/* retry_after - now + delay, saturating */
static int64_t retry_after(int64_t now, int64_t delay)
{
	int64_t t;

	if (__builtin_add_overflow(now, delay, &t))
		return INT64_MAX;
	return t;
}

/* retry_exhausted - why a deferral is not allowed any more, or NULL */
static const char *retry_exhausted(const struct retry_policy *p,
				   int attempts, int64_t first, int64_t now)
{
	int64_t age;

	if (p->max_attempts > 0 && attempts >= p->max_attempts)
		return "gave up: too many attempts";
	if (first >= now)
		age = 0;
	else if (__builtin_sub_overflow(now, first, &age))
		age = INT64_MAX;
	if (p->max_age_ms > 0 && age >= p->max_age_ms)
		return "gave up: too old";
	return NULL;
}

void retry_decide(const struct retry_policy *p, const struct retry_attempt *a,
		  int64_t now_ms, uint64_t *rng, struct retry_outcome *out)
{
	const char *enhanced = a->enhanced;
	const char *text = a->text != NULL ? a->text : "";
	int code = a->code, attempts = a->attempts < 1 ? 1 : a->attempts;
	struct retry_enh e;
	const char *gave_up;
	int64_t delay;

	memset(out, 0, sizeof(*out));
	if (a->sent) {
		out->verdict = RETRY_SENT;
		return;
	}

	if (code < 200 || code > 599) {
		memset(&e, 0, sizeof(e));
		out->why = "no valid reply code";
	} else {
		if (retry_enhanced(code, enhanced, &e))
			out->why = "enhanced code contradicts the reply "
				   "code, ignored";
		out->pool_backoff = retry_throttle(code, &e, text);
	}
	if (out->pool_backoff)
		out->backoff_ms = p->pool_backoff_ms > 0 ?
				  p->pool_backoff_ms : 0;

	if (code >= 500 && code <= 599 && !out->pool_backoff) {
		out->verdict = RETRY_FAIL;
		return;
	}
	if (code >= 200 && code <= 399)
		out->why = "nothing confirmed the delivery";
	else if (code >= 500 && code <= 599)
		out->why = "a sending limit, not the recipient: deferred";

	gave_up = retry_exhausted(p, attempts, a->first_attempt_ms, now_ms);
	if (gave_up != NULL && !a->in_doubt) {
		out->verdict = RETRY_FAIL;
		out->why = gave_up;
		return;
	}
	out->verdict = RETRY_DEFER;
	delay = retry_delay(p, attempts, rng);
	if (out->pool_backoff && delay < out->backoff_ms)
		delay = out->backoff_ms;
	out->next_attempt_ms = retry_after(now_ms, delay);
	/*
	 * The server may have it: one more copy at most, then the user
	 * decides (volley release); and never "failed" for it.
	 */
	if (a->in_doubt && (p->hold_in_doubt || a->doubts > 0 ||
			    gave_up != NULL)) {
		out->hold = true;
		out->why = a->doubts > 0 ? "held: in doubt a second time" :
			   gave_up != NULL ? "held: in doubt, and out of "
			   "attempts" : NULL;
	}
}

bool retry_lost(const struct retry_attempt *a)
{
	return !a->sent && !a->in_doubt &&
	       (a->step == SMTP_STEP_SESSION || (a->local && a->code == 451));
}

int64_t retry_jitter_ms(int64_t ms, uint64_t *rng)
{
	if (ms <= 1 || rng == NULL)
		return ms;
	return ms - (int64_t)(retry_random(rng) * (double)(ms / 2 + 1));
}

bool retry_requeue(const struct retry_policy *p, const struct retry_attempt *a,
		   int requeues, unsigned delivered)
{
	if (!retry_lost(a))
		return false;
	/*
	 * A throttle means the pool must slow down, not hurry to another
	 * connection - also after deliveries on this one: a relay's cap per
	 * connection shows as closes at the same count (retry_cap_learn),
	 * not in a reply's words.
	 */
	if (retry_throttled(a->code, a->enhanced, a->text))
		return false;
	return requeues < (delivered > 0 ? p->requeue_max_capped :
			   p->requeue_max);
}

unsigned retry_cap_evidence(const struct retry_conn_end *end)
{
	return !end->closed && end->closing_code == 421 ? end->delivered : 0;
}

unsigned retry_cap_learn(unsigned learned, unsigned previous,
			 unsigned evidence)
{
	if (learned > 0)
		return learned;
	return evidence > 0 && previous == evidence ? evidence : 0;
}

bool retry_conn_failed(const struct retry_conn_end *end)
{
	return !end->closed && !end->permanent && end->messages == 0;
}

void retry_conn_decide(const struct retry_conn_policy *p,
		       const struct retry_conn_end *end, unsigned failures,
		       int64_t *backoff_ms, struct retry_conn_outcome *out)
{
	int64_t first = p->backoff_first_ms > 0 ? p->backoff_first_ms : 0;
	int64_t max = p->backoff_max_ms > first ? p->backoff_max_ms : first;

	memset(out, 0, sizeof(*out));
	out->stop_pipelining = end->out_of_step;
	out->failed = retry_conn_failed(end);
	if (*backoff_ms < first)
		*backoff_ms = first;
	if (end->permanent) {
		out->action = RETRY_CONN_STOP;
		return;
	}
	/* It worked, or worked for a while (a 421 after N): go on at once. */
	if (!out->failed) {
		*backoff_ms = first;
		out->action = RETRY_CONN_AGAIN;
		return;
	}
	if (p->give_up_after > 0 && failures >= p->give_up_after) {
		out->action = RETRY_CONN_GIVE_UP;
		return;
	}
	out->action = RETRY_CONN_BACKOFF;
	out->backoff_ms = *backoff_ms;
	*backoff_ms = *backoff_ms > max / 2 ? max : *backoff_ms * 2;
}
