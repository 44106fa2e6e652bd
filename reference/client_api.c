#include "client_api.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "wlog.h"

#define WLOG_LOGGER "synapse.rest.client"

typedef struct pending_sync {
  struct pending_sync *next;
  client_api_t *api;
  http_server_t *server;
  struct evhttp_request *req;
  struct evhttp_connection *evcon;
  const client_user_t *user;
  bool affects_presence;
  struct event *timer;
  char context[64]; /* the request's log context ("GET-3"), for its answer's lines */
} pending_sync_t;

struct client_api {
  struct event_base *base;
  const client_user_t *users;
  size_t user_count;
  client_ips_t *ips;
  presence_sync_t *presence;
  pending_sync_t *pending;
  unsigned long batch_seq;
};

/* ---- --user ------------------------------------------------------------------------ */

int client_user_parse(const char *text, client_user_t *user, rc_error_t *err) {
  memset(user, 0, sizeof *user);
  const char *eq = strchr(text, '=');
  const char *eq2 = eq != NULL ? strchr(eq + 1, '=') : NULL;
  const char *token_end = eq2 != NULL ? eq2 : text + strlen(text);
  if (text[0] != '@' || eq == NULL || eq == text + 1 || token_end == eq + 1 ||
      (eq2 != NULL && eq2[1] == '\0') || strpbrk(text, " \t\r\n") != NULL)
    return rc_error_set(err,
                        "--user: expected USER_ID=TOKEN[=DEVICE_ID] with a user id starting "
                        "with '@' and nothing empty or blank, got '%s'",
                        text);
  user->user_id = strndup(text, (size_t)(eq - text));
  user->access_token = strndup(eq + 1, (size_t)(token_end - eq - 1));
  user->device_id = eq2 != NULL ? strdup(eq2 + 1) : NULL;
  if (user->user_id == NULL || user->access_token == NULL ||
      (eq2 != NULL && user->device_id == NULL)) {
    client_user_free(user);
    return rc_error_set(err, "--user: out of memory");
  }
  return 0;
}

void client_user_free(client_user_t *user) {
  if (user == NULL) return;
  free(user->user_id);
  free(user->access_token);
  free(user->device_id);
  memset(user, 0, sizeof *user);
}

/* ---- lifecycle --------------------------------------------------------------------- */

client_api_t *client_api_create(struct event_base *base, const client_user_t *users,
                                size_t user_count, client_ips_t *ips, presence_sync_t *presence,
                                rc_error_t *err) {
  client_api_t *api = calloc(1, sizeof *api);
  if (api == NULL) {
    rc_error_set(err, "client API: out of memory");
    return NULL;
  }
  api->base = base;
  api->users = users;
  api->user_count = user_count;
  api->ips = ips;
  api->presence = presence;
  return api;
}

static void pending_unlink(client_api_t *api, pending_sync_t *p) {
  for (pending_sync_t **at = &api->pending; *at != NULL; at = &(*at)->next) {
    if (*at == p) {
      *at = p->next;
      return;
    }
  }
}

/* The sync is over (answered or abandoned): the presence writer may hear of it. */
static void pending_finish(pending_sync_t *p) {
  client_api_t *api = p->api;
  pending_unlink(api, p);
  evhttp_connection_set_closecb(p->evcon, NULL, NULL);
  if (p->affects_presence && api->presence != NULL)
    presence_sync_end(api->presence, p->user->user_id);
  if (p->timer != NULL) event_free(p->timer);
  free(p);
}

void client_api_destroy(client_api_t *api) {
  if (api == NULL) return;
  while (api->pending != NULL) {
    pending_sync_t *p = api->pending;
    api->pending = p->next;
    evhttp_connection_set_closecb(p->evcon, NULL, NULL);
    if (p->timer != NULL) event_free(p->timer);
    free(p);
  }
  free(api);
}

/* ---- requests ---------------------------------------------------------------------- */

static void reply_error(http_server_t *server, struct evhttp_request *req, int status,
                        const char *reason, const char *errcode, const char *error) {
  json_t *object = json_pack("{s:s, s:s}", "errcode", errcode, "error", error);
  char *body = object != NULL ? json_dumps(object, JSON_COMPACT) : NULL;
  json_decref(object);
  http_server_reply(server, req, status, reason, body);
  free(body);
}

/* The user the request's access token belongs to; answers 401 itself when none. */
static const client_user_t *authenticate(client_api_t *api, http_server_t *server,
                                         struct evhttp_request *req, struct evkeyvalq *query) {
  const char *token = NULL;
  const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
    token = auth + 7;
  else
    token = evhttp_find_header(query, "access_token");
  if (token == NULL || token[0] == '\0') {
    reply_error(server, req, 401, "Unauthorized", "M_MISSING_TOKEN", "Missing access token.");
    return NULL;
  }
  for (size_t i = 0; i < api->user_count; i++)
    if (strcmp(api->users[i].access_token, token) == 0) return &api->users[i];
  reply_error(server, req, 401, "Unauthorized", "M_UNKNOWN_TOKEN", "Unrecognised access token.");
  return NULL;
}

static void report_ip(client_api_t *api, struct evhttp_request *req, const client_user_t *user) {
  char *peer = NULL;
  ev_uint16_t peer_port = 0;
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  if (evcon != NULL) evhttp_connection_get_peer(evcon, &peer, &peer_port);
  const char *agent = evhttp_find_header(evhttp_request_get_input_headers(req), "User-Agent");
  client_ips_record(api->ips, user->user_id, user->access_token, peer != NULL ? peer : "",
                    agent != NULL ? agent : "", user->device_id);
}

static void answer_whoami(http_server_t *server, struct evhttp_request *req,
                          const client_user_t *user) {
  json_t *object = json_pack("{s:s, s:s?}", "user_id", user->user_id, "device_id", user->device_id);
  char *body = object != NULL ? json_dumps(object, JSON_COMPACT) : NULL;
  json_decref(object);
  http_server_reply(server, req, 200, "OK", body);
  free(body);
}

static void sync_answer(pending_sync_t *p) {
  char body[160];
  snprintf(body, sizeof body, "{\"next_batch\":\"s%lu\",\"rooms\":{},\"presence\":{\"events\":[]}}",
           ++p->api->batch_seq);
  http_server_reply(p->server, p->req, 200, "OK", body);
  pending_finish(p);
}

static void on_sync_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  pending_sync_t *p = arg;
  /* The answer belongs to the request, as a Deferred resumes its caller's context. */
  wlog_context_enter(p->context);
  sync_answer(p);
  wlog_context_reset();
  wlog_callback_end();
}

/* The client went away before its answer: the sync ends there (evhttp frees the
 * request right after this callback). */
static void on_sync_conn_closed(struct evhttp_connection *evcon, void *arg) {
  (void)evcon;
  wlog_callback_begin();
  pending_sync_t *p = arg;
  WLOG_INFO("Client closed the connection of a pending /sync of %s", p->user->user_id);
  pending_finish(p);
  wlog_callback_end();
}

static void start_sync(client_api_t *api, http_server_t *server, struct evhttp_request *req,
                       struct evkeyvalq *query, const client_user_t *user) {
  const char *timeout_text = evhttp_find_header(query, "timeout");
  long timeout_ms = 0;
  if (timeout_text != NULL) {
    char *end = NULL;
    errno = 0;
    timeout_ms = strtol(timeout_text, &end, 10);
    if (timeout_text[0] == '\0' || *end != '\0' || errno != 0 || timeout_ms < 0) {
      reply_error(server, req, 400, "Bad Request", "M_INVALID_PARAM",
                  "timeout must be a non-negative integer");
      return;
    }
  }
  if (timeout_ms > CLIENT_API_MAX_TIMEOUT_MS) timeout_ms = CLIENT_API_MAX_TIMEOUT_MS;
  const char *set_presence = evhttp_find_header(query, "set_presence");
  if (set_presence != NULL && strcmp(set_presence, "online") != 0 &&
      strcmp(set_presence, "unavailable") != 0 && strcmp(set_presence, "offline") != 0) {
    reply_error(server, req, 400, "Bad Request", "M_INVALID_PARAM",
                "set_presence must be online, unavailable or offline");
    return;
  }
  pending_sync_t *p = calloc(1, sizeof *p);
  if (p == NULL || (p->timer = evtimer_new(api->base, on_sync_timeout, p)) == NULL) {
    free(p);
    reply_error(server, req, 500, "Internal Server Error", "M_UNKNOWN", "out of memory");
    return;
  }
  p->api = api;
  p->server = server;
  p->req = req;
  p->evcon = evhttp_request_get_connection(req);
  p->user = user;
  p->affects_presence = set_presence == NULL || strcmp(set_presence, "offline") != 0;
  snprintf(p->context, sizeof p->context, "%s", wlog_context_current());
  p->next = api->pending;
  api->pending = p;
  evhttp_connection_set_closecb(p->evcon, on_sync_conn_closed, p);
  if (p->affects_presence && api->presence != NULL)
    presence_sync_begin(api->presence, user->user_id);
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  evtimer_add(p->timer, &tv);
}

/* "/_matrix/client/r0/" or ".../v3/": the rest of the path, or NULL. */
static const char *client_path(const char *path) {
  static const char *const prefixes[] = {"/_matrix/client/r0/", "/_matrix/client/v3/"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0) return path + strlen(prefixes[i]);
  return NULL;
}

bool client_api_route(void *arg, http_server_t *server, struct evhttp_request *req,
                      const char *path) {
  client_api_t *api = arg;
  const char *rest = client_path(path);
  if (rest == NULL || (strcmp(rest, "sync") != 0 && strcmp(rest, "account/whoami") != 0))
    return false;
  enum evhttp_cmd_type method = evhttp_request_get_command(req);
  if (method != EVHTTP_REQ_GET) {
    reply_error(server, req, 405, "Method Not Allowed", "M_UNRECOGNIZED", "Unrecognized request");
    return true;
  }
  struct evkeyvalq query; /* initialised by the parse, whatever its result */
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  const char *query_text = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
  if (evhttp_parse_query_str(query_text != NULL ? query_text : "", &query) != 0) {
    evhttp_clear_headers(&query);
    reply_error(server, req, 400, "Bad Request", "M_INVALID_PARAM", "malformed query string");
    return true;
  }
  const client_user_t *user = authenticate(api, server, req, &query);
  if (user != NULL) {
    report_ip(api, req, user);
    if (strcmp(rest, "sync") == 0)
      start_sync(api, server, req, &query, user);
    else
      answer_whoami(server, req, user);
  }
  evhttp_clear_headers(&query);
  return true;
}
