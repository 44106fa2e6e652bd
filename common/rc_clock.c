#include "rc_clock.h"

#include <time.h>

static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t rc_clock_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t rc_clock_mono_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000LL; }
int64_t rc_clock_wall_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000LL; }
