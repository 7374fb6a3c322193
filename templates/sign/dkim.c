/*
 * dkim - DKIM signatures over finished messages (see dkim.h).
 *
 * Built on OpenSSL's EVP interface rather than libopendkim: that library
 * allocates a handle and copies the message for every signature, and
 * volley signs in its workers' hot path, over buffers it already has.
 *
 * The signature covers the canonicalized headers named in h=, then the
 * DKIM-Signature field itself with an empty b= (RFC 6376 3.7).  rsa-sha256
 * signs that SHA-256 with PKCS #1 v1.5; ed25519-sha256 signs the same
 * 32-byte hash with PureEdDSA (RFC 8463 3).
 */
#include "dkim.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base64.h"
#include "errmsg.h"
#include "xalloc.h"

/* RFC 8301: verifiers refuse RSA keys under 1024 bits */
#define DKIM_RSA_MIN_BITS 1024
#define DKIM_RSA_MAX_BITS 8192
/* a PEM private key of 8192 bits is under 7 KB */
#define DKIM_KEY_FILE_MAX (64 * 1024)
/* base64 of the signature: this many characters a line */
#define DKIM_B64_LINE 64

const struct dkim_header_rule dkim_default_headers[] = {
	{ "From", true }, { "To", true }, { "Subject", true },
	{ "Date", false }, { "Message-ID", false },
	{ "MIME-Version", false }, { "Content-Type", false },
	{ "Reply-To", true }, { "List-Unsubscribe", true },
	{ "List-Unsubscribe-Post", true }, { "List-Id", false },
	{ "Feedback-ID", false },
};
const size_t dkim_default_nheaders =
	sizeof(dkim_default_headers) / sizeof(dkim_default_headers[0]);

struct dkim_key {
	char *domain;
	char *selector;
	char *key_file;
	struct dkim_header_rule *headers;	/* names owned */
	size_t nheaders;
	enum dkim_canon header_canon, body_canon;
	unsigned expire_days;
	enum dkim_alg alg;
	unsigned bits;
	EVP_PKEY *pkey;
};

struct dkim_keys {
	struct dkim_key *k;
	size_t n;
	EVP_MD *sha256;		/* fetched once, not per hash */
	size_t room;
};

/* one header field of the message being signed */
struct dkim_field {
	size_t off;		/* from the message's start */
	size_t len;		/* with its final CRLF */
	size_t name_len;	/* up to the colon, trailing WSP dropped */
	bool used;		/* taken by this signature's h= already */
};

struct dkim_signer {
	const struct dkim_keys *keys;
	EVP_MD_CTX *hash;
	/* per key, NULL for the other algorithm's keys.  Ed25519's must be
	 * the key's own: OpenSSL 3.0 keeps a context's EVP_PKEY_CTX, and
	 * with it the first key, whatever key a later EVP_DigestSignInit
	 * names.  It is initialised once, here, as `openssl speed` does:
	 * OpenSSL 3.0 signs again and again on it (initialising it anew
	 * costs 8,000 instructions a signature, 1.3% of the key operation);
	 * a later OpenSSL that refuses a second one-shot gets it
	 * initialised again (see dkim_ed25519_sign) */
	EVP_MD_CTX **ed25519;
	EVP_PKEY_CTX **rsa;
	struct dkim_field *fields;
	size_t nfields, fields_cap;
	struct buf canon;		/* one field, canonicalized */
	struct buf sigs;		/* dkim_sign_buf's signatures */
	unsigned char body_hash[2][32];	/* by body canonicalization */
	bool body_hashed[2];
};

static const char *const dkim_canon_names[] = {
	[DKIM_CANON_SIMPLE] = "simple",
	[DKIM_CANON_RELAXED] = "relaxed",
};

const char *dkim_alg_name(enum dkim_alg alg)
{
	return alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" :
	       "rsa-sha256";
}

/* dkim_ssl_error - OpenSSL's reason for the last failure, or fallback */
static const char *dkim_ssl_error(const char *fallback)
{
	unsigned long e = ERR_get_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : fallback;
}

/* --- keys ---------------------------------------------------------------- */

bool dkim_name_valid(const char *s)
{
	size_t label = 0;

	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-' ||
			   *s == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

static int dkim_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* dkim_read_key_file - the PEM text of a key file, checked; -1 if not */
static int dkim_read_key_file(const char *path, struct buf *pem,
			      const char **error_r)
{
	struct stat st;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO must not hold the start until a writer comes
	 * (it is refused below); a regular file ignores it */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errmsg_set(error_r, "%s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errmsg_set(error_r, "not a regular file");
	}
	if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
		close(fd);
		return errmsg_set(error_r, "%s by every user of this machine "
				  "(mode %04o): chmod 600 it (and make a new "
				  "key if others may have read it)",
				  (st.st_mode & S_IROTH) != 0 ? "readable" :
				  "writable", (unsigned)(st.st_mode & 07777));
	}
	if (st.st_size > DKIM_KEY_FILE_MAX) {
		close(fd);
		return errmsg_set(error_r, "%lld bytes: too large to be a "
				  "key", (long long)st.st_size);
	}
	buf_reserve(pem, (size_t)st.st_size + 1);
	while ((n = read(fd, pem->data + pem->len,
			 pem->cap - pem->len - 1)) > 0) {
		pem->len += (size_t)n;
		pem->data[pem->len] = '\0';
		if (pem->len + 1 >= pem->cap)
			break;
	}
	close(fd);
	if (n < 0)
		return errmsg_set(error_r, "%s", strerror(errno));
	/* an empty file reads nothing: the text is still a C string */
	pem->data[pem->len] = '\0';
	return 0;
}

/* dkim_parse_key - the private key in pem, with its algorithm */
static int dkim_parse_key(const struct buf *pem, struct dkim_key *k,
			  const char **error_r)
{
	BIO *bio;

	if (strstr(buf_cstr(pem), "ENCRYPTED") != NULL)
		return errmsg_set(error_r, "encrypted with a passphrase: "
				  "volley needs it unencrypted (openssl "
				  "pkey -in KEY -out NEW writes one)");
	bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	if (bio == NULL)
		return errmsg_set(error_r, "%s", dkim_ssl_error("no memory"));
	k->pkey = PEM_read_bio_PrivateKey(bio, NULL, dkim_no_passphrase,
					  NULL);
	BIO_free(bio);
	if (k->pkey == NULL)
		return errmsg_set(error_r, "not a PEM private key (%s)",
				  dkim_ssl_error("unreadable"));
	if (EVP_PKEY_is_a(k->pkey, "RSA")) {
		k->alg = DKIM_ALG_RSA_SHA256;
		k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
		if (k->bits < DKIM_RSA_MIN_BITS)
			return errmsg_set(error_r, "an RSA key of %u bits is "
					  "too short: DKIM needs at least "
					  "1024 (2048 recommended)", k->bits);
		/* its signature must fit dkim_sign_one's buffer; and
		 * verifiers need only take 1024 to 4096 (RFC 8301) */
		if (k->bits > DKIM_RSA_MAX_BITS)
			return errmsg_set(error_r, "an RSA key of %u bits is "
					  "too long: volley signs with at most "
					  "8192 (and receivers check up to "
					  "4096; 2048 recommended)", k->bits);
	} else if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
		k->alg = DKIM_ALG_ED25519_SHA256;
		k->bits = 256;
	} else {
		const char *type = EVP_PKEY_get0_type_name(k->pkey);

		return errmsg_set(error_r, "a key of type %s: DKIM signs "
				  "with RSA or Ed25519 keys",
				  type ? type : "unknown");
	}
	return 0;
}

/* dkim_key_room - the most a signature by k can take, generously */
static size_t dkim_key_room(const struct dkim_key *k)
{
	size_t room = 200 + strlen(k->domain) + strlen(k->selector);
	size_t sig = (size_t)EVP_PKEY_get_size(k->pkey);
	size_t b64 = base64_len(sig);

	/* each header a few times, with its colon and folding */
	for (size_t i = 0; i < k->nheaders; i++)
		room += 3 * (strlen(k->headers[i].name) + 4);
	return room + b64 + 3 * (b64 / DKIM_B64_LINE + 1) + 64;
}

static int dkim_key_load(const struct dkim_key_spec *spec,
			 const struct dkim_header_rule *rules, size_t nrules,
			 struct dkim_key *k, const char **error_r)
{
	struct buf pem = BUF_INIT;
	const char *error;
	int ret;

	k->domain = xstrdup(spec->domain);
	k->selector = xstrdup(spec->selector);
	k->key_file = xstrdup(spec->key_file);
	k->header_canon = spec->header_canon;
	k->body_canon = spec->body_canon;
	k->expire_days = spec->expire_days;
	k->headers = xcalloc(nrules, sizeof(*k->headers));
	k->nheaders = nrules;
	for (size_t i = 0; i < nrules; i++) {
		k->headers[i].name = xstrdup(rules[i].name);
		k->headers[i].oversign = rules[i].oversign;
	}
	ret = dkim_read_key_file(spec->key_file, &pem, &error);
	if (ret == 0)
		ret = dkim_parse_key(&pem, k, &error);
	if (pem.data != NULL)
		OPENSSL_cleanse(pem.data, pem.cap);
	buf_free(&pem);
	if (ret < 0)
		return errmsg_set(error_r, "dkim key %s (domain %s, selector "
				  "%s): %s", spec->key_file, spec->domain,
				  spec->selector, error);
	return 0;
}

/* dkim_rules - the header rules of spec: its list, or the default */
static struct dkim_header_rule *dkim_rules(const struct dkim_key_spec *spec,
					   size_t *n_r, const char **error_r)
{
	struct dkim_header_rule *rules;
	bool from = false;

	if (spec->headers == NULL) {
		*n_r = dkim_default_nheaders;
		rules = xcalloc(dkim_default_nheaders, sizeof(*rules));
		memcpy(rules, dkim_default_headers,
		       dkim_default_nheaders * sizeof(*rules));
		return rules;
	}
	rules = xcalloc(spec->nheaders + 1, sizeof(*rules));
	for (size_t i = 0; i < spec->nheaders; i++) {
		const char *name = spec->headers[i];

		if (*name == '\0' || strcspn(name, ": \t\r\n") !=
		    strlen(name)) {
			free(rules);
			errmsg_set(error_r, "dkim (domain %s, selector %s): "
				   "headers: '%s' is not a header name",
				   spec->domain, spec->selector, name);
			return NULL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(rules[j].name, name) == 0) {
				free(rules);
				errmsg_set(error_r, "dkim (domain %s, selector "
					   "%s): headers: '%s' is listed "
					   "twice", spec->domain,
					   spec->selector, name);
				return NULL;
			}
		rules[i].name = name;
		/* the names a forger would add are oversigned, listed or
		 * not by default */
		for (size_t d = 0; d < dkim_default_nheaders; d++)
			if (strcasecmp(name, dkim_default_headers[d].name)
			    == 0)
				rules[i].oversign =
					dkim_default_headers[d].oversign;
		if (strcasecmp(name, "From") == 0)
			from = true;
	}
	if (!from) {
		free(rules);
		errmsg_set(error_r, "dkim (domain %s, selector %s): headers "
			   "must include From (RFC 6376 5.4)", spec->domain,
			   spec->selector);
		return NULL;
	}
	*n_r = spec->nheaders;
	return rules;
}

int dkim_keys_load(const struct dkim_key_spec *specs, size_t n,
		   struct dkim_keys **keys_r, const char **error_r)
{
	struct dkim_keys *keys = xcalloc(1, sizeof(*keys));

	*keys_r = NULL;
	keys->k = xcalloc(n + 1, sizeof(*keys->k));
	if (n == 0) {
		/* nothing to sign with: OpenSSL need not even start */
		*keys_r = keys;
		return 0;
	}
	/*
	 * Started explicitly, so that a start that fails (out of memory)
	 * is an error here: OpenSSL 3.0 called without it goes on with
	 * half-made locks and crashes.
	 */
	if (OPENSSL_init_crypto(0, NULL) != 1) {
		errmsg_set(error_r, "dkim: OpenSSL cannot start: %s",
			   dkim_ssl_error("out of memory"));
		goto fail;
	}
	keys->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (keys->sha256 == NULL) {
		errmsg_set(error_r, "dkim: no SHA-256 in OpenSSL: %s",
			   dkim_ssl_error("?"));
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dkim_key_spec *spec = &specs[i];
		struct dkim_header_rule *rules;
		size_t nrules;
		int ret;

		if (!dkim_name_valid(spec->domain) ||
		    !dkim_name_valid(spec->selector)) {
			errmsg_set(error_r, "dkim: '%s' / '%s': a domain and "
				   "selector are DNS names (letters, digits, "
				   "'-', '_' and dots; an IDN in its xn-- "
				   "form)", spec->domain, spec->selector);
			goto fail;
		}
		rules = dkim_rules(spec, &nrules, error_r);
		if (rules == NULL)
			goto fail;
		keys->n++;
		ret = dkim_key_load(spec, rules, nrules, &keys->k[i],
				    error_r);
		free(rules);
		if (ret < 0)
			goto fail;
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(keys->k[j].domain, spec->domain) == 0 &&
			    strcasecmp(keys->k[j].selector,
				       spec->selector) == 0) {
				errmsg_set(error_r, "dkim: domain %s, selector "
					   "%s is configured twice",
					   spec->domain, spec->selector);
				goto fail;
			}
		keys->room += dkim_key_room(&keys->k[i]);
	}
	*keys_r = keys;
	return 0;

fail:
	dkim_keys_free(&keys);
	return -1;
}

void dkim_keys_free(struct dkim_keys **keysp)
{
	struct dkim_keys *keys = *keysp;

	if (keys == NULL)
		return;
	for (size_t i = 0; i < keys->n; i++) {
		struct dkim_key *k = &keys->k[i];

		for (size_t h = 0; h < k->nheaders; h++)
			free((char *)k->headers[h].name);
		free(k->headers);
		free(k->domain);
		free(k->selector);
		free(k->key_file);
		EVP_PKEY_free(k->pkey);
	}
	free(keys->k);
	EVP_MD_free(keys->sha256);
	free(keys);
	*keysp = NULL;
}

size_t dkim_keys_count(const struct dkim_keys *keys)
{
	return keys != NULL ? keys->n : 0;
}

void dkim_key_info(const struct dkim_keys *keys, size_t i,
		   struct dkim_key_info *info)
{
	const struct dkim_key *k = &keys->k[i];

	info->domain = k->domain;
	info->selector = k->selector;
	info->key_file = k->key_file;
	info->alg = k->alg;
	info->bits = k->bits;
}

/* --- IDN: U-labels to A-labels (RFC 3492 Punycode, RFC 5891) ----------- */

static unsigned dkim_puny_adapt(unsigned delta, unsigned points, bool first)
{
	unsigned k = 0;

	delta = first ? delta / 700 : delta / 2;
	delta += delta / points;
	while (delta > (36 - 1) * 26 / 2) {
		delta /= 36 - 1;
		k += 36;
	}
	return k + (36 - 1 + 1) * delta / (delta + 38);
}

static char dkim_puny_digit(unsigned d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/*
 * dkim_puny_label - one label of code points as "xn--" and Punycode;
 * false if it does not fit in out (cap bytes)
 */
static bool dkim_puny_label(const uint32_t *cp, size_t n, char *out,
			    size_t cap, size_t *len_r)
{
	unsigned code = 128, delta = 0, bias = 72;
	size_t o = 0, h = 0, b;

	if (cap < 5)
		return false;
	memcpy(out, "xn--", 4);
	o = 4;
	for (size_t i = 0; i < n; i++)
		if (cp[i] < 0x80) {
			if (o + 1 >= cap)
				return false;
			out[o++] = (char)(cp[i] >= 'A' && cp[i] <= 'Z' ?
					  cp[i] + 32 : cp[i]);
		}
	h = b = o - 4;
	if (b > 0) {
		if (o + 1 >= cap)
			return false;
		out[o++] = '-';
	}
	while (h < n) {
		uint32_t m = UINT32_MAX;

		for (size_t i = 0; i < n; i++)
			if (cp[i] >= code && cp[i] < m)
				m = cp[i];
		if ((m - code) > (UINT32_MAX - delta) / (h + 1))
			return false;
		delta += (m - code) * (unsigned)(h + 1);
		code = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < code)
				delta++;
			if (cp[i] != code)
				continue;
			for (unsigned q = delta, k = 36;; k += 36) {
				unsigned t = k <= bias ? 1 : k >= bias + 26 ?
					     26 : k - bias;

				if (o + 1 >= cap)
					return false;
				if (q < t) {
					out[o++] = dkim_puny_digit(q);
					break;
				}
				out[o++] = dkim_puny_digit(t + (q - t) %
							   (36 - t));
				q = (q - t) / (36 - t);
			}
			bias = dkim_puny_adapt(delta, (unsigned)h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		code++;
	}
	*len_r = o;
	return true;
}

/*
 * dkim_alabels - a domain of UTF-8 labels with its non-ASCII labels in
 * A-label form, into out; returns its length, or 0 if it is not UTF-8
 * or too long (then it matches no key).  No IDNA mapping beyond ASCII
 * lower case: a U-label is expected in the form registries take (NFC,
 * lower case).
 */
static size_t dkim_alabels(const char *d, size_t len, char *out, size_t cap)
{
	size_t o = 0, i = 0;

	while (i <= len) {
		size_t end = i;
		bool ascii = true;
		uint32_t cp[64];
		size_t n = 0, l;

		while (end < len && d[end] != '.')
			end++;
		for (size_t k = i; k < end; k++)
			ascii &= (unsigned char)d[k] < 0x80;
		if (ascii) {
			if (o + (end - i) + 1 >= cap)
				return 0;
			memcpy(out + o, d + i, end - i);
			o += end - i;
		} else {
			/* the label's UTF-8 into code points */
			for (size_t k = i; k < end; n++) {
				unsigned char c = (unsigned char)d[k];
				int more = c < 0x80 ? 0 : c >= 0xf0 ? 3 :
					   c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;

				if (more < 0 || n == 64 ||
				    k + (size_t)more >= end)
					return 0;
				cp[n] = more == 0 ? c : c & (0x3f >> more);
				for (int m = 1; m <= more; m++) {
					unsigned char cc =
						(unsigned char)d[k + (size_t)m];

					if ((cc & 0xc0) != 0x80)
						return 0;
					cp[n] = cp[n] << 6 | (cc & 0x3f);
				}
				k += (size_t)more + 1;
			}
			if (!dkim_puny_label(cp, n, out + o, cap - o, &l))
				return 0;
			o += l;
		}
		if (end == len)
			break;
		if (o + 2 >= cap)
			return 0;
		out[o++] = '.';
		i = end + 1;
	}
	out[o] = '\0';
	return o;
}

bool dkim_keys_match(const struct dkim_keys *keys, size_t i,
		     const char *domain, size_t len)
{
	const char *d = keys->k[i].domain;
	size_t dlen = strlen(d);
	char alabels[256];

	/* an IDN From domain (SMTPUTF8 mail) matches keys in its A-label
	 * form, which is what d= and DNS hold */
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)domain[k] >= 0x80) {
			len = dkim_alabels(domain, len, alabels,
					   sizeof(alabels));
			domain = alabels;
			break;
		}

	/* a trailing dot names the same domain */
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len < dlen || strncasecmp(domain + len - dlen, d, dlen) != 0)
		return false;
	return len == dlen || domain[len - dlen - 1] == '.';
}

size_t dkim_keys_room(const struct dkim_keys *keys)
{
	return keys != NULL ? keys->room : 0;
}

/* --- DNS records ---------------------------------------------------------- */

/* dkim_pkey_public - the p= bytes of a key: SubjectPublicKeyInfo for
 * RSA (RFC 6376 3.6.1), the raw 32 bytes for Ed25519 (RFC 8463 4) */
static int dkim_pkey_public(EVP_PKEY *pkey, enum dkim_alg alg,
			    struct buf *out, const char **error_r)
{
	unsigned char *der = NULL;
	int n;

	if (alg == DKIM_ALG_ED25519_SHA256) {
		unsigned char raw[64];
		size_t len = sizeof(raw);

		if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1)
			return errmsg_set(error_r, "dkim: %s",
					  dkim_ssl_error("no public key"));
		buf_append(out, raw, len);
		return 0;
	}
	n = i2d_PUBKEY(pkey, &der);
	if (n <= 0)
		return errmsg_set(error_r, "dkim: %s",
				  dkim_ssl_error("no public key"));
	buf_append(out, der, (size_t)n);
	OPENSSL_free(der);
	return 0;
}

static int dkim_txt_of(EVP_PKEY *pkey, enum dkim_alg alg, struct buf *out,
		       const char **error_r)
{
	struct buf pub = BUF_INIT;

	if (dkim_pkey_public(pkey, alg, &pub, error_r) < 0) {
		buf_free(&pub);
		return -1;
	}
	buf_append_str(out, alg == DKIM_ALG_ED25519_SHA256 ?
		       "v=DKIM1; k=ed25519; p=" : "v=DKIM1; k=rsa; p=");
	base64_encode(out, pub.data, pub.len);
	buf_free(&pub);
	return 0;
}

int dkim_public_txt(const struct dkim_keys *keys, size_t i, struct buf *out,
		    const char **error_r)
{
	return dkim_txt_of(keys->k[i].pkey, keys->k[i].alg, out, error_r);
}

/*
 * dkim_txt_tag - the value of tag in a tag list (RFC 6376 3.2), its
 * whitespace kept, or NULL; -1 in *bad if the list cannot be read
 */
static const char *dkim_txt_tag(const char *txt, const char *tag,
				size_t *len_r)
{
	size_t tlen = strlen(tag);
	const char *p = txt;

	while (*p != '\0') {
		const char *semi = strchr(p, ';');
		const char *end = semi != NULL ? semi : p + strlen(p);
		const char *eq;

		while (p < end && isspace((unsigned char)*p))
			p++;
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL) {
			const char *n = eq;

			while (n > p && isspace((unsigned char)n[-1]))
				n--;
			if ((size_t)(n - p) == tlen &&
			    strncmp(p, tag, tlen) == 0) {
				*len_r = (size_t)(end - eq - 1);
				return eq + 1;
			}
		}
		p = semi != NULL ? semi + 1 : end;
	}
	return NULL;
}

/* dkim_txt_word - does the tag's value, trimmed, equal word (any case)? */
static bool dkim_txt_word(const char *v, size_t len, const char *word)
{
	size_t wlen = strlen(word);

	while (len > 0 && isspace((unsigned char)*v))
		v++, len--;
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		len--;
	return len == wlen && strncasecmp(v, word, len) == 0;
}

int dkim_check_txt(const struct dkim_keys *keys, size_t i, const char *txt,
		   const char **why_r)
{
	const struct dkim_key *k = &keys->k[i];
	const char *want_k = k->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519" :
			     "rsa";
	const char *v;
	struct buf b64 = BUF_INIT, mine = BUF_INIT;
	unsigned char *bin = NULL;
	size_t len;
	int ret = 0, n;

	v = dkim_txt_tag(txt, "v", &len);
	if (v != NULL && !dkim_txt_word(v, len, "DKIM1")) {
		errmsg_set(why_r, "the record is not a DKIM key record (v= "
			   "is not DKIM1)");
		return 0;
	}
	v = dkim_txt_tag(txt, "k", &len);
	if (!(v == NULL ? strcmp(want_k, "rsa") == 0 :
	      dkim_txt_word(v, len, want_k))) {
		errmsg_set(why_r, "the record is for another algorithm "
			   "(k=%.*s; the key is %s)", v ? (int)len : 3,
			   v ? v : "rsa", want_k);
		return 0;
	}
	v = dkim_txt_tag(txt, "h", &len);
	if (v != NULL && !memmem(v, len, "sha256", 6)) {
		errmsg_set(why_r, "the record's h=%.*s does not allow "
			   "sha256", (int)len, v);
		return 0;
	}
	v = dkim_txt_tag(txt, "p", &len);
	if (v == NULL)
		return errmsg_set(why_r, "the record has no p= (public key)");
	for (size_t j = 0; j < len; j++)
		if (!isspace((unsigned char)v[j]))
			buf_putc(&b64, v[j]);
	if (b64.len == 0) {
		errmsg_set(why_r, "the record revokes the key (p= is "
			   "empty)");
		goto out;
	}
	if (!base64_valid(b64.data, b64.len)) {
		ret = errmsg_set(why_r, "the record's p= is not base64");
		goto out;
	}
	bin = xmalloc(b64.len);
	n = EVP_DecodeBlock(bin, (const unsigned char *)b64.data,
			    (int)b64.len);
	if (n < 0) {
		ret = errmsg_set(why_r, "the record's p= is not base64");
		goto out;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes */
	for (size_t j = b64.len; j > 0 && b64.data[j - 1] == '='; j--)
		n--;
	if (dkim_pkey_public(k->pkey, k->alg, &mine, why_r) < 0) {
		ret = -1;
		goto out;
	}
	if ((size_t)n == mine.len && memcmp(bin, mine.data, mine.len) == 0) {
		ret = 1;
	} else if (k->alg == DKIM_ALG_RSA_SHA256) {
		/* some publish the bare RSAPublicKey (PKCS #1) instead */
		const unsigned char *q = bin;
		EVP_PKEY *pub = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, n);

		ret = pub != NULL && EVP_PKEY_eq(pub, k->pkey) == 1;
		EVP_PKEY_free(pub);
		ERR_clear_error();
	}
	if (ret == 0)
		errmsg_set(why_r, "the record publishes another key than "
			   "%s", k->key_file);
out:
	free(bin);
	buf_free(&b64);
	buf_free(&mine);
	return ret;
}

int dkim_keygen(enum dkim_alg alg, unsigned bits, const char *path,
		struct buf *txt, const char **error_r)
{
	EVP_PKEY *pkey;
	FILE *f;
	int fd, ok;

	if (alg == DKIM_ALG_RSA_SHA256 &&
	    (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS))
		return errmsg_set(error_r, "--bits %u: RSA keys for DKIM "
				  "have 1024 to 8192 bits (2048 "
				  "recommended)", bits);
	pkey = alg == DKIM_ALG_RSA_SHA256 ?
	       EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits) :
	       EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL)
		return errmsg_set(error_r, "making the key: %s",
				  dkim_ssl_error("failed"));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
		  0600);
	if (fd < 0) {
		EVP_PKEY_free(pkey);
		return errmsg_set(error_r, "%s: %s%s", path, strerror(errno),
				  errno == EEXIST ? " (a key file is never "
				  "overwritten)" : "");
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(path);
		EVP_PKEY_free(pkey);
		return errmsg_set(error_r, "%s: %s", path, strerror(errno));
	}
	ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
	ok = fflush(f) == 0 && ok;
	ok = fsync(fileno(f)) == 0 && ok;
	if (fclose(f) != 0 || !ok) {
		int e = errno;

		unlink(path);
		EVP_PKEY_free(pkey);
		return errmsg_set(error_r, "%s: writing the key: %s", path,
				  e != 0 ? strerror(e) :
				  dkim_ssl_error("failed"));
	}
	ok = dkim_txt_of(pkey, alg, txt, error_r);
	EVP_PKEY_free(pkey);
	return ok;
}

/* --- signing ------------------------------------------------------------- */

int dkim_signer_new(const struct dkim_keys *keys, struct dkim_signer **s_r,
		    const char **error_r)
{
	struct dkim_signer *s = xcalloc(1, sizeof(*s));

	*s_r = NULL;
	s->keys = keys;
	s->hash = EVP_MD_CTX_new();
	s->rsa = xcalloc(keys->n + 1, sizeof(*s->rsa));
	s->ed25519 = xcalloc(keys->n + 1, sizeof(*s->ed25519));
	if (s->hash == NULL)
		goto fail;
	for (size_t i = 0; i < keys->n; i++) {
		const struct dkim_key *k = &keys->k[i];
		EVP_PKEY_CTX *c;

		if (k->alg == DKIM_ALG_ED25519_SHA256) {
			s->ed25519[i] = EVP_MD_CTX_new();
			if (s->ed25519[i] == NULL ||
			    EVP_DigestSignInit(s->ed25519[i], NULL, NULL, NULL,
					       k->pkey) != 1)
				goto fail;
			continue;
		}
		/* set up once; EVP_PKEY_sign can be called again on it */
		c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
		s->rsa[i] = c;
		if (c == NULL || EVP_PKEY_sign_init(c) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(c, keys->sha256) != 1)
			goto fail;
	}
	*s_r = s;
	return 0;

fail:
	errmsg_set(error_r, "dkim: setting up signing: %s",
		   dkim_ssl_error("no memory"));
	dkim_signer_free(&s);
	return -1;
}

void dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->keys->n; i++) {
		if (s->rsa != NULL)
			EVP_PKEY_CTX_free(s->rsa[i]);
		if (s->ed25519 != NULL)
			EVP_MD_CTX_free(s->ed25519[i]);
	}
	free(s->rsa);
	free(s->ed25519);
	EVP_MD_CTX_free(s->hash);
	free(s->fields);
	buf_free(&s->canon);
	buf_free(&s->sigs);
	free(s);
	*sp = NULL;
}

static inline bool dkim_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * dkim_fields - index the header fields of msg; *body_r is where the body
 * starts (after the blank line, or len when there is none)
 */
static int dkim_fields(struct dkim_signer *s, const char *msg, size_t len,
		       size_t *body_r, const char **error_r)
{
	size_t off = 0;

	s->nfields = 0;
	while (off < len) {
		const char *p = msg + off, *nl, *colon;
		struct dkim_field *f;
		size_t end;

		if (p[0] == '\r' && off + 1 < len && p[1] == '\n') {
			*body_r = off + 2;
			return 0;
		}
		if (dkim_wsp(*p))
			return errmsg_set(error_r, "dkim: the header block "
					  "starts with a continuation line");
		/* a field: its first line and every line that continues it */
		end = off;
		do {
			nl = memchr(msg + end, '\n', len - end);
			end = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		} while (end < len && dkim_wsp(msg[end]));
		colon = memchr(p, ':', end - off);
		if (colon == NULL)
			return errmsg_set(error_r, "dkim: a header line "
					  "without a colon");
		if (s->nfields == s->fields_cap) {
			s->fields_cap = s->fields_cap ? 2 * s->fields_cap : 32;
			s->fields = xrealloc(s->fields, s->fields_cap *
						  sizeof(*s->fields));
		}
		f = &s->fields[s->nfields++];
		f->off = off;
		f->len = end - off;
		f->name_len = (size_t)(colon - p);
		while (f->name_len > 0 && dkim_wsp(p[f->name_len - 1]))
			f->name_len--;
		off = end;
	}
	*body_r = len;
	return 0;
}

static bool dkim_field_is_n(const char *msg, const struct dkim_field *f,
			    const char *name, size_t len)
{
	return len == f->name_len &&
	       strncasecmp(msg + f->off, name, len) == 0;
}

static bool dkim_field_is(const char *msg, const struct dkim_field *f,
			  const char *name)
{
	return dkim_field_is_n(msg, f, name, strlen(name));
}

/* dkim_addr_domain - the domain of the (last) address in a From value */
static bool dkim_addr_domain(const char *v, size_t len, const char **d_r,
			     size_t *dlen_r)
{
	const char *lt = NULL, *end = v + len, *at;

	for (const char *p = v; p < end; p++)
		if (*p == '<')
			lt = p;
	if (lt != NULL) {
		const char *gt = memchr(lt, '>', (size_t)(end - lt));

		if (gt == NULL)
			return false;
		v = lt + 1;
		end = gt;
	}
	at = memrchr(v, '@', (size_t)(end - v));
	if (at == NULL)
		return false;
	v = at + 1;
	while (end > v && (dkim_wsp(end[-1]) || end[-1] == '\r' ||
			   end[-1] == '\n'))
		end--;
	if (end == v)
		return false;
	*d_r = v;
	*dlen_r = (size_t)(end - v);
	return true;
}

bool dkim_from_domain(const char *msg, size_t len, const char **domain_r,
		      size_t *domain_len_r)
{
	size_t off = 0;

	/* a plain walk: this is for messages and tests, not the hot path */
	while (off < len && !(msg[off] == '\r' || msg[off] == '\n')) {
		const char *nl = memchr(msg + off, '\n', len - off);
		size_t end = nl != NULL ? (size_t)(nl - msg) + 1 : len;

		while (end < len && dkim_wsp(msg[end])) {
			nl = memchr(msg + end, '\n', len - end);
			end = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		}
		if (end - off > 5 && strncasecmp(msg + off, "From:", 5) == 0)
			return dkim_addr_domain(msg + off + 5, end - off - 5,
						domain_r, domain_len_r);
		off = end;
	}
	return false;
}

/* dkim_update - hash bytes (an empty span is skipped: OpenSSL takes it,
 * but the call is not free) */
static inline void dkim_update(EVP_MD_CTX *h, const char *p, size_t n)
{
	if (n > 0)
		EVP_DigestUpdate(h, p, n);
}

/*
 * dkim_relaxed_busy - whether the DKIM_BLOCK bytes at p hold anything the
 * relaxed body canonicalization changes: a tab, or a space before a
 * space, a tab, a CR or an LF.  It reads p[DKIM_BLOCK] too, which must
 * be in the body (or the field, for dkim_field_busy).  False means the
 * block can be hashed as it is: a quoted-printable or HTML body is
 * mostly words and single spaces, and looking at each byte in turn cost
 * 14 instructions a byte.
 */
#ifdef __SSE2__
#define DKIM_BLOCK 16
static inline bool dkim_block_busy(const char *p, bool crlf)
{
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i y = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
	__m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
	__m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
	__m128i nexts = _mm_or_si128(
		_mm_or_si128(_mm_cmpeq_epi8(y, sp), _mm_cmpeq_epi8(y, tab)),
		_mm_or_si128(_mm_cmpeq_epi8(y, cr), _mm_cmpeq_epi8(y, lf)));
	__m128i busy = _mm_or_si128(_mm_cmpeq_epi8(x, tab),
				    _mm_and_si128(_mm_cmpeq_epi8(x, sp), nexts));

	if (crlf)
		busy = _mm_or_si128(busy, _mm_or_si128(_mm_cmpeq_epi8(x, cr),
						       _mm_cmpeq_epi8(x, lf)));
	return _mm_movemask_epi8(busy) != 0;
}
#else
/* the same eight bytes at a time: per byte, the high bit of
 * dkim_eq8(v, c) is set exactly where v's byte is c (no borrows) */
#define DKIM_BLOCK 8
static inline uint64_t dkim_eq8(uint64_t v, unsigned char c)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
	uint64_t x = v ^ (0x0101010101010101ULL * c);

	return ~(((x & low7) + low7) | x | low7);
}

static inline bool dkim_block_busy(const char *p, bool crlf)
{
	uint64_t x, y, busy;

	memcpy(&x, p, 8);
	memcpy(&y, p + 1, 8);
	busy = dkim_eq8(x, '\t') |
	       (dkim_eq8(x, ' ') & (dkim_eq8(y, ' ') | dkim_eq8(y, '\t') |
				    dkim_eq8(y, '\r') | dkim_eq8(y, '\n')));
	if (crlf)
		busy |= dkim_eq8(x, '\r') | dkim_eq8(x, '\n');
	return busy != 0;
}
#endif

static inline bool dkim_relaxed_busy(const char *p)
{
	return dkim_block_busy(p, false);
}

/*
 * dkim_field_busy - dkim_relaxed_busy for a header field's value, where
 * a line end is folding to undo: a CR or an LF makes the block busy too
 */
static inline bool dkim_field_busy(const char *p)
{
	return dkim_block_busy(p, true);
}

/*
 * dkim_relaxed_field - append a header field as the relaxed algorithm has
 * it (RFC 6376 3.4.2): name in lower case, no WSP around the colon, lines
 * unfolded, each run of WSP one space, none at the ends, then CRLF.  It
 * writes straight into room reserved once: the form is never longer than
 * the field and a CRLF (buf_putc, byte by byte, cost 10 instructions a
 * byte).
 */
static void dkim_relaxed_field(struct buf *out, const char *f, size_t len,
			       size_t name_len)
{
	const char *p, *end = f + len;
	bool space = false, any = false;
	char *o;

	buf_reserve(out, len + 2);
	o = out->data + out->len;
	for (size_t i = 0; i < name_len; i++) {
		char c = f[i];

		*o++ = c >= 'A' && c <= 'Z' ? (char)(c + 'a' - 'A') : c;
	}
	*o++ = ':';
	p = memchr(f + name_len, ':', len - name_len);
	for (p++; p < end; p++) {
		char c;

		/* past the leading WSP, a block of words and single spaces
		 * goes out as it is */
		while (any && !space && end - p > DKIM_BLOCK &&
		       !dkim_field_busy(p)) {
			memcpy(o, p, DKIM_BLOCK);
			o += DKIM_BLOCK;
			p += DKIM_BLOCK;
		}
		c = *p;

		if (c == '\r' || c == '\n')
			continue;
		if (dkim_wsp(c)) {
			space = true;
			continue;
		}
		if (space && any)
			*o++ = ' ';
		*o++ = c;
		space = false;
		any = true;
	}
	*o++ = '\r';
	*o++ = '\n';
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

/*
 * dkim_hash_field - one field into the header hash, canonicalized: simple
 * fields are hashed where they are; relaxed ones gather in s->canon, which
 * dkim_sign_one hashes in one go (one EVP_DigestUpdate a signature, not
 * one a field)
 */
static void dkim_hash_field(struct dkim_signer *s, enum dkim_canon canon,
			    const char *f, size_t len, size_t name_len)
{
	if (canon == DKIM_CANON_SIMPLE)
		dkim_update(s->hash, f, len);
	else
		dkim_relaxed_field(&s->canon, f, len, name_len);
}

/*
 * dkim_body_end - where the body ends once the empty lines at its end
 * are dropped (RFC 6376 3.4.3 and 3.4.4): for relaxed, lines of only
 * WSP count as empty
 */
static size_t dkim_body_end(const char *b, size_t len, enum dkim_canon c)
{
	size_t end = len;

	while (end > 0) {
		size_t content = end, start;
		bool line_end = false;

		if (content >= 2 && b[content - 2] == '\r' &&
		    b[content - 1] == '\n') {
			content -= 2;
			line_end = true;
		}
		start = content;
		while (start > 0 && b[start - 1] != '\n')
			start--;
		/* the last line is [start, content) */
		if (c == DKIM_CANON_SIMPLE) {
			if (!line_end || content > start)
				return end;
		} else {
			for (size_t i = start; i < content; i++)
				if (!dkim_wsp(b[i]))
					return end;
		}
		end = start;
	}
	return 0;
}

/* dkim_body_hash - the body's hash for canon, computed once per message */
static int dkim_body_hash(struct dkim_signer *s, enum dkim_canon canon,
			  const char *b, size_t len)
{
	size_t end = dkim_body_end(b, len, canon);
	const char *p = b, *span = b, *stop = b + end;
	unsigned int n;

	if (s->body_hashed[canon])
		return 0;
	if (EVP_DigestInit_ex(s->hash, s->keys->sha256, NULL) != 1)
		return -1;
	if (canon == DKIM_CANON_RELAXED) {
		/*
		 * Most text needs nothing done: hash it in spans, and
		 * break a span only at WSP that must go or shrink.  Blocks
		 * with none of that are skipped whole; a busy one is walked
		 * byte by byte, to its end.
		 */
		const char *walk_to = p;

		while (p < stop) {
			const char *w;

			if (p >= walk_to) {
				if (stop - p > DKIM_BLOCK &&
				    !dkim_relaxed_busy(p)) {
					p += DKIM_BLOCK;
					continue;
				}
				walk_to = p + DKIM_BLOCK;
			}
			if (!dkim_wsp(*p)) {
				p++;
				continue;
			}
			w = p + 1;
			while (w < stop && dkim_wsp(*w))
				w++;
			if (w == stop || *w == '\n' ||
			    (*w == '\r' && w + 1 < stop && w[1] == '\n')) {
				/* WSP at a line's end goes */
				dkim_update(s->hash, span, (size_t)(p - span));
				span = w;
			} else if (w - p > 1 || *p == '\t') {
				dkim_update(s->hash, span, (size_t)(p - span));
				dkim_update(s->hash, " ", 1);
				span = w;
			}
			p = w;
		}
	}
	dkim_update(s->hash, span, (size_t)(stop - span));
	/* a body that does not end in CRLF gets one; an empty one only
	 * with simple (where the empty body is one CRLF) */
	if (end == 0 ? canon == DKIM_CANON_SIMPLE : b[end - 1] != '\n')
		dkim_update(s->hash, "\r\n", 2);
	if (EVP_DigestFinal_ex(s->hash, s->body_hash[canon], &n) != 1)
		return -1;
	s->body_hashed[canon] = true;
	return 0;
}

/* dkim_put_uint - v in decimal into s (24 bytes), NUL-terminated */
static void dkim_put_uint(char *s, uint64_t v)
{
	char tmp[24];
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	memcpy(s, tmp + n, sizeof(tmp) - n);
	s[sizeof(tmp) - n] = '\0';
}

/*
 * dkim_h_list - the h= tag for key k over this message's fields: each
 * rule's name as often as the message has it, oversigned ones once
 * more.  col is the current column, for folding.
 */
static void dkim_h_list(const struct dkim_signer *s, const struct dkim_key *k,
			const char *msg, struct buf *out, size_t col)
{
	bool first = true;

	for (size_t r = 0; r < k->nheaders; r++) {
		const struct dkim_header_rule *rule = &k->headers[r];
		size_t count = rule->oversign ? 1 : 0;
		size_t nlen = strlen(rule->name);

		for (size_t i = 0; i < s->nfields; i++)
			if (dkim_field_is_n(msg, &s->fields[i], rule->name,
					    nlen))
				count++;
		for (; count > 0; count--) {
			if (!first) {
				buf_putc(out, ':');
				col++;
			}
			if (col + nlen > 76) {
				buf_append(out, "\r\n\t", 3);
				col = 8;
			}
			buf_append_str(out, rule->name);
			col += nlen;
			first = false;
		}
	}
}

/* dkim_hash_headers - the fields h= names, bottom-up for repeats (RFC
 * 6376 5.4.2), into s->hash */
static void dkim_hash_headers(struct dkim_signer *s, const struct dkim_key *k,
			      const char *msg)
{
	for (size_t i = 0; i < s->nfields; i++)
		s->fields[i].used = false;
	for (size_t r = 0; r < k->nheaders; r++) {
		const char *name = k->headers[r].name;
		size_t nlen = strlen(name);

		for (size_t i = s->nfields; i-- > 0;) {
			struct dkim_field *f = &s->fields[i];

			if (f->used || !dkim_field_is_n(msg, f, name, nlen))
				continue;
			f->used = true;
			dkim_hash_field(s, k->header_canon, msg + f->off,
					f->len, f->name_len);
		}
	}
}

/*
 * dkim_tag - append " name=value;" to the signature field being written,
 * on a new line when this one would pass 78 columns (RFC 5322 2.1.1;
 * FWS may go before any tag, RFC 6376 3.2).  *col is the column.
 */
static void dkim_tag(struct buf *out, size_t *col, const char *name,
		     const char *value)
{
	size_t len = strlen(name) + 1 + strlen(value) + 1;

	if (*col + 1 + len > 78) {
		buf_append(out, "\r\n\t", 3);
		*col = 8;
	} else {
		buf_putc(out, ' ');
		*col += 1;
	}
	buf_append_str(out, name);
	buf_putc(out, '=');
	buf_append_str(out, value);
	buf_putc(out, ';');
	*col += len;
}

/*
 * dkim_ed25519_sign - the Ed25519 signature of a 32-byte digest on ctx,
 * initialised for pkey already.  Should an OpenSSL refuse to sign twice
 * on one initialisation, the context is initialised again and the
 * signature tried once more: slower, never wrong.
 */
static int dkim_ed25519_sign(EVP_MD_CTX *ctx, EVP_PKEY *pkey,
			     unsigned char *sig, size_t *siglen,
			     const unsigned char *digest)
{
	size_t cap = *siglen;

	if (EVP_DigestSign(ctx, sig, siglen, digest, 32) == 1)
		return 0;
	ERR_clear_error();
	*siglen = cap;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, siglen, digest, 32) != 1)
		return -1;
	return 0;
}

/* dkim_sign_one - one signature by key k, appended to out */
static int dkim_sign_one(struct dkim_signer *s, size_t ki, const char *msg,
			 time_t now, struct buf *out, const char **error_r)
{
	const struct dkim_key *k = &s->keys->k[ki];
	unsigned char digest[32], sig[DKIM_RSA_MAX_BITS / 8];
	size_t head = out->len, siglen = sizeof(sig), col;
	unsigned int dlen;
	char b64[44 + 1], num[24];

	/* at most 57 columns so far */
	buf_append_str(out, "DKIM-Signature: v=1; a=");
	buf_append_str(out, dkim_alg_name(k->alg));
	buf_append_str(out, "; c=");
	buf_append_str(out, dkim_canon_names[k->header_canon]);
	buf_putc(out, '/');
	buf_append_str(out, dkim_canon_names[k->body_canon]);
	buf_putc(out, ';');
	col = out->len - head;
	dkim_tag(out, &col, "d", k->domain);
	dkim_tag(out, &col, "s", k->selector);
	dkim_put_uint(num, (uint64_t)now);
	dkim_tag(out, &col, "t", num);
	if (k->expire_days > 0) {
		dkim_put_uint(num, (uint64_t)now +
			      (uint64_t)k->expire_days * 86400);
		dkim_tag(out, &col, "x", num);
	}
	buf_append_str(out, "\r\n\th=");
	col = 10;
	dkim_h_list(s, k, msg, out, col);
	buf_append_str(out, ";\r\n\tbh=");
	*base64_block(b64, s->body_hash[k->body_canon], 32) = '\0';
	buf_append_str(out, b64);
	buf_append_str(out, ";\r\n\tb=");

	if (EVP_DigestInit_ex(s->hash, s->keys->sha256, NULL) != 1)
		goto ssl_error;
	buf_reset(&s->canon);
	dkim_hash_headers(s, k, msg);
	/* the signature's own field, last, without its line end (3.7) */
	if (k->header_canon == DKIM_CANON_SIMPLE) {
		dkim_update(s->hash, out->data + head, out->len - head);
	} else {
		dkim_relaxed_field(&s->canon, out->data + head,
				   out->len - head, strlen("DKIM-Signature"));
		dkim_update(s->hash, s->canon.data, s->canon.len - 2);
	}
	if (EVP_DigestFinal_ex(s->hash, digest, &dlen) != 1)
		goto ssl_error;
	if (k->alg == DKIM_ALG_RSA_SHA256) {
		if (EVP_PKEY_sign(s->rsa[ki], sig, &siglen, digest,
				  sizeof(digest)) != 1)
			goto ssl_error;
	} else if (dkim_ed25519_sign(s->ed25519[ki], k->pkey, sig, &siglen,
				     digest) < 0) {
		goto ssl_error;
	}
	/* the signature in lines of DKIM_B64_LINE, folded */
	buf_reserve(out, base64_len(siglen) + 3 * (siglen / 48 + 1) + 2);
	for (size_t i = 0; i < siglen; i += DKIM_B64_LINE / 4 * 3) {
		size_t n = siglen - i < DKIM_B64_LINE / 4 * 3 ?
			   siglen - i : DKIM_B64_LINE / 4 * 3;
		char *o = out->data + out->len;

		if (i > 0) {
			memcpy(o, "\r\n\t", 3);
			o += 3;
		}
		o = base64_block(o, sig + i, n);
		out->len = (size_t)(o - out->data);
	}
	buf_append(out, "\r\n", 2);
	return 0;

ssl_error:
	buf_truncate(out, head);
	return errmsg_set(error_r, "dkim: signing for %s (selector %s): %s",
			  k->domain, k->selector, dkim_ssl_error("failed"));
}

int dkim_sign(struct dkim_signer *s, const char *msg, size_t len,
	      time_t now, struct buf *out, const char **error_r)
{
	const struct dkim_keys *keys = s->keys;
	const char *domain = NULL;
	size_t body = len, dlen = 0;
	int nsigs = 0;

	if (keys->n == 0)
		return 0;
	if (dkim_fields(s, msg, len, &body, error_r) < 0)
		return -1;
	for (size_t i = 0; i < s->nfields; i++) {
		const struct dkim_field *f = &s->fields[i];

		if (dkim_field_is(msg, f, "From")) {
			if (domain != NULL)
				return errmsg_set(error_r, "dkim: the message "
						  "has two From fields");
			if (!dkim_addr_domain(msg + f->off + f->name_len + 1,
					      f->len - f->name_len - 1,
					      &domain, &dlen))
				return errmsg_set(error_r, "dkim: the From "
						  "field holds no address");
		}
	}
	if (domain == NULL)
		return errmsg_set(error_r, "dkim: the message has no From");
	s->body_hashed[0] = s->body_hashed[1] = false;
	for (size_t i = 0; i < keys->n; i++) {
		if (!dkim_keys_match(keys, i, domain, dlen))
			continue;
		if (dkim_body_hash(s, keys->k[i].body_canon, msg + body,
				   len - body) < 0)
			return errmsg_set(error_r, "dkim: hashing the body: "
					  "%s", dkim_ssl_error("failed"));
		if (dkim_sign_one(s, i, msg, now, out, error_r) < 0)
			return -1;
		nsigs++;
	}
	return nsigs;
}

int dkim_sign_buf(struct dkim_signer *s, struct buf *msg, size_t room,
		  time_t now, size_t *start_r, const char **error_r)
{
	int n;

	buf_reset(&s->sigs);
	*start_r = room;
	n = dkim_sign(s, msg->data + room, msg->len - room, now, &s->sigs,
		      error_r);
	if (n <= 0)
		return n;
	if (s->sigs.len > room) {
		/* no room before it: move the message */
		size_t shift = s->sigs.len - room;

		buf_reserve(msg, shift);
		memmove(msg->data + room + shift, msg->data + room,
			msg->len - room);
		msg->len += shift;
		msg->data[msg->len] = '\0';
		room += shift;
	}
	*start_r = room - s->sigs.len;
	memcpy(msg->data + *start_r, s->sigs.data, s->sigs.len);
	return n;
}
