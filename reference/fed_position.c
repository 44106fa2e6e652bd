#include "fed_position.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlog.h"

#define WLOG_LOGGER "synapse.storage._base"

/* As db_store: seconds libpq waits for a connection, milliseconds a statement may run. */
#define FED_CONNECT_TIMEOUT_S "5"
#define FED_STATEMENT_TIMEOUT "SET statement_timeout = 5000"

/* One statement, so that autocommit makes it its own transaction: the UPDATE Synapse
 * runs, and the row it needs when there is none yet. Without the UPDATE privilege the
 * statement fails even when no row matches. */
#define FED_UPSERT_SQL                                                                   \
  "WITH updated AS (UPDATE federation_stream_position SET stream_id = $1 "              \
  "WHERE type = 'federation' AND instance_name = $2 RETURNING 1) "                      \
  "INSERT INTO federation_stream_position (type, stream_id, instance_name) "            \
  "SELECT 'federation', $1, $2 WHERE NOT EXISTS (SELECT 1 FROM updated)"

struct fed_position {
  struct event_base *base;
  char *dsn;
  char *instance;
  fed_position_done_fn done;
  void *done_arg;
  PGconn *conn;
  struct event *wake; /* the connection's socket */
  struct event *fail; /* reports a write that could not even be sent */
  bool busy;          /* a write is in flight (or its failure is about to be reported) */
  int64_t writing;    /* its token */
  bool want;          /* a token is waiting for the next write */
  int64_t wanted;
  char error[512]; /* a failure found before the statement was sent */
};

static void writer_close_conn(fed_position_t *w) {
  if (w->wake != NULL) {
    event_free(w->wake);
    w->wake = NULL;
  }
  PQfinish(w->conn);
  w->conn = NULL;
}

static void writer_wake_cb(evutil_socket_t fd, short what, void *arg);

/* Opens the connection and arms the socket event; false with w->error filled. */
static bool writer_connect(fed_position_t *w) {
  const char *const keys[] = {"dbname", "connect_timeout", NULL};
  const char *const values[] = {w->dsn, FED_CONNECT_TIMEOUT_S, NULL};
  w->conn = PQconnectdbParams(keys, values, 1);
  if (PQstatus(w->conn) != CONNECTION_OK) {
    snprintf(w->error, sizeof w->error, "cannot connect to the database: %s",
             PQerrorMessage(w->conn));
    writer_close_conn(w);
    return false;
  }
  PGresult *res = PQexec(w->conn, FED_STATEMENT_TIMEOUT);
  bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (ok) w->wake = event_new(w->base, PQsocket(w->conn), EV_READ | EV_PERSIST, writer_wake_cb, w);
  if (!ok || w->wake == NULL || event_add(w->wake, NULL) != 0) {
    snprintf(w->error, sizeof w->error, "cannot prepare the database connection: %s",
             PQerrorMessage(w->conn));
    writer_close_conn(w);
    return false;
  }
  return true;
}

/* Reports the end of the write in flight and starts the next one, if any. */
static void writer_finish(fed_position_t *w, const char *error) {
  int64_t token = w->writing;
  w->busy = false;
  /* A statement that failed leaves a usable connection; a broken one is reopened. */
  if (w->conn != NULL && PQstatus(w->conn) != CONNECTION_OK) writer_close_conn(w);
  w->done(w->done_arg, token, error);
  if (w->want && !w->busy) fed_position_save(w, w->wanted);
}

static void writer_fail_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  fed_position_t *w = arg;
  char error[sizeof w->error];
  snprintf(error, sizeof error, "%s", w->error);
  writer_finish(w, error);
}

/* The statement's results, once they are all in: the first error wins. */
static void writer_wake_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  fed_position_t *w = arg;
  if (!w->busy) {
    /* Nothing asked: the server closed the idle connection (or sent a notice). */
    if (PQconsumeInput(w->conn) == 0) writer_close_conn(w);
    return;
  }
  if (PQconsumeInput(w->conn) == 0) {
    char error[512];
    snprintf(error, sizeof error, "%s", PQerrorMessage(w->conn));
    writer_finish(w, error);
    return;
  }
  if (PQisBusy(w->conn)) return;
  char error[512] = "";
  PGresult *res;
  while ((res = PQgetResult(w->conn)) != NULL) {
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && error[0] == '\0')
      snprintf(error, sizeof error, "%s", PQresultErrorMessage(res));
    PQclear(res);
  }
  size_t len = strlen(error);
  while (len > 0 && (error[len - 1] == '\n' || error[len - 1] == ' ')) error[--len] = '\0';
  writer_finish(w, error[0] != '\0' ? error : NULL);
}

void fed_position_save(fed_position_t *w, int64_t token) {
  w->wanted = token;
  w->want = true;
  if (w->busy) return;
  w->busy = true;
  w->want = false;
  w->writing = token;
  w->error[0] = '\0';
  if (w->conn == NULL || PQstatus(w->conn) != CONNECTION_OK) {
    writer_close_conn(w);
    writer_connect(w);
  }
  if (w->conn != NULL) {
    char token_text[32];
    snprintf(token_text, sizeof token_text, "%" PRId64, token);
    const char *const params[] = {token_text, w->instance};
    if (PQsendQueryParams(w->conn, FED_UPSERT_SQL, 2, NULL, params, NULL, NULL, 0) == 1) return;
    snprintf(w->error, sizeof w->error, "%s", PQerrorMessage(w->conn));
    writer_close_conn(w);
  }
  /* Reported from the loop, never from inside the caller's call. */
  event_active(w->fail, EV_TIMEOUT, 0);
}

fed_position_t *fed_position_create(struct event_base *base, const char *dsn,
                                    const char *instance_name, fed_position_done_fn done,
                                    void *done_arg, rc_error_t *err) {
  fed_position_t *w = calloc(1, sizeof *w);
  if (w == NULL || (w->dsn = strdup(dsn)) == NULL || (w->instance = strdup(instance_name)) == NULL) {
    if (w != NULL) free(w->dsn);
    free(w);
    rc_error_set(err, "federation position: out of memory");
    return NULL;
  }
  w->base = base;
  if ((w->fail = evtimer_new(base, writer_fail_cb, w)) == NULL) {
    fed_position_destroy(w);
    rc_error_set(err, "federation position: cannot create an event");
    return NULL;
  }
  w->done = done;
  w->done_arg = done_arg;
  return w;
}

void fed_position_destroy(fed_position_t *w) {
  if (w == NULL) return;
  writer_close_conn(w);
  if (w->fail != NULL) event_free(w->fail);
  free(w->dsn);
  free(w->instance);
  free(w);
}
