/*
 * store_schema - the store's schema history (see store_schema.h).
 *
 * Job states are small integers (enum job_state) to keep the jobs table
 * and its indexes compact at 10^7 rows.  Times are Unix milliseconds.
 *
 * Indexes, and the query each one serves:
 *   jobs_fresh    partial, jobs whose row says queued, by campaign (and
 *                 id): a claim reads exactly the rows it takes past the
 *                 campaign's claim cursor, so its cost is O(batch)
 *                 however many jobs are sent or failed.  Since schema
 *                 10 it also holds the jobs whose final result is in the
 *                 journal (their row still says queued), for good: the
 *                 statements that read a claim's range (reclaim,
 *                 release, the reload of a freed range) walk those too,
 *                 O(range) with one probe of results each.
 *   jobs_retry    partial, only deferred jobs, by campaign and next
 *                 attempt time: the due ones, oldest first.
 *   jobs_leased   partial, only jobs leased one by one (deferred ones),
 *                 by lease expiry: reclaiming expired leases reads only
 *                 jobs in flight.
 *   claims_campaign  a campaign's claims, by their last id: its highest.
 *   address_keys_campaign  the rows of address keys of one campaign.
 * None is on the address: an import finds duplicates in a set made from
 * the campaign's address_keys (see migration 3 -> 4, store_addrset.h).
 */
#include "store_schema.h"

const char *const store_migrations[] = {
	/* 0 -> 1: campaigns, imports, jobs. */
	"CREATE TABLE campaigns ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  sender TEXT,"
	"  template_ref TEXT,"
	"  state TEXT NOT NULL DEFAULT 'ready'"
	"    CHECK (state IN ('ready', 'sending', 'finished')),"
	"  created_at INTEGER NOT NULL,"
	"  finished_at INTEGER"
	");"
	"CREATE TABLE imports ("
	"  id INTEGER PRIMARY KEY,"
	"  campaign_id INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  source TEXT,"
	"  address_column TEXT NOT NULL DEFAULT 'email',"
	"  var_names BLOB NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  finished_at INTEGER,"
	"  added INTEGER NOT NULL DEFAULT 0,"
	"  duplicates INTEGER NOT NULL DEFAULT 0,"
	"  rejected INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  campaign_id INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  import_id INTEGER NOT NULL REFERENCES imports(id)"
	"    ON DELETE CASCADE,"
	"  address TEXT NOT NULL,"
	"  addr_flags INTEGER NOT NULL DEFAULT 0,"
	"  vars BLOB,"
	"  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 4),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt_at INTEGER NOT NULL,"
	"  lease_owner TEXT,"
	"  lease_expires_at INTEGER,"
	"  last_code INTEGER,"
	"  last_enhanced TEXT,"
	"  last_reply TEXT,"
	"  queue_id TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  first_attempt_at INTEGER,"
	"  last_attempt_at INTEGER,"
	"  done_at INTEGER"
	");"
	"CREATE UNIQUE INDEX jobs_address"
	"  ON jobs(campaign_id, address COLLATE NOCASE);"
	"CREATE INDEX jobs_due ON jobs(campaign_id, next_attempt_at)"
	"  WHERE state IN (0, 3);"
	"CREATE INDEX jobs_leased ON jobs(lease_expires_at) WHERE state = 1;",

	/*
	 * 1 -> 2: counts per campaign and state, so that `volley status`
	 * costs O(campaigns) instead of a scan of every job while a send
	 * runs.  Triggers follow state changes and deletions; inserts are
	 * counted by the import itself, once per import, since a trigger per
	 * inserted row would slow an import of millions by a third.
	 */
	"CREATE TABLE campaign_counts ("
	"  campaign_id INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  state INTEGER NOT NULL,"
	"  n INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (campaign_id, state)"
	") WITHOUT ROWID;"
	"INSERT INTO campaign_counts (campaign_id, state, n)"
	"  SELECT c.id, s.value, 0 FROM campaigns c,"
	"    (SELECT 0 AS value UNION ALL SELECT 1 UNION ALL SELECT 2"
	"     UNION ALL SELECT 3 UNION ALL SELECT 4) s;"
	"UPDATE campaign_counts SET n = (SELECT count(*) FROM jobs j"
	"  WHERE j.campaign_id = campaign_counts.campaign_id"
	"    AND j.state = campaign_counts.state);"
	"CREATE TRIGGER campaigns_counts_init AFTER INSERT ON campaigns BEGIN"
	"  INSERT INTO campaign_counts (campaign_id, state, n) VALUES"
	"    (new.id, 0, 0), (new.id, 1, 0), (new.id, 2, 0), (new.id, 3, 0),"
	"    (new.id, 4, 0);"
	"END;"
	"CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN"
	"  UPDATE campaign_counts SET n = n - 1"
	"    WHERE campaign_id = old.campaign_id AND state = old.state;"
	"END;"
	"CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs"
	"  WHEN old.state <> new.state BEGIN"
	"  UPDATE campaign_counts SET n = n - 1"
	"    WHERE campaign_id = old.campaign_id AND state = old.state;"
	"  UPDATE campaign_counts SET n = n + 1"
	"    WHERE campaign_id = new.campaign_id AND state = new.state;"
	"END;",

	/*
	 * 2 -> 3: a campaign's template folder, copied into the store when
	 * the campaign is made, so editing the folder later cannot change a
	 * campaign half sent.
	 */
	"CREATE TABLE campaign_files ("
	"  id INTEGER PRIMARY KEY,"
	"  campaign_id INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  content BLOB NOT NULL,"
	"  UNIQUE (campaign_id, name)"
	");",

	/*
	 * 3 -> 4: duplicates are found in memory, from address_keys, instead
	 * of through a unique index on the address text.  That index was
	 * updated at a random place for every imported row, which was most
	 * of an import's cost; address_keys grows by one row per 65,536
	 * imported jobs.  A row holds the keys (store_addrset.h) of
	 * consecutive jobs from first_job_id on, 8 bytes each.  Jobs made
	 * before it get a row each (volley_addr_key is the store's own SQL
	 * function).
	 */
	"CREATE TABLE address_keys ("
	"  id INTEGER PRIMARY KEY,"
	"  campaign_id INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  first_job_id INTEGER NOT NULL,"
	"  keys BLOB NOT NULL"
	");"
	"CREATE INDEX address_keys_campaign ON address_keys(campaign_id);"
	"INSERT INTO address_keys (campaign_id, first_job_id, keys)"
	"  SELECT campaign_id, id, volley_addr_key(address) FROM jobs"
	"  ORDER BY id;"
	"DROP INDEX jobs_address;",

	/*
	 * 4 -> 5: how often a job's message went in doubt (the whole message
	 * went and no reply came, or its sender died holding it).  The
	 * first time it is sent again (unless send.in_doubt = "hold"); the
	 * second time it is held whatever the mode, so nobody ever gets
	 * more than two copies.
	 */
	"ALTER TABLE jobs ADD COLUMN doubts INTEGER NOT NULL DEFAULT 0;",

	/*
	 * 5 -> 6: the folder a campaign's per-recipient attachments
	 * ("invoices/{{invoice_id}}.pdf") are read from, never outside it
	 * (campaign create --files DIR).
	 */
	"ALTER TABLE campaigns ADD COLUMN files_dir TEXT;",

	/*
	 * 6 -> 7: the feedback loop (store.h, "suppression" and "bounces").
	 * Campaigns belong to a list; suppressions stop addresses (key: the
	 * address in ASCII lower case) per list or globally; AUTOINCREMENT
	 * so that ids only grow: an import remembers the highest it applied
	 * (imports.suppress_seen) and claims check only the later ones.
	 * Bounces are kept once per (bounce message, address), matched to a
	 * job or not.  Jobs gain state 5, suppressed: its CHECK is widened
	 * by store_widen_state_check() after this step, in C, as SQLite
	 * allows for a change that alters nothing stored.
	 */
	"ALTER TABLE campaigns ADD COLUMN list TEXT NOT NULL"
	"  DEFAULT 'default';"
	"ALTER TABLE campaigns ADD COLUMN transactional INTEGER NOT NULL"
	"  DEFAULT 0;"
	"ALTER TABLE imports ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE imports ADD COLUMN suppress_seen INTEGER NOT NULL"
	"  DEFAULT 0;"
	"CREATE TABLE suppressions ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  key TEXT NOT NULL,"
	"  address TEXT NOT NULL,"
	"  reason INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 4),"
	"  scope TEXT NOT NULL,"
	"  source TEXT,"
	"  campaign_id INTEGER,"
	"  job_id INTEGER,"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (key, scope, reason)"
	");"
	"CREATE TABLE bounces ("
	"  id INTEGER PRIMARY KEY,"
	"  msg_key TEXT NOT NULL,"
	"  kind TEXT NOT NULL CHECK (kind IN ('bounce', 'complaint',"
	"    'reply')),"
	"  address TEXT NOT NULL DEFAULT '',"
	"  key TEXT NOT NULL DEFAULT '',"
	"  campaign_id INTEGER,"
	"  job_id INTEGER,"
	"  matched_by TEXT,"
	"  category TEXT NOT NULL,"
	"  hard INTEGER NOT NULL DEFAULT 0,"
	"  sender_side INTEGER NOT NULL DEFAULT 0,"
	"  unverified INTEGER NOT NULL DEFAULT 0,"
	"  code INTEGER NOT NULL DEFAULT 0,"
	"  enhanced TEXT,"
	"  text TEXT,"
	"  original_id TEXT,"
	"  at INTEGER NOT NULL,"
	"  UNIQUE (msg_key, key)"
	");"
	"CREATE INDEX bounces_job ON bounces(job_id) WHERE job_id IS NOT NULL;"
	"CREATE INDEX bounces_soft ON bounces(key, at) WHERE hard = 0;"
	"INSERT INTO campaign_counts (campaign_id, state, n)"
	"  SELECT id, 5, 0 FROM campaigns;"
	"DROP TRIGGER campaigns_counts_init;"
	"CREATE TRIGGER campaigns_counts_init AFTER INSERT ON campaigns BEGIN"
	"  INSERT INTO campaign_counts (campaign_id, state, n) VALUES"
	"    (new.id, 0, 0), (new.id, 1, 0), (new.id, 2, 0), (new.id, 3, 0),"
	"    (new.id, 4, 0), (new.id, 5, 0);"
	"END;",

	/*
	 * 7 -> 8: the counts of jobs per state are kept by the store's C
	 * code (store_count_move), from what each statement moved, in the
	 * same transaction.  The trigger ran two UPDATEs of campaign_counts
	 * for every changed job, four per message sent: a quarter of the
	 * instructions of a 4 KB message.  The counts it kept stay right.
	 */
	"DROP TRIGGER jobs_count_update;",

	/*
	 * 8 -> 9: leases per claim.  A claim of queued jobs writes one
	 * claims row for its whole range of ids instead of rewriting every
	 * job (a claim cost 25,000 instructions a job, two thirds of the
	 * store's share of a 4 KB message); a job is written once, by its
	 * result.  A queued job whose id lies in a claim's range belongs to
	 * that claim; a claim with no owner is free, given back by its
	 * owner's release for the next claim to take.  Claims go from the
	 * lowest id up, so the queued jobs past the highest claimed id of a
	 * campaign are the ones nobody holds.  Deferred jobs are still
	 * leased one by one (they come due one by one), through jobs_retry;
	 * queued ones are found through jobs_fresh.  AUTOINCREMENT: a
	 * claim's id is never used again, so a late result can never name
	 * a newer claim.
	 */
	"CREATE TABLE claims ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  campaign_id INTEGER NOT NULL REFERENCES campaigns(id)"
	"    ON DELETE CASCADE,"
	"  first_job INTEGER NOT NULL,"
	"  last_job INTEGER NOT NULL,"
	"  owner TEXT,"
	"  claimed_at INTEGER NOT NULL,"
	"  expires_at INTEGER,"
	"  CHECK (first_job <= last_job),"
	"  CHECK ((owner IS NULL) = (expires_at IS NULL))"
	");"
	"CREATE INDEX claims_campaign ON claims(campaign_id, last_job);"
	"DROP INDEX jobs_due;"
	"CREATE INDEX jobs_fresh ON jobs(campaign_id) WHERE state = 0;"
	"CREATE INDEX jobs_retry ON jobs(campaign_id, next_attempt_at)"
	"  WHERE state = 3;",

	/*
	 * 9 -> 10: the journal of results.  A final result (sent, failed)
	 * for a job queued in its owner's claim is appended to results
	 * instead of rewriting the job's row: the rewrite of a twenty-column
	 * row with its partial indexes cost about 12,600 instructions more
	 * than the append (bench/bench_record), a quarter of a 4 KB message.
	 * Such a job's row still says queued (state 0) and stays in
	 * jobs_fresh; "queued" is therefore state 0 with no results row, and
	 * jobs_now shows every job as it is, the journal applied: read
	 * states from it, never from jobs.  A job whose result comes again
	 * (a late "sent" after "failed") is folded first: its journal row is
	 * written into the job's row and removed (store_job_fold), so every
	 * other change to a job goes to jobs as before.
	 *
	 * Claims are deleted when none of their jobs is queued, and new
	 * claims start past the highest claimed id; with sent jobs left in
	 * jobs_fresh, a new claim after its campaign's claims were all
	 * deleted would walk every sent job again.  claim_cursor keeps the
	 * highest last_job a deleted claim had (a trigger, so no deletion
	 * can forget it).
	 *
	 * results.job_id declares no foreign key: its check cost 1,300
	 * instructions a result (bench/profile.py).  Nothing deletes jobs
	 * today; a trigger deletes a deleted job's result, so that a job
	 * imported later under the same id (jobs' ids can be used again)
	 * starts with none.
	 */
	"CREATE TABLE results ("
	"  job_id INTEGER PRIMARY KEY,"
	"  state INTEGER NOT NULL CHECK (state IN (2, 4)),"
	"  code INTEGER,"
	"  enhanced TEXT,"
	"  reply TEXT,"
	"  queue_id TEXT,"
	"  done_at INTEGER NOT NULL,"
	"  attempt_at INTEGER NOT NULL,"
	"  doubts INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE VIEW jobs_now AS SELECT j.id AS id,"
	"  j.campaign_id AS campaign_id, j.import_id AS import_id,"
	"  j.address AS address, j.addr_flags AS addr_flags, j.vars AS vars,"
	"  coalesce(r.state, j.state) AS state,"
	"  j.attempts + (r.job_id IS NOT NULL) AS attempts,"
	"  coalesce(r.done_at, j.next_attempt_at) AS next_attempt_at,"
	"  j.lease_owner AS lease_owner,"
	"  j.lease_expires_at AS lease_expires_at,"
	"  CASE WHEN r.job_id IS NULL THEN j.last_code ELSE r.code END"
	"    AS last_code,"
	"  CASE WHEN r.job_id IS NULL THEN j.last_enhanced ELSE r.enhanced END"
	"    AS last_enhanced,"
	"  CASE WHEN r.job_id IS NULL THEN j.last_reply ELSE r.reply END"
	"    AS last_reply,"
	"  coalesce(r.queue_id, j.queue_id) AS queue_id,"
	"  j.created_at AS created_at,"
	"  coalesce(j.first_attempt_at, r.attempt_at) AS first_attempt_at,"
	"  coalesce(r.attempt_at, j.last_attempt_at) AS last_attempt_at,"
	"  coalesce(r.done_at, j.done_at) AS done_at,"
	"  j.doubts + coalesce(r.doubts, 0) AS doubts,"
	"  r.job_id IS NOT NULL AS journaled"
	"  FROM jobs j LEFT JOIN results r ON r.job_id = j.id;"
	"ALTER TABLE campaigns ADD COLUMN claim_cursor INTEGER NOT NULL"
	"  DEFAULT 0;"
	"CREATE TRIGGER jobs_results_delete AFTER DELETE ON jobs BEGIN"
	"  DELETE FROM results WHERE job_id = old.id;"
	"END;"
	"CREATE TRIGGER claims_cursor AFTER DELETE ON claims BEGIN"
	"  UPDATE campaigns SET claim_cursor = old.last_job"
	"    WHERE id = old.campaign_id AND claim_cursor < old.last_job;"
	"END;",
};

/* The migration after which store_widen_state_check() runs (6 -> 7). */
const int store_migration_widen_state = 6;
/* The migration that drops the counting trigger (7 -> 8). */
const int store_migration_counts_in_c = 7;
/* The migration to leases per claim (8 -> 9). */
const int store_migration_claims = 8;
/* The migration to the journal of results (9 -> 10). */
const int store_migration_journal = 9;

/*
 * These must stay the definitions of the latest step that made them.
 * jobs_leased stays: an imported job is queued, never in it, so keeping
 * it costs an import nothing, and building it again would read every job
 * (from the WAL, once the import is larger than its page cache).
 */
const char store_job_indexes_drop[] = "DROP INDEX jobs_fresh;";
const char store_job_indexes_create[] =
	"CREATE INDEX jobs_fresh ON jobs(campaign_id) WHERE state = 0;";

const int store_migration_count =
	(int)(sizeof(store_migrations) / sizeof(store_migrations[0]));
