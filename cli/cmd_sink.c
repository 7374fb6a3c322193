/* cmd_sink - placeholder until the sink lands */
#include "cli/cli.h"

const char cmd_sink_help[] = "usage: volley sink [--listen ADDR:PORT]\n";

int cmd_sink(struct cli *cli, int argc, char **argv)
{
	(void)cli; (void)argc; (void)argv;
	return cli_error("sink: not built yet");
}
