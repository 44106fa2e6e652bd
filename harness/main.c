/* replcheck: the command line. Parses arguments and environment (cli_options.h) and
 * hands over to the runner or the listing; only this file decides the process's exit
 * status. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_options.h"
#include "fixture_suite.h"
#include "listing.h"
#include "profile.h"
#include "registry.h"
#include "runner.h"
#include "selection.h"

static int list_tests(const cli_config_t *c) {
  profile_t *profile = NULL;
  rc_error_t err;
  if (c->profile_path != NULL && (profile = profile_load(c->profile_path, &err)) == NULL) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    return RC_EXIT_USAGE;
  }
  size_t n;
  const rc_test_def_t *rows = registry_tests(&n);
  const rc_test_def_t **chosen = calloc(n ? n : 1, sizeof *chosen);
  selection_t *selection =
      selection_create((const char *const *)c->selectors, c->selector_count, &err);
  int rc = RC_EXIT_USAGE;
  if (chosen == NULL) {
    snprintf(err.msg, sizeof err.msg, "out of memory");
  } else if (selection != NULL && selection_check_unmatched(selection, rows, n, &err) == 0) {
    size_t count = selection_apply(selection, rows, n, chosen);
    if (count == 0)
      snprintf(err.msg, sizeof err.msg,
               "no test is selected: the negated selectors exclude "
               "every test the others choose");
    else
      rc = listing_write(stdout, c->format, chosen, count, profile, &err) == 0 ? 0 : 1;
  }
  if (rc != 0) fprintf(stderr, "replcheck: %s\n", err.msg);
  selection_destroy(selection);
  free(chosen);
  profile_destroy(profile);
  return rc;
}

/* Directory of the running executable, so {bin_dir} finds refworker beside it. */
static void own_bin_dir(char *buf, size_t cap) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    snprintf(buf, cap, ".");
    return;
  }
  exe[n] = '\0';
  snprintf(buf, cap, "%s", dirname(exe));
}

static int run_tests(const cli_config_t *c) {
  if (c->profile_path == NULL) {
    fprintf(stderr, "replcheck: run needs --profile FILE (try profiles/refworker.json)\n");
    return RC_EXIT_USAGE;
  }
  char bin_dir[PATH_MAX];
  if (c->bin_dir != NULL)
    snprintf(bin_dir, sizeof bin_dir, "%s", c->bin_dir);
  else
    own_bin_dir(bin_dir, sizeof bin_dir);
  runner_options_t o = {.profile_path = c->profile_path,
                        .selectors = (const char *const *)c->selectors,
                        .selector_count = c->selector_count,
                        .junit_path = c->junit_path,
                        .html_path = c->html_path,
                        .json_path = c->json_path,
                        .bin_dir = bin_dir,
                        .expected_failures_path = c->expected_failures_path,
                        .keep_work_dirs = c->keep_logs,
                        .strict = c->strict,
                        .list_only = c->list_only,
                        .min_selected = c->min_selected,
                        .jobs = c->jobs,
                        .shard_index = c->shard_index,
                        .shard_count = c->shard_count,
                        .repeat = c->repeat,
                        .retry = c->retry,
                        .seed = c->seed,
                        .seed_given = c->seed_given,
                        .timeout_factor = c->timeout_factor,
                        .torture_level = c->torture_level,
                        .record_dir = c->record_dir,
                        .progress_mode = c->progress,
                        .progress = stdout};
  return runner_run(&o);
}

/* The fixtures suite: --fixtures DIR, or else the source tree's fixtures/ found from
 * this binary (none found: no fixture tests). */
static int load_fixtures(const cli_config_t *c) {
  char found[PATH_MAX];
  const char *dir = c->fixtures_dir;
  const char *shown = NULL;
  if (dir == NULL) {
    dir = fixture_suite_default_dir(found, sizeof found);
    shown = "fixtures";
  }
  if (dir == NULL) return 0;
  rc_error_t err;
  if (fixture_suite_load(dir, shown, &err) < 0) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  cli_config_t config;
  rc_error_t err;
  if (cli_parse(argc, argv, &config, &err) != 0) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    if (argc < 2) cli_print_help(stderr);
    cli_config_clear(&config);
    return RC_EXIT_USAGE;
  }
  int rc = 0;
  switch (config.action) {
    case CLI_ACTION_HELP:
      cli_print_help(stdout);
      break;
    case CLI_ACTION_HELP_ENV:
      cli_print_help_env(stdout);
      break;
    case CLI_ACTION_VERSION:
      printf("replcheck %s\n", REPLCHECK_VERSION);
      break;
    case CLI_ACTION_LIST:
      rc = load_fixtures(&config) == 0 ? list_tests(&config) : RC_EXIT_USAGE;
      break;
    case CLI_ACTION_RUN:
      rc = load_fixtures(&config) == 0 ? run_tests(&config) : RC_EXIT_USAGE;
      break;
  }
  fixture_suite_unload();
  registry_reset();
  cli_config_clear(&config);
  return rc;
}
