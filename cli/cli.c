/*
 * cli - the command table, help, and what every command shares.
 *
 * The command table below is the single list of commands; `volley help`
 * and `volley help COMMAND` print from it.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "escape.h"
#include "store.h"

const char cli_usage[] =
	"usage: volley [-c FILE] COMMAND [ARGS...]\n"
	"\n"
	"  -c, --config FILE  configuration file (default: ./volley.cfg)\n"
	"  -h, --help         this help; `volley help COMMAND` for a command\n"
	"  -V, --version      print the version\n";

const struct cli_command cli_commands[] = {
	{ "init", cmd_init, "create the job store (safe to run again)",
	  "usage: volley init\n"
	  "\n"
	  "Create the job store named by store.path in the configuration\n"
	  "(default volley.db beside volley.cfg), or bring an existing one\n"
	  "up to this version's schema.  Running it again changes nothing.\n" },
	{ "campaign", cmd_campaign, "create and list campaigns",
	  "usage: volley campaign create NAME [--from ADDR] [--template DIR]\n"
	  "                              [--files DIR] [--list LIST]\n"
	  "                              [--transactional]\n"
	  "       volley campaign list\n"
	  "\n"
	  "create   a new, empty campaign.  NAME must be unique.\n"
	  "         --from ADDR     envelope sender (a bare address, no\n"
	  "                         display name); {{verp}} in its local\n"
	  "                         part stands for each recipient's token\n"
	  "                         (needs verp.secret_file in volley.cfg)\n"
	  "         --template DIR  the campaign's template folder\n"
	  "         --files DIR     where attachments named by recipient\n"
	  "                         (\"invoices/{{id}}.pdf\") are read\n"
	  "                         from; never outside it\n"
	  "         --list LIST     the list it goes to (default \"default\"):\n"
	  "                         addresses suppressed for LIST or for\n"
	  "                         every list are never sent it\n"
	  "         --transactional receipts and the like: unsubscribes do\n"
	  "                         not stop it; bounces and complaints do\n"
	  "         Without --from the envelope sender is message.cfg's\n"
	  "         return_path, else the From header's address; a campaign\n"
	  "         with none of them is refused.\n"
	  "list     every campaign with its sender and template\n" },
	{ "import", cmd_import, "add recipients from CSV or JSON Lines",
	  "usage: volley import CAMPAIGN FILE [--skip-invalid] [--rejects FILE]\n"
	  "                    [--address-column NAME] [--format csv|jsonl]\n"
	  "                    [--strict]\n"
	  "\n"
	  "Add recipients to CAMPAIGN from FILE, or - for standard input:\n"
	  "  CSV (RFC 4180, UTF-8) with a header row naming the columns; the\n"
	  "  address column is 'email' (matched ignoring case), every other\n"
	  "  column a template variable;\n"
	  "  JSON Lines (FILE ending .jsonl or .ndjson, or --format jsonl):\n"
	  "  one object per line, nested objects and lists allowed, the\n"
	  "  address a string under \"email\".\n"
	  "\n"
	  "The import is one transaction.  By default a file with any bad\n"
	  "row imports nothing and every bad row is printed with its line\n"
	  "number and the reason: bad CSV or JSON, invalid UTF-8, an invalid\n"
	  "address, or a variable the campaign's template uses outside any\n"
	  "section missing.  An address already in the campaign (ignoring\n"
	  "ASCII case) is counted as a duplicate, not added twice.\n"
	  "\n"
	  "A name the template uses anywhere (in sections, partials and\n"
	  "message.cfg too) that no recipient in FILE has is reported with\n"
	  "its FILE:LINE:COLUMN in the template: a typo, or a column left\n"
	  "out.  Inside a section a name counts as had if any object in a\n"
	  "recipient, at any depth, has it.\n"
	  "\n"
	  "  --skip-invalid         import the good rows; write the bad ones\n"
	  "                         to the rejects file\n"
	  "  --rejects FILE         where bad rows go (CSV: line, reason,\n"
	  "                         record); default FILE.rejects.csv, or\n"
	  "                         volley-rejects.csv for standard input\n"
	  "  --address-column NAME  the column (or JSON key) holding the\n"
	  "                         address (default import.address_column)\n"
	  "  --format csv|jsonl     the file's format, whatever its name\n"
	  "  --strict               a name no recipient has is an error:\n"
	  "                         nothing is imported\n" },
	{ "preview", cmd_preview, "write the exact messages as .eml files",
	  "usage: volley preview CAMPAIGN [--recipient ADDR | --limit N] "
	  "--out DIR\n"
	  "                      [--strict]\n"
	  "\n"
	  "Render the campaign's template for its recipients and write the\n"
	  "exact bytes volley would send, one .eml file per recipient, into\n"
	  "DIR (created if needed), to open in a mail client.\n"
	  "\n"
	  "  --recipient ADDR  only this recipient (ignoring ASCII case)\n"
	  "  --limit N         the first N recipients (default 10)\n"
	  "  --out DIR         where the .eml files go\n"
	  "  --strict          a name the template uses that no recipient\n"
	  "                    has is an error: no message is written\n"
	  "\n"
	  "First each name the template uses that no recipient of the\n"
	  "campaign has is reported (as 'volley import' does).  A recipient\n"
	  "whose variables cannot make a valid message (a line break in a\n"
	  "header value, say) is reported and skipped, and the command then\n"
	  "exits 1.  A value body.html uses as a URL that is not a safe one\n"
	  "(javascript:, data: ...) is replaced and reported with the\n"
	  "recipient; the message is written.\n" },
	{ "status", cmd_status, "show jobs per state for each campaign",
	  "usage: volley status [CAMPAIGN] [--json]\n"
	  "\n"
	  "Counts of jobs per state (queued, sending, sent, deferred,\n"
	  "failed) for every campaign, or for one.  Safe to run while a send\n"
	  "is going on.  --json prints an array with one object per\n"
	  "campaign: name, queued, sending, sent, deferred, failed, total,\n"
	  "in_doubt (deferred and held in doubt, see `volley release`).\n" },
	{ "send", cmd_send, "deliver campaigns through the relay",
	  cmd_send_help },
	{ "release", cmd_release, "send again or drop recipients held in doubt",
	  cmd_release_help },
	{ "suppress", cmd_suppress, "the addresses never to send to",
	  cmd_suppress_help },
	{ "report", cmd_report, "one row per recipient: state and last reply",
	  cmd_report_help },
	{ "send-one", cmd_send_one,
	  "send one message through the configured server (for debugging)",
	  cmd_send_one_help },
	{ "sink", cmd_sink, "run the built-in SMTP test server", cmd_sink_help },
	{ "loadtest", cmd_loadtest, "load-test an SMTP relay: latency, "
	  "throughput, errors", cmd_loadtest_help },
	{ "dkim", cmd_dkim, "make a DKIM key, or check its DNS record",
	  cmd_dkim_help },
	{ "serve", cmd_serve, "the one-click unsubscribe server (HTTP)",
	  cmd_serve_help },
	{ "bounces", cmd_bounces, "read bounces and complaints; list them",
	  cmd_bounces_help },
	{ "help", cmd_help, "show help for a command",
	  "usage: volley help [COMMAND]\n" },
	{ NULL, NULL, NULL, NULL },
};

const struct cli_command *cli_find_command(const char *name)
{
	for (const struct cli_command *c = cli_commands; c->name; c++) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

/*
 * cli_vsay - "volley: MESSAGE" and tail on stderr in one write (threads'
 * lines never mix), the message escaped: it often carries a server's
 * reply or a file's bytes, which must not drive the terminal
 */
__attribute__((format(printf, 2, 0)))
static void cli_vsay(const char *tail, const char *fmt, va_list ap)
{
	struct buf raw = BUF_INIT, shown = BUF_INIT;

	buf_vprintf(&raw, fmt, ap);
	escape_controls(&shown, buf_cstr(&raw), raw.len);
	fprintf(stderr, "volley: %s%s", buf_cstr(&shown), tail);
	buf_free(&raw);
	buf_free(&shown);
}

int cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vsay("\n", fmt, ap);
	va_end(ap);
	return 1;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
	char tail[200];
	va_list ap;

	snprintf(tail, sizeof(tail), " (see 'volley help%s%s')\n",
		 command ? " " : "", command ? command : "");
	va_start(ap, fmt);
	cli_vsay(tail, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

int cli_print_help(const char *name)
{
	const struct cli_command *c = cli_find_command(name);

	if (c == NULL)
		return cli_usage_error(NULL, "no command '%s'", name);
	fputs(c->help, stdout);
	return 0;
}

void cli_print_commands(FILE *out)
{
	fputs(cli_usage, out);
	fputs("\ncommands:\n", out);
	for (const struct cli_command *c = cli_commands; c->name; c++)
		fprintf(out, "  %-10s %s\n", c->name, c->summary);
}

int cmd_help(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc < 2) {
		cli_print_commands(stdout);
		return 0;
	}
	return cli_print_help(argv[1]);
}

int cli_config(struct cli *cli)
{
	const char *error;

	if (cli->cfg_loaded)
		return 0;
	if (config_load(&cli->cfg, cli->config_path, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	cli->cfg_loaded = true;
	return 0;
}

struct store *cli_open_store(struct cli *cli, bool create)
{
	struct store_params params = { 0 };
	struct store *st;
	const char *error;

	if (cli_config(cli) < 0)
		return NULL;
	params.busy_timeout_ms = cli->cfg.store_busy_timeout_ms;
	params.create = create;
	if (store_open(cli->cfg.store_path, &params, &st, &error) < 0) {
		cli_error("%s", error);
		return NULL;
	}
	return st;
}

