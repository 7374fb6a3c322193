/*
 * test_vars_data - stored variables (flat CSV rows and JSON trees) as
 * template data, through the real renderer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "tmpl.h"
#include "vars.h"
#include "vars_data.h"

/* render - src rendered with vd into a fresh string (static buffer) */
static const char *render(const char *src, struct vars_data *vd)
{
	static struct buf out;
	struct tmpl_params p = {
		"t", TMPL_ESCAPE_NONE, NULL, NULL, false, NULL,
	};
	struct tmpl_error err;
	struct tmpl *t;

	if (tmpl_compile(src, strlen(src), &p, &t, &err) < 0)
		fail_msg("%s", err.message);
	buf_reset(&out);
	assert_int_equal(tmpl_render(t, &vd->data, &out), 0);
	tmpl_free(&t);
	return buf_cstr(&out);
}

static void test_flat_row(void **state)
{
	struct buf names = BUF_INIT, vals = BUF_INIT;
	struct vars_data vd;

	(void)state;
	vars_pack_begin(&names);
	vars_pack_str(&names, "first_name", 10);
	vars_pack_str(&names, "city", 4);
	vars_pack_str(&names, "empty", 5);
	vars_pack_begin(&vals);
	vars_pack_str(&vals, "Ada", 3);
	vars_pack_str(&vals, "London", 6);
	vars_pack_str(&vals, "", 0);
	assert_int_equal(vars_data_init(&vd, names.data, names.len, "Mail",
					"ada@example.org", 15, vals.data,
					vals.len), 0);
	assert_string_equal(render("{{first_name}} of {{city}}", &vd),
			    "Ada of London");
	/* The address is a variable under its column's name and "email". */
	assert_string_equal(render("{{MAIL}} {{email}}", &vd),
			    "ada@example.org ada@example.org");
	/* Empty is false; missing is empty. */
	assert_string_equal(render("[{{#empty}}x{{/empty}}{{^empty}}y{{/empty}}]"
				   "[{{nope}}]", &vd), "[y][]");
	buf_free(&names);
	buf_free(&vals);
}

static void test_tree_row(void **state)
{
	struct buf b = BUF_INIT;
	struct vars_data vd;
	size_t root, order, items, item;

	(void)state;
	vars_tree_begin(&b);
	root = vars_open(&b, VARS_OBJECT);
	vars_put_name(&b, "email", 5);
	vars_put_scalar(&b, VARS_STRING, "amy@example.org", 15);
	vars_put_name(&b, "order", 5);
	order = vars_open(&b, VARS_OBJECT);
	vars_put_name(&b, "id", 2);
	vars_put_scalar(&b, VARS_STRING, "A-1", 3);
	vars_put_name(&b, "total", 5);
	vars_put_scalar(&b, VARS_NUMBER, "12.5", 4);
	vars_close(&b, order, 2);
	vars_put_name(&b, "items", 5);
	items = vars_open(&b, VARS_LIST);
	for (int i = 0; i < 3; i++) {
		char title[8];

		snprintf(title, sizeof(title), "t%d", i);
		item = vars_open(&b, VARS_OBJECT);
		vars_put_name(&b, "title", 5);
		vars_put_scalar(&b, VARS_STRING, title, strlen(title));
		vars_put_name(&b, "gift", 4);
		vars_put_scalar(&b, i == 1 ? VARS_TRUE : VARS_FALSE, NULL, 0);
		vars_close(&b, item, 2);
	}
	vars_close(&b, items, 3);
	vars_put_name(&b, "none", 4);
	vars_put_scalar(&b, VARS_NULL, NULL, 0);
	vars_close(&b, root, 4);

	assert_int_equal(vars_data_init(&vd, NULL, 0, NULL,
					"amy@example.org", 15, b.data, b.len),
			 0);
	assert_string_equal(render("{{order.id}}={{order.total}} {{email}}",
				   &vd), "A-1=12.5 amy@example.org");
	assert_string_equal(render("{{#items}}{{title}}{{#gift}}*{{/gift}}"
				   "{{order.id}},{{/items}}", &vd),
			    "t0A-1,t1*A-1,t2A-1,");
	/* Walking the list twice (and nested) gives the same items. */
	assert_string_equal(render("{{#items}}{{#items}}{{title}}{{/items}}|"
				   "{{/items}}", &vd),
			    "t0t1t2|t0t1t2|t0t1t2|");
	assert_string_equal(render("[{{none}}]{{^none}}n{{/none}}", &vd),
			    "[]n");
	buf_free(&b);
}

/* crlf: template line ends become CRLF once; values stay as they are. */
static void test_crlf_template_text(void **state)
{
	struct tmpl_params p = {
		"t", TMPL_ESCAPE_NONE, NULL, NULL, true, NULL,
	};
	struct buf names = BUF_INIT, vals = BUF_INIT, out = BUF_INIT;
	const char *src = "a\nb {{v}}\r\nc\rd\n{{#v}}\nin\n{{/v}}\n";
	struct tmpl_error err;
	struct vars_data vd;
	struct tmpl *t;

	(void)state;
	vars_pack_begin(&names);
	vars_pack_str(&names, "v", 1);
	vars_pack_begin(&vals);
	vars_pack_str(&vals, "x\ny", 3);
	assert_int_equal(vars_data_init(&vd, names.data, names.len, "email",
					"a@b.c", 5, vals.data, vals.len), 0);
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), 0);
	assert_int_equal(tmpl_render(t, &vd.data, &out), 0);
	/* The standalone section lines still vanish; the value keeps its LF. */
	assert_string_equal(buf_cstr(&out), "a\r\nb x\ny\r\nc\r\nd\r\nin\r\n");
	tmpl_free(&t);
	buf_free(&names);
	buf_free(&vals);
	buf_free(&out);
}

/*
 * For a JSON row, {{email}} (and the address column's name) is the stored
 * address, checked and trimmed at import, not the row's raw value.
 */
static void test_tree_address_names(void **state)
{
	struct buf b = BUF_INIT;
	struct vars_data vd;
	size_t root;

	(void)state;
	vars_tree_begin(&b);
	root = vars_open(&b, VARS_OBJECT);
	vars_put_name(&b, "addr", 4);
	vars_put_scalar(&b, VARS_STRING, " amy@example.org\t", 17);
	vars_close(&b, root, 1);
	assert_int_equal(vars_data_init(&vd, NULL, 0, "addr",
					"amy@example.org", 15, b.data, b.len),
			 0);
	assert_string_equal(render("[{{email}}][{{addr}}][{{ADDR}}]", &vd),
			    "[amy@example.org][amy@example.org]"
			    "[amy@example.org]");
	buf_free(&b);
}

/*
 * The renderer remembers root-level values within one render; inside a
 * section the innermost context must still win, and the next render
 * (another recipient) must see its own values.
 */
static void test_root_cache_scopes(void **state)
{
	struct buf b = BUF_INIT;
	struct vars_data vd;
	size_t root, items, item;
	const char *names[] = { "R", "S" };

	(void)state;
	for (int r = 0; r < 2; r++) {
		vars_tree_begin(&b);
		root = vars_open(&b, VARS_OBJECT);
		vars_put_name(&b, "name", 4);
		vars_put_scalar(&b, VARS_STRING, names[r], 1);
		vars_put_name(&b, "items", 5);
		items = vars_open(&b, VARS_LIST);
		for (int i = 0; i < 2; i++) {
			item = vars_open(&b, VARS_OBJECT);
			vars_put_name(&b, "name", 4);
			vars_put_scalar(&b, VARS_STRING, i ? "B" : "A", 1);
			vars_close(&b, item, 1);
		}
		vars_close(&b, items, 2);
		vars_close(&b, root, 2);
		assert_int_equal(vars_data_init(&vd, NULL, 0, NULL, "a@b.c", 5,
						b.data, b.len), 0);
		assert_string_equal(render("{{name}}|{{#items}}{{name}}|"
					   "{{/items}}{{name}}", &vd),
				    r == 0 ? "R|A|B|R" : "S|A|B|S");
	}
	buf_free(&b);
}

/* A damaged list count never makes a section repeat beyond the data. */
static void test_damaged_list_count(void **state)
{
	struct buf b = BUF_INIT;
	struct vars_data vd;
	size_t root, list;

	(void)state;
	vars_tree_begin(&b);
	root = vars_open(&b, VARS_OBJECT);
	vars_put_name(&b, "items", 5);
	list = vars_open(&b, VARS_LIST);
	vars_put_scalar(&b, VARS_NUMBER, "1", 1);
	vars_close(&b, list, 1);
	vars_close(&b, root, 1);
	/* count = 0x100000 for a list holding one byte-sized item */
	b.data[list] = 0;
	b.data[list + 2] = 0x10;
	assert_int_equal(vars_data_init(&vd, NULL, 0, NULL, "k@example.org",
					13, b.data, b.len), 0);
	assert_string_equal(render("[{{#items}}x{{/items}}]", &vd), "[]");
	buf_free(&b);
}

/* mail_clean - is src rendered with v = value clean 7bit mail text? */
static bool mail_clean(const char *src, const char *value, bool crlf)
{
	struct tmpl_params p = {
		"t", TMPL_ESCAPE_NONE, NULL, NULL, crlf, NULL,
	};
	struct buf names = BUF_INIT, vals = BUF_INIT, out = BUF_INIT;
	struct tmpl_error err;
	struct vars_data vd;
	struct tmpl *t;
	bool clean;

	vars_pack_begin(&names);
	vars_pack_str(&names, "v", 1);
	vars_pack_begin(&vals);
	vars_pack_str(&vals, value, strlen(value));
	assert_int_equal(vars_data_init(&vd, names.data, names.len, "email",
					"a@b.c", 5, vals.data, vals.len), 0);
	if (tmpl_compile(src, strlen(src), &p, &t, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(tmpl_render_mail(t, &vd.data, &out, &clean, NULL),
			 0);
	tmpl_free(&t);
	buf_free(&names);
	buf_free(&vals);
	buf_free(&out);
	return clean;
}

/* tmpl_render_mail's verdict decides 7bit without a second scan. */
static void test_render_mail_clean(void **state)
{
	char longv[1200];

	(void)state;
	assert_true(mail_clean("Hi {{v}},\nbye\n", "Ann", true));
	assert_false(mail_clean("Hi {{v}},\nbye\n", "Ann", false));
	assert_false(mail_clean("Hi {{v}}\n", "Zürich", true));
	assert_false(mail_clean("Hi {{v}}\n", "two\nlines", true));
	assert_false(mail_clean("Hi {{v}}\n", "cr\r", true));
	assert_false(mail_clean("Hi =\xc3\xa9\n", "", true));
	/* "=_" may start a MIME boundary: not even across a join. */
	assert_false(mail_clean("Hi ={{v}}\n", "_x", true));
	assert_false(mail_clean("Hi {{v}}_\n", "a=", true));
	assert_false(mail_clean("a=_b {{v}}\n", "", true));
	assert_true(mail_clean("a=b {{v}}\n", "_", true));
	/* Lines: 998 bytes fit, 999 do not, whoever made them. */
	memset(longv, 'x', sizeof(longv));
	longv[998 - 3] = '\0';
	assert_true(mail_clean("ab {{v}}\nnext\n", longv, true));
	assert_false(mail_clean("abc {{v}}\nnext\n", longv, true));
	assert_false(mail_clean("abc\n{{v}}xxxx", longv, true));
}

static void test_damaged_blobs(void **state)
{
	static const unsigned char unknown[] = { 0x09, 1, 2 };
	static const unsigned char cut[] = { VARS_FORMAT_TREE, 'o', 1, 0, 0,
					     0, 200, 0, 0, 0 };
	struct vars_data vd;

	(void)state;
	assert_int_equal(vars_data_init(&vd, NULL, 0, NULL, "a@b.c", 5,
					unknown, sizeof(unknown)), -1);
	assert_int_equal(vars_data_init(&vd, NULL, 0, NULL, "a@b.c", 5,
					cut, sizeof(cut)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flat_row),
		cmocka_unit_test(test_tree_row),
		cmocka_unit_test(test_crlf_template_text),
		cmocka_unit_test(test_tree_address_names),
		cmocka_unit_test(test_render_mail_clean),
		cmocka_unit_test(test_root_cache_scopes),
		cmocka_unit_test(test_damaged_list_count),
		cmocka_unit_test(test_damaged_blobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
