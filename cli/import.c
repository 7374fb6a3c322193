/*
 * import - recipients from a CSV file into a campaign (see import.h).
 *
 * Costs per row, in order: the CSV reader hands out fields that point into
 * its input buffer, the address check is one pass over the address, the
 * variables are packed into one reused buffer, and the store binds them
 * without copying.  Nothing is allocated per row.
 */
#include "cli/import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/csv.h"
#include "common/mailaddr.h"
#include "common/vars.h"
#include "common/xalloc.h"
#include "store/store.h"

struct import_run {
	const struct import_opts *o;
	const char *label;	/* file name for messages */
	struct import_summary *sum;
	FILE *rejects;
	size_t printed;
	struct buf line;	/* message and rejects scratch */
};

static double import_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* import_trim - drop spaces and tabs around a field */
static void import_trim(const char **p, size_t *len)
{
	while (*len > 0 && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
		(*len)--;
}

/* import_open_rejects - create the rejects file and write its header */
static int import_open_rejects(struct import_run *run, struct buf *err)
{
	const struct import_opts *o = run->o;
	struct import_summary *sum = run->sum;

	if (o->rejects_path != NULL)
		snprintf(sum->rejects_path, sizeof(sum->rejects_path), "%s",
			 o->rejects_path);
	else if (strcmp(o->path, "-") == 0)
		snprintf(sum->rejects_path, sizeof(sum->rejects_path),
			 "volley-rejects.csv");
	else
		snprintf(sum->rejects_path, sizeof(sum->rejects_path),
			 "%s.rejects.csv", o->path);
	run->rejects = fopen(sum->rejects_path, "w");
	if (run->rejects == NULL) {
		buf_printf(err, "%s: %s", sum->rejects_path, strerror(errno));
		sum->rejects_path[0] = '\0';
		return -1;
	}
	fputs("line,reason,record\r\n", run->rejects);
	return 0;
}

/*
 * import_reject - report one bad row: on the diagnostics stream (escaped,
 * as it is data from the file) and in the rejects file (exact bytes).
 */
static int import_reject(struct import_run *run, unsigned long line,
			 unsigned long column, const char *reason,
			 const char *raw, size_t raw_len, struct buf *err)
{
	const struct import_opts *o = run->o;

	run->sum->rejected++;
	if (o->diag != NULL && (o->diag_max == 0 || run->printed < o->diag_max)) {
		if (column > 0)
			fprintf(o->diag, "%s:%lu:%lu: %s\n", run->label, line,
				column, reason);
		else
			fprintf(o->diag, "%s:%lu: %s\n", run->label, line,
				reason);
		run->printed++;
	}
	if (run->rejects == NULL && (o->skip_invalid || o->rejects_path) &&
	    import_open_rejects(run, err) < 0)
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
			buf_printf(err, "%s: %s", run->sum->rejects_path,
				   strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * import_header - check the header row, find the address column and make
 * the variable names.  Returns the address column's index, or -1.
 */
static long import_header(struct import_run *run,
			  const struct csv_record *rec, char ***names_r,
			  struct buf *err)
{
	const char *want = run->o->address_column;
	char **names = xcalloc(rec->nfields + 1, sizeof(*names));
	long addr_col = -1;
	size_t nnames = 0;

	for (size_t i = 0; i < rec->nfields; i++) {
		const char *p = rec->fields[i].ptr;
		size_t len = rec->fields[i].len;

		import_trim(&p, &len);
		if (len == 0) {
			buf_printf(err, "%s:%lu: column %zu of the header has "
				   "no name", run->label, rec->line, i + 1);
			goto out_fail;
		}
		if (memchr(p, '\n', len) || memchr(p, '\r', len)) {
			buf_printf(err, "%s:%lu: column %zu of the header has "
				   "a line break in its name", run->label,
				   rec->line, i + 1);
			goto out_fail;
		}
		for (size_t k = 0; k < i; k++) {
			const char *q = rec->fields[k].ptr;
			size_t qlen = rec->fields[k].len;

			import_trim(&q, &qlen);
			if (qlen == len && memcmp(p, q, len) == 0) {
				buf_printf(err, "%s:%lu: the header names "
					   "column '", run->label, rec->line);
				cli_escape(err, p, len, 100);
				buf_printf(err, "' twice (columns %zu and "
					   "%zu)", k + 1, i + 1);
				goto out_fail;
			}
		}
		if (addr_col < 0 && strlen(want) == len &&
		    strncasecmp(p, want, len) == 0) {
			addr_col = (long)i;
			continue;
		}
		names[nnames++] = xstrndup(p, len);
	}
	if (addr_col < 0) {
		buf_printf(err, "%s:%lu: no '%s' column in the header (it has: ",
			   run->label, rec->line, want);
		for (size_t i = 0; i < rec->nfields; i++) {
			if (i > 0)
				buf_append_str(err, ", ");
			cli_escape(err, rec->fields[i].ptr,
				   rec->fields[i].len, 60);
		}
		buf_append_str(err, "); name the address column with "
			       "--address-column");
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

enum import_result import_csv(struct store *st, const struct import_opts *o,
			      struct import_summary *sum, struct buf *err)
{
	struct import_run run = { .o = o, .sum = sum };
	struct store_import *imp = NULL;
	struct store_import_stats stats;
	struct csv_reader *reader;
	struct csv_record rec;
	struct csv_error cerr;
	struct buf vars = BUF_INIT;
	enum csv_status cs;
	enum import_result result = IMPORT_ERROR;
	char **names = NULL;
	size_t nnames = 0;
	const char *error;
	int64_t campaign_id;
	long addr_col;
	double start = import_now();
	int fd, found;

	memset(sum, 0, sizeof(*sum));
	run.label = strcmp(o->path, "-") == 0 ? "<stdin>" : o->path;

	found = store_campaign_find(st, o->campaign, &campaign_id, &error);
	if (found < 0) {
		buf_append_str(err, error);
		return IMPORT_ERROR;
	}
	if (found == 0) {
		buf_printf(err, "no campaign '%s' (create it with 'volley "
			   "campaign create')", o->campaign);
		return IMPORT_ERROR;
	}

	if (strcmp(o->path, "-") == 0) {
		fd = STDIN_FILENO;
	} else {
		fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			buf_printf(err, "%s: %s", o->path, strerror(errno));
			return IMPORT_ERROR;
		}
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	reader = csv_reader_new_fd(fd, NULL);

	cs = csv_read(reader, &rec, &cerr);
	if (cs == CSV_EOF) {
		buf_printf(err, "%s: empty file: a header row naming the "
			   "columns is needed", run.label);
		goto out;
	}
	if (cs != CSV_OK) {
		buf_printf(err, "%s:%lu:%lu: in the header row: %s", run.label,
			   cerr.line, cerr.column, cerr.reason);
		goto out;
	}
	addr_col = import_header(&run, &rec, &names, err);
	if (addr_col < 0)
		goto out;
	while (names[nnames] != NULL)
		nnames++;

	if (store_import_begin(st, campaign_id, run.label,
			       o->address_column, (const char *const *)names,
			       nnames, &imp, &error) < 0) {
		buf_append_str(err, error);
		goto out;
	}

	while ((cs = csv_read(reader, &rec, &cerr)) != CSV_EOF) {
		const char *addr, *why;
		size_t addr_len;
		unsigned flags;

		if (cs == CSV_FATAL) {
			buf_printf(err, "%s:%lu:%lu: %s", run.label, cerr.line,
				   cerr.column, cerr.reason);
			goto out;
		}
		sum->rows++;
		if (cs == CSV_BAD_RECORD) {
			if (import_reject(&run, cerr.line, cerr.column,
					  cerr.reason, rec.raw, rec.raw_len,
					  err) < 0)
				goto out;
			continue;
		}
		addr = rec.fields[addr_col].ptr;
		addr_len = rec.fields[addr_col].len;
		import_trim(&addr, &addr_len);
		if (!mailaddr_check(addr, addr_len, &flags, &why)) {
			struct buf reason = BUF_INIT;

			buf_append_str(&reason, "invalid address '");
			cli_escape(&reason, addr, addr_len, 100);
			buf_printf(&reason, "': %s", why);
			found = import_reject(&run, rec.line, 0,
					      buf_cstr(&reason), rec.raw,
					      rec.raw_len, err);
			buf_free(&reason);
			if (found < 0)
				goto out;
			continue;
		}
		/* Once a row is bad nothing will be kept: just keep checking. */
		if (sum->rejected > 0 && !o->skip_invalid)
			continue;
		vars_pack_begin(&vars);
		for (size_t i = 0; i < rec.nfields; i++) {
			if ((long)i != addr_col)
				vars_pack_str(&vars, rec.fields[i].ptr,
					      rec.fields[i].len);
		}
		if (store_import_add(imp, addr, addr_len,
				     (flags & MAILADDR_SMTPUTF8) ?
				     STORE_ADDR_SMTPUTF8 : 0,
				     vars.data, vars.len, &error) < 0) {
			buf_printf(err, "%s:%lu: %s", run.label, rec.line,
				   error);
			goto out;
		}
	}

	if (sum->rejected > 0 && !o->skip_invalid) {
		result = IMPORT_BAD_ROWS;
		goto out;
	}
	/* The rejects must be safe on disk before the good rows commit. */
	if (run.rejects != NULL) {
		found = fclose(run.rejects);
		run.rejects = NULL;
		if (found != 0) {
			buf_printf(err, "%s: %s", sum->rejects_path,
				   strerror(errno));
			goto out;
		}
	}
	if (store_import_commit(&imp, sum->rejected, &stats, &error) < 0) {
		buf_append_str(err, error);
		goto out;
	}
	sum->added = stats.added;
	sum->duplicates = stats.duplicates;
	result = IMPORT_OK;
out:
	store_import_abort(&imp);
	if (run.rejects != NULL)
		fclose(run.rejects);
	csv_reader_free(&reader);
	if (fd != STDIN_FILENO)
		close(fd);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	buf_free(&vars);
	buf_free(&run.line);
	sum->seconds = import_now() - start;
	return result;
}
