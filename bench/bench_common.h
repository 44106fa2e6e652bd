/* Shared bits of the benchmark programs (bench/bench_*.c): time, a realistic replication
 * line mix shaped like shared/reference/synapse-1.66/real-pair.txt, and result lines.
 * Header-only (static functions); benchmarks are programs, not library code. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A row JSON of the shape the named stream carries (i varies ids and tokens). Writes into
 * buf and returns its length. */
static inline int bench_row(char *buf, size_t cap, const char *stream, uint64_t i) {
  if (strcmp(stream, "events") == 0)
    return snprintf(buf, cap,
                    "[\"ev\",[\"$KVBQIqvvQ9MqTWgd2Napbqzx3e9ztErf7D5R%07llu\","
                    "\"!bXzOUdvAFAfcekmnYl:test.local\",\"m.room.member\",\"@alice%llu:test.local\","
                    "null,null,\"join\",false,false]]",
                    (unsigned long long)(i % 10000000), (unsigned long long)(i % 1000));
  if (strcmp(stream, "caches") == 0)
    return snprintf(buf, cap,
                    "[\"cs_cache_fake\",[\"!bXzOUdvAFAfcekmnYl:test.local\",\"@alice%llu:test.local\"],"
                    "1795911878%03llu]",
                    (unsigned long long)(i % 1000), (unsigned long long)(i % 1000));
  return snprintf(buf, cap, "[\"!bXzOUdvAFAfcekmnYl:test.local\",[\"@alice%llu:test.local\"]]",
                  (unsigned long long)(i % 1000));
}

/* One line of a modern main's output, cycling through the mix: events RDATA in batches
 * (batch + numbered), caches and typing RDATA, the occasional POSITION and PING. */
static inline int bench_main_line(char *buf, size_t cap, uint64_t i) {
  char row[512];
  switch (i % 8) {
    case 0:
    case 1:
      bench_row(row, sizeof row, "events", i);
      return snprintf(buf, cap, "RDATA events master %s %s", i % 8 == 0 ? "batch" : "12345", row);
    case 2:
    case 3:
    case 4:
      bench_row(row, sizeof row, "caches", i);
      return snprintf(buf, cap, "RDATA caches master %llu %s", (unsigned long long)(1000 + i), row);
    case 5:
      bench_row(row, sizeof row, "typing", i);
      return snprintf(buf, cap, "RDATA typing master %llu %s", (unsigned long long)(1000 + i), row);
    case 6:
      return snprintf(buf, cap, "POSITION device_lists master %llu %llu", (unsigned long long)i,
                      (unsigned long long)(i + 1));
    default:
      return snprintf(buf, cap, "PING %llu", (unsigned long long)(1795911877513ULL + i));
  }
}

static inline void bench_result(const char *name, double value, const char *unit,
                                const char *baseline_name, double baseline, double target) {
  double ratio = baseline > 0 ? value / baseline : 0;
  printf("%-28s %14.0f %s\n%-28s %14.0f %s\n", name, value, unit, baseline_name, baseline, unit);
  if (target > 0)
    printf("ratio %.3f (target >= %.3f): %s\n", ratio, target, ratio >= target ? "MET" : "NOT MET");
  else
    printf("ratio %.3f (no target)\n", ratio);
}

#endif
