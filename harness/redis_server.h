/* redis_server: a private redis-server (Debian's package) for tests of the Redis
 * transport, on a free loopback port, with no persistence, its files in a directory
 * of the caller's. Started as a real process through sut.h (own process group, output
 * captured, never outlives its owner), and ready only once it answers PING.
 * One owner; single-threaded. */
#ifndef REDIS_SERVER_H
#define REDIS_SERVER_H

#include "rc_error.h"

typedef struct redis_server redis_server_t;

/* Starts redis-server in dir (which must exist) and waits up to timeout_ms for it to
 * answer PING. NULL with err ("redis-server not found in PATH (run ci/install-deps.sh)",
 * "redis-server did not answer PING within N ms; its output: ..."). */
redis_server_t *redis_server_start(const char *dir, int timeout_ms, rc_error_t *err);
int redis_server_port(const redis_server_t *server);
/* Stops it (SIGTERM, then SIGKILL) and frees. NULL is fine. */
void redis_server_stop(redis_server_t *server);
/* A "redis restart" for reconnect tests, in two steps so the caller can keep its
 * event loop running while the server is down: kill it now, later start it again on
 * the same port. relaunch returns 0 or -1 with err. */
void redis_server_kill(redis_server_t *server);
int redis_server_relaunch(redis_server_t *server, int timeout_ms, rc_error_t *err);

#endif
