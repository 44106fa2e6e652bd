/* A SUT that writes a huge log before it is ready: --bytes (default 1 GB) into --log,
 * half of it one line without a LF until its end, half ordinary lines; then it
 * connects, logs "Connected to replication" (what a readiness pattern waits for) and
 * says nothing more until SIGTERM. */
#include <stdio.h>
#include <string.h>

#include "hostile.h"

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 1000LL * 1000 * 1000, 0, 0);
  FILE *log = o.log_path != NULL ? fopen(o.log_path, "a") : NULL;
  if (log == NULL) {
    fprintf(stderr, "hostile_biglog: needs a writable --log\n");
    return 1;
  }
  static char chunk[65536];
  memset(chunk, 'y', sizeof chunk);
  long long half = o.bytes / 2, written = 0;
  while (written < half) {
    size_t n = sizeof chunk;
    if ((long long)n > half - written) n = (size_t)(half - written);
    if (fwrite(chunk, 1, n, log) != n) break;
    written += (long long)n;
  }
  fputc('\n', log);
  static const char line[] =
      "2000-01-01 00:00:00,000 - hostile - 1 - DEBUG - main - filler line of the big log "
      "..........................................................\n";
  while (written < o.bytes) {
    if (fwrite(line, 1, sizeof line - 1, log) != sizeof line - 1) break;
    written += (long long)(sizeof line - 1);
  }
  fclose(log);
  hostile_connect(&o);
  char msg[200];
  snprintf(msg, sizeof msg, "Connected to replication after logging %lld bytes", written);
  hostile_log(&o, msg);
  hostile_wait_for_term();
  return 0;
}
