#include "refworker_options.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "http_catchup.h"
#include "stream_state.h"

/* Streams a plain worker consumes when none is named (the brief's default set). */
static const char *const default_streams[] = {"events", "caches", "typing", "presence"};

enum {
  OPT_HOST = 256,
  OPT_PORT,
  OPT_SERVER_NAME,
  OPT_DIALECT,
  OPT_LOG,
  OPT_LOG_FORMAT,
  OPT_INSTANCE_NAME,
  OPT_PING_INTERVAL,
  OPT_PING_TIMEOUT,
  OPT_RECONNECT_INITIAL,
  OPT_RECONNECT_MAX,
  OPT_STREAM,
  OPT_HTTP_URL,
  OPT_DB,
  OPT_HTTP_TIMEOUT,
  OPT_REDIS,
  OPT_REDIS_PING_INTERVAL,
  OPT_HTTP_PORT,
  OPT_CACHE,
  OPT_BUG,
  OPT_LIST_BUGS,
  OPT_FEDSENDER,
  OPT_REMOTE,
  OPT_USER,
  OPT_SYNC,
  OPT_VERSION,
  OPT_HELP,
};

void refworker_options_print_usage(FILE *out) {
  fprintf(out,
          "Usage: refworker (--host H --port P | --redis H:P) --server-name S\n"
          "                 --dialect 2018|modern --log PATH [options]\n"
          "       refworker --list-bugs | --help | --version\n"
          "\n"
          "The replcheck reference worker: a correct worker (SUT) side of Synapse's\n"
          "replication protocol. It connects to the main process at H:P over direct TCP, or\n"
          "talks to it through Redis pub/sub, keeps the connection alive, applies RDATA and\n"
          "POSITION, fetches missed rows over HTTP and reconnects after any loss.\n"
          "\n"
          "Required:\n"
          "  --host H                   replication host (name or address) of the main process\n"
          "  --port P                   its replication TCP port (1-65535)\n"
          "  --redis H:P                instead of --host/--port: replicate over the Redis\n"
          "                             server at H:P (modern dialect only), on the channel\n"
          "                             named exactly like --server-name; answers every\n"
          "                             REPLICATE with POSITION caches <instance> N N\n"
          "  --server-name S            homeserver name (the main's SERVER line; the channel)\n"
          "  --dialect 2018|modern      wire dialect: 2018 (Synapse <= v1.12) or modern (v1.13+)\n"
          "  --log PATH                 log file (appended), Synapse's default text format\n"
          "  --log-format FORMAT        synapse-text (default), synapse-text-pre-v0.27 (the\n"
          "                             '<context>- <message>' of older configs) or json-lines\n"
          "\n"
          "Options (defaults are Synapse's constants):\n"
          "  --instance-name NAME       sent as NAME; own instance name (default %s)\n"
          "  --http-url URL             the main's replication HTTP base (http://host:port):\n"
          "                             modern POSITION gaps are fetched from its\n"
          "                             get_repl_stream_updates endpoint; without it a gap is\n"
          "                             logged and the new position adopted\n"
          "  --http-timeout-ms N        deadline of each catch-up request (default %d)\n"
          "  --db DSN                   PostgreSQL (libpq connection string): read the events\n"
          "                             table at start-up, store stream positions (each\n"
          "                             transaction charged to its background process)\n"
          "  --ping-interval-ms N       keepalive period and idle time before a PING (default %d)\n"
          "  --ping-timeout-ms N        close after N ms without a valid command, once the\n"
          "                             main has sent a PING (default %d)\n"
          "  --reconnect-initial-ms N   initial reconnect delay (default %d; Redis %d)\n"
          "  --reconnect-max-ms N       reconnect delay cap (default %d; Redis: %d for the\n"
          "                             subscriber, %d for the publisher; given, it caps both)\n"
          "  --redis-ping-interval-ms N Redis-protocol PING period on each Redis connection,\n"
          "                             also the publisher's reply timeout (default %d)\n"
          "  --stream NAME[=TOKEN]      consume stream NAME from position TOKEN; repeatable.\n"
          "                             Without TOKEN: modern takes the writer's first\n"
          "                             POSITION as its position (as a worker whose database\n"
          "                             is current), 2018 starts at 0. Default: events\n"
          "                             caches typing presence, without tokens\n"
          "  --http-port PORT           serve HTTP on 127.0.0.1:PORT (0: any free port):\n"
          "                             /metrics (Prometheus), /health, the cache read\n"
          "                             endpoint /_refworker/cache/NAME/KEY, /_refworker/fail\n"
          "  --cache NAME:EXPIRY_MS:MAX_LEN[:reset-on-get]\n"
          "                             an expiring cache, repeatable: filled from\n"
          "                             device_lists rows (key: the user id), reaped every\n"
          "                             EXPIRY_MS/2 (0: never), at most MAX_LEN entries\n"
          "                             (0: unbounded); adds the device_lists stream\n"
          "  --fedsender                the federation sender role: presence from\n"
          "                             federation rows is sent to the servers sharing a\n"
          "                             room (membership from events rows), EDU rows to\n"
          "                             their destination, and FEDERATION_ACK'd (with\n"
          "                             --db once stored in federation_stream_position);\n"
          "                             adds the events and federation streams\n"
          "  --remote NAME=URL          a remote server's federation base URL (repeatable)\n"
          "  --user USER_ID=TOKEN[=DEVICE_ID]\n"
          "                             an account of the client API (repeatable; needs\n"
          "                             --http-port): GET /_matrix/client/{r0,v3}/sync and\n"
          "                             .../account/whoami with that access token; each\n"
          "                             (user, token, IP) is reported with USER_IP at most\n"
          "                             once per 120 s\n"
          "  --sync                     the sync role: presence enabled, a /sync not\n"
          "                             set_presence=offline sends USER_SYNC start, and end\n"
          "                             12 s after the user's last sync ended (needs --user)\n"
          "  --bug NAME                 re-introduce a known bug (repeatable; --list-bugs)\n"
          "  --list-bugs                print NAME<TAB>SEED<TAB>description per bug, exit\n"
          "  --version                  print the version and exit\n"
          "  --help                     print this help and exit\n"
          "\n"
          "SIGTERM or SIGINT closes the connections in order and exits with status 0.\n"
          "Exit status: 0 after a shutdown, 1 on a runtime failure, 2 on bad usage.\n",
          REFWORKER_DEFAULT_INSTANCE, REFWORKER_DEFAULT_HTTP_TIMEOUT_MS,
          REFWORKER_DEFAULT_PING_INTERVAL_MS, REFWORKER_DEFAULT_PING_TIMEOUT_MS,
          REFWORKER_DEFAULT_RECONNECT_INITIAL_MS, REFWORKER_DEFAULT_REDIS_RECONNECT_INITIAL_MS,
          REFWORKER_DEFAULT_RECONNECT_MAX_MS, REFWORKER_DEFAULT_REDIS_SUBSCRIBER_MAX_MS,
          REFWORKER_DEFAULT_REDIS_PUBLISHER_MAX_MS, REFWORKER_DEFAULT_REDIS_PING_INTERVAL_MS);
}

/* Strict decimal: digits only (optionally '-' when allowed), no trailing junk. */
static int parse_int64(const char *text, int64_t *out) {
  if (text == NULL || text[0] == '\0') return -1;
  const char *p = text[0] == '-' ? text + 1 : text;
  if (*p == '\0') return -1;
  for (; *p != '\0'; p++)
    if (*p < '0' || *p > '9') return -1;
  errno = 0;
  char *end = NULL;
  long long value = strtoll(text, &end, 10);
  if (errno != 0 || end == NULL || *end != '\0') return -1;
  *out = (int64_t)value;
  return 0;
}

static int parse_positive_ms(const char *option, const char *text, int64_t *out, rc_error_t *err) {
  int64_t value;
  /* A day is far beyond any sensible keepalive or backoff; it also keeps timevals sane. */
  if (parse_int64(text, &value) != 0 || value <= 0 || value > 86400000)
    return rc_error_set(err, "%s: expected a whole number of milliseconds in 1..86400000, got '%s'",
                        option, text);
  *out = value;
  return 0;
}

static int add_stream(refworker_options_t *options, const char *name, size_t name_len,
                      int64_t token, rc_error_t *err) {
  refworker_stream_option_t *grown =
      realloc(options->streams, (options->stream_count + 1) * sizeof *grown);
  if (grown == NULL) return rc_error_set(err, "--stream: out of memory");
  options->streams = grown;
  char *copy = strndup(name, name_len);
  if (copy == NULL) return rc_error_set(err, "--stream: out of memory");
  options->streams[options->stream_count].name = copy;
  options->streams[options->stream_count].token = token;
  options->stream_count++;
  return 0;
}

static int parse_stream(refworker_options_t *options, const char *text, rc_error_t *err) {
  const char *eq = strchr(text, '=');
  size_t name_len = eq != NULL ? (size_t)(eq - text) : strlen(text);
  if (name_len == 0) return rc_error_set(err, "--stream '%s': the stream name is empty", text);
  for (size_t i = 0; i < name_len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c <= ' ' || c == 0x7f)
      return rc_error_set(err,
                          "--stream '%s': the stream name must not contain spaces or "
                          "control characters",
                          text);
  }
  for (size_t i = 0; i < options->stream_count; i++)
    if (strlen(options->streams[i].name) == name_len &&
        memcmp(options->streams[i].name, text, name_len) == 0)
      return rc_error_set(err, "--stream '%s': stream %.*s is given twice", text, (int)name_len,
                          text);
  int64_t token = STREAM_POSITION_UNKNOWN;
  if (eq != NULL && (parse_int64(eq + 1, &token) != 0 || token < 0))
    return rc_error_set(err, "--stream '%s': the token must be a non-negative decimal integer",
                        text);
  return add_stream(options, text, name_len, token, err);
}

/* Adds a stream (at an unknown position) unless it is consumed already. */
static int ensure_stream(refworker_options_t *options, const char *name, rc_error_t *err) {
  for (size_t i = 0; i < options->stream_count; i++)
    if (strcmp(options->streams[i].name, name) == 0) return 0;
  return add_stream(options, name, strlen(name), STREAM_POSITION_UNKNOWN, err);
}

static int add_cache(refworker_options_t *options, const char *text, rc_error_t *err) {
  expiring_cache_spec_t spec;
  if (expiring_cache_parse_spec(text, &spec, err) != 0) return -1;
  for (size_t i = 0; i < options->cache_count; i++)
    if (strcmp(options->caches[i].name, spec.name) == 0)
      return rc_error_set(err, "--cache '%s': cache %s is given twice", text, spec.name);
  expiring_cache_spec_t *grown =
      realloc(options->caches, (options->cache_count + 1) * sizeof *grown);
  if (grown == NULL) return rc_error_set(err, "--cache: out of memory");
  options->caches = grown;
  options->caches[options->cache_count++] = spec;
  return 0;
}

static int add_user(refworker_options_t *options, const char *text, rc_error_t *err) {
  client_user_t user;
  if (client_user_parse(text, &user, err) != 0) return -1;
  for (size_t i = 0; i < options->user_count; i++) {
    if (strcmp(options->users[i].access_token, user.access_token) == 0) {
      rc_error_set(err, "--user '%s': access token %s is given twice", text, user.access_token);
      client_user_free(&user);
      return -1;
    }
  }
  client_user_t *grown = realloc(options->users, (options->user_count + 1) * sizeof *grown);
  if (grown == NULL) {
    client_user_free(&user);
    return rc_error_set(err, "--user: out of memory");
  }
  options->users = grown;
  options->users[options->user_count++] = user;
  return 0;
}

static int add_remote(refworker_options_t *options, const char *text, rc_error_t *err) {
  fedsender_remote_t remote;
  if (fedsender_parse_remote(text, &remote, err) != 0) return -1;
  for (size_t i = 0; i < options->remote_count; i++) {
    if (strcmp(options->remotes[i].name, remote.name) == 0) {
      rc_error_set(err, "--remote '%s': server %s is given twice", text, remote.name);
      fedsender_remote_free(&remote);
      return -1;
    }
  }
  fedsender_remote_t *grown =
      realloc(options->remotes, (options->remote_count + 1) * sizeof *grown);
  if (grown == NULL) {
    fedsender_remote_free(&remote);
    return rc_error_set(err, "--remote: out of memory");
  }
  options->remotes = grown;
  options->remotes[options->remote_count++] = remote;
  return 0;
}

/* HOST:PORT, the host possibly a bracketed IPv6 literal ("[::1]:6379"). */
static int parse_redis(refworker_options_t *options, const char *text, rc_error_t *err) {
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text)
    return rc_error_set(err, "--redis: expected HOST:PORT, got '%s'", text);
  const char *host = text;
  size_t host_len = (size_t)(colon - text);
  if (host[0] == '[') {
    if (host_len < 3 || host[host_len - 1] != ']')
      return rc_error_set(err, "--redis: expected [IPV6]:PORT, got '%s'", text);
    host++;
    host_len -= 2;
  }
  int64_t port;
  if (parse_int64(colon + 1, &port) != 0 || port < 1 || port > 65535)
    return rc_error_set(err, "--redis '%s': the port must be in 1..65535", text);
  free(options->redis_host);
  options->redis_host = strndup(host, host_len);
  if (options->redis_host == NULL) return rc_error_set(err, "--redis: out of memory");
  options->redis_port = (int)port;
  return 0;
}

int refworker_options_parse(int argc, char **argv, refworker_options_t *options, rc_error_t *err) {
  static const struct option long_options[] = {
      {"host", required_argument, NULL, OPT_HOST},
      {"port", required_argument, NULL, OPT_PORT},
      {"server-name", required_argument, NULL, OPT_SERVER_NAME},
      {"dialect", required_argument, NULL, OPT_DIALECT},
      {"log", required_argument, NULL, OPT_LOG},
      {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
      {"instance-name", required_argument, NULL, OPT_INSTANCE_NAME},
      {"ping-interval-ms", required_argument, NULL, OPT_PING_INTERVAL},
      {"ping-timeout-ms", required_argument, NULL, OPT_PING_TIMEOUT},
      {"reconnect-initial-ms", required_argument, NULL, OPT_RECONNECT_INITIAL},
      {"reconnect-max-ms", required_argument, NULL, OPT_RECONNECT_MAX},
      {"stream", required_argument, NULL, OPT_STREAM},
      {"http-url", required_argument, NULL, OPT_HTTP_URL},
      {"db", required_argument, NULL, OPT_DB},
      {"http-timeout-ms", required_argument, NULL, OPT_HTTP_TIMEOUT},
      {"redis", required_argument, NULL, OPT_REDIS},
      {"redis-ping-interval-ms", required_argument, NULL, OPT_REDIS_PING_INTERVAL},
      {"http-port", required_argument, NULL, OPT_HTTP_PORT},
      {"cache", required_argument, NULL, OPT_CACHE},
      {"bug", required_argument, NULL, OPT_BUG},
      {"list-bugs", no_argument, NULL, OPT_LIST_BUGS},
      {"fedsender", no_argument, NULL, OPT_FEDSENDER},
      {"remote", required_argument, NULL, OPT_REMOTE},
      {"user", required_argument, NULL, OPT_USER},
      {"sync", no_argument, NULL, OPT_SYNC},
      {"version", no_argument, NULL, OPT_VERSION},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  memset(options, 0, sizeof *options);
  options->instance_name = REFWORKER_DEFAULT_INSTANCE;
  options->ping_interval_ms = REFWORKER_DEFAULT_PING_INTERVAL_MS;
  options->ping_timeout_ms = REFWORKER_DEFAULT_PING_TIMEOUT_MS;
  options->reconnect_initial_ms = REFWORKER_DEFAULT_RECONNECT_INITIAL_MS;
  options->reconnect_max_ms = REFWORKER_DEFAULT_RECONNECT_MAX_MS;
  options->http_timeout_ms = REFWORKER_DEFAULT_HTTP_TIMEOUT_MS;
  options->redis_ping_interval_ms = REFWORKER_DEFAULT_REDIS_PING_INTERVAL_MS;
  options->http_port = -1;
  bool initial_given = false, max_given = false;

  opterr = 0; /* errors are reported through err, with the option named */
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
    int rc = 0;
    switch (c) {
      case OPT_HOST:
        options->host = optarg;
        break;
      case OPT_PORT: {
        int64_t port;
        if (parse_int64(optarg, &port) != 0 || port < 1 || port > 65535)
          rc = rc_error_set(err, "--port: expected a TCP port in 1..65535, got '%s'", optarg);
        else
          options->port = optarg;
        break;
      }
      case OPT_SERVER_NAME:
        options->server_name = optarg;
        break;
      case OPT_DIALECT:
        if (proto_dialect_from_name(optarg, &options->dialect) != 0)
          rc = rc_error_set(err, "--dialect: expected '2018' or 'modern', got '%s'", optarg);
        break;
      case OPT_LOG:
        options->log_path = optarg;
        break;
      case OPT_LOG_FORMAT:
        if (wlog_format_from_name(optarg, &options->log_format) != 0)
          rc = rc_error_set(err,
                            "--log-format: expected synapse-text, synapse-text-pre-v0.27 or "
                            "json-lines, got '%s'",
                            optarg);
        break;
      case OPT_INSTANCE_NAME:
        options->instance_name = optarg;
        break;
      case OPT_PING_INTERVAL:
        rc = parse_positive_ms("--ping-interval-ms", optarg, &options->ping_interval_ms, err);
        break;
      case OPT_PING_TIMEOUT:
        rc = parse_positive_ms("--ping-timeout-ms", optarg, &options->ping_timeout_ms, err);
        break;
      case OPT_RECONNECT_INITIAL:
        rc = parse_positive_ms("--reconnect-initial-ms", optarg, &options->reconnect_initial_ms,
                               err);
        initial_given = true;
        break;
      case OPT_RECONNECT_MAX:
        rc = parse_positive_ms("--reconnect-max-ms", optarg, &options->reconnect_max_ms, err);
        max_given = true;
        break;
      case OPT_STREAM:
        rc = parse_stream(options, optarg, err);
        break;
      case OPT_HTTP_URL:
        options->http_url = optarg;
        break;
      case OPT_DB:
        options->db_dsn = optarg;
        break;
      case OPT_HTTP_TIMEOUT:
        rc = parse_positive_ms("--http-timeout-ms", optarg, &options->http_timeout_ms, err);
        break;
      case OPT_REDIS:
        rc = parse_redis(options, optarg, err);
        break;
      case OPT_REDIS_PING_INTERVAL:
        rc = parse_positive_ms("--redis-ping-interval-ms", optarg, &options->redis_ping_interval_ms,
                               err);
        break;
      case OPT_HTTP_PORT: {
        int64_t port;
        if (parse_int64(optarg, &port) != 0 || port < 0 || port > 65535)
          rc = rc_error_set(err, "--http-port: expected a TCP port in 0..65535, got '%s'", optarg);
        else
          options->http_port = (int)port;
        break;
      }
      case OPT_CACHE:
        rc = add_cache(options, optarg, err);
        break;
      case OPT_BUG:
        rc = bugs_add(&options->bugs, optarg, err);
        break;
      case OPT_LIST_BUGS:
        options->list_bugs = true;
        break;
      case OPT_FEDSENDER:
        options->fedsender = true;
        break;
      case OPT_REMOTE:
        rc = add_remote(options, optarg, err);
        break;
      case OPT_USER:
        rc = add_user(options, optarg, err);
        break;
      case OPT_SYNC:
        options->sync = true;
        break;
      case OPT_VERSION:
        options->show_version = true;
        break;
      case OPT_HELP:
        options->show_help = true;
        break;
      case ':':
        rc = rc_error_set(err, "%s: missing value", argv[optind - 1]);
        break;
      default:
        rc = rc_error_set(err, "unknown option '%s'", argv[optind - 1]);
        break;
    }
    if (rc != 0) return -1;
  }
  if (optind < argc) return rc_error_set(err, "unexpected argument '%s'", argv[optind]);
  if (options->show_help || options->show_version || options->list_bugs) return 0;

  bool redis = options->redis_host != NULL;
  if (redis && (options->host != NULL || options->port != NULL))
    return rc_error_set(err, "--redis replaces --host and --port: give one or the other");
  const struct {
    const char *value;
    const char *name;
  } required[] = {{redis ? "redis" : options->host, "--host (or --redis)"},
                  {redis ? "redis" : options->port, "--port (or --redis)"},
                  {options->server_name, "--server-name"},
                  {options->log_path, "--log"}};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    if (required[i].value == NULL || required[i].value[0] == '\0')
      return rc_error_set(err, "%s is required", required[i].name);
  if (options->dialect == 0) return rc_error_set(err, "--dialect is required");
  if (redis && options->dialect != PROTO_DIALECT_MODERN)
    return rc_error_set(err, "--redis needs --dialect modern (Redis came with v1.13)");
  if (options->http_url != NULL && options->dialect != PROTO_DIALECT_MODERN)
    return rc_error_set(err, "--http-url needs --dialect modern (2018 catches up over TCP)");
  if (options->http_url != NULL && http_catchup_check_url(options->http_url, err) != 0) return -1;
  if (redis) {
    /* Synapse's Redis factories unless told otherwise; a given cap applies to both. */
    if (!initial_given)
      options->reconnect_initial_ms = REFWORKER_DEFAULT_REDIS_RECONNECT_INITIAL_MS;
    if (!max_given) options->reconnect_max_ms = REFWORKER_DEFAULT_REDIS_SUBSCRIBER_MAX_MS;
    options->redis_publisher_max_ms =
        max_given ? options->reconnect_max_ms : REFWORKER_DEFAULT_REDIS_PUBLISHER_MAX_MS;
    if (options->reconnect_initial_ms > options->redis_publisher_max_ms)
      options->redis_publisher_max_ms = options->reconnect_initial_ms;
  }
  if (options->instance_name[0] == '\0' || strpbrk(options->instance_name, " \t\r\n") != NULL)
    return rc_error_set(err, "--instance-name: must be non-empty and without whitespace, got '%s'",
                        options->instance_name);
  if (strpbrk(options->server_name, "\r\n") != NULL)
    return rc_error_set(err, "--server-name: must be one line");
  if (options->reconnect_max_ms < options->reconnect_initial_ms)
    return rc_error_set(
        err, "--reconnect-max-ms (%" PRId64 ") is below --reconnect-initial-ms (%" PRId64 ")",
        options->reconnect_max_ms, options->reconnect_initial_ms);
  if (options->remote_count > 0 && !options->fedsender)
    return rc_error_set(err, "--remote needs --fedsender");
  static const bug_t FEDSENDER_BUGS[] = {BUG_PRESENCE_PER_DESTINATION,
                                         BUG_FEDERATION_QUEUE_NEWEST_FIRST,
                                         BUG_FEDERATION_UNKNOWN_ROW_ABORTS,
                                         BUG_FEDERATION_POSITION_ERROR_ACKED,
                                         BUG_PRESENCE_FOREIGN_USERS,
                                         BUG_PRESENCE_LEAVE_IGNORED,
                                         BUG_PRESENCE_FAILURE_BLOCKS,
                                         BUG_PRESENCE_NO_ORIGIN};
  for (size_t i = 0; i < sizeof FEDSENDER_BUGS / sizeof FEDSENDER_BUGS[0]; i++)
    if (bugs_has(options->bugs, FEDSENDER_BUGS[i]) && !options->fedsender)
      return rc_error_set(err, "--bug %s needs --fedsender", bugs_name(FEDSENDER_BUGS[i]));
  if (bugs_has(options->bugs, BUG_FEDERATION_POSITION_ERROR_ACKED) && options->db_dsn == NULL)
    return rc_error_set(err, "--bug federation-position-error-acked needs --db");
  if (options->user_count > 0 && options->http_port < 0)
    return rc_error_set(err, "--user needs --http-port (the client API is served there)");
  if (options->sync && options->user_count == 0)
    return rc_error_set(err, "--sync needs at least one --user");
  if ((bugs_has(options->bugs, BUG_NO_USER_SYNC_ON_RECONNECT) ||
       bugs_has(options->bugs, BUG_USER_SYNC_END_IMMEDIATELY)) &&
      !options->sync)
    return rc_error_set(err, "--bug %s needs --sync",
                        bugs_name(bugs_has(options->bugs, BUG_NO_USER_SYNC_ON_RECONNECT)
                                      ? BUG_NO_USER_SYNC_ON_RECONNECT
                                      : BUG_USER_SYNC_END_IMMEDIATELY));
  if (bugs_has(options->bugs, BUG_USER_IP_EVERY_REQUEST) && options->user_count == 0)
    return rc_error_set(err, "--bug user-ip-every-request needs --user");
  if (options->stream_count == 0)
    for (size_t i = 0; i < sizeof default_streams / sizeof default_streams[0]; i++)
      if (add_stream(options, default_streams[i], strlen(default_streams[i]),
                     STREAM_POSITION_UNKNOWN, err) != 0)
        return -1;
  /* The roles' inputs are consumed whatever --stream said. */
  if (options->cache_count > 0 && ensure_stream(options, "device_lists", err) != 0) return -1;
  if (options->fedsender && (ensure_stream(options, "events", err) != 0 ||
                             ensure_stream(options, "federation", err) != 0))
    return -1;
  return 0;
}

void refworker_options_free(refworker_options_t *options) {
  if (options == NULL) return;
  free(options->caches);
  options->caches = NULL;
  options->cache_count = 0;
  for (size_t i = 0; i < options->remote_count; i++) fedsender_remote_free(&options->remotes[i]);
  free(options->remotes);
  options->remotes = NULL;
  options->remote_count = 0;
  for (size_t i = 0; i < options->user_count; i++) client_user_free(&options->users[i]);
  free(options->users);
  options->users = NULL;
  options->user_count = 0;
  for (size_t i = 0; i < options->stream_count; i++) free(options->streams[i].name);
  free(options->streams);
  options->streams = NULL;
  free(options->redis_host);
  options->redis_host = NULL;
  options->stream_count = 0;
}
