#include "pg_passive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_observer.h"

struct pg_passive {
  pg_observer_t *observer;
  struct event *timer;
  long max_idle_ms;
  unsigned failed_samples;
  char *violation;
};

static void sample(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  pg_passive_t *p = arg;
  if (p->violation != NULL) return;
  pg_session_t *list;
  size_t n;
  rc_error_t err;
  if (pg_observer_sessions(p->observer, &list, &n, &err) != 0) {
    p->failed_samples++;
    return;
  }
  for (size_t i = 0; i < n && p->violation == NULL; i++) {
    if (strcmp(list[i].state, "idle in transaction") != 0 || list[i].state_age_ms <= p->max_idle_ms)
      continue;
    char text[512];
    pg_session_describe(&list[i], text, sizeof text);
    if (asprintf(&p->violation,
                 "DB-03: a SUT session was idle in a transaction for more than "
                 "%ld ms: %s",
                 p->max_idle_ms, text) < 0)
      p->violation = NULL;
  }
  free(list);
}

pg_passive_t *pg_passive_start(struct event_base *base, const char *dsn, int period_ms,
                               long max_idle_ms, rc_error_t *err) {
  pg_passive_t *p = calloc(1, sizeof *p);
  if (p == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  p->max_idle_ms = max_idle_ms;
  p->observer = pg_observer_connect(dsn, err);
  p->timer = event_new(base, -1, EV_PERSIST, sample, p);
  struct timeval period = {period_ms / 1000, (period_ms % 1000) * 1000};
  if (p->observer == NULL || p->timer == NULL || event_add(p->timer, &period) != 0) {
    if (p->observer != NULL) rc_error_set(err, "cannot arm the DB-03 sampler");
    pg_passive_stop(p);
    return NULL;
  }
  return p;
}

const char *pg_passive_violation(const pg_passive_t *p) {
  return p->violation;
}

void pg_passive_stop(pg_passive_t *p) {
  if (p == NULL) return;
  if (p->timer != NULL) event_free(p->timer);
  pg_observer_destroy(p->observer);
  free(p->violation);
  free(p);
}
