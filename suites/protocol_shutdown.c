/* protocol/shutdown: what the worker does with its replication connection when it is
 * asked to stop. Requirements CL-05, RC-08 (shared/spec/requirements.md §4, §13). */
#include <stdio.h>
#include <string.h>

#include "suite_util.h"

/* Starts, lets the opening settle, and sends SIGTERM. Returns false (with an outcome
 * recorded) if the SUT did not exit within the profile's grace period. */
static bool start_and_terminate(rc_test_t *t, int *conn, uint64_t *term_seq, double *seconds) {
  if (!rc_start(t)) return false;
  if (suite_opening_server_line(t, conn) == NULL) return false;
  rc_observe(t, 200);
  *term_seq = rc_now_seq(t);
  int status = 0;
  if (!rc_terminate_sut(t, seconds, &status)) {
    rc_fail(t, "the worker exits after SIGTERM", "still running %d ms after SIGTERM",
            t->profile->timing.shutdown_grace_ms);
    return false;
  }
  return true;
}

/* CL-05: SIGTERM closes the replication connection with a FIN, then the worker exits. */
static void shutdown_closes(rc_test_t *t) {
  int conn;
  uint64_t term_seq;
  double seconds;
  if (!start_and_terminate(t, &conn, &term_seq, &seconds)) return;
  const ledger_entry_t *close = suite_wait_sut_close(t, conn, term_seq, 500);
  if (close == NULL) {
    rc_fail(t, "the worker closes its replication connection on SIGTERM",
            "the worker exited but the mock saw no close of c%d", conn);
  } else if (close->side != LEDGER_SIDE_SUT || close->how != LEDGER_CLOSE_FIN) {
    rc_fail(t, "an orderly close (FIN) by the worker", "the connection ended: closed by %s (%s)",
            ledger_side_name(close->side), ledger_close_how_name(close->how));
  }
}

/* RC-08: no new replication connection once shutdown has begun. */
static void shutdown_no_reconnect(rc_test_t *t) {
  int conn;
  uint64_t term_seq;
  double seconds;
  if (!start_and_terminate(t, &conn, &term_seq, &seconds)) return;
  rc_match_t open = {.entry_kind = LEDGER_OPEN};
  const ledger_entry_t *e = rc_wait(t, term_seq, &open, 0);
  if (e != NULL)
    rc_fail(t, "no connection attempt between SIGTERM and exit",
            "the worker opened connection c%d after SIGTERM", e->conn_id);
}

const rc_test_def_t protocol_shutdown_tests[] = {
    RC_TEST_ROW(.id = "protocol/shutdown/sigterm-closes", .requirements = "CL-05",
                .level = RC_LEVEL_MUST,
                .requirement = "On SIGTERM the worker closes its replication connection and exits.",
                .source = "reference/synapse-1.66/worker2.log, fake-main.txt c7",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .run = shutdown_closes),
    RC_TEST_ROW(.id = "protocol/shutdown/no-reconnect", .requirements = "RC-08",
                .level = RC_LEVEL_MUST,
                .requirement = "Once shutdown has begun, the worker makes no new replication "
                               "connection attempt.",
                .source = "synapse client.py@v0.33.3 (stopTrying before shutdown)",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .run = shutdown_no_reconnect),
};
const size_t protocol_shutdown_test_count =
    sizeof protocol_shutdown_tests / sizeof protocol_shutdown_tests[0];
