/* stream_state: what refworker knows about the streams it consumes.
 *
 * Owns, per consumed stream: the position per writer instance, the buffered `batch`
 * rows, and whether the stream is "connected" on the current connection (modern: a
 * POSITION for it has been processed since the connection started). It implements the
 * worker-side meaning of RDATA and POSITION for both dialects (spec §2.3, §2.4;
 * requirements RD-01..RD-09, PO-01, RC-05, RC-06) and logs what it applied.
 *
 * Positions outlive connections; batches and connected flags belong to one connection
 * and are forgotten by stream_state_reset_connection(). In the 2018 dialect a stream has
 * one position (no instance names); in the modern dialect one per writer instance, and a
 * writer seen for the first time starts at the stream's initial position.
 *
 * A modern stream may start with no known position (STREAM_POSITION_UNKNOWN): refworker
 * has no database, so it behaves like a worker whose database is current and takes each
 * writer's first POSITION as its position, without a catch-up. RDATA cannot come first:
 * it is dropped until the stream's POSITION has been processed (RD-05).
 *
 * A modern POSITION is applied in up to three steps so that the rows it shows missing
 * can be fetched asynchronously in between (stream_handler.h runs them):
 * stream_state_position_begin, stream_state_apply_unit per fetched token,
 * stream_state_position_end. stream_state_apply does all of it at once and, having no
 * way to fetch, reports a gap and adopts the new position.
 *
 * Single-threaded: call only from the event loop thread. Strings passed in are copied. */
#ifndef STREAM_STATE_H
#define STREAM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "rc_error.h"

typedef struct stream_state stream_state_t;

/* Initial position meaning "take the writer's first POSITION" (modern; 0 in 2018). */
#define STREAM_POSITION_UNKNOWN (-1)

/* One applied unit: the rows of a batch run plus its closing row, all at one token.
 * Everything is borrowed and valid only during the callback. */
typedef struct stream_unit {
  const char *stream;
  const char *instance; /* "" in the 2018 dialect */
  int64_t token;
  const char *const *rows; /* JSON texts in arrival order */
  size_t row_count;
} stream_unit_t;

/* Called for every unit applied, after the position has moved to unit->token. */
typedef void (*stream_unit_fn)(void *arg, const stream_unit_t *unit);

/* own_instance is this worker's instance name (modern: RDATA/POSITION carrying it are
 * echoes and ignored). on_unit may be NULL. Returns NULL with err filled on failure. */
stream_state_t *stream_state_create(proto_dialect_t dialect, const char *own_instance,
                                    stream_unit_fn on_unit, void *on_unit_arg, rc_error_t *err);
void stream_state_destroy(stream_state_t *state);

/* Declares a consumed stream and its initial position (>= 0, or STREAM_POSITION_UNKNOWN).
 * A name may be added once. */
int stream_state_add_stream(stream_state_t *state, const char *name, int64_t initial,
                            rc_error_t *err);

proto_dialect_t stream_state_dialect(const stream_state_t *state);
size_t stream_state_stream_count(const stream_state_t *state);
/* Name of the i-th stream, in the order added. */
const char *stream_state_stream_name(const stream_state_t *state, size_t i);
/* Position of a stream for a writer instance (NULL or "" in the 2018 dialect). A writer
 * not seen yet is at the stream's initial position. Returns STREAM_POSITION_UNKNOWN (-1)
 * for an unknown stream or a position not known yet. */
int64_t stream_state_position(const stream_state_t *state, const char *stream,
                              const char *instance);
/* The highest position any writer of the stream has reached (its initial position while
 * no writer has one), or STREAM_POSITION_UNKNOWN for an unknown stream. */
int64_t stream_state_max_position(const stream_state_t *state, const char *stream);
/* Number of batch rows buffered for a stream (0 for an unknown stream). */
size_t stream_state_pending_rows(const stream_state_t *state, const char *stream);
/* Whether a POSITION for the stream was processed on the current connection (modern). */
bool stream_state_is_connected(const stream_state_t *state, const char *stream);

/* A connection started or was lost: drop every batch and every connected flag. */
void stream_state_reset_connection(stream_state_t *state);

/* Whether an RDATA/POSITION must be handed to stream_state_apply at all: false for
 * streams not consumed and (modern) for echoes of our own instance name. Logs why at
 * DEBUG when false. Cheap; the caller uses it to decide which logcontext to enter. */
bool stream_state_wants(const stream_state_t *state, const proto_command_t *cmd);

/* Applies one parsed RDATA or POSITION (sender SERVER, the state's dialect). Commands
 * stream_state_wants() refuses are ignored here too. A modern POSITION showing a gap is
 * logged as a WARNING and its new position adopted (no fetch). Returns 0, or -1 with err
 * filled when memory ran out (the command's effect is then lost; the state stays
 * consistent). */
int stream_state_apply(stream_state_t *state, const proto_command_t *cmd, rc_error_t *err);

/* First step of a modern POSITION the state wants (spec §2.4): drops the stream's
 * buffered batch and marks it not connected. When nothing is missing (prev <= cur <=
 * new, the writer ahead of new, or no position known yet) it also does the last step and
 * sets *fetch false. Otherwise *fetch is true and *from is the writer's position cur:
 * rows (cur, new_token] must be fetched, applied with stream_state_apply_unit, then
 * stream_state_position_end called; if the fetch fails the stream stays not connected
 * (PO-07). Returns 0, or -1 with err filled (out of memory). */
int stream_state_position_begin(stream_state_t *state, const proto_command_t *cmd, bool *fetch,
                                int64_t *from, rc_error_t *err);

/* Applies rows fetched for (stream, instance) at one token as one unit, like a numeric
 * RDATA that closes a batch (RD-02, PO-05): the writer's position becomes token and
 * on_unit runs. rows are JSON texts, borrowed. Returns 0, or -1 with err filled. */
int stream_state_apply_unit(stream_state_t *state, const char *stream, const char *instance,
                            int64_t token, const char *const *rows, size_t row_count,
                            rc_error_t *err);

/* Last step of a modern POSITION: the writer's position becomes new_token and the stream
 * is connected on the current connection. Returns 0, or -1 with err filled. */
int stream_state_position_end(stream_state_t *state, const char *stream, const char *instance,
                              int64_t new_token, rc_error_t *err);

#endif
