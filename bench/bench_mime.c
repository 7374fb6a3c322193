/*
 * bench_mime - the MIME encoders of templates/mime_enc.h, one core, each
 * called over and over on the same input with its output buffer reused
 * (so no allocation after the first call), and a whole MIME message
 * built by message_render.
 *
 *   bench_mime [-s SECONDS]     (per case and round; default 1)
 *
 * Cases (MB/s is of INPUT consumed, 1 MB = 10^6 bytes, except for
 * mime_build, where it is of message produced):
 *   qp_encode       mime_qp_encode on 64 KB of UTF-8 prose: mostly ASCII,
 *                   about one word in eight accented Latin ("Zürich",
 *                   "café"), paragraphs of 200 to 1200 bytes on one line
 *                   (as HTML editors write them), so most output lines
 *                   end in soft breaks
 *   base64_encode   mime_base64_encode on 1 MB of pseudo-random bytes
 *   rfc2047_header  mime_header_text("Subject", ...) on a UTF-8 subject
 *                   of 81 characters, 91 bytes (German, one emoji): RFC
 *                   2047 encoded-words, folded; headers per second, and
 *                   MB/s of subject bytes
 *   is_7bit         mime_is_7bit on 64 KB of ASCII prose wrapped at 72
 *                   columns, lines ended by LF (true: the whole text is
 *                   scanned)
 *   crlf            mime_crlf on the same text (every LF becomes CRLF)
 *   mime_build      message_render of a small multipart template: text
 *                   and HTML (multipart/alternative) plus one 8 KB PDF
 *                   attachment (multipart/mixed, base64 encoded once at
 *                   load), 4 variables, 16 recipients cycled, half of
 *                   them with a non-ASCII first name (their text and
 *                   HTML parts go quoted-printable): messages per
 *                   second, and MB/s of message produced
 *
 * Rates are per CPU-second of this single-threaded process
 * (CLOCK_PROCESS_CPUTIME_ID), with the wall-clock rate beside them.
 * Five rounds run the cases in turn, so a noisy moment hits them all;
 * the summary gives the median of the rounds (min-max), and one
 * "RESULT name value unit" line per figure for scripts.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "message.h"
#include "mime_enc.h"
#include "vars.h"
#include "vars_data.h"

#define BENCH_ROUNDS 5
#define BENCH_NCASES 6
#define BENCH_RECIPIENTS 16

/* rng - xorshift64*, fixed seed: every run encodes the same bytes */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

/* --- inputs ------------------------------------------------------------ */

static const char *const ascii_words[] = {
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "it",
	"as", "was", "with", "be", "by", "on", "not", "this", "are", "or",
	"your", "account", "order", "delivery", "spring", "offer", "week",
	"new", "service", "please", "team", "update", "information",
	"customers", "available", "between", "shipping", "November",
	"travel", "museum", "garden", "weekend", "newsletter", "members",
};

static const char *const accented_words[] = {
	"Zürich", "café", "naïve", "façade", "déjà", "Málaga", "São",
	"Größe", "Müller", "crème", "brûlée", "Ångström", "señor", "Łódź",
	"résumé", "über", "Kraków", "Genève",
};

#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * bench_prose - about size bytes of prose, one word in eight accented
 * when accents is set; with wrap > 0, lines of at most wrap columns,
 * else one line per paragraph of 200 to 1200 bytes.  Paragraphs are
 * separated by a blank line; every line ends in LF.
 */
static void bench_prose(struct buf *b, size_t size, bool accents, int wrap)
{
	size_t para = 0, line = 0, target = 200 + rng() % 1000;
	bool sentence = true;

	while (b->len < size) {
		const char *w;
		size_t n;

		if (accents && rng() % 8 == 0)
			w = accented_words[rng() % NWORDS(accented_words)];
		else
			w = ascii_words[rng() % NWORDS(ascii_words)];
		n = strlen(w);
		if (wrap > 0 && line > 0 && line + 1 + n > (size_t)wrap) {
			buf_putc(b, '\n');
			line = 0;
		} else if (line > 0) {
			buf_putc(b, ' ');
			line++;
			para++;
		}
		if (sentence && w[0] >= 'a' && w[0] <= 'z') {
			buf_putc(b, (char)(w[0] - 'a' + 'A'));
			buf_append(b, w + 1, n - 1);
		} else {
			buf_append(b, w, n);
		}
		line += n;
		para += n;
		/* one word in twelve ends a sentence, one in twenty a clause */
		sentence = rng() % 12 == 0;
		if (para >= target) {
			buf_append_str(b, ".\n\n");
			line = para = 0;
			target = 200 + rng() % 1000;
			sentence = true;
		} else if (sentence || rng() % 20 == 0) {
			buf_putc(b, sentence ? '.' : ',');
			line++;
			para++;
		}
	}
	if (b->len == 0 || b->data[b->len - 1] != '\n')
		buf_putc(b, '\n');
}

/* The template for mime_build: files looked up by name. */
struct bench_file {
	const char *name;
	struct buf data;
};

static struct bench_file tmpl_files[4];
static size_t tmpl_nfiles;

static int bench_lookup(void *ctx, const char *name, const void **data,
			size_t *len)
{
	(void)ctx;
	for (size_t i = 0; i < tmpl_nfiles; i++) {
		if (strcmp(tmpl_files[i].name, name) == 0) {
			*data = tmpl_files[i].data.data;
			*len = tmpl_files[i].data.len;
			return 1;
		}
	}
	return 0;
}

static struct buf *bench_add(const char *name)
{
	struct bench_file *f = &tmpl_files[tmpl_nfiles++];

	f->name = name;
	memset(&f->data, 0, sizeof(f->data));
	return &f->data;
}

/* bench_template - text + HTML, 4 variables, an 8 KB PDF attachment */
static void bench_template(void)
{
	struct buf *b;

	buf_append_str(bench_add("message.cfg"),
		       "subject = \"Your order {{order}} has shipped, "
		       "{{first_name}}\";\n"
		       "from = \"Example Shop <orders@shop.example>\";\n"
		       "attachments = [ \"invoice.pdf\" ];\n");
	b = bench_add("body.txt");
	buf_append_str(b, "Hello {{first_name}} {{last_name}},\n\n");
	while (b->len < 1400)
		buf_append_str(b, "Your order {{order}} left our warehouse "
			       "today and goes to {{city}}; the invoice is "
			       "attached.\n");
	buf_append_str(b, "\nThank you for shopping with us.\n");
	b = bench_add("body.html");
	buf_append_str(b, "<!DOCTYPE html><html><body>"
		       "<h1>Hello {{first_name}} {{last_name}},</h1>\n");
	while (b->len < 3000)
		buf_append_str(b, "<p>Your order <strong>{{order}}</strong> "
			       "left our warehouse today and goes to "
			       "{{city}}; the invoice is attached.</p>\n");
	buf_append_str(b, "<p>Thank you for shopping with us.</p>"
		       "</body></html>\n");
	b = bench_add("invoice.pdf");
	for (int i = 0; i < 8 * 1024; i++)
		buf_putc(b, (char)rng());
}

/* --- cases ------------------------------------------------------------- */

static struct buf qp_in, b64_in, text_in, out;
static const char subject[] = "Frühlingsangebote für Sie, Frau Müller: "
			      "20 % auf alle Größen – nur bis Sonntag! 🌷";
static volatile size_t sink;	/* keeps results the compiler can see */

static struct message_tmpl *mt;
static struct message_bufs mbufs;
static struct buf names, vals[BENCH_RECIPIENTS];
static const char *err;
static size_t build_count;

static size_t op_qp(void)
{
	buf_reset(&out);
	mime_qp_encode(&out, qp_in.data, qp_in.len);
	return qp_in.len;
}

static size_t op_b64(void)
{
	buf_reset(&out);
	mime_base64_encode(&out, b64_in.data, b64_in.len);
	return b64_in.len;
}

static size_t op_header(void)
{
	buf_reset(&out);
	if (mime_header_text(&out, "Subject", subject, sizeof(subject) - 1)
	    < 0) {
		fprintf(stderr, "bench_mime: the subject was refused\n");
		exit(1);
	}
	return sizeof(subject) - 1;
}

static size_t op_is_7bit(void)
{
	sink += mime_is_7bit(text_in.data, text_in.len);
	return text_in.len;
}

static size_t op_crlf(void)
{
	buf_reset(&out);
	mime_crlf(&out, text_in.data, text_in.len);
	return text_in.len;
}

/* op_build - one recipient's whole message; counts bytes produced */
static size_t op_build(void)
{
	size_t r = build_count++ % BENCH_RECIPIENTS;
	struct vars_data vd;
	struct message_job job = {
		.to = "recipient@example.net", .to_len = 21,
		.campaign_id = 1, .job_id = (int64_t)build_count,
		.campaign_created = 1764000000000LL, .date = 1764000000,
	};

	vars_data_init(&vd, names.data, names.len, "email", job.to,
		       job.to_len, vals[r].data, vals[r].len);
	buf_reset(&out);
	if (message_render(mt, &vd.data, &job, &mbufs, &out, &err) < 0) {
		fprintf(stderr, "bench_mime: %s\n", err);
		exit(1);
	}
	return out.len;
}

static void build_setup(void)
{
	static const char *const vnames[] = {
		"first_name", "last_name", "city", "order",
	};
	static const char *const first[] = { "Zoë", "José", "Anaïs", "Jörg" };

	bench_template();
	if (message_tmpl_load(bench_lookup, NULL, &mt, &err) < 0) {
		fprintf(stderr, "bench_mime: %s\n", err);
		exit(1);
	}
	vars_pack_begin(&names);
	for (size_t i = 0; i < NWORDS(vnames); i++)
		vars_pack_str(&names, vnames[i], strlen(vnames[i]));
	for (int r = 0; r < BENCH_RECIPIENTS; r++) {
		char v[64];

		vars_pack_begin(&vals[r]);
		if (r % 2 == 0)
			snprintf(v, sizeof(v), "%s", first[r / 2 % 4]);
		else
			snprintf(v, sizeof(v), "First%d", r);
		vars_pack_str(&vals[r], v, strlen(v));
		snprintf(v, sizeof(v), "Lastname-%d", r * 7);
		vars_pack_str(&vals[r], v, strlen(v));
		vars_pack_str(&vals[r], "London", 6);
		snprintf(v, sizeof(v), "A-%06d", 100000 + r * 37);
		vars_pack_str(&vals[r], v, strlen(v));
	}
}

struct bench_case {
	const char *name;	/* as in RESULT lines */
	size_t (*op)(void);	/* one call; returns the bytes it counts */
	unsigned batch;		/* calls between two looks at the clock */
	const char *per;	/* NULL: MB/s only; else "headers" ... */
	const char *per_unit;	/* that rate's RESULT unit */
	const char *bytes;	/* what MB/s counts */
};

static const struct bench_case cases[BENCH_NCASES] = {
	{ "qp_encode", op_qp, 4, NULL, NULL, "input" },
	{ "base64_encode", op_b64, 1, NULL, NULL, "input" },
	{ "rfc2047_header", op_header, 1024, "headers", "headers/s",
	  "subject input" },
	{ "is_7bit", op_is_7bit, 32, NULL, NULL, "input" },
	{ "crlf", op_crlf, 16, NULL, NULL, "input" },
	{ "mime_build", op_build, 64, "messages", "msgs/s",
	  "message output" },
};

struct bench_rate {
	double ops, mbs;	/* per CPU-second */
};

/* bench_run - run one case for seconds; print a line, return its rates */
static struct bench_rate bench_run(const struct bench_case *bc,
				   double seconds)
{
	size_t calls = 0, bytes = 0;
	double t0, c0, wall, cpu;
	struct bench_rate rate;

	t0 = clock_mono_s();
	c0 = clock_cpu_s();
	do {
		for (unsigned k = 0; k < bc->batch; k++)
			bytes += bc->op();
		calls += bc->batch;
		wall = clock_mono_s() - t0;
	} while (wall < seconds);
	cpu = clock_cpu_s() - c0;
	rate.ops = (double)calls / cpu;
	rate.mbs = (double)bytes / cpu / 1e6;
	printf("  %-15s %9.1f MB/s of %s per CPU-second (%9.1f wall)",
	       bc->name, rate.mbs, bc->bytes, (double)bytes / wall / 1e6);
	if (bc->per != NULL)
		printf("  %10.0f %s/s", rate.ops, bc->per);
	printf("  %zu calls, %zu bytes/call\n", calls, bytes / calls);
	return rate;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct bench_rate rates[BENCH_NCASES][BENCH_ROUNDS];
	double seconds = 1;
	int c;

	while ((c = getopt(argc, argv, "s:")) != -1) {
		if (c != 's') {
			fprintf(stderr, "usage: bench_mime [-s SECONDS]\n");
			return 2;
		}
		seconds = atof(optarg);
	}
	if (seconds <= 0)
		return 2;

	bench_prose(&qp_in, 64 * 1024, true, 0);
	for (size_t i = 0; i < 1024 * 1024; i++)
		buf_putc(&b64_in, (char)rng());
	bench_prose(&text_in, 64 * 1024, false, 72);
	if (!mime_is_7bit(text_in.data, text_in.len)) {
		fprintf(stderr, "bench_mime: the 7bit text is not 7bit\n");
		return 1;
	}
	build_setup();
	/* One call each before timing: sizes, and the buffer grown. */
	op_qp();
	printf("bench_mime: qp_encode %zu -> %zu bytes; ", qp_in.len,
	       out.len);
	op_b64();
	printf("base64 %zu -> %zu; ", b64_in.len, out.len);
	op_header();
	printf("subject %zu -> %zu; ", sizeof(subject) - 1, out.len);
	op_crlf();
	printf("crlf %zu -> %zu; ", text_in.len, out.len);
	op_build();
	printf("message %zu bytes\n", out.len);

	for (int r = 0; r < BENCH_ROUNDS; r++) {
		printf("round %d\n", r + 1);
		for (int k = 0; k < BENCH_NCASES; k++)
			rates[k][r] = bench_run(&cases[k], seconds);
	}

	printf("summary: median (min-max) of %d rounds of %.1f s, "
	       "per CPU-second\n", BENCH_ROUNDS, seconds);
	for (int k = 0; k < BENCH_NCASES; k++) {
		double ops[BENCH_ROUNDS], mbs[BENCH_ROUNDS];

		for (int r = 0; r < BENCH_ROUNDS; r++) {
			ops[r] = rates[k][r].ops;
			mbs[r] = rates[k][r].mbs;
		}
		qsort(ops, BENCH_ROUNDS, sizeof(double), cmp_double);
		qsort(mbs, BENCH_ROUNDS, sizeof(double), cmp_double);
		printf("%-15s %9.1f MB/s of %s (%.1f-%.1f)", cases[k].name,
		       mbs[BENCH_ROUNDS / 2], cases[k].bytes, mbs[0],
		       mbs[BENCH_ROUNDS - 1]);
		if (cases[k].per != NULL)
			printf("  %.0f %s/s (%.0f-%.0f)", ops[BENCH_ROUNDS / 2],
			       cases[k].per, ops[0], ops[BENCH_ROUNDS - 1]);
		printf("\n");
		rates[k][0].ops = ops[BENCH_ROUNDS / 2];
		rates[k][0].mbs = mbs[BENCH_ROUNDS / 2];
	}
	for (int k = 0; k < BENCH_NCASES; k++) {
		if (cases[k].per != NULL) {
			printf("RESULT %s %.0f %s\n", cases[k].name,
			       rates[k][0].ops, cases[k].per_unit);
			printf("RESULT %s_mbs %.1f MB/s\n", cases[k].name,
			       rates[k][0].mbs);
		} else {
			printf("RESULT %s %.1f MB/s\n", cases[k].name,
			       rates[k][0].mbs);
		}
	}

	for (size_t i = 0; i < tmpl_nfiles; i++)
		buf_free(&tmpl_files[i].data);
	for (int r = 0; r < BENCH_RECIPIENTS; r++)
		buf_free(&vals[r]);
	buf_free(&names);
	buf_free(&qp_in);
	buf_free(&b64_in);
	buf_free(&text_in);
	buf_free(&out);
	message_bufs_free(&mbufs);
	message_tmpl_free(&mt);
	return 0;
}
