/* repl_conn: one established replication connection, worker side.
 *
 * Owns the socket (a bufferevent), the line framing, the dispatch of inbound commands,
 * the keepalive of this connection (PING when idle, receive timeout once the server has
 * PINGed: spec §3.2) and the orderly close (flush what is queued, then FIN). It sends the
 * opening lines at once on creation (NAME, PING, then REPLICATE: spec §1.3).
 * RDATA and POSITION are handed to the shared stream_handler (per-stream order, catch-up);
 * stream_state is read for the 2018 REPLICATE lines.
 *
 * Every inbound line goes through proto_frame_next / proto_parse_line and every outbound
 * line through proto_format_command; nothing here parses by hand.
 *
 * Lifecycle: create -> open -> (close requested or connection lost) -> closed. When the
 * socket is finally closed, on_closed runs from the event loop (never from inside a call
 * the owner made), as the connection's last action: the callback may destroy it.
 * Keepalive timers belong to the connection and die with it.
 *
 * Single-threaded: use only from the thread running `base`. */
#ifndef REPL_CONN_H
#define REPL_CONN_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>

#include "bgprocess.h"
#include "proto.h"
#include "rc_error.h"
#include "stream_handler.h"
#include "stream_state.h"

typedef struct repl_conn repl_conn_t;

/* Lets the owner add its own lines to the opening of a new connection (the USER_SYNC
 * starts of HS-08): called with repl_conn_send allowed, after the modern NAME and PING
 * and before REPLICATE, or after the 2018 REPLICATE lines (spec §1.3). */
typedef void (*repl_conn_opening_fn)(void *arg, repl_conn_t *conn);

/* Strings are borrowed and must outlive every connection made with the config. */
typedef struct repl_conn_config {
  proto_dialect_t dialect;
  const char *instance_name; /* sent as NAME; our own instance in modern RDATA/POSITION */
  const char *server_name;   /* expected in SERVER */
  int64_t ping_interval_ms;  /* keepalive tick and idle time before a PING */
  int64_t ping_timeout_ms;   /* receive timeout, and the grace period of a close */
  /* 2018: every accepted line is handled in a background process replication-<CMD>
   * (replication-RDATA-<stream> for RDATA), as Synapse v0.33.3+ (PR #3709); modern
   * RDATA/POSITION processes are the stream handler's. Borrowed. */
  bgprocess_table_t *processes;
  /* BUG_REPL_SOCKET_LEAK: a connection the main closed is dropped without closing its
   * socket. Other bugs are ignored here. */
  bug_set_t bugs;
  repl_conn_opening_fn on_opening; /* NULL: nothing to add */
  void *on_opening_arg;
} repl_conn_config_t;

/* Called once, when the socket has been closed. `reason` is borrowed for the call. */
typedef void (*repl_conn_closed_fn)(void *arg, repl_conn_t *conn, const char *reason);

/* Takes ownership of `bev`, a connected socket bufferevent (freed here on failure too),
 * and sends the opening lines. `streams` and `handler` are borrowed. Returns NULL with err
 * filled on failure. */
repl_conn_t *repl_conn_create(struct event_base *base, struct bufferevent *bev,
                              const repl_conn_config_t *config, stream_state_t *streams,
                              stream_handler_t *handler, repl_conn_closed_fn on_closed,
                              void *on_closed_arg, rc_error_t *err);

/* Frees the connection. If the socket is still open it is closed at once, without
 * on_closed. Accepts NULL. */
void repl_conn_destroy(repl_conn_t *conn);

/* Queues one command for the main (e.g. FEDERATION_ACK). Dropped, as Synapse drops
 * sends on a closed protocol, once the close has been decided. */
void repl_conn_send(repl_conn_t *conn, const proto_command_t *cmd);

/* Orderly close: stop reading, flush queued output, send FIN. Falls back to an abort
 * when the flush has not finished after ping_timeout_ms. No-op once closing. */
void repl_conn_close(repl_conn_t *conn, const char *reason);

/* Closes the socket now, dropping queued output (for a shutdown that cannot wait). */
void repl_conn_abort(repl_conn_t *conn, const char *reason);

/* "anon-<id>": the prefix of this connection's log lines. */
const char *repl_conn_name(const repl_conn_t *conn);

#endif
