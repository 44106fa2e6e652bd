#include "worker_caches.h"

#include <stdlib.h>
#include <string.h>

#include "stream_rows.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.handlers.device"

struct worker_caches {
  expiring_cache_t **caches;
  size_t count;
};

worker_caches_t *worker_caches_create(struct event_base *base, const expiring_cache_spec_t *specs,
                                      size_t count, metrics_t *metrics,
                                      bgprocess_table_t *processes, bool needs_start,
                                      rc_error_t *err) {
  worker_caches_t *caches = calloc(1, sizeof *caches);
  if (caches == NULL ||
      (count > 0 && (caches->caches = calloc(count, sizeof *caches->caches)) == NULL)) {
    free(caches);
    rc_error_set(err, "caches: out of memory");
    return NULL;
  }
  for (size_t i = 0; i < count; i++) {
    if (worker_caches_find(caches, specs[i].name) != NULL) {
      rc_error_set(err, "--cache: cache %s is given twice", specs[i].name);
      worker_caches_destroy(caches);
      return NULL;
    }
    caches->caches[i] =
        expiring_cache_create(base, &specs[i], metrics, processes, needs_start, err);
    if (caches->caches[i] == NULL) {
      worker_caches_destroy(caches);
      return NULL;
    }
    caches->count++;
  }
  return caches;
}

void worker_caches_destroy(worker_caches_t *caches) {
  if (caches == NULL) return;
  for (size_t i = 0; i < caches->count; i++) expiring_cache_destroy(caches->caches[i]);
  free(caches->caches);
  free(caches);
}

expiring_cache_t *worker_caches_find(const worker_caches_t *caches, const char *name) {
  for (size_t i = 0; i < caches->count; i++)
    if (strcmp(expiring_cache_name(caches->caches[i]), name) == 0) return caches->caches[i];
  return NULL;
}

void worker_caches_on_unit(void *arg, const stream_unit_t *unit) {
  worker_caches_t *caches = arg;
  if (caches->count == 0 || strcmp(unit->stream, WORKER_CACHES_STREAM) != 0) return;
  for (size_t r = 0; r < unit->row_count; r++) {
    char user[1024];
    if (stream_rows_device_user(unit->rows[r], strlen(unit->rows[r]), user, sizeof user) != 0) {
      WLOG_DEBUG("Ignoring device_lists row without a user id: %s", unit->rows[r]);
      continue;
    }
    for (size_t i = 0; i < caches->count; i++) {
      rc_error_t err;
      if (expiring_cache_set(caches->caches[i], user, unit->rows[r], &err) != 0)
        WLOG_ERROR("%s", err.msg);
    }
  }
}

const char *worker_caches_get(void *arg, const char *cache, const char *key, bool *known) {
  expiring_cache_t *found = worker_caches_find(arg, cache);
  *known = found != NULL;
  return found != NULL ? expiring_cache_get(found, key) : NULL;
}
