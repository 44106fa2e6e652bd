/* Unit tests of harness/sut: real processes started from /bin/sh scripts written into a
 * temporary directory. Every wait is bounded by a deadline on rc_clock_mono_ms. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rc_clock.h"
#include "sut.h"
#include "test_support.h"

enum { WAIT_MS = 10000 };

static char *tmp_dir;

/* One poll step of a bounded wait loop. */
static void nap(void) {
  struct timespec ts = {0, 5 * 1000000L};
  nanosleep(&ts, NULL);
}

/* Failure messages in the project's Requirement / Expected / Actual shape. */
static const char *actual(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *actual(const char *fmt, ...) {
  static char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}
#define REQUIRE(cond, requirement, ...)                                                       \
  ck_assert_msg((cond), "\nRequirement: %s\nExpected: %s\nActual: %s", (requirement), #cond, \
                actual(__VA_ARGS__))

static void setup(void) {
  rc_error_t err = {{0}};
  ck_assert_msg(sut_become_subreaper(&err) == 0, "%s", err.msg);
  tmp_dir = test_make_temp_dir("test_sut");
  ck_assert_ptr_nonnull(tmp_dir);
}

static void teardown(void) {
  test_remove_tree(tmp_dir);
  free(tmp_dir);
  tmp_dir = NULL;
}

/* Path of name inside the test's temporary directory; the caller frees it. */
static char *tmp_path(const char *name) {
  char *p = test_path(tmp_dir, name);
  ck_assert_ptr_nonnull(p);
  return p;
}

/* Writes a /bin/sh script (or raw content when body starts with "#!") and chmods it. */
static char *write_script(const char *name, const char *body, mode_t mode) {
  char *path = tmp_path(name);
  char *text = malloc(strlen(body) + 16);
  ck_assert_ptr_nonnull(text);
  sprintf(text, "%s%s", strncmp(body, "#!", 2) == 0 ? "" : "#!/bin/sh\n", body);
  ck_assert_int_eq(test_write_file(path, text, strlen(text)), 0);
  ck_assert_int_eq(chmod(path, mode), 0);
  free(text);
  return path;
}

static void make_tmp_subdir(const char *name) {
  char *path = tmp_path(name);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  free(path);
}

static sut_t *start_argv(char *const *argv, char *const *env_extra, const char *work_dir,
                         const char *output_name, rc_error_t *err) {
  char *out = tmp_path(output_name);
  sut_spec_t spec = {.argv = argv, .env_extra = env_extra, .work_dir = work_dir,
                     .output_path = out};
  sut_t *sut = sut_start(&spec, err);
  free(out);
  return sut;
}

static sut_t *start_in(const char *command, char *const *env_extra, const char *work_dir,
                       rc_error_t *err) {
  char *argv[] = {(char *)command, NULL};
  return start_argv(argv, env_extra, work_dir, "out.log", err);
}

/* Starts command expecting sut_start to refuse it; an unexpected SUT is destroyed
 * before the failure is reported, so one failure does not leak into the next test. */
static void expect_start_error(const char *command, char *const *env_extra, const char *work_dir,
                               const char *requirement, const char *expected, bool exact) {
  rc_error_t err = {{0}};
  sut_t *sut = start_in(command, env_extra, work_dir, &err);
  bool started = sut != NULL;
  sut_destroy(sut);
  bool matches = exact ? strcmp(err.msg, expected) == 0 : strstr(err.msg, expected) != NULL;
  REQUIRE(!started && matches, requirement, "%s (wanted %s'%s')",
          started ? "sut_start succeeded" : err.msg, exact ? "" : "a message containing ",
          expected);
}

static sut_t *start_script(const char *script_path) {
  rc_error_t err = {{0}};
  sut_t *sut = start_in(script_path, NULL, tmp_dir, &err);
  REQUIRE(sut != NULL, "an executable script starts", "sut_start failed: %s", err.msg);
  return sut;
}

/* Waits until tmp_dir/name contains needle and returns its content. The scripts write
 * their files through a rename, so a file that exists is complete. */
static char *wait_for_text(const char *name, const char *needle) {
  char *path = tmp_path(name);
  int64_t deadline = rc_clock_mono_ms() + WAIT_MS;
  char *text = NULL;
  for (;;) {
    text = test_read_file(path, NULL);
    if ((text != NULL && strstr(text, needle) != NULL) || rc_clock_mono_ms() >= deadline) break;
    free(text);
    nap();
  }
  REQUIRE(text != NULL && strstr(text, needle) != NULL, "the SUT writes what it is told to",
          "'%s' not in %s within %d ms: %s", needle, path, (int)WAIT_MS, text ? text : "(none)");
  free(path);
  return text;
}

static char *wait_for_file(const char *name) { return wait_for_text(name, "\n"); }

static void wait_for_output(const char *needle) { free(wait_for_text("out.log", needle)); }

static pid_t wait_for_pid_file(const char *name) {
  char *text = wait_for_file(name);
  pid_t pid = (pid_t)strtol(text, NULL, 10);
  free(text);
  REQUIRE(pid > 1, "the pid file holds a pid", "pid %d in %s", (int)pid, name);
  return pid;
}

/* Reads state, ppid and pgid of pid from /proc; false if the process does not exist. */
static bool proc_info(pid_t pid, char *state, pid_t *ppid, pid_t *pgid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  char *text = test_read_file(path, NULL);
  if (text == NULL) return false;
  char *p = strrchr(text, ')');
  int parent = 0, group = 0;
  char st = '?';
  bool ok = p != NULL && sscanf(p + 1, " %c %d %d", &st, &parent, &group) == 3;
  free(text);
  if (ok && state) *state = st;
  if (ok && ppid) *ppid = parent;
  if (ok && pgid) *pgid = group;
  return ok;
}

static void require_gone(pid_t pid, const char *what) {
  char state = '?';
  pid_t ppid = 0;
  bool present = proc_info(pid, &state, &ppid, NULL);
  REQUIRE(!present, "no process started by the SUT survives sut_stop",
          "%s (pid %d) still present: state %c, parent %d", what, (int)pid, state, (int)ppid);
}

static void require_alive(pid_t pid, const char *what) {
  char state = '?';
  bool present = proc_info(pid, &state, NULL, NULL);
  REQUIRE(present && state != 'Z', "sut_stop leaves the caller's own processes alone",
          "%s (pid %d): %s, state %c", what, (int)pid, present ? "present" : "gone", state);
}

/* The test process has no child at all: nothing leaked and nothing unreaped. */
static void require_no_children(void) {
  pid_t r = waitpid(-1, NULL, WNOHANG);
  int saved = errno;
  REQUIRE(r == -1 && saved == ECHILD, "a failed start leaves no child behind",
          "waitpid(-1) returned %d (%s)", (int)r, r < 0 ? strerror(saved) : "a child exists");
}

static bool wait_exited(sut_t *sut, int *status) {
  int64_t deadline = rc_clock_mono_ms() + WAIT_MS;
  for (;;) {
    if (sut_has_exited(sut, status)) return true;
    if (rc_clock_mono_ms() >= deadline) return false;
    nap();
  }
}

static void stop_ok(sut_t *sut, int grace_ms, sut_stop_result_t *result) {
  rc_error_t err = {{0}};
  int rc = sut_stop(sut, grace_ms, result, &err);
  REQUIRE(rc == 0, "sut_stop succeeds", "sut_stop returned %d: %s", rc, err.msg);
}

/* A child of the test itself (not of any SUT) running sleep. Its stdio is /dev/null so
 * that, should a failing test leave it behind, it holds no pipe of the test runner. */
static pid_t spawn_own_sleeper(bool own_group) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (own_group) setpgid(0, 0);
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0)
      _exit(127);
    execl("/bin/sleep", "sleep", "120", (char *)NULL);
    _exit(127);
  }
  if (own_group) setpgid(pid, pid);
  return pid;
}

static void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  int64_t deadline = rc_clock_mono_ms() + WAIT_MS;
  pid_t r = 0;
  while ((r = waitpid(pid, NULL, WNOHANG)) == 0 && rc_clock_mono_ms() < deadline) {
    nap();
  }
  ck_assert_int_eq(r, pid);
}

static const char *LOOP_ON_TERM_EXIT = "trap 'echo got TERM; exit 0' TERM\n"
                                       "while :; do sleep 0.05; done\n";

/* SUT-01: a SUT that exits on SIGTERM is stopped within the grace period, without
 * SIGKILL, and its stdout and stderr are appended to the output file. */
START_TEST(test_start_stop_captures_output) {
  char *out = tmp_path("out.log");
  ck_assert_int_eq(test_write_file(out, "previous run\n", 13), 0);
  char *script = write_script("run.sh",
                              "echo \"started $$\"\n"
                              "echo 'to stderr' >&2\n"
                              "trap 'echo got TERM; exit 0' TERM\n"
                              "while :; do sleep 0.05; done\n",
                              0755);
  sut_t *sut = start_script(script);
  char started[64];
  snprintf(started, sizeof started, "started %d\n", (int)sut_pid(sut));
  wait_for_output(started);
  wait_for_output("to stderr\n");
  REQUIRE(!sut_has_exited(sut, NULL), "a running SUT is not reported as exited", "exited");

  sut_stop_result_t result;
  stop_ok(sut, 5000, &result);
  REQUIRE(result.was_running && result.exited_on_term && !result.killed,
          "a SUT that honours SIGTERM is not SIGKILLed", "was_running=%d exited_on_term=%d "
          "killed=%d", result.was_running, result.exited_on_term, result.killed);
  REQUIRE(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0,
          "the SUT's exit status is reported", "status 0x%x", (unsigned)result.status);
  REQUIRE(result.stragglers == 0 && result.seconds >= 0 && result.seconds < 5.0,
          "a clean stop has no stragglers", "stragglers=%d seconds=%.3f", result.stragglers,
          result.seconds);
  char *text = test_read_file(out, NULL);
  ck_assert_ptr_nonnull(text);
  REQUIRE(strncmp(text, "previous run\n", 13) == 0 && strstr(text, started) &&
              strstr(text, "to stderr\n") && strstr(text, "got TERM\n"),
          "output is appended, stdout and stderr both", "output file: %s", text);
  require_gone(sut_pid(sut), "the SUT");
  free(text);
  sut_destroy(sut);
  free(script);
  free(out);
}
END_TEST

/* SUT-02: a SUT that ignores SIGTERM is SIGKILLed once the grace period is over. */
START_TEST(test_ignores_term_is_killed_after_grace) {
  char *script = write_script("stubborn.sh",
                              "trap '' TERM\n"
                              "echo $$ > main.tmp; mv main.tmp main.pid\n"
                              "while :; do sleep 0.05; done\n",
                              0755);
  sut_t *sut = start_script(script);
  pid_t main_pid = wait_for_pid_file("main.pid");
  REQUIRE(main_pid == sut_pid(sut), "sut_pid is the script's own pid", "%d vs %d",
          (int)main_pid, (int)sut_pid(sut));
  sut_stop_result_t result;
  stop_ok(sut, 200, &result);
  char described[128];
  sut_describe_status(result.status, described, sizeof described);
  REQUIRE(result.was_running && !result.exited_on_term && result.killed,
          "SIGKILL follows an ignored SIGTERM", "was_running=%d exited_on_term=%d killed=%d",
          result.was_running, result.exited_on_term, result.killed);
  REQUIRE(strcmp(described, "killed by signal 9 (SIGKILL)") == 0,
          "the status says it was SIGKILLed", "%s", described);
  REQUIRE(result.seconds >= 0.2 && result.seconds < 5.2 && result.stragglers == 0,
          "SIGKILL comes only after the grace period", "seconds=%.3f stragglers=%d",
          result.seconds, result.stragglers);
  require_gone(sut_pid(sut), "the SUT");
  sut_destroy(sut);
  free(script);
}
END_TEST

/* SUT-02b: a stopped SUT (SIGSTOP) is continued, so it can honour SIGTERM in time. Only
 * the main process is stopped: dash spawns with vfork, and a child stopped before its
 * exec would hold the shell in state D instead of T. */
START_TEST(test_stopped_sut_is_continued) {
  char *script = write_script("stopped.sh", LOOP_ON_TERM_EXIT, 0755);
  sut_t *sut = start_script(script);
  ck_assert_int_eq(kill(sut_pid(sut), SIGSTOP), 0);
  char state = '?';
  int64_t deadline = rc_clock_mono_ms() + WAIT_MS;
  while (proc_info(sut_pid(sut), &state, NULL, NULL) && state != 'T' &&
         rc_clock_mono_ms() < deadline)
    nap();
  sut_stop_result_t result;
  stop_ok(sut, 5000, &result);
  REQUIRE(state == 'T', "the SUT was stopped before the test stopped it", "state %c", state);
  REQUIRE(result.exited_on_term && !result.killed, "a stopped SUT still exits on SIGTERM",
          "exited_on_term=%d killed=%d", result.exited_on_term, result.killed);
  sut_destroy(sut);
  free(script);
}
END_TEST

/* SUT-03: children the SUT forks into its own group die with it, even when they ignore
 * SIGTERM after the main process has exited. */
START_TEST(test_group_members_are_killed) {
  char *script = write_script(
      "forks.sh",
      "trap 'exit 0' TERM\n"
      "for n in 1 2; do\n"
      "  sh -c 'trap \"\" TERM; echo $$ > gc$0.tmp; mv gc$0.tmp gc$0.pid;"
      " while :; do sleep 0.05; done' $n &\n"
      "done\n"
      "while :; do sleep 0.05; done\n",
      0755);
  sut_t *sut = start_script(script);
  pid_t gc1 = wait_for_pid_file("gc1.pid"), gc2 = wait_for_pid_file("gc2.pid");
  pid_t pgid = 0;
  REQUIRE(proc_info(gc1, NULL, NULL, &pgid) && pgid == sut_pid(sut),
          "the grandchild runs in the SUT's group", "pgid %d, SUT %d", (int)pgid,
          (int)sut_pid(sut));
  sut_stop_result_t result;
  stop_ok(sut, 300, &result);
  REQUIRE(result.exited_on_term && result.killed && result.stragglers == 0,
          "group-mates that ignore SIGTERM are SIGKILLed with the group",
          "exited_on_term=%d killed=%d stragglers=%d", result.exited_on_term, result.killed,
          result.stragglers);
  require_gone(gc1, "grandchild 1");
  require_gone(gc2, "grandchild 2");
  sut_destroy(sut);
  free(script);
}
END_TEST

/* SUT-03b: the grace period belongs to the whole group: a group-mate that needs time
 * to exit on SIGTERM gets it even though the main process exited at once. */
START_TEST(test_group_gets_the_grace_period) {
  char *script = write_script(
      "slowmate.sh",
      "trap 'exit 0' TERM\n"
      "sh -c 'trap \"sleep 0.3; echo done > mate.done; exit 0\" TERM;"
      " echo $$ > mate.tmp; mv mate.tmp mate.pid; while :; do sleep 0.05; done' &\n"
      "while :; do sleep 0.05; done\n",
      0755);
  sut_t *sut = start_script(script);
  pid_t mate = wait_for_pid_file("mate.pid");
  sut_stop_result_t result;
  stop_ok(sut, 5000, &result);
  char *done = tmp_path("mate.done");
  REQUIRE(result.exited_on_term && !result.killed && access(done, F_OK) == 0,
          "a group-mate exiting within the grace period is not SIGKILLed",
          "exited_on_term=%d killed=%d mate.done %s", result.exited_on_term, result.killed,
          access(done, F_OK) == 0 ? "written" : "missing");
  require_gone(mate, "the group-mate");
  sut_destroy(sut);
  free(done);
  free(script);
}
END_TEST

/* SUT-04: a child that left the group with setsid is found and killed, with its own
 * child, and both count as stragglers. */
START_TEST(test_setsid_escapee_is_killed) {
  char *script = write_script(
      "escape.sh",
      "trap 'exit 0' TERM\n"
      "setsid sh -c 'sleep 120 & echo $! > escchild.tmp; mv escchild.tmp escchild.pid;"
      " echo $$ > esc.tmp; mv esc.tmp esc.pid; wait' &\n"
      "while :; do sleep 0.05; done\n",
      0755);
  sut_t *sut = start_script(script);
  pid_t esc = wait_for_pid_file("esc.pid"), esc_child = wait_for_pid_file("escchild.pid");
  pid_t pgid = 0;
  REQUIRE(proc_info(esc, NULL, NULL, &pgid) && pgid != sut_pid(sut),
          "the escapee really left the SUT's group", "pgid %d, SUT %d", (int)pgid,
          (int)sut_pid(sut));
  sut_stop_result_t result;
  stop_ok(sut, 2000, &result);
  REQUIRE(result.exited_on_term && result.killed && result.stragglers == 2,
          "escaped processes are SIGKILLed and counted as stragglers",
          "exited_on_term=%d killed=%d stragglers=%d", result.exited_on_term, result.killed,
          result.stragglers);
  require_gone(esc, "the escaped shell");
  require_gone(esc_child, "the escaped shell's child");
  sut_destroy(sut);
  free(script);
}
END_TEST

/* SUT-05: an orphan already re-parented to the caller (double fork) before the stop
 * is attributed to the SUT and killed. */
START_TEST(test_reparented_orphan_is_killed) {
  char *script = write_script("orphan.sh",
                              "trap 'exit 0' TERM\n"
                              "setsid sh -c 'sleep 120 & echo $! > orphan.tmp;"
                              " mv orphan.tmp orphan.pid'\n"
                              "while :; do sleep 0.05; done\n",
                              0755);
  sut_t *sut = start_script(script);
  pid_t orphan = wait_for_pid_file("orphan.pid");
  int64_t deadline = rc_clock_mono_ms() + WAIT_MS;
  pid_t ppid = 0;
  while (proc_info(orphan, NULL, &ppid, NULL) && ppid != getpid() &&
         rc_clock_mono_ms() < deadline) {
    nap();
  }
  REQUIRE(ppid == getpid(), "the orphan is re-parented to the subreaper", "parent %d, test %d",
          (int)ppid, (int)getpid());
  sut_stop_result_t result;
  stop_ok(sut, 2000, &result);
  REQUIRE(result.exited_on_term && result.stragglers == 1, "the orphan is a straggler",
          "exited_on_term=%d stragglers=%d", result.exited_on_term, result.stragglers);
  require_gone(orphan, "the orphan");
  sut_destroy(sut);
  free(script);
}
END_TEST

/* SUT-05b: without the subreaper, escaped descendants still alive when the stop
 * begins are found through the survey taken before any signal, and killed. */
START_TEST(test_escapees_found_without_subreaper) {
  ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0L, 0L, 0L, 0L), 0);
  char *script = write_script(
      "deep.sh",
      "trap 'exit 0' TERM\n"
      "setsid sh -c 'sh -c \"echo \\$\\$ > deep.tmp; mv deep.tmp deep.pid; exec sleep 120\" &"
      " echo $$ > esc.tmp; mv esc.tmp esc.pid; wait' &\n"
      "while :; do sleep 0.05; done\n",
      0755);
  sut_t *sut = start_script(script);
  pid_t esc = wait_for_pid_file("esc.pid"), deep = wait_for_pid_file("deep.pid");
  sut_stop_result_t result;
  stop_ok(sut, 2000, &result);
  REQUIRE(result.stragglers == 2, "both escaped processes are stragglers", "stragglers=%d",
          result.stragglers);
  /* Their zombies belong to init now; wait (bounded) until they are dead. */
  int64_t deadline = rc_clock_mono_ms() + WAIT_MS;
  char esc_state = '?', deep_state = '?';
  for (;;) {
    bool esc_there = proc_info(esc, &esc_state, NULL, NULL) && esc_state != 'Z';
    bool deep_there = proc_info(deep, &deep_state, NULL, NULL) && deep_state != 'Z';
    if ((!esc_there && !deep_there) || rc_clock_mono_ms() >= deadline) {
      REQUIRE(!esc_there && !deep_there, "escaped processes die without the subreaper",
              "escapee %s (state %c), its child %s (state %c)", esc_there ? "alive" : "dead",
              esc_state, deep_there ? "alive" : "dead", deep_state);
      break;
    }
    nap();
  }
  sut_destroy(sut);
  free(script);
}
END_TEST

/* SUT-06: the caller's own children (started before the SUT in a group of their own,
 * or after it in the caller's group) and other SUTs survive a stop. */
START_TEST(test_callers_children_are_left_alone) {
  char *script = write_script("escape.sh",
                              "trap 'exit 0' TERM\n"
                              "setsid sh -c 'echo $$ > esc.tmp; mv esc.tmp esc.pid;"
                              " exec sleep 120' &\n"
                              "while :; do sleep 0.05; done\n",
                              0755);
  char *other_script = write_script("other.sh", LOOP_ON_TERM_EXIT, 0755);
  /* Spawned right before the SUT, usually within the same clock tick, so that the
   * start-time rule cannot tell them apart and the start-up snapshot must. */
  pid_t before = spawn_own_sleeper(true);
  sut_t *sut = start_script(script);
  /* Started after the SUT, in groups of their own: only their bookkeeping protects them. */
  sut_t *other = start_script(other_script);
  pid_t after = spawn_own_sleeper(false);
  pid_t esc = wait_for_pid_file("esc.pid");
  sut_stop_result_t result;
  stop_ok(sut, 2000, &result);
  REQUIRE(result.stragglers == 1, "only the SUT's escapee is a straggler", "stragglers=%d",
          result.stragglers);
  require_gone(esc, "the escapee");
  require_alive(before, "the test's child started before the SUT");
  require_alive(after, "the test's child started after the SUT");
  require_alive(sut_pid(other), "another SUT");
  REQUIRE(!sut_has_exited(other, NULL), "another SUT keeps running", "it exited");
  kill_and_reap(before);
  kill_and_reap(after);
  stop_ok(other, 5000, &result);
  REQUIRE(result.exited_on_term && !result.killed, "the other SUT then stops cleanly",
          "exited_on_term=%d killed=%d", result.exited_on_term, result.killed);
  sut_destroy(sut);
  sut_destroy(other);
  free(script);
  free(other_script);
}
END_TEST

/* SUT-07: a command that is not in PATH is an error of sut_start. */
START_TEST(test_command_not_found) {
  expect_start_error("replcheck-no-such-command", NULL, tmp_dir,
                     "a missing command is reported by name",
                     "SUT command 'replcheck-no-such-command' not found in PATH", false);
  char *missing = tmp_path("missing");
  char expected[PATH_MAX + 64];
  snprintf(expected, sizeof expected, "SUT command '%s' not found: No such file or directory",
           missing);
  expect_start_error(missing, NULL, tmp_dir, "a missing path is reported", expected, true);
  require_no_children();
  free(missing);
}
END_TEST

/* SUT-08: a command that exists but cannot be executed is an error of sut_start,
 * whether caught before the fork or reported by the child's failed exec. */
START_TEST(test_command_not_executable) {
  char expected[PATH_MAX + 128];
  char *plain = write_script("plain.sh", "exit 0\n", 0644);
  snprintf(expected, sizeof expected, "SUT command '%s' is not executable: Permission denied",
           plain);
  expect_start_error(plain, NULL, tmp_dir, "no execute bit is reported", expected, true);
  expect_start_error(tmp_dir, NULL, tmp_dir, "a directory is not a command",
                     "is not executable: Is a directory", false);

  make_tmp_subdir("bin");
  char *in_path = write_script("bin/noexec", "exit 0\n", 0644);
  char *env_path = malloc(strlen(tmp_dir) + 32);
  sprintf(env_path, "PATH=%s/bin", tmp_dir);
  char *env[] = {env_path, NULL};
  snprintf(expected, sizeof expected,
           "SUT command 'noexec' found in PATH as '%s' but is not executable: Permission denied",
           in_path);
  expect_start_error("noexec", env, tmp_dir, "a PATH hit without execute bit", expected, true);

  char *bad_interp = write_script("badinterp.sh", "#!/nonexistent/interpreter -x\n", 0755);
  snprintf(expected, sizeof expected,
           "SUT command '%s' cannot run: its interpreter '/nonexistent/interpreter' is "
           "missing: No such file or directory", bad_interp);
  expect_start_error(bad_interp, NULL, tmp_dir, "a script's missing interpreter is reported",
                     expected, true);

  /* Executable bit but no known format: only execve in the child can tell, and the
   * CLOEXEC pipe carries its errno back. */
  char *no_shebang = tmp_path("noshebang");
  ck_assert_int_eq(test_write_file(no_shebang, "echo hi\n", 8), 0);
  ck_assert_int_eq(chmod(no_shebang, 0755), 0);
  snprintf(expected, sizeof expected,
           "SUT command '%s' (%s) is not executable: Exec format error (a script needs a "
           "'#!' line)", no_shebang, no_shebang);
  expect_start_error(no_shebang, NULL, tmp_dir, "ENOEXEC from the child's execve is reported",
                     expected, true);
  require_no_children();
  free(plain);
  free(in_path);
  free(env_path);
  free(bad_interp);
  free(no_shebang);
}
END_TEST

/* SUT-09: a SUT that exits at once is seen as exited, its status described, and
 * stopping it afterwards (twice) is harmless. */
START_TEST(test_exits_at_once) {
  char *script = write_script("quick.sh", "echo bye\nexit 3\n", 0755);
  sut_t *sut = start_script(script);
  int status = 0;
  REQUIRE(wait_exited(sut, &status), "an exited SUT is seen as exited", "still running");
  char described[128];
  sut_describe_status(status, described, sizeof described);
  REQUIRE(strcmp(described, "exited with status 3") == 0, "exit status described", "%s",
          described);
  int again = 0;
  REQUIRE(sut_has_exited(sut, &again) && again == status, "the status is kept after the reap",
          "0x%x vs 0x%x", (unsigned)again, (unsigned)status);
  for (int round = 0; round < 2; round++) {
    sut_stop_result_t result;
    stop_ok(sut, 1000, &result);
    REQUIRE(!result.was_running && !result.exited_on_term && !result.killed &&
                result.status == status && result.seconds == 0 && result.stragglers == 0,
            "stopping an exited SUT only reports", "round %d: was_running=%d killed=%d "
            "status=0x%x", round, result.was_running, result.killed, (unsigned)result.status);
  }
  sut_destroy(sut);

  char *signalled = write_script("signalled.sh", "kill -USR1 $$\nsleep 5\n", 0755);
  sut = start_script(signalled);
  REQUIRE(wait_exited(sut, &status), "a signalled SUT is seen as exited", "still running");
  sut_describe_status(status, described, sizeof described);
  REQUIRE(strcmp(described, "killed by signal 10 (SIGUSR1)") == 0, "signal named", "%s",
          described);
  sut_destroy(sut);
  free(script);
  free(signalled);
}
END_TEST

/* Runs argv as a SUT writing to output_name, waits for its exit and returns the output. */
static char *run_to_completion(char *const *argv, const char *output_name) {
  rc_error_t err = {{0}};
  sut_t *sut = start_argv(argv, NULL, tmp_dir, output_name, &err);
  REQUIRE(sut != NULL, "the command starts", "%s", err.msg);
  int status = 0;
  bool exited = wait_exited(sut, &status);
  sut_destroy(sut);
  REQUIRE(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the command succeeds",
          "exited=%d status 0x%x", exited, (unsigned)status);
  char *path = tmp_path(output_name);
  char *text = test_read_file(path, NULL);
  free(path);
  ck_assert_ptr_nonnull(text);
  return text;
}

/* SUT-10: descriptors above 2 are not inherited; stdin is /dev/null; signal
 * dispositions and mask are reset. The SUTs are ls and grep themselves, not a shell,
 * because a shell resets parts of this state on its own. */
START_TEST(test_clean_process_state) {
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(sock, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(bind(sock, (struct sockaddr *)&addr, sizeof addr), 0);
  ck_assert_int_eq(listen(sock, 4), 0);
  int high = dup2(sock, 200);
  int pipe_fds[2];
  ck_assert_int_eq(pipe(pipe_fds), 0);
  REQUIRE(high == 200 && !(fcntl(sock, F_GETFD) & FD_CLOEXEC) &&
              !(fcntl(pipe_fds[0], F_GETFD) & FD_CLOEXEC),
          "the test's descriptors would be inherited without the module's care", "fd %d", high);
  /* The test's own stdin becomes a pipe, so inheriting it would show. */
  int saved_stdin = dup(0);
  ck_assert_int_ge(saved_stdin, 0);
  ck_assert_int_eq(dup2(pipe_fds[0], 0), 0);
  struct sigaction ignore = {.sa_handler = SIG_IGN}, old_pipe, old_usr2;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  sigaction(SIGUSR2, &ignore, &old_usr2);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, &old_mask);

  char *ls_argv[] = {"ls", "-l", "/proc/self/fd", NULL};
  char *fds = run_to_completion(ls_argv, "fds.log");
  char *grep_argv[] = {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status", NULL};
  char *sigs = run_to_completion(grep_argv, "sig.log");

  sigprocmask(SIG_SETMASK, &old_mask, NULL);
  sigaction(SIGPIPE, &old_pipe, NULL);
  sigaction(SIGUSR2, &old_usr2, NULL);
  ck_assert_int_eq(dup2(saved_stdin, 0), 0);
  close(saved_stdin);
  int links = 0;
  for (const char *p = fds; (p = strstr(p, " -> ")) != NULL; p += 4) links++;
  REQUIRE(links == 4 && !strstr(fds, "socket:") && !strstr(fds, "pipe:") &&
              strstr(fds, " 0 -> /dev/null\n"),
          "the SUT gets only stdin (/dev/null), stdout and stderr",
          "the SUT's own fds (0-2 plus ls's directory): %s", fds);
  REQUIRE(strcmp(sigs, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n") == 0,
          "the SUT starts with no blocked or ignored signal", "%s", sigs);
  close(sock);
  close(high);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  free(fds);
  free(sigs);
}
END_TEST

/* SUT-11: the SUT sees the caller's environment plus env_extra (which overrides), and
 * its PATH is the one the command is looked up in. */
START_TEST(test_environment) {
  setenv("REPLCHECK_TEST_INHERITED", "from-caller", 1);
  setenv("REPLCHECK_TEST_OVERRIDE", "old", 1);
  make_tmp_subdir("bin");
  char *script = write_script(
      "bin/envworker",
      "printf '%s|%s|%s|%s|%s\\n' \"$REPLCHECK_TEST_INHERITED\" \"$REPLCHECK_TEST_EXTRA\""
      " \"$REPLCHECK_TEST_OVERRIDE\" \"$(env | grep -c '^REPLCHECK_TEST_OVERRIDE=')\" \"$1\""
      " > env.tmp\nmv env.tmp env.txt\n",
      0755);
  char *env_path = malloc(strlen(tmp_dir) + 64);
  sprintf(env_path, "PATH=%s/bin:/usr/bin:/bin", tmp_dir);
  char *env[] = {"REPLCHECK_TEST_EXTRA=hello world", "REPLCHECK_TEST_OVERRIDE=new", env_path,
                 NULL};
  char *out = tmp_path("out.log");
  char *argv[] = {"envworker", "arg one", NULL};
  sut_spec_t spec = {.argv = argv, .env_extra = env, .work_dir = tmp_dir, .output_path = out};
  rc_error_t err = {{0}};
  sut_t *sut = sut_start(&spec, &err);
  unsetenv("REPLCHECK_TEST_INHERITED");
  unsetenv("REPLCHECK_TEST_OVERRIDE");
  REQUIRE(sut != NULL, "a command found through env_extra's PATH starts", "%s", err.msg);
  char *seen = wait_for_file("env.txt");
  REQUIRE(strcmp(seen, "from-caller|hello world|new|1|arg one\n") == 0,
          "caller's environment plus env_extra, overriding, arguments intact", "%s", seen);
  sut_destroy(sut);

  char *bad_env[] = {"NOEQUALS", NULL};
  expect_start_error(script, bad_env, tmp_dir, "a malformed env_extra entry is refused",
                     "SUT environment entry 'NOEQUALS' is not of the form NAME=value", true);
  free(seen);
  free(out);
  free(env_path);
  free(script);
}
END_TEST

/* SUT-12: the SUT runs in work_dir; a relative command is relative to the caller's
 * directory; a missing work_dir is refused. */
START_TEST(test_work_dir) {
  char *work = tmp_path("work");
  ck_assert_int_eq(mkdir(work, 0755), 0);
  char *script = write_script("where.sh", "pwd -P > where.tmp; mv where.tmp where.txt\n", 0755);
  char *saved_cwd = getcwd(NULL, 0);
  ck_assert_int_eq(chdir(tmp_dir), 0);
  rc_error_t err = {{0}};
  sut_t *sut = start_in("./where.sh", NULL, work, &err);
  ck_assert_int_eq(chdir(saved_cwd), 0);
  REQUIRE(sut != NULL, "a relative command path starts", "%s", err.msg);
  char *seen = wait_for_file("work/where.txt");
  char real[PATH_MAX];
  ck_assert_ptr_nonnull(realpath(work, real));
  strcat(real, "\n");
  REQUIRE(strcmp(seen, real) == 0, "the SUT's cwd is work_dir", "'%s' vs '%s'", seen, real);
  sut_destroy(sut);

  char *missing = tmp_path("no-such-dir");
  char expected[PATH_MAX + 64];
  snprintf(expected, sizeof expected, "SUT work_dir '%s' cannot be used: No such file or "
           "directory", missing);
  expect_start_error(script, NULL, missing, "a missing work_dir is refused", expected, true);
  require_no_children();
  free(missing);
  free(seen);
  free(saved_cwd);
  free(script);
  free(work);
}
END_TEST

/* SUT-13: sut_destroy stops a running SUT hard; NULL arguments are errors, not crashes. */
START_TEST(test_destroy_and_bad_arguments) {
  char *script = write_script("stubborn.sh", "trap '' TERM\nwhile :; do sleep 0.05; done\n",
                              0755);
  sut_t *sut = start_script(script);
  pid_t pid = sut_pid(sut);
  sut_destroy(sut);
  require_gone(pid, "the destroyed SUT");
  sut_destroy(NULL);
  rc_error_t err = {{0}};
  REQUIRE(sut_start(NULL, &err) == NULL && err.msg[0] != '\0', "NULL spec refused", "%s",
          err.msg);
  char *empty[] = {NULL};
  sut_spec_t spec = {.argv = empty, .work_dir = tmp_dir, .output_path = "x"};
  REQUIRE(sut_start(&spec, &err) == NULL && strstr(err.msg, "argv is empty"),
          "empty argv refused", "%s", err.msg);
  REQUIRE(sut_stop(NULL, 0, NULL, &err) == -1 && strstr(err.msg, "no SUT"), "NULL SUT refused",
          "%s", err.msg);
  ck_assert_int_eq(sut_pid(NULL), -1);
  require_no_children();
  free(script);
}
END_TEST

/* SUT-14: wait statuses are described with the signal's name. */
START_TEST(test_describe_status) {
  char buf[128];
  struct {
    int status;
    const char *text;
  } cases[] = {
      {W_EXITCODE(0, 0), "exited with status 0"},
      {W_EXITCODE(3, 0), "exited with status 3"},
      {W_EXITCODE(0, SIGTERM), "killed by signal 15 (SIGTERM)"},
      {W_EXITCODE(0, SIGSEGV) | WCOREFLAG, "killed by signal 11 (SIGSEGV), core dumped"},
      {W_STOPCODE(SIGSTOP), "stopped by signal 19 (SIGSTOP)"},
      {-1, "status unknown (the process was reaped outside the sut module)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sut_describe_status(cases[i].status, buf, sizeof buf);
    REQUIRE(strcmp(buf, cases[i].text) == 0, "status described", "0x%x: '%s'",
            (unsigned)cases[i].status, buf);
  }
  sut_describe_status(W_EXITCODE(3, 0), buf, 8);
  REQUIRE(strcmp(buf, "exited ") == 0, "truncated safely", "'%s'", buf);
  buf[0] = 'x';
  sut_describe_status(0, buf, 0);
  sut_describe_status(0, NULL, 10);
  REQUIRE(buf[0] == 'x', "cap 0 writes nothing", "'%c'", buf[0]);
}
END_TEST

static Suite *sut_suite(void) {
  Suite *s = suite_create("sut");
  TCase *tc = tcase_create("process");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_start_stop_captures_output);
  tcase_add_test(tc, test_ignores_term_is_killed_after_grace);
  tcase_add_test(tc, test_stopped_sut_is_continued);
  tcase_add_test(tc, test_group_members_are_killed);
  tcase_add_test(tc, test_group_gets_the_grace_period);
  tcase_add_test(tc, test_setsid_escapee_is_killed);
  tcase_add_test(tc, test_reparented_orphan_is_killed);
  tcase_add_test(tc, test_escapees_found_without_subreaper);
  tcase_add_test(tc, test_callers_children_are_left_alone);
  tcase_add_test(tc, test_command_not_found);
  tcase_add_test(tc, test_command_not_executable);
  tcase_add_test(tc, test_exits_at_once);
  tcase_add_test(tc, test_clean_process_state);
  tcase_add_test(tc, test_environment);
  tcase_add_test(tc, test_work_dir);
  tcase_add_test(tc, test_destroy_and_bad_arguments);
  tcase_add_test(tc, test_describe_status);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(sut_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
