/*
 * bench_record - what shape of SQL records a batch of results cheapest:
 * one UPDATE per result (schema 9's STMT_RECORD_FRESH, which recorded
 * every result then; since schema 10 it records deferrals, with a check
 * of the journal added; prepared once, twelve values bound each time),
 * one UPDATE ... FROM json_each() per batch (the batch's results as one
 * JSON array), one INSERT per result into the store's journal of
 * results, keyed by job id (the jobs row left as it is: how the store
 * records a final result since schema 10, STMT_RECORD_APPEND_KNOWN), or
 * one INSERT of 25 results (what batching the journal's rows would
 * save).
 *
 *   bench_record [--jobs N] [--dir DIR] [--only 0|1|2|3]
 *
 * Fills a fresh store with N queued jobs (default 200,000) through the
 * import API for each shape, then records every job as sent, 500 results
 * a transaction (send.commit_batch's default), with the store's settings
 * (WAL, synchronous = FULL), and prints results per second.  Run it under
 * `valgrind --tool=callgrind` for instructions per result.  Measured
 * 2026-12-07, 2 cores: the batch shape was the slower one (see
 * docs/performance.md).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "store.h"
#include "vars.h"

#define BENCH_BATCH 500

static void bench_die(const char *what, const char *error)
{
	fprintf(stderr, "bench_record: %s: %s\n", what, error);
	exit(1);
}

/* bench_fresh - a new store at path holding n queued jobs */
static void bench_fresh(const char *path, long n)
{
	struct store_params params = { .create = true };
	const char *names[] = { "first_name" };
	struct store_import *imp;
	struct store *st;
	struct buf vars = BUF_INIT;
	const char *error;
	int64_t campaign;
	char addr[64];

	remove(path);
	if (store_open(path, &params, &st, &error) < 0 ||
	    store_campaign_create(st, "bench", "bench@example.org", "t", NULL,
				  NULL, false, NULL, 0, &campaign, &error) < 0 ||
	    store_import_begin(st, campaign, "bench", "email", names, 1, &imp,
			       &error) < 0)
		bench_die("store", error);
	for (long i = 0; i < n; i++) {
		int len = snprintf(addr, sizeof(addr), "u%ld@d%ld.example", i,
				   i % 1000);

		vars_pack_begin(&vars);
		vars_pack_str(&vars, "Ada", 3);
		if (store_import_add(imp, addr, (size_t)len, 0, vars.data,
				     vars.len, &error) < 0)
			bench_die("import", error);
	}
	if (store_import_commit(&imp, 0, NULL, &error) < 0)
		bench_die("import", error);
	store_close(&st);
	buf_free(&vars);
}

static void bench_sql(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		bench_die(sql, sqlite3_errmsg(db));
}

static sqlite3_stmt *bench_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		bench_die(sql, sqlite3_errmsg(db));
	return stmt;
}

/* schema 9's record of one result (store_sqlite.c, STMT_RECORD_FRESH) */
static const char bench_one_sql[] =
	"UPDATE jobs SET state = ?2, last_code = ?3,"
	" last_enhanced = ?4, last_reply = ?5,"
	" queue_id = coalesce(?6, queue_id),"
	" next_attempt_at = ?7, doubts = doubts + ?10,"
	" done_at = CASE WHEN ?2 IN (2, 4) THEN ?8 END,"
	" lease_owner = NULL, lease_expires_at = NULL,"
	" attempts = attempts + 1,"
	" first_attempt_at = coalesce(first_attempt_at, ?12),"
	" last_attempt_at = ?12"
	" WHERE id = ?1 AND state = 0 AND campaign_id = ?11";

/*
 * The same for a batch: "+" keeps the planner from walking jobs_fresh
 * with json_each inside (it would read every queued job per result).
 */
static const char bench_batch_sql[] =
	"UPDATE jobs SET state = 2, last_code = 250,"
	" last_enhanced = '2.0.0', last_reply = r.reply,"
	" queue_id = coalesce(r.qid, queue_id),"
	" next_attempt_at = r.at, doubts = doubts + 0,"
	" done_at = r.at, lease_owner = NULL, lease_expires_at = NULL,"
	" attempts = attempts + 1,"
	" first_attempt_at = coalesce(first_attempt_at, r.at),"
	" last_attempt_at = r.at"
	" FROM (SELECT value ->> 0 AS id, value ->> 1 AS reply,"
	"  value ->> 2 AS qid, value ->> 3 AS at FROM json_each(?1)) AS r"
	" WHERE jobs.id = r.id AND +jobs.state = 0 AND +jobs.campaign_id = 1";

/*
 * A narrow row of its own for each result in the store's journal (schema
 * 10), ids ascending as claims hand them out: SQLite appends to the
 * table's last page.
 */
static const char bench_append_sql[] =
	"INSERT INTO results (job_id, state, code, enhanced, reply,"
	" queue_id, done_at, attempt_at, doubts)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0)"
	" ON CONFLICT (job_id) DO NOTHING";

/* the same, BENCH_ROWS rows a statement (BENCH_BATCH a multiple of it) */
#define BENCH_ROWS 25

enum bench_shape {
	BENCH_ONE, BENCH_BATCH_JSON, BENCH_APPEND, BENCH_APPEND_ROWS,
	BENCH_SHAPES
};

/* bench_rows_sql - bench_append_sql with BENCH_ROWS rows of VALUES */
static void bench_rows_sql(struct buf *sql)
{
	buf_append_str(sql, "INSERT INTO results (job_id, state, code,"
		       " enhanced, reply, queue_id, done_at, attempt_at,"
		       " doubts) VALUES ");
	for (int i = 0; i < BENCH_ROWS; i++)
		buf_printf(sql, "%s(?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, 0)",
			   i ? ", " : "", 7 * i + 1, 7 * i + 2, 7 * i + 3,
			   7 * i + 4, 7 * i + 5, 7 * i + 6, 7 * i + 7,
			   7 * i + 7);
	buf_append_str(sql, " ON CONFLICT (job_id) DO NOTHING");
}

/* bench_run - record jobs 1..n as sent; results per second */
static double bench_run(const char *path, long n, enum bench_shape shape)
{
	bool batch = shape == BENCH_BATCH_JSON;
	bool rows = shape == BENCH_APPEND_ROWS;
	sqlite3 *db;
	sqlite3_stmt *stmt;
	struct buf json = BUF_INIT;
	char reply[BENCH_ROWS][64];
	double t0;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		bench_die(path, "cannot open");
	bench_sql(db, "PRAGMA journal_mode = WAL");
	bench_sql(db, "PRAGMA synchronous = FULL");
	if (rows) {
		if (n % BENCH_ROWS != 0)
			bench_die("--jobs", "a multiple of 25 for this shape");
		bench_rows_sql(&json);
		stmt = bench_prepare(db, json.data);
	} else {
		stmt = bench_prepare(db, shape == BENCH_APPEND ?
				     bench_append_sql : batch ?
				     bench_batch_sql : bench_one_sql);
	}
	t0 = clock_mono_s();
	for (long base = 1; base <= n; base += BENCH_BATCH) {
		long end = base + BENCH_BATCH <= n + 1 ? base + BENCH_BATCH :
			   n + 1;

		bench_sql(db, "BEGIN IMMEDIATE");
		buf_reset(&json);
		buf_putc(&json, '[');
		for (long id = base; id < end; id++) {
			int slot = (int)((id - base) % BENCH_ROWS);

			snprintf(reply[slot], sizeof(reply[slot]),
				 "250 2.0.0 Ok: queued as Q%ld", id);
			if (rows) {
				int k = 7 * slot;

				sqlite3_bind_int64(stmt, k + 1, id);
				sqlite3_bind_int(stmt, k + 2, JOB_SENT);
				sqlite3_bind_int(stmt, k + 3, 250);
				sqlite3_bind_text(stmt, k + 4, "2.0.0", -1,
						  SQLITE_STATIC);
				sqlite3_bind_text(stmt, k + 5, reply[slot], -1,
						  SQLITE_STATIC);
				sqlite3_bind_null(stmt, k + 6);
				sqlite3_bind_int64(stmt, k + 7, 5);
				if (slot < BENCH_ROWS - 1)
					continue;
				if (sqlite3_step(stmt) != SQLITE_DONE ||
				    sqlite3_changes(db) != BENCH_ROWS)
					bench_die("record",
						  sqlite3_errmsg(db));
				sqlite3_reset(stmt);
				continue;
			}
			if (batch) {
				buf_printf(&json, "%s[%ld,\"%s\",null,5]",
					   id == base ? "" : ",", id, reply[slot]);
				continue;
			}
			if (shape == BENCH_APPEND) {
				sqlite3_bind_int64(stmt, 1, id);
				sqlite3_bind_int(stmt, 2, JOB_SENT);
				sqlite3_bind_int(stmt, 3, 250);
				sqlite3_bind_text(stmt, 4, "2.0.0", -1,
						  SQLITE_STATIC);
				sqlite3_bind_text(stmt, 5, reply[slot], -1,
						  SQLITE_STATIC);
				sqlite3_bind_null(stmt, 6);
				sqlite3_bind_int64(stmt, 7, 5);
				if (sqlite3_step(stmt) != SQLITE_DONE ||
				    sqlite3_changes(db) != 1)
					bench_die("record",
						  sqlite3_errmsg(db));
				sqlite3_reset(stmt);
				continue;
			}
			sqlite3_bind_int64(stmt, 1, id);
			sqlite3_bind_int(stmt, 2, JOB_SENT);
			sqlite3_bind_int(stmt, 3, 250);
			sqlite3_bind_text(stmt, 4, "2.0.0", -1, SQLITE_STATIC);
			sqlite3_bind_text(stmt, 5, reply[slot], -1, SQLITE_STATIC);
			sqlite3_bind_null(stmt, 6);
			sqlite3_bind_int64(stmt, 7, 5);
			sqlite3_bind_int64(stmt, 8, 5);
			sqlite3_bind_int(stmt, 10, 0);
			sqlite3_bind_int64(stmt, 11, 1);
			sqlite3_bind_int64(stmt, 12, 5);
			if (sqlite3_step(stmt) != SQLITE_DONE ||
			    sqlite3_changes(db) != 1)
				bench_die("record", sqlite3_errmsg(db));
			sqlite3_reset(stmt);
		}
		if (batch) {
			buf_putc(&json, ']');
			sqlite3_bind_text(stmt, 1, json.data, (int)json.len,
					  SQLITE_STATIC);
			if (sqlite3_step(stmt) != SQLITE_DONE ||
			    sqlite3_changes(db) != end - base)
				bench_die("record", sqlite3_errmsg(db));
			sqlite3_reset(stmt);
		}
		bench_sql(db, "COMMIT");
	}
	t0 = clock_mono_s() - t0;
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	buf_free(&json);
	return (double)n / t0;
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp";
	char path[512];
	long jobs = 200000;
	int c, only = -1;

	store_process_init();
	while ((c = getopt_long(argc, argv, "", (const struct option[]){
			{ "jobs", required_argument, NULL, 'n' },
			{ "dir", required_argument, NULL, 'd' },
			{ "only", required_argument, NULL, 'o' },
			{ NULL, 0, NULL, 0 } }, NULL)) != -1) {
		if (c == 'n')
			jobs = atol(optarg);
		else if (c == 'd')
			dir = optarg;
		else if (c == 'o') {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || v < 0 ||
			    v >= BENCH_SHAPES) {
				fprintf(stderr, "bench_record: --only takes "
					"0 to %d\n", BENCH_SHAPES - 1);
				return 2;
			}
			only = (int)v;
		}
		else
			return 2;
	}
	if (jobs < 1)
		return 2;
	snprintf(path, sizeof(path), "%s/bench_record.%d.db", dir,
		 (int)getpid());
	for (int shape = 0; shape < BENCH_SHAPES; shape++) {
		static const char *const name[] = {
			"one UPDATE a result (schema 9):",
			"one UPDATE ... FROM json_each a batch:",
			"one INSERT a result (schema 10):",
			"one INSERT of 25 results (schema 10):",
		};

		if (only >= 0 && shape != only)
			continue;
		bench_fresh(path, jobs);
		printf("%-38s %10.0f results/s (%ld, %d a transaction)\n",
		       name[shape], bench_run(path, jobs, shape), jobs,
		       BENCH_BATCH);
	}
	for (int i = 0; i < 3; i++) {
		static const char *const ext[] = { "", "-wal", "-shm" };
		char p[600];

		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		remove(p);
	}
	return 0;
}
