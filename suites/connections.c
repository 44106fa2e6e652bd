/* connections: every connection the worker opens is closed when it is done with it
 * (requirements.md §13, CL-01..CL-06; CL-05's replication half and exit are
 * protocol/shutdown/sigterm-closes, its HTTP half is here).
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
#include "redis_server.h"
#include "rc_clock.h"
#include "stream_history.h"
#include "suite_util.h"

#define STORM_CYCLES 50
#define STORM_FD_SLACK 5
#define REDIS_RESTARTS 10
#define RELEASE_MS 2000
#define CATCHUPS 100
#define HTTP_POOL_MAX 10
#define SHUTDOWN_CATCHUPS 3
#define SHUTDOWN_ANSWER_MS 300
/* After the worker closed its replication connection on SIGTERM, how long its HTTP
 * connections may stay open while the process lives on: 1 s, plus a margin for the
 * harness's own polling. */
#define SHUTDOWN_HTTP_WINDOW_MS 1000
#define SHUTDOWN_HTTP_MARGIN_MS 250

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
  unsigned long old_inode; /* its socket, which no descriptor may hold (0: unknown) */
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
         (s->old_local == 0 || procfs_find_local(&s->last, s->old_local) == NULL) &&
         (s->old_inode == 0 || !procfs_holds_socket(&s->last, s->old_inode));
}

/* The inode of the SUT's socket of connection conn (while it is still open), or 0 when
 * it cannot be seen. Taken before a close: once reset, a socket leaves the TCP table, and
 * only its inode shows that a descriptor still holds it. */
static unsigned long conn_socket_inode(rc_test_t *t, int conn) {
  uint16_t local = conn_local_port(t, conn);
  procfs_snapshot_t s = {0}; /* freed below also when no snapshot was taken */
  rc_error_t err;
  unsigned long inode = 0;
  if (local != 0 && procfs_snapshot_group(sut_pid(t->sut), &s, &err) == 0) {
    const procfs_tcp_t *tcp = procfs_find_local(&s, local);
    if (tcp != NULL) inode = tcp->inode;
  }
  procfs_snapshot_free(&s);
  return inode;
}

/* Waits up to timeout_ms until connection old_conn's socket (old_inode, from
 * conn_socket_inode before the close; 0 if unknown) is released and settled() holds;
 * fails the test with `expected` when it does not come. Returns whether it did. */
static bool wait_released(rc_test_t *t, int old_conn, unsigned long old_inode, int timeout_ms,
                          const char *expected, const char *after) {
  uint16_t port = (uint16_t)mockhs_port(t->mock);
  settle_t s = {.t = t, .port = port, .old_local = conn_local_port(t, old_conn),
                .old_inode = old_inode, .max_established = 1};
  bool ok = settled(&s) || mockhs_run_until(t->mock, settled, &s, timeout_ms, 50);
  if (s.failed) {
    procfs_snapshot_free(&s.last);
    return rc_error(t, "cannot inspect the SUT's processes (it exited?)");
  }
  if (!ok) {
    char held[1024];
    const procfs_tcp_t *old = s.old_local ? procfs_find_local(&s.last, s.old_local) : NULL;
    bool kept = s.old_inode != 0 && procfs_holds_socket(&s.last, s.old_inode);
    rc_fail(t, expected,
            "%d ms after %s the SUT still holds c%d's socket (:%u, %s); %zu CLOSE_WAIT and %zu "
            "ESTABLISHED socket(s) to port %u: %s",
            timeout_ms, after, old_conn, s.old_local,
            old != NULL ? procfs_tcp_state_name(old->state)
            : kept      ? "reset: gone from the TCP table, its descriptor still open"
                        : "released",
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
  unsigned long inode = conn_socket_inode(t, conn);
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
  wait_released(t, conn, inode, RELEASE_MS,
                "the closed connection's socket released (no CLOSE_WAIT, at most the new "
                "connection ESTABLISHED)",
                "the worker's close");
}

/* CL-02: when the main closes (FIN, then RST) the worker releases its end within 2 s. */
static void peer_close_released(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  for (int step = 0; step < 2; step++) {
    unsigned long inode = conn_socket_inode(t, conn);
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
    if (!wait_released(t, conn, inode, RELEASE_MS,
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

/* The SUT's descriptors before a storm, for storm_check. */
typedef struct storm_start {
  size_t fds;
  char text[512];
} storm_start_t;

/* Records where the SUT's descriptors start; false after recording an ERROR. */
static bool storm_begin(rc_test_t *t, storm_start_t *start) {
  procfs_snapshot_t base;
  if (!snapshot(t, &base)) return false;
  start->fds = base.fds;
  procfs_describe(&base, start->text, sizeof start->text);
  procfs_snapshot_free(&base);
  return true;
}

/* CL-04's verdict after a storm (`what`, e.g. "50 forced reconnects"): closes in flight
 * settle (up to 2 s), then the SUT holds at most 5 descriptors more than at the start
 * and no CLOSE_WAIT socket to `port` (`peer`: how messages name it, "" or " to redis"). */
static void storm_check(rc_test_t *t, const storm_start_t *start, uint16_t port,
                        size_t max_established, const char *what, const char *peer) {
  settle_t settle = {.t = t, .port = port, .max_established = max_established};
  mockhs_run_until(t->mock, settled, &settle, RELEASE_MS, 50);
  procfs_snapshot_free(&settle.last);
  procfs_snapshot_t after;
  if (!snapshot(t, &after)) return;
  size_t close_wait = procfs_count_tcp(&after, port, PROCFS_TCP_CLOSE_WAIT);
  char held[1024];
  if (after.fds > start->fds + STORM_FD_SLACK) {
    rc_fail(t, "open descriptors at most 5 above the start after a reconnect storm",
            "they grew from %zu to %zu after %s, %zu socket(s)%s in CLOSE_WAIT (start: %s; "
            "now: %s)",
            start->fds, after.fds, what, close_wait, peer, start->text,
            procfs_describe(&after, held, sizeof held));
  } else if (close_wait > 0) {
    rc_fail(t, "no CLOSE_WAIT socket 2 s after a reconnect storm",
            "%zu socket(s)%s in CLOSE_WAIT after %s: %s", close_wait, peer, what,
            procfs_describe(&after, held, sizeof held));
  } else {
    rc_note(t, "descriptors: %zu before, %zu after %s", start->fds, after.fds, what);
  }
  procfs_snapshot_free(&after);
}

/* CL-04: 50 forced reconnects (FIN, RST, protocol error and a few ping timeouts) leave
 * the SUT's descriptors at most 5 above where they started and no CLOSE_WAIT socket. */
static void storm_no_fd_growth(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  rc_observe(t, 200);
  storm_start_t start;
  if (!storm_begin(t, &start)) return;
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
  char what[96];
  snprintf(what, sizeof what, "%d forced reconnects (%d by ping timeout)", STORM_CYCLES,
           timeouts);
  storm_check(t, &start, (uint16_t)mockhs_port(t->mock), 1, what, "");
}

/* CL-04 over redis: 10 redis-server restarts, each waited out until the worker has
 * subscribed again and published REPLICATE (RE-09), leave its descriptors at most 5
 * above the start and no CLOSE_WAIT socket to redis. */
static void storm_redis_restarts(rc_test_t *t) {
  if (suite_start_connected(t) < 0) return;
  rc_observe(t, 200);
  storm_start_t start;
  if (!storm_begin(t, &start)) return;
  /* Synapse: subscriber cap 5 s, publisher cap 10 s, jitter; the profile's cap here. */
  int bound = 2 * suite_reconnect_bound_ms(t) + 1000;
  if (bound < 2000) bound = 2000;
  rc_match_t rep = {.side = LEDGER_SIDE_SUT, .command = PROTO_CMD_REPLICATE};
  for (int cycle = 0; cycle < REDIS_RESTARTS; cycle++) {
    redis_server_kill(t->redis);
    /* Long enough for the worker to see both connections drop. */
    rc_observe(t, 300);
    rc_error_t err;
    if (redis_server_relaunch(t->redis, 5000, &err) != 0 ||
        mockhs_redis_reconnect(t->mock, 5000, &err) != 0) {
      rc_error(t, "restart %d of redis-server: %s", cycle + 1, err.msg);
      return;
    }
    uint64_t seq = rc_now_seq(t);
    if (rc_wait(t, seq, &rep, bound) == NULL) {
      rc_error(t, "the worker did not publish REPLICATE within %d ms of redis-server's restart "
               "%d (RE-09)", bound, cycle + 1);
      return;
    }
  }
  char what[64];
  snprintf(what, sizeof what, "%d redis-server restarts", REDIS_RESTARTS);
  /* Two connections: the subscriber and the publisher. */
  storm_check(t, &start, (uint16_t)redis_server_port(t->redis), 2, what, " to redis");
}

/* The typing position the next catch-up gap starts from: the mock's, or above the
 * highest token a probe used. */
static int64_t typing_position(rc_test_t *t) {
  int64_t x = 0;
  stream_history_position(mockhs_history(t->mock), "typing", &x);
  return t->probe_floor > x ? t->probe_floor : x;
}

/* Moves the mock's typing stream 10 tokens past *x and announces it with a POSITION (a
 * gap), so the worker fetches the rows over HTTP; waits up to 1 s for that request.
 * `number` (1-based) is for the message. Returns false with a failure recorded. */
static bool catch_up_once(rc_test_t *t, int conn, int64_t *x, int number) {
  rc_match_t get = {.entry_kind = LEDGER_HTTP,
                    .prefix = "GET /_synapse/replication/get_repl_stream_updates/typing/"};
  *x += 10;
  stream_history_set(mockhs_history(t->mock), "typing", *x);
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master %lld %lld", (long long)*x, (long long)*x))
    return false;
  if (rc_wait(t, seq, &get, 1000) != NULL) return true;
  return rc_fail(t, "PO-03: a catch-up request after each POSITION above the worker's position",
                 "none within 1 s of POSITION number %d ('POSITION typing master %lld %lld')",
                 number, (long long)*x, (long long)*x);
}

/* CL-06: 100 catch-up requests go over a bounded pool of keep-alive connections. */
static void http_pooled(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint16_t http_port = (uint16_t)mockhs_http_port(t->mock);
  int64_t x = typing_position(t);
  size_t most = 0;
  for (int i = 0; i < CATCHUPS; i++) {
    if (!catch_up_once(t, conn, &x, i + 1)) return;
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

typedef struct http_watch {
  rc_test_t *t;
  uint16_t port;  /* the mock's HTTP port */
  bool with_exit; /* whether the SUT's exit ends the watch */
  bool exited;    /* the SUT's main process has exited */
  bool failed;    /* /proc could not be read while the SUT ran */
  procfs_snapshot_t last;
} http_watch_t;

static size_t http_held(const http_watch_t *w) {
  return procfs_count_tcp(&w->last, w->port, PROCFS_TCP_ESTABLISHED) +
         procfs_count_tcp(&w->last, w->port, PROCFS_TCP_CLOSE_WAIT);
}

/* Whether the SUT holds no socket to the HTTP port in ESTABLISHED or CLOSE_WAIT (or,
 * with_exit, has exited: the kernel then closed them). last keeps the snapshot. */
static bool http_released(void *arg) {
  http_watch_t *w = arg;
  procfs_snapshot_free(&w->last);
  if (w->with_exit && sut_has_exited(w->t->sut, NULL)) {
    w->exited = true;
    return true;
  }
  rc_error_t err;
  if (procfs_snapshot_group(sut_pid(w->t->sut), &w->last, &err) != 0) {
    /* Gone between the two looks: exited as well. */
    w->exited = w->with_exit && sut_has_exited(w->t->sut, NULL);
    w->failed = !w->exited;
    return true;
  }
  return http_held(w) == 0;
}

/* Whether the SUT holds a socket to the HTTP port (or /proc failed). */
static bool http_some(void *arg) {
  http_watch_t *w = arg;
  return !http_released(w) || w->failed;
}

/* How many keep-alive connections to the HTTP port the SUT holds, waited for up to 1 s
 * (the last catch-up's answer may still be on its way) into *held. False after
 * recording an ERROR. */
static bool wait_http_held(rc_test_t *t, uint16_t port, size_t *held) {
  http_watch_t w = {.t = t, .port = port};
  if (!http_some(&w)) mockhs_run_until(t->mock, http_some, &w, 1000, 50);
  *held = w.failed ? 0 : http_held(&w);
  procfs_snapshot_free(&w.last);
  if (w.failed) return rc_error(t, "cannot inspect the SUT's processes before SIGTERM");
  return true;
}

/* CL-05, HTTP half (issue #5): once the worker has closed its replication connection
 * on SIGTERM it must not keep its keep-alive HTTP connections to the main open while
 * the process lingers. An exiting process has them closed by the kernel, so the check
 * can only see a worker that lingers: for 1 s (+ margin) after the close, while its
 * group is alive, no socket to the main's HTTP port may stay ESTABLISHED or CLOSE_WAIT. */
static void shutdown_http_closed(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint16_t http_port = (uint16_t)mockhs_http_port(t->mock);
  int64_t x = typing_position(t);
  for (int i = 0; i < SHUTDOWN_CATCHUPS; i++)
    if (!catch_up_once(t, conn, &x, i + 1)) return;
  t->probe_floor = x;
  /* The mock answers at once; a request still in flight at SIGTERM would be cancelled,
   * which closes its connection, and the check would prove nothing about idle ones. */
  rc_observe(t, SHUTDOWN_ANSWER_MS);
  size_t held = 0;
  if (!wait_http_held(t, http_port, &held)) return;
  rc_note(t, "before SIGTERM the SUT held %zu connection(s) to the main's HTTP port %u after "
          "%d catch-ups", held, http_port, SHUTDOWN_CATCHUPS);

  uint64_t term_seq = rc_now_seq(t);
  int64_t term_ms = rc_clock_mono_ms();
  if (!rc_sigterm_sut(t)) {
    rc_error(t, "harness: no SUT to send SIGTERM to");
    return;
  }
  int grace = t->profile->timing.shutdown_grace_ms;
  const ledger_entry_t *close = suite_wait_sut_close(t, conn, term_seq, grace);
  if (close == NULL) {
    rc_fail(t, "the worker closes its replication connection on SIGTERM (CL-05)",
            "c%d still open %d ms after SIGTERM", conn, grace);
    return;
  }
  int64_t closed_ms = close->mono_ns / 1000000;
  http_watch_t w = {.t = t, .port = http_port, .with_exit = true};
  int64_t left = closed_ms + SHUTDOWN_HTTP_WINDOW_MS + SHUTDOWN_HTTP_MARGIN_MS - rc_clock_mono_ms();
  bool released = http_released(&w) ||
                  mockhs_run_until(t->mock, http_released, &w, left > 0 ? (int)left : 0, 20);
  int64_t since_close = rc_clock_mono_ms() - closed_ms;
  if (w.failed) {
    rc_error(t, "cannot inspect the SUT's processes during its shutdown");
  } else if (!released) {
    char sockets[1024];
    rc_fail(t, "the worker closes its keep-alive HTTP connections to the main once it has "
               "closed its replication connection on SIGTERM, not only when the process exits",
            "%lld ms after it closed c%d (%lld ms after SIGTERM) the SUT is still running and "
            "holds %zu ESTABLISHED and %zu CLOSE_WAIT socket(s) to the main's HTTP port %u: %s",
            (long long)since_close, conn, (long long)(closed_ms - term_ms),
            procfs_count_tcp(&w.last, http_port, PROCFS_TCP_ESTABLISHED),
            procfs_count_tcp(&w.last, http_port, PROCFS_TCP_CLOSE_WAIT), http_port,
            procfs_describe(&w.last, sockets, sizeof sockets));
  } else if (w.exited) {
    rc_note(t, "the SUT exited within %lld ms of closing c%d; the kernel closed what it still "
            "held", (long long)since_close, conn);
  } else {
    rc_note(t, "the SUT, still running, held no HTTP connection to port %u %lld ms after "
            "closing c%d", http_port, (long long)since_close, conn);
  }
  procfs_snapshot_free(&w.last);
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
    CL_ROW(.id = "connections/storm/redis-restarts", .requirements = "CL-04",
           .level = RC_LEVEL_MUST, .transports = RC_TRANSPORT_REDIS, .tags = "slow",
           .requirement = "10 redis-server restarts, each followed by the worker's new "
                          "subscription and REPLICATE, leave the worker's open descriptors at "
                          "most 5 above the start and no CLOSE_WAIT socket to redis.",
           .source = "requirements.md CL-04 (redis: 10 redis-server restarts)",
           .run = storm_redis_restarts),
    RC_TEST_ROW(.id = "connections/http/pooled", .requirements = "CL-06",
           .level = RC_LEVEL_SHOULD, .dialects = RC_DIALECT_MODERN, .transports = RC_TRANSPORT_TCP, .tags = "slow",
           .requirement = "Outbound catch-up HTTP connections are pooled: at most 10 ESTABLISHED "
                          "to the main's HTTP port over 100 catch-up requests.",
           .source = "DESIGN.md (connections suite); synapse replication/http/_base.py",
           .run = http_pooled),
    RC_TEST_ROW(.id = "connections/shutdown/http-closed", .requirements = "CL-05",
           .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_MODERN, .transports = RC_TRANSPORT_TCP,
           .requirement = "HTTP keep-alive connections the worker opened to the main are closed "
                          "on shutdown: once the worker has closed its replication connection "
                          "on SIGTERM, no socket to the main's HTTP port stays ESTABLISHED or "
                          "CLOSE_WAIT for more than 1 s while the process lives on (issue #5; "
                          "an exiting process has them closed by the kernel).",
           .source = "requirements.md CL-05; issue #5; synapse replication/http/_base.py",
           .run = shutdown_http_closed),
};
const size_t connections_test_count = sizeof connections_tests / sizeof connections_tests[0];
