/*
 * snapshot - a campaign's template folder as a set of files in memory:
 * read from a folder (at `campaign create`) or from the store (to send,
 * preview or check), and handed to message_tmpl_load().
 */
#ifndef VOLLEY_SNAPSHOT_H
#define VOLLEY_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "store.h"

/* A template folder may not hold more than this (attachments included). */
#define SNAPSHOT_MAX_BYTES (50u * 1024 * 1024)
#define SNAPSHOT_MAX_FILES 500

struct snapshot {
	struct store_file *files;
	size_t nfiles;
};

/*
 * snapshot_read_dir - every regular file directly in dir (not dotfiles;
 * folders, FIFOs and the like are passed over).  A symbolic link is read
 * only if it names, without a '/', a regular file beside it; any other
 * link fails it, naming the link, so that nothing outside dir gets in.
 */
int snapshot_read_dir(struct snapshot *s, const char *dir,
		      const char **error_r);
/* snapshot_read_store - the campaign's snapshot from the store */
int snapshot_read_store(struct snapshot *s, struct store *st,
			int64_t campaign_id, const char **error_r);
void snapshot_free(struct snapshot *s);

/* snapshot_load - compile the message template the snapshot holds */
int snapshot_load(const struct snapshot *s, struct message_tmpl **mt_r,
		  const char **error_r);

#endif
