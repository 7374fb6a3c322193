/*
 * fuzz_jsonl - libFuzzer target for the JSON Lines rows of volley import:
 * import_jsonl_line, which turns one line into a recipient's packed
 * variables without a store.  (Reading the lines from the file and adding
 * them to the store need one, so that part is left to the tests of
 * volley import; the lines are cut here the way it cuts them.)
 *
 * The first byte picks the address column's name, what the template
 * needs, and whether each line is a value to put in an object that has
 * an address; the rest is the file.  For each line, jansson's own reading of
 * it is the reference: a line it reads as an object with a string
 * address and every needed name must be taken, and what is taken must
 * pack to a tree (common/vars.h) that holds exactly that object, walked
 * with the bounds-checked readers, containers' sizes and counts exact.
 * A refused line must give a one-line reason with no control characters
 * and a column on the line.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "buf.h"
#include "import.h"
#include "vars.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_value(const struct vars_value *v, const json_t *j);

/* get_len - a member name's LEB128 length, as vars.h packs it */
static size_t get_len(const unsigned char **p, const unsigned char *end)
{
	size_t len = 0;
	unsigned shift = 0;
	unsigned char c;

	do {
		if (*p == end || shift > 28)
			abort();
		c = *(*p)++;
		len |= (size_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	if (len > (size_t)(end - *p))
		abort();
	return len;
}

/*
 * same_members - the packed object's members are the JSON object's, and
 * vars_object_get finds each one where the walk did
 */
static void same_members(const struct vars_value *v, const json_t *j)
{
	const unsigned char *p = v->body;
	struct buf key = BUF_INIT;

	if (!json_is_object(j) || v->count != json_object_size(j))
		abort();
	for (uint32_t i = 0; i < v->count; i++) {
		struct vars_value member, found;
		const json_t *jm;
		size_t len = get_len(&p, v->end);

		buf_reset(&key);
		buf_append(&key, p, len);
		p += len;
		if (!vars_value_next(&p, v->end, &member) ||
		    !vars_object_get(v, buf_cstr(&key), len, &found) ||
		    found.at != member.at)
			abort();
		/* jansson keys hold no NUL without JSON_ALLOW_NUL */
		jm = json_object_get(j, buf_cstr(&key));
		if (jm == NULL || strlen(buf_cstr(&key)) != len)
			abort();
		same_value(&member, jm);
	}
	if (p != v->end)
		abort();
	buf_free(&key);
}

/* same_value - the packed value is the JSON value */
static void same_value(const struct vars_value *v, const json_t *j)
{
	const unsigned char *p;
	char text[40];

	switch (v->tag) {
	case VARS_NULL:
		if (!json_is_null(j))
			abort();
		break;
	case VARS_FALSE:
		if (!json_is_false(j))
			abort();
		break;
	case VARS_TRUE:
		if (!json_is_true(j))
			abort();
		break;
	case VARS_STRING:
		if (!json_is_string(j) || v->len != json_string_length(j) ||
		    memcmp(v->str, json_string_value(j), v->len) != 0)
			abort();
		break;
	case VARS_NUMBER:
		if (v->len == 0 || v->len >= sizeof(text))
			abort();
		memcpy(text, v->str, v->len);
		text[v->len] = '\0';
		if (json_is_integer(j)) {
			if (strtoll(text, NULL, 10) != json_integer_value(j))
				abort();
		} else if (!json_is_real(j) ||
			   strtod(text, NULL) != json_real_value(j)) {
			abort();
		}
		break;
	case VARS_LIST:
		if (!json_is_array(j) || v->count != json_array_size(j))
			abort();
		p = v->body;
		for (uint32_t i = 0; i < v->count; i++) {
			struct vars_value item;

			if (!vars_value_next(&p, v->end, &item))
				abort();
			same_value(&item, json_array_get(j, i));
		}
		if (p != v->end)
			abort();
		break;
	case VARS_OBJECT:
		same_members(v, j);
		break;
	default:
		abort();
	}
}

/* address_of - the string the line's address column names, if any */
static const json_t *address_of(const json_t *obj, const char *column)
{
	const char *key;
	json_t *v, *exact = json_object_get(obj, column);

	if (exact != NULL)
		return json_is_string(exact) ? exact : NULL;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcasecmp(key, column) == 0)
			return json_is_string(v) ? v : NULL;
	}
	return NULL;
}

static void check_line(const char *line, size_t len, const char *column,
		       const struct import_need *needs, size_t nneeds,
		       struct buf *vars, struct buf *addr, struct buf *reason)
{
	const json_t *want_addr = NULL;
	struct vars_value root;
	unsigned long col;
	json_error_t jerr;
	json_t *obj;
	bool good;
	int rc;

	rc = import_jsonl_line(line, len, column, needs, nneeds, vars, addr,
			       reason, &col);
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	good = obj != NULL && json_is_object(obj) &&
	       (want_addr = address_of(obj, column)) != NULL;
	for (size_t i = 0; good && i < nneeds; i++)
		good = json_object_get(obj, needs[i].name) != NULL ||
		       strcasecmp(needs[i].name, column) == 0 ||
		       strcmp(needs[i].name, "email") == 0;
	if (rc != (good ? 0 : -1))
		abort();
	if (rc < 0) {
		if (reason->len == 0 || col > len + 1)
			abort();
		for (size_t i = 0; i < reason->len; i++)
			if ((unsigned char)reason->data[i] < 0x20 ||
			    reason->data[i] == 0x7f)
				abort();
		json_decref(obj);
		return;
	}
	if (vars_tree_root(vars->data, vars->len, &root) < 0 ||
	    root.tag != VARS_OBJECT ||
	    root.end != (const unsigned char *)vars->data + vars->len)
		abort();
	same_value(&root, obj);
	if (addr->len != json_string_length(want_addr) ||
	    memcmp(buf_cstr(addr), json_string_value(want_addr), addr->len))
		abort();
	json_decref(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct import_need all_needs[] = {
		{ "name", "body.html:1:7" },
		{ "EMAIL", "body.html:2:1" },
		{ "a", "body.html:3:1" },
	};
	struct buf vars = BUF_INIT, addr = BUF_INIT, reason = BUF_INIT;
	struct buf wrapped = BUF_INIT;
	const char *column, *p, *end;
	size_t nneeds;

	if (size == 0)
		return 0;
	column = data[0] & 1 ? "email" : "Address";
	nneeds = (size_t)(data[0] >> 1) % 4;
	p = (const char *)data + 1;
	end = (const char *)data + size;
	/* as import_jsonl_rows cuts them: LF ends, a CR before it dropped */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0 && (data[0] & 8)) {
			/*
			 * jansson is not instrumented, so the fuzzer cannot
			 * feel its way to objects with an address: put any
			 * value it makes inside one.
			 */
			buf_reset(&wrapped);
			buf_printf(&wrapped, "{\"%s\": \"a@x.example\", "
				   "\"v\": ", column);
			buf_append(&wrapped, p, len);
			buf_putc(&wrapped, '}');
			check_line(wrapped.data, wrapped.len, column,
				   all_needs, nneeds, &vars, &addr, &reason);
		} else if (len > 0) {
			check_line(p, len, column, all_needs, nneeds, &vars,
				   &addr, &reason);
		}
		p = nl ? nl + 1 : end;
	}
	buf_free(&vars);
	buf_free(&addr);
	buf_free(&reason);
	buf_free(&wrapped);
	return 0;
}
