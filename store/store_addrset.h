/*
 * store_addrset - the addresses one import has added so far, as 64-bit
 * keys (private to store/ and its tests).
 *
 * Why it exists: a unique SQLite index on the address text is updated at
 * a random place for every imported row, which made that index most of
 * an import's cost.  Instead an import loads the keys of the campaign's
 * addresses (the address_keys table) into a set here and finds
 * duplicates in memory; it appends its own keys to address_keys.
 *
 * A key is a hash: equal addresses (ignoring ASCII case, as SMTP domains
 * and SQLite's NOCASE do) always have equal keys, but equal keys do not
 * prove equal addresses.  Callers compare the addresses behind every
 * match; the set only narrows the candidates to (almost always) none.
 */
#ifndef VOLLEY_STORE_ADDRSET_H
#define VOLLEY_STORE_ADDRSET_H

#include <stddef.h>
#include <stdint.h>

struct store_addrset_entry {
	int64_t key;
	int64_t job_id;		/* > 0; 0 marks an empty slot */
};

struct store_addrset {
	struct store_addrset_entry *slots;
	size_t cap;		/* a power of two, or 0 */
	size_t count;
};

/* store_addr_key - the key of an address: its ASCII-lowercased bytes hashed */
int64_t store_addr_key(const char *addr, size_t len);

/* store_addrset_add - remember that job_id (> 0) has an address with key */
void store_addrset_add(struct store_addrset *set, int64_t key,
		       int64_t job_id);

/*
 * store_addrset_next - the next job with this key, or 0 when there is no
 * other.  *cursor must be 0 before the first call for a key.
 */
int64_t store_addrset_next(const struct store_addrset *set, int64_t key,
			   size_t *cursor);

void store_addrset_free(struct store_addrset *set);

#endif
