/*
 * opendkim_verify - check DKIM signatures with libopendkim (OpenDKIM's C
 * library, Debian's libopendkim-dev): a second implementation that is not
 * volley's, beside tests/dkim/verify.py (python3-dkim).
 *
 *   opendkim_verify [--records DIR] [--expect N] FILE.eml...
 *
 * Public keys come from files, as for verify.py: DIR/SELECTOR._domainkey.
 * DOMAIN holds the TXT value; no DNS is asked (the key look-up is
 * ours).  Files may have CRLF or LF line ends (a Maildir stores LF; the
 * library reads either as CRLF).
 * Every signature of every message must pass (signature and body hash);
 * --expect N also wants exactly N signatures per message.  Exit 0 if all
 * pass, 1 (saying which and why) if not, 2 on a usage or setup error.
 *
 * It links libopendkim only (no volley library): it judges volley's
 * output, so it shares none of its code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

static const char *records = ".";

/* key_lookup - the TXT value from DIR/s._domainkey.d, else "no key" */
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf,
			      size_t buflen)
{
	const char *sel = (const char *)dkim_sig_getselector(sig);
	const char *dom = (const char *)dkim_sig_getdomain(sig);
	char path[4096];
	size_t n;
	FILE *f;

	(void)dkim;
	if (sel == NULL || dom == NULL || buflen == 0)
		return DKIM_CBSTAT_ERROR;
	snprintf(path, sizeof(path), "%s/%s._domainkey.%s", records, sel,
		 dom);
	f = fopen(path, "rb");
	if (f == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	n = fread(buf, 1, buflen - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
			 buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return DKIM_CBSTAT_CONTINUE;
}

static int read_file(const char *path, unsigned char **data_r, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return -1;
	do {
		if (len == cap) {
			unsigned char *p;

			cap = cap ? 2 * cap : 65536;
			p = realloc(data, cap);
			if (p == NULL) {
				free(data);
				fclose(f);
				return -1;
			}
			data = p;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*data_r = data;
	*len_r = len;
	return 0;
}

/* verify_one - 0 if every signature of the message passes, else 1 */
static int verify_one(DKIM_LIB *lib, const char *path, int expect)
{
	DKIM_SIGINFO **sigs;
	DKIM_STAT st;
	unsigned char *msg;
	size_t len;
	int nsigs = 0, bad = 0;
	DKIM *d;

	if (read_file(path, &msg, &len) < 0) {
		printf("%s: %s\n", path, strerror(errno));
		return 1;
	}
	d = dkim_verify(lib, (const unsigned char *)path, NULL, &st);
	if (d == NULL) {
		printf("%s: dkim_verify: %s\n", path, dkim_getresultstr(st));
		free(msg);
		return 1;
	}
	st = dkim_chunk(d, msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK)
		nsigs = 0;
	if (expect >= 0 && nsigs != expect) {
		printf("%s: %d signatures, wanted %d\n", path, nsigs, expect);
		bad = 1;
	} else if (nsigs == 0 && expect != 0) {
		printf("%s: not signed (%s)\n", path, dkim_getresultstr(st));
		bad = 1;
	}
	for (int i = 0; i < nsigs && bad <= 0; i++) {
		DKIM_SIGINFO *s = sigs[i];
		const char *why = dkim_sig_geterrorstr(dkim_sig_geterror(s));
		unsigned int flags = dkim_sig_getflags(s);
		int bh = dkim_sig_getbh(s);

		if (DKIM_SIG_CHECK(s))
			continue;
		printf("%s: signature %d (d=%s s=%s) fails: %s; %s; %s\n",
		       path, i, dkim_sig_getdomain(s), dkim_sig_getselector(s),
		       why != NULL ? why : dkim_getresultstr(st),
		       (flags & DKIM_SIGFLAG_PASSED) != 0 ? "signature good" :
		       "signature bad",
		       bh == DKIM_SIGBH_MATCH ? "body hash good" :
		       bh == DKIM_SIGBH_MISMATCH ? "body hash bad" :
		       "body hash not checked");
		bad = -1;	/* the other signatures are still reported */
	}
	dkim_free(d);
	free(msg);
	return bad != 0;
}

int main(int argc, char **argv)
{
	unsigned int flags = 0;
	DKIM_LIB *lib;
	int expect = -1, bad = 0, files = 0, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
			records = argv[++i];
		else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
			expect = atoi(argv[++i]);
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: opendkim_verify [--records DIR] "
			"[--expect N] FILE.eml...\n");
		return 2;
	}
	lib = dkim_init(NULL, NULL);
	if (lib == NULL) {
		fprintf(stderr, "opendkim_verify: dkim_init failed\n");
		return 2;
	}
	if (!dkim_libfeature(lib, DKIM_FEATURE_SHA256) ||
	    !dkim_libfeature(lib, DKIM_FEATURE_ED25519)) {
		fprintf(stderr, "opendkim_verify: this libopendkim lacks "
			"rsa-sha256 or ed25519-sha256\n");
		dkim_close(lib);
		return 2;
	}
	(void)dkim_options(lib, DKIM_OP_GETOPT, DKIM_OPTS_FLAGS, &flags,
			   sizeof(flags));
	/* every signature is checked, not only up to the first good one;
	 * a file with LF line ends (a Maildir's) is read as the CRLF
	 * message it was on the wire */
	flags &= ~(unsigned)DKIM_LIBFLAGS_VERIFYONE;
	flags |= DKIM_LIBFLAGS_FIXCRLF;
	(void)dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
			   sizeof(flags));
	dkim_set_key_lookup(lib, key_lookup);
	for (; i < argc; i++, files++)
		bad += verify_one(lib, argv[i], expect);
	dkim_close(lib);
	printf("%d messages, %d failures\n", files, bad);
	return bad ? 1 : 0;
}
