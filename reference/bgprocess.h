/* bgprocess: named background processes, like Synapse's run_as_background_process
 * (spec seed-behaviours §1.4, seeds C, D, G).
 *
 * A run of a process named `desc`:
 *   - counts one start in synapse_background_process_start_count{name=desc} and is in
 *     flight (synapse_background_process_in_flight_count{name=desc}) until it finishes;
 *     a name once seen keeps reporting, 0 when idle;
 *   - has the log context "<desc>-<n>", n counting the runs of that name from 0, which
 *     the owner enters while it works for the run (bgprocess_enter) and which is still
 *     valid until the run is finished;
 *   - is charged the database transactions run in its context
 *     (synapse_background_process_db_txn_count{name=desc}, BG-04; bgprocess_charge_db_txn).
 * The owner decides when the work is over (bgprocess_finish): a run may outlive the call
 * that started it, e.g. while an HTTP catch-up it started is in flight.
 *
 * Replication command handlers are started as BGPROCESS_HANDLER runs. Three re-introduced
 * bugs (bugs.h) act on those only:
 *   - BUG_HANDLERS_NOT_BACKGROUND: a handler run is no background process: nothing is
 *     counted and its context is the sentinel;
 *   - BUG_FIRE_AND_FORGET: a handler run leaves the in-flight count as soon as the
 *     handler's synchronous part returns (bgprocess_returned), not when its work ends;
 *   - BUG_UNHANDLED_BACKGROUND_ERROR: bgprocess_report_exception does not log at once
 *     but, like Twisted's garbage-collection report, writes CRITICAL
 *     "Unhandled error in Deferred:" (logger "twisted") BGPROCESS_UNHANDLED_DELAY_MS
 *     later, in whatever context is current then.
 * Two more act on other runs: BUG_CACHE_PRUNE_STAYS_IN_FLIGHT (a BGPROCESS_REAPER run
 * never leaves the in-flight count) and BUG_DB_TXN_NOT_CHARGED (no transaction is
 * charged to any process).
 *
 * Ownership: the table owns its runs' names and metrics series; a run is owned by whoever
 * started it until bgprocess_finish frees it. Destroy the table after every run has
 * finished. Single-threaded: the thread running `base`. */
#ifndef BGPROCESS_H
#define BGPROCESS_H

#include <event2/event.h>

#include "bugs.h"
#include "handler_error.h"
#include "metrics.h"
#include "rc_error.h"

#define BGPROCESS_UNHANDLED_DELAY_MS 2000

typedef struct bgprocess_table bgprocess_table_t;
typedef struct bgprocess bgprocess_t;

typedef enum bgprocess_kind {
  BGPROCESS_TASK = 1, /* internal work, e.g. a cache's reaper */
  BGPROCESS_HANDLER,  /* a replication command handler (subject to bugs C, D, G) */
  BGPROCESS_REAPER,   /* a cache's reaper tick (subject to BUG_CACHE_PRUNE_STAYS_IN_FLIGHT) */
} bgprocess_kind_t;

/* Declares the three metric families in `metrics` (borrowed, must outlive the table).
 * `bugs` may hold any bugs; only the ones named above matter here. Returns NULL with err filled. */
bgprocess_table_t *bgprocess_table_create(struct event_base *base, metrics_t *metrics,
                                          bug_set_t bugs, rc_error_t *err);
/* Frees the table and any exception report still pending (it is never written). Runs
 * not yet finished must not be used afterwards. NULL is fine. */
void bgprocess_table_destroy(bgprocess_table_t *table);

/* Starts a run of `desc`. Returns NULL only when memory runs out or table is NULL (then
 * nothing is counted; every function below accepts NULL and does nothing, or enters the
 * sentinel). */
bgprocess_t *bgprocess_start(bgprocess_table_t *table, bgprocess_kind_t kind, const char *desc);

/* Makes the run's context the current log context. */
void bgprocess_enter(const bgprocess_t *run);
/* "<desc>-<n>", or "sentinel" for a handler run under BUG_HANDLERS_NOT_BACKGROUND. */
const char *bgprocess_context(const bgprocess_t *run);
const char *bgprocess_desc(const bgprocess_t *run);

/* The synchronous part of a handler has returned (its work may go on). Only
 * BUG_FIRE_AND_FORGET acts on it. */
void bgprocess_returned(bgprocess_t *run);
/* The work is over: the run leaves the in-flight count (if still in it) and is freed. */
void bgprocess_finish(bgprocess_t *run);

/* Reports an exception a handler raised, in the current log context: one record at
 * ERROR with `logger`/`lineno` and the message fmt..., the traceback on the next lines
 * (or, under BUG_UNHANDLED_BACKGROUND_ERROR, the delayed CRITICAL report instead). A NULL
 * table logs at once. */
void bgprocess_report_exception(bgprocess_table_t *table, const char *logger, int lineno,
                                const handler_error_t *error, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Reports an exception that the handler logs and raises again (Synapse's
 * logger.exception(...); raise): one ERROR record with the traceback, at once, unless
 * BUG_UNHANDLED_BACKGROUND_ERROR, under which the only trace of the failure is the
 * delayed report of the bgprocess_report_exception that follows. */
void bgprocess_report_reraised(bgprocess_table_t *table, const char *logger, int lineno,
                               const handler_error_t *error, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Charges one database transaction to the background process whose log context is
 * `context` ("<desc>-<n>" as bgprocess_context gives it), like Synapse's per-context
 * resource usage reported per process name. A context of no known process (the
 * sentinel, "main", a request) is charged to nothing. NULL table: nothing. */
void bgprocess_charge_db_txn(bgprocess_table_t *table, const char *context);

/* Runs of `desc` started so far and in flight now (0 for an unknown name). */
double bgprocess_start_count(const bgprocess_table_t *table, const char *desc);
double bgprocess_in_flight(const bgprocess_table_t *table, const char *desc);
/* Database transactions charged to `desc` (0 for an unknown name). */
double bgprocess_db_txn_count(const bgprocess_table_t *table, const char *desc);

#endif
