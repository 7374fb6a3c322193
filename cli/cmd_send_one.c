/*
 * cmd_send_one - `volley send-one`: one message through the configured
 * relay, for someone debugging a relay (or volley's settings for it).
 *
 * It takes the path every campaign message takes - the same relay
 * settings, TLS checks, session and connection code - and says what
 * happened to each recipient; -v shows the conversation with the
 * credentials masked.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "dkim.h"
#include "escape.h"
#include "mailaddr.h"
#include "mime_enc.h"
#include "relay.h"
#include "utf8.h"

#define SEND_ONE_MAX_RCPTS 100
#define SEND_ONE_MAX_BODY (10 * 1024 * 1024)

const char cmd_send_one_help[] =
	"usage: volley send-one --to ADDR [--to ADDR ...] [--from ADDR]\n"
	"                       [--subject TEXT] [--body-file FILE]\n"
	"                       [--save FILE] [-v]\n"
	"       volley send-one --to ADDR [--to ADDR ...] [--from ADDR]\n"
	"                       --eml FILE [-v]\n"
	"\n"
	"Send one plain-text message through the relay configured in the\n"
	"smtp group of volley.cfg, exactly as a campaign would (TLS, AUTH,\n"
	"PIPELINING, CHUNKING), and print what the server said about each\n"
	"recipient, one line each on standard output:\n"
	"\n"
	"  ADDR: sent 250 2.0.0 Ok: queued as 4F2...\n"
	"  ADDR: refused 550 5.1.1 <ADDR>: Recipient address rejected\n"
	"  ADDR: deferred 451 4.3.0 try again later\n"
	"\n"
	"  --to ADDR        a recipient (up to 100)\n"
	"  --from ADDR      the sender (default: smtp.username when it is an\n"
	"                   address, else volley@HELO-NAME)\n"
	"  --subject TEXT   default \"volley send-one test\"\n"
	"  --body-file FILE the text of the message (UTF-8), - for standard\n"
	"                   input; default a line saying what this is\n"
	"  --save FILE      also write the exact message volley sent\n"
	"  --eml FILE       send FILE, a whole RFC 5322 message (a .eml\n"
	"                   from `volley preview`, say), as it is; line ends\n"
	"                   are made CRLF, nothing else changes\n"
	"  -v, --verbose    show the SMTP conversation on standard error:\n"
	"                   C: volley, S: the server, *: what happened.\n"
	"                   Credentials are masked; bodies are shown as\n"
	"                   their size.  Twice (-vv): also each change of\n"
	"                   the client session's state (#: EHLO -> READY)\n"
	"\n"
	"Exit status: 0 when every recipient got the message, 1 otherwise\n"
	"(with the reason on standard error when the connection failed).\n";

struct send_one {
	const char *const *rcpts;
	size_t nrcpts;
	struct smtp_message m;
	bool taken;
	/* per recipient: the reply to its RCPT, then its fate */
	int code[SEND_ONE_MAX_RCPTS];
	char reply[SEND_ONE_MAX_RCPTS][512];
	bool settled[SEND_ONE_MAX_RCPTS];	/* its reply is its fate */
	bool done;
	bool all_sent;
};

static const struct smtp_message *send_one_next(void *ctx, bool *later)
{
	struct send_one *so = ctx;

	(void)later;	/* no "later": when there is none, QUIT */
	if (so->taken)
		return NULL;
	so->taken = true;
	return &so->m;
}

/* send_one_say - "ADDR: verdict CODE ENH TEXT" with the text escaped */
static void send_one_say(const char *addr, const char *verdict, int code,
			 const char *enhanced, const char *text)
{
	struct buf b = BUF_INIT;

	escape_text(&b, addr, strlen(addr), 300);
	buf_printf(&b, ": %s %d", verdict, code);
	if (enhanced != NULL && *enhanced != '\0')
		buf_printf(&b, " %s", enhanced);
	if (text != NULL && *text != '\0') {
		buf_putc(&b, ' ');
		escape_text(&b, text, strlen(text), 400);
	}
	printf("%s\n", buf_cstr(&b));
	buf_free(&b);
}

static const char *send_one_verdict(int code)
{
	return code / 100 == 2 ? "sent" : code / 100 == 4 ? "deferred" :
	       "refused";
}

/* send_one_keep - recipient i's fate so far: the reply, "ENH TEXT" */
static void send_one_keep(struct send_one *so, size_t i,
			  const struct smtp_event *ev)
{
	so->code[i] = ev->code;
	snprintf(so->reply[i], sizeof(so->reply[0]), "%s%s%s",
		 ev->enhanced ? ev->enhanced : "",
		 ev->enhanced && *ev->enhanced ? " " : "",
		 ev->text ? ev->text : "");
}

/* send_one_print - "ADDR: verdict ..." for recipient i */
static void send_one_print(const struct send_one *so, size_t i)
{
	const char *reply = so->reply[i];
	const char *sp = strchr(reply, ' ');
	bool has_enh = reply[0] >= '2' && reply[0] <= '5' && reply[1] == '.';
	char enh[16];

	if (has_enh && sp != NULL) {
		snprintf(enh, sizeof(enh), "%.*s", (int)(sp - reply), reply);
		send_one_say(so->rcpts[i], send_one_verdict(so->code[i]),
			     so->code[i], enh, sp + 1);
	} else {
		send_one_say(so->rcpts[i], send_one_verdict(so->code[i]),
			     so->code[i], NULL, reply);
	}
}

/*
 * send_one_event - a recipient refused at RCPT keeps that reply; one
 * accepted gets the reply to the end of its transaction (a message the
 * relay takes in several has a DONE each); one never asked, the last
 * DONE's.  Every fate is printed once the message is over.
 */
static void send_one_event(void *ctx, const struct smtp_event *ev)
{
	struct send_one *so = ctx;

	if (ev->kind == SMTP_EV_RCPT && ev->rcpt < so->nrcpts) {
		send_one_keep(so, ev->rcpt, ev);
		so->settled[ev->rcpt] = ev->code / 100 != 2;
		return;
	}
	if (ev->kind != SMTP_EV_DONE)
		return;
	for (size_t i = 0; i < so->nrcpts; i++) {
		if (!so->settled[i] && (so->code[i] / 100 == 2 ||
					(so->code[i] == 0 && !ev->more))) {
			send_one_keep(so, i, ev);
			/* not sent is never "sent", whatever the code */
			if (!ev->sent && ev->code / 100 == 2)
				so->code[i] = 451;
			so->settled[i] = true;
		}
	}
	if (ev->more)
		return;
	so->done = true;
	so->all_sent = true;
	for (size_t i = 0; i < so->nrcpts; i++) {
		send_one_print(so, i);
		if (so->code[i] / 100 != 2)
			so->all_sent = false;
	}
	fflush(stdout);
}

/* send_one_trace - -v: one line of the conversation on stderr */
static void send_one_trace(void *ctx, char dir, const char *line, size_t len)
{
	(void)ctx;
	fprintf(stderr, "%c: %.*s\n", dir, (int)len, line);
}

/* send_one_read - a whole file, or standard input for "-" */
static int send_one_read(const char *path, struct buf *out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[65536];
	size_t n;

	if (f == NULL)
		return cli_error("%s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(out, chunk, n);
		if (out->len > SEND_ONE_MAX_BODY) {
			if (f != stdin)
				fclose(f);
			return cli_error("%s: over %d MB; send-one is for "
					 "testing", path,
					 SEND_ONE_MAX_BODY / 1024 / 1024);
		}
	}
	if (ferror(f)) {
		cli_error("%s: %s", path, strerror(errno));
		if (f != stdin)
			fclose(f);
		return 1;
	}
	if (f != stdin)
		fclose(f);
	return 0;
}

/* send_one_ascii - no byte of p outside ASCII */
static bool send_one_ascii(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)p[i] >= 0x80)
			return false;
	}
	return true;
}

/* send_one_check_addr - 0 if addr is a mailbox volley can send to */
static int send_one_check_addr(const char *what, const char *addr,
			       unsigned *flags)
{
	const char *reason;
	unsigned f = 0;

	if (!mailaddr_check(addr, strlen(addr), &f, &reason))
		return cli_usage_error("send-one", "%s '%s' is not an "
				       "address: %s", what, addr, reason);
	/* legal in a local part, but a template left unrendered: never
	 * sent literally (send-one has no recipient to make a token for) */
	if (strstr(addr, "{{") != NULL)
		return cli_usage_error("send-one", "%s '%s' holds '{{': "
				       "send-one renders no template", what,
				       addr);
	*flags |= f;
	return 0;
}

/*
 * send_one_build - the message: the headers a receiving system expects,
 * and the body as 7bit when it can be, quoted-printable otherwise
 */
static int send_one_build(struct buf *msg, const char *from,
			  const char *const *rcpts, size_t nrcpts,
			  const char *subject, const struct buf *body,
			  const char *helo)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed",
					    "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
					      "May", "Jun", "Jul", "Aug",
					      "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;
	struct buf to = BUF_INIT, crlf = BUF_INIT, value = BUF_INIT;
	const char *at = strrchr(from, '@');
	const char *body_data = body->data ? body->data : "";

	gmtime_r(&now, &tm);
	buf_printf(msg, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
		   days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (mime_header_mailbox(msg, "From", "", 0, from, strlen(from)) < 0)
		return cli_usage_error("send-one", "--from cannot be a header");
	for (size_t i = 0; i < nrcpts; i++)
		buf_printf(&to, "%s%s", i ? ", " : "", rcpts[i]);
	if (mime_header_raw(msg, "To", to.data, to.len) < 0 &&
	    mime_header_mailbox(msg, "To", "", 0, rcpts[0],
				strlen(rcpts[0])) < 0) {
		buf_free(&to);
		return cli_usage_error("send-one", "--to cannot be a header");
	}
	buf_free(&to);
	if (mime_header_text(msg, "Subject", subject, strlen(subject)) < 0)
		return cli_usage_error("send-one", "--subject holds a line "
				       "break or invalid UTF-8");
	buf_printf(&value, "<send-one.%lld.%ld@%s>", (long long)now,
		   (long)getpid(), at != NULL && at[1] != '\0' ? at + 1 : helo);
	mime_header_raw(msg, "Message-ID", value.data, value.len);
	buf_free(&value);
	buf_append_str(msg, "MIME-Version: 1.0\r\n"
			    "Content-Type: text/plain; charset=utf-8\r\n");
	if (!utf8_valid(body_data, body->len))
		return cli_error("the body is not valid UTF-8");
	mime_crlf(&crlf, body_data, body->len);
	if (crlf.len > 0 && mime_is_7bit_crlf(crlf.data, crlf.len)) {
		buf_append_str(msg, "Content-Transfer-Encoding: 7bit\r\n\r\n");
		buf_append(msg, crlf.data, crlf.len);
	} else {
		buf_append_str(msg, "Content-Transfer-Encoding: "
				    "quoted-printable\r\n\r\n");
		mime_qp_encode(msg, body_data, body->len);
	}
	if (msg->len < 2 || msg->data[msg->len - 1] != '\n')
		buf_append_str(msg, "\r\n");
	buf_free(&crlf);
	return 0;
}

/* send_one_save - the exact message into path */
static int send_one_save(const char *path, const struct buf *msg)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(msg->data, 1, msg->len, f) != msg->len) {
		if (f != NULL)
			fclose(f);
		return cli_error("%s: %s", path, strerror(errno));
	}
	if (fclose(f) != 0)
		return cli_error("%s: %s", path, strerror(errno));
	return 0;
}

int cmd_send_one(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "from", required_argument, NULL, 'f' },
		{ "subject", required_argument, NULL, 's' },
		{ "body-file", required_argument, NULL, 'b' },
		{ "save", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "eml", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *rcpts[SEND_ONE_MAX_RCPTS];
	static struct send_one so;
	const char *from = NULL, *subject = "volley send-one test";
	const char *body_file = NULL, *save = NULL, *eml = NULL;
	bool subject_set = false;
	struct buf body = BUF_INIT, msg = BUF_INIT, from_buf = BUF_INIT;
	struct smtp_conn_source source = {
		.next = send_one_next, .event = send_one_event, .ctx = &so,
	};
	struct smtp_conn_result result;
	const char *hint;
	struct relay relay;
	struct dkim_keys *keys = NULL;
	const char *error;
	unsigned flags = 0;
	size_t nrcpts = 0;
	int verbose = 0;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (nrcpts == SEND_ONE_MAX_RCPTS)
				return cli_usage_error("send-one", "at most %d "
						       "recipients",
						       SEND_ONE_MAX_RCPTS);
			rcpts[nrcpts++] = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 's':
			subject = optarg;
			subject_set = true;
			break;
		case 'e':
			eml = optarg;
			break;
		case 'b':
			body_file = optarg;
			break;
		case 'S':
			save = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			return cli_usage_error("send-one", "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error("send-one", "unexpected argument '%s'",
				       argv[optind]);
	if (nrcpts == 0)
		return cli_usage_error("send-one", "send-one needs --to ADDR");
	if (eml != NULL && (body_file != NULL || subject_set || save != NULL))
		return cli_usage_error("send-one", "--eml sends the file as it "
				       "is: no --subject, --body-file or --save");
	for (size_t i = 0; i < nrcpts; i++) {
		if (send_one_check_addr("--to", rcpts[i], &flags) != 0)
			return EXIT_USAGE;
	}
	if (cli_config(cli) < 0)
		return 1;
	if (relay_open(&cli->cfg, &relay, &error) < 0)
		return cli_error("%s", error);
	if (relay.warning[0] != '\0')
		fprintf(stderr, "volley: warning: %s\n", relay.warning);

	if (from == NULL) {
		const char *user = cli->cfg.smtp.username;
		unsigned f = 0;
		const char *reason;

		if (user != NULL && mailaddr_check(user, strlen(user), &f,
						   &reason))
			buf_append_str(&from_buf, user);
		else
			buf_printf(&from_buf, "volley@%s", relay.helo);
		from = buf_cstr(&from_buf);
	}
	if (send_one_check_addr("--from", from, &flags) != 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (eml != NULL) {
		const char *end;

		if (send_one_read(eml, &body) != 0)
			goto out;
		if (body.len == 0) {
			cli_error("%s: the file is empty", eml);
			goto out;
		}
		/* CRLF now, so SIZE= counts what goes on the wire */
		mime_crlf(&msg, body.data, body.len);
		/* UTF-8 in the headers needs SMTPUTF8 (RFC 6532) */
		end = memmem(msg.data, msg.len, "\r\n\r\n", 4);
		if (!send_one_ascii(msg.data, end != NULL ?
				    (size_t)(end - msg.data) : msg.len))
			flags |= MAILADDR_SMTPUTF8;
	} else {
		if (body_file != NULL) {
			if (send_one_read(body_file, &body) != 0)
				goto out;
		} else {
			buf_append_str(&body, "This is a test message sent with "
					      "volley send-one.\r\n");
		}
		c = send_one_build(&msg, from, rcpts, nrcpts, subject, &body,
				   relay.helo);
		if (c != 0) {
			ret = c;
			goto out;
		}
	}
	/* signed by the same rules as `volley send` */
	if (cli_dkim_keys(cli, &keys) < 0)
		goto out;
	if (dkim_keys_count(keys) > 0) {
		struct dkim_signer *signer;
		const char *why;
		size_t start;
		int n;

		if (dkim_signer_new(keys, &signer, &why) < 0) {
			cli_error("%s", why);
			goto out;
		}
		n = dkim_sign_buf(signer, &msg, 0, time(NULL), &start, &why);
		dkim_signer_free(&signer);
		if (n < 0) {
			cli_error("%s", why);
			goto out;
		}
		if (n > 0 && !send_one_ascii(msg.data, msg.len))
			fprintf(stderr, "volley: notice: the signed message "
				"has 8-bit bytes: a relay that converts it "
				"to 7 bits breaks the signature\n");
	}
	if (save != NULL && send_one_save(save, &msg) != 0)
		goto out;

	so.rcpts = rcpts;
	so.nrcpts = nrcpts;
	so.m = (struct smtp_message){
		.from = from, .rcpts = rcpts, .nrcpts = nrcpts,
		.data = msg.data, .len = msg.len, .ctx = &so,
		.smtputf8 = (flags & MAILADDR_SMTPUTF8) != 0,
		.eightbit = !send_one_ascii(msg.data, msg.len),
	};
	if (verbose > 0) {
		source.trace = send_one_trace;
		relay.params.session.transcript = true;
		relay.params.session.trace_states = verbose > 1;
	}
	if (smtp_conn_run(&relay.params, &source, &result) < 0 && !so.done) {
		cli_error("%s:%s: %s", relay.params.transport.host,
			  relay.params.transport.port, result.error);
	} else if (!result.closed) {
		fprintf(stderr, "volley: the connection ended badly: %s\n",
			result.error);
	}
	hint = relay_stop_hint(&cli->cfg, result.closing_code);
	if (hint != NULL)
		cli_error("%s", hint);
	if (!so.done)
		goto out;
	ret = so.done && so.all_sent ? 0 : 1;
out:
	relay_close(&relay);
	dkim_keys_free(&keys);
	buf_free(&body);
	buf_free(&msg);
	buf_free(&from_buf);
	return ret;
}
