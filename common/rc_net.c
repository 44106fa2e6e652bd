#include "rc_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Ports are handed out from below the kernel's ephemeral range: the kernel never picks
 * one of them for a port-0 bind or an outgoing connection, which is what used to take a
 * port between our release and the SUT's bind (the mocks bind port 0, and every test
 * connects out). Only another explicit user of the same range can still collide. */
#define PICK_LOW 20000
#define PICK_HIGH 32000 /* below the usual ip_local_port_range start, 32768 */
#define PICK_TRIES 64

/* The lower end of the kernel's ephemeral range, or 32768 when it cannot be read. */
static int ephemeral_low(void) {
  int low = 32768, high = 60999;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f != NULL) {
    if (fscanf(f, "%d %d", &low, &high) != 2) low = 32768;
    fclose(f);
  }
  return low;
}

static bool port_bindable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
  close(fd);
  return ok;
}

/* The kernel's choice (bind to port 0), the fallback. */
static int kernel_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  int port = 0;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

int rc_net_free_port(void) {
  /* Each process walks the range from its own random start, so parallel runs and tests
   * rarely try the same port, and one process never hands out a port twice in a row. */
  static uint64_t state;
  static int next;
  static pid_t seeded_by;
  int high = ephemeral_low() - 1;
  if (high > PICK_HIGH) high = PICK_HIGH;
  int span = high - PICK_LOW + 1;
  if (span < 1000) return kernel_port(); /* an unusual port range: leave it to the kernel */
  /* A forked child seeds again: children of one parent that had picked a port already
   * (the run's PostgreSQL cluster) would otherwise all walk the same sequence and hand
   * their SUTs the same port. */
  if (state == 0 || seeded_by != getpid()) {
    seeded_by = getpid();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    state = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec;
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    next = (int)((state >> 33) % (uint64_t)span);
  }
  for (int i = 0; i < PICK_TRIES; i++) {
    /* A stride of 97 spreads consecutive picks of one process over the range. */
    next = (next + 97) % span;
    int port = PICK_LOW + next;
    if (port_bindable(port)) return port;
  }
  return kernel_port();
}
