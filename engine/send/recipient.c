/*
 * recipient - a job as template data (see recipient.h).
 */
#include "recipient.h"

#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "xalloc.h"

const struct recipient_import *
recipient_import_get(struct recipient_names *rn, struct store *st, int64_t id,
		     const char **error_r)
{
	struct recipient_import *ri;
	const char *column, *error;
	const void *names;
	size_t len;

	for (size_t i = 0; i < rn->n; i++) {
		if (rn->imports[i]->id == id)
			return rn->imports[i];
	}
	if (store_import_var_names(st, id, &names, &len, &column,
				   &error) < 0) {
		errmsg_set(error_r, "%s", error);
		return NULL;
	}
	/* each on its own, so that those handed out never move */
	ri = xcalloc(1, sizeof(*ri));
	ri->id = id;
	buf_append(&ri->names, names, len);
	ri->address_column = xstrdup(column != NULL ? column : "email");
	rn->imports = xrealloc(rn->imports,
			       (rn->n + 1) * sizeof(*rn->imports));
	rn->imports[rn->n++] = ri;
	return ri;
}

int recipient_vars(const struct recipient_import *ri, const char *addr,
		   size_t addr_len, const void *vars, size_t vars_len,
		   struct vars_data *vd, const char **error_r)
{
	if (vars_data_init(vd, ri->names.data, ri->names.len,
			   ri->address_column, addr, addr_len, vars,
			   vars_len) < 0)
		return errmsg_set(error_r, "the recipient's stored variables "
				  "cannot be read");
	return 0;
}

int recipient_data(struct recipient_names *rn, struct store *st,
		   const struct store_job *job, struct vars_data *vd,
		   const char **error_r)
{
	const struct recipient_import *ri;

	ri = recipient_import_get(rn, st, job->import_id, error_r);
	if (ri == NULL)
		return -1;
	return recipient_vars(ri, job->address, job->address_len, job->vars,
			      job->vars_len, vd, error_r);
}

void recipient_names_free(struct recipient_names *rn)
{
	for (size_t i = 0; i < rn->n; i++) {
		buf_free(&rn->imports[i]->names);
		free(rn->imports[i]->address_column);
		free(rn->imports[i]);
	}
	free(rn->imports);
	memset(rn, 0, sizeof(*rn));
}
