/*
 * cmd_campaign - `volley campaign create|list`.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "escape.h"
#include "mailaddr.h"
#include "message.h"
#include "snapshot.h"
#include "store.h"

#define CAMPAIGN_NAME_MAX 200

/*
 * campaign_name_problem - why name cannot be a campaign name, or NULL.
 * Names show up in terminals, CSV and JSON reports and file names, so
 * control characters are out and so is a leading '-', which would read
 * as an option.
 */
static const char *campaign_name_problem(const char *name)
{
	size_t len = strlen(name);
	struct buf shown = BUF_INIT;
	bool clean;

	if (len == 0)
		return "a campaign name cannot be empty";
	if (len > CAMPAIGN_NAME_MAX)
		return "a campaign name is at most 200 bytes";
	if (name[0] == '-')
		return "a campaign name cannot start with '-'";
	/* escape_text leaves clean UTF-8 text unchanged. */
	escape_text(&shown, name, len, len);
	clean = shown.len == len && strchr(name, '\\') == NULL;
	buf_free(&shown);
	if (!clean)
		return "a campaign name must be UTF-8 text without control "
		       "characters or backslashes";
	return NULL;
}

const char *campaign_list_problem(const char *name)
{
	/* list names show where campaign names do, under the same rules */
	if (campaign_name_problem(name) != NULL)
		return "a list name is 1 to 200 bytes of UTF-8 text without "
		       "control characters, backslashes or a leading '-'";
	return NULL;
}

/*
 * campaign_sender - the envelope sender: --from, else message.cfg's
 * return_path, else the From header's address when it is the same for
 * every recipient.  NULL (after saying why) when there is none.
 */
static const char *campaign_sender(const char *from,
				   const struct message_tmpl *mt,
				   struct buf *from_header)
{
	if (from != NULL)
		return from;
	if (mt != NULL && message_tmpl_return_path(mt) != NULL)
		return message_tmpl_return_path(mt);
	if (mt != NULL && message_tmpl_from_address(mt, from_header) == 1)
		return buf_cstr(from_header);
	cli_error("the campaign needs an envelope sender: give --from ADDR, "
		  "set return_path in message.cfg, or write a From header "
		  "without variables");
	return NULL;
}

/* campaign_folder - DIR made absolute (the campaign outlives the
 * current folder); -1 after saying why */
static int campaign_folder(const char *opt, const char *dir,
			   char abs[PATH_MAX])
{
	struct stat sb;

	if (stat(dir, &sb) < 0)
		return cli_error("%s %s: %s", opt, dir, strerror(errno)), -1;
	if (!S_ISDIR(sb.st_mode))
		return cli_error("%s %s: not a folder", opt, dir), -1;
	if (realpath(dir, abs) == NULL)
		return cli_error("%s %s: %s", opt, dir, strerror(errno)), -1;
	return 0;
}

static int campaign_create(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "template", required_argument, NULL, 't' },
		{ "files", required_argument, NULL, 'F' },
		{ "list", required_argument, NULL, 'l' },
		{ "transactional", no_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from = NULL, *template_dir = NULL, *files_dir = NULL;
	const char *list = STORE_LIST_DEFAULT;
	bool transactional = false;
	const char *problem, *error, *sender;
	char template_abs[PATH_MAX], files_abs[PATH_MAX];
	struct snapshot snap = { 0 };
	struct message_tmpl *mt = NULL;
	struct buf from_header = BUF_INIT;
	const char *err = NULL;
	struct store *st = NULL;
	int64_t id;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, "f:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			from = optarg;
			break;
		case 't':
			template_dir = optarg;
			break;
		case 'F':
			files_dir = optarg;
			break;
		case 'l':
			list = optarg;
			break;
		case 'T':
			transactional = true;
			break;
		default:
			return cli_usage_error("campaign", "bad option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("campaign", "campaign create takes one "
				       "NAME");
	if (campaign_list_problem(list) != NULL)
		return cli_usage_error("campaign", "--list: %s",
				       campaign_list_problem(list));
	if (strcmp(list, STORE_SCOPE_GLOBAL) == 0)
		return cli_usage_error("campaign", "--list global: \"global\" "
				       "is the scope of every list, not a "
				       "list");
	problem = campaign_name_problem(argv[optind]);
	if (problem != NULL)
		return cli_error("%s", problem);
	if (from != NULL && (problem = message_envelope_problem(from))) {
		struct buf shown = BUF_INIT;

		escape_text(&shown, from, strlen(from), 300);
		cli_error("--from '%s': %s", buf_cstr(&shown), problem);
		buf_free(&shown);
		return 1;
	}
	if (files_dir != NULL &&
	    campaign_folder("--files", files_dir, files_abs) < 0)
		return 1;
	if (template_dir != NULL) {
		if (campaign_folder("--template", template_dir,
				    template_abs) < 0)
			return 1;
		/*
		 * Copy the folder now and compile it now: a campaign never
		 * changes under a send, and a broken template is reported
		 * here rather than half way through one.
		 */
		if (snapshot_read_dir(&snap, template_abs, &err) < 0 ||
		    snapshot_load(&snap, &mt, &err) < 0) {
			cli_error("--template %s: %s", template_dir,
				  err);
			goto out;
		}
		if (cli_tmpl_uses_unsubscribe_url(mt)) {
			struct buf what = BUF_INIT;
			char *secret;
			int rc;

			/* needed at send time: say so now */
			buf_printf(&what, "--template %s", template_dir);
			rc = cli_unsubscribe_secret(cli, true, buf_cstr(&what),
						    &secret);
			buf_free(&what);
			if (rc < 0)
				goto out;
			config_secret_free(&secret);
		}
		if (message_tmpl_recipient_files(mt) > 0 && files_dir == NULL) {
			cli_error("--template %s: message.cfg names "
				  "attachments by recipient: give --files DIR, "
				  "the folder they are read from",
				  template_dir);
			goto out;
		}
	}
	sender = campaign_sender(from, mt, &from_header);
	if (sender == NULL)
		goto out;
	if (strstr(sender, MESSAGE_VERP) != NULL) {
		char *secret;

		/* the secret is needed at send time: say so now */
		if (cli_config(cli) < 0)
			goto out;
		if (config_verp_secret(&cli->cfg, &secret, &error) < 0) {
			cli_error("%s", error);
			goto out;
		}
		config_secret_free(&secret);
	}

	st = cli_open_store(cli, false);
	if (st == NULL)
		goto out;
	if (store_campaign_create(st, argv[optind], sender,
				  template_dir ? template_abs : NULL,
				  files_dir ? files_abs : NULL, list,
				  transactional,
				  snap.files, snap.nfiles, &id, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	printf("campaign '%s' created", argv[optind]);
	if (template_dir != NULL)
		printf(" with a snapshot of %s (%zu files)", template_abs,
		       snap.nfiles);
	if (from == NULL)
		printf("; envelope sender %s (from %s)", sender,
		       message_tmpl_return_path(mt) != NULL ?
		       "return_path" : "the From header");
	if (strcmp(list, STORE_LIST_DEFAULT) != 0 || transactional)
		printf("; list %s%s", list, transactional ?
		       ", transactional (unsubscribes do not stop it)" : "");
	putchar('\n');
	ret = 0;
out:
	message_tmpl_free(&mt);
	buf_free(&from_header);
	store_close(&st);
	snapshot_free(&snap);
	return ret;
}

/* campaign_time - a store time as local "YYYY-MM-DD HH:MM" */
static void campaign_time(char *dst, size_t size, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms == 0 || localtime_r(&t, &tm) == NULL)
		snprintf(dst, size, "-");
	else
		strftime(dst, size, "%Y-%m-%d %H:%M", &tm);
}

static int campaign_list_one(void *ctx, const struct store_campaign *c,
			     const struct store_counts *counts)
{
	char created[32];

	(void)ctx;
	campaign_time(created, sizeof(created), c->created_at);
	printf("%-24s %-9s %-16s %9lld  %-30s %s  list %s%s\n", c->name,
	       c->state, created, (long long)counts->total,
	       c->sender ? c->sender : "-",
	       c->template_ref ? c->template_ref : "-", c->list,
	       c->transactional ? " (transactional)" : "");
	return 0;
}

static int campaign_list(struct cli *cli, int argc, char **argv)
{
	struct store *st;
	const char *error;
	int ret;

	(void)argv;
	if (argc > 1)
		return cli_usage_error("campaign", "campaign list takes no "
				       "arguments");
	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	printf("%-24s %-9s %-16s %9s  %-30s %s\n", "NAME", "STATE",
	       "CREATED", "JOBS", "FROM", "TEMPLATE");
	ret = store_campaign_foreach(st, campaign_list_one, NULL, &error);
	if (ret < 0)
		cli_error("%s", error);
	store_close(&st);
	return ret < 0 ? 1 : 0;
}

int cmd_campaign(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("campaign", "campaign needs a "
				       "subcommand: create or list");
	if (strcmp(argv[1], "create") == 0)
		return campaign_create(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return campaign_list(cli, argc - 1, argv + 1);
	return cli_usage_error("campaign", "no campaign subcommand '%s'",
			       argv[1]);
}
