/* cmd_send_one - placeholder until send-one lands */
#include "cli/cli.h"

const char cmd_send_one_help[] = "usage: volley send-one --to ADDR\n";

int cmd_send_one(struct cli *cli, int argc, char **argv)
{
	(void)cli; (void)argc; (void)argv;
	return cli_error("send-one: not built yet");
}
