/*
 * sink_faults - the sink's fault rules (see sink_faults.h).
 *
 * The file is read whole and parsed line by line into an array of rules
 * kept in file order, which is what "the first matching rule wins" needs.
 * Every string a rule points to is its own copy, so the file's text can
 * go once parsing is over.
 */
#include "sink_faults.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errmsg.h"
#include "xalloc.h"

#define SINK_FAULTS_FILE_MAX (1 << 20)
#define SINK_FAULTS_DELAY_MAX 3600000u	/* an hour, in ms */
#define SINK_FAULTS_OVERLONG_DEFAULT 3000
#define SINK_FAULTS_OVERLONG_MAX 1000000

struct sink_faults {
	struct sink_rule *rules;
	size_t n, cap;
	unsigned close_after;
	struct sink_rule close_reply;	/* REPLY */
	char *inject;
};

static const char *const sink_cmd_names[SINK_CMD_COUNT] = {
	[SINK_CMD_GREETING] = "greeting", [SINK_CMD_EHLO] = "ehlo",
	[SINK_CMD_HELO] = "helo", [SINK_CMD_STARTTLS] = "starttls",
	[SINK_CMD_AUTH] = "auth", [SINK_CMD_MAIL] = "mail",
	[SINK_CMD_RCPT] = "rcpt", [SINK_CMD_DATA] = "data",
	[SINK_CMD_BDAT] = "bdat", [SINK_CMD_MESSAGE] = "message",
	[SINK_CMD_RSET] = "rset", [SINK_CMD_NOOP] = "noop",
	[SINK_CMD_QUIT] = "quit",
};

const char *sink_cmd_name(enum sink_cmd cmd)
{
	return cmd < SINK_CMD_COUNT ? sink_cmd_names[cmd] : "?";
}

/* sink_cmd_has_address - may a rule for cmd carry a pattern? */
static bool sink_cmd_has_address(enum sink_cmd cmd)
{
	return cmd == SINK_CMD_MAIL || cmd == SINK_CMD_RCPT ||
	       cmd == SINK_CMD_DATA || cmd == SINK_CMD_BDAT ||
	       cmd == SINK_CMD_MESSAGE;
}

/* sink_cmd_has_content - does cmd receive message content? */
static bool sink_cmd_has_content(enum sink_cmd cmd)
{
	return cmd == SINK_CMD_DATA || cmd == SINK_CMD_BDAT ||
	       cmd == SINK_CMD_MESSAGE;
}

bool sink_glob(const char *pattern, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pattern == '*') {
			star = ++pattern;
			resume = s;
		} else if (*pattern == '?' ||
			   (*pattern != '\0' &&
			    tolower((unsigned char)*pattern) ==
			    tolower((unsigned char)*s))) {
			pattern++;
			s++;
		} else if (star != NULL) {
			/* let the last '*' take one more character */
			pattern = star;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

/* --- parsing ---------------------------------------------------------- */

struct sink_parse {
	const char *name;
	unsigned line;
	const char **error_r;
};

static int sink_parse_fail(struct sink_parse *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int sink_parse_fail(struct sink_parse *ps, const char *fmt, ...)
{
	char msg[ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errmsg_set(ps->error_r, "%s:%u: %s", ps->name, ps->line, msg);
}

/* sink_next_token - the next space-separated token of *p, or NULL */
static char *sink_next_token(char **p)
{
	char *s = *p, *t;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	t = s;
	while (*s != '\0' && *s != ' ' && *s != '\t')
		s++;
	if (*s != '\0')
		*s++ = '\0';
	*p = s;
	return t;
}

/* sink_rest - what is left of the line, leading blanks skipped */
static char *sink_rest(char **p)
{
	char *s = *p;

	while (*s == ' ' || *s == '\t')
		s++;
	*p = s + strlen(s);
	return s;
}

/* sink_number - a decimal number in 1..max, or -1 */
static long sink_number(const char *s, long max)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < 1 || v > max)
		return -1;
	return v;
}

/* sink_is_code - three digits, the first 2..5 */
static bool sink_is_code(const char *s)
{
	return strlen(s) == 3 && s[0] >= '2' && s[0] <= '5' &&
	       isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]);
}

/*
 * sink_enhanced - is s[0..len) an RFC 3463 code X.Y.Z?  Returns 1 if it
 * is and its class is the reply code's, 0 if it is no enhanced code at
 * all (so it starts the text), -1 (with the error) if its class is wrong.
 */
static int sink_enhanced(struct sink_parse *ps, int code, const char *s,
			 size_t len)
{
	size_t i = 0;
	int parts = 0;

	while (i < len) {
		size_t n = 0;

		while (i + n < len && isdigit((unsigned char)s[i + n]))
			n++;
		if (n == 0 || n > 3)
			return 0;
		i += n;
		parts++;
		if (i < len && s[i] == '.' && parts < 3)
			i++;
		else if (i < len)
			return 0;
	}
	if (parts != 3)
		return 0;
	if (s[0] != '0' + code / 100 || s[1] != '.')
		return sink_parse_fail(ps, "enhanced code %.*s does not go "
				       "with reply code %d", (int)len, s,
				       code);
	return 1;
}

/*
 * sink_parse_reply - CODE [X.Y.Z] [TEXT] from tok and *p into r; cmd
 * decides which codes are allowed.
 */
static int sink_parse_reply(struct sink_parse *ps, enum sink_cmd cmd,
			    const char *tok, char **p, struct sink_rule *r)
{
	char *text = sink_rest(p);
	size_t len = strcspn(text, " \t");
	int is;

	r->code = atoi(tok);
	if (r->code / 100 == 3 && !(cmd == SINK_CMD_DATA && r->code == 354))
		return sink_parse_fail(ps, "reply code %d: 3xx is only for "
				       "data (354)", r->code);
	if (cmd == SINK_CMD_DATA && r->code / 100 == 2)
		return sink_parse_fail(ps, "reply code %d: data takes 354, "
				       "4xx or 5xx", r->code);
	is = len > 0 ? sink_enhanced(ps, r->code, text, len) : 0;
	if (is < 0)
		return -1;
	if (is > 0) {
		memcpy(r->enhanced, text, len);
		r->enhanced[len] = '\0';
		text += len;
		while (*text == ' ' || *text == '\t')
			text++;
	} else if (r->code != 354) {
		/* every reply carries an enhanced code: the class's own */
		snprintf(r->enhanced, sizeof(r->enhanced), "%d.0.0",
			 r->code / 100);
	}
	r->text = xstrdup(*text != '\0' ? text : "fault rule");
	r->action = SINK_FAULT_REPLY;
	return 0;
}

static int sink_parse_close_after(struct sink_parse *ps, struct sink_faults *f,
				  char **p)
{
	char *tok = sink_next_token(p);
	long n;

	if (f->close_after > 0)
		return sink_parse_fail(ps, "close-after is given twice");
	if (tok == NULL || (n = sink_number(tok, 1000000000L)) < 0)
		return sink_parse_fail(ps, "close-after needs a number of "
				       "messages from 1");
	f->close_after = (unsigned)n;
	f->close_reply.line = ps->line;
	tok = sink_next_token(p);
	if (tok == NULL) {
		f->close_reply.action = SINK_FAULT_REPLY;
		f->close_reply.code = 421;
		strcpy(f->close_reply.enhanced, "4.7.0");
		f->close_reply.text = xstrdup("Too many messages on this "
					      "connection, closing");
		return 0;
	}
	if (!sink_is_code(tok) || (tok[0] != '4' && tok[0] != '5'))
		return sink_parse_fail(ps, "close-after: '%s' is not a 4xx or "
				       "5xx reply code", tok);
	return sink_parse_reply(ps, SINK_CMD_MAIL, tok, p, &f->close_reply);
}

/* sink_parse_rule - COMMAND [CONDITION...] [delay MS] [ACTION] */
static int sink_parse_rule(struct sink_parse *ps, enum sink_cmd cmd,
			   char **p, struct sink_rule *r)
{
	char *tok;
	long n;
	bool acted = false, delayed = false;

	r->cmd = cmd;
	r->line = ps->line;
	r->drop_after = SINK_FAULT_NO_BYTES;
	while ((tok = sink_next_token(p)) != NULL) {
		if (acted)
			return sink_parse_fail(ps, "unexpected '%s' after the "
					       "action", tok);
		if (strncmp(tok, "msg=", 4) == 0) {
			if ((n = sink_number(tok + 4, 1000000000L)) < 0)
				return sink_parse_fail(ps, "msg= takes a "
						       "message number from "
						       "1");
			r->msg = (unsigned)n;
		} else if (strncmp(tok, "conn=", 5) == 0) {
			if ((n = sink_number(tok + 5, 1000000000L)) < 0)
				return sink_parse_fail(ps, "conn= takes a "
						       "connection number "
						       "from 1");
			r->conn = (unsigned long)n;
		} else if (strcmp(tok, "delay") == 0) {
			tok = sink_next_token(p);
			if (tok == NULL || (n = sink_number(tok,
					SINK_FAULTS_DELAY_MAX)) < 0)
				return sink_parse_fail(ps, "delay takes "
						       "milliseconds, 1 to "
						       "%u",
						       SINK_FAULTS_DELAY_MAX);
			r->delay_ms = (unsigned)n;
			delayed = true;
		} else if (sink_is_code(tok)) {
			if (sink_parse_reply(ps, cmd, tok, p, r) < 0)
				return -1;
			acted = true;
		} else if (strcmp(tok, "silent") == 0) {
			r->action = SINK_FAULT_SILENT;
			acted = true;
		} else if (strcmp(tok, "malformed") == 0) {
			char *text = sink_rest(p);

			r->action = SINK_FAULT_MALFORMED;
			r->text = xstrdup(*text != '\0' ? text :
					  "2x0 malformed reply line");
			acted = true;
		} else if (strcmp(tok, "overlong") == 0) {
			r->action = SINK_FAULT_OVERLONG;
			r->length = SINK_FAULTS_OVERLONG_DEFAULT;
			tok = sink_next_token(p);
			if (tok != NULL) {
				n = sink_number(tok, SINK_FAULTS_OVERLONG_MAX);
				if (n < 100)
					return sink_parse_fail(ps, "overlong "
						"takes a line length from 100 "
						"to %d",
						SINK_FAULTS_OVERLONG_MAX);
				r->length = (size_t)n;
			}
			acted = true;
		} else if (strcmp(tok, "drop") == 0) {
			r->action = SINK_FAULT_DROP;
			tok = sink_next_token(p);
			if (tok != NULL) {
				if (!sink_cmd_has_content(cmd))
					return sink_parse_fail(ps, "drop N "
						"(after N bytes of content) "
						"is for data, bdat and "
						"message");
				if ((n = sink_number(tok, 2000000000L)) < 0)
					return sink_parse_fail(ps, "drop takes "
						"a number of content bytes "
						"from 1");
				r->drop_after = (size_t)n;
			}
			acted = true;
		} else if (!sink_cmd_has_address(cmd)) {
			return sink_parse_fail(ps, "'%s' is not a condition or "
					       "action for %s (address patterns "
					       "are for mail, rcpt, data, bdat "
					       "and message)", tok,
					       sink_cmd_name(cmd));
		} else if (r->pattern != NULL) {
			return sink_parse_fail(ps, "a second pattern '%s' (one "
					       "per rule)", tok);
		} else {
			for (const char *c = tok; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					return sink_parse_fail(ps, "control "
						"character in pattern");
			r->pattern = xstrdup(strcmp(tok, "<>") == 0 ? "" : tok);
		}
	}
	if (!acted && !delayed)
		return sink_parse_fail(ps, "%s rule does nothing: give a reply "
				       "code, delay MS, silent, malformed, "
				       "overlong or drop", sink_cmd_name(cmd));
	return 0;
}

static void sink_rule_free(struct sink_rule *r)
{
	free((char *)r->pattern);
	free((char *)r->text);
}

/* sink_parse_line - one line (NUL-terminated, writable) */
static int sink_parse_line(struct sink_parse *ps, struct sink_faults *f,
			   char *line)
{
	char *p = line, *tok = sink_next_token(&p);
	struct sink_rule r = { 0 };
	int cmd;

	if (tok == NULL || tok[0] == '#')
		return 0;
	if (strcmp(tok, "close-after") == 0)
		return sink_parse_close_after(ps, f, &p);
	if (strcmp(tok, "starttls-inject") == 0) {
		char *text = sink_rest(&p);

		if (*text == '\0')
			return sink_parse_fail(ps, "starttls-inject needs the "
					       "text to inject");
		if (f->inject != NULL)
			return sink_parse_fail(ps, "starttls-inject is given "
					       "twice");
		f->inject = xstrdup(text);
		return 0;
	}
	for (cmd = 0; cmd < SINK_CMD_COUNT; cmd++)
		if (strcmp(tok, sink_cmd_names[cmd]) == 0)
			break;
	if (cmd == SINK_CMD_COUNT)
		return sink_parse_fail(ps, "unknown command '%s' (greeting, "
				       "ehlo, helo, starttls, auth, mail, "
				       "rcpt, data, bdat, message, rset, noop, "
				       "quit, close-after, starttls-inject)",
				       tok);
	if (sink_parse_rule(ps, (enum sink_cmd)cmd, &p, &r) < 0) {
		sink_rule_free(&r);
		return -1;
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->rules = xrealloc(f->rules, f->cap * sizeof(*f->rules));
	}
	f->rules[f->n++] = r;
	return 0;
}

int sink_faults_parse(const char *name, const char *text, size_t len,
		      struct sink_faults **f_r, const char **error_r)
{
	struct sink_faults *f = xcalloc(1, sizeof(*f));
	struct sink_parse ps = { name, 0, error_r };
	struct buf line = BUF_INIT;
	const char *p = text, *end = text + len;
	int ret = 0;

	while (p < end && ret == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		ps.line++;
		buf_reset(&line);
		buf_append(&line, p, n);
		if (line.len > 0 && line.data[line.len - 1] == '\r')
			buf_truncate(&line, line.len - 1);
		if (memchr(buf_cstr(&line), '\0', line.len) != NULL)
			ret = sink_parse_fail(&ps, "NUL byte");
		else
			ret = sink_parse_line(&ps, f, line.data != NULL ?
					      line.data : (char *)"");
		p += n + (nl != NULL);
	}
	buf_free(&line);
	if (ret < 0) {
		sink_faults_free(&f);
		return -1;
	}
	*f_r = f;
	return 0;
}

int sink_faults_load(const char *path, struct sink_faults **f_r,
		     const char **error_r)
{
	struct buf text = BUF_INIT;
	char chunk[8192];
	size_t n;
	FILE *fp = fopen(path, "rb");
	int ret;

	if (fp == NULL) {
		return errmsg_set(error_r, "%s: %s", path, strerror(errno));
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		buf_append(&text, chunk, n);
		if (text.len > SINK_FAULTS_FILE_MAX)
			break;
	}
	if (ferror(fp) || text.len > SINK_FAULTS_FILE_MAX) {
		errmsg_set(error_r, "%s: %s", path, ferror(fp) ?
			   strerror(errno) : "larger than 1 MiB");
		fclose(fp);
		buf_free(&text);
		return -1;
	}
	fclose(fp);
	ret = sink_faults_parse(path, buf_cstr(&text), text.len, f_r,
				error_r);
	buf_free(&text);
	return ret;
}

void sink_faults_free(struct sink_faults **fp)
{
	struct sink_faults *f = *fp;

	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++)
		sink_rule_free(&f->rules[i]);
	free(f->rules);
	sink_rule_free(&f->close_reply);
	free(f->inject);
	free(f);
	*fp = NULL;
}

size_t sink_faults_count(const struct sink_faults *f)
{
	return f != NULL ? f->n : 0;
}

const struct sink_rule *sink_faults_rule(const struct sink_faults *f,
					 size_t i)
{
	return f != NULL && i < f->n ? &f->rules[i] : NULL;
}

const struct sink_rule *sink_faults_match(const struct sink_faults *f,
					  enum sink_cmd cmd,
					  const char *const *addrs, size_t n,
					  unsigned msg, unsigned long conn)
{
	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < f->n; i++) {
		const struct sink_rule *r = &f->rules[i];
		size_t j;

		if (r->cmd != cmd || (r->msg != 0 && r->msg != msg) ||
		    (r->conn != 0 && r->conn != conn))
			continue;
		if (r->pattern == NULL)
			return r;
		for (j = 0; j < n; j++)
			if (sink_glob(r->pattern, addrs[j]))
				return r;
	}
	return NULL;
}

unsigned sink_faults_close_after(const struct sink_faults *f,
				 const struct sink_rule **reply_r)
{
	if (f == NULL || f->close_after == 0)
		return 0;
	*reply_r = &f->close_reply;
	return f->close_after;
}

const char *sink_faults_starttls_inject(const struct sink_faults *f)
{
	return f != NULL ? f->inject : NULL;
}
