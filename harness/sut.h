/* sut: starts and stops the implementation under test as a real process.
 *
 * The SUT runs in its own process group with its stdout and stderr appended to an
 * output file. sut_start() reports a command that cannot be executed (not found, not
 * executable) as an error instead of a child that dies quietly. sut_stop() sends
 * SIGTERM to the whole group, waits up to a grace period, then SIGKILLs the group;
 * processes that escaped the group (setsid, double fork) are found through the
 * child-subreaper mechanism (the caller's process becomes their parent) and killed
 * too, so no process of the SUT survives a test.
 *
 * Ownership: sut_t belongs to the caller; sut_destroy() stops the SUT hard if it is
 * still running. One thread; the calling process must reap only through this module
 * (do not call wait() on other children while a sut_t is alive; waitpid() on a
 * specific pid the caller started itself is fine).
 *
 * Which processes are the SUT's. The module only ever waits for specific pids, never
 * wait(-1), and kills and reaps only processes it attributes to a SUT:
 *   1. its main process (pid and start time recorded at sut_start);
 *   2. members of its process group (pgid = main pid), unless that pid number has
 *      visibly been reused by another process;
 *   3. processes seen as its descendants by an earlier scan during the same stop;
 *   4. direct children of the caller (orphans re-parented to the subreaper) that
 *      started after the SUT, are not in the caller's own process group, were not
 *      children of the caller when sut_start() ran, and are not the main process or
 *      group members of another live sut_t;
 *   5. descendants of any of these.
 * Consequence for callers: helpers the caller starts itself (database, redis, xmllint)
 * are left alone if they run in the caller's process group or were started before
 * the SUT. A helper started after the SUT in a group or session of its own would be
 * mistaken for an escaped orphan; start such helpers before the SUT. With several
 * SUTs alive at once, an orphan that escaped one of them is attributed to whichever
 * is stopped first. */
#ifndef SUT_H
#define SUT_H

#include <stdbool.h>
#include <sys/types.h>

#include "rc_error.h"

typedef struct sut sut_t;

typedef struct sut_spec {
  char *const *argv;       /* NULL-terminated; argv[0] is looked up in PATH if it has no '/' */
  char *const *env_extra;  /* NULL-terminated "NAME=value" added to the environment, or NULL */
  const char *work_dir;    /* working directory of the SUT (must exist) */
  const char *output_path; /* file receiving the SUT's stdout and stderr (created/appended) */
} sut_spec_t;

/* Makes the calling process a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
 * orphaned SUT descendants are re-parented to it and sut_stop() can kill them.
 * Call once per test process before sut_start(). Returns 0 or -1. */
int sut_become_subreaper(rc_error_t *err);

/* Starts the SUT. Returns NULL with err filled when the command cannot be run:
 * "SUT command 'x' not found in PATH", "... is not executable", fork failures.
 * argv[0] without '/' is looked up in the PATH of the SUT's environment (env_extra's
 * PATH if it sets one, as env(1) does); a relative path is taken relative to the
 * caller's working directory, not work_dir. The SUT gets stdin from /dev/null, no
 * descriptor above 2, default signal dispositions and an empty signal mask. */
sut_t *sut_start(const sut_spec_t *spec, rc_error_t *err);

pid_t sut_pid(const sut_t *sut);

/* Non-blocking: true if the SUT's main process has exited; *status (if non-NULL)
 * gets the wait status. Reaps it. If the process was reaped behind this module's back
 * (a contract violation), it counts as exited with status -1. */
bool sut_has_exited(sut_t *sut, int *status);

/* Describes an exit status: "exited with status 3", "killed by signal 9 (SIGKILL)".
 * Always NUL-terminates when cap > 0 (truncating); does nothing when cap is 0. */
void sut_describe_status(int status, char *buf, size_t cap);

typedef struct sut_stop_result {
  bool was_running;    /* the main process was alive when stop began */
  bool exited_on_term; /* it exited within the grace period after SIGTERM */
  bool killed;         /* SIGKILL was needed for the group or stragglers */
  int status;          /* wait status of the main process */
  double seconds;      /* time from SIGTERM to exit */
  int stragglers;      /* processes outside the group that had to be killed */
} sut_stop_result_t;

/* Stops the SUT: SIGTERM to the group, up to grace_ms for the main process to exit,
 * then SIGKILL to the group; then kills and reaps any remaining descendant. Safe to
 * call when the SUT has already exited, and more than once. result may be NULL.
 * Returns 0, or -1 with err if some process could not be reaped within a hard bound
 * (5 s after SIGKILL) or /proc could not be read. */
int sut_stop(sut_t *sut, int grace_ms, sut_stop_result_t *result, rc_error_t *err);

/* Counts the SUT's processes still alive, signalling none: *group gets the live
 * members of its process group (the main process included while it runs), *outside the
 * live processes attributed to it outside the group (rules above). Reaps attributed
 * zombies that are the caller's children. Returns 0, or -1 with err when /proc cannot
 * be read (the counts then cover only the main process). Either pointer may be NULL. */
int sut_survivors(sut_t *sut, int *group, int *outside, rc_error_t *err);

/* Stops hard (grace 0) if still running, then frees. NULL is fine. */
void sut_destroy(sut_t *sut);

#endif
