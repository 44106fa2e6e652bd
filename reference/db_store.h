/* db_store: refworker's PostgreSQL side (--db DSN), the seed B behaviour done right.
 *
 * db_store_open() does what Synapse's datastore initialisation does on a connection of
 * its own: in one REPEATABLE READ transaction it reads the `events` table (the
 * stream-change-cache prefill query of #3682), then commits and closes that connection.
 * Afterwards stream positions are stored with db_store_save_position(), each in a short
 * transaction of its own on one pooled connection (pool size 1, opened on first use,
 * reopened after a failure). db_store_close() closes every connection it opened.
 *
 * Transactions carry the logcontext current at the call (wlog.h); one started from the
 * sentinel logs Synapse's WARNINGs `Starting db txn '<desc>' from sentinel context` and
 * `Starting db connection from sentinel context: metrics will be lost` (logger
 * synapse.storage._base, seed-behaviours.md §1.3). Each transaction is named
 * "<desc>-<n>" (n counting all transactions from 0), logged at DEBUG as Synapse's
 * `[TXN START] {<name>}` / `[TXN END] {<name>} <seconds> sec` (logger synapse.storage.txn)
 * and charged to the background process of the current context (BG-04, bgprocess.h).
 *
 * libpq is used synchronously on the event loop's thread: each statement is a one-row
 * read or upsert on a loopback server, and statement_timeout / connect_timeout bound
 * the rare slow case, whereas an asynchronous client would add a second state machine
 * next to the replication one for no observable gain (the harness looks at session
 * state, not latency).
 *
 * Bugs (bugs.h): BUG_DB_IDLE_IN_TRANSACTION leaves the start-up transaction open and
 * its connection idle in it until exit; BUG_DB_CONN_NEVER_CLOSED commits it but keeps
 * the connection, and closes nothing at exit (the process drops the sockets);
 * BUG_DB_CONN_PER_TRANSACTION opens a new connection for every stored position and
 * leaves the previous one open and idle until exit (then closes it).
 * Ownership: the caller owns the store; single-threaded. */
#ifndef DB_STORE_H
#define DB_STORE_H

#include <stdint.h>

#include "bgprocess.h"
#include "bugs.h"
#include "rc_error.h"

typedef struct db_store db_store_t;

/* Connects, runs the start-up read and ends it (see above). NULL with err when the
 * database cannot be reached or the read fails. */
db_store_t *db_store_open(const char *dsn, bug_set_t bugs, rc_error_t *err);

/* Transactions from now on are charged to the background processes of `processes`
 * (borrowed; must outlive the store, or be replaced by NULL first). */
void db_store_charge_to(db_store_t *store, bgprocess_table_t *processes);

/* Stores stream position `token` of (stream, instance) in a transaction named
 * "store_stream_position". Failures are logged (WARNING), not fatal: returns 0 or -1. */
int db_store_save_position(db_store_t *store, const char *stream, const char *instance,
                           int64_t token);

/* Closes every connection and frees. NULL is fine. */
void db_store_close(db_store_t *store);

#endif
