#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"

static void usage_exit(const char *why) {
  fprintf(stderr,
          "hostile: %s\nusage: hostile_X --target SUBSTR --work-dir DIR --host H --port P "
          "[--log PATH] [--bytes N] [--count N] [--delay-ms N] -- WORKER ARGV...\n",
          why);
  exit(2);
}

static long long parse_number(const char *text, const char *option) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0) {
    char why[256];
    snprintf(why, sizeof why, "%s expects a non-negative integer, got '%s'", option, text);
    usage_exit(why);
  }
  return v;
}

void hostile_start(int argc, char **argv, hostile_options_t *o, long long default_bytes,
                   long long default_count, int default_delay_ms) {
  memset(o, 0, sizeof *o);
  o->bytes = default_bytes;
  o->count = default_count;
  o->delay_ms = default_delay_ms;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) usage_exit("an option lacks its value");
    const char *v = argv[++i];
    if (strcmp(a, "--target") == 0) o->target = v;
    else if (strcmp(a, "--work-dir") == 0) o->work_dir = v;
    else if (strcmp(a, "--host") == 0) o->host = v;
    else if (strcmp(a, "--port") == 0) o->port = v;
    else if (strcmp(a, "--log") == 0) o->log_path = v;
    else if (strcmp(a, "--bytes") == 0) o->bytes = parse_number(v, a);
    else if (strcmp(a, "--count") == 0) o->count = parse_number(v, a);
    else if (strcmp(a, "--delay-ms") == 0) o->delay_ms = (int)parse_number(v, a);
    else usage_exit("unknown option");
  }
  if (o->target == NULL || o->work_dir == NULL || o->host == NULL || o->port == NULL)
    usage_exit("--target, --work-dir, --host and --port are required");
  if (i >= argc) usage_exit("no worker command after --");
  o->worker_argv = argv + i;
  if (strstr(o->work_dir, o->target) == NULL) {
    execv(o->worker_argv[0], o->worker_argv);
    fprintf(stderr, "hostile: cannot exec %s: %s\n", o->worker_argv[0], strerror(errno));
    exit(127);
  }
  signal(SIGPIPE, SIG_IGN);
}

int hostile_connect(const hostile_options_t *o) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(o->host, o->port, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "hostile: %s:%s: %s\n", o->host, o->port, gai_strerror(rc));
    exit(1);
  }
  int fd = socket(res->ai_family, res->ai_socktype, 0);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    fprintf(stderr, "hostile: connect %s:%s: %s\n", o->host, o->port, strerror(errno));
    exit(1);
  }
  freeaddrinfo(res);
  return fd;
}

bool hostile_write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

int hostile_connect_and_greet(const hostile_options_t *o) {
  int fd = hostile_connect(o);
  static const char opening[] = "NAME hostile\nREPLICATE\nPING 1\n";
  if (!hostile_write_all(fd, opening, sizeof opening - 1)) {
    fprintf(stderr, "hostile: the mock closed during the opening\n");
    exit(1);
  }
  /* Wait for SERVER so the connection is established on both sides. */
  char buf[4096];
  size_t used = 0;
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  for (int waited = 0; waited < 5000 && used < sizeof buf - 1; waited += 50) {
    if (poll(&pfd, 1, 50) <= 0) continue;
    ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
    if (n <= 0) break;
    used += (size_t)n;
    buf[used] = '\0';
    if (strstr(buf, "SERVER ") != NULL && strchr(strstr(buf, "SERVER "), '\n') != NULL) break;
  }
  return fd;
}

void hostile_log(const hostile_options_t *o, const char *message) {
  if (o->log_path == NULL) return;
  FILE *f = fopen(o->log_path, "a");
  if (f == NULL) return;
  fprintf(f, "2000-01-01 00:00:00,000 - hostile - 1 - INFO - main - %s\n", message);
  fclose(f);
}

void hostile_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void hostile_wait_for_term(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sig = 0;
  sigwait(&set, &sig);
}
