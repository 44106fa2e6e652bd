/* presence_sync: which users are syncing on this worker, told to the presence writer
 * with USER_SYNC (the sync role, --sync; requirements.md OUT-01..OUT-06, HS-08).
 *
 * Like Synapse's synchrotron (app/synchrotron.py@v0.33.3 user_syncing,
 * mark_as_coming_online, send_stop_syncing):
 *   - the first presence-affecting /sync of a user sends `USER_SYNC ... start <now_ms>`;
 *     more concurrent syncs of the same user send nothing;
 *   - when a user's last in-flight sync ends, the user stays "syncing" for a grace
 *     period; a new sync within it sends nothing at all (OUT-04); when it passes, one
 *     `USER_SYNC ... end <ms the last sync ended>` goes out (OUT-03). Synapse checks
 *     every U_sync = 10 s for syncs that ended more than 10 s ago (so 10-20 s); a
 *     per-user timer of PRESENCE_SYNC_END_DELAY_MS, inside that range, does the same;
 *   - presence_sync_announce re-sends a start, stamped now, for every user with a sync
 *     in flight; the owner calls it on every new replication connection (HS-08);
 *   - presence_sync_clear sends `CLEAR_USER_SYNC <instance_id>` (modern; OUT-06).
 * The instance id (modern) is five random letters chosen at creation, kept for the life
 * of the process (OUT-05; Synapse's server.py instance_id).
 *
 * Commands are built as proto_command_t and handed to the send callback, which formats
 * them with the codec. Bugs: BUG_NO_USER_SYNC_ON_RECONNECT makes announce a no-op;
 * BUG_USER_SYNC_END_IMMEDIATELY sends the end as soon as the last sync ends (no grace).
 *
 * Ownership: copies the user ids it keeps. Single-threaded: the thread running `base`. */
#ifndef PRESENCE_SYNC_H
#define PRESENCE_SYNC_H

#include <event2/event.h>

#include "bugs.h"
#include "proto.h"
#include "rc_error.h"

/* U_sync (10 s) plus two seconds of Synapse's check granularity. */
#define PRESENCE_SYNC_END_DELAY_MS 12000
#define PRESENCE_SYNC_INSTANCE_ID_LEN 5

typedef struct presence_sync presence_sync_t;

/* Sends one command to the presence writer (over whatever connection is current). */
typedef void (*presence_sync_send_fn)(void *arg, const proto_command_t *cmd);

typedef struct presence_sync_config {
  proto_dialect_t dialect; /* 2018: no instance id in USER_SYNC, no CLEAR_USER_SYNC */
  bug_set_t bugs;          /* the two USER_SYNC bugs matter here */
  presence_sync_send_fn send;
  void *send_arg;
} presence_sync_config_t;

presence_sync_t *presence_sync_create(struct event_base *base, const presence_sync_config_t *config,
                                      rc_error_t *err);
/* Cancels the timers; sends nothing. NULL is fine. */
void presence_sync_destroy(presence_sync_t *sync);

/* The process's instance id ("AbCdE"), NUL-terminated. */
const char *presence_sync_instance_id(const presence_sync_t *sync);

/* A presence-affecting /sync of user_id starts / ends. Every begin is paired with one
 * end. */
void presence_sync_begin(presence_sync_t *sync, const char *user_id);
void presence_sync_end(presence_sync_t *sync, const char *user_id);

/* Sends a start for each user with a sync in flight through send (for a new
 * connection, before its REPLICATE in modern, after in 2018). */
void presence_sync_announce(presence_sync_t *sync, presence_sync_send_fn send, void *arg);

/* Sends CLEAR_USER_SYNC <instance_id> (modern only; nothing in 2018). */
void presence_sync_clear(presence_sync_t *sync);

#endif
