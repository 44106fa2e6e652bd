/* A SUT that opens --count (default 1000) replication connections at once and says
 * nothing on any of them, then waits for SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "hostile.h"

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 0, 1000, 0);
  /* Room for the sockets whatever the inherited soft limit. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  long long opened = 0;
  for (; opened < o.count; opened++) hostile_connect(&o);
  char line[200];
  snprintf(line, sizeof line, "opened %lld connections", opened);
  hostile_log(&o, line);
  hostile_wait_for_term();
  return 0;
}
