/* profile_fedsender: the "fedsender" part of a profile (role fedsender): how the SUT is
 * told about the fake remote servers of a presence test (docs/PROFILES.md).
 *
 * The number of remotes differs per test, so the profile gives argv elements that are
 * appended to "command" once per remote, with {remote_name} and {remote_url} filled in
 * (refworker: ["--remote", "{remote_name}={remote_url}"]). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_internal.h"

const char *const PROFILE_REMOTE_PLACEHOLDERS[] = {"remote_name", "remote_url", NULL};

/* Whether any of the templates contains {name} (not the literal "{{name}}"). */
static bool uses_placeholder(char **templates, size_t count, const char *name) {
  char wanted[64];
  snprintf(wanted, sizeof wanted, "{%s}", name);
  for (size_t i = 0; i < count; i++) {
    for (const char *p = strstr(templates[i], wanted); p != NULL; p = strstr(p + 1, wanted))
      if (p == templates[i] || p[-1] != '{') return true;
  }
  return false;
}

int profile_load_fedsender(const profile_loader_t *ld, json_t *root) {
  static const char *const keys[] = {"remote_args", NULL};
  profile_t *p = ld->profile;
  json_t *obj = json_object_get(root, "fedsender");
  bool role = (p->roles & PROFILE_ROLE_FEDSENDER) != 0;
  if (obj == NULL)
    return role ? profile_fail(ld, "fedsender",
                               "missing: role \"fedsender\" needs {\"remote_args\": [...]}, the "
                               "arguments that tell the SUT one remote server's URL")
                : 0;
  if (!json_is_object(obj))
    return profile_fail(ld, "fedsender", "expected an object, got %s", profile_json_type(obj));
  if (!role)
    return profile_fail(ld, "fedsender", "only meaningful with role \"fedsender\" in 'roles'");
  if (profile_check_keys(ld, obj, "fedsender", keys) != 0) return -1;
  json_t *list = json_object_get(obj, "remote_args");
  if (list == NULL)
    return profile_fail(ld, "fedsender.remote_args",
                        "missing, expected a non-empty array of argument templates");
  if (profile_take_arg_templates(ld, list, "fedsender.remote_args", PROFILE_REMOTE_PLACEHOLDERS,
                                 &p->remote_args, &p->remote_arg_count) != 0)
    return -1;
  /* Without both the SUT could not tell the remotes apart or reach them. */
  for (size_t i = 0; PROFILE_REMOTE_PLACEHOLDERS[i] != NULL; i++)
    if (!uses_placeholder(p->remote_args, p->remote_arg_count, PROFILE_REMOTE_PLACEHOLDERS[i]))
      return profile_fail(ld, "fedsender.remote_args",
                          "must use {%s} (each remote server gets its own arguments)",
                          PROFILE_REMOTE_PLACEHOLDERS[i]);
  return 0;
}

void profile_free_fedsender(profile_t *profile) {
  for (size_t i = 0; profile->remote_args != NULL && profile->remote_args[i] != NULL; i++)
    free(profile->remote_args[i]);
  free(profile->remote_args);
}
