/*
 * cmd_suppress - `volley suppress add|remove|list|import|export`: the
 * suppression list by hand (store.h, "suppression").  Unsubscribes,
 * bounces and complaints add to it by themselves; this is for what comes
 * from elsewhere: a list moved from another tool, a request by mail, a
 * domain that must never be mailed.
 *
 * Its CSV (export, list --format csv) and what import reads are the same
 * columns, so an export imports again unchanged: email, reason, list,
 * time, source.  import needs email; the others may be left out.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "csv.h"
#include "escape.h"
#include "mailaddr.h"
#include "rowfmt.h"
#include "store.h"
#include "xalloc.h"

const char cmd_suppress_help[] =
	"usage: volley suppress add ADDR... [--reason R] [--list LIST]\n"
	"       volley suppress remove ADDR... [--reason R] [--list LIST]\n"
	"       volley suppress check ADDR... [--list LIST] [--transactional]\n"
	"       volley suppress list [--reason R] [--list LIST]\n"
	"                            [--format csv|json]\n"
	"       volley suppress import FILE.csv [--reason R] [--list LIST]\n"
	"       volley suppress export [--reason R] [--list LIST]\n"
	"                              [--format csv|json]\n"
	"\n"
	"Addresses on the suppression list are never sent a campaign: not at\n"
	"import (they are stored as 'suppressed'), and not at send time if\n"
	"they were added after the import.  ADDR is a mailbox, or @DOMAIN\n"
	"for every address of a domain; case does not matter (ASCII).\n"
	"\n"
	"  --reason R   unsubscribed, hard-bounce, soft-bounce, complaint or\n"
	"               manual (add: default manual).  Transactional\n"
	"               campaigns ignore 'unsubscribed'.\n"
	"  --list LIST  the list it applies to (add, import: default every\n"
	"               list, written 'global'); remove and list: only that\n"
	"               one; check: a campaign of that list (default\n"
	"               \"default\")\n"
	"  --transactional  check: for a transactional campaign\n"
	"  --format     csv (default; RFC 4180, header row, CRLF) or json\n"
	"               (JSON Lines, one object per line)\n"
	"\n"
	"Columns (CSV header, JSON keys): email, reason, list, time (RFC 3339\n"
	"UTC), source (where it came from), campaign, job.\n"
	"import reads the same CSV (email required; reason, list, time and\n"
	"source optional: an empty or missing one is --reason (else\n"
	"manual), --list (else global), now, the file and line) with the\n"
	"recipient import's strict rules: a file with any bad row adds\n"
	"nothing, and every bad row is named by FILE:LINE.  An entry already\n"
	"there is left as it is.\n"
	"\n"
	"check says, for each ADDR, whether a campaign of LIST would send to\n"
	"it, and if not which entry stops it; exit 0 if none is stopped, 3 if\n"
	"any is.  remove exits 0 even when an address was not on the list\n"
	"(it says so): removing is idempotent.\n";

enum suppress_format {
	SUPPRESS_CSV,
	SUPPRESS_JSON,
};

struct suppress_opts {
	const char *scope;	/* --list, or NULL */
	enum store_suppress_reason reason;
	bool have_reason;
	bool have_format;
	bool transactional;	/* check */
	enum suppress_format format;
};

/* suppress_parse_opts - the options of every subcommand; 0, or the exit
 * status of a usage error */
static int suppress_parse_opts(int argc, char **argv,
			       struct suppress_opts *o)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "list", required_argument, NULL, 'l' },
		{ "format", required_argument, NULL, 'f' },
		{ "transactional", no_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->reason = SUPPRESS_MANUAL;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (!store_suppress_reason_parse(optarg, &o->reason))
				return cli_usage_error("suppress", "--reason "
					"%s: one of unsubscribed, hard-bounce, "
					"soft-bounce, complaint, manual",
					optarg);
			o->have_reason = true;
			break;
		case 'l':
			if (campaign_list_problem(optarg) != NULL)
				return cli_usage_error("suppress", "--list: "
					"%s", campaign_list_problem(optarg));
			o->scope = optarg;
			break;
		case 'T':
			o->transactional = true;
			break;
		case 'f':
			o->have_format = true;
			if (strcmp(optarg, "csv") == 0)
				o->format = SUPPRESS_CSV;
			else if (strcmp(optarg, "json") == 0 ||
				 strcmp(optarg, "jsonl") == 0)
				o->format = SUPPRESS_JSON;
			else
				return cli_usage_error("suppress", "--format "
						       "%s: csv or json",
						       optarg);
			break;
		default:
			return cli_usage_error("suppress", "bad option");
		}
	}
	return 0;
}

/*
 * suppress_addr_problem - why addr cannot go on the list, or NULL: a
 * mailbox as the import accepts it, or @ and a domain that would make one
 */
static const char *suppress_addr_problem(const char *addr)
{
	const char *reason = NULL;
	size_t len = strlen(addr);

	if (addr[0] == '@') {
		struct buf probe = BUF_INIT;
		bool ok;

		/* a domain is good when x@domain is a good mailbox */
		buf_putc(&probe, 'x');
		buf_append(&probe, addr, len);
		ok = mailaddr_check(probe.data, probe.len, NULL, &reason);
		buf_free(&probe);
		return ok ? NULL : reason;
	}
	return mailaddr_check(addr, len, NULL, &reason) ? NULL : reason;
}

struct suppress_list_use {
	const char *list;
	bool used;
};

static int suppress_list_used(void *ctx, const struct store_campaign *c,
			      const struct store_counts *counts)
{
	struct suppress_list_use *u = ctx;

	(void)counts;
	if (strcmp(c->list, u->list) == 0)
		u->used = true;
	return 0;
}

/*
 * suppress_list_notice - a word when list names no campaign's list: a
 * typo ("Newz") would otherwise stop nobody, silently
 */
static void suppress_list_notice(struct store *st, const char *list)
{
	struct suppress_list_use u = { list, false };
	const char *error;

	if (list == NULL || strcmp(list, STORE_SCOPE_GLOBAL) == 0)
		return;
	if (store_campaign_foreach(st, suppress_list_used, &u, &error) == 0 &&
	    !u.used)
		fprintf(stderr, "volley: notice: no campaign is on the list "
			"'%s' yet (lists are named at `campaign create "
			"--list`, case counts)\n", list);
}

static int suppress_add(struct store *st, int argc, char **argv,
			const struct suppress_opts *o)
{
	struct store_suppression *s;
	const char *error, *problem;
	size_t n = (size_t)argc, added;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		problem = suppress_addr_problem(argv[i]);
		if (problem != NULL)
			return cli_error("%s: %s", argv[i], problem);
	}
	s = xcalloc(n, sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		s[i].address = argv[i];
		s[i].reason = o->reason;
		s[i].scope = o->scope != NULL ? o->scope : STORE_SCOPE_GLOBAL;
		s[i].source = "volley suppress add";
	}
	if (store_suppress_add(st, s, n, &added, &error) < 0)
		ret = cli_error("%s", error);
	else
		printf("%zu added to the suppression list (%s, %s)%s\n",
		       added, store_suppress_reason_name(o->reason),
		       o->scope != NULL ? o->scope : STORE_SCOPE_GLOBAL,
		       added < n ? "; the others were on it already" : "");
	if (ret == 0)
		suppress_list_notice(st, o->scope);
	free(s);
	return ret;
}

static int suppress_remove(struct store *st, int argc, char **argv,
			   const struct suppress_opts *o)
{
	const char *error;
	int64_t n, total = 0;

	for (int i = 0; i < argc; i++) {
		if (store_suppress_remove(st, argv[i], o->scope,
					  o->have_reason ? &o->reason : NULL,
					  &n, &error) < 0)
			return cli_error("%s", error);
		if (n == 0)
			fprintf(stderr, "volley: %s: not on the suppression "
				"list%s%s\n", argv[i], o->scope ? " of " : "",
				o->scope ? o->scope : "");
		total += n;
	}
	printf("%lld entr%s removed\n", (long long)total,
	       total == 1 ? "y" : "ies");
	return 0;
}

/* --- list and export ----------------------------------------------------- */

struct suppress_walk {
	enum suppress_format format;
	struct buf line;
	int write_errno;
	int64_t rows;
};

static int suppress_row(void *ctx, const struct store_suppression *s)
{
	struct suppress_walk *w = ctx;
	const char *reason = store_suppress_reason_name(s->reason);

	if (w->format == SUPPRESS_CSV) {
		rowfmt_csv_field(&w->line, s->address, true);
		rowfmt_csv_field(&w->line, reason, false);
		rowfmt_csv_field(&w->line, s->scope, false);
		rowfmt_csv_time(&w->line, s->created_at, true);
		rowfmt_csv_field(&w->line, s->source, false);
		buf_putc(&w->line, ',');
		if (s->campaign_id > 0)
			buf_printf(&w->line, "%lld",
				   (long long)s->campaign_id);
		buf_putc(&w->line, ',');
		if (s->job_id > 0)
			buf_printf(&w->line, "%lld", (long long)s->job_id);
		buf_append_str(&w->line, "\r\n");
	} else {
		buf_append_str(&w->line, "{\"email\":\"");
		rowfmt_text(&w->line, s->address, rowfmt_json_escape);
		buf_putc(&w->line, '"');
		rowfmt_json_member(&w->line, "reason", reason);
		rowfmt_json_member(&w->line, "list", s->scope);
		rowfmt_json_time(&w->line, "time", s->created_at, true);
		rowfmt_json_member(&w->line, "source", s->source);
		rowfmt_json_key(&w->line, "campaign");
		if (s->campaign_id > 0)
			buf_printf(&w->line, "%lld",
				   (long long)s->campaign_id);
		else
			buf_append_str(&w->line, "null");
		rowfmt_json_key(&w->line, "job");
		if (s->job_id > 0)
			buf_printf(&w->line, "%lld", (long long)s->job_id);
		else
			buf_append_str(&w->line, "null");
		buf_append_str(&w->line, "}\n");
	}
	w->rows++;
	if (w->line.len >= 65536) {
		if (fwrite(w->line.data, 1, w->line.len, stdout) !=
		    w->line.len) {
			w->write_errno = errno != 0 ? errno : EIO;
			return 1;
		}
		buf_reset(&w->line);
	}
	return 0;
}

static int suppress_list(struct store *st, const struct suppress_opts *o)
{
	struct suppress_walk w = { 0 };
	const char *error;
	int ret = 0;

	w.format = o->format;
	if (w.format == SUPPRESS_CSV)
		buf_append_str(&w.line, "email,reason,list,time,source,"
			       "campaign,job\r\n");
	errno = 0;
	if (store_suppress_foreach(st, o->scope,
				   o->have_reason ? &o->reason : NULL,
				   suppress_row, &w, &error) < 0)
		ret = cli_error("%s", error);
	else if (w.write_errno == 0 && w.line.len > 0 &&
		 fwrite(w.line.data, 1, w.line.len, stdout) != w.line.len)
		w.write_errno = errno != 0 ? errno : EIO;
	if (ret == 0 && (w.write_errno != 0 || fflush(stdout) != 0))
		ret = cli_error("writing the list: %s",
				strerror(w.write_errno ? w.write_errno :
					 errno));
	buf_free(&w.line);
	return ret;
}

/* --- import -------------------------------------------------------------- */

/* suppress_parse_time - RFC 3339 UTC ("...Z", fraction optional) */
static bool suppress_parse_time(const char *p, size_t len, int64_t *ms_r)
{
	char text[40];
	struct tm tm = { 0 };
	const char *end;
	int64_t ms = 0;

	if (len == 0 || len >= sizeof(text))
		return false;
	memcpy(text, p, len);
	text[len] = '\0';
	end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return false;
	if (*end == '.') {
		int digits = 0;

		for (end++; *end >= '0' && *end <= '9'; end++) {
			if (digits++ < 3)
				ms = ms * 10 + (*end - '0');
		}
		if (digits == 0)
			return false;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return false;
	*ms_r = (int64_t)timegm(&tm) * 1000 + ms;
	return true;
}

struct suppress_import {
	const char *path;
	long col_email, col_reason, col_list, col_time, col_source;
	enum store_suppress_reason reason;	/* for an empty reason */
	const char *scope;			/* for an empty list */
	struct store_suppression *rows;
	size_t count, cap;
	struct buf strings;	/* the rows' texts, NUL-separated */
	size_t bad;
};

/* Bad rows said one by one; past this many, only counted. */
#define SUPPRESS_BAD_SHOWN 50

/* suppress_import_bad - one bad row said, with where it is */
static void suppress_import_bad(struct suppress_import *im,
				unsigned long line, const char *what,
				const char *p, size_t len)
{
	struct buf shown = BUF_INIT;

	escape_text(&shown, p, len, 100);
	if (im->bad < SUPPRESS_BAD_SHOWN)
		fprintf(stderr, "volley: %s:%lu: %s%s%s%s\n", im->path, line,
			what, len > 0 ? " '" : "", buf_cstr(&shown),
			len > 0 ? "'" : "");
	im->bad++;
	buf_free(&shown);
}

static int suppress_import_header(struct suppress_import *im,
				  const struct csv_record *rec)
{
	im->col_email = im->col_reason = im->col_list = im->col_time = -1;
	im->col_source = -1;
	for (size_t i = 0; i < rec->nfields; i++) {
		const struct csv_field *f = &rec->fields[i];
		long *col = NULL;

#define SUPPRESS_IS(name) (f->len == strlen(name) && \
			   strncasecmp(f->ptr, name, f->len) == 0)
		if (SUPPRESS_IS("email"))
			col = &im->col_email;
		else if (SUPPRESS_IS("reason"))
			col = &im->col_reason;
		else if (SUPPRESS_IS("list"))
			col = &im->col_list;
		else if (SUPPRESS_IS("time"))
			col = &im->col_time;
		else if (SUPPRESS_IS("source"))
			col = &im->col_source;
#undef SUPPRESS_IS
		if (col == NULL)
			continue;	/* campaign, job: ids of this store */
		if (*col >= 0)
			return cli_error("%s:%lu: the header names a column "
					 "twice (columns %ld and %zu)",
					 im->path, rec->line, *col + 1,
					 i + 1);
		*col = (long)i;
	}
	if (im->col_email < 0)
		return cli_error("%s:%lu: no 'email' column in the header "
				 "(columns: email, reason, list, time, source)",
				 im->path, rec->line);
	return 0;
}

/* suppress_import_row - one good row kept, or said and counted bad */
static void suppress_import_row(struct suppress_import *im,
				const struct csv_record *rec)
{
	struct store_suppression s = { 0 };
	const struct csv_field *email = &rec->fields[im->col_email];
	const char *problem;
	size_t off[3];

	off[0] = im->strings.len;
	buf_append(&im->strings, email->ptr, email->len);
	buf_putc(&im->strings, '\0');
	if (email->len == 0) {
		suppress_import_bad(im, rec->line, "no address", "", 0);
		return;
	}
	problem = suppress_addr_problem(im->strings.data + off[0]);
	if (problem != NULL) {
		struct buf why = BUF_INIT;

		buf_printf(&why, "not an address or @domain (%s):", problem);
		suppress_import_bad(im, rec->line, buf_cstr(&why), email->ptr,
				    email->len);
		buf_free(&why);
		return;
	}
	s.reason = im->reason;
	if (im->col_reason >= 0 && rec->fields[im->col_reason].len > 0) {
		const struct csv_field *f = &rec->fields[im->col_reason];
		char name[32];

		if (f->len >= sizeof(name) ||
		    (memcpy(name, f->ptr, f->len), name[f->len] = '\0',
		     !store_suppress_reason_parse(name, &s.reason))) {
			suppress_import_bad(im, rec->line, "reason must be "
					    "unsubscribed, hard-bounce, "
					    "soft-bounce, complaint or manual, "
					    "not", f->ptr, f->len);
			return;
		}
	}
	off[1] = im->strings.len;
	if (im->col_list >= 0 && rec->fields[im->col_list].len > 0)
		buf_append(&im->strings, rec->fields[im->col_list].ptr,
			   rec->fields[im->col_list].len);
	else
		buf_append_str(&im->strings, im->scope);
	buf_putc(&im->strings, '\0');
	if (memchr(im->strings.data + off[1], '\0',
		   im->strings.len - 1 - off[1]) != NULL ||
	    campaign_list_problem(im->strings.data + off[1]) != NULL) {
		suppress_import_bad(im, rec->line, campaign_list_problem(
				    im->strings.data + off[1]) ?: "bad list",
				    rec->fields[im->col_list].ptr,
				    rec->fields[im->col_list].len);
		return;
	}
	if (im->col_time >= 0 && rec->fields[im->col_time].len > 0 &&
	    !suppress_parse_time(rec->fields[im->col_time].ptr,
				 rec->fields[im->col_time].len,
				 &s.created_at)) {
		suppress_import_bad(im, rec->line, "time must be RFC 3339 "
				    "UTC (2026-12-07T12:00:00Z), not",
				    rec->fields[im->col_time].ptr,
				    rec->fields[im->col_time].len);
		return;
	}
	off[2] = im->strings.len;
	if (im->col_source >= 0 && rec->fields[im->col_source].len > 0)
		buf_append(&im->strings, rec->fields[im->col_source].ptr,
			   rec->fields[im->col_source].len);
	else
		buf_printf(&im->strings, "csv %s:%lu", im->path, rec->line);
	buf_putc(&im->strings, '\0');
	if (im->count == im->cap) {
		im->cap = im->cap ? 2 * im->cap : 256;
		im->rows = xrealloc(im->rows, im->cap * sizeof(*im->rows));
	}
	/* offsets now, pointers once the strings stop moving */
	s.address = (const char *)(uintptr_t)off[0];
	s.scope = (const char *)(uintptr_t)off[1];
	s.source = (const char *)(uintptr_t)off[2];
	im->rows[im->count++] = s;
}

static int suppress_import(struct store *st, const char *path,
			   const struct suppress_opts *o)
{
	struct suppress_import im = { 0 };
	struct csv_reader *reader;
	struct csv_record rec;
	struct csv_error cerr;
	enum csv_status cs;
	const char *error;
	size_t added;
	int fd, ret = 1;

	im.path = path;
	im.reason = o->reason;
	im.scope = o->scope != NULL ? o->scope : STORE_SCOPE_GLOBAL;
	fd = strcmp(path, "-") == 0 ? STDIN_FILENO :
	     open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_error("%s: %s", path, strerror(errno));
	reader = csv_reader_new_fd(fd, NULL);
	cs = csv_read(reader, &rec, &cerr);
	if (cs == CSV_EOF) {
		cli_error("%s: empty file: a header row naming the columns "
			  "(email, reason, list, time) comes first", path);
		goto out;
	}
	if (cs != CSV_OK) {
		cli_error("%s:%lu:%lu: in the header row: %s", path,
			  cerr.line, cerr.column, cerr.reason);
		goto out;
	}
	if (suppress_import_header(&im, &rec) != 0)
		goto out;
	while ((cs = csv_read(reader, &rec, &cerr)) != CSV_EOF) {
		if (cs == CSV_FATAL) {
			cli_error("%s:%lu:%lu: %s; nothing added", path,
				  cerr.line, cerr.column, cerr.reason);
			goto out;
		}
		if (cs == CSV_BAD_RECORD) {
			/* FILE:LINE:COLUMN, as the recipient import says */
			if (im.bad < SUPPRESS_BAD_SHOWN)
				fprintf(stderr, "volley: %s:%lu:%lu: %s\n",
					path, cerr.line, cerr.column,
					cerr.reason);
			im.bad++;
			continue;
		}
		suppress_import_row(&im, &rec);
	}
	if (im.bad > SUPPRESS_BAD_SHOWN)
		fprintf(stderr, "... and %zu more bad rows\n",
			im.bad - SUPPRESS_BAD_SHOWN);
	if (im.bad > 0) {
		cli_error("%zu bad row%s in %s; nothing added", im.bad,
			  im.bad == 1 ? "" : "s", path);
		goto out;
	}
	for (size_t i = 0; i < im.count; i++) {
		im.rows[i].address = im.strings.data +
				     (uintptr_t)im.rows[i].address;
		im.rows[i].scope = im.strings.data +
				   (uintptr_t)im.rows[i].scope;
		im.rows[i].source = im.strings.data +
				    (uintptr_t)im.rows[i].source;
	}
	if (store_suppress_add(st, im.rows, im.count, &added, &error) < 0) {
		cli_error("%s; nothing added", error);
		goto out;
	}
	printf("%zu entr%s read from %s, %zu added (%zu on the list "
	       "already)\n", im.count, im.count == 1 ? "y" : "ies", path,
	       added, im.count - added);
	ret = 0;
out:
	csv_reader_free(&reader);
	if (fd != STDIN_FILENO)
		close(fd);
	free(im.rows);
	buf_free(&im.strings);
	return ret;
}

/*
 * suppress_check - for each address, whether a campaign of o's list
 * would send to it; 3 if any is stopped
 */
static int suppress_check(struct store *st, int argc, char **argv,
			  const struct suppress_opts *o)
{
	const char *list = o->scope != NULL ? o->scope : STORE_LIST_DEFAULT;
	struct store_suppression s;
	const char *error;
	struct buf reply = BUF_INIT;
	int stopped = 0;

	for (int i = 0; i < argc; i++) {
		int rc = store_suppress_find(st, argv[i], strlen(argv[i]),
					     list, o->transactional, &s,
					     &error);

		if (rc < 0) {
			buf_free(&reply);
			return cli_error("%s", error);
		}
		if (rc == 0) {
			printf("%s: sent to (list %s%s)\n", argv[i], list,
			       o->transactional ? ", transactional" : "");
			continue;
		}
		store_suppress_reply(&s, &reply);
		printf("%s: %s\n", argv[i], buf_cstr(&reply));
		stopped = 1;
	}
	buf_free(&reply);
	return stopped ? 3 : 0;
}

/*
 * suppress_unused - the options sub does not use, said as a usage error
 * (an option silently ignored would do what the user did not ask)
 */
static int suppress_unused(const char *sub, const struct suppress_opts *o)
{
	bool is_list = strcmp(sub, "list") == 0 || strcmp(sub, "export") == 0;
	bool is_check = strcmp(sub, "check") == 0;

	if (o->have_format && !is_list)
		return cli_usage_error("suppress", "suppress %s has no "
				       "--format", sub);
	if (o->transactional && !is_check)
		return cli_usage_error("suppress", "--transactional is for "
				       "suppress check");
	if (o->have_reason && is_check)
		return cli_usage_error("suppress", "suppress check has no "
				       "--reason: every reason stops");
	return 0;
}

int cmd_suppress(struct cli *cli, int argc, char **argv)
{
	struct suppress_opts o;
	const char *sub;
	struct store *st;
	int ret;

	if (argc < 2)
		return cli_usage_error("suppress", "suppress needs a "
				       "subcommand: add, remove, check, list, "
				       "import or export");
	sub = argv[1];
	argc--;
	argv++;
	ret = suppress_parse_opts(argc, argv, &o);
	if (ret != 0)
		return ret;
	argc -= optind;
	argv += optind;
	ret = suppress_unused(sub, &o);
	if (ret != 0)
		return ret;
	if (strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0 ||
	    strcmp(sub, "check") == 0) {
		if (argc == 0)
			return cli_usage_error("suppress", "suppress %s needs "
					       "at least one ADDR", sub);
	} else if (strcmp(sub, "import") == 0) {
		if (argc != 1)
			return cli_usage_error("suppress", "suppress import "
					       "takes one FILE.csv (or -)");
	} else if (strcmp(sub, "list") == 0 || strcmp(sub, "export") == 0) {
		if (argc != 0)
			return cli_usage_error("suppress", "suppress %s takes "
					       "no arguments", sub);
	} else {
		return cli_usage_error("suppress", "no suppress subcommand "
				       "'%s'", sub);
	}
	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	if (strcmp(sub, "add") == 0)
		ret = suppress_add(st, argc, argv, &o);
	else if (strcmp(sub, "remove") == 0)
		ret = suppress_remove(st, argc, argv, &o);
	else if (strcmp(sub, "import") == 0)
		ret = suppress_import(st, argv[0], &o);
	else if (strcmp(sub, "check") == 0)
		ret = suppress_check(st, argc, argv, &o);
	else
		ret = suppress_list(st, &o);
	store_close(&st);
	return ret == 3 ? 3 : ret != 0 ? 1 : 0;
}
