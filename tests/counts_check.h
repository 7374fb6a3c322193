/*
 * counts_check - the store's counts of jobs per campaign and state
 * (campaign_counts, kept by the store's C code since schema 8) must
 * equal a count of the jobs themselves (since schema 9 a queued job in
 * the range of a claim with an owner counts as sending).  The store tests check it after
 * every test, so each path that moves jobs between states (claims,
 * results, give-backs, releases, reclaims, doubts, suppressions, their
 * rollbacks) is checked by every test that takes it.
 */
#ifndef VOLLEY_TESTS_COUNTS_CHECK_H
#define VOLLEY_TESTS_COUNTS_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>
#include <sqlite3.h>

/*
 * The (campaign, state, counted, real) where the two disagree.  A queued
 * job that a claim with an owner holds is "sending".
 */
#define COUNTS_RECOUNT_SQL \
		"SELECT c.campaign_id, c.state, c.n," \
		" (SELECT count(*) FROM jobs_now j" \
		"  WHERE j.campaign_id = c.campaign_id" \
		"  AND CASE WHEN j.state = 0 AND EXISTS (SELECT 1 FROM claims k" \
		"   WHERE k.campaign_id = j.campaign_id AND k.owner IS NOT NULL" \
		"   AND j.id BETWEEN k.first_job AND k.last_job)" \
		"   THEN 1 ELSE j.state END = c.state) AS real" \
		" FROM campaign_counts c WHERE c.n <> real"

/* the (campaign, state) pairs where the two disagree, or none */
static inline void assert_counts_recount(const char *path)
{
	static const char sql[] = COUNTS_RECOUNT_SQL;
	sqlite3 *db;
	sqlite3_stmt *stmt;
	int bad = 0, rc;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
					 NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
			 SQLITE_OK);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		fprintf(stderr, "campaign %lld, state %d: counted %lld, "
			"jobs %lld\n",
			(long long)sqlite3_column_int64(stmt, 0),
			sqlite3_column_int(stmt, 1),
			(long long)sqlite3_column_int64(stmt, 2),
			(long long)sqlite3_column_int64(stmt, 3));
		bad++;
	}
	assert_int_equal(rc, SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	assert_int_equal(bad, 0);
}

#endif
