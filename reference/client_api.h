/* client_api: the authenticated client API refworker serves on its HTTP listener (the
 * client role, --user; the sync role adds --sync). requirements.md OUT-01..OUT-08, HS-08.
 *
 *   GET /_matrix/client/{r0,v3}/account/whoami  200 {"user_id", "device_id"}
 *   GET /_matrix/client/{r0,v3}/sync            long-poll: answered 200 {"next_batch", ...}
 *       ?timeout=MS (default 0, at most CLIENT_API_MAX_TIMEOUT_MS) after MS;
 *       ?set_presence=online|unavailable|offline (default online)
 * Authentication: `Authorization: Bearer <token>` or `?access_token=<token>`, checked
 * against the users given with --user USER_ID=TOKEN[=DEVICE_ID]. No token: 401
 * M_MISSING_TOKEN; an unknown one: 401 M_UNKNOWN_TOKEN. Every authenticated request is
 * reported to client_ips (USER_IP). With presence enabled, each /sync whose
 * set_presence is not offline runs between presence_sync_begin and presence_sync_end;
 * the end comes when the answer is sent or when the client closes its connection first.
 *
 * Ownership: borrows `ips`, `presence` (may be NULL: presence disabled) and the users;
 * all must outlive it. Destroy the HTTP server before the API: closing the server's
 * connections ends the pending syncs. Single-threaded: the thread running `base`. */
#ifndef CLIENT_API_H
#define CLIENT_API_H

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>

#include "client_ips.h"
#include "http_server.h"
#include "presence_sync.h"
#include "rc_error.h"

#define CLIENT_API_MAX_TIMEOUT_MS 55000

/* One user of --user (strings owned by whoever parsed the option). */
typedef struct client_user {
  char *user_id;
  char *access_token;
  char *device_id; /* NULL: none */
} client_user_t;

/* Parses USER_ID=TOKEN[=DEVICE_ID] into *user (malloc'd strings: client_user_free). */
int client_user_parse(const char *text, client_user_t *user, rc_error_t *err);
void client_user_free(client_user_t *user);

typedef struct client_api client_api_t;

client_api_t *client_api_create(struct event_base *base, const client_user_t *users,
                                size_t user_count, client_ips_t *ips, presence_sync_t *presence,
                                rc_error_t *err);
/* Frees the API; pending syncs are dropped without an answer. NULL is fine. */
void client_api_destroy(client_api_t *api);

/* An http_server_route_fn: the API's routes (arg is the client_api_t). */
bool client_api_route(void *arg, http_server_t *server, struct evhttp_request *req,
                      const char *path);

#endif
