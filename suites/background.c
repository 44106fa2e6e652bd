/* background: replication command handlers run as named background processes, stay in
 * flight while their work runs, and a handler exception is logged at once and does not
 * stop processing (requirements.md §11, BG-01..BG-03, BG-05..BG-07, BG-09; seeds C, D, G
 * in seed-behaviours.md, metric names §1.4). Metrics come from the profile's metrics.url;
 * the log from its log settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_http.h"
#include "passive.h"
#include "rc_clock.h"
#include "stream_history.h"
#include "suite_observe.h"
#include "suite_util.h"

#define TYPING_ROW "[\"!r:hs\",[\"@x:hs\"]]"
/* Valid JSON, but a typing row is [room_id, [user_ids]]: the handler fails on it. */
#define BAD_TYPING_ROW "[\"!r:hs\"]"
/* The other stream BG-06 checks: presence, whose gaps a real Synapse worker fetches
 * over the main's HTTP like typing's, so its position can be probed there (a
 * database-backed stream such as caches is caught up from the worker's own database,
 * which the mock cannot see). Row layout as a v1.12..v1.67 main sends it. */
#define PRESENCE_ROW "[\"@x:hs\",\"online\",1,1,1,null,true]"
#define CACHES_ROW "[\"get_user_by_id\",[\"@x:hs\"],1]"
#define METRICS_WINDOW_MS 2000
#define SAMPLE_MS 250

static bool modern(const rc_test_t *t) {
  return t->profile->dialect == PROTO_DIALECT_MODERN;
}

typedef struct starts_goal {
  const char *process;
  double at_least;
} starts_goal_t;

static bool starts_reached(const prom_t *scrape, void *arg) {
  const starts_goal_t *g = arg;
  bool found;
  return suite_bg_starts(scrape, g->process, &found) >= g->at_least && found;
}

/* BG-01 (2018): one replication-<CMD> start per accepted line, RDATA per stream. */
static void names_2018(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  prom_t *before = suite_scrape(t);
  if (before == NULL) return;
  bool found;
  double rdata0 = suite_bg_starts(before, "replication-RDATA-typing", &found);
  double position0 = suite_bg_starts(before, "replication-POSITION", &found);
  prom_destroy(before);
  /* Two batch lines and their closing line are three commands, so three starts. */
  if (!suite_send(t, conn, "RDATA typing batch " TYPING_ROW) ||
      !suite_send(t, conn, "RDATA typing batch " TYPING_ROW) ||
      !suite_send(t, conn, "RDATA typing 5 " TYPING_ROW) ||
      !suite_send(t, conn, "POSITION typing 5"))
    return;
  starts_goal_t goal = {"replication-RDATA-typing", rdata0 + 3};
  prom_t *after = suite_scrape_until(t, METRICS_WINDOW_MS, 100, starts_reached, &goal);
  if (after == NULL) return;
  rc_observe(t, 300); /* anything more than 3 must show too */
  prom_destroy(after);
  if ((after = suite_scrape(t)) == NULL) return;
  char series[1024];
  suite_metric_series(after, METRIC_BG_START, "replication-", series, sizeof series);
  bool rdata_found, position_found, ping_found;
  double rdata = suite_bg_starts(after, "replication-RDATA-typing", &rdata_found);
  double position = suite_bg_starts(after, "replication-POSITION", &position_found);
  double pings = suite_bg_starts(after, "replication-PING", &ping_found);
  prom_destroy(after);
  if (!rdata_found || rdata - rdata0 != 3)
    rc_fail(t,
            "replication-RDATA-typing start count +3 within 2 s of 2 batch lines and their closing "
            "line",
            "%s after the 3 RDATA lines (started at %g); start counts: %s",
            rdata_found ? "it grew by a different number" : "no such series", rdata0, series);
  else if (!position_found || position - position0 != 1)
    rc_fail(t, "replication-POSITION start count +1 for one POSITION line",
            "grew from %g to %g; start counts: %s", position0, position, series);
  else if (!ping_found || pings < 1)
    rc_fail(t, "a replication-PING start for each PING the mock sends",
            "no replication-PING starts; start counts: %s", series);
}

/* BG-02 (modern): process-replication-data for RDATA and POSITION, 1..k per k lines;
 * none of the 2018 names. */
static void names_modern(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  prom_t *before = suite_scrape(t);
  if (before == NULL) return;
  bool found;
  double start0 = suite_bg_starts(before, "process-replication-data", &found);
  prom_destroy(before);
  const int k = 3;
  if (!suite_send(t, conn, "RDATA typing master 1 " TYPING_ROW) ||
      !suite_send(t, conn, "RDATA typing master 2 " TYPING_ROW) ||
      !suite_send(t, conn, "POSITION typing master 2 2"))
    return;
  starts_goal_t goal = {"process-replication-data", start0 + 1};
  prom_t *after = suite_scrape_until(t, METRICS_WINDOW_MS, 100, starts_reached, &goal);
  if (after == NULL) return;
  prom_destroy(after);
  rc_observe(t, 300);
  if ((after = suite_scrape(t)) == NULL) return;
  char series[1024];
  suite_metric_series(after, METRIC_BG_START, NULL, series, sizeof series);
  double starts = suite_bg_starts(after, "process-replication-data", &found);
  const prom_sample_t *old_name = NULL;
  for (size_t i = 0; i < prom_sample_count(after) && old_name == NULL; i++) {
    const prom_sample_t *s = prom_sample_at(after, i);
    const char *name = prom_sample_label(s, "name");
    if (prom_name_matches(s->name, METRIC_BG_START) && name != NULL &&
        (strncmp(name, "replication-RDATA-", 18) == 0 || strcmp(name, "replication-PING") == 0))
      old_name = s;
  }
  if (!found || starts - start0 < 1 || starts - start0 > k)
    rc_fail(t, "process-replication-data start count +1..+3 within 2 s of 2 RDATA and 1 POSITION",
            "%s (from %g to %g); start counts: %s",
            found ? "it grew by a different amount" : "no such series", start0, starts, series);
  else if (old_name != NULL)
    rc_fail(t, "no replication-RDATA-* or replication-PING process on a modern worker",
            "series %s{name=\"%s\"} exists; start counts: %s", old_name->name,
            prom_sample_label(old_name, "name"), series);
  prom_destroy(after);
}

/* BG-03 (modern): a catch-up held by the mock keeps process-replication-data in flight;
 * it returns to 0 within 1 s after the answer. */
static void in_flight_while_held(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  const int hold = 3000;
  int64_t x = 0;
  stream_history_position(mockhs_history(t->mock), "typing", &x);
  if (t->probe_floor > x) x = t->probe_floor;
  x += 1000;
  t->probe_floor = x;
  stream_history_set(mockhs_history(t->mock), "typing", x);
  mock_http_set_delay(mockhs_http(t->mock), hold);
  uint64_t seq = rc_now_seq(t);
  if (!suite_send(t, conn, "POSITION typing master %lld %lld", (long long)x, (long long)x)) return;
  rc_match_t get = {.entry_kind = LEDGER_HTTP,
                    .prefix = "GET /_synapse/replication/get_repl_stream_updates/typing/"};
  const ledger_entry_t *e = rc_wait(t, seq, &get, 1000);
  if (e == NULL) {
    rc_fail(t, "PO-03: a catch-up request after a POSITION above the worker's position",
            "none within 1 s of 'POSITION typing master %lld %lld'", (long long)x, (long long)x);
    return;
  }
  int64_t release_ms = e->mono_ns / 1000000 + hold;
  char samples[1024] = "";
  size_t at = 0;
  /* Every sample while held, short of a margin before the release, must see it in flight. */
  while (rc_clock_mono_ms() < release_ms - SAMPLE_MS) {
    prom_t *s = suite_scrape(t);
    if (s == NULL) return;
    bool found;
    double v = suite_bg_in_flight(s, "process-replication-data", &found);
    int64_t when = rc_clock_mono_ms() - e->mono_ns / 1000000;
    char series[512];
    suite_metric_series(s, METRIC_BG_IN_FLIGHT, NULL, series, sizeof series);
    prom_destroy(s);
    at += (size_t)snprintf(samples + at, sizeof samples - at > 0 ? sizeof samples - at : 0,
                           "%s+%lldms:%g", at ? " " : "", (long long)when, v);
    if (at >= sizeof samples) at = sizeof samples - 1;
    if (!found || v < 1) {
      mock_http_set_delay(mockhs_http(t->mock), 0);
      rc_fail(t, "process-replication-data in flight (>= 1) while the catch-up it started is held",
              "%s %lld ms after the catch-up request (held %d ms); in-flight series: %s",
              found ? "in flight 0" : "no in-flight series for it", (long long)when, hold, series);
      return;
    }
    rc_observe(t, SAMPLE_MS);
  }
  rc_note(t, "in-flight samples while held: %s", samples);
  mock_http_set_delay(mockhs_http(t->mock), 0);
  int64_t deadline = release_ms + 1000;
  for (;;) {
    if (rc_clock_mono_ms() < release_ms) rc_observe(t, (int)(release_ms - rc_clock_mono_ms()));
    prom_t *s = suite_scrape(t);
    if (s == NULL) return;
    bool found;
    double v = suite_bg_in_flight(s, "process-replication-data", &found);
    if (found && v == 0) {
      prom_destroy(s);
      return;
    }
    if (rc_clock_mono_ms() >= deadline) {
      char series[512];
      rc_fail(t,
              "process-replication-data back to 0 in flight within 1 s after the catch-up answer",
              "still %g in flight %lld ms after it; in-flight series: %s", v,
              (long long)(rc_clock_mono_ms() - release_ms),
              suite_metric_series(s, METRIC_BG_IN_FLIGHT, NULL, series, sizeof series));
      prom_destroy(s);
      return;
    }
    prom_destroy(s);
    rc_observe(t, 100);
  }
}

/* The error line BG-05 looks for, and what was seen instead. */
typedef struct error_watch {
  const char *context_prefix;
  char first_error[512]; /* the first ERROR record of any context, for evidence */
  char match[512];
} error_watch_t;

static bool handling_error(const sutlog_record_t *r, void *arg) {
  error_watch_t *w = arg;
  if (strcmp(r->level, "ERROR") != 0 && strcmp(r->level, "CRITICAL") != 0) return false;
  if (w->first_error[0] == '\0')
    snprintf(w->first_error, sizeof w->first_error, "%s [%s] %.400s", r->level, r->context,
             r->message);
  if (strcmp(r->level, "ERROR") != 0 ||
      strncmp(r->context, w->context_prefix, strlen(w->context_prefix)) != 0)
    return false;
  snprintf(w->match, sizeof w->match, "ERROR [%s] %.400s", r->context, r->message);
  return true;
}

typedef struct next_line {
  const profile_t *profile;
  const char *path;
  long offset;
  bool seen;
  bool is_record;
  char text[256];
} next_line_t;

static bool first_line(const sutlog_record_t *r, void *arg) {
  next_line_t *n = arg;
  n->seen = true;
  n->is_record = r->is_record;
  snprintf(n->text, sizeof n->text, "%.200s", r->line);
  return true;
}

/* Whether the line after n->offset has been written (it is then in n). */
static bool next_line_written(void *arg) {
  next_line_t *n = arg;
  long at = n->offset;
  sutlog_scan(n->profile, n->path, &at, 1 << 20, first_line, n);
  return n->seen;
}

/* Sends the row that makes the typing handler fail. */
static bool send_bad_row(rc_test_t *t, int conn) {
  char line[256];
  suite_rdata(t, line, sizeof line, "typing", "7", BAD_TYPING_ROW);
  return suite_send(t, conn, "%s", line);
}

/* BG-05: the exception is logged at ERROR, with a traceback, within 1 s, in the
 * handling context. */
static void handler_error_logged(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  long offset = suite_log_offset(t);
  if (!send_bad_row(t, conn)) return;
  error_watch_t w = {.context_prefix =
                         modern(t) ? "process-replication-data-" : "replication-RDATA-typing-"};
  if (!suite_log_wait(t, &offset, 1000, handling_error, &w)) {
    char expected[256];
    snprintf(expected, sizeof expected,
             "an ERROR line under a %s<n> context within 1 s of the row the handler fails on",
             w.context_prefix);
    rc_fail(t, expected, "%s%s within 1 s of '%s'",
            w.first_error[0] ? "the first ERROR-or-worse line was: " : "no ERROR line at all",
            w.first_error, BAD_TYPING_ROW);
    return;
  }
  /* logger.exception: the record is followed by its traceback, lines that are not
   * records (json-lines carry it inside the record). */
  if (t->profile->log_format != PROFILE_LOG_SYNAPSE_TEXT) return;
  next_line_t next = {.profile = t->profile, .path = t->log_file, .offset = offset};
  if (!next_line_written(&next)) mockhs_run_until(t->mock, next_line_written, &next, 200, 20);
  if (!next.seen || next.is_record)
    rc_fail(t, "a traceback after the ERROR line (the lines that follow it are not log records)",
            "'%s' is followed by %s%s%s", w.match, next.seen ? "the log record '" : "nothing",
            next.seen ? next.text : "", next.seen ? "'" : "");
}

/* BG-06: the connection stays open and later lines of the same and another stream are
 * processed. */
static void handler_error_continues(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint64_t seq = rc_now_seq(t);
  if (!send_bad_row(t, conn)) return;
  /* 5 s in the catalogue; at least 3 s, so that a late report of the failure (seed G,
   * BG-07) lands inside the test. */
  int window = 4 * t->profile->timing.ping_interval_ms;
  window = window < 3000 ? 3000 : window > 5000 ? 5000 : window;
  const ledger_entry_t *close = NULL;
  if (t->profile->transport == PROFILE_TRANSPORT_TCP &&
      suite_sut_closed_within(t, conn, seq, window, &close)) {
    rc_fail(t, "the connection stays open after the handler exception",
            "the connection was closed by the %s (%s) within %d ms of the row",
            ledger_side_name(close->side), ledger_close_how_name(close->how), window);
    return;
  }
  if (t->profile->transport != PROFILE_TRANSPORT_TCP) rc_observe(t, window);
  char line[256];
  suite_rdata(t, line, sizeof line, "typing", "8", TYPING_ROW);
  if (!suite_send(t, conn, "%s", line)) return;
  suite_rdata(t, line, sizeof line, "presence", "50", PRESENCE_ROW);
  if (!suite_send(t, conn, "%s", line)) return;
  rc_observe(t, 100);
  int64_t typing = -1, presence = -1;
  if (!suite_probe_position(t, &conn, "typing", &typing)) return;
  if (!suite_probe_position(t, &conn, "presence", &presence)) return;
  if (typing != 8 || presence != 50)
    rc_fail(t, "rows after the failed one are applied: typing at 8 and presence at 50",
            "the worker is at typing %lld and presence %lld", (long long)typing,
            (long long)presence);
}

/* BG-07: Twisted's late "Unhandled error in Deferred:" report never appears. The passive
 * check over every test's log gives the verdict; this test provokes the case. */
static void no_unhandled_deferred(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  if (!send_bad_row(t, conn)) return;
  rc_observe(t, 3000);
  char line[256];
  suite_rdata(t, line, sizeof line, "typing", "8", TYPING_ROW);
  if (!suite_send(t, conn, "%s", line)) return;
  rc_observe(t, 200);
  rc_terminate_sut(t, NULL, NULL);
  char why[512];
  if (!passive_check_log(t->log_file, t->profile, why, sizeof why))
    rc_fail(t, "no 'Unhandled error in Deferred:' in the worker's log", "%s",
            strncmp(why, "BG-07: ", 7) == 0 ? why + 7 : why);
}

typedef struct busy_arg {
  char names[512];
} busy_arg_t;

/* Replication processes with a non-zero in-flight gauge, into a->names. */
static bool replication_idle(const prom_t *scrape, void *arg) {
  busy_arg_t *a = arg;
  size_t at = 0;
  a->names[0] = '\0';
  for (size_t i = 0; i < prom_sample_count(scrape); i++) {
    const prom_sample_t *s = prom_sample_at(scrape, i);
    const char *name = prom_sample_label(s, "name");
    if (!prom_name_matches(s->name, METRIC_BG_IN_FLIGHT) || name == NULL || s->value == 0) continue;
    if (strncmp(name, "replication-", 12) != 0 && strcmp(name, "process-replication-data") != 0)
      continue;
    int n =
        snprintf(a->names + at, sizeof a->names - at, "%s%s=%g", at ? ", " : "", name, s->value);
    if (n > 0 && (size_t)n < sizeof a->names - at) at += (size_t)n;
  }
  return at == 0;
}

/* BG-09: after the work, with only PINGs coming in, nothing stays in flight. */
static void idle_not_in_flight(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  char line[256];
  suite_rdata(t, line, sizeof line, "typing", "3", TYPING_ROW);
  if (!suite_send(t, conn, "%s", line)) return;
  suite_rdata(t, line, sizeof line, "caches", "40", CACHES_ROW);
  if (!suite_send(t, conn, "%s", line)) return;
  /* 10 s in the catalogue, scaled to the SUT's keepalive period (at least 8 PINGs). */
  int idle = 8 * t->profile->timing.ping_interval_ms;
  idle = idle < 2000 ? 2000 : idle > 10000 ? 10000 : idle;
  rc_observe(t, idle);
  busy_arg_t busy;
  prom_t *s = suite_scrape(t);
  if (s == NULL) return;
  if (!replication_idle(s, &busy)) {
    char series[1024];
    rc_fail(t, "in-flight 0 for every replication-* and process-replication-data process when idle",
            "after %d ms with only PINGs: %s (in-flight series: %s)", idle, busy.names,
            suite_metric_series(s, METRIC_BG_IN_FLIGHT, NULL, series, sizeof series));
  }
  prom_destroy(s);
}

#define BG_ROW(...) RC_TEST_ROW(.transports = RC_TRANSPORT_ALL, __VA_ARGS__)

const rc_test_def_t background_tests[] = {
    RC_TEST_ROW(.id = "background/names/per-line-2018", .requirements = "BG-01",
                .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_2018, .transports = RC_TRANSPORT_TCP,
                .needs = RC_NEEDS_METRICS,
                .requirement =
                    "Each accepted inbound line runs in its own background process "
                    "replication-<CMD> (replication-RDATA-<stream> for RDATA, batch lines "
                    "included): the start count grows by exactly the lines sent.",
                .source =
                    "synapse PR #3709 protocol.py@v0.33.3 lineReceived; seed-behaviours.md §C",
                .run = names_2018),
    BG_ROW(.id = "background/names/modern", .requirements = "BG-02", .level = RC_LEVEL_MUST,
           .dialects = RC_DIALECT_MODERN, .needs = RC_NEEDS_METRICS,
           .requirement = "RDATA and POSITION processing runs in background processes named "
                          "process-replication-data (1..k starts for k lines); no "
                          "replication-RDATA-* or replication-PING processes.",
           .source = "synapse handler.py@v1.66.0 _add_command_to_stream_queue; "
                     "reference/synapse-1.66/worker2-metrics.txt",
           .run = names_modern),
    BG_ROW(.id = "background/in-flight/held-catchup", .requirements = "BG-03",
           .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_MODERN, .needs = RC_NEEDS_METRICS,
           .tags = "slow,timing-dependent",
           .requirement = "The handling process stays in flight until the work the command "
                          "triggered has finished: in flight while the mock holds the catch-up, "
                          "0 within 1 s after.",
           .source = "synapse PR #3709 (handlers return Deferreds); seed-behaviours.md §D",
           .run = in_flight_while_held),
    BG_ROW(.id = "background/handler-error/logged", .requirements = "BG-05", .level = RC_LEVEL_MUST,
           .dialects = RC_DIALECT_ALL,
           .requirement = "An exception while handling a command is logged at ERROR with a "
                          "traceback within 1 s, in the handling context.",
           .source = "synapse PR #3927 (v0.33.6) background_process_metrics.py; "
                     "handler.py@v1.66.0 _unsafe_process_queue",
           .run = handler_error_logged),
    BG_ROW(.id = "background/handler-error/processing-continues", .requirements = "BG-06",
           .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_ALL, .tags = "slow",
           .requirement = "After a handler exception the connection stays open and later lines "
                          "of the same and other streams are processed.",
           .source = "replication-protocol.md §1.2 step 6; synapse handler.py@v1.66.0",
           .run = handler_error_continues),
    BG_ROW(.id = "background/handler-error/no-unhandled-deferred", .requirements = "BG-07",
           .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_ALL, .tags = "slow",
           .requirement = "The worker never logs Twisted's 'Unhandled error in Deferred:' "
                          "(checked on every test's log; this test provokes a handler exception).",
           .source = "seed-behaviours.md §1.5, §G; synapse PR #3927", .run = no_unhandled_deferred),
    BG_ROW(.id = "background/in-flight/idle", .requirements = "BG-09", .level = RC_LEVEL_MUST,
           .dialects = RC_DIALECT_ALL, .needs = RC_NEEDS_METRICS, .tags = "slow",
           .requirement = "No replication-related background process stays in flight without work.",
           .source = "seed-behaviours.md §1.4 (in-flight gauge)", .run = idle_not_in_flight),
};
const size_t background_test_count = sizeof background_tests / sizeof background_tests[0];
