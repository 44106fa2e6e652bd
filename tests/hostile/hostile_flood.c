/* A SUT that floods: after its opening it writes --bytes (default 100 MB) of garbage,
 * the first half random binary bytes the mock refuses (it closes the connection at the
 * first of them), the second half lines "PING <random printable text>" the mock must
 * read and record; whenever the mock closes the connection it connects again and goes
 * on. Then it waits for SIGTERM. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"

#define CHUNK 65536

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Printable PING lines of random length (up to 16000 bytes, under the line limit). */
static size_t fill_lines(char *buf, size_t cap) {
  size_t at = 0;
  while (at + 16010 < cap) {
    size_t len = 1 + rng_next() % 16000;
    memcpy(buf + at, "PING ", 5);
    at += 5;
    for (size_t i = 0; i < len; i++) buf[at++] = (char)(0x21 + rng_next() % 94);
    buf[at++] = '\n';
  }
  return at;
}

static size_t fill_binary(char *buf, size_t cap) {
  for (size_t i = 0; i < cap; i++) buf[i] = (char)(rng_next() & 0xff);
  return cap;
}

int main(int argc, char **argv) {
  hostile_options_t o;
  hostile_start(argc, argv, &o, 100LL * 1000 * 1000, 0, 200);
  int fd = hostile_connect_and_greet(&o);
  hostile_log(&o, "Connected to replication; flooding");
  hostile_sleep_ms(o.delay_ms);
  static char buf[CHUNK * 2];
  long long sent = 0, connections = 1;
  while (sent < o.bytes) {
    bool binary = sent < o.bytes / 2;
    size_t n = binary ? fill_binary(buf, CHUNK) : fill_lines(buf, sizeof buf);
    if ((long long)n > o.bytes - sent) n = (size_t)(o.bytes - sent);
    if (!hostile_write_all(fd, buf, n)) {
      close(fd);
      fd = hostile_connect(&o);
      connections++;
      continue;
    }
    sent += (long long)n;
  }
  char line[200];
  snprintf(line, sizeof line, "flooded %lld bytes over %lld connection(s)", sent, connections);
  hostile_log(&o, line);
  hostile_wait_for_term();
  return 0;
}
