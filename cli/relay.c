/*
 * relay - the configured SMTP relay made ready to connect to (see
 * relay.h).
 */
#include "relay.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"

int relay_open(const struct config *cfg, struct relay *r,
	       const char **error_r)
{
	const struct config_smtp *c = &cfg->smtp;
	struct smtp_conn_params *p = &r->params;
	enum smtp_tls tls = strcmp(c->tls, "implicit") == 0 ?
			    SMTP_TLS_IMPLICIT :
			    strcmp(c->tls, "none") == 0 ? SMTP_TLS_NONE :
			    SMTP_TLS_STARTTLS;

	memset(r, 0, sizeof(*r));
	snprintf(r->port, sizeof(r->port), "%d", c->port);
	if (c->helo_name != NULL) {
		snprintf(r->helo, sizeof(r->helo), "%s", c->helo_name);
	} else if (gethostname(r->helo, sizeof(r->helo) - 1) < 0 ||
		   r->helo[0] == '\0') {
		snprintf(r->helo, sizeof(r->helo), "localhost");
	}
	if (c->username != NULL) {
		if (config_smtp_secret(cfg, 0, &r->password, error_r) < 0 ||
		    config_smtp_secret(cfg, 1, &r->token, error_r) < 0)
			goto fail;
		if (r->password == NULL && r->token == NULL) {
			errmsg_set(error_r, "smtp.username is set but "
				   "neither smtp.password_env nor "
				   "smtp.password_file (nor an XOAUTH2 token)");
			goto fail;
		}
	}
	if (tls != SMTP_TLS_NONE) {
		struct transport_tls_params tp = { .verify = c->tls_verify,
						   .ca_file = c->ca_file };

		if (transport_tls_new(&tp, &r->tls, error_r) < 0)
			goto fail;
		if (!c->tls_verify)
			snprintf(r->warning, sizeof(r->warning),
				 "tls_verify = false: the server's certificate "
				 "is NOT checked; anyone on the path can read "
				 "this mail%s",
				 c->username ? " and the password" : "");
	}
	p->transport = (struct transport_params){
		.host = c->host, .port = r->port, .tls_name = c->tls_name,
		.connect_timeout_ms = c->timeout_connect * 1000,
		.io_timeout_ms = c->timeout_command * 1000,
	};
	p->tls = r->tls;
	p->session = (struct smtp_session_params){
		.helo_name = r->helo, .pipelining = c->pipelining,
		.tls = tls, .username = c->username, .password = r->password,
		.xoauth2_token = r->token,
		.allow_plaintext_auth = c->allow_plaintext_auth,
		.chunking = c->chunking,
		.chunking_window = (unsigned)c->chunking_window,
		.max_messages = (unsigned)c->max_messages_per_connection,
	};
	p->greeting_timeout_ms = c->timeout_greeting * 1000;
	p->command_timeout_ms = c->timeout_command * 1000;
	p->data_end_timeout_ms = c->timeout_data_end * 1000;
	return 0;
fail:
	relay_close(r);
	return -1;
}

void relay_close(struct relay *r)
{
	config_secret_free(&r->password);
	config_secret_free(&r->token);
	transport_tls_free(&r->tls);
	memset(r, 0, sizeof(*r));
}

const char *relay_stop_hint(const struct config *cfg, int code)
{
	if (code != 530)
		return NULL;
	if (cfg->smtp.username == NULL)
		return "the relay wants a login: set smtp.username and "
		       "smtp.password_env (or smtp.password_file) in the "
		       "configuration";
	/* a login was configured, yet the relay did not take it as one */
	return "the relay did not take volley's login as enough: check "
	       "smtp.username and its secret, and that the relay offers "
	       "AUTH on this port (smtp.tls)";
}
