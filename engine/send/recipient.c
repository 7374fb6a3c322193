/*
 * recipient - a job as template data (see recipient.h).
 */
#include "recipient.h"

#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "xalloc.h"

/* recipient_import - the cached names of an import, read on first use */
static struct recipient_import *recipient_import(struct recipient_names *rn,
						 struct store *st, int64_t id,
						 const char **error_r)
{
	struct recipient_import *ri;
	const char *addr_col, *error;
	const void *names;
	size_t len;

	for (size_t i = 0; i < rn->n; i++) {
		if (rn->imports[i].id == id)
			return &rn->imports[i];
	}
	if (store_import_var_names(st, id, &names, &len, &addr_col,
				   &error) < 0) {
		errmsg_set(error_r, "%s", error);
		return NULL;
	}
	rn->imports = xrealloc(rn->imports,
			       (rn->n + 1) * sizeof(*rn->imports));
	ri = &rn->imports[rn->n++];
	memset(ri, 0, sizeof(*ri));
	ri->id = id;
	buf_append(&ri->names, names, len);
	ri->address_column = xstrdup(addr_col);
	return ri;
}

int recipient_data(struct recipient_names *rn, struct store *st,
		   const struct store_job *job, struct vars_data *vd,
		   const char **error_r)
{
	struct recipient_import *ri = recipient_import(rn, st, job->import_id,
						       error_r);

	if (ri == NULL)
		return -1;
	if (vars_data_init(vd, ri->names.data, ri->names.len,
			   ri->address_column, job->address, job->address_len,
			   job->vars, job->vars_len) < 0) {
		errmsg_set(error_r, "its stored variables are damaged");
		return -1;
	}
	return 0;
}

void recipient_names_free(struct recipient_names *rn)
{
	for (size_t i = 0; i < rn->n; i++) {
		buf_free(&rn->imports[i].names);
		free(rn->imports[i].address_column);
	}
	free(rn->imports);
	memset(rn, 0, sizeof(*rn));
}
