/* registry: the one table of conformance tests.
 *
 * Each suite file (suites/<area>_<topic>.c) defines an array of rc_test_def_t rows
 * with RC_TEST_ROW(); registry.c concatenates them. A row carries everything the
 * runner, `replcheck list`, the reports and docs/TESTS.md show: a stable id, the
 * requirement ids it checks (shared/spec/requirements.md), its level, the requirement
 * in one sentence, the upstream source it encodes, where it applies, and tags.
 * Rows are immutable static data. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "profile.h"
#include "proto.h"

typedef struct rc_test rc_test_t; /* per-test context, see testctx.h */

typedef void (*rc_test_fn)(rc_test_t *t);

/* Applicability bits. */
#define RC_DIALECT_2018 (1u << PROTO_DIALECT_2018)
#define RC_DIALECT_MODERN (1u << PROTO_DIALECT_MODERN)
#define RC_DIALECT_ALL (RC_DIALECT_2018 | RC_DIALECT_MODERN)
#define RC_TRANSPORT_TCP (1u << PROFILE_TRANSPORT_TCP)
#define RC_TRANSPORT_REDIS (1u << PROFILE_TRANSPORT_REDIS)
#define RC_TRANSPORT_ALL (RC_TRANSPORT_TCP | RC_TRANSPORT_REDIS)

/* What a test needs the profile to declare beyond dialect, transport and roles; a
 * profile without it gets the test skipped with the reason (registry_not_applicable). */
#define RC_NEEDS_METRICS (1u << 0)          /* "metrics.url": the metrics channel */
#define RC_NEEDS_HTTP (1u << 1)             /* "http.url": the SUT's own HTTP listener */
#define RC_NEEDS_EXPIRING_CACHE (1u << 2)   /* a cache with expiry_ms > 0 */
#define RC_NEEDS_BOUNDED_CACHE (1u << 3)    /* a cache with max_len > 0 */
#define RC_NEEDS_UNEXPIRING_CACHE (1u << 4) /* a cache with expiry_ms = 0 */
#define RC_NEEDS_READABLE_CACHE (1u << 5)   /* a cache with a read_url */
#define RC_NEEDS_RESET_ON_GET (1u << 6)     /* a cache with reset_on_get */
#define RC_NEEDS_CACHE_BITS                                                               \
  (RC_NEEDS_EXPIRING_CACHE | RC_NEEDS_BOUNDED_CACHE | RC_NEEDS_UNEXPIRING_CACHE |       \
   RC_NEEDS_READABLE_CACHE | RC_NEEDS_RESET_ON_GET)

typedef enum rc_level {
  RC_LEVEL_MUST = 1,   /* failure -> FAIL */
  RC_LEVEL_SHOULD = 2, /* failure -> NON-STRICT (FAIL under --strict) */
} rc_level_t;

typedef struct rc_test_def {
  const char *id;           /* "protocol/handshake/name-first": area/topic/name */
  const char *requirements; /* "HS-02" or "KA-03,KA-04" */
  rc_level_t level;
  const char *requirement;  /* one sentence */
  const char *source;       /* upstream file@version, PR, trace */
  unsigned dialects;        /* RC_DIALECT_* */
  unsigned transports;      /* RC_TRANSPORT_* */
  unsigned roles;           /* PROFILE_ROLE_* the SUT must have (0 = any) */
  unsigned needs;           /* RC_NEEDS_* the profile must declare (0 = nothing more) */
  const char *needs_paths;  /* comma-separated paths its "http.paths" must list, or NULL */
  const char *needs_caches; /* comma-separated names its "caches" must have, or NULL */
  const char *tags;         /* comma-separated: "slow,timing-dependent" */
  rc_test_fn run;
  const char *file;         /* __FILE__ of the row */
  int line;                 /* __LINE__ of the row */
} rc_test_def_t;

#define RC_TEST_ROW(...) {__VA_ARGS__, .file = __FILE__, .line = __LINE__}

/* All rows, in registry order; *count gets their number. */
const rc_test_def_t *registry_tests(size_t *count);
/* Appends rows made at start-up (the fixtures suite: one row per fixture file), after
 * the static suites. Rows are copied; the strings they point to must outlive the
 * registry. Call before anything holds row pointers (registry_tests may move them).
 * Returns 0, or -1 with why (a test id already taken, out of memory). */
int registry_add_rows(const rc_test_def_t *rows, size_t n, char *why, size_t cap);
/* Forgets the added rows (and frees the registry's memory); for tests. */
void registry_reset(void);
/* The row with that id, or NULL. */
const rc_test_def_t *registry_find(const char *id);

/* The source file of a row relative to the repository ("suites/protocol_handshake.c",
 * "fixtures/protocol/x.fixture"). */
const char *registry_relative_file(const rc_test_def_t *def);
/* "2018,modern" etc. into buf. */
const char *registry_dialects_text(unsigned dialects, char *buf, size_t cap);
const char *registry_transports_text(unsigned transports, char *buf, size_t cap);

/* Why a row does not apply to a profile ("needs dialect modern; profile speaks 2018"),
 * or NULL if it applies. Writes into buf. */
const char *registry_not_applicable(const rc_test_def_t *def, const profile_t *profile,
                                    char *buf, size_t cap);

/* The first cache of the profile that has every RC_NEEDS_*_CACHE property in `needs`
 * (only those bits count), or NULL. */
const profile_cache_t *registry_cache_for(const profile_t *profile, unsigned needs);

/* Suite tables, one per suites/<area>_<topic>.c file. */
extern const rc_test_def_t protocol_handshake_tests[];
extern const size_t protocol_handshake_test_count;
extern const rc_test_def_t protocol_keepalive_tests[];
extern const size_t protocol_keepalive_test_count;
extern const rc_test_def_t protocol_framing_tests[];
extern const size_t protocol_framing_test_count;
extern const rc_test_def_t protocol_reconnect_tests[];
extern const size_t protocol_reconnect_test_count;
extern const rc_test_def_t protocol_rdata_tests[];
extern const size_t protocol_rdata_test_count;
extern const rc_test_def_t protocol_position_tests[];
extern const size_t protocol_position_test_count;
extern const rc_test_def_t protocol_redis_tests[];
extern const size_t protocol_redis_test_count;
extern const rc_test_def_t protocol_passive_tests[];
extern const size_t protocol_passive_test_count;
extern const rc_test_def_t protocol_shutdown_tests[];
extern const size_t protocol_shutdown_test_count;
extern const rc_test_def_t http_server_header_tests[];
extern const size_t http_server_header_test_count;
extern const rc_test_def_t background_tests[];
extern const size_t background_test_count;
extern const rc_test_def_t cache_expiry_tests[];
extern const size_t cache_expiry_test_count;
extern const rc_test_def_t presence_tests[];
extern const size_t presence_test_count;
extern const rc_test_def_t logcontext_tests[];
extern const size_t logcontext_test_count;
extern const rc_test_def_t connections_tests[];
extern const size_t connections_test_count;
extern const rc_test_def_t database_tests[];
extern const size_t database_test_count;
extern const rc_test_def_t outbound_tests[];
extern const size_t outbound_test_count;
extern const rc_test_def_t federation_rows_tests[];
extern const size_t federation_rows_test_count;
extern const rc_test_def_t federation_position_tests[];
extern const size_t federation_position_test_count;

#endif
