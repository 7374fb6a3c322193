/*
 * bench_store - the job store's claim and record costs, and that a claim
 * costs O(batch) however many jobs the store holds or has finished.
 *
 *   bench_store [--jobs N] [--dir DIR]
 *
 * Fills a fresh store with N jobs (default 1,000,000) through the import
 * API, then for batch sizes 1, 100 and 1,000: claims batches and records
 * every job of each batch as sent (one transaction per claim, one per
 * record, as the sender does), and prints jobs per second.  Finally it
 * times claims of 1,000 at the start of the queue and again after most of
 * the jobs are sent: equal times mean the claim does not scan finished
 * jobs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "store.h"
#include "vars.h"

static void bench_die(const char *what, const char *error)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, error);
	exit(1);
}

/* bench_fill - n jobs with three short variables each */
static void bench_fill(struct store *st, int64_t campaign, long n)
{
	const char *names[] = { "first_name", "city", "plan" };
	struct store_import *imp;
	struct buf vars = BUF_INIT;
	const char *error;
	char addr[64];

	if (store_import_begin(st, campaign, "bench", "email", names, 3, &imp,
			       &error) < 0)
		bench_die("import", error);
	for (long i = 0; i < n; i++) {
		unsigned long h = ((unsigned long)i * 2654435761UL) &
				  0xffffffffUL;
		int len = snprintf(addr, sizeof(addr), "u%08lx.%ld@d%ld.example",
				   h, i, i % 1000);

		vars_pack_begin(&vars);
		vars_pack_str(&vars, "Ada", 3);
		vars_pack_str(&vars, "London", 6);
		vars_pack_str(&vars, "pro", 3);
		if (store_import_add(imp, addr, (size_t)len, 0, vars.data,
				     vars.len, &error) < 0)
			bench_die("import", error);
	}
	if (store_import_commit(&imp, 0, NULL, &error) < 0)
		bench_die("import", error);
	buf_free(&vars);
}

/*
 * bench_cycle - claim up to batch jobs and record them all as sent;
 * returns how many were claimed.
 */
static size_t bench_cycle(struct store *st, int64_t campaign, size_t batch,
			  struct store_batch *b, struct store_result *res,
			  double *claim_s)
{
	const char *error;
	int64_t now = clock_wall_ms();
	double t0 = clock_mono_s();

	if (store_claim(st, campaign, "bench:1", now, 60000, batch, b,
			&error) < 0)
		bench_die("claim", error);
	if (claim_s != NULL)
		*claim_s += clock_mono_s() - t0;
	for (size_t i = 0; i < b->count; i++) {
		res[i] = (struct store_result){
			.job_id = b->jobs[i].id, .state = JOB_SENT, .code = 250,
			.enhanced = "2.0.0", .reply = "OK queued as ABC",
			.queue_id = "ABC", .at = now,
			/* as volley send gives them, from the claim */
			.campaign_id = b->jobs[i].campaign_id,
			.claim_id = b->jobs[i].claim_id,
		};
	}
	if (b->count > 0 &&
	    store_record(st, "bench:1", res, b->count, NULL, &error) < 0)
		bench_die("record", error);
	return b->count;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "jobs", required_argument, NULL, 'n' },
		{ "dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	static const size_t batches[] = { 1, 100, 1000 };
	char dir_tmpl[] = "/tmp/volley-bench-store-XXXXXX";
	const char *dir = NULL, *error;
	struct store_params p = { .create = true };
	struct store_batch b = { 0 };
	struct store_result *res = calloc(1000, sizeof(*res));
	struct store *st;
	long jobs = 1000000;
	int64_t campaign;
	char path[512], cmd[600];
	double t0, early = 0, late = 0;
	int c;

	store_process_init();
	while ((c = getopt_long(argc, argv, "n:d:", opts, NULL)) != -1) {
		if (c == 'n')
			jobs = atol(optarg);
		else if (c == 'd')
			dir = optarg;
		else
			return 2;
	}
	/* 10,000 warm-up claims, 2,000 + 50,000 + 50,000 timed, then a
	 * tail of 20,000 for the late claims: fewer would run dry. */
	if (jobs < 150000) {
		fprintf(stderr, "bench_store: --jobs must be at least 150000\n");
		return 2;
	}
	if (dir == NULL && (dir = mkdtemp(dir_tmpl)) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/bench.db", dir);
	if (store_open(path, &p, &st, &error) < 0)
		bench_die("open", error);
	if (store_campaign_create(st, "bench", NULL, NULL, NULL, NULL, false,
				  NULL, 0, &campaign, &error) < 0)
		bench_die("campaign", error);
	t0 = clock_mono_s();
	bench_fill(st, campaign, jobs);
	printf("filled %ld jobs in %.2f s\n", jobs, clock_mono_s() - t0);

	/* Claims of 1,000 at the head of a full queue. */
	for (int i = 0; i < 10; i++)
		bench_cycle(st, campaign, 1000, &b, res, &early);

	for (size_t k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
		size_t done = 0, want = batches[k] == 1 ? 2000 : 50000;

		t0 = clock_mono_s();
		while (done < want) {
			size_t n = bench_cycle(st, campaign, batches[k], &b,
					       res, NULL);

			if (n == 0)
				bench_die("claim", "no queued jobs left");
			done += n;
		}
		printf("batch %4zu: %8.0f jobs/s claimed and recorded "
		       "(%zu jobs, %.3f ms per claim+record)\n", batches[k],
		       (double)done / (clock_mono_s() - t0), done,
		       (clock_mono_s() - t0) * 1000 / ((double)done /
						    (double)batches[k]));
	}

	/* Send most of the rest, then time claims near the tail. */
	while (bench_cycle(st, campaign, 1000, &b, res, NULL) == 1000) {
		struct store_counts counts;

		if (store_counts(st, campaign, &counts, &error) < 0)
			bench_die("counts", error);
		if (counts.by_state[JOB_QUEUED] <= 20000)
			break;
	}
	for (int i = 0; i < 10; i++)
		bench_cycle(st, campaign, 1000, &b, res, &late);
	printf("claim of 1,000 with %ld jobs queued: %.3f ms; with ~%ld "
	       "already sent: %.3f ms\n", jobs, early * 100, jobs - 20000,
	       late * 100);

	/*
	 * The same claims once 10,000 addresses were suppressed after the
	 * import (unsubscribes during a send): each claim checks each job
	 * in the filter of those, and a hit against the table.
	 */
	{
		struct store_suppression *sup = calloc(10000, sizeof(*sup));
		char (*addrs)[48] = calloc(10000, sizeof(*addrs));
		double filtered = 0;

		for (int i = 0; i < 10000; i++) {
			snprintf(addrs[i], sizeof(addrs[i]),
				 "gone%d@d%d.example", i, i % 1000);
			sup[i].address = addrs[i];
			sup[i].reason = SUPPRESS_UNSUBSCRIBED;
			sup[i].scope = STORE_SCOPE_GLOBAL;
		}
		if (store_suppress_add(st, sup, 10000, NULL, &error) < 0)
			bench_die("suppress", error);
		for (int i = 0; i < 10; i++)
			bench_cycle(st, campaign, 1000, &b, res, &filtered);
		printf("claim of 1,000 with 10,000 addresses suppressed since "
		       "the import: %.3f ms\n", filtered * 100);
		free(sup);
		free(addrs);
	}

	store_batch_free(&b);
	store_close(&st);
	free(res);
	if (dir == dir_tmpl) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}
