#include "backoff.h"

#include <math.h>

void backoff_init(backoff_t *backoff, double initial_ms, double max_ms, uint64_t seed) {
  backoff->initial_ms = initial_ms;
  backoff->max_ms = max_ms;
  backoff->delay_ms = initial_ms;
  unsigned short xsubi[3] = {(unsigned short)seed, (unsigned short)(seed >> 16),
                             (unsigned short)(seed >> 32)};
  seed48_r(xsubi, &backoff->random);
}

void backoff_reset(backoff_t *backoff) {
  backoff->delay_ms = backoff->initial_ms;
}

/* One standard normal deviate (Box-Muller). */
static double backoff_standard_normal(backoff_t *backoff) {
  double u1 = 0.0, u2 = 0.0;
  while (u1 <= 0.0) drand48_r(&backoff->random, &u1);
  drand48_r(&backoff->random, &u2);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double backoff_next_ms(backoff_t *backoff) {
  double delay = backoff->delay_ms * BACKOFF_FACTOR;
  if (delay > backoff->max_ms) delay = backoff->max_ms;
  delay += delay * BACKOFF_JITTER * backoff_standard_normal(backoff);
  /* A draw more than 8 sigma low is absurdly unlikely, but a timer cannot go backwards. */
  if (delay < 0.0) delay = 0.0;
  backoff->delay_ms = delay;
  return delay;
}
