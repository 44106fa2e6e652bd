/* mock_redis: the main process's side of Redis replication (Synapse v1.13+, the only
 * transport from v1.67; spec §6).
 *
 * Two hiredis connections on the mock's event loop, like a real main: one SUBSCRIBEd
 * to `<server_name>` and `<server_name>/USER_IP`, one for PUBLISH. Every message is one
 * command line without LF. Redis echoes a publisher's own messages to it; the echoes
 * of what this mock published are recognised (first-in, first-out per channel) and not
 * reported, so the line callback sees only what other processes (the SUT) published.
 * Limit: a SUT message byte-identical to the oldest unechoed message of the mock would
 * be taken for the echo, and the echo for the SUT's message; counts stay right.
 *
 * Owned by the mock homeserver; runs on its event loop. */
#ifndef MOCK_REDIS_H
#define MOCK_REDIS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "rc_error.h"

typedef struct mock_redis mock_redis_t;

/* Called for each message another process published on one of the channels. */
typedef void (*mock_redis_line_fn)(void *arg, const char *channel, const char *line, size_t len);

/* Connects both connections and subscribes; use mock_redis_ready() (driving the loop)
 * to know when the subscription is acknowledged. */
mock_redis_t *mock_redis_create(struct event_base *base, const char *host, int port,
                                const char *server_name, mock_redis_line_fn on_line, void *arg,
                                rc_error_t *err);
void mock_redis_destroy(mock_redis_t *redis);

/* Both connections up and the subscription acknowledged. */
bool mock_redis_ready(const mock_redis_t *redis);
/* Why it is not usable ("" while fine): a connection was lost or refused. */
const char *mock_redis_problem(const mock_redis_t *redis);

/* Drops both connections and connects and subscribes again (after the test restarted
 * redis-server). 0 or -1 with err; readiness as after create. */
int mock_redis_reconnect(mock_redis_t *redis, rc_error_t *err);

/* Client names of the mock's own connections (CLIENT SETNAME), so that CLIENT LIST can
 * tell them from the SUT's. */
#define MOCK_REDIS_CLIENT_PREFIX "replcheck-mock-"

/* Publishes one line (no LF) on the main channel, or on <server_name>/USER_IP when
 * user_ip_channel is set. Returns 0 or -1 when the publish connection is down. */
int mock_redis_publish(mock_redis_t *redis, bool user_ip_channel, const char *line, size_t len);

#endif
