#include "mock_redis.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One message this mock published and whose echo has not come back yet. */
typedef struct pending_echo {
  char *channel;
  char *line;
  size_t len;
  struct pending_echo *next;
} pending_echo_t;

struct mock_redis {
  struct event_base *base;
  redisAsyncContext *sub;
  redisAsyncContext *pub;
  char *main_channel;
  char *user_ip_channel;
  int subscribed; /* channels acknowledged */
  bool sub_up, pub_up;
  char problem[256];
  mock_redis_line_fn on_line;
  void *arg;
  pending_echo_t *echo_head, *echo_tail;
  char *host;
  int port;
};

static void set_problem(mock_redis_t *r, const char *what, const char *detail) {
  if (r->problem[0] == '\0') snprintf(r->problem, sizeof r->problem, "%s: %s", what, detail);
}

/* Our own publish coming back: drop it. */
static bool take_echo(mock_redis_t *r, const char *channel, const char *line, size_t len) {
  pending_echo_t *e = r->echo_head;
  for (pending_echo_t *prev = NULL; e != NULL; prev = e, e = e->next) {
    if (strcmp(e->channel, channel) != 0) continue;
    /* Echoes come back in publish order per channel, so only the oldest one of this
     * channel can match. */
    if (e->len != len || memcmp(e->line, line, len) != 0) return false;
    if (prev == NULL) r->echo_head = e->next;
    else prev->next = e->next;
    if (r->echo_tail == e) r->echo_tail = prev;
    free(e->channel);
    free(e->line);
    free(e);
    return true;
  }
  return false;
}

static void on_message(redisAsyncContext *ac, void *reply_ptr, void *privdata) {
  mock_redis_t *r = privdata;
  redisReply *reply = reply_ptr;
  (void)ac;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  redisReply *kind = reply->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (strcmp(kind->str, "subscribe") == 0) {
    r->subscribed++;
    return;
  }
  if (strcmp(kind->str, "message") != 0) return;
  redisReply *channel = reply->element[1], *payload = reply->element[2];
  if (channel->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING) return;
  if (take_echo(r, channel->str, payload->str, payload->len)) return;
  r->on_line(r->arg, channel->str, payload->str, payload->len);
}

static void on_sub_connect(const redisAsyncContext *ac, int status) {
  mock_redis_t *r = ac->data;
  if (status != REDIS_OK) {
    set_problem(r, "cannot connect the subscriber to redis", ac->errstr);
    r->sub = NULL; /* hiredis frees a context whose connect failed */
    return;
  }
  r->sub_up = true;
}

static void on_pub_connect(const redisAsyncContext *ac, int status) {
  mock_redis_t *r = ac->data;
  if (status != REDIS_OK) {
    set_problem(r, "cannot connect the publisher to redis", ac->errstr);
    r->pub = NULL;
    return;
  }
  r->pub_up = true;
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status) {
  mock_redis_t *r = ac->data;
  r->sub_up = false;
  r->sub = NULL;
  if (status != REDIS_OK) set_problem(r, "lost the subscriber connection to redis", ac->errstr);
}

static void on_pub_disconnect(const redisAsyncContext *ac, int status) {
  mock_redis_t *r = ac->data;
  r->pub_up = false;
  r->pub = NULL;
  if (status != REDIS_OK) set_problem(r, "lost the publisher connection to redis", ac->errstr);
}

/* Names let observers (and tests) tell the mock's own connections from the SUT's. */
#define MOCK_SUB_NAME "replcheck-mock-sub"
#define MOCK_PUB_NAME "replcheck-mock-pub"

static void subscribe(mock_redis_t *r) {
  /* Commands queue until the connection is up. */
  redisAsyncCommand(r->sub, NULL, NULL, "CLIENT SETNAME " MOCK_SUB_NAME);
  redisAsyncCommand(r->pub, NULL, NULL, "CLIENT SETNAME " MOCK_PUB_NAME);
  redisAsyncCommand(r->sub, on_message, r, "SUBSCRIBE %s %s", r->main_channel,
                    r->user_ip_channel);
}

static redisAsyncContext *open_context(mock_redis_t *r, const char *host, int port,
                                       redisConnectCallback *on_connect,
                                       redisDisconnectCallback *on_disconnect, rc_error_t *err) {
  redisAsyncContext *ac = redisAsyncConnect(host, port);
  if (ac == NULL || ac->err) {
    rc_error_set(err, "mock homeserver: cannot connect to redis at %s:%d: %s", host, port,
                 ac ? ac->errstr : "out of memory");
    if (ac != NULL) redisAsyncFree(ac);
    return NULL;
  }
  ac->data = r;
  redisLibeventAttach(ac, r->base);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return ac;
}

mock_redis_t *mock_redis_create(struct event_base *base, const char *host, int port,
                                const char *server_name, mock_redis_line_fn on_line, void *arg,
                                rc_error_t *err) {
  mock_redis_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    rc_error_set(err, "mock homeserver: out of memory");
    return NULL;
  }
  r->base = base;
  r->on_line = on_line;
  r->arg = arg;
  r->main_channel = strdup(server_name);
  if (asprintf(&r->user_ip_channel, "%s/USER_IP", server_name) < 0) r->user_ip_channel = NULL;
  if (r->main_channel == NULL || r->user_ip_channel == NULL) {
    rc_error_set(err, "mock homeserver: out of memory");
    mock_redis_destroy(r);
    return NULL;
  }
  r->sub = open_context(r, host, port, on_sub_connect, on_sub_disconnect, err);
  if (r->sub != NULL) r->pub = open_context(r, host, port, on_pub_connect, on_pub_disconnect, err);
  r->host = host != NULL ? strdup(host) : NULL;
  r->port = port;
  if (r->sub == NULL || r->pub == NULL) {
    mock_redis_destroy(r);
    return NULL;
  }
  subscribe(r);
  return r;
}

static void close_contexts(mock_redis_t *r);

static void free_echoes(mock_redis_t *r) {
  while (r->echo_head != NULL) {
    pending_echo_t *e = r->echo_head;
    r->echo_head = e->next;
    free(e->channel);
    free(e->line);
    free(e);
  }
  r->echo_tail = NULL;
}

void mock_redis_destroy(mock_redis_t *r) {
  if (r == NULL) return;
  close_contexts(r);
  free_echoes(r);
  free(r->main_channel);
  free(r->user_ip_channel);
  free(r->host);
  free(r);
}

static void close_contexts(mock_redis_t *r) {
  redisAsyncContext *contexts[2] = {r->sub, r->pub};
  r->sub = r->pub = NULL;
  for (int i = 0; i < 2; i++) {
    if (contexts[i] == NULL) continue;
    contexts[i]->onDisconnect = NULL;
    redisAsyncFree(contexts[i]);
  }
  r->sub_up = r->pub_up = false;
}

int mock_redis_reconnect(mock_redis_t *r, rc_error_t *err) {
  close_contexts(r);
  free_echoes(r);
  r->subscribed = 0;
  r->problem[0] = '\0';
  r->sub = open_context(r, r->host, r->port, on_sub_connect, on_sub_disconnect, err);
  if (r->sub == NULL) return -1;
  r->pub = open_context(r, r->host, r->port, on_pub_connect, on_pub_disconnect, err);
  if (r->pub == NULL) return -1;
  subscribe(r);
  return 0;
}

bool mock_redis_ready(const mock_redis_t *r) {
  return r->sub_up && r->pub_up && r->subscribed >= 2;
}

const char *mock_redis_problem(const mock_redis_t *r) { return r->problem; }

int mock_redis_publish(mock_redis_t *r, bool user_ip_channel, const char *line, size_t len) {
  if (r->pub == NULL) return -1;
  const char *channel = user_ip_channel ? r->user_ip_channel : r->main_channel;
  pending_echo_t *e = calloc(1, sizeof *e);
  if (e == NULL) return -1;
  e->channel = strdup(channel);
  e->line = malloc(len + 1);
  if (e->channel == NULL || e->line == NULL) {
    free(e->channel);
    free(e->line);
    free(e);
    return -1;
  }
  memcpy(e->line, line, len);
  e->line[len] = '\0';
  e->len = len;
  if (r->echo_tail != NULL) r->echo_tail->next = e;
  else r->echo_head = e;
  r->echo_tail = e;
  if (redisAsyncCommand(r->pub, NULL, NULL, "PUBLISH %s %b", channel, line, len) != REDIS_OK)
    return -1;
  return 0;
}
