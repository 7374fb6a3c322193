/*
 * smtp_session - the client side of one SMTP connection, without I/O (see
 * smtp_session.h).
 *
 * Two queues drive everything:
 *   - outstanding commands, oldest first: each reply is matched to the
 *     oldest and checked against its verb (smtp_session_on_reply);
 *   - submitted messages (slots), oldest first, each with a cursor over
 *     its commands: MAIL, a RCPT per recipient, DATA, then its body.
 *
 * A slot is one transaction.  A message with more recipients than the
 * server takes in one (its LIMITS RCPTMAX, or a 452 "too many
 * recipients" after some were accepted, RFC 5321 4.5.3.1.10) goes on in
 * another: when its transaction ends, the slot comes back at the tail
 * of the queue with the recipients still to do.
 *
 * The invariant that makes pipelining across messages safe: at most one
 * message has commands written whose DATA reply has not come yet, and
 * the next message's MAIL is written only after that message's body.  So
 * DATA always ends a group, as RFC 2920 3.1 requires, and the body with
 * its end of data may lead the next group, as 3.1 allows.  BDAT needs no
 * go-ahead, so with CHUNKING a window of whole messages (commands and
 * body) is written ahead of their replies.
 */
#include "smtp_session.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "dotstuff.h"
#include "xalloc.h"

/* the most of a body converted at once: see smtp_session.body */
#define SMTP_BODY_PIECE (256 * 1024)
/*
 * A body that needs no stuffing (smtp_message.stuffed) at least this
 * large is written from the message itself, not copied: a write of its
 * own costs about what copying this much does.
 */
#define SMTP_BODY_DIRECT (64 * 1024)

/*
 * The session's states.  smtp_set_state is their one writer; with
 * params.trace_states it puts each change in the transcript as
 * "#: EHLO -> READY".
 */
enum smtp_state {
	SMTP_S_GREETING,	/* waiting for 220 */
	SMTP_S_EHLO,		/* EHLO (or HELO) sent */
	SMTP_S_STARTTLS,	/* STARTTLS sent */
	SMTP_S_HANDSHAKE,	/* 220 came: the transport does TLS now */
	SMTP_S_AUTH,		/* AUTH under way */
	SMTP_S_READY,		/* greeted: transactions */
	SMTP_S_QUIT,		/* QUIT sent */
	SMTP_S_CLOSED,		/* QUIT answered */
	SMTP_S_FAILED,		/* over: FAILED was reported */
	SMTP_S_COUNT
};

static const char *const smtp_state_names[SMTP_S_COUNT] = {
	[SMTP_S_GREETING] = "GREETING", [SMTP_S_EHLO] = "EHLO",
	[SMTP_S_STARTTLS] = "STARTTLS", [SMTP_S_HANDSHAKE] = "HANDSHAKE",
	[SMTP_S_AUTH] = "AUTH", [SMTP_S_READY] = "READY",
	[SMTP_S_QUIT] = "QUIT", [SMTP_S_CLOSED] = "CLOSED",
	[SMTP_S_FAILED] = "FAILED",
};

enum smtp_verb {
	SMTP_V_GREETING, SMTP_V_EHLO, SMTP_V_HELO, SMTP_V_STARTTLS,
	SMTP_V_AUTH,		/* AUTH with an initial response */
	SMTP_V_AUTH_LOGIN,	/* AUTH LOGIN: 334 asks for the user name */
	SMTP_V_AUTH_USER,	/* 334 asks for the password */
	SMTP_V_AUTH_PASS,	/* 235 at last */
	SMTP_V_AUTH_CANCEL,	/* "*": a challenge volley cannot read */
	SMTP_V_MAIL, SMTP_V_RCPT, SMTP_V_DATA, SMTP_V_DOT,
	SMTP_V_BDAT,		/* BDAT n LAST: the end of data */
	SMTP_V_RSET, SMTP_V_QUIT,
};

struct smtp_cmd {
	enum smtp_verb verb;
	size_t slot;		/* MAIL, RCPT, DATA, DOT: the message's slot */
	size_t rcpt;		/* RCPT: the recipient's index */
	/* the output stream's length once the command is in it: a reply
	 * is only for a command all of whose bytes were sent */
	uint64_t end;
};

/* A set of a message's recipients, by index. */
struct smtp_rcpt_set {
	uint64_t w[(SMTP_SESSION_MAX_RCPTS + 63) / 64];
};

/* What a transaction writes next. */
enum smtp_slot_step {
	SMTP_SLOT_MAIL,		/* MAIL FROM (after RSET if need be) */
	SMTP_SLOT_RCPT,		/* RCPT TO for recipient rcpt_next */
	SMTP_SLOT_DATA,		/* DATA, or BDAT with the body */
	SMTP_SLOT_WRITTEN,	/* every command is written */
};

struct smtp_slot {
	struct smtp_message m;
	unsigned part;		/* the message's transactions before this */
	struct smtp_rcpt_set in;	/* this transaction's recipients */
	/* recipients for a later transaction: those no transaction took
	 * yet, and those the server had no room for in this one */
	struct smtp_rcpt_set owed;
	bool too_many;		/* the server said so in this transaction */
	enum smtp_slot_step step;
	size_t rcpt_next;	/* SMTP_SLOT_RCPT: the next in "in" */
	bool mail_ok;
	size_t rcpts_ok;
	bool body_written;	/* the body (or a lone ".") is on its way */
	uint64_t data_end;	/* the stream's length once its end of data
				 * is in it: sent that far, the server may
				 * have the message */
	bool empty_body;	/* only "." went: nothing to deliver */
	bool utf8;		/* needs SMTPUTF8 */
	/* MAIL refused (or 503): the reason for every recipient */
	struct smtp_reply failure;
	bool failed;
	bool failure_local;
	/* the first recipient refused: the reason when none was accepted */
	struct smtp_reply rcpt_failure;
	bool rcpt_refused;
	bool rcpt_failure_local;
};

struct smtp_session {
	struct smtp_session_params p;
	enum smtp_state state;
	struct smtp_caps caps;
	bool pipelining;	/* offered and allowed */
	bool chunking;		/* BDAT: offered, allowed, and pipelining */
	/*
	 * A message's commands may go before the previous message's end of
	 * data is answered - only when replies carry RFC 3463 codes, which
	 * tell MAIL's "250 2.1.0" from the end of data's "250 2.0.0": with
	 * bare "250"s a server answering out of order could make a message
	 * look sent on its neighbour's reply.
	 */
	bool overlap;
	unsigned window;	/* messages written ahead with BDAT */
	unsigned max_messages;	/* min(params, MAILMAX); 0: no limit */
	/* recipients per transaction: RCPTMAX, or what the server took
	 * before it said "too many"; 0: no limit known */
	size_t rcpt_limit;
	/* recipients in the slots' owed sets: transactions still owed */
	size_t owed_rcpts;
	unsigned transactions;	/* begun in this session */
	bool out_of_step;	/* why it failed: a reply did not fit */
	bool malformed;		/* why it failed: not a reply at all */
	bool out_secret;	/* s->out holds credentials: wipe it */
	unsigned long replies;	/* parsed so far: progress, for timeouts */
	bool secure;		/* TLS is up (implicit, or after STARTTLS) */
	bool need_rset;		/* a transaction failed: RSET before MAIL */
	bool quit_asked;
	/* the command a 421 that ends the session answered (FAILED's step) */
	enum smtp_step closing_step;
	/* another reply that ends it, carried by FAILED (a 530) */
	const struct smtp_reply *closing_reply;
	unsigned auth_tried;	/* SMTP_AUTH_* mechanisms tried */

	struct smtp_reply_parser parser;
	struct buf out;
	size_t out_sent;
	uint64_t out_base;	/* bytes sent from earlier fills of out */

	struct smtp_cmd *cmds;	/* ring */
	size_t cmd_cap, cmd_head, ncmds;

	struct smtp_slot slots[SMTP_SESSION_WINDOW];	/* ring */
	size_t slot_head, nslots;
	size_t writing;		/* slots whose commands are all written */

	struct smtp_event *events;	/* queue */
	size_t ev_cap, ev_head, nevents;
	struct buf arena;		/* text the events point into */
	/*
	 * A body larger than SMTP_BODY_PIECE goes out a piece at a time
	 * from the caller's message, converted as it goes (dotstuff_step):
	 * a connection holds one piece, not a second copy of the message.
	 * A large body that needs no stuffing (direct) is not copied at
	 * all: smtp_session_output hands out the message's own bytes once
	 * s->out is sent, and its "." line follows.  While one is under
	 * way nothing else is written.
	 */
	struct {
		bool active;
		bool direct;
		const char *data;
		size_t len;
		bool stuff;		/* DATA (dots doubled, "." line) */
		struct dotstuff_pos pos;
	} body;
	size_t body_bytes;		/* the last body's, for the transcript */
	struct buf transcript;		/* "C: " and "#: " lines, if asked */
	size_t traced;			/* s->out up to here is in it */
	char error[256];
};

/* --- small helpers ----------------------------------------------------- */

const char *smtp_step_name(enum smtp_step step)
{
	static const char *const names[] = {
		[SMTP_STEP_NONE] = "none", [SMTP_STEP_SESSION] = "session",
		[SMTP_STEP_MAIL] = "mail", [SMTP_STEP_RCPT] = "rcpt",
		[SMTP_STEP_DATA] = "data", [SMTP_STEP_END] = "end",
	};

	return (unsigned)step < sizeof(names) / sizeof(names[0]) ?
	       names[step] : "?";
}

/* smtp_verb_step - the step of a transaction a command is */
static enum smtp_step smtp_verb_step(enum smtp_verb verb)
{
	switch (verb) {
	case SMTP_V_MAIL:
		return SMTP_STEP_MAIL;
	case SMTP_V_RCPT:
		return SMTP_STEP_RCPT;
	case SMTP_V_DATA:
		return SMTP_STEP_DATA;
	case SMTP_V_DOT:
	case SMTP_V_BDAT:
		return SMTP_STEP_END;
	default:
		return SMTP_STEP_SESSION;
	}
}

static struct smtp_slot *smtp_slot_at(struct smtp_session *s, size_t i)
{
	return &s->slots[(s->slot_head + i) % SMTP_SESSION_WINDOW];
}

static size_t smtp_slot_index(struct smtp_session *s,
			      const struct smtp_slot *slot)
{
	return (size_t)(slot - s->slots);
}

static void smtp_rcpt_set_add(struct smtp_rcpt_set *set, size_t i)
{
	set->w[i / 64] |= UINT64_C(1) << (i % 64);
}

static void smtp_rcpt_set_del(struct smtp_rcpt_set *set, size_t i)
{
	set->w[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

/* smtp_rcpt_set_count - members below n (the words past them are not
 * cleared for a message with fewer recipients: never read) */
static size_t smtp_rcpt_set_count(const struct smtp_rcpt_set *set, size_t n)
{
	size_t count = 0;

	for (size_t w = 0; w < (n + 63) / 64; w++)
		count += (size_t)__builtin_popcountll(set->w[w]);
	return count;
}

/* smtp_rcpt_set_next - the first member at or after i, or n if none
 * below n */
static size_t smtp_rcpt_set_next(const struct smtp_rcpt_set *set, size_t i,
				 size_t n)
{
	while (i < n) {
		uint64_t w = set->w[i / 64] >> (i % 64);

		if (w != 0)
			i += (size_t)__builtin_ctzll(w);
		else
			i = (i / 64 + 1) * 64;
		if (i < n && (set->w[i / 64] >> (i % 64) & 1))
			return i;
	}
	return n;
}

/*
 * smtp_ring_grow - double a full ring of n elements of size elem,
 * unrolled oldest first into the new array (head becomes 0).  Rings grow
 * to the largest pipeline a connection has seen, then stay.
 */
static void *smtp_ring_grow(void *ring, size_t *cap, size_t *head, size_t n,
			    size_t elem)
{
	size_t newcap = *cap ? *cap * 2 : 64;
	char *fresh = xmalloc(newcap * elem);

	for (size_t i = 0; i < n; i++)
		memcpy(fresh + i * elem,
		       (char *)ring + ((*head + i) % *cap) * elem, elem);
	free(ring);
	*cap = newcap;
	*head = 0;
	return fresh;
}

/*
 * smtp_trace_cmd - the command just written (s->out from s->traced on)
 * into the transcript, with what must not be shown replaced.
 */
static void smtp_trace_cmd(struct smtp_session *s, enum smtp_verb verb)
{
	const char *line = s->out.data + s->traced;
	size_t len = s->out.len - s->traced;
	const char *eol = memchr(line, '\r', len);
	size_t first = eol != NULL ? (size_t)(eol - line) : len;

	switch (verb) {
	case SMTP_V_AUTH: {
		/* "AUTH PLAIN <secret>": the verb and mechanism only */
		const char *sp = first > 5 ? memchr(line + 5, ' ', first - 5) :
					     NULL;

		buf_printf(&s->transcript, "C: %.*s ****\n",
			   (int)(sp != NULL ? (size_t)(sp - line) : first),
			   line);
		break;
	}
	case SMTP_V_AUTH_USER:
	case SMTP_V_AUTH_PASS:
		buf_append_str(&s->transcript, "C: ****\n");
		break;
	case SMTP_V_DOT:
		buf_printf(&s->transcript, "C: <message, %zu bytes, then "
			   "\".\">\n", s->body_bytes - 3);
		break;
	case SMTP_V_BDAT:
		buf_printf(&s->transcript, "C: %.*s\nC: <message, %zu "
			   "bytes>\n", (int)first, line, s->body_bytes);
		break;
	default:
		buf_printf(&s->transcript, "C: %.*s\n", (int)first, line);
		break;
	}
	s->traced = s->out.len;
}

/*
 * smtp_push_cmd_ending - a command written, whose bytes end at stream
 * offset end (a body going out in pieces ends past what s->out holds)
 */
static void smtp_push_cmd_ending(struct smtp_session *s, enum smtp_verb verb,
				 size_t slot, size_t rcpt, uint64_t end)
{
	if (s->p.transcript && verb != SMTP_V_GREETING)
		smtp_trace_cmd(s, verb);
	if (s->ncmds == s->cmd_cap)
		s->cmds = smtp_ring_grow(s->cmds, &s->cmd_cap, &s->cmd_head,
					 s->ncmds, sizeof(*s->cmds));
	s->cmds[(s->cmd_head + s->ncmds++) % s->cmd_cap] =
		(struct smtp_cmd){ verb, slot, rcpt, end };
}

static void smtp_push_cmd(struct smtp_session *s, enum smtp_verb verb,
			  size_t slot, size_t rcpt)
{
	smtp_push_cmd_ending(s, verb, slot, rcpt, s->out_base + s->out.len);
}

/*
 * smtp_write_body - the slot's message as DATA content (stuff) or BDAT
 * content, and its end-of-data command: whole into s->out when small,
 * else its first piece, the rest as s->out drains (smtp_session_sent),
 * or, large and needing no stuffing, from the message itself
 */
static void smtp_write_body(struct smtp_session *s, struct smtp_slot *slot,
			    enum smtp_verb verb, bool stuff)
{
	uint64_t start = s->out_base + s->out.len;

	if (slot->m.stuffed && slot->m.len >= SMTP_BODY_DIRECT) {
		s->body_bytes = slot->m.len + (stuff ? 3 : 0);
		s->body.active = true;
		s->body.direct = true;
		s->body.data = slot->m.data;
		s->body.len = slot->m.len;
		s->body.stuff = stuff;
		memset(&s->body.pos, 0, sizeof(s->body.pos));
	} else if (slot->m.stuffed && slot->m.len <= SMTP_BODY_PIECE) {
		/* nothing to change: one copy, no scan */
		buf_append(&s->out, slot->m.data, slot->m.len);
		if (stuff)
			buf_append(&s->out, ".\r\n", 3);
		s->body_bytes = (size_t)(s->out_base + s->out.len - start);
	} else if (slot->m.len <= SMTP_BODY_PIECE) {
		if (stuff)
			dotstuff_data(&s->out, slot->m.data, slot->m.len);
		else
			dotstuff_crlf(&s->out, slot->m.data, slot->m.len);
		s->body_bytes = (size_t)(s->out_base + s->out.len - start);
	} else {
		s->body_bytes = dotstuff_len(slot->m.data, slot->m.len, stuff);
		s->body.active = true;
		s->body.data = slot->m.data;
		s->body.len = slot->m.len;
		s->body.stuff = stuff;
		memset(&s->body.pos, 0, sizeof(s->body.pos));
		dotstuff_step(&s->out, s->body.data, s->body.len, stuff,
			      &s->body.pos, SMTP_BODY_PIECE);
		s->body.active = !s->body.pos.done;
	}
	slot->body_written = true;
	slot->data_end = start + s->body_bytes;
	smtp_push_cmd_ending(s, verb, smtp_slot_index(s, slot), 0,
			     slot->data_end);
}

/*
 * smtp_arena_str - keep a copy of str for an event; returns its offset
 * plus one, so that no string is ever at "offset" 0, which reads as NULL.
 */
static size_t smtp_arena_str(struct smtp_session *s, const char *str)
{
	size_t off = s->arena.len;

	buf_append(&s->arena, str, strlen(str) + 1);
	return off + 1;
}

/* smtp_arena_ptr - the string an event field's offset names, or NULL */
static const char *smtp_arena_ptr(struct smtp_session *s, const char *field)
{
	uintptr_t off = (uintptr_t)field;

	return off != 0 ? s->arena.data + off - 1 : NULL;
}

/*
 * smtp_event_push - queue an event.  Its strings are kept as offsets into
 * the arena until handed out, since the arena may move as it grows.
 */
static void smtp_event_push(struct smtp_session *s, enum smtp_event_kind kind,
			    void *ctx, size_t rcpt, const struct smtp_reply *r,
			    enum smtp_step step, bool local, bool sent,
			    const char *error)
{
	struct smtp_event *ev;

	if (s->nevents == s->ev_cap)
		s->events = smtp_ring_grow(s->events, &s->ev_cap, &s->ev_head,
					   s->nevents, sizeof(*s->events));
	ev = &s->events[(s->ev_head + s->nevents++) % s->ev_cap];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->ctx = ctx;
	ev->rcpt = rcpt;
	ev->step = step;
	ev->local = local;
	ev->sent = sent;
	if (r != NULL) {
		ev->code = r->code;
		ev->enhanced = (const char *)(uintptr_t)smtp_arena_str(s,
							r->enhanced);
		ev->text = (const char *)(uintptr_t)smtp_arena_str(s,
						buf_cstr(&r->text));
	}
	if (error != NULL)
		ev->error = (const char *)(uintptr_t)smtp_arena_str(s, error);
}

/* smtp_reply_copy - keep a reply (for a message's failure) */
static void smtp_reply_copy(struct smtp_reply *dst, const struct smtp_reply *r)
{
	dst->code = r->code;
	memcpy(dst->enhanced, r->enhanced, sizeof(dst->enhanced));
	buf_reset(&dst->text);
	buf_append(&dst->text, r->text.data ? r->text.data : "",
		   r->text.len);
	dst->lines = r->lines;
}

/* smtp_local_reply - a reply volley makes up, e.g. for a lost session */
static void smtp_local_reply(struct smtp_reply *r, int code,
			     const char *enhanced, const char *text)
{
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	buf_reset(&r->text);
	buf_append_str(&r->text, text);
	r->lines = 1;
}

/* smtp_set_state - the one writer of s->state, tracing the change */
static void smtp_set_state(struct smtp_session *s, enum smtp_state to)
{
	if (s->p.trace_states && to != s->state)
		buf_printf(&s->transcript, "#: %s -> %s\n",
			   smtp_state_names[s->state], smtp_state_names[to]);
	s->state = to;
}

const char *smtp_session_state(const struct smtp_session *s)
{
	return smtp_state_names[s->state];
}

/* --- writing commands -------------------------------------------------- */

/* smtp_write_line - inline, so a literal verb's length is known */
static inline void smtp_write_line(struct smtp_session *s, const char *verb,
				   const char *arg)
{
	buf_append(&s->out, verb, strlen(verb));
	buf_append(&s->out, arg, strlen(arg));
	buf_append_lit(&s->out, "\r\n");
}

/* smtp_has_8bit - a byte outside ASCII in str */
static bool smtp_has_8bit(const char *str)
{
	for (; *str != '\0'; str++) {
		if ((unsigned char)*str >= 0x80)
			return true;
	}
	return false;
}

/* smtp_bad_bytes - a control byte (CR, LF, NUL ...) in str */
static bool smtp_bad_bytes(const char *str)
{
	for (; *str != '\0'; str++) {
		if ((unsigned char)*str < 0x20 || *str == 0x7f)
			return true;
	}
	return false;
}

/*
 * smtp_rcpt_refusal - why recipient i of m cannot be sent in this
 * session, as the reply a server would give, or NULL: a control byte
 * (which would end the command line and start another), or a UTF-8
 * address the server cannot take.
 */
static const char *smtp_rcpt_refusal(const struct smtp_session *s,
				     const struct smtp_message *m, size_t i,
				     int *code, const char **enhanced)
{
	if (smtp_bad_bytes(m->rcpts[i])) {
		*code = 553;
		*enhanced = "5.1.3";
		return "the address holds a control character";
	}
	if (!s->caps.smtputf8 && smtp_has_8bit(m->rcpts[i])) {
		*code = 553;
		*enhanced = "5.6.7";
		return "the address needs SMTPUTF8, which the server does not "
		       "offer";
	}
	return NULL;
}

/* smtp_rcpt_failed - keep the first refusal of a message's recipient */
static void smtp_rcpt_failed(struct smtp_slot *slot,
			     const struct smtp_reply *r, bool local)
{
	if (slot->rcpt_refused)
		return;
	smtp_reply_copy(&slot->rcpt_failure, r);
	slot->rcpt_refused = true;
	slot->rcpt_failure_local = local;
}

/* smtp_rcpt_refuse_local - the RCPT event for a recipient never sent */
static void smtp_rcpt_refuse_local(struct smtp_session *s,
				   struct smtp_slot *slot, size_t i,
				   int code, const char *enhanced,
				   const char *why)
{
	struct smtp_reply r = { 0 };

	smtp_local_reply(&r, code, enhanced, why);
	smtp_event_push(s, SMTP_EV_RCPT, slot->m.ctx, i, &r, SMTP_STEP_NONE,
			true, false, NULL);
	smtp_rcpt_failed(slot, &r, true);
	buf_free(&r.text);
}

/* smtp_write_mail - MAIL FROM with the parameters the message needs */
static void smtp_write_mail(struct smtp_session *s, const struct smtp_slot *slot)
{
	buf_append_lit(&s->out, "MAIL FROM:<");
	buf_append_str(&s->out, slot->m.from);
	buf_append_lit(&s->out, ">");
	if (s->caps.size) {
		buf_append_lit(&s->out, " SIZE=");
		buf_append_u64(&s->out, slot->m.len);
	}
	if (slot->utf8)
		buf_append_lit(&s->out, " SMTPUTF8");
	else if (slot->m.eightbit)
		buf_append_lit(&s->out, " BODY=8BITMIME");
	buf_append_lit(&s->out, "\r\n");
}

/* smtp_write_bdat - the whole body as one last chunk (RFC 3030) */
static void smtp_write_bdat(struct smtp_session *s, struct smtp_slot *slot)
{
	size_t n = slot->m.stuffed ? slot->m.len :
		   dotstuff_len(slot->m.data, slot->m.len, false);

	buf_append_lit(&s->out, "BDAT ");
	buf_append_u64(&s->out, n);
	buf_append_lit(&s->out, " LAST\r\n");
	smtp_write_body(s, slot, SMTP_V_BDAT, false);
}

enum smtp_written {
	SMTP_WROTE_ALL,		/* every command, DATA or BDAT last */
	SMTP_WROTE_ONE,		/* lock-step: one, wait for its reply */
	SMTP_WROTE_NONE,	/* lock-step: a recipient refused locally */
};

/*
 * smtp_write_commands - write the next command of the message being
 * written, or all of them when pipelining.  A recipient the server
 * cannot take is reported at once and never sent.
 */
static enum smtp_written smtp_write_commands(struct smtp_session *s,
					     struct smtp_slot *slot)
{
	size_t idx = smtp_slot_index(s, slot);
	size_t n = slot->m.nrcpts;

	do {
		switch (slot->step) {
		case SMTP_SLOT_MAIL:
			/*
			 * With BDAT, this MAIL goes before the messages ahead
			 * of it are answered; if one of them fails, the server
			 * may still hold its transaction (RFC 3030 has it
			 * discard chunks until told otherwise), and a bare MAIL
			 * would get 503.  A pipelined RSET costs no round trip.
			 */
			if (s->need_rset || (s->chunking && s->writing > 0)) {
				smtp_write_line(s, "RSET", "");
				smtp_push_cmd(s, SMTP_V_RSET, idx, 0);
				s->need_rset = false;
				/* Lock-step: MAIL waits for RSET's reply. */
				if (!s->pipelining)
					return SMTP_WROTE_ONE;
			}
			smtp_write_mail(s, slot);
			smtp_push_cmd(s, SMTP_V_MAIL, idx, 0);
			slot->rcpt_next = smtp_rcpt_set_next(&slot->in, 0, n);
			slot->step = slot->rcpt_next < n ? SMTP_SLOT_RCPT :
				     SMTP_SLOT_DATA;
			break;
		case SMTP_SLOT_RCPT: {
			size_t i = slot->rcpt_next;
			const char *enhanced, *why;
			int code;

			slot->rcpt_next = smtp_rcpt_set_next(&slot->in, i + 1,
							     n);
			if (slot->rcpt_next >= n)
				slot->step = SMTP_SLOT_DATA;
			/* Lock-step, told "too many": the rest wait for the
			 * next transaction without being asked about. */
			if (slot->too_many) {
				smtp_rcpt_set_del(&slot->in, i);
				smtp_rcpt_set_add(&slot->owed, i);
				s->owed_rcpts++;
				continue;
			}
			why = smtp_rcpt_refusal(s, &slot->m, i, &code,
						&enhanced);
			if (why != NULL) {
				smtp_rcpt_refuse_local(s, slot, i, code,
						       enhanced, why);
				if (!s->pipelining)
					return SMTP_WROTE_NONE;
				continue;
			}
			buf_append_lit(&s->out, "RCPT TO:<");
			buf_append_str(&s->out, slot->m.rcpts[i]);
			buf_append_lit(&s->out, ">\r\n");
			smtp_push_cmd(s, SMTP_V_RCPT, idx, i);
			break;
		}
		case SMTP_SLOT_DATA:
			if (s->chunking) {
				smtp_write_bdat(s, slot);
			} else {
				smtp_write_line(s, "DATA", "");
				smtp_push_cmd(s, SMTP_V_DATA, idx, 0);
			}
			slot->step = SMTP_SLOT_WRITTEN;
			break;
		case SMTP_SLOT_WRITTEN:
			break;
		}
	} while ((s->pipelining || slot->too_many) &&
		 slot->step != SMTP_SLOT_WRITTEN);
	return slot->step == SMTP_SLOT_WRITTEN ? SMTP_WROTE_ALL :
	       SMTP_WROTE_ONE;
}

static void smtp_slot_done(struct smtp_session *s, struct smtp_slot *slot,
			   const struct smtp_reply *r, enum smtp_step step,
			   bool sent, bool local);
static void smtp_slot_fail(struct smtp_session *s, struct smtp_slot *slot,
			   const struct smtp_reply *r, enum smtp_step step);

/*
 * smtp_lockstep_verdict - without pipelining, volley sees each reply
 * before the next command: stop a message whose MAIL was refused, and
 * send no DATA when no recipient was accepted.  Returns true if the
 * message was finished here.
 */
static bool smtp_lockstep_verdict(struct smtp_session *s,
				  struct smtp_slot *slot)
{
	size_t n = slot->m.nrcpts;

	if (slot->step != SMTP_SLOT_MAIL && !slot->mail_ok) {
		/* As when pipelined: every recipient hears why. */
		for (size_t i = smtp_rcpt_set_next(&slot->in, 0, n); i < n;
		     i = smtp_rcpt_set_next(&slot->in, i + 1, n))
			smtp_event_push(s, SMTP_EV_RCPT, slot->m.ctx, i,
					&slot->failure, SMTP_STEP_MAIL,
					slot->failure_local, false, NULL);
		smtp_slot_fail(s, slot, NULL, SMTP_STEP_NONE);
		return true;
	}
	if (slot->step == SMTP_SLOT_DATA && slot->rcpts_ok == 0) {
		smtp_slot_fail(s, slot, NULL, SMTP_STEP_NONE);
		return true;
	}
	return false;
}

/*
 * smtp_pump - write what may be written now: the next message's commands
 * (pipelined: once no other message waits for its 354; lock-step: once
 * nothing is outstanding), and QUIT once everything is done.
 */
static void smtp_pump(struct smtp_session *s)
{
	/* a body going out in pieces: what follows waits for its end */
	if (s->body.active)
		return;
	while (s->state == SMTP_S_READY && s->writing < s->nslots) {
		struct smtp_slot *slot = smtp_slot_at(s, s->writing);

		enum smtp_written w;

		if (s->chunking) {
			/* Whole messages go ahead, up to the window. */
			if (s->writing >= (s->overlap ? s->window : 1))
				return;
		} else if (s->pipelining) {
			/* The message before must have its body out, or be
			 * answered when messages may not overlap. */
			if (s->writing > 0 &&
			    (!s->overlap ||
			     !smtp_slot_at(s, s->writing - 1)->body_written))
				return;
		} else {
			if (s->ncmds > 0)
				return;
			if (smtp_lockstep_verdict(s, slot))
				continue;
		}
		w = smtp_write_commands(s, slot);
		if (w == SMTP_WROTE_ONE)
			return;
		if (w == SMTP_WROTE_ALL)
			s->writing++;
		/*
		 * That message's BDAT body is large (s->body): the next
		 * message waits for its end too, or it would take s->body
		 * and this body's bytes would never be sent.
		 */
		if (s->body.active)
			return;
	}
	if (s->state == SMTP_S_READY && s->quit_asked && s->nslots == 0 &&
	    s->ncmds == 0) {
		smtp_write_line(s, "QUIT", "");
		smtp_push_cmd(s, SMTP_V_QUIT, 0, 0);
		smtp_set_state(s, SMTP_S_QUIT);
	}
}

/* --- finishing messages and sessions ---------------------------------- */

/*
 * smtp_slot_begin - the slot's next transaction: up to rcpt_limit of the
 * recipients still to do, from MAIL on
 */
static void smtp_slot_begin(struct smtp_session *s, struct smtp_slot *slot)
{
	size_t n = slot->m.nrcpts, took = 0;

	/* the words a message of n recipients can use (one, mostly) */
	memset(&slot->in, 0, (n + 63) / 64 * sizeof(slot->in.w[0]));
	for (size_t i = smtp_rcpt_set_next(&slot->owed, 0, n);
	     i < n && (s->rcpt_limit == 0 || took < s->rcpt_limit);
	     i = smtp_rcpt_set_next(&slot->owed, i + 1, n)) {
		smtp_rcpt_set_del(&slot->owed, i);
		smtp_rcpt_set_add(&slot->in, i);
		took++;
	}
	s->owed_rcpts -= took;
	slot->too_many = false;
	slot->step = SMTP_SLOT_MAIL;
	slot->rcpt_next = 0;
	slot->mail_ok = false;
	slot->rcpts_ok = 0;
	slot->body_written = false;
	slot->empty_body = false;
	slot->failed = false;
	slot->failure_local = false;
	slot->rcpt_refused = false;
	slot->rcpt_failure_local = false;
	s->transactions++;
}

/*
 * smtp_slot_done - report the oldest transaction finished and free its
 * slot.  A message with recipients still to do goes on in a new
 * transaction at the tail (its DONE says "more"), unless MAIL was refused
 * (its reason is theirs too) or the session may begin no other
 * transaction (they are deferred).
 */
static void smtp_slot_done(struct smtp_session *s, struct smtp_slot *slot,
			   const struct smtp_reply *r, enum smtp_step step,
			   bool sent, bool local)
{
	size_t n = slot->m.nrcpts;
	size_t left = smtp_rcpt_set_next(&slot->owed, 0, n);
	bool more = left < n && !slot->failed &&
		    (s->max_messages == 0 || s->transactions < s->max_messages);
	struct smtp_slot *next;
	struct smtp_reply none = { 0 };

	if (left < n && !more) {
		s->owed_rcpts -= smtp_rcpt_set_count(&slot->owed, n);
		if (!slot->failed)
			smtp_local_reply(&none, 452, "4.5.3", "the session may "
					 "begin no other transaction (MAILMAX) "
					 "for the rest of the recipients");
		for (size_t i = left; i < n;
		     i = smtp_rcpt_set_next(&slot->owed, i + 1, n))
			smtp_event_push(s, SMTP_EV_RCPT, slot->m.ctx, i,
					slot->failed ? &slot->failure : &none,
					slot->failed ? SMTP_STEP_MAIL :
					SMTP_STEP_NONE,
					slot->failed ? slot->failure_local :
					true, false, NULL);
		buf_free(&none.text);
	}
	/* Replies come in order, so only the oldest slot can finish. */
	smtp_event_push(s, SMTP_EV_DONE, slot->m.ctx, 0, r, step, local, sent,
			NULL);
	s->events[(s->ev_head + s->nevents - 1) % s->ev_cap].more = more;
	if (!sent)
		s->need_rset = true;
	s->slot_head = (s->slot_head + 1) % SMTP_SESSION_WINDOW;
	s->nslots--;
	/* Slots are written in order: a counted one is the oldest. */
	if (s->writing > 0)
		s->writing--;
	if (!more)
		return;
	/* The freed slot may be the tail itself (a full ring): copy what
	 * the next transaction keeps before anything is reset. */
	next = smtp_slot_at(s, s->nslots++);
	if (next != slot) {
		next->m = slot->m;
		next->utf8 = slot->utf8;
		next->owed = slot->owed;
	}
	next->part = slot->part + 1;
	smtp_slot_begin(s, next);
}

/*
 * smtp_slot_fail - the oldest message is not sent; its DONE carries the
 * most telling reason: MAIL's refusal; else, when no recipient was
 * accepted, the first recipient's refusal (a single-recipient message
 * thus ends with exactly what its recipient was told: 550 5.1.1, or a
 * greylisting 451 to retry); else the server's reply r, which answered
 * the command step.
 */
static void smtp_slot_fail(struct smtp_session *s, struct smtp_slot *slot,
			   const struct smtp_reply *r, enum smtp_step step)
{
	struct smtp_reply none = { 0 };

	if (slot->failed) {
		smtp_slot_done(s, slot, &slot->failure, SMTP_STEP_MAIL, false,
			       slot->failure_local);
	} else if (slot->rcpts_ok == 0 && slot->rcpt_refused) {
		smtp_slot_done(s, slot, &slot->rcpt_failure,
			       slot->rcpt_failure_local ? SMTP_STEP_NONE :
			       SMTP_STEP_RCPT, false,
			       slot->rcpt_failure_local);
	} else if (slot->rcpts_ok == 0 || r == NULL) {
		smtp_local_reply(&none, 550, "5.5.1", "no recipient was "
				 "accepted");
		smtp_slot_done(s, slot, &none, SMTP_STEP_NONE, false, true);
		buf_free(&none.text);
	} else {
		smtp_slot_done(s, slot, r, step, false, false);
	}
}

/*
 * smtp_fail - end the session: every unfinished message is reported not
 * sent (with the server's 421 if that is what ended it, else a local
 * 4.4.2), then FAILED.
 */
__attribute__((format(printf, 4, 0)))
static void smtp_vfail(struct smtp_session *s, const struct smtp_reply *r421,
		       bool permanent, const char *fmt, va_list ap)
{
	struct smtp_reply local = { 0 };

	if (s->state == SMTP_S_FAILED || s->state == SMTP_S_CLOSED)
		return;
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	smtp_local_reply(&local, 451, "4.4.2", s->error);
	while (s->nslots > 0) {
		struct smtp_slot *slot = smtp_slot_at(s, 0);

		smtp_event_push(s, SMTP_EV_DONE, slot->m.ctx, 0,
				r421 ? r421 : &local, SMTP_STEP_SESSION,
				r421 == NULL, false, NULL);
		/*
		 * The whole message went and no reply came: the server may
		 * have taken it.  (A 421 is a reply: it took nothing.)
		 */
		s->events[(s->ev_head + s->nevents - 1) % s->ev_cap].in_doubt =
			r421 == NULL && slot->body_written &&
			!slot->empty_body &&
			slot->data_end <= s->out_base + s->out_sent;
		s->slot_head = (s->slot_head + 1) % SMTP_SESSION_WINDOW;
		s->nslots--;
	}
	s->writing = 0;
	s->ncmds = 0;
	s->owed_rcpts = 0;
	s->body.active = false;
	s->body.direct = false;
	buf_reset(&s->out);
	s->out_sent = 0;
	s->traced = 0;
	smtp_event_push(s, SMTP_EV_FAILED, NULL, 0,
			r421 ? r421 : s->closing_reply,
			r421 || s->closing_reply ? s->closing_step :
			SMTP_STEP_NONE, false, false, s->error);
	s->closing_reply = NULL;
	s->events[(s->ev_head + s->nevents - 1) % s->ev_cap].permanent =
		permanent;
	s->events[(s->ev_head + s->nevents - 1) % s->ev_cap].out_of_step =
		s->out_of_step;
	s->events[(s->ev_head + s->nevents - 1) % s->ev_cap].malformed =
		s->malformed;
	smtp_set_state(s, SMTP_S_FAILED);
	buf_free(&local.text);
}

/* smtp_fail - end the session; a retry later may succeed */
__attribute__((format(printf, 3, 4)))
static void smtp_fail(struct smtp_session *s, const struct smtp_reply *r421,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vfail(s, r421, false, fmt, ap);
	va_end(ap);
}

/* smtp_fail_permanent - end the session; retrying cannot help */
__attribute__((format(printf, 2, 3)))
static void smtp_fail_permanent(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vfail(s, NULL, true, fmt, ap);
	va_end(ap);
}

/* --- replies ----------------------------------------------------------- */

static void smtp_on_greeting(struct smtp_session *s, const struct smtp_reply *r)
{
	if (r->code / 100 != 2) {
		s->closing_step = SMTP_STEP_SESSION;
		smtp_fail(s, r->code == 421 ? r : NULL, "the server refused "
			  "the connection: %s", buf_cstr(&r->text));
		return;
	}
	/* RFC 5321 4.2: a greeting is 220; a 250 greets nobody */
	if (r->code != 220) {
		s->malformed = true;
		smtp_fail(s, NULL, "the server greeted with %d, not 220: %s",
			  r->code, buf_cstr(&r->text));
		return;
	}
	buf_append_str(&s->out, "EHLO ");
	buf_append_str(&s->out, s->p.helo_name);
	buf_append_str(&s->out, "\r\n");
	smtp_push_cmd(s, SMTP_V_EHLO, 0, 0);
	smtp_set_state(s, SMTP_S_EHLO);
}

/* smtp_write_auth_line - "VERB base64(data)" CRLF */
static void smtp_write_auth_line(struct smtp_session *s, const char *prefix,
				 const struct buf *data)
{
	buf_append_str(&s->out, prefix);
	base64_encode(&s->out, data->data ? data->data : "", data->len);
	buf_append_str(&s->out, "\r\n");
	s->out_secret = true;
}

/*
 * smtp_auth_next - the best mechanism both sides have that was not tried
 * yet: XOAUTH2 when a token is configured, else PLAIN, else LOGIN (those
 * two only with a password); 0 when none is left
 */
static unsigned smtp_auth_next(const struct smtp_session *s)
{
	unsigned offered = s->caps.auth & ~s->auth_tried;

	if (s->p.xoauth2_token != NULL && (offered & SMTP_AUTH_XOAUTH2))
		return SMTP_AUTH_XOAUTH2;
	if (s->p.password == NULL && s->p.xoauth2_token != NULL)
		return 0;
	if (offered & SMTP_AUTH_PLAIN)
		return SMTP_AUTH_PLAIN;
	if (offered & SMTP_AUTH_LOGIN)
		return SMTP_AUTH_LOGIN;
	return 0;
}

/*
 * smtp_start_auth - AUTH with the best mechanism both sides have (see
 * smtp_auth_next); after a 534 (RFC 4954: this mechanism is too weak)
 * with the next one.
 */
static void smtp_start_auth(struct smtp_session *s)
{
	const char *user = s->p.username;
	const char *pass = s->p.password ? s->p.password : "";
	struct buf b = BUF_INIT;
	unsigned mech;

	if (!s->secure && !s->p.allow_plaintext_auth) {
		smtp_fail_permanent(s, "refusing to send credentials without "
				    "TLS (set allow_plaintext_auth to allow "
				    "it)");
		return;
	}
	if (s->p.xoauth2_token != NULL && !(s->caps.auth & SMTP_AUTH_XOAUTH2) &&
	    s->p.password == NULL) {
		smtp_fail_permanent(s, "an XOAUTH2 token is configured but the "
				    "server does not offer AUTH XOAUTH2");
		return;
	}
	mech = smtp_auth_next(s);
	s->auth_tried |= mech;
	if (mech == 0 && s->auth_tried != 0) {
		smtp_fail_permanent(s, "authentication failed: the server "
				    "found every mechanism volley offered too "
				    "weak (534)");
		return;
	}
	if (mech == SMTP_AUTH_XOAUTH2) {
		buf_printf(&b, "user=%s\001auth=Bearer %s\001\001", user,
			   s->p.xoauth2_token);
		smtp_write_auth_line(s, "AUTH XOAUTH2 ", &b);
		smtp_push_cmd(s, SMTP_V_AUTH, 0, 0);
	} else if (mech == SMTP_AUTH_PLAIN) {
		buf_putc(&b, '\0');
		buf_append_str(&b, user);
		buf_putc(&b, '\0');
		buf_append_str(&b, pass);
		smtp_write_auth_line(s, "AUTH PLAIN ", &b);
		smtp_push_cmd(s, SMTP_V_AUTH, 0, 0);
	} else if (mech == SMTP_AUTH_LOGIN) {
		smtp_write_line(s, "AUTH LOGIN", "");
		smtp_push_cmd(s, SMTP_V_AUTH_LOGIN, 0, 0);
	} else {
		smtp_fail_permanent(s, "the server offers no AUTH mechanism "
				    "volley can use (PLAIN, LOGIN%s)",
				    s->p.xoauth2_token ? ", XOAUTH2" : "");
		buf_free(&b);
		return;
	}
	/* The credentials do not outlive the line that carries them. */
	if (b.data != NULL)
		memset(b.data, 0, b.cap);
	buf_free(&b);
	smtp_set_state(s, SMTP_S_AUTH);
}

/* smtp_ready - greeted, secured and authenticated as asked */
static void smtp_ready(struct smtp_session *s, const struct smtp_reply *r)
{
	s->pipelining = s->p.pipelining && s->caps.pipelining;
	s->chunking = s->pipelining && s->p.chunking && s->caps.chunking;
	s->overlap = s->caps.enhancedstatuscodes;
	s->window = s->p.chunking_window ? s->p.chunking_window : 8;
	if (s->window > SMTP_SESSION_WINDOW)
		s->window = SMTP_SESSION_WINDOW;
	s->max_messages = s->p.max_messages;
	if (s->caps.mailmax > 0 &&
	    (s->max_messages == 0 || s->caps.mailmax < s->max_messages))
		s->max_messages = s->caps.mailmax;
	s->rcpt_limit = s->caps.rcptmax;
	smtp_set_state(s, SMTP_S_READY);
	smtp_event_push(s, SMTP_EV_READY, NULL, 0, r, SMTP_STEP_SESSION, false,
			false, NULL);
}

static void smtp_on_ehlo(struct smtp_session *s, const struct smtp_reply *r,
			 bool helo)
{
	if (r->code == 250) {
		if (!helo)
			smtp_caps_parse(&s->caps, r);
		if (s->p.tls == SMTP_TLS_STARTTLS && !s->secure) {
			if (!s->caps.starttls) {
				smtp_fail_permanent(s, "the server does not "
						    "offer STARTTLS, which "
						    "tls = \"starttls\" "
						    "requires");
				return;
			}
			smtp_write_line(s, "STARTTLS", "");
			smtp_push_cmd(s, SMTP_V_STARTTLS, 0, 0);
			smtp_set_state(s, SMTP_S_STARTTLS);
			return;
		}
		if (s->p.username != NULL) {
			smtp_start_auth(s);
			return;
		}
		smtp_ready(s, r);
		return;
	}
	/* A server that does not know EHLO says 5xx: try HELO once. */
	if (!helo && r->code / 100 == 5) {
		buf_append_str(&s->out, "HELO ");
		buf_append_str(&s->out, s->p.helo_name);
		buf_append_str(&s->out, "\r\n");
		smtp_push_cmd(s, SMTP_V_HELO, 0, 0);
		return;
	}
	s->closing_step = SMTP_STEP_SESSION;
	smtp_fail(s, r->code == 421 ? r : NULL, "%s", "the server refused "
		  "EHLO and HELO");
}

/*
 * smtp_on_data_go - 354: send the body, or a lone "." when the server
 * says go although nothing was accepted (a pipelined DATA after refused
 * MAIL or RCPTs): the message must not be delivered to anyone.
 */
static void smtp_on_data_go(struct smtp_session *s, struct smtp_slot *slot)
{
	if (slot->mail_ok && slot->rcpts_ok > 0) {
		smtp_write_body(s, slot, SMTP_V_DOT, true);
		return;
	}
	buf_append_str(&s->out, ".\r\n");
	slot->empty_body = true;
	slot->body_written = true;
	slot->data_end = s->out_base + s->out.len;
	s->body_bytes = 3;
	smtp_push_cmd(s, SMTP_V_DOT, smtp_slot_index(s, slot), 0);
}

static bool smtp_verb_is_auth(enum smtp_verb v)
{
	return v == SMTP_V_AUTH || v == SMTP_V_AUTH_LOGIN ||
	       v == SMTP_V_AUTH_USER || v == SMTP_V_AUTH_PASS ||
	       v == SMTP_V_AUTH_CANCEL;
}

/*
 * smtp_on_starttls - 220: hand over to the transport for the handshake.
 * Anything else ends the session: "starttls" never falls back.
 */
static void smtp_on_starttls(struct smtp_session *s, const struct smtp_reply *r)
{
	if (r->code == 220) {
		/* The STARTTLS event waits for smtp_session_feed's check
		 * that nothing came after this reply. */
		smtp_set_state(s, SMTP_S_HANDSHAKE);
		return;
	}
	if (r->code / 100 == 5)
		smtp_fail_permanent(s, "the server refused STARTTLS: %d%s%s %s",
				    r->code, r->enhanced[0] ? " " : "",
			  r->enhanced, buf_cstr(&r->text));
	else
		smtp_fail(s, NULL, "the server refused STARTTLS: %d%s%s %s",
			  r->code, r->enhanced[0] ? " " : "",
			  r->enhanced, buf_cstr(&r->text));
}

/* smtp_on_auth - the steps of AUTH; 235 makes the session ready */
static void smtp_on_auth(struct smtp_session *s, enum smtp_verb verb,
			 const struct smtp_reply *r)
{
	struct buf b = BUF_INIT;

	if (verb == SMTP_V_AUTH_CANCEL) {
		smtp_fail_permanent(s, "authentication failed: the server's "
				    "challenge was not base64, so volley "
				    "cancelled the exchange");
		return;
	}
	if (r->code == 235) {
		smtp_ready(s, r);
		return;
	}
	if (r->code == 534) {
		/* too weak: the next mechanism, if the server has one */
		smtp_start_auth(s);
		return;
	}
	/* RFC 4954 4: a challenge that does not decode is answered "*" */
	if (r->code == 334 &&
	    !base64_valid(buf_cstr(&r->text), r->text.len)) {
		smtp_write_line(s, "*", "");
		smtp_push_cmd(s, SMTP_V_AUTH_CANCEL, 0, 0);
		return;
	}
	if (r->code == 334 && verb == SMTP_V_AUTH_LOGIN) {
		buf_append_str(&b, s->p.username);
		smtp_write_auth_line(s, "", &b);
		smtp_push_cmd(s, SMTP_V_AUTH_USER, 0, 0);
	} else if (r->code == 334 && verb == SMTP_V_AUTH_USER) {
		buf_append_str(&b, s->p.password ? s->p.password : "");
		smtp_write_auth_line(s, "", &b);
		smtp_push_cmd(s, SMTP_V_AUTH_PASS, 0, 0);
	} else if (r->code == 334 && verb != SMTP_V_AUTH) {
		smtp_fail_permanent(s, "authentication failed: the server "
				    "asked for more after the credentials");
	} else if (r->code == 334) {
		/* XOAUTH2 says why in a 334; an empty line gets the 535. */
		smtp_write_line(s, "", "");
		smtp_push_cmd(s, SMTP_V_AUTH_PASS, 0, 0);
	} else if (r->code / 100 == 4) {
		smtp_fail(s, NULL, "authentication failed for now: %d%s%s %s",
			  r->code, r->enhanced[0] ? " " : "",
			  r->enhanced, buf_cstr(&r->text));
	} else {
		smtp_fail_permanent(s, "authentication failed: %d%s%s %s",
				    r->code, r->enhanced[0] ? " " : "",
			  r->enhanced, buf_cstr(&r->text));
	}
	if (b.data != NULL)
		memset(b.data, 0, b.cap);
	buf_free(&b);
}

/* smtp_on_mail_reply - MAIL's reply: the message's fate waits for DATA */
static void smtp_on_mail_reply(struct smtp_slot *slot,
			       const struct smtp_reply *r)
{
	if (r->code / 100 == 2) {
		slot->mail_ok = true;
	} else if (r->code == 503) {
		/*
		 * "Bad sequence": the server still holds a transaction volley
		 * thought over (a pipelined MAIL behind a failed BDAT, say).
		 * Nothing is wrong with the message: retry it, and RSET
		 * first.
		 */
		slot->failed = true;
		slot->failure_local = true;
		smtp_local_reply(&slot->failure, 451, "4.5.0", "");
		buf_reset(&slot->failure.text);
		buf_printf(&slot->failure.text, "the server answered MAIL "
			   "with %d %s; will retry", r->code,
			   buf_cstr(&r->text));
	} else {
		slot->failed = true;
		slot->failure_local = false;
		smtp_reply_copy(&slot->failure, r);
	}
}

/*
 * smtp_reply_too_many - a 452 (or, as RFC 821 had it, 552) for a
 * recipient over the server's limit per transaction: by its RFC 3463
 * code X.5.3, or without one by its text
 */
static bool smtp_reply_too_many(const struct smtp_reply *r)
{
	if (r->code != 452 && r->code != 552)
		return false;
	if (r->enhanced[0] != '\0')
		return strcmp(r->enhanced + 1, ".5.3") == 0;
	return strcasestr(buf_cstr(&r->text), "too many") != NULL;
}

/* smtp_on_rcpt_reply - one recipient's reply, an RCPT event at once */
static void smtp_on_rcpt_reply(struct smtp_session *s, struct smtp_slot *slot,
			       size_t rcpt, const struct smtp_reply *r)
{
	struct smtp_reply as452;

	/*
	 * "Too many recipients" once some were taken: this one goes in the
	 * next transaction, and no transaction on this connection asks for
	 * more than the server took in this one.
	 */
	if (slot->mail_ok && slot->rcpts_ok > 0 && smtp_reply_too_many(r)) {
		if (!slot->too_many &&
		    (s->rcpt_limit == 0 || slot->rcpts_ok < s->rcpt_limit))
			s->rcpt_limit = slot->rcpts_ok;
		slot->too_many = true;
		smtp_rcpt_set_del(&slot->in, rcpt);
		smtp_rcpt_set_add(&slot->owed, rcpt);
		s->owed_rcpts++;
		return;
	}
	/* RFC 5321 4.5.3.1.10: a 552 that means "too many" is a 452 */
	if (r->code == 552 && slot->mail_ok && smtp_reply_too_many(r)) {
		as452 = *r;
		as452.code = 452;
		if (as452.enhanced[0] == '5')
			as452.enhanced[0] = '4';
		r = &as452;
	}
	/* After a refused MAIL, its reason is every RCPT's. */
	smtp_event_push(s, SMTP_EV_RCPT, slot->m.ctx, rcpt,
			slot->mail_ok ? r : &slot->failure,
			slot->mail_ok ? SMTP_STEP_RCPT : SMTP_STEP_MAIL,
			slot->mail_ok ? false : slot->failure_local, false,
			NULL);
	if (r->code / 100 == 2 && slot->mail_ok)
		slot->rcpts_ok++;
	else if (slot->mail_ok)
		smtp_rcpt_failed(slot, r, false);
}

/* smtp_on_data_reply - DATA's: 354 sends the body, anything else fails */
static void smtp_on_data_reply(struct smtp_session *s, struct smtp_slot *slot,
			       const struct smtp_reply *r)
{
	if (r->code / 100 == 2) {
		s->out_of_step = true;
		smtp_fail(s, NULL, "out of step: %s", "DATA answered with 2xx");
		return;
	}
	if (r->code == 354) {
		smtp_on_data_go(s, slot);
		return;
	}
	smtp_slot_fail(s, slot, r, SMTP_STEP_DATA);
}

/*
 * smtp_on_end_reply - the reply to the end of data ("." or BDAT LAST):
 * the only reply that makes a message sent
 */
static void smtp_on_end_reply(struct smtp_session *s, struct smtp_slot *slot,
			      enum smtp_verb verb, const struct smtp_reply *r)
{
	bool ok = r->code / 100 == 2;

	if (verb == SMTP_V_DOT && slot->empty_body)
		smtp_slot_fail(s, slot, NULL, SMTP_STEP_NONE);
	/* RFC 3030: a refused BDAT ends the transaction. */
	else if (ok && (verb == SMTP_V_DOT ||
			(slot->mail_ok && slot->rcpts_ok > 0)))
		smtp_slot_done(s, slot, r, SMTP_STEP_END, true, false);
	else
		smtp_slot_fail(s, slot, r, SMTP_STEP_END);
}

/*
 * smtp_reply_fits - may r answer cmd, the oldest outstanding command?
 * If not the session fails out of step, and no message is ever reported
 * sent from the reply.
 */
static bool smtp_reply_fits(struct smtp_session *s, const struct smtp_cmd *cmd,
			    const struct smtp_reply *r)
{
	int class = r->code / 100;

	/*
	 * A reply to a command not yet sent whole (a 250 right behind a 354,
	 * before the body went): a server ahead of its client, or a reply
	 * meant for something else.  Never a message's verdict.
	 */
	if (cmd->end > s->out_base + s->out_sent) {
		s->out_of_step = true;
		smtp_fail(s, NULL, "out of step: reply '%d %s' came before the "
			  "command it would answer was sent", r->code,
			  buf_cstr(&r->text));
		return false;
	}
	/*
	 * A 2.1.x status (MAIL's or RCPT's) on an end of data is a reply
	 * shifted by one: never let it count as delivery.
	 */
	if (class == 2 &&
	    (cmd->verb == SMTP_V_DOT || cmd->verb == SMTP_V_BDAT) &&
	    strncmp(r->enhanced, "2.1.", 4) == 0) {
		s->out_of_step = true;
		smtp_fail(s, NULL, "out of step: the end of a message answered "
			  "with '%s %s', a reply to MAIL or RCPT", r->enhanced,
			  buf_cstr(&r->text));
		return false;
	}
	/* 3xx answers only DATA (354) and AUTH (334); else out of step. */
	if ((class == 3) != ((cmd->verb == SMTP_V_DATA && r->code == 354) ||
			     (smtp_verb_is_auth(cmd->verb) &&
			      r->code == 334)) &&
	    cmd->verb != SMTP_V_QUIT) {
		s->out_of_step = true;
		smtp_fail(s, NULL, "out of step: reply '%s' does not fit the "
			  "command it answers", buf_cstr(&r->text));
		return false;
	}
	return true;
}

/* smtp_on_reply - match a reply to the oldest command and act on it */
static void smtp_on_reply(struct smtp_session *s, const struct smtp_reply *r)
{
	struct smtp_cmd cmd;
	struct smtp_slot *slot;

	s->replies++;
	/* 421 ends the session whatever it answers (RFC 5321 3.8), even
	 * when it answers nothing: a server closing after its last reply. */
	if (r->code == 421 && (s->ncmds == 0 ||
			       s->cmds[s->cmd_head].verb != SMTP_V_QUIT)) {
		s->closing_step = s->ncmds == 0 ? SMTP_STEP_SESSION :
				  smtp_verb_step(s->cmds[s->cmd_head].verb);
		smtp_fail(s, r, "the server closed the session: %d%s%s %s",
			  r->code, r->enhanced[0] ? " " : "", r->enhanced,
			  buf_cstr(&r->text));
		return;
	}
	if (s->ncmds == 0) {
		s->out_of_step = true;
		smtp_fail(s, NULL, "out of step: a reply (%s) with no command "
			  "outstanding", buf_cstr(&r->text));
		return;
	}
	cmd = s->cmds[s->cmd_head];
	s->cmd_head = (s->cmd_head + 1) % s->cmd_cap;
	s->ncmds--;
	slot = &s->slots[cmd.slot];
	if (!smtp_reply_fits(s, &cmd, r))
		return;
	/*
	 * 530 (RFC 4954 6): the server wants AUTH before any mail.  No
	 * recipient is at fault and none will pass: the session ends for
	 * good, its messages come back unsent, and FAILED carries the 530.
	 */
	if (r->code == 530 && (cmd.verb == SMTP_V_MAIL ||
			       cmd.verb == SMTP_V_RCPT ||
			       cmd.verb == SMTP_V_DATA)) {
		s->closing_reply = r;
		s->closing_step = smtp_verb_step(cmd.verb);
		smtp_fail_permanent(s, "the server requires authentication: "
				    "%d%s%s %s", r->code,
				    r->enhanced[0] ? " " : "", r->enhanced,
				    buf_cstr(&r->text));
		return;
	}

	switch (cmd.verb) {
	case SMTP_V_GREETING:
		smtp_on_greeting(s, r);
		break;
	case SMTP_V_EHLO:
	case SMTP_V_HELO:
		smtp_on_ehlo(s, r, cmd.verb == SMTP_V_HELO);
		break;
	case SMTP_V_STARTTLS:
		smtp_on_starttls(s, r);
		break;
	case SMTP_V_AUTH:
	case SMTP_V_AUTH_LOGIN:
	case SMTP_V_AUTH_USER:
	case SMTP_V_AUTH_PASS:
	case SMTP_V_AUTH_CANCEL:
		smtp_on_auth(s, cmd.verb, r);
		break;
	case SMTP_V_MAIL:
		smtp_on_mail_reply(slot, r);
		break;
	case SMTP_V_RCPT:
		smtp_on_rcpt_reply(s, slot, cmd.rcpt, r);
		break;
	case SMTP_V_DATA:
		smtp_on_data_reply(s, slot, r);
		break;
	case SMTP_V_BDAT:
	case SMTP_V_DOT:
		smtp_on_end_reply(s, slot, cmd.verb, r);
		break;
	case SMTP_V_RSET:
		if (r->code / 100 != 2)
			smtp_fail(s, NULL, "the server refused RSET: %s",
				  buf_cstr(&r->text));
		break;
	case SMTP_V_QUIT:
		smtp_set_state(s, SMTP_S_CLOSED);
		smtp_event_push(s, SMTP_EV_CLOSED, NULL, 0, r,
				SMTP_STEP_SESSION, false, false, NULL);
		break;
	}
}

/* --- the public face --------------------------------------------------- */

struct smtp_session *smtp_session_new(const struct smtp_session_params *p)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->p = *p;
	/* The name goes on the EHLO line: nothing that could end it. */
	if (s->p.helo_name == NULL || *s->p.helo_name == '\0' ||
	    smtp_bad_bytes(s->p.helo_name) || strchr(s->p.helo_name, ' '))
		s->p.helo_name = "localhost";
	s->secure = p->tls == SMTP_TLS_IMPLICIT;
	smtp_reply_parser_init(&s->parser, 0, 0);
	s->state = SMTP_S_GREETING;
	smtp_push_cmd(s, SMTP_V_GREETING, 0, 0);
	return s;
}

void smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	smtp_reply_parser_free(&s->parser);
	if (s->out_secret && s->out.data != NULL)
		memset(s->out.data, 0, s->out.len);
	for (size_t i = 0; i < SMTP_SESSION_WINDOW; i++)
	{
		buf_free(&s->slots[i].failure.text);
		buf_free(&s->slots[i].rcpt_failure.text);
	}
	buf_free(&s->out);
	buf_free(&s->arena);
	buf_free(&s->transcript);
	free(s->cmds);
	free(s->events);
	free(s);
	*sp = NULL;
}

/* smtp_session_enter - at each call: forget handed-out event text */
static void smtp_session_enter(struct smtp_session *s)
{
	if (s->nevents == 0)
		buf_reset(&s->arena);
}

void smtp_session_feed(struct smtp_session *s, const char *data, size_t len)
{
	const struct smtp_reply *r;
	const char *error;
	int rc;

	smtp_session_enter(s);
	if (s->state == SMTP_S_HANDSHAKE && len > 0) {
		smtp_fail_permanent(s, "plaintext bytes after the STARTTLS 220 "
				    "and before the TLS handshake: an "
				    "injection attempt; closing");
		return;
	}
	while (len > 0 && s->state != SMTP_S_FAILED &&
	       s->state != SMTP_S_CLOSED) {
		rc = smtp_reply_parse(&s->parser, &data, &len, &r, &error);
		if (rc < 0) {
			s->malformed = true;
			smtp_fail(s, NULL, "%s", error);
			return;
		}
		if (rc == 0)
			break;
		smtp_on_reply(s, r);
		/*
		 * Bytes after STARTTLS's 220, in this read or half a line in
		 * the parser, were sent before the handshake: an attacker's
		 * replies waiting to be read as if they came over TLS.
		 */
		if (s->state == SMTP_S_HANDSHAKE) {
			if (len > 0 || s->parser.line.len > 0)
				smtp_fail_permanent(s, "plaintext bytes after "
						    "the STARTTLS 220 and "
						    "before the TLS handshake:"
						    " an injection attempt; "
						    "closing");
			else
				smtp_event_push(s, SMTP_EV_STARTTLS, NULL, 0,
						r, SMTP_STEP_SESSION, false,
						false, NULL);
			return;
		}
		smtp_pump(s);
	}
}

/* smtp_direct_now - is a direct body what goes out next? */
static bool smtp_direct_now(const struct smtp_session *s)
{
	return s->body.active && s->body.direct && s->out_sent == s->out.len;
}

void smtp_session_output(struct smtp_session *s, const char **data,
			 size_t *len)
{
	if (smtp_direct_now(s)) {
		*data = s->body.data + s->body.pos.in;
		*len = s->body.len - s->body.pos.in;
		return;
	}
	*data = s->out.data ? s->out.data + s->out_sent : "";
	*len = s->out.len - s->out_sent;
}

/*
 * smtp_direct_sent - n bytes of a direct body went; after its last, its
 * "." line and what waited behind it
 */
static void smtp_direct_sent(struct smtp_session *s, size_t n)
{
	s->body.pos.in += n;
	if (s->body.pos.in < s->body.len)
		return;
	smtp_session_enter(s);
	s->out_base += s->body.len;
	s->body.active = false;
	s->body.direct = false;
	if (s->body.stuff)
		buf_append(&s->out, ".\r\n", 3);
	s->traced = s->out.len;
	smtp_pump(s);
}

void smtp_session_sent(struct smtp_session *s, size_t n)
{
	if (smtp_direct_now(s)) {
		smtp_direct_sent(s, n);
		return;
	}
	s->out_sent += n;
	/* Every write is traced before a call returns: the mark resets. */
	if (s->out_sent >= s->out.len) {
		if (s->out_secret && s->out.data != NULL)
			memset(s->out.data, 0, s->out.len);
		s->out_secret = false;
		s->out_base += s->out.len;
		buf_reset(&s->out);
		s->out_sent = 0;
		s->traced = 0;
		/* the next piece of a large body (already traced); after
		 * its last, what waited behind it */
		if (s->body.active && !s->body.direct) {
			smtp_session_enter(s);
			dotstuff_step(&s->out, s->body.data, s->body.len,
				      s->body.stuff, &s->body.pos,
				      SMTP_BODY_PIECE);
			s->body.active = !s->body.pos.done;
			s->traced = s->out.len;
			if (!s->body.active)
				smtp_pump(s);
		}
	}
}

/*
 * smtp_refuse_local - finish a message volley will not send in this
 * session, every recipient and the message with the same reply.
 */
static void smtp_refuse_local(struct smtp_session *s,
			      const struct smtp_message *m, int code,
			      const char *enhanced, const char *why)
{
	struct smtp_reply r = { 0 };

	smtp_local_reply(&r, code, enhanced, why);
	for (size_t i = 0; i < m->nrcpts; i++)
		smtp_event_push(s, SMTP_EV_RCPT, m->ctx, i, &r,
				SMTP_STEP_NONE, true, false, NULL);
	smtp_event_push(s, SMTP_EV_DONE, m->ctx, 0, &r, SMTP_STEP_NONE, true,
			false, NULL);
	buf_free(&r.text);
}

/*
 * smtp_check_message - refuse now what the server said it cannot take.
 * Returns true if the message was refused (and its events queued).
 */
static bool smtp_check_message(struct smtp_session *s,
			       const struct smtp_message *m, bool utf8)
{
	const char *first_why = NULL, *first_enh = NULL, *why_i, *enh;
	bool any_rcpt = false;
	int first_code = 0, code;
	char why[160];

	if (smtp_bad_bytes(m->from)) {
		smtp_refuse_local(s, m, 553, "5.1.7", "the sender address "
				  "holds a control character");
		return true;
	}
	if (s->caps.size && s->caps.size_max > 0 &&
	    m->len > s->caps.size_max) {
		snprintf(why, sizeof(why), "the message (%zu bytes) is over "
			 "the server's SIZE limit of %llu bytes", m->len,
			 (unsigned long long)s->caps.size_max);
		smtp_refuse_local(s, m, 552, "5.3.4", why);
		return true;
	}
	if (utf8 && !s->caps.smtputf8 &&
	    (m->smtputf8 || smtp_has_8bit(m->from))) {
		smtp_refuse_local(s, m, 553, "5.6.7", "the message needs "
				  "SMTPUTF8, which the server does not offer");
		return true;
	}
	/* Some recipients may not be sendable: they are refused one by one
	 * as their RCPT comes up; none at all refuses the message now. */
	for (size_t i = 0; i < m->nrcpts && !any_rcpt; i++) {
		why_i = smtp_rcpt_refusal(s, m, i, &code, &enh);
		any_rcpt = why_i == NULL;
		if (why_i != NULL && first_why == NULL) {
			first_why = why_i;
			first_enh = enh;
			first_code = code;
		}
	}
	if (!any_rcpt) {
		smtp_refuse_local(s, m, first_code, first_enh, first_why);
		return true;
	}
	/* With SMTPUTF8 the body may be 8-bit anyway (RFC 6531 3.1). */
	if (m->eightbit && !(utf8 && s->caps.smtputf8) &&
	    !s->caps.eightbitmime) {
		smtp_refuse_local(s, m, 554, "5.6.3", "the message has 8-bit "
				  "content and the server does not offer "
				  "8BITMIME");
		return true;
	}
	return false;
}

int smtp_session_submit(struct smtp_session *s, const struct smtp_message *m)
{
	struct smtp_slot *slot;
	bool utf8;

	smtp_session_enter(s);
	if (s->state != SMTP_S_READY || s->quit_asked ||
	    s->nslots == SMTP_SESSION_WINDOW || m->nrcpts == 0 ||
	    m->nrcpts > SMTP_SESSION_MAX_RCPTS || smtp_session_spent(s))
		return -1;
	utf8 = m->smtputf8 || smtp_has_8bit(m->from);
	for (size_t i = 0; i < m->nrcpts && !utf8; i++)
		utf8 = smtp_has_8bit(m->rcpts[i]);
	if (smtp_check_message(s, m, utf8))
		return 0;
	/* Recipients needing it are refused one by one without it. */
	utf8 = utf8 && s->caps.smtputf8;
	slot = smtp_slot_at(s, s->nslots++);
	slot->m = *m;
	slot->utf8 = utf8;
	slot->part = 0;
	memset(&slot->owed, 0, (m->nrcpts + 63) / 64 * sizeof(slot->owed.w[0]));
	for (size_t i = 0; i < m->nrcpts; i++)
		smtp_rcpt_set_add(&slot->owed, i);
	s->owed_rcpts += m->nrcpts;
	smtp_slot_begin(s, slot);
	smtp_pump(s);
	return 0;
}

void smtp_session_tls_done(struct smtp_session *s)
{
	smtp_session_enter(s);
	if (s->state != SMTP_S_HANDSHAKE)
		return;
	/* Nothing learned in plaintext survives: caps and parser anew. */
	s->secure = true;
	memset(&s->caps, 0, sizeof(s->caps));
	smtp_reply_parser_free(&s->parser);
	smtp_reply_parser_init(&s->parser, 0, 0);
	buf_append_str(&s->out, "EHLO ");
	buf_append_str(&s->out, s->p.helo_name);
	buf_append_str(&s->out, "\r\n");
	smtp_push_cmd(s, SMTP_V_EHLO, 0, 0);
	smtp_set_state(s, SMTP_S_EHLO);
}

void smtp_session_quit(struct smtp_session *s)
{
	smtp_session_enter(s);
	s->quit_asked = true;
	smtp_pump(s);
}

bool smtp_session_event(struct smtp_session *s, struct smtp_event *ev)
{
	if (s->nevents == 0)
		return false;
	*ev = s->events[s->ev_head];
	s->ev_head = (s->ev_head + 1) % s->ev_cap;
	s->nevents--;
	/* Offsets become pointers now that the arena holds still. */
	ev->enhanced = smtp_arena_ptr(s, ev->enhanced);
	ev->text = smtp_arena_ptr(s, ev->text);
	ev->error = smtp_arena_ptr(s, ev->error);
	return true;
}

const struct smtp_caps *smtp_session_caps(const struct smtp_session *s)
{
	return &s->caps;
}

bool smtp_session_idle(const struct smtp_session *s)
{
	return s->state == SMTP_S_READY && s->nslots == 0;
}

void smtp_session_transcript(struct smtp_session *s, struct buf *out)
{
	if (s->transcript.len > 0)
		buf_append(out, s->transcript.data, s->transcript.len);
	buf_reset(&s->transcript);
}

void smtp_session_abort(struct smtp_session *s, const char *why,
			bool permanent)
{
	smtp_session_enter(s);
	if (permanent)
		smtp_fail_permanent(s, "%s", why);
	else
		smtp_fail(s, NULL, "%s", why);
}

unsigned long smtp_session_replies(const struct smtp_session *s)
{
	return s->replies;
}

bool smtp_session_can_submit(const struct smtp_session *s)
{
	return s->state == SMTP_S_READY && !s->quit_asked &&
	       s->nslots < SMTP_SESSION_WINDOW && !smtp_session_spent(s);
}

/*
 * smtp_parts_owed - the transactions the split messages in flight still
 * need: reserved, so that new messages do not take them
 */
static size_t smtp_parts_owed(const struct smtp_session *s)
{
	size_t parts = 0;

	if (s->owed_rcpts == 0)
		return 0;
	for (size_t i = 0; i < s->nslots; i++) {
		const struct smtp_slot *slot =
			&s->slots[(s->slot_head + i) % SMTP_SESSION_WINDOW];
		size_t n = smtp_rcpt_set_count(&slot->owed, slot->m.nrcpts);

		if (n > 0)
			parts += s->rcpt_limit > 0 ?
				 (n + s->rcpt_limit - 1) / s->rcpt_limit : 1;
	}
	return parts;
}

bool smtp_session_spent(const struct smtp_session *s)
{
	return s->max_messages > 0 &&
	       s->transactions + smtp_parts_owed(s) >= s->max_messages;
}

enum smtp_phase smtp_session_phase(const struct smtp_session *s)
{
	switch (s->state) {
	case SMTP_S_GREETING:
		return SMTP_PHASE_GREETING;
	case SMTP_S_EHLO:
		return SMTP_PHASE_EHLO;
	case SMTP_S_STARTTLS:
	case SMTP_S_HANDSHAKE:
		return SMTP_PHASE_STARTTLS;
	case SMTP_S_AUTH:
		return SMTP_PHASE_AUTH;
	case SMTP_S_READY:
	case SMTP_S_QUIT:
		return SMTP_PHASE_READY;
	default:
		return SMTP_PHASE_OVER;
	}
}

enum smtp_wait smtp_session_waiting(const struct smtp_session *s)
{
	if (s->ncmds == 0 || s->state == SMTP_S_FAILED ||
	    s->state == SMTP_S_CLOSED)
		return SMTP_WAIT_NONE;
	switch (s->cmds[s->cmd_head].verb) {
	case SMTP_V_GREETING:
		return SMTP_WAIT_GREETING;
	case SMTP_V_DOT:
	case SMTP_V_BDAT:
		return SMTP_WAIT_DATA_END;
	case SMTP_V_QUIT:
		return SMTP_WAIT_QUIT;
	default:
		return SMTP_WAIT_COMMAND;
	}
}
