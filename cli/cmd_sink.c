/*
 * cmd_sink - `volley sink`: the SMTP test server (engine/sink/sink.h) run from
 * the command line, until SIGINT or SIGTERM.
 *
 * Its first output is one line per listener on stdout, flushed, so a
 * script can wait for it and read the port:
 *
 *   volley sink: listening on 127.0.0.1:40313
 *
 * On SIGINT/SIGTERM it closes every connection, prints the totals on
 * stderr and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "sink.h"
#include "xalloc.h"

const char cmd_sink_help[] =
	"usage: volley sink [--listen ADDR:PORT]... [--implicit-tls ADDR:PORT]...\n"
	"                   [--tls-cert FILE --tls-key FILE] [--auth USER:PASS]\n"
	"                   [--maildir DIR] [--faults FILE] [--log FILE] [options]\n"
	"\n"
	"An SMTP server for tests, benchmarks and trying a client out: PIPELINING,\n"
	"CHUNKING, 8BITMIME, SMTPUTF8, SIZE, STARTTLS, implicit TLS, AUTH PLAIN and\n"
	"LOGIN, LIMITS, and scripted faults.  Without --maildir it discards every\n"
	"message (fast enough to measure a client).  Only ever use it on addresses\n"
	"you control.  It prints one line per listener, then runs until SIGINT or\n"
	"SIGTERM, when it prints the totals and exits 0.\n"
	"\n"
	"  --listen ADDR:PORT      a plaintext listener (STARTTLS if TLS is set);\n"
	"                          repeatable; default 127.0.0.1:2525; IPv6 as\n"
	"                          [::1]:PORT; port 0 picks a free port\n"
	"  --implicit-tls ADDR:PORT  a listener that speaks TLS from the first byte\n"
	"  --tls-cert FILE         PEM certificate (chain) for STARTTLS and\n"
	"  --tls-key FILE          implicit TLS, and its key\n"
	"  --no-starttls           do not offer STARTTLS\n"
	"  --auth USER:PASS        AUTH PLAIN, LOGIN and XOAUTH2 (PASS as the\n"
	"                          token) with these credentials;\n"
	"                          MAIL before AUTH gets 530 5.7.0.  With TLS set,\n"
	"                          AUTH is offered only under TLS, unless\n"
	"  --auth-plaintext        AUTH without TLS too\n"
	"  --maildir DIR           store each accepted message, byte for byte, as\n"
	"                          DIR/new/NAME (written to DIR/tmp first)\n"
	"  --log FILE              one JSON line per transaction (appended)\n"
	"  --faults FILE           scripted faults (below)\n"
	"  --hostname NAME         the name in the greeting and EHLO reply\n"
	"  --size N                offer SIZE N and refuse bigger messages with\n"
	"                          552 5.3.4\n"
	"  --limits RCPTMAX=N,MAILMAX=M  offer and enforce RFC 9422 LIMITS: RCPT\n"
	"                          over N gets 452 4.5.3; MAIL over M per\n"
	"                          connection gets 421 4.5.3 and a close\n"
	"  --no-pipelining, --no-chunking, --no-smtputf8, --no-8bitmime\n"
	"                          do not offer that extension; without\n"
	"                          PIPELINING a command sent before the previous\n"
	"                          reply gets 554 5.5.0 (improper pipelining) and\n"
	"                          the connection is closed\n"
	"  --timeout SECONDS       idle time before a connection is dropped (300)\n"
	"  -q, --quiet             no line per connection on stderr\n"
	"\n"
	"Faults file: one rule per line ('#' lines and blank lines ignored),\n"
	"the first rule that matches a command wins:\n"
	"\n"
	"  COMMAND [CONDITION...] [delay MS] [ACTION]\n"
	"\n"
	"  COMMAND    greeting ehlo helo starttls auth mail rcpt data bdat message\n"
	"             rset noop quit  (data: the reply to DATA itself; message:\n"
	"             the verdict after DATA's dot or BDAT LAST; bdat: a chunk's)\n"
	"  CONDITION  GLOB     address pattern (* ?, case ignored, <> = null\n"
	"                      sender): sender for mail, recipient for rcpt, any\n"
	"                      accepted recipient for data, bdat, message\n"
	"             msg=N    the Nth transaction on the connection\n"
	"             conn=N   the Nth connection\n"
	"  ACTION     CODE [X.Y.Z] [TEXT]  this reply instead (421 also closes)\n"
	"             silent          never reply again, keep the connection\n"
	"             malformed [TEXT]  a bad reply line (default \"2x0 ...\")\n"
	"             overlong [N]    the reply padded to N bytes (3000)\n"
	"             drop [N]        close instead of replying; for data, bdat\n"
	"                             and message: after N bytes of content\n"
	"  delay MS alone delays the normal reply.\n"
	"\n"
	"  close-after N [CODE [X.Y.Z] [TEXT]]  after N messages the next MAIL gets\n"
	"                                    421 (or CODE) and the connection ends\n"
	"  starttls-inject TEXT  plaintext sent right behind the 220 to STARTTLS\n"
	"\n"
	"Examples:\n"
	"  rcpt *@defer.test 451 4.3.0 try again later\n"
	"  mail <> 550 5.7.1 no bounces here\n"
	"  message *@spam.test 554 5.7.1 content refused\n"
	"  message msg=2 drop 100\n"
	"  data 354 go ahead        (354 even when every recipient was refused)\n"
	"  ehlo 502 5.5.1 try HELO\n"
	"  rcpt *@slow.test delay 2000\n"
	"  quit silent\n"
	"  close-after 10\n"
	"  starttls-inject 250 injected\n"
	"\n"
	"See docs/sink.md for the log's fields and more.\n";

static struct sink *sink_running;

static void cmd_sink_signal(int sig)
{
	(void)sig;
	if (sink_running != NULL)
		sink_stop(sink_running);
}

static void cmd_sink_notify(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "volley sink: %s\n", line);
}

/* cmd_sink_number - a decimal from 1 to max, or 0 */
static uint64_t cmd_sink_number(const char *s, uint64_t max)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > max)
		return 0;
	return v;
}

/* cmd_sink_limits - "RCPTMAX=n,MAILMAX=m" (either or both) */
static int cmd_sink_limits(const char *arg, struct sink_params *p)
{
	char copy[128], *tok, *save = NULL;

	if (strlen(arg) >= sizeof(copy))
		return -1;
	strcpy(copy, arg);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned *v;

		if (strncasecmp(tok, "RCPTMAX=", 8) == 0)
			v = &p->rcptmax;
		else if (strncasecmp(tok, "MAILMAX=", 8) == 0)
			v = &p->mailmax;
		else
			return -1;
		*v = (unsigned)cmd_sink_number(tok + 8, 999999);
		if (*v == 0)
			return -1;
	}
	return p->rcptmax > 0 || p->mailmax > 0 ? 0 : -1;
}

/* What the command line says, beyond the sink's own configuration. */
struct cmd_sink_opts {
	const char *faults_path;
	char *auth;		/* "USER:PASS", split in place */
	bool no_starttls;
	bool quiet;
};

/*
 * cmd_sink_parse - the options into cfg and o; 0, or the exit code of a
 * usage error
 */
static int cmd_sink_parse(int argc, char **argv, struct sink_config *cfg,
			  struct cmd_sink_opts *o)
{
	enum {
		OPT_IMPLICIT = 256, OPT_CERT, OPT_KEY, OPT_AUTH,
		OPT_AUTH_PLAIN, OPT_MAILDIR, OPT_FAULTS, OPT_HOSTNAME,
		OPT_SIZE, OPT_LIMITS, OPT_LOG, OPT_NO_PIPELINING,
		OPT_NO_CHUNKING, OPT_NO_STARTTLS, OPT_NO_SMTPUTF8,
		OPT_NO_8BITMIME, OPT_TIMEOUT,
	};
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "implicit-tls", required_argument, NULL, OPT_IMPLICIT },
		{ "tls-cert", required_argument, NULL, OPT_CERT },
		{ "tls-key", required_argument, NULL, OPT_KEY },
		{ "auth", required_argument, NULL, OPT_AUTH },
		{ "auth-plaintext", no_argument, NULL, OPT_AUTH_PLAIN },
		{ "maildir", required_argument, NULL, OPT_MAILDIR },
		{ "faults", required_argument, NULL, OPT_FAULTS },
		{ "hostname", required_argument, NULL, OPT_HOSTNAME },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "limits", required_argument, NULL, OPT_LIMITS },
		{ "log", required_argument, NULL, OPT_LOG },
		{ "no-pipelining", no_argument, NULL, OPT_NO_PIPELINING },
		{ "no-chunking", no_argument, NULL, OPT_NO_CHUNKING },
		{ "no-starttls", no_argument, NULL, OPT_NO_STARTTLS },
		{ "no-smtputf8", no_argument, NULL, OPT_NO_SMTPUTF8 },
		{ "no-8bitmime", no_argument, NULL, OPT_NO_8BITMIME },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct sink_params *p = &cfg->proto;
	int c;

	p->pipelining = p->chunking = p->smtputf8 = p->eightbitmime = true;
	while ((c = getopt_long(argc, argv, "l:q", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
		case OPT_IMPLICIT:
			if ((c == 'l' ? cfg->nlisten : cfg->nimplicit) ==
			    SINK_LISTENERS_MAX)
				return cli_usage_error("sink", "at most %d "
						       "listeners of a kind",
						       SINK_LISTENERS_MAX);
			if (c == 'l')
				cfg->listen[cfg->nlisten++] = optarg;
			else
				cfg->implicit_tls[cfg->nimplicit++] = optarg;
			break;
		case OPT_CERT:
			cfg->tls_cert = optarg;
			break;
		case OPT_KEY:
			cfg->tls_key = optarg;
			break;
		case OPT_AUTH:
			free(o->auth);
			o->auth = xstrdup(optarg);
			if (strchr(o->auth, ':') == NULL ||
			    o->auth[0] == ':')
				return cli_usage_error("sink", "--auth takes "
						       "USER:PASS");
			break;
		case OPT_AUTH_PLAIN:
			p->auth_plaintext = true;
			break;
		case OPT_MAILDIR:
			cfg->maildir = optarg;
			break;
		case OPT_FAULTS:
			o->faults_path = optarg;
			break;
		case OPT_HOSTNAME:
			if (optarg[0] == '\0' || strpbrk(optarg, " \r\n\t"))
				return cli_usage_error("sink", "--hostname "
						       "takes one word");
			p->hostname = optarg;
			break;
		case OPT_SIZE:
			p->size_max = cmd_sink_number(optarg, UINT64_MAX / 2);
			if (p->size_max == 0)
				return cli_usage_error("sink", "--size takes a "
						       "number of bytes "
						       "above 0");
			break;
		case OPT_LIMITS:
			if (cmd_sink_limits(optarg, p) < 0)
				return cli_usage_error("sink", "--limits takes "
						       "RCPTMAX=N,MAILMAX=M "
						       "(either or both, "
						       "above 0)");
			break;
		case OPT_LOG:
			cfg->log_path = optarg;
			break;
		case OPT_NO_PIPELINING:
			p->pipelining = false;
			break;
		case OPT_NO_CHUNKING:
			p->chunking = false;
			break;
		case OPT_NO_STARTTLS:
			o->no_starttls = true;
			break;
		case OPT_NO_SMTPUTF8:
			p->smtputf8 = false;
			break;
		case OPT_NO_8BITMIME:
			p->eightbitmime = false;
			break;
		case OPT_TIMEOUT:
			cfg->idle_timeout_s = (int)cmd_sink_number(optarg,
								   86400);
			if (cfg->idle_timeout_s == 0)
				return cli_usage_error("sink", "--timeout "
						       "takes seconds, 1 to "
						       "86400");
			break;
		case 'q':
			o->quiet = true;
			break;
		default:
			return cli_usage_error("sink", "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error("sink", "sink takes no arguments");
	return 0;
}

/* cmd_sink_complete - what the options left unsaid */
static void cmd_sink_complete(struct sink_config *cfg,
			      const struct cmd_sink_opts *o, char *host,
			      size_t hostsize)
{
	struct sink_params *p = &cfg->proto;

	if (cfg->nlisten == 0 && cfg->nimplicit == 0)
		cfg->listen[cfg->nlisten++] = "127.0.0.1:2525";
	if (o->auth != NULL) {
		char *colon = strchr(o->auth, ':');

		*colon = '\0';
		p->auth_user = o->auth;
		p->auth_pass = colon + 1;
	}
	if (p->hostname == NULL) {
		if (gethostname(host, hostsize) < 0 || host[0] == '\0')
			snprintf(host, hostsize, "volley-sink");
		host[hostsize - 1] = '\0';
		p->hostname = host;
	}
	p->tls_configured = cfg->tls_cert != NULL;
	p->starttls = p->tls_configured && !o->no_starttls;
	p->store = cfg->maildir != NULL;
	p->log = cfg->log_path != NULL;
	cfg->notify = cmd_sink_notify;
	cfg->verbose = !o->quiet;
}

/* cmd_sink_totals - the last line: what the sink took */
static void cmd_sink_totals(const struct sink *sink)
{
	struct sink_totals t;

	sink_totals(sink, &t);
	fprintf(stderr, "volley sink: %" PRIu64 " connections, %" PRIu64
		" messages, %" PRIu64 " recipients, %" PRIu64 " bytes",
		t.connections, t.messages, t.recipients, t.bytes);
	if (t.refused > 0)
		fprintf(stderr, ", %" PRIu64 " refused", t.refused);
	if (t.improper > 0)
		fprintf(stderr, ", %" PRIu64 " with improper pipelining",
			t.improper);
	fputc('\n', stderr);
}

int cmd_sink(struct cli *cli, int argc, char **argv)
{
	struct sink_config cfg = { 0 };
	struct cmd_sink_opts o = { 0 };
	struct sink_faults *faults = NULL;
	struct sink *sink = NULL;
	struct sigaction sa = { 0 };
	const char *err = NULL;
	char host[256];
	int ret;

	(void)cli;
	ret = cmd_sink_parse(argc, argv, &cfg, &o);
	if (ret != 0) {
		free(o.auth);
		return ret;
	}
	ret = 1;
	cmd_sink_complete(&cfg, &o, host, sizeof(host));
	if (o.faults_path != NULL &&
	    sink_faults_load(o.faults_path, &faults, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	cfg.proto.faults = faults;
	if (sink_open(&cfg, &sink, &err) < 0) {
		cli_error("sink: %s", err);
		goto out;
	}
	sink_running = sink;
	sa.sa_handler = cmd_sink_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (size_t i = 0; sink_listener_name(sink, i) != NULL; i++)
		printf("volley sink: listening on %s\n",
		       sink_listener_name(sink, i));
	fflush(stdout);

	ret = sink_run(sink, &err) < 0 ? 1 : 0;
	if (ret != 0)
		cli_error("sink: %s", err);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sink_running = NULL;
	cmd_sink_totals(sink);
out:
	sink_free(&sink);
	sink_faults_free(&faults);
	free(o.auth);
	return ret;
}
