/* Unit tests of refworker's background processes (reference/bgprocess.c) and expiring
 * caches (reference/expiring_cache.c), on a real libevent loop with real time.
 *
 * Requirements (shared/spec/requirements.md): LC-02 (request ids "<desc>-<n>" from 0 per
 * desc), BG-03 (in flight until the work is done), BG-04 (transactions charged to the
 * process that runs them), BG-05 (exceptions logged at once at
 * ERROR with a traceback, in the handling context), BG-07 (no Twisted "Unhandled error in
 * Deferred:"), BG-09 (idle processes report 0), CA-01..CA-07 (seed A, Synapse PR #3932:
 * the reaper is armed at construction). Each bug switch of bugs.h that lives here is
 * checked to change exactly its behaviour. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgprocess.h"
#include "expiring_cache.h"
#include "metrics.h"
#include "rc_clock.h"
#include "test_support.h"
#include "wlog.h"

static struct event_base *base;
static metrics_t *metrics;
static bgprocess_table_t *processes;
static char *temp_dir;
static char *log_path;

static void setup_with(metrics_style_t style, bug_set_t bugs) {
  temp_dir = test_make_temp_dir("test_refworker_bgprocess");
  log_path = test_path(temp_dir, "worker.log");
  rc_error_t err;
  ck_assert_msg(wlog_open(log_path, &err) == 0, "%s", err.msg);
  base = event_base_new();
  ck_assert_ptr_nonnull(base);
  metrics = metrics_create(style, &err);
  ck_assert_ptr_nonnull(metrics);
  processes = bgprocess_table_create(base, metrics, bugs, &err);
  ck_assert_msg(processes != NULL, "%s", err.msg);
}

static void teardown_all(void) {
  bgprocess_table_destroy(processes);
  metrics_destroy(metrics);
  if (base != NULL) event_base_free(base);
  wlog_close();
  test_remove_tree(temp_dir);
  free(temp_dir);
  free(log_path);
  processes = NULL;
  metrics = NULL;
  base = NULL;
  libevent_global_shutdown();
}

/* Runs the loop for ms milliseconds. */
static void run_for(int64_t ms) {
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

static char *read_log(void) {
  char *text = test_read_file(log_path, NULL);
  ck_assert_ptr_nonnull(text);
  return text;
}

/* Runs the loop until the log holds `needle` or the deadline passes. */
static bool run_until_logged(const char *needle, int64_t deadline) {
  for (;;) {
    char *text = read_log();
    bool found = strstr(text, needle) != NULL;
    free(text);
    if (found) return true;
    if (rc_clock_mono_ms() >= deadline) return false;
    run_for(20);
  }
}

static char *render(void) {
  char *text = metrics_render(metrics, NULL);
  ck_assert_ptr_nonnull(text);
  return text;
}

static void expect_metric_line(const char *line, bool present) {
  char *text = render();
  ck_assert_msg((strstr(text, line) != NULL) == present, "Expected the line '%s' %s in:\n%s", line,
                present ? "present" : "absent", text);
  free(text);
}

/* ---- background processes ----------------------------------------------------------- */

START_TEST(test_runs_count_and_name_their_contexts) {
  setup_with(METRICS_STYLE_2018, 0);
  bgprocess_t *a = bgprocess_start(processes, BGPROCESS_HANDLER, "replication-PING");
  bgprocess_t *b = bgprocess_start(processes, BGPROCESS_HANDLER, "replication-PING");
  bgprocess_t *c = bgprocess_start(processes, BGPROCESS_HANDLER, "replication-RDATA-typing");
  ck_assert_str_eq(bgprocess_context(a), "replication-PING-0");
  ck_assert_str_eq(bgprocess_context(b), "replication-PING-1");
  ck_assert_str_eq(bgprocess_context(c), "replication-RDATA-typing-0");
  ck_assert_str_eq(bgprocess_desc(c), "replication-RDATA-typing");
  ck_assert(bgprocess_start_count(processes, "replication-PING") == 2);
  ck_assert(bgprocess_in_flight(processes, "replication-PING") == 2);
  bgprocess_enter(b);
  ck_assert_str_eq(wlog_context_current(), "replication-PING-1");
  wlog_context_reset();
  /* The handler returning does not end the process: its work may still run (BG-03). */
  bgprocess_returned(a);
  ck_assert(bgprocess_in_flight(processes, "replication-PING") == 2);
  bgprocess_finish(a);
  bgprocess_finish(b);
  bgprocess_finish(c);
  ck_assert(bgprocess_in_flight(processes, "replication-PING") == 0);
  expect_metric_line("synapse_background_process_start_count{name=\"replication-PING\"} 2.0\n",
                     true);
  expect_metric_line("synapse_background_process_in_flight_count{name=\"replication-PING\"} 0.0\n",
                     true);
  expect_metric_line(
      "synapse_background_process_start_count{name=\"replication-RDATA-typing\"} 1.0\n", true);
  bgprocess_t *d = bgprocess_start(processes, BGPROCESS_TASK, "replication-PING");
  ck_assert_str_eq(bgprocess_context(d), "replication-PING-2");
  bgprocess_finish(d);
  /* NULL runs are harmless. */
  bgprocess_enter(NULL);
  ck_assert_str_eq(wlog_context_current(), "sentinel");
  bgprocess_returned(NULL);
  bgprocess_finish(NULL);
  ck_assert(bgprocess_start_count(processes, "unknown") == 0);
  teardown_all();
}
END_TEST

START_TEST(test_modern_style_counts_with_total) {
  setup_with(METRICS_STYLE_MODERN, 0);
  bgprocess_finish(bgprocess_start(processes, BGPROCESS_HANDLER, "process-replication-data"));
  expect_metric_line(
      "# TYPE synapse_background_process_start_count counter\n"
      "synapse_background_process_start_count_total{name=\"process-replication-"
      "data\"} 1.0\n",
      true);
  teardown_all();
}
END_TEST

START_TEST(test_bug_handlers_not_background) {
  setup_with(METRICS_STYLE_2018, BUG_HANDLERS_NOT_BACKGROUND);
  bgprocess_t *run = bgprocess_start(processes, BGPROCESS_HANDLER, "replication-RDATA-typing");
  ck_assert_ptr_nonnull(run);
  ck_assert_str_eq(bgprocess_context(run), "sentinel");
  wlog_context_enter("elsewhere");
  bgprocess_enter(run);
  ck_assert_str_eq(wlog_context_current(), "sentinel");
  bgprocess_finish(run);
  expect_metric_line("replication-RDATA-typing", false);
  /* Only handlers: internal tasks such as a cache's reaper are still processes. */
  bgprocess_t *task = bgprocess_start(processes, BGPROCESS_TASK, "prune_cache_x");
  ck_assert_str_eq(bgprocess_context(task), "prune_cache_x-0");
  bgprocess_finish(task);
  expect_metric_line("synapse_background_process_start_count{name=\"prune_cache_x\"} 1.0\n", true);
  teardown_all();
}
END_TEST

START_TEST(test_bug_fire_and_forget) {
  setup_with(METRICS_STYLE_MODERN, BUG_FIRE_AND_FORGET);
  bgprocess_t *run = bgprocess_start(processes, BGPROCESS_HANDLER, "process-replication-data");
  ck_assert(bgprocess_in_flight(processes, "process-replication-data") == 1);
  bgprocess_returned(run);
  /* Gone from the gauge while its work goes on under its context. */
  ck_assert(bgprocess_in_flight(processes, "process-replication-data") == 0);
  ck_assert_str_eq(bgprocess_context(run), "process-replication-data-0");
  bgprocess_finish(run);
  ck_assert(bgprocess_in_flight(processes, "process-replication-data") == 0);
  /* Tasks are not handlers: in flight until finished. */
  bgprocess_t *task = bgprocess_start(processes, BGPROCESS_TASK, "prune_cache_x");
  bgprocess_returned(task);
  ck_assert(bgprocess_in_flight(processes, "prune_cache_x") == 1);
  bgprocess_finish(task);
  teardown_all();
}
END_TEST

/* BG-04: a database transaction is charged to the process whose context runs it, by
 * name; contexts of no process are charged to nothing. */
START_TEST(test_db_txn_charged_to_process) {
  setup_with(METRICS_STYLE_MODERN, 0);
  bgprocess_t *run = bgprocess_start(processes, BGPROCESS_HANDLER, "process-replication-data");
  expect_metric_line(
      "synapse_background_process_db_txn_count_total{name=\"process-replication-data\"} 0.0\n",
      true);
  bgprocess_charge_db_txn(processes, bgprocess_context(run));
  bgprocess_charge_db_txn(processes, bgprocess_context(run));
  bgprocess_charge_db_txn(processes, "sentinel");
  bgprocess_charge_db_txn(processes, "main");
  bgprocess_charge_db_txn(processes, "process-replication-data-x");
  bgprocess_charge_db_txn(processes, "process-replication-data");
  bgprocess_charge_db_txn(processes, "GET-0");
  bgprocess_charge_db_txn(NULL, "process-replication-data-0");
  ck_assert(bgprocess_db_txn_count(processes, "process-replication-data") == 2);
  ck_assert(bgprocess_db_txn_count(processes, "GET") == 0);
  expect_metric_line(
      "synapse_background_process_db_txn_count_total{name=\"process-replication-data\"} 2.0\n",
      true);
  bgprocess_finish(run);
  teardown_all();
}
END_TEST

/* --bug db-txn-not-charged: the series exist but nothing is ever charged. */
START_TEST(test_bug_db_txn_not_charged) {
  setup_with(METRICS_STYLE_2018, BUG_DB_TXN_NOT_CHARGED);
  bgprocess_t *run = bgprocess_start(processes, BGPROCESS_HANDLER, "replication-RDATA-typing");
  bgprocess_charge_db_txn(processes, bgprocess_context(run));
  ck_assert(bgprocess_db_txn_count(processes, "replication-RDATA-typing") == 0);
  expect_metric_line(
      "synapse_background_process_db_txn_count{name=\"replication-RDATA-typing\"} 0.0\n", true);
  bgprocess_finish(run);
  teardown_all();
}
END_TEST

START_TEST(test_exception_logged_at_once_with_traceback) {
  setup_with(METRICS_STYLE_2018, 0);
  bgprocess_t *run = bgprocess_start(processes, BGPROCESS_HANDLER, "replication-RDATA-typing");
  bgprocess_enter(run);
  handler_error_t error;
  HANDLER_RAISE(&error, "TypeError", "__new__() missing 1 required positional argument");
  bgprocess_report_exception(processes, "synapse.metrics.background_process_metrics", 42, &error,
                             "Background process '%s' threw an exception", bgprocess_desc(run));
  bgprocess_finish(run);
  wlog_context_reset();
  char *log = read_log();
  char expected[1024];
  snprintf(expected, sizeof expected,
           " - synapse.metrics.background_process_metrics - 42 - ERROR - "
           "replication-RDATA-typing-0 - Background process 'replication-RDATA-typing' threw an "
           "exception\nTraceback (most recent call last):\n  File \"test_refworker_bgprocess.c\", "
           "line %d, in %s\nTypeError: __new__() missing 1 required positional argument\n",
           error.line, error.function);
  ck_assert_msg(strstr(log, expected) != NULL,
                "BG-05 (ERROR with traceback at once, in the handling context)\n"
                "  Expected:%s\n  Actual log:\n%s",
                expected, log);
  free(log);
  /* Nothing more comes later (BG-07). */
  run_for(BGPROCESS_UNHANDLED_DELAY_MS + 300);
  log = read_log();
  ck_assert_ptr_null(strstr(log, "CRITICAL"));
  free(log);
  teardown_all();
}
END_TEST

START_TEST(test_bug_unhandled_background_error) {
  setup_with(METRICS_STYLE_2018, BUG_UNHANDLED_BACKGROUND_ERROR);
  bgprocess_t *run = bgprocess_start(processes, BGPROCESS_HANDLER, "replication-RDATA-typing");
  bgprocess_enter(run);
  handler_error_t error;
  HANDLER_RAISE(&error, "TypeError", "bad row");
  int64_t raised = rc_clock_mono_ms();
  bgprocess_report_exception(processes, "synapse.metrics.background_process_metrics", 42, &error,
                             "Background process '%s' threw an exception", bgprocess_desc(run));
  bgprocess_finish(run);
  wlog_context_reset();
  char *log = read_log();
  ck_assert_msg(strstr(log, "ERROR") == NULL && strstr(log, "threw an exception") == NULL,
                "bug G: no prompt ERROR\n%s", log);
  free(log);
  ck_assert(run_until_logged("Unhandled error in Deferred:",
                             raised + BGPROCESS_UNHANDLED_DELAY_MS + 2000));
  int64_t waited = rc_clock_mono_ms() - raised;
  ck_assert_msg(waited >= BGPROCESS_UNHANDLED_DELAY_MS - 50, "reported after %lld ms",
                (long long)waited);
  log = read_log();
  ck_assert_msg(
      strstr(log, " - twisted - ") != NULL &&
          strstr(log, " - CRITICAL - sentinel - Unhandled error in Deferred:\n") != NULL &&
          strstr(log, " - CRITICAL - sentinel - \nTraceback (most recent call last):\n") != NULL &&
          strstr(log, "\nTypeError: bad row\n") != NULL,
      "bug G: Twisted's two CRITICAL events, in the context current then\n%s", log);
  free(log);
  /* A report still pending at destroy is dropped without leaking. */
  HANDLER_RAISE(&error, "TypeError", "never reported");
  bgprocess_report_exception(processes, "x", 1, &error, "x");
  teardown_all();
}
END_TEST

/* ---- expiring caches ---------------------------------------------------------------- */

static expiring_cache_t *make_cache(const char *spec_text, bool needs_start) {
  expiring_cache_spec_t spec;
  rc_error_t err;
  ck_assert_msg(expiring_cache_parse_spec(spec_text, &spec, &err) == 0, "%s", err.msg);
  expiring_cache_t *cache =
      expiring_cache_create(base, &spec, metrics, processes, needs_start, &err);
  ck_assert_msg(cache != NULL, "%s", err.msg);
  return cache;
}

START_TEST(test_cache_spec_parsing) {
  expiring_cache_spec_t spec;
  rc_error_t err;
  ck_assert_int_eq(expiring_cache_parse_spec("device_updates:1000:5", &spec, &err), 0);
  ck_assert_str_eq(spec.name, "device_updates");
  ck_assert_int_eq(spec.expiry_ms, 1000);
  ck_assert_int_eq(spec.max_len, 5);
  ck_assert(!spec.reset_on_get);
  ck_assert_int_eq(expiring_cache_parse_spec("s.c-1:0:0:reset-on-get", &spec, &err), 0);
  ck_assert(spec.reset_on_get);
  ck_assert_int_eq(spec.expiry_ms, 0);
  static const struct {
    const char *text, *error;
  } bad[] = {
      {"x:1000", "expected NAME:EXPIRY_MS:MAX_LEN[:reset-on-get]"},
      {"x:1:2:reset-on-get:more", "expected NAME:EXPIRY_MS:MAX_LEN[:reset-on-get]"},
      {":1000:5", "the name must have 1 to"},
      {"a b:1000:5", "the name may only hold"},
      {"x:-1:5", "EXPIRY_MS must be a whole number"},
      {"x:99999999999:5", "EXPIRY_MS must be a whole number"},
      {"x:10:five", "MAX_LEN must be a whole number"},
      {"x:10:5:reset", "the only flag is 'reset-on-get', got 'reset'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(expiring_cache_parse_spec(bad[i].text, &spec, &err), -1);
    ck_assert_msg(strstr(err.msg, bad[i].error) != NULL && strstr(err.msg, "--cache") != NULL,
                  "'%s': expected '%s' in '%s'", bad[i].text, bad[i].error, err.msg);
  }
}
END_TEST

START_TEST(test_cache_size_bound_is_fifo_and_counted) {
  setup_with(METRICS_STYLE_MODERN, 0);
  expiring_cache_t *cache = make_cache("device_updates:0:5", false);
  rc_error_t err;
  char key[32], value[64];
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "@u%d:test", i);
    snprintf(value, sizeof value, "[\"@u%d:test\",false,false]", i);
    ck_assert_int_eq(expiring_cache_set(cache, key, value, &err), 0);
    /* Re-setting a key keeps its place: u0 is still the oldest after this. */
    if (i == 2) ck_assert_int_eq(expiring_cache_set(cache, "@u0:test", "[\"again\"]", &err), 0);
  }
  ck_assert_uint_eq(expiring_cache_size(cache), 5);
  ck_assert_ptr_null(expiring_cache_get(cache, "@u4:test"));
  ck_assert_str_eq(expiring_cache_get(cache, "@u5:test"), "[\"@u5:test\",false,false]");
  ck_assert_str_eq(expiring_cache_get(cache, "@u9:test"), "[\"@u9:test\",false,false]");
  expect_metric_line("synapse_util_caches_cache_size{name=\"device_updates\"} 5.0\n", true);
  expect_metric_line(
      "synapse_util_caches_cache_evicted_size{name=\"device_updates\",reason=\"size\"} 5.0\n",
      true);
  expect_metric_line(
      "synapse_util_caches_cache_evicted_size{name=\"device_updates\",reason=\"time\"} 0.0\n",
      true);
  expect_metric_line("synapse_util_caches_cache_hits{name=\"device_updates\"} 2.0\n", true);
  expect_metric_line("synapse_util_caches_cache{name=\"device_updates\"} 3.0\n", true);
  /* expiry 0: no reaper, no prune process (CA-06). */
  ck_assert(!expiring_cache_reaper_armed(cache));
  run_for(300);
  expect_metric_line("prune_cache_device_updates", false);
  expiring_cache_destroy(cache);
  teardown_all();
}
END_TEST

/* CA-01..CA-04, CA-07: reaping starts at creation and removes entries older than E. */
/* --bug cache-prune-stays-in-flight (CA-07's self-test): every reaper run stays in the
 * in-flight count, one more per tick; handler runs are not affected. */
START_TEST(test_bug_cache_prune_stays_in_flight) {
  setup_with(METRICS_STYLE_MODERN, BUG_CACHE_PRUNE_STAYS_IN_FLIGHT);
  expiring_cache_t *cache = make_cache("device_updates:200:0", false);
  run_for(450); /* ticks at 100, 200, 300, 400 ms */
  double starts = bgprocess_start_count(processes, "prune_cache_device_updates");
  ck_assert_msg(starts >= 3, "started %.0f times", starts);
  ck_assert(bgprocess_in_flight(processes, "prune_cache_device_updates") == starts);
  bgprocess_t *run = bgprocess_start(processes, BGPROCESS_HANDLER, "process-replication-data");
  bgprocess_finish(run);
  ck_assert(bgprocess_in_flight(processes, "process-replication-data") == 0);
  expiring_cache_destroy(cache);
  teardown_all();
}
END_TEST

START_TEST(test_cache_reaper_armed_at_creation) {
  setup_with(METRICS_STYLE_2018, 0);
  expiring_cache_t *cache = make_cache("device_updates:400:0", false);
  ck_assert_str_eq(expiring_cache_name(cache), "device_updates");
  ck_assert(expiring_cache_reaper_armed(cache));
  rc_error_t err;
  int64_t inserted = rc_clock_mono_ms();
  ck_assert_int_eq(expiring_cache_set(cache, "@u1:test", "[\"@u1:test\"]", &err), 0);
  /* Before E the entry is still there (CA-03), whatever the ticks did. */
  run_for(300);
  ck_assert_uint_eq(expiring_cache_size(cache), 1);
  /* Gone by 1.5 E (+ margin), by the reaper alone (CA-02). */
  while (expiring_cache_size(cache) > 0 && rc_clock_mono_ms() < inserted + 600 + 400) run_for(20);
  int64_t gone = rc_clock_mono_ms() - inserted;
  ck_assert_msg(expiring_cache_size(cache) == 0 && gone >= 400,
                "CA-02: expected removal in [E, 1.5E + margin], size %zu after %lld ms",
                expiring_cache_size(cache), (long long)gone);
  double starts = bgprocess_start_count(processes, "prune_cache_device_updates");
  ck_assert_msg(starts >= 2, "CA-01: prune_cache_device_updates started %.0f times", starts);
  ck_assert(bgprocess_in_flight(processes, "prune_cache_device_updates") == 0);
  expect_metric_line("synapse_util_caches_cache:size{name=\"device_updates\"} 0.0\n", true);
  expect_metric_line("synapse_util_caches_cache:evicted_size{name=\"device_updates\"} 1.0\n", true);
  expect_metric_line(
      "synapse_background_process_in_flight_count{name=\"prune_cache_device_updates\"} 0.0\n",
      true);
  char *log = read_log();
  ck_assert_msg(
      strstr(log, " - synapse.util.caches.expiringcache - ") != NULL &&
          strstr(log, " - DEBUG - prune_cache_device_updates-") != NULL &&
          strstr(log, " - [device_updates] _prune_cache before: 1, after len: 0\n") != NULL,
      "CA-07: prune lines under prune_cache_<name>-<n>\n%s", log);
  free(log);
  /* The period is E/2 = 200 ms: a further second adds about five ticks. */
  run_for(1000);
  double more = bgprocess_start_count(processes, "prune_cache_device_updates") - starts;
  ck_assert_msg(more >= 4 && more <= 6, "CA-01: %.0f ticks in 1000 ms at a 200 ms period", more);
  expiring_cache_destroy(cache);
  teardown_all();
}
END_TEST

START_TEST(test_cache_reset_on_get_keeps_read_entries) {
  setup_with(METRICS_STYLE_MODERN, 0);
  expiring_cache_t *cache = make_cache("sessions:400:0:reset-on-get", false);
  rc_error_t err;
  expiring_cache_set(cache, "read", "1", &err);
  expiring_cache_set(cache, "unread", "2", &err);
  int64_t start = rc_clock_mono_ms();
  while (rc_clock_mono_ms() < start + 1200) {
    ck_assert_msg(expiring_cache_get(cache, "read") != NULL, "a read entry expired");
    run_for(100);
  }
  ck_assert_ptr_null(expiring_cache_get(cache, "unread"));
  ck_assert_uint_eq(expiring_cache_size(cache), 1);
  expect_metric_line(
      "synapse_util_caches_cache_evicted_size{name=\"sessions\",reason=\"time\"} 1.0\n", true);
  expiring_cache_destroy(cache);
  teardown_all();
}
END_TEST

/* Bug A: without the start call nobody makes, nothing is ever reaped. */
START_TEST(test_bug_cache_needs_start) {
  setup_with(METRICS_STYLE_2018, BUG_CACHE_NEEDS_START);
  expiring_cache_t *cache = make_cache("device_updates:200:0", true);
  ck_assert(!expiring_cache_reaper_armed(cache));
  rc_error_t err;
  expiring_cache_set(cache, "@u1:test", "[\"@u1:test\"]", &err);
  run_for(700);
  ck_assert_uint_eq(expiring_cache_size(cache), 1);
  expect_metric_line("prune_cache_device_updates", false);
  expect_metric_line("synapse_util_caches_cache:size{name=\"device_updates\"} 1.0\n", true);
  /* The start call works when made (Synapse <= v0.33.5's start()). */
  ck_assert_int_eq(expiring_cache_start(cache, &err), 0);
  ck_assert_int_eq(expiring_cache_start(cache, &err), 0);
  ck_assert(expiring_cache_reaper_armed(cache));
  int64_t deadline = rc_clock_mono_ms() + 1000;
  while (expiring_cache_size(cache) > 0 && rc_clock_mono_ms() < deadline) run_for(20);
  ck_assert_uint_eq(expiring_cache_size(cache), 0);
  expiring_cache_destroy(cache);
  teardown_all();
}
END_TEST


/* wlog's callback rules on real loop callbacks: one callback leaves a context behind,
 * the next one begins with wlog_callback_begin. */
static void leave_context_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  wlog_context_enter(arg); /* and returns without wlog_callback_end: a leak */
}

static void next_callback_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  wlog_callback_begin();
  wlog_write("test", 1, WLOG_LEVEL_INFO, "next callback runs");
  wlog_context_enter("own-0");
  wlog_context_restore("sentinel");
  wlog_write("test", 2, WLOG_LEVEL_INFO, "after restore");
  wlog_callback_end();
}

static void run_two_callbacks(const char *leaked) {
  struct timeval zero = {0, 0}, later = {0, 10000};
  ck_assert_int_eq(event_base_once(base, -1, EV_TIMEOUT, leave_context_cb, (void *)leaked, &zero),
                   0);
  ck_assert_int_eq(event_base_once(base, -1, EV_TIMEOUT, next_callback_cb, NULL, &later), 0);
  run_for(50);
}

START_TEST(test_callback_rules) {
  setup_with(METRICS_STYLE_MODERN, 0);
  /* v1.x: the warning in the leaked context, then the callback in the sentinel. */
  run_two_callbacks("x-0");
  char *text = read_log();
  ck_assert_msg(strstr(text, " - synapse.logging.context - ") != NULL &&
                    strstr(text, " - WARNING - x-0 - Expected logging context sentinel but found "
                                 "x-0\n") != NULL,
                "%s", text);
  ck_assert_msg(strstr(text, " - INFO - sentinel - next callback runs\n") != NULL, "%s", text);
  ck_assert_msg(strstr(text, " - INFO - sentinel - after restore\n") != NULL, "%s", text);
  free(text);
  /* v0.33: the v0.29-v0.99 text and logger. */
  wlog_set_era(0, 33);
  run_two_callbacks("y-1");
  text = read_log();
  ck_assert_msg(strstr(text, " - synapse.util.logcontext - ") != NULL &&
                    strstr(text, " - WARNING - y-1 - Unexpected logging context: y-1 is not "
                                 "sentinel\n") != NULL,
                "%s", text);
  free(text);
  /* The leak: the context carries on into the next callback and past a restore. */
  wlog_set_era(1, 66);
  wlog_set_leak(true);
  run_two_callbacks("z-2");
  text = read_log();
  ck_assert_msg(strstr(text, " - INFO - z-2 - next callback runs\n") != NULL, "%s", text);
  ck_assert_msg(strstr(text, " - INFO - own-0 - after restore\n") != NULL, "%s", text);
  free(text);
  wlog_set_leak(false);
  wlog_context_reset();
  teardown_all();
}
END_TEST

static Suite *bgprocess_suite(void) {
  Suite *s = suite_create("refworker_bgprocess");
  TCase *bg = tcase_create("bgprocess");
  tcase_set_timeout(bg, 30);
  tcase_add_test(bg, test_runs_count_and_name_their_contexts);
  tcase_add_test(bg, test_modern_style_counts_with_total);
  tcase_add_test(bg, test_bug_handlers_not_background);
  tcase_add_test(bg, test_bug_fire_and_forget);
  tcase_add_test(bg, test_db_txn_charged_to_process);
  tcase_add_test(bg, test_bug_db_txn_not_charged);
  tcase_add_test(bg, test_exception_logged_at_once_with_traceback);
  tcase_add_test(bg, test_bug_unhandled_background_error);
  tcase_add_test(bg, test_callback_rules);
  suite_add_tcase(s, bg);
  TCase *cache = tcase_create("expiring_cache");
  tcase_set_timeout(cache, 30);
  tcase_add_test(cache, test_cache_spec_parsing);
  tcase_add_test(cache, test_cache_size_bound_is_fifo_and_counted);
  tcase_add_test(cache, test_cache_reaper_armed_at_creation);
  tcase_add_test(cache, test_cache_reset_on_get_keeps_read_entries);
  tcase_add_test(cache, test_bug_cache_needs_start);
  tcase_add_test(cache, test_bug_cache_prune_stays_in_flight);
  suite_add_tcase(s, cache);
  return s;
}

int main(void) {
  return test_run_suite(bgprocess_suite());
}
