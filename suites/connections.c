/* connections: every connection the worker opens is closed when it is done with it
 * (requirements.md §13, CL-01..CL-04, CL-06; CL-05 is protocol/shutdown/sigterm-closes).
 *
 * Two channels: the wire ledger (who closed a connection, and how: FIN, RST, timeout)
 * and the SUT's process group in /proc (procfs.h): its open descriptors and the TCP
 * sockets it holds to the mock's replication and HTTP ports, with their states. Every
 * poll of /proc runs the mock's loop in between and has a deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_http.h"
#include "procfs.h"
#include "rc_clock.h"
#include "stream_history.h"
#include "suite_util.h"

#define STORM_CYCLES 50
#define STORM_FD_SLACK 5
#define RELEASE_MS 2000
#define CATCHUPS 100
#define HTTP_POOL_MAX 10

/* A snapshot of the SUT's group; false after recording an ERROR. */
static bool snapshot(rc_test_t *t, procfs_snapshot_t *s) {
  rc_error_t err;
  if (procfs_snapshot_group(sut_pid(t->sut), s, &err) == 0) return true;
  procfs_snapshot_free(s);
  return rc_error(t, "cannot inspect the SUT's processes: %s", err.msg);
}

/* The worker's local port of connection conn (the mock records the peer address when it
 * accepts), or 0. */
static uint16_t conn_local_port(rc_test_t *t, int conn) {
  rc_match_t open = {.conn_id = conn, .entry_kind = LEDGER_OPEN};
  const ledger_entry_t *e = rc_wait(t, 1, &open, 0);
  const char *colon = e != NULL ? strrchr(e->text, ':') : NULL;
  long port = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;
  return port > 0 && port <= 0xffff ? (uint16_t)port : 0;
}

typedef struct settle {
  rc_test_t *t;
  uint16_t port;       /* the mock's port */
  uint16_t old_local;  /* a closed connection's local port that must be gone (0: none) */
  size_t max_established;
  bool failed; /* /proc could not be read */
  procfs_snapshot_t last;
} settle_t;

/* Whether the group holds no CLOSE_WAIT socket to the port, at most max_established
 * ESTABLISHED ones and no socket of old_local in any state (last keeps the snapshot). */
static bool settled(void *arg) {
  settle_t *s = arg;
  procfs_snapshot_free(&s->last);
  rc_error_t err;
  if (procfs_snapshot_group(sut_pid(s->t->sut), &s->last, &err) != 0) {
    s->failed = true;
    return true;
  }
  return procfs_count_tcp(&s->last, s->port, PROCFS_TCP_CLOSE_WAIT) == 0 &&
         procfs_count_tcp(&s->last, s->port, PROCFS_TCP_ESTABLISHED) <= s->max_established &&
         (s->old_local == 0 || procfs_find_local(&s->last, s->old_local) == NULL);
}

/* Waits up to timeout_ms until connection old_conn's socket is released (and settled()
 * holds); fails the test with `expected` when it does not come. Returns whether it did. */
static bool wait_released(rc_test_t *t, int old_conn, int timeout_ms, const char *expected,
                          const char *after) {
  uint16_t port = (uint16_t)mockhs_port(t->mock);
  settle_t s = {.t = t, .port = port, .old_local = conn_local_port(t, old_conn),
                .max_established = 1};
  bool ok = settled(&s) || mockhs_run_until(t->mock, settled, &s, timeout_ms, 50);
  if (s.failed) {
    procfs_snapshot_free(&s.last);
    return rc_error(t, "cannot inspect the SUT's processes (it exited?)");
  }
  if (!ok) {
    char held[1024];
    const procfs_tcp_t *old = s.old_local ? procfs_find_local(&s.last, s.old_local) : NULL;
    rc_fail(t, expected,
            "%d ms after %s the SUT still holds c%d's socket (:%u, %s); %zu CLOSE_WAIT and %zu "
            "ESTABLISHED socket(s) to port %u: %s",
            timeout_ms, after, old_conn, s.old_local,
            old != NULL ? procfs_tcp_state_name(old->state) : "released",
            procfs_count_tcp(&s.last, port, PROCFS_TCP_CLOSE_WAIT),
            procfs_count_tcp(&s.last, port, PROCFS_TCP_ESTABLISHED), port,
            procfs_describe(&s.last, held, sizeof held));
  }
  procfs_snapshot_free(&s.last);
  return ok;
}

/* CL-01: after the worker's ERROR (for a line it cannot accept) the worker closes the
 * connection itself within 1 s: FIN, or RST once the ERROR arrived; and lets go of the
 * socket. */
static void error_then_close(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "HELLO world")) return;
  rc_match_t error = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_ERROR};
  const ledger_entry_t *e = rc_wait(t, seq, &error, 1000);
  if (e == NULL) {
    char lines[1024];
    rc_fail(t, "an ERROR line for the unknown command 'HELLO world' (FR-09)",
            "none within 1 s; the worker sent: %s", suite_sut_lines(t, conn, lines, sizeof lines));
    return;
  }
  const ledger_entry_t *close = suite_wait_sut_close(t, conn, e->seq, 1000);
  if (close == NULL) {
    rc_fail(t, "the worker closes the connection within 1 s of its ERROR",
            "c%d still open (or closed by the mock) 1 s after '%.200s'", conn, e->text);
    return;
  }
  if (close->side != LEDGER_SIDE_SUT ||
      (close->how != LEDGER_CLOSE_FIN && close->how != LEDGER_CLOSE_RST)) {
    rc_fail(t, "a close by the worker (FIN, or RST after the ERROR arrived)",
            "c%d ended: closed by %s (%s)", conn, ledger_side_name(close->side),
            ledger_close_how_name(close->how));
    return;
  }
  if (t->profile->transport != PROFILE_TRANSPORT_TCP) return;
  /* The next connection may be up already: one ESTABLISHED socket is allowed. */
  wait_released(t, conn, RELEASE_MS,
                "the closed connection's socket released (no CLOSE_WAIT, at most the new "
                "connection ESTABLISHED)",
                "the worker's close");
}

/* CL-02: when the main closes (FIN, then RST) the worker releases its end within 2 s. */
static void peer_close_released(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  for (int step = 0; step < 2; step++) {
    uint64_t seq = rc_now_seq(t);
    mockhs_close_conn(t->mock, conn, step == 1);
    const char *how = step == 0 ? "the mock's FIN" : "the mock's RST";
    /* The mock flushes before it closes: the check starts once the close is on the wire. */
    rc_match_t closed = {.conn_id = conn, .entry_kind = LEDGER_CLOSE};
    if (rc_wait(t, seq, &closed, 1000) == NULL) {
      rc_error(t, "the mock did not close c%d within 1 s", conn);
      return;
    }
    /* A worker that reconnects at once still must not keep the old socket. */
    if (!wait_released(t, conn, RELEASE_MS,
                       "the worker closes its end when the main closes the connection (no "
                       "CLOSE_WAIT socket left)",
                       how))
      return;
    if ((conn = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 1000)) < 0) {
      rc_error(t, "the worker did not reconnect after %s (RC-01)", how);
      return;
    }
  }
}

/* Whether connection `conn` was still open when entry `at` was recorded. */
static bool open_at(rc_test_t *t, int conn, uint64_t at) {
  ledger_t *ledger = mockhs_ledger(t->mock);
  for (uint64_t seq = ledger_first_seq(ledger); seq < at; seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e != NULL && e->conn_id == conn && e->kind == LEDGER_CLOSE) return false;
  }
  return true;
}

/* CL-03: across reconnects the worker never holds two replication connections. */
static void single_connection(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint16_t port = (uint16_t)mockhs_port(t->mock);
  for (int round = 0; round < 6; round++) {
    uint64_t seq = rc_now_seq(t);
    if (round % 3 == 2) {
      if (!suite_send(t, conn, "HELLO world")) return;
    } else {
      mockhs_close_conn(t->mock, conn, round % 3 == 1);
    }
    int next = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 2000);
    if (next < 0) {
      rc_error(t, "the worker did not reconnect in round %d (RC-01)", round + 1);
      return;
    }
    rc_match_t open = {.conn_id = next, .entry_kind = LEDGER_OPEN};
    const ledger_entry_t *opened = rc_wait(t, seq, &open, 0);
    if (opened != NULL && open_at(t, conn, opened->seq)) {
      rc_fail(t, "at most one replication connection at a time",
              "c%d was accepted while c%d was still open (round %d)", next, conn, round + 1);
      return;
    }
    conn = next;
    procfs_snapshot_t s;
    if (t->profile->transport != PROFILE_TRANSPORT_TCP) continue;
    if (!snapshot(t, &s)) return;
    size_t established = procfs_count_tcp(&s, port, PROCFS_TCP_ESTABLISHED);
    if (established > 1) {
      char held[1024];
      rc_fail(t, "at most one replication connection at a time",
              "after round %d the SUT holds %zu ESTABLISHED sockets to port %u: %s", round + 1,
              established, port, procfs_describe(&s, held, sizeof held));
      procfs_snapshot_free(&s);
      return;
    }
    procfs_snapshot_free(&s);
  }
}

/* CL-04: 50 forced reconnects (FIN, RST, protocol error and a few ping timeouts) leave
 * the SUT's descriptors at most 5 above where they started and no CLOSE_WAIT socket. */
static void storm_no_fd_growth(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint16_t port = (uint16_t)mockhs_port(t->mock);
  rc_observe(t, 200);
  procfs_snapshot_t base;
  if (!snapshot(t, &base)) return;
  size_t fds0 = base.fds;
  char base_text[512];
  procfs_describe(&base, base_text, sizeof base_text);
  procfs_snapshot_free(&base);
  int bound = suite_reconnect_bound_ms(t);
  const profile_timing_t *tm = &t->profile->timing;
  int timeouts = 0;
  for (int cycle = 0; cycle < STORM_CYCLES; cycle++) {
    uint64_t seq = rc_now_seq(t);
    int kind = cycle % 10 == 9 && timeouts < 2 ? 3 : cycle % 3;
    const char *what = kind == 0 ? "FIN" : kind == 1 ? "RST" : kind == 2 ? "protocol error"
                                                                          : "ping timeout";
    int wait_ms = bound + 2000;
    if (kind == 0 || kind == 1) {
      mockhs_close_conn(t->mock, conn, kind == 1);
    } else if (kind == 2) {
      if (!suite_send(t, conn, "HELLO world")) return;
    } else {
      /* The mock goes silent on this connection: the worker's ping timeout ends it. */
      timeouts++;
      mockhs_set_conn_stalled(t->mock, conn, true);
      wait_ms += (int)(tm->ping_timeout_ms + tm->ping_interval_ms);
    }
    if ((conn = suite_wait_new_conn(t, seq, wait_ms)) < 0) {
      rc_error(t, "the worker did not reconnect after cycle %d (%s) within %d ms (RC-01)",
               cycle + 1, what, wait_ms);
      return;
    }
  }
  /* Closes in flight settle (up to 2 s); then the count must be back near the start. */
  settle_t settle = {.t = t, .port = port, .max_established = 1};
  mockhs_run_until(t->mock, settled, &settle, RELEASE_MS, 50);
  procfs_snapshot_free(&settle.last);
  procfs_snapshot_t after;
  if (!snapshot(t, &after)) return;
  size_t close_wait = procfs_count_tcp(&after, port, PROCFS_TCP_CLOSE_WAIT);
  char held[1024];
  if (after.fds > fds0 + STORM_FD_SLACK) {
    rc_fail(t, "open descriptors at most 5 above the start after 50 forced reconnects",
            "they grew from %zu to %zu, %zu socket(s) in CLOSE_WAIT (start: %s; now: %s)", fds0,
            after.fds, close_wait, base_text, procfs_describe(&after, held, sizeof held));
  } else if (close_wait > 0) {
    rc_fail(t, "no CLOSE_WAIT socket 2 s after 50 forced reconnects",
            "%zu socket(s) in CLOSE_WAIT: %s", close_wait,
            procfs_describe(&after, held, sizeof held));
  } else {
    rc_note(t, "descriptors: %zu before, %zu after %d reconnects (%d by ping timeout)", fds0,
            after.fds, STORM_CYCLES, timeouts);
  }
  procfs_snapshot_free(&after);
}

/* CL-06: 100 catch-up requests go over a bounded pool of keep-alive connections. */
static void http_pooled(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint16_t http_port = (uint16_t)mockhs_http_port(t->mock);
  int64_t x = 0;
  stream_history_position(mockhs_history(t->mock), "typing", &x);
  if (t->probe_floor > x) x = t->probe_floor;
  rc_match_t get = {.entry_kind = LEDGER_HTTP,
                    .prefix = "GET /_synapse/replication/get_repl_stream_updates/typing/"};
  size_t most = 0;
  for (int i = 0; i < CATCHUPS; i++) {
    x += 10;
    stream_history_set(mockhs_history(t->mock), "typing", x);
    uint64_t seq = rc_now_seq(t);
    if (!suite_send(t, conn, "POSITION typing master %lld %lld", (long long)x, (long long)x))
      return;
    if (rc_wait(t, seq, &get, 1000) == NULL) {
      rc_fail(t, "PO-03: a catch-up request after each POSITION above the worker's position",
              "none within 1 s of POSITION number %d ('POSITION typing master %lld %lld')", i + 1,
              (long long)x, (long long)x);
      return;
    }
    if (i % 10 != 9) continue;
    procfs_snapshot_t s;
    if (!snapshot(t, &s)) return;
    size_t established = procfs_count_tcp(&s, http_port, PROCFS_TCP_ESTABLISHED);
    if (established > most) most = established;
    if (established > HTTP_POOL_MAX) {
      char held[1024];
      rc_fail(t, "at most 10 ESTABLISHED connections to the main's HTTP port over 100 catch-ups",
              "%zu after %d catch-up requests: %s", established, i + 1,
              procfs_describe(&s, held, sizeof held));
      procfs_snapshot_free(&s);
      return;
    }
    procfs_snapshot_free(&s);
  }
  t->probe_floor = x;
  rc_note(t, "at most %zu ESTABLISHED connection(s) to the main's HTTP port over %d catch-ups",
          most, CATCHUPS);
}

#define CL_ROW(...) RC_TEST_ROW(.dialects = RC_DIALECT_ALL, __VA_ARGS__)

const rc_test_def_t connections_tests[] = {
    CL_ROW(.id = "connections/error/closed-after-error", .requirements = "CL-01",
           .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_TCP,
           .requirement = "After writing an ERROR line the worker closes the connection within "
                          "1 s (FIN, or RST after the ERROR arrived) and releases its socket.",
           .source = "synapse protocol.py send_error/close (loseConnection); "
                     "reference/synapse-1.66/fake-main.txt",
           .run = error_then_close),
    CL_ROW(.id = "connections/peer-close/released", .requirements = "CL-02",
           .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_TCP,
           .requirement = "When the main closes the connection (FIN, RST) the worker closes its "
                          "end: no CLOSE_WAIT socket of the old connection after 2 s.",
           .source = "replication-protocol.md §3.3; reference/synapse-1.66/fake-main.txt c6",
           .run = peer_close_released),
    CL_ROW(.id = "connections/single/one-at-a-time", .requirements = "CL-03",
           .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_TCP,
           .requirement = "Across reconnects the worker holds at most one replication connection: "
                          "no accept while the previous one is open, at most one ESTABLISHED "
                          "socket to the main.",
           .source = "reference/synapse-1.66/fake-main.txt (strictly sequential c1-c7)",
           .run = single_connection),
    CL_ROW(.id = "connections/storm/no-descriptor-growth", .requirements = "CL-04",
           .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_TCP, .tags = "slow",
           .requirement = "50 forced reconnects (FIN, RST, protocol errors, ping timeouts) leave "
                          "the worker's open descriptors at most 5 above the start and no "
                          "CLOSE_WAIT socket.",
           .source = "DESIGN.md (connections suite); requirements.md CL-04",
           .run = storm_no_fd_growth),
    RC_TEST_ROW(.id = "connections/http/pooled", .requirements = "CL-06",
           .level = RC_LEVEL_SHOULD, .dialects = RC_DIALECT_MODERN, .transports = RC_TRANSPORT_TCP, .tags = "slow",
           .requirement = "Outbound catch-up HTTP connections are pooled: at most 10 ESTABLISHED "
                          "to the main's HTTP port over 100 catch-up requests.",
           .source = "DESIGN.md (connections suite); synapse replication/http/_base.py",
           .run = http_pooled),
};
const size_t connections_test_count = sizeof connections_tests / sizeof connections_tests[0];
