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
	struct tmpl_params p = {
		"test.html", esc, jpartial, NULL, false, NULL,
	};
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

/*
 * Spec cases whose template is not HTML that a browser would read as the
 * text around its tags says ("X<Y<>>" has a tag named "y<"), so volley's
 * HTML escaping by context must refuse them at compile time.
 */
static const char *const spec_not_html[] = {
	"partials.json / Recursion",
};

/* spec_is_html - may the case compile as an HTML template? */
static bool spec_is_html(const char *file, const char *name)
{
	char id[256];

	snprintf(id, sizeof(id), "%s / %s", file, name);
	for (size_t i = 0; i < sizeof(spec_not_html) /
			       sizeof(spec_not_html[0]); i++) {
		if (strcmp(id, spec_not_html[i]) == 0)
			return false;
	}
	return true;
}

/*
 * run_spec_file - run every case of one suite, report each failure.  The
 * spec's HTML escaping is TMPL_ESCAPE_HTML_PLAIN's; TMPL_ESCAPE_HTML
 * must render the same, but for the cases of spec_not_html, which it
 * must refuse.
 */
static void run_spec_file(const char *file, enum tmpl_escape esc)
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
		struct tmpl_params p = {
			name, esc, jpartial, &jp, false, NULL,
		};
		bool html = esc != TMPL_ESCAPE_HTML || spec_is_html(file, name);
		struct tmpl_error err;
		struct tmpl *t;
		struct jdata jd;
		int rc;

		buf_reset(&out);
		rc = tmpl_compile(json_string_value(tj),
				  json_string_length(tj), &p, &t, &err);
		if (!html) {
			if (rc == 0 ||
			    !strstr(err.message, "but begins inside")) {
				print_message("FAIL %s / %s: compiled as HTML "
					      "(%s)\n", file, name,
					      rc ? err.message : "no error");
				failed++;
				tmpl_free(&t);
			} else {
				passed++;
			}
			continue;
		}
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
	print_message("%s (%s): %zu/%zu spec cases passed\n", file,
		      esc == TMPL_ESCAPE_HTML ? "HTML by context" :
		      "plain HTML escaping", passed, passed + failed);
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
	run_spec_file("interpolation.json", TMPL_ESCAPE_HTML_PLAIN);
	run_spec_file("interpolation.json", TMPL_ESCAPE_HTML);
}

static void test_spec_sections(void **state)
{
	(void)state;
	run_spec_file("sections.json", TMPL_ESCAPE_HTML_PLAIN);
	run_spec_file("sections.json", TMPL_ESCAPE_HTML);
}

static void test_spec_inverted(void **state)
{
	(void)state;
	run_spec_file("inverted.json", TMPL_ESCAPE_HTML_PLAIN);
	run_spec_file("inverted.json", TMPL_ESCAPE_HTML);
}

static void test_spec_comments(void **state)
{
	(void)state;
	run_spec_file("comments.json", TMPL_ESCAPE_HTML_PLAIN);
	run_spec_file("comments.json", TMPL_ESCAPE_HTML);
}

static void test_spec_delimiters(void **state)
{
	(void)state;
	run_spec_file("delimiters.json", TMPL_ESCAPE_HTML_PLAIN);
	run_spec_file("delimiters.json", TMPL_ESCAPE_HTML);
}

static void test_spec_partials(void **state)
{
	(void)state;
	run_spec_file("partials.json", TMPL_ESCAPE_HTML_PLAIN);
	run_spec_file("partials.json", TMPL_ESCAPE_HTML);
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
	struct tmpl_params p = {
		"body.html", TMPL_ESCAPE_HTML, NULL, NULL, false, NULL,
	};
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
	struct tmpl_params p = {
		"body.html", TMPL_ESCAPE_HTML, jpartial, &jp, false, NULL,
	};
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

/* tmpl_constant: text alone, whatever the delimiters and comments */
static void test_constant(void **state)
{
	static const struct {
		const char *src;
		bool constant;
	} cases[] = {
		{ "", true },
		{ "News <news@example.org>", true },
		{ "a {{! a comment }}b\n", true },
		{ "{{=<% %>=}}{{x}}", true },
		{ "{{x}}", false },
		{ "a {{{x}}} b", false },
		{ "{{&x}}", false },
		{ "{{.}}", false },
		{ "{{#a}}{{/a}}", false },
		{ "{{^a}}no{{/a}}", false },
		{ "{{> footer}}", false },
	};
	struct jpartials jp = { NULL, 0 };
	struct tmpl_params p = {
		"from", TMPL_ESCAPE_NONE, jpartial, &jp, false, NULL,
	};
	json_t *parts = json_pack("{s:s}", "footer", "constant too");
	struct tmpl_error err;
	struct tmpl *t;

	(void)state;
	jp.obj = parts;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tmpl_compile(cases[i].src,
					      strlen(cases[i].src), &p, &t,
					      &err), 0);
		if (tmpl_constant(t) != cases[i].constant)
			fail_msg("tmpl_constant(\"%s\") is not %d",
				 cases[i].src, cases[i].constant);
		tmpl_free(&t);
	}
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
	struct tmpl_params p = {
		"x", TMPL_ESCAPE_NONE, jpartial, &jp, false, NULL,
	};
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
	struct tmpl_params p = {
		"body.html", TMPL_ESCAPE_HTML, jpartial, &jp, false, NULL,
	};
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

/* --- HTML escaping by context: URLs ------------------------------------ */

#define UNSAFE TMPL_UNSAFE_URL

/* expect_html - tmpl as an HTML template with {"u": u} renders want */
static void expect_html(const char *tmpl_src, const char *u, const char *want)
{
	json_t *doc = json_pack("{s:s}", "u", u);
	char *data = json_dumps(doc, JSON_ENCODE_ANY);

	expect_render(tmpl_src, data, TMPL_ESCAPE_HTML, want);
	free(data);
	json_decref(doc);
}

/* put_in - form with its "%s" replaced by what, into b */
static void put_in(struct buf *b, const char *form, const char *what)
{
	const char *at = strstr(form, "%s");

	buf_reset(b);
	buf_append(b, form, (size_t)(at - form));
	buf_append_str(b, what);
	buf_append_str(b, at + 2);
}

/*
 * A variable that starts a URL attribute's value must give a safe URL:
 * http, https, mailto or no scheme; others, however written, are
 * replaced.  Quoted either way or not at all, in any URL attribute.
 */
static void test_url_start_scheme(void **state)
{
	static const char *const bad[] = {
		"javascript:alert(1)", "JavaScript:alert(1)",
		"JAVASCRIPT:alert(1)", "  javascript:alert(1)",
		"\t\njavascript:alert(1)", "java\tscript:alert(1)",
		"java\nscript:alert(1)", "\x01javascript:alert(1)",
		"data:text/html;base64,PHNjcmlwdD4=", "DATA:text/html,x",
		"vbscript:msgbox(1)", "file:///etc/passwd", "foo:bar",
		"a b:c", "ｊavascript:x",
	};
	static const struct {
		const char *u, *out;
	} good[] = {
		{ "https://example.org/?a=1&b=2",
		  "https://example.org/?a=1&amp;b=2" },
		{ "HTTP://example.org/", "HTTP://example.org/" },
		{ "Https://x/\"y", "Https://x/&quot;y" },
		{ "mailto:ada@example.org", "mailto:ada@example.org" },
		{ " https://x/", " https://x/" },
		{ "/path/page.html?t=12:30", "/path/page.html?t=12:30" },
		{ "page.html", "page.html" },
		{ "//example.org/x:y", "//example.org/x:y" },
		{ "?q=a:b", "?q=a:b" },
		{ "#top:x", "#top:x" },
		/* escaped, it is a path and a fragment to a browser too */
		{ "java&#115;cript:x", "java&amp;#115;cript:x" },
		{ "", "" },
	};
	static const char *const forms[] = {
		"<a href=\"%s\">", "<a href='%s'>", "<a href=%s>",
		"<img src=\"%s\">", "<form action=\"%s\">",
		"<button formaction=\"%s\">", "<q cite=\"%s\">",
		"<video poster=\"%s\">", "<td background=\"%s\">",
		"<A HREF = \"%s\">", "<a title=x href=\"%s\">",
		"<a\nhref=\"%s\">", "<svg><a xlink:href=\"%s\">",
	};
	struct buf src = BUF_INIT, want = BUF_INIT;

	(void)state;
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		put_in(&src, forms[f], "{{u}}");
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			put_in(&want, forms[f], UNSAFE);
			expect_html(buf_cstr(&src), bad[i], buf_cstr(&want));
		}
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			/* unquoted values escape more: see below */
			if (strstr(forms[f], "=%s") &&
			    strpbrk(good[i].u, " =&\"'<>`"))
				continue;
			put_in(&want, forms[f], good[i].out);
			expect_html(buf_cstr(&src), good[i].u,
				    buf_cstr(&want));
		}
	}
	buf_free(&src);
	buf_free(&want);
	/* Spaces before the variable do not make it the URL's rest. */
	expect_html("<a href=\"  {{u}}\">", "javascript:x",
		    "<a href=\"  " UNSAFE "\">");
	expect_html("<a href=\"\n{{u}}\">", "javascript:x",
		    "<a href=\"\n" UNSAFE "\">");
	/* Numbers and booleans are relative URLs; nothing is nothing. */
	expect_render("<a href=\"{{n}}\">{{#t}}<a href=\"{{t}}\">{{/t}}"
		      "<a href=\"{{none}}\">", "{\"n\": 12, \"t\": true}",
		      TMPL_ESCAPE_HTML,
		      "<a href=\"12\"><a href=\"true\"><a href=\"\">");
}

/*
 * After the URL's first byte, in its path, query or fragment, a value is
 * percent-encoded: only A-Z a-z 0-9 - . _ ~ stay as they are.
 */
static void test_url_rest_encoded(void **state)
{
	(void)state;
	expect_html("<a href=\"https://example.org/?e={{u}}\">",
		    "a+b@example.org",
		    "<a href=\"https://example.org/?e=a%2Bb%40example.org\">");
	expect_html("<a href='https://x/u/{{u}}/'>", "a/b c?d#e",
		    "<a href='https://x/u/a%2Fb%20c%3Fd%23e/'>");
	expect_html("<a href=https://x/#{{u}}>", "x\"y' z>",
		    "<a href=https://x/#x%22y%27%20z%3E>");
	expect_html("<a href=\"/p?q={{u}}\">", "Zürich & co",
		    "<a href=\"/p?q=Z%C3%BCrich%20%26%20co\">");
	expect_html("<a href=\"{{u}}\">", "-._~AZaz09",
		    "<a href=\"-._~AZaz09\">");
	/* A scheme in the URL's rest is no scheme: encoded, not checked. */
	expect_html("<a href=\"https://x/?next={{u}}\">",
		    "javascript:alert(1)",
		    "<a href=\"https://x/?next=javascript%3Aalert%281%29\">");
	expect_html("<a href=\"data:{{u}}\">", "text/html,<b>",
		    "<a href=\"data:text%2Fhtml%2C%3Cb%3E\">");
	/* The URL has begun after a first value: the second is encoded. */
	expect_render("<a href=\"{{a}}{{b}}\">",
		      "{\"a\": \"https://x/?q=\", \"b\": \"javascript:1\"}",
		      TMPL_ESCAPE_HTML,
		      "<a href=\"https://x/?q=javascript%3A1\">");
	expect_render("<a href=\"{{a}}/u/{{b}}?e={{c}}\">",
		      "{\"a\": \"https://x\", \"b\": \"1 2\", \"c\": \"@\"}",
		      TMPL_ESCAPE_HTML,
		      "<a href=\"https://x/u/1%202?e=%40\">");
}

/*
 * Character references in the template's own text are read as a browser
 * reads them: a reference to a space leaves the URL unbegun, any other
 * begins it.
 */
static void test_url_literal_references(void **state)
{
	(void)state;
	expect_html("<a href=\"&#32;{{u}}\">", "javascript:x",
		    "<a href=\"&#32;" UNSAFE "\">");
	expect_html("<a href=\"&#x09;&NewLine;&Tab;&#10;&#13;{{u}}\">",
		    "javascript:x",
		    "<a href=\"&#x09;&NewLine;&Tab;&#10;&#13;" UNSAFE "\">");
	/*
	 * A reference cut short by a value ("&#10" then "5...": &#105;)
	 * is taken to begin the URL: encoding is the safe side.
	 */
	expect_html("<a href=\"&#10{{u}}\">", "javascript:x",
		    "<a href=\"&#10javascript%3Ax\">");
	expect_html("<a href=\"&#104;ttps://x/?e={{u}}\">", "a b",
		    "<a href=\"&#104;ttps://x/?e=a%20b\">");
	expect_html("<a href=\"&amp;{{u}}\">", "javascript:x",
		    "<a href=\"&amp;javascript%3Ax\">");
	/* A reference the text cuts short counts as the URL's start. */
	expect_render("<a href=\"&#3{{! }}2;{{u}}\">", "{\"u\": \"a:b\"}",
		      TMPL_ESCAPE_HTML, "<a href=\"&#32;a%3Ab\">");
	/* &quot; in a quoted value does not end it. */
	expect_html("<a title=\"&quot;\" href=\"{{u}}\">", "vbscript:x",
		    "<a title=\"&quot;\" href=\"" UNSAFE "\">");
}

/*
 * {{{x}}} and {{&x}} are never escaped or encoded, but still checked at
 * a URL's start, where a '&' before the scheme's end fails them.
 */
static void test_url_raw(void **state)
{
	(void)state;
	expect_html("<a href=\"{{{u}}}\">", "javascript:alert(1)",
		    "<a href=\"" UNSAFE "\">");
	expect_html("<a href=\"{{&u}}\">", "https://x/?a=1&b=2",
		    "<a href=\"https://x/?a=1&b=2\">");
	expect_html("<a href=\"{{{u}}}\">", "javascript&colon;alert(1)",
		    "<a href=\"" UNSAFE "\">");
	expect_html("<a href=\"{{{u}}}\">", "&#106;avascript:alert(1)",
		    "<a href=\"" UNSAFE "\">");
	expect_html("<a href=\"https://x/?q={{{u}}}\">", "a b&c=d",
		    "<a href=\"https://x/?q=a b&c=d\">");
}

/* Outside URL attributes, and in text templates, nothing changes. */
static void test_url_elsewhere(void **state)
{
	const char *js = "javascript:alert(1)";

	(void)state;
	expect_html("{{u}} <p title=\"{{u}}\" class='{{u}}'>", js,
		    "javascript:alert(1) <p title=\"javascript:alert(1)\" "
		    "class='javascript:alert(1)'>");
	expect_html("<a data-href=\"{{u}}\" hreflang=\"{{u}}\">", js,
		    "<a data-href=\"javascript:alert(1)\" "
		    "hreflang=\"javascript:alert(1)\">");
	/* Comments, script, style and textarea hold no tags. */
	expect_html("<!-- <a href=\"{{u}}\"> --><a href=\"{{u}}\">", js,
		    "<!-- <a href=\"javascript:alert(1)\"> -->"
		    "<a href=\"" UNSAFE "\">");
	expect_html("<script>x = '<a href=\"{{u}}\">';</SCRIPT >"
		    "<a href=\"{{u}}\">", js,
		    "<script>x = '<a href=\"javascript:alert(1)\">';</SCRIPT >"
		    "<a href=\"" UNSAFE "\">");
	expect_html("<style>a{}</styles><a href=\"{{u}}\"></style>"
		    "<img src={{u}}>", js,
		    "<style>a{}</styles><a href=\"javascript:alert(1)\">"
		    "</style><img src=" UNSAFE ">");
	expect_html("<textarea><a href=\"{{u}}\"></textarea>", js,
		    "<textarea><a href=\"javascript:alert(1)\"></textarea>");
	expect_html("<!DOCTYPE html><!--><a href=\"{{u}}\">", js,
		    "<!DOCTYPE html><!--><a href=\"" UNSAFE "\">");
	expect_html("a < b <a href=\"{{u}}\">", js,
		    "a < b <a href=\"" UNSAFE "\">");
	/* An attribute's value ends at its own quote only. */
	expect_html("<a title='\"' href='{{u}}'>", js,
		    "<a title='\"' href='" UNSAFE "'>");
	/* body.txt: values as they are, wherever they are. */
	expect_render("<a href=\"{{u}}\">?e={{u}}",
		      "{\"u\": \"javascript:x y\"}", TMPL_ESCAPE_NONE,
		      "<a href=\"javascript:x y\">?e=javascript:x y");
	expect_render("<a href=\"{{u}}\">", "{\"u\": \"javascript:x\"}",
		      TMPL_ESCAPE_HTML_PLAIN, "<a href=\"javascript:x\">");
}

/* An unquoted value cannot be ended, or given a neighbour, by a value. */
static void test_unquoted_attribute(void **state)
{
	(void)state;
	expect_html("<td class={{u}}>", "x onmouseover=alert(1)",
		    "<td class=x&#32;onmouseover&#61;alert(1)>");
	expect_html("<td class={{u}}>", "a`b\t\"'<>&",
		    "<td class=a&#96;b&#9;&#34;&#39;&#60;&#62;&#38;>");
	expect_html("<td class=\"{{u}}\">", "x y=z",
		    "<td class=\"x y=z\">");
	/* A value right after '=' starts an unquoted value. */
	expect_html("<a href={{u}} class={{u}}>", "https://x/ y",
		    "<a href=https://x/&#32;y class=https://x/&#32;y>");
}

/*
 * A variable whose tag or attribute name is made by a variable gets the
 * URL checks: its name may be a URL attribute's.
 */
static void test_url_dynamic_names(void **state)
{
	(void)state;
	expect_html("<a {{n}}=\"{{u}}\">", "javascript:x",
		    "<a =\"" UNSAFE "\">");
	expect_html("<a h{{n}}=\"{{u}}\">", "javascript:x",
		    "<a h=\"" UNSAFE "\">");
	expect_html("<{{n}} href=\"{{u}}\">", "javascript:x",
		    "< href=\"" UNSAFE "\">");
}

/* Sections: the context after one is either side's. */
static void test_url_sections(void **state)
{
	struct buf out = BUF_INIT;
	struct tmpl_error err;

	(void)state;
	/* a section that may or may not run before: taken as the start */
	expect_render("<a href=\"{{#u}}{{u}}{{/u}}\">",
		      "{\"u\": \"javascript:x\"}", TMPL_ESCAPE_HTML,
		      "<a href=\"" UNSAFE "\">");
	expect_render("<a href=\"{{#a}}{{a}}{{/a}}{{b}}\">",
		      "{\"a\": \"https://x/?q=\", \"b\": \"data:,x\"}",
		      TMPL_ESCAPE_HTML,
		      "<a href=\"https://x/?q=" UNSAFE "\">");
	expect_render("<a href=\"{{#s}}https{{/s}}{{^s}}http{{/s}}://x/?e={{e}}"
		      "\">", "{\"s\": true, \"e\": \"a@b\"}",
		      TMPL_ESCAPE_HTML, "<a href=\"https://x/?e=a%40b\">");
	/* a list in a query: each item encoded */
	expect_render("<a href=\"https://x/?{{#t}}t={{.}}&amp;{{/t}}\">",
		      "{\"t\": [\"a b\", \"c&d\"]}", TMPL_ESCAPE_HTML,
		      "<a href=\"https://x/?t=a%20b&amp;t=c%26d&amp;\">");
	/* attributes in a section, values after it */
	expect_render("<a{{#c}} class=\"{{c}}\"{{/c}} href=\"{{u}}\">"
		      "<input {{#k}}checked {{/k}}value=\"{{u}}\">",
		      "{\"c\": \"x\", \"k\": true, \"u\": \"javascript:x\"}",
		      TMPL_ESCAPE_HTML,
		      "<a class=\"x\" href=\"" UNSAFE "\">"
		      "<input checked value=\"javascript:x\">");
	expect_render("{{#l}}<a href=\"{{u}}\">{{n}}</a>{{/l}}",
		      "{\"l\": [{\"u\": \"https://a/\", \"n\": 1},"
		      " {\"u\": \"javascript:x\", \"n\": 2}]}",
		      TMPL_ESCAPE_HTML,
		      "<a href=\"https://a/\">1</a>"
		      "<a href=\"" UNSAFE "\">2</a>");
	/* A section that leaves a tag or quote open cannot be followed. */
	assert_int_equal(render_json("x\n{{#a}}<a href=\"{{/a}}{{u}}\">", "{}",
				     TMPL_ESCAPE_HTML, NULL, &out, &err), -1);
	assert_string_equal(err.message,
			    "test.html:2:1: section 'a' ends inside a quoted "
			    "attribute value but begins inside text, so what "
			    "follows cannot be escaped right (close inside a "
			    "section the tags, quotes and comments it opens)");
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 1);
	assert_false(err.in_partial);
	assert_int_equal(render_json("{{^a}}<!--{{/a}}", "{}",
				     TMPL_ESCAPE_HTML, NULL, &out, &err), -1);
	assert_non_null(strstr(err.message, "ends inside a comment"));
	/* The same templates are fine where nothing is escaped by context. */
	assert_int_equal(render_json("{{#a}}<a href=\"{{/a}}{{u}}\">", "{}",
				     TMPL_ESCAPE_HTML_PLAIN, NULL, &out, &err),
			 0);
	buf_free(&out);
}

/* A partial is escaped for where it is called: a copy per context. */
static void test_url_partials(void **state)
{
	struct buf out = BUF_INIT;
	struct tmpl_error err;
	json_t *parts;

	(void)state;
	parts = json_pack("{s:s, s:s, s:s}", "v", "{{u}}",
			  "link", "<a href=\"{{u}}\">{{u}}</a>",
			  "open", "<a href=\"");
	assert_int_equal(render_json("{{>v}} <a href=\"{{>v}}\"> "
				     "<a href=\"/?u={{>v}}\"> {{>link}} {{>v}}",
				     "{\"u\": \"javascript:a b\"}",
				     TMPL_ESCAPE_HTML, parts, &out, &err), 0);
	assert_string_equal(buf_cstr(&out),
			    "javascript:a b <a href=\"" UNSAFE "\"> "
			    "<a href=\"/?u=javascript%3Aa%20b\"> "
			    "<a href=\"" UNSAFE "\">javascript:a b</a> "
			    "javascript:a b");
	/* a partial may leave the context where its caller carries on */
	assert_int_equal(render_json("{{>open}}{{u}}\">",
				     "{\"u\": \"javascript:x\"}",
				     TMPL_ESCAPE_HTML, parts, &out, &err), 0);
	assert_string_equal(buf_cstr(&out), "<a href=\"" UNSAFE "\">");
	json_decref(parts);
	/* one that includes itself must end where it began */
	parts = json_pack("{s:s}", "a", "x{{#k}}{{>a}}{{/k}}<script>");
	assert_int_equal(render_json("{{>a}}", "{}", TMPL_ESCAPE_HTML, parts,
				     &out, &err), -1);
	assert_string_equal(err.message,
			    "partial 'a':1:8: partial 'a' includes itself "
			    "here, and ends inside a <script>, <style>, "
			    "<title> or <textarea> but begins inside text");
	assert_true(err.in_partial);
	json_decref(parts);
	/* a tag's name a section may end: the same element either way */
	expect_render("<td{{#w}} width=\"{{w}}\"{{/w}} background=\"{{u}}\">",
		      "{\"w\": 2, \"u\": \"javascript:x\"}", TMPL_ESCAPE_HTML,
		      "<td width=\"2\" background=\"" UNSAFE "\">");
	assert_int_equal(render_json("<{{#s}}script{{/s}}>{{u}}", "{}",
				     TMPL_ESCAPE_HTML, NULL, &out, &err), -1);
	buf_free(&out);
}

/*
 * TMPL_ESCAPE_URL: the template is one URL.  After its first byte a
 * value is percent-encoded; at its start, and raw, it is as it is (the
 * caller checks the scheme).
 */
static void test_url_template(void **state)
{
	(void)state;
	expect_render("https://example.org/unsubscribe?u={{e}}&l={{l}}",
		      "{\"e\": \"a+b@example.org\", \"l\": \"x y/z\"}",
		      TMPL_ESCAPE_URL,
		      "https://example.org/unsubscribe?u=a%2Bb%40example.org"
		      "&l=x%20y%2Fz");
	expect_render(" {{base}}?u={{e}}&r={{{r}}}",
		      "{\"base\": \"https://x/u\", \"e\": \"@\","
		      " \"r\": \"@ &\"}",
		      TMPL_ESCAPE_URL, " https://x/u?u=%40&r=@ &");
	expect_render("{{#b}}{{b}}{{/b}}?u={{e}}",
		      "{\"b\": \"javascript:x\", \"e\": \"@\"}",
		      TMPL_ESCAPE_URL, "javascript:x?u=%40");
}

/*
 * tmpl_render_mail counts the values it replaced and names where the
 * first one's tag is (a partial by its file).
 */
static void test_url_notes(void **state)
{
	struct jpartials jp = { NULL, 0 };
	struct tmpl_params p = {
		"body.html", TMPL_ESCAPE_HTML, jpartial, &jp, true, ".mustache",
	};
	struct tmpl_notes notes;
	struct tmpl_error err;
	struct buf out = BUF_INIT;
	struct jdata jd;
	struct tmpl *t;
	json_t *parts, *doc;
	bool clean;
	const char *src = "<p>\n  <a href=\"{{ok}}\">{{bad}}</a>\n"
			  "  {{> foot}}\n<img src={{bad}}>\n";

	(void)state;
	parts = json_pack("{s:s}", "foot", "x\n <a href='{{ bad }}'>");
	doc = json_pack("{s:s, s:s}", "ok", "https://x/", "bad", "data:,x");
	jp.obj = parts;
	assert_int_equal(tmpl_compile(src, strlen(src), &p, &t, &err), 0);
	jdata_init(&jd, doc);
	memset(&notes, 0, sizeof(notes));
	assert_int_equal(tmpl_render_mail(t, &jd.d, &out, &clean, &notes), 0);
	assert_int_equal(notes.unsafe_urls, 2);
	assert_string_equal(notes.file, "foot.mustache");
	assert_int_equal(notes.line, 2);
	assert_int_equal(notes.column, 11);
	assert_int_equal(notes.name_len, 3);
	assert_memory_equal(notes.name, "bad", 3);
	assert_non_null(strstr(buf_cstr(&out), "<img src=" UNSAFE ">"));
	/* they add up over renders; NULL notes nothing */
	assert_int_equal(tmpl_render_mail(t, &jd.d, &out, &clean, &notes), 0);
	assert_int_equal(notes.unsafe_urls, 4);
	assert_int_equal(tmpl_render_mail(t, &jd.d, &out, &clean, NULL), 0);
	jdata_free(&jd);
	tmpl_free(&t);
	json_decref(parts);
	json_decref(doc);
	buf_free(&out);
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
	struct tmpl_params p = {
		"body.html", TMPL_ESCAPE_HTML, jpartial, &jp, false, NULL,
	};
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
		cmocka_unit_test(test_constant),
		cmocka_unit_test(test_escape_html_and_none),
		cmocka_unit_test(test_order_receipt),
		cmocka_unit_test(test_truthiness_and_values),
		cmocka_unit_test(test_implicit_iterator_only),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_recursive_partials),
		cmocka_unit_test(test_partial_indentation),
		cmocka_unit_test(test_render_no_alloc),
		cmocka_unit_test(test_top_names),
		cmocka_unit_test(test_url_start_scheme),
		cmocka_unit_test(test_url_rest_encoded),
		cmocka_unit_test(test_url_literal_references),
		cmocka_unit_test(test_url_raw),
		cmocka_unit_test(test_url_elsewhere),
		cmocka_unit_test(test_unquoted_attribute),
		cmocka_unit_test(test_url_dynamic_names),
		cmocka_unit_test(test_url_sections),
		cmocka_unit_test(test_url_partials),
		cmocka_unit_test(test_url_template),
		cmocka_unit_test(test_url_notes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
