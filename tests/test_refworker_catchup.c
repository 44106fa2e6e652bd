/* Integration tests of refworker's HTTP catch-up (reference/stream_handler.c,
 * stream_catchup.c, http_catchup.c): the real binary against the real mock homeserver
 * (mock_server/: direct TCP replication and its HTTP side get_repl_stream_updates) run
 * in this process, and, for answers the mock never gives (malformed bodies), a small
 * evhttp server of this file on the same event loop.
 *
 * Each test names the requirement it checks (shared/spec/requirements.md §6) and the
 * upstream behaviour it encodes (synapse handler.py@v1.66.0 _process_position and its
 * per-stream queues, HEAD's "prev <= cur <= new" rule); failures print Requirement /
 * Expected / Actual. The worker's typing position is read with the position probe of
 * requirements.md §0 (POSITION typing master X X; from_token of the GET is the position).
 * Every wait runs the mock's event loop and has a deadline. REFWORKER_TEST_MARGIN_MS
 * (default 400) widens the margins and REFWORKER_TEST_WRAPPER (e.g. "valgrind
 * --error-exitcode=99") runs the worker under a wrapper, for hand runs. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "mock_http.h"
#include "mock_worker_support.h"
#include "mockhs.h"
#include "rc_clock.h"
#include "rc_net.h"
#include "stream_history.h"
#include "test_support.h"

#define SERVER_NAME "test.local"
#define INSTANCE "worker1"
#define ROW "[\"!r:hs\",[\"@x:hs\"]]"
#define GET_TYPING "GET /_synapse/replication/get_repl_stream_updates/typing/"

/* ---- per-test state (one test per process in CK_FORK mode) ------------------------ */

static mock_worker_t w; /* the loop, the mock, the worker and its directory */
static int conn = -1;             /* the worker's current replication connection */
static int64_t probe_next = 1000; /* X of the next position probe */

static void setup(void) {
  mock_worker_open(&w, "test_refworker_catchup", PROTO_DIALECT_MODERN, true);
  conn = -1;
  probe_next = 1000;
}

static void teardown(void) {
  /* Every test ends with SIGTERM: the exit status is the verdict of sanitizers and of a
   * valgrind wrapper, and it proves a catch-up in flight does not block the shutdown. */
  int status;
  bool exited = mock_worker_stop(&w, &status);
  mock_worker_close(&w);
  ck_assert_msg(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "CL-05 (orderly exit on SIGTERM, also with a catch-up in flight)\n"
                "  Expected: exit status 0\n  Actual: %s %d",
                !exited             ? "still running, status"
                : WIFEXITED(status) ? "exit"
                                    : "signal",
                !exited             ? -1
                : WIFEXITED(status) ? WEXITSTATUS(status)
                                    : WTERMSIG(status));
}

/* ---- the worker ------------------------------------------------------------------ */

static char *mock_http_url(void) {
  char *url = malloc(64);
  ck_assert_ptr_nonnull(url);
  snprintf(url, 64, "http://127.0.0.1:%d", mockhs_http_port(w.mock));
  return url;
}

/* Starts refworker consuming typing (at 3) and caches (position from the main), with
 * --http-url url (NULL: none) and the extra arguments (NULL-ended, may be NULL). */
static void worker_start(const char *url, const char *const *extra) {
  char port[16];
  snprintf(port, sizeof port, "%d", mockhs_port(w.mock));
  char *bin = test_path(test_env("REPLCHECK_BIN_DIR"), "refworker");
  const char *argv[64];
  size_t argc = 0;
  const char *fixed[] = {bin,         "--host",
                         "127.0.0.1", "--port",
                         port,        "--server-name",
                         SERVER_NAME, "--dialect",
                         "modern",    "--log",
                         w.log_path,    "--instance-name",
                         INSTANCE,    "--stream",
                         "typing=3",  "--stream",
                         "caches",    "--reconnect-initial-ms",
                         "50",        "--reconnect-max-ms",
                         "250"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[argc++] = fixed[i];
  if (url != NULL) {
    argv[argc++] = "--http-url";
    argv[argc++] = url;
  }
  for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 62; i++) argv[argc++] = extra[i];
  argv[argc] = NULL;
  w.child = test_spawn_wrapped(argv);
  free(bin);
}

/* ---- ledger and log --------------------------------------------------------------- */

typedef struct match {
  ledger_kind_t kind;
  int conn_id; /* 0: any */
  ledger_side_t side;
  const char *prefix;
} match_t;

static bool match_entry(const ledger_entry_t *e, void *arg) {
  const match_t *m = arg;
  return e->kind == m->kind && (m->conn_id == 0 || e->conn_id == m->conn_id) &&
         (m->side == 0 || e->side == m->side) &&
         (m->prefix == NULL || strncmp(e->text, m->prefix, strlen(m->prefix)) == 0);
}

static uint64_t now_seq(void) {
  return ledger_next_seq(mockhs_ledger(w.mock));
}

static const ledger_entry_t *wait_get(uint64_t from, const char *prefix, int timeout_ms) {
  match_t m = {.kind = LEDGER_HTTP, .prefix = prefix};
  return mockhs_wait_for(w.mock, from, match_entry, &m, timeout_ms);
}

static int64_t query_int(const char *text, const char *key) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "%s=", key);
  const char *p = strstr(text, pattern);
  ck_assert_msg(p != NULL, "PO-04: no %s in '%s'", key, text);
  char *end = NULL;
  long long v = strtoll(p + strlen(pattern), &end, 10);
  ck_assert_msg(end != p + strlen(pattern) && (*end == '\0' || *end == '&'),
                "PO-04: %s is not an integer in '%s'", key, text);
  return v;
}

static char *log_read(void) {
  return test_log_read(w.log_path);
}

static long log_offset(const char *needle) {
  return test_log_offset(w.log_path, needle);
}

static bool log_contains(const char *needle) {
  return log_offset(needle) >= 0;
}

static size_t log_count(const char *needle) {
  return test_log_count(w.log_path, needle);
}

static bool log_has_cb(void *arg) {
  return log_contains(arg);
}

/* Runs the loop until the log contains needle. */
static bool log_wait(const char *needle, int timeout_ms) {
  return mockhs_run_until(w.mock, log_has_cb, (void *)needle, timeout_ms, 10);
}

static void expect_log(const char *needle, int timeout_ms, const char *requirement) {
  if (log_wait(needle, timeout_ms)) return;
  char *text = log_read();
  size_t len = strlen(text);
  ck_assert_msg(false,
                "%s\n  Expected: '%s' in the worker's log\n"
                "  Actual: not there within %d ms; the log ends with:\n%s",
                requirement, needle, timeout_ms, text + (len > 1500 ? len - 1500 : 0));
  free(text);
}

static void send_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void send_line(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  ck_assert_msg(mockhs_send_line(w.mock, conn, line, (size_t)n) == 0,
                "the replication connection c%d stays open\n  Expected: open\n"
                "  Actual: closed before '%s'",
                conn, line);
}

/* Waits for the worker's next connection after from_seq and for its handshake to be
 * processed (the mock answers REPLICATE with POSITION typing master 0 0: the worker,
 * at 3, keeps 3). */
static void wait_connected(uint64_t from_seq, int timeout_ms) {
  match_t open = {.kind = LEDGER_OPEN};
  const ledger_entry_t *o = mockhs_wait_for(w.mock, from_seq, match_entry, &open, timeout_ms);
  ck_assert_msg(o != NULL, "RC-01\n  Expected: a replication connection\n  Actual: none");
  conn = o->conn_id;
  match_t rep = {
      .kind = LEDGER_LINE, .conn_id = conn, .side = LEDGER_SIDE_SUT, .prefix = "REPLICATE"};
  ck_assert_msg(mockhs_wait_for(w.mock, o->seq, match_entry, &rep, (int)(1000 + w.margin_ms)),
                "HS-03\n  Expected: REPLICATE\n  Actual: none on c%d", conn);
  mockhs_run_for(w.mock, 100); /* the POSITION answers are processed */
}

static void start_connected(const char *url, const char *const *extra) {
  worker_start(url, extra);
  wait_connected(1, (int)(5000 + 5 * w.margin_ms));
}

/* The position probe: the worker's typing position (from_token of its catch-up GET);
 * afterwards the worker is at the probe's X. */
static int64_t probe_typing(const char *requirement) {
  int64_t x = probe_next;
  probe_next += 1000;
  stream_history_set(mockhs_history(w.mock), "typing", x);
  uint64_t seq = now_seq();
  ck_assert_int_eq(mockhs_send_position(w.mock, conn, "typing", x, x), 0);
  const ledger_entry_t *e = wait_get(seq, GET_TYPING, (int)(1000 + w.margin_ms));
  ck_assert_msg(e != NULL,
                "%s (position probe)\n  Expected: a catch-up GET after 'POSITION "
                "typing master %" PRId64 " %" PRId64 "'\n  Actual: none",
                requirement, x, x);
  int64_t from = query_int(e->text, "from_token");
  char caught[128];
  snprintf(caught, sizeof caught, "Caught up with stream 'typing' to %" PRId64, x);
  expect_log(caught, (int)(1000 + w.margin_ms), requirement);
  return from;
}

static void expect_position(int64_t want, const char *requirement) {
  int64_t got = probe_typing(requirement);
  ck_assert_msg(got == want, "%s\n  Expected: typing position %" PRId64 "\n  Actual: %" PRId64,
                requirement, want, got);
}

/* ---- catch-up over the mock's HTTP side -------------------------------------------- */

/* PO-03, PO-04, PO-05 (grouping): a POSITION whose prev is above the position fetches
 * (cur, new] with GET .../typing/<10 letters>?from_token=3&upto_token=5; rows are applied
 * grouped by token; the position becomes new and the stream is connected, so the next
 * RDATA applies; every request has a fresh txn_id. Upstream: handler.py@v1.66.0
 * _process_position; trace 1.67-redis/fake-main (the same exchange). */
START_TEST(test_gap_fetched_and_applied) {
  char *url = mock_http_url();
  start_connected(url, NULL);
  stream_history_t *h = mockhs_history(w.mock);
  stream_history_append(h, "typing", 4, ROW, strlen(ROW));
  stream_history_append(h, "typing", 5, "[\"!a:hs\",[]]", 12);
  stream_history_append(h, "typing", 5, "[\"!b:hs\",[]]", 12);
  uint64_t seq = now_seq();
  send_line("POSITION typing master 4 5");
  const ledger_entry_t *get = wait_get(seq, GET_TYPING, (int)(1000 + w.margin_ms));
  ck_assert_msg(get != NULL, "PO-03\n  Expected: a catch-up GET\n  Actual: none");
  regex_t re;
  ck_assert_int_eq(regcomp(&re,
                           "^GET /_synapse/replication/get_repl_stream_updates/typing/"
                           "([A-Za-z]{10})\\?from_token=3&upto_token=5$",
                           REG_EXTENDED),
                   0);
  regmatch_t m[2];
  bool shaped = regexec(&re, get->text, 2, m, 0) == 0;
  ck_assert_msg(shaped,
                "PO-04 (request shape)\n  Expected: GET .../typing/<txn_id>?from_token=3"
                "&upto_token=5\n  Actual: '%s'",
                get->text);
  char first_txn[16];
  snprintf(first_txn, sizeof first_txn, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
           get->text + m[1].rm_so);
  expect_log("Caught up with stream 'typing' to 5", (int)(1000 + w.margin_ms), "PO-03");
  ck_assert(log_contains("Fetching replication rows for 'typing' / master between 3 and 5"));
  ck_assert_msg(log_count("Received rdata typing (master) -> 4") == 1 &&
                    log_count("Received rdata typing (master) -> 5") == 1 &&
                    log_contains("Applied a unit of 1 row(s) of typing at 4") &&
                    log_contains("Applied a unit of 2 row(s) of typing at 5"),
                "PO-05 (rows applied grouped by token: equal tokens are one unit)\n"
                "  Expected: units 4 (1 row) and 5 (2 rows), once each\n  Actual: see the log");
  long caught = log_offset("Caught up with stream 'typing' to 5");
  ck_assert_msg(log_offset("Received rdata typing (master) -> 5") < caught,
                "PO-03 (rows applied before the position advances)");

  send_line("RDATA typing master 6 " ROW);
  expect_log("Received rdata typing (master) -> 6", (int)w.margin_ms,
             "PO-01 (connected after the catch-up: later RDATA is applied)");

  seq = now_seq();
  send_line("POSITION typing master 8 9");
  get = wait_get(seq, GET_TYPING, (int)(1000 + w.margin_ms));
  ck_assert_msg(get != NULL && regexec(&re, get->text, 2, m, 0) != 0, "second GET: %s",
                get ? get->text : "none");
  ck_assert_int_eq(query_int(get->text, "from_token"), 6);
  ck_assert_msg(strstr(get->text, first_txn) == NULL,
                "PO-04 (a fresh txn_id per request)\n  Expected: not %s\n  Actual: '%s'", first_txn,
                get->text);
  regfree(&re);
  expect_position(9, "PO-01/PO-03 (position is new_token after the catch-up)");
  free(url);
}
END_TEST

/* PO-02: prev == cur fetches nothing; neither does a writer ahead of new_token. */
START_TEST(test_no_fetch_without_gap) {
  char *url = mock_http_url();
  start_connected(url, NULL);
  uint64_t seq = now_seq();
  send_line("POSITION typing master 3 7");
  send_line("POSITION typing master 7 7");
  send_line("POSITION typing master 1 2"); /* at 7, ahead of 2: kept */
  expect_log("already at 7, POSITION says 1..2; keeping 7", (int)w.margin_ms, "spec §2.4");
  ck_assert_msg(wait_get(seq, GET_TYPING, 300) == NULL,
                "PO-02\n  Expected: no catch-up request\n  Actual: a GET");
  expect_position(7, "PO-01");
  free(url);
}
END_TEST

/* PO-05: limited pages are followed from the returned upto_token until limited is false;
 * a run of equal tokens is never split; then the position is new_token. */
START_TEST(test_paging) {
  char *url = mock_http_url();
  start_connected(url, NULL);
  mock_http_set_page_size(mockhs_http(w.mock), 1);
  stream_history_t *h = mockhs_history(w.mock);
  stream_history_append(h, "typing", 4, ROW, strlen(ROW));
  stream_history_append(h, "typing", 5, ROW, strlen(ROW));
  stream_history_append(h, "typing", 5, ROW, strlen(ROW));
  stream_history_append(h, "typing", 6, ROW, strlen(ROW));
  uint64_t seq = now_seq();
  send_line("POSITION typing master 6 6");
  expect_log("Caught up with stream 'typing' to 6", (int)(2000 + w.margin_ms), "PO-05");
  int64_t froms[3];
  const ledger_entry_t *e = NULL;
  for (int i = 0; i < 3; i++) {
    e = wait_get(e != NULL ? e->seq + 1 : seq, GET_TYPING, (int)w.margin_ms);
    ck_assert_msg(e != NULL, "PO-05\n  Expected: 3 requests (pages 4 | 5 5 | 6)\n  Actual: %d", i);
    froms[i] = query_int(e->text, "from_token");
    ck_assert_int_eq(query_int(e->text, "upto_token"), 6);
  }
  ck_assert_msg(froms[0] == 3 && froms[1] == 4 && froms[2] == 5,
                "PO-05 (next page from the returned upto_token)\n  Expected: from 3, 4, 5\n"
                "  Actual: from %" PRId64 ", %" PRId64 ", %" PRId64,
                froms[0], froms[1], froms[2]);
  ck_assert_msg(wait_get(e->seq + 1, GET_TYPING, 200) == NULL, "PO-05: a 4th request");
  ck_assert(log_contains("Applied a unit of 2 row(s) of typing at 5"));
  mock_http_set_page_size(mockhs_http(w.mock), 100);
  expect_position(6, "PO-05 (the position becomes new_token)");
  free(url);
}
END_TEST

/* PO-06: while typing catches up, its RDATA and POSITION wait and are processed after
 * it, in arrival order; other streams are not held up (RD-04 per stream only). */
START_TEST(test_queued_during_catchup) {
  char *url = mock_http_url();
  start_connected(url, NULL);
  int hold = (int)(800 + w.margin_ms);
  mock_http_set_delay(mockhs_http(w.mock), hold);
  uint64_t seq = now_seq();
  send_line("POSITION typing master 4 5");
  ck_assert_msg(wait_get(seq, GET_TYPING, (int)(1000 + w.margin_ms)) != NULL, "PO-03: no GET");
  send_line("RDATA typing master 6 " ROW);
  send_line("POSITION typing master 6 7");
  send_line("RDATA typing master 8 " ROW);
  send_line("RDATA caches master 10 [\"get_user_by_id\",[\"@x:hs\"],1]");
  expect_log("Received rdata caches (master) -> 10", (int)w.margin_ms,
             "PO-06 (other streams are not blocked by typing's catch-up)");
  ck_assert_msg(!log_contains("Received rdata typing (master) -> 6"),
                "PO-06\n  Expected: typing's RDATA waits for the catch-up\n"
                "  Actual: applied during it");
  expect_log("Received rdata typing (master) -> 8", hold + (int)(1000 + w.margin_ms), "PO-06");
  long caught5 = log_offset("Caught up with stream 'typing' to 5");
  long rdata6 = log_offset("Received rdata typing (master) -> 6");
  long caught7 = log_offset("Caught up with stream 'typing' to 7");
  long rdata8 = log_offset("Received rdata typing (master) -> 8");
  long caches = log_offset("Received rdata caches (master) -> 10");
  ck_assert_msg(caches < caught5 && caught5 < rdata6 && rdata6 < caught7 && caught7 < rdata8,
                "PO-06 (processed after the catch-up, in arrival order)\n  Expected: caches 10,"
                " caught up 5, rdata 6, caught up 7, rdata 8\n  Actual: offsets %ld %ld %ld %ld "
                "%ld",
                caches, caught5, rdata6, caught7, rdata8);
  mock_http_set_delay(mockhs_http(w.mock), 0);
  ck_assert_msg(
      wait_get(seq, "GET /_synapse/replication/get_repl_stream_updates/caches/", 0) == NULL,
      "no catch-up for caches");
  expect_position(8, "PO-06");
  free(url);
}
END_TEST

/* PO-07: an HTTP 500 keeps the connection, logs ERROR "Failed to handle command",
 * does not advance; typing's RDATA is dropped until the next POSITION, which fetches
 * again from the old position. */
START_TEST(test_failed_catchup_then_retry) {
  char *url = mock_http_url();
  start_connected(url, NULL);
  mock_http_fail_next(mockhs_http(w.mock), 500, 1);
  uint64_t seq = now_seq();
  send_line("POSITION typing master 4 5");
  expect_log(
      "Failed to handle command POSITION typing master 4 5: GET "
      "/_synapse/replication/get_repl_stream_updates/typing/",
      (int)(1000 + w.margin_ms), "PO-07 (failure logged)");
  ck_assert(log_contains("HTTP 500"));
  ck_assert(wait_get(seq, GET_TYPING, 0) != NULL);
  send_line("RDATA typing master 6 " ROW);
  expect_log("Discarding RDATA for unconnected stream typing -> 6", (int)w.margin_ms,
             "PO-07 (RDATA dropped until the next POSITION)");
  ck_assert_msg(mockhs_conn_is_open(w.mock, conn),
                "PO-07\n  Expected: the replication connection stays open\n  Actual: closed");
  seq = now_seq();
  send_line("POSITION typing master 7 8");
  const ledger_entry_t *retry = wait_get(seq, GET_TYPING, (int)(1000 + w.margin_ms));
  ck_assert_msg(retry != NULL && query_int(retry->text, "from_token") == 3,
                "PO-07 (fetch again from the old position)\n  Expected: from_token=3\n"
                "  Actual: %s",
                retry ? retry->text : "no request");
  expect_log("Caught up with stream 'typing' to 8", (int)(1000 + w.margin_ms), "PO-07");
  ck_assert(!log_contains("Received rdata typing (master) -> 6"));
  free(url);
}
END_TEST

/* PO-07 with a connection error: nothing listens at --http-url. */
START_TEST(test_connection_refused) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", rc_net_free_port());
  start_connected(url, NULL);
  send_line("POSITION typing master 4 5");
  expect_log("could not connect to 127.0.0.1:", (int)(1000 + w.margin_ms),
             "PO-07 (connection refused is a failed catch-up, with the reason logged)");
  ck_assert(log_contains("Failed to handle command POSITION typing master 4 5"));
  send_line("POSITION typing master 5 6");
  expect_log("Failed to handle command POSITION typing master 5 6", (int)(1000 + w.margin_ms),
             "PO-07 (the next POSITION tries again)");
  ck_assert(log_contains("between 3 and 6"));
  mockhs_run_for(w.mock, 200);
  ck_assert_msg(mockhs_conn_is_open(w.mock, conn), "PO-07: replication connection closed");
}
END_TEST

/* Every request has a deadline (--http-timeout-ms): a held answer fails the catch-up
 * after it, the connection stays, and the next POSITION catches up. */
START_TEST(test_request_timeout) {
  char *url = mock_http_url();
  const char *extra[] = {"--http-timeout-ms", "300", NULL};
  start_connected(url, extra);
  mock_http_set_delay(mockhs_http(w.mock), (int)(1500 + w.margin_ms));
  int64_t sent = rc_clock_mono_ms();
  send_line("POSITION typing master 4 5");
  expect_log("timed out after 300 ms", (int)(1000 + w.margin_ms), "request deadline");
  int64_t took = rc_clock_mono_ms() - sent;
  ck_assert_msg(took >= 250, "the deadline fired after %" PRId64 " ms, before 300", took);
  ck_assert(log_contains("Failed to handle command POSITION typing master 4 5"));
  mock_http_set_delay(mockhs_http(w.mock), 0);
  mockhs_run_for(w.mock, (int)(1500 + w.margin_ms)); /* the held answer comes and is ignored */
  ck_assert(!log_contains("Caught up with stream 'typing' to 5"));
  ck_assert_msg(mockhs_conn_is_open(w.mock, conn), "replication connection closed");
  expect_position(3, "PO-07 (not advanced by a timed-out catch-up)");
  free(url);
}
END_TEST

/* A connection loss abandons the catch-up in flight: its answer, arriving later, is not
 * applied to the next connection's state, and catch-up on the new connection starts
 * from the worker's own position (RC-06). */
START_TEST(test_connection_loss_abandons_catchup) {
  char *url = mock_http_url();
  start_connected(url, NULL);
  int hold = (int)(700 + w.margin_ms);
  mock_http_set_delay(mockhs_http(w.mock), hold);
  uint64_t seq = now_seq();
  send_line("POSITION typing master 4 5");
  /* A real main that lost the connection would announce typing where it is (0). */
  stream_history_set(mockhs_history(w.mock), "typing", 0);
  ck_assert_msg(wait_get(seq, GET_TYPING, (int)(1000 + w.margin_ms)) != NULL, "no GET");
  seq = now_seq();
  ck_assert_int_eq(mockhs_close_conn(w.mock, conn, false), 0);
  wait_connected(seq, (int)(2000 + w.margin_ms));
  expect_log("Abandoning the catch-up of stream typing", (int)w.margin_ms, "connection loss");
  mock_http_set_delay(mockhs_http(w.mock), 0);
  mockhs_run_for(w.mock, hold + 300); /* the held answer is sent to a closed request */
  ck_assert_msg(!log_contains("Caught up with stream 'typing' to 5"),
                "abandoned catch-up\n  Expected: its answer is never applied\n"
                "  Actual: 'Caught up with stream 'typing' to 5' in the log");
  expect_position(3, "RC-06 (catch-up on the new connection from the worker's own position)");
  free(url);
}
END_TEST

/* Without --http-url (old invocations): the gap is reported and adopted. */
START_TEST(test_without_http_url) {
  start_connected(NULL, NULL);
  uint64_t seq = now_seq();
  send_line("POSITION typing master 4 5");
  expect_log("Gap in stream typing: at 3, POSITION says 4..5; no catch-up source", (int)w.margin_ms,
             "spec §2.4 (gap detected)");
  expect_log("Caught up with stream 'typing' to 5", (int)w.margin_ms, "gap adopted");
  ck_assert(wait_get(seq, "GET ", 200) == NULL);
}
END_TEST

/* ---- answers the mock never gives: a canned HTTP server ----------------------------- */

typedef struct canned {
  struct evhttp *http;
  int port;
  int connections; /* accepted so far */
  int requests;
  int status;
  const char *body;
} canned_t;

static canned_t canned;

/* evhttp asks for a bufferevent for every connection it accepts: count them. */
static struct bufferevent *canned_new_bev(struct event_base *b, void *arg) {
  (void)arg;
  canned.connections++;
  return bufferevent_socket_new(b, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void canned_on_request(struct evhttp_request *req, void *arg) {
  (void)arg;
  canned.requests++;
  ledger_append(mockhs_ledger(w.mock), 0, LEDGER_HTTP, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE,
                evhttp_request_get_uri(req), strlen(evhttp_request_get_uri(req)));
  struct evbuffer *body = evbuffer_new();
  evbuffer_add(body, canned.body, strlen(canned.body));
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, canned.status, canned.status == 200 ? "OK" : "Error", body);
  evbuffer_free(body);
}

static char *canned_start(void) {
  memset(&canned, 0, sizeof canned);
  canned.http = evhttp_new(w.base);
  ck_assert_ptr_nonnull(canned.http);
  struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(canned.http, "127.0.0.1", 0);
  ck_assert_ptr_nonnull(sock);
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &len), 0);
  canned.port = ntohs(sin.sin_port);
  evhttp_set_gencb(canned.http, canned_on_request, NULL);
  evhttp_set_bevcb(canned.http, canned_new_bev, NULL);
  char *url = malloc(64);
  ck_assert_ptr_nonnull(url);
  snprintf(url, 64, "http://127.0.0.1:%d", canned.port);
  return url;
}

static void canned_stop(void) {
  if (canned.http != NULL) evhttp_free(canned.http);
  canned.http = NULL;
}

/* A body with the shape of a get_repl_stream_updates answer for (3, 5]. */
#define PAGE(updates, upto, limited) \
  "{\"updates\":" updates ",\"upto_token\":" upto ",\"limited\":" limited "}"

/* What is wrong with each answer, as the worker must report it (PO-07: "malformed body"
 * is a failed catch-up). The shape is Synapse's ReplicationGetStreamUpdates answer. */
static const struct {
  int status;
  const char *body;
  const char *reason;
} malformed[] = {
    {200, "not json", "malformed body: not JSON"},
    {200, "", "malformed body: not JSON"},
    {200, "[]", "expected a JSON object, got array"},
    {200, PAGE("[]", "5", "false") " trailing", "malformed body: not JSON"},
    {200, "{\"updates\":[],\"updates\":[],\"upto_token\":5,\"limited\":false}",
     "duplicate object key"},
    {200, "{\"upto_token\":5,\"limited\":false}", "'updates': expected an array, got nothing"},
    {200, PAGE("{}", "5", "false"), "'updates': expected an array, got object"},
    {200, PAGE("[]", "\"5\"", "false"), "'upto_token': expected an integer, got string"},
    {200, PAGE("[]", "5.0", "false"), "'upto_token': expected an integer, got number"},
    {200, "{\"updates\":[],\"upto_token\":5}", "'limited': expected a boolean, got nothing"},
    {200, PAGE("[]", "5", "0"), "'limited': expected a boolean, got integer"},
    {200, PAGE("[[4]]", "5", "false"), "'updates'[0]: expected a [token, row] pair"},
    {200, PAGE("[4]", "5", "false"), "'updates'[0]: expected a [token, row] pair, got integer"},
    {200, PAGE("[[\"4\",[]]]", "5", "false"), "'updates'[0][0]: expected an integer token"},
    {200, PAGE("[[9,[]]]", "5", "false"), "token 9 is outside (from_token 3, upto_token 5]"},
    {200, PAGE("[[3,[]]]", "5", "false"), "token 3 is outside"},
    {200, PAGE("[[5,[]],[4,[]]]", "5", "false"), "tokens must not decrease"},
    {200, PAGE("[[4,{}]]", "5", "false"), "'updates'[0][1]: expected the row as an array"},
    {200, PAGE("[]", "99", "false"), "'upto_token' 99 is outside the requested range [3, 5]"},
    {200, PAGE("[]", "3", "true"), "'limited' is true but 'upto_token' 3 does not pass"},
    {400, "{\"errcode\":\"M_UNKNOWN\",\"error\":\"Unknown stream\"}",
     "HTTP 400 Error: {\"errcode\":\"M_UNKNOWN\",\"error\":\"Unknown stream\"}"},
    {502, "", "HTTP 502"},
};

/* PO-07 with every kind of malformed answer: each is logged with what is wrong, applies
 * nothing and does not advance; the HTTP connection is reused throughout (pooled
 * keep-alive), and a good answer afterwards catches up. */
START_TEST(test_malformed_answers) {
  char *url = canned_start();
  start_connected(url, NULL);
  size_t n = sizeof malformed / sizeof malformed[0];
  for (size_t i = 0; i < n; i++) {
    canned.status = malformed[i].status;
    canned.body = malformed[i].body;
    size_t failures = log_count("Failed to handle command POSITION typing master 4 5");
    uint64_t seq = now_seq();
    send_line("POSITION typing master 4 5");
    const ledger_entry_t *get = wait_get(seq, "/_synapse/", (int)(1000 + w.margin_ms));
    ck_assert_msg(get != NULL && query_int(get->text, "from_token") == 3,
                  "PO-07 (case %zu: fetch again from the old position)\n  Expected: "
                  "from_token=3\n  Actual: %s",
                  i, get ? get->text : "no request");
    int64_t deadline = rc_clock_mono_ms() + 1000 + w.margin_ms;
    while (log_count("Failed to handle command POSITION typing master 4 5") == failures &&
           rc_clock_mono_ms() < deadline)
      mockhs_run_for(w.mock, 10);
    char text[4096] = "";
    char *logtext = log_read();
    const char *last = NULL;
    for (const char *p = strstr(logtext, "Failed to handle command"); p != NULL;
         p = strstr(p + 1, "Failed to handle command"))
      last = p;
    if (last != NULL) snprintf(text, sizeof text, "%.*s", (int)strcspn(last, "\n"), last);
    free(logtext);
    ck_assert_msg(strstr(text, malformed[i].reason) != NULL,
                  "PO-07 (case %zu: body %s)\n  Expected: ERROR 'Failed to handle command ...'"
                  " naming '%s'\n  Actual: '%s'",
                  i, malformed[i].body, malformed[i].reason, text);
  }
  ck_assert_msg(!log_contains("Received rdata typing") &&
                    !log_contains("Caught up with stream 'typing' to 5"),
                "PO-07\n  Expected: nothing applied from a malformed answer\n"
                "  Actual: typing rows or position applied");
  ck_assert_msg(mockhs_conn_is_open(w.mock, conn), "PO-07: replication connection closed");
  canned.status = 200;
  canned.body = PAGE("[[4,[\"!r:hs\",[]]],[5,[\"!r:hs\",[]]]]", "5", "false");
  send_line("POSITION typing master 4 5");
  expect_log("Caught up with stream 'typing' to 5", (int)(1000 + w.margin_ms), "PO-03");
  ck_assert(log_contains("Received rdata typing (master) -> 4"));
  ck_assert_msg(canned.connections == 1,
                "pooled keep-alive connection\n  Expected: %d requests on 1 connection\n"
                "  Actual: %d connections",
                canned.requests, canned.connections);
  canned_stop();
  free(url);
}
END_TEST

static Suite *catchup_suite(void) {
  Suite *s = suite_create("refworker_catchup");
  TCase *tc = tcase_create("catchup");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_gap_fetched_and_applied);
  tcase_add_test(tc, test_no_fetch_without_gap);
  tcase_add_test(tc, test_paging);
  tcase_add_test(tc, test_queued_during_catchup);
  tcase_add_test(tc, test_failed_catchup_then_retry);
  tcase_add_test(tc, test_connection_refused);
  tcase_add_test(tc, test_request_timeout);
  tcase_add_test(tc, test_connection_loss_abandons_catchup);
  tcase_add_test(tc, test_without_http_url);
  tcase_add_test(tc, test_malformed_answers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(catchup_suite());
}
