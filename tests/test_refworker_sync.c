/* Integration tests of refworker's sync and client roles (reference/presence_sync.c,
 * client_ips.c, client_api.c; --sync, --user): the real binary against the real mock
 * homeserver run in this process, its client API driven with libcurl on the mock's event
 * loop (http_probe_start), so /sync long-polls never stop the mock.
 *
 * Each test names the requirements it checks (shared/spec/requirements.md HS-08,
 * OUT-01..OUT-08, RE-07) and the upstream behaviour it encodes (synapse
 * app/synchrotron.py@v0.33.3, handlers/presence.py@v1.66.0, client_ips.py); failures
 * print Requirement / Expected / Actual. Every wait runs the mock's loop and has a
 * deadline. REFWORKER_TEST_MARGIN_MS (default 400) widens the margins, for hand runs
 * under slow tools. */
#include <check.h>
#include <inttypes.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/event.h>

#include "http_probe.h"
#include "mock_worker_support.h"
#include "mockhs.h"
#include "rc_clock.h"
#include "rc_net.h"
#include "test_support.h"

#define SERVER_NAME "test.local"
#define USER "@alice:test"
#define TOKEN "syt_alice"
#define DEVICE "ALICEDEV"
#define END_DELAY_MS 12000 /* PRESENCE_SYNC_END_DELAY_MS */

/* ---- per-test state (one test per process in CK_FORK mode) ------------------------ */

static mock_worker_t w; /* the loop, the mock, the worker and its directory */
static int http_port;
static proto_dialect_t dialect;

static proto_dialect_t dialects_of(int i) {
  return i == 0 ? PROTO_DIALECT_2018 : PROTO_DIALECT_MODERN;
}

static void setup_dialect(proto_dialect_t d) {
  dialect = d;
  mock_worker_open(&w, "test_refworker_sync", d, false);
}

/* SIGTERM and wait for the exit (0: sanitizers and the orderly shutdown agree), with
 * every line the worker wrote before it read by the mock. */
static void worker_stop(void) {
  if (w.child <= 0) return;
  int status;
  bool exited = mock_worker_stop(&w, &status);
  ck_assert_msg(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "CL-05 (orderly exit on SIGTERM with the client API in use)\n"
                "  Expected: exit status 0\n  Actual: %s",
                exited ? "another status" : "still running");
}

static void teardown(void) {
  mock_worker_close(&w);
}

/* ---- the worker ------------------------------------------------------------------ */

static bool has_opening(void *arg) {
  (void)arg;
  return mockhs_latest_conn(w.mock) > 0;
}

/* Starts refworker with --user USER=TOKEN=DEVICE, --sync when sync, and `bug` (or NULL);
 * waits for its first connection. */
static void worker_start(bool sync, const char *bug) {
  char port[16], http[16];
  snprintf(port, sizeof port, "%d", mockhs_port(w.mock));
  http_port = rc_net_free_port();
  ck_assert_int_gt(http_port, 0);
  snprintf(http, sizeof http, "%d", http_port);
  char *bin = test_path(test_env("REPLCHECK_BIN_DIR"), "refworker");
  const char *argv[40] = {bin,
                          "--host",
                          "127.0.0.1",
                          "--port",
                          port,
                          "--server-name",
                          SERVER_NAME,
                          "--dialect",
                          proto_dialect_name(dialect),
                          "--log",
                          w.log_path,
                          "--http-port",
                          http,
                          "--user",
                          USER "=" TOKEN "=" DEVICE,
                          "--user",
                          "@bob:test=syt_bob",
                          "--reconnect-initial-ms",
                          "50",
                          "--reconnect-max-ms",
                          "250"};
  size_t argc = 0;
  while (argv[argc] != NULL) argc++;
  if (sync) argv[argc++] = "--sync";
  if (bug != NULL) {
    argv[argc++] = "--bug";
    argv[argc++] = bug;
  }
  argv[argc] = NULL;
  w.child = fork();
  ck_assert_int_ge(w.child, 0);
  if (w.child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  free(bin);
  ck_assert_msg(mockhs_run_until(w.mock, has_opening, NULL, (int)(5000 + 5 * w.margin_ms), 10),
                "the worker never connected");
  mockhs_run_for(w.mock, 100);
}

/* ---- the client ------------------------------------------------------------------- */

typedef struct reply {
  long status;
  char body[512];
  int64_t ended_ns; /* when the answer was in */
} reply_t;

static http_probe_async_t *request_start(const char *path_and_query, const char *token,
                                         const char *agent) {
  char url[512], auth[128], ua[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_port, path_and_query);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
  snprintf(ua, sizeof ua, "User-Agent: %s", agent ? agent : "test");
  const char *headers[] = {ua, token ? auth : NULL, NULL};
  http_request_t req = {.url = url, .timeout_ms = 20000, .extra_headers = headers};
  rc_error_t err;
  http_probe_async_t *p = http_probe_start(w.base, &req, &err);
  ck_assert_msg(p != NULL, "%s", err.msg);
  return p;
}

static bool probe_done(void *arg) {
  return http_probe_async_done(arg);
}

static reply_t request_finish(http_probe_async_t *p, int timeout_ms) {
  ck_assert_msg(mockhs_run_until(w.mock, probe_done, p, timeout_ms, 5), "no HTTP answer within %d ms",
                timeout_ms);
  rc_error_t err;
  http_response_t *r = http_probe_async_take(p, &err);
  ck_assert_msg(r != NULL, "%s", err.msg);
  reply_t out = {.status = r->status, .ended_ns = rc_clock_mono_ns()};
  snprintf(out.body, sizeof out.body, "%s", r->body);
  http_response_destroy(r);
  http_probe_async_destroy(p);
  return out;
}

static reply_t request(const char *path_and_query, const char *token, const char *agent) {
  return request_finish(request_start(path_and_query, token, agent), (int)(3000 + w.margin_ms));
}

/* ---- the wire ---------------------------------------------------------------------- */

typedef struct line_match {
  const char *prefix;
  int conn;
} line_match_t;

static bool sut_line(const ledger_entry_t *e, void *arg) {
  const line_match_t *m = arg;
  return e->kind == LEDGER_LINE && e->side == LEDGER_SIDE_SUT &&
         (m->conn == 0 || e->conn_id == m->conn) &&
         strncmp(e->text, m->prefix, strlen(m->prefix)) == 0;
}

static uint64_t now_seq(void) {
  return ledger_next_seq(mockhs_ledger(w.mock));
}

static const ledger_entry_t *wait_line(uint64_t from, const char *prefix, int conn,
                                       int timeout_ms) {
  line_match_t m = {prefix, conn};
  return mockhs_wait_for(w.mock, from, sut_line, &m, timeout_ms);
}

static size_t count_lines(uint64_t from, const char *prefix) {
  ledger_t *ledger = mockhs_ledger(w.mock);
  line_match_t m = {prefix, 0};
  size_t n = 0;
  for (uint64_t s = from; s < ledger_next_seq(ledger); s++) {
    const ledger_entry_t *e = ledger_get(ledger, s);
    if (e != NULL && sut_line(e, &m)) n++;
  }
  return n;
}

/* The parsed USER_SYNC line e (fails the test on a parse error). */
static proto_command_t parse_user_sync(const ledger_entry_t *e) {
  proto_command_t cmd;
  proto_error_t perr;
  ck_assert_msg(
      proto_parse_line(dialect, PROTO_SENDER_CLIENT, e->text, e->len, &cmd, &perr) == PROTO_OK &&
          cmd.kind == PROTO_CMD_USER_SYNC,
      "FR-02\n  Expected: a valid USER_SYNC line\n  Actual: '%s' (%s)", e->text, perr.message);
  return cmd;
}

static int64_t wall_ms_at(int64_t mono_ns) {
  return rc_clock_wall_ms() - (rc_clock_mono_ns() - mono_ns) / 1000000;
}

/* ---- role sync --------------------------------------------------------------------- */

/* OUT-01, OUT-03, OUT-04, OUT-05 (form): one start (5-letter instance id in modern) for
 * two concurrent syncs; a resync 1 s after the first ended sends nothing; one end
 * END_DELAY_MS after the last sync ended, stamped with that time. Upstream:
 * synchrotron.py@v0.33.3 user_syncing, mark_as_coming_online, send_stop_syncing. */
START_TEST(test_sync_start_grace_end) {
  setup_dialect(dialects_of(_i));
  worker_start(true, NULL);
  uint64_t seq = now_seq();
  http_probe_async_t *a = request_start("/_matrix/client/r0/sync?timeout=600", TOKEN, NULL);
  const ledger_entry_t *start = wait_line(seq, "USER_SYNC ", 0, (int)(1000 + w.margin_ms));
  ck_assert_msg(start != NULL, "OUT-01\n  Expected: USER_SYNC start within 1 s\n  Actual: none");
  proto_command_t cmd = parse_user_sync(start);
  ck_assert_msg(cmd.sync_start && proto_slice_eq(cmd.user_id, USER),
                "OUT-01\n  Expected: USER_SYNC ... " USER " start <now>\n  Actual: '%s'",
                start->text);
  int64_t skew = cmd.last_sync_ms - wall_ms_at(start->mono_ns);
  ck_assert_msg(skew > -1000 && skew < 1000, "OUT-01 (<ms> is now)\n  Actual: %+" PRId64 " ms",
                skew);
  if (dialect == PROTO_DIALECT_MODERN) {
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^USER_SYNC [A-Za-z]{5} " USER " start [0-9]+$", REG_EXTENDED),
                     0);
    ck_assert_msg(regexec(&re, start->text, 0, NULL, 0) == 0,
                  "OUT-05 (form)\n  Expected: USER_SYNC <5 letters> " USER
                  " start <ms>\n  Actual: '%s'",
                  start->text);
    regfree(&re);
  }
  http_probe_async_t *b = request_start("/_matrix/client/v3/sync?timeout=300", TOKEN, NULL);
  ck_assert_int_eq(request_finish(b, 3000).status, 200);
  reply_t first = request_finish(a, 3000);
  ck_assert_int_eq(first.status, 200);
  ck_assert_msg(strstr(first.body, "\"next_batch\"") != NULL, "a /sync body: %s", first.body);
  mockhs_run_for(w.mock, 1000);
  reply_t again = request("/_matrix/client/r0/sync?timeout=200&set_presence=online", TOKEN, NULL);
  ck_assert_int_eq(again.status, 200);
  uint64_t from = start->seq + 1;
  const ledger_entry_t *end =
      wait_line(from, "USER_SYNC ", 0, (int)(END_DELAY_MS + 2 * w.margin_ms + 1000));
  ck_assert_msg(end != NULL, "OUT-03\n  Expected: USER_SYNC end\n  Actual: none");
  cmd = parse_user_sync(end);
  double after = (double)(end->mono_ns - again.ended_ns) / 1e9;
  ck_assert_msg(!cmd.sync_start && after > (END_DELAY_MS - 300) / 1000.0 &&
                    after < (END_DELAY_MS + w.margin_ms) / 1000.0,
                "OUT-03/OUT-04\n  Expected: the only other USER_SYNC is an end %d ms after the "
                "last sync ended\n  Actual: '%s' %.2f s after it",
                END_DELAY_MS, end->text, after);
  int64_t off = cmd.last_sync_ms - wall_ms_at(again.ended_ns);
  ck_assert_msg(off > -300 && off < 100,
                "OUT-03\n  Expected: <ms> = when the last sync ended\n  Actual: %+" PRId64 " ms",
                off);
  mockhs_run_for(w.mock, 300);
  ck_assert_uint_eq(count_lines(seq, "USER_SYNC "), 2);
  worker_stop();
}
END_TEST

/* OUT-02: set_presence=offline sends nothing; without --sync (presence disabled) no
 * /sync sends anything either. */
START_TEST(test_sync_offline_and_disabled) {
  setup_dialect(PROTO_DIALECT_MODERN);
  worker_start(_i == 1, NULL);
  uint64_t seq = now_seq();
  const char *path = _i == 1 ? "/_matrix/client/r0/sync?timeout=100&set_presence=offline"
                             : "/_matrix/client/r0/sync?timeout=100";
  ck_assert_int_eq(request(path, TOKEN, NULL).status, 200);
  mockhs_run_for(w.mock, 1000);
  ck_assert_msg(count_lines(seq, "USER_SYNC") == 0,
                "OUT-02\n  Expected: no USER_SYNC for %s\n  Actual: %zu",
                _i == 1 ? "an offline /sync" : "a /sync with presence disabled",
                count_lines(seq, "USER_SYNC"));
  worker_stop();
  ck_assert_msg(count_lines(seq, "CLEAR_USER_SYNC") == (_i == 1 ? 1u : 0u),
                "OUT-06/OUT-10\n  Expected: CLEAR_USER_SYNC at shutdown only with presence");
}
END_TEST

/* HS-08, OUT-05, OUT-06: a new connection repeats the start of a user whose /sync is in
 * flight (modern before REPLICATE, 2018 after the REPLICATE lines), with the same
 * instance id; SIGTERM sends CLEAR_USER_SYNC with it before the close (modern). With
 * --bug no-user-sync-on-reconnect the new connection carries no start. Upstream:
 * protocol.py@v0.33.3 connectionMade, handler.py@v1.66.0 new_connection, _on_shutdown. */
START_TEST(test_reconnect_repeats_start) {
  bool bug = _i >= 2;
  setup_dialect(dialects_of(_i % 2));
  worker_start(true, bug ? "no-user-sync-on-reconnect" : NULL);
  uint64_t seq = now_seq();
  http_probe_async_t *a = request_start("/_matrix/client/r0/sync?timeout=4000", "syt_bob", NULL);
  const ledger_entry_t *first = wait_line(seq, "USER_SYNC ", 0, (int)(1000 + w.margin_ms));
  ck_assert_ptr_nonnull(first);
  proto_command_t cmd = parse_user_sync(first);
  char instance[16];
  proto_slice_copy(cmd.instance, instance, sizeof instance);
  int c1 = first->conn_id;
  uint64_t close_seq = now_seq();
  ck_assert_int_eq(mockhs_close_conn(w.mock, c1, false), 0);
  const ledger_entry_t *again = wait_line(close_seq, "USER_SYNC ", 0, (int)(1500 + w.margin_ms));
  if (bug) {
    ck_assert_msg(again == NULL, "the bug switch: no USER_SYNC on the new connection, got '%s'",
                  again ? again->text : "");
  } else {
    ck_assert_msg(again != NULL && again->conn_id != c1,
                  "HS-08\n  Expected: USER_SYNC start on the new connection\n  Actual: none");
    cmd = parse_user_sync(again);
    ck_assert(cmd.sync_start && proto_slice_eq(cmd.user_id, "@bob:test"));
    ck_assert_msg(proto_slice_eq(cmd.instance, instance), "OUT-05\n  Expected: instance %s",
                  instance);
    const ledger_entry_t *rep = wait_line(close_seq, "REPLICATE", again->conn_id, 0);
    ck_assert_ptr_nonnull(rep);
    bool before = again->seq < rep->seq;
    ck_assert_msg(before == (dialect == PROTO_DIALECT_MODERN),
                  "HS-08/F-05\n  Expected: the start %s REPLICATE\n  Actual: %s",
                  dialect == PROTO_DIALECT_MODERN ? "before" : "after",
                  before ? "before" : "after");
  }
  http_probe_async_destroy(a); /* the client goes away: the sync ends */
  uint64_t term = now_seq();
  worker_stop();
  if (dialect == PROTO_DIALECT_MODERN) {
    const ledger_entry_t *clear = wait_line(term, "CLEAR_USER_SYNC ", 0, 0);
    ck_assert_msg(clear != NULL, "OUT-06\n  Expected: CLEAR_USER_SYNC at SIGTERM\n  Actual: none");
    char want[64];
    snprintf(want, sizeof want, "CLEAR_USER_SYNC %s", instance);
    ck_assert_str_eq(clear->text, want);
  }
}
END_TEST

/* With --bug user-sync-end-immediately the end follows the sync at once (the grace is
 * gone), so a resync sends a new start. */
START_TEST(test_bug_end_immediately) {
  setup_dialect(PROTO_DIALECT_MODERN);
  worker_start(true, "user-sync-end-immediately");
  uint64_t seq = now_seq();
  ck_assert_int_eq(request("/_matrix/client/r0/sync?timeout=100", TOKEN, NULL).status, 200);
  ck_assert_ptr_nonnull(wait_line(seq, "USER_SYNC ", 0, 1000));
  ck_assert_int_eq(request("/_matrix/client/r0/sync?timeout=100", TOKEN, NULL).status, 200);
  mockhs_run_for(w.mock, 300);
  ck_assert_uint_eq(count_lines(seq, "USER_SYNC "), 4);
  worker_stop();
}
END_TEST

/* ---- role client ------------------------------------------------------------------- */

/* OUT-07, OUT-08: whoami answers for the token's user; the first request of a (user,
 * token, IP) sends USER_IP [token, ip, agent, device, ms] (device null without one);
 * more requests within G_ip send nothing, whatever their agent; with --bug
 * user-ip-every-request every request sends one. Unknown and missing tokens get 401.
 * Upstream: client_ips.py@v0.33.3 (LAST_SEEN_GRANULARITY). */
START_TEST(test_whoami_user_ip) {
  bool bug = _i == 1;
  setup_dialect(PROTO_DIALECT_2018);
  worker_start(false, bug ? "user-ip-every-request" : NULL);
  reply_t r = request("/_matrix/client/r0/sync?timeout=0", NULL, NULL);
  ck_assert_msg(r.status == 401 && strstr(r.body, "M_MISSING_TOKEN"), "no token: %ld %s", r.status,
                r.body);
  r = request("/_matrix/client/r0/account/whoami", "nope", NULL);
  ck_assert_msg(r.status == 401 && strstr(r.body, "M_UNKNOWN_TOKEN"), "bad token: %ld %s", r.status,
                r.body);
  mockhs_run_for(w.mock, 200);
  uint64_t seq = now_seq();
  r = request("/_matrix/client/r0/account/whoami", TOKEN, "agent-1");
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.body, "{\"user_id\":\"" USER "\",\"device_id\":\"" DEVICE "\"}");
  const ledger_entry_t *ip = wait_line(seq, "USER_IP ", 0, 1000);
  ck_assert_msg(ip != NULL, "OUT-07\n  Expected: USER_IP within 1 s\n  Actual: none");
  regex_t re;
  ck_assert_int_eq(regcomp(&re,
                           "^USER_IP " USER " \\[\"" TOKEN
                           "\",\"127\\.0\\.0\\.1\",\"agent-1\",\"" DEVICE "\",[0-9]+\\]$",
                           REG_EXTENDED),
                   0);
  ck_assert_msg(regexec(&re, ip->text, 0, NULL, 0) == 0,
                "OUT-07\n  Expected: USER_IP " USER
                " [token, ip, agent, device, ms]\n"
                "  Actual: '%s'",
                ip->text);
  regfree(&re);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(request("/_matrix/client/r0/account/whoami?access_token=" TOKEN, NULL,
                             i == 0 ? "agent-2" : "agent-1")
                         .status,
                     200);
  ck_assert_int_eq(request("/_matrix/client/r0/account/whoami", "syt_bob", NULL).status, 200);
  mockhs_run_for(w.mock, 500);
  size_t alice = count_lines(seq, "USER_IP " USER " "),
         bob = count_lines(seq, "USER_IP @bob:test ");
  ck_assert_msg(alice == (bug ? 4u : 1u) && bob == 1,
                "OUT-08\n  Expected: %s USER_IP for " USER
                ", one for @bob\n"
                "  Actual: %zu and %zu",
                bug ? "4 (the bug)" : "one", alice, bob);
  ck_assert_msg(strstr(wait_line(seq, "USER_IP @bob:test ", 0, 0)->text, ",null,") != NULL,
                "OUT-07: a token without a device reports null");
  r = request("/_matrix/client/r0/sync?timeout=x", TOKEN, NULL);
  ck_assert_msg(r.status == 400, "bad timeout: %ld %s", r.status, r.body);
  worker_stop();
}
END_TEST

static Suite *sync_suite(void) {
  Suite *s = suite_create("refworker_sync");
  TCase *tc = tcase_create("sync");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_sync_start_grace_end, 0, 2);
  tcase_add_loop_test(tc, test_sync_offline_and_disabled, 0, 2);
  tcase_add_loop_test(tc, test_reconnect_repeats_start, 0, 4);
  tcase_add_test(tc, test_bug_end_immediately);
  suite_add_tcase(s, tc);
  TCase *client = tcase_create("client");
  tcase_add_checked_fixture(client, NULL, teardown);
  tcase_set_timeout(client, 30);
  tcase_add_loop_test(client, test_whoami_user_ip, 0, 2);
  suite_add_tcase(s, client);
  return s;
}

int main(void) {
  return test_run_suite(sync_suite());
}
