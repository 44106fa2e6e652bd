/* A SUT that crashes mid-test: it connects, completes its opening, and after
 * --delay-ms (default 300) dies of SIGSEGV with its connection open. */
#include <signal.h>
#include <stdio.h>

#include "hostile.h"

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 0, 0, 300);
  int fd = hostile_connect_and_greet(&o);
  (void)fd;
  hostile_log(&o, "Connected to replication; crashing soon");
  hostile_sleep_ms(o.delay_ms);
  fprintf(stderr, "hostile_crash: about to crash\n");
  fflush(stderr);
  /* A sanitizer build installs its own SIGSEGV handler; the default action is the
   * crash the harness must cope with. */
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
  return 0;
}
