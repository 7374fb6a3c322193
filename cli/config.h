/*
 * config - volley.cfg: reading, checking and defaults.
 *
 * The file is libconfig syntax.  Every setting volley knows is listed in
 * one table in config.c with its type; anything else in the file is an
 * error naming the setting and its line, so a typo never silently falls
 * back to a default.  examples/volley.cfg documents every setting.
 */
#ifndef VOLLEY_CONFIG_H
#define VOLLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_FILE "volley.cfg"

struct config {
	char *file;		/* the file read, or NULL if none */
	char *dir;		/* relative paths are relative to this */

	/* store */
	char *store_path;	/* resolved against dir */
	int store_busy_timeout_ms;

	/* import */
	char *import_address_column;
};

/*
 * config_load - read path, or CONFIG_DEFAULT_FILE when path is NULL.  A
 * missing default file gives the defaults; a missing file named
 * explicitly is an error.  On error returns -1 and writes a one-line
 * reason ("volley.cfg:12: unknown setting 'store.paht'") into err.
 */
int config_load(struct config *cfg, const char *path, char *err,
		size_t errsize);
void config_free(struct config *cfg);

/* config_resolve_path - path made relative to the configuration's folder */
char *config_resolve_path(const struct config *cfg, const char *path);

#endif
