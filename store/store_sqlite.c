/*
 * store_sqlite - the job store on SQLite (see store.h for the contract).
 *
 * The only file in volley that includes sqlite3.h.  One struct store is one
 * connection with its prepared statements, kept for the connection's life
 * and reset after each use, so the claim/record loop prepares nothing.
 *
 * Transactions: every write is one explicit transaction, started with
 * BEGIN IMMEDIATE so that a writer that must wait does so at the start
 * (under the busy timeout) rather than failing half way with SQLITE_BUSY
 * on the upgrade from a read lock.
 */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "store_addrset.h"
#include "store_private.h"
#include "store_schema.h"
#include "vars.h"
#include "xalloc.h"

/* 'voly': tells a volley store from any other SQLite file. */
#define STORE_APPLICATION_ID 0x766f6c79

enum store_stmt_id {
	STMT_CAMPAIGN_INSERT,
	STMT_CAMPAIGN_FIND,
	STMT_CAMPAIGN_EXISTS,
	STMT_CAMPAIGN_GET,
	STMT_FILE_INSERT,
	STMT_CAMPAIGN_LIST,
	STMT_COUNTS,
	STMT_IMPORT_INSERT,
	STMT_IMPORT_FINISH,
	STMT_COUNT_ADD,
	STMT_IMPORT_NAMES,
	STMT_JOB_INSERT,
	STMT_JOB_INSERT_SUPPRESSED,
	STMT_JOB_ADDRESS,
	STMT_KEYS_OF_CAMPAIGN,
	STMT_JOB_COUNT,
	STMT_KEYS_INSERT,
	STMT_CLAIM,
	STMT_CLAIM_CURSOR,
	STMT_CLAIM_FRESH,
	STMT_CLAIM_RELOAD,
	STMT_CLAIM_INSERT,
	STMT_CLAIM_FREE_GET,
	STMT_CLAIM_TAKE,
	STMT_CLAIM_DELETE,
	STMT_CLAIM_FREE_BEFORE,
	STMT_CLAIM_FREE_GROW,
	STMT_CLAIM_MINE,
	STMT_CLAIM_LEFT,
	STMT_CLAIM_OF_JOB,
	STMT_CLAIM_HOLDS,
	STMT_CLAIMS_OF_OWNER,
	STMT_CLAIMS_HELD,
	STMT_CLAIM_FREE,
	STMT_CLAIM_QUEUED,
	STMT_RECORD_FRESH,
	STMT_RECORD_APPEND,
	STMT_RECORD_APPEND_KNOWN,
	STMT_DATA_VERSION,
	STMT_RECORD_DONE,
	STMT_RECORD_STATE,
	STMT_RECORD_LATE,
	STMT_RECORD_GIVE_BACK,
	STMT_JOB_FOLD,
	STMT_JOB_UNJOURNAL,
	STMT_RELEASE,
	STMT_RECLAIM_EXPIRED,
	STMT_LEASE_OWNERS,
	STMT_RECLAIM_OWNER,
	STMT_RECLAIM_RANGE,
	STMT_RELEASE_KEEP,
	STMT_DOUBT_COUNT,
	STMT_DOUBT_RELEASE,
	STMT_DOUBT_DROP,
	STMT_REPORT_ALL,
	STMT_REPORT_STATE,
	STMT_COUNT
};

/*
 * A job of table t with no result in the journal (schema 10): with state
 * 0, a job still queued.  A probe of results' primary key.
 */
#define STORE_NO_RESULT(t) \
	" AND NOT EXISTS (SELECT 1 FROM results r WHERE r.job_id = " t ".id)"

/*
 * Giving back a job leased by itself undoes the attempt its lease counted,
 * and the job is deferred, due when it was: a job whose only attempt
 * that was (one a release kept in doubt) is deferred too, not queued,
 * since a queued job outside every claim below the campaign's claim
 * cursor would never be claimed again (schema 10).  The WHERE differs
 * (STMT_RECORD_GIVE_BACK, STMT_RELEASE).
 */
#define STORE_GIVE_BACK_SET \
	"UPDATE jobs SET attempts = attempts - 1, state = 3," \
	" first_attempt_at = CASE WHEN attempts > 1" \
	"  THEN first_attempt_at END," \
	" last_attempt_at = CASE WHEN attempts > 1" \
	"  THEN last_attempt_at END," \
	" lease_owner = NULL, lease_expires_at = NULL"

/* What a result sets; the WHERE differs (STMT_RECORD_DONE, _LATE). */
#define STORE_RECORD_SET \
	"UPDATE jobs SET state = ?2, last_code = ?3," \
	" last_enhanced = ?4, last_reply = ?5," \
	" queue_id = coalesce(?6, queue_id)," \
	" next_attempt_at = ?7, doubts = doubts + ?10," \
	" done_at = CASE WHEN ?2 IN (2, 4) THEN ?8 END," \
	" lease_owner = NULL, lease_expires_at = NULL"

/*
 * The report shows a job as the counts see it, its result in the
 * journal applied (jobs_now): a queued job that a claim with an owner
 * holds is being sent, its attempt made at the claim's time (ranges of
 * a campaign never overlap: one claim at most).
 */
#define STORE_REPORT_COLUMNS \
	"SELECT jobs.id, address," \
	" CASE WHEN c.id IS NULL THEN state ELSE 1 END AS state_now," \
	" attempts + (c.id IS NOT NULL), coalesce(last_code, 0)," \
	" last_enhanced, last_reply, queue_id," \
	" coalesce(first_attempt_at, c.claimed_at, 0)," \
	" coalesce(c.claimed_at, last_attempt_at, 0)," \
	" next_attempt_at, coalesce(lease_owner, c.owner)," \
	" (SELECT category FROM bounces b WHERE b.job_id = jobs.id" \
	"  ORDER BY b.id DESC LIMIT 1)," \
	" (SELECT at FROM bounces b WHERE b.job_id = jobs.id" \
	"  ORDER BY b.id DESC LIMIT 1)" \
	" FROM jobs_now jobs LEFT JOIN claims c ON jobs.state = 0" \
	"  AND c.campaign_id = jobs.campaign_id AND c.owner IS NOT NULL" \
	"  AND jobs.id BETWEEN c.first_job AND c.last_job"

/*
 * A claim takes the oldest due deferred jobs through jobs_retry, leasing
 * each (RETURNING gives the leased rows back from the same statement),
 * then queued ones through jobs_fresh by a range of ids: one claims row.
 */
static const char *const store_sql[STMT_COUNT] = {
	[STMT_CAMPAIGN_INSERT] =
		"INSERT INTO campaigns (name, sender, template_ref, created_at,"
		" files_dir, list, transactional)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_CAMPAIGN_FIND] = "SELECT id FROM campaigns WHERE name = ?1",
	[STMT_CAMPAIGN_EXISTS] = "SELECT 1 FROM campaigns WHERE id = ?1",
	[STMT_CAMPAIGN_GET] =
		"SELECT id, name, sender, template_ref, state, created_at,"
		" coalesce(finished_at, 0), files_dir, list, transactional"
		" FROM campaigns WHERE name = ?1",
	[STMT_FILE_INSERT] =
		"INSERT INTO campaign_files (campaign_id, name, content)"
		" VALUES (?1, ?2, ?3)",
	[STMT_CAMPAIGN_LIST] =
		"SELECT id, name, sender, template_ref, state, created_at,"
		" coalesce(finished_at, 0), files_dir, list, transactional"
		" FROM campaigns ORDER BY id",
	[STMT_COUNTS] =
		"SELECT state, n FROM campaign_counts WHERE campaign_id = ?1",
	[STMT_IMPORT_INSERT] =
		"INSERT INTO imports (campaign_id, source, var_names,"
		" started_at, address_column) VALUES (?1, ?2, ?3, ?4, ?5)",
	[STMT_IMPORT_FINISH] =
		"UPDATE imports SET finished_at = ?2, added = ?3,"
		" duplicates = ?4, rejected = ?5, suppressed = ?6,"
		" suppress_seen = ?7 WHERE id = ?1",
	[STMT_COUNT_ADD] =
		"UPDATE campaign_counts SET n = n + ?2"
		" WHERE campaign_id = ?1 AND state = ?3",
	[STMT_IMPORT_NAMES] =
		"SELECT var_names, address_column FROM imports WHERE id = ?1",
	[STMT_JOB_INSERT] =
		"INSERT INTO jobs (campaign_id, import_id, address,"
		" addr_flags, vars, next_attempt_at, created_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
	[STMT_JOB_INSERT_SUPPRESSED] =
		"INSERT INTO jobs (campaign_id, import_id, address,"
		" addr_flags, vars, next_attempt_at, created_at, state,"
		" last_reply, done_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 5, ?7, ?6)",
	[STMT_JOB_ADDRESS] = "SELECT address FROM jobs WHERE id = ?1",
	[STMT_KEYS_OF_CAMPAIGN] =
		"SELECT first_job_id, keys FROM address_keys"
		" WHERE campaign_id = ?1",
	[STMT_JOB_COUNT] = "SELECT coalesce(sum(n), 0) FROM campaign_counts",
	[STMT_KEYS_INSERT] =
		"INSERT INTO address_keys (campaign_id, first_job_id, keys)"
		" VALUES (?1, ?2, ?3)",
	/* deferred jobs come due one by one: leased one by one */
	[STMT_CLAIM] =
		"UPDATE jobs SET state = 1, lease_owner = ?2,"
		" lease_expires_at = ?3,"
		" attempts = attempts + 1,"
		" first_attempt_at = coalesce(first_attempt_at, ?4),"
		" last_attempt_at = ?4"
		" WHERE id IN (SELECT id FROM jobs"
		"  WHERE campaign_id = ?1 AND state = 3"
		"  AND next_attempt_at <= ?4"
		"  ORDER BY next_attempt_at LIMIT ?5)"
		" RETURNING id, campaign_id, import_id, address, addr_flags,"
		" vars, attempts, first_attempt_at, doubts",
	/*
	 * Queued jobs are claimed by ranges of ids (schema 9): every queued
	 * job up to the campaign's claim cursor (the highest id any claim of
	 * it ever reached, schema 10) is in some claim.
	 */
	[STMT_CLAIM_CURSOR] =
		"SELECT max(coalesce((SELECT max(last_job) FROM claims"
		"  WHERE campaign_id = ?1), 0),"
		" (SELECT claim_cursor FROM campaigns WHERE id = ?1))",
	/*
	 * Past the cursor no job was ever in a claim, so none has a result
	 * in the journal (schema 10): the claim of a new range need not
	 * look there.  A freed range's reload must.
	 */
	[STMT_CLAIM_FRESH] =
		"SELECT id, import_id, address, addr_flags, vars, attempts,"
		" first_attempt_at, doubts FROM jobs"
		" WHERE campaign_id = ?1 AND state = 0"
		" AND id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4",
	[STMT_CLAIM_RELOAD] =
		"SELECT id, import_id, address, addr_flags, vars, attempts,"
		" first_attempt_at, doubts FROM jobs"
		" WHERE campaign_id = ?1 AND state = 0"
		" AND id > ?2 AND id <= ?3"
		STORE_NO_RESULT("jobs")
		" ORDER BY id LIMIT ?4",
	[STMT_CLAIM_INSERT] =
		"INSERT INTO claims (campaign_id, first_job, last_job, owner,"
		" claimed_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_CLAIM_FREE_GET] =
		"SELECT id, first_job, last_job FROM claims"
		" WHERE campaign_id = ?1 AND owner IS NULL ORDER BY id LIMIT 1",
	[STMT_CLAIM_TAKE] =
		"UPDATE claims SET owner = ?2, claimed_at = ?3,"
		" expires_at = ?4, first_job = ?5, last_job = ?6 WHERE id = ?1",
	[STMT_CLAIM_DELETE] = "DELETE FROM claims WHERE id = ?1",
	[STMT_CLAIM_FREE_BEFORE] =
		"SELECT id FROM claims WHERE campaign_id = ?1"
		" AND last_job = ?2 AND owner IS NULL",
	[STMT_CLAIM_FREE_GROW] = "UPDATE claims SET last_job = ?2 WHERE id = ?1",
	[STMT_CLAIM_MINE] =
		"SELECT campaign_id, first_job, last_job, claimed_at,"
		" expires_at FROM claims WHERE id = ?1 AND owner = ?2",
	/*
	 * A queued job left in claim ?1's range.  Jobs with a result in the
	 * journal are still in jobs_fresh: the highest ids first, since
	 * results come in about the order a claim handed its jobs out.
	 */
	[STMT_CLAIM_LEFT] =
		"SELECT 1 FROM claims c, jobs j WHERE c.id = ?1"
		" AND j.campaign_id = c.campaign_id AND j.state = 0"
		" AND j.id BETWEEN c.first_job AND c.last_job"
		STORE_NO_RESULT("j")
		" ORDER BY j.id DESC LIMIT 1",
	/* ids of campaigns imported in turns interleave: the job's own */
	[STMT_CLAIM_OF_JOB] =
		"SELECT c.id FROM claims c, jobs j WHERE j.id = ?1"
		" AND c.campaign_id = j.campaign_id AND c.owner = ?2"
		" AND c.first_job <= ?1 AND c.last_job >= ?1",
	/* the claim with the lowest last id at or past job's: it holds the
	 * job if any does (ranges of a campaign never overlap) */
	[STMT_CLAIM_HOLDS] =
		"SELECT claimed_at FROM (SELECT first_job, owner, claimed_at"
		"  FROM claims"
		"  WHERE campaign_id = ?1 AND last_job >= ?2"
		"  ORDER BY last_job LIMIT 1)"
		" WHERE first_job <= ?2 AND owner IS NOT NULL",
	[STMT_CLAIMS_OF_OWNER] =
		"SELECT id, campaign_id, first_job, last_job, claimed_at,"
		" expires_at, owner FROM claims WHERE owner = ?1",
	[STMT_CLAIMS_HELD] =
		"SELECT id, campaign_id, first_job, last_job, claimed_at,"
		" expires_at, owner FROM claims WHERE owner IS NOT NULL",
	[STMT_CLAIM_FREE] =
		"UPDATE claims SET owner = NULL, expires_at = NULL WHERE id = ?1",
	[STMT_CLAIM_QUEUED] =
		"SELECT count(*) FROM jobs WHERE campaign_id = ?1 AND state = 0"
		" AND id BETWEEN ?2 AND ?3"
		STORE_NO_RESULT("jobs"),
	/*
	 * A result for a job of a claim: the attempt is counted now (the
	 * claim wrote nothing to the job), at the claim's time (?12).  The
	 * caller checked that the claim is the owner's and holds the job;
	 * a job still queued in it is still the claim's.
	 */
	[STMT_RECORD_FRESH] = STORE_RECORD_SET
		", attempts = attempts + 1,"
		" first_attempt_at = coalesce(first_attempt_at, ?12),"
		" last_attempt_at = ?12"
		" WHERE id = ?1 AND state = 0 AND campaign_id = ?11"
		STORE_NO_RESULT("jobs"),
	/*
	 * A final result for a job of the owner's claim is appended to the
	 * journal (schema 10), the job's row left as it is; the same checks
	 * as STMT_RECORD_FRESH, and a job with a result already gets none.
	 * (Asking jobs_fresh instead of the row measured 1,900 instructions
	 * more a result: one more cursor, and the table's opened anyway.)
	 */
	[STMT_RECORD_APPEND] =
		"INSERT INTO results (job_id, state, code, enhanced, reply,"
		" queue_id, done_at, attempt_at, doubts)"
		" SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?8, ?12, ?10 FROM jobs"
		" WHERE id = ?1 AND state = 0 AND campaign_id = ?11"
		" ON CONFLICT (job_id) DO NOTHING",
	/*
	 * The same for a job this connection knows to be queued in the
	 * claim (struct store_known_claim): the job's row is not read.
	 */
	[STMT_RECORD_APPEND_KNOWN] =
		"INSERT INTO results (job_id, state, code, enhanced, reply,"
		" queue_id, done_at, attempt_at, doubts)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?12, ?10)"
		" ON CONFLICT (job_id) DO NOTHING",
	/* changes when another connection commits, never for our own */
	[STMT_DATA_VERSION] = "PRAGMA data_version",
	/*
	 * A final or deferring result applies to a job this owner holds;
	 * "sent" applies to any job not yet sent (see store.h): when the
	 * job is no longer this owner's, its state is read first (for the
	 * counts) and the same change made from that state.
	 */
	/* ?11: the campaign the counts will move, checked (a result that
	 * names another one is done again with the job's own) */
	[STMT_RECORD_DONE] = STORE_RECORD_SET
		" WHERE id = ?1 AND state = 1 AND lease_owner = ?9"
		" AND campaign_id = ?11",
	[STMT_RECORD_STATE] =
		"SELECT j.campaign_id, coalesce(r.state, j.state),"
		" r.job_id IS NOT NULL FROM jobs j"
		" LEFT JOIN results r ON r.job_id = j.id WHERE j.id = ?1",
	[STMT_RECORD_LATE] = STORE_RECORD_SET
		" WHERE id = ?1 AND state = ?9 AND state <> 2",
	[STMT_RECORD_GIVE_BACK] = STORE_GIVE_BACK_SET
		" WHERE id = ?1 AND state = 1 AND lease_owner = ?2"
		" RETURNING campaign_id, state",
	/* the job's journal row written into its row, then removed */
	[STMT_JOB_FOLD] =
		"UPDATE jobs SET (state, attempts, next_attempt_at, last_code,"
		" last_enhanced, last_reply, queue_id, first_attempt_at,"
		" last_attempt_at, done_at, doubts) = (SELECT state, attempts,"
		" next_attempt_at, last_code, last_enhanced, last_reply,"
		" queue_id, first_attempt_at, last_attempt_at, done_at, doubts"
		" FROM jobs_now WHERE id = ?1) WHERE id = ?1",
	[STMT_JOB_UNJOURNAL] = "DELETE FROM results WHERE job_id = ?1",
	[STMT_RELEASE] = STORE_GIVE_BACK_SET
		" WHERE state = 1 AND lease_owner = ?1"
		" AND id NOT IN (SELECT value FROM json_each(?2))"
		" RETURNING campaign_id, state",
	/* a second doubt is held, whatever the mode: at most two copies */
	[STMT_RECLAIM_EXPIRED] =
		"UPDATE jobs SET state = 3,"
		" next_attempt_at = CASE WHEN doubts > 0 THEN ?3 ELSE ?2 END,"
		" doubts = doubts + 1,"
		" last_code = NULL, last_enhanced = NULL,"
		" last_reply = 'interrupted: the lease of ' || lease_owner ||"
		"  ' expired; the message may have been delivered',"
		" lease_owner = NULL, lease_expires_at = NULL"
		" WHERE state = 1 AND lease_expires_at <= ?1"
		" RETURNING campaign_id",
	[STMT_LEASE_OWNERS] =
		"SELECT DISTINCT lease_owner FROM jobs"
		" WHERE state = 1 AND lease_expires_at IS NOT NULL",
	[STMT_RECLAIM_OWNER] =
		"UPDATE jobs SET state = 3,"
		" next_attempt_at = CASE WHEN doubts > 0 THEN ?3 ELSE ?1 END,"
		" doubts = doubts + 1,"
		" last_code = NULL, last_enhanced = NULL,"
		" last_reply = 'interrupted: sender ' || lease_owner ||"
		"  ' stopped; the message may have been delivered',"
		" lease_owner = NULL, lease_expires_at = NULL"
		" WHERE state = 1 AND lease_owner = ?2"
		" RETURNING campaign_id",
	/*
	 * The queued jobs of a claim whose owner is gone or whose lease
	 * expired, as RECLAIM_EXPIRED and RECLAIM_OWNER do with jobs leased
	 * one by one; the attempt the claim made is counted here.  ?6: why.
	 */
	[STMT_RECLAIM_RANGE] =
		"UPDATE jobs SET state = 3,"
		" next_attempt_at = CASE WHEN doubts > 0 THEN ?5 ELSE ?4 END,"
		" doubts = doubts + 1, attempts = attempts + 1,"
		" first_attempt_at = coalesce(first_attempt_at, ?7),"
		" last_attempt_at = ?7,"
		" last_code = NULL, last_enhanced = NULL, last_reply = ?6"
		" WHERE campaign_id = ?1 AND state = 0"
		" AND id BETWEEN ?2 AND ?3"
		STORE_NO_RESULT("jobs"),
	/*
	 * Released with its claim, a job whose message may have left stays
	 * leased, one by one, for the next run's reclaim to find in doubt.
	 */
	[STMT_RELEASE_KEEP] =
		"UPDATE jobs SET state = 1, lease_owner = ?4,"
		" lease_expires_at = ?5, attempts = attempts + 1,"
		" first_attempt_at = coalesce(first_attempt_at, ?6),"
		" last_attempt_at = ?6"
		" WHERE campaign_id = ?1 AND state = 0 AND id BETWEEN ?2 AND ?3"
		" AND id IN (SELECT value FROM json_each(?7))"
		STORE_NO_RESULT("jobs"),
	/* held in doubt: deferred, due at the end of time (STORE_HELD) */
	[STMT_DOUBT_COUNT] =
		"SELECT count(*) FROM jobs WHERE campaign_id = ?1"
		" AND state = 3 AND next_attempt_at = ?2",
	[STMT_DOUBT_RELEASE] =
		"UPDATE jobs SET next_attempt_at = ?3 WHERE campaign_id = ?1"
		" AND state = 3 AND next_attempt_at = ?2",
	[STMT_DOUBT_DROP] =
		"UPDATE jobs SET state = 4, next_attempt_at = ?3,"
		" last_reply = coalesce(last_reply, '') ||"
		"  ' (dropped while in doubt: it may have been delivered)'"
		" WHERE campaign_id = ?1 AND state = 3 AND next_attempt_at = ?2",
	/* "+jobs.campaign_id": walk in rowid order instead of sorting by id */
	[STMT_REPORT_ALL] = STORE_REPORT_COLUMNS
		" WHERE +jobs.campaign_id = ?1 ORDER BY jobs.id",
	[STMT_REPORT_STATE] = STORE_REPORT_COLUMNS
		" WHERE +jobs.campaign_id = ?1 AND state_now = ?2"
		" ORDER BY jobs.id",
};

struct store_import {
	struct store *st;
	int64_t campaign_id;
	int64_t import_id;
	int64_t started_at;
	int64_t added;
	int64_t duplicates;
	/* Every address of the campaign, its earlier ones included. */
	struct store_addrset addrs;
	char *tmpdir;		/* where addrs keeps its runs */
	/* The address_keys row being filled: keys of consecutive jobs. */
	struct buf keys;
	int64_t keys_first_job;
	size_t keys_count;
	/* Past this many rows jobs_due is dropped, to be built again at
	 * commit (see store_import_add). */
	int64_t rebuild_after;
	bool indexes_dropped;
	/* The suppression list as it stood at the start (store_feedback.c):
	 * entries up to sup_seen; later ones are the claims' to apply. */
	struct store_supfilter sup;
	char *list;
	bool transactional;
	int64_t sup_seen;
	int64_t suppressed;
	struct buf reply;
};

/*
 * An import drops jobs_due once it has added a quarter as many rows as
 * the store held, and at least this many: building an index sorts every
 * row once, which costs about as much as adding a quarter of them to it
 * one by one.
 */
#define STORE_REBUILD_MIN_ROWS 20000

/*
 * The most jobs one claim marks suppressed before it commits and lets
 * its caller claim again (store_batch.more): about 50 ms of work.
 */
#define STORE_CLAIM_SUPPRESS_MAX 2000

/*
 * Keys per address_keys row: 512 KB blobs, far below SQLite's limit on a
 * value and few enough rows that loading a campaign's keys is a scan.
 */
#define STORE_KEYS_PER_ROW 65536

/*
 * The page cache of an import, 16 MB, so that its memory does not grow
 * with its rows (it was 256 MB, and full past 10^6 rows).  An import
 * appends: to the jobs table, to address_keys, and (while it keeps it)
 * to jobs_due at the end of its campaign's range; so it needs few pages
 * at a time, and the others only wait for the commit.  Building jobs_due
 * again at commit sorts in as much memory again.  Measured on 2 cores:
 * 8, 16, 32 and 64 MB import at the same rate; 256 MB was 8-14% faster
 * at 10^6 rows only because it held the whole import (no page written
 * to the WAL before the commit and read back to build the index), and
 * no faster at 10^7, where it could not.
 */
#define STORE_IMPORT_CACHE "PRAGMA cache_size = -16384"
#define STORE_DEFAULT_CACHE "PRAGMA cache_size = -2000"

static __thread char store_open_error[512];

static const char *const job_state_names[JOB_STATE_COUNT] = {
	[JOB_QUEUED] = "queued",
	[JOB_SENDING] = "sending",
	[JOB_SENT] = "sent",
	[JOB_DEFERRED] = "deferred",
	[JOB_FAILED] = "failed",
	[JOB_SUPPRESSED] = "suppressed",
};

const char *job_state_name(enum job_state state)
{
	if ((unsigned)state >= JOB_STATE_COUNT)
		return "unknown";
	return job_state_names[state];
}

bool job_state_parse(const char *name, enum job_state *state_r)
{
	for (int i = 0; i < JOB_STATE_COUNT; i++) {
		if (strcmp(name, job_state_names[i]) == 0) {
			*state_r = (enum job_state)i;
			return true;
		}
	}
	return false;
}

int store_schema_version(void)
{
	return store_migration_count;
}

/* store_fail - set the store's error message and return -1 */
int store_fail(struct store *st, const char **error_r,
		      const char *fmt, ...)
{
	va_list ap;

	st->transient = false;
	st->busy = false;
	va_start(ap, fmt);
	vsnprintf(st->error, sizeof(st->error), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = st->error;
	return -1;
}

/*
 * store_classify - what a failure with SQLite's (primary) code may do
 * next: another process's lock, a full disk, a failed write or malloc
 * may pass if the same statement is tried later; a damaged file will not
 */
static void store_classify(struct store *st, int code)
{
	st->transient = code == SQLITE_BUSY || code == SQLITE_LOCKED ||
			code == SQLITE_FULL || code == SQLITE_IOERR ||
			code == SQLITE_NOMEM || code == SQLITE_INTERRUPT ||
			code == SQLITE_CANTOPEN || code == SQLITE_PROTOCOL;
	st->busy = code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

/* store_fail_db - fail with what SQLite said, after what we were doing */
int store_fail_db(struct store *st, const char **error_r,
			 const char *doing)
{
	int code = sqlite3_errcode(st->db) & 0xff;

	store_fail(st, error_r, "%s: %s: %s", st->path, doing,
		   sqlite3_errmsg(st->db));
	store_classify(st, code);
	return -1;
}

/*
 * store_fail_step - as store_fail_db, for a statement whose step returned
 * rc: a reset or a bind after it clears the connection's error, and
 * an out-of-memory must not read as "not an error"
 */
int store_fail_step(struct store *st, int rc, const char **error_r,
			   const char *doing)
{
	int code = sqlite3_errcode(st->db) & 0xff;

	if (code != SQLITE_OK && code != SQLITE_ROW && code != SQLITE_DONE)
		return store_fail_db(st, error_r, doing);
	store_fail(st, error_r, "%s: %s: %s", st->path, doing,
		   rc == SQLITE_ROW || rc == SQLITE_DONE ?
		   "unexpected result" : sqlite3_errstr(rc));
	store_classify(st, rc & 0xff);
	return -1;
}

bool store_error_transient(const struct store *st)
{
	return st->transient;
}

bool store_error_busy(const struct store *st)
{
	return st->busy;
}

/* store_stmt - the prepared statement id, preparing it on first use */
static sqlite3_stmt *store_stmt(struct store *st, enum store_stmt_id id,
				const char **error_r)
{
	if (st->stmt[id] == NULL &&
	    sqlite3_prepare_v3(st->db, store_sql[id], -1,
			       SQLITE_PREPARE_PERSISTENT, &st->stmt[id],
			       NULL) != SQLITE_OK) {
		store_fail_db(st, error_r, "preparing a statement");
		return NULL;
	}
	return st->stmt[id];
}

/* store_exec - run SQL that returns no rows */
int store_exec(struct store *st, const char *sql, const char *doing,
		      const char **error_r)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, doing);
	return 0;
}

void store_count_move(struct store *st, int64_t campaign,
		      enum job_state from, enum job_state to, int64_t n)
{
	struct store_count_delta *d = NULL;

	if (n == 0 || from == to)
		return;
	/* a transaction touches one campaign, rarely a few */
	for (size_t i = st->count_ndeltas; i-- > 0;) {
		if (st->count_deltas[i].campaign == campaign) {
			d = &st->count_deltas[i];
			break;
		}
	}
	if (d == NULL) {
		if (st->count_ndeltas == st->count_cap) {
			st->count_cap = st->count_cap ? 2 * st->count_cap : 4;
			st->count_deltas = xrealloc(st->count_deltas,
						    st->count_cap *
						    sizeof(*d));
		}
		d = &st->count_deltas[st->count_ndeltas++];
		memset(d, 0, sizeof(*d));
		d->campaign = campaign;
	}
	d->n[from] -= n;
	d->n[to] += n;
}

/* store_count_flush - add the open transaction's moves to the counts */
static int store_count_flush(struct store *st, const char **error_r)
{
	sqlite3_stmt *stmt;

	if (st->count_ndeltas == 0)
		return 0;
	stmt = store_stmt(st, STMT_COUNT_ADD, error_r);
	if (stmt == NULL)
		return -1;
	for (size_t i = 0; i < st->count_ndeltas; i++) {
		const struct store_count_delta *d = &st->count_deltas[i];

		for (int state = 0; state < JOB_STATE_COUNT; state++) {
			int rc;

			if (d->n[state] == 0)
				continue;
			sqlite3_bind_int64(stmt, 1, d->campaign);
			sqlite3_bind_int64(stmt, 2, d->n[state]);
			sqlite3_bind_int(stmt, 3, state);
			rc = sqlite3_step(stmt);
			sqlite3_reset(stmt);
			if (rc != SQLITE_DONE)
				return store_fail_step(st, rc, error_r,
						       "counting jobs");
		}
	}
	st->count_ndeltas = 0;
	return 0;
}

static void store_known_forget(struct store *st, int64_t id);

int store_begin(struct store *st, const char **error_r)
{
	st->count_ndeltas = 0;
	st->checked.id = 0;
	st->ntouched = 0;
	return store_exec(st, "BEGIN IMMEDIATE", "starting a transaction",
			  error_r);
}

int store_commit(struct store *st, const char **error_r)
{
	if (store_count_flush(st, error_r) < 0)
		return -1;
	return store_exec(st, "COMMIT", "committing", error_r);
}

/* store_rollback - undo the open transaction, if SQLite has not already */
void store_rollback(struct store *st)
{
	st->count_ndeltas = 0;
	st->checked.id = 0;
	st->ntouched = 0;
	store_known_forget(st, 0);	/* its results never were */
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* store_pragma_int - the integer value of a PRAGMA query */
int store_pragma_int(struct store *st, const char *sql, int64_t *v_r,
			    const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "reading the schema");
	rc = sqlite3_step(stmt);
	*v_r = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "reading the schema");
	return 0;
}

/*
 * Address keys are kept in blobs, 8 bytes each, little-endian so a store
 * means the same on any machine.
 */
static void store_put_key(unsigned char *p, int64_t key)
{
	uint64_t v = (uint64_t)key;

	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static int64_t store_get_key(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

/*
 * volley_addr_key(address) in SQL: the address's key as an address_keys
 * blob of one, for the migration that made that table.
 */
static void store_sql_addr_key(sqlite3_context *ctx, int argc,
			       sqlite3_value **argv)
{
	const unsigned char *addr = sqlite3_value_text(argv[0]);
	unsigned char key[8];

	(void)argc;
	if (addr == NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	store_put_key(key, store_addr_key((const char *)addr,
			(size_t)sqlite3_value_bytes(argv[0])));
	sqlite3_result_blob(ctx, key, sizeof(key), SQLITE_TRANSIENT);
}

/*
 * store_identify - refuse a file that is not a volley store before
 * changing anything in it (not even its journal mode): it must carry
 * volley's application_id, or be an empty database to become one.
 */
static int store_identify(struct store *st, const char **error_r)
{
	int64_t app_id, objects;

	if (store_pragma_int(st, "PRAGMA application_id", &app_id,
			     error_r) < 0 ||
	    store_pragma_int(st, "SELECT count(*) FROM sqlite_schema",
			     &objects, error_r) < 0)
		return -1;
	if (app_id == STORE_APPLICATION_ID || (app_id == 0 && objects == 0))
		return 0;
	return store_fail(st, error_r, "%s: not a volley store (%s)",
			  st->path, app_id != 0 ?
			  "another program's SQLite file" :
			  "it has tables but no volley schema");
}

/*
 * store_widen_state_check - let jobs.state be 5 (suppressed).  SQLite
 * cannot ALTER a CHECK, and making the table again would rewrite every
 * job (10^7 rows is minutes and twice the disk); a CHECK that admits more
 * changes nothing stored, so the table's definition is edited in place,
 * the way sqlite.org/lang_altertable.html ("other kinds of table schema
 * changes") describes, with the schema version bumped so every
 * connection reads it again.  Runs inside the migration's transaction.
 */
static int store_widen_state_check(struct store *st, const char **error_r)
{
	int64_t schema_version, changed;
	char sql[64];

	if (store_pragma_int(st, "PRAGMA schema_version", &schema_version,
			     error_r) < 0 ||
	    store_exec(st, "PRAGMA writable_schema = ON", "migrating the "
		       "schema", error_r) < 0)
		return -1;
	if (store_exec(st, "UPDATE sqlite_schema SET sql = replace(sql,"
		       " 'CHECK (state BETWEEN 0 AND 4)',"
		       " 'CHECK (state BETWEEN 0 AND 5)')"
		       " WHERE type = 'table' AND name = 'jobs'"
		       " AND instr(sql, 'CHECK (state BETWEEN 0 AND 4)') > 0",
		       "migrating the schema", error_r) < 0) {
		sqlite3_exec(st->db, "PRAGMA writable_schema = OFF", NULL,
			     NULL, NULL);
		return -1;
	}
	changed = sqlite3_changes64(st->db);
	snprintf(sql, sizeof(sql), "PRAGMA schema_version = %lld",
		 (long long)schema_version + 1);
	if (store_exec(st, sql, "migrating the schema", error_r) < 0) {
		sqlite3_exec(st->db, "PRAGMA writable_schema = OFF", NULL,
			     NULL, NULL);
		return -1;
	}
	if (store_exec(st, "PRAGMA writable_schema = OFF", "migrating the "
		       "schema", error_r) < 0)
		return -1;
	if (changed != 1)
		return store_fail(st, error_r, "%s: migrating the schema: the "
				  "jobs table is not as volley made it",
				  st->path);
	return 0;
}

/*
 * store_migrate_senders - before the counting trigger goes (7 -> 8),
 * before leases per claim (8 -> 9) and before the journal of results
 * (9 -> 10): no older volley may be sending from this store, since the
 * statements it has prepared would change states nobody counts from then
 * on, lease queued jobs a claim holds, and claim jobs whose result is in
 * the journal.  A job or (from schema 9) a claim leased until later to an
 * owner that may be alive says one is.  -1 (the error names the owner)
 * if so.
 */
static int store_migrate_senders(struct store *st, int64_t version,
				 const char **error_r)
{
	sqlite3_stmt *stmt;
	char self[128];
	int rc, ret = 0;

	if (sqlite3_prepare_v2(st->db, version <= store_migration_claims ?
			       "SELECT lease_owner,"
			       " max(lease_expires_at), count(*) FROM jobs"
			       " WHERE state = 1 AND lease_expires_at > ?1"
			       " GROUP BY lease_owner" :
			       "SELECT owner, max(until), sum(n) FROM"
			       " (SELECT lease_owner AS owner,"
			       "   lease_expires_at AS until, 1 AS n FROM jobs"
			       "   WHERE state = 1 AND lease_expires_at > ?1"
			       "  UNION ALL SELECT owner, expires_at,"
			       "   last_job - first_job + 1 FROM claims"
			       "   WHERE owner IS NOT NULL AND expires_at > ?1)"
			       " GROUP BY owner", -1, &stmt,
			       NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "migrating the schema");
	store_lease_owner_self(self, sizeof(self));
	sqlite3_bind_int64(stmt, 1, clock_wall_ms());
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *owner = store_column_text(stmt, 0);
		time_t until = (time_t)(sqlite3_column_int64(stmt, 1) / 1000);
		char when[32];
		struct tm tm;

		if (owner == NULL || !store_lease_owner_alive(owner, self))
			continue;
		gmtime_r(&until, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		ret = store_fail(st, error_r, "%s: an older volley (%s) may "
				 "still be sending from this store (%lld "
				 "recipients leased until %s): let it finish "
				 "or stop it, then run this volley again to "
				 "upgrade the store", st->path, owner,
				 (long long)sqlite3_column_int64(stmt, 2),
				 when);
		break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_step(st, rc, error_r, "migrating the schema");
	sqlite3_finalize(stmt);
	return ret;
}

/*
 * store_migrate - bring the schema to the current version.  The version is
 * read again inside the write transaction, so two processes opening an old
 * store at once migrate it once.
 */
static int store_migrate(struct store *st, const char **error_r)
{
	int64_t version;
	char sql[96];

	if (store_pragma_int(st, "PRAGMA user_version", &version,
			     error_r) < 0)
		return -1;
	if (version == store_migration_count)
		return 0;
	if (version > store_migration_count)
		return store_fail(st, error_r,
				  "%s: store schema version %lld is newer "
				  "than this volley understands (%d); use a "
				  "newer volley", st->path, (long long)version,
				  store_migration_count);

	if (store_begin(st, error_r) < 0)
		return -1;
	if (store_pragma_int(st, "PRAGMA user_version", &version,
			     error_r) < 0)
		goto out_rollback;
	if (version == 0) {
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
			 STORE_APPLICATION_ID);
		if (store_exec(st, sql, "creating the store", error_r) < 0)
			goto out_rollback;
	}
	/* jobs exist from step 0 -> 1, the trigger from 1 -> 2 */
	if (version >= 2 && version <= store_migration_journal &&
	    store_migrate_senders(st, version, error_r) < 0)
		goto out_rollback;
	for (; version < store_migration_count; version++) {
		if (store_exec(st, store_migrations[version],
			       "migrating the schema", error_r) < 0)
			goto out_rollback;
		if (version == store_migration_widen_state &&
		    store_widen_state_check(st, error_r) < 0)
			goto out_rollback;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		 store_migration_count);
	if (store_exec(st, sql, "migrating the schema", error_r) < 0)
		goto out_rollback;
	if (store_commit(st, error_r) < 0)
		goto out_rollback;
	return 0;

out_rollback:
	store_rollback(st);
	return -1;
}

/*
 * No memory statistics: keeping them takes a global mutex around every
 * allocation SQLite makes, several per statement run (about 3% of a
 * message's instructions), for figures volley never reads.  SQLite
 * takes this only before its first use, from one thread.
 */
void store_process_init(void)
{
	/* refused once SQLite is initialised: then nothing changes */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *path, const struct store_params *params,
	       struct store **st_r, const char **error_r)
{
	static const struct store_params defaults = { 0, false };
	struct store *st;
	struct stat sb;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int64_t timeout;
	char sql[64];

	*st_r = NULL;
	if (params == NULL)
		params = &defaults;
	if (params->create)
		flags |= SQLITE_OPEN_CREATE;
	else if (stat(path, &sb) < 0) {
		snprintf(store_open_error, sizeof(store_open_error),
			 "%s: no store there (%s); run 'volley init' first",
			 path, strerror(errno));
		*error_r = store_open_error;
		return -1;
	}

	st = xcalloc(1, sizeof(*st));
	st->stmt = xcalloc(STMT_COUNT, sizeof(*st->stmt));
	st->path = xstrdup(path);
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		store_fail(st, error_r, "%s: cannot open: %s", path,
			   st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto out_fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	timeout = params->busy_timeout_ms > 0 ? params->busy_timeout_ms : 5000;
	sqlite3_busy_timeout(st->db, (int)timeout);
	if (sqlite3_create_function(st->db, "volley_addr_key", 1,
				    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
				    store_sql_addr_key, NULL, NULL) !=
	    SQLITE_OK) {
		store_fail_db(st, error_r, "opening the store");
		goto out_fail;
	}

	if (store_identify(st, error_r) < 0)
		goto out_fail;
	/*
	 * WAL lets status and report read while a send writes.  FULL makes
	 * every commit durable on power loss as well as on a crash: results
	 * are committed in batches, so it costs a sync per batch, not per
	 * message.
	 */
	if (store_exec(st, "PRAGMA journal_mode = WAL", "enabling WAL",
		       error_r) < 0 ||
	    store_exec(st, "PRAGMA foreign_keys = ON", "enabling foreign keys",
		       error_r) < 0 ||
	    store_exec(st, "PRAGMA synchronous = FULL", "setting sync mode",
		       error_r) < 0)
		goto out_fail;
	snprintf(sql, sizeof(sql), "PRAGMA busy_timeout = %lld",
		 (long long)timeout);
	if (store_exec(st, sql, "setting the busy timeout", error_r) < 0)
		goto out_fail;
	if (store_migrate(st, error_r) < 0)
		goto out_fail;
	*st_r = st;
	return 0;

out_fail:
	snprintf(store_open_error, sizeof(store_open_error), "%s", st->error);
	*error_r = store_open_error;
	store_close(&st);
	return -1;
}

void store_close(struct store **stp)
{
	struct store *st = *stp;

	if (st == NULL)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	free(st->stmt);
	free(st->count_deltas);
	free(st->touched);
	store_known_forget(st, 0);
	free(st->known);
	free(st->made);
	store_fb_close(st);
	sqlite3_close(st->db);
	buf_free(&st->scratch);
	free(st->path);
	free(st);
	*stp = NULL;
}

/* --- campaigns --------------------------------------------------------- */

/* store_column_text - a text column, or NULL for SQL NULL */
const char *store_column_text(sqlite3_stmt *stmt, int col)
{
	return (const char *)sqlite3_column_text(stmt, col);
}


void store_bind_text_or_null(sqlite3_stmt *stmt, int col,
				    const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(stmt, col, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, col);
}

int store_campaign_create(struct store *st, const char *name,
			  const char *sender, const char *template_ref,
			  const char *files_dir, const char *list,
			  bool transactional,
			  const struct store_file *files, size_t nfiles,
			  int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_CAMPAIGN_INSERT, error_r);
	sqlite3_stmt *file = store_stmt(st, STMT_FILE_INSERT, error_r);
	int64_t id;
	int rc;

	if (list == NULL)
		list = STORE_LIST_DEFAULT;
	if (strcmp(list, STORE_SCOPE_GLOBAL) == 0 || list[0] == '\0')
		return store_fail(st, error_r, "'%s' cannot name a list: "
				  "\"global\" means every list", list);
	if (stmt == NULL || file == NULL || store_begin(st, error_r) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, list, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 7, transactional);
	store_bind_text_or_null(stmt, 2, sender);
	store_bind_text_or_null(stmt, 3, template_ref);
	sqlite3_bind_int64(stmt, 4, clock_wall_ms());
	store_bind_text_or_null(stmt, 5, files_dir);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		store_fail(st, error_r, "a campaign named '%s' already exists",
			   name);
		goto out_rollback;
	}
	if (rc != SQLITE_DONE) {
		store_fail_step(st, rc, error_r, "creating the campaign");
		goto out_rollback;
	}
	id = sqlite3_last_insert_rowid(st->db);
	for (size_t i = 0; i < nfiles; i++) {
		sqlite3_bind_int64(file, 1, id);
		sqlite3_bind_text(file, 2, files[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(file, 3, files[i].data,
				    (sqlite3_uint64)files[i].len,
				    SQLITE_STATIC);
		rc = sqlite3_step(file);
		sqlite3_reset(file);
		sqlite3_clear_bindings(file);
		if (rc != SQLITE_DONE) {
			store_fail_step(st, rc, error_r,
					"storing the template");
			goto out_rollback;
		}
	}
	if (store_commit(st, error_r) < 0)
		goto out_rollback;
	*id_r = id;
	return 0;

out_rollback:
	store_rollback(st);
	return -1;
}

int store_campaign_get(struct store *st, const char *name,
		       struct store_campaign *c, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_CAMPAIGN_GET, error_r);
	static const int text_cols[] = { 1, 2, 3, 4, 7, 8 };
	size_t off[6];
	int rc;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		/* Copy out: the statement is reset before we return. */
		buf_reset(&st->scratch);
		for (int i = 0; i < 6; i++) {
			const char *v = store_column_text(stmt, text_cols[i]);

			off[i] = v != NULL ? st->scratch.len : (size_t)-1;
			if (v != NULL)
				buf_append(&st->scratch, v, strlen(v) + 1);
		}
		c->id = sqlite3_column_int64(stmt, 0);
		c->created_at = sqlite3_column_int64(stmt, 5);
		c->finished_at = sqlite3_column_int64(stmt, 6);
		c->transactional = sqlite3_column_int(stmt, 9) != 0;
	}
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "reading a campaign");
	c->name = st->scratch.data + off[0];
	c->sender = off[1] != (size_t)-1 ? st->scratch.data + off[1] : NULL;
	c->template_ref = off[2] != (size_t)-1 ?
			  st->scratch.data + off[2] : NULL;
	c->state = st->scratch.data + off[3];
	c->files_dir = off[4] != (size_t)-1 ? st->scratch.data + off[4] :
		       NULL;
	c->list = st->scratch.data + off[5];
	return 1;
}

int store_campaign_files(struct store *st, int64_t campaign_id,
			 store_file_fn *fn, void *ctx, const char **error_r)
{
	struct store_file f;
	sqlite3_stmt *stmt;
	int rc, ret = 0;

	/* Private statement: fn may use the store meanwhile. */
	if (sqlite3_prepare_v2(st->db, "SELECT name, content FROM"
			       " campaign_files WHERE campaign_id = ?1"
			       " ORDER BY name", -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "reading the template");
	sqlite3_bind_int64(stmt, 1, campaign_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		f.name = store_column_text(stmt, 0);
		f.data = sqlite3_column_blob(stmt, 1);
		f.len = (size_t)sqlite3_column_bytes(stmt, 1);
		ret = fn(ctx, &f);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_step(st, rc, error_r, "reading the template");
	sqlite3_finalize(stmt);
	return ret;
}

int store_campaign_find(struct store *st, const char *name, int64_t *id_r,
			const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_CAMPAIGN_FIND, error_r);
	int rc, found = 0;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(stmt, 0);
		found = 1;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r,
				       "looking up a campaign");
	return found;
}

int store_counts(struct store *st, int64_t campaign_id,
		 struct store_counts *counts_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_COUNTS, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	memset(counts_r, 0, sizeof(*counts_r));
	sqlite3_bind_int64(stmt, 1, campaign_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int state = sqlite3_column_int(stmt, 0);
		int64_t n = sqlite3_column_int64(stmt, 1);

		if (state >= 0 && state < JOB_STATE_COUNT) {
			counts_r->by_state[state] = n;
			counts_r->total += n;
		}
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "counting jobs");
	return 0;
}

int store_campaign_foreach(struct store *st, store_campaign_fn *fn,
			   void *ctx, const char **error_r)
{
	sqlite3_stmt *stmt;
	struct store_campaign c;
	struct store_counts counts;
	int rc, ret = 0;

	/*
	 * A private statement: the callback may call store_counts() and
	 * friends, which must not reset the statement being walked.
	 */
	if (sqlite3_prepare_v2(st->db, store_sql[STMT_CAMPAIGN_LIST], -1,
			       &stmt, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "listing campaigns");
	/* One read transaction, so every campaign's counts agree in time. */
	if (store_exec(st, "BEGIN", "listing campaigns", error_r) < 0) {
		sqlite3_finalize(stmt);
		return -1;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		c.id = sqlite3_column_int64(stmt, 0);
		c.name = store_column_text(stmt, 1);
		c.sender = store_column_text(stmt, 2);
		c.template_ref = store_column_text(stmt, 3);
		c.state = store_column_text(stmt, 4);
		c.created_at = sqlite3_column_int64(stmt, 5);
		c.finished_at = sqlite3_column_int64(stmt, 6);
		c.files_dir = store_column_text(stmt, 7);
		c.list = store_column_text(stmt, 8);
		c.transactional = sqlite3_column_int(stmt, 9) != 0;
		if (store_counts(st, c.id, &counts, error_r) < 0) {
			ret = -1;
			break;
		}
		ret = fn(ctx, &c, &counts);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_step(st, rc, error_r, "listing campaigns");
	sqlite3_finalize(stmt);
	sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
	return ret;
}

/* --- import ------------------------------------------------------------ */

/* store_dir - the folder of the file at path */
static char *store_dir(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/*
 * store_import_fail_set - fail because the set of address keys could not
 * write or read one of its temporary files; errno says why
 */
static int store_import_fail_set(struct store_import *imp,
				 const char **error_r)
{
	struct store *st = imp->st;
	int err = errno;

	store_fail(st, error_r, "%s: finding duplicates (temporary files in "
		   "%s): %s", st->path, imp->tmpdir, strerror(err));
	st->transient = err == ENOSPC || err == EDQUOT || err == EIO;
	return -1;
}

/* store_import_load_keys - the campaign's address keys into imp->addrs */
static int store_import_load_keys(struct store_import *imp,
				  const char **error_r)
{
	struct store *st = imp->st;
	sqlite3_stmt *stmt = store_stmt(st, STMT_KEYS_OF_CAMPAIGN, error_r);
	int rc = SQLITE_DONE, ret = 0;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, imp->campaign_id);
	while (ret == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int64_t first = sqlite3_column_int64(stmt, 0);
		const unsigned char *keys = sqlite3_column_blob(stmt, 1);
		size_t n = (size_t)sqlite3_column_bytes(stmt, 1) / 8;

		for (size_t i = 0; i < n && ret == 0; i++) {
			if (store_addrset_add(&imp->addrs,
					      store_get_key(keys + 8 * i),
					      first + (int64_t)i) < 0)
				ret = store_import_fail_set(imp, error_r);
		}
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_db(st, error_r, "starting the import");
	sqlite3_reset(stmt);
	if (ret == 0 && store_addrset_compact(&imp->addrs) < 0)
		ret = store_import_fail_set(imp, error_r);
	return ret;
}

/*
 * store_import_load_suppressions - the keys of every suppression that
 * stops this campaign, into imp->sup, and the highest id as sup_seen
 */
static int store_import_load_suppressions(struct store_import *imp,
					  const char **error_r)
{
	struct store *st = imp->st;
	sqlite3_stmt *stmt;
	char *list = NULL;
	bool transactional = false;
	int rc, ret;

	if (sqlite3_prepare_v2(st->db, "SELECT list, transactional FROM"
			       " campaigns WHERE id = ?1", -1, &stmt,
			       NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "starting the import");
	sqlite3_bind_int64(stmt, 1, imp->campaign_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const char *l = store_column_text(stmt, 0);

		list = xstrdup(l != NULL ? l : STORE_LIST_DEFAULT);
		transactional = sqlite3_column_int(stmt, 1) != 0;
	} else {
		store_fail_step(st, rc, error_r, "starting the import");
	}
	sqlite3_finalize(stmt);
	if (list == NULL)
		return -1;
	ret = store_supfilter_load(st, list, transactional, 0, &imp->sup,
				   &imp->sup_seen, error_r);
	imp->list = list;
	imp->transactional = transactional;
	return ret;
}

int store_import_begin(struct store *st, int64_t campaign_id,
		       const char *source, const char *address_column,
		       const char *const *var_names, size_t nvars,
		       struct store_import **imp_r, const char **error_r)
{
	struct store_import *imp;
	sqlite3_stmt *stmt;
	int rc;

	*imp_r = NULL;
	if (st->importing)
		return store_fail(st, error_r, "an import is already open "
				  "on this store");
	/*
	 * Foreign keys are checked here once instead of twice per row: the
	 * campaign is looked up below and the import row is made in this
	 * very transaction, so per-row checks could never fail.
	 */
	if (store_exec(st, STORE_IMPORT_CACHE, "sizing the cache",
		       error_r) < 0 ||
	    store_exec(st, "PRAGMA foreign_keys = OFF", "starting the import",
		       error_r) < 0 ||
	    store_begin(st, error_r) < 0) {
		sqlite3_exec(st->db, STORE_DEFAULT_CACHE, NULL, NULL, NULL);
		sqlite3_exec(st->db, "PRAGMA foreign_keys = ON", NULL, NULL,
			     NULL);
		return -1;
	}

	imp = xcalloc(1, sizeof(*imp));
	imp->st = st;
	imp->campaign_id = campaign_id;
	imp->started_at = clock_wall_ms();
	/* The set's runs go beside the store: on its disk, not in a /tmp
	 * that may be memory. */
	imp->tmpdir = store_dir(st->path);
	store_addrset_init(&imp->addrs, imp->tmpdir);

	/* Names are packed like values (vars.h), once per import. */
	vars_pack_begin(&st->scratch);
	for (size_t i = 0; i < nvars; i++)
		vars_pack_str(&st->scratch, var_names[i], strlen(var_names[i]));

	stmt = store_stmt(st, STMT_CAMPAIGN_EXISTS, error_r);
	if (stmt == NULL)
		goto out_rollback;
	sqlite3_bind_int64(stmt, 1, campaign_id);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			store_fail(st, error_r, "no campaign with id %lld",
				   (long long)campaign_id);
		else
			store_fail_db(st, error_r, "starting the import");
		goto out_rollback;
	}
	/* the same list the claims check, read in this transaction */
	store_claim_forget(st);
	if (store_import_load_suppressions(imp, error_r) < 0)
		goto out_rollback;

	stmt = store_stmt(st, STMT_IMPORT_INSERT, error_r);
	if (stmt == NULL)
		goto out_rollback;
	sqlite3_bind_int64(stmt, 1, campaign_id);
	store_bind_text_or_null(stmt, 2, source);
	sqlite3_bind_blob(stmt, 3, st->scratch.data, (int)st->scratch.len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, imp->started_at);
	sqlite3_bind_text(stmt, 5, address_column, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE) {
		store_fail_step(st, rc, error_r, "starting the import");
		goto out_rollback;
	}
	imp->import_id = sqlite3_last_insert_rowid(st->db);

	stmt = store_stmt(st, STMT_JOB_INSERT, error_r);
	if (stmt == NULL)
		goto out_rollback;
	sqlite3_bind_int64(stmt, 1, campaign_id);
	sqlite3_bind_int64(stmt, 2, imp->import_id);
	sqlite3_bind_int64(stmt, 6, imp->started_at);

	stmt = store_stmt(st, STMT_JOB_COUNT, error_r);
	if (stmt == NULL)
		goto out_rollback;
	rc = sqlite3_step(stmt);
	imp->rebuild_after = rc == SQLITE_ROW ?
		sqlite3_column_int64(stmt, 0) / 4 : 0;
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW) {
		store_fail_step(st, rc, error_r, "starting the import");
		goto out_rollback;
	}
	if (imp->rebuild_after < STORE_REBUILD_MIN_ROWS)
		imp->rebuild_after = STORE_REBUILD_MIN_ROWS;

	/* Duplicates of earlier imports are found in the set too. */
	if (store_import_load_keys(imp, error_r) < 0)
		goto out_rollback;
	st->importing = true;
	*imp_r = imp;
	return 0;

out_rollback:
	store_rollback(st);
	sqlite3_exec(st->db, STORE_DEFAULT_CACHE, NULL, NULL, NULL);
	sqlite3_exec(st->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	store_addrset_free(&imp->addrs);
	store_supfilter_free(&imp->sup);
	free(imp->list);
	free(imp->tmpdir);
	free(imp);
	return -1;
}

/* store_same_address - equal ignoring ASCII case, as COLLATE NOCASE */
static bool store_same_address(const unsigned char *a, size_t a_len,
			       const char *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++) {
		unsigned char x = a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + ('a' - 'A'));
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + ('a' - 'A'));
		if (x != y)
			return false;
	}
	return true;
}

/*
 * store_import_seen - whether the campaign already has this address:
 * 1 yes, 0 no, -1 error.  Keys only narrow the search (store_addrset.h);
 * the addresses behind them decide.
 */
static int store_import_seen(struct store_import *imp, int64_t key,
			     const char *addr, size_t addr_len,
			     const char **error_r)
{
	struct store *st = imp->st;
	struct store_addrset_cursor cursor;
	sqlite3_stmt *stmt;
	int64_t job_id;
	bool same;
	int rc;

	store_addrset_cursor_init(&cursor, key);
	while ((rc = store_addrset_next(&imp->addrs, &cursor, &job_id)) > 0) {
		stmt = store_stmt(st, STMT_JOB_ADDRESS, error_r);
		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, job_id);
		rc = sqlite3_step(stmt);
		same = rc == SQLITE_ROW &&
			store_same_address(sqlite3_column_text(stmt, 0),
				(size_t)sqlite3_column_bytes(stmt, 0),
				addr, addr_len);
		sqlite3_reset(stmt);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return store_fail_step(st, rc, error_r,
					       "adding a recipient");
		if (same)
			return 1;
	}
	if (rc < 0)
		return store_import_fail_set(imp, error_r);
	return 0;
}

/* store_import_flush_keys - write the address_keys row being filled */
static int store_import_flush_keys(struct store_import *imp,
				   const char **error_r)
{
	struct store *st = imp->st;
	sqlite3_stmt *stmt;
	int rc;

	if (imp->keys_count == 0)
		return 0;
	stmt = store_stmt(st, STMT_KEYS_INSERT, error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, imp->campaign_id);
	sqlite3_bind_int64(stmt, 2, imp->keys_first_job);
	sqlite3_bind_blob(stmt, 3, imp->keys.data, (int)imp->keys.len,
			  SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r,
				       "indexing the addresses");
	buf_reset(&imp->keys);
	imp->keys_count = 0;
	return 0;
}

int store_import_add(struct store_import *imp, const char *addr,
		     size_t addr_len, unsigned addr_flags, const void *vars,
		     size_t vars_len, const char **error_r)
{
	struct store *st = imp->st;
	sqlite3_stmt *stmt = st->stmt[STMT_JOB_INSERT];
	int64_t key = store_addr_key(addr, addr_len), job_id;
	bool suppressed = false;
	int rc;

	rc = store_import_seen(imp, key, addr, addr_len, error_r);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		imp->duplicates++;
		return 0;
	}
	if (store_supfilter_maybe(&imp->sup, addr, addr_len)) {
		struct store_suppression sup;

		rc = store_suppress_find(st, addr, addr_len, imp->list,
					 imp->transactional, &sup, error_r);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			suppressed = true;
			store_suppress_reply(&sup, &imp->reply);
			stmt = store_stmt(st, STMT_JOB_INSERT_SUPPRESSED,
					  error_r);
			if (stmt == NULL)
				return -1;
			sqlite3_bind_int64(stmt, 1, imp->campaign_id);
			sqlite3_bind_int64(stmt, 2, imp->import_id);
			sqlite3_bind_int64(stmt, 6, imp->started_at);
			sqlite3_bind_text(stmt, 7, imp->reply.data,
					  (int)imp->reply.len, SQLITE_STATIC);
		}
	}
	/* Columns 1, 2 and 6 of JOB_INSERT stay bound for the import. */
	sqlite3_bind_text(stmt, 3, addr, (int)addr_len, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 4, (int)addr_flags);
	sqlite3_bind_blob(stmt, 5, vars, (int)vars_len, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (suppressed)
		sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "adding a recipient");
	job_id = sqlite3_last_insert_rowid(st->db);
	if (store_addrset_add(&imp->addrs, key, job_id) < 0)
		return store_import_fail_set(imp, error_r);
	/*
	 * Adding each row to jobs_due costs a B-tree search per row, more
	 * than the row itself; past rebuild_after rows, building it again
	 * from a sort at commit is cheaper (with the 16 MB cache, about 15%
	 * faster at 10^6 rows).  It all stays inside the import's
	 * transaction: a rollback or a crash brings the index back as it
	 * was, and other connections never see the store without it.
	 */
	if (!imp->indexes_dropped && imp->added + 1 >= imp->rebuild_after) {
		if (store_exec(st, store_job_indexes_drop, "adding a recipient",
			       error_r) < 0)
			return -1;
		imp->indexes_dropped = true;
	}
	/* A row of keys covers consecutive jobs, as one import's are. */
	if (imp->keys_count == STORE_KEYS_PER_ROW ||
	    (imp->keys_count > 0 &&
	     job_id != imp->keys_first_job + (int64_t)imp->keys_count)) {
		if (store_import_flush_keys(imp, error_r) < 0)
			return -1;
	}
	if (imp->keys_count == 0)
		imp->keys_first_job = job_id;
	buf_reserve(&imp->keys, 8);
	store_put_key((unsigned char *)imp->keys.data + imp->keys.len, key);
	imp->keys.len += 8;
	imp->keys_count++;
	imp->added++;
	if (suppressed) {
		imp->suppressed++;
		return 2;
	}
	return 1;
}

/* store_import_end - forget the import's state on the store */
static void store_import_end(struct store_import **impp)
{
	struct store *st = (*impp)->st;

	sqlite3_clear_bindings(st->stmt[STMT_JOB_INSERT]);
	store_addrset_free(&(*impp)->addrs);
	store_supfilter_free(&(*impp)->sup);
	free((*impp)->list);
	buf_free(&(*impp)->reply);
	free((*impp)->tmpdir);
	buf_free(&(*impp)->keys);
	sqlite3_exec(st->db, STORE_DEFAULT_CACHE, NULL, NULL, NULL);
	sqlite3_exec(st->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	st->importing = false;
	free(*impp);
	*impp = NULL;
}

int store_import_commit(struct store_import **impp, int64_t rejected,
			struct store_import_stats *stats_r,
			const char **error_r)
{
	struct store_import *imp = *impp;
	struct store *st = imp->st;
	sqlite3_stmt *stmt = store_stmt(st, STMT_IMPORT_FINISH, error_r);
	int rc;

	if (stmt == NULL || store_import_flush_keys(imp, error_r) < 0)
		goto out_rollback;
	/* Nothing more is added: the set's memory is the sort's now. */
	store_addrset_free(&imp->addrs);
	if (imp->indexes_dropped &&
	    store_exec(st, store_job_indexes_create, "indexing the jobs",
		       error_r) < 0)
		goto out_rollback;
	sqlite3_bind_int64(stmt, 1, imp->import_id);
	sqlite3_bind_int64(stmt, 2, clock_wall_ms());
	sqlite3_bind_int64(stmt, 3, imp->added);
	sqlite3_bind_int64(stmt, 4, imp->duplicates);
	sqlite3_bind_int64(stmt, 5, rejected);
	sqlite3_bind_int64(stmt, 6, imp->suppressed);
	sqlite3_bind_int64(stmt, 7, imp->sup_seen);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		store_fail_step(st, rc, error_r, "finishing the import");
		goto out_rollback;
	}
	stmt = store_stmt(st, STMT_COUNT_ADD, error_r);
	if (stmt == NULL)
		goto out_rollback;
	for (int i = 0; i < 2; i++) {
		sqlite3_bind_int64(stmt, 1, imp->campaign_id);
		sqlite3_bind_int64(stmt, 2, i == 0 ?
				   imp->added - imp->suppressed :
				   imp->suppressed);
		sqlite3_bind_int(stmt, 3, i == 0 ? JOB_QUEUED :
				 JOB_SUPPRESSED);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		if (rc != SQLITE_DONE) {
			store_fail_step(st, rc, error_r,
					"finishing the import");
			goto out_rollback;
		}
	}
	if (store_commit(st, error_r) < 0)
		goto out_rollback;
	if (stats_r != NULL) {
		stats_r->import_id = imp->import_id;
		stats_r->added = imp->added;
		stats_r->duplicates = imp->duplicates;
		stats_r->suppressed = imp->suppressed;
	}
	store_import_end(impp);
	return 0;

out_rollback:
	store_rollback(st);
	store_import_end(impp);
	return -1;
}

void store_import_abort(struct store_import **impp)
{
	if (*impp == NULL)
		return;
	store_rollback((*impp)->st);
	store_import_end(impp);
}

int store_import_var_names(struct store *st, int64_t import_id,
			   const void **packed_r, size_t *len_r,
			   const char **address_column_r,
			   const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_IMPORT_NAMES, error_r);
	size_t names_len = 0;
	int rc;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, import_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		/* names, NUL, address column: one buffer holds both */
		buf_reset(&st->scratch);
		buf_append(&st->scratch, sqlite3_column_blob(stmt, 0),
			   (size_t)sqlite3_column_bytes(stmt, 0));
		names_len = st->scratch.len;
		buf_putc(&st->scratch, '\0');
		buf_append_str(&st->scratch,
			       (const char *)sqlite3_column_text(stmt, 1));
	}
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return store_fail(st, error_r, "no import with id %lld",
				  (long long)import_id);
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "reading an import");
	*packed_r = st->scratch.data;
	*len_r = names_len;
	*address_column_r = st->scratch.data + names_len + 1;
	return 0;
}

/* --- claiming and recording -------------------------------------------- */

void store_batch_free(struct store_batch *batch)
{
	if (batch->arena != NULL) {
		buf_free(batch->arena);
		free(batch->arena);
	}
	free(batch->jobs);
	memset(batch, 0, sizeof(*batch));
}

/*
 * store_claim_job - the job in the current row of a claim's statement
 * (columns from first on: import_id, address, addr_flags, vars,
 * attempts, first_attempt_at, doubts), appended to batch with its
 * address and variables in arena as offsets (the arena may move as it
 * grows: pointers are made once every row is in).  0, or -1 when SQLite
 * could not make the text (out of memory).
 */
static int store_claim_job(sqlite3_stmt *stmt, int first, int64_t id,
			   int64_t campaign_id, int64_t now, bool counted,
			   struct store_batch *batch, struct buf *arena)
{
	struct store_job *job = &batch->jobs[batch->count];
	size_t alen = (size_t)sqlite3_column_bytes(stmt, first + 1);
	const unsigned char *addr = sqlite3_column_text(stmt, first + 1);
	size_t vlen;

	if (addr == NULL)
		return -1;
	batch->count++;
	job->id = id;
	job->campaign_id = campaign_id;
	job->import_id = sqlite3_column_int64(stmt, first);
	job->address = (const char *)(uintptr_t)arena->len;
	job->address_len = alen;
	buf_append(arena, addr, alen);
	buf_putc(arena, '\0');
	job->addr_flags = (unsigned)sqlite3_column_int(stmt, first + 2);
	vlen = (size_t)sqlite3_column_bytes(stmt, first + 3);
	job->vars = (const void *)(uintptr_t)arena->len;
	job->vars_len = vlen;
	if (vlen > 0)
		buf_append(arena, sqlite3_column_blob(stmt, first + 3), vlen);
	/* a claim of a range counts the attempt only with the result */
	job->attempts = sqlite3_column_int(stmt, first + 4) + !counted;
	job->first_attempt_at = sqlite3_column_int64(stmt, first + 5);
	if (job->first_attempt_at == 0)
		job->first_attempt_at = now;
	job->doubts = sqlite3_column_int(stmt, first + 6);
	job->claim_id = 0;
	return 0;
}

/*
 * store_claim_deferred - lease up to max due deferred jobs one by one,
 * appended to batch; -1 on error
 */
static int store_claim_deferred(struct store *st, int64_t campaign_id,
				const char *owner, int64_t now,
				int64_t lease_ms, size_t max,
				struct store_batch *batch, struct buf *arena,
				const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_CLAIM, error_r);
	size_t before = batch->count;
	int rc;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, campaign_id);
	sqlite3_bind_text(stmt, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, now + lease_ms);
	sqlite3_bind_int64(stmt, 4, now);
	sqlite3_bind_int64(stmt, 5, (int64_t)max);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW &&
	       batch->count - before < max) {
		if (store_claim_job(stmt, 2, sqlite3_column_int64(stmt, 0),
				    sqlite3_column_int64(stmt, 1), now, true,
				    batch, arena) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(stmt);
	sqlite3_bind_null(stmt, 2);
	if (rc != SQLITE_DONE)	/* LIMIT makes a row past max impossible */
		return store_fail_step(st, rc, error_r, "claiming jobs");
	store_count_move(st, campaign_id, JOB_DEFERRED, JOB_SENDING,
			 (int64_t)(batch->count - before));
	return 0;
}

/*
 * store_claim_range - the queued jobs of campaign with ids in
 * (after, upto], at most max, lowest first, appended to batch (their
 * claim_id is the caller's to set); the number, or -1 on error.  fresh:
 * the range lies past the claim cursor, where no job has a result in
 * the journal.
 */
static long store_claim_range(struct store *st, int64_t campaign_id,
			      bool fresh, int64_t after, int64_t upto,
			      size_t max, int64_t now,
			      struct store_batch *batch, struct buf *arena,
			      const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, fresh ? STMT_CLAIM_FRESH :
					STMT_CLAIM_RELOAD, error_r);
	size_t before = batch->count;
	int rc;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, campaign_id);
	sqlite3_bind_int64(stmt, 2, after);
	sqlite3_bind_int64(stmt, 3, upto);
	sqlite3_bind_int64(stmt, 4, (int64_t)max);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW &&
	       batch->count - before < max) {
		if (store_claim_job(stmt, 1, sqlite3_column_int64(stmt, 0),
				    campaign_id, now, false, batch,
				    arena) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "claiming jobs");
	return (long)(batch->count - before);
}

/* store_step_done - run a statement that returns no row, and reset it */
static int store_step_done(struct store *st, sqlite3_stmt *stmt,
			   const char *doing, const char **error_r)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, doing);
	return 0;
}

/* --- claims this connection knows (struct store_known_claim) ---------- */

static struct store_known_claim *store_known_find(struct store *st,
						  int64_t id)
{
	for (size_t i = 0; i < st->nknown; i++)
		if (st->known[i].id == id)
			return &st->known[i];
	return NULL;
}

/* store_known_forget - claim id is no longer known (0: none is) */
static void store_known_forget(struct store *st, int64_t id)
{
	for (size_t i = st->nknown; i > 0; i--) {
		if (id != 0 && st->known[i - 1].id != id)
			continue;
		free(st->known[i - 1].had_result);
		st->known[i - 1] = st->known[--st->nknown];
	}
}

/*
 * store_known_check - in a transaction just begun: if another connection
 * has committed since this one last looked, what this one knew of its
 * claims may be wrong (a late result from another sender, a reclaim):
 * it is forgotten.  -1 on error.
 */
static int store_known_check(struct store *st, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_DATA_VERSION, error_r);
	int64_t version;
	int rc;

	if (stmt == NULL)
		return -1;
	rc = sqlite3_step(stmt);
	version = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "reading the store");
	if (version != st->data_version)
		store_known_forget(st, 0);
	st->data_version = version;
	return 0;
}

/*
 * store_known_job - whether job, of claim id, is one this connection
 * knows to be queued with no result yet; either way it is one with a
 * result from now on
 */
static bool store_known_job(struct store *st, int64_t id, int64_t job)
{
	struct store_known_claim *k = store_known_find(st, id);
	uint64_t i, bit;
	bool fresh;

	if (k == NULL || job < k->first_job || job > k->last_job)
		return false;
	i = (uint64_t)(job - k->first_job);
	bit = UINT64_C(1) << (i % 64);
	fresh = (k->had_result[i / 64] & bit) == 0;
	k->had_result[i / 64] |= bit;
	k->results += fresh;
	return fresh;
}

/* store_made_add - the open claim made (or took) claim id for this range */
static void store_made_add(struct store *st, int64_t id, int64_t first,
			   int64_t last)
{
	if (st->nmade == st->made_cap) {
		st->made_cap = st->made_cap ? 2 * st->made_cap : 4;
		st->made = xrealloc(st->made, st->made_cap * sizeof(*st->made));
	}
	st->made[st->nmade++] = (struct store_known_claim){
		.id = id, .first_job = first, .last_job = last,
	};
}

/*
 * store_known_adopt - after the claim's commit: each claim it made whose
 * whole range is in batch (consecutive ids, none suppressed) is known
 */
static void store_known_adopt(struct store *st,
			      const struct store_batch *batch)
{
	for (size_t m = 0; m < st->nmade; m++) {
		const struct store_known_claim *c = &st->made[m];
		int64_t kept = 0;
		size_t words;

		for (size_t i = 0; i < batch->count; i++)
			kept += batch->jobs[i].claim_id == c->id;
		if (kept != c->last_job - c->first_job + 1)
			continue;
		store_known_forget(st, c->id);
		if (st->nknown == st->known_cap) {
			st->known_cap = st->known_cap ? 2 * st->known_cap : 8;
			st->known = xrealloc(st->known, st->known_cap *
					     sizeof(*st->known));
		}
		words = (size_t)(kept + 63) / 64;
		st->known[st->nknown] = *c;
		st->known[st->nknown].had_result =
			xcalloc(words, sizeof(uint64_t));
		st->nknown++;
	}
	st->nmade = 0;
}

/* store_claim_delete - the claims row id goes (no job of it is queued) */
static int store_claim_delete(struct store *st, int64_t id,
			      const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_CLAIM_DELETE, error_r);

	if (stmt == NULL)
		return -1;
	store_known_forget(st, id);
	sqlite3_bind_int64(stmt, 1, id);
	return store_step_done(st, stmt, "claiming jobs", error_r);
}

/* store_claim_touch - the open transaction recorded a job of claim id */
static void store_claim_touch(struct store *st, int64_t id)
{
	for (size_t i = st->ntouched; i > 0; i--)
		if (st->touched[i - 1] == id)
			return;
	if (st->ntouched == st->touched_cap) {
		st->touched_cap = st->touched_cap ? 2 * st->touched_cap : 8;
		st->touched = xrealloc(st->touched,
				       st->touched_cap * sizeof(*st->touched));
	}
	st->touched[st->ntouched++] = id;
}

/*
 * store_claim_put - a claims row: a new one (id 0; its id is returned)
 * or id's range and owner changed (owner NULL: free); -1 on error
 */
static int64_t store_claim_put(struct store *st, int64_t id,
			       int64_t campaign, int64_t first, int64_t last,
			       const char *owner, int64_t claimed_at,
			       int64_t expires_at, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, id ? STMT_CLAIM_TAKE :
					STMT_CLAIM_INSERT, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	if (id) {
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 3, claimed_at);
		sqlite3_bind_int64(stmt, 5, first);
		sqlite3_bind_int64(stmt, 6, last);
	} else {
		sqlite3_bind_int64(stmt, 1, campaign);
		sqlite3_bind_int64(stmt, 2, first);
		sqlite3_bind_int64(stmt, 3, last);
		sqlite3_bind_int64(stmt, 5, claimed_at);
	}
	if (owner != NULL) {
		sqlite3_bind_text(stmt, id ? 2 : 4, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, id ? 4 : 6, expires_at);
	} else {
		sqlite3_bind_null(stmt, id ? 2 : 4);
		sqlite3_bind_null(stmt, id ? 4 : 6);
	}
	rc = store_step_done(st, stmt, "writing a claim", error_r);
	sqlite3_clear_bindings(stmt);
	if (rc < 0)
		return -1;
	return id ? id : sqlite3_last_insert_rowid(st->db);
}

/*
 * store_claims_done - each claim the open transaction touched (recorded
 * results of, or made and then filtered) that has no queued job left
 * goes: a known claim when every job of it had a result through this
 * connection (its bits), any other when SQL finds none queued.  A walk of jobs_fresh down from the claim's highest id, past the
 * jobs with a result in the journal (usually none: results come in
 * about the order of ids), per claim, a few per transaction.
 */
static int store_claims_done(struct store *st, const char **error_r)
{
	sqlite3_stmt *left = store_stmt(st, STMT_CLAIM_LEFT, error_r);

	if (left == NULL)
		return -1;
	for (size_t i = 0; i < st->ntouched; i++) {
		const struct store_known_claim *k =
			store_known_find(st, st->touched[i]);
		int rc;

		/*
		 * Known: a job with no result through this connection is
		 * still queued, and the walk down the range (through every
		 * job with a result, for a claim nearly done: 2,300
		 * instructions a message, callgrind) is not needed.
		 */
		if (k != NULL) {
			if (k->results == k->last_job - k->first_job + 1 &&
			    store_claim_delete(st, k->id, error_r) < 0)
				return -1;
			continue;
		}
		sqlite3_bind_int64(left, 1, st->touched[i]);
		rc = sqlite3_step(left);
		sqlite3_reset(left);
		if (rc == SQLITE_DONE) {
			if (store_claim_delete(st, st->touched[i],
					       error_r) < 0)
				return -1;
		} else if (rc != SQLITE_ROW) {
			return store_fail_step(st, rc, error_r,
					       "recording results");
		}
	}
	st->ntouched = 0;
	return 0;
}

/*
 * store_claim_free_take - take the oldest free claim of the campaign (one
 * its owner gave back) with its queued jobs, at most max of them; the
 * rest of its range stays free.  1 if one was taken (batch may have
 * gained no job: then it is gone), 0 if none is free, -1 on error.
 */
static int store_claim_free_take(struct store *st, int64_t campaign_id,
				 const char *owner, int64_t now,
				 int64_t lease_ms, size_t max,
				 struct store_batch *batch, struct buf *arena,
				 const char **error_r)
{
	sqlite3_stmt *get = store_stmt(st, STMT_CLAIM_FREE_GET, error_r);
	int64_t id = 0, first = 0, last = 0, took;
	size_t before = batch->count;
	long n;
	int rc;

	if (get == NULL)
		return -1;
	sqlite3_bind_int64(get, 1, campaign_id);
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(get, 0);
		first = sqlite3_column_int64(get, 1);
		last = sqlite3_column_int64(get, 2);
	}
	sqlite3_reset(get);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "claiming jobs");
	n = store_claim_range(st, campaign_id, false, first - 1, last, max,
			      now, batch, arena, error_r);
	if (n < 0)
		return -1;
	if (n == 0)
		return store_claim_delete(st, id, error_r) < 0 ? -1 : 1;
	took = batch->jobs[batch->count - 1].id;
	/* the rest stays free, as a claim of its own */
	if (took < last &&
	    store_claim_put(st, 0, campaign_id, took + 1, last, NULL, now, 0,
			    error_r) < 0)
		return -1;
	if (store_claim_put(st, id, campaign_id, batch->jobs[before].id, took,
			    owner, now, now + lease_ms, error_r) < 0)
		return -1;
	for (size_t i = before; i < batch->count; i++)
		batch->jobs[i].claim_id = id;
	store_claim_touch(st, id);
	store_made_add(st, id, batch->jobs[before].id, took);
	return 1;
}

/*
 * store_claim_fresh - claim the queued jobs past the campaign's highest
 * claimed id, at most max, as one new claims row; -1 on error
 */
static int store_claim_fresh(struct store *st, int64_t campaign_id,
			     const char *owner, int64_t now,
			     int64_t lease_ms, size_t max,
			     struct store_batch *batch, struct buf *arena,
			     const char **error_r)
{
	sqlite3_stmt *cur = store_stmt(st, STMT_CLAIM_CURSOR, error_r);
	size_t before = batch->count;
	int64_t after = 0, id;
	long n;
	int rc;

	if (cur == NULL)
		return -1;
	sqlite3_bind_int64(cur, 1, campaign_id);
	rc = sqlite3_step(cur);
	if (rc == SQLITE_ROW)
		after = sqlite3_column_int64(cur, 0);	/* NULL: 0 */
	sqlite3_reset(cur);
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "claiming jobs");
	n = store_claim_range(st, campaign_id, true, after, INT64_MAX, max,
			      now, batch, arena, error_r);
	if (n <= 0)
		return (int)n;
	id = store_claim_put(st, 0, campaign_id, batch->jobs[before].id,
			     batch->jobs[batch->count - 1].id, owner, now,
			     now + lease_ms, error_r);
	if (id < 0)
		return -1;
	for (size_t i = before; i < batch->count; i++)
		batch->jobs[i].claim_id = id;
	store_claim_touch(st, id);
	store_made_add(st, id, batch->jobs[before].id,
		       batch->jobs[batch->count - 1].id);
	return 0;
}

int store_claim(struct store *st, int64_t campaign_id, const char *owner,
		int64_t now, int64_t lease_ms, size_t max,
		struct store_batch *batch, const char **error_r)
{
	struct buf *arena;
	int64_t suppressed, before = st->claim_suppressed;
	int64_t ranged = 0;
	int rc;

	batch->count = 0;
	batch->more = false;
	if (batch->arena == NULL)
		batch->arena = xcalloc(1, sizeof(struct buf));
	arena = batch->arena;
	buf_reset(arena);
	if (batch->cap < max) {
		batch->jobs = xrealloc(batch->jobs, max * sizeof(*batch->jobs));
		batch->cap = max;
	}
	st->nmade = 0;
	if (store_begin(st, error_r) < 0)
		return -1;
	if (store_known_check(st, error_r) < 0)
		goto out_rollback;
again:
	if (store_claim_deferred(st, campaign_id, owner, now, lease_ms, max,
				 batch, arena, error_r) < 0)
		goto out_rollback;
	/* queued jobs: what claims gave back first, then new ranges */
	while (batch->count < max) {
		rc = store_claim_free_take(st, campaign_id, owner, now,
					   lease_ms, max - batch->count,
					   batch, arena, error_r);
		if (rc < 0)
			goto out_rollback;
		if (rc == 0)
			break;
	}
	if (batch->count < max &&
	    store_claim_fresh(st, campaign_id, owner, now, lease_ms,
			      max - batch->count, batch, arena, error_r) < 0)
		goto out_rollback;
	suppressed = st->claim_suppressed;
	/* a claim the filter left with no job goes (store_claims_done) */
	if (store_claim_filter(st, campaign_id, batch, arena, now,
			       error_r) < 0 ||
	    store_claims_done(st, error_r) < 0)
		goto out_rollback;
	/*
	 * Every job due was suppressed: others may be due behind them.  Go
	 * on, but not for ever in one transaction: a list sorted by domain
	 * with its domain suppressed during the send would hold the write
	 * lock (and every other writer) for seconds.
	 */
	if (batch->count == 0 && st->claim_suppressed > suppressed) {
		if (st->claim_suppressed - before <
		    (int64_t)STORE_CLAIM_SUPPRESS_MAX) {
			buf_reset(arena);
			st->nmade = 0;	/* those claims went: nothing kept */
			goto again;
		}
		batch->more = true;
	}
	for (size_t i = 0; i < batch->count; i++)
		ranged += batch->jobs[i].claim_id != 0;
	store_count_move(st, campaign_id, JOB_QUEUED, JOB_SENDING, ranged);
	if (store_commit(st, error_r) < 0)
		goto out_rollback;
	store_known_adopt(st, batch);
	for (size_t i = 0; i < batch->count; i++) {
		struct store_job *job = &batch->jobs[i];

		job->address = arena->data + (uintptr_t)job->address;
		job->vars = arena->data + (uintptr_t)job->vars;
	}
	return 0;

out_rollback:
	store_rollback(st);
	batch->count = 0;
	batch->more = false;
	st->claim_suppressed = before;	/* none of it happened */
	st->nmade = 0;
	return -1;
}

/*
 * store_record_bounce - a permanent failure the bounce rules classified,
 * recorded as a bounce of kind "reply" (once per job) in the record's
 * transaction, so a hard one is suppressed for later campaigns
 */
static int store_record_bounce(struct store *st,
			       const struct store_result *r,
			       const char **error_r)
{
	struct store_job_ref ref;
	struct store_bounce b = { 0 };
	char key[40];
	int rc;

	rc = store_job_ref(st, r->job_id, &ref, error_r);
	if (rc <= 0)
		return rc;
	snprintf(key, sizeof(key), "reply:%lld", (long long)r->job_id);
	b.msg_key = key;
	b.kind = "reply";
	b.address = ref.address;
	b.campaign_id = ref.campaign_id;
	b.job_id = r->job_id;
	b.matched_by = "reply";
	b.category = r->bounce_category;
	b.hard = r->bounce_hard;
	b.sender_side = r->bounce_sender_side;
	b.code = r->code;
	b.enhanced = r->enhanced;
	b.text = r->reply;
	b.at = r->at;
	return store_bounce_add_locked(st, &b, &st->policy, NULL, error_r) < 0 ?
	       -1 : 0;
}

/* store_bind_result - what STORE_RECORD_SET sets, from a result */
static void store_bind_result(sqlite3_stmt *stmt,
			      const struct store_result *r)
{
	sqlite3_bind_int64(stmt, 1, r->job_id);
	sqlite3_bind_int(stmt, 2, (int)r->state);
	if (r->code > 0)
		sqlite3_bind_int(stmt, 3, r->code);
	else
		sqlite3_bind_null(stmt, 3);
	store_bind_text_or_null(stmt, 4, r->enhanced);
	store_bind_text_or_null(stmt, 5, r->reply);
	store_bind_text_or_null(stmt, 6, r->queue_id);
	sqlite3_bind_int64(stmt, 7, r->state == JOB_DEFERRED ?
			   r->next_attempt_at : r->at);
	sqlite3_bind_int64(stmt, 8, r->at);
	sqlite3_bind_int(stmt, 10, r->in_doubt ? 1 : 0);
}

/*
 * store_job_now - the campaign and state of job id, its result in the
 * journal applied (*journaled_r, if not NULL, says whether it has one):
 * 1, or 0 if there is no such job, -1 on error
 */
static int store_job_now(struct store *st, int64_t id, int64_t *campaign_r,
			 int *state_r, bool *journaled_r, const char **error_r)
{
	sqlite3_stmt *get = store_stmt(st, STMT_RECORD_STATE, error_r);
	int rc;

	if (get == NULL)
		return -1;
	sqlite3_bind_int64(get, 1, id);
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		*campaign_r = sqlite3_column_int64(get, 0);
		*state_r = sqlite3_column_int(get, 1);
		if (journaled_r != NULL)
			*journaled_r = sqlite3_column_int(get, 2) != 0;
	}
	sqlite3_reset(get);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "recording results");
	return 1;
}

/*
 * store_job_fold - job id's result in the journal is written into its
 * row and leaves the journal, so that a statement that changes the row
 * (a late result) starts from the job's real state.  The counts do not
 * move: they counted the journal's state already.
 */
static int store_job_fold(struct store *st, int64_t id, const char **error_r)
{
	sqlite3_stmt *fold = store_stmt(st, STMT_JOB_FOLD, error_r);
	sqlite3_stmt *drop = store_stmt(st, STMT_JOB_UNJOURNAL, error_r);

	if (fold == NULL || drop == NULL)
		return -1;
	sqlite3_bind_int64(fold, 1, id);
	sqlite3_bind_int64(drop, 1, id);
	if (store_step_done(st, fold, "recording results", error_r) < 0)
		return -1;
	return store_step_done(st, drop, "recording results", error_r);
}

/*
 * store_claim_holds - whether a claim with an owner holds job (queued) of
 * campaign: 1 if so, 0 if not, -1 on error
 */
static int store_claim_holds(struct store *st, int64_t campaign,
			     int64_t job, int64_t *claimed_at_r,
			     const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_CLAIM_HOLDS, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, campaign);
	sqlite3_bind_int64(stmt, 2, job);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*claimed_at_r = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "recording results");
	return rc == SQLITE_ROW;
}

/*
 * store_record_late - a "sent" result for a job this owner no longer
 * holds (its lease expired and it was reclaimed, say): the delivery
 * happened, so it is recorded from whatever state the job is in now,
 * unless it is sent already.  1 if recorded, 0 if not, -1 on error.
 */
static int store_record_late(struct store *st, const struct store_result *r,
			     const char **error_r)
{
	sqlite3_stmt *late = store_stmt(st, STMT_RECORD_LATE, error_r);
	int64_t campaign = 0;
	int rc, state = 0;
	bool journaled = false;
	enum job_state counted;

	if (late == NULL)
		return -1;
	rc = store_job_now(st, r->job_id, &campaign, &state, &journaled,
			   error_r);
	if (rc <= 0 || state == JOB_SENT)
		return rc < 0 ? -1 : 0;
	/* failed, in the journal: the row says so first, as it did before */
	if (journaled && store_job_fold(st, r->job_id, error_r) < 0)
		return -1;
	/* it may be queued in a claim this connection knows: known no more */
	store_known_forget(st, 0);
	counted = (enum job_state)state;
	/*
	 * Queued in a claim some owner holds: "sending" in the counts, and
	 * its attempt (made at the claim's time) is counted with the result
	 */
	if (state == JOB_QUEUED) {
		int64_t claimed_at = 0;

		rc = store_claim_holds(st, campaign, r->job_id, &claimed_at,
				       error_r);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			counted = JOB_SENDING;
			late = store_stmt(st, STMT_RECORD_FRESH, error_r);
			if (late == NULL)
				return -1;
			sqlite3_bind_int64(late, 11, campaign);
			sqlite3_bind_int64(late, 12, claimed_at);
		}
	}
	store_bind_result(late, r);
	if (counted != JOB_SENDING || state != JOB_QUEUED)
		sqlite3_bind_int(late, 9, state);
	rc = sqlite3_step(late);
	sqlite3_reset(late);
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "recording results");
	if (sqlite3_changes(st->db) == 0)
		return 0;
	store_count_move(st, campaign, counted, JOB_SENT, 1);
	return 1;
}

/*
 * store_claim_check - whether claim id is owner's and holds job: 1 if
 * so (st->checked then has its campaign and time), 0 if not, -1 on
 * error.  Asked of the table once per claim and transaction.
 */
static int store_claim_check(struct store *st, const char *owner,
			     int64_t id, int64_t job, const char **error_r)
{
	struct store_checked_claim *c = &st->checked;

	if (c->id != id) {
		sqlite3_stmt *stmt = store_stmt(st, STMT_CLAIM_MINE, error_r);
		int rc;

		if (stmt == NULL)
			return -1;
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_text(stmt, 2, owner, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		c->mine = rc == SQLITE_ROW;
		if (c->mine) {
			c->campaign = sqlite3_column_int64(stmt, 0);
			c->first_job = sqlite3_column_int64(stmt, 1);
			c->last_job = sqlite3_column_int64(stmt, 2);
			c->claimed_at = sqlite3_column_int64(stmt, 3);
			c->expires_at = sqlite3_column_int64(stmt, 4);
		}
		sqlite3_reset(stmt);
		sqlite3_bind_null(stmt, 2);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return store_fail_step(st, rc, error_r,
					       "recording results");
		c->id = id;
	}
	return c->mine && job >= c->first_job && job <= c->last_job;
}

static int store_claim_of_job(struct store *st, const char *owner,
			      int64_t job, int64_t *id_r,
			      const char **error_r);

/*
 * store_claim_give_back - job, queued in the owner's claim st->checked,
 * is handed back untried: its range is cut out of the claim as a free
 * claim of its own, for the next claim to take at once
 */
static int store_claim_give_back(struct store *st, const char *owner,
				 int64_t job, const char **error_r)
{
	const struct store_checked_claim c = st->checked;
	int64_t expires_at = c.expires_at;

	sqlite3_stmt *prev = store_stmt(st, STMT_CLAIM_FREE_BEFORE, error_r);
	sqlite3_stmt *grow = store_stmt(st, STMT_CLAIM_FREE_GROW, error_r);
	int64_t free_id = 0;
	int rc;

	if (prev == NULL || grow == NULL)
		return -1;
	st->checked.id = 0;	/* its range changes */
	store_known_forget(st, c.id);
	if (c.first_job == job && c.last_job == job)
		return store_claim_put(st, c.id, c.campaign, job, job, NULL,
				       c.claimed_at, 0, error_r) < 0 ? -1 : 0;
	/*
	 * A run that stops gives back many jobs in a row: each joins the
	 * free claim that ends just before it, so the next claim takes them
	 * as one range rather than one claim each.
	 */
	sqlite3_bind_int64(prev, 1, c.campaign);
	sqlite3_bind_int64(prev, 2, job - 1);
	rc = sqlite3_step(prev);
	if (rc == SQLITE_ROW)
		free_id = sqlite3_column_int64(prev, 0);
	sqlite3_reset(prev);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "recording results");
	if (free_id != 0) {
		sqlite3_bind_int64(grow, 1, free_id);
		sqlite3_bind_int64(grow, 2, job);
		if (store_step_done(st, grow, "recording results",
				    error_r) < 0)
			return -1;
	} else if (store_claim_put(st, 0, c.campaign, job, job, NULL,
				   c.claimed_at, 0, error_r) < 0) {
		return -1;
	}
	/*
	 * The claim keeps its id for the part before the job, if any.  Both
	 * parts are looked at before the commit: one with no queued job
	 * left (its others had results) goes, as any claim does.
	 */
	if (c.first_job < job &&
	    store_claim_put(st, c.id, c.campaign, c.first_job, job - 1,
			    owner, c.claimed_at, expires_at, error_r) < 0)
		return -1;
	store_claim_touch(st, c.id);
	if (job < c.last_job) {
		int64_t id = store_claim_put(st, c.first_job < job ? 0 : c.id,
					     c.campaign, job + 1, c.last_job,
					     owner, c.claimed_at, expires_at,
					     error_r);

		if (id < 0)
			return -1;
		store_claim_touch(st, id);
	}
	return 0;
}

/*
 * store_record_in_claim - a result for job, queued in the owner's claim
 * st->checked: 1 if recorded, 0 if the job is not queued in it
 */
static int store_record_in_claim(struct store *st, const char *owner,
				 const struct store_result *r,
				 const char **error_r)
{
	const struct store_checked_claim c = st->checked;
	sqlite3_stmt *stmt;
	int rc;

	/* final results are appended; a deferred job must reach jobs_retry */
	if (r->state == JOB_QUEUED)
		stmt = store_stmt(st, STMT_CLAIM_QUEUED, error_r);
	else if (!store_known_job(st, c.id, r->job_id))
		stmt = store_stmt(st, r->state == JOB_DEFERRED ?
				  STMT_RECORD_FRESH : STMT_RECORD_APPEND,
				  error_r);
	else
		stmt = store_stmt(st, r->state == JOB_DEFERRED ?
				  STMT_RECORD_FRESH : STMT_RECORD_APPEND_KNOWN,
				  error_r);
	if (stmt == NULL)
		return -1;
	if (r->state == JOB_QUEUED) {
		/* handed back untried: queued again, free to claim */
		int64_t queued = 0;

		sqlite3_bind_int64(stmt, 1, c.campaign);
		sqlite3_bind_int64(stmt, 2, r->job_id);
		sqlite3_bind_int64(stmt, 3, r->job_id);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW)
			queued = sqlite3_column_int64(stmt, 0);
		sqlite3_reset(stmt);
		if (rc != SQLITE_ROW)
			return store_fail_step(st, rc, error_r,
					       "recording results");
		if (queued == 0)
			return 0;
		store_count_move(st, c.campaign, JOB_SENDING, JOB_QUEUED, 1);
		return store_claim_give_back(st, owner, r->job_id,
					     error_r) < 0 ? -1 : 1;
	}
	store_bind_result(stmt, r);
	sqlite3_bind_int64(stmt, 11, c.campaign);
	sqlite3_bind_int64(stmt, 12, c.claimed_at);
	if (store_step_done(st, stmt, "recording results", error_r) < 0)
		return -1;
	if (sqlite3_changes(st->db) == 0)
		return 0;
	store_count_move(st, c.campaign, JOB_SENDING, (enum job_state)r->state,
			 1);
	store_claim_touch(st, c.id);
	return 1;
}

/*
 * store_record_ranged - a result for a job of a claim's range (see
 * store_record_one); claim is the one the result named, or 0
 */
static int store_record_ranged(struct store *st, const char *owner,
			       const struct store_result *r, int64_t claim,
			       const char **error_r)
{
	for (int looked = 0;; looked++) {
		int64_t own = 0;
		int rc = claim ? store_claim_check(st, owner, claim, r->job_id,
						   error_r) : 0;

		if (rc > 0)
			rc = store_record_in_claim(st, owner, r, error_r);
		if (rc != 0)
			return rc;
		/*
		 * Not that claim's job, or not queued in it: the job's own
		 * claim, if it is another (a give-back cut the range, or the
		 * claim named is of a campaign whose ids interleave).
		 */
		if (looked)
			return 0;
		rc = store_claim_of_job(st, owner, r->job_id, &own, error_r);
		if (rc <= 0 || own == claim)
			return rc < 0 ? -1 : 0;
		claim = own;
	}
}

/*
 * store_claim_of_job - the claim of owner whose range holds job, for a
 * result that did not say it: 1 (*id_r set), 0 if none, -1 on error
 */
static int store_claim_of_job(struct store *st, const char *owner,
			      int64_t job, int64_t *id_r,
			      const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_CLAIM_OF_JOB, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, job);
	sqlite3_bind_text(stmt, 2, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	sqlite3_bind_null(stmt, 2);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "recording results");
	return 1;
}

/*
 * store_record_one - one result for a job owner holds: 1 if recorded,
 * 0 if the job is not (or no longer) owner's, -1 on error
 */
static int store_record_one(struct store *st, const char *owner,
			    const struct store_result *r,
			    const char **error_r)
{
	sqlite3_stmt *stmt;
	bool give_back = r->state == JOB_QUEUED;
	int64_t campaign = r->campaign_id;
	int state = r->state, rc, rows = 0, now_state;
	bool hinted = !give_back && campaign != 0;

	if (r->claim_id != 0)
		return store_record_ranged(st, owner, r, r->claim_id, error_r);

	/*
	 * RETURNING would give the campaign too, but it costs an ephemeral
	 * table (a page allocated and cleared) per statement: a tenth of a
	 * 4 KB message.  The claim gave the campaign to the caller; the
	 * statement checks it, and when nothing matched the job's own is
	 * read and the statement run again (a stale result, or a wrong
	 * campaign: never counted against another campaign).
	 */
again:
	if (!give_back && campaign == 0) {
		rc = store_job_now(st, r->job_id, &campaign, &now_state,
				   NULL, error_r);
		if (rc <= 0)
			return rc;
	}
	stmt = store_stmt(st, give_back ? STMT_RECORD_GIVE_BACK :
			  STMT_RECORD_DONE, error_r);
	if (stmt == NULL)
		return -1;
	if (give_back) {
		sqlite3_bind_int64(stmt, 1, r->job_id);
		sqlite3_bind_text(stmt, 2, owner, -1, SQLITE_STATIC);
	} else {
		store_bind_result(stmt, r);
		sqlite3_bind_text(stmt, 9, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 11, campaign);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		/* a give-back: queued, or deferred if tried before */
		campaign = sqlite3_column_int64(stmt, 0);
		state = sqlite3_column_int(stmt, 1);
		rows++;
	}
	sqlite3_reset(stmt);
	sqlite3_bind_null(stmt, give_back ? 2 : 9);	/* owner: STATIC */
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "recording results");
	if (!give_back)
		rows = sqlite3_changes(st->db);
	if (rows == 0 && hinted) {
		/* the campaign named is not the job's: again with its own */
		hinted = false;
		rc = store_job_now(st, r->job_id, &campaign, &now_state,
				   NULL, error_r);
		if (rc <= 0)
			return rc;
		if (campaign != r->campaign_id)
			goto again;
	}
	if (rows == 0) {
		/* not leased by itself: a claim's, the result not saying */
		int64_t claim = 0;

		rc = store_claim_of_job(st, owner, r->job_id, &claim, error_r);
		if (rc <= 0)
			return rc;
		return store_record_ranged(st, owner, r, claim, error_r);
	}
	store_count_move(st, campaign, JOB_SENDING, (enum job_state)state, 1);
	return 1;
}

int store_record(struct store *st, const char *owner,
		 const struct store_result *results, size_t n,
		 size_t *stale_r, const char **error_r)
{
	size_t stale = 0;

	if (store_begin(st, error_r) < 0)
		return -1;
	if (store_known_check(st, error_r) < 0)
		goto out_rollback;
	for (size_t i = 0; i < n; i++) {
		const struct store_result *r = &results[i];
		int rc;

		if (r->state != JOB_QUEUED && r->state != JOB_SENT &&
		    r->state != JOB_DEFERRED && r->state != JOB_FAILED) {
			store_fail(st, error_r, "job %lld: a result cannot "
				   "set state '%s'", (long long)r->job_id,
				   job_state_name(r->state));
			goto out_rollback;
		}
		rc = store_record_one(st, owner, r, error_r);
		if (rc == 0 && r->state == JOB_SENT)
			rc = store_record_late(st, r, error_r);
		if (rc < 0)
			goto out_rollback;
		if (rc == 0) {
			stale++;
			continue;
		}
		if (r->state == JOB_FAILED && r->bounce_category != NULL &&
		    store_record_bounce(st, r, error_r) < 0)
			goto out_rollback;
	}
	if (store_claims_done(st, error_r) < 0 ||
	    store_commit(st, error_r) < 0)
		goto out_rollback;
	if (stale_r != NULL)
		*stale_r = stale;
	return 0;

out_rollback:
	store_rollback(st);
	return -1;
}

/* --- leases ------------------------------------------------------------ */

/* A claims row, as store_claims_read reads it. */
struct store_claim_row {
	int64_t id;
	int64_t campaign;
	int64_t first_job;
	int64_t last_job;
	int64_t claimed_at;
	int64_t expires_at;
	size_t owner;		/* offset of the owner's name in names */
};

/*
 * store_claims_read - the claims stmt (STMT_CLAIMS_OF_OWNER or _HELD,
 * bound) selects, read whole before any is changed, into *rows_r (to
 * free), owners' names into names; the number, or -1 on error
 */
static long store_claims_read(struct store *st, sqlite3_stmt *stmt,
			      struct store_claim_row **rows_r,
			      struct buf *names, const char **error_r)
{
	struct store_claim_row *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *owner = store_column_text(stmt, 6);

		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			rows = xrealloc(rows, cap * sizeof(*rows));
		}
		rows[n].id = sqlite3_column_int64(stmt, 0);
		rows[n].campaign = sqlite3_column_int64(stmt, 1);
		rows[n].first_job = sqlite3_column_int64(stmt, 2);
		rows[n].last_job = sqlite3_column_int64(stmt, 3);
		rows[n].claimed_at = sqlite3_column_int64(stmt, 4);
		rows[n].expires_at = sqlite3_column_int64(stmt, 5);
		rows[n].owner = names->len;
		buf_append(names, owner ? owner : "",
			   (owner ? strlen(owner) : 0) + 1);
		n++;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		free(rows);
		return store_fail_step(st, rc, error_r, "reading claims");
	}
	*rows_r = rows;
	return (long)n;
}

/*
 * store_release_claims - store_release's part for owner's claims of
 * ranges, in its transaction: the kept jobs (the JSON list in
 * st->scratch, when keep is set) become leased one by one, and each
 * claim with queued jobs left becomes free, the others go.  *n_r grows
 * by the jobs given back.
 */
static int store_release_claims(struct store *st, const char *owner,
				bool keep, int64_t *n_r,
				const char **error_r)
{
	sqlite3_stmt *mine = store_stmt(st, STMT_CLAIMS_OF_OWNER, error_r);
	sqlite3_stmt *hold = store_stmt(st, STMT_RELEASE_KEEP, error_r);
	sqlite3_stmt *queued = store_stmt(st, STMT_CLAIM_QUEUED, error_r);
	sqlite3_stmt *free_it = store_stmt(st, STMT_CLAIM_FREE, error_r);
	struct store_claim_row *rows = NULL;
	struct buf names = BUF_INIT;
	long n;
	int ret = 0;

	if (mine == NULL || hold == NULL || queued == NULL || free_it == NULL)
		return -1;
	sqlite3_bind_text(mine, 1, owner, -1, SQLITE_STATIC);
	n = store_claims_read(st, mine, &rows, &names, error_r);
	sqlite3_bind_null(mine, 1);
	if (n < 0) {
		buf_free(&names);
		return -1;
	}
	for (long i = 0; i < n && ret == 0; i++) {
		const struct store_claim_row *c = &rows[i];
		int64_t left = 0;
		int rc;

		if (keep) {
			sqlite3_bind_int64(hold, 1, c->campaign);
			sqlite3_bind_int64(hold, 2, c->first_job);
			sqlite3_bind_int64(hold, 3, c->last_job);
			sqlite3_bind_text(hold, 4, owner, -1, SQLITE_STATIC);
			sqlite3_bind_int64(hold, 5, c->expires_at);
			sqlite3_bind_int64(hold, 6, c->claimed_at);
			sqlite3_bind_text(hold, 7, st->scratch.data,
					  (int)st->scratch.len, SQLITE_STATIC);
			ret = store_step_done(st, hold, "releasing leases",
					      error_r);
			sqlite3_clear_bindings(hold);
			if (ret < 0)
				break;
			/* "sending" in the counts before and after */
		}
		sqlite3_bind_int64(queued, 1, c->campaign);
		sqlite3_bind_int64(queued, 2, c->first_job);
		sqlite3_bind_int64(queued, 3, c->last_job);
		rc = sqlite3_step(queued);
		if (rc == SQLITE_ROW)
			left = sqlite3_column_int64(queued, 0);
		sqlite3_reset(queued);
		if (rc != SQLITE_ROW) {
			ret = store_fail_step(st, rc, error_r,
					      "releasing leases");
			break;
		}
		if (left == 0) {
			ret = store_claim_delete(st, c->id, error_r);
			continue;
		}
		sqlite3_bind_int64(free_it, 1, c->id);
		ret = store_step_done(st, free_it, "releasing leases",
				      error_r);
		store_count_move(st, c->campaign, JOB_SENDING, JOB_QUEUED,
				 left);
		*n_r += left;
	}
	free(rows);
	buf_free(&names);
	return ret;
}

int store_release(struct store *st, const char *owner, const int64_t *keep,
		  size_t nkeep, int64_t *n_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_RELEASE, error_r);
	int64_t n;
	int rc;

	if (stmt == NULL || store_begin(st, error_r) < 0)
		return -1;
	store_known_forget(st, 0);	/* its claims go or are freed */
	buf_reset(&st->scratch);
	buf_putc(&st->scratch, '[');
	for (size_t i = 0; i < nkeep; i++)
		buf_printf(&st->scratch, "%s%lld", i ? "," : "",
			   (long long)keep[i]);
	buf_putc(&st->scratch, ']');
	sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, st->scratch.data, (int)st->scratch.len,
			  SQLITE_STATIC);
	n = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		store_count_move(st, sqlite3_column_int64(stmt, 0),
				 JOB_SENDING,
				 (enum job_state)sqlite3_column_int(stmt, 1),
				 1);
		n++;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE) {
		store_fail_step(st, rc, error_r, "releasing leases");
		store_rollback(st);
		return -1;
	}
	/* the keep list stays in st->scratch for the claims' turn */
	if (store_release_claims(st, owner, nkeep > 0, &n, error_r) < 0 ||
	    store_commit(st, error_r) < 0) {
		store_rollback(st);
		return -1;
	}
	if (n_r != NULL)
		*n_r = n;
	return 0;
}

int store_in_doubt(struct store *st, int64_t campaign_id,
		   enum store_doubt_action action, int64_t now, int64_t *n_r,
		   const char **error_r)
{
	static const int stmts[] = {
		[STORE_DOUBT_COUNT] = STMT_DOUBT_COUNT,
		[STORE_DOUBT_RELEASE] = STMT_DOUBT_RELEASE,
		[STORE_DOUBT_DROP] = STMT_DOUBT_DROP,
	};
	sqlite3_stmt *stmt = store_stmt(st, stmts[action], error_r);
	bool drop = action == STORE_DOUBT_DROP;
	int64_t n = 0;
	int rc;

	/* dropping moves jobs between states: counted, so a transaction */
	if (stmt == NULL || (drop && store_begin(st, error_r) < 0))
		return -1;
	sqlite3_bind_int64(stmt, 1, campaign_id);
	sqlite3_bind_int64(stmt, 2, STORE_HELD);
	if (action != STORE_DOUBT_COUNT)
		sqlite3_bind_int64(stmt, 3, now);
	rc = sqlite3_step(stmt);
	if (action == STORE_DOUBT_COUNT && rc == SQLITE_ROW) {
		n = sqlite3_column_int64(stmt, 0);
		rc = SQLITE_DONE;
	} else if (rc == SQLITE_DONE) {
		n = sqlite3_changes(st->db);
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		store_fail_step(st, rc, error_r, "jobs in doubt");
		store_rollback(st);
		return -1;
	}
	if (drop) {
		store_count_move(st, campaign_id, JOB_DEFERRED, JOB_FAILED, n);
		if (store_commit(st, error_r) < 0) {
			store_rollback(st);
			return -1;
		}
	}
	if (n_r != NULL)
		*n_r = n;
	return 0;
}

/* store_reclaim_step - run a reclaim, counting the jobs it made deferred */
static int store_reclaim_step(struct store *st, sqlite3_stmt *stmt,
			      int64_t *n)
{
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		store_count_move(st, sqlite3_column_int64(stmt, 0),
				 JOB_SENDING, JOB_DEFERRED, 1);
		(*n)++;
	}
	return rc;
}

/*
 * store_reclaim_claims - store_reclaim's part for claims of ranges, in
 * its transaction: the queued jobs of every claim whose lease expired or
 * whose owner is gone are in doubt, and the claim goes
 */
static int store_reclaim_claims(struct store *st, int64_t now, bool hold,
				store_owner_alive_fn *alive, void *ctx,
				int64_t *n_r, const char **error_r)
{
	sqlite3_stmt *held = store_stmt(st, STMT_CLAIMS_HELD, error_r);
	sqlite3_stmt *doubt = store_stmt(st, STMT_RECLAIM_RANGE, error_r);
	struct store_claim_row *rows = NULL;
	struct buf names = BUF_INIT, why = BUF_INIT;
	long n;
	int ret = 0;

	if (held == NULL || doubt == NULL)
		return -1;
	n = store_claims_read(st, held, &rows, &names, error_r);
	if (n < 0) {
		buf_free(&names);
		return -1;
	}
	for (long i = 0; i < n && ret == 0; i++) {
		const struct store_claim_row *c = &rows[i];
		const char *owner = names.data + c->owner;
		bool expired = c->expires_at <= now;
		int64_t moved;

		if (!expired && (alive == NULL || alive(ctx, owner)))
			continue;
		buf_reset(&why);
		if (expired)
			buf_printf(&why, "interrupted: the lease of %s "
				   "expired; the message may have been "
				   "delivered", owner);
		else
			buf_printf(&why, "interrupted: sender %s stopped; "
				   "the message may have been delivered",
				   owner);
		sqlite3_bind_int64(doubt, 1, c->campaign);
		sqlite3_bind_int64(doubt, 2, c->first_job);
		sqlite3_bind_int64(doubt, 3, c->last_job);
		sqlite3_bind_int64(doubt, 4, hold ? STORE_HELD : now);
		sqlite3_bind_int64(doubt, 5, STORE_HELD);
		sqlite3_bind_text(doubt, 6, why.data, (int)why.len,
				  SQLITE_STATIC);
		sqlite3_bind_int64(doubt, 7, c->claimed_at);
		ret = store_step_done(st, doubt, "reclaiming leases", error_r);
		sqlite3_clear_bindings(doubt);
		if (ret < 0)
			break;
		moved = sqlite3_changes(st->db);
		store_count_move(st, c->campaign, JOB_SENDING, JOB_DEFERRED,
				 moved);
		*n_r += moved;
		ret = store_claim_delete(st, c->id, error_r);
	}
	free(rows);
	buf_free(&names);
	buf_free(&why);
	return ret;
}

int store_reclaim(struct store *st, int64_t now, bool hold,
		  store_owner_alive_fn *alive, void *ctx, int64_t *n_r,
		  const char **error_r)
{
	sqlite3_stmt *expired = store_stmt(st, STMT_RECLAIM_EXPIRED, error_r);
	sqlite3_stmt *owners = store_stmt(st, STMT_LEASE_OWNERS, error_r);
	sqlite3_stmt *by_owner = store_stmt(st, STMT_RECLAIM_OWNER, error_r);
	int64_t n = 0;
	int rc;

	if (expired == NULL || owners == NULL || by_owner == NULL ||
	    store_begin(st, error_r) < 0)
		return -1;
	store_known_forget(st, 0);	/* claims may go in doubt */
	sqlite3_bind_int64(expired, 1, now);
	sqlite3_bind_int64(expired, 2, hold ? STORE_HELD : now);
	sqlite3_bind_int64(expired, 3, STORE_HELD);
	rc = store_reclaim_step(st, expired, &n);
	sqlite3_reset(expired);
	if (rc != SQLITE_DONE)
		goto out_db_error;

	/* Owners are few (one per sender process), so collect them first. */
	buf_reset(&st->scratch);
	while (alive != NULL && (rc = sqlite3_step(owners)) == SQLITE_ROW) {
		const char *owner = store_column_text(owners, 0);

		if (owner != NULL && !alive(ctx, owner))
			buf_append(&st->scratch, owner, strlen(owner) + 1);
	}
	sqlite3_reset(owners);
	if (alive != NULL && rc != SQLITE_DONE)
		goto out_db_error;
	for (size_t off = 0; off < st->scratch.len;) {
		const char *owner = st->scratch.data + off;

		sqlite3_bind_int64(by_owner, 1, hold ? STORE_HELD : now);
		sqlite3_bind_text(by_owner, 2, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(by_owner, 3, STORE_HELD);
		rc = store_reclaim_step(st, by_owner, &n);
		sqlite3_reset(by_owner);
		if (rc != SQLITE_DONE)
			goto out_db_error;
		off += strlen(owner) + 1;
	}
	sqlite3_clear_bindings(by_owner);
	if (store_reclaim_claims(st, now, hold, alive, ctx, &n, error_r) < 0)
		goto out_rollback;
	if (store_commit(st, error_r) < 0)
		goto out_rollback;
	if (n_r != NULL)
		*n_r = n;
	return 0;

out_db_error:
	store_fail_db(st, error_r, "reclaiming leases");
out_rollback:
	store_rollback(st);
	return -1;
}

/*
 * store_jobs_with_key - the ids of the campaign's jobs whose address has
 * this key, as a JSON array in st->scratch (for json_each in SQL).
 */
static int store_jobs_with_key(struct store *st, int64_t campaign_id,
			       int64_t key, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(st, STMT_KEYS_OF_CAMPAIGN, error_r);
	const char *sep = "";
	int rc;

	if (stmt == NULL)
		return -1;
	buf_reset(&st->scratch);
	buf_putc(&st->scratch, '[');
	sqlite3_bind_int64(stmt, 1, campaign_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int64_t first = sqlite3_column_int64(stmt, 0);
		const unsigned char *keys = sqlite3_column_blob(stmt, 1);
		size_t n = (size_t)sqlite3_column_bytes(stmt, 1) / 8;

		for (size_t i = 0; i < n; i++) {
			if (store_get_key(keys + 8 * i) != key)
				continue;
			buf_printf(&st->scratch, "%s%lld", sep,
				   (long long)(first + (int64_t)i));
			sep = ",";
		}
	}
	sqlite3_reset(stmt);
	buf_putc(&st->scratch, ']');
	if (rc != SQLITE_DONE)
		return store_fail_step(st, rc, error_r, "reading jobs");
	return 0;
}

int store_job_find_address(struct store *st, const char *addr, size_t len,
			   int64_t since_ms, struct store_job_ref *ref,
			   const char **error_r)
{
	sqlite3_stmt *campaigns, *job;
	int64_t found = 0;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT id FROM campaigns"
			       " WHERE created_at >= ?1 ORDER BY id DESC",
			       -1, &campaigns, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "finding an address");
	if (sqlite3_prepare_v2(st->db, "SELECT id FROM jobs"
			       " WHERE id IN (SELECT value FROM json_each(?1))"
			       " AND address = ?2 COLLATE NOCASE"
			       " ORDER BY id LIMIT 1", -1, &job,
			       NULL) != SQLITE_OK) {
		sqlite3_finalize(campaigns);
		return store_fail_db(st, error_r, "finding an address");
	}
	sqlite3_bind_int64(campaigns, 1, since_ms);
	sqlite3_bind_text(job, 2, addr, (int)len, SQLITE_STATIC);
	while (found == 0 &&
	       (rc = sqlite3_step(campaigns)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(campaigns, 0);

		if (store_jobs_with_key(st, id, store_addr_key(addr, len),
					error_r) < 0) {
			rc = -1;
			break;
		}
		if (st->scratch.len <= 2)	/* "[]" */
			continue;
		sqlite3_bind_text(job, 1, st->scratch.data,
				  (int)st->scratch.len, SQLITE_STATIC);
		rc = sqlite3_step(job);
		if (rc == SQLITE_ROW)
			found = sqlite3_column_int64(job, 0);
		sqlite3_reset(job);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			break;
		rc = SQLITE_ROW;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE && rc != -1)
		store_fail_step(st, rc, error_r, "finding an address");
	sqlite3_finalize(campaigns);
	sqlite3_finalize(job);
	if (found > 0)
		return store_job_ref(st, found, ref, error_r);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_job_foreach(struct store *st, int64_t campaign_id,
		      const char *address, size_t limit, store_job_fn *fn,
		      void *ctx, const char **error_r)
{
	struct store_job job = { 0 };
	sqlite3_stmt *stmt;
	int rc, ret = 0;

	if (address != NULL &&
	    store_jobs_with_key(st, campaign_id,
				store_addr_key(address, strlen(address)),
				error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(st->db, address != NULL ?
			       "SELECT id, campaign_id, import_id, address,"
			       " addr_flags, vars, attempts FROM jobs_now"
			       " WHERE id IN (SELECT value FROM json_each(?4))"
			       " AND campaign_id = ?1"
			       " AND address = ?2 COLLATE NOCASE"
			       " ORDER BY id LIMIT ?3" :
			       "SELECT id, campaign_id, import_id, address,"
			       " addr_flags, vars, attempts FROM jobs_now"
			       " WHERE +campaign_id = ?1 ORDER BY id LIMIT ?3",
			       -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "reading jobs");
	sqlite3_bind_int64(stmt, 1, campaign_id);
	if (address != NULL) {
		sqlite3_bind_text(stmt, 2, address, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, st->scratch.data,
				  (int)st->scratch.len, SQLITE_STATIC);
	}
	sqlite3_bind_int64(stmt, 3, limit > 0 ? (int64_t)limit : -1);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		job.id = sqlite3_column_int64(stmt, 0);
		job.campaign_id = sqlite3_column_int64(stmt, 1);
		job.import_id = sqlite3_column_int64(stmt, 2);
		job.address = store_column_text(stmt, 3);
		job.address_len = (size_t)sqlite3_column_bytes(stmt, 3);
		job.addr_flags = (unsigned)sqlite3_column_int(stmt, 4);
		job.vars = sqlite3_column_blob(stmt, 5);
		job.vars_len = (size_t)sqlite3_column_bytes(stmt, 5);
		job.attempts = sqlite3_column_int(stmt, 6);
		ret = fn(ctx, &job);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_step(st, rc, error_r, "reading jobs");
	sqlite3_finalize(stmt);
	return ret;
}

/* --- reports ----------------------------------------------------------- */

int store_report_foreach(struct store *st, int64_t campaign_id,
			 const enum job_state *only, store_report_fn *fn,
			 void *ctx, const char **error_r)
{
	struct store_report_row row;
	sqlite3_stmt *stmt;
	int rc, ret = 0;

	/* Private statement: fn may use the store meanwhile. */
	if (sqlite3_prepare_v2(st->db,
			       store_sql[only ? STMT_REPORT_STATE :
					 STMT_REPORT_ALL], -1,
			       &stmt, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "reading results");
	sqlite3_bind_int64(stmt, 1, campaign_id);
	if (only != NULL)
		sqlite3_bind_int(stmt, 2, (int)*only);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		row.job_id = sqlite3_column_int64(stmt, 0);
		row.address = store_column_text(stmt, 1);
		row.state = (enum job_state)sqlite3_column_int(stmt, 2);
		row.attempts = sqlite3_column_int(stmt, 3);
		row.last_code = sqlite3_column_int(stmt, 4);
		row.last_enhanced = store_column_text(stmt, 5);
		row.last_reply = store_column_text(stmt, 6);
		row.queue_id = store_column_text(stmt, 7);
		row.first_attempt_at = sqlite3_column_int64(stmt, 8);
		row.last_attempt_at = sqlite3_column_int64(stmt, 9);
		row.next_attempt_at = sqlite3_column_int64(stmt, 10);
		row.lease_owner = store_column_text(stmt, 11);
		row.bounce_class = store_column_text(stmt, 12);
		row.bounced_at = sqlite3_column_int64(stmt, 13);
		ret = fn(ctx, &row);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_step(st, rc, error_r, "reading results");
	sqlite3_finalize(stmt);
	return ret;
}
