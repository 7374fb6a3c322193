/*
 * test_render_golden - whole messages, byte for byte as volley has always
 * made them: the renderer, the MIME encoders and dot-stuffing are made
 * faster (issue 17), never different.
 *
 *   test_render_golden GOLDEN NEWSLETTER_DIR          compare
 *   test_render_golden --write GOLDEN NEWSLETTER_DIR  record
 *
 * Each case is a template (examples/newsletter, the folder
 * bench/newsletter.py wrote into NEWSLETTER_DIR, and small ones made here:
 * text, HTML, both, ASCII or not) rendered for recipients whose values
 * are nasty on purpose: empty, CR, LF and CRLF, "\r\n.\r\n", dots at line
 * starts, "=_", trailing spaces and tabs, non-ASCII, lines past 998 bytes.
 * GOLDEN holds, per message, the length and a 64-bit FNV-1a hash of the
 * message (or of its error), of its DATA form (dotstuff_data) and of its
 * BDAT form (dotstuff_crlf), recorded by the code before issue 17's
 * changes.  A mismatch names the case and the recipient.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dotstuff.h"
#include "message.h"
#include "vars.h"
#include "vars_data.h"

#define MAX_FILES 16

struct folder {
	const char *names[MAX_FILES];
	struct buf data[MAX_FILES];
	size_t n;
};

static int folder_file(void *ctx, const char *name, const void **data,
		       size_t *len)
{
	struct folder *f = ctx;

	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->names[i], name) == 0) {
			*data = f->data[i].data;
			*len = f->data[i].len;
			return 1;
		}
	}
	return 0;
}

static struct buf *folder_add(struct folder *f, const char *name)
{
	if (f->n == MAX_FILES) {
		fprintf(stderr, "too many files\n");
		exit(2);
	}
	f->names[f->n] = strdup(name);
	memset(&f->data[f->n], 0, sizeof(f->data[f->n]));
	return &f->data[f->n++];
}

static void folder_free(struct folder *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free((char *)f->names[i]);
		buf_free(&f->data[i]);
	}
	f->n = 0;
}

/* folder_read - every file of dir (no subfolders) into f */
static void folder_read(struct folder *f, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		exit(2);
	}
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		char chunk[65536];
		struct buf *b;
		FILE *fp;
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fp = fopen(path, "rb");
		if (fp == NULL) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			exit(2);
		}
		b = folder_add(f, e->d_name);
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_append(b, chunk, n);
		fclose(fp);
	}
	closedir(d);
}

static uint64_t fnv(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* --- recipients' values ------------------------------------------------ */

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* the pieces nasty values are made of */
static const char *const pieces[] = {
	"", "a", "Zoë", "Zürich", "\xe2\x80\x94", "\r\n", "\n", "\r",
	"\r\n.\r\n", ".", "..", "\r\n.", "\n.", " ", "\t", " \r\n", "=",
	"=_", "=3D", "&<>\"'", "http://x/?a=b&c", "javascript:alert(1)",
	"From ", "plain words here", "\x7f", "\x01", "\xff", "--",
	"=_volley_", ".\r\n",
};

/* value - a random value: pieces, sometimes a line past 998 bytes */
static void value(struct buf *v, unsigned kind)
{
	size_t n;

	buf_reset(v);
	switch (kind) {
	case 0:
		return;		/* empty */
	case 1:
		buf_append_str(v, "Plain");
		return;
	case 2:
		n = 1000 + rnd() % 600;
		for (size_t i = 0; i < n; i++)
			buf_putc(v, (char)('a' + (char)(rnd() % 26)));
		return;
	default:
		n = 1 + rnd() % 8;
		for (size_t i = 0; i < n; i++)
			buf_append_str(v, pieces[rnd() %
						 (sizeof(pieces) /
						  sizeof(pieces[0]))]);
		return;
	}
}

static const char *const var_names[] = {
	"first_name", "last_name", "city", "plan", "title", "note",
};
#define NVARS (sizeof(var_names) / sizeof(var_names[0]))

struct golden {
	FILE *fp;
	bool write;
	unsigned failures;
	unsigned messages;
	unsigned stuffed;	/* said to need no dot-stuffing */
};

/* check - one message's line against GOLDEN, or written to it */
static void check(struct golden *g, const char *line)
{
	char want[512];

	g->messages++;
	if (g->write) {
		fputs(line, g->fp);
		return;
	}
	if (fgets(want, sizeof(want), g->fp) == NULL) {
		fprintf(stderr, "GOLDEN ends before: %s", line);
		g->failures++;
		return;
	}
	if (strcmp(want, line) != 0) {
		fprintf(stderr, "differs:\n  want %s  have %s", want, line);
		g->failures++;
	}
}

/* run_case - n recipients of the template in f, each checked */
static void run_case(struct golden *g, const char *name, struct folder *f,
		     unsigned n)
{
	struct message_tmpl *mt;
	struct message_bufs bufs = { 0 };
	struct buf out = BUF_INIT, ds = BUF_INIT, names = BUF_INIT;
	struct buf vals = BUF_INIT, v = BUF_INIT, line = BUF_INIT;
	const char *error;

	if (message_tmpl_load(folder_file, f, &mt, &error) < 0) {
		fprintf(stderr, "%s: %s\n", name, error);
		exit(2);
	}
	for (unsigned r = 0; r < n; r++) {
		char addr[64];
		struct message_job job = {
			.campaign_id = 3, .job_id = 1000 + r,
			.campaign_created = 1764000000000LL,
			.date = 1764000000 + r,
		};
		struct vars_data vd;
		uint64_t h1, h2, h3;
		size_t l2, l3;
		int rc;

		snprintf(addr, sizeof(addr), "rcpt%u@example.org", r);
		job.to = addr;
		job.to_len = strlen(addr);
		vars_pack_begin(&names);
		vars_pack_begin(&vals);
		for (size_t i = 0; i < NVARS; i++) {
			/* the first recipients plain, then ever nastier */
			unsigned kind = r == 0 ? 1 : r == 1 ? 0 :
					(unsigned)(rnd() % 8);

			/* headers refuse line breaks: keep some sendable */
			if (i == 0 && r % 2 == 0)
				kind = 1;
			value(&v, kind);
			vars_pack_str(&names, var_names[i],
				      strlen(var_names[i]));
			vars_pack_str(&vals, v.data != NULL ? v.data : "",
				      v.len);
		}
		if (vars_data_init(&vd, names.data, names.len, "email", addr,
				   strlen(addr), vals.data, vals.len) < 0) {
			fprintf(stderr, "vars_data_init\n");
			exit(2);
		}
		buf_reset(&out);
		rc = message_render(mt, &vd.data, &job, &bufs, &out, &error);
		buf_reset(&line);
		if (rc < 0) {
			buf_printf(&line, "%s %u error %016" PRIx64 "\n", name,
				   r, fnv(error, strlen(error)));
			check(g, buf_cstr(&line));
			continue;
		}
		h1 = fnv(out.data, out.len);
		buf_reset(&ds);
		dotstuff_data(&ds, out.data, out.len);
		l2 = ds.len;
		h2 = fnv(ds.data, ds.len);
		/* what message_bufs.stuffed claims: nothing to stuff */
		if (bufs.stuffed &&
		    (ds.len != out.len + 3 ||
		     memcmp(ds.data, out.data, out.len) != 0)) {
			fprintf(stderr, "%s %u: stuffed, but dotstuff_data "
				"changes it\n", name, r);
			g->failures++;
		}
		g->stuffed += bufs.stuffed;
		buf_reset(&ds);
		dotstuff_crlf(&ds, out.data, out.len);
		l3 = ds.len;
		h3 = fnv(ds.data, ds.len);
		buf_printf(&line, "%s %u %zu %016" PRIx64 " %zu %016" PRIx64
			   " %zu %016" PRIx64 " %u\n", name, r, out.len, h1,
			   l2, h2, l3, h3, bufs.notes.unsafe_urls);
		check(g, buf_cstr(&line));
	}
	message_bufs_free(&bufs);
	message_tmpl_free(&mt);
	buf_free(&out);
	buf_free(&ds);
	buf_free(&names);
	buf_free(&vals);
	buf_free(&v);
	buf_free(&line);
}

/* --- small templates made here ------------------------------------------ */

static const char cfg_plain[] =
	"subject = \"Hello {{first_name}}\";\n"
	"from = \"News <news@example.org>\";\n";

static const char text_ascii[] =
	"Hello {{first_name}} {{last_name}},\n"
	".{{city}} starts a line with a dot\n"
	"{{city}}\n"
	"{{#note}}Note: {{note}}.{{/note}}{{^note}}no note{{/note}}\n"
	"{{{title}}} and {{&plan}} raw; trailing space {{plan}} \n"
	"tab\t{{plan}}\t\n"
	"=_ looks like a boundary {{plan}}=_\n"
	"a long line: {{title}}{{title}}{{title}}{{title}}\n"
	"end without a line break {{city}}";

static const char text_utf8[] =
	"Grüße {{first_name}} — from Zürich\n"
	"{{city}}={{plan}} ends with a space \n"
	".dot line {{note}}\n"
	"{{#title}}{{title}}\n{{/title}}"
	"Das ist ein sehr langer Satz, der weit über sechsundsiebzig "
	"Zeichen hinausgeht und daher weich umbrochen werden muss, "
	"{{first_name}}, mit Umlauten: äöü ÄÖÜ ß.\n";

static const char html_doc[] =
	"<!DOCTYPE html>\n<html><head><title>{{first_name}}</title></head>\n"
	"<body style=\"margin:0;padding:0\">\n"
	"<p class=\"x\">Hello {{first_name}} {{last_name}} in {{city}} — "
	"café “quoted”</p>\n"
	"<a href=\"{{note}}\">link</a> <a href=\"https://e.org/?u={{city}}\""
	">more</a> <img src=cid:logo.png alt={{plan}}>\n"
	".{{title}}\n{{{title}}}\n<p>{{#plan}}{{plan}}{{/plan}}</p>\n"
	"</body></html>\n";

static const char html_ascii[] =
	"<html><body>\n<p>Hello {{first_name}}, {{city}}</p>\n"
	"<p>{{title}}</p>\n</body></html>\n";

static void small_case(struct golden *g, const char *name,
		       const char *text, const char *html, bool logo)
{
	struct folder f = { .n = 0 };

	if (logo) {
		struct buf *png;

		buf_append_str(folder_add(&f, "message.cfg"), cfg_plain);
		buf_append_str(&f.data[0], "inline = [ \"logo.png\" ];\n");
		png = folder_add(&f, "logo.png");
		for (int i = 0; i < 3000; i++)
			buf_putc(png, (char)(i * 37));
	} else {
		buf_append_str(folder_add(&f, "message.cfg"), cfg_plain);
	}
	if (text != NULL)
		buf_append_str(folder_add(&f, "body.txt"), text);
	if (html != NULL)
		buf_append_str(folder_add(&f, "body.html"), html);
	run_case(g, name, &f, 40);
	folder_free(&f);
}

/*
 * Cases added with the renderer's pre-encoded lines (issue 17): constant
 * lines that start with '.', lines at and around 76 and 998 columns,
 * constant lines between sections and inverted sections, and partials
 * (standalone, indented, and inline); each in a template that goes 7bit
 * when it can and in one that is always quoted-printable (8-bit text).
 */
static const char text_dots[] =
	"Hello {{first_name}}\n"
	".a constant line that starts with a dot\n"
	"..two dots\n"
	".\n"
	"{{#note}}\n"
	".in a section {{note}}\n"
	".a constant line in a section\n"
	"and another\n"
	"{{/note}}\n"
	"{{^note}}\n"
	".in an inverted section\n"
	"{{/note}}\n"
	"{{city}}\n"
	".after a value's line\n"
	"{{#plan}}{{plan}}{{/plan}}\n"
	".after a section on one line\n"
	"end {{last_name}}\n";

/* lines of 74 to 78 columns, with '=', spaces and tabs at the edge */
static void columns(struct buf *b, bool eight)
{
	static const char *const ends[] = { "", " ", "=", "\t", ".", "é" };

	buf_append_str(b, "Dear {{first_name}},\n");
	for (size_t n = 70; n <= 78; n++) {
		for (size_t e = 0; e < sizeof(ends) / sizeof(ends[0]); e++) {
			if (!eight && ends[e][0] & 0x80)
				continue;
			for (size_t i = 0; i < n; i++)
				buf_putc(b, (char)('a' + (char)(i % 26)));
			buf_append_str(b, ends[e]);
			buf_append_str(b, "\n");
		}
		buf_append_str(b, "{{city}}\n");
	}
	for (size_t n = 996; n <= 1000; n++) {
		for (size_t i = 0; i < n; i++)
			buf_putc(b, (char)(i % 80 == 79 ? ' ' : 'x'));
		buf_append_str(b, "\n{{plan}}\n");
	}
	if (eight)
		buf_append_str(b, "café\n");
	for (size_t n = 73; n <= 77; n++) {
		buf_append_str(b, "{{#note}}\n");
		for (size_t i = 0; i < n; i++)
			buf_putc(b, i + 1 == n ? '=' : 'q');
		buf_append_str(b, "\n{{/note}}{{^note}}\n");
		for (size_t i = 0; i < n; i++)
			buf_putc(b, i + 1 == n ? ' ' : 'r');
		buf_append_str(b, "\n{{/note}}\n");
	}
}

static const char text_partials[] =
	"Hello {{first_name}}\n"
	"{{> footer}}\n"
	"  {{> footer}}\n"
	"inline: {{> footer}} then {{city}}\n"
	"{{#note}}\n"
	"    {{> footer}}\n"
	"{{/note}}\n"
	"bye\n";

static const char footer[] =
	"-- \n"
	".the footer's constant line, dotted\n"
	"a constant line of the footer, long enough to be worth encoding once "
	"— and past seventy-six columns\n"
	"{{last_name}} at {{city}}\n"
	"its last line\n";

static const char html_partials[] =
	"<html><body>\n<p>Hello {{first_name}}</p>\n"
	"{{> hfooter}}\n"
	"<div>{{#note}}\n<p>{{note}}</p>\n.constant\n{{/note}}</div>\n"
	"  {{> hfooter}}\n"
	"</body></html>\n";

static const char hfooter[] =
	"<p style=\"margin:0;font-size:12px\">a footer — “quoted”</p>\n"
	".<a href=\"https://e.org/u?c={{city}}\">unsubscribe</a>\n"
	"<p>constant line after the link, long enough to be encoded once</p>\n"
	"<p>and one more constant line</p>\n";

/* files_case - a template of text and HTML with its partials */
static void files_case(struct golden *g, const char *name, const char *text,
		       const char *html, bool eight)
{
	struct folder f = { .n = 0 };
	struct buf *b;

	buf_append_str(folder_add(&f, "message.cfg"), cfg_plain);
	if (text != NULL) {
		b = folder_add(&f, "body.txt");
		buf_append_str(b, text);
		if (eight)
			buf_append_str(b, "Grüße\n");
	}
	if (html != NULL) {
		b = folder_add(&f, "body.html");
		buf_append_str(b, html);
		if (eight)
			buf_append_str(b, "<p>Grüße</p>\n");
	}
	buf_append_str(folder_add(&f, "footer.mustache"), footer);
	buf_append_str(folder_add(&f, "hfooter.mustache"), hfooter);
	run_case(g, name, &f, 40);
	folder_free(&f);
}

static void added_cases(struct golden *g)
{
	struct buf cols = BUF_INIT;

	files_case(g, "dots-7bit", text_dots, NULL, false);
	files_case(g, "dots-qp", text_dots, NULL, true);
	columns(&cols, false);
	files_case(g, "columns-7bit", buf_cstr(&cols), NULL, false);
	buf_reset(&cols);
	columns(&cols, true);
	files_case(g, "columns-qp", buf_cstr(&cols), NULL, true);
	files_case(g, "partials", text_partials, html_partials, false);
	files_case(g, "partials-qp", text_partials, html_partials, true);
	buf_free(&cols);
}

int main(int argc, char **argv)
{
	struct golden g = { .write = false };
	struct folder f = { .n = 0 };
	const char *src = getenv("VOLLEY_SOURCE_DIR");
	char path[4096];
	int a = 1;

	if (argc > 1 && strcmp(argv[1], "--write") == 0) {
		g.write = true;
		a++;
	}
	if (argc - a != 2 || src == NULL) {
		fprintf(stderr, "usage: VOLLEY_SOURCE_DIR=... "
			"test_render_golden [--write] GOLDEN NEWSLETTER_DIR\n");
		return 2;
	}
	g.fp = fopen(argv[a], g.write ? "w" : "r");
	if (g.fp == NULL) {
		fprintf(stderr, "%s: %s\n", argv[a], strerror(errno));
		return 2;
	}
	small_case(&g, "text-ascii", text_ascii, NULL, false);
	small_case(&g, "text-utf8", text_utf8, NULL, false);
	small_case(&g, "html-doc", NULL, html_doc, true);
	small_case(&g, "html-ascii", NULL, html_ascii, false);
	small_case(&g, "both", text_ascii, html_doc, true);
	small_case(&g, "both-utf8", text_utf8, html_ascii, false);
	snprintf(path, sizeof(path), "%s/examples/newsletter", src);
	folder_read(&f, path);
	run_case(&g, "examples-newsletter", &f, 40);
	folder_free(&f);
	folder_read(&f, argv[a + 1]);
	run_case(&g, "bench-newsletter", &f, 40);
	folder_free(&f);
	added_cases(&g);
	if (!g.write) {
		char extra[512];

		if (fgets(extra, sizeof(extra), g.fp) != NULL) {
			fprintf(stderr, "GOLDEN has more: %s", extra);
			g.failures++;
		}
	}
	fclose(g.fp);
	printf("%u messages (%u need no stuffing), %u differ\n", g.messages,
	       g.stuffed, g.failures);
	return g.failures == 0 ? 0 : 1;
}
