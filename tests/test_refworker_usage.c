/* refworker's command line (reference/refworker_options.c): usage errors are refused with
 * exit status 2 and a message naming the option, before the worker starts anything; the
 * help text documents every option. The worker itself is tested by test_refworker.c
 * (TCP), test_refworker_catchup.c (HTTP catch-up) and test_refworker_redis.c (Redis). */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static char *temp_dir;

static void setup(void) {
  temp_dir = test_make_temp_dir("test_refworker_usage");
  ck_assert_ptr_nonnull(temp_dir);
}

static void teardown(void) {
  test_remove_tree(temp_dir);
  free(temp_dir);
  temp_dir = NULL;
}

static int run_refworker(const char *args, const char *out_name) {
  char *out = test_path(temp_dir, out_name);
  char command[2048];
  snprintf(command, sizeof command, "'%s/refworker' %s >'%s' 2>&1", test_env("REPLCHECK_BIN_DIR"),
           args, out);
  int rc = test_run(command);
  free(out);
  return rc;
}

static bool output_contains(const char *out_name, const char *needle) {
  char *out = test_path(temp_dir, out_name);
  char *text = test_read_file(out, NULL);
  bool found = text != NULL && strstr(text, needle) != NULL;
  free(text);
  free(out);
  return found;
}

/* --help and --version exit 0; bad usage exits 2 with a message naming the option and
 * what is wrong (refworker_options.c), before anything starts. */
START_TEST(test_usage) {
  ck_assert_int_eq(run_refworker("--help", "help.txt"), 0);
  ck_assert(output_contains("help.txt", "--stream NAME[=TOKEN]"));
  ck_assert_int_eq(run_refworker("--version", "version.txt"), 0);
  ck_assert(output_contains("version.txt", "refworker "));
  const struct {
    const char *args;
    const char *message;
  } bad[] = {
      {"--port 1 --server-name s --dialect modern --log /dev/null",
       "--host (or --redis) is required"},
      {"--redis h:1 --port 1 --server-name s --dialect modern --log /dev/null",
       "--redis replaces --host and --port"},
      {"--redis h:1 --server-name s --dialect 2018 --log /dev/null",
       "--redis needs --dialect modern"},
      {"--redis h --server-name s --dialect modern --log /dev/null", "--redis: expected HOST:PORT"},
      {"--redis h:0 --server-name s --dialect modern --log /dev/null",
       "the port must be in 1..65535"},
      {"--host h --port 1 --server-name s --dialect 2018 --log /dev/null --http-url http://h:1",
       "--http-url needs --dialect modern"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-timeout-ms 0",
       "--http-timeout-ms"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-url ftp://h:1",
       "only http:// URLs are supported"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-url "
       "http://h:1/x?y=1",
       "without user, query or fragment"},
      {"--host h --port 1 --server-name s --dialect 2019 --log /dev/null", "--dialect"},
      {"--host h --port 0 --server-name s --dialect modern --log /dev/null", "--port"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --stream a=x",
       "--stream 'a=x'"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --ping-timeout-ms -5",
       "--ping-timeout-ms"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --bogus",
       "unknown option '--bogus'"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-port 65536",
       "--http-port: expected a TCP port in 0..65535"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --cache x:1000",
       "--cache 'x:1000': expected NAME:EXPIRY_MS:MAX_LEN[:reset-on-get]"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --cache 'a b:1:1'",
       "the name may only hold letters"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --cache x:1:1 "
       "--cache x:2:2",
       "cache x is given twice"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --bug no-such-bug",
       "--bug: unknown bug 'no-such-bug'"},
      {"--host h --port 1 --server-name s --dialect 2018 --log /dev/null --remote r=http://h:1",
       "--remote needs --fedsender"},
      {"--host h --port 1 --server-name s --dialect 2018 --log /dev/null --fedsender --remote r",
       "--remote 'r': expected NAME=URL"},
      {"--host h --port 1 --server-name s --dialect 2018 --log /dev/null --bug "
       "presence-per-destination",
       "--bug presence-per-destination needs --fedsender"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --sync",
       "--sync needs at least one --user"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --user @a:t=tok",
       "--user needs --http-port"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-port 0 "
       "--user a:t=tok",
       "--user: expected USER_ID=TOKEN[=DEVICE_ID]"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-port 0 "
       "--user @a:t=",
       "--user: expected USER_ID=TOKEN[=DEVICE_ID]"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-port 0 "
       "--user @a:t=tok --user @b:t=tok",
       "access token tok is given twice"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --http-port 0 "
       "--user @a:t=tok --bug no-user-sync-on-reconnect",
       "--bug no-user-sync-on-reconnect needs --sync"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --bug "
       "user-ip-every-request",
       "--bug user-ip-every-request needs --user"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --bug "
       "federation-unknown-row-aborts-unit",
       "--bug federation-unknown-row-aborts-unit needs --fedsender"},
      {"--host h --port 1 --server-name s --dialect modern --log /dev/null --fedsender --bug "
       "federation-position-error-acked",
       "--bug federation-position-error-acked needs --db"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = run_refworker(bad[i].args, "bad.txt");
    ck_assert_msg(rc == 2 && output_contains("bad.txt", bad[i].message),
                  "usage error for '%s'\n  Expected: exit 2 and a message with '%s'\n"
                  "  Actual: exit %d",
                  bad[i].args, bad[i].message, rc);
  }
}
END_TEST

/* The help text names every option. */
START_TEST(test_help_lists_options) {
  ck_assert_int_eq(run_refworker("--help", "help.txt"), 0);
  const char *options[] = {"--host",
                           "--port",
                           "--redis",
                           "--server-name",
                           "--dialect",
                           "--log",
                           "--instance-name",
                           "--log-format",
                           "--http-url",
                           "--http-timeout-ms",
                           "--ping-interval-ms",
                           "--ping-timeout-ms",
                           "--reconnect-initial-ms",
                           "--reconnect-max-ms",
                           "--redis-ping-interval-ms",
                           "--stream",
                           "--http-port",
                           "--cache",
                           "--fedsender",
                           "--remote",
                           "--bug",
                           "--list-bugs",
                           "--version"};
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    ck_assert_msg(output_contains("help.txt", options[i]), "--help does not mention %s",
                  options[i]);
}
END_TEST

/* --list-bugs: NAME<TAB>SEED<TAB>description per bug (the self-test matrix reads it). */
START_TEST(test_list_bugs) {
  ck_assert_int_eq(run_refworker("--list-bugs", "bugs.txt"), 0);
  static const char *const lines[] = {"cache-needs-start\tA\t",
                                      "handlers-not-background\tC\t",
                                      "fire-and-forget\tD\t",
                                      "missing-server-header\tE\t",
                                      "unhandled-background-error\tG\t",
                                      "presence-per-destination\tH\t",
                                      "logcontext-leak\tI\t",
                                      "replication-socket-leak-on-reconnect\t-\t",
                                      "http-conn-leak\t-\t",
                                      "http-conn-open-on-shutdown\t-\t"};
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    ck_assert_msg(output_contains("bugs.txt", lines[i]), "--list-bugs lacks '%s'", lines[i]);
}
END_TEST

static Suite *usage_suite(void) {
  Suite *s = suite_create("refworker_usage");
  TCase *tc = tcase_create("usage");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_usage);
  tcase_add_test(tc, test_help_lists_options);
  tcase_add_test(tc, test_list_bugs);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(usage_suite());
}
