/* stream_catchup: one stream's catch-up after a modern POSITION showed missing rows.
 *
 * A POSITION <stream> <instance> <prev> <new> guarantees the writer wrote nothing in
 * (prev, new]. When the worker's position cur for that writer is outside [prev, new]
 * (stream_state_position_begin decides), rows (cur, new] may be missing and are fetched
 * from the main over HTTP (spec §2.4, §7; PO-03..PO-05): page after page while the answer
 * says "limited", each page applied to stream_state as it arrives, rows grouped by token
 * (equal tokens form one unit, in order). The job does not touch the stream's connected
 * flag or its final position: its owner (stream_handler.h) does that when `done` reports
 * success.
 *
 * Lifecycle: start -> pages -> `done` exactly once (unless destroyed first). `done` is the
 * job's last action and may destroy it. Destroying a job in flight cancels its request,
 * so an abandoned catch-up never applies anything afterwards.
 * Single-threaded: the thread running the HTTP client's event base. */
#ifndef STREAM_CATCHUP_H
#define STREAM_CATCHUP_H

#include <stdint.h>

#include "http_catchup.h"
#include "rc_error.h"
#include "stream_state.h"

typedef struct stream_catchup stream_catchup_t;

/* error is NULL on success (every page fetched and applied), else one line saying which
 * request failed and why. Borrowed for the call. */
typedef void (*stream_catchup_done_fn)(void *arg, stream_catchup_t *job, const char *error);

/* Starts fetching rows (from, upto] of (stream, instance); `http` and `state` are
 * borrowed. Logs each request like Synapse ("Fetching replication rows for ...").
 * Callbacks run in the log context current at this call. Returns NULL with err filled
 * when the first request cannot be started (then `done` never runs). */
stream_catchup_t *stream_catchup_start(http_catchup_t *http, stream_state_t *state,
                                       const char *stream, const char *instance, int64_t from,
                                       int64_t upto, stream_catchup_done_fn done, void *arg,
                                       rc_error_t *err);

/* Frees the job, cancelling a request in flight (no `done`). NULL is fine. */
void stream_catchup_destroy(stream_catchup_t *job);

#endif
