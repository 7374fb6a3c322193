/*
 * config - volley.cfg: reading, checking and defaults.
 *
 * The file is libconfig syntax.  Every setting volley knows is listed in
 * one table in config.c with its type; anything else in the file is an
 * error naming the setting and its line, so a typo never silently falls
 * back to a default.  examples/volley.cfg documents every setting.
 */
#ifndef VOLLEY_CONFIG_H
#define VOLLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim.h"

#define CONFIG_DEFAULT_FILE "volley.cfg"

struct config {
	char *file;		/* the file read, or NULL if none */
	char *dir;		/* relative paths are relative to this */

	/* store */
	char *store_path;	/* resolved against dir */
	int store_busy_timeout_ms;

	/* import */
	char *import_address_column;

	/* verp: the secret VERP tokens are made with (resolved), or NULL */
	char *verp_secret_file;

	/* unsubscribe: the secret of unsubscribe tokens (resolved), and
	 * the URL {{unsubscribe_url}} starts with (no trailing '/');
	 * each NULL when not set */
	struct config_unsubscribe {
		char *secret_file;
		char *base_url;
	} unsubscribe;

	/* smtp: the relay every send goes through */
	struct config_smtp {
		char *host;
		int port;		/* default by tls: 587, 465, 25 */
		char *tls;		/* "starttls", "implicit" or "none" */
		bool tls_verify;
		char *tls_name;		/* name checked in the certificate */
		char *ca_file;		/* resolved against dir */
		char *username;
		char *password_env;	/* names, not the secret itself */
		char *password_file;
		char *xoauth2_token_env;
		char *xoauth2_token_file;
		bool allow_plaintext_auth;
		char *helo_name;	/* NULL: this host's name */
		int connections;
		bool pipelining;
		bool chunking;
		int chunking_window;
		int max_messages_per_connection;	/* 0: no limit */
		/* after a connection ended badly, over the pool; 0: no cap */
		int reconnects_per_second;
		/* seconds (RFC 5321 4.5.3.2) */
		int timeout_connect;
		int timeout_greeting;
		int timeout_command;
		int timeout_data_end;
	} smtp;

	/* send: how `volley send` runs (times in seconds unless _ms) */
	struct config_send {
		int batch_size;		/* jobs per claim */
		int lease_seconds;
		int commit_interval_ms;
		int commit_batch;
		int stop_timeout;
		int rate_per_second;	/* 0: no limit */
		int rate_per_hour;
		int rate_burst;		/* 0: the limiter's default */
		int retry_first_delay;
		int retry_max_delay;
		int retry_backoff_factor;
		int retry_max_attempts;
		int retry_max_age;
		int throttle_backoff;	/* pool pause on a throttling reply */
		char *accounting_log;	/* resolved against dir, or NULL */
		bool in_doubt_hold;	/* in_doubt = "hold" (else "resend") */
	} send;

	/* bounces: what `volley bounces ingest` does with a bounce */
	struct config_bounces {
		char *rules_file;	/* resolved; NULL: the rules built in */
		int soft_limit;		/* soft bounces that suppress ... */
		int soft_window_days;	/* ... within this many days */
		int match_days;		/* by address: campaigns this recent */
		/* a bounce not proven ours (no VERP token, no volley
		 * Message-ID with its address) suppresses too */
		bool suppress_unverified;
	} bounces;

	/* dkim: the signing keys, as configured (key_file resolved
	 * against dir; every string owned) */
	struct dkim_key_spec *dkim;
	size_t ndkim;
};

/*
 * config_load - read path, or CONFIG_DEFAULT_FILE when path is NULL.  A
 * missing default file gives the defaults; a missing file named
 * explicitly is an error.  On error returns -1 and writes a one-line
 * reason ("volley.cfg:12: unknown setting 'store.paht'") into err.
 */
int config_load(struct config *cfg, const char *path, const char **error_r);
void config_free(struct config *cfg);

/* config_resolve_path - path made relative to the configuration's folder */
char *config_resolve_path(const struct config *cfg, const char *path);

/*
 * config_smtp_secret - the password (which is 0) or XOAUTH2 token
 * (which is 1) from the environment variable or file the configuration
 * names: the first line of the file, without its line end.  Read only
 * when a command sends, so that commands that do not send never need
 * it.  *secret_r is NULL when none is configured; free it with
 * config_secret_free, which wipes it.  Returns -1 with a reason in err
 * ("smtp.password_env names VOLLEY_PW, which is not set").
 */
int config_smtp_secret(const struct config *cfg, int which, char **secret_r,
		       const char **error_r);
void config_secret_free(char **secretp);

/*
 * config_verp_secret - the VERP secret (the first line of
 * verp.secret_file: at least CONFIG_VERP_SECRET_MIN characters, not
 * readable by every user).  Free it with config_secret_free.  -1 with
 * a reason that names the setting.
 */
#define CONFIG_VERP_SECRET_MIN 16
int config_verp_secret(const struct config *cfg, char **secret_r,
		       const char **error_r);

/*
 * config_unsubscribe_secret - the unsubscribe secret (the first line of
 * unsubscribe.secret_file, checked as the VERP secret is).  what says
 * who needs it ("{{unsubscribe_url}}", "volley serve") in the error when
 * none is configured.  Free it with config_secret_free.
 */
int config_unsubscribe_secret(const struct config *cfg, const char *what,
			      char **secret_r, const char **error_r);

/*
 * config_read_secret - the first line of the file at path, without its
 * line end, for a secret given as a file; setting names it in errors
 * ("--password-file /x: No such file or directory").  Free it with
 * config_secret_free.
 */
int config_read_secret(const char *path, const char *setting,
		       char **secret_r, const char **error_r);

#endif
