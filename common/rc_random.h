/* rc_random: seeded pseudo-random numbers for reproducible choices (torture schedules,
 * test seeds, generated presence traffic). Not for anything secret. Pure functions and
 * a caller-owned state: no globals, any thread. */
#ifndef RC_RANDOM_H
#define RC_RANDOM_H

#include <stdint.h>

/* splitmix64's output function: a well-mixed 64-bit hash of x. */
uint64_t rc_splitmix64(uint64_t x);

/* A generator state seeded from `seed` (the same seed, the same sequence). */
typedef struct rc_random {
  uint64_t state;
} rc_random_t;

void rc_random_seed(rc_random_t *r, uint64_t seed);
uint64_t rc_random_next(rc_random_t *r);
/* Uniform in 0..bound-1 (bound > 0; the tiny modulo bias does not matter here). */
uint64_t rc_random_below(rc_random_t *r, uint64_t bound);

#endif
