/* mockhs_modes: what the standalone `mockhs` command does besides playing a main by hand
 * (mockhs_main.c parses the command line and calls one of these):
 *   --fixture FILE   play one fixture to whatever worker connects, print each step as it
 *                    passes or fails, exit 0 (all passed), 1 (a step failed) or 2 (the
 *                    fixture is broken);
 *   --proxy H:P      forward workers to a real main, print every line, and on SIGINT or
 *                    SIGTERM (or after --sessions N) write the session as a fixture.
 * Both print the transcript as it happens. Output goes to stdout, problems to stderr. */
#ifndef MOCKHS_MODES_H
#define MOCKHS_MODES_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "ledger.h"
#include "proto.h"

typedef struct mockhs_args {
  proto_dialect_t dialect;
  bool dialect_given;
  const char *server_name;
  int port;
  int ping_interval_ms;
  bool ping_given;
  int torture_level;
  uint64_t seed;
  /* --fixture */
  const char *fixture_path;
  const char *instance_name;
  const char *sut_log;
  const char *sut_metrics; /* the worker's metrics URL, for metric steps */
  const char *sut_http;    /* the worker's HTTP base URL, for sut-http steps */
  int connect_timeout_ms;
  /* --proxy */
  const char *proxy_target; /* "HOST:PORT" */
  const char *record_path;
  int sessions; /* stop after this many worker connections ended (0 = never) */
  const char *requirements;
  const char *requirement;
} mockhs_args_t;

/* Prints ledger entries from *next_seq on as transcript rows, advancing it. */
void mockhs_print_ledger(const ledger_t *ledger, uint64_t *next_seq);

int mockhs_play_fixture(struct event_base *base, const mockhs_args_t *args);
int mockhs_run_proxy(struct event_base *base, const mockhs_args_t *args);

#endif
