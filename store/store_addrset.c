/*
 * store_addrset - an import's own addresses, by key (see store_addrset.h).
 *
 * Open addressing with linear probing in a table kept at most 70% full:
 * 16 bytes a slot, so 23 to 46 bytes per address, and a probe rarely
 * leaves one cache line.
 */
#include "store_addrset.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

int64_t store_addr_key(const char *addr, size_t len)
{
	/* FNV-1a over the folded bytes, then a finaliser that spreads
	 * every input bit over the whole word (FNV alone clusters the low
	 * bits the table is indexed by). */
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + ('a' - 'A'));
		h ^= c;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (int64_t)h;
}

static size_t addrset_home(const struct store_addrset *set, int64_t key)
{
	return (size_t)(uint64_t)key & (set->cap - 1);
}

static void addrset_grow(struct store_addrset *set)
{
	struct store_addrset_entry *old = set->slots;
	size_t old_cap = set->cap;

	set->cap = old_cap == 0 ? 1024 : old_cap * 2;
	set->slots = xcalloc(set->cap, sizeof(*set->slots));
	for (size_t i = 0; i < old_cap; i++) {
		size_t pos;

		if (old[i].job_id == 0)
			continue;
		pos = addrset_home(set, old[i].key);
		while (set->slots[pos].job_id != 0)
			pos = (pos + 1) & (set->cap - 1);
		set->slots[pos] = old[i];
	}
	free(old);
}

void store_addrset_add(struct store_addrset *set, int64_t key,
		       int64_t job_id)
{
	size_t pos;

	if ((set->count + 1) * 10 > set->cap * 7)
		addrset_grow(set);
	pos = addrset_home(set, key);
	while (set->slots[pos].job_id != 0)
		pos = (pos + 1) & (set->cap - 1);
	set->slots[pos].key = key;
	set->slots[pos].job_id = job_id;
	set->count++;
}

int64_t store_addrset_next(const struct store_addrset *set, int64_t key,
			   size_t *cursor)
{
	size_t pos;

	if (set->cap == 0)
		return 0;
	/* *cursor counts the slots already probed from the key's home. */
	pos = (addrset_home(set, key) + *cursor) & (set->cap - 1);
	/* The table is never full, so an empty slot ends every probe. */
	while (set->slots[pos].job_id != 0) {
		const struct store_addrset_entry *e = &set->slots[pos];

		pos = (pos + 1) & (set->cap - 1);
		(*cursor)++;
		if (e->key == key)
			return e->job_id;
	}
	return 0;
}

void store_addrset_free(struct store_addrset *set)
{
	free(set->slots);
	memset(set, 0, sizeof(*set));
}
