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
	TMPL_ESCAPE_HTML,	/* {{var}} escapes & < > " and ' */
};

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
 * on error with a message in src.
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
};

struct tmpl_error {
	/* "body.html:3:1: unclosed section 'items'" */
	char message[512];
	unsigned line;		/* 1-based */
	unsigned column;	/* 1-based, in bytes */
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
int tmpl_render_mail(const struct tmpl *t, const struct tmpl_data *data,
		     struct buf *out, bool *clean_r);

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

#endif
