/*
 * message - a campaign's message template, and one finished RFC 5322
 * message per recipient (see message.h).
 *
 * Boundaries are "=_volley_<job>_<level>".  They cannot occur in a
 * quoted-printable part (which encodes '=' as =3D) or a base64 part
 * (which has no '-' and no '_'), so the one place a collision could hide
 * is a 7bit part: any part that holds "=_" goes quoted-printable instead.
 */
#include "message.h"

#include <libconfig.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errmsg.h"
#include "escape.h"
#include "mailaddr.h"
#include "mime_enc.h"
#include "oomguard.h"
#include "xalloc.h"

struct message_header {
	char *name;
	struct tmpl *value;
};

struct message_attachment {
	char *name;
	bool is_inline;
	struct buf part;	/* its MIME headers, blank line and base64 */
};

struct message_recipient_file {
	struct tmpl *name;
	int line;			/* in message.cfg */
};

/* A template made from a message.cfg value, and where that value is. */
struct message_cfg_value {
	const struct tmpl *t;
	int line;		/* the setting's, in message.cfg */
	char *setting;		/* its name: "subject", "X-Campaign" */
};

struct message_tmpl {
	struct tmpl *subject;
	struct tmpl *from;
	struct tmpl *reply_to;		/* or NULL */
	struct tmpl *list_unsubscribe;	/* or NULL */
	struct tmpl *list_unsubscribe_mailto;	/* or NULL */
	struct tmpl *to;		/* To, or NULL: the bare address */
	struct tmpl *feedback_id;	/* or NULL */
	char *return_path;		/* the envelope sender, or NULL */
	/* attachments whose names use variables: one file per recipient,
	 * read through message_job.attach */
	struct message_recipient_file *rfiles;
	size_t nrfiles;
	struct message_header *headers;
	size_t nheaders;
	bool header_dot;		/* a header's name starts with '.' */
	struct tmpl *text;		/* body.txt, or NULL */
	struct tmpl *html;		/* body.html, or NULL */
	struct message_attachment *att;
	size_t natt;
	size_t ninline;
	/* message.cfg and its values, to place names in it */
	char *cfg;
	struct message_cfg_value *values;
	size_t nvalues;
	/*
	 * From written once, at load, when its template is constant
	 * (tmpl_constant) and makes a valid header: the header's bytes, and
	 * the rendered value (Message-ID takes its domain from it).  Empty:
	 * From is rendered for every message.
	 */
	struct buf from_header;
	struct buf from_value;
};

/* Headers volley writes itself, which message.cfg may not override. */
static const char *const message_own_headers[] = {
	"Date", "Message-ID", "From", "To", "Cc", "Bcc", "Subject",
	"Reply-To", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "List-Unsubscribe",
	"List-Unsubscribe-Post", "Return-Path",
};

static const struct {
	const char *ext;
	const char *type;
} message_types[] = {
	{ "pdf", "application/pdf" }, { "png", "image/png" },
	{ "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
	{ "gif", "image/gif" }, { "webp", "image/webp" },
	{ "svg", "image/svg+xml" }, { "txt", "text/plain" },
	{ "csv", "text/csv" }, { "ics", "text/calendar" },
	{ "html", "text/html" }, { "zip", "application/zip" },
	{ "json", "application/json" },
};

struct message_load {
	message_file_fn *files;
	void *ctx;
	const char **error_r;
	struct message_tmpl *mt;
};

/*
 * message_partial - {{> NAME}} loads NAME.mustache from the template.  A
 * partial that is not there is an error, not the spec's empty text: a
 * misspelt {{> fotter}} would drop an unsubscribe footer from every
 * message without a word.
 */
static int message_partial(void *ctx, const char *name, struct buf *src)
{
	struct message_load *ld = ctx;
	const void *data;
	size_t len;
	char file[300];

	if (strchr(name, '/') != NULL) {
		buf_append_str(src, "a partial's name cannot hold '/'");
		return -1;
	}
	snprintf(file, sizeof(file), "%s.mustache", name);
	if (ld->files(ld->ctx, file, &data, &len) != 1) {
		buf_printf(src, "the template has no file %s", file);
		return -1;
	}
	buf_append(src, data, len);
	return 1;
}

/*
 * message_compile - one template string; label names it in errors.  A
 * body's text after each line end in it is also encoded quoted-printable
 * now, for when the body goes that way (see message_qp_part).
 */
static int message_compile(struct message_load *ld, const char *label,
			   const char *src, size_t len,
			   enum tmpl_escape escape, bool body,
			   struct tmpl **t_r)
{
	struct tmpl_params p = {
		.file = label, .escape = escape,
		.partial = message_partial, .partial_ctx = ld,
		.crlf = true, .partial_ext = ".mustache",
	};
	struct tmpl_error terr;

	if (tmpl_compile(src, len, &p, t_r, &terr) < 0) {
		errmsg_set(ld->error_r, "%s", terr.message);
		return -1;
	}
	if (body)
		tmpl_set_encoder(*t_r, mime_qp_encode_from);
	return 0;
}

/* message_cfg_name_byte - may c be part of a libconfig setting's name? */
static bool message_cfg_name_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*';
}

/* A place in message.cfg's text, read on byte by byte. */
struct message_cfg_pos {
	const char *p;
	unsigned line;
	const char *bol;	/* where the line begins */
};

static void message_cfg_step(struct message_cfg_pos *at)
{
	if (*at->p == '\n') {
		at->line++;
		at->bol = at->p + 1;
	}
	at->p++;
}

/* message_cfg_skip - past spaces, line breaks and comments */
static void message_cfg_skip(struct message_cfg_pos *at)
{
	for (;;) {
		const char *p = at->p;

		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			message_cfg_step(at);
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*at->p != '\0' && *at->p != '\n')
				at->p++;
		} else if (p[0] == '/' && p[1] == '*') {
			at->p += 2;
			while (*at->p != '\0' &&
			       !(at->p[0] == '*' && at->p[1] == '/'))
				message_cfg_step(at);
			if (*at->p != '\0')
				at->p += 2;
		} else {
			return;
		}
	}
}

/*
 * message_cfg_escape - how many bytes of the literal at p make one byte
 * of the value, as libconfig 1.5 reads escapes: \\ \" \f \n \r \t and
 * \xHH; any other backslash is itself
 */
static size_t message_cfg_escape(const char *p)
{
	if (p[0] != '\\')
		return 1;
	if (p[1] != '\0' && strchr("\\\"fnrt", p[1]) != NULL)
		return 2;
	if (p[1] == 'x' && isxdigit((unsigned char)p[2]) &&
	    isxdigit((unsigned char)p[3]))
		return 4;
	return 1;
}

/*
 * message_cfg_where - where byte (vline, vcol) of the string value of
 * setting name, on line line of message.cfg, is in the file.  The value
 * is read from its literal after "name =", escapes and all, and "a" "b"
 * on to the next literal, as libconfig joins them; (vline, vcol) just
 * past the value is the closing quote.  false if the literal is not
 * found as expected (a best effort: libconfig gives only the line).
 */
static bool message_cfg_where(const char *cfg, int line, const char *name,
			      unsigned vline, unsigned vcol, unsigned *line_r,
			      unsigned *col_r)
{
	struct message_cfg_pos at = { cfg, 1, cfg };
	size_t nlen = strlen(name);
	unsigned vl = 1, vc = 1;
	bool found = false;

	while (*at.p != '\0' && at.line < (unsigned)line)
		message_cfg_step(&at);
	/* the name on its line, not inside an earlier string */
	while (*at.p != '\0' && *at.p != '\n' && !found) {
		if (*at.p == '"') {
			at.p++;
			while (*at.p != '\0' && *at.p != '"') {
				for (size_t n = message_cfg_escape(at.p);
				     n > 0; n--)
					message_cfg_step(&at);
			}
			if (*at.p == '"')
				at.p++;
			continue;
		}
		if (strncmp(at.p, name, nlen) == 0 &&
		    (at.p == at.bol || !message_cfg_name_byte(at.p[-1])) &&
		    !message_cfg_name_byte(at.p[nlen])) {
			at.p += nlen;
			message_cfg_skip(&at);
			found = *at.p == '=' || *at.p == ':';
			continue;
		}
		at.p++;
	}
	if (!found)
		return false;
	at.p++;
	for (message_cfg_skip(&at); *at.p == '"'; message_cfg_skip(&at)) {
		at.p++;
		while (*at.p != '\0' && *at.p != '"') {
			size_t n = message_cfg_escape(at.p);
			char b = n == 2 && at.p[1] == 'n' ? '\n' : at.p[0];

			if (n == 4)	/* \x0a is a line break too */
				b = (char)strtol((char[]){ at.p[2], at.p[3],
							   '\0' }, NULL, 16);

			if (vl == vline && vc == vcol)
				goto here;
			if (b == '\n') {
				vl++;
				vc = 1;
			} else {
				vc++;
			}
			while (n-- > 0 && *at.p != '\0')
				message_cfg_step(&at);
		}
		if (*at.p != '"')
			return false;
		if (vl == vline && vc == vcol) {
			/* past the value: its last literal's closing quote */
			const char *q = at.p + 1;
			struct message_cfg_pos next = at;

			next.p = q;
			message_cfg_skip(&next);
			if (*next.p != '"')
				goto here;
		}
		at.p++;
	}
	return false;

here:
	*line_r = at.line;
	*col_r = (unsigned)(at.p - at.bol) + 1;
	return true;
}

/*
 * message_compile_value - a template in a message.cfg setting s: its
 * errors, and later its names, are placed in message.cfg itself
 * ("message.cfg:5:17: subject: unclosed tag").
 */
static int message_compile_value(struct message_load *ld,
				 const config_setting_t *s, const char *v,
				 enum tmpl_escape escape, struct tmpl **t_r)
{
	const char *name = config_setting_name(s);
	int line = config_setting_source_line(s);
	struct tmpl_params p = {
		.file = name, .escape = escape,
		.partial = message_partial, .partial_ctx = ld,
		.crlf = true, .partial_ext = ".mustache",
	};
	struct message_tmpl *mt = ld->mt;
	struct message_cfg_value *mv;
	struct tmpl_error terr;
	unsigned fl, fc;

	if (tmpl_compile(v, strlen(v), &p, t_r, &terr) < 0) {
		if (terr.in_partial)
			errmsg_set(ld->error_r, "message.cfg:%d: %s: %s",
				   line, name, terr.message);
		else if (message_cfg_where(mt->cfg, line, name, terr.line,
					   terr.column, &fl, &fc))
			errmsg_set(ld->error_r, "message.cfg:%u:%u: %s: %s",
				   fl, fc, name, terr.message + terr.reason);
		else
			errmsg_set(ld->error_r, "message.cfg:%d: %s", line,
				   terr.message);
		return -1;
	}
	mt->values = xrealloc(mt->values,
			      (mt->nvalues + 1) * sizeof(*mt->values));
	mv = &mt->values[mt->nvalues++];
	mv->t = *t_r;
	mv->line = line;
	mv->setting = xstrdup(name);
	return 0;
}

/* message_content_type - a MIME type from a file name's extension */
static const char *message_content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot != NULL) {
		for (size_t i = 0;
		     i < sizeof(message_types) / sizeof(message_types[0]); i++) {
			if (strcasecmp(dot + 1, message_types[i].ext) == 0)
				return message_types[i].type;
		}
	}
	return "application/octet-stream";
}

/*
 * message_file_name_ok - a name safe to put in quotes in a MIME header
 * and in a cid: URL: printable ASCII without quotes, backslashes, spaces
 * or folders.
 */
static bool message_file_name_ok(const char *name)
{
	if (*name == '\0' || *name == '.')
		return false;
	for (const char *p = name; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\' ||
		    *p == '/' || *p == '<' || *p == '>')
			return false;
	}
	return true;
}

/*
 * message_load_attachment - read a file once and keep its whole MIME
 * part, base64 and all, for every message to copy.
 */
static int message_load_attachment(struct message_load *ld,
				   struct message_tmpl *mt, const char *name,
				   bool is_inline, int line)
{
	struct message_attachment *a;
	const void *data;
	size_t len;

	if (!message_file_name_ok(name)) {
		struct buf shown = BUF_INIT;

		escape_text(&shown, name, strlen(name), 300);
		errmsg_set(ld->error_r, "message.cfg:%d: '%s' is not a usable "
			   "file name (use printable ASCII without spaces, "
			   "quotes or folders)", line, buf_cstr(&shown));
		buf_free(&shown);
		return -1;
	}
	if (ld->files(ld->ctx, name, &data, &len) != 1) {
		errmsg_set(ld->error_r, "message.cfg:%d: no file '%s' in the "
			   "template folder", line, name);
		return -1;
	}
	mt->att = xrealloc(mt->att, (mt->natt + 1) * sizeof(*mt->att));
	a = &mt->att[mt->natt++];
	memset(a, 0, sizeof(*a));
	a->name = xstrdup(name);
	a->is_inline = is_inline;
	buf_printf(&a->part, "Content-Type: %s; name=\"%s\"\r\n",
		   message_content_type(name), name);
	buf_printf(&a->part, "Content-Disposition: %s; filename=\"%s\"\r\n",
		   is_inline ? "inline" : "attachment", name);
	if (is_inline)
		buf_printf(&a->part, "Content-ID: <%s>\r\n", name);
	buf_append_str(&a->part, "Content-Transfer-Encoding: base64\r\n\r\n");
	mime_base64_encode(&a->part, data, len);
	if (is_inline)
		mt->ninline++;
	return 0;
}

/*
 * message_load_recipient_file - an attachment named with variables
 * ("invoices/{{invoice_id}}.pdf"): a path under the campaign's files
 * folder, rendered and read for each recipient.
 */
static int message_load_recipient_file(struct message_load *ld,
				       struct message_tmpl *mt,
				       const char *name, int line)
{
	struct message_recipient_file *rf;
	char label[64];
	struct message_cfg_value *mv;

	mt->rfiles = xrealloc(mt->rfiles,
			      (mt->nrfiles + 1) * sizeof(*mt->rfiles));
	rf = &mt->rfiles[mt->nrfiles++];
	rf->line = line;
	rf->name = NULL;
	snprintf(label, sizeof(label), "message.cfg:%d: attachments", line);
	if (message_compile(ld, label, name, strlen(name), TMPL_ESCAPE_NONE,
			    false,
			    &rf->name) < 0)
		return -1;
	/* its names are the recipients' to have, as any value's */
	mt->values = xrealloc(mt->values,
			      (mt->nvalues + 1) * sizeof(*mt->values));
	mv = &mt->values[mt->nvalues++];
	mv->t = rf->name;
	mv->line = line;
	mv->setting = xstrdup("attachments");
	return 0;
}

/* message_load_list - attachments = [ ... ] or inline = [ ... ] */
static int message_load_list(struct message_load *ld, struct message_tmpl *mt,
			     const config_setting_t *list, bool is_inline)
{
	int n = config_setting_length(list);

	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, i);
		const char *name = config_setting_get_string(e);

		if (name == NULL &&
		    config_setting_type(e) == CONFIG_TYPE_STRING)
			oomguard_fail(); /* libconfig could not copy it */
		if (name == NULL) {
			errmsg_set(ld->error_r,
				   "message.cfg:%d: '%s' must list "
				   "file names as strings",
				   config_setting_source_line(list),
				   config_setting_name(list));
			return -1;
		}
		if (!is_inline && strstr(name, "{{") != NULL) {
			if (message_load_recipient_file(
				    ld, mt, name,
				    config_setting_source_line(e)) < 0)
				return -1;
			continue;
		}
		if (message_load_attachment(ld, mt, name, is_inline,
					    config_setting_source_line(e)) < 0)
			return -1;
	}
	return 0;
}

const char *message_envelope_problem(const char *addr)
{
	const char *verp = strstr(addr, MESSAGE_VERP);
	const char *at = strrchr(addr, '@');
	struct buf probe = BUF_INIT;
	const char *why = NULL;

	if (verp != NULL && strstr(verp + 1, MESSAGE_VERP) != NULL)
		return "{{verp}} may stand in it once";
	if (verp != NULL && (at == NULL || verp > at))
		return "{{verp}} belongs in the local part, before the '@'";
	/* the longest token, so a local part too long with it shows */
	message_envelope_expand(addr, "bbbbbbbbbbbbb-bbbbbbbbbbbbb-bbbbbbbbbb",
				&probe);
	if (strstr(probe.data, "{{") != NULL || strstr(probe.data, "}}"))
		why = "only {{verp}} may stand in an envelope address (it is "
		      "the same for every recipient otherwise)";
	else
		(void)mailaddr_check(probe.data, probe.len, NULL, &why);
	buf_free(&probe);
	return why;
}

void message_envelope_expand(const char *addr, const char *token,
			     struct buf *out)
{
	const char *verp = strstr(addr, MESSAGE_VERP);

	if (verp == NULL) {
		buf_append_str(out, addr);
		return;
	}
	buf_append(out, addr, (size_t)(verp - addr));
	buf_append_str(out, token);
	buf_append_str(out, verp + strlen(MESSAGE_VERP));
}

const char *message_tmpl_return_path(const struct message_tmpl *mt)
{
	return mt->return_path;
}

size_t message_tmpl_recipient_files(const struct message_tmpl *mt)
{
	return mt->nrfiles;
}

/*
 * message_header_name_problem - why name cannot be a header of ours, or
 * NULL: it must be an RFC 5322 field name volley does not write itself.
 */
static const char *message_header_name_problem(const char *name)
{
	if (*name == '\0')
		return "is empty";
	for (const char *p = name; *p; p++) {
		if (*p < 33 || *p > 126 || *p == ':')
			return "is not a valid header name";
	}
	for (size_t i = 0; i < sizeof(message_own_headers) /
			       sizeof(message_own_headers[0]); i++) {
		if (strcasecmp(name, message_own_headers[i]) == 0)
			return "is written by volley itself";
	}
	return NULL;
}

/* message_load_cfg - the settings of message.cfg */
static int message_load_cfg(struct message_load *ld, struct message_tmpl *mt,
			    config_t *lc)
{
	config_setting_t *root = config_root_setting(lc);
	int n = config_setting_length(root);

	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(root, i);
		const char *name = config_setting_name(s);
		int line = config_setting_source_line(s);
		int type = config_setting_type(s);
		struct tmpl **slot = NULL;

		/* NULL where libconfig could not copy a name or a string */
		if (name == NULL || (type == CONFIG_TYPE_STRING &&
				     config_setting_get_string(s) == NULL))
			oomguard_fail();

		if (strcmp(name, "subject") == 0)
			slot = &mt->subject;
		else if (strcmp(name, "from") == 0)
			slot = &mt->from;
		else if (strcmp(name, "reply_to") == 0)
			slot = &mt->reply_to;
		else if (strcmp(name, "list_unsubscribe") == 0)
			slot = &mt->list_unsubscribe;
		else if (strcmp(name, "list_unsubscribe_mailto") == 0)
			slot = &mt->list_unsubscribe_mailto;
		else if (strcmp(name, "to") == 0)
			slot = &mt->to;
		else if (strcmp(name, "feedback_id") == 0)
			slot = &mt->feedback_id;

		if (slot != NULL) {
			const char *v = config_setting_get_string(s);

			if (type != CONFIG_TYPE_STRING) {
				errmsg_set(ld->error_r,
					   "message.cfg:%d: setting "
					   "'%s' must be a string", line, name);
				return -1;
			}
			/* RFC 2369's are URLs: values in them encoded */
			if (message_compile_value(ld, s, v,
				slot == &mt->list_unsubscribe ||
				slot == &mt->list_unsubscribe_mailto ?
				TMPL_ESCAPE_URL : TMPL_ESCAPE_NONE, slot) < 0)
				return -1;
		} else if (strcmp(name, "headers") == 0) {
			int nh;

			if (type != CONFIG_TYPE_GROUP) {
				errmsg_set(ld->error_r,
					   "message.cfg:%d: 'headers' "
					   "must be a group { Name = \"value\"; "
					   "}", line);
				return -1;
			}
			nh = config_setting_length(s);
			mt->headers = xcalloc((size_t)nh + 1,
					      sizeof(*mt->headers));
			for (int k = 0; k < nh; k++) {
				config_setting_t *h =
					config_setting_get_elem(s, k);
				const char *hn = config_setting_name(h);
				const char *hv = config_setting_get_string(h);
				const char *why;
				struct message_header *mh;

				if (hn == NULL || (hv == NULL &&
				    config_setting_type(h) ==
				    CONFIG_TYPE_STRING))
					oomguard_fail();
				why = message_header_name_problem(hn);

				line = config_setting_source_line(h);
				if (why != NULL || hv == NULL) {
					errmsg_set(ld->error_r,
						   "message.cfg:%d: "
						   "header '%s' %s", line, hn,
						   why ? why :
						   "must be a string");
					return -1;
				}
				mh = &mt->headers[mt->nheaders++];
				mh->name = xstrdup(hn);
				if (hn[0] == '.')
					mt->header_dot = true;
				if (message_compile_value(ld, h, hv,
							  TMPL_ESCAPE_NONE,
							  &mh->value) < 0)
					return -1;
			}
		} else if (strcmp(name, "return_path") == 0) {
			const char *v = config_setting_get_string(s);
			const char *why;

			if (type != CONFIG_TYPE_STRING) {
				errmsg_set(ld->error_r, "message.cfg:%d: "
					   "setting 'return_path' must be a "
					   "string", line);
				return -1;
			}
			why = message_envelope_problem(v);
			if (why != NULL) {
				errmsg_set(ld->error_r, "message.cfg:%d: "
					   "return_path: %s", line, why);
				return -1;
			}
			mt->return_path = xstrdup(v);
		} else if (strcmp(name, "attachments") == 0 ||
			   strcmp(name, "inline") == 0) {
			if (type != CONFIG_TYPE_ARRAY &&
			    type != CONFIG_TYPE_LIST) {
				errmsg_set(ld->error_r,
					   "message.cfg:%d: '%s' must "
					   "be a list of file names [ \"a.pdf\""
					   " ]", line, name);
				return -1;
			}
		} else {
			errmsg_set(ld->error_r,
				   "message.cfg:%d: unknown setting "
				   "'%s'", line, name);
			return -1;
		}
	}
	for (size_t i = 0; mt->feedback_id != NULL && i < mt->nheaders; i++)
		if (strcasecmp(mt->headers[i].name, "Feedback-ID") == 0) {
			errmsg_set(ld->error_r, "message.cfg: Feedback-ID is "
				   "set twice: by feedback_id and in "
				   "headers");
			return -1;
		}
	if (mt->subject == NULL || mt->from == NULL) {
		errmsg_set(ld->error_r, "message.cfg: '%s' is required",
			   mt->subject == NULL ? "subject" : "from");
		return -1;
	}
	return 0;
}

static bool message_no_value(const struct tmpl_data *d,
			     const struct tmpl_value *obj, const char *name,
			     size_t len, struct tmpl_value *out)
{
	(void)d, (void)obj, (void)name, (void)len, (void)out;
	return false;
}

static int message_split_mailbox(const char *v, size_t len,
				 struct buf *display, const char **addr_r,
				 size_t *addr_len_r, const char *what,
				 const char **error_r);

/*
 * message_cache_from - write From once if no message can change it (see
 * message_tmpl.from_header); if it would fail, it is left to fail for
 * each message, as it did, with the message's error
 */
static void message_cache_from(struct message_tmpl *mt)
{
	struct tmpl_data none = { .get = message_no_value,
				  .root = { .kind = TMPL_OBJECT } };
	struct buf display = BUF_INIT;
	const char *addr, *error;
	size_t addr_len;

	if (!tmpl_constant(mt->from) ||
	    tmpl_render(mt->from, &none, &mt->from_value) < 0 ||
	    message_split_mailbox(buf_cstr(&mt->from_value),
				  mt->from_value.len, &display, &addr,
				  &addr_len, "From", &error) < 0 ||
	    mime_header_mailbox(&mt->from_header, "From", buf_cstr(&display),
				display.len, addr, addr_len) < 0) {
		buf_free(&mt->from_header);
		buf_free(&mt->from_value);
	}
	buf_free(&display);
}

/* message_tmpl_read - message_tmpl_load's work, inside the guard */
static int message_tmpl_read(message_file_fn *files, void *ctx,
			     struct message_tmpl **mt_r, const char **error_r)
{
	struct message_tmpl *mt = xcalloc(1, sizeof(*mt));
	struct message_load ld = { files, ctx, error_r, mt };
	config_setting_t *list;
	const void *data;
	size_t len;
	config_t lc;
	int ret = -1;

	*mt_r = NULL;
	config_init(&lc);
	if (files(ctx, "message.cfg", &data, &len) != 1) {
		errmsg_set(error_r, "the template has no message.cfg");
		goto out;
	}
	mt->cfg = xstrndup(data, len);
	if (config_read_string(&lc, mt->cfg) != CONFIG_TRUE) {
		errmsg_set(error_r, "message.cfg:%d: %s",
			   config_error_line(&lc),
			   config_error_text(&lc));
		goto out;
	}
	if (message_load_cfg(&ld, mt, &lc) < 0)
		goto out;

	if (files(ctx, "body.txt", &data, &len) == 1 &&
	    message_compile(&ld, "body.txt", data, len, TMPL_ESCAPE_NONE,
			    true, &mt->text) < 0)
		goto out;
	if (files(ctx, "body.html", &data, &len) == 1 &&
	    message_compile(&ld, "body.html", data, len, TMPL_ESCAPE_HTML,
			    true, &mt->html) < 0)
		goto out;
	if (mt->text == NULL && mt->html == NULL) {
		errmsg_set(error_r, "the template has neither body.txt nor "
			   "body.html");
		goto out;
	}

	list = config_lookup(&lc, "inline");
	if (list != NULL) {
		if (mt->html == NULL && config_setting_length(list) > 0) {
			errmsg_set(error_r,
				   "message.cfg:%d: inline images need "
				   "body.html to show them",
				   config_setting_source_line(list));
			goto out;
		}
		if (message_load_list(&ld, mt, list, true) < 0)
			goto out;
	}
	list = config_lookup(&lc, "attachments");
	if (list != NULL && message_load_list(&ld, mt, list, false) < 0)
		goto out;
	message_cache_from(mt);
	*mt_r = mt;
	mt = NULL;
	ret = 0;
out:
	config_destroy(&lc);
	message_tmpl_free(&mt);
	return ret;
}

struct message_tmpl_guarded {
	message_file_fn *files;
	void *ctx;
	struct message_tmpl **mt_r;
	const char **error_r;
};

static int message_tmpl_read_guarded(void *ctx)
{
	struct message_tmpl_guarded *g = ctx;

	return message_tmpl_read(g->files, g->ctx, g->mt_r, g->error_r);
}

int message_tmpl_load(message_file_fn *files, void *ctx,
		      struct message_tmpl **mt_r, const char **error_r)
{
	struct message_tmpl_guarded g = { files, ctx, mt_r, error_r };
	enum oomguard_end end;
	int ret = -1;

	*mt_r = NULL;
	/* libconfig does not check its allocations: see oomguard.h */
	end = oomguard_run(message_tmpl_read_guarded, &g, &ret);
	if (end != OOMGUARD_OK) {
		/* what was made is left, not freed */
		*mt_r = NULL;
		errmsg_set(error_r, "message.cfg: %s", oomguard_message(end));
		return -1;
	}
	return ret;
}

void message_tmpl_free(struct message_tmpl **mtp)
{
	struct message_tmpl *mt = *mtp;

	if (mt == NULL)
		return;
	tmpl_free(&mt->subject);
	tmpl_free(&mt->from);
	tmpl_free(&mt->reply_to);
	tmpl_free(&mt->list_unsubscribe);
	tmpl_free(&mt->list_unsubscribe_mailto);
	tmpl_free(&mt->to);
	tmpl_free(&mt->feedback_id);
	free(mt->return_path);
	for (size_t i = 0; i < mt->nrfiles; i++)
		tmpl_free(&mt->rfiles[i].name);
	free(mt->rfiles);
	for (size_t i = 0; i < mt->nheaders; i++) {
		free(mt->headers[i].name);
		tmpl_free(&mt->headers[i].value);
	}
	free(mt->headers);
	tmpl_free(&mt->text);
	tmpl_free(&mt->html);
	for (size_t i = 0; i < mt->natt; i++) {
		free(mt->att[i].name);
		buf_free(&mt->att[i].part);
	}
	free(mt->att);
	for (size_t i = 0; i < mt->nvalues; i++)
		free(mt->values[i].setting);
	free(mt->values);
	free(mt->cfg);
	buf_free(&mt->from_header);
	buf_free(&mt->from_value);
	free(mt);
	*mtp = NULL;
}

void message_bufs_free(struct message_bufs *b)
{
	buf_free(&b->text);
	buf_free(&b->value);
	buf_free(&b->tmp);
}

/* --- names every recipient needs --------------------------------------- */

struct message_names {
	const struct message_tmpl *mt;
	message_name_fn *fn;
	tmpl_names_fn *names_fn;
	void *ctx;
	const char *file;
	const struct message_cfg_value *value;	/* a message.cfg value's */
};

/*
 * message_place - line and column in the template's file: a message.cfg
 * value's are in the value, which is somewhere in message.cfg
 */
static void message_place(const struct message_names *mn, unsigned *line,
			  unsigned *column)
{
	const struct message_cfg_value *v = mn->value;
	unsigned fl, fc;

	if (v == NULL)
		return;
	if (message_cfg_where(mn->mt->cfg, v->line, v->setting, *line,
			      *column, &fl, &fc)) {
		*line = fl;
		*column = fc;
	} else {
		*line = (unsigned)v->line;
		*column = 1;
	}
}

static void message_name(void *ctx, const char *name, size_t len,
			 unsigned line, unsigned column)
{
	struct message_names *mn = ctx;

	message_place(mn, &line, &column);
	mn->fn(mn->ctx, mn->file, name, len, line, column);
}

static void message_any_name(void *ctx, const struct tmpl_name *n)
{
	struct message_names *mn = ctx;
	struct tmpl_name placed = *n;

	if (!n->in_partial) {
		placed.file = mn->file;
		message_place(mn, &placed.line, &placed.column);
	}
	mn->names_fn(mn->ctx, &placed);
}

/* message_each_tmpl - walk every template of mt with mn set for it */
static void message_each_tmpl(const struct message_tmpl *mt,
			      struct message_names *mn,
			      void (*walk)(const struct tmpl *t,
					   struct message_names *mn))
{
	mn->file = "message.cfg";
	for (size_t i = 0; i < mt->nvalues; i++) {
		mn->value = &mt->values[i];
		walk(mt->values[i].t, mn);
	}
	mn->value = NULL;
	mn->file = "body.txt";
	if (mt->text)
		walk(mt->text, mn);
	mn->file = "body.html";
	if (mt->html)
		walk(mt->html, mn);
}

static void message_walk_top(const struct tmpl *t, struct message_names *mn)
{
	tmpl_top_names(t, message_name, mn);
}

static void message_walk_all(const struct tmpl *t, struct message_names *mn)
{
	tmpl_names(t, message_any_name, mn);
}

void message_tmpl_top_names(const struct message_tmpl *mt,
			    message_name_fn *fn, void *ctx)
{
	struct message_names mn = { .mt = mt, .fn = fn, .ctx = ctx };

	message_each_tmpl(mt, &mn, message_walk_top);
}

void message_tmpl_names(const struct message_tmpl *mt, tmpl_names_fn *fn,
			void *ctx)
{
	struct message_names mn = { .mt = mt, .names_fn = fn, .ctx = ctx };

	message_each_tmpl(mt, &mn, message_walk_all);
}

/* --- rendering --------------------------------------------------------- */

/* message_value - render a header template into bufs->value */
static int message_value(const struct tmpl *t, const struct tmpl_data *data,
			 struct message_bufs *bufs, const char *what,
			 const char **error_r)
{
	buf_reset(&bufs->value);
	if (tmpl_render(t, data, &bufs->value) < 0) {
		errmsg_set(error_r, "%s: sections nest too deep", what);
		return -1;
	}
	return 0;
}

/*
 * message_split_mailbox - "Name <addr>", "\"Name\" <addr>" or "addr"
 * into the display name and the address, checking the address.
 */
static int message_split_mailbox(const char *v, size_t len,
				 struct buf *display, const char **addr_r,
				 size_t *addr_len_r, const char *what,
				 const char **error_r)
{
	const char *lt, *why;
	size_t dlen;

	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	buf_reset(display);
	lt = len > 0 && v[len - 1] == '>' ? memrchr(v, '<', len) : NULL;
	if (lt == NULL) {
		*addr_r = v;
		*addr_len_r = len;
	} else {
		*addr_r = lt + 1;
		*addr_len_r = (size_t)(v + len - 1 - lt - 1);
		dlen = (size_t)(lt - v);
		while (dlen > 0 && (v[dlen - 1] == ' ' || v[dlen - 1] == '\t'))
			dlen--;
		if (dlen >= 2 && v[0] == '"' && v[dlen - 1] == '"') {
			/* a quoted display name: unquote \" and \\ */
			for (size_t i = 1; i + 1 < dlen; i++) {
				if (v[i] == '\\' && i + 2 < dlen)
					i++;
				buf_putc(display, v[i]);
			}
		} else {
			buf_append(display, v, dlen);
		}
	}
	if (!mailaddr_check(*addr_r, *addr_len_r, NULL, &why)) {
		errmsg_set(error_r, "%s: '%.*s' is not an address: %s", what,
			   (int)(*addr_len_r > 200 ? 200 : *addr_len_r),
			   *addr_r, why);
		return -1;
	}
	return 0;
}

/* message_mailbox_header - From or Reply-To from its template */
static int message_mailbox_header(const struct tmpl *t, const char *name,
				  const struct tmpl_data *data,
				  struct message_bufs *bufs, struct buf *out,
				  const char **error_r)
{
	const char *addr;
	size_t addr_len;

	if (message_value(t, data, bufs, name, error_r) < 0 ||
	    message_split_mailbox(bufs->value.data, bufs->value.len,
				  &bufs->tmp, &addr, &addr_len, name,
				  error_r) < 0)
		return -1;
	if (mime_header_mailbox(out, name, bufs->tmp.data ? bufs->tmp.data :
				"", bufs->tmp.len, addr, addr_len) < 0) {
		errmsg_set(error_r,
			   "%s: a variable put a line break or invalid "
			   "UTF-8 into the header", name);
		return -1;
	}
	return 0;
}

/* message_date - RFC 5322 date-time, always in UTC, locale-free */
static void message_date(struct buf *out, struct message_bufs *bufs,
			 time_t t)
{
	static const char days[][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char months[][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
		"Oct", "Nov", "Dec",
	};
	struct tm tm;

	if (bufs->date[0] == '\0' || bufs->date_time != t) {
		gmtime_r(&t, &tm);
		snprintf(bufs->date, sizeof(bufs->date),
			 "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
			 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
			 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		bufs->date_time = t;
	}
	buf_append_str(out, bufs->date);
}

/* message_put_uint - v in decimal or hex, without printf's cost */
static void message_put_uint(struct buf *out, uint64_t v, unsigned base)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[24];
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = digits[v % base];
		v /= base;
	} while (v != 0);
	buf_append(out, tmp + n, sizeof(tmp) - n);
}

/*
 * message_url - append <url> for List-Unsubscribe: bytes outside printable
 * ASCII (a UTF-8 address in the URL, say) are percent-encoded, as RFC 3986
 * has it; anything that could end the bracket or the header is refused.
 */
static int message_url(struct buf *out, const char *prefix, const char *p,
		       size_t len, const char *scheme)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t slen = strlen(scheme);

	if (len <= slen || strncasecmp(p, scheme, slen) != 0)
		return -1;
	buf_putc(out, '<');
	buf_append_str(out, prefix);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '<' || c == '>' || c == '\r' || c == '\n' || c == 0)
			return -1;
		if (c <= ' ' || c > '~') {
			buf_putc(out, '%');
			buf_putc(out, hex[c >> 4]);
			buf_putc(out, hex[c & 15]);
		} else {
			buf_putc(out, (char)c);
		}
	}
	buf_putc(out, '>');
	return 0;
}

/* message_list_unsubscribe - RFC 2369 and RFC 8058 headers */
static int message_list_unsubscribe(const struct message_tmpl *mt,
				    const struct tmpl_data *data,
				    const struct message_job *job,
				    struct message_bufs *bufs,
				    struct buf *out, const char **error_r)
{
	bool post = mt->list_unsubscribe != NULL;

	buf_reset(&bufs->tmp);
	if (mt->list_unsubscribe == NULL && job->unsubscribe_url != NULL) {
		/* volley serve's link; RFC 8058 one-click is https only */
		post = job->unsubscribe_url_len > 8 &&
		       strncasecmp(job->unsubscribe_url, "https://", 8) == 0;
		if (message_url(&bufs->tmp, "", job->unsubscribe_url,
				job->unsubscribe_url_len, "http") < 0) {
			errmsg_set(error_r, "unsubscribe_url: not an http(s) "
				   "URL, or holds a bracket or line break");
			return -1;
		}
	} else if (mt->list_unsubscribe != NULL) {
		if (message_value(mt->list_unsubscribe, data, bufs,
				  "list_unsubscribe", error_r) < 0)
			return -1;
		if (message_url(&bufs->tmp, "", bufs->value.data,
				bufs->value.len, "https://") < 0) {
			errmsg_set(error_r, "list_unsubscribe: the rendered "
				   "value is not an https URL, or holds "
				   "a bracket or line break");
			return -1;
		}
	}
	if (mt->list_unsubscribe_mailto != NULL) {
		if (message_value(mt->list_unsubscribe_mailto, data, bufs,
				  "list_unsubscribe_mailto", error_r) < 0)
			return -1;
		if (bufs->tmp.len > 0)
			buf_append_lit(&bufs->tmp, ", ");
		/* "mailto:" is optional in message.cfg */
		if (message_url(&bufs->tmp,
				strncasecmp(buf_cstr(&bufs->value), "mailto:",
					    7) == 0 ? "" : "mailto:",
				bufs->value.data, bufs->value.len, "") < 0) {
			errmsg_set(error_r, "list_unsubscribe_mailto: the "
				   "rendered value holds a bracket or "
				   "line break");
			return -1;
		}
	}
	if (bufs->tmp.len == 0)
		return 0;
	if (mime_header_raw(out, "List-Unsubscribe", bufs->tmp.data,
			    bufs->tmp.len) < 0) {
		errmsg_set(error_r, "List-Unsubscribe: cannot be encoded");
		return -1;
	}
	if (post)
		buf_append_lit(out, "List-Unsubscribe-Post: "
			       "List-Unsubscribe=One-Click\r\n");
	return 0;
}

/* message_has_boundary_start - does p hold "=_"?  (memchr is fast.) */
static bool message_has_boundary_start(const char *p, size_t len)
{
	const char *end = p + len, *eq;

	while ((eq = memchr(p, '=', (size_t)(end - p))) != NULL) {
		if (eq + 1 < end && eq[1] == '_')
			return true;
		p = eq + 1;
	}
	return false;
}

/*
 * message_qp_part - a text part whose template text is not ASCII: it can
 * only go quoted-printable, so it is rendered encoded straight into out:
 * the template's text after each line end copied as it was encoded when
 * the template was loaded, the rest encoded through bufs->text
 * (tmpl_render_encoded).
 */
static int message_qp_part(struct buf *out, const char *type,
			   const struct tmpl *t, const struct tmpl_data *data,
			   struct message_bufs *bufs)
{
	buf_append_lit(out, "Content-Type: ");
	buf_append_str(out, type);
	buf_append_lit(out, "; charset=utf-8\r\n"
		       "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	return tmpl_render_encoded(t, data, &bufs->text, out, &bufs->notes);
}

/*
 * message_text_part - a text part's headers and body, rendered from t.
 *
 * The body is rendered straight into out under a "7bit" header, and
 * tmpl_render_mail() says whether that was right; it nearly always is for
 * ASCII mail, and then the body is never copied or scanned again.
 * Otherwise the rendering is taken back out and sent 7bit after line-end
 * repair, or quoted-printable.  (Rendering it again encoded, as
 * message_qp_part does, costs more than it saves for all but large
 * templates.)  A body that may have a line starting with '.' clears
 * bufs->stuffed.
 */
static int message_text_part(struct buf *out, const char *type,
			     const struct tmpl *t, const struct tmpl_data *data,
			     struct message_bufs *bufs)
{
	size_t head = out->len, body;
	const char *p;
	bool clean, dot, seven;

	if (tmpl_text_8bit(t))
		return message_qp_part(out, type, t, data, bufs);
	buf_append_lit(out, "Content-Type: ");
	buf_append_str(out, type);
	buf_append_lit(out, "; charset=utf-8\r\n"
		       "Content-Transfer-Encoding: 7bit\r\n\r\n");
	body = out->len;
	if (tmpl_render_mail_dot(t, data, out, &clean, &dot, &bufs->notes) < 0)
		return -1;
	if (dot)
		bufs->stuffed = false;
	if (!clean) {
		buf_reset(&bufs->text);
		buf_append(&bufs->text, out->data + body, out->len - body);
		buf_truncate(out, head);
		p = buf_cstr(&bufs->text);
		seven = mime_is_7bit(p, bufs->text.len) &&
			!message_has_boundary_start(p, bufs->text.len);
		buf_append_lit(out, "Content-Type: ");
		buf_append_str(out, type);
		buf_append_str(out, seven ? "; charset=utf-8\r\n"
			       "Content-Transfer-Encoding: 7bit\r\n\r\n" :
			       "; charset=utf-8\r\n"
			       "Content-Transfer-Encoding: quoted-printable"
			       "\r\n\r\n");
		if (!seven) {
			mime_qp_encode(out, p, bufs->text.len);
			return 0;
		}
		bufs->stuffed = false;
		body = out->len;
		mime_crlf(out, p, bufs->text.len);
	}
	if (out->len > body && out->data[out->len - 1] != '\n')
		buf_append_lit(out, "\r\n");
	return 0;
}

static void message_boundary(struct buf *out, const struct message_job *job,
			     int level)
{
	buf_append_lit(out, "=_volley_");
	message_put_uint(out, (uint64_t)job->job_id, 16);
	buf_putc(out, '_');
	buf_putc(out, (char)('0' + level));
}

/* message_multipart_open - the Content-Type of a multipart, then "--b" */
static void message_multipart_open(struct buf *out, const char *subtype,
				   const struct message_job *job, int level)
{
	buf_append_lit(out, "Content-Type: multipart/");
	buf_append_str(out, subtype);
	buf_append_lit(out, ";\r\n boundary=\"");
	message_boundary(out, job, level);
	buf_append_lit(out, "\"\r\n\r\n--");
	message_boundary(out, job, level);
	buf_append_lit(out, "\r\n");
}

/*
 * message_multipart_next - end a child part and start the next one (or
 * close the multipart when last).  Each child's body already ends in
 * CRLF; the CRLF before "--" belongs to the delimiter, so the child keeps
 * its final line break.
 */
static void message_multipart_next(struct buf *out,
				   const struct message_job *job, int level,
				   bool last)
{
	buf_append_lit(out, "\r\n--");
	message_boundary(out, job, level);
	buf_append_str(out, last ? "--\r\n" : "\r\n");
}

/* message_html_part - HTML, inside multipart/related with inline images */
static int message_html_part(const struct message_tmpl *mt,
			     const struct tmpl_data *data,
			     const struct message_job *job,
			     struct message_bufs *bufs, struct buf *out)
{
	if (mt->ninline == 0)
		return message_text_part(out, "text/html", mt->html, data,
					 bufs);
	message_multipart_open(out, "related", job, 2);
	if (message_text_part(out, "text/html", mt->html, data, bufs) < 0)
		return -1;
	for (size_t i = 0; i < mt->natt; i++) {
		if (!mt->att[i].is_inline)
			continue;
		message_multipart_next(out, job, 2, false);
		buf_append(out, mt->att[i].part.data, mt->att[i].part.len);
	}
	message_multipart_next(out, job, 2, true);
	return 0;
}

/* message_body_part - text, HTML or both as multipart/alternative */
static int message_body_part(const struct message_tmpl *mt,
			     const struct tmpl_data *data,
			     const struct message_job *job,
			     struct message_bufs *bufs, struct buf *out)
{
	if (mt->text != NULL && mt->html != NULL) {
		message_multipart_open(out, "alternative", job, 1);
		if (message_text_part(out, "text/plain", mt->text, data,
				      bufs) < 0)
			return -1;
		message_multipart_next(out, job, 1, false);
		if (message_html_part(mt, data, job, bufs, out) < 0)
			return -1;
		message_multipart_next(out, job, 1, true);
		return 0;
	}
	if (mt->text != NULL)
		return message_text_part(out, "text/plain", mt->text, data,
					 bufs);
	return message_html_part(mt, data, job, bufs, out);
}

/*
 * message_to_header - To: the recipient, with the display name message.cfg's
 * `to` gives; its address must be the recipient's (ignoring ASCII case),
 * or a typo in the template would send a message whose To names
 * someone else
 */
static int message_to_header(const struct message_tmpl *mt,
			     const struct tmpl_data *data,
			     const struct message_job *job,
			     struct message_bufs *bufs, struct buf *out,
			     const char **error_r)
{
	const char *addr;
	size_t addr_len;

	buf_reset(&bufs->tmp);
	if (mt->to != NULL &&
	    (message_value(mt->to, data, bufs, "to", error_r) < 0 ||
	     message_split_mailbox(bufs->value.data, bufs->value.len,
				   &bufs->tmp, &addr, &addr_len, "to",
				   error_r) < 0))
		return -1;
	if (mt->to != NULL && (addr_len != job->to_len ||
			       strncasecmp(addr, job->to, addr_len) != 0)) {
		errmsg_set(error_r, "to: renders the address '%.*s', not the "
			   "recipient's '%.*s'",
			   (int)(addr_len > 200 ? 200 : addr_len), addr,
			   (int)(job->to_len > 200 ? 200 : job->to_len),
			   job->to);
		return -1;
	}
	if (mime_header_mailbox(out, "To", bufs->tmp.data ? bufs->tmp.data :
				"", bufs->tmp.len, job->to, job->to_len) < 0) {
		errmsg_set(error_r, "to: a variable put a line break or "
			   "invalid UTF-8 into the header");
		return -1;
	}
	return 0;
}

/*
 * message_path_problem - why a rendered attachment path cannot be used,
 * or NULL: relative, no "." or ".." part, no empty part, no control
 * bytes (the files folder is also enforced when the file is opened)
 */
static const char *message_path_problem(const char *p, size_t len)
{
	const char *end = p + len, *part = p;

	if (len == 0)
		return "is empty";
	if (*p == '/')
		return "is absolute";
	for (const char *q = p; q <= end; q++) {
		if (q < end && ((unsigned char)*q < ' ' || *q == 0x7f))
			return "holds a control character";
		if (q < end && *q != '/')
			continue;
		if (q == part)
			return "has an empty folder name";
		if ((q - part == 1 && part[0] == '.') ||
		    (q - part == 2 && part[0] == '.' && part[1] == '.'))
			return "has a '.' or '..' part";
		part = q + 1;
	}
	return NULL;
}

/* message_recipient_file - one recipient's own attachment, its part */
static int message_recipient_file(const struct message_recipient_file *rf,
				  const struct tmpl_data *data,
				  const struct message_job *job,
				  struct message_bufs *bufs, struct buf *out,
				  const char **error_r)
{
	const char *path, *base, *why;
	const void *file;
	size_t len;

	if (message_value(rf->name, data, bufs, "attachments", error_r) < 0)
		return -1;
	path = buf_cstr(&bufs->value);
	why = message_path_problem(path, bufs->value.len);
	if (why == NULL && strlen(path) != bufs->value.len)
		why = "holds a NUL";
	if (why != NULL) {
		errmsg_set(error_r, "message.cfg:%d: attachment '%.200s' %s",
			   rf->line, path, why);
		return -1;
	}
	if (job->attach == NULL) {
		errmsg_set(error_r, "message.cfg:%d: attachment '%.200s': the "
			   "campaign has no files folder (campaign create "
			   "--files DIR)", rf->line, path);
		return -1;
	}
	if (job->attach(job->attach_ctx, path, &file, &len, error_r) < 0)
		return -1;
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	if (!message_file_name_ok(base)) {
		errmsg_set(error_r, "message.cfg:%d: attachment '%.200s': the "
			   "file name is not usable in a message (printable "
			   "ASCII without spaces or quotes)", rf->line, path);
		return -1;
	}
	buf_printf(out, "Content-Type: %s; name=\"%s\"\r\n"
		   "Content-Disposition: attachment; filename=\"%s\"\r\n"
		   "Content-Transfer-Encoding: base64\r\n\r\n",
		   message_content_type(base), base, base);
	mime_base64_encode(out, file, len);
	return 0;
}

int message_render(const struct message_tmpl *mt,
		   const struct tmpl_data *data, const struct message_job *job,
		   struct message_bufs *bufs, struct buf *out,
		   const char **error_r)
{
	const char *at;
	size_t nattach = mt->natt - mt->ninline + mt->nrfiles;

	memset(&bufs->notes, 0, sizeof(bufs->notes));
	bufs->stuffed = !mt->header_dot;
	message_date(out, bufs, job->date);
	if (mt->from_header.len > 0) {
		buf_append(out, mt->from_header.data, mt->from_header.len);
		buf_reset(&bufs->value);
		buf_append(&bufs->value, buf_cstr(&mt->from_value),
			   mt->from_value.len);
	} else if (message_mailbox_header(mt->from, "From", data, bufs, out,
					  error_r) < 0) {
		return -1;
	}
	/* From's address is in bufs->value still: its domain names us. */
	at = memrchr(bufs->value.data, '@', bufs->value.len);
	buf_append_lit(out, "Message-ID: <volley.");
	message_put_uint(out, (uint64_t)job->campaign_id, 10);
	buf_putc(out, '.');
	message_put_uint(out, (uint64_t)job->job_id, 10);
	buf_putc(out, '.');
	message_put_uint(out, (uint64_t)job->campaign_created, 16);
	buf_putc(out, '@');
	if (at != NULL) {
		const char *end = bufs->value.data + bufs->value.len;

		while (end > at && (end[-1] == '>' || end[-1] == ' ' ||
				    end[-1] == '\t'))
			end--;
		buf_append(out, at + 1, (size_t)(end - at - 1));
	} else {
		buf_append_lit(out, "volley.invalid");
	}
	buf_append_lit(out, ">\r\n");
	if (message_to_header(mt, data, job, bufs, out, error_r) < 0)
		return -1;
	if (message_value(mt->subject, data, bufs, "subject", error_r) < 0)
		return -1;
	if (mime_header_text(out, "Subject", bufs->value.data,
			     bufs->value.len) < 0) {
		errmsg_set(error_r, "subject: a variable put a line break, "
			   "NUL or invalid UTF-8 into the header");
		return -1;
	}
	if (mt->reply_to != NULL &&
	    message_mailbox_header(mt->reply_to, "Reply-To", data, bufs, out,
				   error_r) < 0)
		return -1;
	if (message_list_unsubscribe(mt, data, job, bufs, out, error_r) < 0)
		return -1;
	if (mt->feedback_id != NULL) {
		if (message_value(mt->feedback_id, data, bufs, "feedback_id",
				  error_r) < 0)
			return -1;
		if (mime_header_text(out, "Feedback-ID", bufs->value.data,
				     bufs->value.len) < 0) {
			errmsg_set(error_r, "feedback_id: a variable put a "
				   "line break, NUL or invalid UTF-8 into "
				   "the header");
			return -1;
		}
	}
	for (size_t i = 0; i < mt->nheaders; i++) {
		const struct message_header *h = &mt->headers[i];

		if (message_value(h->value, data, bufs, h->name, error_r) < 0)
			return -1;
		if (mime_header_text(out, h->name, bufs->value.data,
				     bufs->value.len) < 0) {
			errmsg_set(error_r,
				   "%s: a variable put a line break, NUL "
				   "or invalid UTF-8 into the header",
				   h->name);
			return -1;
		}
	}
	buf_append_lit(out, "MIME-Version: 1.0\r\n");

	if (nattach == 0) {
		if (message_body_part(mt, data, job, bufs, out) < 0)
			goto out_too_deep;
		return 0;
	}
	message_multipart_open(out, "mixed", job, 0);
	if (message_body_part(mt, data, job, bufs, out) < 0)
		goto out_too_deep;
	for (size_t i = 0; i < mt->natt; i++) {
		if (mt->att[i].is_inline)
			continue;
		message_multipart_next(out, job, 0, false);
		buf_append(out, mt->att[i].part.data, mt->att[i].part.len);
	}
	for (size_t i = 0; i < mt->nrfiles; i++) {
		message_multipart_next(out, job, 0, false);
		if (message_recipient_file(&mt->rfiles[i], data, job, bufs,
					   out, error_r) < 0)
			return -1;
	}
	message_multipart_next(out, job, 0, true);
	return 0;

out_too_deep:
	errmsg_set(error_r, "body: sections nest too deep");
	return -1;
}

static void message_count_name(void *ctx, const char *name, size_t len,
			       unsigned line, unsigned column)
{
	(void)name, (void)len, (void)line, (void)column;
	++*(size_t *)ctx;
}

int message_tmpl_from_address(const struct message_tmpl *mt,
			      struct buf *addr)
{
	struct tmpl_data none = { .get = message_no_value };
	struct buf value = BUF_INIT, display = BUF_INIT;
	const char *a, *error;
	size_t names = 0, alen;
	int ret = 0;

	tmpl_top_names(mt->from, message_count_name, &names);
	if (names > 0)
		return 0;
	if (tmpl_render(mt->from, &none, &value) == 0 &&
	    message_split_mailbox(buf_cstr(&value), value.len, &display, &a,
				  &alen, "from", &error) == 0) {
		buf_append(addr, a, alen);
		ret = 1;
	}
	buf_free(&value);
	buf_free(&display);
	return ret;
}

bool message_tmpl_sets_list_unsubscribe(const struct message_tmpl *mt)
{
	return mt->list_unsubscribe != NULL;
}
