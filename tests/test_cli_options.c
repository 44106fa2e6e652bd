/* Unit tests of the command line's parts: the option table (command line, environment,
 * precedence, every error naming its option or variable, generated --help and
 * --help-env), verdict mapping for expected failures and the closing counts, progress
 * lines and ETA, and the list formats. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_options.h"
#include "listing.h"
#include "progress.h"
#include "runner.h"
#include "test_support.h"

/* ---- the option table ------------------------------------------------------------- */

static int parse_args(cli_config_t *c, rc_error_t *err, int argc, const char **argv) {
  return cli_parse(argc, (char **)argv, c, err);
}
#define PARSE(c, err, ...)                                                                     \
  parse_args(c, err,                                                                           \
             (int)(sizeof((const char *[]){"replcheck", __VA_ARGS__}) / sizeof(const char *)), \
             (const char *[]){"replcheck", __VA_ARGS__})

static void clear_env(void) {
  const char *names[] = {"REPLCHECK_PROFILE",        "REPLCHECK_FILTER", "REPLCHECK_JOBS",
                         "REPLCHECK_STRICT",         "REPLCHECK_SEED",   "REPLCHECK_FORMAT",
                         "REPLCHECK_TIMEOUT_FACTOR", "REPLCHECK_JUNIT",  "REPLCHECK_BIN_DIR"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unsetenv(names[i]);
}

START_TEST(options_from_the_command_line) {
  clear_env();
  cli_config_t c;
  rc_error_t err;
  ck_assert_int_eq(
      PARSE(&c, &err, "run", "--profile", "p.json", "protocol", "--jobs", "3", "--filter",
            "!tag:slow", "--strict", "--shard", "2/3", "--repeat", "4", "--retry", "2", "--seed",
            "18446744073709551615", "--timeout-factor", "2.5", "--progress", "none", "--min", "0",
            "--keep-logs", "--list", "--junit", "j.xml", "--html", "h.html", "--json", "r.json",
            "--expected-failures", "xf.txt", "--bin-dir", "/b"),
      0);
  ck_assert_int_eq(c.action, CLI_ACTION_RUN);
  ck_assert_str_eq(c.profile_path, "p.json");
  ck_assert_uint_eq(c.selector_count, 2);
  ck_assert_str_eq(c.selectors[0], "!tag:slow"); /* options first: getopt permutes */
  ck_assert_str_eq(c.selectors[1], "protocol");
  ck_assert_uint_eq(c.jobs, 3);
  ck_assert(c.strict && c.keep_logs && c.list_only && c.seed_given);
  ck_assert_uint_eq(c.shard_index, 2);
  ck_assert_uint_eq(c.shard_count, 3);
  ck_assert_uint_eq(c.repeat, 4);
  ck_assert_uint_eq(c.retry, 2);
  ck_assert(c.seed == UINT64_MAX);
  ck_assert(c.timeout_factor == 2.5);
  ck_assert_int_eq(c.progress, PROGRESS_NONE);
  ck_assert_uint_eq(c.min_selected, 0);
  ck_assert_str_eq(c.junit_path, "j.xml");
  ck_assert_str_eq(c.html_path, "h.html");
  ck_assert_str_eq(c.json_path, "r.json");
  ck_assert_str_eq(c.expected_failures_path, "xf.txt");
  ck_assert_str_eq(c.bin_dir, "/b");
  cli_config_clear(&c);

  ck_assert_int_eq(PARSE(&c, &err, "list", "--format", "markdown", "tag:slow"), 0);
  ck_assert_int_eq(c.action, CLI_ACTION_LIST);
  ck_assert_int_eq(c.format, LISTING_MARKDOWN);
  ck_assert_uint_eq(c.jobs, 1); /* defaults */
  ck_assert_uint_eq(c.min_selected, 1);
  ck_assert(!c.seed_given && c.timeout_factor == 1.0);
  cli_config_clear(&c);

  ck_assert_int_eq(PARSE(&c, &err, "--help-env"), 0);
  ck_assert_int_eq(c.action, CLI_ACTION_HELP_ENV);
  cli_config_clear(&c);
  ck_assert_int_eq(PARSE(&c, &err, "run", "--jobs", "2", "--help"), 0);
  ck_assert_int_eq(c.action, CLI_ACTION_HELP);
  cli_config_clear(&c);
}
END_TEST

START_TEST(option_errors_name_the_option) {
  clear_env();
  static const struct {
    const char *args[4];
    const char *message;
  } cases[] = {
      {{"run", "--jobs", "0"}, "--jobs: expected a number of jobs in 1..64, got '0'"},
      {{"run", "--jobs", "65"}, "--jobs: expected a number of jobs in 1..64, got '65'"},
      {{"run", "--jobs", "2x"}, "--jobs: expected a number of jobs in 1..64, got '2x'"},
      {{"run", "--shard", "3/2"}, "--shard: shard 3/2: K must not exceed N"},
      {{"run", "--shard", "x"}, "--shard: expected K/N"},
      {{"run", "--repeat", "0"}, "--repeat: expected a repeat count in 1..1000, got '0'"},
      {{"run", "--retry", "101"}, "--retry: expected a retry count in 0..100, got '101'"},
      {{"run", "--seed", "18446744073709551616"}, "--seed: expected a decimal number"},
      {{"run", "--seed", "-1"}, "--seed: expected a decimal number"},
      {{"run", "--timeout-factor", "0"}, "--timeout-factor: expected a number like 2 or 1.5"},
      {{"run", "--timeout-factor", "1,5"}, "--timeout-factor: expected a number like 2 or 1.5"},
      {{"run", "--timeout-factor", "101"}, "--timeout-factor: expected a number like 2 or 1.5"},
      {{"run", "--progress", "fancy"}, "--progress: expected auto, plain or none, got 'fancy'"},
      {{"run", "--min", "x"}, "--min: expected a number of tests"},
      {{"run", "--format", "json"}, "--format is not an option of `replcheck run`"},
      {{"list", "--jobs", "2"}, "--jobs is not an option of `replcheck list`"},
      {{"run", "--frobnicate"}, "unknown option '--frobnicate'"},
      {{"run", "--jobs"}, "--jobs: needs an argument"},
      {{"walk"}, "unknown command 'walk' (expected 'list' or 'run')"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *argv[5] = {"replcheck"};
    int argc = 1;
    for (int a = 0; a < 4 && cases[i].args[a] != NULL; a++) argv[argc++] = cases[i].args[a];
    cli_config_t c;
    rc_error_t err;
    ck_assert_msg(parse_args(&c, &err, argc, argv) == -1, "case %zu accepted", i);
    ck_assert_msg(strncmp(err.msg, cases[i].message, strlen(cases[i].message)) == 0,
                  "case %zu: got '%s'", i, err.msg);
    cli_config_clear(&c);
  }
  cli_config_t c;
  rc_error_t err;
  const char *argv[] = {"replcheck"};
  ck_assert_int_eq(parse_args(&c, &err, 1, argv), -1);
  ck_assert_str_eq(err.msg, "no command given (expected 'run' or 'list')");
  cli_config_clear(&c);
}
END_TEST

START_TEST(options_from_the_environment) {
  clear_env();
  setenv("REPLCHECK_PROFILE", "env.json", 1);
  setenv("REPLCHECK_FILTER", " protocol/handshake\t!tag:slow  ", 1);
  setenv("REPLCHECK_JOBS", "4", 1);
  setenv("REPLCHECK_STRICT", "yes", 1);
  setenv("REPLCHECK_SEED", "7", 1);
  setenv("REPLCHECK_JUNIT", "", 1);              /* empty = unset */
  setenv("REPLCHECK_FORMAT", "not-a-format", 1); /* list-only: ignored by run */
  cli_config_t c;
  rc_error_t err;
  ck_assert_int_eq(PARSE(&c, &err, "run"), 0);
  ck_assert_str_eq(c.profile_path, "env.json");
  ck_assert_uint_eq(c.selector_count, 2);
  ck_assert_str_eq(c.selectors[0], "protocol/handshake");
  ck_assert_str_eq(c.selectors[1], "!tag:slow");
  ck_assert_uint_eq(c.jobs, 4);
  ck_assert(c.strict && c.seed_given && c.seed == 7);
  ck_assert_ptr_null(c.junit_path);
  cli_config_clear(&c);

  /* The command line wins; its selectors replace the environment's. */
  ck_assert_int_eq(PARSE(&c, &err, "run", "--jobs", "1", "--profile", "cli.json", "presence"), 0);
  ck_assert_str_eq(c.profile_path, "cli.json");
  ck_assert_uint_eq(c.jobs, 1);
  ck_assert_uint_eq(c.selector_count, 1);
  ck_assert_str_eq(c.selectors[0], "presence");
  cli_config_clear(&c);

  ck_assert_int_eq(PARSE(&c, &err, "list"), -1);
  ck_assert_str_eq(err.msg,
                   "REPLCHECK_FORMAT: expected text, markdown or json, got "
                   "'not-a-format'");
  cli_config_clear(&c);
  unsetenv("REPLCHECK_FORMAT");

  setenv("REPLCHECK_STRICT", "maybe", 1);
  ck_assert_int_eq(PARSE(&c, &err, "run"), -1);
  ck_assert_str_eq(err.msg,
                   "REPLCHECK_STRICT: expected 1/true/yes/on or 0/false/no/off, got "
                   "'maybe'");
  cli_config_clear(&c);
  setenv("REPLCHECK_STRICT", "off", 1);
  setenv("REPLCHECK_JOBS", "many", 1);
  ck_assert_int_eq(PARSE(&c, &err, "run"), -1);
  ck_assert_str_eq(err.msg, "REPLCHECK_JOBS: expected a number of jobs in 1..64, got 'many'");
  cli_config_clear(&c);
  setenv("REPLCHECK_JOBS", "2", 1);
  setenv("REPLCHECK_TIMEOUT_FACTOR", "0.5", 1);
  ck_assert_int_eq(PARSE(&c, &err, "run"), 0);
  ck_assert(!c.strict);
  ck_assert(c.timeout_factor == 0.5);
  cli_config_clear(&c);
  clear_env();
}
END_TEST

START_TEST(help_is_generated_from_the_table) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cli_print_help(f);
  fclose(f);
  const char *options[] = {"--profile FILE", "--filter SELECTOR", "--junit PATH",
                           "--html PATH",    "--json PATH",       "--keep-logs",
                           "--bin-dir DIR",  "--strict",          "--expected-failures FILE",
                           "--min N",        "--jobs N",          "--shard K/N",
                           "--repeat N",     "--seed N",          "--timeout-factor F",
                           "--retry N",      "--progress MODE",   "--list",
                           "--format FMT",   "130 interrupted"};
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    ck_assert_msg(strstr(buf, options[i]) != NULL, "--help lacks '%s'", options[i]);
  for (char *line = buf; *line;) {
    char *end = strchrnul(line, '\n');
    ck_assert_msg(end - line <= 80, "--help line too long: %.*s", (int)(end - line), line);
    line = *end ? end + 1 : end;
  }
  free(buf);
  f = open_memstream(&buf, &len);
  cli_print_help_env(f);
  fclose(f);
  const char *vars[] = {
      "REPLCHECK_PROFILE=FILE", "REPLCHECK_FILTER=",   "REPLCHECK_JUNIT=",
      "REPLCHECK_HTML=",        "REPLCHECK_JSON=",     "REPLCHECK_KEEP_LOGS=1|0",
      "REPLCHECK_BIN_DIR=",     "REPLCHECK_STRICT=",   "REPLCHECK_EXPECTED_FAILURES=",
      "REPLCHECK_MIN=",         "REPLCHECK_JOBS=N",    "REPLCHECK_SHARD=K/N",
      "REPLCHECK_REPEAT=",      "REPLCHECK_SEED=",     "REPLCHECK_TIMEOUT_FACTOR=F",
      "REPLCHECK_RETRY=",       "REPLCHECK_PROGRESS=", "REPLCHECK_LIST=",
      "REPLCHECK_FORMAT="};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    ck_assert_msg(strstr(buf, vars[i]) != NULL, "--help-env lacks '%s'", vars[i]);
  free(buf);
}
END_TEST

START_TEST(factor_parsing_ignores_the_locale) {
  double f = 0;
  ck_assert_int_eq(cli_parse_factor("2", 100, &f), 0);
  ck_assert(f == 2.0);
  ck_assert_int_eq(cli_parse_factor("0.25", 100, &f), 0);
  ck_assert(f == 0.25);
  ck_assert_int_eq(cli_parse_factor(".5", 100, &f), 0);
  ck_assert(f == 0.5);
  ck_assert_int_eq(cli_parse_factor("100", 100, &f), 0);
  const char *bad[] = {"", ".", "0", "0.0", "1,5", "-1", "1e3", "100.01", "2 ", "abc", NULL};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(cli_parse_factor(bad[i], 100, &f) == -1, "'%s' accepted", bad[i]);
}
END_TEST

/* ---- verdicts, counts, progress ------------------------------------------------------ */

START_TEST(expected_failure_mapping_and_counts) {
  report_t *r = report_create(NULL);
  verdict_t in[] = {VERDICT_PASS, VERDICT_FAIL, VERDICT_NON_STRICT, VERDICT_ERROR, VERDICT_SKIP};
  verdict_t out[] = {VERDICT_XPASS, VERDICT_XFAIL, VERDICT_XFAIL, VERDICT_XFAIL, VERDICT_SKIP};
  for (size_t i = 0; i < 5; i++) {
    report_case_t *c = report_add_case(r);
    c->verdict = in[i];
    report_set(&c->message, i == 0 ? NULL : "KA-01: too slow");
    runner_apply_expected(c, "xf.txt:3", "issue #9");
    ck_assert_int_eq(c->verdict, out[i]);
  }
  ck_assert_str_eq(r->cases[0].message,
                   "passed, but listed as expected to fail (xf.txt:3: issue #9)");
  ck_assert_str_eq(r->cases[1].message,
                   "expected failure (xf.txt:3: issue #9); FAIL: KA-01: "
                   "too slow");
  ck_assert_str_eq(r->cases[4].message, "KA-01: too slow");
  /* Now: XPASS, XFAIL x3, SKIP; add PASS, NON_STRICT, FAIL, ERROR. */
  verdict_t more[] = {VERDICT_PASS, VERDICT_NON_STRICT, VERDICT_FAIL, VERDICT_ERROR};
  for (size_t i = 0; i < 4; i++) report_add_case(r)->verdict = more[i];
  size_t passed, failed, skipped;
  runner_count(r, false, &passed, &failed, &skipped);
  ck_assert_uint_eq(passed, 6); /* PASS, NON_STRICT, XPASS, 3 XFAIL */
  ck_assert_uint_eq(failed, 2);
  ck_assert_uint_eq(skipped, 1);
  runner_count(r, true, &passed, &failed, &skipped);
  ck_assert_uint_eq(passed, 4); /* PASS, 3 XFAIL */
  ck_assert_uint_eq(failed, 4); /* FAIL, ERROR, NON_STRICT, XPASS */
  ck_assert_uint_eq(skipped, 1);
  report_destroy(r);
}
END_TEST

START_TEST(progress_lines_and_eta) {
  char buf[64];
  progress_format_seconds(1.25, buf, sizeof buf);
  ck_assert_str_eq(buf, "1.3s");
  progress_format_seconds(-3, buf, sizeof buf);
  ck_assert_str_eq(buf, "0.0s");
  progress_format_eta(2.0, 10, 1, buf, sizeof buf);
  ck_assert_str_eq(buf, "ETA 20s");
  progress_format_eta(2.0, 10, 3, buf, sizeof buf); /* 4 rounds of 3 */
  ck_assert_str_eq(buf, "ETA 8s");
  progress_format_eta(1.5, 100, 1, buf, sizeof buf);
  ck_assert_str_eq(buf, "ETA 2m30s");
  progress_format_eta(100, 100, 1, buf, sizeof buf);
  ck_assert_str_eq(buf, "ETA 2h46m");
  progress_format_eta(0.1, 1, 0, buf, sizeof buf);
  ck_assert_str_eq(buf, "ETA 1s");

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  progress_t p;
  progress_init(&p, f, PROGRESS_AUTO, 3, 2);
  ck_assert(!p.eta); /* not a terminal */
  report_case_t c = {.id = "a/b", .verdict = VERDICT_PASS, .seconds = 1.2};
  progress_case(&p, &c, 2);
  report_case_t s = {.id = "a/c", .verdict = VERDICT_SKIP, .message = "not run: interrupted"};
  progress_case(&p, &s, 0);
  fclose(f);
  ck_assert_str_eq(text,
                   "[1/3] PASS a/b (1.2s) RETRIED 2 times\n"
                   "[2/3] SKIP a/c (0.0s)\n      reason: not run: interrupted\n");
  free(text);
  f = open_memstream(&text, &len);
  progress_init(&p, f, PROGRESS_NONE, 1, 1);
  progress_case(&p, &c, 0);
  fclose(f);
  ck_assert_str_eq(text, "");
  free(text);
}
END_TEST

START_TEST(listing_formats) {
  const rc_test_def_t rows[] = {{.id = "a/b",
                                 .requirements = "KA-01,KA-02",
                                 .level = RC_LEVEL_SHOULD,
                                 .requirement = "Pipes | are escaped",
                                 .source = "x.py@1",
                                 .dialects = RC_DIALECT_ALL,
                                 .transports = RC_TRANSPORT_TCP,
                                 .tags = "slow, timing-dependent",
                                 .file = "suites/a.c",
                                 .line = 7}};
  const rc_test_def_t *list[] = {&rows[0]};
  char *text = NULL;
  size_t len = 0;
  rc_error_t err;
  FILE *f = open_memstream(&text, &len);
  ck_assert_int_eq(listing_write(f, LISTING_MARKDOWN, list, 1, NULL, &err), 0);
  fclose(f);
  ck_assert_str_eq(text,
                   "| id | level | requirements | dialects | transports | tags | requirement | "
                   "source |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
                   "| a/b | SHOULD | KA-01,KA-02 | 2018,modern | tcp | slow, timing-dependent | "
                   "Pipes \\| are escaped | x.py@1 |\n");
  free(text);
  f = open_memstream(&text, &len);
  ck_assert_int_eq(listing_write(f, LISTING_JSON, list, 1, NULL, &err), 0);
  fclose(f);
  json_error_t jerr;
  json_t *doc = json_loads(text, 0, &jerr);
  ck_assert_msg(doc != NULL, "%s", jerr.text);
  json_t *row = json_array_get(doc, 0);
  ck_assert_str_eq(json_string_value(json_object_get(row, "id")), "a/b");
  ck_assert_str_eq(json_string_value(json_object_get(row, "level")), "SHOULD");
  ck_assert_uint_eq(json_array_size(json_object_get(row, "requirements")), 2);
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(row, "tags"), 1)),
                   "timing-dependent");
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(row, "dialects"), 1)),
                   "modern");
  ck_assert_int_eq(json_integer_value(json_object_get(row, "line")), 7);
  ck_assert_ptr_null(json_object_get(row, "applies"));
  json_decref(doc);
  free(text);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cli_options");
  TCase *tc = tcase_create("cli_options");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, options_from_the_command_line);
  tcase_add_test(tc, option_errors_name_the_option);
  tcase_add_test(tc, options_from_the_environment);
  tcase_add_test(tc, help_is_generated_from_the_table);
  tcase_add_test(tc, factor_parsing_ignores_the_locale);
  tcase_add_test(tc, expected_failure_mapping_and_counts);
  tcase_add_test(tc, progress_lines_and_eta);
  tcase_add_test(tc, listing_formats);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
