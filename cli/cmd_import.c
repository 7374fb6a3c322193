/*
 * cmd_import - `volley import CAMPAIGN FILE [--skip-invalid] [--rejects F]
 * [--strict]`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "errmsg.h"
#include "import.h"
#include "message.h"
#include "snapshot.h"
#include "store.h"
#include "varnames.h"
#include "xalloc.h"

/* In --skip-invalid mode the rejects file has them all; show a few. */
#define IMPORT_SKIP_SHOWN 10

/* import_diag - a bad row, on stderr */
static void import_diag(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "%s\n", line);
}

/* The names the campaign's template needs, each once, owned here. */
struct import_needs {
	struct import_need *v;
	size_t n;
	struct varnames names;	/* every name it uses */
};

/* import_need - collect one of the template's top-level names */
static void import_need(void *ctx, const char *file, const char *name,
			size_t len, unsigned line, unsigned column)
{
	struct import_needs *needs = ctx;
	struct buf where = BUF_INIT;
	struct import_need *n;

	for (size_t i = 0; i < needs->n; i++) {
		if (strlen(needs->v[i].name) == len &&
		    memcmp(needs->v[i].name, name, len) == 0)
			return;
	}
	needs->v = xrealloc(needs->v, (needs->n + 1) * sizeof(*needs->v));
	n = &needs->v[needs->n++];
	n->name = xstrndup(name, len);
	buf_printf(&where, "%s:%u:%u", file, line, column);
	n->where = xstrdup(buf_cstr(&where));
	buf_free(&where);
}

/*
 * import_name - note a name the template uses anywhere.  One that every
 * recipient must have (import_need) is checked as such already.
 */
static void import_name(void *ctx, const struct tmpl_name *n)
{
	struct import_needs *needs = ctx;
	struct buf where = BUF_INIT;

	if (!n->in_section && !n->section && !memchr(n->name, '.', n->len))
		return;
	buf_printf(&where, "%s:%u:%u", n->file, n->line, n->column);
	varnames_add(&needs->names, n->name, n->len, n->in_section,
		     n->section, buf_cstr(&where));
	buf_free(&where);
}

static void import_needs_free(struct import_needs *needs)
{
	for (size_t i = 0; i < needs->n; i++) {
		free((char *)needs->v[i].name);
		free((char *)needs->v[i].where);
	}
	free(needs->v);
	varnames_free(&needs->names);
	memset(needs, 0, sizeof(*needs));
}

/*
 * import_say_missing - each name the template uses that no recipient in
 * the file has: a warning, or with --strict the reason for failing
 */
static void import_say_missing(const struct import_needs *needs,
			       const char *path, bool strict)
{
	const struct varnames *vn = &needs->names;

	for (size_t i = 0; i < vn->n; i++) {
		if (varnames_found(vn, i))
			continue;
		cli_error("%s%s: no recipient in %s has {{%s%s}}",
			  strict ? "" : "warning: ", vn->v[i].where,
			  strcmp(path, "-") == 0 ? "<stdin>" : path,
			  vn->v[i].section ? "#" : "", vn->v[i].name);
	}
}

/*
 * import_load_needs - the names the campaign's template uses outside
 * sections, which every recipient must have (a template in the store was
 * compiled when the campaign was made, so it compiles now).  A campaign
 * that is not there needs nothing here: import_file says it is missing.
 */
static int import_load_needs(struct store *st, const char *campaign,
			     struct import_needs *needs, const char **error_r)
{
	struct snapshot snap;
	struct message_tmpl *mt;
	const char *error;
	int64_t id;
	int found, ret = 0;

	found = store_campaign_find(st, campaign, &id, &error);
	if (found < 0) {
		errmsg_set(error_r, "%s", error);
		return -1;
	}
	if (found == 0)
		return 0;
	if (snapshot_read_store(&snap, st, id, error_r) < 0)
		return -1;
	if (snap.nfiles > 0) {
		if (snapshot_load(&snap, &mt, error_r) < 0) {
			ret = -1;
		} else {
			message_tmpl_top_names(mt, import_need, needs);
			message_tmpl_names(mt, import_name, needs);
			message_tmpl_free(&mt);
		}
	}
	snapshot_free(&snap);
	return ret;
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "skip-invalid", no_argument, NULL, 's' },
		{ "rejects", required_argument, NULL, 'r' },
		{ "address-column", required_argument, NULL, 'a' },
		{ "format", required_argument, NULL, 'f' },
		{ "strict", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct import_opts o = { .diag = import_diag };
	struct import_needs needs = { 0 };
	struct import_summary sum = { 0 };
	const char *error = NULL;
	struct store *st;
	enum import_result res;
	int c;

	while ((c = getopt_long(argc, argv, "sr:a:f:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.skip_invalid = true;
			break;
		case 'r':
			o.rejects_path = optarg;
			break;
		case 'a':
			o.address_column = optarg;
			break;
		case 'S':
			o.strict = true;
			break;
		case 'f':
			if (strcmp(optarg, "csv") == 0)
				o.format = IMPORT_CSV;
			else if (strcmp(optarg, "jsonl") == 0)
				o.format = IMPORT_JSONL;
			else
				return cli_usage_error("import", "--format is "
						       "csv or jsonl");
			break;
		default:
			return cli_usage_error("import", "bad option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("import", "import takes CAMPAIGN and "
				       "FILE");
	o.campaign = argv[optind];
	o.path = argv[optind + 1];
	if (cli_config(cli) < 0)
		return 1;
	if (o.address_column == NULL)
		o.address_column = cli->cfg.import_address_column;
	if (o.skip_invalid)
		o.diag_max = IMPORT_SKIP_SHOWN;

	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	res = IMPORT_ERROR;
	if (import_load_needs(st, o.campaign, &needs, &error) == 0) {
		o.needs = needs.v;
		o.nneeds = needs.n;
		o.names = &needs.names;
		res = import_file(st, &o, &sum, &error);
	}
	store_close(&st);
	if (sum.names_missing > 0)
		import_say_missing(&needs, o.path, o.strict);
	import_needs_free(&needs);

	switch (res) {
	case IMPORT_ERROR:
		cli_error("%s; nothing imported", error);
		break;
	case IMPORT_BAD_ROWS:
		cli_error("%lld bad row%s in %lld; nothing imported (fix them, "
			  "or use --skip-invalid to import the other %lld)",
			  (long long)sum.rejected, sum.rejected == 1 ? "" : "s",
			  (long long)sum.rows,
			  (long long)(sum.rows - sum.rejected));
		break;
	case IMPORT_OK:
		if (sum.rejected > (long long)IMPORT_SKIP_SHOWN)
			fprintf(stderr, "... and %lld more bad rows\n",
				(long long)(sum.rejected - IMPORT_SKIP_SHOWN));
		printf("imported %lld recipient%s into '%s' (%lld duplicate%s "
		       "skipped, %lld bad row%s skipped, %lld suppressed) in "
		       "%.2f s",
		       (long long)sum.added, sum.added == 1 ? "" : "s",
		       o.campaign, (long long)sum.duplicates,
		       sum.duplicates == 1 ? "" : "s", (long long)sum.rejected,
		       sum.rejected == 1 ? "" : "s",
		       (long long)sum.suppressed, sum.seconds);
		if (sum.seconds > 0 && sum.rows >= 10000)
			printf(", %.0f rows/s", (double)sum.rows / sum.seconds);
		putchar('\n');
		if (sum.rejects_path[0] != '\0')
			printf("bad rows written to %s\n", sum.rejects_path);
		break;
	}
	return res == IMPORT_OK ? 0 : 1;
}
