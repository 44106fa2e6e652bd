/* torture: the mock homeserver's hostile schedule (docs/FIXTURES.md, "Torture").
 *
 * Two parts:
 *  - decisions: how long a line is held, where it is cut into pieces, in which order
 *    REPLICATE is answered, whether the first connection is dropped in its opening. Each
 *    is a pure function of (seed, connection number, line number, ...), never of time or
 *    of the order events happened in, so the same seed gives the same schedule however
 *    fast the SUT answers;
 *  - torture_out_t: one connection's output queue. Items (a line, raw bytes, a close)
 *    are released at their scheduled time, in order, piece by piece; the owner is told
 *    when each item has been written completely (to record it in the ledger then, so the
 *    ledger shows the wire) or when a close item is reached (to perform the close).
 *
 * Ownership: torture_out_t belongs to its connection and holds a borrowed bufferevent
 * that must outlive it. Runs on the mock's event loop thread. */
#ifndef TORTURE_H
#define TORTURE_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TORTURE_MAX_LEVEL 3
#define TORTURE_MAX_PIECES 4

typedef struct torture_plan {
  int level;     /* 0 = off, 1..TORTURE_MAX_LEVEL */
  uint64_t seed; /* the test's seed */
} torture_plan_t;

/* How long the mock holds line number `line` (0-based, keepalive not counted) of
 * connection `conn` before writing it: 0..10 ms at level 1, 0..25 ms from level 2. */
int torture_delay_ms(const torture_plan_t *plan, int conn, uint64_t line);

/* Where line `line` of `conn` (len bytes, LF included) is cut: from level 2 it is
 * written in 1..TORTURE_MAX_PIECES pieces. Fills cuts[] with increasing offsets in
 * (0, len) and returns how many (0 = one piece). */
size_t torture_cuts(const torture_plan_t *plan, int conn, uint64_t line, size_t len,
                    size_t cuts[TORTURE_MAX_PIECES - 1]);

/* Shuffles order[0..n) for the `round`-th REPLICATE answer on `conn` (level >= 1);
 * leaves it alone at level 0. */
void torture_shuffle(const torture_plan_t *plan, int conn, uint64_t round, size_t *order, size_t n);

/* Level 3: whether connection `conn` is dropped in its opening, and after how many of
 * the mock's lines on it (1..max_lines): only the first connection, in half of the
 * seeds. Returns that count, or 0 for no drop. */
int torture_drop_after(const torture_plan_t *plan, int conn, int max_lines);

/* ---- output queue --------------------------------------------------------------- */

typedef enum torture_item_kind {
  TORTURE_ITEM_LINE = 1, /* bytes = text + LF */
  TORTURE_ITEM_RAW,      /* bytes as given */
  TORTURE_ITEM_CLOSE,    /* an orderly close (FIN) after everything before it */
  TORTURE_ITEM_RESET,    /* a reset (RST) after everything before it */
} torture_item_kind_t;

/* An item as the owner sees it when it is done. */
typedef struct torture_item {
  torture_item_kind_t kind;
  const char *bytes; /* LINE (with its LF), RAW */
  size_t len;
  int delay_ms;  /* how long it was held */
  size_t pieces; /* how many writes it took */
  int tag;       /* the owner's, as pushed */
} torture_item_t;

/* Called when an item has been written completely (LINE, RAW) or reached (CLOSE,
 * RESET: nothing has been done; the owner closes). The owner may destroy the queue
 * from inside the callback; then it must return false ("stop"), else true. */
typedef bool (*torture_done_fn)(void *arg, const torture_item_t *item);

typedef struct torture_out torture_out_t;

torture_out_t *torture_out_create(struct event_base *base, struct bufferevent *bev,
                                  torture_done_fn done, void *arg);
void torture_out_destroy(torture_out_t *q);

/* Queues an item held `delay_ms` (counted from now, but never before the previous
 * item is out) and written in pieces at `cuts` (ncuts offsets, see torture_cuts), one
 * piece per millisecond. `tag` comes back in the item. Returns 0, or -1 when out of
 * memory. */
int torture_out_push(torture_out_t *q, torture_item_kind_t kind, const char *bytes, size_t len,
                     int delay_ms, const size_t *cuts, size_t ncuts, int tag);

/* Nothing queued. */
bool torture_out_idle(const torture_out_t *q);
/* Monotonic ms by which everything queued now will have been written (now if idle). */
int64_t torture_out_settled_ms(const torture_out_t *q);
/* Stops (true) or resumes (false) writing; a stalled queue keeps its items. */
void torture_out_stall(torture_out_t *q, bool stalled);

#endif
