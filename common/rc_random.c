#include "rc_random.h"

uint64_t rc_splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void rc_random_seed(rc_random_t *r, uint64_t seed) {
  r->state = rc_splitmix64(seed);
}

uint64_t rc_random_next(rc_random_t *r) {
  r->state += 0x9e3779b97f4a7c15ULL;
  return rc_splitmix64(r->state);
}

uint64_t rc_random_below(rc_random_t *r, uint64_t bound) {
  return bound == 0 ? 0 : rc_random_next(r) % bound;
}
