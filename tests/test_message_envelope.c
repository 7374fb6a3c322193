/*
 * test_message_envelope - what message.cfg says about the envelope and
 * the headers bulk-sender rules ask for: return_path and {{verp}}, `to`
 * (its address must be the recipient's), feedback_id, and attachments
 * named by recipient (read through message_job.attach, their paths
 * checked before any file is opened); the VERP and unsubscribe tokens
 * themselves, {{unsubscribe_url}} and the List-Unsubscribe headers it
 * makes when message.cfg sets none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "message.h"
#include "token.h"
#include "vars.h"
#include "vars_data.h"

struct file {
	const char *name, *text;
};

/* the template: message.cfg given, one body */
static struct file tpl_files[3];

static int tpl_lookup(void *ctx, const char *name, const void **data,
		      size_t *len)
{
	(void)ctx;
	for (size_t i = 0; i < 3 && tpl_files[i].name != NULL; i++)
		if (strcmp(tpl_files[i].name, name) == 0) {
			*data = tpl_files[i].text;
			*len = strlen(tpl_files[i].text);
			return 1;
		}
	return 0;
}

static struct message_tmpl *load(const char *cfg, const char **error_r)
{
	struct message_tmpl *mt = NULL;

	tpl_files[0] = (struct file){ "message.cfg", cfg };
	tpl_files[1] = (struct file){ "body.txt", "Hi {{name}}\n" };
	if (message_tmpl_load(tpl_lookup, NULL, &mt, error_r) < 0)
		return NULL;
	return mt;
}

/* one recipient: name and invoice variables */
struct rcpt {
	struct buf names, vals;
	struct vars_data vd;
};

static void rcpt_init(struct rcpt *r, const char *addr, const char *name,
		      const char *invoice)
{
	memset(r, 0, sizeof(*r));
	vars_pack_begin(&r->names);
	vars_pack_str(&r->names, "name", 4);
	vars_pack_str(&r->names, "invoice", 7);
	vars_pack_begin(&r->vals);
	vars_pack_str(&r->vals, name, strlen(name));
	vars_pack_str(&r->vals, invoice, strlen(invoice));
	assert_int_equal(vars_data_init(&r->vd, r->names.data, r->names.len,
					"email", addr, strlen(addr),
					r->vals.data, r->vals.len), 0);
}

static void rcpt_free(struct rcpt *r)
{
	buf_free(&r->names);
	buf_free(&r->vals);
}

/* the files a recipient may have, and what was asked for */
static char attach_asked[256];

static int attach(void *ctx, const char *path, const void **data,
		  size_t *len, const char **error_r)
{
	(void)ctx;
	snprintf(attach_asked, sizeof(attach_asked), "%s", path);
	if (strcmp(path, "inv/7.pdf") == 0) {
		*data = "%PDF-7";
		*len = 6;
		return 0;
	}
	*error_r = "attachment: no such file";
	return -1;
}

static int render(const struct message_tmpl *mt, const char *addr,
		  const char *name, const char *invoice, bool with_attach,
		  struct buf *out, const char **error_r)
{
	struct message_bufs bufs = { 0 };
	struct rcpt r;
	struct message_job job = {
		.to = addr, .to_len = strlen(addr), .campaign_id = 3,
		.job_id = 9, .campaign_created = 1, .date = 0,
		.attach = with_attach ? attach : NULL,
	};
	int ret;

	rcpt_init(&r, addr, name, invoice);
	buf_reset(out);
	attach_asked[0] = '\0';
	ret = message_render(mt, &r.vd.data, &job, &bufs, out, error_r);
	message_bufs_free(&bufs);
	rcpt_free(&r);
	return ret;
}

static void test_return_path(void **state)
{
	struct message_tmpl *mt;
	const char *error;

	(void)state;
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "return_path = \"bounces+{{verp}}@b.example.org\";",
		  &error);
	assert_non_null(mt);
	assert_string_equal(message_tmpl_return_path(mt),
			    "bounces+{{verp}}@b.example.org");
	message_tmpl_free(&mt);

	/* other Mustache is refused: it would be the same for everyone */
	assert_null(load("subject = \"s\"; from = \"a@example.org\";\n"
			 "return_path = \"b+{{name}}@b.example.org\";",
			 &error));
	assert_non_null(strstr(error, "message.cfg:2: return_path"));
	assert_non_null(strstr(error, "only {{verp}}"));
	/* not an address */
	assert_null(load("subject = \"s\"; from = \"a@example.org\";\n"
			 "return_path = \"nobody\";", &error));
	assert_non_null(strstr(error, "return_path"));
}

static void test_envelope_problem(void **state)
{
	struct buf out = BUF_INIT;
	char local[80];

	(void)state;
	assert_null(message_envelope_problem("b+{{verp}}@example.org"));
	assert_null(message_envelope_problem("plain@example.org"));
	assert_non_null(message_envelope_problem("{{x}}@example.org"));
	assert_non_null(message_envelope_problem("b@{{verp}}.example.org"));
	assert_non_null(message_envelope_problem(
		"{{verp}}{{verp}}@example.org"));
	assert_non_null(message_envelope_problem("b {{verp}}@example.org"));
	/* with the longest token the local part would pass 64 octets */
	memset(local, 'x', 40);
	snprintf(local + 40, sizeof(local) - 40, "{{verp}}@example.org");
	assert_non_null(message_envelope_problem(local));

	message_envelope_expand("b+{{verp}}@example.org", "tok", &out);
	assert_string_equal(buf_cstr(&out), "b+tok@example.org");
	buf_reset(&out);
	message_envelope_expand("plain@example.org", "tok", &out);
	assert_string_equal(buf_cstr(&out), "plain@example.org");
	buf_free(&out);
}

static void test_to_header(void **state)
{
	struct message_tmpl *mt;
	struct buf out = BUF_INIT;
	const char *error;

	(void)state;
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "to = \"{{name}} <{{email}}>\";", &error);
	assert_non_null(mt);
	assert_int_equal(render(mt, "ann@example.net", "Ann Lee", "1", false,
				&out, &error), 0);
	assert_non_null(strstr(buf_cstr(&out),
			       "\r\nTo: Ann Lee <ann@example.net>\r\n"));
	/* ASCII case of the address does not matter; the header keeps the
	 * recipient's own */
	message_tmpl_free(&mt);
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "to = \"{{name}} <ANN@EXAMPLE.NET>\";", &error);
	assert_non_null(mt);
	assert_int_equal(render(mt, "ann@example.net", "Ann", "1", false,
				&out, &error), 0);
	assert_non_null(strstr(buf_cstr(&out),
			       "\r\nTo: Ann <ann@example.net>\r\n"));
	/* an address that is not the recipient's fails the recipient */
	assert_int_equal(render(mt, "bob@example.net", "Bob", "1", false,
				&out, &error), -1);
	assert_non_null(strstr(error, "to: renders the address "
			       "'ANN@EXAMPLE.NET', not the recipient's "
			       "'bob@example.net'"));
	message_tmpl_free(&mt);
	/* a display name with a line break never reaches the header */
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "to = \"{{name}} <{{email}}>\";", &error);
	assert_int_equal(render(mt, "ann@example.net", "Ann\r\nBcc: x@y.z",
				"1", false, &out, &error), -1);
	message_tmpl_free(&mt);
	buf_free(&out);
}

static void test_feedback_id(void **state)
{
	struct message_tmpl *mt;
	struct buf out = BUF_INIT;
	const char *error;

	(void)state;
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "feedback_id = \"{{invoice}}:news:volley\";", &error);
	assert_non_null(mt);
	assert_int_equal(render(mt, "ann@example.net", "Ann", "c42", false,
				&out, &error), 0);
	assert_non_null(strstr(buf_cstr(&out),
			       "\r\nFeedback-ID: c42:news:volley\r\n"));
	message_tmpl_free(&mt);
	/* set twice is a mistake, said at load */
	assert_null(load("subject = \"s\"; from = \"a@example.org\";\n"
			 "feedback_id = \"x\";\n"
			 "headers = { Feedback-ID = \"y\"; };", &error));
	assert_non_null(strstr(error, "Feedback-ID is set twice"));
	buf_free(&out);
}

static void test_recipient_files(void **state)
{
	struct message_tmpl *mt;
	struct buf out = BUF_INIT;
	const char *error, *msg;

	(void)state;
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "attachments = [ \"inv/{{invoice}}.pdf\" ];", &error);
	assert_non_null(mt);
	assert_int_equal(message_tmpl_recipient_files(mt), 1);
	assert_int_equal(render(mt, "ann@example.net", "Ann", "7", true,
				&out, &error), 0);
	assert_string_equal(attach_asked, "inv/7.pdf");
	msg = buf_cstr(&out);
	assert_non_null(strstr(msg, "Content-Type: multipart/mixed;"));
	assert_non_null(strstr(msg, "Content-Type: application/pdf; "
			       "name=\"7.pdf\"\r\n"
			       "Content-Disposition: attachment; "
			       "filename=\"7.pdf\"\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\n"
			       "JVBERi03\r\n"));
	/* a missing file fails the recipient, with the reason given */
	assert_int_equal(render(mt, "bob@example.net", "Bob", "8", true,
				&out, &error), -1);
	assert_string_equal(attach_asked, "inv/8.pdf");
	assert_non_null(strstr(error, "no such file"));
	/* paths out of the folder are refused before any file is asked */
	static const char *const bad[] = {
		"../x", "a/../../x", "./x", "a//x", "/etc/passwd", "x\ty",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		message_tmpl_free(&mt);
		mt = load("subject = \"s\"; from = \"a@example.org\";\n"
			  "attachments = [ \"{{invoice}}\" ];", &error);
		assert_non_null(mt);
		assert_int_equal(render(mt, "ann@example.net", "Ann", bad[i],
					true, &out, &error), -1);
		assert_string_equal(attach_asked, "");
		assert_non_null(strstr(error, "message.cfg:2: attachment"));
	}
	/* no files folder: said, not silently left out */
	assert_int_equal(render(mt, "ann@example.net", "Ann", "inv/7.pdf",
				false, &out, &error), -1);
	assert_non_null(strstr(error, "no files folder"));
	message_tmpl_free(&mt);
	buf_free(&out);
}

static void test_verp_token(void **state)
{
	static const char secret[] = "0123456789abcdef0123";
	char tok[TOKEN_VERP_MAX], other[TOKEN_VERP_MAX];
	struct token_key *key, *key2;
	int64_t c, j;

	(void)state;
	assert_int_equal(token_key_new(secret, strlen(secret), &key), 0);
	assert_int_equal(token_key_new("another secret 0123", 19, &key2), 0);
	assert_int_equal(token_verp(key, 42, 123456789, "Ann@Example.net", 15,
				    tok), 0);
	/* safe in a local part: lower-case letters, digits, dashes */
	for (const char *p = tok; *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') ||
			    (*p >= '2' && *p <= '7') || *p == '-');
	assert_true(strlen(tok) < 40);
	assert_true(token_verp_parse(tok, strlen(tok), &c, &j));
	assert_int_equal(c, 42);
	assert_int_equal(j, 123456789);
	/* checked against the address, in any ASCII case */
	assert_true(token_verp_check(key, tok, strlen(tok), "ann@example.net",
				     15));
	assert_false(token_verp_check(key, tok, strlen(tok),
				      "bob@example.net", 15));
	assert_false(token_verp_check(key2, tok, strlen(tok),
				      "ann@example.net", 15));
	/* the same key, again: the context restarts cleanly */
	assert_int_equal(token_verp(key, 42, 123456789, "ann@example.net", 15,
				    other), 0);
	assert_string_equal(other, tok);
	/* another job's ids with this MAC do not pass */
	assert_int_equal(token_verp(key, 42, 123456788, "ann@example.net", 15,
				    other), 0);
	memcpy(strrchr(other, '-'), strrchr(tok, '-'), 12);
	assert_false(token_verp_check(key, other, strlen(other),
				      "ann@example.net", 15));
	/* one changed MAC character fails */
	tok[strlen(tok) - 1] = tok[strlen(tok) - 1] == 'a' ? 'b' : 'a';
	assert_false(token_verp_check(key, tok, strlen(tok),
				      "ann@example.net", 15));
	/* not shaped like a token */
	assert_false(token_verp_parse("abc", 3, &c, &j));
	assert_false(token_verp_parse("b-b-", 4, &c, &j));
	assert_false(token_verp_parse("B-b-aaaaaaaaaa", 14, &c, &j));
	assert_true(token_verp_parse("b-b-aaaaaaaaaa", 14, &c, &j));
	token_key_free(&key);
	token_key_free(&key2);
}

static void test_unsub_token(void **state)
{
	static const char secret[] = "0123456789abcdef0123";
	char tok[TOKEN_UNSUB_MAX], other[TOKEN_UNSUB_MAX];
	char verp[TOKEN_VERP_MAX];
	struct token_key *key, *key2;
	struct buf url = BUF_INIT;
	int64_t c, j;
	size_t n;

	(void)state;
	assert_int_equal(token_key_new(secret, strlen(secret), &key), 0);
	assert_int_equal(token_key_new("another secret 0123", 19, &key2), 0);
	assert_int_equal(token_unsub(key, 42, 123456789, "Ann@Example.net",
				     15, tok), 0);
	/* URL-safe as it is, and 130 bits of MAC after the ids */
	for (const char *p = tok; *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') ||
			    (*p >= '2' && *p <= '7') || *p == '-');
	assert_int_equal(strlen(strrchr(tok, '-') + 1),
			 TOKEN_UNSUB_MAC_CHARS);
	assert_true(TOKEN_UNSUB_MAC_CHARS * 5 >= 128);
	assert_true(strlen(tok) < TOKEN_UNSUB_MAX);
	assert_true(token_unsub_parse(tok, strlen(tok), &c, &j));
	assert_int_equal(c, 42);
	assert_int_equal(j, 123456789);
	assert_true(token_unsub_check(key, tok, strlen(tok),
				      "ann@example.net", 15));
	assert_true(token_unsub_check(key, tok, strlen(tok),
				      "ANN@EXAMPLE.NET", 15));
	assert_false(token_unsub_check(key, tok, strlen(tok),
				       "bob@example.net", 15));
	assert_false(token_unsub_check(key2, tok, strlen(tok),
				       "ann@example.net", 15));
	/* the same job's VERP token is not an unsubscribe token, and an
	 * unsubscribe token is not a VERP token (labels differ) */
	assert_int_equal(token_verp(key, 42, 123456789, "ann@example.net", 15,
				    verp), 0);
	assert_false(token_unsub_check(key, verp, strlen(verp),
				       "ann@example.net", 15));
	assert_false(token_verp_check(key, tok, strlen(tok),
				      "ann@example.net", 15));
	assert_int_equal(strncmp(strrchr(tok, '-') + 1,
				 strrchr(verp, '-') + 1, 10) != 0, 1);
	/* another job's ids with this MAC do not pass */
	assert_int_equal(token_unsub(key, 42, 123456788, "ann@example.net",
				     15, other), 0);
	memcpy(strrchr(other, '-'), strrchr(tok, '-'),
	       TOKEN_UNSUB_MAC_CHARS + 2);
	assert_false(token_unsub_check(key, other, strlen(other),
				       "ann@example.net", 15));
	/* another campaign's */
	assert_int_equal(token_unsub(key, 43, 123456789, "ann@example.net",
				     15, other), 0);
	memcpy(strrchr(other, '-'), strrchr(tok, '-'),
	       TOKEN_UNSUB_MAC_CHARS + 2);
	assert_false(token_unsub_check(key, other, strlen(other),
				       "ann@example.net", 15));
	/* any one changed character fails */
	n = strlen(tok);
	for (size_t i = 0; i < n; i++) {
		memcpy(other, tok, n + 1);
		other[i] = other[i] == 'a' ? 'b' : 'a';
		assert_false(token_unsub_check(key, other, n,
					       "ann@example.net", 15));
	}
	/* cut, or one character too many */
	assert_false(token_unsub_check(key, tok, n - 1, "ann@example.net",
				       15));
	memcpy(other, tok, n);
	other[n] = 'a';
	other[n + 1] = '\0';
	assert_false(token_unsub_check(key, other, n + 1, "ann@example.net",
				       15));
	assert_false(token_unsub_parse("b-b-", 4, &c, &j));
	assert_false(token_unsub_parse("b-b-aaaaaaaaaa", 14, &c, &j));
	assert_false(token_unsub_parse("", 0, &c, &j));
	/* the URL: base without its trailing '/', then /u/TOKEN */
	assert_int_equal(token_unsub_url(key, "https://n.example.org/", 42,
					 123456789, "ann@example.net", 15,
					 &url), 0);
	assert_int_equal(strncmp(buf_cstr(&url), "https://n.example.org/u/",
				 24), 0);
	assert_string_equal(buf_cstr(&url) + 24, tok);
	buf_free(&url);
	token_key_free(&key);
	token_key_free(&key2);
}

/* render_unsub - render one recipient with an unsubscribe URL (or NULL),
 * its row holding unsubscribe_url too (which must not win) */
static int render_unsub(const struct message_tmpl *mt, const char *url,
			struct buf *out, const char **error_r)
{
	struct message_bufs bufs = { 0 };
	struct buf names = BUF_INIT, vals = BUF_INIT;
	struct vars_data vd;
	struct message_job job = {
		.to = "ann@example.net", .to_len = 15, .campaign_id = 3,
		.job_id = 9, .campaign_created = 1, .date = 0,
		.unsubscribe_url = url,
		.unsubscribe_url_len = url != NULL ? strlen(url) : 0,
	};
	int ret;

	vars_pack_begin(&names);
	vars_pack_str(&names, "name", 4);
	vars_pack_str(&names, "unsubscribe_url", 15);
	vars_pack_begin(&vals);
	vars_pack_str(&vals, "Ann", 3);
	vars_pack_str(&vals, "https://evil.example/", 21);
	assert_int_equal(vars_data_init(&vd, names.data, names.len, "email",
					"ann@example.net", 15, vals.data,
					vals.len), 0);
	if (url != NULL)
		vars_data_set_unsubscribe_url(&vd, url, strlen(url));
	buf_reset(out);
	ret = message_render(mt, &vd.data, &job, &bufs, out, error_r);
	message_bufs_free(&bufs);
	buf_free(&names);
	buf_free(&vals);
	return ret;
}

static void test_unsubscribe_url(void **state)
{
	static const char url[] = "https://n.example.org/u/d-j-"
				  "abcdefghijklmnopqrstuvwxyz";
	struct message_tmpl *mt = NULL;
	struct buf out = BUF_INIT, want = BUF_INIT;
	const char *error;

	(void)state;
	tpl_files[0] = (struct file){ "message.cfg",
		"subject = \"s\"; from = \"a@example.org\";" };
	tpl_files[1] = (struct file){ "body.txt",
		"Leave: {{unsubscribe_url}}\n" };
	tpl_files[2] = (struct file){ "body.html",
		"<a href=\"{{unsubscribe_url}}\">leave</a> "
		"<a href=\"{{{unsubscribe_url}}}\">x</a>\n" };
	assert_int_equal(message_tmpl_load(tpl_lookup, NULL, &mt, &error), 0);
	tpl_files[2] = (struct file){ NULL, NULL };
	assert_int_equal(render_unsub(mt, url, &out, &error), 0);
	/* the headers RFC 2369 and RFC 8058 ask for */
	buf_printf(&want, "\r\nList-Unsubscribe: <%s>\r\n"
		   "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
		   url);
	assert_non_null(strstr(buf_cstr(&out), buf_cstr(&want)));
	/* the text and the HTML (a URL attribute: checked, not encoded)
	 * have it as it is; the row's own unsubscribe_url never wins */
	buf_reset(&want);
	buf_printf(&want, "Leave: %s\r\n", url);
	assert_non_null(strstr(buf_cstr(&out), buf_cstr(&want)));
	buf_reset(&want);
	buf_printf(&want, "<a href=\"%s\">leave</a> <a href=\"%s\">x</a>",
		   url, url);
	assert_non_null(strstr(buf_cstr(&out), buf_cstr(&want)));
	assert_null(strstr(buf_cstr(&out), "evil.example"));
	/* an http base_url: List-Unsubscribe, but one-click is https only */
	assert_int_equal(render_unsub(mt, "http://127.0.0.1:8025/u/b-b-x",
				      &out, &error), 0);
	assert_non_null(strstr(buf_cstr(&out), "\r\nList-Unsubscribe: "
			       "<http://127.0.0.1:8025/u/b-b-x>\r\n"));
	assert_null(strstr(buf_cstr(&out), "List-Unsubscribe-Post"));
	/* none given: no header */
	message_tmpl_free(&mt);
	mt = load("subject = \"s\"; from = \"a@example.org\";", &error);
	assert_non_null(mt);
	assert_int_equal(render_unsub(mt, NULL, &out, &error), 0);
	assert_null(strstr(buf_cstr(&out), "List-Unsubscribe"));
	/* with list_unsubscribe_mailto: both in one header */
	message_tmpl_free(&mt);
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "list_unsubscribe_mailto = \"leave@example.org\";", &error);
	assert_non_null(mt);
	assert_false(message_tmpl_sets_list_unsubscribe(mt));
	assert_int_equal(render_unsub(mt, url, &out, &error), 0);
	buf_reset(&want);
	/* (folded: the line would pass 78 characters) */
	buf_printf(&want, "\r\nList-Unsubscribe: <%s>,\r\n "
		   "<mailto:leave@example.org>\r\n"
		   "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
		   url);
	assert_non_null(strstr(buf_cstr(&out), buf_cstr(&want)));
	/* message.cfg's own list_unsubscribe wins: ours is not added */
	message_tmpl_free(&mt);
	mt = load("subject = \"s\"; from = \"a@example.org\";\n"
		  "list_unsubscribe = \"https://own.example/{{name}}\";",
		  &error);
	assert_non_null(mt);
	assert_true(message_tmpl_sets_list_unsubscribe(mt));
	assert_int_equal(render_unsub(mt, url, &out, &error), 0);
	assert_non_null(strstr(buf_cstr(&out), "\r\nList-Unsubscribe: "
			       "<https://own.example/Ann>\r\n"));
	assert_null(strstr(buf_cstr(&out), "n.example.org"));
	message_tmpl_free(&mt);
	buf_free(&out);
	buf_free(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_return_path),
		cmocka_unit_test(test_envelope_problem),
		cmocka_unit_test(test_to_header),
		cmocka_unit_test(test_feedback_id),
		cmocka_unit_test(test_recipient_files),
		cmocka_unit_test(test_verp_token),
		cmocka_unit_test(test_unsub_token),
		cmocka_unit_test(test_unsubscribe_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
