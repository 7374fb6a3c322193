/*
 * recipient - a job of the store as data for a template: its packed
 * variables read with the names of the import it came from.  The one
 * join between store/ and templates/ for a recipient, used by the
 * campaign run's workers and by `volley preview`.
 *
 * An import's names are read from the store once and kept, so rendering
 * many recipients of one import costs one store read in all.  The cache
 * is filled by the thread that owns the store (the run's store writer);
 * the imports it hands out stay where they are until recipient_names_free,
 * so workers may read them without a lock.
 */
#ifndef VOLLEY_RECIPIENT_H
#define VOLLEY_RECIPIENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"
#include "vars_data.h"

/* The variable names of one import. */
struct recipient_import {
	int64_t id;
	struct buf names;	/* packed, as vars.h */
	char *address_column;
};

/* The imports met so far; zero-initialise, free with recipient_names_free. */
struct recipient_names {
	struct recipient_import **imports;
	size_t n;
};

/*
 * recipient_import_get - the names of import id, read from st the first
 * time.  NULL with *error_r when the store cannot say.
 */
const struct recipient_import *
recipient_import_get(struct recipient_names *rn, struct store *st, int64_t id,
		     const char **error_r);

/*
 * recipient_vars - point vd at one recipient's variables (addr and the
 * packed vars, as the store keeps them) named by ri.  ri, addr and vars
 * must outlive vd's use.  Returns 0, or -1 with *error_r when the stored
 * variables cannot be read.
 */
int recipient_vars(const struct recipient_import *ri, const char *addr,
		   size_t addr_len, const void *vars, size_t vars_len,
		   struct vars_data *vd, const char **error_r);

/* recipient_data - both of the above for a job from the store */
int recipient_data(struct recipient_names *rn, struct store *st,
		   const struct store_job *job, struct vars_data *vd,
		   const char **error_r);

void recipient_names_free(struct recipient_names *rn);

/*
 * recipient_file_read - a recipient's attachment: path (relative, as
 * the template rendered it) read from the folder open as dir_fd into
 * out.  Nothing outside the folder is ever read: ".." and absolute
 * paths and symbolic links that lead out are refused.  Returns 0; -1
 * with *error_r naming the path when the file is missing or refused (for
 * good), -2 when this machine failed to read it (out of descriptors or
 * memory, an I/O error: worth trying again later).
 */
#define RECIPIENT_FILE_MAX (64 * 1024 * 1024)
int recipient_file_read(int dir_fd, const char *path, struct buf *out,
			const char **error_r);

#endif
