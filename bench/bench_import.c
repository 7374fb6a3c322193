/*
 * bench_import - rows per second of `volley import`, through the very
 * code the command runs (cli/import.c), into a real store file.
 *
 *   bench_import [--rows N] [--runs K] [--dir DIR]
 *
 * Writes a CSV of N recipients (default 1,000,000) with five variables,
 * addresses in scrambled order over 1,000 domains so the unique address
 * index is updated at random places as with a real list, then imports it
 * K times (default 3), each into a fresh store, and prints the median,
 * minimum and maximum rate.  The time counted is the whole import: read,
 * parse, check, pack, insert and the final durable commit.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/import.h"
#include "common/buf.h"
#include "store/store.h"

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
	rates = calloc((size_t)runs, sizeof(*rates));

	for (int run = 0; run < runs; run++) {
		struct store_params p = { .create = true };
		struct import_opts o = {
			.campaign = "bench", .path = csv,
			.address_column = "email", .diag = stderr,
		};
		struct import_summary sum;
		struct buf err = BUF_INIT;
		struct store *st;
		const char *error;
		int64_t id;

		snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", db,
			 db, db);
		if (system(cmd) != 0 ||
		    store_open(db, &p, &st, &error) < 0 ||
		    store_campaign_create(st, "bench", NULL, NULL, NULL, 0, &id,
					  &error) < 0) {
			fprintf(stderr, "bench_import: setup failed\n");
			return 1;
		}
		if (import_file(st, &o, &sum, &err) != IMPORT_OK ||
		    sum.added != rows) {
			fprintf(stderr, "bench_import: import failed: %s\n",
				buf_cstr(&err));
			return 1;
		}
		store_close(&st);
		rates[run] = (double)rows / sum.seconds;
		printf("run %d: %ld rows in %.3f s = %.0f rows/s\n", run + 1,
		       rows, sum.seconds, rates[run]);
		buf_free(&err);
	}
	qsort(rates, (size_t)runs, sizeof(*rates), cmp_double);
	printf("import: %ld rows x 5 variables: median %.0f rows/s "
	       "(min %.0f, max %.0f, %d runs)\n", rows, rates[runs / 2],
	       rates[0], rates[runs - 1], runs);
	if (dir == dir_tmpl) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	free(rates);
	return 0;
}
