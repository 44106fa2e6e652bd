/* Command names, which dialect has which command, who may send it, and the field
 * layout of each command's data (spec/replication-protocol.md §2.1, §2.2). */
#include "proto_internal.h"

#include <string.h>

static const char *const command_names[PROTO_CMD_COUNT] = {
    [PROTO_CMD_SERVER] = "SERVER",
    [PROTO_CMD_RDATA] = "RDATA",
    [PROTO_CMD_POSITION] = "POSITION",
    [PROTO_CMD_ERROR] = "ERROR",
    [PROTO_CMD_PING] = "PING",
    [PROTO_CMD_NAME] = "NAME",
    [PROTO_CMD_REPLICATE] = "REPLICATE",
    [PROTO_CMD_USER_SYNC] = "USER_SYNC",
    [PROTO_CMD_CLEAR_USER_SYNC] = "CLEAR_USER_SYNC",
    [PROTO_CMD_FEDERATION_ACK] = "FEDERATION_ACK",
    [PROTO_CMD_REMOVE_PUSHER] = "REMOVE_PUSHER",
    [PROTO_CMD_INVALIDATE_CACHE] = "INVALIDATE_CACHE",
    [PROTO_CMD_USER_IP] = "USER_IP",
    [PROTO_CMD_SYNC] = "SYNC",
    [PROTO_CMD_REMOTE_SERVER_UP] = "REMOTE_SERVER_UP",
    [PROTO_CMD_LOCK_RELEASED] = "LOCK_RELEASED",
    [PROTO_CMD_NEW_ACTIVE_TASK] = "NEW_ACTIVE_TASK",
    [PROTO_CMD_CANCEL_TASK] = "CANCEL_TASK",
};

#define BIT(kind) (1u << (unsigned)(kind))

/* The 2018 sets are mo@v0.33.3's plus REMOTE_SERVER_UP in both directions, which
 * v1.9-v1.12 (still the 2018 dialect, spec §0) added: a real v1.12 main relays it to
 * every connection and a v1.12 worker may send it (requirements FR-02, FR-12). */
#define SET_2018_SERVER                                                                            \
  (BIT(PROTO_CMD_SERVER) | BIT(PROTO_CMD_RDATA) | BIT(PROTO_CMD_POSITION) | BIT(PROTO_CMD_ERROR) | \
   BIT(PROTO_CMD_PING) | BIT(PROTO_CMD_SYNC) | BIT(PROTO_CMD_REMOTE_SERVER_UP))
#define SET_2018_CLIENT                                                                      \
  (BIT(PROTO_CMD_NAME) | BIT(PROTO_CMD_REPLICATE) | BIT(PROTO_CMD_PING) |                    \
   BIT(PROTO_CMD_USER_SYNC) | BIT(PROTO_CMD_FEDERATION_ACK) | BIT(PROTO_CMD_REMOVE_PUSHER) | \
   BIT(PROTO_CMD_INVALIDATE_CACHE) | BIT(PROTO_CMD_USER_IP) | BIT(PROTO_CMD_ERROR) |         \
   BIT(PROTO_CMD_REMOTE_SERVER_UP))
/* NEW_ACTIVE_TASK and CANCEL_TASK exist in the modern command map but in neither TCP
 * set: only Redis (no direction check) can carry them. */
#define SET_MODERN_SERVER                                                                          \
  (BIT(PROTO_CMD_SERVER) | BIT(PROTO_CMD_RDATA) | BIT(PROTO_CMD_POSITION) | BIT(PROTO_CMD_ERROR) | \
   BIT(PROTO_CMD_PING) | BIT(PROTO_CMD_REMOTE_SERVER_UP) | BIT(PROTO_CMD_LOCK_RELEASED))
#define SET_MODERN_CLIENT                                                                      \
  (BIT(PROTO_CMD_NAME) | BIT(PROTO_CMD_REPLICATE) | BIT(PROTO_CMD_PING) |                      \
   BIT(PROTO_CMD_USER_SYNC) | BIT(PROTO_CMD_CLEAR_USER_SYNC) | BIT(PROTO_CMD_FEDERATION_ACK) | \
   BIT(PROTO_CMD_USER_IP) | BIT(PROTO_CMD_ERROR) | BIT(PROTO_CMD_REMOTE_SERVER_UP) |           \
   BIT(PROTO_CMD_LOCK_RELEASED))
#define SET_MODERN_ANY                                                      \
  (SET_MODERN_SERVER | SET_MODERN_CLIENT | BIT(PROTO_CMD_NEW_ACTIVE_TASK) | \
   BIT(PROTO_CMD_CANCEL_TASK))

const unsigned proto_direction_sets[3][4] = {
    [PROTO_DIALECT_2018] =
        {
            [PROTO_SENDER_SERVER] = SET_2018_SERVER,
            [PROTO_SENDER_CLIENT] = SET_2018_CLIENT,
            [PROTO_SENDER_ANY] = SET_2018_SERVER | SET_2018_CLIENT,
        },
    [PROTO_DIALECT_MODERN] =
        {
            [PROTO_SENDER_SERVER] = SET_MODERN_SERVER,
            [PROTO_SENDER_CLIENT] = SET_MODERN_CLIENT,
            [PROTO_SENDER_ANY] = SET_MODERN_ANY,
        },
};

const char *proto_command_name(proto_command_kind_t kind) {
  if ((int)kind <= (int)PROTO_CMD_NONE || (int)kind >= (int)PROTO_CMD_COUNT) return "?";
  return command_names[kind];
}

proto_command_kind_t proto_command_from_name(const char *name, size_t len) {
  if (name == NULL) return PROTO_CMD_NONE;
    /* Runs once per inbound line: dispatch on the length, then compare with constant
     * lengths, which compilers turn into a word compare or two instead of a call. */
#define IS(lit) (memcmp(name, lit, sizeof(lit) - 1) == 0)
  switch (len) {
    case 4:
      if (IS("PING")) return PROTO_CMD_PING;
      if (IS("NAME")) return PROTO_CMD_NAME;
      if (IS("SYNC")) return PROTO_CMD_SYNC;
      break;
    case 5:
      if (IS("RDATA")) return PROTO_CMD_RDATA;
      if (IS("ERROR")) return PROTO_CMD_ERROR;
      break;
    case 6:
      if (IS("SERVER")) return PROTO_CMD_SERVER;
      break;
    case 7:
      if (IS("USER_IP")) return PROTO_CMD_USER_IP;
      break;
    case 8:
      if (IS("POSITION")) return PROTO_CMD_POSITION;
      break;
    case 9:
      if (IS("REPLICATE")) return PROTO_CMD_REPLICATE;
      if (IS("USER_SYNC")) return PROTO_CMD_USER_SYNC;
      break;
    case 11:
      if (IS("CANCEL_TASK")) return PROTO_CMD_CANCEL_TASK;
      break;
    case 13:
      if (IS("REMOVE_PUSHER")) return PROTO_CMD_REMOVE_PUSHER;
      if (IS("LOCK_RELEASED")) return PROTO_CMD_LOCK_RELEASED;
      break;
    case 14:
      if (IS("FEDERATION_ACK")) return PROTO_CMD_FEDERATION_ACK;
      break;
    case 15:
      if (IS("CLEAR_USER_SYNC")) return PROTO_CMD_CLEAR_USER_SYNC;
      if (IS("NEW_ACTIVE_TASK")) return PROTO_CMD_NEW_ACTIVE_TASK;
      break;
    case 16:
      if (IS("INVALIDATE_CACHE")) return PROTO_CMD_INVALIDATE_CACHE;
      if (IS("REMOTE_SERVER_UP")) return PROTO_CMD_REMOTE_SERVER_UP;
      break;
    default:
      break;
  }
#undef IS
  return PROTO_CMD_NONE;
}

bool proto_command_in_dialect(proto_dialect_t dialect, proto_command_kind_t kind) {
  return proto_kind_allowed(dialect, kind, PROTO_SENDER_ANY);
}

bool proto_command_allowed(proto_dialect_t dialect, proto_command_kind_t kind,
                           proto_sender_t sender) {
  return proto_kind_allowed(dialect, kind, sender);
}

const char *proto_dialect_name(proto_dialect_t dialect) {
  switch (dialect) {
    case PROTO_DIALECT_2018:
      return "2018";
    case PROTO_DIALECT_MODERN:
      return "modern";
  }
  return "?";
}

int proto_dialect_from_name(const char *name, proto_dialect_t *out) {
  if (name == NULL) return -1;
  proto_dialect_t d;
  if (strcmp(name, "2018") == 0) {
    d = PROTO_DIALECT_2018;
  } else if (strcmp(name, "modern") == 0) {
    d = PROTO_DIALECT_MODERN;
  } else {
    return -1;
  }
  if (out != NULL) *out = d;
  return 0;
}

/* ---- layouts --------------------------------------------------------------------- */

#define TEXT_LAYOUT \
  { 0, {NULL}, "<text>" }

const proto_layout_t proto_layouts[3][PROTO_CMD_COUNT] = {
    [PROTO_DIALECT_2018] =
        {
            [PROTO_CMD_SERVER] = TEXT_LAYOUT,
            [PROTO_CMD_ERROR] = TEXT_LAYOUT,
            [PROTO_CMD_PING] = TEXT_LAYOUT,
            [PROTO_CMD_NAME] = TEXT_LAYOUT,
            [PROTO_CMD_SYNC] = TEXT_LAYOUT,
            [PROTO_CMD_REMOTE_SERVER_UP] = TEXT_LAYOUT,
            [PROTO_CMD_RDATA] = {3,
                                 {"stream", "token", "row"},
                                 "<stream> <token|batch> <row_json>"},
            [PROTO_CMD_POSITION] = {2, {"stream", "token"}, "<stream> <token>"},
            [PROTO_CMD_REPLICATE] = {2, {"stream", "token"}, "<stream|ALL> <token|NOW>"},
            [PROTO_CMD_USER_SYNC] = {3,
                                     {"user_id", "state", "last_sync_ms"},
                                     "<user_id> <start|end> <last_sync_ms>"},
            [PROTO_CMD_FEDERATION_ACK] = {1, {"token"}, "<token>"},
            [PROTO_CMD_REMOVE_PUSHER] = {3,
                                         {"app_id", "push_key", "user_id"},
                                         "<app_id> <push_key> <user_id>"},
            [PROTO_CMD_INVALIDATE_CACHE] = {2, {"cache_func", "keys"}, "<cache_func> <keys_json>"},
            [PROTO_CMD_USER_IP] = {2, {"user_id", "row"}, "<user_id> <json_array>"},
        },
    [PROTO_DIALECT_MODERN] =
        {
            [PROTO_CMD_SERVER] = TEXT_LAYOUT,
            [PROTO_CMD_ERROR] = TEXT_LAYOUT,
            [PROTO_CMD_PING] = TEXT_LAYOUT,
            [PROTO_CMD_NAME] = TEXT_LAYOUT,
            [PROTO_CMD_REMOTE_SERVER_UP] = TEXT_LAYOUT,
            [PROTO_CMD_NEW_ACTIVE_TASK] = TEXT_LAYOUT,
            [PROTO_CMD_CANCEL_TASK] = TEXT_LAYOUT,
            [PROTO_CMD_REPLICATE] = {0, {NULL}, "(no arguments)"},
            [PROTO_CMD_CLEAR_USER_SYNC] = {1, {"instance"}, "<instance_id>"},
            [PROTO_CMD_RDATA] = {4,
                                 {"stream", "instance", "token", "row"},
                                 "<stream> <instance> <token|batch> <row_json>"},
            [PROTO_CMD_POSITION] = {4,
                                    {"stream", "instance", "prev_token", "new_token"},
                                    "<stream> <instance> <prev_token> <new_token>"},
            [PROTO_CMD_USER_SYNC] = {5,
                                     {"instance", "user_id", "device_id", "state", "last_sync_ms"},
                                     "<instance_id> <user_id> [<device_id|None>] <start|end> "
                                     "<last_sync_ms>"},
            [PROTO_CMD_FEDERATION_ACK] = {2, {"instance", "token"}, "<instance> <token>"},
            [PROTO_CMD_USER_IP] = {2, {"user_id", "row"}, "<user_id> <json_array>"},
            [PROTO_CMD_LOCK_RELEASED] = {1,
                                         {"row"},
                                         "<json_array [instance, lock_name, lock_key]>"},
        },
};

/* The pre-v1.92 modern USER_SYNC (no device id), as in the 1.66 traces. */
const proto_layout_t proto_layout_modern_user_sync_4 = {
    4,
    {"instance", "user_id", "state", "last_sync_ms"},
    "<instance_id> <user_id> [<device_id|None>] <start|end> <last_sync_ms>"};

const char *proto_layout_field_at(proto_dialect_t dialect, proto_command_kind_t kind,
                                  const char *data, size_t data_len, size_t offset) {
  const proto_layout_t *layout = proto_layout_get(dialect, kind);
  if (layout == NULL) return "data";
  if (layout->nfields == 0)
    return dialect == PROTO_DIALECT_MODERN && kind == PROTO_CMD_REPLICATE ? "data" : "text";
  if (dialect == PROTO_DIALECT_MODERN && kind == PROTO_CMD_USER_SYNC) {
    size_t spaces = 0;
    for (size_t i = 0; i < data_len; i++) spaces += data[i] == ' ';
    if (spaces == 3) layout = &proto_layout_modern_user_sync_4;
  }
  unsigned field = 0;
  for (size_t i = 0; i < data_len && i < offset; i++) {
    if (data[i] == ' ' && field + 1 < layout->nfields) field++;
  }
  return layout->fields[field];
}
