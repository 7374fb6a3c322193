/*
 * test_counts_review - campaign_counts kept in C (schema 8): the paths a
 * review of that change looked at, each checked against a count of the
 * jobs themselves (counts_check.h) after the test.
 *
 * Most of them pass: the claim from queued and deferred at once, results
 * that name their campaign, late "sent" results from each state, two
 * handles taking turns, a COMMIT refused after the counts were flushed
 * and the batch recorded again.  Two show a way the counts drift:
 *
 *  - test_result_names_wrong_campaign: store_record trusts
 *    store_result.campaign_id; a wrong one moves another campaign's
 *    counts.
 *  - test_old_volley_after_migration: a volley of schema 7 still running
 *    when a newer one migrates the store to 8 (the trigger dropped)
 *    would change states that nobody counts any more: the newer one
 *    refuses to upgrade while a live owner holds leases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "counts_check.h"
#include "store.h"
#include "store_private.h"
#include "store_schema.h"
#include "vars.h"

static int64_t T0;

struct fixture {
	char dir[64];
	char path[96];
	struct store *st;
	int64_t campaign;
	int64_t other;		/* a second campaign */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params p = { .create = true };
	const char *error;

	T0 = clock_wall_ms() + 60000;
	strcpy(f->dir, "/tmp/volley-test-counts-XXXXXX");
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
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void import_n(struct store *st, int64_t campaign, const char *prefix,
		     int n)
{
	const char *names[] = { "a" };
	struct store_import *imp;
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	const char *error;
	char addr[64];

	assert_int_equal(store_import_begin(st, campaign, "t", "email", names,
					    1, &imp, &error), 0);
	for (int i = 0; i < n; i++) {
		int len = snprintf(addr, sizeof(addr), "%s%d@example.org",
				   prefix, i);

		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 1);
	}
	assert_int_equal(store_import_commit(&imp, 0, NULL, &error), 0);
}

static struct store_result result(int64_t job, enum job_state state,
				  int64_t campaign, int64_t next)
{
	return (struct store_result){
		.job_id = job, .state = state,
		.code = state == JOB_SENT ? 250 : state == JOB_QUEUED ? 0 :
			state == JOB_DEFERRED ? 451 : 550,
		.reply = "r", .at = T0, .next_attempt_at = next,
		.campaign_id = campaign,
	};
}

/* the live recount, on the store's own connection */
static void assert_recount_now(struct store *st)
{
	sqlite3_stmt *stmt;
	int bad = 0;

	assert_int_equal(sqlite3_prepare_v2(st->db,
		"SELECT count(*) FROM (" COUNTS_RECOUNT_SQL ")", -1, &stmt,
		NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	bad = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	assert_int_equal(bad, 0);
}

/* --- what was found sound -------------------------------------------- */

/* one claim takes queued and deferred jobs at once; results name their
 * campaign (the fast path), a give-back returns each where it was */
static void test_claim_mixed_and_fast_results(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct store_result r[8];
	const char *error;
	size_t stale;

	import_n(f->st, f->campaign, "u", 6);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 3,
				     &b, &error), 0);
	assert_int_equal(b.count, 3);
	for (size_t i = 0; i < 3; i++)
		r[i] = result(b.jobs[i].id, JOB_DEFERRED, f->campaign, T0);
	assert_int_equal(store_record(f->st, "me:1", r, 3, &stale, &error), 0);
	assert_recount_now(f->st);
	/* 3 deferred and 3 queued, all due: one claim of 6 */
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0 + 1, 60000,
				     6, &b, &error), 0);
	assert_int_equal(b.count, 6);
	assert_recount_now(f->st);
	r[0] = result(b.jobs[0].id, JOB_SENT, f->campaign, 0);
	r[1] = result(b.jobs[1].id, JOB_FAILED, f->campaign, 0);
	r[2] = result(b.jobs[2].id, JOB_DEFERRED, f->campaign, T0 + 5);
	r[3] = result(b.jobs[3].id, JOB_QUEUED, f->campaign, 0);
	r[4] = result(b.jobs[4].id, JOB_QUEUED, 0, 0);
	r[5] = result(b.jobs[5].id, JOB_SENT, 0, 0);
	assert_int_equal(store_record(f->st, "me:1", r, 6, &stale, &error), 0);
	assert_int_equal(stale, 0);
	assert_recount_now(f->st);
	store_batch_free(&b);
}

/* a late "sent" from deferred and from another owner's sending */
static void test_late_sent_from_each_state(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 }, b2 = { 0 };
	struct store_result r[4];
	const char *error;
	size_t stale;
	int64_t n;

	import_n(f->st, f->campaign, "u", 4);
	assert_int_equal(store_claim(f->st, f->campaign, "a:1", T0, 1000, 4,
				     &b, &error), 0);
	assert_int_equal(b.count, 4);
	/* the leases expire: all deferred (in doubt); one re-claimed by
	 * another owner: late results from deferred and from sending */
	assert_int_equal(store_reclaim(f->st, T0 + 2000, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 4);
	assert_int_equal(store_claim(f->st, f->campaign, "b:2", T0 + 2000,
				     60000, 1, &b2, &error), 0);
	assert_int_equal(b2.count, 1);
	assert_recount_now(f->st);
	for (size_t i = 0; i < 4; i++)
		r[i] = result(b.jobs[i].id, JOB_SENT, f->campaign, 0);
	assert_int_equal(store_record(f->st, "a:1", r, 4, &stale, &error), 0);
	assert_int_equal(stale, 0);
	assert_recount_now(f->st);
	/* b's own result for its job: sent already, stale */
	r[0] = result(b2.jobs[0].id, JOB_SENT, f->campaign, 0);
	assert_int_equal(store_record(f->st, "b:2", r, 1, &stale, &error), 0);
	assert_int_equal(stale, 1);
	assert_recount_now(f->st);
	store_batch_free(&b);
	store_batch_free(&b2);
}

/* two handles (two volley send) taking turns on one store */
static void test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct store_params p = { .busy_timeout_ms = 2000 };
	struct store *o;
	struct store_batch b1 = { 0 }, b2 = { 0 };
	struct store_result r[10];
	const char *error;
	size_t stale;

	import_n(f->st, f->campaign, "u", 20);
	import_n(f->st, f->other, "v", 20);
	assert_int_equal(store_open(f->path, &p, &o, &error), 0);
	for (int round = 0; round < 4; round++) {
		assert_int_equal(store_claim(f->st, f->campaign, "a:1",
					     T0 + round, 60000, 5, &b1,
					     &error), 0);
		assert_int_equal(store_claim(o, f->other, "b:2", T0 + round,
					     60000, 5, &b2, &error), 0);
		for (size_t i = 0; i < b1.count; i++)
			r[i] = result(b1.jobs[i].id, i % 2 ? JOB_SENT :
				      JOB_DEFERRED, f->campaign, T0);
		assert_int_equal(store_record(f->st, "a:1", r, b1.count,
					      &stale, &error), 0);
		for (size_t i = 0; i < b2.count; i++)
			r[i] = result(b2.jobs[i].id, i % 2 ? JOB_FAILED :
				      JOB_QUEUED, f->other, 0);
		assert_int_equal(store_record(o, "b:2", r, b2.count, &stale,
					      &error), 0);
	}
	assert_recount_now(f->st);
	store_close(&o);
	store_batch_free(&b1);
	store_batch_free(&b2);
}

static int refuse_commit(void *ctx)
{
	int *n = ctx;

	return (*n)-- > 0;
}

/* COMMIT refused after the moves were flushed: nothing of it stays, and
 * the same results recorded again count once */
static void test_commit_refused_then_retried(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct store_result r[3];
	const char *error;
	size_t stale;
	int refusals = 1;

	import_n(f->st, f->campaign, "u", 3);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 3,
				     &b, &error), 0);
	for (size_t i = 0; i < 3; i++)
		r[i] = result(b.jobs[i].id, JOB_SENT, f->campaign, 0);
	sqlite3_commit_hook(f->st->db, refuse_commit, &refusals);
	assert_int_equal(store_record(f->st, "me:1", r, 3, &stale, &error),
			 -1);
	assert_int_equal(sqlite3_get_autocommit(f->st->db), 1);
	assert_recount_now(f->st);
	assert_int_equal(store_record(f->st, "me:1", r, 3, &stale, &error), 0);
	assert_int_equal(stale, 0);
	sqlite3_commit_hook(f->st->db, NULL, NULL);
	assert_recount_now(f->st);
	store_batch_free(&b);
}

/* --- what drifts -------------------------------------------------------- */

/*
 * store_record takes the result's campaign on trust: a result naming the
 * wrong campaign moves the wrong campaign's counts (one campaign gets
 * -1 sending, the other -1 sending and +1 sent, for ever).
 */
static void test_result_names_wrong_campaign(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct store_result r;
	const char *error;
	size_t stale;

	import_n(f->st, f->campaign, "u", 2);
	import_n(f->st, f->other, "v", 2);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 1,
				     &b, &error), 0);
	assert_int_equal(b.count, 1);
	r = result(b.jobs[0].id, JOB_SENT, f->other, 0);
	assert_int_equal(store_record(f->st, "me:1", &r, 1, &stale, &error), 0);
	assert_int_equal(stale, 0);
	assert_recount_now(f->st);
	store_batch_free(&b);
}

/* migration 3 -> 4 names it; no job exists then, so it is never called */
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
 * A store of schema 7, a volley of that version sending from it (its
 * statements counted by the trigger), and a newer volley opening the
 * store meanwhile (volley status, say, after an upgrade): the migration
 * drops the trigger, and what the older process records from then on is
 * counted by nobody.  Its claims and results must either fail or be
 * counted; here they silently are not.
 */
static void test_old_volley_after_migration(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	const char *error;
	char path[128];
	sqlite3 *old;
	sqlite3_stmt *record;
	int rc;

	snprintf(path, sizeof(path), "%s/seven.db", f->dir);
	assert_int_equal(sqlite3_open(path, &old), SQLITE_OK);
	assert_int_equal(sqlite3_create_function(old, "volley_addr_key", 1,
						 SQLITE_UTF8, NULL, no_key,
						 NULL, NULL), SQLITE_OK);
	exec_sql(old, "PRAGMA journal_mode = WAL");
	exec_sql(old, "BEGIN");
	exec_sql(old, "PRAGMA application_id = 1987013753");
	for (int i = 0; i < 7; i++)
		exec_sql(old, store_migrations[i]);
	exec_sql(old, "PRAGMA user_version = 7");
	exec_sql(old, "INSERT INTO campaigns (id, name, created_at)"
		 " VALUES (1, 'old', 1)");
	exec_sql(old, "INSERT INTO imports (id, campaign_id, var_names,"
		 " started_at) VALUES (1, 1, x'01', 1)");
	exec_sql(old, "INSERT INTO jobs (campaign_id, import_id, address,"
		 " next_attempt_at, created_at) VALUES"
		 " (1, 1, 'a@x.org', 1, 1), (1, 1, 'b@x.org', 1, 1)");
	/* as schema 7's import counts what it adds */
	exec_sql(old, "UPDATE campaign_counts SET n = 2"
		 " WHERE campaign_id = 1 AND state = 0");
	exec_sql(old, "COMMIT");
	/* the old sender claims both (the trigger counts it) */
	exec_sql(old, "UPDATE jobs SET state = 1, lease_owner = 'old:1',"
		 " lease_expires_at = 9e15, attempts = attempts + 1");
	/* and has its result statement ready, as volley prepares once */
	assert_int_equal(sqlite3_prepare_v3(old,
		"UPDATE jobs SET state = 2, lease_owner = NULL,"
		" lease_expires_at = NULL WHERE id = ?1 AND state = 1"
		" AND lease_owner = 'old:1'", -1, SQLITE_PREPARE_PERSISTENT,
		&record, NULL), SQLITE_OK);

	/* a newer volley will not upgrade the store under it */
	assert_int_equal(store_open(path, NULL, &st, &error), -1);
	assert_non_null(strstr(error, "old:1"));
	assert_non_null(strstr(error, "an older volley"));
	assert_null(st);

	/* the old sender records its result, still counted by its trigger */
	sqlite3_bind_int64(record, 1, 1);
	rc = sqlite3_step(record);
	assert_int_equal(rc, SQLITE_DONE);
	sqlite3_finalize(record);
	exec_sql(old, "UPDATE jobs SET state = 3, lease_owner = NULL,"
		 " lease_expires_at = NULL WHERE state = 1");
	sqlite3_close(old);

	/* with no lease held, the upgrade goes ahead and the counts hold */
	assert_int_equal(store_open(path, NULL, &st, &error), 0);
	store_close(&st);
	assert_counts_recount(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_claim_mixed_and_fast_results, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_late_sent_from_each_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_commit_refused_then_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_result_names_wrong_campaign, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_old_volley_after_migration, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
