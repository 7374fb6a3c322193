/*
 * mailbox - the messages of a Maildir, an mbox, one file or a stream
 * (see mailbox.h for the formats and the bounds).
 */
#include "mailbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "errmsg.h"
#include "xalloc.h"

/* a '>' run longer than this before "From " is not unquoted */
#define MBOX_QUOTE_MAX 64

struct maildir_entry {
	const char *sub;	/* "cur" or "new" */
	char *name;
};

struct mailbox {
	enum mailbox_kind kind;
	char *path;		/* as given, or the stream's name */
	FILE *f;		/* mbox, stream */
	bool own_f;
	bool done;
	struct buf msg;		/* the message given out */
	struct buf where;

	/* Maildir: its files, in name order */
	struct maildir_entry *files;
	size_t nfiles, next;

	/* mbox */
	long line;		/* lines read so far */
	long start_line;	/* the separator of the next message */
	bool at_separator;	/* a "From " line was read, not yet used */
};

enum mailbox_kind mailbox_kind(const struct mailbox *mb)
{
	return mb->kind;
}

const char *mailbox_kind_name(enum mailbox_kind kind)
{
	switch (kind) {
	case MAILBOX_MAILDIR:
		return "Maildir";
	case MAILBOX_MBOX:
		return "mbox";
	case MAILBOX_FILE:
		return "file";
	case MAILBOX_STREAM:
		return "stream";
	}
	return "?";
}

/* --- Maildir ------------------------------------------------------------- */

static bool is_dir(const char *path, const char *sub)
{
	struct buf p = BUF_INIT;
	struct stat st;
	bool ret;

	buf_printf(&p, "%s/%s", path, sub);
	ret = stat(buf_cstr(&p), &st) == 0 && S_ISDIR(st.st_mode);
	buf_free(&p);
	return ret;
}

static int maildir_entry_cmp(const void *a, const void *b)
{
	const struct maildir_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->sub, y->sub);
}

/* maildir_list - add the regular files of path/sub to mb->files */
static int maildir_list(struct mailbox *mb, const char *sub,
			size_t *cap, const char **error_r)
{
	struct buf p = BUF_INIT;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	buf_printf(&p, "%s/%s", mb->path, sub);
	d = opendir(buf_cstr(&p));
	if (d == NULL) {
		ret = errmsg_set(error_r, "%s: %s", buf_cstr(&p),
				 strerror(errno));
		buf_free(&p);
		return ret;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;	/* gone, or not a message */
		if (mb->nfiles == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			mb->files = xrealloc(mb->files,
					     *cap * sizeof(*mb->files));
		}
		mb->files[mb->nfiles].sub = sub;
		mb->files[mb->nfiles].name = xstrdup(de->d_name);
		mb->nfiles++;
	}
	if (errno != 0)
		ret = errmsg_set(error_r, "%s: %s", buf_cstr(&p),
				 strerror(errno));
	closedir(d);
	buf_free(&p);
	return ret;
}

/*
 * read_fd - up to MAILBOX_MESSAGE_MAX bytes of fd into b; *more_r when
 * there was more (then not kept).  -1 with errno on a read error.
 */
static int read_fd(int fd, struct buf *b, bool *more_r, size_t *seen_r)
{
	char chunk[65536];
	ssize_t n;

	*more_r = false;
	*seen_r = 0;
	buf_reset(b);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		*seen_r += (size_t)n;
		if (*seen_r > MAILBOX_MESSAGE_MAX) {
			*more_r = true;
			return 0;
		}
		buf_append(b, chunk, (size_t)n);
	}
	return 0;
}

/* read_file - a whole file as one message (Maildir, single file) */
static int read_file(struct mailbox *mb, const char *path,
		     struct mailbox_msg *msg, const char **error_r)
{
	struct stat st;
	bool more;
	size_t seen;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(error_r, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return errmsg_set(error_r, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return errmsg_set(error_r, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > MAILBOX_MESSAGE_MAX) {
		close(fd);
		msg->skipped = true;
		msg->len = (size_t)st.st_size;
		return 1;
	}
	if (read_fd(fd, &mb->msg, &more, &seen) < 0) {
		int e = errno;

		close(fd);
		return errmsg_set(error_r, "%s: %s", path, strerror(e));
	}
	close(fd);
	if (more) {	/* it grew while read */
		msg->skipped = true;
		msg->len = seen;
		return 1;
	}
	msg->data = buf_cstr(&mb->msg);
	msg->len = mb->msg.len;
	return 1;
}

static int maildir_next(struct mailbox *mb, struct mailbox_msg *msg,
			const char **error_r)
{
	const struct maildir_entry *e;

	if (mb->next >= mb->nfiles)
		return 0;
	e = &mb->files[mb->next++];
	buf_reset(&mb->where);
	buf_printf(&mb->where, "%s/%s/%s", mb->path, e->sub, e->name);
	msg->where = buf_cstr(&mb->where);
	return read_file(mb, msg->where, msg, error_r);
}

/* --- mbox ---------------------------------------------------------------- */

/*
 * The facts of one line that decide what it is, kept whatever its
 * length: how many '>' it starts with and whether "From " follows them,
 * whether it is empty (nothing before its LF or CRLF).
 */
struct mbox_line {
	size_t len;		/* with its line end */
	size_t quotes;		/* leading '>' */
	bool from;		/* "From " after the quotes */
	bool empty;
	bool eof;		/* no line: the end of the file */
	bool cut;		/* not all kept: the message passed the max */
};

/*
 * mbox_read_line - one line, appended to mb->msg if keep is set and as
 * long as the message stays within MAILBOX_MESSAGE_MAX (else l->cut).
 */
static int mbox_read_line(struct mailbox *mb, struct mbox_line *l,
			  bool keep, const char **error_r)
{
	char head[5];
	size_t nhead = 0;
	bool in_quotes = true;
	int c;

	memset(l, 0, sizeof(*l));
	while ((c = getc_unlocked(mb->f)) != EOF) {
		l->len++;
		if (keep && mb->msg.len <= MAILBOX_MESSAGE_MAX)
			buf_putc(&mb->msg, (char)c);
		else
			l->cut = true;
		if (c == '\n')
			break;
		if (in_quotes && c == '>' && l->quotes < MBOX_QUOTE_MAX) {
			l->quotes++;
			continue;
		}
		in_quotes = false;
		if (nhead < sizeof(head))
			head[nhead++] = (char)c;
	}
	if (c == EOF && ferror(mb->f))
		return errmsg_set(error_r, "%s:%ld: %s", mb->path,
				  mb->line + 1, strerror(errno));
	if (l->len == 0) {
		l->eof = true;
		return 0;
	}
	mb->line++;
	l->from = nhead == 5 && memcmp(head, "From ", 5) == 0;
	/* "\n", "\r\n", or the last line with no end at all */
	l->empty = l->quotes == 0 && l->len <= 2 &&
		   (nhead == 0 || (nhead == 1 && head[0] == '\r'));
	return 0;
}

static int mbox_next(struct mailbox *mb, struct mailbox_msg *msg,
		     const char **error_r)
{
	struct mbox_line l;
	size_t seen = 0, line_start = 0, prev_start = 0;
	bool prev_empty = false, skipped = false;

	if (mb->done)
		return 0;
	buf_reset(&mb->msg);
	if (!mb->at_separator) {
		/* the first line: mailbox_open saw it start with "From " */
		if (mbox_read_line(mb, &l, false, error_r) < 0 ||
		    l.eof) {
			mb->done = true;
			return l.eof ? 0 : -1;
		}
		mb->start_line = mb->line;
	}
	mb->at_separator = false;
	buf_reset(&mb->where);
	buf_printf(&mb->where, "%s:%ld", mb->path, mb->start_line);
	msg->where = buf_cstr(&mb->where);

	for (;;) {
		line_start = mb->msg.len;
		if (mbox_read_line(mb, &l, !skipped, error_r) < 0) {
			mb->done = true;
			return errmsg_set(error_r, "%s (in the message from "
					  "line %ld)", *error_r,
					  mb->start_line);
		}
		if (l.eof) {
			mb->done = true;
			break;
		}
		if (l.from && l.quotes == 0 && prev_empty) {
			/* the next message: this line and the empty line
			 * before it belong to neither */
			if (!skipped)
				buf_truncate(&mb->msg, prev_start);
			mb->start_line = mb->line;
			mb->at_separator = true;
			break;
		}
		seen += l.len;
		if (!skipped && (l.cut || seen > MAILBOX_MESSAGE_MAX)) {
			skipped = true;
			buf_reset(&mb->msg);
		}
		if (l.from && l.quotes > 0 && !skipped) {
			/* mboxrd: one '>' less */
			memmove(mb->msg.data + line_start,
				mb->msg.data + line_start + 1,
				mb->msg.len - line_start - 1);
			buf_truncate(&mb->msg, mb->msg.len - 1);
		}
		prev_empty = l.empty;
		prev_start = line_start;
	}
	/* the empty line that ends the last message is not part of it */
	if (mb->done && prev_empty && !skipped)
		buf_truncate(&mb->msg, prev_start);
	if (skipped) {
		msg->skipped = true;
		msg->len = seen;
		return 1;
	}
	msg->len = mb->msg.len;
	msg->data = buf_cstr(&mb->msg);
	return 1;
}

/* --- a stream ------------------------------------------------------------ */

static int stream_next(struct mailbox *mb, struct mailbox_msg *msg,
		       const char **error_r)
{
	char chunk[65536];
	size_t n, seen = 0;

	if (mb->done)
		return 0;
	mb->done = true;
	msg->where = mb->path;
	buf_reset(&mb->msg);
	while ((n = fread(chunk, 1, sizeof(chunk), mb->f)) > 0) {
		seen += n;
		if (seen <= MAILBOX_MESSAGE_MAX)
			buf_append(&mb->msg, chunk, n);
	}
	if (ferror(mb->f))
		return errmsg_set(error_r, "%s: %s", mb->path,
				  strerror(errno));
	if (seen > MAILBOX_MESSAGE_MAX) {
		buf_reset(&mb->msg);
		msg->skipped = true;
		msg->len = seen;
		return 1;
	}
	msg->len = mb->msg.len;
	msg->data = buf_cstr(&mb->msg);
	return 1;
}

/* --- opening ------------------------------------------------------------- */

static struct mailbox *mailbox_new(enum mailbox_kind kind, const char *path)
{
	struct mailbox *mb = xcalloc(1, sizeof(*mb));

	mb->kind = kind;
	mb->path = xstrdup(path);
	return mb;
}

void mailbox_open_stream(FILE *f, const char *name, struct mailbox **mb_r)
{
	struct mailbox *mb = mailbox_new(MAILBOX_STREAM, name);

	mb->f = f;
	*mb_r = mb;
}

int mailbox_open(const char *path, struct mailbox **mb_r,
		 const char **error_r)
{
	struct mailbox *mb;
	struct stat st;
	char head[5];
	size_t n;
	FILE *f;

	*mb_r = NULL;
	if (stat(path, &st) < 0)
		return errmsg_set(error_r, "%s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		size_t cap = 0;

		if (!is_dir(path, "cur") || !is_dir(path, "new"))
			return errmsg_set(error_r, "%s: a folder, but not a "
					  "Maildir (it has no cur/ and new/)",
					  path);
		mb = mailbox_new(MAILBOX_MAILDIR, path);
		if (maildir_list(mb, "cur", &cap, error_r) < 0 ||
		    maildir_list(mb, "new", &cap, error_r) < 0) {
			mailbox_close(&mb);
			return -1;
		}
		if (mb->nfiles > 0)
			qsort(mb->files, mb->nfiles, sizeof(*mb->files),
			      maildir_entry_cmp);
		*mb_r = mb;
		return 0;
	}
	f = fopen(path, "rbe");
	if (f == NULL)
		return errmsg_set(error_r, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode)) {
		/* a FIFO, /dev/stdin ...: one message, as standard input */
		mb = mailbox_new(MAILBOX_STREAM, path);
		mb->f = f;
		mb->own_f = true;
		*mb_r = mb;
		return 0;
	}
	n = fread(head, 1, sizeof(head), f);
	if (ferror(f)) {
		int e = errno;

		fclose(f);
		return errmsg_set(error_r, "%s: %s", path, strerror(e));
	}
	if (n == sizeof(head) && memcmp(head, "From ", 5) == 0) {
		rewind(f);
		mb = mailbox_new(MAILBOX_MBOX, path);
		mb->f = f;
		mb->own_f = true;
	} else if (n == 0) {
		/* an empty file: an empty mbox, no message */
		fclose(f);
		mb = mailbox_new(MAILBOX_MBOX, path);
		mb->done = true;
	} else {
		fclose(f);
		mb = mailbox_new(MAILBOX_FILE, path);
	}
	*mb_r = mb;
	return 0;
}

int mailbox_next(struct mailbox *mb, struct mailbox_msg *msg,
		 const char **error_r)
{
	memset(msg, 0, sizeof(*msg));
	msg->where = mb->path;
	switch (mb->kind) {
	case MAILBOX_MAILDIR:
		return maildir_next(mb, msg, error_r);
	case MAILBOX_MBOX:
		return mbox_next(mb, msg, error_r);
	case MAILBOX_FILE:
		if (mb->done)
			return 0;
		mb->done = true;
		return read_file(mb, mb->path, msg, error_r);
	case MAILBOX_STREAM:
		return stream_next(mb, msg, error_r);
	}
	return 0;
}

void mailbox_close(struct mailbox **mbp)
{
	struct mailbox *mb = *mbp;

	if (mb == NULL)
		return;
	if (mb->own_f && mb->f != NULL)
		fclose(mb->f);
	for (size_t i = 0; i < mb->nfiles; i++)
		free(mb->files[i].name);
	free(mb->files);
	buf_free(&mb->msg);
	buf_free(&mb->where);
	free(mb->path);
	free(mb);
	*mbp = NULL;
}
