/*
 * tmpl - Mustache templates, compiled once and rendered per recipient.
 *
 * A template is compiled once per campaign (and per part: text, HTML,
 * each header) into a flat array of operations; rendering one recipient
 * walks that array and appends to a caller-owned struct buf that is reused
 * from message to message.  Rendering allocates nothing: the context stack
 * has a fixed depth, and partials are compiled when the template is.
 *
 * Language: the Mustache specification's interpolation, sections,
 * inverted sections, comments, set-delimiter and partials modules
 * ({{var}}, {{{var}}}, {{&var}}, {{#s}}..{{/s}}, {{^s}}..{{/s}}, {{! c}},
 * {{=<% %>=}}, {{> name}}), including standalone-line rules, dotted names,
 * the implicit iterator {{.}} and partial indentation.
 *
 * Truthiness (sections): missing, null, false, an empty list and an empty
 * string are false; everything else is true.  A list repeats its section
 * once per item with the item as the innermost context.
 *
 * Variables are looked up through struct tmpl_data, so the renderer knows
 * nothing of how they are stored (the store's packed form on the send
 * path, a JSON document in tests).
 *
 * HTML templates (TMPL_ESCAPE_HTML) are escaped by context, as Go's
 * html/template does it, with the context found once, at compile time:
 * the compiler follows the HTML around every tag (text, tags, attribute
 * values, comments, <script> and the like) and marks each variable.
 * In the value of a URL attribute (href, src, action, formaction, cite,
 * poster, background and a few more; quoted or not):
 *   - a variable that starts the URL (only spaces before it) must give a
 *     URL with an http:, https: or mailto: scheme, or none (a relative
 *     URL); anything else (javascript:, data:, vbscript: ...) renders as
 *     TMPL_UNSAFE_URL and is counted in struct tmpl_notes;
 *   - a variable after the URL's first byte (in its path, query or
 *     fragment) is percent-encoded (RFC 3986: all but A-Z a-z 0-9 - . _ ~);
 *   - {{{x}}} and {{&x}} still get the scheme check at the start (a value
 *     that holds '&' there fails it: a character reference could hide a
 *     ':'), but are never escaped or encoded: raw means as it is;
 *   - where sections leave it open whether a variable starts the URL
 *     (href="{{#a}}{{a}}{{/a}}{{b}}"), it is taken to start it: checked,
 *     not encoded.
 * An unquoted attribute value escapes spaces, '=' and '`' as well, so a
 * value cannot end it.  A section must end in the HTML context it began
 * in, or one that differs only in which attribute or which part of a URL
 * it is at (the same goes for a partial that includes itself); else
 * compiling fails, since what follows could not be escaped right.  A
 * partial is escaped for the context of each call.
 * Inline CSS and JavaScript (style, on* attributes, <script>) get plain
 * HTML escaping: mail clients run no scripts, and volley does not parse
 * CSS.
 *
 * Thread rules: a compiled struct tmpl is immutable; any number of threads
 * may render it at once, each into its own buffer.
 */
#ifndef VOLLEY_TMPL_H
#define VOLLEY_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct tmpl;

enum tmpl_escape {
	TMPL_ESCAPE_NONE,	/* text parts and headers: values as they are */
	TMPL_ESCAPE_HTML,	/* {{var}} escapes & < > " and ', and more by
				 * context (see above) */
	/*
	 * {{var}} escapes & < > " and ' wherever it is, as the Mustache
	 * spec has it: for HTML that is not a document of its own (the
	 * spec's own tests, whose "HTML" need not be HTML)
	 */
	TMPL_ESCAPE_HTML_PLAIN,
	/*
	 * The template is one URL (List-Unsubscribe): a {{var}} after its
	 * first byte other than a space is percent-encoded; one that starts
	 * it, and {{{var}}}, go as they are (the caller checks the scheme).
	 */
	TMPL_ESCAPE_URL,
};

/* What an unsafe URL is replaced with in an HTML template. */
#define TMPL_UNSAFE_URL "about:invalid#volley-unsafe-url"

/* --- the data a template is rendered with ----------------------------- */

enum tmpl_kind {
	TMPL_MISSING,	/* no such name */
	TMPL_NULL,
	TMPL_BOOL,
	TMPL_STRING,
	TMPL_NUMBER,	/* str holds its text, e.g. "1.21" */
	TMPL_LIST,
	TMPL_OBJECT,
};

struct tmpl_value {
	enum tmpl_kind kind;
	bool boolean;		/* TMPL_BOOL */
	const char *str;	/* TMPL_STRING, TMPL_NUMBER: not NUL-terminated */
	size_t len;
	const void *ref;	/* TMPL_LIST, TMPL_OBJECT: the provider's handle */
};

struct tmpl_data {
	/*
	 * get - look name up in obj (a TMPL_OBJECT value).  Returns false
	 * (and need not touch out) if obj has no such member.
	 */
	bool (*get)(const struct tmpl_data *d, const struct tmpl_value *obj,
		    const char *name, size_t len, struct tmpl_value *out);
	size_t (*list_len)(const struct tmpl_data *d,
			   const struct tmpl_value *list);
	void (*list_item)(const struct tmpl_data *d,
			  const struct tmpl_value *list, size_t i,
			  struct tmpl_value *out);
	struct tmpl_value root;	/* the bottom of the context stack */
	void *ctx;		/* the provider's own */
};

/* --- compiling --------------------------------------------------------- */

/*
 * Loads partial name: returns 1 and appends its source to src, 0 if there
 * is no such partial (it then renders as nothing, as the spec says), or -1
 * on error with a message in src (a caller for whom a missing partial is
 * a mistake returns -1 for it).
 */
typedef int tmpl_partial_fn(void *ctx, const char *name, struct buf *src);

struct tmpl_params {
	const char *file;		/* for error messages, e.g. "body.html" */
	enum tmpl_escape escape;
	tmpl_partial_fn *partial;	/* NULL: no partials */
	void *partial_ctx;
	/*
	 * crlf: the template's own line ends (LF, or a lone CR) come out as
	 * CRLF, converted once here, so a mail body made only of template
	 * text and values without line breaks needs no conversion per
	 * message.  Values are never changed.
	 */
	bool crlf;
	/*
	 * partial_ext: messages name a partial's file as its name and this
	 * ("footer" + ".mustache"); NULL: as "partial 'footer'".
	 */
	const char *partial_ext;
};

struct tmpl_error {
	/* "body.html:3:1: unclosed section 'items'" */
	char message[512];
	unsigned line;		/* 1-based */
	unsigned column;	/* 1-based, in bytes */
	size_t reason;		/* message + reason: the text after "3:1: " */
	bool in_partial;	/* line and column are in a partial's source */
};

/*
 * tmpl_compile - compile len bytes of Mustache source.  Partials are
 * loaded and compiled now, so rendering never fails for a missing file.
 * Returns 0, or -1 with err filled (the file, line and column of the
 * fault: unclosed section, mismatched or stray close tag, bad delimiter,
 * unclosed tag, empty tag name, partials nested too deep).
 */
int tmpl_compile(const char *src, size_t len, const struct tmpl_params *p,
		 struct tmpl **t_r, struct tmpl_error *err);
void tmpl_free(struct tmpl **tp);

/*
 * tmpl_render - append the template rendered with data to out.
 * Returns 0, or -1 if sections (or partial calls, such as a partial that
 * includes itself outside any section) nest deeper than TMPL_MAX_DEPTH;
 * out then holds a partial rendering.
 */
#define TMPL_MAX_DEPTH 64
int tmpl_render(const struct tmpl *t, const struct tmpl_data *data,
		struct buf *out);

/*
 * tmpl_render_mail - tmpl_render(), and *clean_r tells whether the bytes
 * it appended are clean 7bit mail text: ASCII without NUL, CRLF line ends
 * only, no line over 998 bytes, and no "=_" (see templates/message.c).
 * It learns this from facts about the template's text gathered at compile
 * time and a look at each value, so a caller need not scan the output
 * again.  Only a template compiled with crlf can be clean.
 */
struct tmpl_notes;
int tmpl_render_mail(const struct tmpl *t, const struct tmpl_data *data,
		     struct buf *out, bool *clean_r, struct tmpl_notes *notes);

/*
 * tmpl_render_mail_dot - tmpl_render_mail(), and *dot_r false when no
 * line of a clean rendering starts with '.' (it may be true when none
 * does), so SMTP DATA needs no dot-stuffing of it.
 */
int tmpl_render_mail_dot(const struct tmpl *t, const struct tmpl_data *data,
			 struct buf *out, bool *clean_r, bool *dot_r,
			 struct tmpl_notes *notes);

/*
 * tmpl_set_encoder - give the template a body encoding (quoted-printable:
 * mime_qp_encode_from) for tmpl_render_encoded(), before any render.
 * encode appends the encoding of p[0..stop), as it is in the encoding
 * of p[0..len), to an output line that holds col characters so far, and
 * returns the column it ends at (adding the final line end only when
 * stop is len); how a byte is encoded may depend on the byte after it,
 * never on more.  Then the template's text after each line end in it is
 * encoded once, here, not per render.
 */
typedef size_t tmpl_encode_fn(struct buf *out, const char *p, size_t len,
			      size_t stop, size_t col);
void tmpl_set_encoder(struct tmpl *t, tmpl_encode_fn *encode);

/*
 * tmpl_render_encoded - append the rendering, encoded with the
 * template's encoder, to out: the same bytes as tmpl_render() into tmp
 * and encode(out, tmp), but the template's text from each line end in
 * it on is copied as tmpl_set_encoder() encoded it, and only the rest
 * (values, and the text between them and the next line end) is encoded
 * per render, through tmp.  Returns as tmpl_render().  Without an
 * encoder, -1.
 */
int tmpl_render_encoded(const struct tmpl *t, const struct tmpl_data *data,
			struct buf *tmp, struct buf *out,
			struct tmpl_notes *notes);

/*
 * tmpl_text_8bit - true if every rendering holds a byte >= 0x80, whatever
 * the values: the template's own text has one outside every section.  A
 * mail body that will be quoted-printable anyway can then be rendered
 * where the encoder reads it, not first where a 7bit body would go.
 */
bool tmpl_text_8bit(const struct tmpl *t);

/*
 * tmpl_constant - true if the template is text alone: no tag that looks
 * anything up ({{.}} included), no section, no partial.  Every rendering
 * is then the same bytes, whatever the data, and never fails.
 */
bool tmpl_constant(const struct tmpl *t);

/*
 * What renders put in place of values (see above), added up over every
 * render given the same struct tmpl_notes (zero it to start), with the
 * place of the first: a caller tells its user.  Pointers are into the
 * template, valid while it is.
 */
struct tmpl_notes {
	unsigned unsafe_urls;	/* values replaced by TMPL_UNSAFE_URL */
	const char *file;	/* the first's: "body.html", a partial's */
	unsigned line;
	unsigned column;
	const char *name;	/* its tag's name, not NUL-terminated */
	size_t name_len;
};

/*
 * tmpl_top_names - call fn for each distinct name the template
 * interpolates ({{x}}, {{{x}}}, {{&x}}) outside every section (the first
 * part of a dotted name), with the line and column of its first use.
 * These are the variables every recipient must have.  Section names are
 * not among them, since a section over a missing name is Mustache's way
 * of saying "optional"; names inside sections follow Mustache's rules for
 * missing names.
 */
typedef void tmpl_name_fn(void *ctx, const char *name, size_t len,
			  unsigned line, unsigned column);
void tmpl_top_names(const struct tmpl *t, tmpl_name_fn *fn, void *ctx);

/* One use of a name, for tmpl_names(). */
struct tmpl_name {
	const char *name;	/* the whole tag name, dots and all */
	size_t len;
	/*
	 * false: outside every section (partials included where they are
	 * called), so the first part resolves only in the root; true: it
	 * may resolve in anything an enclosing section entered
	 */
	bool in_section;
	bool section;		/* {{#name}} or {{^name}}; else a value */
	const char *file;	/* tmpl_params.file, or the partial's file */
	bool in_partial;	/* line and column are in that partial */
	unsigned line;
	unsigned column;
};

/*
 * tmpl_names - call fn for every tag that looks a name up ({{x}},
 * {{{x}}}, {{&x}}, {{#x}}, {{^x}}; not {{.}}), in the template and in
 * every partial, sections or not: what tmpl_top_names() leaves out.  A
 * partial called both outside and inside sections is walked twice; names
 * are not made distinct.
 */
typedef void tmpl_names_fn(void *ctx, const struct tmpl_name *n);
void tmpl_names(const struct tmpl *t, tmpl_names_fn *fn, void *ctx);

#endif
