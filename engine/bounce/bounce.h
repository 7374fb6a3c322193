/*
 * bounce - read one bounce or complaint message into facts the store can
 * act on: who failed (or complained), how, and which message of ours it
 * was about.  Parsing only: nothing here touches the store or decides a
 * suppression (the classifier is bounce_rules.h).
 *
 * What it understands, first found wins:
 *
 *   DSN   RFC 3464: a message/delivery-status part (normally inside
 *         multipart/report; report-type=delivery-status), every
 *         recipient block of it; the same fields written into the text;
 *         an Amazon SES "Bounce" notification (JSON);
 *   ARF   RFC 5965: a message/feedback-report part (a complaint); an SES
 *         "Complaint"; Hotmail's X-HmXmrOriginalRecipient;
 *   NONE  an auto-reply (Auto-Submitted: auto-replied, X-Autoreply,
 *         "Automatic reply:", "Out of Office" ...) with neither of those:
 *         not a bounce;
 *   TEXT  a bounce written for people (Exim, qmail, old Sendmail,
 *         Postfix without DSN, Exchange, Gmail, Yahoo and others):
 *         recipients are taken only from the lines those MTAs write
 *         them on, with the reply text next to them, or from
 *         X-Failed-Recipients; never the bounce's own From or To, nor
 *         the returned message's From;
 *   NONE  anything else.
 *
 * Never a guess: every address reported is bytes of the message (or of
 * a part after its transfer encoding is undone), copied as they stand
 * between their delimiters and checked with mailaddr_check; a recipient
 * whose address fails that check is reported with an empty address.
 * Case is kept; the caller compares addresses as its store does.
 *
 * Limits: the first BOUNCE_INPUT_MAX bytes are read (the rest is the
 * copy of the original message; truncated says so), at most
 * BOUNCE_RCPTS_MAX recipients and BOUNCE_VERP_MAX candidate addresses,
 * texts cut at BOUNCE_TEXT_MAX - 1 bytes, MIME as mailmsg.h bounds it.
 *
 * A report is reused from message to message: its scratch buffers grow
 * to the largest message seen and stay (bounce_report_free gives them
 * back).  One report per thread.
 */
#ifndef VOLLEY_BOUNCE_H
#define VOLLEY_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mailmsg.h"

#define BOUNCE_INPUT_MAX (8u * 1024 * 1024)
#define BOUNCE_RCPTS_MAX 64
#define BOUNCE_VERP_MAX 8
#define BOUNCE_ADDR_MAX 256	/* 254 octets, the NUL, one spare */
#define BOUNCE_ID_MAX 256	/* a Message-ID with its <> */
#define BOUNCE_FIELD_MAX 128
#define BOUNCE_TEXT_MAX 1024

enum bounce_kind {
	BOUNCE_NONE,		/* not a bounce or complaint */
	BOUNCE_DSN,
	BOUNCE_ARF,
	BOUNCE_TEXT,
};

enum bounce_action {
	BOUNCE_ACTION_NONE,	/* not said (ARF, or a DSN without it) */
	BOUNCE_ACTION_FAILED,
	BOUNCE_ACTION_DELAYED,
	BOUNCE_ACTION_DELIVERED,
	BOUNCE_ACTION_RELAYED,
	BOUNCE_ACTION_EXPANDED,
};

struct bounce_rcpt {
	/* Final-Recipient (else Original-Recipient); "" if none valid */
	char final_rcpt[BOUNCE_ADDR_MAX];
	char original_rcpt[BOUNCE_ADDR_MAX];
	enum bounce_action action;
	char status[16];			/* "5.1.1", or "" */
	int reply_code;				/* 550, or 0 */
	/* the reply, without its code: folded and multiline replies
	 * joined into one line, repeated "550-5.1.1" prefixes dropped */
	char diagnostic[BOUNCE_TEXT_MAX];
	char remote_mta[BOUNCE_FIELD_MAX];	/* "mx.example.com" */
};

struct bounce_arf {
	char feedback_type[BOUNCE_FIELD_MAX];	/* "abuse" */
	char user_agent[BOUNCE_FIELD_MAX];
	char original_rcpt_to[BOUNCE_ADDR_MAX];
	char original_mail_from[BOUNCE_ADDR_MAX];
	char arrival_date[BOUNCE_FIELD_MAX];
	char reported_domain[BOUNCE_FIELD_MAX];
	char source_ip[64];
};

struct bounce_report {
	enum bounce_kind kind;
	bool truncated;		/* input or MIME past a limit */
	/* the bounce's own Message-ID, for idempotency; "" if none (the
	 * caller then hashes the message) */
	char message_id[BOUNCE_ID_MAX];
	/* where the bounce was sent (the VERP address): Delivered-To,
	 * X-Original-To, X-Envelope-To, Envelope-To, To, in that order,
	 * each address once */
	char verp[BOUNCE_VERP_MAX][BOUNCE_ADDR_MAX];
	size_t nverp;
	/* the message that bounced: its Message-ID from the returned
	 * message or headers, else X-Original-Message-ID, In-Reply-To,
	 * References (a volley one first); its To and From */
	char orig_message_id[BOUNCE_ID_MAX];
	char orig_to[BOUNCE_ADDR_MAX];
	char orig_from[BOUNCE_ADDR_MAX];
	char reporting_mta[BOUNCE_FIELD_MAX];
	struct bounce_rcpt rcpts[BOUNCE_RCPTS_MAX];
	size_t nrcpts;
	struct bounce_arf arf;	/* kind ARF only */

	/* private: reused from message to message */
	struct mailmsg mime;
	struct buf work, text, hdr;
};

void bounce_report_init(struct bounce_report *r);
void bounce_report_free(struct bounce_report *r);

/*
 * bounce_parse - read msg[0..len) (need not be NUL ended) into r, which
 * is cleared first.  Never fails: a message it cannot read is
 * BOUNCE_NONE, a bounce whose recipients it cannot find is a DSN or TEXT
 * report with none.  Returns r->kind.
 */
enum bounce_kind bounce_parse(const char *msg, size_t len,
			      struct bounce_report *r);

const char *bounce_kind_name(enum bounce_kind kind);	/* "DSN" ... */
const char *bounce_action_name(enum bounce_action a);	/* "failed" ... */

/*
 * bounce_volley_id - if msgid is volley's own Message-ID,
 * "<volley.CAMPAIGN.JOB.HEX@domain>", its campaign and job ids; false
 * for any other.
 */
bool bounce_volley_id(const char *msgid, uint64_t *campaign,
		      uint64_t *job);

#endif
