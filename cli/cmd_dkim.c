/*
 * cmd_dkim - `volley dkim keygen` and `volley dkim check`, and the
 * loading of volley.cfg's keys for the commands that sign (send,
 * send-one, preview).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cli.h"
#include "dkim.h"
#include "errmsg.h"
#include "escape.h"

const char cmd_dkim_help[] =
	"usage: volley dkim keygen --domain D --selector S\n"
	"                          [--algorithm rsa|ed25519] [--bits N]\n"
	"                          [--out FILE]\n"
	"       volley dkim check --domain D --selector S\n"
	"                         [--txt RECORD | --txt-file FILE]\n"
	"\n"
	"keygen writes a new private key (PEM, mode 0600, never over an\n"
	"existing file; default FILE: D.S.key) and prints the DNS TXT\n"
	"record to publish at S._domainkey.D: its value on standard output,\n"
	"the rest on standard error.  RSA keys have 2048 bits unless --bits\n"
	"says otherwise (1024 to 8192); Ed25519 keys (RFC 8463) are small\n"
	"and fast, but not every receiver checks them yet: sign with both.\n"
	"\n"
	"check compares the key volley.cfg configures for D and S with a\n"
	"TXT record given on the command line or in a file (the value, or\n"
	"a zone-file line with quoted strings): no DNS look-up is made.\n"
	"Without a record it prints the one the key needs.  Exits 0 when\n"
	"the record publishes the key, 1 when it does not.\n"
	"\n"
	"Configure keys in volley.cfg:\n"
	"  dkim = ( { domain = \"example.org\"; selector = \"s2026\";\n"
	"             key_file = \"s2026.key\"; } );\n";

int cli_dkim_keys(struct cli *cli, struct dkim_keys **keys_r)
{
	const char *error;

	*keys_r = NULL;
	if (cli_config(cli) < 0)
		return -1;
	if (dkim_keys_load(cli->cfg.dkim, cli->cfg.ndkim, keys_r,
			   &error) < 0) {
		cli_error("%s: %s", cli->cfg.file ? cli->cfg.file :
			  CONFIG_DEFAULT_FILE, error);
		return -1;
	}
	for (size_t i = 0; i < dkim_keys_count(*keys_r); i++) {
		struct dkim_key_info ki;

		dkim_key_info(*keys_r, i, &ki);
		if (ki.alg == DKIM_ALG_RSA_SHA256 && ki.bits < 2048)
			fprintf(stderr, "volley: notice: dkim key %s (domain "
				"%s, selector %s) has %u bits; 2048 are "
				"recommended (RFC 8301)\n", ki.key_file,
				ki.domain, ki.selector, ki.bits);
	}
	return 0;
}

/* dkim_txt_value - a record as given: its quoted strings joined when it
 * has any (a zone-file line), else the text, trimmed */
static void dkim_txt_value(const char *in, struct buf *out)
{
	const char *q = strchr(in, '"');

	if (q == NULL) {
		size_t len = strlen(in);

		while (len > 0 && isspace((unsigned char)in[len - 1]))
			len--;
		while (len > 0 && isspace((unsigned char)*in))
			in++, len--;
		buf_append(out, in, len);
		return;
	}
	while (q != NULL) {
		const char *end = strchr(q + 1, '"');

		if (end == NULL)
			end = q + strlen(q);
		buf_append(out, q + 1, (size_t)(end - q - 1));
		q = *end != '\0' ? strchr(end + 1, '"') : NULL;
	}
}

static int dkim_read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return cli_error("--txt-file %s: %s", path, strerror(errno)),
		       -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	if (ferror(f)) {
		fclose(f);
		cli_error("--txt-file %s: cannot read", path);
		return -1;
	}
	fclose(f);
	return 0;
}

static int dkim_keygen_cmd(const char *domain, const char *selector,
			   const char *algorithm, unsigned bits,
			   const char *out)
{
	struct buf txt = BUF_INIT, path = BUF_INIT;
	enum dkim_alg alg;
	const char *error;
	int ret = 1;

	if (algorithm == NULL || strcasecmp(algorithm, "rsa") == 0)
		alg = DKIM_ALG_RSA_SHA256;
	else if (strcasecmp(algorithm, "ed25519") == 0)
		alg = DKIM_ALG_ED25519_SHA256;
	else
		return cli_usage_error("dkim", "--algorithm is rsa or "
				       "ed25519");
	if (out == NULL)
		buf_printf(&path, "%s.%s.key", domain, selector);
	else
		buf_append_str(&path, out);
	if (dkim_keygen(alg, bits, path.data, &txt, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	printf("%s\n", txt.data);
	fprintf(stderr, "volley: wrote %s (%s, %u bits, mode 0600)\n"
		"Publish the record above as TXT at %s._domainkey.%s; in a "
		"zone file:\n  %s._domainkey.%s. IN TXT ( ",
		path.data, dkim_alg_name(alg),
		alg == DKIM_ALG_RSA_SHA256 ? bits : 256, selector, domain,
		selector, domain);
	/* DNS strings hold 255 bytes at most */
	for (size_t i = 0; i < txt.len; i += 250)
		fprintf(stderr, "\"%.*s\" ", (int)(txt.len - i < 250 ?
						  txt.len - i : 250),
			txt.data + i);
	fprintf(stderr, ")\nand add to volley.cfg:\n  dkim = ( { domain = "
		"\"%s\"; selector = \"%s\"; key_file = \"%s\"; } );\n",
		domain, selector, path.data);
	ret = 0;
out:
	buf_free(&txt);
	buf_free(&path);
	return ret;
}

static int dkim_check_cmd(struct cli *cli, const char *domain,
			  const char *selector, const char *txt_arg,
			  const char *txt_file)
{
	struct dkim_key_spec *spec = NULL;
	struct dkim_keys *keys = NULL;
	struct buf raw = BUF_INIT, txt = BUF_INIT;
	struct dkim_key_info ki;
	const char *error;
	int ret = 1, ok;

	if (cli_config(cli) < 0)
		return 1;
	for (size_t i = 0; i < cli->cfg.ndkim; i++)
		if (strcasecmp(cli->cfg.dkim[i].domain, domain) == 0 &&
		    strcasecmp(cli->cfg.dkim[i].selector, selector) == 0)
			spec = &cli->cfg.dkim[i];
	if (spec == NULL)
		return cli_error("%s configures no dkim key for domain %s, "
				 "selector %s", cli->cfg.file ? cli->cfg.file :
				 CONFIG_DEFAULT_FILE, domain, selector), 1;
	if (dkim_keys_load(spec, 1, &keys, &error) < 0) {
		cli_error("%s", error);
		return 1;
	}
	dkim_key_info(keys, 0, &ki);
	if (txt_arg == NULL && txt_file == NULL) {
		if (dkim_public_txt(keys, 0, &txt, &error) < 0) {
			cli_error("%s", error);
			goto out;
		}
		printf("%s\n", txt.data);
		ret = 0;
		goto out;
	}
	if (txt_file != NULL && dkim_read_file(txt_file, &raw) < 0)
		goto out;
	dkim_txt_value(txt_arg != NULL ? txt_arg : buf_cstr(&raw), &txt);
	ok = dkim_check_txt(keys, 0, buf_cstr(&txt), &error);
	if (ok < 0) {
		cli_error("%s._domainkey.%s: %s", selector, domain, error);
	} else if (ok == 0) {
		cli_error("%s._domainkey.%s: %s", selector, domain, error);
	} else {
		printf("ok: the record at %s._domainkey.%s publishes %s "
		       "(%s, %u bits)\n", selector, domain, ki.key_file,
		       dkim_alg_name(ki.alg), ki.bits);
		ret = 0;
	}
out:
	dkim_keys_free(&keys);
	buf_free(&raw);
	buf_free(&txt);
	return ret;
}

int cmd_dkim(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "selector", required_argument, NULL, 's' },
		{ "algorithm", required_argument, NULL, 'a' },
		{ "bits", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },
		{ "txt", required_argument, NULL, 't' },
		{ "txt-file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain = NULL, *selector = NULL, *algorithm = NULL;
	const char *out = NULL, *txt = NULL, *txt_file = NULL, *what;
	unsigned long bits = 2048;
	bool bits_given = false;
	char *end;
	int c;

	if (argc < 2)
		return cli_usage_error("dkim", "say keygen or check");
	what = argv[1];
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': domain = optarg; break;
		case 's': selector = optarg; break;
		case 'a': algorithm = optarg; break;
		case 'o': out = optarg; break;
		case 't': txt = optarg; break;
		case 'f': txt_file = optarg; break;
		case 'b':
			bits_given = true;
			errno = 0;
			bits = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg ||
			    bits > 65536)
				return cli_usage_error("dkim", "--bits takes "
						       "a number");
			break;
		default:
			return cli_usage_error("dkim", "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error("dkim", "unexpected '%s'",
				       argv[optind]);
	if (domain == NULL || selector == NULL)
		return cli_usage_error("dkim", "--domain and --selector are "
				       "needed");
	if (!dkim_name_valid(domain) || !dkim_name_valid(selector))
		return cli_usage_error("dkim", "--domain and --selector are "
				       "DNS names (letters, digits, '-', '_' "
				       "and dots; an IDN in its xn-- form)");
	if (strcmp(what, "keygen") == 0) {
		if (txt != NULL || txt_file != NULL)
			return cli_usage_error("dkim", "--txt is for check");
		if (bits_given && algorithm != NULL &&
		    strcasecmp(algorithm, "ed25519") == 0)
			return cli_usage_error("dkim", "--bits is for RSA keys "
					       "(an Ed25519 key has no "
					       "size to choose)");
		return dkim_keygen_cmd(domain, selector, algorithm,
				       (unsigned)bits, out);
	}
	if (strcmp(what, "check") == 0) {
		if (algorithm != NULL || out != NULL || bits_given)
			return cli_usage_error("dkim", "--algorithm, --bits "
					       "and --out are for keygen");
		if (txt != NULL && txt_file != NULL)
			return cli_usage_error("dkim", "--txt or --txt-file, "
					       "not both");
		return dkim_check_cmd(cli, domain, selector, txt, txt_file);
	}
	return cli_usage_error("dkim", "unknown '%s': say keygen or check",
			       what);
}
