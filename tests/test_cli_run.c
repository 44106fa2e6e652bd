/* `replcheck run` and `list` end to end, for the runner's options: expected failures
 * (XFAIL, XPASS, stale entries), --strict and NON_STRICT, selectors and --min, --jobs,
 * --shard, --repeat and --seed, --timeout-factor, --list and the list formats,
 * environment variables, --progress, a profile's setup step, and SIGINT/SIGTERM during a
 * run. Real runs of the
 * real binaries against the reference worker, each picking a few fast tests. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rc_clock.h"
#include "test_support.h"

#define KEEPALIVE_FOUR \
  "protocol/keepalive/idle-pinging-mock protocol/keepalive/idle-silent-mock protocol/keepalive/ping-timeout protocol/keepalive/ping-timeout-error"

static char *work; /* per-test temp dir; replcheck runs in it with TMPDIR pointing there */

static void setup(void) {
  work = test_make_temp_dir("replcheck-cli-run");
}
static void teardown(void) {
  test_remove_tree(work);
  free(work);
}

/* Runs replcheck with args (shell words) and an optional environment prefix
 * ("A=1 B=2"), output to work/out.txt; returns the exit code. */
static int replcheck_env(const char *env, const char *args, char **output) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cd '%s' && TMPDIR='%s' %s '%s/replcheck' %s > out.txt 2>&1", work,
           work, env ? env : "", test_env("REPLCHECK_BIN_DIR"), args);
  int rc = test_run(cmd);
  char out_path[4096];
  snprintf(out_path, sizeof out_path, "%s/out.txt", work);
  char *text = test_read_file(out_path, NULL);
  if (output != NULL)
    *output = text ? text : strdup("");
  else
    free(text);
  return rc;
}

static int replcheck(const char *args, char **output) {
  return replcheck_env(NULL, args, output);
}

static char *write_file(const char *name, const char *text) {
  char *path = test_path(work, name);
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  return path;
}

static char marker[64]; /* instance name of this test process's refworkers */

/* A refworker profile with extra worker options and the declared timing. */
static char *refworker_profile(const char *name, const char *extra_args, const char *timing) {
  snprintf(marker, sizeof marker, "clirun-%d", (int)getpid());
  char json[4096];
  snprintf(json, sizeof json,
           "{\"format\": 1, \"name\": \"cli-run %s\", \"dialect\": \"modern\", \"era\": \"1.66\",\n"
           " \"command\": [\"{bin_dir}/refworker\", \"--host\", \"{repl_host}\", \"--port\", "
           "\"{repl_port}\", \"--server-name\", \"{server_name}\", \"--dialect\", \"modern\", "
           "\"--log\", \"{log_path}\", \"--instance-name\", \"%s\"%s],\n"
           " \"timing\": %s}\n",
           name, marker, extra_args, timing);
  return write_file(name, json);
}

static const char *FAST_ARGS =
    ", \"--ping-interval-ms\", \"250\", \"--ping-timeout-ms\", \"1250\","
    " \"--reconnect-initial-ms\", \"50\", \"--reconnect-max-ms\", \"250\"";
static const char *FAST_TIMING =
    "{\"ping_interval_ms\": 250, \"ping_timeout_ms\": 1250, \"reconnect_initial_ms\": 50,"
    " \"reconnect_max_ms\": 250, \"startup_timeout_ms\": 3000, \"shutdown_grace_ms\": 2000}";

static char *fast_profile(void) {
  return refworker_profile("fast.json", FAST_ARGS, FAST_TIMING);
}

static void assert_contains(const char *haystack, const char *needle) {
  ck_assert_msg(strstr(haystack, needle) != NULL, "expected '%s' in:\n%s", needle, haystack);
}

static void assert_lacks(const char *haystack, const char *needle) {
  ck_assert_msg(strstr(haystack, needle) == NULL, "did not expect '%s' in:\n%s", needle, haystack);
}

/* The last line of the output (without its newline). */
static void assert_last_line(const char *out, const char *expected) {
  size_t len = strlen(out);
  while (len > 0 && out[len - 1] == '\n') len--;
  const char *start = out + len;
  while (start > out && start[-1] != '\n') start--;
  ck_assert_msg(strlen(expected) == (size_t)(out + len - start) &&
                    strncmp(start, expected, strlen(expected)) == 0,
                "last line is '%.*s', expected '%s'", (int)(out + len - start), start, expected);
}

static void assert_valid_junit(const char *name) {
  char *path = test_path(work, name);
  char *why = test_junit_invalid(path);
  ck_assert_msg(why == NULL, "%s", why);
  free(path);
}

static char *read_work_file(const char *name) {
  char *path = test_path(work, name);
  char *text = test_read_file(path, NULL);
  ck_assert_msg(text != NULL, "%s was not written", path);
  free(path);
  return text;
}

/* No process whose command line holds this test's instance name. */
static void assert_no_refworker_left(void) {
  int pid = test_find_process(marker, "refworker");
  ck_assert_msg(pid == 0, "process %d (a refworker of this test) survived the run", pid);
}

/* "VERDICT id" of every progress line "[i/n] VERDICT id (t)", sorted, one per line. */
static char *verdicts_of(const char *out) {
  char *lines[256];
  size_t n = 0;
  for (const char *p = out; *p && n < 256;) {
    const char *end = strchrnul(p, '\n');
    if (*p == '[') {
      const char *v = strstr(p, "] ");
      const char *paren = v ? strstr(v, " (") : NULL;
      if (v != NULL && paren != NULL && paren < end)
        lines[n++] = strndup(v + 2, (size_t)(paren - v - 2));
    }
    p = *end ? end + 1 : end;
  }
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
      char *t = lines[j];
      lines[j] = lines[j - 1];
      lines[j - 1] = t;
    }
  char *joined = calloc(1, 256 * 128);
  for (size_t i = 0; i < n; i++) {
    strcat(joined, lines[i]);
    strcat(joined, "\n");
    free(lines[i]);
  }
  return joined;
}

/* ---- expected failures and strict ---------------------------------------------------- */

START_TEST(xfail_xpass_non_strict_and_strict_exit_codes) {
  /* The worker pings every 3 s and times out after 15 s, while the profile promises
   * 250 ms and 1.25 s: the keepalive gap (MUST) fails and the timeout's ERROR line
   * (SHOULD) is missed. */
  char *p = refworker_profile("slow.json",
                              ", \"--ping-interval-ms\", \"3000\", \"--ping-timeout-ms\", "
                              "\"15000\"",
                              FAST_TIMING);
  char *xf = write_file("xf.txt",
                        "# our worker's known problems\n"
                        "protocol/keepalive/idle-pinging-*   https://example.org/issues/1\n"
                        "\n"
                        "protocol/handshake/ping-on-connect  flaky on CI, issue #2\n");
  char args[8192], *out;
  const char *tests =
      "protocol/keepalive/idle-pinging-mock protocol/keepalive/ping-timeout-error "
      "protocol/handshake/ping-on-connect";
  snprintf(args, sizeof args,
           "run --profile '%s' %s --jobs 3 --expected-failures '%s' "
           "--junit x.xml --json x.json",
           p, tests, xf);
  int rc = replcheck(args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "XFAIL protocol/keepalive/idle-pinging-mock");
  assert_contains(out, "NON_STRICT protocol/keepalive/ping-timeout-error");
  assert_contains(out, "XPASS protocol/handshake/ping-on-connect");
  /* The closing list names each listed test with its reason and where it is listed. */
  char where[4300];
  snprintf(where, sizeof where, "Expected failures (%s):", xf);
  assert_contains(out, where);
  snprintf(where, sizeof where,
           "  XFAIL protocol/keepalive/idle-pinging-mock: https://example.org/issues/1 (%s:2)", xf);
  assert_contains(out, where);
  snprintf(where, sizeof where,
           "  XPASS protocol/handshake/ping-on-connect: flaky on CI, issue #2 (%s:4) -- passed: "
           "warning",
           xf);
  assert_contains(out, where);
  assert_last_line(out, "3 passed, 0 failed, 0 skipped");
  assert_valid_junit("x.xml");
  char *xml = read_work_file("x.xml");
  assert_contains(xml, "https://example.org/issues/1"); /* the reason is in the case message */
  assert_contains(xml, "flaky on CI, issue #2");
  assert_contains(xml, "name=\"replcheck.strict\" value=\"false\"");
  free(xml);
  char *json = read_work_file("x.json");
  assert_contains(json, "\"verdict\": \"XFAIL\"");
  assert_contains(json, "expected failure (");
  free(json);
  free(out);

  /* --strict: NON_STRICT and XPASS fail the run; XFAIL still does not. */
  snprintf(args, sizeof args,
           "run --profile '%s' %s --jobs 3 --expected-failures '%s' --strict "
           "--junit s.xml",
           p, tests, xf);
  rc = replcheck(args, &out);
  ck_assert_msg(rc == 1, "exit %d:\n%s", rc, out);
  assert_contains(out, "XFAIL protocol/keepalive/idle-pinging-mock");
  assert_contains(out, "-- passed: a failure under --strict");
  assert_last_line(out, "1 passed, 2 failed, 0 skipped");
  assert_valid_junit("s.xml");
  xml = read_work_file("s.xml");
  assert_contains(xml, "type=\"XPASS\"");
  assert_contains(xml, "type=\"NON_STRICT\"");
  free(xml);
  free(out);
  free(xf);
  free(p);
  assert_no_refworker_left();
}
END_TEST

START_TEST(expected_failures_file_errors_exit_2) {
  char *p = fast_profile();
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
      {"protocol/handshake/ping-on-connect fine\nprotocol/handshake/renamed issue 5\n",
       "xf.txt:2: 'protocol/handshake/renamed' matches no test in the registry"},
      {"# c\n\nprotocol/handshake/ping-on-connect\n",
       "xf.txt:3: 'protocol/handshake/ping-on-"
       "connect' has no reason"},
      {"!protocol/handshake/ping-on-connect because\n",
       "xf.txt:1: '!protocol/handshake/ping-on-"
       "connect': negation is not supported"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *xf = write_file("xf.txt", cases[i].text);
    char args[8192], *out;
    snprintf(args, sizeof args,
             "run --profile '%s' protocol/handshake/ping-on-connect --expected-failures xf.txt", p);
    ck_assert_int_eq(replcheck(args, &out), 2);
    assert_contains(out, cases[i].message);
    assert_lacks(out, "PASS"); /* nothing ran */
    free(out);
    free(xf);
  }
  char args[8192], *out;
  snprintf(args, sizeof args, "run --profile '%s' --expected-failures no-such-file.txt", p);
  ck_assert_int_eq(replcheck(args, &out), 2);
  assert_contains(out, "no-such-file.txt: cannot read the expected-failures file");
  free(out);
  free(p);
}
END_TEST

/* ---- selection --------------------------------------------------------------------- */

START_TEST(selection_errors_and_min_exit_2) {
  char *p = fast_profile();
  static const struct {
    const char *selectors;
    const char *message;
  } cases[] = {
      {"protocol/handshake/ping-on-connect --min 2", "only 1 test(s) selected, fewer than --min 2"},
      {"'!*'", "no test is selected"},
      {"protocol/handshake '!protocol/handshake/*'", "no test is selected"},
      {"protocol/handshake/ping-on-connect 'tag:no-such-tag'",
       "no test matches the selector 'tag:no-such-tag'"},
      {"protocol/handshake/ping-on-connect '!protocol/handshake/pingg'",
       "no test matches the selector '!protocol/handshake/pingg'"},
      {"'!'", "selector '!': '!' needs a selector"},
      {"protocol/handshake/ping-on-connect --shard 2/2", "shard 2/2 gets no test"},
      {"--shard 0/2", "--shard: expected K/N"},
      {"--jobs 0", "--jobs: expected a number of jobs in 1..64, got '0'"},
      {"--timeout-factor 1,5", "--timeout-factor: expected a number like 2 or 1.5"},
      {"--progress loud", "--progress: expected auto, plain or none"},
      {"--format json", "--format is not an option of `replcheck run`"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char args[8192], *out;
    snprintf(args, sizeof args, "run --profile '%s' %s", p, cases[i].selectors);
    int rc = replcheck(args, &out);
    ck_assert_msg(rc == 2, "case %zu: exit %d:\n%s", i, rc, out);
    assert_contains(out, cases[i].message);
    free(out);
  }
  char args[8192], *out;
  /* --min counts the selection before sharding, so every shard can use the same --min. */
  snprintf(args, sizeof args,
           "run --profile '%s' protocol/handshake/ping-on-connect protocol/handshake/name-first "
           "--min 2 --shard 2/2 --junit m.xml",
           p);
  int rc = replcheck(args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "[1/1] PASS protocol/handshake/name-first");
  assert_last_line(out, "1 passed, 0 failed, 0 skipped");
  free(out);
  free(p);
}
END_TEST

START_TEST(shards_cover_the_selection_once) {
  char *p = fast_profile();
  const char *sel = "protocol/handshake '!protocol/handshake/replicate-once'";
  char args[8192], *all, *one, *two;
  snprintf(args, sizeof args, "run --profile '%s' %s --junit all.xml", p, sel);
  ck_assert_int_eq(replcheck(args, &all), 0);
  snprintf(args, sizeof args, "run --profile '%s' %s --shard 1/2 --junit s1.xml", p, sel);
  ck_assert_int_eq(replcheck(args, &one), 0);
  assert_contains(one, "shard 1/2 of 6 selected");
  snprintf(args, sizeof args, "run --profile '%s' %s --shard 2/2 --junit s2.xml", p, sel);
  ck_assert_int_eq(replcheck(args, &two), 0);
  char *va = verdicts_of(all), *v1 = verdicts_of(one), *v2 = verdicts_of(two);
  ck_assert_msg(strlen(v1) > 0 && strlen(v2) > 0, "a shard was empty");
  /* Both shards' progress lines together are exactly the full run's. */
  char *both = calloc(1, strlen(one) + strlen(two) + 1);
  strcpy(both, one);
  strcat(both, two);
  char *merged = verdicts_of(both);
  ck_assert_msg(strcmp(merged, va) == 0, "shards:\n%s\nall:\n%s", merged, va);
  assert_valid_junit("s1.xml");
  assert_valid_junit("s2.xml");
  free(merged);
  free(both);
  free(va);
  free(v1);
  free(v2);
  free(all);
  free(one);
  free(two);
  free(p);
}
END_TEST

START_TEST(jobs_2_same_verdicts_as_jobs_1_and_faster) {
  char *p = fast_profile();
  char args[8192], *seq, *par;
  snprintf(args, sizeof args, "run --profile '%s' " KEEPALIVE_FOUR " --junit j1.xml", p);
  int64_t t0 = rc_clock_mono_ms();
  ck_assert_int_eq(replcheck(args, &seq), 0);
  int64_t t1 = rc_clock_mono_ms();
  snprintf(args, sizeof args, "run --profile '%s' " KEEPALIVE_FOUR " --jobs 2 --junit j2.xml", p);
  ck_assert_int_eq(replcheck(args, &par), 0);
  int64_t t2 = rc_clock_mono_ms();
  /* Timings are reported, not asserted: the machine may be busy. */
  fprintf(stderr, "keepalive suite: --jobs 1 %lld ms, --jobs 2 %lld ms\n", (long long)(t1 - t0),
          (long long)(t2 - t1));
  char *a = verdicts_of(seq), *b = verdicts_of(par);
  ck_assert_msg(strcmp(a, b) == 0, "--jobs 1:\n%s\n--jobs 2:\n%s", a, b);
  ck_assert_msg(strstr(a, "PASS protocol/keepalive/ping-timeout\n") != NULL, "%s", a);
  assert_contains(par, "jobs 2");
  assert_valid_junit("j2.xml");
  /* The report lists the cases in registry order whatever order they finished in. */
  char *x1 = read_work_file("j1.xml"), *x2 = read_work_file("j2.xml");
  const char *ids[] = {"name=\"protocol/keepalive/idle-pinging-mock\"",
                       "name=\"protocol/keepalive/idle-silent-mock\"",
                       "name=\"protocol/keepalive/ping-timeout\"",
                       "name=\"protocol/keepalive/ping-timeout-error\""};
  for (int i = 1; i < 4; i++) {
    ck_assert(strstr(x2, ids[i - 1]) < strstr(x2, ids[i]));
    ck_assert(strstr(x1, ids[i - 1]) < strstr(x1, ids[i]));
  }
  free(x1);
  free(x2);
  free(a);
  free(b);
  free(seq);
  free(par);
  free(p);
  assert_no_refworker_left();
}
END_TEST

/* ---- listing ----------------------------------------------------------------------- */

START_TEST(list_formats_and_run_list) {
  char *out;
  ck_assert_int_eq(replcheck("list tag:slow '!protocol/keepalive/idle-*'", &out), 0);
  assert_contains(out, "protocol/keepalive/ping-timeout ");
  assert_contains(out, "protocol/handshake/replicate-once");
  assert_lacks(out, "idle-pinging-mock");
  assert_lacks(out, "protocol/handshake/name-first");
  free(out);
  ck_assert_int_eq(replcheck("list --format markdown protocol/keepalive/ping-timeout", &out), 0);
  assert_contains(out,
                  "| id | level | requirements | dialects | transports | tags | "
                  "requirement | source |\n| --- |");
  assert_contains(out,
                  "| protocol/keepalive/ping-timeout | MUST | KA-03 | 2018,modern | tcp | "
                  "slow,timing-dependent | ");
  free(out);
  ck_assert_int_eq(replcheck("list --format json protocol/handshake", &out), 0);
  json_error_t jerr;
  json_t *doc = json_loads(out, 0, &jerr);
  ck_assert_msg(json_is_array(doc), "not a JSON array (%s):\n%s", jerr.text, out);
  ck_assert_uint_eq(json_array_size(doc), 7);
  json_t *first = json_array_get(doc, 0);
  ck_assert_str_eq(json_string_value(json_object_get(first, "id")),
                   "protocol/handshake/ping-on-connect");
  ck_assert_str_eq(json_string_value(json_object_get(first, "level")), "MUST");
  json_decref(doc);
  free(out);
  ck_assert_int_eq(replcheck("list --format yaml", &out), 2);
  assert_contains(out, "--format: expected text, markdown or json, got 'yaml'");
  free(out);
  ck_assert_int_eq(replcheck("list protocol/nothing", &out), 2);
  assert_contains(out, "no test matches the selector 'protocol/nothing'");
  free(out);

  /* run --list: the plan with skip reasons and expected failures, nothing run. */
  char *p = fast_profile();
  char *xf = write_file("xf.txt", "protocol/handshake/name-first known, issue 3\n");
  char args[8192];
  snprintf(args, sizeof args,
           "run --list --profile '%s' protocol/handshake --repeat 2 "
           "--expected-failures '%s'",
           p, xf);
  int rc = replcheck(args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "14 test(s) would run");
  assert_contains(out, "  run   protocol/handshake/ping-on-connect#2\n");
  assert_contains(out,
                  "  skip  protocol/handshake/replicate-2018\n"
                  "        not applicable: needs dialect 2018");
  assert_contains(out, "expected to fail (");
  assert_contains(out, ":1): known, issue 3");
  assert_contains(out, "12 to run, 2 skipped");
  assert_lacks(out, "PASS");
  free(out);
  free(xf);
  free(p);
}
END_TEST

/* ---- environment, repeat, seed, reports, progress ------------------------------------ */

START_TEST(environment_variables_set_options) {
  char *p = fast_profile();
  char env[8192], *out;
  snprintf(env, sizeof env,
           "REPLCHECK_PROFILE='%s' REPLCHECK_FILTER='protocol/handshake/ping-on-connect "
           "protocol/handshake/name-first' REPLCHECK_JUNIT=env.xml REPLCHECK_SEED=99 "
           "REPLCHECK_PROGRESS=plain REPLCHECK_JOBS=2",
           p);
  int rc = replcheck_env(env, "run", &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "replcheck 0.1.0: 2 test(s)");
  assert_contains(out, "seed 99 (reproduce with --seed 99), jobs 2");
  assert_contains(out, "JUnit report: env.xml");
  assert_valid_junit("env.xml");
  free(out);
  /* The command line wins over the environment. */
  rc = replcheck_env(env, "run protocol/handshake/name-first --seed 5 --junit cli.xml", &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "replcheck 0.1.0: 1 test(s)");
  assert_contains(out, "seed 5 ");
  assert_contains(out, "JUnit report: cli.xml");
  free(out);
  ck_assert_int_eq(replcheck_env("REPLCHECK_REPEAT=zero", "run --profile x.json", &out), 2);
  assert_contains(out, "REPLCHECK_REPEAT: expected a repeat count in 1..1000, got 'zero'");
  free(out);
  ck_assert_int_eq(replcheck_env("REPLCHECK_STRICT=perhaps", "run --profile x.json", &out), 2);
  assert_contains(out, "REPLCHECK_STRICT: expected 1/true/yes/on or 0/false/no/off");
  free(out);
  ck_assert_int_eq(replcheck("--help-env", &out), 0);
  assert_contains(out, "REPLCHECK_EXPECTED_FAILURES=FILE");
  assert_contains(out, "REPLCHECK_TIMEOUT_FACTOR=F");
  free(out);
  free(p);
}
END_TEST

START_TEST(repeat_seed_and_all_reports) {
  char *p = fast_profile();
  char args[8192], *out;
  snprintf(args, sizeof args,
           "run --profile '%s' protocol/handshake/ping-on-connect --repeat 3 --seed 1234 "
           "--junit r.xml --html r.html --json r.json --progress none",
           p);
  int rc = replcheck(args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_lacks(out, "[1/3]"); /* --progress none */
  assert_contains(out, "HTML report: r.html");
  assert_last_line(out, "3 passed, 0 failed, 0 skipped");
  free(out);
  assert_valid_junit("r.xml");
  char *xml = read_work_file("r.xml");
  assert_contains(xml, "name=\"protocol/handshake/ping-on-connect\"");
  assert_contains(xml, "name=\"protocol/handshake/ping-on-connect#2\"");
  assert_contains(xml, "name=\"protocol/handshake/ping-on-connect#3\"");
  assert_contains(xml, "name=\"seed\" value=\"1234\"");
  free(xml);
  char *html = read_work_file("r.html");
  assert_contains(html, "ping-on-connect#3");
  free(html);
  char *path = test_path(work, "r.json");
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  ck_assert_msg(doc != NULL, "%s: %s", path, jerr.text);
  json_t *cases = json_object_get(doc, "cases");
  ck_assert_uint_eq(json_array_size(cases), 3);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(cases, 1), "id")),
                   "protocol/handshake/ping-on-connect#2");
  json_decref(doc);
  free(path);
  free(p);
}
END_TEST

START_TEST(timeout_factor_scales_the_startup_timeout) {
  char *p = write_file("sleep.json",
                       "{\"format\": 1, \"name\": \"sleeper\", \"dialect\": \"modern\", "
                       "\"era\": \"1.66\", \"command\": [\"/bin/sleep\", \"30\"],"
                       " \"timing\": {\"startup_timeout_ms\": 300, \"shutdown_grace_ms\": 300}}");
  char args[8192], *out;
  snprintf(args, sizeof args,
           "run --profile '%s' protocol/handshake/name-first "
           "--timeout-factor 2.5",
           p);
  ck_assert_int_eq(replcheck(args, &out), 3);
  assert_contains(out, "not ready within 750 ms");
  assert_contains(out, "timeout factor 2.5");
  free(out);
  free(p);
}
END_TEST

/* A profile's setup step: a per-run step runs once before the tests, with the
 * database placeholders from REPLCHECK_DB_DSN; a per-test step before each test's SUT;
 * a failing step stops the run as "could not be started" (exit 3) with its output. */
START_TEST(profile_setup_runs_before_the_sut) {
  char timing[2048], args[8192], *out;
  const char *two = "protocol/handshake/name-first protocol/handshake/ping-on-connect";
  snprintf(timing, sizeof timing,
           "%s, \"setup\": {\"command\": [\"/bin/sh\", \"-c\", "
           "\"echo {db_name} >> %s/per-run.txt\"]}",
           FAST_TIMING, work);
  char *p = refworker_profile("setup-run.json", FAST_ARGS, timing);
  snprintf(args, sizeof args, "run --profile '%s' %s", p, two);
  ck_assert_int_eq(replcheck_env("REPLCHECK_DB_DSN='host=127.0.0.1 dbname=rcx'", args, &out), 0);
  assert_contains(out, "running the profile's setup step ...");
  free(out);
  char *path = test_path(work, "per-run.txt");
  char *text = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  ck_assert_str_eq(text, "rcx\n");
  free(text);
  free(path);
  free(p);

  snprintf(timing, sizeof timing,
           "%s, \"setup\": {\"per\": \"test\", \"command\": [\"/bin/sh\", \"-c\", "
           "\"echo {server_name} >> %s/per-test.txt\"]}",
           FAST_TIMING, work);
  p = refworker_profile("setup-test.json", FAST_ARGS, timing);
  snprintf(args, sizeof args, "run --profile '%s' %s", p, two);
  ck_assert_int_eq(replcheck(args, &out), 0);
  free(out);
  path = test_path(work, "per-test.txt");
  text = test_read_file(path, NULL);
  ck_assert_ptr_nonnull(text);
  int lines = 0;
  for (const char *c = text; *c != '\0'; c++) lines += *c == '\n';
  ck_assert_msg(lines == 2 && strstr(text, ".replcheck.test\n") != NULL, "per-test.txt: %s", text);
  free(text);
  free(path);
  free(p);

  snprintf(timing, sizeof timing,
           "%s, \"setup\": {\"command\": [\"/bin/sh\", \"-c\", \"echo no schema; exit 4\"]}",
           FAST_TIMING);
  p = refworker_profile("setup-fail.json", FAST_ARGS, timing);
  snprintf(args, sizeof args, "run --profile '%s' %s", p, two);
  ck_assert_int_eq(replcheck(args, &out), 3);
  assert_contains(out, "replcheck: the SUT could not be started: profile ");
  assert_contains(out, "setup '/bin/sh' exited with status 4");
  assert_contains(out, "no schema");
  assert_lacks(out, "PASS protocol/");
  free(out);
  free(p);
}
END_TEST

/* Role pg with "database": {"schema": "none"} and a per-run setup step: the step runs
 * once against the cluster's empty template ({db_name} replcheck_template) and creates a
 * table with psql; every test's SUT then finds that table, and no refworker table, in a
 * database of its own copied from the template. The SUT is a shell script that looks
 * with psql and then execs refworker (without a database) to play the protocol tests. */
START_TEST(setup_prepares_the_cluster_template) {
  char text[4096], timing[4096], args[8192], *out;
  snprintf(text, sizeof text,
           "echo \"$2\" >> '%s/setup-db.txt'\n"
           "exec psql -X -q -v ON_ERROR_STOP=1 \"$1\" -c "
           "'CREATE TABLE synapse_marker (x INT); INSERT INTO synapse_marker VALUES (42)'\n",
           work);
  char *setup_sh = write_file("setup.sh", text);
  snprintf(text, sizeof text,
           "dsn=$1 name=$2\nshift 2\n"
           "x=$(psql -X -Atq \"$dsn\" -c 'SELECT x FROM synapse_marker')\n"
           "n=$(psql -X -Atq \"$dsn\" -c \"SELECT count(*) FROM pg_tables WHERE schemaname = "
           "'public'\")\n"
           "echo \"$name $x $n\" >> '%s/seen.txt'\n"
           "exec \"$@\"\n",
           work);
  char *sut_sh = write_file("sut.sh", text);
  snprintf(timing, sizeof timing,
           "%s, \"roles\": [\"worker\", \"pg\"], \"database\": {\"schema\": \"none\"},"
           " \"setup\": {\"command\": [\"/bin/sh\", \"%s\", \"{db_dsn}\", \"{db_name}\"]}",
           FAST_TIMING, setup_sh);
  snprintf(marker, sizeof marker, "clirun-%d", (int)getpid());
  char json[8192];
  snprintf(json, sizeof json,
           "{\"format\": 1, \"name\": \"cli-run template\", \"dialect\": \"modern\", \"era\": "
           "\"1.66\",\n \"command\": [\"/bin/sh\", \"%s\", \"{db_dsn}\", \"{db_name}\", "
           "\"{bin_dir}/refworker\", \"--host\", \"{repl_host}\", \"--port\", \"{repl_port}\", "
           "\"--server-name\", \"{server_name}\", \"--dialect\", \"modern\", \"--log\", "
           "\"{log_path}\", \"--instance-name\", \"%s\"%s],\n \"timing\": %s}\n",
           sut_sh, marker, FAST_ARGS, timing);
  char *p = write_file("template.json", json);
  snprintf(args, sizeof args,
           "run --profile '%s' --jobs 2 protocol/handshake/name-first "
           "protocol/handshake/ping-on-connect",
           p);
  int rc = replcheck(args, &out);
  ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
  assert_contains(out, "running the profile's setup step ...");
  /* The cluster starts before the setup step that fills its template. */
  const char *cluster_at = strstr(out, "PostgreSQL test cluster on");
  ck_assert_msg(cluster_at != NULL && cluster_at < strstr(out, "running the profile's setup step"),
                "cluster not started before the setup step:\n%s", out);
  free(out);
  out = read_work_file("setup-db.txt");
  ck_assert_str_eq(out, "replcheck_template\n");
  free(out);
  out = read_work_file("seen.txt");
  char name1[64], name2[64];
  int x1 = 0, x2 = 0, n1 = -1, n2 = -1;
  ck_assert_msg(sscanf(out, "%63s %d %d\n%63s %d %d", name1, &x1, &n1, name2, &x2, &n2) == 6,
                "seen.txt: %s", out);
  /* 42: the template's row; 1: only the setup's table, no `events`/`stream_positions`. */
  ck_assert_msg(x1 == 42 && x2 == 42 && n1 == 1 && n2 == 1, "seen.txt: %s", out);
  ck_assert_str_ne(name1, name2);
  ck_assert_str_ne(name1, "replcheck_template");
  ck_assert_str_ne(name2, "replcheck_template");
  free(out);
  free(p);
  free(sut_sh);
  free(setup_sh);
  assert_no_refworker_left();
}
END_TEST

START_TEST(eta_only_on_a_terminal) {
  char *p = fast_profile();
  char script[8192], *out;
  snprintf(script, sizeof script,
           "'%s/replcheck' run --profile '%s' protocol/handshake/ping-on-connect "
           "protocol/handshake/name-first --junit t.xml\n",
           test_env("REPLCHECK_BIN_DIR"), p);
  char *run_sh = write_file("run.sh", script);
  /* script(1) gives replcheck a pseudo-terminal as its stdout. */
  char cmd[8400];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && TMPDIR='%s' script -qec 'sh run.sh' /dev/null > out.txt "
           "2>&1",
           work, work);
  ck_assert_int_eq(test_run(cmd), 0);
  out = read_work_file("out.txt");
  assert_contains(out, "[1/2] PASS protocol/handshake/ping-on-connect (");
  assert_contains(out, "s)  ETA ");
  free(out);
  ck_assert_int_eq(replcheck("run --profile fast.json protocol/handshake/ping-on-connect "
                             "protocol/handshake/name-first --junit t.xml",
                             &out),
                   0);
  assert_contains(out, "[1/2] PASS protocol/handshake/ping-on-connect (");
  assert_lacks(out, "ETA");
  free(out);
  free(run_sh);
  free(p);
}
END_TEST

/* ---- interrupt ----------------------------------------------------------------------- */

/* Starts replcheck in a session of its own (so its signals reach nobody else), output
 * to work/out.txt. */
static pid_t spawn_replcheck(const char *args) {
  char cmd[20000];
  snprintf(cmd, sizeof cmd, "cd '%s' && TMPDIR='%s' exec '%s/replcheck' %s > out.txt 2>&1", work,
           work, test_env("REPLCHECK_BIN_DIR"), args);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    setsid();
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Waits until some test of the run has started its SUT (its sut.pgid file exists). */
static bool wait_for_a_running_sut(int timeout_ms) {
  char pattern[4200];
  snprintf(pattern, sizeof pattern, "%s/replcheck-*/*/sut.pgid", work);
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  while (rc_clock_mono_ms() < deadline) {
    glob_t g;
    bool found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    if (found) return true;
    usleep(20 * 1000);
  }
  return false;
}

/* Waits for pid with a deadline; returns its exit status, or -1 (after killing it). */
static int wait_exit(pid_t pid, int timeout_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  int status;
  while (rc_clock_mono_ms() < deadline) {
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    usleep(20 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

static void check_interrupt(int sig, const char *jobs) {
  char *p = fast_profile();
  char args[8192];
  /* Four fixed tests, so the count of interrupted ones does not change as suites grow. */
  snprintf(args, sizeof args, "run --profile '%s' " KEEPALIVE_FOUR " --jobs %s --junit i.xml", p,
           jobs);
  pid_t pid = spawn_replcheck(args);
  ck_assert_msg(wait_for_a_running_sut(20000), "no test started within 20 s");
  ck_assert_int_eq(kill(pid, sig), 0);
  int rc = wait_exit(pid, 30000);
  char *out = read_work_file("out.txt");
  ck_assert_msg(rc == 130, "exit %d:\n%s", rc, out);
  assert_contains(out, "interrupted while running (after ");
  assert_contains(out, sig == SIGINT ? "Interrupted by SIGINT" : "Interrupted by SIGTERM");
  assert_contains(out, "JUnit report: i.xml");
  assert_last_line(out, "0 passed, 0 failed, 4 skipped");
  assert_valid_junit("i.xml");
  char *xml = read_work_file("i.xml");
  assert_contains(xml, "not run: interrupted");
  assert_contains(xml, "name=\"interrupted\"");
  free(xml);
  free(out);
  free(p);
  assert_no_refworker_left();
}

/* Ctrl-C during a run with a database: the cluster is stopped (its port answers no more,
 * no postgres of it is left) and its directory removed, like every SUT. */
START_TEST(sigint_stops_the_database_cluster) {
  char *profile = test_path(test_env("REPLCHECK_SOURCE_DIR"), "profiles/refworker-pg.json");
  char args[8192];
  snprintf(args, sizeof args, "run --profile '%s' --bin-dir '%s' 'db/init/*' --jobs 2 --junit i.xml",
           profile, test_env("REPLCHECK_BIN_DIR"));
  pid_t pid = spawn_replcheck(args);
  ck_assert_msg(wait_for_a_running_sut(30000), "no test started within 30 s");
  char *out = read_work_file("out.txt");
  const char *at = strstr(out, "PostgreSQL test cluster on 127.0.0.1:");
  ck_assert_msg(at != NULL, "no cluster line in:\n%s", out);
  int port = atoi(at + strlen("PostgreSQL test cluster on 127.0.0.1:"));
  free(out);
  char port_arg[32];
  snprintf(port_arg, sizeof port_arg, "port=%d", port);
  ck_assert_int_ne(test_find_process("postgres", port_arg), 0);
  ck_assert_int_eq(kill(pid, SIGINT), 0);
  int rc = wait_exit(pid, 30000);
  out = read_work_file("out.txt");
  ck_assert_msg(rc == 130, "exit %d:\n%s", rc, out);
  int left = test_find_process("postgres", port_arg);
  ck_assert_msg(left == 0, "postgres process %d of the run's cluster survived:\n%s", left, out);
  char dsn[128];
  snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d dbname=postgres connect_timeout=2", port);
  ck_assert_int_eq(PQping(dsn), PQPING_NO_RESPONSE);
  glob_t g;
  char pattern[4200];
  snprintf(pattern, sizeof pattern, "%s/replcheck-*/pg-*", work);
  ck_assert_int_ne(glob(pattern, 0, NULL, &g), 0);
  globfree(&g);
  free(out);
  free(profile);
}
END_TEST

START_TEST(sigint_stops_the_run_with_jobs_2) {
  check_interrupt(SIGINT, "2");
}
END_TEST

START_TEST(sigterm_stops_the_run_with_jobs_1) {
  check_interrupt(SIGTERM, "1");
}
END_TEST

int main(void) {
  Suite *s = suite_create("cli-run");
  TCase *tc = tcase_create("cli-run");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, xfail_xpass_non_strict_and_strict_exit_codes);
  tcase_add_test(tc, expected_failures_file_errors_exit_2);
  tcase_add_test(tc, selection_errors_and_min_exit_2);
  tcase_add_test(tc, shards_cover_the_selection_once);
  tcase_add_test(tc, jobs_2_same_verdicts_as_jobs_1_and_faster);
  tcase_add_test(tc, list_formats_and_run_list);
  tcase_add_test(tc, environment_variables_set_options);
  tcase_add_test(tc, repeat_seed_and_all_reports);
  tcase_add_test(tc, timeout_factor_scales_the_startup_timeout);
  tcase_add_test(tc, eta_only_on_a_terminal);
  tcase_add_test(tc, profile_setup_runs_before_the_sut);
  tcase_add_test(tc, setup_prepares_the_cluster_template);
  tcase_add_test(tc, sigint_stops_the_run_with_jobs_2);
  tcase_add_test(tc, sigterm_stops_the_run_with_jobs_1);
  tcase_add_test(tc, sigint_stops_the_database_cluster);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
