/* stream_handler: the worker side of RDATA and POSITION, in per-stream order.
 *
 * Transports (repl_conn.h for direct TCP, redis_transport.h for Redis) hand every parsed
 * RDATA and POSITION here. Modern dialect: commands of one stream are processed strictly
 * in arrival order (RD-04); a POSITION that shows missing rows starts an asynchronous
 * catch-up over HTTP (stream_catchup.h) and, until it has finished, later RDATA and
 * POSITION of that stream wait in the stream's queue and are processed after it, in
 * arrival order (PO-06); other streams are not held up. A failed catch-up is logged as
 * ERROR "Failed to handle command ...: <why>"; the stream stays not connected, so its
 * RDATA is dropped until its next POSITION, which fetches again from the old position
 * (PO-07). Without an HTTP client a gap is reported and the new position adopted.
 * 2018 dialect: everything is applied at once (there is no catch-up to wait for).
 *
 * "Connection" means the current TCP connection or Redis subscription: when it starts or
 * ends the owner calls stream_handler_reset_connection, which abandons catch-ups in
 * flight (their answers are never applied), drops queued commands and resets
 * stream_state's per-connection flags and batches.
 *
 * Processing happens in the log context "process-replication-data-<n>" (modern), as
 * Synapse's queue runner; the caller's context is restored afterwards.
 * Single-threaded: the thread running the event loop. */
#ifndef STREAM_HANDLER_H
#define STREAM_HANDLER_H

#include <stdbool.h>

#include "http_catchup.h"
#include "proto.h"
#include "rc_error.h"
#include "stream_state.h"

typedef struct stream_handler stream_handler_t;

/* `state` and `http` are borrowed; http may be NULL (no catch-up source). The stream set
 * is stream_state's as it is now. Returns NULL with err filled. */
stream_handler_t *stream_handler_create(stream_state_t *state, http_catchup_t *http,
                                        rc_error_t *err);
/* Abandons catch-ups in flight and frees. NULL is fine. */
void stream_handler_destroy(stream_handler_t *handler);

/* One parsed RDATA or POSITION of the state's dialect (other kinds, unconsumed streams
 * and our own instance's echoes are ignored). What is kept is copied. */
void stream_handler_submit(stream_handler_t *handler, const proto_command_t *cmd);

/* A connection (or subscription) started or ended: see above. */
void stream_handler_reset_connection(stream_handler_t *handler);

#endif
