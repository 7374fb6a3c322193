/*
 * recipient - a job as template data (see recipient.h).
 */
#include "recipient.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* recipient_open_beneath - path under dir_fd, refusing any way out:
 * openat2's RESOLVE_BENEATH, or where the kernel lacks it (before 5.6)
 * a walk that follows no symbolic link at all */
static int recipient_open_beneath(int dir_fd, const char *path)
{
	struct open_how how = {
		/* O_NONBLOCK: a FIFO must not hang the worker (it is then
		 * refused as not a regular file) */
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	char part[256];
	const char *p = path, *slash;
	int fd, next;

	fd = (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	fd = dup(dir_fd);
	while (fd >= 0 && (slash = strchr(p, '/')) != NULL) {
		if ((size_t)(slash - p) >= sizeof(part)) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(part, p, (size_t)(slash - p));
		part[slash - p] = '\0';
		next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			      O_CLOEXEC);
		close(fd);
		fd = next;
		p = slash + 1;
	}
	if (fd < 0)
		return -1;
	next = openat(fd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		      O_NONBLOCK);
	close(fd);
	return next;
}

int recipient_file_read(int dir_fd, const char *path, struct buf *out,
			const char **error_r)
{
	struct stat st;
	ssize_t n;
	int fd;

	buf_reset(out);
	fd = recipient_open_beneath(dir_fd, path);
	if (fd < 0) {
		int e = errno;

		errmsg_set(error_r, "attachment %s: %s", path,
			   e == EXDEV || e == ELOOP ?
			   "leads out of the campaign's files folder" :
			   strerror(e));
		/* the file's own fault, or this machine's for now */
		return e == ENOENT || e == ENOTDIR || e == EXDEV ||
		       e == ELOOP || e == EACCES || e == ENAMETOOLONG ||
		       e == EISDIR ? -1 : -2;
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		errmsg_set(error_r, "attachment %s: %s", path, strerror(e));
		return -2;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > RECIPIENT_FILE_MAX) {
		close(fd);
		return errmsg_set(error_r, "attachment %s: %s", path,
				  !S_ISREG(st.st_mode) ? "not a regular file" :
				  "larger than 64 MB");
	}
	buf_reserve(out, (size_t)st.st_size + 1);
	while ((n = read(fd, out->data + out->len,
			 out->cap - out->len - 1)) > 0) {
		out->len += (size_t)n;
		if (out->len > RECIPIENT_FILE_MAX) {
			/* it grew while we read it */
			close(fd);
			return errmsg_set(error_r, "attachment %s: larger "
					  "than 64 MB", path);
		}
		if (out->len + 1 >= out->cap)
			buf_reserve(out, 65536);
	}
	if (n < 0) {
		int e = errno;

		close(fd);
		errmsg_set(error_r, "attachment %s: %s", path, strerror(e));
		return -2;	/* an I/O error: try again later */
	}
	close(fd);
	out->data[out->len] = '\0';
	return 0;
}
