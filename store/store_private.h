/*
 * store_private - what the store's own files share (store_sqlite.c,
 * store_feedback.c); nothing outside store/ includes it.
 */
#ifndef VOLLEY_STORE_PRIVATE_H
#define VOLLEY_STORE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "buf.h"
#include "store.h"

/*
 * Suppression keys, as a filter: a sorted array of the store_addr_key()
 * hashes of suppressed addresses and "@domain"s.  A hit says "maybe":
 * store_suppress_find() then asks the table, so a hash collision never
 * suppresses anyone.  Checking an address costs two binary searches;
 * an empty filter costs nothing.
 */
struct store_supfilter {
	int64_t *keys;
	size_t count;
	size_t cap;
};

/*
 * What claims of one campaign check: the suppressions made after its
 * oldest import (that import applied the earlier ones), loaded up to id
 * upto and added to as more are made.
 */
struct store_claim_cache {
	int64_t campaign;
	int64_t upto;
	char *list;
	bool transactional;
	struct store_supfilter sup;
};

/* The feedback statements, prepared on first use (store_feedback.c). */
enum store_fb_stmt_id {
	FB_SUPPRESS_INSERT,
	FB_SUPPRESS_FIND,
	FB_SUPPRESS_MAX_ID,
	FB_SUPPRESS_LOAD,
	FB_JOB_REF,
	FB_JOB_SUPPRESS,
	FB_JOB_SUPPRESS_QUEUED,
	FB_BOUNCE_INSERT,
	FB_BOUNCE_SOFT_COUNT,
	FB_CAMPAIGN_LIST,
	FB_CAMPAIGN_SEEN,
	FB_STMT_COUNT
};

/*
 * What one write transaction moved between job states, per campaign,
 * added to campaign_counts just before it commits (store_commit): the
 * counts are kept in C since schema 8, from what each statement that
 * changes a job's state reports, instead of by a trigger that ran two
 * UPDATEs per changed row (a quarter of a 4 KB message's instructions).
 */
struct store_count_delta {
	int64_t campaign;
	int64_t n[JOB_STATE_COUNT];
};

/*
 * A claim store_record checked in its open transaction: that it is the
 * owner's, with its range and when it was made.  Nobody else can change
 * it before the commit (the write lock), so once per claim suffices.
 */
struct store_checked_claim {
	int64_t id;
	int64_t campaign;
	int64_t first_job;
	int64_t last_job;
	int64_t claimed_at;
	int64_t expires_at;
	bool mine;
};

/*
 * A claim this connection made whose range held nothing but queued jobs
 * of its campaign when it committed (a claim of consecutive ids).  Until
 * another connection writes to the store, the only changes to those jobs
 * are this connection's own results, so a job of it with no result yet
 * (its bit clear in had_result) is still queued: its final result is
 * appended without reading the job first (5,000 instructions a result,
 * bench/profile.py), and once every bit is set the claim has no queued
 * job left without a walk of its range.  A bit once set stays set: the
 * job's next result takes the checked way.  A transaction rolled back
 * forgets every known claim (its bits may name results that never were).
 */
struct store_known_claim {
	int64_t id;
	int64_t first_job;
	int64_t last_job;
	uint64_t *had_result;	/* bit i: job first_job + i */
	int64_t results;	/* bits set */
};

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt **stmt;	/* store_sqlite.c's statements */
	sqlite3_stmt *fb_stmt[FB_STMT_COUNT];
	struct buf scratch;	/* results that outlive a statement reset */
	struct buf fb_scratch;	/* the same, for store_feedback.c */
	/* an address lower-cased to be bound: apart from fb_scratch, so
	 * that strings a call returned there can be passed back in */
	struct buf fb_key;
	char error[512];
	bool transient;		/* the last failure may pass if tried again */
	bool busy;		/* ... because another process holds a lock */
	bool importing;

	/* what claims check, per campaign claimed from (a run may send
	 * several at once, claiming from each in turn) */
	struct store_claim_cache *claim_caches;
	size_t claim_ncaches;
	int64_t claim_suppressed;

	struct store_bounce_policy policy;	/* for store_record */

	/* the last claim store_record checked, valid in its transaction */
	struct store_checked_claim checked;
	/* the claims the open transaction recorded results of: one left
	 * with no queued job goes before it commits (store_claims_done) */
	int64_t *touched;
	size_t ntouched;
	size_t touched_cap;

	/* claims whose queued jobs this connection knows: forgotten when
	 * PRAGMA data_version says another connection wrote, when a
	 * transaction rolls back, and by a release, a reclaim, a late
	 * result (every claim) or a give-back (its claim) */
	struct store_known_claim *known;
	size_t nknown;
	size_t known_cap;
	int64_t data_version;
	/* the claims the open claim made, with their ranges before the
	 * suppression filter: known after the commit if still whole */
	struct store_known_claim *made;
	size_t nmade;
	size_t made_cap;

	/* the open transaction's moves between states (store_count_move) */
	struct store_count_delta *count_deltas;
	size_t count_ndeltas;
	size_t count_cap;
};

__attribute__((format(printf, 3, 4)))
int store_fail(struct store *st, const char **error_r, const char *fmt,
	       ...);
int store_fail_db(struct store *st, const char **error_r,
		  const char *doing);
int store_fail_step(struct store *st, int rc, const char **error_r,
		    const char *doing);
int store_exec(struct store *st, const char *sql, const char *doing,
	       const char **error_r);
/*
 * store_count_move - n jobs of campaign went from state from to state to
 * in the open transaction; store_commit adds it to campaign_counts
 * before it commits, store_rollback forgets it.  Every statement that
 * changes a job's state must say so here (the store's own files are the
 * only writers of jobs).
 */
void store_count_move(struct store *st, int64_t campaign,
		      enum job_state from, enum job_state to, int64_t n);
int store_begin(struct store *st, const char **error_r);
int store_commit(struct store *st, const char **error_r);
void store_rollback(struct store *st);
int store_pragma_int(struct store *st, const char *sql, int64_t *v_r,
		     const char **error_r);
const char *store_column_text(sqlite3_stmt *stmt, int col);
void store_bind_text_or_null(sqlite3_stmt *stmt, int col, const char *s);

/* store_fb_close - finalize the feedback statements, free the caches */
void store_fb_close(struct store *st);

/*
 * store_supfilter_load - add to f the keys of the suppressions with id
 * above after_id that stop a campaign of list (transactional: not the
 * unsubscribes); *max_id_r is the highest id in the table.
 */
int store_supfilter_load(struct store *st, const char *list,
			 bool transactional, int64_t after_id,
			 struct store_supfilter *f, int64_t *max_id_r,
			 const char **error_r);
/* store_supfilter_maybe - addr or its domain may be in f */
bool store_supfilter_maybe(const struct store_supfilter *f,
			   const char *addr, size_t len);
void store_supfilter_free(struct store_supfilter *f);


/*
 * store_claim_filter - in the claim's transaction: take the jobs of batch
 * (addresses still offsets into arena) that are suppressed now out of it
 * and mark them JOB_SUPPRESSED.
 */
int store_claim_filter(struct store *st, int64_t campaign_id,
		       struct store_batch *batch, const struct buf *arena,
		       int64_t now, const char **error_r);

/* store_claim_forget - drop the claim caches (an import may change what
 * they were made from) */
void store_claim_forget(struct store *st);

/*
 * store_bounce_add_locked - store_bounce_add inside a transaction the
 * caller holds
 */
int store_bounce_add_locked(struct store *st, const struct store_bounce *b,
			    const struct store_bounce_policy *policy,
			    int *suppressed_r, const char **error_r);

#endif
