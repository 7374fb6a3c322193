/*
 * bounce - one bounce or complaint message into a report (see bounce.h).
 *
 * The message is split by mailmsg; then, in order: the returned
 * message's headers (what bounced), a delivery-status or feedback-report
 * part (the machine-readable facts), then the other machine-readable
 * forms (Hotmail's complaint, SES JSON, DSN fields in the text), and
 * only when none is there, the human-readable text, read line by line
 * for the shapes MTAs write recipients in.  Every address comes out of find_addr, which copies
 * bytes of the message and checks them with mailaddr_check: nothing is
 * ever built from pieces.
 */
#include "bounce.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailaddr.h"

/* The human-readable text is read this far: the facts are at its top. */
#define BOUNCE_SCAN_MAX (256u * 1024)

void bounce_report_init(struct bounce_report *r)
{
	memset(r, 0, sizeof(*r));
}

void bounce_report_free(struct bounce_report *r)
{
	buf_free(&r->work);
	buf_free(&r->text);
	buf_free(&r->hdr);
}

const char *bounce_kind_name(enum bounce_kind kind)
{
	switch (kind) {
	case BOUNCE_DSN:
		return "DSN";
	case BOUNCE_ARF:
		return "ARF";
	case BOUNCE_TEXT:
		return "TEXT";
	default:
		return "NONE";
	}
}

const char *bounce_action_name(enum bounce_action a)
{
	static const char *const names[] = {
		"-", "failed", "delayed", "delivered", "relayed", "expanded",
	};

	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] :
	       "-";
}

/* ci_find - the first place of needle (lower case) in p[0..len), any case */
static const char *ci_find(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	unsigned char first = (unsigned char)needle[0];

	if (n == 0 || len < n)
		return NULL;
	for (size_t i = 0; i + n <= len; i++) {
		if (tolower((unsigned char)p[i]) == first &&
		    strncasecmp(p + i, needle, n) == 0)
			return p + i;
	}
	return NULL;
}

static bool ci_any(const char *p, size_t len, const char *const *needles)
{
	for (; *needles != NULL; needles++)
		if (ci_find(p, len, *needles) != NULL)
			return true;
	return false;
}

/*
 * ci_find_ws - the first match of needle (lower case) in p[0..len) that
 * ends after p[from], any case, each space of needle matching any run
 * of white space (a phrase a mailer wrapped over two lines); NULL if none
 */
static const char *ci_find_ws(const char *p, size_t len, size_t from,
			      const char *needle)
{
	for (size_t i = 0; i < len; i++) {
		size_t k = i;
		const char *q = needle;

		while (*q != '\0' && k < len) {
			if (*q == ' ') {
				if (!isspace((unsigned char)p[k]))
					break;
				while (k < len && isspace((unsigned char)p[k]))
					k++;
				q++;
			} else if (tolower((unsigned char)p[k]) == *q) {
				k++;
				q++;
			} else {
				break;
			}
		}
		if (*q == '\0' && k > from)
			return p + i;
	}
	return NULL;
}

static bool ci_any_ws(const char *p, size_t len, size_t from,
		      const char *const *needles)
{
	for (; *needles != NULL; needles++)
		if (ci_find_ws(p, len, from, *needles) != NULL)
			return true;
	return false;
}

/* copy_text - p[0..n) trimmed into out, cut to fit */
static void copy_text(char *out, size_t outsz, const char *p, size_t n)
{
	while (n > 0 && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static bool is_local_char(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c);
}

static bool is_domain_char(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || c == '-' || c == '.';
}

/*
 * find_addr - the next address in p[*pos..len): the longest run of
 * local-part characters before an '@' and domain characters after it,
 * without a leading or trailing dot, that mailaddr_check accepts.
 * *a and *alen are set and *pos moved past it; false when none is left.
 */
static bool find_addr(const char *p, size_t len, size_t *pos,
		      const char **a, size_t *alen)
{
	size_t i = *pos;

	while (i < len) {
		const char *at = memchr(p + i, '@', len - i);
		size_t s, e, x;

		if (at == NULL)
			break;
		x = (size_t)(at - p);
		s = x;
		while (s > *pos && is_local_char((unsigned char)p[s - 1]))
			s--;
		while (s < x && p[s] == '.')
			s++;
		e = x + 1;
		while (e < len && is_domain_char((unsigned char)p[e]))
			e++;
		while (e > x + 1 && (p[e - 1] == '.' || p[e - 1] == '-'))
			e--;
		i = x + 1;
		if (s < x && e > x + 1 && e - s <= MAILADDR_MAX &&
		    mailaddr_check(p + s, e - s, NULL, NULL)) {
			*a = p + s;
			*alen = e - s;
			*pos = e;
			return true;
		}
	}
	*pos = len;
	return false;
}

/* first_addr - the first address in p[0..len) into out; false if none */
static bool first_addr(const char *p, size_t len, char *out)
{
	const char *a;
	size_t pos = 0, n;

	out[0] = '\0';
	if (!find_addr(p, len, &pos, &a, &n))
		return false;
	memcpy(out, a, n);
	out[n] = '\0';
	return true;
}

/*
 * msgid_copy - the first "<...>" of p[0..len) with an '@' and no space
 * inside into out (with its brackets); false if none
 */
static bool msgid_copy(const char *p, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		size_t e;

		if (p[i] != '<')
			continue;
		for (e = i + 1; e < len && p[e] != '>' && p[e] != '<' &&
		     (unsigned char)p[e] > ' '; e++)
			;
		if (e < len && p[e] == '>' && e - i + 1 < BOUNCE_ID_MAX &&
		    memchr(p + i, '@', e - i) != NULL && e > i + 1) {
			memcpy(out, p + i, e - i + 1);
			out[e - i + 1] = '\0';
			return true;
		}
		i = e - 1;
	}
	return false;
}

/* strip_type - "rfc822; a@b" -> " a@b": drop a one-word "type;" */
static void strip_type(const char **p, size_t *n)
{
	const char *semi = memchr(*p, ';', *n);
	size_t k = 0, end;

	if (semi == NULL || semi - *p > 32)
		return;
	end = (size_t)(semi - *p);
	while (k < end && isspace((unsigned char)(*p)[k]))
		k++;
	while (end > k && isspace((unsigned char)(*p)[end - 1]))
		end--;
	for (; k < end; k++)
		if (isspace((unsigned char)(*p)[k]))
			return;		/* two words: not a type */
	k = (size_t)(semi - *p) + 1;
	*p += k;
	*n -= k;
}

/*
 * addr_field - a DSN address field's value ("rfc822; <a@b>") into out:
 * the type dropped, then the whole rest must be one address
 */
static void addr_field(const char *v, size_t len, char *out)
{
	out[0] = '\0';
	strip_type(&v, &len);
	while (len > 0 && isspace((unsigned char)*v)) {
		v++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		len--;
	if (len >= 2 && v[0] == '<' && v[len - 1] == '>') {
		v++;
		len -= 2;
	}
	if (len > 0 && len <= MAILADDR_MAX &&
	    mailaddr_check(v, len, NULL, NULL)) {
		memcpy(out, v, len);
		out[len] = '\0';
	}
}

/* add_verp - every address of a header value, each once */
static void add_verp(struct bounce_report *r, const char *v, size_t len)
{
	const char *a;
	size_t pos = 0, n;

	while (r->nverp < BOUNCE_VERP_MAX && find_addr(v, len, &pos, &a, &n)) {
		bool seen = false;

		for (size_t i = 0; i < r->nverp && !seen; i++)
			seen = strlen(r->verp[i]) == n &&
			       strncasecmp(r->verp[i], a, n) == 0;
		if (seen)
			continue;
		memcpy(r->verp[r->nverp], a, n);
		r->verp[r->nverp][n] = '\0';
		r->nverp++;
	}
}

/*
 * parse_reply - "550-5.1.1 text 550-5.1.1 more" into code, enhanced and
 * text, dropping the prefixes a multiline reply repeats; text is
 * written into out (outsz) joined with single spaces
 */
static void parse_reply(const char *p, size_t len, int *code, char *status,
			char *out, size_t outsz)
{
	size_t i = 0, o = 0;
	char enh[16] = "";
	char c3[4] = "";

	while (i < len && isspace((unsigned char)p[i]))
		i++;
	if (len - i >= 3 && p[i] >= '2' && p[i] <= '5' &&
	    isdigit((unsigned char)p[i + 1]) &&
	    isdigit((unsigned char)p[i + 2]) &&
	    (len - i == 3 || p[i + 3] == ' ' || p[i + 3] == '-')) {
		memcpy(c3, p + i, 3);
		*code = atoi(c3);
		i += len - i > 3 ? 4 : 3;
	}
	/* an enhanced code: class.subject.detail */
	{
		size_t k = i, dots = 0;

		while (k < len && (isdigit((unsigned char)p[k]) ||
				   p[k] == '.') && k - i < 15) {
			dots += p[k] == '.';
			k++;
		}
		if (dots == 2 && k > i + 4 && p[i] >= '2' && p[i] <= '5' &&
		    p[i + 1] == '.' && p[k - 1] != '.' &&
		    (k == len || p[k] == ' ')) {
			memcpy(enh, p + i, k - i);
			enh[k - i] = '\0';
			i = k < len ? k + 1 : k;
		}
	}
	if (status[0] == '\0' && enh[0] != '\0')
		strcpy(status, enh);
	while (i < len && o + 1 < outsz) {
		/* a repeated "550-5.1.1 " or "550 " after a space */
		if (c3[0] != '\0' && o > 0 && out[o - 1] == ' ' &&
		    len - i >= 4 && memcmp(p + i, c3, 3) == 0 &&
		    (p[i + 3] == '-' || p[i + 3] == ' ')) {
			i += 4;
			if (enh[0] != '\0' && len - i > strlen(enh) &&
			    memcmp(p + i, enh, strlen(enh)) == 0 &&
			    p[i + strlen(enh)] == ' ')
				i += strlen(enh) + 1;
			continue;
		}
		if (isspace((unsigned char)p[i])) {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			i++;
			continue;
		}
		out[o++] = p[i++];
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* is_status - "d.d.d" with 1-3 digits each, class 2, 4 or 5 */
static bool is_status(const char *s, size_t n)
{
	size_t i = 0, dots = 0, run = 0;

	if (n < 5 || n > 11 || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return false;
	for (; i < n; i++) {
		if (s[i] == '.') {
			if (run == 0)
				return false;
			dots++;
			run = 0;
		} else if (isdigit((unsigned char)s[i]) && run < 3) {
			run++;
		} else {
			return false;
		}
	}
	return dots == 2 && run > 0;
}

static enum bounce_action parse_action(const char *v, size_t n)
{
	static const char *const names[] = {
		"failed", "delayed", "delivered", "relayed", "expanded",
	};

	while (n > 0 && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	for (size_t k = 0; k < 5; k++) {
		size_t l = strlen(names[k]);

		if (n >= l && strncasecmp(v, names[k], l) == 0)
			return (enum bounce_action)(k + 1);
	}
	return BOUNCE_ACTION_NONE;
}

/* new_rcpt - the next recipient slot, cleared; NULL when all are used */
static struct bounce_rcpt *new_rcpt(struct bounce_report *r)
{
	struct bounce_rcpt *rc;

	if (r->nrcpts >= BOUNCE_RCPTS_MAX) {
		r->truncated = true;
		return NULL;
	}
	rc = &r->rcpts[r->nrcpts++];
	memset(rc, 0, sizeof(*rc));
	return rc;
}

/* dsn_block - one block of fields of a delivery-status part */
static void dsn_block(struct bounce_report *r, const struct mailmsg_span *b)
{
	struct mailmsg_field f;
	struct bounce_rcpt *rc = NULL;
	size_t pos = 0;
	bool is_rcpt = false;

	while (mailmsg_field_next(b, &pos, &f))
		if (mailmsg_name_is(&f, "Final-Recipient") ||
		    mailmsg_name_is(&f, "Action"))
			is_rcpt = true;
	if (is_rcpt && (rc = new_rcpt(r)) == NULL)
		return;
	pos = 0;
	while (mailmsg_field_next(b, &pos, &f)) {
		const char *v = f.value.p;
		size_t n = f.value.len;

		if (mailmsg_name_is(&f, "Reporting-MTA")) {
			strip_type(&v, &n);
			copy_text(r->reporting_mta, sizeof(r->reporting_mta),
				  v, n);
		}
		if (rc == NULL)
			continue;
		if (mailmsg_name_is(&f, "Final-Recipient")) {
			addr_field(v, n, rc->final_rcpt);
		} else if (mailmsg_name_is(&f, "Original-Recipient")) {
			addr_field(v, n, rc->original_rcpt);
		} else if (mailmsg_name_is(&f, "Action")) {
			rc->action = parse_action(v, n);
		} else if (mailmsg_name_is(&f, "Status")) {
			char s[16];

			copy_text(s, sizeof(s), v, n);
			/* "5.1.1 (user unknown)": the code only */
			s[strcspn(s, " \t(")] = '\0';
			if (is_status(s, strlen(s)))
				strcpy(rc->status, s);
		} else if (mailmsg_name_is(&f, "Remote-MTA")) {
			strip_type(&v, &n);
			buf_reset(&r->hdr);
			mailmsg_unfold(v, n, &r->hdr);
			copy_text(rc->remote_mta, sizeof(rc->remote_mta),
				  r->hdr.data, r->hdr.len);
		} else if (mailmsg_name_is(&f, "Diagnostic-Code")) {
			buf_reset(&r->hdr);
			mailmsg_unfold(v, n, &r->hdr);
			v = r->hdr.data;
			n = r->hdr.len;
			strip_type(&v, &n);
			/* the Status field wins over the diagnostic's code */
			{
				char st[16];

				strcpy(st, rc->status);
				parse_reply(v, n, &rc->reply_code, st,
					    rc->diagnostic,
					    sizeof(rc->diagnostic));
				if (rc->status[0] == '\0')
					strcpy(rc->status, st);
			}
		}
	}
	/* no Final-Recipient (McAfee writes only Original-Recipient): the
	 * block's other address field names the same recipient */
	if (rc != NULL && rc->final_rcpt[0] == '\0')
		strcpy(rc->final_rcpt, rc->original_rcpt);
}

/* dsn_parse - a delivery-status part's blocks, decoded into r->work */
static void dsn_parse(struct bounce_report *r)
{
	const char *p = r->work.data;
	size_t len = r->work.len;

	while (len > 0) {
		struct mailmsg_span head, body;

		mailmsg_split(p, len, &head, &body);
		if (head.len > 0)
			dsn_block(r, &head);
		len -= (size_t)(body.p - p);
		p = body.p;
	}
}

static void arf_parse(struct bounce_report *r)
{
	struct mailmsg_span head = { r->work.data, r->work.len };
	struct mailmsg_field f;
	struct bounce_arf *a = &r->arf;
	size_t pos = 0;

	while (mailmsg_field_next(&head, &pos, &f)) {
		const char *v = f.value.p;
		size_t n = f.value.len;

#define ARF_TEXT(name, field) \
		if (mailmsg_name_is(&f, name) && a->field[0] == '\0') \
			copy_text(a->field, sizeof(a->field), v, n)
		ARF_TEXT("Feedback-Type", feedback_type);
		ARF_TEXT("User-Agent", user_agent);
		ARF_TEXT("Arrival-Date", arrival_date);
		ARF_TEXT("Received-Date", arrival_date);
		ARF_TEXT("Reported-Domain", reported_domain);
		ARF_TEXT("Source-IP", source_ip);
#undef ARF_TEXT
		if (mailmsg_name_is(&f, "Original-Rcpt-To") &&
		    a->original_rcpt_to[0] == '\0')
			addr_field(v, n, a->original_rcpt_to);
		if (mailmsg_name_is(&f, "Original-Mail-From") &&
		    a->original_mail_from[0] == '\0')
			addr_field(v, n, a->original_mail_from);
	}
}

/*
 * orig_headers - the returned message's (or its headers') Message-ID,
 * To and From, from the header block at p[0..len)
 */
static void orig_headers(struct bounce_report *r, const char *p, size_t len)
{
	struct mailmsg_span head, body;
	struct mailmsg_field f;
	size_t pos = 0;

	mailmsg_split(p, len, &head, &body);
	while (mailmsg_field_next(&head, &pos, &f)) {
		if (mailmsg_name_is(&f, "Message-ID") &&
		    r->orig_message_id[0] == '\0')
			msgid_copy(f.value.p, f.value.len, r->orig_message_id);
		else if (mailmsg_name_is(&f, "To") && r->orig_to[0] == '\0')
			first_addr(f.value.p, f.value.len, r->orig_to);
		else if (mailmsg_name_is(&f, "From") &&
			 r->orig_from[0] == '\0')
			first_addr(f.value.p, f.value.len, r->orig_from);
	}
}

/* refs_msgid - from References: a volley Message-ID first, else the last */
static void refs_msgid(const char *v, size_t len, char *out)
{
	size_t i = 0;

	while (i < len) {
		const char *lt = memchr(v + i, '<', len - i);
		char id[BOUNCE_ID_MAX];

		if (lt == NULL)
			break;
		i = (size_t)(lt - v);
		if (msgid_copy(v + i, len - i, id)) {
			if (out[0] == '\0' ||
			    strncmp(out, "<volley.", 8) != 0)
				strcpy(out, id);
		}
		i++;
	}
}

/* top_headers - the bounce's own header facts */
static void top_headers(struct bounce_report *r, const struct mailmsg_span *h,
			bool *auto_reply, bool *from_daemon,
			bool *subject_bounce)
{
	static const char *const verp_fields[] = {
		"Delivered-To", "X-Original-To", "X-Envelope-To",
		"Envelope-To", "To", NULL,
	};
	static const char *const bounce_subjects[] = {
		"undeliver", "delivery status notification",
		"mail delivery failed", "returned mail", "failure notice",
		"delivery failure", "non-delivery", "delivery has failed",
		"delayed mail", "mail delivery system", NULL,
	};
	static const char *const auto_subjects[] = {
		"automatic reply", "auto:", "autoreply", "auto-reply",
		"out of office", "out of the office", "vacation", NULL,
	};
	struct mailmsg_field f;
	size_t pos = 0;
	char fallback[BOUNCE_ID_MAX] = "";

	for (size_t k = 0; verp_fields[k] != NULL; k++) {
		pos = 0;
		while (mailmsg_field_next(h, &pos, &f))
			if (mailmsg_name_is(&f, verp_fields[k]))
				add_verp(r, f.value.p, f.value.len);
	}
	pos = 0;
	while (mailmsg_field_next(h, &pos, &f)) {
		const char *v = f.value.p;
		size_t n = f.value.len;

		if (mailmsg_name_is(&f, "Message-ID") &&
		    r->message_id[0] == '\0') {
			msgid_copy(v, n, r->message_id);
		} else if (mailmsg_name_is(&f, "X-Original-Message-ID")) {
			msgid_copy(v, n, r->orig_message_id);
		} else if (mailmsg_name_is(&f, "In-Reply-To")) {
			if (fallback[0] == '\0' ||
			    strncmp(fallback, "<volley.", 8) != 0)
				msgid_copy(v, n, fallback);
		} else if (mailmsg_name_is(&f, "References")) {
			if (fallback[0] == '\0' ||
			    strncmp(fallback, "<volley.", 8) != 0)
				refs_msgid(v, n, fallback);
		} else if (mailmsg_name_is(&f, "Subject")) {
			*subject_bounce = ci_any(v, n, bounce_subjects);
			if (ci_any(v, n, auto_subjects))
				*auto_reply = true;
		} else if (mailmsg_name_is(&f, "From")) {
			size_t k = 0;

			while (k < n && isspace((unsigned char)v[k]))
				k++;
			/* "From: <>": the null sender is a mailer's */
			*from_daemon = ci_find(v, n, "mailer-daemon") ||
				       ci_find(v, n, "postmaster") ||
				       ci_find(v, n, "mail delivery") ||
				       (n - k >= 2 && v[k] == '<' &&
					v[k + 1] == '>');
		} else if (mailmsg_name_is(&f, "X-Autoreply") ||
			   mailmsg_name_is(&f, "X-Autorespond")) {
			*auto_reply = true;
		} else if (mailmsg_name_is(&f, "Auto-Submitted") ||
			   mailmsg_name_is(&f, "Precedence")) {
			if (ci_find(v, n, "auto-replied") ||
			    ci_find(v, n, "auto_reply"))
				*auto_reply = true;
		}
	}
	/* set after the loop: X-Original-Message-ID beats the fallbacks */
	if (r->orig_message_id[0] == '\0')
		strcpy(r->orig_message_id, fallback);
}

/* ------------------------------------------------------------------ */
/* Text bounces                                                        */

/* where the copy of the original message starts: the scan stops there */
static const char *const copy_markers[] = {
	"------ this is a copy of the message",
	"------ this is a copy of your message",
	"--- below this line is a copy of the message",
	"----- original message follows -----",
	"----- unsent message follows -----",
	"----- original message -----",
	"original message headers:",
	"original message follows.",
	"below is a copy of the original message",
	"message headers follow.",
	"the header of the original message is following",
	"included is a copy of the message header",
	"------- returned message --------",
	"message text follows:",
	NULL,
};

/*
 * Phrases after which the failed recipients are listed, one a line, each
 * line starting with its address (after white space and ">>> ", "-- " or
 * "Recipient:"), its reason on the rest of the line and the lines after.
 * Matched with any white space for each space, over a line and the one
 * before it.
 */
static const char *const list_markers[] = {
	"the following address failed:",
	"the following addresses failed:",
	"following addresses had permanent fatal errors",
	"following addresses had transient non-fatal errors",
	"following addresses had delivery problems",
	"following addresses had delivery errors",
	"following list of recipients:",
	"did not reach the following recipient",
	"was not delivered to:",
	"each of the following recipients was rejected",
	"to the following address could not be delivered",
	"the message has not yet been delivered is:",
	"------- failure reasons",
	"failed addresses follow:",
	"following recipient(s) could not be reached",
	NULL,
};

/*
 * Phrases that name the failed recipient right after them, on the same
 * line ("Unable to deliver message to: <a@b>").
 */
static const char *const name_markers[] = {
	"there was an error delivering your mail to ",
	"unable to deliver message to",
	"could not be delivered to:",
	"unknown user:",
	"the following recipients returned permanent errors:",
	"rejected recipient",
	"undeliverable to",
	"user mailbox exceeds allowed size:",
	"invalid final delivery userid:",
	NULL,
};

static const char *const text_markers[] = {
	"could not be delivered", "couldn't be delivered",
	"qmail-send program", "permanent fatal errors",
	"i'm sorry to have to inform you", "unable to deliver your message",
	"delivery has failed to these recipients", "wasn't delivered to",
	"failed permanently", "address(es) failed", "address(es) deferred",
	"has not yet been delivered", "undeliverable",
	"delivery to the following recipient",
	"following list of recipients:", "error delivering your mail to",
	"unable to deliver message to", "did not reach the following recipient",
	"trouble delivering your message", "returned permanent errors",
	NULL,
};

static const char *const delay_markers[] = {
	"has not yet been delivered", "address(es) deferred",
	"will continue to try", "still trying", "delivery is delayed",
	"delivery delayed", "delayed mail", "this is a warning message only",
	"transient non-fatal errors", NULL,
};

struct text_scan {
	int cur;		/* recipient the lines go to; -1: none */
	bool collect;		/* lines go to cur's diagnostic */
	bool indented_only;	/* ... only indented ones (Exim, Postfix) */
	bool replace;		/* the next lines replace cur's text */
	bool replacing;		/* ... and the first one has come */
	bool want_addr;		/* the next non-blank line names one */
	int exim;		/* 0, or the action of an Exim list */
	int prev_addr;		/* recipient named on the last line, or -1 */
	enum bounce_action action;
	/* a list after a list_markers phrase, or one recipient after a
	 * name_markers one: */
	bool list;		/* lines starting with an address name one */
	bool reason;		/* lines go to cur's diagnostic */
	bool label;		/* the last line was "because:": go on */
	bool said;		/* a reason has come (a blank ends it) */
	bool listed;		/* the list has named one */
	/* ">>> RCPT TO:<a@b>" of a transcript: a recipient if the reply
	 * on the next line is 4xx or 5xx */
	const char *rcpt_a;
	size_t rcpt_n;
	bool transcript;	/* past "Transcript of session follows" */
	int skipped;		/* lines of the list before its first */
};

/* text_rcpt - the recipient for address a (existing or new), or -1 */
static int text_rcpt(struct bounce_report *r, const char *a, size_t n,
		     enum bounce_action action)
{
	struct bounce_rcpt *rc;

	for (size_t i = 0; i < r->nrcpts; i++)
		if (strlen(r->rcpts[i].final_rcpt) == n &&
		    strncasecmp(r->rcpts[i].final_rcpt, a, n) == 0)
			return (int)i;
	if ((rc = new_rcpt(r)) == NULL)
		return -1;
	memcpy(rc->final_rcpt, a, n);
	rc->final_rcpt[n] = '\0';
	rc->action = action;
	return (int)(r->nrcpts - 1);
}

/* diag_append - a line's text to a recipient's diagnostic, one space */
static void diag_append(struct bounce_rcpt *rc, const char *p, size_t n)
{
	size_t o = strlen(rc->diagnostic);

	while (n > 0 && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	if (n == 0)
		return;
	if (o > 0 && o + 1 < sizeof(rc->diagnostic))
		rc->diagnostic[o++] = ' ';
	if (o + n >= sizeof(rc->diagnostic))
		n = sizeof(rc->diagnostic) - 1 - o;
	memcpy(rc->diagnostic + o, p, n);
	rc->diagnostic[o + n] = '\0';
}

/* find_code - the first SMTP reply code and enhanced code in a text */
static void find_code(struct bounce_rcpt *rc)
{
	const char *d = rc->diagnostic;
	size_t len = strlen(d);

	for (size_t i = 0; i < len; i++) {
		bool start = i == 0 || !(isalnum((unsigned char)d[i - 1]) ||
					 d[i - 1] == '.' || d[i - 1] == '-' ||
					 d[i - 1] == ':');

		if (!start || (d[i] != '2' && d[i] != '4' && d[i] != '5'))
			continue;
		if (rc->status[0] == '\0') {
			size_t k = i;

			while (k < len && k - i < 12 &&
			       (isdigit((unsigned char)d[k]) || d[k] == '.'))
				k++;
			if ((k == len || !isalnum((unsigned char)d[k])) &&
			    is_status(d + i, k - i)) {
				memcpy(rc->status, d + i, k - i);
				rc->status[k - i] = '\0';
			}
		}
		if (rc->reply_code == 0 && len - i >= 3 &&
		    isdigit((unsigned char)d[i + 1]) &&
		    isdigit((unsigned char)d[i + 2]) &&
		    (len - i == 3 || d[i + 3] == ' ' || d[i + 3] == '-' ||
		     d[i + 3] == ':'))
			rc->reply_code = (d[i] - '0') * 100 +
					 (d[i + 1] - '0') * 10 + d[i + 2] - '0';
	}
}

/*
 * list_addr - the address a list line starts with (after white space
 * and one of ">>> ", "-- ", "Recipient:", then '<' or '"'), and where
 * its reason starts (past "> : ..."); false if the line starts with none
 */
static bool list_addr(const char *l, size_t n, const char **a, size_t *an,
		      size_t *rest)
{
	size_t i = 0, pos, e;

	while (i < n && isspace((unsigned char)l[i]))
		i++;
	if (n - i >= 4 && memcmp(l + i, ">>> ", 4) == 0)
		i += 4;
	else if (n - i >= 3 && memcmp(l + i, "-- ", 3) == 0)
		i += 3;
	else if (n - i >= 10 && strncasecmp(l + i, "recipient:", 10) == 0)
		i += 10;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i < n && (l[i] == '<' || l[i] == '"'))
		i++;
	pos = i;
	if (!find_addr(l, n, &pos, a, an) || *a != l + i)
		return false;
	e = i + *an;
	if (e < n && !strchr(" \t>\":,;[(", l[e]))
		return false;		/* "a@b.example/x": not an address */
	while (e < n && (l[e] == '>' || l[e] == '"' || l[e] == ':' ||
			 l[e] == '.'))
		e++;
	/* Exchange: "a@b on Thu, 29 Apr 2010 ...": a date, no reason */
	if (n - e >= 4 && strncasecmp(l + e, " on ", 4) == 0)
		e = n;
	/* ">>> a@b <a@b>": the address again, no reason */
	{
		size_t k = e, m = n;

		while (k < m && isspace((unsigned char)l[k]))
			k++;
		while (m > k && isspace((unsigned char)l[m - 1]))
			m--;
		if (m > k && l[k] == '<' && l[m - 1] == '>' &&
		    memchr(l + k, ' ', m - k) == NULL)
			e = n;
	}
	*rest = e;
	return true;
}

/* is_rule - "----- Transcript of session follows -----": no reason */
static bool is_rule(const char *l, size_t n)
{
	while (n > 0 && isspace((unsigned char)*l)) {
		l++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)l[n - 1]))
		n--;
	return n >= 4 && l[0] == '-' && l[1] == '-' && l[n - 1] == '-' &&
	       l[n - 2] == '-';
}

/*
 * list_line - a line while a list or a recipient's reason is read (see
 * list_markers); false when it is not part of them and must be read as
 * any other
 */
static bool list_line(struct bounce_report *r, struct text_scan *s,
		      const char *l, size_t n, bool blank)
{
	const char *a;
	size_t an, rest;

	if (blank) {
		/* blank lines before the reason; one after it ends it */
		if (s->reason && s->said && !s->label)
			s->reason = false;
		return s->list || s->reason;
	}
	if (s->list && list_addr(l, n, &a, &an, &rest)) {
		s->cur = text_rcpt(r, a, an, s->action);
		s->reason = s->cur >= 0;
		s->label = false;
		s->listed = true;
		s->said = false;
		if (s->cur >= 0) {
			diag_append(&r->rcpts[s->cur], l + rest, n - rest);
			s->said = rest < n;
		}
		return true;
	}
	if (s->reason) {
		if (is_rule(l, n))
			return true;
		/* "because:", "For the following reason:": a label */
		s->label = l[n - 1] == ':';
		if (!s->label) {
			diag_append(&r->rcpts[s->cur], l, n);
			s->said = true;
		}
		return true;
	}
	if (s->list) {
		/* a few lines of other text before the first address */
		if (!s->listed && s->skipped++ < 3 &&
		    ci_find(l, n, "address(es)") == NULL)
			return true;
		s->list = false;
	}
	return false;
}

/*
 * name_line - a line with a name_markers phrase and the address right
 * after it: that recipient, the line and the ones after as its reason
 */
static bool name_line(struct bounce_report *r, struct text_scan *s,
		      const char *l, size_t n)
{
	for (size_t k = 0; name_markers[k] != NULL; k++) {
		const char *hit = ci_find(l, n, name_markers[k]), *a;
		size_t at, pos, an;

		if (hit == NULL)
			continue;
		at = (size_t)(hit - l) + strlen(name_markers[k]);
		while (at < n && (l[at] == ' ' || l[at] == '\t' ||
				  l[at] == ':'))
			at++;
		if (at < n && (l[at] == '<' || l[at] == '"'))
			at++;
		pos = at;
		if (!find_addr(l, n, &pos, &a, &an) || a != l + at)
			continue;
		if (pos < n && !strchr(" \t>\":,;.", l[pos]))
			continue;
		s->cur = text_rcpt(r, a, an, s->action);
		if (s->cur < 0)
			return true;
		s->reason = true;
		s->label = false;
		s->list = false;
		s->collect = false;
		diag_append(&r->rcpts[s->cur], l, n);
		/* a reason after the address ("a@b. Reason: ..."): said */
		s->said = false;
		for (pos = (size_t)(a - l) + an; pos < n && !s->said; pos++)
			s->said = isalnum((unsigned char)l[pos]);
		return true;
	}
	return false;
}

/* ends_with - does l[0..n), trailing space dropped, end in tail? */
static bool ends_with(const char *l, size_t n, const char *tail)
{
	size_t t = strlen(tail);

	while (n > 0 && isspace((unsigned char)l[n - 1]))
		n--;
	return n >= t && strncasecmp(l + n - t, tail, t) == 0;
}

/*
 * Zoho: "... could not be delivered to one or more of its recipients.
 * This is a permanent error." ending its line, the list on the next
 * (Exim's own text goes on, "The following address(es) failed:")
 */
static const char permanent_error[] = "this is a permanent error.";

/*
 * transcript_line - a Sendmail-style transcript: ">>> RCPT To:<a@b>"
 * (Trend Micro: "Sent <<< RCPT TO:<a@b>"), then the reply, "<<< 550
 * ..." ("Received >>> 550 ..."): a 4xx or 5xx reply makes a@b a failed
 * recipient with the reply as its reason; so does Sendmail's own
 * verdict after "Transcript of session follows", "550 <a@b>... why"
 */
static bool transcript_line(struct bounce_report *r, struct text_scan *s,
			    const char *l, size_t n)
{
	const char *hit, *a, *rcpt_a = s->rcpt_a;
	size_t i = 0, pos, at, an;

	s->rcpt_a = NULL;
	if (ci_find(l, n, "transcript of session follows")) {
		s->transcript = true;
		return false;
	}
	/* Sendmail's verdict in the transcript: "550 <a@b>... reason" */
	if (s->transcript && n > 6 && (l[0] == '4' || l[0] == '5') &&
	    isdigit((unsigned char)l[1]) && isdigit((unsigned char)l[2]) &&
	    l[3] == ' ' && l[4] == '<') {
		at = 5;
		if (find_addr(l, n, &at, &a, &an) && a == l + 5 &&
		    n - 5 - an >= 4 && memcmp(a + an, ">...", 4) == 0) {
			int k = text_rcpt(r, a, an, s->action);

			if (k >= 0 && r->rcpts[k].diagnostic[0] == '\0')
				diag_append(&r->rcpts[k], l, n);
			return true;
		}
	}
	if ((hit = ci_find(l, n, "rcpt to:")) != NULL &&
	    (ci_find(l, (size_t)(hit - l), ">>>") ||
	     ci_find(l, (size_t)(hit - l), "<<<"))) {
		pos = (size_t)(hit - l) + 8;
		while (pos < n && l[pos] == ' ')
			pos++;
		at = pos + 1;
		if (pos < n && l[pos] == '<' && find_addr(l, n, &at, &a, &an) &&
		    a == l + pos + 1 && pos + 1 + an < n &&
		    l[pos + 1 + an] == '>') {
			s->rcpt_a = a;
			s->rcpt_n = an;
			return true;
		}
		return false;
	}
	if (rcpt_a == NULL)
		return false;
	while (i < n && isspace((unsigned char)l[i]))
		i++;
	if (n - i >= 8 && strncasecmp(l + i, "received", 8) == 0)
		i += 8;
	while (i < n && isspace((unsigned char)l[i]))
		i++;
	if (n - i < 3 || (memcmp(l + i, "<<<", 3) != 0 &&
			  memcmp(l + i, ">>>", 3) != 0))
		return false;
	i += 3;
	while (i < n && isspace((unsigned char)l[i]))
		i++;
	if (n - i >= 4 && (l[i] == '4' || l[i] == '5') &&
	    isdigit((unsigned char)l[i + 1]) &&
	    isdigit((unsigned char)l[i + 2]) &&
	    (l[i + 3] == ' ' || l[i + 3] == '-')) {
		int k = text_rcpt(r, rcpt_a, s->rcpt_n, s->action);

		if (k >= 0 && r->rcpts[k].diagnostic[0] == '\0')
			diag_append(&r->rcpts[k], l + i, n - i);
		return true;
	}
	return false;
}

/* text_line - one line of a human-readable bounce; the line before it
 * starts at win (l when none) */
static void text_line(struct bounce_report *r, struct text_scan *s,
		      const char *win, const char *l, size_t n)
{
	const char *a, *hit;
	size_t pos, an;
	bool blank = true, indented = n > 0 && (l[0] == ' ' || l[0] == '\t');
	int this_addr = -1;

	for (size_t i = 0; i < n && blank; i++)
		blank = isspace((unsigned char)l[i]);
	if (s->replace) {
		if (blank) {
			/* blank lines before the reply; one after ends it */
			s->replace = !s->replacing;
			s->replacing = false;
			return;
		}
		if (!s->replacing)
			r->rcpts[s->cur].diagnostic[0] = '\0';
		s->replacing = true;
		diag_append(&r->rcpts[s->cur], l, n);
		return;
	}
	if (list_line(r, s, l, n, blank))
		return;
	if (blank) {
		s->collect = false;
		return;
	}
	if (transcript_line(r, s, l, n))
		return;
	if (ci_any_ws(win, (size_t)(l + n - win), (size_t)(l - win),
		      list_markers) || ends_with(l, n, permanent_error)) {
		s->list = true;
		s->listed = false;
		s->skipped = 0;
		s->reason = false;
		s->exim = 0;
		s->collect = false;
		return;
	}
	if (name_line(r, s, l, n))
		return;
	/* Exim: "The following address(es) failed:", then two spaces */
	if (ci_find(l, n, "address(es) failed") ||
	    ci_find(l, n, "address(es) deferred")) {
		s->exim = ci_find(l, n, "deferred") ? BOUNCE_ACTION_DELAYED :
			  BOUNCE_ACTION_FAILED;
		s->collect = false;
		return;
	}
	if (s->exim && indented) {
		if (n > 2 && l[0] == ' ' && l[1] == ' ' && l[2] != ' ' &&
		    l[2] != '\t') {
			size_t tok = 2;

			while (tok < n && !isspace((unsigned char)l[tok]))
				tok++;
			pos = 2;
			if (find_addr(l, tok, &pos, &a, &an)) {
				s->cur = text_rcpt(r, a, an, s->exim);
				s->collect = s->cur >= 0;
				s->indented_only = true;
				if (s->cur >= 0 && tok < n)
					diag_append(&r->rcpts[s->cur],
						    l + tok, n - tok);
				return;
			}
			/* "  save to xxxx", "  kijitora": no address, but
			 * a failed recipient, whose reason follows (its
			 * address may be in X-Failed-Recipients) */
			if (new_rcpt(r) != NULL) {
				s->cur = (int)(r->nrcpts - 1);
				r->rcpts[s->cur].action = s->exim;
				s->collect = true;
				s->indented_only = true;
				return;
			}
		}
		if (s->cur >= 0 && s->collect)
			diag_append(&r->rcpts[s->cur], l, n);
		return;
	}
	s->exim = 0;
	/* Postfix, qmail, Yahoo, Sendmail: "<addr>:" or "<addr>" at col 0 */
	if (l[0] == '<') {
		const char *gt = memchr(l, '>', n);

		pos = 1;
		if (gt != NULL && find_addr(l, (size_t)(gt - l), &pos, &a,
					    &an) && a == l + 1 &&
		    a + an == gt) {
			size_t rest = (size_t)(gt - l) + 1;

			if (rest < n && l[rest] == ':')
				rest++;
			s->cur = text_rcpt(r, a, an, s->action);
			s->collect = s->cur >= 0;
			s->indented_only = false;
			s->replace = false;
			if (s->cur >= 0)
				diag_append(&r->rcpts[s->cur], l + rest,
					    n - rest);
			return;
		}
	}
	/* Exchange, Gmail: the address is on the next line */
	if (ci_find(l, n, "delivery has failed to these recipients") ||
	    ci_find(l, n, "to the following recipient")) {
		s->want_addr = true;
		s->collect = false;
		return;
	}
	if (s->want_addr) {
		pos = 0;
		s->want_addr = false;
		if (find_addr(l, n, &pos, &a, &an)) {
			s->cur = text_rcpt(r, a, an, s->action);
			s->prev_addr = s->cur;
			/* Exchange: the reason follows, indented deeper */
			s->collect = s->cur >= 0;
			s->indented_only = true;
			return;
		}
	}
	/* Gmail "wasn't delivered to ADDR", Office 365 "Your message to
	 * ADDR couldn't be delivered" */
	if ((hit = ci_find(l, n, "wasn't delivered to ")) != NULL ||
	    ((hit = ci_find(l, n, "your message to ")) != NULL &&
	     ci_find(l, n, "couldn't be delivered"))) {
		size_t at = (size_t)(hit - l) + (tolower((unsigned char)
			    *hit) == 'w' ? 20 : 16);

		/* the address right after the phrase */
		pos = 0;
		if (find_addr(l + at, n - at, &pos, &a, &an) && a == l + at) {
			s->cur = text_rcpt(r, a, an, s->action);
			s->collect = false;
			return;
		}
	}
	/* the remote server's reply, in the lines that follow */
	if (ci_find(l, n, "response from the remote server was:") ||
	    ci_find(l, n, "the response was:") ||
	    ci_find(l, n, "technical details of permanent failure:") ||
	    ci_find(l, n, "technical details of temporary failure:")) {
		s->replace = s->cur >= 0;
		s->replacing = false;
		s->collect = false;
		return;
	}
	/* Exchange: Remote Server returned '550 5.1.10 ...' */
	if ((hit = ci_find(l, n, "remote server returned '")) != NULL) {
		const char *q = hit + 24, *end = l + n;
		int to = s->prev_addr >= 0 ? s->prev_addr : s->cur;

		while (end > q && end[-1] != '\'')
			end--;
		if (to >= 0 && end > q) {
			r->rcpts[to].diagnostic[0] = '\0';
			diag_append(&r->rcpts[to], q, (size_t)(end - q - 1));
		}
		return;
	}
	pos = 0;
	if (find_addr(l, n, &pos, &a, &an)) {
		for (size_t i = 0; i < r->nrcpts; i++)
			if (strlen(r->rcpts[i].final_rcpt) == an &&
			    strncasecmp(r->rcpts[i].final_rcpt, a, an) == 0)
				this_addr = (int)i;
	}
	s->prev_addr = this_addr;
	if (s->collect && s->cur >= 0 && (!s->indented_only || indented)) {
		diag_append(&r->rcpts[s->cur], l, n);
		return;
	}
	s->collect = false;
	/* a later line about a recipient with no reason yet (Sendmail's
	 * transcript: "550 <a@b>... User unknown") */
	if (this_addr >= 0 && r->rcpts[this_addr].diagnostic[0] == '\0')
		diag_append(&r->rcpts[this_addr], l, n);
}

/* text_scan - r->text, line by line, until the copy of the message */
static void text_scan(struct bounce_report *r)
{
	const char *p = r->text.data;
	size_t len = r->text.len < BOUNCE_SCAN_MAX ? r->text.len :
		     BOUNCE_SCAN_MAX;
	struct text_scan s = { .cur = -1, .prev_addr = -1 };
	size_t i = 0, prev = 0;

	s.action = ci_any(p, len, delay_markers) ? BOUNCE_ACTION_DELAYED :
		   BOUNCE_ACTION_FAILED;
	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - p) : len, n = e - i;

		if (n > 0 && p[i + n - 1] == '\r')
			n--;
		if (ci_any(p + i, n, copy_markers))
			break;
		text_line(r, &s, p + prev, p + i, n);
		prev = i;
		i = e + 1;
	}
	for (size_t k = 0; k < r->nrcpts; k++)
		find_code(&r->rcpts[k]);
}

/*
 * text_copy - a text bounce that carries the original message inline:
 * read its headers after the marker line
 */
static void text_copy(struct bounce_report *r)
{
	const char *p = r->text.data;
	size_t len = r->text.len;
	const char *hit = NULL;

	for (size_t k = 0; copy_markers[k] != NULL && hit == NULL; k++)
		hit = ci_find(p, len, copy_markers[k]);
	if (hit != NULL) {
		const char *nl = memchr(hit, '\n', len - (size_t)(hit - p));
		size_t at;

		if (nl == NULL)
			return;
		at = (size_t)(nl + 1 - p);
		/* skip the blank lines between marker and headers */
		while (at < len && (p[at] == '\n' || p[at] == '\r' ||
				    p[at] == ' '))
			at++;
		orig_headers(r, p + at, len - at);
	}
	if (r->orig_message_id[0] == '\0') {
		/* a quoted "Message-ID:" line anywhere in the text */
		hit = ci_find(p, len, "\nmessage-id:");
		if (hit != NULL) {
			const char *nl = memchr(hit + 1, '\n',
						len - (size_t)(hit + 1 - p));
			size_t e = nl != NULL ? (size_t)(nl - p) : len;

			msgid_copy(hit, e - (size_t)(hit - p),
				   r->orig_message_id);
		}
	}
}

/*
 * xfailed_next - the next address of the X-Failed-Recipients fields of
 * head (Exim and Google write it: the recipients that failed, separated
 * by commas), each item whole one address; *pos and *item keep the place
 * (start both at 0); false at the end
 */
static bool xfailed_next(const struct mailmsg_span *head, size_t *pos,
			 size_t *item, char *out)
{
	struct mailmsg_field f;
	size_t at = *pos;

	while (mailmsg_field_next(head, &at, &f)) {
		if (!mailmsg_name_is(&f, "X-Failed-Recipients"))
			continue;
		while (*item < f.value.len) {
			const char *v = f.value.p + *item;
			const char *comma = memchr(v, ',', f.value.len - *item);
			size_t n = comma != NULL ? (size_t)(comma - v) :
				   f.value.len - *item;

			*item += n + 1;
			if (n < BOUNCE_ADDR_MAX) {
				char tmp[BOUNCE_ADDR_MAX];

				memcpy(tmp, v, n);
				tmp[n] = '\0';
				/* unfolded: a folded list has CRLFs */
				for (size_t k = 0; k < n; k++)
					if (tmp[k] == '\r' || tmp[k] == '\n')
						tmp[k] = ' ';
				addr_field(tmp, n, out);
				if (out[0] != '\0') {
					/* the field's start, to come back */
					*pos = (size_t)(f.name.p - head->p);
					return true;
				}
			}
		}
		*item = 0;
		*pos = at;
	}
	*pos = at;
	return false;
}

/* in_field - is a (NUL ended) one of the addresses of head's field name? */
static bool in_field(const struct mailmsg_span *head, const char *name,
		     const char *a)
{
	struct mailmsg_field f;
	size_t pos = 0, an = strlen(a);

	while (mailmsg_field_next(head, &pos, &f)) {
		const char *x;
		size_t at = 0, xn;

		if (!mailmsg_name_is(&f, name))
			continue;
		while (find_addr(f.value.p, f.value.len, &at, &x, &xn))
			if (xn == an && strncasecmp(x, a, an) == 0)
				return true;
	}
	return false;
}

/* is_own - is a the bounce's From or To, or our sender's address? */
static bool is_own(const struct bounce_report *r,
		   const struct mailmsg_span *head, const char *a)
{
	return strcasecmp(a, r->orig_from) == 0 || in_field(head, "From", a) ||
	       in_field(head, "To", a);
}

/*
 * text_guard - a text bounce's recipient is never the bounce's own From
 * or To, nor the sender of the message that bounced (ours): such an
 * address, read from a line that named it for another reason, is
 * dropped and the recipient kept without one
 */
static void text_guard(struct bounce_report *r,
		       const struct mailmsg_span *head)
{
	for (size_t i = 0; i < r->nrcpts; i++) {
		char *a = r->rcpts[i].final_rcpt;

		if (a[0] != '\0' && is_own(r, head, a))
			a[0] = '\0';
	}
}

/* has_xfailed - does head have an X-Failed-Recipients address? */
static bool has_xfailed(const struct mailmsg_span *head)
{
	char a[BOUNCE_ADDR_MAX];
	size_t pos = 0, item = 0;

	return xfailed_next(head, &pos, &item, a);
}

static int rcpt_index(const struct bounce_report *r, const char *a)
{
	for (size_t i = 0; i < r->nrcpts; i++)
		if (strcasecmp(r->rcpts[i].final_rcpt, a) == 0)
			return (int)i;
	return -1;
}

/*
 * xfailed - the recipients of X-Failed-Recipients: the address of the
 * one recipient found without one, when one address of the field is not
 * among the others; for a bounce that named none, each of them
 */
static void xfailed(struct bounce_report *r, const struct mailmsg_span *head)
{
	char a[BOUNCE_ADDR_MAX], first[BOUNCE_ADDR_MAX] = "";
	size_t pos = 0, item = 0, nnew = 0, nempty = 0;
	int empty = -1;

	for (size_t i = 0; i < r->nrcpts; i++)
		if (r->rcpts[i].final_rcpt[0] == '\0') {
			nempty++;
			empty = (int)i;
		}
	while (xfailed_next(head, &pos, &item, a))
		if (rcpt_index(r, a) < 0 && !is_own(r, head, a) &&
		    nnew++ == 0)
			strcpy(first, a);
	if (nempty == 1 && nnew == 1) {
		strcpy(r->rcpts[empty].final_rcpt, first);
		return;
	}
	/* a bounce that named no one (when it named some, the field adds
	 * nothing the bounce did not say) */
	if (r->nrcpts > 0)
		return;
	pos = item = 0;
	while (xfailed_next(head, &pos, &item, a))
		if (rcpt_index(r, a) < 0 && !is_own(r, head, a))
			text_rcpt(r, a, strlen(a), BOUNCE_ACTION_FAILED);
}

/*
 * hotmail_rcpt - the X-HmXmrOriginalRecipient of the returned message in
 * r->work (Hotmail's complaints before ARF put the complainer there)
 */
static void hotmail_rcpt(struct bounce_report *r, char *out)
{
	struct mailmsg_span head, body;

	mailmsg_split(r->work.data, r->work.len, &head, &body);
	if (mailmsg_header(&head, "X-HmXmrOriginalRecipient", &r->hdr))
		addr_field(r->hdr.data, r->hdr.len, out);
}

/* line_find - the first line of p[0..len) that starts with name */
static const char *line_find(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i + n <= len; i++) {
		if ((i == 0 || p[i - 1] == '\n') &&
		    strncasecmp(p + i, name, n) == 0)
			return p + i;
		if (i + n < len) {
			const char *nl = memchr(p + i, '\n', len - i - n);

			if (nl == NULL)
				break;
			i = (size_t)(nl - p);
		}
	}
	return NULL;
}

/*
 * text_dsn - the fields of a DSN written into the text itself (Amazon
 * WorkMail's "Technical report:", old Sendmail without MIME): read from
 * its Reporting-MTA (or the paragraph of its first Final-Recipient) as
 * a delivery-status part; true if that gave a recipient
 */
static bool text_dsn(struct bounce_report *r)
{
	const char *p = r->text.data, *fr, *rm, *start;
	size_t len = r->text.len < BOUNCE_SCAN_MAX ? r->text.len :
		     BOUNCE_SCAN_MAX;

	fr = line_find(p, len, "final-recipient:");
	if (fr == NULL)
		return false;
	rm = line_find(p, (size_t)(fr - p), "reporting-mta:");
	start = rm;
	if (start == NULL) {
		/* back to the blank line before the paragraph */
		start = fr;
		while (start > p && !(start[-1] == '\n' &&
				      (start - 1 == p || start[-2] == '\n' ||
				       (start[-2] == '\r' &&
					(start - 2 == p || start[-3] == '\n')))))
			start--;
	}
	buf_reset(&r->work);
	buf_append(&r->work, start, len - (size_t)(start - p));
	buf_append(&r->work, "", 0);
	dsn_parse(r);
	return r->nrcpts > 0;
}

/*
 * json_str - the string value of "key" in p[0..len) (the first one),
 * its span without the quotes, escapes left as they are; false if none
 */
static bool json_str(const char *p, size_t len, const char *key,
		     const char **v, size_t *vn)
{
	size_t k = strlen(key), i = 0;

	while (i + k + 2 < len) {
		const char *q = memchr(p + i, '"', len - i);
		size_t at;

		if (q == NULL)
			return false;
		at = (size_t)(q - p) + 1;
		i = at;
		if (len - at < k + 1 || memcmp(p + at, key, k) != 0 ||
		    p[at + k] != '"')
			continue;
		at += k + 1;
		while (at < len && (p[at] == ' ' || p[at] == ':'))
			at++;
		if (at >= len || p[at] != '"')
			continue;
		*v = p + at + 1;
		for (at++; at < len && p[at] != '"'; at++)
			if (p[at] == '\\')
				at++;
		if (at >= len)
			return false;
		*vn = (size_t)(p + at - *v);
		return true;
	}
	return false;
}

/*
 * json_close - the end of the array or object that opens at p (its ']'
 * or '}', or end if it is not closed before end), strings skipped
 */
static const char *json_close(const char *p, const char *end)
{
	int depth = 0;
	bool str = false;

	for (; p < end; p++) {
		if (str) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				str = false;
		} else if (*p == '"') {
			str = true;
		} else if (*p == '[' || *p == '{') {
			depth++;
		} else if ((*p == ']' || *p == '}') && --depth == 0) {
			return p;
		}
	}
	return end;
}

/*
 * ses_json - an Amazon SES notification mailed by SNS: JSON whose
 * "notificationType" is "Bounce" (each of "bouncedRecipients", with its
 * "action", "status" and "diagnosticCode") or "Complaint" (each of
 * "complainedRecipients"); the original Message-ID from "commonHeaders"
 */
static bool ses_json(struct bounce_report *r)
{
	const char *p = r->text.data, *v, *arr, *end;
	size_t len = r->text.len < BOUNCE_SCAN_MAX ? r->text.len :
		     BOUNCE_SCAN_MAX, vn;
	bool complaint;

	if (!json_str(p, len, "notificationType", &v, &vn))
		return false;
	if (vn == 6 && memcmp(v, "Bounce", 6) == 0)
		complaint = false;
	else if (vn == 9 && memcmp(v, "Complaint", 9) == 0)
		complaint = true;
	else
		return false;
	r->kind = complaint ? BOUNCE_ARF : BOUNCE_DSN;
	arr = ci_find(p, len, complaint ? "\"complainedrecipients\"" :
		      "\"bouncedrecipients\"");
	if (arr != NULL)
		arr = memchr(arr, '[', len - (size_t)(arr - p));
	end = arr != NULL ? json_close(arr, p + len) : NULL;
	while (arr != NULL && arr < end) {
		const char *o = memchr(arr, '{', (size_t)(end - arr)), *c;
		struct bounce_rcpt *rc;
		char tmp[BOUNCE_TEXT_MAX];

		if (o == NULL)
			break;
		c = json_close(o, end);
		if ((rc = new_rcpt(r)) == NULL)
			break;
		if (json_str(o, (size_t)(c - o), "emailAddress", &v, &vn))
			addr_field(v, vn, rc->final_rcpt);
		if (json_str(o, (size_t)(c - o), "action", &v, &vn))
			rc->action = parse_action(v, vn);
		if (json_str(o, (size_t)(c - o), "status", &v, &vn)) {
			copy_text(tmp, sizeof(tmp), v, vn);
			if (is_status(tmp, strlen(tmp)))
				strcpy(rc->status, tmp);
		}
		if (json_str(o, (size_t)(c - o), "diagnosticCode", &v, &vn)) {
			char st[16];

			strip_type(&v, &vn);
			strcpy(st, rc->status);
			parse_reply(v, vn, &rc->reply_code, st,
				    rc->diagnostic, sizeof(rc->diagnostic));
			if (rc->status[0] == '\0')
				strcpy(rc->status, st);
		}
		if (complaint && rc->final_rcpt[0] != '\0' &&
		    r->arf.original_rcpt_to[0] == '\0')
			strcpy(r->arf.original_rcpt_to, rc->final_rcpt);
		arr = c;
	}
	if (complaint && json_str(p, len, "complaintFeedbackType", &v, &vn))
		copy_text(r->arf.feedback_type, sizeof(r->arf.feedback_type),
			  v, vn);
	if ((v = ci_find(p, len, "\"commonheaders\"")) != NULL &&
	    json_str(v, len - (size_t)(v - p), "messageId", &v, &vn))
		msgid_copy(v, vn, r->orig_message_id);
	return true;
}

static bool is_type(const struct mailmsg_part *part, const char *type)
{
	return strcmp(part->ct.type, type) == 0;
}

enum bounce_kind bounce_parse(const char *msg, size_t len,
			      struct bounce_report *r)
{
	struct mailmsg *m = &r->mime;
	int dsn = -1, arf = -1;
	bool auto_reply = false, from_daemon = false, subject_bounce = false;
	char orig_id[BOUNCE_ID_MAX], hotmail[BOUNCE_ADDR_MAX] = "";
	bool read_text = false;	/* a DSN's recipients come from its text */

	/* clear the facts, keep the scratch buffers */
	r->kind = BOUNCE_NONE;
	r->truncated = false;
	r->message_id[0] = '\0';
	r->nverp = 0;
	r->orig_message_id[0] = r->orig_to[0] = r->orig_from[0] = '\0';
	r->reporting_mta[0] = '\0';
	r->nrcpts = 0;
	memset(&r->arf, 0, sizeof(r->arf));
	if (len > BOUNCE_INPUT_MAX) {
		len = BOUNCE_INPUT_MAX;
		r->truncated = true;
	}
	mailmsg_parse(m, msg, len);
	if (m->truncated)
		r->truncated = true;
	top_headers(r, &m->parts[0].head, &auto_reply, &from_daemon,
		    &subject_bounce);
	/* the header fallbacks give way to the returned message's own */
	strcpy(orig_id, r->orig_message_id);
	r->orig_message_id[0] = '\0';

	buf_reset(&r->text);
	for (size_t i = 0; i < m->nparts; i++) {
		const struct mailmsg_part *part = &m->parts[i];

		if (is_type(part, "message/delivery-status") ||
		    is_type(part, "message/global-delivery-status")) {
			if (dsn < 0)
				dsn = (int)i;
		} else if (is_type(part, "message/feedback-report")) {
			if (arf < 0)
				arf = (int)i;
		} else if (is_type(part, "message/rfc822") ||
			   is_type(part, "message/global") ||
			   is_type(part, "text/rfc822-headers") ||
			   is_type(part, "message/rfc822-headers") ||
			   is_type(part, "message/global-headers")) {
			buf_reset(&r->work);
			mailmsg_decode(part, &r->work);
			orig_headers(r, r->work.data, r->work.len);
			if (hotmail[0] == '\0')
				hotmail_rcpt(r, hotmail);
		} else if (strncmp(part->ct.type, "text/plain", 10) == 0 &&
			   part->children == 0 &&
			   r->text.len < BOUNCE_SCAN_MAX) {
			mailmsg_decode(part, &r->text);
			buf_putc(&r->text, '\n');
		}
	}
	/* a multipart with no parts found: its body is the text */
	if (r->text.len == 0 && m->parts[0].children == 0)
		buf_append(&r->text, m->parts[0].body.p, m->parts[0].body.len);
	buf_append(&r->text, "", 0);

	if (dsn >= 0) {
		r->kind = BOUNCE_DSN;
		buf_reset(&r->work);
		mailmsg_decode(&m->parts[dsn], &r->work);
		buf_append(&r->work, "", 0);
		dsn_parse(r);
		/* a report with no recipient block: its text says who */
		if (r->nrcpts == 0) {
			text_scan(r);
			read_text = true;
		}
	} else if (arf >= 0) {
		r->kind = BOUNCE_ARF;
		buf_reset(&r->work);
		mailmsg_decode(&m->parts[arf], &r->work);
		buf_append(&r->work, "", 0);
		arf_parse(r);
		if (r->arf.original_rcpt_to[0] != '\0' ||
		    r->orig_to[0] != '\0') {
			struct bounce_rcpt *rc = new_rcpt(r);

			strcpy(rc->final_rcpt, r->arf.original_rcpt_to[0] ?
			       r->arf.original_rcpt_to : r->orig_to);
		}
	} else if (hotmail[0] != '\0') {
		/* Hotmail's old complaint: the message, and the complainer
		 * in its X-HmXmrOriginalRecipient */
		r->kind = BOUNCE_ARF;
		strcpy(r->arf.original_rcpt_to, hotmail);
		strcpy(new_rcpt(r)->final_rcpt, hotmail);
	} else if (ses_json(r)) {
		/* r->kind set */
	} else if (auto_reply && !from_daemon) {
		r->kind = BOUNCE_NONE;
	} else if (text_dsn(r)) {
		r->kind = BOUNCE_DSN;
		text_copy(r);
	} else if (ci_any(r->text.data, r->text.len < BOUNCE_SCAN_MAX ?
			  r->text.len : BOUNCE_SCAN_MAX, text_markers) ||
		   ci_any(r->text.data, r->text.len < BOUNCE_SCAN_MAX ?
			  r->text.len : BOUNCE_SCAN_MAX, list_markers) ||
		   (subject_bounce && from_daemon) ||
		   has_xfailed(&m->parts[0].head)) {
		r->kind = BOUNCE_TEXT;
		text_scan(r);
		text_copy(r);
	}
	if (r->kind == BOUNCE_TEXT || read_text)
		text_guard(r, &m->parts[0].head);
	if (r->kind == BOUNCE_DSN || r->kind == BOUNCE_TEXT)
		xfailed(r, &m->parts[0].head);
	if (r->orig_message_id[0] == '\0')
		strcpy(r->orig_message_id, orig_id);
	return r->kind;
}

bool bounce_volley_id(const char *msgid, uint64_t *campaign, uint64_t *job)
{
	const char *p = msgid;
	char *end;
	uint64_t c, j;

	if (strncmp(p, "<volley.", 8) != 0)
		return false;
	p += 8;
	if (!isdigit((unsigned char)*p))
		return false;
	c = strtoull(p, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return false;
	j = strtoull(end + 1, &end, 10);
	if (*end != '.' || !isxdigit((unsigned char)end[1]))
		return false;
	p = end + 1;
	while (isxdigit((unsigned char)*p))
		p++;
	if (*p != '@' || strchr(p, '>') == NULL)
		return false;
	*campaign = c;
	*job = j;
	return true;
}
