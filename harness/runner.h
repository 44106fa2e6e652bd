/* runner: selects tests for a profile, runs each in its own process under Check,
 * prints progress, builds the report and writes it.
 *
 * Each test runs in a Check CK_FORK child (CK_FORK=no in the environment runs them
 * in-process, for valgrind), with a fresh work directory, event loop, mock homeserver
 * and SUT. The child writes its outcome (outcome.h); a child that crashes or exceeds
 * Check's timeout becomes an ERROR, and the runner kills the SUT process group it
 * left behind. The runner process is a child subreaper, so no SUT descendant outlives
 * the run. */
#ifndef RUNNER_H
#define RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rc_error.h"

/* Exit codes of `replcheck run` (also documented in docs/ and the README). */
enum {
  RC_EXIT_PASSED = 0,     /* every selected test passed (or was skipped) */
  RC_EXIT_FAILED = 1,     /* some test failed or ended in error */
  RC_EXIT_USAGE = 2,      /* bad command line, bad profile, nothing selected */
  RC_EXIT_SUT_START = 3,  /* the SUT could not be started at all */
};

typedef struct runner_options {
  const char *profile_path;
  const char *const *filters; /* test id globs or prefixes; none = all */
  size_t filter_count;
  const char *junit_path;     /* NULL = reports/<profile-name>.junit.xml */
  const char *bin_dir;        /* {bin_dir}: where refworker etc. live */
  bool keep_work_dirs;        /* keep per-test directories even when tests pass */
  FILE *progress;             /* progress lines and the closing summary */
} runner_options_t;

/* Runs the selection. Returns one of the RC_EXIT_* codes; usage/profile problems are
 * printed to stderr with what is wrong. */
int runner_run(const runner_options_t *options);

/* True if a test id is selected by the filters: an exact id, a prefix ending at a '/'
 * boundary ("protocol" selects "protocol/handshake/x"), or an fnmatch glob. */
bool runner_filter_matches(const char *const *filters, size_t filter_count, const char *id);

#endif
