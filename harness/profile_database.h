/* profile_database: loads a profile's optional "database" block:
 *   "database": {"pool_max": N, "schema": "refworker" | "none"}
 * N is the most database sessions the SUT keeps in steady state (Synapse's cp_max,
 * default 10), which DB-04 and DB-05 hold it to. "schema" says what the run's template
 * database holds (default refworker's tables; "none": empty, for a SUT whose own schema
 * the profile's per-run setup step creates; needs role pg). Called by profile_load()
 * after the roles are loaded. */
#ifndef PROFILE_DATABASE_H
#define PROFILE_DATABASE_H

#include <jansson.h>

#include "profile.h"

/* Synapse's default adbapi pool maximum (cp_max). */
#define PROFILE_DEFAULT_DB_POOL_MAX 10

/* Fills profile->db_pool_max and profile->db_schema. Returns 0, or -1 with err naming the file and field. */
int profile_database_load(profile_t *profile, const json_t *root, rc_error_t *err);

#endif
