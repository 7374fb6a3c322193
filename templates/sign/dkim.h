/*
 * dkim - DKIM signatures (RFC 6376; Ed25519 from RFC 8463) over finished
 * messages, with keys loaded once and signers reused per thread.
 *
 * A message is signed by every key whose domain is its From domain or a
 * parent of it (news.example.org is signed by example.org's keys), so an
 * RSA and an Ed25519 key of one domain give two signatures side by side.
 * The algorithm comes from the key: rsa-sha256 for RSA (at least 1024
 * bits), ed25519-sha256 for Ed25519.
 *
 * Signing reads the message exactly as it goes on the wire (headers, a
 * blank line, the body; CRLF line ends; before dot-stuffing) and writes
 * the DKIM-Signature fields the caller puts in front of it.  The body
 * hash is computed once per canonicalization however many keys sign.
 *
 * Thread rules: loaded keys (struct dkim_keys) are immutable and shared;
 * each thread signs with its own struct dkim_signer, which keeps its
 * OpenSSL contexts and buffers from message to message.
 */
#ifndef VOLLEY_DKIM_H
#define VOLLEY_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
};

/* One key as configured (volley.cfg's dkim list). */
struct dkim_key_spec {
	const char *domain;
	const char *selector;
	const char *key_file;
	const char *const *headers;	/* NULL: dkim_default_headers */
	size_t nheaders;
	enum dkim_canon header_canon;	/* relaxed/relaxed by default */
	enum dkim_canon body_canon;
	unsigned expire_days;		/* 0: no x= tag */
};

/* the headers signed when a key names none: each signed as often as it
 * is present, and those marked oversigned once more, so nobody can add
 * one later (RFC 6376 8.15) */
struct dkim_header_rule {
	const char *name;
	bool oversign;
};
extern const struct dkim_header_rule dkim_default_headers[];
extern const size_t dkim_default_nheaders;

struct dkim_keys;

/*
 * dkim_keys_load - read and check every key file once.  A key file that
 * is missing, unreadable, not a regular file, readable or writable by
 * every user, encrypted, not a private key, of a type DKIM cannot use,
 * or an RSA key under 1024 or over 8192 bits is an error naming the
 * file and the domain and selector it is for.  n may be 0 (no
 * signing).  Returns 0, or -1 with *error_r.
 */
int dkim_keys_load(const struct dkim_key_spec *specs, size_t n,
		   struct dkim_keys **keys_r, const char **error_r);
void dkim_keys_free(struct dkim_keys **keysp);

size_t dkim_keys_count(const struct dkim_keys *keys);

/* dkim_name_valid - a domain or selector as DKIM takes it: DNS labels of
 * letters, digits, '-' and '_' (an IDN in its xn-- form) */
bool dkim_name_valid(const char *name);

/* What a loaded key is, for messages and `volley dkim check`. */
struct dkim_key_info {
	const char *domain;
	const char *selector;
	const char *key_file;
	enum dkim_alg alg;
	unsigned bits;		/* RSA modulus bits; 256 for Ed25519 */
};
void dkim_key_info(const struct dkim_keys *keys, size_t i,
		   struct dkim_key_info *info);

/* dkim_alg_name - "rsa-sha256" or "ed25519-sha256" */
const char *dkim_alg_name(enum dkim_alg alg);

/*
 * dkim_keys_match - is key i for a message from domain (the address's
 * domain, len bytes, any case; an IDN in UTF-8 is compared in its
 * A-label form)?  Equal, or a parent of it.
 */
bool dkim_keys_match(const struct dkim_keys *keys, size_t i,
		     const char *domain, size_t len);

/*
 * dkim_keys_room - the most bytes the DKIM-Signature fields of one
 * message can take: a caller that leaves this much room before a
 * message can put them in front without moving it.
 */
size_t dkim_keys_room(const struct dkim_keys *keys);

/*
 * dkim_public_txt - append the DNS TXT record that publishes key i's
 * public key ("v=DKIM1; k=rsa; p=MIIB...").
 */
int dkim_public_txt(const struct dkim_keys *keys, size_t i, struct buf *out,
		    const char **error_r);

/*
 * dkim_check_txt - does the TXT record txt (the record's value, its
 * strings joined) publish key i?  Returns 1 if it does, 0 if not (with
 * *why_r saying what differs: another key, another algorithm, a revoked
 * key, a record that is not DKIM), -1 if txt cannot be read.
 */
int dkim_check_txt(const struct dkim_keys *keys, size_t i, const char *txt,
		   const char **why_r);

/*
 * dkim_keygen - a new private key written to path (created, never
 * overwritten, mode 0600, PEM PKCS#8), with its TXT record appended to
 * txt.  alg: DKIM_ALG_RSA_SHA256 with bits (1024 to 8192), or
 * DKIM_ALG_ED25519_SHA256 (bits ignored).
 */
int dkim_keygen(enum dkim_alg alg, unsigned bits, const char *path,
		struct buf *txt, const char **error_r);

struct dkim_signer;

/*
 * dkim_signer_new - one thread's signer over keys (which must outlive
 * it).  Returns 0, or -1 with *error_r if OpenSSL cannot make its
 * contexts.
 */
int dkim_signer_new(const struct dkim_keys *keys, struct dkim_signer **s_r,
		    const char **error_r);
void dkim_signer_free(struct dkim_signer **sp);

/*
 * dkim_sign - append to out a DKIM-Signature field (folded, CRLF-ended)
 * for each key that signs msg[0..len), a whole message: its From header
 * decides which.  now is the signature's time (t=).  Returns the number
 * of signatures (0: no key for the From domain), or -1 with *error_r
 * (no From field, two, or one without an address; a header block that
 * is not header fields; an OpenSSL failure).  A message without a
 * blank line has an empty body.
 */
int dkim_sign(struct dkim_signer *s, const char *msg, size_t len,
	      time_t now, struct buf *out, const char **error_r);

/*
 * dkim_sign_buf - sign the message in msg, which starts room bytes into
 * it (room may be 0), and put the signatures in front of it: into the
 * room when they fit, so the message is not moved, else by moving it.
 * *start_r is where the signed message now starts in msg.  Returns what
 * dkim_sign does.
 */
int dkim_sign_buf(struct dkim_signer *s, struct buf *msg, size_t room,
		  time_t now, size_t *start_r, const char **error_r);

/*
 * dkim_from_domain - the domain of the From header's address in a
 * message's header block; false if there is none.
 */
bool dkim_from_domain(const char *msg, size_t len, const char **domain_r,
		      size_t *domain_len_r);

#endif
