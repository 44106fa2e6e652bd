/* runner: `replcheck run`. Loads the profile, plans the run (run_plan.h), runs the
 * tests (dispatch.h, each attempt isolated by case_run.h), prints progress
 * (progress.h), turns outcomes into verdicts, writes the reports and decides the
 * exit status.
 *
 * Verdicts: a test's own outcome is PASS, FAIL (MUST not met), NON_STRICT (SHOULD not
 * met) or ERROR (harness or set-up problem); not applicable, opted-out and interrupted
 * tests are SKIP with the reason. A test listed in the expected-failures file becomes
 * XFAIL when it ends FAIL, NON_STRICT or ERROR, and XPASS when it passes; the entry's
 * reason goes into the case message. NON_STRICT and XPASS stay as such in the report
 * and report->strict tells the writers that --strict makes them failures.
 *
 * The runner process is a child subreaper, so no SUT descendant outlives the run, and
 * it catches SIGINT/SIGTERM (interrupt.h): the running tests are stopped, the rest are
 * SKIP "not run: interrupted", the reports are written and the exit status is 130.
 *
 * A profile with role pg gets one PostgreSQL cluster for the run (pg_cluster.h), started
 * before the first test when some test will run and stopped (and removed) when the
 * tests are over, on interrupt before the running tests are stopped. */
#ifndef RUNNER_H
#define RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "progress.h"
#include "rc_error.h"
#include "report.h"

/* Exit codes of `replcheck run` (also documented in --help and the README). */
enum {
  RC_EXIT_PASSED = 0,    /* nothing failed (XFAIL ignored; NON_STRICT, XPASS unless --strict) */
  RC_EXIT_FAILED = 1,    /* some test failed or ended in error */
  RC_EXIT_USAGE = 2,     /* bad command line, profile or expected-failures file; too few tests */
  RC_EXIT_SUT_START = 3, /* the SUT could not be started at all */
  RC_EXIT_INTERRUPTED = 130, /* SIGINT or SIGTERM during the run; reports still written */
};

typedef struct runner_options {
  const char *profile_path;
  const char *const *selectors; /* see selection.h; none = every test */
  size_t selector_count;
  const char *junit_path;             /* NULL = reports/<profile-name>.junit.xml */
  const char *html_path;              /* NULL = no HTML report */
  const char *json_path;              /* NULL = no JSON report */
  const char *bin_dir;                /* {bin_dir}: where refworker etc. live */
  const char *expected_failures_path; /* NULL = none */
  bool keep_work_dirs;                /* keep per-test directories even when tests pass */
  bool strict;                        /* NON_STRICT and XPASS fail the run */
  bool list_only;                     /* print the plan, run nothing */
  unsigned min_selected;              /* fewer selected tests is a usage error */
  unsigned jobs;                      /* tests at once, >= 1 */
  unsigned shard_index;               /* K of K/N, 1-based */
  unsigned shard_count;               /* N; <= 1 = no sharding */
  unsigned repeat;                    /* runs per test, >= 1 */
  unsigned retry;                     /* extra attempts for failing `retriable` tests */
  uint64_t seed;
  bool seed_given;       /* false: taken from the clock, printed */
  double timeout_factor; /* > 0; scales startup timeout, shutdown grace, Check timeout */
  int torture_level;     /* 0..3: the mock's torture (docs/FIXTURES.md), seeded per test */
  const char *record_dir; /* NULL, or write every test's exchange there as a fixture */
  progress_mode_t progress_mode;
  FILE *progress; /* progress lines and the closing summary (NULL = stdout) */
} runner_options_t;

/* Runs the selection. Returns one of the RC_EXIT_* codes; usage/profile problems are
 * printed to stderr with what is wrong. */
int runner_run(const runner_options_t *options);

/* Counts for the closing line "N passed, N failed, N skipped": passed = PASS +
 * NON_STRICT + XFAIL + XPASS, failed = FAIL + ERROR; under strict NON_STRICT and XPASS
 * move from passed to failed. SKIP is skipped. */
void runner_count(const report_t *report, bool strict, size_t *passed, size_t *failed,
                  size_t *skipped);

/* Turns a finished case of a test listed in the expected-failures file into XFAIL
 * (FAIL, NON_STRICT, ERROR) or XPASS (PASS), putting "where: reason" into its
 * message; other verdicts are left alone. */
void runner_apply_expected(report_case_t *c, const char *where, const char *reason);

#endif
