/*
 * test_dkim - DKIM signing (templates/sign): what the signer writes is
 * checked against values computed here, by other code than the
 * signer's, with OpenSSL alone:
 *
 * - body canonicalization (RFC 6376 3.4.3, 3.4.4, the 3.4.5 example):
 *   the bh= the signer writes is the SHA-256 of the canonical body
 *   written out by hand in a table;
 * - header canonicalization, header selection bottom-up (5.4.2) and the
 *   hash of the signature field itself (3.7): the b= of both algorithms
 *   is verified here against headers canonicalized by hand;
 * - which keys sign (the From domain or a parent of it), the h= list
 *   (each present header once per instance, oversigned ones once more),
 *   folding (no line over 78 columns), the room dkim_keys_room promises;
 * - key files refused at load, each error naming the file;
 * - `dkim check`'s comparison of a key with a TXT record.
 *
 * Keys are made here with OpenSSL's EVP (one too long to make quickly
 * is a fixture, tests/dkim/rsa-8704.pem), in a temporary folder.  No
 * network.  The independent verifiers (python3-dkim, libopendkim) run
 * over whole messages in tests/integration/dkim.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "buf.h"
#include "dkim.h"

#define NOW 1767225600		/* 2026-01-01 00:00:00 UTC */

static char dir[64];
/* the keys every test uses, made once */
static EVP_PKEY *rsa1024, *rsa1024b, *rsa2048, *ed, *edb;

/* --- helpers ------------------------------------------------------------ */

/* path_of - DIR/name (a static buffer per call slot, four in turn) */
static const char *path_of(const char *name)
{
	static char paths[4][128];
	static unsigned turn;
	char *p = paths[turn++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

enum pem_form { PEM_PKCS8, PEM_TRADITIONAL, PEM_ENCRYPTED,
		PEM_ENCRYPTED_TRADITIONAL };

/* write_key - pkey into DIR/name with the mode; returns the path */
static const char *write_key(const char *name, EVP_PKEY *pkey,
			     enum pem_form form, mode_t mode)
{
	const char *path = path_of(name);
	const EVP_CIPHER *aes = EVP_aes_256_cbc();
	unsigned char pass[] = "secret";
	BIO *f;
	int ok;

	unlink(path);
	f = BIO_new_file(path, "w");
	assert_non_null(f);
	switch (form) {
	case PEM_PKCS8:
		ok = PEM_write_bio_PrivateKey(f, pkey, NULL, NULL, 0, NULL,
					      NULL);
		break;
	case PEM_TRADITIONAL:
		ok = PEM_write_bio_PrivateKey_traditional(f, pkey, NULL, NULL,
							  0, NULL, NULL);
		break;
	case PEM_ENCRYPTED:
		ok = PEM_write_bio_PrivateKey(f, pkey, aes, pass, 6, NULL,
					      NULL);
		break;
	default:
		ok = PEM_write_bio_PrivateKey_traditional(f, pkey, aes, pass,
							  6, NULL, NULL);
		break;
	}
	assert_int_equal(ok, 1);
	assert_int_equal(BIO_free(f), 1);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static struct dkim_key_spec spec(const char *domain, const char *selector,
				 const char *key_file)
{
	return (struct dkim_key_spec){
		.domain = domain, .selector = selector, .key_file = key_file,
		.header_canon = DKIM_CANON_RELAXED,
		.body_canon = DKIM_CANON_RELAXED,
	};
}

static struct dkim_keys *load(const struct dkim_key_spec *specs, size_t n)
{
	struct dkim_keys *keys = NULL;
	const char *error = NULL;

	if (dkim_keys_load(specs, n, &keys, &error) < 0)
		fail_msg("dkim_keys_load: %s", error);
	return keys;
}

/* sign - sign msg with keys at NOW into out; returns the count */
static int sign(const struct dkim_keys *keys, const char *msg,
		struct buf *out)
{
	struct dkim_signer *s = NULL;
	const char *error = NULL;
	int n;

	assert_int_equal(dkim_signer_new(keys, &s, &error), 0);
	buf_reset(out);
	n = dkim_sign(s, msg, strlen(msg), NOW, out, &error);
	if (n < 0)
		fail_msg("dkim_sign: %s", error);
	dkim_signer_free(&s);
	return n;
}

/* field_n - the i-th DKIM-Signature field in sigs, with its CRLF */
static void field_n(const struct buf *sigs, int i, struct buf *field)
{
	const char *p = buf_cstr(sigs), *end;

	for (; i > 0; i--) {
		p = strstr(p + 1, "\r\nDKIM-Signature:");
		assert_non_null(p);
		p += 2;
	}
	assert_memory_equal(p, "DKIM-Signature:", 15);
	end = p;
	do {
		end = strstr(end, "\r\n");
		assert_non_null(end);
		end += 2;
	} while (*end == ' ' || *end == '\t');
	buf_reset(field);
	buf_append(field, p, (size_t)(end - p));
}

/* tag - the value of a tag of a DKIM-Signature field, with every
 * whitespace character taken out (none is part of a value we check) */
static const char *tag(const struct buf *field, const char *name)
{
	static char value[2048];
	char flat[4096];
	size_t n = 0, nlen = strlen(name);
	char *p;

	for (const char *c = strchr(buf_cstr(field), ':') + 1; *c; c++)
		if (!strchr(" \t\r\n", *c) && n < sizeof(flat) - 1)
			flat[n++] = *c;
	flat[n] = '\0';
	for (p = strtok(flat, ";"); p != NULL; p = strtok(NULL, ";"))
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			snprintf(value, sizeof(value), "%s", p + nlen + 1);
			return value;
		}
	return NULL;
}

/* sha256_b64 - base64 of SHA-256(p[0..n)), by OpenSSL's own coder */
static const char *sha256_b64(const char *p, size_t n)
{
	static char out[64];
	unsigned char md[32];
	unsigned int mdlen;

	assert_int_equal(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL),
			 1);
	EVP_EncodeBlock((unsigned char *)out, md, 32);
	return out;
}

/* columns - the widest line of text, tabs to the next multiple of 8;
 * every line must end in CRLF */
static size_t columns(const char *text)
{
	size_t widest = 0, col = 0;

	for (const char *p = text; *p; p++) {
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			widest = col > widest ? col : widest;
			col = 0;
			p++;
		} else {
			assert_int_not_equal(*p, '\n');
			col = *p == '\t' ? (col / 8 + 1) * 8 : col + 1;
		}
	}
	assert_int_equal(col, 0);
	return widest;
}

static bool contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* --- body canonicalization: bh= --------------------------------------- */

struct body_vector {
	const char *body;
	const char *simple;	/* the canonical body, by hand */
	const char *relaxed;
};

static const struct body_vector body_vectors[] = {
	/* RFC 6376 3.4.5 */
	{ " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n" },
	/* an empty body: simple is one CRLF, relaxed nothing */
	{ "", "\r\n", "" },
	{ "\r\n", "\r\n", "" },
	{ "\r\n\r\n\r\n", "\r\n", "" },
	/* trailing empty lines go, those inside stay */
	{ "a\r\n\r\n\r\n", "a\r\n", "a\r\n" },
	{ "\r\n\r\na\r\n", "\r\n\r\na\r\n", "\r\n\r\na\r\n" },
	{ "a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
	/* lines of only WSP at the end: empty for relaxed only */
	{ "a\r\n \r\n\t\r\n", "a\r\n \r\n\t\r\n", "a\r\n" },
	{ " \r\n\t \r\n", " \r\n\t \r\n", "" },
	{ "a\r\n  \r\n\r\n", "a\r\n  \r\n", "a\r\n" },
	/* ... and in the middle, an empty line for relaxed */
	{ "a\r\n  \r\nb\r\n", "a\r\n  \r\nb\r\n", "a\r\n\r\nb\r\n" },
	/* no final CRLF: one is added */
	{ "a", "a\r\n", "a\r\n" },
	{ "a\r\nb", "a\r\nb\r\n", "a\r\nb\r\n" },
	{ "a\r\n\r\nb", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
	/* tabs and runs of WSP inside a line become one space */
	{ "a\t\tb  c \t d\r\n", "a\t\tb  c \t d\r\n", "a b c d\r\n" },
	{ "a\tb\r\n", "a\tb\r\n", "a b\r\n" },
	{ "a b\r\n", "a b\r\n", "a b\r\n" },
	/* at a line's start they stay, as one space */
	{ "  a\r\n\tb\r\n", "  a\r\n\tb\r\n", " a\r\n b\r\n" },
	/* WSP at a line's end goes */
	{ "a \r\nb\t\r\nc \t \r\n", "a \r\nb\t\r\nc \t \r\n",
	  "a\r\nb\r\nc\r\n" },
	/* quoted-printable's soft breaks and '=' are plain bytes */
	{ "x=3D=\r\ny =\r\n", "x=3D=\r\ny =\r\n", "x=3D=\r\ny =\r\n" },
};

static void test_body_canonicalization(void **state)
{
	struct buf msg = BUF_INIT, out = BUF_INIT, field = BUF_INIT;
	struct dkim_key_spec sp[2] = {
		spec("example.org", "simple", write_key("b1.key", ed,
							PEM_PKCS8, 0600)),
		spec("example.org", "relaxed", write_key("b2.key", edb,
							 PEM_PKCS8, 0600)),
	};
	struct dkim_keys *keys;

	(void)state;
	sp[0].body_canon = DKIM_CANON_SIMPLE;
	keys = load(sp, 2);
	for (size_t i = 0; i < sizeof(body_vectors) / sizeof(body_vectors[0]);
	     i++) {
		const struct body_vector *v = &body_vectors[i];
		char want[64];

		buf_reset(&msg);
		buf_printf(&msg, "From: a@example.org\r\nSubject: x\r\n\r\n%s",
			   v->body);
		assert_int_equal(sign(keys, buf_cstr(&msg), &out), 2);
		field_n(&out, 0, &field);
		snprintf(want, sizeof(want), "%s",
			 sha256_b64(v->simple, strlen(v->simple)));
		if (strcmp(tag(&field, "bh"), want) != 0)
			fail_msg("vector %zu, simple: bh=%s, want %s", i,
				 tag(&field, "bh"), want);
		field_n(&out, 1, &field);
		snprintf(want, sizeof(want), "%s",
			 sha256_b64(v->relaxed, strlen(v->relaxed)));
		if (strcmp(tag(&field, "bh"), want) != 0)
			fail_msg("vector %zu, relaxed: bh=%s, want %s", i,
				 tag(&field, "bh"), want);
	}
	/* the hashes of the empty body everyone quotes */
	assert_int_equal(sign(keys, "From: a@example.org\r\n\r\n", &out), 2);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "bh"),
			    "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	field_n(&out, 1, &field);
	assert_string_equal(tag(&field, "bh"),
			    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	/* no blank line at all: no body, the same hashes */
	assert_int_equal(sign(keys, "From: a@example.org\r\n", &out), 2);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "bh"),
			    "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	field_n(&out, 1, &field);
	assert_string_equal(tag(&field, "bh"),
			    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	dkim_keys_free(&keys);
	buf_free(&msg);
	buf_free(&out);
	buf_free(&field);
}

/* A body of 300 KB with runs of WSP across every split a span could
 * make: relaxed and simple against a canonical form built here. */
static void test_body_canonicalization_long(void **state)
{
	struct buf msg = BUF_INIT, relaxed = BUF_INIT, out = BUF_INIT;
	struct buf field = BUF_INIT;
	struct dkim_key_spec sp = spec("example.org", "r",
				       write_key("bl.key", ed, PEM_PKCS8,
						 0600));
	struct dkim_keys *keys;
	uint32_t x = 12345;

	(void)state;
	keys = load(&sp, 1);
	buf_append_str(&msg, "From: a@example.org\r\n\r\n");
	for (int line = 0; line < 4000; line++) {
		bool space = false;

		for (int i = 0; i < 70; i++) {
			char c;

			x = x * 1103515245 + 12345;
			c = "ab  \t\t xyz"[(x >> 16) % 10];
			buf_putc(&msg, c);
			if (c == ' ' || c == '\t') {
				space = true;
				continue;
			}
			if (space)
				buf_putc(&relaxed, ' ');
			buf_putc(&relaxed, c);
			space = false;
		}
		buf_append_str(&msg, "\r\n");
		buf_append_str(&relaxed, "\r\n");
	}
	assert_int_equal(sign(keys, buf_cstr(&msg), &out), 1);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "bh"),
			    sha256_b64(relaxed.data, relaxed.len));
	dkim_keys_free(&keys);
	buf_free(&msg);
	buf_free(&relaxed);
	buf_free(&out);
	buf_free(&field);
}

/* relaxed_body - RFC 6376 3.4.4 written plainly, line by line: WSP runs
 * to one SP, none at a line's end, empty lines at the end dropped; every
 * line of body ends in CRLF */
static void relaxed_body(const char *b, size_t len, struct buf *out)
{
	size_t keep = 0;

	for (size_t i = 0; i < len;) {
		const char *eol = strstr(b + i, "\r\n");
		size_t start = out->len;
		bool space = false;

		assert_non_null(eol);
		for (const char *p = b + i; p < eol; p++) {
			if (*p == ' ' || *p == '\t') {
				space = true;
				continue;
			}
			if (space)
				buf_putc(out, ' ');
			buf_putc(out, *p);
			space = false;
		}
		buf_append_str(out, "\r\n");
		if (out->len - start > 2)
			keep = out->len;
		i = (size_t)(eol - b) + 2;
	}
	buf_truncate(out, keep);
}

/* Prose: words and single spaces (which the signer hashes in whole
 * blocks, untouched), with now and then a double space, a tab or
 * trailing WSP, falling at every offset of a block and across block
 * ends; lines of every length, empty ones, and WSP-only ones at the
 * end. */
static void test_body_canonicalization_prose(void **state)
{
	struct buf msg = BUF_INIT, relaxed = BUF_INIT, out = BUF_INIT;
	struct buf field = BUF_INIT;
	struct dkim_key_spec sp = spec("example.org", "p",
				       write_key("bp.key", ed, PEM_PKCS8,
						 0600));
	struct dkim_keys *keys;
	uint32_t x = 777;
	size_t body;

	(void)state;
	keys = load(&sp, 1);
	buf_append_str(&msg, "From: a@example.org\r\n\r\n");
	body = msg.len;
	for (int line = 0; line < 3000; line++) {
		int n;

		x = x * 1103515245 + 12345;
		n = (int)((x >> 16) % 120);
		for (int i = 0; i < n; i++) {
			unsigned r;

			x = x * 1103515245 + 12345;
			r = (x >> 16) % 400;
			buf_append_str(&msg, r < 60 ? " " : r == 60 ? "  " :
				       r == 61 ? "\t" : r == 62 ? " \t" :
				       r == 63 ? "=" : "e");
		}
		x = x * 1103515245 + 12345;
		if ((x >> 16) % 9 == 0)
			buf_append_str(&msg, (x >> 20) % 2 ? " " : " \t ");
		buf_append_str(&msg, "\r\n");
	}
	buf_append_str(&msg, "  \r\n\t\r\n\r\n");
	relaxed_body(msg.data + body, msg.len - body, &relaxed);
	assert_int_equal(sign(keys, buf_cstr(&msg), &out), 1);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "bh"),
			    sha256_b64(relaxed.data, relaxed.len));
	dkim_keys_free(&keys);
	buf_free(&msg);
	buf_free(&relaxed);
	buf_free(&out);
	buf_free(&field);
}

/* --- header canonicalization and the signature, verified here --------- */

/* relaxed_field - RFC 6376 3.4.2 over one field (with or without its
 * CRLF), written plainly: unfold, WSP runs to one SP, trim the value,
 * name in lower case, no WSP around the colon; CRLF added if crlf */
static void relaxed_field(const char *f, size_t len, bool crlf,
			  struct buf *out)
{
	char *v = malloc(len + 1), *w = v;
	const char *colon = memchr(f, ':', len);
	size_t nlen = (size_t)(colon - f);

	assert_non_null(v);
	while (nlen > 0 && (f[nlen - 1] == ' ' || f[nlen - 1] == '\t'))
		nlen--;
	for (size_t i = 0; i < nlen; i++)
		buf_putc(out, (char)(f[i] >= 'A' && f[i] <= 'Z' ?
				     f[i] + 32 : f[i]));
	buf_putc(out, ':');
	/* unfold, then compress */
	for (const char *p = colon + 1; p < f + len; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (*p == ' ' || *p == '\t') {
			if (w > v && w[-1] == ' ')
				continue;
			*w++ = ' ';
		} else {
			*w++ = *p;
		}
	}
	while (w > v && w[-1] == ' ')
		w--;
	*w = '\0';
	buf_append_str(out, v[0] == ' ' ? v + 1 : v);
	if (crlf)
		buf_append_str(out, "\r\n");
	free(v);
}

/* verify_b - does field's b= sign SHA-256(headers + field with b=
 * emptied, canonicalized, no CRLF) with pkey? */
static bool verify_b(EVP_PKEY *pkey, const struct buf *field,
		     const char *headers, bool relaxed)
{
	struct buf in = BUF_INIT;
	const char *b = buf_cstr(field);
	unsigned char sig[2048], md[32];
	const char *b64 = tag(field, "b");
	unsigned int mdlen;
	size_t siglen = strlen(b64) / 4 * 3, blen;
	bool ok;

	/* the tag "b=", after WSP or ';' (not "bh=", not padding) */
	do {
		b = strstr(b + 1, "b=");
		assert_non_null(b);
	} while (!strchr(" \t;", b[-1]));
	blen = (size_t)(b + 2 - field->data);
	buf_append_str(&in, headers);
	if (relaxed)
		relaxed_field(field->data, blen, false, &in);
	else
		buf_append(&in, field->data, blen);
	assert_int_equal(EVP_Digest(in.data, in.len, md, &mdlen,
				    EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DecodeBlock(sig, (const unsigned char *)b64,
					 (int)strlen(b64)),
			 (int)siglen);
	for (const char *p = b64 + strlen(b64); p > b64 && p[-1] == '=';
	     p--)
		siglen--;
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		ok = EVP_DigestVerifyInit(c, NULL, NULL, NULL, pkey) == 1 &&
		     EVP_DigestVerify(c, sig, siglen, md, 32) == 1;
		EVP_MD_CTX_free(c);
	} else {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pkey, NULL);

		ok = EVP_PKEY_verify_init(c) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(c, sig, siglen, md, 32) == 1;
		EVP_PKEY_CTX_free(c);
	}
	buf_free(&in);
	return ok;
}

/* The RFC 6376 3.4.5 headers, a header present twice (signed bottom-up,
 * 5.4.2), names in other cases, both algorithms, both canonicalizations:
 * b= verified against the canonical headers written out here. */
static void test_header_canonicalization(void **state)
{
	static const char *const names[] = { "From", "A", "B", "X-Tag" };
	static const char msg[] =
		"From: Joe  <joe@example.org>\r\n"
		"A: X\r\n"
		"B : Y\t\r\n"
		"\tZ  \r\n"
		"x-tag: one\r\n"
		"Not-Signed: n\r\n"
		"X-Tag:  two \r\n"
		"\r\n"
		" C \r\nD \t E\r\n\r\n\r\n";
	static const char relaxed[] =
		"from:Joe <joe@example.org>\r\n"
		"a:X\r\n"
		"b:Y Z\r\n"
		"x-tag:two\r\n"
		"x-tag:one\r\n";
	static const char simple[] =
		"From: Joe  <joe@example.org>\r\n"
		"A: X\r\n"
		"B : Y\t\r\n"
		"\tZ  \r\n"
		"X-Tag:  two \r\n"
		"x-tag: one\r\n";
	struct buf out = BUF_INIT, field = BUF_INIT;
	struct dkim_key_spec sp[4];
	EVP_PKEY *pk[4] = { rsa1024, ed, rsa1024b, edb };
	struct dkim_keys *keys;

	(void)state;
	for (int i = 0; i < 4; i++) {
		char name[16], sel[16];

		snprintf(name, sizeof(name), "h%d.key", i);
		snprintf(sel, sizeof(sel), "s%d", i);
		sp[i] = spec("example.org", strdup(sel),
			     strdup(write_key(name, pk[i], PEM_PKCS8, 0600)));
		sp[i].headers = names;
		sp[i].nheaders = 4;
		if (i >= 2)
			sp[i].header_canon = sp[i].body_canon =
				DKIM_CANON_SIMPLE;
	}
	keys = load(sp, 4);
	assert_int_equal(sign(keys, msg, &out), 4);
	for (int i = 0; i < 4; i++) {
		field_n(&out, i, &field);
		assert_string_equal(tag(&field, "h"),
				    "From:From:A:B:X-Tag:X-Tag");
		assert_string_equal(tag(&field, "c"), i < 2 ?
				    "relaxed/relaxed" : "simple/simple");
		assert_string_equal(tag(&field, "a"), i % 2 == 0 ?
				    "rsa-sha256" : "ed25519-sha256");
		if (!verify_b(pk[i], &field, i < 2 ? relaxed : simple,
			      i < 2))
			fail_msg("signature %d does not verify:\n%s", i,
				 field.data);
		/* and a changed header breaks it */
		if (verify_b(pk[i], &field, i < 2 ? "from:Jo <joe@example."
			     "org>\r\na:X\r\nb:Y Z\r\nx-tag:two\r\nx-tag:one"
			     "\r\n" : "From: Joe <joe@example.org>\r\n", i < 2))
			fail_msg("signature %d verifies what it did not sign",
				 i);
	}
	for (int i = 0; i < 4; i++) {
		free((char *)sp[i].selector);
		free((char *)sp[i].key_file);
	}
	dkim_keys_free(&keys);
	buf_free(&out);
	buf_free(&field);
}

/* Long header values (the signer copies blocks of words and single
 * spaces whole) with a double space, a tab, a fold or trailing WSP at
 * each offset in turn; one signer for all, as a worker keeps it, with an
 * RSA and an Ed25519 key: every b= verified here. */
static void test_header_canonicalization_long(void **state)
{
	static const char *const names[] = { "From", "Subject", "To" };
	static const char *const odd[] = { "  ", "\t", "\r\n\t", " \r\n ",
					   " \t" };
	struct dkim_key_spec sp[2] = {
		spec("example.org", "hr", write_key("hl1.key", rsa1024,
						    PEM_PKCS8, 0600)),
		spec("example.org", "he", write_key("hl2.key", ed,
						    PEM_PKCS8, 0600)),
	};
	EVP_PKEY *pk[2] = { rsa1024, ed };
	struct buf msg = BUF_INIT, hdr = BUF_INIT, out = BUF_INIT;
	struct buf field = BUF_INIT, subj = BUF_INIT;
	struct dkim_keys *keys;
	struct dkim_signer *s;
	const char *error;

	(void)state;
	for (int i = 0; i < 2; i++) {
		sp[i].headers = names;
		sp[i].nheaders = 3;
	}
	keys = load(sp, 2);
	assert_int_equal(dkim_signer_new(keys, &s, &error), 0);
	for (int at = 0; at < 40; at++) {
		buf_reset(&msg);
		buf_reset(&hdr);
		buf_reset(&subj);
		buf_append_str(&subj, "Subject: ");
		for (int i = 0; i < 90; i++)
			buf_append_str(&subj, i == at ? odd[at % 5] :
				       i % 6 == 5 ? " " : "w");
		buf_append_str(&subj, at % 3 == 0 ? " \t\r\n" : "\r\n");
		buf_append_str(&msg, "From: Someone With A Long Name "
			       "<someone@example.org>\r\n");
		buf_append(&msg, subj.data, subj.len);
		buf_append_str(&msg, "To: recipient-with-a-long-local-part@"
			       "example.net\r\n\r\nbody\r\n");
		relaxed_field("From: Someone With A Long Name "
			      "<someone@example.org>\r\n", 54, true, &hdr);
		relaxed_field(subj.data, subj.len, true, &hdr);
		relaxed_field("To: recipient-with-a-long-local-part@"
			      "example.net\r\n", 50, true, &hdr);
		buf_reset(&out);
		assert_int_equal(dkim_sign(s, msg.data, msg.len, NOW, &out,
					   &error), 2);
		for (int i = 0; i < 2; i++) {
			field_n(&out, i, &field);
			if (!verify_b(pk[i], &field, hdr.data, true))
				fail_msg("offset %d, key %d: no verify:\n%s"
					 "\n%s", at, i, hdr.data, field.data);
		}
	}
	dkim_signer_free(&s);
	dkim_keys_free(&keys);
	buf_free(&msg);
	buf_free(&hdr);
	buf_free(&out);
	buf_free(&field);
	buf_free(&subj);
}

/* The tags: v a c d s t (x) h bh b, t= the time given, x= days later. */
static void test_tags(void **state)
{
	struct dkim_key_spec sp[2] = {
		spec("example.org", "k1", write_key("t1.key", rsa1024,
						    PEM_PKCS8, 0600)),
		spec("example.org", "k2", write_key("t2.key", ed, PEM_PKCS8,
						    0600)),
	};
	struct buf out = BUF_INIT, field = BUF_INIT;
	struct dkim_keys *keys;
	char x[32];

	(void)state;
	sp[1].expire_days = 7;
	sp[1].header_canon = DKIM_CANON_SIMPLE;
	keys = load(sp, 2);
	assert_int_equal(sign(keys, "From: <a@example.org>\r\n\r\nhi\r\n",
			      &out), 2);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "v"), "1");
	assert_string_equal(tag(&field, "a"), "rsa-sha256");
	assert_string_equal(tag(&field, "c"), "relaxed/relaxed");
	assert_string_equal(tag(&field, "d"), "example.org");
	assert_string_equal(tag(&field, "s"), "k1");
	assert_null(tag(&field, "x"));
	assert_null(tag(&field, "l"));
	snprintf(x, sizeof(x), "%d", NOW);
	assert_string_equal(tag(&field, "t"), x);
	assert_int_equal(strlen(tag(&field, "b")), 172);	/* 128 bytes */
	field_n(&out, 1, &field);
	assert_string_equal(tag(&field, "a"), "ed25519-sha256");
	assert_string_equal(tag(&field, "c"), "simple/relaxed");
	assert_string_equal(tag(&field, "s"), "k2");
	snprintf(x, sizeof(x), "%d", NOW + 7 * 86400);
	assert_string_equal(tag(&field, "x"), x);
	assert_int_equal(strlen(tag(&field, "b")), 88);	/* 64 bytes */
	dkim_keys_free(&keys);
	buf_free(&out);
	buf_free(&field);
}

/* --- keys --------------------------------------------------------------- */

/* load_fails - loading key_file fails with an error naming it, saying
 * why (each of want) */
static void load_fails(const char *key_file, const char *want1,
		       const char *want2)
{
	struct dkim_key_spec sp = spec("example.org", "sel", key_file);
	struct dkim_keys *keys = NULL;
	const char *error = NULL;

	if (dkim_keys_load(&sp, 1, &keys, &error) == 0)
		fail_msg("%s loaded", key_file);
	assert_null(keys);
	assert_non_null(error);
	if (!contains(error, key_file) ||
	    !contains(error, "domain example.org, selector sel") ||
	    !contains(error, want1) || (want2 && !contains(error, want2)))
		fail_msg("%s: error '%s' (wanted '%s'%s%s)", key_file, error,
			 want1, want2 ? ", " : "", want2 ? want2 : "");
}

static EVP_PKEY *rsa_of(unsigned bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);

	assert_non_null(k);
	return k;
}

/* fifo_fails - loading a FIFO fails at once, naming it: opening it must
 * not wait for a writer (in a child, so that a hang is a failure here) */
static void fifo_fails(const char *path)
{
	struct dkim_key_spec sp = spec("example.org", "sel", path);
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct dkim_keys *keys = NULL;
		const char *error = NULL;

		alarm(5);
		_exit(dkim_keys_load(&sp, 1, &keys, &error) == -1 &&
		      contains(error, path) &&
		      contains(error, "not a regular file") ? 0 : 1);
	}
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(100 * 1000);
	}
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("%s: loading a FIFO hangs", path);
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		fail_msg("%s: loading a FIFO hangs", path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: loading a FIFO did not fail as it should "
			 "(status %d)", path, status);
}

static void test_key_errors(void **state)
{
	EVP_PKEY *k512 = rsa_of(512), *k768 = rsa_of(768);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char src[512], big[128];
	FILE *in, *out;
	size_t n;

	(void)state;
	assert_non_null(ec);
	load_fails(path_of("missing.key"), "No such file", NULL);
	load_fails(write_key("world.key", ed, PEM_PKCS8, 0644),
		   "by every user", "0644");
	load_fails(write_key("worldw.key", ed, PEM_PKCS8, 0602),
		   "by every user", "0602");
	load_fails(write_key("enc.key", rsa1024, PEM_ENCRYPTED, 0600),
		   "encrypted", NULL);
	load_fails(write_key("enc1.key", rsa1024, PEM_ENCRYPTED_TRADITIONAL,
			     0600), "encrypted", NULL);
	load_fails(write_key("r512.key", k512, PEM_PKCS8, 0600), "512 bits",
		   "too short");
	load_fails(write_key("r768.key", k768, PEM_TRADITIONAL, 0600),
		   "768 bits", "too short");
	load_fails(write_key("ec.key", ec, PEM_PKCS8, 0600), "type EC",
		   "RSA or Ed25519");
	write_text(path_of("text.key"), "this is not a key\n", 0600);
	load_fails(path_of("text.key"), "not a PEM private key", NULL);
	/* a public key is not the private key */
	out = fopen(path_of("pub.key"), "w");
	assert_non_null(out);
	assert_int_equal(PEM_write_PUBKEY(out, rsa1024), 1);
	fclose(out);
	chmod(path_of("pub.key"), 0600);
	load_fails(path_of("pub.key"), "not a PEM private key", NULL);
	/* an empty file (its buffer was read as a C string unterminated) */
	write_text(path_of("empty.key"), "", 0600);
	load_fails(path_of("empty.key"), "not a PEM private key", NULL);
	load_fails(dir, "not a regular file", NULL);
	/* an RSA key over 8192 bits: its signatures do not fit (too slow to
	 * make here: a fixture) */
	snprintf(src, sizeof(src), "%.*s/dkim/rsa-8704.pem",
		 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
	in = fopen(src, "r");
	if (in == NULL)
		fail_msg("%s: %s", src, strerror(errno));
	snprintf(big, sizeof(big), "%s", path_of("r8704.key"));
	out = fopen(big, "w");
	assert_non_null(out);
	while ((n = fread(src, 1, sizeof(src), in)) > 0)
		assert_int_equal(fwrite(src, 1, n, out), n);
	fclose(in);
	fclose(out);
	chmod(big, 0600);
	load_fails(big, "8704 bits", "at most 8192");
	/* a FIFO fails at once: opening it must not wait for a writer */
	assert_int_equal(mkfifo(path_of("fifo.key"), 0600), 0);
	fifo_fails(path_of("fifo.key"));
	EVP_PKEY_free(k512);
	EVP_PKEY_free(k768);
	EVP_PKEY_free(ec);
}

static void test_keys_that_load(void **state)
{
	struct dkim_key_spec sp[4] = {
		spec("example.org", "a", write_key("l1.key", rsa1024,
						   PEM_TRADITIONAL, 0600)),
		spec("example.org", "b", write_key("l2.key", ed, PEM_PKCS8,
						   0400)),
		/* a group may read it (the group of a signing daemon) */
		spec("example.org", "c", write_key("l3.key", rsa2048,
						   PEM_PKCS8, 0640)),
		spec("example.org", "d", write_key("l4.key", edb, PEM_PKCS8,
						   0600)),
	};
	struct dkim_key_info ki;
	struct dkim_keys *keys = load(sp, 4);

	(void)state;
	assert_int_equal(dkim_keys_count(keys), 4);
	dkim_key_info(keys, 0, &ki);
	assert_int_equal(ki.alg, DKIM_ALG_RSA_SHA256);
	assert_int_equal(ki.bits, 1024);
	assert_string_equal(ki.key_file, sp[0].key_file);
	dkim_key_info(keys, 1, &ki);
	assert_int_equal(ki.alg, DKIM_ALG_ED25519_SHA256);
	dkim_key_info(keys, 2, &ki);
	assert_int_equal(ki.bits, 2048);
	dkim_key_info(keys, 3, &ki);
	assert_int_equal(ki.alg, DKIM_ALG_ED25519_SHA256);
	dkim_keys_free(&keys);
	assert_null(keys);
}

/* --- which keys sign ---------------------------------------------------- */

static void test_domain_match(void **state)
{
	static const char *const yes[] = {
		"example.org", "news.example.org", "a.b.example.org",
		"EXAMPLE.ORG", "News.Example.Org", "example.org.",
		"news.example.org.",
	};
	static const char *const no[] = {
		"notexample.org", "example.org.evil.com", "org", "xample.org",
		"example.com", "", ".", "example.orgx", "news-example.org",
	};
	struct dkim_key_spec sp = spec("example.org", "s",
				       write_key("d.key", ed, PEM_PKCS8,
						 0600));
	struct dkim_keys *keys = load(&sp, 1);
	struct buf out = BUF_INIT, field = BUF_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!dkim_keys_match(keys, 0, yes[i], strlen(yes[i])))
			fail_msg("example.org's key does not sign for %s",
				 yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (dkim_keys_match(keys, 0, no[i], strlen(no[i])))
			fail_msg("example.org's key signs for '%s'", no[i]);
	/* a parent signs with its own d= */
	assert_int_equal(sign(keys, "From: N <news@News.Example.org>\r\n"
			      "\r\nx\r\n", &out), 1);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "d"), "example.org");
	/* no key for the domain: no signature, nothing written */
	assert_int_equal(sign(keys, "From: n@notexample.org\r\n\r\nx\r\n",
			      &out), 0);
	assert_int_equal(out.len, 0);
	dkim_keys_free(&keys);
	buf_free(&out);
	buf_free(&field);
}

/*
 * An IDN From domain (SMTPUTF8 mail) is signed by the keys of its A-label
 * form, which d= and DNS hold (RFC 3492's vectors: bücher, münchen).
 */
static void test_idn_from(void **state)
{
	struct dkim_key_spec sp[2] = {
		spec("xn--bcher-kva.example", "s",
		     write_key("idn1.key", ed, PEM_PKCS8, 0600)),
		spec("xn--mnchen-3ya.de", "s",
		     write_key("idn2.key", ed, PEM_PKCS8, 0600)),
	};
	struct dkim_keys *keys = load(sp, 2);
	struct buf out = BUF_INIT, field = BUF_INIT;

	(void)state;
	assert_int_equal(sign(keys, "From: B <news@b\xc3\xbc"
			      "cher.example>\r\n\r\nx\r\n", &out), 1);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "d"), "xn--bcher-kva.example");
	assert_int_equal(sign(keys, "From: a@news.m\xc3\xbcnchen.de\r\n"
			      "\r\nx\r\n", &out), 1);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "d"), "xn--mnchen-3ya.de");
	/* not UTF-8: no key, and no crash */
	assert_int_equal(sign(keys, "From: a@b\xfc" "cher.example\r\n"
			      "\r\nx\r\n", &out), 0);
	assert_int_equal(sign(keys, "From: a@b\xc3" "cher.example\r\n"
			      "\r\nx\r\n", &out), 0);
	dkim_keys_free(&keys);
	buf_free(&out);
	buf_free(&field);
}

/* Two keys of one domain (rotation, or RSA beside Ed25519): two
 * signatures; another domain's key: none from it. */
static void test_two_keys_two_signatures(void **state)
{
	struct dkim_key_spec sp[3] = {
		spec("example.org", "s2026", write_key("m1.key", rsa1024,
						       PEM_PKCS8, 0600)),
		spec("other.org", "x", write_key("m2.key", edb, PEM_PKCS8,
						 0600)),
		spec("example.org", "e2026", write_key("m3.key", ed,
						       PEM_PKCS8, 0600)),
	};
	struct dkim_keys *keys = load(sp, 3);
	struct buf out = BUF_INIT, field = BUF_INIT;

	(void)state;
	assert_int_equal(sign(keys, "From: a@example.org\r\nTo: b@x.org\r\n"
			      "\r\nbody\r\n", &out), 2);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "s"), "s2026");
	field_n(&out, 1, &field);
	assert_string_equal(tag(&field, "s"), "e2026");
	assert_null(strstr(out.data, "other.org"));
	/* one body hash serves both: the same canonicalization */
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "bh"), sha256_b64("body\r\n", 6));
	dkim_keys_free(&keys);
	buf_free(&out);
	buf_free(&field);
}

static void test_bad_messages(void **state)
{
	static const char *const bad[][2] = {
		{ "To: b@example.org\r\nSubject: no from\r\n\r\nx\r\n",
		  "no From" },
		{ "\r\nFrom: a@example.org\r\n", "no From" },
		{ "From: a@example.org\r\nFrom: b@example.org\r\n\r\n",
		  "two From" },
		{ "From: Nobody\r\n\r\nx\r\n", "no address" },
		{ " From: a@example.org\r\n\r\n", "continuation" },
		{ "From a@example.org\r\n\r\n", "without a colon" },
	};
	struct dkim_key_spec sp = spec("example.org", "s",
				       write_key("bad.key", ed, PEM_PKCS8,
						 0600));
	struct dkim_keys *keys = load(&sp, 1);
	struct dkim_signer *s;
	struct buf out = BUF_INIT;
	const char *error;

	(void)state;
	assert_int_equal(dkim_signer_new(keys, &s, &error), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (dkim_sign(s, bad[i][0], strlen(bad[i][0]), NOW, &out,
			      &error) != -1)
			fail_msg("message %zu was signed", i);
		if (error == NULL || !contains(error, bad[i][1]))
			fail_msg("message %zu: '%s', wanted '%s'", i,
				 error ? error : "(none)", bad[i][1]);
	}
	dkim_signer_free(&s);
	dkim_keys_free(&keys);
	buf_free(&out);
}

/* --- h=, folding, room -------------------------------------------------- */

static const char full_msg[] =
	"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
	"From: Volley Newsletter <news@example.org>\r\n"
	"Message-ID: <volley.1.1.1@example.org>\r\n"
	"To: ada@example.org\r\n"
	"Subject: =?UTF-8?B?RnLDvGhsaW5nc2dyw7zDn2Us?= Ada: what's new this "
	"spring\r\n =?UTF-8?B?8J+Mtw==?=\r\n"
	"Reply-To: Volley Team <team@example.org>\r\n"
	"List-Unsubscribe: <https://example.org/unsubscribe?u=ada@example."
	"org>,\r\n <mailto:unsubscribe@example.org?subject=unsubscribe>\r\n"
	"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	"List-Id: News <news.example.org>\r\n"
	"Feedback-ID: 1:news:volley\r\n"
	"X-Campaign: spring-news\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Hello Ada,\r\n";

static void test_h_list(void **state)
{
	static const char *const custom[] = { "from", "X-Tag", "Subject" };
	struct dkim_key_spec sp[2] = {
		spec("example.org", "s", write_key("hl.key", ed, PEM_PKCS8,
						   0600)),
		spec("example.org", "c", write_key("hl2.key", edb, PEM_PKCS8,
						   0600)),
	};
	struct dkim_keys *keys;
	struct buf out = BUF_INIT, field = BUF_INIT, msg = BUF_INIT;

	(void)state;
	sp[1].headers = custom;
	sp[1].nheaders = 3;
	keys = load(sp, 2);
	/* every default present once */
	assert_int_equal(sign(keys, full_msg, &out), 2);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "h"),
			    "From:From:To:To:Subject:Subject:Date:Message-ID:"
			    "MIME-Version:Content-Type:Reply-To:Reply-To:"
			    "List-Unsubscribe:List-Unsubscribe:"
			    "List-Unsubscribe-Post:List-Unsubscribe-Post:"
			    "List-Id:Feedback-ID");
	field_n(&out, 1, &field);
	assert_string_equal(tag(&field, "h"), "from:from:Subject:Subject");
	/* few present, one twice: each once per instance, and the
	 * oversigned ones once more whether present or not */
	buf_append_str(&msg, "From: a@example.org\r\nTo: b@x.org\r\n"
		       "X-Tag: 1\r\nto: c@x.org\r\nReceived: x\r\n"
		       "X-Tag: 2\r\nDate: d\r\n\r\n");
	assert_int_equal(sign(keys, buf_cstr(&msg), &out), 2);
	field_n(&out, 0, &field);
	assert_string_equal(tag(&field, "h"),
			    "From:From:To:To:To:Subject:Date:Reply-To:"
			    "List-Unsubscribe:List-Unsubscribe-Post");
	field_n(&out, 1, &field);
	assert_string_equal(tag(&field, "h"), "from:from:X-Tag:X-Tag:Subject");
	dkim_keys_free(&keys);
	buf_free(&out);
	buf_free(&field);
	buf_free(&msg);
}

/* No line of a signature over 78 columns (RFC 5322 2.1.1), with a long
 * domain and selector, x=, both algorithms; each line ends in CRLF and
 * each continuation starts with WSP. */
static void test_folding(void **state)
{
	static const char *const domains[] = {
		"example.org",
		"newsletter.mail.example-company.co.uk",
		"a-very-long-subdomain-for-bulk-mail.newsletter.example.org",
	};
	static const char *const selectors[] = {
		"s", "selector-2026-rotation-b", "s2026-ed25519-a-long-one-x",
	};
	struct buf out = BUF_INIT, msg = BUF_INIT;

	(void)state;
	for (size_t d = 0; d < 3; d++) {
		struct dkim_key_spec sp[3] = {
			spec(domains[d], selectors[d],
			     write_key("f1.key", rsa2048, PEM_PKCS8, 0600)),
			spec(domains[d], "e", write_key("f2.key", ed,
							PEM_PKCS8, 0600)),
			spec(domains[d], "simple-canonicalization-key",
			     write_key("f3.key", rsa1024, PEM_PKCS8, 0600)),
		};
		struct dkim_keys *keys;
		size_t w;

		sp[1].expire_days = 3650;
		sp[2].header_canon = DKIM_CANON_SIMPLE;
		sp[2].expire_days = 1;
		keys = load(sp, 3);
		buf_reset(&msg);
		buf_printf(&msg, "From: x <n@news.%s>\r\n%s", domains[d],
			   strstr(full_msg, "Message-ID:"));
		assert_int_equal(sign(keys, buf_cstr(&msg), &out), 3);
		w = columns(buf_cstr(&out));
		if (w > 78)
			fail_msg("a line of %zu columns:\n%s", w, out.data);
		for (const char *p = out.data; (p = strstr(p, "\r\n")); ) {
			p += 2;
			if (*p != '\0' && *p != ' ' && *p != '\t' &&
			    strncmp(p, "DKIM-Signature:", 15) != 0)
				fail_msg("a line that starts a field:\n%s",
					 out.data);
		}
		dkim_keys_free(&keys);
	}
	buf_free(&out);
	buf_free(&msg);
}

/* dkim_sign_buf with dkim_keys_room before the message: the signatures
 * go in front, and the message's bytes stay where they are. */
static void test_room(void **state)
{
	struct dkim_key_spec sp[4] = {
		spec("example.org", "selector-rsa-2048-long",
		     write_key("r1.key", rsa2048, PEM_PKCS8, 0600)),
		spec("example.org", "e", write_key("r2.key", ed, PEM_PKCS8,
						   0600)),
		spec("news.example.org", "n", write_key("r3.key", rsa1024,
							PEM_PKCS8, 0600)),
		spec("example.org", "x", write_key("r4.key", edb, PEM_PKCS8,
						   0600)),
	};
	struct dkim_keys *keys;
	struct dkim_signer *s;
	struct buf msg = BUF_INIT, out = BUF_INIT;
	const char *error;
	size_t room, start, len;
	char *data;

	(void)state;
	sp[0].expire_days = 3650;
	sp[2].header_canon = DKIM_CANON_SIMPLE;
	sp[2].body_canon = DKIM_CANON_SIMPLE;
	keys = load(sp, 4);
	room = dkim_keys_room(keys);
	assert_int_equal(dkim_signer_new(keys, &s, &error), 0);
	for (int round = 0; round < 3; round++) {
		buf_reset(&msg);
		buf_reserve(&msg, room);
		memset(msg.data, '#', room);
		msg.len = room;
		buf_append_str(&msg, "From: x <a@news.example.org>\r\n");
		buf_append_str(&msg, strstr(full_msg, "Message-ID:"));
		data = msg.data;
		len = msg.len;
		assert_int_equal(dkim_sign_buf(s, &msg, room, NOW, &start,
					       &error), 4);
		/* not moved, not grown */
		assert_ptr_equal(msg.data, data);
		assert_int_equal(msg.len, len);
		assert_memory_equal(msg.data + room, "From: x <a@news", 15);
		assert_true(start > 0 && start <= room);
		assert_memory_equal(msg.data + start, "DKIM-Signature:", 15);
		/* the same bytes as dkim_sign writes */
		buf_reset(&out);
		assert_int_equal(dkim_sign(s, msg.data + room, msg.len - room,
					   NOW, &out, &error), 4);
		assert_int_equal(out.len, room - start);
		assert_memory_equal(out.data, msg.data + start, out.len);
	}
	/* without room: the message moves behind its signatures */
	buf_reset(&msg);
	buf_append_str(&msg, full_msg);
	assert_int_equal(dkim_sign_buf(s, &msg, 0, NOW, &start, &error), 3);
	assert_int_equal(start, 0);
	assert_memory_equal(msg.data, "DKIM-Signature:", 15);
	assert_non_null(strstr(msg.data, "\r\nDate: Thu"));
	assert_int_equal(strlen(msg.data), msg.len);
	dkim_signer_free(&s);
	dkim_keys_free(&keys);
	buf_free(&msg);
	buf_free(&out);
}

/* One signer, messages in turn: nothing of one message leaks into the
 * next (the body hash is per message, the buffers are reused). */
static void test_signer_reuse(void **state)
{
	struct dkim_key_spec sp[2] = {
		spec("example.org", "a", write_key("u1.key", rsa1024,
						   PEM_PKCS8, 0600)),
		spec("example.org", "b", write_key("u2.key", ed, PEM_PKCS8,
						   0600)),
	};
	struct dkim_keys *keys;
	struct dkim_signer *s;
	struct buf a1 = BUF_INIT, b1 = BUF_INIT, a2 = BUF_INIT;
	static const char ma[] = "From: a@example.org\r\n\r\nfirst\r\n";
	static const char mb[] = "From: b@example.org\r\nTo: x@y.z\r\n"
				 "\r\nsecond, longer\r\n";
	const char *error;

	(void)state;
	sp[1].body_canon = DKIM_CANON_SIMPLE;
	keys = load(sp, 2);
	assert_int_equal(dkim_signer_new(keys, &s, &error), 0);
	assert_int_equal(dkim_sign(s, ma, strlen(ma), NOW, &a1, &error), 2);
	assert_int_equal(dkim_sign(s, mb, strlen(mb), NOW, &b1, &error), 2);
	assert_int_equal(dkim_sign(s, ma, strlen(ma), NOW, &a2, &error), 2);
	assert_int_equal(a1.len, a2.len);
	assert_memory_equal(a1.data, a2.data, a1.len);
	assert_int_not_equal(strcmp(a1.data, b1.data), 0);
	dkim_signer_free(&s);
	assert_null(s);
	dkim_keys_free(&keys);
	buf_free(&a1);
	buf_free(&b1);
	buf_free(&a2);
}

/* --- dkim check: a key against a TXT record ---------------------------- */

static void txt_of(EVP_PKEY *pkey, bool pkcs1, struct buf *txt)
{
	unsigned char *der = NULL, raw[32];
	size_t rawlen = sizeof(raw);
	char b64[2048];
	int n;

	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		assert_int_equal(EVP_PKEY_get_raw_public_key(pkey, raw,
							     &rawlen), 1);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
		buf_printf(txt, "v=DKIM1; k=ed25519; p=%s", b64);
		return;
	}
	n = pkcs1 ? i2d_PublicKey(pkey, &der) : i2d_PUBKEY(pkey, &der);
	assert_true(n > 0);
	EVP_EncodeBlock((unsigned char *)b64, der, n);
	OPENSSL_free(der);
	buf_printf(txt, "v=DKIM1; k=rsa; p=%s", b64);
}

/* check - dkim_check_txt of key i against txt; want its result and, when
 * not 1, words of its reason */
static void check(const struct dkim_keys *keys, size_t i, const char *txt,
		  int want, const char *why)
{
	const char *reason = NULL;
	int got = dkim_check_txt(keys, i, txt, &reason);

	if (got != want)
		fail_msg("'%.60s...': %d (%s), wanted %d", txt, got,
			 reason ? reason : "", want);
	if (why != NULL && (reason == NULL || !contains(reason, why)))
		fail_msg("'%.60s...': '%s', wanted '%s'", txt,
			 reason ? reason : "(none)", why);
}

static void test_check_txt(void **state)
{
	struct dkim_key_spec sp[2] = {
		spec("example.org", "r", write_key("c1.key", rsa1024,
						   PEM_PKCS8, 0600)),
		spec("example.org", "e", write_key("c2.key", ed, PEM_PKCS8,
						   0600)),
	};
	struct dkim_keys *keys = load(sp, 2);
	struct buf txt = BUF_INIT, spaced = BUF_INIT;
	const char *error;

	(void)state;
	/* what the key itself says to publish */
	assert_int_equal(dkim_public_txt(keys, 0, &txt, &error), 0);
	check(keys, 0, txt.data, 1, NULL);
	buf_reset(&txt);
	assert_int_equal(dkim_public_txt(keys, 1, &txt, &error), 0);
	assert_memory_equal(txt.data, "v=DKIM1; k=ed25519; p=", 22);
	check(keys, 1, txt.data, 1, NULL);
	/* records made here, from the keys */
	buf_reset(&txt);
	txt_of(rsa1024, false, &txt);
	check(keys, 0, txt.data, 1, NULL);
	/* the bare RSAPublicKey (PKCS #1), as some publish it */
	buf_reset(&txt);
	txt_of(rsa1024, true, &txt);
	check(keys, 0, txt.data, 1, NULL);
	/* split by whitespace, as joined DNS strings may be; no v= */
	buf_append_str(&spaced, " k = rsa ;p= ");
	for (const char *p = strstr(txt.data, "p=") + 2; *p; p++) {
		buf_putc(&spaced, *p);
		if (strlen(p) % 50 == 1)
			buf_append_str(&spaced, " \t");
	}
	check(keys, 0, spaced.data, 1, NULL);
	buf_reset(&txt);
	txt_of(ed, false, &txt);
	check(keys, 1, txt.data, 1, NULL);
	/* another key of the same algorithm */
	buf_reset(&txt);
	txt_of(rsa1024b, false, &txt);
	check(keys, 0, txt.data, 0, "another key");
	buf_reset(&txt);
	txt_of(edb, false, &txt);
	check(keys, 1, txt.data, 0, "another key");
	/* another algorithm */
	check(keys, 0, txt.data, 0, "another algorithm");
	buf_reset(&txt);
	txt_of(rsa1024, false, &txt);
	check(keys, 1, txt.data, 0, "another algorithm");
	/* revoked */
	check(keys, 0, "v=DKIM1; k=rsa; p=", 0, "revokes");
	check(keys, 1, "v=DKIM1; k=ed25519; p= ;", 0, "revokes");
	/* not DKIM, no key, hashes without sha256, not base64 */
	check(keys, 0, "v=spf1 -all", 0, "not a DKIM key record");
	check(keys, 0, "v=DKIM1; k=rsa", -1, "no p=");
	check(keys, 0, "v=DKIM1; h=sha1; p=AAAA", 0, "sha256");
	check(keys, 0, "v=DKIM1; p=!!notbase64", -1, "not base64");
	check(keys, 0, "v=DKIM1; p=AAAA", 0, "another key");
	dkim_keys_free(&keys);
	buf_free(&txt);
	buf_free(&spaced);
}

/* dkim_keygen: mode 0600, never over a file, a record that checks. */
static void test_keygen(void **state)
{
	struct buf txt_ed = BUF_INIT, txt_rsa = BUF_INIT, txt = BUF_INIT;
	struct dkim_key_spec sp[2];
	struct dkim_key_info ki;
	struct dkim_keys *keys;
	const char *error;
	struct stat st;

	(void)state;
	umask(022);
	assert_int_equal(dkim_keygen(DKIM_ALG_ED25519_SHA256, 0,
				     path_of("new-ed.key"), &txt_ed, &error),
			 0);
	assert_int_equal(stat(path_of("new-ed.key"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	sp[0] = spec("example.org", "e", strdup(path_of("new-ed.key")));
	assert_int_equal(dkim_keygen(DKIM_ALG_RSA_SHA256, 1024,
				     path_of("new-rsa.key"), &txt_rsa,
				     &error), 0);
	assert_int_equal(stat(path_of("new-rsa.key"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	sp[1] = spec("example.org", "r", strdup(path_of("new-rsa.key")));
	keys = load(sp, 2);
	assert_memory_equal(txt_ed.data, "v=DKIM1; k=ed25519; p=", 22);
	assert_memory_equal(txt_rsa.data, "v=DKIM1; k=rsa; p=", 18);
	check(keys, 0, txt_ed.data, 1, NULL);
	check(keys, 1, txt_rsa.data, 1, NULL);
	check(keys, 1, txt_ed.data, 0, "another algorithm");
	dkim_keys_free(&keys);
	/* never over an existing file, which stays as it was */
	assert_int_equal(dkim_keygen(DKIM_ALG_ED25519_SHA256, 0,
				     path_of("new-rsa.key"), &txt, &error), -1);
	assert_true(contains(error, "new-rsa.key"));
	assert_true(contains(error, "never overwritten"));
	assert_int_equal(txt.len, 0);
	keys = load(sp, 2);
	dkim_key_info(keys, 1, &ki);
	assert_int_equal(ki.alg, DKIM_ALG_RSA_SHA256);
	assert_int_equal(ki.bits, 1024);
	check(keys, 1, txt_rsa.data, 1, NULL);
	dkim_keys_free(&keys);
	/* bits out of range */
	assert_int_equal(dkim_keygen(DKIM_ALG_RSA_SHA256, 768,
				     path_of("short.key"), &txt, &error), -1);
	assert_true(contains(error, "1024 to 8192"));
	assert_int_equal(access(path_of("short.key"), F_OK), -1);
	free((char *)sp[0].key_file);
	free((char *)sp[1].key_file);
	buf_free(&txt_ed);
	buf_free(&txt_rsa);
	buf_free(&txt);
}

/* --- setup -------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/volley-test-dkim-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	rsa1024b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	edb = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return rsa1024 && rsa1024b && rsa2048 && ed && edb ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa1024b);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(edb);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_canonicalization),
		cmocka_unit_test(test_body_canonicalization_long),
		cmocka_unit_test(test_body_canonicalization_prose),
		cmocka_unit_test(test_header_canonicalization),
		cmocka_unit_test(test_header_canonicalization_long),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_key_errors),
		cmocka_unit_test(test_keys_that_load),
		cmocka_unit_test(test_domain_match),
		cmocka_unit_test(test_idn_from),
		cmocka_unit_test(test_two_keys_two_signatures),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_h_list),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_room),
		cmocka_unit_test(test_signer_reuse),
		cmocka_unit_test(test_check_txt),
		cmocka_unit_test(test_keygen),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
