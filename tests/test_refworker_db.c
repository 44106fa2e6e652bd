/* refworker --db (reference/db_store.h) against a real PostgreSQL cluster and a plain
 * listening socket playing the main process (modern dialect): the start-up read of
 * `events` ends with its connection closed (seed B, #3764), stream positions land in
 * `stream_positions` through one pooled connection in short transactions, every
 * connection is closed (not dropped) at SIGTERM, and each bug switch brings back its
 * behaviour: an idle-in-transaction start-up session, a start-up session left open
 * and connections dropped at exit, db transactions started from the sentinel, and
 * transactions not charged to the handling background process (BG-04: Synapse's
 * `[TXN START] {<desc>-<n>}` under the handler's context and
 * synapse_background_process_db_txn_count on its metrics page). */
#include <check.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_probe.h"
#include "pg_cluster.h"
#include "prom.h"
#include "rc_clock.h"
#include "rc_net.h"
#include "test_support.h"

static char *parent;
static pg_cluster_t *cluster;

static void cluster_setup(void) {
  parent = test_make_temp_dir("pgr");
  rc_error_t err;
  cluster = pg_cluster_start(parent, PG_CLUSTER_SCHEMA_REFWORKER, 60000, &err);
  if (cluster == NULL) fprintf(stderr, "%s\n", err.msg);
}

static void cluster_teardown(void) {
  pg_cluster_stop(cluster);
  test_remove_tree(parent);
  free(parent);
}

/* ---- per test: a database, a listener, the worker --------------------------------- */

static char db[64];
static char *dir, *log_path;
static int listen_fd = -1, peer_fd = -1;
static pid_t child = -1;
static char http_port[16]; /* the worker's --http-port ("" = none) */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void setup(void) {
  ck_assert_msg(cluster != NULL, "no cluster (see stderr)");
  static int n;
  snprintf(db, sizeof db, "rwdb_%ld_%d", (long)getpid(), ++n);
  rc_error_t err;
  ck_assert_msg(pg_cluster_create_database(cluster, db, &err) == 0, "%s", err.msg);
  dir = test_make_temp_dir("rwdb");
  log_path = test_path(dir, "worker.log");
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(listen_fd, 4), 0);
  http_port[0] = '\0';
}

static void teardown(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
  }
  if (peer_fd >= 0) close(peer_fd);
  if (listen_fd >= 0) close(listen_fd);
  peer_fd = listen_fd = -1;
  test_remove_tree(dir);
  free(dir);
  free(log_path);
}

/* Starts refworker against this test's database (or dsn_override) with `bug` (may be
 * NULL) and the NULL-terminated `extra` arguments (may be NULL). */
static void worker_start_with(const char *bug, const char *dsn_override,
                              const char *const *extra) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  ck_assert_int_eq(getsockname(listen_fd, (struct sockaddr *)&a, &len), 0);
  char port[16];
  snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
  char *dsn =
      dsn_override ? strdup(dsn_override) : pg_cluster_sut_dsn(cluster, db, "refworker-test");
  char *bin = test_path(test_env("REPLCHECK_BIN_DIR"), "refworker");
  const char *argv[32] = {bin,          "--host",
                          "127.0.0.1",  "--port",
                          port,         "--server-name",
                          "test.local", "--dialect",
                          "modern",     "--log",
                          log_path,     "--ping-interval-ms",
                          "200",        "--ping-timeout-ms",
                          "5000",       "--reconnect-initial-ms",
                          "100",        "--reconnect-max-ms",
                          "200",        "--db",
                          dsn};
  size_t n = 21;
  if (bug != NULL) {
    argv[n++] = "--bug";
    argv[n++] = bug;
  }
  if (http_port[0] != '\0') {
    argv[n++] = "--http-port";
    argv[n++] = http_port;
  }
  for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++) argv[n++] = extra[i];
  pid_t parent_pid = getpid();
  child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid) _exit(127);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  free(bin);
  free(dsn);
}

static void worker_start(const char *bug, const char *dsn_override) {
  worker_start_with(bug, dsn_override, NULL);
}

static bool log_wait_for(const char *needle, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    char *text = test_read_file(log_path, NULL);
    bool found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    if (found) return true;
    if (rc_clock_mono_ms() >= deadline) return false;
    sleep_ms(20);
  }
}

/* A superuser session on this test's database. */
static PGconn *admin_connect(const char *app) {
  char *dsn = pg_cluster_admin_dsn(cluster, db, app);
  PGconn *conn = PQconnectdb(dsn);
  free(dsn);
  ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
  return conn;
}

/* Runs sql as the superuser, which must end with status `want`; the first value of a
 * query's result (malloc'd, "" when no row), NULL for a command. */
static char *admin_run(const char *sql, ExecStatusType want) {
  PGconn *conn = admin_connect("test");
  PGresult *res = PQexec(conn, sql);
  ck_assert_msg(PQresultStatus(res) == want, "%s: %s", sql, PQerrorMessage(conn));
  char *out = want != PGRES_TUPLES_OK ? NULL
                                      : strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
  PQclear(res);
  PQfinish(conn);
  return out;
}

/* One value of a query run as the superuser in this test's database (malloc'd). */
static char *admin_value(const char *sql) {
  return admin_run(sql, PGRES_TUPLES_OK);
}

#define SUT_SESSIONS(extra)                                                             \
  "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND " \
  "usename = '" PG_CLUSTER_SUT_ROLE "'" extra

/* Polls a query until it returns `want` or timeout_ms passes; returns the last value. */
static char *admin_wait(const char *sql, const char *want, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    char *v = admin_value(sql);
    if (strcmp(v, want) == 0 || rc_clock_mono_ms() >= deadline) return v;
    free(v);
    sleep_ms(20);
  }
}

static void assert_query(const char *sql, const char *want, int timeout_ms, const char *what) {
  char *v = admin_wait(sql, want, timeout_ms);
  ck_assert_msg(strcmp(v, want) == 0, "%s\n  Expected: %s\n  Actual: %s", what, want, v);
  free(v);
}

/* Accepts the worker's next connection into peer_fd (closing the previous one). */
static void accept_worker(void) {
  if (peer_fd >= 0) close(peer_fd);
  int64_t deadline = rc_clock_mono_ms() + 5000;
  while ((peer_fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK)) < 0 &&
         rc_clock_mono_ms() < deadline)
    sleep_ms(10);
  ck_assert_msg(peer_fd >= 0, "the worker never connected");
}

static void send_text(const char *text) {
  size_t len = strlen(text);
  ck_assert_int_eq(write(peer_fd, text, len), (ssize_t)len);
}

/* Accepts the worker's connection and sends what a main sends, then one RDATA. */
static void feed_rdata(void) {
  accept_worker();
  send_text("SERVER test.local\nPOSITION typing master 0 0\n"
            "RDATA typing master 1 [\"!r:hs\",[\"@x:hs\"]]\n");
}

static int worker_stop(void) {
  kill(child, SIGTERM);
  int64_t deadline = rc_clock_mono_ms() + 5000;
  int status = -1;
  while (waitpid(child, &status, WNOHANG) == 0 && rc_clock_mono_ms() < deadline) sleep_ms(10);
  child = -1;
  return status;
}

static size_t unclean_closes(void) {
  char lines[512];
  return pg_cluster_log_lines(cluster, db, "unexpected EOF on client connection", lines,
                              sizeof lines);
}

/* DB-01/DB-04/DB-06 done right, and positions stored. */
START_TEST(startup_closed_positions_stored_all_closed) {
  worker_start(NULL, NULL);
  ck_assert_msg(log_wait_for("Finished setting up.", 5000), "no 'Finished setting up.'");
  ck_assert(log_wait_for("Prefilled the stream change cache for 5 room(s)", 100));
  assert_query(SUT_SESSIONS(""), "0", 2000, "DB-04: the start-up connection is closed");
  feed_rdata();
  assert_query(
      "SELECT stream_name || '/' || instance_name || '/' || stream_id FROM "
      "stream_positions",
      "typing/master/1", 5000, "the position is stored");
  assert_query(SUT_SESSIONS(" AND state = 'idle'"), "1", 2000,
               "one pooled session, idle outside any transaction");
  int status = worker_stop();
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  assert_query(SUT_SESSIONS(""), "0", 5000, "DB-06: no session after exit");
  ck_assert_uint_eq(unclean_closes(), 0);
  char *text = test_read_file(log_path, NULL);
  ck_assert_ptr_null(strstr(text, "from sentinel context"));
  free(text);
}
END_TEST

START_TEST(bug_idle_in_transaction) {
  worker_start("db-idle-in-transaction", NULL);
  ck_assert(log_wait_for("Finished setting up.", 5000));
  assert_query(SUT_SESSIONS(" AND state = 'idle in transaction' AND query LIKE '%FROM events%'"),
               "1", 2000, "the start-up read is left open");
  assert_query(
      "SELECT count(*)::text FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
      "WHERE c.relname = 'events' AND l.granted",
      "1", 100, "its AccessShareLock on events stays");
  int status = worker_stop();
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  assert_query(SUT_SESSIONS(""), "0", 5000, "closed at exit all the same");
}
END_TEST

START_TEST(bug_conn_never_closed) {
  worker_start("db-conn-never-closed", NULL);
  ck_assert(log_wait_for("Finished setting up.", 5000));
  assert_query(SUT_SESSIONS(" AND state = 'idle'"), "1", 2000,
               "the start-up connection is committed but stays");
  feed_rdata();
  assert_query(SUT_SESSIONS(" AND state = 'idle'"), "2", 5000, "plus the pooled one");
  worker_stop();
  assert_query(SUT_SESSIONS(""), "0", 5000, "the exit drops them");
  int64_t deadline = rc_clock_mono_ms() + 2000;
  while (unclean_closes() < 2 && rc_clock_mono_ms() < deadline) sleep_ms(20);
  ck_assert_uint_eq(unclean_closes(), 2);
}
END_TEST

START_TEST(bug_handler_in_sentinel_db) {
  worker_start("handler-in-sentinel-db", NULL);
  ck_assert(log_wait_for("Finished setting up.", 5000));
  feed_rdata();
  ck_assert(log_wait_for(" - synapse.storage._base - ", 5000));
  ck_assert(log_wait_for(
      "WARNING - sentinel - Starting db txn 'store_stream_position' from sentinel context", 100));
  ck_assert(
      log_wait_for("WARNING - sentinel - Starting db connection from sentinel context: "
                   "metrics will be lost",
                   100));
  worker_stop();
}
END_TEST

/* db_txn_count of `process` on the worker's metrics page (-1 when the series is absent). */
static double db_txn_count(const char *process) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%s/metrics", http_port);
  rc_error_t err;
  prom_t *scrape = NULL;
  int64_t deadline = rc_clock_mono_ms() + 5000;
  while ((scrape = http_probe_metrics(url, 1000, &err)) == NULL && rc_clock_mono_ms() < deadline)
    sleep_ms(50);
  ck_assert_msg(scrape != NULL, "%s", err.msg);
  prom_match_t match = {"name", process};
  const prom_sample_t *sample =
      prom_find(scrape, "synapse_background_process_db_txn_count", &match, 1);
  double value = sample != NULL ? sample->value : -1;
  prom_destroy(scrape);
  return value;
}

/* BG-04: the handler's transaction is logged under its context and counted for it; the
 * start-up read (context "main", no background process) is counted for nothing. */
START_TEST(txn_charged_to_handling_process) {
  snprintf(http_port, sizeof http_port, "%d", rc_net_free_port());
  worker_start(NULL, NULL);
  ck_assert(log_wait_for("Finished setting up.", 5000));
  ck_assert(log_wait_for(" - synapse.storage.txn - ", 100));
  ck_assert(log_wait_for(" - DEBUG - main - [TXN START] {stream_change_cache_prefill-0}", 100));
  ck_assert(log_wait_for("[TXN END] {stream_change_cache_prefill-0} ", 100));
  ck_assert(db_txn_count("process-replication-data") == -1);
  feed_rdata();
  ck_assert_msg(log_wait_for(" - DEBUG - process-replication-data-", 5000), "no handler context");
  ck_assert_msg(
      log_wait_for("process-replication-data-1 - [TXN START] {store_stream_position-1}", 5000),
      "BG-04: [TXN START] under the handler's context");
  ck_assert(log_wait_for("process-replication-data-1 - [TXN END] {store_stream_position-1} ", 100));
  double count = db_txn_count("process-replication-data");
  ck_assert_msg(count == 1, "BG-04: db_txn_count{process-replication-data} %g, expected 1", count);
  worker_stop();
}
END_TEST

/* --bug db-txn-not-charged: the same transaction, logged the same way, counted for no
 * process. */
START_TEST(bug_db_txn_not_charged) {
  snprintf(http_port, sizeof http_port, "%d", rc_net_free_port());
  worker_start("db-txn-not-charged", NULL);
  ck_assert(log_wait_for("Finished setting up.", 5000));
  feed_rdata();
  ck_assert(
      log_wait_for("process-replication-data-1 - [TXN END] {store_stream_position-1} ", 5000));
  ck_assert(db_txn_count("process-replication-data") == 0);
  worker_stop();
}
END_TEST

START_TEST(unreachable_database) {
  worker_start(NULL, "host=127.0.0.1 port=1 dbname=nothing user=nobody connect_timeout=2");
  int64_t deadline = rc_clock_mono_ms() + 5000;
  int status = -1;
  while (waitpid(child, &status, WNOHANG) == 0 && rc_clock_mono_ms() < deadline) sleep_ms(10);
  child = -1;
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
  ck_assert(log_wait_for("cannot connect to the database", 100));
}
END_TEST

/* ---- the federation sender's position (--fedsender --db; RC-07, BG-08) ----------- */

static const char *const FEDSENDER_ARGS[] = {"--fedsender", "--instance-name", "fs1", NULL};
#define FED_POSITION_SQL \
  "SELECT coalesce(max(stream_id), -1)::text FROM federation_stream_position " \
  "WHERE type = 'federation' AND instance_name = 'fs1'"
#define EDU_ROW \
  "[\"e\",{\"origin\":\"test.local\",\"destination\":\"r1.test\",\"edu_type\":\"m.x\"," \
  "\"content\":{}}]"

/* The next line the worker sends on peer_fd within timeout_ms (PINGs skipped unless
 * keep_pings), into buf; false on timeout. */
static bool read_line(char *buf, size_t cap, int timeout_ms, bool keep_pings) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  size_t used = 0;
  while (rc_clock_mono_ms() < deadline) {
    char c;
    ssize_t n = read(peer_fd, &c, 1);
    if (n == 1 && c != '\n') {
      if (used + 1 < cap) buf[used++] = c;
      continue;
    }
    if (n == 1) {
      buf[used] = '\0';
      if (keep_pings || strncmp(buf, "PING ", 5) != 0) return true;
      used = 0;
      continue;
    }
    if (n == 0) return false;
    sleep_ms(5);
  }
  return false;
}

/* Waits up to timeout_ms for a line starting with prefix (others skipped). */
static bool wait_line(const char *prefix, char *buf, size_t cap, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    int left = (int)(deadline - rc_clock_mono_ms());
    if (left <= 0 || !read_line(buf, cap, left, false)) return false;
    if (strncmp(buf, prefix, strlen(prefix)) == 0) return true;
  }
}

/* Connects the fedsender worker and positions its federation stream at 0. */
static void fedsender_connect(void) {
  accept_worker();
  send_text("SERVER test.local\nPOSITION federation master 0 0\n");
}

/* One superuser statement without result in this test's database. */
static void admin_exec(const char *sql) {
  admin_run(sql, PGRES_COMMAND_OK);
}

#define REVOKE_UPDATE "REVOKE UPDATE ON federation_stream_position FROM " PG_CLUSTER_SUT_ROLE

/* The position is stored, then acknowledged. */
START_TEST(fedsender_position_stored_then_acked) {
  worker_start_with(NULL, NULL, FEDSENDER_ARGS);
  fedsender_connect();
  send_text("RDATA federation master 1 " EDU_ROW "\n");
  char line[256];
  ck_assert_msg(wait_line("FEDERATION_ACK", line, sizeof line, 5000), "no FEDERATION_ACK");
  ck_assert_str_eq(line, "FEDERATION_ACK fs1 1");
  char *v = admin_value(FED_POSITION_SQL);
  ck_assert_msg(strcmp(v, "1") == 0, "stored before the ack\n  Expected: 1\n  Actual: %s", v);
  free(v);
  send_text("RDATA federation master 2 " EDU_ROW "\n");
  ck_assert(wait_line("FEDERATION_ACK", line, sizeof line, 5000));
  ck_assert_str_eq(line, "FEDERATION_ACK fs1 2");
  assert_query(FED_POSITION_SQL, "2", 100, "the row is updated");
  int status = worker_stop();
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}
END_TEST

/* BG-08: a failed write is an ERROR with a traceback and no ack; later rows go on. */
static void position_write_fails(const char *bug) {
  worker_start_with(bug, NULL, FEDSENDER_ARGS);
  fedsender_connect();
  admin_exec(REVOKE_UPDATE);
  send_text("RDATA federation master 1 " EDU_ROW "\n");
  char line[256];
  if (bug != NULL) {
    ck_assert_msg(wait_line("FEDERATION_ACK", line, sizeof line, 5000), "the bug acks anyway");
    ck_assert(log_wait_for("WARNING - _save_and_send_ack-0 - [TXN FAIL] "
                           "{update_federation_out_pos} ERROR:  permission denied",
                           1000));
    ck_assert(!log_wait_for("Error updating federation stream position", 100));
    return;
  }
  ck_assert(log_wait_for("ERROR - _save_and_send_ack-0 - Error updating federation stream "
                         "position\nTraceback (most recent call last):\n",
                         1000));
  ck_assert(log_wait_for("psycopg2.Error: ERROR:  permission denied", 100));
  ck_assert_msg(!wait_line("FEDERATION_ACK", line, sizeof line, 500), "acked: %s", line);
  admin_exec("GRANT UPDATE ON federation_stream_position TO " PG_CLUSTER_SUT_ROLE);
  send_text("RDATA federation master 2 " EDU_ROW "\n");
  ck_assert_msg(wait_line("FEDERATION_ACK", line, sizeof line, 5000), "no ack after the grant");
  ck_assert_str_eq(line, "FEDERATION_ACK fs1 2");
  assert_query(FED_POSITION_SQL, "2", 100, "stored after the grant");
}

START_TEST(fedsender_position_error_logged) {
  position_write_fails(NULL);
}
END_TEST

START_TEST(bug_federation_position_error_acked) {
  position_write_fails("federation-position-error-acked");
}
END_TEST

/* RC-07: the ack of a write the database held until the connection was gone is dropped;
 * with queue-before-opening it opens the next connection, ahead of NAME. */
static void ack_while_disconnected(const char *bug) {
  worker_start_with(bug, NULL, FEDSENDER_ARGS);
  fedsender_connect();
  PGconn *lock = admin_connect("test-lock");
  PQclear(PQexec(lock, "BEGIN"));
  PGresult *res = PQexec(lock, "LOCK TABLE federation_stream_position IN EXCLUSIVE MODE");
  ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
  PQclear(res);
  send_text("RDATA federation master 1 " EDU_ROW "\n");
  assert_query(SUT_SESSIONS(" AND state = 'active' AND query LIKE '%federation_stream_position%'"),
               "1", 3000, "the position write waits for the lock");
  close(peer_fd);
  peer_fd = -1;
  ck_assert(log_wait_for("Lost replication conn", 2000));
  res = PQexec(lock, "COMMIT");
  ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
  PQclear(res);
  PQfinish(lock);
  ck_assert(log_wait_for(bug != NULL ? "Queuing command as not connected: FEDERATION_ACK fs1 1"
                                     : "Dropping command as not connected: FEDERATION_ACK",
                         3000));
  accept_worker();
  char line[256];
  ck_assert(read_line(line, sizeof line, 3000, true));
  ck_assert_str_eq(line, bug != NULL ? "FEDERATION_ACK fs1 1" : "NAME fs1");
  worker_stop();
}

START_TEST(ack_dropped_while_disconnected) {
  ack_while_disconnected(NULL);
}
END_TEST

START_TEST(bug_queue_before_opening) {
  ack_while_disconnected("queue-before-opening");
}
END_TEST

int main(void) {
  Suite *s = suite_create("refworker_db");
  TCase *tc = tcase_create("db");
  tcase_add_unchecked_fixture(tc, cluster_setup, cluster_teardown);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, startup_closed_positions_stored_all_closed);
  tcase_add_test(tc, bug_idle_in_transaction);
  tcase_add_test(tc, bug_conn_never_closed);
  tcase_add_test(tc, bug_handler_in_sentinel_db);
  tcase_add_test(tc, txn_charged_to_handling_process);
  tcase_add_test(tc, bug_db_txn_not_charged);
  tcase_add_test(tc, unreachable_database);
  tcase_add_test(tc, fedsender_position_stored_then_acked);
  tcase_add_test(tc, fedsender_position_error_logged);
  tcase_add_test(tc, bug_federation_position_error_acked);
  tcase_add_test(tc, ack_dropped_while_disconnected);
  tcase_add_test(tc, bug_queue_before_opening);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
