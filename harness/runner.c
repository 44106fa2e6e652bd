#include "runner.h"

#include <check.h>
#include <errno.h>
#include <fnmatch.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "junit.h"
#include "outcome.h"
#include "profile.h"
#include "rc_clock.h"
#include "registry.h"
#include "report.h"
#include "sut.h"
#include "testctx.h"

/* What the forked Check test process needs; set before each srunner_run and
 * inherited through fork (or used in-process with CK_FORK=no). */
typedef struct current_test {
  const rc_test_def_t *def;
  const profile_t *profile;
  const char *bin_dir;
  const char *work_dir;
  const char *outcome_path;
  int index;
} current_test_t;

static current_test_t current;

bool runner_filter_matches(const char *const *filters, size_t filter_count, const char *id) {
  if (filter_count == 0) return true;
  for (size_t i = 0; i < filter_count; i++) {
    const char *f = filters[i];
    size_t n = strlen(f);
    if (strcmp(f, id) == 0) return true;
    if (n > 0 && strncmp(f, id, n) == 0 && (f[n - 1] == '/' || id[n] == '/')) return true;
    if (fnmatch(f, id, 0) == 0) return true;
  }
  return false;
}

/* The body of every Check test: one registry row, end to end. */
static void run_current_test(int index) {
  (void)index;
  rc_error_t err;
  report_case_t outcome = {0};
  bool start_failed = false;
  sut_become_subreaper(NULL);
  rc_test_t *t = rc_test_create(current.def, current.profile, current.bin_dir,
                                current.work_dir, current.index, &err);
  if (t == NULL) {
    outcome.verdict = VERDICT_ERROR;
    report_set(&outcome.message, err.msg);
  } else {
    rc_test_execute(t, &outcome);
    start_failed = t->sut_start_failed;
    rc_test_destroy(t);
  }
  if (outcome_write(current.outcome_path, &outcome, start_failed, &err) != 0)
    ck_abort_msg("%s", err.msg);
  outcome_clear_case(&outcome);
}

static int test_timeout_seconds(const profile_t *p) {
  const profile_timing_t *tm = &p->timing;
  /* Check's timeout is only the last guard against a hung test process; every wait
   * inside a test has its own, much shorter deadline. */
  return (tm->startup_timeout_ms + 2 * tm->shutdown_grace_ms + 4 * tm->ping_timeout_ms +
          4 * tm->reconnect_max_ms) / 1000 + 60;
}

/* Kills what a dead test process may have left: the SUT's group and any orphan
 * re-parented to us (we are a subreaper). */
static void reap_leftovers(const char *work_dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/sut.pgid", work_dir);
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    long pgid = 0;
    if (fscanf(f, "%ld", &pgid) == 1 && pgid > 1) kill((pid_t)-pgid, SIGKILL);
    fclose(f);
  }
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static void run_one(const runner_options_t *o, const profile_t *profile, const char *run_dir,
                    const rc_test_def_t *def, int index, report_case_t *c,
                    bool *start_failed) {
  char work_dir[4096], outcome_path[4200];
  char safe_id[512];
  snprintf(safe_id, sizeof safe_id, "%s", def->id);
  for (char *p = safe_id; *p; p++)
    if (*p == '/') *p = '_';
  snprintf(work_dir, sizeof work_dir, "%s/%03d-%s", run_dir, index, safe_id);
  snprintf(outcome_path, sizeof outcome_path, "%s/outcome.json", work_dir);
  if (mkdir(work_dir, 0700) != 0) {
    c->verdict = VERDICT_ERROR;
    char msg[4300];
    snprintf(msg, sizeof msg, "cannot create %s: %s", work_dir, strerror(errno));
    report_set(&c->message, msg);
    return;
  }
  current = (current_test_t){.def = def,
                             .profile = profile,
                             .bin_dir = o->bin_dir,
                             .work_dir = work_dir,
                             .outcome_path = outcome_path,
                             .index = index};

  Suite *suite = suite_create("replcheck");
  TCase *tc = tcase_create(def->id);
  /* Check's TTest names the test in its own messages; the id keeps them readable. */
  TTest ttest = {.name = def->id, .fn = run_current_test, .file = def->file, .line = def->line};
  tcase_add_loop_test(tc, &ttest, index, index + 1);
  tcase_set_timeout(tc, test_timeout_seconds(profile));
  suite_add_tcase(suite, tc);
  SRunner *sr = srunner_create(suite);
  fflush(NULL); /* a forked child must not flush our buffered output again */
  int64_t start = rc_clock_mono_ms();
  srunner_run(sr, NULL, NULL, CK_SILENT);
  double seconds = (double)(rc_clock_mono_ms() - start) / 1000.0;
  TestResult **results = srunner_results(sr);
  int rtype = srunner_ntests_run(sr) > 0 ? tr_rtype(results[0]) : CK_ERROR;
  char check_msg[1024];
  snprintf(check_msg, sizeof check_msg, "%s",
           srunner_ntests_run(sr) > 0 && tr_msg(results[0]) ? tr_msg(results[0]) : "not run");
  free(results);
  srunner_free(sr);

  rc_error_t err;
  bool have_outcome = outcome_read(outcome_path, c, start_failed, &err) == 0;
  if (rtype != CK_PASS || !have_outcome) {
    char msg[2300];
    snprintf(msg, sizeof msg, "the test process did not finish normally (%s)%s%s", check_msg,
             have_outcome ? "" : "; no outcome: ", have_outcome ? "" : err.msg);
    c->verdict = VERDICT_ERROR;
    report_set(&c->message, msg);
    c->seconds = seconds;
  }
  reap_leftovers(work_dir);
}

static void print_indented(FILE *out, const char *label, const char *text) {
  if (text == NULL || text[0] == '\0') return;
  fprintf(out, "      %s", label);
  for (const char *p = text; *p; p++) {
    fputc(*p, out);
    if (*p == '\n' && p[1] != '\0') fputs("        ", out);
  }
  if (text[strlen(text) - 1] != '\n') fputc('\n', out);
}

/* Seconds with one decimal, without printf's locale-dependent %f. */
static void format_seconds(double seconds, char *buf, size_t cap) {
  long tenths = (long)(seconds * 10.0 + 0.5);
  snprintf(buf, cap, "%ld.%lds", tenths / 10, tenths % 10);
}

static void print_progress(FILE *out, size_t done, size_t total, const report_case_t *c) {
  char secs[32];
  format_seconds(c->seconds, secs, sizeof secs);
  fprintf(out, "[%zu/%zu] %s %s (%s)\n", done, total, verdict_name(c->verdict), c->id, secs);
  if (c->verdict == VERDICT_SKIP) {
    print_indented(out, "reason: ", c->message);
  } else if (c->verdict != VERDICT_PASS) {
    char req[2048];
    snprintf(req, sizeof req, "%s\n", c->requirement);
    fprintf(out, "      Requirement (%s): %s", c->requirements, req);
    if (c->expected != NULL) print_indented(out, "Expected: ", c->expected);
    if (c->actual != NULL) print_indented(out, "Actual: ", c->actual);
    if (c->expected == NULL) print_indented(out, "Error: ", c->message);
    print_indented(out, "", c->evidence);
  }
  fflush(out);
}

static char *join_command(const profile_t *p) {
  size_t n = 1;
  for (size_t i = 0; i < p->command_count; i++) n += strlen(p->command[i]) + 1;
  char *s = calloc(1, n);
  if (s == NULL) return NULL;
  for (size_t i = 0; i < p->command_count; i++) {
    if (i) strcat(s, " ");
    strcat(s, p->command[i]);
  }
  return s;
}

/* Before any test: is the SUT's program there at all? Placeholders other than
 * bin_dir/profile_dir in argv[0] are left to the first test. */
static int preflight_command(const runner_options_t *o, const profile_t *p, rc_error_t *err) {
  profile_var_t vars[] = {{"bin_dir", o->bin_dir}, {"profile_dir", p->dir}};
  rc_error_t ignored;
  char *prog = profile_expand(p->command[0], vars, 2, &ignored);
  if (prog == NULL) return 0;
  int rc = 0;
  if (strchr(prog, '/') != NULL) {
    if (access(prog, X_OK) != 0)
      rc = rc_error_set(err, "SUT command '%s' cannot be executed: %s", prog, strerror(errno));
  } else {
    const char *path = getenv("PATH");
    bool found = false;
    char *copy = strdup(path ? path : "/usr/bin:/bin");
    for (char *dir = strtok(copy, ":"); dir && !found; dir = strtok(NULL, ":")) {
      char full[4096];
      snprintf(full, sizeof full, "%s/%s", dir, prog);
      found = access(full, X_OK) == 0;
    }
    free(copy);
    if (!found) rc = rc_error_set(err, "SUT command '%s' not found in PATH", prog);
  }
  free(prog);
  return rc;
}

static void default_junit_path(const char *profile_path, char *buf, size_t cap) {
  const char *base = strrchr(profile_path, '/');
  base = base ? base + 1 : profile_path;
  size_t len = strlen(base);
  if (len > 5 && strcmp(base + len - 5, ".json") == 0) len -= 5;
  snprintf(buf, cap, "reports/%.*s.junit.xml", (int)len, base);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path); /* best effort: keep going */
  return 0;
}

static void remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

int runner_run(const runner_options_t *o) {
  FILE *out = o->progress ? o->progress : stdout;
  rc_error_t err;
  profile_t *profile = profile_load(o->profile_path, &err);
  if (profile == NULL) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    return RC_EXIT_USAGE;
  }
  size_t total_rows;
  const rc_test_def_t *rows = registry_tests(&total_rows);
  const rc_test_def_t **selected = calloc(total_rows ? total_rows : 1, sizeof *selected);
  size_t count = 0;
  for (size_t i = 0; i < total_rows; i++)
    if (runner_filter_matches(o->filters, o->filter_count, rows[i].id)) selected[count++] = &rows[i];
  if (count == 0) {
    fprintf(stderr, "replcheck: no test matches the filter(s); see `replcheck list`\n");
    free(selected);
    profile_destroy(profile);
    return RC_EXIT_USAGE;
  }
  if (preflight_command(o, profile, &err) != 0) {
    fprintf(stderr, "replcheck: the SUT could not be started: %s (profile %s)\n", err.msg,
            o->profile_path);
    free(selected);
    profile_destroy(profile);
    return RC_EXIT_SUT_START;
  }
  const char *tmp = getenv("TMPDIR");
  char run_dir[4096];
  snprintf(run_dir, sizeof run_dir, "%s/replcheck-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (mkdtemp(run_dir) == NULL) {
    fprintf(stderr, "replcheck: cannot create a work directory under %s: %s\n",
            tmp && tmp[0] ? tmp : "/tmp", strerror(errno));
    free(selected);
    profile_destroy(profile);
    return RC_EXIT_USAGE;
  }
  sut_become_subreaper(NULL);

  report_t *report = report_create("replcheck");
  char *command = join_command(profile);
  report_add_property(report, "profile", o->profile_path);
  report_add_property(report, "profile_name", profile->name);
  report_add_property(report, "dialect", proto_dialect_name(profile->dialect));
  report_add_property(report, "transport", profile_transport_name(profile->transport));
  report_add_property(report, "era", profile->era);
  report_add_property(report, "sut_command", command ? command : "");
  free(command);

  fprintf(out, "replcheck %s: %zu test(s) against %s (%s, %s)\n", REPLCHECK_VERSION, count,
          profile->name, proto_dialect_name(profile->dialect),
          profile_transport_name(profile->transport));
  int64_t run_start = rc_clock_mono_ms();
  size_t executed = 0, start_failures = 0;
  for (size_t i = 0; i < count; i++) {
    const rc_test_def_t *def = selected[i];
    report_case_t *c = report_add_case(report);
    report_set(&c->id, def->id);
    char area[128];
    snprintf(area, sizeof area, "%.*s", (int)strcspn(def->id, "/"), def->id);
    report_set(&c->area, area);
    report_set(&c->requirements, def->requirements);
    report_set(&c->requirement, def->requirement);
    report_set(&c->source, def->source);
    report_set(&c->file, registry_relative_file(def));
    c->line = def->line;
    char why[512];
    const char *skip = registry_not_applicable(def, profile, why, sizeof why);
    const char *opt_out = profile_opt_out_reason(profile, def->id);
    if (skip == NULL && opt_out != NULL) {
      snprintf(why, sizeof why, "opted out by the profile: %s", opt_out);
      skip = why;
    }
    if (skip != NULL) {
      c->verdict = VERDICT_SKIP;
      report_set(&c->message, skip);
    } else {
      bool start_failed = false;
      run_one(o, profile, run_dir, def, (int)i + 1, c, &start_failed);
      executed++;
      if (start_failed) start_failures++;
    }
    print_progress(out, i + 1, count, c);
  }
  report->seconds = (double)(rc_clock_mono_ms() - run_start) / 1000.0;

  size_t passed = report_count(report, VERDICT_PASS) + report_count(report, VERDICT_NON_STRICT) +
                  report_count(report, VERDICT_XFAIL) + report_count(report, VERDICT_XPASS);
  size_t failed = report_count(report, VERDICT_FAIL) + report_count(report, VERDICT_ERROR);
  size_t skipped = report_count(report, VERDICT_SKIP);

  char junit_default[4096];
  const char *junit_path = o->junit_path;
  if (junit_path == NULL) {
    default_junit_path(o->profile_path, junit_default, sizeof junit_default);
    mkdir("reports", 0755);
    junit_path = junit_default;
  }
  int exit_code = failed > 0 ? RC_EXIT_FAILED : RC_EXIT_PASSED;
  if (executed > 0 && start_failures == executed) exit_code = RC_EXIT_SUT_START;
  if (junit_write_file(report, junit_path, &err) != 0) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    if (exit_code == RC_EXIT_PASSED) exit_code = RC_EXIT_FAILED;
  } else {
    fprintf(out, "JUnit report: %s\n", junit_path);
  }
  if (failed > 0 || o->keep_work_dirs) {
    fprintf(out, "Work directories (SUT logs, outputs): %s\n", run_dir);
  } else {
    remove_tree(run_dir);
  }
  if (exit_code == RC_EXIT_SUT_START)
    fprintf(out, "The SUT could not be started in any test; see the errors above.\n");
  char secs[32];
  format_seconds(report->seconds, secs, sizeof secs);
  fprintf(out, "Verdicts: %zu PASS, %zu NON-STRICT, %zu FAIL, %zu ERROR, %zu SKIP in %s\n",
          report_count(report, VERDICT_PASS), report_count(report, VERDICT_NON_STRICT),
          report_count(report, VERDICT_FAIL), report_count(report, VERDICT_ERROR), skipped, secs);
  fprintf(out, "%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
  fflush(out);
  report_destroy(report);
  free(selected);
  profile_destroy(profile);
  return exit_code;
}
