/* A SUT that sends one enormous line: after its opening, --bytes (default 10 MB) of
 * 'x' and then a LF, written from a small buffer. Then it waits for SIGTERM. */
#include <stdio.h>
#include <string.h>

#include "hostile.h"

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 10LL * 1000 * 1000, 0, 200);
  int fd = hostile_connect_and_greet(&o);
  hostile_log(&o, "Connected to replication; sending a long line");
  hostile_sleep_ms(o.delay_ms);
  static char chunk[65536];
  memset(chunk, 'x', sizeof chunk);
  long long sent = 0;
  bool open = true;
  while (open && sent < o.bytes) {
    size_t n = sizeof chunk;
    if ((long long)n > o.bytes - sent) n = (size_t)(o.bytes - sent);
    open = hostile_write_all(fd, chunk, n);
    if (open) sent += (long long)n;
  }
  if (open) open = hostile_write_all(fd, "\n", 1);
  char line[200];
  snprintf(line, sizeof line, "sent %lld bytes of one line%s", sent,
           open ? "" : " before the mock closed the connection");
  hostile_log(&o, line);
  hostile_wait_for_term();
  return 0;
}
