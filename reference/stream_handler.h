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
 * Modern processing runs as background process "process-replication-data" (bgprocess.h),
 * as Synapse's queue runner: a run starts when a command arrives for an idle stream and
 * stays in flight until the stream's queue is empty and its catch-up (if any) has ended;
 * its context "process-replication-data-<n>" is the log context of all that work. The
 * caller's context is restored afterwards. 2018 processing runs in the caller's process.
 *
 * Rows are checked against their stream's layout first (stream_rows.h): a modern RDATA
 * whose row does not fit is caught and logged at ERROR with a traceback as
 * "Failed to handle command <line>" in the run's context (bgprocess_report_exception),
 * and dropped; a 2018 one is returned to the caller as the handler's exception.
 * Single-threaded: the thread running the event loop. */
#ifndef STREAM_HANDLER_H
#define STREAM_HANDLER_H

#include <stdbool.h>

#include "bgprocess.h"
#include "handler_error.h"
#include "http_catchup.h"
#include "proto.h"
#include "rc_error.h"
#include "stream_state.h"

typedef struct stream_handler stream_handler_t;

/* `state`, `http` and `processes` are borrowed; http may be NULL (no catch-up source).
 * The stream set is stream_state's as it is now. Returns NULL with err filled. */
stream_handler_t *stream_handler_create(stream_state_t *state, http_catchup_t *http,
                                        bgprocess_table_t *processes, rc_error_t *err);
/* Abandons catch-ups in flight and frees. NULL is fine. */
void stream_handler_destroy(stream_handler_t *handler);

/* One parsed RDATA or POSITION of the state's dialect (other kinds, unconsumed streams
 * and our own instance's echoes are ignored). What is kept is copied. Returns 0, or -1
 * with *error filled (2018 only) when an RDATA row does not fit its stream's layout; the
 * row is then dropped. error may be NULL. */
int stream_handler_submit(stream_handler_t *handler, const proto_command_t *cmd,
                          handler_error_t *error);

/* A connection (or subscription) started or ended: see above. */
void stream_handler_reset_connection(stream_handler_t *handler);

#endif
