/* expiring_cache: Synapse's ExpiringCache as of v0.33.6 (spec seed-behaviours §A, §1.6;
 * requirements CA-01..CA-07).
 *
 * A map from string keys to JSON texts, in first-insertion order, with:
 *   - a reaper armed when the cache is created (PR #3932): every expiry_ms/2 (first tick
 *     one interval after creation, like Synapse's looping_call) it runs as background
 *     process "prune_cache_<name>" and removes every entry inserted (or, with
 *     reset_on_get, last read) more than expiry_ms ago. expiry_ms 0: no reaper at all.
 *     Reads never check age: an entry stays readable until the tick that removes it.
 *   - a size bound: with max_len > 0, each insert evicts the oldest-inserted entries
 *     beyond max_len (FIFO by first insertion; re-setting a key keeps its place).
 *   - metrics labelled name=<name>, per exposition style (metrics.h):
 *       2018:   synapse_util_caches_cache:size, :hits, :evicted_size (every eviction),
 *               :total (hits + misses), all gauges;
 *       modern: synapse_util_caches_cache_size, _hits, synapse_util_caches_cache (the
 *               total), and synapse_util_caches_cache_evicted_size{name,reason} with
 *               reason "time" or "size", all gauges.
 * With needs_start (bug A, BUG_CACHE_NEEDS_START) creation does not arm the reaper; only
 * expiring_cache_start does, as in Synapse <= v0.33.5, and refworker never calls it.
 *
 * Ownership: the cache copies keys and values. `metrics` and `processes` are borrowed
 * and must outlive the cache. Single-threaded: the thread running `base`. */
#ifndef EXPIRING_CACHE_H
#define EXPIRING_CACHE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bgprocess.h"
#include "metrics.h"
#include "rc_error.h"

#define EXPIRING_CACHE_NAME_MAX 100
/* A day: far beyond any test's expiry, and keeps timer arithmetic small. */
#define EXPIRING_CACHE_EXPIRY_MAX_MS 86400000

typedef struct expiring_cache expiring_cache_t;

typedef struct expiring_cache_spec {
  char name[EXPIRING_CACHE_NAME_MAX + 1];
  int64_t expiry_ms; /* 0: entries never expire by time, no reaper */
  int64_t max_len;   /* 0: unbounded */
  bool reset_on_get; /* a successful read refreshes the entry's timestamp */
} expiring_cache_spec_t;

/* Parses NAME:EXPIRY_MS:MAX_LEN[:reset-on-get] (the --cache option). NAME is
 * [A-Za-z0-9_.-]+. Returns 0, or -1 with err saying what is wrong. */
int expiring_cache_parse_spec(const char *text, expiring_cache_spec_t *spec, rc_error_t *err);

/* Creates the cache, registers its metrics and, unless needs_start, arms the reaper.
 * Returns NULL with err filled. */
expiring_cache_t *expiring_cache_create(struct event_base *base, const expiring_cache_spec_t *spec,
                                        metrics_t *metrics, bgprocess_table_t *processes,
                                        bool needs_start, rc_error_t *err);
/* Stops the reaper and frees every entry. NULL is fine. */
void expiring_cache_destroy(expiring_cache_t *cache);

/* Arms the reaper if it is not armed yet (a no-op for expiry_ms 0). Returns 0, or -1
 * with err filled. */
int expiring_cache_start(expiring_cache_t *cache, rc_error_t *err);
bool expiring_cache_reaper_armed(const expiring_cache_t *cache);

const char *expiring_cache_name(const expiring_cache_t *cache);
size_t expiring_cache_size(const expiring_cache_t *cache);

/* Inserts or replaces key -> value (a JSON text), stamped now, then applies max_len.
 * Returns 0, or -1 with err filled (out of memory; the cache is unchanged). */
int expiring_cache_set(expiring_cache_t *cache, const char *key, const char *value,
                       rc_error_t *err);
/* The value for key, or NULL. Counts a hit or a miss; a hit refreshes the entry's
 * timestamp when reset_on_get. The pointer is valid until the entry changes or goes. */
const char *expiring_cache_get(expiring_cache_t *cache, const char *key);

/* One reaper tick, as the timer runs it (background process and all). For tests. */
void expiring_cache_prune(expiring_cache_t *cache);

#endif
