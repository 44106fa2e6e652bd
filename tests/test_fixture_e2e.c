/* Fixtures end to end, with the real binaries and the reference worker: the bundled
 * bug reproductions pass (and a copy expecting the buggy value fails, naming its file
 * and line); a broken fixture is an ERROR naming file and line, listed like any test;
 * --fixtures and REPLCHECK_FIXTURES; `run --record` then replaying the recording passes;
 * `mockhs --fixture` plays to a worker started outside replcheck and exits 0/1/2;
 * `mockhs --proxy` records a session that replays; under --torture the suites pass, the
 * same seed gives the same schedule, a dropped first connection is absorbed, and a
 * failure says how to reproduce it. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "case_run.h"
#include "rc_clock.h"
#include "rc_net.h"
#include "test_support.h"
#include "torture.h"

static char *work;

static void setup(void) {
  work = test_make_temp_dir("replcheck-fixture-e2e");
}
static void teardown(void) {
  test_remove_tree(work);
  free(work);
}

static char *src_path(const char *rel) {
  return test_path(test_env("REPLCHECK_SOURCE_DIR"), rel);
}

/* A failure quotes the end of the text only: Check refuses messages over 4 KiB. */
static void assert_contains(const char *haystack, const char *needle) {
  size_t len = strlen(haystack);
  ck_assert_msg(strstr(haystack, needle) != NULL, "expected '%s' in:\n%s%s", needle,
                len > 3000 ? "..." : "", len > 3000 ? haystack + len - 3000 : haystack);
}

/* Runs replcheck in work with TMPDIR there; output in *out. Returns the exit status. */
static int replcheck(const char *env, const char *args, char **out) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cd '%s' && TMPDIR='%s' %s '%s/replcheck' %s > out.txt 2>&1", work,
           work, env ? env : "", test_env("REPLCHECK_BIN_DIR"), args);
  int rc = test_run(cmd);
  char *path = test_path(work, "out.txt");
  char *text = test_read_file(path, NULL);
  free(path);
  *out = text ? text : strdup("");
  return rc;
}

static char *write_work(const char *rel, const char *text) {
  char *path = test_path(work, rel);
  char *dir = strdup(path);
  for (char *p = dir + strlen(work) + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(dir, 0755);
    *p = '/';
  }
  free(dir);
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  return path;
}

/* A bundled fixture with one string replaced, written into work/<rel>. */
static void mutate_fixture(const char *bundled, const char *from, const char *to, const char *rel) {
  char *path = src_path(bundled);
  char *text = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  char *at = strstr(text, from);
  ck_assert_msg(at != NULL, "'%s' not in %s", from, bundled);
  char *changed = NULL;
  ck_assert_int_ge(asprintf(&changed, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)),
                   0);
  free(write_work(rel, changed));
  free(changed);
  free(text);
  free(path);
}

/* ---- processes started by hand -------------------------------------------------------- */

typedef struct proc {
  pid_t pid;
  char *out; /* its stdout+stderr file */
} proc_t;

/* Output files get a number of their own: a file of an earlier process must never be
 * mistaken for the new one's. */
static proc_t spawn(const char *name, char *const argv[]) {
  static int spawned;
  char unique[256];
  snprintf(unique, sizeof unique, "%s.%d", name, ++spawned);
  proc_t p = {.out = test_path(work, unique)};
  p.pid = fork();
  ck_assert_int_ge(p.pid, 0);
  if (p.pid == 0) {
    FILE *f = freopen(p.out, "w", stdout);
    if (f == NULL || dup2(fileno(stdout), 2) < 0) _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  return p;
}

/* Polls p's output for text until the deadline; returns its content (caller frees) or
 * fails the test. */
static char *await_output(const proc_t *p, const char *text, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    char *out = test_read_file(p->out, NULL);
    if (out != NULL && strstr(out, text) != NULL) return out;
    if (rc_clock_mono_ms() >= deadline)
      ck_abort_msg("no '%s' within %d ms in %s:\n%s", text, timeout_ms, p->out, out ? out : "");
    free(out);
    usleep(20000);
  }
}

/* Waits up to timeout_ms for p to exit; returns its exit status (-1: killed, 128+sig). */
static int await_exit(proc_t *p, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) break;
    if (rc_clock_mono_ms() >= deadline) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      ck_abort_msg("%s did not exit within %d ms", p->out, timeout_ms);
    }
    usleep(10000);
  }
  p->pid = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void stop(proc_t *p) {
  if (p->pid > 0) {
    kill(p->pid, SIGTERM);
    await_exit(p, 5000);
  }
  free(p->out);
  p->out = NULL;
}

/* The port after `marker` ("listening on 127.0.0.1:") in text. */
static int port_after(const char *text, const char *marker) {
  const char *at = strstr(text, marker);
  ck_assert_msg(at != NULL, "no '%s' in:\n%s", marker, text);
  return atoi(at + strlen(marker));
}

static proc_t start_refworker(const char *name, int port, int http_port, const char *dialect) {
  char bin[4096], port_text[16], http[64], log[4200];
  snprintf(bin, sizeof bin, "%s/refworker", test_env("REPLCHECK_BIN_DIR"));
  snprintf(port_text, sizeof port_text, "%d", port);
  snprintf(http, sizeof http, "http://127.0.0.1:%d", http_port);
  static int workers;
  snprintf(log, sizeof log, "%s/%s-%d.log", work, name, ++workers);
  char *argv[] = {bin,
                  "--host",
                  "127.0.0.1",
                  "--port",
                  port_text,
                  "--server-name",
                  "t.local",
                  "--dialect",
                  (char *)dialect,
                  "--log",
                  log,
                  "--ping-interval-ms",
                  "250",
                  "--ping-timeout-ms",
                  "1250",
                  "--reconnect-initial-ms",
                  "50",
                  "--reconnect-max-ms",
                  "250",
                  http_port > 0 ? "--http-url" : NULL,
                  http,
                  NULL};
  return spawn(name, argv);
}

/* ---- the fixtures suite ---------------------------------------------------------------- */

START_TEST(bundled_fixtures_pass_in_both_dialects) {
  char *out;
  int rc = replcheck(NULL, "list fixtures", &out);
  ck_assert_int_eq(rc, 0);
  static const char *const ids[] = {
      "fixtures/protocol/stream-id-backwards ",    "fixtures/protocol/stream-id-backwards-2018 ",
      "fixtures/protocol/position-out-of-order ",  "fixtures/protocol/rdata-after-position ",
      "fixtures/protocol/batch-interrupted-2018 ", "fixtures/protocol/stream-never-positioned ",
      "fixtures/protocol/batch-interrupted ",      "fixtures/seeds/cache-reaps-unprompted ",
      "fixtures/seeds/handlers-in-background ",    "fixtures/seeds/in-flight-while-working ",
      "fixtures/seeds/server-header-on-errors ",   "fixtures/seeds/handler-error-logged "};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) assert_contains(out, ids[i]);
  free(out);
  char args[4096];
  /* fixtures/seeds/ is the self-test matrix's (tests/test_selftest.c): each seed fixture
   * passes against refworker and fails against its --bug switch. */
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker.json' --bin-dir '%s' fixtures/protocol",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "5 passed, 0 failed, 2 skipped");
  free(out);
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker-2018.json' --bin-dir '%s' fixtures/protocol",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "2 passed, 0 failed, 5 skipped");
  free(out);
}
END_TEST

/* What a worker with the bug would answer makes the fixture fail, naming file and line. */
START_TEST(a_fixture_expecting_the_bug_fails_with_its_location) {
  mutate_fixture("fixtures/protocol/stream-id-backwards.fixture", "from_token=5", "from_token=3",
                 "mine/bug/backwards.fixture");
  mutate_fixture("fixtures/protocol/batch-interrupted-2018.fixture", "< REPLICATE caches 1000006",
                 "< REPLICATE caches 1000005", "mine/bug/batch.fixture");
  char args[4096], *out;
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker.json' --bin-dir '%s' --fixtures mine "
           "--junit report.xml fixtures",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  int rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  assert_contains(out,
                  "FAIL fixtures/bug/backwards: RD-06: no such request within 2000 ms; the "
                  "worker requested 'GET /_synapse/replication/get_repl_stream_updates/typing/");
  assert_contains(out, "from_token=5&upto_token=1000'");
  free(out);
  char *path = test_path(work, "report.xml");
  char *xml = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(xml);
  assert_contains(xml, "Expected: mine/bug/backwards.fixture:21: http GET");
  assert_contains(xml, "FAIL  mine/bug/backwards.fixture:21");
  assert_contains(xml, "(not reached)");
  free(xml);
  free(path);
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker-2018.json' --bin-dir '%s' --fixtures mine "
           "fixtures/bug/batch",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  assert_contains(out, "FAIL fixtures/bug/batch: RC-05,RD-03: no such line within 2000 ms");
  free(out);
}
END_TEST

/* The modern interrupted batch is observed through a cache's size metric: the probe sees
 * batches (without the disconnect the two batch rows land with the numeric one), and a
 * copy expecting what a worker that keeps the buffer does fails, naming the step. */
START_TEST(interrupted_batch_probe_sees_the_batch) {
  char *path = src_path("fixtures/protocol/batch-interrupted.fixture");
  char *text = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  free(path);
  char *cut = strstr(text, "close\nconnect c2\n<~ REPLICATE ?\nwait 100\n");
  ck_assert_ptr_nonnull(cut);
  char *control = NULL;
  ck_assert_int_ge(asprintf(&control, "%.*s%s", (int)(cut - text), text,
                            cut + strlen("close\nconnect c2\n<~ REPLICATE ?\nwait 100\n")),
                   0);
  free(text);
  /* uninterrupted: the worker applies the two batch rows and the numeric one */
  char *at;
  while ((at = strstr(control, "mark+1")) != NULL) at[5] = '3';
  free(write_work("mine/control/uninterrupted.fixture", control));
  free(control);
  mutate_fixture("fixtures/protocol/batch-interrupted.fixture", "== mark+1", "== mark+3",
                 "mine/bug/kept-batch.fixture");
  char args[4096], *out;
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker.json' --bin-dir '%s' --fixtures mine fixtures",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  int rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  assert_contains(out, "1 passed, 1 failed, 0 skipped");
  assert_contains(out, "FAIL fixtures/bug/kept-batch: RD-03: ");
  assert_contains(out, "FAIL fixtures/bug/kept-batch: RD-03: 1 at +");
  assert_contains(out, "(wanted == 3 = mark 0 +3) (the last of ");
  assert_contains(out, "[at mine/bug/kept-batch.fixture:33: metric "
                       "synapse_util_caches_cache_size{name=\"device_seen\"} == mark+3]");
  free(out);
}
END_TEST

/* The reference profile's text (for a test to edit). */
static char *refworker_profile_text(void) {
  char *path = src_path("profiles/refworker.json");
  char *text = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  free(path);
  return text;
}

/* Runs the two seed fixtures under `profile_text` (written as work/name; {bin_dir} comes
 * from --bin-dir), expects both skipped, and returns the output. */
static char *run_seeds_expecting_skips(const char *name, const char *profile_text,
                                       const char *seed1, const char *seed2) {
  free(write_work(name, profile_text));
  char args[4096], *out;
  snprintf(args, sizeof args,
           "run --profile %s --bin-dir '%s' --progress plain fixtures/seeds/%s fixtures/seeds/%s",
           name, test_env("REPLCHECK_BIN_DIR"), seed1, seed2);
  int rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "0 passed, 0 failed, 2 skipped");
  return out;
}

/* A profile without metrics.url or http.url skips fixtures that need them, saying why. */
START_TEST(side_channels_missing_from_the_profile_skip) {
  char *text = refworker_profile_text();
  char *metrics = strstr(text, "  \"metrics\": {");
  char *http = strstr(text, "  \"http\": {");
  char *caches = strstr(text, "  \"caches\": [");
  ck_assert(metrics != NULL && http != NULL && caches != NULL && metrics < http && http < caches);
  char *bare = NULL;
  ck_assert_int_ge(asprintf(&bare, "%.*s%s", (int)(metrics - text), text, caches), 0);
  free(text);
  char *out = run_seeds_expecting_skips("bare.json", bare, "server-header-on-errors",
                                        "handlers-in-background");
  free(bare);
  assert_contains(out,
                  "not applicable: needs the SUT's metrics; the profile declares no metrics.url");
  assert_contains(
      out, "not applicable: needs the SUT's HTTP listener; the profile declares no http.url");
  free(out);
}
END_TEST

/* A fixture with fake remotes or db steps needs role fedsender or pg: without it, it is
 * skipped with the reason, never passed unchecked. */
START_TEST(remotes_and_db_without_their_role_skip) {
  static const struct {
    const char *profile, *fixture, *role;
  } cases[] = {{"refworker-2018.json", "presence-once-per-destination", "fedsender"},
               {"refworker.json", "no-idle-transaction-after-start", "pg"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char args[4096], reason[160], *out;
    snprintf(args, sizeof args, "run --profile '%s/profiles/%s' --progress plain fixtures/seeds/%s",
             test_env("REPLCHECK_SOURCE_DIR"), cases[i].profile, cases[i].fixture);
    int rc = replcheck(NULL, args, &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    assert_contains(out, "0 passed, 0 failed, 1 skipped");
    snprintf(reason, sizeof reason,
             "not applicable: needs role %s, which the profile does not declare", cases[i].role);
    assert_contains(out, reason);
    free(out);
  }
}
END_TEST

/* A profile whose http.paths or caches lack what a fixture's needs-paths/needs-caches name
 * (a real Synapse has no /_refworker/fail) skips it, naming the missing one. */
START_TEST(paths_and_caches_missing_from_the_profile_skip) {
  char *text = refworker_profile_text();
  char *fail = strstr(text, "\"paths\": [\"/health\", \"/_refworker/fail\"]");
  char *cache = strstr(text, "{\"name\": \"device_updates\"");
  ck_assert(fail != NULL && cache != NULL);
  memcpy(strstr(fail, "fail"), "gone", 4);
  memcpy(strstr(cache, "updates"), "changes", 7);
  char *out = run_seeds_expecting_skips("renamed.json", text, "server-header-on-errors",
                                        "cache-reaps-unprompted");
  free(text);
  assert_contains(out, "not applicable: needs path /_refworker/fail, which the profile's "
                       "\"http.paths\" does not list");
  assert_contains(out, "not applicable: needs cache device_updates, which the profile's "
                       "\"caches\" does not list");
  free(out);
}
END_TEST

START_TEST(a_broken_fixture_is_an_error_never_a_pass) {
  free(write_work("mine/broken.fixture",
                  "replcheck-fixture: 1\nrequirements: RD-06\nlevel: OFTEN\n"));
  char args[4096], *out;
  int rc = replcheck(NULL, "list --fixtures mine fixtures", &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "fixtures/broken");
  assert_contains(out,
                  "mine/broken.fixture:3: field 'level': expected MUST or SHOULD, got 'OFTEN'");
  free(out);
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker-2018.json' --bin-dir '%s' "
           "--fixtures mine fixtures",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  assert_contains(out, "ERROR fixtures/broken: mine/broken.fixture:3: field 'level'");
  free(out);
  /* The directory comes from the environment too; a missing one is a usage error. */
  rc = replcheck("REPLCHECK_FIXTURES=mine", "list fixtures/broken", &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  free(out);
  rc = replcheck(NULL, "list --fixtures no-such-dir", &out);
  ck_assert_msg(rc == 2, "exit %d:\n%s", rc, out);
  assert_contains(out, "fixtures directory no-such-dir: No such file or directory");
  free(out);
}
END_TEST

#define ROW "[\"!r:hs\",[\"@x:hs\"]]"

/* Every kind of step against refworker: side channels (HTTP, the SUT's log), negative
 * expectations, stalls, split writes, resets and a reconnect. */
START_TEST(every_step_kind_plays) {
  free(write_work("mine/steps.fixture",
                  "replcheck-fixture: 1\n"
                  "requirements: PO-03\n"
                  "requirement: The worker fetches a gap, logs it, and survives stalls and resets.\n"
                  "source: test\n"
                  "dialects: modern\n"
                  "ping-interval: 100\n"
                  "script:\n"
                  "connect c1\n"
                  "< NAME ${instance_name}\n"
                  "<~ REPLICATE ?\n"
                  "> RDATA typing ${writer} 3 " ROW "\n"
                  "row typing 5 " ROW "\n"
                  "> POSITION typing ${writer} 4 5\n"
                  "http~ GET /_synapse/replication/get_repl_stream_updates/typing/[^/?]+\\?from_token=3&upto_token=5\n"
                  "log~ .*Caught up with stream 'typing' to 5.*\n"
                  "deadline 300\n"
                  "!log~ .*Traceback.*\n"
                  "!< ERROR ${any}\n"
                  "!http GET /nowhere\n"
                  "c1 stall 300\n"
                  "c1 open\n"
                  "deadline 2000\n"
                  ">split 5 RDATA typing ${writer} 6 " ROW "\n"
                  ">raw RDATA typing master 7 [\"!r:hs\",[]]\\n\n"
                  "wait 100\n"
                  "c1 reset\n"
                  "c1 closed by mock rst\n"
                  "connect c2\n"
                  "<~ REPLICATE ?\n"
                  "ping off\n"
                  "listen off\n"
                  "http-delay 0\n"
                  "http-fail 0 0\n"
                  "http-page-size 10\n"
                  "c2 > POSITION typing ${writer} 1000 1000\n"
                  "http GET /_synapse/replication/get_repl_stream_updates/typing/${word}?from_token=7&upto_token=1000\n"
                  "terminate\n"
                  "c2 closed by sut\n"));
  char args[4096], *out;
  snprintf(args, sizeof args, "run --profile '%s/profiles/refworker.json' --bin-dir '%s' "
           "--fixtures mine --junit r.xml fixtures", test_env("REPLCHECK_SOURCE_DIR"),
           test_env("REPLCHECK_BIN_DIR"));
  int rc = replcheck(NULL, args, &out);
  if (rc != 0) {
    char *path = test_path(work, "r.xml");
    char *xml = test_read_file(path, NULL);
    fprintf(stderr, "%s\n", xml ? xml : "(no report)");
    ck_abort_msg("exit %d (the report is above):\n%.2000s", rc, out);
  }
  assert_contains(out, "1 passed, 0 failed, 0 skipped");
  free(out);
}
END_TEST

/* ---- recording --------------------------------------------------------------------------- */

static void record_and_replay(const char *profile, const char *selectors, const char *summary) {
  char args[4096], *out;
  snprintf(args, sizeof args, "run --profile '%s/profiles/%s' --bin-dir '%s' --record rec %s",
           test_env("REPLCHECK_SOURCE_DIR"), profile, test_env("REPLCHECK_BIN_DIR"), selectors);
  int rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "recording every test as a fixture in rec");
  free(out);
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/%s' --bin-dir '%s' --fixtures rec fixtures",
           test_env("REPLCHECK_SOURCE_DIR"), profile, test_env("REPLCHECK_BIN_DIR"));
  rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "replay exit %d:\n%s", rc, out);
  assert_contains(out, summary);
  free(out);
}

START_TEST(recorded_tests_replay_against_refworker) {
  record_and_replay(
      "refworker.json",
      "protocol/position/advances protocol/position/paging protocol/framing/split-writes "
      "protocol/shutdown/sigterm-closes protocol/reconnect/after-loss",
      "5 passed, 0 failed, 0 skipped");
  char *path = test_path(work, "rec/protocol/position/paging.fixture");
  char *text = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  assert_contains(text, "mock: scripted\n");
  assert_contains(text, "tags: recorded\n");
  assert_contains(text, "row typing 4 [\"!r:hs\",[\"@x:hs\"]]\n");
  assert_contains(text, "http-page-size 1\n");
  assert_contains(text, "c1 > SERVER ${server_name}\n");
  free(text);
  free(path);
  path = test_path(work, "rec/protocol/shutdown/sigterm-closes.fixture");
  text = test_read_file(path, NULL);
  assert_contains(text, "terminate\n");
  free(text);
  free(path);
  test_remove_tree(work);
  mkdir(work, 0700);
  record_and_replay(
      "refworker-2018.json",
      "protocol/handshake/replicate-2018 protocol/rdata/batch-discarded-on-disconnect",
      "2 passed, 0 failed, 0 skipped");
}
END_TEST

/* ---- mockhs --fixture and --proxy --------------------------------------------------------- */

static proc_t start_mockhs(const char *name, const char *mode, const char *arg, const char *extra) {
  char bin[4096];
  snprintf(bin, sizeof bin, "%s/mockhs", test_env("REPLCHECK_BIN_DIR"));
  char *argv[] = {
      bin, (char *)mode, (char *)arg, "--server-name", "t.local", extra ? (char *)extra : NULL,
      NULL};
  return spawn(name, argv);
}

/* Plays a fixture standalone to a refworker; returns mockhs's exit status and output. */
static int play_standalone(const char *fixture, const char *dialect, char **output) {
  proc_t mock = start_mockhs("mockhs.out", "--fixture", fixture, NULL);
  char *out = await_output(&mock, "HTTP on 127.0.0.1:", 5000);
  proc_t worker = start_refworker(
      "worker", port_after(out, "listening on 127.0.0.1:"),
      strcmp(dialect, "modern") == 0 ? port_after(out, "HTTP on 127.0.0.1:") : 0, dialect);
  free(out);
  int rc = await_exit(&mock, 20000);
  *output = test_read_file(mock.out, NULL);
  stop(&worker);
  stop(&mock);
  return rc;
}

START_TEST(mockhs_plays_a_fixture_to_a_worker_started_by_hand) {
  char *fixture = src_path("fixtures/protocol/stream-id-backwards-2018.fixture");
  char *out;
  int rc = play_standalone(fixture, "2018", &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "step  ok    ");
  assert_contains(out, "stream-id-backwards-2018.fixture:28  < REPLICATE typing 3");
  assert_contains(out, "mockhs: PASSED: 13 of 13 steps (RD-09)");
  assert_contains(out, "c3 < REPLICATE typing 3"); /* the transcript, as it happened */
  free(out);
  free(fixture);
  mutate_fixture("fixtures/protocol/stream-never-positioned.fixture", "from_token=0",
                 "from_token=7", "bug.fixture");
  char *bug = test_path(work, "bug.fixture");
  rc = play_standalone(bug, "modern", &out);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  assert_contains(out, "mockhs: FAILED after 10 of 12 steps");
  assert_contains(out, "Expected: ");
  assert_contains(out, "bug.fixture:25: http GET");
  free(out);
  /* A broken fixture or one that needs the harness is exit 2, at once. */
  char *broken = write_work("broken.fixture", "replcheck-fixture: 1\nscript:\n");
  char bin[4096], cmd[8400];
  snprintf(bin, sizeof bin, "%s/mockhs", test_env("REPLCHECK_BIN_DIR"));
  snprintf(cmd, sizeof cmd, "'%s' --fixture '%s' > '%s/b.out' 2>&1", bin, broken, work);
  ck_assert_int_eq(test_run(cmd), 2);
  free(broken);
  free(bug);
}
END_TEST

/* `mockhs --fixture` checks the worker's HTTP answers and metrics when told where they
 * are (--sut-http, --sut-metrics), and refuses at once, exit 2, when not told. */
START_TEST(mockhs_checks_side_channels_of_a_worker_started_by_hand) {
  char *fixture = src_path("fixtures/seeds/server-header-on-errors.fixture");
  char bin[4096], cmd[8400];
  snprintf(bin, sizeof bin, "%s/mockhs", test_env("REPLCHECK_BIN_DIR"));
  snprintf(cmd, sizeof cmd, "'%s' --fixture '%s' > '%s/refused.out' 2>&1", bin, fixture, work);
  ck_assert_int_eq(test_run(cmd), 2);
  char *refused_path = test_path(work, "refused.out");
  char *refused = test_read_file(refused_path, NULL);
  assert_contains(refused, "cannot be played: its steps need the worker's HTTP listener "
                           "(--sut-http URL)");
  free(refused);
  free(refused_path);
  int serve = rc_net_free_port();
  ck_assert_int_gt(serve, 0);
  char http[64], metrics[80];
  snprintf(http, sizeof http, "--sut-http=http://127.0.0.1:%d", serve);
  snprintf(metrics, sizeof metrics, "--sut-metrics=http://127.0.0.1:%d/metrics", serve);
  static const char *const fixtures[] = {"fixtures/seeds/server-header-on-errors.fixture",
                                         "fixtures/seeds/handlers-in-background.fixture"};
  for (size_t i = 0; i < 2; i++) {
    char *path = src_path(fixtures[i]);
    char *argv[] = {bin,  "--fixture", path, "--server-name", "t.local", http, metrics, NULL};
    proc_t mock = spawn("mockhs-side.out", argv);
    char *out = await_output(&mock, "HTTP on 127.0.0.1:", 5000);
    char wbin[4096], port[16], serve_text[16], catchup[64], log[4200];
    snprintf(wbin, sizeof wbin, "%s/refworker", test_env("REPLCHECK_BIN_DIR"));
    snprintf(port, sizeof port, "%d", port_after(out, "listening on 127.0.0.1:"));
    snprintf(catchup, sizeof catchup, "http://127.0.0.1:%d", port_after(out, "HTTP on 127.0.0.1:"));
    snprintf(serve_text, sizeof serve_text, "%d", serve);
    snprintf(log, sizeof log, "%s/side-%zu.log", work, i);
    free(out);
    char *wargv[] = {wbin,       "--host",       "127.0.0.1", "--port",     port,
                     "--server-name", "t.local", "--dialect", "modern",    "--log",
                     log,        "--http-url",   catchup,     "--http-port", serve_text,
                     NULL};
    proc_t worker = spawn("worker-side.out", wargv);
    int rc = await_exit(&mock, 20000);
    out = test_read_file(mock.out, NULL);
    ck_assert_msg(rc == 0, "%s: exit %d:\n%s", fixtures[i], rc, out);
    assert_contains(out, i == 0 ? "header Server ~ [^ ]+/[0-9][0-9.]*  [404; Server: refworker/"
                                : "process-replication-data\"} >= 1  [");
    free(out);
    stop(&worker);
    stop(&mock);
    free(path);
  }
  free(fixture);
}
END_TEST

/* `mockhs --fixture` starts a fixture's fake remotes and prints their URLs; a federation
 * sender started by hand with them passes seed H's fixture, and fails it at the count
 * step with the bug. A fixture with db steps is refused at once. */
START_TEST(mockhs_starts_the_fake_remotes_of_a_fixture) {
  char *fixture = src_path("fixtures/seeds/presence-once-per-destination.fixture");
  char bin[4096], wbin[4096];
  snprintf(bin, sizeof bin, "%s/mockhs", test_env("REPLCHECK_BIN_DIR"));
  snprintf(wbin, sizeof wbin, "%s/refworker", test_env("REPLCHECK_BIN_DIR"));
  for (int bug = 0; bug < 2; bug++) {
    char *argv[] = {bin, "--fixture", fixture, "--server-name", "t.local", NULL};
    proc_t mock = spawn("mockhs-remotes.out", argv);
    char *out = await_output(&mock, "waiting up to", 5000);
    char port[16], remotes[3][160], log[4200];
    snprintf(port, sizeof port, "%d", port_after(out, "listening on 127.0.0.1:"));
    for (int k = 0; k < 3; k++) {
      char marker[80];
      snprintf(marker, sizeof marker, "fake remote remote%d.example at http://127.0.0.1:", k + 1);
      snprintf(remotes[k], sizeof remotes[k], "remote%d.example=http://127.0.0.1:%d", k + 1,
               port_after(out, marker));
    }
    free(out);
    snprintf(log, sizeof log, "%s/fedsender-%d.log", work, bug);
    char *wargv[] = {wbin,
                     "--host",
                     "127.0.0.1",
                     "--port",
                     port,
                     "--server-name",
                     "t.local",
                     "--dialect",
                     "2018",
                     "--log",
                     log,
                     "--fedsender",
                     "--remote",
                     remotes[0],
                     "--remote",
                     remotes[1],
                     "--remote",
                     remotes[2],
                     bug ? "--bug" : NULL,
                     "presence-per-destination",
                     NULL};
    proc_t worker = spawn("fedsender.out", wargv);
    int rc = await_exit(&mock, 20000);
    out = test_read_file(mock.out, NULL);
    ck_assert_msg(rc == bug, "bug %d: exit %d:\n%s", bug, rc, out);
    if (bug)
      assert_contains(out,
                      "presence-once-per-destination.fixture:37: remote remote1.example "
                      "count @alice:${server_name} == 1");
    else
      assert_contains(out, "!remote remote3.example presence *  [none within 2000 ms]");
    free(out);
    stop(&worker);
    stop(&mock);
  }
  free(fixture);
  char *db = src_path("fixtures/seeds/no-idle-transaction-after-start.fixture");
  char cmd[8400];
  snprintf(cmd, sizeof cmd, "'%s' --fixture '%s' > '%s/db.out' 2>&1", bin, db, work);
  ck_assert_int_eq(test_run(cmd), 2);
  char *db_out_path = test_path(work, "db.out");
  char *db_out = test_read_file(db_out_path, NULL);
  assert_contains(db_out, "cannot be played: its db steps observe the worker's database");
  free(db_out);
  free(db_out_path);
  free(db);
}
END_TEST

START_TEST(proxy_records_a_session_that_replays) {
  /* The "real main" is a mock playing a main-side script that ends by closing. */
  char *main_side = write_work("main-side.fixture",
                               "replcheck-fixture: 1\nrequirements: HS-03\nrequirement: main side\n"
                               "source: test\ndialects: modern\nping-interval: 250\nscript:\n"
                               "connect c1\n<~ REPLICATE ?\n> RDATA typing ${writer} 5 [1]\n"
                               "wait 300\nc1 close\n");
  proc_t main = start_mockhs("main.out", "--fixture", main_side, NULL);
  char *out = await_output(&main, "HTTP on 127.0.0.1:", 5000);
  int main_port = port_after(out, "listening on 127.0.0.1:");
  int http_port = port_after(out, "HTTP on 127.0.0.1:");
  free(out);
  char target[64], session[4200], bin[4096];
  snprintf(target, sizeof target, "127.0.0.1:%d", main_port);
  snprintf(session, sizeof session, "%s/rec/session.fixture", work);
  char rec_dir[4200];
  snprintf(rec_dir, sizeof rec_dir, "%s/rec", work);
  mkdir(rec_dir, 0700);
  snprintf(bin, sizeof bin, "%s/mockhs", test_env("REPLCHECK_BIN_DIR"));
  char *argv[] = {bin, "--proxy", target, "--record", session, "--sessions", "1", NULL};
  proc_t proxy = spawn("proxy.out", argv);
  out = await_output(&proxy, "proxy listening on 127.0.0.1:", 5000);
  proc_t worker = start_refworker("worker", port_after(out, "proxy listening on 127.0.0.1:"),
                                  http_port, "modern");
  free(out);
  ck_assert_int_eq(await_exit(&proxy, 20000), 0);
  ck_assert_int_eq(await_exit(&main, 20000), 0);
  stop(&worker);
  out = test_read_file(proxy.out, NULL);
  assert_contains(out, "c1 < REPLICATE");
  assert_contains(out, "c1 > RDATA typing master 5 [1]");
  assert_contains(out, "mockhs: session recorded in ");
  free(out);
  char *text = test_read_file(session, NULL);
  ck_assert_ptr_nonnull(text);
  assert_contains(text, "c1 > SERVER ${server_name}\n");
  assert_contains(text, "c1 < NAME ${instance_name}\n");
  assert_contains(text, "c1 > RDATA typing ${writer} 5 [1]\n");
  assert_contains(text, "c1 close\n");
  free(text);
  stop(&proxy);
  stop(&main);
  char args[4096];
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker.json' --bin-dir '%s' "
           "--fixtures rec fixtures/session",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  int rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "replay exit %d:\n%s", rc, out);
  free(out);
  free(main_side);
}
END_TEST

/* ---- torture ------------------------------------------------------------------------------ */

/* The torture notes mockhs writes for the first connection of a refworker. */
static char *torture_schedule(const char *seed) {
  char bin[4096];
  snprintf(bin, sizeof bin, "%s/mockhs", test_env("REPLCHECK_BIN_DIR"));
  char *argv[] = {bin,       "--torture",          "2", "--seed", (char *)seed, "--server-name",
                  "t.local", "--ping-interval-ms", "0", NULL};
  proc_t mock = spawn("torture.out", argv);
  char *out = await_output(&mock, "listening on 127.0.0.1:", 5000);
  proc_t worker =
      start_refworker("worker", port_after(out, "listening on 127.0.0.1:"), 0, "modern");
  free(out);
  /* The whole opening: the SERVER line and the 14 POSITIONs of the default streams. */
  int64_t deadline = rc_clock_mono_ms() + 5000;
  for (int count = 0; count < 14;) {
    ck_assert_msg(rc_clock_mono_ms() < deadline, "the opening was not written within 5 s");
    usleep(20000);
    out = test_read_file(mock.out, NULL);
    count = 0;
    for (const char *at = out; (at = strstr(at, " c1 > POSITION ")) != NULL; at++) count++;
    free(out);
  }
  stop(&worker);
  out = test_read_file(mock.out, NULL);
  stop(&mock);
  /* Only what torture decided: the notes and the order of the mock's lines. */
  size_t cap = strlen(out) + 1, at = 0;
  char *schedule = calloc(1, cap);
  for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    char *c1 = strstr(line, " c1 ");
    if (c1 == NULL || strstr(line, "PING") != NULL) continue;
    if (strstr(c1, "--- torture:") == NULL && strncmp(c1, " c1 > ", 6) != 0) continue;
    at += (size_t)snprintf(schedule + at, cap - at, "%s\n", c1);
  }
  free(out);
  return schedule;
}

START_TEST(the_same_seed_gives_the_same_schedule) {
  char *a = torture_schedule("1234");
  char *b = torture_schedule("1234");
  char *c = torture_schedule("4321");
  assert_contains(a, "--- torture: held ");
  assert_contains(a, "--- torture: streams answered in shuffled order");
  ck_assert_msg(strcmp(a, b) == 0, "seed 1234 twice:\n%s\n----\n%s", a, b);
  ck_assert_msg(strcmp(a, c) != 0, "seeds 1234 and 4321 gave the same schedule:\n%s", a);
  free(a);
  free(b);
  free(c);
}
END_TEST

START_TEST(protocol_suites_pass_under_torture) {
  /* A run seed for which torture drops the first connection of this test in its opening:
   * the test must still pass, on the worker's next connection. */
  const char *id = "protocol/position/advances";
  uint64_t seed = 0;
  for (uint64_t s = 1; s < 1000 && seed == 0; s++) {
    torture_plan_t plan = {.level = 3, .seed = case_run_seed(s, id, 1)};
    if (torture_drop_after(&plan, 1, 15) > 0) seed = s;
  }
  ck_assert_uint_ne(seed, 0);
  char args[4096], *out;
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker.json' --bin-dir '%s' --torture 3 "
           "--seed %llu --record rec --jobs 2 protocol/handshake protocol/position protocol/rdata "
           "protocol/framing/split-writes fixtures",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"),
           (unsigned long long)seed);
  int rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, ", torture level 3");
  free(out);
  char *path = test_path(work, "rec/protocol/position/advances.fixture");
  char *text = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  assert_contains(text, "connect c2\n"); /* c1 was dropped; the test used c2 */
  free(text);
  free(path);
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker-2018.json' --bin-dir '%s' "
           "--torture 2 --seed 99 --jobs 2 protocol/handshake protocol/rdata fixtures",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  free(out);
}
END_TEST

START_TEST(a_failure_under_torture_says_how_to_reproduce_it) {
  mutate_fixture("fixtures/protocol/position-out-of-order.fixture", "from_token=5&upto_token=1000",
                 "from_token=4&upto_token=1000", "mine/p.fixture");
  char args[4096], *out;
  snprintf(args, sizeof args,
           "run --profile '%s/profiles/refworker.json' --bin-dir '%s' --torture 1 "
           "--seed 77 --fixtures mine --junit r.xml fixtures",
           test_env("REPLCHECK_SOURCE_DIR"), test_env("REPLCHECK_BIN_DIR"));
  int rc = replcheck(NULL, args, &out);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  free(out);
  char *path = test_path(work, "r.xml");
  char *xml = test_read_file(path, NULL);
  assert_contains(xml, "reproduce with `replcheck run --torture 1 --seed 77 fixtures/p`");
  assert_contains(xml, "--- torture: held ");
  free(xml);
  free(path);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fixture_e2e");
  TCase *tc = tcase_create("e2e");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, bundled_fixtures_pass_in_both_dialects);
  tcase_add_test(tc, a_fixture_expecting_the_bug_fails_with_its_location);
  tcase_add_test(tc, interrupted_batch_probe_sees_the_batch);
  tcase_add_test(tc, side_channels_missing_from_the_profile_skip);
  tcase_add_test(tc, remotes_and_db_without_their_role_skip);
  tcase_add_test(tc, paths_and_caches_missing_from_the_profile_skip);
  tcase_add_test(tc, a_broken_fixture_is_an_error_never_a_pass);
  tcase_add_test(tc, every_step_kind_plays);
  tcase_add_test(tc, recorded_tests_replay_against_refworker);
  tcase_add_test(tc, mockhs_plays_a_fixture_to_a_worker_started_by_hand);
  tcase_add_test(tc, mockhs_checks_side_channels_of_a_worker_started_by_hand);
  tcase_add_test(tc, mockhs_starts_the_fake_remotes_of_a_fixture);
  tcase_add_test(tc, proxy_records_a_session_that_replays);
  tcase_add_test(tc, the_same_seed_gives_the_same_schedule);
  tcase_add_test(tc, protocol_suites_pass_under_torture);
  tcase_add_test(tc, a_failure_under_torture_says_how_to_reproduce_it);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
