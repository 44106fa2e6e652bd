#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *registry_needs_unmet(unsigned needs, const profile_t *profile, char *buf,
                                        size_t cap);

typedef struct suite_table {
  const rc_test_def_t *rows;
  const size_t *count;
} suite_table_t;

/* Every suite, in the order tests are listed and run. */
static const suite_table_t SUITES[] = {
    {protocol_handshake_tests, &protocol_handshake_test_count},
    {protocol_keepalive_tests, &protocol_keepalive_test_count},
    {protocol_framing_tests, &protocol_framing_test_count},
    {protocol_reconnect_tests, &protocol_reconnect_test_count},
    {protocol_rdata_tests, &protocol_rdata_test_count},
    {protocol_position_tests, &protocol_position_test_count},
    {protocol_redis_tests, &protocol_redis_test_count},
    {protocol_passive_tests, &protocol_passive_test_count},
    {protocol_shutdown_tests, &protocol_shutdown_test_count},
    {http_server_header_tests, &http_server_header_test_count},
    {background_tests, &background_test_count},
    {cache_expiry_tests, &cache_expiry_test_count},
    {presence_tests, &presence_test_count},
    {logcontext_tests, &logcontext_test_count},
    {connections_tests, &connections_test_count},
    {database_tests, &database_test_count},
    {outbound_tests, &outbound_test_count},
    {federation_rows_tests, &federation_rows_test_count},
    {federation_position_tests, &federation_position_test_count},
};

/* The static suites' rows, then the rows added at start-up (registry_add_rows). */
static rc_test_def_t *all_rows;
static size_t all_count;
static bool static_loaded;

static int load_static(void) {
  if (static_loaded) return 0;
  size_t total = 0;
  for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) total += *SUITES[s].count;
  all_rows = calloc(total ? total : 1, sizeof *all_rows);
  if (all_rows == NULL) return -1;
  for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++)
    for (size_t i = 0; i < *SUITES[s].count; i++) all_rows[all_count++] = SUITES[s].rows[i];
  static_loaded = true;
  return 0;
}

const rc_test_def_t *registry_tests(size_t *count) {
  *count = load_static() == 0 ? all_count : 0;
  return all_rows;
}

int registry_add_rows(const rc_test_def_t *rows, size_t n, char *why, size_t cap) {
  if (load_static() != 0) return snprintf(why, cap, "out of memory"), -1;
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < all_count + i; k++) {
      const char *other = k < all_count ? all_rows[k].id : rows[k - all_count].id;
      if (strcmp(other, rows[i].id) == 0) {
        snprintf(why, cap, "test id '%s' (%s) is already taken", rows[i].id, rows[i].file);
        return -1;
      }
    }
  }
  rc_test_def_t *grown = realloc(all_rows, (all_count + n + 1) * sizeof *grown);
  if (grown == NULL) return snprintf(why, cap, "out of memory"), -1;
  all_rows = grown;
  memcpy(all_rows + all_count, rows, n * sizeof *rows);
  all_count += n;
  return 0;
}

void registry_reset(void) {
  free(all_rows);
  all_rows = NULL;
  all_count = 0;
  static_loaded = false;
}

const rc_test_def_t *registry_find(const char *id) {
  size_t n;
  const rc_test_def_t *rows = registry_tests(&n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(rows[i].id, id) == 0) return &rows[i];
  return NULL;
}

const char *registry_relative_file(const rc_test_def_t *def) {
  const char *p = strstr(def->file, "suites/");
  return p != NULL && strncmp(def->id, "fixtures/", 9) != 0 ? p : def->file;
}

const char *registry_dialects_text(unsigned dialects, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s%s", (dialects & RC_DIALECT_2018) ? "2018" : "",
           (dialects & RC_DIALECT_2018) && (dialects & RC_DIALECT_MODERN) ? "," : "",
           (dialects & RC_DIALECT_MODERN) ? "modern" : "");
  return buf;
}

const char *registry_transports_text(unsigned transports, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s%s", (transports & RC_TRANSPORT_TCP) ? "tcp" : "",
           (transports & RC_TRANSPORT_TCP) && (transports & RC_TRANSPORT_REDIS) ? "," : "",
           (transports & RC_TRANSPORT_REDIS) ? "redis" : "");
  return buf;
}

static bool profile_lists(const profile_t *profile, bool paths, const char *name, size_t n) {
  size_t count = paths ? profile->http_path_count : profile->cache_count;
  for (size_t i = 0; i < count; i++) {
    const char *have = paths ? profile->http_paths[i] : profile->caches[i].name;
    if (strlen(have) == n && strncmp(have, name, n) == 0) return true;
  }
  return false;
}

/* Whether an item of `wanted` (comma-separated, as the fixture loader joins them) is not
 * among the profile's http.paths (kind "path") or cache names; if so the skip reason. */
static bool registry_names_unmet(const char *kind, const char *field, const char *wanted,
                                 const profile_t *profile, char *buf, size_t cap) {
  for (const char *item = wanted; item != NULL && *item != '\0';) {
    size_t n = strcspn(item, ",");
    if (!profile_lists(profile, strcmp(kind, "path") == 0, item, n)) {
      snprintf(buf, cap, "not applicable: needs %s %.*s, which the profile's %s does not list",
               kind, (int)n, item, field);
      return true;
    }
    item += n + (item[n] == ',');
  }
  return false;
}

const char *registry_not_applicable(const rc_test_def_t *def, const profile_t *profile, char *buf,
                                    size_t cap) {
  char want[32];
  if (!(def->dialects & (1u << profile->dialect))) {
    snprintf(buf, cap, "not applicable: needs dialect %s; the profile speaks %s",
             registry_dialects_text(def->dialects, want, sizeof want),
             proto_dialect_name(profile->dialect));
    return buf;
  }
  if (!(def->transports & (1u << profile->transport))) {
    snprintf(buf, cap, "not applicable: needs transport %s; the profile uses %s",
             registry_transports_text(def->transports, want, sizeof want),
             profile_transport_name(profile->transport));
    return buf;
  }
  if (def->roles != 0 && (profile->roles & def->roles) != def->roles) {
    static const struct {
      unsigned bit;
      const char *name;
    } ROLES[] = {{PROFILE_ROLE_WORKER, "worker"},
                 {PROFILE_ROLE_FEDSENDER, "fedsender"},
                 {PROFILE_ROLE_PRESENCE_WRITER, "presence_writer"},
                 {PROFILE_ROLE_SYNC, "sync"},
                 {PROFILE_ROLE_CLIENT, "client"},
                 {PROFILE_ROLE_CACHES, "caches"},
                 {PROFILE_ROLE_PG, "pg"}};
    char missing[128] = "";
    for (size_t i = 0, used = 0; i < sizeof ROLES / sizeof ROLES[0]; i++) {
      if (!(def->roles & ROLES[i].bit) || (profile->roles & ROLES[i].bit)) continue;
      int n =
          snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "", ROLES[i].name);
      if (n > 0 && (size_t)n < sizeof missing - used) used += (size_t)n;
    }
    snprintf(buf, cap, "not applicable: needs role %s, which the profile does not declare",
             missing);
    return buf;
  }
  /* A missing channel is the plainer reason, so it comes before a missing path or cache. */
  if (registry_needs_unmet(def->needs, profile, buf, cap) != NULL ||
      registry_names_unmet("path", "\"http.paths\"", def->needs_paths, profile, buf, cap) ||
      registry_names_unmet("cache", "\"caches\"", def->needs_caches, profile, buf, cap))
    return buf;
  return NULL;
}

const profile_cache_t *registry_cache_for(const profile_t *profile, unsigned needs) {
  for (size_t i = 0; i < profile->cache_count; i++) {
    const profile_cache_t *c = &profile->caches[i];
    if ((needs & RC_NEEDS_EXPIRING_CACHE) && c->expiry_ms == 0) continue;
    if ((needs & RC_NEEDS_UNEXPIRING_CACHE) && c->expiry_ms != 0) continue;
    if ((needs & RC_NEEDS_BOUNDED_CACHE) && c->max_len == 0) continue;
    if ((needs & RC_NEEDS_READABLE_CACHE) && c->read_url == NULL) continue;
    if ((needs & RC_NEEDS_RESET_ON_GET) && !c->reset_on_get) continue;
    return c;
  }
  return NULL;
}

/* What the profile lacks of `needs`, as a skip reason, or NULL. */
static const char *registry_needs_unmet(unsigned needs, const profile_t *profile, char *buf,
                                        size_t cap) {
  if ((needs & RC_NEEDS_METRICS) && profile->metrics_url == NULL) {
    snprintf(buf, cap,
             "not applicable: needs the SUT's metrics; the profile declares no metrics.url");
    return buf;
  }
  if ((needs & RC_NEEDS_HTTP) && profile->http_url == NULL) {
    snprintf(buf, cap,
             "not applicable: needs the SUT's HTTP listener; the profile declares no http.url");
    return buf;
  }
  if ((needs & RC_NEEDS_CACHE_BITS) && registry_cache_for(profile, needs) == NULL) {
    static const struct {
      unsigned bit;
      const char *text;
    } PROPERTIES[] = {{RC_NEEDS_EXPIRING_CACHE, "expiry_ms > 0"},
                      {RC_NEEDS_UNEXPIRING_CACHE, "expiry_ms 0"},
                      {RC_NEEDS_BOUNDED_CACHE, "max_len > 0"},
                      {RC_NEEDS_RESET_ON_GET, "reset_on_get"},
                      {RC_NEEDS_READABLE_CACHE, "a read_url"}};
    char wanted[160] = "";
    for (size_t i = 0, used = 0; i < sizeof PROPERTIES / sizeof PROPERTIES[0]; i++) {
      if (!(needs & PROPERTIES[i].bit)) continue;
      int n = snprintf(wanted + used, sizeof wanted - used, "%s%s", used ? ", " : "",
                       PROPERTIES[i].text);
      if (n > 0 && (size_t)n < sizeof wanted - used) used += (size_t)n;
    }
    snprintf(buf, cap,
             "not applicable: needs a cache with %s; the profile's \"caches\" list has none",
             wanted);
    return buf;
  }
  return NULL;
}
