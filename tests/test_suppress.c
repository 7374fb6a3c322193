/*
 * test_suppress - the suppression list and the bounces on a real SQLite
 * file: entries, how imports and claims honour them (lists, domains,
 * transactional campaigns, entries made during a send), bounces once,
 * soft limits, replies classified at send time, and the migration that
 * widened the jobs' state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "counts_check.h"
#include "store.h"
#include "store_schema.h"
#include "vars.h"

static int64_t T0;

struct fixture {
	char dir[64];
	char path[96];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params p = { .create = true };
	const char *error;

	T0 = clock_wall_ms() + 60000;
	strcpy(f->dir, "/tmp/volley-test-suppress-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/volley.db", f->dir);
	assert_int_equal(store_open(f->path, &p, &f->st, &error), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(&f->st);
	assert_counts_recount(f->path);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int64_t campaign(struct fixture *f, const char *name,
			const char *list, bool transactional)
{
	const char *error;
	int64_t id;

	assert_int_equal(store_campaign_create(f->st, name, "s@example.org",
					       NULL, NULL, list, transactional,
					       NULL, 0, &id, &error), 0);
	return id;
}

/* import - the addresses, NULL-terminated; returns the stats */
static struct store_import_stats import(struct fixture *f, int64_t id,
					const char *const *addrs)
{
	const char *names[] = { "x" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	struct store_import *imp;
	struct store_import_stats stats;
	const char *error;

	assert_int_equal(store_import_begin(f->st, id, "t", "email", names, 1,
					    &imp, &error), 0);
	for (size_t i = 0; addrs[i] != NULL; i++)
		assert_true(store_import_add(imp, addrs[i], strlen(addrs[i]),
					     0, vars, sizeof(vars),
					     &error) >= 1);
	assert_int_equal(store_import_commit(&imp, 0, &stats, &error), 0);
	return stats;
}

static void suppress(struct fixture *f, const char *addr,
		     enum store_suppress_reason reason, const char *scope)
{
	struct store_suppression s = { 0 };
	const char *error;
	size_t added;

	s.address = addr;
	s.reason = reason;
	s.scope = scope;
	s.source = "test";
	assert_int_equal(store_suppress_add(f->st, &s, 1, &added, &error), 0);
}

/* claimed - the addresses one claim of up to max returns, comma-joined */
static const char *claimed(struct fixture *f, int64_t id, size_t max)
{
	static char out[512];
	struct store_batch b = { 0 };
	const char *error;

	out[0] = '\0';
	assert_int_equal(store_claim(f->st, id, "me", T0, 60000, max, &b,
				     &error), 0);
	for (size_t i = 0; i < b.count; i++) {
		if (i > 0)
			strcat(out, ",");
		strcat(out, b.jobs[i].address);
	}
	store_batch_free(&b);
	return out;
}

struct report {
	char states[512];
	char replies[1024];
	char classes[256];
};

static int report_row(void *ctx, const struct store_report_row *row)
{
	struct report *r = ctx;

	snprintf(r->states + strlen(r->states),
		 sizeof(r->states) - strlen(r->states), "%s=%s;",
		 row->address, job_state_name(row->state));
	if (row->last_reply != NULL)
		snprintf(r->replies + strlen(r->replies),
			 sizeof(r->replies) - strlen(r->replies), "%s|",
			 row->last_reply);
	if (row->bounce_class != NULL)
		snprintf(r->classes + strlen(r->classes),
			 sizeof(r->classes) - strlen(r->classes), "%s=%s;",
			 row->address, row->bounce_class);
	return 0;
}

static void report(struct fixture *f, int64_t id, struct report *r)
{
	const char *error;

	memset(r, 0, sizeof(*r));
	assert_int_equal(store_report_foreach(f->st, id, NULL, report_row, r,
					      &error), 0);
}

static int count_entry(void *ctx, const struct store_suppression *s)
{
	(void)s;
	(*(int *)ctx)++;
	return 0;
}

static int entries(struct fixture *f, const char *scope,
		   const enum store_suppress_reason *reason)
{
	const char *error;
	int n = 0;

	assert_int_equal(store_suppress_foreach(f->st, scope, reason,
						count_entry, &n, &error), 0);
	return n;
}

static struct store_bounce bounce(const char *key, const char *addr,
				  const char *category, bool hard,
				  int64_t at);

static void test_entries(void **state)
{
	struct fixture *f = *state;
	struct store_suppression s = { 0 }, two[2];
	enum store_suppress_reason unsub = SUPPRESS_UNSUBSCRIBED;
	const char *error;
	size_t added;
	int64_t n;
	static const char *const bad[] = {
		"", "nobody", "a@", "@", "a b@example.org", "a@exa mple.org",
		"a\r\nBcc: x@y@example.org", "@a@example.org", "x@a\"b",
	};

	suppress(f, "Ann@Example.org", SUPPRESS_UNSUBSCRIBED, "news");
	s.address = "ann@EXAMPLE.ORG";
	s.reason = SUPPRESS_UNSUBSCRIBED;
	s.scope = "news";
	/* the same address ignoring case, scope and reason: not again */
	assert_int_equal(store_suppress_add(f->st, &s, 1, &added, &error), 0);
	assert_int_equal(added, 0);
	/* another reason or scope is another entry */
	two[0] = s;
	two[0].reason = SUPPRESS_MANUAL;
	two[1] = s;
	two[1].scope = STORE_SCOPE_GLOBAL;
	assert_int_equal(store_suppress_add(f->st, two, 2, &added, &error), 0);
	assert_int_equal(added, 2);
	assert_int_equal(entries(f, NULL, NULL), 3);
	assert_int_equal(entries(f, "news", NULL), 2);
	assert_int_equal(entries(f, NULL, &unsub), 2);

	/* a bad address fails the whole call, naming it */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		two[0] = s;
		two[0].address = "fine@example.org";
		two[1] = s;
		two[1].address = bad[i];
		assert_int_equal(store_suppress_add(f->st, two, 2, &added,
						    &error), -1);
		assert_non_null(error);
	}
	assert_int_equal(entries(f, NULL, NULL), 3);

	assert_int_equal(store_suppress_remove(f->st, "ANN@example.org",
					       "news", &unsub, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_suppress_remove(f->st, "ann@example.org", NULL,
					       NULL, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(entries(f, NULL, NULL), 0);

	assert_true(store_suppress_reason_parse("hard-bounce", &unsub));
	assert_int_equal(unsub, SUPPRESS_HARD_BOUNCE);
	assert_false(store_suppress_reason_parse("bounced", &unsub));
}

static void test_import_applies_list_and_domains(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"A@example.org", "b@example.org", "c@Blocked.org",
		"d@example.org", "e@example.net", NULL,
	};
	struct store_import_stats stats;
	struct store_counts c;
	struct report r;
	const char *error;
	int64_t id;

	suppress(f, "a@EXAMPLE.org", SUPPRESS_UNSUBSCRIBED, "news");
	suppress(f, "b@example.org", SUPPRESS_UNSUBSCRIBED, "other");
	suppress(f, "@blocked.org", SUPPRESS_MANUAL, STORE_SCOPE_GLOBAL);
	suppress(f, "e@example.net", SUPPRESS_HARD_BOUNCE, STORE_SCOPE_GLOBAL);
	id = campaign(f, "weekly", "news", false);

	stats = import(f, id, addrs);
	assert_int_equal(stats.added, 5);
	assert_int_equal(stats.suppressed, 3);
	assert_int_equal(store_counts(f->st, id, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_QUEUED], 2);
	assert_int_equal(c.by_state[JOB_SUPPRESSED], 3);
	assert_int_equal(c.total, 5);
	report(f, id, &r);
	assert_string_equal(r.states, "A@example.org=suppressed;"
			    "b@example.org=queued;c@Blocked.org=suppressed;"
			    "d@example.org=queued;e@example.net=suppressed;");
	assert_non_null(strstr(r.replies, "suppressed: unsubscribed"
			       " (a@EXAMPLE.org, news since "));
	assert_non_null(strstr(r.replies, "suppressed: manual (domain "
			       "@blocked.org, every list since"));
	assert_non_null(strstr(r.replies, "suppressed: hard-bounce"));

	/* claims never see them */
	assert_string_equal(claimed(f, id, 10), "b@example.org,d@example.org");
}

static void test_transactional_ignores_unsubscribes(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"a@example.org", "b@example.org", "c@example.org", NULL,
	};
	struct store_import_stats stats;
	struct store_suppression s;
	const char *error;
	int64_t id;

	suppress(f, "a@example.org", SUPPRESS_UNSUBSCRIBED,
		 STORE_SCOPE_GLOBAL);
	suppress(f, "b@example.org", SUPPRESS_COMPLAINT, STORE_SCOPE_GLOBAL);
	id = campaign(f, "receipts", NULL, true);
	stats = import(f, id, addrs);
	assert_int_equal(stats.suppressed, 1);
	assert_string_equal(claimed(f, id, 10), "a@example.org,c@example.org");

	assert_int_equal(store_suppress_find(f->st, "A@example.org", 13,
					     STORE_LIST_DEFAULT, true, &s,
					     &error), 0);
	assert_int_equal(store_suppress_find(f->st, "A@example.org", 13,
					     STORE_LIST_DEFAULT, false, &s,
					     &error), 1);
	assert_int_equal(s.reason, SUPPRESS_UNSUBSCRIBED);
	assert_string_equal(s.address, "a@example.org");
	assert_string_equal(s.scope, STORE_SCOPE_GLOBAL);
}

/* Someone who unsubscribes during a send is not mailed after that. */
static void test_claim_honours_entries_made_during_a_send(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"u0@example.org", "u1@example.org", "u2@example.org",
		"u3@example.org", "u4@example.org", "u5@example.org",
		"u6@other.org", "u7@example.org", NULL,
	};
	struct store_counts c;
	struct report r;
	const char *error;
	int64_t id = campaign(f, "weekly", "news", false);

	import(f, id, addrs);
	assert_string_equal(claimed(f, id, 2), "u0@example.org,u1@example.org");
	suppress(f, "U3@example.org", SUPPRESS_UNSUBSCRIBED, "news");
	suppress(f, "u4@example.org", SUPPRESS_UNSUBSCRIBED, "elsewhere");
	suppress(f, "@other.org", SUPPRESS_COMPLAINT, STORE_SCOPE_GLOBAL);
	/* a batch with suppressed jobs is smaller, not refilled */
	assert_string_equal(claimed(f, id, 3), "u2@example.org,u4@example.org");
	assert_string_equal(claimed(f, id, 3), "u5@example.org,u7@example.org");
	assert_string_equal(claimed(f, id, 3), "");
	assert_int_equal(store_claim_suppressed(f->st), 2);
	assert_int_equal(store_counts(f->st, id, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_SUPPRESSED], 2);
	assert_int_equal(c.by_state[JOB_SENDING], 6);
	report(f, id, &r);
	assert_non_null(strstr(r.states, "u3@example.org=suppressed;"));
	assert_non_null(strstr(r.states, "u6@other.org=suppressed;"));
}

/*
 * A claim whose due jobs were all suppressed goes on to the ones behind
 * them: a send must not stop early because one batch was all stopped.
 */
static void test_claim_skips_a_batch_all_suppressed(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"u0@example.org", "u1@example.org", "u2@example.org",
		"u3@example.org", NULL,
	};
	int64_t id = campaign(f, "weekly", NULL, false);

	import(f, id, addrs);
	suppress(f, "u0@example.org", SUPPRESS_MANUAL, STORE_SCOPE_GLOBAL);
	suppress(f, "u1@example.org", SUPPRESS_MANUAL, STORE_SCOPE_GLOBAL);
	assert_string_equal(claimed(f, id, 2), "u2@example.org,u3@example.org");
}

/* A run claims from several campaigns in turn: each keeps its list. */
static void test_claims_of_two_campaigns_in_turn(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"u0@example.org", "u1@example.org", "u2@example.org",
		"u3@example.org", NULL,
	};
	int64_t a = campaign(f, "a", "news", false);
	int64_t b = campaign(f, "b", "promo", false);

	import(f, a, addrs);
	import(f, b, addrs);
	suppress(f, "u1@example.org", SUPPRESS_UNSUBSCRIBED, "news");
	suppress(f, "u2@example.org", SUPPRESS_UNSUBSCRIBED, "promo");
	assert_string_equal(claimed(f, a, 2), "u0@example.org");
	assert_string_equal(claimed(f, b, 2), "u0@example.org,u1@example.org");
	suppress(f, "u3@example.org", SUPPRESS_COMPLAINT, STORE_SCOPE_GLOBAL);
	assert_string_equal(claimed(f, a, 2), "u2@example.org");
	assert_string_equal(claimed(f, b, 2), "");
	assert_int_equal(store_claim_suppressed(f->st), 4);
}

/*
 * A domain suppressed during the send of a list sorted by domain: the
 * claim does not hold the write lock through all of it, and says to
 * claim again; the jobs behind still come.
 */
static void test_claim_stops_after_many_suppressed(void **state)
{
	struct fixture *f = *state;
	const char *names[] = { "x" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	struct store_import *imp;
	struct store_batch b = { 0 };
	const char *error;
	char addr[64];
	int64_t id = campaign(f, "big", NULL, false);
	int rounds = 0;

	assert_int_equal(store_import_begin(f->st, id, "t", "email", names, 1,
					    &imp, &error), 0);
	for (int i = 0; i < 5001; i++) {
		int len = i < 5000 ?
			snprintf(addr, sizeof(addr), "u%d@big.example", i) :
			snprintf(addr, sizeof(addr), "last@other.example");

		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 1);
	}
	assert_int_equal(store_import_commit(&imp, 0, NULL, &error), 0);
	suppress(f, "@BIG.example", SUPPRESS_MANUAL, STORE_SCOPE_GLOBAL);
	do {
		assert_int_equal(store_claim(f->st, id, "me", T0, 60000, 10,
					     &b, &error), 0);
		assert_true(b.count == 0 || !b.more);
		rounds++;
	} while (b.count == 0 && b.more);
	assert_int_equal(rounds, 3);	/* 2000, 2000, then 1000 and last */
	assert_int_equal(b.count, 1);
	assert_string_equal(b.jobs[0].address, "last@other.example");
	assert_int_equal(store_claim_suppressed(f->st), 5000);
	store_batch_free(&b);
}

/*
 * A job in doubt (its message may have been delivered) that is then
 * suppressed keeps what it was told before; a job never tried shows no
 * attempt.
 */
static void test_suppressed_at_claim_keeps_the_past(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"u0@example.org", "u1@example.org", NULL,
	};
	struct store_batch b = { 0 };
	struct report r;
	const char *error;
	int64_t id = campaign(f, "c", NULL, false), n;

	import(f, id, addrs);
	assert_int_equal(store_claim(f->st, id, "gone", T0, 1000, 1, &b,
				     &error), 0);
	assert_int_equal(b.count, 1);
	/* the lease expires: in doubt */
	assert_int_equal(store_reclaim(f->st, T0 + 5000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 1);
	suppress(f, "u0@example.org", SUPPRESS_UNSUBSCRIBED,
		 STORE_SCOPE_GLOBAL);
	suppress(f, "u1@example.org", SUPPRESS_UNSUBSCRIBED,
		 STORE_SCOPE_GLOBAL);
	assert_int_equal(store_claim(f->st, id, "me", T0 + 6000, 1000, 10, &b,
				     &error), 0);
	assert_int_equal(b.count, 0);
	report(f, id, &r);
	assert_string_equal(r.states, "u0@example.org=suppressed;"
			    "u1@example.org=suppressed;");
	assert_non_null(strstr(r.replies, "suppressed: unsubscribed "
			       "(u0@example.org, every list since "));
	assert_non_null(strstr(r.replies, "(before: interrupted: the lease of "
			       "gone expired; the message may have been "
			       "delivered)"));
	store_batch_free(&b);
}

static int times_row(void *ctx, const struct store_report_row *row)
{
	int *bad = ctx;

	if (row->attempts == 0 &&
	    (row->first_attempt_at != 0 || row->last_attempt_at != 0))
		(*bad)++;
	return 0;
}

/* addresses the import takes can all be suppressed: quoted, with a
 * space, and a bounce for one suppresses it */
static void test_quoted_addresses(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"\"a b\"@example.org", "c@example.org", NULL,
	};
	struct store_bounce b = { 0 };
	struct store_suppression s = { 0 };
	const char *error;
	size_t added;
	int sup, bad = 0;
	int64_t id;

	s.address = "\"x y\"@example.org";
	s.reason = SUPPRESS_MANUAL;
	s.scope = STORE_SCOPE_GLOBAL;
	assert_int_equal(store_suppress_add(f->st, &s, 1, &added, &error), 0);
	assert_int_equal(added, 1);
	/* a list name or a source with control characters: refused, or
	 * made harmless */
	s.address = "z@example.org";
	s.scope = "news\x1b[2J";
	assert_int_equal(store_suppress_add(f->st, &s, 1, &added, &error),
			 -1);
	b.msg_key = "<q@mx>";
	b.kind = "bounce";
	b.address = "\"a b\"@example.org";
	b.category = "bad-mailbox";
	b.hard = true;
	assert_int_equal(store_bounce_add(f->st, &b, NULL, &sup, &error), 1);
	assert_int_equal(sup, SUPPRESS_HARD_BOUNCE);
	id = campaign(f, "c", NULL, false);
	assert_int_equal(import(f, id, addrs).suppressed, 1);
	assert_int_equal(store_report_foreach(f->st, id, NULL, times_row,
					      &bad, &error), 0);
	assert_int_equal(bad, 0);
}

/* A refusal about the sender (sender_side) is kept, never suppresses. */
static void test_sender_side_never_suppresses(void **state)
{
	struct fixture *f = *state;
	struct store_bounce_policy policy = { 2, 86400000LL };
	enum store_suppress_reason soft = SUPPRESS_SOFT_BOUNCE;
	struct store_bounce b;
	const char *error;
	char key[16];
	int sup;

	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "reply:%d", i);
		b = bounce(key, "ann@example.org", "policy-related", false, 0);
		b.kind = "reply";
		b.sender_side = true;
		assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup,
						  &error), 1);
		assert_int_equal(sup, -1);
	}
	b = bounce("<h@mx>", "ann@example.org", "other", true, 0);
	b.sender_side = true;
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, -1);
	assert_int_equal(entries(f, NULL, NULL), 0);
	/* nor does one nothing proves ours, hard or complaint */
	b = bounce("<u1@mx>", "ann@example.org", "bad-mailbox", true, 0);
	b.unverified = true;
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, -1);
	b = bounce("<u2@fbl>", "ann@example.org", "complaint", false, 0);
	b.kind = "complaint";
	b.unverified = true;
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, -1);
	assert_int_equal(entries(f, NULL, NULL), 0);
	/* two that are about the mailbox do */
	b = bounce("<s1@mx>", "ann@example.org", "quota-issues", false, 0);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	b = bounce("<s2@mx>", "ann@example.org", "quota-issues", false, 0);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, SUPPRESS_SOFT_BOUNCE);
	assert_int_equal(entries(f, NULL, &soft), 1);
}

/* A removed entry stops nobody, though the claim's filter knew it. */
static void test_removed_entry_stops_nobody(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"u0@example.org", "u1@example.org", "u2@example.org", NULL,
	};
	const char *error;
	int64_t id = campaign(f, "weekly", NULL, false), n;

	import(f, id, addrs);
	assert_string_equal(claimed(f, id, 1), "u0@example.org");
	suppress(f, "u2@example.org", SUPPRESS_MANUAL, STORE_SCOPE_GLOBAL);
	assert_string_equal(claimed(f, id, 1), "u1@example.org");
	assert_int_equal(store_suppress_remove(f->st, "u2@example.org", NULL,
					       NULL, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_string_equal(claimed(f, id, 1), "u2@example.org");
}

static struct store_bounce bounce(const char *key, const char *addr,
				  const char *category, bool hard, int64_t at)
{
	struct store_bounce b = { 0 };

	b.msg_key = key;
	b.kind = "bounce";
	b.address = addr;
	b.category = category;
	b.hard = hard;
	b.code = hard ? 550 : 452;
	b.enhanced = hard ? "5.1.1" : "4.2.2";
	b.text = "diagnostic";
	b.at = at;
	return b;
}

struct bounce_list {
	int n;
	int unmatched;
	char kinds[256];
};

static int bounce_row(void *ctx, const struct store_bounce *b)
{
	struct bounce_list *l = ctx;

	l->n++;
	if (b->job_id == 0)
		l->unmatched++;
	snprintf(l->kinds + strlen(l->kinds),
		 sizeof(l->kinds) - strlen(l->kinds), "%s:%s:%s;", b->kind,
		 b->address ? b->address : "-", b->category);
	return 0;
}

static void test_bounces_once_and_suppress(void **state)
{
	struct fixture *f = *state;
	struct store_bounce_policy policy = { 3, 7 * 86400000LL };
	enum store_suppress_reason hard = SUPPRESS_HARD_BOUNCE;
	enum store_suppress_reason soft = SUPPRESS_SOFT_BOUNCE;
	enum store_suppress_reason complaint = SUPPRESS_COMPLAINT;
	struct store_bounce b;
	struct bounce_list l = { 0 };
	const char *error;
	int64_t day = 86400000LL, now = clock_wall_ms();
	int sup;

	b = bounce("<m1@mx>", "Gone@example.org", "bad-mailbox", true, 0);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, SUPPRESS_HARD_BOUNCE);
	/* the same message again changes nothing */
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 0);
	assert_int_equal(sup, -1);
	assert_int_equal(entries(f, STORE_SCOPE_GLOBAL, &hard), 1);

	/* soft: the third within the window suppresses, older ones do not
	 * count */
	b = bounce("<s0@mx>", "full@example.org", "quota-issues", false,
		   now - 30 * day);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	b = bounce("<s1@mx>", "full@example.org", "quota-issues", false,
		   now - 2 * day);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	b = bounce("<s2@mx>", "FULL@example.org", "quota-issues", false,
		   now - day);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, -1);
	assert_int_equal(entries(f, NULL, &soft), 0);
	b = bounce("<s3@mx>", "full@example.org", "quota-issues", false, now);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, SUPPRESS_SOFT_BOUNCE);
	assert_int_equal(entries(f, STORE_SCOPE_GLOBAL, &soft), 1);

	/* a complaint suppresses globally */
	b = bounce("<c1@fbl>", "angry@example.org", "complaint", false, 0);
	b.kind = "complaint";
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, SUPPRESS_COMPLAINT);
	assert_int_equal(entries(f, STORE_SCOPE_GLOBAL, &complaint), 1);

	/* a bounce naming no address is kept, suppresses nothing; two
	 * addresses of one message are two bounces */
	b = bounce("<n1@mx>", NULL, "other", true, 0);
	assert_int_equal(store_bounce_add(f->st, &b, &policy, &sup, &error),
			 1);
	assert_int_equal(sup, -1);
	b = bounce("<m2@mx>", "x1@example.org", "bad-mailbox", true, 0);
	assert_int_equal(store_bounce_add(f->st, &b, NULL, &sup, &error), 1);
	b = bounce("<m2@mx>", "x2@example.org", "bad-mailbox", true, 0);
	assert_int_equal(store_bounce_add(f->st, &b, NULL, &sup, &error), 1);

	assert_int_equal(store_bounce_foreach(f->st, 0, false, bounce_row, &l,
					      &error), 0);
	assert_int_equal(l.n, 9);
	assert_int_equal(l.unmatched, 9);
	assert_non_null(strstr(l.kinds, "bounce:-:other;"));
	assert_non_null(strstr(l.kinds, "complaint:angry@example.org:"
			       "complaint;"));
}

/* A 550 5.1.1 at send time is a bounce: the next campaign skips it. */
static void test_record_classified_reply(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"gone@example.org", "ok@example.org", "full@example.org", NULL,
	};
	struct store_batch b = { 0 };
	struct store_result r[3];
	struct store_import_stats stats;
	struct bounce_list l = { 0 };
	struct report rep;
	const char *error;
	size_t stale;
	int64_t id = campaign(f, "one", NULL, false), id2;

	import(f, id, addrs);
	assert_int_equal(store_claim(f->st, id, "me", T0, 60000, 3, &b,
				     &error), 0);
	assert_int_equal(b.count, 3);
	memset(r, 0, sizeof(r));
	r[0].job_id = b.jobs[0].id;
	r[0].state = JOB_FAILED;
	r[0].code = 550;
	r[0].enhanced = "5.1.1";
	r[0].reply = "5.1.1 <gone@example.org>: user unknown";
	r[0].at = T0;
	r[0].bounce_category = "bad-mailbox";
	r[0].bounce_hard = true;
	r[1].job_id = b.jobs[1].id;
	r[1].state = JOB_SENT;
	r[1].code = 250;
	r[1].at = T0;
	r[2] = r[0];
	r[2].job_id = b.jobs[2].id;
	r[2].code = 552;
	r[2].enhanced = "5.2.2";
	r[2].reply = "mailbox full";
	r[2].bounce_category = "quota-issues";
	r[2].bounce_hard = false;
	assert_int_equal(store_record(f->st, "me", r, 3, &stale, &error), 0);
	/* recording the same results again: no second bounce */
	assert_int_equal(store_record(f->st, "me", r, 3, &stale, &error), 0);
	store_batch_free(&b);

	assert_int_equal(store_bounce_foreach(f->st, id, false, bounce_row,
					      &l, &error), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.unmatched, 0);
	report(f, id, &rep);
	assert_string_equal(rep.classes, "gone@example.org=bad-mailbox;"
			    "full@example.org=quota-issues;");

	id2 = campaign(f, "two", NULL, false);
	stats = import(f, id2, addrs);
	assert_int_equal(stats.suppressed, 1);
	assert_string_equal(claimed(f, id2, 10),
			    "ok@example.org,full@example.org");
}

static void test_job_lookup(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = {
		"a@example.org", "b@example.org", NULL,
	};
	struct store_job_ref ref;
	const char *error;
	int64_t old = campaign(f, "old", "news", false);
	int64_t id;

	import(f, old, addrs);
	id = campaign(f, "new", "promo", true);
	import(f, id, addrs);
	assert_int_equal(store_job_find_address(f->st, "B@EXAMPLE.ORG", 13, 0,
						&ref, &error), 1);
	assert_int_equal(ref.campaign_id, id);
	assert_string_equal(ref.campaign, "new");
	assert_string_equal(ref.list, "promo");
	assert_true(ref.transactional);
	assert_string_equal(ref.address, "b@example.org");
	assert_int_equal(ref.state, JOB_QUEUED);
	assert_int_equal(store_job_ref(f->st, ref.job_id - 2, &ref, &error),
			 1);
	assert_string_equal(ref.campaign, "old");
	assert_string_equal(ref.address, "b@example.org");
	/* what a lookup returns can be passed back in as it is */
	{
		struct store_suppression s = { 0 }, got;
		size_t added;

		s.address = ref.address;
		s.scope = ref.list;
		s.reason = SUPPRESS_UNSUBSCRIBED;
		s.source = ref.campaign;
		assert_int_equal(store_suppress_add(f->st, &s, 1, &added,
						    &error), 0);
		assert_int_equal(added, 1);
		assert_int_equal(store_job_ref(f->st, ref.job_id, &ref,
					       &error), 1);
		assert_int_equal(store_suppress_find(f->st, ref.address,
						     strlen(ref.address),
						     ref.list, false, &got,
						     &error), 1);
		assert_string_equal(got.address, "b@example.org");
		assert_string_equal(got.scope, "news");
		assert_string_equal(got.source, "old");
	}
	assert_int_equal(store_job_ref(f->st, 999, &ref, &error), 0);
	assert_int_equal(store_job_find_address(f->st, "c@example.org", 13,
						0, &ref, &error), 0);
	/* only campaigns made since */
	assert_int_equal(store_job_find_address(f->st, "a@example.org", 13,
						clock_wall_ms() + 1000, &ref,
						&error), 0);
	/* "global" cannot name a list */
	assert_int_equal(store_campaign_create(f->st, "g", NULL, NULL, NULL,
					       "global", false, NULL, 0, &id,
					       &error), -1);
}

/* migration 3 -> 4's own SQL function; the old store has no jobs */
static void no_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_result_null(ctx);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("SQL failed: %s: %s", sql, msg);
}

/*
 * A store left by schema 6 opens with its jobs' CHECK widened (state 5
 * admitted, nothing rewritten), its campaigns on the default list, and
 * an intact file.
 */
static void test_migration_from_version_6(void **state)
{
	struct fixture *f = *state;
	static const char *const addrs[] = { "a@x.org", "b@x.org", NULL };
	struct store_campaign c;
	struct store_counts counts;
	struct store *st;
	sqlite3_stmt *stmt;
	const char *error;
	char path[128];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/old6.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "PRAGMA application_id = 1987013753");
	assert_int_equal(sqlite3_create_function(db, "volley_addr_key", 1,
						 SQLITE_UTF8, NULL, no_key,
						 NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 6; i++)
		exec_sql(db, store_migrations[i]);
	exec_sql(db, "PRAGMA user_version = 6");
	exec_sql(db, "INSERT INTO campaigns (id, name, created_at)"
		 " VALUES (3, 'old', 1)");
	sqlite3_close(db);

	assert_int_equal(store_open(path, NULL, &st, &error), 0);
	assert_int_equal(store_campaign_get(st, "old", &c, &error), 1);
	assert_string_equal(c.list, STORE_LIST_DEFAULT);
	assert_false(c.transactional);
	suppress(&(struct fixture){ .st = st }, "b@x.org", SUPPRESS_MANUAL,
		 STORE_SCOPE_GLOBAL);
	{
		struct fixture g = { .st = st };

		assert_int_equal(import(&g, 3, addrs).suppressed, 1);
	}
	assert_int_equal(store_counts(st, 3, &counts, &error), 0);
	assert_int_equal(counts.by_state[JOB_SUPPRESSED], 1);
	store_close(&st);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
					    &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
	sqlite3_finalize(stmt);
	/* the CHECK still holds past 5 */
	assert_int_not_equal(sqlite3_exec(db, "UPDATE jobs SET state = 6",
					  NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_entries),
		T(test_import_applies_list_and_domains),
		T(test_transactional_ignores_unsubscribes),
		T(test_claim_honours_entries_made_during_a_send),
		T(test_claim_skips_a_batch_all_suppressed),
		T(test_claims_of_two_campaigns_in_turn),
		T(test_removed_entry_stops_nobody),
		T(test_claim_stops_after_many_suppressed),
		T(test_suppressed_at_claim_keeps_the_past),
		T(test_quoted_addresses),
		T(test_sender_side_never_suppresses),
		T(test_bounces_once_and_suppress),
		T(test_record_classified_reply),
		T(test_job_lookup),
		T(test_migration_from_version_6),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
