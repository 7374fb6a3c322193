/*
 * store_addrset - a campaign's addresses, by key, in bounded memory (see
 * store_addrset.h).
 *
 * The table: open addressing with linear probing, kept at most 70% full,
 * 16 bytes a slot.  A key's home slot is its top bits, so the table is
 * in key order but for the few slots each entry sits after its home:
 * sorting it for a run is an insertion sort that moves each entry a few
 * places, not an n log n sort (the entries that went round the end of
 * the table are taken out first and put last).
 *
 * Why runs and a filter, and not a bigger table or SQLite: a table for
 * every key of a 10^7-row import took 256 MB (384 MB while it doubled);
 * 8-byte keys at a high load would still grow with the rows; and an
 * SQLite index on the keys, or on the address, is updated at a random
 * place per row, which with a bounded page cache costs a page write per
 * row (what this set replaced).  Here memory is fixed, a key not seen
 * before (nearly every key of an import) costs two cache misses (the
 * table and the filter), and only a real duplicate or one of the
 * filter's rare false "maybe"s reads the runs.
 */
#include "store_addrset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

#define ADDRSET_MIN_SLOTS 1024
/*
 * 2^20 slots (16 MB) hold 734,003 keys: runs of that size, and about 14
 * of them, merged into at most 4, for 10^7 keys.
 */
#define ADDRSET_MAX_SLOTS ((size_t)1 << 20)
/*
 * 2^18 blocks of 64 bytes (16 MB): 13 bits a key at 10^7 keys, where
 * 0.36% of new keys get a false "maybe" and cost a read per run.
 */
#define ADDRSET_FILTER_BLOCKS ((size_t)1 << 18)
/*
 * A run's directory has a bucket for each value of a key's top bits, and
 * as many bits as make buckets of 64 keys on average (1 KB, read in one
 * pread), up to 2^17 buckets (1 MB; 76 keys a bucket at 10^7 keys).
 */
#define ADDRSET_BUCKET_KEYS 64
#define ADDRSET_DIR_MAX_BITS 17
/* A bucket larger than this is searched a window of this size at a time. */
#define ADDRSET_WINDOW 256
/* Entries per buffer when two runs are merged (64 KB). */
#define ADDRSET_IO_ENTRIES 4096

size_t store_addrset_max_slots = ADDRSET_MAX_SLOTS;
size_t store_addrset_filter_blocks = ADDRSET_FILTER_BLOCKS;

int64_t store_addr_key(const char *addr, size_t len)
{
	/* FNV-1a over the folded bytes, then a finaliser that spreads
	 * every input bit over the whole word (FNV alone clusters the
	 * bits the table and the filter are indexed by). */
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

/* addrset_pow2 - the least power of two >= n and >= min, up to 2^40 */
static size_t addrset_pow2(size_t n, size_t min)
{
	size_t p = min;

	while (p < n && p < ((size_t)1 << 40))
		p *= 2;
	return p;
}

void store_addrset_init(struct store_addrset *set, const char *dir)
{
	memset(set, 0, sizeof(*set));
	set->dir = xstrdup(dir);
	set->max_cap = addrset_pow2(store_addrset_max_slots, 4);
	set->filter_blocks = addrset_pow2(store_addrset_filter_blocks, 1);
	set->win_run = SIZE_MAX;
}

/* --- the table ---------------------------------------------------------- */

static size_t addrset_home(const struct store_addrset *set, int64_t key)
{
	return (size_t)((uint64_t)key >> set->shift);
}

static void addrset_place(struct store_addrset *set,
			  const struct store_addrset_entry *e)
{
	size_t pos = addrset_home(set, e->key);

	while (set->slots[pos].job_id != 0)
		pos = (pos + 1) & (set->cap - 1);
	set->slots[pos] = *e;
}

static void addrset_grow(struct store_addrset *set)
{
	struct store_addrset_entry *old = set->slots;
	size_t old_cap = set->cap;

	set->cap = old_cap == 0 ? ADDRSET_MIN_SLOTS : old_cap * 2;
	if (set->cap > set->max_cap)
		set->cap = set->max_cap;
	set->shift = 64 - (unsigned)__builtin_ctzll(set->cap);
	set->slots = xcalloc(set->cap, sizeof(*set->slots));
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].job_id != 0)
			addrset_place(set, &old[i]);
	}
	free(old);
}

/*
 * addrset_sort_table - gather the table's entries at its start, in key
 * order (unsigned); returns how many.  The table is no table after this.
 */
static size_t addrset_sort_table(struct store_addrset *set)
{
	struct store_addrset_entry *s = set->slots, *wrapped;
	size_t first_empty = 0, n = 0, nwrapped = 0;

	/* The table is never full.  Before its first empty slot, an entry
	 * whose home is after it went round the end: its key is among the
	 * largest. */
	while (s[first_empty].job_id != 0)
		first_empty++;
	wrapped = xmalloc((first_empty + 1) * sizeof(*wrapped));
	for (size_t i = 0; i < set->cap; i++) {
		if (s[i].job_id == 0)
			continue;
		if (i < first_empty && addrset_home(set, s[i].key) > i)
			wrapped[nwrapped++] = s[i];
		else
			s[n++] = s[i];
	}
	memcpy(s + n, wrapped, nwrapped * sizeof(*wrapped));
	n += nwrapped;
	free(wrapped);

	for (size_t i = 1; i < n; i++) {
		struct store_addrset_entry e = s[i];
		size_t j = i;

		while (j > 0 && (uint64_t)s[j - 1].key > (uint64_t)e.key) {
			s[j] = s[j - 1];
			j--;
		}
		s[j] = e;
	}
	return n;
}

/* --- the filter --------------------------------------------------------- */

/*
 * A blocked Bloom filter: a key sets 5 bits of one 64-byte block, so a
 * look-up is one cache miss.  The block comes from the key's low bits
 * (the table and the runs use its top bits), the bits from a multiple of
 * the key, whose top bits depend on all of it.  Measured with 16 MB: a
 * key never added is taken for one that may be in a run 0.36% of the
 * time at 10^7 keys, 4.2% at 2 * 10^7, 14% at 3 * 10^7 (5 bits beat 8
 * there, and lose nothing at 10^7).
 */
#define ADDRSET_FILTER_BITS 5

static uint64_t *addrset_filter_block(const struct store_addrset *set,
				      int64_t key)
{
	return set->filter + 8 * ((uint64_t)key & (set->filter_blocks - 1));
}

/* addrset_filter_bit - bit i of key in its block, 0 to 511 */
static unsigned addrset_filter_bit(int64_t key, int i)
{
	uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ULL;

	return (unsigned)(h >> (55 - 9 * i)) & 511;
}

static void addrset_filter_add(struct store_addrset *set, int64_t key)
{
	uint64_t *w = addrset_filter_block(set, key);

	for (int i = 0; i < ADDRSET_FILTER_BITS; i++) {
		unsigned bit = addrset_filter_bit(key, i);

		w[bit / 64] |= 1ULL << (bit % 64);
	}
}

static bool addrset_filter_maybe(const struct store_addrset *set,
				 int64_t key)
{
	const uint64_t *w = addrset_filter_block(set, key);

	for (int i = 0; i < ADDRSET_FILTER_BITS; i++) {
		unsigned bit = addrset_filter_bit(key, i);

		if ((w[bit / 64] & (1ULL << (bit % 64))) == 0)
			return false;
	}
	return true;
}

/* --- runs --------------------------------------------------------------- */

/*
 * addrset_tmpfile - a file in dir with no name, so that nothing is left
 * behind whatever ends the process (kill -9 included).  Returns a file
 * descriptor, or -1 with errno set.
 */
static int addrset_tmpfile(const char *dir)
{
	char path[4096];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
			errno != EINVAL))
		return fd;
	/* A file system without O_TMPFILE: a name, removed at once. */
	if (snprintf(path, sizeof(path), "%s/.volley-dedupe-XXXXXX", dir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static int addrset_pwrite(int fd, const void *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p = (const char *)p + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int addrset_pread(int fd, void *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)	/* the run is shorter: lost */
				errno = EIO;
			return -1;
		}
		p = (char *)p + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* addrset_run_init - a run of count entries in fd, its directory to fill */
static void addrset_run_init(struct store_addrset_run *r, int fd,
			     uint64_t count)
{
	r->fd = fd;
	r->count = count;
	r->bits = 0;
	while (r->bits < ADDRSET_DIR_MAX_BITS &&
	       (count >> r->bits) > ADDRSET_BUCKET_KEYS)
		r->bits++;
	r->dir = xmalloc((((size_t)1 << r->bits) + 1) * sizeof(*r->dir));
	r->dir_next = 0;
}

/* addrset_bucket - the bucket of key in a run's directory */
static uint64_t addrset_bucket(const struct store_addrset_run *r,
			       int64_t key)
{
	return r->bits == 0 ? 0 : (uint64_t)key >> (64 - r->bits);
}

/* addrset_dir_add - entry i of the run, written in order, has key */
static void addrset_dir_add(struct store_addrset_run *r, uint64_t i,
			    int64_t key)
{
	uint64_t b = addrset_bucket(r, key);

	while (r->dir_next <= b)
		r->dir[r->dir_next++] = i;
}

/* addrset_dir_end - every entry is written: close the directory */
static void addrset_dir_end(struct store_addrset_run *r)
{
	while (r->dir_next <= ((uint64_t)1 << r->bits))
		r->dir[r->dir_next++] = r->count;
}

static void addrset_run_free(struct store_addrset_run *r)
{
	close(r->fd);
	free(r->dir);
	memset(r, 0, sizeof(*r));
}

/* addrset_push_run - n sorted entries as the newest run */
static int addrset_push_run(struct store_addrset *set,
			    const struct store_addrset_entry *e, size_t n)
{
	struct store_addrset_run *r;
	int fd = addrset_tmpfile(set->dir), saved;

	if (fd < 0)
		return -1;
	if (addrset_pwrite(fd, e, n * sizeof(*e), 0) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	set->runs = xrealloc(set->runs, (set->nruns + 1) * sizeof(*set->runs));
	r = &set->runs[set->nruns++];
	addrset_run_init(r, fd, n);
	for (uint64_t i = 0; i < n; i++)
		addrset_dir_add(r, i, e[i].key);
	addrset_dir_end(r);
	return 0;
}

/* A run read in order, a buffer at a time. */
struct addrset_reader {
	const struct store_addrset_run *run;
	struct store_addrset_entry *buf;
	uint64_t next;		/* the run's entry after the buffer's */
	size_t len, i;
};

/* addrset_reader_head - the reader's next entry, or NULL at the end */
static int addrset_reader_head(struct addrset_reader *rd,
			       const struct store_addrset_entry **e_r)
{
	if (rd->i == rd->len) {
		uint64_t left = rd->run->count - rd->next;
		size_t n = left < ADDRSET_IO_ENTRIES ? (size_t)left :
			   ADDRSET_IO_ENTRIES;

		*e_r = NULL;
		if (n == 0)
			return 0;
		if (addrset_pread(rd->run->fd, rd->buf, n * sizeof(*rd->buf),
				  rd->next * sizeof(*rd->buf)) < 0)
			return -1;
		rd->next += n;
		rd->len = n;
		rd->i = 0;
	}
	*e_r = &rd->buf[rd->i];
	return 0;
}

/* addrset_merge_last - the two newest runs become one */
static int addrset_merge_last(struct store_addrset *set)
{
	struct store_addrset_run *a = &set->runs[set->nruns - 2], *b = a + 1;
	struct addrset_reader ra = { .run = a }, rb = { .run = b };
	struct store_addrset_run c;
	struct store_addrset_entry *out;
	uint64_t done = 0;
	size_t nout = 0;
	int fd, ret = -1, saved;

	fd = addrset_tmpfile(set->dir);
	if (fd < 0)
		return -1;
	addrset_run_init(&c, fd, a->count + b->count);
	ra.buf = xmalloc(ADDRSET_IO_ENTRIES * sizeof(*ra.buf));
	rb.buf = xmalloc(ADDRSET_IO_ENTRIES * sizeof(*rb.buf));
	out = xmalloc(ADDRSET_IO_ENTRIES * sizeof(*out));
	for (;;) {
		const struct store_addrset_entry *x, *y;

		if (addrset_reader_head(&ra, &x) < 0 ||
		    addrset_reader_head(&rb, &y) < 0)
			goto out;
		if (x == NULL && y == NULL)
			break;
		if (y == NULL || (x != NULL &&
				  (uint64_t)x->key <= (uint64_t)y->key)) {
			out[nout] = *x;
			ra.i++;
		} else {
			out[nout] = *y;
			rb.i++;
		}
		addrset_dir_add(&c, done, out[nout].key);
		done++;
		if (++nout == ADDRSET_IO_ENTRIES || done == c.count) {
			if (addrset_pwrite(fd, out, nout * sizeof(*out),
					   (done - nout) * sizeof(*out)) < 0)
				goto out;
			nout = 0;
		}
	}
	addrset_dir_end(&c);
	addrset_run_free(a);
	addrset_run_free(b);
	*a = c;
	set->nruns--;
	set->win_run = SIZE_MAX;
	ret = 0;
out:
	saved = errno;
	free(ra.buf);
	free(rb.buf);
	free(out);
	if (ret < 0) {
		close(fd);
		free(c.dir);
	}
	errno = saved;
	return ret;
}

/*
 * addrset_spill - the table's entries become a run and it starts empty.
 * Runs are merged like a binary counter's bits carry: a run as large as
 * the newest joins it, so no key is merged more than log2(runs) times.
 * After a failure the set can only be freed.
 */
static int addrset_spill(struct store_addrset *set)
{
	size_t n = addrset_sort_table(set);

	if (set->filter == NULL)
		set->filter = xcalloc(set->filter_blocks * 8,
				      sizeof(*set->filter));
	for (size_t i = 0; i < n; i++)
		addrset_filter_add(set, set->slots[i].key);
	if (addrset_push_run(set, set->slots, n) < 0)
		return -1;
	memset(set->slots, 0, set->cap * sizeof(*set->slots));
	set->count = 0;
	while (set->nruns >= 2 && set->runs[set->nruns - 2].count <=
	       set->runs[set->nruns - 1].count) {
		if (addrset_merge_last(set) < 0)
			return -1;
	}
	return 0;
}

/*
 * addrset_run_load - entries [first, first + len) of runs[r] into the
 * window, unless it holds them already
 */
static int addrset_run_load(struct store_addrset *set, size_t r,
			    uint64_t first, uint64_t len)
{
	const struct store_addrset_run *run = &set->runs[r];

	if (set->win_run == r && first >= set->win_first &&
	    first + len <= set->win_first + set->win_len)
		return 0;
	if (set->win_cap < len) {
		free(set->win);
		set->win = xmalloc((size_t)len * sizeof(*set->win));
		set->win_cap = (size_t)len;
	}
	set->win_run = SIZE_MAX;
	if (addrset_pread(run->fd, set->win, (size_t)len * sizeof(*set->win),
			  first * sizeof(*set->win)) < 0)
		return -1;
	set->win_run = r;
	set->win_first = first;
	set->win_len = len;
	set->run_reads++;
	return 0;
}

/* addrset_run_entry - entry pos of runs[r], through the window */
static int addrset_run_entry(struct store_addrset *set, size_t r,
			     uint64_t pos, struct store_addrset_entry *e)
{
	const struct store_addrset_run *run = &set->runs[r];

	if (set->win_run != r || pos < set->win_first ||
	    pos >= set->win_first + set->win_len) {
		uint64_t first = pos - pos % ADDRSET_WINDOW;
		uint64_t len = run->count - first < ADDRSET_WINDOW ?
			       run->count - first : ADDRSET_WINDOW;

		if (addrset_run_load(set, r, first, len) < 0)
			return -1;
	}
	*e = set->win[pos - set->win_first];
	return 0;
}

/*
 * addrset_run_find - where key's entries in runs[r] would be: from
 * *pos_r, the first whose key is not below key, to *end_r, the end of
 * key's bucket (equal keys share a bucket).  An empty bucket costs no
 * read, a bucket of up to ADDRSET_WINDOW entries one.
 */
static int addrset_run_find(struct store_addrset *set, size_t r,
			    int64_t key, uint64_t *pos_r, uint64_t *end_r)
{
	const struct store_addrset_run *run = &set->runs[r];
	uint64_t b = addrset_bucket(run, key), lo, hi;
	struct store_addrset_entry e;

	lo = run->dir[b];
	hi = run->dir[b + 1];
	*end_r = hi;
	if (lo < hi && hi - lo <= ADDRSET_WINDOW &&
	    addrset_run_load(set, r, lo, hi - lo) < 0)
		return -1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (addrset_run_entry(set, r, mid, &e) < 0)
			return -1;
		if ((uint64_t)e.key < (uint64_t)key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos_r = lo;
	return 0;
}

/* --- the set ------------------------------------------------------------ */

int store_addrset_add(struct store_addrset *set, int64_t key,
		      int64_t job_id)
{
	struct store_addrset_entry e = { key, job_id };

	if ((set->count + 1) * 10 > set->cap * 7) {
		if (set->cap < set->max_cap)
			addrset_grow(set);
		else if (addrset_spill(set) < 0)
			return -1;
	}
	addrset_place(set, &e);
	set->count++;
	return 0;
}

void store_addrset_cursor_init(struct store_addrset_cursor *c, int64_t key)
{
	memset(c, 0, sizeof(*c));
	c->key = key;
	c->pos = UINT64_MAX;
}

int store_addrset_next(struct store_addrset *set,
		       struct store_addrset_cursor *c, int64_t *job_id_r)
{
	if (!c->table_done) {
		/* c->probe counts the slots already probed from the home;
		 * an empty slot ends every probe (the table is never
		 * full). */
		size_t pos = set->cap == 0 ? 0 :
			     (addrset_home(set, c->key) + c->probe) &
			     (set->cap - 1);

		while (set->cap > 0 && set->slots[pos].job_id != 0) {
			const struct store_addrset_entry *e = &set->slots[pos];

			pos = (pos + 1) & (set->cap - 1);
			c->probe++;
			if (e->key == c->key) {
				*job_id_r = e->job_id;
				return 1;
			}
		}
		c->table_done = true;
		if (set->filter == NULL || !addrset_filter_maybe(set, c->key))
			c->run = set->nruns;
	}
	/* The oldest (and largest) first: most keys are there, and a walk
	 * ends where the caller finds the address it wants. */
	while (c->run < set->nruns) {
		size_t r = c->run;
		struct store_addrset_entry e;

		if (c->pos == UINT64_MAX &&
		    addrset_run_find(set, r, c->key, &c->pos, &c->end) < 0)
			return -1;
		if (c->pos < c->end) {
			if (addrset_run_entry(set, r, c->pos, &e) < 0)
				return -1;
			if (e.key == c->key) {
				c->pos++;
				*job_id_r = e.job_id;
				return 1;
			}
		}
		c->run++;
		c->pos = UINT64_MAX;
	}
	return 0;
}

int store_addrset_compact(struct store_addrset *set)
{
	while (set->nruns >= 2) {
		if (addrset_merge_last(set) < 0)
			return -1;
	}
	return 0;
}

void store_addrset_free(struct store_addrset *set)
{
	for (size_t i = 0; i < set->nruns; i++)
		addrset_run_free(&set->runs[i]);
	free(set->runs);
	free(set->slots);
	free(set->filter);
	free(set->win);
	free(set->dir);
	memset(set, 0, sizeof(*set));
	set->win_run = SIZE_MAX;
}
