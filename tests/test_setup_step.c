/* Tests of harness/setup_step.c (a profile's setup command, run as a real process) and
 * harness/db_vars.c (the {db_*} placeholders from a connection string).
 * Contracts: harness/setup_step.h, harness/db_vars.h; format: docs/PROFILES.md. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_vars.h"
#include "profile.h"
#include "rc_clock.h"
#include "setup_step.h"
#include "sut.h"
#include "test_support.h"

static char *tmp_dir;

static void setup(void) {
  tmp_dir = test_make_temp_dir("rc-setup");
  ck_assert_msg(tmp_dir != NULL, "cannot create a temporary directory");
  sut_become_subreaper(NULL);
}

static void teardown(void) {
  test_remove_tree(tmp_dir);
  free(tmp_dir);
  tmp_dir = NULL;
}

/* Loads a profile whose setup is `setup_json` (single quotes become double quotes). */
static profile_t *profile_with_setup(const char *setup_json) {
  char *text = NULL;
  ck_assert_int_ge(asprintf(&text,
                            "{'format': 1, 'name': 'n', 'dialect': 'modern', 'era': '1.66', "
                            "'command': ['w'], 'env': {'RC_SETUP_VAR': 'from-env'}, 'setup': %s}",
                            setup_json),
                   0);
  for (char *c = text; *c != '\0'; c++)
    if (*c == '\'') *c = '"';
  char *path = test_path(tmp_dir, "p.json");
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  rc_error_t err = {{0}};
  profile_t *p = profile_load(path, &err);
  ck_assert_msg(p != NULL, "profile does not load: %s", err.msg);
  free(path);
  free(text);
  return p;
}

static int run_step(const profile_t *p, int timeout_ms, rc_error_t *err) {
  char *output = test_path(tmp_dir, "setup-output.txt");
  const profile_var_t vars[] = {{"work_dir", tmp_dir}, {"db_name", "rcdb"}};
  setup_step_spec_t spec = {.profile = p, .vars = vars, .var_count = 2, .work_dir = tmp_dir,
                            .output_path = output, .timeout_ms = timeout_ms, .grace_ms = 2000};
  int rc = setup_step_run(&spec, err);
  free(output);
  return rc;
}

/* Exit 0 is success; the config template is written first, with the profile's env. */
START_TEST(test_success_writes_config) {
  char *tmpl = test_path(tmp_dir, "s.in");
  ck_assert_int_eq(test_write_file(tmpl, "name={db_name}\n", strlen("name={db_name}\n")), 0);
  free(tmpl);
  profile_t *p = profile_with_setup(
      "{'config_template': {'source': 's.in', 'output': '{work_dir}/s.conf'}, "
      "'command': ['/bin/sh', '-c', 'cat {work_dir}/s.conf > {work_dir}/seen; echo $RC_SETUP_VAR >> {work_dir}/seen']}");
  rc_error_t err = {{0}};
  ck_assert_msg(run_step(p, 10000, &err) == 0, "setup failed: %s", err.msg);
  char *seen_path = test_path(tmp_dir, "seen");
  char *seen = test_read_file(seen_path, NULL);
  ck_assert_ptr_nonnull(seen);
  ck_assert_str_eq(seen, "name=rcdb\nfrom-env\n");
  free(seen);
  free(seen_path);
  profile_destroy(p);
}
END_TEST

/* A non-zero exit is an error naming the program, the status and the last lines. */
START_TEST(test_failure_names_status_and_output) {
  profile_t *p = profile_with_setup("{'command': ['/bin/sh', '-c', 'echo schema broken; exit 3']}");
  rc_error_t err = {{0}};
  ck_assert_int_eq(run_step(p, 10000, &err), -1);
  ck_assert_msg(strstr(err.msg, "setup '/bin/sh' exited with status 3") != NULL, "got: %s", err.msg);
  ck_assert_msg(strstr(err.msg, "schema broken") != NULL, "got: %s", err.msg);
  profile_destroy(p);
}
END_TEST

/* With stop_on, a matching output line ends the step: it is stopped, and that is success. */
START_TEST(test_stop_on_stops_a_server) {
  profile_t *p = profile_with_setup(
      "{'command': ['/bin/sh', '-c', 'echo starting; sleep 0.2; echo db {db_name} ready; exec sleep 61.234'], "
      "'stop_on': '^db {db_name} ready$'}");
  rc_error_t err = {{0}};
  int64_t start = rc_clock_mono_ms();
  ck_assert_msg(run_step(p, 20000, &err) == 0, "setup failed: %s", err.msg);
  int64_t took = rc_clock_mono_ms() - start;
  ck_assert_msg(took < 10000, "the step was not stopped after its line (took %lld ms)", (long long)took);
  ck_assert_int_eq(test_find_process("sleep", "61.234"), 0);
  profile_destroy(p);
}
END_TEST

/* The deadline holds: a step that never finishes is stopped and reported. */
START_TEST(test_deadline) {
  profile_t *p = profile_with_setup("{'command': ['/bin/sh', '-c', 'echo waiting; exec sleep 61.234'], "
                                    "'stop_on': 'never'}");
  rc_error_t err = {{0}};
  ck_assert_int_eq(run_step(p, 300, &err), -1);
  ck_assert_msg(strstr(err.msg, "did not finish within 300 ms (nor print a line matching setup.stop_on)") != NULL,
                "got: %s", err.msg);
  ck_assert_msg(strstr(err.msg, "waiting") != NULL, "got: %s", err.msg);
  profile_destroy(p);
}
END_TEST

/* An {env:NAME} that is not set fails before anything runs, naming it. */
START_TEST(test_unset_env_placeholder) {
  unsetenv("RC_SETUP_UNSET");
  profile_t *p = profile_with_setup("{'command': ['{env:RC_SETUP_UNSET}', '-m', 'x']}");
  rc_error_t err = {{0}};
  ck_assert_int_eq(run_step(p, 1000, &err), -1);
  ck_assert_msg(strstr(err.msg, "setup.command[0]") != NULL &&
                    strstr(err.msg, "environment variable RC_SETUP_UNSET is not set") != NULL,
                "got: %s", err.msg);
  profile_destroy(p);
}
END_TEST

START_TEST(test_dsn_parts) {
  db_vars_t v;
  rc_error_t err = {{0}};
  ck_assert_int_eq(db_vars_parse("host=127.0.0.1 port=5433 dbname=syn user=pg application_name=rc",
                                 &v, &err), 0);
  ck_assert(v.present);
  ck_assert_str_eq(v.host, "127.0.0.1");
  ck_assert_str_eq(v.port, "5433");
  ck_assert_str_eq(v.name, "syn");
  ck_assert_str_eq(v.user, "pg");
  ck_assert_str_eq(v.dsn, "host=127.0.0.1 port=5433 dbname=syn user=pg application_name=rc");
  profile_var_t list[DB_VARS_COUNT];
  ck_assert_uint_eq(db_vars_list(&v, list, DB_VARS_COUNT), DB_VARS_COUNT);
  ck_assert_str_eq(list[3].name, "db_name");
  ck_assert_str_eq(list[3].value, "syn");
  /* Quoted values, blanks around '=', libpq's defaults. */
  ck_assert_int_eq(db_vars_parse(" user = 'o\\'neil'  host='/run/a b' ", &v, &err), 0);
  ck_assert_str_eq(v.user, "o'neil");
  ck_assert_str_eq(v.host, "/run/a b");
  ck_assert_str_eq(v.port, "5432");
  ck_assert_str_eq(v.name, "o'neil");
}
END_TEST

START_TEST(test_dsn_errors) {
  db_vars_t v;
  rc_error_t err = {{0}};
  ck_assert_int_eq(db_vars_parse("host=h dbname", &v, &err), -1);
  ck_assert_str_eq(err.msg, "connection string: expected keyword=value at offset 7");
  ck_assert_int_eq(db_vars_parse("host='h", &v, &err), -1);
  ck_assert_str_eq(err.msg, "connection string: unterminated quoted value at offset 7");
  ck_assert_int_eq(db_vars_parse("port=54x", &v, &err), -1);
  ck_assert_str_eq(err.msg, "connection string: port '54x' is not a number");
  setenv(DB_VARS_ENV, "host=h =x", 1);
  ck_assert_int_eq(db_vars_from_env(&v, &err), -1);
  ck_assert_str_eq(err.msg, "REPLCHECK_DB_DSN: connection string: expected keyword=value at offset 7");
  unsetenv(DB_VARS_ENV);
  ck_assert_int_eq(db_vars_from_env(&v, &err), 0);
  ck_assert(!v.present);
  profile_var_t list[DB_VARS_COUNT];
  ck_assert_uint_eq(db_vars_list(&v, list, DB_VARS_COUNT), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("setup_step");
  TCase *step = tcase_create("step");
  tcase_add_checked_fixture(step, setup, teardown);
  tcase_set_timeout(step, 60);
  tcase_add_test(step, test_success_writes_config);
  tcase_add_test(step, test_failure_names_status_and_output);
  tcase_add_test(step, test_stop_on_stops_a_server);
  tcase_add_test(step, test_deadline);
  tcase_add_test(step, test_unset_env_placeholder);
  suite_add_tcase(s, step);
  TCase *dsn = tcase_create("db_vars");
  tcase_add_test(dsn, test_dsn_parts);
  tcase_add_test(dsn, test_dsn_errors);
  suite_add_tcase(s, dsn);
  return test_run_suite(s);
}
