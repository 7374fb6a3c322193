/*
 * store - the durable job store: campaigns, and one job per recipient.
 *
 * Every recipient of a campaign is a job whose delivery state lives in a
 * SQLite file (WAL mode), so a send can stop at any moment - SIGKILL
 * included - and go on later without losing or silently skipping anyone.
 *
 * Job life cycle (see shared/DESIGN.md, "Delivery semantics"):
 *
 *   queued --claim--> sending --record--> sent | deferred | failed
 *                        |                           |
 *                        +--lease expired or ------> deferred: due again
 *                           owner gone (reclaim)     at next_attempt_at
 *
 * A claim leases a batch of due jobs to an owner (a string naming one
 * sender run, see store_lease_owner_self()) until an expiry time.  The
 * owner records results for the jobs it holds; a result for a job the owner
 * no longer holds is ignored and counted as stale - except "sent", which is
 * always kept, because the server took the message and forgetting that
 * would only cause a duplicate.
 *
 * Deferred jobs are leased one by one.  Queued jobs are leased by a
 * range of ids, one row for the whole claim (schema 9), so that the
 * claim writes no job's row: until its result the row says queued, and
 * its attempt is written with the result (or by the reclaim that finds
 * it in doubt).  The counts and the report show it as it is: "sending",
 * attempted at the claim's time.
 *
 * A final result (sent, failed) for such a job is appended to a journal,
 * the results table (schema 10), instead of rewriting the job's row,
 * which then still says queued: read jobs' states from the view jobs_now,
 * which applies the journal, never from the jobs table.  Every function
 * here already does.
 *
 * Times are milliseconds since the Unix epoch (clock_wall_ms(), clock.h).
 *
 * Thread rules:
 *   - A struct store is one SQLite connection.  Use it from one thread at a
 *     time; it holds prepared statements and the buffers that results
 *     returned by it point into.
 *   - Any number of struct store - in one process, one per thread, or in
 *     several processes - may be open on the same file at once.  Readers
 *     (store_counts, store_campaign_foreach, store_report_foreach) never
 *     wait for a writer.  Writers (everything else) take turns; one that
 *     finds the file locked waits up to busy_timeout_ms, then fails with
 *     "database is locked".
 *   - An import holds the write lock from store_import_begin() until it
 *     commits or aborts.
 *
 * Errors: functions that can fail return -1 (or a negative value) and
 * point *error_r at a message that stays valid until the next call on the
 * same store.  The library never prints.
 */
#ifndef VOLLEY_STORE_H
#define VOLLEY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_import;

enum job_state {
	JOB_QUEUED = 0,
	JOB_SENDING = 1,
	JOB_SENT = 2,
	JOB_DEFERRED = 3,
	JOB_FAILED = 4,
	/* never sent: the address is on the suppression list (the reason
	 * is in the job's last reply) */
	JOB_SUPPRESSED = 5,
};
#define JOB_STATE_COUNT 6

/* job_state_name - "queued", "sending", ... */
const char *job_state_name(enum job_state state);
/* job_state_parse - the state with that name; false if none */
bool job_state_parse(const char *name, enum job_state *state_r);

/* The store's own flags on a job's address (a subset of mailaddr's). */
#define STORE_ADDR_SMTPUTF8 (1u << 0)

/* --- opening ----------------------------------------------------------- */

struct store_params {
	int busy_timeout_ms;	/* 0: default, 5000 */
	bool create;		/* create the file if it does not exist */
};

/*
 * store_process_init - once, at the start of a program, before any thread
 * but the first exists: settings SQLite takes only before its first use
 * (the store works without, a little slower).
 */
void store_process_init(void);

/*
 * store_open - open (and with params->create, create) the store at path,
 * migrating its schema forward to the current version.  On failure *st_r
 * is NULL and *error_r says why (valid until the next store_open() in the
 * same thread).
 */
int store_open(const char *path, const struct store_params *params,
	       struct store **st_r, const char **error_r);
/* store_close - close and set *stp to NULL; NULL is fine */
void store_close(struct store **stp);

/* store_schema_version - the version a store at this build migrates to */
int store_schema_version(void);

/* --- campaigns --------------------------------------------------------- */

struct store_campaign {
	int64_t id;
	const char *name;
	const char *sender;		/* envelope sender, or NULL */
	const char *template_ref;	/* template folder, or NULL */
	/* where attachments named by recipient are read from, or NULL */
	const char *files_dir;
	const char *state;		/* "ready", "sending", "finished" */
	const char *list;		/* the list it goes to: "default" ... */
	bool transactional;		/* unsubscribes do not stop it */
	int64_t created_at;
	int64_t finished_at;		/* 0 if not finished */
};

struct store_counts {
	int64_t by_state[JOB_STATE_COUNT];
	int64_t total;
};

/* One file of a campaign's template snapshot. */
struct store_file {
	const char *name;	/* a file name, no folders */
	const void *data;
	size_t len;
};

/* The default list of a campaign, and the scope that covers every list. */
#define STORE_LIST_DEFAULT "default"
#define STORE_SCOPE_GLOBAL "global"

/*
 * store_campaign_create - a new campaign, with its template snapshot
 * (nfiles files, which may be 0), in one transaction.  The name must be
 * unique.  list NULL is STORE_LIST_DEFAULT; a list may not be named
 * "global".  A transactional campaign ignores unsubscribes (a receipt
 * still reaches someone who left a newsletter), never bounces or
 * complaints.  Returns 0 and sets *id_r, or -1 (a duplicate name
 * included).
 */
int store_campaign_create(struct store *st, const char *name,
			  const char *sender, const char *template_ref,
			  const char *files_dir, const char *list,
			  bool transactional,
			  const struct store_file *files, size_t nfiles,
			  int64_t *id_r, const char **error_r);

/*
 * store_campaign_get - the campaign named name: 1 if found (the strings
 * in *c point into the store's buffer, valid until the next call on st),
 * 0 if there is none, -1 on error.
 */
int store_campaign_get(struct store *st, const char *name,
		       struct store_campaign *c, const char **error_r);

/*
 * store_campaign_files - call fn for each file of the campaign's template
 * snapshot, in name order.  The file is valid during the call; a non-zero
 * return from fn stops the walk and is returned.
 */
typedef int store_file_fn(void *ctx, const struct store_file *file);
int store_campaign_files(struct store *st, int64_t campaign_id,
			 store_file_fn *fn, void *ctx, const char **error_r);

/* store_campaign_find - 1 and *id_r if found, 0 if not, -1 on error */
int store_campaign_find(struct store *st, const char *name, int64_t *id_r,
			const char **error_r);

/*
 * store_campaign_foreach - call fn for every campaign, oldest first, with
 * its job counts.  The structs are valid only during the call.  A non-zero
 * return from fn stops the walk and is returned.
 */
typedef int store_campaign_fn(void *ctx, const struct store_campaign *c,
			      const struct store_counts *counts);
int store_campaign_foreach(struct store *st, store_campaign_fn *fn,
			   void *ctx, const char **error_r);

/* store_counts - jobs per state of one campaign, in O(states) */
int store_counts(struct store *st, int64_t campaign_id,
		 struct store_counts *counts_r, const char **error_r);

/* --- import ------------------------------------------------------------ */

struct store_import_stats {
	int64_t import_id;
	int64_t added;		/* new jobs, the suppressed ones included */
	int64_t duplicates;	/* addresses already in the campaign */
	int64_t suppressed;	/* of added: stored as JOB_SUPPRESSED */
};

/*
 * store_import_begin - start importing recipients into a campaign, in one
 * transaction that nothing else sees until store_import_commit().
 *
 * var_names names the variables each recipient carries (the CSV header
 * without the address column, whose name is address_column, so templates
 * can still use it); source is a label for the import's record, such as
 * the file name.
 *
 * Memory: an import's memory does not grow with its rows or with the
 * campaign: about 35 MB for the set of address keys it finds duplicates
 * in (see store_addrset.h) and a 16 MB page cache.  Past 734,003
 * addresses the set keeps most keys in unlinked temporary files in the
 * store's folder, 16 bytes per address (32 while two are merged), gone
 * when the import ends however it ends.  A large import drops jobs_due
 * and builds it again before its commit; inside the transaction, so
 * nobody sees the store without it.
 */
int store_import_begin(struct store *st, int64_t campaign_id,
		       const char *source, const char *address_column,
		       const char *const *var_names, size_t nvars,
		       struct store_import **imp_r, const char **error_r);

/*
 * store_import_add - add one recipient.  vars is the recipient's packed
 * variables (see vars.h), in the order of var_names.  Addresses are unique
 * per campaign, ignoring ASCII case: a repeat is not added.  An address
 * (or its domain) suppressed for the campaign's list is added in state
 * JOB_SUPPRESSED, with the reason as its last reply.
 * Returns 1 if added (2 if added suppressed), 0 if a duplicate, -1 on
 * error.
 */
int store_import_add(struct store_import *imp, const char *addr,
		     size_t addr_len, unsigned addr_flags, const void *vars,
		     size_t vars_len, const char **error_r);

/*
 * store_import_commit - make the import visible, all of it at once, and
 * record how many rows were rejected with it.  Frees the import and sets
 * *impp to NULL whether or not it succeeds (on failure nothing was
 * imported).
 */
int store_import_commit(struct store_import **impp, int64_t rejected,
			struct store_import_stats *stats_r,
			const char **error_r);

/* store_import_abort - roll back everything added; free; *impp = NULL */
void store_import_abort(struct store_import **impp);

/*
 * store_import_var_names - the variable names of an import, packed as in
 * vars.h (one string per variable), and the name of its address column.
 * Both point into the store's buffer, valid until the next call on st.
 */
int store_import_var_names(struct store *st, int64_t import_id,
			   const void **packed_r, size_t *len_r,
			   const char **address_column_r,
			   const char **error_r);

/* --- claiming and recording -------------------------------------------- */

struct store_job {
	int64_t id;
	int64_t campaign_id;
	int64_t import_id;	/* names the variables: store_import_var_names */
	const char *address;	/* NUL-terminated */
	size_t address_len;
	unsigned addr_flags;	/* STORE_ADDR_* */
	const void *vars;	/* packed variables, see vars.h */
	size_t vars_len;
	int attempts;		/* including the one this claim starts */
	int64_t first_attempt_at;	/* ms; this claim's time if first */
	int doubts;		/* times its message went in doubt before */
	/* the claim whose range holds it (a queued job, leased with its
	 * claim), or 0 (a deferred job, leased by itself); its results must
	 * say it (store_result.claim_id) */
	int64_t claim_id;
};

/*
 * A batch of claimed jobs.  Zero-initialise it, pass it to store_claim()
 * as often as you like, and free it with store_batch_free(): its storage
 * is reused from claim to claim.
 */
struct store_batch {
	struct store_job *jobs;
	size_t count;
	/* count may be 0 and more due all the same: the claim stopped after
	 * suppressing many jobs (its write lock is not held for long);
	 * claim again */
	bool more;
	/* private */
	size_t cap;
	void *arena;
};
void store_batch_free(struct store_batch *batch);

/*
 * store_claim - lease up to max due jobs of a campaign to owner until
 * now + lease_ms, in one transaction; the oldest due first.  A job is due
 * when queued or deferred and its next attempt time has come.  Each claim
 * counts as an attempt.  A due job whose address was suppressed since
 * its import is not returned: it is JOB_SUPPRESSED from then on, and
 * counted by store_claim_suppressed.  batch->count is 0 when nothing is
 * due, unless batch->more says to claim again (many due jobs were all
 * suppressed: the claim stopped so as not to hold the write lock long).
 */
int store_claim(struct store *st, int64_t campaign_id, const char *owner,
		int64_t now, int64_t lease_ms, size_t max,
		struct store_batch *batch, const char **error_r);
/* store_claim_suppressed - jobs the claims on st suppressed so far */
int64_t store_claim_suppressed(const struct store *st);

/* What a sender learned about one job; see store_record(). */
struct store_result {
	int64_t job_id;
	enum job_state state;	/* SENT, DEFERRED, FAILED, or QUEUED to
				   hand the job back untried */
	int code;		/* SMTP reply code, 0 if none */
	const char *enhanced;	/* "5.1.1", or NULL */
	const char *reply;	/* reply text, or a local error; may be NULL */
	const char *queue_id;	/* server's queue id on success, or NULL */
	int64_t at;		/* when the result was known */
	int64_t next_attempt_at; /* for DEFERRED: when it is due again */
	bool in_doubt;		/* the whole message went and no reply came:
				 * counted in the job's doubts */
	/* a FAILED result the bounce rules classified (bounce_rules.h),
	 * or NULL: recorded as a bounce of kind "reply", and suppressed
	 * as any bounce is (see store_bounce_add) */
	const char *bounce_category;
	bool bounce_hard;
	bool bounce_sender_side;	/* see store_bounce.sender_side */
	/* the job's campaign when the caller has it (the claim gave it):
	 * saves the store reading it; 0 if not known.  Checked: one that
	 * is not the job's costs the read, never a wrong count */
	int64_t campaign_id;
	/* the job's store_job.claim_id, from its claim */
	int64_t claim_id;
};

/*
 * store_record - record n results in one transaction.  Results for jobs
 * that owner no longer holds are skipped and counted in *stale_r, except
 * JOB_SENT (see the top of this file).  A QUEUED result gives back the
 * attempt the claim counted: a job of a claim's range is queued again
 * and the next claim takes it first; a job leased by itself is deferred,
 * due when it was.
 */
int store_record(struct store *st, const char *owner,
		 const struct store_result *results, size_t n,
		 size_t *stale_r, const char **error_r);

/* --- leases ------------------------------------------------------------ */

/*
 * store_lease_owner_self - a new owner name for a run of this process,
 * unique across hosts, PID namespaces and restarts, and readable in
 * messages:
 *
 *   HOST pid PID run RUN boot BOOT pidns PIDNS start START
 *
 * HOST (at most 64 bytes) is for people only; RUN is random and new on
 * every call; BOOT is the kernel's boot id, PIDNS the inode of this
 * process's PID namespace, START its start time in clock ticks since
 * boot (/proc/self/stat field 22); a field /proc does not give is "-".
 * It holds no ':' (older volleys read it as another host's owner).
 * dst should hold 300 bytes.
 */
void store_lease_owner_self(char *dst, size_t size);

/*
 * store_lease_owner_alive - whether owner may still be at work, asked by
 * a run whose own name is self (from store_lease_owner_self()).  False
 * for self (this very run cannot be an earlier owner still at work), and
 * for an owner whose BOOT and PIDNS are both known and equal to self's
 * (so its PID means the same in both) when no process has that PID any
 * more, or the one that has it started at another time than START (the
 * PID was used again).  True for everything else: other hosts, other
 * boots, other PID namespaces, fields unknown ("-"), names that do not
 * parse; their leases come back only when they expire.
 *
 * A "HOST:PID" owner, from a volley before these names, is judged as that
 * volley did, so that an upgrade still takes back a crashed old run's
 * leases at once: gone when HOST is this host's name and kill(PID, 0)
 * finds no process.  That rule is weak, and only for the upgrade: a host
 * name is not a machine (two containers may share one), a PID seen from
 * another PID namespace names another process or none (false "gone"),
 * and a PID taken again by some other process looks alive until the
 * lease expires.
 */
bool store_lease_owner_alive(const char *owner, const char *self);

/*
 * store_release - hand every job owner holds back (used at
 * the end of a run for jobs it claimed but never tried), except the nkeep
 * in keep: jobs whose message may have left but whose result the store
 * did not take stay leased, for the next run's store_reclaim to treat as
 * in doubt.  Undoes the attempt each released claim counted.  A claim of
 * queued jobs with some still queued becomes free: the next claim takes
 * it first; a job leased by itself is deferred, due when it was (since
 * schema 10 also one whose only attempt that lease was).  *n_r (may be
 * NULL) is the number released.
 */
int store_release(struct store *st, const char *owner, const int64_t *keep,
		  size_t nkeep, int64_t *n_r, const char **error_r);

/*
 * store_error_transient - the last failure on st may pass if the same
 * call is made again later: the write lock held by another process past
 * busy_timeout_ms, a full disk, an I/O error, an allocation that failed.
 * False for a damaged or foreign file, a schema from a newer volley.
 */
bool store_error_transient(const struct store *st);

/*
 * store_error_busy - the last failure is another process holding the
 * write lock past busy_timeout_ms (transient too): worth waiting for,
 * where running out of memory or disk is better said at once
 */
bool store_error_busy(const struct store *st);

/*
 * store_reclaim - what a starting sender runs first: every job whose lease
 * has expired by now, or whose owner alive() says is gone, is in doubt (it
 * may have been delivered just before its owner died): deferred and due
 * at once the first time, held (see below) when hold is set or when it
 * was in doubt before, with a note in its last reply, its doubts counted
 * and its attempt kept.
 * alive may be NULL (then only expiry counts); ctx is passed to it.
 */
typedef bool store_owner_alive_fn(void *ctx, const char *owner);
int store_reclaim(struct store *st, int64_t now, bool hold,
		  store_owner_alive_fn *alive, void *ctx, int64_t *n_r,
		  const char **error_r);

/*
 * Jobs in doubt: the server may have taken the message (its lease ended
 * with the sender's death, or the end of data got no reply).  By default
 * they are simply deferred; with hold (send.in_doubt = "hold") they are
 * deferred until STORE_HELD - the end of time - so no claim takes them,
 * until the user releases them (due now) or drops them (failed).
 */
#define STORE_HELD INT64_MAX
enum store_doubt_action {
	STORE_DOUBT_COUNT,	/* *n_r: how many are held */
	STORE_DOUBT_RELEASE,	/* due at now again; *n_r released */
	STORE_DOUBT_DROP,	/* failed for good; *n_r dropped */
};
int store_in_doubt(struct store *st, int64_t campaign_id,
		   enum store_doubt_action action, int64_t now, int64_t *n_r,
		   const char **error_r);

/*
 * store_job_foreach - call fn with the jobs of a campaign in import order,
 * whatever their state: every job, or only the one whose address equals
 * address ignoring ASCII case, and at most limit of them (0: no limit).
 * The job is valid during the call; a non-zero return from fn stops the
 * walk and is returned.  (For previews and checks, not the send path.)
 */
typedef int store_job_fn(void *ctx, const struct store_job *job);
int store_job_foreach(struct store *st, int64_t campaign_id,
		      const char *address, size_t limit, store_job_fn *fn,
		      void *ctx, const char **error_r);

/* --- reports ----------------------------------------------------------- */

struct store_report_row {
	int64_t job_id;
	const char *address;
	enum job_state state;
	int attempts;
	int last_code;			/* 0 if none */
	const char *last_enhanced;	/* NULL if none */
	const char *last_reply;		/* NULL if none */
	const char *queue_id;		/* NULL if none */
	int64_t first_attempt_at;	/* 0 if never tried */
	int64_t last_attempt_at;	/* 0 if never tried */
	int64_t next_attempt_at;
	const char *lease_owner;	/* NULL unless sending */
	const char *bounce_class;	/* the latest bounce's category, or
					   NULL if none */
	int64_t bounced_at;		/* ms, 0 if none */
};

/*
 * store_report_foreach - call fn for every job of a campaign in import
 * order, or only those in state *only if only is not NULL.  The row is
 * valid during the call.  A non-zero return from fn stops the walk and is
 * returned.
 */
typedef int store_report_fn(void *ctx, const struct store_report_row *row);
int store_report_foreach(struct store *st, int64_t campaign_id,
			 const enum job_state *only, store_report_fn *fn,
			 void *ctx, const char **error_r);

/* --- suppression -------------------------------------------------------- */

/*
 * The suppression list: addresses (or whole domains, "@example.org") that
 * no later claim or import sends to, each with a reason and a scope:
 * STORE_SCOPE_GLOBAL (every list) or a list's name.  An address is
 * compared ignoring ASCII case, as the import compares.  A campaign is
 * stopped by the entries of its list and the global ones; a
 * transactional campaign ignores SUPPRESS_UNSUBSCRIBED.  One address may
 * have several entries (one per scope and reason).
 */
enum store_suppress_reason {
	SUPPRESS_UNSUBSCRIBED = 0,
	SUPPRESS_HARD_BOUNCE = 1,
	SUPPRESS_SOFT_BOUNCE = 2,
	SUPPRESS_COMPLAINT = 3,
	SUPPRESS_MANUAL = 4,
};
#define SUPPRESS_REASON_COUNT 5

/* "unsubscribed", "hard-bounce", "soft-bounce", "complaint", "manual" */
const char *store_suppress_reason_name(enum store_suppress_reason reason);
bool store_suppress_reason_parse(const char *name,
				 enum store_suppress_reason *reason_r);

struct store_suppression {
	const char *address;	/* as given: "a@example.org", "@example.org" */
	enum store_suppress_reason reason;
	const char *scope;	/* STORE_SCOPE_GLOBAL or a list's name */
	const char *source;	/* where it came from, for people: "volley
				   serve 127.0.0.1", a bounce's Message-ID,
				   "csv suppressed.csv:12"; may be NULL */
	int64_t campaign_id;	/* the campaign it came from, or 0 */
	int64_t job_id;		/* the recipient it came from, or 0 */
	int64_t created_at;	/* ms; 0 when adding: now */
};

/*
 * store_suppress_add - add n entries in one transaction; an entry that
 * is there already (same address ignoring case, scope and reason) is
 * left as it was.  *added_r (may be NULL): how many were new.  An
 * address must hold one '@' (at the start for a domain), no spaces or
 * controls; anything else fails the whole call, naming the entry.
 * Claims that run after the commit honour the new entries.
 */
int store_suppress_add(struct store *st, const struct store_suppression *s,
		       size_t n, size_t *added_r, const char **error_r);

/*
 * store_suppress_remove - remove the entries of address (ignoring case)
 * in scope (NULL: every scope) with reason (NULL: every reason).  *n_r:
 * how many went.  Jobs already JOB_SUPPRESSED stay so.
 */
int store_suppress_remove(struct store *st, const char *address,
			  const char *scope,
			  const enum store_suppress_reason *reason,
			  int64_t *n_r, const char **error_r);

/*
 * store_suppress_foreach - call fn for each entry, oldest first, only
 * those of scope and of reason when not NULL.  The entry is valid during
 * the call; a non-zero return from fn stops the walk and is returned.
 */
typedef int store_suppression_fn(void *ctx,
				 const struct store_suppression *s);
int store_suppress_foreach(struct store *st, const char *scope,
			   const enum store_suppress_reason *reason,
			   store_suppression_fn *fn, void *ctx,
			   const char **error_r);

/*
 * store_suppress_find - the entry that stops addr from being sent a
 * campaign of list (transactional: unsubscribes do not count): 1 and *s
 * (strings valid until the next call on st), 0 if none, -1 on error.
 */
int store_suppress_find(struct store *st, const char *addr, size_t len,
			const char *list, bool transactional,
			struct store_suppression *s_r, const char **error_r);

/*
 * store_suppress_reply - why an entry stops a recipient, as the last
 * reply of the jobs it suppresses: "suppressed: REASON (ADDRESS, LIST
 * since TIME; SOURCE)", into out (reset first)
 */
struct buf;
void store_suppress_reply(const struct store_suppression *s,
			  struct buf *out);

/* --- finding a recipient again (unsubscribes, bounces) ------------------ */

struct store_job_ref {
	int64_t job_id;
	int64_t campaign_id;
	const char *campaign;	/* its name */
	const char *list;
	bool transactional;
	const char *address;
	enum job_state state;
};

/*
 * store_job_ref - the job with that id: 1 and *ref (strings valid until
 * the next call on st), 0 if there is none, -1 on error.
 */
int store_job_ref(struct store *st, int64_t job_id, struct store_job_ref *ref,
		  const char **error_r);

/*
 * store_job_find_address - the job of addr (ignoring ASCII case) in the
 * newest campaign created at or after since_ms that has one: 1 and *ref,
 * 0 if none, -1 on error.  Costs a read of each such campaign's address
 * keys (8 bytes a recipient): for bounces, not for a hot path.
 */
int store_job_find_address(struct store *st, const char *addr, size_t len,
			   int64_t since_ms, struct store_job_ref *ref,
			   const char **error_r);

/* --- bounces and complaints ---------------------------------------------- */

/*
 * A bounce, a complaint, or a permanent reply volley got itself, as
 * recorded: matched to a job or not (campaign_id and job_id 0).
 */
struct store_bounce {
	int64_t id;		/* set by the store */
	/*
	 * What makes a bounce once: the bounce message's Message-ID (else
	 * a hash of it) with the address; "reply:JOB" for a reply volley
	 * got.  Recording the same key and address again changes nothing.
	 */
	const char *msg_key;
	const char *kind;	/* "bounce", "complaint" or "reply" */
	const char *address;	/* the failed or complaining address, NULL
				   if the message named none */
	int64_t campaign_id;	/* 0: unmatched */
	int64_t job_id;		/* 0: unmatched */
	const char *matched_by;	/* "verp", "message-id", "address", "reply",
				   or NULL */
	const char *category;	/* "bad-mailbox", ... (bounce_rules.h);
				   "complaint" for a complaint */
	bool hard;		/* a hard category: suppress at once */
	/*
	 * about the sender, not the recipient (a relay refusing our client
	 * or content at RCPT): recorded, but it never suppresses and does
	 * not count towards the soft limit
	 */
	bool sender_side;
	/*
	 * nothing proves it answers a message volley sent (no VERP token,
	 * no volley Message-ID): anyone can write such a message, so it is
	 * recorded, but it never suppresses and does not count towards the
	 * soft limit
	 */
	bool unverified;
	int code;		/* SMTP reply code, 0 if none */
	const char *enhanced;	/* "5.1.1", or NULL */
	const char *text;	/* the diagnostic or reply, or NULL */
	const char *original_id; /* the bounced message's Message-ID, or NULL */
	int64_t at;		/* ms; 0 when adding: now */
};

struct store_bounce_policy {
	int soft_limit;		/* soft bounces that suppress; 0: 3 */
	int64_t soft_window_ms;	/* ... within this long; 0: 14 days */
};

/*
 * store_bounce_add - record b once, and the suppression it leads to, in
 * one transaction: a hard bounce suppresses its address globally
 * (SUPPRESS_HARD_BOUNCE) at once; a complaint globally
 * (SUPPRESS_COMPLAINT); a soft bounce (SUPPRESS_SOFT_BOUNCE, global) once
 * the address has policy->soft_limit soft bounces within
 * policy->soft_window_ms of b->at.  A bounce with no address, about the
 * sender (sender_side) or unverified suppresses nothing.  policy may be NULL (the defaults).  Returns 1 if recorded, 0
 * if it was already, -1 on error; *suppressed_r (may be NULL) is the
 * reason it suppressed for, or -1 if none.
 */
int store_bounce_add(struct store *st, const struct store_bounce *b,
		     const struct store_bounce_policy *policy,
		     int *suppressed_r, const char **error_r);

/* store_set_bounce_policy - the policy store_record applies to replies */
void store_set_bounce_policy(struct store *st,
			     const struct store_bounce_policy *policy);

/*
 * store_bounce_foreach - call fn for each recorded bounce, oldest first:
 * those of one campaign (campaign_id > 0) or all, only the unmatched ones
 * when unmatched_only.  Valid during the call; a non-zero return from fn
 * stops the walk and is returned.
 */
typedef int store_bounce_fn(void *ctx, const struct store_bounce *b);
int store_bounce_foreach(struct store *st, int64_t campaign_id,
			 bool unmatched_only, store_bounce_fn *fn, void *ctx,
			 const char **error_r);

#endif
