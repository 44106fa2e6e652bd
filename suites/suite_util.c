#include "suite_util.h"

#include <stdio.h>
#include <string.h>

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
