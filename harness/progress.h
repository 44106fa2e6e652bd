/* progress: what `replcheck run` prints while tests finish.
 *
 * One line per finished test, "[12/48] PASS protocol/keepalive/ping-timeout (1.2s)",
 * followed for anything but a pass by its details (requirement, expected, actual,
 * evidence; the reason of a skip, XFAIL or XPASS). In auto mode, when the stream is a
 * terminal, the line ends with an estimate of the time left (mean time of the tests
 * run so far, times the tests left, divided by the jobs); plain never adds it; none
 * prints no per-test lines at all. Numbers never depend on the locale.
 *
 * progress_t is caller-owned (plain struct, nothing to free); one thread. */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "report.h"

typedef enum progress_mode {
  PROGRESS_AUTO = 0, /* lines; ETA when the stream is a terminal */
  PROGRESS_PLAIN,    /* lines, never an ETA */
  PROGRESS_NONE,     /* no per-test lines */
} progress_mode_t;

/* "auto" / "plain" / "none". Returns 0 or -1. */
int progress_mode_from_name(const char *name, progress_mode_t *out);

typedef struct progress {
  FILE *out;
  bool lines;
  bool eta;
  size_t total;
  size_t done;
  unsigned jobs;
  double run_seconds; /* sum over tests that ran (skips excluded) */
  size_t runs;
} progress_t;

/* Sets p up for total tests over jobs parallel jobs. */
void progress_init(progress_t *p, FILE *out, progress_mode_t mode, size_t total, unsigned jobs);

/* Reports one finished test; retries > 0 adds "RETRIED k times" to its line. */
void progress_case(progress_t *p, const report_case_t *c, int retries);

/* Seconds with one decimal: "1.2s". */
void progress_format_seconds(double seconds, char *buf, size_t cap);
/* Time left for `remaining` tests at mean_seconds each over jobs jobs, rounded up to
 * whole seconds: "ETA 7s", "ETA 2m05s", "ETA 1h02m". */
void progress_format_eta(double mean_seconds, size_t remaining, unsigned jobs, char *buf,
                         size_t cap);

#endif
