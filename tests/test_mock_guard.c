/* The harness's defences against a SUT that does not behave, one by one with real
 * sockets: the ledger's byte budget (stable entries, the drop hook that keeps passive
 * checks complete), the mock's back-pressure ("Failed to keep up" for a SUT that stops
 * reading, none for one that reads slowly), a silent close from inside the mock's read
 * callback (a use-after-free a garbage flood found; ASan and valgrind builds check it),
 * the listener out of descriptors, and log scans that never hold a huge line. The whole
 * runs against hostile programs are in test_hostile.c. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() 0
#endif

#include "filetail.h"
#include "ledger.h"
#include "mockhs.h"
#include "passive.h"
#include "rc_clock.h"
#include "test_support.h"

static int client_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

typedef struct find {
  ledger_kind_t kind;
  const char *text;
} find_t;

static bool has_text(const ledger_entry_t *e, void *arg) {
  const find_t *f = arg;
  return e->kind == f->kind && strstr(e->text, f->text) != NULL;
}

static mockhs_t *quiet_mock(struct event_base *base) {
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "guard.test");
  cfg.ping_interval_ms = 0;
  cfg.http_enabled = false;
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  ck_assert_msg(mock != NULL, "%s", err.msg);
  return mock;
}

/* Waits until the mock has accepted `n` connections; returns the latest one. */
static int accepted(mockhs_t *mock, int n) {
  int64_t deadline = rc_clock_mono_ms() + 5000;
  while (mockhs_accepted_count(mock) < n && rc_clock_mono_ms() < deadline) mockhs_run_for(mock, 5);
  ck_assert_int_ge(mockhs_accepted_count(mock), n);
  return mockhs_latest_conn(mock);
}

START_TEST(ledger_budget_keeps_newest_and_entries_in_place) {
  ledger_t *ledger = ledger_create(0);
  ledger_set_max_bytes(ledger, 64 * 1024);
  char text[1000];
  memset(text, 'a', sizeof text);
  const ledger_entry_t *first = ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT,
                                              LEDGER_CLOSE_NONE, text, 10);
  /* An entry keeps its address while later ones arrive (block storage). */
  for (int i = 0; i < 40; i++)
    ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, text, 100);
  ck_assert_ptr_eq(ledger_get(ledger, 1), first);
  ck_assert_uint_eq(first->len, 10);
  for (int i = 0; i < 5000; i++)
    ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, text, sizeof text);
  ck_assert_uint_le(ledger_bytes_held(ledger), 64 * 1024);
  ck_assert_uint_gt(ledger_first_seq(ledger), 5000 - 64);
  ck_assert_uint_eq(ledger_next_seq(ledger), 5042);
  /* One entry over the whole budget is still kept, alone. */
  char *big = malloc(100000);
  memset(big, 'b', 100000);
  const ledger_entry_t *e =
      ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, big, 100000);
  ck_assert_ptr_nonnull(e);
  ck_assert_uint_eq(ledger_first_seq(ledger), e->seq);
  char *tail = ledger_format_tail(ledger, 0);
  ck_assert_msg(strstr(tail, "(5041 earlier entries dropped)") != NULL, "%.200s", tail);
  free(tail);
  free(big);
  ledger_destroy(ledger);
}
END_TEST

typedef struct drops {
  uint64_t count, last_seq;
  char why[512];
  bool violation;
  const profile_t *profile;
} drops_t;

static void on_drop(const ledger_entry_t *e, void *arg) {
  drops_t *d = arg;
  d->count++;
  ck_assert_uint_eq(e->seq, d->last_seq + 1); /* oldest first, none skipped */
  d->last_seq = e->seq;
  if (!d->violation && !passive_check_entry(e, d->profile, d->why, sizeof d->why))
    d->violation = true;
}

START_TEST(drop_hook_sees_every_dropped_entry) {
  profile_t profile = {.dialect = PROTO_DIALECT_MODERN, .transport = PROFILE_TRANSPORT_TCP,
                       .roles = PROFILE_ROLE_WORKER};
  drops_t d = {.profile = &profile};
  ledger_t *ledger = ledger_create(100);
  ledger_set_drop_hook(ledger, on_drop, &d);
  ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, "PING 1", 6);
  ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, "BOGUS x", 7);
  for (int i = 0; i < 1000; i++)
    ledger_append(ledger, 1, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, "PING 2", 6);
  ck_assert_uint_eq(d.count, 902);
  ck_assert_msg(d.violation, "the dropped invalid line was not seen");
  ck_assert_msg(strstr(d.why, "FR-02") != NULL && strstr(d.why, "BOGUS") != NULL, "%s", d.why);
  /* What is still held passes: the violation was only visible on its way out. */
  char why[512];
  ck_assert(passive_check_ledger(ledger, &profile, why, sizeof why));
  ledger_destroy(ledger);
}
END_TEST

START_TEST(sut_that_stops_reading_is_closed_like_a_real_main) {
  struct event_base *base = event_base_new();
  mockhs_t *mock = quiet_mock(base);
  int fd = client_connect(mockhs_port(mock));
  ck_assert_int_ge(fd, 0);
  int conn = accepted(mock, 1);
  /* The client never reads; the mock keeps writing (a test emitting rows). */
  char line[200];
  memset(line, 'x', sizeof line);
  memcpy(line, "ERROR ", 6);
  int64_t deadline = rc_clock_mono_ms() + 20000;
  int sent = 0;
  while (mockhs_conn_is_open(mock, conn) && rc_clock_mono_ms() < deadline) {
    mockhs_send_line(mock, conn, line, sizeof line);
    if (++sent % 1000 == 0) mockhs_run_for(mock, 10);
  }
  ck_assert_msg(!mockhs_conn_is_open(mock, conn), "still open after %d lines", sent);
  find_t note = {LEDGER_NOTE, "the SUT failed to keep up"};
  ck_assert_ptr_nonnull(mockhs_wait_for(mock, 1, has_text, &note, 0));
  find_t error = {LEDGER_LINE, "ERROR Failed to keep up"};
  ck_assert_ptr_nonnull(mockhs_wait_for(mock, 1, has_text, &error, 0));
  find_t closed = {LEDGER_CLOSE, "failed to keep up"};
  ck_assert_ptr_nonnull(mockhs_wait_for(mock, 1, has_text, &closed, 0));
  close(fd);
  mockhs_destroy(mock);
  event_base_free(base);
}
END_TEST

START_TEST(sut_that_reads_is_not_closed_for_a_bulk_emission) {
  struct event_base *base = event_base_new();
  mockhs_t *mock = quiet_mock(base);
  int fd = client_connect(mockhs_port(mock));
  int conn = accepted(mock, 1);
  /* 30000 rows in one call, more than a real main queues, to a client that reads. */
  enum { ROWS = 30000 };
  mockhs_row_t *rows = calloc(ROWS, sizeof *rows);
  for (int i = 0; i < ROWS; i++) rows[i] = (mockhs_row_t){.token = 10 + i, .json = "[\"x\",[\"k\"],1]"};
  rc_error_t err;
  ck_assert_int_eq(mockhs_emit(mock, "caches", rows, ROWS, &err), 0);
  size_t got = 0;
  char buf[65536];
  int64_t deadline = rc_clock_mono_ms() + 20000;
  size_t lines = 0;
  while (lines < ROWS + 2 && rc_clock_mono_ms() < deadline) { /* + SERVER, PING */
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got += (size_t)n;
      for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
    } else {
      mockhs_run_for(mock, 1);
    }
  }
  ck_assert_uint_eq(lines, ROWS + 2);
  ck_assert(mockhs_conn_is_open(mock, conn));
  free(rows);
  close(fd);
  mockhs_destroy(mock);
  event_base_free(base);
}
END_TEST

START_TEST(silent_close_from_the_read_callback) {
  struct event_base *base = event_base_new();
  mockhs_t *mock = quiet_mock(base);
  for (int round = 0; round < 20; round++) {
    int fd = client_connect(mockhs_port(mock));
    int conn = accepted(mock, round + 1);
    mockhs_run_for(mock, 20); /* the opening is flushed: nothing left to send */
    /* Undecodable bytes: a modern main closes without an ERROR, from inside the read
     * callback, followed by more lines in the same read. */
    static const char garbage[] = "\xff\xfe garbage\nPING 1\nPING 2\n";
    uint64_t from = ledger_next_seq(mockhs_ledger(mock));
    ck_assert_int_eq(send(fd, garbage, sizeof garbage - 1, MSG_NOSIGNAL), (ssize_t)sizeof garbage - 1);
    find_t closed = {LEDGER_CLOSE, ""};
    const ledger_entry_t *e = NULL;
    int64_t deadline = rc_clock_mono_ms() + 5000;
    while (e == NULL && rc_clock_mono_ms() < deadline) {
      e = mockhs_wait_for(mock, from, has_text, &closed, 50);
      if (e != NULL && e->conn_id != conn) {
        from = e->seq + 1;
        e = NULL;
      }
    }
    char *tail = ledger_format_tail(mockhs_ledger(mock), 12);
    ck_assert_msg(e != NULL, "no close of c%d:\n%s", conn, tail);
    free(tail);
    ck_assert_int_eq(e->side, LEDGER_SIDE_MOCK);
    mockhs_run_for(mock, 10);
    /* The mock is still sound: the closed connection is gone, reads nothing more. */
    ck_assert(!mockhs_conn_is_open(mock, conn));
    close(fd);
  }
  mockhs_destroy(mock);
  event_base_free(base);
}
END_TEST

START_TEST(listener_out_of_descriptors_pauses_and_recovers) {
  if (UNDER_VALGRIND()) {
    /* valgrind keeps descriptors of its own under a virtual limit: no EMFILE to stage. */
    printf("listener_out_of_descriptors_pauses_and_recovers: not run under valgrind\n");
    return;
  }
  struct event_base *base = event_base_new();
  mockhs_t *mock = quiet_mock(base);
  /* The clients connect first (the backlog holds them); then the soft limit drops
   * below the next free descriptor, so every accept fails with EMFILE. */
  int fds[16];
  int opened = 0;
  for (; opened < 16; opened++) {
    fds[opened] = client_connect(mockhs_port(mock));
    ck_assert_int_ge(fds[opened], 0);
  }
  int probe = dup(0);
  struct rlimit saved, low;
  getrlimit(RLIMIT_NOFILE, &saved);
  low = saved;
  low.rlim_cur = (rlim_t)probe;
  close(probe);
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
  find_t note = {LEDGER_NOTE, "cannot accept a connection"};
  ck_assert_ptr_nonnull(mockhs_wait_for(mock, 1, has_text, &note, 3000));
  int before = mockhs_accepted_count(mock);
  ck_assert_int_lt(before, 16);
  /* Descriptors back: the paused listener takes the rest. */
  setrlimit(RLIMIT_NOFILE, &saved);
  int64_t deadline = rc_clock_mono_ms() + 5000;
  while (mockhs_accepted_count(mock) < 16 && rc_clock_mono_ms() < deadline) mockhs_run_for(mock, 20);
  ck_assert_int_eq(mockhs_accepted_count(mock), 16);
  for (int i = 0; i < opened; i++) close(fds[i]);
  mockhs_destroy(mock);
  event_base_free(base);
}
END_TEST

START_TEST(log_scan_skips_a_huge_line_without_holding_it) {
  char *dir = test_make_temp_dir("replcheck-guard");
  char *path = test_path(dir, "sut.log");
  FILE *f = fopen(path, "w");
  char chunk[65536];
  memset(chunk, 'y', sizeof chunk);
  for (int i = 0; i < 300; i++) fwrite(chunk, 1, sizeof chunk, f); /* 19 MB, no LF */
  fputs(" ready in the huge line\nsmall line\nready at last\npartial ready", f);
  fclose(f);
  regex_t re;
  ck_assert_int_eq(regcomp(&re, "ready", REG_EXTENDED | REG_NOSUB), 0);
  long offset = 0;
  char match[64];
  ck_assert(filetail_scan_regex(path, &offset, &re, match, sizeof match));
  ck_assert_str_eq(match, "ready at last");
  /* The partial last line waits for its LF. */
  ck_assert(!filetail_scan_regex(path, &offset, &re, match, sizeof match));
  ck_assert_int_eq(offset, filetail_size(path) - (long)strlen("partial ready"));
  char *tail = filetail_last_lines(path, 3);
  ck_assert_msg(strstr(tail, "ready at last") != NULL, "%.200s", tail);
  free(tail);
  regfree(&re);
  test_remove_tree(dir);
  free(path);
  free(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mock_guard");
  TCase *tc = tcase_create("mock_guard");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, ledger_budget_keeps_newest_and_entries_in_place);
  tcase_add_test(tc, drop_hook_sees_every_dropped_entry);
  tcase_add_test(tc, sut_that_stops_reading_is_closed_like_a_real_main);
  tcase_add_test(tc, sut_that_reads_is_not_closed_for_a_bulk_emission);
  tcase_add_test(tc, silent_close_from_the_read_callback);
  tcase_add_test(tc, listener_out_of_descriptors_pauses_and_recovers);
  tcase_add_test(tc, log_scan_skips_a_huge_line_without_holding_it);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
