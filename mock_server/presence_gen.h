/* presence_gen: seeded presence traffic for the federation sender (requirements.md §9,
 * PR-01..PR-07; seed H), and the oracle that says who must receive what.
 *
 * The generator models users (local ones @u<i>:<server_name>, and users of each remote
 * server @r<k>u<i>:<remote>), rooms and their joined members. Changes are queued as rows
 * in the layouts the federation sender reads:
 *   - membership on the `events` stream: ["ev", [event_id, room_id, "m.room.member",
 *     state_key, null, null, membership, false, false]] (the modern events-row layout);
 *   - presence on the `federation` stream: ["p", {"user_id", "state", "last_active_ts",
 *     "last_federation_update_ts", "last_user_sync_ts", "status_msg",
 *     "currently_active"}] (one row per user, no destination: Synapse after #2115);
 * and presence_gen_flush() emits them through the mock (mockhs_emit, which formats
 * RDATA with the codec), each row with its own token after the stream's position.
 *
 * The oracle is computed from the generator's own membership model, independently of
 * any SUT: at each presence row it records the destinations of the user (the servers
 * of the members of every room the user is joined to, except server_name; none for a
 * user of another server), and answers per (remote, user) how many rows the remote
 * should have had and the last state.
 *
 * Ownership: the generator copies its configuration's strings; returned strings belong
 * to it. Single-threaded, no event loop of its own. */
#ifndef PRESENCE_GEN_H
#define PRESENCE_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mockhs.h"
#include "rc_error.h"

typedef struct presence_gen presence_gen_t;

typedef struct presence_gen_config {
  const char *server_name;    /* ours (the SUT's): the origin, never a destination */
  const char *const *remotes; /* remote server names */
  size_t remote_count;
  size_t local_users;      /* @u0:<server_name> ... */
  size_t users_per_remote; /* @r<k>u0:<remote k> ... */
  size_t rooms;            /* !room<i>:<server_name> */
  uint64_t seed;           /* decides presence_gen_populate and presence_gen_burst */
} presence_gen_config_t;

/* NULL with err on a bad configuration (no server name, a remote named like us). */
presence_gen_t *presence_gen_create(const presence_gen_config_t *config, rc_error_t *err);
void presence_gen_destroy(presence_gen_t *gen);

/* Names, for building scenarios: local user i, user i of remote k, room i. */
const char *presence_gen_local_user(const presence_gen_t *gen, size_t i);
const char *presence_gen_remote_user(const presence_gen_t *gen, size_t remote, size_t i);
const char *presence_gen_room(const presence_gen_t *gen, size_t i);

/* Queues a membership event (membership "join", "leave", ...) and applies it to the
 * model. 0, or -1 with err (unknown room). */
int presence_gen_member(presence_gen_t *gen, const char *room, const char *user,
                        const char *membership, rc_error_t *err);
/* Random membership: every local user joins 1..3 rooms, every room gets members from
 * about half the remotes (two users each where there are two, so a member-per-member
 * sender would repeat itself), and some remotes stay in no room at all. */
int presence_gen_populate(presence_gen_t *gen, rc_error_t *err);

/* Queues a presence row for user (any server) and records the oracle's expectation. */
int presence_gen_presence(presence_gen_t *gen, const char *user, const char *state,
                          rc_error_t *err);
/* Queues one presence row for each of `count` distinct local users (the first `count`
 * in a seeded order) with a seeded state; count <= local_users. */
int presence_gen_burst(presence_gen_t *gen, size_t count, rc_error_t *err);

/* Emits what is queued: the events rows, then the federation rows (so flush between
 * steps whose relative order matters). *last_federation gets the federation stream's
 * last token (unchanged when no presence row was queued; may be NULL). */
int presence_gen_flush(presence_gen_t *gen, mockhs_t *mock, int64_t *last_federation,
                       rc_error_t *err);

/* The oracle. Servers sharing a room with user now (never ours; none for a foreign
 * user): returns the count, up to cap names in out. */
size_t presence_gen_destinations(const presence_gen_t *gen, const char *user, const char **out,
                                 size_t cap);
/* Presence rows for `user` queued while `remote` was a destination, and the state of
 * the last of them (NULL when none). */
size_t presence_gen_expected(const presence_gen_t *gen, const char *remote, const char *user,
                             const char **last_state);
/* Distinct users with at least one row, in first-row order: count, and the i-th. */
size_t presence_gen_user_count(const presence_gen_t *gen);
const char *presence_gen_user_at(const presence_gen_t *gen, size_t i);
/* Total expected (remote, user) pairs and rows, for summaries. */
size_t presence_gen_expected_total(const presence_gen_t *gen);

#endif
