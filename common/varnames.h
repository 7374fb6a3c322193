/*
 * varnames - which of the names a template uses some recipient has.
 *
 * `volley import` and `volley preview` report a name the template uses
 * that no recipient has (a typo, or a column the import left out), with
 * where the template uses it.  A Mustache name inside a section is looked
 * up in what the section entered first and then outward up to the
 * recipient, and JSON Lines recipients hold nested objects and lists, so
 * what can be known without following the data is this, and no more:
 *   - a name outside every section must be a member of a recipient;
 *   - a name inside a section may be a member of a recipient or of any
 *     object nested in one, at any depth (which object a section enters
 *     is not followed), so it is missing only if no object has it;
 *   - each later part of a dotted name (order.id) must be a member of
 *     some nested object;
 *   - the built-in names (vars_builtin) every recipient has.
 * A CSV row is flat: its import's columns are its members, nothing is
 * nested.  The parts of one name may be found in different recipients.
 *
 * Zero-initialise a struct varnames, add the names, feed it what the
 * recipients have until varnames_done() or they run out, read the
 * verdicts, free it.
 */
#ifndef VOLLEY_VARNAMES_H
#define VOLLEY_VARNAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct varnames_name {
	char *name;		/* as the template has it: "order.id" */
	size_t len;
	bool in_section;	/* false: its first part must be a root's */
	bool section;		/* used as {{#name}} or {{^name}} */
	char *where;		/* "body.html:3:7", for the message */
	uint32_t have;		/* part k found: bit k */
	uint32_t all;		/* every part's bit */
};

struct varnames {
	struct varnames_name *v;
	size_t n;
	size_t missing;		/* names not found yet */
};

/*
 * varnames_add - a name to look for (once per name and in_section; the
 * first where is kept).  Built-in names are found at once.
 */
void varnames_add(struct varnames *vn, const char *name, size_t len,
		  bool in_section, bool section, const char *where);

/*
 * varnames_root - some recipient has a member name at its root (ignoring
 * ASCII case if nocase: an import's address column)
 */
void varnames_root(struct varnames *vn, const char *name, size_t len,
		   bool nocase);

/* varnames_columns - an import's packed column names (vars.h), all root */
void varnames_columns(struct varnames *vn, const void *names, size_t len);

/*
 * varnames_recipient - one recipient's packed variables: a tree's members
 * at every depth (a flat row's names are its import's: varnames_columns)
 */
void varnames_recipient(struct varnames *vn, const void *vars, size_t len);

/* varnames_done - every name found: nothing more to learn */
static inline bool varnames_done(const struct varnames *vn)
{
	return vn->missing == 0;
}

/* varnames_found - is name i (0 .. n-1) found? */
static inline bool varnames_found(const struct varnames *vn, size_t i)
{
	return vn->v[i].have == vn->v[i].all;
}

void varnames_free(struct varnames *vn);

#endif
