/*
 * rowfmt - fields of CSV and JSON Lines rows made safe from hostile text
 * (see rowfmt.h): the report, the suppression list and the bounces.
 */
#include "rowfmt.h"

#include <string.h>
#include <time.h>

#include "utf8.h"

/*
 * rowfmt_text - append s made valid UTF-8: each maximal ill-formed
 * subpart (the longest prefix of a character that could still have been
 * well formed, at least one byte) becomes U+FFFD.  The escape function
 * is called for each well-formed character and may append it escaped; it
 * returns false to have it appended as it is.
 */

void rowfmt_text(struct buf *out, const char *s,
			rowfmt_escape_fn *escape)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), i = 0;

	while (i < len) {
		size_t n = utf8_char_len(u + i, len - i);

		if (n == 0) {
			size_t bad = 1;

			while (i + bad < len && utf8_seq(u + i, bad + 1) < 0)
				bad++;
			buf_append_str(out, "\xef\xbf\xbd");
			i += bad;
			continue;
		}
		if (escape == NULL || !escape(out, u + i, n))
			buf_append(out, u + i, n);
		i += n;
	}
}

/* rowfmt_time - RFC 3339 UTC with milliseconds; ms since the epoch */
void rowfmt_time(struct buf *out, int64_t ms)
{
	int64_t secs = ms / 1000, frac = ms % 1000;
	time_t t;
	struct tm tm;

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	t = (time_t)secs;
	if (gmtime_r(&t, &tm) == NULL) {
		buf_printf(out, "%lld", (long long)ms);	/* cannot happen */
		return;
	}
	buf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		   tm.tm_min, tm.tm_sec, (int)frac);
}

/* --- CSV ----------------------------------------------------------------- */

bool rowfmt_csv_escape(struct buf *out, const unsigned char *c, size_t n)
{
	if (n == 1 && c[0] == '"') {
		buf_append_str(out, "\"\"");
		return true;
	}
	return false;
}

/* rowfmt_csv_needs_quotes - a comma, a quote or any control character */
static bool rowfmt_csv_needs_quotes(const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
		if (*u == ',' || *u == '"' || *u < 0x20 || *u == 0x7f)
			return true;
	}
	return false;
}

/* rowfmt_csv_field - one field and its separator; NULL is an empty field */
void rowfmt_csv_field(struct buf *out, const char *s, bool first)
{
	if (!first)
		buf_putc(out, ',');
	if (s == NULL)
		return;
	if (rowfmt_csv_needs_quotes(s)) {
		buf_putc(out, '"');
		rowfmt_text(out, s, rowfmt_csv_escape);
		buf_putc(out, '"');
	} else {
		rowfmt_text(out, s, NULL);
	}
}

void rowfmt_csv_time(struct buf *out, int64_t ms, bool present)
{
	buf_putc(out, ',');
	if (present)
		rowfmt_time(out, ms);
}

/* --- JSON Lines ---------------------------------------------------------- */

bool rowfmt_json_escape(struct buf *out, const unsigned char *c, size_t n)
{
	if (n == 1) {
		switch (c[0]) {
		case '"':
			buf_append_str(out, "\\\"");
			return true;
		case '\\':
			buf_append_str(out, "\\\\");
			return true;
		case '\n':
			buf_append_str(out, "\\n");
			return true;
		case '\r':
			buf_append_str(out, "\\r");
			return true;
		case '\t':
			buf_append_str(out, "\\t");
			return true;
		default:
			if (c[0] < 0x20 || c[0] == 0x7f) {
				buf_printf(out, "\\u%04x", c[0]);
				return true;
			}
			return false;
		}
	}
	/* U+2028 and U+2029 end lines for some readers (JavaScript). */
	if (n == 3 && c[0] == 0xe2 && c[1] == 0x80 &&
	    (c[2] == 0xa8 || c[2] == 0xa9)) {
		buf_printf(out, "\\u%04x", 0x2000 + (c[2] - 0x80));
		return true;
	}
	return false;
}

/* rowfmt_json_key - ,"key": (keys are ours, plain ASCII) */
void rowfmt_json_key(struct buf *out, const char *key)
{
	buf_append_str(out, ",\"");
	buf_append_str(out, key);
	buf_append_str(out, "\":");
}

/* rowfmt_json_member - ,"key":value; NULL is null */
void rowfmt_json_member(struct buf *out, const char *key, const char *s)
{
	rowfmt_json_key(out, key);
	if (s == NULL) {
		buf_append_str(out, "null");
		return;
	}
	buf_putc(out, '"');
	rowfmt_text(out, s, rowfmt_json_escape);
	buf_putc(out, '"');
}

void rowfmt_json_time(struct buf *out, const char *key, int64_t ms,
		      bool present)
{
	rowfmt_json_key(out, key);
	if (!present) {
		buf_append_str(out, "null");
		return;
	}
	buf_putc(out, '"');
	rowfmt_time(out, ms);
	buf_putc(out, '"');
}

