#include "torture.h"

#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "rc_random.h"

/* Decision kinds: each gets its own hash stream, so adding one never shifts another. */
enum { DECIDE_DELAY = 1, DECIDE_PIECES, DECIDE_CUT, DECIDE_SHUFFLE, DECIDE_DROP };

static uint64_t decide(const torture_plan_t *plan, uint64_t kind, int conn, uint64_t n) {
  uint64_t where = rc_splitmix64(((uint64_t)(unsigned)conn << 40) ^ n);
  return rc_splitmix64(plan->seed ^ rc_splitmix64(kind ^ where));
}

int torture_delay_ms(const torture_plan_t *plan, int conn, uint64_t line) {
  if (plan == NULL || plan->level <= 0) return 0;
  uint64_t span = plan->level >= 2 ? 26 : 11;
  return (int)(decide(plan, DECIDE_DELAY, conn, line) % span);
}

size_t torture_cuts(const torture_plan_t *plan, int conn, uint64_t line, size_t len,
                    size_t cuts[TORTURE_MAX_PIECES - 1]) {
  if (plan == NULL || plan->level < 2 || len < 2) return 0;
  size_t pieces = 1 + (size_t)(decide(plan, DECIDE_PIECES, conn, line) % TORTURE_MAX_PIECES);
  if (pieces > len) pieces = len;
  size_t n = 0;
  for (size_t i = 0; n + 1 < pieces && i < 16; i++) {
    /* An offset in (0, len): any byte boundary, inside a UTF-8 character too. */
    size_t at = 1 + (size_t)(decide(plan, DECIDE_CUT, conn, line * 16 + i) % (len - 1));
    size_t k = n;
    bool seen = false;
    for (size_t j = 0; j < n; j++) seen = seen || cuts[j] == at;
    if (seen) continue;
    while (k > 0 && cuts[k - 1] > at) {
      cuts[k] = cuts[k - 1];
      k--;
    }
    cuts[k] = at;
    n++;
  }
  return n;
}

void torture_shuffle(const torture_plan_t *plan, int conn, uint64_t round, size_t *order,
                     size_t n) {
  if (plan == NULL || plan->level <= 0 || n < 2) return;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)(decide(plan, DECIDE_SHUFFLE, conn, round * 4096 + i) % (i + 1));
    size_t tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
}

int torture_drop_after(const torture_plan_t *plan, int conn, int max_lines) {
  if (plan == NULL || plan->level < 3 || conn != 1 || max_lines < 1) return 0;
  if ((decide(plan, DECIDE_DROP, conn, 0) & 1) == 0) return 0;
  return 1 + (int)(decide(plan, DECIDE_DROP, conn, 1) % (uint64_t)max_lines);
}

/* ---- output queue --------------------------------------------------------------- */

typedef struct queued {
  struct queued *next;
  torture_item_kind_t kind;
  char *bytes;
  size_t len;
  int delay_ms;
  int64_t release_ms; /* when the first piece is due; piece k is due k ms later */
  size_t cuts[TORTURE_MAX_PIECES - 1];
  size_t ncuts;
  size_t written;
  size_t piece;
  int tag;
} queued_t;

struct torture_out {
  struct bufferevent *bev;
  torture_done_fn done;
  void *arg;
  queued_t *head;
  queued_t *tail;
  struct event *timer;
  bool stalled;
  int64_t last_ms; /* when everything queued will be out */
};

static void queued_free(queued_t *item) {
  if (item == NULL) return;
  free(item->bytes);
  free(item);
}

static void arm(torture_out_t *q, int64_t in_ms) {
  if (in_ms < 0) in_ms = 0;
  struct timeval tv = {(time_t)(in_ms / 1000), (suseconds_t)((in_ms % 1000) * 1000)};
  evtimer_add(q->timer, &tv);
}

/* Writes what is due, in order; re-arms itself for the rest. */
static void on_pump(evutil_socket_t fd, short what, void *arg) {
  torture_out_t *q = arg;
  (void)fd;
  (void)what;
  while (q->head != NULL && !q->stalled) {
    queued_t *item = q->head;
    int64_t now = rc_clock_mono_ms();
    int64_t due = item->release_ms + (int64_t)item->piece;
    if (due > now) {
      arm(q, due - now);
      return;
    }
    if (item->kind == TORTURE_ITEM_LINE || item->kind == TORTURE_ITEM_RAW) {
      size_t end = item->piece < item->ncuts ? item->cuts[item->piece] : item->len;
      if (end > item->written)
        bufferevent_write(q->bev, item->bytes + item->written, end - item->written);
      item->written = end;
      item->piece++;
      if (item->written < item->len) continue;
    }
    q->head = item->next;
    if (q->head == NULL) q->tail = NULL;
    torture_item_t view = {.kind = item->kind,
                           .bytes = item->bytes,
                           .len = item->len,
                           .delay_ms = item->delay_ms,
                           .pieces = item->ncuts + 1,
                           .tag = item->tag};
    bool go = q->done(q->arg, &view);
    queued_free(item);
    if (!go) return; /* the owner destroyed the queue */
  }
}

torture_out_t *torture_out_create(struct event_base *base, struct bufferevent *bev,
                                  torture_done_fn done, void *arg) {
  torture_out_t *q = calloc(1, sizeof *q);
  if (q == NULL) return NULL;
  q->bev = bev;
  q->done = done;
  q->arg = arg;
  q->timer = evtimer_new(base, on_pump, q);
  if (q->timer == NULL) {
    free(q);
    return NULL;
  }
  return q;
}

void torture_out_destroy(torture_out_t *q) {
  if (q == NULL) return;
  while (q->head != NULL) {
    queued_t *next = q->head->next;
    queued_free(q->head);
    q->head = next;
  }
  event_free(q->timer);
  free(q);
}

int torture_out_push(torture_out_t *q, torture_item_kind_t kind, const char *bytes, size_t len,
                     int delay_ms, const size_t *cuts, size_t ncuts, int tag) {
  queued_t *item = calloc(1, sizeof *item);
  if (item == NULL) return -1;
  if (len > 0) {
    item->bytes = malloc(len);
    if (item->bytes == NULL) {
      free(item);
      return -1;
    }
    memcpy(item->bytes, bytes, len);
  }
  item->kind = kind;
  item->tag = tag;
  item->len = len;
  item->delay_ms = delay_ms;
  if (ncuts > TORTURE_MAX_PIECES - 1) ncuts = TORTURE_MAX_PIECES - 1;
  for (size_t i = 0; i < ncuts; i++) item->cuts[i] = cuts[i];
  item->ncuts = ncuts;
  int64_t now = rc_clock_mono_ms();
  int64_t release = now + delay_ms;
  if (q->head != NULL && q->last_ms > release) release = q->last_ms;
  item->release_ms = release;
  q->last_ms = release + (int64_t)ncuts;
  if (q->tail != NULL)
    q->tail->next = item;
  else
    q->head = item;
  q->tail = item;
  /* Never written from inside the caller's send: the owner's callbacks may close the
   * connection, which must not happen under its feet. */
  if (!q->stalled && !evtimer_pending(q->timer, NULL)) arm(q, 0);
  return 0;
}

bool torture_out_idle(const torture_out_t *q) {
  return q == NULL || q->head == NULL;
}

int64_t torture_out_settled_ms(const torture_out_t *q) {
  int64_t now = rc_clock_mono_ms();
  if (q == NULL || q->head == NULL) return now;
  return q->last_ms > now ? q->last_ms : now;
}

void torture_out_stall(torture_out_t *q, bool stalled) {
  if (q == NULL || q->stalled == stalled) return;
  q->stalled = stalled;
  if (!stalled && q->head != NULL) arm(q, 0);
}
