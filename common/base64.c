/*
 * base64 - RFC 4648 base64, without line breaks (see base64.h).
 */
#include "base64.h"

#include <stdint.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_block(char *o, const unsigned char *p, size_t n)
{
	for (; n >= 3; n -= 3, p += 3, o += 4) {
		uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];

		o[0] = base64_alphabet[v >> 18];
		o[1] = base64_alphabet[v >> 12 & 63];
		o[2] = base64_alphabet[v >> 6 & 63];
		o[3] = base64_alphabet[v & 63];
	}
	if (n > 0) {
		uint32_t v = (uint32_t)p[0] << 16 |
			     (n > 1 ? (uint32_t)p[1] << 8 : 0);

		o[0] = base64_alphabet[v >> 18];
		o[1] = base64_alphabet[v >> 12 & 63];
		o[2] = n > 1 ? base64_alphabet[v >> 6 & 63] : '=';
		o[3] = '=';
		o += 4;
	}
	return o;
}

void base64_encode(struct buf *out, const void *p, size_t n)
{
	char *o;

	buf_reserve(out, base64_len(n));
	o = base64_block(out->data + out->len, p, n);
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

bool base64_valid(const char *p, size_t n)
{
	size_t pad = 0;

	if (n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '=') {
			/* only the last one or two of the last group */
			if (i + 2 < n || (i + 1 < n && p[i + 1] != '='))
				return false;
			pad++;
		} else if (pad > 0 ||
			   !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return false;
		}
	}
	return true;
}
