/* logcontext: every log line says which unit of work wrote it (requirements.md §12,
 * LC-01, LC-02, LC-05..LC-07; seeds C and I, seed-behaviours.md §1.1, §1.2, §2).
 *
 * The tests drive the worker (RDATA/POSITION bursts, reconnects, HTTP requests) and read
 * its log (format per the profile, both text separators and JSON lines, sutlog.h)
 * between two offsets. LC-03 and LC-04 are passive (passive.h) on every test; each test
 * here also fails at once, naming itself, on such a line inside its own window. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passive.h"
#include "rc_clock.h"
#include "suite_observe.h"
#include "suite_util.h"

#define BURST_STREAM_A "typing"
#define BURST_STREAM_B "caches"
#define TYPING_ROW "[\"!r:hs\",[\"@x:hs\"]]"
#define CACHES_ROW "[\"get_user_by_id\",[\"@x:hs\"],1]"
#define BURST_LINES 24
#define BURST_WAIT_MS 3000
#define IDS_MAX 256

static bool modern(const rc_test_t *t) {
  return t->profile->dialect == PROTO_DIALECT_MODERN;
}

/* ---- reading a window of the log ---------------------------------------------------- */

/* Calls fn on every record between from and the end of the log (as far as written). */
static void log_window(rc_test_t *t, long from, bool (*fn)(const sutlog_record_t *, void *),
                       void *arg) {
  long at = from;
  sutlog_scan(t->profile, t->log_file, &at, 64u << 20, fn, arg);
}

typedef struct window_check {
  const profile_t *profile;
  int records;
  char warning[400]; /* the first LC-03/LC-04 line in the window */
  char not_record[300]; /* the first line that is not a record, with why */
  /* Wall ms of the window's first replication disconnect (0: none): an LC-04 text logged
   * after it is LC-05's (a SHOULD; Synapse 1.66 logs "Re-starting finished log context
   * replication-conn-..." at every disconnect), as for the passive check (passive.h). */
  long long lc04_until_ms;
} window_check_t;

static void window_note(window_check_t *w, const sutlog_record_t *r) {
  if (!r->is_record) {
    if (w->not_record[0] == '\0')
      snprintf(w->not_record, sizeof w->not_record, "'%.160s' (%s)", r->line, r->why_not);
    return;
  }
  w->records++;
  const char *rule = passive_logcontext_rule(w->profile, r);
  long long at;
  if (rule != NULL && strcmp(rule, "LC-04") == 0 && w->lc04_until_ms > 0 &&
      sutlog_record_time_ms(w->profile, r, &at) && at > w->lc04_until_ms)
    return;
  if (rule != NULL && w->warning[0] == '\0')
    snprintf(w->warning, sizeof w->warning, "%s: '%.340s'", rule, r->line);
}

/* Fails the test if the window held a mismatch or db-from-sentinel warning, or errors it
 * if the window had no record at all (the profile's log format does not fit). */
static bool window_clean(rc_test_t *t, const window_check_t *w) {
  if (w->records == 0)
    return rc_error(t,
                    "no log record of format %s in the SUT's log %s while the test ran%s%s: "
                    "check the profile's \"log\" settings",
                    t->profile->log_format == PROFILE_LOG_JSON_LINES ? "json-lines" : "synapse-text",
                    t->log_file, w->not_record[0] ? "; first line: " : "", w->not_record);
  if (w->warning[0] != '\0')
    return rc_fail(t, "no logcontext mismatch or db-from-sentinel warning while the worker works",
                   "%s", w->warning);
  return true;
}

/* ---- a burst of replication commands ------------------------------------------------ */

typedef struct rdata_count {
  int seen;
  int want;
} rdata_count_t;

static bool is_rdata_line(const sutlog_record_t *r) {
  return strncmp(r->message, "Received rdata ", 15) == 0;
}

static bool count_rdata(const sutlog_record_t *r, void *arg) {
  rdata_count_t *c = arg;
  if (is_rdata_line(r)) c->seen++;
  return c->seen >= c->want;
}

/* Sends BURST_LINES RDATA lines alternating two streams, then a POSITION, all at once,
 * and waits until the log shows every row received. Returns false with an outcome. */
static bool send_burst(rc_test_t *t, int conn, long from, int64_t *next_token) {
  for (int i = 0; i < BURST_LINES; i++) {
    char token[32], line[256];
    snprintf(token, sizeof token, "%lld", (long long)(*next_token)++);
    bool a = i % 2 == 0;
    suite_rdata(t, line, sizeof line, a ? BURST_STREAM_A : BURST_STREAM_B, token,
                a ? TYPING_ROW : CACHES_ROW);
    if (!suite_send(t, conn, "%s", line)) return false;
  }
  if (!suite_send(t, conn, modern(t) ? "POSITION " BURST_STREAM_A " master %lld %lld"
                                     : "POSITION " BURST_STREAM_A " %lld",
                  (long long)(*next_token - 2), (long long)(*next_token - 2)))
    return false;
  long at = from;
  rdata_count_t count = {.want = BURST_LINES};
  if (!suite_log_wait(t, &at, BURST_WAIT_MS, count_rdata, &count))
    return rc_error(t,
                    "the log shows %d of %d 'Received rdata ...' lines within %d ms of the burst: "
                    "LC-01 needs the SUT to log them (Synapse: INFO in 2018, DEBUG since v1.0; "
                    "set the profile's log level)",
                    count.seen, BURST_LINES, BURST_WAIT_MS);
  rc_observe(t, 200); /* the handlers' last lines */
  return true;
}

/* Whether s is "<prefix><digits>". */
static bool is_counted(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  if (strncmp(s, prefix, n) != 0 || s[n] == '\0') return false;
  for (const char *c = s + n; *c != '\0'; c++)
    if (!isdigit((unsigned char)*c)) return false;
  return true;
}

/* The stream of a "Received rdata <stream> ..." message into buf. */
static const char *rdata_stream(const sutlog_record_t *r, char *buf, size_t cap) {
  const char *s = r->message + 15;
  size_t n = strcspn(s, " ");
  snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
  return buf;
}

typedef struct handling_check {
  window_check_t w;
  bool modern;
  int rdata_lines;
  char bad[400];
  char seen_contexts[400];
} handling_check_t;

static bool check_handling_line(const sutlog_record_t *r, void *arg) {
  handling_check_t *h = arg;
  window_note(&h->w, r);
  if (!r->is_record || !is_rdata_line(r)) return false;
  h->rdata_lines++;
  char stream[64], want[96];
  rdata_stream(r, stream, sizeof stream);
  /* 2018: each line its own process replication-RDATA-<stream>-<n>; modern: the
   * stream queue's process-replication-data-<n>. */
  if (h->modern)
    snprintf(want, sizeof want, "process-replication-data-");
  else
    snprintf(want, sizeof want, "replication-RDATA-%s-", stream);
  size_t used = strlen(h->seen_contexts);
  if (used < sizeof h->seen_contexts - 40 && strstr(h->seen_contexts, r->context) == NULL)
    snprintf(h->seen_contexts + used, sizeof h->seen_contexts - used, "%s%s", used ? ", " : "",
             sutlog_is_sentinel(r->context) ? "(sentinel)" : r->context);
  if (h->bad[0] == '\0' && !is_counted(r->context, want))
    snprintf(h->bad, sizeof h->bad, "'%.200s' carries context '%s', not %s<n>", r->message,
             sutlog_is_sentinel(r->context) ? "sentinel" : r->context, want);
  return false;
}

/* LC-01: every line written while handling the burst names its handling context. */
static void burst_named_contexts(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  long from = suite_log_offset(t);
  int64_t token = 100;
  if (!send_burst(t, conn, from, &token)) return;
  handling_check_t h = {.w.profile = t->profile, .modern = modern(t)};
  log_window(t, from, check_handling_line, &h);
  if (h.bad[0] != '\0')
    rc_fail(t, "every 'Received rdata' line of the burst under its handling context",
            "%s (contexts seen: %s)", h.bad, h.seen_contexts);
  else
    window_clean(t, &h.w);
}

/* ---- LC-02: ids ------------------------------------------------------------------- */

typedef struct id_order {
  window_check_t w;
  struct {
    char desc[96];
    long last_n;
  } descs[IDS_MAX];
  size_t desc_count;
  char seen[IDS_MAX][128]; /* ids seen so far */
  size_t seen_count;
  char bad[400];
  long highest_prd; /* highest n of process-replication-data (-1 = none) */
} id_order_t;

/* Splits "<desc>-<n>" (n all digits); false for other contexts. */
static bool split_id(const char *context, char *desc, size_t cap, long *n) {
  const char *dash = strrchr(context, '-');
  if (dash == NULL || dash == context || dash[1] == '\0') return false;
  for (const char *c = dash + 1; *c != '\0'; c++)
    if (!isdigit((unsigned char)*c)) return false;
  snprintf(desc, cap, "%.*s", (int)(dash - context), context);
  *n = strtol(dash + 1, NULL, 10);
  return true;
}

static bool check_id_order(const sutlog_record_t *r, void *arg) {
  id_order_t *o = arg;
  window_note(&o->w, r);
  if (!r->is_record || o->bad[0] != '\0') return false;
  char desc[96];
  long n;
  if (!split_id(r->context, desc, sizeof desc, &n)) return false;
  if (strncmp(desc, "replication-", 12) != 0 && strcmp(desc, "process-replication-data") != 0)
    return false;
  for (size_t i = 0; i < o->seen_count; i++)
    if (strcmp(o->seen[i], r->context) == 0) return false; /* a later line of a known run */
  if (o->seen_count < IDS_MAX) snprintf(o->seen[o->seen_count++], sizeof o->seen[0], "%s", r->context);
  if (strcmp(desc, "process-replication-data") == 0 && n > o->highest_prd) o->highest_prd = n;
  for (size_t i = 0; i < o->desc_count; i++) {
    if (strcmp(o->descs[i].desc, desc) != 0) continue;
    if (n <= o->descs[i].last_n)
      snprintf(o->bad, sizeof o->bad,
               "%.90s-%ld first appears after %.90s-%ld: ids of one desc must be new and "
               "increasing in start order ('%.100s')",
               desc, n, desc, o->descs[i].last_n, r->message);
    o->descs[i].last_n = n;
    return false;
  }
  if (o->desc_count < IDS_MAX) {
    snprintf(o->descs[o->desc_count].desc, sizeof o->descs[0].desc, "%s", desc);
    o->descs[o->desc_count++].last_n = n;
  }
  return false;
}

/* LC-02: per desc, each new id's n is above every earlier one (never reused); the
 * metric's start count covers the highest n. */
static void ids_counted(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  long from = suite_log_offset(t);
  int64_t token = 100;
  for (int round = 0; round < 2; round++)
    if (!send_burst(t, conn, from, &token)) return;
  id_order_t *o = calloc(1, sizeof *o);
  if (o == NULL) {
    rc_error(t, "out of memory");
    return;
  }
  o->w.profile = t->profile;
  o->highest_prd = -1;
  log_window(t, from, check_id_order, o);
  if (o->bad[0] != '\0') {
    rc_fail(t, "background-process ids <desc>-<n> counted from 0 per desc, never reused", "%s",
            o->bad);
    goto done;
  }
  if (!window_clean(t, &o->w)) goto done;
  if (o->desc_count == 0) {
    rc_fail(t, "the burst's lines under replication-* or process-replication-data-<n> ids",
            "no line of the burst carried such an id");
    goto done;
  }
  if (t->profile->metrics_url != NULL && o->highest_prd >= 0) {
    prom_t *scrape = suite_scrape(t);
    if (scrape == NULL) goto done;
    bool found;
    double starts = suite_bg_starts(scrape, "process-replication-data", &found);
    prom_destroy(scrape);
    if (!found || starts < (double)o->highest_prd + 1)
      rc_fail(t, "start_count of process-replication-data >= highest id + 1",
              "the log shows process-replication-data-%ld but the start count is %s%g",
              o->highest_prd, found ? "" : "missing, ", starts);
  }
done:
  free(o);
}

/* ---- LC-06: the reactor in the sentinel ------------------------------------------ */

typedef struct reactor_check {
  window_check_t w;
  int reactor_lines;
  char bad[400];
} reactor_check_t;

static bool is_reactor_line(const char *message) {
  static const char *const PREFIXES[] = {"Connecting to replication", "Connected to replication",
                                         "Lost replication conn"};
  for (size_t i = 0; i < sizeof PREFIXES / sizeof PREFIXES[0]; i++)
    if (strncmp(message, PREFIXES[i], strlen(PREFIXES[i])) == 0) return true;
  /* "[<conn>] Connection established" */
  return message[0] == '[' && strstr(message, "] Connection established") != NULL;
}

static bool check_reactor_line(const sutlog_record_t *r, void *arg) {
  reactor_check_t *c = arg;
  window_note(&c->w, r);
  if (!r->is_record || c->bad[0] != '\0') return false;
  if (strcmp(r->context, "main") == 0 || strcmp(r->context, "run") == 0) {
    snprintf(c->bad, sizeof c->bad, "'%.200s' carries the startup context '%s' after readiness",
             r->message, r->context);
    return false;
  }
  if (!is_reactor_line(r->message)) return false;
  c->reactor_lines++;
  if (!sutlog_is_sentinel(r->context))
    snprintf(c->bad, sizeof c->bad, "reactor line '%.200s' carries context '%s' after readiness, not the sentinel",
             r->message, r->context);
  return false;
}

/* LC-06: after readiness no line carries main/run, and the connection lines of a
 * reconnect (after a burst that could leak a context) carry the sentinel. */
static void reactor_sentinel(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  long from = suite_log_offset(t);
  int64_t token = 100;
  if (!send_burst(t, conn, from, &token)) return;
  uint64_t seq = rc_now_seq(t);
  /* Taken before the FIN: a warning the worker logs from then on belongs to LC-05. */
  long long fin_ms = (long long)rc_clock_wall_ms() - 1; /* log times are truncated to ms */
  mockhs_close_conn(t->mock, conn, false);
  if (suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 1000) < 0) {
    rc_error(t, "the worker did not reconnect after the mock's FIN (RC-01)");
    return;
  }
  rc_observe(t, 200);
  reactor_check_t c = {.w.profile = t->profile, .w.lc04_until_ms = fin_ms};
  log_window(t, from, check_reactor_line, &c);
  if (c.bad[0] != '\0')
    rc_fail(t, "after readiness the reactor runs in the sentinel context", "%s", c.bad);
  else if (window_clean(t, &c.w) && c.reactor_lines == 0)
    rc_error(t, "no connection line (Connecting to / Connected to replication, Connection "
                "established, Lost replication conn) in the log around a reconnect");
}

/* ---- LC-07: HTTP and replication contexts apart ----------------------------------- */

static bool is_http_id(const char *context) {
  static const char *const METHODS[] = {"GET-", "POST-", "PUT-", "DELETE-", "HEAD-", "OPTIONS-"};
  for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
    if (is_counted(context, METHODS[i])) return true;
  return false;
}

static bool is_replication_id(const char *context) {
  return strncmp(context, "replication-", 12) == 0 ||
         strncmp(context, "process-replication-data-", 25) == 0;
}

typedef struct apart_check {
  window_check_t w;
  int http_lines;
  char bad[400];
} apart_check_t;

static bool check_apart(const sutlog_record_t *r, void *arg) {
  apart_check_t *a = arg;
  window_note(&a->w, r);
  if (!r->is_record || a->bad[0] != '\0') return false;
  bool access = strstr(r->message, "Processed request") != NULL;
  a->http_lines += access;
  if (access && !is_http_id(r->context))
    snprintf(a->bad, sizeof a->bad, "HTTP line '%.200s' carries '%s', not its request id",
             r->message, sutlog_is_sentinel(r->context) ? "sentinel" : r->context);
  else if (!access && is_http_id(r->context) && is_rdata_line(r))
    snprintf(a->bad, sizeof a->bad, "replication line '%.200s' carries the HTTP request id '%s'",
             r->message, r->context);
  else if (access && is_replication_id(r->context))
    snprintf(a->bad, sizeof a->bad, "HTTP line '%.200s' carries replication id '%s'", r->message,
             r->context);
  return false;
}

/* LC-07: HTTP requests interleaved with RDATA bursts keep their contexts apart. */
static void http_and_replication_apart(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  long from = suite_log_offset(t);
  int64_t token = 100;
  const char *path = t->profile->http_path_count > 0 ? t->profile->http_paths[0] : "/";
  for (int round = 0; round < 3; round++) {
    http_response_t *r = suite_http(t, "GET", path, NULL);
    if (r == NULL) return;
    http_response_destroy(r);
    if (!send_burst(t, conn, from, &token)) return;
  }
  http_response_t *r = suite_http(t, "GET", path, NULL);
  if (r == NULL) return;
  http_response_destroy(r);
  rc_observe(t, 200);
  apart_check_t a = {.w.profile = t->profile};
  log_window(t, from, check_apart, &a);
  if (a.bad[0] != '\0')
    rc_fail(t, "HTTP request ids only on HTTP lines, replication ids never on them", "%s", a.bad);
  else if (!window_clean(t, &a.w))
    return;
  else if (a.http_lines == 0)
    rc_error(t, "no 'Processed request' line for the 4 GET %s requests: LC-07 needs the SUT's "
                "access log in its log", path);
}

/* ---- LC-05: across disconnects and shutdown --------------------------------------- */

typedef struct any_warning {
  const profile_t *profile;
  char line[400];
} any_warning_t;

static bool find_lc04(const sutlog_record_t *r, void *arg) {
  any_warning_t *w = arg;
  const char *rule = passive_logcontext_rule(w->profile, r);
  if (rule == NULL || strcmp(rule, "LC-04") != 0) return false;
  snprintf(w->line, sizeof w->line, "%.380s", r->line);
  return true;
}

/* LC-05: a burst, the mock's FIN, its RST, a protocol error, then SIGTERM: no mismatch
 * warning anywhere in the log. */
static void across_disconnects(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  long from = 0; /* the whole log: LC-04's own window ends where this one matters */
  int64_t token = 100;
  if (!send_burst(t, conn, suite_log_offset(t), &token)) return;
  for (int step = 0; step < 3; step++) {
    uint64_t seq = rc_now_seq(t);
    if (step == 2) {
      if (!suite_send(t, conn, "HELLO world")) return;
    } else {
      mockhs_close_conn(t->mock, conn, step == 1);
    }
    if ((conn = suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 2000)) < 0) {
      rc_error(t, "the worker did not reconnect after %s (RC-01)",
               step == 0 ? "the mock's FIN" : step == 1 ? "the mock's RST" : "a protocol error");
      return;
    }
  }
  if (!send_burst(t, conn, suite_log_offset(t), &token)) return;
  if (!rc_terminate_sut(t, NULL, NULL)) {
    rc_error(t, "the worker did not exit after SIGTERM (CL-05)");
    return;
  }
  any_warning_t w = {.profile = t->profile};
  long at = from;
  if (sutlog_scan(t->profile, t->log_file, &at, 64u << 20, find_lc04, &w))
    rc_fail(t, "no logcontext mismatch warning across disconnects, reconnects and shutdown",
            "%s", w.line);
}

#define LC_ROW(...) \
  RC_TEST_ROW(.dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL, __VA_ARGS__)
/* Tests that make the mock drop the connection: direct TCP only (the Redis transport's
 * disconnects are a redis-server restart, not covered here yet). */
#define LC_TCP_ROW(...) \
  RC_TEST_ROW(.dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP, __VA_ARGS__)

const rc_test_def_t logcontext_tests[] = {
    LC_ROW(.id = "logcontext/burst/named-contexts", .requirements = "LC-01,LC-03,LC-04",
           .level = RC_LEVEL_MUST,
           .requirement = "Under a burst of RDATA and POSITION lines every 'Received rdata' line "
                          "carries its handling context (2018 replication-RDATA-<stream>-<n>, "
                          "modern process-replication-data-<n>), never the sentinel or another "
                          "command's, and no mismatch or db-from-sentinel warning appears (v0.33.3+).",
           .source = "synapse PR #3709; seed-behaviours.md §C, §1.1; "
                     "reference/synapse-1.66/worker2.log",
           .run = burst_named_contexts),
    LC_ROW(.id = "logcontext/ids/counted", .requirements = "LC-02", .level = RC_LEVEL_MUST,
           .requirement = "Background-process ids are <desc>-<n>, n counting up per desc in "
                          "start order and never reused; the start count covers the highest n.",
           .source = "synapse background_process_metrics.py@v0.33.3; seed-behaviours.md §1.4",
           .run = ids_counted),
    LC_TCP_ROW(.id = "logcontext/reactor/sentinel", .requirements = "LC-06", .level = RC_LEVEL_MUST,
           .requirement = "After readiness no line carries the startup context (main, run); "
                          "the connection lines of a reconnect carry the sentinel.",
           .source = "synapse commit 067b00d49d (PR #2027); seed-behaviours.md §I",
           .run = reactor_sentinel),
    LC_ROW(.id = "logcontext/leak/http-and-replication", .requirements = "LC-07",
           .level = RC_LEVEL_MUST, .needs = RC_NEEDS_HTTP,
           .requirement = "With HTTP requests interleaved with RDATA bursts, access lines carry "
                          "their <METHOD>-<n> id and replication lines never carry one.",
           .source = "synapse docs/log_contexts.rst@v0.33.6; seed-behaviours.md §2",
           .run = http_and_replication_apart),
    LC_TCP_ROW(.id = "logcontext/disconnect/no-mismatch", .requirements = "LC-05",
           .level = RC_LEVEL_SHOULD, .tags = "slow",
           .requirement = "No logcontext mismatch warning across the main's FIN and RST, a "
                          "protocol error and SIGTERM.",
           .source = "reference/synapse-1.66/worker2.log (Re-starting finished log context at "
                     "SIGTERM); synapse protocol.py@v1.66.0",
           .run = across_disconnects),
};
const size_t logcontext_test_count = sizeof logcontext_tests / sizeof logcontext_tests[0];
