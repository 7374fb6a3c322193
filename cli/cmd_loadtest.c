/*
 * cmd_loadtest - `volley loadtest --server HOST:PORT [options]`: load a
 * mail relay with volley's client engine and report latency percentiles
 * per SMTP phase, throughput and errors (engine/loadtest/loadtest.h does the
 * work; this file is options, messages, progress and the report).
 *
 * No store and no configuration file: everything is on the command line.
 * Messages are made here once (one per --size, or rendered once from
 * --template) and handed to the engine, which only writes each message's
 * number into its Message-ID.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "csv.h"
#include "errmsg.h"
#include "escape.h"
#include "import.h"
#include "jsonw.h"
#include "loadtest.h"
#include "mailaddr.h"
#include "message.h"
#include "snapshot.h"
#include "vars.h"
#include "vars_data.h"
#include "xalloc.h"

#define LT_MAX_SIZES 16
/* --vars: rendered once each, so memory is rows x the message's size */
#define LT_MAX_VARS_ROWS 1000
#define LT_MAX_VARS_BYTES (256u * 1024 * 1024)
#define LT_MAX_CONTENTS (LT_MAX_VARS_ROWS > LT_MAX_SIZES ? \
			 LT_MAX_VARS_ROWS : LT_MAX_SIZES)
#define LT_MAX_SIZE (50u * 1024 * 1024)
#define LT_DEFAULT_SIZE 4096
#define LT_DEFAULT_DURATION_S 10
#define LT_DEFAULT_TIMEOUT_S 30

const char cmd_loadtest_help[] =
	"usage: volley loadtest --server HOST:PORT [options]\n"
	"\n"
	"Load an SMTP relay (Postfix, Exim, a cloud relay) with volley's\n"
	"client and measure it: latency percentiles per phase (TCP connect,\n"
	"TLS handshake, greeting, EHLO, AUTH, and each transaction from MAIL\n"
	"FROM to the reply to the end of data), throughput, and counts by\n"
	"reply code and by kind of error.  Messages are generated; no store,\n"
	"no configuration file and no template are needed.\n"
	"\n"
	"Closed loop (default): each connection sends as fast as the server\n"
	"answers.  Open loop (--rate): messages are due at a fixed rate,\n"
	"spread over the connections, and each one's latency runs from when\n"
	"it was due, so a server that stalls shows the stall on every message\n"
	"due during it (coordinated omission corrected, as wrk2 does).\n"
	"\n"
	"Load:\n"
	"  --server HOST:PORT      the relay ([v6addr]:PORT; port 25 if none)\n"
	"  --connections N         connections at once (default 8), one\n"
	"                          thread each\n"
	"  --count N               stop after N messages\n"
	"  --duration SECONDS      stop after this long (default 10 when no\n"
	"                          --count; with both, whichever comes first)\n"
	"  --rate R                open loop: R messages per second in all\n"
	"  --ramp SECONDS          open loop: the rate rises linearly from 0\n"
	"                          to R over this time; closed loop: the\n"
	"                          connections start spread over it\n"
	"  --messages-per-connection N\n"
	"                          QUIT and connect again after N messages\n"
	"                          (loads the handshake path; default: never)\n"
	"  --timeout SECONDS       for connecting and for each reply (default\n"
	"                          30); past it the connection counts as a\n"
	"                          timeout\n"
	"Messages:\n"
	"  --recipients N          per message (default 1, at most 100)\n"
	"  --size BYTES            whole message size (default 4096; k and m\n"
	"                          suffixes), or a distribution of sizes with\n"
	"                          weights: --size 2k:60,16k:30,256k:10\n"
	"  --from PATTERN          envelope sender (default\n"
	"                          loadtest@example.com)\n"
	"  --to PATTERN            recipients (default rcpt{n}@example.net);\n"
	"                          {n} is replaced by a sequence number: the\n"
	"                          message's in --from, the recipient's own in\n"
	"                          --to, so every recipient differs\n"
	"  --template DIR          send this template folder's message\n"
	"                          (see `volley campaign`) instead of\n"
	"                          generated text, rendered once\n"
	"  --vars FILE             with --template: render it once for each\n"
	"                          row of this CSV (a header row names the\n"
	"                          variables; first 1000 rows), each message\n"
	"                          taking one of them; the envelope still\n"
	"                          comes from --from and --to\n"
	"  --helo NAME             the EHLO name (default: this host's name)\n"
	"Protocol:\n"
	"  --tls none|starttls|implicit   (default none)\n"
	"  --tls-verify on|off     check the certificate (default on);\n"
	"  --insecure              the same as --tls-verify off\n"
	"  --tls-name NAME         the name to check in the certificate (and\n"
	"                          send as SNI); default the --server host\n"
	"  --ca-file FILE          trust these CA certificates (PEM)\n"
	"  --auth USER             AUTH as USER, with the password from\n"
	"  --password-env VAR      an environment variable, or\n"
	"  --password-file FILE    the first line of a file\n"
	"  --xoauth2-token-env VAR    or AUTH XOAUTH2 as USER with an OAuth 2.0\n"
	"  --xoauth2-token-file FILE  access token from a variable or a file\n"
	"  --allow-plaintext-auth  allow AUTH without TLS (refused otherwise)\n"
	"  --pipelining on|off     PIPELINING when offered (default on)\n"
	"  --chunking on|off       BDAT when offered, with a window of 8\n"
	"                          messages in flight (default off); a\n"
	"                          message's latency then includes its wait\n"
	"                          in the window\n"
	"Output:\n"
	"  --json FILE             also write the report as one JSON object\n"
	"                          (- for standard output; keys in\n"
	"                          docs/loadtest.md)\n"
	"  --quiet                 no progress line each second\n"
	"\n"
	"While it runs, one line a second on standard error: elapsed time,\n"
	"messages per second, messages sent, errors, and the p99 latency of a\n"
	"transaction so far.  At the end, on standard output: throughput,\n"
	"client CPU, a table of p50/p90/p99/p99.9/max per phase (ms), the\n"
	"replies by code and the failed connections by kind (refused, reset,\n"
	"timeout, tls, rejected, protocol, other).  Ctrl-C stops it and still\n"
	"reports (a second Ctrl-C reports at once, without waiting for the\n"
	"messages in flight).\n"
	"\n"
	"This sends real mail to the --to addresses.  The default domain,\n"
	"example.net, is reserved (RFC 2606) and delivers nowhere; point it\n"
	"at a domain your relay discards or delivers locally.\n"
	"\n"
	"Exit status: 0 when the run completed (SMTP errors are counted, not\n"
	"fatal), 1 when it could not run (nothing listening, AUTH refused, a\n"
	"certificate that does not verify), 2 for a usage error.\n";

/* The options, as given. */
struct lt_opts {
	char *host;		/* from --server, without brackets */
	char port[16];
	unsigned connections;
	uint64_t count;
	double duration_s;
	double rate;
	double ramp_s;
	unsigned recipients;
	size_t sizes[LT_MAX_SIZES];
	unsigned weights[LT_MAX_SIZES];
	size_t nsizes;
	const char *size_arg;
	unsigned per_connection;
	double timeout_s;
	enum smtp_tls tls;
	bool verify;
	const char *tls_name;
	const char *ca_file;
	const char *user;
	const char *password_env;
	const char *password_file;
	const char *token_env;		/* XOAUTH2 */
	const char *token_file;
	bool plaintext_auth;
	bool pipelining;
	bool chunking;
	const char *from;
	const char *to;
	const char *template_dir;
	const char *vars_path;
	const char *helo;
	const char *json;
	bool quiet;
};

static volatile sig_atomic_t lt_signals;

static void lt_on_signal(int sig)
{
	(void)sig;
	lt_signals++;
}

/* --- options -------------------------------------------------------------- */

/* lt_number - a whole number in [min, max]; 0 or -1 */
static int lt_number(const char *opt, const char *s, uint64_t min,
		     uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 ||
	    v < min || v > max) {
		cli_usage_error("loadtest", "%s takes a whole number from %llu "
				"to %llu, not '%s'", opt,
				(unsigned long long)min,
				(unsigned long long)max, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* lt_seconds - a number of seconds >= 0 (fractions allowed) */
static int lt_seconds(const char *opt, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v < 0 || v > 1e7) {
		cli_usage_error("loadtest", "%s takes a number of seconds, not "
				"'%s'", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* lt_on_off - "on" or "off" */
static int lt_on_off(const char *opt, const char *s, bool *out)
{
	if (strcmp(s, "on") == 0 || strcmp(s, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(s, "off") == 0 || strcmp(s, "no") == 0) {
		*out = false;
		return 0;
	}
	cli_usage_error("loadtest", "%s takes on or off, not '%s'", opt, s);
	return -1;
}

/* lt_size - "4096", "4k", "2m" */
static int lt_size(const char *s, size_t len, size_t *out)
{
	unsigned long long v = 0, mult = 1;
	size_t i = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > LT_MAX_SIZE)
			return -1;
	}
	if (i == 0)
		return -1;
	if (i + 1 == len && (s[i] == 'k' || s[i] == 'K'))
		mult = 1024;
	else if (i + 1 == len && (s[i] == 'm' || s[i] == 'M'))
		mult = 1024 * 1024;
	else if (i != len)
		return -1;
	v *= mult;
	if (v == 0 || v > LT_MAX_SIZE)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* lt_sizes - --size: one size, or SIZE:WEIGHT,SIZE:WEIGHT... */
static int lt_sizes(struct lt_opts *o, const char *arg)
{
	const char *p = arg;

	o->nsizes = 0;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *colon = memchr(p, ':', len);
		uint64_t w = 1;
		char wbuf[16];

		if (o->nsizes == LT_MAX_SIZES)
			goto bad;
		if (lt_size(p, colon ? (size_t)(colon - p) : len,
			    &o->sizes[o->nsizes]) < 0)
			goto bad;
		if (colon != NULL) {
			size_t wl = len - (size_t)(colon + 1 - p);
			char *end;

			if (wl == 0 || wl >= sizeof(wbuf))
				goto bad;
			memcpy(wbuf, colon + 1, wl);
			wbuf[wl] = '\0';
			w = strtoull(wbuf, &end, 10);
			if (*end != '\0' || w < 1 || w > 1000000 ||
			    wbuf[0] == '-')
				goto bad;
		} else if (comma != NULL || o->nsizes > 0) {
			goto bad;	/* a list needs a weight for each */
		}
		o->weights[o->nsizes++] = (unsigned)w;
		p += len;
		if (*p == ',')
			p++;
		if (comma != NULL && *p == '\0')
			goto bad;
	}
	if (o->nsizes > 0)
		return 0;
bad:
	cli_usage_error("loadtest", "--size takes BYTES (4096, 4k, 1m; at most "
			"50m) or SIZE:WEIGHT,... (2k:60,16k:30,256k:10), not "
			"'%s'", arg);
	return -1;
}

/* lt_server - HOST:PORT, [V6]:PORT, or HOST (port 25) */
static int lt_server(struct lt_opts *o, const char *arg)
{
	const char *colon, *host = arg, *port = "25";
	size_t hlen;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			goto bad;
		host = arg + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
	} else {
		colon = strrchr(arg, ':');
		if (colon != NULL && strchr(arg, ':') != colon)
			goto bad;	/* a bare IPv6 address needs [] */
		hlen = colon ? (size_t)(colon - arg) : strlen(arg);
		if (colon != NULL)
			port = colon + 1;
	}
	if (hlen == 0 || *port == '\0' || strlen(port) >= sizeof(o->port) ||
	    strspn(port, "0123456789") != strlen(port) || atoi(port) < 1 ||
	    atoi(port) > 65535)
		goto bad;
	free(o->host);
	o->host = strndup(host, hlen);
	snprintf(o->port, sizeof(o->port), "%s", port);
	return 0;
bad:
	cli_usage_error("loadtest", "--server takes HOST:PORT ([ADDR]:PORT "
			"for IPv6), not '%s'", arg);
	return -1;
}

/* lt_pattern - an address pattern that makes valid addresses */
static int lt_pattern(const char *opt, const char *pattern)
{
	char sample[LOADTEST_MAX_PATTERN + 100];
	const char *reason;
	unsigned flags = 0;

	if (strlen(pattern) > LOADTEST_MAX_PATTERN ||
	    loadtest_format(pattern, UINT64_MAX, sample, sizeof(sample)) < 0) {
		cli_usage_error("loadtest", "%s: a pattern of at most %d bytes "
				"and a few {n}", opt, LOADTEST_MAX_PATTERN);
		return -1;
	}
	loadtest_format(pattern, 1, sample, sizeof(sample));
	if (!mailaddr_check(sample, strlen(sample), &flags, &reason)) {
		cli_usage_error("loadtest", "%s '%s' does not make an address "
				"('%s': %s)", opt, pattern, sample, reason);
		return -1;
	}
	return 0;
}

static int lt_parse(struct lt_opts *o, int argc, char **argv)
{
	enum {
		O_SERVER = 256, O_CONNECTIONS, O_COUNT, O_DURATION, O_RATE,
		O_RAMP, O_RECIPIENTS, O_SIZE, O_PER_CONN, O_TLS, O_TLS_VERIFY,
		O_INSECURE, O_TLS_NAME, O_CA_FILE, O_AUTH, O_PASSWORD_ENV,
		O_PASSWORD_FILE, O_TOKEN_ENV, O_TOKEN_FILE, O_PLAINTEXT_AUTH,
		O_PIPELINING, O_CHUNKING, O_FROM, O_TO, O_TEMPLATE, O_VARS,
		O_HELO, O_JSON, O_QUIET, O_TIMEOUT,
	};
	static const struct option opts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "connections", required_argument, NULL, O_CONNECTIONS },
		{ "count", required_argument, NULL, O_COUNT },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "rate", required_argument, NULL, O_RATE },
		{ "ramp", required_argument, NULL, O_RAMP },
		{ "recipients", required_argument, NULL, O_RECIPIENTS },
		{ "size", required_argument, NULL, O_SIZE },
		{ "messages-per-connection", required_argument, NULL,
		  O_PER_CONN },
		{ "tls", required_argument, NULL, O_TLS },
		{ "tls-verify", required_argument, NULL, O_TLS_VERIFY },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "tls-name", required_argument, NULL, O_TLS_NAME },
		{ "ca-file", required_argument, NULL, O_CA_FILE },
		{ "auth", required_argument, NULL, O_AUTH },
		{ "password-env", required_argument, NULL, O_PASSWORD_ENV },
		{ "password-file", required_argument, NULL, O_PASSWORD_FILE },
		{ "xoauth2-token-env", required_argument, NULL, O_TOKEN_ENV },
		{ "xoauth2-token-file", required_argument, NULL, O_TOKEN_FILE },
		{ "allow-plaintext-auth", no_argument, NULL, O_PLAINTEXT_AUTH },
		{ "pipelining", required_argument, NULL, O_PIPELINING },
		{ "chunking", required_argument, NULL, O_CHUNKING },
		{ "from", required_argument, NULL, O_FROM },
		{ "to", required_argument, NULL, O_TO },
		{ "template", required_argument, NULL, O_TEMPLATE },
		{ "vars", required_argument, NULL, O_VARS },
		{ "helo", required_argument, NULL, O_HELO },
		{ "json", required_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c, secrets;

	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case O_SERVER:
			if (lt_server(o, optarg) < 0)
				return -1;
			break;
		case O_CONNECTIONS:
			if (lt_number("--connections", optarg, 1,
				      LOADTEST_MAX_CONNECTIONS, &v) < 0)
				return -1;
			o->connections = (unsigned)v;
			break;
		case O_COUNT:
			if (lt_number("--count", optarg, 1, UINT64_MAX / 2,
				      &o->count) < 0)
				return -1;
			break;
		case O_DURATION:
			if (lt_seconds("--duration", optarg,
				       &o->duration_s) < 0)
				return -1;
			if (o->duration_s <= 0)
				return cli_usage_error("loadtest", "--duration "
						       "must be above 0"), -1;
			break;
		case O_RATE:
			if (lt_seconds("--rate", optarg, &o->rate) < 0 ||
			    o->rate <= 0)
				return cli_usage_error("loadtest", "--rate takes "
						       "messages per second "
						       "(above 0)"), -1;
			break;
		case O_RAMP:
			if (lt_seconds("--ramp", optarg, &o->ramp_s) < 0)
				return -1;
			break;
		case O_RECIPIENTS:
			if (lt_number("--recipients", optarg, 1,
				      LOADTEST_MAX_RECIPIENTS, &v) < 0)
				return -1;
			o->recipients = (unsigned)v;
			break;
		case O_SIZE:
			if (lt_sizes(o, optarg) < 0)
				return -1;
			o->size_arg = optarg;
			break;
		case O_PER_CONN:
			if (lt_number("--messages-per-connection", optarg, 1,
				      1000000000, &v) < 0)
				return -1;
			o->per_connection = (unsigned)v;
			break;
		case O_TLS:
			if (strcmp(optarg, "none") == 0)
				o->tls = SMTP_TLS_NONE;
			else if (strcmp(optarg, "starttls") == 0)
				o->tls = SMTP_TLS_STARTTLS;
			else if (strcmp(optarg, "implicit") == 0)
				o->tls = SMTP_TLS_IMPLICIT;
			else
				return cli_usage_error("loadtest", "--tls takes "
						       "none, starttls or "
						       "implicit"), -1;
			break;
		case O_TLS_VERIFY:
			if (lt_on_off("--tls-verify", optarg, &o->verify) < 0)
				return -1;
			break;
		case O_INSECURE:
			o->verify = false;
			break;
		case O_TLS_NAME:
			o->tls_name = optarg;
			break;
		case O_CA_FILE:
			o->ca_file = optarg;
			break;
		case O_AUTH:
			o->user = optarg;
			break;
		case O_PASSWORD_ENV:
			o->password_env = optarg;
			break;
		case O_PASSWORD_FILE:
			o->password_file = optarg;
			break;
		case O_TOKEN_ENV:
			o->token_env = optarg;
			break;
		case O_TOKEN_FILE:
			o->token_file = optarg;
			break;
		case O_PLAINTEXT_AUTH:
			o->plaintext_auth = true;
			break;
		case O_PIPELINING:
			if (lt_on_off("--pipelining", optarg,
				      &o->pipelining) < 0)
				return -1;
			break;
		case O_CHUNKING:
			if (lt_on_off("--chunking", optarg, &o->chunking) < 0)
				return -1;
			break;
		case O_FROM:
			o->from = optarg;
			break;
		case O_TO:
			o->to = optarg;
			break;
		case O_TEMPLATE:
			o->template_dir = optarg;
			break;
		case O_VARS:
			o->vars_path = optarg;
			break;
		case O_HELO:
			o->helo = optarg;
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case 'q':
		case O_QUIET:
			o->quiet = true;
			break;
		case O_TIMEOUT:
			if (lt_seconds("--timeout", optarg, &o->timeout_s) < 0 ||
			    o->timeout_s < 0.1 || o->timeout_s > 3600)
				return cli_usage_error("loadtest", "--timeout "
						       "takes 0.1 to 3600 "
						       "seconds"), -1;
			break;
		default:
			return cli_usage_error("loadtest", "bad option"), -1;
		}
	}
	if (optind != argc)
		return cli_usage_error("loadtest", "unexpected argument '%s'",
				       argv[optind]), -1;
	if (o->host == NULL)
		return cli_usage_error("loadtest", "loadtest needs --server "
				       "HOST:PORT"), -1;
	if (o->count == 0 && o->duration_s == 0)
		o->duration_s = LT_DEFAULT_DURATION_S;
	if (o->ramp_s > 0 && o->duration_s > 0 && o->ramp_s > o->duration_s)
		return cli_usage_error("loadtest", "--ramp is longer than "
				       "--duration"), -1;
	if (o->vars_path != NULL && o->template_dir == NULL)
		return cli_usage_error("loadtest", "--vars gives a template's "
				       "variables: it needs --template DIR"),
		       -1;
	if (o->template_dir != NULL && o->size_arg != NULL)
		return cli_usage_error("loadtest", "--template gives the "
				       "message, and so its size: no --size"),
		       -1;
	secrets = (o->password_env != NULL) + (o->password_file != NULL) +
		  (o->token_env != NULL) + (o->token_file != NULL);
	if (o->user != NULL && secrets != 1)
		return cli_usage_error("loadtest", "--auth needs one of "
				       "--password-env VAR, --password-file "
				       "FILE, --xoauth2-token-env VAR or "
				       "--xoauth2-token-file FILE"), -1;
	if (o->user == NULL && secrets > 0)
		return cli_usage_error("loadtest", "a password or token "
				       "without --auth USER"), -1;
	if (o->user != NULL && o->tls == SMTP_TLS_NONE && !o->plaintext_auth)
		return cli_usage_error("loadtest", "--auth without TLS would "
				       "send the password in clear: use --tls "
				       "starttls or implicit, or "
				       "--allow-plaintext-auth"), -1;
	if (o->tls == SMTP_TLS_NONE &&
	    (o->tls_name != NULL || o->ca_file != NULL))
		return cli_usage_error("loadtest", "--tls-name and --ca-file "
				       "need --tls starttls or implicit"), -1;
	if (o->chunking && !o->pipelining)
		return cli_usage_error("loadtest", "--chunking on needs "
				       "--pipelining on"), -1;
	if (lt_pattern("--from", o->from) < 0 || lt_pattern("--to", o->to) < 0)
		return -1;
	return 0;
}

/* --- messages ------------------------------------------------------------- */

/* Template variables: only the recipient's address, as "email". */
static bool lt_vars_get(const struct tmpl_data *d, const struct tmpl_value *obj,
			const char *name, size_t len, struct tmpl_value *out)
{
	const char *email = d->ctx;

	(void)obj;
	if (len == 5 && memcmp(name, "email", 5) == 0) {
		out->kind = TMPL_STRING;
		out->str = email;
		out->len = strlen(email);
		return true;
	}
	return false;
}

static size_t lt_vars_list_len(const struct tmpl_data *d,
			       const struct tmpl_value *list)
{
	(void)d;
	(void)list;
	return 0;
}

static void lt_vars_list_item(const struct tmpl_data *d,
			      const struct tmpl_value *list, size_t i,
			      struct tmpl_value *out)
{
	(void)d;
	(void)list;
	(void)i;
	out->kind = TMPL_MISSING;
}

/* lt_render_one - one rendering of the template into msg, its
 * Message-ID ready for the sequence numbers */
static int lt_render_one(const struct message_tmpl *mt,
			 const struct tmpl_data *data, const char *to,
			 const char *id_right, struct message_bufs *bufs,
			 struct buf *msg, size_t *seq_at, const char **error_r)
{
	struct message_job job = { .date = time(NULL), .to = to,
				   .to_len = strlen(to) };

	if (message_render(mt, data, &job, bufs, msg, error_r) < 0)
		return -1;
	loadtest_set_message_id(msg, id_right, seq_at);
	return 0;
}

/* the --vars header, for the template's names to be looked up in */
struct lt_header {
	const struct csv_record *rec;
	long addr_col;
	const char *path;
	struct buf missing;	/* the first missing name, said here */
};

/* lt_need - a name the template uses outside sections: in the header? */
static void lt_need(void *ctx, const char *file, const char *name,
		    size_t len, unsigned line, unsigned column)
{
	struct lt_header *h = ctx;

	/* the address: the row's "email" column, or the --to pattern's */
	if (h->missing.len > 0 ||
	    (len == 5 && strncasecmp(name, "email", 5) == 0))
		return;
	for (size_t i = 0; i < h->rec->nfields; i++) {
		const char *p = h->rec->fields[i].ptr;
		size_t plen = h->rec->fields[i].len;

		import_trim(&p, &plen);
		if (plen == len && memcmp(p, name, len) == 0)
			return;
	}
	buf_printf(&h->missing, "%s: the template uses {{", h->path);
	escape_text(&h->missing, name, len, 100);
	buf_printf(&h->missing, "}} (%s:%u:%u) but the file has no such "
		   "column", file, line, column);
}

/*
 * lt_vars_header - check the header row as `volley import` does (a name
 * for every column, no line breaks, none twice, every name the template
 * uses outside sections present), pack the names but the address
 * column's ("email", ignoring case).  Returns that column, -1 for none,
 * or -2 with *error_r.
 */
static long lt_vars_header(const struct lt_opts *o,
			   const struct message_tmpl *mt,
			   const struct csv_record *rec, struct buf *names,
			   const char **error_r)
{
	struct lt_header h = { .rec = rec, .addr_col = -1,
			       .path = o->vars_path, .missing = BUF_INIT };

	vars_pack_begin(names);
	for (size_t i = 0; i < rec->nfields; i++) {
		const char *p;
		size_t len;

		if (import_header_name(rec, i, o->vars_path, &p, &len,
				       error_r) < 0)
			return -2;
		if (h.addr_col < 0 && len == 5 &&
		    strncasecmp(p, "email", 5) == 0) {
			h.addr_col = (long)i;
			continue;
		}
		vars_pack_str(names, p, len);
	}
	message_tmpl_top_names(mt, lt_need, &h);
	if (h.missing.len > 0) {
		errmsg_set(error_r, "%s", buf_cstr(&h.missing));
		h.addr_col = -2;
	}
	buf_free(&h.missing);
	return h.addr_col;
}

/*
 * lt_render_rows - the template once per row of the --vars CSV, into
 * bodies[0 .. *n).  Each rendering gets the row's columns as variables
 * (the "email" column, if any, as the address) and the --to pattern's
 * address for row i in its To: header; the envelope is the pattern's
 * anyway.  A bad row stops the run with file:line:column: a load test
 * with some rows silently left out would not be the content asked for.
 * At most LT_MAX_VARS_ROWS rows and LT_MAX_VARS_BYTES of renderings
 * are kept; a note says when the file had more.
 */
static int lt_render_rows(const struct lt_opts *o,
			  const struct message_tmpl *mt,
			  const char *id_right, struct message_bufs *bufs,
			  struct buf *bodies, struct loadtest_content *contents,
			  size_t *n, const char **error_r)
{
	char to[LOADTEST_MAX_PATTERN + 100];
	struct csv_reader *reader = NULL;
	struct csv_record rec;
	struct csv_error cerr;
	struct buf names = BUF_INIT, vars = BUF_INIT;
	struct vars_data vd;
	enum csv_status cs;
	size_t total = 0;
	long addr_col;
	int fd, ret = -1;

	*n = 0;
	fd = open(o->vars_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errmsg_set(error_r, "%s: %s", o->vars_path, strerror(errno));
		return -1;
	}
	reader = csv_reader_new_fd(fd, NULL);
	cs = csv_read(reader, &rec, &cerr);
	if (cs == CSV_EOF) {
		errmsg_set(error_r, "%s: empty: a header row naming the "
			   "variables is needed", o->vars_path);
		goto out;
	}
	if (cs != CSV_OK) {
		errmsg_set(error_r, "%s:%lu:%lu: in the header row: %s",
			   o->vars_path, cerr.line, cerr.column, cerr.reason);
		goto out;
	}
	addr_col = lt_vars_header(o, mt, &rec, &names, error_r);
	if (addr_col < -1)
		goto out;
	while (*n < LT_MAX_VARS_ROWS && total < LT_MAX_VARS_BYTES &&
	       (cs = csv_read(reader, &rec, &cerr)) != CSV_EOF) {
		const char *addr = to;
		size_t addr_len;

		if (cs != CSV_OK) {
			errmsg_set(error_r, "%s:%lu:%lu: %s", o->vars_path,
				   cerr.line, cerr.column, cerr.reason);
			goto out;
		}
		loadtest_format(o->to, *n + 1, to, sizeof(to));
		addr_len = strlen(to);
		vars_pack_begin(&vars);
		for (size_t i = 0; i < rec.nfields; i++) {
			if ((long)i == addr_col) {
				addr = rec.fields[i].ptr;
				addr_len = rec.fields[i].len;
				continue;
			}
			vars_pack_str(&vars, rec.fields[i].ptr,
				      rec.fields[i].len);
		}
		/* a CSV row's blob always reads (vars_data_init) */
		vars_data_init(&vd, names.data, names.len, "email", addr,
			       addr_len, vars.data, vars.len);
		if (lt_render_one(mt, &vd.data, to, id_right, bufs,
				  &bodies[*n], &contents[*n].seq_at,
				  error_r) < 0) {
			errmsg_set(error_r, "%s:%lu: %s", o->vars_path,
				   rec.line, *error_r);
			goto out;
		}
		total += bodies[*n].len;
		contents[*n].weight = 1;
		(*n)++;
	}
	if (*n == 0) {
		errmsg_set(error_r, "%s: no rows under the header",
			   o->vars_path);
		goto out;
	}
	if (*n == LT_MAX_VARS_ROWS || total >= LT_MAX_VARS_BYTES) {
		cs = csv_read(reader, &rec, &cerr);
		if (cs != CSV_EOF)
			fprintf(stderr, "volley: note: --vars %s: the first "
				"%zu rows are used (%zu MB of messages)\n",
				o->vars_path, *n, (total + 999999) / 1000000);
	}
	ret = 0;
out:
	csv_reader_free(&reader);
	close(fd);
	buf_free(&names);
	buf_free(&vars);
	return ret;
}

/*
 * lt_render - the template folder's message into bodies[0 .. *n): once
 * with only "email" set, or once per --vars row
 */
static int lt_render(const struct lt_opts *o, const char *id_right,
		     struct buf *bodies, struct loadtest_content *contents,
		     size_t *n)
{
	char email[LOADTEST_MAX_PATTERN + 100];
	struct snapshot snap = { 0 };
	struct message_tmpl *mt = NULL;
	struct message_bufs bufs = { 0 };
	const char *error;
	struct tmpl_data data = {
		.get = lt_vars_get, .list_len = lt_vars_list_len,
		.list_item = lt_vars_list_item,
		.root = { .kind = TMPL_OBJECT }, .ctx = email,
	};
	int ret = -1;

	if (snapshot_read_dir(&snap, o->template_dir, &error) < 0 ||
	    snapshot_load(&snap, &mt, &error) < 0) {
		cli_error("--template %s: %s", o->template_dir, error);
		goto out;
	}
	if (o->vars_path != NULL) {
		if (lt_render_rows(o, mt, id_right, &bufs, bodies, contents, n,
				   &error) < 0) {
			cli_error("--vars %s", error);
			goto out;
		}
	} else {
		loadtest_format(o->to, 1, email, sizeof(email));
		if (lt_render_one(mt, &data, email, id_right, &bufs,
				  &bodies[0], &contents[0].seq_at,
				  &error) < 0) {
			cli_error("--template %s: %s", o->template_dir,
				  error);
			goto out;
		}
		contents[0].weight = 1;
		*n = 1;
	}
	ret = 0;
out:
	message_tmpl_free(&mt);
	snapshot_free(&snap);
	message_bufs_free(&bufs);
	return ret;
}

/* --- the report ----------------------------------------------------------- */

static double lt_ms(uint64_t us)
{
	return (double)us / 1000.0;
}

/* lt_describe_sizes - "4096 bytes" or "2048:60,16384:30 bytes" */
static void lt_describe_sizes(const struct lt_opts *o,
			      const struct loadtest_params *p, struct buf *b)
{
	if (o->vars_path != NULL) {
		size_t lo = SIZE_MAX, hi = 0;

		for (size_t i = 0; i < p->ncontents; i++) {
			if (p->contents[i].len < lo)
				lo = p->contents[i].len;
			if (p->contents[i].len > hi)
				hi = p->contents[i].len;
		}
		buf_printf(b, "the template rendered for %zu row%s of %s ",
			   p->ncontents, p->ncontents == 1 ? "" : "s",
			   o->vars_path);
		if (lo == hi)
			buf_printf(b, "(%zu bytes)", lo);
		else
			buf_printf(b, "(%zu-%zu bytes)", lo, hi);
		return;
	}
	if (o->template_dir != NULL) {
		buf_printf(b, "the template's message (%zu bytes)",
			   p->contents[0].len);
		return;
	}
	if (o->nsizes == 1) {
		buf_printf(b, "%zu-byte messages", o->sizes[0]);
		return;
	}
	buf_append_str(b, "messages of ");
	for (size_t i = 0; i < o->nsizes; i++)
		buf_printf(b, "%s%zu:%u", i ? "," : "", o->sizes[i],
			   o->weights[i]);
	buf_append_str(b, " bytes:weight");
}

static void lt_print_codes(const char *title, const uint64_t *codes)
{
	bool any = false;

	printf("%s:", title);
	for (int i = 0; i < LOADTEST_CODES; i++) {
		if (codes[i] == 0)
			continue;
		printf(" %d x%llu", i, (unsigned long long)codes[i]);
		any = true;
	}
	printf("%s\n", any ? "" : " none");
}

static void lt_print(const struct lt_opts *o, const struct loadtest_params *p,
		     const struct loadtest_report *r, double cpu_s)
{
	const struct loadtest_stats *s = &r->s;
	double secs = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
	struct buf b = BUF_INIT;

	lt_describe_sizes(o, p, &b);
	printf("volley loadtest: %s:%s, %s, %u connection%s, %s, %u "
	       "recipient%s each%s\n", o->host, o->port,
	       o->rate > 0 ? "open loop" : "closed loop", o->connections,
	       o->connections == 1 ? "" : "s", buf_cstr(&b), o->recipients,
	       o->recipients == 1 ? "" : "s",
	       o->tls == SMTP_TLS_STARTTLS ? ", STARTTLS" :
	       o->tls == SMTP_TLS_IMPLICIT ? ", implicit TLS" : "");
	buf_free(&b);
	if (o->rate > 0)
		printf("rate %.1f msg/s%s\n", o->rate, o->ramp_s > 0 ?
		       " after the ramp" : "");
	if (r->fatal[0] != '\0')
		printf("GAVE UP: %s\n", r->fatal);
	else if (r->stopped)
		printf("stopped by a signal\n");
	printf("%.3f s: %llu messages handed out, %llu sent, %llu refused, "
	       "%llu lost (%llu in doubt), %llu connection%s\n", r->elapsed_s,
	       (unsigned long long)s->attempted, (unsigned long long)s->sent,
	       (unsigned long long)s->refused, (unsigned long long)s->lost,
	       (unsigned long long)s->in_doubt,
	       (unsigned long long)s->connections,
	       s->connections == 1 ? "" : "s");
	if (s->split > 0)
		printf("the server took fewer recipients than a message has: "
		       "%llu more transactions (counted in sent, refused, "
		       "lost)\n", (unsigned long long)s->split);
	printf("throughput %.1f msg/s sent, %.2f MB/s; client CPU %.2f s, "
	       "%.1f us per message sent\n", (double)s->sent / secs,
	       (double)s->bytes_sent / secs / 1e6, cpu_s,
	       s->sent ? cpu_s * 1e6 / (double)s->sent : 0.0);
	printf("\n%-12s %9s %9s %9s %9s %9s %9s  (ms)\n", "phase", "count",
	       "p50", "p90", "p99", "p99.9", "max");
	for (int i = 0; i < LOADTEST_PHASES; i++) {
		const struct histogram *h = &s->phases[i];

		if (i == LOADTEST_START_LAG && o->rate <= 0)
			continue;
		if (h->count == 0) {
			printf("%-12s %9s\n", loadtest_phase_name(i), "0");
			continue;
		}
		printf("%-12s %9llu %9.3f %9.3f %9.3f %9.3f %9.3f\n",
		       loadtest_phase_name(i), (unsigned long long)h->count,
		       lt_ms(histogram_percentile(h, 50)),
		       lt_ms(histogram_percentile(h, 90)),
		       lt_ms(histogram_percentile(h, 99)),
		       lt_ms(histogram_percentile(h, 99.9)),
		       lt_ms(h->max));
	}
	putchar('\n');
	lt_print_codes("replies (messages)", s->replies);
	lt_print_codes("replies (recipients)", s->rcpt_replies);
	printf("failed connections:");
	for (int i = 1; i < SMTP_CONN_FAILURES; i++)
		printf(" %s %llu", smtp_conn_failure_name(i),
		       (unsigned long long)s->failures[i]);
	printf(" (of %llu)\n", (unsigned long long)s->connections);
	fflush(stdout);
}

/* lt_json_histogram - one phase's object */
static void lt_json_histogram(struct buf *j, const struct histogram *h)
{
	uint64_t value, n;
	size_t i = 0;
	bool first = true;

	buf_printf(j, "{\"count\": %llu, \"min_us\": %llu, \"mean_us\": %.1f, "
		   "\"p50_us\": %llu, \"p90_us\": %llu, \"p99_us\": %llu, "
		   "\"p99_9_us\": %llu, \"max_us\": %llu, \"histogram\": [",
		   (unsigned long long)h->count,
		   (unsigned long long)(h->count ? h->min : 0),
		   histogram_mean(h),
		   (unsigned long long)histogram_percentile(h, 50),
		   (unsigned long long)histogram_percentile(h, 90),
		   (unsigned long long)histogram_percentile(h, 99),
		   (unsigned long long)histogram_percentile(h, 99.9),
		   (unsigned long long)h->max);
	while (histogram_next(h, &i, &value, &n)) {
		buf_printf(j, "%s[%llu, %llu]", first ? "" : ", ",
			   (unsigned long long)value, (unsigned long long)n);
		first = false;
	}
	buf_append_str(j, "]}");
}

static void lt_json_codes(struct buf *j, const uint64_t *codes)
{
	bool first = true;

	buf_putc(j, '{');
	for (int i = 0; i < LOADTEST_CODES; i++) {
		if (codes[i] == 0)
			continue;
		buf_printf(j, "%s\"%d\": %llu", first ? "" : ", ", i,
			   (unsigned long long)codes[i]);
		first = false;
	}
	buf_putc(j, '}');
}

static int lt_json(const struct lt_opts *o, const struct loadtest_params *p,
		   const struct loadtest_report *r, double cpu_s)
{
	const struct loadtest_stats *s = &r->s;
	double secs = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
	struct buf j = BUF_INIT, server = BUF_INIT;
	FILE *f;
	int ret = 0;

	buf_printf(&server, "%s:%s", o->host, o->port);
	buf_append_str(&j, "{\"server\": ");
	jsonw_string(&j, server.data, server.len);
	buf_printf(&j, ", \"mode\": \"%s\", \"connections\": %u, "
		   "\"rate\": %.3f, \"ramp_s\": %.3f, \"count\": %llu, "
		   "\"duration_s\": %.3f, \"recipients\": %u, "
		   "\"tls\": \"%s\", \"pipelining\": %s, \"chunking\": %s, "
		   "\"auth\": %s, \"messages_per_connection\": %u, "
		   "\"sizes\": [",
		   o->rate > 0 ? "open" : "closed", o->connections, o->rate,
		   o->ramp_s, (unsigned long long)o->count, o->duration_s,
		   o->recipients,
		   o->tls == SMTP_TLS_STARTTLS ? "starttls" :
		   o->tls == SMTP_TLS_IMPLICIT ? "implicit" : "none",
		   o->pipelining ? "true" : "false",
		   o->chunking ? "true" : "false",
		   o->user ? "true" : "false", o->per_connection);
	for (size_t i = 0; i < p->ncontents; i++)
		buf_printf(&j, "%s{\"bytes\": %zu, \"weight\": %u}",
			   i ? ", " : "", p->contents[i].len,
			   p->contents[i].weight);
	buf_printf(&j, "], \"elapsed_s\": %.6f, \"finished\": %s, "
		   "\"stopped\": %s, \"fatal\": ", r->elapsed_s,
		   r->finished ? "true" : "false",
		   r->stopped ? "true" : "false");
	if (r->fatal[0] != '\0')
		jsonw_string(&j, r->fatal, strlen(r->fatal));
	else
		buf_append_str(&j, "null");
	buf_printf(&j, ", \"messages\": {\"attempted\": %llu, \"sent\": %llu, "
		   "\"refused\": %llu, \"lost\": %llu, \"in_doubt\": %llu, "
		   "\"split\": %llu}, "
		   "\"bytes_sent\": %llu, \"connections_opened\": %llu, "
		   "\"throughput\": {\"messages_per_s\": %.3f, "
		   "\"bytes_per_s\": %.1f}, \"cpu\": {\"seconds\": %.4f, "
		   "\"us_per_message\": %.3f}, \"phases\": {",
		   (unsigned long long)s->attempted,
		   (unsigned long long)s->sent,
		   (unsigned long long)s->refused,
		   (unsigned long long)s->lost,
		   (unsigned long long)s->in_doubt,
		   (unsigned long long)s->split,
		   (unsigned long long)s->bytes_sent,
		   (unsigned long long)s->connections,
		   (double)s->sent / secs, (double)s->bytes_sent / secs, cpu_s,
		   s->sent ? cpu_s * 1e6 / (double)s->sent : 0.0);
	for (int i = 0; i < LOADTEST_PHASES; i++) {
		buf_printf(&j, "%s\"%s\": ", i ? ", " : "",
			   loadtest_phase_name(i));
		lt_json_histogram(&j, &s->phases[i]);
	}
	buf_append_str(&j, "}, \"replies\": ");
	lt_json_codes(&j, s->replies);
	buf_append_str(&j, ", \"rcpt_replies\": ");
	lt_json_codes(&j, s->rcpt_replies);
	buf_append_str(&j, ", \"errors\": {");
	for (int i = 1; i < SMTP_CONN_FAILURES; i++)
		buf_printf(&j, "%s\"%s\": %llu", i > 1 ? ", " : "",
			   smtp_conn_failure_name(i),
			   (unsigned long long)s->failures[i]);
	buf_append_str(&j, "}}\n");

	f = strcmp(o->json, "-") == 0 ? stdout : fopen(o->json, "w");
	if (f == NULL || fwrite(j.data, 1, j.len, f) != j.len ||
	    (f != stdout ? fclose(f) : fflush(f)) != 0) {
		cli_error("--json %s: %s", o->json, strerror(errno));
		ret = -1;
	}
	buf_free(&j);
	buf_free(&server);
	return ret;
}

/* lt_progress - the line a second on stderr */
static void lt_progress(const struct loadtest_report *r, double *last_t,
			uint64_t *last_sent)
{
	const struct loadtest_stats *s = &r->s;
	double dt = r->elapsed_s - *last_t;
	uint64_t errors = s->refused + s->lost;
	const struct histogram *h = &s->phases[LOADTEST_TRANSACTION];

	for (int i = 1; i < SMTP_CONN_FAILURES; i++)
		errors += s->failures[i];
	fprintf(stderr, "%7.1f s %9.0f msg/s  sent %llu  errors %llu  "
		"p99 %.3f ms\n", r->elapsed_s,
		dt > 0 ? (double)(s->sent - *last_sent) / dt : 0.0,
		(unsigned long long)s->sent, (unsigned long long)errors,
		lt_ms(histogram_percentile(h, 99)));
	*last_t = r->elapsed_s;
	*last_sent = s->sent;
}

/* --- the command ---------------------------------------------------------- */

/*
 * lt_resolve - the server's address, once: connections then time TCP
 * alone, and a name that does not resolve stops the run before it
 * starts.  A name with several addresses (localhost: ::1 and 127.0.0.1)
 * stays a name, so each connection tries them in turn as it would.
 */
static int lt_resolve(const struct lt_opts *o, char *addr, size_t size)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_family = AF_UNSPEC }, *res;
	int rc = getaddrinfo(o->host, o->port, &hints, &res);

	if (rc != 0)
		return cli_error("%s: %s", o->host, gai_strerror(rc)), -1;
	if (res->ai_next != NULL)
		rc = snprintf(addr, size, "%s", o->host) >= (int)size;
	else
		rc = getnameinfo(res->ai_addr, res->ai_addrlen, addr,
				 (socklen_t)size, NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(res);
	if (rc != 0)
		return cli_error("%s: cannot use this name", o->host), -1;
	return 0;
}

/* lt_secrets - the password or XOAUTH2 token the options name; -1 when
 * it cannot be read (said) */
static int lt_secrets(const struct lt_opts *o, char **password, char **token)
{
	const char *env = o->password_env ? o->password_env : o->token_env;
	const char *file = o->password_file ? o->password_file :
			   o->token_file;
	char **secret = o->token_env || o->token_file ? token : password;
	const char *error;

	if (o->user == NULL)
		return 0;
	if (env != NULL) {
		const char *v = getenv(env);

		if (v == NULL || *v == '\0') {
			cli_error("%s %s: the variable is not set",
				  o->password_env ? "--password-env" :
				  "--xoauth2-token-env", env);
			return -1;
		}
		*secret = xstrdup(v);
		return 0;
	}
	if (config_read_secret(file, o->password_file ? "--password-file" :
			       "--xoauth2-token-file", secret, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	return 0;
}

/*
 * lt_messages - the messages to send, into bodies and contents (*n of
 * them): rendered from --template, or made to the --size mix; their
 * Message-IDs end in id_right.  Returns 0, or the exit code (said).
 */
static int lt_messages(const struct lt_opts *o, const char *id_right,
		       struct buf *bodies, struct loadtest_content *contents,
		       size_t *n)
{
	const char *error;

	if (o->template_dir != NULL) {
		if (lt_render(o, id_right, bodies, contents, n) < 0)
			return 1;
	} else {
		char from[LOADTEST_MAX_PATTERN + 100];

		loadtest_format(o->from, 1, from, sizeof(from));
		for (size_t i = 0; i < o->nsizes; i++) {
			if (loadtest_build_message(&bodies[i], o->sizes[i],
						   from, id_right,
						   &contents[i].seq_at,
						   &error) < 0)
				return cli_usage_error("loadtest", "--size: "
						       "%s", error);
			contents[i].weight = o->weights[i];
		}
		*n = o->nsizes;
	}
	for (size_t i = 0; i < *n; i++) {
		contents[i].data = bodies[i].data;
		contents[i].len = bodies[i].len;
	}
	return 0;
}

/* lt_conn_params - the connections' parameters from the options */
static void lt_conn_params(const struct lt_opts *o, const char *addr,
			   const char *helo, struct transport_tls *tls,
			   const char *password, const char *token,
			   struct smtp_conn_params *cp)
{
	int timeout_ms = (int)(o->timeout_s * 1000);

	*cp = (struct smtp_conn_params){
		.transport = { .host = addr, .port = o->port,
			       .tls_name = o->tls_name ? o->tls_name : o->host,
			       .connect_timeout_ms = timeout_ms,
			       .io_timeout_ms = timeout_ms },
		.tls = tls,
		.session = { .helo_name = helo, .pipelining = o->pipelining,
			     .tls = o->tls, .username = o->user,
			     .password = password,
			     .xoauth2_token = token,
			     .allow_plaintext_auth = o->plaintext_auth,
			     .chunking = o->chunking,
			     .max_messages = o->per_connection },
		.greeting_timeout_ms = timeout_ms,
		.command_timeout_ms = timeout_ms,
		.data_end_timeout_ms = timeout_ms,
	};
}

/*
 * lt_watch - until the run ends: a progress line a second, a stop on the
 * first signal, and on the second a report at once and an exit without
 * the threads (they may wait on a silent server)
 */
static void lt_watch(const struct lt_opts *o, const struct loadtest_params *p,
		     struct loadtest *lt, struct loadtest_report *r,
		     double cpu0)
{
	double t0 = clock_mono_s(), last_t = 0, next_tick = 1.0;
	uint64_t last_sent = 0;
	bool stopping = false;

	while (!loadtest_wait(lt, 100)) {
		if (lt_signals > 0 && !stopping) {
			stopping = true;
			loadtest_stop(lt);
			fprintf(stderr, "volley: stopping: the messages in "
				"flight finish (Ctrl-C again to report at "
				"once)\n");
		}
		if (lt_signals > 1) {
			loadtest_report(lt, r, true);
			lt_print(o, p, r, clock_cpu_s() - cpu0);
			if (o->json != NULL)
				lt_json(o, p, r, clock_cpu_s() - cpu0);
			fflush(stdout);
			_exit(1);
		}
		if (!o->quiet && clock_mono_s() - t0 >= next_tick) {
			loadtest_report(lt, r, false);
			lt_progress(r, &last_t, &last_sent);
			while (next_tick <= r->elapsed_s)
				next_tick += 1.0;
		}
	}
}

int cmd_loadtest(struct cli *cli, int argc, char **argv)
{
	struct lt_opts o = {
		.connections = 8, .recipients = 1, .verify = true,
		.pipelining = true, .chunking = false,
		.from = "loadtest@example.com", .to = "rcpt{n}@example.net",
		.timeout_s = LT_DEFAULT_TIMEOUT_S,
		.sizes = { LT_DEFAULT_SIZE }, .weights = { 1 }, .nsizes = 1,
	};
	struct loadtest_content *contents = xcalloc(LT_MAX_CONTENTS,
						     sizeof(*contents));
	struct buf *bodies = xcalloc(LT_MAX_CONTENTS, sizeof(*bodies));
	struct loadtest_params p = { 0 };
	struct loadtest_report *r = NULL;
	struct transport_tls *tls = NULL;
	struct loadtest *lt = NULL;
	struct sigaction sa = { 0 }, old_int, old_term;
	char addr[NI_MAXHOST], helo[256], id_right[400];
	char *password = NULL, *token = NULL;
	const char *at, *error;
	double cpu0;
	int ret = 1;

	(void)cli;
	for (size_t i = 0; i < LT_MAX_CONTENTS; i++)
		bodies[i] = (struct buf)BUF_INIT;
	if (lt_parse(&o, argc, argv) < 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (o.helo != NULL)
		snprintf(helo, sizeof(helo), "%s", o.helo);
	else if (gethostname(helo, sizeof(helo) - 1) < 0 || helo[0] == '\0')
		snprintf(helo, sizeof(helo), "localhost");
	if (lt_secrets(&o, &password, &token) < 0)
		goto out;
	if (o.tls != SMTP_TLS_NONE) {
		struct transport_tls_params tp = { .verify = o.verify,
						   .ca_file = o.ca_file };

		if (transport_tls_new(&tp, &tls, &error) < 0) {
			cli_error("%s", error);
			goto out;
		}
		if (!o.verify)
			fprintf(stderr, "volley: warning: --tls-verify off: "
				"the server's certificate is NOT checked\n");
	}
	if (lt_resolve(&o, addr, sizeof(addr)) < 0)
		goto out;

	/* the messages: Message-IDs unique to this run */
	at = strrchr(o.from, '@');
	snprintf(id_right, sizeof(id_right), "%lx%lx@%s",
		 (unsigned long)time(NULL), (unsigned long)getpid(),
		 at != NULL && strstr(at, "{n}") == NULL ? at + 1 : helo);
	ret = lt_messages(&o, id_right, bodies, contents, &p.ncontents);
	if (ret != 0)
		goto out;
	ret = 1;

	lt_conn_params(&o, addr, helo, tls, password, token, &p.conn);
	p.connections = o.connections;
	p.count = o.count;
	p.duration_us = (uint64_t)(o.duration_s * 1e6);
	p.rate = o.rate;
	p.ramp_us = (uint64_t)(o.ramp_s * 1e6);
	p.recipients = o.recipients;
	p.from = o.from;
	p.to = o.to;
	p.contents = contents;

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		cli_error("out of memory");
		goto out;
	}
	lt_signals = 0;
	sa.sa_handler = lt_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	cpu0 = clock_cpu_s();
	if (loadtest_start(&p, &lt, &error) < 0) {
		cli_error("%s", error);
		goto out_signals;
	}
	lt_watch(&o, &p, lt, r, cpu0);
	loadtest_report(lt, r, true);
	lt_print(&o, &p, r, clock_cpu_s() - cpu0);
	ret = 0;
	if (o.json != NULL && lt_json(&o, &p, r, clock_cpu_s() - cpu0) < 0)
		ret = 1;
	if (r->fatal[0] != '\0') {
		cli_error("%s", r->fatal);
		ret = 1;
	}
out_signals:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
out:
	loadtest_free(&lt);
	transport_tls_free(&tls);
	config_secret_free(&password);
	config_secret_free(&token);
	for (size_t i = 0; i < LT_MAX_CONTENTS; i++)
		buf_free(&bodies[i]);
	free(bodies);
	free(contents);
	free(r);
	free(o.host);
	return ret;
}
