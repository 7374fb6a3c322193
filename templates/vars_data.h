/*
 * vars_data - a recipient's stored variables as template data.
 *
 * Connects the job store's packed variables (common/vars.h) to the
 * renderer's lookup interface (struct tmpl_data) without unpacking them:
 * a lookup walks the blob in place.  For a CSV row (flat format) the names
 * come from the row's import; the recipient's address is a variable too,
 * under the import's address column name (and under "email"), since the
 * import does not store it twice.
 *
 * A struct vars_data lives on the caller's stack or in a worker's state and
 * is re-initialised for each recipient: nothing is allocated.
 */
#ifndef VOLLEY_VARS_DATA_H
#define VOLLEY_VARS_DATA_H

#include <stddef.h>

#include "tmpl.h"
#include "vars.h"

#define VARS_DATA_FLAT_CACHE 32

struct vars_data {
	struct tmpl_data data;	/* give &vd.data to tmpl_render */
	/* private */
	const void *names;
	size_t names_len;
	const char *address_column;
	const char *address;
	size_t address_len;
	const void *vars;
	size_t vars_len;
	const char *unsubscribe_url;	/* NULL: not given */
	size_t unsubscribe_url_len;
	struct vars_value tree_root;
	/*
	 * A CSV row's names and values, decoded at the first lookup so that
	 * the many lookups of one message compare names, not re-decode
	 * the blob; nflat is -1 before that, and -2 for rows too wide to
	 * cache (those are walked instead).
	 */
	struct {
		const char *name, *value;
		size_t name_len, value_len;
	} flat[VARS_DATA_FLAT_CACHE];
	int nflat;
	/* the last list item read, so a section walks a list in O(n) */
	const unsigned char *list_body;
	size_t list_index;
	const unsigned char *list_pos;
};

/*
 * vars_data_init - point vd at one recipient.  names/address_column are
 * the import's (ignored for tree blobs); all pointers must stay valid
 * while vd is used.  Returns -1 if vars is not a blob we know.
 */
int vars_data_init(struct vars_data *vd, const void *names,
		   size_t names_len, const char *address_column,
		   const char *address, size_t address_len, const void *vars,
		   size_t vars_len);

/*
 * vars_data_set_unsubscribe_url - give the recipient vd points at (after
 * vars_data_init) its {{unsubscribe_url}}; url must stay valid while vd
 * is used.  It wins over a variable of that name in the row.
 */
void vars_data_set_unsubscribe_url(struct vars_data *vd, const char *url,
				   size_t len);

#endif
