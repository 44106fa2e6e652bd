/* A SUT that leaves processes behind: it starts --count (default 3) children that
 * leave its process group and session (double fork + setsid) and ignore SIGTERM, then
 * runs the worker itself (exec), which shuts down properly on SIGTERM. The children
 * outlive it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 0, 3, 0);
  for (long long i = 0; i < o.count; i++) {
    pid_t child = fork();
    if (child < 0) break;
    if (child == 0) {
      setsid();
      if (fork() != 0) _exit(0);
      signal(SIGTERM, SIG_IGN);
      signal(SIGHUP, SIG_IGN);
      for (;;) pause();
    }
    waitpid(child, NULL, 0);
  }
  hostile_log(&o, "started detached children; running the worker");
  signal(SIGPIPE, SIG_DFL);
  execv(o.worker_argv[0], o.worker_argv);
  fprintf(stderr, "hostile_forks: cannot exec %s: %s\n", o.worker_argv[0], strerror(errno));
  return 127;
}
