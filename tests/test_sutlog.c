/* Unit tests of harness/sutlog.c: log lines parsed per the profile's format, scans from
 * an offset with partial and over-long lines, and a real Synapse 1.66 worker log
 * (shared/reference/synapse-1.66/worker2.log). Contract: harness/sutlog.h. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sutlog.h"
#include "test_support.h"

static profile_t text_profile = {.log_format = PROFILE_LOG_SYNAPSE_TEXT,
                                 .log_context_field = "request"};
static profile_t json_profile = {.log_format = PROFILE_LOG_JSON_LINES, .log_context_field = "ctx"};

typedef struct seen {
  int count;
  int records;
  sutlog_record_t last; /* fields copied below */
  char logger[128], level[32], context[128], message[512], line[1024], why_not[256];
  long offset;
} seen_t;

static bool keep(const sutlog_record_t *r, void *arg) {
  seen_t *s = arg;
  s->count++;
  s->records += r->is_record;
  s->last = *r;
  snprintf(s->logger, sizeof s->logger, "%s", r->logger);
  snprintf(s->level, sizeof s->level, "%s", r->level);
  snprintf(s->context, sizeof s->context, "%s", r->context);
  snprintf(s->message, sizeof s->message, "%s", r->message);
  snprintf(s->line, sizeof s->line, "%s", r->line);
  snprintf(s->why_not, sizeof s->why_not, "%s", r->why_not);
  s->offset = r->offset;
  return false;
}

static seen_t parse(const profile_t *p, const char *line) {
  seen_t s = {0};
  sutlog_parse_line(p, line, strlen(line), 7, keep, &s);
  ck_assert_int_eq(s.count, 1);
  return s;
}

START_TEST(test_text_records) {
  seen_t s = parse(&text_profile,
                   "2026-11-29 00:24:32,170 - synapse.replication.tcp.handler - 61 - ERROR - "
                   "process-replication-data-3 - Failed to handle command - with a dash - inside");
  ck_assert(s.last.is_record);
  ck_assert_str_eq(s.logger, "synapse.replication.tcp.handler");
  ck_assert_str_eq(s.level, "ERROR");
  ck_assert_str_eq(s.context, "process-replication-data-3");
  ck_assert_str_eq(s.message, "Failed to handle command - with a dash - inside");
  ck_assert_int_eq(s.offset, 7);
  /* The sentinel printed as an empty field. */
  s = parse(&text_profile,
            "2018-08-22 10:00:00,001 - synapse.storage._base - 1 - WARNING -  - "
            "Starting db txn 'x' from sentinel context");
  ck_assert(s.last.is_record);
  ck_assert_str_eq(s.context, "");
  ck_assert_str_eq(s.message, "Starting db txn 'x' from sentinel context");
  ck_assert(sutlog_is_sentinel(s.context));
  ck_assert(sutlog_is_sentinel("sentinel"));
  ck_assert(!sutlog_is_sentinel("main"));
  /* Pre-v0.27 configs: "%(request)s- %(message)s". */
  s = parse(&text_profile,
            "2017-12-01 10:00:00,001 - twisted - 1 - CRITICAL - replication-PING-4- "
            "Unhandled error in Deferred:");
  ck_assert(s.last.is_record);
  ck_assert_str_eq(s.context, "replication-PING-4");
  ck_assert_str_eq(s.message, "Unhandled error in Deferred:");
  /* An empty message. */
  s = parse(&text_profile, "2017-12-01 10:00:00,001 - twisted - 1 - CRITICAL - sentinel - ");
  ck_assert(s.last.is_record);
  ck_assert_str_eq(s.message, "");
}
END_TEST

START_TEST(test_text_continuations) {
  const char *lines[] = {
      "Traceback (most recent call last):",
      "  File \"x.py\", line 3, in f",
      "ValueError: not enough values to unpack - expected 2",
      "2026-11-29 00:24:32,170 - logger - 12x - INFO - main - lineno not a number",
      "2026-11-29 00:24:32,170 - logger - 12 - LOUD - main - unknown level",
      "2026-11-29 00:24:32,170 - logger - 12 - INFO",
      "x - logger - 12 - INFO - main - no time",
      "",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    seen_t s = parse(&text_profile, lines[i]);
    ck_assert_msg(!s.last.is_record, "'%s' should be a continuation", lines[i]);
    ck_assert_str_eq(s.line, lines[i]);
    ck_assert_str_eq(s.level, "");
    ck_assert_str_eq(s.message, "");
  }
}
END_TEST

START_TEST(test_json_lines) {
  seen_t s = parse(&json_profile,
                   "{\"log\": \"Failed to handle command\", \"namespace\": \"synapse.x\", "
                   "\"level\": \"ERROR\", \"ctx\": \"process-replication-data-0\", \"time\": 1.5}");
  ck_assert(s.last.is_record);
  ck_assert_str_eq(s.level, "ERROR");
  ck_assert_str_eq(s.logger, "synapse.x");
  ck_assert_str_eq(s.context, "process-replication-data-0");
  ck_assert_str_eq(s.message, "Failed to handle command");
  s = parse(&json_profile, "{\"log\": \"m\", \"level\": \"INFO\", \"ctx\": null}");
  ck_assert(s.last.is_record);
  ck_assert_str_eq(s.context, "");
  ck_assert_str_eq(s.logger, "");
  const char *not_records[] = {"Traceback (most recent call last):", "[1, 2]", "{\"log\": \"m\"}",
                               "{\"level\": 3, \"log\": \"m\"}", "{broken"};
  for (size_t i = 0; i < sizeof not_records / sizeof not_records[0]; i++)
    ck_assert_msg(!parse(&json_profile, not_records[i]).last.is_record, "%s", not_records[i]);
}
END_TEST


/* Both separators (seed-behaviours.md §1.1) with a message that holds " - " itself, and
 * the empty (sentinel) context in either form. */
START_TEST(test_text_separators) {
  static const struct {
    const char *line, *context, *message;
  } cases[] = {
      {"2018-08-22 10:00:00,001 - synapse.a - 1 - INFO - GET-3 - Processed - 200 - ok", "GET-3",
       "Processed - 200 - ok"},
      {"2017-12-01 10:00:00,001 - synapse.a - 1 - INFO - GET-3- Processed - 200 - ok", "GET-3",
       "Processed - 200 - ok"},
      {"2017-12-01 10:00:00,001 - synapse.a - 1 - WARNING - - Starting db txn 'x' - late", "",
       "Starting db txn 'x' - late"},
      {"2018-08-22 10:00:00,001 - synapse.a - 1 - WARNING -  - Starting db txn 'x' - late", "",
       "Starting db txn 'x' - late"},
      {"2017-12-01 10:00:00,001 - synapse.a - 1 - INFO - replication-RDATA-events-12- rows",
       "replication-RDATA-events-12", "rows"},
      {"2018-08-22 10:00:00,001 - synapse.a - 1 - INFO - None - Starting", "None", "Starting"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    seen_t s = parse(&text_profile, cases[i].line);
    ck_assert_msg(s.last.is_record, "%s: %s", cases[i].line, s.why_not);
    ck_assert_str_eq(s.why_not, "");
    ck_assert_str_eq(s.context, cases[i].context);
    ck_assert_str_eq(s.message, cases[i].message);
    ck_assert_str_eq(s.level, i == 2 || i == 3 ? "WARNING" : "INFO");
  }
}
END_TEST

/* A line that is not a record says why, naming the field that is wrong. */
START_TEST(test_malformed_reasons) {
  static const struct {
    const profile_t *profile;
    const char *line, *why;
  } cases[] = {
      {&text_profile, "", "an empty line"},
      {&text_profile, "Traceback (most recent call last):", "fewer than five"},
      {&text_profile, "x - logger - 12 - INFO - main - m", "time field"},
      {&text_profile, "2026-11-29 00:24:32,170 - logger - 12x - INFO - main - m",
       "line number field is not a number"},
      {&text_profile, "2026-11-29 00:24:32,170 - logger -  - INFO - main - m",
       "line number field is empty"},
      {&text_profile, "2026-11-29 00:24:32,170 - logger - 12 - LOUD - main - m", "level field"},
      {&text_profile, "2026-11-29 00:24:32,170 - logger - 12 - INFO - main-message", "context"},
      {&json_profile, "{broken", "not JSON: "},
      {&json_profile, "[1, 2]", "not an object"},
      {&json_profile, "{\"log\": \"m\"}", "without a string \"level\""},
      {&json_profile, "{\"level\": \"INFO\"}", "without a string \"log\""},
      {&json_profile, "{\"level\": \"INFO\", \"level\": \"INFO\", \"log\": \"m\"}", "duplicate"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    seen_t s = parse(cases[i].profile, cases[i].line);
    ck_assert_msg(!s.last.is_record, "'%s' should not be a record", cases[i].line);
    ck_assert_msg(strstr(s.why_not, cases[i].why) != NULL, "'%s': reason '%s' lacks '%s'",
                  cases[i].line, s.why_not, cases[i].why);
  }
  /* NUL bytes and over-long lines too. */
  seen_t s = {0};
  sutlog_parse_line(&text_profile, "2026\0x", 6, 0, keep, &s);
  ck_assert_str_eq(s.why_not, "holds a NUL byte");
}
END_TEST

typedef struct timed {
  const profile_t *profile;
  long long ms;
  bool ok;
} timed_t;

static bool take_time(const sutlog_record_t *r, void *arg) {
  timed_t *t = arg;
  t->ok = sutlog_record_time_ms(t->profile, r, &t->ms);
  return false;
}

/* Record times: local-time text stamps with milliseconds, JSON "time" seconds. */
START_TEST(test_record_times) {
  setenv("TZ", "UTC", 1);
  tzset();
  timed_t t = {.profile = &text_profile};
  const char *line = "2018-08-22 10:00:01,234 - a - 1 - INFO - main - m";
  sutlog_parse_line(&text_profile, line, strlen(line), 0, take_time, &t);
  ck_assert(t.ok);
  ck_assert_int_eq(t.ms, 1534932001234LL);
  line = "2018-08-22 10:00:01 - a - 1 - INFO - main - no milliseconds";
  sutlog_parse_line(&text_profile, line, strlen(line), 0, take_time, &t);
  ck_assert(!t.ok);
  line = "Traceback (most recent call last):";
  sutlog_parse_line(&text_profile, line, strlen(line), 0, take_time, &t);
  ck_assert(!t.ok);
  t.profile = &json_profile;
  line = "{\"log\": \"m\", \"level\": \"INFO\", \"time\": 1534932001.5}";
  sutlog_parse_line(&json_profile, line, strlen(line), 0, take_time, &t);
  ck_assert(t.ok);
  ck_assert_int_eq(t.ms, 1534932001500LL);
  line = "{\"log\": \"m\", \"level\": \"INFO\", \"time\": \"soon\"}";
  sutlog_parse_line(&json_profile, line, strlen(line), 0, take_time, &t);
  ck_assert(!t.ok);
}
END_TEST

static char *tmp;
static void setup(void) {
  tmp = test_make_temp_dir("rc-sutlog");
}
static void teardown(void) {
  test_remove_tree(tmp);
  free(tmp);
}

static bool stop_at_error(const sutlog_record_t *r, void *arg) {
  keep(r, arg);
  return r->is_record && strcmp(r->level, "ERROR") == 0;
}

START_TEST(test_scan_offsets) {
  char *path = test_path(tmp, "sut.log");
  const char *text =
      "2026-01-01 00:00:00,000 - a - 1 - INFO - main - one\n"
      "2026-01-01 00:00:00,000 - a - 1 - ERROR - c-0 - two\r\n"
      "Traceback (most recent call last):\n"
      "2026-01-01 00:00:00,000 - a - 1 - ERROR - c-1 - three\n"
      "2026-01-01 00:00:00,000 - a - 1 - INFO - main - partial, still being writ";
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  long offset = 0;
  seen_t s = {0};
  ck_assert(sutlog_scan(&text_profile, path, &offset, 1 << 20, stop_at_error, &s));
  ck_assert_int_eq(s.count, 2);
  ck_assert_str_eq(s.message, "two"); /* the CR is not part of the message */
  ck_assert_int_eq(s.offset, 52);
  long after_two = offset;
  ck_assert_int_eq(after_two, 52 + 53);
  s = (seen_t){0};
  ck_assert(sutlog_scan(&text_profile, path, &offset, 1 << 20, stop_at_error, &s));
  ck_assert_int_eq(s.count, 2);
  ck_assert_int_eq(s.records, 1);
  ck_assert_str_eq(s.context, "c-1");
  /* The partial last line is left for later. */
  s = (seen_t){0};
  long before = offset;
  ck_assert(!sutlog_scan(&text_profile, path, &offset, 1 << 20, stop_at_error, &s));
  ck_assert_int_eq(s.count, 0);
  ck_assert_int_eq(offset, before);
  /* The byte bound stops a scan after the line that crosses it. */
  offset = 0;
  s = (seen_t){0};
  ck_assert(!sutlog_scan(&text_profile, path, &offset, 10, keep, &s));
  ck_assert_int_eq(s.count, 1);
  ck_assert_int_eq(offset, 52);
  /* A missing file is simply nothing. */
  char *missing = test_path(tmp, "none.log");
  offset = 0;
  ck_assert(!sutlog_scan(&text_profile, missing, &offset, 1 << 20, keep, &s));
  free(missing);
  free(path);
}
END_TEST

/* A line far longer than any record is one continuation, cut, and the next line is
 * still found. */
START_TEST(test_scan_long_line) {
  char *path = test_path(tmp, "long.log");
  size_t big = 200 * 1024;
  char *text = malloc(big + 200);
  memset(text, 'x', big);
  text[100] = '\0'; /* a NUL inside it too */
  const char *tail = "\n2026-01-01 00:00:00,000 - a - 1 - ERROR - c-0 - after\n";
  memcpy(text + big, tail, strlen(tail) + 1);
  ck_assert_int_eq(test_write_file(path, text, big + strlen(tail)), 0);
  long offset = 0;
  seen_t s = {0};
  ck_assert(sutlog_scan(&text_profile, path, &offset, 1 << 20, stop_at_error, &s));
  ck_assert_int_eq(s.count, 2);
  ck_assert_int_eq(s.records, 1);
  ck_assert_str_eq(s.message, "after");
  ck_assert_int_eq(offset, (long)(big + strlen(tail)));
  free(text);
  free(path);
}
END_TEST

typedef struct tally {
  int records, continuations, warnings, sentinel;
  char version_line[512];
} tally_t;

static bool count(const sutlog_record_t *r, void *arg) {
  tally_t *t = arg;
  if (!r->is_record) {
    t->continuations++;
    return false;
  }
  t->records++;
  t->warnings += strcmp(r->level, "WARNING") == 0;
  t->sentinel += sutlog_is_sentinel(r->context);
  if (strncmp(r->message, "Server <venv>", 13) == 0)
    snprintf(t->version_line, sizeof t->version_line, "%s|%s|%s", r->level, r->context, r->message);
  return false;
}

START_TEST(test_real_synapse_log) {
  char *path = test_path(test_env("REPLCHECK_SHARED_DIR"), "reference/synapse-1.66/worker2.log");
  long offset = 0;
  tally_t t = {0};
  ck_assert(!sutlog_scan(&text_profile, path, &offset, 64u << 20, count, &t));
  ck_assert_int_eq(t.records + t.continuations, 585);
  ck_assert_int_eq(t.continuations, 0);
  ck_assert_int_gt(t.sentinel, 10);
  ck_assert_int_gt(t.warnings, 0);
  ck_assert_str_eq(t.version_line,
                   "WARNING|main|Server <venv>/lib/python3.11/site-packages/synapse/app/"
                   "generic_worker.py version 1.66.0");
  free(path);
}
END_TEST

static Suite *sutlog_suite(void) {
  Suite *s = suite_create("sutlog");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, test_text_records);
  tcase_add_test(tc, test_text_continuations);
  tcase_add_test(tc, test_json_lines);
  tcase_add_test(tc, test_text_separators);
  tcase_add_test(tc, test_malformed_reasons);
  tcase_add_test(tc, test_record_times);
  suite_add_tcase(s, tc);
  TCase *scan = tcase_create("scan");
  tcase_add_checked_fixture(scan, setup, teardown);
  tcase_add_test(scan, test_scan_offsets);
  tcase_add_test(scan, test_scan_long_line);
  tcase_add_test(scan, test_real_synapse_log);
  suite_add_tcase(s, scan);
  return s;
}

int main(void) {
  return test_run_suite(sutlog_suite());
}
