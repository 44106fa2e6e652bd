#include "run_plan.h"

#include <stdlib.h>
#include <string.h>

#include "selection.h"

const char *run_plan_skip_reason(const rc_test_def_t *def, const profile_t *profile, char *buf,
                                 size_t cap) {
  const char *na = registry_not_applicable(def, profile, buf, cap);
  if (na != NULL) return na;
  const char *opt_out = profile_opt_out_reason(profile, def->id);
  if (opt_out == NULL) return NULL;
  snprintf(buf, cap, "opted out by the profile: %s", opt_out);
  return buf;
}

void run_plan_destroy(run_plan_t *plan) {
  if (plan == NULL) return;
  for (size_t i = 0; i < plan->task_count; i++) {
    free(plan->tasks[i].id);
    free(plan->tasks[i].skip_reason);
  }
  free(plan->tasks);
  expected_failures_destroy(plan->expected);
  free(plan);
}

/* The selected rows of this shard, or NULL with err. *selected gets the count before
 * sharding, *count after. */
static const rc_test_def_t **select_rows(const run_plan_options_t *o, size_t *selected,
                                         size_t *count, rc_error_t *err) {
  size_t n;
  const rc_test_def_t *rows = registry_tests(&n);
  selection_t *selection = selection_create(o->selectors, o->selector_count, err);
  if (selection == NULL) return NULL;
  const rc_test_def_t **out = NULL;
  if (selection_check_unmatched(selection, rows, n, err) == 0) {
    out = calloc(n ? n : 1, sizeof *out);
    if (out == NULL) rc_error_set(err, "out of memory");
  }
  if (out != NULL) *selected = selection_apply(selection, rows, n, out);
  selection_destroy(selection);
  if (out == NULL) return NULL;
  const char *problem = NULL;
  char msg[256];
  if (*selected == 0) {
    problem =
        "no test is selected: the negated selectors exclude every test the others "
        "choose; see `replcheck list`";
  } else if (*selected < o->min_selected) {
    snprintf(msg, sizeof msg, "only %zu test(s) selected, fewer than --min %u", *selected,
             o->min_selected);
    problem = msg;
  }
  *count = *selected;
  if (problem == NULL && o->shard_count > 1) {
    *count = selection_shard(out, *selected, o->shard_index, o->shard_count);
    if (*count == 0) {
      snprintf(msg, sizeof msg, "shard %u/%u gets no test: only %zu test(s) are selected",
               o->shard_index, o->shard_count, *selected);
      problem = msg;
    }
  }
  if (problem != NULL) {
    rc_error_set(err, "%s", problem);
    free(out);
    return NULL;
  }
  return out;
}

static int fill_task(run_task_t *t, const rc_test_def_t *def, unsigned repetition,
                     const run_plan_options_t *o, const profile_t *profile,
                     const expected_failures_t *expected) {
  char why[512];
  t->def = def;
  t->repetition = repetition;
  if (repetition <= 1)
    t->id = strdup(def->id);
  else if (asprintf(&t->id, "%s#%u", def->id, repetition) < 0)
    t->id = NULL;
  const char *skip = run_plan_skip_reason(def, profile, why, sizeof why);
  if (skip != NULL) t->skip_reason = strdup(skip);
  t->expected = expected_failures_find(expected, def->id);
  /* Retrying a test that is listed as failing would only slow the run down. */
  bool retriable = selection_has_tag(def->tags, "retriable") && t->expected == NULL;
  t->max_attempts = retriable ? 1 + (int)o->retry : 1;
  return t->id == NULL || (skip != NULL && t->skip_reason == NULL) ? -1 : 0;
}

run_plan_t *run_plan_create(const run_plan_options_t *o, const profile_t *profile,
                            rc_error_t *err) {
  run_plan_t *plan = calloc(1, sizeof *plan);
  if (plan == NULL) {
    rc_error_set(err, "out of memory");
    return NULL;
  }
  if (o->expected_failures_path != NULL) {
    size_t n;
    const rc_test_def_t *rows = registry_tests(&n);
    plan->expected = expected_failures_load(o->expected_failures_path, err);
    if (plan->expected == NULL ||
        expected_failures_check_stale(plan->expected, rows, n, err) != 0) {
      run_plan_destroy(plan);
      return NULL;
    }
  }
  size_t count = 0;
  const rc_test_def_t **rows = select_rows(o, &plan->selected_count, &count, err);
  if (rows == NULL) {
    run_plan_destroy(plan);
    return NULL;
  }
  plan->test_count = count;
  unsigned repeat = o->repeat > 0 ? o->repeat : 1;
  plan->tasks = calloc(count * repeat, sizeof *plan->tasks);
  bool ok = plan->tasks != NULL;
  for (size_t i = 0; ok && i < count; i++) {
    for (unsigned r = 1; ok && r <= repeat; r++) {
      ok = fill_task(&plan->tasks[plan->task_count], rows[i], r, o, profile, plan->expected) == 0;
      plan->task_count++;
    }
  }
  free(rows);
  if (!ok) {
    rc_error_set(err, "out of memory");
    run_plan_destroy(plan);
    return NULL;
  }
  return plan;
}

void run_plan_print(const run_plan_t *plan, FILE *out) {
  size_t runs = 0;
  for (size_t i = 0; i < plan->task_count; i++) {
    const run_task_t *t = &plan->tasks[i];
    if (t->skip_reason != NULL) {
      fprintf(out, "  skip  %s\n        %s\n", t->id, t->skip_reason);
      continue;
    }
    runs++;
    fprintf(out, "  run   %s", t->id);
    if (t->max_attempts > 1) fprintf(out, "  [retriable: up to %d attempts]", t->max_attempts);
    fputc('\n', out);
    if (t->expected != NULL)
      fprintf(out, "        expected to fail (%s:%d): %s\n", plan->expected->path,
              t->expected->line, t->expected->reason);
  }
  fprintf(out, "%zu to run, %zu skipped\n", runs, plan->task_count - runs);
}
