/* mockhs_guard: the mock homeserver's defences against a SUT that does not behave, so
 * the harness's memory stays bounded and its loop keeps turning whatever the SUT does:
 *   - back-pressure like a real main (spec §3.3): Twisted pauses the protocol once 64 KiB
 *     of output are unsent and Synapse queues commands meanwhile, closing with
 *     "ERROR Failed to keep up" past 10000 of them; the mock counts the lines it queues
 *     while that much output is unsent, applies the count once the SUT has taken
 *     nothing for MOCKHS_STALL_MS (one that reads slowly is let be, so tests can emit in
 *     bulk on a loaded machine), and caps the unsent bytes whatever happens, so a few
 *     huge lines cannot hold unbounded memory either;
 *   - a listener that cannot accept (no descriptors left, say after a SUT opened
 *     thousands of connections) pauses for a moment instead of spinning on a socket
 *     that stays readable. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <string.h>

#include "mockhs_internal.h"

#define ACCEPT_RETRY_MS 100

size_t mock_guard_admit_lines(mockhs_t *mock, mock_conn_t *conn, const size_t *ends, size_t count,
                              int64_t now, size_t *unsent_at_refusal) {
  (void)mock;
  struct evbuffer *out = bufferevent_get_output(conn->bev);
  size_t unsent = evbuffer_get_length(out);
  /* Less unsent than right after the last line: the SUT took some meanwhile. */
  if (unsent < conn->guard_expected) conn->guard_progress_ms = now;
  if (unsent >= MOCKHS_PAUSE_BYTES) {
    /* The loop writes only when it runs: hand the kernel what it takes now. */
    if (evbuffer_write(out, bufferevent_getfd(conn->bev)) > 0) conn->guard_progress_ms = now;
    unsent = evbuffer_get_length(out);
  }
  /* The lines of one call are queued at one instant: each is judged with the output
   * the lines before it left unsent. */
  size_t start = 0;
  for (size_t i = 0; i < count; i++) {
    size_t len = ends[i] - start + 1; /* with its LF */
    start = ends[i] + 1;
    conn->guard_expected = unsent + len;
    if (unsent < MOCKHS_PAUSE_BYTES) {
      conn->queued_while_paused = 0;
      unsent += len;
      continue;
    }
    if (conn->queued_while_paused++ == 0 && conn->guard_progress_ms < now)
      conn->guard_progress_ms = now; /* a pause starts: the stall clock with it */
    /* A real main counts every queued line; a SUT that still reads, only slower than a
     * test emits in bulk, is let be (only the byte cap applies). */
    bool stalled = now - conn->guard_progress_ms >= MOCKHS_STALL_MS;
    if ((conn->queued_while_paused <= MOCKHS_MAX_QUEUED_LINES || !stalled) &&
        unsent + len <= MOCKHS_MAX_QUEUED_BYTES) {
      unsent += len;
      continue;
    }
    *unsent_at_refusal = unsent;
    return i;
  }
  return count;
}

void mock_guard_refuse(mockhs_t *mock, mock_conn_t *conn, size_t unsent, int64_t now) {
  char note[256];
  int n = snprintf(note, sizeof note,
                   "the SUT failed to keep up: %zu bytes unsent, %u lines queued since 64 KiB "
                   "were, none taken for %lld ms (a real main closes past %u lines)",
                   unsent, conn->queued_while_paused, (long long)(now - conn->guard_progress_ms),
                   MOCKHS_MAX_QUEUED_LINES);
  mock_record(mock, conn->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, note, (size_t)n);
  /* Synapse writes this ERROR past its queue, straight to the transport. */
  static const char error[] = "ERROR Failed to keep up";
  mock_record(mock, conn->id, LEDGER_LINE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, error,
              sizeof error - 1);
  bufferevent_write(conn->bev, error, sizeof error - 1);
  bufferevent_write(conn->bev, "\n", 1);
  mock_conn_close_fin(mock, conn, "failed to keep up");
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg) {
  mockhs_t *mock = arg;
  (void)fd;
  (void)what;
  /* mockhs_set_listening(false) may have closed the listener meanwhile. */
  if (mock->listener != NULL) evconnlistener_enable(mock->listener);
}

void mock_guard_accept_error(struct evconnlistener *listener, void *arg) {
  mockhs_t *mock = arg;
  int err = EVUTIL_SOCKET_ERROR();
  int open = 0;
  for (const mock_conn_t *c = mock->conns; c != NULL; c = c->next) open += c->bev != NULL;
  char note[200];
  int n = snprintf(note, sizeof note,
                   "mock: cannot accept a connection: %s (%d connections held); not accepting "
                   "for %d ms",
                   strerror(err), open, ACCEPT_RETRY_MS);
  mock_record(mock, 0, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, note, (size_t)n);
  evconnlistener_disable(listener);
  if (mock->accept_retry == NULL) mock->accept_retry = evtimer_new(mock->base, on_accept_retry, mock);
  struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
  if (mock->accept_retry != NULL) evtimer_add(mock->accept_retry, &tv);
  else evconnlistener_enable(listener); /* no timer: better spin than stop accepting */
}
