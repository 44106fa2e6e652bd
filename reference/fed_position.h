/* fed_position: the federation sender's position in the database (--fedsender --db),
 * written before it is acknowledged, as Synapse's FederationSenderHandler does
 * (replication/tcp/client.py@v1.66.0 _save_and_send_ack; app/federation_sender.py@v0.33.6
 * update_token): the FEDERATION_ACK for a token goes out only once
 *   UPDATE federation_stream_position SET stream_id = T
 *    WHERE type = 'federation' AND instance_name = <instance>
 * has succeeded (the row is inserted when there is none yet).
 *
 * Unlike db_store's writes, this one is asynchronous (libpq's non-blocking result API on
 * a connection of its own): a write the database holds up (a lock the harness takes,
 * RC-07) leaves the event loop running, so the replication connection may be lost and
 * re-made before the write finishes and its ack is produced. Writes are linearised: one
 * statement in flight at most; tokens saved meanwhile are coalesced, and the latest is
 * written when the current write ends (Synapse's _fed_position_linearizer).
 *
 * Each write is one autocommit statement with the connection's statement_timeout
 * (5 s); `done` runs from the event loop after it, with NULL or the database's error
 * text. The connection is opened on first use (blocking, loopback) and reopened when it
 * has broken; a statement that fails (e.g. permission denied) leaves it in use. Ownership: the caller owns the writer; single-threaded, the thread running
 * `base`. */
#ifndef FED_POSITION_H
#define FED_POSITION_H

#include <event2/event.h>
#include <stdint.h>

#include "rc_error.h"

typedef struct fed_position fed_position_t;

/* A write of `token` has ended: `error` is NULL on success, else why it failed
 * (borrowed for the call). */
typedef void (*fed_position_done_fn)(void *arg, int64_t token, const char *error);

/* Strings are copied. Connects lazily. NULL with err only when memory runs out. */
fed_position_t *fed_position_create(struct event_base *base, const char *dsn,
                                    const char *instance_name, fed_position_done_fn done,
                                    void *done_arg, rc_error_t *err);
/* Abandons a write in flight (its `done` never runs) and closes. NULL is fine. */
void fed_position_destroy(fed_position_t *writer);

/* Asks for `token` to be written: at once when no write is in flight, else after it.
 * A connection failure is reported through `done` like any other failure. */
void fed_position_save(fed_position_t *writer, int64_t token);

#endif
