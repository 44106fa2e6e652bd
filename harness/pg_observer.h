/* pg_observer: the harness's own view of one test database (pg_cluster.h), through a
 * libpq session as the cluster's superuser: which sessions the SUT holds and in which
 * state (pg_stat_activity), which table locks they hold (pg_locks), and whether a DDL
 * lock of the kind #3682 was stuck behind gets through within a lock timeout.
 *
 * SUT sessions are the backends of the observed database logged in as
 * PG_CLUSTER_SUT_ROLE (the role every {db_dsn} names); the observer's own session is
 * never one of them. Evidence strings show application_name, so a profile's DSN can be
 * checked too.
 *
 * Ownership: the observer owns its connection; one thread; calls block for at most the
 * statement they run (any statement for at most 15 s, the session's statement_timeout;
 * connecting for at most 10 s). The lock probe also comes in two halves, so a caller
 * can keep its event loop turning while the LOCK waits (up to its lock timeout). */
#ifndef PG_OBSERVER_H
#define PG_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "rc_error.h"

typedef struct pg_observer pg_observer_t;

/* One SUT session at the time of the query. */
typedef struct pg_session {
  int pid;        /* backend pid */
  char state[32]; /* "idle", "active", "idle in transaction", ... */
  char application_name[64];
  int client_port;   /* the SUT's local port, -1 when unknown */
  long xact_age_ms;  /* how long its transaction has been open; -1 = none */
  long state_age_ms; /* how long it has been in `state` */
  char query[160];   /* its last statement, truncated */
} pg_session_t;

/* Connects with the libpq connection string dsn (the superuser's, for the test
 * database). NULL with err. */
pg_observer_t *pg_observer_connect(const char *dsn, rc_error_t *err);
void pg_observer_destroy(pg_observer_t *observer);

/* The SUT's sessions now: *sessions gets a malloc'd array (caller frees; NULL when
 * empty) of *count entries. Returns 0, or -1 with err. */
int pg_observer_sessions(pg_observer_t *observer, pg_session_t **sessions, size_t *count,
                         rc_error_t *err);

/* "pid 123 app=x state='idle in transaction' for 5012 ms, xact 5013 ms: SELECT ..." */
void pg_session_describe(const pg_session_t *s, char *buf, size_t cap);

/* Table locks the SUT's sessions hold now, described one per "; "-separated item
 * ("pid 123 (idle in transaction) AccessShareLock on events granted"); returns how
 * many are granted locks held by sessions idle in a transaction (the #3682 shape), or
 * -1 with err. buf may be NULL. */
int pg_observer_idle_locks(pg_observer_t *observer, char *buf, size_t cap, rc_error_t *err);

typedef enum pg_probe_result {
  PG_PROBE_GRANTED = 0,   /* the lock was obtained (and released at once) */
  PG_PROBE_TIMED_OUT = 1, /* lock_timeout expired: someone holds a conflicting lock */
  PG_PROBE_FAILED = -1,   /* another error (err says which) */
} pg_probe_result_t;

/* Runs `LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE` in a transaction with
 * lock_timeout = lock_timeout_ms, then rolls back. table must be a plain identifier.
 * *waited_ms gets how long the LOCK took. Blocks: start + finish below. */
pg_probe_result_t pg_observer_lock_probe(pg_observer_t *observer, const char *table,
                                         int lock_timeout_ms, long *waited_ms, rc_error_t *err);

/* The same in halves. start opens the transaction, sets the lock timeout and sends the
 * LOCK without waiting for it; returns 0, or -1 with err (nothing is left open then).
 * ready says, without blocking, whether the answer has come (true also when the
 * connection failed: finish then says how). finish waits for the answer if it has not
 * come (at most the lock timeout), rolls back and returns the result as above; it must
 * follow every successful start before any other call on the observer. */
int pg_observer_lock_probe_start(pg_observer_t *observer, const char *table, int lock_timeout_ms,
                                 rc_error_t *err);
bool pg_observer_lock_probe_ready(pg_observer_t *observer);
pg_probe_result_t pg_observer_lock_probe_finish(pg_observer_t *observer, long *waited_ms,
                                                rc_error_t *err);

/* Runs one statement (no result wanted). Returns 0, or -1 with err. */
int pg_observer_exec(pg_observer_t *observer, const char *sql, rc_error_t *err);

#endif
