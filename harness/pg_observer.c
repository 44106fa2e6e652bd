#include "pg_observer.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_cluster.h"
#include "rc_clock.h"

#define PG_OBSERVER_STATEMENT_TIMEOUT_MS "15000"

struct pg_observer {
  PGconn *conn;
  int64_t probe_started_ms; /* when the lock probe's LOCK was sent */
};

/* Ages in milliseconds from clock_timestamp(): now() would be the start of this
 * statement's own transaction, the same thing here, but says less. */
static const char SESSIONS_SQL[] =
    "SELECT pid, coalesce(state, ''), coalesce(application_name, ''), "
    "coalesce(client_port, -1), "
    "coalesce((extract(epoch FROM clock_timestamp() - xact_start) * 1000)::bigint, -1), "
    "coalesce((extract(epoch FROM clock_timestamp() - state_change) * 1000)::bigint, -1), "
    "left(coalesce(query, ''), 150) "
    "FROM pg_stat_activity WHERE datname = current_database() AND usename = '" PG_CLUSTER_SUT_ROLE
    "' AND pid <> pg_backend_pid() ORDER BY pid";

static const char LOCKS_SQL[] =
    "SELECT l.pid, coalesce(a.state, ''), l.mode, coalesce(c.relname, l.relation::text), "
    "l.granted FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "LEFT JOIN pg_class c ON c.oid = l.relation "
    "WHERE l.locktype = 'relation' AND a.datname = current_database() AND a.usename = "
    "'" PG_CLUSTER_SUT_ROLE
    "' AND l.pid <> pg_backend_pid() AND coalesce(c.relname, '') NOT LIKE "
    "'pg\\_%' ORDER BY l.pid, 4";

pg_observer_t *pg_observer_connect(const char *dsn, rc_error_t *err) {
  pg_observer_t *o = calloc(1, sizeof *o);
  if (o == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  /* Bounds on every wait of ours: a server that stops answering is an ERROR, not a
   * hung test. The lock probe sets its own, shorter lock_timeout. */
  const char *const keys[] = {"dbname", "connect_timeout", "options", NULL};
  const char *const values[] = {dsn, "10", "-c statement_timeout=" PG_OBSERVER_STATEMENT_TIMEOUT_MS,
                                NULL};
  o->conn = PQconnectdbParams(keys, values, 1);
  if (PQstatus(o->conn) != CONNECTION_OK) {
    rc_error_set(err, "the harness cannot connect to the test database (%s): %s", dsn,
                 PQerrorMessage(o->conn));
    pg_observer_destroy(o);
    return NULL;
  }
  return o;
}

void pg_observer_destroy(pg_observer_t *o) {
  if (o == NULL) return;
  PQfinish(o->conn);
  free(o);
}

static void copy_field(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src);
}

static PGresult *query(pg_observer_t *o, const char *sql, rc_error_t *err) {
  PGresult *res = PQexec(o->conn, sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    rc_error_set(err, "observer query failed: %s", PQerrorMessage(o->conn));
    PQclear(res);
    return NULL;
  }
  return res;
}

int pg_observer_sessions(pg_observer_t *o, pg_session_t **sessions, size_t *count,
                         rc_error_t *err) {
  *sessions = NULL;
  *count = 0;
  PGresult *res = query(o, SESSIONS_SQL, err);
  if (res == NULL) return -1;
  int rows = PQntuples(res);
  pg_session_t *list = rows > 0 ? calloc((size_t)rows, sizeof *list) : NULL;
  if (rows > 0 && list == NULL) {
    PQclear(res);
    return rc_error_set(err, "out of memory");
  }
  for (int i = 0; i < rows; i++) {
    pg_session_t *s = &list[i];
    s->pid = atoi(PQgetvalue(res, i, 0));
    copy_field(s->state, sizeof s->state, PQgetvalue(res, i, 1));
    copy_field(s->application_name, sizeof s->application_name, PQgetvalue(res, i, 2));
    s->client_port = atoi(PQgetvalue(res, i, 3));
    s->xact_age_ms = atol(PQgetvalue(res, i, 4));
    s->state_age_ms = atol(PQgetvalue(res, i, 5));
    copy_field(s->query, sizeof s->query, PQgetvalue(res, i, 6));
    for (char *p = s->query; *p; p++)
      if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  }
  PQclear(res);
  *sessions = list;
  *count = (size_t)rows;
  return 0;
}

void pg_session_describe(const pg_session_t *s, char *buf, size_t cap) {
  char xact[48] = "no transaction";
  if (s->xact_age_ms >= 0) snprintf(xact, sizeof xact, "transaction open %ld ms", s->xact_age_ms);
  snprintf(buf, cap,
           "backend pid %d (application_name '%s', client port %d): state '%s' for %ld ms, "
           "%s, last query: %s",
           s->pid, s->application_name, s->client_port, s->state, s->state_age_ms, xact, s->query);
}

int pg_observer_idle_locks(pg_observer_t *o, char *buf, size_t cap, rc_error_t *err) {
  if (buf != NULL && cap > 0) buf[0] = '\0';
  PGresult *res = query(o, LOCKS_SQL, err);
  if (res == NULL) return -1;
  int idle = 0;
  size_t used = 0;
  for (int i = 0; i < PQntuples(res); i++) {
    const char *state = PQgetvalue(res, i, 1);
    bool granted = strcmp(PQgetvalue(res, i, 4), "t") == 0;
    if (granted && strncmp(state, "idle in transaction", 19) == 0) idle++;
    if (buf != NULL && used + 1 < cap) {
      int n = snprintf(buf + used, cap - used, "%spid %s (%s) %s on %s %s", used ? "; " : "",
                       PQgetvalue(res, i, 0), state, PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                       granted ? "granted" : "waiting");
      used = n < 0 ? used : (size_t)n >= cap - used ? cap - 1 : used + (size_t)n;
    }
  }
  PQclear(res);
  return idle;
}

int pg_observer_exec(pg_observer_t *o, const char *sql, rc_error_t *err) {
  PGresult *res = PQexec(o->conn, sql);
  ExecStatusType st = PQresultStatus(res);
  int rc = 0;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    rc = rc_error_set(err, "%s: %s", sql, PQerrorMessage(o->conn));
  PQclear(res);
  return rc;
}

int pg_observer_lock_probe_start(pg_observer_t *o, const char *table, int lock_timeout_ms,
                                 rc_error_t *err) {
  for (const char *p = table; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9')))
      return rc_error_set(err, "table name '%s' is not a plain identifier", table);
  char sql[160];
  if (pg_observer_exec(o, "BEGIN", err) != 0) return -1;
  snprintf(sql, sizeof sql, "SET LOCAL lock_timeout = '%dms'", lock_timeout_ms);
  if (pg_observer_exec(o, sql, err) == 0) {
    snprintf(sql, sizeof sql, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table);
    o->probe_started_ms = rc_clock_mono_ms();
    if (PQsendQuery(o->conn, sql) == 1) return 0;
    rc_error_set(err, "%s: %s", sql, PQerrorMessage(o->conn));
  }
  rc_error_t ignored;
  pg_observer_exec(o, "ROLLBACK", &ignored);
  return -1;
}

bool pg_observer_lock_probe_ready(pg_observer_t *o) {
  /* A failed read means the answer will not come: finish reports the error. */
  return PQconsumeInput(o->conn) == 0 || PQisBusy(o->conn) == 0;
}

pg_probe_result_t pg_observer_lock_probe_finish(pg_observer_t *o, long *waited_ms,
                                                rc_error_t *err) {
  pg_probe_result_t result = PG_PROBE_FAILED;
  bool answered = false;
  /* PQgetResult blocks until the answer (the server ends the LOCK at its lock timeout);
   * the loop drains every result of the one statement. */
  for (PGresult *res; (res = PQgetResult(o->conn)) != NULL; PQclear(res)) {
    if (answered) continue;
    answered = true;
    *waited_ms = (long)(rc_clock_mono_ms() - o->probe_started_ms);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
      result = PG_PROBE_GRANTED;
    } else {
      const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      /* 55P03 lock_not_available: what lock_timeout raises. */
      result = state != NULL && strcmp(state, "55P03") == 0 ? PG_PROBE_TIMED_OUT : PG_PROBE_FAILED;
      rc_error_set(err, "LOCK TABLE: %s", PQerrorMessage(o->conn));
    }
  }
  if (!answered) {
    *waited_ms = (long)(rc_clock_mono_ms() - o->probe_started_ms);
    rc_error_set(err, "LOCK TABLE: no answer: %s", PQerrorMessage(o->conn));
  }
  rc_error_t ignored;
  pg_observer_exec(o, "ROLLBACK", &ignored);
  return result;
}

pg_probe_result_t pg_observer_lock_probe(pg_observer_t *o, const char *table, int lock_timeout_ms,
                                         long *waited_ms, rc_error_t *err) {
  *waited_ms = 0;
  if (pg_observer_lock_probe_start(o, table, lock_timeout_ms, err) != 0) return PG_PROBE_FAILED;
  return pg_observer_lock_probe_finish(o, waited_ms, err);
}
