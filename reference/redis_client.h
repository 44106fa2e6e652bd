/* redis_client: one Redis connection that keeps itself up (a "link").
 *
 * Built on hiredis' asynchronous API driven by the libevent loop through hiredis' own
 * libevent adapter. The link connects, tells its owner when the connection is up (the
 * owner then issues commands on the hiredis context it is given) and when it is lost,
 * and after any loss or failed attempt connects again after a backoff delay (backoff.h:
 * Twisted's ReconnectingClientFactory, as Synapse's Redis factories; spec §3.4).
 *
 * Keepalive (spec §6, RE-08): a Redis-protocol PING every ping_interval_ms. On a plain
 * connection an unanswered PING by the time the next one is due counts as a lost
 * connection (Synapse: reply timeout). hiredis 0.14 cannot hand the reply of a PING sent
 * on a subscribed connection to a callback (it looks the "pong" reply up as a pattern
 * subscription and drops it), so there the PING is written without a callback and a
 * dead peer is found by TCP keepalive instead (enabled on every link).
 *
 * Reply callbacks the owner registers run with a NULL reply when the connection goes
 * away (hiredis' rule), before `down`; their privdata must stay valid until then, i.e.
 * until redis_link_destroy has returned.
 * Single-threaded: the thread running `base`. */
#ifndef REDIS_CLIENT_H
#define REDIS_CLIENT_H

#include <event2/event.h>
#include <hiredis/async.h>
#include <stdbool.h>
#include <stdint.h>

#include "rc_error.h"

typedef struct redis_link redis_link_t;

typedef struct redis_link_config {
  const char *host; /* borrowed, must outlive the link */
  int port;
  const char *role; /* "subscriber" / "publisher": the link's name in log lines */
  int64_t reconnect_initial_ms;
  int64_t reconnect_max_ms;
  int64_t ping_interval_ms;
  int64_t connect_timeout_ms;
  /* BUG_REDIS_SOCKET_LEAK: a lost connection's socket is kept open (a duplicate of it
   * is never closed), so it sits in CLOSE_WAIT for the life of the process. */
  bool leak_socket_on_loss;
  bool ping_disabled; /* never PING: only for BUG_REDIS_SUBSCRIBER_NO_PING (bugs.h) */
} redis_link_config_t;

/* The connection is up; `ac` is valid until `down` (or destroy). */
typedef void (*redis_link_up_fn)(void *arg, redis_link_t *link, redisAsyncContext *ac);
/* The connection is gone (a reconnect is scheduled). `reason` is borrowed. */
typedef void (*redis_link_down_fn)(void *arg, redis_link_t *link, const char *reason);
/* A stop has finished: no socket of the link is open. */
typedef void (*redis_link_stopped_fn)(void *arg);

/* Returns NULL with err filled. Nothing happens until redis_link_start. */
redis_link_t *redis_link_create(struct event_base *base, const redis_link_config_t *config,
                                redis_link_up_fn up, redis_link_down_fn down, void *arg,
                                rc_error_t *err);
/* Closes the socket at once (reply callbacks run with NULL; `down` does not run) and
 * frees. NULL is fine. */
void redis_link_destroy(redis_link_t *link);

/* First connection attempt, now. */
void redis_link_start(redis_link_t *link);

/* The hiredis context while connected, else NULL. */
redisAsyncContext *redis_link_context(const redis_link_t *link);

/* Stops reconnecting and closes: hiredis sends what is queued and waits for pending
 * replies, at most grace_ms, then the socket is closed. `stopped` runs once (possibly
 * before this returns). A second call closes at once. */
void redis_link_stop(redis_link_t *link, int64_t grace_ms, redis_link_stopped_fn stopped,
                     void *arg);

#endif
