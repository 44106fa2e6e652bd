#include "fake_remote.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/http.h>

#include "rc_clock.h"

/* An answer waiting for its delay. */
typedef struct held_reply {
  fake_remote_t *remote;
  struct evhttp_request *req;
  size_t index; /* of the request record */
  int status;
  struct event *timer;
  struct held_reply *next;
} held_reply_t;

struct fake_remote {
  struct event_base *base;
  char *name;
  char url[64];
  int port;
  struct evhttp *http; /* NULL while refusing */
  int status;
  int delay_ms;
  fake_remote_request_t *requests;
  size_t count;
  size_t cap;
  held_reply_t *held;
};

static int bind_listener(fake_remote_t *remote, int port, rc_error_t *err) {
  remote->http = evhttp_new(remote->base);
  if (remote->http == NULL) return rc_error_set(err, "fake remote %s: out of memory", remote->name);
  struct evhttp_bound_socket *bound =
      evhttp_bind_socket_with_handle(remote->http, "127.0.0.1", (ev_uint16_t)port);
  if (bound == NULL) {
    evhttp_free(remote->http);
    remote->http = NULL;
    return rc_error_set(err, "fake remote %s: cannot listen on 127.0.0.1:%d", remote->name, port);
  }
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&addr, &len) != 0) {
    evhttp_free(remote->http);
    remote->http = NULL;
    return rc_error_set(err, "fake remote %s: getsockname failed", remote->name);
  }
  remote->port = ntohs(addr.sin_port);
  return 0;
}

static void send_reply(struct evhttp_request *req, int status) {
  struct evbuffer *body = evbuffer_new();
  if (body != NULL)
    evbuffer_add_printf(body, "%s",
                        status == 200 ? "{\"pdus\":{}}" : "{\"errcode\":\"M_UNKNOWN\"}");
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", body);
  if (body != NULL) evbuffer_free(body);
}

static void held_unlink(held_reply_t *held) {
  for (held_reply_t **p = &held->remote->held; *p != NULL; p = &(*p)->next) {
    if (*p != held) continue;
    *p = held->next;
    break;
  }
  event_free(held->timer);
  free(held);
}

static void on_held_due(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  held_reply_t *held = arg;
  held->remote->requests[held->index].status = held->status;
  send_reply(held->req, held->status);
  held_unlink(held);
}

/* Drops pending answers (their requests die with the listener). */
static void held_clear(fake_remote_t *remote) {
  while (remote->held != NULL) held_unlink(remote->held);
}

static fake_remote_request_t *record_request(fake_remote_t *remote, struct evhttp_request *req) {
  if (remote->count == remote->cap) {
    size_t cap = remote->cap == 0 ? 16 : remote->cap * 2;
    fake_remote_request_t *grown = realloc(remote->requests, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    remote->requests = grown;
    remote->cap = cap;
  }
  fake_remote_request_t *r = &remote->requests[remote->count];
  memset(r, 0, sizeof *r);
  r->mono_ms = rc_clock_mono_ms();
  static const struct {
    enum evhttp_cmd_type cmd;
    const char *name;
  } METHODS[] = {{EVHTTP_REQ_GET, "GET"},    {EVHTTP_REQ_POST, "POST"},
                 {EVHTTP_REQ_PUT, "PUT"},    {EVHTTP_REQ_DELETE, "DELETE"},
                 {EVHTTP_REQ_HEAD, "HEAD"},  {EVHTTP_REQ_OPTIONS, "OPTIONS"},
                 {EVHTTP_REQ_PATCH, "PATCH"}};
  snprintf(r->method, sizeof r->method, "OTHER");
  for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++)
    if (evhttp_request_get_command(req) == METHODS[i].cmd)
      snprintf(r->method, sizeof r->method, "%s", METHODS[i].name);
  const char *uri = evhttp_request_get_uri(req);
  r->path = strdup(uri != NULL ? uri : "");
  if (r->path == NULL) return NULL;
  size_t prefix = strlen(FAKE_REMOTE_SEND_PATH);
  if (strncmp(r->path, FAKE_REMOTE_SEND_PATH, prefix) == 0 && r->path[prefix] != '\0')
    r->txn_id = strndup(r->path + prefix, strcspn(r->path + prefix, "/?"));
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  if (len > 0) r->body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
  remote->count++;
  return r;
}

static void on_request(struct evhttp_request *req, void *arg) {
  fake_remote_t *remote = arg;
  fake_remote_request_t *r = record_request(remote, req);
  if (r == NULL) {
    send_reply(req, 500);
    return;
  }
  held_reply_t *held = remote->delay_ms > 0 ? calloc(1, sizeof *held) : NULL;
  if (held != NULL) {
    held->remote = remote;
    held->req = req;
    held->index = remote->count - 1;
    held->status = remote->status;
    held->timer = evtimer_new(remote->base, on_held_due, held);
    struct timeval tv = {.tv_sec = remote->delay_ms / 1000,
                         .tv_usec = (suseconds_t)(remote->delay_ms % 1000) * 1000};
    if (held->timer != NULL && evtimer_add(held->timer, &tv) == 0) {
      held->next = remote->held;
      remote->held = held;
      return;
    }
    if (held->timer != NULL) event_free(held->timer);
    free(held);
  }
  r->status = remote->status;
  send_reply(req, remote->status);
}

fake_remote_t *fake_remote_create(struct event_base *base, const char *name, rc_error_t *err) {
  fake_remote_t *remote = calloc(1, sizeof *remote);
  if (remote == NULL || (remote->name = strdup(name)) == NULL) {
    free(remote);
    rc_error_set(err, "fake remote %s: out of memory", name);
    return NULL;
  }
  remote->base = base;
  remote->status = 200;
  if (bind_listener(remote, 0, err) != 0) {
    fake_remote_destroy(remote);
    return NULL;
  }
  evhttp_set_gencb(remote->http, on_request, remote);
  snprintf(remote->url, sizeof remote->url, "http://127.0.0.1:%d", remote->port);
  return remote;
}

void fake_remote_destroy(fake_remote_t *remote) {
  if (remote == NULL) return;
  held_clear(remote);
  if (remote->http != NULL) evhttp_free(remote->http);
  for (size_t i = 0; i < remote->count; i++) {
    free(remote->requests[i].path);
    free(remote->requests[i].txn_id);
    json_decref(remote->requests[i].body);
  }
  free(remote->requests);
  free(remote->name);
  free(remote);
}

const char *fake_remote_name(const fake_remote_t *remote) {
  return remote->name;
}

const char *fake_remote_url(const fake_remote_t *remote) {
  return remote->url;
}

int fake_remote_port(const fake_remote_t *remote) {
  return remote->port;
}

void fake_remote_set_reply(fake_remote_t *remote, int status, int delay_ms) {
  remote->status = status;
  remote->delay_ms = delay_ms > 0 ? delay_ms : 0;
}

int fake_remote_set_refusing(fake_remote_t *remote, bool refusing, rc_error_t *err) {
  if (refusing) {
    held_clear(remote);
    if (remote->http != NULL) evhttp_free(remote->http);
    remote->http = NULL;
    return 0;
  }
  if (remote->http != NULL) return 0;
  if (bind_listener(remote, remote->port, err) != 0) return -1;
  evhttp_set_gencb(remote->http, on_request, remote);
  return 0;
}

size_t fake_remote_request_count(const fake_remote_t *remote) {
  return remote->count;
}

const fake_remote_request_t *fake_remote_request(const fake_remote_t *remote, size_t i) {
  return i < remote->count ? &remote->requests[i] : NULL;
}

/* The push list of a request's m.presence EDUs, one EDU at a time. */
static json_t *presence_push(const fake_remote_request_t *r, size_t edu) {
  json_t *e = json_array_get(json_object_get(r->body, "edus"), edu);
  const char *type = json_string_value(json_object_get(e, "edu_type"));
  if (type == NULL || strcmp(type, "m.presence") != 0) return NULL;
  return json_object_get(json_object_get(e, "content"), "push");
}

size_t fake_remote_updates(const fake_remote_t *remote, const char *user, fake_remote_update_t *out,
                           size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < remote->count; i++) {
    const fake_remote_request_t *r = &remote->requests[i];
    if (r->txn_id == NULL) continue;
    size_t edus = json_array_size(json_object_get(r->body, "edus"));
    for (size_t e = 0; e < edus; e++) {
      json_t *push = presence_push(r, e);
      for (size_t k = 0; k < json_array_size(push); k++) {
        json_t *entry = json_array_get(push, k);
        const char *id = json_string_value(json_object_get(entry, "user_id"));
        if (id == NULL || (user != NULL && strcmp(id, user) != 0)) continue;
        if (out != NULL && n < cap)
          out[n] = (fake_remote_update_t){
              .user_id = id,
              .presence = json_string_value(json_object_get(entry, "presence")),
              .request = i,
              .mono_ms = r->mono_ms};
        n++;
      }
    }
  }
  return n;
}

bool fake_remote_form_problem(const fake_remote_t *remote, const char *origin, char *buf,
                              size_t cap) {
  for (size_t i = 0; i < remote->count; i++) {
    const fake_remote_request_t *r = &remote->requests[i];
    const char *what = NULL;
    if (strcmp(r->method, "PUT") != 0 || r->txn_id == NULL || r->txn_id[0] == '\0')
      what = "is not PUT " FAKE_REMOTE_SEND_PATH "<txn_id>";
    else if (!json_is_object(r->body))
      what = "has no JSON object body";
    else if (!json_is_string(json_object_get(r->body, "origin")) ||
             strcmp(json_string_value(json_object_get(r->body, "origin")), origin) != 0)
      what = "has an origin other than the SUT's server name";
    else if (!json_is_array(json_object_get(r->body, "edus")))
      what = "has no edus list";
    size_t edus = json_array_size(json_object_get(r->body, "edus"));
    for (size_t e = 0; what == NULL && e < edus; e++) {
      json_t *push = presence_push(r, e);
      if (!json_is_array(push)) {
        what = "carries an EDU that is not m.presence with a content.push list";
        break;
      }
      for (size_t k = 0; what == NULL && k < json_array_size(push); k++) {
        json_t *entry = json_array_get(push, k);
        if (!json_is_string(json_object_get(entry, "user_id")) ||
            !json_is_string(json_object_get(entry, "presence")))
          what = "has a push entry without user_id or presence";
      }
    }
    if (what == NULL) continue;
    char *text = r->body != NULL ? json_dumps(r->body, JSON_COMPACT) : NULL;
    snprintf(buf, cap, "%s request %zu (%s %s) %s: %.300s", remote->name, i, r->method, r->path,
             what, text != NULL ? text : "(no JSON body)");
    free(text);
    return true;
  }
  return false;
}

const char *fake_remote_describe(const fake_remote_t *remote, size_t max_updates, char *buf,
                                 size_t cap) {
  size_t total = fake_remote_updates(remote, NULL, NULL, 0);
  fake_remote_update_t shown[32];
  size_t n = fake_remote_updates(remote, NULL, shown, max_updates < 32 ? max_updates : 32);
  if (n > max_updates) n = max_updates;
  if (n > 32) n = 32;
  int used = snprintf(buf, cap, "%s: %zu request%s, %zu update%s", remote->name, remote->count,
                      remote->count == 1 ? "" : "s", total, total == 1 ? "" : "s");
  for (size_t i = 0; i < n && used > 0 && (size_t)used < cap; i++)
    used += snprintf(buf + used, cap - (size_t)used, "%s%s %s", i == 0 ? " (" : ", ",
                     shown[i].user_id, shown[i].presence ? shown[i].presence : "(no presence)");
  if (n > 0 && used > 0 && (size_t)used < cap)
    snprintf(buf + used, cap - (size_t)used, "%s)", total > n ? ", ..." : "");
  return buf;
}
