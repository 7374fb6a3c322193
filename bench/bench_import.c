/*
 * bench_import - rows per second of `volley import`, through the very
 * code the command runs (store/import/import.c), into a real store file.
 *
 *   bench_import [--rows N] [--runs K] [--dir DIR]
 *
 * Writes a CSV of N recipients (default 1,000,000) with five variables,
 * addresses in scrambled order over 1,000 domains so the unique address
 * index is updated at random places as with a real list, then imports it
 * K times (default 3), each into a fresh store, and prints the median,
 * minimum and maximum rate.  The time counted is the whole import: read,
 * parse, check, pack, insert and the final durable commit.
 *
 * Then the same rows twice more, to show where the time goes:
 *   store only   already parsed and packed in memory, through the store's
 *                import API (duplicate detection, indexes, commit);
 *   SQLite only  the same rows inserted by SQLite alone into the same
 *                schema with the same settings (its 16 MB page cache
 *                included), jobs_fresh built after the rows as a large
 *                import does, no duplicate detection: the ceiling for
 *                this schema on this machine.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "import.h"
#include "store.h"
#include "vars.h"

#include <sqlite3.h>
#include <time.h>

static void bench_write_csv(const char *path, long rows)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs("email,first_name,last_name,city,plan,signup_date\n", f);
	for (long i = 0; i < rows; i++) {
		/* A multiplicative hash scrambles the order, one-to-one. */
		unsigned long h = ((unsigned long)i * 2654435761UL) & 0xffffffffUL;

		fprintf(f, "u%08lx.%ld@d%ld.example.com,First%ld,\"Last, %ld\","
			"City %ld,%s,2026-%02ld-%02ld\n", h, i, i % 1000, i, i,
			i % 5000, (i % 3) ? "free" : "pro", 1 + i % 12,
			1 + i % 28);
	}
	if (fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The rows of the CSV, already parsed and packed, for the other two. */
struct bench_rows {
	struct buf addrs, vars;
	size_t *addr_off, *vars_off;	/* row i: [off[i], off[i + 1]) */
	long n;
};

static void bench_make_rows(struct bench_rows *r, long rows)
{
	char field[64];

	r->n = rows;
	r->addr_off = calloc((size_t)rows + 1, sizeof(size_t));
	r->vars_off = calloc((size_t)rows + 1, sizeof(size_t));
	for (long i = 0; i < rows; i++) {
		unsigned long h = ((unsigned long)i * 2654435761UL) & 0xffffffffUL;
		struct buf one = BUF_INIT;

		buf_printf(&r->addrs, "u%08lx.%ld@d%ld.example.com", h, i,
			   i % 1000);
		r->addr_off[i + 1] = r->addrs.len;
		vars_pack_begin(&one);
		snprintf(field, sizeof(field), "First%ld", i);
		vars_pack_str(&one, field, strlen(field));
		snprintf(field, sizeof(field), "Last, %ld", i);
		vars_pack_str(&one, field, strlen(field));
		snprintf(field, sizeof(field), "City %ld", i % 5000);
		vars_pack_str(&one, field, strlen(field));
		vars_pack_str(&one, (i % 3) ? "free" : "pro", (i % 3) ? 4 : 3);
		snprintf(field, sizeof(field), "2026-%02ld-%02ld", 1 + i % 12,
			 1 + i % 28);
		vars_pack_str(&one, field, strlen(field));
		buf_append(&r->vars, one.data, one.len);
		r->vars_off[i + 1] = r->vars.len;
		buf_free(&one);
	}
}

/* bench_fresh_store - an empty store with one campaign, "bench" */
static struct store *bench_fresh_store(const char *db)
{
	struct store_params p = { .create = true };
	struct store *st;
	const char *error;
	char cmd[2048];
	int64_t id;

	snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", db, db,
		 db);
	if (system(cmd) != 0 || store_open(db, &p, &st, &error) < 0 ||
	    store_campaign_create(st, "bench", NULL, NULL, NULL, NULL, false,
				  NULL, 0, &id, &error) < 0) {
		fprintf(stderr, "bench_import: setup failed\n");
		exit(1);
	}
	return st;
}

/* bench_diag - a bad row (there should be none) */
static void bench_diag(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "bench_import: %s\n", line);
}

/* bench_csv - seconds for `volley import` of the CSV file */
static double bench_csv(const char *db, const char *csv, long rows)
{
	struct import_opts o = {
		.campaign = "bench", .path = csv,
		.address_column = "email", .diag = bench_diag,
	};
	struct store *st = bench_fresh_store(db);
	struct import_summary sum;
	const char *err = NULL;

	if (import_file(st, &o, &sum, &err) != IMPORT_OK ||
	    sum.added != rows) {
		fprintf(stderr, "bench_import: import failed: %s\n",
			err);
		exit(1);
	}
	store_close(&st);
	return sum.seconds;
}

/* bench_store - seconds for the rows through the store's import API */
static double bench_store(const char *db, const struct bench_rows *r)
{
	static const char *const names[] = { "first_name", "last_name",
		"city", "plan", "signup_date" };
	struct store *st = bench_fresh_store(db);
	struct store_import *imp;
	const char *error;
	double start = clock_mono_s();

	if (store_import_begin(st, 1, "bench", "email", names, 5, &imp,
			       &error) < 0)
		goto fail;
	for (long i = 0; i < r->n; i++) {
		if (store_import_add(imp, r->addrs.data + r->addr_off[i],
				     r->addr_off[i + 1] - r->addr_off[i], 0,
				     r->vars.data + r->vars_off[i],
				     r->vars_off[i + 1] - r->vars_off[i],
				     &error) != 1)
			goto fail;
	}
	if (store_import_commit(&imp, 0, NULL, &error) < 0)
		goto fail;
	start = clock_mono_s() - start;
	store_close(&st);
	return start;
fail:
	fprintf(stderr, "bench_import: store import failed: %s\n", error);
	exit(1);
}

static void bench_sql(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_import: %s: %s\n", sql,
			sqlite3_errmsg(db));
		exit(1);
	}
}

/*
 * bench_sqlite - seconds for SQLite alone to insert the rows into a fresh
 * store's jobs table, with the store's settings (WAL, synchronous=FULL,
 * the import's cache size, STORE_IMPORT_CACHE in store_sqlite.c) and
 * jobs_fresh built after the rows.
 */
static double bench_sqlite(const char *path, const struct bench_rows *r)
{
	struct store *st = bench_fresh_store(path);
	sqlite3_stmt *ins;
	sqlite3 *db;
	double start;

	store_close(&st);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_import: %s: cannot open\n", path);
		exit(1);
	}
	bench_sql(db, "PRAGMA journal_mode = WAL");
	bench_sql(db, "PRAGMA synchronous = FULL");
	bench_sql(db, "PRAGMA cache_size = -16384");
	start = clock_mono_s();
	bench_sql(db, "BEGIN IMMEDIATE");
	bench_sql(db, "INSERT INTO imports (id, campaign_id, var_names,"
		  " started_at) VALUES (1, 1, x'01', 0)");
	bench_sql(db, "DROP INDEX jobs_fresh");
	if (sqlite3_prepare_v2(db, "INSERT INTO jobs (campaign_id, import_id,"
			       " address, addr_flags, vars, next_attempt_at,"
			       " created_at) VALUES (1, 1, ?1, 0, ?2, ?3, ?3)",
			       -1, &ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_import: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_bind_int64(ins, 3, 1764000000000LL);
	for (long i = 0; i < r->n; i++) {
		sqlite3_bind_text(ins, 1, r->addrs.data + r->addr_off[i],
				  (int)(r->addr_off[i + 1] - r->addr_off[i]),
				  SQLITE_STATIC);
		sqlite3_bind_blob(ins, 2, r->vars.data + r->vars_off[i],
				  (int)(r->vars_off[i + 1] - r->vars_off[i]),
				  SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			fprintf(stderr, "bench_import: %s\n",
				sqlite3_errmsg(db));
			exit(1);
		}
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	bench_sql(db, "CREATE INDEX jobs_fresh ON jobs(campaign_id)"
		  " WHERE state = 0");
	bench_sql(db, "COMMIT");
	start = clock_mono_s() - start;
	sqlite3_close(db);
	return start;
}

/* bench_report - print the median, min and max of K rates */
static void bench_report(const char *what, long rows, double *rates, int runs)
{
	qsort(rates, (size_t)runs, sizeof(*rates), cmp_double);
	printf("%s: %ld rows x 5 variables: median %.0f rows/s "
	       "(min %.0f, max %.0f, %d runs)\n", what, rows, rates[runs / 2],
	       rates[0], rates[runs - 1], runs);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rows", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	char dir_tmpl[] = "/tmp/volley-bench-import-XXXXXX";
	const char *dir = NULL;
	long rows = 1000000;
	int runs = 3, c;
	char csv[512], db[512], cmd[2048];
	struct bench_rows r = { BUF_INIT, BUF_INIT, NULL, NULL, 0 };
	double *rates;

	while ((c = getopt_long(argc, argv, "n:r:d:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			rows = atol(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_import [--rows N] "
				"[--runs K] [--dir DIR]\n");
			return 2;
		}
	}
	if (rows <= 0 || runs <= 0)
		return 2;
	if (dir == NULL && (dir = mkdtemp(dir_tmpl)) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(csv, sizeof(csv), "%s/recipients.csv", dir);
	snprintf(db, sizeof(db), "%s/bench.db", dir);
	bench_write_csv(csv, rows);
	bench_make_rows(&r, rows);
	rates = calloc((size_t)runs, sizeof(*rates));

	for (int run = 0; run < runs; run++) {
		rates[run] = (double)rows / bench_csv(db, csv, rows);
		printf("run %d: volley import: %.0f rows/s\n", run + 1,
		       rates[run]);
	}
	bench_report("import", rows, rates, runs);
	for (int run = 0; run < runs; run++)
		rates[run] = (double)rows / bench_store(db, &r);
	bench_report("store only", rows, rates, runs);
	for (int run = 0; run < runs; run++)
		rates[run] = (double)rows / bench_sqlite(db, &r);
	bench_report("SQLite only", rows, rates, runs);

	if (dir == dir_tmpl) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	buf_free(&r.addrs);
	buf_free(&r.vars);
	free(r.addr_off);
	free(r.vars_off);
	free(rates);
	return 0;
}
