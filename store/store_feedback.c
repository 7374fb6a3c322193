/*
 * store_feedback - the suppression list and the bounces (store.h, from
 * "suppression" on), and how imports and claims honour the list.
 *
 * An entry's key is its address in ASCII lower case ("@example.org" for
 * a domain), the comparison the import makes.  The list is applied
 * twice: an import loads the keys that stop its campaign into a filter
 * once and checks each row in memory; a claim checks only what was added
 * since its campaign's oldest import, which is nothing in nearly every
 * claim, so the send path pays one indexed max(id) per batch.
 */
#include "store_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "escape.h"
#include "mailaddr.h"
#include "store_addrset.h"
#include "xalloc.h"

static const char *const store_fb_sql[FB_STMT_COUNT] = {
	[FB_SUPPRESS_INSERT] =
		"INSERT OR IGNORE INTO suppressions (key, address, reason,"
		" scope, source, campaign_id, job_id, created_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, nullif(?6, 0), nullif(?7, 0),"
		" ?8)",
	/* the address's own entry before its domain's; the oldest first */
	[FB_SUPPRESS_FIND] =
		"SELECT address, reason, scope, source,"
		" coalesce(campaign_id, 0), coalesce(job_id, 0), created_at"
		" FROM suppressions WHERE key IN (?1, ?2)"
		" AND scope IN ('global', ?3) AND (?4 = 0 OR reason <> 0)"
		" ORDER BY key = ?1 DESC, id LIMIT 1",
	[FB_SUPPRESS_MAX_ID] = "SELECT coalesce(max(id), 0) FROM suppressions",
	[FB_SUPPRESS_LOAD] =
		"SELECT key FROM suppressions WHERE id > ?1"
		" AND scope IN ('global', ?2) AND (?3 = 0 OR reason <> 0)",
	[FB_JOB_REF] =
		"SELECT j.id, j.campaign_id, c.name, c.list, c.transactional,"
		" j.address, coalesce(r.state, j.state) FROM jobs j"
		" JOIN campaigns c ON c.id = j.campaign_id"
		" LEFT JOIN results r ON r.job_id = j.id WHERE j.id = ?1",
	/*
	 * A claimed job given up: the attempt its claim counted undone (and
	 * its times, if it had none before); what an earlier attempt got
	 * is kept after the reason, since it may say the message was
	 * delivered already.
	 */
	[FB_JOB_SUPPRESS] =
		"UPDATE jobs SET state = 5, attempts = attempts - 1,"
		" first_attempt_at = CASE WHEN attempts > 1"
		"  THEN first_attempt_at END,"
		" last_attempt_at = CASE WHEN attempts > 1"
		"  THEN last_attempt_at END,"
		" last_reply = ?2 || coalesce(' (before: ' || last_reply || ')',"
		"  ''),"
		" done_at = ?3, lease_owner = NULL, lease_expires_at = NULL"
		" WHERE id = ?1 AND state = 1",
	/* a job of a claim's range: its attempt was never counted */
	[FB_JOB_SUPPRESS_QUEUED] =
		"UPDATE jobs SET state = 5,"
		" last_reply = ?2 || coalesce(' (before: ' || last_reply || ')',"
		"  ''),"
		" done_at = ?3 WHERE id = ?1 AND state = 0"
		" AND NOT EXISTS (SELECT 1 FROM results WHERE job_id = ?1)",
	[FB_BOUNCE_INSERT] =
		"INSERT OR IGNORE INTO bounces (msg_key, kind, address, key,"
		" campaign_id, job_id, matched_by, category, hard, code,"
		" enhanced, text, original_id, at, sender_side, unverified)"
		" VALUES (?1, ?2, ?3, ?4, nullif(?5, 0), nullif(?6, 0), ?7,"
		" ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
	[FB_BOUNCE_SOFT_COUNT] =
		"SELECT count(*) FROM bounces WHERE key = ?1 AND hard = 0"
		" AND sender_side = 0 AND unverified = 0"
		" AND kind <> 'complaint'"
		" AND at > ?2 AND at <= ?3",
	[FB_CAMPAIGN_LIST] =
		"SELECT list, transactional FROM campaigns WHERE id = ?1",
	[FB_CAMPAIGN_SEEN] =
		"SELECT coalesce(min(suppress_seen), 0) FROM imports"
		" WHERE campaign_id = ?1",
};

static const char *const store_reason_names[SUPPRESS_REASON_COUNT] = {
	[SUPPRESS_UNSUBSCRIBED] = "unsubscribed",
	[SUPPRESS_HARD_BOUNCE] = "hard-bounce",
	[SUPPRESS_SOFT_BOUNCE] = "soft-bounce",
	[SUPPRESS_COMPLAINT] = "complaint",
	[SUPPRESS_MANUAL] = "manual",
};

/* Soft bounces that suppress, and the window they count in (store.h). */
#define STORE_SOFT_LIMIT_DEFAULT 3
#define STORE_SOFT_WINDOW_DEFAULT (14 * 24 * 3600 * 1000LL)

/* The longest address an entry may hold (RFC 5321: 64 + 1 + 255). */
#define STORE_SUPPRESS_ADDR_MAX 320

const char *store_suppress_reason_name(enum store_suppress_reason reason)
{
	if ((unsigned)reason >= SUPPRESS_REASON_COUNT)
		return "unknown";
	return store_reason_names[reason];
}

bool store_suppress_reason_parse(const char *name,
				 enum store_suppress_reason *reason_r)
{
	for (int i = 0; i < SUPPRESS_REASON_COUNT; i++) {
		if (strcmp(name, store_reason_names[i]) == 0) {
			*reason_r = (enum store_suppress_reason)i;
			return true;
		}
	}
	return false;
}

static sqlite3_stmt *store_fb_stmt(struct store *st,
				   enum store_fb_stmt_id id,
				   const char **error_r)
{
	if (st->fb_stmt[id] == NULL &&
	    sqlite3_prepare_v3(st->db, store_fb_sql[id], -1,
			       SQLITE_PREPARE_PERSISTENT, &st->fb_stmt[id],
			       NULL) != SQLITE_OK) {
		store_fail_db(st, error_r, "preparing a statement");
		return NULL;
	}
	return st->fb_stmt[id];
}

void store_fb_close(struct store *st)
{
	for (int i = 0; i < FB_STMT_COUNT; i++)
		sqlite3_finalize(st->fb_stmt[i]);
	buf_free(&st->fb_scratch);
	buf_free(&st->fb_key);
	store_claim_forget(st);
}

/* --- keys ---------------------------------------------------------------- */

/* store_lower - addr in ASCII lower case into out (reset first) */
static void store_lower(struct buf *out, const char *addr, size_t len)
{
	buf_reset(out);
	buf_reserve(out, len + 1);
	for (size_t i = 0; i < len; i++) {
		char c = addr[i];

		out->data[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
	}
	out->len = len;
	out->data[len] = '\0';
}

/* store_domain - where the domain of addr starts ('@' included), or NULL */
static const char *store_domain(const char *addr, size_t len)
{
	const char *at = memrchr(addr, '@', len);

	return at != NULL && at + 1 < addr + len ? at : NULL;
}

/*
 * store_suppress_check - an entry's address is a mailbox the recipient
 * import would take (mailaddr.h: a quoted local part may hold spaces),
 * or '@' and a domain such a mailbox could have
 */
static int store_suppress_check(struct store *st, const char *addr,
				const char **error_r)
{
	size_t len = strlen(addr);
	const char *why = NULL;
	char probe[STORE_SUPPRESS_ADDR_MAX + 2];
	bool ok;

	if (len == 0)
		return store_fail(st, error_r, "an empty address cannot be "
				  "suppressed");
	if (len > STORE_SUPPRESS_ADDR_MAX)
		return store_fail(st, error_r, "address too long (%zu bytes, "
				  "at most %d)", len, STORE_SUPPRESS_ADDR_MAX);
	if (addr[0] == '@') {
		/* a domain is good when x@domain is a good mailbox */
		probe[0] = 'x';
		memcpy(probe + 1, addr, len + 1);
		ok = mailaddr_check(probe, len + 1, NULL, &why);
	} else {
		ok = mailaddr_check(addr, len, NULL, &why);
	}
	if (!ok) {
		struct buf shown = BUF_INIT;

		escape_text(&shown, addr, len, 100);
		store_fail(st, error_r, "'%s' is not an address or @domain: "
			   "%s", buf_cstr(&shown), why);
		buf_free(&shown);
		return -1;
	}
	return 0;
}

/* store_has_control - s holds a control character (C0 or DEL) */
static bool store_has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/*
 * store_clean - s with its control characters made '?' and cut at max
 * bytes, into out (NULL stays NULL): sources and bounce texts are shown
 * in terminals and reports, and many come from what a bounce message
 * said
 */
static const char *store_clean(const char *s, size_t max, struct buf *out)
{
	if (s == NULL)
		return NULL;
	buf_reset(out);
	for (const char *p = s; *p != '\0' && out->len < max; p++)
		buf_putc(out, (unsigned char)*p < 0x20 || *p == 0x7f ?
			 '?' : *p);
	return buf_cstr(out);
}

/* store_clean_source - a source made safe (store_clean) */
static const char *store_clean_source(const char *source, struct buf *out)
{
	return store_clean(source, 1000, out);
}

/* --- the filter ---------------------------------------------------------- */

static int store_key_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void store_supfilter_free(struct store_supfilter *f)
{
	free(f->keys);
	memset(f, 0, sizeof(*f));
}

int store_supfilter_load(struct store *st, const char *list,
			 bool transactional, int64_t after_id,
			 struct store_supfilter *f, int64_t *max_id_r,
			 const char **error_r)
{
	sqlite3_stmt *max = store_fb_stmt(st, FB_SUPPRESS_MAX_ID, error_r);
	sqlite3_stmt *load = store_fb_stmt(st, FB_SUPPRESS_LOAD, error_r);
	size_t before = f->count;
	int rc;

	if (max == NULL || load == NULL)
		return -1;
	rc = sqlite3_step(max);
	*max_id_r = rc == SQLITE_ROW ? sqlite3_column_int64(max, 0) : 0;
	sqlite3_reset(max);
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r,
				       "reading the suppression list");
	if (*max_id_r <= after_id)
		return 0;
	sqlite3_bind_int64(load, 1, after_id);
	sqlite3_bind_text(load, 2, list, -1, SQLITE_STATIC);
	sqlite3_bind_int(load, 3, transactional);
	while ((rc = sqlite3_step(load)) == SQLITE_ROW) {
		const char *key = store_column_text(load, 0);

		if (key == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (f->count == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 256;
			f->keys = xrealloc(f->keys,
					   f->cap * sizeof(*f->keys));
		}
		f->keys[f->count++] = store_addr_key(
			key, (size_t)sqlite3_column_bytes(load, 0));
	}
	sqlite3_reset(load);
	sqlite3_bind_null(load, 2);
	if (rc != SQLITE_DONE) {
		f->count = before;
		return store_fail_step(st, rc, error_r,
				       "reading the suppression list");
	}
	if (f->count > before)
		qsort(f->keys, f->count, sizeof(*f->keys), store_key_cmp);
	return 0;
}

static bool store_supfilter_has(const struct store_supfilter *f,
				int64_t key)
{
	return bsearch(&key, f->keys, f->count, sizeof(*f->keys),
		       store_key_cmp) != NULL;
}

bool store_supfilter_maybe(const struct store_supfilter *f,
			   const char *addr, size_t len)
{
	const char *dom;

	if (f->count == 0)
		return false;
	if (store_supfilter_has(f, store_addr_key(addr, len)))
		return true;
	dom = store_domain(addr, len);
	return dom != NULL &&
	       store_supfilter_has(f, store_addr_key(
			dom, len - (size_t)(dom - addr)));
}

/* --- the list ------------------------------------------------------------ */

int store_suppress_add(struct store *st, const struct store_suppression *s,
		       size_t n, size_t *added_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_fb_stmt(st, FB_SUPPRESS_INSERT, error_r);
	int64_t now = clock_wall_ms();
	struct buf source = BUF_INIT;
	size_t added = 0;
	int rc;

	if (added_r != NULL)
		*added_r = 0;
	if (stmt == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (store_suppress_check(st, s[i].address, error_r) < 0)
			return -1;
		if ((unsigned)s[i].reason >= SUPPRESS_REASON_COUNT)
			return store_fail(st, error_r, "%s: no such reason",
					  s[i].address);
		if (s[i].scope == NULL || s[i].scope[0] == '\0')
			return store_fail(st, error_r, "%s: no scope (a "
					  "list, or global)", s[i].address);
		if (store_has_control(s[i].scope))
			return store_fail(st, error_r, "%s: a list name "
					  "cannot hold control characters",
					  s[i].address);
	}
	if (store_begin(st, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(s[i].address);

		store_lower(&st->fb_key, s[i].address, len);
		sqlite3_bind_text(stmt, 1, st->fb_key.data, (int)len,
				  SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, s[i].address, (int)len,
				  SQLITE_STATIC);
		sqlite3_bind_int(stmt, 3, (int)s[i].reason);
		sqlite3_bind_text(stmt, 4, s[i].scope, -1, SQLITE_STATIC);
		store_bind_text_or_null(stmt, 5,
					store_clean_source(s[i].source,
							   &source));
		sqlite3_bind_int64(stmt, 6, s[i].campaign_id);
		sqlite3_bind_int64(stmt, 7, s[i].job_id);
		sqlite3_bind_int64(stmt, 8, s[i].created_at > 0 ?
				   s[i].created_at : now);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
		if (rc != SQLITE_DONE) {
			store_fail_step(st, rc, error_r, "adding to the "
					"suppression list");
			store_rollback(st);
			buf_free(&source);
			return -1;
		}
		added += (size_t)sqlite3_changes(st->db);
	}
	buf_free(&source);
	if (store_commit(st, error_r) < 0) {
		store_rollback(st);
		return -1;
	}
	if (added_r != NULL)
		*added_r = added;
	return 0;
}

int store_suppress_remove(struct store *st, const char *address,
			  const char *scope,
			  const enum store_suppress_reason *reason,
			  int64_t *n_r, const char **error_r)
{
	sqlite3_stmt *stmt;
	size_t len = strlen(address);
	int rc;

	*n_r = 0;
	if (sqlite3_prepare_v2(st->db, "DELETE FROM suppressions"
			       " WHERE key = ?1 AND (?2 IS NULL OR scope = ?2)"
			       " AND (?3 < 0 OR reason = ?3)", -1, &stmt,
			       NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "removing a suppression");
	store_lower(&st->fb_key, address, len);
	sqlite3_bind_text(stmt, 1, st->fb_key.data, (int)len,
			  SQLITE_STATIC);
	store_bind_text_or_null(stmt, 2, scope);
	sqlite3_bind_int(stmt, 3, reason != NULL ? (int)*reason : -1);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		*n_r = sqlite3_changes64(st->db);
	else
		store_fail_step(st, rc, error_r, "removing a suppression");
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* store_suppression_read - an entry from columns 0..6 of stmt */
static void store_suppression_read(sqlite3_stmt *stmt,
				   struct store_suppression *s)
{
	s->address = store_column_text(stmt, 0);
	s->reason = (enum store_suppress_reason)sqlite3_column_int(stmt, 1);
	s->scope = store_column_text(stmt, 2);
	s->source = store_column_text(stmt, 3);
	s->campaign_id = sqlite3_column_int64(stmt, 4);
	s->job_id = sqlite3_column_int64(stmt, 5);
	s->created_at = sqlite3_column_int64(stmt, 6);
}

int store_suppress_foreach(struct store *st, const char *scope,
			   const enum store_suppress_reason *reason,
			   store_suppression_fn *fn, void *ctx,
			   const char **error_r)
{
	struct store_suppression s;
	sqlite3_stmt *stmt;
	int rc, ret = 0;

	/* Private statement: fn may use the store meanwhile. */
	if (sqlite3_prepare_v2(st->db, "SELECT address, reason, scope,"
			       " source, coalesce(campaign_id, 0),"
			       " coalesce(job_id, 0), created_at"
			       " FROM suppressions"
			       " WHERE (?1 IS NULL OR scope = ?1)"
			       " AND (?2 < 0 OR reason = ?2) ORDER BY id",
			       -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r,
				     "reading the suppression list");
	store_bind_text_or_null(stmt, 1, scope);
	sqlite3_bind_int(stmt, 2, reason != NULL ? (int)*reason : -1);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		store_suppression_read(stmt, &s);
		ret = fn(ctx, &s);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_step(st, rc, error_r,
				      "reading the suppression list");
	sqlite3_finalize(stmt);
	return ret;
}

int store_suppress_find(struct store *st, const char *addr, size_t len,
			const char *list, bool transactional,
			struct store_suppression *s_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_fb_stmt(st, FB_SUPPRESS_FIND, error_r);
	const char *dom = store_domain(addr, len);
	size_t dom_off, str_off[4];
	int rc;

	if (stmt == NULL)
		return -1;
	/* the address and, inside it, its domain, in lower case */
	store_lower(&st->fb_key, addr, len);
	dom_off = dom != NULL ? (size_t)(dom - addr) : len;
	sqlite3_bind_text(stmt, 1, st->fb_key.data, (int)len,
			  SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, st->fb_key.data + dom_off,
			  (int)(len - dom_off), SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, list, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 4, transactional);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		struct store_suppression s;
		const char *strs[4];

		store_suppression_read(stmt, &s);
		strs[0] = s.address;
		strs[1] = s.scope;
		strs[2] = s.source;
		strs[3] = NULL;
		/* copied out: the statement is reset before we return */
		buf_reset(&st->fb_scratch);
		for (int i = 0; i < 3; i++) {
			str_off[i] = strs[i] != NULL ? st->fb_scratch.len :
				     (size_t)-1;
			if (strs[i] != NULL)
				buf_append(&st->fb_scratch, strs[i],
					   strlen(strs[i]) + 1);
		}
		*s_r = s;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r,
				       "reading the suppression list");
	s_r->address = st->fb_scratch.data + str_off[0];
	s_r->scope = st->fb_scratch.data + str_off[1];
	s_r->source = str_off[2] != (size_t)-1 ?
		      st->fb_scratch.data + str_off[2] : NULL;
	return 1;
}

void store_suppress_reply(const struct store_suppression *s,
			  struct buf *out)
{
	time_t t = (time_t)(s->created_at / 1000);
	struct tm tm;
	char when[32] = "?";

	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_reset(out);
	buf_printf(out, "suppressed: %s (%s%s, %s since %s",
		   store_suppress_reason_name(s->reason),
		   s->address[0] == '@' ? "domain " : "", s->address,
		   strcmp(s->scope, STORE_SCOPE_GLOBAL) == 0 ? "every list" :
		   s->scope, when);
	if (s->source != NULL)
		buf_printf(out, "; %s", s->source);
	buf_putc(out, ')');
}

/* --- claims -------------------------------------------------------------- */

/*
 * store_claim_cache - the claim cache of campaign_id, made on its first
 * claim; NULL on error
 */
static struct store_claim_cache *store_claim_cache(struct store *st,
						   int64_t campaign_id,
						   const char **error_r)
{
	sqlite3_stmt *list = store_fb_stmt(st, FB_CAMPAIGN_LIST, error_r);
	sqlite3_stmt *seen = store_fb_stmt(st, FB_CAMPAIGN_SEEN, error_r);
	struct store_claim_cache c = { 0 };
	int rc;

	for (size_t i = 0; i < st->claim_ncaches; i++) {
		if (st->claim_caches[i].campaign == campaign_id)
			return &st->claim_caches[i];
	}
	if (list == NULL || seen == NULL)
		return NULL;
	sqlite3_bind_int64(list, 1, campaign_id);
	rc = sqlite3_step(list);
	if (rc == SQLITE_ROW) {
		const char *l = store_column_text(list, 0);

		c.list = xstrdup(l != NULL ? l : STORE_LIST_DEFAULT);
		c.transactional = sqlite3_column_int(list, 1) != 0;
	}
	sqlite3_reset(list);
	if (rc != SQLITE_ROW) {
		store_fail_step(st, rc, error_r, "reading a campaign");
		return NULL;
	}
	sqlite3_bind_int64(seen, 1, campaign_id);
	rc = sqlite3_step(seen);
	c.upto = rc == SQLITE_ROW ? sqlite3_column_int64(seen, 0) : 0;
	sqlite3_reset(seen);
	if (rc != SQLITE_ROW) {
		free(c.list);
		store_fail_step(st, rc, error_r, "reading a campaign");
		return NULL;
	}
	c.campaign = campaign_id;
	st->claim_caches = xrealloc(st->claim_caches,
				    (st->claim_ncaches + 1) *
				    sizeof(*st->claim_caches));
	st->claim_caches[st->claim_ncaches] = c;
	return &st->claim_caches[st->claim_ncaches++];
}

void store_claim_forget(struct store *st)
{
	for (size_t i = 0; i < st->claim_ncaches; i++) {
		free(st->claim_caches[i].list);
		store_supfilter_free(&st->claim_caches[i].sup);
	}
	free(st->claim_caches);
	st->claim_caches = NULL;
	st->claim_ncaches = 0;
}

int store_claim_filter(struct store *st, int64_t campaign_id,
		       struct store_batch *batch, const struct buf *arena,
		       int64_t now, const char **error_r)
{
	struct store_claim_cache *cache;
	sqlite3_stmt *mark, *mark_queued, *stmt;
	struct store_suppression s;
	struct buf reply = BUF_INIT;
	int64_t max_id;
	size_t kept = 0;
	int ret = 0;

	cache = store_claim_cache(st, campaign_id, error_r);
	if (cache == NULL ||
	    store_supfilter_load(st, cache->list, cache->transactional,
				 cache->upto, &cache->sup, &max_id,
				 error_r) < 0)
		return -1;
	if (max_id > cache->upto)
		cache->upto = max_id;
	if (cache->sup.count == 0 || batch->count == 0)
		return 0;
	mark = store_fb_stmt(st, FB_JOB_SUPPRESS, error_r);
	mark_queued = store_fb_stmt(st, FB_JOB_SUPPRESS_QUEUED, error_r);
	if (mark == NULL || mark_queued == NULL)
		return -1;
	for (size_t i = 0; i < batch->count; i++) {
		struct store_job *job = &batch->jobs[i];
		const char *addr = arena->data + (uintptr_t)job->address;
		int rc = 0;

		if (store_supfilter_maybe(&cache->sup, addr,
					  job->address_len)) {
			rc = store_suppress_find(st, addr, job->address_len,
						 cache->list,
						 cache->transactional, &s,
						 error_r);
			if (rc < 0) {
				ret = -1;
				break;
			}
		}
		if (rc == 0) {
			batch->jobs[kept++] = *job;
			continue;
		}
		store_suppress_reply(&s, &reply);
		stmt = job->claim_id != 0 ? mark_queued : mark;
		sqlite3_bind_int64(stmt, 1, job->id);
		sqlite3_bind_text(stmt, 2, reply.data, (int)reply.len,
				  SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, now);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
		if (rc != SQLITE_DONE) {
			ret = store_fail_step(st, rc, error_r,
					      "suppressing a job");
			break;
		}
		store_count_move(st, campaign_id, job->claim_id != 0 ?
				 JOB_QUEUED : JOB_SENDING, JOB_SUPPRESSED,
				 sqlite3_changes(st->db));
		st->claim_suppressed++;
	}
	buf_free(&reply);
	if (ret == 0)
		batch->count = kept;
	return ret;
}

int64_t store_claim_suppressed(const struct store *st)
{
	return st->claim_suppressed;
}

/* --- finding a recipient ------------------------------------------------- */

int store_job_ref(struct store *st, int64_t job_id, struct store_job_ref *ref,
		  const char **error_r)
{
	sqlite3_stmt *stmt = store_fb_stmt(st, FB_JOB_REF, error_r);
	size_t off[3];
	int rc;

	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, job_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		static const int cols[3] = { 2, 3, 5 };

		buf_reset(&st->fb_scratch);
		for (int i = 0; i < 3; i++) {
			const char *v = store_column_text(stmt, cols[i]);

			off[i] = st->fb_scratch.len;
			buf_append(&st->fb_scratch, v ? v : "",
				   (v ? strlen(v) : 0) + 1);
		}
		ref->job_id = sqlite3_column_int64(stmt, 0);
		ref->campaign_id = sqlite3_column_int64(stmt, 1);
		ref->transactional = sqlite3_column_int(stmt, 4) != 0;
		ref->state = (enum job_state)sqlite3_column_int(stmt, 6);
	}
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail_step(st, rc, error_r, "reading a job");
	ref->campaign = st->fb_scratch.data + off[0];
	ref->list = st->fb_scratch.data + off[1];
	ref->address = st->fb_scratch.data + off[2];
	return 1;
}

/* --- bounces ------------------------------------------------------------- */

/* store_bounce_reason - the suppression b leads to, or -1 */
static int store_bounce_reason(struct store *st, const struct store_bounce *b,
			       const char *key, int64_t at,
			       const struct store_bounce_policy *policy,
			       const char **error_r)
{
	sqlite3_stmt *stmt;
	int64_t window, n;
	int limit, rc;

	if (strcmp(b->kind, "complaint") == 0)
		return SUPPRESS_COMPLAINT;
	if (b->hard)
		return SUPPRESS_HARD_BOUNCE;
	limit = policy != NULL && policy->soft_limit > 0 ?
		policy->soft_limit : STORE_SOFT_LIMIT_DEFAULT;
	window = policy != NULL && policy->soft_window_ms > 0 ?
		 policy->soft_window_ms : STORE_SOFT_WINDOW_DEFAULT;
	stmt = store_fb_stmt(st, FB_BOUNCE_SOFT_COUNT, error_r);
	if (stmt == NULL)
		return -2;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, at - window);
	sqlite3_bind_int64(stmt, 3, at);
	rc = sqlite3_step(stmt);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_ROW) {
		store_fail_step(st, rc, error_r, "counting soft bounces");
		return -2;
	}
	return n >= limit ? SUPPRESS_SOFT_BOUNCE : -1;
}

int store_bounce_add_locked(struct store *st, const struct store_bounce *b,
			    const struct store_bounce_policy *policy,
			    int *suppressed_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_fb_stmt(st, FB_BOUNCE_INSERT, error_r);
	sqlite3_stmt *sup = store_fb_stmt(st, FB_SUPPRESS_INSERT, error_r);
	const char *addr = b->address != NULL ? b->address : "";
	size_t len = strlen(addr);
	int64_t at = b->at > 0 ? b->at : clock_wall_ms();
	struct buf key = BUF_INIT, source = BUF_INIT, clean = BUF_INIT;
	struct buf clean_key = BUF_INIT, clean_text = BUF_INIT;
	struct buf clean_id = BUF_INIT, clean_enh = BUF_INIT;
	struct buf clean_addr = BUF_INIT;
	bool valid;
	int rc, reason, ret = -1;

	if (suppressed_r != NULL)
		*suppressed_r = -1;
	if (stmt == NULL || sup == NULL)
		return -1;
	/* what is no address is kept as text, but harmless to show */
	valid = len > 0 && store_suppress_check(st, addr, NULL) == 0;
	if (len > 0 && !valid) {
		addr = store_clean(addr, STORE_SUPPRESS_ADDR_MAX, &clean_addr);
		len = strlen(addr);
	}
	store_lower(&key, addr, len);
	sqlite3_bind_text(stmt, 1, store_clean(b->msg_key, 1000, &clean_key),
			  -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, b->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, addr, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, key.data, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, b->campaign_id);
	sqlite3_bind_int64(stmt, 6, b->job_id);
	store_bind_text_or_null(stmt, 7, b->matched_by);
	sqlite3_bind_text(stmt, 8, b->category != NULL ? b->category :
			  "other", -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 9, b->hard);
	sqlite3_bind_int(stmt, 10, b->code);
	store_bind_text_or_null(stmt, 11, store_clean(b->enhanced, 32,
							   &clean_enh));
	store_bind_text_or_null(stmt, 12, store_clean(b->text, 4000,
							   &clean_text));
	store_bind_text_or_null(stmt, 13, store_clean(b->original_id, 1000,
							   &clean_id));
	sqlite3_bind_int64(stmt, 14, at);
	sqlite3_bind_int(stmt, 15, b->sender_side);
	sqlite3_bind_int(stmt, 16, b->unverified);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE) {
		store_fail_step(st, rc, error_r, "recording a bounce");
		goto out;
	}
	if (sqlite3_changes(st->db) == 0) {
		ret = 0;	/* recorded before */
		goto out;
	}
	ret = 1;
	/* only a mailbox is suppressed for a bounce, never a domain */
	if (!valid || b->sender_side || b->unverified || addr[0] == '@')
		goto out;
	reason = store_bounce_reason(st, b, key.data, at, policy, error_r);
	if (reason == -2) {
		ret = -1;
		goto out;
	}
	if (reason < 0)
		goto out;
	if (strcmp(b->kind, "reply") == 0)
		buf_append_str(&source, "reply");
	else
		buf_printf(&source, "%s %s", b->kind, b->msg_key);
	if (b->code > 0)
		buf_printf(&source, ": %d%s%s", b->code,
			   b->enhanced != NULL ? " " : "",
			   b->enhanced != NULL ? b->enhanced : "");
	if (b->category != NULL)
		buf_printf(&source, " (%s)", b->category);
	sqlite3_bind_text(sup, 1, key.data, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(sup, 2, addr, (int)len, SQLITE_STATIC);
	sqlite3_bind_int(sup, 3, reason);
	sqlite3_bind_text(sup, 4, STORE_SCOPE_GLOBAL, -1, SQLITE_STATIC);
	store_clean_source(buf_cstr(&source), &clean);
	sqlite3_bind_text(sup, 5, clean.data, (int)clean.len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(sup, 6, b->campaign_id);
	sqlite3_bind_int64(sup, 7, b->job_id);
	sqlite3_bind_int64(sup, 8, at);
	rc = sqlite3_step(sup);
	sqlite3_reset(sup);
	sqlite3_clear_bindings(sup);
	if (rc != SQLITE_DONE) {
		store_fail_step(st, rc, error_r, "suppressing a bounce");
		ret = -1;
		goto out;
	}
	if (suppressed_r != NULL)
		*suppressed_r = reason;
out:
	buf_free(&key);
	buf_free(&source);
	buf_free(&clean);
	buf_free(&clean_key);
	buf_free(&clean_text);
	buf_free(&clean_id);
	buf_free(&clean_enh);
	buf_free(&clean_addr);
	return ret;
}

int store_bounce_add(struct store *st, const struct store_bounce *b,
		     const struct store_bounce_policy *policy,
		     int *suppressed_r, const char **error_r)
{
	int ret;

	if (b->msg_key == NULL || b->kind == NULL)
		return store_fail(st, error_r, "a bounce needs a key and a "
				  "kind");
	if (store_begin(st, error_r) < 0)
		return -1;
	ret = store_bounce_add_locked(st, b, policy, suppressed_r, error_r);
	if (ret < 0 || store_commit(st, error_r) < 0) {
		store_rollback(st);
		if (suppressed_r != NULL)
			*suppressed_r = -1;
		return -1;
	}
	return ret;
}

void store_set_bounce_policy(struct store *st,
			     const struct store_bounce_policy *policy)
{
	st->policy = *policy;
}

int store_bounce_foreach(struct store *st, int64_t campaign_id,
			 bool unmatched_only, store_bounce_fn *fn, void *ctx,
			 const char **error_r)
{
	struct store_bounce b;
	sqlite3_stmt *stmt;
	int rc, ret = 0;

	if (sqlite3_prepare_v2(st->db, "SELECT id, msg_key, kind,"
			       " nullif(address, ''),"
			       " coalesce(campaign_id, 0),"
			       " coalesce(job_id, 0), matched_by, category,"
			       " hard, code, enhanced, text, original_id, at"
			       " FROM bounces"
			       " WHERE (?1 = 0 OR campaign_id = ?1)"
			       " AND (?2 = 0 OR job_id IS NULL) ORDER BY id",
			       -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(st, error_r, "reading bounces");
	sqlite3_bind_int64(stmt, 1, campaign_id);
	sqlite3_bind_int(stmt, 2, unmatched_only);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		b.id = sqlite3_column_int64(stmt, 0);
		b.msg_key = store_column_text(stmt, 1);
		b.kind = store_column_text(stmt, 2);
		b.address = store_column_text(stmt, 3);
		b.campaign_id = sqlite3_column_int64(stmt, 4);
		b.job_id = sqlite3_column_int64(stmt, 5);
		b.matched_by = store_column_text(stmt, 6);
		b.category = store_column_text(stmt, 7);
		b.hard = sqlite3_column_int(stmt, 8) != 0;
		b.code = sqlite3_column_int(stmt, 9);
		b.enhanced = store_column_text(stmt, 10);
		b.text = store_column_text(stmt, 11);
		b.original_id = store_column_text(stmt, 12);
		b.at = sqlite3_column_int64(stmt, 13);
		ret = fn(ctx, &b);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_step(st, rc, error_r, "reading bounces");
	sqlite3_finalize(stmt);
	return ret;
}
