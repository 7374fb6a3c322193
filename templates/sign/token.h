/*
 * token - short tokens that name one recipient of one campaign and that
 * nobody without the secret can make: the VERP token in an envelope
 * sender ("bounces+{{verp}}@news.example.org"), so a bounce names its
 * recipient exactly.
 *
 * A token is "C-J-M": the campaign id and the job id in base 32, then
 * 10 characters (50 bits) of HMAC-SHA256 over both and the recipient's
 * address (ASCII lower case), keyed with the secret.  Lower-case letters,
 * digits and '-' only: safe in a local part, unchanged by relays that
 * lower-case addresses.  A bounce handler reads C and J back with
 * token_verp_parse, looks the job up, and believes it only if
 * token_verp_check agrees for that job's address.
 *
 * The unsubscribe token (token_unsub) is the same shape with a MAC of
 * TOKEN_UNSUB_MAC_CHARS characters (130 bits: it stands in a public URL,
 * where anyone may try as many as they like) over its own label, so a
 * VERP token is never an unsubscribe token or the other way round:
 * "C-J-" and 26 characters of [a-z2-7], URL-safe as it is.
 */
#ifndef VOLLEY_TOKEN_H
#define VOLLEY_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the longest token, with its NUL: two 13-digit ids, the MAC, dashes */
#define TOKEN_VERP_MAX 40
/* a secret shorter than this is refused: it could be guessed */
#define TOKEN_SECRET_MIN 16

/*
 * A secret made ready to MAC with: one per thread (its OpenSSL context
 * is reused from token to token, so making one costs no allocation).
 */
struct token_key;
int token_key_new(const void *secret, size_t secret_len,
		  struct token_key **key_r);
void token_key_free(struct token_key **keyp);

/*
 * token_verp - the token of job job_id of campaign campaign_id, sent to
 * addr, into out.  Returns 0, or -1 if OpenSSL fails.
 */
int token_verp(struct token_key *key, int64_t campaign_id, int64_t job_id,
	       const char *addr, size_t addr_len, char out[TOKEN_VERP_MAX]);

/* token_verp_parse - the ids a token claims (not yet checked): false if
 * tok is not shaped like one */
bool token_verp_parse(const char *tok, size_t len, int64_t *campaign_id_r,
		      int64_t *job_id_r);

/* token_verp_check - is tok the token of that job, sent to addr?
 * (compared in constant time) */
bool token_verp_check(struct token_key *key, const char *tok, size_t len,
		      const char *addr, size_t addr_len);

/* the longest unsubscribe token, with its NUL */
#define TOKEN_UNSUB_MAX 56
#define TOKEN_UNSUB_MAC_CHARS 26

/*
 * token_unsub - the unsubscribe token of job job_id of campaign
 * campaign_id, sent to addr, into out.  0, or -1 if OpenSSL fails.
 */
int token_unsub(struct token_key *key, int64_t campaign_id, int64_t job_id,
		const char *addr, size_t addr_len, char out[TOKEN_UNSUB_MAX]);

/* token_unsub_parse - the ids an unsubscribe token claims (not yet
 * checked): false if tok is not shaped like one */
bool token_unsub_parse(const char *tok, size_t len, int64_t *campaign_id_r,
		       int64_t *job_id_r);

/* token_unsub_check - is tok the unsubscribe token of that job, sent to
 * addr?  (compared in constant time) */
bool token_unsub_check(struct token_key *key, const char *tok, size_t len,
		       const char *addr, size_t addr_len);

/*
 * token_unsub_url - append base (an absolute http(s) URL, its trailing
 * '/' dropped), "/u/" and the token to out: the {{unsubscribe_url}} of
 * a recipient.  0, or -1 if OpenSSL fails (out then unchanged).
 */
struct buf;
int token_unsub_url(struct token_key *key, const char *base,
		    int64_t campaign_id, int64_t job_id, const char *addr,
		    size_t addr_len, struct buf *out);

#endif
