#include "fixture_play.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_remote.h"
#include "fixture_side.h"
#include "http_probe.h"
#include "mock_http.h"
#include "rc_clock.h"
#include "stream_history.h"

#define TICK_MS 100
#define SEEN_MAX 6 /* worker lines quoted in a failure message */

typedef struct conn_state {
  int id;          /* the mock's connection id; 0 = not connected yet */
  uint64_t cursor; /* worker lines before this seq are behind the script */
} conn_state_t;

typedef struct play {
  const fixture_t *f;
  const fixture_env_t *env;
  mockhs_t *mock;
  ledger_t *ledger;
  fixture_vars_t vars;
  conn_state_t *conns; /* [1..conn_count] */
  uint64_t next_open_seq;
  uint64_t http_cursor;
  long log_offset;
  fixture_matcher_t **ignore;
  char *trace;
  size_t trace_len;
  fixture_result_t *out;
  struct mark {
    const char *selector; /* a metric-mark step's text */
    double value;
  } * marks; /* [step_count], latest last */
  size_t mark_count;
  size_t remote_cursor[FIXTURE_MAX_REMOTES][2]; /* per remote: requests, updates matched */
  const fixture_step_t *step; /* the step being played */
  bool done;                  /* a step failed or broke */
} play_t;

/* ---- reporting ------------------------------------------------------------------------ */

static char *vformat(const char *fmt, va_list ap) {
  char *s = NULL;
  return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

static void trace_add(play_t *p, const char *status, const fixture_step_t *s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void trace_add(play_t *p, const char *status, const fixture_step_t *s, const char *fmt,
                      ...) {
  va_list ap;
  va_start(ap, fmt);
  char *detail = fmt ? vformat(fmt, ap) : NULL;
  va_end(ap);
  char *line = NULL;
  if (asprintf(&line, "%-5s %s:%d  %s%s%s", status, p->f->path, s->line, s->source,
               detail ? "  " : "", detail ? detail : "") >= 0) {
    size_t n = strlen(line);
    char *grown = realloc(p->trace, p->trace_len + n + 2);
    if (grown != NULL) {
      p->trace = grown;
      memcpy(p->trace + p->trace_len, line, n);
      p->trace_len += n;
      p->trace[p->trace_len++] = '\n';
      p->trace[p->trace_len] = '\0';
    }
    if (p->env->on_step != NULL) p->env->on_step(p->env->arg, line);
  }
  free(line);
  free(detail);
}

/* Ends the play at the current step. */
static void finish_step(play_t *p, fixture_outcome_t outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish_step(play_t *p, fixture_outcome_t outcome, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *actual = vformat(fmt, ap);
  va_end(ap);
  const fixture_step_t *s = p->step;
  p->done = true;
  p->out->outcome = outcome;
  p->out->line = s->line;
  char conn[24] = "";
  if (s->conn > 0 && s->source[0] != 'c') snprintf(conn, sizeof conn, " (on c%d)", s->conn);
  if (asprintf(&p->out->expected, "%s:%d: %s%s", p->f->path, s->line, s->source, conn) < 0)
    p->out->expected = NULL;
  p->out->actual = actual;
  trace_add(p, outcome == FIXTURE_BROKEN ? "ERROR" : "FAIL", s, "%s", actual ? actual : "");
}

static double rel_s(const play_t *p, const ledger_entry_t *e) {
  return (double)(e->mono_ns - ledger_origin_ns(p->ledger)) / 1e9;
}

/* ---- waiting -------------------------------------------------------------------------- */

typedef struct waiter {
  int64_t start;   /* step start */
  int64_t settled; /* when the mock's held output was out, at the start */
  int ms;
} waiter_t;

static waiter_t waiter_begin(play_t *p, int ms) {
  return (waiter_t){rc_clock_mono_ms(), mockhs_output_settled_ms(p->mock), ms};
}

/* Counted from the later of the step's start and the moment the mock's held output was
 * on the wire; a torture drop meanwhile restarts it (docs/FIXTURES.md "Deadlines"). */
static int64_t waiter_deadline(const play_t *p, const waiter_t *w) {
  int64_t origin = w->settled > w->start ? w->settled : w->start;
  int64_t drop = mockhs_torture_drop_ms(p->mock);
  if (drop > origin) origin = drop;
  return origin + w->ms;
}

/* The first entry from *seq matching pred before the deadline, or NULL. */
static const ledger_entry_t *wait_entry(play_t *p, const waiter_t *w, uint64_t from,
                                        mockhs_match_fn pred, void *arg) {
  for (;;) {
    int64_t deadline = waiter_deadline(p, w);
    int64_t slice = rc_clock_mono_ms() + TICK_MS;
    const ledger_entry_t *e =
        mockhs_wait_until(p->mock, from, pred, arg, slice < deadline ? slice : deadline);
    if (e != NULL) return e;
    from = ledger_next_seq(p->ledger);
    if (p->env->on_tick != NULL) p->env->on_tick(p->env->arg);
    if (rc_clock_mono_ms() >= waiter_deadline(p, w)) return NULL;
  }
}

static bool never(const ledger_entry_t *e, void *arg) {
  (void)e;
  (void)arg;
  return false;
}

static void observe(play_t *p, int ms) {
  waiter_t w = waiter_begin(p, ms);
  wait_entry(p, &w, ledger_next_seq(p->ledger), never, NULL);
}

/* ---- connections ---------------------------------------------------------------------- */

static bool is_new_open(const ledger_entry_t *e, void *arg) {
  play_t *p = arg;
  return e->kind == LEDGER_OPEN && !mockhs_conn_torture_dropped(p->mock, e->conn_id);
}

/* The mock's id of fixture connection n, waiting for it if needed; 0 after a failure. */
static int conn_id(play_t *p, int n) {
  if (p->conns[n].id != 0) return p->conns[n].id;
  int ms = p->step->deadline_ms;
  if (n == 1 && p->env->first_connect_ms > ms) ms = p->env->first_connect_ms;
  waiter_t w = waiter_begin(p, ms);
  const ledger_entry_t *e = wait_entry(p, &w, p->next_open_seq, is_new_open, p);
  if (e == NULL) {
    finish_step(p, FIXTURE_FAILED,
                "the worker opened no connection c%d within %d ms (%d accepted so far)", n, ms,
                mockhs_accepted_count(p->mock));
    return 0;
  }
  p->conns[n] = (conn_state_t){.id = e->conn_id, .cursor = e->seq + 1};
  p->next_open_seq = e->seq + 1;
  return e->conn_id;
}

typedef struct conn_arg {
  int id;
  bool lines;  /* worker lines */
  bool closes; /* the connection's close */
} conn_arg_t;

static bool on_conn(const ledger_entry_t *e, void *arg) {
  const conn_arg_t *a = arg;
  if (e->conn_id != a->id) return false;
  if (a->lines && e->kind == LEDGER_LINE && e->side == LEDGER_SIDE_SUT) return true;
  return a->closes && e->kind == LEDGER_CLOSE;
}

/* "closed by sut (FIN) at +1.234" for a connection, or "open". */
static void describe_conn(play_t *p, int id, char *buf, size_t cap) {
  conn_arg_t a = {.id = id, .closes = true};
  for (uint64_t seq = ledger_first_seq(p->ledger); seq < ledger_next_seq(p->ledger); seq++) {
    const ledger_entry_t *e = ledger_get(p->ledger, seq);
    if (on_conn(e, &a)) {
      snprintf(buf, cap, "closed by %s (%s) at +%.3f%s%s", ledger_side_name(e->side),
               ledger_close_how_name(e->how), rel_s(p, e), e->len ? ": " : "", e->text);
      return;
    }
  }
  snprintf(buf, cap, "%s", mockhs_conn_is_open(p->mock, id) ? "open" : "closing");
}

/* ---- lines ---------------------------------------------------------------------------- */

static bool ignored(const play_t *p, const ledger_entry_t *e) {
  for (size_t i = 0; i < p->f->ignore_count; i++)
    if (p->ignore[i] != NULL && fixture_matcher_test(p->ignore[i], e->text, e->len)) return true;
  return false;
}

/* Collects quoted worker lines for messages. */
typedef struct seen {
  char text[1024];
  size_t count;
} seen_t;

static void seen_add(seen_t *s, const ledger_entry_t *e) {
  size_t at = strlen(s->text);
  if (s->count++ >= SEEN_MAX) {
    if (s->count == SEEN_MAX + 1) snprintf(s->text + at, sizeof s->text - at, " | ...");
    return;
  }
  snprintf(s->text + at, sizeof s->text - at, "%s'%.120s'", s->count > 1 ? " | " : "", e->text);
}

static fixture_matcher_t *matcher(play_t *p, const char *text, fixture_text_use_t use) {
  rc_error_t err;
  fixture_matcher_t *m = fixture_matcher_create(text, use, &p->vars, &err);
  if (m == NULL) finish_step(p, FIXTURE_BROKEN, "%s", err.msg);
  return m;
}

/* Expectations in order (one step) or in any order (an unordered window). */
static void expect_lines(play_t *p, const fixture_step_t *s, const fixture_step_t *items,
                         size_t n) {
  int id = conn_id(p, s->conn);
  if (id == 0) return;
  fixture_matcher_t **m = calloc(n, sizeof *m);
  bool *matched = calloc(n, sizeof *matched);
  if (m == NULL || matched == NULL) {
    free(m);
    free(matched);
    finish_step(p, FIXTURE_BROKEN, "out of memory");
    return;
  }
  for (size_t i = 0; i < n && !p->done; i++) m[i] = matcher(p, items[i].text, items[i].use);
  size_t left = n;
  seen_t seen = {.text = ""};
  const ledger_entry_t *last = NULL;
  waiter_t w = waiter_begin(p, s->deadline_ms);
  conn_arg_t a = {.id = id, .lines = true, .closes = true};
  uint64_t from = p->conns[s->conn].cursor;
  while (!p->done && left > 0) {
    const ledger_entry_t *e = wait_entry(p, &w, from, on_conn, &a);
    if (e == NULL) {
      finish_step(p, FIXTURE_FAILED, "no such line within %d ms; the worker sent %s",
                  s->deadline_ms, seen.count ? seen.text : "nothing after the previous match");
      break;
    }
    from = e->seq + 1;
    if (e->kind == LEDGER_CLOSE) {
      finish_step(p, FIXTURE_FAILED, "c%d was closed by %s (%s) at +%.3f first; the worker sent %s",
                  s->conn, ledger_side_name(e->side), ledger_close_how_name(e->how), rel_s(p, e),
                  seen.count ? seen.text : "nothing after the previous match");
      break;
    }
    size_t hit = n;
    for (size_t i = 0; i < n && hit == n; i++)
      if (!matched[i] && fixture_matcher_test(m[i], e->text, e->len)) hit = i;
    if (hit < n) {
      matched[hit] = true;
      left--;
      last = e;
      continue;
    }
    if (ignored(p, e)) continue;
    seen_add(&seen, e);
    if (p->f->unexpected_fail)
      finish_step(p, FIXTURE_FAILED, "the worker sent '%.300s' at +%.3f instead (unexpected: fail)",
                  e->text, rel_s(p, e));
  }
  if (!p->done) {
    p->conns[s->conn].cursor = last->seq + 1;
    if (n == 1)
      trace_add(p, "ok", s, "[+%.3f c%d '%.200s']", rel_s(p, last), s->conn, last->text);
    else
      trace_add(p, "ok", s, "[%zu lines by +%.3f]", n, rel_s(p, last));
  }
  for (size_t i = 0; i < n; i++) fixture_matcher_destroy(m[i]);
  free(m);
  free(matched);
}

typedef struct match_arg {
  int id;
  fixture_matcher_t *m;
} match_arg_t;

static bool on_matching_line(const ledger_entry_t *e, void *arg) {
  const match_arg_t *a = arg;
  if (e->conn_id != a->id) return false;
  if (e->kind == LEDGER_CLOSE) return true; /* no line can follow */
  return e->kind == LEDGER_LINE && e->side == LEDGER_SIDE_SUT &&
         fixture_matcher_test(a->m, e->text, e->len);
}

static void expect_no_line(play_t *p, const fixture_step_t *s) {
  int id = conn_id(p, s->conn);
  if (id == 0) return;
  match_arg_t a = {.id = id, .m = matcher(p, s->text, s->use)};
  if (a.m == NULL) return;
  waiter_t w = waiter_begin(p, s->deadline_ms);
  const ledger_entry_t *e = wait_entry(p, &w, p->conns[s->conn].cursor, on_matching_line, &a);
  if (e != NULL && e->kind == LEDGER_LINE)
    finish_step(p, FIXTURE_FAILED, "the worker sent '%.300s' at +%.3f", e->text, rel_s(p, e));
  else if (e != NULL)
    trace_add(p, "ok", s, "[none; c%d closed at +%.3f]", s->conn, rel_s(p, e));
  else
    trace_add(p, "ok", s, "[none within %d ms]", s->deadline_ms);
  fixture_matcher_destroy(a.m);
}

static void send_line(play_t *p, const fixture_step_t *s) {
  int id = conn_id(p, s->conn);
  if (id == 0) return;
  size_t len = 0;
  char *bytes = fixture_text_expand(s->text, s->use, &p->vars, &len);
  if (bytes == NULL) {
    finish_step(p, FIXTURE_BROKEN, "out of memory");
    return;
  }
  int rc = 0;
  if (s->use == FIXTURE_TEXT_RAW) {
    rc = mockhs_send_raw(p->mock, id, bytes, len);
  } else if (s->number > 0) {
    char *line = realloc(bytes, len + 1);
    if (line != NULL) {
      bytes = line;
      bytes[len++] = '\n';
    }
    for (size_t at = 0; rc == 0 && at < len; at += (size_t)s->number) {
      size_t piece = len - at < (size_t)s->number ? len - at : (size_t)s->number;
      rc = mockhs_send_raw(p->mock, id, bytes + at, piece);
      if (rc == 0 && at + piece < len) observe(p, 2); /* one TCP segment per piece */
    }
  } else {
    rc = mockhs_send_line(p->mock, id, bytes, len);
  }
  free(bytes);
  if (rc != 0) {
    char how[512];
    describe_conn(p, id, how, sizeof how);
    finish_step(p, FIXTURE_FAILED, "c%d is not open for the mock's line: %s", s->conn, how);
    return;
  }
  trace_add(p, "ok", s, NULL);
}

/* ---- connection steps ----------------------------------------------------------------- */

static void close_step(play_t *p, const fixture_step_t *s) {
  int id = conn_id(p, s->conn);
  if (id == 0) return;
  if (mockhs_close_conn(p->mock, id, s->flag) != 0) {
    char how[512];
    describe_conn(p, id, how, sizeof how);
    finish_step(p, FIXTURE_FAILED, "the mock could not close c%d: it is %s", s->conn, how);
    return;
  }
  trace_add(p, "ok", s, NULL);
}

static void closed_step(play_t *p, const fixture_step_t *s) {
  int id = conn_id(p, s->conn);
  if (id == 0) return;
  conn_arg_t a = {.id = id, .closes = true};
  waiter_t w = waiter_begin(p, s->deadline_ms);
  const ledger_entry_t *e = wait_entry(p, &w, ledger_first_seq(p->ledger), on_conn, &a);
  if (e == NULL) {
    finish_step(p, FIXTURE_FAILED, "c%d is still open after %d ms", s->conn, s->deadline_ms);
    return;
  }
  ledger_side_t want_side = s->by == FIXTURE_BY_SUT ? LEDGER_SIDE_SUT : LEDGER_SIDE_MOCK;
  ledger_close_how_t want_how = s->how == FIXTURE_HOW_FIN ? LEDGER_CLOSE_FIN : LEDGER_CLOSE_RST;
  if ((s->by != FIXTURE_BY_ANY && e->side != want_side) ||
      (s->how != FIXTURE_HOW_ANY && e->how != want_how)) {
    finish_step(p, FIXTURE_FAILED, "c%d was closed by %s (%s) at +%.3f", s->conn,
                ledger_side_name(e->side), ledger_close_how_name(e->how), rel_s(p, e));
    return;
  }
  trace_add(p, "ok", s, "[closed by %s (%s) at +%.3f]", ledger_side_name(e->side),
            ledger_close_how_name(e->how), rel_s(p, e));
}

static void open_step(play_t *p, const fixture_step_t *s) {
  int id = conn_id(p, s->conn);
  if (id == 0) return;
  if (!mockhs_conn_is_open(p->mock, id)) {
    char how[512];
    describe_conn(p, id, how, sizeof how);
    finish_step(p, FIXTURE_FAILED, "c%d is %s", s->conn, how);
    return;
  }
  trace_add(p, "ok", s, NULL);
}

static void stall_step(play_t *p, const fixture_step_t *s) {
  int id = conn_id(p, s->conn);
  if (id == 0) return;
  if (mockhs_set_conn_stalled(p->mock, id, true) != 0) {
    char how[512];
    describe_conn(p, id, how, sizeof how);
    finish_step(p, FIXTURE_FAILED, "c%d cannot be stalled: it is %s", s->conn, how);
    return;
  }
  observe(p, s->ms);
  mockhs_set_conn_stalled(p->mock, id, false); /* a connection closed meanwhile stays so */
  trace_add(p, "ok", s, NULL);
}

/* ---- side channels -------------------------------------------------------------------- */

typedef struct http_arg {
  fixture_matcher_t *m; /* NULL: any request */
} http_arg_t;

static bool on_http(const ledger_entry_t *e, void *arg) {
  const http_arg_t *a = arg;
  return e->kind == LEDGER_HTTP && (a->m == NULL || fixture_matcher_test(a->m, e->text, e->len));
}

static void http_requests_seen(play_t *p, seen_t *seen) {
  http_arg_t any = {0};
  for (uint64_t seq = p->http_cursor; seq < ledger_next_seq(p->ledger); seq++) {
    const ledger_entry_t *e = ledger_get(p->ledger, seq);
    if (e != NULL && on_http(e, &any)) seen_add(seen, e);
  }
}

static void http_step(play_t *p, const fixture_step_t *s, bool negated) {
  http_arg_t a = {.m = matcher(p, s->text, s->use)};
  if (a.m == NULL) return;
  uint64_t from =
      p->http_cursor < ledger_first_seq(p->ledger) ? ledger_first_seq(p->ledger) : p->http_cursor;
  waiter_t w = waiter_begin(p, s->deadline_ms);
  const ledger_entry_t *e = wait_entry(p, &w, from, on_http, &a);
  seen_t seen = {.text = ""};
  if (!negated && e == NULL) {
    http_requests_seen(p, &seen);
    finish_step(p, FIXTURE_FAILED, "no such request within %d ms; the worker requested %s",
                s->deadline_ms, seen.count ? seen.text : "nothing");
  } else if (!negated) {
    p->http_cursor = e->seq + 1;
    trace_add(p, "ok", s, "[+%.3f '%.200s']", rel_s(p, e), e->text);
  } else if (e != NULL) {
    finish_step(p, FIXTURE_FAILED, "the worker requested '%.300s' at +%.3f", e->text, rel_s(p, e));
  } else {
    trace_add(p, "ok", s, "[none within %d ms]", s->deadline_ms);
  }
  fixture_matcher_destroy(a.m);
}

/* The next complete line of the log after *offset (advancing it), or false. */
static bool log_next_line(const char *path, long *offset, char *line, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return false;
  bool got = false;
  if (fseek(f, *offset, SEEK_SET) == 0 && fgets(line, (int)cap, f) != NULL) {
    size_t n = strlen(line);
    if (n > 0 && line[n - 1] == '\n') {
      line[n - 1] = '\0';
      *offset += (long)n;
      got = true;
    } else if (n == cap - 1) {
      *offset += (long)n; /* over-long: skip this part */
    }
  }
  fclose(f);
  return got;
}

static void log_step(play_t *p, const fixture_step_t *s, bool negated) {
  if (p->env->log_path == NULL) {
    finish_step(p, FIXTURE_BROKEN,
                "no SUT log to check (the profile has none; mockhs needs "
                "--sut-log FILE)");
    return;
  }
  fixture_matcher_t *m = matcher(p, s->text, s->use);
  if (m == NULL) return;
  long offset = p->log_offset;
  waiter_t w = waiter_begin(p, s->deadline_ms);
  char *line = malloc(65536);
  bool found = false;
  while (line != NULL && !found) {
    while (!found && log_next_line(p->env->log_path, &offset, line, 65536))
      found = fixture_matcher_test(m, line, strlen(line));
    if (found || rc_clock_mono_ms() >= waiter_deadline(p, &w)) break;
    waiter_t slice = waiter_begin(p, 20);
    wait_entry(p, &slice, ledger_next_seq(p->ledger), never, NULL);
  }
  if (line == NULL)
    finish_step(p, FIXTURE_BROKEN, "out of memory");
  else if (!negated && !found)
    finish_step(p, FIXTURE_FAILED, "no such line in %s within %d ms", p->env->log_path,
                s->deadline_ms);
  else if (negated && found)
    finish_step(p, FIXTURE_FAILED, "the worker logged '%.300s'", line);
  else if (!negated) {
    p->log_offset = offset;
    trace_add(p, "ok", s, "['%.200s']", line);
  } else {
    trace_add(p, "ok", s, "[none within %d ms]", s->deadline_ms);
  }
  free(line);
  fixture_matcher_destroy(m);
}

/* ---- metrics and the SUT's HTTP answers ------------------------------------------------ */

#define SCRAPE_TIMEOUT_MS 2000
#define SIDE_POLL_MS 100

static double now_rel_s(const play_t *p) {
  return (double)(rc_clock_mono_ns() - ledger_origin_ns(p->ledger)) / 1e9;
}

/* Milliseconds before the waiter's deadline, clamped to [lo, hi]. */
static int left_ms(const play_t *p, const waiter_t *w, int lo, int hi) {
  int64_t left = waiter_deadline(p, w) - rc_clock_mono_ms();
  return left < lo ? lo : left > hi ? hi : (int)left;
}

static double mark_of(const play_t *p, const char *selector) {
  for (size_t i = p->mark_count; i > 0; i--)
    if (strcmp(p->marks[i - 1].selector, selector) == 0) return p->marks[i - 1].value;
  return 0; /* the loader makes sure a mark comes first */
}

/* One sample of a metric: its value, or absent, or why it could not be scraped. */
typedef struct metric_sample {
  bool scraped;
  size_t found; /* matching series */
  double value;
  double at_s; /* relative time of the scrape */
  char error[RC_ERROR_MAX];
} metric_sample_t;

static void metric_sample(play_t *p, const prom_t *selector, int timeout_ms, metric_sample_t *m) {
  rc_error_t err;
  prom_t *scrape = http_probe_metrics(p->env->metrics_url, timeout_ms, &err);
  m->at_s = now_rel_s(p);
  m->scraped = scrape != NULL;
  if (scrape == NULL) {
    snprintf(m->error, sizeof m->error, "%s", err.msg);
    return;
  }
  m->value = fixture_metric_value(scrape, selector, &m->found);
  prom_destroy(scrape);
}

/* "12 at +1.234" / "absent at +1.234" / "not scraped: why". */
static const char *metric_seen(const metric_sample_t *m, char *buf, size_t cap) {
  if (!m->scraped)
    snprintf(buf, cap, "the metrics could not be scraped: %s", m->error);
  else if (m->found == 0)
    snprintf(buf, cap, "no such series at +%.3f", m->at_s);
  else
    snprintf(buf, cap, "%g at +%.3f", m->value, m->at_s);
  return buf;
}

static void metric_step(play_t *p, const fixture_step_t *s) {
  if (p->env->metrics_url == NULL) {
    finish_step(p, FIXTURE_BROKEN,
                "no SUT metrics to scrape (the profile has no metrics.url; mockhs needs "
                "--sut-metrics URL)");
    return;
  }
  rc_error_t err;
  prom_t *selector = fixture_selector_parse(s->text, &err);
  if (selector == NULL) {
    finish_step(p, FIXTURE_BROKEN, "%s", err.msg);
    return;
  }
  bool negated = s->kind == FIXTURE_STEP_METRIC_NOT, mark = s->kind == FIXTURE_STEP_METRIC_MARK;
  double target = s->value + (s->relative ? mark_of(p, s->text) : 0);
  char target_text[96] = "";
  if (s->relative)
    snprintf(target_text, sizeof target_text, " (wanted %s %g = mark %g %+g)",
             fixture_op_text(s->op), target, mark_of(p, s->text), s->value);
  waiter_t w = waiter_begin(p, mark ? 0 : s->deadline_ms);
  metric_sample_t m = {0};
  int scrapes = 0;
  bool hit = false;
  for (;;) {
    metric_sample(p, selector, left_ms(p, &w, 100, SCRAPE_TIMEOUT_MS), &m);
    scrapes++;
    if (m.scraped)
      hit = m.found > 0 && (s->op == FIXTURE_OP_NONE || fixture_op_holds(s->op, m.value, target));
    /* A SUT that cannot be scraped must not let a negation pass. */
    if (hit || mark || (negated && !m.scraped)) break;
    if (rc_clock_mono_ms() >= waiter_deadline(p, &w)) break;
    observe(p, left_ms(p, &w, 1, SIDE_POLL_MS));
  }
  prom_destroy(selector);
  char seen[RC_ERROR_MAX + 64];
  metric_seen(&m, seen, sizeof seen);
  if (mark && m.scraped) {
    p->marks[p->mark_count++] = (struct mark){s->text, m.found ? m.value : 0};
    trace_add(p, "ok", s, "[%s%s]", seen, m.found ? "" : "; the mark is 0");
  } else if (mark || (!m.scraped && (negated || !hit))) {
    finish_step(p, FIXTURE_FAILED, "%s", seen);
  } else if (!negated && hit) {
    trace_add(p, "ok", s, "[%s%s]", seen, target_text);
  } else if (!negated) {
    finish_step(p, FIXTURE_FAILED, "%s%s (the last of %d scrapes in %d ms)", seen, target_text,
                scrapes, s->deadline_ms);
  } else if (hit) {
    finish_step(p, FIXTURE_FAILED, "%s%s", seen, target_text);
  } else {
    trace_add(p, "ok", s, "[not within %d ms: %d scrapes, the last %s]", s->deadline_ms, scrapes,
              seen);
  }
}

static void sut_http_step(play_t *p, const fixture_step_t *s) {
  if (p->env->http_url == NULL) {
    finish_step(p, FIXTURE_BROKEN,
                "no SUT HTTP listener to ask (the profile has no http.url; mockhs needs "
                "--sut-http URL)");
    return;
  }
  size_t len = 0, base = strlen(p->env->http_url);
  while (base > 0 && p->env->http_url[base - 1] == '/') base--;
  char *path = fixture_text_expand(s->text, FIXTURE_TEXT_SEND, &p->vars, &len);
  char *url = NULL;
  if (path == NULL || asprintf(&url, "%.*s%s", (int)base, p->env->http_url, path) < 0) {
    free(path);
    finish_step(p, FIXTURE_BROKEN, "out of memory");
    return;
  }
  free(path);
  waiter_t w = waiter_begin(p, s->deadline_ms);
  rc_error_t err;
  http_response_t *r = NULL;
  /* Until the listener answers (it may still be starting): then one answer is judged. */
  for (;;) {
    http_request_t req = {.method = s->method,
                          .url = url,
                          .timeout_ms = left_ms(p, &w, 100, FIXTURE_MAX_MS),
                          .max_body = 65536};
    if ((r = http_probe(&req, &err)) != NULL || rc_clock_mono_ms() >= waiter_deadline(p, &w)) break;
    observe(p, left_ms(p, &w, 1, SIDE_POLL_MS));
  }
  char seen[1024];
  if (r == NULL)
    finish_step(p, FIXTURE_FAILED, "no answer within %d ms: %s", s->deadline_ms, err.msg);
  else if (!fixture_sut_http_holds(s, r, &p->vars, seen, sizeof seen))
    finish_step(p, FIXTURE_FAILED, "%s %s answered %ld: %s", s->method, url, r->status, seen);
  else if (s->check == FIXTURE_CHECK_STATUS)
    trace_add(p, "ok", s, "[%s]", seen);
  else
    trace_add(p, "ok", s, "[%ld; %s]", r->status, seen);
  http_response_destroy(r);
  free(url);
}

/* ---- the SUT's database --------------------------------------------------------------- */

/* db: polled until the quantity satisfies OP N; !db: fails at the first sample that
 * does (or that cannot be taken: a negation must not pass unobserved). */
static void db_step(play_t *p, const fixture_step_t *s) {
  if (p->env->db_sample == NULL) {
    finish_step(p, FIXTURE_BROKEN,
                "no SUT database to observe (only replcheck can, for a "
                "profile with role pg)");
    return;
  }
  bool negated = s->kind == FIXTURE_STEP_DB_NOT;
  waiter_t w = waiter_begin(p, s->deadline_ms);
  char seen[1024] = "";
  double value = 0;
  int samples = 0, rc = 0;
  bool hit = false;
  for (;;) {
    rc = p->env->db_sample(p->env->db_arg, s->text, &value, seen, sizeof seen);
    samples++;
    hit = rc == 0 && fixture_op_holds(s->op, value, s->value);
    if (hit || (rc != 0 && negated) || rc_clock_mono_ms() >= waiter_deadline(p, &w)) break;
    observe(p, left_ms(p, &w, 1, SIDE_POLL_MS));
  }
  double at = now_rel_s(p);
  if (rc != 0)
    finish_step(p, FIXTURE_FAILED, "the database could not be observed: %s", seen);
  else if (negated && hit)
    finish_step(p, FIXTURE_FAILED, "%s %g at +%.3f: %s", s->text, value, at, seen);
  else if (negated)
    trace_add(p, "ok", s, "[not within %d ms: %d samples, the last %s %g]", s->deadline_ms, samples,
              s->text, value);
  else if (hit)
    trace_add(p, "ok", s, "[%s %g at +%.3f]", s->text, value, at);
  else
    finish_step(p, FIXTURE_FAILED, "%s %g at +%.3f (the last of %d samples in %d ms): %s", s->text,
                value, at, samples, s->deadline_ms, seen);
}

/* ---- fake federation remotes ---------------------------------------------------------- */

/* Counts only grow: whether the count step's outcome can no longer change. */
static bool count_settled(const fixture_step_t *s, double n) {
  bool holds = fixture_op_holds(s->op, n, s->value);
  if (s->op == FIXTURE_OP_GT || s->op == FIXTURE_OP_GE) return holds;
  return (s->op == FIXTURE_OP_EQ || s->op == FIXTURE_OP_LT || s->op == FIXTURE_OP_LE) && !holds &&
         n > s->value;
}

static void remote_step(play_t *p, const fixture_step_t *s) {
  const char *name = p->f->remotes[s->remote];
  if ((size_t)s->remote >= p->env->remote_count || p->env->remotes[s->remote] == NULL) {
    finish_step(p, FIXTURE_BROKEN, "no fake remote %s is running (nobody started the remotes)",
                name);
    return;
  }
  const fake_remote_t *remote = p->env->remotes[s->remote];
  fixture_remote_want_t want;
  rc_error_t err;
  if (fixture_remote_want_init(&want, s, &p->vars, &err) != 0) {
    finish_step(p, FIXTURE_BROKEN, "%s", err.msg);
    return;
  }
  bool count = s->kind == FIXTURE_STEP_REMOTE_COUNT, negated = s->kind == FIXTURE_STEP_REMOTE_NOT;
  size_t *cursor = &p->remote_cursor[s->remote][s->presence ? 1 : 0];
  const char *what = s->presence ? "presence update" : "request";
  waiter_t w = waiter_begin(p, s->deadline_ms);
  char seen[2048] = "", all[2048];
  long found = -1;
  size_t n = 0;
  for (;;) {
    if (count) {
      if (count_settled(s, (double)(n = fixture_remote_count(remote, &want)))) break;
    } else if ((found = fixture_remote_find(remote, s, &want, *cursor, seen, sizeof seen)) >= 0) {
      break;
    }
    if (rc_clock_mono_ms() >= waiter_deadline(p, &w)) break;
    observe(p, left_ms(p, &w, 1, 20));
  }
  fixture_remote_want_clear(&want);
  fake_remote_describe(remote, 12, all, sizeof all);
  if (count && fixture_op_holds(s->op, (double)n, s->value))
    trace_add(p, "ok", s, "[%zu at +%.3f]", n, now_rel_s(p));
  else if (count)
    finish_step(p, FIXTURE_FAILED,
                "%s received %zu matching presence updates by +%.3f (wanted %s %g); %s", name, n,
                now_rel_s(p), fixture_op_text(s->op), s->value, all);
  else if (negated && found >= 0)
    finish_step(p, FIXTURE_FAILED, "%s received the %s '%.300s'; %s", name, what, seen, all);
  else if (negated)
    trace_add(p, "ok", s, "[none within %d ms]", s->deadline_ms);
  else if (found < 0)
    finish_step(p, FIXTURE_FAILED, "%s received no such %s within %d ms; %s", name, what,
                s->deadline_ms, all);
  else {
    *cursor = (size_t)found + 1;
    trace_add(p, "ok", s, "[+%.3f '%.300s']", now_rel_s(p), seen);
  }
}

/* ---- the mock's state ----------------------------------------------------------------- */

static void mock_step(play_t *p, const fixture_step_t *s) {
  mock_http_t *http = mockhs_http(p->mock);
  rc_error_t err;
  switch (s->kind) {
    case FIXTURE_STEP_PING:
      mockhs_set_pinging(p->mock, s->flag);
      break;
    case FIXTURE_STEP_LISTEN:
      if (mockhs_set_listening(p->mock, s->flag, &err) != 0) {
        finish_step(p, FIXTURE_BROKEN, "%s", err.msg);
        return;
      }
      break;
    case FIXTURE_STEP_HTTP_FAIL:
    case FIXTURE_STEP_HTTP_DELAY:
    case FIXTURE_STEP_HTTP_PAGE:
      if (http == NULL) {
        finish_step(p, FIXTURE_BROKEN, "the mock's HTTP side is off");
        return;
      }
      if (s->kind == FIXTURE_STEP_HTTP_FAIL)
        mock_http_fail_next(http, s->number, s->number2);
      else if (s->kind == FIXTURE_STEP_HTTP_DELAY)
        mock_http_set_delay(http, s->ms);
      else
        mock_http_set_page_size(http, (size_t)s->number);
      break;
    case FIXTURE_STEP_ROW:
      if (stream_history_append(mockhs_history(p->mock), s->stream, s->token, s->text,
                                strlen(s->text)) != 0) {
        finish_step(p, FIXTURE_BROKEN,
                    "stream '%s' is not one the mock writes (declare it with "
                    "'stream: %s POSITION')",
                    s->stream, s->stream);
        return;
      }
      break;
    default:
      break;
  }
  trace_add(p, "ok", s, NULL);
}

static void terminate_step(play_t *p, const fixture_step_t *s) {
  char why[256] = "";
  if (p->env->terminate == NULL) {
    finish_step(p, FIXTURE_BROKEN,
                "only replcheck can stop the worker (mockhs cannot signal a "
                "worker started by hand)");
    return;
  }
  if (!p->env->terminate(p->env->terminate_arg, why, sizeof why)) {
    finish_step(p, FIXTURE_FAILED, "%s", why);
    return;
  }
  trace_add(p, "ok", s, "[%s]", why);
}

/* ---- the script ----------------------------------------------------------------------- */

static void play_step(play_t *p, const fixture_step_t *s) {
  p->step = s;
  switch (s->kind) {
    case FIXTURE_STEP_CONNECT:
      if (conn_id(p, s->conn) != 0)
        trace_add(p, "ok", s, "[c%d is the mock's connection %d]", s->conn, p->conns[s->conn].id);
      break;
    case FIXTURE_STEP_SEND:
      send_line(p, s);
      break;
    case FIXTURE_STEP_EXPECT:
      expect_lines(p, s, s, 1);
      break;
    case FIXTURE_STEP_UNORDERED:
      expect_lines(p, s, s->children, s->child_count);
      break;
    case FIXTURE_STEP_EXPECT_NOT:
      expect_no_line(p, s);
      break;
    case FIXTURE_STEP_CLOSE:
      close_step(p, s);
      break;
    case FIXTURE_STEP_STALL:
      stall_step(p, s);
      break;
    case FIXTURE_STEP_CLOSED:
      closed_step(p, s);
      break;
    case FIXTURE_STEP_OPEN:
      open_step(p, s);
      break;
    case FIXTURE_STEP_WAIT:
      observe(p, s->ms);
      trace_add(p, "ok", s, NULL);
      break;
    case FIXTURE_STEP_HTTP:
      http_step(p, s, false);
      break;
    case FIXTURE_STEP_HTTP_NOT:
      http_step(p, s, true);
      break;
    case FIXTURE_STEP_LOG:
      log_step(p, s, false);
      break;
    case FIXTURE_STEP_LOG_NOT:
      log_step(p, s, true);
      break;
    case FIXTURE_STEP_TERMINATE:
      terminate_step(p, s);
      break;
    case FIXTURE_STEP_METRIC:
    case FIXTURE_STEP_METRIC_NOT:
    case FIXTURE_STEP_METRIC_MARK:
      metric_step(p, s);
      break;
    case FIXTURE_STEP_REMOTE:
    case FIXTURE_STEP_REMOTE_NOT:
    case FIXTURE_STEP_REMOTE_COUNT:
      remote_step(p, s);
      break;
    case FIXTURE_STEP_DB:
    case FIXTURE_STEP_DB_NOT:
      db_step(p, s);
      break;
    case FIXTURE_STEP_SUT_HTTP:
      sut_http_step(p, s);
      break;
    default:
      mock_step(p, s);
      break;
  }
}

void fixture_apply_config(const fixture_t *f, mockhs_config_t *cfg) {
  bool main = f->mock == FIXTURE_MOCK_MAIN;
  cfg->send_opening = main;
  cfg->answer_replicate = main;
  cfg->reject_invalid = main;
  if (f->ping_interval_ms >= 0) cfg->ping_interval_ms = f->ping_interval_ms;
  if (f->stream_count > 0) {
    size_t n = f->stream_count < MOCKHS_MAX_STREAMS ? f->stream_count : MOCKHS_MAX_STREAMS;
    for (size_t i = 0; i < n; i++)
      cfg->streams[i] = (mockhs_stream_t){f->streams[i].name, f->streams[i].position};
    cfg->stream_count = n;
  }
  /* Fake remotes mean a federation sender, which replicates the federation stream a
   * main with send_federation off writes (the harness adds it for such profiles too). */
  bool federation = false;
  for (size_t i = 0; i < cfg->stream_count; i++)
    federation = federation || strcmp(cfg->streams[i].name, "federation") == 0;
  if (f->remote_count > 0 && !federation && cfg->stream_count < MOCKHS_MAX_STREAMS)
    cfg->streams[cfg->stream_count++] = (mockhs_stream_t){.name = "federation", .position = 1};
}

void fixture_play(const fixture_t *f, const fixture_env_t *env, fixture_result_t *out) {
  memset(out, 0, sizeof *out);
  play_t p = {
      .f = f, .env = env, .mock = env->mock, .ledger = mockhs_ledger(env->mock), .out = out};
  p.vars = env->vars;
  if (p.vars.server_name == NULL) p.vars.server_name = mockhs_server_name(env->mock);
  if (p.vars.writer == NULL) p.vars.writer = "master";
  p.next_open_seq = ledger_first_seq(p.ledger);
  p.http_cursor = ledger_first_seq(p.ledger);
  p.conns = calloc((size_t)f->conn_count + 1, sizeof *p.conns);
  p.ignore = calloc(f->ignore_count ? f->ignore_count : 1, sizeof *p.ignore);
  p.marks = calloc(f->step_count ? f->step_count : 1, sizeof *p.marks);
  out->steps_total = f->step_count;
  if (p.conns == NULL || p.ignore == NULL || p.marks == NULL) {
    out->outcome = FIXTURE_BROKEN;
    out->actual = strdup("out of memory");
  } else {
    for (size_t i = 0; i < f->ignore_count; i++)
      p.ignore[i] = fixture_matcher_create(f->ignore[i], FIXTURE_TEXT_PATTERN, &p.vars, NULL);
    size_t i = 0;
    for (; i < f->step_count && !p.done; i++) {
      play_step(&p, &f->steps[i]);
      if (!p.done) out->steps_passed++;
    }
    for (; i < f->step_count; i++) trace_add(&p, "--", &f->steps[i], "(not reached)");
  }
  for (size_t i = 0; p.ignore != NULL && i < f->ignore_count; i++)
    fixture_matcher_destroy(p.ignore[i]);
  free(p.ignore);
  free(p.conns);
  free(p.marks);
  out->trace = p.trace;
}

void fixture_result_clear(fixture_result_t *r) {
  if (r == NULL) return;
  free(r->expected);
  free(r->actual);
  free(r->trace);
  memset(r, 0, sizeof *r);
}
