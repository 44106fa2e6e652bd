/* Unit tests of the dispatcher with fake tests: retries in-process and in supervisor
 * processes, N attempts really running at once, a supervisor that dies, and an
 * interrupt that stops the running attempt and marks the rest as not run. */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "interrupt.h"
#include "outcome.h"
#include "rc_clock.h"
#include "test_support.h"

/* ---- the dispatcher with fake tests ------------------------------------------------ */

typedef struct fake {
  const verdict_t *script; /* verdict per attempt (attempt n uses script[n-1]) */
  int per_item;            /* script entries per item */
  int sleep_ms;            /* time each attempt takes */
  const char *barrier;     /* directory: each attempt waits until `parties` have arrived */
  int parties;
  int die_item;       /* item whose attempt kills itself (-1 none) */
  int interrupt_item; /* item whose attempt sends SIGINT to the parent (-1 none) */
  pid_t parent;
  int finished_order[16];
  int finished_retries[16];
  int finished_count;
  int abandoned[16];
} fake_t;

static void fake_run(void *arg, size_t item, int attempt, report_case_t *out, bool *start_failed) {
  fake_t *f = arg;
  if ((int)item == f->interrupt_item) {
    kill(f->parent, SIGINT);
    usleep(30 * 1000 * 1000); /* cut short by the dispatcher */
  }
  if ((int)item == f->die_item) raise(SIGKILL);
  if (f->sleep_ms > 0) usleep((useconds_t)f->sleep_ms * 1000);
  out->verdict = f->script[item * (size_t)f->per_item + (size_t)(attempt - 1)];
  if (f->barrier != NULL) {
    /* Arrive, then wait (with a deadline) for the others: only attempts that run at the
     * same time can all get through. */
    char path[4200];
    snprintf(path, sizeof path, "%s/arrived-%zu", f->barrier, item);
    test_write_file(path, "", 0);
    int64_t deadline = rc_clock_mono_ms() + 10000;
    int arrived = 0;
    while (arrived < f->parties && rc_clock_mono_ms() < deadline) {
      arrived = 0;
      for (int i = 0; i < f->parties; i++) {
        snprintf(path, sizeof path, "%s/arrived-%d", f->barrier, i);
        arrived += access(path, F_OK) == 0;
      }
      if (arrived < f->parties) usleep(10 * 1000);
    }
    if (arrived < f->parties) out->verdict = VERDICT_ERROR;
  }
  out->seconds = 0.5;
  char msg[64];
  snprintf(msg, sizeof msg, "item %zu attempt %d", item, attempt);
  report_set(&out->message, msg);
  *start_failed = false;
}

static void fake_abandon(void *arg, size_t item, int attempt) {
  (void)attempt;
  ((fake_t *)arg)->abandoned[item]++;
}

static void fake_finished(void *arg, size_t item, const report_case_t *c, int retries) {
  fake_t *f = arg;
  (void)c;
  f->finished_order[f->finished_count] = (int)item;
  f->finished_retries[f->finished_count++] = retries;
}

static report_case_t *make_cases(size_t n) {
  return calloc(n, sizeof(report_case_t));
}

static void free_cases(report_case_t *cases, size_t n) {
  for (size_t i = 0; i < n; i++) outcome_clear_case(&cases[i]);
  free(cases);
}

static void run_fake(fake_t *f, const dispatch_item_t *items, size_t n, report_case_t *cases,
                     unsigned jobs, bool in_process, dispatch_stats_t *stats) {
  char *dir = test_make_temp_dir("replcheck-dispatch");
  dispatch_options_t o = {.jobs = jobs, .in_process = in_process, .result_dir = dir};
  dispatch_hooks_t hooks = {
      .arg = f, .run = fake_run, .abandon = fake_abandon, .finished = fake_finished};
  rc_error_t err;
  ck_assert_int_eq(interrupt_install(), 0);
  ck_assert_int_eq(dispatch_run(&o, items, n, cases, &hooks, stats, &err), 0);
  interrupt_restore();
  test_remove_tree(dir);
  free(dir);
}

static void check_retries(bool in_process, unsigned jobs) {
  /* item 0: FAIL then PASS (retriable); item 1: skipped; item 2: ERROR x3 (retriable, gives
   * up); item 3: FAIL, not retriable. */
  static const verdict_t script[] = {VERDICT_FAIL,  VERDICT_PASS, VERDICT_PASS,  VERDICT_PASS,
                                     VERDICT_PASS,  VERDICT_PASS, VERDICT_ERROR, VERDICT_NON_STRICT,
                                     VERDICT_ERROR, VERDICT_FAIL, VERDICT_PASS,  VERDICT_PASS};
  fake_t f = {.script = script, .per_item = 3, .die_item = -1, .interrupt_item = -1};
  dispatch_item_t items[] = {{.max_attempts = 3},
                             {.skip = true, .max_attempts = 1},
                             {.max_attempts = 3},
                             {.max_attempts = 1}};
  report_case_t *cases = make_cases(4);
  cases[1].verdict = VERDICT_SKIP;
  report_set(&cases[1].message, "not applicable");
  dispatch_stats_t stats;
  run_fake(&f, items, 4, cases, jobs, in_process, &stats);
  ck_assert_int_eq(cases[0].verdict, VERDICT_PASS);
  ck_assert_str_eq(cases[0].message,
                   "RETRIED 1 times; earlier attempts: attempt 1: FAIL: item 0 attempt 1");
  ck_assert(cases[0].seconds == 1.0); /* both attempts */
  ck_assert_int_eq(cases[1].verdict, VERDICT_SKIP);
  ck_assert_str_eq(cases[1].message, "not applicable");
  ck_assert_int_eq(cases[2].verdict, VERDICT_ERROR);
  ck_assert_str_eq(cases[2].message,
                   "item 2 attempt 3 (RETRIED 2 times; earlier attempts: attempt 1: ERROR: item "
                   "2 attempt 1; attempt 2: NON_STRICT: item 2 attempt 2)");
  ck_assert_int_eq(cases[3].verdict, VERDICT_FAIL);
  ck_assert_str_eq(cases[3].message, "item 3 attempt 1");
  ck_assert_int_eq(f.finished_count, 4);
  int retries_of[4] = {-1, -1, -1, -1};
  for (int i = 0; i < 4; i++) retries_of[f.finished_order[i]] = f.finished_retries[i];
  ck_assert_int_eq(retries_of[0], 1);
  ck_assert_int_eq(retries_of[1], 0);
  ck_assert_int_eq(retries_of[2], 2);
  ck_assert_int_eq(retries_of[3], 0);
  ck_assert_uint_eq(stats.executed, 3);
  ck_assert_uint_eq(stats.not_run, 0);
  ck_assert_int_eq(stats.interrupt_signal, 0);
  free_cases(cases, 4);
}

START_TEST(dispatch_retries_in_process) {
  check_retries(true, 4);
}
END_TEST

START_TEST(dispatch_retries_in_supervisors) {
  check_retries(false, 1);
  check_retries(false, 3);
}
END_TEST

START_TEST(dispatch_runs_jobs_at_once) {
  static const verdict_t script[] = {VERDICT_PASS, VERDICT_FAIL, VERDICT_PASS, VERDICT_NON_STRICT};
  char *barrier = test_make_temp_dir("replcheck-barrier");
  fake_t f = {.script = script,
              .per_item = 1,
              .die_item = -1,
              .interrupt_item = -1,
              .barrier = barrier,
              .parties = 4};
  dispatch_item_t items[4] = {
      {.max_attempts = 1}, {.max_attempts = 1}, {.max_attempts = 1}, {.max_attempts = 1}};
  report_case_t *cases = make_cases(4);
  dispatch_stats_t stats;
  run_fake(&f, items, 4, cases, 4, false, &stats);
  /* Each attempt waited for all four to be running at once: none timed out. */
  for (size_t i = 0; i < 4; i++) ck_assert_int_eq(cases[i].verdict, script[i]);
  ck_assert_uint_eq(stats.executed, 4);
  ck_assert_int_eq(f.finished_count, 4);
  free_cases(cases, 4);
  test_remove_tree(barrier);
  free(barrier);
}
END_TEST

START_TEST(dispatch_supervisor_death_is_an_error) {
  static const verdict_t script[] = {VERDICT_PASS, VERDICT_PASS};
  fake_t f = {.script = script, .per_item = 1, .die_item = 0, .interrupt_item = -1};
  dispatch_item_t items[2] = {{.max_attempts = 1}, {.max_attempts = 1}};
  report_case_t *cases = make_cases(2);
  dispatch_stats_t stats;
  run_fake(&f, items, 2, cases, 2, false, &stats);
  ck_assert_int_eq(cases[0].verdict, VERDICT_ERROR);
  ck_assert_str_eq(cases[0].message,
                   "the process running the test killed by signal 9 (SIGKILL) "
                   "without leaving a result");
  ck_assert_int_eq(cases[1].verdict, VERDICT_PASS);
  free_cases(cases, 2);
}
END_TEST

START_TEST(dispatch_interrupt_stops_and_marks_the_rest) {
  static const verdict_t script[] = {VERDICT_PASS, VERDICT_PASS, VERDICT_PASS, VERDICT_PASS,
                                     VERDICT_PASS};
  fake_t f = {
      .script = script, .per_item = 1, .die_item = -1, .interrupt_item = 1, .parent = getpid()};
  dispatch_item_t items[5] = {{.max_attempts = 1},
                              {.max_attempts = 1},
                              {.skip = true, .max_attempts = 1},
                              {.max_attempts = 1},
                              {.max_attempts = 1}};
  report_case_t *cases = make_cases(5);
  cases[2].verdict = VERDICT_SKIP;
  report_set(&cases[2].message, "not applicable");
  dispatch_stats_t stats;
  int64_t start = rc_clock_mono_ms();
  run_fake(&f, items, 5, cases, 1, false, &stats);
  int64_t took = rc_clock_mono_ms() - start;
  ck_assert_int_eq(stats.interrupt_signal, SIGINT);
  ck_assert_int_eq(cases[0].verdict, VERDICT_PASS);
  ck_assert_int_eq(cases[1].verdict, VERDICT_SKIP);
  ck_assert_msg(strncmp(cases[1].message, "interrupted while running (after ", 33) == 0, "%s",
                cases[1].message);
  ck_assert_str_eq(cases[2].message, "not applicable");
  ck_assert_str_eq(cases[3].message, "not run: interrupted");
  ck_assert_str_eq(cases[4].message, "not run: interrupted");
  ck_assert_int_eq(cases[4].verdict, VERDICT_SKIP);
  ck_assert_uint_eq(stats.executed, 1);
  ck_assert_uint_eq(stats.not_run, 3);
  ck_assert_int_ge(f.abandoned[1], 1);
  ck_assert_int_eq(f.abandoned[0], 0);
  /* The attempt would have slept 30 s; SIGTERM to its group ended it at once. */
  ck_assert_msg(took < 10000, "interrupt took %lld ms", (long long)took);
  /* Finished: item 0, then item 1 (cut short); never-started items are not reported. */
  ck_assert_int_eq(f.finished_count, 2);
  free_cases(cases, 5);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dispatch");
  TCase *tc = tcase_create("dispatch");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, dispatch_retries_in_process);
  tcase_add_test(tc, dispatch_retries_in_supervisors);
  tcase_add_test(tc, dispatch_runs_jobs_at_once);
  tcase_add_test(tc, dispatch_supervisor_death_is_an_error);
  tcase_add_test(tc, dispatch_interrupt_stops_and_marks_the_rest);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
