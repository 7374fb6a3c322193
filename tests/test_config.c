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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

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
	const char *err = NULL;
	char cwd[256];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(config_load(&cfg, NULL, &err), 0);
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
	const char *err = NULL;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/nope.cfg", dir);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "nope.cfg"));
	assert_non_null(strstr(err, "No such file"));
}

static void test_store_path_relative_to_file(void **state)
{
	struct config cfg;
	const char *err = NULL;
	char want[160];
	const char *path;

	(void)state;
	path = write_cfg("a.cfg", "store = { path = \"data/x.db\"; };\n"
			 "import = { address_column = \"Mail\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	snprintf(want, sizeof(want), "%s/data/x.db", dir);
	assert_string_equal(cfg.store_path, want);
	assert_string_equal(cfg.import_address_column, "Mail");
	config_free(&cfg);

	path = write_cfg("b.cfg", "store: { path = \"/abs/y.db\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.store_path, "/abs/y.db");
	config_free(&cfg);
}

static void test_unknown_setting_names_line(void **state)
{
	struct config cfg;
	const char *err = NULL;
	char want[160];
	const char *path;

	(void)state;
	path = write_cfg("c.cfg", "# comment\nstore = {\n"
			 "  path = \"x.db\";\n  paht = \"y\";\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	snprintf(want, sizeof(want), "%s:4: unknown setting 'store.paht'",
		 path);
	assert_string_equal(err, want);

	path = write_cfg("d.cfg", "smtpp = { host = \"x\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":1: unknown setting 'smtpp'"));
}

static void test_wrong_type_names_line(void **state)
{
	struct config cfg;
	const char *err = NULL;
	const char *path;

	(void)state;
	path = write_cfg("e.cfg", "store = {\n  path = 12;\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":2: setting 'store.path' must be a "
			       "string"));

	path = write_cfg("f.cfg", "store = {\n  busy_timeout_ms = \"5s\";\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":2: setting 'store.busy_timeout_ms' must "
			       "be an integer"));

	path = write_cfg("g.cfg", "store = \"x.db\";\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":1: setting 'store' must be a group"));

	path = write_cfg("h.cfg", "store = { busy_timeout_ms = 0; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":1: setting 'store.busy_timeout_ms' must "
			       "be between"));
}

static void test_syntax_error_names_line(void **state)
{
	struct config cfg;
	const char *err = NULL;
	const char *path;

	(void)state;
	path = write_cfg("i.cfg", "store = {\n  path = \"x.db\"\n  oops\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "i.cfg:"));
	assert_non_null(strstr(err, "syntax error"));
}

/* The shipped example must load as it is. */
static void test_example_config_loads(void **state)
{
	struct config cfg;
	const char *err = NULL;
	char path[512];
	const char *src = getenv("VOLLEY_SOURCE_DIR");

	(void)state;
	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/examples/volley.cfg", src);
	if (config_load(&cfg, path, &err) != 0)
		fail_msg("%s", err);
	config_free(&cfg);
}

/* The smtp group: defaults that follow tls, and every setting read. */
static void test_smtp_settings(void **state)
{
	struct config cfg;
	const char *err = NULL;
	char want[160];
	const char *path;

	(void)state;
	path = write_cfg("s1.cfg", "store = { path = \"x.db\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.smtp.host, "localhost");
	assert_string_equal(cfg.smtp.tls, "starttls");
	assert_int_equal(cfg.smtp.port, 587);
	assert_true(cfg.smtp.tls_verify);
	assert_true(cfg.smtp.pipelining);
	assert_true(cfg.smtp.chunking);
	assert_int_equal(cfg.smtp.connections, 8);
	assert_int_equal(cfg.smtp.chunking_window, 8);
	assert_int_equal(cfg.smtp.timeout_connect, 30);
	assert_int_equal(cfg.smtp.timeout_greeting, 300);
	assert_int_equal(cfg.smtp.timeout_command, 300);
	assert_int_equal(cfg.smtp.timeout_data_end, 600);
	assert_null(cfg.smtp.username);
	config_free(&cfg);

	path = write_cfg("s2.cfg", "smtp = { tls = \"implicit\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_int_equal(cfg.smtp.port, 465);
	config_free(&cfg);

	path = write_cfg("s3.cfg",
			 "smtp = {\n  host = \"relay.example\"; port = 2525;\n"
			 "  tls = \"none\"; tls_verify = false;\n"
			 "  ca_file = \"certs/ca.pem\"; tls_name = \"mx\";\n"
			 "  username = \"u\"; password_env = \"PW\";\n"
			 "  allow_plaintext_auth = true; helo_name = \"me\";\n"
			 "  connections = 3; pipelining = false;\n"
			 "  chunking = false; chunking_window = 2;\n"
			 "  max_messages_per_connection = 0;\n"
			 "  timeouts = { connect = 1; greeting = 2;\n"
			 "               command = 3; data_end = 4; };\n};\n");
	if (config_load(&cfg, path, &err) != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg.smtp.host, "relay.example");
	assert_int_equal(cfg.smtp.port, 2525);
	assert_false(cfg.smtp.tls_verify);
	snprintf(want, sizeof(want), "%s/certs/ca.pem", dir);
	assert_string_equal(cfg.smtp.ca_file, want);
	assert_string_equal(cfg.smtp.tls_name, "mx");
	assert_string_equal(cfg.smtp.username, "u");
	assert_string_equal(cfg.smtp.password_env, "PW");
	assert_true(cfg.smtp.allow_plaintext_auth);
	assert_string_equal(cfg.smtp.helo_name, "me");
	assert_int_equal(cfg.smtp.connections, 3);
	assert_false(cfg.smtp.pipelining);
	assert_false(cfg.smtp.chunking);
	assert_int_equal(cfg.smtp.chunking_window, 2);
	assert_int_equal(cfg.smtp.max_messages_per_connection, 0);
	assert_int_equal(cfg.smtp.timeout_connect, 1);
	assert_int_equal(cfg.smtp.timeout_greeting, 2);
	assert_int_equal(cfg.smtp.timeout_command, 3);
	assert_int_equal(cfg.smtp.timeout_data_end, 4);
	config_free(&cfg);
}

/* Mistakes in the smtp group name the setting (and line). */
static void test_smtp_errors(void **state)
{
	struct config cfg;
	const char *err = NULL;
	const char *path;

	(void)state;
	path = write_cfg("e1.cfg", "smtp = {\n  tls = \"ssl\";\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":2: setting 'smtp.tls' must be "
			       "\"starttls\", \"implicit\" or \"none\""));

	path = write_cfg("e2.cfg", "smtp = { port = 70000; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "'smtp.port' must be between 1 and 65535"));

	path = write_cfg("e3.cfg", "smtp = {\n timeouts = {\n  data = 5;\n"
			 " };\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":3: unknown setting "
			       "'smtp.timeouts.data'"));

	path = write_cfg("e4.cfg", "smtp = { username = \"u\";\n"
			 " password_env = \"A\"; password_file = \"b\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "password_env or password_file, not both"));

	path = write_cfg("e5.cfg", "smtp = { password_env = \"A\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "smtp.username is not"));

	path = write_cfg("e7.cfg", "smtp = {\n helo_name = \"me\\r\\nQUIT\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":2: setting 'smtp.helo_name' must be a "
			       "host name"));

	/* a password in the file itself is no setting volley knows */
	path = write_cfg("e6.cfg", "smtp = {\n password = \"hunter2\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, ":2: unknown setting 'smtp.password'"));
	assert_null(strstr(err, "hunter2"));
}

/* Secrets come from the environment or the first line of a file. */
static void test_smtp_secret(void **state)
{
	struct config cfg;
	const char *err = NULL;
	char *secret;
	const char *path;

	(void)state;
	write_cfg("pw.txt", "s3cret pass\nsecond line\n");
	path = write_cfg("p1.cfg", "smtp = { username = \"u\";\n"
			 " password_file = \"pw.txt\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_int_equal(config_smtp_secret(&cfg, 0, &secret, &err), 0);
	assert_string_equal(secret, "s3cret pass");
	config_secret_free(&secret);
	assert_null(secret);
	/* no token configured: none, and no error */
	assert_int_equal(config_smtp_secret(&cfg, 1, &secret, &err), 0);
	assert_null(secret);
	config_free(&cfg);

	path = write_cfg("p2.cfg", "smtp = { username = \"u\";\n"
			 " password_env = \"VOLLEY_TEST_CONFIG_PW\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	unsetenv("VOLLEY_TEST_CONFIG_PW");
	assert_int_equal(config_smtp_secret(&cfg, 0, &secret, &err), -1);
	assert_non_null(strstr(err, "VOLLEY_TEST_CONFIG_PW, which is not "
			       "set"));
	setenv("VOLLEY_TEST_CONFIG_PW", "from-env", 1);
	assert_int_equal(config_smtp_secret(&cfg, 0, &secret, &err), 0);
	assert_string_equal(secret, "from-env");
	config_secret_free(&secret);
	config_free(&cfg);

	/* a long token is read whole */
	{
		static char token[6001];

		memset(token, 'T', sizeof(token) - 2);
		token[sizeof(token) - 2] = '\n';
		write_cfg("tok.txt", token);
		path = write_cfg("p4.cfg", "smtp = { username = \"u\";\n"
				 " xoauth2_token_file = \"tok.txt\"; };\n");
		assert_int_equal(config_load(&cfg, path, &err), 0);
		assert_int_equal(config_smtp_secret(&cfg, 1, &secret, &err), 0);
		assert_int_equal(strlen(secret), 5999);
		config_secret_free(&secret);
		config_free(&cfg);
	}

	path = write_cfg("p3.cfg", "smtp = { username = \"u\";\n"
			 " password_file = \"missing.txt\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_int_equal(config_smtp_secret(&cfg, 0, &secret, &err), -1);
	assert_non_null(strstr(err, "smtp.password_file"));
	assert_non_null(strstr(err, "missing.txt"));
	config_free(&cfg);
}

/* load_err - config_load of text must fail with an error holding want */
static void load_err(const char *text, const char *want)
{
	struct config cfg;
	const char *err = NULL;

	assert_int_equal(config_load(&cfg, write_cfg("u.cfg", text), &err),
			 -1);
	if (strstr(err, want) == NULL)
		fail_msg("'%s' not in '%s'", want, err);
}

static void test_unsubscribe(void **state)
{
	struct config cfg;
	const char *err = NULL;
	char *secret = NULL, sf[128];
	const char *path;

	(void)state;
	/* not set: no URL, and a clear error for whoever needs the secret */
	path = write_cfg("u.cfg", "store = { path = \"x.db\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_null(cfg.unsubscribe.base_url);
	assert_null(cfg.unsubscribe.secret_file);
	assert_int_equal(config_unsubscribe_secret(&cfg, "volley serve",
						   &secret, &err), -1);
	assert_null(secret);
	assert_non_null(strstr(err, "volley serve needs a secret: set "
			       "unsubscribe.secret_file in"));
	config_free(&cfg);

	/* set: the file resolved, the URL without its trailing '/' */
	snprintf(sf, sizeof(sf), "%s",
		 write_cfg("unsub.secret", "0123456789abcdef0123456789\n"));
	assert_int_equal(chmod(sf, 0600), 0);
	path = write_cfg("u.cfg", "unsubscribe = {\n"
			 "  secret_file = \"unsub.secret\";\n"
			 "  base_url = \"https://news.example.org/\";\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.unsubscribe.base_url,
			    "https://news.example.org");
	assert_non_null(strstr(cfg.unsubscribe.secret_file,
			       "/unsub.secret"));
	assert_int_equal(config_unsubscribe_secret(&cfg, "x", &secret, &err),
			 0);
	assert_string_equal(secret, "0123456789abcdef0123456789");
	config_secret_free(&secret);
	/* a secret readable by all, or short, is refused naming the file */
	assert_int_equal(chmod(sf, 0644), 0);
	assert_int_equal(config_unsubscribe_secret(&cfg, "x", &secret, &err),
			 -1);
	assert_non_null(strstr(err, "unsubscribe.secret_file"));
	assert_non_null(strstr(err, "readable by every user"));
	write_cfg("unsub.secret", "short\n");
	assert_int_equal(chmod(sf, 0600), 0);
	assert_int_equal(config_unsubscribe_secret(&cfg, "x", &secret, &err),
			 -1);
	assert_non_null(strstr(err, "shorter than 16"));
	config_free(&cfg);

	/* http is allowed (a test, or TLS ended elsewhere), a path too */
	path = write_cfg("u.cfg", "unsubscribe = { secret_file = \"s\";\n"
			 "  base_url = \"http://127.0.0.1:8025/news\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.unsubscribe.base_url,
			    "http://127.0.0.1:8025/news");
	config_free(&cfg);

	/* what is refused, at its line */
	load_err("unsubscribe = {\n  secret_file = \"s\";\n"
		 "  base_url = \"news.example.org\"; };\n",
		 "u.cfg:3: setting 'unsubscribe.base_url' must be an "
		 "absolute http:// or https:// URL");
	load_err("unsubscribe = { secret_file = \"s\";\n"
		 "  base_url = \"ftp://news.example.org\"; };\n",
		 "u.cfg:2: setting 'unsubscribe.base_url'");
	load_err("unsubscribe = { secret_file = \"s\";\n"
		 "  base_url = \"https://\"; };\n",
		 "u.cfg:2: setting 'unsubscribe.base_url'");
	load_err("unsubscribe = { secret_file = \"s\";\n"
		 "  base_url = \"https://n.example.org/?a=b\"; };\n",
		 "no query, fragment");
	load_err("unsubscribe = { secret_file = \"s\";\n"
		 "  base_url = \"https://n.example.org/a b\"; };\n",
		 "u.cfg:2:");
	load_err("unsubscribe = { secret_file = \"s\";\n"
		 "  base_url = \"https://n.\xc3\xa9xample.org\"; };\n",
		 "printable ASCII");
	load_err("unsubscribe = {\n  base_url = \"https://n.example.org\";"
		 " };\n", "u.cfg:2: 'unsubscribe.base_url' needs "
		 "'unsubscribe.secret_file'");
	load_err("unsubscribe = { secret = \"s\"; };\n",
		 "unknown setting 'unsubscribe.secret'");
	load_err("unsubscribe = { base_url = 1; };\n",
		 "setting 'unsubscribe.base_url' must be a string");
}

/* The bounces group: defaults, values, and errors with file:line. */
static void test_bounces(void **state)
{
	struct config cfg;
	const char *err = NULL;
	const char *path;
	char want[160];

	(void)state;
	path = write_cfg("b0.cfg", "store = { path = \"x.db\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	assert_null(cfg.bounces.rules_file);
	assert_int_equal(cfg.bounces.soft_limit, 3);
	assert_int_equal(cfg.bounces.soft_window_days, 14);
	assert_int_equal(cfg.bounces.match_days, 30);
	config_free(&cfg);

	path = write_cfg("b1.cfg", "bounces = {\n rules_file = \"my.rules\";"
			 "\n soft_limit = 5; soft_window_days = 7;\n"
			 " match_days = 60;\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), 0);
	snprintf(want, sizeof(want), "%s/my.rules", dir);
	assert_string_equal(cfg.bounces.rules_file, want);
	assert_int_equal(cfg.bounces.soft_limit, 5);
	assert_int_equal(cfg.bounces.soft_window_days, 7);
	assert_int_equal(cfg.bounces.match_days, 60);
	config_free(&cfg);

	path = write_cfg("b2.cfg", "bounces = {\n soft_limit = 0;\n};\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "b2.cfg:2: setting 'bounces.soft_limit' "
			       "must be between 1 and 1000"));

	path = write_cfg("b3.cfg", "bounces = {\n\n match_days = -1; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "b3.cfg:3: setting 'bounces.match_days'"));

	path = write_cfg("b4.cfg", "bounces = {\n rules_file = \"\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "b4.cfg:2: setting 'bounces.rules_file' "
			       "is empty"));

	path = write_cfg("b5.cfg", "bounces = {\n soft_window = 3; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "b5.cfg:2: unknown setting "
			       "'bounces.soft_window'"));

	path = write_cfg("b6.cfg", "bounces = {\n soft_limit = \"3\"; };\n");
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(strstr(err, "b6.cfg:2:"));
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
		cmocka_unit_test(test_smtp_settings),
		cmocka_unit_test(test_smtp_errors),
		cmocka_unit_test(test_smtp_secret),
		cmocka_unit_test(test_unsubscribe),
		cmocka_unit_test(test_bounces),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
