#include "presence_gen.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_clock.h"
#include "rc_random.h"
#include "stream_history.h"

typedef struct room {
  char *id;
  char **members;
  size_t count;
  size_t cap;
} room_t;

/* What one remote should have for one user. */
typedef struct expectation {
  size_t rows;
  const char *last_state; /* a literal from STATES or the caller's copy in `states` */
} expectation_t;

typedef struct seen_user {
  char *id;
  expectation_t *per_remote; /* remote_count entries */
} seen_user_t;

typedef struct row_list {
  char **json;
  size_t count;
  size_t cap;
} row_list_t;

struct presence_gen {
  char *server_name;
  char **remotes;
  size_t remote_count;
  char **local;
  size_t local_count;
  char **remote_users; /* remote_count * users_per_remote */
  size_t users_per_remote;
  room_t *rooms;
  size_t room_count;
  rc_random_t random;
  row_list_t events;
  row_list_t federation;
  seen_user_t *users;
  size_t user_count;
  size_t user_cap;
  char **states; /* copies of the states given, owned */
  size_t state_count;
  uint64_t next_event;
};

static const char *const STATES[] = {"online", "unavailable", "offline"};

static char *format(const char *fmt, const char *a, size_t i) {
  char *out = NULL;
  return asprintf(&out, fmt, i, a) < 0 ? NULL : out;
}

/* Everything after the first ':' of a user id, or NULL. */
static const char *user_server(const char *user) {
  const char *colon = strchr(user, ':');
  return user[0] == '@' && colon != NULL ? colon + 1 : NULL;
}

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; v != NULL && i < n; i++) free(v[i]);
  free(v);
}

static int push_row(row_list_t *list, json_t *row) {
  char *text = row != NULL ? json_dumps(row, JSON_COMPACT) : NULL;
  json_decref(row);
  if (text == NULL) return -1;
  if (list->count == list->cap) {
    size_t cap = list->cap == 0 ? 64 : list->cap * 2;
    char **grown = realloc(list->json, cap * sizeof *grown);
    if (grown == NULL) {
      free(text);
      return -1;
    }
    list->json = grown;
    list->cap = cap;
  }
  list->json[list->count++] = text;
  return 0;
}

static void rows_clear(row_list_t *list) {
  for (size_t i = 0; i < list->count; i++) free(list->json[i]);
  list->count = 0;
}

presence_gen_t *presence_gen_create(const presence_gen_config_t *config, rc_error_t *err) {
  if (config->server_name == NULL || config->server_name[0] == '\0') {
    rc_error_set(err, "presence_gen: no server name");
    return NULL;
  }
  for (size_t k = 0; k < config->remote_count; k++)
    if (strcmp(config->remotes[k], config->server_name) == 0) {
      rc_error_set(err, "presence_gen: remote %zu is named like our server (%s)", k,
                   config->server_name);
      return NULL;
    }
  presence_gen_t *gen = calloc(1, sizeof *gen);
  if (gen == NULL) goto oom;
  gen->server_name = strdup(config->server_name);
  gen->remotes = calloc(config->remote_count + 1, sizeof *gen->remotes);
  gen->local = calloc(config->local_users + 1, sizeof *gen->local);
  gen->remote_users =
      calloc(config->remote_count * config->users_per_remote + 1, sizeof *gen->remote_users);
  gen->rooms = calloc(config->rooms + 1, sizeof *gen->rooms);
  if (gen->server_name == NULL || gen->remotes == NULL || gen->local == NULL ||
      gen->remote_users == NULL || gen->rooms == NULL)
    goto oom;
  gen->remote_count = config->remote_count;
  gen->local_count = config->local_users;
  gen->users_per_remote = config->users_per_remote;
  gen->room_count = config->rooms;
  for (size_t k = 0; k < config->remote_count; k++)
    if ((gen->remotes[k] = strdup(config->remotes[k])) == NULL) goto oom;
  for (size_t i = 0; i < config->local_users; i++)
    if ((gen->local[i] = format("@u%zu:%s", config->server_name, i)) == NULL) goto oom;
  for (size_t k = 0; k < config->remote_count; k++)
    for (size_t i = 0; i < config->users_per_remote; i++) {
      char *name = NULL;
      if (asprintf(&name, "@r%zuu%zu:%s", k, i, config->remotes[k]) < 0) goto oom;
      gen->remote_users[k * config->users_per_remote + i] = name;
    }
  for (size_t i = 0; i < config->rooms; i++)
    if ((gen->rooms[i].id = format("!room%zu:%s", config->server_name, i)) == NULL) goto oom;
  rc_random_seed(&gen->random, config->seed);
  return gen;
oom:
  presence_gen_destroy(gen);
  rc_error_set(err, "presence_gen: out of memory");
  return NULL;
}

void presence_gen_destroy(presence_gen_t *gen) {
  if (gen == NULL) return;
  strv_free(gen->remotes, gen->remote_count);
  strv_free(gen->local, gen->local_count);
  strv_free(gen->remote_users, gen->remote_count * gen->users_per_remote);
  for (size_t r = 0; gen->rooms != NULL && r < gen->room_count; r++) {
    strv_free(gen->rooms[r].members, gen->rooms[r].count);
    free(gen->rooms[r].id);
  }
  free(gen->rooms);
  rows_clear(&gen->events);
  rows_clear(&gen->federation);
  free(gen->events.json);
  free(gen->federation.json);
  for (size_t u = 0; u < gen->user_count; u++) {
    free(gen->users[u].id);
    free(gen->users[u].per_remote);
  }
  free(gen->users);
  strv_free(gen->states, gen->state_count);
  free(gen->server_name);
  free(gen);
}

const char *presence_gen_local_user(const presence_gen_t *gen, size_t i) {
  return i < gen->local_count ? gen->local[i] : NULL;
}

const char *presence_gen_remote_user(const presence_gen_t *gen, size_t remote, size_t i) {
  if (remote >= gen->remote_count || i >= gen->users_per_remote) return NULL;
  return gen->remote_users[remote * gen->users_per_remote + i];
}

const char *presence_gen_room(const presence_gen_t *gen, size_t i) {
  return i < gen->room_count ? gen->rooms[i].id : NULL;
}

/* ---- membership ------------------------------------------------------------------ */

static room_t *room_find(const presence_gen_t *gen, const char *id) {
  for (size_t r = 0; r < gen->room_count; r++)
    if (strcmp(gen->rooms[r].id, id) == 0) return &gen->rooms[r];
  return NULL;
}

static bool room_has(const room_t *room, const char *user) {
  for (size_t m = 0; m < room->count; m++)
    if (strcmp(room->members[m], user) == 0) return true;
  return false;
}

static int room_set(room_t *room, const char *user, bool joined) {
  for (size_t m = 0; m < room->count; m++) {
    if (strcmp(room->members[m], user) != 0) continue;
    if (!joined) {
      free(room->members[m]);
      room->members[m] = room->members[--room->count];
    }
    return 0;
  }
  if (!joined) return 0;
  if (room->count == room->cap) {
    size_t cap = room->cap == 0 ? 8 : room->cap * 2;
    char **grown = realloc(room->members, cap * sizeof *grown);
    if (grown == NULL) return -1;
    room->members = grown;
    room->cap = cap;
  }
  if ((room->members[room->count] = strdup(user)) == NULL) return -1;
  room->count++;
  return 0;
}

int presence_gen_member(presence_gen_t *gen, const char *room_id, const char *user,
                        const char *membership, rc_error_t *err) {
  room_t *room = room_find(gen, room_id);
  if (room == NULL) return rc_error_set(err, "presence_gen: unknown room %s", room_id);
  char event_id[64];
  snprintf(event_id, sizeof event_id, "$member%llu", (unsigned long long)++gen->next_event);
  json_t *row = json_pack("[s, [s, s, s, s, n, n, s, b, b]]", "ev", event_id, room_id,
                          "m.room.member", user, membership, 0, 0);
  if (push_row(&gen->events, row) != 0 ||
      room_set(room, user, strcmp(membership, "join") == 0) != 0)
    return rc_error_set(err, "presence_gen: out of memory");
  return 0;
}

int presence_gen_populate(presence_gen_t *gen, rc_error_t *err) {
  if (gen->room_count == 0) return 0;
  for (size_t i = 0; i < gen->local_count; i++) {
    size_t joins = 1 + (size_t)rc_random_below(&gen->random, 3);
    for (size_t j = 0; j < joins; j++) {
      const char *room = gen->rooms[rc_random_below(&gen->random, gen->room_count)].id;
      if (presence_gen_member(gen, room, gen->local[i], "join", err) != 0) return -1;
    }
  }
  /* The last remote (when there are three or more) never joins: an uninterested one. */
  size_t joining = gen->remote_count >= 3 ? gen->remote_count - 1 : gen->remote_count;
  for (size_t r = 0; r < gen->room_count; r++) {
    for (size_t k = 0; k < joining; k++) {
      if (rc_random_below(&gen->random, 2) != 0) continue;
      size_t members = gen->users_per_remote < 2 ? gen->users_per_remote : 2;
      size_t first =
          (size_t)rc_random_below(&gen->random, gen->users_per_remote ? gen->users_per_remote : 1);
      for (size_t m = 0; m < members; m++) {
        const char *user = presence_gen_remote_user(gen, k, (first + m) % gen->users_per_remote);
        if (presence_gen_member(gen, gen->rooms[r].id, user, "join", err) != 0) return -1;
      }
    }
  }
  return 0;
}

/* ---- presence and the oracle ------------------------------------------------------ */

size_t presence_gen_destinations(const presence_gen_t *gen, const char *user, const char **out,
                                 size_t cap) {
  const char *home = user_server(user);
  if (home == NULL || strcmp(home, gen->server_name) != 0) return 0;
  size_t n = 0;
  const char *found[256];
  for (size_t r = 0; r < gen->room_count; r++) {
    const room_t *room = &gen->rooms[r];
    if (!room_has(room, user)) continue;
    for (size_t m = 0; m < room->count; m++) {
      const char *server = user_server(room->members[m]);
      if (server == NULL || strcmp(server, gen->server_name) == 0) continue;
      bool seen = false;
      for (size_t i = 0; i < n && !seen; i++) seen = strcmp(found[i], server) == 0;
      if (seen || n == sizeof found / sizeof found[0]) continue;
      if (out != NULL && n < cap) out[n] = server;
      found[n++] = server;
    }
  }
  return n;
}

static seen_user_t *user_find(const presence_gen_t *gen, const char *user) {
  for (size_t u = 0; u < gen->user_count; u++)
    if (strcmp(gen->users[u].id, user) == 0) return &gen->users[u];
  return NULL;
}

/* The user's oracle entry, created on its first presence row. */
static seen_user_t *user_entry(presence_gen_t *gen, const char *user) {
  seen_user_t *found = user_find(gen, user);
  if (found != NULL) return found;
  if (gen->user_count == gen->user_cap) {
    size_t cap = gen->user_cap == 0 ? 64 : gen->user_cap * 2;
    seen_user_t *grown = realloc(gen->users, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    gen->users = grown;
    gen->user_cap = cap;
  }
  seen_user_t *s = &gen->users[gen->user_count];
  s->id = strdup(user);
  s->per_remote = calloc(gen->remote_count + 1, sizeof *s->per_remote);
  if (s->id == NULL || s->per_remote == NULL) {
    free(s->id);
    free(s->per_remote);
    return NULL;
  }
  gen->user_count++;
  return s;
}

/* A state string the expectations may point at for the generator's lifetime. */
static const char *state_keep(presence_gen_t *gen, const char *state) {
  for (size_t i = 0; i < sizeof STATES / sizeof STATES[0]; i++)
    if (strcmp(STATES[i], state) == 0) return STATES[i];
  for (size_t i = 0; i < gen->state_count; i++)
    if (strcmp(gen->states[i], state) == 0) return gen->states[i];
  char **grown = realloc(gen->states, (gen->state_count + 1) * sizeof *grown);
  if (grown == NULL) return NULL;
  gen->states = grown;
  if ((gen->states[gen->state_count] = strdup(state)) == NULL) return NULL;
  return gen->states[gen->state_count++];
}

int presence_gen_presence(presence_gen_t *gen, const char *user, const char *state,
                          rc_error_t *err) {
  int64_t now = rc_clock_wall_ms();
  json_t *row =
      json_pack("[s, {s:s, s:s, s:I, s:I, s:I, s:n, s:b}]", "p", "user_id", user, "state", state,
                "last_active_ts", (json_int_t)(now - 1000), "last_federation_update_ts",
                (json_int_t)(now - 1000), "last_user_sync_ts", (json_int_t)now, "status_msg",
                "currently_active", strcmp(state, "online") == 0);
  seen_user_t *seen = user_entry(gen, user);
  const char *kept = state_keep(gen, state);
  if (seen == NULL || kept == NULL || push_row(&gen->federation, row) != 0)
    return rc_error_set(err, "presence_gen: out of memory");
  const char *dests[64];
  size_t n = presence_gen_destinations(gen, user, dests, 64);
  for (size_t d = 0; d < n && d < 64; d++)
    for (size_t k = 0; k < gen->remote_count; k++)
      if (strcmp(gen->remotes[k], dests[d]) == 0) {
        seen->per_remote[k].rows++;
        seen->per_remote[k].last_state = kept;
      }
  return 0;
}

int presence_gen_burst(presence_gen_t *gen, size_t count, rc_error_t *err) {
  if (count > gen->local_count)
    return rc_error_set(err, "presence_gen: a burst of %zu distinct users, but only %zu exist",
                        count, gen->local_count);
  size_t *order = malloc((gen->local_count + 1) * sizeof *order);
  if (order == NULL) return rc_error_set(err, "presence_gen: out of memory");
  for (size_t i = 0; i < gen->local_count; i++) order[i] = i;
  for (size_t i = gen->local_count; i > 1; i--) { /* Fisher-Yates */
    size_t j = (size_t)rc_random_below(&gen->random, i);
    size_t tmp = order[i - 1];
    order[i - 1] = order[j];
    order[j] = tmp;
  }
  int rc = 0;
  for (size_t i = 0; i < count && rc == 0; i++) {
    const char *state = STATES[rc_random_below(&gen->random, 3)];
    rc = presence_gen_presence(gen, gen->local[order[i]], state, err);
  }
  free(order);
  return rc;
}

static int emit_list(row_list_t *list, mockhs_t *mock, const char *stream, int64_t *last,
                     rc_error_t *err) {
  if (list->count == 0) return 0;
  int64_t position = 0;
  if (!stream_history_position(mockhs_history(mock), stream, &position))
    return rc_error_set(err, "presence_gen: the mock does not write the %s stream", stream);
  mockhs_row_t *rows = calloc(list->count, sizeof *rows);
  if (rows == NULL) return rc_error_set(err, "presence_gen: out of memory");
  for (size_t i = 0; i < list->count; i++)
    rows[i] = (mockhs_row_t){.token = position + 1 + (int64_t)i, .json = list->json[i]};
  int rc = mockhs_emit(mock, stream, rows, list->count, err);
  if (rc == 0 && last != NULL) *last = rows[list->count - 1].token;
  free(rows);
  rows_clear(list);
  return rc;
}

int presence_gen_flush(presence_gen_t *gen, mockhs_t *mock, int64_t *last_federation,
                       rc_error_t *err) {
  if (emit_list(&gen->events, mock, "events", NULL, err) != 0) return -1;
  return emit_list(&gen->federation, mock, "federation", last_federation, err);
}

size_t presence_gen_expected(const presence_gen_t *gen, const char *remote, const char *user,
                             const char **last_state) {
  if (last_state != NULL) *last_state = NULL;
  const seen_user_t *seen = user_find(gen, user);
  for (size_t k = 0; seen != NULL && k < gen->remote_count; k++) {
    if (strcmp(gen->remotes[k], remote) != 0) continue;
    if (last_state != NULL) *last_state = seen->per_remote[k].last_state;
    return seen->per_remote[k].rows;
  }
  return 0;
}

size_t presence_gen_user_count(const presence_gen_t *gen) {
  return gen->user_count;
}

const char *presence_gen_user_at(const presence_gen_t *gen, size_t i) {
  return i < gen->user_count ? gen->users[i].id : NULL;
}

size_t presence_gen_expected_total(const presence_gen_t *gen) {
  size_t total = 0;
  for (size_t u = 0; u < gen->user_count; u++)
    for (size_t k = 0; k < gen->remote_count; k++) total += gen->users[u].per_remote[k].rows;
  return total;
}
