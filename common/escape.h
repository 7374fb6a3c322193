/*
 * escape - text from outside (a file's row, a server's reply) made safe
 * to show on a terminal or put in a one-line message.
 *
 * Control characters (C0, DEL, and C1 written in UTF-8) and invalid
 * UTF-8 become \xNN for each byte and a backslash is doubled, so the text
 * can neither move the cursor nor forge a line, and what was escaped can
 * be told from what was typed.  Other valid UTF-8 is kept as it is.
 */
#ifndef VOLLEY_ESCAPE_H
#define VOLLEY_ESCAPE_H

#include <stddef.h>

#include "buf.h"

/*
 * escape_text - append p (len bytes) to out, escaped; at most max bytes
 * of input are shown, then "..." says the rest was cut.
 */
void escape_text(struct buf *out, const char *p, size_t len, size_t max);

/*
 * escape_controls - as escape_text, whole, but a backslash is kept as it
 * is: the last pass over a message that may hold text escape_text made
 * already (it is not escaped twice) and text from outside (its controls
 * are)
 */
void escape_controls(struct buf *out, const char *p, size_t len);

#endif
