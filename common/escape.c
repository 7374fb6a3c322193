/*
 * escape - text from outside made safe to show (see escape.h).
 */
#include "escape.h"

#include "utf8.h"

void escape_text(struct buf *out, const char *p, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, shown = len < max ? len : max;

	while (i < shown) {
		size_t n = utf8_char_len(u + i, len - i);

		if (n == 0 || u[i] < 0x20 || u[i] == 0x7f) {
			buf_printf(out, "\\x%02X", u[i]);
			i++;
		} else if (u[i] == '\\') {
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
