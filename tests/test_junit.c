/* Unit tests of the report model (harness/report.c) and the JUnit writer
 * (harness/junit.c). Every written report is validated with xmllint against both
 * schemas in shared/junit/, and values are read back through xmllint's XPath so the
 * checks see what a CI parser sees, not the writer's bytes. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "junit.h"
#include "report.h"
#include "test_support.h"

static char *temp_dir;

static void setup(void) {
  temp_dir = test_make_temp_dir("test_junit");
  ck_assert_ptr_nonnull(temp_dir);
}

static void teardown(void) {
  setlocale(LC_ALL, "C");
  test_remove_tree(temp_dir);
  free(temp_dir);
  temp_dir = NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static char *temp_path(const char *name) {
  char *p = test_path(temp_dir, name);
  ck_assert_ptr_nonnull(p);
  return p;
}

static char *write_report(const report_t *report, const char *name) {
  char *path = temp_path(name);
  rc_error_t err = {{0}};
  ck_assert_msg(junit_write_file(report, path, &err) == 0, "junit_write_file: %s", err.msg);
  return path;
}

/* Validates against both schemas; on failure the message carries xmllint's report. */
static void assert_valid(const char *path) {
  static const char *const schemas[] = {"ant-junit.xsd", "jenkins-junit.xsd"};
  char *log_path = temp_path("xmllint.log");
  for (size_t i = 0; i < 2; i++) {
    char command[4096];
    snprintf(command, sizeof command, "xmllint --noout --schema '%s/junit/%s' '%s' 2>'%s'",
             test_env("REPLCHECK_SHARED_DIR"), schemas[i], path, log_path);
    int rc = test_run(command);
    char *log = test_read_file(log_path, NULL);
    ck_assert_msg(rc == 0, "%s does not validate against %s:\n%.2000s", path, schemas[i],
                  log != NULL ? log : "(no xmllint output)");
    free(log);
  }
  unlink(log_path);
  free(log_path);
}

/* Evaluates an XPath expression (no single quotes in it) with xmllint and returns its
 * output without the newline xmllint appends, or NULL if xmllint failed. */
static char *xpath(const char *path, const char *expr) {
  char *out_path = temp_path("xpath.out");
  size_t size = strlen(expr) + strlen(path) + 2 * strlen(out_path) + 64;
  char *command = malloc(size);
  ck_assert_ptr_nonnull(command);
  snprintf(command, size, "xmllint --xpath '%s' '%s' > '%s'", expr, path, out_path);
  int rc = test_run(command);
  size_t len = 0;
  char *out = rc == 0 ? test_read_file(out_path, &len) : NULL;
  if (out != NULL && len > 0 && out[len - 1] == '\n') out[len - 1] = '\0';
  unlink(out_path);
  free(command);
  free(out_path);
  return out;
}

static void assert_xpath(const char *path, const char *expr, const char *expected) {
  char *got = xpath(path, expr);
  ck_assert_msg(got != NULL, "xmllint --xpath '%s' failed on %s", expr, path);
  ck_assert_msg(strcmp(got, expected) == 0, "%s: expected [%s], got [%s]", expr, expected, got);
  free(got);
}

static void assert_xpath_contains(const char *path, const char *expr, const char *needle) {
  char *got = xpath(path, expr);
  ck_assert_msg(got != NULL, "xmllint --xpath '%s' failed on %s", expr, path);
  ck_assert_msg(strstr(got, needle) != NULL, "%s: [%s] not found in output", expr, needle);
  free(got);
}

static char *read_all(const char *path) {
  char *data = test_read_file(path, NULL);
  ck_assert_msg(data != NULL, "cannot read %s", path);
  return data;
}

static char *write_to_memory(const report_t *report) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(out);
  ck_assert_int_eq(junit_write_stream(report, out), 0);
  ck_assert_int_eq(fclose(out), 0);
  return buf;
}

static report_case_t *add_case(report_t *report, const char *id, const char *area,
                               verdict_t verdict, double seconds, const char *message) {
  report_case_t *c = report_add_case(report);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_eq(report_set(&c->id, id), 0);
  ck_assert_int_eq(report_set(&c->area, area), 0);
  ck_assert_int_eq(report_set(&c->message, message), 0);
  c->verdict = verdict;
  c->seconds = seconds;
  return c;
}

static void set_failure(report_case_t *c, const char *reqs, const char *requirement,
                        const char *expected, const char *actual, const char *evidence) {
  ck_assert_int_eq(report_set(&c->requirements, reqs), 0);
  ck_assert_int_eq(report_set(&c->requirement, requirement), 0);
  ck_assert_int_eq(report_set(&c->source, "synapse/replication/tcp/protocol.py@v1.66"), 0);
  ck_assert_int_eq(report_set(&c->expected, expected), 0);
  ck_assert_int_eq(report_set(&c->actual, actual), 0);
  ck_assert_int_eq(report_set(&c->evidence, evidence), 0);
}

/* One case per verdict, in enum order after PASS. */
static report_t *report_every_verdict(void) {
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(report_add_property(r, "profile", "profiles/synapse-1.66.json"), 0);
  ck_assert_int_eq(report_add_property(r, "dialect", "v1.18+"), 0);
  ck_assert_int_eq(
      report_add_property(r, "sut_command", "python -m synapse.app.generic_worker"), 0);
  r->seconds = 12.5;
  add_case(r, "protocol/handshake/name-first", "protocol", VERDICT_PASS, 0.012, NULL);
  report_case_t *c = add_case(r, "protocol/ping/timeout", "protocol", VERDICT_FAIL, 1.5,
                              "no PING within 5 s");
  set_failure(c, "HS-01,PG-02", "The worker sends PING at least every 5 s.",
              "a PING within 5000 ms", "none in 7000 ms",
              "12:00:00.000 > NAME worker1\n12:00:00.001 < SERVER master\n");
  ck_assert_int_eq(report_set(&c->file, "suites/protocol.c"), 0);
  c->line = 42;
  c = add_case(r, "cache/expiry/reap", "cache", VERDICT_NON_STRICT, 2, "evictions not counted");
  set_failure(c, "CA-03", "Time evictions are counted.", "counter > 0", "counter = 0", NULL);
  add_case(r, "http/server-header/all", "http", VERDICT_SKIP, 0, "profile opts out: no HTTP");
  c = add_case(r, "presence/once/fanout", "presence", VERDICT_XFAIL, 0.25, "sent twice");
  set_failure(c, "PR-01", "Presence crosses replication once.", "1 update", "2 updates",
              "USER_SYNC x2\n");
  add_case(r, "logcontext/sentinel/none", "logcontext", VERDICT_XPASS, 0.3, NULL);
  add_case(r, "connections/close/on-error", "connections", VERDICT_ERROR, 0.001,
           "SUT never became ready");
  return r;
}

/* ---- report model --------------------------------------------------------- */

START_TEST(test_verdict_names_round_trip) {
  for (int v = 0; v < VERDICT_COUNT; v++) {
    verdict_t parsed = VERDICT_COUNT;
    ck_assert_int_eq(verdict_from_name(verdict_name((verdict_t)v), &parsed), 0);
    ck_assert_int_eq(parsed, v);
  }
  ck_assert_str_eq(verdict_name(VERDICT_NON_STRICT), "NON_STRICT");
  ck_assert_str_eq(verdict_name(VERDICT_COUNT), "UNKNOWN");
  ck_assert_str_eq(verdict_name((verdict_t)-1), "UNKNOWN");
  verdict_t untouched = VERDICT_XPASS;
  ck_assert_int_eq(verdict_from_name("pass", &untouched), -1);
  ck_assert_int_eq(verdict_from_name("UNKNOWN", &untouched), -1);
  ck_assert_int_eq(verdict_from_name(NULL, &untouched), -1);
  ck_assert_int_eq(untouched, VERDICT_XPASS);
}
END_TEST

START_TEST(test_report_create_fills_run_fields) {
  time_t before = time(NULL);
  report_t *r = report_create("suite-name");
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->name, "suite-name");
  ck_assert_uint_eq(r->case_count, 0);
  ck_assert_uint_eq(r->property_count, 0);
  ck_assert_int_eq(r->strict, 0);

  ck_assert_uint_eq(strlen(r->timestamp), 19);
  struct tm tm = {0};
  char *end = strptime(r->timestamp, "%Y-%m-%dT%H:%M:%S", &tm);
  ck_assert_msg(end != NULL && *end == '\0', "bad timestamp %s", r->timestamp);
  time_t stamped = timegm(&tm);
  ck_assert_msg(stamped >= before - 1 && stamped <= time(NULL) + 1,
                "timestamp %s is not now (UTC)", r->timestamp);

  char host[256] = "";
  ck_assert_int_eq(gethostname(host, sizeof host - 1), 0);
  ck_assert_str_eq(r->hostname, host[0] != '\0' ? host : "localhost");
  report_destroy(r);

  r = report_create(NULL);
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(r->name, "replcheck");
  report_destroy(r);
  report_destroy(NULL);
}
END_TEST

START_TEST(test_report_cases_properties_and_counts) {
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  for (int i = 0; i < 100; i++) {
    report_case_t *c = report_add_case(r);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(c->id);
    ck_assert_ptr_null(c->evidence);
    ck_assert_int_eq(c->verdict, VERDICT_PASS);
    ck_assert_int_eq(c->line, 0);
    char id[32];
    snprintf(id, sizeof id, "area/test/%d", i);
    ck_assert_int_eq(report_set(&c->id, id), 0);
    c->verdict = (verdict_t)(i % VERDICT_COUNT);
  }
  ck_assert_uint_eq(r->case_count, 100);
  ck_assert_str_eq(r->cases[99].id, "area/test/99");
  size_t total = 0;
  for (int v = 0; v < VERDICT_COUNT; v++) {
    size_t expected = 100 / VERDICT_COUNT + (v < 100 % VERDICT_COUNT ? 1 : 0);
    ck_assert_uint_eq(report_count(r, (verdict_t)v), expected);
    total += report_count(r, (verdict_t)v);
  }
  ck_assert_uint_eq(total, 100);
  ck_assert_uint_eq(report_count(NULL, VERDICT_PASS), 0);

  char *field = NULL;
  char source[] = "copied";
  ck_assert_int_eq(report_set(&field, source), 0);
  source[0] = 'X';
  ck_assert_str_eq(field, "copied");
  ck_assert_int_eq(report_set(&field, NULL), 0);
  ck_assert_ptr_null(field);
  ck_assert_int_eq(report_set(NULL, "x"), -1);

  ck_assert_int_eq(report_add_property(r, "profile", "p.json"), 0);
  ck_assert_int_eq(report_add_property(r, "empty", NULL), 0);
  ck_assert_int_eq(report_add_property(r, NULL, "v"), -1);
  ck_assert_int_eq(report_add_property(NULL, "n", "v"), -1);
  ck_assert_uint_eq(r->property_count, 2);
  ck_assert_str_eq(r->properties[0].value, "p.json");
  ck_assert_str_eq(r->properties[1].value, "");
  ck_assert_ptr_null(report_add_case(NULL));
  report_destroy(r);
}
END_TEST

/* ---- verdict mapping ------------------------------------------------------ */

START_TEST(test_every_verdict_maps_and_validates) {
  report_t *r = report_every_verdict();
  char *path = write_report(r, "report.xml");
  assert_valid(path);

  assert_xpath(path, "count(/testsuites/testsuite)", "1");
  assert_xpath(path, "count(//testcase)", "7");
  assert_xpath(path, "string(//testsuite/@tests)", "7");
  assert_xpath(path, "string(//testsuite/@failures)", "1");
  assert_xpath(path, "string(//testsuite/@errors)", "1");
  assert_xpath(path, "string(//testsuite/@skipped)", "2");
  assert_xpath(path, "count(//failure)", "1");
  assert_xpath(path, "count(//error)", "1");
  assert_xpath(path, "count(//skipped)", "2");
  assert_xpath(path, "string(//testsuite/@time)", "12.500");
  assert_xpath(path, "string(//testsuite/@name)", "replcheck");

  assert_xpath(path, "string(//testcase[1]/@name)", "protocol/handshake/name-first");
  assert_xpath(path, "string(//testcase[1]/@classname)", "replcheck.protocol");
  assert_xpath(path, "string(//testcase[1]/@time)", "0.012");
  assert_xpath(path, "count(//testcase[1]/*)", "0");

  assert_xpath(path, "string(//testcase[2]/failure/@type)", "FAIL");
  assert_xpath(path, "string(//testcase[2]/failure/@message)", "no PING within 5 s");
  assert_xpath(path, "string(//testcase[2]/@time)", "1.500");
  assert_xpath(path, "string(//testcase[2]/failure)",
               "Requirement (HS-01,PG-02): The worker sends PING at least every 5 s.\n"
               "Source: synapse/replication/tcp/protocol.py@v1.66\n"
               "Location: suites/protocol.c:42\n"
               "Expected: a PING within 5000 ms\n"
               "Actual: none in 7000 ms\n"
               "Evidence:\n"
               "12:00:00.000 > NAME worker1\n"
               "12:00:00.001 < SERVER master\n");

  /* NON_STRICT and XPASS pass in JUnit terms; the notes are in the suite's output. */
  assert_xpath(path, "count(//testcase[3]/*)", "0");
  assert_xpath_contains(path, "string(//testsuite/system-out)",
                        "NON_STRICT cache/expiry/reap: a SHOULD requirement was not met");
  assert_xpath_contains(path, "string(//testsuite/system-out)",
                        "Requirement (CA-03): Time evictions are counted.\n");
  assert_xpath(path, "string(//testcase[4]/skipped)", "profile opts out: no HTTP");
  assert_xpath_contains(path, "string(//testcase[5]/skipped)",
                        "XFAIL (expected failure, does not fail the run): sent twice\n"
                        "Requirement (PR-01): Presence crosses replication once.\n");
  assert_xpath_contains(path, "string(//testcase[5]/skipped)", "Evidence:\nUSER_SYNC x2\n");
  assert_xpath(path, "count(//testcase[6]/*)", "0");
  assert_xpath_contains(path, "string(//testsuite/system-out)",
                        "XPASS logcontext/sentinel/none: WARNING: listed as expected to fail");
  assert_xpath(path, "string(//testcase[7]/error/@type)", "ERROR");
  assert_xpath(path, "string(//testcase[7]/error/@message)", "SUT never became ready");
  assert_xpath(path, "string(//testcase[7]/@classname)", "replcheck.connections");

  /* Per-case verdict lines and run-level properties. */
  assert_xpath_contains(path, "string(//testsuite/system-out)",
                        "FAIL protocol/ping/timeout [HS-01,PG-02] (1.500 s): no PING within 5 s\n");
  assert_xpath(path, "string(//property[@name=\"profile\"]/@value)", "profiles/synapse-1.66.json");
  assert_xpath(path, "string(//property[@name=\"dialect\"]/@value)", "v1.18+");
  assert_xpath(path, "string(//property[@name=\"sut_command\"]/@value)",
               "python -m synapse.app.generic_worker");
  assert_xpath(path, "string(//property[@name=\"replcheck.strict\"]/@value)", "false");
  assert_xpath(path, "string(//property[@name=\"replcheck.verdict.NON_STRICT\"]/@value)", "1");
  assert_xpath(path, "string(//property[@name=\"replcheck.verdict.PASS\"]/@value)", "1");
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_strict_turns_non_strict_and_xpass_into_failures) {
  report_t *r = report_every_verdict();
  r->strict = 1;
  char *path = write_report(r, "strict.xml");
  assert_valid(path);
  assert_xpath(path, "string(//testsuite/@failures)", "3");
  assert_xpath(path, "string(//testsuite/@errors)", "1");
  assert_xpath(path, "string(//testsuite/@skipped)", "2");
  assert_xpath(path, "count(//failure)", "3");
  assert_xpath(path, "string(//testcase[3]/failure/@type)", "NON_STRICT");
  assert_xpath(path, "string(//testcase[3]/failure/@message)", "evictions not counted");
  assert_xpath_contains(path, "string(//testcase[3]/failure)", "Actual: counter = 0\n");
  assert_xpath(path, "string(//testcase[6]/failure/@type)", "XPASS");
  assert_xpath(path, "string(//testcase[6]/failure/@message)",
               "listed as expected to fail, but passed (--strict)");
  assert_xpath(path, "string(//property[@name=\"replcheck.strict\"]/@value)", "true");
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_empty_report_validates) {
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  char *path = write_report(r, "empty.xml");
  assert_valid(path);
  assert_xpath(path, "count(//testcase)", "0");
  assert_xpath(path, "string(//testsuite/@tests)", "0");
  assert_xpath(path, "string(//testsuite/@failures)", "0");
  assert_xpath(path, "string(//testsuite/@time)", "0.000");
  assert_xpath(path, "string(//property[@name=\"replcheck.version\"]/@value)", REPLCHECK_VERSION);
  assert_xpath(path, "string(//testsuite/@timestamp)", r->timestamp);
  assert_xpath(path, "string(//testsuite/@hostname)", r->hostname);
  free(path);
  report_destroy(r);
}
END_TEST

/* Whatever the runner put in the report, the output still validates. */
START_TEST(test_missing_and_bad_fields_fall_back) {
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(report_set(&r->name, " "), 0);
  ck_assert_int_eq(report_set(&r->hostname, NULL), 0);
  ck_assert_int_eq(report_set(&r->timestamp, "2024-02-30T00:00:00"), 0);
  ck_assert_int_eq(report_add_property(r, "\t", NULL), 0);
  r->seconds = NAN;
  report_case_t *c = report_add_case(r);
  c->verdict = (verdict_t)99;
  c->seconds = -3;
  c = report_add_case(r);
  c->verdict = VERDICT_FAIL;
  c->seconds = INFINITY;
  add_case(r, "noslash", NULL, VERDICT_SKIP, 0, NULL);
  char *path = write_report(r, "fallback.xml");
  assert_valid(path);
  assert_xpath(path, "string(//testsuite/@name)", "replcheck");
  assert_xpath(path, "string(//testsuite/@hostname)", "localhost");
  assert_xpath(path, "string(//testsuite/@time)", "0.000");
  char *ts = xpath(path, "string(//testsuite/@timestamp)");
  ck_assert_ptr_nonnull(ts);
  ck_assert_str_ne(ts, "2024-02-30T00:00:00");
  ck_assert_uint_eq(strlen(ts), 19);
  free(ts);
  assert_xpath(path, "string(//testcase[1]/@name)", "unnamed-1");
  assert_xpath(path, "string(//testcase[1]/@classname)", "replcheck.unknown");
  assert_xpath(path, "string(//testcase[1]/@time)", "0.000");
  assert_xpath(path, "string(//testcase[1]/error/@type)", "UNKNOWN");
  assert_xpath_contains(path, "string(//testsuite/system-out)", "\nUNKNOWN unnamed-1 (0.000 s)\n");
  assert_xpath(path, "string(//testcase[2]/failure/@message)", "requirement not met");
  assert_xpath(path, "string(//testcase[2]/@time)", "1000000000000.000");
  assert_xpath(path, "string(//testcase[3]/@classname)", "replcheck.noslash");
  assert_xpath(path, "string(//testcase[3]/skipped)", "skipped");
  assert_xpath(path, "string(//testsuite/@errors)", "1");
  assert_xpath(path, "string(//testsuite/@failures)", "1");
  assert_xpath(path, "string(//property[2]/@name)", "unnamed");
  free(path);
  report_destroy(r);
}
END_TEST

/* ---- escaping ------------------------------------------------------------- */

START_TEST(test_markup_and_unicode_round_trip) {
  const char *id = "unicode/\xc3\xa9-\xe4\xb8\xad\xe6\x96\x87-\xf0\x9f\x9a\x80/<&>\"x";
  const char *message = "a \"quoted\" & <tag> 'single' ]]> end\tTAB";
  const char *evidence = "line1 ]]> <![CDATA[x]]> &amp;\r\nline2 & \xc3\xa9 \xf0\x9f\x9a\x80\n";
  const char *property = "multi\nline & \"value\" 'x' <y>";
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(report_add_property(r, "sut_command", property), 0);
  report_case_t *c = add_case(r, id, "unicode", VERDICT_FAIL, 0.5, message);
  ck_assert_int_eq(report_set(&c->evidence, evidence), 0);
  char *path = write_report(r, "unicode.xml");
  assert_valid(path);
  assert_xpath(path, "string(//testcase[1]/@name)", id);
  assert_xpath(path, "string(//failure/@message)", message);
  assert_xpath(path, "string(//property[@name=\"sut_command\"]/@value)", property);
  char *expected = malloc(strlen(evidence) + 16);
  ck_assert_ptr_nonnull(expected);
  sprintf(expected, "Evidence:\n%s", evidence);
  assert_xpath(path, "string(//failure)", expected);
  free(expected);

  char *raw = read_all(path);
  ck_assert_ptr_null(strstr(raw, "<![CDATA["));
  ck_assert_ptr_null(strstr(raw, "]]>"));
  free(raw);
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_control_characters_are_made_visible) {
  const char *input = "a\x01" "b\x1b[31mred\x7f" "c\x0c" "d\xc2\x85" "e\xef\xbf\xbe" "f\tg";
  const char *in_text = "a\\x01b\\x1b[31mred\\x7fc\\x0cd\\u0085e\xef\xbf\xbd" "f\tg";
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  report_case_t *c = add_case(r, "ctl/chars", "ctl", VERDICT_ERROR, 0, input);
  ck_assert_int_eq(report_set(&c->evidence, input), 0);
  ck_assert_int_eq(report_set(&c->output, input), 0);
  char *path = write_report(r, "control.xml");
  assert_valid(path);
  assert_xpath(path, "string(//error/@message)", in_text);
  char expected[256];
  snprintf(expected, sizeof expected, "Evidence:\n%s\n", in_text);
  assert_xpath(path, "string(//error)", expected);
  snprintf(expected, sizeof expected, "--- output of ctl/chars ---\n%s\n", in_text);
  assert_xpath_contains(path, "string(//testsuite/system-out)", expected);
  free(path);
  report_destroy(r);

  /* A message is one line in the suite's verdict list, whatever it holds. */
  r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  add_case(r, "ctl/lines", "ctl", VERDICT_FAIL, 0, "first\r\nsecond");
  path = write_report(r, "lines.xml");
  assert_valid(path);
  assert_xpath(path, "string(//failure/@message)", "first\r\nsecond");
  assert_xpath_contains(path, "string(//testsuite/system-out)",
                        "FAIL ctl/lines (0.000 s): first\\r\\nsecond\n");
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_invalid_utf8_becomes_replacement_characters) {
#define FFFD "\xef\xbf\xbd"
  /* One U+FFFD per maximal subpart of each ill-formed sequence. */
  static const struct {
    const char *what, *input, *expected;
  } cases[] = {
      {"overlong 2-byte", "A\xc0\xaf" "B", "A" FFFD FFFD "B"},
      {"overlong 3-byte", "\xe0\x80\xaf", FFFD FFFD FFFD},
      {"overlong 4-byte", "\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD},
      {"lone continuation", "x\x80y\xbf\xbfz", "x" FFFD "y" FFFD FFFD "z"},
      {"truncated mid-string", "\xe2\x82Z", FFFD "Z"},
      {"truncated at end", "ok\xf0\x9f\x9a", "ok" FFFD},
      {"surrogate", "\xed\xa0\x80", FFFD FFFD FFFD},
      {"surrogate pair (CESU-8)", "\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD},
      {"above U+10FFFF", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD},
      {"invalid bytes", "\xfe\xff\xf8", FFFD FFFD FFFD},
      {"valid edges kept", "\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf",
       "\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf"},
  };
#undef FFFD
  size_t n = sizeof cases / sizeof cases[0];
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  for (size_t i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "utf8/case-%zu", i);
    report_case_t *c = add_case(r, id, "utf8", VERDICT_FAIL, 0, cases[i].input);
    ck_assert_int_eq(report_set(&c->actual, cases[i].input), 0);
  }
  char *path = write_report(r, "utf8.xml");
  assert_valid(path);
  for (size_t i = 0; i < n; i++) {
    char expr[128], expected[128];
    snprintf(expr, sizeof expr, "string(//testcase[%zu]/failure/@message)", i + 1);
    char *got = xpath(path, expr);
    ck_assert_msg(got != NULL && strcmp(got, cases[i].expected) == 0, "%s: attribute wrong",
                  cases[i].what);
    free(got);
    snprintf(expr, sizeof expr, "string(//testcase[%zu]/failure)", i + 1);
    snprintf(expected, sizeof expected, "Actual: %s\n", cases[i].expected);
    got = xpath(path, expr);
    ck_assert_msg(got != NULL && strcmp(got, expected) == 0, "%s: text wrong", cases[i].what);
    free(got);
  }
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_very_long_evidence_is_kept_whole) {
  const size_t lines = 20000;
  const char *line = "12:00:00.000 < RDATA events 1234 [\"$ev\",\"!room:hs\"] & more\n";
  size_t line_len = strlen(line);
  char *evidence = malloc(lines * line_len + 1);
  ck_assert_ptr_nonnull(evidence);
  for (size_t i = 0; i < lines; i++) memcpy(evidence + i * line_len, line, line_len);
  evidence[lines * line_len] = '\0';
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  report_case_t *c = add_case(r, "protocol/rdata/batch", "protocol", VERDICT_FAIL, 3, "lost");
  ck_assert_int_eq(report_set(&c->evidence, evidence), 0);
  char *path = write_report(r, "long.xml");
  assert_valid(path);
  char *got = xpath(path, "string(//failure)");
  ck_assert_ptr_nonnull(got);
  ck_assert_uint_eq(strlen(got), strlen("Evidence:\n") + lines * line_len);
  ck_assert_str_eq(got + strlen("Evidence:\n"), evidence);
  free(got);
  free(evidence);
  free(path);
  report_destroy(r);
}
END_TEST

/* ---- numbers and locale --------------------------------------------------- */

START_TEST(test_numbers_do_not_depend_on_locale) {
  report_t *r = report_create("replcheck");
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(report_set(&r->timestamp, "2024-05-06T07:08:09"), 0);
  r->seconds = 3600.25;
  add_case(r, "a/one", "a", VERDICT_PASS, 1.5, NULL);
  add_case(r, "a/two", "a", VERDICT_FAIL, 12345.6789, "slow");
  add_case(r, "a/three", "a", VERDICT_PASS, 0.0004, NULL);
  add_case(r, "a/four", "a", VERDICT_PASS, 0.9996, NULL);
  char *in_c = write_to_memory(r);

  const char *locale = setlocale(LC_ALL, "de_DE.UTF-8");
  ck_assert_msg(locale != NULL,
                "locale de_DE.UTF-8 is missing: run ci/install-deps.sh "
                "(localedef -i de_DE -f UTF-8 de_DE.UTF-8)");
  char probe[16];
  snprintf(probe, sizeof probe, "%.1f", 1.5);
  ck_assert_msg(strcmp(probe, "1,5") == 0, "de_DE locale active but %%f gave %s", probe);
  char *in_de = write_to_memory(r);
  char *path = write_report(r, "locale.xml");
  setlocale(LC_ALL, "C");

  ck_assert_str_eq(in_de, in_c);
  ck_assert_ptr_nonnull(strstr(in_de, " time=\"3600.250\">"));
  ck_assert_ptr_nonnull(
      strstr(in_de, "<testcase name=\"a/one\" classname=\"replcheck.a\" time=\"1.500\"/>"));
  ck_assert_ptr_nonnull(strstr(in_de, "time=\"12345.679\""));
  ck_assert_ptr_nonnull(strstr(in_de, "name=\"a/three\" classname=\"replcheck.a\" time=\"0.000\""));
  ck_assert_ptr_nonnull(strstr(in_de, "name=\"a/four\" classname=\"replcheck.a\" time=\"1.000\""));
  ck_assert_ptr_nonnull(strstr(in_de, "timestamp=\"2024-05-06T07:08:09\""));
  assert_valid(path);
  char *file = read_all(path);
  ck_assert_str_eq(file, in_c);
  free(file);
  free(path);
  free(in_c);
  free(in_de);
  report_destroy(r);
}
END_TEST

/* ---- atomic files --------------------------------------------------------- */

START_TEST(test_missing_directory_fails_cleanly) {
  report_t *r = report_every_verdict();
  char *path = temp_path("missing/sub/report.xml");
  rc_error_t err = {{0}};
  ck_assert_int_eq(junit_write_file(r, path, &err), -1);
  char expected[RC_ERROR_MAX];
  snprintf(expected, sizeof expected, "%s: %s", path, strerror(ENOENT));
  ck_assert_str_eq(err.msg, expected);
  char *left = test_list_dir(temp_dir);
  ck_assert_str_eq(left, "");
  free(left);
  ck_assert_int_eq(junit_write_file(r, "", &err), -1);
  ck_assert_str_eq(err.msg, "junit: no output path given");
  ck_assert_int_eq(junit_write_file(NULL, path, &err), -1);
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_existing_file_is_replaced_whole) {
  char *path = temp_path("report.xml");
  size_t junk_len = 256 * 1024;
  char *junk = malloc(junk_len);
  ck_assert_ptr_nonnull(junk);
  memset(junk, 'J', junk_len);
  ck_assert_int_eq(test_write_file(path, junk, junk_len), 0);
  free(junk);

  report_t *r = report_every_verdict();
  rc_error_t err = {{0}};
  ck_assert_msg(junit_write_file(r, path, &err) == 0, "%s", err.msg);
  char *expected = write_to_memory(r);
  char *written = read_all(path);
  ck_assert_str_eq(written, expected);
  char *left = test_list_dir(temp_dir);
  ck_assert_str_eq(left, "report.xml");
  assert_valid(path);
  free(left);
  free(written);
  free(expected);
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_directory_in_the_way_fails_cleanly) {
  char *path = temp_path("report.xml");
  ck_assert_int_eq(mkdir(path, 0755), 0);
  report_t *r = report_every_verdict();
  rc_error_t err = {{0}};
  ck_assert_int_eq(junit_write_file(r, path, &err), -1);
  char expected[RC_ERROR_MAX];
  snprintf(expected, sizeof expected, "%s: %s", path, strerror(EISDIR));
  ck_assert_str_eq(err.msg, expected);
  char *left = test_list_dir(temp_dir);
  ck_assert_str_eq(left, "report.xml");
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  free(left);
  free(path);
  report_destroy(r);
}
END_TEST

/* A write error half-way (file size limit) must leave the previous report as it was
 * and no temporary file behind. */
START_TEST(test_write_error_keeps_previous_report) {
  char *path = temp_path("report.xml");
  const char *previous = "<previous report/>\n";
  ck_assert_int_eq(test_write_file(path, previous, strlen(previous)), 0);
  report_t *r = report_every_verdict();
  char *big = malloc(64 * 1024 + 1);
  ck_assert_ptr_nonnull(big);
  memset(big, 'e', 64 * 1024);
  big[64 * 1024] = '\0';
  ck_assert_int_eq(report_set(&r->cases[1].evidence, big), 0);
  free(big);

  struct rlimit saved, limited;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  limited = saved;
  limited.rlim_cur = 4096;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limited), 0);
  rc_error_t err = {{0}};
  int rc = junit_write_file(r, path, &err);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, old_handler);

  ck_assert_int_eq(rc, -1);
  char expected[RC_ERROR_MAX];
  snprintf(expected, sizeof expected, "%s: %s", path, strerror(EFBIG));
  ck_assert_str_eq(err.msg, expected);
  char *content = read_all(path);
  ck_assert_str_eq(content, previous);
  char *left = test_list_dir(temp_dir);
  ck_assert_str_eq(left, "report.xml");
  free(left);
  free(content);
  free(path);
  report_destroy(r);
}
END_TEST

START_TEST(test_stream_write_error_is_reported) {
  FILE *full = fopen("/dev/full", "w");
  ck_assert_ptr_nonnull(full);
  report_t *r = report_every_verdict();
  errno = 0;
  ck_assert_int_eq(junit_write_stream(r, full), -1);
  ck_assert_int_eq(errno, ENOSPC);
  fclose(full);
  ck_assert_int_eq(junit_write_stream(NULL, stdout), -1);
  report_destroy(r);
}
END_TEST

static Suite *junit_suite(void) {
  Suite *s = suite_create("junit");
  TCase *model = tcase_create("report");
  tcase_add_test(model, test_verdict_names_round_trip);
  tcase_add_test(model, test_report_create_fills_run_fields);
  tcase_add_test(model, test_report_cases_properties_and_counts);
  suite_add_tcase(s, model);

  TCase *xml = tcase_create("xml");
  tcase_add_checked_fixture(xml, setup, teardown);
  tcase_set_timeout(xml, 120);
  tcase_add_test(xml, test_every_verdict_maps_and_validates);
  tcase_add_test(xml, test_strict_turns_non_strict_and_xpass_into_failures);
  tcase_add_test(xml, test_empty_report_validates);
  tcase_add_test(xml, test_missing_and_bad_fields_fall_back);
  tcase_add_test(xml, test_markup_and_unicode_round_trip);
  tcase_add_test(xml, test_control_characters_are_made_visible);
  tcase_add_test(xml, test_invalid_utf8_becomes_replacement_characters);
  tcase_add_test(xml, test_very_long_evidence_is_kept_whole);
  tcase_add_test(xml, test_numbers_do_not_depend_on_locale);
  suite_add_tcase(s, xml);

  TCase *files = tcase_create("files");
  tcase_add_checked_fixture(files, setup, teardown);
  tcase_add_test(files, test_missing_directory_fails_cleanly);
  tcase_add_test(files, test_existing_file_is_replaced_whole);
  tcase_add_test(files, test_directory_in_the_way_fails_cleanly);
  tcase_add_test(files, test_write_error_keeps_previous_report);
  tcase_add_test(files, test_stream_write_error_is_reported);
  suite_add_tcase(s, files);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(junit_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
