#include "suite_observe.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filetail.h"
#include "rc_clock.h"
#include "stream_history.h"

/* How long after readiness a SUT may still be opening its HTTP listener (readiness is
 * usually the replication connection, which can come first). */
#define STARTUP_GRACE_MS 3000
#define REQUEST_TIMEOUT_MS 2000
#define RETRY_PAUSE_MS 50
/* A log read per poll is bounded; a SUT logging faster than this is not waited for. */
#define SUITE_LOG_SCAN_BYTES (8u * 1024u * 1024u)

/* Runs fetch until it succeeds or the start-up grace is over. */
static bool within_grace(const rc_test_t *t) {
  return rc_clock_mono_ms() < t->started_ms + STARTUP_GRACE_MS;
}

prom_t *suite_scrape(rc_test_t *t) {
  char *url = rc_expand(t, "metrics.url", t->profile->metrics_url, NULL, 0);
  if (url == NULL) return NULL;
  rc_error_t err;
  prom_t *scrape;
  while ((scrape = http_probe_metrics(url, REQUEST_TIMEOUT_MS, &err)) == NULL && within_grace(t))
    rc_observe(t, RETRY_PAUSE_MS);
  if (scrape == NULL) rc_error(t, "cannot scrape the SUT's metrics: %s", err.msg);
  free(url);
  return scrape;
}

prom_t *suite_scrape_until(rc_test_t *t, int timeout_ms, int poll_ms,
                           bool (*cond)(const prom_t *scrape, void *arg), void *arg) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    prom_t *scrape = suite_scrape(t);
    if (scrape == NULL || cond(scrape, arg)) return scrape;
    int64_t left = deadline - rc_clock_mono_ms();
    if (left <= 0) return scrape;
    prom_destroy(scrape);
    rc_observe(t, (int)(left < poll_ms ? left : poll_ms));
  }
}

double suite_metric(const prom_t *scrape, const char *metric, const char *name,
                    const char *extra_label, const char *extra_value, bool *found) {
  prom_match_t match[2] = {{"name", name}, {extra_label, extra_value}};
  const prom_sample_t *s = prom_find(scrape, metric, match, extra_label != NULL ? 2 : 1);
  if (found != NULL) *found = s != NULL;
  return s != NULL ? s->value : 0;
}

double suite_bg_starts(const prom_t *scrape, const char *process, bool *found) {
  return suite_metric(scrape, METRIC_BG_START, process, NULL, NULL, found);
}

double suite_bg_in_flight(const prom_t *scrape, const char *process, bool *found) {
  return suite_metric(scrape, METRIC_BG_IN_FLIGHT, process, NULL, NULL, found);
}

static const char *const SIZE_NAMES[] = {"synapse_util_caches_cache:size",
                                         "synapse_util_caches_cache_size", NULL};
static const char *const EVICTED_NAMES[] = {"synapse_util_caches_cache:evicted_size",
                                            "synapse_util_caches_cache_evicted_size", NULL};

double suite_cache_size(const prom_t *scrape, const char *cache, bool *found) {
  for (size_t i = 0; SIZE_NAMES[i] != NULL; i++) {
    double v = suite_metric(scrape, SIZE_NAMES[i], cache, NULL, NULL, found);
    if (*found) return v;
  }
  return 0;
}

double suite_cache_evicted(const prom_t *scrape, const char *cache, const char *reason, bool *found,
                           bool *labelled) {
  prom_match_t match[2] = {{"name", cache}, {"reason", reason}};
  for (size_t i = 0; EVICTED_NAMES[i] != NULL; i++) {
    size_t n = 0;
    double all = prom_sum(scrape, EVICTED_NAMES[i], match, 1, &n);
    if (n == 0) continue;
    *found = true;
    size_t with_reason = 0;
    double v = reason != NULL ? prom_sum(scrape, EVICTED_NAMES[i], match, 2, &with_reason) : 0;
    if (labelled != NULL) *labelled = with_reason > 0;
    return with_reason > 0 ? v : all;
  }
  *found = false;
  if (labelled != NULL) *labelled = false;
  return 0;
}

const char *suite_metric_series(const prom_t *scrape, const char *metric, const char *prefix,
                                char *buf, size_t cap) {
  size_t at = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < prom_sample_count(scrape); i++) {
    const prom_sample_t *s = prom_sample_at(scrape, i);
    const char *name = prom_sample_label(s, "name");
    if (!prom_name_matches(s->name, metric) || name == NULL) continue;
    if (prefix != NULL && strncmp(name, prefix, strlen(prefix)) != 0) continue;
    const char *reason = prom_sample_label(s, "reason");
    int n = snprintf(buf + at, cap - at, "%s%s%s%s=%g", at ? ", " : "", name, reason ? "/" : "",
                     reason ? reason : "", s->value);
    if (n < 0 || (size_t)n >= cap - at) {
      if (cap > 4) snprintf(buf + cap - 4, 4, "...");
      return buf;
    }
    at += (size_t)n;
  }
  if (at == 0) snprintf(buf, cap, "none");
  return buf;
}

http_response_t *suite_http(rc_test_t *t, const char *method, const char *path,
                            const char *const *extra_headers) {
  char *base = rc_expand(t, "http.url", t->profile->http_url, NULL, 0);
  if (base == NULL) return NULL;
  size_t len = strlen(base);
  while (len > 0 && base[len - 1] == '/') base[--len] = '\0';
  char *url = NULL;
  if (asprintf(&url, "%s%s", base, path) < 0) url = NULL;
  free(base);
  if (url == NULL) {
    rc_error(t, "out of memory");
    return NULL;
  }
  http_request_t req = {.method = method,
                        .url = url,
                        .timeout_ms = REQUEST_TIMEOUT_MS,
                        .extra_headers = extra_headers};
  rc_error_t err;
  http_response_t *r;
  while ((r = http_probe(&req, &err)) == NULL && within_grace(t)) rc_observe(t, RETRY_PAUSE_MS);
  if (r == NULL) rc_error(t, "cannot reach the SUT's HTTP listener: %s", err.msg);
  free(url);
  return r;
}

/* Percent-encodes what a URL path segment cannot hold as it is. */
static char *encode_segment(const char *text) {
  char *out = malloc(strlen(text) * 3 + 1);
  if (out == NULL) return NULL;
  size_t n = 0;
  for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
    if (isalnum(*c) || strchr("-._~!$&'()*+,;=:@", *c) != NULL)
      out[n++] = (char)*c;
    else
      n += (size_t)sprintf(out + n, "%%%02X", *c);
  }
  out[n] = '\0';
  return out;
}

bool suite_cache_read(rc_test_t *t, const profile_cache_t *cache, int n, bool *present) {
  char counter[16];
  snprintf(counter, sizeof counter, "%d", n);
  profile_var_t with_n = {"n", counter};
  char *key = rc_expand(t, "insert.key", cache->insert_key, &with_n, 1);
  char *encoded = key != NULL ? encode_segment(key) : NULL;
  profile_var_t with_key = {"key", encoded};
  char *url = encoded != NULL ? rc_expand(t, "read_url", cache->read_url, &with_key, 1) : NULL;
  bool ok = false;
  if (url != NULL) {
    http_request_t req = {.url = url, .timeout_ms = REQUEST_TIMEOUT_MS};
    rc_error_t err;
    http_response_t *r;
    while ((r = http_probe(&req, &err)) == NULL && within_grace(t)) rc_observe(t, RETRY_PAUSE_MS);
    if (r == NULL) {
      rc_error(t, "cannot read cache %s through read_url: %s", cache->name, err.msg);
    } else if (r->status != 200 && r->status != 404) {
      rc_error(t,
               "reading key %s of cache %s (GET %s) answered %ld; the profile's read_url must "
               "answer 200 (cached) or 404 (not cached)",
               key, cache->name, url, r->status);
    } else {
      *present = r->status == 200;
      ok = true;
    }
    http_response_destroy(r);
  } else if (key != NULL && encoded == NULL) {
    rc_error(t, "out of memory");
  }
  free(url);
  free(encoded);
  free(key);
  return ok;
}

bool suite_cache_insert(rc_test_t *t, const profile_cache_t *cache, int n) {
  char counter[16];
  snprintf(counter, sizeof counter, "%d", n);
  profile_var_t with_n = {"n", counter};
  char *row = rc_expand(t, "insert.row", cache->insert_row, &with_n, 1);
  if (row == NULL) return false;
  int64_t token = 0;
  if (!stream_history_position(mockhs_history(t->mock), cache->insert_stream, &token)) {
    free(row);
    return rc_error(t,
                    "the mock does not write stream %s (the profile's insert.stream of cache %s)",
                    cache->insert_stream, cache->name);
  }
  if (t->probe_floor > token) token = t->probe_floor;
  mockhs_row_t r = {.token = token + 1, .json = row};
  rc_error_t err;
  int rc = mockhs_emit(t->mock, cache->insert_stream, &r, 1, &err);
  free(row);
  if (rc != 0)
    return rc_error(t, "cannot emit the insert row for cache %s: %s", cache->name, err.msg);
  return true;
}

long suite_log_offset(rc_test_t *t) {
  return filetail_size(t->log_file);
}

typedef struct log_wait {
  rc_test_t *t;
  long *offset;
  bool (*match)(const sutlog_record_t *record, void *arg);
  void *arg;
} log_wait_t;

static bool log_visit(const sutlog_record_t *record, void *arg) {
  log_wait_t *w = arg;
  return record->is_record && w->match(record, w->arg);
}

static bool log_poll(void *arg) {
  log_wait_t *w = arg;
  return sutlog_scan(w->t->profile, w->t->log_file, w->offset, SUITE_LOG_SCAN_BYTES, log_visit, w);
}

bool suite_log_wait(rc_test_t *t, long *offset, int timeout_ms,
                    bool (*match)(const sutlog_record_t *record, void *arg), void *arg) {
  log_wait_t w = {.t = t, .offset = offset, .match = match, .arg = arg};
  return log_poll(&w) || mockhs_run_until(t->mock, log_poll, &w, timeout_ms, 20);
}

/* ---- RD-04's log half --------------------------------------------------------------- */

/* "Received rdata <stream> [(<instance>)] -> <token>": per (stream, instance) the tokens
 * of applied units must strictly increase; batch rows ("-> batch", "-> None") do not
 * count. */
typedef struct rdata_order {
  struct {
    char key[160];
    long long token;
  } seen[32];
  size_t count;
  size_t lines;
  char problem[512];
} rdata_order_t;

static bool rdata_order_visit(const sutlog_record_t *r, void *arg) {
  rdata_order_t *o = arg;
  static const char PREFIX[] = "Received rdata ";
  if (!r->is_record || strncmp(r->message, PREFIX, sizeof PREFIX - 1) != 0) return false;
  const char *arrow = strstr(r->message, " -> ");
  if (arrow == NULL) return false;
  char *end;
  long long token = strtoll(arrow + 4, &end, 10);
  if (end == arrow + 4 || (*end != '\0' && *end != ' ')) return false;
  size_t key_len = (size_t)(arrow - r->message) - (sizeof PREFIX - 1);
  char key[160];
  snprintf(key, sizeof key, "%.*s", (int)key_len, r->message + sizeof PREFIX - 1);
  o->lines++;
  for (size_t i = 0; i < o->count; i++) {
    if (strcmp(o->seen[i].key, key) != 0) continue;
    if (token <= o->seen[i].token && o->problem[0] == '\0')
      snprintf(o->problem, sizeof o->problem, "'Received rdata %s -> %lld' after '... -> %lld'",
               key, token, o->seen[i].token);
    o->seen[i].token = token;
    return false;
  }
  if (o->count < sizeof o->seen / sizeof o->seen[0]) {
    snprintf(o->seen[o->count].key, sizeof o->seen[o->count].key, "%s", key);
    o->seen[o->count++].token = token;
  }
  return false;
}

bool suite_log_check_rdata_order(rc_test_t *t, const char *requirement) {
  rdata_order_t o = {0};
  long offset = 0;
  sutlog_scan(t->profile, t->log_file, &offset, 16u << 20, rdata_order_visit, &o);
  if (o.problem[0] != '\0')
    return rc_fail(t, requirement, "%s", o.problem);
  if (o.lines == 0)
    rc_note(t, "the log has no 'Received rdata <stream> -> <token>' line: its order was not "
               "checked");
  return true;
}
