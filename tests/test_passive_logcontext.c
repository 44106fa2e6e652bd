/* Unit tests of harness/passive_logcontext.c: the LC-03/LC-04 texts by era over both
 * log formats and both separators, the LC-04 time bound, and a real Synapse 1.66 log
 * whose only mismatch warning comes after SIGTERM (LC-05's, not LC-04's). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passive.h"
#include "sutlog.h"
#include "test_support.h"

static profile_t era(int major, int minor, int patch, profile_log_format_t format) {
  profile_t p = {.log_format = format, .log_context_field = "request"};
  p.era_major = major;
  p.era_minor = minor;
  p.era_patch = patch;
  return p;
}

START_TEST(test_format_matching) {
  ck_assert(passive_format_matches("Expected logging context %s but found %s",
                                   "Expected logging context GET-1 but found sentinel"));
  ck_assert(passive_format_matches("Re-starting finished log context %s",
                                   "Re-starting finished log context replication-conn-PIHLt"));
  ck_assert(passive_format_matches("Expected previous context %r, found %r",
                                   "Expected previous context 'a', found 'b, c'"));
  ck_assert(passive_format_matches("a %s b", "a  b"));
  ck_assert(!passive_format_matches("Expected logging context %s was lost",
                                    "Expected logging context x was lost, twice"));
  ck_assert(!passive_format_matches("Unexpected logging context: %s is not %s",
                                    "Unexpected logging context: x"));
  ck_assert(passive_format_matches("%s", ""));
}
END_TEST

typedef struct rule_seen {
  const profile_t *profile;
  const char *rule;
} rule_seen_t;

static bool take_rule(const sutlog_record_t *r, void *arg) {
  rule_seen_t *s = arg;
  s->rule = passive_logcontext_rule(s->profile, r);
  return false;
}

static const char *rule_of(const profile_t *p, const char *line) {
  rule_seen_t s = {.profile = p};
  sutlog_parse_line(p, line, strlen(line), 0, take_rule, &s);
  return s.rule;
}

START_TEST(test_rules_by_era) {
  profile_t v0333 = era(0, 33, 3, PROFILE_LOG_SYNAPSE_TEXT);
  profile_t v0331 = era(0, 33, 1, PROFILE_LOG_SYNAPSE_TEXT);
  profile_t v0280 = era(0, 28, 0, PROFILE_LOG_SYNAPSE_TEXT);
  profile_t v166 = era(1, 66, 0, PROFILE_LOG_SYNAPSE_TEXT);
  profile_t v112 = era(1, 12, 0, PROFILE_LOG_SYNAPSE_TEXT);
  const char *txn = "2018-08-22 10:00:00,001 - synapse.storage._base - 1 - WARNING -  - "
                    "Starting db txn 'get_all_updated_receipts' from sentinel context";
  const char *conn_old = "2017-12-01 10:00:00,001 - synapse.storage._base - 1 - WARNING - - "
                         "Starting db connection from sentinel context: metrics will be lost";
  ck_assert_str_eq(rule_of(&v0333, txn), "LC-03");
  ck_assert_str_eq(rule_of(&v0333, conn_old), "LC-03");
  ck_assert_str_eq(rule_of(&v166, txn), "LC-03");
  ck_assert_ptr_null(rule_of(&v0331, txn)); /* no such warning before v0.33.2 */
  const char *txn_start = "2026-11-29 00:25:02,211 - synapse.storage.txn - 691 - DEBUG - "
                          "sentinel - [TXN START] {x-1d}";
  ck_assert_str_eq(rule_of(&v166, txn_start), "LC-03");
  ck_assert_ptr_null(rule_of(&v166, "2026-11-29 00:25:02,211 - synapse.storage.txn - 691 - "
                                    "DEBUG - x-0 - [TXN START] {x-1d}"));
  const char *unexpected = "2018-08-22 10:00:00,001 - synapse.util.logcontext - 1 - WARNING -  - "
                           "Unexpected logging context: GET-4 is not sentinel";
  const char *found = "2020-01-01 10:00:00,001 - synapse.logging.context - 1 - WARNING - GET-4 - "
                      "Expected logging context sentinel but found GET-4";
  const char *restart = "2026-11-29 00:25:07,527 - synapse.logging.context - 81 - WARNING - "
                        "replication-conn-PIHLt - Re-starting finished log context "
                        "replication-conn-PIHLt";
  ck_assert_str_eq(rule_of(&v0333, unexpected), "LC-04");
  ck_assert_ptr_null(rule_of(&v0280, unexpected)); /* DEBUG-only text before v0.29 */
  ck_assert_ptr_null(rule_of(&v166, unexpected));  /* replaced in v1.0 */
  ck_assert_str_eq(rule_of(&v166, found), "LC-04");
  ck_assert_ptr_null(rule_of(&v0333, found));
  ck_assert_str_eq(rule_of(&v166, restart), "LC-04");
  ck_assert_ptr_null(rule_of(&v112, restart)); /* v1.13+ */
  /* JSON lines carry the same texts. */
  profile_t json = era(1, 66, 0, PROFILE_LOG_JSON_LINES);
  ck_assert_str_eq(rule_of(&json, "{\"level\": \"WARNING\", \"namespace\": "
                                  "\"synapse.logging.context\", \"log\": \"Expected logging "
                                  "context GET-1 was lost\", \"request\": null}"),
                   "LC-04");
  ck_assert_ptr_null(rule_of(&json, "Traceback (most recent call last):"));
}
END_TEST

static char *tmp;

START_TEST(test_log_checks) {
  setenv("TZ", "UTC", 1);
  tzset();
  tmp = test_make_temp_dir("rc-passive-lc");
  char *path = test_path(tmp, "sut.log");
  profile_t p = era(1, 66, 0, PROFILE_LOG_SYNAPSE_TEXT);
  const char *clean = "2026-11-29 00:00:00,000 - a - 1 - INFO - GET-0 - fine\n";
  ck_assert_int_eq(test_write_file(path, clean, strlen(clean)), 0);
  char why[512];
  ck_assert(passive_check_logcontext(path, &p, -1, why, sizeof why));
  /* A mismatch warning at 00:00:01.000: LC-04 unless the bound is before it. */
  const char *warned = "2026-11-29 00:00:00,000 - a - 1 - INFO - GET-0 - fine\n"
                       "2026-11-29 00:00:01,000 - synapse.logging.context - 1 - WARNING - "
                       "GET-0 - Expected logging context GET-0 was lost\n";
  ck_assert_int_eq(test_write_file(path, warned, strlen(warned)), 0);
  ck_assert(!passive_check_logcontext(path, &p, -1, why, sizeof why));
  ck_assert_msg(strncmp(why, "LC-04: ", 7) == 0 && strstr(why, "was lost") != NULL, "%s", why);
  long long at = 1795910401000LL; /* 2026-11-29 00:00:01 UTC */
  ck_assert(!passive_check_logcontext(path, &p, at, why, sizeof why));
  ck_assert(passive_check_logcontext(path, &p, at - 1, why, sizeof why));
  /* LC-03 is not bounded by time. */
  const char *txn = "2026-11-29 00:00:05,000 - synapse.storage._base - 1 - WARNING - sentinel - "
                    "Starting db txn 'f' from sentinel context\n";
  ck_assert_int_eq(test_write_file(path, txn, strlen(txn)), 0);
  ck_assert(!passive_check_logcontext(path, &p, 0, why, sizeof why));
  ck_assert_msg(strncmp(why, "LC-03: ", 7) == 0 && strstr(why, "'f'") != NULL, "%s", why);
  /* No log: nothing to hold against the SUT. */
  ck_assert(passive_check_logcontext(NULL, &p, -1, why, sizeof why));
  free(path);
  test_remove_tree(tmp);
  free(tmp);
}
END_TEST

/* The window's edge: a warning the SUT logs just after closing replication itself (seen
 * by the mock a little later) is LC-05's, one from before the close is LC-04's. */
START_TEST(test_window_edge) {
  setenv("TZ", "UTC", 1);
  tzset();
  ck_assert_int_eq(passive_lc04_until_ms(-1, false, -1, -1), -1);
  ck_assert_int_eq(passive_lc04_until_ms(5000, true, -1, 9000),
                   5000 - PASSIVE_LC04_CLOSE_SLACK_MS);
  ck_assert_int_eq(passive_lc04_until_ms(5000, false, -1, 9000),
                   5000 - PASSIVE_LC04_CLOCK_SLACK_MS); /* the mock's own close */
  ck_assert_int_eq(passive_lc04_until_ms(5000, true, 4900, 9000), 4900);
  ck_assert_int_eq(passive_lc04_until_ms(-1, false, 7000, 9000), 7000);
  ck_assert_int_eq(passive_lc04_until_ms(-1, false, -1, 9000), 9000);
  ck_assert_int_eq(passive_lc04_until_ms(20, true, -1, -1), 0);
  tmp = test_make_temp_dir("rc-passive-lc-edge");
  char *path = test_path(tmp, "sut.log");
  profile_t p = era(1, 66, 0, PROFILE_LOG_SYNAPSE_TEXT);
  char why[512];
  long long closed_seen = 1795910401005LL; /* mock saw the SUT's close at 00:00:01.005 */
  long long until = passive_lc04_until_ms(closed_seen, true, -1, closed_seen + 5000);
  /* Synapse 1.66 at its own close (00:00:01.000 .. .001): not LC-04. */
  const char *at_close = "2026-11-29 00:00:01,001 - synapse.logging.context - 1 - WARNING - "
                         "replication-conn-X - Re-starting finished log context "
                         "replication-conn-X\n";
  ck_assert_int_eq(test_write_file(path, at_close, strlen(at_close)), 0);
  ck_assert_msg(passive_check_logcontext(path, &p, until, why, sizeof why), "%s", why);
  /* A leak warning 50 ms before the close (refworker's bug, short test): still LC-04. */
  const char *leak = "2026-11-29 00:00:00,955 - synapse.logging.context - 1 - WARNING - "
                     "GET-0 - Expected logging context GET-0 was lost\n";
  ck_assert_int_eq(test_write_file(path, leak, strlen(leak)), 0);
  ck_assert(!passive_check_logcontext(path, &p, until, why, sizeof why));
  ck_assert_msg(strncmp(why, "LC-04: ", 7) == 0, "%s", why);
  free(path);
  test_remove_tree(tmp);
  free(tmp);
}
END_TEST

/* The real 1.66 worker: its one warning comes 4 ms after SIGTERM. */
START_TEST(test_real_synapse_log) {
  setenv("TZ", "UTC", 1);
  tzset();
  char *path = test_path(test_env("REPLCHECK_SHARED_DIR"), "reference/synapse-1.66/worker2.log");
  profile_t p = era(1, 66, 0, PROFILE_LOG_SYNAPSE_TEXT);
  char why[512];
  ck_assert(!passive_check_logcontext(path, &p, -1, why, sizeof why));
  ck_assert_msg(strstr(why, "Re-starting finished log context replication-conn-PIHLt") != NULL,
                "%s", why);
  long long sigterm = 1795911907523LL; /* 2026-11-29 00:25:07,523 "Received SIGTERM" */
  ck_assert_msg(passive_check_logcontext(path, &p, sigterm, why, sizeof why), "%s", why);
  free(path);
}
END_TEST

static Suite *passive_lc_suite(void) {
  Suite *s = suite_create("passive_logcontext");
  TCase *tc = tcase_create("passive_logcontext");
  tcase_add_test(tc, test_format_matching);
  tcase_add_test(tc, test_rules_by_era);
  tcase_add_test(tc, test_log_checks);
  tcase_add_test(tc, test_window_edge);
  tcase_add_test(tc, test_real_synapse_log);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(passive_lc_suite());
}
