/* protocol/keepalive: the worker keeps the connection alive and times out a main that
 * went silent after having pinged. Requirements KA-01, KA-03, KA-04
 * (shared/spec/requirements.md §2; facts in replication-protocol.md §3.2). */
#include <stdio.h>
#include <string.h>

#include "rc_clock.h"
#include "suite_util.h"

/* KA-01: largest gap between consecutive worker lines over a window of twelve
 * keepalive periods (60 s for Synapse's 5 s), with the mock pinging or silent. */
static void keepalive_gaps(rc_test_t *t, bool mock_pings) {
  const profile_timing_t *tm = &t->profile->timing;
  if (!rc_start(t)) return;
  int conn;
  if (suite_opening_server_line(t, &conn) == NULL) return;
  if (!mock_pings) mockhs_set_pinging(t->mock, false);
  int window = 12 * tm->ping_interval_ms;
  /* A silent mock is timed out after T_to; stop observing before that. */
  if (!mock_pings && window > tm->ping_timeout_ms - 1000) window = tm->ping_timeout_ms - 1000;
  if (window < 3 * tm->ping_interval_ms) window = 3 * tm->ping_interval_ms;
  rc_observe(t, window);

  int64_t allowed = 2LL * tm->ping_interval_ms + 1000;
  ledger_t *ledger = mockhs_ledger(t->mock);
  const ledger_entry_t *prev = NULL, *worst_a = NULL, *worst_b = NULL;
  int64_t worst = 0;
  bool closed = false;
  for (uint64_t seq = ledger_first_seq(ledger); seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->conn_id != conn) continue;
    if (e->kind == LEDGER_CLOSE) {
      closed = true;
      break;
    }
    if (e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_SUT) continue;
    if (prev != NULL && rc_entry_gap_ms(prev, e) > worst) {
      worst = rc_entry_gap_ms(prev, e);
      worst_a = prev;
      worst_b = e;
    }
    prev = e;
  }
  if (prev == NULL) {
    rc_fail(t, "worker lines on the connection", "the worker sent nothing");
    return;
  }
  /* The gap still open at the end of the window counts too. */
  int64_t tail = rc_clock_mono_ms() - prev->mono_ns / 1000000;
  if (closed) {
    rc_fail(t, "the connection stays up while the mock is within its keepalive",
            "the connection was closed during the %d ms window", window);
  } else if (worst > allowed || tail > allowed) {
    if (tail > worst) {
      rc_fail(t, "a worker line at least every 2*T_ping + 1 s",
              "silent for %lld ms after '%.100s' (allowed %lld ms)", (long long)tail, prev->text,
              (long long)allowed);
    } else {
      rc_fail(t, "a worker line at least every 2*T_ping + 1 s",
              "%lld ms between '%.100s' and '%.100s' (allowed %lld ms)", (long long)worst,
              worst_a->text, worst_b->text, (long long)allowed);
    }
  }
}

static void keepalive_gaps_pinging_mock(rc_test_t *t) { keepalive_gaps(t, true); }
static void keepalive_gaps_silent_mock(rc_test_t *t) { keepalive_gaps(t, false); }

/* Starts, silences the mock after its opening, and waits for the worker's close.
 * Returns the close entry (or NULL with a failure recorded) and the mock's last line. */
static const ledger_entry_t *starve(rc_test_t *t, int *conn, const ledger_entry_t **last_mock) {
  const profile_timing_t *tm = &t->profile->timing;
  /* The mock still sends its opening PING (arming the worker's timeout), then nothing. */
  t->mock_config.ping_interval_ms = 0;
  if (!rc_start(t)) return NULL;
  if (suite_opening_server_line(t, conn) == NULL) return NULL;
  int deadline = tm->ping_timeout_ms + tm->ping_interval_ms + 2000 + 500;
  const ledger_entry_t *close = suite_wait_sut_close(t, *conn, 1, deadline);
  if (close == NULL) {
    rc_fail(t, "the worker closes the connection within T_to + T_ping + 2 s of the mock's last line",
            "the connection was still open %d ms after the mock went silent", deadline);
    return NULL;
  }
  *last_mock = NULL;
  ledger_t *ledger = mockhs_ledger(t->mock);
  for (uint64_t seq = close->seq; seq-- > ledger_first_seq(ledger);) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->conn_id == *conn && e->kind == LEDGER_LINE && e->side == LEDGER_SIDE_MOCK) {
      *last_mock = e;
      break;
    }
  }
  return close;
}

/* KA-03: close within [T_to - 0.5 s, T_to + T_ping + 2 s] after the last valid line. */
static void keepalive_timeout(rc_test_t *t) {
  const profile_timing_t *tm = &t->profile->timing;
  int conn;
  const ledger_entry_t *last_mock = NULL;
  const ledger_entry_t *close = starve(t, &conn, &last_mock);
  if (close == NULL || last_mock == NULL) return;
  int64_t after = rc_entry_gap_ms(last_mock, close);
  int64_t low = tm->ping_timeout_ms - 500, high = (int64_t)tm->ping_timeout_ms + tm->ping_interval_ms + 2000;
  if (close->side != LEDGER_SIDE_SUT) {
    rc_fail(t, "the worker closes the silent connection", "the mock closed it (%s)",
            ledger_close_how_name(close->how));
  } else if (after < low || after > high) {
    rc_fail(t, "a close between T_to - 0.5 s and T_to + T_ping + 2 s after the mock's last line",
            "closed %lld ms after it (window %lld..%lld ms)", (long long)after, (long long)low,
            (long long)high);
  }
}

/* KA-04: the close is preceded by ERROR ping timeout. */
static void keepalive_timeout_error(rc_test_t *t) {
  int conn;
  const ledger_entry_t *last_mock = NULL;
  const ledger_entry_t *close = starve(t, &conn, &last_mock);
  if (close == NULL) return;
  const ledger_entry_t *last = suite_last_sut_line_before(t, conn, close->seq);
  if (last == NULL || strcmp(last->text, "ERROR ping timeout") != 0)
    rc_fail(t, "'ERROR ping timeout' as the worker's last line before closing",
            last ? "last line was '%.200s'" : "%sno line before the close", last ? last->text : "");
}

/* KA-05: any valid command, not only PING, resets the receive clock. */
static void keepalive_any_command_resets(rc_test_t *t) {
  const profile_timing_t *tm = &t->profile->timing;
  t->mock_config.ping_interval_ms = 0; /* one PING in the opening, then none */
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  /* A POSITION every 0.8 * T_to for 3.6 * T_to (Synapse: every 20 s for 90 s). */
  int step = tm->ping_timeout_ms * 4 / 5;
  for (int i = 0; i < 4; i++) {
    uint64_t seq = rc_now_seq(t);
    const ledger_entry_t *close = NULL;
    if (suite_sut_closed_within(t, conn, seq, step, &close)) {
      rc_fail(t, "no timeout while the main sends valid commands more often than T_to",
              "the connection was closed by the %s after %d POSITION line(s) %d ms apart",
              ledger_side_name(close->side), i, step);
      return;
    }
    if (!suite_send(t, conn, t->profile->dialect == PROTO_DIALECT_MODERN
                                 ? "POSITION user_signature master 3 3" : "POSITION caches 4"))
      return;
  }
}

/* KA-06: after many reconnects, exactly one ping schedule runs. */
static void keepalive_single_schedule(rc_test_t *t) {
  const profile_timing_t *tm = &t->profile->timing;
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  for (int i = 0; i < 10; i++) {
    uint64_t seq = rc_now_seq(t);
    mockhs_close_conn(t->mock, conn, i % 2 == 1);
    conn = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 1000);
    if (conn < 0) {
      rc_fail(t, "RC-01: a reconnect", "none after forced close %d", i + 1);
      return;
    }
  }
  uint64_t from = rc_now_seq(t);
  int window = 12 * tm->ping_interval_ms;
  if (window < 2000) window = 2000;
  rc_observe(t, window);
  /* Beyond the opening PING, no two worker PINGs closer than T_ping - min(1 s, T_ping/2). */
  int slack = tm->ping_interval_ms / 2 < 1000 ? tm->ping_interval_ms / 2 : 1000;
  int64_t min_gap = tm->ping_interval_ms - slack;
  ledger_t *ledger = mockhs_ledger(t->mock);
  const ledger_entry_t *prev = NULL;
  for (uint64_t seq = from; seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->conn_id != conn) continue;
    if (e->kind == LEDGER_CLOSE) {
      rc_fail(t, "the connection stays up", "it was closed by the %s", ledger_side_name(e->side));
      return;
    }
    if (e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_SUT || strncmp(e->text, "PING", 4) != 0)
      continue;
    if (prev != NULL && rc_entry_gap_ms(prev, e) < min_gap) {
      rc_fail(t, "one ping schedule: PINGs at least T_ping apart",
              "two PINGs %lld ms apart after 10 reconnects (minimum %lld)",
              (long long)rc_entry_gap_ms(prev, e), (long long)min_gap);
      return;
    }
    prev = e;
  }
}

const rc_test_def_t protocol_keepalive_tests[] = {
    RC_TEST_ROW(.id = "protocol/keepalive/any-command-resets", .requirements = "KA-05",
                .level = RC_LEVEL_MUST,
                .requirement = "Every valid inbound command, not only PING, resets the receive clock.",
                .source = "synapse protocol.py@v1.66.0 _parse_and_dispatch_line (last_received_command)",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .tags = "slow,timing-dependent", .run = keepalive_any_command_resets),
    RC_TEST_ROW(.id = "protocol/keepalive/single-schedule", .requirements = "KA-06",
                .level = RC_LEVEL_MUST,
                .requirement = "Keepalive state belongs to one connection: after reconnects exactly one "
                               "ping schedule runs and no old timer acts on the new connection.",
                .source = "synapse protocol.py@v1.66.0 connectionLost (stops _send_ping_loop)",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .tags = "slow,timing-dependent", .run = keepalive_single_schedule),
    RC_TEST_ROW(.id = "protocol/keepalive/idle-pinging-mock", .requirements = "KA-01",
                .level = RC_LEVEL_MUST,
                .requirement = "While connected, the worker sends some line at least every "
                               "2*T_ping (mock pinging normally).",
                .source = "synapse protocol.py@v1.66.0 send_ping; reference/synapse-1.66/fake-main.txt c1",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .tags = "slow,timing-dependent", .run = keepalive_gaps_pinging_mock),
    RC_TEST_ROW(.id = "protocol/keepalive/idle-silent-mock", .requirements = "KA-01",
                .level = RC_LEVEL_MUST,
                .requirement = "While connected, the worker sends some line at least every "
                               "2*T_ping (mock silent after its opening).",
                .source = "synapse protocol.py@v1.66.0 send_ping; reference/synapse-1.12/real-pair.txt",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .tags = "slow,timing-dependent", .run = keepalive_gaps_silent_mock),
    RC_TEST_ROW(.id = "protocol/keepalive/ping-timeout", .requirements = "KA-03",
                .level = RC_LEVEL_MUST,
                .requirement = "Once the worker has received a PING, it closes the connection "
                               "when nothing valid was received for more than T_to.",
                .source = "synapse protocol.py@v1.66.0 send_ping (PING_TIMEOUT_MS); "
                          "reference/synapse-1.66/fake-main.txt c1",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .tags = "slow,timing-dependent", .run = keepalive_timeout),
    RC_TEST_ROW(.id = "protocol/keepalive/ping-timeout-error", .requirements = "KA-04",
                .level = RC_LEVEL_SHOULD,
                .requirement = "The close for a receive timeout is preceded by ERROR ping timeout.",
                .source = "synapse protocol.py@v1.66.0 send_ping; reference/synapse-1.66/fake-main.txt c1",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .tags = "slow,timing-dependent", .run = keepalive_timeout_error),
};
const size_t protocol_keepalive_test_count =
    sizeof protocol_keepalive_tests / sizeof protocol_keepalive_tests[0];
