/*
 * main - volley's entry point: global options, then one subcommand.
 *
 *   volley [-c FILE] COMMAND [ARGS...]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "store.h"

#define VOLLEY_VERSION "0.1.0"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { 0 };
	const struct cli_command *cmd;
	int c, first, ret;

	/* A relay that hangs up must fail one write, not end the run. */
	signal(SIGPIPE, SIG_IGN);
	store_process_init();

	/* "+": stop at the command; its options are its own. */
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli.config_path = optarg;
			break;
		case 'h':
			cli_print_commands(stdout);
			return 0;
		case 'V':
			printf("volley %s (store schema %d)\n", VOLLEY_VERSION,
			       store_schema_version());
			return 0;
		default:
			fputs(cli_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_print_commands(stderr);
		return EXIT_USAGE;
	}
	cmd = cli_find_command(argv[optind]);
	if (cmd == NULL)
		return cli_usage_error(NULL, "no command '%s'", argv[optind]);
	if (cmd->run != cmd_help && cli_wants_help(argc - optind, argv + optind))
		return cli_print_help(cmd->name);

	first = optind;
	optind = 0;	/* glibc: fully reset getopt for the command */
	ret = cmd->run(&cli, argc - first, argv + first);
	if (cli.cfg_loaded)
		config_free(&cli.cfg);
	return ret;
}
