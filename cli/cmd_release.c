/*
 * cmd_release - `volley release CAMPAIGN --in-doubt [--drop]`: decide
 * about the recipients held in doubt (send.in_doubt = "hold"): their
 * message went whole but no reply came, or the run holding them died, so
 * the server may have taken it.  Release sends them again at the next
 * `volley send`; drop fails them for good.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "clock.h"
#include "store.h"

const char cmd_release_help[] =
	"usage: volley release CAMPAIGN --in-doubt [--drop]\n"
	"\n"
	"Recipients held in doubt (with send.in_doubt = \"hold\"; `volley\n"
	"status` counts them) may or may not have got their message.\n"
	"\n"
	"  --in-doubt  make them due again: the next `volley send` sends\n"
	"              them (a recipient may get the message twice)\n"
	"  --drop      with --in-doubt: fail them instead (a recipient may\n"
	"              get nothing)\n";

int cmd_release(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in-doubt", no_argument, NULL, 'i' },
		{ "drop", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	bool in_doubt = false, drop = false;
	struct store *st;
	const char *error;
	int64_t id, n = 0;
	int c, found, ret = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'i')
			in_doubt = true;
		else if (c == 'd')
			drop = true;
		else
			return cli_usage_error("release", "bad option");
	}
	if (argc - optind != 1)
		return cli_usage_error("release", "release takes one CAMPAIGN");
	if (!in_doubt)
		return cli_usage_error("release", "say what to release: "
				       "--in-doubt");
	st = cli_open_store(cli, false);
	if (st == NULL)
		return 1;
	found = store_campaign_find(st, argv[optind], &id, &error);
	if (found <= 0) {
		if (found < 0)
			cli_error("%s", error);
		else
			cli_error("no campaign '%s'", argv[optind]);
		goto out;
	}
	if (store_in_doubt(st, id, drop ? STORE_DOUBT_DROP :
			   STORE_DOUBT_RELEASE, clock_wall_ms(), &n,
			   &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	printf("%s %lld recipient%s held in doubt in '%s'%s\n",
	       drop ? "dropped" : "released", (long long)n, n == 1 ? "" : "s",
	       argv[optind], drop ? "" : ": the next `volley send` sends them");
	ret = 0;
out:
	store_close(&st);
	return ret;
}
