/*
 * test_varnames - which of a template's names some recipient has: at the
 * root only outside sections, at any depth inside them, later parts of a
 * dotted name only in nested objects; built-in names always; an
 * import's address column ignoring case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "varnames.h"
#include "vars.h"

/* add - a name as the template has it */
static void add(struct varnames *vn, const char *name, bool in_section)
{
	varnames_add(vn, name, strlen(name), in_section, false, "t:1:1");
}

/* found - is the name (added with in_section) found? */
static bool found(const struct varnames *vn, const char *name,
		  bool in_section)
{
	for (size_t i = 0; i < vn->n; i++) {
		if (strcmp(vn->v[i].name, name) == 0 &&
		    vn->v[i].in_section == in_section)
			return varnames_found(vn, i);
	}
	fail_msg("no name %s", name);
	return false;
}

/* str - an object member holding a string */
static void str(struct buf *b, const char *name, const char *value)
{
	vars_put_name(b, name, strlen(name));
	vars_put_scalar(b, VARS_STRING, value, strlen(value));
}

/*
 * {"name": "A", "order": {"id": "1", "items": [{"title": "Tea"}]},
 *  "tags": ["x"]}
 */
static void tree(struct buf *b)
{
	size_t root, order, items, item, tags;

	vars_tree_begin(b);
	root = vars_open(b, VARS_OBJECT);
	str(b, "name", "A");
	vars_put_name(b, "order", 5);
	order = vars_open(b, VARS_OBJECT);
	str(b, "id", "1");
	vars_put_name(b, "items", 5);
	items = vars_open(b, VARS_LIST);
	item = vars_open(b, VARS_OBJECT);
	str(b, "title", "Tea");
	vars_close(b, item, 1);
	vars_close(b, items, 1);
	vars_close(b, order, 2);
	vars_put_name(b, "tags", 4);
	tags = vars_open(b, VARS_LIST);
	vars_put_scalar(b, VARS_STRING, "x", 1);
	vars_close(b, tags, 1);
	vars_close(b, root, 3);
}

static void test_tree(void **state)
{
	struct varnames vn = { 0 };
	struct buf b = BUF_INIT;

	(void)state;
	add(&vn, "name", false);
	add(&vn, "title", false);	/* nested only: not at the root */
	add(&vn, "title", true);	/* inside a section: found */
	add(&vn, "titel", true);
	add(&vn, "order.id", false);
	add(&vn, "order.idd", false);
	add(&vn, "id.order", true);	/* "order" is no nested member */
	add(&vn, "email", false);	/* built in */
	add(&vn, "email.x", false);
	add(&vn, "name", false);	/* added once */
	assert_int_equal(vn.n, 9);
	assert_int_equal(vn.missing, 8);
	tree(&b);
	varnames_recipient(&vn, b.data, b.len);
	assert_true(found(&vn, "name", false));
	assert_false(found(&vn, "title", false));
	assert_true(found(&vn, "title", true));
	assert_false(found(&vn, "titel", true));
	assert_true(found(&vn, "order.id", false));
	assert_false(found(&vn, "order.idd", false));
	assert_false(found(&vn, "id.order", true));
	assert_true(found(&vn, "email", false));
	assert_false(found(&vn, "email.x", false));
	assert_int_equal(vn.missing, 5);
	assert_false(varnames_done(&vn));
	/* a damaged blob reads as nothing */
	varnames_recipient(&vn, b.data, b.len / 2);
	varnames_recipient(&vn, "\x02o", 2);
	assert_int_equal(vn.missing, 5);
	varnames_free(&vn);
	assert_null(vn.v);
	buf_free(&b);
}

static void test_flat(void **state)
{
	struct varnames vn = { 0 };
	struct buf names = BUF_INIT;

	(void)state;
	add(&vn, "city", true);
	add(&vn, "plan", false);
	add(&vn, "Email", false);
	add(&vn, "city.name", true);
	vars_pack_begin(&names);
	vars_pack_str(&names, "city", 4);
	vars_pack_str(&names, "plan", 4);
	varnames_columns(&vn, names.data, names.len);
	assert_true(found(&vn, "city", true));
	assert_true(found(&vn, "plan", false));
	/* a CSV column is never an object: nothing inside it */
	assert_false(found(&vn, "city.name", true));
	/* the address column, whatever its case */
	assert_false(found(&vn, "Email", false));
	varnames_root(&vn, "EMAIL", 5, true);
	assert_true(found(&vn, "Email", false));
	assert_int_equal(vn.missing, 1);
	varnames_free(&vn);
	buf_free(&names);
}

static void test_done(void **state)
{
	struct varnames vn = { 0 };

	(void)state;
	assert_true(varnames_done(&vn));
	add(&vn, "a.b", true);
	varnames_root(&vn, "a", 1, false);
	assert_false(varnames_done(&vn));
	/* the parts may be found in different recipients */
	varnames_add(&vn, "x", 1, true, true, "t:2:2");
	assert_true(vn.v[1].section);
	assert_string_equal(vn.v[1].where, "t:2:2");
	varnames_root(&vn, "x", 1, false);
	assert_false(varnames_done(&vn));
	{
		struct buf b = BUF_INIT;
		size_t root, obj;

		vars_tree_begin(&b);
		root = vars_open(&b, VARS_OBJECT);
		vars_put_name(&b, "o", 1);
		obj = vars_open(&b, VARS_OBJECT);
		str(&b, "b", "1");
		vars_close(&b, obj, 1);
		vars_close(&b, root, 1);
		varnames_recipient(&vn, b.data, b.len);
		buf_free(&b);
	}
	assert_true(varnames_done(&vn));
	varnames_free(&vn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_flat),
		cmocka_unit_test(test_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
