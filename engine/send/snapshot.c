/*
 * snapshot - a campaign's template folder as files in memory (see
 * snapshot.h).
 */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "errmsg.h"
#include "xalloc.h"

/* snapshot_add - keep a copy of one file */
static void snapshot_add(struct snapshot *s, const char *name,
			 const void *data, size_t len)
{
	struct store_file *f;
	void *copy = xmalloc(len);

	memcpy(copy, data, len);
	s->files = xrealloc(s->files, (s->nfiles + 1) * sizeof(*s->files));
	f = &s->files[s->nfiles++];
	f->name = xstrdup(name);
	f->data = copy;
	f->len = len;
}

/* snapshot_read_file - the whole of dir/name into b */
static int snapshot_read_file(int dirfd, const char *dir, const char *name,
			      struct buf *b, const char **error_r)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	char chunk[65536];
	ssize_t n;

	buf_reset(b);
	if (fd < 0) {
		errmsg_set(error_r, "%s/%s: %s", dir, name, strerror(errno));
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(b, chunk, (size_t)n);
	close(fd);
	if (n < 0) {
		errmsg_set(error_r, "%s/%s: %s", dir, name, strerror(errno));
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
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, 0) < 0) {
			errmsg_set(error_r, "%s/%s: %s", dir, de->d_name,
				   strerror(errno));
			goto out;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		total += (size_t)sb.st_size;
		if (total > SNAPSHOT_MAX_BYTES ||
		    s->nfiles == SNAPSHOT_MAX_FILES) {
			errmsg_set(error_r,
				   "%s: the template folder holds more "
				   "than %u MB or %u files", dir,
				   SNAPSHOT_MAX_BYTES >> 20, SNAPSHOT_MAX_FILES);
			goto out;
		}
		if (snapshot_read_file(dirfd(d), dir, de->d_name, &content,
				       error_r) < 0)
			goto out;
		snapshot_add(s, de->d_name, content.data, content.len);
	}
	ret = 0;
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
