#include "dispatch.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "interrupt.h"
#include "outcome.h"
#include "rc_clock.h"
#include "sut.h"

/* How long stopped supervisors get to exit after SIGTERM, and again after SIGKILL. */
#define DISPATCH_STOP_GRACE_MS 5000
/* Longest sleep between looks at the children (SIGCHLD usually wakes us first). */
#define DISPATCH_TICK_MS 200

typedef struct item_state {
  int attempts;      /* attempts that produced a result */
  double seconds;    /* summed over those attempts */
  char *history;     /* earlier attempts: "attempt 1: FAIL KA-01: ..." */
  bool start_failed; /* of the latest attempt */
  bool finished;     /* reported through the finished hook, or marked not run */
  bool abandoned;    /* was running when the run was interrupted */
  int abandoned_attempt;
} item_state_t;

typedef struct slot {
  pid_t pid; /* 0 = free */
  size_t item;
  int attempt;
  int64_t started_ms;
} slot_t;

typedef struct dispatcher {
  const dispatch_options_t *o;
  const dispatch_item_t *items;
  size_t n;
  report_case_t *cases;
  const dispatch_hooks_t *hooks;
  dispatch_stats_t *stats;
  item_state_t *state;
  size_t *retry; /* FIFO of items waiting for another attempt */
  size_t retry_head, retry_count;
  size_t next; /* first item never picked */
  slot_t *slots;
  unsigned running;
  sigset_t watched;  /* SIGINT, SIGTERM, SIGCHLD */
  sigset_t old_mask; /* the caller's, restored in supervisors and at the end */
} dispatcher_t;

static bool is_failure(verdict_t v) {
  return v == VERDICT_FAIL || v == VERDICT_NON_STRICT || v == VERDICT_ERROR;
}

/* Copies an attempt's outcome into the item's case (identity fields untouched). */
static void take_outcome(report_case_t *dst, const report_case_t *src) {
  dst->verdict = src->verdict;
  dst->seconds = src->seconds;
  report_set(&dst->message, src->message);
  report_set(&dst->expected, src->expected);
  report_set(&dst->actual, src->actual);
  report_set(&dst->evidence, src->evidence);
  report_set(&dst->output, src->output);
}

static void append_history(item_state_t *st, int attempt, const report_case_t *c) {
  char *joined = NULL;
  if (asprintf(&joined, "%s%sattempt %d: %s%s%s", st->history ? st->history : "",
               st->history ? "; " : "", attempt, verdict_name(c->verdict), c->message ? ": " : "",
               c->message ? c->message : "") < 0)
    return;
  free(st->history);
  st->history = joined;
}

/* Reports the item with its latest attempt as the outcome. */
static void finish_item(dispatcher_t *d, size_t item, const char *extra_note) {
  item_state_t *st = &d->state[item];
  report_case_t *c = &d->cases[item];
  c->seconds = st->seconds;
  if (st->attempts > 1 || extra_note != NULL) {
    char *msg = NULL;
    char retried[64] = "";
    if (st->attempts > 1) snprintf(retried, sizeof retried, "RETRIED %d times", st->attempts - 1);
    const char *history = st->history ? st->history : "";
    int rc;
    if (c->verdict == VERDICT_PASS)
      rc = asprintf(&msg, "%s; earlier attempts: %s", retried, history);
    else
      rc = asprintf(&msg, "%s (%s%s%s%s%s)", c->message ? c->message : verdict_name(c->verdict),
                    retried, retried[0] && history[0] ? "; earlier attempts: " : "", history,
                    extra_note && (retried[0] || history[0]) ? "; " : "",
                    extra_note ? extra_note : "");
    if (rc >= 0) {
      report_set(&c->message, msg);
      free(msg);
    }
  }
  st->finished = true;
  d->stats->executed++;
  if (st->start_failed) d->stats->start_failures++;
  if (d->hooks->finished) d->hooks->finished(d->hooks->arg, item, c, st->attempts - 1);
}

/* An attempt produced an outcome: retry it, or report the item. */
static void conclude(dispatcher_t *d, size_t item, const report_case_t *outcome,
                     bool start_failed) {
  item_state_t *st = &d->state[item];
  /* The case holds the latest attempt; the ones before it go to the history. */
  if (st->attempts > 0) append_history(st, st->attempts, &d->cases[item]);
  st->attempts++;
  st->seconds += outcome->seconds > 0 ? outcome->seconds : 0;
  st->start_failed = start_failed;
  take_outcome(&d->cases[item], outcome);
  if (is_failure(outcome->verdict) && st->attempts < d->items[item].max_attempts &&
      !interrupt_requested()) {
    d->retry[(d->retry_head + d->retry_count++) % d->n] = item;
    return;
  }
  finish_item(d, item, NULL);
}

/* The next item to start, or false. Skipped items met on the way are reported. */
static bool pick(dispatcher_t *d, size_t *item) {
  if (d->retry_count > 0) {
    *item = d->retry[d->retry_head];
    d->retry_head = (d->retry_head + 1) % d->n;
    d->retry_count--;
    return true;
  }
  while (d->next < d->n) {
    size_t i = d->next++;
    if (!d->items[i].skip) {
      *item = i;
      return true;
    }
    d->state[i].finished = true;
    if (d->hooks->finished) d->hooks->finished(d->hooks->arg, i, &d->cases[i], 0);
  }
  return false;
}

static void result_path(const dispatcher_t *d, size_t item, int attempt, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/result-%zu-%d.json", d->o->result_dir, item, attempt);
}

/* ---- supervisors ------------------------------------------------------------------ */

static void supervisor_main(dispatcher_t *d, size_t item, int attempt, const char *path) {
  setpgid(0, 0);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGINT, &dfl, NULL);
  sigaction(SIGTERM, &dfl, NULL);
  sigprocmask(SIG_SETMASK, &d->old_mask, NULL);
  /* Orphans of a test that died come here, where the test's own cleanup reaps them. */
  sut_become_subreaper(NULL);
  report_case_t c;
  memset(&c, 0, sizeof c);
  bool start_failed = false;
  d->hooks->run(d->hooks->arg, item, attempt, &c, &start_failed);
  rc_error_t err;
  int rc = outcome_write(path, &c, start_failed, &err);
  if (rc != 0) fprintf(stderr, "replcheck: %s\n", err.msg);
  _exit(rc == 0 ? 0 : 1);
}

static void start_supervisor(dispatcher_t *d, size_t item) {
  int attempt = d->state[item].attempts + 1;
  char path[4096];
  result_path(d, item, attempt, path, sizeof path);
  unlink(path);
  fflush(NULL); /* the child must not write our buffered output a second time */
  pid_t pid = fork();
  if (pid == 0) supervisor_main(d, item, attempt, path);
  if (pid < 0) {
    report_case_t c;
    memset(&c, 0, sizeof c);
    c.verdict = VERDICT_ERROR;
    char msg[256];
    snprintf(msg, sizeof msg, "cannot start a process for the test: %s", strerror(errno));
    report_set(&c.message, msg);
    conclude(d, item, &c, false);
    outcome_clear_case(&c);
    return;
  }
  setpgid(pid, pid); /* also here, so a kill of the group cannot miss it */
  for (unsigned s = 0; s < d->o->jobs; s++) {
    if (d->slots[s].pid == 0) {
      d->slots[s] = (slot_t){pid, item, attempt, rc_clock_mono_ms()};
      break;
    }
  }
  d->running++;
}

static void mark_abandoned(dispatcher_t *d, const slot_t *s) {
  item_state_t *st = &d->state[s->item];
  report_case_t *c = &d->cases[s->item];
  int64_t ms = rc_clock_mono_ms() - s->started_ms;
  if (st->attempts > 0) {
    /* A retry was cut short: the failure before it stands. */
    st->seconds += (double)ms / 1000.0;
    finish_item(d, s->item, "interrupted during its retry");
    return;
  }
  char msg[160];
  /* Integer arithmetic: messages never depend on the locale. */
  long long tenths = (long long)((ms + 50) / 100);
  snprintf(msg, sizeof msg, "interrupted while running (after %lld.%llds); no verdict", tenths / 10,
           tenths % 10);
  c->verdict = VERDICT_SKIP;
  c->seconds = (double)ms / 1000.0;
  report_set(&c->message, msg);
  report_set(&c->expected, NULL);
  report_set(&c->actual, NULL);
  report_set(&c->evidence, NULL);
  report_set(&c->output, NULL);
  st->finished = true;
  d->stats->not_run++;
  if (d->hooks->finished) d->hooks->finished(d->hooks->arg, s->item, c, 0);
}

/* A supervisor exited: turn what it left into an outcome. While stopping, one that
 * left nothing was cut short by us and its item is marked as interrupted. */
static void collect(dispatcher_t *d, slot_t *s, int status, bool stopping) {
  char path[4096];
  result_path(d, s->item, s->attempt, path, sizeof path);
  report_case_t c;
  memset(&c, 0, sizeof c);
  bool start_failed = false;
  rc_error_t err = {{0}};
  bool exited_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  bool ok = exited_ok && outcome_read(path, &c, &start_failed, &err) == 0;
  unlink(path);
  slot_t done = *s;
  s->pid = 0;
  d->running--;
  if (!ok && stopping) {
    d->state[done.item].abandoned = true;
    d->state[done.item].abandoned_attempt = done.attempt;
    mark_abandoned(d, &done);
  } else {
    if (!ok) {
      char how[128], msg[1400];
      sut_describe_status(status, how, sizeof how);
      snprintf(msg, sizeof msg, "the process running the test %s without leaving a result%s%s", how,
               exited_ok ? ": " : "", exited_ok ? err.msg : "");
      outcome_clear_case(&c);
      c.verdict = VERDICT_ERROR;
      c.seconds = (double)(rc_clock_mono_ms() - done.started_ms) / 1000.0;
      report_set(&c.message, msg);
    }
    conclude(d, done.item, &c, start_failed);
  }
  outcome_clear_case(&c);
}

/* Collects every supervisor that has exited; returns true if there was one. Other
 * children (orphans re-parented to us) are reaped and ignored. */
static bool reap(dispatcher_t *d, bool stopping) {
  bool any = false;
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (unsigned s = 0; s < d->o->jobs; s++) {
      if (d->slots[s].pid == pid) {
        collect(d, &d->slots[s], status, stopping);
        any = true;
        break;
      }
    }
  }
  return any;
}

static void wait_for_signal(dispatcher_t *d, int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  int sig = sigtimedwait(&d->watched, NULL, &ts);
  if (sig == SIGINT || sig == SIGTERM) interrupt_note(sig);
}

/* Kills and reaps every remaining child of ours: what a killed test left behind. */
static void kill_orphans(dispatcher_t *d, int64_t deadline_ms) {
  pid_t self = getpid();
  for (;;) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    size_t found = 0;
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while (proc != NULL && (e = readdir(proc)) != NULL) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      char path[300], stat[512];
      snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
      FILE *f = fopen(path, "r");
      if (f == NULL) continue;
      size_t len = fread(stat, 1, sizeof stat - 1, f);
      fclose(f);
      stat[len] = '\0';
      const char *close = strrchr(stat, ')');
      long ppid = 0, pgrp = 0;
      char state;
      if (close == NULL || sscanf(close + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
      if (ppid != (long)self) continue;
      pid_t pid = (pid_t)atol(e->d_name);
      if (pgrp == (long)pid) kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      found++;
    }
    if (proc != NULL) closedir(proc);
    if (found == 0 || rc_clock_mono_ms() >= deadline_ms) break;
    wait_for_signal(d, 20);
  }
}

/* Interrupted: stop what runs, keep what finished meanwhile. */
static void stop_running(dispatcher_t *d) {
  if (d->hooks->interrupted) d->hooks->interrupted(d->hooks->arg);
  for (unsigned s = 0; s < d->o->jobs; s++) {
    if (d->slots[s].pid == 0) continue;
    kill(-d->slots[s].pid, SIGTERM);
    if (d->hooks->abandon) d->hooks->abandon(d->hooks->arg, d->slots[s].item, d->slots[s].attempt);
  }
  for (int round = 0; round < 2 && d->running > 0; round++) {
    if (round == 1) {
      for (unsigned s = 0; s < d->o->jobs; s++) {
        if (d->slots[s].pid == 0) continue;
        kill(-d->slots[s].pid, SIGKILL);
        kill(d->slots[s].pid, SIGKILL);
      }
    }
    int64_t deadline = rc_clock_mono_ms() + DISPATCH_STOP_GRACE_MS;
    while (d->running > 0 && rc_clock_mono_ms() < deadline)
      if (!reap(d, true)) wait_for_signal(d, 50);
  }
  for (unsigned s = 0; s < d->o->jobs; s++) {
    if (d->slots[s].pid == 0) continue;
    /* Unkillable within 10 s (stuck in the kernel): report it and move on. */
    slot_t gone = d->slots[s];
    d->slots[s].pid = 0;
    d->running--;
    d->state[gone.item].abandoned = true;
    d->state[gone.item].abandoned_attempt = gone.attempt;
    mark_abandoned(d, &gone);
  }
  /* A SUT that was still starting may have written its process group file late. */
  for (size_t i = 0; i < d->n; i++)
    if (d->state[i].abandoned && d->hooks->abandon)
      d->hooks->abandon(d->hooks->arg, i, d->state[i].abandoned_attempt);
  kill_orphans(d, rc_clock_mono_ms() + DISPATCH_STOP_GRACE_MS);
}

/* After an interrupt: items waiting for a retry are reported with their last failure,
 * items never started are marked as not run. */
static void settle_rest(dispatcher_t *d) {
  while (d->retry_count > 0) {
    size_t item = d->retry[d->retry_head];
    d->retry_head = (d->retry_head + 1) % d->n;
    d->retry_count--;
    finish_item(d, item, "interrupted before its retry");
  }
  for (size_t i = d->next; i < d->n; i++) {
    if (d->items[i].skip || d->state[i].finished) continue;
    d->cases[i].verdict = VERDICT_SKIP;
    report_set(&d->cases[i].message, "not run: interrupted");
    d->state[i].finished = true;
    d->stats->not_run++;
  }
  d->next = d->n;
}

static void run_forked(dispatcher_t *d) {
  for (;;) {
    while (!interrupt_requested() && d->running < d->o->jobs) {
      size_t item;
      if (!pick(d, &item)) break;
      start_supervisor(d, item);
    }
    if (interrupt_requested()) break;
    if (d->running == 0 && d->retry_count == 0 && d->next >= d->n) break;
    if (!reap(d, false)) wait_for_signal(d, DISPATCH_TICK_MS);
  }
  if (interrupt_requested()) {
    stop_running(d);
    settle_rest(d);
  }
}

static void run_in_process(dispatcher_t *d) {
  size_t item;
  while (!interrupt_requested() && pick(d, &item)) {
    report_case_t c;
    memset(&c, 0, sizeof c);
    bool start_failed = false;
    int attempt = d->state[item].attempts + 1;
    d->hooks->run(d->hooks->arg, item, attempt, &c, &start_failed);
    conclude(d, item, &c, start_failed);
    outcome_clear_case(&c);
  }
  if (interrupt_requested()) settle_rest(d);
}

int dispatch_run(const dispatch_options_t *o, const dispatch_item_t *items, size_t n,
                 report_case_t *cases, const dispatch_hooks_t *hooks, dispatch_stats_t *stats,
                 rc_error_t *err) {
  memset(stats, 0, sizeof *stats);
  if (n == 0) return 0;
  dispatch_options_t options = *o;
  if (options.jobs == 0 || options.in_process) options.jobs = 1;
  dispatcher_t d = {
      .o = &options, .items = items, .n = n, .cases = cases, .hooks = hooks, .stats = stats};
  d.state = calloc(n, sizeof *d.state);
  d.retry = calloc(n, sizeof *d.retry);
  d.slots = calloc(options.jobs, sizeof *d.slots);
  int rc = 0;
  if (d.state == NULL || d.retry == NULL || d.slots == NULL) {
    rc = rc_error_set(err, "out of memory");
  } else if (options.in_process) {
    run_in_process(&d);
  } else {
    sigemptyset(&d.watched);
    sigaddset(&d.watched, SIGINT);
    sigaddset(&d.watched, SIGTERM);
    sigaddset(&d.watched, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &d.watched, &d.old_mask) != 0) {
      rc = rc_error_set(err, "cannot block signals: %s", strerror(errno));
    } else {
      run_forked(&d);
      sigprocmask(SIG_SETMASK, &d.old_mask, NULL);
    }
  }
  stats->interrupt_signal = interrupt_signal();
  for (size_t i = 0; d.state != NULL && i < n; i++) free(d.state[i].history);
  free(d.state);
  free(d.retry);
  free(d.slots);
  return rc;
}
