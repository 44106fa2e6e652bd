/* backoff: the reconnect delay of Twisted's ReconnectingClientFactory (spec §3.4).
 *
 * After each failed or lost connection: delay = min(delay * e, max), then
 * delay = normal(mean = delay, sigma = delay * 0.119626565582); the jittered value is
 * what the next failure multiplies. A successful connect resets delay to the initial
 * value, so the first retry after a reset waits about initial * e.
 *
 * Plain value type, no I/O; the random source is the caller's (seeded) state. */
#ifndef BACKOFF_H
#define BACKOFF_H

#include <stdint.h>
#include <stdlib.h>

#define BACKOFF_FACTOR 2.7182818284590451
#define BACKOFF_JITTER 0.119626565582

typedef struct backoff {
  double initial_ms;
  double max_ms;
  double delay_ms;            /* the value the next failure starts from */
  struct drand48_data random; /* jitter source */
} backoff_t;

/* initial_ms > 0, max_ms >= initial_ms; seed picks the jitter sequence. */
void backoff_init(backoff_t *backoff, double initial_ms, double max_ms, uint64_t seed);
/* A connection succeeded. */
void backoff_reset(backoff_t *backoff);
/* A connection failed or was lost: returns how long to wait before the next attempt, in
 * milliseconds (never negative). */
double backoff_next_ms(backoff_t *backoff);

#endif
