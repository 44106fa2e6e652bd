#include "client_ips.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "rc_clock.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.storage.client_ips"

typedef struct seen {
  struct seen *next;
  char *key;           /* "user\ntoken\nip": none of them holds a LF */
  int64_t reported_ms; /* monotonic */
} seen_t;

struct client_ips {
  bug_set_t bugs;
  client_ips_send_fn send;
  void *send_arg;
  seen_t *seen;
};

client_ips_t *client_ips_create(bug_set_t bugs, client_ips_send_fn send, void *send_arg,
                                rc_error_t *err) {
  client_ips_t *ips = calloc(1, sizeof *ips);
  if (ips == NULL) {
    rc_error_set(err, "client IPs: out of memory");
    return NULL;
  }
  ips->bugs = bugs;
  ips->send = send;
  ips->send_arg = send_arg;
  return ips;
}

void client_ips_destroy(client_ips_t *ips) {
  if (ips == NULL) return;
  while (ips->seen != NULL) {
    seen_t *next = ips->seen->next;
    free(ips->seen->key);
    free(ips->seen);
    ips->seen = next;
  }
  free(ips);
}

/* Whether the triple is due for a report now; remembers that it was reported. */
static bool due(client_ips_t *ips, const char *user_id, const char *token, const char *ip,
                int64_t now) {
  char *key = NULL;
  if (asprintf(&key, "%s\n%s\n%s", user_id, token, ip) < 0) return true;
  for (seen_t *s = ips->seen; s != NULL; s = s->next) {
    if (strcmp(s->key, key) != 0) continue;
    free(key);
    if (now - s->reported_ms < CLIENT_IPS_GRANULARITY_MS) return false;
    s->reported_ms = now;
    return true;
  }
  seen_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    free(key);
    return true;
  }
  s->key = key;
  s->reported_ms = now;
  s->next = ips->seen;
  ips->seen = s;
  return true;
}

void client_ips_record(client_ips_t *ips, const char *user_id, const char *access_token,
                       const char *ip, const char *user_agent, const char *device_id) {
  bool every = bugs_has(ips->bugs, BUG_USER_IP_EVERY_REQUEST);
  if (!due(ips, user_id, access_token, ip, rc_clock_mono_ms()) && !every) return;
  json_t *row = json_pack("[s, s, s, s?, I]", access_token, ip, user_agent, device_id,
                          (json_int_t)rc_clock_wall_ms());
  char *text = row != NULL ? json_dumps(row, JSON_COMPACT) : NULL;
  json_decref(row);
  if (text == NULL) {
    WLOG_ERROR("Cannot report the client IP of %s: out of memory", user_id);
    return;
  }
  proto_command_t cmd = {.kind = PROTO_CMD_USER_IP,
                         .user_id = proto_slice_cstr(user_id),
                         .row = proto_slice_cstr(text)};
  ips->send(ips->send_arg, &cmd);
  free(text);
}
