/* The mock homeserver under --torture (torture.h): each TCP connection's output goes
 * through a torture_out_t queue; what it writes is recorded in the ledger when it is
 * written, with a note saying how it was held and cut; closes wait their turn; the
 * doomed first connection is dropped at a command boundary of its opening. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mockhs_internal.h"
#include "rc_clock.h"

/* Tags of queued items. */
enum { TAG_LINE = 0, TAG_KEEPALIVE = 1 };

/* A doomed connection whose opening never gets that far is dropped after this long. */
#define DROP_FALLBACK_MS 500

static void torture_note(mockhs_t *mock, int conn_id, const char *text) {
  mock_record(mock, conn_id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, text, strlen(text));
}

/* Drops the connection now: FIN, anything still held is never written. Frees the queue;
 * the connection is freed once its output drains. */
static void drop_now(mockhs_t *mock, mock_conn_t *conn) {
  char text[128];
  snprintf(text, sizeof text,
           "torture: dropping c%d at a command boundary of its opening, after "
           "%llu line(s)",
           conn->id, (unsigned long long)conn->lines_written);
  torture_note(mock, conn->id, text);
  mock->torture_drop_ms = rc_clock_mono_ms();
  mock->torture_done.drop_after = (unsigned)conn->lines_written;
  conn->drop_after = 0;
  torture_out_t *out = conn->out;
  conn->out = NULL;
  conn->closing = false;
  mock_conn_close_fin(mock, conn, "torture drop");
  torture_out_destroy(out);
}

/* An item left the queue. Returns false when the queue was destroyed. */
static bool on_item_done(void *arg, const torture_item_t *item) {
  mock_conn_t *conn = arg;
  mockhs_t *mock = conn->mock;
  if (item->kind == TORTURE_ITEM_CLOSE || item->kind == TORTURE_ITEM_RESET) {
    torture_out_t *out = conn->out;
    conn->out = NULL;
    conn->closing = false;
    if (item->kind == TORTURE_ITEM_CLOSE)
      mock_conn_close_fin(mock, conn, NULL);
    else
      mock_conn_reset_now(mock, conn);
    torture_out_destroy(out);
    return false;
  }
  if (item->kind == TORTURE_ITEM_LINE)
    mock_record(mock, conn->id, LEDGER_LINE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, item->bytes,
                item->len > 0 ? item->len - 1 : 0);
  else
    mock_record_raw(mock, conn->id, item->bytes, item->len);
  if (item->tag == TAG_KEEPALIVE) return true;
  if (item->delay_ms > 0 || item->pieces > 1) {
    char text[96];
    snprintf(text, sizeof text, "torture: held %d ms, written in %zu piece(s)", item->delay_ms,
             item->pieces);
    torture_note(mock, conn->id, text);
  }
  conn->lines_written++;
  if (item->delay_ms > 0) mock->torture_done.held++;
  if ((unsigned)item->delay_ms > mock->torture_done.max_hold_ms)
    mock->torture_done.max_hold_ms = (unsigned)item->delay_ms;
  if (item->pieces > 1) mock->torture_done.split++;
  if (conn->drop_after > 0 && conn->lines_written >= (uint64_t)conn->drop_after) {
    drop_now(mock, conn);
    return false;
  }
  return true;
}

static void on_drop_fallback(evutil_socket_t fd, short what, void *arg) {
  mock_conn_t *conn = arg;
  (void)fd;
  (void)what;
  if (conn->drop_after > 0 && conn->open && !conn->closing) drop_now(conn->mock, conn);
}

int mock_torture_attach(mockhs_t *mock, mock_conn_t *conn, evutil_socket_t fd) {
  conn->out = torture_out_create(mock->base, conn->bev, on_item_done, conn);
  if (conn->out == NULL) return -1;
  /* Pieces must leave as separate segments, not wait for each other (Nagle). */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int opening = 1 + (int)stream_history_count(mock->history);
  conn->drop_after = torture_drop_after(&mock->torture, conn->id, opening);
  if (conn->drop_after > 0) {
    mock->torture_doomed_conn = conn->id;
    char text[96];
    snprintf(text, sizeof text, "torture: c%d will be dropped after %d line(s) of its opening",
             conn->id, conn->drop_after);
    torture_note(mock, conn->id, text);
    conn->drop_timer = evtimer_new(mock->base, on_drop_fallback, conn);
    struct timeval tv = {0, DROP_FALLBACK_MS * 1000};
    if (conn->drop_timer != NULL) evtimer_add(conn->drop_timer, &tv);
  }
  return 0;
}

void mock_torture_detach(mock_conn_t *conn) {
  torture_out_destroy(conn->out);
  conn->out = NULL;
  if (conn->drop_timer != NULL) event_free(conn->drop_timer);
  conn->drop_timer = NULL;
}

int mock_torture_hold(mockhs_t *mock, mock_conn_t *conn, torture_item_kind_t kind,
                      const char *bytes, size_t len, bool keepalive) {
  size_t total = kind == TORTURE_ITEM_LINE ? len + 1 : len;
  char *buf = malloc(total ? total : 1);
  if (buf == NULL) return -1;
  if (len > 0) memcpy(buf, bytes, len);
  if (kind == TORTURE_ITEM_LINE) buf[len] = '\n';
  int delay = 0;
  size_t cuts[TORTURE_MAX_PIECES - 1];
  size_t ncuts = 0;
  if (!keepalive) {
    delay = torture_delay_ms(&mock->torture, conn->id, conn->lines_queued);
    ncuts = torture_cuts(&mock->torture, conn->id, conn->lines_queued, total, cuts);
    conn->lines_queued++;
  }
  int rc = torture_out_push(conn->out, kind, buf, total, delay, cuts, ncuts,
                            keepalive ? TAG_KEEPALIVE : TAG_LINE);
  free(buf);
  return rc;
}

int mock_torture_hold_close(mockhs_t *mock, mock_conn_t *conn, bool reset) {
  (void)mock;
  return torture_out_push(conn->out, reset ? TORTURE_ITEM_RESET : TORTURE_ITEM_CLOSE, NULL, 0, 0,
                          NULL, 0, TAG_LINE);
}

size_t mockhs_torture_summary(const mockhs_t *mock, char *buf, size_t cap) {
  if (mock->torture.level == 0) return (size_t)snprintf(buf, cap, "torture off");
  char drop[96] = "no connection dropped";
  if (mock->torture_drop_ms != 0)
    snprintf(drop, sizeof drop, "c%d dropped after %u line(s) of its opening",
             mock->torture_doomed_conn, mock->torture_done.drop_after);
  int n = snprintf(buf, cap,
                   "torture level %d, seed %llu: %u line(s) held (up to %u ms), %u written in "
                   "pieces, %u REPLICATE answer(s) shuffled, %s",
                   mock->torture.level, (unsigned long long)mock->torture.seed,
                   mock->torture_done.held, mock->torture_done.max_hold_ms,
                   mock->torture_done.split, mock->torture_done.shuffles, drop);
  return n < 0 ? 0 : (size_t)n;
}

void mock_torture_opening_done(mockhs_t *mock, mock_conn_t *conn) {
  (void)mock;
  /* The drop point must exist: at the latest after the last line queued so far. */
  if (conn->drop_after > 0 && (uint64_t)conn->drop_after > conn->lines_queued)
    conn->drop_after = conn->lines_queued > 0 ? (int)conn->lines_queued : 1;
}
