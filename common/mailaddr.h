/*
 * mailaddr - RFC 5321 mailbox syntax, with RFC 6531 (SMTPUTF8) extensions.
 *
 * A mailbox is what goes between the angle brackets of MAIL FROM and
 * RCPT TO: Local-part "@" ( Domain / address-literal ), with no display
 * name, comments or surrounding spaces.
 *
 * Checked:
 *   - local part: Dot-string (atext atoms joined by single dots) or
 *     Quoted-string (qtextSMTP and quoted-pairSMTP), at most 64 octets;
 *   - domain: labels of letters, digits and hyphens, 1..63 octets, not
 *     starting or ending with a hyphen, no empty label (so no leading,
 *     trailing or doubled dot);
 *   - address literals: [IPv4] with four decimal octets 0..255, and
 *     [IPv6:...] in any of the RFC 5321 4.1.3 forms; other tags refused;
 *   - the whole address at most 254 octets;
 *   - UTF-8: a non-ASCII address is accepted only when it is well-formed
 *     UTF-8, with the non-ASCII characters in atoms or the quoted string of
 *     the local part or in domain labels (RFC 6531 3.3); it is then flagged
 *     MAILADDR_SMTPUTF8 so the sender knows it needs the SMTPUTF8
 *     extension.
 */
#ifndef VOLLEY_MAILADDR_H
#define VOLLEY_MAILADDR_H

#include <stdbool.h>
#include <stddef.h>

#define MAILADDR_LOCAL_MAX 64
#define MAILADDR_MAX 254

enum mailaddr_flags {
	MAILADDR_SMTPUTF8 = 1 << 0,	/* needs SMTPUTF8 to be sent */
	MAILADDR_LITERAL = 1 << 1,	/* domain is an address literal */
	MAILADDR_QUOTED = 1 << 2,	/* local part is a quoted string */
};

/*
 * mailaddr_check - validate one mailbox of len bytes.
 *
 * Returns true when valid and sets *flags_r (if not NULL) to a mask of
 * enum mailaddr_flags.  Returns false when invalid and points *reason_r (if
 * not NULL) at a static, human-readable reason such as
 * "local part longer than 64 octets".
 */
bool mailaddr_check(const char *addr, size_t len, unsigned *flags_r,
		    const char **reason_r);

#endif
