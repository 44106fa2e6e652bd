/* The mock homeserver and its ledger, against a real TCP client socket in this
 * process. The mock's loop only runs inside its wait functions, so the client side
 * here alternates between driving the loop and non-blocking reads. */
#include <arpa/inet.h>
#include <check.h>

#include "test_support.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ledger.h"
#include "mockhs.h"
#include "rc_clock.h"

typedef struct client {
  int fd;
  char buf[70000];
  size_t used;
} client_t;

static int client_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

/* Drives the mock until the client has a full line (returned malloc'd), EOF (NULL,
 * *eof = true) or the deadline (NULL). */
static char *client_read_line(client_t *c, mockhs_t *mock, int timeout_ms, bool *eof) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  if (eof) *eof = false;
  for (;;) {
    char *lf = memchr(c->buf, '\n', c->used);
    if (lf != NULL) {
      size_t n = (size_t)(lf - c->buf);
      char *line = strndup(c->buf, n);
      memmove(c->buf, lf + 1, c->used - n - 1);
      c->used -= n + 1;
      return line;
    }
    ssize_t got = recv(c->fd, c->buf + c->used, sizeof c->buf - c->used, 0);
    if (got == 0) {
      if (eof) *eof = true;
      return NULL;
    }
    if (got > 0) {
      c->used += (size_t)got;
      continue;
    }
    if (errno == ECONNRESET) {
      if (eof) *eof = true;
      return NULL;
    }
    if (rc_clock_mono_ms() >= deadline) return NULL;
    mockhs_run_for(mock, 5);
  }
}

static void client_send(client_t *c, const char *text) {
  size_t len = strlen(text);
  ck_assert_int_eq(send(c->fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

typedef struct fixture {
  struct event_base *base;
  mockhs_t *mock;
  client_t client;
} fixture_t;

static void fixture_open(fixture_t *f, proto_dialect_t dialect, int ping_ms) {
  f->base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, dialect, "test.local");
  cfg.ping_interval_ms = ping_ms;
  rc_error_t err;
  f->mock = mockhs_create(f->base, &cfg, &err);
  ck_assert_msg(f->mock != NULL, "%s", err.msg);
  ck_assert_int_gt(mockhs_port(f->mock), 0);
  f->client.used = 0;
  f->client.fd = client_connect(mockhs_port(f->mock));
  ck_assert_int_ge(f->client.fd, 0);
}

static void fixture_close(fixture_t *f) {
  if (f->client.fd >= 0) close(f->client.fd);
  mockhs_destroy(f->mock);
  event_base_free(f->base);
}

static char *expect_line(fixture_t *f) {
  bool eof;
  char *line = client_read_line(&f->client, f->mock, 2000, &eof);
  ck_assert_msg(line != NULL, eof ? "connection closed" : "no line within 2 s");
  return line;
}

START_TEST(opening_is_server_then_ping) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  char *server = expect_line(&f);
  ck_assert_str_eq(server, "SERVER test.local");
  char *ping = expect_line(&f);
  ck_assert_msg(strncmp(ping, "PING ", 5) == 0 && strlen(ping) > 5, "got '%s'", ping);
  free(server);
  free(ping);
  ledger_t *ledger = mockhs_ledger(f.mock);
  const ledger_entry_t *open = ledger_get(ledger, 1);
  ck_assert_int_eq(open->kind, LEDGER_OPEN);
  ck_assert_int_eq(open->conn_id, 1);
  ck_assert_int_eq(mockhs_latest_conn(f.mock), 1);
  fixture_close(&f);
}
END_TEST

START_TEST(modern_replicate_gets_every_position) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  free(expect_line(&f));
  free(expect_line(&f));
  client_send(&f.client, "NAME worker1\nPING 1\nREPLICATE \n");
  char *line = expect_line(&f);
  ck_assert_str_eq(line, "POSITION events master 1 1");
  free(line);
  int positions = 1;
  for (;;) {
    char *next = client_read_line(&f.client, f.mock, 200, NULL);
    if (next == NULL) break;
    ck_assert_msg(strncmp(next, "POSITION ", 9) == 0, "got '%s'", next);
    positions++;
    free(next);
  }
  ck_assert_int_eq(positions, 14); /* the v1.66 main's set */
  /* Every line each way is in the ledger, in order. */
  ledger_t *ledger = mockhs_ledger(f.mock);
  int sut_lines = 0;
  for (uint64_t s = ledger_first_seq(ledger); s < ledger_next_seq(ledger); s++) {
    const ledger_entry_t *e = ledger_get(ledger, s);
    if (e->kind == LEDGER_LINE && e->side == LEDGER_SIDE_SUT) sut_lines++;
  }
  ck_assert_int_eq(sut_lines, 3);
  fixture_close(&f);
}
END_TEST

/* A profile's "positions" reach the answer to REPLICATE: a known stream keeps its
 * place with the new token, an unknown one is announced last. */
START_TEST(configured_positions_are_announced) {
  struct event_base *base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "test.local");
  cfg.ping_interval_ms = 0;
  ck_assert_int_eq(mockhs_config_set_position(&cfg, "caches", 7), 0);
  ck_assert_int_eq(mockhs_config_set_position(&cfg, "un_partial_stated_room", 5), 0);
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  ck_assert_msg(mock != NULL, "%s", err.msg);
  client_t client = {.used = 0, .fd = client_connect(mockhs_port(mock))};
  ck_assert_int_ge(client.fd, 0);
  fixture_t f = {.base = base, .mock = mock, .client = client};
  free(expect_line(&f));
  free(expect_line(&f));
  client_send(&f.client, "NAME worker1\nPING 1\nREPLICATE \n");
  bool saw_caches = false;
  char *last = NULL;
  for (;;) {
    char *next = client_read_line(&f.client, f.mock, 500, NULL);
    if (next == NULL) break;
    if (strcmp(next, "POSITION caches master 7 7") == 0) saw_caches = true;
    free(last);
    last = next;
  }
  ck_assert_msg(saw_caches, "no 'POSITION caches master 7 7'");
  ck_assert_ptr_nonnull(last);
  ck_assert_str_eq(last, "POSITION un_partial_stated_room master 5 5");
  free(last);
  while (cfg.stream_count < MOCKHS_MAX_STREAMS)
    cfg.streams[cfg.stream_count++] = (mockhs_stream_t){"filler", 0};
  ck_assert_int_eq(mockhs_config_set_position(&cfg, "one-too-many", 1), -1);
  fixture_close(&f);
}
END_TEST

START_TEST(replicate_2018_answers_requested_stream_or_errors) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_2018, 0);
  free(expect_line(&f));
  free(expect_line(&f));
  client_send(&f.client, "REPLICATE caches 2\n");
  char *line = expect_line(&f);
  ck_assert_str_eq(line, "POSITION caches 4");
  free(line);
  client_send(&f.client, "REPLICATE nosuch 1\n");
  line = expect_line(&f);
  ck_assert_msg(strncmp(line, "ERROR failed to handle replicate: ", 34) == 0, "got '%s'", line);
  free(line);
  bool eof;
  ck_assert_ptr_null(client_read_line(&f.client, f.mock, 2000, &eof));
  ck_assert(eof);
  fixture_close(&f);
}
END_TEST

static bool is_close(const ledger_entry_t *e, void *arg) {
  (void)arg;
  return e->kind == LEDGER_CLOSE;
}

START_TEST(invalid_line_is_rejected_like_a_real_main) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  free(expect_line(&f));
  free(expect_line(&f));
  client_send(&f.client, "HELLO world\n");
  char *line = expect_line(&f);
  ck_assert_msg(strncmp(line, "ERROR failed to parse line: ", 28) == 0, "got '%s'", line);
  free(line);
  const ledger_entry_t *close = mockhs_wait_for(f.mock, 1, is_close, NULL, 2000);
  ck_assert_ptr_nonnull(close);
  ck_assert_int_eq(close->side, LEDGER_SIDE_MOCK);
  ck_assert_int_eq(close->how, LEDGER_CLOSE_FIN);
  ck_assert(!mockhs_conn_is_open(f.mock, 1));
  fixture_close(&f);
}
END_TEST

START_TEST(over_long_line_gets_line_length_exceeded) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  free(expect_line(&f));
  free(expect_line(&f));
  char *big = malloc(PROTO_MAX_LINE + 2);
  memset(big, 'A', PROTO_MAX_LINE + 1);
  big[PROTO_MAX_LINE + 1] = '\0';
  client_send(&f.client, big); /* no LF: the limit applies to an unterminated buffer too */
  free(big);
  char *line = expect_line(&f);
  ck_assert_str_eq(line, "ERROR Line length exceeded");
  free(line);
  fixture_close(&f);
}
END_TEST

START_TEST(client_close_is_recorded_as_fin_or_rst) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  free(expect_line(&f));
  close(f.client.fd);
  const ledger_entry_t *close_entry = mockhs_wait_for(f.mock, 1, is_close, NULL, 2000);
  ck_assert_ptr_nonnull(close_entry);
  ck_assert_int_eq(close_entry->side, LEDGER_SIDE_SUT);
  ck_assert_int_eq(close_entry->how, LEDGER_CLOSE_FIN);

  /* An RST: SO_LINGER 0 then close. */
  f.client.fd = client_connect(mockhs_port(f.mock));
  f.client.used = 0;
  free(expect_line(&f));
  struct linger lg = {1, 0};
  setsockopt(f.client.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(f.client.fd);
  f.client.fd = -1;
  uint64_t after = close_entry->seq + 1;
  const ledger_entry_t *rst = mockhs_wait_for(f.mock, after, is_close, NULL, 2000);
  ck_assert_ptr_nonnull(rst);
  ck_assert_int_eq(rst->conn_id, 2);
  ck_assert_int_eq(rst->how, LEDGER_CLOSE_RST);
  fixture_close(&f);
}
END_TEST

START_TEST(mock_close_fin_and_reset_reach_the_client) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  free(expect_line(&f));
  free(expect_line(&f));
  ck_assert_int_eq(mockhs_close_conn(f.mock, 1, false), 0);
  bool eof;
  ck_assert_ptr_null(client_read_line(&f.client, f.mock, 2000, &eof));
  ck_assert(eof);
  close(f.client.fd);
  f.client.fd = client_connect(mockhs_port(f.mock));
  f.client.used = 0;
  free(expect_line(&f));
  free(expect_line(&f));
  ck_assert_int_eq(mockhs_close_conn(f.mock, 2, true), 0);
  mockhs_run_for(f.mock, 50); /* libevent may finish the close on the next loop turn */
  char b;
  struct pollfd pfd = {.fd = f.client.fd, .events = POLLIN};
  ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
  ck_assert_int_eq(recv(f.client.fd, &b, 1, 0), -1);
  ck_assert_int_eq(errno, ECONNRESET);
  ck_assert_int_eq(mockhs_close_conn(f.mock, 2, true), -1); /* already closed */
  fixture_close(&f);
}
END_TEST

START_TEST(idle_connection_is_pinged_each_interval) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 100);
  free(expect_line(&f));
  free(expect_line(&f)); /* opening PING */
  int64_t start = rc_clock_mono_ms();
  char *ping = expect_line(&f);
  int64_t gap = rc_clock_mono_ms() - start;
  ck_assert_msg(strncmp(ping, "PING ", 5) == 0, "got '%s'", ping);
  ck_assert_msg(gap >= 50 && gap <= 1000, "keepalive PING after %lld ms", (long long)gap);
  free(ping);
  mockhs_set_pinging(f.mock, false);
  while (client_read_line(&f.client, f.mock, 50, NULL) != NULL) {
  }
  ck_assert_ptr_null(client_read_line(&f.client, f.mock, 400, NULL));
  fixture_close(&f);
}
END_TEST

static bool never(const ledger_entry_t *e, void *arg) {
  (void)e;
  (void)arg;
  return false;
}

START_TEST(wait_for_respects_its_deadline) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  int64_t start = rc_clock_mono_ms();
  ck_assert_ptr_null(mockhs_wait_for(f.mock, 1, never, NULL, 300));
  int64_t took = rc_clock_mono_ms() - start;
  ck_assert_msg(took >= 290, "returned after %lld ms", (long long)took);
  fixture_close(&f);
}
END_TEST

START_TEST(not_listening_refuses_then_listens_on_same_port) {
  fixture_t f;
  fixture_open(&f, PROTO_DIALECT_MODERN, 0);
  int port = mockhs_port(f.mock);
  rc_error_t err;
  ck_assert_int_eq(mockhs_set_listening(f.mock, false, &err), 0);
  ck_assert_int_lt(client_connect(port), 0);
  ck_assert_int_eq(errno, ECONNREFUSED);
  ck_assert_int_eq(mockhs_set_listening(f.mock, true, &err), 0);
  ck_assert_int_eq(mockhs_port(f.mock), port);
  int fd = client_connect(port);
  ck_assert_int_ge(fd, 0);
  close(fd);
  fixture_close(&f);
}
END_TEST

START_TEST(port_in_use_is_a_clear_error) {
  struct event_base *base = event_base_new();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  ck_assert_int_eq(listen(fd, 1), 0);
  socklen_t len = sizeof sin;
  getsockname(fd, (struct sockaddr *)&sin, &len);
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "test.local");
  cfg.port = ntohs(sin.sin_port);
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  ck_assert_ptr_null(mock);
  ck_assert_msg(strstr(err.msg, "cannot listen on 127.0.0.1:") != NULL &&
                    strstr(err.msg, "Address already in use") != NULL,
                "%s", err.msg);
  close(fd);
  event_base_free(base);
}
END_TEST

START_TEST(ledger_drops_oldest_beyond_capacity) {
  ledger_t *ledger = ledger_create(4);
  for (int i = 0; i < 10; i++) {
    char text[16];
    int n = snprintf(text, sizeof text, "line %d", i);
    ck_assert_ptr_nonnull(
        ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, text, (size_t)n));
  }
  ck_assert_uint_eq(ledger_first_seq(ledger), 7);
  ck_assert_uint_eq(ledger_next_seq(ledger), 11);
  ck_assert_ptr_null(ledger_get(ledger, 6));
  ck_assert_str_eq(ledger_get(ledger, 10)->text, "line 9");
  char *tail = ledger_format_tail(ledger, 0);
  ck_assert_msg(strstr(tail, "(6 earlier entries dropped)") != NULL, "%s", tail);
  ck_assert_msg(strstr(tail, "c1 < line 9") != NULL, "%s", tail);
  free(tail);
  ledger_destroy(ledger);
  ledger_destroy(NULL);
}
END_TEST

START_TEST(ledger_rows_escape_control_bytes) {
  ledger_t *ledger = ledger_create(0);
  const ledger_entry_t *e =
      ledger_append(ledger, 3, LEDGER_LINE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, "A\x01\x1b" "B", 4);
  char row[128];
  ledger_format_entry(ledger, e, row, sizeof row);
  ck_assert_msg(strstr(row, "c3 > A\\x01\\x1bB") != NULL, "%s", row);
  e = ledger_append(ledger, 3, LEDGER_CLOSE, LEDGER_SIDE_SUT, LEDGER_CLOSE_RST, NULL, 0);
  ledger_format_entry(ledger, e, row, sizeof row);
  ck_assert_msg(strstr(row, "--- closed by sut (RST)") != NULL, "%s", row);
  ledger_destroy(ledger);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mockhs");
  TCase *tc = tcase_create("mockhs");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, opening_is_server_then_ping);
  tcase_add_test(tc, modern_replicate_gets_every_position);
  tcase_add_test(tc, configured_positions_are_announced);
  tcase_add_test(tc, replicate_2018_answers_requested_stream_or_errors);
  tcase_add_test(tc, invalid_line_is_rejected_like_a_real_main);
  tcase_add_test(tc, over_long_line_gets_line_length_exceeded);
  tcase_add_test(tc, client_close_is_recorded_as_fin_or_rst);
  tcase_add_test(tc, mock_close_fin_and_reset_reach_the_client);
  tcase_add_test(tc, idle_connection_is_pinged_each_interval);
  tcase_add_test(tc, wait_for_respects_its_deadline);
  tcase_add_test(tc, not_listening_refuses_then_listens_on_same_port);
  tcase_add_test(tc, port_in_use_is_a_clear_error);
  tcase_add_test(tc, ledger_drops_oldest_beyond_capacity);
  tcase_add_test(tc, ledger_rows_escape_control_bytes);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
