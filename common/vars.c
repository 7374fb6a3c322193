/*
 * vars - the compact packed form of a recipient's variables (see vars.h).
 */
#include "vars.h"

#include <stdint.h>
#include <string.h>

/* vars_put_len - a LEB128 length */
static void vars_put_len(struct buf *out, size_t v)
{
	do {
		buf_putc(out, (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
		v >>= 7;
	} while (v != 0);
}

/* vars_get_len - read a LEB128 length; false if cut or absurd */
static bool vars_get_len(const unsigned char **pos, const unsigned char *end,
			 size_t *len_r)
{
	uint64_t len = 0;
	unsigned shift = 0;

	for (;;) {
		unsigned char c;

		if (*pos == end || shift > 56)
			return false;
		c = *(*pos)++;
		len |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0)
			break;
		shift += 7;
	}
	if (len > (uint64_t)(end - *pos))
		return false;
	*len_r = (size_t)len;
	return true;
}

void vars_pack_begin(struct buf *out)
{
	buf_reset(out);
	buf_putc(out, VARS_FORMAT_FLAT);
}

void vars_pack_str(struct buf *out, const char *p, size_t len)
{
	buf_reserve(out, len + 10);
	vars_put_len(out, len);
	buf_append(out, p, len);
}

int vars_iter_init(struct vars_iter *it, const void *packed, size_t len)
{
	const unsigned char *p = packed;

	if (len < 1 || p[0] != VARS_FORMAT_FLAT)
		return -1;
	it->pos = p + 1;
	it->end = p + len;
	return 0;
}

int vars_next(struct vars_iter *it, const char **p_r, size_t *len_r)
{
	size_t len;

	if (it->pos == it->end)
		return 0;
	if (!vars_get_len(&it->pos, it->end, &len))
		return -1;
	*p_r = (const char *)it->pos;
	*len_r = len;
	it->pos += len;
	return 1;
}

/* --- tree ------------------------------------------------------------- */

static uint32_t vars_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

void vars_tree_begin(struct buf *out)
{
	buf_reset(out);
	buf_putc(out, VARS_FORMAT_TREE);
}

void vars_put_scalar(struct buf *out, enum vars_tag tag, const char *p,
		     size_t len)
{
	buf_putc(out, (char)tag);
	if (tag == VARS_STRING || tag == VARS_NUMBER) {
		vars_put_len(out, len);
		buf_append(out, p, len);
	}
}

void vars_put_name(struct buf *out, const char *p, size_t len)
{
	vars_pack_str(out, p, len);
}

size_t vars_open(struct buf *out, enum vars_tag tag)
{
	static const char header[8];
	size_t mark;

	buf_putc(out, (char)tag);
	mark = out->len;
	buf_append(out, header, sizeof(header));
	return mark;
}

void vars_close(struct buf *out, size_t mark, uint32_t count)
{
	uint32_t size = (uint32_t)(out->len - mark - 8);
	unsigned char *p = (unsigned char *)out->data + mark;

	for (int i = 0; i < 4; i++) {
		p[i] = (unsigned char)(count >> (8 * i));
		p[4 + i] = (unsigned char)(size >> (8 * i));
	}
}

bool vars_value_next(const unsigned char **pos, const unsigned char *end,
		     struct vars_value *out)
{
	const unsigned char *p = *pos;
	uint32_t size;

	if (p == end)
		return false;
	memset(out, 0, sizeof(*out));
	out->at = p;
	out->tag = (enum vars_tag)*p++;
	switch (out->tag) {
	case VARS_NULL:
	case VARS_FALSE:
	case VARS_TRUE:
		break;
	case VARS_STRING:
	case VARS_NUMBER:
		if (!vars_get_len(&p, end, &out->len))
			return false;
		out->str = (const char *)p;
		p += out->len;
		break;
	case VARS_LIST:
	case VARS_OBJECT:
		if (end - p < 8)
			return false;
		out->count = vars_get_u32(p);
		size = vars_get_u32(p + 4);
		p += 8;
		/* Every item takes a byte, every member two: a count above
		 * that is damage, and must not make a section repeat. */
		if (size > (size_t)(end - p) ||
		    (uint64_t)out->count * (out->tag == VARS_LIST ? 1 : 2) >
		    size)
			return false;
		out->body = p;
		out->end = p + size;
		p += size;
		break;
	default:
		return false;
	}
	*pos = p;
	return true;
}

int vars_tree_root(const void *packed, size_t len, struct vars_value *root)
{
	const unsigned char *p = packed;

	if (len < 1 || p[0] != VARS_FORMAT_TREE)
		return -1;
	p++;
	if (!vars_value_next(&p, (const unsigned char *)packed + len, root))
		return -1;
	return 0;
}

bool vars_member_next(const unsigned char **pos, const unsigned char *end,
		      const char **name_r, size_t *len_r,
		      struct vars_value *out)
{
	const unsigned char *p = *pos;
	size_t klen;

	if (p >= end || !vars_get_len(&p, end, &klen))
		return false;
	*name_r = (const char *)p;
	*len_r = klen;
	p += klen;
	if (!vars_value_next(&p, end, out))
		return false;
	*pos = p;
	return true;
}

/* The names volley gives every recipient itself (see vars_builtin). */
static const char *const vars_builtins[] = {
	VARS_ADDRESS_NAME,
	VARS_UNSUBSCRIBE_URL_NAME,
};

bool vars_builtin(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(vars_builtins) /
			       sizeof(vars_builtins[0]); i++) {
		if (strlen(vars_builtins[i]) == len &&
		    memcmp(vars_builtins[i], name, len) == 0)
			return true;
	}
	return false;
}

bool vars_object_get(const struct vars_value *obj, const char *name,
		     size_t len, struct vars_value *out)
{
	const unsigned char *p = obj->body;

	if (obj->tag != VARS_OBJECT)
		return false;
	for (uint32_t i = 0; i < obj->count; i++) {
		size_t klen;
		const unsigned char *key;

		if (!vars_get_len(&p, obj->end, &klen))
			return false;
		key = p;
		p += klen;
		if (!vars_value_next(&p, obj->end, out))
			return false;
		if (klen == len && memcmp(key, name, len) == 0)
			return true;
	}
	return false;
}
