/*
 * smtp_caps - what a server's EHLO reply offers (see smtp_caps.h).
 */
#include "smtp_caps.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* smtp_caps_word - does the word p[0..len) equal w, ignoring case? */
static bool smtp_caps_word(const char *p, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(p, w, len) == 0;
}

/* smtp_caps_number - a decimal of at most 19 digits; false if not one */
static bool smtp_caps_number(const char *p, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*v_r = v;
	return true;
}

/* smtp_caps_auth - one mechanism name of an AUTH line */
static void smtp_caps_auth(struct smtp_caps *c, const char *p, size_t len)
{
	if (smtp_caps_word(p, len, "PLAIN"))
		c->auth |= SMTP_AUTH_PLAIN;
	else if (smtp_caps_word(p, len, "LOGIN"))
		c->auth |= SMTP_AUTH_LOGIN;
	else if (smtp_caps_word(p, len, "XOAUTH2"))
		c->auth |= SMTP_AUTH_XOAUTH2;
}

/* smtp_caps_limit - one NAME=VALUE of a LIMITS line */
static void smtp_caps_limit(struct smtp_caps *c, const char *p, size_t len)
{
	const char *eq = memchr(p, '=', len);
	uint64_t v;

	if (eq == NULL ||
	    !smtp_caps_number(eq + 1, (size_t)(p + len - eq - 1), &v) ||
	    v == 0 || v > 1000000)
		return;
	if (smtp_caps_word(p, (size_t)(eq - p), "MAILMAX"))
		c->mailmax = (unsigned)v;
	else if (smtp_caps_word(p, (size_t)(eq - p), "RCPTMAX"))
		c->rcptmax = (unsigned)v;
}

/* smtp_caps_line - one line after the greeting: KEYWORD *(SP PARAM) */
static void smtp_caps_line(struct smtp_caps *c, const char *line, size_t len)
{
	const char *end = line + len, *kw = line, *p;
	size_t kwlen;

	/* Old servers wrote "AUTH=PLAIN LOGIN": '=' ends the keyword too. */
	for (p = kw; p < end && *p != ' ' && *p != '='; p++)
		;
	kwlen = (size_t)(p - kw);
	if (smtp_caps_word(kw, kwlen, "PIPELINING"))
		c->pipelining = true;
	else if (smtp_caps_word(kw, kwlen, "CHUNKING"))
		c->chunking = true;
	else if (smtp_caps_word(kw, kwlen, "STARTTLS"))
		c->starttls = true;
	else if (smtp_caps_word(kw, kwlen, "8BITMIME"))
		c->eightbitmime = true;
	else if (smtp_caps_word(kw, kwlen, "SMTPUTF8"))
		c->smtputf8 = true;
	else if (smtp_caps_word(kw, kwlen, "ENHANCEDSTATUSCODES"))
		c->enhancedstatuscodes = true;
	else if (smtp_caps_word(kw, kwlen, "DSN"))
		c->dsn = true;
	else if (!smtp_caps_word(kw, kwlen, "SIZE") &&
		 !smtp_caps_word(kw, kwlen, "AUTH") &&
		 !smtp_caps_word(kw, kwlen, "LIMITS"))
		return;

	/* The parameters, separated by spaces. */
	while (p < end) {
		const char *w;

		while (p < end && (*p == ' ' || *p == '='))
			p++;
		for (w = p; p < end && *p != ' '; p++)
			;
		if (p == w)
			break;
		if (smtp_caps_word(kw, kwlen, "AUTH")) {
			smtp_caps_auth(c, w, (size_t)(p - w));
		} else if (smtp_caps_word(kw, kwlen, "LIMITS")) {
			smtp_caps_limit(c, w, (size_t)(p - w));
		} else if (smtp_caps_word(kw, kwlen, "SIZE")) {
			uint64_t v;

			if (smtp_caps_number(w, (size_t)(p - w), &v))
				c->size_max = v;
			else
				return;	/* a SIZE we cannot read: leave it off */
		}
	}
	if (smtp_caps_word(kw, kwlen, "SIZE"))
		c->size = true;
}

void smtp_caps_parse(struct smtp_caps *caps, const struct smtp_reply *ehlo)
{
	const char *p = buf_cstr(&ehlo->text);
	const char *end = p + ehlo->text.len;
	bool first = true;

	memset(caps, 0, sizeof(*caps));
	if (ehlo->code != 250)
		return;
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl != NULL ? nl : end;

		/* The first line is the server's name and greeting. */
		if (!first)
			smtp_caps_line(caps, p, (size_t)(stop - p));
		first = false;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}
