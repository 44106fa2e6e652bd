/* profile_database: loads a profile's optional "database" block:
 *   "database": {"pool_max": N}
 * N is the most database sessions the SUT keeps in steady state (Synapse's cp_max,
 * default 10), which DB-04 and DB-05 hold it to. Called by profile_load(). */
#ifndef PROFILE_DATABASE_H
#define PROFILE_DATABASE_H

#include <jansson.h>

#include "profile.h"

/* Synapse's default adbapi pool maximum (cp_max). */
#define PROFILE_DEFAULT_DB_POOL_MAX 10

/* Fills profile->db_pool_max. Returns 0, or -1 with err naming the file and field. */
int profile_database_load(profile_t *profile, const json_t *root, rc_error_t *err);

#endif
