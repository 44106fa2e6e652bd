/* Bulk emission (mockhs_emit) against real client sockets: the mock formats rows once
 * per call and hands each connection pieces of many lines at once (one guard pass,
 * one ledger call, one buffer append). These tests hold that to what line-by-line
 * sending gives: the same bytes on every connection, the same ledger, a refused row
 * noted in its place, and, for a client that stops reading, exactly the lines the
 * ledger shows up to "ERROR Failed to keep up" (spec §3.3). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ledger.h"
#include "mockhs.h"
#include "proto.h"
#include "rc_clock.h"
#include "test_support.h"

typedef struct buf {
  char *data;
  size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    while (b->len + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 65536;
    b->data = realloc(b->data, b->cap);
    ck_assert_ptr_nonnull(b->data);
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static int client_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static mockhs_t *quiet_mock(struct event_base *base) {
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "emit.test");
  cfg.ping_interval_ms = 0;
  cfg.send_opening = false;
  cfg.http_enabled = false;
  cfg.ledger_capacity = 1000000;
  cfg.ledger_max_bytes = 256u * 1024u * 1024u; /* keep every line: the test compares them */
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  ck_assert_msg(mock != NULL, "%s", err.msg);
  return mock;
}

/* Runs the mock's loop until `n` connections are accepted (5 s deadline). */
static void await_accepted(mockhs_t *mock, int n) {
  int64_t deadline = rc_clock_mono_ms() + 5000;
  while (mockhs_accepted_count(mock) < n && rc_clock_mono_ms() < deadline) mockhs_run_for(mock, 5);
  ck_assert_int_ge(mockhs_accepted_count(mock), n);
}

/* Reads what each client gets until every one has `want[i]` bytes or EOF, driving the
 * mock's loop meanwhile; 20 s deadline. */
static void read_all(mockhs_t *mock, const int *fds, buf_t *got, const size_t *want, int n,
                     bool until_eof) {
  int64_t deadline = rc_clock_mono_ms() + 20000;
  bool eof[4] = {false};
  char chunk[65536];
  for (;;) {
    bool done = true;
    for (int i = 0; i < n; i++) done &= until_eof ? eof[i] : got[i].len >= want[i];
    if (done || rc_clock_mono_ms() >= deadline) break;
    bool progress = false;
    for (int i = 0; i < n; i++) {
      if (eof[i]) continue;
      ssize_t r = recv(fds[i], chunk, sizeof chunk, 0);
      if (r > 0) {
        buf_add(&got[i], chunk, (size_t)r);
        progress = true;
      } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        eof[i] = true;
      }
    }
    if (!progress) mockhs_run_for(mock, 1);
  }
}

/* The mock's own lines on connection `conn`, each with its LF, in ledger order. */
static void ledger_lines(mockhs_t *mock, int conn, buf_t *out) {
  ledger_t *ledger = mockhs_ledger(mock);
  ck_assert_uint_eq(ledger_first_seq(ledger), 1); /* nothing dropped */
  for (uint64_t seq = 1; seq < ledger_next_seq(ledger); seq++) {
    const ledger_entry_t *e = ledger_get(ledger, seq);
    if (e->conn_id != conn || e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_MOCK) continue;
    buf_add(out, e->text, e->len);
    buf_add(out, "\n", 1);
  }
}

START_TEST(emission_in_pieces_equals_line_by_line) {
  struct event_base *base = event_base_new();
  mockhs_t *mock = quiet_mock(base);
  int fds[2] = {client_connect(mockhs_port(mock)), client_connect(mockhs_port(mock))};
  await_accepted(mock, 2);
  /* More rows and bytes than one piece holds (4096 lines, 256 KiB), runs of equal
   * tokens (all but the last of a run go as 'batch'), and one row the codec refuses. */
  enum { ROWS = 9000, BAD = 5000 };
  mockhs_row_t *rows = calloc(ROWS, sizeof *rows);
  char **json = calloc(ROWS, sizeof *json);
  buf_t expected = {0};
  for (int i = 0; i < ROWS; i++) {
    char text[200];
    snprintf(text, sizeof text, "[\"cs_cache_fake\",[\"!room%d:emit.test\",\"@u%d:emit.test\"],%d]",
             i, i % 97, i);
    json[i] = strdup(i == BAD ? "[\"unterminated" : text);
    rows[i] = (mockhs_row_t){.token = 100 + i / 3, .json = json[i]};
  }
  for (int i = 0; i < ROWS; i++) {
    if (i == BAD) continue;
    proto_command_t cmd = {.kind = PROTO_CMD_RDATA,
                           .stream = proto_slice_cstr("caches"),
                           .instance = proto_slice_cstr("master"),
                           .token_is_batch = i + 1 < ROWS && rows[i + 1].token == rows[i].token,
                           .token = rows[i].token,
                           .row = proto_slice_cstr(json[i])};
    char line[PROTO_MAX_LINE + 1];
    int n = proto_format_command(PROTO_DIALECT_MODERN, &cmd, line, sizeof line, NULL);
    ck_assert_int_gt(n, 0);
    buf_add(&expected, line, (size_t)n);
    buf_add(&expected, "\n", 1);
  }
  rc_error_t err;
  ck_assert_int_eq(mockhs_emit(mock, "caches", rows, ROWS, &err), 0);

  buf_t got[2] = {{0}, {0}};
  size_t want[2] = {expected.len, expected.len};
  read_all(mock, fds, got, want, 2, false);
  for (int c = 0; c < 2; c++) {
    ck_assert_msg(
        got[c].len == expected.len && memcmp(got[c].data, expected.data, expected.len) == 0,
        "connection %d: got %zu bytes, expected %zu (first difference at %zu)", c, got[c].len,
        expected.len, (size_t)({
          size_t k = 0;
          while (k < got[c].len && k < expected.len && got[c].data[k] == expected.data[k]) k++;
          k;
        }));
  }
  /* The ledger of each connection shows the same lines, and the refused row's note sits
   * between the lines before it and the lines after it. */
  for (int conn = 1; conn <= 2; conn++) {
    buf_t lines = {0};
    ledger_lines(mock, conn, &lines);
    ck_assert_uint_eq(lines.len, expected.len);
    ck_assert(memcmp(lines.data, expected.data, expected.len) == 0);
    free(lines.data);
    ledger_t *ledger = mockhs_ledger(mock);
    uint64_t before = 0, note = 0;
    for (uint64_t seq = 1; seq < ledger_next_seq(ledger); seq++) {
      const ledger_entry_t *e = ledger_get(ledger, seq);
      if (e->conn_id != conn) continue;
      if (e->kind == LEDGER_NOTE) note = seq;
      if (e->kind == LEDGER_LINE && note == 0) before++;
    }
    ck_assert_msg(note != 0, "no note for the refused row on connection %d", conn);
    ck_assert_uint_eq(before, BAD);
    ck_assert_msg(strstr(ledger_get(ledger, note)->text, "row") != NULL, "%s",
                  ledger_get(ledger, note)->text);
  }
  for (int i = 0; i < ROWS; i++) free(json[i]);
  free(json);
  free(rows);
  free(expected.data);
  free(got[0].data);
  free(got[1].data);
  close(fds[0]);
  close(fds[1]);
  mockhs_destroy(mock);
  event_base_free(base);
}
END_TEST

START_TEST(reader_that_stopped_gets_what_the_ledger_shows) {
  struct event_base *base = event_base_new();
  mockhs_t *mock = quiet_mock(base);
  int fd = client_connect(mockhs_port(mock));
  await_accepted(mock, 1);
  int conn = mockhs_latest_conn(mock);
  /* 16 MiB in one call to a client that reads nothing meanwhile: the byte cap
   * (MOCKHS_MAX_QUEUED_BYTES) closes it part-way, inside a piece. */
  enum { ROWS = 160000 };
  static char row[100];
  memset(row, 'x', sizeof row);
  row[0] = '"';
  row[sizeof row - 2] = '"';
  row[sizeof row - 1] = '\0';
  mockhs_row_t *rows = calloc(ROWS, sizeof *rows);
  for (int i = 0; i < ROWS; i++) rows[i] = (mockhs_row_t){.token = 10 + i, .json = row};
  rc_error_t err;
  ck_assert_int_eq(mockhs_emit(mock, "caches", rows, ROWS, &err), 0);
  ck_assert_msg(!mockhs_conn_is_open(mock, conn), "a client that read nothing is still open");
  buf_t got = {0};
  size_t want = 0;
  read_all(mock, &fd, &got, &want, 1, true);
  buf_t lines = {0};
  ledger_lines(mock, conn, &lines);
  static const char tail[] = "ERROR Failed to keep up\n";
  ck_assert_uint_gt(lines.len, sizeof tail);
  ck_assert_str_eq(lines.data + lines.len - (sizeof tail - 1), tail);
  ck_assert_msg(got.len == lines.len && memcmp(got.data, lines.data, lines.len) == 0,
                "the client got %zu bytes, the ledger shows %zu", got.len, lines.len);
  free(got.data);
  free(lines.data);
  free(rows);
  close(fd);
  mockhs_destroy(mock);
  event_base_free(base);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mock_emit");
  TCase *tc = tcase_create("emit");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, emission_in_pieces_equals_line_by_line);
  tcase_add_test(tc, reader_that_stopped_gets_what_the_ledger_shows);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
