/*
 * cmd_init - `volley init`: create the job store, or migrate it.
 */
#include <stdio.h>

#include "cli.h"
#include "store.h"

int cmd_init(struct cli *cli, int argc, char **argv)
{
	struct store *st;

	(void)argv;
	if (argc > 1)
		return cli_usage_error("init", "init takes no arguments");
	st = cli_open_store(cli, true);
	if (st == NULL)
		return 1;
	store_close(&st);
	printf("store ready: %s (schema version %d)\n", cli->cfg.store_path,
	       store_schema_version());
	return 0;
}
