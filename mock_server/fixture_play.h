/* fixture_play: plays a loaded fixture (fixture.h) to a SUT through a mock homeserver,
 * step by step, and says which step passed, failed or was not reached.
 *
 * The caller creates the mock with fixture_apply_config() applied to its configuration,
 * starts the SUT (or waits for one started by hand), and calls fixture_play(), which
 * runs the mock's event loop until the script ends or a step fails. The first failing
 * step ends the play: FIXTURE_FAILED when the SUT did not do what the step says,
 * FIXTURE_BROKEN when the step cannot be carried out at all (the fixture asks for
 * something this mock cannot do, e.g. a row on a stream it does not write).
 *
 * Ownership: the result's strings are malloc'd; free with fixture_result_clear(). The
 * fixture and the mock are borrowed. Runs on the mock's event loop thread. */
#ifndef FIXTURE_PLAY_H
#define FIXTURE_PLAY_H

#include <stddef.h>

#include "fake_remote.h"
#include "fixture.h"
#include "mockhs.h"

typedef struct fixture_env {
  mockhs_t *mock;
  fixture_vars_t vars;  /* server_name NULL: the mock's; writer NULL: the mock's instance */
  const char *log_path; /* the SUT's log for log~ steps; NULL: they cannot be checked */
  /* The SUT's metrics URL (metric steps) and HTTP base URL (sut-http steps); NULL: those
   * steps cannot be checked. Requests block the mock's loop for at most the step's
   * deadline (and 2 s per scrape). */
  const char *metrics_url;
  const char *http_url;
  /* The fake federation remotes, one per name of the fixture's `remotes` header, in
   * that order, on the mock's event base (remote steps); NULL: they cannot be checked. */
  fake_remote_t *const *remotes;
  size_t remote_count;
  /* Samples a quantity of the SUT's database (db steps: "sessions",
   * "idle-in-transaction") into *value, with the sessions it counted described in seen;
   * -1 with seen saying why it could not. Blocks the mock's loop for one query. NULL: db
   * steps cannot be checked. */
  int (*db_sample)(void *arg, const char *quantity, double *value, char *seen, size_t cap);
  void *db_arg;
  int first_connect_ms; /* at least this long for the first connection (0: its deadline) */
  /* Optional: told each step's trace line as it completes, and called at least every
   * 100 ms while the play waits (to print the ledger as it grows). */
  void (*on_step)(void *arg, const char *trace_line);
  void (*on_tick)(void *arg);
  void *arg;
  /* Sends the SUT SIGTERM and waits for it to exit (the `terminate` step): true when it
   * exited in time, else false with why filled. NULL: the step cannot be played. */
  bool (*terminate)(void *arg, char *why, size_t cap);
  void *terminate_arg;
} fixture_env_t;

typedef enum fixture_outcome {
  FIXTURE_PASSED = 0,
  FIXTURE_FAILED,
  FIXTURE_BROKEN,
} fixture_outcome_t;

typedef struct fixture_result {
  fixture_outcome_t outcome;
  int line;       /* the failing step's line in the file (0 when passed) */
  char *expected; /* "<file>:<line>: <step>" of the failing step */
  char *actual;   /* what happened instead */
  char *trace;    /* one line per step: ok / FAIL / not reached, with what was seen */
  size_t steps_passed;
  size_t steps_total;
} fixture_result_t;

/* Sets cfg's mock behaviour from the fixture: main or scripted, its streams (pointers
 * into the fixture, which must outlive mockhs_create) and its keepalive interval. */
void fixture_apply_config(const fixture_t *fixture, mockhs_config_t *cfg);

/* Plays the script. out is filled in every case. */
void fixture_play(const fixture_t *fixture, const fixture_env_t *env, fixture_result_t *out);

void fixture_result_clear(fixture_result_t *result);

#endif
