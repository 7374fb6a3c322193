/*
 * test_report_data - puts a campaign's jobs into every state, with hostile
 * reply texts, for tests/integration/report.sh.  Not a unit test: a helper
 * program that uses only the public store API, as a sender would.
 *
 *   test_report_data STORE CAMPAIGN
 *
 * The campaign must hold r0@example.org ... r9@example.org, all queued.
 * Two rounds of claims, at fixed times T1 and T2 (in 2100, so every
 * imported job is due), record the results in the script below.  Then it
 * prints what `volley report` must show, one line per address in the
 * order of the script, tab-separated:
 *
 *   address state attempts code enhanced reply queue_id first last next
 *
 * Text values are hex-encoded bytes ("-" for none), times are ms since
 * the epoch ("-" for none), code is "-" for none.  Exit 0, or 1 after a
 * message on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

#define T1 INT64_C(4102444801123)	/* 2100-01-01T00:00:01.123Z */
#define T2 INT64_C(4102448400007)	/* 2100-01-01T01:00:00.007Z */
#define OWNER "report-fixture:1"

struct step {
	int round;		/* 1 or 2 */
	const char *addr;
	enum job_state state;	/* QUEUED gives the job back */
	int code;
	const char *enhanced;
	const char *reply;
	const char *queue_id;
	int64_t next;		/* for DEFERRED */
};

/* r6 is claimed in round 1 and never recorded: it stays "sending". */
static const struct step script[] = {
	{ 1, "r0@example.org", JOB_SENT, 250, "2.0.0",
	  "2.0.0 Ok: queued as 4XyZ1", "4XyZ1", 0 },
	{ 1, "r1@example.org", JOB_SENT, 250, "2.6.0",
	  "Ok, \"queued\", as A,B", "A,B\"C", 0 },
	{ 1, "r2@example.org", JOB_DEFERRED, 451, "4.7.1",
	  "Greylisted,\r\nplease \"retry\" later\r\n", NULL, T1 + 300000 },
	{ 1, "r3@example.org", JOB_FAILED, 550, "5.1.1",
	  "5.1.1 <r3@example.org>: Recipient address rejected:\n"
	  "User unknown in local recipient table", NULL, 0 },
	{ 1, "r4@example.org", JOB_FAILED, 554, "5.7.1",
	  "rejected \x1b[31mred\x1b[0m\x01\x7f\ttab, bell\a\\back\rCR",
	  NULL, 0 },
	/* Invalid UTF-8: stray bytes, a bad continuation, a character cut
	   short; then good two-, three- and four-byte characters and
	   U+2028. */
	{ 1, "r5@example.org", JOB_DEFERRED, 421, "4.3.0",
	  "bad \xff\xfe, \xc3\x28, cut \xe6\x97 end; ok caf\xc3\xa9 "
	  "\xe6\x97\xa5 \xf0\x9f\x93\xa7 \xe2\x80\xa8sep \xed\xa0\x80 "
	  "\xf4\x90\x80\x80", NULL, T1 + 86400000 },
	{ 1, "r7@example.org", JOB_QUEUED, 0, NULL, NULL, NULL, 0 },
	{ 1, "r8@example.org", JOB_QUEUED, 0, NULL, NULL, NULL, 0 },
	{ 1, "r9@example.org", JOB_DEFERRED, 452, "4.2.2", "\"", NULL,
	  T1 + 60000 },
	{ 2, "r2@example.org", JOB_SENT, 250, "2.0.0",
	  "2.0.0 Ok: queued as 77,\"x\"", "77,\"x\"", 0 },
	{ 2, "r7@example.org", JOB_QUEUED, 0, NULL, NULL, NULL, 0 },
	{ 2, "r8@example.org", JOB_FAILED, 0, NULL,
	  "connection refused: 192.0.2.1:25", NULL, 0 },
	{ 2, "r9@example.org", JOB_DEFERRED, 452, "4.2.2", "", NULL,
	  T2 + 600000 },
};
#define NSTEPS (sizeof(script) / sizeof(script[0]))

#define NADDR 10

/* What the report must show for one address, kept as the store would. */
struct expect {
	char addr[32];
	enum job_state state;
	int attempts;
	int code;
	const char *enhanced, *reply, *queue_id;
	int64_t first, last, next;
};

static struct expect expect[NADDR];

static struct expect *expect_for(const char *addr)
{
	for (int i = 0; i < NADDR; i++) {
		if (strcmp(expect[i].addr, addr) == 0)
			return &expect[i];
	}
	return NULL;
}

static void print_hex(const char *s)
{
	if (s == NULL) {
		fputs("\t-", stdout);
		return;
	}
	putchar('\t');
	for (const unsigned char *u = (const unsigned char *)s; *u; u++)
		printf("%02x", *u);
}

static void print_ms(int64_t ms, int present)
{
	if (present)
		printf("\t%lld", (long long)ms);
	else
		fputs("\t-", stdout);
}

static int run_round(struct store *st, int64_t campaign_id, int round,
		     int64_t now, struct store_batch *batch)
{
	struct store_result results[NSTEPS];
	size_t n = 0, stale = 0;
	const char *error;

	if (store_claim(st, campaign_id, OWNER, now, 3600000, 100, batch,
			&error) < 0) {
		fprintf(stderr, "claim: %s\n", error);
		return -1;
	}
	for (size_t i = 0; i < batch->count; i++) {
		const struct store_job *job = &batch->jobs[i];
		struct expect *e = expect_for(job->address);

		if (e == NULL) {
			fprintf(stderr, "unexpected job %s\n", job->address);
			return -1;
		}
		e->attempts++;
		if (e->first == 0)
			e->first = now;
		e->last = now;
		e->state = JOB_SENDING;
		for (size_t k = 0; k < NSTEPS; k++) {
			const struct step *s = &script[k];

			if (s->round != round ||
			    strcmp(s->addr, job->address) != 0)
				continue;
			results[n] = (struct store_result){
				.job_id = job->id, .state = s->state,
				.code = s->code, .enhanced = s->enhanced,
				.reply = s->reply, .queue_id = s->queue_id,
				.at = now + 500, .next_attempt_at = s->next,
			};
			n++;
			if (s->state == JOB_QUEUED) {
				e->attempts--;
				e->state = e->attempts > 0 ? JOB_DEFERRED :
					JOB_QUEUED;
				if (e->attempts == 0)
					e->first = e->last = 0;
				continue;
			}
			e->state = s->state;
			e->code = s->code;
			e->enhanced = s->enhanced;
			e->reply = s->reply;
			if (s->queue_id != NULL)
				e->queue_id = s->queue_id;
			e->next = s->next;
		}
	}
	if (store_record(st, OWNER, results, n, &stale, &error) < 0) {
		fprintf(stderr, "record: %s\n", error);
		return -1;
	}
	if (stale != 0) {
		fprintf(stderr, "%zu stale results\n", stale);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct store_params params = { 0 };
	struct store_batch batch = { 0 };
	struct store *st;
	const char *error;
	int64_t campaign_id;
	int ret = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: test_report_data STORE CAMPAIGN\n");
		return 2;
	}
	for (int i = 0; i < NADDR; i++) {
		snprintf(expect[i].addr, sizeof(expect[i].addr),
			 "r%d@example.org", i);
		expect[i].state = JOB_QUEUED;
	}
	if (store_open(argv[1], &params, &st, &error) < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], error);
		return 1;
	}
	if (store_campaign_find(st, argv[2], &campaign_id, &error) != 1) {
		fprintf(stderr, "no campaign %s\n", argv[2]);
		goto out_close;
	}
	if (run_round(st, campaign_id, 1, T1, &batch) < 0 ||
	    run_round(st, campaign_id, 2, T2, &batch) < 0)
		goto out_free;

	for (int i = 0; i < NADDR; i++) {
		const struct expect *e = &expect[i];

		printf("%s\t%s\t%d", e->addr, job_state_name(e->state),
		       e->attempts);
		if (e->code > 0)
			printf("\t%d", e->code);
		else
			fputs("\t-", stdout);
		print_hex(e->enhanced);
		print_hex(e->reply);
		print_hex(e->queue_id);
		print_ms(e->first, e->first != 0);
		print_ms(e->last, e->last != 0);
		print_ms(e->next, e->state == JOB_DEFERRED);
		putchar('\n');
	}
	ret = 0;
out_free:
	store_batch_free(&batch);
out_close:
	store_close(&st);
	return ret;
}
