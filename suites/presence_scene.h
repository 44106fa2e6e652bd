/* presence_scene: what every presence test sets up and checks (suites/presence.c;
 * requirements.md §9, seed H): fake remote servers (one named like the SUT, which must
 * never be contacted), a seeded presence generator over them, the SUT started with one
 * fedsender.remote_args group per remote, and the checks that compare what each remote
 * received with the generator's oracle.
 *
 * Windows come from the profile: D = timing.federation_delivery_ms for a delivery,
 * 2 D for "nothing (more) arrives". A scene belongs to one test body; presence_scene_close
 * frees it (before the runner stops the SUT, so the SUT may log refused transactions). */
#ifndef PRESENCE_SCENE_H
#define PRESENCE_SCENE_H

#include <stdbool.h>
#include <stddef.h>

#include "fake_remote.h"
#include "presence_gen.h"
#include "testctx.h"

#define PRESENCE_SCENE_MAX_REMOTES 8

typedef struct presence_scene {
  rc_test_t *t;
  fake_remote_t *remotes[PRESENCE_SCENE_MAX_REMOTES]; /* remote k: "remote<k+1>.example" */
  const char *names[PRESENCE_SCENE_MAX_REMOTES];
  size_t count;
  fake_remote_t *self; /* named like the SUT's own server */
  rc_remote_t args[PRESENCE_SCENE_MAX_REMOTES + 1];
  presence_gen_t *gen;
  int conn;         /* the SUT's replication connection */
  int delivery_ms;  /* D */
  uint64_t ack_seq; /* ledger position the next ack wait starts from */
  int64_t emitted;  /* highest federation token emitted */
  int64_t acked;    /* highest FEDERATION_ACK token seen (0: none) */
} presence_scene_t;

/* The generator's shape (remote names are the scene's). */
typedef struct presence_shape {
  size_t remotes;
  size_t local_users;
  size_t users_per_remote;
  size_t rooms;
} presence_shape_t;

/* Creates the remotes and the generator (seeded by the test's seed) and starts the SUT
 * connected. false after recording an outcome; close the scene either way. */
bool presence_scene_open(rc_test_t *t, presence_scene_t *s, const presence_shape_t *shape);
void presence_scene_close(presence_scene_t *s);

/* Emits what the generator queued; *token (may be NULL) gets the last federation
 * token. false after recording an ERROR. */
bool presence_scene_flush(presence_scene_t *s, int64_t *token);

/* Waits up to timeout_ms until every remote has, for every user the generator sent
 * presence for, the last state it expects (nothing for pairs it expects nothing of).
 * Returns whether that happened; records nothing. */
bool presence_scene_wait_delivered(presence_scene_t *s, int timeout_ms);

/* Compares every remote (and the SUT's own name) with the oracle: nothing for a pair
 * the oracle expects nothing of, at least one update and at most one per row for the
 * others (exactly one when each user had one row), the last one in the expected state.
 * Records a FAIL naming `requirement` with the remotes' receipts as evidence. */
bool presence_scene_check(presence_scene_t *s, const char *requirement);

/* Waits up to timeout_ms for FEDERATION_ACK with a token >= token; checks acks never
 * decrease and never pass the highest token emitted (OUT-09). Records a FAIL. */
bool presence_scene_wait_ack(presence_scene_t *s, int64_t token, int timeout_ms);

/* Adds each remote's receipts to the evidence. */
void presence_scene_note_receipts(presence_scene_t *s);

/* The remote named so (the SUT's own name gives `self`), or NULL. */
fake_remote_t *presence_scene_remote(const presence_scene_t *s, const char *name);

#endif
