/*
 * store_schema - the store's schema history (private to store/ and tests).
 *
 * store_migrations[i] takes a store from user_version i to i + 1; a new
 * store runs them all.  Never edit a step that has shipped: add one.
 * Tests use the steps to build a store as an older volley left it.
 */
#ifndef VOLLEY_STORE_SCHEMA_H
#define VOLLEY_STORE_SCHEMA_H

extern const char *const store_migrations[];
extern const int store_migration_count;
/* after this step the jobs table's state CHECK is widened, in C */
extern const int store_migration_widen_state;
/* this step drops the counting trigger: refused while an older volley
 * may be sending from the store (it would go on uncounted) */
extern const int store_migration_counts_in_c;
/* this step brings leases per claim: refused likewise (an older volley
 * would lease queued jobs that a claim holds) */
extern const int store_migration_claims;
/* this step brings the journal of results: refused likewise (an older
 * volley would claim again jobs whose result is in the journal) */
extern const int store_migration_journal;

/*
 * The jobs index a large import drops and builds again at its end
 * (store_import_add): SQL that drops it, and SQL that makes it as the
 * current schema defines it.
 */
extern const char store_job_indexes_drop[];
extern const char store_job_indexes_create[];

#endif
