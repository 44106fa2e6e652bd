/* A SUT that hangs: it connects, completes its opening, then ignores SIGTERM, SIGINT
 * and SIGHUP and neither reads nor writes again; only SIGKILL ends it. */
#include <signal.h>
#include <unistd.h>

#include "hostile.h"

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 0, 0, 0);
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  int fd = hostile_connect_and_greet(&o);
  (void)fd;
  hostile_log(&o, "Connected to replication; hanging");
  for (;;) pause();
}
