/*
 * test_message - a message template as message_tmpl_load reads it and
 * message_render writes it, where the template engine alone cannot say:
 * List-Unsubscribe's values percent-encoded, a missing partial refused,
 * message.cfg's errors and names placed in message.cfg, every name the
 * template uses found with its file, a replaced URL reported in
 * message_bufs, and a constant From written once as it would be each time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "message.h"
#include "vars.h"
#include "vars_data.h"

/* --- a template folder in memory -------------------------------------- */

struct file {
	const char *name;
	const char *text;
};

/* files - message_file_fn over a NULL-terminated array of struct file */
static int files(void *ctx, const char *name, const void **data,
		 size_t *len)
{
	for (const struct file *f = ctx; f->name != NULL; f++) {
		if (strcmp(f->name, name) == 0) {
			*data = f->text;
			*len = strlen(f->text);
			return 1;
		}
	}
	return 0;
}

/* load - the template, which must load */
static struct message_tmpl *load(const struct file *folder)
{
	struct message_tmpl *mt;
	const char *error = NULL;

	if (message_tmpl_load(files, (void *)folder, &mt, &error) < 0)
		fail_msg("load: %s", error);
	return mt;
}

/* load_error - the template must not load; returns the message */
static const char *load_error(const struct file *folder)
{
	struct message_tmpl *mt;
	const char *error = NULL;

	assert_int_equal(message_tmpl_load(files, (void *)folder, &mt,
					   &error), -1);
	assert_null(mt);
	assert_non_null(error);
	return error;
}

/*
 * render - the message for address with the CSV-like variables given as
 * "name", "value", ... NULL; returns 0 or -1 (*error_r set)
 */
static int render(const struct message_tmpl *mt, struct message_bufs *bufs,
		  struct buf *out, const char **error_r, const char *address,
		  ...)
{
	struct buf names = BUF_INIT, vals = BUF_INIT;
	struct message_job job = {
		.to = address, .to_len = strlen(address),
		.campaign_id = 1, .job_id = 7,
		.campaign_created = 1764000000000LL, .date = 1764000000,
	};
	struct vars_data vd;
	const char *n;
	va_list ap;
	int rc;

	vars_pack_begin(&names);
	vars_pack_begin(&vals);
	va_start(ap, address);
	while ((n = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		vars_pack_str(&names, n, strlen(n));
		vars_pack_str(&vals, v, strlen(v));
	}
	va_end(ap);
	assert_int_equal(vars_data_init(&vd, names.data, names.len, "email",
					address, strlen(address), vals.data,
					vals.len), 0);
	buf_reset(out);
	rc = message_render(mt, &vd.data, &job, bufs, out, error_r);
	buf_free(&names);
	buf_free(&vals);
	return rc;
}

/* header_line - the unfolded value of header name in msg, or "" */
static const char *header_line(struct buf *b, const struct buf *msg,
			       const char *name)
{
	const char *p = buf_cstr((struct buf *)msg), *end;
	size_t nlen = strlen(name);

	buf_reset(b);
	for (;;) {
		if (strncmp(p, name, nlen) == 0 && p[nlen] == ':')
			break;
		p = strstr(p, "\r\n");
		if (p == NULL || p[2] == '\r')
			return "";
		p += 2;
	}
	p += nlen + 2;
	for (;;) {
		end = strstr(p, "\r\n");
		buf_append(b, p, (size_t)(end - p));
		if (end[2] != ' ' && end[2] != '\t')
			break;
		p = end + 2;
	}
	return buf_cstr(b);
}

/* --- List-Unsubscribe --------------------------------------------------- */

/*
 * A value after a List-Unsubscribe URL's first byte is percent-encoded;
 * one that starts it must make an https URL.
 */
static void test_list_unsubscribe_encoded(void **state)
{
	const struct file folder[] = {
		{ "message.cfg",
		  "subject = \"Hi\";\n"
		  "from = \"News <news@example.org>\";\n"
		  "list_unsubscribe = \"https://example.org/u?e={{email}}"
		  "&n={{name}}\";\n"
		  "list_unsubscribe_mailto = \"unsub@example.org?subject="
		  "{{email}}\";\n" },
		{ "body.txt", "Hello\n" },
		{ NULL, NULL },
	};
	const struct file by_url[] = {
		{ "message.cfg",
		  "subject = \"Hi\";\n"
		  "from = \"News <news@example.org>\";\n"
		  "list_unsubscribe = \"{{url}}?again={{email}}\";\n" },
		{ "body.txt", "Hello\n" },
		{ NULL, NULL },
	};
	struct message_bufs bufs = { 0 };
	struct buf out = BUF_INIT, h = BUF_INIT;
	struct message_tmpl *mt;
	const char *error;

	(void)state;
	mt = load(folder);
	assert_int_equal(render(mt, &bufs, &out, &error, "a+b@example.org",
				"name", "Zoë & co", NULL), 0);
	assert_string_equal(header_line(&h, &out, "List-Unsubscribe"),
			    "<https://example.org/u?e=a%2Bb%40example.org"
			    "&n=Zo%C3%AB%20%26%20co>, "
			    "<mailto:unsub@example.org?subject="
			    "a%2Bb%40example.org>");
	message_tmpl_free(&mt);

	/* A value that starts the URL is as it is, and must be https. */
	mt = load(by_url);
	assert_int_equal(render(mt, &bufs, &out, &error, "a@example.org",
				"url", "https://example.org/u/1", NULL), 0);
	assert_string_equal(header_line(&h, &out, "List-Unsubscribe"),
			    "<https://example.org/u/1?again=a%40example.org>");
	assert_int_equal(render(mt, &bufs, &out, &error, "a@example.org",
				"url", "javascript:x", NULL), -1);
	assert_non_null(strstr(error, "not an https URL"));
	message_tmpl_free(&mt);
	message_bufs_free(&bufs);
	buf_free(&out);
	buf_free(&h);
}

/* --- partials ---------------------------------------------------------- */

/* A {{> name}} without its file is an error that says where it is. */
static void test_missing_partial(void **state)
{
	const struct file typo[] = {
		{ "message.cfg",
		  "subject = \"Hi\";\nfrom = \"a@example.org\";\n" },
		{ "body.txt", "Hello\n\n{{> fotter}}\n" },
		{ "footer.mustache", "Unsubscribe: {{email}}\n" },
		{ NULL, NULL },
	};
	const struct file deep[] = {
		{ "message.cfg",
		  "subject = \"Hi\";\nfrom = \"a@example.org\";\n" },
		{ "body.html", "<p>{{#x}}{{>footer}}{{/x}}</p>" },
		{ "footer.mustache", "x\n  {{> links }}\n" },
		{ NULL, NULL },
	};
	const struct file folder[] = {
		{ "message.cfg",
		  "subject = \"Hi\";\nfrom = \"a@example.org\";\n" },
		{ "body.txt", "{{> ../secret}}" },
		{ NULL, NULL },
	};

	(void)state;
	assert_string_equal(load_error(typo),
			    "body.txt:3:1: cannot load partial 'fotter': the "
			    "template has no file fotter.mustache");
	assert_string_equal(load_error(deep),
			    "footer.mustache:2:3: cannot load partial "
			    "'links': the template has no file "
			    "links.mustache");
	assert_string_equal(load_error(folder),
			    "body.txt:1:1: cannot load partial '../secret': "
			    "a partial's name cannot hold '/'");
}

/* --- message.cfg positions ------------------------------------------- */

struct cfg_case {
	const char *cfg;
	const char *error;
};

/*
 * A template error in a message.cfg value is placed in message.cfg: the
 * setting's line and the column in the file, through escapes, joined
 * literals and line breaks.
 */
static void test_cfg_error_position(void **state)
{
	static const struct cfg_case cases[] = {
		{ "# the shop's mail\n"
		  "from = \"Shop <shop@example.com>\";\n"
		  "\n"
		  "\n"
		  "subject = \"Hello {{name\";\n",
		  "message.cfg:5:18: subject: unclosed tag (expected '}}')" },
		{ "from = \"a@example.com\"; subject = \"x {{/y}}\";\n",
		  "message.cfg:1:38: subject: stray close tag 'y'" },
		/* the name inside an earlier string is not the setting */
		{ "from = \"subject = me <a@example.com>\"; subject = "
		  "\"{{/y}}\";\n",
		  "message.cfg:1:51: subject: stray close tag 'y'" },
		{ "from = \"a@example.com\";\n"
		  "subject =\n"
		  "   \"a\\t\\\"b\\x41\" /* c */ \"\\n{{#x}}\";\n",
		  "message.cfg:3:28: subject: unclosed section 'x'" },
		{ "from = \"a@example.com\";\n"
		  "subject = \"one\n"
		  "  two {{ }}\";\n",
		  "message.cfg:3:7: subject: empty tag name" },
		{ "from = \"a@example.com\";\nsubject = \"s\";\n"
		  "headers = {\n"
		  "  X-Tag = \"a\" # why\n"
		  "          \"b{{=x}}\";\n"
		  "};\n",
		  "message.cfg:5:13: X-Tag: bad set-delimiter tag" },
		{ "from = \"a@example.com\";\nsubject : \"\\q{{/z}}\";\n",
		  "message.cfg:2:14: subject: stray close tag 'z'" },
		{ "from = \"a@example.com\";\nsubject = \"{{> p}}\";\n",
		  "message.cfg:2: subject: p.mustache:1:3: stray close tag "
		  "'x'" },
	};
	struct file folder[] = {
		{ "message.cfg", NULL },
		{ "body.txt", "x\n" },
		{ "p.mustache", "  {{/x}}" },
		{ NULL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		folder[0].text = cases[i].cfg;
		assert_string_equal(load_error(folder), cases[i].error);
	}
}

/* --- names ------------------------------------------------------------- */

/* collect - every name, as "file:line:column name [s][p]" lines */
static void collect(void *ctx, const struct tmpl_name *n)
{
	buf_printf(ctx, "%s:%u:%u %.*s%s%s\n", n->file, n->line, n->column,
		   (int)n->len, n->name, n->in_section ? " in-section" : "",
		   n->section ? " section" : "");
}

static void collect_top(void *ctx, const char *file, const char *name,
			size_t len, unsigned line, unsigned column)
{
	buf_printf(ctx, "%s:%u:%u %.*s\n", file, line, column, (int)len,
		   name);
}

/*
 * Every name, in sections or not, in every file, with where it is; the
 * names of message.cfg's values placed in message.cfg.
 */
static void test_names(void **state)
{
	const struct file folder[] = {
		{ "message.cfg",
		  "from = \"a@example.com\";\n"
		  "subject = \"Hi {{first}}{{#vip}}, {{title}}{{/vip}}\";\n"
		  "headers = { X-Id = \"{{order.id}}\"; };\n" },
		{ "body.txt", "{{#items}}\n- {{nmae}}\n{{/items}}\n"
			      "{{^items}}{{>foot}}{{/items}}{{>foot}}\n" },
		{ "body.html", "<p>{{.}}{{{raw}}}</p>" },
		{ "foot.mustache", "\nBye {{first}}" },
		{ NULL, NULL },
	};
	struct buf got = BUF_INIT;
	struct message_tmpl *mt;

	(void)state;
	mt = load(folder);
	message_tmpl_names(mt, collect, &got);
	assert_string_equal(buf_cstr(&got),
			    "message.cfg:2:15 first\n"
			    "message.cfg:2:24 vip section\n"
			    "message.cfg:2:34 title in-section\n"
			    "message.cfg:3:21 order.id\n"
			    "body.txt:1:1 items section\n"
			    "body.txt:2:3 nmae in-section\n"
			    "body.txt:4:1 items section\n"
			    "foot.mustache:2:5 first in-section\n"
			    "foot.mustache:2:5 first\n"
			    "body.html:1:9 raw\n");
	/* the names every recipient needs, placed in message.cfg too */
	buf_reset(&got);
	message_tmpl_top_names(mt, collect_top, &got);
	assert_string_equal(buf_cstr(&got),
			    "message.cfg:2:15 first\n"
			    "message.cfg:3:21 order\n"
			    "body.txt:4:30 first\n"
			    "body.html:1:9 raw\n");
	message_tmpl_free(&mt);
	buf_free(&got);
}

/* --- unsafe URLs ------------------------------------------------------- */

/*
 * A value that is no safe URL where body.html wants one is replaced; the
 * message still renders, and message_bufs says what and where.
 */
static void test_unsafe_url_reported(void **state)
{
	const struct file folder[] = {
		{ "message.cfg",
		  "subject = \"Hi\";\nfrom = \"a@example.com\";\n" },
		{ "body.txt", "Site: {{site}}\n" },
		{ "body.html", "<p>Hi,\n<a href=\"{{site}}\">site</a>"
			       " <a href=\"https://x/?e={{email}}\">x</a>\n" },
		{ NULL, NULL },
	};
	struct message_bufs bufs = { 0 };
	struct buf out = BUF_INIT;
	struct message_tmpl *mt;
	const char *error;

	(void)state;
	mt = load(folder);
	assert_int_equal(render(mt, &bufs, &out, &error, "a+b@example.org",
				"site", "javascript:alert(1)", NULL), 0);
	assert_int_equal(bufs.notes.unsafe_urls, 1);
	assert_string_equal(bufs.notes.file, "body.html");
	assert_int_equal(bufs.notes.line, 2);
	assert_int_equal(bufs.notes.column, 10);
	assert_memory_equal(bufs.notes.name, "site", 4);
	assert_non_null(strstr(buf_cstr(&out),
			       "href=\"" TMPL_UNSAFE_URL "\""));
	assert_non_null(strstr(buf_cstr(&out), "?e=a%2Bb%40example.org"));
	/* the text part has no URLs to check */
	assert_non_null(strstr(buf_cstr(&out), "Site: javascript:alert(1)"));
	/* each render starts from nothing */
	assert_int_equal(render(mt, &bufs, &out, &error, "a@example.org",
				"site", "https://example.org/", NULL), 0);
	assert_int_equal(bufs.notes.unsafe_urls, 0);
	message_tmpl_free(&mt);
	message_bufs_free(&bufs);
	buf_free(&out);
}

/* --- From written once ------------------------------------------------ */

/*
 * A constant From is written once, at load (message.c's
 * message_cache_from); it must give the bytes, and the errors, that
 * rendering the same value for each message gives.
 */
static void test_constant_from(void **state)
{
	static const char *const froms[] = {
		"News <news@example.org>",
		"news@example.org",
		"<news@example.org>",
		"\"Smith, John\" <john@example.org>",
		"Zo\xc3\xab \xc3\x9cn\xc3\xaf" "code <z@example.org>",
		"A Display Name Long Enough That The From Header Has To Be "
		"Folded Somewhere <long.address@example.org>",
		"=?utf-8?q?x?= <x@example.org>",
		"not an address",
		"News <news@example.org",
		"",
	};
	struct message_bufs bufs = { 0 };
	struct buf cfg = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
	struct message_tmpl *fixed, *per;
	const char *err_a, *err_b;
	struct file folder[] = {
		{ "message.cfg", NULL },
		{ "body.txt", "Hello {{name}}\n" },
		{ NULL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(froms) / sizeof(froms[0]); i++) {
		int rc_a, rc_b;

		buf_reset(&cfg);
		buf_append_str(&cfg, "subject = \"Hi\";\nfrom = \"");
		for (const char *p = froms[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&cfg, '\\');
			buf_putc(&cfg, *p);
		}
		buf_append_str(&cfg, "\";\n");
		folder[0].text = buf_cstr(&cfg);
		fixed = load(folder);
		folder[0].text = "subject = \"Hi\";\nfrom = \"{{{f}}}\";\n";
		per = load(folder);
		err_a = err_b = NULL;
		rc_a = render(fixed, &bufs, &a, &err_a, "r@example.net",
			      "name", "Ann", "f", froms[i], NULL);
		rc_b = render(per, &bufs, &b, &err_b, "r@example.net",
			      "name", "Ann", "f", froms[i], NULL);
		assert_int_equal(rc_a, rc_b);
		if (rc_a == 0) {
			assert_int_equal(a.len, b.len);
			assert_memory_equal(a.data, b.data, a.len);
			assert_non_null(strstr(a.data, "\r\nFrom: "));
		} else {
			assert_string_equal(err_a, err_b);
		}
		/* and again: what the first render left must not matter */
		rc_a = render(fixed, &bufs, &a, &err_a, "s@example.net",
			      "name", "Bo", "f", froms[i], NULL);
		rc_b = render(per, &bufs, &b, &err_b, "s@example.net",
			      "name", "Bo", "f", froms[i], NULL);
		assert_int_equal(rc_a, rc_b);
		if (rc_a == 0)
			assert_memory_equal(a.data, b.data, a.len);
		message_tmpl_free(&fixed);
		message_tmpl_free(&per);
	}
	message_bufs_free(&bufs);
	buf_free(&cfg);
	buf_free(&a);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_unsubscribe_encoded),
		cmocka_unit_test(test_missing_partial),
		cmocka_unit_test(test_cfg_error_position),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_unsafe_url_reported),
		cmocka_unit_test(test_constant_from),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
