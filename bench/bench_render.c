/*
 * bench_render - complete messages rendered per second, on one core, the
 * way a send renders them: a template loaded once, then for each
 * recipient the variables looked up in the stored packed form and the
 * whole RFC 5322 message (headers, MIME parts, encodings, attachments)
 * written into buffers reused from message to message.
 *
 *   bench_render [-s SECONDS] [-d DIR] [-c CASE -n COUNT]
 *
 * -s: seconds per case and round (default 2); -d: a folder written by
 * bench/newsletter.py, for the newsletter-100k case (skipped without
 * it); -c with -n: render COUNT messages of that case only, untimed,
 * for instruction counts (valgrind --tool=callgrind with COUNT and
 * 2 COUNT: the difference over COUNT is one message's instructions).
 *
 * Cases:
 *   text-4k       text only, about 4 KB, 6 variables, ASCII values: the
 *                 body goes 7bit
 *   text-4k-utf8  the same with a non-ASCII city ("Zürich"): the body
 *                 goes quoted-printable
 *   newsletter    about 6 KB of HTML plus its text version, 6 variables
 *                 (half the recipients in Zürich), a UTF-8 subject,
 *                 List-Unsubscribe, an inline logo and a 100 KB PDF
 *                 attachment (encoded once, at load)
 *   newsletter-100k
 *                 bench/newsletter.py's 100 KB newsletter (issue 17):
 *                 60 KB of HTML and 26 KB of text, both
 *                 quoted-printable, 405 substitutions, an inline PNG
 * Five rounds run the three cases in turn; each line gives messages per
 * CPU-second of this single-threaded process (and per wall second), MB/s
 * of message produced, and how often the output buffer moved (it grows
 * by doubling to the largest message so far, a few times a round; a move
 * per message would mean an allocation per message).  The
 * summary gives the median, minimum and maximum of the rounds.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "message.h"
#include "vars.h"
#include "vars_data.h"

#define BENCH_ROUNDS 5

struct bench_file {
	const char *name;
	struct buf data;
};

struct bench_files {
	struct bench_file f[8];
	size_t n;
};

static int bench_lookup(void *ctx, const char *name, const void **data,
			size_t *len)
{
	struct bench_files *bf = ctx;

	for (size_t i = 0; i < bf->n; i++) {
		if (strcmp(bf->f[i].name, name) == 0) {
			*data = bf->f[i].data.data;
			*len = bf->f[i].data.len;
			return 1;
		}
	}
	return 0;
}

static struct buf *bench_add(struct bench_files *bf, const char *name)
{
	struct bench_file *f = &bf->f[bf->n++];

	f->name = name;
	memset(&f->data, 0, sizeof(f->data));
	return &f->data;
}

/* bench_text_4k - a 4 KB plain text letter using six variables */
static void bench_text_4k(struct bench_files *bf)
{
	struct buf *b;

	buf_append_str(bench_add(bf, "message.cfg"),
		       "subject = \"Your {{plan}} account, {{first_name}}\";\n"
		       "from = \"Accounts <accounts@example.com>\";\n");
	b = bench_add(bf, "body.txt");
	buf_append_str(b, "Dear {{first_name}} {{last_name}},\n\n");
	while (b->len < 3900)
		buf_append_str(b, "Thank you for being with us in {{city}} "
			       "since {{signup_date}}. Your plan stays the "
			       "same, and nothing else changes for you.\n");
	buf_append_str(b, "\nYour account: {{email}}\n");
}

/* bench_newsletter - 6 KB of HTML, text, logo and a 100 KB PDF */
static void bench_newsletter(struct bench_files *bf)
{
	struct buf *b;

	buf_append_str(bench_add(bf, "message.cfg"),
		       "subject = \"Frühlingsgrüße, {{first_name}}: new in "
		       "{{city}} 🌷\";\n"
		       "from = \"Volley News <news@example.org>\";\n"
		       "list_unsubscribe = \"https://example.org/u?e={{email}}\";\n"
		       "inline = [ \"logo.png\" ];\n"
		       "attachments = [ \"guide.pdf\" ];\n");
	b = bench_add(bf, "body.html");
	buf_append_str(b, "<!DOCTYPE html><html><body>"
		       "<p><img src=\"cid:logo.png\" alt=\"logo\"></p>"
		       "<h1>Hello {{first_name}} {{last_name}},</h1>\n");
	while (b->len < 5800)
		buf_append_str(b, "<p>Spring news for <strong>{{city}}</strong>"
			       ": your {{plan}} plan includes the new guide, "
			       "with events near you since {{signup_date}}."
			       "</p>\n");
	buf_append_str(b, "<p>Sent to {{email}}.</p></body></html>\n");
	b = bench_add(bf, "body.txt");
	buf_append_str(b, "Hello {{first_name}} {{last_name}},\n\n");
	while (b->len < 2000)
		buf_append_str(b, "Spring news for {{city}}: your {{plan}} plan "
			       "includes the new guide.\n");
	b = bench_add(bf, "logo.png");
	for (int i = 0; i < 2000; i++)
		buf_putc(b, (char)(i * 7));
	b = bench_add(bf, "guide.pdf");
	for (int i = 0; i < 100 * 1024; i++)
		buf_putc(b, (char)(i * 31 + (i >> 8)));
}

/* bench_dir - every file of dir (a template folder) into bf */
static void bench_dir(struct bench_files *bf, const char *dir)
{
	static const char *const names[] = {
		"message.cfg", "body.html", "body.txt", "logo.png",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[4096], chunk[65536];
		struct buf *b = bench_add(bf, names[i]);
		FILE *fp;
		size_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fp = fopen(path, "rb");
		if (fp == NULL) {
			perror(path);
			exit(1);
		}
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_append(b, chunk, n);
		fclose(fp);
	}
}

/* -n: this many messages per case, untimed; 0: timed */
static size_t bench_fixed;

/*
 * bench_case - messages per second for one case over seconds; utf8: 0
 * none, 1 every recipient, 2 every other one has a UTF-8 city.
 */
static double bench_case(const char *label, struct bench_files *bf,
			 double seconds, int utf8)
{
	static const char *const names[] = {
		"first_name", "last_name", "city", "plan", "signup_date",
	};
	struct message_tmpl *mt;
	struct message_bufs bufs = { 0 };
	const char *err = NULL;
	struct buf out = BUF_INIT, nb = BUF_INIT;
	struct buf vals[16];
	char *last_out = NULL;
	size_t count = 0, bytes = 0;
	double t0, c0, elapsed, cpu;
	size_t moves = 0;

	if (message_tmpl_load(bench_lookup, bf, &mt, &err) < 0) {
		fprintf(stderr, "bench_render: %s\n", err);
		exit(1);
	}
	vars_pack_begin(&nb);
	for (size_t i = 0; i < 5; i++)
		vars_pack_str(&nb, names[i], strlen(names[i]));
	/* Sixteen recipients, cycled, so lookups see varying values. */
	for (int r = 0; r < 16; r++) {
		char v[64];

		memset(&vals[r], 0, sizeof(vals[r]));
		vars_pack_begin(&vals[r]);
		snprintf(v, sizeof(v), "First%d", r);
		vars_pack_str(&vals[r], v, strlen(v));
		snprintf(v, sizeof(v), "Lastname-%d", r * 7);
		vars_pack_str(&vals[r], v, strlen(v));
		if (utf8 == 1 || (utf8 == 2 && r % 2 == 0))
			vars_pack_str(&vals[r], "Zürich", 7);
		else
			vars_pack_str(&vals[r], "London", 6);
		vars_pack_str(&vals[r], "pro", 3);
		vars_pack_str(&vals[r], "2026-03-14", 10);
	}

	t0 = clock_mono_s();
	c0 = clock_cpu_s();
	do {
		for (int k = 0; k < 256; k++) {
			if (bench_fixed > 0 && count == bench_fixed)
				break;
			int r = (int)(count % 16);
			struct vars_data vd;
			struct message_job job = {
				.to = "recipient@example.com", .to_len = 21,
				.campaign_id = 1, .job_id = (int64_t)count,
				.campaign_created = 1764000000000LL,
				.date = 1764000000,
			};

			vars_data_init(&vd, nb.data, nb.len, "email", job.to,
				       job.to_len, vals[r].data, vals[r].len);
			buf_reset(&out);
			if (message_render(mt, &vd.data, &job, &bufs, &out,
					   &err) < 0) {
				fprintf(stderr, "bench_render: %s\n",
					err);
				exit(1);
			}
			/*
			 * The buffer grows, by doubling, to fit the largest
			 * message so far (values and ids differ in length):
			 * a few moves in a round.  A move per message would
			 * mean an allocation per message.
			 */
			if (count > 0 && out.data != last_out)
				moves++;
			last_out = out.data;
			bytes += out.len;
			count++;
		}
		elapsed = clock_mono_s() - t0;
	} while (bench_fixed > 0 ? count < bench_fixed : elapsed < seconds);
	cpu = clock_cpu_s() - c0;
	printf("  %-15s  %9.0f messages per CPU-second (%9.0f per wall "
	       "second)  %7.1f MB/s  %6zu bytes/message  buffer moved %zu "
	       "times%s\n",
	       label, (double)count / cpu, (double)count / elapsed,
	       (double)bytes / cpu / 1e6, bytes / count,
	       moves, moves > 16 ? " (ALLOCATING PER MESSAGE)" : "");
	for (int r = 0; r < 16; r++)
		buf_free(&vals[r]);
	buf_free(&nb);
	buf_free(&out);
	message_bufs_free(&bufs);
	message_tmpl_free(&mt);
	return (double)count / cpu;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct bench_files text = { .n = 0 }, news = { .n = 0 };
	struct bench_files big = { .n = 0 };
	static const char *const labels[] = {
		"text-4k", "text-4k-utf8", "newsletter", "newsletter-100k",
	};
	struct bench_files *files[] = { &text, &text, &news, &big };
	const int utf8[] = { 0, 1, 2, 2 };
	const char *only = NULL;
	double seconds = 2, rates[4][BENCH_ROUNDS];
	int c, ncases = 3;

	while ((c = getopt(argc, argv, "s:d:c:n:")) != -1) {
		switch (c) {
		case 's':
			seconds = atof(optarg);
			break;
		case 'd':
			bench_dir(&big, optarg);
			ncases = 4;
			break;
		case 'c':
			only = optarg;
			break;
		case 'n':
			bench_fixed = (size_t)strtoul(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	bench_text_4k(&text);
	bench_newsletter(&news);
	if (only != NULL) {
		for (int k = 0; k < ncases; k++) {
			if (strcmp(labels[k], only) == 0) {
				bench_case(labels[k], files[k], seconds,
					   utf8[k]);
				return 0;
			}
		}
		fprintf(stderr, "bench_render: no case %s (newsletter-100k "
			"needs -d)\n", only);
		return 2;
	}
	/* Rounds interleave the cases, so a noisy moment hits them all. */
	for (int r = 0; r < BENCH_ROUNDS; r++) {
		printf("round %d\n", r + 1);
		for (int k = 0; k < ncases; k++)
			rates[k][r] = bench_case(labels[k], files[k], seconds,
						 utf8[k]);
	}
	for (int k = 0; k < ncases; k++) {
		qsort(rates[k], BENCH_ROUNDS, sizeof(double), cmp_double);
		printf("%-15s  median %9.0f messages per CPU-second (min "
		       "%.0f, max %.0f, %d rounds of %.1f s)\n", labels[k],
		       rates[k][BENCH_ROUNDS / 2], rates[k][0],
		       rates[k][BENCH_ROUNDS - 1], BENCH_ROUNDS, seconds);
	}
	for (size_t i = 0; i < text.n; i++)
		buf_free(&text.f[i].data);
	for (size_t i = 0; i < news.n; i++)
		buf_free(&news.f[i].data);
	for (size_t i = 0; i < big.n; i++)
		buf_free(&big.f[i].data);
	return 0;
}
