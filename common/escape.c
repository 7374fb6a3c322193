/*
 * escape - text from outside made safe to show (see escape.h).
 */
#include "escape.h"

#include <stdbool.h>

#include "utf8.h"

/* escape_some - escape_text, backslashes doubled or not */
static void escape_some(struct buf *out, const char *p, size_t len,
			size_t max, bool backslash)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, shown = len < max ? len : max;

	while (i < shown) {
		size_t n = utf8_char_len(u + i, len - i);

		/* a C0 or C1 control (U+0080..U+009F: C2 80..9F), DEL, a
		 * byte that is not UTF-8: each byte shown as \xNN */
		if (n == 2 && u[i] == 0xc2 && u[i + 1] <= 0x9f) {
			buf_printf(out, "\\x%02X\\x%02X", u[i], u[i + 1]);
			i += 2;
		} else if (n == 0 || u[i] < 0x20 || u[i] == 0x7f) {
			buf_printf(out, "\\x%02X", u[i]);
			i++;
		} else if (u[i] == '\\' && backslash) {
			buf_append_str(out, "\\\\");
			i++;
		} else {
			buf_append(out, p + i, n);
			i += n;
		}
	}
	if (shown < len)
		buf_append_str(out, "...");
}

void escape_text(struct buf *out, const char *p, size_t len, size_t max)
{
	escape_some(out, p, len, max, true);
}

void escape_controls(struct buf *out, const char *p, size_t len)
{
	escape_some(out, p, len, len, false);
}
