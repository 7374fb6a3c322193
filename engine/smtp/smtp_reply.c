/*
 * smtp_reply - an incremental parser for SMTP replies (see smtp_reply.h).
 *
 * Bytes are gathered into one bounded line buffer; each complete line is
 * checked and added to the reply in progress.  Because the line buffer
 * is the only state that spans calls, a reply split at any byte parses
 * exactly as it does whole.
 */
#include "smtp_reply.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line,
			    size_t max_lines)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line ? max_line : SMTP_REPLY_LINE_MAX;
	p->max_lines = max_lines ? max_lines : SMTP_REPLY_LINES_MAX;
	/* Both buffers reach their final size now, not mid-session. */
	buf_reserve(&p->line, p->max_line + 2);
	buf_reserve(&p->reply.text, 1024);
}

void smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->reply.text);
}

static int smtp_reply_fail(struct smtp_reply_parser *p, const char **error_r,
			   const char *what)
{
	p->failed = true;
	snprintf(p->error, sizeof(p->error), "bad SMTP reply: %s", what);
	*error_r = p->error;
	return -1;
}

/* smtp_reply_digits - the number of digits at p[0..len), at most max */
static size_t smtp_reply_digits(const char *p, size_t len, size_t max)
{
	size_t n = 0;

	while (n < len && n <= max && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

size_t smtp_reply_enhanced(int code, const char *text, size_t len,
			   char out[16])
{
	size_t i = 0, n;

	/* class "." subject "." detail, class matching the reply's digit */
	if (len < 5 || text[0] != (char)('0' + code / 100) || text[1] != '.')
		return 0;
	i = 2;
	n = smtp_reply_digits(text + i, len - i, 3);
	if (n == 0 || n > 3 || i + n >= len || text[i + n] != '.')
		return 0;
	i += n + 1;
	n = smtp_reply_digits(text + i, len - i, 3);
	if (n == 0 || n > 3)
		return 0;
	i += n;
	if (i < len && text[i] != ' ')
		return 0;
	memcpy(out, text, i);
	out[i] = '\0';
	return i < len ? i + 1 : i;
}

/* smtp_reply_line - check one complete line and add it to the reply */
/*
 * smtp_reply_plain_prefix - how many bytes from the start of s are,
 * eight at a time, all printable ASCII (0x20..0x7e): the common case,
 * checked a word at a time; the rest goes byte by byte
 */
static size_t smtp_reply_plain_prefix(const char *s, size_t len)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t x, del;

		memcpy(&x, s + i, 8);
		del = x ^ (0x7f * ones);
		/* a byte >= 0x80, < 0x20, or 0x7f (a zero byte in del) */
		if ((x & highs) != 0 || ((x - 0x20 * ones) & ~x & highs) != 0 ||
		    ((del - ones) & ~del & highs) != 0)
			break;
	}
	return i;
}

static int smtp_reply_line(struct smtp_reply_parser *p, const char **error_r,
			   bool *last_r)
{
	struct smtp_reply *r = &p->reply;
	const char *s = p->line.data;
	size_t len = p->line.len, skip;
	char enhanced[16];
	int code;

	/*
	 * RFC 5321 4.2: text is HT and printable characters (and UTF-8 with
	 * SMTPUTF8).  A control character - a bare CR, an escape sequence,
	 * DEL, a C1 control in UTF-8 - is not a reply but an attempt to
	 * forge a line or drive the terminal, log or report it reaches.
	 */
	for (size_t i = smtp_reply_plain_prefix(s, len); i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((unsigned char)(c - 0x20) < 0x5f || c == '\t')
			continue;
		if (c < 0x20 || c == 0x7f ||
		    (c == 0xc2 && i + 1 < len &&
		     (unsigned char)s[i + 1] >= 0x80 &&
		     (unsigned char)s[i + 1] <= 0x9f))
			return smtp_reply_fail(p, error_r, "a control "
					       "character in a reply line");
	}
	if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' ||
	    s[2] < '0' || s[2] > '9')
		return smtp_reply_fail(p, error_r, "a line does not start with "
				       "a reply code");
	if (len > 3 && s[3] != ' ' && s[3] != '-')
		return smtp_reply_fail(p, error_r, "the code is not followed "
				       "by a space or '-'");
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (r->lines > 0 && code != r->code)
		return smtp_reply_fail(p, error_r, "lines of one reply carry "
				       "different codes");
	if (r->lines == p->max_lines)
		return smtp_reply_fail(p, error_r, "too many lines in one "
				       "reply");
	*last_r = len == 3 || s[3] == ' ';
	s += len > 3 ? 4 : 3;
	len -= len > 3 ? 4 : 3;

	skip = smtp_reply_enhanced(code, s, len, enhanced);
	if (r->lines == 0) {
		r->code = code;
		if (skip > 0)
			memcpy(r->enhanced, enhanced, sizeof(enhanced));
	} else {
		buf_putc(&r->text, '\n');
		/* Only the first line's enhanced code counts; repeats go. */
		if (skip > 0 && strcmp(enhanced, r->enhanced) != 0)
			skip = 0;
	}
	buf_append(&r->text, s + skip, len - skip);
	r->lines++;
	return 0;
}

int smtp_reply_parse(struct smtp_reply_parser *p, const char **data,
		     size_t *len, const struct smtp_reply **reply_r,
		     const char **error_r)
{
	if (p->failed) {
		*error_r = p->error;
		return -1;
	}
	if (p->done) {
		/* The previous reply was handed out: start the next one. */
		p->done = false;
		p->reply.code = 0;
		p->reply.enhanced[0] = '\0';
		p->reply.lines = 0;
		buf_reset(&p->reply.text);
	}
	while (*len > 0) {
		const char *nl = memchr(*data, '\n', *len);
		size_t take = nl != NULL ? (size_t)(nl - *data) + 1 : *len;
		bool last = false;

		if (memchr(*data, '\0', take) != NULL)
			return smtp_reply_fail(p, error_r, "NUL byte");
		if (p->line.len + take > p->max_line + 2)
			return smtp_reply_fail(p, error_r, "a line is longer "
					       "than the limit");
		buf_append(&p->line, *data, take);
		*data += take;
		*len -= take;
		if (nl == NULL)
			return 0;
		/* Drop the line end: CRLF, or a bare LF. */
		buf_truncate(&p->line, p->line.len - 1);
		if (p->line.len > 0 && p->line.data[p->line.len - 1] == '\r')
			buf_truncate(&p->line, p->line.len - 1);
		if (p->line.len > p->max_line)
			return smtp_reply_fail(p, error_r, "a line is longer "
					       "than the limit");
		if (smtp_reply_line(p, error_r, &last) < 0)
			return -1;
		buf_reset(&p->line);
		if (last) {
			p->done = true;
			*reply_r = &p->reply;
			return 1;
		}
	}
	return 0;
}
