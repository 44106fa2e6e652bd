#include "sut.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rc_clock.h"

extern char **environ;

enum {
  SUT_EXEC_BOUND_MS = 10000, /* fork to exec; generous for valgrind and loaded machines */
  SUT_KILL_BOUND_MS = 5000,  /* SIGKILL to the last process reaped */
  SUT_POLL_MS = 5,
  SUT_LIST_MAX = 8, /* processes named in an error message */
};

/* One process as /proc shows it; pid plus start time (clock ticks since boot) names a
 * process even after its pid number is recycled. */
typedef struct sut_proc {
  pid_t pid, ppid, pgid;
  char state;
  unsigned long long start;
  bool ours;
} sut_proc_t;

/* A growable list of processes: a /proc scan, or a set of process identities. */
typedef struct sut_proc_list {
  sut_proc_t *items;
  size_t len, cap;
} sut_proc_list_t;

struct sut {
  pid_t pid; /* main process, also the process group id */
  unsigned long long start;
  bool reaped;
  int status;
  int64_t exit_ms; /* when the reap was observed */
  bool stopped;
  sut_proc_list_t caller_children; /* the caller's own children at sut_start */
  struct sut *next;
};

/* Live SUTs of this process, so one SUT's stop never claims another's processes. */
static sut_t *sut_live_list;

/* ---- process lists and /proc ------------------------------------------------------ */

static sut_proc_t *sut_list_push(sut_proc_list_t *list) {
  if (list->len == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 64;
    sut_proc_t *items = realloc(list->items, cap * sizeof *items);
    if (items == NULL) return NULL;
    list->items = items;
    list->cap = cap;
  }
  sut_proc_t *slot = &list->items[list->len++];
  memset(slot, 0, sizeof *slot);
  return slot;
}

static bool sut_list_has(const sut_proc_list_t *list, const sut_proc_t *p) {
  for (size_t i = 0; i < list->len; i++)
    if (list->items[i].pid == p->pid && list->items[i].start == p->start) return true;
  return false;
}

/* Adds p's identity unless present. Returns 0 or -1 (out of memory). */
static int sut_list_add(sut_proc_list_t *list, const sut_proc_t *p) {
  if (sut_list_has(list, p)) return 0;
  sut_proc_t *slot = sut_list_push(list);
  if (slot == NULL) return -1;
  *slot = *p;
  return 0;
}

static void sut_list_free(sut_proc_list_t *list) {
  free(list->items);
  list->items = NULL;
  list->len = list->cap = 0;
}

/* Parses /proc/<pid>/stat. Returns -1 if the process is gone or the line is odd. */
static int sut_proc_read(pid_t pid, sut_proc_t *out) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  /* The command name may hold spaces and parentheses: fields restart after the last
   * ')'. Wanted: 3 state, 4 ppid, 5 pgrp, 22 starttime (16 fields skipped between). */
  const char *p = strrchr(buf, ')');
  memset(out, 0, sizeof *out);
  out->pid = pid;
  int ppid, pgid;
  if (p == NULL || sscanf(p + 1,
                          " %c %d %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s"
                          " %*s %*s %llu",
                          &out->state, &ppid, &pgid, &out->start) != 4)
    return -1;
  out->ppid = ppid;
  out->pgid = pgid;
  return 0;
}

static int sut_proc_cmp(const void *a, const void *b) {
  pid_t x = ((const sut_proc_t *)a)->pid, y = ((const sut_proc_t *)b)->pid;
  return (x > y) - (x < y);
}

/* Reads every process into the list, sorted by pid. */
static int sut_proc_scan(sut_proc_list_t *table, rc_error_t *err) {
  table->len = 0;
  DIR *dir = opendir("/proc");
  if (dir == NULL) return rc_error_set(err, "sut: cannot list /proc: %s", strerror(errno));
  struct dirent *entry;
  int rc = 0;
  while (rc == 0 && (entry = readdir(dir)) != NULL) {
    char *end;
    long pid = strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    sut_proc_t *slot = sut_list_push(table);
    if (slot == NULL) rc = rc_error_set(err, "sut: out of memory while scanning /proc");
    else if (sut_proc_read((pid_t)pid, slot) != 0) table->len--; /* gone meanwhile */
  }
  closedir(dir);
  qsort(table->items, table->len, sizeof *table->items, sut_proc_cmp);
  return rc;
}

static sut_proc_t *sut_proc_find(sut_proc_list_t *table, pid_t pid) {
  sut_proc_t key = {.pid = pid};
  return table->len ? bsearch(&key, table->items, table->len, sizeof key, sut_proc_cmp) : NULL;
}

static bool sut_proc_dead(const sut_proc_t *p) { return p->state == 'Z' || p->state == 'X'; }

/* True if p is the main process or a group member of a live SUT other than sut. */
static bool sut_claimed_by_other(const sut_t *sut, const sut_proc_t *p) {
  for (const sut_t *o = sut_live_list; o != NULL; o = o->next)
    if (o != sut && (p->pid == o->pid || p->pgid == o->pid)) return true;
  return false;
}

/* Marks the processes attributed to sut (rules in sut.h) and adds them to known. */
static int sut_mark(const sut_t *sut, sut_proc_list_t *table, sut_proc_list_t *known) {
  pid_t self = getpid(), self_pgid = getpgrp();
  /* Once the main pid is reaped its number can be recycled; a different process
   * holding it means the group id no longer names the SUT's group. */
  bool group_trusted = true;
  sut_proc_t *holder = sut_proc_find(table, sut->pid);
  if (sut->reaped && holder != NULL && holder->start != sut->start) group_trusted = false;

  for (size_t i = 0; i < table->len; i++) {
    sut_proc_t *p = &table->items[i];
    p->ours = p->pid != self && p->pid != 1 && p->start >= sut->start &&
              !sut_claimed_by_other(sut, p) &&
              ((p->pid == sut->pid && p->start == sut->start) ||
               (group_trusted && p->pgid == sut->pid) || sut_list_has(known, p) ||
               (p->ppid == self && p->pgid != self_pgid &&
                !sut_list_has(&sut->caller_children, p)));
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < table->len; i++) {
      sut_proc_t *p = &table->items[i];
      if (p->ours || p->pid == self || p->start < sut->start) continue;
      if (sut_claimed_by_other(sut, p)) continue;
      const sut_proc_t *parent = sut_proc_find(table, p->ppid);
      if (parent != NULL && parent->ours) {
        p->ours = true;
        changed = true;
      }
    }
  }
  for (size_t i = 0; i < table->len; i++)
    if (table->items[i].ours && sut_list_add(known, &table->items[i]) != 0) return -1;
  return 0;
}

/* ---- starting ---------------------------------------------------------------- */

typedef enum sut_stage {
  SUT_STAGE_SETPGID = 1,
  SUT_STAGE_CHDIR,
  SUT_STAGE_STDIO,
  SUT_STAGE_EXEC,
} sut_stage_t;

/* What a child that failed before exec writes into the CLOEXEC pipe. */
typedef struct sut_exec_report {
  int stage;
  int errnum;
} sut_exec_report_t;

static size_t sut_env_name_len(const char *entry) {
  const char *eq = strchr(entry, '=');
  return eq ? (size_t)(eq - entry) : strlen(entry);
}

static bool sut_env_same_name(const char *a, const char *b) {
  size_t n = sut_env_name_len(a);
  return n == sut_env_name_len(b) && strncmp(a, b, n) == 0;
}

/* The caller's environment with env_extra added; later entries win. The strings are
 * borrowed, only the array is allocated. */
static char **sut_env_build(char *const *extra, rc_error_t *err) {
  size_t base = 0, more = 0;
  while (environ != NULL && environ[base] != NULL) base++;
  while (extra != NULL && extra[more] != NULL) {
    const char *eq = strchr(extra[more], '=');
    if (eq == NULL || eq == extra[more]) {
      rc_error_set(err, "SUT environment entry '%s' is not of the form NAME=value",
                   extra[more]);
      return NULL;
    }
    more++;
  }
  char **env = malloc((base + more + 1) * sizeof *env);
  if (env == NULL) {
    rc_error_set(err, "SUT environment: out of memory");
    return NULL;
  }
  size_t n = 0;
  for (size_t i = 0; i < base; i++) {
    bool replaced = false;
    for (size_t j = 0; j < more && !replaced; j++)
      replaced = sut_env_same_name(environ[i], extra[j]);
    if (!replaced) env[n++] = environ[i];
  }
  for (size_t j = 0; j < more; j++) {
    bool later = false;
    for (size_t k = j + 1; k < more && !later; k++) later = sut_env_same_name(extra[j], extra[k]);
    if (!later) env[n++] = extra[j];
  }
  env[n] = NULL;
  return env;
}

static const char *sut_env_get(char *const *env, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; env[i] != NULL; i++)
    if (strncmp(env[i], name, len) == 0 && env[i][len] == '=') return env[i] + len + 1;
  return NULL;
}

/* 0 if path is a regular file the effective user may execute, else -1 with *errnum
 * set to what execve would most likely say. */
static int sut_check_executable(const char *path, int *errnum) {
  struct stat st;
  *errnum = 0;
  if (stat(path, &st) != 0) *errnum = errno;
  else if (S_ISDIR(st.st_mode)) *errnum = EISDIR;
  else if (!S_ISREG(st.st_mode)) *errnum = EACCES;
  else if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) != 0) *errnum = errno;
  return *errnum ? -1 : 0;
}

/* Checks a '#!' script's interpreter before forking: under valgrind a failed execve
 * kills the child before it can report, and "interpreter missing" says more than the
 * ENOENT execve gives for a file that exists. Relative interpreters resolve against
 * the child's cwd, so they are left to execve. */
static int sut_check_interpreter(const char *name, const char *path, rc_error_t *err) {
  char head[256];
  int fd = open(path, O_RDONLY | O_CLOEXEC), errnum;
  if (fd < 0) return 0; /* execute-only: execve will tell */
  ssize_t n = read(fd, head, sizeof head - 1);
  close(fd);
  if (n < 2 || head[0] != '#' || head[1] != '!') return 0;
  head[n] = '\0';
  char *interp = head + 2 + strspn(head + 2, " \t");
  interp[strcspn(interp, " \t\r\n")] = '\0';
  if (interp[0] != '/' || sut_check_executable(interp, &errnum) == 0) return 0;
  return rc_error_set(err, "SUT command '%s' cannot run: its interpreter '%s' %s: %s", name,
                      interp, errnum == ENOENT ? "is missing" : "is not executable",
                      strerror(errnum));
}

/* Makes path absolute against the caller's cwd: the child changes directory before
 * exec, and a relative path must keep meaning what the caller meant. */
static char *sut_absolute(const char *path, rc_error_t *err) {
  if (path[0] == '/') {
    char *copy = strdup(path);
    if (copy == NULL) rc_error_set(err, "SUT command: out of memory");
    return copy;
  }
  char *cwd = getcwd(NULL, 0), *full = NULL;
  if (cwd == NULL || asprintf(&full, "%s/%s", cwd, path) < 0) {
    rc_error_set(err, "SUT command '%s': cannot make the path absolute: %s", path,
                 strerror(errno));
    full = NULL;
  }
  free(cwd);
  return full;
}

/* Resolves argv[0] the way execvp would, but before forking, so that a missing or
 * non-executable command is an error of sut_start and not a child dying quietly. */
static char *sut_resolve(const char *name, const char *path_var, rc_error_t *err) {
  int errnum = 0;
  if (strchr(name, '/') != NULL) {
    if (sut_check_executable(name, &errnum) != 0) {
      if (errnum == ENOENT || errnum == ENOTDIR)
        rc_error_set(err, "SUT command '%s' not found: %s", name, strerror(errnum));
      else
        rc_error_set(err, "SUT command '%s' is not executable: %s", name, strerror(errnum));
      return NULL;
    }
    return sut_absolute(name, err);
  }
  char fallback[256];
  if (path_var == NULL) {
    size_t n = confstr(_CS_PATH, fallback, sizeof fallback);
    path_var = (n > 0 && n <= sizeof fallback) ? fallback : "/bin:/usr/bin";
  }
  size_t name_len = strlen(name);
  char *candidate = malloc(strlen(path_var) + name_len + 3);
  char *denied = NULL;
  int denied_errnum = 0;
  if (candidate == NULL) {
    rc_error_set(err, "SUT command: out of memory");
    return NULL;
  }
  for (const char *dir = path_var;;) {
    const char *colon = strchrnul(dir, ':');
    size_t dir_len = (size_t)(colon - dir);
    /* An empty PATH element means the current directory. */
    if (dir_len == 0) snprintf(candidate, name_len + 3, "./%s", name);
    else sprintf(candidate, "%.*s/%s", (int)dir_len, dir, name);
    if (sut_check_executable(candidate, &errnum) == 0) {
      char *found = sut_absolute(candidate, err);
      free(candidate);
      free(denied);
      return found;
    }
    if (denied == NULL && errnum != ENOENT && errnum != ENOTDIR) {
      denied = strdup(candidate);
      denied_errnum = errnum;
    }
    if (*colon == '\0') break;
    dir = colon + 1;
  }
  if (denied != NULL)
    rc_error_set(err, "SUT command '%s' found in PATH as '%s' but is not executable: %s", name,
                 denied, strerror(denied_errnum));
  else
    rc_error_set(err, "SUT command '%s' not found in PATH (PATH=%s)", name, path_var);
  free(candidate);
  free(denied);
  return NULL;
}

/* Returns fd moved to a number above 2 (close-on-exec), so that dup2 onto 0..2 in
 * the child never degenerates into a no-op that keeps the CLOEXEC flag. */
static int sut_fd_above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3), saved = errno;
  close(fd);
  errno = saved;
  return moved;
}

/* Child only, between fork and exec: async-signal-safe calls only. */
static void sut_child_close_fds(int keep) {
  if ((keep == 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
      syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
    return;
  /* Kernels before 5.9: every possible descriptor, bounded by the limit. */
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 1048576) max = 1048576;
  for (int fd = 3; fd < max; fd++)
    if (fd != keep) close(fd);
}

static void sut_child_fail(int report_fd, sut_stage_t stage) {
  sut_exec_report_t report = {.stage = stage, .errnum = errno};
  ssize_t put = write(report_fd, &report, sizeof report);
  (void)put;
  _exit(127);
}

static void sut_child_exec(const char *exe, char *const *argv, char **env, const char *work_dir,
                           int out_fd, int null_fd, int report_fd) {
  /* Ignored signals survive exec; handlers of the caller must not run here either
   * (all signals are blocked until the mask is emptied just before exec). */
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction old;
    if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &old) != 0) continue;
    if (old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)) continue;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
  }
  if (setpgid(0, 0) != 0) sut_child_fail(report_fd, SUT_STAGE_SETPGID);
  if (chdir(work_dir) != 0) sut_child_fail(report_fd, SUT_STAGE_CHDIR);
  if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
    sut_child_fail(report_fd, SUT_STAGE_STDIO);
  sut_child_close_fds(report_fd);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(exe, argv, env);
  sut_child_fail(report_fd, SUT_STAGE_EXEC);
}

/* Reads the child's report. Returns 1 with a report, 0 on EOF (exec succeeded), -1 on
 * timeout or error (errno set). */
static int sut_read_report(int fd, sut_exec_report_t *report, int64_t deadline_ms) {
  size_t got = 0;
  for (;;) {
    int64_t left = deadline_ms - rc_clock_mono_ms();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int ready = poll(&pfd, 1, (int)left);
    if (ready < 0 && errno != EINTR) return -1;
    if (ready <= 0) continue;
    ssize_t n = read(fd, (char *)report + got, sizeof *report - got);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -1;
    }
    if (n == 0) return 0;
    got += (size_t)n;
    if (got == sizeof *report) return 1;
  }
}

/* Reaps a child that failed before exec (it is exiting) or never reported back. */
static void sut_reap_failed_child(pid_t pid) {
  int64_t deadline = rc_clock_mono_ms() + SUT_KILL_BOUND_MS;
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, WNOHANG) == 0 && rc_clock_mono_ms() < deadline) {
    struct timespec ts = {0, SUT_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void sut_exec_error(const char *name, const char *exe, const char *work_dir,
                           const char *output_path, const sut_exec_report_t *report,
                           rc_error_t *err) {
  const char *why = strerror(report->errnum);
  int e = report->errnum;
  if (report->stage == SUT_STAGE_SETPGID)
    rc_error_set(err, "SUT command '%s': cannot create its process group: %s", name, why);
  else if (report->stage == SUT_STAGE_CHDIR)
    rc_error_set(err, "SUT command '%s': cannot enter work_dir '%s': %s", name, work_dir, why);
  else if (report->stage == SUT_STAGE_STDIO)
    rc_error_set(err, "SUT command '%s': cannot redirect output to '%s': %s", name, output_path,
                 why);
  else
    rc_error_set(err, "SUT command '%s' (%s) %s: %s%s", name, exe,
                 e == EACCES || e == ENOEXEC ? "is not executable" : "could not be executed", why,
                 e == ENOEXEC  ? " (a script needs a '#!' line)"
                 : e == ENOENT ? " (missing interpreter or loader?)"
                               : "");
}

/* The caller's children before the SUT exists are the caller's own, never the SUT's. */
static int sut_snapshot_caller_children(sut_t *sut, rc_error_t *err) {
  sut_proc_list_t table = {0};
  int rc = sut_proc_scan(&table, err);
  pid_t self = getpid();
  for (size_t i = 0; rc == 0 && i < table.len; i++)
    if (table.items[i].ppid == self &&
        sut_list_add(&sut->caller_children, &table.items[i]) != 0)
      rc = rc_error_set(err, "sut_start: out of memory");
  sut_list_free(&table);
  return rc;
}

sut_t *sut_start(const sut_spec_t *spec, rc_error_t *err) {
  if (spec == NULL || spec->argv == NULL || spec->argv[0] == NULL || spec->argv[0][0] == '\0') {
    rc_error_set(err, "sut_start: no SUT command given (argv is empty)");
    return NULL;
  }
  if (spec->work_dir == NULL || spec->output_path == NULL) {
    rc_error_set(err, "sut_start: SUT command '%s': work_dir and output_path are required",
                 spec->argv[0]);
    return NULL;
  }
  const char *name = spec->argv[0];
  struct stat st;
  int bad_dir = stat(spec->work_dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  if (bad_dir != 0) {
    rc_error_set(err, "SUT work_dir '%s' cannot be used: %s", spec->work_dir, strerror(bad_dir));
    return NULL;
  }
  char **env = sut_env_build(spec->env_extra, err);
  if (env == NULL) return NULL;
  char *exe = sut_resolve(name, sut_env_get(env, "PATH"), err);
  sut_t *sut = calloc(1, sizeof *sut);
  int out_fd = -1, null_fd = -1, report[2] = {-1, -1};
  if (exe == NULL || sut_check_interpreter(name, exe, err) != 0) goto fail;
  if (sut == NULL) {
    rc_error_set(err, "sut_start: out of memory");
    goto fail;
  }
  if (sut_snapshot_caller_children(sut, err) != 0) goto fail;
  out_fd = sut_fd_above_stdio(
      open(spec->output_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (out_fd < 0) {
    rc_error_set(err, "SUT output file '%s' cannot be opened: %s", spec->output_path,
                 strerror(errno));
    goto fail;
  }
  null_fd = sut_fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_fd < 0) {
    rc_error_set(err, "sut_start: cannot open /dev/null: %s", strerror(errno));
    goto fail;
  }
  if (pipe2(report, O_CLOEXEC) != 0 || (report[0] = sut_fd_above_stdio(report[0])) < 0 ||
      (report[1] = sut_fd_above_stdio(report[1])) < 0) {
    rc_error_set(err, "sut_start: cannot create a pipe: %s", strerror(errno));
    goto fail;
  }

  sigset_t all, old_mask;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old_mask);
  pid_t pid = fork();
  if (pid == 0)
    sut_child_exec(exe, spec->argv, env, spec->work_dir, out_fd, null_fd, report[1]);
  int fork_errno = errno;
  /* Also set the group here: whichever of parent and child runs first, the group
   * exists before anyone can signal it. EACCES means the child already exec'd. */
  if (pid > 0) setpgid(pid, pid);
  sigprocmask(SIG_SETMASK, &old_mask, NULL);
  close(report[1]);
  report[1] = -1;
  if (pid < 0) {
    rc_error_set(err, "SUT command '%s': fork failed: %s", name, strerror(fork_errno));
    goto fail;
  }

  sut_exec_report_t child_report;
  int got = sut_read_report(report[0], &child_report, rc_clock_mono_ms() + SUT_EXEC_BOUND_MS);
  if (got != 0) {
    if (got > 0)
      sut_exec_error(name, exe, spec->work_dir, spec->output_path, &child_report, err);
    else
      rc_error_set(err, "SUT command '%s': no exec within %d ms of fork: %s", name,
                   SUT_EXEC_BOUND_MS, strerror(errno));
    sut_reap_failed_child(pid);
    goto fail;
  }

  sut->pid = pid;
  sut_proc_t self_entry;
  /* The child is unreaped, so its /proc entry exists even if it already exited. */
  if (sut_proc_read(pid, &self_entry) == 0) sut->start = self_entry.start;
  sut->next = sut_live_list;
  sut_live_list = sut;
  close(report[0]);
  close(out_fd);
  close(null_fd);
  free(exe);
  free(env);
  return sut;

fail:
  if (report[0] >= 0) close(report[0]);
  if (report[1] >= 0) close(report[1]);
  if (out_fd >= 0) close(out_fd);
  if (null_fd >= 0) close(null_fd);
  if (sut != NULL) sut_list_free(&sut->caller_children);
  free(sut);
  free(exe);
  free(env);
  return NULL;
}

/* ---- observing and stopping ----------------------------------------------------- */

int sut_become_subreaper(rc_error_t *err) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) != 0)
    return rc_error_set(err, "sut: prctl(PR_SET_CHILD_SUBREAPER) failed: %s", strerror(errno));
  return 0;
}

pid_t sut_pid(const sut_t *sut) { return sut ? sut->pid : -1; }

static bool sut_poll_main(sut_t *sut) {
  if (sut->reaped) return true;
  int status;
  pid_t r = waitpid(sut->pid, &status, WNOHANG);
  if (r == sut->pid) {
    sut->reaped = true;
    sut->status = status;
  } else if (r < 0 && errno == ECHILD) {
    sut->reaped = true;
    sut->status = -1;
  }
  if (sut->reaped) sut->exit_ms = rc_clock_mono_ms();
  return sut->reaped;
}

bool sut_has_exited(sut_t *sut, int *status) {
  if (sut == NULL) return true;
  if (!sut_poll_main(sut)) return false;
  if (status != NULL) *status = sut->status;
  return true;
}

static void sut_signal_name(int sig, char *buf, size_t cap) {
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev != NULL) snprintf(buf, cap, "SIG%s", abbrev);
  else if (sig >= SIGRTMIN && sig <= SIGRTMAX) snprintf(buf, cap, "SIGRTMIN+%d", sig - SIGRTMIN);
  else snprintf(buf, cap, "%s", strsignal(sig));
}

void sut_describe_status(int status, char *buf, size_t cap) {
  if (buf == NULL || cap == 0) return;
  char name[64];
  if (status == -1) {
    snprintf(buf, cap, "status unknown (the process was reaped outside the sut module)");
  } else if (WIFEXITED(status)) {
    snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    sut_signal_name(WTERMSIG(status), name, sizeof name);
    snprintf(buf, cap, "killed by signal %d (%s)%s", WTERMSIG(status), name,
             WCOREDUMP(status) ? ", core dumped" : "");
  } else if (WIFSTOPPED(status)) {
    sut_signal_name(WSTOPSIG(status), name, sizeof name);
    snprintf(buf, cap, "stopped by signal %d (%s)", WSTOPSIG(status), name);
  } else {
    snprintf(buf, cap, "unrecognised wait status 0x%x", (unsigned)status);
  }
}

typedef struct sut_stop_ctx {
  sut_t *sut;
  sut_proc_list_t table;
  sut_proc_list_t known;  /* every process ever attributed during this stop */
  sut_proc_list_t killed; /* stragglers already SIGKILLed, counted once */
  sut_stop_result_t *result;
  bool scan_failed;
  rc_error_t scan_err;
} sut_stop_ctx_t;

typedef struct sut_survey {
  int group_live;   /* live processes in the SUT's group (main included) */
  int outside_live; /* live attributed processes outside it */
  int pending;      /* anything not yet gone or reaped */
} sut_survey_t;

/* Scans, reaps attributed zombies that are the caller's children and, when
 * kill_outside, SIGKILLs live attributed processes outside the group. */
static void sut_survey(sut_stop_ctx_t *ctx, bool kill_outside, sut_survey_t *out) {
  sut_t *sut = ctx->sut;
  memset(out, 0, sizeof *out);
  sut_poll_main(sut);
  if (ctx->scan_failed || sut_proc_scan(&ctx->table, &ctx->scan_err) != 0 ||
      sut_mark(sut, &ctx->table, &ctx->known) != 0) {
    if (!ctx->scan_failed && ctx->scan_err.msg[0] == '\0')
      rc_error_set(&ctx->scan_err, "sut: out of memory while tracking SUT processes");
    ctx->scan_failed = true;
    /* Blind to everything but the main process: keep the group under fire until the
     * main process is reaped (it is unreaped, so the group id is still its own). */
    out->pending = out->group_live = sut->reaped ? 0 : 1;
    return;
  }
  pid_t self = getpid();
  for (size_t i = 0; i < ctx->table.len; i++) {
    sut_proc_t *p = &ctx->table.items[i];
    if (!p->ours) continue;
    bool is_main = p->pid == sut->pid && p->start == sut->start;
    if (sut_proc_dead(p)) {
      if (p->ppid == self) {
        if (is_main) {
          if (!sut_poll_main(sut)) out->pending++;
        } else {
          int status;
          pid_t r = waitpid(p->pid, &status, WNOHANG);
          if (r == 0 || (r < 0 && errno == EINTR)) out->pending++;
        }
      } else {
        /* A zombie whose parent is still ours will be re-parented to us shortly. */
        const sut_proc_t *parent = sut_proc_find(&ctx->table, p->ppid);
        if (parent != NULL && parent->ours) out->pending++;
      }
      continue;
    }
    out->pending++;
    if (is_main || p->pgid == sut->pid) {
      out->group_live++;
      if (kill_outside && is_main) kill(p->pid, SIGKILL); /* main may have left its group */
      continue;
    }
    out->outside_live++;
    if (kill_outside) {
      kill(p->pid, SIGKILL);
      if (!sut_list_has(&ctx->killed, p)) {
        if (sut_list_add(&ctx->killed, p) == 0) ctx->result->stragglers++;
        ctx->result->killed = true;
      }
    }
  }
  if (!sut->reaped) out->pending++;
}

static void sut_nap(int64_t deadline_ms) {
  int64_t left = deadline_ms - rc_clock_mono_ms();
  if (left <= 0) return;
  if (left > SUT_POLL_MS) left = SUT_POLL_MS;
  struct timespec ts = {0, (long)left * 1000000L};
  nanosleep(&ts, NULL);
}

static void sut_report_leftovers(sut_stop_ctx_t *ctx, rc_error_t *err) {
  char list[RC_ERROR_MAX / 2] = "";
  size_t used = 0;
  int count = 0;
  for (size_t i = 0; i < ctx->table.len; i++) {
    const sut_proc_t *p = &ctx->table.items[i];
    if (!p->ours) continue;
    if (count++ < SUT_LIST_MAX && used < sizeof list) {
      int n = snprintf(list + used, sizeof list - used, "%s%d (state %c, parent %d)",
                       used ? ", " : "", (int)p->pid, p->state, (int)p->ppid);
      if (n > 0) used += (size_t)n;
    }
  }
  rc_error_set(err,
               "sut_stop: SUT pid %d: %d process(es) still present %d ms after SIGKILL%s%s%s",
               (int)ctx->sut->pid, count, SUT_KILL_BOUND_MS, count ? ": " : "", list,
               ctx->sut->reaped ? "" : " (main process not reaped)");
}

int sut_survivors(sut_t *sut, int *group, int *outside, rc_error_t *err) {
  if (group != NULL) *group = 0;
  if (outside != NULL) *outside = 0;
  if (sut == NULL) return rc_error_set(err, "sut_survivors: no SUT given");
  sut_stop_result_t unused;
  memset(&unused, 0, sizeof unused);
  sut_stop_ctx_t ctx = {.sut = sut, .result = &unused};
  sut_survey_t seen;
  sut_survey(&ctx, false, &seen);
  int rc = 0;
  if (ctx.scan_failed)
    rc = rc_error_set(err, "sut_survivors: SUT pid %d: %s", (int)sut->pid, ctx.scan_err.msg);
  if (group != NULL) *group = seen.group_live;
  if (outside != NULL) *outside = seen.outside_live;
  sut_list_free(&ctx.table);
  sut_list_free(&ctx.known);
  sut_list_free(&ctx.killed);
  return rc;
}

int sut_stop(sut_t *sut, int grace_ms, sut_stop_result_t *result, rc_error_t *err) {
  sut_stop_result_t local;
  if (result == NULL) result = &local;
  memset(result, 0, sizeof *result);
  if (sut == NULL) return rc_error_set(err, "sut_stop: no SUT given");
  if (grace_ms < 0) grace_ms = 0;
  sut_stop_ctx_t ctx = {.sut = sut, .result = result};
  sut_survey_t seen;

  result->was_running = !sut_poll_main(sut);
  /* Survey before any signal: once intermediate parents die, the tree that links
   * escaped descendants to the SUT is gone, and this is its only record. */
  sut_survey(&ctx, false, &seen);
  int64_t term_ms = rc_clock_mono_ms();
  if (result->was_running || seen.group_live > 0) {
    /* SIGCONT: a stopped process would otherwise sit on its SIGTERM all grace long. */
    if (seen.group_live > 0 || !sut->reaped) {
      kill(-sut->pid, SIGTERM);
      kill(-sut->pid, SIGCONT);
    }
    if (!sut->reaped) kill(sut->pid, SIGTERM);
    /* The grace period belongs to the whole group: the main process exiting first
     * does not mean its group-mates must be SIGKILLed at once. */
    int64_t deadline = term_ms + grace_ms;
    for (;;) {
      if (sut_poll_main(sut)) {
        sut_survey(&ctx, false, &seen);
        if (seen.group_live == 0) break;
      }
      if (rc_clock_mono_ms() >= deadline) break;
      sut_nap(deadline);
    }
    result->exited_on_term = result->was_running && sut->reaped;
  }

  int64_t hard_deadline = rc_clock_mono_ms() + SUT_KILL_BOUND_MS;
  if (!sut->reaped) {
    kill(-sut->pid, SIGKILL);
    kill(sut->pid, SIGKILL);
    result->killed = true;
  }
  int rc = 0;
  for (;;) {
    sut_survey(&ctx, true, &seen);
    if (seen.group_live > 0) {
      /* group_live > 0 means members exist, so the group id cannot be recycled. */
      kill(-sut->pid, SIGKILL);
      result->killed = true;
    }
    if (seen.pending == 0) break;
    if (rc_clock_mono_ms() >= hard_deadline) {
      sut_report_leftovers(&ctx, err);
      rc = -1;
      break;
    }
    sut_nap(hard_deadline);
  }
  if (rc == 0 && ctx.scan_failed) {
    rc = rc_error_set(err, "sut_stop: SUT pid %d: escaped processes not checked: %s",
                      (int)sut->pid, ctx.scan_err.msg);
  }
  result->status = sut->reaped ? sut->status : 0;
  if (result->was_running) {
    int64_t end_ms = sut->reaped ? sut->exit_ms : rc_clock_mono_ms();
    result->seconds = (double)(end_ms - term_ms) / 1000.0;
  }
  if (rc == 0) sut->stopped = true;
  sut_list_free(&ctx.table);
  sut_list_free(&ctx.known);
  sut_list_free(&ctx.killed);
  return rc;
}

void sut_destroy(sut_t *sut) {
  if (sut == NULL) return;
  if (!sut->stopped) sut_stop(sut, 0, NULL, NULL);
  for (sut_t **link = &sut_live_list; *link != NULL; link = &(*link)->next) {
    if (*link == sut) {
      *link = sut->next;
      break;
    }
  }
  sut_list_free(&sut->caller_children);
  free(sut);
}
