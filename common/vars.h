/*
 * vars - the compact packed form of a recipient's variables.
 *
 * A recipient's variables are stored in the job store as one blob and read
 * back on the hot send path, so both formats are cheap to walk without
 * parsing anything.
 *
 * Flat (CSV rows): no names, which are stored once per import (themselves
 * packed the same way); the values follow them in order.
 *
 *   flat    = %x01 *string
 *   string  = length bytes                ; length: unsigned LEB128
 *
 * Tree (JSON Lines rows): one value, an object, with lists and objects
 * nested.  Containers carry their byte size, so a reader skips a member it
 * does not want in O(1).
 *
 *   tree    = %x02 value
 *   value   = "n" / "f" / "t"             ; null, false, true
 *           / "s" string / "d" string     ; string; number as its text
 *           / "l" count size *value       ; list
 *           / "o" count size *(string value) ; object: name, value
 *   count, size = 4 bytes, little-endian  ; size: bytes after the header
 *
 * A reader refuses a format it does not know rather than misreading it,
 * and every read is bounds-checked: a damaged blob reads as missing
 * values, never as memory outside it.
 */
#ifndef VOLLEY_VARS_H
#define VOLLEY_VARS_H

#include <stddef.h>

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

#define VARS_FORMAT_FLAT 0x01
#define VARS_FORMAT_TREE 0x02

/* vars_pack_begin - reset out and start a packed list */
void vars_pack_begin(struct buf *out);
/* vars_pack_str - append one string value */
void vars_pack_str(struct buf *out, const char *p, size_t len);

struct vars_iter {
	const unsigned char *pos;
	const unsigned char *end;
};

/* vars_iter_init - 0, or -1 if the blob is not a packed list we know */
int vars_iter_init(struct vars_iter *it, const void *packed, size_t len);
/* vars_next - 1 and the next value, 0 at the end, -1 if corrupt */
int vars_next(struct vars_iter *it, const char **p_r, size_t *len_r);

/* --- tree ------------------------------------------------------------- */

enum vars_tag {
	VARS_NULL = 'n',
	VARS_FALSE = 'f',
	VARS_TRUE = 't',
	VARS_STRING = 's',
	VARS_NUMBER = 'd',
	VARS_LIST = 'l',
	VARS_OBJECT = 'o',
};

/* vars_tree_begin - reset out and start a tree; then write one value */
void vars_tree_begin(struct buf *out);
/* vars_put_scalar - a null, false, true, string or number value */
void vars_put_scalar(struct buf *out, enum vars_tag tag, const char *p,
		     size_t len);
/* vars_put_name - an object member's name; its value follows */
void vars_put_name(struct buf *out, const char *p, size_t len);
/*
 * vars_open - start a list or object; returns a mark for vars_close(),
 * which must be given the number of items (or members) written.
 */
size_t vars_open(struct buf *out, enum vars_tag tag);
void vars_close(struct buf *out, size_t mark, uint32_t count);

struct vars_value {
	const unsigned char *at;	/* the value's tag byte in the blob */
	enum vars_tag tag;
	const char *str;		/* string and number */
	size_t len;
	const unsigned char *body;	/* list and object: first item */
	const unsigned char *end;	/* list and object: past the last */
	uint32_t count;
};

/*
 * vars_member_next - the member of an object at *pos (the object's body
 * at first, below its end): its name and value, *pos moved past it;
 * false past the last member or if damaged.
 */
bool vars_member_next(const unsigned char **pos, const unsigned char *end,
		      const char **name_r, size_t *len_r,
		      struct vars_value *out);

/* --- names every recipient has ---------------------------------------- */

/* The name under which a recipient's address is a variable, always. */
#define VARS_ADDRESS_NAME "email"
/* The recipient's one-click unsubscribe link (volley.cfg unsubscribe). */
#define VARS_UNSUBSCRIBE_URL_NAME "unsubscribe_url"

/*
 * vars_builtin - is name one that every recipient has, whatever its row
 * holds?  The one table of them (vars.c): a name volley comes to give
 * every recipient ({{verp}}, {{unsubscribe_url}}) goes there, and the
 * checks for names no recipient has stop reporting it.
 */
bool vars_builtin(const char *name, size_t len);

/* vars_tree_root - the root value of a tree blob; -1 if not one */
int vars_tree_root(const void *packed, size_t len, struct vars_value *root);
/* vars_object_get - member name of obj; false if absent or damaged */
bool vars_object_get(const struct vars_value *obj, const char *name,
		     size_t len, struct vars_value *out);
/*
 * vars_value_next - read the value at *pos (below end) and move *pos past
 * it; false if damaged.  Walks a list's items from list.body.
 */
bool vars_value_next(const unsigned char **pos, const unsigned char *end,
		     struct vars_value *out);

#endif
