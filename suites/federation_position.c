/* federation/position: the federation sender's stored position and the FEDERATION_ACK
 * that follows it, as the harness's lever on work the worker does on its own
 * (requirements RC-07 and BG-08, shared/spec/requirements.md §4, §11; Synapse's
 * FederationSenderHandler: the ack for a federation token goes out only after
 * `UPDATE federation_stream_position` has succeeded).
 *
 * The SUT needs roles fedsender and pg: the harness, as the cluster's superuser on the
 * test's own database (pg_observer.h), locks that table (RC-07: the ack is then produced
 * while the replication connection is down) or revokes the SUT role's UPDATE on it
 * (BG-08: the write fails). Rows are probe EDUs for remote1 (federation_probe.h).
 * D = the profile's timing.federation_delivery_ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation_probe.h"
#include "pg_cluster.h"
#include "pg_observer.h"
#include "rc_clock.h"
#include "suite_observe.h"
#include "suite_util.h"

#define POSITION_TABLE "federation_stream_position"
/* The SUT's position write must still be waiting when the lock goes: well inside any
 * statement timeout a worker would set (refworker: 5 s). */
#define LOCK_HOLD_MAX_MS 3000

/* Runs one statement as the superuser; false after recording an ERROR. */
static bool admin_exec(rc_test_t *t, pg_observer_t *o, const char *sql) {
  rc_error_t err;
  if (pg_observer_exec(o, sql, &err) == 0) return true;
  return rc_error(t, "%s", err.msg);
}

/* Whether a SUT session is running a statement on the position table (waiting = true:
 * one is; false: none is), polled up to timeout_ms. false on timeout or error (*failed
 * then set). */
static bool wait_position_write(rc_test_t *t, pg_observer_t *o, bool waiting, int timeout_ms,
                                bool *failed) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  *failed = false;
  for (;;) {
    pg_session_t *list;
    size_t n;
    rc_error_t err;
    if (pg_observer_sessions(o, &list, &n, &err) != 0) {
      *failed = true;
      return rc_error(t, "%s", err.msg);
    }
    bool found = false;
    for (size_t i = 0; i < n; i++)
      if (strcmp(list[i].state, "active") == 0 && strstr(list[i].query, POSITION_TABLE) != NULL)
        found = true;
    free(list);
    if (found == waiting) return true;
    if (rc_clock_mono_ms() >= deadline) return false;
    rc_observe(t, 20);
  }
}

/* One probe unit, its delivery and its ack: the write path works. */
static bool first_unit_acked(presence_scene_t *s) {
  int seq = 1;
  int64_t token;
  if (!federation_probe_emit(s, NULL, 0, &seq, 1, &token)) return false;
  if (!presence_scene_wait_ack(s, token, s->delivery_ms)) return false;
  return true;
}

/* ---- RC-07 ------------------------------------------------------------------------ */

/* The SUT lines of connection conn from from_seq on, for window_ms: where the first
 * FEDERATION_ACK is relative to NAME and the REPLICATE lines. */
typedef struct opening_order {
  int name_at, first_replicate_at, last_replicate_at, ack_at; /* line index, -1 = none */
  long long ack_token;
  int lines;
} opening_order_t;

static void read_opening(rc_test_t *t, int conn, uint64_t from_seq, int window_ms,
                         opening_order_t *o) {
  *o = (opening_order_t){-1, -1, -1, -1, 0, 0};
  rc_match_t any = {.conn_id = conn, .side = LEDGER_SIDE_SUT};
  int64_t deadline = rc_clock_mono_ms() + window_ms;
  uint64_t seq = from_seq;
  for (;;) {
    int64_t left = deadline - rc_clock_mono_ms();
    const ledger_entry_t *e = left > 0 ? rc_wait(t, seq, &any, (int)left) : NULL;
    if (e == NULL) return;
    seq = e->seq + 1;
    proto_command_t cmd;
    if (!rc_parse_sut_line(t, e, &cmd)) continue;
    int at = o->lines++;
    if (cmd.kind == PROTO_CMD_NAME && o->name_at < 0) o->name_at = at;
    if (cmd.kind == PROTO_CMD_REPLICATE) {
      if (o->first_replicate_at < 0) o->first_replicate_at = at;
      o->last_replicate_at = at;
    }
    if (cmd.kind == PROTO_CMD_FEDERATION_ACK && o->ack_at < 0) {
      o->ack_at = at;
      o->ack_token = (long long)cmd.token;
    }
  }
}

/* `lock` holds the table lock; `o` watches (pg_stat_activity is read as of the start of
 * a transaction, so the locking session could not see the SUT's progress). */
static void while_disconnected_body(presence_scene_t *s, pg_observer_t *lock, pg_observer_t *o) {
  rc_test_t *t = s->t;
  if (!first_unit_acked(s)) return;
  /* Hold the next position write: the ack it leads to waits for the lock. */
  if (!admin_exec(t, lock, "BEGIN") ||
      !admin_exec(t, lock, "LOCK TABLE " POSITION_TABLE " IN EXCLUSIVE MODE"))
    return;
  int seq = 2;
  int64_t token;
  if (!federation_probe_emit(s, NULL, 0, &seq, 1, &token)) return;
  bool failed;
  if (!wait_position_write(t, o, true, s->delivery_ms, &failed)) {
    if (!failed)
      rc_error(t, "the SUT wrote no federation position within %d ms of unit %lld: cannot "
                  "hold its FEDERATION_ACK back (does it store it in %s?)",
               s->delivery_ms, (long long)token, POSITION_TABLE);
    return;
  }
  int64_t locked_at = rc_clock_mono_ms();
  /* Disconnect, and keep the SUT disconnected while the write finishes. */
  rc_error_t err;
  if (mockhs_set_listening(t->mock, false, &err) != 0) {
    rc_error(t, "%s", err.msg);
    return;
  }
  uint64_t cut = rc_now_seq(t);
  mockhs_close_conn(t->mock, s->conn, false);
  /* The FIN reaches the SUT on loopback at once; its loop sees it within one turn. */
  rc_observe(t, 2 * t->profile->timing.reconnect_initial_ms + 100);
  if (!admin_exec(t, lock, "COMMIT")) return;
  if (!wait_position_write(t, o, false, LOCK_HOLD_MAX_MS, &failed)) {
    if (!failed) rc_error(t, "the SUT's position write did not end after the lock was released");
    return;
  }
  rc_note(t, "the position write was held %lld ms; it ended while the SUT was disconnected",
          (long long)(rc_clock_mono_ms() - locked_at));
  if (mockhs_set_listening(t->mock, true, &err) != 0) {
    rc_error(t, "%s", err.msg);
    return;
  }
  rc_match_t open = {.entry_kind = LEDGER_OPEN};
  const ledger_entry_t *next = rc_wait(t, cut, &open, suite_reconnect_bound_ms(t) + 1000);
  if (next == NULL) {
    rc_error(t, "the SUT did not reconnect within %d ms", suite_reconnect_bound_ms(t) + 1000);
    return;
  }
  int conn = next->conn_id;
  opening_order_t order;
  read_opening(t, conn, next->seq, 2 * s->delivery_ms, &order);
  char lines[2048];
  if (order.ack_at < 0) {
    rc_note(t, "FEDERATION_ACK %lld was not sent on c%d (dropped while disconnected, F-11)",
            (long long)token, conn);
    return;
  }
  if (order.name_at < 0 || order.name_at > order.ack_at || order.first_replicate_at < 0 ||
      order.first_replicate_at > order.ack_at || order.last_replicate_at > order.ack_at) {
    rc_fail(t,
            "RC-07: a command produced while disconnected is dropped or sent after the next "
            "connection's opening lines (NAME, REPLICATE), never before them",
            "FEDERATION_ACK %lld is line %d of c%d; NAME is line %d, REPLICATE lines %d..%d: %s",
            order.ack_token, order.ack_at + 1, conn, order.name_at + 1,
            order.first_replicate_at + 1, order.last_replicate_at + 1,
            suite_sut_lines(t, conn, lines, sizeof lines));
    return;
  }
  rc_note(t, "FEDERATION_ACK %lld was sent on c%d after the opening lines (queued, F-11)",
          order.ack_token, conn);
}

static void command_while_disconnected(rc_test_t *t) {
  presence_scene_t s;
  if (federation_probe_open(t, &s)) {
    pg_observer_t *lock = suite_db_observer(t, "replcheck-rc07-lock");
    pg_observer_t *o = lock != NULL ? suite_db_observer(t, "replcheck-rc07") : NULL;
    if (o != NULL) while_disconnected_body(&s, lock, o);
    pg_observer_destroy(o);
    pg_observer_destroy(lock);
  }
  presence_scene_close(&s);
}

/* ---- BG-08 ------------------------------------------------------------------------ */

typedef struct position_error {
  char match[512];
  char first_error[512];
} position_error_t;

static bool position_error_logged(const sutlog_record_t *r, void *arg) {
  position_error_t *w = arg;
  if (!r->is_record || (strcmp(r->level, "ERROR") != 0 && strcmp(r->level, "CRITICAL") != 0))
    return false;
  if (w->first_error[0] == '\0')
    snprintf(w->first_error, sizeof w->first_error, "%s %.400s", r->level, r->message);
  if (strcmp(r->level, "ERROR") != 0 ||
      strstr(r->message, "Error updating federation stream position") == NULL)
    return false;
  snprintf(w->match, sizeof w->match, "ERROR [%s] %.400s", r->context, r->message);
  return true;
}

typedef struct after_line {
  const rc_test_t *t;
  long offset;
  bool seen, is_record;
} after_line_t;

static bool after_line_visit(const sutlog_record_t *r, void *arg) {
  after_line_t *a = arg;
  a->seen = true;
  a->is_record = r->is_record;
  return true;
}

static bool after_line_written(void *arg) {
  after_line_t *a = arg;
  long at = a->offset;
  sutlog_scan(a->t->profile, a->t->log_file, &at, 1 << 20, after_line_visit, a);
  return a->seen;
}

/* A FEDERATION_ACK >= token on the scene's connection within window_ms; the entry, or
 * NULL. */
static const ledger_entry_t *ack_within(presence_scene_t *s, int64_t token, int window_ms,
                                        long long *acked) {
  rc_match_t ack = {.conn_id = s->conn, .side = LEDGER_SIDE_SUT,
                    .command = PROTO_CMD_FEDERATION_ACK};
  int64_t deadline = rc_clock_mono_ms() + window_ms;
  for (;;) {
    int64_t left = deadline - rc_clock_mono_ms();
    const ledger_entry_t *e = left > 0 ? rc_wait(s->t, s->ack_seq, &ack, (int)left) : NULL;
    if (e == NULL) return NULL;
    s->ack_seq = e->seq + 1;
    proto_command_t cmd;
    if (rc_parse_sut_line(s->t, e, &cmd) && cmd.token >= token) {
      *acked = (long long)cmd.token;
      return e;
    }
  }
}

static void position_error_body(presence_scene_t *s, pg_observer_t *o) {
  rc_test_t *t = s->t;
  if (!first_unit_acked(s)) return;
  if (!admin_exec(t, o, "REVOKE UPDATE ON " POSITION_TABLE " FROM " PG_CLUSTER_SUT_ROLE)) return;
  long offset = suite_log_offset(t);
  int seq = 2;
  int64_t token;
  if (!federation_probe_emit(s, NULL, 0, &seq, 1, &token)) return;
  position_error_t w = {{0}, {0}};
  if (!suite_log_wait(t, &offset, 1000, position_error_logged, &w)) {
    rc_fail(t,
            "BG-08: the failed write of the federation position is logged at ERROR within 1 s "
            "('Error updating federation stream position')",
            "%s%s within 1 s of unit %lld (UPDATE on " POSITION_TABLE " revoked)",
            w.first_error[0] ? "the first ERROR-or-worse line was: " : "no ERROR line at all",
            w.first_error, (long long)token);
    return;
  }
  if (t->profile->log_format == PROFILE_LOG_SYNAPSE_TEXT) {
    after_line_t next = {.t = t, .offset = offset};
    if (!after_line_written(&next)) mockhs_run_until(t->mock, after_line_written, &next, 200, 20);
    if (!next.seen || next.is_record) {
      rc_fail(t, "BG-08: a traceback follows the ERROR line (lines that are not log records)",
              "'%s' is followed by %s", w.match, next.seen ? "another log record" : "nothing");
      return;
    }
  }
  long long acked = 0;
  if (ack_within(s, token, s->delivery_ms, &acked) != NULL) {
    rc_fail(t, "BG-08: no FEDERATION_ACK for a position that could not be stored",
            "FEDERATION_ACK %lld after '%s'", acked, w.match);
    return;
  }
  if (!admin_exec(t, o, "GRANT UPDATE ON " POSITION_TABLE " TO " PG_CLUSTER_SUT_ROLE)) return;
  seq = 3;
  if (!federation_probe_emit(s, NULL, 0, &seq, 1, &token)) return;
  if (!federation_probe_wait(s, 3, s->delivery_ms)) {
    int got[8];
    char list[64];
    size_t n = federation_probe_received(s, got, 8);
    rc_fail(t, "BG-08: the worker keeps processing: a later row is delivered within D once "
               "the grant is back",
            "remote1 received probes %s; probe 3 missing %d ms after its row",
            federation_probe_describe(got, n < 8 ? n : 8, list, sizeof list), s->delivery_ms);
    return;
  }
  if (ack_within(s, token, s->delivery_ms, &acked) != NULL)
    rc_note(t, "after the grant was restored, FEDERATION_ACK %lld", acked);
  else
    rc_note(t, "no FEDERATION_ACK >= %lld within %d ms after the grant was restored",
            (long long)token, s->delivery_ms);
}

static void position_error_logged_test(rc_test_t *t) {
  presence_scene_t s;
  if (federation_probe_open(t, &s)) {
    pg_observer_t *o = suite_db_observer(t, "replcheck-bg08");
    if (o != NULL) position_error_body(&s, o);
    pg_observer_destroy(o);
  }
  presence_scene_close(&s);
}

const rc_test_def_t federation_position_tests[] = {
    RC_TEST_ROW(.id = "protocol/reconnect/command-while-disconnected", .requirements = "RC-07",
                .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_ALL,
                .transports = RC_TRANSPORT_TCP, .roles = PROFILE_ROLE_FEDSENDER | PROFILE_ROLE_PG,
                .requirement =
                    "A command produced while disconnected (the FEDERATION_ACK of a position "
                    "write the harness holds with a table lock until the connection is gone) "
                    "is dropped or sent on the next connection after its opening lines, "
                    "never before them.",
                .source = "synapse replication/tcp/handler.py@v1.66.0 send_command (Dropping "
                          "command as not connected), client.py@v0.33.3 (queued); "
                          "replication/tcp/client.py@v1.66.0 _save_and_send_ack; "
                          "replication-protocol.md §3.3",
                .run = command_while_disconnected),
    RC_TEST_ROW(.id = "background/federation-position/error-logged", .requirements = "BG-08",
                .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_ALL,
                .transports = RC_TRANSPORT_ALL, .roles = PROFILE_ROLE_FEDSENDER | PROFILE_ROLE_PG,
                .requirement =
                    "A failed write of the federation position (UPDATE on "
                    "federation_stream_position revoked) is logged at ERROR with a traceback "
                    "within 1 s ('Error updating federation stream position'), is not "
                    "acknowledged, and later rows are delivered once the grant is back.",
                .source = "synapse app/federation_sender.py@v0.33.6 update_token (#3138); "
                          "seed-behaviours.md §G",
                .run = position_error_logged_test),
};
const size_t federation_position_test_count =
    sizeof federation_position_tests / sizeof federation_position_tests[0];
