/* dispatch: runs the items of a run, one at a time or N at once, retries the ones that
 * may be retried, and stops cleanly on SIGINT/SIGTERM.
 *
 * Each attempt of an item runs in a child process of its own (a "supervisor", in a
 * process group of its own and a child subreaper), which calls the run hook and
 * leaves the result in <result_dir>/result-<item>-<attempt>.json (outcome.h format);
 * the parent starts up to `jobs` of them, collects each result as its supervisor exits
 * and hands it on in completion order. Because supervisors have process groups of
 * their own, a Ctrl-C at the terminal reaches only replcheck, which then decides what
 * to stop (Check's own handler inside a supervisor forwards signals to its process
 * group, which is then the supervisor's, never replcheck's). With in_process set
 * (CK_FORK=no, for valgrind) the hook runs in the calling process, one attempt at a
 * time, and an interrupt takes effect once the running attempt is over.
 *
 * Retries: an attempt that ends FAIL, NON_STRICT or ERROR is run again while the
 * item has attempts left (other items keep running meanwhile); only the last attempt
 * is reported. Its case then carries "RETRIED k times" and the earlier attempts'
 * verdicts and messages in its message.
 *
 * Interrupt (SIGINT/SIGTERM, see interrupt.h, which the caller installs): nothing new
 * starts; running supervisors get SIGTERM (SIGKILL to their group after 5 s), the
 * abandon hook kills what each attempt started, and the parent's remaining children
 * (orphans re-parented to the subreaper) are killed and reaped. Items that were
 * running become SKIP "interrupted while running", items never started become SKIP
 * "not run: interrupted" (items with a skip reason of their own keep it).
 *
 * Threading: one thread; the parent's SIGINT, SIGTERM and SIGCHLD are blocked while
 * dispatch_run() runs and collected with sigtimedwait(). */
#ifndef DISPATCH_H
#define DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "rc_error.h"
#include "report.h"

typedef struct dispatch_item {
  bool skip;        /* its case already says SKIP and why; never run */
  int max_attempts; /* >= 1 */
} dispatch_item_t;

typedef struct dispatch_hooks {
  void *arg;
  /* Runs one attempt (1-based) of an item in the calling process: fills out->verdict,
   * seconds, message, expected, actual, evidence, output (out starts zeroed), and
   * *start_failed when the SUT could not be started. */
  void (*run)(void *arg, size_t item, int attempt, report_case_t *out, bool *start_failed);
  /* Parent side, on interrupt: kills what that attempt started. May run more than once
   * for the same attempt, and before or after its supervisor is gone. */
  void (*abandon)(void *arg, size_t item, int attempt);
  /* Parent side, once, when an interrupt is first acted on, before running attempts are
   * stopped: releases run-wide resources that must not be SIGKILLed with the orphans
   * (the database cluster). May be NULL. */
  void (*interrupted)(void *arg);
  /* Parent side: the item's final case is in cases[item] (also skipped items, when
   * reached, and items interrupted while running). retries = attempts run - 1. */
  void (*finished)(void *arg, size_t item, const report_case_t *c, int retries);
} dispatch_hooks_t;

typedef struct dispatch_options {
  unsigned jobs;          /* parallel supervisors, >= 1 (1 when in_process) */
  bool in_process;        /* run attempts inside this process (CK_FORK=no) */
  const char *result_dir; /* must exist; children's result files go here */
} dispatch_options_t;

typedef struct dispatch_stats {
  size_t executed;       /* items whose last attempt ran to a result */
  size_t start_failures; /* of those, the ones whose SUT could not be started */
  size_t not_run;        /* items SKIPped because of the interrupt (running or not) */
  int interrupt_signal;  /* SIGINT or SIGTERM if the run was interrupted, else 0 */
} dispatch_stats_t;

/* Runs items[0..n), filling the verdict fields of cases[0..n) (whose identity fields
 * the caller has set). Returns 0, or -1 with err when the run could not go on at all
 * (cannot block signals); per-item problems (fork failure, a supervisor that died)
 * become ERROR cases instead. */
int dispatch_run(const dispatch_options_t *options, const dispatch_item_t *items, size_t n,
                 report_case_t *cases, const dispatch_hooks_t *hooks, dispatch_stats_t *stats,
                 rc_error_t *err);

#endif
