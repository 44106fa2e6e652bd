/* stream_history: the streams the mock homeserver writes, with their positions and the
 * rows it has emitted, so it can answer like a real main: 2018 REPLICATE catch-up
 * (rows after the worker's token) and the modern HTTP catch-up
 * (get_repl_stream_updates, rows in (from, upto] in pages).
 *
 * Rows are kept as JSON text exactly as sent. Each stream keeps at most
 * STREAM_HISTORY_MAX_ROWS rows (oldest dropped) so long soaks stay bounded; a
 * catch-up from before the oldest kept row is reported as such. Single-threaded. */
#ifndef STREAM_HISTORY_H
#define STREAM_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_HISTORY_MAX_ROWS 100000

typedef struct stream_history stream_history_t;

typedef struct stream_row {
  int64_t token;
  char *json;
  size_t len;
} stream_row_t;

stream_history_t *stream_history_create(void);
void stream_history_destroy(stream_history_t *h);

/* Creates the stream at `position`, or moves an existing one there. Returns 0 or -1. */
int stream_history_set(stream_history_t *h, const char *name, int64_t position);
/* Current position; false if the stream is unknown. */
bool stream_history_position(const stream_history_t *h, const char *name, int64_t *position);
/* Number of streams, and the name of the i-th (in creation order). */
size_t stream_history_count(const stream_history_t *h);
const char *stream_history_name(const stream_history_t *h, size_t i);

/* Records a row at token (the stream's position becomes max(position, token)).
 * Returns 0, or -1 if the stream is unknown or out of memory. */
int stream_history_append(stream_history_t *h, const char *name, int64_t token,
                          const char *json, size_t len);

/* The rows with from < token <= upto, at most `limit` (0 = no limit). When the limit
 * cuts the range, rows sharing the last returned token are withheld unless that would
 * return nothing, *limited is set and *upto_out is the last token returned (the
 * caller asks again from there); otherwise *upto_out = upto. Returns a pointer to
 * the first row (rows are contiguous) and the count in *count, or NULL with
 * *count = 0. The pointer is valid until the next append. *truncated is set when
 * rows after `from` were already dropped for capacity. */
const stream_row_t *stream_history_range(const stream_history_t *h, const char *name,
                                         int64_t from, int64_t upto, size_t limit,
                                         size_t *count, bool *limited, int64_t *upto_out,
                                         bool *truncated);

#endif
