/*
 * buf - the one growable byte buffer used everywhere in volley.
 *
 * A buf owns its storage, grows geometrically and never shrinks, so a
 * buffer that is reset and refilled for every message stops allocating
 * once it has seen the largest message: that is how the hot path avoids
 * per-message allocation.  The bytes are always followed by a NUL (not
 * counted in len) so text can be handed to C string functions directly.
 *
 * A zero-initialised struct buf is a valid empty buffer.
 */
#ifndef VOLLEY_BUF_H
#define VOLLEY_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
	char *data;	/* NULL until the first append */
	size_t len;	/* bytes in use, excluding the trailing NUL */
	size_t cap;	/* bytes allocated, including room for the NUL */
};

#define BUF_INIT { NULL, 0, 0 }

void buf_free(struct buf *b);

/* buf_reset - forget the contents, keep the storage */
static inline void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* buf_reserve - make room for extra more bytes (plus the NUL) */
void buf_reserve(struct buf *b, size_t extra);

void buf_append_slow(struct buf *b, const void *data, size_t len);

/*
 * buf_append - append len bytes.  Inline, since rendering a message makes
 * hundreds of small appends; only growing the buffer is out of line.
 */
static inline void buf_append(struct buf *b, const void *data, size_t len)
{
	if (b->len + len < b->cap) {
		if (len > 0)
			memcpy(b->data + b->len, data, len);
		b->len += len;
		b->data[b->len] = '\0';
		return;
	}
	buf_append_slow(b, data, len);
}

static inline void buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void buf_append_str(struct buf *b, const char *s);
/*
 * buf_append_lit - append a string literal, its length known when
 * compiling: no strlen and no call for the commands and headers written
 * for every message.  ("" lit makes anything but a literal an error.)
 */
#define buf_append_lit(b, lit) buf_append((b), "" lit, sizeof(lit) - 1)
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * buf_append_u64 - v in decimal, the bytes "%" PRIu64 would give, without
 * printf's cost (about 1,600 instructions a call): for numbers written
 * once per message, such as SIZE= and BDAT's length.
 */
void buf_append_u64(struct buf *b, uint64_t v);

/* buf_truncate - drop bytes beyond len (len must not exceed b->len) */
void buf_truncate(struct buf *b, size_t len);

/* buf_cstr - the contents as a C string; "" for an empty buffer */
static inline const char *buf_cstr(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

#endif
