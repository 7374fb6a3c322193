/*
 * test_store - the job store on a real SQLite file: campaigns, import,
 * claim, record, leases, reports, migration and concurrent handles.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "counts_check.h"
#include "store.h"
#include "store_addrset.h"
#include "store_schema.h"
#include "vars.h"

/*
 * "now" for claims: a little after the imports, which stamp jobs with the
 * real clock, so every imported job is due at T0.
 */
static int64_t T0;

struct fixture {
	char dir[64];
	char path[96];
	struct store *st;
	int64_t campaign;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params p = { .create = true };
	const char *error;

	T0 = clock_wall_ms() + 60000;
	strcpy(f->dir, "/tmp/volley-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/volley.db", f->dir);
	assert_int_equal(store_open(f->path, &p, &f->st, &error), 0);
	assert_int_equal(store_campaign_create(f->st, "news",
					       "list@example.org", NULL, NULL,
					       NULL, false, NULL, 0,
					       &f->campaign, &error),
			 0);
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

/*
 * The same tests again with an address set of 64 slots (44 keys), so that
 * an import's duplicates are found across the set's runs (see
 * store_addrset.h); and with its filter answering "maybe" to every key,
 * so that each key not seen before is looked for in every run.
 */
static size_t default_slots, default_filter_blocks;

static int setup_small_set(void **state)
{
	default_slots = store_addrset_max_slots;
	default_filter_blocks = store_addrset_filter_blocks;
	store_addrset_max_slots = 64;
	return setup(state);
}

static int setup_small_set_no_filter(void **state)
{
	int ret = setup_small_set(state);

	store_addrset_filter_blocks = 1;
	return ret;
}

static int teardown_small_set(void **state)
{
	store_addrset_max_slots = default_slots;
	store_addrset_filter_blocks = default_filter_blocks;
	return teardown(state);
}

/* import_n - import addresses user0..user<n-1>@example.org with one var */
static void import_n(struct fixture *f, int n)
{
	const char *names[] = { "first_name" };
	struct store_import *imp;
	struct buf vars = BUF_INIT;
	const char *error;
	char addr[64], name[32];

	assert_int_equal(store_import_begin(f->st, f->campaign, "test",
					    "email", names, 1, &imp, &error), 0);
	for (int i = 0; i < n; i++) {
		int len = snprintf(addr, sizeof(addr), "user%d@example.org", i);

		snprintf(name, sizeof(name), "Name %d", i);
		vars_pack_begin(&vars);
		vars_pack_str(&vars, name, strlen(name));
		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars.data, vars.len, &error),
				 1);
	}
	assert_int_equal(store_import_commit(&imp, 0, NULL, &error), 0);
	assert_null(imp);
	buf_free(&vars);
}

static void assert_counts(struct fixture *f, int64_t queued, int64_t sending,
			  int64_t sent, int64_t deferred, int64_t failed)
{
	struct store_counts c;
	const char *error;

	assert_int_equal(store_counts(f->st, f->campaign, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_QUEUED], queued);
	assert_int_equal(c.by_state[JOB_SENDING], sending);
	assert_int_equal(c.by_state[JOB_SENT], sent);
	assert_int_equal(c.by_state[JOB_DEFERRED], deferred);
	assert_int_equal(c.by_state[JOB_FAILED], failed);
	assert_int_equal(c.total, queued + sending + sent + deferred + failed);
}

static void test_open_is_idempotent(void **state)
{
	struct fixture *f = *state;
	struct store *again;
	const char *error;
	int64_t id;

	store_close(&f->st);
	assert_int_equal(store_open(f->path, NULL, &again, &error), 0);
	assert_int_equal(store_campaign_find(again, "news", &id, &error), 1);
	assert_int_equal(id, f->campaign);
	assert_int_equal(store_campaign_find(again, "nope", &id, &error), 0);
	f->st = again;
}

static void test_open_missing_without_create(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	const char *error;
	char path[128];

	snprintf(path, sizeof(path), "%s/absent.db", f->dir);
	assert_int_equal(store_open(path, NULL, &st, &error), -1);
	assert_null(st);
	assert_non_null(strstr(error, "volley init"));
	assert_int_equal(access(path, F_OK), -1);
}

static void test_open_sets_wal_and_version(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *stmt;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1,
					    &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1,
					    &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), store_schema_version());
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void test_campaign_names_are_unique(void **state)
{
	struct fixture *f = *state;
	const char *error;
	int64_t id;

	assert_int_equal(store_campaign_create(f->st, "news", NULL, NULL,
					       NULL, NULL, false, NULL, 0, &id, &error),
			 -1);
	assert_non_null(strstr(error, "already exists"));
}

static void test_import_and_duplicates(void **state)
{
	struct fixture *f = *state;
	struct store_import *imp;
	struct store_import_stats stats;
	const char *error;
	const char *names[] = { "a" };
	const char vars[] = { VARS_FORMAT_FLAT, 1, 'x' };

	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1,
					    &imp, &error), 0);
	assert_int_equal(store_import_add(imp, "Ann@Example.org", 15, 0, vars,
					  sizeof(vars), &error), 1);
	/* Same address in another ASCII case: a duplicate. */
	assert_int_equal(store_import_add(imp, "ann@example.ORG", 15, 0, vars,
					  sizeof(vars), &error), 0);
	assert_int_equal(store_import_add(imp, "bob@example.org", 15, 0, vars,
					  sizeof(vars), &error), 1);
	assert_int_equal(store_import_commit(&imp, 2, &stats, &error), 0);
	assert_int_equal(stats.added, 2);
	assert_int_equal(stats.duplicates, 1);
	assert_counts(f, 2, 0, 0, 0, 0);

	/* A second import sees the first one's addresses as duplicates. */
	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1,
					    &imp, &error), 0);
	assert_int_equal(store_import_add(imp, "BOB@example.org", 15, 0, vars,
					  sizeof(vars), &error), 0);
	assert_int_equal(store_import_commit(&imp, 0, &stats, &error), 0);
	assert_int_equal(stats.added, 0);
	assert_int_equal(stats.duplicates, 1);
	assert_counts(f, 2, 0, 0, 0, 0);
}

static void test_import_abort_keeps_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_import *imp;
	const char *error;
	const char *names[] = { "a" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };

	import_n(f, 3);
	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1,
					    &imp, &error), 0);
	assert_int_equal(store_import_add(imp, "new@example.org", 15, 0, vars,
					  sizeof(vars), &error), 1);
	store_import_abort(&imp);
	assert_null(imp);
	assert_counts(f, 3, 0, 0, 0, 0);
}

/* index_sql - the CREATE statements of the jobs indexes, in one string */
static char *index_sql(const char *path)
{
	struct buf out = BUF_INIT;
	sqlite3_stmt *stmt;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT name, sql FROM"
		" sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs'"
		" ORDER BY name", -1, &stmt, NULL), SQLITE_OK);
	while (sqlite3_step(stmt) == SQLITE_ROW)
		buf_printf(&out, "%s: %s\n", sqlite3_column_text(stmt, 0),
			   sqlite3_column_text(stmt, 1));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return out.data;
}

static int count_job(void *ctx, const struct store_job *job)
{
	int64_t *last = ctx;

	*last = job->id;
	return 0;
}

/* job_with_address - the id of the job with this address, or 0 */
static int64_t job_with_address(struct fixture *f, const char *addr)
{
	const char *error;
	int64_t id = 0;

	assert_int_equal(store_job_foreach(f->st, f->campaign, addr, 0,
					   count_job, &id, &error), 0);
	return id;
}

/*
 * A large import drops the jobs indexes and builds them again at its end:
 * afterwards they are defined exactly as before, the claim still uses
 * jobs_fresh, and its many address keys (more than one address_keys row)
 * all count for the next import's duplicates.
 */
static void test_large_import_rebuilds_indexes(void **state)
{
	struct fixture *f = *state;
	char *before = index_sql(f->path), *after;
	struct store_import *imp;
	struct store_import_stats stats;
	const char *names[] = { "first_name" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	const char *error;
	struct store_batch b = { 0 };
	char addr[64];

	import_n(f, 70000);
	after = index_sql(f->path);
	assert_non_null(strstr(before, "jobs_fresh"));
	assert_string_equal(before, after);
	assert_counts(f, 70000, 0, 0, 0, 0);

	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1, &imp, &error), 0);
	for (int i = 0; i < 70010; i++) {
		int len = snprintf(addr, sizeof(addr), "USER%d@example.org",
				   i);

		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 i >= 70000 ? 1 : 0);
	}
	assert_int_equal(store_import_commit(&imp, 0, &stats, &error), 0);
	assert_int_equal(stats.added, 10);
	assert_int_equal(stats.duplicates, 70000);
	assert_counts(f, 70010, 0, 0, 0, 0);
	assert_true(job_with_address(f, "user69999@EXAMPLE.org") > 0);
	assert_int_equal(job_with_address(f, "user70010@example.org"), 0);

	/* Oldest first, through the rebuilt index. */
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 1000, 3,
				     &b, &error), 0);
	assert_int_equal(b.count, 3);
	assert_string_equal(b.jobs[0].address, "user0@example.org");
	assert_string_equal(b.jobs[2].address, "user2@example.org");
	store_batch_free(&b);
	free(before);
	free(after);
}

/* An import rolled back after dropping the indexes leaves them in place. */
static void test_large_import_abort_keeps_indexes(void **state)
{
	struct fixture *f = *state;
	char *before, *after;
	struct store_import *imp;
	const char *names[] = { "first_name" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	const char *error;
	char addr[64];

	import_n(f, 5);
	before = index_sql(f->path);
	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1, &imp, &error), 0);
	for (int i = 0; i < 30000; i++) {
		int len = snprintf(addr, sizeof(addr), "x%d@example.org", i);

		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 1);
	}
	store_import_abort(&imp);
	after = index_sql(f->path);
	assert_string_equal(before, after);
	assert_counts(f, 5, 0, 0, 0, 0);
	assert_int_equal(job_with_address(f, "x1@example.org"), 0);
	free(before);
	free(after);
}

/* add_fillers - n more addresses, "fill<from>@x.org" on, each new */
static void add_fillers(struct store_import *imp, int from, int n)
{
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	const char *error;
	char addr[32];

	for (int i = from; i < from + n; i++) {
		int len = snprintf(addr, sizeof(addr), "fill%d@x.org", i);

		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 1);
	}
}

/*
 * Two addresses whose keys collide are still two recipients: a key only
 * points at candidates, the addresses decide.  The collision is made by
 * hand, giving a's job the key of b.  Other addresses between them push
 * each out of a small set's table into its runs.
 */
static void test_key_collision_is_not_a_duplicate(void **state)
{
	struct fixture *f = *state;
	struct store_import *imp;
	const char *names[] = { "first_name" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	const char *error;
	uint64_t key = (uint64_t)store_addr_key("b@x.org", 7);
	unsigned char blob[8];
	sqlite3_stmt *stmt;
	sqlite3 *db;
	int64_t a_id;

	for (int i = 0; i < 8; i++)
		blob[i] = (unsigned char)(key >> (8 * i));
	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1, &imp, &error), 0);
	assert_int_equal(store_import_add(imp, "a@x.org", 7, 0, vars,
					  sizeof(vars), &error), 1);
	assert_int_equal(store_import_commit(&imp, 0, NULL, &error), 0);
	a_id = job_with_address(f, "a@x.org");
	assert_true(a_id > 0);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO address_keys"
		" (campaign_id, first_job_id, keys) VALUES (?1, ?2, ?3)", -1,
		&stmt, NULL), SQLITE_OK);
	sqlite3_bind_int64(stmt, 1, f->campaign);
	sqlite3_bind_int64(stmt, 2, a_id);
	sqlite3_bind_blob(stmt, 3, blob, sizeof(blob), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);

	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1, &imp, &error), 0);
	add_fillers(imp, 0, 100);
	assert_int_equal(store_import_add(imp, "b@x.org", 7, 0, vars,
					  sizeof(vars), &error), 1);
	add_fillers(imp, 100, 100);
	/* Within one import: A is a, and B is b though a shares its key. */
	assert_int_equal(store_import_add(imp, "A@X.org", 7, 0, vars,
					  sizeof(vars), &error), 0);
	assert_int_equal(store_import_add(imp, "B@X.ORG", 7, 0, vars,
					  sizeof(vars), &error), 0);
	assert_int_equal(store_import_commit(&imp, 0, NULL, &error), 0);
	assert_counts(f, 202, 0, 0, 0, 0);
	assert_true(job_with_address(f, "b@x.org") > a_id);
	assert_int_equal(job_with_address(f, "A@x.org"), a_id);
}

/*
 * A duplicate is found however long ago its first occurrence was added,
 * in this import or an earlier one, in any ASCII case; the jobs added
 * keep consecutive ids in the file's order.
 */
static void test_duplicates_long_after_their_first(void **state)
{
	struct fixture *f = *state;
	struct store_import *imp;
	struct store_import_stats stats;
	const char *names[] = { "a" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };
	const char *error;
	int64_t first;
	char addr[64];
	int len;

	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1, &imp, &error), 0);
	for (int i = 0; i < 3000; i++) {
		len = snprintf(addr, sizeof(addr), "user%d@example.org", i);
		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 1);
		/* now and then, an address from long before */
		if (i % 3 == 2) {
			len = snprintf(addr, sizeof(addr),
				       "USER%d@Example.ORG", i / 3);
			assert_int_equal(store_import_add(imp, addr,
							  (size_t)len, 0, vars,
							  sizeof(vars),
							  &error), 0);
		}
	}
	for (int i = 0; i < 3000; i += 7) {
		len = snprintf(addr, sizeof(addr), "user%d@EXAMPLE.org", i);
		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 0);
	}
	assert_int_equal(store_import_commit(&imp, 0, &stats, &error), 0);
	assert_int_equal(stats.added, 3000);
	assert_int_equal(stats.duplicates, 1000 + 429);
	first = job_with_address(f, "user0@example.org");
	assert_true(first > 0);
	assert_int_equal(job_with_address(f, "user2999@example.org"),
			 first + 2999);

	/* A second import: the first one's 3,000 in another case, 1,000 new */
	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1, &imp, &error), 0);
	for (int i = 0; i < 4000; i++) {
		len = snprintf(addr, sizeof(addr), "User%d@example.Org", i);
		assert_int_equal(store_import_add(imp, addr, (size_t)len, 0,
						  vars, sizeof(vars), &error),
				 i >= 3000 ? 1 : 0);
	}
	assert_int_equal(store_import_commit(&imp, 0, &stats, &error), 0);
	assert_int_equal(stats.added, 1000);
	assert_int_equal(stats.duplicates, 3000);
	assert_counts(f, 4000, 0, 0, 0, 0);
	assert_int_equal(job_with_address(f, "user3000@example.org"),
			 first + 3000);
	assert_int_equal(job_with_address(f, "user3999@example.org"),
			 first + 3999);
}

/*
 * addrset_jobs - how many jobs of key the set returns, each once; with
 * want > 0, each must be want
 */
static int addrset_jobs(struct store_addrset *set, int64_t key, int64_t want)
{
	struct store_addrset_cursor c;
	int64_t id, seen[8];
	int n = 0, rc;

	store_addrset_cursor_init(&c, key);
	while ((rc = store_addrset_next(set, &c, &id)) > 0) {
		if (want > 0)
			assert_int_equal(id, want);
		for (int i = 0; i < n && i < 8; i++)
			assert_true(seen[i] != id);
		if (n < 8)
			seen[n] = id;
		n++;
	}
	assert_int_equal(rc, 0);
	return n;
}

/* addrset_has - does the set return job id for key? */
static bool addrset_has(struct store_addrset *set, int64_t key, int64_t want)
{
	struct store_addrset_cursor c;
	int64_t id;
	int rc;

	store_addrset_cursor_init(&c, key);
	while ((rc = store_addrset_next(set, &c, &id)) > 0) {
		if (id == want)
			return true;
	}
	assert_int_equal(rc, 0);
	return false;
}

/* addrset_key_of - a key of its own for each id */
static int64_t addrset_key_of(int64_t id)
{
	char addr[32];
	int len = snprintf(addr, sizeof(addr), "u%lld@x.org", (long long)id);

	return store_addr_key(addr, (size_t)len);
}

/* The set returns every job of a key, and only those. */
static void test_addrset(void **state)
{
	struct fixture *f = *state;
	struct store_addrset set;
	int64_t k = store_addr_key("Ann@Example.org", 15);

	assert_int_equal(k, store_addr_key("ann@example.ORG", 15));
	assert_true(k != store_addr_key("ann@example.org.", 16));
	store_addrset_init(&set, f->dir);
	assert_int_equal(addrset_jobs(&set, k, 0), 0);
	for (int64_t id = 1; id <= 5000; id++)
		assert_int_equal(store_addrset_add(&set, id == 7 ||
						   id == 4000 ? k :
						   addrset_key_of(id), id), 0);
	assert_int_equal(set.count, 5000);
	assert_int_equal(set.nruns, 0);
	assert_int_equal(addrset_jobs(&set, k, 0), 2);
	assert_true(addrset_has(&set, k, 7));
	assert_true(addrset_has(&set, k, 4000));
	assert_int_equal(addrset_jobs(&set, addrset_key_of(4000), 0), 0);
	store_addrset_free(&set);
}

/*
 * With a table of 16 slots (11 keys), 5,000 keys go through hundreds of
 * runs, merged as they come: every key is still found with its job and
 * nothing else; a key's jobs are all found, in the table or in runs
 * (even 600 jobs of one key, across blocks of a run's index); and a key
 * never added is not found, even when the filter says "maybe" to all.
 */
static void addrset_runs(struct fixture *f, size_t filter_blocks)
{
	size_t slots = store_addrset_max_slots;
	size_t blocks = store_addrset_filter_blocks;
	int64_t k = store_addr_key("Ann@Example.org", 15);
	int64_t many = store_addr_key("many@example.org", 16);
	struct store_addrset set;

	store_addrset_max_slots = 16;
	store_addrset_filter_blocks = filter_blocks;
	store_addrset_init(&set, f->dir);
	store_addrset_max_slots = slots;
	store_addrset_filter_blocks = blocks;
	for (int64_t id = 1; id <= 5000; id++) {
		int64_t key = addrset_key_of(id);

		if (id == 7 || id == 40 || id == 4999)
			key = k;
		else if (id % 8 == 1 && id < 8 * 600)
			key = many;
		assert_int_equal(store_addrset_add(&set, key, id), 0);
	}
	/* Runs merged like a binary counter's bits: 5,000 keys in runs of
	 * 11 make at most log2(455) + 1 of them. */
	assert_int_equal(set.cap, 16);
	assert_true(set.nruns >= 1 && set.nruns <= 9);
	assert_int_equal(addrset_jobs(&set, k, 0), 3);
	assert_true(addrset_has(&set, k, 7));
	assert_true(addrset_has(&set, k, 40));
	assert_true(addrset_has(&set, k, 4999));
	assert_int_equal(addrset_jobs(&set, many, 0), 600);
	for (int64_t id = 1; id <= 5000; id++) {
		if (id == 7 || id == 40 || id == 4999 ||
		    (id % 8 == 1 && id < 8 * 600))
			continue;
		assert_int_equal(addrset_jobs(&set, addrset_key_of(id), id),
				 1);
	}
	for (int64_t id = 5001; id <= 6000; id++)
		assert_int_equal(addrset_jobs(&set, addrset_key_of(id), 0), 0);
	assert_true(set.run_reads > 0);
	store_addrset_free(&set);
}

static void test_addrset_runs(void **state)
{
	addrset_runs(*state, 1 << 18);
}

static void test_addrset_runs_filter_always_maybe(void **state)
{
	addrset_runs(*state, 1);
}

/* A run that cannot be made fails the add, with errno. */
static void test_addrset_run_fails(void **state)
{
	size_t slots = store_addrset_max_slots;
	struct store_addrset set;
	int rc = 0;

	(void)state;
	store_addrset_max_slots = 16;
	store_addrset_init(&set, "/nonexistent/volley-test");
	store_addrset_max_slots = slots;
	for (int64_t id = 1; id <= 100 && rc == 0; id++)
		rc = store_addrset_add(&set, addrset_key_of(id), id);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, ENOENT);
	store_addrset_free(&set);
}

static void test_claim_oldest_first_and_vars(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	const void *names;
	size_t names_len;
	struct vars_iter it;
	const char *error, *p, *addr_col;
	size_t len;

	import_n(f, 10);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 4,
				     &b, &error), 0);
	assert_int_equal(b.count, 4);
	for (size_t i = 0; i < b.count; i++) {
		char want[64];
		int n = -1;

		/* RETURNING order is not promised; find each job's index. */
		assert_int_equal(sscanf(b.jobs[i].address, "user%d@", &n), 1);
		assert_in_range(n, 0, 3);
		snprintf(want, sizeof(want), "user%d@example.org", n);
		assert_string_equal(b.jobs[i].address, want);
		assert_int_equal(b.jobs[i].address_len, strlen(want));
		assert_int_equal(b.jobs[i].attempts, 1);
		assert_int_equal(vars_iter_init(&it, b.jobs[i].vars,
						b.jobs[i].vars_len), 0);
		assert_int_equal(vars_next(&it, &p, &len), 1);
		snprintf(want, sizeof(want), "Name %d", n);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(p, want, len);
		assert_int_equal(vars_next(&it, &p, &len), 0);
	}
	assert_int_equal(store_import_var_names(f->st, b.jobs[0].import_id,
						&names, &names_len, &addr_col,
						&error), 0);
	assert_string_equal(addr_col, "email");
	assert_int_equal(vars_iter_init(&it, names, names_len), 0);
	assert_int_equal(vars_next(&it, &p, &len), 1);
	assert_int_equal(len, 10);
	assert_memory_equal(p, "first_name", 10);
	assert_counts(f, 6, 4, 0, 0, 0);

	/* The next claim takes the next jobs, never the leased ones. */
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 100,
				     &b, &error), 0);
	assert_int_equal(b.count, 6);
	assert_counts(f, 0, 10, 0, 0, 0);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 100,
				     &b, &error), 0);
	assert_int_equal(b.count, 0);
	store_batch_free(&b);
}

static void test_record_results(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct store_result r[3];
	const char *error;
	size_t stale;

	import_n(f, 3);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 3,
				     &b, &error), 0);
	assert_int_equal(b.count, 3);
	memset(r, 0, sizeof(r));
	r[0] = (struct store_result){ b.jobs[0].id, JOB_SENT, 250, "2.0.0",
				      "OK queued", "ABC123", T0 + 10, 0,
				      false, NULL,
				      false, false, f->campaign, 0 };
	r[1] = (struct store_result){ b.jobs[1].id, JOB_DEFERRED, 451, "4.7.1",
				      "try later", NULL, T0 + 10, T0 + 60000,
				      false, NULL,
				      false, false, 0, 0 };
	r[2] = (struct store_result){ b.jobs[2].id, JOB_FAILED, 550, "5.1.1",
				      "no such user", NULL, T0 + 10, 0, false, NULL,
				      false, false, 0, 0 };
	assert_int_equal(store_record(f->st, "me:1", r, 3, &stale, &error), 0);
	assert_int_equal(stale, 0);
	assert_counts(f, 0, 0, 1, 1, 1);

	/* The deferred job is not due before its time, and is due after. */
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0 + 59999,
				     60000, 10, &b, &error), 0);
	assert_int_equal(b.count, 0);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0 + 60000,
				     60000, 10, &b, &error), 0);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.jobs[0].id, r[1].job_id);
	assert_int_equal(b.jobs[0].attempts, 2);
	store_batch_free(&b);
}

static void test_record_from_non_owner_is_stale_except_sent(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct store_result r;
	const char *error;
	size_t stale;

	import_n(f, 2);
	assert_int_equal(store_claim(f->st, f->campaign, "owner:1", T0, 60000,
				     2, &b, &error), 0);
	r = (struct store_result){ b.jobs[0].id, JOB_FAILED, 550, NULL, "no",
				   NULL, T0, 0, false, NULL,
				      false, false, 0, 0 };
	assert_int_equal(store_record(f->st, "intruder:2", &r, 1, &stale,
				      &error), 0);
	assert_int_equal(stale, 1);
	assert_counts(f, 0, 2, 0, 0, 0);

	/* "sent" sticks even when the lease moved on: the server has it. */
	r = (struct store_result){ b.jobs[0].id, JOB_SENT, 250, NULL, "ok",
				   NULL, T0, 0, false, NULL,
				      false, false, 0, 0 };
	assert_int_equal(store_record(f->st, "intruder:2", &r, 1, &stale,
				      &error), 0);
	assert_int_equal(stale, 0);
	assert_counts(f, 0, 1, 1, 0, 0);

	/* ... and a later "deferred" from the real owner cannot undo it. */
	r = (struct store_result){ b.jobs[0].id, JOB_DEFERRED, 451, NULL, "x",
				   NULL, T0, T0, false, NULL,
				      false, false, 0, 0 };
	assert_int_equal(store_record(f->st, "owner:1", &r, 1, &stale,
				      &error), 0);
	assert_int_equal(stale, 1);
	assert_counts(f, 0, 1, 1, 0, 0);
	store_batch_free(&b);
}

struct report_rows {
	int n;
	struct store_report_row last;
	char reply[256];
	int attempts[16];
	int states[16];
};

static int collect_row(void *ctx, const struct store_report_row *row)
{
	struct report_rows *rr = ctx;

	if (rr->n < 16) {
		rr->attempts[rr->n] = row->attempts;
		rr->states[rr->n] = (int)row->state;
	}
	rr->n++;
	rr->last = *row;
	snprintf(rr->reply, sizeof(rr->reply), "%s",
		 row->last_reply ? row->last_reply : "");
	return 0;
}

static void test_give_back_undoes_attempt(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct store_result r;
	struct report_rows rr = { 0 };
	const char *error;
	size_t stale;
	int64_t n;

	import_n(f, 2);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 2,
				     &b, &error), 0);
	r = (struct store_result){ b.jobs[0].id, JOB_QUEUED, 0, NULL, NULL,
				   NULL, T0, 0, false, NULL,
				      false, false, 0, 0 };
	assert_int_equal(store_record(f->st, "me:1", &r, 1, &stale, &error), 0);
	assert_int_equal(stale, 0);
	assert_counts(f, 1, 1, 0, 0, 0);
	assert_int_equal(store_release(f->st, "me:1", NULL, 0, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_counts(f, 2, 0, 0, 0, 0);
	assert_int_equal(store_report_foreach(f->st, f->campaign, NULL,
					      collect_row, &rr, &error), 0);
	assert_int_equal(rr.n, 2);
	assert_int_equal(rr.attempts[0], 0);
	assert_int_equal(rr.attempts[1], 0);
	assert_int_equal(rr.last.first_attempt_at, 0);
	store_batch_free(&b);
}

/*
 * Jobs whose message may have left but whose result the store did not
 * take are kept out of a release: they stay leased, and the next run's
 * reclaim takes them as in doubt - never back as untried.
 */
static void test_release_keeps_what_may_have_left(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	int64_t keep[2], n;
	const char *error;

	import_n(f, 4);
	assert_int_equal(store_claim(f->st, f->campaign, "me:1", T0, 60000, 4,
				     &b, &error), 0);
	keep[0] = b.jobs[1].id;
	keep[1] = b.jobs[3].id;
	assert_int_equal(store_release(f->st, "me:1", keep, 2, &n, &error),
			 0);
	assert_int_equal(n, 2);
	assert_counts(f, 2, 2, 0, 0, 0);
	/* the owner gone, the kept ones come back in doubt */
	assert_int_equal(store_reclaim(f->st, T0 + 60001, false, NULL, NULL,
				       &n, &error), 0);
	assert_int_equal(n, 2);
	assert_counts(f, 2, 0, 0, 2, 0);
	assert_int_equal(store_claim(f->st, f->campaign, "me:2", T0 + 60002,
				     60000, 4, &b, &error), 0);
	for (size_t i = 0; i < b.count; i++)
		assert_int_equal(b.jobs[i].doubts,
				 b.jobs[i].id == keep[0] ||
				 b.jobs[i].id == keep[1] ? 1 : 0);
	store_batch_free(&b);
}

/* Another process holding the write lock: a transient failure. */
static void test_busy_is_transient(void **state)
{
	struct fixture *f = *state;
	struct store_params p = { .busy_timeout_ms = 50 };
	struct store *other;
	struct store_batch b = { 0 };
	const char *error;

	sqlite3 *db;

	import_n(f, 2);
	assert_int_equal(store_open(f->path, &p, &other, &error), 0);
	assert_int_equal(store_claim(other, f->campaign, "o:1", T0, 60000, 1,
				     &b, &error), 0);
	/* another process's connection holds the write lock */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
				      NULL), SQLITE_OK);
	assert_int_equal(store_claim(other, f->campaign, "o:1", T0, 60000, 1,
				     &b, &error), -1);
	assert_non_null(strstr(error, "locked"));
	assert_true(store_error_transient(other));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(store_claim(other, f->campaign, "o:1", T0, 60000, 1,
				     &b, &error), 0);
	assert_int_equal(b.count, 1);
	store_batch_free(&b);
	store_close(&other);
}

static void test_lease_expiry(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct report_rows rr = { 0 };
	enum job_state deferred = JOB_DEFERRED;
	const char *error;
	int64_t n;

	import_n(f, 5);
	assert_int_equal(store_claim(f->st, f->campaign, "gone:1", T0, 1000, 3,
				     &b, &error), 0);
	assert_int_equal(b.count, 3);
	assert_int_equal(store_reclaim(f->st, T0 + 999, false, NULL, NULL, &n,
				       &error), 0);
	assert_int_equal(n, 0);
	assert_counts(f, 2, 3, 0, 0, 0);
	assert_int_equal(store_reclaim(f->st, T0 + 1000, false, NULL, NULL, &n,
				       &error), 0);
	assert_int_equal(n, 3);
	assert_counts(f, 2, 0, 0, 3, 0);

	/* Reclaimed jobs keep their attempt (it may have been delivered). */
	assert_int_equal(store_report_foreach(f->st, f->campaign, &deferred,
					      collect_row, &rr, &error), 0);
	assert_int_equal(rr.n, 3);
	assert_int_equal(rr.last.attempts, 1);
	assert_non_null(strstr(rr.reply, "may have been delivered"));
	assert_non_null(strstr(rr.reply, "gone:1"));

	/* And they are due again at once. */
	assert_int_equal(store_claim(f->st, f->campaign, "new:2", T0 + 1000,
				     1000, 10, &b, &error), 0);
	assert_int_equal(b.count, 5);
	store_batch_free(&b);
}

static bool alive_except_ghost(void *ctx, const char *owner)
{
	(void)ctx;
	return strcmp(owner, "ghost:1") != 0;
}

static void test_reclaim_owner_gone(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	const char *error;
	int64_t n;

	import_n(f, 4);
	assert_int_equal(store_claim(f->st, f->campaign, "ghost:1", T0,
				     3600000, 2, &b, &error), 0);
	assert_int_equal(store_claim(f->st, f->campaign, "alive:2", T0,
				     3600000, 2, &b, &error), 0);
	assert_int_equal(store_reclaim(f->st, T0 + 1, false, alive_except_ghost,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_counts(f, 0, 2, 0, 2, 0);
	store_batch_free(&b);
}

/*
 * Held in doubt: a dead run's jobs, reclaimed with hold, are deferred
 * but never due until released; dropping fails them.
 */
static void test_reclaim_hold_in_doubt(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	const char *error;
	int64_t n;

	import_n(f, 4);
	assert_int_equal(store_claim(f->st, f->campaign, "ghost:1", T0,
				     3600000, 3, &b, &error), 0);
	assert_int_equal(store_reclaim(f->st, T0 + 1, true, alive_except_ghost,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 3);
	assert_counts(f, 1, 0, 0, 3, 0);
	assert_int_equal(store_in_doubt(f->st, f->campaign, STORE_DOUBT_COUNT,
					0, &n, &error), 0);
	assert_int_equal(n, 3);
	/* far in the future, still nothing held is due */
	assert_int_equal(store_claim(f->st, f->campaign, "me:2",
				     T0 + 86400000LL * 365 * 100, 3600000, 10,
				     &b, &error), 0);
	assert_int_equal(b.count, 1);
	/* released: due now, all three claimed again */
	assert_int_equal(store_in_doubt(f->st, f->campaign,
					STORE_DOUBT_RELEASE, T0 + 5, &n,
					&error), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_in_doubt(f->st, f->campaign, STORE_DOUBT_COUNT,
					0, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_claim(f->st, f->campaign, "me:2", T0 + 5,
				     3600000, 10, &b, &error), 0);
	assert_int_equal(b.count, 3);
	store_batch_free(&b);
}

/*
 * In doubt a second time: held, whatever the mode, so nobody ever gets
 * more than two copies; a result in doubt counts too, and a claim says
 * how often a job was in doubt before.
 */
static void test_second_doubt_is_held(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	struct store_result r;
	const char *error;
	size_t stale;
	int64_t n;

	import_n(f, 2);
	assert_int_equal(store_claim(f->st, f->campaign, "ghost:1", T0,
				     3600000, 2, &b, &error), 0);
	assert_int_equal(b.jobs[0].doubts, 0);
	/* the first doubt: due again at once (no hold) */
	assert_int_equal(store_reclaim(f->st, T0 + 1, false,
				       alive_except_ghost, NULL, &n, &error),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_in_doubt(f->st, f->campaign, STORE_DOUBT_COUNT,
					0, &n, &error), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_claim(f->st, f->campaign, "me:2", T0 + 2,
				     3600000, 2, &b, &error), 0);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.jobs[0].doubts, 1);
	/* one job's message goes in doubt again: held */
	r = (struct store_result){ b.jobs[0].id, JOB_DEFERRED, 451, "4.4.2",
				   "no reply", NULL, T0 + 3, STORE_HELD, true, NULL,
				      false, false, 0, 0 };
	assert_int_equal(store_record(f->st, "me:2", &r, 1, &stale, &error),
			 0);
	/* the other's sender dies again: held too, by reclaim */
	assert_int_equal(store_reclaim(f->st, T0 + 4, false, NULL, NULL, &n,
				       &error), 0);
	assert_int_equal(n, 0);		/* its lease has not expired */
	assert_int_equal(store_reclaim(f->st, T0 + 3600000 + 3, false, NULL,
				       NULL, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_in_doubt(f->st, f->campaign, STORE_DOUBT_COUNT,
					0, &n, &error), 0);
	assert_int_equal(n, 2);
	/* released by the user: due, and the claim says it was in doubt */
	assert_int_equal(store_in_doubt(f->st, f->campaign,
					STORE_DOUBT_RELEASE, T0 + 5, &n,
					&error), 0);
	assert_int_equal(store_claim(f->st, f->campaign, "me:3",
				     T0 + 3600000 + 5, 3600000, 2, &b,
				     &error), 0);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.jobs[0].doubts, 2);
	store_batch_free(&b);
}

/* Dropping what is held fails it for good. */
static void test_drop_in_doubt(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	const char *error;
	int64_t n;

	import_n(f, 2);
	assert_int_equal(store_claim(f->st, f->campaign, "ghost:1", T0,
				     3600000, 2, &b, &error), 0);
	assert_int_equal(store_reclaim(f->st, T0 + 1, true, alive_except_ghost,
				       NULL, &n, &error), 0);
	assert_int_equal(store_in_doubt(f->st, f->campaign, STORE_DOUBT_DROP,
					T0 + 2, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_counts(f, 0, 0, 0, 0, 2);
	store_batch_free(&b);
}

/* --- lease owners --------------------------------------------------- */

/*
 * owner_field - the word after " key " in owner (the first word for
 * "host") into dst; fails the test if there is none.
 */
static void owner_field(const char *owner, const char *key, char *dst,
			size_t size)
{
	char pat[32];
	const char *p = owner;
	size_t n;

	if (strcmp(key, "host") != 0) {
		snprintf(pat, sizeof(pat), " %s ", key);
		p = strstr(owner, pat);
		if (p == NULL)
			fail_msg("no '%s' in '%s'", key, owner);
		p += strlen(pat);
	}
	n = strcspn(p, " ");
	assert_true(n > 0 && n < size);
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* owner_with - owner with the word after key made value */
static void owner_with(char *dst, size_t size, const char *owner,
		       const char *key, const char *value)
{
	char pat[32];
	const char *p = owner, *end;

	if (strcmp(key, "host") != 0) {
		snprintf(pat, sizeof(pat), " %s ", key);
		p = strstr(owner, pat);
		assert_non_null(p);
		p += strlen(pat);
	}
	end = p + strcspn(p, " ");
	snprintf(dst, size, "%.*s%s%s", (int)(p - owner), owner, value, end);
}

/* proc_start - field 22 of /proc/PID/stat: when pid started */
static void proc_start(pid_t pid, char *dst, size_t size)
{
	char path[64], line[2048], *p;
	FILE *f;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	p = strrchr(line, ')');
	assert_non_null(p);
	for (field = 2; field < 22; field++) {
		p = strchr(p, ' ');
		assert_non_null(p);
		p++;
	}
	snprintf(dst, size, "%.*s", (int)strspn(p, "0123456789"), p);
	assert_true(dst[0] != '\0');
}

/*
 * Another process that named itself: its owner (from its own
 * store_lease_owner_self()), alive until child_end().
 */
struct child {
	pid_t pid;
	int hold;		/* the child lives until this closes */
	char owner[300];
};

static void child_start(struct child *c)
{
	int name[2], hold[2];
	ssize_t n;
	char byte;

	assert_int_equal(pipe(name), 0);
	assert_int_equal(pipe(hold), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		close(name[0]);
		close(hold[1]);
		store_lease_owner_self(c->owner, sizeof(c->owner));
		if (write(name[1], c->owner, strlen(c->owner) + 1) < 0)
			_exit(1);
		close(name[1]);
		while (read(hold[0], &byte, 1) > 0)
			;
		_exit(0);
	}
	close(name[1]);
	close(hold[0]);
	n = read(name[0], c->owner, sizeof(c->owner));
	assert_true(n > 0 && c->owner[n - 1] == '\0');
	close(name[0]);
	c->hold = hold[1];
}

/* child_end - the child exits and is reaped: its PID is free */
static void child_end(struct child *c)
{
	int status;

	close(c->hold);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The name says who, where, in which PID namespace and since when. */
static void test_lease_owner_self(void **state)
{
	char self[300], again[300], word[300], want[64], run2[64];
	struct stat ns;
	FILE *f;

	(void)state;
	store_lease_owner_self(self, sizeof(self));
	assert_true(strlen(self) < 300);
	/* older volleys split "HOST:PID" at the last ':' */
	assert_null(strchr(self, ':'));

	owner_field(self, "host", word, sizeof(word));
	assert_true(strlen(word) <= 64);
	owner_field(self, "pid", word, sizeof(word));
	assert_int_equal(strtol(word, NULL, 10), getpid());
	owner_field(self, "run", word, sizeof(word));
	assert_int_equal(strlen(word), 16);
	assert_int_equal(strspn(word, "0123456789abcdef"), 16);

	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	assert_non_null(f);
	assert_non_null(fgets(want, sizeof(want), f));
	fclose(f);
	want[strcspn(want, "\n")] = '\0';
	owner_field(self, "boot", word, sizeof(word));
	assert_string_equal(word, want);

	assert_int_equal(stat("/proc/self/ns/pid", &ns), 0);
	snprintf(want, sizeof(want), "%llu", (unsigned long long)ns.st_ino);
	owner_field(self, "pidns", word, sizeof(word));
	assert_string_equal(word, want);

	proc_start(getpid(), want, sizeof(want));
	owner_field(self, "start", word, sizeof(word));
	assert_string_equal(word, want);

	/* every call names a new run; only the run id differs */
	store_lease_owner_self(again, sizeof(again));
	owner_field(self, "run", word, sizeof(word));
	owner_field(again, "run", run2, sizeof(run2));
	assert_string_not_equal(word, run2);
	owner_field(self, "run", run2, sizeof(run2));
	owner_with(word, sizeof(word), again, "run", run2);
	assert_string_equal(word, self);

	/* This run cannot be an earlier owner still at work... */
	assert_false(store_lease_owner_alive(self, self));
	/* ...but an earlier run of this process may be (its workers, left
	 * behind at a stop, run on until it exits). */
	assert_true(store_lease_owner_alive(again, self));
}

/*
 * Dead only when the PID means the same here (same boot, same PID
 * namespace) and its process is gone or is another one.
 */
static void test_lease_owner_alive(void **state)
{
	char self[300], owner[300], start[32];
	struct child live, dead;

	(void)state;
	store_lease_owner_self(self, sizeof(self));
	child_start(&live);
	child_start(&dead);
	child_end(&dead);

	assert_true(store_lease_owner_alive(live.owner, self));
	assert_false(store_lease_owner_alive(dead.owner, self));

	/* the PID is in use, by a process that started at another time */
	owner_field(live.owner, "start", start, sizeof(start));
	snprintf(start, sizeof(start), "%lld",
		 strtoll(start, NULL, 10) + 1);
	owner_with(owner, sizeof(owner), live.owner, "start", start);
	assert_false(store_lease_owner_alive(owner, self));
	/* start unknown: a PID in use may be the owner */
	owner_with(owner, sizeof(owner), live.owner, "start", "-");
	assert_true(store_lease_owner_alive(owner, self));
	/* ...and a PID nobody has is not */
	owner_with(owner, sizeof(owner), dead.owner, "start", "-");
	assert_false(store_lease_owner_alive(owner, self));

	/* Another boot, another PID namespace, or not known: the PID
	 * means nothing here, only the lease's expiry can tell. */
	owner_with(owner, sizeof(owner), dead.owner, "boot",
		   "00000000-1111-2222-3333-444444444444");
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "boot", "-");
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "pidns", "1");
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "pidns", "-");
	assert_true(store_lease_owner_alive(owner, self));

	/* the host name is for people: the boot id says which kernel */
	owner_with(owner, sizeof(owner), dead.owner, "host",
		   "elsewhere.example");
	assert_false(store_lease_owner_alive(owner, self));

	/* whoever asks, the same answers */
	assert_true(store_lease_owner_alive(self, live.owner));
	child_end(&live);
	assert_false(store_lease_owner_alive(live.owner, self));
}

/* "HOST:PID" from older volleys: this host's are checked by PID. */
static void test_lease_owner_legacy(void **state)
{
	char self[300], host[300], owner[400];
	struct child live, dead;

	(void)state;
	store_lease_owner_self(self, sizeof(self));
	owner_field(self, "host", host, sizeof(host));
	child_start(&live);
	child_start(&dead);
	child_end(&dead);

	snprintf(owner, sizeof(owner), "%s:%ld", host, (long)dead.pid);
	assert_false(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), "%s:%ld", host, (long)live.pid);
	assert_true(store_lease_owner_alive(owner, self));
	/* another host: only the lease's expiry can tell */
	snprintf(owner, sizeof(owner), "elsewhere.example:%ld",
		 (long)dead.pid);
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), "%s.example:%ld", host,
		 (long)dead.pid);
	assert_true(store_lease_owner_alive(owner, self));
	/* no PID to check */
	snprintf(owner, sizeof(owner), "%s:0", host);
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), "%s:-%ld", host, (long)dead.pid);
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), "%s:%ldx", host, (long)dead.pid);
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), "%s:", host);
	assert_true(store_lease_owner_alive(owner, self));
	child_end(&live);
}

/* What does not read as an owner is alive: nothing to check it by. */
static void test_lease_owner_garbage(void **state)
{
	char self[300], owner[400], pid[32];
	struct child dead;
	const char *bad[] = {
		"", "-", "garbage", ":", "pid 1", "host pid", "a b c d e f",
	};

	(void)state;
	store_lease_owner_self(self, sizeof(self));
	child_start(&dead);
	child_end(&dead);
	assert_false(store_lease_owner_alive(dead.owner, self));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(store_lease_owner_alive(bad[i], self));
	/* the dead child's name, spoilt: never taken for dead */
	snprintf(owner, sizeof(owner), "%s ", dead.owner);
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), "%s x", dead.owner);
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), " %s", dead.owner);
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(owner, sizeof(owner), "%.*s", (int)(strstr(dead.owner,
		 " start ") - dead.owner), dead.owner);
	assert_true(store_lease_owner_alive(owner, self));
	owner_field(dead.owner, "pid", pid, sizeof(pid));
	owner_with(owner, sizeof(owner), dead.owner, "pid", "0");
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "pid", "-");
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "pid", "99999999999");
	assert_true(store_lease_owner_alive(owner, self));
	snprintf(pid + strlen(pid), sizeof(pid) - strlen(pid), "x");
	owner_with(owner, sizeof(owner), dead.owner, "pid", pid);
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "run", "XYZ");
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "start", "12a");
	assert_true(store_lease_owner_alive(owner, self));
	owner_with(owner, sizeof(owner), dead.owner, "pidns", "");
	assert_true(store_lease_owner_alive(owner, self));
	/* a self that does not read as an owner can check nobody */
	assert_true(store_lease_owner_alive(dead.owner, "garbage"));
}

/* A starting run takes back the leases of the dead, not of the living. */
static bool alive_by_name(void *ctx, const char *owner)
{
	return store_lease_owner_alive(owner, ctx);
}

static void test_reclaim_by_owner_name(void **state)
{
	struct fixture *f = *state;
	struct store_batch b = { 0 };
	char self[300], reused[300];
	struct child live, dead;
	const char *error;
	int64_t n;

	import_n(f, 3);
	store_lease_owner_self(self, sizeof(self));
	child_start(&live);
	child_start(&dead);
	child_end(&dead);
	owner_with(reused, sizeof(reused), live.owner, "start", "1");

	assert_int_equal(store_claim(f->st, f->campaign, live.owner, T0,
				     3600000, 1, &b, &error), 0);
	assert_int_equal(store_claim(f->st, f->campaign, dead.owner, T0,
				     3600000, 1, &b, &error), 0);
	assert_int_equal(store_claim(f->st, f->campaign, reused, T0,
				     3600000, 1, &b, &error), 0);
	assert_int_equal(store_reclaim(f->st, T0 + 1, false, alive_by_name,
				       self, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_counts(f, 0, 1, 0, 2, 0);
	child_end(&live);
	store_batch_free(&b);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("SQL failed: %s: %s", sql, msg);
}

/*
 * A store left by the first schema version, with jobs in several states,
 * must open with the counts the newer schema keeps.
 */
static void test_migration_from_version_1(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	const char *error;
	char path[128];
	sqlite3 *db;
	int64_t id;
	struct store_counts c;

	snprintf(path, sizeof(path), "%s/old.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "PRAGMA application_id = 1987013753");
	exec_sql(db, store_migrations[0]);
	exec_sql(db, "PRAGMA user_version = 1");
	exec_sql(db, "INSERT INTO campaigns (id, name, created_at)"
		 " VALUES (7, 'old', 1)");
	exec_sql(db, "INSERT INTO imports (id, campaign_id, var_names,"
		 " started_at) VALUES (1, 7, x'01', 1)");
	exec_sql(db, "INSERT INTO jobs (campaign_id, import_id, address,"
		 " state, next_attempt_at, created_at) VALUES"
		 " (7, 1, 'a@x.org', 0, 1, 1), (7, 1, 'b@x.org', 0, 1, 1),"
		 " (7, 1, 'c@x.org', 2, 1, 1), (7, 1, 'd@x.org', 4, 1, 1),"
		 " (7, 1, 'e@x.org', 3, 1, 1)");
	sqlite3_close(db);

	assert_int_equal(store_open(path, NULL, &st, &error), 0);
	assert_int_equal(store_campaign_find(st, "old", &id, &error), 1);
	assert_int_equal(store_counts(st, id, &c, &error), 0);
	assert_int_equal(c.by_state[JOB_QUEUED], 2);
	assert_int_equal(c.by_state[JOB_SENT], 1);
	assert_int_equal(c.by_state[JOB_FAILED], 1);
	assert_int_equal(c.by_state[JOB_DEFERRED], 1);
	assert_int_equal(c.total, 5);

	/* Addresses from before address_keys still count as duplicates. */
	{
		struct store_import *imp;
		struct store_import_stats stats;
		const char *names[] = { "a" };
		const char vars[] = { VARS_FORMAT_FLAT, 0 };

		assert_int_equal(store_import_begin(st, id, "t", "email",
						    names, 1, &imp, &error),
				 0);
		assert_int_equal(store_import_add(imp, "C@X.org", 7, 0, vars,
						  sizeof(vars), &error), 0);
		assert_int_equal(store_import_commit(&imp, 0, &stats, &error),
				 0);
		assert_int_equal(stats.duplicates, 1);
	}

	/* The counts keep up after the migration too. */
	{
		struct store_batch b = { 0 };

		assert_int_equal(store_claim(st, id, "me:1", T0, 1000, 10, &b,
					     &error), 0);
		assert_int_equal(b.count, 3);
		assert_int_equal(store_counts(st, id, &c, &error), 0);
		assert_int_equal(c.by_state[JOB_SENDING], 3);
		assert_int_equal(c.by_state[JOB_QUEUED], 0);
		store_batch_free(&b);
	}
	store_close(&st);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *stmt;

		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version",
						    -1, &stmt, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(stmt, 0),
				 store_schema_version());
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	const char *error;
	char sql[64];
	sqlite3 *db;

	store_close(&f->st);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 store_schema_version() + 1);
	exec_sql(db, sql);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, NULL, &st, &error), -1);
	assert_non_null(strstr(error, "newer"));
}

/* A SQLite file of another program is refused, and left as it was. */
static void test_foreign_sqlite_file_refused(void **state)
{
	struct fixture *f = *state;
	struct store *st;
	const char *error;
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *stmt;

	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "CREATE TABLE t (x); PRAGMA user_version = 2");
	sqlite3_close(db);
	assert_int_equal(store_open(path, NULL, &st, &error), -1);
	assert_non_null(strstr(error, "not a volley store"));

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT user_version"
		" FROM pragma_user_version), (SELECT journal_mode FROM"
		" pragma_journal_mode), (SELECT count(*) FROM sqlite_schema)",
		-1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 2);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 1),
			    "delete");
	assert_int_equal(sqlite3_column_int(stmt, 2), 1);
	sqlite3_finalize(stmt);
	sqlite3_close(db);

	/* Another program's application_id is refused even with no tables. */
	snprintf(path, sizeof(path), "%s/app.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec_sql(db, "PRAGMA application_id = 42");
	sqlite3_close(db);
	assert_int_equal(store_open(path, NULL, &st, &error), -1);
	assert_non_null(strstr(error, "another program"));
}

/*
 * While one handle imports (holding the write lock), another can still
 * read counts (WAL), and a writer gives up after its busy timeout with a
 * clear error instead of hanging.
 */
static void test_concurrent_handles(void **state)
{
	struct fixture *f = *state;
	struct store_params p = { .busy_timeout_ms = 100 };
	struct store *other;
	struct store_import *imp;
	struct store_batch b = { 0 };
	struct store_counts c;
	const char *error;
	const char *names[] = { "a" };
	const char vars[] = { VARS_FORMAT_FLAT, 0 };

	import_n(f, 2);
	assert_int_equal(store_open(f->path, &p, &other, &error), 0);
	assert_int_equal(store_import_begin(f->st, f->campaign, "t", "email",
					    names, 1,
					    &imp, &error), 0);
	assert_int_equal(store_import_add(imp, "z@example.org", 13, 0, vars,
					  sizeof(vars), &error), 1);
	assert_int_equal(store_counts(other, f->campaign, &c, &error), 0);
	assert_int_equal(c.total, 2);	/* the import is not visible yet */
	assert_int_equal(store_claim(other, f->campaign, "o:1", T0, 1000, 5,
				     &b, &error), -1);
	assert_non_null(strstr(error, "locked"));
	assert_int_equal(store_import_commit(&imp, 0, NULL, &error), 0);
	assert_int_equal(store_claim(other, f->campaign, "o:1", T0, 1000, 5,
				     &b, &error), 0);
	assert_int_equal(b.count, 3);
	store_batch_free(&b);
	store_close(&other);
}

/* query_plan - EXPLAIN QUERY PLAN of sql on the fixture's store */
static char *query_plan(struct fixture *f, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *stmt;
	struct buf plan = BUF_INIT;
	char *ret;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
			 SQLITE_OK);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		buf_append_str(&plan, (const char *)sqlite3_column_text(stmt, 3));
		buf_putc(&plan, '\n');
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	ret = strdup(buf_cstr(&plan));
	buf_free(&plan);
	return ret;
}

/*
 * A claim reads only the rows it takes, so that its cost does not grow
 * with the table: queued jobs past a claimed id through jobs_fresh (in
 * id order, no sort), due deferred ones through jobs_retry (oldest
 * first, no sort); a reclaim of a claim's range reads jobs_fresh.
 */
static void test_claim_uses_due_index(void **state)
{
	struct fixture *f = *state;
	char *plan;

	plan = query_plan(f, "EXPLAIN QUERY PLAN SELECT id FROM jobs"
			  " WHERE campaign_id = 1 AND state = 0"
			  " AND id > 5 AND id <= 100 ORDER BY id LIMIT 10");
	assert_non_null(strstr(plan, "jobs_fresh"));
	assert_null(strstr(plan, "TEMP B-TREE"));
	free(plan);
	plan = query_plan(f, "EXPLAIN QUERY PLAN SELECT id FROM jobs"
			  " WHERE campaign_id = 1 AND state = 3"
			  " AND next_attempt_at <= 5"
			  " ORDER BY next_attempt_at LIMIT 10");
	assert_non_null(strstr(plan, "jobs_retry"));
	assert_null(strstr(plan, "TEMP B-TREE"));
	free(plan);
	plan = query_plan(f, "EXPLAIN QUERY PLAN UPDATE jobs SET state = 3"
			  " WHERE campaign_id = 1 AND state = 0"
			  " AND id BETWEEN 5 AND 100");
	assert_non_null(strstr(plan, "jobs_fresh"));
	free(plan);
	plan = query_plan(f, "EXPLAIN QUERY PLAN SELECT max(last_job)"
			  " FROM claims WHERE campaign_id = 1");
	assert_non_null(strstr(plan, "claims_campaign"));
	free(plan);
}

static void test_job_state_names(void **state)
{
	enum job_state s;

	(void)state;
	for (int i = 0; i < JOB_STATE_COUNT; i++) {
		assert_true(job_state_parse(job_state_name((enum job_state)i),
					    &s));
		assert_int_equal(s, i);
	}
	assert_false(job_state_parse("bogus", &s));
	assert_string_equal(job_state_name(JOB_DEFERRED), "deferred");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define S(fn) { #fn ", small set", fn, setup_small_set, \
		teardown_small_set, NULL }
#define N(fn) { #fn ", small set, no filter", fn, \
		setup_small_set_no_filter, teardown_small_set, NULL }
		T(test_open_is_idempotent),
		T(test_open_missing_without_create),
		T(test_open_sets_wal_and_version),
		T(test_campaign_names_are_unique),
		T(test_import_and_duplicates),
		T(test_import_abort_keeps_nothing),
		T(test_large_import_rebuilds_indexes),
		T(test_large_import_abort_keeps_indexes),
		T(test_key_collision_is_not_a_duplicate),
		T(test_duplicates_long_after_their_first),
		S(test_import_and_duplicates),
		S(test_large_import_rebuilds_indexes),
		S(test_key_collision_is_not_a_duplicate),
		S(test_duplicates_long_after_their_first),
		S(test_migration_from_version_1),
		N(test_import_and_duplicates),
		N(test_key_collision_is_not_a_duplicate),
		N(test_duplicates_long_after_their_first),
		T(test_addrset),
		T(test_addrset_runs),
		T(test_addrset_runs_filter_always_maybe),
		cmocka_unit_test(test_addrset_run_fails),
		T(test_claim_oldest_first_and_vars),
		T(test_record_results),
		T(test_record_from_non_owner_is_stale_except_sent),
		T(test_give_back_undoes_attempt),
		T(test_lease_expiry),
		T(test_reclaim_owner_gone),
		T(test_reclaim_hold_in_doubt),
		T(test_second_doubt_is_held),
		T(test_release_keeps_what_may_have_left),
		T(test_busy_is_transient),
		T(test_drop_in_doubt),
		cmocka_unit_test(test_lease_owner_self),
		cmocka_unit_test(test_lease_owner_alive),
		cmocka_unit_test(test_lease_owner_legacy),
		cmocka_unit_test(test_lease_owner_garbage),
		T(test_reclaim_by_owner_name),
		T(test_migration_from_version_1),
		T(test_newer_schema_refused),
		T(test_foreign_sqlite_file_refused),
		T(test_concurrent_handles),
		T(test_claim_uses_due_index),
		cmocka_unit_test(test_job_state_names),
#undef T
#undef S
#undef N
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
