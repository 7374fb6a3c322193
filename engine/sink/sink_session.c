/*
 * sink_session - the server side of one SMTP connection, without I/O (see
 * sink_session.h).
 *
 * Input is either command lines or message content.  Command lines are
 * consumed only when complete (the caller keeps a partial one), so a line
 * needs no buffer of its own; content is consumed as it comes, through a
 * five-state scanner that undoes dot-stuffing and finds the end of data
 * across any split.  Replies for everything consumed in one feed pile up
 * in one output buffer: the caller sends them with one write.
 *
 * Every reply goes through sink_answer(), the one place where a fault
 * rule can replace, delay, garble or withhold it.
 */
#include "sink_session.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "utf8.h"
#include "xalloc.h"

enum sink_state {
	SINK_S_INIT,		/* before EHLO/HELO */
	SINK_S_READY,		/* greeted, no transaction */
	SINK_S_MAIL,		/* in a transaction */
	SINK_S_DATA,		/* receiving DATA content */
	SINK_S_BDAT,		/* receiving a BDAT chunk */
	SINK_S_STORING,		/* SINK_STORE asked, sink_session_stored due */
	SINK_S_AUTH,		/* 334 sent, a response line due */
	SINK_S_TLS,		/* 220 to STARTTLS sent, handshake due */
	SINK_S_REJECTED,	/* greeting refused: only QUIT (RFC 5321 3.1) */
	SINK_S_HUNG,		/* a silent fault: swallow everything */
	SINK_S_CLOSED,
};

/* the content scanner: where in a line of DATA content we are */
enum sink_dstate {
	SINK_D_BOL,		/* at a line start */
	SINK_D_MID,		/* inside a line */
	SINK_D_CR,		/* a CR inside a line, LF or not to come */
	SINK_D_DOT,		/* '.' at a line start */
	SINK_D_DOTCR,		/* ".\r" at a line start: LF ends the data */
};

enum sink_auth_step {
	SINK_AUTH_PLAIN,	/* the PLAIN response due */
	SINK_AUTH_USER,		/* LOGIN: the user name due */
	SINK_AUTH_PASS,		/* LOGIN: the password due */
	SINK_AUTH_XOAUTH2,	/* the XOAUTH2 response due */
	SINK_AUTH_XOAUTH2_FAILED, /* error sent in a 334: the client's
				   * empty line due, then the 535 */
};

enum sink_body { SINK_BODY_NONE, SINK_BODY_DATA, SINK_BODY_BDAT };

struct sink_rcpt {
	size_t off;		/* in rcpt_text, NUL-terminated */
	int code;		/* the reply it got; 0: none (silent) */
};

struct sink_session {
	const struct sink_params *p;
	const struct sink_faults *f;
	unsigned long conn;
	enum sink_state state;
	enum sink_action act;
	bool greeted, esmtp, tls, authed;
	bool skipping;		/* an overlong line: drop it to its end */
	bool waiting;		/* bytes came behind the current unit */
	struct buf helo;

	enum sink_auth_step auth_step;
	bool auth_login;	/* LOGIN, not PLAIN */
	const char *auth_mech;	/* the mechanism that succeeded, for the log */
	const struct sink_rule *auth_rule;	/* a delay for the verdict */
	struct buf auth_user;

	/* the transaction */
	unsigned mails;		/* MAIL commands: the transaction's number */
	unsigned done;		/* messages that reached the end of data */
	bool txn;		/* MAIL accepted, transaction not over */
	struct buf from;
	int mail_code;
	bool smtputf8;
	struct sink_rcpt *rcpts;
	size_t nrcpts, rcpt_cap, accepted;
	unsigned rcpt_cmds;	/* RCPT commands, for RCPTMAX */
	struct buf rcpt_text;
	const char **addrs;	/* accepted recipients, for the rules */
	size_t addr_cap;
	enum sink_body body;
	bool forced_354;	/* a rule said 354 with no recipient */
	bool too_big;
	bool failed;		/* a BDAT failed: the rest of it fails */
	const struct sink_rule *msg_rule;
	uint64_t size;		/* content after unstuffing */
	uint64_t raw;		/* content bytes received */
	uint64_t drop_at;	/* UINT64_MAX: no drop */
	int final_code;
	enum sink_dstate dstate;
	uint64_t chunk_left;
	uint64_t chunk_size;
	bool chunk_last;
	int chunk_code;		/* a refusal due when the chunk is read */
	const char *chunk_enh, *chunk_text;
	struct buf msg;		/* the message, when storing */
	struct buf file;

	struct buf out;
	size_t hold;		/* while holding: bytes that may go now */
	bool holding;
	unsigned delay_ms;
	struct buf records;
	struct buf scratch;
	struct sink_stats stats;
};

#define SINK_NO_DROP UINT64_MAX

/* --- replies ------------------------------------------------------------ */

/*
 * sink_reply_text - "CODE ENH text" CRLF; a text with '\n' becomes a
 * multiline reply ("CODE-..." on all lines but the last).  enh may be
 * NULL (greeting, EHLO, 334).  No printf: this is the hot path.
 */
static void sink_reply_text(struct sink_session *s, int code,
			    const char *enh, const char *t)
{
	char c[3] = { (char)('0' + code / 100 % 10),
		      (char)('0' + code / 10 % 10), (char)('0' + code % 10) };
	const char *nl;

	do {
		nl = strchr(t, '\n');
		buf_append(&s->out, c, 3);
		buf_putc(&s->out, nl != NULL ? '-' : ' ');
		if (enh != NULL && *enh != '\0') {
			buf_append_str(&s->out, enh);
			buf_putc(&s->out, ' ');
		}
		buf_append(&s->out, t, nl != NULL ? (size_t)(nl - t) :
			   strlen(t));
		buf_append(&s->out, "\r\n", 2);
		t = nl + 1;
	} while (nl != NULL);
}

/* sink_reply - sink_reply_text with a formatted text */
static void sink_reply(struct sink_session *s, int code, const char *enh,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void sink_reply(struct sink_session *s, int code, const char *enh,
		       const char *fmt, ...)
{
	va_list ap;

	buf_reset(&s->scratch);
	va_start(ap, fmt);
	buf_vprintf(&s->scratch, fmt, ap);
	va_end(ap);
	sink_reply_text(s, code, enh, buf_cstr(&s->scratch));
}

/* sink_close - nothing more will be read or answered */
static void sink_close(struct sink_session *s)
{
	s->state = SINK_S_CLOSED;
}

/*
 * sink_answer - reply to a command: the rule's way if a rule matched,
 * else code/enh/text.  Returns the code that stands for the command's
 * effect: the rule's code for a replacing reply, the normal code for a
 * late, garbled or overlong one, 0 when no reply goes (silent, drop).
 */
static int sink_answer(struct sink_session *s, const struct sink_rule *r,
		       int code, const char *enh, const char *text)
{
	size_t start;

	if (r == NULL) {
		sink_reply_text(s, code, enh, text);
		goto out;
	}
	if (r->delay_ms > 0 && r->action != SINK_FAULT_SILENT &&
	    s->act == SINK_MORE) {
		s->hold = s->out.len;
		s->holding = true;
		s->delay_ms = r->delay_ms;
		s->act = SINK_DELAY;
	}
	switch (r->action) {
	case SINK_FAULT_NORMAL:
		sink_reply_text(s, code, enh, text);
		break;
	case SINK_FAULT_REPLY:
		code = r->code;
		sink_reply_text(s, code, r->enhanced, r->text);
		break;
	case SINK_FAULT_SILENT:
		s->state = SINK_S_HUNG;
		return 0;
	case SINK_FAULT_MALFORMED:
		buf_append_str(&s->out, r->text);
		buf_append(&s->out, "\r\n", 2);
		break;
	case SINK_FAULT_OVERLONG:
		start = s->out.len;
		buf_printf(&s->out, "%d ", code);
		if (enh != NULL && *enh != '\0')
			buf_printf(&s->out, "%s ", enh);
		buf_append(&s->out, text, strcspn(text, "\n"));
		buf_putc(&s->out, ' ');
		while (s->out.len - start < r->length)
			buf_putc(&s->out, 'x');
		buf_append(&s->out, "\r\n", 2);
		break;
	case SINK_FAULT_DROP:
		sink_close(s);
		return 0;
	}
out:
	if (code == 421)
		sink_close(s);
	return code;
}

/* sink_match - the rule for cmd in the current transaction, if any */
static const struct sink_rule *sink_match(struct sink_session *s,
					  enum sink_cmd cmd,
					  const char *const *addrs, size_t n)
{
	if (s->f == NULL)
		return NULL;
	return sink_faults_match(s->f, cmd, addrs, n, s->mails, s->conn);
}

/* sink_accepted_addrs - the accepted recipients, as an array */
static const char *const *sink_accepted_addrs(struct sink_session *s)
{
	size_t j = 0;

	if (s->addr_cap < s->accepted) {
		s->addr_cap = s->accepted * 2;
		s->addrs = xrealloc(s->addrs, s->addr_cap * sizeof(*s->addrs));
	}
	for (size_t i = 0; i < s->nrcpts; i++)
		if (s->rcpts[i].code / 100 == 2)
			s->addrs[j++] = s->rcpt_text.data + s->rcpts[i].off;
	return s->addrs;
}

/* --- records ------------------------------------------------------------ */

/* sink_json_str - s as a JSON string; bytes that are not UTF-8 become U+FFFD */
static void sink_json_str(struct buf *out, const char *str, size_t len)
{
	const unsigned char *p = (const unsigned char *)str;
	const unsigned char *end = p + len;

	buf_putc(out, '"');
	while (p < end) {
		int n;

		if (*p == '"' || *p == '\\') {
			buf_putc(out, '\\');
			buf_putc(out, (char)*p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_printf(out, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			buf_putc(out, (char)*p++);
		} else if ((n = utf8_seq(p, (size_t)(end - p))) > 0) {
			buf_append(out, p, (size_t)n);
			p += n;
		} else {
			buf_append_str(out, "\\ufffd");
			p++;
		}
	}
	buf_putc(out, '"');
}

/* sink_record - one JSON line for the transaction, ended by how */
static void sink_record(struct sink_session *s, const char *how)
{
	struct buf *o = &s->records;
	size_t refused = 0;

	if (!s->p->log)
		return;
	buf_printf(o, "{\"conn\":%lu,\"msg\":%u,\"helo\":", s->conn, s->mails);
	sink_json_str(o, buf_cstr(&s->helo), s->helo.len);
	buf_printf(o, ",\"tls\":%s,\"auth\":%s,", s->tls ? "true" : "false",
		   s->authed ? "true" : "false");
	if (s->authed)
		buf_printf(o, "\"auth_mechanism\":\"%s\",", s->auth_mech);
	buf_append_str(o, "\"from\":");
	sink_json_str(o, buf_cstr(&s->from), s->from.len);
	buf_printf(o, ",\"mail_code\":%d,\"rcpts\":[", s->mail_code);
	for (size_t i = 0; i < s->nrcpts; i++) {
		const char *a = s->rcpt_text.data + s->rcpts[i].off;

		buf_append_str(o, i > 0 ? ",{\"to\":" : "{\"to\":");
		sink_json_str(o, a, strlen(a));
		buf_printf(o, ",\"code\":%d}", s->rcpts[i].code);
		if (s->rcpts[i].code / 100 != 2)
			refused++;
	}
	buf_printf(o, "],\"accepted\":%zu,\"refused\":%zu,\"body\":%s,"
		   "\"size\":%" PRIu64 ",\"code\":%d,\"file\":", s->accepted,
		   refused, s->body == SINK_BODY_DATA ? "\"DATA\"" :
		   s->body == SINK_BODY_BDAT ? "\"BDAT\"" : "null", s->size,
		   s->final_code);
	if (s->file.len > 0)
		sink_json_str(o, s->file.data, s->file.len);
	else
		buf_append_str(o, "null");
	buf_printf(o, ",\"end\":\"%s\"}\n", how);
}

/* sink_txn_reset - forget the transaction (buffers kept for the next) */
static void sink_txn_reset(struct sink_session *s)
{
	s->txn = false;
	buf_reset(&s->from);
	s->mail_code = 0;
	s->smtputf8 = false;
	s->nrcpts = 0;
	s->accepted = 0;
	s->rcpt_cmds = 0;
	buf_reset(&s->rcpt_text);
	s->body = SINK_BODY_NONE;
	s->forced_354 = false;
	s->too_big = false;
	s->failed = false;
	s->msg_rule = NULL;
	s->size = 0;
	s->raw = 0;
	s->drop_at = SINK_NO_DROP;
	s->final_code = 0;
	buf_reset(&s->msg);
	buf_reset(&s->file);
	if (s->greeted && s->state != SINK_S_CLOSED &&
	    s->state != SINK_S_HUNG && s->state != SINK_S_TLS)
		s->state = SINK_S_READY;
}

/* sink_txn_end - record an open transaction that ends now, how */
static void sink_txn_end(struct sink_session *s, const char *how)
{
	if (s->txn)
		sink_record(s, how);
	sink_txn_reset(s);
}

/* --- life cycle ----------------------------------------------------------- */

struct sink_session *sink_session_new(const struct sink_params *p,
				      unsigned long conn, bool tls)
{
	struct sink_session *s = xcalloc(1, sizeof(*s));

	s->p = p;
	s->f = p->faults;
	s->conn = conn;
	s->tls = tls;
	s->drop_at = SINK_NO_DROP;
	/* the sizes a busy connection needs, reserved once */
	buf_reserve(&s->out, 4096);
	buf_reserve(&s->records, 1024);
	buf_reserve(&s->scratch, 256);
	return s;
}

void sink_session_free(struct sink_session **sp)
{
	struct sink_session *s = *sp;

	if (s == NULL)
		return;
	buf_free(&s->helo);
	buf_free(&s->auth_user);
	buf_free(&s->from);
	buf_free(&s->rcpt_text);
	buf_free(&s->msg);
	buf_free(&s->file);
	buf_free(&s->out);
	buf_free(&s->records);
	buf_free(&s->scratch);
	free(s->rcpts);
	free(s->addrs);
	free(s);
	*sp = NULL;
}

/* sink_act_now - the action after a step: CLOSE once closed */
static enum sink_action sink_act_now(struct sink_session *s)
{
	if (s->act == SINK_MORE && s->state == SINK_S_CLOSED)
		s->act = SINK_CLOSE;
	return s->act;
}

enum sink_action sink_session_start(struct sink_session *s)
{
	const struct sink_rule *r = sink_match(s, SINK_CMD_GREETING, NULL, 0);
	char text[300];
	int code;

	s->act = SINK_MORE;
	snprintf(text, sizeof(text), "%.255s ESMTP volley sink",
		 s->p->hostname ? s->p->hostname : "localhost");
	code = sink_answer(s, r, 220, NULL, text);
	if (code != 0 && code / 100 != 2 && s->state != SINK_S_CLOSED)
		s->state = SINK_S_REJECTED;
	return sink_act_now(s);
}

/* --- content ------------------------------------------------------------ */

/* sink_put - message content after unstuffing: count it, keep it */
static void sink_put(struct sink_session *s, const char *p, size_t n)
{
	s->size += n;
	if (s->p->size_max > 0 && s->size > s->p->size_max) {
		/* too big: count on (to the end of data) but keep nothing */
		s->too_big = true;
		buf_reset(&s->msg);
		return;
	}
	if (s->p->store)
		buf_append(&s->msg, p, n);
}

/* sink_drop - a drop fault fires: the connection goes, mid-message */
static void sink_drop(struct sink_session *s)
{
	sink_txn_end(s, "dropped");
	sink_close(s);
}

/* sink_improper - a command came before the reply to the previous one */
static void sink_improper(struct sink_session *s, const char *what)
{
	s->stats.improper++;
	if (s->p->log) {
		buf_printf(&s->records, "{\"conn\":%lu,\"msg\":%u,"
			   "\"event\":\"improper_pipelining\",\"command\":",
			   s->conn, s->mails);
		sink_json_str(&s->records, what, strlen(what));
		buf_append_str(&s->records, "}\n");
	}
	sink_reply(s, 554, "5.5.0", "Improper pipelining: %s was followed "
		   "by more input before its reply", what);
	sink_txn_end(s, "improper_pipelining");
	sink_close(s);
}

/*
 * sink_start_content - the first content of a message is coming (DATA
 * got 354, or the first BDAT): choose the message's rule and arm a drop.
 */
static void sink_start_content(struct sink_session *s,
			       const struct sink_rule *cmd_rule)
{
	const char *const *addrs = sink_accepted_addrs(s);

	s->msg_rule = sink_match(s, SINK_CMD_MESSAGE, addrs, s->accepted);
	if (cmd_rule != NULL && cmd_rule->action == SINK_FAULT_DROP &&
	    cmd_rule->drop_after != SINK_FAULT_NO_BYTES)
		s->drop_at = cmd_rule->drop_after;
	else if (s->msg_rule != NULL &&
		 s->msg_rule->action == SINK_FAULT_DROP &&
		 s->msg_rule->drop_after != SINK_FAULT_NO_BYTES)
		s->drop_at = s->msg_rule->drop_after;
}

/*
 * sink_num_text - "PRE<v>POST" into out (big enough for both and 20
 * digits): the replies every message gets, without snprintf's 800
 * instructions
 */
static const char *sink_num_text(char *out, const char *pre, uint64_t v,
				 const char *post)
{
	char digits[20], *d = digits + sizeof(digits);
	size_t npre = strlen(pre), ndig;

	do {
		*--d = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	ndig = (size_t)(digits + sizeof(digits) - d);
	memcpy(out, pre, npre);
	memcpy(out + npre, d, ndig);
	strcpy(out + npre + ndig, post);
	return out;
}

/* sink_finish - the verdict on a complete message (stored as name) */
static void sink_finish(struct sink_session *s, const char *name)
{
	const struct sink_rule *r = s->msg_rule;
	char text[512];
	int code;

	if (name != NULL) {
		buf_append_str(&s->file, name);
		snprintf(text, sizeof(text), "Ok: queued as %.480s", name);
	} else {
		sink_num_text(text, "Ok: ", s->size, " bytes");
	}
	code = sink_answer(s, r, 250, "2.0.0", text);
	if (code / 100 == 2) {
		s->stats.messages++;
		s->stats.recipients += s->accepted;
		s->stats.bytes += s->size;
	} else if (code != 0) {
		s->stats.refused++;
	}
	s->final_code = code;
	sink_txn_end(s, "eod");
}

/* sink_end_of_data - DATA's final dot, or the end of BDAT ... LAST */
static void sink_end_of_data(struct sink_session *s)
{
	const struct sink_rule *r = s->msg_rule;

	s->done++;
	s->state = SINK_S_MAIL;
	if (s->accepted == 0) {
		/* after a forced 354 */
		sink_reply(s, 554, "5.5.1", "No valid recipients");
		s->final_code = 554;
		s->stats.refused++;
		sink_txn_end(s, "eod");
		return;
	}
	if (s->too_big) {
		sink_reply(s, 552, "5.3.4", "Message size exceeds fixed "
			   "maximum message size");
		s->final_code = 552;
		s->stats.refused++;
		sink_txn_end(s, "eod");
		return;
	}
	if (r != NULL && r->action == SINK_FAULT_DROP) {
		sink_drop(s);
		return;
	}
	/* store what will be accepted, before saying so */
	if (s->p->store && (r == NULL || (r->action != SINK_FAULT_SILENT &&
					  (r->action != SINK_FAULT_REPLY ||
					   r->code / 100 == 2)))) {
		s->state = SINK_S_STORING;
		s->act = SINK_STORE;
		return;
	}
	sink_finish(s, NULL);
}

/* sink_data_content - DATA content: unstuff, count, find the end */
static size_t sink_data_content(struct sink_session *s, const char *data,
				size_t len)
{
	const char *p = data, *end;
	size_t n = len;
	bool drop = false;

	if (s->drop_at != SINK_NO_DROP && s->drop_at - s->raw <= n) {
		n = (size_t)(s->drop_at - s->raw);
		drop = true;
	}
	end = data + n;
	while (p < end) {
		const char *cr;

		switch (s->dstate) {
		case SINK_D_MID:
			cr = memchr(p, '\r', (size_t)(end - p));
			if (cr == NULL) {
				sink_put(s, p, (size_t)(end - p));
				p = end;
			} else {
				sink_put(s, p, (size_t)(cr - p));
				p = cr + 1;
				s->dstate = SINK_D_CR;
			}
			break;
		case SINK_D_CR:
			if (*p == '\n') {
				sink_put(s, "\r\n", 2);
				p++;
				s->dstate = SINK_D_BOL;
			} else {
				/* a CR alone is content like any byte */
				sink_put(s, "\r", 1);
				s->dstate = SINK_D_MID;
			}
			break;
		case SINK_D_BOL:
			if (*p == '.') {
				p++;
				s->dstate = SINK_D_DOT;
			} else {
				s->dstate = SINK_D_MID;
			}
			break;
		case SINK_D_DOT:
			/* the leading dot of a line with more on it goes */
			if (*p == '\r') {
				p++;
				s->dstate = SINK_D_DOTCR;
			} else {
				s->dstate = SINK_D_MID;
			}
			break;
		case SINK_D_DOTCR:
			if (*p == '\n') {
				size_t used = (size_t)(p + 1 - data);

				s->raw += used;
				s->waiting = used < len;
				if (s->waiting && !s->p->pipelining) {
					s->done++;
					sink_improper(s, "the end of data");
				} else {
					sink_end_of_data(s);
				}
				return used;
			}
			sink_put(s, "\r", 1);
			s->dstate = SINK_D_MID;
			break;
		}
	}
	s->raw += n;
	if (drop)
		sink_drop(s);
	return n;
}

/* sink_chunk_done - a BDAT chunk is in: its reply */
static void sink_chunk_done(struct sink_session *s)
{
	const struct sink_rule *r;
	char text[64];
	int code;

	s->state = s->txn ? SINK_S_MAIL : (s->greeted ? SINK_S_READY :
					   SINK_S_INIT);
	if (s->waiting && !s->p->pipelining) {
		sink_improper(s, "BDAT");
		return;
	}
	if (s->chunk_code != 0) {
		sink_reply(s, s->chunk_code, s->chunk_enh, "%s",
			   s->chunk_text);
		if (s->txn)
			s->final_code = s->chunk_code;
		s->chunk_code = 0;
		return;
	}
	if (s->chunk_last) {
		/* after BDAT LAST the transaction is over, whatever the
		 * verdict (sink_end_of_data says 552 when too big) */
		sink_end_of_data(s);
		return;
	}
	if (s->too_big) {
		sink_reply(s, 552, "5.3.4", "Message size exceeds fixed "
			   "maximum message size");
		s->final_code = 552;
		s->failed = true;
		return;
	}
	r = sink_match(s, SINK_CMD_BDAT, sink_accepted_addrs(s), s->accepted);
	if (r != NULL && r->action == SINK_FAULT_DROP &&
	    r->drop_after != SINK_FAULT_NO_BYTES)
		r = NULL;	/* its drop was armed at the first chunk */
	sink_num_text(text, "", s->chunk_size, " octets received");
	code = sink_answer(s, r, 250, "2.0.0", text);
	if (code / 100 != 2 && code != 0) {
		s->final_code = code;
		s->failed = true;
	}
	if (code == 0 && s->state == SINK_S_CLOSED)
		sink_txn_end(s, "dropped");
}

/* sink_bdat_content - a BDAT chunk's bytes, exactly */
static size_t sink_bdat_content(struct sink_session *s, const char *data,
				size_t len)
{
	size_t n = len < s->chunk_left ? len : (size_t)s->chunk_left;
	bool drop = false;

	if (s->drop_at != SINK_NO_DROP && s->drop_at - s->raw <= n) {
		n = (size_t)(s->drop_at - s->raw);
		drop = true;
	}
	if (s->chunk_code == 0 && !s->failed)
		sink_put(s, data, n);
	s->raw += n;
	s->chunk_left -= n;
	if (drop) {
		sink_drop(s);
		return n;
	}
	if (s->chunk_left == 0) {
		s->waiting = n < len;
		sink_chunk_done(s);
	}
	return n;
}

/* --- command helpers ------------------------------------------------------ */

/* sink_prefix - does line start with word (ASCII case ignored)? */
static bool sink_prefix(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);

	return len >= n && strncasecmp(line, word, n) == 0;
}

/*
 * sink_path - a <path> at p[0..len) (blanks before it allowed): the
 * address's offset and length; returns the bytes used, or 0 if it is
 * not a path.  Quoted local parts may hold '>'.  *utf8_r: non-ASCII.
 */
/*
 * the bytes of a path that need sink_path's attention; every other one
 * is skipped with one look-up (seven tests each cost 900 instructions
 * for a message's two addresses)
 */
static const bool sink_path_special[256] = {
	[0 ... 0x20] = true, ['"'] = true, ['>'] = true, ['\\'] = true,
	[0x7f ... 0xff] = true,
};

static size_t sink_path(const char *p, size_t len, size_t *off_r,
			size_t *alen_r, bool *utf8_r)
{
	size_t i = 0;
	bool quoted = false;

	*utf8_r = false;
	while (i < len && p[i] == ' ')
		i++;
	if (i == len || p[i] != '<')
		return 0;
	*off_r = ++i;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!sink_path_special[c])
			continue;
		if (c == '\\' && quoted && i + 1 < len) {
			i++;
			continue;
		}
		if (c == '"')
			quoted = !quoted;
		else if (c == '>' && !quoted)
			break;
		else if (c < 0x20 || c == 0x7f || (c == ' ' && !quoted))
			return 0;
		else if (c >= 0x80)
			*utf8_r = true;
	}
	if (i == len)
		return 0;
	*alen_r = i - *off_r;
	return i + 1;
}

/* sink_next_param - the next "KEY[=VALUE]" of p[*i..len) */
static bool sink_next_param(const char *p, size_t len, size_t *i,
			    const char **kw, size_t *kwlen)
{
	while (*i < len && p[*i] == ' ')
		(*i)++;
	if (*i == len)
		return false;
	*kw = p + *i;
	while (*i < len && p[*i] != ' ')
		(*i)++;
	*kwlen = (size_t)(p + *i - *kw);
	return true;
}

static bool sink_word_eq(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

/* sink_b64_decode - base64 into out; -1 if it is not base64 */
static int sink_b64_decode(const char *p, size_t len, struct buf *out)
{
	unsigned acc = 0;
	int bits = 0;
	size_t pad = 0;

	buf_reset(out);
	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		int v;

		if (c == '=') {
			if (++pad > 2 || i + 2 < len - (pad - 1))
				return -1;
			continue;
		}
		if (pad > 0)
			return -1;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_putc(out, (char)((acc >> bits) & 0xff));
		}
	}
	return 0;
}

/* sink_auth_offered - may AUTH be used on this connection now? */
static bool sink_auth_offered(const struct sink_session *s)
{
	return s->p->auth_user != NULL &&
	       (s->tls || !s->p->tls_configured || s->p->auth_plaintext);
}

/* --- commands ------------------------------------------------------------- */

static void sink_cmd_ehlo(struct sink_session *s, const char *arg,
			  size_t len, bool esmtp)
{
	const struct sink_rule *r;
	const char *host = s->p->hostname ? s->p->hostname : "localhost";
	struct buf *t = &s->scratch;
	char text[2048];
	int code;

	if (len == 0 || memchr(arg, ' ', len) != NULL) {
		sink_reply(s, 501, "5.5.4", "Syntax: %s hostname",
			   esmtp ? "EHLO" : "HELO");
		return;
	}
	sink_txn_end(s, "ehlo");
	r = sink_match(s, esmtp ? SINK_CMD_EHLO : SINK_CMD_HELO, NULL, 0);
	buf_reset(t);
	buf_printf(t, "%s Hello %.*s", host, (int)(len > 255 ? 255 : len),
		   arg);
	if (esmtp) {
		if (s->p->pipelining)
			buf_append_str(t, "\nPIPELINING");
		if (s->p->size_max > 0)
			buf_printf(t, "\nSIZE %" PRIu64, s->p->size_max);
		else
			buf_append_str(t, "\nSIZE");
		if (s->p->eightbitmime)
			buf_append_str(t, "\n8BITMIME");
		if (s->p->smtputf8)
			buf_append_str(t, "\nSMTPUTF8");
		buf_append_str(t, "\nENHANCEDSTATUSCODES");
		if (s->p->chunking)
			buf_append_str(t, "\nCHUNKING");
		if (s->p->starttls && !s->tls)
			buf_append_str(t, "\nSTARTTLS");
		if (sink_auth_offered(s))
			buf_append_str(t, "\nAUTH PLAIN LOGIN XOAUTH2");
		if (s->p->rcptmax > 0 || s->p->mailmax > 0) {
			buf_append_str(t, "\nLIMITS");
			if (s->p->rcptmax > 0)
				buf_printf(t, " RCPTMAX=%u", s->p->rcptmax);
			if (s->p->mailmax > 0)
				buf_printf(t, " MAILMAX=%u", s->p->mailmax);
		}
	}
	snprintf(text, sizeof(text), "%s", buf_cstr(t));
	code = sink_answer(s, r, 250, NULL, text);
	if (code / 100 != 2)
		return;
	s->greeted = true;
	s->esmtp = esmtp;
	buf_reset(&s->helo);
	buf_append(&s->helo, arg, len);
	if (s->state != SINK_S_CLOSED && s->state != SINK_S_HUNG)
		s->state = SINK_S_READY;
}

static void sink_cmd_starttls(struct sink_session *s, size_t arglen)
{
	const struct sink_rule *r;
	const char *inject;

	if (!s->p->starttls || s->tls) {
		sink_reply(s, s->tls ? 503 : 502, "5.5.1", "%s", s->tls ?
			   "TLS is already active" : "STARTTLS not available");
		return;
	}
	if (arglen > 0) {
		sink_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (!s->greeted) {
		sink_reply(s, 503, "5.5.1", "EHLO first");
		return;
	}
	r = sink_match(s, SINK_CMD_STARTTLS, NULL, 0);
	if (sink_answer(s, r, 220, "2.0.0", "Ready to start TLS") != 220)
		return;
	inject = sink_faults_starttls_inject(s->f);
	if (inject != NULL) {
		buf_append_str(&s->out, inject);
		buf_append(&s->out, "\r\n", 2);
	}
	sink_txn_end(s, "starttls");
	if (s->state == SINK_S_CLOSED || s->state == SINK_S_HUNG)
		return;
	s->state = SINK_S_TLS;
	if (s->act == SINK_MORE)
		s->act = SINK_STARTTLS;
}

/* sink_auth_verdict - the credentials user/pass (lengths given) */
static void sink_auth_verdict(struct sink_session *s, const char *user,
			      size_t ulen, const char *pass, size_t plen)
{
	/* decided before any reply: user and pass may be in scratch */
	bool ok = ulen == strlen(s->p->auth_user) &&
		  memcmp(user, s->p->auth_user, ulen) == 0 &&
		  plen == strlen(s->p->auth_pass) &&
		  memcmp(pass, s->p->auth_pass, plen) == 0;

	s->state = SINK_S_READY;
	if (ok) {
		if (sink_answer(s, s->auth_rule, 235, "2.7.0",
				"Authentication successful") == 235) {
			s->authed = true;
			s->auth_mech = s->auth_login ? "LOGIN" : "PLAIN";
		}
	} else {
		sink_answer(s, s->auth_rule, 535, "5.7.8",
			    "Authentication credentials invalid");
	}
}

/* sink_auth_plain - an RFC 4616 message: authzid NUL authcid NUL passwd */
static void sink_auth_plain(struct sink_session *s, const char *b64,
			    size_t len)
{
	struct buf *d = &s->scratch;
	const char *nul1, *nul2;
	size_t zlen, ulen;

	if (sink_b64_decode(b64, len, d) < 0) {
		s->state = SINK_S_READY;
		sink_reply(s, 501, "5.5.2", "Invalid base64 data");
		return;
	}
	nul1 = memchr(d->data, '\0', d->len);
	nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0',
				     d->len - (size_t)(nul1 + 1 - d->data)) :
		NULL;
	if (nul2 == NULL) {
		s->state = SINK_S_READY;
		sink_reply(s, 501, "5.5.2", "Invalid PLAIN response");
		return;
	}
	zlen = (size_t)(nul1 - d->data);
	ulen = (size_t)(nul2 - nul1 - 1);
	if (zlen > 0 && (zlen != ulen || memcmp(d->data, nul1 + 1, ulen))) {
		/* acting as someone else is not offered */
		s->state = SINK_S_READY;
		sink_answer(s, s->auth_rule, 535, "5.7.8",
			    "Authentication credentials invalid");
		return;
	}
	/* the verdict reads them before its reply reuses scratch */
	sink_auth_verdict(s, nul1 + 1, ulen, nul2 + 1,
			  d->len - (size_t)(nul2 + 1 - d->data));
}

/*
 * sink_auth_xoauth2 - "user=U^Aauth=Bearer T^A^A", base64.  The token
 * is checked against the sink's password.  A refusal goes the way
 * Google's and Microsoft's servers do it: the reason (JSON, base64) in
 * a 334, and the 535 only after the client's empty line.
 */
static void sink_auth_xoauth2(struct sink_session *s, const char *b64,
			      size_t len)
{
	static const char user_kw[] = "user=", auth_kw[] = "auth=Bearer ";
	struct buf *d = &s->scratch;
	const char *user, *tok, *end, *sep;
	size_t ulen, tlen;
	bool ok;

	if (sink_b64_decode(b64, len, d) < 0) {
		s->state = SINK_S_READY;
		sink_reply(s, 501, "5.5.2", "Invalid base64 data");
		return;
	}
	if (d->len < sizeof(user_kw) + sizeof(auth_kw) + 1) {
		s->state = SINK_S_READY;
		sink_reply(s, 501, "5.5.2", "Invalid XOAUTH2 response");
		return;
	}
	end = d->data + d->len;
	user = d->data;
	sep = memchr(user, '\x01', d->len);
	ok = sep != NULL && (size_t)(sep - user) > sizeof(user_kw) - 1 &&
	     memcmp(user, user_kw, sizeof(user_kw) - 1) == 0 &&
	     (size_t)(end - sep) > sizeof(auth_kw) + 2 &&
	     memcmp(sep + 1, auth_kw, sizeof(auth_kw) - 1) == 0 &&
	     end[-1] == '\x01' && end[-2] == '\x01';
	if (!ok) {
		s->state = SINK_S_READY;
		sink_reply(s, 501, "5.5.2", "Invalid XOAUTH2 response");
		return;
	}
	user += sizeof(user_kw) - 1;
	ulen = (size_t)(sep - user);
	tok = sep + 1 + sizeof(auth_kw) - 1;
	tlen = (size_t)(end - 2 - tok);
	ok = ulen == strlen(s->p->auth_user) &&
	     memcmp(user, s->p->auth_user, ulen) == 0 &&
	     tlen == strlen(s->p->auth_pass) &&
	     memcmp(tok, s->p->auth_pass, tlen) == 0;
	if (!ok) {
		s->auth_step = SINK_AUTH_XOAUTH2_FAILED;
		/* {"status":"401","schemes":"bearer","scope":"https://mail.google.com/"} */
		sink_reply(s, 334, NULL, "%s",
			   "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwi"
			   "c2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==");
		return;
	}
	s->state = SINK_S_READY;
	if (sink_answer(s, s->auth_rule, 235, "2.7.0",
			"Authentication successful") == 235) {
		s->authed = true;
		s->auth_mech = "XOAUTH2";
	}
}

/* sink_auth_line - a response line to our 334 */
static void sink_auth_line(struct sink_session *s, const char *line,
			   size_t len)
{
	if (len == 1 && line[0] == '*') {
		s->state = SINK_S_READY;
		sink_reply(s, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	switch (s->auth_step) {
	case SINK_AUTH_PLAIN:
		sink_auth_plain(s, line, len);
		return;
	case SINK_AUTH_USER:
		if (sink_b64_decode(line, len, &s->auth_user) < 0)
			break;
		s->auth_step = SINK_AUTH_PASS;
		sink_reply(s, 334, NULL, "UGFzc3dvcmQ6");
		return;
	case SINK_AUTH_PASS:
		if (sink_b64_decode(line, len, &s->scratch) < 0)
			break;
		sink_auth_verdict(s, buf_cstr(&s->auth_user),
				  s->auth_user.len, buf_cstr(&s->scratch),
				  s->scratch.len);
		return;
	case SINK_AUTH_XOAUTH2:
		sink_auth_xoauth2(s, line, len);
		return;
	case SINK_AUTH_XOAUTH2_FAILED:
		/* whatever the client sent: the refusal stands */
		s->state = SINK_S_READY;
		sink_answer(s, s->auth_rule, 535, "5.7.8",
			    "Authentication credentials invalid");
		return;
	}
	s->state = SINK_S_READY;
	sink_reply(s, 501, "5.5.2", "Invalid base64 data");
}

static void sink_cmd_auth(struct sink_session *s, const char *arg,
			  size_t len)
{
	const struct sink_rule *r;
	const char *mech = arg, *ir;
	const char *space = memchr(arg, ' ', len);
	size_t mlen = space != NULL ? (size_t)(space - arg) : len, irlen;

	if (s->p->auth_user == NULL) {
		sink_reply(s, 502, "5.5.1", "AUTH not available");
		return;
	}
	if (!s->greeted || !s->esmtp) {
		sink_reply(s, 503, "5.5.1", "EHLO first");
		return;
	}
	if (s->authed) {
		sink_reply(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	if (s->txn) {
		sink_reply(s, 503, "5.5.1", "AUTH not allowed during a mail "
			   "transaction");
		return;
	}
	if (!sink_auth_offered(s)) {
		sink_reply(s, 538, "5.7.11", "Encryption required for "
			   "requested authentication mechanism");
		return;
	}
	if (mlen > len)
		mlen = len;
	ir = mech + mlen;
	irlen = len - mlen;
	while (irlen > 0 && *ir == ' ') {
		ir++;
		irlen--;
	}
	if (!sink_word_eq(mech, mlen, "PLAIN") &&
	    !sink_word_eq(mech, mlen, "LOGIN") &&
	    !sink_word_eq(mech, mlen, "XOAUTH2")) {
		sink_reply(s, 504, "5.5.4", "Unrecognized authentication "
			   "type");
		return;
	}
	r = sink_match(s, SINK_CMD_AUTH, NULL, 0);
	s->auth_rule = NULL;
	if (r != NULL && r->action != SINK_FAULT_NORMAL) {
		sink_answer(s, r, 535, "5.7.8", "Authentication credentials "
			    "invalid");
		return;
	}
	s->auth_rule = r;	/* a delay, for the verdict */
	s->auth_login = sink_word_eq(mech, mlen, "LOGIN");
	s->state = SINK_S_AUTH;
	if (sink_word_eq(mech, mlen, "XOAUTH2")) {
		s->auth_step = SINK_AUTH_XOAUTH2;
		if (irlen == 0)
			sink_reply(s, 334, NULL, "%s", "");
		else if (irlen == 1 && ir[0] == '=')	/* empty (RFC 4954) */
			sink_auth_xoauth2(s, "", 0);
		else
			sink_auth_xoauth2(s, ir, irlen);
		return;
	}
	if (!s->auth_login) {
		s->auth_step = SINK_AUTH_PLAIN;
		if (irlen == 0) {
			sink_reply(s, 334, NULL, "%s", "");
		} else if (irlen == 1 && ir[0] == '=') {
			sink_auth_plain(s, "", 0);
		} else {
			sink_auth_plain(s, ir, irlen);
		}
		return;
	}
	s->auth_step = SINK_AUTH_USER;
	if (irlen == 0)
		sink_reply(s, 334, NULL, "VXNlcm5hbWU6");
	else
		sink_auth_line(s, ir, irlen);
}

static void sink_cmd_mail(struct sink_session *s, const char *arg,
			  size_t len)
{
	const struct sink_rule *r, *close_reply = NULL;
	unsigned close_after;
	size_t used, off = 0, alen = 0, i, kwlen;
	const char *kw, *from;
	bool utf8, smtputf8 = false;
	int code;

	if (!s->greeted) {
		sink_reply(s, 503, "5.5.1", "EHLO or HELO first");
		return;
	}
	if (s->txn) {
		sink_reply(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	s->mails++;
	if (s->p->auth_user != NULL && !s->authed) {
		sink_reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	if (s->p->mailmax > 0 && s->mails > s->p->mailmax) {
		/* RFC 9422 4.1: the limit counts every MAIL; Exim's way */
		sink_reply(s, 421, "4.5.3", "Too many transactions in this "
			   "session (MAILMAX %u), closing", s->p->mailmax);
		sink_close(s);
		return;
	}
	close_after = sink_faults_close_after(s->f, &close_reply);
	if (close_after > 0 && s->done >= close_after) {
		sink_answer(s, close_reply, 421, "4.7.0", "");
		sink_close(s);
		return;
	}
	if (!sink_prefix(arg, len, "FROM:") ||
	    (used = sink_path(arg + 5, len - 5, &off, &alen, &utf8)) == 0) {
		sink_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	from = arg + 5 + off;
	i = 5 + used;
	if (i < len && arg[i] != ' ') {
		sink_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	while (sink_next_param(arg, len, &i, &kw, &kwlen)) {
		if (!s->esmtp) {
			sink_reply(s, 555, "5.5.4", "Parameters need EHLO");
			return;
		}
		if (sink_prefix(kw, kwlen, "SIZE=")) {
			char *end;
			unsigned long long v;

			v = strtoull(kw + 5, &end, 10);
			if (kwlen == 5 || end != kw + kwlen) {
				sink_reply(s, 501, "5.5.4", "Bad SIZE value");
				return;
			}
			if (s->p->size_max > 0 && v > s->p->size_max) {
				sink_reply(s, 552, "5.3.4", "Message size "
					   "exceeds fixed maximum message "
					   "size");
				return;
			}
		} else if (sink_word_eq(kw, kwlen, "BODY=7BIT") ||
			   (s->p->eightbitmime &&
			    sink_word_eq(kw, kwlen, "BODY=8BITMIME"))) {
			continue;
		} else if (s->p->smtputf8 &&
			   sink_word_eq(kw, kwlen, "SMTPUTF8")) {
			smtputf8 = true;
		} else {
			sink_reply(s, 555, "5.5.4", "Unsupported parameter "
				   "%.*s", (int)(kwlen > 64 ? 64 : kwlen), kw);
			return;
		}
	}
	if (utf8 && !smtputf8) {
		sink_reply(s, 553, "5.6.7", "Non-ASCII address needs "
			   "SMTPUTF8");
		return;
	}
	buf_reset(&s->from);
	buf_append(&s->from, from, alen);
	{
		const char *a = buf_cstr(&s->from);

		r = sink_match(s, SINK_CMD_MAIL, &a, 1);
	}
	code = sink_answer(s, r, 250, "2.1.0", "Sender ok");
	s->mail_code = code;
	s->smtputf8 = smtputf8;
	if (code / 100 == 2 && s->state != SINK_S_CLOSED &&
	    s->state != SINK_S_HUNG) {
		s->txn = true;
		s->state = SINK_S_MAIL;
		return;
	}
	/* a refused sender is a transaction of its own in the log; a
	 * silent one stays open until the connection ends */
	s->txn = true;
	if (s->state != SINK_S_HUNG)
		sink_txn_end(s, code == 0 ? "dropped" : "mail");
}

static void sink_cmd_rcpt(struct sink_session *s, const char *arg,
			  size_t len)
{
	const struct sink_rule *r;
	struct sink_rcpt *rc;
	size_t used, off = 0, alen = 0, i, kwlen;
	const char *kw, *a;
	bool utf8;
	int code;

	if (!s->txn) {
		sink_reply(s, 503, "5.5.1", "MAIL first");
		return;
	}
	if (s->body != SINK_BODY_NONE) {
		sink_reply(s, 503, "5.5.1", "RCPT after BDAT");
		return;
	}
	if (!sink_prefix(arg, len, "TO:") ||
	    (used = sink_path(arg + 3, len - 3, &off, &alen, &utf8)) == 0) {
		sink_reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	if (alen == 0) {
		sink_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		return;
	}
	i = 3 + used;
	if (sink_next_param(arg, len, &i, &kw, &kwlen)) {
		sink_reply(s, 555, "5.5.4", "Unsupported parameter %.*s",
			   (int)(kwlen > 64 ? 64 : kwlen), kw);
		return;
	}
	if (utf8 && !s->smtputf8) {
		sink_reply(s, 553, "5.6.7", "Non-ASCII address needs "
			   "SMTPUTF8");
		return;
	}
	s->rcpt_cmds++;
	if ((s->p->rcptmax > 0 && s->rcpt_cmds > s->p->rcptmax) ||
	    s->nrcpts >= SINK_RCPTS_MAX) {
		/* RFC 5321 4.5.3.1.10 and RFC 9422 RCPTMAX */
		sink_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	if (s->nrcpts == s->rcpt_cap) {
		s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 16;
		s->rcpts = xrealloc(s->rcpts, s->rcpt_cap * sizeof(*s->rcpts));
	}
	rc = &s->rcpts[s->nrcpts++];
	rc->off = s->rcpt_text.len;
	buf_append(&s->rcpt_text, arg + 3 + off, alen);
	buf_putc(&s->rcpt_text, '\0');
	a = s->rcpt_text.data + rc->off;
	r = sink_match(s, SINK_CMD_RCPT, &a, 1);
	code = sink_answer(s, r, 250, "2.1.5", "Recipient ok");
	rc->code = code;
	if (code / 100 == 2)
		s->accepted++;
	if (code == 0 && s->state == SINK_S_CLOSED)
		sink_txn_end(s, "dropped");
}

static void sink_cmd_data(struct sink_session *s, size_t arglen)
{
	const struct sink_rule *r;
	int code;

	if (arglen > 0) {
		sink_reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (!s->txn) {
		sink_reply(s, 503, "5.5.1", "MAIL first");
		return;
	}
	if (s->body == SINK_BODY_BDAT) {
		sink_reply(s, 503, "5.5.1", "DATA after BDAT");
		return;
	}
	r = sink_match(s, SINK_CMD_DATA, sink_accepted_addrs(s), s->accepted);
	if (s->accepted == 0) {
		if (r == NULL || r->action != SINK_FAULT_REPLY ||
		    r->code != 354) {
			sink_reply(s, 554, "5.5.1", "No valid recipients");
			s->final_code = 554;
			return;
		}
		/* some servers say 354 anyway: a client must cope */
		s->forced_354 = true;
	}
	if (r != NULL && r->action == SINK_FAULT_DROP &&
	    r->drop_after != SINK_FAULT_NO_BYTES)
		code = sink_answer(s, NULL, 354, NULL,
				   "End data with <CR><LF>.<CR><LF>");
	else
		code = sink_answer(s, r, 354, NULL,
				   "End data with <CR><LF>.<CR><LF>");
	if (code != 354) {
		if (code == 0 && s->state == SINK_S_CLOSED)
			sink_txn_end(s, "dropped");
		else
			s->final_code = code;
		return;
	}
	s->body = SINK_BODY_DATA;
	s->dstate = SINK_D_BOL;
	sink_start_content(s, r);
	if (s->state == SINK_S_MAIL)
		s->state = SINK_S_DATA;
}

static void sink_cmd_bdat(struct sink_session *s, const char *arg,
			  size_t len)
{
	unsigned long long n = 0;
	const char *p = arg, *end = arg + len, *stop;
	bool last = false;

	if (!s->p->chunking) {
		sink_reply(s, 502, "5.5.1", "BDAT not available");
		return;
	}
	if (len == 0 || *p < '0' || *p > '9')
		goto syntax;
	/* at most 15 digits: no overflow (strtoull cost 110 instructions) */
	for (stop = p; stop < end && *stop >= '0' && *stop <= '9'; stop++) {
		if (stop - p == 15)
			goto syntax;
		n = n * 10 + (unsigned)(*stop - '0');
	}
	p = stop;
	if (p < end) {
		if (*p != ' ')
			goto syntax;
		while (p < end && *p == ' ')
			p++;
		if (!sink_word_eq(p, (size_t)(end - p), "LAST"))
			goto syntax;
		last = true;
	}
	s->chunk_left = n;
	s->chunk_size = n;
	s->chunk_last = last;
	s->chunk_code = 0;
	/* RFC 3030 2: the chunk is read even when the command fails */
	if (!s->txn) {
		s->chunk_code = 503;
		s->chunk_enh = "5.5.1";
		s->chunk_text = "MAIL first";
	} else if (s->body == SINK_BODY_DATA) {
		s->chunk_code = 503;
		s->chunk_enh = "5.5.1";
		s->chunk_text = "BDAT after DATA";
	} else if (s->accepted == 0) {
		s->chunk_code = 503;
		s->chunk_enh = "5.5.1";
		s->chunk_text = "No valid recipients";
	} else if (s->failed) {
		s->chunk_code = 503;
		s->chunk_enh = "5.5.1";
		s->chunk_text = "An earlier BDAT failed: RSET first";
	} else if (s->body == SINK_BODY_NONE) {
		const struct sink_rule *r;

		s->body = SINK_BODY_BDAT;
		r = sink_match(s, SINK_CMD_BDAT, sink_accepted_addrs(s),
			       s->accepted);
		sink_start_content(s, r);
	}
	s->state = SINK_S_BDAT;
	if (n == 0) {
		s->waiting = false;	/* checked when the chunk is done */
		sink_chunk_done(s);
	}
	return;
syntax:
	sink_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
}

/* the commands a client must not follow with more before the reply */
enum sink_verb {
	SINK_V_EHLO, SINK_V_HELO, SINK_V_STARTTLS, SINK_V_AUTH, SINK_V_MAIL,
	SINK_V_RCPT, SINK_V_DATA, SINK_V_BDAT, SINK_V_RSET, SINK_V_NOOP,
	SINK_V_QUIT, SINK_V_VRFY, SINK_V_HELP, SINK_V_NOTIMPL, SINK_V_UNKNOWN,
};

/* lower case, letters only (see sink_verb_of), the commonest first */
static const struct {
	const char *lower;
	enum sink_verb verb;
} sink_verbs[] = {
	{ "mail", SINK_V_MAIL }, { "rcpt", SINK_V_RCPT },
	{ "bdat", SINK_V_BDAT }, { "data", SINK_V_DATA },
	{ "rset", SINK_V_RSET }, { "noop", SINK_V_NOOP },
	{ "ehlo", SINK_V_EHLO }, { "helo", SINK_V_HELO },
	{ "starttls", SINK_V_STARTTLS }, { "auth", SINK_V_AUTH },
	{ "quit", SINK_V_QUIT }, { "vrfy", SINK_V_VRFY },
	{ "help", SINK_V_HELP }, { "expn", SINK_V_NOTIMPL },
	{ "turn", SINK_V_NOTIMPL }, { "etrn", SINK_V_NOTIMPL },
};

/*
 * sink_verb_of - the verb of a command's first word: its four bytes
 * with bit 0x20 set are the lower-case name only if they are the name
 * in any case (for letters, c | 0x20 == 'a' only for 'A' and 'a'), so
 * one 32-bit compare a verb; strncasecmp on each cost 1,000
 * instructions a message
 */
static enum sink_verb sink_verb_of(const char *w, size_t len)
{
	uint32_t got, name;

	if (len == 8)
		return sink_word_eq(w, len, "STARTTLS") ? SINK_V_STARTTLS :
		       SINK_V_UNKNOWN;
	if (len != 4)
		return SINK_V_UNKNOWN;
	memcpy(&got, w, 4);
	got |= 0x20202020;
	for (size_t i = 0; i < sizeof(sink_verbs) / sizeof(sink_verbs[0]);
	     i++) {
		if (sink_verbs[i].verb == SINK_V_STARTTLS)
			continue;
		memcpy(&name, sink_verbs[i].lower, 4);
		if (got == name)
			return sink_verbs[i].verb;
	}
	return SINK_V_UNKNOWN;
}

/*
 * sink_must_wait - may nothing follow this command before its reply?
 * Without PIPELINING nothing may; with it, RFC 2920 3.1 still ends a
 * group at EHLO, HELO and DATA, and RFC 4954 at AUTH.  STARTTLS is
 * not here: what follows it is thrown away (RFC 3207 5), not refused.
 */
static bool sink_must_wait(const struct sink_session *s, enum sink_verb v)
{
	if (v == SINK_V_QUIT || v == SINK_V_STARTTLS || v == SINK_V_BDAT)
		return false;
	if (!s->p->pipelining)
		return true;
	return v == SINK_V_EHLO || v == SINK_V_HELO || v == SINK_V_DATA ||
	       v == SINK_V_AUTH;
}

/* sink_command - one complete command line (line end removed) */
static void sink_command(struct sink_session *s, const char *line,
			 size_t len)
{
	const struct sink_rule *r;
	enum sink_verb v = SINK_V_UNKNOWN;
	/* the line is the read buffer's bytes: no NUL after it */
	const char *space = memchr(line, ' ', len);
	size_t vlen = space != NULL ? (size_t)(space - line) : len, alen;
	const char *arg;

	if (s->state == SINK_S_AUTH) {
		if (s->waiting) {
			sink_improper(s, "an AUTH response");
			return;
		}
		sink_auth_line(s, line, len);
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		sink_reply(s, 500, "5.5.2", "NUL in command");
		return;
	}
	v = sink_verb_of(line, vlen);
	arg = line + vlen;
	alen = len - vlen;
	while (alen > 0 && *arg == ' ') {
		arg++;
		alen--;
	}
	while (alen > 0 && arg[alen - 1] == ' ')
		alen--;
	if (s->waiting && sink_must_wait(s, v)) {
		char what[16];

		snprintf(what, sizeof(what), "%.*s", (int)(vlen > 8 ? 8 : vlen),
			 line);
		for (char *c = what; *c; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 'a' + 'A');
		sink_improper(s, v == SINK_V_UNKNOWN ? "a command" : what);
		return;
	}
	if (s->state == SINK_S_REJECTED && v != SINK_V_QUIT) {
		sink_reply(s, 503, "5.5.1", "Bad sequence of commands: only "
			   "QUIT now");
		return;
	}
	switch (v) {
	case SINK_V_EHLO:
	case SINK_V_HELO:
		sink_cmd_ehlo(s, arg, alen, v == SINK_V_EHLO);
		break;
	case SINK_V_STARTTLS:
		sink_cmd_starttls(s, alen);
		break;
	case SINK_V_AUTH:
		sink_cmd_auth(s, arg, alen);
		break;
	case SINK_V_MAIL:
		sink_cmd_mail(s, arg, alen);
		break;
	case SINK_V_RCPT:
		sink_cmd_rcpt(s, arg, alen);
		break;
	case SINK_V_DATA:
		sink_cmd_data(s, alen);
		break;
	case SINK_V_BDAT:
		sink_cmd_bdat(s, arg, alen);
		break;
	case SINK_V_RSET:
		if (alen > 0) {
			sink_reply(s, 501, "5.5.4", "Syntax: RSET");
			break;
		}
		sink_txn_end(s, "rset");
		r = sink_match(s, SINK_CMD_RSET, NULL, 0);
		sink_answer(s, r, 250, "2.0.0", "Ok");
		break;
	case SINK_V_NOOP:
		r = sink_match(s, SINK_CMD_NOOP, NULL, 0);
		sink_answer(s, r, 250, "2.0.0", "Ok");
		break;
	case SINK_V_QUIT:
		sink_txn_end(s, "quit");
		r = sink_match(s, SINK_CMD_QUIT, NULL, 0);
		if (sink_answer(s, r, 221, "2.0.0", "Bye") != 0)
			sink_close(s);
		break;
	case SINK_V_VRFY:
		sink_reply(s, 252, "2.1.5", "Cannot VRFY user, but will accept "
			   "the message");
		break;
	case SINK_V_HELP:
		sink_reply(s, 214, "2.0.0", "volley sink: a test SMTP server");
		break;
	case SINK_V_NOTIMPL:
		sink_reply(s, 502, "5.5.1", "Command not implemented");
		break;
	case SINK_V_UNKNOWN:
		sink_reply(s, 500, "5.5.2", "Command unrecognized");
		break;
	}
}

/* sink_line_max - the longest command line allowed at p */
static size_t sink_line_max(const struct sink_session *s, const char *p,
			    size_t len)
{
	if (s->state == SINK_S_AUTH || sink_prefix(p, len, "AUTH "))
		return SINK_AUTH_LINE_MAX;
	return SINK_LINE_MAX;
}

enum sink_action sink_session_feed(struct sink_session *s, const char *data,
				   size_t len, size_t *used)
{
	size_t off = 0;

	s->act = SINK_MORE;
	while (s->act == SINK_MORE) {
		const char *line, *lf;
		size_t n, max;

		switch (s->state) {
		case SINK_S_CLOSED:
			goto out;
		case SINK_S_TLS:
			s->act = SINK_STARTTLS;
			goto out;
		case SINK_S_STORING:
			s->act = SINK_STORE;
			goto out;
		case SINK_S_HUNG:
			off = len;
			goto out;
		case SINK_S_DATA:
			if (off == len)
				goto out;
			off += sink_data_content(s, data + off, len - off);
			continue;
		case SINK_S_BDAT:
			if (off == len)
				goto out;
			off += sink_bdat_content(s, data + off, len - off);
			continue;
		default:
			break;
		}
		if (off == len)
			break;
		line = data + off;
		lf = memchr(line, '\n', len - off);
		max = sink_line_max(s, line, len - off);
		if (lf == NULL) {
			/* keep a partial line for next time, unless it
			 * is already too long to be a command */
			if (s->skipping || len - off > max + 2) {
				s->skipping = true;
				off = len;
			}
			break;
		}
		n = (size_t)(lf - line);
		off += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (s->skipping || n > max) {
			s->skipping = false;
			sink_reply(s, 500, "5.5.2", "Line too long");
			continue;
		}
		s->waiting = off < len;
		sink_command(s, line, n);
	}
out:
	*used = off;
	return sink_act_now(s);
}

void sink_session_output(const struct sink_session *s, const char **data,
			 size_t *len)
{
	*data = buf_cstr(&s->out);
	*len = s->holding ? s->hold : s->out.len;
}

void sink_session_sent(struct sink_session *s)
{
	if (!s->holding) {
		buf_reset(&s->out);
		return;
	}
	memmove(s->out.data, s->out.data + s->hold, s->out.len - s->hold);
	buf_truncate(&s->out, s->out.len - s->hold);
	s->hold = 0;
}

unsigned sink_session_delay_ms(const struct sink_session *s)
{
	return s->delay_ms;
}

void sink_session_delay_done(struct sink_session *s)
{
	s->holding = false;
	s->hold = 0;
	s->delay_ms = 0;
	s->act = SINK_MORE;
}

void sink_session_message(const struct sink_session *s, const char **data,
			  size_t *len)
{
	*data = buf_cstr(&s->msg);
	*len = s->msg.len;
}

unsigned sink_session_msgno(const struct sink_session *s)
{
	return s->mails;
}

enum sink_action sink_session_stored(struct sink_session *s,
				     const char *name)
{
	s->act = SINK_MORE;
	if (s->state != SINK_S_STORING)
		return sink_act_now(s);
	s->state = SINK_S_MAIL;
	if (name == NULL) {
		sink_reply(s, 451, "4.3.0", "Could not store the message");
		s->final_code = 451;
		s->stats.refused++;
		sink_txn_end(s, "eod");
	} else {
		sink_finish(s, name);
	}
	return sink_act_now(s);
}

void sink_session_tls_done(struct sink_session *s)
{
	/* RFC 3207 4.2: forget everything the client said before */
	s->tls = true;
	s->greeted = false;
	s->esmtp = false;
	s->authed = false;
	s->skipping = false;
	buf_reset(&s->helo);
	sink_txn_reset(s);
	s->state = SINK_S_INIT;
	s->act = SINK_MORE;
}

void sink_session_records(const struct sink_session *s, const char **data,
			  size_t *len)
{
	*data = buf_cstr(&s->records);
	*len = s->records.len;
}

void sink_session_records_taken(struct sink_session *s)
{
	buf_reset(&s->records);
}

void sink_session_end(struct sink_session *s)
{
	sink_txn_end(s, "closed");
	s->state = SINK_S_CLOSED;
}

const struct sink_stats *sink_session_stats(const struct sink_session *s)
{
	return &s->stats;
}
