/* Unit tests of what a run covers: selectors (ids, prefixes, globs, tags, negation),
 * shards, the expected-failures file (every error with FILE:LINE, stale entries) and
 * the run plan built from them (repetitions, skips, --min, empty shards). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expected_failures.h"
#include "profile.h"
#include "run_plan.h"
#include "selection.h"
#include "test_support.h"

static const rc_test_def_t ROWS[] = {
    {.id = "protocol/handshake/ping-on-connect", .tags = NULL},
    {.id = "protocol/handshake/name-first", .tags = ""},
    {.id = "protocol/handshaker/odd", .tags = "retriable"},
    {.id = "protocol/keepalive/ping-timeout", .tags = "slow, timing-dependent"},
    {.id = "protocol/keepalive/idle", .tags = "slow,timing-dependent,retriable"},
    {.id = "presence/once", .tags = "slow"},
};
#define NROWS (sizeof ROWS / sizeof ROWS[0])

/* Selected ids joined by spaces; aborts the test on a selector error. */
static char *select_ids(const char *const *selectors, size_t count) {
  rc_error_t err;
  selection_t *s = selection_create(selectors, count, &err);
  ck_assert_msg(s != NULL, "%s", err.msg);
  const rc_test_def_t *out[NROWS];
  size_t n = selection_apply(s, ROWS, NROWS, out);
  char *text = calloc(1, 1024);
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(text, " ");
    strcat(text, out[i]->id);
  }
  selection_destroy(s);
  return text;
}

#define ASSERT_SELECTS(expected, ...)                                                           \
  do {                                                                                          \
    const char *sel_[] = {__VA_ARGS__};                                                         \
    char *got_ = select_ids(sel_, sizeof sel_ / sizeof sel_[0]);                                \
    ck_assert_msg(strcmp(got_, expected) == 0, "selected '%s', expected '%s'", got_, expected); \
    free(got_);                                                                                 \
  } while (0)

START_TEST(selectors_ids_prefixes_globs_tags) {
  char *all = select_ids(NULL, 0);
  ck_assert_str_eq(all,
                   "protocol/handshake/ping-on-connect protocol/handshake/name-first "
                   "protocol/handshaker/odd protocol/keepalive/ping-timeout "
                   "protocol/keepalive/idle presence/once");
  free(all);
  ASSERT_SELECTS("protocol/handshake/name-first", "protocol/handshake/name-first");
  /* A prefix selects at a '/' boundary only: handshaker is not handshake. */
  ASSERT_SELECTS("protocol/handshake/ping-on-connect protocol/handshake/name-first",
                 "protocol/handshake");
  ASSERT_SELECTS("protocol/handshake/ping-on-connect protocol/handshake/name-first",
                 "protocol/handshake/");
  ASSERT_SELECTS("protocol/handshake/ping-on-connect protocol/keepalive/ping-timeout", "*ping-*");
  ASSERT_SELECTS("protocol/handshaker/odd", "protocol/handshake?/*");
  ASSERT_SELECTS("protocol/keepalive/ping-timeout protocol/keepalive/idle presence/once",
                 "tag:slow");
  /* Tags match whole names, blanks around them ignored. */
  ASSERT_SELECTS("protocol/keepalive/ping-timeout protocol/keepalive/idle", "tag:timing-dependent");
  /* Union of several, still in registry order. */
  ASSERT_SELECTS("protocol/handshake/name-first presence/once", "presence",
                 "protocol/handshake/name-first");
}
END_TEST

START_TEST(selectors_negation) {
  ASSERT_SELECTS(
      "protocol/handshake/ping-on-connect protocol/handshake/name-first "
      "protocol/handshaker/odd",
      "protocol", "!protocol/keepalive/*");
  /* Only negations: everything minus them. */
  ASSERT_SELECTS(
      "protocol/handshake/ping-on-connect protocol/handshake/name-first "
      "protocol/handshaker/odd",
      "!tag:slow");
  ASSERT_SELECTS("protocol/keepalive/ping-timeout", "protocol/keepalive",
                 "!protocol/keepalive/idle");
  ASSERT_SELECTS("protocol/handshake/name-first", "!tag:slow",
                 "!protocol/handshake/ping-on-connect", "!protocol/handshaker");
  /* A negation wins over an inclusion of the same test. */
  ASSERT_SELECTS("", "presence/once", "!tag:slow");
}
END_TEST

START_TEST(selector_errors_name_the_selector) {
  const char *bad[][2] = {{"", "empty selector"},
                          {"  ", "empty selector"},
                          {"!", "'!' needs a selector"},
                          {"!!x", "double negation"},
                          {"tag:", "empty tag name"},
                          {"!tag:", "empty tag name"},
                          {"! ", "empty selector after '!'"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rc_error_t err;
    const char *one[] = {bad[i][0]};
    ck_assert_ptr_null(selection_create(one, 1, &err));
    ck_assert_msg(strstr(err.msg, bad[i][1]) != NULL, "'%s': %s", bad[i][0], err.msg);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "selector '%s'", bad[i][0]);
    ck_assert_msg(strstr(err.msg, quoted) != NULL, "%s", err.msg);
  }
  /* Selectors that match nothing in the registry: the first one is named. */
  const char *sel[] = {"protocol", "!protocol/keepalive/nope", "tag:nope"};
  rc_error_t err;
  selection_t *s = selection_create(sel, 3, &err);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(selection_check_unmatched(s, ROWS, NROWS, &err), -1);
  ck_assert_str_eq(err.msg,
                   "no test matches the selector '!protocol/keepalive/nope'; see `replcheck list`");
  selection_destroy(s);
  const char *fine[] = {"protocol/handshake", "!tag:retriable", "*idle"};
  s = selection_create(fine, 3, &err);
  ck_assert_int_eq(selection_check_unmatched(s, ROWS, NROWS, &err), 0);
  selection_destroy(s);
  selection_destroy(NULL);
}
END_TEST

START_TEST(tag_lists) {
  ck_assert(selection_has_tag("slow,timing-dependent", "slow"));
  ck_assert(selection_has_tag(" slow , timing-dependent ", "timing-dependent"));
  ck_assert(!selection_has_tag("slower", "slow"));
  ck_assert(!selection_has_tag("slow", "slo"));
  ck_assert(!selection_has_tag(NULL, "slow"));
  ck_assert(!selection_has_tag("", "slow"));
  ck_assert(!selection_has_tag(",,", ""));
}
END_TEST

START_TEST(shard_parsing) {
  unsigned k = 0, n = 0;
  rc_error_t err;
  ck_assert_int_eq(selection_parse_shard("1/2", &k, &n, &err), 0);
  ck_assert_uint_eq(k, 1);
  ck_assert_uint_eq(n, 2);
  ck_assert_int_eq(selection_parse_shard("10000/10000", &k, &n, &err), 0);
  const char *bad[] = {"",      "1",    "0/2",  "1/0",  "a/b",         "1/",           "/2",
                       "1/2/3", " 1/2", "1/2 ", "-1/2", "10001/10001", "1/99999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(selection_parse_shard(bad[i], &k, &n, &err) == -1, "'%s' accepted", bad[i]);
    ck_assert_msg(strstr(err.msg, "expected K/N") != NULL, "%s", err.msg);
  }
  ck_assert_int_eq(selection_parse_shard("3/2", &k, &n, &err), -1);
  ck_assert_str_eq(err.msg, "shard 3/2: K must not exceed N (shards are numbered 1..2)");
}
END_TEST

START_TEST(shards_partition_deterministically) {
  for (unsigned n = 1; n <= 7; n++) {
    int seen[NROWS] = {0};
    for (unsigned k = 1; k <= n; k++) {
      const rc_test_def_t *rows[NROWS];
      for (size_t i = 0; i < NROWS; i++) rows[i] = &ROWS[i];
      size_t kept = selection_shard(rows, NROWS, k, n);
      for (size_t i = 0; i < kept; i++) {
        size_t index = (size_t)(rows[i] - ROWS);
        ck_assert_uint_eq(index % n, k - 1);
        if (i > 0) ck_assert(rows[i] > rows[i - 1]); /* order kept */
        seen[index]++;
      }
    }
    for (size_t i = 0; i < NROWS; i++) ck_assert_int_eq(seen[i], 1);
  }
}
END_TEST

/* ---- expected failures ------------------------------------------------------------- */

static expected_failures_t *parse_text(const char *text, rc_error_t *err) {
  return expected_failures_parse("xf.txt", text, strlen(text), err);
}

START_TEST(expected_failures_format) {
  rc_error_t err;
  expected_failures_t *list = parse_text(
      "# known failures of our worker\n"
      "\n"
      "protocol/handshake/name-first   https://example.org/issues/12\r\n"
      "   \t\n"
      "  protocol/keepalive/*\tslow CI machines #34  \n"
      "presence/once a reason with # inside",
      &err);
  ck_assert_msg(list != NULL, "%s", err.msg);
  ck_assert_uint_eq(list->count, 3);
  ck_assert_str_eq(list->entries[0].pattern, "protocol/handshake/name-first");
  ck_assert_str_eq(list->entries[0].reason, "https://example.org/issues/12");
  ck_assert_int_eq(list->entries[0].line, 3);
  ck_assert_str_eq(list->entries[1].pattern, "protocol/keepalive/*");
  ck_assert_str_eq(list->entries[1].reason, "slow CI machines #34");
  ck_assert_int_eq(list->entries[1].line, 5);
  ck_assert_str_eq(list->entries[2].reason, "a reason with # inside");
  ck_assert_int_eq(list->entries[2].line, 6);
  ck_assert_ptr_eq(expected_failures_find(list, "protocol/keepalive/idle"), &list->entries[1]);
  ck_assert_ptr_eq(expected_failures_find(list, "protocol/handshake/name-first"),
                   &list->entries[0]);
  ck_assert_ptr_null(expected_failures_find(list, "protocol/handshake/ping-on-connect"));
  ck_assert_ptr_null(expected_failures_find(NULL, "x"));
  ck_assert_int_eq(expected_failures_check_stale(list, ROWS, NROWS, &err), 0);
  expected_failures_destroy(list);
  expected_failures_destroy(NULL);

  list = parse_text("", &err);
  ck_assert_ptr_nonnull(list);
  ck_assert_uint_eq(list->count, 0);
  expected_failures_destroy(list);
}
END_TEST

START_TEST(expected_failures_errors_name_file_and_line) {
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
      {"# c\nprotocol/handshake/name-first\n",
       "xf.txt:2: 'protocol/handshake/name-first' has no reason; write one after it"},
      {"protocol/handshake/name-first   \t \n",
       "xf.txt:1: 'protocol/handshake/name-first' has no reason"},
      {"\n\n!protocol/x reason\n", "xf.txt:3: '!protocol/x': negation is not supported here"},
      {"tag:slow flaky\n", "xf.txt:1: 'tag:slow': tags are not supported here"},
      {"a/b one\n\na/b two\n", "xf.txt:3: 'a/b' is already listed at line 1"},
      {"a/b reason\x1b[31m\n", "xf.txt:1: control character 0x1b in the line"},
      {"a/b ok\nc/d bad\rreason\n", "xf.txt:2: control character 0x0d in the line"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rc_error_t err;
    ck_assert_ptr_null(parse_text(cases[i].text, &err));
    ck_assert_msg(strncmp(err.msg, cases[i].message, strlen(cases[i].message)) == 0,
                  "case %zu: got '%s'", i, err.msg);
  }
  rc_error_t err;
  const char nul[] = "a/b ok\nc/d b\0d\n";
  ck_assert_ptr_null(expected_failures_parse("xf.txt", nul, sizeof nul - 1, &err));
  ck_assert_str_eq(err.msg, "xf.txt:2: NUL byte in the line (not a text file?)");
}
END_TEST

START_TEST(expected_failures_stale_entries_and_files) {
  rc_error_t err;
  expected_failures_t *list = parse_text(
      "protocol/handshake/name-first ok\n"
      "protocol/handshake/gone issue 7\n"
      "# c\n"
      "nothing/* issue 8\n",
      &err);
  ck_assert_ptr_nonnull(list);
  ck_assert_int_eq(expected_failures_check_stale(list, ROWS, NROWS, &err), -1);
  ck_assert_str_eq(err.msg,
                   "xf.txt:2: 'protocol/handshake/gone' matches no test in the registry (stale "
                   "entry?)\nxf.txt:4: 'nothing/*' matches no test in the registry (stale entry?)");
  expected_failures_destroy(list);

  char *dir = test_make_temp_dir("replcheck-xf");
  char *path = test_path(dir, "list.txt");
  ck_assert_ptr_null(expected_failures_load(path, &err));
  ck_assert_msg(strstr(err.msg, "list.txt: cannot read the expected-failures file") != NULL, "%s",
                err.msg);
  const char *text = "presence/once flaky\npresence/once again\n";
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  ck_assert_ptr_null(expected_failures_load(path, &err));
  char want[4200];
  snprintf(want, sizeof want, "%s:2: 'presence/once' is already listed at line 1", path);
  ck_assert_str_eq(err.msg, want);
  text = "presence/once flaky\n";
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  list = expected_failures_load(path, &err);
  ck_assert_ptr_nonnull(list);
  ck_assert_str_eq(list->path, path);
  expected_failures_destroy(list);
  test_remove_tree(dir);
  free(path);
  free(dir);
}
END_TEST

/* ---- the run plan (real registry and the refworker profile) --------------------------- */

static profile_t *refworker_profile(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/profiles/refworker.json", test_env("REPLCHECK_SOURCE_DIR"));
  rc_error_t err;
  profile_t *p = profile_load(path, &err);
  ck_assert_msg(p != NULL, "%s", err.msg);
  return p;
}

START_TEST(plan_repeats_skips_and_usage_errors) {
  profile_t *p = refworker_profile();
  const char *sel[] = {"protocol/handshake", "!protocol/handshake/replicate-once"};
  run_plan_options_t o = {
      .selectors = sel, .selector_count = 2, .repeat = 2, .retry = 3, .min_selected = 1};
  rc_error_t err;
  run_plan_t *plan = run_plan_create(&o, p, &err);
  ck_assert_msg(plan != NULL, "%s", err.msg);
  ck_assert_uint_eq(plan->selected_count, 6);
  ck_assert_uint_eq(plan->test_count, 6);
  ck_assert_uint_eq(plan->task_count, 12);
  ck_assert_str_eq(plan->tasks[0].id, "protocol/handshake/ping-on-connect");
  ck_assert_str_eq(plan->tasks[1].id, "protocol/handshake/ping-on-connect#2");
  ck_assert_uint_eq(plan->tasks[1].repetition, 2);
  for (size_t i = 0; i < plan->task_count; i++) {
    /* Nothing in these suites is tagged retriable. */
    ck_assert_int_eq(plan->tasks[i].max_attempts, 1);
    bool is_2018 = strstr(plan->tasks[i].id, "replicate-2018") != NULL;
    ck_assert_int_eq(plan->tasks[i].skip_reason != NULL, is_2018);
  }
  run_plan_destroy(plan);

  /* Shard 2 of 4 of those 6: selected tests 1 and 5. */
  o.repeat = 1;
  o.shard_index = 2;
  o.shard_count = 4;
  plan = run_plan_create(&o, p, &err);
  ck_assert_uint_eq(plan->task_count, 2);
  ck_assert_str_eq(plan->tasks[0].id, "protocol/handshake/name-first");
  ck_assert_str_eq(plan->tasks[1].id, "protocol/handshake/wrong-server-error");
  run_plan_destroy(plan);

  const char *one[] = {"protocol/handshake/name-first"};
  run_plan_options_t small = {.selectors = one, .selector_count = 1, .min_selected = 2};
  ck_assert_ptr_null(run_plan_create(&small, p, &err));
  ck_assert_str_eq(err.msg, "only 1 test(s) selected, fewer than --min 2");
  small.min_selected = 1;
  small.shard_index = 2;
  small.shard_count = 2;
  ck_assert_ptr_null(run_plan_create(&small, p, &err));
  ck_assert_str_eq(err.msg, "shard 2/2 gets no test: only 1 test(s) are selected");
  const char *none[] = {"protocol/handshake/name-first", "!tag:nope"};
  run_plan_options_t typo = {.selectors = none, .selector_count = 2};
  ck_assert_ptr_null(run_plan_create(&typo, p, &err));
  ck_assert_str_eq(err.msg, "no test matches the selector '!tag:nope'; see `replcheck list`");
  const char *empty[] = {"protocol/handshake/name-first", "!protocol/handshake"};
  run_plan_options_t nothing = {.selectors = empty, .selector_count = 2};
  ck_assert_ptr_null(run_plan_create(&nothing, p, &err));
  ck_assert_msg(strstr(err.msg, "no test is selected") != NULL, "%s", err.msg);
  run_plan_options_t missing = {.expected_failures_path = "/nonexistent/xf.txt"};
  ck_assert_ptr_null(run_plan_create(&missing, p, &err));
  ck_assert_msg(strstr(err.msg, "/nonexistent/xf.txt") != NULL, "%s", err.msg);
  profile_destroy(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("selection");
  TCase *tc = tcase_create("selection");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, selectors_ids_prefixes_globs_tags);
  tcase_add_test(tc, selectors_negation);
  tcase_add_test(tc, selector_errors_name_the_selector);
  tcase_add_test(tc, tag_lists);
  tcase_add_test(tc, shard_parsing);
  tcase_add_test(tc, shards_partition_deterministically);
  tcase_add_test(tc, expected_failures_format);
  tcase_add_test(tc, expected_failures_errors_name_file_and_line);
  tcase_add_test(tc, expected_failures_stale_entries_and_files);
  tcase_add_test(tc, plan_repeats_skips_and_usage_errors);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
