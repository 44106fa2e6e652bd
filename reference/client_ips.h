/* client_ips: USER_IP reports of authenticated client requests (the client role, --user;
 * requirements.md OUT-07, OUT-08).
 *
 * Like Synapse's client_ips store on a worker (slave/storage/client_ips.py@v0.33.3,
 * storage/databases/main/client_ips.py@v1.66.0): a request whose (user, access token,
 * IP) was not reported in the last CLIENT_IPS_GRANULARITY_MS sends
 * `USER_IP <user_id> [access_token, ip, user_agent, device_id, last_seen_ms]` (device_id
 * null when the token has none). BUG_USER_IP_EVERY_REQUEST reports every request.
 *
 * Ownership: copies what it keeps. Not thread-safe; no event loop needed. */
#ifndef CLIENT_IPS_H
#define CLIENT_IPS_H

#include "bugs.h"
#include "proto.h"
#include "rc_error.h"

/* Synapse's LAST_SEEN_GRANULARITY, G_ip. */
#define CLIENT_IPS_GRANULARITY_MS 120000

typedef struct client_ips client_ips_t;

typedef void (*client_ips_send_fn)(void *arg, const proto_command_t *cmd);

client_ips_t *client_ips_create(bug_set_t bugs, client_ips_send_fn send, void *send_arg,
                                rc_error_t *err);
void client_ips_destroy(client_ips_t *ips); /* NULL is fine */

/* One authenticated request. device_id may be NULL, user_agent "" when absent. */
void client_ips_record(client_ips_t *ips, const char *user_id, const char *access_token,
                       const char *ip, const char *user_agent, const char *device_id);

#endif
