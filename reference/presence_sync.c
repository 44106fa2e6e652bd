#include "presence_sync.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rc_clock.h"
#include "rc_random.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.app.synchrotron"

typedef struct sync_user {
  struct sync_user *next;
  presence_sync_t *owner;
  char *user_id;
  int in_flight;        /* syncs running now */
  int64_t ended_ms;     /* wall time the last one ended (the end's <ms>) */
  struct event *expiry; /* pending end, armed while in_flight == 0 */
} sync_user_t;

struct presence_sync {
  struct event_base *base;
  presence_sync_config_t config;
  char instance_id[PRESENCE_SYNC_INSTANCE_ID_LEN + 1];
  sync_user_t *users; /* every user with a start sent and no end yet */
};

static void send_user_sync(presence_sync_t *sync, presence_sync_send_fn send, void *arg,
                           const char *user_id, bool start, int64_t ms) {
  proto_command_t cmd = {.kind = PROTO_CMD_USER_SYNC,
                         .user_id = proto_slice_cstr(user_id),
                         .sync_start = start,
                         .last_sync_ms = ms};
  if (sync->config.dialect == PROTO_DIALECT_MODERN)
    cmd.instance = proto_slice_cstr(sync->instance_id);
  WLOG_INFO("User %s %s syncing (%lld)", user_id, start ? "started" : "stopped", (long long)ms);
  send(arg, &cmd);
}

static sync_user_t *user_find(presence_sync_t *sync, const char *user_id) {
  for (sync_user_t *u = sync->users; u != NULL; u = u->next)
    if (strcmp(u->user_id, user_id) == 0) return u;
  return NULL;
}

static void user_free(sync_user_t *u) {
  if (u == NULL) return;
  if (u->expiry != NULL) event_free(u->expiry);
  free(u->user_id);
  free(u);
}

/* The user stopped syncing: one end with the time the last sync ended, and forgotten. */
static void user_stop(presence_sync_t *sync, sync_user_t *user) {
  send_user_sync(sync, sync->config.send, sync->config.send_arg, user->user_id, false,
                 user->ended_ms);
  for (sync_user_t **p = &sync->users; *p != NULL; p = &(*p)->next) {
    if (*p == user) {
      *p = user->next;
      break;
    }
  }
  user_free(user);
}

static void on_expiry(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  sync_user_t *user = arg;
  user_stop(user->owner, user);
  wlog_callback_end();
}

presence_sync_t *presence_sync_create(struct event_base *base, const presence_sync_config_t *config,
                                      rc_error_t *err) {
  presence_sync_t *sync = calloc(1, sizeof *sync);
  if (sync == NULL) {
    rc_error_set(err, "presence: out of memory");
    return NULL;
  }
  sync->base = base;
  sync->config = *config;
  /* Not secret, only distinct per process: Synapse's random_string(5). */
  rc_random_t random;
  rc_random_seed(&random, (uint64_t)rc_clock_wall_ms() ^ ((uint64_t)getpid() << 32) ^
                              (uint64_t)rc_clock_mono_ns());
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (int i = 0; i < PRESENCE_SYNC_INSTANCE_ID_LEN; i++)
    sync->instance_id[i] = letters[rc_random_below(&random, sizeof letters - 1)];
  return sync;
}

void presence_sync_destroy(presence_sync_t *sync) {
  if (sync == NULL) return;
  while (sync->users != NULL) {
    sync_user_t *next = sync->users->next;
    user_free(sync->users);
    sync->users = next;
  }
  free(sync);
}

const char *presence_sync_instance_id(const presence_sync_t *sync) {
  return sync->instance_id;
}

void presence_sync_begin(presence_sync_t *sync, const char *user_id) {
  sync_user_t *user = user_find(sync, user_id);
  if (user != NULL) {
    /* Still syncing, or within the grace period of its last sync: nothing to say. */
    if (user->in_flight++ == 0) event_del(user->expiry);
    return;
  }
  user = calloc(1, sizeof *user);
  if (user == NULL || (user->user_id = strdup(user_id)) == NULL ||
      (user->expiry = evtimer_new(sync->base, on_expiry, user)) == NULL) {
    WLOG_ERROR("Cannot track the sync of %s: out of memory", user_id);
    user_free(user);
    return;
  }
  user->owner = sync;
  user->in_flight = 1;
  user->next = sync->users;
  sync->users = user;
  send_user_sync(sync, sync->config.send, sync->config.send_arg, user_id, true, rc_clock_wall_ms());
}

void presence_sync_end(presence_sync_t *sync, const char *user_id) {
  sync_user_t *user = user_find(sync, user_id);
  if (user == NULL || user->in_flight == 0) return;
  if (--user->in_flight > 0) return;
  user->ended_ms = rc_clock_wall_ms();
  if (bugs_has(sync->config.bugs, BUG_USER_SYNC_END_IMMEDIATELY)) {
    user_stop(sync, user);
    return;
  }
  struct timeval delay = {.tv_sec = PRESENCE_SYNC_END_DELAY_MS / 1000,
                          .tv_usec = (PRESENCE_SYNC_END_DELAY_MS % 1000) * 1000};
  evtimer_add(user->expiry, &delay);
}

void presence_sync_announce(presence_sync_t *sync, presence_sync_send_fn send, void *arg) {
  if (bugs_has(sync->config.bugs, BUG_NO_USER_SYNC_ON_RECONNECT)) return;
  for (sync_user_t *u = sync->users; u != NULL; u = u->next)
    if (u->in_flight > 0) send_user_sync(sync, send, arg, u->user_id, true, rc_clock_wall_ms());
}

void presence_sync_clear(presence_sync_t *sync) {
  if (sync->config.dialect != PROTO_DIALECT_MODERN) return;
  proto_command_t cmd = {.kind = PROTO_CMD_CLEAR_USER_SYNC,
                         .instance = proto_slice_cstr(sync->instance_id)};
  WLOG_INFO("Clearing the syncing users of instance %s", sync->instance_id);
  sync->config.send(sync->config.send_arg, &cmd);
}
