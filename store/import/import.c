/*
 * import - recipients from a CSV or JSON Lines file into a campaign (see
 * import.h).
 *
 * Costs per CSV row, in order: the CSV reader hands out fields that point
 * into its input buffer, the address check is one pass over the address,
 * the variables are packed into one reused buffer, and the store binds
 * them without copying.  Nothing is allocated per row.  A JSON Lines row
 * is parsed by jansson (which allocates) and packed into the same kind of
 * blob, so that sending never parses JSON.
 */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "csv.h"
#include "errmsg.h"
#include "escape.h"
#include "mailaddr.h"
#include "store.h"
#include "varnames.h"
#include "vars.h"
#include "xalloc.h"

/* JSON Lines: a longer line is taken for a damaged file. */
#define IMPORT_MAX_LINE (1024 * 1024)

struct import_run {
	const struct import_opts *o;
	const char *label;	/* file name for messages */
	struct import_summary *sum;
	struct store *st;
	struct store_import *imp;
	FILE *rejects;
	/* the rejects file until the import ends: "" once it has its name */
	char rejects_tmp[sizeof(((struct import_summary *)0)->rejects_path)];
	size_t printed;
	struct buf line;	/* message and rejects scratch */
	struct buf vars;	/* the row's packed variables */
	struct buf addr;	/* a JSON Lines row's address */
	struct buf reason;
	struct buf diag;	/* a line for o->diag */
	const struct import_need *needs;	/* o->needs */
	size_t nneeds;
};

void import_trim(const char **p, size_t *len)
{
	while (*len > 0 && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
		(*len)--;
}

/*
 * import_open_rejects - create the rejects file and write its header.  It
 * is written under a name of its own and takes its real name only when
 * the import ends (import_place_rejects): an import that fails leaves no
 * rejects of rows it never skipped, and an earlier file as it was.
 */
static int import_open_rejects(struct import_run *run, const char **error_r)
{
	const struct import_opts *o = run->o;
	struct import_summary *sum = run->sum;
	struct stat sb;
	int fd;

	if (o->rejects_path != NULL)
		snprintf(sum->rejects_path, sizeof(sum->rejects_path), "%s",
			 o->rejects_path);
	else if (strcmp(o->path, "-") == 0)
		snprintf(sum->rejects_path, sizeof(sum->rejects_path),
			 "volley-rejects.csv");
	else
		snprintf(sum->rejects_path, sizeof(sum->rejects_path),
			 "%s.rejects.csv", o->path);
	/* the one reason the final rename would fail that is seen now */
	if (stat(sum->rejects_path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		errmsg_set(error_r, "%s: %s", sum->rejects_path,
			   strerror(EISDIR));
		sum->rejects_path[0] = '\0';
		return -1;
	}
	if (snprintf(run->rejects_tmp, sizeof(run->rejects_tmp), "%s.tmp-%ld",
		     sum->rejects_path, (long)getpid()) >=
	    (int)sizeof(run->rejects_tmp)) {
		errmsg_set(error_r, "%s: %s", sum->rejects_path,
			   strerror(ENAMETOOLONG));
		run->rejects_tmp[0] = '\0';
		sum->rejects_path[0] = '\0';
		return -1;
	}
	fd = open(run->rejects_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  0666);
	if (fd < 0) {
		errmsg_set(error_r, "%s: %s", run->rejects_tmp,
			   strerror(errno));
		run->rejects_tmp[0] = '\0';
		sum->rejects_path[0] = '\0';
		return -1;
	}
	run->rejects = fdopen(fd, "w");
	if (run->rejects == NULL) {
		errmsg_set(error_r, "%s: %s", run->rejects_tmp,
			   strerror(errno));
		close(fd);
		return -1;
	}
	fputs("line,reason,record\r\n", run->rejects);
	return 0;
}

/* import_close_rejects - flush and close the rejects file, if any */
static int import_close_rejects(struct import_run *run, const char **error_r)
{
	int rc;

	if (run->rejects == NULL)
		return 0;
	rc = fclose(run->rejects);
	run->rejects = NULL;
	if (rc != 0) {
		errmsg_set(error_r, "%s: %s", run->rejects_tmp,
			   strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * import_place_rejects - give the closed rejects file its name.  If that
 * fails the rows are still in the file under its own name, and the
 * summary says so: they are never lost.
 */
static void import_place_rejects(struct import_run *run)
{
	struct import_summary *sum = run->sum;

	if (run->rejects_tmp[0] == '\0')
		return;
	if (rename(run->rejects_tmp, sum->rejects_path) < 0)
		snprintf(sum->rejects_path, sizeof(sum->rejects_path), "%s",
			 run->rejects_tmp);
	run->rejects_tmp[0] = '\0';
}

/*
 * import_reject - report one bad row: to o->diag (escaped, as it is data
 * from the file) and in the rejects file (exact bytes).
 */
static int import_reject(struct import_run *run, unsigned long line,
			 unsigned long column, const char *reason,
			 const char *raw, size_t raw_len, const char **error_r)
{
	const struct import_opts *o = run->o;

	run->sum->rejected++;
	if (o->diag != NULL &&
	    (o->diag_max == 0 || run->printed < o->diag_max)) {
		buf_reset(&run->diag);
		if (column > 0)
			buf_printf(&run->diag, "%s:%lu:%lu: %s", run->label,
				   line, column, reason);
		else
			buf_printf(&run->diag, "%s:%lu: %s", run->label, line,
				   reason);
		o->diag(o->diag_ctx, buf_cstr(&run->diag));
		run->printed++;
	}
	if (run->rejects == NULL && (o->skip_invalid || o->rejects_path) &&
	    import_open_rejects(run, error_r) < 0)
		return -1;
	if (run->rejects != NULL) {
		buf_reset(&run->line);
		buf_printf(&run->line, "%lu,", line);
		csv_write_field(&run->line, reason, strlen(reason));
		buf_putc(&run->line, ',');
		csv_write_field(&run->line, raw, raw_len);
		buf_append_str(&run->line, "\r\n");
		if (fwrite(run->line.data, 1, run->line.len, run->rejects) !=
		    run->line.len) {
			errmsg_set(error_r, "%s: %s", run->sum->rejects_path,
				   strerror(errno));
			return -1;
		}
	}
	return 0;
}

int import_header_name(const struct csv_record *rec, size_t i,
		       const char *label, const char **p_r, size_t *len_r,
		       const char **error_r)
{
	const char *p = rec->fields[i].ptr;
	size_t len = rec->fields[i].len;

	import_trim(&p, &len);
	if (len == 0) {
		errmsg_set(error_r,
			   "%s:%lu: column %zu of the header has no name",
			   label, rec->line, i + 1);
		return -1;
	}
	if (memchr(p, '\n', len) || memchr(p, '\r', len)) {
		errmsg_set(error_r,
			   "%s:%lu: column %zu of the header has a line "
			   "break in its name", label, rec->line, i + 1);
		return -1;
	}
	for (size_t k = 0; k < i; k++) {
		const char *q = rec->fields[k].ptr;
		size_t qlen = rec->fields[k].len;

		import_trim(&q, &qlen);
		if (qlen == len && memcmp(p, q, len) == 0) {
			struct buf name = BUF_INIT;

			escape_text(&name, p, len, 100);
			errmsg_set(error_r, "%s:%lu: the header names column "
				   "'%s' twice (columns %zu and %zu)", label,
				   rec->line, buf_cstr(&name), k + 1, i + 1);
			buf_free(&name);
			return -1;
		}
	}
	*p_r = p;
	*len_r = len;
	return 0;
}

/*
 * import_header - check the header row, find the address column and make
 * the variable names.  Returns the address column's index, or -1.
 */
static long import_header(struct import_run *run,
			  const struct csv_record *rec, char ***names_r,
			  const char **error_r)
{
	const char *want = run->o->address_column;
	char **names = xcalloc(rec->nfields + 1, sizeof(*names));
	long addr_col = -1;
	size_t nnames = 0;

	for (size_t i = 0; i < rec->nfields; i++) {
		const char *p;
		size_t len;

		if (import_header_name(rec, i, run->label, &p, &len,
				       error_r) < 0)
			goto out_fail;
		if (addr_col < 0 && strlen(want) == len &&
		    strncasecmp(p, want, len) == 0) {
			addr_col = (long)i;
			continue;
		}
		names[nnames++] = xstrndup(p, len);
	}
	if (addr_col < 0) {
		struct buf have = BUF_INIT;

		for (size_t i = 0; i < rec->nfields; i++) {
			if (i > 0)
				buf_append_str(&have, ", ");
			escape_text(&have, rec->fields[i].ptr,
				    rec->fields[i].len, 60);
		}
		errmsg_set(error_r, "%s:%lu: no '%s' column in the header (name "
			   "the address column with --address-column); it "
			   "has: %s", run->label, rec->line, want,
			   buf_cstr(&have));
		buf_free(&have);
		goto out_fail;
	}
	*names_r = names;
	return addr_col;

out_fail:
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	return -1;
}

/* import_is_address_name - does the template name mean the address? */
static bool import_is_address_name(const char *address_column,
				   const char *name)
{
	return strcasecmp(name, address_column) == 0 ||
	       strcmp(name, VARS_ADDRESS_NAME) == 0;
}

/*
 * import_add - add one checked row: check its address, then hand it to
 * the store.  Returns 0 (added, duplicate or rejected) or -1 (fatal).
 */
static int import_add(struct import_run *run, const char *addr,
		      size_t addr_len, unsigned long line, const char *raw,
		      size_t raw_len, const char **error_r)
{
	const char *why, *error;
	unsigned flags;
	int ret;

	import_trim(&addr, &addr_len);
	if (!mailaddr_check(addr, addr_len, &flags, &why)) {
		buf_reset(&run->reason);
		buf_append_str(&run->reason, "invalid address '");
		escape_text(&run->reason, addr, addr_len, 100);
		buf_printf(&run->reason, "': %s", why);
		return import_reject(run, line, 0, buf_cstr(&run->reason), raw,
				     raw_len, error_r);
	}
	/* Once a row is bad nothing will be kept: just keep checking. */
	if (run->sum->rejected > 0 && !run->o->skip_invalid)
		return 0;
	ret = store_import_add(run->imp, addr, addr_len,
			       (flags & MAILADDR_SMTPUTF8) ?
			       STORE_ADDR_SMTPUTF8 : 0, run->vars.data,
			       run->vars.len, &error);
	if (ret < 0) {
		errmsg_set(error_r, "%s:%lu: %s", run->label, line, error);
		return -1;
	}
	return 0;
}

/*
 * import_names_known - every recipient's names are in o->names: count
 * what none has, and fail a strict import over it
 */
static int import_names_known(struct import_run *run, const char **error_r)
{
	struct varnames *vn = run->o->names;

	/* the address is a variable under its column's name too */
	varnames_root(vn, run->o->address_column,
		      strlen(run->o->address_column), true);
	run->sum->names_missing = vn->missing;
	if (vn->missing == 0 || !run->o->strict)
		return 0;
	errmsg_set(error_r, "%s: the template uses %zu name%s no recipient "
		   "has (--strict)", run->label, vn->missing,
		   vn->missing == 1 ? "" : "s");
	return -1;
}

/* import_csv_rows - the header, then every row of a CSV file */
static int import_csv_rows(struct import_run *run, int fd, int64_t campaign,
			   const char **error_r)
{
	struct csv_reader *reader = csv_reader_new_fd(fd, NULL);
	struct csv_record rec;
	struct csv_error cerr;
	enum csv_status cs;
	char **names = NULL;
	size_t nnames = 0;
	const char *error;
	long addr_col;
	int ret = -1;

	cs = csv_read(reader, &rec, &cerr);
	if (cs == CSV_EOF) {
		errmsg_set(error_r, "%s: empty file: a header row naming the "
			   "columns is needed", run->label);
		goto out;
	}
	if (cs != CSV_OK) {
		errmsg_set(error_r, "%s:%lu:%lu: in the header row: %s",
			   run->label, cerr.line, cerr.column, cerr.reason);
		goto out;
	}
	addr_col = import_header(run, &rec, &names, error_r);
	if (addr_col < 0)
		goto out;
	while (names[nnames] != NULL)
		nnames++;

	/* A column the template needs is missing for every recipient. */
	for (size_t i = 0; i < run->nneeds; i++) {
		bool have = import_is_address_name(run->o->address_column,
						   run->needs[i].name);

		for (size_t k = 0; k < nnames && !have; k++)
			have = strcmp(names[k], run->needs[i].name) == 0;
		if (!have) {
			errmsg_set(error_r,
				   "%s: the template uses {{%s}} (%s) but "
				   "the file has no column '%s'", run->label,
				   run->needs[i].name, run->needs[i].where,
				   run->needs[i].name);
			goto out;
		}
	}

	/* A CSV file's recipients have its columns: known now. */
	if (run->o->names != NULL) {
		for (size_t k = 0; k < nnames; k++)
			varnames_root(run->o->names, names[k],
				      strlen(names[k]), false);
		if (import_names_known(run, error_r) < 0)
			goto out;
	}

	if (store_import_begin(run->st, campaign, run->label,
			       run->o->address_column,
			       (const char *const *)names, nnames, &run->imp,
			       &error) < 0) {
		errmsg_set(error_r, "%s", error);
		goto out;
	}
	while ((cs = csv_read(reader, &rec, &cerr)) != CSV_EOF) {
		if (cs == CSV_FATAL) {
			errmsg_set(error_r, "%s:%lu:%lu: %s", run->label,
				   cerr.line, cerr.column, cerr.reason);
			goto out;
		}
		run->sum->rows++;
		if (cs == CSV_BAD_RECORD) {
			if (import_reject(run, cerr.line, cerr.column,
					  cerr.reason, rec.raw, rec.raw_len,
					  error_r) < 0)
				goto out;
			continue;
		}
		vars_pack_begin(&run->vars);
		for (size_t i = 0; i < rec.nfields; i++) {
			if ((long)i != addr_col)
				vars_pack_str(&run->vars, rec.fields[i].ptr,
					      rec.fields[i].len);
		}
		if (import_add(run, rec.fields[addr_col].ptr,
			       rec.fields[addr_col].len, rec.line, rec.raw,
			       rec.raw_len, error_r) < 0)
			goto out;
	}
	ret = 0;
out:
	csv_reader_free(&reader);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	return ret;
}

/* import_number - a JSON number as the shortest text that reads back */
static void import_number(struct buf *out, const json_t *v)
{
	char tmp[40];

	if (json_is_integer(v)) {
		snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
	} else {
		double d = json_real_value(v);

		for (int prec = 1; prec <= 17; prec++) {
			snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
			if (strtod(tmp, NULL) == d)
				break;
		}
	}
	vars_put_scalar(out, VARS_NUMBER, tmp, strlen(tmp));
}

/* import_pack_json - a JSON value into the packed tree form (vars.h) */
static void import_pack_json(struct buf *out, const json_t *v)
{
	const char *key;
	json_t *member;
	size_t mark, i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		mark = vars_open(out, VARS_OBJECT);
		json_object_foreach((json_t *)v, key, member) {
			vars_put_name(out, key, strlen(key));
			import_pack_json(out, member);
		}
		vars_close(out, mark, (uint32_t)json_object_size(v));
		break;
	case JSON_ARRAY:
		mark = vars_open(out, VARS_LIST);
		for (i = 0; i < json_array_size(v); i++)
			import_pack_json(out, json_array_get(v, i));
		vars_close(out, mark, (uint32_t)json_array_size(v));
		break;
	case JSON_STRING:
		vars_put_scalar(out, VARS_STRING, json_string_value(v),
				json_string_length(v));
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		import_number(out, v);
		break;
	case JSON_TRUE:
		vars_put_scalar(out, VARS_TRUE, NULL, 0);
		break;
	case JSON_FALSE:
		vars_put_scalar(out, VARS_FALSE, NULL, 0);
		break;
	case JSON_NULL:
		vars_put_scalar(out, VARS_NULL, NULL, 0);
		break;
	}
}

/* import_json_get_nocase - a member by name ignoring ASCII case, as CSV */
static json_t *import_json_get_nocase(json_t *obj, const char *name)
{
	const char *key;
	json_t *v, *exact = json_object_get(obj, name);

	if (exact != NULL)
		return exact;
	json_object_foreach(obj, key, v) {
		if (strcasecmp(key, name) == 0)
			return v;
	}
	return NULL;
}

int import_jsonl_line(const char *line, size_t len,
		      const char *address_column,
		      const struct import_need *needs, size_t nneeds,
		      struct buf *vars, struct buf *addr, struct buf *reason,
		      unsigned long *column_r)
{
	json_error_t jerr;
	json_t *obj, *a;

	*column_r = 0;
	buf_reset(reason);
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		/* jansson quotes input bytes in its text: escape them. */
		escape_text(reason, jerr.text, strlen(jerr.text), 200);
		*column_r = (unsigned long)jerr.column;
		return -1;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		buf_append_str(reason, "a line must hold one JSON object");
		return -1;
	}
	a = import_json_get_nocase(obj, address_column);
	if (a == NULL || !json_is_string(a)) {
		json_decref(obj);
		buf_printf(reason, "no \"%s\" string in the object",
			   address_column);
		return -1;
	}
	for (size_t i = 0; i < nneeds; i++) {
		if (json_object_get(obj, needs[i].name) == NULL &&
		    !import_is_address_name(address_column, needs[i].name)) {
			json_decref(obj);
			buf_printf(reason, "no \"%s\", which the template "
				   "uses at %s", needs[i].name, needs[i].where);
			return -1;
		}
	}
	vars_tree_begin(vars);
	import_pack_json(vars, obj);
	buf_reset(addr);
	buf_append(addr, json_string_value(a), json_string_length(a));
	json_decref(obj);
	return 0;
}

/* import_jsonl_row - check and add one line of JSON Lines */
static int import_jsonl_row(struct import_run *run, const char *line,
			    size_t len, unsigned long lineno,
			    const char **error_r)
{
	unsigned long column;

	if (import_jsonl_line(line, len, run->o->address_column, run->needs,
			      run->nneeds, &run->vars, &run->addr,
			      &run->reason, &column) < 0)
		return import_reject(run, lineno, column,
				     buf_cstr(&run->reason), line, len,
				     error_r);
	if (run->o->names != NULL)
		varnames_recipient(run->o->names, run->vars.data,
				   run->vars.len);
	return import_add(run, run->addr.data, run->addr.len, lineno, line,
			  len, error_r);
}

/* import_jsonl_rows - every line of a JSON Lines file */
static int import_jsonl_rows(struct import_run *run, int fd,
			     int64_t campaign, const char **error_r)
{
	struct buf in = BUF_INIT;
	const char *error;
	unsigned long lineno = 1;
	size_t start = 0;
	bool eof = false;
	int ret = -1;

	if (store_import_begin(run->st, campaign, run->label,
			       run->o->address_column, NULL, 0, &run->imp,
			       &error) < 0) {
		errmsg_set(error_r, "%s", error);
		return -1;
	}
	for (;;) {
		char *nl = memchr(in.data ? in.data + start : "", '\n',
				  in.len - start);
		size_t len;
		ssize_t n;

		if (nl == NULL && !eof) {
			/* Keep the partial line, read more after it. */
			if (start > 0) {
				memmove(in.data, in.data + start,
					in.len - start);
				buf_truncate(&in, in.len - start);
				start = 0;
			}
			if (in.len > IMPORT_MAX_LINE) {
				errmsg_set(error_r,
					   "%s:%lu: a line longer than "
					   "%d bytes", run->label, lineno,
					   IMPORT_MAX_LINE);
				goto out;
			}
			buf_reserve(&in, 65536);
			do {
				n = read(fd, in.data + in.len, 65536);
			} while (n < 0 && errno == EINTR);
			if (n < 0) {
				errmsg_set(error_r, "%s: %s", run->label,
					   strerror(errno));
				goto out;
			}
			if (n == 0)
				eof = true;
			in.len += (size_t)n;
			continue;
		}
		if (nl == NULL && start == in.len)
			break;
		len = nl ? (size_t)(nl - (in.data + start)) : in.len - start;
		if (len > 0 && in.data[start + len - 1] == '\r')
			len--;
		if (len > 0) {
			run->sum->rows++;
			if (import_jsonl_row(run, in.data + start, len, lineno,
					     error_r) < 0)
				goto out;
		}
		lineno++;
		start += (nl ? (size_t)(nl - (in.data + start)) + 1 :
			  in.len - start);
	}
	ret = 0;
out:
	buf_free(&in);
	return ret;
}

/* import_format - the format asked for, or the one the name says */
static enum import_format import_format(const struct import_opts *o)
{
	const char *dot = strrchr(o->path, '.');

	if (o->format != IMPORT_AUTO)
		return o->format;
	if (dot != NULL && (strcasecmp(dot, ".jsonl") == 0 ||
			    strcasecmp(dot, ".ndjson") == 0))
		return IMPORT_JSONL;
	return IMPORT_CSV;
}

enum import_result import_file(struct store *st, const struct import_opts *o,
			       struct import_summary *sum, const char **error_r)
{
	struct import_run run = { .o = o, .sum = sum, .st = st,
				  .needs = o->needs, .nneeds = o->nneeds };
	struct store_import_stats stats;
	enum import_result result = IMPORT_ERROR;
	const char *error;
	int64_t campaign_id;
	double start = clock_mono_s();
	int fd = -1, found, rc;

	memset(sum, 0, sizeof(*sum));
	run.label = strcmp(o->path, "-") == 0 ? "<stdin>" : o->path;

	found = store_campaign_find(st, o->campaign, &campaign_id, &error);
	if (found < 0) {
		errmsg_set(error_r, "%s", error);
		return IMPORT_ERROR;
	}
	if (found == 0) {
		errmsg_set(error_r, "no campaign '%s' (create it with 'volley "
			   "campaign create')", o->campaign);
		return IMPORT_ERROR;
	}
	if (strcmp(o->path, "-") == 0) {
		fd = STDIN_FILENO;
	} else {
		fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			errmsg_set(error_r, "%s: %s", o->path, strerror(errno));
			goto out;
		}
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	if (import_format(o) == IMPORT_JSONL)
		rc = import_jsonl_rows(&run, fd, campaign_id, error_r);
	else
		rc = import_csv_rows(&run, fd, campaign_id, error_r);
	if (rc < 0)
		goto out;

	if (sum->rejected > 0 && !o->skip_invalid) {
		/* nothing is imported, but --rejects asked for the rows */
		if (import_close_rejects(&run, error_r) < 0)
			goto out;
		import_place_rejects(&run);
		result = IMPORT_BAD_ROWS;
		goto out;
	}
	/* A JSON Lines file's recipients are known once all are read. */
	if (o->names != NULL && import_format(o) == IMPORT_JSONL &&
	    import_names_known(&run, error_r) < 0)
		goto out;
	/*
	 * The rejects must be safe on disk before the good rows commit (if
	 * the process dies before the rename, they are in the temporary
	 * file).
	 */
	if (import_close_rejects(&run, error_r) < 0)
		goto out;
	if (store_import_commit(&run.imp, sum->rejected, &stats,
				&error) < 0) {
		errmsg_set(error_r, "%s", error);
		goto out;
	}
	import_place_rejects(&run);
	sum->added = stats.added;
	sum->suppressed = stats.suppressed;
	sum->duplicates = stats.duplicates;
	result = IMPORT_OK;
out:
	store_import_abort(&run.imp);
	if (run.rejects != NULL)
		fclose(run.rejects);
	if (run.rejects_tmp[0] != '\0') {
		unlink(run.rejects_tmp);
		sum->rejects_path[0] = '\0';
	}
	if (fd > STDIN_FILENO)
		close(fd);
	buf_free(&run.vars);
	buf_free(&run.addr);
	buf_free(&run.reason);
	buf_free(&run.diag);
	buf_free(&run.line);
	sum->seconds = clock_mono_s() - start;
	return result;
}
