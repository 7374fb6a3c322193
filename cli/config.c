/*
 * config - volley.cfg: reading, checking and defaults (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "errmsg.h"
#include "oomguard.h"
#include "xalloc.h"

enum config_kind {
	KIND_GROUP,
	KIND_STRING,
	KIND_INT,
	KIND_BOOL,
	KIND_LIST,	/* ( { ... }, ... ): its groups' settings are
			 * checked under "NAME.[]" */
	KIND_ARRAY,	/* [ "a", "b" ] of strings */
};

struct config_setting_spec {
	const char *path;
	enum config_kind kind;
};

/* Every setting volley reads.  Keep examples/volley.cfg in step. */
static const struct config_setting_spec config_specs[] = {
	{ "store", KIND_GROUP },
	{ "store.path", KIND_STRING },
	{ "store.busy_timeout_ms", KIND_INT },
	{ "import", KIND_GROUP },
	{ "import.address_column", KIND_STRING },
	{ "smtp", KIND_GROUP },
	{ "smtp.host", KIND_STRING },
	{ "smtp.port", KIND_INT },
	{ "smtp.tls", KIND_STRING },
	{ "smtp.tls_verify", KIND_BOOL },
	{ "smtp.tls_name", KIND_STRING },
	{ "smtp.ca_file", KIND_STRING },
	{ "smtp.username", KIND_STRING },
	{ "smtp.password_env", KIND_STRING },
	{ "smtp.password_file", KIND_STRING },
	{ "smtp.xoauth2_token_env", KIND_STRING },
	{ "smtp.xoauth2_token_file", KIND_STRING },
	{ "smtp.allow_plaintext_auth", KIND_BOOL },
	{ "smtp.helo_name", KIND_STRING },
	{ "smtp.connections", KIND_INT },
	{ "smtp.pipelining", KIND_BOOL },
	{ "smtp.chunking", KIND_BOOL },
	{ "smtp.chunking_window", KIND_INT },
	{ "smtp.max_messages_per_connection", KIND_INT },
	{ "smtp.reconnects_per_second", KIND_INT },
	{ "smtp.timeouts", KIND_GROUP },
	{ "smtp.timeouts.connect", KIND_INT },
	{ "smtp.timeouts.greeting", KIND_INT },
	{ "smtp.timeouts.command", KIND_INT },
	{ "smtp.timeouts.data_end", KIND_INT },
	{ "send", KIND_GROUP },
	{ "send.batch_size", KIND_INT },
	{ "send.lease_seconds", KIND_INT },
	{ "send.commit_interval_ms", KIND_INT },
	{ "send.commit_batch", KIND_INT },
	{ "send.stop_timeout", KIND_INT },
	{ "send.rate_per_second", KIND_INT },
	{ "send.rate_per_hour", KIND_INT },
	{ "send.rate_burst", KIND_INT },
	{ "send.throttle_backoff", KIND_INT },
	{ "send.accounting_log", KIND_STRING },
	{ "send.in_doubt", KIND_STRING },
	{ "send.retry", KIND_GROUP },
	{ "send.retry.first_delay", KIND_INT },
	{ "send.retry.max_delay", KIND_INT },
	{ "send.retry.backoff_factor", KIND_INT },
	{ "send.retry.max_attempts", KIND_INT },
	{ "send.retry.max_age", KIND_INT },
	{ "verp", KIND_GROUP },
	{ "verp.secret_file", KIND_STRING },
	{ "unsubscribe", KIND_GROUP },
	{ "unsubscribe.secret_file", KIND_STRING },
	{ "unsubscribe.base_url", KIND_STRING },
	{ "bounces", KIND_GROUP },
	{ "bounces.rules_file", KIND_STRING },
	{ "bounces.soft_limit", KIND_INT },
	{ "bounces.soft_window_days", KIND_INT },
	{ "bounces.match_days", KIND_INT },
	{ "bounces.suppress_unverified", KIND_BOOL },
	{ "dkim", KIND_LIST },
	{ "dkim.[].domain", KIND_STRING },
	{ "dkim.[].selector", KIND_STRING },
	{ "dkim.[].key_file", KIND_STRING },
	{ "dkim.[].headers", KIND_ARRAY },
	{ "dkim.[].canonicalization", KIND_STRING },
	{ "dkim.[].expire_days", KIND_INT },
};

static const char *const config_kind_names[] = {
	[KIND_GROUP] = "a group { ... }",
	[KIND_STRING] = "a string",
	[KIND_INT] = "an integer",
	[KIND_BOOL] = "true or false",
	[KIND_LIST] = "a list ( { ... }, ... )",
	[KIND_ARRAY] = "an array [ \"...\", ... ] of strings",
};

/* config_kind_matches - does a libconfig setting type fit the spec? */
static bool config_kind_matches(enum config_kind kind, int type)
{
	switch (kind) {
	case KIND_GROUP:
		return type == CONFIG_TYPE_GROUP;
	case KIND_STRING:
		return type == CONFIG_TYPE_STRING;
	case KIND_INT:
		return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
	case KIND_BOOL:
		return type == CONFIG_TYPE_BOOL;
	case KIND_LIST:
		return type == CONFIG_TYPE_LIST;
	case KIND_ARRAY:
		return type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST;
	}
	return false;
}

static int config_check_list(const config_setting_t *list, const char *path,
			     const char *file, const char **error_r);
static int config_check_strings(const config_setting_t *arr,
				const char *path, const char *file,
				const char **error_r);

/* config_check - refuse unknown settings and wrong types, recursively */
static int config_check(const config_setting_t *group, const char *prefix,
			const char *file, const char **error_r)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, i);
		const char *name = config_setting_name(s);
		const struct config_setting_spec *spec = NULL;
		char path[256];

		/* a group's settings have names, unless libconfig could not
		 * copy one */
		if (name == NULL)
			oomguard_fail();
		snprintf(path, sizeof(path), "%s%s%s", prefix,
			 *prefix ? "." : "", name);
		for (size_t k = 0;
		     k < sizeof(config_specs) / sizeof(config_specs[0]); k++) {
			if (strcmp(config_specs[k].path, path) == 0)
				spec = &config_specs[k];
		}
		if (spec == NULL) {
			errmsg_set(error_r, "%s:%d: unknown setting '%s'",
				   file, config_setting_source_line(s), path);
			return -1;
		}
		if (!config_kind_matches(spec->kind, config_setting_type(s))) {
			errmsg_set(error_r, "%s:%d: setting '%s' must be %s",
				   file, config_setting_source_line(s), path,
				   config_kind_names[spec->kind]);
			return -1;
		}
		if (spec->kind == KIND_GROUP &&
		    config_check(s, path, file, error_r) < 0)
			return -1;
		if (spec->kind == KIND_LIST &&
		    config_check_list(s, path, file, error_r) < 0)
			return -1;
		if (spec->kind == KIND_ARRAY &&
		    config_check_strings(s, path, file, error_r) < 0)
			return -1;
	}
	return 0;
}

/* config_check_list - a list's elements: groups, checked as NAME.[] */
static int config_check_list(const config_setting_t *list, const char *path,
			     const char *file, const char **error_r)
{
	char prefix[300];

	snprintf(prefix, sizeof(prefix), "%.250s.[]", path);
	for (int i = 0; i < config_setting_length(list); i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return errmsg_set(error_r, "%s:%d: each element of "
					  "'%s' must be a group { ... }", file,
					  config_setting_source_line(e), path);
		if (config_check(e, prefix, file, error_r) < 0)
			return -1;
	}
	return 0;
}

/* config_check_strings - every element of an array or list a string */
static int config_check_strings(const config_setting_t *arr,
				const char *path, const char *file,
				const char **error_r)
{
	for (int i = 0; i < config_setting_length(arr); i++) {
		const config_setting_t *e = config_setting_get_elem(arr, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return errmsg_set(error_r, "%s:%d: '%s' must hold "
					  "strings only", file,
					  config_setting_source_line(e), path);
	}
	return 0;
}

/* config_string - a string setting, copied, or a copy of def */
static char *config_string(const config_t *lc, const char *path,
			   const char *def)
{
	const char *v;

	if (config_lookup_string(lc, path, &v) == CONFIG_TRUE) {
		if (v == NULL)
			oomguard_fail(); /* libconfig could not copy it */
		return xstrdup(v);
	}
	return def != NULL ? xstrdup(def) : NULL;
}

/* config_int - an integer setting within [min, max], or def */
static int config_int(const config_t *lc, const char *path, int def,
		      int min, int max, const char *file,
		      const char **error_r, int *v_r)
{
	config_setting_t *s = config_lookup(lc, path);
	long long v;

	*v_r = def;
	if (s == NULL)
		return 0;
	v = config_setting_get_int64(s);	/* reads CONFIG_TYPE_INT too */
	if (v < min || v > max) {
		errmsg_set(error_r, "%s:%d: setting '%s' must be between "
			   "%d and %d", file, config_setting_source_line(s),
			   path, min, max);
		return -1;
	}
	*v_r = (int)v;
	return 0;
}

/* config_bool - a boolean setting, or def */
static bool config_bool(const config_t *lc, const char *path, bool def)
{
	int v;

	if (config_lookup_bool(lc, path, &v) == CONFIG_TRUE)
		return v != 0;
	return def;
}

/* config_line - "FILE:LINE" of a setting, for errors */
static int config_line(const config_t *lc, const char *path)
{
	config_setting_t *s = config_lookup(lc, path);

	return s != NULL ? config_setting_source_line(s) : 0;
}

/* config_load_smtp - the smtp group, checked */
static int config_load_smtp(struct config *cfg, const config_t *lc,
			    const char *file, const char **error_r)
{
	struct config_smtp *c = &cfg->smtp;
	static const struct {
		const char *path;
		int def, max;
		size_t offset;
	} ints[] = {
		{ "smtp.connections", 8, 1024,
		  offsetof(struct config_smtp, connections) },
		{ "smtp.chunking_window", 8, 64,
		  offsetof(struct config_smtp, chunking_window) },
		{ "smtp.timeouts.connect", 30, 3600,
		  offsetof(struct config_smtp, timeout_connect) },
		{ "smtp.timeouts.greeting", 300, 3600,
		  offsetof(struct config_smtp, timeout_greeting) },
		{ "smtp.timeouts.command", 300, 3600,
		  offsetof(struct config_smtp, timeout_command) },
		{ "smtp.timeouts.data_end", 600, 3600,
		  offsetof(struct config_smtp, timeout_data_end) },
	};
	char *ca_file;
	int def_port;

	c->host = config_string(lc, "smtp.host", "localhost");
	c->tls = config_string(lc, "smtp.tls", "starttls");
	if (strcmp(c->tls, "starttls") == 0) {
		def_port = 587;
	} else if (strcmp(c->tls, "implicit") == 0) {
		def_port = 465;
	} else if (strcmp(c->tls, "none") == 0) {
		def_port = 25;
	} else {
		errmsg_set(error_r, "%s:%d: setting 'smtp.tls' must be "
			   "\"starttls\", \"implicit\" or \"none\", not \"%s\"",
			   file, config_line(lc, "smtp.tls"), c->tls);
		return -1;
	}
	if (config_int(lc, "smtp.port", def_port, 1, 65535, file, error_r,
		       &c->port) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		if (config_int(lc, ints[i].path, ints[i].def, 1, ints[i].max,
			       file, error_r,
			       (int *)((char *)c + ints[i].offset)) < 0)
			return -1;
	}
	if (config_int(lc, "smtp.max_messages_per_connection", 1000, 0,
		       INT32_MAX, file, error_r,
		       &c->max_messages_per_connection) < 0)
		return -1;
	if (config_int(lc, "smtp.reconnects_per_second", 10, 0, 10000, file,
		       error_r, &c->reconnects_per_second) < 0)
		return -1;
	c->tls_verify = config_bool(lc, "smtp.tls_verify", true);
	c->tls_name = config_string(lc, "smtp.tls_name", NULL);
	ca_file = config_string(lc, "smtp.ca_file", NULL);
	if (ca_file != NULL) {
		c->ca_file = config_resolve_path(cfg, ca_file);
		free(ca_file);
	}
	c->username = config_string(lc, "smtp.username", NULL);
	c->password_env = config_string(lc, "smtp.password_env", NULL);
	c->password_file = config_string(lc, "smtp.password_file", NULL);
	c->xoauth2_token_env = config_string(lc, "smtp.xoauth2_token_env",
					     NULL);
	c->xoauth2_token_file = config_string(lc, "smtp.xoauth2_token_file",
					      NULL);
	if ((c->password_env && c->password_file) ||
	    (c->xoauth2_token_env && c->xoauth2_token_file)) {
		errmsg_set(error_r, "%s: set %s_env or %s_file, not both",
			   file, c->password_env && c->password_file ?
			   "smtp.password" : "smtp.xoauth2_token",
			   c->password_env && c->password_file ?
			   "password" : "xoauth2_token");
		return -1;
	}
	if (c->password_file != NULL) {
		char *p = config_resolve_path(cfg, c->password_file);

		free(c->password_file);
		c->password_file = p;
	}
	if (c->xoauth2_token_file != NULL) {
		char *p = config_resolve_path(cfg, c->xoauth2_token_file);

		free(c->xoauth2_token_file);
		c->xoauth2_token_file = p;
	}
	if (c->username == NULL &&
	    (c->password_env || c->password_file || c->xoauth2_token_env ||
	     c->xoauth2_token_file)) {
		errmsg_set(error_r, "%s: a password or token is set but "
			   "smtp.username is not", file);
		return -1;
	}
	c->allow_plaintext_auth = config_bool(lc, "smtp.allow_plaintext_auth",
					      false);
	c->helo_name = config_string(lc, "smtp.helo_name", NULL);
	if (c->helo_name != NULL &&
	    (c->helo_name[0] == '\0' ||
	     strspn(c->helo_name, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:") !=
	     strlen(c->helo_name))) {
		errmsg_set(error_r, "%s:%d: setting 'smtp.helo_name' must "
			   "be a host name or an address literal", file,
			   config_line(lc, "smtp.helo_name"));
		return -1;
	}
	c->pipelining = config_bool(lc, "smtp.pipelining", true);
	c->chunking = config_bool(lc, "smtp.chunking", true);
	return 0;
}

/* config_load_send - the send group, checked */
static int config_load_send(struct config *cfg, const config_t *lc,
			    const char *file, const char **error_r)
{
	static const struct {
		const char *path;
		int def, min, max;
		size_t offset;
	} ints[] = {
#define SEND_INT(path, def, min, max, field) \
	{ path, def, min, max, offsetof(struct config_send, field) }
		SEND_INT("send.batch_size", 1000, 1, 100000, batch_size),
		SEND_INT("send.lease_seconds", 600, 10, 86400, lease_seconds),
		SEND_INT("send.commit_interval_ms", 100, 1, 60000,
			 commit_interval_ms),
		SEND_INT("send.commit_batch", 500, 1, 100000, commit_batch),
		SEND_INT("send.stop_timeout", 30, 1, 3600, stop_timeout),
		SEND_INT("send.rate_per_second", 0, 0, 1000000,
			 rate_per_second),
		SEND_INT("send.rate_per_hour", 0, 0, INT32_MAX, rate_per_hour),
		SEND_INT("send.rate_burst", 0, 0, 1000000, rate_burst),
		SEND_INT("send.throttle_backoff", 60, 1, 86400,
			 throttle_backoff),
		SEND_INT("send.retry.first_delay", 60, 1, 86400 * 7,
			 retry_first_delay),
		SEND_INT("send.retry.max_delay", 6 * 3600, 1, 86400 * 7,
			 retry_max_delay),
		SEND_INT("send.retry.backoff_factor", 2, 1, 100,
			 retry_backoff_factor),
		SEND_INT("send.retry.max_attempts", 8, 1, 1000,
			 retry_max_attempts),
		SEND_INT("send.retry.max_age", 3 * 86400, 60, 86400 * 365,
			 retry_max_age),
#undef SEND_INT
	};

	char *log;

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		if (config_int(lc, ints[i].path, ints[i].def, ints[i].min,
			       ints[i].max, file, error_r,
			       (int *)((char *)&cfg->send + ints[i].offset)) < 0)
			return -1;
	}
	log = config_string(lc, "send.in_doubt", "resend");
	if (strcmp(log, "hold") != 0 && strcmp(log, "resend") != 0) {
		errmsg_set(error_r, "%s:%d: setting 'send.in_doubt' must be "
			   "\"resend\" or \"hold\"", file,
			   config_line(lc, "send.in_doubt"));
		free(log);
		return -1;
	}
	cfg->send.in_doubt_hold = strcmp(log, "hold") == 0;
	free(log);
	log = config_string(lc, "send.accounting_log", NULL);
	if (log != NULL) {
		cfg->send.accounting_log = config_resolve_path(cfg, log);
		free(log);
	}
	return 0;
}

/* config_load_bounces - the bounces group, checked */
static int config_load_bounces(struct config *cfg, const config_t *lc,
			       const char *file, const char **error_r)
{
	struct config_bounces *b = &cfg->bounces;
	char *rules;

	if (config_int(lc, "bounces.soft_limit", 3, 1, 1000, file, error_r,
		       &b->soft_limit) < 0 ||
	    config_int(lc, "bounces.soft_window_days", 14, 1, 3650, file,
		       error_r, &b->soft_window_days) < 0 ||
	    config_int(lc, "bounces.match_days", 30, 1, 3650, file, error_r,
		       &b->match_days) < 0)
		return -1;
	b->suppress_unverified = config_bool(lc,
		"bounces.suppress_unverified", false);
	rules = config_string(lc, "bounces.rules_file", NULL);
	if (rules != NULL && *rules == '\0') {
		free(rules);
		return errmsg_set(error_r, "%s:%d: setting "
				  "'bounces.rules_file' is empty (leave it "
				  "out for the rules built in)", file,
				  config_line(lc, "bounces.rules_file"));
	}
	if (rules != NULL) {
		b->rules_file = config_resolve_path(cfg, rules);
		free(rules);
	}
	return 0;
}

/* config_read_secret - the first line of a file, without its line end */
int config_read_secret(const char *path, const char *setting,
		       char **secret_r, const char **error_r)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n;
	ssize_t got;

	if (f == NULL) {
		errmsg_set(error_r, "%s %s: %s", setting, path,
			   strerror(errno));
		return -1;
	}
	/* no stdio buffer to hold a copy of the secret after we are done */
	setvbuf(f, NULL, _IONBF, 0);
	got = getline(&line, &cap, f);
	fclose(f);
	n = got > 0 ? strcspn(line, "\r\n") : 0;
	if (n == 0) {
		errmsg_set(error_r, "%s %s: the file is empty", setting,
			   path);
		if (line != NULL)
			memset(line, 0, cap);
		free(line);
		return -1;
	}
	line[n] = '\0';
	*secret_r = line;
	return 0;
}

int config_verp_secret(const struct config *cfg, char **secret_r,
		       const char **error_r)
{
	struct stat st;

	*secret_r = NULL;
	if (cfg->verp_secret_file == NULL)
		return errmsg_set(error_r, "{{verp}} needs a secret: set "
				  "verp.secret_file in %s (a file holding a "
				  "random line of at least %d characters, "
				  "e.g. from `openssl rand -hex 32`)",
				  cfg->file ? cfg->file : CONFIG_DEFAULT_FILE,
				  CONFIG_VERP_SECRET_MIN);
	if (stat(cfg->verp_secret_file, &st) == 0 &&
	    (st.st_mode & (S_IROTH | S_IWOTH)) != 0)
		return errmsg_set(error_r, "verp.secret_file %s is readable "
				  "by every user of this machine (mode "
				  "%04o): chmod 600 it", cfg->verp_secret_file,
				  (unsigned)(st.st_mode & 07777));
	if (config_read_secret(cfg->verp_secret_file, "verp.secret_file",
			       secret_r, error_r) < 0)
		return -1;
	if (strlen(*secret_r) < CONFIG_VERP_SECRET_MIN) {
		config_secret_free(secret_r);
		return errmsg_set(error_r, "verp.secret_file %s: the secret "
				  "is shorter than %d characters",
				  cfg->verp_secret_file,
				  CONFIG_VERP_SECRET_MIN);
	}
	return 0;
}

/* --- unsubscribe: one-click unsubscribe tokens and URLs ---------------- */

/*
 * config_load_unsubscribe - the unsubscribe group: base_url must be an
 * absolute http(s) URL with a host, and no query or fragment (the token
 * goes after it); it needs secret_file
 */
static int config_load_unsubscribe(struct config *cfg, const config_t *lc,
				   const char *file, const char **error_r)
{
	struct config_unsubscribe *u = &cfg->unsubscribe;
	char *secret = config_string(lc, "unsubscribe.secret_file", NULL);
	const char *host;
	size_t len;

	if (secret != NULL) {
		u->secret_file = config_resolve_path(cfg, secret);
		free(secret);
	}
	u->base_url = config_string(lc, "unsubscribe.base_url", NULL);
	if (u->base_url == NULL)
		return 0;
	if (strncasecmp(u->base_url, "https://", 8) == 0)
		host = u->base_url + 8;
	else if (strncasecmp(u->base_url, "http://", 7) == 0)
		host = u->base_url + 7;
	else
		host = NULL;
	if (host == NULL || *host == '\0' || *host == '/' ||
	    strpbrk(u->base_url, "?#<>\"' \t\r\n\\") != NULL)
		return errmsg_set(error_r, "%s:%d: setting "
				  "'unsubscribe.base_url' must be an absolute "
				  "http:// or https:// URL with a host and no "
				  "query, fragment, quote or space, like "
				  "\"https://news.example.org\"", file,
				  config_line(lc, "unsubscribe.base_url"));
	for (const char *p = u->base_url; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return errmsg_set(error_r, "%s:%d: setting "
					  "'unsubscribe.base_url' must be "
					  "printable ASCII (percent-encode "
					  "the rest)", file,
					  config_line(lc,
						      "unsubscribe.base_url"));
	}
	len = strlen(u->base_url);
	while (len > 0 && u->base_url[len - 1] == '/')
		u->base_url[--len] = '\0';
	if (u->secret_file == NULL)
		return errmsg_set(error_r, "%s:%d: 'unsubscribe.base_url' "
				  "needs 'unsubscribe.secret_file' (a file "
				  "holding a random line of at least %d "
				  "characters, e.g. from `openssl rand -hex "
				  "32`)", file,
				  config_line(lc, "unsubscribe.base_url"),
				  CONFIG_VERP_SECRET_MIN);
	return 0;
}

int config_unsubscribe_secret(const struct config *cfg, const char *what,
			      char **secret_r, const char **error_r)
{
	const char *path = cfg->unsubscribe.secret_file;
	struct stat st;

	*secret_r = NULL;
	if (path == NULL)
		return errmsg_set(error_r, "%s needs a secret: set "
				  "unsubscribe.secret_file in %s (a file "
				  "holding a random line of at least %d "
				  "characters, e.g. from `openssl rand -hex "
				  "32`)", what,
				  cfg->file ? cfg->file : CONFIG_DEFAULT_FILE,
				  CONFIG_VERP_SECRET_MIN);
	if (stat(path, &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)) != 0)
		return errmsg_set(error_r, "unsubscribe.secret_file %s is "
				  "readable by every user of this machine "
				  "(mode %04o): chmod 600 it", path,
				  (unsigned)(st.st_mode & 07777));
	if (config_read_secret(path, "unsubscribe.secret_file", secret_r,
			       error_r) < 0)
		return -1;
	if (strlen(*secret_r) < CONFIG_VERP_SECRET_MIN) {
		config_secret_free(secret_r);
		return errmsg_set(error_r, "unsubscribe.secret_file %s: the "
				  "secret is shorter than %d characters",
				  path, CONFIG_VERP_SECRET_MIN);
	}
	return 0;
}

int config_smtp_secret(const struct config *cfg, int which, char **secret_r,
		       const char **error_r)
{
	const char *env = which ? cfg->smtp.xoauth2_token_env :
				  cfg->smtp.password_env;
	const char *file = which ? cfg->smtp.xoauth2_token_file :
				   cfg->smtp.password_file;
	const char *name = which ? "smtp.xoauth2_token" : "smtp.password";
	const char *v;

	*secret_r = NULL;
	if (env != NULL) {
		v = getenv(env);
		if (v == NULL || *v == '\0') {
			errmsg_set(error_r, "%s_env names %s, which is "
				   "not set", name, env);
			return -1;
		}
		*secret_r = xstrdup(v);
		return 0;
	}
	if (file != NULL) {
		char setting[64];

		snprintf(setting, sizeof(setting), "%s_file", name);
		return config_read_secret(file, setting, secret_r, error_r);
	}
	return 0;
}

void config_secret_free(char **secretp)
{
	if (*secretp != NULL) {
		memset(*secretp, 0, strlen(*secretp));
		free(*secretp);
		*secretp = NULL;
	}
}

char *config_resolve_path(const struct config *cfg, const char *path)
{
	struct buf b = BUF_INIT;

	if (path[0] == '/' || cfg->dir == NULL || strcmp(cfg->dir, ".") == 0)
		return xstrdup(path);
	buf_printf(&b, "%s/%s", cfg->dir, path);
	return b.data;
}

/* config_canon - "relaxed/simple" into its two halves; one word is the
 * header's, the body's then simple (RFC 6376 3.5, c=) */
static bool config_canon(const char *v, enum dkim_canon *h,
			 enum dkim_canon *b)
{
	static const char *const names[] = { "simple", "relaxed" };
	const char *slash = strchr(v, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - v) : strlen(v);
	bool h_ok = false, b_ok = slash == NULL;

	*b = DKIM_CANON_SIMPLE;
	for (int i = 0; i < 2; i++) {
		if (strlen(names[i]) == hlen && strncmp(v, names[i], hlen) == 0)
			*h = (enum dkim_canon)i, h_ok = true;
		if (slash != NULL && strcmp(slash + 1, names[i]) == 0)
			*b = (enum dkim_canon)i, b_ok = true;
	}
	return h_ok && b_ok;
}

/* config_load_dkim - the dkim list: one key spec each, strings owned */
static int config_load_dkim(struct config *cfg, const config_t *lc,
			    const char *file, const char **error_r)
{
	const config_setting_t *list = config_lookup(lc, "dkim");
	int n = list != NULL ? config_setting_length(list) : 0;

	cfg->dkim = xcalloc((size_t)n + 1, sizeof(*cfg->dkim));
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		const config_setting_t *hs = config_setting_lookup(e,
								   "headers");
		struct dkim_key_spec *k = &cfg->dkim[cfg->ndkim++];
		int line = config_setting_source_line(e);
		const char *v[3] = { NULL, NULL, NULL }, *canon;
		static const char *const need[] = {
			"domain", "selector", "key_file",
		};
		int days = 0;

		k->header_canon = k->body_canon = DKIM_CANON_RELAXED;
		for (int j = 0; j < 3; j++) {
			if (config_setting_lookup_string(e, need[j], &v[j]) ==
			    CONFIG_TRUE && v[j] != NULL && *v[j] != '\0')
				continue;
			return errmsg_set(error_r, "%s:%d: a dkim entry needs "
					  "'%s'", file, line, need[j]);
		}
		k->domain = xstrdup(v[0]);
		k->selector = xstrdup(v[1]);
		k->key_file = config_resolve_path(cfg, v[2]);
		if (config_setting_lookup_string(e, "canonicalization",
						 &canon) == CONFIG_TRUE &&
		    !config_canon(canon, &k->header_canon, &k->body_canon))
			return errmsg_set(error_r, "%s:%d: dkim "
					  "canonicalization '%s': write "
					  "relaxed/relaxed, relaxed/simple, "
					  "simple/relaxed or simple/simple",
					  file, line, canon);
		if (config_setting_lookup_int(e, "expire_days", &days) ==
		    CONFIG_TRUE && (days < 0 || days > 3650))
			return errmsg_set(error_r, "%s:%d: dkim expire_days "
					  "must be between 0 and 3650", file,
					  line);
		k->expire_days = (unsigned)days;
		if (hs != NULL) {
			size_t nh = (size_t)config_setting_length(hs);
			char **names = xcalloc(nh + 1, sizeof(*names));

			for (size_t j = 0; j < nh; j++) {
				const char *h = config_setting_get_string_elem(
					hs, (int)j);

				names[j] = xstrdup(h);
			}
			k->headers = (const char *const *)names;
			k->nheaders = nh;
			if (nh == 0)
				return errmsg_set(error_r, "%s:%d: dkim "
						  "headers is empty (leave it "
						  "out for the default list)",
						  file, line);
		}
	}
	return 0;
}

/* config_load_file - config_load's work, inside the guard */
static int config_load_file(struct config *cfg, const char *file,
			    const char *path, const char **error_r)
{
	config_t lc;
	char *store_path, *slash;
	int ret = -1;

	config_init(&lc);

	if (access(file, F_OK) < 0) {
		if (path != NULL) {
			errmsg_set(error_r, "%s: %s", file, strerror(errno));
			goto out;
		}
		/* No default file: every setting takes its default. */
	} else {
		if (config_read_file(&lc, file) != CONFIG_TRUE) {
			if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
				errmsg_set(error_r, "%s: cannot read: %s",
					   file, strerror(errno));
			else
				errmsg_set(error_r, "%s:%d: %s", file,
					   config_error_line(&lc),
					   config_error_text(&lc));
			goto out;
		}
		if (config_check(config_root_setting(&lc), "", file,
				 error_r) < 0)
			goto out;
		cfg->file = xstrdup(file);
		cfg->dir = xstrdup(file);
		slash = strrchr(cfg->dir, '/');
		if (slash == NULL)
			strcpy(cfg->dir, ".");
		else if (slash == cfg->dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	}

	store_path = config_string(&lc, "store.path", "volley.db");
	if (*store_path == '\0') {
		errmsg_set(error_r, "%s: setting 'store.path' is empty",
			   file);
		free(store_path);
		goto out;
	}
	cfg->store_path = config_resolve_path(cfg, store_path);
	free(store_path);
	if (config_int(&lc, "store.busy_timeout_ms", 5000, 1, 3600 * 1000,
		       file, error_r, &cfg->store_busy_timeout_ms) < 0)
		goto out;
	cfg->import_address_column =
		config_string(&lc, "import.address_column", "email");
	{
		char *verp = config_string(&lc, "verp.secret_file", NULL);

		if (verp != NULL)
			cfg->verp_secret_file = config_resolve_path(cfg, verp);
		free(verp);
	}
	if (config_load_smtp(cfg, &lc, file, error_r) < 0 ||
	    config_load_send(cfg, &lc, file, error_r) < 0 ||
	    config_load_dkim(cfg, &lc, file, error_r) < 0 ||
	    config_load_unsubscribe(cfg, &lc, file, error_r) < 0 ||
	    config_load_bounces(cfg, &lc, file, error_r) < 0)
		goto out;
	ret = 0;
out:
	config_destroy(&lc);
	return ret;
}

struct config_load_ctx {
	struct config *cfg;
	const char *file, *path;
	const char **error_r;
};

static int config_load_guarded(void *ctx)
{
	struct config_load_ctx *c = ctx;

	return config_load_file(c->cfg, c->file, c->path, c->error_r);
}

int config_load(struct config *cfg, const char *path, const char **error_r)
{
	struct config_load_ctx c = {
		.cfg = cfg, .path = path, .error_r = error_r,
		.file = path != NULL ? path : CONFIG_DEFAULT_FILE,
	};
	enum oomguard_end end;
	int ret = -1;

	memset(cfg, 0, sizeof(*cfg));
	/* libconfig does not check its allocations: see oomguard.h */
	end = oomguard_run(config_load_guarded, &c, &ret);
	if (end != OOMGUARD_OK) {
		/* what cfg holds may be half made: left, not freed */
		errmsg_set(error_r, "%s: %s", c.file, oomguard_message(end));
		memset(cfg, 0, sizeof(*cfg));
		ret = -1;
	}
	if (ret < 0)
		config_free(cfg);
	return ret;
}

void config_free(struct config *cfg)
{
	free(cfg->file);
	free(cfg->dir);
	free(cfg->store_path);
	free(cfg->import_address_column);
	free(cfg->verp_secret_file);
	free(cfg->unsubscribe.secret_file);
	free(cfg->unsubscribe.base_url);
	free(cfg->smtp.host);
	free(cfg->smtp.tls);
	free(cfg->smtp.tls_name);
	free(cfg->smtp.ca_file);
	free(cfg->smtp.username);
	free(cfg->smtp.password_env);
	free(cfg->smtp.password_file);
	free(cfg->smtp.xoauth2_token_env);
	free(cfg->smtp.xoauth2_token_file);
	free(cfg->smtp.helo_name);
	free(cfg->send.accounting_log);
	free(cfg->bounces.rules_file);
	for (size_t i = 0; i < cfg->ndkim; i++) {
		struct dkim_key_spec *k = &cfg->dkim[i];

		free((char *)k->domain);
		free((char *)k->selector);
		free((char *)k->key_file);
		for (size_t j = 0; j < k->nheaders; j++)
			free((char *)k->headers[j]);
		free((char **)k->headers);
	}
	free(cfg->dkim);
	memset(cfg, 0, sizeof(*cfg));
}
