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
};

/*
 * relay_open - from cfg->smtp.  Returns 0, or -1 with one line in err
 * (a missing password variable, an unreadable CA file ...).  A warning
 * the user must see (tls_verify off) goes into warn, else warn is "".
 */
int relay_open(const struct config *cfg, struct relay *r, char *err,
	       size_t errsize, char *warn, size_t warnsize);
void relay_close(struct relay *r);

#endif
