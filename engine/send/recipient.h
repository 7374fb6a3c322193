/*
 * recipient - a claimed or listed job as template data: its packed
 * variables with the names of the import it came from.
 *
 * Names are read from the store once per import and kept, so rendering
 * many recipients of one import costs one store read in all.
 */
#ifndef VOLLEY_RECIPIENT_H
#define VOLLEY_RECIPIENT_H

#include <stdint.h>

#include "buf.h"
#include "store.h"
#include "vars_data.h"

struct recipient_import {
	int64_t id;
	struct buf names;	/* packed, as vars.h */
	char *address_column;
};

struct recipient_names {
	struct recipient_import *imports;
	size_t n;
};

/*
 * recipient_data - point vd at job's variables.  job and the cache must
 * outlive vd's use.  Returns 0, or -1 with *error_r.
 */
int recipient_data(struct recipient_names *rn, struct store *st,
		   const struct store_job *job, struct vars_data *vd,
		   const char **error_r);
void recipient_names_free(struct recipient_names *rn);

#endif
