/*
 * cmd_report - `volley report CAMPAIGN [--format csv|json] [--state STATE]
 * [--out FILE]`: one row per recipient with its delivery state and the
 * last reply its server gave.
 *
 * The columns (CSV header names, JSON keys) are a contract that scripts
 * rely on: address, state, attempts, code, enhanced, reply, queue_id,
 * first_attempt, last_attempt, next_attempt.  Columns may be added at the
 * end, never renamed or moved.
 *
 * Streaming: rows go from one SQLite statement straight to the output
 * through one reused line buffer, so memory stays flat whatever the
 * number of recipients.  The statement is one read transaction: the
 * report is a consistent snapshot, and a running send is not held up.
 *
 * Reply text is written by remote servers and must be treated as hostile.
 * Every text field is made valid UTF-8 first (each maximal ill-formed
 * subpart becomes U+FFFD, as Unicode recommends), then escaped for its
 * format, so no reply can end a row, add a field or make the output
 * unparsable:
 *   CSV   RFC 4180: CRLF line ends; a field holding a comma, a quote, or
 *         any control character (CR and LF included) is quoted, with
 *         quotes doubled.  Everything else is written as it is.
 *   JSON  JSON Lines: one object per line; control characters, DEL and
 *         U+2028/U+2029 are written as \u escapes, so a line never holds
 *         a raw line break of any kind.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "rowfmt.h"
#include "store.h"

/* Flush the line buffer to the FILE once it holds this much. */
#define REPORT_FLUSH_AT 65536

enum report_format {
	REPORT_CSV,
	REPORT_JSON,
};

struct report_walk {
	enum report_format format;
	unsigned state_mask;	/* bit per enum job_state; 0: all */
	FILE *out;
	struct buf line;
	int write_errno;	/* set when a write failed */
	int64_t rows;
};

static const char report_columns[] =
	"address,state,attempts,code,enhanced,reply,queue_id,"
	"first_attempt,last_attempt,next_attempt,bounce_class,bounced_at";

const char cmd_report_help[] =
	"usage: volley report CAMPAIGN [--format csv|json] [--state STATE]...\n"
	"                     [--out FILE]\n"
	"\n"
	"One row per recipient of CAMPAIGN, in import order, with its\n"
	"delivery state and the last reply its server gave.  Columns (CSV\n"
	"header names, JSON keys):\n"
	"\n"
	"  address        the recipient\n"
	"  state          queued, sending, sent, deferred, failed or\n"
	"                 suppressed (never sent: the reply says why)\n"
	"  attempts       delivery attempts so far\n"
	"  code           last SMTP reply code (e.g. 550)\n"
	"  enhanced       last enhanced status code (e.g. 5.1.1)\n"
	"  reply          last reply text, or volley's own error\n"
	"  queue_id       the server's queue id, once sent\n"
	"  first_attempt  time of the first attempt\n"
	"  last_attempt   time of the latest attempt\n"
	"  next_attempt   when a deferred recipient is due again\n"
	"  bounce_class   the category of its latest bounce or complaint\n"
	"                 (bad-mailbox, quota-issues, complaint, ...)\n"
	"  bounced_at     when that bounce was recorded\n"
	"\n"
	"Times are RFC 3339 UTC with milliseconds (2026-11-29T07:40:01.123Z).\n"
	"A value that does not exist is an empty field in CSV, null in JSON.\n"
	"\n"
	"  --format csv   (default) RFC 4180 CSV, UTF-8, header row first,\n"
	"                 CRLF line ends; fields with a comma, quote or\n"
	"                 control character (a multi-line reply) are quoted\n"
	"  --format json  JSON Lines (jsonl works too): one object per line,\n"
	"                 no enclosing array, so any size can be streamed\n"
	"  --state STATE  only recipients in STATE; repeat the option or give\n"
	"                 a comma-separated list for several\n"
	"  --out FILE     write to FILE instead of standard output\n"
	"\n"
	"Reply texts come from remote servers: bytes that are not valid\n"
	"UTF-8 are replaced by U+FFFD, and escaping keeps every row intact.\n"
	"The report streams with constant memory and is safe to run while a\n"
	"send is going on (it shows one consistent moment).\n";

static void report_csv_row(struct buf *out, const struct store_report_row *r)
{
	rowfmt_csv_field(out, r->address, true);
	rowfmt_csv_field(out, job_state_name(r->state), false);
	buf_printf(out, ",%d,", r->attempts);
	if (r->last_code > 0)
		buf_printf(out, "%d", r->last_code);
	rowfmt_csv_field(out, r->last_enhanced, false);
	rowfmt_csv_field(out, r->last_reply, false);
	rowfmt_csv_field(out, r->queue_id, false);
	rowfmt_csv_time(out, r->first_attempt_at, r->first_attempt_at != 0);
	rowfmt_csv_time(out, r->last_attempt_at, r->last_attempt_at != 0);
	rowfmt_csv_time(out, r->next_attempt_at, r->state == JOB_DEFERRED);
	rowfmt_csv_field(out, r->bounce_class, false);
	rowfmt_csv_time(out, r->bounced_at, r->bounce_class != NULL);
	buf_append_str(out, "\r\n");
}

static void report_json_row(struct buf *out,
			    const struct store_report_row *r)
{
	buf_append_str(out, "{\"address\":\"");
	rowfmt_text(out, r->address, rowfmt_json_escape);
	buf_printf(out, "\",\"state\":\"%s\",\"attempts\":%d,\"code\":",
		   job_state_name(r->state), r->attempts);
	if (r->last_code > 0)
		buf_printf(out, "%d", r->last_code);
	else
		buf_append_str(out, "null");
	rowfmt_json_member(out, "enhanced", r->last_enhanced);
	rowfmt_json_member(out, "reply", r->last_reply);
	rowfmt_json_member(out, "queue_id", r->queue_id);
	rowfmt_json_time(out, "first_attempt", r->first_attempt_at,
		  r->first_attempt_at != 0);
	rowfmt_json_time(out, "last_attempt", r->last_attempt_at,
		  r->last_attempt_at != 0);
	rowfmt_json_time(out, "next_attempt", r->next_attempt_at,
		  r->state == JOB_DEFERRED);
	rowfmt_json_member(out, "bounce_class", r->bounce_class);
	rowfmt_json_time(out, "bounced_at", r->bounced_at, r->bounce_class != NULL);
	buf_append_str(out, "}\n");
}

/* --- the walk ------------------------------------------------------------ */

/* report_flush - write the line buffer out; false (errno kept) on error */
static bool report_flush(struct report_walk *w)
{
	errno = 0;
	if (w->line.len > 0 &&
	    fwrite(w->line.data, 1, w->line.len, w->out) != w->line.len) {
		w->write_errno = errno != 0 ? errno : EIO;
		return false;
	}
	buf_reset(&w->line);
	return true;
}

static int report_row(void *ctx, const struct store_report_row *r)
{
	struct report_walk *w = ctx;

	if (w->state_mask != 0 && ((unsigned)r->state >= JOB_STATE_COUNT ||
				   !(w->state_mask & (1u << r->state))))
		return 0;
	if (w->format == REPORT_CSV)
		report_csv_row(&w->line, r);
	else
		report_json_row(&w->line, r);
	w->rows++;
	if (w->line.len >= REPORT_FLUSH_AT && !report_flush(w))
		return 1;	/* stop the walk: the output is gone */
	return 0;
}

/*
 * report_parse_states - add the states named in a comma-separated list to
 * *mask; false (with *bad_r naming the culprit) on an unknown one.
 */
static bool report_parse_states(char *list, unsigned *mask,
				const char **bad_r)
{
	char *save = NULL;
	bool any = false;

	for (char *name = strtok_r(list, ",", &save); name != NULL;
	     name = strtok_r(NULL, ",", &save)) {
		enum job_state state;

		if (!job_state_parse(name, &state)) {
			*bad_r = name;
			return false;
		}
		*mask |= 1u << state;
		any = true;
	}
	*bad_r = list;
	return any;
}

static int report_bad_state(const char *name)
{
	struct buf valid = BUF_INIT;
	int ret;

	for (int s = 0; s < JOB_STATE_COUNT; s++)
		buf_printf(&valid, "%s%s", s > 0 ? ", " : "",
			   job_state_name((enum job_state)s));
	ret = cli_usage_error("report", "unknown state '%s' (valid states: "
			      "%s)", name, buf_cstr(&valid));
	buf_free(&valid);
	return ret;
}

int cmd_report(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "state", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct report_walk w = { 0 };
	const char *out_path = NULL, *campaign, *error, *bad = "";
	enum job_state only_state = JOB_QUEUED;
	const enum job_state *only = NULL;
	struct store *st;
	int64_t campaign_id;
	int c, found, ret = 0, walk;

	w.format = REPORT_CSV;
	while ((c = getopt_long(argc, argv, "f:s:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "csv") == 0)
				w.format = REPORT_CSV;
			else if (strcmp(optarg, "json") == 0 ||
				 strcmp(optarg, "jsonl") == 0)
				w.format = REPORT_JSON;
			else
				return cli_usage_error("report", "unknown "
						       "format '%s' (csv or "
						       "json)", optarg);
			break;
		case 's':
			if (!report_parse_states(optarg, &w.state_mask, &bad))
				return report_bad_state(bad);
			break;
		case 'o':
			out_path = optarg;
			break;
		default:
			return cli_usage_error("report", "bad option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("report", "report takes one CAMPAIGN");
	campaign = argv[optind];

	/* One state: let the store filter.  Several: filter here, so the
	   rows stay in import order. */
	for (int s = 0; s < JOB_STATE_COUNT; s++) {
		if (w.state_mask == 1u << s) {
			only_state = (enum job_state)s;
			only = &only_state;
		}
	}

	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	found = store_campaign_find(st, campaign, &campaign_id, &error);
	if (found < 0) {
		ret = cli_error("%s", error);
		goto out_close_store;
	}
	if (found == 0) {
		ret = cli_error("no campaign '%s'", campaign);
		goto out_close_store;
	}

	if (out_path != NULL && strcmp(out_path, "-") != 0) {
		w.out = fopen(out_path, "w");
		if (w.out == NULL) {
			ret = cli_error("%s: %s", out_path, strerror(errno));
			goto out_close_store;
		}
	} else {
		w.out = stdout;
		out_path = NULL;
	}

	if (w.format == REPORT_CSV) {
		buf_append_str(&w.line, report_columns);
		buf_append_str(&w.line, "\r\n");
	}
	walk = store_report_foreach(st, campaign_id, only, report_row, &w,
				    &error);
	if (walk < 0) {
		ret = cli_error("%s (the report is incomplete)", error);
	} else if (walk == 0 && report_flush(&w) && fflush(w.out) != 0) {
		w.write_errno = errno;
	}
	if (out_path != NULL && fclose(w.out) != 0 && w.write_errno == 0)
		w.write_errno = errno;
	/* A reader that went away (`| head`) is not worth a message. */
	if (ret == 0 && w.write_errno == EPIPE)
		ret = 1;
	else if (ret == 0 && w.write_errno != 0)
		ret = cli_error("writing %s: %s", out_path ? out_path :
				"the report", strerror(w.write_errno));
	buf_free(&w.line);
out_close_store:
	store_close(&st);
	return ret;
}
