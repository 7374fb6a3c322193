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
 * In one pass (dotstuff_data, dotstuff_crlf), or a piece at a time
 * (dotstuff_step) so that a large message goes out through a small
 * buffer; dotstuff_len says beforehand how long the result will be (BDAT
 * announces it, and a reply is matched to a command by where it ends).
 */
#ifndef VOLLEY_DOTSTUFF_H
#define VOLLEY_DOTSTUFF_H

#include <stdbool.h>
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

/*
 * dotstuff_len - what dotstuff_crlf (stuff false) or dotstuff_data
 * (stuff true, the end-of-data line included) would append, counted
 * without writing
 */
size_t dotstuff_len(const char *body, size_t len, bool stuff);

/* Where a conversion done a piece at a time is. */
struct dotstuff_pos {
	size_t in;		/* bytes of the body consumed */
	bool mid_line;		/* not at a line start */
	bool done;		/* the final CRLF (and "." line) appended */
};

/*
 * dotstuff_step - append the next piece of the conversion from pos:
 * about max bytes (never more than max + 5), the same bytes, in all,
 * as dotstuff_data (stuff) or dotstuff_crlf; pos->done once all are out.
 * Start with a zeroed pos.
 */
void dotstuff_step(struct buf *out, const char *body, size_t len, bool stuff,
		   struct dotstuff_pos *pos, size_t max);

#endif
