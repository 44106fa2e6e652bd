/* db_vars: the {db_dsn}, {db_host}, {db_port}, {db_name} and {db_user} placeholders.
 *
 * They all come from one libpq keyword/value connection string
 * ("host=127.0.0.1 port=5433 dbname=synapse user=postgres"), because that is what the
 * harness's throwaway PostgreSQL (role pg) hands out and what libpq programs take;
 * configs that want the parts separately (a Synapse homeserver.yaml) use the others.
 * With role pg the string is the run's cluster's (db_vars_parse() on the test's DSN, or
 * on the template's for a per-run setup step); otherwise it comes from the environment
 * variable REPLCHECK_DB_DSN (db_vars_from_env). Stateless; values live in the struct. */
#ifndef DB_VARS_H
#define DB_VARS_H

#include <stdbool.h>
#include <stddef.h>

#include "profile.h"
#include "rc_error.h"

#define DB_VARS_ENV "REPLCHECK_DB_DSN"
#define DB_VARS_COUNT 5

typedef struct db_vars {
  bool present;     /* a DSN was given: the placeholders have values */
  char dsn[1024];   /* {db_dsn}, as given */
  char host[256];   /* {db_host}: "host" (default "localhost", as libpq) */
  char port[16];    /* {db_port}: "port" (default "5432") */
  char name[256];   /* {db_name}: "dbname" (default: the user name, as libpq) */
  char user[256];   /* {db_user}: "user" (default "postgres") */
} db_vars_t;

/* Parses a keyword/value DSN: blank-separated key=value pairs, values optionally in
 * single quotes with \' and \\ escapes. Unknown keywords are kept in {db_dsn} only.
 * -1 with err ("connection string: ... at offset N") on a malformed string. */
int db_vars_parse(const char *dsn, db_vars_t *out, rc_error_t *err);

/* From REPLCHECK_DB_DSN: present=false (and 0) when it is unset or empty. */
int db_vars_from_env(db_vars_t *out, rc_error_t *err);

/* Appends the five placeholders (name/value pointing into v) to list when present;
 * returns how many were appended (0 or DB_VARS_COUNT, never more than cap). */
size_t db_vars_list(const db_vars_t *v, profile_var_t *list, size_t cap);

#endif
