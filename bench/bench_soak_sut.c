/* The SUT of the memory soak (bench/run_soak.sh): in the target test (options as
 * tests/hostile/hostile.h) it connects, sends its opening, then --count (default
 * 1000000) valid commands ("PING <n>") as fast as the main takes them, reading and
 * discarding what the main sends meanwhile, and logs its progress every 100000
 * commands ("soak: sent N commands"); then it pings every 200 ms until SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"

static volatile sig_atomic_t stop;

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 0, 1000000, 0);
  int fd = hostile_connect_and_greet(&o);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  hostile_log(&o, "Connected to replication; soak starts");
  static char out[65536], in[65536];
  long long sent = 0, next_mark = 100000;
  size_t used = 0;
  while (sent < o.count) {
    while (used + 32 < sizeof out && sent < o.count)
      used += (size_t)snprintf(out + used, sizeof out - used, "PING %lld\n", ++sent);
    size_t at = 0;
    while (at < used) {
      struct pollfd p[2] = {{.fd = fd, .events = POLLOUT}, {.fd = fd, .events = POLLIN}};
      if (poll(p, 2, 5000) <= 0) continue;
      if (p[1].revents & POLLIN) {
        ssize_t n = read(fd, in, sizeof in);
        if (n == 0) {
          hostile_log(&o, "soak: the main closed the connection");
          hostile_wait_for_term();
          return 1;
        }
      }
      if (p[0].revents & POLLOUT) {
        ssize_t n = write(fd, out + at, used - at);
        if (n > 0) at += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR) return 1;
      }
    }
    used = 0;
    for (; sent >= next_mark; next_mark += 100000) {
      char line[64];
      snprintf(line, sizeof line, "soak: sent %lld commands", next_mark);
      hostile_log(&o, line);
    }
  }
  hostile_log(&o, "soak: done");
  /* Then an ordinary worker's keepalive until SIGTERM. */
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  while (!stop) {
    char line[32];
    int n = snprintf(line, sizeof line, "PING %lld\n", ++sent);
    if (!hostile_write_all(fd, line, (size_t)n)) break;
    ssize_t got = read(fd, in, sizeof in); /* non-blocking: drain what the main sent */
    (void)got;
    hostile_sleep_ms(200);
  }
  return 0;
}
