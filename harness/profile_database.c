/* The profile's "database" block (docs/PROFILES.md "Database"), kept apart from
 * profile.c: what the database suite needs to know about the SUT's connection pool, and
 * what the run's template database starts with. */
#include "profile_database.h"

#include <string.h>

static int load_pool_max(profile_t *profile, const json_t *value, rc_error_t *err) {
  if (!json_is_integer(value) || json_integer_value(value) < 1 || json_integer_value(value) > 1000)
    return rc_error_set(err, "%s: field 'database.pool_max': expected an integer in 1..1000",
                        profile->path);
  profile->db_pool_max = (int)json_integer_value(value);
  return 0;
}

static int load_schema(profile_t *profile, const json_t *value, rc_error_t *err) {
  const char *s = json_string_value(value);
  if (s != NULL && strcmp(s, "refworker") == 0)
    profile->db_schema = PROFILE_DB_SCHEMA_REFWORKER;
  else if (s != NULL && strcmp(s, "none") == 0)
    profile->db_schema = PROFILE_DB_SCHEMA_NONE;
  else
    return rc_error_set(err, "%s: field 'database.schema': expected \"refworker\" or \"none\"",
                        profile->path);
  /* Only the run's cluster has a template; without role pg the field would do nothing. */
  if ((profile->roles & PROFILE_ROLE_PG) == 0)
    return rc_error_set(err, "%s: field 'database.schema': needs role \"pg\" in 'roles'",
                        profile->path);
  return 0;
}

int profile_database_load(profile_t *profile, const json_t *root, rc_error_t *err) {
  profile->db_pool_max = PROFILE_DEFAULT_DB_POOL_MAX;
  profile->db_schema = PROFILE_DB_SCHEMA_REFWORKER;
  const json_t *block = json_object_get(root, "database");
  if (block == NULL) return 0;
  if (!json_is_object(block))
    return rc_error_set(err, "%s: field 'database': expected an object", profile->path);
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)block, key, value) {
    int rc;
    if (strcmp(key, "pool_max") == 0)
      rc = load_pool_max(profile, value, err);
    else if (strcmp(key, "schema") == 0)
      rc = load_schema(profile, value, err);
    else
      rc = rc_error_set(err, "%s: field 'database.%s': unknown field (known: pool_max, schema)",
                        profile->path, key);
    if (rc != 0) return rc;
  }
  return 0;
}
