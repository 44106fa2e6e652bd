/* refworker_options: refworker's command line.
 *
 * Parses argv into a refworker_options_t the caller owns (free with
 * refworker_options_free). Usage errors are returned, never printed or exited on here:
 * main() decides. Defaults are Synapse's constants (spec §3.1, §3.4, §6): direct TCP
 * v1.8-v1.66, or Redis when --redis is given. */
#ifndef REFWORKER_OPTIONS_H
#define REFWORKER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bugs.h"
#include "client_api.h"
#include "expiring_cache.h"
#include "fedsender.h"
#include "proto.h"
#include "rc_error.h"
#include "wlog.h"

#define REFWORKER_DEFAULT_INSTANCE "worker1"
#define REFWORKER_DEFAULT_PING_INTERVAL_MS 5000
#define REFWORKER_DEFAULT_PING_TIMEOUT_MS 25000
#define REFWORKER_DEFAULT_RECONNECT_INITIAL_MS 100
#define REFWORKER_DEFAULT_RECONNECT_MAX_MS 1000
#define REFWORKER_DEFAULT_HTTP_TIMEOUT_MS 10000
/* Redis (spec §3.4, §6): Twisted's initial delay; caps of Synapse's subscriber factory
 * and of txredisapi's publisher factory; the redis_ping period. */
#define REFWORKER_DEFAULT_REDIS_RECONNECT_INITIAL_MS 1000
#define REFWORKER_DEFAULT_REDIS_SUBSCRIBER_MAX_MS 5000
#define REFWORKER_DEFAULT_REDIS_PUBLISHER_MAX_MS 10000
#define REFWORKER_DEFAULT_REDIS_PING_INTERVAL_MS 30000

typedef struct refworker_stream_option {
  char *name;
  int64_t token; /* STREAM_POSITION_UNKNOWN (-1) when no =TOKEN was given */
} refworker_stream_option_t;

typedef struct refworker_options {
  bool show_help;
  bool show_version;
  bool list_bugs;   /* --list-bugs */
  const char *host; /* strings borrowed from argv */
  const char *port;
  char *redis_host; /* owned; set with --redis (then host and port are NULL) */
  int redis_port;
  const char *http_url; /* NULL: no HTTP catch-up (gaps are reported and adopted) */
  int64_t http_timeout_ms;
  const char *db_dsn; /* --db: PostgreSQL connection string, or NULL (no database) */
  const char *server_name;
  proto_dialect_t dialect;
  const char *log_path;
  wlog_format_t log_format; /* --log-format */
  const char *instance_name;
  int64_t ping_interval_ms;
  int64_t ping_timeout_ms;
  int64_t reconnect_initial_ms;
  int64_t reconnect_max_ms;       /* TCP; with --redis the subscriber's cap */
  int64_t redis_publisher_max_ms; /* --reconnect-max-ms sets both caps */
  int64_t redis_ping_interval_ms;
  refworker_stream_option_t *streams; /* owned; the default set when none is given, plus
                                       device_lists with --cache and events and
                                       federation with --fedsender */
  size_t stream_count;
  int http_port;                 /* -1: no HTTP listener; 0: any free port */
  expiring_cache_spec_t *caches; /* owned (--cache, repeatable) */
  size_t cache_count;
  bug_set_t bugs; /* --bug, repeatable */
  bool fedsender;
  fedsender_remote_t *remotes; /* owned (--remote, repeatable) */
  size_t remote_count;
  client_user_t *users; /* owned (--user, repeatable): the client API's accounts */
  size_t user_count;
  bool sync; /* --sync: presence enabled, /sync sends USER_SYNC */
} refworker_options_t;

/* Returns 0 (check show_help/show_version first) or -1 with err saying which option is
 * wrong and why. On -1 the options may be partly filled: free them anyway. */
int refworker_options_parse(int argc, char **argv, refworker_options_t *options, rc_error_t *err);
void refworker_options_free(refworker_options_t *options);
void refworker_options_print_usage(FILE *out);

#endif
