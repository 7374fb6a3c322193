/*
 * cli - what volley's subcommands share: the command table, the loaded
 * configuration, and helpers for messages.
 *
 * Each command is a function taking its own argv (argv[0] is the command
 * name) and returning the process exit status: 0 on success, 1 on failure
 * (after printing one line that says why), 2 on a usage error.
 */
#ifndef VOLLEY_CLI_H
#define VOLLEY_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

struct buf;
struct store;

#define EXIT_USAGE 2

struct cli {
	const char *config_path;	/* -c FILE, or NULL */
	struct config cfg;
	bool cfg_loaded;
};

struct cli_command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary;	/* one line for `volley help` */
	const char *help;	/* the full text for `volley help NAME` */
};

extern const struct cli_command cli_commands[];
extern const char cli_usage[];

/* cli_find_command - the command named name, or NULL */
const struct cli_command *cli_find_command(const char *name);
/* cli_print_commands - usage and the list of commands */
void cli_print_commands(FILE *out);

/* cli_error - print "volley: <message>" on stderr; returns 1 */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_usage_error - print the error and a pointer to the help; returns 2 */
int cli_usage_error(const char *command, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* cli_wants_help - true if argv holds -h or --help before a "--" */
bool cli_wants_help(int argc, char **argv);
/* cli_print_help - the help of one command; returns 0 */
int cli_print_help(const char *name);

/* cli_config - load the configuration once; 0 or -1 (already printed) */
int cli_config(struct cli *cli);
/*
 * cli_open_store - open the configured store; create it if create is set.
 * Returns NULL after printing why.
 */
struct store *cli_open_store(struct cli *cli, bool create);

/* the commands */
int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_campaign(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_preview(struct cli *cli, int argc, char **argv);
int cmd_help(struct cli *cli, int argc, char **argv);
int cmd_sink(struct cli *cli, int argc, char **argv);
int cmd_send_one(struct cli *cli, int argc, char **argv);
int cmd_report(struct cli *cli, int argc, char **argv);
int cmd_send(struct cli *cli, int argc, char **argv);
int cmd_release(struct cli *cli, int argc, char **argv);
int cmd_suppress(struct cli *cli, int argc, char **argv);
/* campaign_list_problem - why name cannot name a list, or NULL ("global"
 * can: it is the scope of every list) */
const char *campaign_list_problem(const char *name);
int cmd_loadtest(struct cli *cli, int argc, char **argv);
int cmd_dkim(struct cli *cli, int argc, char **argv);
int cmd_serve(struct cli *cli, int argc, char **argv);
int cmd_bounces(struct cli *cli, int argc, char **argv);

/* help texts kept beside their commands */
extern const char cmd_sink_help[];
extern const char cmd_send_one_help[];
extern const char cmd_report_help[];
extern const char cmd_send_help[];
extern const char cmd_release_help[];
extern const char cmd_suppress_help[];
extern const char cmd_loadtest_help[];
extern const char cmd_dkim_help[];
extern const char cmd_serve_help[];
extern const char cmd_bounces_help[];

struct bounce_rules;
struct store_bounce_policy;
/*
 * cli_bounce_rules - the bounce rules of bounces.rules_file, else the
 * ones built in (for bounces ingest and for send's permanent replies);
 * -1 after saying why.  Free with bounce_rules_free.
 */
int cli_bounce_rules(struct cli *cli, struct bounce_rules **rules_r);
/* cli_bounce_policy - bounces.soft_limit and soft_window_days */
void cli_bounce_policy(const struct cli *cli,
		       struct store_bounce_policy *policy);

struct dkim_keys;
/*
 * cli_dkim_keys - volley.cfg's DKIM keys, read and checked (with a
 * notice for short RSA keys); *keys_r may hold none.  -1 after saying
 * why.
 */
int cli_dkim_keys(struct cli *cli, struct dkim_keys **keys_r);

struct message_tmpl;
/*
 * cli_tmpl_uses_unsubscribe_url - does the template use
 * {{unsubscribe_url}} anywhere (message.cfg, bodies, partials)?
 */
bool cli_tmpl_uses_unsubscribe_url(const struct message_tmpl *mt);
/*
 * cli_unsubscribe_secret - what a command that renders needs for
 * {{unsubscribe_url}} and the automatic List-Unsubscribe headers: the
 * secret when volley.cfg sets unsubscribe.base_url (*secret_r NULL when
 * not; free it with config_secret_free).  uses: some template uses
 * {{unsubscribe_url}}, which without the settings is an error naming
 * them (never a message with an empty link).  what names the campaign
 * in errors.  -1 after saying why.
 */
int cli_unsubscribe_secret(struct cli *cli, bool uses, const char *what,
			   char **secret_r);

#endif
