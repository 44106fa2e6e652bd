/* protocol/reconnect: the worker comes back after every kind of connection loss, with
 * bounded back-off, repeating its full opening and (2018) asking for the streams from
 * the positions it really reached. Requirements RC-01..RC-05
 * (shared/spec/requirements.md §4; facts in replication-protocol.md §3.4). */
#include <stdio.h>
#include <string.h>

#include "suite_util.h"

/* Waits for the close of conn and the next connection; fails with `cause` in the text
 * when the reconnect does not come within the RC-01 bound. Returns the new id or -1. */
static int expect_reconnect(rc_test_t *t, int conn, uint64_t from_seq, const char *cause) {
  int bound = suite_reconnect_bound_ms(t);
  const ledger_entry_t *close = suite_wait_sut_close(t, conn, from_seq, 2000);
  if (close == NULL) {
    rc_error(t, "connection c%d did not end after %s", conn, cause);
    return -1;
  }
  rc_match_t open = {.entry_kind = LEDGER_OPEN};
  const ledger_entry_t *next = rc_wait(t, close->seq, &open, bound + 1000);
  if (next == NULL || rc_entry_gap_ms(close, next) > bound) {
    rc_fail(t, "a new connection within 1.36 * D_max + 0.5 s of the loss",
            next == NULL ? "no new connection within %d ms after %s"
                         : "the new connection came %d ms after %s",
            next == NULL ? bound + 1000 : (int)rc_entry_gap_ms(close, next), cause);
    return -1;
  }
  return suite_wait_new_conn(t, close->seq, 1000);
}

/* RC-01: after the main's FIN, RST, a protocol error and a wrong server name. */
static void reconnect_after_loss(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint64_t seq = rc_now_seq(t);
  mockhs_close_conn(t->mock, conn, false);
  if ((conn = expect_reconnect(t, conn, seq, "the mock's FIN")) < 0) return;
  seq = rc_now_seq(t);
  mockhs_close_conn(t->mock, conn, true);
  if ((conn = expect_reconnect(t, conn, seq, "the mock's RST")) < 0) return;
  seq = rc_now_seq(t);
  if (!suite_send(t, conn, "HELLO world")) return;
  if ((conn = expect_reconnect(t, conn, seq, "a protocol error (HELLO world)")) < 0) return;
  /* Every later connection gets the wrong SERVER name; the worker must keep trying. */
  mockhs_set_server_name(t->mock, "wrong.example");
  seq = rc_now_seq(t);
  mockhs_close_conn(t->mock, conn, false);
  if ((conn = expect_reconnect(t, conn, seq, "the mock's FIN")) < 0) return;
  expect_reconnect(t, conn, seq, "'SERVER wrong.example'");
}

/* RC-01: after the worker's own ping timeout. */
static void reconnect_after_timeout(rc_test_t *t) {
  t->mock_config.ping_interval_ms = 0;
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  const profile_timing_t *tm = &t->profile->timing;
  const ledger_entry_t *close =
      suite_wait_sut_close(t, conn, 1, tm->ping_timeout_ms + tm->ping_interval_ms + 2500);
  if (close == NULL) {
    rc_fail(t, "KA-03: the worker times out the silent connection", "it did not");
    return;
  }
  expect_reconnect(t, conn, close->seq, "the ping timeout");
}

/* RC-02: keeps trying while the main is unreachable. */
static void reconnect_while_unreachable(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  rc_error_t err;
  if (mockhs_set_listening(t->mock, false, &err) != 0) {
    rc_error(t, "%s", err.msg);
    return;
  }
  mockhs_close_conn(t->mock, conn, false);
  /* 60 s for Synapse's 1 s cap; a few back-off caps for a fast profile. */
  int outage = 8 * t->profile->timing.reconnect_max_ms;
  if (outage < 1500) outage = 1500;
  if (outage > 60000) outage = 60000;
  rc_observe(t, outage);
  uint64_t seq = rc_now_seq(t);
  if (mockhs_set_listening(t->mock, true, &err) != 0) {
    rc_error(t, "could not listen again on the same port: %s", err.msg);
    return;
  }
  rc_match_t open = {.entry_kind = LEDGER_OPEN};
  int bound = suite_reconnect_bound_ms(t);
  if (rc_wait(t, seq, &open, bound) == NULL)
    rc_fail(t, "a connection within 1.36 * D_max + 0.5 s of the main becoming reachable again",
            "none within %d ms after a %d ms outage", bound, outage);
}

/* RC-03: accept-and-close at once; attempts are spaced >= 0.1 s and <= the bound. */
static void reconnect_no_tight_loop(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  int window = 12 * t->profile->timing.reconnect_max_ms;
  if (window < 3000) window = 3000;
  if (window > 30000) window = 30000;
  int bound = suite_reconnect_bound_ms(t);
  const ledger_entry_t *prev = NULL;
  rc_match_t open = {.entry_kind = LEDGER_OPEN};
  uint64_t seq = rc_now_seq(t);
  mockhs_close_conn(t->mock, conn, false);
  int attempts = 0;
  int elapsed = 0;
  while (elapsed < window) {
    const ledger_entry_t *o = rc_wait(t, seq, &open, bound + 500);
    if (o == NULL) {
      rc_fail(t, "no interval between attempts above 1.36 * D_max + 0.5 s",
              "no new connection within %d ms (after %d attempts)", bound + 500, attempts);
      return;
    }
    attempts++;
    if (prev != NULL) {
      int64_t gap = rc_entry_gap_ms(prev, o);
      elapsed += (int)gap;
      if (gap < 100) {
        rc_fail(t, "attempts at least 0.1 s apart", "two connections %lld ms apart (attempt %d)",
                (long long)gap, attempts);
        return;
      }
      if (gap > bound) {
        rc_fail(t, "no interval between attempts above 1.36 * D_max + 0.5 s",
                "%lld ms between attempts %d and %d", (long long)gap, attempts - 1, attempts);
        return;
      }
    }
    prev = o;
    seq = o->seq + 1;
    mockhs_close_conn(t->mock, o->conn_id, false);
  }
  rc_note(t, "%d connection attempts observed", attempts);
}

/* RC-04: every new connection repeats the complete opening. */
static void reconnect_repeats_opening(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  for (int round = 0; round < 3; round++) {
    uint64_t seq = rc_now_seq(t);
    mockhs_close_conn(t->mock, conn, false);
    rc_match_t open = {.entry_kind = LEDGER_OPEN};
    const ledger_entry_t *o = rc_wait(t, seq, &open, suite_reconnect_bound_ms(t) + 1000);
    if (o == NULL) {
      rc_fail(t, "RC-01: a reconnect", "none after round %d", round + 1);
      return;
    }
    conn = o->conn_id;
    proto_command_kind_t needed[] = {PROTO_CMD_PING, PROTO_CMD_REPLICATE};
    for (size_t i = 0; i < 2; i++) {
      rc_match_t m = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = needed[i]};
      if (rc_wait(t, o->seq, &m, 1000) == NULL) {
        char lines[1024];
        rc_fail(t, "PING and REPLICATE within 1 s on every new connection",
                "no %s on connection c%d (reconnect %d); the worker sent: %s",
                proto_command_name(needed[i]), conn, round + 1,
                suite_sut_lines(t, conn, lines, sizeof lines));
        return;
      }
    }
  }
}

/* RC-05 (2018): REPLICATE tokens are the positions reached; an unfinished batch does
 * not count. */
static void reconnect_tokens_2018(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  int64_t events_before;
  /* First learn where events stands (and get a fresh connection). */
  if (!suite_probe_position(t, &conn, "events", &events_before)) return;
  /* Tokens far above the mock's POSITION caches, so that they are above a real worker's
   * own start too: it takes that from its database (a Synapse v1.12 worker on a freshly
   * prepared one starts near 11) and never moves caches back. */
  if (!suite_send(t, conn, "RDATA caches 1000005 [\"get_user_by_id\", [\"@a:hs\"], 1]") ||
      !suite_send(t, conn, "RDATA caches 1000006 [\"get_user_by_id\", [\"@b:hs\"], 2]") ||
      !suite_send(t, conn, "RDATA events batch [\"$e:hs\", \"!r:hs\", \"m.room.message\", null, null]"))
    return;
  rc_observe(t, 100);
  int64_t caches, events;
  int probe_conn = conn;
  if (!suite_probe_position(t, &probe_conn, "caches", &caches)) return;
  char prefix[64] = "REPLICATE events ";
  rc_match_t rep = {.conn_id = probe_conn, .side = LEDGER_SIDE_SUT, .prefix = prefix};
  const ledger_entry_t *e = rc_wait(t, 1, &rep, 1000);
  proto_command_t cmd;
  if (e == NULL || !rc_parse_sut_line(t, e, &cmd)) {
    rc_fail(t, "a REPLICATE events line on reconnect", "none");
    return;
  }
  events = cmd.token;
  if (caches != 1000006)
    rc_fail(t, "REPLICATE caches 1000006 (the last applied token)", "REPLICATE caches %lld",
            (long long)caches);
  else if (events != events_before)
    rc_fail(t, "REPLICATE events at its earlier token (the batch was never completed)",
            "REPLICATE events %lld, earlier %lld", (long long)events, (long long)events_before);
}

#define RECONNECT_ROW(...) RC_TEST_ROW(.transports = RC_TRANSPORT_TCP, __VA_ARGS__)

const rc_test_def_t protocol_reconnect_tests[] = {
    RECONNECT_ROW(.id = "protocol/reconnect/after-loss", .requirements = "RC-01", .level = RC_LEVEL_MUST,
                  .requirement = "After the connection is lost (FIN, RST, protocol error, wrong remote) "
                                 "the worker connects again within 1.36 * D_max + 0.5 s.",
                  .source = "Twisted ReconnectingClientFactory; synapse PR #6617; fake-main.txt c1-c7",
                  .dialects = RC_DIALECT_ALL, .run = reconnect_after_loss),
    RECONNECT_ROW(.id = "protocol/reconnect/after-timeout", .requirements = "RC-01", .level = RC_LEVEL_MUST,
                  .requirement = "After its own ping timeout the worker connects again within 1.36 * D_max + 0.5 s.",
                  .source = "Twisted ReconnectingClientFactory; fake-main.txt c1",
                  .dialects = RC_DIALECT_ALL, .tags = "slow,timing-dependent", .run = reconnect_after_timeout),
    RECONNECT_ROW(.id = "protocol/reconnect/while-unreachable", .requirements = "RC-02", .level = RC_LEVEL_MUST,
                  .requirement = "While the main is unreachable the worker keeps trying, without limit.",
                  .source = "Twisted ReconnectingClientFactory (continueTrying)",
                  .dialects = RC_DIALECT_ALL, .tags = "slow", .run = reconnect_while_unreachable),
    RECONNECT_ROW(.id = "protocol/reconnect/no-tight-loop", .requirements = "RC-03", .level = RC_LEVEL_SHOULD,
                  .requirement = "Reconnect attempts are at least 0.1 s apart and no interval exceeds "
                                 "1.36 * D_max + 0.5 s.",
                  .source = "synapse PRs #4749, #6617", .dialects = RC_DIALECT_ALL,
                  .tags = "slow,timing-dependent", .run = reconnect_no_tight_loop),
    RECONNECT_ROW(.id = "protocol/reconnect/opening-repeated", .requirements = "RC-04", .level = RC_LEVEL_MUST,
                  .requirement = "Every new connection repeats the complete opening.",
                  .source = "synapse protocol.py connectionMade @v0.33.3, @v1.66.0; fake-main.txt c2-c7",
                  .dialects = RC_DIALECT_ALL, .run = reconnect_repeats_opening),
    RECONNECT_ROW(.id = "protocol/reconnect/tokens-2018", .requirements = "RC-05", .level = RC_LEVEL_MUST,
                  .requirement = "REPLICATE tokens on a new connection are the last positions reached; "
                                 "batch rows without their closing row do not count.",
                  .source = "synapse client.py@v0.33.3 get_streams_to_replicate, on_rdata",
                  .dialects = RC_DIALECT_2018, .run = reconnect_tokens_2018),
};
const size_t protocol_reconnect_test_count =
    sizeof protocol_reconnect_tests / sizeof protocol_reconnect_tests[0];
