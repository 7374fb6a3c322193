/*
 * token - VERP and unsubscribe tokens (see token.h).
 */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "buf.h"
#include "xalloc.h"

#define TOKEN_MAC_CHARS 10

struct token_key {
	EVP_MAC_CTX *ctx;	/* keyed once; EVP_MAC_init restarts it */
};

int token_key_new(const void *secret, size_t secret_len,
		  struct token_key **key_r)
{
	/* OpenSSL started explicitly: see dkim_keys_load */
	EVP_MAC *mac = OPENSSL_init_crypto(0, NULL) == 1 ?
		       EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
	struct token_key *key = xcalloc(1, sizeof(*key));
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	*key_r = NULL;
	key->ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);	/* the context keeps its own reference */
	if (key->ctx == NULL ||
	    EVP_MAC_init(key->ctx, secret, secret_len, params) != 1) {
		token_key_free(&key);
		return -1;
	}
	*key_r = key;
	return 0;
}

void token_key_free(struct token_key **keyp)
{
	if (*keyp == NULL)
		return;
	EVP_MAC_CTX_free((*keyp)->ctx);
	free(*keyp);
	*keyp = NULL;
}

static const char token_b32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* token_put_id - v in base 32, most significant digit first */
static char *token_put_id(char *o, uint64_t v)
{
	char tmp[16];
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = token_b32[v & 31];
		v >>= 5;
	} while (v != 0);
	memcpy(o, tmp + n, sizeof(tmp) - n);
	return o + (sizeof(tmp) - n);
}

/*
 * token_mac - nchars MAC characters for the ids and address, under a
 * label that says what the token is for
 */
static int token_mac(struct token_key *key, const char *label,
		     int64_t campaign_id, int64_t job_id, const char *addr,
		     size_t addr_len, char *out, size_t nchars)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char in[64 + 256];
	size_t mdlen = 0, n;
	uint64_t bits = 0;
	int nbits = 0;

	if (addr_len > 256)
		return -1;
	/* a label, so this key's MACs mean nothing elsewhere */
	n = (size_t)snprintf(in, 64, "%s:%lld:%lld:", label,
			     (long long)campaign_id, (long long)job_id);
	for (size_t i = 0; i < addr_len; i++) {
		char c = addr[i];

		in[n++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
	}
	if (EVP_MAC_init(key->ctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(key->ctx, (const unsigned char *)in, n) != 1 ||
	    EVP_MAC_final(key->ctx, md, &mdlen, sizeof(md)) != 1)
		return -1;
	for (size_t i = 0, k = 0; k < nchars; ) {
		if (nbits < 5) {
			bits = bits << 8 | md[i++];
			nbits += 8;
		}
		out[k++] = token_b32[(bits >> (nbits - 5)) & 31];
		nbits -= 5;
	}
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

/*
 * token_make - "C-J-" and mac_chars characters of the MAC under label
 * into out, NUL-ended: VERP and unsubscribe tokens differ only in both
 */
static int token_make(struct token_key *key, const char *label,
		      size_t mac_chars, int64_t campaign_id, int64_t job_id,
		      const char *addr, size_t addr_len, char *out)
{
	char *o = out;

	o = token_put_id(o, (uint64_t)campaign_id);
	*o++ = '-';
	o = token_put_id(o, (uint64_t)job_id);
	*o++ = '-';
	if (token_mac(key, label, campaign_id, job_id, addr, addr_len, o,
		      mac_chars) < 0)
		return -1;
	o[mac_chars] = '\0';
	return 0;
}

int token_verp(struct token_key *key, int64_t campaign_id, int64_t job_id,
	       const char *addr, size_t addr_len, char out[TOKEN_VERP_MAX])
{
	return token_make(key, "volley-verp-1", TOKEN_MAC_CHARS, campaign_id,
			  job_id, addr, addr_len, out);
}

/* token_get_id - base-32 digits up to a '-' or the end */
static const char *token_get_id(const char *p, const char *end,
				int64_t *v_r)
{
	uint64_t v = 0;
	const char *start = p;

	for (; p < end && *p != '-'; p++) {
		const char *d = memchr(token_b32, *p, 32);

		if (d == NULL || *p == '\0' || p - start >= 12)
			return NULL;
		v = v << 5 | (uint64_t)(d - token_b32);
	}
	if (p == start)
		return NULL;
	*v_r = (int64_t)v;
	return p;
}

/* token_parse - "C-J-" and mac_chars MAC characters */
static bool token_parse(const char *tok, size_t len, size_t mac_chars,
			int64_t *campaign_id_r, int64_t *job_id_r)
{
	const char *end = tok + len, *p;

	p = token_get_id(tok, end, campaign_id_r);
	if (p == NULL || p == end)
		return false;
	p = token_get_id(p + 1, end, job_id_r);
	if (p == NULL || p == end || (size_t)(end - (p + 1)) != mac_chars)
		return false;
	for (p++; p < end; p++)
		if (memchr(token_b32, *p, 32) == NULL || *p == '\0')
			return false;
	return true;
}

bool token_verp_parse(const char *tok, size_t len, int64_t *campaign_id_r,
		      int64_t *job_id_r)
{
	return token_parse(tok, len, TOKEN_MAC_CHARS, campaign_id_r,
			   job_id_r);
}

/*
 * token_check - is tok the token under label, with mac_chars of MAC, of
 * the ids it names and addr?  (compared in constant time)
 */
static bool token_check(struct token_key *key, const char *label,
			size_t mac_chars, const char *tok, size_t len,
			const char *addr, size_t addr_len)
{
	char want[TOKEN_UNSUB_MAX > TOKEN_VERP_MAX ? TOKEN_UNSUB_MAX :
		  TOKEN_VERP_MAX];
	int64_t c, j;

	if (!token_parse(tok, len, mac_chars, &c, &j) ||
	    token_make(key, label, mac_chars, c, j, addr, addr_len, want) < 0)
		return false;
	return strlen(want) == len && CRYPTO_memcmp(want, tok, len) == 0;
}

bool token_verp_check(struct token_key *key, const char *tok, size_t len,
		      const char *addr, size_t addr_len)
{
	return token_check(key, "volley-verp-1", TOKEN_MAC_CHARS, tok, len,
			   addr, addr_len);
}

/* --- unsubscribe tokens ------------------------------------------------ */

int token_unsub(struct token_key *key, int64_t campaign_id, int64_t job_id,
		const char *addr, size_t addr_len, char out[TOKEN_UNSUB_MAX])
{
	return token_make(key, "volley-unsub-1", TOKEN_UNSUB_MAC_CHARS,
			  campaign_id, job_id, addr, addr_len, out);
}

bool token_unsub_parse(const char *tok, size_t len, int64_t *campaign_id_r,
		       int64_t *job_id_r)
{
	return token_parse(tok, len, TOKEN_UNSUB_MAC_CHARS, campaign_id_r,
			   job_id_r);
}

bool token_unsub_check(struct token_key *key, const char *tok, size_t len,
		       const char *addr, size_t addr_len)
{
	return token_check(key, "volley-unsub-1", TOKEN_UNSUB_MAC_CHARS, tok,
			   len, addr, addr_len);
}

int token_unsub_url(struct token_key *key, const char *base,
		    int64_t campaign_id, int64_t job_id, const char *addr,
		    size_t addr_len, struct buf *out)
{
	char tok[TOKEN_UNSUB_MAX];
	size_t blen = strlen(base);

	if (token_unsub(key, campaign_id, job_id, addr, addr_len, tok) < 0)
		return -1;
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	buf_append(out, base, blen);
	buf_append_str(out, "/u/");
	buf_append_str(out, tok);
	return 0;
}
