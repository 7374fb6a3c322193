/*
 * mailbox - the messages of a Maildir, an mbox, one message file, or a
 * stream (standard input), one at a time, for `volley bounces ingest`.
 *
 *   Maildir  a folder holding cur/ and new/ (tmp/ is not read): the
 *            regular files of cur/ and new/, together in name order
 *            (Maildir names start with the delivery time), names that
 *            start with '.' and anything not a regular file (a
 *            subfolder, a link, a FIFO) left out;
 *   mbox     a file whose first line starts with "From ": a message
 *            starts at each "From " line that opens the file or follows
 *            an empty line (mboxo and mboxrd); the separator and the
 *            empty line before the next one are not part of a message,
 *            and a line ">From ", ">>From " ... loses one '>' (mboxrd
 *            unquoting; in an mboxo file such a line was a "From " line
 *            before it was quoted, so it is right there too);
 *   file     any other regular file: one message (an .eml);
 *   stream   a FILE (standard input): one message, read to its end.
 *
 * Bytes are given as they stand (LF or CRLF line ends alike; an mbox
 * separator may end in CRLF).
 *
 * Bounded: a message over MAILBOX_MESSAGE_MAX bytes is not kept in
 * memory.  It is reported as skipped (with the size seen) and the
 * reading goes on with the next message; a file in a Maildir and a
 * single file are not even read (their size says so), an mbox message
 * is read through and dropped, a stream read to its end and dropped (a
 * pipe's writer is never left hanging).  Memory: the largest message
 * kept, plus a Maildir's file names.
 *
 * Errors name the file (and for an mbox the line its message starts
 * on).  A Maildir file that cannot be read is one failed message: the
 * next call goes on with the next file.  A read error in an mbox, a file
 * or a stream ends it.
 */
#ifndef VOLLEY_MAILBOX_H
#define VOLLEY_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* a message over this is skipped (bounce_parse reads 8 MB of it) */
#define MAILBOX_MESSAGE_MAX (10u * 1024 * 1024)

enum mailbox_kind {
	MAILBOX_MAILDIR,
	MAILBOX_MBOX,
	MAILBOX_FILE,
	MAILBOX_STREAM,
};

struct mailbox;

struct mailbox_msg {
	const char *data;	/* the message (NUL after it, not counted);
				   NULL when skipped */
	size_t len;		/* its size; skipped: the bytes seen */
	bool skipped;		/* over MAILBOX_MESSAGE_MAX, not kept */
	/* where it is, for messages: "DIR/new/NAME", "FILE:LINE" (an
	 * mbox: the line of its "From " separator), "FILE", or the
	 * stream's name */
	const char *where;
};

/*
 * mailbox_open - the mailbox at path: a Maildir, an mbox or a file (see
 * above).  A folder that is not a Maildir is an error.
 */
int mailbox_open(const char *path, struct mailbox **mb_r,
		 const char **error_r);

/* mailbox_open_stream - one message read from f (not closed), which
 * messages call name ("standard input") */
void mailbox_open_stream(FILE *f, const char *name, struct mailbox **mb_r);

enum mailbox_kind mailbox_kind(const struct mailbox *mb);
/* "Maildir", "mbox", "file", "stream" */
const char *mailbox_kind_name(enum mailbox_kind kind);

/*
 * mailbox_next - the next message into *msg (valid until the next call
 * or mailbox_close): 1, or 0 when there are no more, or -1 with
 * *error_r naming where (*msg->where is set too; call again to go on:
 * it returns 0 when nothing more can be read).
 */
int mailbox_next(struct mailbox *mb, struct mailbox_msg *msg,
		 const char **error_r);

void mailbox_close(struct mailbox **mbp);

#endif
