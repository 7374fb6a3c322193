/*
 * test_mustache - the template engine against the official Mustache spec
 * suites, plus what the spec leaves to us: error positions, HTML escaping
 * of ', the depth limits, root-name discovery and rendering without
 * allocation.
 *
 * The spec folder comes from $VOLLEY_MUSTACHE_SPEC (CTest sets it), else
 * ../shared/mustache-spec; a missing suite is a failure, never a skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "tmpl.h"

/* --- a struct tmpl_data over a jansson document ------------------------ */

/* Numbers need their text to outlive the lookup, so it is made up front. */
struct jnum {
	const json_t *j;
	char text[40];
};

struct jdata {
	struct tmpl_data d;
	struct jnum *nums;	/* sorted by j, for bsearch */
	size_t nnums;
	size_t cap;
};

/* jnum_cmp - order by node address */
static int jnum_cmp(const void *a, const void *b)
{
	const struct jnum *x = a, *y = b;

	return (uintptr_t)x->j < (uintptr_t)y->j ? -1 :
	       (uintptr_t)x->j > (uintptr_t)y->j;
}

/* jnum_format - the shortest text that reads back as the same number */
static void jnum_format(const json_t *j, char *out, size_t size)
{
	double v;
	int prec;

	if (json_is_integer(j)) {
		snprintf(out, size, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(j));
		return;
	}
	v = json_real_value(j);
	for (prec = 1; prec <= 17; prec++) {
		snprintf(out, size, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* jdata_collect - give every number in the document its text */
static void jdata_collect(struct jdata *jd, json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_number(j)) {
		if (jd->nnums == jd->cap) {
			jd->cap = jd->cap ? 2 * jd->cap : 16;
			jd->nums = realloc(jd->nums,
					   jd->cap * sizeof(*jd->nums));
			assert_non_null(jd->nums);
		}
		jd->nums[jd->nnums].j = j;
		jnum_format(j, jd->nums[jd->nnums].text,
			    sizeof(jd->nums[0].text));
		jd->nnums++;
	} else if (json_is_object(j)) {
		json_object_foreach(j, key, v)
			jdata_collect(jd, v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			jdata_collect(jd, v);
	}
}

/* jvalue - a jansson node as a struct tmpl_value */
static void jvalue(const struct jdata *jd, const json_t *j,
		   struct tmpl_value *out)
{
	struct jnum key, *n;

	memset(out, 0, sizeof(*out));
	switch (json_typeof(j)) {
	case JSON_NULL:
		out->kind = TMPL_NULL;
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		out->kind = TMPL_BOOL;
		out->boolean = json_is_true(j);
		break;
	case JSON_STRING:
		out->kind = TMPL_STRING;
		out->str = json_string_value(j);
		out->len = json_string_length(j);
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		key.j = j;
		n = bsearch(&key, jd->nums, jd->nnums, sizeof(*n), jnum_cmp);
		assert_non_null(n);
		out->kind = TMPL_NUMBER;
		out->str = n->text;
		out->len = strlen(n->text);
		break;
	case JSON_ARRAY:
		out->kind = TMPL_LIST;
		out->ref = j;
		break;
	case JSON_OBJECT:
		out->kind = TMPL_OBJECT;
		out->ref = j;
		break;
	}
}

/* jget - struct tmpl_data.get: a member of a JSON object */
static bool jget(const struct tmpl_data *d, const struct tmpl_value *obj,
		 const char *name, size_t len, struct tmpl_value *out)
{
	const json_t *v = json_object_getn(obj->ref, name, len);

	if (v == NULL)
		return false;
	jvalue(d->ctx, v, out);
	return true;
}

/* jlist_len - struct tmpl_data.list_len */
static size_t jlist_len(const struct tmpl_data *d,
			const struct tmpl_value *list)
{
	(void)d;
	return json_array_size(list->ref);
}

/* jlist_item - struct tmpl_data.list_item */
static void jlist_item(const struct tmpl_data *d,
		       const struct tmpl_value *list, size_t i,
		       struct tmpl_value *out)
{
	jvalue(d->ctx, json_array_get(list->ref, i), out);
}

/* jdata_init - a provider over doc (borrowed, not owned) */
static void jdata_init(struct jdata *jd, json_t *doc)
{
	memset(jd, 0, sizeof(*jd));
	jdata_collect(jd, doc);
	if (jd->nnums > 0)
		qsort(jd->nums, jd->nnums, sizeof(*jd->nums), jnum_cmp);
	jd->d.get = jget;
	jd->d.list_len = jlist_len;
	jd->d.list_item = jlist_item;
	jd->d.ctx = jd;
	jvalue(jd, doc, &jd->d.root);
}

/* jdata_free - free what jdata_init made (not the document) */
static void jdata_free(struct jdata *jd)
{
	free(jd->nums);
	jd->nums = NULL;
}

/* --- partial loaders ---------------------------------------------------- */

struct jpartials {
	const json_t *obj;	/* name -> source */
	unsigned loads;
};

/* jpartial - load a partial from a JSON object of name -> source */
static int jpartial(void *ctx, const char *name, struct buf *src)
{
	struct jpartials *jp = ctx;
	const json_t *v = jp->obj ? json_object_get(jp->obj, name) : NULL;

	jp->loads++;
	if (v == NULL)
		return 0;
	buf_append(src, json_string_value(v), json_string_length(v));
	return 1;
}

/* failing_partial - a loader that fails, as on a missing file */
static int failing_partial(void *ctx, const char *name, struct buf *src)
{
	(void)ctx;
	buf_printf(src, "cannot open %s.mustache", name);
	return -1;
}

/* --- helpers ------------------------------------------------------------ */

/* quote - s with control characters visible, for failure reports */
static const char *quote(struct buf *b, const char *s, size_t len)
{
	size_t i;

	buf_reset(b);
	buf_putc(b, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '\n')
			buf_append_str(b, "\\n");
		else if (s[i] == '\r')
			buf_append_str(b, "\\r");
		else if (s[i] == '\t')
			buf_append_str(b, "\\t");
		else if (s[i] == '"' || s[i] == '\\')
			buf_printf(b, "\\%c", s[i]);
		else
			buf_putc(b, s[i]);
	}
	buf_putc(b, '"');
	return buf_cstr(b);
}

/*
 * render_json - compile tmpl_src and render it with the JSON data into
 * out.  Returns 0, -1 if compiling failed (err filled), -2 if rendering
 * failed.
 */
static int render_json(const char *tmpl_src, const char *json,
		       enum tmpl_escape esc, const json_t *partials,
		       struct buf *out, struct tmpl_error *err)
{
	struct tmpl_params p = { "test.html", esc, jpartial, NULL, false };
	struct jpartials jp = { partials, 0 };
	struct tmpl *t;
	struct jdata jd;
	json_error_t jerr;
	json_t *doc;
	int rc;

	p.partial_ctx = &jp;
	doc = json_loads(json, JSON_DECODE_ANY, &jerr);
	if (doc == NULL)
		fail_msg("bad test JSON %s: %s", json, jerr.text);
	buf_reset(out);
	rc = tmpl_compile(tmpl_src, strlen(tmpl_src), &p, &t, err);
	if (rc == 0) {
		jdata_init(&jd, doc);
		rc = tmpl_render(t, &jd.d, out) < 0 ? -2 : 0;
		jdata_free(&jd);
		tmpl_free(&t);
	}
	json_decref(doc);
	return rc;
}

/* expect_render - assert that tmpl with data renders exactly want */
static void expect_render(const char *tmpl_src, const char *json,
			  enum tmpl_escape esc, const char *want)
{
	struct buf out = BUF_INIT;
	struct tmpl_error err;
	int rc = render_json(tmpl_src, json, esc, NULL, &out, &err);

	if (rc == -1)
		fail_msg("%s: compile failed: %s", tmpl_src, err.message);
	assert_int_equal(rc, 0);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
}

/* --- the spec suites ---------------------------------------------------- */

/* spec_dir - where the spec suites are */
static const char *spec_dir(void)
{
	const char *d = getenv("VOLLEY_MUSTACHE_SPEC");

	return d && *d ? d : "../shared/mustache-spec";
}

/* run_spec_file - run every case of one suite, report each failure */
static void run_spec_file(const char *file)
{
	char path[1024];
	struct buf out = BUF_INIT, q1 = BUF_INIT, q2 = BUF_INIT;
	json_error_t jerr;
	json_t *root, *tests, *tc;
	size_t i, passed = 0, failed = 0;

	snprintf(path, sizeof(path), "%s/%s", spec_dir(), file);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL)
		fail_msg("cannot load Mustache spec suite %s: %s "
			 "(set VOLLEY_MUSTACHE_SPEC to the mustache-spec folder)",
			 path, jerr.text);
	tests = json_object_get(root, "tests");
	if (!json_is_array(tests) || json_array_size(tests) == 0)
		fail_msg("%s: no \"tests\" array", path);

	json_array_foreach(tests, i, tc) {
		const char *name = json_string_value(json_object_get(tc, "name"));
		const json_t *tj = json_object_get(tc, "template");
		const json_t *ej = json_object_get(tc, "expected");
		struct jpartials jp = { json_object_get(tc, "partials"), 0 };
		struct tmpl_params p = { name, TMPL_ESCAPE_HTML, jpartial, &jp, false };
		struct tmpl_error err;
		struct tmpl *t;
		struct jdata jd;
		int rc;

		buf_reset(&out);
		rc = tmpl_compile(json_string_value(tj),
				  json_string_length(tj), &p, &t, &err);
		if (rc < 0) {
			print_message("FAIL %s / %s: compile: %s\n", file,
				      name, err.message);
			failed++;
			continue;
		}
		jdata_init(&jd, json_object_get(tc, "data"));
		rc = tmpl_render(t, &jd.d, &out);
		jdata_free(&jd);
		tmpl_free(&t);
		if (rc == 0 && out.len == json_string_length(ej) &&
		    memcmp(buf_cstr(&out), json_string_value(ej), out.len) == 0) {
			passed++;
			continue;
		}
		failed++;
		print_message("FAIL %s / %s (render %d)\n  expected: %s\n",
			      file, name, rc,
			      quote(&q1, json_string_value(ej),
				    json_string_length(ej)));
		print_message("  actual:   %s\n",
			      quote(&q2, buf_cstr(&out), out.len));
	}
	print_message("%s: %zu/%zu spec cases passed\n", file, passed,
		      passed + failed);
	json_decref(root);
	buf_free(&out);
	buf_free(&q1);
	buf_free(&q2);
	if (failed > 0)
		fail_msg("%s: %zu spec cases failed", file, failed);
}

static void test_spec_interpolation(void **state)
{
	(void)state;
	run_spec_file("interpolation.json");
}

static void test_spec_sections(void **state)
{
	(void)state;
	run_spec_file("sections.json");
}

static void test_spec_inverted(void **state)
{
	(void)state;
	run_spec_file("inverted.json");
}

static void test_spec_comments(void **state)
{
	(void)state;
	run_spec_file("comments.json");
}

static void test_spec_delimiters(void **state)
{
	(void)state;
	run_spec_file("delimiters.json");
}

static void test_spec_partials(void **state)
{
	(void)state;
	run_spec_file("partials.json");
}

/* --- compile errors ----------------------------------------------------- */

struct error_case {
	const char *src;
	const char *message;
	unsigned line;
	unsigned column;
};

static void test_compile_errors(void **state)
{
	static const struct error_case cases[] = {
		{ "Hi\n  {{#items}}\n{{name}}\n", "body.html:2:3: unclosed section 'items'", 2, 3 },
		{ "{{#a}}{{#b}}\n", "body.html:1:7: unclosed section 'b'", 1, 7 },
		{ "x\n\n{{#a}}\n..\n\n\n{{/b}}", "body.html:7:1: close tag 'b' does not match open section 'a' (opened at 3:1)", 7, 1 },
		{ "{{^a}}{{/ b }}", "body.html:1:7: close tag 'b' does not match open section 'a' (opened at 1:1)", 1, 7 },
		{ "ok\nx {{/x}}", "body.html:2:3: stray close tag 'x'", 2, 3 },
		{ "Dear {{name", "body.html:1:6: unclosed tag (expected '}}')", 1, 6 },
		{ "Dear {{name,\nsee {{url}}", "body.html:1:6: unclosed tag (expected '}}')", 1, 6 },
		{ "a\n {{{name}}", "body.html:2:2: unclosed tag (expected '}}}')", 2, 2 },
		{ "{{=<% %>=}}\n<%name", "body.html:2:1: unclosed tag (expected '%>')", 2, 1 },
		{ "{{! no end", "body.html:1:1: unclosed tag (expected '}}')", 1, 1 },
		{ "x {{=<% %>}}", "body.html:1:3: bad set-delimiter tag", 1, 3 },
		{ "{{=<%=}}", "body.html:1:1: bad set-delimiter tag", 1, 1 },
		{ "{{=<% %> x=}}", "body.html:1:1: bad set-delimiter tag", 1, 1 },
		{ "{{=<= =>=}}", "body.html:1:1: bad set-delimiter tag", 1, 1 },
		{ "a\n\t{{ }}", "body.html:2:2: empty tag name", 2, 2 },
		{ "{{#}}{{/}}", "body.html:1:1: empty tag name", 1, 1 },
		{ "{{{ }}}", "body.html:1:1: empty tag name", 1, 1 },
		{ "{{> }}", "body.html:1:1: empty tag name", 1, 1 },
	};
	struct tmpl_params p = { "body.html", TMPL_ESCAPE_HTML, NULL, NULL, false };
	struct tmpl_error err;
	struct tmpl *t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct error_case *c = &cases[i];

		t = (struct tmpl *)&err;	/* must be reset to NULL */
		assert_int_equal(tmpl_compile(c->src, strlen(c->src), &p, &t,
					      &err), -1);
		assert_null(t);
		assert_string_equal(err.message, c->message);
		assert_int_equal(err.line, c->line);
		assert_int_equal(err.column, c->column);
	}

	/* Without a file name, messages still have the FILE: part. */
	assert_int_equal(tmpl_compile("{{/x}}", 6, NULL, &t, &err), -1);
	assert_string_equal(err.message, "template:1:1: stray close tag 'x'");
}

static void test_partial_errors(void **state)
{
	struct jpartials jp = { NULL, 0 };
	struct tmpl_params p = { "body.html", TMPL_ESCAPE_HTML, jpartial, &jp, false };
	struct tmpl_error err;
	struct tmpl *t;
	json_t *parts;
	const char *src;

	(void)state;
	/* An error in a partial names the partial and its own position. */
	parts = json_pack("{s:s, s:s}", "footer", "ok\n {{/x}}\n",
			  "deep", "  {{>deep}}\n");
	jp.obj = parts;
	src = "Hi\n{{#a}}\n  {{>footer}}\n{{/a}}\n";
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), -1);
	assert_string_equal(err.message, "partial 'footer':2:2: stray close tag 'x'");
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 2);

	/*
	 * A partial that includes itself on an indented standalone line
	 * needs a new unit per level, so it must hit the nesting cap.
	 */
	src = "{{>deep}}";
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), -1);
	assert_string_equal(err.message, "partial 'deep':1:3: partials nested too deep");

	/* A loader failure is reported at the tag with the loader's text. */
	p.partial = failing_partial;
	src = "x\n  {{> footer }}";
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), -1);
	assert_string_equal(err.message,
			    "body.html:2:3: cannot load partial 'footer': cannot open footer.mustache");
	json_decref(parts);
}

/* --- rendering ---------------------------------------------------------- */

static void test_escape_html_and_none(void **state)
{
	const char *src = "{{x}}|{{{x}}}|{{&x}}|{{ x }}";
	const char *data = "{\"x\": \"<a href=\\\"u?a=1&b=2\\\">O'Neil</a>\"}";

	(void)state;
	expect_render(src, data, TMPL_ESCAPE_HTML,
		      "&lt;a href=&quot;u?a=1&amp;b=2&quot;&gt;O&#39;Neil&lt;/a&gt;|"
		      "<a href=\"u?a=1&b=2\">O'Neil</a>|"
		      "<a href=\"u?a=1&b=2\">O'Neil</a>|"
		      "&lt;a href=&quot;u?a=1&amp;b=2&quot;&gt;O&#39;Neil&lt;/a&gt;");
	expect_render(src, data, TMPL_ESCAPE_NONE,
		      "<a href=\"u?a=1&b=2\">O'Neil</a>|"
		      "<a href=\"u?a=1&b=2\">O'Neil</a>|"
		      "<a href=\"u?a=1&b=2\">O'Neil</a>|"
		      "<a href=\"u?a=1&b=2\">O'Neil</a>");
	/* Numbers escape too (harmlessly) and keep their text. */
	expect_render("{{n}} {{m}}", "{\"n\": 1.5, \"m\": -3}",
		      TMPL_ESCAPE_HTML, "1.5 -3");
}

static void test_order_receipt(void **state)
{
	const char *src =
		"Order {{order.id}} for {{customer.name}}\n"
		"{{#items}}\n"
		"- {{name}} x{{qty}}{{#gift}} (gift){{/gift}}\n"
		"{{/items}}\n"
		"{{^items}}\n"
		"(no items)\n"
		"{{/items}}\n"
		"Total: {{order.total}} {{currency}}\n";
	const char *data =
		"{\"order\": {\"id\": \"A-17\", \"total\": 31.5},"
		" \"customer\": {\"name\": \"Ada\"}, \"currency\": \"EUR\","
		" \"items\": [{\"name\": \"Tea\", \"qty\": 2},"
		"            {\"name\": \"Mug\", \"qty\": 1, \"gift\": true},"
		"            {\"name\": \"Spoon\", \"qty\": 12, \"currency\": \"X\"}]}";

	(void)state;
	expect_render(src, data, TMPL_ESCAPE_NONE,
		      "Order A-17 for Ada\n"
		      "- Tea x2\n"
		      "- Mug x1 (gift)\n"
		      "- Spoon x12\n"
		      "Total: 31.5 EUR\n");
	expect_render(src, "{\"order\": {\"id\": 1, \"total\": 0},"
		      " \"customer\": {\"name\": \"Bo\"}, \"items\": []}",
		      TMPL_ESCAPE_NONE,
		      "Order 1 for Bo\n(no items)\nTotal: 0 \n");
}

static void test_truthiness_and_values(void **state)
{
	(void)state;
	/* An empty string is false; the number 0 and "0" are true. */
	expect_render("[{{#s}}y{{/s}}{{^s}}n{{/s}}]", "{\"s\": \"\"}",
		      TMPL_ESCAPE_NONE, "[n]");
	expect_render("[{{#s}}{{.}}{{/s}}]", "{\"s\": \"0\"}",
		      TMPL_ESCAPE_NONE, "[0]");
	expect_render("[{{#n}}{{.}}{{/n}}]", "{\"n\": 0}",
		      TMPL_ESCAPE_NONE, "[0]");
	expect_render("[{{#o}}y{{/o}}{{^o}}n{{/o}}]", "{\"o\": {}}",
		      TMPL_ESCAPE_NONE, "[y]");
	/* Booleans print as words; null, lists and objects as nothing. */
	expect_render("{{t}} {{f}} [{{z}}{{l}}{{o}}{{missing}}]",
		      "{\"t\": true, \"f\": false, \"z\": null,"
		      " \"l\": [1], \"o\": {\"a\": 1}}",
		      TMPL_ESCAPE_NONE, "true false []");
}

/*
 * A template whose only names are "." has no name parts at all, which
 * the renderer once indexed anyway (null plus zero: undefined behaviour,
 * reported by clang's UBSan; found by fuzz_tmpl).
 */
static void test_implicit_iterator_only(void **state)
{
	(void)state;
	expect_render("{{.}}", "\"<b>\"", TMPL_ESCAPE_HTML, "&lt;b&gt;");
	expect_render("[{{.}}|{{{.}}}]", "\"<b>\"", TMPL_ESCAPE_HTML,
		      "[&lt;b&gt;|<b>]");
	expect_render("{{#.}}{{.}}{{/.}}", "[1, 2]", TMPL_ESCAPE_NONE, "12");
}

static void test_depth_limit(void **state)
{
	struct buf src = BUF_INIT, out = BUF_INIT;
	struct tmpl_error err;
	int depth, rc;

	(void)state;
	for (depth = TMPL_MAX_DEPTH; depth <= TMPL_MAX_DEPTH + 1; depth++) {
		buf_reset(&src);
		for (int i = 0; i < depth; i++)
			buf_append_str(&src, "{{#t}}");
		buf_append_str(&src, "x");
		for (int i = 0; i < depth; i++)
			buf_append_str(&src, "{{/t}}");
		rc = render_json(buf_cstr(&src), "{\"t\": true}",
				 TMPL_ESCAPE_NONE, NULL, &out, &err);
		if (depth == TMPL_MAX_DEPTH) {
			assert_int_equal(rc, 0);
			assert_string_equal(buf_cstr(&out), "x");
		} else {
			assert_int_equal(rc, -2);
		}
	}
	buf_free(&src);
	buf_free(&out);
}

static void test_recursive_partials(void **state)
{
	struct buf out = BUF_INIT;
	struct tmpl_error err;
	json_t *parts;

	(void)state;
	/* Self-inclusion outside any section compiles but cannot render. */
	parts = json_pack("{s:s}", "loop", "x{{>loop}}");
	assert_int_equal(render_json("{{>loop}}", "{}", TMPL_ESCAPE_NONE,
				     parts, &out, &err), -2);
	json_decref(parts);

	/*
	 * On an indented line each level is a new (name, indentation)
	 * unit, and the data's depth is unknown at compile time, so a
	 * self-inclusion on an indented standalone line is refused.
	 */
	parts = json_pack("{s:s}", "node",
			  "{{name}}\n{{#kids}}\n  {{>node}}\n{{/kids}}\n");
	assert_int_equal(render_json("{{>node}}",
				     "{\"name\": \"a\", \"kids\": [{\"name\": \"b\","
				     " \"kids\": [{\"name\": \"c\"}]}, {\"name\": \"d\"}]}",
				     TMPL_ESCAPE_NONE, parts, &out, &err), -1);
	assert_string_equal(err.message,
			    "partial 'node':3:3: partials nested too deep");
	json_decref(parts);
	buf_free(&out);
}

static void test_partial_indentation(void **state)
{
	struct jpartials jp = { NULL, 0 };
	struct tmpl_params p = { "x", TMPL_ESCAPE_NONE, jpartial, &jp, false };
	struct tmpl_error err;
	struct buf out = BUF_INIT;
	struct jdata jd;
	struct tmpl *t;
	json_t *parts, *doc;
	const char *src =
		"<ul>\n"
		"  {{>item}}\n"
		"    {{>item}}\n"
		"{{>item}}\n"
		"x{{>item}}\n"
		"</ul>\n"
		"  {{>wrap}}\n";

	(void)state;
	/*
	 * Indentation nests, blank lines stay blank, values are not
	 * indented, and a partial inside a line of an indented partial
	 * continues that line but indents its later lines.
	 */
	parts = json_pack("{s:s, s:s, s:s, s:s}",
			  "item", "<li>\n\n  {{>inner}}\n</li>\n",
			  "inner", "{{v}}\n",
			  "wrap", "<p>{{>two}}</p>\n",
			  "two", "a\nb");
	doc = json_pack("{s:s}", "v", "1\n2");
	jp.obj = parts;
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), 0);
	/* Each partial is loaded once, however many indentations it has. */
	assert_int_equal(jp.loads, 4);
	jdata_init(&jd, doc);
	assert_int_equal(tmpl_render(t, &jd.d, &out), 0);
	assert_string_equal(buf_cstr(&out),
			    "<ul>\n"
			    "  <li>\n\n    1\n2\n  </li>\n"
			    "    <li>\n\n      1\n2\n    </li>\n"
			    "<li>\n\n  1\n2\n</li>\n"
			    "x<li>\n\n  1\n2\n</li>\n\n"
			    "</ul>\n"
			    "  <p>a\n  b</p>\n");
	jdata_free(&jd);
	tmpl_free(&t);
	assert_null(t);
	json_decref(parts);
	json_decref(doc);
	buf_free(&out);
}

/*
 * Rendering allocates nothing: into a buffer that already has room, the
 * storage never moves, and rendering again gives the same bytes.
 */
static void test_render_no_alloc(void **state)
{
	struct jpartials jp = { NULL, 0 };
	struct tmpl_params p = { "body.html", TMPL_ESCAPE_HTML, jpartial, &jp, false };
	struct tmpl_error err;
	struct buf out = BUF_INIT, first = BUF_INIT;
	struct jdata jd;
	struct tmpl *t;
	json_t *parts, *doc;
	char *data;
	const char *src =
		"Hello {{name}} & co,\n"
		"{{#items}}\n"
		"  {{>line}}\n"
		"{{/items}}\n"
		"{{^items}}none{{/items}}{{! done }}\n";

	(void)state;
	parts = json_pack("{s:s}", "line", "{{name}}: {{qty}} <{{note}}>\n");
	doc = json_pack("{s:s, s:[{s:s, s:i}, {s:s, s:f, s:s}]}",
			"name", "O'Brien",
			"items", "name", "a", "qty", 1,
			"name", "b", "qty", 2.5, "note", "\"x\"");
	jp.obj = parts;
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), 0);
	jdata_init(&jd, doc);

	buf_reserve(&out, 4096);
	data = out.data;
	assert_int_equal(tmpl_render(t, &jd.d, &out), 0);
	assert_ptr_equal(out.data, data);
	buf_append(&first, out.data, out.len);
	assert_string_equal(buf_cstr(&first),
			    "Hello O&#39;Brien & co,\n"
			    "  a: 1 <>\n"
			    "  b: 2.5 <&quot;x&quot;>\n"
			    "\n");
	for (int i = 0; i < 3; i++) {
		buf_reset(&out);
		assert_int_equal(tmpl_render(t, &jd.d, &out), 0);
		assert_ptr_equal(out.data, data);
		assert_int_equal(out.len, first.len);
		assert_memory_equal(out.data, first.data, first.len);
	}
	jdata_free(&jd);
	tmpl_free(&t);
	json_decref(parts);
	json_decref(doc);
	buf_free(&out);
	buf_free(&first);
}

/* --- tmpl_top_names ----------------------------------------------------- */

static void collect_name(void *ctx, const char *name, size_t len,
			 unsigned line, unsigned column)
{
	buf_printf(ctx, "%.*s@%u:%u ", (int)len, name, line, column);
}

static void test_top_names(void **state)
{
	struct jpartials jp = { NULL, 0 };
	struct tmpl_params p = { "body.html", TMPL_ESCAPE_HTML, jpartial, &jp, false };
	struct tmpl_error err;
	struct buf names = BUF_INIT;
	struct tmpl *t;
	json_t *parts;
	const char *src =
		"Hi {{first}} {{ last }},\n"
		"{{#items}}{{name}} {{first}}{{/items}}\n"
		"{{^vip}}{{offer}}{{/vip}} {{.}}\n"
		"  {{> footer}}\n"
		"{{#items}}{{>inner}}{{/items}}{{address.city}} {{{first}}}\n"
		"{{=<% %>=}}<%&address.zip%> <%sender%>\n";

	(void)state;
	parts = json_pack("{s:s, s:s}",
			  "footer", "{{unsubscribe}}\n{{#x}}{{y}}{{/x}}{{>footer}}",
			  "inner", "{{never_top}}");
	jp.obj = parts;
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), 0);
	tmpl_top_names(t, collect_name, &names);
	assert_string_equal(buf_cstr(&names),
			    "first@1:4 last@1:14 unsubscribe@4:3 "
			    "address@5:31 sender@6:29 ");
	tmpl_free(&t);
	json_decref(parts);
	buf_free(&names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_interpolation),
		cmocka_unit_test(test_spec_sections),
		cmocka_unit_test(test_spec_inverted),
		cmocka_unit_test(test_spec_comments),
		cmocka_unit_test(test_spec_delimiters),
		cmocka_unit_test(test_spec_partials),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_partial_errors),
		cmocka_unit_test(test_escape_html_and_none),
		cmocka_unit_test(test_order_receipt),
		cmocka_unit_test(test_truthiness_and_values),
		cmocka_unit_test(test_implicit_iterator_only),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_recursive_partials),
		cmocka_unit_test(test_partial_indentation),
		cmocka_unit_test(test_render_no_alloc),
		cmocka_unit_test(test_top_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
