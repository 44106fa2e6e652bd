#include "suite_util.h"

#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "stream_history.h"

#include "pg_cluster.h"
#include "pg_observer.h"
#include "rc_clock.h"

const ledger_entry_t *suite_opening_server_line(rc_test_t *t, int *conn_id) {
  rc_match_t open = {.entry_kind = LEDGER_OPEN};
  const ledger_entry_t *o = rc_wait(t, 1, &open, 1000);
  if (o == NULL) {
    rc_error(t, "the SUT was ready but no replication connection was seen");
    return NULL;
  }
  rc_match_t server = {.conn_id = o->conn_id, .side = LEDGER_SIDE_MOCK, .command = PROTO_CMD_SERVER};
  const ledger_entry_t *s = rc_wait(t, o->seq, &server, 1000);
  if (s == NULL) {
    rc_error(t, "the mock homeserver did not send SERVER on connection c%d", o->conn_id);
    return NULL;
  }
  *conn_id = o->conn_id;
  return s;
}

int64_t suite_opening_origin_ns(rc_test_t *t, int conn_id, const ledger_entry_t *server) {
  rc_match_t open = {.entry_kind = LEDGER_OPEN, .conn_id = conn_id};
  const ledger_entry_t *o = rc_wait(t, 1, &open, 0);
  int64_t origin = server->mono_ns;
  if (o != NULL && o->mono_ns > origin) origin = o->mono_ns;
  return origin;
}

int suite_ms_left(int64_t origin_ns, int window_ms) {
  int64_t left = origin_ns / 1000000 + window_ms - rc_clock_mono_ms();
  return left > 0 ? (int)left : 0;
}

const char *suite_sut_lines(rc_test_t *t, int conn_id, char *buf, size_t cap) {
  ledger_t *ledger = mockhs_ledger(t->mock);
  size_t at = 0, shown = 0;
  buf[0] = '\0';
  for (uint64_t seq = ledger_first_seq(ledger); seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_SUT || e->conn_id != conn_id) continue;
    if (shown == 8) {
      snprintf(buf + at, cap - at, " | ...");
      break;
    }
    int n = snprintf(buf + at, cap - at, "%s'%.120s'", shown ? " | " : "", e->text);
    if (n < 0 || (size_t)n >= cap - at) break;
    at += (size_t)n;
    shown++;
  }
  if (shown == 0) snprintf(buf, cap, "no line at all");
  return buf;
}

const ledger_entry_t *suite_wait_sut_close(rc_test_t *t, int conn_id, uint64_t from_seq,
                                           int timeout_ms) {
  rc_match_t close = {.entry_kind = LEDGER_CLOSE, .conn_id = conn_id};
  const ledger_entry_t *e = rc_wait(t, from_seq, &close, timeout_ms);
  return e;
}

const ledger_entry_t *suite_last_sut_line_before(rc_test_t *t, int conn_id, uint64_t before) {
  ledger_t *ledger = mockhs_ledger(t->mock);
  for (uint64_t seq = before; seq-- > ledger_first_seq(ledger);) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->kind == LEDGER_LINE && e->side == LEDGER_SIDE_SUT && e->conn_id == conn_id) return e;
  }
  return NULL;
}

int suite_reconnect_bound_ms(const rc_test_t *t) {
  return (int)(1.36 * t->profile->timing.reconnect_max_ms) + 500;
}

int suite_wait_new_conn(rc_test_t *t, uint64_t from_seq, int timeout_ms) {
  rc_match_t open = {.entry_kind = LEDGER_OPEN};
  const ledger_entry_t *o = rc_wait(t, from_seq, &open, timeout_ms);
  if (o == NULL) return -1;
  /* The opening is done once the SUT has asked for its streams and been answered. */
  rc_match_t rep = {.conn_id = o->conn_id, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_REPLICATE};
  const ledger_entry_t *r = rc_wait(t, o->seq, &rep, 1000);
  if (r != NULL) rc_observe(t, 50);
  return o->conn_id;
}

int suite_start_connected(rc_test_t *t) {
  if (!rc_start(t)) return -1;
  int conn = suite_wait_new_conn(t, 1, 1000);
  if (conn < 0) rc_error(t, "the SUT was ready but opened no replication connection");
  return conn;
}

bool suite_send(rc_test_t *t, int conn, const char *fmt, ...) {
  char *line = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&line, fmt, ap);
  va_end(ap);
  if (n < 0) return rc_error(t, "out of memory");
  int rc = mockhs_send_line(t->mock, conn, line, (size_t)n);
  free(line);
  if (rc != 0) {
    char lines[1024];
    return rc_fail(t, "the connection stays open while the test talks to the worker",
                   "connection c%d was closed; the worker sent: %s", conn,
                   suite_sut_lines(t, conn, lines, sizeof lines));
  }
  return true;
}

void suite_rdata(const rc_test_t *t, char *buf, size_t cap, const char *stream,
                 const char *token, const char *row) {
  if (t->profile->dialect == PROTO_DIALECT_MODERN)
    snprintf(buf, cap, "RDATA %s master %s %s", stream, token, row);
  else
    snprintf(buf, cap, "RDATA %s %s %s", stream, token, row);
}

bool suite_sut_closed_within(rc_test_t *t, int conn, uint64_t from_seq, int timeout_ms,
                             const ledger_entry_t **close) {
  const ledger_entry_t *e = suite_wait_sut_close(t, conn, from_seq, timeout_ms);
  if (close != NULL) *close = e;
  return e != NULL;
}

static bool query_int(const char *text, const char *key, int64_t *out) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "%s=", key);
  const char *p = strstr(text, pattern);
  if (p == NULL) return false;
  p += strlen(pattern);
  char *end = NULL;
  long long v = strtoll(p, &end, 10);
  if (end == p || (*end != '\0' && *end != '&')) return false;
  *out = v;
  return true;
}

static bool probe_modern(rc_test_t *t, int conn, const char *stream, int64_t *position) {
  int64_t high = 0;
  stream_history_position(mockhs_history(t->mock), stream, &high);
  if (t->probe_floor > high) high = t->probe_floor;
  int64_t x = high + 1000;
  t->probe_floor = x;
  stream_history_set(mockhs_history(t->mock), stream, x);
  uint64_t seq = rc_now_seq(t);
  if (mockhs_send_position(t->mock, conn, stream, x, x) != 0)
    return rc_fail(t, "the connection stays open", "connection c%d was closed before the probe", conn);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "GET /_synapse/replication/get_repl_stream_updates/%s/", stream);
  rc_match_t get = {.entry_kind = LEDGER_HTTP, .prefix = prefix};
  const ledger_entry_t *e = rc_wait(t, seq, &get, 2000);
  if (e == NULL)
    return rc_fail(t, "PO-03: a get_repl_stream_updates request after a POSITION above the worker's position",
                   "no catch-up request within 2 s of 'POSITION %s master %lld %lld'", stream,
                   (long long)x, (long long)x);
  if (!query_int(e->text, "from_token", position))
    return rc_fail(t, "PO-04: from_token=<int> in the catch-up request", "request was '%.300s'", e->text);
  rc_observe(t, 100); /* let the worker apply the answer and mark the stream connected */
  return true;
}

static bool probe_2018(rc_test_t *t, int *conn, const char *stream, int64_t *position) {
  uint64_t seq = rc_now_seq(t);
  mockhs_close_conn(t->mock, *conn, false);
  int next = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 1000);
  if (next < 0)
    return rc_fail(t, "RC-01: a new connection after the mock closed the old one",
                   "no reconnect within %d ms", suite_reconnect_bound_ms(t) + 1000);
  *conn = next;
  char prefix[256];
  snprintf(prefix, sizeof prefix, "REPLICATE %s ", stream);
  rc_match_t rep = {.conn_id = next, .side = LEDGER_SIDE_SUT, .prefix = prefix};
  const ledger_entry_t *e = rc_wait(t, seq, &rep, 1000);
  proto_command_t cmd;
  if (e == NULL || !rc_parse_sut_line(t, e, &cmd) || cmd.token_is_now) {
    char lines[1024];
    return rc_fail(t, "HS-05/RC-05: 'REPLICATE <stream> <token>' for the probed stream on reconnect",
                   "no usable REPLICATE %s; the worker sent: %s", stream,
                   suite_sut_lines(t, next, lines, sizeof lines));
  }
  *position = cmd.token;
  return true;
}

bool suite_probe_position(rc_test_t *t, int *conn, const char *stream, int64_t *position) {
  if (t->profile->dialect == PROTO_DIALECT_MODERN) return probe_modern(t, *conn, stream, position);
  return probe_2018(t, conn, stream, position);
}

pg_observer_t *suite_db_observer(rc_test_t *t, const char *app) {
  if (t->pg == NULL || t->db_name == NULL) {
    rc_error(t, "harness: no test database to observe (%s)",
             t->pg_error ? t->pg_error : "no cluster");
    return NULL;
  }
  char *dsn = pg_cluster_admin_dsn(t->pg, t->db_name, app);
  if (dsn == NULL) {
    rc_error(t, "out of memory");
    return NULL;
  }
  rc_error_t err;
  pg_observer_t *o = pg_observer_connect(dsn, &err);
  free(dsn);
  if (o == NULL) rc_error(t, "%s", err.msg);
  return o;
}
