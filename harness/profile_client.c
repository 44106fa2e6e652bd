/* profile_client: the "client" part of a profile (roles sync and client): the accounts
 * the harness uses for authenticated client requests to the SUT (/sync, whoami) and how
 * the SUT is told about them (docs/PROFILES.md "client").
 *
 * "users" lists user ids and access tokens the SUT accepts; "user_args", optional, are
 * argv elements appended to "command" once per user with {user_id}, {access_token} and
 * {device_id} filled in (refworker: ["--user", "{user_id}={access_token}={device_id}"]).
 * A SUT whose accounts exist by other means (a setup step) leaves user_args out. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_internal.h"

const char *const PROFILE_USER_PLACEHOLDERS[] = {"user_id", "access_token", "device_id", NULL};

/* A literal identifier: non-empty, printable ASCII without blanks (it goes into URLs,
 * headers and argv). */
static int take_identifier(const profile_loader_t *ld, json_t *value, const char *field,
                           bool required, char **dst) {
  if (value == NULL)
    return required ? profile_fail(ld, field, "missing, expected a non-empty string") : 0;
  if (!json_is_string(value))
    return profile_fail(ld, field, "expected a string, got %s", profile_json_type(value));
  const char *text = json_string_value(value);
  if (text[0] == '\0') return profile_fail(ld, field, "must not be empty");
  for (const char *c = text; *c != '\0'; c++)
    if (*c <= ' ' || *c >= 0x7f)
      return profile_fail(ld, field, "must be printable ASCII without blanks, got '%s'", text);
  return profile_copy_string(ld, text, dst);
}

static int load_users(const profile_loader_t *ld, json_t *list) {
  static const char *const keys[] = {"user_id", "access_token", "device_id", NULL};
  profile_t *p = ld->profile;
  if (list == NULL)
    return profile_fail(ld, "client.users", "missing, expected a non-empty array of users");
  if (!json_is_array(list) || json_array_size(list) == 0)
    return profile_fail(ld, "client.users", "expected a non-empty array of users, got %s",
                        json_is_array(list) ? "an empty array" : profile_json_type(list));
  p->users = calloc(json_array_size(list), sizeof *p->users);
  if (p->users == NULL) return profile_fail(ld, NULL, "out of memory");
  size_t index;
  json_t *item;
  json_array_foreach(list, index, item) {
    char field[64], sub[96];
    snprintf(field, sizeof field, "client.users[%zu]", index);
    if (!json_is_object(item))
      return profile_fail(ld, field, "expected an object, got %s", profile_json_type(item));
    if (profile_check_keys(ld, item, field, keys) != 0) return -1;
    profile_user_t *u = &p->users[index];
    p->user_count = index + 1;
    snprintf(sub, sizeof sub, "%s.user_id", field);
    if (take_identifier(ld, json_object_get(item, "user_id"), sub, true, &u->user_id) != 0)
      return -1;
    if (u->user_id[0] != '@' || strchr(u->user_id, ':') == NULL)
      return profile_fail(ld, sub, "expected a Matrix user id '@local:server', got '%s'",
                          u->user_id);
    snprintf(sub, sizeof sub, "%s.access_token", field);
    if (take_identifier(ld, json_object_get(item, "access_token"), sub, true, &u->access_token) !=
        0)
      return -1;
    for (size_t j = 0; j < index; j++)
      if (strcmp(p->users[j].access_token, u->access_token) == 0)
        return profile_fail(ld, sub, "the same token as client.users[%zu]", j);
    snprintf(sub, sizeof sub, "%s.device_id", field);
    if (take_identifier(ld, json_object_get(item, "device_id"), sub, false, &u->device_id) != 0)
      return -1;
  }
  return 0;
}

static int load_user_args(const profile_loader_t *ld, json_t *list) {
  profile_t *p = ld->profile;
  if (list == NULL) return 0;
  if (profile_take_arg_templates(ld, list, "client.user_args", PROFILE_USER_PLACEHOLDERS,
                                 &p->user_args, &p->user_arg_count) != 0)
    return -1;
  bool uses_device = false;
  for (size_t i = 0; i < p->user_arg_count; i++)
    if (strstr(p->user_args[i], "{device_id}") != NULL) uses_device = true;
  /* Without a device id the argument would be cut short where the SUT expects one. */
  for (size_t i = 0; uses_device && i < p->user_count; i++)
    if (p->users[i].device_id == NULL)
      return profile_fail(ld, "client.user_args",
                          "uses {device_id} but client.users[%zu] has no device_id", i);
  return 0;
}

int profile_load_client(const profile_loader_t *ld, json_t *root) {
  static const char *const keys[] = {"users", "user_args", NULL};
  profile_t *p = ld->profile;
  json_t *obj = json_object_get(root, "client");
  bool role = (p->roles & (PROFILE_ROLE_SYNC | PROFILE_ROLE_CLIENT)) != 0;
  if (obj == NULL)
    return role ? profile_fail(ld, "client",
                               "missing: roles \"sync\" and \"client\" need {\"users\": [...]}, "
                               "the accounts the harness authenticates as")
                : 0;
  if (!json_is_object(obj))
    return profile_fail(ld, "client", "expected an object, got %s", profile_json_type(obj));
  if (!role)
    return profile_fail(ld, "client",
                        "only meaningful with role \"sync\" or \"client\" in 'roles'");
  if (profile_check_keys(ld, obj, "client", keys) != 0) return -1;
  if (load_users(ld, json_object_get(obj, "users")) != 0) return -1;
  return load_user_args(ld, json_object_get(obj, "user_args"));
}

void profile_free_client(profile_t *profile) {
  for (size_t i = 0; i < profile->user_count; i++) {
    free(profile->users[i].user_id);
    free(profile->users[i].access_token);
    free(profile->users[i].device_id);
  }
  free(profile->users);
  for (size_t i = 0; profile->user_args != NULL && profile->user_args[i] != NULL; i++)
    free(profile->user_args[i]);
  free(profile->user_args);
}
