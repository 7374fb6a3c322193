/*
 * bounce_rules - the classifier (see bounce_rules.h).
 *
 * A rule is a category and up to BOUNCE_RULE_CONDS conditions, each a
 * glob kept in lower case; a text condition is kept as "*PATTERN*" so
 * that the one anchored matcher serves all three kinds.
 */
#include "bounce_rules.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "errmsg.h"
#include "xalloc.h"

#define BOUNCE_RULE_CONDS 4
#define BOUNCE_PATTERN_MAX 256
#define BOUNCE_RULES_FILE_MAX (1024 * 1024)

enum cond_kind { COND_STATUS, COND_CODE, COND_TEXT };

struct cond {
	enum cond_kind kind;
	char *glob;
};

struct rule {
	enum bounce_category category;
	int line;
	size_t nconds;
	struct cond conds[BOUNCE_RULE_CONDS];
};

struct bounce_rules {
	struct rule *rules;
	size_t count, cap;
	bool hard[BOUNCE_CAT_COUNT];
};

static const char *const category_names[BOUNCE_CAT_COUNT] = {
	[BOUNCE_CAT_OTHER] = "other",
	[BOUNCE_CAT_BAD_MAILBOX] = "bad-mailbox",
	[BOUNCE_CAT_BAD_DOMAIN] = "bad-domain",
	[BOUNCE_CAT_INACTIVE_MAILBOX] = "inactive-mailbox",
	[BOUNCE_CAT_QUOTA_ISSUES] = "quota-issues",
	[BOUNCE_CAT_POLICY_RELATED] = "policy-related",
	[BOUNCE_CAT_SPAM_RELATED] = "spam-related",
	[BOUNCE_CAT_CONTENT_RELATED] = "content-related",
	[BOUNCE_CAT_ROUTING_ERRORS] = "routing-errors",
	[BOUNCE_CAT_PROTOCOL_ERRORS] = "protocol-errors",
	[BOUNCE_CAT_TRANSIENT_FAILURE] = "transient-failure",
	[BOUNCE_CAT_MESSAGE_EXPIRED] = "message-expired",
	[BOUNCE_CAT_INVALID_SENDER] = "invalid-sender",
};

const char *bounce_category_name(enum bounce_category c)
{
	return (unsigned)c < BOUNCE_CAT_COUNT ? category_names[c] : "other";
}

int bounce_category_parse(const char *name, size_t len)
{
	for (int c = 0; c < BOUNCE_CAT_COUNT; c++)
		if (strlen(category_names[c]) == len &&
		    strncasecmp(category_names[c], name, len) == 0)
			return c;
	return -1;
}

bool bounce_glob(const char *pattern, const char *s, size_t len)
{
	const char *p = pattern, *star = NULL;
	size_t i = 0, mark = 0;

	/*
	 * On a mismatch, go back to the last '*' and let it take one more
	 * character: earlier stars never need revisiting, so the cost is
	 * bounded by pattern length times text length.
	 */
	while (i < len) {
		if (*p == '*') {
			star = ++p;
			mark = i;
		} else if (*p != '\0' && (*p == '?' ||
			   *p == tolower((unsigned char)s[i]))) {
			p++;
			i++;
		} else if (star != NULL) {
			p = star;
			i = ++mark;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static void rules_free_conds(struct rule *r)
{
	for (size_t i = 0; i < r->nconds; i++)
		free(r->conds[i].glob);
}

void bounce_rules_free(struct bounce_rules *rules)
{
	if (rules == NULL)
		return;
	for (size_t i = 0; i < rules->count; i++)
		rules_free_conds(&rules->rules[i]);
	free(rules->rules);
	free(rules);
}

size_t bounce_rules_count(const struct bounce_rules *rules)
{
	return rules->count;
}

/*
 * next_token - the next word of line[*pos..len) into tok (unquoted when
 * it was a "quoted string", with \" and \\); 1 with a token, 0 at the
 * end of the line or a comment, -1 with *what set on an error
 */
static int next_token(const char *line, size_t len, size_t *pos,
		      struct buf *tok, bool *quoted, const char **what)
{
	size_t i = *pos;

	buf_reset(tok);
	*quoted = false;
	while (i < len && (line[i] == ' ' || line[i] == '\t' ||
			   line[i] == '\r'))
		i++;
	if (i >= len || line[i] == '#') {
		*pos = len;
		return 0;
	}
	if (line[i] == '"') {
		*quoted = true;
		for (i++; i < len && line[i] != '"'; i++) {
			if (line[i] == '\\' && i + 1 < len)
				i++;
			buf_putc(tok, line[i]);
		}
		if (i >= len) {
			*what = "unclosed quote";
			return -1;
		}
		i++;
	} else {
		while (i < len && line[i] != ' ' && line[i] != '\t' &&
		       line[i] != '\r')
			buf_putc(tok, line[i++]);
	}
	buf_append(tok, "", 0);
	*pos = i;
	return 1;
}

/* check_code_glob - status: digits, dots, globs; code: digits, globs */
static bool check_code_glob(const char *g, bool dots)
{
	if (*g == '\0')
		return false;
	for (; *g != '\0'; g++)
		if (!isdigit((unsigned char)*g) && *g != '*' && *g != '?' &&
		    !(dots && *g == '.'))
			return false;
	return true;
}

/* parse_line - one line into rules; -1 with *what on an error */
static int parse_line(struct bounce_rules *rules, const char *line,
		      size_t len, int lineno, struct buf *tok,
		      const char **what)
{
	struct rule r;
	size_t pos = 0;
	bool quoted;
	int rc, cat;

	rc = next_token(line, len, &pos, tok, &quoted, what);
	if (rc <= 0)
		return rc;
	if (strcmp(tok->data, "hard") == 0 || strcmp(tok->data, "soft") == 0) {
		bool hard = tok->data[0] == 'h';

		while ((rc = next_token(line, len, &pos, tok, &quoted,
					what)) > 0) {
			cat = bounce_category_parse(tok->data, tok->len);
			if (cat < 0) {
				*what = "unknown category";
				return -1;
			}
			rules->hard[cat] = hard;
		}
		return rc;
	}
	memset(&r, 0, sizeof(r));
	cat = bounce_category_parse(tok->data, tok->len);
	if (cat < 0) {
		*what = quoted ? "a rule starts with its category" :
			"unknown category";
		return -1;
	}
	r.category = (enum bounce_category)cat;
	r.line = lineno;
	while ((rc = next_token(line, len, &pos, tok, &quoted, what)) > 0) {
		struct cond *c;
		struct buf g = BUF_INIT;
		enum cond_kind kind;

		if (strcmp(tok->data, "status") == 0)
			kind = COND_STATUS;
		else if (strcmp(tok->data, "code") == 0)
			kind = COND_CODE;
		else if (strcmp(tok->data, "text") == 0)
			kind = COND_TEXT;
		else {
			*what = "unknown condition (status, code or text)";
			goto fail;
		}
		if (next_token(line, len, &pos, tok, &quoted, what) <= 0) {
			if (*what == NULL)
				*what = "condition without a pattern";
			goto fail;
		}
		if (tok->len == 0 || tok->len > BOUNCE_PATTERN_MAX) {
			*what = "pattern empty or longer than 256 bytes";
			goto fail;
		}
		if (kind != COND_TEXT &&
		    !check_code_glob(tok->data, kind == COND_STATUS)) {
			*what = kind == COND_STATUS ?
				"status pattern is not like 5.1.1 or 5.1.*" :
				"code pattern is not like 550 or 5*";
			goto fail;
		}
		if (r.nconds == BOUNCE_RULE_CONDS) {
			*what = "more than 4 conditions";
			goto fail;
		}
		if (kind == COND_TEXT)
			buf_putc(&g, '*');
		for (size_t i = 0; i < tok->len; i++)
			buf_putc(&g, (char)tolower((unsigned char)
						   tok->data[i]));
		if (kind == COND_TEXT)
			buf_putc(&g, '*');
		c = &r.conds[r.nconds++];
		c->kind = kind;
		c->glob = g.data;	/* the buffer's storage is the glob */
	}
	if (rc < 0)
		goto fail;
	if (r.nconds == 0) {
		*what = "rule without a condition";
		goto fail;
	}
	if (rules->count == rules->cap) {
		rules->cap = rules->cap ? rules->cap * 2 : 64;
		rules->rules = xrealloc(rules->rules,
					rules->cap * sizeof(*rules->rules));
	}
	rules->rules[rules->count++] = r;
	return 0;
fail:
	rules_free_conds(&r);
	return -1;
}

struct bounce_rules *bounce_rules_load(const char *text, size_t len,
				       const char *name,
				       const char **error_r)
{
	struct bounce_rules *rules = xcalloc(1, sizeof(*rules));
	struct buf tok = BUF_INIT;
	size_t i = 0;
	int lineno = 0;

	/* the defaults docs/bounces.md names; a file may change them */
	rules->hard[BOUNCE_CAT_BAD_MAILBOX] = true;
	rules->hard[BOUNCE_CAT_BAD_DOMAIN] = true;
	rules->hard[BOUNCE_CAT_INACTIVE_MAILBOX] = true;
	rules->hard[BOUNCE_CAT_INVALID_SENDER] = true;
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - text) : len;
		const char *what = NULL;

		lineno++;
		if (memchr(text + i, '\0', e - i) != NULL) {
			what = "NUL byte";
		} else if (parse_line(rules, text + i, e - i, lineno, &tok,
				      &what) == 0) {
			i = e + 1;
			continue;
		}
		buf_free(&tok);
		bounce_rules_free(rules);
		errmsg_set(error_r, "%s:%d: %s", name, lineno, what);
		return NULL;
	}
	buf_free(&tok);
	return rules;
}

struct bounce_rules *bounce_rules_load_file(const char *path,
					    const char **error_r)
{
	struct bounce_rules *rules;
	struct buf text = BUF_INIT;
	char chunk[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return errmsg_set(error_r, "%s: %s", path, strerror(errno)),
		       NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(&text, chunk, n);
		if (text.len > BOUNCE_RULES_FILE_MAX) {
			fclose(f);
			buf_free(&text);
			return errmsg_set(error_r, "%s: longer than 1 MB",
					  path), NULL;
		}
	}
	if (ferror(f)) {
		int e = errno;

		fclose(f);
		buf_free(&text);
		return errmsg_set(error_r, "%s: %s", path, strerror(e)), NULL;
	}
	fclose(f);
	rules = bounce_rules_load(buf_cstr(&text), text.len, path, error_r);
	buf_free(&text);
	return rules;
}

struct bounce_rules *bounce_rules_default(const char **error_r)
{
	return bounce_rules_load(bounce_rules_default_text,
				 strlen(bounce_rules_default_text),
				 "default.rules", error_r);
}

void bounce_rules_classify(const struct bounce_rules *rules, int code,
			   const char *enhanced, const char *text,
			   struct bounce_class *out)
{
	char codestr[16] = "";
	size_t elen = enhanced != NULL ? strlen(enhanced) : 0;
	size_t tlen = text != NULL ? strlen(text) : 0;

	if (code > 0)
		snprintf(codestr, sizeof(codestr), "%d", code);
	for (size_t i = 0; i < rules->count; i++) {
		const struct rule *r = &rules->rules[i];
		bool ok = true;

		for (size_t k = 0; ok && k < r->nconds; k++) {
			const struct cond *c = &r->conds[k];

			switch (c->kind) {
			case COND_STATUS:
				ok = elen > 0 && bounce_glob(c->glob, enhanced,
							     elen);
				break;
			case COND_CODE:
				ok = code > 0 && bounce_glob(c->glob, codestr,
							     strlen(codestr));
				break;
			case COND_TEXT:
				ok = tlen > 0 && bounce_glob(c->glob, text,
							     tlen);
				break;
			}
		}
		if (ok) {
			out->category = r->category;
			out->hard = rules->hard[r->category];
			out->line = r->line;
			return;
		}
	}
	out->category = BOUNCE_CAT_OTHER;
	out->hard = rules->hard[BOUNCE_CAT_OTHER];
	out->line = 0;
}
