/*
 * config - volley.cfg: reading, checking and defaults (see config.h).
 */
#include "cli/config.h"

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xalloc.h"

enum config_kind {
	KIND_GROUP,
	KIND_STRING,
	KIND_INT,
	KIND_BOOL,
};

struct config_setting_spec {
	const char *path;
	enum config_kind kind;
};

/* Every setting volley reads.  Keep examples/volley.cfg in step. */
static const struct config_setting_spec config_specs[] = {
	{ "store", KIND_GROUP },
	{ "store.path", KIND_STRING },
	{ "store.busy_timeout_ms", KIND_INT },
	{ "import", KIND_GROUP },
	{ "import.address_column", KIND_STRING },
};

static const char *const config_kind_names[] = {
	[KIND_GROUP] = "a group { ... }",
	[KIND_STRING] = "a string",
	[KIND_INT] = "an integer",
	[KIND_BOOL] = "true or false",
};

/* config_kind_matches - does a libconfig setting type fit the spec? */
static bool config_kind_matches(enum config_kind kind, int type)
{
	switch (kind) {
	case KIND_GROUP:
		return type == CONFIG_TYPE_GROUP;
	case KIND_STRING:
		return type == CONFIG_TYPE_STRING;
	case KIND_INT:
		return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
	case KIND_BOOL:
		return type == CONFIG_TYPE_BOOL;
	}
	return false;
}

/* config_check - refuse unknown settings and wrong types, recursively */
static int config_check(const config_setting_t *group, const char *prefix,
			const char *file, char *err, size_t errsize)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, i);
		const char *name = config_setting_name(s);
		const struct config_setting_spec *spec = NULL;
		char path[256];

		snprintf(path, sizeof(path), "%s%s%s", prefix,
			 *prefix ? "." : "", name ? name : "?");
		for (size_t k = 0;
		     k < sizeof(config_specs) / sizeof(config_specs[0]); k++) {
			if (strcmp(config_specs[k].path, path) == 0)
				spec = &config_specs[k];
		}
		if (spec == NULL) {
			snprintf(err, errsize, "%s:%d: unknown setting '%s'",
				 file, config_setting_source_line(s), path);
			return -1;
		}
		if (!config_kind_matches(spec->kind, config_setting_type(s))) {
			snprintf(err, errsize, "%s:%d: setting '%s' must be %s",
				 file, config_setting_source_line(s), path,
				 config_kind_names[spec->kind]);
			return -1;
		}
		if (spec->kind == KIND_GROUP &&
		    config_check(s, path, file, err, errsize) < 0)
			return -1;
	}
	return 0;
}

/* config_string - a string setting, copied, or a copy of def */
static char *config_string(const config_t *lc, const char *path,
			   const char *def)
{
	const char *v;

	if (config_lookup_string(lc, path, &v) == CONFIG_TRUE)
		return xstrdup(v);
	return def != NULL ? xstrdup(def) : NULL;
}

/* config_int - an integer setting within [min, max], or def */
static int config_int(const config_t *lc, const char *path, int def,
		      int min, int max, const char *file, char *err,
		      size_t errsize, int *v_r)
{
	config_setting_t *s = config_lookup(lc, path);
	long long v;

	*v_r = def;
	if (s == NULL)
		return 0;
	v = config_setting_get_int64(s);	/* reads CONFIG_TYPE_INT too */
	if (v < min || v > max) {
		snprintf(err, errsize, "%s:%d: setting '%s' must be between "
			 "%d and %d", file, config_setting_source_line(s),
			 path, min, max);
		return -1;
	}
	*v_r = (int)v;
	return 0;
}

char *config_resolve_path(const struct config *cfg, const char *path)
{
	struct buf b = BUF_INIT;

	if (path[0] == '/' || cfg->dir == NULL || strcmp(cfg->dir, ".") == 0)
		return xstrdup(path);
	buf_printf(&b, "%s/%s", cfg->dir, path);
	return b.data;
}

int config_load(struct config *cfg, const char *path, char *err,
		size_t errsize)
{
	const char *file = path != NULL ? path : CONFIG_DEFAULT_FILE;
	config_t lc;
	char *store_path, *slash;
	int ret = -1;

	memset(cfg, 0, sizeof(*cfg));
	config_init(&lc);

	if (access(file, F_OK) < 0) {
		if (path != NULL) {
			snprintf(err, errsize, "%s: %s", file, strerror(errno));
			goto out;
		}
		/* No default file: every setting takes its default. */
	} else {
		if (config_read_file(&lc, file) != CONFIG_TRUE) {
			if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
				snprintf(err, errsize, "%s: cannot read: %s",
					 file, strerror(errno));
			else
				snprintf(err, errsize, "%s:%d: %s", file,
					 config_error_line(&lc),
					 config_error_text(&lc));
			goto out;
		}
		if (config_check(config_root_setting(&lc), "", file, err,
				 errsize) < 0)
			goto out;
		cfg->file = xstrdup(file);
		cfg->dir = xstrdup(file);
		slash = strrchr(cfg->dir, '/');
		if (slash == NULL)
			strcpy(cfg->dir, ".");
		else if (slash == cfg->dir)
			slash[1] = '\0';
		else
			*slash = '\0';
	}

	store_path = config_string(&lc, "store.path", "volley.db");
	if (*store_path == '\0') {
		snprintf(err, errsize, "%s: setting 'store.path' is empty",
			 file);
		free(store_path);
		goto out;
	}
	cfg->store_path = config_resolve_path(cfg, store_path);
	free(store_path);
	if (config_int(&lc, "store.busy_timeout_ms", 5000, 1, 3600 * 1000,
		       file, err, errsize, &cfg->store_busy_timeout_ms) < 0)
		goto out;
	cfg->import_address_column =
		config_string(&lc, "import.address_column", "email");
	ret = 0;
out:
	config_destroy(&lc);
	if (ret < 0)
		config_free(cfg);
	return ret;
}

void config_free(struct config *cfg)
{
	free(cfg->file);
	free(cfg->dir);
	free(cfg->store_path);
	free(cfg->import_address_column);
	memset(cfg, 0, sizeof(*cfg));
}
