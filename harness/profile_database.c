/* The profile's "database" block (docs/PROFILES.md "Database"), kept apart from
 * profile.c: what the database suite needs to know about the SUT's connection pool. */
#include "profile_database.h"

#include <string.h>

int profile_database_load(profile_t *profile, const json_t *root, rc_error_t *err) {
  profile->db_pool_max = PROFILE_DEFAULT_DB_POOL_MAX;
  const json_t *block = json_object_get(root, "database");
  if (block == NULL) return 0;
  if (!json_is_object(block))
    return rc_error_set(err, "%s: field 'database': expected an object", profile->path);
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)block, key, value) {
    if (strcmp(key, "pool_max") != 0)
      return rc_error_set(err, "%s: field 'database.%s': unknown field (known: pool_max)",
                          profile->path, key);
    if (!json_is_integer(value) || json_integer_value(value) < 1 ||
        json_integer_value(value) > 1000)
      return rc_error_set(err, "%s: field 'database.pool_max': expected an integer in 1..1000",
                          profile->path);
    profile->db_pool_max = (int)json_integer_value(value);
  }
  return 0;
}
