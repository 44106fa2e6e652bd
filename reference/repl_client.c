#include "repl_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/bufferevent.h>

#include "backoff.h"
#include "rc_clock.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.replication.tcp.client"

struct repl_client {
  struct event_base *base;
  repl_client_config_t config;
  stream_state_t *streams;
  stream_handler_t *handler;
  backoff_t backoff;

  struct addrinfo *addresses;    /* of the attempt in progress */
  struct addrinfo *next_address; /* the one to try after the current fails */
  struct bufferevent *connecting;
  repl_conn_t *conn;
  struct event *retry_timer;

  /* BUG_QUEUE_BEFORE_OPENING: lines produced while disconnected, formatted, in order. */
  char **queued;
  size_t queued_count;

  bool stopping;
  bool stopped_called;
  struct event *grace_timer;
  repl_client_stopped_fn stopped;
  void *stopped_arg;
};

static void client_try_next_address(repl_client_t *client);

static uint64_t client_seed(void) {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = (uint64_t)rc_clock_mono_ns() ^ ((uint64_t)getpid() << 32);
  return seed;
}

static void client_free_addresses(repl_client_t *client) {
  if (client->addresses != NULL) freeaddrinfo(client->addresses);
  client->addresses = NULL;
  client->next_address = NULL;
}

static void client_finish_stop(repl_client_t *client) {
  if (client->stopped_called) return;
  client->stopped_called = true;
  if (client->grace_timer != NULL) evtimer_del(client->grace_timer);
  if (client->stopped != NULL) client->stopped(client->stopped_arg);
}

static void client_retry_cb(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  repl_client_t *client = arg;
  if (!client->stopping) repl_client_start(client);
}

/* After any failure or loss: wait, then connect again (never once shutting down). */
static void client_schedule_retry(repl_client_t *client) {
  if (client->stopping) return;
  double delay_ms = backoff_next_ms(&client->backoff);
  int64_t delay_us = (int64_t)(delay_ms * 1000.0);
  struct timeval tv = {.tv_sec = delay_us / 1000000, .tv_usec = delay_us % 1000000};
  WLOG_DEBUG("Reconnecting to replication in %.3f s", delay_ms / 1000.0);
  evtimer_add(client->retry_timer, &tv);
}

static void client_conn_closed(void *arg, repl_conn_t *conn, const char *reason) {
  repl_client_t *client = arg;
  WLOG_ERROR("Lost replication conn: %s", reason);
  repl_conn_destroy(conn);
  client->conn = NULL;
  stream_handler_reset_connection(client->handler);
  if (client->stopping)
    client_finish_stop(client);
  else
    client_schedule_retry(client);
}

static void client_drop_queue(repl_client_t *client) {
  for (size_t i = 0; i < client->queued_count; i++) free(client->queued[i]);
  free(client->queued);
  client->queued = NULL;
  client->queued_count = 0;
}

/* BUG_QUEUE_BEFORE_OPENING: the queued lines go out first, ahead of NAME. */
static void client_write_queue(repl_client_t *client, struct bufferevent *bev) {
  for (size_t i = 0; i < client->queued_count; i++) {
    WLOG_INFO("Sending queued command: %s", client->queued[i]);
    bufferevent_write(bev, client->queued[i], strlen(client->queued[i]));
    bufferevent_write(bev, "\n", 1);
  }
  client_drop_queue(client);
}

static void client_connected(repl_client_t *client, struct bufferevent *bev) {
  WLOG_INFO("Connected to replication: %s:%s", client->config.host, client->config.port);
  client_write_queue(client, bev);
  client_free_addresses(client);
  backoff_reset(&client->backoff);
  /* Opening lines and PINGs are tiny; do not let Nagle hold them back. */
  int one = 1;
  setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  stream_handler_reset_connection(client->handler);
  rc_error_t err;
  client->conn = repl_conn_create(client->base, bev, &client->config.conn, client->streams,
                                  client->handler, client_conn_closed, client, &err);
  if (client->conn == NULL) {
    WLOG_ERROR("Lost replication conn: %s", err.msg);
    client_schedule_retry(client);
  }
}

static void client_connect_event_cb(struct bufferevent *bev, short what, void *arg) {
  wlog_callback_begin();
  repl_client_t *client = arg;
  client->connecting = NULL;
  if (what & BEV_EVENT_CONNECTED) {
    client_connected(client, bev);
    return;
  }
  int e = EVUTIL_SOCKET_ERROR();
  bufferevent_free(bev);
  if (client->next_address != NULL) {
    client_try_next_address(client);
    return;
  }
  WLOG_ERROR("Failed to connect to replication: %s:%s: %s", client->config.host,
             client->config.port, evutil_socket_error_to_string(e));
  client_free_addresses(client);
  client_schedule_retry(client);
}

static void client_try_next_address(repl_client_t *client) {
  while (client->next_address != NULL) {
    struct addrinfo *ai = client->next_address;
    client->next_address = ai->ai_next;
    struct bufferevent *bev = bufferevent_socket_new(client->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) continue;
    bufferevent_setcb(bev, NULL, NULL, client_connect_event_cb, client);
    if (bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen) == 0) {
      client->connecting = bev;
      return;
    }
    bufferevent_free(bev);
  }
  WLOG_ERROR("Failed to connect to replication: %s:%s: no address accepted a connection",
             client->config.host, client->config.port);
  client_free_addresses(client);
  client_schedule_retry(client);
}

repl_client_t *repl_client_create(struct event_base *base, const repl_client_config_t *config,
                                  stream_state_t *streams, stream_handler_t *handler,
                                  rc_error_t *err) {
  if (config->reconnect_initial_ms <= 0 ||
      config->reconnect_max_ms < config->reconnect_initial_ms) {
    rc_error_set(err, "reconnect delays: need 0 < initial (%lld ms) <= max (%lld ms)",
                 (long long)config->reconnect_initial_ms, (long long)config->reconnect_max_ms);
    return NULL;
  }
  repl_client_t *client = calloc(1, sizeof *client);
  if (client == NULL) {
    rc_error_set(err, "replication client: out of memory");
    return NULL;
  }
  client->base = base;
  client->config = *config;
  client->streams = streams;
  client->handler = handler;
  backoff_init(&client->backoff, (double)config->reconnect_initial_ms,
               (double)config->reconnect_max_ms, client_seed());
  client->retry_timer = evtimer_new(base, client_retry_cb, client);
  if (client->retry_timer == NULL) {
    repl_client_destroy(client);
    rc_error_set(err, "replication client: cannot create the retry timer");
    return NULL;
  }
  return client;
}

void repl_client_send(repl_client_t *client, const proto_command_t *cmd) {
  if (client->conn != NULL) {
    repl_conn_send(client->conn, cmd);
    return;
  }
  if (bugs_has(client->config.conn.bugs, BUG_QUEUE_BEFORE_OPENING)) {
    char line[PROTO_MAX_LINE + 1];
    proto_error_t perr;
    char **grown = realloc(client->queued, (client->queued_count + 1) * sizeof *grown);
    if (grown != NULL) client->queued = grown;
    if (grown != NULL &&
        proto_format_command(client->config.conn.dialect, cmd, line, sizeof line, &perr) >= 0 &&
        (client->queued[client->queued_count] = strdup(line)) != NULL) {
      WLOG_WARNING("Queuing command as not connected: %s", line);
      client->queued_count++;
      return;
    }
  }
  WLOG_WARNING("Dropping command as not connected: %s", proto_command_name(cmd->kind));
}

void repl_client_start(repl_client_t *client) {
  if (client->stopping || client->conn != NULL || client->connecting != NULL) return;
  WLOG_INFO("Connecting to replication: %s:%s", client->config.host, client->config.port);
  client_free_addresses(client);
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  int rc = getaddrinfo(client->config.host, client->config.port, &hints, &client->addresses);
  if (rc != 0) {
    WLOG_ERROR("Failed to connect to replication: %s:%s: %s", client->config.host,
               client->config.port, gai_strerror(rc));
    client->addresses = NULL;
    client_schedule_retry(client);
    return;
  }
  client->next_address = client->addresses;
  client_try_next_address(client);
}

static void client_grace_cb(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  repl_client_t *client = arg;
  if (client->conn != NULL) {
    WLOG_WARNING("Replication connection did not close within the shutdown grace period");
    repl_conn_abort(client->conn, "shutting down (grace period over)");
  }
}

void repl_client_shutdown(repl_client_t *client, int64_t grace_ms, repl_client_stopped_fn stopped,
                          void *arg) {
  if (client->stopping) {
    /* Asked again: stop waiting for the flush. */
    if (client->conn != NULL) repl_conn_abort(client->conn, "shutting down");
    return;
  }
  client->stopping = true;
  client->stopped = stopped;
  client->stopped_arg = arg;
  evtimer_del(client->retry_timer);
  if (client->connecting != NULL) {
    bufferevent_free(client->connecting);
    client->connecting = NULL;
  }
  client_free_addresses(client);
  if (client->conn == NULL) {
    client_finish_stop(client);
    return;
  }
  client->grace_timer = evtimer_new(client->base, client_grace_cb, client);
  if (client->grace_timer != NULL) {
    struct timeval tv = {.tv_sec = grace_ms / 1000, .tv_usec = (grace_ms % 1000) * 1000};
    evtimer_add(client->grace_timer, &tv);
  }
  repl_conn_close(client->conn, "shutting down");
}

void repl_client_destroy(repl_client_t *client) {
  if (client == NULL) return;
  repl_conn_destroy(client->conn);
  if (client->connecting != NULL) bufferevent_free(client->connecting);
  client_free_addresses(client);
  if (client->retry_timer != NULL) event_free(client->retry_timer);
  if (client->grace_timer != NULL) event_free(client->grace_timer);
  client_drop_queue(client);
  free(client);
}
