/* cache: expiring caches reap on their own, with no start call, in short runs of their
 * own, and count what they remove (requirements.md §10, CA-01..CA-07; seed A,
 * seed-behaviours.md §A, metric names §1.4, §1.6). The caches, their expiry E, max_len
 * and how to insert an entry come from the profile's "caches" list (role caches);
 * observation is the metrics scrape and, for reads, the cache's read_url, and for CA-07
 * the log. All windows derive from the declared E. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "suite_observe.h"
#include "sutlog.h"
#include "suite_util.h"

#define POLL_MS 100
/* The scrape period of CA-01/CA-02's windows: how often the suite looks. */
#define SCRAPE_PERIOD_MS POLL_MS

/* The cache the row's needs select (registry_cache_for), started and connected.
 * NULL after recording an outcome. */
static const profile_cache_t *start_with_cache(rc_test_t *t) {
  const profile_cache_t *cache = registry_cache_for(t->profile, t->def->needs);
  if (cache == NULL) {
    rc_error(t, "no cache of the profile fits this test (registry says it applies)");
    return NULL;
  }
  if (suite_start_connected(t) < 0) return NULL;
  rc_note(t, "cache %s: expiry_ms %d, max_len %d%s", cache->name, cache->expiry_ms, cache->max_len,
          cache->reset_on_get ? ", reset_on_get" : "");
  return cache;
}

typedef struct size_goal {
  const char *cache;
  double size;  /* wanted size */
  bool at_most; /* size <= goal (else size == goal) */
} size_goal_t;

static bool size_reached(const prom_t *scrape, void *arg) {
  const size_goal_t *g = arg;
  bool found;
  double v = suite_cache_size(scrape, g->cache, &found);
  return found && (g->at_most ? v <= g->size : v == g->size);
}

/* Inserts entry n and waits (up to 1 s) until the size metric shows it. Returns the
 * monotonic ms of the insert, or -1 after recording an outcome. */
static int64_t insert_seen(rc_test_t *t, const profile_cache_t *cache, int n, double *size_after) {
  prom_t *s = suite_scrape(t);
  if (s == NULL) return -1;
  bool found;
  double before = suite_cache_size(s, cache->name, &found);
  prom_destroy(s);
  int64_t at = rc_clock_mono_ms();
  if (!suite_cache_insert(t, cache, n)) return -1;
  size_goal_t goal = {cache->name, before + 1, false};
  s = suite_scrape_until(t, 1000, 50, size_reached, &goal);
  if (s == NULL) return -1;
  double now = suite_cache_size(s, cache->name, &found);
  prom_destroy(s);
  if (!found || now != before + 1) {
    rc_error(t,
             "inserting into cache %s (a %s row) did not show in its size metric within 1 s: "
             "size %s%g (before %g); check the profile's insert trigger",
             cache->name, cache->insert_stream, found ? "" : "series missing, ", now, before);
    return -1;
  }
  *size_after = now;
  return at;
}

/* CA-01: every cache with E > 0 reaps on its own: prune_cache_<name> starts by E/2 + 2 s
 * after readiness and then once per E/2. */
static void reaper_unprompted(rc_test_t *t) {
  if (suite_start_connected(t) < 0) return;
  for (size_t i = 0; i < t->profile->cache_count; i++) {
    const profile_cache_t *c = &t->profile->caches[i];
    if (c->expiry_ms == 0) continue;
    char process[300];
    snprintf(process, sizeof process, "prune_cache_%s", c->name);
    int period = c->expiry_ms / 2;
    int64_t appear_by = t->started_ms + period + 2000;
    prom_t *s = NULL;
    bool found = false;
    double first = 0;
    for (;;) {
      if ((s = suite_scrape(t)) == NULL) return;
      first = suite_bg_starts(s, process, &found);
      if (found || rc_clock_mono_ms() >= appear_by) break;
      prom_destroy(s);
      rc_observe(t, POLL_MS);
    }
    if (!found) {
      char series[1024];
      rc_fail(t,
              "a prune_cache_<name> background process within E/2 + 2 s of start-up, with no start "
              "call",
              "no %s series %lld ms after readiness (E = %d ms); start counts: %s", process,
              (long long)(rc_clock_mono_ms() - t->started_ms), c->expiry_ms,
              suite_metric_series(s, METRIC_BG_START, NULL, series, sizeof series));
      prom_destroy(s);
      return;
    }
    prom_destroy(s);
    /* Three periods with no input: 3 ticks, give or take one for phase and the 10 %. */
    int window = 3 * period;
    int64_t from = rc_clock_mono_ms();
    rc_observe(t, window);
    if ((s = suite_scrape(t)) == NULL) return;
    double last = suite_bg_starts(s, process, &found);
    prom_destroy(s);
    double expected = (double)(rc_clock_mono_ms() - from) / period;
    double grew = last - first;
    if (grew < expected - 1.2 || grew > expected + 1.2) {
      rc_fail(t, "prune_cache_<name> starts once every E/2 without input",
              "%s grew by %g in %lld ms (E/2 = %d ms: about %.1f expected)", process, grew,
              (long long)(rc_clock_mono_ms() - from), period, expected);
      return;
    }
  }
}

/* CA-02: an entry is removed by the reaper within [E, 1.5 E + period + 2 s]. */
static void entry_expires(rc_test_t *t) {
  const profile_cache_t *cache = start_with_cache(t);
  if (cache == NULL) return;
  double size;
  int64_t at = insert_seen(t, cache, 1, &size);
  if (at < 0) return;
  int limit = cache->expiry_ms * 3 / 2 + SCRAPE_PERIOD_MS + 2000;
  size_goal_t goal = {cache->name, size - 1, true};
  prom_t *s =
      suite_scrape_until(t, (int)(at + limit - rc_clock_mono_ms()), POLL_MS, size_reached, &goal);
  if (s == NULL) return;
  bool found;
  double now = suite_cache_size(s, cache->name, &found);
  int64_t gone_after = rc_clock_mono_ms() - at;
  prom_destroy(s);
  if (now > size - 1)
    rc_fail(t,
            "the entry is removed within 1.5 E + scrape period + 2 s of its insert, with no "
            "further input",
            "cache %s size still %g %lld ms after the insert (E = %d ms)", cache->name, now,
            (long long)gone_after, cache->expiry_ms);
  else
    rc_note(t, "the entry was gone %lld ms after its insert", (long long)gone_after);
}

/* CA-03: the entry is still there just before E. */
static void entry_not_early(rc_test_t *t) {
  const profile_cache_t *cache = start_with_cache(t);
  if (cache == NULL) return;
  double size;
  int64_t at = insert_seen(t, cache, 1, &size);
  if (at < 0) return;
  /* Up to E - 1 s in the catalogue; a short E keeps a tenth of it as margin. */
  int margin = cache->expiry_ms / 10;
  margin = margin < 50 ? 50 : margin > 1000 ? 1000 : margin;
  int64_t until = at + cache->expiry_ms - margin;
  while (rc_clock_mono_ms() < until) {
    prom_t *s = suite_scrape(t);
    if (s == NULL) return;
    bool found;
    double now = suite_cache_size(s, cache->name, &found);
    prom_destroy(s);
    if (now < size) {
      rc_fail(t, "the entry stays in the cache until at least E after its insert",
              "cache %s size fell from %g to %g %lld ms after the insert (E = %d ms)", cache->name,
              size, now, (long long)(rc_clock_mono_ms() - at), cache->expiry_ms);
      return;
    }
    int64_t left = until - rc_clock_mono_ms();
    rc_observe(t, (int)(left < POLL_MS ? (left > 0 ? left : 0) : POLL_MS));
  }
}

typedef struct evicted_goal {
  const char *cache;
  double evicted;
} evicted_goal_t;

static bool evictions_reached(const prom_t *scrape, void *arg) {
  const evicted_goal_t *g = arg;
  bool found;
  return suite_cache_evicted(scrape, g->cache, "time", &found, NULL) >= g->evicted && found;
}

/* CA-04: the time-based removal is counted as an eviction (reason="time" when the SUT
 * labels reasons). */
static void expiry_counted(rc_test_t *t) {
  const profile_cache_t *cache = start_with_cache(t);
  if (cache == NULL) return;
  prom_t *s = suite_scrape(t);
  if (s == NULL) return;
  bool found, labelled;
  double before = suite_cache_evicted(s, cache->name, "time", &found, &labelled);
  prom_destroy(s);
  double size;
  int64_t at = insert_seen(t, cache, 1, &size);
  if (at < 0) return;
  int limit = cache->expiry_ms * 3 / 2 + SCRAPE_PERIOD_MS + 2000;
  evicted_goal_t goal = {cache->name, before + 1};
  s = suite_scrape_until(t, (int)(at + limit - rc_clock_mono_ms()), POLL_MS, evictions_reached,
                         &goal);
  if (s == NULL) return;
  rc_observe(t, POLL_MS); /* a second count for the same entry must show too */
  prom_destroy(s);
  if ((s = suite_scrape(t)) == NULL) return;
  double after = suite_cache_evicted(s, cache->name, "time", &found, &labelled);
  double now = suite_cache_size(s, cache->name, &found);
  char series[1024];
  suite_metric_series(s, "synapse_util_caches_cache:evicted_size", cache->name, series,
                      sizeof series);
  if (strcmp(series, "none") == 0)
    suite_metric_series(s, "synapse_util_caches_cache_evicted_size", cache->name, series,
                        sizeof series);
  prom_destroy(s);
  if (after - before != 1)
    rc_fail(t, "evicted_size (reason=\"time\" where labelled) grows by 1 for the one expired entry",
            "it went from %g to %g within %d ms of the insert (size now %g); evicted series: %s",
            before, after, limit, now, series);
}

/* CA-05: max_len N: N + 5 inserts leave N entries, 5 size evictions, oldest first. */
static void bounded_fifo(rc_test_t *t) {
  const profile_cache_t *cache = start_with_cache(t);
  if (cache == NULL) return;
  prom_t *s = suite_scrape(t);
  if (s == NULL) return;
  bool found, labelled;
  double evicted0 = suite_cache_evicted(s, cache->name, "size", &found, &labelled);
  double size0 = suite_cache_size(s, cache->name, &found);
  prom_destroy(s);
  int n = cache->max_len;
  int64_t at = rc_clock_mono_ms();
  for (int i = 1; i <= n + 5; i++)
    if (!suite_cache_insert(t, cache, i)) return;
  /* Look before any entry can have aged out (E at the earliest). */
  int window = cache->expiry_ms > 0 ? cache->expiry_ms * 8 / 10 : 1000;
  window = window > 1000 ? 1000 : window;
  size_goal_t goal = {cache->name, n, false};
  s = suite_scrape_until(t, window, 50, size_reached, &goal);
  if (s == NULL) return;
  prom_destroy(s);
  rc_observe(t, 50);
  if ((s = suite_scrape(t)) == NULL) return;
  double size = suite_cache_size(s, cache->name, &found);
  double evicted = suite_cache_evicted(s, cache->name, "size", &found, &labelled);
  prom_destroy(s);
  if (size != n || evicted - evicted0 != 5) {
    rc_fail(t, "after max_len + 5 inserts the size is max_len and 5 size evictions are counted",
            "cache %s (max_len %d, size %g before): size %g, evicted_size%s +%g, %lld ms after the "
            "first insert",
            cache->name, n, size0, size, labelled ? "{reason=\"size\"}" : "", evicted - evicted0,
            (long long)(rc_clock_mono_ms() - at));
    return;
  }
  if (cache->read_url == NULL) {
    rc_note(t, "eviction order not checked: the profile declares no read_url for cache %s",
            cache->name);
    return;
  }
  for (int i = 1; i <= n + 5; i++) {
    bool present;
    if (!suite_cache_read(t, cache, i, &present)) return;
    if (present != (i > 5)) {
      rc_fail(t, "the oldest-inserted entries are the ones evicted (FIFO by first insertion)",
              "after inserts 1..%d into cache %s (max_len %d), entry %d is %s", n + 5, cache->name,
              n, i, present ? "still cached" : "gone");
      return;
    }
  }
}

/* CA-06: a cache with E = 0 has no reaper. */
static void no_reaper_without_expiry(rc_test_t *t) {
  if (suite_start_connected(t) < 0) return;
  int longest = 0;
  for (size_t i = 0; i < t->profile->cache_count; i++)
    if (t->profile->caches[i].expiry_ms > longest) longest = t->profile->caches[i].expiry_ms;
  /* 2 x the longest E/2 (at least a second) after readiness: any reaper would have run. */
  int wait = longest > 1000 ? longest : 1000;
  int64_t left = t->started_ms + wait - rc_clock_mono_ms();
  if (left > 0) rc_observe(t, (int)left);
  prom_t *s = suite_scrape(t);
  if (s == NULL) return;
  for (size_t i = 0; i < t->profile->cache_count; i++) {
    const profile_cache_t *c = &t->profile->caches[i];
    if (c->expiry_ms != 0) continue;
    char process[300];
    snprintf(process, sizeof process, "prune_cache_%s", c->name);
    bool found;
    double starts = suite_bg_starts(s, process, &found);
    if (found) {
      rc_fail(t, "no prune_cache_<name> process for a cache with expiry_ms 0",
              "%s exists (%g starts) %d ms after readiness", process, starts, wait);
      break;
    }
  }
  prom_destroy(s);
}

/* reset_on_get: an entry read more often than every E outlives an unread one, and
 * expires once the reads stop. */
static void reset_on_get(rc_test_t *t) {
  const profile_cache_t *cache = start_with_cache(t);
  if (cache == NULL) return;
  double size1, size2;
  int64_t at = insert_seen(t, cache, 1, &size1);
  if (at < 0 || insert_seen(t, cache, 2, &size2) < 0) return;
  int e = cache->expiry_ms, step = e / 3 > 0 ? e / 3 : 1;
  int limit = e * 3 / 2 + SCRAPE_PERIOD_MS + 2000; /* CA-02's window for the unread entry */
  bool unread_gone = false;
  int64_t last_read = at;
  /* Read entry 1 every E/3 until it has outlived an unread entry's lifetime (1.5 E) and
   * entry 2 has been reaped. */
  while (!(unread_gone && rc_clock_mono_ms() > at + e * 3 / 2 + step)) {
    bool present;
    if (!suite_cache_read(t, cache, 1, &present)) return;
    if (!present) {
      rc_fail(
          t, "an entry read every E/3 stays cached (reset_on_get refreshes it)",
          "entry 1 of cache %s was gone %lld ms after its insert although it was read every %d ms",
          cache->name, (long long)(rc_clock_mono_ms() - at), step);
      return;
    }
    last_read = rc_clock_mono_ms();
    prom_t *s = suite_scrape(t);
    if (s == NULL) return;
    bool found;
    unread_gone = suite_cache_size(s, cache->name, &found) <= size2 - 1;
    prom_destroy(s);
    if (!unread_gone && rc_clock_mono_ms() > at + limit) {
      rc_fail(t, "CA-02: the unread entry is removed within 1.5 E + scrape period + 2 s",
              "cache %s still holds both entries %lld ms after the inserts", cache->name,
              (long long)(rc_clock_mono_ms() - at));
      return;
    }
    rc_observe(t, step);
  }
  /* Reads stop: entry 1 now ages like any other. */
  size_goal_t goal = {cache->name, size2 - 2, true};
  prom_t *s = suite_scrape_until(t, (int)(last_read + limit - rc_clock_mono_ms()), POLL_MS,
                                 size_reached, &goal);
  if (s == NULL) return;
  bool found;
  double now = suite_cache_size(s, cache->name, &found);
  prom_destroy(s);
  bool present = true;
  if (now > size2 - 2 || !suite_cache_read(t, cache, 1, &present) || present) {
    if (!t->decided)
      rc_fail(t, "once the reads stop, the entry is removed within 1.5 E + scrape period + 2 s",
              "cache %s size %g and entry 1 %s %lld ms after its last read", cache->name, now,
              present ? "still cached" : "gone", (long long)(rc_clock_mono_ms() - last_read));
  }
}

/* CA-07's log side: the SUT's prune lines ("[<name>] _prune_cache ...", Synapse's DEBUG
 * line) and the first one outside a prune_cache_<name>-<n> context. */
typedef struct prune_lines {
  const char *cache;
  int seen;
  char bad[512]; /* the first line in another context, "" while none */
} prune_lines_t;

static bool prune_line_elsewhere(const sutlog_record_t *r, void *arg) {
  prune_lines_t *p = arg;
  char prefix[300], want[300];
  snprintf(prefix, sizeof prefix, "[%s] _prune_cache", p->cache);
  if (!r->is_record || strncmp(r->message, prefix, strlen(prefix)) != 0) return false;
  p->seen++;
  size_t n = (size_t)snprintf(want, sizeof want, "prune_cache_%s-", p->cache);
  const char *id = r->context + (strncmp(r->context, want, n) == 0 ? n : 0);
  if (id != r->context && *id != '\0' && strspn(id, "0123456789") == strlen(id)) return false;
  snprintf(p->bad, sizeof p->bad, "%s", r->line);
  return true;
}

/* CA-07: reaping is short and runs in its own context: over several ticks every scrape
 * (all between ticks: a prune does not span a scrape) shows prune_cache_<name> with
 * nothing in flight, and prune lines, if logged, carry prune_cache_<name>-<n>. */
static void reaper_own_context(rc_test_t *t) {
  const profile_cache_t *cache = start_with_cache(t);
  if (cache == NULL) return;
  double size;
  if (insert_seen(t, cache, 1, &size) < 0) return; /* something for the prunes to look at */
  char process[300];
  snprintf(process, sizeof process, "prune_cache_%s", cache->name);
  int period = cache->expiry_ms / 2;
  int64_t from = rc_clock_mono_ms(), end = from + 4 * period + SCRAPE_PERIOD_MS;
  double first_starts = -1, starts = 0;
  int scrapes = 0;
  while (rc_clock_mono_ms() < end) {
    prom_t *s = suite_scrape(t);
    if (s == NULL) return;
    bool started, flying;
    starts = suite_bg_starts(s, process, &started);
    double in_flight = suite_bg_in_flight(s, process, &flying);
    char series[1024];
    suite_metric_series(s, METRIC_BG_IN_FLIGHT, "prune_cache_", series, sizeof series);
    prom_destroy(s);
    scrapes++;
    if (started && first_starts < 0) first_starts = starts;
    if (started && (!flying || in_flight != 0)) {
      char value[32] = "(no series)";
      if (flying) snprintf(value, sizeof value, "%g", in_flight);
      rc_fail(t, "prune_cache_<name> in flight 0 at every scrape between reaper ticks",
              "%s in flight %s at a scrape %lld ms into the window (started %g times); in "
              "flight: %s",
              process, value, (long long)(rc_clock_mono_ms() - from), starts, series);
      return;
    }
    rc_observe(t, POLL_MS);
  }
  if (first_starts < 0 || starts - first_starts < 2) {
    rc_fail(t, "prune_cache_<name> runs every E/2, so the scrapes fall between its ticks",
            "%s %s over %d scrapes in %d ms (E = %d ms)", process,
            first_starts < 0 ? "never started" : "started fewer than 2 times", scrapes,
            4 * period + SCRAPE_PERIOD_MS, cache->expiry_ms);
    return;
  }
  prune_lines_t lines = {.cache = cache->name};
  long at = 0;
  sutlog_scan(t->profile, t->log_file, &at, 64u << 20, prune_line_elsewhere, &lines);
  if (lines.bad[0] != '\0')
    rc_fail(t, "prune lines are logged under the context prune_cache_<name>-<n>", "logged: %s",
            lines.bad);
  else
    rc_note(t, "%d prune line(s) logged, all under %s-<n>", lines.seen, process);
}

#define CACHE_ROW(...)                                                    \
  RC_TEST_ROW(.dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL, \
              .roles = PROFILE_ROLE_CACHES, __VA_ARGS__)

const rc_test_def_t cache_expiry_tests[] = {
    CACHE_ROW(.id = "cache/reaper/unprompted", .requirements = "CA-01", .level = RC_LEVEL_MUST,
              .needs = RC_NEEDS_METRICS | RC_NEEDS_EXPIRING_CACHE, .tags = "slow,timing-dependent",
              .requirement = "Every cache with E > 0 starts reaping when it is created, with no "
                             "separate start step: prune_cache_<name> runs by E/2 + 2 s after "
                             "start-up and then every E/2.",
              .source =
                  "synapse PR #3932 util/caches/expiringcache.py@v0.33.6; seed-behaviours.md §A",
              .run = reaper_unprompted),
    CACHE_ROW(.id = "cache/reaper/own-context", .requirements = "CA-07", .level = RC_LEVEL_SHOULD,
              .needs = RC_NEEDS_METRICS | RC_NEEDS_EXPIRING_CACHE, .tags = "slow",
              .requirement = "Reaping is short and runs in its own context: prune_cache_<name> is "
                             "in flight 0 at scrapes between ticks, and prune lines are logged "
                             "under prune_cache_<name>-<n>.",
              .source = "synapse util/caches/expiringcache.py@v0.33.6 (run_as_background_process "
                        "prune_cache_<name>); seed-behaviours.md §A",
              .run = reaper_own_context),
    CACHE_ROW(.id = "cache/expiry/removed", .requirements = "CA-02", .level = RC_LEVEL_MUST,
              .needs = RC_NEEDS_METRICS | RC_NEEDS_EXPIRING_CACHE, .tags = "slow",
              .requirement = "An entry older than E is removed by the next reaper tick without any "
                             "further input (within 1.5 E + scrape period + 2 s of its insert).",
              .source = "synapse util/caches/expiringcache.py@v0.33.6 _prune_cache",
              .run = entry_expires),
    CACHE_ROW(.id = "cache/expiry/not-early", .requirements = "CA-03", .level = RC_LEVEL_SHOULD,
              .needs = RC_NEEDS_METRICS | RC_NEEDS_EXPIRING_CACHE, .tags = "timing-dependent",
              .requirement = "An entry stays in the cache until at least E after its insertion.",
              .source = "synapse util/caches/expiringcache.py@v0.33.6 (expiry only by the reaper)",
              .run = entry_not_early),
    CACHE_ROW(.id = "cache/expiry/counted", .requirements = "CA-04", .level = RC_LEVEL_MUST,
              .needs = RC_NEEDS_METRICS | RC_NEEDS_EXPIRING_CACHE, .tags = "slow",
              .requirement = "Time-based removals are counted as evictions (evicted_size, "
                             "reason=\"time\" where reasons are labelled).",
              .source = "synapse PR #3956 (v0.33.6); reference/synapse-1.66/worker2-metrics.txt",
              .run = expiry_counted),
    CACHE_ROW(.id = "cache/max-len/oldest-evicted", .requirements = "CA-05", .level = RC_LEVEL_MUST,
              .needs = RC_NEEDS_METRICS | RC_NEEDS_BOUNDED_CACHE,
              .requirement = "With max_len N the cache never holds more than N entries; overflow "
                             "evicts the oldest-inserted first and counts them.",
              .source = "synapse util/caches/expiringcache.py@v0.33.6 __setitem__",
              .run = bounded_fifo),
    CACHE_ROW(.id = "cache/reaper/none-without-expiry", .requirements = "CA-06",
              .level = RC_LEVEL_SHOULD, .needs = RC_NEEDS_METRICS | RC_NEEDS_UNEXPIRING_CACHE,
              .requirement = "A cache with E = 0 has no reaper (no prune_cache_<name> process).",
              .source = "synapse util/caches/expiringcache.py@v0.33.6 (no looping call for 0)",
              .run = no_reaper_without_expiry),
    CACHE_ROW(.id = "cache/expiry/reset-on-get", .requirements = "CA-02", .level = RC_LEVEL_MUST,
              .needs = RC_NEEDS_METRICS | RC_NEEDS_EXPIRING_CACHE | RC_NEEDS_READABLE_CACHE |
                       RC_NEEDS_RESET_ON_GET,
              .tags = "slow",
              .requirement =
                  "In a reset_on_get cache a read refreshes the entry: one read every E/3 "
                  "outlives an unread one, which the reaper removes, and expires once "
                  "the reads stop.",
              .source = "synapse util/caches/expiringcache.py@v0.33.6 (reset_expiry_on_get)",
              .run = reset_on_get),
};
const size_t cache_expiry_test_count = sizeof cache_expiry_tests / sizeof cache_expiry_tests[0];
