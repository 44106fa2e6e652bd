#include "fedsender.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "rc_clock.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.federation.transaction_queue"
#define SEND_PATH "/_matrix/federation/v1/send/"

typedef struct room {
  char *id;
  char **members; /* joined user ids */
  size_t count;
  size_t cap;
} room_t;

typedef struct destination {
  fedsender_t *sender;
  char *name;
  char *host; /* NULL when no --remote names this server */
  int port;
  char *prefix;
  char host_header[300];
  struct evhttp_connection *evcon;
  struct evhttp_request *request; /* in flight, or NULL */
  char txn_id[32];
  json_t *pending; /* presence entries waiting for the next transaction */
  json_t *edus;    /* other EDUs ({"edu_type", "content"}) waiting for it, in row order */
  struct destination *next;
} destination_t;

struct fedsender {
  struct event_base *base;
  char *server_name;
  int64_t timeout_ms;
  bool per_member; /* BUG_PRESENCE_PER_DESTINATION */
  bug_set_t bugs;  /* the other presence bugs (bugs.h) */
  /* BUG_PRESENCE_FAILURE_BLOCKS: every destination waits until this timer fires. */
  struct event *unblock;
  bool blocked;
  bool edus_newest_first; /* BUG_FEDERATION_QUEUE_NEWEST_FIRST */
  bool unknown_row_aborts; /* BUG_FEDERATION_UNKNOWN_ROW_ABORTS */
  fedsender_ack_fn ack;
  void *ack_arg;
  room_t *rooms;
  size_t room_count;
  size_t room_cap;
  destination_t *destinations;
  uint64_t next_txn;
  unsigned long sent;
};

/* ---- --remote NAME=URL ---------------------------------------------------------- */

int fedsender_parse_remote(const char *text, fedsender_remote_t *remote, rc_error_t *err) {
  memset(remote, 0, sizeof *remote);
  const char *eq = strchr(text, '=');
  if (eq == NULL || eq == text || eq[1] == '\0')
    return rc_error_set(err, "--remote '%s': expected NAME=URL", text);
  remote->name = strndup(text, (size_t)(eq - text));
  remote->url = strdup(eq + 1);
  if (remote->name == NULL || remote->url == NULL) {
    fedsender_remote_free(remote);
    return rc_error_set(err, "--remote: out of memory");
  }
  return 0;
}

void fedsender_remote_free(fedsender_remote_t *remote) {
  if (remote == NULL) return;
  free(remote->name);
  free(remote->url);
  remote->name = remote->url = NULL;
}

/* ---- destinations ----------------------------------------------------------------- */

static void destination_free(destination_t *d) {
  if (d->request != NULL) evhttp_cancel_request(d->request);
  if (d->evcon != NULL) evhttp_connection_free(d->evcon);
  json_decref(d->pending);
  json_decref(d->edus);
  free(d->name);
  free(d->host);
  free(d->prefix);
  free(d);
}

static int destination_set_url(destination_t *d, const char *url, rc_error_t *err) {
  struct evhttp_uri *uri = evhttp_uri_parse_with_flags(url, 0);
  if (uri == NULL) return rc_error_set(err, "--remote %s=%s: not a URL", d->name, url);
  const char *scheme = evhttp_uri_get_scheme(uri);
  const char *host = evhttp_uri_get_host(uri);
  const char *path = evhttp_uri_get_path(uri);
  int port = evhttp_uri_get_port(uri);
  int rc = 0;
  if (scheme == NULL || strcasecmp(scheme, "http") != 0 || host == NULL || host[0] == '\0' ||
      port == 0 || port > 65535 || evhttp_uri_get_query(uri) != NULL) {
    rc = rc_error_set(err, "--remote %s=%s: expected http://host[:port][/path]", d->name, url);
  } else {
    size_t len = path != NULL ? strlen(path) : 0;
    while (len > 0 && path[len - 1] == '/') len--;
    d->host = strdup(host);
    d->prefix = strndup(path != NULL ? path : "", len);
    d->port = port < 0 ? 80 : port;
    snprintf(d->host_header, sizeof d->host_header, "%s:%d", host, d->port);
    if (d->host == NULL || d->prefix == NULL) rc = rc_error_set(err, "--remote: out of memory");
  }
  evhttp_uri_free(uri);
  return rc;
}

static destination_t *destination_find(const fedsender_t *sender, const char *name) {
  for (destination_t *d = sender->destinations; d != NULL; d = d->next)
    if (strcmp(d->name, name) == 0) return d;
  return NULL;
}

/* The destination record of a server (created on first sight, without a URL when no
 * --remote names it). */
static destination_t *destination_get(fedsender_t *sender, const char *name) {
  destination_t *d = destination_find(sender, name);
  if (d != NULL) return d;
  d = calloc(1, sizeof *d);
  if (d == NULL || (d->name = strdup(name)) == NULL || (d->pending = json_array()) == NULL ||
      (d->edus = json_array()) == NULL) {
    if (d != NULL) {
      json_decref(d->pending);
      free(d->name);
      free(d);
    }
    return NULL;
  }
  d->sender = sender;
  d->next = sender->destinations;
  sender->destinations = d;
  return d;
}

/* ---- transactions ----------------------------------------------------------------- */

static void destination_send(destination_t *d);

#define FAILURE_BLOCK_MS 10000

/* BUG_PRESENCE_FAILURE_BLOCKS: the shared backoff is over; every queue goes again. */
static void on_unblock(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  fedsender_t *sender = arg;
  sender->blocked = false;
  for (destination_t *d = sender->destinations; d != NULL; d = d->next) destination_send(d);
  wlog_callback_end();
}

static void on_transaction_done(struct evhttp_request *req, void *arg) {
  wlog_callback_begin();
  destination_t *d = arg;
  d->request = NULL;
  int status = req != NULL ? evhttp_request_get_response_code(req) : 0;
  fedsender_t *sender = d->sender;
  if (status != 200 && bugs_has(sender->bugs, BUG_PRESENCE_FAILURE_BLOCKS) && !sender->blocked &&
      sender->unblock != NULL) {
    struct timeval tv = {.tv_sec = FAILURE_BLOCK_MS / 1000, .tv_usec = 0};
    sender->blocked = true;
    evtimer_add(sender->unblock, &tv);
  }
  if (status == 200)
    WLOG_INFO("TX [%s] {%s} got 200 response", d->name, d->txn_id);
  else if (status == 0)
    WLOG_WARNING("TX [%s] {%s} Failed to send transaction: no response", d->name, d->txn_id);
  else
    WLOG_WARNING("TX [%s] {%s} Failed to send transaction: HTTP %d", d->name, d->txn_id, status);
  /* What was in it is not sent again either way; anything queued since goes now. */
  destination_send(d);
}

/* Takes the entries of the next transaction off the queue: all of them, or one under
 * BUG_PRESENCE_PER_DESTINATION. */
static json_t *take_pending(destination_t *d) {
  json_t *push = json_array();
  if (push == NULL) return NULL;
  if (d->sender->per_member) {
    json_array_append(push, json_array_get(d->pending, 0));
    json_array_remove(d->pending, 0);
  } else {
    json_array_extend(push, d->pending);
    json_array_clear(d->pending);
  }
  return push;
}

/* The "edus" list of the next transaction: the queued presence (one m.presence EDU, or
 * none) then the other EDUs in the order they were queued; both queues are taken. */
static json_t *take_edus(destination_t *d) {
  json_t *edus = json_array();
  if (edus == NULL) return NULL;
  if (json_array_size(d->pending) > 0) {
    json_t *push = take_pending(d);
    if (push == NULL ||
        json_array_append_new(edus, json_pack("{s:s, s:{s:o}}", "edu_type", "m.presence",
                                              "content", "push", push)) != 0) {
      json_decref(edus);
      return NULL;
    }
  }
  json_array_extend(edus, d->edus);
  json_array_clear(d->edus);
  return edus;
}

static void destination_send(destination_t *d) {
  fedsender_t *sender = d->sender;
  if (d->request != NULL || (json_array_size(d->pending) == 0 && json_array_size(d->edus) == 0) ||
      sender->blocked)
    return;
  if (d->evcon == NULL) {
    d->evcon = evhttp_connection_base_new(sender->base, NULL, d->host, (ev_uint16_t)d->port);
    if (d->evcon == NULL) {
      WLOG_ERROR("Error sending presence states to servers: cannot connect to %s", d->name);
      json_array_clear(d->pending);
      json_array_clear(d->edus);
      return;
    }
    struct timeval tv = {.tv_sec = (time_t)(sender->timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(sender->timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(d->evcon, &tv);
    evhttp_connection_set_retries(d->evcon, 0);
  }
  json_t *edus = take_edus(d);
  size_t edu_count = json_array_size(edus);
  json_t *body = edus != NULL ? json_pack("{s:s, s:I, s:[], s:o}", "origin", sender->server_name,
                                          "origin_server_ts", (json_int_t)rc_clock_wall_ms(),
                                          "pdus", "edus", edus)
                              : NULL;
  if (body != NULL && bugs_has(sender->bugs, BUG_PRESENCE_NO_ORIGIN))
    json_object_del(body, "origin");
  char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  snprintf(d->txn_id, sizeof d->txn_id, "%" PRIu64, sender->next_txn++);
  char path[1024];
  snprintf(path, sizeof path, "%s" SEND_PATH "%s", d->prefix, d->txn_id);
  struct evhttp_request *req = text != NULL ? evhttp_request_new(on_transaction_done, d) : NULL;
  if (req == NULL) {
    WLOG_ERROR("Error sending presence states to servers: out of memory");
    free(text);
    return;
  }
  struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Host", d->host_header);
  evhttp_add_header(headers, "Content-Type", "application/json");
  evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
  free(text);
  WLOG_INFO("TX [%s] {%s} Sending transaction [%s], (PDUs: 0, EDUs: %zu)", d->name, d->txn_id,
            d->txn_id, edu_count);
  if (evhttp_make_request(d->evcon, req, EVHTTP_REQ_PUT, path) != 0) {
    /* evhttp has freed the request. */
    WLOG_WARNING("TX [%s] {%s} Failed to send transaction: cannot start the request", d->name,
                 d->txn_id);
    return;
  }
  d->request = req;
  sender->sent++;
}

/* ---- rooms ------------------------------------------------------------------------- */

static room_t *room_get(fedsender_t *sender, const char *id, bool create) {
  for (size_t i = 0; i < sender->room_count; i++)
    if (strcmp(sender->rooms[i].id, id) == 0) return &sender->rooms[i];
  if (!create) return NULL;
  if (sender->room_count == sender->room_cap) {
    size_t cap = sender->room_cap == 0 ? 8 : sender->room_cap * 2;
    room_t *grown = realloc(sender->rooms, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    sender->rooms = grown;
    sender->room_cap = cap;
  }
  room_t *room = &sender->rooms[sender->room_count];
  memset(room, 0, sizeof *room);
  if ((room->id = strdup(id)) == NULL) return NULL;
  sender->room_count++;
  return room;
}

static bool room_has(const room_t *room, const char *user) {
  for (size_t i = 0; i < room->count; i++)
    if (strcmp(room->members[i], user) == 0) return true;
  return false;
}

static void room_set_member(room_t *room, const char *user, bool joined) {
  for (size_t i = 0; i < room->count; i++) {
    if (strcmp(room->members[i], user) != 0) continue;
    if (!joined) {
      free(room->members[i]);
      room->members[i] = room->members[--room->count];
    }
    return;
  }
  if (!joined) return;
  if (room->count == room->cap) {
    size_t cap = room->cap == 0 ? 4 : room->cap * 2;
    char **grown = realloc(room->members, cap * sizeof *grown);
    if (grown == NULL) return;
    room->members = grown;
    room->cap = cap;
  }
  char *copy = strdup(user);
  if (copy != NULL) room->members[room->count++] = copy;
}

/* get_domain_from_id: everything after the first ':'. */
static const char *user_server(const char *user) {
  const char *colon = strchr(user, ':');
  return colon != NULL && user[0] == '@' ? colon + 1 : NULL;
}

/* ["ev", [event_id, room_id, type, state_key, redacts, relates_to, membership, rejected,
 * outlier]] */
static void apply_event_row(fedsender_t *sender, json_t *row) {
  json_t *event = json_array_get(row, 1);
  if (!json_is_string(json_array_get(row, 0)) ||
      strcmp(json_string_value(json_array_get(row, 0)), "ev") != 0 || !json_is_array(event))
    return;
  const char *room_id = json_string_value(json_array_get(event, 1));
  const char *type = json_string_value(json_array_get(event, 2));
  const char *state_key = json_string_value(json_array_get(event, 3));
  const char *membership = json_string_value(json_array_get(event, 6));
  if (room_id == NULL || type == NULL || strcmp(type, "m.room.member") != 0 || state_key == NULL ||
      membership == NULL || json_is_true(json_array_get(event, 7)))
    return;
  bool joined = strcmp(membership, "join") == 0;
  if (!joined && bugs_has(sender->bugs, BUG_PRESENCE_LEAVE_IGNORED)) return;
  room_t *room = room_get(sender, room_id, joined);
  if (room == NULL) return;
  room_set_member(room, state_key, joined);
  WLOG_DEBUG("Membership of %s in %s is now %s", state_key, room_id, membership);
}

/* format_user_presence_state (include_user_id): the entry of the "push" list. */
static json_t *format_presence(const char *user, json_t *state) {
  const char *presence = json_string_value(json_object_get(state, "state"));
  json_t *entry =
      json_pack("{s:s, s:s}", "user_id", user, "presence", presence != NULL ? presence : "offline");
  if (entry == NULL) return NULL;
  json_t *last_active = json_object_get(state, "last_active_ts");
  if (json_is_integer(last_active) && json_integer_value(last_active) > 0)
    json_object_set_new(entry, "last_active_ago",
                        json_integer(rc_clock_wall_ms() - json_integer_value(last_active)));
  json_t *status = json_object_get(state, "status_msg");
  if (json_is_string(status) && json_string_length(status) > 0 &&
      (presence == NULL || strcmp(presence, "offline") != 0))
    json_object_set(entry, "status_msg", status);
  if (presence != NULL && strcmp(presence, "online") == 0)
    json_object_set_new(entry, "currently_active",
                        json_boolean(json_is_true(json_object_get(state, "currently_active"))));
  return entry;
}

static void queue_for(fedsender_t *sender, const char *server, json_t *entry, const char *user) {
  destination_t *d = destination_get(sender, server);
  if (d == NULL) return;
  if (d->host == NULL) {
    WLOG_WARNING("No URL for destination %s (no --remote): not sending presence of %s", server,
                 user);
    return;
  }
  if (!sender->per_member) {
    /* Coalesce: one entry per user, the latest state. */
    for (size_t i = 0; i < json_array_size(d->pending); i++) {
      const char *queued =
          json_string_value(json_object_get(json_array_get(d->pending, i), "user_id"));
      if (queued != NULL && strcmp(queued, user) == 0) {
        json_array_set(d->pending, i, entry);
        return;
      }
    }
  }
  json_array_append(d->pending, entry);
}

/* ["p", {user_id, state, ...}]: queues the update for every server sharing a room. */
static void apply_presence_row(fedsender_t *sender, json_t *row) {
  const char *kind = json_string_value(json_array_get(row, 0));
  json_t *state = json_array_get(row, 1);
  const char *user = json_string_value(json_object_get(state, "user_id"));
  if (kind == NULL || strcmp(kind, "p") != 0 || user == NULL) return;
  const char *server = user_server(user);
  if (server == NULL ||
      (strcmp(server, sender->server_name) != 0 &&
       !bugs_has(sender->bugs, BUG_PRESENCE_FOREIGN_USERS))) {
    WLOG_DEBUG("Ignoring presence of %s: not a user of this server", user);
    return;
  }
  json_t *entry = format_presence(user, state);
  if (entry == NULL) return;
  /* Servers already chosen for this row, so each gets it once (unless the bug). */
  const char **chosen = NULL;
  size_t chosen_count = 0, chosen_cap = 0;
  for (size_t r = 0; r < sender->room_count; r++) {
    room_t *room = &sender->rooms[r];
    if (!room_has(room, user)) continue;
    for (size_t m = 0; m < room->count; m++) {
      const char *dest = user_server(room->members[m]);
      if (dest == NULL || strcmp(dest, sender->server_name) == 0) continue;
      bool seen = false;
      for (size_t c = 0; c < chosen_count && !sender->per_member; c++)
        if (strcmp(chosen[c], dest) == 0) seen = true;
      if (seen) continue;
      if (chosen_count == chosen_cap) {
        size_t cap = chosen_cap == 0 ? 8 : chosen_cap * 2;
        const char **grown = realloc(chosen, cap * sizeof *grown);
        if (grown == NULL) break;
        chosen = grown;
        chosen_cap = cap;
      }
      chosen[chosen_count++] = dest;
      queue_for(sender, dest, entry, user);
    }
  }
  for (size_t c = 0; c < chosen_count; c++) {
    destination_t *d = destination_find(sender, chosen[c]);
    if (d != NULL) destination_send(d);
  }
  free(chosen);
  json_decref(entry);
}

/* ["e", {"origin", "destination", "edu_type", "content"}]: queued for its destination
 * behind what is already queued there, and sent when no transaction is in flight. */
static void apply_edu_row(fedsender_t *sender, json_t *row) {
  json_t *data = json_array_get(row, 1);
  const char *server = json_string_value(json_object_get(data, "destination"));
  const char *type = json_string_value(json_object_get(data, "edu_type"));
  json_t *content = json_object_get(data, "content");
  if (server == NULL || type == NULL || !json_is_object(content)) {
    WLOG_WARNING("Ignoring a federation EDU row without destination, edu_type or content");
    return;
  }
  if (strcmp(server, sender->server_name) == 0) return;
  destination_t *d = destination_get(sender, server);
  if (d == NULL) return;
  if (d->host == NULL) {
    WLOG_WARNING("No URL for destination %s (no --remote): not sending its %s EDU", server, type);
    return;
  }
  json_t *edu = json_pack("{s:s, s:O}", "edu_type", type, "content", content);
  if (edu == NULL) return;
  if (sender->edus_newest_first && d->request != NULL)
    json_array_insert_new(d->edus, 0, edu);
  else
    json_array_append_new(d->edus, edu);
  destination_send(d);
}

/* One row of a federation unit; false when the row's type is unknown. */
static bool apply_federation_row(fedsender_t *sender, json_t *row) {
  const char *kind = json_string_value(json_array_get(row, 0));
  if (kind == NULL) kind = "";
  if (strcmp(kind, "p") == 0) {
    apply_presence_row(sender, row);
  } else if (strcmp(kind, "e") == 0) {
    apply_edu_row(sender, row);
  } else if (strcmp(kind, "k") == 0 || strcmp(kind, "pd") == 0 || strcmp(kind, "d") == 0) {
    WLOG_DEBUG("Not sending federation row of type '%s' (not supported by refworker)", kind);
  } else {
    /* send_queue.py process_rows_for_federation: logged and skipped. */
    WLOG_ERROR("Unrecognized federation row type '%s'", kind);
    return false;
  }
  return true;
}

void fedsender_on_unit(void *arg, const stream_unit_t *unit) {
  fedsender_t *sender = arg;
  bool events = strcmp(unit->stream, "events") == 0;
  bool federation = strcmp(unit->stream, "federation") == 0;
  if (!events && !federation) return;
  for (size_t i = 0; i < unit->row_count; i++) {
    json_t *row = json_loads(unit->rows[i], JSON_DECODE_ANY, NULL);
    bool known = true;
    if (json_is_array(row)) {
      if (events)
        apply_event_row(sender, row);
      else
        known = apply_federation_row(sender, row);
    }
    json_decref(row);
    if (!known && sender->unknown_row_aborts) break;
  }
  if (federation && sender->ack != NULL) sender->ack(sender->ack_arg, unit->token);
}

/* ---- lifecycle -------------------------------------------------------------------- */

fedsender_t *fedsender_create(struct event_base *base, const fedsender_config_t *config,
                              fedsender_ack_fn ack, void *ack_arg, rc_error_t *err) {
  fedsender_t *sender = calloc(1, sizeof *sender);
  if (sender == NULL || (sender->server_name = strdup(config->server_name)) == NULL) {
    free(sender);
    rc_error_set(err, "federation sender: out of memory");
    return NULL;
  }
  sender->base = base;
  sender->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : 10000;
  sender->per_member = bugs_has(config->bugs, BUG_PRESENCE_PER_DESTINATION);
  sender->bugs = config->bugs;
  if (bugs_has(config->bugs, BUG_PRESENCE_FAILURE_BLOCKS) &&
      (sender->unblock = evtimer_new(base, on_unblock, sender)) == NULL) {
    rc_error_set(err, "federation sender: out of memory");
    free(sender->server_name);
    free(sender);
    return NULL;
  }
  sender->edus_newest_first = bugs_has(config->bugs, BUG_FEDERATION_QUEUE_NEWEST_FIRST);
  sender->unknown_row_aborts = bugs_has(config->bugs, BUG_FEDERATION_UNKNOWN_ROW_ABORTS);
  sender->ack = ack;
  sender->ack_arg = ack_arg;
  /* Synapse numbers transactions from the clock at start-up. */
  sender->next_txn = (uint64_t)rc_clock_wall_ms();
  for (size_t i = 0; i < config->remote_count; i++) {
    const fedsender_remote_t *remote = &config->remotes[i];
    if (destination_find(sender, remote->name) != NULL) {
      rc_error_set(err, "--remote %s is given twice", remote->name);
      fedsender_destroy(sender);
      return NULL;
    }
    destination_t *d = destination_get(sender, remote->name);
    if (d == NULL || destination_set_url(d, remote->url, err) != 0) {
      if (d == NULL) rc_error_set(err, "federation sender: out of memory");
      fedsender_destroy(sender);
      return NULL;
    }
  }
  return sender;
}

void fedsender_destroy(fedsender_t *sender) {
  if (sender == NULL) return;
  while (sender->destinations != NULL) {
    destination_t *d = sender->destinations;
    sender->destinations = d->next;
    destination_free(d);
  }
  for (size_t r = 0; r < sender->room_count; r++) {
    for (size_t m = 0; m < sender->rooms[r].count; m++) free(sender->rooms[r].members[m]);
    free(sender->rooms[r].members);
    free(sender->rooms[r].id);
  }
  free(sender->rooms);
  if (sender->unblock != NULL) event_free(sender->unblock);
  free(sender->server_name);
  free(sender);
}

unsigned long fedsender_transactions_sent(const fedsender_t *sender) {
  return sender->sent;
}
