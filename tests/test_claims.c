/*
 * test_claims - leases per claim (schema 9), as a user of store.h relies
 * on them: queued jobs are claimed by ranges of ids (one claims row per
 * claim), written once, by their result; deferred ones are still leased
 * one by one.  Section 10: the journal of results (schema 10), where a
 * final result of a claim's job is appended to results instead.  Only
 * the public API is used to act on the store; the
 * SQLite file is read directly to look at job and claims rows.  Every
 * test ends with the counts checked against a recount of the jobs
 * (counts_check.h) and with the claims of each campaign checked for
 * overlaps and for queued jobs that no claim covers below the highest
 * claimed id (such a job would never be claimed again).
 *
 * Job ids: an import numbers its jobs consecutively, so a test names a
 * job by its place in the import ("j3") and checks claims rows the same
 * way ("1-2:a 3-3:- 4-5:a": ranges by first job, owner or "-" if free).
 * store_private.h is included only for the store's connection, to make
 * its COMMIT fail (sqlite3_commit_hook), as test_counts_review does.
 *
 * Five of these found faults in the first version of schema 9 (a1cc671),
 * since fixed:
 *
 *  - test_split_claim_with_two_campaigns, test_claim_id_zero_with_two_
 *    campaigns: a result whose claim is looked up (claim_id 0, or the
 *    original id of a claim a give-back has split) must find the claim
 *    of the job's own campaign, not another campaign's whose range of
 *    ids spans the job's (imports in turns interleave ids).
 *  - test_give_back_of_the_last_queued_job, test_give_back_with_the_
 *    rest_in_one_record: the owner's part(s) of a claim a give-back
 *    split go with the record when none of their jobs is queued.
 *  - test_late_sent_keeps_the_attempt: a late "sent" for a job another
 *    owner's claim holds counts the claim's attempt, at its time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "clock.h"
#include "counts_check.h"
#include "store.h"
#include "store_private.h"
#include "store_schema.h"
#include "vars.h"

/* "now" for claims: after the imports, so every imported job is due */
static int64_t T0;

struct fixture {
	char dir[64];
	char path[96];
	struct store *st;
	int64_t campaign;
	int64_t other;		/* a second campaign */
};

/* --- reading the file ---------------------------------------------------- */

static sqlite3 *db_open(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	return db;
}

static sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		fail_msg("SQL failed: %s: %s", sql, sqlite3_errmsg(db));
	return stmt;
}

/* q_int - the first column of the first row of a query, 0 if no row */
__attribute__((format(printf, 2, 3)))
static int64_t q_int(const char *path, const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	sqlite3 *db = db_open(path);
	sqlite3_stmt *stmt;
	int64_t v = 0;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	stmt = db_prepare(db, sql);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

/*
 * claims_of - the claims rows of a campaign by first job, as
 * "F-L:OWNER ..." with job ids counted from base (base's job is 1), an
 * owner's first word only ("a" for "a pid ..."), "-" when free
 */
static const char *claims_of(const char *path, int64_t campaign,
			     int64_t base)
{
	static char out[1024];
	char sql[256];
	sqlite3 *db = db_open(path);
	sqlite3_stmt *stmt;

	out[0] = '\0';
	snprintf(sql, sizeof(sql), "SELECT first_job, last_job,"
		 " coalesce(owner, '-') FROM claims WHERE campaign_id = %lld"
		 " ORDER BY first_job", (long long)campaign);
	stmt = db_prepare(db, sql);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *owner = (const char *)sqlite3_column_text(stmt, 2);
		size_t len = strlen(out);

		snprintf(out + len, sizeof(out) - len, "%s%lld-%lld:%.*s",
			 len ? " " : "",
			 (long long)(sqlite3_column_int64(stmt, 0) - base + 1),
			 (long long)(sqlite3_column_int64(stmt, 1) - base + 1),
			 (int)strcspn(owner, " "), owner);
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return out;
}

static const char *claims(struct fixture *f, int64_t base)
{
	return claims_of(f->path, f->campaign, base);
}

/* A job's row as the store left it. */
struct job_row {
	int state;
	int attempts;
	int doubts;
	int64_t first_attempt_at;	/* 0 if NULL */
	int64_t last_attempt_at;	/* 0 if NULL */
	int64_t next_attempt_at;
	int64_t lease_expires_at;	/* 0 if NULL */
	char owner[320];		/* "" if NULL */
	char reply[512];		/* "" if NULL */
};

static struct job_row job_row(const char *path, int64_t id)
{
	struct job_row j;
	char sql[256];
	sqlite3 *db = db_open(path);
	sqlite3_stmt *stmt;
	const char *s;

	memset(&j, 0, sizeof(j));
	snprintf(sql, sizeof(sql), "SELECT state, attempts, doubts,"
		 " coalesce(first_attempt_at, 0), coalesce(last_attempt_at, 0),"
		 " next_attempt_at, coalesce(lease_expires_at, 0),"
		 " lease_owner, last_reply FROM jobs_now WHERE id = %lld",
		 (long long)id);
	stmt = db_prepare(db, sql);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	j.state = sqlite3_column_int(stmt, 0);
	j.attempts = sqlite3_column_int(stmt, 1);
	j.doubts = sqlite3_column_int(stmt, 2);
	j.first_attempt_at = sqlite3_column_int64(stmt, 3);
	j.last_attempt_at = sqlite3_column_int64(stmt, 4);
	j.next_attempt_at = sqlite3_column_int64(stmt, 5);
	j.lease_expires_at = sqlite3_column_int64(stmt, 6);
	s = (const char *)sqlite3_column_text(stmt, 7);
	snprintf(j.owner, sizeof(j.owner), "%s", s ? s : "");
	s = (const char *)sqlite3_column_text(stmt, 8);
	snprintf(j.reply, sizeof(j.reply), "%s", s ? s : "");
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return j;
}

/*
 * The campaign's claim cursor (schema 10): the highest id any claim of it,
 * held, free or gone, ever reached.
 */
#define CLAIM_CURSOR_OF_J \
	"max(coalesce((SELECT max(last_job) FROM claims c" \
	"  WHERE c.campaign_id = j.campaign_id), 0)," \
	" (SELECT claim_cursor FROM campaigns k WHERE k.id = j.campaign_id))"

/*
 * assert_claims_sound - within a campaign no two claims overlap, every
 * queued job (its result in the journal applied) up to its claim cursor
 * lies in a claim (else no claim would ever take it: fresh claims start
 * past the cursor), and no job past the cursor has a result in the
 * journal (fresh claims do not look there)
 */
static void assert_claims_sound(const char *path)
{
	assert_int_equal(q_int(path, "SELECT count(*) FROM claims a, claims b"
			       " WHERE a.id < b.id"
			       " AND a.campaign_id = b.campaign_id"
			       " AND a.first_job <= b.last_job"
			       " AND b.first_job <= a.last_job"), 0);
	assert_int_equal(q_int(path, "SELECT count(*) FROM jobs_now j"
			       " WHERE j.state = 0"
			       " AND j.id <= " CLAIM_CURSOR_OF_J
			       " AND NOT EXISTS (SELECT 1 FROM claims c"
			       "  WHERE c.campaign_id = j.campaign_id"
			       "  AND j.id BETWEEN c.first_job"
			       "  AND c.last_job)"), 0);
	assert_int_equal(q_int(path, "SELECT count(*) FROM jobs_now j"
			       " WHERE j.journaled"
			       " AND j.id > " CLAIM_CURSOR_OF_J), 0);
}

/* --- fixture ------------------------------------------------------------- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params p = { .create = true };
	const char *error;

	T0 = clock_wall_ms() + 60000;
	strcpy(f->dir, "/tmp/volley-test-claims-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/volley.db", f->dir);
	assert_int_equal(store_open(f->path, &p, &f->st, &error), 0);
	assert_int_equal(store_campaign_create(f->st, "news",
					       "list@example.org", NULL, NULL,
					       NULL, false, NULL, 0,
					       &f->campaign, &error), 0);
	assert_int_equal(store_campaign_create(f->st, "other",
					       "list@example.org", NULL, NULL,
					       NULL, false, NULL, 0,
					       &f->other, &error), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(&f->st);
	assert_counts_recount(f->path);
	assert_claims_sound(f->path);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* --- acting on the store ------------------------------------------------- */

/*
 * import_n - PREFIX0@example.org ... PREFIX<n-1>@example.org into
 * campaign; the id of the first (an import's ids are consecutive)
 */
static int64_t import_n(struct fixture *f, int64_t campaign,
			const char *prefix, int n)
{
	const char *names[] = { "a" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	struct store_import *imp;
	struct store_import_stats stats;
	const char *error;
	char addr[64];
	int64_t first;

	assert_int_equal(store_import_begin(f->st, campaign, "t", "email",
					    names, 1, &imp, &error), 0);
	for (int i = 0; i < n; i++) {
		int len = snprintf(addr, sizeof(addr), "%s%d@example.org",
				   prefix, i);

		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 1);
	}
	assert_int_equal(store_import_commit(&imp, 0, &stats, &error), 0);
	assert_int_equal(stats.added, n);
	first = q_int(f->path, "SELECT min(id) FROM jobs"
		      " WHERE import_id = %lld",
		      (long long)stats.import_id);
	assert_int_equal(q_int(f->path, "SELECT max(id) FROM jobs"
			       " WHERE import_id = %lld",
			       (long long)stats.import_id), first + n - 1);
	return first;
}

/* What a claim gave: ids and claim ids, kept past the next claim. */
struct got {
	size_t count;
	int64_t id[64];
	int64_t claim[64];
	int attempts[64];
	int64_t first_attempt_at[64];
};

static struct got claim(struct store *st, int64_t campaign,
			const char *owner, int64_t now, int64_t lease_ms,
			size_t max)
{
	struct store_batch b = { 0 };
	struct got g = { 0 };
	const char *error;

	assert_true(max <= 64);
	if (store_claim(st, campaign, owner, now, lease_ms, max, &b,
			&error) < 0)
		fail_msg("store_claim: %s", error);
	assert_false(b.more);
	g.count = b.count;
	for (size_t i = 0; i < b.count; i++) {
		g.id[i] = b.jobs[i].id;
		g.claim[i] = b.jobs[i].claim_id;
		g.attempts[i] = b.jobs[i].attempts;
		g.first_attempt_at[i] = b.jobs[i].first_attempt_at;
		assert_int_equal(b.jobs[i].campaign_id, campaign);
	}
	store_batch_free(&b);
	return g;
}

/* got_has - the place of id in g, or -1 */
static int got_has(const struct got *g, int64_t id)
{
	for (size_t i = 0; i < g->count; i++)
		if (g->id[i] == id)
			return (int)i;
	return -1;
}

static struct store_result result(int64_t job, int64_t claim_id,
				  enum job_state state)
{
	return (struct store_result){
		.job_id = job, .state = state,
		.code = state == JOB_SENT ? 250 : state == JOB_QUEUED ? 0 :
			state == JOB_DEFERRED ? 451 : 550,
		.reply = state == JOB_SENT ? "ok" :
			 state == JOB_QUEUED ? NULL :
			 state == JOB_DEFERRED ? "later" : "no such user",
		.at = T0 + 10,
		.next_attempt_at = state == JOB_DEFERRED ? T0 + 3600000 : 0,
		.claim_id = claim_id,
	};
}

/* record - n results by owner; the number stale */
static size_t record(struct store *st, const char *owner,
		     const struct store_result *r, size_t n)
{
	const char *error;
	size_t stale = 99;

	if (store_record(st, owner, r, n, &stale, &error) < 0)
		fail_msg("store_record: %s", error);
	return stale;
}

/* record_got - a result of state for every job claim g gave; stale */
static size_t record_got(struct store *st, const char *owner,
			 const struct got *g, enum job_state state)
{
	struct store_result r[64];

	for (size_t i = 0; i < g->count; i++)
		r[i] = result(g->id[i], g->claim[i], state);
	return record(st, owner, r, g->count);
}

static size_t record1(struct store *st, const char *owner, int64_t job,
		      int64_t claim_id, enum job_state state)
{
	struct store_result r = result(job, claim_id, state);

	return record(st, owner, &r, 1);
}

static void assert_counts(struct fixture *f, int64_t campaign,
			  int64_t queued, int64_t sending, int64_t sent,
			  int64_t deferred, int64_t failed, int64_t suppressed)
{
	struct store_counts c;
	const char *error;

	assert_int_equal(store_counts(f->st, campaign, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_QUEUED], queued);
	assert_int_equal(c.by_state[JOB_SENDING], sending);
	assert_int_equal(c.by_state[JOB_SENT], sent);
	assert_int_equal(c.by_state[JOB_DEFERRED], deferred);
	assert_int_equal(c.by_state[JOB_FAILED], failed);
	assert_int_equal(c.by_state[JOB_SUPPRESSED], suppressed);
	assert_int_equal(c.total, queued + sending + sent + deferred + failed +
			 suppressed);
}

/* the recount and the claims' soundness, mid-test */
static void assert_recount_now(struct fixture *f)
{
	assert_counts_recount(f->path);
	assert_claims_sound(f->path);
}

static bool alive_except_a(void *ctx, const char *owner)
{
	(void)ctx;
	return strcmp(owner, "a") != 0;
}

/*
 * An owner name of another host's run: alive as far as this host can
 * tell (store_lease_owner_alive), so a lease of it may be in use.
 */
static const char ELSEWHERE[] = "elsewhere pid 4242 run 0123456789abcdef"
	" boot 00000000-0000-4000-8000-000000000000 pidns 4026531836"
	" start 12345";

/* as volley send asks: ctx is this run's own owner name */
static bool alive_by_name(void *ctx, const char *owner)
{
	return store_lease_owner_alive(owner, ctx);
}

static int report_count(void *ctx, const struct store_report_row *row)
{
	struct {
		int n;
		struct store_report_row last;
	} *rr = ctx;

	rr->n++;
	rr->last = *row;
	return 0;
}

/* --- 1. claims never overlap --------------------------------------------- */

/*
 * Two senders (two handles, as two processes) claim from one campaign in
 * turn, each recording a batch only after the other has claimed again,
 * with claims of another campaign whose ids interleave: every job comes
 * exactly once, batches are disjoint, each batch is one claim, and when
 * every job has its result no claims row is left.
 */
static void test_claims_never_overlap(void **state)
{
	struct fixture *f = *state;
	static const size_t sizes_a[] = { 3, 5, 2, 7, 1, 4, 6, 3, 8, 5 };
	static const size_t sizes_b[] = { 4, 1, 6, 2, 5, 3, 7, 2, 4, 9 };
	struct store_params p = { .busy_timeout_ms = 2000 };
	struct store *o;
	struct got prev_a = { 0 }, prev_b = { 0 }, g, x;
	struct store_result r[64];
	int seen[64] = { 0 };
	const char *error;
	int64_t first, first2, ofirst;
	int total = 0, most_claims = 0;

	first = import_n(f, f->campaign, "u", 20);
	ofirst = import_n(f, f->other, "v", 10);
	first2 = import_n(f, f->campaign, "w", 20);
	assert_true(ofirst > first + 19 && first2 > ofirst + 9);
	assert_int_equal(store_open(f->path, &p, &o, &error), 0);
	/* the other campaign's claim spans ids of this one's */
	x = claim(f->st, f->other, "a", T0, 60000, 10);
	assert_int_equal(x.count, 10);

	for (size_t round = 0; round < 10; round++) {
		for (int who = 0; who < 2; who++) {
			struct store *st = who ? o : f->st;
			const char *owner = who ? "b" : "a";
			struct got *prev = who ? &prev_b : &prev_a;
			size_t max = who ? sizes_b[round] : sizes_a[round];

			g = claim(st, f->campaign, owner, T0 + (int64_t)round,
				  60000, max);
			assert_true(g.count <= max);
			for (size_t i = 0; i < g.count; i++) {
				int64_t k = g.id[i] < first2 ?
					    g.id[i] - first :
					    g.id[i] - first2 + 20;

				assert_true(k >= 0 && k < 40);
				seen[k]++;
				/* one claim per batch of queued jobs */
				assert_int_not_equal(g.claim[i], 0);
				assert_int_equal(g.claim[i], g.claim[0]);
				assert_int_equal(g.attempts[i], 1);
				if (i > 0)
					assert_true(g.id[i] > g.id[i - 1]);
				/* never one the other holds */
				assert_int_equal(got_has(&prev_a, g.id[i]),
						 -1);
				assert_int_equal(got_has(&prev_b, g.id[i]),
						 -1);
			}
			total += (int)g.count;
			most_claims = (int)q_int(f->path, "SELECT max(%d,"
						 " count(*)) FROM claims WHERE"
						 " campaign_id = %lld",
						 most_claims,
						 (long long)f->campaign);
			assert_recount_now(f);
			/* the previous batch of this owner gets its results */
			for (size_t i = 0; i < prev->count; i++)
				r[i] = result(prev->id[i], prev->claim[i],
					      i % 3 == 2 ? JOB_FAILED :
					      JOB_SENT);
			if (prev->count > 0)
				assert_int_equal(record(st, owner, r,
							prev->count), 0);
			*prev = g;
			assert_recount_now(f);
		}
	}
	assert_int_equal(total, 40);
	for (int k = 0; k < 40; k++)
		assert_int_equal(seen[k], 1);
	/* both owners' claims (and the other campaign's) were held at once */
	assert_true(most_claims >= 2);
	/* nothing is left to claim; the last batches get their results */
	g = claim(f->st, f->campaign, "a", T0 + 20, 60000, 10);
	assert_int_equal(g.count, 0);
	assert_int_equal(record_got(f->st, "a", &prev_a, JOB_SENT), 0);
	assert_int_equal(record_got(o, "b", &prev_b, JOB_SENT), 0);
	assert_string_equal(claims(f, first), "");
	/* the other campaign's claim is untouched meanwhile */
	assert_string_equal(claims_of(f->path, f->other, ofirst), "1-10:a");
	assert_counts(f, f->other, 0, 10, 0, 0, 0, 0);
	assert_int_equal(record_got(f->st, "a", &x, JOB_SENT), 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM claims"), 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM jobs_now"
			       " WHERE state NOT IN (2, 4)"), 0);
	store_close(&o);
}

/* --- 2. give-backs ------------------------------------------------------- */

/*
 * A job given back from the middle of a claim is queued again and cut
 * out as a free claim of its own: the next claim, by another owner,
 * takes exactly it first; results for the other jobs of the split claim
 * still carry the original claim id and are recorded.
 */
static void test_give_back_in_the_middle(void **state)
{
	struct fixture *f = *state;
	struct store_result r[4];
	struct got a, b;
	int64_t j;
	struct job_row row;

	j = import_n(f, f->campaign, "u", 6) - 1;	/* j + k: the kth */
	a = claim(f->st, f->campaign, "a", T0, 60000, 5);
	assert_int_equal(a.count, 5);
	assert_string_equal(claims(f, j + 1), "1-5:a");
	assert_counts(f, f->campaign, 1, 5, 0, 0, 0, 0);

	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_QUEUED),
			 0);
	assert_counts(f, f->campaign, 2, 4, 0, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "1-2:a 3-3:- 4-5:a");
	row = job_row(f->path, j + 3);
	assert_int_equal(row.state, JOB_QUEUED);
	assert_int_equal(row.attempts, 0);
	assert_int_equal(row.first_attempt_at, 0);
	/* given back again: it is no longer a's */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_QUEUED),
			 1);
	assert_counts(f, f->campaign, 2, 4, 0, 0, 0, 0);

	/* another owner's claim takes exactly that job first */
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 2);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(b.id[1], j + 6);
	assert_int_not_equal(b.claim[0], a.claim[0]);
	assert_int_equal(b.attempts[0], 1);
	assert_counts(f, f->campaign, 0, 6, 0, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "1-2:a 3-3:b 4-5:a 6-6:b");

	/* the split claim's other jobs, with the ORIGINAL claim id */
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	r[2] = result(j + 4, a.claim[3], JOB_DEFERRED);
	r[3] = result(j + 5, a.claim[4], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 4), 0);
	assert_counts(f, f->campaign, 0, 2, 2, 1, 1, 0);
	row = job_row(f->path, j + 4);
	assert_int_equal(row.state, JOB_DEFERRED);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.first_attempt_at, T0);
	assert_int_equal(row.next_attempt_at, T0 + 3600000);
	assert_string_equal(claims(f, j + 1), "3-3:b 6-6:b");
	/* a's result for the job b holds now: stale */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "a", j + 3, 0, JOB_DEFERRED), 1);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_QUEUED);

	r[0] = result(j + 3, b.claim[0], JOB_SENT);
	r[1] = result(j + 6, b.claim[1], JOB_SENT);
	assert_int_equal(record(f->st, "b", r, 2), 0);
	assert_counts(f, f->campaign, 0, 0, 4, 1, 1, 0);
	assert_string_equal(claims(f, j + 1), "");
	/* each job once: nothing more to claim (the deferred one is not
	 * due yet) */
	assert_int_equal(claim(f->st, f->campaign, "c", T0 + 2, 60000,
			       10).count, 0);
}

/*
 * Give-back of the first, then the last, then the only job of a claim:
 * three free single-job claims; another owner takes all three, each
 * once, and their results leave no claim behind.
 */
static void test_give_back_first_last_only(void **state)
{
	struct fixture *f = *state;
	struct store_result r[3];
	struct got a, b;
	int64_t j;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);

	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_QUEUED),
			 0);
	assert_string_equal(claims(f, j + 1), "1-1:- 2-3:a");
	assert_counts(f, f->campaign, 1, 2, 0, 0, 0, 0);
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_QUEUED),
			 0);
	assert_string_equal(claims(f, j + 1), "1-1:- 2-2:a 3-3:-");
	assert_counts(f, f->campaign, 2, 1, 0, 0, 0, 0);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_QUEUED),
			 0);
	assert_string_equal(claims(f, j + 1), "1-1:- 2-2:- 3-3:-");
	assert_counts(f, f->campaign, 3, 0, 0, 0, 0, 0);
	for (int k = 1; k <= 3; k++) {
		struct job_row row = job_row(f->path, j + k);

		assert_int_equal(row.state, JOB_QUEUED);
		assert_int_equal(row.attempts, 0);
	}

	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 3);
	for (int k = 1; k <= 3; k++)
		assert_true(got_has(&b, j + k) >= 0);
	assert_counts(f, f->campaign, 0, 3, 0, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "1-1:b 2-2:b 3-3:b");
	/* a's results now: stale (not its jobs any more) */
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_FAILED),
			 1);
	for (size_t i = 0; i < 3; i++)
		r[i] = result(b.id[i], b.claim[i], JOB_SENT);
	assert_int_equal(record(f->st, "b", r, 3), 0);
	assert_counts(f, f->campaign, 0, 0, 3, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
}

/*
 * The last queued job of a claim given back after the others have
 * their results: at the end of that record no job of the owner's part
 * of the claim is queued, so its row goes (only the free one stays).
 */
static void test_give_back_of_the_last_queued_job(void **state)
{
	struct fixture *f = *state;
	struct store_result r[2];
	struct got a, b;
	int64_t j;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 2), 0);
	assert_string_equal(claims(f, j + 1), "1-3:a");
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_QUEUED),
			 0);
	assert_counts(f, f->campaign, 1, 0, 2, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "3-3:-");

	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 3);
	assert_int_equal(b.count, 1);
	assert_int_equal(record1(f->st, "b", j + 3, b.claim[0], JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 3, 0, 0, 0);
	/* every job has its result: no claim left */
	assert_string_equal(claims(f, j + 1), "");
}

/*
 * The same in one record: a result for the last job and the give-back
 * of the one before it.  The part of the claim after the given-back job
 * has no queued job at the end of the record: it goes.
 */
static void test_give_back_with_the_rest_in_one_record(void **state)
{
	struct fixture *f = *state;
	struct store_result r[3];
	struct got a, b;
	int64_t j;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);
	r[0] = result(j + 3, a.claim[2], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_QUEUED);
	r[2] = result(j + 1, a.claim[0], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 3), 0);
	assert_counts(f, f->campaign, 1, 0, 2, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "2-2:-");

	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 3);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 2);
	assert_int_equal(record1(f->st, "b", j + 2, b.claim[0], JOB_SENT), 0);
	assert_string_equal(claims(f, j + 1), "");
}

/* --- 3. which claim a result names --------------------------------------- */

/*
 * A result with claim_id 0 for a job of a range is looked up and
 * recorded; one naming another owner's claim, or an own claim that does
 * not hold the job, is stale for deferred and failed; "sent" goes
 * through the late path (the server has the message).
 */
static void test_result_names_a_claim(void **state)
{
	struct fixture *f = *state;
	struct got a, b;
	int64_t j;
	struct store_result r;

	j = import_n(f, f->campaign, "u", 6) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 2);	/* j1 j2 */
	b = claim(f->st, f->campaign, "b", T0, 60000, 2);	/* j3 j4 */
	assert_int_equal(a.count, 2);
	assert_int_equal(b.count, 2);
	assert_int_not_equal(a.claim[0], b.claim[0]);
	assert_string_equal(claims(f, j + 1), "1-2:a 3-4:b");

	/* claim_id 0, and the campaign not said either: looked up */
	r = result(j + 1, 0, JOB_DEFERRED);
	assert_int_equal(record(f->st, "a", &r, 1), 0);
	assert_counts(f, f->campaign, 2, 3, 0, 1, 0, 0);
	assert_int_equal(job_row(f->path, j + 1).attempts, 1);
	/* claim_id 0 with the campaign said */
	r = result(j + 2, 0, JOB_FAILED);
	r.campaign_id = f->campaign;
	assert_int_equal(record(f->st, "a", &r, 1), 0);
	assert_counts(f, f->campaign, 2, 2, 0, 1, 1, 0);
	assert_string_equal(claims(f, j + 1), "3-4:b");

	/* b's claim named by a: stale */
	assert_int_equal(record1(f->st, "a", j + 3, b.claim[0], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "a", j + 3, b.claim[0],
				 JOB_DEFERRED), 1);
	/* a's own (finished) claim, which does not hold j3: stale */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[0], JOB_FAILED),
			 1);
	/* claim_id 0 for b's job: stale */
	assert_int_equal(record1(f->st, "a", j + 4, 0, JOB_DEFERRED), 1);
	/* a claim id that never was: stale */
	assert_int_equal(record1(f->st, "a", j + 4, 999999, JOB_FAILED), 1);
	assert_counts(f, f->campaign, 2, 2, 0, 1, 1, 0);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_QUEUED);
	assert_int_equal(job_row(f->path, j + 4).state, JOB_QUEUED);

	/* "sent" naming b's claim, from a: the late path records it */
	assert_int_equal(record1(f->st, "a", j + 3, b.claim[0], JOB_SENT), 0);
	assert_counts(f, f->campaign, 2, 1, 1, 1, 1, 0);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_SENT);
	/* b's own result for it comes after: stale, sent stays */
	assert_int_equal(record1(f->st, "b", j + 3, b.claim[0],
				 JOB_DEFERRED), 1);
	assert_int_equal(record1(f->st, "b", j + 3, b.claim[0], JOB_SENT), 1);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_SENT);
	assert_counts(f, f->campaign, 2, 1, 1, 1, 1, 0);

	/* "sent" for a queued job no claim holds (past the cursor) */
	assert_int_equal(record1(f->st, "a", j + 6, a.claim[0], JOB_SENT), 0);
	assert_counts(f, f->campaign, 1, 1, 2, 1, 1, 0);
	assert_int_equal(job_row(f->path, j + 6).state, JOB_SENT);

	/* b finishes; j5 is claimed by the next claim, j6 is not again */
	assert_int_equal(record1(f->st, "b", j + 4, b.claim[1], JOB_SENT), 0);
	assert_string_equal(claims(f, j + 1), "");
	a = claim(f->st, f->campaign, "a", T0 + 1, 60000, 10);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.id[0], j + 5);
	assert_int_equal(record1(f->st, "a", j + 5, a.claim[0], JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 4, 1, 1, 0);
	assert_string_equal(claims(f, j + 1), "");
}

/*
 * "sent" for a job given back and not yet claimed again (a free claim
 * holds it): recorded, counted from queued; the free claim is then
 * dropped by the next claim, which takes nothing twice.
 */
static void test_late_sent_for_a_given_back_job(void **state)
{
	struct fixture *f = *state;
	struct got a, b;
	int64_t j;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_QUEUED),
			 0);
	assert_string_equal(claims(f, j + 1), "1-1:a 2-2:- 3-3:a");
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_SENT), 0);
	assert_counts(f, f->campaign, 1, 2, 1, 0, 0, 0);
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 4);
	assert_int_equal(record1(f->st, "b", j + 4, b.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 4, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
}

/*
 * A late "sent" for a job another owner's claim holds: that claim made
 * an attempt (the report showed it "sending", attempts 1), and the
 * message went; a sent job with no attempt and no attempt time reads
 * as never tried.
 */
static void test_late_sent_keeps_the_attempt(void **state)
{
	struct fixture *f = *state;
	struct got b;
	struct job_row row;
	int64_t j;

	j = import_n(f, f->campaign, "u", 1) - 1;
	b = claim(f->st, f->campaign, "b", T0, 60000, 1);
	assert_int_equal(b.count, 1);
	assert_int_equal(record1(f->st, "a", j + 1, b.claim[0], JOB_SENT), 0);
	row = job_row(f->path, j + 1);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.first_attempt_at, T0);
}

/*
 * One run sends two campaigns whose ids interleave (campaign X imported,
 * then Y, then X again): X's claim spans Y's ids.  A result for a job of
 * Y's claim with claim_id 0 must be recorded, not taken for X's.
 */
static void test_claim_id_zero_with_two_campaigns(void **state)
{
	struct fixture *f = *state;
	struct got x, y;
	int64_t x1, y1;

	x1 = import_n(f, f->other, "x", 3);
	y1 = import_n(f, f->campaign, "y", 3);
	import_n(f, f->other, "z", 3);
	x = claim(f->st, f->other, "a", T0, 60000, 10);
	y = claim(f->st, f->campaign, "a", T0, 60000, 10);
	assert_int_equal(x.count, 6);
	assert_int_equal(y.count, 3);
	assert_string_equal(claims_of(f->path, f->other, x1), "1-9:a");
	assert_string_equal(claims(f, y1), "1-3:a");

	assert_int_equal(record1(f->st, "a", y1 + 1, 0, JOB_FAILED), 0);
	assert_counts(f, f->campaign, 0, 2, 0, 0, 1, 0);
	assert_int_equal(job_row(f->path, y1 + 1).state, JOB_FAILED);
}

/*
 * The same two campaigns; a job given back from the middle of Y's claim
 * splits it, and the results for the jobs after it carry Y's original
 * claim id, as the sender got it: they must be recorded.
 */
static void test_split_claim_with_two_campaigns(void **state)
{
	struct fixture *f = *state;
	struct store_result r[2];
	struct got x, y;
	int64_t x1, y1;

	x1 = import_n(f, f->other, "x", 3);
	y1 = import_n(f, f->campaign, "y", 4);
	import_n(f, f->other, "z", 3);
	x = claim(f->st, f->other, "a", T0, 60000, 10);
	y = claim(f->st, f->campaign, "a", T0, 60000, 10);
	assert_int_equal(x.count, 6);
	assert_int_equal(y.count, 4);
	assert_string_equal(claims_of(f->path, f->other, x1), "1-10:a");

	/* the second job given back: the claim is cut in three */
	assert_int_equal(record1(f->st, "a", y1 + 1, y.claim[1], JOB_QUEUED),
			 0);
	assert_string_equal(claims(f, y1), "1-1:a 2-2:- 3-4:a");
	r[0] = result(y1 + 2, y.claim[2], JOB_FAILED);
	r[1] = result(y1 + 3, y.claim[3], JOB_DEFERRED);
	assert_int_equal(record(f->st, "a", r, 2), 0);
	assert_counts(f, f->campaign, 1, 1, 0, 1, 1, 0);
	assert_int_equal(record1(f->st, "a", y1, y.claim[0], JOB_SENT), 0);
	assert_counts(f, f->campaign, 1, 0, 1, 1, 1, 0);
	assert_string_equal(claims(f, y1), "2-2:-");
}

/*
 * X's claim spans Y's ids: a reclaim of it, a release of it and the
 * report never touch Y's jobs, and Y's first claim still starts at Y's
 * first job.
 */
static void test_range_spanning_another_campaign(void **state)
{
	struct fixture *f = *state;
	enum job_state sending = JOB_SENDING;
	struct got x, y;
	const char *error;
	int64_t x1, y1, n;
	struct {
		int n;
		struct store_report_row last;
	} rr = { 0 };

	x1 = import_n(f, f->other, "x", 3);
	y1 = import_n(f, f->campaign, "y", 3);
	import_n(f, f->other, "z", 3);
	x = claim(f->st, f->other, "a", T0, 1000, 10);
	assert_int_equal(x.count, 6);
	assert_string_equal(claims_of(f->path, f->other, x1), "1-9:a");
	assert_counts(f, f->campaign, 3, 0, 0, 0, 0, 0);
	assert_int_equal(store_report_foreach(f->st, f->campaign, &sending,
					      report_count, &rr, &error), 0);
	assert_int_equal(rr.n, 0);

	/* released: X's claim is free; Y is claimed from its start */
	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 6);
	y = claim(f->st, f->campaign, "b", T0 + 1, 1000, 10);
	assert_int_equal(y.count, 3);
	assert_int_equal(y.id[0], y1);
	assert_string_equal(claims(f, y1), "1-3:b");
	assert_counts(f, f->campaign, 0, 3, 0, 0, 0, 0);
	assert_counts(f, f->other, 6, 0, 0, 0, 0, 0);

	/* X taken again and expired, with Y's: each one's own jobs only */
	x = claim(f->st, f->other, "a", T0 + 2, 1000, 10);
	assert_int_equal(x.count, 6);
	assert_int_equal(store_reclaim(f->st, T0 + 5000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 9);
	assert_counts(f, f->campaign, 0, 0, 0, 3, 0, 0);
	assert_counts(f, f->other, 0, 0, 0, 6, 0, 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM claims"), 0);
	assert_int_equal(job_row(f->path, y1).first_attempt_at, T0 + 1);
	assert_int_equal(job_row(f->path, x1).first_attempt_at, T0 + 2);
}

/* --- 4. release with keep ------------------------------------------------ */

/*
 * Release at the end of a run, keeping the jobs whose message may have
 * left: those become leased one by one by the owner (sending, attempt
 * counted at the claim's time); the claim is free with its other queued
 * jobs, which the next claim takes; the reclaim that finds the owner
 * gone puts the kept ones in doubt.
 */
static void test_release_with_keep(void **state)
{
	struct fixture *f = *state;
	struct got a, b, c;
	struct store_result r[8];
	struct job_row row;
	const char *error;
	int64_t j, keep[2], n;

	j = import_n(f, f->campaign, "u", 6) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 5);
	assert_int_equal(a.count, 5);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	keep[0] = j + 2;
	keep[1] = j + 4;
	assert_int_equal(store_release(f->st, "a", keep, 2, &n, &error), 0);
	assert_int_equal(n, 2);		/* j3 and j5 */
	assert_counts(f, f->campaign, 3, 2, 1, 0, 0, 0);
	for (int i = 0; i < 2; i++) {
		row = job_row(f->path, keep[i]);
		assert_int_equal(row.state, JOB_SENDING);
		assert_string_equal(row.owner, "a");
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.first_attempt_at, T0);
		assert_int_equal(row.lease_expires_at, T0 + 60000);
	}
	row = job_row(f->path, j + 3);
	assert_int_equal(row.state, JOB_QUEUED);
	assert_int_equal(row.attempts, 0);
	assert_string_equal(claims(f, j + 1), "1-5:-");
	/* released again, keeping the same: nothing more */
	assert_int_equal(store_release(f->st, "a", keep, 2, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_counts(f, f->campaign, 3, 2, 1, 0, 0, 0);

	/* the next claim takes the freed claim's queued jobs, then j6 */
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 3);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(b.id[1], j + 5);
	assert_int_equal(b.id[2], j + 6);
	assert_int_equal(b.claim[0], b.claim[1]);
	assert_counts(f, f->campaign, 0, 5, 1, 0, 0, 0);

	/* a is gone: its kept jobs are in doubt; b's claim is not touched */
	assert_int_equal(store_reclaim(f->st, T0 + 2, false, alive_except_a,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_counts(f, f->campaign, 0, 3, 1, 2, 0, 0);
	for (int i = 0; i < 2; i++) {
		row = job_row(f->path, keep[i]);
		assert_int_equal(row.state, JOB_DEFERRED);
		assert_int_equal(row.doubts, 1);
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.next_attempt_at, T0 + 2);
		assert_non_null(strstr(row.reply, "interrupted: sender a "
				       "stopped"));
	}
	assert_int_equal(record_got(f->st, "b", &b, JOB_SENT), 0);
	/* the kept ones are due again, leased one by one */
	c = claim(f->st, f->campaign, "b", T0 + 3, 60000, 10);
	assert_int_equal(c.count, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_true(c.id[i] == keep[0] || c.id[i] == keep[1]);
		assert_int_equal(c.claim[i], 0);
		assert_int_equal(c.attempts[i], 2);
		r[i] = result(c.id[i], c.claim[i], JOB_SENT);
	}
	assert_int_equal(record(f->st, "b", r, 2), 0);
	assert_counts(f, f->campaign, 0, 0, 6, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
}

/* A release with nothing queued left in a claim drops it. */
static void test_release_drops_finished_claims(void **state)
{
	struct fixture *f = *state;
	struct got a;
	const char *error;
	int64_t j, keep, n;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_SENT), 0);
	keep = j + 3;
	assert_int_equal(store_release(f->st, "a", &keep, 1, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 1, 2, 0, 0, 0);
	/* its lease expires: in doubt */
	assert_int_equal(store_reclaim(f->st, T0 + 60000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 1);
	assert_counts(f, f->campaign, 0, 0, 2, 1, 0, 0);
}

/* --- 5. an expired claim ------------------------------------------------- */

/*
 * A claim whose lease expired: its queued jobs are in doubt (deferred,
 * due at once, the attempt counted at the claim's time); the jobs that
 * had results are untouched; the claims row goes.  In doubt a second
 * time, they are held.
 */
static void test_expired_claim(void **state)
{
	struct fixture *f = *state;
	struct got a, b;
	struct store_result r[2];
	struct job_row row;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 5) - 1;
	a = claim(f->st, f->campaign, "a", T0, 1000, 5);
	assert_int_equal(a.count, 5);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	assert_int_equal(record(f->st, "a", r, 2), 0);

	assert_int_equal(store_reclaim(f->st, T0 + 999, false, NULL, NULL, &n,
				       &error), 0);
	assert_int_equal(n, 0);
	assert_string_equal(claims(f, j + 1), "1-5:a");
	assert_int_equal(store_reclaim(f->st, T0 + 1000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 3);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 0, 1, 3, 1, 0);
	for (int k = 3; k <= 5; k++) {
		row = job_row(f->path, j + k);
		assert_int_equal(row.state, JOB_DEFERRED);
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.doubts, 1);
		assert_int_equal(row.first_attempt_at, T0);
		assert_int_equal(row.last_attempt_at, T0);
		assert_int_equal(row.next_attempt_at, T0 + 1000);
		assert_string_equal(row.owner, "");
		assert_non_null(strstr(row.reply, "interrupted: the lease of "
				       "a expired; the message may have been "
				       "delivered"));
	}
	row = job_row(f->path, j + 1);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.doubts, 0);
	assert_string_equal(row.reply, "ok");
	row = job_row(f->path, j + 2);
	assert_int_equal(row.state, JOB_FAILED);
	assert_int_equal(row.doubts, 0);
	assert_string_equal(row.reply, "no such user");
	/* a's late results: stale, except sent */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_FAILED),
			 1);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_DEFERRED);

	/* due again at once; taken one by one, the lease expires again:
	 * a second doubt is held, whatever the mode */
	b = claim(f->st, f->campaign, "b", T0 + 1000, 1000, 10);
	assert_int_equal(b.count, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(b.claim[i], 0);
		assert_int_equal(b.attempts[i], 2);
		assert_int_equal(b.first_attempt_at[i], T0);
	}
	assert_int_equal(store_reclaim(f->st, T0 + 2000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_in_doubt(f->st, f->campaign, STORE_DOUBT_COUNT,
					0, &n, &error), 0);
	assert_int_equal(n, 3);
	row = job_row(f->path, j + 4);
	assert_int_equal(row.doubts, 2);
	assert_int_equal(row.next_attempt_at, STORE_HELD);
	assert_counts(f, f->campaign, 0, 0, 1, 3, 1, 0);
}

/* With hold, the first doubt of a claim's jobs is held already. */
static void test_expired_claim_held(void **state)
{
	struct fixture *f = *state;
	struct got a;
	struct job_row row;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 1000, 2);
	assert_int_equal(a.count, 2);
	assert_int_equal(store_reclaim(f->st, T0 + 5000, true, NULL, NULL, &n,
				       &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_in_doubt(f->st, f->campaign, STORE_DOUBT_COUNT,
					0, &n, &error), 0);
	assert_int_equal(n, 2);
	row = job_row(f->path, j + 1);
	assert_int_equal(row.next_attempt_at, STORE_HELD);
	assert_int_equal(row.first_attempt_at, T0);
	assert_int_equal(row.attempts, 1);
	assert_string_equal(claims(f, j + 1), "");
	/* held ones are not claimed; the queued one past them is */
	a = claim(f->st, f->campaign, "b", T0 + 6000, 1000, 10);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.id[0], j + 3);
	assert_counts(f, f->campaign, 0, 1, 0, 2, 0, 0);
}

/* An owner alive() says is gone loses its claim before it expires. */
static void test_reclaim_owner_gone(void **state)
{
	struct fixture *f = *state;
	struct got a, b;
	struct job_row row;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, "a", T0, 3600000, 2);
	b = claim(f->st, f->campaign, "b", T0, 3600000, 2);
	assert_int_equal(a.count + b.count, 4);
	assert_int_equal(store_reclaim(f->st, T0 + 1, false, alive_except_a,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_string_equal(claims(f, j + 1), "3-4:b");
	row = job_row(f->path, j + 1);
	assert_non_null(strstr(row.reply, "interrupted: sender a stopped"));
	assert_int_equal(row.next_attempt_at, T0 + 1);
	assert_counts(f, f->campaign, 0, 2, 0, 2, 0, 0);
}

/* --- 6. a free claim taken in parts -------------------------------------- */

/*
 * A free claim with more queued jobs than the claim's max is split: the
 * taker gets the first ones, the rest stays free and is taken next, then
 * the queued jobs past every claim; no job comes twice.
 */
static void test_free_claim_split(void **state)
{
	struct fixture *f = *state;
	struct got a, g[3];
	struct store_result r[8];
	const char *error;
	int seen[8] = { 0 };
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 8) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 6);
	assert_int_equal(a.count, 6);
	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 6);
	assert_string_equal(claims(f, j + 1), "1-6:-");
	assert_counts(f, f->campaign, 8, 0, 0, 0, 0, 0);

	g[0] = claim(f->st, f->campaign, "b", T0 + 1, 60000, 2);
	assert_int_equal(g[0].count, 2);
	assert_int_equal(g[0].id[0], j + 1);
	assert_int_equal(g[0].id[1], j + 2);
	assert_string_equal(claims(f, j + 1), "1-2:b 3-6:-");
	assert_counts(f, f->campaign, 6, 2, 0, 0, 0, 0);
	g[1] = claim(f->st, f->campaign, "c", T0 + 2, 60000, 3);
	assert_int_equal(g[1].count, 3);
	assert_int_equal(g[1].id[0], j + 3);
	assert_int_equal(g[1].id[2], j + 5);
	assert_int_not_equal(g[1].claim[0], g[0].claim[0]);
	assert_string_equal(claims(f, j + 1), "1-2:b 3-5:c 6-6:-");
	g[2] = claim(f->st, f->campaign, "d", T0 + 3, 60000, 5);
	assert_int_equal(g[2].count, 3);
	assert_int_equal(g[2].id[0], j + 6);
	assert_int_equal(g[2].id[1], j + 7);
	assert_int_equal(g[2].id[2], j + 8);
	assert_counts(f, f->campaign, 0, 8, 0, 0, 0, 0);
	assert_int_equal(claim(f->st, f->campaign, "e", T0 + 4, 60000,
			       5).count, 0);
	for (int i = 0; i < 3; i++) {
		static const char *const owners[] = { "b", "c", "d" };

		for (size_t k = 0; k < g[i].count; k++) {
			seen[g[i].id[k] - j - 1]++;
			r[k] = result(g[i].id[k], g[i].claim[k], JOB_SENT);
		}
		assert_int_equal(record(f->st, owners[i], r, g[i].count), 0);
	}
	for (int k = 0; k < 8; k++)
		assert_int_equal(seen[k], 1);
	assert_counts(f, f->campaign, 0, 0, 8, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
}

/* Two free claims: the older first, each split as needed. */
static void test_free_claims_oldest_first(void **state)
{
	struct fixture *f = *state;
	struct got a1, a2, b, c;
	const char *error;
	int seen[6] = { 0 };
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 6) - 1;
	a1 = claim(f->st, f->campaign, "a", T0, 60000, 3);
	a2 = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a1.count + a2.count, 6);
	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 6);
	assert_string_equal(claims(f, j + 1), "1-3:- 4-6:-");
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 4);
	assert_int_equal(b.count, 4);
	assert_int_equal(b.id[0], j + 1);
	assert_int_equal(b.id[3], j + 4);
	assert_int_equal(b.claim[0], a1.claim[0]);
	assert_int_equal(b.claim[3], a2.claim[0]);
	assert_string_equal(claims(f, j + 1), "1-3:b 4-4:b 5-6:-");
	c = claim(f->st, f->campaign, "c", T0 + 1, 60000, 4);
	assert_int_equal(c.count, 2);
	for (size_t i = 0; i < b.count; i++)
		seen[b.id[i] - j - 1]++;
	for (size_t i = 0; i < c.count; i++)
		seen[c.id[i] - j - 1]++;
	for (int k = 0; k < 6; k++)
		assert_int_equal(seen[k], 1);
	assert_counts(f, f->campaign, 0, 6, 0, 0, 0, 0);
}

/* --- 7. suppression during a send ---------------------------------------- */

static void suppress(struct fixture *f, const char *addr)
{
	struct store_suppression s = { 0 };
	const char *error;

	s.address = addr;
	s.reason = SUPPRESS_MANUAL;
	s.scope = STORE_SCOPE_GLOBAL;
	s.source = "test";
	assert_int_equal(store_suppress_add(f->st, &s, 1, NULL, &error), 0);
}

/*
 * An address suppressed after the import, before the claim: the claim
 * of a range does not hand it out, it is suppressed (counted), and the
 * rest of the range is claimed and recorded as usual.
 */
static void test_suppressed_in_a_range(void **state)
{
	struct fixture *f = *state;
	struct got a;
	struct job_row row;
	int64_t j;

	j = import_n(f, f->campaign, "u", 6) - 1;
	suppress(f, "u2@example.org");
	a = claim(f->st, f->campaign, "a", T0, 60000, 6);
	assert_int_equal(a.count, 5);
	assert_int_equal(got_has(&a, j + 3), -1);
	assert_int_equal(store_claim_suppressed(f->st), 1);
	assert_counts(f, f->campaign, 0, 5, 0, 0, 0, 1);
	row = job_row(f->path, j + 3);
	assert_int_equal(row.state, JOB_SUPPRESSED);
	assert_int_equal(row.attempts, 0);
	assert_non_null(strstr(row.reply, "suppressed: manual"));
	/* a result for it is stale; even "sent" does not unsuppress it */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[0], JOB_FAILED),
			 1);
	assert_int_equal(record_got(f->st, "a", &a, JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 5, 0, 0, 1);
	assert_string_equal(claims(f, j + 1), "");
}

/*
 * The first and only job of a claim suppressed: the claim goes on to
 * the next; a free claim taken after a suppression is filtered too.
 */
static void test_suppressed_first_and_in_a_free_claim(void **state)
{
	struct fixture *f = *state;
	struct got a, b;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 5) - 1;
	suppress(f, "u0@example.org");
	a = claim(f->st, f->campaign, "a", T0, 60000, 1);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.id[0], j + 2);
	assert_string_equal(claims(f, j + 1), "2-2:a");
	assert_counts(f, f->campaign, 3, 1, 0, 0, 0, 1);

	a = claim(f->st, f->campaign, "a", T0, 60000, 3);	/* j3..j5 */
	assert_int_equal(a.count, 3);
	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 4);
	assert_string_equal(claims(f, j + 1), "2-2:- 3-5:-");
	suppress(f, "u3@example.org");
	suppress(f, "u1@example.org");
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(b.id[1], j + 5);
	assert_counts(f, f->campaign, 0, 2, 0, 0, 0, 3);
	assert_int_equal(record1(f->st, "b", j + 3, b.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "b", j + 5, b.claim[1], JOB_SENT), 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 0, 2, 0, 0, 3);
}

/* --- 8. migration from schema 8 ------------------------------------------ */

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("SQL failed: %s: %s", sql, msg);
}

/* migration 3 -> 4 names it; no job exists then, so it is never called */
static void no_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_result_null(ctx);
}

/*
 * make_store_8 - a store as a volley of schema 8 left it, with campaign
 * 1 and import 1 and no job yet; open on *db_r
 */
static void make_store_8(const char *path, sqlite3 **db_r)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_create_function(db, "volley_addr_key", 1,
						 SQLITE_UTF8, NULL, no_key,
						 NULL, NULL), SQLITE_OK);
	exec_sql(db, "PRAGMA journal_mode = WAL");
	exec_sql(db, "BEGIN");
	exec_sql(db, "PRAGMA application_id = 1987013753");
	assert_int_equal(store_migration_claims, 8);
	for (int i = 0; i < store_migration_claims; i++) {
		exec_sql(db, store_migrations[i]);
		/* what store_widen_state_check does after 6 -> 7 */
		if (i == store_migration_widen_state) {
			exec_sql(db, "PRAGMA writable_schema = ON");
			exec_sql(db, "UPDATE sqlite_schema SET sql ="
				 " replace(sql, 'CHECK (state BETWEEN 0 AND"
				 " 4)', 'CHECK (state BETWEEN 0 AND 5)')"
				 " WHERE type = 'table' AND name = 'jobs'");
			exec_sql(db, "PRAGMA writable_schema = OFF");
		}
	}
	exec_sql(db, "PRAGMA user_version = 8");
	exec_sql(db, "INSERT INTO campaigns (id, name, created_at)"
		 " VALUES (1, 'old', 1)");
	exec_sql(db, "INSERT INTO imports (id, campaign_id, var_names,"
		 " started_at) VALUES (1, 1, x'01', 1)");
	exec_sql(db, "COMMIT");
	*db_r = db;
}

/*
 * dead_owner - the owner name of a run that died (a child that named
 * itself and exited) into dead, and this run's own into self; checked
 * to be judged gone
 */
static void dead_owner(char *dead, size_t dead_size, char *self,
		       size_t self_size)
{
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		store_lease_owner_self(dead, dead_size);
		if (write(fds[1], dead, strlen(dead) + 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	assert_true(read(fds[0], dead, dead_size) > 0);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	store_lease_owner_self(self, self_size);
	assert_false(store_lease_owner_alive(dead, self));
}

/*
 * A store of schema 8 (no address_keys rows: this test imports nothing
 * into it) with jobs 1-4 queued, 5-6 deferred and due, 7-8 leased one by
 * one by a run that died, 9 sent.  Opened, it migrates to 9; a reclaim,
 * then claims and results send every job once, and the counts hold.
 */
static void test_migration_from_8(void **state)
{
	struct fixture *f = *state;
	char path[128], sql[1024], self[300], dead[300];
	bool sent[10] = { false };
	struct store *st;
	struct store_counts c;
	struct store_batch b = { 0 };
	struct store_result r[3];
	const char *error;
	sqlite3 *db;
	size_t stale;
	int rounds = 0;
	int64_t n;

	/* a run that died */
	dead_owner(dead, sizeof(dead), self, sizeof(self));

	snprintf(path, sizeof(path), "%s/eight.db", f->dir);
	make_store_8(path, &db);
	exec_sql(db, "BEGIN");
	exec_sql(db, "INSERT INTO jobs (id, campaign_id, import_id, address,"
		 " next_attempt_at, created_at) VALUES"
		 " (1, 1, 1, 'a@x.org', 1, 1), (2, 1, 1, 'b@x.org', 1, 1),"
		 " (3, 1, 1, 'c@x.org', 1, 1), (4, 1, 1, 'd@x.org', 1, 1)");
	exec_sql(db, "INSERT INTO jobs (id, campaign_id, import_id, address,"
		 " next_attempt_at, created_at, state, attempts,"
		 " first_attempt_at, last_attempt_at, last_code, last_reply)"
		 " VALUES (5, 1, 1, 'e@x.org', 2, 1, 3, 1, 2, 2, 451, 'later'),"
		 " (6, 1, 1, 'f@x.org', 2, 1, 3, 1, 2, 2, 451, 'later')");
	snprintf(sql, sizeof(sql), "INSERT INTO jobs (id, campaign_id,"
		 " import_id, address, next_attempt_at, created_at, state,"
		 " attempts, first_attempt_at, last_attempt_at, lease_owner,"
		 " lease_expires_at) VALUES"
		 " (7, 1, 1, 'g@x.org', 1, 1, 1, 1, 3, 3, '%s', 9e15),"
		 " (8, 1, 1, 'h@x.org', 1, 1, 1, 1, 3, 3, '%s', 9e15)",
		 dead, dead);
	exec_sql(db, sql);
	exec_sql(db, "INSERT INTO jobs (id, campaign_id, import_id, address,"
		 " next_attempt_at, created_at, state, attempts, done_at)"
		 " VALUES (9, 1, 1, 'i@x.org', 1, 1, 2, 1, 4)");
	/* as schema 8 counts: in C, by the code that moved the jobs */
	exec_sql(db, "UPDATE campaign_counts SET n = CASE state"
		 " WHEN 0 THEN 4 WHEN 1 THEN 2 WHEN 2 THEN 1 WHEN 3 THEN 2"
		 " ELSE 0 END WHERE campaign_id = 1");
	exec_sql(db, "COMMIT");
	sqlite3_close(db);
	/* as schema 8 counts (no claims yet) */
	assert_int_equal(q_int(path, "SELECT count(*) FROM campaign_counts c"
			       " WHERE n <> (SELECT count(*) FROM jobs j"
			       " WHERE j.campaign_id = c.campaign_id"
			       " AND j.state = c.state)"), 0);

	assert_int_equal(store_open(path, NULL, &st, &error), 0);
	assert_int_equal(q_int(path, "PRAGMA user_version"),
			 store_migration_count);
	assert_int_equal(q_int(path, "SELECT count(*) FROM sqlite_schema"
			       " WHERE name IN ('claims', 'jobs_fresh',"
			       " 'jobs_retry')"), 3);
	assert_int_equal(q_int(path, "SELECT count(*) FROM sqlite_schema"
			       " WHERE name = 'jobs_due'"), 0);
	assert_int_equal(store_counts(st, 1, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_QUEUED], 4);
	assert_int_equal(c.by_state[JOB_SENDING], 2);
	assert_int_equal(c.by_state[JOB_DEFERRED], 2);
	assert_int_equal(c.by_state[JOB_SENT], 1);


	/* the dead run's leases come back in doubt */
	assert_int_equal(store_reclaim(st, T0, false, alive_by_name, self, &n,
				       &error), 0);
	assert_int_equal(n, 2);
	for (int id = 7; id <= 8; id++) {
		struct job_row row = job_row(path, id);

		assert_int_equal(row.state, JOB_DEFERRED);
		assert_int_equal(row.doubts, 1);
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.next_attempt_at, T0);
		assert_non_null(strstr(row.reply, "stopped; the message may"));
	}
	/* every job due is claimed and sent, three at a time, once */
	do {
		assert_int_equal(store_claim(st, 1, "new", T0 + rounds, 60000,
					     3, &b, &error), 0);
		for (size_t i = 0; i < b.count; i++) {
			int64_t id = b.jobs[i].id;

			assert_true(id >= 1 && id <= 8);
			assert_false(sent[id]);
			sent[id] = true;
			/* queued ones by a range, the others one by one */
			if (id <= 4)
				assert_int_not_equal(b.jobs[i].claim_id, 0);
			else
				assert_int_equal(b.jobs[i].claim_id, 0);
			assert_int_equal(b.jobs[i].attempts, id <= 4 ? 1 : 2);
			r[i] = result(id, b.jobs[i].claim_id, JOB_SENT);
		}
		if (b.count > 0) {
			assert_int_equal(store_record(st, "new", r, b.count,
						      &stale, &error), 0);
			assert_int_equal(stale, 0);
		}
		rounds++;
	} while (b.count > 0 && rounds < 10);
	assert_int_equal(rounds, 4);		/* 3 + 3 + 2, then none */
	for (int id = 1; id <= 8; id++)
		assert_true(sent[id]);
	assert_int_equal(store_counts(st, 1, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_SENT], 9);
	assert_int_equal(c.total, 9);
	assert_int_equal(q_int(path, "SELECT count(*) FROM claims"), 0);
	store_batch_free(&b);
	store_close(&st);
	assert_counts_recount(path);
	assert_claims_sound(path);
}

/*
 * assert_upgrade_refused - opening the store at path, of schema version,
 * is refused because ELSEWHERE may be sending from it: the error names
 * it, and the store stays at its version.  The error, for more checks.
 */
static const char *assert_upgrade_refused(const char *path, int version)
{
	struct store *st = (struct store *)1;	/* made NULL on failure */
	const char *error;

	assert_int_equal(store_open(path, NULL, &st, &error), -1);
	assert_null(st);
	assert_non_null(strstr(error, ELSEWHERE));
	assert_non_null(strstr(error, "an older volley"));
	assert_int_equal(q_int(path, "PRAGMA user_version"), version);
	return error;
}

/*
 * A store of schema 8 with a job leased until later to an owner that may
 * be alive (another host's run): an older volley may be sending from it,
 * so the upgrade is refused, naming that owner, and nothing changes;
 * once the lease has expired, the store upgrades and the job comes back
 * in doubt.
 */
static void test_migration_from_8_refused_while_sending(void **state)
{
	struct fixture *f = *state;
	char path[128], sql[512], self[300];
	struct store *st = (struct store *)1;	/* made NULL on failure */
	struct store_counts c;
	struct got g;
	const char *error;
	sqlite3 *db;
	int64_t n;

	store_lease_owner_self(self, sizeof(self));
	assert_true(store_lease_owner_alive(ELSEWHERE, self));
	snprintf(path, sizeof(path), "%s/eight-live.db", f->dir);
	make_store_8(path, &db);
	snprintf(sql, sizeof(sql), "INSERT INTO jobs (id, campaign_id,"
		 " import_id, address, next_attempt_at, created_at, state,"
		 " attempts, first_attempt_at, last_attempt_at, lease_owner,"
		 " lease_expires_at) VALUES"
		 " (1, 1, 1, 'a@x.org', 1, 1, 1, 1, 3, 3, '%s', %lld)",
		 ELSEWHERE, (long long)(clock_wall_ms() + 3600000));
	exec_sql(db, sql);
	exec_sql(db, "INSERT INTO jobs (id, campaign_id, import_id, address,"
		 " next_attempt_at, created_at) VALUES"
		 " (2, 1, 1, 'b@x.org', 1, 1)");
	exec_sql(db, "UPDATE campaign_counts SET n = 1"
		 " WHERE campaign_id = 1 AND state IN (0, 1)");

	assert_upgrade_refused(path, 8);
	assert_int_equal(q_int(path, "SELECT count(*) FROM sqlite_schema"
			       " WHERE name = 'claims'"), 0);
	assert_int_equal(q_int(path, "SELECT state FROM jobs WHERE id = 1"),
			 JOB_SENDING);

	/* the old run's lease ends: the upgrade goes ahead */
	exec_sql(db, "UPDATE jobs SET lease_expires_at = 1000 WHERE id = 1");
	sqlite3_close(db);
	assert_int_equal(store_open(path, NULL, &st, &error), 0);
	assert_int_equal(q_int(path, "PRAGMA user_version"),
			 store_migration_count);
	assert_int_equal(store_reclaim(st, T0, false, alive_by_name, self, &n,
				       &error), 0);
	assert_int_equal(n, 1);
	assert_non_null(strstr(job_row(path, 1).reply, "expired"));
	g = claim(st, 1, "new", T0, 60000, 10);
	assert_int_equal(g.count, 2);
	assert_int_equal(g.id[0], 1);		/* deferred first */
	assert_int_equal(g.claim[0], 0);
	assert_int_equal(g.id[1], 2);
	assert_int_not_equal(g.claim[1], 0);
	assert_int_equal(record1(st, "new", 1, g.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(st, "new", 2, g.claim[1], JOB_SENT), 0);
	assert_int_equal(store_counts(st, 1, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_SENT], 2);
	assert_int_equal(c.total, 2);
	store_close(&st);
	assert_counts_recount(path);
	assert_claims_sound(path);
}

/* --- 9. a write that fails leaves the claims as they were ----------------- */

static int refuse_commit(void *ctx)
{
	int *n = ctx;

	return (*n)-- > 0;
}

/*
 * A record whose COMMIT is refused (after the counts were flushed and
 * the claims cut and dropped): nothing of it stays, claims rows
 * included; the same results recorded again are taken, once.  A record
 * failing half way (a result that cannot be) and a claim, release and
 * reclaim whose COMMIT is refused change nothing either.
 */
static void test_failed_writes_leave_claims(void **state)
{
	struct fixture *f = *state;
	struct store_batch batch = { 0 };
	struct store_result r[3];
	struct got a, b;
	const char *error;
	char before[1024];
	size_t stale;
	int64_t j, n = -1;
	int refusals;

	j = import_n(f, f->campaign, "u", 6) - 1;
	a = claim(f->st, f->campaign, "a", T0, 1000, 5);
	assert_int_equal(a.count, 5);
	snprintf(before, sizeof(before), "%s", claims(f, j + 1));
	assert_string_equal(before, "1-5:a");

	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 3, a.claim[2], JOB_QUEUED);
	r[2] = result(j + 5, a.claim[4], JOB_FAILED);
	refusals = 1;
	sqlite3_commit_hook(f->st->db, refuse_commit, &refusals);
	assert_int_equal(store_record(f->st, "a", r, 3, &stale, &error), -1);
	assert_int_equal(sqlite3_get_autocommit(f->st->db), 1);
	assert_string_equal(claims(f, j + 1), before);
	for (int k = 1; k <= 5; k++)
		assert_int_equal(job_row(f->path, j + k).state, JOB_QUEUED);
	assert_counts(f, f->campaign, 1, 5, 0, 0, 0, 0);
	assert_recount_now(f);

	/* half way: the third result cannot be */
	r[2].state = JOB_SENDING;
	assert_int_equal(store_record(f->st, "a", r, 3, &stale, &error), -1);
	assert_non_null(strstr(error, "cannot set state"));
	assert_string_equal(claims(f, j + 1), before);
	assert_counts(f, f->campaign, 1, 5, 0, 0, 0, 0);

	/* again, whole: taken once */
	r[2].state = JOB_FAILED;
	assert_int_equal(store_record(f->st, "a", r, 3, &stale, &error), 0);
	assert_int_equal(stale, 0);
	assert_string_equal(claims(f, j + 1), "1-2:a 3-3:- 4-5:a");
	assert_counts(f, f->campaign, 2, 2, 1, 0, 1, 0);
	assert_recount_now(f);
	snprintf(before, sizeof(before), "%s", claims(f, j + 1));

	/* a claim refused: the free claim stays free, j6 unclaimed */
	refusals = 1;
	assert_int_equal(store_claim(f->st, f->campaign, "b", T0 + 1, 60000,
				     10, &batch, &error), -1);
	assert_int_equal(batch.count, 0);
	assert_string_equal(claims(f, j + 1), before);
	assert_counts(f, f->campaign, 2, 2, 1, 0, 1, 0);
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(b.id[1], j + 6);
	snprintf(before, sizeof(before), "%s", claims(f, j + 1));
	assert_string_equal(before, "1-2:a 3-3:b 4-5:a 6-6:b");

	/* a release refused: a's claims stay a's */
	refusals = 1;
	assert_int_equal(store_release(f->st, "a", &r[0].job_id, 0, &n,
				       &error), -1);
	assert_string_equal(claims(f, j + 1), before);
	assert_counts(f, f->campaign, 0, 4, 1, 0, 1, 0);
	/* a reclaim refused: a's expired claims stay */
	refusals = 1;
	assert_int_equal(store_reclaim(f->st, T0 + 1000, false, NULL, NULL,
				       &n, &error), -1);
	assert_string_equal(claims(f, j + 1), before);
	for (int k = 1; k <= 6; k++)
		assert_int_not_equal(job_row(f->path, j + k).state,
				     JOB_DEFERRED);
	assert_counts(f, f->campaign, 0, 4, 1, 0, 1, 0);
	assert_recount_now(f);
	sqlite3_commit_hook(f->st->db, NULL, NULL);

	/* the reclaim done: a's queued jobs (j2, j4) in doubt, once */
	assert_int_equal(store_reclaim(f->st, T0 + 1000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(job_row(f->path, j + 2).attempts, 1);
	assert_int_equal(job_row(f->path, j + 4).doubts, 1);
	assert_string_equal(claims(f, j + 1), "3-3:b 6-6:b");
	assert_counts(f, f->campaign, 0, 2, 1, 2, 1, 0);
	store_batch_free(&batch);
}

/* --- 10. the report during a claim --------------------------------------- */

struct rows {
	int n;
	struct {
		int64_t job_id;
		int state;
		int attempts;
		int64_t first_attempt_at;
		int64_t last_attempt_at;
		char owner[320];
	} row[16];
};

static int collect(void *ctx, const struct store_report_row *row)
{
	struct rows *rr = ctx;

	if (rr->n < 16) {
		rr->row[rr->n].job_id = row->job_id;
		rr->row[rr->n].state = (int)row->state;
		rr->row[rr->n].attempts = row->attempts;
		rr->row[rr->n].first_attempt_at = row->first_attempt_at;
		rr->row[rr->n].last_attempt_at = row->last_attempt_at;
		snprintf(rr->row[rr->n].owner, sizeof(rr->row[rr->n].owner),
			 "%s", row->lease_owner ? row->lease_owner : "");
	}
	rr->n++;
	return 0;
}

static struct rows report(struct fixture *f, const enum job_state *only)
{
	struct rows rr;
	const char *error;

	memset(&rr, 0, sizeof(rr));
	assert_int_equal(store_report_foreach(f->st, f->campaign, only,
					      collect, &rr, &error), 0);
	return rr;
}

static int campaign_counts(void *ctx, const struct store_campaign *c,
			   const struct store_counts *counts)
{
	struct store_counts *out = ctx;

	if (strcmp(c->name, "news") == 0)
		*out = *counts;
	return 0;
}

/*
 * While a claim of a range is out, the report shows its jobs as the
 * counts do: sending, leased by the claim's owner, attempted once at
 * the claim's time; a job given back is queued and untried again; a job
 * with its result shows the claim's time as its attempt.
 */
static void test_report_during_a_claim(void **state)
{
	struct fixture *f = *state;
	static const char owner[] = "sender-a pid 1 run 1 boot - pidns -"
		" start -";
	enum job_state sending = JOB_SENDING, queued = JOB_QUEUED;
	struct store_counts counts;
	struct rows rr;
	struct got a;
	const char *error;
	int64_t j;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, owner, T0, 60000, 3);
	assert_int_equal(a.count, 3);
	rr = report(f, NULL);
	assert_int_equal(rr.n, 4);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rr.row[i].job_id, j + 1 + i);
		assert_int_equal(rr.row[i].state, JOB_SENDING);
		assert_string_equal(rr.row[i].owner, owner);
		assert_int_equal(rr.row[i].attempts, 1);
		assert_int_equal(rr.row[i].first_attempt_at, T0);
		assert_int_equal(rr.row[i].last_attempt_at, T0);
	}
	assert_int_equal(rr.row[3].state, JOB_QUEUED);
	assert_string_equal(rr.row[3].owner, "");
	assert_int_equal(rr.row[3].attempts, 0);
	assert_int_equal(rr.row[3].first_attempt_at, 0);
	assert_int_equal(rr.row[3].last_attempt_at, 0);
	assert_int_equal(report(f, &sending).n, 3);
	assert_int_equal(report(f, &queued).n, 1);
	assert_int_equal(store_campaign_foreach(f->st, campaign_counts,
						&counts, &error), 0);
	assert_int_equal(counts.by_state[JOB_SENDING], 3);
	assert_int_equal(counts.by_state[JOB_QUEUED], 1);

	/* j2 given back, j1 recorded a little later */
	assert_int_equal(record1(f->st, owner, j + 2, a.claim[1], JOB_QUEUED),
			 0);
	assert_int_equal(record1(f->st, owner, j + 1, a.claim[0], JOB_SENT),
			 0);
	rr = report(f, NULL);
	assert_int_equal(rr.row[0].state, JOB_SENT);
	assert_int_equal(rr.row[0].attempts, 1);
	assert_int_equal(rr.row[0].first_attempt_at, T0);
	assert_int_equal(rr.row[0].last_attempt_at, T0);
	assert_string_equal(rr.row[0].owner, "");
	assert_int_equal(rr.row[1].state, JOB_QUEUED);
	assert_int_equal(rr.row[1].attempts, 0);
	assert_int_equal(rr.row[1].first_attempt_at, 0);
	assert_string_equal(rr.row[1].owner, "");
	assert_int_equal(rr.row[2].state, JOB_SENDING);
	assert_string_equal(rr.row[2].owner, owner);
	assert_int_equal(rr.row[2].attempts, 1);
	assert_int_equal(report(f, &sending).n, 1);
	assert_int_equal(report(f, &queued).n, 2);
	assert_counts(f, f->campaign, 2, 1, 1, 0, 0, 0);
}

/* --- 10. the journal of results (schema 10) ------------------------------ */

/*
 * A final result (sent, failed) for a job queued in its owner's claim is
 * appended to the table results; the job's row still says queued.  What
 * a user relies on: the job reads as done everywhere (jobs_now, the
 * report, the counts, store_job_ref), is never handed out again by any
 * claim (of a freed range, of a new range after its claims are gone),
 * and no later result, give-back, release or reclaim loses it.
 */

/* q_text - the first column of the first row of a query as text, "" if
 * no row or NULL (valid until the next call) */
__attribute__((format(printf, 2, 3)))
static const char *q_text(const char *path, const char *fmt, ...)
{
	static char out[512];
	char sql[1024];
	va_list ap;
	sqlite3 *db = db_open(path);
	sqlite3_stmt *stmt;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	stmt = db_prepare(db, sql);
	if (sqlite3_step(stmt) == SQLITE_ROW &&
	    sqlite3_column_text(stmt, 0) != NULL)
		snprintf(out, sizeof(out), "%s",
			 (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return out;
}

/* journal_rows - the results rows of job id (0 or 1) */
static int64_t journal_rows(const char *path, int64_t id)
{
	return q_int(path, "SELECT count(*) FROM results WHERE job_id = %lld",
		     (long long)id);
}

/* raw_state - the state the jobs row itself says, the journal aside */
static int64_t raw_state(const char *path, int64_t id)
{
	return q_int(path, "SELECT state FROM jobs WHERE id = %lld",
		     (long long)id);
}

/* cursor_of - campaigns.claim_cursor of campaign */
static int64_t cursor_of(struct fixture *f, int64_t campaign)
{
	return q_int(f->path, "SELECT claim_cursor FROM campaigns"
		     " WHERE id = %lld", (long long)campaign);
}

/* One job's row of store_report_foreach, its strings copied. */
struct report_one {
	int64_t job_id;
	int n;			/* rows of that job seen: 1 */
	struct store_report_row row;	/* its strings NULL: see below */
	char reply[128], enhanced[32], queue_id[64], owner[320];
};

static int report_pick(void *ctx, const struct store_report_row *row)
{
	struct report_one *o = ctx;

	if (row->job_id != o->job_id)
		return 0;
	o->n++;
	o->row = *row;
	snprintf(o->reply, sizeof(o->reply), "%s",
		 row->last_reply ? row->last_reply : "");
	snprintf(o->enhanced, sizeof(o->enhanced), "%s",
		 row->last_enhanced ? row->last_enhanced : "");
	snprintf(o->queue_id, sizeof(o->queue_id), "%s",
		 row->queue_id ? row->queue_id : "");
	snprintf(o->owner, sizeof(o->owner), "%s",
		 row->lease_owner ? row->lease_owner : "");
	o->row.address = o->row.last_enhanced = o->row.last_reply = NULL;
	o->row.queue_id = o->row.lease_owner = o->row.bounce_class = NULL;
	return 0;
}

static struct report_one report_of(struct fixture *f, int64_t job)
{
	struct report_one o;
	const char *error;
	int64_t campaign = q_int(f->path, "SELECT campaign_id FROM jobs"
				 " WHERE id = %lld", (long long)job);

	memset(&o, 0, sizeof(o));
	o.job_id = job;
	assert_int_equal(store_report_foreach(f->st, campaign, NULL,
					      report_pick, &o, &error), 0);
	assert_int_equal(o.n, 1);
	return o;
}

/* the attempts store_job_foreach gives for the one job it is called on */
static int foreach_attempts(void *ctx, const struct store_job *job)
{
	*(int *)ctx = job->attempts;
	return 0;
}

/*
 * assert_journaled - job id's final result is in the journal: its row
 * still says queued and untried, one results row says state.  Read
 * through jobs_now, the report, store_job_foreach and store_job_ref it
 * is state, attempted once at its claim's time claimed_at, done at at
 * (its next attempt time too), with the result's code, enhanced code,
 * reply and queue id ("" for none), leased to nobody.
 */
static void assert_journaled(struct fixture *f, int64_t id,
			     enum job_state state, int64_t claimed_at,
			     int64_t at, int code, const char *enhanced,
			     const char *reply, const char *queue_id)
{
	struct job_row row = job_row(f->path, id);
	struct report_one o = report_of(f, id);
	struct store_job_ref ref;
	char address[128];
	const char *error;
	int attempts = -1;

	/* the append path was taken: the row is as the import left it */
	assert_int_equal(raw_state(f->path, id), JOB_QUEUED);
	assert_int_equal(q_int(f->path, "SELECT attempts + coalesce("
			       "first_attempt_at, 0) + coalesce(done_at, 0)"
			       " FROM jobs WHERE id = %lld", (long long)id),
			 0);
	assert_int_equal(journal_rows(f->path, id), 1);
	assert_int_equal(q_int(f->path, "SELECT state FROM results"
			       " WHERE job_id = %lld", (long long)id), state);

	/* jobs_now */
	assert_int_equal(row.state, state);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.first_attempt_at, claimed_at);
	assert_int_equal(row.last_attempt_at, claimed_at);
	assert_int_equal(row.next_attempt_at, at);
	assert_int_equal(row.lease_expires_at, 0);
	assert_string_equal(row.owner, "");
	assert_string_equal(row.reply, reply);
	assert_int_equal(q_int(f->path, "SELECT done_at FROM jobs_now"
			       " WHERE id = %lld", (long long)id), at);
	assert_int_equal(q_int(f->path, "SELECT last_code FROM jobs_now"
			       " WHERE id = %lld", (long long)id), code);
	assert_string_equal(q_text(f->path, "SELECT last_enhanced"
				   " FROM jobs_now WHERE id = %lld",
				   (long long)id), enhanced);
	assert_string_equal(q_text(f->path, "SELECT queue_id FROM jobs_now"
				   " WHERE id = %lld", (long long)id),
			    queue_id);
	assert_int_equal(q_int(f->path, "SELECT journaled FROM jobs_now"
			       " WHERE id = %lld", (long long)id), 1);

	/* the report */
	assert_int_equal(o.row.state, state);
	assert_int_equal(o.row.attempts, 1);
	assert_int_equal(o.row.first_attempt_at, claimed_at);
	assert_int_equal(o.row.last_attempt_at, claimed_at);
	assert_int_equal(o.row.next_attempt_at, at);
	assert_int_equal(o.row.last_code, code);
	assert_string_equal(o.enhanced, enhanced);
	assert_string_equal(o.reply, reply);
	assert_string_equal(o.queue_id, queue_id);
	assert_string_equal(o.owner, "");

	/* store_job_foreach, store_job_ref */
	snprintf(address, sizeof(address), "%s",
		 q_text(f->path, "SELECT address FROM jobs WHERE id = %lld",
			(long long)id));
	assert_int_equal(store_job_foreach(f->st, q_int(f->path,
					   "SELECT campaign_id FROM jobs"
					   " WHERE id = %lld", (long long)id),
					   address, 1, foreach_attempts,
					   &attempts, &error), 0);
	assert_int_equal(attempts, 1);
	assert_int_equal(store_job_ref(f->st, id, &ref, &error), 1);
	assert_int_equal(ref.state, state);
}

/*
 * Sent and failed results of a claim go to the journal: each job reads
 * as done with everything its result said, attempted at the claim's
 * time; the counts and the report agree; a claim whose every job has
 * its result goes, and the next claim takes only the job past it.
 */
static void test_journal_sent_and_failed(void **state)
{
	struct fixture *f = *state;
	enum job_state sent = JOB_SENT, failed = JOB_FAILED;
	enum job_state sending = JOB_SENDING, queued = JOB_QUEUED;
	struct store_result r[2];
	struct got a, b;
	int64_t j;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[0].enhanced = "2.0.0";
	r[0].queue_id = "4XyZq1";
	r[0].at = T0 + 10;
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	r[1].enhanced = "5.1.1";
	r[1].at = T0 + 20;
	assert_int_equal(record(f->st, "a", r, 2), 0);
	assert_journaled(f, j + 1, JOB_SENT, T0, T0 + 10, 250, "2.0.0", "ok",
			 "4XyZq1");
	assert_journaled(f, j + 2, JOB_FAILED, T0, T0 + 20, 550, "5.1.1",
			 "no such user", "");
	assert_counts(f, f->campaign, 1, 1, 1, 0, 1, 0);
	assert_int_equal(report(f, &sent).n, 1);
	assert_int_equal(report(f, &failed).n, 1);
	assert_int_equal(report(f, &sending).n, 1);
	assert_int_equal(report(f, &queued).n, 1);
	assert_string_equal(claims(f, j + 1), "1-3:a");
	assert_recount_now(f);

	/* the claim's last job, sent in doubt: its doubt is counted */
	r[0] = result(j + 3, a.claim[2], JOB_SENT);
	r[0].in_doubt = true;
	r[0].at = T0 + 30;
	assert_int_equal(record(f->st, "a", r, 1), 0);
	assert_journaled(f, j + 3, JOB_SENT, T0, T0 + 30, 250, "", "ok", "");
	assert_int_equal(job_row(f->path, j + 3).doubts, 1);
	assert_counts(f, f->campaign, 1, 0, 2, 0, 1, 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_int_equal(cursor_of(f, f->campaign), j + 3);
	assert_int_equal(report(f, &sent).n, 2);
	assert_int_equal(report(f, &sending).n, 0);

	/* only the job past the claim is claimed next */
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 4);
	assert_int_equal(b.attempts[0], 1);
	assert_int_equal(record1(f->st, "b", j + 4, b.claim[0], JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 3, 0, 1, 0);
	assert_int_equal(claim(f->st, f->campaign, "c", T0 + 2, 60000,
			       10).count, 0);
}

/*
 * Results that come twice for one job of a claim: a second one after
 * "sent" is stale (one results row, still sent; a "deferred" after it
 * never makes the job due again); "sent" after "failed" wins, and the
 * job's row is folded: its journal row written into it and removed,
 * its attempt counted once.
 */
static void test_journal_duplicate_results(void **state)
{
	struct fixture *f = *state;
	struct store_result r[2];
	struct job_row row;
	struct got a;
	int64_t j;

	j = import_n(f, f->campaign, "u", 6) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 6);
	assert_int_equal(a.count, 6);

	/* sent, then sent again */
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 1);
	assert_int_equal(record1(f->st, "a", j + 1, 0, JOB_SENT), 1);
	assert_int_equal(journal_rows(f->path, j + 1), 1);
	assert_int_equal(job_row(f->path, j + 1).attempts, 1);
	/* sent, then failed: stays sent */
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "a", j + 2, 0, JOB_FAILED), 1);
	row = job_row(f->path, j + 2);
	assert_int_equal(row.state, JOB_SENT);
	assert_string_equal(row.reply, "ok");
	assert_int_equal(journal_rows(f->path, j + 2), 1);
	/* sent, then deferred: stays sent, not in jobs_retry */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2],
				 JOB_DEFERRED), 1);
	assert_int_equal(record1(f->st, "a", j + 3, 0, JOB_DEFERRED), 1);
	row = job_row(f->path, j + 3);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.next_attempt_at, T0 + 10);
	assert_int_equal(raw_state(f->path, j + 3), JOB_QUEUED);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM jobs"
			       " WHERE state = 3"), 0);
	assert_counts(f, f->campaign, 0, 3, 3, 0, 0, 0);
	assert_recount_now(f);

	/* failed, then sent: sent wins, the row folded */
	r[0] = result(j + 4, a.claim[3], JOB_FAILED);
	r[0].enhanced = "5.1.1";
	assert_int_equal(record(f->st, "a", r, 1), 0);
	assert_counts(f, f->campaign, 0, 2, 3, 0, 1, 0);
	r[0] = result(j + 4, a.claim[3], JOB_SENT);
	r[0].at = T0 + 20;
	r[0].queue_id = "Q4";
	assert_int_equal(record(f->st, "a", r, 1), 0);
	assert_counts(f, f->campaign, 0, 2, 4, 0, 0, 0);
	assert_int_equal(journal_rows(f->path, j + 4), 0);
	assert_int_equal(raw_state(f->path, j + 4), JOB_SENT);
	assert_int_equal(q_int(f->path, "SELECT attempts FROM jobs"
			       " WHERE id = %lld", (long long)(j + 4)), 1);
	row = job_row(f->path, j + 4);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.doubts, 0);
	assert_int_equal(row.first_attempt_at, T0);
	assert_int_equal(row.last_attempt_at, T0);
	assert_int_equal(row.next_attempt_at, T0 + 20);
	assert_string_equal(row.reply, "ok");
	assert_int_equal(q_int(f->path, "SELECT done_at FROM jobs_now"
			       " WHERE id = %lld", (long long)(j + 4)),
			 T0 + 20);
	assert_string_equal(q_text(f->path, "SELECT queue_id FROM jobs_now"
				   " WHERE id = %lld", (long long)(j + 4)),
			    "Q4");
	assert_string_equal(q_text(f->path, "SELECT coalesce(last_enhanced,"
				   " '') FROM jobs_now WHERE id = %lld",
				   (long long)(j + 4)), "");
	/* and after that, nothing moves it */
	assert_int_equal(record1(f->st, "a", j + 4, a.claim[3], JOB_SENT), 1);
	assert_int_equal(record1(f->st, "a", j + 4, a.claim[3], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "a", j + 4, a.claim[3], JOB_QUEUED),
			 1);
	assert_int_equal(job_row(f->path, j + 4).state, JOB_SENT);

	/* failed and sent in one record */
	r[0] = result(j + 5, a.claim[4], JOB_FAILED);
	r[1] = result(j + 5, a.claim[4], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 2), 0);
	assert_int_equal(journal_rows(f->path, j + 5), 0);
	row = job_row(f->path, j + 5);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.attempts, 1);
	/* sent twice in one record */
	r[0] = result(j + 6, a.claim[5], JOB_SENT);
	r[1] = result(j + 6, a.claim[5], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 2), 1);
	assert_int_equal(journal_rows(f->path, j + 6), 1);
	assert_int_equal(job_row(f->path, j + 6).attempts, 1);
	assert_counts(f, f->campaign, 0, 0, 6, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");

	/* long past the due time the "deferred" asked: nothing is due */
	assert_int_equal(claim(f->st, f->campaign, "b", T0 + 7200000, 60000,
			       10).count, 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM jobs_now"
			       " WHERE state <> 2"), 0);
}

/*
 * A record whose COMMIT is refused after it appended a result, or after
 * it folded one: the journal and the rows are as they were; recorded
 * again, taken once.
 */
static void test_journal_write_refused(void **state)
{
	struct fixture *f = *state;
	struct store_result r;
	const char *error;
	struct got a;
	size_t stale;
	int64_t j;
	int refusals;

	j = import_n(f, f->campaign, "u", 2) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 2);
	assert_int_equal(a.count, 2);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_FAILED),
			 0);

	sqlite3_commit_hook(f->st->db, refuse_commit, &refusals);
	/* an append refused */
	refusals = 1;
	r = result(j + 2, a.claim[1], JOB_SENT);
	assert_int_equal(store_record(f->st, "a", &r, 1, &stale, &error), -1);
	assert_int_equal(journal_rows(f->path, j + 2), 0);
	assert_int_equal(job_row(f->path, j + 2).state, JOB_QUEUED);
	/* a fold refused */
	refusals = 1;
	r = result(j + 1, a.claim[0], JOB_SENT);
	assert_int_equal(store_record(f->st, "a", &r, 1, &stale, &error), -1);
	assert_int_equal(journal_rows(f->path, j + 1), 1);
	assert_int_equal(raw_state(f->path, j + 1), JOB_QUEUED);
	assert_int_equal(job_row(f->path, j + 1).state, JOB_FAILED);
	assert_counts(f, f->campaign, 0, 1, 0, 0, 1, 0);
	assert_string_equal(claims(f, j + 1), "1-2:a");
	assert_recount_now(f);
	sqlite3_commit_hook(f->st->db, NULL, NULL);

	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(journal_rows(f->path, j + 1), 0);
	assert_int_equal(journal_rows(f->path, j + 2), 1);
	assert_int_equal(job_row(f->path, j + 1).attempts, 1);
	assert_int_equal(job_row(f->path, j + 2).attempts, 1);
	assert_counts(f, f->campaign, 0, 0, 2, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
}

/*
 * A known claim (made by this connection, consecutive ids) whose record
 * of two of its three jobs is refused at COMMIT: what the connection had
 * noted (those two with a result) never was, so when the third is
 * recorded the claim must stay, the two still queued in it; were it
 * deleted, they would lie below the claim cursor in no claim, and nobody
 * would ever send them.
 */
static void test_journal_known_claim_refused_commit(void **state)
{
	struct fixture *f = *state;
	struct store_result r[3];
	const char *error;
	struct got a, b;
	size_t stale;
	int64_t j;
	int refusals;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);
	for (int i = 0; i < 3; i++)
		r[i] = result(a.id[i], a.claim[i], JOB_SENT);
	sqlite3_commit_hook(f->st->db, refuse_commit, &refusals);
	refusals = 1;
	assert_int_equal(store_record(f->st, "a", r, 2, &stale, &error), -1);
	sqlite3_commit_hook(f->st->db, NULL, NULL);
	assert_string_equal(claims(f, j + 1), "1-3:a");
	assert_counts(f, f->campaign, 0, 3, 0, 0, 0, 0);

	assert_int_equal(record(f->st, "a", &r[2], 1), 0);
	assert_string_equal(claims(f, j + 1), "1-3:a");
	assert_counts(f, f->campaign, 0, 2, 1, 0, 0, 0);
	assert_recount_now(f);
	/* the owner releases them; untried, they are claimed next */
	assert_int_equal(store_release(f->st, "a", NULL, 0, NULL, &error), 0);
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.id[0], j + 1);
	assert_int_equal(b.id[1], j + 2);
	r[0] = result(b.id[0], b.claim[0], JOB_SENT);
	r[1] = result(b.id[1], b.claim[1], JOB_SENT);
	assert_int_equal(record(f->st, "b", r, 2), 0);
	assert_counts(f, f->campaign, 0, 0, 3, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
}

/*
 * A known claim finished by results of every kind, in two records: a
 * deferral (into the job's row: it must reach jobs_retry), a sent and a
 * failed one (the journal); the claim stays while its last job is
 * queued, goes with that job's result, and the deferred job comes back
 * when due, leased by itself, once.
 */
static void test_journal_known_claim_mixed(void **state)
{
	struct fixture *f = *state;
	struct store_result r[3];
	struct got a, b;
	int64_t j;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 4);
	assert_int_equal(a.count, 4);
	r[0] = result(a.id[0], a.claim[0], JOB_DEFERRED);
	r[1] = result(a.id[1], a.claim[1], JOB_SENT);
	r[2] = result(a.id[2], a.claim[2], JOB_FAILED);
	assert_int_equal(record(f->st, "a", r, 3), 0);
	assert_string_equal(claims(f, j + 1), "1-4:a");
	assert_counts(f, f->campaign, 0, 1, 1, 1, 1, 0);
	assert_int_equal(journal_rows(f->path, j + 1), 0);
	assert_int_equal(raw_state(f->path, j + 1), JOB_DEFERRED);
	assert_int_equal(journal_rows(f->path, j + 2), 1);
	assert_int_equal(journal_rows(f->path, j + 3), 1);
	assert_recount_now(f);
	assert_int_equal(record1(f->st, "a", j + 4, a.claim[3], JOB_SENT), 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 0, 2, 1, 1, 0);
	/* not due yet; then due, alone, leased by itself */
	assert_int_equal(claim(f->st, f->campaign, "b", T0 + 1, 60000,
			       10).count, 0);
	b = claim(f->st, f->campaign, "b", T0 + 3600000, 60000, 10);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 1);
	assert_int_equal(b.claim[0], 0);
	assert_int_equal(b.attempts[0], 2);
	assert_int_equal(record1(f->st, "b", j + 1, 0, JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 3, 0, 1, 0);
	assert_int_equal(claim(f->st, f->campaign, "c", T0 + 7200000, 60000,
			       10).count, 0);
}

/*
 * A release with some jobs of the claim journaled, some not, some kept:
 * the next claim, by another owner, gets exactly the unrecorded unkept
 * ones (then the ones past the claim), never a journaled one; the kept
 * ones are in doubt once their owner is gone; a keep list that names a
 * journaled job does not make it leased, nor in doubt later.
 */
static void test_journal_release(void **state)
{
	struct fixture *f = *state;
	struct store_result r[8];
	struct job_row row;
	struct got a, b, c;
	const char *error;
	int64_t j, keep[2], n;

	j = import_n(f, f->campaign, "u", 8) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 6);
	assert_int_equal(a.count, 6);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	r[2] = result(j + 5, a.claim[4], JOB_SENT);
	r[2].at = T0 + 50;
	assert_int_equal(record(f->st, "a", r, 3), 0);
	assert_counts(f, f->campaign, 2, 3, 2, 0, 1, 0);

	keep[0] = j + 4;	/* not recorded: its message may have left */
	keep[1] = j + 5;	/* journaled: kept by mistake */
	assert_int_equal(store_release(f->st, "a", keep, 2, &n, &error), 0);
	assert_int_equal(n, 2);				/* j3, j6 */
	assert_counts(f, f->campaign, 4, 1, 2, 0, 1, 0);
	assert_string_equal(claims(f, j + 1), "1-6:-");
	row = job_row(f->path, j + 4);
	assert_int_equal(row.state, JOB_SENDING);
	assert_string_equal(row.owner, "a");
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.first_attempt_at, T0);
	assert_journaled(f, j + 5, JOB_SENT, T0, T0 + 50, 250, "", "ok", "");
	assert_journaled(f, j + 1, JOB_SENT, T0, T0 + 10, 250, "", "ok", "");
	assert_journaled(f, j + 2, JOB_FAILED, T0, T0 + 10, 550, "",
			 "no such user", "");
	for (int k = 3; k <= 6; k += 3) {
		row = job_row(f->path, j + k);
		assert_int_equal(row.state, JOB_QUEUED);
		assert_int_equal(row.attempts, 0);
		assert_int_equal(row.first_attempt_at, 0);
	}
	assert_recount_now(f);
	/* released again: nothing more, j5 still not leased */
	assert_int_equal(store_release(f->st, "a", keep, 2, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_string_equal(job_row(f->path, j + 5).owner, "");

	/* the next claim: j3, j6 from the freed claim, then j7, j8 */
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 4);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(b.id[1], j + 6);
	assert_int_equal(b.id[2], j + 7);
	assert_int_equal(b.id[3], j + 8);
	assert_int_equal(b.claim[0], b.claim[1]);
	assert_int_equal(b.claim[2], b.claim[3]);
	assert_int_not_equal(b.claim[0], b.claim[2]);
	for (size_t i = 0; i < b.count; i++)
		assert_int_equal(b.attempts[i], 1);
	assert_counts(f, f->campaign, 0, 5, 2, 0, 1, 0);
	assert_recount_now(f);

	/* a is gone: only its kept, unrecorded job is in doubt */
	assert_int_equal(store_reclaim(f->st, T0 + 2, false, alive_except_a,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 1);
	row = job_row(f->path, j + 4);
	assert_int_equal(row.state, JOB_DEFERRED);
	assert_int_equal(row.doubts, 1);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.next_attempt_at, T0 + 2);
	assert_journaled(f, j + 5, JOB_SENT, T0, T0 + 50, 250, "", "ok", "");
	assert_int_equal(job_row(f->path, j + 5).doubts, 0);
	assert_counts(f, f->campaign, 0, 4, 2, 1, 1, 0);

	assert_int_equal(record_got(f->st, "b", &b, JOB_SENT), 0);
	assert_string_equal(claims(f, j + 1), "");
	c = claim(f->st, f->campaign, "c", T0 + 3, 60000, 10);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.id[0], j + 4);
	assert_int_equal(c.claim[0], 0);
	assert_int_equal(c.attempts[0], 2);
	assert_int_equal(record1(f->st, "c", j + 4, 0, JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 7, 0, 1, 0);
	assert_int_equal(claim(f->st, f->campaign, "c", T0 + 4, 60000,
			       10).count, 0);
}

/*
 * A release where every unrecorded job is kept and the others are
 * journaled: nothing is given back, the claim goes; the next claim
 * starts past it.
 */
static void test_journal_release_all_kept(void **state)
{
	struct fixture *f = *state;
	struct got a, b;
	const char *error;
	int64_t j, keep, n;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_FAILED),
			 0);
	keep = j + 2;
	assert_int_equal(store_release(f->st, "a", &keep, 1, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_int_equal(cursor_of(f, f->campaign), j + 3);
	assert_counts(f, f->campaign, 1, 1, 1, 0, 1, 0);
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 4);
	assert_int_equal(record1(f->st, "b", j + 4, b.claim[0], JOB_SENT), 0);
	/* the kept one's lease ends: in doubt, once */
	assert_int_equal(store_reclaim(f->st, T0 + 60000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(job_row(f->path, j + 2).state, JOB_DEFERRED);
	assert_int_equal(job_row(f->path, j + 1).doubts, 0);
	assert_int_equal(job_row(f->path, j + 3).doubts, 0);
	assert_counts(f, f->campaign, 0, 0, 2, 1, 1, 0);
}

/*
 * A job a release kept (leased by itself, its only attempt that lease)
 * handed back afterwards, by a second release of the same owner or by a
 * give-back naming no claim: its claim is gone and the claim cursor
 * stands past it, so were it queued again no claim would ever take it
 * (found in review: the campaign would never finish).  It is deferred,
 * due at once, with no attempt counted, and the next claim takes it.
 */
static void test_journal_kept_job_given_back(void **state)
{
	struct fixture *f = *state;
	struct job_row row;
	struct got a, b;
	const char *error;
	int64_t j, keep[2], n;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 4);
	assert_int_equal(a.count, 4);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_SENT), 0);
	keep[0] = j + 3;
	keep[1] = j + 4;
	assert_int_equal(store_release(f->st, "a", keep, 2, &n, &error), 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_int_equal(cursor_of(f, f->campaign), j + 4);
	assert_counts(f, f->campaign, 0, 2, 2, 0, 0, 0);
	assert_recount_now(f);

	/* the same owner releases again, keeping nothing */
	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_counts(f, f->campaign, 0, 0, 2, 2, 0, 0);
	assert_recount_now(f);
	for (int64_t id = j + 3; id <= j + 4; id++) {
		row = job_row(f->path, id);
		assert_int_equal(row.state, JOB_DEFERRED);
		assert_int_equal(row.attempts, 0);
		assert_int_equal(row.first_attempt_at, 0);
		assert_string_equal(row.owner, "");
		assert_true(row.next_attempt_at <= T0 + 1);
	}
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.id[0] + b.id[1], 2 * j + 7);
	assert_int_equal(b.claim[0], 0);	/* leased by themselves */
	/* one given back by a result that names no claim: deferred again */
	assert_int_equal(record1(f->st, "b", j + 3, 0, JOB_QUEUED), 0);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_DEFERRED);
	assert_int_equal(job_row(f->path, j + 3).attempts, 0);
	assert_int_equal(record1(f->st, "b", j + 4, 0, JOB_SENT), 0);
	b = claim(f->st, f->campaign, "c", T0 + 2, 60000, 10);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(record1(f->st, "c", j + 3, 0, JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 4, 0, 0, 0);
	assert_int_equal(job_row(f->path, j + 3).attempts, 1);
}

/*
 * Reclaims of a claim whose owner is gone and of a claim whose lease
 * expired, each with jobs journaled: only the unrecorded jobs go in
 * doubt (deferred, doubts 1, the claim's attempt counted once); the
 * journaled ones stay sent or failed, doubts 0; later claims hand out
 * the doubtful ones, never the journaled ones.
 */
static void test_journal_reclaim(void **state)
{
	struct fixture *f = *state;
	struct store_result r[4];
	struct job_row row;
	struct got a, o, g, h;
	const char *error;
	int64_t j, k, n;

	j = import_n(f, f->campaign, "u", 5) - 1;
	k = import_n(f, f->other, "v", 4) - 1;
	a = claim(f->st, f->campaign, "b", T0, 1000, 5);	/* b: alive */
	o = claim(f->st, f->other, "a", T0, 3600000, 4);	/* a: gone */
	assert_int_equal(a.count, 5);
	assert_int_equal(o.count, 4);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[0].queue_id = "Q1";
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	r[1].enhanced = "5.1.1";
	assert_int_equal(record(f->st, "b", r, 2), 0);
	r[0] = result(k + 1, o.claim[0], JOB_FAILED);
	r[1] = result(k + 3, o.claim[2], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 2), 0);

	/* the owner gone */
	assert_int_equal(store_reclaim(f->st, T0 + 1, false, alive_except_a,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_string_equal(claims_of(f->path, f->other, k + 1), "");
	assert_string_equal(claims(f, j + 1), "1-5:b");
	for (int i = 2; i <= 4; i += 2) {
		row = job_row(f->path, k + i);
		assert_int_equal(row.state, JOB_DEFERRED);
		assert_int_equal(row.doubts, 1);
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.first_attempt_at, T0);
		assert_int_equal(row.next_attempt_at, T0 + 1);
		assert_non_null(strstr(row.reply, "interrupted: sender a "
				       "stopped"));
	}
	assert_journaled(f, k + 1, JOB_FAILED, T0, T0 + 10, 550, "",
			 "no such user", "");
	assert_journaled(f, k + 3, JOB_SENT, T0, T0 + 10, 250, "", "ok", "");
	assert_int_equal(job_row(f->path, k + 1).doubts, 0);
	assert_int_equal(job_row(f->path, k + 3).doubts, 0);
	assert_counts(f, f->other, 0, 0, 1, 2, 1, 0);
	assert_recount_now(f);

	/* the lease expired */
	assert_int_equal(store_reclaim(f->st, T0 + 999, false, NULL, NULL, &n,
				       &error), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_reclaim(f->st, T0 + 1000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 3);
	assert_string_equal(claims(f, j + 1), "");
	for (int i = 3; i <= 5; i++) {
		row = job_row(f->path, j + i);
		assert_int_equal(row.state, JOB_DEFERRED);
		assert_int_equal(row.doubts, 1);
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.next_attempt_at, T0 + 1000);
		assert_non_null(strstr(row.reply, "expired"));
	}
	assert_journaled(f, j + 1, JOB_SENT, T0, T0 + 10, 250, "", "ok",
			 "Q1");
	assert_journaled(f, j + 2, JOB_FAILED, T0, T0 + 10, 550, "5.1.1",
			 "no such user", "");
	assert_int_equal(job_row(f->path, j + 1).doubts, 0);
	assert_int_equal(job_row(f->path, j + 2).doubts, 0);
	assert_counts(f, f->campaign, 0, 0, 1, 3, 1, 0);
	/* a reclaim again changes nothing */
	assert_int_equal(store_reclaim(f->st, T0 + 5000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 0);

	/* late results of the old owners: stale, but for "sent" */
	assert_int_equal(record1(f->st, "b", j + 3, a.claim[2], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "b", j + 1, a.claim[0], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "b", j + 2, a.claim[1], JOB_QUEUED),
			 1);
	assert_int_equal(job_row(f->path, j + 1).state, JOB_SENT);
	assert_int_equal(job_row(f->path, j + 2).state, JOB_FAILED);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_DEFERRED);

	/* the doubtful ones come again, one by one; the others never */
	g = claim(f->st, f->campaign, "c", T0 + 1000, 60000, 10);
	h = claim(f->st, f->other, "c", T0 + 1000, 60000, 10);
	assert_int_equal(g.count, 3);
	assert_int_equal(h.count, 2);
	for (int i = 3; i <= 5; i++)
		assert_true(got_has(&g, j + i) >= 0);
	assert_true(got_has(&h, k + 2) >= 0);
	assert_true(got_has(&h, k + 4) >= 0);
	for (size_t i = 0; i < g.count; i++) {
		assert_int_equal(g.claim[i], 0);
		assert_int_equal(g.attempts[i], 2);
		r[i] = result(g.id[i], 0, JOB_SENT);
	}
	assert_int_equal(record(f->st, "c", r, g.count), 0);
	for (size_t i = 0; i < h.count; i++)
		r[i] = result(h.id[i], 0, JOB_SENT);
	assert_int_equal(record(f->st, "c", r, h.count), 0);
	assert_counts(f, f->campaign, 0, 0, 4, 0, 1, 0);
	assert_counts(f, f->other, 0, 0, 3, 0, 1, 0);
	assert_int_equal(claim(f->st, f->campaign, "c", T0 + 9999999, 60000,
			       10).count, 0);
	assert_int_equal(claim(f->st, f->other, "c", T0 + 9999999, 60000,
			       10).count, 0);
}

/*
 * A give-back of a journaled job is stale and changes nothing; a
 * give-back of the one unrecorded job of a claim whose others are
 * journaled leaves only that job in a free claim: the next claim gets
 * it, alone.
 */
static void test_journal_give_back(void **state)
{
	struct fixture *f = *state;
	struct store_result r[3];
	struct got a, b, c;
	int64_t j;

	j = import_n(f, f->campaign, "u", 5) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 4);
	assert_int_equal(a.count, 4);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	r[2] = result(j + 4, a.claim[3], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 3), 0);
	assert_counts(f, f->campaign, 1, 1, 2, 0, 1, 0);

	/* journaled jobs handed back: stale */
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_QUEUED),
			 1);
	assert_int_equal(record1(f->st, "a", j + 2, 0, JOB_QUEUED), 1);
	assert_int_equal(record1(f->st, "a", j + 4, a.claim[3], JOB_QUEUED),
			 1);
	assert_string_equal(claims(f, j + 1), "1-4:a");
	assert_counts(f, f->campaign, 1, 1, 2, 0, 1, 0);
	assert_journaled(f, j + 1, JOB_SENT, T0, T0 + 10, 250, "", "ok", "");
	assert_journaled(f, j + 2, JOB_FAILED, T0, T0 + 10, 550, "",
			 "no such user", "");
	assert_journaled(f, j + 4, JOB_SENT, T0, T0 + 10, 250, "", "ok", "");

	/* the unrecorded one handed back: its claim's other parts go */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_QUEUED),
			 0);
	assert_string_equal(claims(f, j + 1), "3-3:-");
	assert_counts(f, f->campaign, 2, 0, 2, 0, 1, 0);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_QUEUED);
	assert_int_equal(job_row(f->path, j + 3).attempts, 0);
	assert_recount_now(f);

	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 1);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(b.attempts[0], 1);
	assert_string_equal(claims(f, j + 1), "3-3:b");
	c = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(c.count, 1);
	assert_int_equal(c.id[0], j + 5);
	r[0] = result(j + 3, b.claim[0], JOB_SENT);
	r[1] = result(j + 5, c.claim[0], JOB_SENT);
	assert_int_equal(record(f->st, "b", r, 2), 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 0, 4, 0, 1, 0);
	/* a's late results for its old jobs: stale */
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_FAILED),
			 1);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_SENT);
	assert_int_equal(claim(f->st, f->campaign, "c", T0 + 2, 60000,
			       10).count, 0);
}

/*
 * Round after round, claims are made, recorded whole and deleted, and
 * more recipients are imported: each claim gets exactly the new
 * recipients, never a journaled job (jobs_fresh still holds them all),
 * and claim_cursor keeps the end of the last deleted claim.
 */
static void test_journal_claim_rounds(void **state)
{
	struct fixture *f = *state;
	struct store_result r[8];
	int seen[32] = { 0 };
	int64_t j, first, last;
	int total = 0, failed = 0;

	j = import_n(f, f->campaign, "r0-", 7) - 1;
	first = j + 1;
	last = j + 7;
	for (int round = 0; round < 5; round++) {
		char owner[8], prefix[8];
		struct got g;

		snprintf(owner, sizeof(owner), "o%d", round);
		g = claim(f->st, f->campaign, owner, T0 + round, 60000, 7);
		assert_int_equal(g.count, (size_t)(last - first + 1));
		for (size_t i = 0; i < g.count; i++) {
			assert_int_equal(g.id[i], first + (int64_t)i);
			assert_int_equal(g.attempts[i], 1);
			assert_true(g.id[i] - j - 1 < 32);
			seen[g.id[i] - j - 1]++;
			r[i] = result(g.id[i], g.claim[i],
				      i % 3 == 1 ? JOB_FAILED : JOB_SENT);
			failed += i % 3 == 1;
		}
		total += (int)g.count;
		assert_int_equal(record(f->st, owner, r, g.count), 0);
		assert_string_equal(claims(f, j + 1), "");
		assert_int_equal(cursor_of(f, f->campaign), last);
		assert_counts(f, f->campaign, 0, 0, total - failed, 0, failed,
			      0);
		/* an old owner's "sent" again: stale */
		if (round > 0)
			assert_int_equal(record1(f->st, "o0", j + 1, 0,
						 JOB_SENT), 1);
		/* nothing more to claim */
		assert_int_equal(claim(f->st, f->campaign, "x", T0 + round,
				       60000, 7).count, 0);
		assert_recount_now(f);
		snprintf(prefix, sizeof(prefix), "r%d-", round + 1);
		first = import_n(f, f->campaign, prefix, 3);
		last = first + 2;
	}
	assert_int_equal(total, 7 + 4 * 3);
	for (int i = 0; i < total; i++)
		assert_int_equal(seen[i], 1);
	/* every one of them still queued in its row, done in the journal */
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM jobs"
			       " WHERE campaign_id = %lld AND state = 0"
			       " AND id <= %lld", (long long)f->campaign,
			       (long long)(first - 1)), total);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM results"),
			 total);
	/* the last import: claimed once */
	assert_int_equal(claim(f->st, f->campaign, "o5", T0 + 5, 60000,
			       7).count, 3);
	assert_counts(f, f->campaign, 0, 3, total - failed, 0, failed, 0);
}

/*
 * A free claim whose tail is journaled, taken in parts: the rest of the
 * range after the part taken stays a free claim with no queued job;
 * the claim that drops it must not then claim from below its end (a
 * fresh claim does not look in the journal).
 */
static void test_journal_free_claim_tail(void **state)
{
	struct fixture *f = *state;
	struct store_result r[4];
	struct got a, b, c;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 8) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 6);
	assert_int_equal(a.count, 6);
	r[0] = result(j + 2, a.claim[1], JOB_SENT);
	r[1] = result(j + 4, a.claim[3], JOB_SENT);
	r[2] = result(j + 5, a.claim[4], JOB_FAILED);
	r[3] = result(j + 6, a.claim[5], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 4), 0);
	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 2);				/* j1, j3 */
	assert_string_equal(claims(f, j + 1), "1-6:-");

	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 1);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.id[0], j + 1);
	assert_string_equal(claims(f, j + 1), "1-1:b 2-6:-");
	c = claim(f->st, f->campaign, "c", T0 + 2, 60000, 10);
	assert_int_equal(c.count, 3);
	assert_int_equal(c.id[0], j + 3);
	assert_int_equal(c.id[1], j + 7);
	assert_int_equal(c.id[2], j + 8);
	assert_string_equal(claims(f, j + 1), "1-1:b 3-3:c 7-8:c");
	assert_int_equal(cursor_of(f, f->campaign), j + 6);
	assert_counts(f, f->campaign, 0, 4, 3, 0, 1, 0);
	assert_recount_now(f);

	assert_int_equal(record1(f->st, "b", j + 1, b.claim[0], JOB_SENT), 0);
	assert_int_equal(record_got(f->st, "c", &c, JOB_SENT), 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 0, 7, 0, 1, 0);
	assert_int_equal(claim(f->st, f->campaign, "d", T0 + 3, 60000,
			       10).count, 0);
}

/*
 * Late "sent" results.  Owner b's claim was released and taken by a, who
 * recorded its first job failed (journaled); b's message had gone after
 * all: b's late "sent" wins, the row folded, the attempt a's claim made
 * counted once.  Then b's late "sent" for a job still queued in a's
 * claim: recorded, with a's claim's attempt at its time; a's own results
 * for it are stale after that.
 */
static void test_journal_late_sent(void **state)
{
	struct fixture *f = *state;
	struct store_result r[3];
	struct job_row row;
	struct got a, b, c;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 5) - 1;
	b = claim(f->st, f->campaign, "b", T0, 60000, 3);
	assert_int_equal(b.count, 3);
	assert_int_equal(store_release(f->st, "b", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 3);
	a = claim(f->st, f->campaign, "a", T0 + 5, 60000, 3);
	assert_int_equal(a.count, 3);
	assert_int_equal(a.id[0], j + 1);
	assert_int_equal(a.claim[0], b.claim[0]);	/* the same row */
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_FAILED),
			 0);
	assert_int_equal(journal_rows(f->path, j + 1), 1);
	assert_counts(f, f->campaign, 2, 2, 0, 0, 1, 0);

	r[0] = result(j + 1, b.claim[0], JOB_SENT);
	r[0].at = T0 + 20;
	r[0].queue_id = "B1";
	assert_int_equal(record(f->st, "b", r, 1), 0);
	assert_counts(f, f->campaign, 2, 2, 1, 0, 0, 0);
	assert_int_equal(journal_rows(f->path, j + 1), 0);
	assert_int_equal(raw_state(f->path, j + 1), JOB_SENT);
	row = job_row(f->path, j + 1);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.first_attempt_at, T0 + 5);
	assert_int_equal(row.last_attempt_at, T0 + 5);
	assert_int_equal(row.next_attempt_at, T0 + 20);
	assert_string_equal(row.reply, "ok");
	assert_string_equal(q_text(f->path, "SELECT queue_id FROM jobs_now"
				   " WHERE id = %lld", (long long)(j + 1)),
			    "B1");
	assert_int_equal(q_int(f->path, "SELECT done_at FROM jobs_now"
			       " WHERE id = %lld", (long long)(j + 1)),
			 T0 + 20);
	/* a's results for it now: stale */
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 1);
	assert_int_equal(record1(f->st, "b", j + 1, b.claim[0], JOB_SENT), 1);
	assert_int_equal(job_row(f->path, j + 1).state, JOB_SENT);
	assert_string_equal(claims(f, j + 1), "1-3:a");
	assert_recount_now(f);

	/* a late "sent" for a job queued in a's (new) claim */
	c = claim(f->st, f->campaign, "a", T0 + 7, 60000, 2);
	assert_int_equal(c.count, 2);
	assert_int_equal(c.id[0], j + 4);
	assert_int_equal(record1(f->st, "b", j + 4, c.claim[0], JOB_SENT), 0);
	row = job_row(f->path, j + 4);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.first_attempt_at, T0 + 7);
	assert_int_equal(row.last_attempt_at, T0 + 7);
	assert_int_equal(journal_rows(f->path, j + 4), 0);
	assert_int_equal(raw_state(f->path, j + 4), JOB_SENT);
	assert_counts(f, f->campaign, 0, 3, 2, 0, 0, 0);
	assert_int_equal(record1(f->st, "a", j + 4, c.claim[0], JOB_FAILED),
			 1);
	assert_int_equal(record1(f->st, "a", j + 4, c.claim[0], JOB_SENT), 1);
	assert_int_equal(record1(f->st, "a", j + 4, c.claim[0], JOB_QUEUED),
			 1);
	assert_int_equal(job_row(f->path, j + 4).state, JOB_SENT);
	assert_counts(f, f->campaign, 0, 3, 2, 0, 0, 0);

	r[0] = result(j + 2, a.claim[1], JOB_SENT);
	r[1] = result(j + 3, a.claim[2], JOB_FAILED);
	r[2] = result(j + 5, c.claim[1], JOB_SENT);
	assert_int_equal(record(f->st, "a", r, 3), 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 0, 4, 0, 1, 0);
	assert_int_equal(claim(f->st, f->campaign, "c", T0 + 8, 60000,
			       10).count, 0);
}

/*
 * A claim whose jobs all got their results by other routes than its
 * owner's record (a journaled one, a late "sent" from elsewhere) has no
 * queued job left: its release or reclaim gives nothing back and drops
 * it, and nothing of it is claimed again.
 */
static void test_journal_claim_emptied_elsewhere(void **state)
{
	struct fixture *f = *state;
	struct got a, g;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 6) - 1;
	a = claim(f->st, f->campaign, "a", T0, 1000, 2);
	assert_int_equal(a.count, 2);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_FAILED),
			 0);
	assert_int_equal(record1(f->st, "b", j + 2, a.claim[1], JOB_SENT), 0);
	assert_counts(f, f->campaign, 4, 0, 1, 0, 1, 0);
	/* expired, reclaimed: nothing in doubt */
	assert_int_equal(store_reclaim(f->st, T0 + 1000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_int_equal(job_row(f->path, j + 1).state, JOB_FAILED);
	assert_int_equal(job_row(f->path, j + 1).doubts, 0);
	assert_int_equal(job_row(f->path, j + 2).state, JOB_SENT);

	/* the same with a release */
	a = claim(f->st, f->campaign, "a", T0 + 1, 60000, 2);
	assert_int_equal(a.count, 2);
	assert_int_equal(a.id[0], j + 3);
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "b", j + 4, a.claim[1], JOB_SENT), 0);
	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 2, 0, 3, 0, 1, 0);

	g = claim(f->st, f->campaign, "c", T0 + 2, 60000, 10);
	assert_int_equal(g.count, 2);
	assert_int_equal(g.id[0], j + 5);
	assert_int_equal(g.id[1], j + 6);
	assert_int_equal(record1(f->st, "c", j + 5, g.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "c", j + 6, g.claim[1], JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 5, 0, 1, 0);
}

/*
 * Campaigns imported in turns (ids interleave; one campaign's claim
 * spans the other's jobs), with results in the journal, some naming no
 * claim: each job is recorded against its own campaign, and each
 * campaign's cursor and next claims are its own.
 */
static void test_journal_interleaved_campaigns(void **state)
{
	struct fixture *f = *state;
	enum job_state sent = JOB_SENT;
	struct store_result r[8];
	struct got x, y;
	struct rows rr;
	int64_t x1, y1, w1, v1;

	x1 = import_n(f, f->other, "x", 3);
	y1 = import_n(f, f->campaign, "y", 3);
	import_n(f, f->other, "z", 3);
	x = claim(f->st, f->other, "a", T0, 60000, 10);
	y = claim(f->st, f->campaign, "a", T0, 60000, 10);
	assert_int_equal(x.count, 6);
	assert_int_equal(y.count, 3);
	for (size_t i = 0; i < x.count; i++)
		r[i] = result(x.id[i], i % 2 ? 0 : x.claim[i],
			      i < 3 ? JOB_FAILED : JOB_SENT);
	assert_int_equal(record(f->st, "a", r, x.count), 0);
	r[0] = result(y1, 0, JOB_SENT);
	r[1] = result(y1 + 1, y.claim[1], JOB_FAILED);
	r[2] = result(y1 + 2, y.claim[2], JOB_QUEUED);
	assert_int_equal(record(f->st, "a", r, 3), 0);
	assert_string_equal(claims_of(f->path, f->other, x1), "");
	assert_string_equal(claims(f, y1), "3-3:-");
	assert_int_equal(cursor_of(f, f->other), x1 + 8);
	assert_int_equal(cursor_of(f, f->campaign), y1 + 1);
	assert_counts(f, f->other, 0, 0, 3, 0, 3, 0);
	assert_counts(f, f->campaign, 1, 0, 1, 0, 1, 0);
	assert_int_equal(q_int(f->path, "SELECT count(*) FROM results"), 8);
	assert_recount_now(f);

	w1 = import_n(f, f->campaign, "w", 2);
	v1 = import_n(f, f->other, "v", 2);
	y = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	x = claim(f->st, f->other, "b", T0 + 1, 60000, 10);
	assert_int_equal(y.count, 3);
	assert_int_equal(y.id[0], y1 + 2);
	assert_int_equal(y.id[1], w1);
	assert_int_equal(y.id[2], w1 + 1);
	assert_int_equal(x.count, 2);
	assert_int_equal(x.id[0], v1);
	assert_int_equal(x.id[1], v1 + 1);
	assert_int_equal(record_got(f->st, "b", &y, JOB_SENT), 0);
	for (size_t i = 0; i < x.count; i++)
		r[i] = result(x.id[i], 0, JOB_SENT);
	assert_int_equal(record(f->st, "b", r, x.count), 0);
	assert_counts(f, f->campaign, 0, 0, 4, 0, 1, 0);
	assert_counts(f, f->other, 0, 0, 5, 0, 3, 0);
	rr = report(f, NULL);
	assert_int_equal(rr.n, 5);
	assert_int_equal(rr.row[0].state, JOB_SENT);
	assert_int_equal(rr.row[1].state, JOB_FAILED);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rr.row[i].attempts, 1);
	assert_int_equal(report(f, &sent).n, 4);
}

/*
 * store_job_ref and store_job_find_address (how unsubscribes and
 * bounces find a recipient) give a journaled job's state from the
 * journal, and the folded state after a late "sent".
 */
static void test_journal_job_ref(void **state)
{
	struct fixture *f = *state;
	struct store_job_ref ref;
	struct store_result r[2];
	const char *error;
	struct got a;
	int64_t j;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	assert_int_equal(record(f->st, "a", r, 2), 0);

	assert_int_equal(store_job_ref(f->st, j + 1, &ref, &error), 1);
	assert_int_equal(ref.job_id, j + 1);
	assert_int_equal(ref.campaign_id, f->campaign);
	assert_string_equal(ref.campaign, "news");
	assert_string_equal(ref.address, "u0@example.org");
	assert_int_equal(ref.state, JOB_SENT);
	assert_int_equal(store_job_ref(f->st, j + 2, &ref, &error), 1);
	assert_int_equal(ref.state, JOB_FAILED);
	assert_int_equal(store_job_ref(f->st, j + 3, &ref, &error), 1);
	assert_int_not_equal(ref.state, JOB_SENT);
	assert_int_not_equal(ref.state, JOB_FAILED);
	assert_int_equal(store_job_find_address(f->st, "U1@example.org", 14,
						0, &ref, &error), 1);
	assert_int_equal(ref.job_id, j + 2);
	assert_int_equal(ref.state, JOB_FAILED);

	/* folded by a late "sent" */
	assert_int_equal(record1(f->st, "b", j + 2, a.claim[1], JOB_SENT), 0);
	assert_int_equal(journal_rows(f->path, j + 2), 0);
	assert_int_equal(store_job_ref(f->st, j + 2, &ref, &error), 1);
	assert_int_equal(ref.state, JOB_SENT);
	assert_int_equal(store_job_find_address(f->st, "u1@example.org", 14,
						0, &ref, &error), 1);
	assert_int_equal(ref.state, JOB_SENT);
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_SENT), 0);
}

/*
 * Addresses suppressed after their jobs were journaled (by hand, and by
 * the hard bounce of the failed result itself): a claim of the freed
 * range does not mark them suppressed - they were sent and failed - and
 * suppresses only the unrecorded one; the other campaign's jobs of the
 * same addresses are suppressed at its claim.
 */
static void test_journal_suppressed_after_the_result(void **state)
{
	struct fixture *f = *state;
	struct store_suppression s;
	struct store_result r[2];
	struct job_row row;
	struct got a, b, g;
	const char *error;
	int64_t j, n, before;

	j = import_n(f, f->campaign, "u", 5) - 1;
	import_n(f, f->other, "u", 2);
	a = claim(f->st, f->campaign, "a", T0, 60000, 4);
	assert_int_equal(a.count, 4);
	r[0] = result(j + 1, a.claim[0], JOB_SENT);
	r[1] = result(j + 2, a.claim[1], JOB_FAILED);
	r[1].enhanced = "5.1.1";
	r[1].bounce_category = "bad-mailbox";
	r[1].bounce_hard = true;
	assert_int_equal(record(f->st, "a", r, 2), 0);
	assert_int_equal(store_suppress_find(f->st, "u1@example.org", 14,
					     STORE_LIST_DEFAULT, false, &s,
					     &error), 1);
	assert_int_equal(s.reason, SUPPRESS_HARD_BOUNCE);
	suppress(f, "u0@example.org");
	suppress(f, "u2@example.org");

	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 2);				/* j3, j4 */
	assert_string_equal(claims(f, j + 1), "1-4:-");
	before = store_claim_suppressed(f->st);
	b = claim(f->st, f->campaign, "b", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.id[0], j + 4);
	assert_int_equal(b.id[1], j + 5);
	assert_int_equal(store_claim_suppressed(f->st) - before, 1);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_SUPPRESSED);
	assert_journaled(f, j + 1, JOB_SENT, T0, T0 + 10, 250, "", "ok", "");
	assert_journaled(f, j + 2, JOB_FAILED, T0, T0 + 10, 550, "5.1.1",
			 "no such user", "");
	row = job_row(f->path, j + 1);
	assert_null(strstr(row.reply, "suppressed"));
	assert_counts(f, f->campaign, 0, 2, 1, 0, 1, 1);

	/* the other campaign: both addresses suppressed at its claim */
	g = claim(f->st, f->other, "b", T0 + 1, 60000, 10);
	assert_int_equal(g.count, 0);
	assert_counts(f, f->other, 0, 0, 0, 0, 0, 2);

	r[0] = result(j + 4, b.claim[0], JOB_SENT);
	r[1] = result(j + 5, b.claim[1], JOB_SENT);
	assert_int_equal(record(f->st, "b", r, 2), 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_counts(f, f->campaign, 0, 0, 3, 0, 1, 1);
	assert_int_equal(job_row(f->path, j + 1).state, JOB_SENT);
	assert_int_equal(job_row(f->path, j + 2).state, JOB_FAILED);
}

/*
 * The claims a connection made are known to it: a final result for one
 * of their jobs is appended without reading the job, until another
 * connection writes.  Another process's late "sent" and its reclaim of
 * the expired claim change those jobs: the owner's results after them
 * must find out - a failure after "sent" is stale, a "sent" for a job
 * in doubt is recorded (not journaled over a deferred row, which a
 * claim would hand out again).
 */
static void test_journal_known_claim_and_another_connection(void **state)
{
	struct fixture *f = *state;
	struct store_params p = { .busy_timeout_ms = 2000 };
	struct store *o;
	struct got a, g;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 6) - 1;
	assert_int_equal(store_open(f->path, &p, &o, &error), 0);
	a = claim(f->st, f->campaign, "a", T0, 1000, 4);	/* j1..j4 */
	assert_int_equal(a.count, 4);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(journal_rows(f->path, j + 1), 1);

	/* another process's late "sent" for j2 */
	assert_int_equal(record1(o, "b", j + 2, a.claim[1], JOB_SENT), 0);
	assert_int_equal(raw_state(f->path, j + 2), JOB_SENT);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_FAILED),
			 1);
	assert_int_equal(job_row(f->path, j + 2).state, JOB_SENT);
	assert_int_equal(journal_rows(f->path, j + 2), 0);
	assert_counts(f, f->campaign, 2, 2, 2, 0, 0, 0);
	assert_recount_now(f);

	/* another process reclaims a's expired claim: j3, j4 in doubt */
	assert_int_equal(store_reclaim(o, T0 + 1000, false, NULL, NULL, &n,
				       &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_FAILED),
			 1);
	assert_int_equal(job_row(f->path, j + 3).state, JOB_DEFERRED);
	assert_int_equal(journal_rows(f->path, j + 3), 0);
	assert_int_equal(record1(f->st, "a", j + 4, a.claim[3], JOB_SENT), 0);
	assert_int_equal(job_row(f->path, j + 4).state, JOB_SENT);
	assert_int_equal(raw_state(f->path, j + 4), JOB_SENT);
	assert_int_equal(journal_rows(f->path, j + 4), 0);
	assert_counts(f, f->campaign, 2, 0, 3, 1, 0, 0);
	assert_recount_now(f);

	/* the next claim: j3 (in doubt), j5, j6; never j4 */
	g = claim(o, f->campaign, "c", T0 + 1000, 60000, 10);
	assert_int_equal(g.count, 3);
	assert_true(got_has(&g, j + 3) >= 0);
	assert_true(got_has(&g, j + 5) >= 0);
	assert_true(got_has(&g, j + 6) >= 0);
	assert_int_equal(record_got(o, "c", &g, JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 6, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
	store_close(&o);
}

/*
 * The same on one connection: a late "sent" recorded by another owner
 * through the connection that made the claim, then the claim's owner's
 * failure for that job (stale); a release and a new claim by the same
 * owner on that connection, then its results: each job once.
 */
static void test_journal_known_claim_one_connection(void **state)
{
	struct fixture *f = *state;
	struct got a, b;
	const char *error;
	int64_t j, n;

	j = import_n(f, f->campaign, "u", 5) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 4);
	assert_int_equal(a.count, 4);
	assert_int_equal(record1(f->st, "b", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_FAILED),
			 1);
	assert_int_equal(job_row(f->path, j + 1).state, JOB_SENT);
	assert_int_equal(journal_rows(f->path, j + 1), 0);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_FAILED),
			 0);
	assert_int_equal(journal_rows(f->path, j + 2), 1);
	assert_counts(f, f->campaign, 1, 2, 1, 0, 1, 0);

	assert_int_equal(store_release(f->st, "a", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 2);				/* j3, j4 */
	b = claim(f->st, f->campaign, "a", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 3);
	assert_int_equal(b.id[0], j + 3);
	assert_int_equal(b.id[1], j + 4);
	assert_int_equal(b.id[2], j + 5);
	/* with the first claim's ids: j2's "sent" folds its failure, j1's
	 * is stale */
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_SENT), 0);
	assert_int_equal(journal_rows(f->path, j + 2), 0);	/* folded */
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 1);
	assert_int_equal(record_got(f->st, "a", &b, JOB_SENT), 0);
	assert_int_equal(record_got(f->st, "a", &b, JOB_SENT), b.count);
	assert_counts(f, f->campaign, 0, 0, 5, 0, 0, 0);
	assert_string_equal(claims(f, j + 1), "");
	assert_int_equal(claim(f->st, f->campaign, "a", T0 + 2, 60000,
			       10).count, 0);
}

/*
 * A deferred result, then a final one, for one job of a claim (the
 * owner's sender changed its mind, or a duplicate came late): the job
 * is in jobs_retry and no longer the claim's.  "sent" after it is
 * recorded into the row (a journal row over a deferred row would leave
 * it due: sent again); "failed" after it is stale, the job due again.
 */
static void test_journal_deferred_then_final(void **state)
{
	struct fixture *f = *state;
	struct got a, g;
	struct job_row row;
	int64_t j;

	j = import_n(f, f->campaign, "u", 3) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 3);
	assert_int_equal(a.count, 3);
	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_DEFERRED),
			 0);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_DEFERRED),
			 0);
	assert_counts(f, f->campaign, 0, 1, 0, 2, 0, 0);

	assert_int_equal(record1(f->st, "a", j + 1, a.claim[0], JOB_SENT), 0);
	assert_int_equal(journal_rows(f->path, j + 1), 0);
	assert_int_equal(raw_state(f->path, j + 1), JOB_SENT);
	row = job_row(f->path, j + 1);
	assert_int_equal(row.state, JOB_SENT);
	assert_int_equal(row.attempts, 1);
	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_FAILED),
			 1);
	assert_int_equal(journal_rows(f->path, j + 2), 0);
	assert_int_equal(job_row(f->path, j + 2).state, JOB_DEFERRED);
	assert_counts(f, f->campaign, 0, 1, 1, 1, 0, 0);
	assert_recount_now(f);

	assert_int_equal(record1(f->st, "a", j + 3, a.claim[2], JOB_SENT), 0);
	assert_string_equal(claims(f, j + 1), "");
	/* when the deferred ones are due: j2 only */
	g = claim(f->st, f->campaign, "b", T0 + 3600000, 60000, 10);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.id[0], j + 2);
	assert_int_equal(g.attempts[0], 2);
	assert_int_equal(record1(f->st, "b", j + 2, 0, JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 3, 0, 0, 0);
}

/*
 * A job kept at a release (leased one by one, its message may have
 * left), its claim then taken again by the same owner on the same
 * connection: the owner's late "sent" for it, naming the claim, is
 * recorded into its row - not journaled over a leased row, which the
 * reclaim would then put in doubt and a claim hand out again.
 */
static void test_journal_kept_job_in_a_retaken_claim(void **state)
{
	struct fixture *f = *state;
	struct got a, b, g;
	const char *error;
	int64_t j, keep, n;

	j = import_n(f, f->campaign, "u", 4) - 1;
	a = claim(f->st, f->campaign, "a", T0, 60000, 4);
	assert_int_equal(a.count, 4);
	keep = j + 2;
	assert_int_equal(store_release(f->st, "a", &keep, 1, &n, &error), 0);
	assert_int_equal(n, 3);
	b = claim(f->st, f->campaign, "a", T0 + 1, 60000, 10);
	assert_int_equal(b.count, 3);
	assert_int_equal(got_has(&b, j + 2), -1);
	assert_int_equal(b.claim[0], a.claim[0]);
	assert_string_equal(claims(f, j + 1), "1-4:a");

	assert_int_equal(record1(f->st, "a", j + 2, a.claim[1], JOB_SENT), 0);
	assert_int_equal(journal_rows(f->path, j + 2), 0);
	assert_int_equal(raw_state(f->path, j + 2), JOB_SENT);
	assert_string_equal(job_row(f->path, j + 2).owner, "");
	assert_counts(f, f->campaign, 0, 3, 1, 0, 0, 0);
	assert_int_equal(record_got(f->st, "a", &b, JOB_SENT), 0);
	assert_counts(f, f->campaign, 0, 0, 4, 0, 0, 0);
	/* the owner is gone: nothing of it is in doubt, nothing is due */
	assert_int_equal(store_reclaim(f->st, T0 + 2, false, alive_except_a,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 0);
	g = claim(f->st, f->campaign, "b", T0 + 3, 60000, 10);
	assert_int_equal(g.count, 0);
	assert_counts(f, f->campaign, 0, 0, 4, 0, 0, 0);
}

/*
 * make_store_9 - a store as a volley of schema 9 left it: make_store_8's,
 * then the step to 9 (leases per claim); open on *db_r
 */
static void make_store_9(const char *path, sqlite3 **db_r)
{
	assert_int_equal(store_migration_journal, 9);
	make_store_8(path, db_r);
	exec_sql(*db_r, "BEGIN");
	exec_sql(*db_r, store_migrations[store_migration_claims]);
	exec_sql(*db_r, "PRAGMA user_version = 9");
	exec_sql(*db_r, "COMMIT");
}

/*
 * A store of schema 9 with jobs 1-3 in the claim of a run that died
 * (its lease not yet expired), 4-5 in the expired claim of a run that
 * may be alive, 6 in a free claim, 7 sent, 8 queued past every claim.
 * Opened, it migrates to 10; the reclaim puts 1-5 in doubt; every job
 * due is then claimed and sent once, 6 and 8 through the journal.
 */
static void test_migration_from_9(void **state)
{
	struct fixture *f = *state;
	char path[128], sql[1024], self[300], dead[300];
	struct store_counts c;
	struct store *st;
	const char *error;
	struct got g;
	sqlite3 *db;
	int64_t n;

	dead_owner(dead, sizeof(dead), self, sizeof(self));
	assert_true(store_lease_owner_alive(ELSEWHERE, self));
	snprintf(path, sizeof(path), "%s/nine.db", f->dir);
	make_store_9(path, &db);
	exec_sql(db, "BEGIN");
	exec_sql(db, "INSERT INTO jobs (id, campaign_id, import_id, address,"
		 " next_attempt_at, created_at) VALUES"
		 " (1, 1, 1, 'a@x.org', 1, 1), (2, 1, 1, 'b@x.org', 1, 1),"
		 " (3, 1, 1, 'c@x.org', 1, 1), (4, 1, 1, 'd@x.org', 1, 1),"
		 " (5, 1, 1, 'e@x.org', 1, 1), (6, 1, 1, 'f@x.org', 1, 1),"
		 " (8, 1, 1, 'h@x.org', 1, 1)");
	exec_sql(db, "INSERT INTO jobs (id, campaign_id, import_id, address,"
		 " next_attempt_at, created_at, state, attempts,"
		 " first_attempt_at, last_attempt_at, last_code, last_reply,"
		 " done_at) VALUES (7, 1, 1, 'g@x.org', 4, 1, 2, 1, 2, 2,"
		 " 250, 'ok', 4)");
	snprintf(sql, sizeof(sql), "INSERT INTO claims (id, campaign_id,"
		 " first_job, last_job, owner, claimed_at, expires_at) VALUES"
		 " (1, 1, 1, 3, '%s', 3, 9e15), (2, 1, 4, 5, '%s', 3, 1000),"
		 " (3, 1, 6, 6, NULL, 3, NULL)", dead, ELSEWHERE);
	exec_sql(db, sql);
	/* as schema 9 counts: a queued job a held claim holds is sending */
	exec_sql(db, "UPDATE campaign_counts SET n = CASE state"
		 " WHEN 0 THEN 2 WHEN 1 THEN 5 WHEN 2 THEN 1 ELSE 0 END"
		 " WHERE campaign_id = 1");
	exec_sql(db, "COMMIT");
	sqlite3_close(db);

	assert_int_equal(store_open(path, NULL, &st, &error), 0);
	assert_int_equal(q_int(path, "PRAGMA user_version"),
			 store_migration_count);
	assert_int_equal(q_int(path, "SELECT count(*) FROM sqlite_schema"
			       " WHERE name IN ('results', 'jobs_now',"
			       " 'claims_cursor')"), 3);
	assert_int_equal(q_int(path, "SELECT claim_cursor FROM campaigns"
			       " WHERE id = 1"), 0);
	assert_counts_recount(path);
	assert_claims_sound(path);
	assert_int_equal(store_counts(st, 1, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_QUEUED], 2);
	assert_int_equal(c.by_state[JOB_SENDING], 5);
	assert_int_equal(c.by_state[JOB_SENT], 1);

	assert_int_equal(store_reclaim(st, T0, false, alive_by_name, self, &n,
				       &error), 0);
	assert_int_equal(n, 5);
	for (int id = 1; id <= 5; id++) {
		struct job_row row = job_row(path, id);

		assert_int_equal(row.state, JOB_DEFERRED);
		assert_int_equal(row.doubts, 1);
		assert_int_equal(row.attempts, 1);
		assert_int_equal(row.first_attempt_at, 3);
		assert_int_equal(row.next_attempt_at, T0);
		assert_non_null(strstr(row.reply, id <= 3 ? "stopped" :
				       "expired"));
	}
	assert_string_equal(claims_of(path, 1, 1), "6-6:-");
	assert_int_equal(q_int(path, "SELECT claim_cursor FROM campaigns"
			       " WHERE id = 1"), 5);

	g = claim(st, 1, "new", T0, 60000, 16);
	assert_int_equal(g.count, 7);
	for (int id = 1; id <= 5; id++) {
		int i = got_has(&g, id);

		assert_true(i >= 0);
		assert_int_equal(g.claim[i], 0);
		assert_int_equal(g.attempts[i], 2);
	}
	assert_true(got_has(&g, 6) >= 0);
	assert_int_not_equal(g.claim[got_has(&g, 6)], 0);
	assert_true(got_has(&g, 8) >= 0);
	assert_int_not_equal(g.claim[got_has(&g, 8)], 0);
	assert_int_equal(got_has(&g, 7), -1);
	assert_int_equal(record_got(st, "new", &g, JOB_SENT), 0);
	assert_int_equal(q_int(path, "SELECT count(*) FROM results"
			       " WHERE job_id IN (6, 8)"), 2);
	assert_int_equal(claim(st, 1, "new", T0 + 1, 60000, 16).count, 0);
	assert_int_equal(store_counts(st, 1, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_SENT], 8);
	assert_int_equal(c.total, 8);
	assert_int_equal(q_int(path, "SELECT count(*) FROM claims"), 0);
	store_close(&st);
	assert_counts_recount(path);
	assert_claims_sound(path);
}

/*
 * A store of schema 9 with a claim leased until later to an owner that
 * may be alive: an older volley may be sending from it (and would claim
 * again jobs whose result is in the journal), so the upgrade is refused,
 * naming the owner, and nothing changes; once the lease has expired,
 * the store upgrades and the claim's jobs come back in doubt.
 */
static void test_migration_from_9_refused_while_sending(void **state)
{
	struct fixture *f = *state;
	char path[128], sql[512], self[300];
	struct store *st = (struct store *)1;	/* made NULL on failure */
	struct store_counts c;
	struct got g;
	const char *error;
	sqlite3 *db;
	int64_t n;

	store_lease_owner_self(self, sizeof(self));
	assert_true(store_lease_owner_alive(ELSEWHERE, self));
	snprintf(path, sizeof(path), "%s/nine-live.db", f->dir);
	make_store_9(path, &db);
	exec_sql(db, "INSERT INTO jobs (id, campaign_id, import_id, address,"
		 " next_attempt_at, created_at) VALUES"
		 " (1, 1, 1, 'a@x.org', 1, 1), (2, 1, 1, 'b@x.org', 1, 1),"
		 " (3, 1, 1, 'c@x.org', 1, 1)");
	snprintf(sql, sizeof(sql), "INSERT INTO claims (id, campaign_id,"
		 " first_job, last_job, owner, claimed_at, expires_at) VALUES"
		 " (1, 1, 1, 2, '%s', 3, %lld)", ELSEWHERE,
		 (long long)(clock_wall_ms() + 3600000));
	exec_sql(db, sql);
	exec_sql(db, "UPDATE campaign_counts SET n = CASE state"
		 " WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE 0 END"
		 " WHERE campaign_id = 1");

	assert_non_null(strstr(assert_upgrade_refused(path, 9),
			       "2 recipients"));
	assert_int_equal(q_int(path, "SELECT count(*) FROM sqlite_schema"
			       " WHERE name IN ('results', 'jobs_now')"), 0);
	assert_int_equal(q_int(path, "SELECT count(*) FROM claims"), 1);

	/* the old run's lease ends: the upgrade goes ahead */
	exec_sql(db, "UPDATE claims SET expires_at = 1000 WHERE id = 1");
	sqlite3_close(db);
	assert_int_equal(store_open(path, NULL, &st, &error), 0);
	assert_int_equal(q_int(path, "PRAGMA user_version"),
			 store_migration_count);
	assert_int_equal(store_reclaim(st, T0, false, alive_by_name, self, &n,
				       &error), 0);
	assert_int_equal(n, 2);
	assert_non_null(strstr(job_row(path, 1).reply, "expired"));
	g = claim(st, 1, "new", T0, 60000, 10);
	assert_int_equal(g.count, 3);
	assert_true(got_has(&g, 1) >= 0 && got_has(&g, 2) >= 0);
	assert_int_equal(g.id[2], 3);
	assert_int_not_equal(g.claim[2], 0);
	assert_int_equal(record_got(st, "new", &g, JOB_SENT), 0);
	assert_int_equal(store_counts(st, 1, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_SENT], 3);
	assert_int_equal(c.total, 3);
	store_close(&st);
	assert_counts_recount(path);
	assert_claims_sound(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_claims_never_overlap),
		T(test_give_back_in_the_middle),
		T(test_give_back_first_last_only),
		T(test_give_back_of_the_last_queued_job),
		T(test_give_back_with_the_rest_in_one_record),
		T(test_result_names_a_claim),
		T(test_late_sent_for_a_given_back_job),
		T(test_late_sent_keeps_the_attempt),
		T(test_claim_id_zero_with_two_campaigns),
		T(test_split_claim_with_two_campaigns),
		T(test_range_spanning_another_campaign),
		T(test_release_with_keep),
		T(test_release_drops_finished_claims),
		T(test_expired_claim),
		T(test_expired_claim_held),
		T(test_reclaim_owner_gone),
		T(test_free_claim_split),
		T(test_free_claims_oldest_first),
		T(test_suppressed_in_a_range),
		T(test_suppressed_first_and_in_a_free_claim),
		T(test_migration_from_8),
		T(test_migration_from_8_refused_while_sending),
		T(test_failed_writes_leave_claims),
		T(test_report_during_a_claim),
		T(test_journal_sent_and_failed),
		T(test_journal_duplicate_results),
		T(test_journal_write_refused),
		T(test_journal_known_claim_refused_commit),
		T(test_journal_known_claim_mixed),
		T(test_journal_release),
		T(test_journal_release_all_kept),
		T(test_journal_kept_job_given_back),
		T(test_journal_reclaim),
		T(test_journal_give_back),
		T(test_journal_claim_rounds),
		T(test_journal_free_claim_tail),
		T(test_journal_late_sent),
		T(test_journal_claim_emptied_elsewhere),
		T(test_journal_interleaved_campaigns),
		T(test_journal_job_ref),
		T(test_journal_suppressed_after_the_result),
		T(test_journal_known_claim_and_another_connection),
		T(test_journal_known_claim_one_connection),
		T(test_journal_deferred_then_final),
		T(test_journal_kept_job_in_a_retaken_claim),
		T(test_migration_from_9),
		T(test_migration_from_9_refused_while_sending),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
