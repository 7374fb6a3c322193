/*
 * relay - the configured SMTP relay made ready to connect to: the smtp
 * group of volley.cfg turned into smtp_conn_params, with the TLS context
 * built and the secret read, for every command that sends.
 */
#ifndef VOLLEY_RELAY_H
#define VOLLEY_RELAY_H

#include <stddef.h>

#include "config.h"
#include "smtp_conn.h"

struct relay {
	struct smtp_conn_params params;
	struct transport_tls *tls;
	char *password;			/* wiped when closed */
	char *token;
	char port[8];
	char helo[256];
	/* what the user must be told before sending (tls_verify off), or "" */
	char warning[200];
};

/*
 * relay_open - from cfg->smtp.  Returns 0, or -1 with *error_r (a
 * missing password variable, an unreadable CA file ...).
 */
int relay_open(const struct config *cfg, struct relay *r,
	       const char **error_r);
void relay_close(struct relay *r);

/*
 * relay_stop_hint - what to change in volley.cfg after the relay stopped
 * a run with reply code (530: it wants a login), or NULL when there is
 * nothing to say
 */
const char *relay_stop_hint(const struct config *cfg, int code);

#endif
