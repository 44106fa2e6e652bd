/* mockhs: the mock homeserver as a standalone command, for running a worker by hand
 * or under a debugger against a scripted main. Prints the transcript as it happens.
 * --fixture and --proxy select the modes of mockhs_modes.h. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockhs.h"
#include "mockhs_modes.h"
#include "rc_clock.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: mockhs [--dialect 2018|modern] [--server-name NAME] [--port N]\n"
          "              [--ping-interval-ms N] [--no-ping] [--torture LEVEL] [--seed N]\n"
          "       mockhs --fixture FILE [--instance-name NAME] [--sut-log FILE]\n"
          "              [--sut-metrics URL] [--sut-http URL]\n"
          "              [--connect-timeout-ms N] [same options as above]\n"
          "       mockhs --proxy HOST:PORT [--record FILE] [--sessions N] [--port N]\n"
          "              [--dialect D] [--requirements IDS] [--requirement TEXT]\n"
          "\n"
          "Listens for direct-TCP replication on 127.0.0.1 (port 0 = any free port), acts\n"
          "as a Synapse main process of the given dialect (SERVER + PING first, POSITIONs\n"
          "in answer to REPLICATE, keepalive PINGs) and prints every line each way in the\n"
          "transcript notation of shared/reference ('>' mock to worker, '<' worker to mock).\n"
          "Stops on SIGINT or SIGTERM.\n"
          "\n"
          "--fixture FILE plays a fixture (docs/FIXTURES.md) to the worker that connects,\n"
          "prints each step as it passes or fails, and exits 0 (passed), 1 (a step failed)\n"
          "or 2 (bad fixture or usage). Defaults: instance name worker1, connect timeout\n"
          "60000 ms; log~ steps need --sut-log, metric steps --sut-metrics (the worker's\n"
          "metrics URL), sut-http steps --sut-http (its HTTP base URL). The fake federation\n"
          "remotes of a fixture's 'remotes' header are started here and their URLs printed\n"
          "(give them to the worker); fixtures with db steps are refused (replcheck only).\n"
          "\n"
          "--proxy HOST:PORT forwards every worker that connects to the real main at\n"
          "HOST:PORT, prints every line, and when stopped (or after --sessions N worker\n"
          "connections ended) writes the session as a fixture to --record FILE.\n"
          "\n"
          "--torture LEVEL (0..3) holds, splits and reorders what the mock sends and drops\n"
          "the first connection; --seed N makes the schedule repeatable (default: clock).\n");
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
  mockhs_print_ledger(mockhs_ledger(p->mock), &p->next_seq);
  return stop_requested != 0;
}

static int parse_long(const char *text, const char *option, long max, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0 || v > max) {
    fprintf(stderr, "mockhs: %s expects an integer in 0..%ld, got '%s'\n", option, max, text);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_seed(const char *text, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
    fprintf(stderr, "mockhs: --seed expects a decimal number, got '%s'\n", text);
    return -1;
  }
  *out = v;
  return 0;
}

static int run_plain(struct event_base *base, const mockhs_args_t *a) {
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, a->dialect, a->server_name);
  cfg.port = a->port;
  cfg.ping_interval_ms = a->ping_interval_ms;
  cfg.torture_level = a->torture_level;
  cfg.torture_seed = a->seed;
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  if (mock == NULL) {
    fprintf(stderr, "mockhs: %s\n", err.msg);
    return 1;
  }
  struct event *sigint = evsignal_new(base, SIGINT, on_signal, NULL);
  struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
  event_add(sigint, NULL);
  event_add(sigterm, NULL);
  printf("mockhs: listening on 127.0.0.1:%d (dialect %s, server name %s)\n", mockhs_port(mock),
         proto_dialect_name(a->dialect), a->server_name);
  if (a->torture_level > 0)
    printf("mockhs: torture level %d, seed %llu\n", a->torture_level, (unsigned long long)a->seed);
  fflush(stdout);
  printer_t printer = {.mock = mock, .next_seq = 1};
  while (!mockhs_run_until(mock, print_new, &printer, 1000, 100)) {
  }
  event_free(sigint);
  event_free(sigterm);
  mockhs_destroy(mock);
  return 0;
}

int main(int argc, char **argv) {
  mockhs_args_t a = {
      .dialect = PROTO_DIALECT_MODERN,
      .server_name = "test.local",
      .ping_interval_ms = 5000,
      .instance_name = "worker1",
      .connect_timeout_ms = 60000,
      .requirements = NULL,
      .requirement = "The worker answers the main's lines as the recorded worker did."};
  bool seed_given = false;
  enum {
    O_FIXTURE = 256,
    O_INSTANCE,
    O_SUT_LOG,
    O_SUT_METRICS,
    O_SUT_HTTP,
    O_CONNECT,
    O_PROXY,
    O_RECORD,
    O_SESSIONS,
    O_REQS,
    O_REQ,
    O_TORTURE,
    O_SEED
  };
  static const struct option options[] = {
      {"dialect", required_argument, NULL, 'd'},
      {"server-name", required_argument, NULL, 's'},
      {"port", required_argument, NULL, 'p'},
      {"ping-interval-ms", required_argument, NULL, 'i'},
      {"no-ping", no_argument, NULL, 'n'},
      {"help", no_argument, NULL, 'h'},
      {"fixture", required_argument, NULL, O_FIXTURE},
      {"instance-name", required_argument, NULL, O_INSTANCE},
      {"sut-log", required_argument, NULL, O_SUT_LOG},
      {"sut-metrics", required_argument, NULL, O_SUT_METRICS},
      {"sut-http", required_argument, NULL, O_SUT_HTTP},
      {"connect-timeout-ms", required_argument, NULL, O_CONNECT},
      {"proxy", required_argument, NULL, O_PROXY},
      {"record", required_argument, NULL, O_RECORD},
      {"sessions", required_argument, NULL, O_SESSIONS},
      {"requirements", required_argument, NULL, O_REQS},
      {"requirement", required_argument, NULL, O_REQ},
      {"torture", required_argument, NULL, O_TORTURE},
      {"seed", required_argument, NULL, O_SEED},
      {NULL, 0, NULL, 0},
  };
  int opt;
  long v;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (opt) {
      case 'd':
        if (proto_dialect_from_name(optarg, &a.dialect) != 0) {
          fprintf(stderr, "mockhs: --dialect must be '2018' or 'modern', got '%s'\n", optarg);
          return 2;
        }
        a.dialect_given = true;
        break;
      case 's':
        a.server_name = optarg;
        break;
      case 'p':
        if (parse_long(optarg, "--port", 65535, &v) != 0) return 2;
        a.port = (int)v;
        break;
      case 'i':
        if (parse_long(optarg, "--ping-interval-ms", 65535 * 1000L, &v) != 0) return 2;
        a.ping_interval_ms = (int)v;
        a.ping_given = true;
        break;
      case 'n':
        a.ping_interval_ms = 0;
        a.ping_given = true;
        break;
      case O_FIXTURE:
        a.fixture_path = optarg;
        break;
      case O_INSTANCE:
        a.instance_name = optarg;
        break;
      case O_SUT_LOG:
        a.sut_log = optarg;
        break;
      case O_SUT_METRICS:
        a.sut_metrics = optarg;
        break;
      case O_SUT_HTTP:
        a.sut_http = optarg;
        break;
      case O_CONNECT:
        if (parse_long(optarg, "--connect-timeout-ms", 86400000L, &v) != 0) return 2;
        a.connect_timeout_ms = (int)v;
        break;
      case O_PROXY:
        a.proxy_target = optarg;
        break;
      case O_RECORD:
        a.record_path = optarg;
        break;
      case O_SESSIONS:
        if (parse_long(optarg, "--sessions", 1000000, &v) != 0) return 2;
        a.sessions = (int)v;
        break;
      case O_REQS:
        a.requirements = optarg;
        break;
      case O_REQ:
        a.requirement = optarg;
        break;
      case O_TORTURE:
        if (parse_long(optarg, "--torture", 3, &v) != 0) return 2;
        a.torture_level = (int)v;
        break;
      case O_SEED:
        if (parse_seed(optarg, &a.seed) != 0) return 2;
        seed_given = true;
        break;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "mockhs: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  if (a.fixture_path != NULL && a.proxy_target != NULL) {
    fprintf(stderr, "mockhs: --fixture and --proxy exclude each other\n");
    return 2;
  }
  if (a.proxy_target == NULL && (a.record_path != NULL || a.sessions != 0)) {
    fprintf(stderr, "mockhs: --record and --sessions belong to --proxy\n");
    return 2;
  }
  if (a.requirements == NULL)
    a.requirements = a.dialect == PROTO_DIALECT_2018 ? "HS-01,HS-05" : "HS-01,HS-03";
  if (!seed_given) a.seed = (uint64_t)rc_clock_wall_ms();

  struct event_base *base = event_base_new();
  if (base == NULL) {
    fprintf(stderr, "mockhs: cannot create the event loop\n");
    return 1;
  }
  int status = a.fixture_path != NULL   ? mockhs_play_fixture(base, &a)
               : a.proxy_target != NULL ? mockhs_run_proxy(base, &a)
                                        : run_plain(base, &a);
  event_base_free(base);
  return status;
}
