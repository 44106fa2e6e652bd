/* presence: the federation sender computes presence destinations itself and sends each
 * update once per destination (requirements.md §9, PR-01..PR-07, OUT-09; seed H,
 * seed-behaviours.md §H, Synapse PR #2115). The mock main emits membership (`ev` rows
 * on events) and one presence row per user (`p` rows on federation); fake remote
 * servers record what arrives; the generator's oracle says who must get what
 * (presence_scene.h). D = the profile's timing.federation_delivery_ms. */
#include <stdio.h>
#include <string.h>

#include "presence_scene.h"
#include "rc_clock.h"

#define SOURCE_H "synapse PR #2115 federation/transaction_queue.py@v0.33.6; seed-behaviours.md §H"

/* Every body runs inside a scene that is closed whatever happens. */
typedef void (*scene_body_fn)(presence_scene_t *s);

static void with_scene(rc_test_t *t, const presence_shape_t *shape, scene_body_fn body) {
  presence_scene_t s;
  if (presence_scene_open(t, &s, shape)) body(&s);
  presence_scene_close(&s);
}

#define SCENE_TEST(name, ...)                   \
  static void name##_body(presence_scene_t *s); \
  static void name(rc_test_t *t) {              \
    presence_shape_t shape = {__VA_ARGS__};     \
    with_scene(t, &shape, name##_body);         \
  }

/* Sends the queued rows and waits for their ack and for every expected delivery
 * (within D of the emission), then watches 2 D more for anything further. false after
 * recording an outcome (a missing delivery is left to presence_scene_check). */
static bool send_and_settle(presence_scene_t *s) {
  int64_t token;
  int64_t at = rc_clock_mono_ms();
  if (!presence_scene_flush(s, &token)) return false;
  if (token > 0 && !presence_scene_wait_ack(s, token, s->delivery_ms)) return false;
  presence_scene_wait_delivered(s, (int)(at + s->delivery_ms - rc_clock_mono_ms()));
  rc_observe(s->t, 2 * s->delivery_ms);
  return true;
}

/* The fan-out scene: @u0 shares room 0 with two users of remote1 and one of remote2
 * (and the local @u1), room 1 with one user of remote3; remote4 is only in room 2,
 * without @u0. */
static bool fan_out_rooms(presence_scene_t *s) {
  presence_gen_t *g = s->gen;
  rc_error_t err;
  const char *r0 = presence_gen_room(g, 0), *r1 = presence_gen_room(g, 1),
             *r2 = presence_gen_room(g, 2);
  struct {
    const char *room;
    const char *user;
  } joins[] = {{r0, presence_gen_local_user(g, 0)},     {r0, presence_gen_local_user(g, 1)},
               {r0, presence_gen_remote_user(g, 0, 0)}, {r0, presence_gen_remote_user(g, 0, 1)},
               {r0, presence_gen_remote_user(g, 1, 0)}, {r1, presence_gen_local_user(g, 0)},
               {r1, presence_gen_remote_user(g, 2, 0)}, {r2, presence_gen_local_user(g, 1)},
               {r2, presence_gen_remote_user(g, 3, 0)}};
  for (size_t i = 0; i < sizeof joins / sizeof joins[0]; i++)
    if (presence_gen_member(g, joins[i].room, joins[i].user, "join", &err) != 0)
      return rc_error(s->t, "%s", err.msg);
  return true;
}

/* PR-01, PR-02: one update to each member server, none to others or to ourselves. */
SCENE_TEST(fan_out_members_only, .remotes = 4, .local_users = 2, .users_per_remote = 2, .rooms = 3)
static void fan_out_members_only_body(presence_scene_t *s) {
  rc_error_t err;
  if (!fan_out_rooms(s)) return;
  if (presence_gen_presence(s->gen, presence_gen_local_user(s->gen, 0), "online", &err) != 0) {
    rc_error(s->t, "%s", err.msg);
    return;
  }
  if (!send_and_settle(s)) return;
  presence_scene_check(s,
                       "PR-01/PR-02: each server sharing a room with the user gets exactly one "
                       "update; servers sharing none, and the SUT's own name, get nothing");
}

/* PR-03 (and OUT-09): presence of another server's user is not sent, but acked. */
SCENE_TEST(foreign_user_ignored, .remotes = 4, .local_users = 2, .users_per_remote = 2, .rooms = 3)
static void foreign_user_ignored_body(presence_scene_t *s) {
  rc_error_t err;
  if (!fan_out_rooms(s)) return;
  /* remote1's user shares rooms with remote1, remote2 and us: none may hear of it. */
  if (presence_gen_presence(s->gen, presence_gen_remote_user(s->gen, 0, 0), "online", &err) != 0 ||
      presence_gen_presence(s->gen, presence_gen_remote_user(s->gen, 2, 0), "unavailable", &err) !=
          0) {
    rc_error(s->t, "%s", err.msg);
    return;
  }
  if (!send_and_settle(s)) return;
  presence_scene_check(s, "PR-03: presence rows of users of other servers are ignored");
}

/* OUT-09: FEDERATION_ACK T after the rows up to T, increasing, never ahead. */
SCENE_TEST(ack_after_apply, .remotes = 2, .local_users = 4, .users_per_remote = 1, .rooms = 2)
static void ack_after_apply_body(presence_scene_t *s) {
  rc_error_t err;
  presence_gen_t *g = s->gen;
  if (presence_gen_member(g, presence_gen_room(g, 0), presence_gen_local_user(g, 0), "join",
                          &err) != 0 ||
      presence_gen_member(g, presence_gen_room(g, 0), presence_gen_remote_user(g, 0, 0), "join",
                          &err) != 0) {
    rc_error(s->t, "%s", err.msg);
    return;
  }
  for (size_t round = 0; round < 3; round++) {
    for (size_t i = 0; i <= round; i++)
      if (presence_gen_presence(g, presence_gen_local_user(g, i), i % 2 ? "online" : "unavailable",
                                &err) != 0) {
        rc_error(s->t, "%s", err.msg);
        return;
      }
    int64_t token;
    if (!presence_scene_flush(s, &token) || !presence_scene_wait_ack(s, token, s->delivery_ms))
      return;
  }
  rc_note(s->t, "last FEDERATION_ACK %lld", (long long)s->acked);
}

/* PR-04: a transaction from us with an m.presence EDU whose presence is the row's state. */
SCENE_TEST(edu_form, .remotes = 2, .local_users = 3, .users_per_remote = 1, .rooms = 1)
static void edu_form_body(presence_scene_t *s) {
  rc_error_t err;
  presence_gen_t *g = s->gen;
  const char *room = presence_gen_room(g, 0);
  static const char *const STATES[] = {"online", "unavailable", "offline"};
  for (size_t i = 0; i < 3; i++)
    if (presence_gen_member(g, room, presence_gen_local_user(g, i), "join", &err) != 0) goto fail;
  if (presence_gen_member(g, room, presence_gen_remote_user(g, 0, 0), "join", &err) != 0) goto fail;
  for (size_t i = 0; i < 3; i++)
    if (presence_gen_presence(g, presence_gen_local_user(g, i), STATES[i], &err) != 0) goto fail;
  if (!send_and_settle(s)) return;
  char why[1024];
  if (fake_remote_form_problem(s->remotes[0], s->t->server_name, why, sizeof why)) {
    rc_fail(s->t,
            "PR-04: each update is PUT /_matrix/federation/v1/send/<txn_id> with origin = the "
            "SUT's server name and an m.presence EDU {push: [{user_id, presence, ...}]}",
            "%s", why);
    return;
  }
  presence_scene_check(s, "PR-04: the EDU's presence equals the row's state, one entry per user");
  return;
fail:
  rc_error(s->t, "%s", err.msg);
}

/* PR-05: five rows for one user within 100 ms, remote1 answering after 2 s: coalesced. */
SCENE_TEST(coalesce_slow_remote, .remotes = 2, .local_users = 1, .users_per_remote = 2, .rooms = 1)
static void coalesce_slow_remote_body(presence_scene_t *s) {
  rc_error_t err;
  presence_gen_t *g = s->gen;
  const char *room = presence_gen_room(g, 0), *user = presence_gen_local_user(g, 0);
  if (presence_gen_member(g, room, user, "join", &err) != 0 ||
      presence_gen_member(g, room, presence_gen_remote_user(g, 0, 0), "join", &err) != 0 ||
      presence_gen_member(g, room, presence_gen_remote_user(g, 1, 0), "join", &err) != 0 ||
      !presence_scene_flush(s, NULL)) {
    if (!s->t->decided) rc_error(s->t, "%s", err.msg);
    return;
  }
  fake_remote_set_reply(s->remotes[0], 200, 2000);
  static const char *const STATES[] = {"unavailable", "offline", "unavailable", "offline",
                                       "online"};
  int64_t token = 0;
  for (size_t i = 0; i < 5; i++) {
    if (presence_gen_presence(g, user, STATES[i], &err) != 0) {
      rc_error(s->t, "%s", err.msg);
      return;
    }
    if (!presence_scene_flush(s, &token)) return;
    rc_observe(s->t, 20);
  }
  if (!presence_scene_wait_ack(s, token, s->delivery_ms)) return;
  /* remote1's answers take 2 s each: the coalesced rest goes after the first one. */
  presence_scene_wait_delivered(s, 2000 + 2 * s->delivery_ms);
  rc_observe(s->t, 2 * s->delivery_ms);
  for (size_t k = 0; k < s->count; k++) {
    size_t n = fake_remote_request_count(s->remotes[k]);
    for (size_t i = 0; i < n; i++) {
      const fake_remote_request_t *r = fake_remote_request(s->remotes[k], i);
      size_t entries = 0;
      json_t *edus = json_object_get(r->body, "edus"), *edu;
      size_t e;
      json_array_foreach(edus, e, edu) {
        json_t *entry;
        size_t p;
        json_array_foreach(json_object_get(json_object_get(edu, "content"), "push"), p, entry) {
          const char *id = json_string_value(json_object_get(entry, "user_id"));
          entries += id != NULL && strcmp(id, user) == 0;
        }
      }
      if (entries > 1) {
        presence_scene_note_receipts(s);
        rc_fail(s->t, "PR-05: at most one entry per user per transaction",
                "transaction %s to %s carries %zu entries for %s", r->txn_id ? r->txn_id : "?",
                s->names[k], entries, user);
        return;
      }
    }
  }
  size_t slow = fake_remote_updates(s->remotes[0], user, NULL, 0);
  if (slow >= 5) {
    presence_scene_note_receipts(s);
    rc_fail(s->t,
            "PR-05: updates pending for a busy destination are coalesced per user (5 rows "
            "while remote1 answers in 2 s: fewer than 5 updates)",
            "%s received %zu updates for %s", s->names[0], slow, user);
    return;
  }
  presence_scene_check(s, "PR-05: the last state a destination receives is the last row's");
}

/* PR-06: a server that joins gets the next update; one whose last member left does not. */
SCENE_TEST(membership_changes, .remotes = 3, .local_users = 1, .users_per_remote = 1, .rooms = 2)
static void membership_changes_body(presence_scene_t *s) {
  rc_error_t err;
  presence_gen_t *g = s->gen;
  const char *a = presence_gen_room(g, 0), *b = presence_gen_room(g, 1);
  const char *user = presence_gen_local_user(g, 0);
  const char *r2_user = presence_gen_remote_user(g, 1, 0);
  /* remote1 in room a, remote2 in room b, remote3 not yet anywhere. */
  if (presence_gen_member(g, a, user, "join", &err) != 0 ||
      presence_gen_member(g, b, user, "join", &err) != 0 ||
      presence_gen_member(g, a, presence_gen_remote_user(g, 0, 0), "join", &err) != 0 ||
      presence_gen_member(g, b, r2_user, "join", &err) != 0 ||
      presence_gen_presence(g, user, "online", &err) != 0)
    goto fail;
  if (!send_and_settle(s) || !presence_scene_check(s, "PR-01: before the changes")) return;
  /* remote3 joins room a; remote2's only member leaves room b. */
  if (presence_gen_member(g, a, presence_gen_remote_user(g, 2, 0), "join", &err) != 0 ||
      presence_gen_member(g, b, r2_user, "leave", &err) != 0 ||
      presence_gen_presence(g, user, "unavailable", &err) != 0)
    goto fail;
  if (!send_and_settle(s)) return;
  presence_scene_check(s,
                       "PR-06: membership changes apply to later rows: a server that joined "
                       "gets the next update, one whose last member left gets none");
  return;
fail:
  rc_error(s->t, "%s", err.msg);
}

/* PR-07: remote1 answers 500 and remote3 refuses connections; remote2 still gets each
 * update within D, once. */
SCENE_TEST(failing_destination, .remotes = 3, .local_users = 1, .users_per_remote = 1, .rooms = 1)
static void failing_destination_body(presence_scene_t *s) {
  rc_error_t err;
  presence_gen_t *g = s->gen;
  const char *room = presence_gen_room(g, 0), *user = presence_gen_local_user(g, 0);
  if (presence_gen_member(g, room, user, "join", &err) != 0) goto fail;
  for (size_t k = 0; k < 3; k++)
    if (presence_gen_member(g, room, presence_gen_remote_user(g, k, 0), "join", &err) != 0)
      goto fail;
  if (!presence_scene_flush(s, NULL)) return;
  fake_remote_set_reply(s->remotes[0], 500, 0);
  if (fake_remote_set_refusing(s->remotes[2], true, &err) != 0) goto fail;
  static const char *const STATES[] = {"online", "unavailable"};
  for (size_t i = 0; i < 2; i++) {
    if (presence_gen_presence(g, user, STATES[i], &err) != 0) goto fail;
    int64_t at = rc_clock_mono_ms();
    if (!presence_scene_flush(s, NULL)) return;
    bool arrived = false;
    while (!arrived && rc_clock_mono_ms() < at + s->delivery_ms) {
      arrived = fake_remote_updates(s->remotes[1], user, NULL, 0) >= i + 1;
      if (!arrived) rc_observe(s->t, 20);
    }
    if (!arrived) {
      presence_scene_note_receipts(s);
      rc_fail(s->t,
              "PR-07: a failing destination (500, refused) does not delay delivery to the others",
              "%s had %zu of %zu updates for %s %d ms after row %zu (remote1 answers 500, "
              "remote3 refuses)",
              s->names[1], fake_remote_updates(s->remotes[1], user, NULL, 0), i + 1, user,
              s->delivery_ms, i + 1);
      return;
    }
  }
  rc_observe(s->t, 2 * s->delivery_ms);
  size_t got = fake_remote_updates(s->remotes[1], user, NULL, 0);
  if (got != 2) {
    presence_scene_note_receipts(s);
    rc_fail(s->t, "PR-07: an update delivered with 200 is not sent again to the same server",
            "%s answered 200 and received %zu updates for %s after 2 rows", s->names[1], got, user);
  }
  return;
fail:
  rc_error(s->t, "%s", err.msg);
}

/* PR-01, PR-02 in bulk: hundreds of users, each with one row, over seeded rooms. */
SCENE_TEST(burst_exact_counts, .remotes = 6, .local_users = 300, .users_per_remote = 3, .rooms = 40)
static void burst_exact_counts_body(presence_scene_t *s) {
  rc_error_t err;
  if (presence_gen_populate(s->gen, &err) != 0 || presence_gen_burst(s->gen, 300, &err) != 0) {
    rc_error(s->t, "%s", err.msg);
    return;
  }
  if (!send_and_settle(s)) return;
  if (presence_scene_check(s,
                           "PR-01/PR-02 under a burst: every interested remote gets exactly "
                           "one update per user, no remote gets one it is not interested in"))
    rc_note(s->t, "%zu updates over %zu remotes, as expected", presence_gen_expected_total(s->gen),
            s->count);
}

#define PRESENCE_ROW(...)                                                 \
  RC_TEST_ROW(.dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_ALL, \
              .roles = PROFILE_ROLE_FEDSENDER, __VA_ARGS__)

const rc_test_def_t presence_tests[] = {
    PRESENCE_ROW(.id = "presence/fan-out/members-only", .requirements = "PR-01,PR-02",
                 .level = RC_LEVEL_MUST,
                 .requirement = "For one presence row of a local user, every server sharing a "
                                "room with the user receives exactly one update; servers sharing "
                                "none, and the SUT's own server name, receive nothing.",
                 .source = SOURCE_H, .run = fan_out_members_only),
    PRESENCE_ROW(.id = "presence/fan-out/foreign-user-ignored", .requirements = "PR-03,OUT-09",
                 .level = RC_LEVEL_MUST,
                 .requirement = "Presence rows of users of other servers are ignored (no "
                                "transaction anywhere), and their tokens are still acknowledged.",
                 .source = "synapse federation/transaction_queue.py@v0.33.6 send_presence "
                           "(is_mine_id); seed-behaviours.md §H",
                 .run = foreign_user_ignored),
    PRESENCE_ROW(.id = "presence/ack/after-apply", .requirements = "OUT-09", .level = RC_LEVEL_MUST,
                 .requirement = "After applying federation rows up to T the worker sends "
                                "FEDERATION_ACK T; acked tokens strictly increase and never "
                                "exceed what was sent.",
                 .source = "synapse app/federation_sender.py@v0.33.6 update_token",
                 .run = ack_after_apply),
    PRESENCE_ROW(.id = "presence/edu/form", .requirements = "PR-04", .level = RC_LEVEL_MUST,
                 .requirement = "Each update is an m.presence EDU in a federation transaction "
                                "(PUT /_matrix/federation/v1/send/<txn_id>) with origin = the "
                                "SUT's server name and presence = the row's state.",
                 .source = "synapse handlers/presence.py@v0.33.6 format_user_presence_state",
                 .run = edu_form),
    PRESENCE_ROW(.id = "presence/coalesce/slow-remote", .requirements = "PR-05",
                 .level = RC_LEVEL_SHOULD, .tags = "slow",
                 .requirement = "Updates for a user pending for one destination are coalesced: at "
                                "most one entry per user per transaction, the last state wins.",
                 .source = SOURCE_H, .run = coalesce_slow_remote),
    PRESENCE_ROW(.id = "presence/membership/join-leave", .requirements = "PR-06",
                 .level = RC_LEVEL_MUST,
                 .requirement = "Membership changes apply to later rows: a server that joined a "
                                "shared room gets the next update, one whose last member left "
                                "gets none.",
                 .source = SOURCE_H, .run = membership_changes),
    PRESENCE_ROW(.id = "presence/failure/isolated", .requirements = "PR-07", .level = RC_LEVEL_MUST,
                 .requirement = "A failing destination (500, refused) does not delay delivery to "
                                "the others, and an update delivered with 200 is not sent again.",
                 .source = "synapse federation/transaction_queue.py@v0.33.6; seed-behaviours.md "
                           "§G, §H",
                 .run = failing_destination),
    PRESENCE_ROW(.id = "presence/burst/exact-counts", .requirements = "PR-01,PR-02",
                 .level = RC_LEVEL_MUST, .tags = "load",
                 .requirement = "A burst of 300 presence rows (one per user) over 40 rooms and 6 "
                                "remotes: each interested remote gets exactly one update per "
                                "user, uninterested remotes none, nothing duplicated.",
                 .source = SOURCE_H, .run = burst_exact_counts),
};
const size_t presence_test_count = sizeof presence_tests / sizeof presence_tests[0];
