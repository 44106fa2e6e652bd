/* pg_observer (harness/pg_observer.h) against a real cluster: a SUT-role session left
 * idle in a transaction after reading `events` is seen in that state with its age and
 * its AccessShareLock, and blocks an ACCESS EXCLUSIVE probe until its lock timeout;
 * once it commits the probe gets through; once it closes it is no longer listed. The
 * observer's own session and other databases are never counted. */
#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_cluster.h"
#include "pg_observer.h"
#include "pg_passive.h"
#include "rc_clock.h"
#include "test_support.h"

static char *parent;
static pg_cluster_t *cluster;

static void setup(void) {
  parent = test_make_temp_dir("pgo");
  rc_error_t err;
  cluster = pg_cluster_start(parent, PG_CLUSTER_SCHEMA_REFWORKER, 60000, &err);
  if (cluster == NULL) fprintf(stderr, "%s\n", err.msg);
}

static void teardown(void) {
  pg_cluster_stop(cluster);
  test_remove_tree(parent);
  free(parent);
}

static void exec_ok(PGconn *conn, const char *sql) {
  PGresult *res = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
                PQerrorMessage(conn));
  PQclear(res);
}

static PGconn *sut_connect(const char *db, const char *app) {
  char *dsn = pg_cluster_sut_dsn(cluster, db, app);
  PGconn *conn = PQconnectdb(dsn);
  ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
  free(dsn);
  return conn;
}

static pg_observer_t *observe(const char *db) {
  char *dsn = pg_cluster_admin_dsn(cluster, db, "observer");
  rc_error_t err;
  pg_observer_t *o = pg_observer_connect(dsn, &err);
  ck_assert_msg(o != NULL, "%s", err.msg);
  free(dsn);
  return o;
}

static size_t session_count(pg_observer_t *o, pg_session_t **list) {
  size_t n;
  rc_error_t err;
  ck_assert_msg(pg_observer_sessions(o, list, &n, &err) == 0, "%s", err.msg);
  return n;
}

START_TEST(idle_transaction_and_locks) {
  ck_assert_msg(cluster != NULL, "no cluster (see stderr)");
  rc_error_t err;
  ck_assert_int_eq(pg_cluster_create_database(cluster, "obs_a", &err), 0);
  ck_assert_int_eq(pg_cluster_create_database(cluster, "obs_b", &err), 0);
  pg_observer_t *o = observe("obs_a");
  pg_session_t *list;
  ck_assert_uint_eq(session_count(o, &list), 0); /* its own session is not the SUT's */

  PGconn *sut = sut_connect("obs_a", "replcheck-observer-test");
  PGconn *other = sut_connect("obs_b", "elsewhere"); /* another test's database */
  exec_ok(sut, "BEGIN");
  exec_ok(sut, "SELECT room_id, max(stream_ordering) FROM events GROUP BY room_id");
  exec_ok(other, "BEGIN");
  exec_ok(other, "SELECT 1 FROM events LIMIT 1");
  struct timespec ts = {0, 300 * 1000000L};
  nanosleep(&ts, NULL);

  ck_assert_uint_eq(session_count(o, &list), 1);
  ck_assert_str_eq(list[0].state, "idle in transaction");
  ck_assert_str_eq(list[0].application_name, "replcheck-observer-test");
  ck_assert_int_ge(list[0].xact_age_ms, 250);
  ck_assert_int_ge(list[0].state_age_ms, 250);
  ck_assert_int_gt(list[0].client_port, 0);
  char text[512];
  pg_session_describe(&list[0], text, sizeof text);
  ck_assert_ptr_nonnull(strstr(text, "idle in transaction"));
  free(list);

  char locks[512];
  ck_assert_int_ge(pg_observer_idle_locks(o, locks, sizeof locks, &err), 1); /* table, index */
  ck_assert_msg(strstr(locks, "AccessShareLock on events granted") != NULL, "%s", locks);

  long waited;
  ck_assert_int_eq(pg_observer_lock_probe(o, "events", 300, &waited, &err), PG_PROBE_TIMED_OUT);
  ck_assert_int_ge(waited, 250);
  ck_assert_ptr_nonnull(strstr(err.msg, "lock timeout"));

  /* The same in halves: not answered while the holder keeps its lock, answered (timed
   * out) once the lock timeout has passed, polled without blocking. */
  ck_assert_int_eq(pg_observer_lock_probe_start(o, "events", 400, &err), 0);
  ck_assert(!pg_observer_lock_probe_ready(o));
  int64_t probe_deadline = rc_clock_mono_ms() + 5000;
  while (!pg_observer_lock_probe_ready(o) && rc_clock_mono_ms() < probe_deadline)
    nanosleep(&ts, NULL);
  ck_assert_int_eq(pg_observer_lock_probe_finish(o, &waited, &err), PG_PROBE_TIMED_OUT);
  ck_assert_int_ge(waited, 350);
  ck_assert_ptr_nonnull(strstr(err.msg, "lock timeout"));

  exec_ok(sut, "COMMIT");
  ck_assert_int_eq(pg_observer_lock_probe_start(o, "events", 5000, &err), 0);
  probe_deadline = rc_clock_mono_ms() + 5000;
  while (!pg_observer_lock_probe_ready(o) && rc_clock_mono_ms() < probe_deadline)
    nanosleep(&ts, NULL);
  ck_assert_int_eq(pg_observer_lock_probe_finish(o, &waited, &err), PG_PROBE_GRANTED);
  ck_assert_int_lt(waited, 5000);
  ck_assert_int_eq(pg_observer_idle_locks(o, NULL, 0, &err), 0);
  ck_assert_int_eq(pg_observer_lock_probe(o, "events", 300, &waited, &err), PG_PROBE_GRANTED);
  ck_assert_uint_eq(session_count(o, &list), 1);
  ck_assert_str_eq(list[0].state, "idle");
  ck_assert_int_eq(list[0].xact_age_ms, -1);
  free(list);

  PQfinish(sut);
  int64_t deadline = rc_clock_mono_ms() + 5000;
  size_t n;
  while ((n = session_count(o, &list)) != 0 && rc_clock_mono_ms() < deadline) {
    free(list);
    nanosleep(&ts, NULL);
  }
  free(list);
  ck_assert_uint_eq(n, 0);
  PQfinish(other);
  ck_assert_int_eq(pg_observer_lock_probe(o, "no;such", 300, &waited, &err), PG_PROBE_FAILED);
  pg_observer_destroy(o);
}
END_TEST

/* pg_passive (DB-03 on every test): on the event loop, a short transaction does not count,
 * a session idle in one past the limit does, with its description. */
START_TEST(passive_sampler) {
  ck_assert_msg(cluster != NULL, "no cluster (see stderr)");
  rc_error_t err;
  ck_assert_int_eq(pg_cluster_create_database(cluster, "obs_p", &err), 0);
  struct event_base *base = event_base_new();
  char *dsn = pg_cluster_admin_dsn(cluster, "obs_p", "sampler");
  pg_passive_t *p = pg_passive_start(base, dsn, 100, 400, &err);
  ck_assert_msg(p != NULL, "%s", err.msg);
  free(dsn);
  PGconn *sut = sut_connect("obs_p", "replcheck-passive");
  struct timeval run = {0, 300 * 1000};
  exec_ok(sut, "BEGIN");
  exec_ok(sut, "SELECT count(*) FROM events");
  event_base_loopexit(base, &run);
  event_base_dispatch(base);
  exec_ok(sut, "COMMIT");
  run.tv_usec = 600 * 1000;
  event_base_loopexit(base, &run);
  event_base_dispatch(base);
  ck_assert_ptr_null(pg_passive_violation(p)); /* 300 ms in a transaction: within the limit */
  exec_ok(sut, "BEGIN");
  exec_ok(sut, "SELECT count(*) FROM events");
  run.tv_sec = 1;
  run.tv_usec = 0;
  event_base_loopexit(base, &run);
  event_base_dispatch(base);
  const char *v = pg_passive_violation(p);
  ck_assert_ptr_nonnull(v);
  ck_assert_msg(strncmp(v, "DB-03: ", 7) == 0 && strstr(v, "'idle in transaction'") != NULL &&
                    strstr(v, "replcheck-passive") != NULL,
                "%s", v);
  pg_passive_stop(p);
  PQfinish(sut);
  event_base_free(base);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pg_observer");
  TCase *tc = tcase_create("observer");
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, idle_transaction_and_locks);
  tcase_add_test(tc, passive_sampler);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
