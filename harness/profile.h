/* profile: how to start and observe one implementation under test (SUT).
 *
 * A profile is a JSON file (format documented in docs/PROFILES.md). profile_load()
 * reads and validates it completely before anything starts: every error names the
 * file, the field (as a JSON path, e.g. "timing.ping_interval_ms") and what was
 * expected. Strings in "command", "env", "log.path", "readiness.pattern",
 * "metrics.url", "http.url", "config_template" and the cache templates may contain
 * placeholders such as {repl_port}; load checks that each placeholder is one of
 * PROFILE_PLACEHOLDERS or {env:NAME} (filled from the harness's environment at
 * expansion; unset or empty is an error) (cache rows and keys may also use {n},
 * cache read URLs {key}),
 * and profile_expand() fills them per test. "{{" and "}}" stand for literal braces.
 *
 * Ownership: profile_t and everything in it belongs to the profile; free with
 * profile_destroy(). Read-only after load, so it may be shared by forked test
 * processes. */
#ifndef PROFILE_H
#define PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"
#include "rc_error.h"

/* Placeholders a profile may use, NULL-terminated. */
extern const char *const PROFILE_PLACEHOLDERS[];
/* The extra ones of "fedsender.remote_args": remote_name, remote_url. */
extern const char *const PROFILE_REMOTE_PLACEHOLDERS[];
/* The extra ones of "client.user_args": user_id, access_token, device_id. */
extern const char *const PROFILE_USER_PLACEHOLDERS[];

typedef enum profile_transport {
  PROFILE_TRANSPORT_TCP = 1,
  PROFILE_TRANSPORT_REDIS = 2,
} profile_transport_t;

typedef enum profile_readiness_kind {
  PROFILE_READY_CONNECT = 1, /* ready when the SUT opens its first replication connection */
  PROFILE_READY_LOG = 2,     /* ready when a log line matches readiness.pattern (POSIX ERE) */
} profile_readiness_kind_t;

typedef enum profile_log_format {
  PROFILE_LOG_SYNAPSE_TEXT = 1, /* "time - logger - lineno - LEVEL - context - message" */
  PROFILE_LOG_JSON_LINES = 2,
} profile_log_format_t;

/* Roles a SUT plays (bit set). */
enum {
  PROFILE_ROLE_WORKER = 1u << 0,
  PROFILE_ROLE_FEDSENDER = 1u << 1,
  PROFILE_ROLE_PRESENCE_WRITER = 1u << 2,
  PROFILE_ROLE_SYNC = 1u << 3,
  PROFILE_ROLE_CLIENT = 1u << 4,
  PROFILE_ROLE_CACHES = 1u << 5,
  PROFILE_ROLE_PG = 1u << 6,
};

typedef struct profile_timing {
  int ping_interval_ms;     /* T_ping: the SUT's keepalive period (Synapse 5000) */
  int ping_timeout_ms;      /* T_to: the SUT's receive timeout (Synapse 25000) */
  int reconnect_initial_ms; /* first reconnect delay (Synapse v1.8+: 100) */
  int reconnect_max_ms;     /* reconnect delay cap D_max (Synapse v1.8+: 1000) */
  int startup_timeout_ms;   /* how long to wait for readiness (default 10000) */
  int shutdown_grace_ms;    /* SIGTERM -> SIGKILL grace (default 5000) */
  int federation_delivery_ms; /* D: a federation transaction reaches its destination
                               * within D of the RDATA (PR-01: 5000); windows in which
                               * nothing may arrive last 2 D (PR-02: 10 s) */
} profile_timing_t;

/* What the Server header must match when a profile's "http" declares no
 * server_header_regex: Synapse's value, "Synapse/<version>[ (<git info>)]"
 * (requirements.md HT-03). */
#define PROFILE_DEFAULT_SERVER_HEADER_REGEX \
  "^Synapse/[0-9]+\\.[0-9]+\\.[0-9]+(\\.[0-9]+)?(rc[0-9]+)?( \\([^)]*\\))?$"

/* One expiring cache of the SUT ("caches": [...], role caches), for the cache suite. */
typedef struct profile_cache {
  char *name;          /* "name": the metrics label and the prune_cache_<name> suffix */
  int expiry_ms;       /* "expiry_ms": E, 0 = entries never expire by time (no reaper) */
  int max_len;         /* "max_len": size bound, 0 = unbounded */
  bool reset_on_get;   /* "reset_on_get": a read refreshes the entry's age */
  char *insert_stream; /* "insert.stream": the stream whose RDATA inserts an entry */
  char *insert_row;    /* "insert.row": template of the row JSON, with {n} */
  char *insert_key;    /* "insert.key": template of the inserted entry's key, with {n}; optional */
  char *read_url;      /* "read_url": template with {key}; a 200 means the key is cached; optional */
} profile_cache_t;

/* One account of the SUT's client API ("client.users", roles sync and client). */
typedef struct profile_user {
  char *user_id;      /* "@alice:test" */
  char *access_token; /* sent as "Authorization: Bearer <token>" */
  char *device_id;    /* optional (NULL) */
} profile_user_t;

/* One stream position the mock announces instead of its default ("positions"). */
typedef struct profile_position {
  char *stream;
  long long position;
} profile_position_t;

/* "database.schema": what each test database starts with. */
typedef enum profile_db_schema {
  PROFILE_DB_SCHEMA_REFWORKER = 0, /* "refworker": refworker's `events` and `stream_positions` */
  PROFILE_DB_SCHEMA_NONE,          /* "none": empty; the profile's setup step fills it */
} profile_db_schema_t;

typedef struct profile_opt_out {
  char *pattern; /* test id, or an fnmatch glob over ids (its * also spans /) */
  char *reason;  /* shown in the report as the skip reason */
} profile_opt_out_t;

/* "setup": a command the harness runs before the SUT (e.g. to prepare a database).
 * command is NULL when the profile has none. */
typedef struct profile_setup {
  char **command;       /* "setup.command": argv templates, NULL-terminated */
  size_t command_count;
  bool per_test;        /* "setup.per": "test" (before each test's SUT) or "run" (once) */
  int timeout_ms;       /* "setup.timeout_ms": deadline for the step */
  char *stop_on;        /* "setup.stop_on": ERE template; when the step's output matches,
                         * it has done its job and is stopped (SIGTERM); optional */
  char *config_template; /* "setup.config_template.source" (resolved like the SUT's); optional */
  char *config_output;   /* "setup.config_template.output": template of the file written */
} profile_setup_t;

#define PROFILE_SETUP_DEFAULT_TIMEOUT_MS 300000

/* Placeholders a per-run setup may use (no mock exists yet), NULL-terminated. */
extern const char *const PROFILE_SETUP_RUN_PLACEHOLDERS[];

typedef struct profile {
  char *path;         /* as given to profile_load */
  char *dir;          /* directory of the file, for {profile_dir} and relative paths */
  char *name;         /* "name": short human name */
  char *description;  /* optional */
  proto_dialect_t dialect;        /* "dialect": "2018" | "modern" */
  profile_transport_t transport;  /* "transport": "tcp" | "redis" (default tcp) */
  char *era;          /* "era": Synapse version the SUT emulates, e.g. "1.66" */
  int era_major;      /* "era" parsed: 1.66 -> 1, 66, 0 (patch 0 when absent) */
  int era_minor;
  int era_patch;
  char *instance_name;/* "instance_name": the SUT's NAME / instance (default "worker1") */
  unsigned roles;     /* "roles": ["worker", "fedsender", ...] (default worker) */

  char **command;     /* "command": argv templates, NULL-terminated, at least one */
  size_t command_count;
  char **env_names;   /* "env": object of name -> value template */
  char **env_values;
  size_t env_count;

  char *config_template;        /* "config_template.source": path (relative to dir), optional */
  char *config_output;          /* "config_template.output": template of the file to write */

  profile_readiness_kind_t readiness_kind; /* "readiness.kind" (default connect) */
  char *readiness_pattern;                 /* "readiness.pattern" (kind log) */

  char *log_path;                /* "log.path": template of the SUT's log file, optional */
  profile_log_format_t log_format; /* "log.format": "synapse-text" | "json-lines" */
  char *log_context_field;       /* "log.context_field": JSON key for json-lines ("request") */

  char *metrics_url;             /* "metrics.url": template, optional */
  char *http_url;                /* "http.url": template of the SUT's HTTP base URL, optional */
  char **http_paths;             /* "http.paths": paths the http suite requests, optional */
  size_t http_path_count;
  char *server_header;           /* "http.server_header_regex": optional (see
                                  * PROFILE_DEFAULT_SERVER_HEADER_REGEX) */
  profile_cache_t *caches;       /* "caches": [...] (role caches), optional */
  size_t cache_count;

  char **remote_args;            /* "fedsender.remote_args": argv templates appended once
                                  * per fake remote server, with {remote_name} and
                                  * {remote_url} (role fedsender); NULL-terminated */
  size_t remote_arg_count;

  profile_user_t *users;         /* "client.users" (roles sync, client): at least one */
  size_t user_count;
  char **user_args;              /* "client.user_args": argv templates appended once per
                                  * user, with {user_id}, {access_token}, {device_id};
                                  * NULL-terminated, or NULL when absent */
  size_t user_arg_count;

  profile_timing_t timing;       /* "timing": {...} */

  int db_pool_max;               /* "database.pool_max" (role pg): the SUT's connection
                                  * pool maximum, default 10 (profile_database.h) */
  profile_db_schema_t db_schema; /* "database.schema" (role pg): what the run's template
                                  * database holds before the setup step (default refworker) */

  profile_opt_out_t *opt_outs;   /* "opt_out": [{"test": ..., "reason": ...}] */
  size_t opt_out_count;

  profile_setup_t setup;         /* "setup": {...}, optional */
  profile_position_t *positions; /* "positions": {"stream": token, ...}, optional: where the
                                  * SUT's own state (its database) starts */
  size_t position_count;
} profile_t;

/* Loads and validates a profile. Returns NULL with err filled ("<path>: field 'x':
 * expected ...", or "<path>:<line>:<col>: JSON syntax error: ..."). */
profile_t *profile_load(const char *path, rc_error_t *err);
/* Frees everything. NULL is fine. */
void profile_destroy(profile_t *profile);

typedef struct profile_var {
  const char *name;  /* without braces: "repl_port" */
  const char *value;
} profile_var_t;

/* Expands {name} placeholders in template from vars. Returns a malloc'd string the
 * caller frees, or NULL with err naming the placeholder that has no value. */
char *profile_expand(const char *template_text, const profile_var_t *vars, size_t var_count,
                     rc_error_t *err);

/* The opt-out reason for a test id (first matching pattern, fnmatch rules), or NULL. */
const char *profile_opt_out_reason(const profile_t *profile, const char *test_id);

/* "tcp" / "redis". */
const char *profile_transport_name(profile_transport_t transport);

#endif
