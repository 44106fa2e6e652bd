#include "runner.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "case_run.h"
#include "dispatch.h"
#include "html_report.h"
#include "interrupt.h"
#include "json_report.h"
#include "junit.h"
#include "pg_cluster.h"
#include "profile.h"
#include "rc_clock.h"
#include "run_plan.h"
#include "db_vars.h"
#include "setup_step.h"
#include "sut.h"

/* Bound on initdb, server start and schema set-up (1-2 s on a quiet machine). */
#define PG_CLUSTER_START_TIMEOUT_MS 60000

/* Everything the dispatch hooks need. */
typedef struct run_ctx {
  const runner_options_t *o;
  const profile_t *profile;
  const run_plan_t *plan;
  report_t *report;
  const char *run_dir;
  uint64_t seed;
  int check_timeout;
  progress_t progress;
  pg_cluster_t *pg;       /* the run's database cluster (profile role pg), or NULL */
  rc_error_t pg_error;    /* why it could not be started */
} run_ctx_t;

void runner_apply_expected(report_case_t *c, const char *where, const char *reason) {
  char *msg = NULL;
  int rc = -1;
  switch (c->verdict) {
    case VERDICT_FAIL:
    case VERDICT_NON_STRICT:
    case VERDICT_ERROR:
      rc = asprintf(&msg, "expected failure (%s: %s); %s: %s", where, reason,
                    verdict_name(c->verdict), c->message ? c->message : "no message");
      c->verdict = VERDICT_XFAIL;
      break;
    case VERDICT_PASS:
      rc = asprintf(&msg, "passed, but listed as expected to fail (%s: %s)%s%s", where, reason,
                    c->message ? "; " : "", c->message ? c->message : "");
      c->verdict = VERDICT_XPASS;
      break;
    default:
      return;
  }
  if (rc >= 0) report_set(&c->message, msg);
  free(msg);
}

void runner_count(const report_t *report, bool strict, size_t *passed, size_t *failed,
                  size_t *skipped) {
  size_t lenient = report_count(report, VERDICT_NON_STRICT) + report_count(report, VERDICT_XPASS);
  *passed = report_count(report, VERDICT_PASS) + report_count(report, VERDICT_XFAIL);
  *failed = report_count(report, VERDICT_FAIL) + report_count(report, VERDICT_ERROR);
  if (strict)
    *failed += lenient;
  else
    *passed += lenient;
  *skipped = report_count(report, VERDICT_SKIP);
}

/* ---- dispatch hooks ----------------------------------------------------------------- */

static void work_dir_of(const run_ctx_t *r, size_t item, int attempt, char *buf, size_t cap) {
  const run_task_t *t = &r->plan->tasks[item];
  case_run_work_dir(r->run_dir, item + 1, t->def->id, t->repetition, attempt, buf, cap);
}

static void hook_run(void *arg, size_t item, int attempt, report_case_t *out, bool *start_failed) {
  const run_ctx_t *r = arg;
  const run_task_t *t = &r->plan->tasks[item];
  char work_dir[4096];
  work_dir_of(r, item, attempt, work_dir, sizeof work_dir);
  case_run_spec_t spec = {.def = t->def,
                          .profile = r->profile,
                          .bin_dir = r->o->bin_dir,
                          .work_dir = work_dir,
                          .index = (int)item + 1,
                          .seed = case_run_seed(r->seed, t->def->id, t->repetition),
                          .check_timeout_seconds = r->check_timeout,
                          .run_seed = r->seed,
                          .torture_level = r->o->torture_level,
                          .record_dir = r->o->record_dir,
                          .pg = r->pg,
                          .pg_error = r->pg_error.msg};
  case_run_execute(&spec, out, start_failed);
}

static void hook_abandon(void *arg, size_t item, int attempt) {
  char work_dir[4096];
  work_dir_of(arg, item, attempt, work_dir, sizeof work_dir);
  case_run_kill_sut(work_dir);
}

/* Ctrl-C: the cluster stops now, in order, before the dispatcher kills every child. */
static void hook_interrupted(void *arg) {
  run_ctx_t *r = arg;
  pg_cluster_stop(r->pg);
  r->pg = NULL;
}

static void hook_finished(void *arg, size_t item, const report_case_t *c, int retries) {
  run_ctx_t *r = arg;
  const run_task_t *t = &r->plan->tasks[item];
  report_case_t *rc = &r->report->cases[item];
  (void)c;
  if (t->expected != NULL) {
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", r->plan->expected->path, t->expected->line);
    runner_apply_expected(rc, where, t->expected->reason);
  }
  progress_case(&r->progress, rc, retries);
}

/* ---- set-up --------------------------------------------------------------------------- */

static char *join_words(char *const *words, size_t n, const char *none) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(words[i]) + 1;
  char *s = calloc(1, len + strlen(none));
  if (s == NULL) return NULL;
  if (n == 0) strcpy(s, none);
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(s, " ");
    strcat(s, words[i]);
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
    char *save = NULL;
    for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
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

static int scale_ms(int ms, double factor) {
  double v = (double)ms * factor + 0.5;
  return v >= INT_MAX ? INT_MAX : v < 1 ? 1 : (int)v;
}

/* "1.5", "2", "0.25": up to three decimals, no locale. */
static void format_factor(double f, char *buf, size_t cap) {
  long thousandths = (long)(f * 1000.0 + 0.5);
  snprintf(buf, cap, "%ld.%03ld", thousandths / 1000, thousandths % 1000);
  char *end = buf + strlen(buf) - 1;
  while (*end == '0') *end-- = '\0';
  if (*end == '.') *end = '\0';
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

static void remove_tree(const char *path) {
  nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void add_properties(report_t *report, const runner_options_t *o, const profile_t *p,
                           uint64_t seed) {
  char *command = join_words(p->command, p->command_count, "");
  char *selectors = join_words((char *const *)o->selectors, o->selector_count, "(all)");
  char text[64];
  report_add_property(report, "profile", o->profile_path);
  report_add_property(report, "profile_name", p->name);
  report_add_property(report, "dialect", proto_dialect_name(p->dialect));
  report_add_property(report, "transport", profile_transport_name(p->transport));
  report_add_property(report, "era", p->era);
  report_add_property(report, "sut_command", command ? command : "");
  report_add_property(report, "selectors", selectors ? selectors : "");
  snprintf(text, sizeof text, "%llu", (unsigned long long)seed);
  report_add_property(report, "seed", text);
  snprintf(text, sizeof text, "%u/%u", o->shard_index, o->shard_count > 1 ? o->shard_count : 1);
  report_add_property(report, "shard", text);
  snprintf(text, sizeof text, "%u", o->repeat);
  report_add_property(report, "repeat", text);
  snprintf(text, sizeof text, "%u", o->retry);
  report_add_property(report, "retry", text);
  snprintf(text, sizeof text, "%u", o->jobs);
  report_add_property(report, "jobs", text);
  format_factor(o->timeout_factor, text, sizeof text);
  report_add_property(report, "timeout_factor", text);
  snprintf(text, sizeof text, "%d", o->torture_level);
  report_add_property(report, "torture", text);
  if (o->expected_failures_path != NULL)
    report_add_property(report, "expected_failures", o->expected_failures_path);
  free(command);
  free(selectors);
}

/* One case per task, identity filled; skipped tasks already carry their verdict. */
static int add_cases(report_t *report, const run_plan_t *plan) {
  for (size_t i = 0; i < plan->task_count; i++) {
    const run_task_t *t = &plan->tasks[i];
    report_case_t *c = report_add_case(report);
    if (c == NULL) return -1;
    char area[128];
    snprintf(area, sizeof area, "%.*s", (int)strcspn(t->def->id, "/"), t->def->id);
    report_set(&c->id, t->id);
    report_set(&c->area, area);
    report_set(&c->requirements, t->def->requirements);
    report_set(&c->requirement, t->def->requirement);
    report_set(&c->source, t->def->source);
    report_set(&c->file, registry_relative_file(t->def));
    c->line = t->def->line;
    if (t->skip_reason != NULL) {
      c->verdict = VERDICT_SKIP;
      report_set(&c->message, t->skip_reason);
    }
  }
  return 0;
}

static void print_header(FILE *out, const runner_options_t *o, const profile_t *p,
                         const run_plan_t *plan, uint64_t seed, bool in_process) {
  char factor[32];
  format_factor(o->timeout_factor, factor, sizeof factor);
  fprintf(out, "replcheck %s: %zu test(s) against %s (%s, %s)\n", REPLCHECK_VERSION,
          plan->task_count, p->name, proto_dialect_name(p->dialect),
          profile_transport_name(p->transport));
  fprintf(out, "  seed %llu (reproduce with --seed %llu), jobs %u", (unsigned long long)seed,
          (unsigned long long)seed, in_process ? 1u : o->jobs);
  if (o->shard_count > 1)
    fprintf(out, ", shard %u/%u of %zu selected", o->shard_index, o->shard_count,
            plan->selected_count);
  if (o->repeat > 1) fprintf(out, ", each test %u times", o->repeat);
  if (o->retry > 0) fprintf(out, ", retriable tests up to %u retries", o->retry);
  if (o->timeout_factor != 1.0) fprintf(out, ", timeout factor %s", factor);
  if (o->strict) fprintf(out, ", strict");
  if (o->torture_level > 0) fprintf(out, ", torture level %d", o->torture_level);
  fputc('\n', out);
  if (o->record_dir != NULL)
    fprintf(out, "  recording every test as a fixture in %s\n", o->record_dir);
  if (in_process && o->jobs > 1)
    fprintf(out, "  note: CK_FORK=no runs the tests inside replcheck, one at a time\n");
  fflush(out);
}

/* ---- the end of a run ----------------------------------------------------------------- */

static void print_listed(FILE *out, const report_t *report, const run_plan_t *plan, bool strict) {
  bool any = false;
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    const run_task_t *t = &plan->tasks[i];
    if (c->verdict != VERDICT_XFAIL && c->verdict != VERDICT_XPASS) continue;
    if (!any) fprintf(out, "Expected failures (%s):\n", plan->expected->path);
    any = true;
    fprintf(out, "  %s %s: %s (%s:%d)%s\n", verdict_name(c->verdict), c->id, t->expected->reason,
            plan->expected->path, t->expected->line,
            c->verdict == VERDICT_XPASS
                ? (strict ? " -- passed: a failure under --strict"
                          : " -- passed: warning; remove the entry if it is fixed")
                : "");
  }
}

static void print_failures(FILE *out, const report_t *report, bool strict) {
  bool any = false;
  for (size_t i = 0; i < report->case_count; i++) {
    const report_case_t *c = &report->cases[i];
    bool show = c->verdict == VERDICT_FAIL || c->verdict == VERDICT_ERROR ||
                c->verdict == VERDICT_NON_STRICT;
    if (!show) continue;
    if (!any) fprintf(out, "Not passed:\n");
    any = true;
    fprintf(out, "  %s %s%s: %.300s\n", verdict_name(c->verdict), c->id,
            c->verdict == VERDICT_NON_STRICT
                ? (strict ? " (fails under --strict)" : " (SHOULD; passes without --strict)")
                : "",
            c->message ? c->message : "");
  }
}

/* Writes every requested report; returns false if one could not be written. */
static bool write_reports(FILE *out, const report_t *report, const runner_options_t *o) {
  char junit_default[4096];
  const char *junit_path = o->junit_path;
  if (junit_path == NULL) {
    default_junit_path(o->profile_path, junit_default, sizeof junit_default);
    mkdir("reports", 0755);
    junit_path = junit_default;
  }
  struct {
    const char *label;
    const char *path;
    int (*write)(const report_t *, const char *, rc_error_t *);
  } writers[] = {{"JUnit", junit_path, junit_write_file},
                 {"HTML", o->html_path, html_report_write_file},
                 {"JSON", o->json_path, json_report_write_file}};
  bool ok = true;
  for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++) {
    if (writers[i].path == NULL) continue;
    rc_error_t err;
    if (writers[i].write(report, writers[i].path, &err) != 0) {
      fprintf(stderr, "replcheck: %s\n", err.msg);
      ok = false;
    } else {
      fprintf(out, "%s report: %s\n", writers[i].label, writers[i].path);
    }
  }
  return ok;
}

static bool worth_keeping(const report_t *report) {
  for (size_t i = 0; i < report->case_count; i++)
    if (report->cases[i].verdict != VERDICT_PASS && report->cases[i].verdict != VERDICT_SKIP)
      return true;
  return false;
}

static int finish_run(FILE *out, run_ctx_t *r, const dispatch_stats_t *stats) {
  const runner_options_t *o = r->o;
  report_t *report = r->report;
  size_t passed, failed, skipped;
  runner_count(report, o->strict, &passed, &failed, &skipped);
  int exit_code = failed > 0 ? RC_EXIT_FAILED : RC_EXIT_PASSED;
  if (stats->executed > 0 && stats->start_failures == stats->executed)
    exit_code = RC_EXIT_SUT_START;
  if (stats->interrupt_signal != 0) exit_code = RC_EXIT_INTERRUPTED;

  if (r->plan->expected != NULL) print_listed(out, report, r->plan, o->strict);
  print_failures(out, report, o->strict);
  if (!write_reports(out, report, o) && exit_code == RC_EXIT_PASSED) exit_code = RC_EXIT_FAILED;
  if (worth_keeping(report) || o->keep_work_dirs || stats->interrupt_signal != 0)
    fprintf(out, "Work directories (SUT logs, outputs): %s\n", r->run_dir);
  else
    remove_tree(r->run_dir);
  if (exit_code == RC_EXIT_SUT_START)
    fprintf(out, "The SUT could not be started in any test; see the errors above.\n");
  if (stats->interrupt_signal != 0)
    fprintf(out, "Interrupted by %s: %zu test(s) not run or cut short (SKIP); exit status %d.\n",
            stats->interrupt_signal == SIGINT ? "SIGINT" : "SIGTERM", stats->not_run,
            RC_EXIT_INTERRUPTED);
  char secs[32];
  progress_format_seconds(report->seconds, secs, sizeof secs);
  fprintf(out,
          "Verdicts: %zu PASS, %zu NON_STRICT, %zu XFAIL, %zu XPASS, %zu FAIL, %zu ERROR, "
          "%zu SKIP in %s%s\n",
          report_count(report, VERDICT_PASS), report_count(report, VERDICT_NON_STRICT),
          report_count(report, VERDICT_XFAIL), report_count(report, VERDICT_XPASS),
          report_count(report, VERDICT_FAIL), report_count(report, VERDICT_ERROR), skipped, secs,
          o->strict ? " (--strict)" : "");
  fprintf(out, "%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
  fflush(out);
  return exit_code;
}

/* ---- the run -------------------------------------------------------------------------- */

/* True when at least one test of the plan will run (is not skipped). */
static bool plan_runs_any(const run_plan_t *plan) {
  for (size_t i = 0; i < plan->task_count; i++)
    if (plan->tasks[i].skip_reason == NULL) return true;
  return false;
}

/* The {db_*} values of the per-run setup: with the run's cluster, its template database
 * as the SUT role (each test's database is then copied from what the step left there);
 * else REPLCHECK_DB_DSN. */
static int setup_db_vars(const run_ctx_t *r, db_vars_t *db, rc_error_t *err) {
  if (r->pg == NULL) return db_vars_from_env(db, err);
  char *dsn = pg_cluster_sut_dsn(r->pg, PG_CLUSTER_TEMPLATE, "replcheck-setup");
  if (dsn == NULL) return rc_error_set(err, "out of memory");
  int rc = db_vars_parse(dsn, db, err);
  free(dsn);
  return rc;
}

/* The profile's per-run setup (e.g. preparing the SUT's database), once, before the
 * first test and after the cluster started, in <run_dir>/setup; skipped when no test
 * will run, and when the profile's cluster failed to start (its tests are ERRORs saying
 * why). */
static int run_setup(FILE *out, const run_ctx_t *r) {
  const runner_options_t *o = r->o;
  const profile_t *p = r->profile;
  const run_plan_t *plan = r->plan;
  const char *run_dir = r->run_dir;
  if (p->setup.command == NULL || p->setup.per_test) return 0;
  if ((p->roles & PROFILE_ROLE_PG) != 0 && r->pg == NULL) return 0;
  if (!plan_runs_any(plan)) return 0;
  char dir[4200], output[4300];
  snprintf(dir, sizeof dir, "%s/setup", run_dir);
  snprintf(output, sizeof output, "%s/setup-output.txt", dir);
  rc_error_t err;
  db_vars_t db;
  if (mkdir(dir, 0700) != 0) {
    rc_error_set(&err, "cannot create %s: %s", dir, strerror(errno));
  } else if (setup_db_vars(r, &db, &err) == 0) {
    profile_var_t vars[16] = {{"work_dir", dir},
                              {"bin_dir", o->bin_dir},
                              {"profile_dir", p->dir},
                              {"instance_name", p->instance_name}};
    size_t n = 4 + db_vars_list(&db, vars + 4, 16 - 4);
    setup_step_spec_t spec = {.profile = p, .vars = vars, .var_count = n, .work_dir = dir,
                              .output_path = output,
                              .timeout_ms = p->setup.timeout_ms,
                              .grace_ms = p->timing.shutdown_grace_ms};
    fprintf(out, "  running the profile's setup step ...\n");
    fflush(out);
    int64_t start = rc_clock_mono_ms();
    if (setup_step_run(&spec, &err) == 0) {
      fprintf(out, "  profile setup done in %.1f s\n", (double)(rc_clock_mono_ms() - start) / 1000.0);
      return 0;
    }
  }
  fprintf(stderr, "replcheck: the SUT could not be started: %s\n", err.msg);
  fprintf(out, "Work directory (setup output): %s\n", run_dir);
  return -1;
}

/* The soft descriptor limit up to the hard one: a SUT that opens a thousand connections
 * must meet the mock's limit no sooner than its own (1024 by default on both sides). */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* A profile with role pg gets a PostgreSQL cluster for the run, unless nothing will run:
 * every test's SUT then gets a database of its own ({db_dsn}). A cluster that cannot
 * start turns those tests into ERRORs saying why. */
static void start_pg_cluster(run_ctx_t *r, FILE *out) {
  snprintf(r->pg_error.msg, sizeof r->pg_error.msg, "no database cluster");
  if ((r->profile->roles & PROFILE_ROLE_PG) == 0) return;
  if (!plan_runs_any(r->plan)) return;
  pg_cluster_schema_t schema = r->profile->db_schema == PROFILE_DB_SCHEMA_NONE
                                   ? PG_CLUSTER_SCHEMA_NONE
                                   : PG_CLUSTER_SCHEMA_REFWORKER;
  r->pg = pg_cluster_start(r->run_dir, schema, PG_CLUSTER_START_TIMEOUT_MS, &r->pg_error);
  if (r->pg == NULL) {
    fprintf(stderr, "replcheck: %s\n", r->pg_error.msg);
    return;
  }
  char seconds[32];
  snprintf(seconds, sizeof seconds, "%.2f", pg_cluster_start_seconds(r->pg));
  report_add_property(r->report, "pg_cluster_start_seconds", seconds);
  fprintf(out, "PostgreSQL test cluster on 127.0.0.1:%d (started in %s s)\n",
          pg_cluster_port(r->pg), seconds);
  fflush(out);
}

static int execute(const runner_options_t *o, profile_t *profile, const run_plan_t *plan) {
  FILE *out = o->progress ? o->progress : stdout;
  const char *ck_fork = getenv("CK_FORK");
  bool in_process = ck_fork != NULL && strcmp(ck_fork, "no") == 0;
  uint64_t seed = o->seed_given ? o->seed : (uint64_t)rc_clock_wall_ms();
  const char *tmp = getenv("TMPDIR");
  char run_dir[4096];
  snprintf(run_dir, sizeof run_dir, "%s/replcheck-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (mkdtemp(run_dir) == NULL) {
    fprintf(stderr, "replcheck: cannot create a work directory under %s: %s\n",
            tmp && tmp[0] ? tmp : "/tmp", strerror(errno));
    return RC_EXIT_USAGE;
  }
  sut_become_subreaper(NULL);
  raise_fd_limit();
  report_t *report = report_create("replcheck");
  dispatch_item_t *items = calloc(plan->task_count, sizeof *items);
  if (report == NULL || items == NULL || add_cases(report, plan) != 0) {
    fprintf(stderr, "replcheck: out of memory\n");
    report_destroy(report);
    free(items);
    remove_tree(run_dir);
    return RC_EXIT_FAILED;
  }
  report->strict = o->strict;
  add_properties(report, o, profile, seed);
  for (size_t i = 0; i < plan->task_count; i++)
    items[i] = (dispatch_item_t){.skip = plan->tasks[i].skip_reason != NULL,
                                 .max_attempts = plan->tasks[i].max_attempts};

  run_ctx_t r = {.o = o,
                 .profile = profile,
                 .plan = plan,
                 .report = report,
                 .run_dir = run_dir,
                 .seed = seed,
                 .check_timeout = case_run_check_timeout(profile, o->timeout_factor)};
  print_header(out, o, profile, plan, seed, in_process);
  /* Cluster, then the setup on its template, then the tests' copies of the template. */
  start_pg_cluster(&r, out);
  if (run_setup(out, &r) != 0) {
    pg_cluster_stop(r.pg);
    report_destroy(report);
    free(items);
    return RC_EXIT_SUT_START;
  }
  progress_init(&r.progress, out, o->progress_mode, plan->task_count, in_process ? 1 : o->jobs);
  dispatch_options_t dopts = {.jobs = o->jobs, .in_process = in_process, .result_dir = run_dir};
  dispatch_hooks_t hooks = {.arg = &r,
                            .run = hook_run,
                            .abandon = hook_abandon,
                            .interrupted = hook_interrupted,
                            .finished = hook_finished};
  dispatch_stats_t stats;
  rc_error_t err;
  int64_t start = rc_clock_mono_ms();
  int exit_code;
  int dispatched = dispatch_run(&dopts, items, plan->task_count, report->cases, &hooks, &stats, &err);
  /* Before finish_run removes the run directory the cluster lives in. */
  pg_cluster_stop(r.pg);
  r.pg = NULL;
  if (dispatched != 0) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    exit_code = RC_EXIT_FAILED;
  } else {
    report->seconds = (double)(rc_clock_mono_ms() - start) / 1000.0;
    if (stats.interrupt_signal != 0) {
      char sig[16];
      snprintf(sig, sizeof sig, "%s", stats.interrupt_signal == SIGINT ? "SIGINT" : "SIGTERM");
      report_add_property(report, "interrupted", sig);
    }
    exit_code = finish_run(out, &r, &stats);
  }
  report_destroy(report);
  free(items);
  return exit_code;
}

int runner_run(const runner_options_t *o) {
  FILE *out = o->progress ? o->progress : stdout;
  rc_error_t err;
  profile_t *profile = profile_load(o->profile_path, &err);
  if (profile == NULL) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    return RC_EXIT_USAGE;
  }
  /* The profile is ours until the end of the run; scaling it here, before any test
   * process is forked, is what every test then sees. Requirement windows come from
   * the other timing fields and stay as declared. */
  if (o->timeout_factor > 0 && o->timeout_factor != 1.0) {
    profile->timing.startup_timeout_ms =
        scale_ms(profile->timing.startup_timeout_ms, o->timeout_factor);
    profile->timing.shutdown_grace_ms =
        scale_ms(profile->timing.shutdown_grace_ms, o->timeout_factor);
    profile->setup.timeout_ms = scale_ms(profile->setup.timeout_ms, o->timeout_factor);
  }
  run_plan_options_t popts = {.selectors = o->selectors,
                              .selector_count = o->selector_count,
                              .shard_index = o->shard_index,
                              .shard_count = o->shard_count,
                              .repeat = o->repeat,
                              .retry = o->retry,
                              .min_selected = o->min_selected,
                              .expected_failures_path = o->expected_failures_path};
  run_plan_t *plan = run_plan_create(&popts, profile, &err);
  int rc;
  if (plan == NULL) {
    fprintf(stderr, "replcheck: %s\n", err.msg);
    rc = RC_EXIT_USAGE;
  } else if (o->list_only) {
    fprintf(out, "replcheck %s: %zu test(s) would run against %s (%s, %s)", REPLCHECK_VERSION,
            plan->task_count, profile->name, proto_dialect_name(profile->dialect),
            profile_transport_name(profile->transport));
    if (o->shard_count > 1)
      fprintf(out, ", shard %u/%u of %zu selected", o->shard_index, o->shard_count,
              plan->selected_count);
    fputc('\n', out);
    run_plan_print(plan, out);
    rc = RC_EXIT_PASSED;
  } else if (preflight_command(o, profile, &err) != 0) {
    fprintf(stderr, "replcheck: the SUT could not be started: %s (profile %s)\n", err.msg,
            o->profile_path);
    rc = RC_EXIT_SUT_START;
  } else if (interrupt_install() != 0) {
    fprintf(stderr, "replcheck: cannot install the SIGINT/SIGTERM handlers: %s\n", strerror(errno));
    rc = RC_EXIT_FAILED;
  } else {
    rc = execute(o, profile, plan);
    interrupt_restore();
  }
  run_plan_destroy(plan);
  profile_destroy(profile);
  return rc;
}
