/* The replcheck command end to end: real runs against the real reference worker,
 * exit codes for every kind of bad input, the JUnit report validated against both
 * schemas, and no SUT process left behind. */
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"

static char *work; /* per-test temp dir */

static void setup(void) { work = test_make_temp_dir("replcheck-cli"); }
static void teardown(void) {
  test_remove_tree(work);
  free(work);
}

/* Runs replcheck with args (shell words), output to work/out.txt; returns exit code. */
static int replcheck(const char *args, char **output) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s/replcheck' %s > out.txt 2>&1", work,
           test_env("REPLCHECK_BIN_DIR"), args);
  int rc = test_run(cmd);
  char out_path[4096];
  snprintf(out_path, sizeof out_path, "%s/out.txt", work);
  char *text = test_read_file(out_path, NULL);
  if (output != NULL) *output = text ? text : strdup("");
  else free(text);
  return rc;
}

static char *write_profile(const char *name, const char *json) {
  char *path = test_path(work, name);
  ck_assert_int_eq(test_write_file(path, json, strlen(json)), 0);
  return path;
}

/* A profile for the refworker binary with given extra worker options and declared
 * timing; {bin_dir} is replcheck's own directory. */
static char *refworker_profile(const char *name, const char *dialect, const char *extra_args,
                               const char *timing) {
  char json[4096];
  snprintf(json, sizeof json,
           "{\"format\": 1, \"name\": \"cli test %s\", \"dialect\": \"%s\", \"era\": \"%s\",\n"
           " \"command\": [\"{bin_dir}/refworker\", \"--host\", \"{repl_host}\", \"--port\", "
           "\"{repl_port}\", \"--server-name\", \"{server_name}\", \"--dialect\", \"%s\", "
           "\"--log\", \"{log_path}\", \"--instance-name\", \"cli-%d\"%s],\n"
           " \"timing\": %s}\n",
           name, dialect, strcmp(dialect, "2018") == 0 ? "1.12" : "1.66", dialect, (int)getpid(),
           extra_args, timing);
  return write_profile(name, json);
}

static const char *FAST_ARGS =
    ", \"--ping-interval-ms\", \"250\", \"--ping-timeout-ms\", \"1250\","
    " \"--reconnect-initial-ms\", \"50\", \"--reconnect-max-ms\", \"250\"";
static const char *FAST_TIMING =
    "{\"ping_interval_ms\": 250, \"ping_timeout_ms\": 1250, \"reconnect_initial_ms\": 50,"
    " \"reconnect_max_ms\": 250, \"startup_timeout_ms\": 3000, \"shutdown_grace_ms\": 2000}";

static void assert_contains(const char *haystack, const char *needle) {
  ck_assert_msg(strstr(haystack, needle) != NULL, "expected '%s' in:\n%s", needle, haystack);
}

/* No process whose command line mentions this test's unique instance name. */
static void assert_no_refworker_left(void) {
  char marker[64];
  snprintf(marker, sizeof marker, "cli-%d", (int)getpid());
  int pid = test_find_process(marker, "refworker");
  ck_assert_msg(pid == 0, "process %d (a refworker of this test) survived the run", pid);
}

static void assert_valid_junit(const char *path) {
  char *why = test_junit_invalid(path);
  ck_assert_msg(why == NULL, "%s", why);
}

START_TEST(list_shows_every_test_with_requirements) {
  char *out;
  ck_assert_int_eq(replcheck("list", &out), 0);
  assert_contains(out, "protocol/handshake/ping-on-connect");
  assert_contains(out, "HS-01");
  assert_contains(out, "protocol/keepalive/ping-timeout");
  assert_contains(out, "protocol/shutdown/sigterm-closes");
  free(out);
}
END_TEST

START_TEST(usage_errors_exit_2) {
  char *out;
  ck_assert_int_eq(replcheck("", &out), 2);
  free(out);
  ck_assert_int_eq(replcheck("frobnicate", &out), 2);
  assert_contains(out, "unknown command 'frobnicate'");
  free(out);
  ck_assert_int_eq(replcheck("run", &out), 2);
  assert_contains(out, "run needs --profile");
  free(out);
  ck_assert_int_eq(replcheck("run --profile /nonexistent/p.json", &out), 2);
  assert_contains(out, "/nonexistent/p.json");
  free(out);
}
END_TEST

START_TEST(malformed_profile_exit_2_naming_file_and_field) {
  char *bad = write_profile("bad.json",
                            "{\"format\": 1, \"name\": \"x\", \"dialect\": \"2019\", \"era\": "
                            "\"1.0\", \"command\": [\"true\"]}");
  char args[4200], *out;
  snprintf(args, sizeof args, "run --profile '%s'", bad);
  ck_assert_int_eq(replcheck(args, &out), 2);
  assert_contains(out, "bad.json");
  assert_contains(out, "dialect");
  free(out);
  char *syntax = write_profile("syntax.json", "{\"format\": 1,\n  \"name\": }\n");
  snprintf(args, sizeof args, "run --profile '%s'", syntax);
  ck_assert_int_eq(replcheck(args, &out), 2);
  assert_contains(out, "syntax.json:2");
  free(out);
  free(bad);
  free(syntax);
}
END_TEST

START_TEST(filter_selecting_nothing_exit_2) {
  char *p = refworker_profile("p.json", "modern", FAST_ARGS, FAST_TIMING);
  char args[4200], *out;
  snprintf(args, sizeof args, "run --profile '%s' --filter 'no/such/*'", p);
  ck_assert_int_eq(replcheck(args, &out), 2);
  assert_contains(out, "no test matches");
  free(out);
  free(p);
}
END_TEST

START_TEST(missing_sut_command_exit_3) {
  char *p = write_profile("missing.json",
                          "{\"format\": 1, \"name\": \"missing\", \"dialect\": \"modern\", "
                          "\"era\": \"1.66\", \"command\": [\"no-such-worker-binary-xyz\"]}");
  char args[4200], *out;
  snprintf(args, sizeof args, "run --profile '%s'", p);
  ck_assert_int_eq(replcheck(args, &out), 3);
  assert_contains(out, "no-such-worker-binary-xyz");
  free(out);
  free(p);
}
END_TEST

START_TEST(sut_that_exits_at_once_exit_3) {
  char *p = write_profile("false.json",
                          "{\"format\": 1, \"name\": \"exits\", \"dialect\": \"modern\", "
                          "\"era\": \"1.66\", \"command\": [\"/bin/false\"],"
                          " \"timing\": {\"startup_timeout_ms\": 2000}}");
  char args[4200], *out;
  snprintf(args, sizeof args, "run --profile '%s' --filter protocol/handshake --junit r.xml", p);
  ck_assert_int_eq(replcheck(args, &out), 3);
  assert_contains(out, "ERROR protocol/handshake/ping-on-connect");
  assert_contains(out, "exited with status 1");
  char *junit = test_path(work, "r.xml");
  assert_valid_junit(junit);
  free(junit);
  free(out);
  free(p);
}
END_TEST

START_TEST(sut_never_ready_is_an_error_with_evidence) {
  char *p = write_profile("sleep.json",
                          "{\"format\": 1, \"name\": \"sleeper\", \"dialect\": \"modern\", "
                          "\"era\": \"1.66\", \"command\": [\"/bin/sleep\", \"30\"],"
                          " \"timing\": {\"startup_timeout_ms\": 500, \"shutdown_grace_ms\": 500}}");
  char args[4200], *out;
  snprintf(args, sizeof args, "run --profile '%s' --filter protocol/handshake/name-first", p);
  ck_assert_int_eq(replcheck(args, &out), 3);
  assert_contains(out, "never connected to the mock homeserver");
  free(out);
  free(p);
}
END_TEST

START_TEST(handshake_run_passes_both_dialects_and_report_validates) {
  const char *dialects[] = {"modern", "2018"};
  for (int i = 0; i < 2; i++) {
    char name[64];
    snprintf(name, sizeof name, "ok-%s.json", dialects[i]);
    char *p = refworker_profile(name, dialects[i], FAST_ARGS, FAST_TIMING);
    char args[4200], *out;
    snprintf(args, sizeof args,
             "run --profile '%s' --filter protocol/handshake --filter protocol/shutdown "
             "--junit report.xml", p);
    int rc = replcheck(args, &out);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    assert_contains(out, "PASS protocol/handshake/ping-on-connect");
    assert_contains(out, " failed, ");
    assert_contains(out, "0 failed");
    /* The other dialect's REPLICATE test is reported as skipped, not dropped. */
    assert_contains(out, i == 0 ? "SKIP protocol/handshake/replicate-2018"
                                : "SKIP protocol/handshake/replicate-modern");
    char *junit = test_path(work, "report.xml");
    assert_valid_junit(junit);
    char *xml = test_read_file(junit, NULL);
    assert_contains(xml, "name=\"protocol/handshake/ping-on-connect\"");
    assert_contains(xml, "<skipped");
    free(xml);
    free(junit);
    free(out);
    free(p);
  }
  assert_no_refworker_left();
}
END_TEST

START_TEST(failing_sut_exit_1_with_requirement_expected_actual) {
  /* The worker pings every 3 s but the profile promises 250 ms keepalives. */
  char *p = refworker_profile(
      "slow.json", "modern",
      ", \"--ping-interval-ms\", \"3000\", \"--ping-timeout-ms\", \"15000\"", FAST_TIMING);
  char args[4200], *out;
  snprintf(args, sizeof args,
           "run --profile '%s' --filter protocol/keepalive/idle-pinging-mock --junit f.xml", p);
  ck_assert_int_eq(replcheck(args, &out), 1);
  assert_contains(out, "FAIL protocol/keepalive/idle-pinging-mock");
  assert_contains(out, "Requirement (KA-01)");
  assert_contains(out, "Expected:");
  assert_contains(out, "Actual:");
  assert_contains(out, "Last ledger lines");
  assert_contains(out, "< NAME cli-");
  assert_contains(out, "0 passed, 1 failed, 0 skipped");
  char *junit = test_path(work, "f.xml");
  assert_valid_junit(junit);
  char *xml = test_read_file(junit, NULL);
  assert_contains(xml, "<failure");
  assert_contains(xml, "KA-01");
  free(xml);
  free(junit);
  free(out);
  free(p);
  assert_no_refworker_left();
}
END_TEST

int main(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("cli");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, list_shows_every_test_with_requirements);
  tcase_add_test(tc, usage_errors_exit_2);
  tcase_add_test(tc, malformed_profile_exit_2_naming_file_and_field);
  tcase_add_test(tc, filter_selecting_nothing_exit_2);
  tcase_add_test(tc, missing_sut_command_exit_3);
  tcase_add_test(tc, sut_that_exits_at_once_exit_3);
  tcase_add_test(tc, sut_never_ready_is_an_error_with_evidence);
  tcase_add_test(tc, handshake_run_passes_both_dialects_and_report_validates);
  tcase_add_test(tc, failing_sut_exit_1_with_requirement_expected_actual);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
