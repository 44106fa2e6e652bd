/* run_plan: what one `replcheck run` will do, decided before anything starts.
 *
 * From the selectors, --shard, --repeat, --retry, --min and the expected-failures
 * file, builds the ordered list of tasks: every selected registry row (registry order,
 * after sharding), each --repeat times in a row. Repetition R >= 2 of a test is its own
 * report case with id "<id>#R" (the first keeps the plain id, so reports of runs with
 * and without --repeat line up). Every task knows why it will be skipped (not
 * applicable to the profile, opted out by it), the expected-failures entry that lists
 * it, and how many attempts it may take (1 + --retry for tests tagged `retriable` that
 * are not expected to fail; 1 otherwise).
 *
 * Every problem is a usage error (exit 2): a bad selector or one that matches no test,
 * an expected-failures file that cannot be read, is malformed or has a stale entry,
 * nothing selected, fewer than --min tests selected (counted before sharding, so every
 * shard of a CI matrix can pass the same --min), or an empty shard.
 *
 * Ownership: run_plan_t owns its tasks, their strings and the expected-failures list;
 * it refers to (does not own) the profile and the registry rows. */
#ifndef RUN_PLAN_H
#define RUN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "expected_failures.h"
#include "profile.h"
#include "rc_error.h"
#include "registry.h"

typedef struct run_task {
  const rc_test_def_t *def;
  unsigned repetition;                /* 1..repeat */
  char *id;                           /* the report case id: def->id or "<id>#R" */
  char *skip_reason;                  /* NULL: the test runs */
  const expected_failure_t *expected; /* entry listing the test, or NULL */
  int max_attempts;                   /* >= 1 */
} run_task_t;

typedef struct run_plan_options {
  const char *const *selectors;
  size_t selector_count;
  unsigned shard_index; /* 1-based K; 0 or shard_count <= 1 means no sharding */
  unsigned shard_count;
  unsigned repeat; /* 0 is taken as 1 */
  unsigned retry;
  unsigned min_selected;
  const char *expected_failures_path; /* NULL: none */
} run_plan_options_t;

typedef struct run_plan {
  run_task_t *tasks;
  size_t task_count;
  size_t selected_count; /* tests the selectors chose, before sharding */
  size_t test_count;     /* tests of this shard (tasks = test_count * repeat) */
  expected_failures_t *expected;
} run_plan_t;

/* Builds the plan for profile (must outlive the plan). Returns NULL with err on any
 * of the usage errors above or on allocation failure. */
run_plan_t *run_plan_create(const run_plan_options_t *options, const profile_t *profile,
                            rc_error_t *err);
void run_plan_destroy(run_plan_t *plan);

/* Why the row is skipped for the profile ("not applicable: ...", "opted out by the
 * profile: ..."), written into buf, or NULL if it runs. */
const char *run_plan_skip_reason(const rc_test_def_t *def, const profile_t *profile, char *buf,
                                 size_t cap);

/* Prints the plan (`replcheck run --list`): one line per task with its fate. */
void run_plan_print(const run_plan_t *plan, FILE *out);

#endif
