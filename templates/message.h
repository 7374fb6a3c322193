/*
 * message - a campaign's message template, and one finished RFC 5322
 * message per recipient.
 *
 * A template is a folder (copied into the store when the campaign is
 * made):
 *
 *   message.cfg        libconfig: subject, from, reply_to, to,
 *                      return_path, feedback_id, headers { },
 *                      list_unsubscribe, list_unsubscribe_mailto,
 *                      attachments [ ], inline [ ]
 *   body.txt           the text part (a Mustache template), and/or
 *   body.html          the HTML part ({{var}} is escaped here by its
 *                      place in the HTML: see tmpl.h)
 *   NAME.mustache      partials, {{> NAME}} (one without its file is an
 *                      error, not the Mustache spec's empty text)
 *   other files        attachments and inline images named in message.cfg
 *
 * Loading compiles every part once and reads and base64-encodes every
 * attachment and inline image once; rendering a recipient then walks the
 * compiled parts into the caller's buffers and copies the pre-encoded
 * attachments, allocating nothing once the buffers have grown.
 *
 * The MIME structure follows what the template has:
 *   text only: text/plain; HTML only: text/html; both:
 *   multipart/alternative (text first); inline images:
 *   multipart/related around the HTML; attachments: multipart/mixed
 *   outermost.
 * Text parts go 7bit when they can (ASCII, lines <= 998) and
 * quoted-printable otherwise, always declared charset=utf-8.
 *
 * A value that would break a header (CR, LF, NUL, or an address header
 * that does not hold an address) fails that recipient with a reason; it
 * never reaches the message.  list_unsubscribe and list_unsubscribe_mailto
 * are URLs: a value after their first byte is percent-encoded
 * (TMPL_ESCAPE_URL), and the rendered list_unsubscribe must be https.
 * Without list_unsubscribe, the job's unsubscribe_url (volley.cfg
 * unsubscribe.base_url) makes the header: see struct message_job.
 *
 * Errors in message.cfg's values name the setting's line and column in
 * message.cfg ("message.cfg:5:17: subject: unclosed tag ..."): the
 * column is found by reading the value's literal after its name, as
 * libconfig does (escapes, and "a" "b" joined), which libconfig itself
 * does not report; where that fails, the line alone.
 *
 * Thread rules: a loaded struct message_tmpl is immutable; any number of
 * threads may render it at once, each with its own buffers.
 */
#ifndef VOLLEY_MESSAGE_H
#define VOLLEY_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "tmpl.h"

struct message_tmpl;

/*
 * The template's files: returns 1 and points *data, *len at the file's
 * bytes (which must stay valid until message_tmpl_load returns), or 0 if
 * there is no such file.
 */
typedef int message_file_fn(void *ctx, const char *name, const void **data,
			    size_t *len);

/*
 * message_tmpl_load - read message.cfg and the parts through files() and
 * compile them.  Returns 0, or -1 with *error_r naming the file,
 * line and column when it can ("body.html:3:1: unclosed section 'x'").
 */
int message_tmpl_load(message_file_fn *files, void *ctx,
		      struct message_tmpl **mt_r, const char **error_r);
void message_tmpl_free(struct message_tmpl **mtp);

/*
 * The names every recipient must have: see tmpl_top_names().  file is
 * "message.cfg", "body.txt" or "body.html"; line and column are in it.
 */
typedef void message_name_fn(void *ctx, const char *file, const char *name,
			     size_t len, unsigned line, unsigned column);
void message_tmpl_top_names(const struct message_tmpl *mt,
			    message_name_fn *fn, void *ctx);

/*
 * message_tmpl_from_address - the From header's address when it is the
 * same for every recipient (no variable in it): appended to addr,
 * returns 1; 0 when it varies (or cannot be made without a recipient).
 */
int message_tmpl_from_address(const struct message_tmpl *mt,
			      struct buf *addr);

/*
 * The envelope sender may hold MESSAGE_VERP once, in its local part:
 * each recipient's token (templates/sign/token.h) stands there, so a
 * bounce names its recipient ("bounces+{{verp}}@news.example.org").
 */
#define MESSAGE_VERP "{{verp}}"

/*
 * message_envelope_problem - why addr cannot be an envelope sender, or
 * NULL: a mailbox, with nothing of Mustache in it but one {{verp}} in
 * the local part.
 */
const char *message_envelope_problem(const char *addr);

/* message_envelope_expand - addr with {{verp}} made token, appended */
void message_envelope_expand(const char *addr, const char *token,
			     struct buf *out);

/* message_tmpl_return_path - message.cfg's return_path, or NULL */
const char *message_tmpl_return_path(const struct message_tmpl *mt);

/*
 * message_tmpl_recipient_files - how many attachments are named with
 * variables: files each recipient has of their own, read through
 * message_job.attach from the campaign's files folder.
 */
size_t message_tmpl_recipient_files(const struct message_tmpl *mt);

/*
 * message_attach_fn - read a recipient's file: path is relative to the
 * campaign's files folder, as the template rendered it (checked to stay
 * inside it).  Returns 0 with *data, *len valid until the next call, or
 * -1 with *error_r (which names the path).
 */
typedef int message_attach_fn(void *ctx, const char *path,
			      const void **data, size_t *len,
			      const char **error_r);

/*
 * message_tmpl_names - every name the template uses anywhere (see
 * tmpl_names()), each with the file it is in ("message.cfg", "body.html",
 * "footer.mustache") and its line and column there.
 */
void message_tmpl_names(const struct message_tmpl *mt, tmpl_names_fn *fn,
			void *ctx);

/* What a message says about its recipient and job, besides variables. */
struct message_job {
	const char *to;		/* the recipient's address */
	size_t to_len;
	message_attach_fn *attach;	/* NULL: no files folder */
	void *attach_ctx;
	int64_t campaign_id;
	int64_t job_id;
	int64_t campaign_created;	/* ms; makes Message-IDs unique */
	time_t date;		/* the Date header */
	/*
	 * The recipient's one-click unsubscribe URL (http or https), or
	 * NULL (none configured, or a transactional campaign).  When
	 * message.cfg sets no list_unsubscribe, it makes the
	 * List-Unsubscribe header (with list_unsubscribe_mailto's, if set)
	 * and, when https, List-Unsubscribe-Post (RFC 8058).
	 */
	const char *unsubscribe_url;
	size_t unsubscribe_url_len;
};

/* Reusable buffers for rendering; zero-initialise, free when done. */
struct message_bufs {
	struct buf text;	/* a body that had to be re-encoded */
	struct buf value;
	struct buf tmp;
	/* the Date header of the second last rendered, kept: a send renders
	 * thousands of messages in one second */
	time_t date_time;
	char date[48];
	/*
	 * What the last message_render put in place of values: a value
	 * body.html wanted as a URL that was not a safe one (see tmpl.h).
	 * The message is sent that way; the caller tells its user.
	 */
	struct tmpl_notes notes;
	/*
	 * The last message_render's message is its own SMTP content, as
	 * it is: every line end CRLF, the last line ended, no line that
	 * starts with '.'.  DATA sends it with no dot-stuffing (then the
	 * "." line), BDAT counts its bytes as they are.  false: it may
	 * need stuffing (a 7bit part with such a line, say).
	 */
	bool stuffed;
};
void message_bufs_free(struct message_bufs *b);

/*
 * message_render - append the whole message for one recipient to out:
 * headers, a blank line, the body; every line ends in CRLF.  Returns 0, or
 * -1 with *error_r saying why (for example "subject: the value of
 * {{name}} holds a line break"), out then holding a partial message.
 */
int message_render(const struct message_tmpl *mt,
		   const struct tmpl_data *data, const struct message_job *job,
		   struct message_bufs *bufs, struct buf *out,
		   const char **error_r);

/*
 * message_tmpl_sets_list_unsubscribe - does message.cfg set
 * list_unsubscribe?  (Then a job's unsubscribe_url makes no header.)
 */
bool message_tmpl_sets_list_unsubscribe(const struct message_tmpl *mt);

#endif
