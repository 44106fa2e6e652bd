/* repl_client: keeps refworker connected to the main process.
 *
 * Connects to host:port, hands each established socket to a repl_conn (it owns the
 * current one; there is at most one at a time) and, after any failure or loss other than
 * shutdown, tries again after a backoff delay (backoff.h; spec §3.4, RC-01..RC-03). The
 * delay resets on every successful connect. The stream handler's per-connection state
 * (catch-ups in flight, queues, stream_state's batches and connected flags) is reset
 * whenever a connection starts or ends; positions are kept.
 *
 * Single-threaded: use only from the thread running `base`. */
#ifndef REPL_CLIENT_H
#define REPL_CLIENT_H

#include <event2/event.h>
#include <stdint.h>

#include "rc_error.h"
#include "repl_conn.h"
#include "stream_handler.h"
#include "stream_state.h"

typedef struct repl_client repl_client_t;

/* Strings are borrowed and must outlive the client. */
typedef struct repl_client_config {
  const char *host;
  const char *port; /* decimal */
  int64_t reconnect_initial_ms;
  int64_t reconnect_max_ms;
  repl_conn_config_t conn;
} repl_client_config_t;

/* Called once when a shutdown has finished (no socket of ours is left open). */
typedef void (*repl_client_stopped_fn)(void *arg);

/* `streams` and `handler` are borrowed. Returns NULL with err filled on failure. Nothing
 * happens until repl_client_start. */
repl_client_t *repl_client_create(struct event_base *base, const repl_client_config_t *config,
                                  stream_state_t *streams, stream_handler_t *handler,
                                  rc_error_t *err);
/* Frees everything, closing any open socket at once. Accepts NULL. */
void repl_client_destroy(repl_client_t *client);

/* Makes the first connection attempt now. */
void repl_client_start(repl_client_t *client);

/* Sends a command on the current connection; without one it is dropped and logged
 * (modern Synapse drops what it cannot send; spec F-11). */
void repl_client_send(repl_client_t *client, const proto_command_t *cmd);

/* Stops reconnecting and closes the connection in order (flush, FIN); if that takes more
 * than grace_ms the socket is closed regardless. `stopped` runs once everything is closed,
 * possibly before this call returns. A second call speeds up a pending close to an abort. */
void repl_client_shutdown(repl_client_t *client, int64_t grace_ms, repl_client_stopped_fn stopped,
                          void *arg);

#endif
