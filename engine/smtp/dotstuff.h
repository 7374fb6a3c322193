/*
 * dotstuff - a message body made safe for SMTP DATA (RFC 5321 4.5.2).
 *
 * Appends the body with every line end made CRLF (a bare LF or a lone CR
 * becomes CRLF, so no bare CR or LF ever leaves the client: the SMTP
 * smuggling defence), every line that starts with '.' given a second
 * '.', a final CRLF if the body lacks one, and the end-of-data line
 * ".\r\n".  Nothing in the body can end the DATA early or smuggle a second
 * message, whatever bytes it holds.
 *
 * One pass, into a caller's buffer reserved once for the worst case.
 */
#ifndef VOLLEY_DOTSTUFF_H
#define VOLLEY_DOTSTUFF_H

#include <stddef.h>

#include "buf.h"

/* dotstuff_data - append body as DATA content, end-of-data line included */
void dotstuff_data(struct buf *out, const char *body, size_t len);

/*
 * dotstuff_crlf - append body with every line end made CRLF and a final
 * CRLF if it lacks one, dots untouched: content for BDAT (RFC 3030),
 * whose length is counted, not ended by a dot.  Returns the bytes added.
 */
size_t dotstuff_crlf(struct buf *out, const char *body, size_t len);

#endif
