#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

#define REGISTRY_MAX 512
static rc_test_def_t all_rows[REGISTRY_MAX];
static size_t all_count;

const rc_test_def_t *registry_tests(size_t *count) {
  if (all_count == 0) {
    for (size_t s = 0; s < sizeof SUITES / sizeof SUITES[0]; s++) {
      for (size_t i = 0; i < *SUITES[s].count && all_count < REGISTRY_MAX; i++)
        all_rows[all_count++] = SUITES[s].rows[i];
    }
  }
  *count = all_count;
  return all_rows;
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
  return p != NULL ? p : def->file;
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

const char *registry_not_applicable(const rc_test_def_t *def, const profile_t *profile,
                                    char *buf, size_t cap) {
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
    snprintf(buf, cap, "not applicable: needs a role the profile does not declare");
    return buf;
  }
  return NULL;
}
