/*
 * test_config - volley.cfg: defaults, relative paths, and the errors a
 * user gets for typos, wrong types and syntax.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/config.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/volley-test-config-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* write_cfg - write text to DIR/name and return the path */
static const char *write_cfg(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults_without_file(void **state)
{
	struct config cfg;
	char err[256];
	char cwd[256];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
	assert_null(cfg.file);
	assert_string_equal(cfg.store_path, "volley.db");
	assert_int_equal(cfg.store_busy_timeout_ms, 5000);
	assert_string_equal(cfg.import_address_column, "email");
	config_free(&cfg);
	assert_int_equal(chdir(cwd), 0);
}

static void test_missing_named_file_is_an_error(void **state)
{
	struct config cfg;
	char err[256], path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/nope.cfg", dir);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nope.cfg"));
	assert_non_null(strstr(err, "No such file"));
}

static void test_store_path_relative_to_file(void **state)
{
	struct config cfg;
	char err[256], want[160];
	const char *path;

	(void)state;
	path = write_cfg("a.cfg", "store = { path = \"data/x.db\"; };\n"
			 "import = { address_column = \"Mail\"; };\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/data/x.db", dir);
	assert_string_equal(cfg.store_path, want);
	assert_string_equal(cfg.import_address_column, "Mail");
	config_free(&cfg);

	path = write_cfg("b.cfg", "store: { path = \"/abs/y.db\"; };\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), 0);
	assert_string_equal(cfg.store_path, "/abs/y.db");
	config_free(&cfg);
}

static void test_unknown_setting_names_line(void **state)
{
	struct config cfg;
	char err[256], want[160];
	const char *path;

	(void)state;
	path = write_cfg("c.cfg", "# comment\nstore = {\n"
			 "  path = \"x.db\";\n  paht = \"y\";\n};\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4: unknown setting 'store.paht'",
		 path);
	assert_string_equal(err, want);

	path = write_cfg("d.cfg", "smtpp = { host = \"x\"; };\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: unknown setting 'smtpp'"));
}

static void test_wrong_type_names_line(void **state)
{
	struct config cfg;
	char err[256];
	const char *path;

	(void)state;
	path = write_cfg("e.cfg", "store = {\n  path = 12;\n};\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: setting 'store.path' must be a "
			       "string"));

	path = write_cfg("f.cfg", "store = {\n  busy_timeout_ms = \"5s\";\n};\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: setting 'store.busy_timeout_ms' must "
			       "be an integer"));

	path = write_cfg("g.cfg", "store = \"x.db\";\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: setting 'store' must be a group"));

	path = write_cfg("h.cfg", "store = { busy_timeout_ms = 0; };\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: setting 'store.busy_timeout_ms' must "
			       "be between"));
}

static void test_syntax_error_names_line(void **state)
{
	struct config cfg;
	char err[256];
	const char *path;

	(void)state;
	path = write_cfg("i.cfg", "store = {\n  path = \"x.db\"\n  oops\n};\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "i.cfg:"));
	assert_non_null(strstr(err, "syntax error"));
}

/* The shipped example must load as it is. */
static void test_example_config_loads(void **state)
{
	struct config cfg;
	char err[256], path[512];
	const char *src = getenv("VOLLEY_SOURCE_DIR");

	(void)state;
	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/examples/volley.cfg", src);
	if (config_load(&cfg, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_without_file),
		cmocka_unit_test(test_missing_named_file_is_an_error),
		cmocka_unit_test(test_store_path_relative_to_file),
		cmocka_unit_test(test_unknown_setting_names_line),
		cmocka_unit_test(test_wrong_type_names_line),
		cmocka_unit_test(test_syntax_error_names_line),
		cmocka_unit_test(test_example_config_loads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
