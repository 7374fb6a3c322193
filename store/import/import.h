/*
 * import - recipients from a CSV or JSON Lines file into a campaign, all
 * or nothing.
 *
 * The pipeline behind `volley import` (and bench/bench_import): read the
 * file once, check every row (CSV shape or JSON syntax, UTF-8, the
 * address, and the variables the campaign's template uses outside
 * sections), pack each recipient's variables and add it to the store
 * inside one transaction.  Bad rows are reported with file:line and a
 * reason; unless skip_invalid is set, one bad row means nothing is
 * imported.
 *
 * JSON Lines: one object per line (nested objects and lists allowed), the
 * address a string under the address column's name ("email"); blank
 * lines are skipped.
 *
 * Besides the names every recipient must have, the caller may give every
 * name the template uses anywhere (o->names): the import finds which of
 * them its recipients have (the CSV header, or the members of the JSON
 * Lines rows it takes; see varnames.h), and with o->strict imports
 * nothing if any is in none of them.
 */
#ifndef VOLLEY_IMPORT_H
#define VOLLEY_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct store;
struct varnames;

enum import_format {
	IMPORT_AUTO,	/* JSON Lines for *.jsonl and *.ndjson, else CSV */
	IMPORT_CSV,
	IMPORT_JSONL,
};

/*
 * A variable every recipient must have: one the campaign's template uses
 * outside sections, and where ("body.html:3:7"), for the message.
 */
struct import_need {
	const char *name;
	const char *where;
};

struct import_opts {
	const char *campaign;		/* campaign name */
	const char *path;		/* the file, or "-" for stdin */
	enum import_format format;
	const char *address_column;	/* matched ignoring ASCII case */
	bool skip_invalid;
	/* NULL: FILE.rejects.csv, or volley-rejects.csv for "-".  Written
	 * as PATH.tmp-PID, renamed when the import ends (it is removed if
	 * the import fails) */
	const char *rejects_path;
	/* diag - one line per bad row for the user, "FILE:LINE[:COLUMN]:
	 * reason" with the reason escaped; NULL: none */
	void (*diag)(void *ctx, const char *line);
	void *diag_ctx;
	size_t diag_max;		/* pass on at most this many; 0: all */
	/* what the template needs (the caller reads the campaign's
	 * template: the store knows nothing of templates) */
	const struct import_need *needs;
	size_t nneeds;
	/* every name the template uses, or NULL: afterwards (whatever the
	 * result) varnames_found() tells which the file's recipients
	 * have, and sum->names_missing how many none has */
	struct varnames *names;
	bool strict;		/* a name none has: nothing imported */
};

struct import_summary {
	int64_t rows;		/* data rows read, good and bad */
	int64_t added;
	int64_t duplicates;
	int64_t rejected;
	int64_t suppressed;	/* of added: on the suppression list */
	double seconds;
	char rejects_path[4096];	/* "" if no rejects file was written */
	/* o->names that no recipient of the file has, once it is known
	 * (after the CSV header; after the last JSON Lines row) */
	size_t names_missing;
};

enum import_result {
	IMPORT_ERROR = -1,	/* nothing imported; *error_r says why (and
				 * if o->strict and sum->names_missing, that
				 * is why) */
	IMPORT_OK = 0,		/* committed */
	IMPORT_BAD_ROWS = 1,	/* bad rows (printed), nothing imported */
};

enum import_result import_file(struct store *st, const struct import_opts *o,
			       struct import_summary *sum,
			       const char **error_r);

/*
 * import_jsonl_line - one line of JSON Lines (without its line end) as a
 * recipient, with no store involved: it must hold one JSON object with a
 * string under address_column (ASCII case ignored) and every name in
 * needs (the address's names aside).  Returns 0 with the object packed
 * into vars (the tree form of vars.h) and the address string copied into
 * addr; or -1 with the reason for the rejects in reason and the 1-based
 * column jansson names in *column_r (0 when the fault has no column).
 * import_file reads JSON Lines through it; it stands alone so that it can
 * be tested (and fuzzed) without a store.
 */
int import_jsonl_line(const char *line, size_t len,
		      const char *address_column,
		      const struct import_need *needs, size_t nneeds,
		      struct buf *vars, struct buf *addr, struct buf *reason,
		      unsigned long *column_r);

/*
 * The header rules, shared with `volley loadtest --vars`:
 * import_trim drops the spaces and tabs around a field;
 * import_header_name gives column i's name in a CSV header row, trimmed,
 * or -1 with *error_r ("LABEL:LINE: ...") when it is empty, holds a line
 * break, or repeats an earlier column's.
 */
struct csv_record;
void import_trim(const char **p, size_t *len);
int import_header_name(const struct csv_record *rec, size_t i,
		       const char *label, const char **p_r, size_t *len_r,
		       const char **error_r);

#endif
