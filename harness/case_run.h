/* case_run: one attempt of one test, isolated by Check.
 *
 * case_run_execute() builds a one-test Check suite for the registry row and runs it
 * with CK_FORK (CK_FORK=no in the environment runs it in-process, for valgrind): the
 * forked test process creates the rc_test_t in a fresh work directory, runs the body,
 * stops the SUT and writes its outcome (outcome.h), which this process reads back. A
 * test process that crashes, fails a Check assertion or exceeds Check's timeout
 * becomes an ERROR, and the SUT process group it left behind (recorded in
 * <work_dir>/sut.pgid) is killed.
 *
 * Uses one static slot for the test being started (Check calls test functions
 * without arguments), so calls must not overlap: one attempt per process at a time. */
#ifndef CASE_RUN_H
#define CASE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "registry.h"
#include "report.h"

typedef struct case_run_spec {
  const rc_test_def_t *def;
  const profile_t *profile;
  const char *bin_dir;
  const char *work_dir;      /* created here; must not exist yet */
  int index;                 /* 1-based position in the run, for per-test names */
  uint64_t seed;             /* goes to rc_test_t.seed */
  int check_timeout_seconds; /* Check's last-resort timeout for the test process */
  uint64_t run_seed;         /* the run's --seed (goes to rc_test_t.run_seed) */
  int torture_level;         /* --torture (goes to rc_test_t.torture_level) */
  const char *record_dir;    /* --record DIR, or NULL */
  const struct pg_cluster *pg; /* the run's database cluster (profiles with role pg) */
  const char *pg_error;        /* why there is none, when role pg needed one */
} case_run_spec_t;

/* Runs the attempt and fills c->verdict, seconds, message, expected, actual, evidence
 * and output; *start_failed tells whether the SUT could not be started. */
void case_run_execute(const case_run_spec_t *spec, report_case_t *c, bool *start_failed);

/* Kills (SIGKILL) the SUT process group recorded in work_dir, if any. Safe to call
 * from another process than the one that ran the test, and more than once. */
void case_run_kill_sut(const char *work_dir);

/* Check's timeout for a test under this profile, in seconds, times factor: only the
 * last guard against a hung test process, well above every deadline inside a test. */
int case_run_check_timeout(const profile_t *profile, double factor);

/* "<run_dir>/<NNN>-<id with '/' as '_'>[-r<R>][-a<A>]": the work directory of an
 * attempt (repetition R >= 2, attempt A >= 2 add suffixes). */
void case_run_work_dir(const char *run_dir, size_t index, const char *id, unsigned repetition,
                       int attempt, char *buf, size_t cap);

/* A test's seed: the run's seed mixed with its id and repetition (splitmix64), so a
 * test sees the same value for the same --seed whatever else is selected. */
uint64_t case_run_seed(uint64_t run_seed, const char *id, unsigned repetition);

#endif
