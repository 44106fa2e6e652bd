#include "presence_scene.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "suite_util.h"

static const char *const REMOTE_NAMES[PRESENCE_SCENE_MAX_REMOTES] = {
    "remote1.example", "remote2.example", "remote3.example", "remote4.example",
    "remote5.example", "remote6.example", "remote7.example", "remote8.example"};

bool presence_scene_open(rc_test_t *t, presence_scene_t *s, const presence_shape_t *shape) {
  memset(s, 0, sizeof *s);
  s->t = t;
  s->conn = -1;
  s->delivery_ms = t->profile->timing.federation_delivery_ms;
  if (shape->remotes > PRESENCE_SCENE_MAX_REMOTES)
    return rc_error(t, "harness: %zu remotes, at most %d", shape->remotes,
                    PRESENCE_SCENE_MAX_REMOTES);
  rc_error_t err;
  for (size_t k = 0; k < shape->remotes; k++) {
    s->names[k] = REMOTE_NAMES[k];
    if ((s->remotes[k] = fake_remote_create(t->base, REMOTE_NAMES[k], &err)) == NULL)
      return rc_error(t, "%s", err.msg);
    s->args[k] = (rc_remote_t){REMOTE_NAMES[k], fake_remote_url(s->remotes[k])};
    s->count = k + 1;
  }
  /* Our own name gets a URL too, so a send to it would be seen (PR-02). */
  if ((s->self = fake_remote_create(t->base, t->server_name, &err)) == NULL)
    return rc_error(t, "%s", err.msg);
  s->args[s->count] = (rc_remote_t){t->server_name, fake_remote_url(s->self)};
  presence_gen_config_t config = {.server_name = t->server_name,
                                  .remotes = s->names,
                                  .remote_count = s->count,
                                  .local_users = shape->local_users,
                                  .users_per_remote = shape->users_per_remote,
                                  .rooms = shape->rooms,
                                  .seed = t->seed};
  if ((s->gen = presence_gen_create(&config, &err)) == NULL) return rc_error(t, "%s", err.msg);
  t->remotes = s->args;
  t->remote_count = s->count + 1;
  s->ack_seq = 1;
  s->conn = suite_start_connected(t);
  return s->conn >= 0;
}

void presence_scene_close(presence_scene_t *s) {
  s->t->remotes = NULL;
  s->t->remote_count = 0;
  for (size_t k = 0; k < s->count; k++) fake_remote_destroy(s->remotes[k]);
  fake_remote_destroy(s->self);
  presence_gen_destroy(s->gen);
  memset(s, 0, sizeof *s);
}

bool presence_scene_flush(presence_scene_t *s, int64_t *token) {
  rc_error_t err;
  int64_t last = 0;
  if (presence_gen_flush(s->gen, s->t->mock, &last, &err) != 0)
    return rc_error(s->t, "%s", err.msg);
  if (last > s->emitted) s->emitted = last;
  if (token != NULL) *token = last;
  return true;
}

fake_remote_t *presence_scene_remote(const presence_scene_t *s, const char *name) {
  for (size_t k = 0; k < s->count; k++)
    if (strcmp(s->names[k], name) == 0) return s->remotes[k];
  return strcmp(name, s->t->server_name) == 0 ? s->self : NULL;
}

/* The last update a remote got for user, or NULL; *count gets how many. */
static const char *last_state(const fake_remote_t *remote, const char *user, size_t *count) {
  *count = fake_remote_updates(remote, user, NULL, 0);
  if (*count == 0) return NULL;
  fake_remote_update_t *all = calloc(*count, sizeof *all);
  if (all == NULL) return NULL;
  fake_remote_updates(remote, user, all, *count);
  const char *state = all[*count - 1].presence;
  free(all);
  return state != NULL ? state : "(none)";
}

static bool delivered(void *arg) {
  presence_scene_t *s = arg;
  for (size_t u = 0; u < presence_gen_user_count(s->gen); u++) {
    const char *user = presence_gen_user_at(s->gen, u);
    for (size_t k = 0; k < s->count; k++) {
      const char *want;
      if (presence_gen_expected(s->gen, s->names[k], user, &want) == 0) continue;
      size_t got;
      const char *have = last_state(s->remotes[k], user, &got);
      if (have == NULL || strcmp(have, want) != 0) return false;
    }
  }
  return true;
}

bool presence_scene_wait_delivered(presence_scene_t *s, int timeout_ms) {
  return mockhs_run_until(s->t->mock, delivered, s, timeout_ms, 25);
}

void presence_scene_note_receipts(presence_scene_t *s) {
  char line[2048];
  for (size_t k = 0; k < s->count; k++)
    rc_note(s->t, "%s", fake_remote_describe(s->remotes[k], 12, line, sizeof line));
  rc_note(s->t, "%s (the SUT's own name): %zu requests", s->t->server_name,
          fake_remote_request_count(s->self));
}

/* One remote against the oracle: the first problem into buf; counts problems. */
static size_t check_remote(presence_scene_t *s, size_t k, char *buf, size_t cap) {
  size_t problems = 0, accounted = 0;
  const char *name = s->names[k];
  for (size_t u = 0; u < presence_gen_user_count(s->gen); u++) {
    const char *user = presence_gen_user_at(s->gen, u);
    const char *want;
    size_t rows = presence_gen_expected(s->gen, name, user, &want);
    size_t got;
    const char *have = last_state(s->remotes[k], user, &got);
    accounted += got;
    char what[512] = "";
    if (rows == 0 && got > 0)
      snprintf(what, sizeof what, "%s shares no room with %s but received %zu update%s for them",
               name, user, got, got == 1 ? "" : "s");
    else if (rows > 0 && got == 0)
      snprintf(what, sizeof what, "%s received no update for %s (expected %s%zu, last '%s')", name,
               user, rows == 1 ? "exactly " : "1 to ", rows, want);
    else if (got > rows)
      snprintf(what, sizeof what, "%s received %zu updates for %s, expected %s%zu", name, got, user,
               rows == 1 ? "exactly " : "at most ", rows);
    else if (rows > 0 && strcmp(have, want) != 0)
      snprintf(what, sizeof what, "%s's last update for %s says '%s', expected '%s'", name, user,
               have, want);
    if (what[0] == '\0') continue;
    if (problems++ == 0)
      snprintf(buf, cap, "%s", what);
    else if (problems <= 6)
      rc_note(s->t, "also: %s", what);
  }
  size_t total = fake_remote_updates(s->remotes[k], NULL, NULL, 0);
  if (total > accounted) {
    if (problems++ == 0)
      snprintf(buf, cap, "%s received %zu updates for users the SUT was given no presence of", name,
               total - accounted);
  }
  return problems;
}

bool presence_scene_check(presence_scene_t *s, const char *requirement) {
  char first[640] = "";
  size_t problems = 0;
  size_t own = fake_remote_request_count(s->self);
  if (own > 0) {
    snprintf(first, sizeof first, "the SUT sent %zu request%s to its own server name %s", own,
             own == 1 ? "" : "s", s->t->server_name);
    problems++;
  }
  for (size_t k = 0; k < s->count; k++) {
    char buf[640] = "";
    size_t n = check_remote(s, k, buf, sizeof buf);
    if (n > 0 && problems == 0) snprintf(first, sizeof first, "%s", buf);
    problems += n;
  }
  if (problems == 0) return true;
  presence_scene_note_receipts(s);
  return rc_fail(s->t, requirement,
                 "%s (%zu problem%s over %zu users and %zu remotes; %zu "
                 "(row, destination) pairs in all)",
                 first, problems, problems == 1 ? "" : "s", presence_gen_user_count(s->gen),
                 s->count, presence_gen_expected_total(s->gen));
}

bool presence_scene_wait_ack(presence_scene_t *s, int64_t token, int timeout_ms) {
  rc_test_t *t = s->t;
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  rc_match_t ack = {
      .conn_id = s->conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_FEDERATION_ACK};
  while (s->acked < token) {
    int64_t left = deadline - rc_clock_mono_ms();
    const ledger_entry_t *e = left > 0 ? rc_wait(t, s->ack_seq, &ack, (int)left) : NULL;
    if (e == NULL)
      return rc_fail(t,
                     "OUT-09: after applying federation rows up to T the worker sends "
                     "FEDERATION_ACK T",
                     "no FEDERATION_ACK >= %lld within %d ms (last ack %lld)", (long long)token,
                     timeout_ms, (long long)s->acked);
    s->ack_seq = e->seq + 1;
    proto_command_t cmd;
    if (!rc_parse_sut_line(t, e, &cmd)) continue;
    if (cmd.token <= s->acked || cmd.token > s->emitted)
      return rc_fail(t,
                     "OUT-09: acknowledged tokens strictly increase and never exceed what "
                     "was sent",
                     "FEDERATION_ACK %lld after ack %lld; highest federation token sent %lld",
                     (long long)cmd.token, (long long)s->acked, (long long)s->emitted);
    s->acked = cmd.token;
  }
  return true;
}
