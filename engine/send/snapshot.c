/*
 * snapshot - a campaign's template folder as files in memory (see
 * snapshot.h).
 */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "errmsg.h"
#include "escape.h"
#include "xalloc.h"

/* snapshot_add - keep a copy of one file */
static void snapshot_add(struct snapshot *s, const char *name,
			 const void *data, size_t len)
{
	struct store_file *f;
	void *copy = xmalloc(len);

	if (len > 0)	/* an empty file has no data to copy */
		memcpy(copy, data, len);
	s->files = xrealloc(s->files, (s->nfiles + 1) * sizeof(*s->files));
	f = &s->files[s->nfiles++];
	f->name = xstrdup(name);
	f->data = copy;
	f->len = len;
}

/*
 * snapshot_open - open the folder's entry name for reading.  Returns 1
 * with *fd_r, 0 for an entry that is not a file (a folder, a FIFO: passed
 * over, as ever), or -1 with *error_r.
 *
 * A symbolic link is followed only to a file beside it, named without a
 * '/', that is no link itself: anything else could bring a file from
 * outside the folder into the campaign (and into every message, as an
 * attachment).  Every check holds for the file actually read: the target
 * is opened with O_NOFOLLOW relative to the folder, and the open file is
 * checked again, so an entry swapped for a link after it was looked at
 * cannot lead out.
 */
static int snapshot_open(int dfd, const char *dir, const char *name,
			 int *fd_r, const char **error_r)
{
	char target[NAME_MAX + 1];
	const char *open_name = name;
	struct buf shown = BUF_INIT, to = BUF_INIT;
	struct stat sb;
	ssize_t n;
	int fd, ret = -1;

	escape_text(&shown, name, strlen(name), 300);
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		errmsg_set(error_r, "%s/%s: %s", dir, buf_cstr(&shown),
			   strerror(errno));
		goto out;
	}
	if (S_ISLNK(sb.st_mode)) {
		n = readlinkat(dfd, name, target, sizeof(target));
		if (n < 0 && errno == EINVAL) {
			/* no longer a link */
			errmsg_set(error_r, "%s/%s changed while it was read",
				   dir, buf_cstr(&shown));
			goto out;
		}
		if (n < 0) {
			errmsg_set(error_r, "%s/%s: %s", dir,
				   buf_cstr(&shown), strerror(errno));
			goto out;
		}
		escape_text(&to, target, (size_t)n, 300);
		if ((size_t)n == sizeof(target) || n == 0 ||
		    memchr(target, '/', (size_t)n) != NULL ||
		    (n == 1 && target[0] == '.') ||
		    (n == 2 && target[0] == '.' && target[1] == '.')) {
			errmsg_set(error_r, "%s/%s is a symbolic link to "
				   "'%s'; a template may link only to a file "
				   "in its own folder, by a name without '/'",
				   dir, buf_cstr(&shown), buf_cstr(&to));
			goto out;
		}
		target[n] = '\0';
		if (fstatat(dfd, target, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			errmsg_set(error_r, "%s/%s is a symbolic link to "
				   "'%s': %s", dir, buf_cstr(&shown),
				   buf_cstr(&to), strerror(errno));
			goto out;
		}
		if (S_ISLNK(sb.st_mode)) {
			errmsg_set(error_r, "%s/%s is a symbolic link to "
				   "'%s', itself a symbolic link; a template "
				   "may link only to a file in its own folder",
				   dir, buf_cstr(&shown), buf_cstr(&to));
			goto out;
		}
		open_name = target;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = 0;
		goto out;
	}
	/* O_NONBLOCK: a FIFO swapped in must not hang the open */
	fd = openat(dfd, open_name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		*fd_r = fd;
		ret = 1;
		goto out;
	}
	if (fd >= 0 || errno == ELOOP)
		errmsg_set(error_r, "%s/%s changed while it was read", dir,
			   buf_cstr(&shown));
	else
		errmsg_set(error_r, "%s/%s: %s", dir, buf_cstr(&shown),
			   strerror(errno));
	if (fd >= 0)
		close(fd);
out:
	buf_free(&shown);
	buf_free(&to);
	return ret;
}

/*
 * snapshot_read_file - the whole of fd into b.  Returns 0, 1 if it holds
 * more than max bytes (it may have grown since it was looked at), or -1
 * with *error_r.
 */
static int snapshot_read_file(int fd, const char *dir, const char *name,
			      size_t max, struct buf *b, const char **error_r)
{
	char chunk[65536];
	struct stat sb;
	ssize_t n;

	buf_reset(b);
	if (fstat(fd, &sb) == 0 && (uintmax_t)sb.st_size > max)
		return 1;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if ((size_t)n > max - b->len)
			return 1;
		buf_append(b, chunk, (size_t)n);
	}
	if (n < 0) {
		struct buf shown = BUF_INIT;

		escape_text(&shown, name, strlen(name), 300);
		errmsg_set(error_r, "%s/%s: %s", dir, buf_cstr(&shown),
			   strerror(errno));
		buf_free(&shown);
		return -1;
	}
	return 0;
}

int snapshot_read_dir(struct snapshot *s, const char *dir,
		      const char **error_r)
{
	struct buf content = BUF_INIT;
	struct dirent *de;
	size_t total = 0;
	DIR *d = opendir(dir);
	int ret = -1;

	memset(s, 0, sizeof(*s));
	if (d == NULL) {
		errmsg_set(error_r, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		int fd, rc;

		if (de->d_name[0] == '.')
			continue;
		rc = snapshot_open(dirfd(d), dir, de->d_name, &fd, error_r);
		if (rc < 0)
			goto out;
		if (rc == 0)
			continue;
		if (s->nfiles == SNAPSHOT_MAX_FILES) {
			close(fd);
			goto too_much;
		}
		rc = snapshot_read_file(fd, dir, de->d_name,
					SNAPSHOT_MAX_BYTES - total, &content,
					error_r);
		close(fd);
		if (rc < 0)
			goto out;
		if (rc > 0)
			goto too_much;
		/* keys belong in volley.cfg's files, never in the store
		 * (where every backup and copy of it would carry them) */
		if (content.len > 0 &&
		    memmem(content.data, content.len, "PRIVATE KEY-----",
			   16) != NULL) {
			errmsg_set(error_r, "%s/%s: a private key: it is not "
				   "copied into the store; keep keys outside "
				   "the template folder (volley.cfg's dkim "
				   "key_file)", dir, de->d_name);
			goto out;
		}
		total += content.len;
		snapshot_add(s, de->d_name, content.data, content.len);
	}
	ret = 0;
	goto out;
too_much:
	errmsg_set(error_r, "%s: the template folder holds more than %u MB "
		   "or %u files", dir, SNAPSHOT_MAX_BYTES >> 20,
		   SNAPSHOT_MAX_FILES);
out:
	closedir(d);
	buf_free(&content);
	if (ret < 0)
		snapshot_free(s);
	return ret;
}

static int snapshot_store_file(void *ctx, const struct store_file *f)
{
	snapshot_add(ctx, f->name, f->data, f->len);
	return 0;
}

int snapshot_read_store(struct snapshot *s, struct store *st,
			int64_t campaign_id, const char **error_r)
{
	const char *error;

	memset(s, 0, sizeof(*s));
	if (store_campaign_files(st, campaign_id, snapshot_store_file, s,
				 &error) < 0) {
		errmsg_set(error_r, "%s", error);
		snapshot_free(s);
		return -1;
	}
	return 0;
}

void snapshot_free(struct snapshot *s)
{
	for (size_t i = 0; i < s->nfiles; i++) {
		free((char *)s->files[i].name);
		free((void *)s->files[i].data);
	}
	free(s->files);
	memset(s, 0, sizeof(*s));
}

static int snapshot_lookup(void *ctx, const char *name, const void **data,
			   size_t *len)
{
	const struct snapshot *s = ctx;

	for (size_t i = 0; i < s->nfiles; i++) {
		if (strcmp(s->files[i].name, name) == 0) {
			*data = s->files[i].data;
			*len = s->files[i].len;
			return 1;
		}
	}
	return 0;
}

int snapshot_load(const struct snapshot *s, struct message_tmpl **mt_r,
		  const char **error_r)
{
	return message_tmpl_load(snapshot_lookup, (void *)s, mt_r, error_r);
}
