/*
 * test_bounce - engine/bounce: the MIME reader, the classifier and the
 * parser over the corpus of tests/bounces/, each file checked against
 * tests/bounces/expected.txt (one line per recipient found):
 *
 *   FILE KIND ADDRESS ACTION STATUS CATEGORY ORIGINAL-MESSAGE-ID VERP
 *
 * "-" for a value that must be empty; a file whose report has no
 * recipient has one line with ADDRESS "-".  Every address a report
 * gives must be bytes of the file (or of a decoded part of it).
 *
 *	test_bounce --dump FILE    prints what the parser makes of FILE
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bounce.h"
#include "bounce_rules.h"
#include "buf.h"
#include "mailmsg.h"

static void read_file(const char *path, struct buf *out)
{
	char chunk[65536];
	FILE *f = fopen(path, "rb");
	size_t n;

	buf_reset(out);
	if (f == NULL)
		fail_msg("cannot open %s", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	fclose(f);
	buf_append(out, "", 0);
}

static const char *corpus_dir(void)
{
	static char dir[1024];
	const char *src = getenv("VOLLEY_SOURCE_DIR");

	snprintf(dir, sizeof(dir), "%s/tests/bounces", src ? src : ".");
	return dir;
}

/* ------------------------------------------------------------------ */
/* mailmsg                                                             */

static void test_headers(void **state)
{
	const char *msg = "From user@x Mon Dec  7 10:00:00 2026\r\n"
			  "SUBJECT: one\r\n two\r\n\tthree\r\n"
			  "To: a@b\r\n"
			  "\r\n"
			  "body\r\n";
	struct mailmsg_span head, body;
	struct buf out = BUF_INIT;

	(void)state;
	mailmsg_split(msg, strlen(msg), &head, &body);
	assert_int_equal(body.len, 6);
	assert_true(mailmsg_header(&head, "subject", &out));
	assert_string_equal(out.data, "one two three");
	assert_true(mailmsg_header(&head, "TO", &out));
	assert_string_equal(out.data, "a@b");
	assert_false(mailmsg_header(&head, "Cc", &out));
	/* the mbox "From " line is no field */
	assert_false(mailmsg_header(&head, "From user@x Mon Dec  7 10",
				    &out));
	buf_free(&out);
}

static void test_ctype(void **state)
{
	const char *v = " Multipart/Report;\r\n"
			"\treport-type=\"Delivery-Status\";"
			" boundary=\"a;b \\\"c\\\"\"";
	struct mailmsg_ctype ct;
	char out[7];

	(void)state;
	mailmsg_ctype_parse(v, strlen(v), &ct);
	assert_string_equal(ct.type, "multipart/report");
	assert_string_equal(ct.report_type, "delivery-status");
	assert_string_equal(ct.boundary, "a;b \"c\"");
	/* too long for out: refused, not cut */
	assert_false(mailmsg_param(v, strlen(v), "boundary", out,
				   sizeof(out)));
	mailmsg_ctype_parse("garbage", 7, &ct);
	assert_string_equal(ct.type, "text/plain");
}

static void test_multipart(void **state)
{
	const char *msg =
		"Content-Type: multipart/mixed; boundary=outer\n\n"
		"preamble\n--outer\n"
		"Content-Type: multipart/alternative; boundary=\"inner\"\n\n"
		"--inner\nContent-Type: text/plain\n\none\n"
		"--inner\nContent-Type: text/html\n\n<p>two</p>\n--inner--\n"
		"--outer\r\n"
		"Content-Type: text/plain\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"caf=C3=A9 soft=\r\nbreak =\r\n"
		"--outer\n"
		"Content-Transfer-Encoding: BASE64\n\naGVs\nbG8=\n"
		"--outer--\nepilogue\n";
	struct mailmsg *m = malloc(sizeof(*m));
	struct buf out = BUF_INIT;

	(void)state;
	mailmsg_parse(m, msg, strlen(msg));
	assert_false(m->truncated);
	assert_int_equal(m->nparts, 6);
	assert_int_equal(m->parts[0].children, 3);
	assert_string_equal(m->parts[1].ct.type, "multipart/alternative");
	assert_int_equal(m->parts[1].children, 2);
	assert_string_equal(m->parts[2].ct.type, "text/plain");
	assert_int_equal(m->parts[4].depth, 2);
	assert_int_equal(m->parts[4].parent, 1);
	mailmsg_decode(&m->parts[4], &out);
	assert_string_equal(out.data, "one");
	buf_reset(&out);
	mailmsg_decode(&m->parts[2], &out);
	assert_string_equal(out.data, "caf\xc3\xa9 softbreak ");
	buf_reset(&out);
	mailmsg_decode(&m->parts[3], &out);
	assert_string_equal(out.data, "hello");
	free(m);
	buf_free(&out);
}

static void test_multipart_limits(void **state)
{
	struct mailmsg *m = malloc(sizeof(*m));
	struct buf msg = BUF_INIT;

	(void)state;
	/* nested deeper than the limit: flagged, no recursion */
	for (int i = 0; i < 20; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; "
			   "boundary=b%d\n\n--b%d\n", i, i);
	buf_append_str(&msg, "\ntext\n");
	mailmsg_parse(m, msg.data, msg.len);
	assert_true(m->truncated);
	assert_int_equal(m->nparts, MAILMSG_DEPTH_MAX + 1);
	/* more parts than the table holds; the last has no end */
	buf_reset(&msg);
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=x\n\n");
	for (int i = 0; i < 200; i++)
		buf_append_str(&msg, "--x\n\npart\n");
	mailmsg_parse(m, msg.data, msg.len);
	assert_true(m->truncated);
	assert_int_equal(m->nparts, MAILMSG_PARTS_MAX);
	/* no closing delimiter: the part runs to the end */
	buf_reset(&msg);
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=x\n\n"
		       "--x\n\nlast words");
	mailmsg_parse(m, msg.data, msg.len);
	assert_int_equal(m->nparts, 2);
	assert_int_equal(m->parts[1].body.len, 10);
	free(m);
	buf_free(&msg);
}

static void test_decoders(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	mailmsg_decode_base64("!!aG\nVsbG8g@@d29y\r\nbGQ=trailing", 31, &out);
	assert_string_equal(out.data, "hello world\xb6\xb6\xa2\x96\x29\xe0");
	buf_reset(&out);
	mailmsg_decode_qp("a=3Db=\nc=ZZ=", 12, &out);
	assert_string_equal(out.data, "a=bc=ZZ");
	buf_free(&out);
}

/* ------------------------------------------------------------------ */
/* bounce_rules                                                        */

static void test_rules_errors(void **state)
{
	static const struct {
		const char *text, *error;
	} bad[] = {
		{ "bad-mailbox status 5.1.1\nno-such-thing text x\n",
		  "r.rules:2: unknown category" },
		{ "\n\nbad-mailbox\n", "r.rules:3: rule without a condition" },
		{ "bad-mailbox text \"open\n", "r.rules:1: unclosed quote" },
		{ "bad-mailbox status 5.x.1\n",
		  "r.rules:1: status pattern is not like 5.1.1 or 5.1.*" },
		{ "bad-mailbox code 5a0\n",
		  "r.rules:1: code pattern is not like 550 or 5*" },
		{ "bad-mailbox when 5.1.1\n",
		  "r.rules:1: unknown condition (status, code or text)" },
		{ "hard bad-mailbox nonsense\n",
		  "r.rules:1: unknown category" },
		{ "other text\n", "r.rules:1: condition without a pattern" },
	};
	const char *error = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		assert_null(bounce_rules_load(bad[i].text, strlen(bad[i].text),
					      "r.rules", &error));
		assert_string_equal(error, bad[i].error);
	}
}

static void test_rules_match(void **state)
{
	const char *text =
		"# comment\n"
		"hard quota-issues\n"
		"soft bad-mailbox\n"
		"spam-related status 5.7.* text \"spam*haus\"\n"
		"policy-related status 5.7.*\n"
		"quota-issues text \"MAILBOX full\"   # trailing comment\n"
		"bad-mailbox code 55?\n"
		"transient-failure code 4*\n";
	struct bounce_rules *rules;
	struct bounce_class c;
	const char *error = NULL;

	(void)state;
	rules = bounce_rules_load(text, strlen(text), "t", &error);
	assert_non_null(rules);
	assert_int_equal(bounce_rules_count(rules), 5);
	/* both conditions, any case */
	bounce_rules_classify(rules, 554, "5.7.1", "listed by SpamHaus", &c);
	assert_int_equal(c.category, BOUNCE_CAT_SPAM_RELATED);
	assert_int_equal(c.line, 4);
	assert_false(c.hard);
	/* one of two: the next rule */
	bounce_rules_classify(rules, 554, "5.7.1", "go away", &c);
	assert_int_equal(c.category, BOUNCE_CAT_POLICY_RELATED);
	/* first match wins over a later code rule; hard as declared */
	bounce_rules_classify(rules, 552, "", "Mailbox Full", &c);
	assert_int_equal(c.category, BOUNCE_CAT_QUOTA_ISSUES);
	assert_true(c.hard);
	bounce_rules_classify(rules, 550, NULL, NULL, &c);
	assert_int_equal(c.category, BOUNCE_CAT_BAD_MAILBOX);
	assert_false(c.hard);	/* made soft by the file */
	bounce_rules_classify(rules, 421, "", "", &c);
	assert_int_equal(c.category, BOUNCE_CAT_TRANSIENT_FAILURE);
	bounce_rules_classify(rules, 0, NULL, "whatever", &c);
	assert_int_equal(c.category, BOUNCE_CAT_OTHER);
	assert_int_equal(c.line, 0);
	bounce_rules_free(rules);
}

static void test_rules_default(void **state)
{
	static const struct {
		int code;
		const char *enhanced, *text;
		enum bounce_category cat;
		bool hard;
	} cases[] = {
		/* what volley gets at send time, RCPT answered 550 */
		{ 550, "5.1.1", "user unknown", BOUNCE_CAT_BAD_MAILBOX, true },
		{ 550, "", "Requested action not taken: mailbox unavailable",
		  BOUNCE_CAT_BAD_MAILBOX, true },
		{ 552, "5.2.2", "Mailbox full", BOUNCE_CAT_QUOTA_ISSUES,
		  false },
		{ 452, "", "user is over quota", BOUNCE_CAT_QUOTA_ISSUES,
		  false },
		{ 554, "5.7.1", "Client host blocked using Spamhaus",
		  BOUNCE_CAT_SPAM_RELATED, false },
		{ 550, "5.7.1", "Message rejected due to local policy",
		  BOUNCE_CAT_POLICY_RELATED, false },
		{ 554, "5.7.1", "Relay access denied",
		  BOUNCE_CAT_ROUTING_ERRORS, false },
		{ 550, "5.1.2", "Host or domain name not found",
		  BOUNCE_CAT_BAD_DOMAIN, true },
		{ 0, "4.4.7", "delivery temporarily suspended",
		  BOUNCE_CAT_MESSAGE_EXPIRED, false },
		{ 553, "5.1.8", "Sender address rejected: Domain not found",
		  BOUNCE_CAT_INVALID_SENDER, true },
		{ 550, "5.2.1", "The email account is disabled",
		  BOUNCE_CAT_INACTIVE_MAILBOX, true },
		{ 554, "5.6.0", "Message contains a virus",
		  BOUNCE_CAT_CONTENT_RELATED, false },
		{ 451, "4.7.1", "Greylisted, please try again later",
		  BOUNCE_CAT_TRANSIENT_FAILURE, false },
		{ 500, "5.5.2", "Syntax error, command unrecognized",
		  BOUNCE_CAT_PROTOCOL_ERRORS, false },
		{ 550, "", "", BOUNCE_CAT_OTHER, false },
	};
	const char *error = NULL;
	struct bounce_rules *rules = bounce_rules_default(&error);
	struct bounce_class c;

	(void)state;
	assert_non_null(rules);
	assert_true(bounce_rules_count(rules) > 100);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bounce_rules_classify(rules, cases[i].code, cases[i].enhanced,
				      cases[i].text, &c);
		if (c.category != cases[i].cat || c.hard != cases[i].hard)
			fail_msg("case %zu (%s): %s, line %d", i,
				 cases[i].text,
				 bounce_category_name(c.category), c.line);
	}
	bounce_rules_free(rules);
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(bounce_glob("5.1.*", "5.1.10", 6));
	assert_false(bounce_glob("5.1.?", "5.1.10", 6));
	assert_true(bounce_glob("*a*b*c*", "xxaxxbxxc", 9));
	assert_false(bounce_glob("*a*b*c*d", "aaaaaaaaaaaaaaaaaaaaaaaabc", 26));
	assert_true(bounce_glob("", "", 0));
	assert_false(bounce_glob("", "a", 1));
}

static void test_volley_id(void **state)
{
	uint64_t c = 0, j = 0;

	(void)state;
	assert_true(bounce_volley_id("<volley.12.345.19af3c2b@x.org>", &c,
				     &j));
	assert_int_equal(c, 12);
	assert_int_equal(j, 345);
	assert_false(bounce_volley_id("<volley.12.x.1@x>", &c, &j));
	assert_false(bounce_volley_id("<volley.12.3.1>", &c, &j));
	assert_false(bounce_volley_id("<other.12.3.1@x>", &c, &j));
}

/* ------------------------------------------------------------------ */
/* the corpus                                                          */

/* in_message - is s bytes of the message, or of a decoded part of it? */
static bool in_message(const struct buf *msg, const char *s)
{
	struct mailmsg *m;
	struct buf dec = BUF_INIT;
	bool found;

	if (s[0] == '\0' || memmem(msg->data, msg->len, s, strlen(s)))
		return true;
	m = malloc(sizeof(*m));
	mailmsg_parse(m, msg->data, msg->len);
	for (size_t i = 0; i < m->nparts; i++)
		mailmsg_decode(&m->parts[i], &dec);
	found = memmem(buf_cstr(&dec), dec.len, s, strlen(s)) != NULL;
	free(m);
	buf_free(&dec);
	return found;
}

static void check_literal(const struct buf *msg,
			  const struct bounce_report *r)
{
	for (size_t i = 0; i < r->nverp; i++)
		assert_true(in_message(msg, r->verp[i]));
	for (size_t i = 0; i < r->nrcpts; i++) {
		assert_true(in_message(msg, r->rcpts[i].final_rcpt));
		assert_true(in_message(msg, r->rcpts[i].original_rcpt));
	}
	assert_true(in_message(msg, r->orig_to));
	assert_true(in_message(msg, r->orig_from));
	assert_true(in_message(msg, r->arf.original_rcpt_to));
	assert_true(in_message(msg, r->arf.original_mail_from));
}

static const char *dash(const char *s)
{
	return s[0] != '\0' ? s : "-";
}

static void dump(const char *path, const struct bounce_report *r,
		 const struct bounce_rules *rules)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	if (r->nrcpts == 0)
		printf("%s %s - - - - %s %s\n", name,
		       bounce_kind_name(r->kind), dash(r->orig_message_id),
		       r->nverp ? r->verp[0] : "-");
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct bounce_rcpt *rc = &r->rcpts[i];
		struct bounce_class c;

		bounce_rules_classify(rules, rc->reply_code, rc->status,
				      rc->diagnostic, &c);
		printf("%s %s %s %s %s %s %s %s\n", name,
		       bounce_kind_name(r->kind), dash(rc->final_rcpt),
		       bounce_action_name(rc->action), dash(rc->status),
		       r->kind == BOUNCE_ARF ? "-" :
		       bounce_category_name(c.category),
		       dash(r->orig_message_id), r->nverp ? r->verp[0] : "-");
	}
}

static void test_corpus(void **state)
{
	char path[4096], line[2048], last[256] = "";
	struct bounce_report *r = malloc(sizeof(*r));
	struct bounce_rules *rules = bounce_rules_default(NULL);
	struct buf msg = BUF_INIT;
	FILE *f;
	size_t rcpt = 0, files = 0;
	int lineno = 0;

	(void)state;
	bounce_report_init(r);
	snprintf(path, sizeof(path), "%s/expected.txt", corpus_dir());
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char file[256], kind[16], addr[256], action[16], status[16];
		char cat[32], msgid[256], verp[256];
		const char *got_addr = "-", *got_action = "-";
		const char *got_status = "-", *got_cat = "-";
		struct bounce_class c;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%255s %15s %255s %15s %15s %31s %255s %255s",
			   file, kind, addr, action, status, cat, msgid,
			   verp) != 8)
			fail_msg("expected.txt:%d: 8 fields wanted", lineno);
		if (strcmp(file, last) != 0) {
			/* the previous file had no more recipients */
			if (last[0] != '\0' && rcpt < r->nrcpts)
				fail_msg("%s: %zu recipients, %zu expected",
					 last, r->nrcpts, rcpt);
			snprintf(path, sizeof(path), "%s/%s", corpus_dir(),
				 file);
			read_file(path, &msg);
			bounce_parse(msg.data, msg.len, r);
			check_literal(&msg, r);
			strcpy(last, file);
			rcpt = 0;
			files++;
		}
		if (strcmp(addr, "-") != 0 || rcpt < r->nrcpts) {
			const struct bounce_rcpt *rc;

			if (rcpt >= r->nrcpts)
				fail_msg("expected.txt:%d: %s has only %zu "
					 "recipients", lineno, file,
					 r->nrcpts);
			rc = &r->rcpts[rcpt++];
			bounce_rules_classify(rules, rc->reply_code,
					      rc->status, rc->diagnostic, &c);
			got_addr = dash(rc->final_rcpt);
			got_action = bounce_action_name(rc->action);
			got_status = dash(rc->status);
			got_cat = r->kind == BOUNCE_ARF ? "-" :
				  bounce_category_name(c.category);
		}
		if (strcmp(kind, bounce_kind_name(r->kind)) != 0 ||
		    strcmp(addr, got_addr) != 0 ||
		    strcmp(action, got_action) != 0 ||
		    strcmp(status, got_status) != 0 ||
		    strcmp(cat, got_cat) != 0 ||
		    strcmp(msgid, dash(r->orig_message_id)) != 0 ||
		    strcmp(verp, r->nverp ? r->verp[0] : "-") != 0) {
			dump(file, r, rules);
			fail_msg("expected.txt:%d: %s: got the above", lineno,
				 file);
		}
	}
	fclose(f);
	if (rcpt < r->nrcpts)
		fail_msg("%s: %zu recipients, %zu expected", last, r->nrcpts,
			 rcpt);
	assert_true(files >= 18);
	bounce_report_free(r);
	free(r);
	bounce_rules_free(rules);
	buf_free(&msg);
}

/* the parts of one report checked by hand, beyond the manifest */
static void test_report_details(void **state)
{
	char path[4096];
	struct bounce_report *r = malloc(sizeof(*r));
	struct buf msg = BUF_INIT;

	(void)state;
	bounce_report_init(r);
	snprintf(path, sizeof(path), "%s/gmail-dsn.eml", corpus_dir());
	read_file(path, &msg);
	assert_int_equal(bounce_parse(msg.data, msg.len, r), BOUNCE_DSN);
	assert_string_equal(r->message_id, "<6757a1c2.050a0220.3b1f2e."
			    "0001.GMR@mx.google.com>");
	assert_int_equal(r->rcpts[0].reply_code, 550);
	/* multiline reply joined, repeated prefixes dropped */
	assert_string_equal(r->rcpts[0].diagnostic,
		"The email account that you tried to reach does not exist. "
		"Please try double-checking the recipient's email address for "
		"typos or unnecessary spaces. For more information, go to "
		"https://support.google.example/mail/?p=NoSuchUser a1b2c3d4 - "
		"gsmtp");
	assert_string_equal(r->rcpts[0].remote_mta,
			    "gmail-smtp-in.l.google.com. (2001:db8::1b, the "
			    "server for the domain gmail.com.)");
	assert_string_equal(r->reporting_mta, "googlemail.com");
	assert_string_equal(r->orig_to, "no.such.person.42@gmail.com");

	snprintf(path, sizeof(path), "%s/arf-yahoo.eml", corpus_dir());
	read_file(path, &msg);
	assert_int_equal(bounce_parse(msg.data, msg.len, r), BOUNCE_ARF);
	assert_string_equal(r->arf.feedback_type, "abuse");
	assert_string_equal(r->arf.user_agent, "Yahoo!-Mail-Feedback/2.0");
	assert_string_equal(r->arf.original_rcpt_to, "reader.one@yahoo.com");
	assert_string_equal(r->arf.original_mail_from,
			    "bounces+c-ap-arfq7m2x9d@news.example.org");
	assert_string_equal(r->arf.source_ip, "192.0.2.10");
	assert_string_equal(r->arf.reported_domain, "news.example.org");
	assert_string_equal(r->arf.arrival_date,
			    "Wed, 9 Dec 2026 09:58:02 +0000");

	snprintf(path, sizeof(path), "%s/multi-dsn.eml", corpus_dir());
	read_file(path, &msg);
	bounce_parse(msg.data, msg.len, r);
	assert_string_equal(r->rcpts[0].original_rcpt, "A.First@Example.com");
	assert_int_equal(r->rcpts[1].reply_code, 554);
	assert_string_equal(r->rcpts[1].diagnostic,
			    "Service unavailable; Client host [192.0.2.10] "
			    "blocked using zen.spamhaus.example");

	/* not NUL ended, cut anywhere: never reads past the end */
	for (size_t cut = 0; cut < msg.len; cut += 97) {
		char *copy = malloc(cut + 1);

		memcpy(copy, msg.data, cut);
		bounce_parse(copy, cut, r);
		free(copy);
	}
	bounce_report_free(r);
	free(r);
	buf_free(&msg);
}

/* parse a NUL-ended message (not NUL ended for the parser) */
static enum bounce_kind parse_str(const char *msg, struct bounce_report *r)
{
	size_t n = strlen(msg);
	char *copy = malloc(n + 1);
	enum bounce_kind k;

	memcpy(copy, msg, n);
	k = bounce_parse(copy, n, r);
	free(copy);
	return k;
}

/* where the parser must rather report no address than a wrong one */
static void test_no_guess(void **state)
{
	struct bounce_report *r = malloc(sizeof(*r));

	(void)state;
	bounce_report_init(r);
	/* two recipients without an address, two X-Failed-Recipients: no
	 * pairing is guessed */
	assert_int_equal(parse_str(
		"X-Failed-Recipients: a.one@example.net, b.two@example.net\n"
		"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
		"To: bounces+x@news.example.org\n"
		"Subject: Mail delivery failed: returning message to sender\n"
		"\n"
		"A message that you sent could not be delivered to one or more "
		"of its\nrecipients. The following address(es) failed:\n\n"
		"  save to /var/mail/one\n    generated by a.one\n\n"
		"  pipe to |/usr/bin/two\n    generated by b.two\n", r),
		BOUNCE_TEXT);
	assert_int_equal(r->nrcpts, 2);
	assert_string_equal(r->rcpts[0].final_rcpt, "");
	assert_string_equal(r->rcpts[1].final_rcpt, "");
	/* X-Failed-Recipients naming the bounce's own To is not believed */
	assert_int_equal(parse_str(
		"X-Failed-Recipients: bounces+x@news.example.org\n"
		"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
		"To: bounces+x@news.example.org\n"
		"Subject: Mail delivery failed: returning message to sender\n"
		"\n"
		"The following address(es) failed:\n\n"
		"  save to /var/mail/one\n", r), BOUNCE_TEXT);
	assert_int_equal(r->nrcpts, 1);
	assert_string_equal(r->rcpts[0].final_rcpt, "");
	/* a text that named its recipient: X-Failed-Recipients adds none */
	assert_int_equal(parse_str(
		"X-Failed-Recipients: other@example.net\n"
		"From: MAILER-DAEMON@mx.example.net\n"
		"Subject: failure notice\n\n"
		"Unable to deliver message to: <named@example.net>\n"
		"550 no such user\n", r), BOUNCE_TEXT);
	assert_int_equal(r->nrcpts, 1);
	assert_string_equal(r->rcpts[0].final_rcpt, "named@example.net");
	/* a line that names the bounce's own To, or our sender, is not a
	 * recipient's */
	assert_int_equal(parse_str(
		"From: MAILER-DAEMON@mx.example.net\n"
		"To: bounces+x@news.example.org\n"
		"Subject: Undeliverable\n\n"
		"  ----- The following addresses had permanent fatal errors "
		"-----\n"
		"bounces+x@news.example.org\n"
		"news@news.example.org (reason: 550 relaying denied)\n\n"
		"   ----- Original message follows -----\n"
		"From: news@news.example.org\nTo: someone@example.net\n", r),
		BOUNCE_TEXT);
	assert_int_equal(r->nrcpts, 2);
	assert_string_equal(r->rcpts[0].final_rcpt, "");
	assert_string_equal(r->rcpts[1].final_rcpt, "");
	/* the address must start the list line or follow the phrase */
	assert_int_equal(parse_str(
		"From: postmaster@mx.example.net\n"
		"Subject: Delivery failure\n\n"
		"Your message was not delivered to:\n\n"
		"  the user whose address is kept at help@example.net\n", r),
		BOUNCE_TEXT);
	assert_int_equal(r->nrcpts, 0);
	assert_int_equal(parse_str(
		"From: postmaster@mx.example.net\n"
		"Subject: Delivery failure\n\n"
		"There was an error delivering your mail to the team of "
		"ops@example.net.\n", r), BOUNCE_TEXT);
	assert_int_equal(r->nrcpts, 0);
	/* SES: an emailAddress that is not one address gives none; a
	 * string holding ']' does not end the list */
	assert_int_equal(parse_str(
		"From: no-reply@sns.example.net\n\n"
		"{\"notificationType\":\"Bounce\",\"bounce\":"
		"{\"bouncedRecipients\":[{\"emailAddress\":"
		"\"x@example.net, y@example.net\",\"diagnosticCode\":"
		"\"smtp; 554 [192.0.2.1] blocked\"},{\"emailAddress\":"
		"\"z@example.net\"}]}}\n", r), BOUNCE_DSN);
	assert_int_equal(r->nrcpts, 2);
	assert_string_equal(r->rcpts[0].final_rcpt, "");
	assert_int_equal(r->rcpts[0].reply_code, 554);
	assert_string_equal(r->rcpts[1].final_rcpt, "z@example.net");
	/* an RFC 3834 auto-reply is no bounce, whatever its text says */
	assert_int_equal(parse_str(
		"From: someone@example.net\nAuto-Submitted: auto-replied\n"
		"Subject: Re: news\n\n"
		"Unable to deliver message to: <someone@example.net> while I "
		"am away.\n", r), BOUNCE_NONE);
	bounce_report_free(r);
	free(r);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_ctype),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_multipart_limits),
		cmocka_unit_test(test_decoders),
		cmocka_unit_test(test_rules_errors),
		cmocka_unit_test(test_rules_match),
		cmocka_unit_test(test_rules_default),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_volley_id),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_report_details),
		cmocka_unit_test(test_no_guess),
	};

	if (argc == 3 && strcmp(argv[1], "--dump") == 0) {
		struct bounce_report *r = malloc(sizeof(*r));
		struct bounce_rules *rules = bounce_rules_default(NULL);
		struct buf msg = BUF_INIT;

		bounce_report_init(r);
		read_file(argv[2], &msg);
		bounce_parse(msg.data, msg.len, r);
		dump(argv[2], r, rules);
		for (size_t i = 0; i < r->nrcpts; i++)
			printf("  [%zu] code %d diag: %s\n", i,
			       r->rcpts[i].reply_code,
			       r->rcpts[i].diagnostic);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
