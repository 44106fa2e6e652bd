/* protocol/position: modern POSITION handling and catch-up over the main's HTTP
 * get_repl_stream_updates endpoint. Requirements PO-01..PO-07, RC-06
 * (shared/spec/requirements.md §6; replication-protocol.md §2.4, §7). The stream used
 * is `typing`, which every Synapse worker fetches from the main over HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_http.h"
#include "stream_history.h"
#include "suite_util.h"

#define GET_PREFIX "GET /_synapse/replication/get_repl_stream_updates/typing/"
#define ROW "[\"!r:hs\",[\"@x:hs\"]]"

static const ledger_entry_t *wait_get(rc_test_t *t, uint64_t from, int timeout_ms) {
  rc_match_t get = {.entry_kind = LEDGER_HTTP, .prefix = GET_PREFIX};
  return rc_wait(t, from, &get, timeout_ms);
}

static bool query_value(const char *text, const char *key, long long *out) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "%s=", key);
  const char *p = strstr(text, pattern);
  if (p == NULL) return false;
  char *end = NULL;
  *out = strtoll(p + strlen(pattern), &end, 10);
  return end != p + strlen(pattern) && (*end == '\0' || *end == '&');
}

/* Puts the worker at typing position `at` (by RDATA after the handshake POSITIONs). */
static int start_at(rc_test_t *t, int64_t at) {
  int conn = suite_start_connected(t);
  if (conn < 0) return -1;
  if (!suite_send(t, conn, "RDATA typing master %lld " ROW, (long long)at)) return -1;
  rc_observe(t, 50);
  return conn;
}

/* PO-01: POSITION with prev == cur advances and connects; later RDATA is applied. */
static void position_advances(rc_test_t *t) {
  int conn = start_at(t, 3);
  if (conn < 0) return;
  if (!suite_send(t, conn, "POSITION typing master 3 8") ||
      !suite_send(t, conn, "RDATA typing master 9 " ROW))
    return;
  rc_observe(t, 100);
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  if (pos != 9)
    rc_fail(t, "POSITION typing master 3 8 then RDATA typing 9 leaves the worker at 9",
            "the worker's typing position is %lld", (long long)pos);
}

/* PO-02: no catch-up when prev == cur (the handshake POSITIONs). */
static void position_no_needless_fetch(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  rc_match_t any = {.entry_kind = LEDGER_HTTP,
                    .prefix = "GET /_synapse/replication/get_repl_stream_updates/"};
  const ledger_entry_t *e = rc_wait(t, 1, &any, 2000);
  if (e != NULL)
    rc_fail(t, "no get_repl_stream_updates request within 2 s of the handshake POSITIONs",
            "the worker requested '%.200s'", e->text);
}

/* PO-03 + PO-04: a gap is fetched with the right path and tokens. */
static void position_gap_fetched(rc_test_t *t, bool check_shape) {
  int conn = start_at(t, 3);
  if (conn < 0) return;
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master 4 5")) return;
  const ledger_entry_t *e = wait_get(t, seq, 1000);
  if (e == NULL) {
    rc_fail(t, "GET .../get_repl_stream_updates/typing/<txn>?from_token=3&upto_token=5 within 1 s",
            "no catch-up request after 'POSITION typing master 4 5' at position 3");
    return;
  }
  long long from, upto;
  if (!query_value(e->text, "from_token", &from) || !query_value(e->text, "upto_token", &upto)) {
    rc_fail(t, "integral from_token and upto_token query parameters", "request '%.300s'", e->text);
    return;
  }
  if (from != 3 || upto != 5) {
    rc_fail(t, "from_token=3&upto_token=5", "from_token=%lld&upto_token=%lld", from, upto);
    return;
  }
  if (!check_shape) return;
  /* A real main has no route without the txn_id segment. */
  const char *rest = e->text + strlen(GET_PREFIX);
  size_t txn = strcspn(rest, "/?");
  if (txn == 0 || rest[txn] == '/')
    rc_fail(t, "a path of the form .../get_repl_stream_updates/typing/<txn_id>",
            "request '%.300s'", e->text);
}

static void position_gap(rc_test_t *t) { position_gap_fetched(t, false); }
static void position_request_shape(rc_test_t *t) { position_gap_fetched(t, true); }

/* PO-05: limited replies are followed up; rows applied; position becomes new. */
static void position_paging(rc_test_t *t) {
  int conn = start_at(t, 3);
  if (conn < 0) return;
  mock_http_set_page_size(mockhs_http(t->mock), 1);
  stream_history_t *h = mockhs_history(t->mock);
  stream_history_append(h, "typing", 4, ROW, strlen(ROW));
  stream_history_append(h, "typing", 5, ROW, strlen(ROW));
  stream_history_append(h, "typing", 6, ROW, strlen(ROW));
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master 6 6")) return;
  const ledger_entry_t *first = wait_get(t, seq, 1000);
  if (first == NULL) {
    rc_fail(t, "PO-03: a catch-up request", "none after 'POSITION typing master 6 6' at 3");
    return;
  }
  long long from = -1;
  const ledger_entry_t *second = wait_get(t, first->seq + 1, 1000);
  if (second == NULL || !query_value(second->text, "from_token", &from) || from != 4) {
    rc_fail(t, "after a reply with limited=true and upto_token=4, another request from_token=4",
            second ? "next request was '%.200s'" : "%sno second request", second ? second->text : "");
    return;
  }
  rc_observe(t, 300); /* the remaining pages */
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  if (pos != 6)
    rc_fail(t, "the worker ends the catch-up at the POSITION's new token (6)",
            "its typing position is %lld", (long long)pos);
}

/* PO-06: rows arriving during a catch-up are processed after it, in order. */
static void position_queued_during_catchup(rc_test_t *t) {
  int conn = start_at(t, 3);
  if (conn < 0) return;
  int hold = 3 * t->profile->timing.ping_interval_ms;
  if (hold < 500) hold = 500;
  if (hold > 3000) hold = 3000;
  mock_http_set_delay(mockhs_http(t->mock), hold);
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master 4 5")) return;
  if (wait_get(t, seq, 1000) == NULL) {
    rc_fail(t, "PO-03: a catch-up request", "none after 'POSITION typing master 4 5' at 3");
    return;
  }
  if (!suite_send(t, conn, "RDATA typing master 6 " ROW)) return;
  rc_observe(t, hold + 200);
  mock_http_set_delay(mockhs_http(t->mock), 0);
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  if (pos != 6)
    rc_fail(t, "RDATA typing 6, received during the catch-up to 5, is applied after it",
            "the worker's typing position is %lld", (long long)pos);
}

/* PO-07: a failed catch-up keeps the connection and is retried from the old position
 * on the next POSITION. */
static void position_failed_catchup(rc_test_t *t) {
  int conn = start_at(t, 3);
  if (conn < 0) return;
  mock_http_fail_next(mockhs_http(t->mock), 500, 1000);
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master 4 5")) return;
  if (wait_get(t, seq, 1000) == NULL) {
    rc_fail(t, "PO-03: a catch-up request", "none after 'POSITION typing master 4 5' at 3");
    return;
  }
  rc_observe(t, 300);
  mock_http_fail_next(mockhs_http(t->mock), 0, 0);
  if (!mockhs_conn_is_open(t->mock, conn)) {
    rc_fail(t, "the replication connection stays up after a failed catch-up", "it was closed");
    return;
  }
  /* Rows of that stream are dropped until the next POSITION... */
  if (!suite_send(t, conn, "RDATA typing master 6 " ROW)) return;
  seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master 7 8")) return;
  /* ...which fetches again from the old position. */
  const ledger_entry_t *retry = NULL;
  long long from = -1;
  for (uint64_t at = seq;; at = retry->seq + 1) {
    retry = wait_get(t, at, 1000);
    if (retry == NULL) break;
    if (query_value(retry->text, "upto_token", &from) && from == 8) break;
  }
  if (retry == NULL || !query_value(retry->text, "from_token", &from) || from != 3)
    rc_fail(t, "on the next POSITION a catch-up from the old position (from_token=3)",
            retry ? "request was '%.200s'" : "%sno catch-up request", retry ? retry->text : "");
}

/* RC-06: each new connection starts with every stream not connected, and catch-up
 * starts from the worker's own position. */
static void position_fresh_connection(rc_test_t *t) {
  int conn = start_at(t, 4);
  if (conn < 0) return;
  uint64_t seq = rc_now_seq(t);
  mockhs_close_conn(t->mock, conn, false);
  conn = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 1000);
  if (conn < 0) {
    rc_fail(t, "RC-01: a reconnect", "none");
    return;
  }
  seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master 20 20")) return;
  const ledger_entry_t *e = wait_get(t, seq, 1000);
  long long from = -1;
  if (e == NULL || !query_value(e->text, "from_token", &from) || from != 4)
    rc_fail(t, "after reconnecting, catch-up from the worker's own position (from_token=4)",
            e ? "request was '%.200s'" : "%sno catch-up request", e ? e->text : "");
}

#define POSITION_ROW(...) \
  RC_TEST_ROW(.transports = RC_TRANSPORT_TCP, .dialects = RC_DIALECT_MODERN, __VA_ARGS__)

const rc_test_def_t protocol_position_tests[] = {
    POSITION_ROW(.id = "protocol/position/advances", .requirements = "PO-01", .level = RC_LEVEL_MUST,
                 .requirement = "A POSITION whose prev_token equals the worker's position advances it to "
                                "new_token and marks the stream connected.",
                 .source = "synapse handler.py@v1.66.0 _process_position", .run = position_advances),
    POSITION_ROW(.id = "protocol/position/no-needless-fetch", .requirements = "PO-02", .level = RC_LEVEL_SHOULD,
                 .requirement = "A POSITION whose prev_token equals the worker's position triggers no catch-up.",
                 .source = "synapse handler.py@v1.66.0 (missing_updates = prev_token != current_token)",
                 .run = position_no_needless_fetch),
    POSITION_ROW(.id = "protocol/position/gap-fetched", .requirements = "PO-03", .level = RC_LEVEL_MUST,
                 .requirement = "When the worker's position is below prev_token it fetches the rows "
                                "(cur, new_token] before advancing.",
                 .source = "reference/synapse-1.67-redis/fake-main.txt; replication-protocol.md §2.4",
                 .run = position_gap),
    POSITION_ROW(.id = "protocol/position/request-shape", .requirements = "PO-04", .level = RC_LEVEL_MUST,
                 .requirement = "The catch-up request is GET .../get_repl_stream_updates/<stream>/<txn_id>"
                                "?from_token=<int>&upto_token=<int>.",
                 .source = "synapse replication/http/streams.py; tests/replication/_base.py",
                 .run = position_request_shape),
    POSITION_ROW(.id = "protocol/position/paging", .requirements = "PO-05", .level = RC_LEVEL_MUST,
                 .requirement = "A reply with limited=true is followed by another request from upto_token "
                                "until limited is false; the position then becomes new_token.",
                 .source = "synapse handler.py@v1.66.0 _process_position (while missing_updates)",
                 .run = position_paging),
    POSITION_ROW(.id = "protocol/position/queued-during-catchup", .requirements = "PO-06",
                 .level = RC_LEVEL_MUST,
                 .requirement = "RDATA and POSITION for a stream arriving during its catch-up are processed "
                                "after it, in arrival order.",
                 .source = "synapse handler.py@v1.66.0 per-stream command queues",
                 .tags = "timing-dependent", .run = position_queued_during_catchup),
    POSITION_ROW(.id = "protocol/position/failed-catchup", .requirements = "PO-07", .level = RC_LEVEL_MUST,
                 .requirement = "A failed catch-up keeps the connection, does not advance, drops the "
                                "stream's RDATA until the next POSITION, then fetches again from the old position.",
                 .source = "synapse handler.py@v1.66.0 _unsafe_process_queue, _process_position",
                 .run = position_failed_catchup),
    POSITION_ROW(.id = "protocol/position/fresh-connection", .requirements = "RC-06", .level = RC_LEVEL_MUST,
                 .requirement = "On a new connection every stream is not connected until its POSITION, and "
                                "catch-up starts from the worker's own position.",
                 .source = "synapse handler.py@v1.66.0 _streams_by_connection; 1.67-redis/fake-main.txt",
                 .run = position_fresh_connection),
};
const size_t protocol_position_test_count =
    sizeof protocol_position_tests / sizeof protocol_position_tests[0];
