/*
 * cmd_serve - `volley serve [--listen ADDR:PORT]`: the one-click
 * unsubscribe server (engine/serve, docs/unsubscribe.md), and what the
 * commands that render need for {{unsubscribe_url}}.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "message.h"
#include "serve.h"
#include "vars.h"

const char cmd_serve_help[] =
	"usage: volley serve [--listen ADDR:PORT] [--max-connections N]\n"
	"                    [--per-ip N] [--timeout SECONDS]\n"
	"\n"
	"Answer the links {{unsubscribe_url}} gives each recipient\n"
	"(unsubscribe.base_url + /u/TOKEN, see docs/unsubscribe.md):\n"
	"\n"
	"  POST /u/TOKEN  with the body List-Unsubscribe=One-Click (RFC 8058,\n"
	"                 what mail clients send): the recipient is\n"
	"                 suppressed for the campaign's list; 200\n"
	"  GET /u/TOKEN   a page naming the list, with a button that POSTs;\n"
	"                 a GET alone changes nothing\n"
	"\n"
	"A token that this secret (unsubscribe.secret_file) did not make for\n"
	"a recipient in the store gets 404, and nothing is recorded.  Put it\n"
	"behind nginx or Caddy for HTTPS.  One line per request on standard\n"
	"error (the token cut to its ids).  SIGINT or SIGTERM stop it (exit\n"
	"0).\n"
	"\n"
	"  --listen ADDR:PORT     default " SERVE_DEFAULT_LISTEN
	" ([::1]:8025 for IPv6)\n"
	"  --max-connections N    at most N connections at once (256)\n"
	"  --per-ip N             at most N from one client address (32;\n"
	"                         0: no cap; behind a proxy every\n"
	"                         connection is the proxy's)\n"
	"  --timeout SECONDS      close a connection idle this long (10)\n";

static atomic_bool serve_stop;

static void serve_on_signal(int sig)
{
	(void)sig;
	atomic_store(&serve_stop, true);
}

/* serve_log_line - a request's line on stderr, with the time */
static void serve_log_line(void *ctx, const char *line)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	(void)ctx;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "volley serve: %s %s\n", when, line);
}

static void serve_ready(void *ctx, const char *addr)
{
	(void)ctx;
	fprintf(stderr, "volley serve: listening on http://%s\n", addr);
}

/* serve_number - an option's value in [0, max]; -1 if not */
static long serve_number(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > max)
		return -1;
	return v;
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "max-connections", required_argument, NULL, 'm' },
		{ "per-ip", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_params sp = {
		.listen = SERVE_DEFAULT_LISTEN, .max_connections = 256,
		.per_ip = 32, .timeout_s = 10, .stop = &serve_stop,
		.log = serve_log_line, .ready = serve_ready,
	};
	char *secret = NULL, host[256];
	struct sigaction sa;
	const char *error;
	unsigned port;
	long v;
	int c, ret;

	while ((c = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (!serve_parse_listen(optarg, host, sizeof(host),
						&port))
				return cli_usage_error("serve", "--listen "
						       "takes ADDR:PORT, like "
						       "127.0.0.1:8025");
			sp.listen = optarg;
			break;
		case 'm':
		case 'p':
		case 't':
			v = serve_number(optarg, c == 't' ? 3600 : 100000);
			if (v < 0 || (v == 0 && c != 'p'))
				return cli_usage_error("serve", "--%s takes "
						       "a number%s",
						       c == 'm' ?
						       "max-connections" :
						       c == 'p' ? "per-ip" :
						       "timeout",
						       c == 'p' ? "" :
						       " above 0");
			if (c == 'm')
				sp.max_connections = (unsigned)v;
			else if (c == 'p')
				sp.per_ip = (unsigned)v;
			else
				sp.timeout_s = (unsigned)v;
			break;
		default:
			return cli_usage_error("serve", "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error("serve", "serve takes no arguments");
	if (cli_config(cli) < 0)
		return 1;
	if (config_unsubscribe_secret(&cli->cfg, "volley serve", &secret,
				      &error) < 0)
		return cli_error("%s", error);
	sp.store_path = cli->cfg.store_path;
	/* the one thread answers every client: a store locked by a send
	 * is waited for briefly, then the client is told to retry (503) */
	sp.store.busy_timeout_ms = cli->cfg.store_busy_timeout_ms < 1000 ?
				   cli->cfg.store_busy_timeout_ms : 1000;
	sp.secret = secret;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = serve_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	ret = serve_run(&sp, &error);
	if (ret < 0)
		cli_error("serve: %s", error);
	else
		fprintf(stderr, "volley serve: stopped\n");
	config_secret_free(&secret);
	return ret < 0 ? 1 : 0;
}

/* --- {{unsubscribe_url}} for the commands that render ------------------ */

static void serve_find_name(void *ctx, const struct tmpl_name *n)
{
	bool *uses = ctx;

	if (n->len == sizeof(VARS_UNSUBSCRIBE_URL_NAME) - 1 &&
	    memcmp(n->name, VARS_UNSUBSCRIBE_URL_NAME, n->len) == 0)
		*uses = true;
}

bool cli_tmpl_uses_unsubscribe_url(const struct message_tmpl *mt)
{
	bool uses = false;

	if (mt != NULL)
		message_tmpl_names(mt, serve_find_name, &uses);
	return uses;
}

int cli_unsubscribe_secret(struct cli *cli, bool uses, const char *what,
			   char **secret_r)
{
	const char *error;

	*secret_r = NULL;
	if (cli_config(cli) < 0)
		return -1;
	if (cli->cfg.unsubscribe.base_url == NULL) {
		if (!uses)
			return 0;
		cli_error("%s: the template uses {{unsubscribe_url}}: set "
			  "unsubscribe.base_url and unsubscribe.secret_file "
			  "in %s (see docs/unsubscribe.md)", what,
			  cli->cfg.file ? cli->cfg.file :
			  CONFIG_DEFAULT_FILE);
		return -1;
	}
	if (config_unsubscribe_secret(&cli->cfg, "{{unsubscribe_url}}",
				      secret_r, &error) < 0) {
		cli_error("%s: %s", what, error);
		return -1;
	}
	return 0;
}
