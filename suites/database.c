/* db: the worker's PostgreSQL sessions, observed from the database side (requirements
 * DB-01..DB-06 and LC-03, shared/spec/requirements.md §13, §12; seed B, issue #3682), and
 * the transactions a handler runs, charged to its background process (BG-04, §11).
 *
 * Each test's SUT gets a database of its own in the run's cluster ({db_dsn}, role pg);
 * the harness watches it through pg_observer.h as the cluster's superuser: the SUT's
 * sessions (pg_stat_activity, role PG_CLUSTER_SUT_ROLE), their transactions and table
 * locks (pg_locks), a DDL lock probe on `events` (the table the worker reads at
 * start-up; #3682's DROP INDEX / LOCK TABLE stuck behind it), and the cluster's log,
 * where PostgreSQL reports a client that vanished without closing its connection.
 * DB-03 is also checked passively during every test of a role-pg profile
 * (harness/pg_passive.h); db/sessions/idle-transaction-bounded is its dedicated test.
 * Readiness is the profile's readiness (for Synapse: `Finished setting up.`, which comes
 * after the datastore's initialisation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_cluster.h"
#include "pg_observer.h"
#include "pg_passive.h"
#include "rc_clock.h"
#include "sutlog.h"
#include "suite_observe.h"
#include "suite_util.h"

/* Windows of the requirements. */
#define DB_SETTLE_MS 5000       /* DB-01, DB-02: readiness + 5 s */
#define DB_POOL_SETTLE_MS 10000 /* DB-04: readiness + 10 s */
#define DB_IDLE_WATCH_MS 12000  /* DB-03: long enough to see a 10 s violation */
#define DB_LOCK_TIMEOUT_MS 5000 /* DB-02: the probe's lock_timeout */
#define DB_GONE_MS 5000         /* DB-06: sessions gone after exit */
#define DB_SAMPLE_MS 1000       /* DB-03, DB-05 sampling period */
#define DB_RECONNECT_CYCLES 10  /* DB-05 */
#define DB_LOG_WINDOW_MS 1000   /* LC-03: window after the last RDATA */

#define TYPING_ROW "[\"!r:hs\",[\"@x:hs\"]]"
/* A presence row: a Synapse worker reads the user's rooms for it (get_rooms_for_user_...,
 * reference/synapse-1.66/worker2.log); refworker stores its position. */
#define PRESENCE_ROW "[\"@x:hs\",\"online\",1,1,1,null,true]"
#define DB_TXN_WINDOW_MS 2000 /* BG-04: the row's transaction logged and counted */
#define METRIC_BG_DB_TXN "synapse_background_process_db_txn_count"

/* What PostgreSQL logs for a client that went away without a Terminate message: at
 * DEBUG1 outside a transaction (the SUT role logs at that level), at LOG inside one, or
 * a reset connection. */
static const char *const UNCLEAN_CLOSE_TEXTS[] = {
    "unexpected EOF on client connection",
    "could not receive data from client",
};

/* The harness's session on this test's database, or NULL after recording an ERROR. */
static pg_observer_t *db_observe(rc_test_t *t) {
  return suite_db_observer(t, "replcheck-observer");
}

/* The SUT's sessions now; false after recording an ERROR. */
static bool db_sessions(rc_test_t *t, pg_observer_t *o, pg_session_t **list, size_t *n) {
  rc_error_t err;
  if (pg_observer_sessions(o, list, n, &err) == 0) return true;
  return rc_error(t, "%s", err.msg);
}

/* All sessions described, "; "-separated, into buf. */
static const char *describe_all(const pg_session_t *list, size_t n, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used + 1 < cap; i++) {
    char one[512];
    pg_session_describe(&list[i], one, sizeof one);
    int w = snprintf(buf + used, cap - used, "%s%s", i ? "; " : "", one);
    used = w < 0 ? used : (size_t)w >= cap - used ? cap - 1 : used + (size_t)w;
  }
  if (n == 0) snprintf(buf, cap, "none");
  return buf;
}

/* A failed test's evidence gets the end of the server log for its database
 * (connections, disconnections with their session times, errors). */
static void note_server_log(rc_test_t *t) {
  if (!t->decided || t->db_name == NULL) return;
  char lines[16384];
  size_t n = pg_cluster_log_lines(t->pg, t->db_name, "", lines, sizeof lines);
  size_t len = strlen(lines);
  const char *tail = len > 1500 ? lines + len - 1500 : lines;
  if (n > 0) rc_note(t, "PostgreSQL log of %s (%zu lines, last ones): %s", t->db_name, n, tail);
}

/* Sends RDATA number `token` of the typing stream, which the worker stores. */
static bool send_typing(rc_test_t *t, int conn, int token) {
  char line[256], tok[16];
  snprintf(tok, sizeof tok, "%d", token);
  suite_rdata(t, line, sizeof line, "typing", tok, TYPING_ROW);
  return suite_send(t, conn, "%s", line);
}

/* Runs the loop until the SUT holds at least one session (its pool is in use), up to
 * timeout_ms; false when it never did (nothing recorded) or on error. */
static bool wait_for_session(rc_test_t *t, pg_observer_t *o, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    pg_session_t *list;
    size_t n;
    if (!db_sessions(t, o, &list, &n)) return false;
    free(list);
    if (n > 0) return true;
    if (rc_clock_mono_ms() >= deadline) return false;
    rc_observe(t, 50);
  }
}

/* ---- DB-01 ----------------------------------------------------------------------- */

static void init_no_idle_transaction_body(rc_test_t *t, pg_observer_t *o, int64_t ready_ms) {
  rc_observe(t, DB_SETTLE_MS);
  pg_session_t *list;
  size_t n;
  if (!db_sessions(t, o, &list, &n)) return;
  long since_ready = (long)(rc_clock_mono_ms() - ready_ms);
  for (size_t i = 0; i < n; i++) {
    /* Its transaction is older than readiness: opened during initialisation. */
    if (strcmp(list[i].state, "idle in transaction") == 0 && list[i].xact_age_ms >= since_ready) {
      char text[512];
      pg_session_describe(&list[i], text, sizeof text);
      rc_fail(t, "no SUT session idle in a transaction opened before readiness, 5 s after it",
              "%ld ms after readiness: %s", since_ready, text);
      break;
    }
  }
  free(list);
}

static void init_no_idle_transaction(rc_test_t *t) {
  if (!rc_start(t)) return;
  int64_t ready_ms = rc_clock_mono_ms();
  pg_observer_t *o = db_observe(t);
  if (o == NULL) return;
  init_no_idle_transaction_body(t, o, ready_ms);
  note_server_log(t);
  pg_observer_destroy(o);
}

/* ---- DB-02 ----------------------------------------------------------------------- */

static bool lock_probe_answered(void *observer) {
  return pg_observer_lock_probe_ready(observer);
}

static void init_no_table_lock_body(rc_test_t *t, pg_observer_t *o) {
  rc_observe(t, DB_SETTLE_MS);
  rc_error_t err;
  char locks[1024];
  int idle_locks = pg_observer_idle_locks(o, locks, sizeof locks, &err);
  if (idle_locks < 0) {
    rc_error(t, "%s", err.msg);
    return;
  }
  long waited = 0;
  pg_probe_result_t probe = PG_PROBE_FAILED;
  if (pg_observer_lock_probe_start(o, "events", DB_LOCK_TIMEOUT_MS, &err) == 0) {
    /* The mock keeps serving the worker while the LOCK waits (PINGs, its lines, its
     * HTTP requests); the server ends the wait at the lock timeout, and finish waits
     * out whatever is left should this deadline pass first. */
    mockhs_run_until(t->mock, lock_probe_answered, o, DB_LOCK_TIMEOUT_MS + 2000, 20);
    probe = pg_observer_lock_probe_finish(o, &waited, &err);
  }
  if (probe == PG_PROBE_FAILED) {
    rc_error(t, "the lock probe failed: %s", err.msg);
  } else if (probe == PG_PROBE_TIMED_OUT) {
    rc_fail(t,
            "LOCK TABLE events IN ACCESS EXCLUSIVE MODE (lock_timeout 5 s) is granted 5 s "
            "after readiness",
            "it timed out after %ld ms: the SUT still holds a lock on events from its "
            "initialisation; SUT locks: %s",
            waited, locks[0] ? locks : "none seen");
  } else if (idle_locks > 0) {
    rc_fail(t, "no table lock held by an SUT session idle in a transaction",
            "%d granted lock(s) of idle-in-transaction sessions: %s", idle_locks, locks);
  }
}

static void init_no_table_lock(rc_test_t *t) {
  if (!rc_start(t)) return;
  pg_observer_t *o = db_observe(t);
  if (o == NULL) return;
  init_no_table_lock_body(t, o);
  note_server_log(t);
  pg_observer_destroy(o);
}

/* ---- DB-03 ----------------------------------------------------------------------- */

static void idle_transaction_bounded_body(rc_test_t *t, pg_observer_t *o, int conn) {
  int64_t end = rc_clock_mono_ms() + DB_IDLE_WATCH_MS;
  int token = 1;
  long longest = 0;
  while (rc_clock_mono_ms() < end) {
    /* Traffic the worker stores, so its own short transactions are in the samples. */
    if (!send_typing(t, conn, token++)) return;
    rc_observe(t, DB_SAMPLE_MS);
    pg_session_t *list;
    size_t n;
    if (!db_sessions(t, o, &list, &n)) return;
    for (size_t i = 0; i < n; i++) {
      if (strcmp(list[i].state, "idle in transaction") != 0) continue;
      if (list[i].state_age_ms > longest) longest = list[i].state_age_ms;
      if (list[i].state_age_ms > PG_PASSIVE_IDLE_XACT_MAX_MS) {
        char text[512];
        pg_session_describe(&list[i], text, sizeof text);
        rc_fail(t, "no SUT session idle in a transaction for more than 10 s", "%s", text);
        free(list);
        return;
      }
    }
    free(list);
  }
  if (longest > 0) rc_note(t, "longest idle-in-transaction state seen: %ld ms", longest);
}

static void idle_transaction_bounded(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  pg_observer_t *o = db_observe(t);
  if (o == NULL) return;
  idle_transaction_bounded_body(t, o, conn);
  note_server_log(t);
  pg_observer_destroy(o);
}

/* ---- DB-04 ----------------------------------------------------------------------- */

static void init_connection_closed_body(rc_test_t *t, pg_observer_t *o, int conn,
                                        int64_t ready_ms) {
  /* Steady state includes the pool: give the worker something to store. */
  if (!send_typing(t, conn, 1)) return;
  int64_t left = ready_ms + DB_POOL_SETTLE_MS - rc_clock_mono_ms();
  if (left > 0) rc_observe(t, (int)left);
  pg_session_t *list;
  size_t n;
  if (!db_sessions(t, o, &list, &n)) return;
  int max = t->profile->db_pool_max;
  if ((int)n > max) {
    char text[2048];
    rc_fail(t,
            "at most the pool maximum of SUT sessions 10 s after readiness (the "
            "initialisation connection closed, not only committed)",
            "%zu sessions, pool maximum %d (database.pool_max): %s", n, max,
            describe_all(list, n, text, sizeof text));
  }
  free(list);
}

static void init_connection_closed(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  int64_t ready_ms = rc_clock_mono_ms();
  pg_observer_t *o = db_observe(t);
  if (o == NULL) return;
  init_connection_closed_body(t, o, conn, ready_ms);
  note_server_log(t);
  pg_observer_destroy(o);
}

/* ---- DB-05 ----------------------------------------------------------------------- */

static void bounded_under_reconnects_body(rc_test_t *t, pg_observer_t *o, int conn) {
  int max = t->profile->db_pool_max + 1;
  size_t most = 0;
  for (int cycle = 0; cycle < DB_RECONNECT_CYCLES; cycle++) {
    if (!send_typing(t, conn, cycle + 1)) return;
    rc_observe(t, 100);
    uint64_t seq = rc_now_seq(t);
    mockhs_close_conn(t->mock, conn, cycle % 2 == 1);
    conn = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t));
    if (conn < 0) {
      rc_error(t,
               "the worker did not reconnect after cycle %d (RC-01), so DB-05 cannot be "
               "observed",
               cycle + 1);
      return;
    }
    pg_session_t *list;
    size_t n;
    if (!db_sessions(t, o, &list, &n)) return;
    if (n > most) most = n;
    if ((int)n > max) {
      char text[2048];
      rc_fail(t, "at most pool maximum + 1 SUT sessions during reconnects",
              "%zu sessions after %d reconnect(s), pool maximum %d: %s", n, cycle + 1, max - 1,
              describe_all(list, n, text, sizeof text));
      free(list);
      return;
    }
    free(list);
  }
  rc_note(t, "most SUT sessions seen: %zu (pool maximum %d)", most, max - 1);
}

static void bounded_under_reconnects(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  pg_observer_t *o = db_observe(t);
  if (o == NULL) return;
  bounded_under_reconnects_body(t, o, conn);
  note_server_log(t);
  pg_observer_destroy(o);
}

/* ---- DB-06 ----------------------------------------------------------------------- */

/* After the worker sent ERROR and reconnected and then was stopped: its sessions go,
 * and each went with a Terminate message rather than a dropped socket. */
static void shutdown_sessions_gone_body(rc_test_t *t, pg_observer_t *o, int conn) {
  if (!send_typing(t, conn, 1)) return;
  bool had_session = wait_for_session(t, o, 2000);
  if (t->decided) return;
  /* An unknown command: the worker answers ERROR, closes and reconnects (CL-01). */
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "HELLO world")) return;
  conn = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 1000);
  if (conn < 0) {
    rc_error(t, "the worker did not reconnect after its ERROR (RC-01)");
    return;
  }
  if (!send_typing(t, conn, 2)) return;
  rc_observe(t, 200);
  double seconds;
  int status;
  if (!rc_terminate_sut(t, &seconds, &status) && !sut_has_exited(t->sut, NULL)) {
    rc_fail(t, "the worker exits after SIGTERM (CL-05)", "still running after SIGTERM");
    return;
  }
  int64_t deadline = rc_clock_mono_ms() + DB_GONE_MS;
  pg_session_t *list = NULL;
  size_t n = 0;
  for (;;) {
    free(list);
    if (!db_sessions(t, o, &list, &n)) return;
    if (n == 0 || rc_clock_mono_ms() >= deadline) break;
    rc_observe(t, 50);
  }
  if (n > 0) {
    char text[2048];
    rc_fail(t, "no SUT session 5 s after the worker exited", "%zu session(s) left: %s", n,
            describe_all(list, n, text, sizeof text));
    free(list);
    return;
  }
  free(list);
  if (!had_session) rc_note(t, "the worker never held a database session while observed");
  for (size_t i = 0; i < sizeof UNCLEAN_CLOSE_TEXTS / sizeof UNCLEAN_CLOSE_TEXTS[0]; i++) {
    char lines[1024];
    size_t count =
        pg_cluster_log_lines(t->pg, t->db_name, UNCLEAN_CLOSE_TEXTS[i], lines, sizeof lines);
    if (count > 0) {
      rc_fail(t,
              "every database connection of the worker is closed (Terminate), none dropped "
              "by the process exiting",
              "%zu connection(s) were dropped without closing; PostgreSQL logged: %s", count,
              lines);
      return;
    }
  }
}

static void shutdown_sessions_gone(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  pg_observer_t *o = db_observe(t);
  if (o == NULL) return;
  shutdown_sessions_gone_body(t, o, conn);
  note_server_log(t);
  pg_observer_destroy(o);
}

/* ---- LC-03 ----------------------------------------------------------------------- */

/* Matches Synapse's two db-from-sentinel WARNINGs; arg gets the line (512 bytes). */
static bool is_sentinel_db_warning(const sutlog_record_t *r, void *arg) {
  bool match = r->is_record && strstr(r->message, "from sentinel context") != NULL &&
               (strncmp(r->message, "Starting db txn", 15) == 0 ||
                strncmp(r->message, "Starting db connection", 22) == 0);
  if (match) snprintf(arg, 512, "%s", r->line);
  return match;
}

static void txn_not_from_sentinel(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  long offset = 0; /* from the start: initialisation counts too */
  for (int token = 1; token <= 3; token++)
    if (!send_typing(t, conn, token)) return;
  char line[512] = "";
  if (suite_log_wait(t, &offset, DB_LOG_WINDOW_MS, is_sentinel_db_warning, line))
    rc_fail(t, "no database transaction or connection started in the sentinel context",
            "the SUT logged: %s", line);
  note_server_log(t);
}

/* ---- BG-04 ----------------------------------------------------------------------- */

/* What BG-04 looks for in the log: a `[TXN START]` under `<process>-<n>`; the first
 * [TXN START] under any other context is kept as evidence. */
typedef struct txn_in_process {
  const char *process;
  char other[512];
} txn_in_process_t;

static bool is_txn_start_in_process(const sutlog_record_t *r, void *arg) {
  txn_in_process_t *w = arg;
  if (!r->is_record || strncmp(r->message, "[TXN START]", 11) != 0) return false;
  size_t n = strlen(w->process);
  const char *id = r->context + n;
  if (strncmp(r->context, w->process, n) == 0 && id[0] == '-' && id[1] != '\0' &&
      strspn(id + 1, "0123456789") == strlen(id + 1))
    return true;
  if (w->other[0] == '\0') snprintf(w->other, sizeof w->other, "%s", r->line);
  return false;
}

typedef struct txn_count_goal {
  const char *process;
  double before;
} txn_count_goal_t;

static bool db_txns_grew(const prom_t *scrape, void *arg) {
  const txn_count_goal_t *g = arg;
  bool found;
  return suite_metric(scrape, METRIC_BG_DB_TXN, g->process, NULL, NULL, &found) > g->before &&
         found;
}

static void txn_charged_to_process(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  /* The process that handles an RDATA line: BG-02 (modern), BG-01 (2018). */
  txn_count_goal_t goal = {.process = t->profile->dialect == PROTO_DIALECT_MODERN
                                          ? "process-replication-data"
                                          : "replication-RDATA-presence"};
  const char *process = goal.process;
  prom_t *s = suite_scrape(t);
  if (s == NULL) return;
  bool found;
  goal.before = suite_metric(s, METRIC_BG_DB_TXN, process, NULL, NULL, &found);
  prom_destroy(s);
  long offset = suite_log_offset(t);
  char line[256];
  suite_rdata(t, line, sizeof line, "presence", "50", PRESENCE_ROW);
  if (!suite_send(t, conn, "%s", line)) return;
  txn_in_process_t w = {.process = process};
  if (!suite_log_wait(t, &offset, DB_TXN_WINDOW_MS, is_txn_start_in_process, &w)) {
    rc_fail(t, "a '[TXN START]' under the handling process's context <process>-<n>",
            "none under %s-<n> within %d ms of the presence row; %s%s", process, DB_TXN_WINDOW_MS,
            w.other[0] ? "first [TXN START] elsewhere: "
                       : "none at all (the profile's log must be at DEBUG)",
            w.other);
    return;
  }
  s = suite_scrape_until(t, DB_TXN_WINDOW_MS, 100, db_txns_grew, &goal);
  if (s == NULL) return;
  double after = suite_metric(s, METRIC_BG_DB_TXN, process, NULL, NULL, &found);
  char series[1024];
  if (!db_txns_grew(s, &goal))
    rc_fail(t, METRIC_BG_DB_TXN "{name=<handling process>} grows with the handler's transactions",
            "%s{name=\"%s\"} %s%g (before %g) %d ms after the row; all series: %s",
            METRIC_BG_DB_TXN, process, found ? "" : "absent, ", after, goal.before,
            DB_TXN_WINDOW_MS,
            suite_metric_series(s, METRIC_BG_DB_TXN, NULL, series, sizeof series));
  prom_destroy(s);
  note_server_log(t);
}

const rc_test_def_t database_tests[] = {
    RC_TEST_ROW(.id = "db/init/no-idle-transaction", .requirements = "DB-01",
                .level = RC_LEVEL_MUST,
                .requirement = "No database session of the worker remains idle inside a "
                               "transaction opened during initialisation.",
                .source = "synapse#3764 (v0.33.4), #3682; seed-behaviours.md §B",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL,
                .roles = PROFILE_ROLE_PG, .tags = "slow", .run = init_no_idle_transaction),
    RC_TEST_ROW(.id = "db/init/no-table-lock", .requirements = "DB-02", .level = RC_LEVEL_MUST,
                .requirement = "Initialisation leaves no table lock behind: an ACCESS "
                               "EXCLUSIVE lock on events is granted within 5 s.",
                .source = "synapse#3682 (DROP INDEX, LOCK TABLE blocked), #3764",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL,
                .roles = PROFILE_ROLE_PG, .tags = "slow", .run = init_no_table_lock),
    RC_TEST_ROW(.id = "db/sessions/idle-transaction-bounded", .requirements = "DB-03",
                .level = RC_LEVEL_MUST,
                .requirement = "No worker session stays idle in a transaction for more than "
                               "10 s (sampled every second while it replicates).",
                .source = "seed-behaviours.md §B (mechanism of #3682)", .dialects = RC_DIALECT_ALL,
                .transports = RC_TRANSPORT_ALL, .roles = PROFILE_ROLE_PG, .tags = "slow",
                .run = idle_transaction_bounded),
    RC_TEST_ROW(.id = "db/init/connection-closed", .requirements = "DB-04",
                .level = RC_LEVEL_SHOULD,
                .requirement = "The initialisation connection is closed, not only committed: "
                               "10 s after readiness the worker holds at most its pool maximum "
                               "of sessions.",
                .source = "synapse#3764 caveat (psycopg2 `with conn:` commits, does not close)",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL,
                .roles = PROFILE_ROLE_PG, .tags = "slow", .run = init_connection_closed),
    RC_TEST_ROW(.id = "db/sessions/bounded-under-reconnects", .requirements = "DB-05",
                .level = RC_LEVEL_MUST,
                .requirement = "Replication reconnects do not grow the worker's database "
                               "sessions beyond its pool maximum + 1.",
                .source = "DESIGN.md (connections suite)", .dialects = RC_DIALECT_ALL,
                .transports = RC_TRANSPORT_TCP, .roles = PROFILE_ROLE_PG,
                .run = bounded_under_reconnects),
    RC_TEST_ROW(.id = "db/shutdown/sessions-gone", .requirements = "DB-06", .level = RC_LEVEL_MUST,
                .requirement = "After an ERROR, a reconnect and SIGTERM, the worker leaves no "
                               "database session once it has exited, and closes each one "
                               "rather than dropping it.",
                .source = "DESIGN.md (connections suite); synapse#3764", .dialects = RC_DIALECT_ALL,
                .transports = RC_TRANSPORT_TCP, .roles = PROFILE_ROLE_PG,
                .run = shutdown_sessions_gone),
    RC_TEST_ROW(.id = "db/txn/not-from-sentinel", .requirements = "LC-03", .level = RC_LEVEL_MUST,
                .requirement = "No database transaction or connection starts in the sentinel "
                               "context, at start-up or while replication data is handled.",
                .source = "synapse/storage/_base.py@v0.33.2 (#3606); #3709",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL,
                .roles = PROFILE_ROLE_PG, .run = txn_not_from_sentinel),
    RC_TEST_ROW(.id = "db/txn/charged-to-process", .requirements = "BG-04", .level = RC_LEVEL_MUST,
                .requirement = "Database transactions run while handling an inbound row are "
                               "charged to the handling process: its db_txn_count grows and "
                               "[TXN START] is logged under its context.",
                .source = "synapse metrics/background_process_metrics.py@v0.33.3 (#3709); "
                          "reference/synapse-1.66/worker2.log, worker2-metrics.txt",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL,
                .roles = PROFILE_ROLE_PG, .needs = RC_NEEDS_METRICS, .run = txn_charged_to_process),
};
const size_t database_test_count = sizeof database_tests / sizeof database_tests[0];
