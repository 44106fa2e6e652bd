/* Unit tests of harness/prom.c: the Prometheus text format parser and its lookups.
 * Contract: harness/prom.h. Includes a real Synapse 1.66 worker scrape
 * (shared/reference/synapse-1.66/worker2-metrics.txt) and a mutation run over it. */
#include <check.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "test_support.h"

/* Parses a copy of text that holds exactly its bytes (no NUL after it), so a read past
 * the end is caught by ASan and valgrind. */
static prom_t *parse_exact(const char *text, size_t len, rc_error_t *err) {
  char *copy = malloc(len ? len : 1);
  ck_assert_ptr_nonnull(copy);
  memcpy(copy, text, len);
  prom_t *p = prom_parse(copy, len, err);
  free(copy);
  return p;
}

static prom_t *parse_ok(const char *text) {
  rc_error_t err = {{0}};
  prom_t *p = parse_exact(text, strlen(text), &err);
  ck_assert_msg(p != NULL, "expected to parse, got: %s\n--- text:\n%s", err.msg, text);
  return p;
}

static double value_of(const prom_t *p, const char *metric, const char *label, const char *value) {
  prom_match_t m = {label, value};
  const prom_sample_t *s = prom_find(p, metric, label ? &m : NULL, label ? 1 : 0);
  ck_assert_msg(s != NULL, "no sample %s{%s=\"%s\"}", metric, label ? label : "",
                value ? value : "");
  return s->value;
}

START_TEST(test_samples_labels_values) {
  const char *text =
      "# HELP http_requests_total The total number of \\\\ HTTP \\n requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
      "\n"
      "# A plain comment, ignored\n"
      "#\n"
      "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
      "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
      "metric_without_timestamp_and_labels 12.47\n"
      "something_weird{problem=\"division by zero\"} +Inf -3982045\n"
      "minus_inf -Inf\n"
      "not_a_number NaN\n"
      "  leading_blanks\t{ a = \"x\" , b=\"y\", } 5\r\n"
      "empty_labels{} 0\n"
      "colon:name:x 1e-3\n"
      "no_final_newline 7";
  prom_t *p = parse_ok(text);
  ck_assert_uint_eq(prom_sample_count(p), 11);
  const prom_sample_t *s = prom_sample_at(p, 0);
  ck_assert_str_eq(s->name, "http_requests_total");
  ck_assert_uint_eq(s->label_count, 2);
  ck_assert_str_eq(s->labels[0].name, "method");
  ck_assert_str_eq(s->labels[1].value, "200");
  ck_assert(s->value == 1027);
  ck_assert(s->has_timestamp);
  ck_assert_int_eq(s->timestamp_ms, 1395066363000LL);
  ck_assert_uint_eq(s->line, 3);
  ck_assert_uint_eq(prom_sample_at(p, 1)->line, 4);
  ck_assert_str_eq(prom_help_of(p, "http_requests_total"),
                   "The total number of \\ HTTP \n requests.");
  ck_assert_str_eq(prom_type_of(p, "http_requests_total"), "counter");

  s = prom_sample_at(p, 2);
  ck_assert_str_eq(prom_sample_label(s, "path"), "C:\\DIR\\FILE.TXT");
  ck_assert_str_eq(prom_sample_label(s, "error"), "Cannot find file:\n\"FILE.TXT\"");
  ck_assert(s->value == 1.458255915e9);
  ck_assert(!s->has_timestamp);
  ck_assert(value_of(p, "metric_without_timestamp_and_labels", NULL, NULL) == 12.47);
  s = prom_find(p, "something_weird", NULL, 0);
  ck_assert(isinf(s->value) && s->value > 0);
  ck_assert_int_eq(s->timestamp_ms, -3982045);
  double v = value_of(p, "minus_inf", NULL, NULL);
  ck_assert(isinf(v) && v < 0);
  ck_assert(isnan(value_of(p, "not_a_number", NULL, NULL)));
  s = prom_find(p, "leading_blanks", NULL, 0);
  ck_assert_uint_eq(s->label_count, 2);
  ck_assert_str_eq(prom_sample_label(s, "a"), "x");
  ck_assert_str_eq(prom_sample_label(s, "b"), "y");
  ck_assert_uint_eq(prom_find(p, "empty_labels", NULL, 0)->label_count, 0);
  ck_assert(value_of(p, "colon:name:x", NULL, NULL) == 1e-3);
  ck_assert(value_of(p, "no_final_newline", NULL, NULL) == 7);
  ck_assert_ptr_null(prom_sample_label(s, "missing"));
  ck_assert_ptr_null(prom_type_of(p, "minus_inf"));
  prom_destroy(p);
}
END_TEST

START_TEST(test_empty_and_comment_only) {
  rc_error_t err;
  prom_t *p = prom_parse("", 0, &err);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq(prom_sample_count(p), 0);
  ck_assert_ptr_null(prom_sample_at(p, 0));
  prom_destroy(p);
  p = prom_parse(NULL, 0, &err);
  ck_assert_ptr_nonnull(p);
  prom_destroy(p);
  p = parse_ok("\n\n# only comments\n   \n# HELP\n");
  ck_assert_uint_eq(prom_sample_count(p), 0);
  prom_destroy(p);
  ck_assert_ptr_null(prom_parse(NULL, 5, &err));
  ck_assert_str_eq(err.msg, "no text to parse (NULL)");
  prom_destroy(NULL);
}
END_TEST

/* Counters with and without _total (F-16), and TYPE lookups through suffixes. */
START_TEST(test_total_twins) {
  const char *text =
      "# TYPE synapse_background_process_start_count counter\n"
      "synapse_background_process_start_count_total{name=\"process-replication-data\"} 4\n"
      "synapse_background_process_start_count_total{name=\"prune_cache_x\",server_name=\"hs\"} 2\n"
      "old_style_count{name=\"a\"} 9\n"
      "# TYPE lat histogram\n"
      "lat_bucket{le=\"+Inf\"} 3\n"
      "lat_sum 1.5\n"
      "lat_count 3\n"
      "ev{name=\"c\",reason=\"time\"} 2\n"
      "ev{name=\"c\",reason=\"size\"} 5\n"
      "ev{name=\"d\",reason=\"size\"} 100\n";
  prom_t *p = parse_ok(text);
  ck_assert(value_of(p, "synapse_background_process_start_count", "name",
                     "process-replication-data") == 4);
  /* An extra label (server_name) does not stop a match. */
  ck_assert(value_of(p, "synapse_background_process_start_count", "name", "prune_cache_x") == 2);
  ck_assert(value_of(p, "old_style_count_total", "name", "a") == 9);
  ck_assert_ptr_null(
      prom_find(p, "synapse_background_process_start_count", &(prom_match_t){"name", "nope"}, 1));
  ck_assert_ptr_null(prom_find(p, "synapse_background_process_start", NULL, 0));
  ck_assert(prom_name_matches("x_total", "x"));
  ck_assert(prom_name_matches("x", "x_total"));
  ck_assert(prom_name_matches("x", "x"));
  ck_assert(!prom_name_matches("x_totalx", "x"));
  ck_assert(!prom_name_matches("xy_total", "x"));
  ck_assert(!prom_name_matches("x_created", "x"));
  ck_assert(!prom_name_matches(NULL, "x"));
  ck_assert_str_eq(prom_type_of(p, "synapse_background_process_start_count_total"), "counter");
  ck_assert_str_eq(prom_type_of(p, "lat_bucket"), "histogram");
  ck_assert_str_eq(prom_type_of(p, "lat_sum"), "histogram");
  ck_assert_str_eq(prom_type_of(p, "lat_count"), "histogram");
  ck_assert_ptr_null(prom_type_of(p, "old_style_count"));
  size_t found = 0;
  ck_assert(prom_sum(p, "ev", &(prom_match_t){"name", "c"}, 1, &found) == 7);
  ck_assert_uint_eq(found, 2);
  prom_match_t both[] = {{"name", "c"}, {"reason", "size"}};
  ck_assert(prom_sum(p, "ev", both, 2, &found) == 5);
  ck_assert_uint_eq(found, 1);
  ck_assert(prom_sum(p, "nothing", NULL, 0, &found) == 0);
  ck_assert_uint_eq(found, 0);
  prom_destroy(p);
}
END_TEST

/* Numbers are read in the C locale even when the process uses a comma decimal point. */
START_TEST(test_locale_independent) {
  const char *old = setlocale(LC_NUMERIC, NULL);
  char *saved = old ? strdup(old) : NULL;
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8") == NULL && setlocale(LC_NUMERIC, "de_DE.utf8") == NULL) {
    free(saved);
    return; /* the locale is not installed here: nothing to show */
  }
  prom_t *p = parse_ok("x 1.5\ny 2.25e1\n");
  ck_assert(value_of(p, "x", NULL, NULL) == 1.5);
  ck_assert(value_of(p, "y", NULL, NULL) == 22.5);
  prom_destroy(p);
  rc_error_t err;
  ck_assert_ptr_null(parse_exact("x 1,5\n", 6, &err));
  setlocale(LC_NUMERIC, saved ? saved : "C");
  free(saved);
}
END_TEST

typedef struct bad_case {
  const char *text;
  const char *message; /* the exact error */
} bad_case_t;

static const bad_case_t BAD[] = {
    {"x{a=\"b\" 1\n", "line 1, column 9: expected ',' or '}' after a label value, got '1'"},
    {"ok 1\nx{a \"b\"} 1\n", "line 2, column 5: expected '=' after label name 'a', got '\"'"},
    {"x{a=b} 1\n", "line 1, column 5: expected '\"' starting the label value, got 'b'"},
    {"x{a=\"b} 1\n", "line 1, column 10: expected '\"' closing the label value, got end of line"},
    {"x{a=\"\\t\"} 1\n", "line 1, column 7: expected an escape \\\\, \\\" or \\n, got 't'"},
    {"x{a=\"b\\", "line 1, column 8: expected '\"' closing the label value, got end of line"},
    {"x{1a=\"b\"} 1\n", "line 1, column 3: expected a label name or '}', got '1'"},
    {"x{a=\"1\",a=\"2\"} 1\n", "line 1, column 9: label 'a' given twice"},
    {"x\n", "line 1, column 2: expected a sample value, got end of line"},
    {"x{} \n", "line 1, column 5: expected a sample value, got end of line"},
    {"x 1 2 3\n", "line 1, column 7: expected the end of the sample line, got '3'"},
    {"x abc\n", "line 1, column 3: expected a number (such as 1, -2.5e3, NaN, +Inf), got 'abc'"},
    {"x 1.5.6\n",
     "line 1, column 3: expected a number (such as 1, -2.5e3, NaN, +Inf), got '1.5.6'"},
    {"x 1 12a\n", "line 1, column 7: expected a digit in the timestamp, got 'a'"},
    {"x 1 -\n", "line 1, column 5: expected a timestamp (integer milliseconds), got '-'"},
    {"x 1 99999999999999999999\n", "line 1, column 5: timestamp out of range"},
    {"9x 1\n", "line 1, column 1: expected a metric name, '#' or a blank line, got '9'"},
    {"{a=\"b\"} 1\n", "line 1, column 1: expected a metric name, '#' or a blank line, got '{'"},
    {"x 1\n\n# TYPE x gauge\n# TYPE x counter\n",
     "line 4, column 8: second # TYPE line for 'x' (the first is on line 3)"},
    {"# HELP x a\n# HELP x b\n",
     "line 2, column 8: second # HELP line for 'x' (the first is on line 1)"},
    {"# TYPE x countr\n",
     "line 1, column 10: expected counter, gauge, histogram, summary or untyped, got 'c'"},
    {"# TYPE x counter extra\n", "line 1, column 18: expected the end of the # TYPE line, got 'e'"},
    {"# TYPE x\n",
     "line 1, column 9: expected counter, gauge, histogram, summary or untyped, got end of line"},
    {"# TYPE 1x counter\n", "line 1, column 8: expected a metric name, got '1'"},
    {"# HELP x bad \\q escape\n", "line 1, column 15: expected an escape \\\\ or \\n, got 'q'"},
    {"# TYPE x{ counter\n", "line 1, column 9: expected a blank after the metric name, got '{'"},
    {"x\x01 1\n",
     "line 1, column 2: expected a number (such as 1, -2.5e3, NaN, +Inf), got '\\x01'"},
    {"x{a=\"b\"} \x7f\n",
     "line 1, column 10: expected a number (such as 1, -2.5e3, NaN, +Inf), got '\\x7f'"},
};

START_TEST(test_errors) {
  const bad_case_t *c = &BAD[_i];
  rc_error_t err = {{0}};
  prom_t *p = parse_exact(c->text, strlen(c->text), &err);
  ck_assert_msg(p == NULL, "case %d should fail: %s", _i, c->text);
  ck_assert_msg(strcmp(err.msg, c->message) == 0, "case %d:\n  expected: %s\n  actual:   %s", _i,
                c->message, err.msg);
}
END_TEST

/* Bytes that a NUL-terminated parser would stop at are data here. */
START_TEST(test_embedded_nul) {
  rc_error_t err;
  const char text[] = "x{a=\"b\0c\"} 1\n";
  ck_assert_ptr_null(parse_exact(text, sizeof text - 1, &err));
  ck_assert_str_eq(err.msg, "line 1, column 7: NUL byte inside a label value");
  const char text2[] = "x 1\0\n";
  ck_assert_ptr_null(parse_exact(text2, sizeof text2 - 1, &err));
  ck_assert_str_eq(
      err.msg, "line 1, column 3: expected a number (such as 1, -2.5e3, NaN, +Inf), got '1\\x00'");
}
END_TEST

static char *read_scrape(size_t *len) {
  char *path =
      test_path(test_env("REPLCHECK_SHARED_DIR"), "reference/synapse-1.66/worker2-metrics.txt");
  char *text = test_read_file(path, len);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  free(path);
  return text;
}

/* A real scrape of a Synapse 1.66 generic worker parses, and its values read back. */
START_TEST(test_synapse_scrape) {
  size_t len = 0;
  char *text = read_scrape(&len);
  rc_error_t err = {{0}};
  prom_t *p = parse_exact(text, len, &err);
  ck_assert_msg(p != NULL, "worker2-metrics.txt: %s", err.msg);
  size_t lines = 0, comments = 0, blank = 0;
  for (char *c = text, *eol; c < text + len; c = eol + 1) {
    eol = memchr(c, '\n', (size_t)(text + len - c));
    if (eol == NULL) eol = text + len;
    lines++;
    if (*c == '#')
      comments++;
    else if (c == eol)
      blank++;
  }
  ck_assert_uint_eq(prom_sample_count(p), lines - comments - blank);
  ck_assert(value_of(p, "process_open_fds", NULL, NULL) == 20);
  ck_assert(value_of(p, "process_resident_memory_bytes", NULL, NULL) == 1.11423488e+08);
  ck_assert(value_of(p, "synapse_util_caches_cache:size", "name", "*getEvent*") == 8);
  ck_assert(value_of(p, "synapse_background_process_start_count", "name",
                     "process-replication-data") == 43);
  ck_assert(value_of(p, "synapse_background_process_start_count_total", "name",
                     "typing._handle_timeouts") == 7);
  ck_assert(value_of(p, "synapse_background_process_in_flight_count", "name",
                     "process-replication-data") == 0);
  prom_match_t time_evictions[] = {{"name", "well-known"}, {"reason", "time"}};
  ck_assert_ptr_nonnull(prom_find(p, "synapse_util_caches_cache:evicted_size", time_evictions, 2));
  ck_assert_str_eq(prom_type_of(p, "synapse_background_process_start_count"), "counter");
  ck_assert_str_eq(prom_type_of(p, "synapse_background_process_start_count_created"), "gauge");
  ck_assert_str_eq(prom_type_of(p, "python_twisted_reactor_tick_time_bucket"), "histogram");
  ck_assert_str_eq(prom_type_of(p, "synapse_background_process_in_flight_count"), "gauge");
  prom_match_t inf[] = {{"le", "+Inf"}};
  const prom_sample_t *bucket = prom_find(p, "python_twisted_reactor_tick_time_bucket", inf, 1);
  ck_assert_ptr_nonnull(bucket);
  ck_assert(bucket->value == 475);
  /* Every process-replication-data series the worker reported is at a known line. */
  size_t found = 0;
  prom_sum(p, "synapse_background_process_start_count",
           &(prom_match_t){"name", "process-replication-data"}, 1, &found);
  ck_assert_uint_eq(found, 2); /* the plain and the _total family both carry it */
  prom_destroy(p);
  free(text);
}
END_TEST

/* Every prefix of a small text parses or fails cleanly; the sample count never goes
 * down as the prefix grows past a line end. */
START_TEST(test_every_prefix) {
  const char *text =
      "# HELP a h\\n\n# TYPE a counter\na_total{x=\"1\\\"\\\\\",y=\"\"} 3 17\nb NaN\n";
  size_t len = strlen(text);
  for (size_t n = 0; n <= len; n++) {
    rc_error_t err = {{0}};
    prom_t *p = parse_exact(text, n, &err);
    if (p == NULL) ck_assert_msg(strncmp(err.msg, "line ", 5) == 0, "prefix %zu: %s", n, err.msg);
    prom_destroy(p);
  }
}
END_TEST

static uint64_t rng_state;
static uint64_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Mutations of the real scrape (flipped, inserted and deleted bytes, with the bytes the
 * grammar cares about over-represented) never crash and never read out of bounds;
 * every failure names a line. */
START_TEST(test_mutations) {
  size_t len = 0;
  char *text = read_scrape(&len);
  /* A 20 KiB window keeps the run short under valgrind; the mutations cover all of it. */
  size_t window = len < 20000 ? len : 20000;
  static const char interesting[] = "{}=\",\\#\n \t+-.eE:_0a\x01\x80\xff";
  rng_state = 0x9e3779b97f4a7c15ULL;
  char *buf = malloc(window + 64);
  ck_assert_ptr_nonnull(buf);
  size_t failures = 0;
  for (int round = 0; round < 300; round++) {
    size_t n = window;
    memcpy(buf, text + (len > window ? rng_next() % (len - window) : 0), n);
    int edits = 1 + (int)(rng_next() % 8);
    for (int e = 0; e < edits; e++) {
      size_t at = n ? rng_next() % n : 0;
      char c = interesting[rng_next() % (sizeof interesting - 1)];
      switch (rng_next() % 3) {
        case 0:
          if (n) buf[at] = c;
          break;
        case 1:
          if (n < window + 64) {
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = c;
            n++;
          }
          break;
        default:
          if (n) {
            memmove(buf + at, buf + at + 1, n - at - 1);
            n--;
          }
      }
    }
    rc_error_t err = {{0}};
    prom_t *p = parse_exact(buf, n, &err);
    if (p == NULL) {
      failures++;
      ck_assert_msg(strncmp(err.msg, "line ", 5) == 0, "round %d: %s", round, err.msg);
    }
    for (size_t i = 0; i < prom_sample_count(p); i++)
      ck_assert_ptr_nonnull(prom_sample_at(p, i)->name);
    prom_destroy(p);
  }
  /* The mutations must actually exercise the error paths. */
  ck_assert_uint_gt(failures, 50);
  /* Random bytes too. */
  for (int round = 0; round < 200; round++) {
    size_t n = rng_next() % 512;
    for (size_t i = 0; i < n; i++) buf[i] = (char)(rng_next() & 0xff);
    rc_error_t err;
    prom_destroy(parse_exact(buf, n, &err));
  }
  free(buf);
  free(text);
}
END_TEST

static Suite *prom_suite(void) {
  Suite *s = suite_create("prom");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, test_samples_labels_values);
  tcase_add_test(tc, test_empty_and_comment_only);
  tcase_add_test(tc, test_total_twins);
  tcase_add_test(tc, test_locale_independent);
  tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof BAD / sizeof BAD[0]));
  tcase_add_test(tc, test_embedded_nul);
  suite_add_tcase(s, tc);
  TCase *real = tcase_create("real");
  tcase_set_timeout(real, 60);
  tcase_add_test(real, test_synapse_scrape);
  tcase_add_test(real, test_every_prefix);
  tcase_add_test(real, test_mutations);
  suite_add_tcase(s, real);
  return s;
}

int main(void) {
  return test_run_suite(prom_suite());
}
