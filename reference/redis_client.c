#include "redis_client.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/hiredis.h>

#include "backoff.h"
#include "rc_clock.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.replication.tcp.redis"

/* A PING as hiredis would format it, for writing without a reply callback. */
static const char RAW_PING[] = "*1\r\n$4\r\nPING\r\n";

struct redis_link {
  struct event_base *base;
  redis_link_config_t config;
  redis_link_up_fn up;
  redis_link_down_fn down;
  void *arg;
  backoff_t backoff;

  redisAsyncContext *ac; /* connecting or connected, else NULL */
  bool connected;
  bool ping_outstanding; /* a PING with a reply callback is unanswered */
  char drop_reason[256]; /* why we freed the context ourselves, for `down` */

  struct event *retry_timer;
  struct event *connect_timer;
  struct event *ping_timer;
  struct event *grace_timer;

  bool stopping;
  bool stopped_called;
  redis_link_stopped_fn stopped;
  void *stopped_arg;
};

static void link_connect(redis_link_t *link);

static void set_timer(struct event *timer, int64_t ms) {
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  evtimer_add(timer, &tv);
}

static void link_finish_stop(redis_link_t *link) {
  if (link->stopped_called) return;
  link->stopped_called = true;
  if (link->grace_timer != NULL) evtimer_del(link->grace_timer);
  if (link->stopped != NULL) link->stopped(link->stopped_arg);
}

static void link_schedule_retry(redis_link_t *link) {
  if (link->stopping) return;
  double delay_ms = backoff_next_ms(&link->backoff);
  WLOG_DEBUG("Reconnecting to redis (%s) in %.3f s", link->config.role, delay_ms / 1000.0);
  set_timer(link->retry_timer, (int64_t)delay_ms);
}

/* Frees the context ourselves (ping timeout, connect timeout, abort). A connected
 * context reports through on_disconnect, from inside this call. */
static void link_drop(redis_link_t *link, const char *reason) {
  redisAsyncContext *ac = link->ac;
  if (ac == NULL) return;
  snprintf(link->drop_reason, sizeof link->drop_reason, "%s", reason);
  bool was_connected = link->connected;
  redisAsyncFree(ac);
  if (!was_connected) {
    /* hiredis calls no disconnect callback for a context that never connected. */
    link->ac = NULL;
    if (link->stopping)
      link_finish_stop(link);
    else
      link_schedule_retry(link);
  }
}

static void on_pong(redisAsyncContext *ac, void *reply, void *privdata) {
  wlog_callback_begin();
  (void)ac;
  redis_link_t *link = privdata;
  redisReply *r = reply;
  if (r == NULL) return; /* the connection is going away */
  link->ping_outstanding = false;
  if (r->type == REDIS_REPLY_ERROR)
    WLOG_WARNING("Failed to send ping to a redis connection (%s): %s", link->config.role, r->str);
}

static void on_ping_timer(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  redis_link_t *link = arg;
  if (!link->connected || link->ac == NULL) return;
  redisAsyncContext *ac = link->ac;
  if (ac->c.flags & REDIS_SUBSCRIBED) {
    /* See redis_client.h: no callback can receive this reply in hiredis 0.14. */
    if (redisAppendFormattedCommand(&ac->c, RAW_PING, sizeof RAW_PING - 1) == REDIS_OK &&
        ac->ev.addWrite != NULL)
      ac->ev.addWrite(ac->ev.data);
  } else if (link->ping_outstanding) {
    char reason[128];
    snprintf(reason, sizeof reason, "no reply to PING within %" PRId64 " ms",
             link->config.ping_interval_ms);
    link_drop(link, reason); /* the link may be reconnecting now: do not re-arm */
    return;
  } else if (redisAsyncCommand(ac, on_pong, link, "PING") == REDIS_OK) {
    link->ping_outstanding = true;
  }
  set_timer(link->ping_timer, link->config.ping_interval_ms);
}

static void on_connect(const redisAsyncContext *cac, int status) {
  redis_link_t *link = cac->data;
  evtimer_del(link->connect_timer);
  if (status != REDIS_OK) {
    WLOG_ERROR("Failed to connect to redis (%s) %s:%d: %s", link->config.role, link->config.host,
               link->config.port, cac->errstr);
    link->ac = NULL; /* hiredis frees it after this callback */
    if (link->stopping)
      link_finish_stop(link);
    else
      link_schedule_retry(link);
    return;
  }
  redisAsyncContext *ac = link->ac;
  link->connected = true;
  link->ping_outstanding = false;
  link->drop_reason[0] = '\0';
  backoff_reset(&link->backoff);
  /* Finds a silently dead peer where a PING reply cannot be waited for (subscriber). */
  redisEnableKeepAlive(&ac->c);
  if (!link->config.ping_disabled) set_timer(link->ping_timer, link->config.ping_interval_ms);
  WLOG_INFO("Connected to redis (%s) %s:%d", link->config.role, link->config.host,
            link->config.port);
  link->up(link->arg, link, ac);
}

static void on_disconnect(const redisAsyncContext *cac, int status) {
  redis_link_t *link = cac->data;
  char reason[300];
  if (link->drop_reason[0] != '\0')
    snprintf(reason, sizeof reason, "%s", link->drop_reason);
  else if (status == REDIS_OK)
    snprintf(reason, sizeof reason, "connection closed");
  else
    snprintf(reason, sizeof reason, "%s", cac->errstr[0] != '\0' ? cac->errstr : "connection lost");
  link->ac = NULL; /* hiredis frees it after this callback */
  link->connected = false;
  link->ping_outstanding = false;
  evtimer_del(link->ping_timer);
  if (link->stopping) {
    WLOG_INFO("Disconnected from redis (%s)", link->config.role);
    link_finish_stop(link);
    return;
  }
  WLOG_WARNING("Lost connection to redis (%s): %s", link->config.role, reason);
  if (link->config.leak_socket_on_loss && cac->c.fd >= 0) {
    int leaked = dup(cac->c.fd); /* never closed: that is the bug */
    (void)leaked;
  }
  link->down(link->arg, link, reason);
  link_schedule_retry(link);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  redis_link_t *link = arg;
  if (link->ac == NULL || link->connected) return;
  WLOG_ERROR("Failed to connect to redis (%s) %s:%d: no connection within %" PRId64 " ms",
             link->config.role, link->config.host, link->config.port,
             link->config.connect_timeout_ms);
  link_drop(link, "connect timeout");
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  link_connect(arg);
}

static void on_grace(evutil_socket_t fd, short what, void *arg) {
  wlog_callback_begin();
  (void)fd;
  (void)what;
  redis_link_t *link = arg;
  if (link->ac == NULL) return;
  WLOG_WARNING("Redis connection (%s) did not close within the shutdown grace period",
               link->config.role);
  link_drop(link, "shutting down (grace period over)");
}

static void link_connect(redis_link_t *link) {
  if (link->stopping || link->ac != NULL) return;
  WLOG_INFO("Connecting to redis (%s) %s:%d", link->config.role, link->config.host,
            link->config.port);
  /* hiredis resolves the host with a blocking getaddrinfo; the connect is non-blocking. */
  redisAsyncContext *ac = redisAsyncConnect(link->config.host, link->config.port);
  if (ac == NULL || ac->err) {
    WLOG_ERROR("Failed to connect to redis (%s) %s:%d: %s", link->config.role, link->config.host,
               link->config.port, ac != NULL ? ac->errstr : "out of memory");
    if (ac != NULL) redisAsyncFree(ac);
    link_schedule_retry(link);
    return;
  }
  ac->data = link;
  if (redisLibeventAttach(ac, link->base) != REDIS_OK ||
      redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
      redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK) {
    WLOG_ERROR("Failed to connect to redis (%s): cannot attach to the event loop",
               link->config.role);
    redisAsyncFree(ac);
    link_schedule_retry(link);
    return;
  }
  link->ac = ac;
  link->drop_reason[0] = '\0';
  set_timer(link->connect_timer, link->config.connect_timeout_ms);
}

static uint64_t link_seed(void) {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = (uint64_t)rc_clock_mono_ns() ^ ((uint64_t)getpid() << 32);
  return seed;
}

redis_link_t *redis_link_create(struct event_base *base, const redis_link_config_t *config,
                                redis_link_up_fn up, redis_link_down_fn down, void *arg,
                                rc_error_t *err) {
  if (config->reconnect_initial_ms <= 0 ||
      config->reconnect_max_ms < config->reconnect_initial_ms || config->ping_interval_ms <= 0 ||
      config->connect_timeout_ms <= 0) {
    rc_error_set(err,
                 "redis %s: need 0 < reconnect initial (%" PRId64 " ms) <= max (%" PRId64
                 " ms), and positive ping interval and connect timeout",
                 config->role, config->reconnect_initial_ms, config->reconnect_max_ms);
    return NULL;
  }
  redis_link_t *link = calloc(1, sizeof *link);
  if (link == NULL) {
    rc_error_set(err, "redis %s: out of memory", config->role);
    return NULL;
  }
  link->base = base;
  link->config = *config;
  link->up = up;
  link->down = down;
  link->arg = arg;
  backoff_init(&link->backoff, (double)config->reconnect_initial_ms,
               (double)config->reconnect_max_ms, link_seed());
  link->retry_timer = evtimer_new(base, on_retry, link);
  link->connect_timer = evtimer_new(base, on_connect_timeout, link);
  link->ping_timer = evtimer_new(base, on_ping_timer, link);
  link->grace_timer = evtimer_new(base, on_grace, link);
  if (link->retry_timer == NULL || link->connect_timer == NULL || link->ping_timer == NULL ||
      link->grace_timer == NULL) {
    redis_link_destroy(link);
    rc_error_set(err, "redis %s: cannot create timers", config->role);
    return NULL;
  }
  return link;
}

void redis_link_start(redis_link_t *link) {
  link_connect(link);
}

redisAsyncContext *redis_link_context(const redis_link_t *link) {
  return link->connected ? link->ac : NULL;
}

void redis_link_stop(redis_link_t *link, int64_t grace_ms, redis_link_stopped_fn stopped,
                     void *arg) {
  if (link->stopping) {
    link_drop(link, "shutting down");
    return;
  }
  link->stopping = true;
  link->stopped = stopped;
  link->stopped_arg = arg;
  evtimer_del(link->retry_timer);
  evtimer_del(link->connect_timer);
  evtimer_del(link->ping_timer);
  if (link->ac == NULL) {
    link_finish_stop(link);
    return;
  }
  if (!link->connected) {
    link_drop(link, "shutting down");
    return;
  }
  set_timer(link->grace_timer, grace_ms);
  /* Closes once pending replies are in; on_disconnect may run before this returns. */
  redisAsyncDisconnect(link->ac);
}

void redis_link_destroy(redis_link_t *link) {
  if (link == NULL) return;
  link->stopping = true;
  link->stopped = NULL; /* nobody is left to tell */
  if (link->ac != NULL) {
    redisAsyncContext *ac = link->ac;
    link->ac = NULL;
    redisAsyncFree(ac);
  }
  if (link->retry_timer != NULL) event_free(link->retry_timer);
  if (link->connect_timer != NULL) event_free(link->connect_timer);
  if (link->ping_timer != NULL) event_free(link->ping_timer);
  if (link->grace_timer != NULL) event_free(link->grace_timer);
  free(link);
}
