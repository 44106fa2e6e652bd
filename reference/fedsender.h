/* fedsender: refworker's federation-sender role (--fedsender; seed H, requirements §9).
 *
 * Like Synapse's federation sender since PR #2115, it receives one presence row per local
 * user, without destinations, and computes the destinations itself:
 *   - membership comes from `events` rows ["ev", [event_id, room_id, "m.room.member",
 *     state_key, redacts, relates_to, membership, rejected, outlier]] (the modern layout;
 *     a rejected event changes nothing); "join" makes the state_key a member of the room,
 *     any other membership removes it;
 *   - presence comes from `federation` rows ["p", {"user_id", "state", "last_active_ts",
 *     "status_msg", "currently_active", ...}]; rows of users of other servers are ignored
 *     (is_mine_id);
 *   - other EDUs come from `federation` rows ["e", {"origin", "destination", "edu_type",
 *     "content"}] and are queued for their destination in row order; "k", "pd" and "d"
 *     rows are ignored, and a row of any other type is logged at ERROR (`Unrecognized
 *     federation row type 'zz'`) and skipped, the rest of its unit still processed
 *     (send_queue.py process_rows_for_federation);
 *   - the destinations of a user are the servers of the members of every room the user
 *     is joined to, except our own server.
 * Each destination has one transaction in flight at most: updates queued meanwhile are
 * coalesced per user (the last state wins) and go out in the next transaction, when the
 * current one has finished. A transaction is
 *   PUT <remote url>/_matrix/federation/v1/send/<txn_id>
 *   {"origin": <server name>, "origin_server_ts": <ms>, "pdus": [],
 *    "edus": [{"edu_type": "m.presence", "content": {"push": [<presence>, ...]}}]}
 * with <presence> as Synapse's format_user_presence_state. A failed transaction (error
 * status, connection error, timeout) is logged and dropped: it never delays the other
 * destinations, and nothing is sent again to a destination that answered 200.
 * After a federation unit has been processed the owner's ack callback runs with its
 * token (the worker sends FEDERATION_ACK).
 * BUG_PRESENCE_PER_DESTINATION brings back the pre-#2115 traffic: one transaction per
 * destination per member of the shared rooms, uncoalesced. BUG_FEDERATION_QUEUE_NEWEST_FIRST
 * puts an EDU queued behind a transaction in flight at the head of its queue, so a slow
 * delivery lets later rows overtake earlier ones (RD-04); BUG_FEDERATION_UNKNOWN_ROW_ABORTS
 * drops the rest of a unit after a row of unknown type (RD-10).
 *
 * Ownership: the sender copies what it keeps; it owns its HTTP connections. Single-
 * threaded: the thread running `base`. */
#ifndef FEDSENDER_H
#define FEDSENDER_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "bugs.h"
#include "rc_error.h"
#include "stream_state.h"

typedef struct fedsender fedsender_t;

/* One fake remote server: its server name and base URL (http://host:port[/prefix]). */
typedef struct fedsender_remote {
  char *name;
  char *url;
} fedsender_remote_t;

typedef struct fedsender_config {
  const char *server_name; /* ours: the "origin", and never a destination */
  const fedsender_remote_t *remotes;
  size_t remote_count;
  int64_t timeout_ms; /* deadline of one transaction */
  bug_set_t bugs;     /* BUG_PRESENCE_* and BUG_FEDERATION_* */
} fedsender_config_t;

/* A federation unit at `token` has been processed. */
typedef void (*fedsender_ack_fn)(void *arg, int64_t token);

/* Parses NAME=URL (the --remote option) into *remote (strings malloc'd: free with
 * fedsender_remote_free). Returns 0, or -1 with err filled. */
int fedsender_parse_remote(const char *text, fedsender_remote_t *remote, rc_error_t *err);
void fedsender_remote_free(fedsender_remote_t *remote);

/* Returns NULL with err filled (e.g. a remote URL that is not http://host:port). ack
 * may be NULL. */
fedsender_t *fedsender_create(struct event_base *base, const fedsender_config_t *config,
                              fedsender_ack_fn ack, void *ack_arg, rc_error_t *err);
/* Cancels transactions in flight and frees. NULL is fine. */
void fedsender_destroy(fedsender_t *sender);

/* A stream_unit_fn (stream_state.h): events and federation units; others are ignored. */
void fedsender_on_unit(void *sender, const stream_unit_t *unit);

/* Transactions sent so far (all destinations), for tests and diagnostics. */
unsigned long fedsender_transactions_sent(const fedsender_t *sender);

#endif
