/* mockhs: the mock homeserver as a standalone command, for running a worker by hand
 * or under a debugger against a scripted main. Prints the transcript as it happens. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockhs.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: mockhs [--dialect 2018|modern] [--server-name NAME] [--port N]\n"
          "              [--ping-interval-ms N] [--no-ping]\n"
          "\n"
          "Listens for direct-TCP replication on 127.0.0.1 (port 0 = any free port), acts\n"
          "as a Synapse main process of the given dialect (SERVER + PING first, POSITIONs\n"
          "in answer to REPLICATE, keepalive PINGs) and prints every line each way in the\n"
          "transcript notation of shared/reference ('>' mock to worker, '<' worker to mock).\n"
          "Stops on SIGINT or SIGTERM.\n");
}

static volatile sig_atomic_t stop_requested;

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  (void)arg;
  stop_requested = 1;
}

typedef struct printer {
  mockhs_t *mock;
  uint64_t next_seq;
} printer_t;

/* Prints new ledger entries; returns true once a stop was requested. */
static bool print_new(void *arg) {
  printer_t *p = arg;
  ledger_t *ledger = mockhs_ledger(p->mock);
  char row[PROTO_MAX_LINE * 4 + 256];
  for (; p->next_seq < ledger_next_seq(ledger); p->next_seq++) {
    const ledger_entry_t *e = ledger_get(ledger, p->next_seq);
    if (e == NULL) continue;
    ledger_format_entry(ledger, e, row, sizeof row);
    printf("%s\n", row);
  }
  fflush(stdout);
  return stop_requested != 0;
}

static int parse_int(const char *text, const char *option, int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0 || v > 65535 * 1000L) {
    fprintf(stderr, "mockhs: %s expects a non-negative integer, got '%s'\n", option, text);
    return -1;
  }
  *out = (int)v;
  return 0;
}

int main(int argc, char **argv) {
  proto_dialect_t dialect = PROTO_DIALECT_MODERN;
  const char *server_name = "test.local";
  int port = 0, ping_ms = 5000;
  static const struct option options[] = {
      {"dialect", required_argument, NULL, 'd'},
      {"server-name", required_argument, NULL, 's'},
      {"port", required_argument, NULL, 'p'},
      {"ping-interval-ms", required_argument, NULL, 'i'},
      {"no-ping", no_argument, NULL, 'n'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int opt;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (opt) {
      case 'd':
        if (proto_dialect_from_name(optarg, &dialect) != 0) {
          fprintf(stderr, "mockhs: --dialect must be '2018' or 'modern', got '%s'\n", optarg);
          return 2;
        }
        break;
      case 's': server_name = optarg; break;
      case 'p':
        if (parse_int(optarg, "--port", &port) != 0 || port > 65535) return 2;
        break;
      case 'i':
        if (parse_int(optarg, "--ping-interval-ms", &ping_ms) != 0) return 2;
        break;
      case 'n': ping_ms = 0; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "mockhs: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }

  struct event_base *base = event_base_new();
  if (base == NULL) {
    fprintf(stderr, "mockhs: cannot create the event loop\n");
    return 1;
  }
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, dialect, server_name);
  cfg.port = port;
  cfg.ping_interval_ms = ping_ms;
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  if (mock == NULL) {
    fprintf(stderr, "mockhs: %s\n", err.msg);
    event_base_free(base);
    return 1;
  }
  struct event *sigint = evsignal_new(base, SIGINT, on_signal, NULL);
  struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  printf("mockhs: listening on 127.0.0.1:%d (dialect %s, server name %s)\n", mockhs_port(mock),
         proto_dialect_name(dialect), server_name);
  fflush(stdout);

  printer_t printer = {.mock = mock, .next_seq = 1};
  while (!mockhs_run_until(mock, print_new, &printer, 1000, 100)) {
  }
  event_free(sigint);
  event_free(sigterm);
  mockhs_destroy(mock);
  event_base_free(base);
  return 0;
}
