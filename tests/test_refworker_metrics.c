/* Unit tests of refworker's value modules: the Prometheus registry (reference/metrics.c),
 * the bug table (reference/bugs.c), handler exceptions (reference/handler_error.c) and
 * row layouts (reference/stream_rows.c).
 *
 * The exposition must read like the prometheus_client of each emulated era
 * (shared/spec/seed-behaviours.md §1.4, §1.6): counters without "_total" before 0.4
 * (Synapse v0.33.6 pinned < 0.4), with it after; values as Python prints floats. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bugs.h"
#include "handler_error.h"
#include "metrics.h"
#include "stream_rows.h"
#include "test_support.h"

static const char *const name_label[] = {"name"};

/* Renders and checks that `expected` appears as whole lines. */
static void expect_lines(const metrics_t *metrics, const char *expected) {
  size_t len = 0;
  char *text = metrics_render(metrics, &len);
  ck_assert_ptr_nonnull(text);
  ck_assert_uint_eq(strlen(text), len);
  ck_assert_msg(strstr(text, expected) != NULL,
                "Requirement: Prometheus text as prometheus_client writes it\n"
                "  Expected lines:\n%s\n  Actual text:\n%s",
                expected, text);
  free(text);
}

START_TEST(test_counter_2018_has_no_total_suffix) {
  rc_error_t err;
  metrics_t *metrics = metrics_create(METRICS_STYLE_2018, &err);
  ck_assert_ptr_nonnull(metrics);
  metrics_family_t *family =
      metrics_family_declare(metrics, "synapse_background_process_start_count", METRICS_COUNTER,
                             "Number of background processes started", name_label, 1, &err);
  ck_assert_msg(family != NULL, "%s", err.msg);
  const char *values[] = {"replication-PING"};
  metrics_series_t *series = metrics_series_get(family, values, 1, &err);
  ck_assert_ptr_nonnull(series);
  metrics_series_add(series, 1);
  metrics_series_add(series, 2);
  metrics_series_add(series, -5); /* a counter never goes down */
  ck_assert(metrics_series_get(family, values, 1, &err) == series);
  expect_lines(metrics,
               "# HELP synapse_background_process_start_count Number of background processes "
               "started\n"
               "# TYPE synapse_background_process_start_count counter\n"
               "synapse_background_process_start_count{name=\"replication-PING\"} 3.0\n");
  size_t len = 0;
  char *text = metrics_render(metrics, &len);
  ck_assert_ptr_null(strstr(text, "_total"));
  free(text);
  metrics_destroy(metrics);
}
END_TEST

START_TEST(test_counter_modern_has_total_samples) {
  rc_error_t err;
  metrics_t *metrics = metrics_create(METRICS_STYLE_MODERN, &err);
  metrics_family_t *family =
      metrics_family_declare(metrics, "synapse_background_process_start_count", METRICS_COUNTER,
                             "Number of background processes started", name_label, 1, &err);
  const char *values[] = {"process-replication-data"};
  metrics_series_add(metrics_series_get(family, values, 1, &err), 43);
  expect_lines(metrics,
               "# HELP synapse_background_process_start_count Number of background processes "
               "started\n"
               "# TYPE synapse_background_process_start_count counter\n"
               "synapse_background_process_start_count_total{name=\"process-replication-data\"} "
               "43.0\n");
  metrics_destroy(metrics);
}
END_TEST

START_TEST(test_gauge_keeps_reporting_at_zero) {
  rc_error_t err;
  metrics_t *metrics = metrics_create(METRICS_STYLE_MODERN, &err);
  metrics_family_t *family =
      metrics_family_declare(metrics, "synapse_background_process_in_flight_count", METRICS_GAUGE,
                             "Number of background processes in flight", name_label, 1, &err);
  const char *values[] = {"prune_cache_x"};
  metrics_series_t *series = metrics_series_get(family, values, 1, &err);
  metrics_series_add(series, 1);
  metrics_series_add(series, -1);
  expect_lines(metrics,
               "# TYPE synapse_background_process_in_flight_count gauge\n"
               "synapse_background_process_in_flight_count{name=\"prune_cache_x\"} 0.0\n");
  metrics_series_set(series, 0.25);
  ck_assert(metrics_series_value(series) == 0.25);
  expect_lines(metrics,
               "synapse_background_process_in_flight_count{name=\"prune_cache_x\"} 0.25\n");
  ck_assert_ptr_eq(
      metrics_series_find(metrics, "synapse_background_process_in_flight_count", values, 1),
      series);
  ck_assert_ptr_null(metrics_series_find(metrics, "nope", values, 1));
  metrics_destroy(metrics);
}
END_TEST

START_TEST(test_colon_names_two_labels_and_escaping) {
  rc_error_t err;
  metrics_t *metrics = metrics_create(METRICS_STYLE_2018, &err);
  static const char *const labels[] = {"name", "reason"};
  metrics_family_t *family =
      metrics_family_declare(metrics, "synapse_util_caches_cache:evicted_size", METRICS_GAUGE,
                             "Evicted\\entries\nall", labels, 2, &err);
  ck_assert_msg(family != NULL, "%s", err.msg);
  const char *values[] = {"a\"b\\c\nd", "time"};
  metrics_series_set(metrics_series_get(family, values, 2, &err), 7);
  expect_lines(metrics,
               "# HELP synapse_util_caches_cache:evicted_size Evicted\\\\entries\\nall\n"
               "# TYPE synapse_util_caches_cache:evicted_size gauge\n"
               "synapse_util_caches_cache:evicted_size{name=\"a\\\"b\\\\c\\nd\",reason=\"time\"} "
               "7.0\n");
  metrics_destroy(metrics);
}
END_TEST

START_TEST(test_families_render_in_declaration_order) {
  rc_error_t err;
  metrics_t *metrics = metrics_create(METRICS_STYLE_2018, &err);
  metrics_family_t *b =
      metrics_family_declare(metrics, "b_metric", METRICS_GAUGE, "B", NULL, 0, &err);
  metrics_family_t *a =
      metrics_family_declare(metrics, "a_metric", METRICS_GAUGE, "A", NULL, 0, &err);
  metrics_series_set(metrics_series_get(b, NULL, 0, &err), 2);
  metrics_series_set(metrics_series_get(a, NULL, 0, &err), 1e20);
  char *text = metrics_render(metrics, NULL);
  ck_assert_ptr_nonnull(text);
  ck_assert_str_eq(text,
                   "# HELP b_metric B\n# TYPE b_metric gauge\nb_metric 2.0\n"
                   "# HELP a_metric A\n# TYPE a_metric gauge\na_metric 1e+20\n");
  free(text);
  metrics_destroy(metrics);
}
END_TEST

START_TEST(test_bad_declarations_are_errors) {
  rc_error_t err;
  metrics_t *metrics = metrics_create(METRICS_STYLE_MODERN, &err);
  ck_assert_ptr_null(
      metrics_family_declare(metrics, "9starts_with_digit", METRICS_GAUGE, "", NULL, 0, &err));
  ck_assert_msg(strstr(err.msg, "not a valid metric name") != NULL, "%s", err.msg);
  static const char *const bad_label[] = {"na:me"};
  ck_assert_ptr_null(metrics_family_declare(metrics, "ok", METRICS_GAUGE, "", bad_label, 1, &err));
  ck_assert_msg(strstr(err.msg, "not a valid label name") != NULL, "%s", err.msg);
  metrics_family_t *family =
      metrics_family_declare(metrics, "ok", METRICS_GAUGE, "", name_label, 1, &err);
  ck_assert_ptr_nonnull(family);
  /* The same declaration again is the same family; a different one is refused. */
  ck_assert_ptr_eq(metrics_family_declare(metrics, "ok", METRICS_GAUGE, "", name_label, 1, &err),
                   family);
  ck_assert_ptr_null(
      metrics_family_declare(metrics, "ok", METRICS_COUNTER, "", name_label, 1, &err));
  ck_assert_msg(strstr(err.msg, "already declared") != NULL, "%s", err.msg);
  ck_assert_ptr_null(metrics_series_get(family, NULL, 0, &err));
  ck_assert_msg(strstr(err.msg, "takes 1 label values, got 0") != NULL, "%s", err.msg);
  ck_assert_ptr_null(metrics_create((metrics_style_t)0, &err));
  metrics_destroy(metrics);
  metrics_destroy(NULL);
}
END_TEST

START_TEST(test_bug_table) {
  bug_set_t set = 0;
  rc_error_t err;
  ck_assert_int_eq(bugs_add(&set, "fire-and-forget", &err), 0);
  ck_assert_int_eq(bugs_add(&set, "cache-needs-start", &err), 0);
  ck_assert(bugs_has(set, BUG_FIRE_AND_FORGET));
  ck_assert(bugs_has(set, BUG_CACHE_NEEDS_START));
  ck_assert(!bugs_has(set, BUG_MISSING_SERVER_HEADER));
  ck_assert_int_eq(bugs_add(&set, "no-such-bug", &err), -1);
  ck_assert_msg(strstr(err.msg, "unknown bug 'no-such-bug'") != NULL &&
                    strstr(err.msg, "missing-server-header") != NULL,
                "%s", err.msg);
  ck_assert_str_eq(bugs_name(BUG_UNHANDLED_BACKGROUND_ERROR), "unhandled-background-error");

  /* --list-bugs: NAME<TAB>SEED<TAB>description, one line each, every name accepted. */
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  bugs_print_list(out);
  fclose(out);
  int lines = 0;
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    char *tab1 = strchr(l, '\t');
    ck_assert_ptr_nonnull(tab1);
    char *tab2 = strchr(tab1 + 1, '\t');
    /* The seed letter, or '-' for a leak the connections suite catches (no seed). */
    ck_assert_msg(tab2 != NULL && tab2 - tab1 == 2 &&
                      ((tab1[1] >= 'A' && tab1[1] <= 'I') || tab1[1] == '-'),
                  "line '%s': expected NAME<TAB>SEED<TAB>description", l);
    ck_assert_ptr_null(strchr(tab2 + 1, '\t'));
    ck_assert(strlen(tab2 + 1) > 20);
    *tab1 = '\0';
    bug_set_t one = 0;
    ck_assert_msg(bugs_add(&one, l, &err) == 0, "%s", err.msg);
    lines++;
  }
  ck_assert_int_ge(lines, 5);
  free(text);
}
END_TEST

START_TEST(test_handler_error_traceback) {
  handler_error_t error;
  ck_assert_int_eq(HANDLER_RAISE(&error, "TypeError", "row %s has %d fields", "[\"x\"]", 1), -1);
  ck_assert_str_eq(error.type, "TypeError");
  ck_assert_str_eq(error.file, "test_refworker_metrics.c");
  char buf[1024];
  handler_error_traceback(&error, buf, sizeof buf);
  char expected[1024];
  snprintf(expected, sizeof expected,
           "Traceback (most recent call last):\n"
           "  File \"test_refworker_metrics.c\", line %d, in %s\n"
           "TypeError: row [\"x\"] has 1 fields",
           error.line, error.function);
  ck_assert_str_eq(buf, expected);
  /* The exception line stays one line. */
  HANDLER_RAISE(&error, "ValueError", "a\nb");
  handler_error_traceback(&error, buf, sizeof buf);
  ck_assert_ptr_nonnull(strstr(buf, "ValueError: a\\nb"));
  ck_assert_int_eq(HANDLER_RAISE(NULL, "X", "ignored"), -1);
}
END_TEST

/* BG-05's trigger: valid JSON that does not fit the stream's layout makes the handler
 * raise, as Synapse's TypingStreamRow(*row) does. */
START_TEST(test_row_layouts) {
  static const struct {
    const char *stream, *row;
    const char *error; /* NULL: fits */
  } cases[] = {
      {"typing", "[\"!r:hs\",[\"@x:hs\"]]", NULL},
      {"typing", "[\"!r:hs\", []]", NULL},
      {"typing", "[\"!r:hs\"]",
       "TypeError: __new__() missing 1 required positional argument: 'user_ids'"},
      {"typing", "[]",
       "TypeError: __new__() missing 2 required positional arguments: 'room_id' and 'user_ids'"},
      {"typing", "[\"!r:hs\",[],1]",
       "TypeError: __new__() takes 3 positional arguments but 4 were given"},
      {"typing", "[1,[]]", "TypeError: typing row: room_id must be a string"},
      {"typing", "[\"!r\",[1]]", "TypeError: typing row: user_ids[0] must be a string"},
      {"typing", "{\"a\":1}", "TypeError: typing row must be a list, got an object"},
      {"device_lists", "[\"@u1:test\",false,false]", NULL},
      {"device_lists", "[\"@u1:test\",\"remote\"]", NULL},
      {"device_lists", "[]",
       "TypeError: __new__() missing 1 required positional argument: 'user_id'"},
      {"device_lists", "[false]", "TypeError: device_lists row: user_id must be a string"},
      {"events", "{\"any\": \"layout\"}", NULL},
      {"caches", "[\"f\",[],1]", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    handler_error_t error;
    int rc = stream_rows_check(cases[i].stream, cases[i].row, strlen(cases[i].row), &error);
    if (cases[i].error == NULL) {
      ck_assert_msg(rc == 0, "%s %s: expected to fit, got %s: %s", cases[i].stream, cases[i].row,
                    error.type, error.message);
      continue;
    }
    ck_assert_msg(rc == -1, "%s %s: expected %s", cases[i].stream, cases[i].row, cases[i].error);
    char actual[1200];
    snprintf(actual, sizeof actual, "%s: %s", error.type, error.message);
    ck_assert_str_eq(actual, cases[i].error);
  }
  char user[64];
  const char *row = "[\"@u7:test\",false,false]";
  ck_assert_int_eq(stream_rows_device_user(row, strlen(row), user, sizeof user), 0);
  ck_assert_str_eq(user, "@u7:test");
  ck_assert_int_eq(stream_rows_device_user(row, strlen(row), user, 4), -1);
  ck_assert_int_eq(stream_rows_device_user("[1]", 3, user, sizeof user), -1);
}
END_TEST

static Suite *metrics_suite(void) {
  Suite *s = suite_create("refworker_metrics");
  TCase *tc = tcase_create("units");
  tcase_add_test(tc, test_counter_2018_has_no_total_suffix);
  tcase_add_test(tc, test_counter_modern_has_total_samples);
  tcase_add_test(tc, test_gauge_keeps_reporting_at_zero);
  tcase_add_test(tc, test_colon_names_two_labels_and_escaping);
  tcase_add_test(tc, test_families_render_in_declaration_order);
  tcase_add_test(tc, test_bad_declarations_are_errors);
  tcase_add_test(tc, test_bug_table);
  tcase_add_test(tc, test_handler_error_traceback);
  tcase_add_test(tc, test_row_layouts);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(metrics_suite());
}
