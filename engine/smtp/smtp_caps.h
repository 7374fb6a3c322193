/*
 * smtp_caps - what a server's EHLO reply offers (RFC 5321 4.1.1.1 and the
 * extensions volley uses).
 *
 * Keywords are matched ignoring case; unknown ones are ignored; a
 * malformed parameter leaves that capability off (never a guess that
 * would make volley use something the server did not offer).
 */
#ifndef VOLLEY_SMTP_CAPS_H
#define VOLLEY_SMTP_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#include "smtp_reply.h"

enum smtp_auth_mech {
	SMTP_AUTH_PLAIN = 1 << 0,
	SMTP_AUTH_LOGIN = 1 << 1,
	SMTP_AUTH_XOAUTH2 = 1 << 2,
};

struct smtp_caps {
	bool pipelining;		/* RFC 2920 */
	bool chunking;			/* RFC 3030 BDAT */
	bool starttls;			/* RFC 3207 */
	bool eightbitmime;		/* RFC 6152 */
	bool smtputf8;			/* RFC 6531 */
	bool enhancedstatuscodes;	/* RFC 2034 */
	bool dsn;			/* RFC 3461 */
	bool size;			/* RFC 1870 SIZE was offered ... */
	uint64_t size_max;		/* ... with this limit; 0: none given */
	unsigned auth;			/* enum smtp_auth_mech bits */
	unsigned mailmax;		/* RFC 9422 LIMITS; 0: not announced */
	unsigned rcptmax;
};

/* smtp_caps_parse - the capabilities of a 250 reply to EHLO */
void smtp_caps_parse(struct smtp_caps *caps, const struct smtp_reply *ehlo);

#endif
