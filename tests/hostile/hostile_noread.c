/* A SUT that stops reading: after its opening it never reads again, but keeps writing
 * REPLICATE (each of which a modern main answers with a POSITION per stream), --bytes
 * (default 10 MB) of them, so the main's output to it piles up. Then it waits for
 * SIGTERM. */
#include <stdio.h>
#include <string.h>

#include "hostile.h"

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 10LL * 1000 * 1000, 0, 200);
  int fd = hostile_connect_and_greet(&o);
  hostile_log(&o, "Connected to replication; no longer reading");
  hostile_sleep_ms(o.delay_ms);
  static char chunk[10 * 4096];
  for (size_t i = 0; i + 10 <= sizeof chunk; i += 10) memcpy(chunk + i, "REPLICATE\n", 10);
  long long sent = 0;
  bool open = true;
  while (open && sent < o.bytes) {
    size_t n = sizeof chunk;
    if ((long long)n > o.bytes - sent) n = (size_t)(o.bytes - sent) / 10 * 10;
    if (n == 0) break;
    open = hostile_write_all(fd, chunk, n);
    if (open) sent += (long long)n;
  }
  char line[200];
  snprintf(line, sizeof line, "wrote %lld REPLICATE lines without reading%s", sent / 10,
           open ? "" : "; the mock closed the connection");
  hostile_log(&o, line);
  hostile_wait_for_term();
  return 0;
}
