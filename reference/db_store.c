#include "db_store.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.storage._base"
/* Synapse's logger for transaction starts and ends (seen in reference/synapse-1.66). */
#define TXN_LOGGER "synapse.storage.txn"

/* Seconds libpq waits for a connection; milliseconds a statement may run. */
#define DB_CONNECT_TIMEOUT_S "5"
#define DB_STATEMENT_TIMEOUT_MS 5000

/* Connections BUG_DB_CONN_NEVER_CLOSED drops without closing: kept reachable here so
 * the sanitizers do not report them as leaks, since dropping them is the point. */
#define DB_DROPPED_MAX 4
static PGconn *dropped[DB_DROPPED_MAX];

struct db_store {
  char *dsn;
  bug_set_t bugs;
  PGconn *pool;    /* the one pooled connection (cp_max 1), NULL until first use */
  PGconn *startup; /* BUG_DB_IDLE_IN_TRANSACTION: the start-up connection, still open */
  /* BUG_DB_CONN_PER_TRANSACTION: the connections given up for a new one, still open
   * (closed at exit, so only DB-05 sees them). */
  PGconn **abandoned;
  size_t abandoned_count, abandoned_cap;
  bgprocess_table_t *processes; /* charged with transactions; NULL until db_store_charge_to */
  unsigned long next_txn;       /* the n of the next "<desc>-<n>" */
};

/* BUG_DB_CONN_PER_TRANSACTION: the pooled connection is set aside, open, so the next
 * transaction opens another. Without room to keep it, it is closed (the bug just stops
 * growing). */
static void abandon_pool(db_store_t *store) {
  if (store->abandoned_count == store->abandoned_cap) {
    size_t cap = store->abandoned_cap ? store->abandoned_cap * 2 : 16;
    PGconn **grown = realloc(store->abandoned, cap * sizeof *grown);
    if (grown == NULL) {
      PQfinish(store->pool);
      store->pool = NULL;
      return;
    }
    store->abandoned = grown;
    store->abandoned_cap = cap;
  }
  store->abandoned[store->abandoned_count++] = store->pool;
  store->pool = NULL;
}

/* A transaction as Synapse's runInteraction names, logs and charges it. */
typedef struct db_txn {
  char name[96];
  int64_t started_ns;
} db_txn_t;

static void drop_connection(PGconn *conn) {
  for (size_t i = 0; i < DB_DROPPED_MAX; i++) {
    if (dropped[i] == NULL) {
      dropped[i] = conn;
      return;
    }
  }
}

/* Synapse's two warnings for work started outside any logcontext. */
static void warn_if_sentinel(const char *desc) {
  if (strcmp(wlog_context_current(), "sentinel") != 0) return;
  WLOG_WARNING("Starting db txn '%s' from sentinel context", desc);
  WLOG_WARNING("Starting db connection from sentinel context: metrics will be lost");
}

/* Names, logs and charges a transaction about to start (after warn_if_sentinel). */
static void txn_start(db_store_t *store, const char *desc, db_txn_t *txn) {
  snprintf(txn->name, sizeof txn->name, "%s-%lu", desc, store->next_txn++);
  txn->started_ns = rc_clock_mono_ns();
  wlog_write(TXN_LOGGER, __LINE__, WLOG_LEVEL_DEBUG, "[TXN START] {%s}", txn->name);
  bgprocess_charge_db_txn(store->processes, wlog_context_current());
}

static void txn_end(const db_txn_t *txn) {
  wlog_write(TXN_LOGGER, __LINE__, WLOG_LEVEL_DEBUG, "[TXN END] {%s} %.6f sec", txn->name,
             (double)(rc_clock_mono_ns() - txn->started_ns) / 1e9);
}

static PGconn *db_connect(const char *dsn, rc_error_t *err) {
  const char *const keys[] = {"dbname", "connect_timeout", NULL};
  const char *const values[] = {dsn, DB_CONNECT_TIMEOUT_S, NULL};
  PGconn *conn = PQconnectdbParams(keys, values, 1);
  if (PQstatus(conn) != CONNECTION_OK) {
    rc_error_set(err, "cannot connect to the database: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "SET statement_timeout = %d", DB_STATEMENT_TIMEOUT_MS);
  PGresult *res = PQexec(conn, sql);
  bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (!ok) {
    rc_error_set(err, "cannot set statement_timeout: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
  }
  return conn;
}

static int db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, int *rows,
                   rc_error_t *err) {
  PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(res);
  int rc = 0;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    rc = rc_error_set(err, "%s: %s", sql, PQerrorMessage(conn));
  else if (rows != NULL)
    *rows = PQntuples(res);
  PQclear(res);
  return rc;
}

/* The datastore's start-up read (#3682's prefill query) in one transaction. */
static int startup_read(db_store_t *store, PGconn *conn, rc_error_t *err) {
  warn_if_sentinel("stream_change_cache_prefill");
  db_txn_t txn;
  txn_start(store, "stream_change_cache_prefill", &txn);
  int rooms = 0;
  if (db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, NULL, err) != 0 ||
      db_exec(conn,
              "SELECT room_id, MAX(stream_ordering) FROM events WHERE stream_ordering > "
              "(SELECT coalesce(MAX(stream_ordering), 0) FROM events) - 100000 GROUP BY room_id",
              0, NULL, &rooms, err) != 0)
    return -1;
  wlog_write("synapse.storage.stream", __LINE__, WLOG_LEVEL_INFO,
             "Prefilled the stream change cache for %d room(s)", rooms);
  if (bugs_has(store->bugs, BUG_DB_IDLE_IN_TRANSACTION)) return 0;
  if (db_exec(conn, "COMMIT", 0, NULL, NULL, err) != 0) return -1;
  txn_end(&txn);
  return 0;
}

db_store_t *db_store_open(const char *dsn, bug_set_t bugs, rc_error_t *err) {
  db_store_t *store = calloc(1, sizeof *store);
  if (store == NULL || (store->dsn = strdup(dsn)) == NULL) {
    free(store);
    rc_error_set(err, "out of memory");
    return NULL;
  }
  store->bugs = bugs;
  wlog_write("synapse.server", __LINE__, WLOG_LEVEL_INFO, "Setting up.");
  PGconn *conn = db_connect(dsn, err);
  if (conn == NULL || startup_read(store, conn, err) != 0) {
    PQfinish(conn);
    db_store_close(store);
    return NULL;
  }
  /* Upstream's fix (#3764) ends the transaction; closing the connection too is what
   * DB-04 asks for. */
  if (bugs_has(bugs, BUG_DB_IDLE_IN_TRANSACTION))
    store->startup = conn;
  else if (bugs_has(bugs, BUG_DB_CONN_NEVER_CLOSED))
    drop_connection(conn);
  else
    PQfinish(conn);
  wlog_write("synapse.server", __LINE__, WLOG_LEVEL_INFO, "Finished setting up.");
  return store;
}

void db_store_charge_to(db_store_t *store, bgprocess_table_t *processes) {
  store->processes = processes;
}

int db_store_save_position(db_store_t *store, const char *stream, const char *instance,
                           int64_t token) {
  static const char desc[] = "store_stream_position";
  warn_if_sentinel(desc);
  rc_error_t err;
  if (store->pool != NULL && PQstatus(store->pool) != CONNECTION_OK) {
    PQfinish(store->pool);
    store->pool = NULL;
  }
  if (store->pool != NULL && bugs_has(store->bugs, BUG_DB_CONN_PER_TRANSACTION))
    abandon_pool(store);
  if (store->pool == NULL && (store->pool = db_connect(store->dsn, &err)) == NULL) {
    WLOG_WARNING("[TXN FAIL] {%s} %s", desc, err.msg);
    return -1;
  }
  char token_text[32];
  snprintf(token_text, sizeof token_text, "%" PRId64, token);
  const char *const params[] = {stream, instance, token_text};
  db_txn_t txn;
  txn_start(store, desc, &txn);
  int rc = db_exec(store->pool, "BEGIN", 0, NULL, NULL, &err);
  if (rc == 0)
    rc = db_exec(
        store->pool,
        "INSERT INTO stream_positions (stream_name, instance_name, stream_id) "
        "VALUES ($1, $2, $3) ON CONFLICT (stream_name, instance_name) "
        "DO UPDATE SET stream_id = GREATEST(stream_positions.stream_id, EXCLUDED.stream_id)",
        3, params, NULL, &err);
  if (rc == 0) rc = db_exec(store->pool, "COMMIT", 0, NULL, NULL, &err);
  if (rc == 0) txn_end(&txn);
  if (rc != 0) {
    WLOG_WARNING("[TXN FAIL] {%s} %s", txn.name, err.msg);
    rc_error_t ignored;
    db_exec(store->pool, "ROLLBACK", 0, NULL, NULL, &ignored);
  }
  return rc;
}

void db_store_close(db_store_t *store) {
  if (store == NULL) return;
  if (bugs_has(store->bugs, BUG_DB_CONN_NEVER_CLOSED)) {
    drop_connection(store->pool);
    drop_connection(store->startup);
  } else {
    PQfinish(store->pool);
    PQfinish(store->startup);
  }
  for (size_t i = 0; i < store->abandoned_count; i++) PQfinish(store->abandoned[i]);
  free(store->abandoned);
  free(store->dsn);
  free(store);
}
