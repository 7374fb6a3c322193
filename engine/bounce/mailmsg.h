/*
 * mailmsg - a small RFC 5322 / MIME reader for what bounces need.
 *
 * It reads a message already in memory and never copies it: a parsed
 * message is a flat table of parts, each a span of the input (its header
 * block and its body) with its Content-Type and transfer encoding.  What
 * it knows:
 *
 *   - header fields: folded lines unfolded, names matched without regard
 *     to case, lines that are no field (an mbox "From " line, garbage)
 *     skipped; RFC 2047 words are left as they are (addresses never use
 *     them);
 *   - multipart bodies, nested, split on their boundary lines; a part
 *     whose closing delimiter is missing runs to the end of its parent;
 *   - Content-Type parameters (token or quoted string);
 *   - quoted-printable and base64 bodies, decoded on request, garbage
 *     skipped (a base64 body full of noise decodes to what its valid
 *     characters say, never fails);
 *   - LF or CRLF line ends, mixed.
 *
 * Bounded: at most MAILMSG_PARTS_MAX parts and MAILMSG_DEPTH_MAX levels
 * of nesting (the table is filled breadth first by a loop, with no
 * recursion); parts beyond a limit are left out and the message is
 * flagged truncated.  Nothing reads outside [p, p + len), and the input
 * need not end in a NUL.
 */
#ifndef VOLLEY_MAILMSG_H
#define VOLLEY_MAILMSG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define MAILMSG_PARTS_MAX 64
#define MAILMSG_DEPTH_MAX 8

struct mailmsg_span {
	const char *p;
	size_t len;
};

/* One header field as it is in the input: value still folded. */
struct mailmsg_field {
	struct mailmsg_span name;
	struct mailmsg_span value;
};

struct mailmsg_ctype {
	char type[64];		/* "multipart/report", lower case; */
				/* "text/plain" when absent or bad */
	char boundary[128];	/* "" when none (or longer than 127) */
	char report_type[64];	/* lower case: "delivery-status" */
};

enum mailmsg_cte {
	MAILMSG_CTE_IDENTITY,	/* 7bit, 8bit, binary, unknown */
	MAILMSG_CTE_QP,
	MAILMSG_CTE_BASE64,
};

struct mailmsg_part {
	struct mailmsg_span head;	/* header block, without the blank */
	struct mailmsg_span body;	/* line that ends it */
	struct mailmsg_ctype ct;
	enum mailmsg_cte cte;
	int depth;			/* 0 for the message itself */
	int parent;			/* index of the multipart; -1 for 0 */
	int children;			/* parts split from this multipart */
};

struct mailmsg {
	struct mailmsg_part parts[MAILMSG_PARTS_MAX];
	size_t nparts;
	bool truncated;		/* a limit left parts out */
};

/*
 * mailmsg_split - the header block and the body of an entity: the header
 * ends at the first empty line (LF or CRLF).  Without one, the whole
 * entity is header and the body is empty.
 */
void mailmsg_split(const char *p, size_t len, struct mailmsg_span *head,
		   struct mailmsg_span *body);

/*
 * mailmsg_field_next - the field at *pos in head (start with *pos = 0),
 * advancing *pos past it; false at the end.  Lines that are no field
 * (no name, a name with spaces) are skipped.
 */
bool mailmsg_field_next(const struct mailmsg_span *head, size_t *pos,
			struct mailmsg_field *f);

/* mailmsg_name_is - is the field's name name, ignoring case? */
bool mailmsg_name_is(const struct mailmsg_field *f, const char *name);

/*
 * mailmsg_unfold - append v unfolded (each run of CR, LF, space and tab
 * becomes one space; leading and trailing space dropped) to out.
 */
void mailmsg_unfold(const char *v, size_t len, struct buf *out);

/*
 * mailmsg_header - the first field named name in head, unfolded, in out
 * (reset first); false, out empty, when there is none.
 */
bool mailmsg_header(const struct mailmsg_span *head, const char *name,
		    struct buf *out);

/*
 * mailmsg_param - the parameter name (ignoring case) of a header value
 * such as a Content-Type, unquoted, into out (outsz bytes, NUL ended);
 * false when absent or longer than outsz - 1.
 */
bool mailmsg_param(const char *v, size_t len, const char *name, char *out,
		   size_t outsz);

/* mailmsg_ctype_parse - a Content-Type value (may be folded) */
void mailmsg_ctype_parse(const char *v, size_t len, struct mailmsg_ctype *ct);

/*
 * mailmsg_parse - split p[0..len) into its parts.  Never fails: whatever
 * cannot be read as MIME is one text part.  parts[0] is the message.
 */
void mailmsg_parse(struct mailmsg *m, const char *p, size_t len);

/*
 * mailmsg_decode - append the body of part, decoded from its transfer
 * encoding, to out.  The result is never longer than the body.
 */
void mailmsg_decode(const struct mailmsg_part *part, struct buf *out);

/* mailmsg_decode_qp, _base64 - the decoders by themselves */
void mailmsg_decode_qp(const char *p, size_t len, struct buf *out);
void mailmsg_decode_base64(const char *p, size_t len, struct buf *out);

#endif
