/*
 * jsonw - the little JSON writing volley's --json outputs need.
 */
#include "jsonw.h"

#include "buf.h"

void jsonw_string(struct buf *out, const char *s, size_t len)
{
	buf_putc(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"':
			buf_append_str(out, "\\\"");
			break;
		case '\\':
			buf_append_str(out, "\\\\");
			break;
		case '\n':
			buf_append_str(out, "\\n");
			break;
		case '\r':
			buf_append_str(out, "\\r");
			break;
		case '\t':
			buf_append_str(out, "\\t");
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_printf(out, "\\u%04x", c);
			else
				buf_putc(out, (char)c);
		}
	}
	buf_putc(out, '"');
}
