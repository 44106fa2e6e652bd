/* federation/rows: how a federation sender applies the rows of the `federation` stream
 * (requirements RD-04 and RD-10, shared/spec/requirements.md §5; replication-protocol.md
 * §2.4, §4.3). The mock main emits "e" rows carrying a probe EDU for remote1
 * (federation_probe.h); the fake remote records what arrives. D = the profile's
 * timing.federation_delivery_ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation_probe.h"
#include "rc_clock.h"
#include "suite_observe.h"
#include "suite_util.h"

#define ORDER_UNITS 4

/* ---- RD-04 ------------------------------------------------------------------------ */

/* The first probe's delivery is held for 2 D by remote1; the later units arrive while it
 * is in flight and must still reach remote1 after it, in row order. */
static void order_body(presence_scene_t *s) {
  rc_test_t *t = s->t;
  int slow_ms = 2 * s->delivery_ms;
  fake_remote_set_reply(s->remotes[0], 200, slow_ms);
  int64_t token = 0;
  int seq = 1;
  if (!federation_probe_emit(s, NULL, 0, &seq, 1, &token)) return;
  /* The first transaction is on its way (its answer held) before the rest is sent. */
  if (!federation_probe_wait(s, 1, s->delivery_ms)) {
    presence_scene_note_receipts(s);
    rc_fail(t, "RD-04: the EDU of the first unit reaches remote1 within D",
            "nothing arrived within %d ms of the row", s->delivery_ms);
    return;
  }
  fake_remote_set_reply(s->remotes[0], 200, 0);
  for (seq = 2; seq <= ORDER_UNITS; seq++)
    if (!federation_probe_emit(s, NULL, 0, &seq, 1, &token)) return;
  if (!presence_scene_wait_ack(s, token, slow_ms + s->delivery_ms)) return;
  federation_probe_wait(s, ORDER_UNITS, slow_ms + 2 * s->delivery_ms);
  rc_observe(t, s->delivery_ms);
  int got[16];
  size_t n = federation_probe_received(s, got, 16);
  bool in_order = n == ORDER_UNITS;
  for (size_t i = 0; in_order && i < n; i++) in_order = got[i] == (int)i + 1;
  if (!in_order) {
    char list[128];
    presence_scene_note_receipts(s);
    rc_fail(t,
            "RD-04: EDUs of units 1..4 reach remote1 once each, in row order (1, 2, 3, 4), "
            "while remote1 holds the first delivery",
            "remote1 received the probes in the order %s",
            federation_probe_describe(got, n < 16 ? n : 16, list, sizeof list));
    return;
  }
  suite_log_check_rdata_order(t, "RD-04: units of one stream are applied in arrival order "
                                 "('Received rdata' tokens strictly increase per stream)");
}

static void order_slow_first_delivery(rc_test_t *t) {
  presence_scene_t s;
  if (federation_probe_open(t, &s)) order_body(&s);
  presence_scene_close(&s);
}

/* ---- RD-10 ------------------------------------------------------------------------ */

typedef struct unknown_row_log {
  char match[512];
} unknown_row_log_t;

static bool unknown_row_logged(const sutlog_record_t *r, void *arg) {
  unknown_row_log_t *w = arg;
  if (!r->is_record || strstr(r->message, "Unrecognized federation row type") == NULL ||
      strstr(r->message, "zz") == NULL)
    return false;
  snprintf(w->match, sizeof w->match, "%s %.400s", r->level, r->message);
  return true;
}

/* A unit of a "zz" row (batch) and a probe EDU row: the EDU is delivered and the unit
 * acknowledged. */
static void unknown_type_body(presence_scene_t *s) {
  rc_test_t *t = s->t;
  long offset = suite_log_offset(t);
  static const char *const UNKNOWN[] = {"[\"zz\",{}]"};
  int seq = 1;
  int64_t token = 0;
  if (!federation_probe_emit(s, UNKNOWN, 1, &seq, 1, &token)) return;
  int64_t at = rc_clock_mono_ms();
  if (!presence_scene_wait_ack(s, token, s->delivery_ms)) return;
  if (!federation_probe_wait(s, 1, (int)(at + s->delivery_ms - rc_clock_mono_ms()))) {
    presence_scene_note_receipts(s);
    rc_fail(t,
            "RD-10: a federation row of unknown type is skipped and the other rows of its "
            "unit are processed: the EDU row after it reaches remote1 within D",
            "remote1 received no probe within %d ms of the unit [\"zz\",{}] + probe 1 "
            "(acknowledged as %lld)",
            s->delivery_ms, (long long)s->acked);
    return;
  }
  unknown_row_log_t w = {{0}};
  if (suite_log_wait(t, &offset, 200, unknown_row_logged, &w))
    rc_note(t, "the SUT logged: %s", w.match);
  else
    rc_note(t, "no 'Unrecognized federation row type' line for 'zz' in the log (Synapse logs "
               "one; not required)");
}

static void unknown_type_skipped(rc_test_t *t) {
  presence_scene_t s;
  if (federation_probe_open(t, &s)) unknown_type_body(&s);
  presence_scene_close(&s);
}

#define FEDERATION_ROW(...) \
  RC_TEST_ROW(.transports = RC_TRANSPORT_ALL, .roles = PROFILE_ROLE_FEDSENDER, __VA_ARGS__)

const rc_test_def_t federation_rows_tests[] = {
    FEDERATION_ROW(.id = "federation/order/slow-first-delivery", .requirements = "RD-04",
                   .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_MODERN,
                   .requirement =
                       "Rows of one stream are applied in arrival order, one unit at a time: "
                       "EDUs of four federation units reach their destination in row order "
                       "while it holds the first delivery for 2 D, and the log's 'Received "
                       "rdata' tokens strictly increase per stream.",
                   .source = "synapse handler.py@v1.66.0 per-stream command queues; "
                             "federation/sender/per_destination_queue.py@v1.66.0; "
                             "replication-protocol.md §2.4",
                   .run = order_slow_first_delivery),
    FEDERATION_ROW(.id = "federation/rows/unknown-type-skipped", .requirements = "RD-10",
                   .level = RC_LEVEL_MUST, .dialects = RC_DIALECT_ALL,
                   .requirement = "A federation row of unknown type is skipped and the other "
                                  "rows of the same unit are processed: for the unit batch "
                                  "[\"zz\",{}] + n [\"e\",{...}] the EDU reaches its "
                                  "destination and n is acknowledged.",
                   .source = "synapse federation/send_queue.py@v1.66.0 "
                             "process_rows_for_federation; replication-protocol.md §4.3",
                   .run = unknown_type_skipped),
};
const size_t federation_rows_test_count =
    sizeof federation_rows_tests / sizeof federation_rows_tests[0];
