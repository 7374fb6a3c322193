/*
 * cmd_bounces - `volley bounces ingest [-v] [PATH|-]` and `volley bounces
 * list [CAMPAIGN] [--unmatched] [--format csv|json]`.
 *
 * ingest reads bounce and complaint messages (a Maildir, an mbox, one
 * message file, or standard input: mailbox.h), parses each (bounce.h),
 * classifies every failed recipient (bounce_rules.h), finds the campaign
 * and recipient it is about and records it with store_bounce_add, which
 * also suppresses.  The same message read twice records nothing new.
 *
 * Matching, first found wins (docs/bounces.md):
 *   1. verp        a VERP token in an address the bounce was sent to,
 *                  whose job exists, is of the campaign the token names,
 *                  and whose address the token's MAC was made for;
 *   2. message-id  volley's Message-ID of the returned message, whose
 *                  job exists, is of that campaign, and has the failed
 *                  address (when the bounce names one);
 *   3. address     the failed address in the newest campaign of the
 *                  last bounces.match_days days that has it;
 *   else unmatched (kept, campaign and job 0).
 * A token or Message-ID that does not check out is not believed: the
 * next way is tried.  With several failed recipients, the token and
 * the Message-ID (one job each) match only the recipient whose address
 * is their job's.
 *
 * Exit status, made for Postfix's pipe(8) and local(8) (sysexits.h):
 *   0   every message read was dealt with: recorded, or not a bounce,
 *       or over the size limit (each said on standard error);
 *   1   PATH: a message could not be read (the others were recorded);
 *   75  EX_TEMPFAIL: the store is busy or unavailable, or (reading
 *       standard input) the configuration or the input could not be
 *       read: nothing is lost, run again (Postfix defers and retries).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "bounce.h"
#include "bounce_rules.h"
#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "mailbox.h"
#include "mailmsg.h"
#include "rowfmt.h"
#include "store.h"
#include "token.h"
#include "xalloc.h"

#define EX_TEMPFAIL 75
#define DAY_MS (86400 * (int64_t)1000)

const char cmd_bounces_help[] =
	"usage: volley bounces ingest [-v] [PATH|-]\n"
	"       volley bounces list [CAMPAIGN] [--unmatched]\n"
	"                           [--format csv|json]\n"
	"\n"
	"ingest reads bounces (RFC 3464 DSNs and the common text bounces)\n"
	"and complaints (RFC 5965 ARF) from PATH - a Maildir (a folder with\n"
	"cur/ and new/), an mbox, or one message file - or from standard\n"
	"input (\"-\" or no PATH: one message, as a Postfix pipe(8) transport\n"
	"or a ~/.forward \"|volley ... bounces ingest -\" gives it).  Each\n"
	"failed recipient is classified by the bounce rules, matched to its\n"
	"campaign and recipient (VERP token, then volley's Message-ID, then\n"
	"the address in the campaigns of the last bounces.match_days days)\n"
	"and recorded; a hard bounce or a complaint suppresses the address\n"
	"at once, soft bounces after bounces.soft_limit of them within\n"
	"bounces.soft_window_days.  A bounce that matches nothing is kept\n"
	"as unmatched.  The same message twice records nothing new.\n"
	"Messages over 10 MB are skipped with a notice.\n"
	"\n"
	"  -v, --verbose  one line per message and recipient on standard\n"
	"                 output: where, address, class, match, suppression\n"
	"\n"
	"A summary line goes to standard error: N messages, M bounces (K\n"
	"new), U unmatched, S suppressed.  Exit status: 0 done; 1 a message\n"
	"could not be read; 75 (EX_TEMPFAIL) the store was busy or\n"
	"unavailable, or standard input or the configuration could not be\n"
	"read when reading standard input: run again, nothing is lost.\n"
	"\n"
	"list writes the recorded bounces, oldest first: of CAMPAIGN, or\n"
	"all, or with --unmatched those that matched no campaign.  Columns\n"
	"(CSV header names, JSON keys): id, at, kind, address, category,\n"
	"hard, campaign, campaign_id, job_id, matched_by, code, enhanced,\n"
	"text, original_id, msg_key.\n"
	"\n"
	"  --format csv   (default) RFC 4180 CSV with a header row\n"
	"  --format json  JSON Lines: one object per line\n";

/* --- ingest -------------------------------------------------------------- */

/* a job the bounce was found to be about (copied out of the store) */
struct bounce_job {
	bool found;
	int64_t campaign_id, job_id;
	char campaign[256];
	char address[BOUNCE_ADDR_MAX];
};

struct ingest {
	struct cli *cli;
	struct store *st;
	struct bounce_rules *rules;
	struct token_key *verp_key;	/* NULL: no VERP secret */
	bool suppress_unverified;	/* bounces.suppress_unverified */
	struct buf reported;		/* the address a report named */
	struct store_bounce_policy policy;
	int64_t match_since;
	bool verbose;
	bool from_stdin;
	struct bounce_report report;
	struct buf text, key;

	/* counts for the summary */
	long messages, bounces, added, unmatched, suppressed;
	long not_bounces, skipped, unreadable;
};

static void job_from_ref(struct bounce_job *j, const struct store_job_ref *r)
{
	j->found = true;
	j->campaign_id = r->campaign_id;
	j->job_id = r->job_id;
	snprintf(j->campaign, sizeof(j->campaign), "%s",
		 r->campaign != NULL ? r->campaign : "");
	snprintf(j->address, sizeof(j->address), "%s",
		 r->address != NULL ? r->address : "");
}

/*
 * ingest_job - the job job_id if it exists and is of campaign_id: 1 and
 * *j, 0 if not, -1 on a store error.
 */
static int ingest_job(struct ingest *in, int64_t campaign_id,
		      int64_t job_id, struct bounce_job *j,
		      const char **error_r)
{
	struct store_job_ref ref;
	int r;

	memset(j, 0, sizeof(*j));
	if (campaign_id <= 0 || job_id <= 0)
		return 0;
	r = store_job_ref(in->st, job_id, &ref, error_r);
	if (r <= 0)
		return r;
	if (ref.campaign_id != campaign_id)
		return 0;
	job_from_ref(j, &ref);
	return 1;
}

/*
 * ingest_verp - the job a VERP token in one of the addresses the bounce
 * was sent to names, checked with the secret: 1 and *j, 0 if none, -1
 * on a store error.  The token is the rest of the local part after a
 * '+', '-', '=', '.' or '_' (or the whole local part), lower-cased first.
 */
static int ingest_verp(struct ingest *in, struct bounce_job *j,
		       const char **error_r)
{
	const struct bounce_report *rep = &in->report;

	memset(j, 0, sizeof(*j));
	if (in->verp_key == NULL)
		return 0;
	for (size_t v = 0; v < rep->nverp; v++) {
		const char *addr = rep->verp[v], *at = strrchr(addr, '@');
		char tok[TOKEN_VERP_MAX];
		size_t local;

		if (at == NULL)
			continue;
		local = (size_t)(at - addr);
		for (size_t i = 0; i < local; i++) {
			int64_t cid, jid;
			size_t n = local - i;
			int r;

			if (i > 0 && strchr("+-=._", addr[i - 1]) == NULL)
				continue;
			if (n >= sizeof(tok))
				continue;
			for (size_t k = 0; k < n; k++)
				tok[k] = (char)tolower((unsigned char)
						       addr[i + k]);
			tok[n] = '\0';
			if (!token_verp_parse(tok, n, &cid, &jid))
				continue;
			r = ingest_job(in, cid, jid, j, error_r);
			if (r < 0)
				return -1;
			if (r > 0 && token_verp_check(in->verp_key, tok, n,
						      j->address,
						      strlen(j->address)))
				return 1;
			memset(j, 0, sizeof(*j));
		}
	}
	return 0;
}

/* ingest_msgid - the job volley's Message-ID of the returned message
 * names: 1 and *j, 0 if none, -1 on a store error */
static int ingest_msgid(struct ingest *in, struct bounce_job *j,
			const char **error_r)
{
	uint64_t cid, jid;

	memset(j, 0, sizeof(*j));
	if (!bounce_volley_id(in->report.orig_message_id, &cid, &jid) ||
	    cid > INT64_MAX || jid > INT64_MAX)
		return 0;
	return ingest_job(in, (int64_t)cid, (int64_t)jid, j, error_r);
}

/* ingest_at - the bounce's Date, in ms; now when it has none we can
 * read or one more than a day ahead */
static int64_t ingest_at(const char *msg, size_t len, int64_t now)
{
	static const char *const formats[] = {
		"%a, %d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S %z",
		"%a, %d %b %Y %H:%M %z", "%d %b %Y %H:%M %z",
	};
	struct mailmsg_span head, body;
	struct buf date = BUF_INIT;
	int64_t at = now;

	mailmsg_split(msg, len, &head, &body);
	if (!mailmsg_header(&head, "Date", &date)) {
		buf_free(&date);
		return now;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm;
		const char *end;
		time_t t;

		memset(&tm, 0, sizeof(tm));
		end = strptime(buf_cstr(&date), formats[i], &tm);
		if (end == NULL || (*end != '\0' && *end != ' '))
			continue;
		t = timegm(&tm);
		if (t == (time_t)-1)
			break;
		/* timegm ignores tm_gmtoff: take the zone off by hand */
		at = ((int64_t)t - tm.tm_gmtoff) * 1000;
		if (at <= 0 || at > now + DAY_MS)
			at = now;
		break;
	}
	buf_free(&date);
	return at;
}

/*
 * ingest_key - the bounce's Message-ID, else "sha256:HEX" of its body:
 * the same bounce delivered twice differs in its header (Received,
 * Delivered-To, Return-Path are added on the way), never in its body
 */
static void ingest_key(struct ingest *in, const char *msg, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	const char *body, *crlf;

	buf_reset(&in->key);
	if (in->report.message_id[0] != '\0') {
		buf_append_str(&in->key, in->report.message_id);
		return;
	}
	body = memmem(msg, len, "\n\n", 2);
	crlf = memmem(msg, len, "\n\r\n", 3);
	if (crlf != NULL && (body == NULL || crlf < body))
		body = crlf;
	if (body != NULL) {
		len -= (size_t)(body - msg);
		msg = body;
	}
	if (EVP_Digest(msg, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		mdlen = 0;	/* cannot happen; the key is then "sha256:" */
	buf_append_str(&in->key, "sha256:");
	for (unsigned i = 0; i < mdlen; i++)
		buf_printf(&in->key, "%02x", md[i]);
}

/* is_failure - does the recipient say its message failed for good? */
static bool is_failure(const struct bounce_rcpt *r)
{
	switch (r->action) {
	case BOUNCE_ACTION_FAILED:
		return true;
	case BOUNCE_ACTION_NONE:
		/* not said: failed unless the codes say "try again" */
		return r->status[0] != '4' &&
		       (r->reply_code < 400 || r->reply_code >= 500);
	default:
		return false;
	}
}

/*
 * ingest_one - record one recipient of the message (addr NULL when it
 * names none).  -1 on a store error.
 */
static int ingest_one(struct ingest *in, const char *where, bool complaint,
		      const char *addr, const struct bounce_rcpt *rcpt,
		      size_t nfailed, const struct bounce_job *verp,
		      const struct bounce_job *msgid, int64_t at,
		      const char **error_r)
{
	struct store_bounce b = { 0 };
	struct bounce_class cls = { 0 };
	struct bounce_job job = { 0 };
	struct store_job_ref ref;
	const char *by = NULL;
	int suppressed = -1, r;

	/* the token and the Message-ID name one job: its recipient is the
	 * only one, or the one with its address */
	if (verp->found && (addr == NULL || nfailed <= 1 ||
			    strcasecmp(addr, verp->address) == 0)) {
		job = *verp;
		by = "verp";
	} else if (msgid->found && (addr == NULL ||
				    strcasecmp(addr, msgid->address) == 0)) {
		job = *msgid;
		by = "message-id";
	} else if (addr != NULL) {
		r = store_job_find_address(in->st, addr, strlen(addr),
					   in->match_since, &ref, error_r);
		if (r < 0)
			return -1;
		if (r > 0) {
			job_from_ref(&job, &ref);
			by = "address";
		}
	}

	buf_reset(&in->reported);
	b.msg_key = buf_cstr(&in->key);
	/*
	 * Proven ours: the VERP token's MAC, or volley's Message-ID with
	 * the job's own address.  Then the recipient is the job's address,
	 * whatever address the report names (a forward names the mailbox
	 * it went on to; a hostile recipient could name someone else).
	 * Anything else anybody can write: it is kept, and suppresses only
	 * where bounces.suppress_unverified says, or where no VERP secret
	 * is set and the address is in a recent campaign.
	 */
	b.address = addr;
	if (by != NULL && strcmp(by, "address") != 0) {
		b.address = job.address;
		if (addr != NULL && strcasecmp(addr, job.address) != 0) {
			buf_reset(&in->reported);
			buf_printf(&in->reported, "reported as %s", addr);
		}
	} else {
		b.unverified = !in->suppress_unverified &&
			       (by == NULL || in->verp_key != NULL);
	}
	b.campaign_id = job.found ? job.campaign_id : 0;
	b.job_id = job.found ? job.job_id : 0;
	b.matched_by = by;
	b.original_id = in->report.orig_message_id[0] != '\0' ?
			in->report.orig_message_id : NULL;
	b.at = at;
	if (complaint) {
		const struct bounce_arf *arf = &in->report.arf;

		b.kind = "complaint";
		b.category = "complaint";
		buf_reset(&in->text);
		buf_printf(&in->text, "feedback-type %s",
			   arf->feedback_type[0] ? arf->feedback_type : "-");
		if (arf->user_agent[0] != '\0')
			buf_printf(&in->text, ", user-agent %s",
				   arf->user_agent);
		b.text = buf_cstr(&in->text);
	} else {
		const char *status = rcpt != NULL ? rcpt->status : "";
		const char *diag = rcpt != NULL ? rcpt->diagnostic : "";
		int code = rcpt != NULL ? rcpt->reply_code : 0;

		bounce_rules_classify(in->rules, code, status, diag, &cls);
		b.kind = "bounce";
		b.category = bounce_category_name(cls.category);
		b.hard = cls.hard;
		b.code = code;
		b.enhanced = status[0] != '\0' ? status : NULL;
		b.text = diag[0] != '\0' ? diag : NULL;
	}
	if (in->reported.len > 0) {
		/* the report's own address goes with its text */
		if (b.text != NULL)
			buf_printf(&in->reported, ": %s", b.text);
		b.text = buf_cstr(&in->reported);
	}

	r = store_bounce_add(in->st, &b, &in->policy, &suppressed, error_r);
	if (r < 0)
		return -1;
	in->bounces++;
	if (r > 0)
		in->added++;
	if (!job.found)
		in->unmatched++;
	if (suppressed >= 0)
		in->suppressed++;
	if (in->verbose) {
		printf("%s: %s %s", where,
		       b.address != NULL ? b.address : "-", b.category);
		if (!complaint)
			printf(" (%s)", b.hard ? "hard" : "soft");
		printf(", ");
		if (job.found)
			printf("campaign '%s' job %lld by %s", job.campaign,
			       (long long)job.job_id, by);
		else
			printf("unmatched");
		printf(", %s", r > 0 ? "new" : "already recorded");
		if (b.address != addr && addr != NULL &&
		    strcasecmp(addr, b.address) != 0)
			printf(", reported as %s", addr);
		if (b.unverified && (complaint || b.hard))
			printf(", not proven ours: suppresses nothing");
		if (suppressed >= 0)
			printf(", suppressed (%s)", store_suppress_reason_name(
				       (enum store_suppress_reason)suppressed));
		putchar('\n');
	}
	return 0;
}

/* ingest_message - one message; -1 on a store error (already said) */
static int ingest_message(struct ingest *in, const struct mailbox_msg *m)
{
	struct bounce_report *rep = &in->report;
	struct bounce_job verp, msgid;
	enum bounce_kind kind;
	const char *error;
	size_t nfailed = 0, recorded = 0;
	int64_t now = clock_wall_ms(), at;
	bool complaint;

	kind = bounce_parse(m->data, m->len, rep);
	complaint = kind == BOUNCE_ARF &&
		    strcasecmp(rep->arf.feedback_type, "not-spam") != 0;
	if (kind == BOUNCE_NONE || (kind == BOUNCE_ARF && !complaint)) {
		in->not_bounces++;
		if (in->verbose || in->from_stdin)
			fprintf(in->from_stdin ? stderr : stdout,
				"%s%s: not a bounce or complaint, nothing "
				"recorded\n", in->from_stdin ? "volley: " : "",
				m->where);
		return 0;
	}
	for (size_t i = 0; i < rep->nrcpts; i++)
		if (complaint || is_failure(&rep->rcpts[i]))
			nfailed++;
	if (nfailed == 0 && rep->nrcpts > 0) {
		/* delays, deliveries, relays: nothing failed */
		in->not_bounces++;
		if (in->verbose || in->from_stdin)
			fprintf(in->from_stdin ? stderr : stdout,
				"%s%s: %s with no failed recipient (delayed "
				"or delivered), nothing recorded\n",
				in->from_stdin ? "volley: " : "", m->where,
				bounce_kind_name(kind));
		return 0;
	}

	ingest_key(in, m->data, m->len);
	at = ingest_at(m->data, m->len, now);
	if (ingest_verp(in, &verp, &error) < 0 ||
	    ingest_msgid(in, &msgid, &error) < 0)
		goto store_error;

	for (size_t i = 0; i < rep->nrcpts; i++) {
		const struct bounce_rcpt *r = &rep->rcpts[i];
		const char *addr = r->final_rcpt[0] ? r->final_rcpt :
				   r->original_rcpt[0] ? r->original_rcpt :
				   NULL;

		if (!complaint && !is_failure(r))
			continue;
		/* the original recipient, when it is the job's address */
		if (r->original_rcpt[0] != '\0') {
			if ((verp.found && strcasecmp(r->original_rcpt,
						      verp.address) == 0) ||
			    (msgid.found && strcasecmp(r->original_rcpt,
						       msgid.address) == 0))
				addr = r->original_rcpt;
		}
		if (ingest_one(in, m->where, complaint, addr, r, nfailed,
			       &verp, &msgid, at, &error) < 0)
			goto store_error;
		recorded++;
	}
	if (recorded == 0) {
		/* a bounce or complaint that names no address: kept */
		if (ingest_one(in, m->where, complaint, NULL, NULL, 0, &verp,
			       &msgid, at, &error) < 0)
			goto store_error;
	}
	return 0;

store_error:
	cli_error("%s: %s (nothing lost: run again)", m->where, error);
	return -1;
}

int cli_bounce_rules(struct cli *cli, struct bounce_rules **rules_r)
{
	const char *file = cli->cfg.bounces.rules_file, *error;

	*rules_r = file != NULL ? bounce_rules_load_file(file, &error) :
		   bounce_rules_default(&error);
	if (*rules_r == NULL) {
		cli_error("%s%s", file != NULL ? "bounces.rules_file: " :
			  "the bounce rules: ", error);
		return -1;
	}
	return 0;
}

void cli_bounce_policy(const struct cli *cli,
		       struct store_bounce_policy *policy)
{
	policy->soft_limit = cli->cfg.bounces.soft_limit;
	policy->soft_window_ms = cli->cfg.bounces.soft_window_days * DAY_MS;
}

static int ingest_load(struct ingest *in)
{
	struct config *cfg = &in->cli->cfg;
	const char *error;
	char *secret = NULL;
	int r;

	if (cli_bounce_rules(in->cli, &in->rules) < 0)
		return -1;
	if (cfg->verp_secret_file != NULL) {
		if (config_verp_secret(cfg, &secret, &error) < 0) {
			cli_error("%s", error);
			return -1;
		}
		r = token_key_new(secret, strlen(secret), &in->verp_key);
		config_secret_free(&secret);
		if (r < 0) {
			cli_error("verp.secret_file: cannot make a key of it");
			return -1;
		}
	}
	cli_bounce_policy(in->cli, &in->policy);
	in->suppress_unverified = in->cli->cfg.bounces.suppress_unverified;
	in->match_since = clock_wall_ms() -
			  cfg->bounces.match_days * DAY_MS;
	return 0;
}

static int bounces_ingest(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct ingest in = { .cli = cli };
	struct mailbox *mb = NULL;
	struct mailbox_msg m;
	const char *path = "-", *error;
	int c, r, ret = 0, fail;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			in.verbose = true;
			break;
		default:
			return cli_usage_error("bounces", "bad option");
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("bounces", "ingest takes one PATH "
				       "(or - for standard input)");
	if (argc - optind == 1)
		path = argv[optind];
	in.from_stdin = strcmp(path, "-") == 0;
	/* what a failure that is no message's fault exits with */
	fail = in.from_stdin ? EX_TEMPFAIL : 1;

	if (cli_config(cli) < 0)
		return fail;
	if (ingest_load(&in) < 0) {
		ret = fail;
		goto out;
	}
	if (in.from_stdin) {
		mailbox_open_stream(stdin, "standard input", &mb);
	} else if (mailbox_open(path, &mb, &error) < 0) {
		ret = cli_error("%s", error);
		goto out;
	}
	in.st = cli_open_store(cli, false);
	if (in.st == NULL) {
		ret = EX_TEMPFAIL;
		goto out;
	}
	bounce_report_init(&in.report);
	while ((r = mailbox_next(mb, &m, &error)) != 0) {
		if (r < 0) {
			cli_error("%s", error);
			in.unreadable++;
			if (in.from_stdin)
				ret = EX_TEMPFAIL;
			continue;
		}
		in.messages++;
		if (m.skipped) {
			in.skipped++;
			fprintf(stderr, "volley: %s: %zu bytes, over the %u MB "
				"limit: skipped\n", m.where, m.len,
				MAILBOX_MESSAGE_MAX / (1024 * 1024));
			continue;
		}
		if (ingest_message(&in, &m) < 0) {
			ret = EX_TEMPFAIL;
			break;
		}
	}
	if (ret == 0 && in.unreadable > 0)
		ret = 1;
	if (fflush(stdout) != 0 && ret == 0)
		ret = cli_error("writing: %s", strerror(errno));
	fprintf(stderr, "volley: bounces ingest %s: %ld messages, %ld bounces "
		"(%ld new), %ld unmatched, %ld suppressed", in.from_stdin ?
		"standard input" : path, in.messages, in.bounces, in.added,
		in.unmatched, in.suppressed);
	if (in.not_bounces > 0)
		fprintf(stderr, ", %ld not bounces", in.not_bounces);
	if (in.skipped > 0)
		fprintf(stderr, ", %ld too large", in.skipped);
	if (in.unreadable > 0)
		fprintf(stderr, ", %ld unreadable", in.unreadable);
	fputc('\n', stderr);
	bounce_report_free(&in.report);
	store_close(&in.st);
out:
	mailbox_close(&mb);
	token_key_free(&in.verp_key);
	if (in.rules != NULL)
		bounce_rules_free(in.rules);
	buf_free(&in.text);
	buf_free(&in.reported);
	buf_free(&in.key);
	return ret;
}

/* --- list ---------------------------------------------------------------- */

/* The columns, CSV header names and JSON keys: a contract, added to at
 * the end only. */
static const char bounces_columns[] =
	"id,at,kind,address,category,hard,campaign,campaign_id,job_id,"
	"matched_by,code,enhanced,text,original_id,msg_key";

struct campaign_name {
	int64_t id;
	char *name;
};

struct bounces_walk {
	bool json;
	struct buf line;
	struct campaign_name *names;
	size_t nnames, cap;
	int write_errno;
};

static int bounces_name_one(void *ctx, const struct store_campaign *c,
			    const struct store_counts *counts)
{
	struct bounces_walk *w = ctx;

	(void)counts;
	if (w->nnames == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->names = xrealloc(w->names, w->cap * sizeof(*w->names));
	}
	w->names[w->nnames].id = c->id;
	w->names[w->nnames].name = xstrdup(c->name);
	w->nnames++;
	return 0;
}

static const char *bounces_campaign(const struct bounces_walk *w, int64_t id)
{
	for (size_t i = 0; i < w->nnames; i++)
		if (w->names[i].id == id)
			return w->names[i].name;
	return NULL;
}

static int bounces_row(void *ctx, const struct store_bounce *b)
{
	struct bounces_walk *w = ctx;
	const char *campaign = b->campaign_id > 0 ?
			       bounces_campaign(w, b->campaign_id) : NULL;
	struct buf *o = &w->line;
	char num[32];

	buf_reset(o);
	if (!w->json) {
		buf_printf(o, "%lld,", (long long)b->id);
		rowfmt_time(o, b->at);
		rowfmt_csv_field(o, b->kind, false);
		rowfmt_csv_field(o, b->address, false);
		rowfmt_csv_field(o, b->category, false);
		buf_append_str(o, b->hard ? ",1" : ",0");
		rowfmt_csv_field(o, campaign, false);
		if (b->campaign_id > 0)
			buf_printf(o, ",%lld,%lld", (long long)b->campaign_id,
				   (long long)b->job_id);
		else
			buf_append_str(o, ",,");
		rowfmt_csv_field(o, b->matched_by, false);
		buf_putc(o, ',');
		if (b->code > 0)
			buf_printf(o, "%d", b->code);
		rowfmt_csv_field(o, b->enhanced, false);
		rowfmt_csv_field(o, b->text, false);
		rowfmt_csv_field(o, b->original_id, false);
		rowfmt_csv_field(o, b->msg_key, false);
		buf_append_str(o, "\r\n");
	} else {
		buf_printf(o, "{\"id\":%lld", (long long)b->id);
		rowfmt_json_time(o, "at", b->at, true);
		rowfmt_json_member(o, "kind", b->kind);
		rowfmt_json_member(o, "address", b->address);
		rowfmt_json_member(o, "category", b->category);
		buf_printf(o, ",\"hard\":%s", b->hard ? "true" : "false");
		rowfmt_json_member(o, "campaign", campaign);
		if (b->campaign_id > 0)
			buf_printf(o, ",\"campaign_id\":%lld,\"job_id\":%lld",
				   (long long)b->campaign_id,
				   (long long)b->job_id);
		else
			buf_append_str(o, ",\"campaign_id\":null,"
				       "\"job_id\":null");
		rowfmt_json_member(o, "matched_by", b->matched_by);
		snprintf(num, sizeof(num), "%d", b->code);
		buf_printf(o, ",\"code\":%s", b->code > 0 ? num : "null");
		rowfmt_json_member(o, "enhanced", b->enhanced);
		rowfmt_json_member(o, "text", b->text);
		rowfmt_json_member(o, "original_id", b->original_id);
		rowfmt_json_member(o, "msg_key", b->msg_key);
		buf_append_str(o, "}\n");
	}
	errno = 0;
	if (fwrite(o->data, 1, o->len, stdout) != o->len) {
		w->write_errno = errno != 0 ? errno : EIO;
		return 1;
	}
	return 0;
}

static int bounces_list(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "unmatched", no_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	struct bounces_walk w = { 0 };
	const char *error, *campaign = NULL;
	bool unmatched = false;
	int64_t campaign_id = 0;
	struct store *st;
	int c, r, ret = 0;

	while ((c = getopt_long(argc, argv, "f:u", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "csv") == 0)
				w.json = false;
			else if (strcmp(optarg, "json") == 0 ||
				 strcmp(optarg, "jsonl") == 0)
				w.json = true;
			else
				return cli_usage_error("bounces", "unknown "
						       "format '%s' (csv or "
						       "json)", optarg);
			break;
		case 'u':
			unmatched = true;
			break;
		default:
			return cli_usage_error("bounces", "bad option");
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("bounces", "list takes one CAMPAIGN "
				       "at most");
	if (argc - optind == 1)
		campaign = argv[optind];
	if (campaign != NULL && unmatched)
		return cli_usage_error("bounces", "--unmatched lists the "
				       "bounces of no campaign: give no "
				       "CAMPAIGN with it");

	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	if (campaign != NULL) {
		r = store_campaign_find(st, campaign, &campaign_id, &error);
		if (r <= 0) {
			ret = r < 0 ? cli_error("%s", error) :
			      cli_error("no campaign '%s'", campaign);
			goto out;
		}
	}
	if (store_campaign_foreach(st, bounces_name_one, &w, &error) < 0) {
		ret = cli_error("%s", error);
		goto out;
	}
	if (!w.json)
		printf("%s\r\n", bounces_columns);
	r = store_bounce_foreach(st, campaign_id, unmatched, bounces_row, &w,
				 &error);
	if (r < 0)
		ret = cli_error("%s (the list is incomplete)", error);
	if (fflush(stdout) != 0 && w.write_errno == 0)
		w.write_errno = errno;
	if (ret == 0 && w.write_errno == EPIPE)
		ret = 1;
	else if (ret == 0 && w.write_errno != 0)
		ret = cli_error("writing the list: %s",
				strerror(w.write_errno));
out:
	for (size_t i = 0; i < w.nnames; i++)
		free(w.names[i].name);
	free(w.names);
	buf_free(&w.line);
	store_close(&st);
	return ret;
}

int cmd_bounces(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("bounces", "bounces needs ingest or "
				       "list");
	if (strcmp(argv[1], "ingest") == 0)
		return bounces_ingest(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return bounces_list(cli, argc - 1, argv + 1);
	return cli_usage_error("bounces", "no 'bounces %s' (ingest or list)",
			       argv[1]);
}
