#include "db_vars.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One value: bare up to the next blank, or single-quoted with \ escapes (libpq's
 * conninfo rules). Advances *p past it. */
static int parse_value(const char **p, const char *start, char *out, size_t cap, rc_error_t *err) {
  const char *s = *p;
  size_t n = 0;
  bool quoted = *s == '\'';
  if (quoted) s++;
  for (;; s++) {
    if (*s == '\0') {
      if (quoted)
        return rc_error_set(err, "connection string: unterminated quoted value at offset %zu",
                            (size_t)(s - start));
      break;
    }
    if (!quoted && isspace((unsigned char)*s)) break;
    if (quoted && *s == '\'') {
      s++;
      break;
    }
    if (*s == '\\' && s[1] != '\0') s++;
    if (n + 1 >= cap)
      return rc_error_set(err, "connection string: value too long at offset %zu",
                          (size_t)(*p - start));
    out[n++] = *s;
  }
  out[n] = '\0';
  *p = s;
  return 0;
}

int db_vars_parse(const char *dsn, db_vars_t *out, rc_error_t *err) {
  memset(out, 0, sizeof *out);
  if (strlen(dsn) >= sizeof out->dsn)
    return rc_error_set(err, "connection string: longer than %zu bytes", sizeof out->dsn - 1);
  snprintf(out->dsn, sizeof out->dsn, "%s", dsn);
  snprintf(out->host, sizeof out->host, "localhost");
  snprintf(out->port, sizeof out->port, "5432");
  snprintf(out->user, sizeof out->user, "postgres");
  bool have_name = false;
  for (const char *p = dsn;;) {
    while (isspace((unsigned char)*p)) p++;
    if (*p == '\0') break;
    const char *key = p;
    while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p)) p++;
    size_t key_len = (size_t)(p - key);
    while (isspace((unsigned char)*p)) p++;
    if (*p != '=' || key_len == 0)
      return rc_error_set(err, "connection string: expected keyword=value at offset %zu",
                          (size_t)(key - dsn));
    p++;
    while (isspace((unsigned char)*p)) p++;
    char value[256];
    if (parse_value(&p, dsn, value, sizeof value, err) != 0) return -1;
    char *slot = NULL;
    size_t cap = 0;
    if (key_len == 4 && memcmp(key, "host", 4) == 0) {
      slot = out->host;
      cap = sizeof out->host;
    } else if (key_len == 4 && memcmp(key, "port", 4) == 0) {
      slot = out->port;
      cap = sizeof out->port;
      if (value[0] == '\0' || strspn(value, "0123456789") != strlen(value) || strlen(value) > 5)
        return rc_error_set(err, "connection string: port '%s' is not a number", value);
    } else if (key_len == 6 && memcmp(key, "dbname", 6) == 0) {
      slot = out->name;
      cap = sizeof out->name;
      have_name = true;
    } else if (key_len == 4 && memcmp(key, "user", 4) == 0) {
      slot = out->user;
      cap = sizeof out->user;
    }
    if (slot != NULL) snprintf(slot, cap, "%s", value);
  }
  if (!have_name) snprintf(out->name, sizeof out->name, "%s", out->user);
  out->present = true;
  return 0;
}

int db_vars_from_env(db_vars_t *out, rc_error_t *err) {
  memset(out, 0, sizeof *out);
  const char *dsn = getenv(DB_VARS_ENV);
  if (dsn == NULL || dsn[0] == '\0') return 0;
  if (db_vars_parse(dsn, out, err) != 0) return rc_error_prefix(err, "%s", DB_VARS_ENV);
  return 0;
}

size_t db_vars_list(const db_vars_t *v, profile_var_t *list, size_t cap) {
  if (!v->present || cap < DB_VARS_COUNT) return 0;
  list[0] = (profile_var_t){"db_dsn", v->dsn};
  list[1] = (profile_var_t){"db_host", v->host};
  list[2] = (profile_var_t){"db_port", v->port};
  list[3] = (profile_var_t){"db_name", v->name};
  list[4] = (profile_var_t){"db_user", v->user};
  return DB_VARS_COUNT;
}
