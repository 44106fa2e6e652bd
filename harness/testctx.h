/* testctx: what one conformance test sees and uses.
 *
 * The runner creates an rc_test_t per test (in the forked Check child), with its own
 * temp directory, event loop, mock homeserver configuration and per-test server name;
 * the test body calls rc_start() to start the mock and the SUT, drives the mock, waits
 * on the ledger with deadlines, and records at most one outcome with rc_fail() or
 * rc_error(). A body that returns without recording anything passed. After the body
 * the runner stops the SUT, gathers evidence (ledger tail, SUT log tail) and writes the
 * outcome file the parent turns into a verdict.
 *
 * Test bodies return as soon as an rc_* call reports failure (false/NULL): teardown
 * is the runner's job, so a body never needs to clean up.
 * One thread: everything runs on the test process's event loop. */
#ifndef TESTCTX_H
#define TESTCTX_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "ledger.h"
#include "mockhs.h"
#include "profile.h"
#include "registry.h"
#include "report.h"
#include "sut.h"

/* A fake remote server the SUT is told about (role fedsender). */
typedef struct rc_remote {
  const char *name; /* its server name: {remote_name} */
  const char *url;  /* its base URL: {remote_url} */
} rc_remote_t;

struct rc_test {
  const rc_test_def_t *def;
  int index;          /* 1-based position in the run (per-test names) */
  const profile_t *profile;
  const char *bin_dir;
  uint64_t seed;      /* for the body's random choices: --seed mixed with the test id and
                       * repetition (the runner sets it after rc_test_create) */
  uint64_t run_seed;  /* --seed of the run, to print how to reproduce a torture failure */
  int torture_level;  /* --torture: the mock's torture level, seeded by `seed` (0 = off) */
  const char *record_dir; /* --record: the body's exchange is written there as a fixture */
  char *work_dir;     /* per-test directory (kept on failure) */
  char *log_path;     /* {log_path}: <work_dir>/sut.log, for profiles to point the SUT at */
  char *log_file;     /* the SUT log the harness reads: log.path expanded, or output_path */
  char *output_path;  /* the SUT's stdout+stderr */
  char *server_name;  /* per-test server name, also in the SUT's config */
  struct event_base *base;
  mockhs_config_t mock_config; /* adjustable by the body before rc_start() */
  const rc_remote_t *remotes;  /* set by the body before rc_start(): the profile's
                                * fedsender.remote_args are appended to the command once
                                * per remote; the body owns the array */
  size_t remote_count;
  mockhs_t *mock;
  sut_t *sut;
  struct redis_server *redis; /* the test's private redis-server (transport redis) */
  struct rc_vars *vars;       /* placeholder values of this test (set by rc_start) */
  const struct pg_cluster *pg; /* the run's PostgreSQL cluster (role pg), or NULL */
  const char *pg_error;        /* why pg is NULL although the profile has role pg */
  char *db_name;               /* this test's database (role pg, set by rc_start) */
  char *db_dsn;                /* {db_dsn}: the SUT's connection string to it */
  struct pg_passive *pg_passive; /* DB-03 sampler of the SUT's sessions (role pg) */
  int64_t started_ms;
  int64_t probe_floor; /* highest token a position probe used (tokens only grow) */

  /* outcome */
  bool decided;
  verdict_t verdict;
  bool sut_start_failed;
  char *message;
  char *expected;
  char *actual;
  char *notes; /* extra evidence lines added by the body */
  char *passive_violation; /* first passive violation among entries the ledger dropped */
};

/* Starts the mock (with t->mock_config) and the SUT, then waits for readiness as the
 * profile says. On failure records ERROR (SUT could not start / never ready) and
 * returns false. */
bool rc_start(rc_test_t *t);

/* Expands a profile template (field names it in errors, e.g. "metrics.url") with this
 * test's placeholder values, the ones the SUT's command line got, plus `extra` ones
 * such as {n}. Only after rc_start(). Returns a malloc'd string, or NULL after
 * recording an ERROR. */
char *rc_expand(rc_test_t *t, const char *field, const char *template_text,
                const profile_var_t *extra, size_t extra_count);

/* Records a failed requirement: FAIL for MUST rows, NON-STRICT for SHOULD rows. The
 * first recorded outcome wins. Always returns false (for `return rc_fail(...)`). */
bool rc_fail(rc_test_t *t, const char *expected, const char *actual_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a harness or set-up problem (ERROR). Returns false. */
bool rc_error(rc_test_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds a line to the evidence shown with a failure. */
void rc_note(rc_test_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What a wait looks for in the ledger. Zero fields match anything. */
typedef struct rc_match {
  int conn_id;               /* 0 = any connection */
  ledger_kind_t entry_kind;  /* 0 = LEDGER_LINE */
  ledger_side_t side;        /* 0 = any side */
  proto_command_kind_t command; /* lines: parsed command kind (PROTO_CMD_NONE = any line) */
  const char *prefix;        /* lines: text starts with this */
} rc_match_t;

/* Entries of a connection torture drops in its opening (mockhs.h) never match: tests see
 * the worker's next connection instead. */
bool rc_entry_matches(const rc_test_t *t, const ledger_entry_t *e, const rc_match_t *m);

/* Waits (running the loop) for the first entry at or after from_seq matching m.
 * Returns it, or NULL after timeout_ms (nothing recorded: the body decides). */
const ledger_entry_t *rc_wait(rc_test_t *t, uint64_t from_seq, const rc_match_t *m,
                              int timeout_ms);
/* The next ledger sequence number (use as from_seq for "from now on"). */
uint64_t rc_now_seq(rc_test_t *t);
/* Runs the loop for an observation window. */
void rc_observe(rc_test_t *t, int duration_ms);

/* Parses a ledger line written by the SUT in the profile's dialect. */
bool rc_parse_sut_line(const rc_test_t *t, const ledger_entry_t *e, proto_command_t *cmd);

/* Milliseconds between two ledger entries (b - a). */
int64_t rc_entry_gap_ms(const ledger_entry_t *a, const ledger_entry_t *b);

/* Sends SIGTERM to the SUT and waits up to the profile's grace for it to exit,
 * running the mock's loop meanwhile so its last lines and close are recorded.
 * Returns true if it exited by itself and, within the same grace, left no process of
 * its group and none of its escaped descendants running (CL-05); otherwise false, with
 * a note saying what remained. *seconds gets the time the main process took. */
bool rc_terminate_sut(rc_test_t *t, double *seconds, int *status);

/* Sends SIGTERM to the SUT (with the same ledger note) and returns at once, for tests
 * that watch what the SUT does while it shuts down; the runner's teardown still stops
 * whatever is left. Returns false if there is no SUT. */
bool rc_sigterm_sut(rc_test_t *t);

/* Runner side ---------------------------------------------------------------------- */

/* Creates the context for one test in work_dir (which must exist). */
rc_test_t *rc_test_create(const rc_test_def_t *def, const profile_t *profile,
                          const char *bin_dir, const char *work_dir, int test_index,
                          rc_error_t *err);
/* Runs the body, stops the SUT, collects evidence into `out` (id etc. already set by
 * the caller). */
void rc_test_execute(rc_test_t *t, report_case_t *out);
void rc_test_destroy(rc_test_t *t);

#endif
