/*
 * cmd_send - `volley send CAMPAIGN...`: deliver every due recipient of
 * the campaigns through the configured relay (engine/send/send.h does the
 * work), with a progress line, a summary, and signals that stop it
 * without losing anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce_rules.h"
#include "buf.h"
#include "cli.h"
#include "dkim.h"
#include "escape.h"
#include "relay.h"
#include "send.h"
#include "snapshot.h"
#include "store.h"
#include "xalloc.h"

const char cmd_send_help[] =
	"usage: volley send CAMPAIGN... [--connections N] [--rate R]\n"
	"                   [--follow] [--quiet]\n"
	"\n"
	"Deliver every due recipient of the campaigns through the relay in\n"
	"the smtp group of volley.cfg: N connections (default\n"
	"smtp.connections), each rendering its recipients' messages and\n"
	"pipelining them; results are committed to the store as they come.\n"
	"\n"
	"  --connections N  parallel connections to the relay\n"
	"  --rate R         at most R messages per second; also \"R/s\",\n"
	"                   \"R/m\" or \"R/h\" (default send.rate_per_second,\n"
	"                   send.rate_per_hour)\n"
	"  --follow         keep running: deliver jobs added later (by\n"
	"                   `volley import` from another process) within a\n"
	"                   second, until stopped\n"
	"  --quiet          no progress line\n"
	"\n"
	"A 2xx to the end of a message makes a recipient sent; a 4xx (or a\n"
	"lost connection) defers it, to be tried again after a growing\n"
	"delay (send.retry); a 5xx fails it.  The run ends when nothing is\n"
	"due and nothing is in flight: run it again later for the deferred.\n"
	"\n"
	"Ctrl-C (SIGINT) or SIGTERM stops claiming, lets the messages in\n"
	"flight finish (at most send.stop_timeout seconds), records every\n"
	"result and gives the untried recipients back; a second signal\n"
	"exits at once.  After a crash or kill -9, the next `volley send`\n"
	"takes back what the dead run held: those recipients are tried\n"
	"again (one may get the message twice if the server took it just\n"
	"before the crash).\n"
	"\n"
	"Exit status: 0 when the run ended (whatever the recipients'\n"
	"fates; see `volley status` and `volley report`), 1 when it had to\n"
	"stop (credentials refused, certificate, relay unreachable), 130\n"
	"when stopped by SIGINT (Ctrl-C) and 143 by SIGTERM; it then says\n"
	"how many recipients remain for the next run.\n";

static atomic_bool send_stop;
static atomic_int send_signal;	/* the first that stopped the run */

static void send_on_signal(int sig)
{
	int saved = errno;

	static const char msg[] = "\nvolley: stopping: finishing the messages "
				  "in flight (again to quit at once)\n";

	if (atomic_exchange(&send_stop, true)) {
		/* the second signal: leases expire, the next run goes on */
		_exit(128 + sig);
	}
	atomic_store(&send_signal, sig);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do: we are stopping anyway */
	}
	errno = saved;
}

struct send_progress {
	bool tty;
	bool quiet;
	int64_t last_ms;
};

/* send_fmt_duration - "1:02:03" or "4:05" */
static void send_fmt_duration(char *dst, size_t size, int64_t ms)
{
	int64_t s = ms / 1000;

	if (s >= 3600)
		snprintf(dst, size, "%lld:%02lld:%02lld", (long long)(s / 3600),
			 (long long)(s / 60 % 60), (long long)(s % 60));
	else
		snprintf(dst, size, "%lld:%02lld", (long long)(s / 60),
			 (long long)(s % 60));
}

/* send_notice - a line from the run while it goes on (send_params.notice):
 * whole lines, so that threads' lines never mix */
static void send_notice(void *ctx, const char *line)
{
	(void)ctx;
	cli_error("%s", line);
}

static void send_progress_line(void *ctx, const struct send_stats *st,
			       bool last)
{
	struct send_progress *pr = ctx;
	uint64_t done = st->sent + st->deferred + st->failed;
	double rate = st->elapsed_ms > 0 ?
		      (double)done * 1000.0 / (double)st->elapsed_ms : 0;
	char eta[32] = "-";

	if (pr->quiet)
		return;
	if (!pr->tty && !last && st->elapsed_ms - pr->last_ms < 5000)
		return;
	pr->last_ms = st->elapsed_ms;
	if (rate > 0 && st->remaining > 0)
		send_fmt_duration(eta, sizeof(eta),
				  (int64_t)((double)st->remaining / rate *
					    1000.0));
	fprintf(stderr, "%ssent %llu  deferred %llu  failed %llu  "
		"remaining %lld  %.0f msg/s  ETA %s%s",
		pr->tty ? "\r" : "", (unsigned long long)st->sent,
		(unsigned long long)st->deferred,
		(unsigned long long)st->failed, (long long)st->remaining,
		rate, eta, pr->tty ? "\033[K" : "\n");
	if (pr->tty && last)
		fputc('\n', stderr);
}

/* send_summary - what happened, and where the time went */
static void send_summary(const struct send_stats *st)
{
	uint64_t done = st->sent + st->deferred + st->failed;
	struct buf shown = BUF_INIT;
	char elapsed[32];
	double secs = (double)st->elapsed_ms / 1000.0;

	send_fmt_duration(elapsed, sizeof(elapsed), st->elapsed_ms);
	printf("sent %llu, deferred %llu, failed %llu in %s (%.2f s, "
	       "%.0f messages/s) over %llu connection%s\n",
	       (unsigned long long)st->sent, (unsigned long long)st->deferred,
	       (unsigned long long)st->failed, elapsed, secs,
	       secs > 0 ? (double)done / secs : 0.0,
	       (unsigned long long)st->connections,
	       st->connections == 1 ? "" : "s");
	if (st->suppressed > 0)
		printf("not sent, suppressed since their import: %llu "
		       "(`volley report CAMPAIGN --state suppressed`)\n",
		       (unsigned long long)st->suppressed);
	if (st->reclaimed > 0)
		printf("taken back from an earlier run that did not finish: "
		       "%llu\n", (unsigned long long)st->reclaimed);
	if (st->remaining > 0)
		printf("still due or deferred: %lld (run `volley send` again "
		       "later for them)\n", (long long)st->remaining);
	if (st->pipelining_off)
		printf("the server's replies went out of step once: "
		       "pipelining was turned off for the rest of the run\n");
	if (st->learned_cap > 0)
		printf("the relay closed connections with 421 after %u "
		       "messages: the run sent at most %u per connection from "
		       "then on\n", st->learned_cap, st->learned_cap);
	for (int i = 0; i < SEND_TOP_REASONS; i++) {
		if (st->top[i].count == 0)
			continue;
		if (i == 0)
			printf("most frequent reasons (deferred or failed):\n");
		buf_reset(&shown);
		escape_text(&shown, st->top[i].reply,
			    strlen(st->top[i].reply), sizeof(st->top[i].reply));
		printf("  %6llu  %s\n", (unsigned long long)st->top[i].count,
		       buf_cstr(&shown));
	}
	printf("time spent, summed over connections: waiting for replies "
	       "%.1f s, connecting/TLS/AUTH %.1f s, rendering %.1f s, rate "
	       "limit %.1f s; committing to the store %.1f s\n",
	       (double)st->server_wait_ms / 1000.0,
	       (double)st->connect_ms / 1000.0,
	       (double)st->render_ms / 1000.0,
	       (double)st->rate_wait_ms / 1000.0,
	       (double)st->commit_ms / 1000.0);
	buf_free(&shown);
}

/*
 * send_interrupted - after a signal: say what remains and exit 128 +
 * the signal (130 for SIGINT, 143 for SIGTERM), so that a script can
 * tell a stopped run from a finished one; else ret
 */
static int send_interrupted(const struct send_stats *st, int ret)
{
	int sig = atomic_load(&send_signal);

	if (!atomic_load(&send_stop) || sig == 0)
		return ret;
	fflush(stdout);
	fprintf(stderr, "volley: stopped by %s: %lld recipient%s remain "
		"(queued or deferred); `volley send` goes on with them\n",
		sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" :
		"a signal", (long long)st->remaining,
		st->remaining == 1 ? "" : "s");
	return 128 + sig;
}

/* send_parse_rate - "R", "R/s", "R/m", "R/h" into per second/hour */
static int send_parse_rate(const char *s, double *per_s, double *per_h)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || !(v > 0) || !isfinite(v))
		return -1;
	if (*end == '\0' || strcmp(end, "/s") == 0) {
		*per_s = v;
	} else if (strcmp(end, "/m") == 0) {
		*per_s = v / 60.0;
	} else if (strcmp(end, "/h") == 0) {
		*per_h = v;
	} else {
		return -1;
	}
	return 0;
}

struct send_loaded {
	struct send_campaign *c;
	char **names, **senders;
	struct message_tmpl **tmpls;
	size_t n;
};

static void send_loaded_free(struct send_loaded *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->c[i].files_fd >= 0)
			close(l->c[i].files_fd);
		free(l->names[i]);
		free(l->senders[i]);
		message_tmpl_free(&l->tmpls[i]);
	}
	free(l->c);
	free(l->names);
	free(l->senders);
	free(l->tmpls);
}

/* send_load - each campaign's id, sender and compiled template */
static int send_load(struct store *st, char **names, size_t n,
		     struct send_loaded *l)
{
	const char *err = NULL;
	int ret = -1;

	l->c = xcalloc(n, sizeof(*l->c));
	l->names = xcalloc(n, sizeof(*l->names));
	l->senders = xcalloc(n, sizeof(*l->senders));
	l->tmpls = xcalloc(n, sizeof(*l->tmpls));
	for (size_t i = 0; i < n; i++)
		l->c[i].files_fd = -1;
	for (size_t i = 0; i < n; i++) {
		struct store_campaign c;
		struct snapshot snap = { 0 };
		const char *error;
		int found;

		l->n = i + 1;
		found = store_campaign_get(st, names[i], &c, &error);
		if (found <= 0) {
			if (found < 0)
				cli_error("%s", error);
			else
				cli_error("no campaign '%s'", names[i]);
			goto out;
		}
		l->names[i] = xstrdup(c.name);
		if (c.sender == NULL || *c.sender == '\0') {
			cli_error("campaign '%s' has no envelope sender (make "
				  "it with `campaign create NAME --from "
				  "ADDR`)", names[i]);
			goto out;
		}
		l->senders[i] = xstrdup(c.sender);
		l->c[i].id = c.id;
		l->c[i].created = c.created_at;
		l->c[i].transactional = c.transactional;
		l->c[i].name = l->names[i];
		l->c[i].sender = l->senders[i];
		l->c[i].verp = strstr(c.sender, MESSAGE_VERP) != NULL;
		if (c.files_dir != NULL) {
			/* held open: attachments are read beneath it */
			l->c[i].files_fd = open(c.files_dir, O_PATH |
						O_DIRECTORY | O_CLOEXEC);
			if (l->c[i].files_fd < 0) {
				cli_error("campaign '%s': files folder %s: %s",
					  names[i], c.files_dir,
					  strerror(errno));
				goto out;
			}
		}
		if (snapshot_read_store(&snap, st, c.id, &err) < 0) {
			cli_error("%s", err);
			goto out;
		}
		if (snap.nfiles == 0) {
			snapshot_free(&snap);
			cli_error("campaign '%s' has no template (create it "
				  "with --template DIR)", names[i]);
			goto out;
		}
		if (snapshot_load(&snap, &l->tmpls[i], &err) < 0) {
			snapshot_free(&snap);
			cli_error("campaign '%s': %s", names[i],
				  err);
			goto out;
		}
		snapshot_free(&snap);
		l->c[i].tmpl = l->tmpls[i];
	}
	ret = 0;
out:
	return ret;
}

/*
 * send_dkim_notice - say once, before sending, which campaigns go out
 * unsigned and why: mailbox providers refuse unsigned bulk mail, and a
 * typo in a dkim domain should not first show in a bounce.
 */
static void send_dkim_notice(const struct send_loaded *l,
			     const struct dkim_keys *keys)
{
	struct buf addr = BUF_INIT;

	for (size_t i = 0; i < l->n; i++) {
		const char *at, *name = l->names[i];
		bool any = false;

		if (dkim_keys_count(keys) == 0) {
			fprintf(stderr, "volley: notice: campaign '%s' goes "
				"out unsigned: volley.cfg has no dkim keys "
				"(`volley dkim keygen` makes one)\n", name);
			continue;
		}
		buf_reset(&addr);
		if (message_tmpl_from_address(l->tmpls[i], &addr) == 0) {
			fprintf(stderr, "volley: notice: campaign '%s': its "
				"From varies by recipient; a message whose "
				"From domain has no dkim key goes out "
				"unsigned\n", name);
			continue;
		}
		at = strrchr(buf_cstr(&addr), '@');
		at = at != NULL ? at + 1 : "";
		for (size_t k = 0; k < dkim_keys_count(keys); k++)
			any |= dkim_keys_match(keys, k, at, strlen(at));
		if (!any)
			fprintf(stderr, "volley: notice: campaign '%s' goes "
				"out unsigned: no dkim key is for its From "
				"domain %s\n", name, at);
	}
	buf_free(&addr);
}

/* What the command line says. */
struct send_opts {
	long connections;	/* 0: smtp.connections */
	double per_s, per_h;	/* -1: send.rate_per_second/_hour */
	bool follow;
	bool quiet;
};

/* send_parse_opts - the options; 0, or the exit code of a usage error */
static int send_parse_opts(int argc, char **argv, struct send_opts *o)
{
	static const struct option opts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "follow", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	*o = (struct send_opts){ .per_s = -1, .per_h = -1 };
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->connections = strtol(optarg, &end, 10);
			if (*end != '\0' || o->connections < 1 ||
			    o->connections > 1024)
				return cli_usage_error("send", "--connections "
						       "takes 1 to 1024");
			break;
		case 'r':
			o->per_s = o->per_h = 0;
			if (send_parse_rate(optarg, &o->per_s, &o->per_h) < 0)
				return cli_usage_error("send", "--rate takes "
						       "R, R/s, R/m or R/h "
						       "with R above 0");
			break;
		case 'f':
			o->follow = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		default:
			return cli_usage_error("send", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("send", "send needs a CAMPAIGN");
	return 0;
}

/* send_retry_policy - send.retry and friends from the configuration */
static void send_retry_policy(const struct config *cfg,
			      struct retry_policy *r)
{
	retry_policy_defaults(r);
	r->first_delay_ms = (int64_t)cfg->send.retry_first_delay * 1000;
	r->max_delay_ms = (int64_t)cfg->send.retry_max_delay * 1000;
	r->factor = cfg->send.retry_backoff_factor;
	r->max_attempts = cfg->send.retry_max_attempts;
	r->max_age_ms = (int64_t)cfg->send.retry_max_age * 1000;
	r->pool_backoff_ms = (int64_t)cfg->send.throttle_backoff * 1000;
	r->hold_in_doubt = cfg->send.in_doubt_hold;
}

/*
 * send_claim_batch - send.batch_size, but under a rate limit no more
 * than half a lease's worth, so no claimed job waits in the queue until
 * its lease expires (and another run takes it too)
 */
static size_t send_claim_batch(const struct config *cfg, double per_s,
			       double per_h)
{
	double lease_s = cfg->send.lease_seconds, cap = 0;
	size_t batch = (size_t)cfg->send.batch_size;

	if (per_s > 0)
		cap = per_s * lease_s / 2;
	if (per_h > 0 && (cap == 0 || per_h * lease_s / 7200 < cap))
		cap = per_h * lease_s / 7200;
	if (cap > 0 && cap < (double)batch)
		batch = cap < 1 ? 1 : (size_t)cap;
	return batch;
}

/* send_params_fill - the run's parameters from the configuration */
static void send_params_fill(const struct config *cfg,
			     const struct send_opts *o,
			     const struct send_loaded *loaded,
			     const struct relay *relay, struct send_params *sp)
{
	sp->store_path = cfg->store_path;
	sp->store.busy_timeout_ms = cfg->store_busy_timeout_ms;
	sp->campaigns = loaded->c;
	sp->ncampaigns = loaded->n;
	sp->conn = relay->params;
	sp->connections = o->connections > 0 ? (unsigned)o->connections :
			  (unsigned)cfg->smtp.connections;
	sp->reconnects_per_second = cfg->smtp.reconnects_per_second;
	send_retry_policy(cfg, &sp->retry);
	sp->claim_batch = send_claim_batch(cfg, o->per_s, o->per_h);
	sp->lease_ms = (int64_t)cfg->send.lease_seconds * 1000;
	sp->commit_interval_ms = cfg->send.commit_interval_ms;
	sp->commit_batch = (size_t)cfg->send.commit_batch;
	sp->stop_timeout_ms = (int64_t)cfg->send.stop_timeout * 1000;
	sp->follow = o->follow;
	sp->stop = &send_stop;
	sp->progress = send_progress_line;
	sp->notice = send_notice;
}

int cmd_send(struct cli *cli, int argc, char **argv)
{
	struct send_progress progress = { .tty = isatty(STDERR_FILENO) };
	struct send_loaded loaded = { 0 };
	struct send_params sp = { 0 };
	struct dkim_keys *keys = NULL;
	struct bounce_rules *rules = NULL;
	char *verp_secret = NULL, *unsub_secret = NULL;
	struct send_stats stats;
	struct send_opts o;
	struct ratelimit_params rp = { 0 };
	struct ratelimit *rate = NULL;
	struct relay relay;
	struct store *st;
	struct sigaction sa;
	const char *error;
	bool relay_open_ok = false;
	FILE *accounting = NULL;
	int ret;

	ret = send_parse_opts(argc, argv, &o);
	if (ret != 0)
		return ret;
	ret = 1;
	progress.quiet = o.quiet;
	if (cli_config(cli) < 0)
		return 1;
	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	if (send_load(st, argv + optind, (size_t)(argc - optind), &loaded)
	    < 0) {
		store_close(&st);
		goto out;
	}
	store_close(&st);
	if (cli_dkim_keys(cli, &keys) < 0)
		goto out;
	send_dkim_notice(&loaded, keys);
	for (size_t i = 0; i < loaded.n && verp_secret == NULL; i++) {
		if (!loaded.c[i].verp)
			continue;
		if (config_verp_secret(&cli->cfg, &verp_secret, &error) < 0) {
			cli_error("campaign '%s': %s", loaded.names[i], error);
			goto out;
		}
	}

	{
		struct buf what = BUF_INIT;
		bool uses = false;

		for (size_t i = 0; i < loaded.n && !uses; i++) {
			uses = cli_tmpl_uses_unsubscribe_url(loaded.c[i].tmpl);
			if (uses)
				buf_printf(&what, "campaign '%s'",
					   loaded.names[i]);
		}
		if (cli_unsubscribe_secret(cli, uses, uses ? buf_cstr(&what) :
					   "send", &unsub_secret) < 0) {
			buf_free(&what);
			goto out;
		}
		buf_free(&what);
	}

	/* permanent replies are bounces too, classified by the same rules */
	if (cli_bounce_rules(cli, &rules) < 0)
		goto out;

	if (relay_open(&cli->cfg, &relay, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	relay_open_ok = true;
	if (relay.warning[0] != '\0')
		fprintf(stderr, "volley: warning: %s\n", relay.warning);

	if (o.per_s < 0) {
		o.per_s = cli->cfg.send.rate_per_second;
		o.per_h = cli->cfg.send.rate_per_hour;
	}
	if (o.per_s > 0 || o.per_h > 0) {
		rp.per_second = o.per_s;
		rp.per_hour = o.per_h;
		rp.burst = (unsigned)cli->cfg.send.rate_burst;
	}
	/* a limiter even without a rate: the pool-wide pause uses it */
	if (ratelimit_new(&rp, &rate, &error) < 0) {
		cli_error("send.rate: %s", error);
		goto out;
	}
	send_params_fill(&cli->cfg, &o, &loaded, &relay, &sp);
	sp.rate = rate;
	sp.dkim = keys;
	sp.verp_secret = verp_secret;
	sp.unsubscribe_secret = unsub_secret;
	sp.unsubscribe_base_url = cli->cfg.unsubscribe.base_url;
	sp.bounce_rules = rules;
	cli_bounce_policy(cli, &sp.bounce_policy);
	sp.progress_ctx = &progress;
	if (cli->cfg.send.accounting_log != NULL) {
		accounting = fopen(cli->cfg.send.accounting_log, "a");
		if (accounting == NULL) {
			cli_error("%s: %s", cli->cfg.send.accounting_log,
				  strerror(errno));
			goto out;
		}
		sp.accounting = accounting;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = send_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (send_run(&sp, &stats, &error) < 0) {
		const char *hint = relay_stop_hint(&cli->cfg, stats.stop_code);

		send_summary(&stats);
		cli_error("%s", error);
		if (hint != NULL)
			cli_error("%s", hint);
		ret = send_interrupted(&stats, 1);
		if (stats.detached) {
			/* workers still use what we would free: leave now */
			fflush(NULL);
			_exit(ret);
		}
		goto out;
	}
	send_summary(&stats);
	ret = send_interrupted(&stats, 0);
out:
	if (accounting != NULL)
		fclose(accounting);
	ratelimit_free(&rate);
	dkim_keys_free(&keys);
	bounce_rules_free(rules);
	config_secret_free(&verp_secret);
	config_secret_free(&unsub_secret);
	if (relay_open_ok)
		relay_close(&relay);
	send_loaded_free(&loaded);
	return ret;
}
