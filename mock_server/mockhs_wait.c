/* Running the mock's event loop with deadlines (mockhs.h: mockhs_wait_for and friends).
 * Under --torture the mock holds lines before writing them: a wait's timeout counts from
 * the moment what was held when the wait began is on the wire, and a torture drop of a
 * connection during the wait restarts it, so the mock's own delays never shorten the
 * time a SUT gets to react. */
#include <stdlib.h>

#include "mockhs_internal.h"
#include "rc_clock.h"

void mock_loop_once_until(mockhs_t *mock, int64_t deadline_ms) {
  int64_t left = deadline_ms - rc_clock_mono_ms();
  if (left < 0) left = 0;
  struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000)};
  evtimer_add(mock->wake_timer, &tv);
  event_base_loop(mock->base, EVLOOP_ONCE);
  evtimer_del(mock->wake_timer);
}

const ledger_entry_t *mockhs_wait_until(mockhs_t *mock, uint64_t from_seq, mockhs_match_fn match,
                                        void *arg, int64_t deadline_ms) {
  uint64_t seq =
      from_seq < ledger_first_seq(mock->ledger) ? ledger_first_seq(mock->ledger) : from_seq;
  for (;;) {
    for (; seq < ledger_next_seq(mock->ledger); seq++) {
      const ledger_entry_t *e = ledger_get(mock->ledger, seq);
      if (e != NULL && match(e, arg)) return e;
    }
    if (rc_clock_mono_ms() >= deadline_ms) return NULL;
    mock_loop_once_until(mock, deadline_ms);
  }
}

/* When a wait that began at `start` with `timeout_ms` ends. */
static int64_t wait_deadline(const mockhs_t *mock, int64_t start, int64_t settled, int timeout_ms) {
  int64_t origin = settled > start ? settled : start;
  if (mock->torture_drop_ms > origin) origin = mock->torture_drop_ms;
  return origin + timeout_ms;
}

const ledger_entry_t *mockhs_wait_for(mockhs_t *mock, uint64_t from_seq, mockhs_match_fn match,
                                      void *arg, int timeout_ms) {
  int64_t start = rc_clock_mono_ms();
  int64_t settled = mockhs_output_settled_ms(mock);
  uint64_t seq = from_seq;
  for (;;) {
    /* Re-evaluated: a torture drop during the wait moves the deadline. */
    int64_t deadline = wait_deadline(mock, start, settled, timeout_ms);
    int64_t slice = rc_clock_mono_ms() + 50;
    const ledger_entry_t *e =
        mockhs_wait_until(mock, seq, match, arg, slice < deadline ? slice : deadline);
    if (e != NULL) return e;
    seq = ledger_next_seq(mock->ledger);
    if (rc_clock_mono_ms() >= wait_deadline(mock, start, settled, timeout_ms)) return NULL;
  }
}

void mockhs_run_for(mockhs_t *mock, int duration_ms) {
  int64_t start = rc_clock_mono_ms();
  int64_t settled = mockhs_output_settled_ms(mock);
  int64_t deadline = (settled > start ? settled : start) + duration_ms;
  while (rc_clock_mono_ms() < deadline) mock_loop_once_until(mock, deadline);
}

bool mockhs_run_until(mockhs_t *mock, bool (*cond)(void *arg), void *arg, int timeout_ms,
                      int poll_ms) {
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  for (;;) {
    if (cond(arg)) return true;
    int64_t now = rc_clock_mono_ms();
    if (now >= deadline) return cond(arg);
    int64_t next = now + poll_ms;
    mock_loop_once_until(mock, next < deadline ? next : deadline);
  }
}
