/*
 * mime_enc - the encodings a mail message needs: quoted-printable and
 * base64 bodies (RFC 2045), RFC 2047 encoded-words in headers, and header
 * folding (RFC 5322 2.2.3).
 *
 * Every function appends to a struct buf and every line it produces ends
 * in CRLF; none ever emits a bare CR or LF.  Header functions refuse a
 * value holding CR, LF or NUL (returning -1), so data from a recipient
 * can never start a new header.
 */
#ifndef VOLLEY_MIME_ENC_H
#define VOLLEY_MIME_ENC_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Lines of encoded bodies; the RFC 2045 maximum. */
#define MIME_LINE_MAX 76
/* Header lines are folded to this many columns where they can be. */
#define MIME_HEADER_FOLD 78
/* ... and never exceed this (RFC 5322 2.1.1, without the CRLF). */
#define MIME_HEADER_HARD_MAX 998

/*
 * mime_is_7bit - true if p can go as Content-Transfer-Encoding: 7bit:
 * only ASCII, no NUL, no bare CR or LF (CRLF or LF line ends), and no line
 * longer than 998 bytes.
 */
bool mime_is_7bit(const char *p, size_t len);

/*
 * mime_is_7bit_crlf - true if mime_is_7bit() and every line end is CRLF
 * already, so the text can be copied as it is.
 */
bool mime_is_7bit_crlf(const char *p, size_t len);

/*
 * mime_crlf - append text with every line end (LF, CRLF, or a lone CR)
 * made CRLF; used for 7bit parts.
 */
void mime_crlf(struct buf *out, const char *p, size_t len);

/*
 * mime_qp_encode - quoted-printable for text (RFC 2045 6.7).  Line ends in
 * the input (LF, CRLF or a lone CR) become CRLF hard breaks; lines are
 * broken with soft breaks ("=" CRLF) so none exceeds 76 characters; '=',
 * control characters and bytes >= 0x80 are =XX (an =XX triple is never
 * split by a soft break); a space or tab before a line end (or at the end
 * of the input) is encoded; a '.' starting a line is encoded (=2E) so the
 * body survives transports that do not dot-stuff.  The output ends with
 * CRLF.
 */
void mime_qp_encode(struct buf *out, const char *p, size_t len);

/*
 * mime_qp_encode_from - mime_qp_encode in pieces: append the encoding of
 * p[0..stop) as it is in mime_qp_encode(p, len) when the output line
 * already holds col characters (0 after a line end); the bytes from stop
 * on are only looked at (what follows a byte decides how it goes).
 * Returns the column the output ends at; the final line end is added
 * only when stop is len.  So a text's encoding can be cut wherever its
 * output column is known.
 */
size_t mime_qp_encode_from(struct buf *out, const char *p, size_t len,
			   size_t stop, size_t col);

/*
 * mime_base64_encode - base64 (RFC 2045 6.8) in lines of 76 characters,
 * each ended by CRLF, the last one included.
 */
void mime_base64_encode(struct buf *out, const void *p, size_t len);

/*
 * mime_header_text - append "Name: value" CRLF for an unstructured header
 * (Subject and the like).  ASCII text is folded at whitespace to 78
 * columns where possible.  Text with non-ASCII characters (which must be
 * valid UTF-8), or an ASCII word that looks like an encoded-word ("=?"),
 * goes out as RFC 2047 encoded-words (charset UTF-8, whichever of B or Q
 * is shorter), each at most 75 characters, never splitting a UTF-8
 * character between two words, folded one per line as needed.
 * Returns 0, or -1 if value holds CR, LF or NUL, or invalid UTF-8.
 */
int mime_header_text(struct buf *out, const char *name, const char *value,
		     size_t len);

/*
 * mime_header_mailbox - append "Name: display <addr>" CRLF (From, To,
 * Reply-To).  The display name (may be empty: then just "Name: addr") is
 * sent as an atom phrase if it can be, a quoted-string if it is ASCII
 * with specials, or RFC 2047 encoded-words if it is not ASCII.  addr must
 * already be a valid mailbox; it is never encoded (an SMTPUTF8 address
 * goes as UTF-8, RFC 6532).  Returns 0, or -1 if either part holds CR,
 * LF or NUL, the display name is invalid UTF-8, or the header cannot fit
 * 998-byte lines even encoded (an address of some 990 bytes).
 */
int mime_header_mailbox(struct buf *out, const char *name,
			const char *display, size_t display_len,
			const char *addr, size_t addr_len);

/*
 * mime_header_raw - append "Name: value" CRLF for a structured value the
 * caller built (Content-Type, Message-ID, List-Unsubscribe), folded at
 * whitespace where lines would pass 78 columns.  Returns -1 (appending
 * nothing) if value holds CR, LF, NUL or a non-ASCII byte, or a single
 * token too long for a 998-byte line.
 */
int mime_header_raw(struct buf *out, const char *name, const char *value,
		    size_t len);

#endif
