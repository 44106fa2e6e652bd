/* worker_caches: refworker's expiring caches (--cache), fed by replication.
 *
 * Creates one expiring_cache per spec and inserts into every one of them each row of
 * every applied `device_lists` unit (key: the row's user id, its first field; value: the
 * row), the way a worker's device-list handling fills Synapse's device caches. It also
 * answers the HTTP read endpoint (http_server.h's lookup), which counts as a read (a hit
 * refreshes a reset-on-get entry).
 *
 * Ownership: owns the caches; `metrics` and `processes` are borrowed and must outlive it.
 * Single-threaded: the thread running `base`. */
#ifndef WORKER_CACHES_H
#define WORKER_CACHES_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "bgprocess.h"
#include "expiring_cache.h"
#include "metrics.h"
#include "rc_error.h"
#include "stream_state.h"

/* The stream whose rows fill the caches. */
#define WORKER_CACHES_STREAM "device_lists"

typedef struct worker_caches worker_caches_t;

/* needs_start: bug A (BUG_CACHE_NEEDS_START), see expiring_cache.h. Returns NULL with err
 * filled (e.g. two specs with one name). */
worker_caches_t *worker_caches_create(struct event_base *base, const expiring_cache_spec_t *specs,
                                      size_t count, metrics_t *metrics,
                                      bgprocess_table_t *processes, bool needs_start,
                                      rc_error_t *err);
void worker_caches_destroy(worker_caches_t *caches);

/* A stream_unit_fn (stream_state.h): inserts device_lists rows; other streams are
 * ignored, and so are rows without a user id (stream_rows.h rejects those earlier). */
void worker_caches_on_unit(void *caches, const stream_unit_t *unit);

/* An http_server_cache_get_fn (http_server.h). */
const char *worker_caches_get(void *caches, const char *cache, const char *key, bool *known);

/* The cache called name, or NULL. */
expiring_cache_t *worker_caches_find(const worker_caches_t *caches, const char *name);

#endif
