/* protocol/passive: the requirements checked on every test's ledger (harness/passive.h)
 * also get a test of their own, so a run that selects nothing else still checks them
 * over a plain session: opening, a few keepalive periods, a reconnect, shutdown. */
#include "suite_util.h"

static void passive_session(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  int window = 4 * t->profile->timing.ping_interval_ms;
  rc_observe(t, window < 1000 ? 1000 : window);
  if (t->profile->transport == PROFILE_TRANSPORT_TCP) {
    uint64_t seq = rc_now_seq(t);
    mockhs_close_conn(t->mock, conn, false);
    suite_wait_new_conn(t, seq, suite_reconnect_bound_ms(t) + 1000);
  }
  rc_terminate_sut(t, NULL, NULL);
  /* The verdict comes from the passive checks the runner applies after every test. */
}

const rc_test_def_t protocol_passive_tests[] = {
    RC_TEST_ROW(.id = "protocol/passive/wire-grammar", .requirements = "FR-02,KA-02,OUT-10",
                .level = RC_LEVEL_MUST,
                .requirement = "Every line the worker writes is a valid command of its dialect that a "
                               "worker may send (PING with data in 2018), and only the roles it has "
                               "send FEDERATION_ACK or USER_SYNC; checked on every test.",
                .source = "replication-protocol.md §1.1, §2.1; synapse PR #4748",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL, .run = passive_session),
};
const size_t protocol_passive_test_count = sizeof protocol_passive_tests / sizeof protocol_passive_tests[0];
