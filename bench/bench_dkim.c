/*
 * bench_dkim - DKIM signing (templates/sign) on one core: signatures
 * per CPU-second for RSA-2048 and Ed25519 over realistic messages,
 * relaxed/relaxed, and what of that is the private-key operation and
 * what is hashing.
 *
 *   bench_dkim [-s SECONDS]     (per case and round; default 1)
 *   bench_dkim -c CASE -n CALLS (CALLS calls of one case, no timing:
 *                                for callgrind, run with N and 2N)
 *
 * Messages (built here, CRLF, as volley's message builder writes them):
 *   4k    a newsletter's headers (encoded subject and display name,
 *         List-Unsubscribe ...) and a quoted-printable text/plain body
 *         of prose with accented words: 4,096 bytes
 *   100k  the same headers, multipart/mixed: quoted-printable text
 *         (6 KB) and HTML (30 KB) and a base64 attachment: 102,400
 *         bytes
 *
 * Cases:
 *   rsa2048_4k, rsa2048_100k, ed25519_4k, ed25519_100k
 *                 dkim_sign with one key: the body canonicalized and
 *                 hashed, the default h= headers, the signature; one
 *                 signer reused (as a worker does)
 *   both_100k     an RSA-2048 and an Ed25519 key at once: two
 *                 signatures, the body hashed once
 *   rsa2048_key, ed25519_key
 *                 the private-key operation alone on a 32-byte digest,
 *                 as dkim_sign does it (EVP_PKEY_sign with its context
 *                 kept; EVP_DigestSign on the key's own context,
 *                 initialised once): what `openssl speed rsa2048
 *                 ed25519` measures
 *   sha256_4k, sha256_100k
 *                 plain SHA-256 of the message's body (EVP_Digest): the
 *                 floor under the body hash
 * The summary gives, per message, the hashing and canonicalization
 * work (a case's time less its key operation's) in microseconds.
 *
 * Rates are per CPU-second of this single-threaded process
 * (CLOCK_PROCESS_CPUTIME_ID).  Five rounds run the cases in turn; the
 * summary gives the median (min-max), and one "RESULT name value unit"
 * line per figure for bench/run.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "buf.h"
#include "clock.h"
#include "dkim.h"

#define BENCH_ROUNDS 5
#define BENCH_NOW 1767225600

/* rng - xorshift64*, fixed seed: every run signs the same bytes */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

/* --- messages ------------------------------------------------------------ */

static const char *const words[] = {
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "your",
	"order", "spring", "offer", "week", "new", "service", "garden",
	"museum", "weekend", "newsletter", "members", "available",
	"Gr=C3=BC=C3=9Fe", "Z=C3=BCrich", "caf=C3=A9", "M=C3=BCller",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char headers[] =
	"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
	"From: =?UTF-8?Q?Fr=C3=BChling_Newsletter?= <news@example.org>\r\n"
	"Message-ID: <volley.7.1234567.1a24ffc4afd@example.org>\r\n"
	"To: ada.lovelace@example.net\r\n"
	"Subject: =?UTF-8?B?RnLDvGhsaW5nc2dyw7zDn2Us?= Ada: what's new this "
	"spring\r\n =?UTF-8?B?8J+Mtw==?=\r\n"
	"Reply-To: Volley Team <team@example.org>\r\n"
	"List-Unsubscribe: <https://example.org/unsubscribe?u=ada.lovelace@"
	"example.net>,\r\n <mailto:unsubscribe@example.org?subject=unsub>\r\n"
	"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	"X-Campaign: spring-news\r\n"
	"MIME-Version: 1.0\r\n";

/* qp_prose - quoted-printable-looking prose up to size bytes: words,
 * lines of at most 76 columns ending "=" (soft) or not, CRLF */
static void qp_prose(struct buf *b, size_t size)
{
	size_t line = 0;

	while (b->len + 80 < size) {
		const char *w = words[rng() % NWORDS];
		size_t n = strlen(w);

		if (line + n + 2 > 75) {
			buf_append_str(b, rng() % 3 ? " =\r\n" : "\r\n");
			line = 0;
		} else if (line > 0) {
			buf_putc(b, ' ');
			line++;
		}
		buf_append(b, w, n);
		line += n;
	}
	buf_append_str(b, "\r\n");
}

static void base64_lines(struct buf *b, size_t size)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789+/";

	while (b->len + 78 < size) {
		for (int i = 0; i < 76; i++)
			buf_putc(b, alphabet[rng() % 64]);
		buf_append_str(b, "\r\n");
	}
}

/* pad - lines of letters until the message has exactly size bytes
 * (at least 3 more than it has) */
static void pad(struct buf *b, size_t size)
{
	size_t n;

	while (size - b->len > 74) {
		for (int i = 0; i < 70; i++)
			buf_putc(b, (char)('a' + rng() % 26));
		buf_append_str(b, "\r\n");
	}
	/* 3 to 74 bytes left: one last line */
	for (n = size - b->len - 2; n > 0; n--)
		buf_putc(b, (char)('a' + rng() % 26));
	buf_append_str(b, "\r\n");
}

static void message_4k(struct buf *b)
{
	buf_append_str(b, headers);
	buf_append_str(b, "Content-Type: text/plain; charset=utf-8\r\n"
		       "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	qp_prose(b, 4000);
	pad(b, 4096);
}

static void message_100k(struct buf *b)
{
	static const char boundary[] = "=_volley_0123456789abcdef";

	buf_append_str(b, headers);
	buf_printf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n"
		   "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		   boundary, boundary);
	qp_prose(b, b->len + 6 * 1024);
	buf_printf(b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		   "<p>", boundary);
	qp_prose(b, b->len + 30 * 1024);
	buf_printf(b, "</p>\r\n--%s\r\nContent-Type: application/pdf\r\n"
		   "Content-Disposition: attachment; filename=\"guide.pdf\""
		   "\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary);
	base64_lines(b, 102400 - 120);
	buf_printf(b, "--%s--\r\n", boundary);
	pad(b, 102400);
}

/* --- keys ---------------------------------------------------------------- */

static char dir[64];

static const char *write_key(const char *name, EVP_PKEY *pkey)
{
	static char paths[2][128];
	static int turn;
	char *path = paths[turn++ % 2];
	BIO *f;

	snprintf(path, sizeof(paths[0]), "%s/%s", dir, name);
	f = BIO_new_file(path, "w");
	if (f == NULL || PEM_write_bio_PrivateKey(f, pkey, NULL, NULL, 0,
						  NULL, NULL) != 1) {
		fprintf(stderr, "bench_dkim: cannot write %s\n", path);
		exit(1);
	}
	BIO_free(f);
	chmod(path, 0600);
	return path;
}

static struct dkim_signer *signer_of(const struct dkim_key_spec *specs,
				     size_t n, struct dkim_keys **keys_r)
{
	struct dkim_signer *s;
	const char *error;

	if (dkim_keys_load(specs, n, keys_r, &error) < 0 ||
	    dkim_signer_new(*keys_r, &s, &error) < 0) {
		fprintf(stderr, "bench_dkim: %s\n", error);
		exit(1);
	}
	return s;
}

/* --- cases --------------------------------------------------------------- */

static struct buf msg4k, msg100k, out;
static size_t body4k, body100k;		/* where each body starts */
static struct dkim_signer *s_rsa, *s_ed, *s_both;
static EVP_PKEY *rsa, *ed;
static EVP_PKEY_CTX *rsa_ctx;
static EVP_MD_CTX *ed_ctx;
static const unsigned char digest[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static volatile size_t sink;

static void sign(struct dkim_signer *s, const struct buf *m, int want)
{
	const char *error = "not the signatures wanted";

	buf_reset(&out);
	if (dkim_sign(s, m->data, m->len, BENCH_NOW, &out, &error) != want) {
		fprintf(stderr, "bench_dkim: %s\n", error);
		exit(1);
	}
}

static void op_rsa_4k(void) { sign(s_rsa, &msg4k, 1); }
static void op_rsa_100k(void) { sign(s_rsa, &msg100k, 1); }
static void op_ed_4k(void) { sign(s_ed, &msg4k, 1); }
static void op_ed_100k(void) { sign(s_ed, &msg100k, 1); }
static void op_both_100k(void) { sign(s_both, &msg100k, 2); }

static void op_rsa_key(void)
{
	unsigned char sig[512];
	size_t len = sizeof(sig);

	if (EVP_PKEY_sign(rsa_ctx, sig, &len, digest, sizeof(digest)) != 1)
		exit(1);
	sink += sig[0];
}

static void op_ed_key(void)
{
	unsigned char sig[64];
	size_t len = sizeof(sig);

	if (EVP_DigestSign(ed_ctx, sig, &len, digest, sizeof(digest)) != 1)
		exit(1);
	sink += sig[0];
}

static void op_sha_4k(void)
{
	unsigned char md[32];

	EVP_Digest(msg4k.data + body4k, msg4k.len - body4k, md, NULL,
		   EVP_sha256(), NULL);
	sink += md[0];
}

static void op_sha_100k(void)
{
	unsigned char md[32];

	EVP_Digest(msg100k.data + body100k, msg100k.len - body100k, md, NULL,
		   EVP_sha256(), NULL);
	sink += md[0];
}

struct bench_case {
	const char *name;	/* RESULT dkim_NAME */
	void (*op)(void);
	unsigned batch;		/* calls between looks at the clock */
	const char *unit;	/* what one call is */
	int keys;		/* the key operations a call holds: K_* */
};

/* the key-only cases' indexes, and what a dkim_sign case holds */
enum { C_RSA_KEY = 5, C_ED_KEY = 6 };
enum { K_NONE, K_RSA, K_ED, K_BOTH };

static const struct bench_case cases[] = {
	{ "rsa2048_4k", op_rsa_4k, 4, "signatures", K_RSA },
	{ "rsa2048_100k", op_rsa_100k, 4, "signatures", K_RSA },
	{ "ed25519_4k", op_ed_4k, 16, "signatures", K_ED },
	{ "ed25519_100k", op_ed_100k, 8, "signatures", K_ED },
	{ "both_100k", op_both_100k, 4, "messages", K_BOTH },
	{ "rsa2048_key", op_rsa_key, 4, "signatures", K_NONE },
	{ "ed25519_key", op_ed_key, 16, "signatures", K_NONE },
	{ "sha256_4k", op_sha_4k, 64, "bodies", K_NONE },
	{ "sha256_100k", op_sha_100k, 8, "bodies", K_NONE },
};
#define BENCH_NCASES (sizeof(cases) / sizeof(cases[0]))

/* bench_run - run one case for seconds; its calls per CPU-second */
static double bench_run(const struct bench_case *bc, double seconds)
{
	size_t calls = 0;
	double t0 = clock_mono_s(), c0 = clock_cpu_s(), cpu;

	do {
		for (unsigned k = 0; k < bc->batch; k++)
			bc->op();
		calls += bc->batch;
	} while (clock_mono_s() - t0 < seconds);
	cpu = clock_cpu_s() - c0;
	printf("  %-14s %10.0f %s per CPU-second (%zu calls)\n", bc->name,
	       (double)calls / cpu, bc->unit, calls);
	return (double)calls / cpu;
}

/* bench_fixed - calls calls of the case named only: instructions per
 * call are (2N's less N's) / N under callgrind */
/* not inlined: callgrind --toggle-collect=bench_fixed counts it alone */
__attribute__((noinline))
static int bench_fixed(const char *only, long calls)
{
	for (size_t k = 0; k < BENCH_NCASES; k++) {
		if (strcmp(cases[k].name, only) != 0)
			continue;
		for (long i = 0; i < calls; i++)
			cases[k].op();
		printf("%s: %ld calls\n", only, calls);
		return 0;
	}
	fprintf(stderr, "bench_dkim: no case %s\n", only);
	return 2;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static size_t body_of(const struct buf *m)
{
	const char *p = strstr(m->data, "\r\n\r\n");

	return (size_t)(p + 4 - m->data);
}

int main(int argc, char **argv)
{
	double rates[BENCH_NCASES][BENCH_ROUNDS], med[BENCH_NCASES];
	struct dkim_key_spec specs[2] = { { 0 }, { 0 } };
	struct dkim_keys *k_rsa, *k_ed, *k_both;
	double seconds = 1;
	const char *only = NULL;
	long calls = 0;
	int c;

	while ((c = getopt(argc, argv, "s:c:n:")) != -1) {
		if (c == 's') {
			seconds = atof(optarg);
		} else if (c == 'c') {
			only = optarg;
		} else if (c == 'n') {
			calls = atol(optarg);
		} else {
			fprintf(stderr, "usage: bench_dkim [-s SECONDS] "
				"[-c CASE -n CALLS]\n");
			return 2;
		}
	}
	if (seconds <= 0 || (only != NULL) != (calls > 0))
		return 2;

	strcpy(dir, "/tmp/volley-bench-dkim-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (rsa == NULL || ed == NULL)
		return 1;
	for (int i = 0; i < 2; i++) {
		specs[i].domain = "example.org";
		specs[i].header_canon = DKIM_CANON_RELAXED;
		specs[i].body_canon = DKIM_CANON_RELAXED;
	}
	specs[0].selector = "rsa";
	specs[0].key_file = write_key("rsa.key", rsa);
	specs[1].selector = "ed";
	specs[1].key_file = write_key("ed.key", ed);
	s_rsa = signer_of(&specs[0], 1, &k_rsa);
	s_ed = signer_of(&specs[1], 1, &k_ed);
	s_both = signer_of(specs, 2, &k_both);
	unlink(specs[0].key_file);
	unlink(specs[1].key_file);
	rmdir(dir);
	/* the key operations as dkim_sign does them */
	rsa_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
	ed_ctx = EVP_MD_CTX_new();
	if (rsa_ctx == NULL || ed_ctx == NULL ||
	    EVP_PKEY_sign_init(rsa_ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(rsa_ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(rsa_ctx, EVP_sha256()) != 1 ||
	    EVP_DigestSignInit(ed_ctx, NULL, NULL, NULL, ed) != 1)
		return 1;

	message_4k(&msg4k);
	message_100k(&msg100k);
	body4k = body_of(&msg4k);
	body100k = body_of(&msg100k);
	op_both_100k();
	printf("bench_dkim: messages of %zu bytes (body %zu) and %zu bytes "
	       "(body %zu); two signatures take %zu bytes\n", msg4k.len,
	       msg4k.len - body4k, msg100k.len, msg100k.len - body100k,
	       out.len);

	if (only != NULL)
		return bench_fixed(only, calls);
	for (int r = 0; r < BENCH_ROUNDS; r++) {
		printf("round %d\n", r + 1);
		for (size_t k = 0; k < BENCH_NCASES; k++)
			rates[k][r] = bench_run(&cases[k], seconds);
	}

	printf("summary: median (min-max) of %d rounds of %.1f s, per "
	       "CPU-second\n", BENCH_ROUNDS, seconds);
	for (size_t k = 0; k < BENCH_NCASES; k++) {
		qsort(rates[k], BENCH_ROUNDS, sizeof(double), cmp_double);
		med[k] = rates[k][BENCH_ROUNDS / 2];
		printf("%-14s %9.0f %s/s (%.0f-%.0f)  %8.1f us each\n",
		       cases[k].name, med[k], cases[k].unit, rates[k][0],
		       rates[k][BENCH_ROUNDS - 1], 1e6 / med[k]);
	}
	printf("hashing and canonicalization per message (a case less its "
	       "key operations):\n");
	for (size_t k = 0; k < BENCH_NCASES; k++) {
		double keys_us = 0;

		if (cases[k].keys == K_NONE)
			continue;
		if (cases[k].keys != K_ED)
			keys_us += 1e6 / med[C_RSA_KEY];
		if (cases[k].keys != K_RSA)
			keys_us += 1e6 / med[C_ED_KEY];
		printf("%-14s %8.1f us (%.0f%% of the whole)\n",
		       cases[k].name, 1e6 / med[k] - keys_us,
		       100 * (1 - keys_us * med[k] / 1e6));
		printf("RESULT dkim_%s_hash_us %.1f us\n", cases[k].name,
		       1e6 / med[k] - keys_us);
	}
	for (size_t k = 0; k < BENCH_NCASES; k++)
		printf("RESULT dkim_%s %.0f %s/s\n", cases[k].name, med[k],
		       cases[k].unit);

	dkim_signer_free(&s_rsa);
	dkim_signer_free(&s_ed);
	dkim_signer_free(&s_both);
	dkim_keys_free(&k_rsa);
	dkim_keys_free(&k_ed);
	dkim_keys_free(&k_both);
	EVP_PKEY_CTX_free(rsa_ctx);
	EVP_MD_CTX_free(ed_ctx);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	buf_free(&msg4k);
	buf_free(&msg100k);
	buf_free(&out);
	return 0;
}
