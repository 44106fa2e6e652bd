#include "redis_transport.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "proto.h"
#include "redis_client.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.replication.tcp.redis"

/* Synapse processes every subscribed message in this one log context. */
#define REDIS_HANDLER_CONTEXT "replication_command_handler"
/* Bound on an attempt to reach Redis (hiredis' async connect has no timeout). */
#define REDIS_CONNECT_TIMEOUT_MS 10000
/* Commands kept while the publisher is down; Synapse's protocol gives up at this many
 * pending lines too (max_line_buffer, spec §3.3). */
#define REDIS_PENDING_MAX 10000

typedef struct pending_line {
  char *line;
  bool user_ip; /* goes to the USER_IP channel */
} pending_line_t;

struct redis_transport {
  redis_transport_config_t config;
  stream_state_t *streams;
  stream_handler_t *handler;
  redis_link_t *subscriber;
  redis_link_t *publisher;
  bool subscribed; /* the current subscription has been acknowledged */

  char user_ip_channel[512]; /* "<channel>/USER_IP" (RE-07) */
  pending_line_t *pending;   /* formatted lines waiting for the publisher */
  size_t pending_count;
  size_t pending_cap;

  bool shutting_down;
  int links_stopped;
  bool stopped_called;
  redis_transport_stopped_fn stopped;
  void *stopped_arg;
};

/* ---- publishing ----------------------------------------------------------------- */

static void on_published(redisAsyncContext *ac, void *reply, void *privdata) {
  wlog_callback_begin();
  (void)ac;
  (void)privdata;
  redisReply *r = reply;
  if (r == NULL)
    WLOG_WARNING("A PUBLISH was not confirmed: the redis connection was lost");
  else if (r->type == REDIS_REPLY_ERROR)
    WLOG_WARNING("PUBLISH failed: %s", r->str);
}

static void publish_now(redis_transport_t *t, redisAsyncContext *ac, const char *line,
                        bool user_ip) {
  const char *channel = user_ip ? t->user_ip_channel : t->config.channel;
  if (redisAsyncCommand(ac, on_published, t, "PUBLISH %b %b", channel, strlen(channel), line,
                        strlen(line)) != REDIS_OK)
    WLOG_WARNING("Failed to publish %s: the redis connection is closing", line);
}

/* Publishes one command, or queues it until the publisher is connected. */
static void transport_publish(redis_transport_t *t, const proto_command_t *cmd) {
  char line[PROTO_MAX_LINE + 1];
  proto_error_t perr;
  if (proto_format_command(PROTO_DIALECT_MODERN, cmd, line, sizeof line, &perr) < 0) {
    WLOG_ERROR("Failed to send command %s: %s", proto_command_name(cmd->kind), perr.message);
    return;
  }
  bool user_ip = cmd->kind == PROTO_CMD_USER_IP;
  redisAsyncContext *ac = redis_link_context(t->publisher);
  if (ac != NULL && t->pending_count == 0) {
    publish_now(t, ac, line, user_ip);
    return;
  }
  if (t->pending_count == REDIS_PENDING_MAX) {
    WLOG_WARNING("Dropping command as not connected: '%s'", line);
    return;
  }
  if (t->pending_count == t->pending_cap) {
    size_t cap = t->pending_cap == 0 ? 8 : t->pending_cap * 2;
    pending_line_t *grown = realloc(t->pending, cap * sizeof *grown);
    if (grown == NULL) {
      WLOG_ERROR("Dropping command '%s': out of memory", line);
      return;
    }
    t->pending = grown;
    t->pending_cap = cap;
  }
  char *copy = strdup(line);
  if (copy == NULL) {
    WLOG_ERROR("Dropping command '%s': out of memory", line);
    return;
  }
  WLOG_INFO("Queuing command until the redis publisher is connected: '%s'", line);
  t->pending[t->pending_count++] = (pending_line_t){.line = copy, .user_ip = user_ip};
}

void redis_transport_send(redis_transport_t *transport, const proto_command_t *cmd) {
  transport_publish(transport, cmd);
}

static void pending_clear(redis_transport_t *t) {
  for (size_t i = 0; i < t->pending_count; i++) free(t->pending[i].line);
  t->pending_count = 0;
}

static void on_publisher_up(void *arg, redis_link_t *link, redisAsyncContext *ac) {
  (void)link;
  redis_transport_t *t = arg;
  for (size_t i = 0; i < t->pending_count; i++)
    publish_now(t, ac, t->pending[i].line, t->pending[i].user_ip);
  pending_clear(t);
}

static void on_publisher_down(void *arg, redis_link_t *link, const char *reason) {
  (void)arg;
  (void)link;
  (void)reason; /* logged by the link; the next up flushes what is queued */
}

/* The stream every process writes over Redis (see redis_transport.h). */
#define OWN_STREAM "caches"

/* Our POSITIONs, after our REPLICATE (RE-02) and for every REPLICATE seen (RE-04):
 * `POSITION caches <instance> N N` with N our caches writer position. */
static void announce_streams(redis_transport_t *t, const char *why) {
  int64_t position = stream_state_max_position(t->streams, OWN_STREAM);
  if (position < 0) position = 0;
  WLOG_DEBUG("Announcing our position of stream %s: %" PRId64 " (%s)", OWN_STREAM, position, why);
  proto_command_t cmd = {.kind = PROTO_CMD_POSITION,
                         .stream = proto_slice_cstr(OWN_STREAM),
                         .instance = proto_slice_cstr(t->config.instance_name),
                         .prev_token = position,
                         .new_token = position};
  transport_publish(t, &cmd);
}

/* ---- the subscription ------------------------------------------------------------ */

static void transport_on_line(redis_transport_t *t, const char *text, size_t len) {
  if (proto_line_is_blank(text, len)) {
    WLOG_DEBUG("Ignoring a blank replication message");
    return;
  }
  proto_command_t cmd;
  proto_error_t perr;
  if (proto_parse_line(PROTO_DIALECT_MODERN, PROTO_SENDER_ANY, text, len, &cmd, &perr) !=
      PROTO_OK) {
    char quoted[1024];
    WLOG_ERROR("Failed to parse replication line: %s: %s",
               wlog_repr(text, len, quoted, sizeof quoted), perr.message);
    return;
  }
  switch (cmd.kind) {
    case PROTO_CMD_RDATA:
    case PROTO_CMD_POSITION:
      /* Modern: the stream handler catches and logs its own failures. */
      stream_handler_submit(t->handler, &cmd, NULL);
      break;
    case PROTO_CMD_REPLICATE:
      /* Anyone's, our own echo included (RE-04). */
      if (bugs_has(t->config.bugs, BUG_REDIS_REPLICATE_UNANSWERED))
        WLOG_DEBUG("Received REPLICATE; not answering it");
      else
        announce_streams(t, "answering REPLICATE");
      break;
    case PROTO_CMD_NAME:
    case PROTO_CMD_SERVER:
    case PROTO_CMD_PING:
    case PROTO_CMD_ERROR: {
      char quoted[1024];
      WLOG_WARNING("Unhandled command: %s", wlog_repr(text, len, quoted, sizeof quoted));
      break;
    }
    default:
      /* USER_SYNC, USER_IP, FEDERATION_ACK, ...: for other processes (RE-05). */
      WLOG_DEBUG("Received %s; nothing to do on this worker", proto_command_name(cmd.kind));
      break;
  }
}

static void on_subscription(redisAsyncContext *ac, void *reply, void *privdata) {
  wlog_callback_begin();
  (void)ac;
  redis_transport_t *t = privdata;
  redisReply *r = reply;
  if (r == NULL) return; /* the subscriber is going away: on_subscriber_down follows */
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
      r->element[0]->type != REDIS_REPLY_STRING) {
    WLOG_WARNING("Unexpected reply on the redis subscription (type %d)", r->type);
    return;
  }
  const char *kind = r->element[0]->str;
  if (strcmp(kind, "subscribe") == 0) {
    /* A new subscription: the "connection" of the stream rules (RC-06, RE-09). */
    t->subscribed = true;
    stream_handler_reset_connection(t->handler);
    if (t->config.on_subscribed != NULL) t->config.on_subscribed(t->config.on_subscribed_arg);
    WLOG_INFO("Successfully subscribed to redis stream, sending REPLICATE command");
    proto_command_t replicate = {.kind = PROTO_CMD_REPLICATE, .trailing_space = true};
    transport_publish(t, &replicate);
    announce_streams(t, "after subscribing");
  } else if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
    wlog_context_enter(REDIS_HANDLER_CONTEXT);
    transport_on_line(t, r->element[2]->str, r->element[2]->len);
    wlog_callback_end();
  }
}

static void on_subscriber_up(void *arg, redis_link_t *link, redisAsyncContext *ac) {
  (void)link;
  redis_transport_t *t = arg;
  WLOG_INFO("Sending redis SUBSCRIBE for %s", t->config.channel);
  if (redisAsyncCommand(ac, on_subscription, t, "SUBSCRIBE %b", t->config.channel,
                        strlen(t->config.channel)) != REDIS_OK)
    WLOG_ERROR("Failed to send SUBSCRIBE for %s", t->config.channel);
}

static void on_subscriber_down(void *arg, redis_link_t *link, const char *reason) {
  (void)link;
  (void)reason;
  redis_transport_t *t = arg;
  t->subscribed = false;
  /* Rows may be missed until the next subscription: every stream waits for its
   * POSITION again, and catch-ups in flight are abandoned. */
  stream_handler_reset_connection(t->handler);
}

/* ---- lifecycle --------------------------------------------------------------------- */

redis_transport_t *redis_transport_create(struct event_base *base,
                                          const redis_transport_config_t *config,
                                          stream_state_t *streams, stream_handler_t *handler,
                                          rc_error_t *err) {
  redis_transport_t *t = calloc(1, sizeof *t);
  if (t == NULL) {
    rc_error_set(err, "redis transport: out of memory");
    return NULL;
  }
  t->config = *config;
  snprintf(t->user_ip_channel, sizeof t->user_ip_channel, "%s/USER_IP", config->channel);
  t->streams = streams;
  t->handler = handler;
  redis_link_config_t link_config = {
      .host = config->host,
      .port = config->port,
      .role = "subscriber",
      .reconnect_initial_ms = config->reconnect_initial_ms,
      .reconnect_max_ms = config->subscriber_max_ms,
      .ping_interval_ms = config->ping_interval_ms,
      .connect_timeout_ms = REDIS_CONNECT_TIMEOUT_MS,
      .leak_socket_on_loss = config->leak_socket_on_loss,
  };
  link_config.ping_disabled = bugs_has(config->bugs, BUG_REDIS_SUBSCRIBER_NO_PING);
  t->subscriber =
      redis_link_create(base, &link_config, on_subscriber_up, on_subscriber_down, t, err);
  link_config.role = "publisher";
  link_config.ping_disabled = false;
  link_config.reconnect_max_ms = config->publisher_max_ms;
  t->publisher = t->subscriber == NULL ? NULL
                                       : redis_link_create(base, &link_config, on_publisher_up,
                                                           on_publisher_down, t, err);
  if (t->publisher == NULL) {
    redis_transport_destroy(t);
    return NULL;
  }
  return t;
}

void redis_transport_destroy(redis_transport_t *transport) {
  if (transport == NULL) return;
  /* Links first: their pending reply callbacks still point at the transport. */
  redis_link_destroy(transport->subscriber);
  redis_link_destroy(transport->publisher);
  pending_clear(transport);
  free(transport->pending);
  free(transport);
}

void redis_transport_start(redis_transport_t *transport) {
  redis_link_start(transport->subscriber);
  redis_link_start(transport->publisher);
}

static void on_link_stopped(void *arg) {
  redis_transport_t *t = arg;
  if (++t->links_stopped < 2 || t->stopped_called) return;
  t->stopped_called = true;
  if (t->stopped != NULL) t->stopped(t->stopped_arg);
}

void redis_transport_shutdown(redis_transport_t *transport, int64_t grace_ms,
                              redis_transport_stopped_fn stopped, void *arg) {
  if (!transport->shutting_down) {
    transport->shutting_down = true;
    transport->stopped = stopped;
    transport->stopped_arg = arg;
  }
  /* A second call reaches redis_link_stop's "close at once". */
  redis_link_stop(transport->subscriber, grace_ms, on_link_stopped, transport);
  redis_link_stop(transport->publisher, grace_ms, on_link_stopped, transport);
}
