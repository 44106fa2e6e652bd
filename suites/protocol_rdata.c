/* protocol/rdata: how the worker applies RDATA: batches, ordering, unconnected and
 * stale rows, its own echoes, unknown cache names, and 2018 POSITION resets.
 * Requirements RD-01..RD-09 (shared/spec/requirements.md §5; replication-protocol.md
 * §2.3, §2.4). Positions are read with the position probe (suite_util.h). */
#include <stdio.h>
#include <string.h>

#include "suite_observe.h"
#include "suite_util.h"

#define TYPING_ROW "[\"!r:hs\",[\"@x:hs\"]]"
#define TYPING_ROW_2018 "[\"!r:hs\", [\"@x:hs\"]]"

static const char *typing_row(const rc_test_t *t) {
  return t->profile->dialect == PROTO_DIALECT_MODERN ? TYPING_ROW : TYPING_ROW_2018;
}

static bool send_rdata(rc_test_t *t, int conn, const char *stream, const char *token,
                       const char *row) {
  char line[1024];
  suite_rdata(t, line, sizeof line, stream, token, row);
  return suite_send(t, conn, "%s", line);
}

/* Starts and moves typing to a known position P (via the probe), returning P. */
static int start_at_known_typing(rc_test_t *t, int64_t *position) {
  int conn = suite_start_connected(t);
  if (conn < 0) return -1;
  if (!suite_probe_position(t, &conn, "typing", position)) return -1;
  /* modern: after the probe the worker is at the probe's X. */
  if (t->profile->dialect == PROTO_DIALECT_MODERN) *position = t->probe_floor;
  return conn;
}

static void expect_position(rc_test_t *t, int *conn, int64_t want, const char *expected) {
  int64_t got;
  if (!suite_probe_position(t, conn, "typing", &got)) return;
  if (got != want)
    rc_fail(t, expected, "the worker's typing position is %lld, expected %lld", (long long)got,
            (long long)want);
}

/* RD-01: a batch row is not applied. */
static void rdata_batch_not_applied(rc_test_t *t) {
  int64_t p;
  int conn = start_at_known_typing(t, &p);
  if (conn < 0) return;
  if (!send_rdata(t, conn, "typing", "batch", typing_row(t))) return;
  rc_observe(t, 100);
  expect_position(t, &conn, p, "the position does not move on a 'batch' row");
}

/* RD-02: the next numeric row of the stream applies the batch; other streams in
 * between neither flush nor join it. */
static void rdata_batch_applied(rc_test_t *t) {
  int64_t p;
  int conn = start_at_known_typing(t, &p);
  if (conn < 0) return;
  char token[32];
  snprintf(token, sizeof token, "%lld", (long long)(p + 3));
  const char *caches = t->profile->dialect == PROTO_DIALECT_MODERN
                           ? "[\"get_user_by_id\",[\"@x:hs\"],1]"
                           : "[\"get_user_by_id\", [\"@x:hs\"], 1]";
  if (!send_rdata(t, conn, "typing", "batch", typing_row(t)) ||
      !send_rdata(t, conn, "caches", "999999", caches) ||
      !send_rdata(t, conn, "typing", token, typing_row(t)))
    return;
  rc_observe(t, 100);
  expect_position(t, &conn, p + 3, "the numeric row after a batch applies the unit at its token");
}

/* RD-03 (2018): a batch cut by a disconnect is discarded. */
static void rdata_batch_discarded(rc_test_t *t) {
  int64_t p;
  int conn = start_at_known_typing(t, &p);
  if (conn < 0) return;
  char token[32];
  snprintf(token, sizeof token, "%lld", (long long)(p + 2));
  if (!send_rdata(t, conn, "typing", "batch", typing_row(t))) return;
  rc_observe(t, 50);
  /* The probe reconnects: the batch is lost with the old connection. */
  int64_t after;
  if (!suite_probe_position(t, &conn, "typing", &after)) return;
  if (after != p) {
    rc_fail(t, "the position is unchanged by a batch cut by a disconnect", "typing at %lld, was %lld",
            (long long)after, (long long)p);
    return;
  }
  /* On the new connection a numeric row applies alone at its token. */
  if (!send_rdata(t, conn, "typing", token, typing_row(t))) return;
  rc_observe(t, 50);
  expect_position(t, &conn, p + 2, "a numeric row on the new connection is applied");
}

/* RD-05 (modern): RDATA before the stream's POSITION on a connection is dropped. */
static void rdata_unconnected_dropped(rc_test_t *t) {
  t->mock_config.answer_replicate = false;
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  if (!send_rdata(t, conn, "typing", "7", TYPING_ROW) ||
      !suite_send(t, conn, "POSITION typing master 0 0"))
    return;
  rc_observe(t, 100);
  expect_position(t, &conn, 0, "RDATA before any POSITION for its stream is dropped");
}

/* RD-06 (modern): RDATA at or below the current position is dropped. */
static void rdata_stale_dropped(rc_test_t *t) {
  int64_t p;
  int conn = start_at_known_typing(t, &p);
  if (conn < 0) return;
  char token[32];
  snprintf(token, sizeof token, "%lld", (long long)(p + 5));
  if (!send_rdata(t, conn, "typing", token, TYPING_ROW)) return;
  snprintf(token, sizeof token, "%lld", (long long)(p + 3));
  if (!send_rdata(t, conn, "typing", token, TYPING_ROW)) return;
  rc_observe(t, 100);
  expect_position(t, &conn, p + 5, "RDATA with a token below the position is dropped");
}

/* RD-04 (modern): units of one stream are applied one at a time in arrival order: a
 * burst of units, some led by batch rows, ends at the last token, and the log's
 * "Received rdata" tokens strictly increase. */
#define ARRIVAL_UNITS 40
static void rdata_arrival_order(rc_test_t *t) {
  int64_t p;
  int conn = start_at_known_typing(t, &p);
  if (conn < 0) return;
  for (int i = 1; i <= ARRIVAL_UNITS; i++) {
    char token[32];
    snprintf(token, sizeof token, "%lld", (long long)(p + i));
    if (i % 4 == 0 && !send_rdata(t, conn, "typing", "batch", TYPING_ROW)) return;
    if (!send_rdata(t, conn, "typing", token, TYPING_ROW)) return;
  }
  rc_observe(t, 200);
  expect_position(t, &conn, p + ARRIVAL_UNITS,
                  "a burst of units is applied in arrival order, ending at its last token");
  if (!t->decided)
    suite_log_check_rdata_order(t, "RD-04: units of one stream are applied in arrival order "
                                   "('Received rdata' tokens strictly increase per stream)");
}

/* RD-07 (modern): its own instance's RDATA and POSITION are ignored. */
static void rdata_own_instance_ignored(rc_test_t *t) {
  int64_t p;
  int conn = start_at_known_typing(t, &p);
  if (conn < 0) return;
  const char *own = t->profile->instance_name;
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "RDATA typing %s %lld %s", own, (long long)(p + 4), TYPING_ROW) ||
      !suite_send(t, conn, "POSITION typing %s %lld %lld", own, (long long)(p + 9),
                  (long long)(p + 9)))
    return;
  rc_match_t get = {.entry_kind = LEDGER_HTTP,
                    .prefix = "GET /_synapse/replication/get_repl_stream_updates/typing/"};
  const ledger_entry_t *e = rc_wait(t, seq, &get, 1000);
  if (e != NULL) {
    rc_fail(t, "no catch-up for a POSITION carrying the worker's own instance name",
            "the worker fetched '%.200s'", e->text);
    return;
  }
  expect_position(t, &conn, p, "RDATA carrying the worker's own instance name is ignored");
}

/* RD-08: caches rows for unknown caches, empty keys, null keys are accepted. */
static void rdata_caches_unknown(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  bool modern = t->profile->dialect == PROTO_DIALECT_MODERN;
  const char *rows[] = {"[\"cs_cache_fake\",[\"!r:hs\"],1]", "[\"ph_cache_fake\",[],2]",
                        "[\"dr_cache_fake\",[\"!r:hs\"],3]", "[\"no_such_cache_at_all\",[\"k\"],4]",
                        "[\"get_monthly_active_count\",[],5]", "[\"get_user_by_id\",null,6]"};
  size_t n = modern ? 6 : 5; /* keys: null exists only in the modern layout */
  uint64_t seq = rc_now_seq(t);
  for (size_t i = 0; i < n; i++) {
    char token[32];
    snprintf(token, sizeof token, "%zu", 1000 + i);
    if (!send_rdata(t, conn, "caches", token, rows[i])) return;
  }
  const ledger_entry_t *close = NULL;
  if (suite_sut_closed_within(t, conn, seq, 1000, &close)) {
    rc_fail(t, "unknown cache names and empty or null keys are accepted",
            "the connection was closed by the %s", ledger_side_name(close->side));
    return;
  }
  int64_t pos;
  suite_probe_position(t, &conn, "typing", &pos);
}

/* RD-09 (2018): POSITION sets the position, also downwards. */
static void rdata_position_lower_2018(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  if (!suite_send(t, conn, "RDATA typing 7 " TYPING_ROW_2018) ||
      !suite_send(t, conn, "POSITION typing 2") ||
      !suite_send(t, conn, "RDATA typing 3 " TYPING_ROW_2018))
    return;
  rc_observe(t, 100);
  expect_position(t, &conn, 3, "POSITION typing 2 then RDATA typing 3 leaves the position at 3");
}

#define RDATA_ROW(...) RC_TEST_ROW(.transports = RC_TRANSPORT_TCP, __VA_ARGS__)

const rc_test_def_t protocol_rdata_tests[] = {
    RDATA_ROW(.id = "protocol/rdata/batch-not-applied", .requirements = "RD-01", .level = RC_LEVEL_MUST,
              .requirement = "An RDATA whose token is 'batch' is buffered: neither applied nor moving the position.",
              .source = "synapse protocol.py@v0.33.3 on_RDATA; handler.py@v1.66.0 _process_rdata",
              .dialects = RC_DIALECT_ALL, .run = rdata_batch_not_applied),
    RDATA_ROW(.id = "protocol/rdata/batch-applied", .requirements = "RD-02", .level = RC_LEVEL_MUST,
              .requirement = "The next numeric RDATA of the stream applies the buffered rows and its own as one "
                             "unit at its token; other streams in between neither flush nor join it.",
              .source = "replication-protocol.md §2.3; reference/synapse-1.66/real-pair.txt",
              .dialects = RC_DIALECT_ALL, .run = rdata_batch_applied),
    RDATA_ROW(.id = "protocol/rdata/batch-discarded-on-disconnect", .requirements = "RD-03",
              .level = RC_LEVEL_MUST,
              .requirement = "Buffered batch rows are discarded when the connection is lost before their closing row.",
              .source = "synapse protocol.py@v0.33.3 (batches held by the connection)",
              .dialects = RC_DIALECT_2018, .run = rdata_batch_discarded),
    RDATA_ROW(.id = "protocol/rdata/arrival-order", .requirements = "RD-04", .level = RC_LEVEL_MUST,
              .requirement = "Units of one stream are applied one at a time in arrival order: after a burst of "
                             "40 units (some led by batch rows) the position is the last token, and the log's "
                             "'Received rdata' tokens strictly increase per stream.",
              .source = "synapse handler.py@v1.66.0 per-stream command queues; replication-protocol.md §2.4",
              .dialects = RC_DIALECT_MODERN, .run = rdata_arrival_order),
    RDATA_ROW(.id = "protocol/rdata/unconnected-dropped", .requirements = "RD-05", .level = RC_LEVEL_MUST,
              .requirement = "RDATA for a stream with no processed POSITION on the connection is dropped.",
              .source = "synapse handler.py@v1.66.0 (Discarding RDATA for unconnected stream)",
              .dialects = RC_DIALECT_MODERN, .run = rdata_unconnected_dropped),
    RDATA_ROW(.id = "protocol/rdata/stale-dropped", .requirements = "RD-06", .level = RC_LEVEL_MUST,
              .requirement = "RDATA whose token is at or below the worker's position for the writer is dropped.",
              .source = "synapse PR #7648 (v1.16); fake-main.txt c6", .dialects = RC_DIALECT_MODERN,
              .run = rdata_stale_dropped),
    RDATA_ROW(.id = "protocol/rdata/own-instance-ignored", .requirements = "RD-07", .level = RC_LEVEL_MUST,
              .requirement = "RDATA and POSITION carrying the worker's own instance name are ignored.",
              .source = "synapse handler.py@v1.66.0 on_RDATA, on_POSITION", .dialects = RC_DIALECT_MODERN,
              .run = rdata_own_instance_ignored),
    RDATA_ROW(.id = "protocol/rdata/caches-unknown-accepted", .requirements = "RD-08", .level = RC_LEVEL_MUST,
              .requirement = "caches rows for unknown cache names, with empty keys or null keys are accepted.",
              .source = "replication-protocol.md §4.1, §4.4; real-pair.txt (cs_cache_fake)",
              .dialects = RC_DIALECT_ALL, .run = rdata_caches_unknown),
    RDATA_ROW(.id = "protocol/rdata/position-lower-2018", .requirements = "RD-09", .level = RC_LEVEL_MUST,
              .requirement = "POSITION <stream> <token> sets the position, also lower, and later RDATA above it applies.",
              .source = "synapse client.py@v0.33.3 on_position; replication-protocol.md §4.1 typing",
              .dialects = RC_DIALECT_2018, .run = rdata_position_lower_2018),
};
const size_t protocol_rdata_test_count = sizeof protocol_rdata_tests / sizeof protocol_rdata_tests[0];
