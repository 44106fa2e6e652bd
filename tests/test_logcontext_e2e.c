/* The logcontext suite end to end over every log format the harness reads: the real
 * replcheck against refworker writing its log as Synapse's text (the current and the
 * pre-v0.27 separator, both read with "format": "synapse-text") and as JSON lines
 * (read with "format": "json-lines"). Without a bug every logcontext test and the
 * log-based BG-05 check pass; with --bug logcontext-leak the LC-06 test and the
 * passive LC-04 check fail, so the log was really read in each format. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#define SELECTORS "'logcontext/*' background/handler-error/logged protocol/passive/wire-grammar"

static char *work;

static void setup(void) {
  work = test_make_temp_dir("replcheck-logcontext-e2e");
}
static void teardown(void) {
  test_remove_tree(work);
  free(work);
}

/* profiles/refworker.json with refworker writing `log_format` (and `bug`, if any) and
 * the harness reading `harness_format`. Returns the variant's path. */
static char *variant(const char *log_format, const char *harness_format, const char *bug) {
  char *src = test_path(test_env("REPLCHECK_SOURCE_DIR"), "profiles/refworker.json");
  json_error_t jerr;
  json_t *doc = json_load_file(src, 0, &jerr);
  ck_assert_msg(doc != NULL, "%s: %s", src, jerr.text);
  json_t *command = json_object_get(doc, "command");
  json_array_append_new(command, json_string("--log-format"));
  json_array_append_new(command, json_string(log_format));
  if (bug != NULL) {
    json_array_append_new(command, json_string("--bug"));
    json_array_append_new(command, json_string(bug));
  }
  json_object_set_new(doc, "log",
                      json_pack("{s:s, s:s}", "path", "{log_path}", "format", harness_format));
  char name[128];
  snprintf(name, sizeof name, "%s-%s.json", log_format, bug ? bug : "none");
  char *out = test_path(work, name);
  ck_assert_int_eq(json_dump_file(doc, out, JSON_INDENT(2)), 0);
  json_decref(doc);
  free(src);
  return out;
}

/* Runs the selection; returns the JSON report (caller frees). */
static json_t *run(const char *profile) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && TMPDIR='%s' '%s/replcheck' run --profile '%s' --jobs 2 --progress none "
           "--json report.json " SELECTORS " > out.txt 2>&1",
           work, work, test_env("REPLCHECK_BIN_DIR"), profile);
  int rc = test_run(cmd);
  ck_assert_msg(rc == 0 || rc == 1, "replcheck exited %d (%s/out.txt)", rc, work);
  char *path = test_path(work, "report.json");
  json_error_t jerr;
  json_t *report = json_load_file(path, 0, &jerr);
  ck_assert_msg(report != NULL, "%s: %s", path, jerr.text);
  free(path);
  return report;
}

static const char *verdict_of(json_t *report, const char *id, const char **message) {
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(report, "cases"), i, c) {
    if (strcmp(json_string_value(json_object_get(c, "id")), id) != 0) continue;
    *message = json_string_value(json_object_get(c, "message"));
    return json_string_value(json_object_get(c, "verdict"));
  }
  ck_abort_msg("%s did not run", id);
  return NULL;
}

static void check_format(const char *log_format, const char *harness_format) {
  char *clean = variant(log_format, harness_format, NULL);
  json_t *report = run(clean);
  size_t i, count = 0;
  json_t *c;
  json_array_foreach(json_object_get(report, "cases"), i, c) {
    const char *verdict = json_string_value(json_object_get(c, "verdict"));
    const char *message = json_string_value(json_object_get(c, "message"));
    ck_assert_msg(strcmp(verdict, "PASS") == 0, "%s (%s): %s %s", log_format,
                  json_string_value(json_object_get(c, "id")), verdict, message ? message : "");
    count++;
  }
  ck_assert_uint_eq(count, 7);
  json_decref(report);
  char *leaky = variant(log_format, harness_format, "logcontext-leak");
  report = run(leaky);
  const char *message = NULL;
  const char *verdict = verdict_of(report, "logcontext/reactor/sentinel", &message);
  ck_assert_msg(strcmp(verdict, "FAIL") == 0 && strstr(message, "after readiness") != NULL,
                "%s: %s %s", log_format, verdict, message ? message : "");
  verdict = verdict_of(report, "protocol/passive/wire-grammar", &message);
  ck_assert_msg(strcmp(verdict, "FAIL") == 0 && strstr(message, "LC-04: ") != NULL, "%s: %s %s",
                log_format, verdict, message ? message : "");
  json_decref(report);
  free(clean);
  free(leaky);
}

START_TEST(test_text) {
  check_format("synapse-text", "synapse-text");
}
END_TEST

START_TEST(test_text_pre_v027) {
  check_format("synapse-text-pre-v0.27", "synapse-text");
}
END_TEST

START_TEST(test_json_lines) {
  check_format("json-lines", "json-lines");
}
END_TEST

static Suite *e2e_suite(void) {
  Suite *s = suite_create("logcontext_e2e");
  TCase *tc = tcase_create("formats");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_text);
  tcase_add_test(tc, test_text_pre_v027);
  tcase_add_test(tc, test_json_lines);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(e2e_suite());
}
