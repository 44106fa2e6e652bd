#include "case_run.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outcome.h"
#include "rc_clock.h"
#include "rc_random.h"
#include "sut.h"
#include "testctx.h"

/* The attempt being started; set before srunner_run and inherited through Check's
 * fork (or used in-process with CK_FORK=no). */
typedef struct current_test {
  const case_run_spec_t *spec;
  const char *outcome_path;
} current_test_t;

static current_test_t current;

/* The body of every Check test: one registry row, end to end. */
static void run_current_test(int index) {
  (void)index;
  const case_run_spec_t *spec = current.spec;
  rc_error_t err;
  report_case_t outcome;
  memset(&outcome, 0, sizeof outcome);
  bool start_failed = false;
  sut_become_subreaper(NULL);
  rc_test_t *t =
      rc_test_create(spec->def, spec->profile, spec->bin_dir, spec->work_dir, spec->index, &err);
  if (t == NULL) {
    outcome.verdict = VERDICT_ERROR;
    report_set(&outcome.message, err.msg);
  } else {
    t->seed = spec->seed;
    t->run_seed = spec->run_seed;
    t->torture_level = spec->torture_level;
    t->record_dir = spec->record_dir;
    t->pg = spec->pg;
    t->pg_error = spec->pg_error;
    rc_test_execute(t, &outcome);
    start_failed = t->sut_start_failed;
    rc_test_destroy(t);
  }
  if (outcome_write(current.outcome_path, &outcome, start_failed, &err) != 0)
    ck_abort_msg("%s", err.msg);
  outcome_clear_case(&outcome);
}

int case_run_check_timeout(const profile_t *p, double factor) {
  const profile_timing_t *tm = &p->timing;
  double base = (double)((int64_t)tm->startup_timeout_ms + 2LL * tm->shutdown_grace_ms +
                         4LL * tm->ping_timeout_ms + 4LL * tm->reconnect_max_ms) /
                    1000.0 +
                60.0;
  double scaled = base * (factor > 0 ? factor : 1.0);
  return scaled > INT_MAX / 2 ? INT_MAX / 2 : (int)scaled;
}

void case_run_kill_sut(const char *work_dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/sut.pgid", work_dir);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  long pgid = 0;
  if (fscanf(f, "%ld", &pgid) == 1 && pgid > 1) kill((pid_t)-pgid, SIGKILL);
  fclose(f);
}

/* Kills what a dead test process may have left: the SUT's group and any orphan
 * re-parented to us (we are a subreaper). */
static void reap_leftovers(const char *work_dir) {
  case_run_kill_sut(work_dir);
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

void case_run_work_dir(const char *run_dir, size_t index, const char *id, unsigned repetition,
                       int attempt, char *buf, size_t cap) {
  char safe_id[512], suffix[64] = "";
  snprintf(safe_id, sizeof safe_id, "%s", id);
  for (char *p = safe_id; *p; p++)
    if (*p == '/' || *p == '#') *p = '_';
  if (repetition > 1) snprintf(suffix, sizeof suffix, "-r%u", repetition);
  if (attempt > 1)
    snprintf(suffix + strlen(suffix), sizeof suffix - strlen(suffix), "-a%d", attempt);
  snprintf(buf, cap, "%s/%03zu-%s%s", run_dir, index, safe_id, suffix);
}

uint64_t case_run_seed(uint64_t run_seed, const char *id, unsigned repetition) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over the id */
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ULL;
  }
  return rc_splitmix64(run_seed ^ rc_splitmix64(h ^ repetition));
}

void case_run_execute(const case_run_spec_t *spec, report_case_t *c, bool *start_failed) {
  char outcome_path[4200];
  snprintf(outcome_path, sizeof outcome_path, "%s/outcome.json", spec->work_dir);
  *start_failed = false;
  if (mkdir(spec->work_dir, 0700) != 0) {
    char msg[4300];
    snprintf(msg, sizeof msg, "cannot create %s: %s", spec->work_dir, strerror(errno));
    c->verdict = VERDICT_ERROR;
    report_set(&c->message, msg);
    return;
  }
  current = (current_test_t){.spec = spec, .outcome_path = outcome_path};

  Suite *suite = suite_create("replcheck");
  TCase *tc = tcase_create(spec->def->id);
  /* Check's TTest names the test in its own messages; the id keeps them readable. */
  TTest ttest = {.name = spec->def->id,
                 .fn = run_current_test,
                 .file = spec->def->file,
                 .line = spec->def->line};
  tcase_add_loop_test(tc, &ttest, spec->index, spec->index + 1);
  tcase_set_timeout(tc, spec->check_timeout_seconds);
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
  current = (current_test_t){0};

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
  reap_leftovers(spec->work_dir);
}
