/* redis_transport: replication over Redis pub/sub, worker side (spec §6; RE-01..RE-09).
 *
 * Two links (redis_client.h): the subscriber, SUBSCRIBEd to the channel named exactly
 * like the homeserver (--server-name), and the publisher. Once the SUBSCRIBE is
 * acknowledged a new subscription has begun, which plays the part of a TCP connection
 * for the stream rules: the stream handler is reset (every stream not connected until
 * its POSITION, catch-ups of the previous subscription abandoned) and `REPLICATE ` is
 * published, followed by POSITIONs of the streams this worker writes. Like every Synapse
 * worker on Redis (v1.14+, "any process writes caches") refworker writes `caches`; it
 * has no invalidation of its own to send, so its writer position is the highest caches
 * token it knows (0 before any), announced as `POSITION caches <instance> N N`. Losing
 * the subscriber ends the subscription likewise; both links reconnect on their own and a
 * new subscription starts over.
 *
 * Every message is one command line without LF, parsed with the codec in the modern
 * dialect with no direction check. Unparsable ones are logged ("Failed to parse
 * replication line: %r") and skipped. RDATA/POSITION go to the stream handler (which
 * ignores our own instance's echoes); REPLICATE, our own echo included, is answered with
 * our POSITIONs (RE-04; BUG_REDIS_REPLICATE_UNANSWERED answers none); commands meant for
 * other processes are ignored. Nothing but REPLICATE, POSITION and what the owner sends
 * (redis_transport_send: FEDERATION_ACK of the federation sender role) is ever
 * published: no NAME, SERVER, replication PING or ERROR over Redis.
 * USER_IP is published on "<channel>/USER_IP", every other command on the channel
 * (v1.60+, RE-07). Published commands wait in a queue while the publisher is not connected and go out, in
 * order, when it is.
 *
 * Single-threaded: the thread running `base`. */
#ifndef REDIS_TRANSPORT_H
#define REDIS_TRANSPORT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "bugs.h"
#include "rc_error.h"
#include "stream_handler.h"
#include "stream_state.h"

typedef struct redis_transport redis_transport_t;

/* Strings are borrowed and must outlive the transport. */
typedef struct redis_transport_config {
  const char *host;
  int port;
  const char *channel;       /* the homeserver name */
  const char *instance_name; /* ours */
  int64_t reconnect_initial_ms;
  int64_t subscriber_max_ms; /* reconnect caps */
  int64_t publisher_max_ms;
  int64_t ping_interval_ms; /* Redis-protocol PING period */
  bool leak_socket_on_loss; /* BUG_REDIS_SOCKET_LEAK, see redis_client.h */
  /* Called on each new subscription before REPLICATE is published, so the owner's
   * USER_SYNC starts precede it (RE-02, HS-08); NULL: nothing to add. */
  void (*on_subscribed)(void *arg);
  void *on_subscribed_arg;
  bug_set_t bugs; /* BUG_REDIS_REPLICATE_UNANSWERED, BUG_REDIS_SUBSCRIBER_NO_PING act here */
} redis_transport_config_t;

typedef void (*redis_transport_stopped_fn)(void *arg);

/* `streams` and `handler` are borrowed. Returns NULL with err filled. Nothing happens
 * until redis_transport_start. */
redis_transport_t *redis_transport_create(struct event_base *base,
                                          const redis_transport_config_t *config,
                                          stream_state_t *streams, stream_handler_t *handler,
                                          rc_error_t *err);
/* Closes both connections at once and frees. NULL is fine. */
void redis_transport_destroy(redis_transport_t *transport);

/* Publishes a command (e.g. FEDERATION_ACK), queued while the publisher is down. */
void redis_transport_send(redis_transport_t *transport, const proto_command_t *cmd);

/* Connects both links. */
void redis_transport_start(redis_transport_t *transport);

/* Stops reconnecting and closes both connections in order (at most grace_ms each);
 * `stopped` runs once both are closed, possibly before this returns. A second call
 * closes at once. */
void redis_transport_shutdown(redis_transport_t *transport, int64_t grace_ms,
                              redis_transport_stopped_fn stopped, void *arg);

#endif
