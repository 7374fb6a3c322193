/*
 * cmd_preview - `volley preview CAMPAIGN [--recipient ADDR | --limit N]
 * --out DIR [--strict]`: the exact bytes volley would send, one .eml file
 * per recipient, to open in a mail client before sending.  First it
 * reports the names the template uses that no recipient of the campaign
 * has (an error with --strict), and for each message a URL it had to
 * replace.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "dkim.h"
#include "message.h"
#include "recipient.h"
#include "snapshot.h"
#include "store.h"
#include "token.h"
#include "varnames.h"
#include "xalloc.h"

#define PREVIEW_DEFAULT_LIMIT 10

struct preview {
	struct store *st;
	const struct store_campaign *campaign;
	const struct message_tmpl *mt;
	const char *out_dir;
	struct dkim_signer *signer;	/* NULL: no keys configured */
	struct token_key *unsub;	/* NULL: no unsubscribe.base_url */
	const char *unsub_base;
	struct buf unsub_url;
	int files_fd;			/* the campaign's --files, or -1 */
	struct buf file;		/* a recipient's attachment */
	size_t signed_count;
	struct recipient_names names;
	struct message_bufs bufs;
	struct buf msg;
	struct buf path;
	size_t written;
	size_t failed;
	bool stopped;		/* preview_one gave up (and said why) */
};

/* preview_file_name - DIR/NNNN-address.eml, the address made file-safe */
static void preview_file_name(struct preview *pv, const char *addr)
{
	buf_reset(&pv->path);
	buf_printf(&pv->path, "%s/%04zu-", pv->out_dir, pv->written + 1);
	for (const char *p = addr; *p && p - addr < 100; p++) {
		unsigned char c = (unsigned char)*p;

		buf_putc(&pv->path, (c >= 0x80 || (c >= '0' && c <= '9') ||
				     (c >= 'a' && c <= 'z') ||
				     (c >= 'A' && c <= 'Z') || c == '@' ||
				     c == '.' || c == '-' || c == '+') ?
				    (char)c : '_');
	}
	buf_append_str(&pv->path, ".eml");
}

/* preview_attach - message_job.attach, as `volley send` reads them */
static int preview_attach(void *ctx, const char *path, const void **data,
			  size_t *len, const char **error_r)
{
	struct preview *pv = ctx;

	if (recipient_file_read(pv->files_fd, path, &pv->file, error_r) != 0)
		return -1;
	*data = pv->file.data;
	*len = pv->file.len;
	return 0;
}

/* What preview_names learns of the campaign's recipients. */
struct preview_names {
	struct preview *pv;
	struct varnames names;
	int64_t import_id;	/* the last job's, fed in already */
	size_t jobs;
};

/* preview_name - note a name the template uses (as import_name does) */
static void preview_name(void *ctx, const struct tmpl_name *n)
{
	struct preview_names *pn = ctx;
	struct buf where = BUF_INIT;

	/* one every recipient must have was checked at import */
	if (!n->in_section && !n->section && !memchr(n->name, '.', n->len))
		return;
	buf_printf(&where, "%s:%u:%u", n->file, n->line, n->column);
	varnames_add(&pn->names, n->name, n->len, n->in_section, n->section,
		     buf_cstr(&where));
	buf_free(&where);
}

/* preview_names_job - what one recipient has; stops once all is known */
static int preview_names_job(void *ctx, const struct store_job *job)
{
	struct preview_names *pn = ctx;
	const struct recipient_import *ri;
	const char *error;

	pn->jobs++;
	if (pn->jobs == 1 || job->import_id != pn->import_id) {
		ri = recipient_import_get(&pn->pv->names, pn->pv->st,
					  job->import_id, &error);
		if (ri == NULL) {
			cli_error("%s", error);
			pn->pv->stopped = true;
			return -1;
		}
		pn->import_id = job->import_id;
		varnames_columns(&pn->names, ri->names.data, ri->names.len);
		varnames_root(&pn->names, ri->address_column,
			      strlen(ri->address_column), true);
	}
	varnames_recipient(&pn->names, job->vars, job->vars_len);
	return varnames_done(&pn->names) ? 1 : 0;
}

/*
 * preview_check_names - report each name the template uses that no
 * recipient of the campaign has.  Reads recipients until all are found:
 * a few when all are, every one when one is not (the case to report).
 * Returns the number reported, or -1 if the store failed.
 */
static long preview_check_names(struct preview *pv, bool strict)
{
	struct preview_names pn = { .pv = pv };
	const char *error;
	long missing = 0;
	int rc;

	message_tmpl_names(pv->mt, preview_name, &pn);
	if (!varnames_done(&pn.names)) {
		rc = store_job_foreach(pv->st, pv->campaign->id, NULL, 0,
				       preview_names_job, &pn, &error);
		if (rc < 0) {
			if (!pv->stopped)
				cli_error("%s", error);
			varnames_free(&pn.names);
			return -1;
		}
	}
	for (size_t i = 0; i < pn.names.n && pn.jobs > 0; i++) {
		if (varnames_found(&pn.names, i))
			continue;
		cli_error("%s%s: no recipient of campaign '%s' has {{%s%s}}",
			  strict ? "" : "warning: ", pn.names.v[i].where,
			  pv->campaign->name, pn.names.v[i].section ? "#" : "",
			  pn.names.v[i].name);
		missing++;
	}
	varnames_free(&pn.names);
	return missing;
}

/* preview_unsafe - say which URL a recipient's message had replaced */
static void preview_unsafe(const struct preview *pv, const char *address)
{
	const struct tmpl_notes *n = &pv->bufs.notes;

	cli_error("warning: %s: %s:%u:%u: {{%.*s}} is not a safe URL "
		  "(http:, https:, mailto: or relative), sent as %s%s",
		  address, n->file, n->line, n->column, (int)n->name_len,
		  n->name, TMPL_UNSAFE_URL, n->unsafe_urls > 1 ?
		  " (with more in this message)" : "");
}

static int preview_one(void *ctx, const struct store_job *job)
{
	struct preview *pv = ctx;
	struct vars_data vd;
	struct message_job mj = {
		.to = job->address, .to_len = job->address_len,
		.campaign_id = job->campaign_id, .job_id = job->id,
		.campaign_created = pv->campaign->created_at,
		.date = time(NULL),
		.attach = pv->files_fd >= 0 ? preview_attach : NULL,
		.attach_ctx = pv,
	};
	const char *error;
	size_t start = 0;
	int nsigs = 0;
	bool vars_ok;
	FILE *f;

	buf_reset(&pv->msg);
	buf_reset(&pv->unsub_url);
	if (pv->unsub != NULL &&
	    token_unsub_url(pv->unsub, pv->unsub_base, job->campaign_id,
			    job->id, job->address, job->address_len,
			    &pv->unsub_url) < 0) {
		cli_error("%s: cannot make the unsubscribe token",
			  job->address);
		pv->stopped = true;
		return -1;
	}
	/* a transactional campaign's messages get no List-Unsubscribe */
	if (pv->unsub != NULL && !pv->campaign->transactional) {
		mj.unsubscribe_url = pv->unsub_url.data;
		mj.unsubscribe_url_len = pv->unsub_url.len;
	}
	vars_ok = recipient_data(&pv->names, pv->st, job, &vd, &error) >= 0;
	if (vars_ok && pv->unsub != NULL)
		vars_data_set_unsubscribe_url(&vd, pv->unsub_url.data,
					      pv->unsub_url.len);
	if (!vars_ok ||
	    message_render(pv->mt, &vd.data, &mj, &pv->bufs, &pv->msg,
			   &error) < 0 ||
	    (pv->signer != NULL &&
	     (nsigs = dkim_sign_buf(pv->signer, &pv->msg, 0, mj.date, &start,
				    &error)) < 0)) {
		cli_error("%s: %s", job->address, error);
		pv->failed++;
		return 0;
	}
	if (nsigs > 0)
		pv->signed_count++;
	if (pv->bufs.notes.unsafe_urls > 0)
		preview_unsafe(pv, job->address);
	preview_file_name(pv, job->address);
	f = fopen(buf_cstr(&pv->path), "wb");
	if (f == NULL || fwrite(pv->msg.data + start, 1,
				pv->msg.len - start, f) !=
			 pv->msg.len - start || fclose(f) != 0) {
		cli_error("%s: %s", buf_cstr(&pv->path), strerror(errno));
		pv->stopped = true;
		return -1;
	}
	pv->written++;
	return 0;
}

int cmd_preview(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "recipient", required_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'n' },
		{ "out", required_argument, NULL, 'o' },
		{ "strict", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct preview pv = { .files_fd = -1 };
	struct store_campaign campaign;
	struct snapshot snap = { 0 };
	struct message_tmpl *mt = NULL;
	struct dkim_keys *keys = NULL;
	const char *recipient = NULL, *error;
	long limit = PREVIEW_DEFAULT_LIMIT, missing;
	char *end, *name = NULL;
	bool strict = false;
	int c, found, ret = 1;

	while ((c = getopt_long(argc, argv, "r:n:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			recipient = optarg;
			break;
		case 'n':
			limit = strtol(optarg, &end, 10);
			if (*end != '\0' || limit < 1)
				return cli_usage_error("preview", "--limit "
						       "takes a number above "
						       "0");
			break;
		case 'o':
			pv.out_dir = optarg;
			break;
		case 'S':
			strict = true;
			break;
		default:
			return cli_usage_error("preview", "bad option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("preview", "preview takes one CAMPAIGN");
	if (pv.out_dir == NULL)
		return cli_usage_error("preview", "preview needs --out DIR");
	if (mkdir(pv.out_dir, 0777) < 0 && errno != EEXIST)
		return cli_error("%s: %s", pv.out_dir, strerror(errno));

	/* signed as `volley send` would sign them, so they verify */
	if (cli_dkim_keys(cli, &keys) < 0)
		return 1;
	if (dkim_keys_count(keys) > 0 &&
	    dkim_signer_new(keys, &pv.signer, &error) < 0) {
		cli_error("%s", error);
		dkim_keys_free(&keys);
		return 1;
	}
	pv.st = cli_open_store(cli, false);
	if (pv.st == NULL)
		goto out;
	found = store_campaign_get(pv.st, argv[optind], &campaign, &error);
	if (found <= 0) {
		if (found < 0)
			cli_error("%s", error);
		else
			cli_error("no campaign '%s'", argv[optind]);
		goto out;
	}
	/* The next store call reuses the buffer campaign points into. */
	name = xstrdup(campaign.name);
	campaign.name = name;
	if (campaign.files_dir != NULL) {
		pv.files_fd = open(campaign.files_dir, O_PATH | O_DIRECTORY |
				   O_CLOEXEC);
		if (pv.files_fd < 0) {
			cli_error("campaign '%s': files folder %s: %s", name,
				  campaign.files_dir, strerror(errno));
			goto out;
		}
	}
	campaign.sender = campaign.template_ref = campaign.state = NULL;
	campaign.files_dir = NULL;
	if (snapshot_read_store(&snap, pv.st, campaign.id, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	if (snap.nfiles == 0) {
		cli_error("campaign '%s' has no template (create it with "
			  "--template DIR)", name);
		goto out;
	}
	if (snapshot_load(&snap, &mt, &error) < 0) {
		cli_error("campaign '%s': %s", name, error);
		goto out;
	}
	{
		char *secret = NULL;
		struct buf what = BUF_INIT;

		buf_printf(&what, "campaign '%s'", name);
		if (cli_unsubscribe_secret(cli,
					   cli_tmpl_uses_unsubscribe_url(mt),
					   buf_cstr(&what), &secret) < 0) {
			buf_free(&what);
			goto out;
		}
		buf_free(&what);
		if (secret != NULL &&
		    token_key_new(secret, strlen(secret), &pv.unsub) < 0) {
			config_secret_free(&secret);
			cli_error("cannot set up HMAC-SHA256");
			goto out;
		}
		config_secret_free(&secret);
		pv.unsub_base = cli->cfg.unsubscribe.base_url;
	}
	pv.campaign = &campaign;
	pv.mt = mt;
	missing = preview_check_names(&pv, strict);
	if (missing < 0)
		goto out;
	if (missing > 0 && strict) {
		cli_error("the template uses %ld name%s no recipient has "
			  "(--strict); no messages written", missing,
			  missing == 1 ? "" : "s");
		goto out;
	}
	if (store_job_foreach(pv.st, campaign.id, recipient,
			      recipient ? 0 : (size_t)limit, preview_one, &pv,
			      &error) != 0) {
		if (!pv.stopped)
			cli_error("%s", error);
		goto out;
	}
	if (recipient != NULL && pv.written + pv.failed == 0) {
		cli_error("campaign '%s' has no recipient '%s'", name,
			  recipient);
		goto out;
	}
	printf("wrote %zu message%s to %s", pv.written,
	       pv.written == 1 ? "" : "s", pv.out_dir);
	if (dkim_keys_count(keys) > 0)
		printf(", %zu DKIM-signed", pv.signed_count);
	if (pv.failed > 0)
		printf(" (%zu recipient%s failed, see above)", pv.failed,
		       pv.failed == 1 ? "" : "s");
	putchar('\n');
	ret = pv.failed > 0 ? 1 : 0;
out:
	message_tmpl_free(&mt);
	snapshot_free(&snap);
	recipient_names_free(&pv.names);
	message_bufs_free(&pv.bufs);
	buf_free(&pv.msg);
	buf_free(&pv.path);
	store_close(&pv.st);
	dkim_signer_free(&pv.signer);
	token_key_free(&pv.unsub);
	buf_free(&pv.unsub_url);
	if (pv.files_fd >= 0)
		close(pv.files_fd);
	buf_free(&pv.file);
	dkim_keys_free(&keys);
	free(name);
	return ret;
}
