/* refworker_options: refworker's command line.
 *
 * Parses argv into a refworker_options_t the caller owns (free with
 * refworker_options_free). Usage errors are returned, never printed or exited on here:
 * main() decides. Defaults are Synapse's constants for direct TCP replication v1.8-v1.66
 * (spec §3.1, §3.4). */
#ifndef REFWORKER_OPTIONS_H
#define REFWORKER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"
#include "rc_error.h"

#define REFWORKER_DEFAULT_INSTANCE "worker1"
#define REFWORKER_DEFAULT_PING_INTERVAL_MS 5000
#define REFWORKER_DEFAULT_PING_TIMEOUT_MS 25000
#define REFWORKER_DEFAULT_RECONNECT_INITIAL_MS 100
#define REFWORKER_DEFAULT_RECONNECT_MAX_MS 1000

typedef struct refworker_stream_option {
  char *name;
  int64_t token;
} refworker_stream_option_t;

typedef struct refworker_options {
  bool show_help;
  bool show_version;
  const char *host; /* strings borrowed from argv */
  const char *port;
  const char *server_name;
  proto_dialect_t dialect;
  const char *log_path;
  const char *instance_name;
  int64_t ping_interval_ms;
  int64_t ping_timeout_ms;
  int64_t reconnect_initial_ms;
  int64_t reconnect_max_ms;
  refworker_stream_option_t *streams; /* owned; the default set when none is given */
  size_t stream_count;
} refworker_options_t;

/* Returns 0 (check show_help/show_version first) or -1 with err saying which option is
 * wrong and why. On -1 the options may be partly filled: free them anyway. */
int refworker_options_parse(int argc, char **argv, refworker_options_t *options, rc_error_t *err);
void refworker_options_free(refworker_options_t *options);
void refworker_options_print_usage(FILE *out);

#endif
