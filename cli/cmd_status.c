/*
 * cmd_status - `volley status [CAMPAIGN] [--json]`: jobs per state.
 *
 * The JSON form is a contract that scripts rely on: an array with one
 * object per campaign and the keys name, queued, sending, sent, deferred,
 * failed and total.  Keys may be added, never renamed.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "jsonw.h"
#include "store.h"

struct status_walk {
	const char *only;	/* campaign name, or NULL for all */
	bool json;
	bool found;
	struct buf out;
	struct buf notes;	/* held in doubt, said under the table */
	struct store *st;
};

static int status_one(void *ctx, const struct store_campaign *c,
		      const struct store_counts *n)
{
	struct status_walk *w = ctx;
	const char *error;
	int64_t held = 0;

	if (w->only != NULL && strcmp(w->only, c->name) != 0)
		return 0;
	if (store_in_doubt(w->st, c->id, STORE_DOUBT_COUNT, 0, &held,
			   &error) < 0)
		held = 0;
	if (held > 0 && !w->json)
		buf_printf(&w->notes, "%s: %lld deferred in doubt, held (the "
			   "server may have taken them): `volley release %s "
			   "--in-doubt` sends them, --drop fails them\n",
			   c->name, (long long)held, c->name);
	if (w->json) {
		buf_append_str(&w->out, w->found ? ",\n  " : "\n  ");
		buf_append_str(&w->out, "{\"name\": ");
		jsonw_string(&w->out, c->name, strlen(c->name));
		buf_printf(&w->out, ", \"queued\": %lld, \"sending\": %lld, "
			   "\"sent\": %lld, \"deferred\": %lld, "
			   "\"failed\": %lld, \"total\": %lld, "
			   "\"in_doubt\": %lld, \"suppressed\": %lld, "
			   "\"list\": ",
			   (long long)n->by_state[JOB_QUEUED],
			   (long long)n->by_state[JOB_SENDING],
			   (long long)n->by_state[JOB_SENT],
			   (long long)n->by_state[JOB_DEFERRED],
			   (long long)n->by_state[JOB_FAILED],
			   (long long)n->total, (long long)held,
			   (long long)n->by_state[JOB_SUPPRESSED]);
		jsonw_string(&w->out, c->list, strlen(c->list));
		buf_printf(&w->out, ", \"transactional\": %s}",
			   c->transactional ? "true" : "false");
	} else {
		buf_printf(&w->out, "%-24s %10lld %10lld %10lld %10lld "
			   "%10lld %10lld %10lld\n", c->name,
			   (long long)n->by_state[JOB_QUEUED],
			   (long long)n->by_state[JOB_SENDING],
			   (long long)n->by_state[JOB_SENT],
			   (long long)n->by_state[JOB_DEFERRED],
			   (long long)n->by_state[JOB_FAILED],
			   (long long)n->total,
			   (long long)n->by_state[JOB_SUPPRESSED]);
	}
	w->found = true;
	return 0;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct status_walk w = { 0 };
	struct store *st;
	const char *error;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_usage_error("status", "bad option");
		w.json = true;
	}
	if (argc - optind > 1)
		return cli_usage_error("status", "status takes at most one "
				       "CAMPAIGN");
	w.only = optind < argc ? argv[optind] : NULL;

	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	w.st = st;
	if (w.json)
		buf_append_str(&w.out, "[");
	else
		buf_printf(&w.out, "%-24s %10s %10s %10s %10s %10s %10s "
			   "%10s\n", "CAMPAIGN", "QUEUED", "SENDING", "SENT",
			   "DEFERRED", "FAILED", "TOTAL", "SUPPRESSED");
	if (store_campaign_foreach(st, status_one, &w, &error) < 0) {
		ret = cli_error("%s", error);
	} else if (w.only != NULL && !w.found) {
		ret = cli_error("no campaign '%s'", w.only);
	} else {
		if (w.json)
			buf_append_str(&w.out, w.found ? "\n]\n" : "]\n");
		else if (w.notes.len > 0)
			buf_append(&w.out, w.notes.data, w.notes.len);
		fwrite(w.out.data, 1, w.out.len, stdout);
	}
	buf_free(&w.out);
	buf_free(&w.notes);
	store_close(&st);
	return ret;
}
