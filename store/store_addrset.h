/*
 * store_addrset - the addresses of a campaign as 64-bit keys, for an
 * import to find duplicates in (private to store/ and its tests).
 *
 * Why it exists: a unique SQLite index on the address text is updated at
 * a random place for every imported row, which made that index most of
 * an import's cost.  Instead an import loads the keys of the campaign's
 * addresses (the address_keys table) into a set here and finds
 * duplicates in it; it appends its own keys to address_keys.
 *
 * A key is a hash: equal addresses (ignoring ASCII case, as SMTP domains
 * and SQLite's NOCASE do) always have equal keys, but equal keys do not
 * prove equal addresses.  Callers compare the addresses behind every
 * match; the set only narrows the candidates to (almost always) none.
 *
 * Memory is bounded, however many keys the set holds (about 34 MB at
 * most with the default limits):
 *   - the table holds the latest keys with their jobs (16 bytes a slot,
 *     at most store_addrset_max_slots slots, 16 MB);
 *   - when it is full, its entries are sorted and written to a run: an
 *     unlinked temporary file of (key, job) pairs in key order, in the
 *     folder given to store_addrset_init (16 bytes a key on disk, twice
 *     that while two runs are merged);
 *   - a filter of fixed size (a blocked Bloom filter, 16 MB) says which
 *     keys may be in a run, so that a key seen for the first time, nearly
 *     every key of an import, is looked for in memory only;
 *   - runs are merged two by two as they come, so there are at most
 *     log2(keys / table size) + 1, each with a directory in memory (1 MB
 *     at most) that finds a key's entries with one read of about 1 KB.
 * So a key that may be in a run costs a read per run (from the page
 * cache, almost always); past about 10^8 keys the filter says "maybe"
 * more and more often and a set gets slower, never larger.
 */
#ifndef VOLLEY_STORE_ADDRSET_H
#define VOLLEY_STORE_ADDRSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_addrset_entry {
	int64_t key;
	int64_t job_id;		/* > 0; 0 marks an empty slot */
};

/*
 * A run: a temporary file of entries in key order (as unsigned), and its
 * directory: the entries whose keys' top bits are b are from dir[b] to
 * dir[b + 1].
 */
struct store_addrset_run {
	int fd;
	uint64_t count;		/* entries */
	unsigned bits;
	uint64_t *dir;		/* 2^bits + 1 positions */
	uint64_t dir_next;	/* while it is written: buckets done */
};

struct store_addrset {
	struct store_addrset_entry *slots;
	size_t cap;		/* a power of two, or 0 */
	unsigned shift;		/* a key's home slot is key >> shift */
	size_t count;
	size_t max_cap;		/* then the table goes to a run */
	char *dir;		/* where runs are made */
	uint64_t *filter;	/* NULL until the first run */
	size_t filter_blocks;	/* of 8 words; a power of two */
	struct store_addrset_run *runs;	/* oldest (and largest) first */
	size_t nruns;
	/* the entries of a run read last */
	struct store_addrset_entry *win;
	size_t win_cap;		/* entries */
	size_t win_run;		/* runs[win_run]; SIZE_MAX: none */
	uint64_t win_first;	/* the run's entry at win[0] */
	uint64_t win_len;
	uint64_t run_reads;	/* reads from runs, for tests */
};

/* A walk over the jobs of one key: see store_addrset_next. */
struct store_addrset_cursor {
	int64_t key;
	size_t probe;		/* slots of the table probed so far */
	size_t run;		/* runs looked in so far, oldest first */
	uint64_t pos;		/* its next entry; UINT64_MAX: to find */
	uint64_t end;		/* the end of the key's bucket in it */
	bool table_done;
};

/*
 * The table's limit in slots (default 2^20, 16 MB) and the filter's size
 * in blocks of 64 bytes (default 2^18, 16 MB), each a power of two, read
 * by store_addrset_init: tests lower them to cross the set's boundaries
 * with few keys, and to make the filter answer "maybe" to every key.
 */
extern size_t store_addrset_max_slots;
extern size_t store_addrset_filter_blocks;

/* store_addr_key - the key of an address: its ASCII-lowercased bytes hashed */
int64_t store_addr_key(const char *addr, size_t len);

/* store_addrset_init - an empty set whose runs will be made in dir */
void store_addrset_init(struct store_addrset *set, const char *dir);

/*
 * store_addrset_add - remember that job_id (> 0) has an address with key.
 * Returns 0, or -1 with errno set when a run could not be written.
 */
int store_addrset_add(struct store_addrset *set, int64_t key,
		      int64_t job_id);

/* store_addrset_cursor_init - start a walk over the jobs of key */
void store_addrset_cursor_init(struct store_addrset_cursor *c, int64_t key);

/*
 * store_addrset_next - the next job with the cursor's key: 1 and
 * *job_id_r, 0 when there is no other, -1 with errno set when a run could
 * not be read.  Nothing may be added to the set during a walk.
 */
int store_addrset_next(struct store_addrset *set,
		       struct store_addrset_cursor *c, int64_t *job_id_r);

/*
 * store_addrset_compact - merge the runs into one, so that a key in a run
 * costs one read (for the keys of earlier imports, which an import of
 * the same list again looks up one by one).  0, or -1 with errno set.
 */
int store_addrset_compact(struct store_addrset *set);

/* store_addrset_free - free the memory and close the runs (deleting them) */
void store_addrset_free(struct store_addrset *set);

#endif
