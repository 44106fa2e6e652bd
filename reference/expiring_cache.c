#include "expiring_cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.util.caches.expiringcache"

typedef struct cache_entry {
  char *key;
  char *value;
  int64_t stamp_ms;                  /* monotonic time of the insert or refreshing read */
  struct cache_entry *older, *newer; /* first-insertion order */
  struct cache_entry *chain;         /* hash bucket */
} cache_entry_t;

struct expiring_cache {
  expiring_cache_spec_t spec;
  struct event_base *base;
  bgprocess_table_t *processes;
  char process_name[EXPIRING_CACHE_NAME_MAX + 16]; /* prune_cache_<name> */
  struct event *reaper;                            /* NULL until armed */

  cache_entry_t **buckets;
  size_t bucket_count;
  size_t count;
  cache_entry_t *oldest, *newest;

  metrics_series_t *size;
  metrics_series_t *hits;
  metrics_series_t *total;
  metrics_series_t *evicted_time; /* 2018: both point at the one evicted_size series */
  metrics_series_t *evicted_size;
};

/* ---- the --cache option ------------------------------------------------------------- */

static int parse_count(const char *text, size_t len, int64_t max, int64_t *out) {
  if (len == 0 || len > 18) return -1;
  int64_t value = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  if (value > max) return -1;
  *out = value;
  return 0;
}

int expiring_cache_parse_spec(const char *text, expiring_cache_spec_t *spec, rc_error_t *err) {
  memset(spec, 0, sizeof *spec);
  const char *fields[5];
  size_t lengths[5];
  size_t count = 0;
  const char *start = text;
  for (const char *p = text;; p++) {
    if (*p == ':' || *p == '\0') {
      if (count == 5) break;
      fields[count] = start;
      lengths[count] = (size_t)(p - start);
      count++;
      if (*p == '\0') break;
      start = p + 1;
    }
  }
  if (count < 3 || count > 4)
    return rc_error_set(err, "--cache '%s': expected NAME:EXPIRY_MS:MAX_LEN[:reset-on-get]", text);
  if (lengths[0] == 0 || lengths[0] > EXPIRING_CACHE_NAME_MAX)
    return rc_error_set(err, "--cache '%s': the name must have 1 to %d characters", text,
                        EXPIRING_CACHE_NAME_MAX);
  for (size_t i = 0; i < lengths[0]; i++) {
    char c = fields[0][i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return rc_error_set(err,
                          "--cache '%s': the name may only hold letters, digits, '_', '.' "
                          "and '-'",
                          text);
  }
  memcpy(spec->name, fields[0], lengths[0]);
  spec->name[lengths[0]] = '\0';
  if (parse_count(fields[1], lengths[1], EXPIRING_CACHE_EXPIRY_MAX_MS, &spec->expiry_ms) != 0)
    return rc_error_set(err, "--cache '%s': EXPIRY_MS must be a whole number in 0..%d", text,
                        EXPIRING_CACHE_EXPIRY_MAX_MS);
  if (parse_count(fields[2], lengths[2], INT32_MAX, &spec->max_len) != 0)
    return rc_error_set(err, "--cache '%s': MAX_LEN must be a whole number in 0..%d", text,
                        INT32_MAX);
  if (count == 4) {
    if (lengths[3] != strlen("reset-on-get") || memcmp(fields[3], "reset-on-get", lengths[3]) != 0)
      return rc_error_set(err, "--cache '%s': the only flag is 'reset-on-get', got '%.*s'", text,
                          (int)lengths[3], fields[3]);
    spec->reset_on_get = true;
  }
  return 0;
}

/* ---- the map ------------------------------------------------------------------------ */

static size_t hash_key(const char *key) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
    h ^= *p;
    h *= 1099511628211u;
  }
  return (size_t)h;
}

static cache_entry_t *entry_find(const expiring_cache_t *cache, const char *key) {
  for (cache_entry_t *e = cache->buckets[hash_key(key) % cache->bucket_count]; e != NULL;
       e = e->chain)
    if (strcmp(e->key, key) == 0) return e;
  return NULL;
}

/* Doubles the buckets when the load passes 1; a failed resize only costs speed. */
static void buckets_grow(expiring_cache_t *cache) {
  if (cache->count < cache->bucket_count) return;
  size_t count = cache->bucket_count * 2;
  cache_entry_t **buckets = calloc(count, sizeof *buckets);
  if (buckets == NULL) return;
  for (cache_entry_t *e = cache->oldest; e != NULL; e = e->newer) {
    size_t b = hash_key(e->key) % count;
    e->chain = buckets[b];
    buckets[b] = e;
  }
  free(cache->buckets);
  cache->buckets = buckets;
  cache->bucket_count = count;
}

static void entry_free(cache_entry_t *entry) {
  free(entry->key);
  free(entry->value);
  free(entry);
}

static void entry_remove(expiring_cache_t *cache, cache_entry_t *entry) {
  for (cache_entry_t **p = &cache->buckets[hash_key(entry->key) % cache->bucket_count]; *p != NULL;
       p = &(*p)->chain) {
    if (*p == entry) {
      *p = entry->chain;
      break;
    }
  }
  if (entry->older != NULL)
    entry->older->newer = entry->newer;
  else
    cache->oldest = entry->newer;
  if (entry->newer != NULL)
    entry->newer->older = entry->older;
  else
    cache->newest = entry->older;
  cache->count--;
  entry_free(entry);
}

static void update_size(expiring_cache_t *cache) {
  metrics_series_set(cache->size, (double)cache->count);
}

/* ---- metrics ------------------------------------------------------------------------ */

static metrics_series_t *gauge(metrics_t *metrics, const char *family_name, const char *help,
                               const char *cache_name, const char *reason, rc_error_t *err) {
  static const char *const one_label[] = {"name"};
  static const char *const two_labels[] = {"name", "reason"};
  size_t labels = reason != NULL ? 2 : 1;
  metrics_family_t *family = metrics_family_declare(
      metrics, family_name, METRICS_GAUGE, help, labels == 2 ? two_labels : one_label, labels, err);
  if (family == NULL) return NULL;
  const char *values[] = {cache_name, reason};
  return metrics_series_get(family, values, labels, err);
}

static int register_metrics(expiring_cache_t *cache, metrics_t *metrics, rc_error_t *err) {
  const char *name = cache->spec.name;
  if (metrics_style(metrics) == METRICS_STYLE_2018) {
    cache->size =
        gauge(metrics, "synapse_util_caches_cache:size", "Entries in the cache", name, NULL, err);
    if (cache->size != NULL)
      cache->hits = gauge(metrics, "synapse_util_caches_cache:hits", "Reads that found their key",
                          name, NULL, err);
    if (cache->hits != NULL)
      cache->evicted_time = cache->evicted_size =
          gauge(metrics, "synapse_util_caches_cache:evicted_size",
                "Entries evicted, by age or by the size bound", name, NULL, err);
    if (cache->evicted_size != NULL)
      cache->total = gauge(metrics, "synapse_util_caches_cache:total", "Reads (hits and misses)",
                           name, NULL, err);
  } else {
    cache->size =
        gauge(metrics, "synapse_util_caches_cache_size", "Entries in the cache", name, NULL, err);
    if (cache->size != NULL)
      cache->hits = gauge(metrics, "synapse_util_caches_cache_hits", "Reads that found their key",
                          name, NULL, err);
    if (cache->hits != NULL)
      cache->evicted_size = gauge(metrics, "synapse_util_caches_cache_evicted_size",
                                  "Entries evicted, by reason", name, "size", err);
    if (cache->evicted_size != NULL)
      cache->evicted_time = gauge(metrics, "synapse_util_caches_cache_evicted_size",
                                  "Entries evicted, by reason", name, "time", err);
    if (cache->evicted_time != NULL)
      cache->total =
          gauge(metrics, "synapse_util_caches_cache", "Reads (hits and misses)", name, NULL, err);
  }
  return cache->total != NULL ? 0 : rc_error_prefix(err, "cache %s", name);
}

/* ---- the reaper --------------------------------------------------------------------- */

static void prune_entries(expiring_cache_t *cache) {
  int64_t now = rc_clock_mono_ms();
  size_t before = cache->count;
  /* Every entry is looked at: a refreshed entry can be older in insertion order and
   * younger in age. Strictly older than expiry_ms, as Synapse compares. */
  for (cache_entry_t *e = cache->oldest, *next; e != NULL; e = next) {
    next = e->newer;
    if (now - e->stamp_ms > cache->spec.expiry_ms) entry_remove(cache, e);
  }
  metrics_series_add(cache->evicted_time, (double)(before - cache->count));
  update_size(cache);
  WLOG_DEBUG("[%s] _prune_cache before: %zu, after len: %zu", cache->spec.name, before,
             cache->count);
}

void expiring_cache_prune(expiring_cache_t *cache) {
  bgprocess_t *run = bgprocess_start(cache->processes, BGPROCESS_REAPER, cache->process_name);
  bgprocess_enter(run);
  prune_entries(cache);
  bgprocess_finish(run);
  wlog_context_reset();
}

static void reaper_tick(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  expiring_cache_prune(arg);
}

int expiring_cache_start(expiring_cache_t *cache, rc_error_t *err) {
  if (cache->reaper != NULL || cache->spec.expiry_ms == 0) return 0;
  cache->reaper = event_new(cache->base, -1, EV_PERSIST, reaper_tick, cache);
  /* Synapse's looping_call(expiry_ms / 2): the first tick one interval from now. */
  int64_t interval_us = cache->spec.expiry_ms * 500;
  struct timeval tv = {.tv_sec = (time_t)(interval_us / 1000000),
                       .tv_usec = (suseconds_t)(interval_us % 1000000)};
  if (cache->reaper == NULL || event_add(cache->reaper, &tv) != 0) {
    if (cache->reaper != NULL) event_free(cache->reaper);
    cache->reaper = NULL;
    return rc_error_set(err, "cache %s: cannot arm the reaper timer", cache->spec.name);
  }
  return 0;
}

bool expiring_cache_reaper_armed(const expiring_cache_t *cache) {
  return cache->reaper != NULL;
}

/* ---- lifecycle and access ---------------------------------------------------------- */

expiring_cache_t *expiring_cache_create(struct event_base *base, const expiring_cache_spec_t *spec,
                                        metrics_t *metrics, bgprocess_table_t *processes,
                                        bool needs_start, rc_error_t *err) {
  if (spec->name[0] == '\0' || spec->expiry_ms < 0 || spec->max_len < 0) {
    rc_error_set(err, "cache '%s': invalid name, expiry or size bound", spec->name);
    return NULL;
  }
  expiring_cache_t *cache = calloc(1, sizeof *cache);
  if (cache == NULL || (cache->buckets = calloc(16, sizeof *cache->buckets)) == NULL) {
    free(cache);
    rc_error_set(err, "cache %s: out of memory", spec->name);
    return NULL;
  }
  cache->bucket_count = 16;
  cache->spec = *spec;
  cache->base = base;
  cache->processes = processes;
  snprintf(cache->process_name, sizeof cache->process_name, "prune_cache_%s", spec->name);
  if (register_metrics(cache, metrics, err) != 0 ||
      (!needs_start && expiring_cache_start(cache, err) != 0)) {
    expiring_cache_destroy(cache);
    return NULL;
  }
  return cache;
}

void expiring_cache_destroy(expiring_cache_t *cache) {
  if (cache == NULL) return;
  if (cache->reaper != NULL) event_free(cache->reaper);
  for (cache_entry_t *e = cache->oldest, *next; e != NULL; e = next) {
    next = e->newer;
    entry_free(e);
  }
  free(cache->buckets);
  free(cache);
}

const char *expiring_cache_name(const expiring_cache_t *cache) {
  return cache->spec.name;
}

size_t expiring_cache_size(const expiring_cache_t *cache) {
  return cache->count;
}

int expiring_cache_set(expiring_cache_t *cache, const char *key, const char *value,
                       rc_error_t *err) {
  char *copy = strdup(value);
  if (copy == NULL) return rc_error_set(err, "cache %s: out of memory", cache->spec.name);
  cache_entry_t *entry = entry_find(cache, key);
  if (entry != NULL) {
    /* An OrderedDict assignment: new value and time, same place in the order. */
    free(entry->value);
    entry->value = copy;
    entry->stamp_ms = rc_clock_mono_ms();
  } else {
    entry = calloc(1, sizeof *entry);
    if (entry == NULL || (entry->key = strdup(key)) == NULL) {
      free(entry);
      free(copy);
      return rc_error_set(err, "cache %s: out of memory", cache->spec.name);
    }
    entry->value = copy;
    entry->stamp_ms = rc_clock_mono_ms();
    size_t b = hash_key(key) % cache->bucket_count;
    entry->chain = cache->buckets[b];
    cache->buckets[b] = entry;
    entry->older = cache->newest;
    if (cache->newest != NULL)
      cache->newest->newer = entry;
    else
      cache->oldest = entry;
    cache->newest = entry;
    cache->count++;
    buckets_grow(cache);
  }
  size_t evicted = 0;
  while (cache->spec.max_len > 0 && cache->count > (size_t)cache->spec.max_len) {
    entry_remove(cache, cache->oldest);
    evicted++;
  }
  metrics_series_add(cache->evicted_size, (double)evicted);
  update_size(cache);
  return 0;
}

const char *expiring_cache_get(expiring_cache_t *cache, const char *key) {
  metrics_series_add(cache->total, 1);
  cache_entry_t *entry = entry_find(cache, key);
  if (entry == NULL) return NULL;
  metrics_series_add(cache->hits, 1);
  if (cache->spec.reset_on_get) entry->stamp_ms = rc_clock_mono_ms();
  return entry->value;
}
