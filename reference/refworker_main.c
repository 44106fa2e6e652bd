/* refworker: the replcheck reference worker. main() wires the parts together: options,
 * the log, the event base, signal handling, the metrics and background processes, the
 * stream state and what consumes its units (expiring caches, the federation sender), the
 * HTTP catch-up client, the stream handler, one transport (direct TCP or Redis) and the
 * HTTP listener. Only main() decides the exit status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>

#include "bgprocess.h"
#include "bugs.h"
#include "client_api.h"
#include "client_ips.h"
#include "db_store.h"
#include "fed_position.h"
#include "fedsender.h"
#include "http_catchup.h"
#include "http_server.h"
#include "metrics.h"
#include "presence_sync.h"
#include "redis_transport.h"
#include "refworker_options.h"
#include "repl_client.h"
#include "stream_handler.h"
#include "stream_state.h"
#include "wlog.h"
#include "worker_caches.h"

#define WLOG_LOGGER "synapse.app.refworker"

#ifndef REPLCHECK_VERSION
#define REPLCHECK_VERSION "unknown"
#endif

/* Bound on the orderly close at shutdown: CL-05 wants the process gone within 10 s. */
#define REFWORKER_SHUTDOWN_GRACE_MS 5000
/* --bug http-conn-open-on-shutdown: how long the stopped process lingers with its HTTP
 * connections open. Below the bundled profiles' shutdown grace (3 s), so only the HTTP
 * check of CL-05 sees it, not the exit check. */
#define REFWORKER_BUG_LINGER_MS 2000

typedef struct refworker {
  const refworker_options_t *options;
  struct event_base *base;
  metrics_t *metrics;
  bgprocess_table_t *processes;
  worker_caches_t *caches;
  fedsender_t *fedsender; /* --fedsender only */
  stream_state_t *streams;
  http_catchup_t *http; /* --http-url only */
  stream_handler_t *handler;
  repl_client_t *client;      /* direct TCP, or */
  redis_transport_t *redis;   /* Redis */
  http_server_t *http_server; /* --http-port only */
  db_store_t *db;             /* --db only */
  presence_sync_t *presence;  /* --sync only */
  client_ips_t *ips;          /* --user only */
  client_api_t *client_api;   /* --user only */
  fed_position_t *fed_position; /* --fedsender with --db only */
  struct event *sigterm;
  struct event *sigint;
} refworker_t;

static void refworker_stopped(void *arg) {
  refworker_t *worker = arg;
  event_base_loopexit(worker->base, NULL);
}

static void refworker_signal_cb(evutil_socket_t signum, short what, void *arg) {
  (void)what;
  wlog_callback_begin();
  refworker_t *worker = arg;
  WLOG_INFO("Received %s, shutting down.", signum == SIGINT ? "SIGINT" : "SIGTERM");
  WLOG_INFO("Shutting down");
  /* handlers/presence.py _on_shutdown: the presence writer forgets our syncing users. */
  if (worker->presence != NULL) presence_sync_clear(worker->presence);
  if (worker->redis != NULL)
    redis_transport_shutdown(worker->redis, REFWORKER_SHUTDOWN_GRACE_MS, refworker_stopped, worker);
  else
    repl_client_shutdown(worker->client, REFWORKER_SHUTDOWN_GRACE_MS, refworker_stopped, worker);
}

/* libevent's own warnings (evhttp's connect failures, ...) go to our log, not stderr. */
static void refworker_libevent_log(int severity, const char *msg) {
  wlog_level_t level = severity >= EVENT_LOG_ERR    ? WLOG_LEVEL_ERROR
                       : severity == EVENT_LOG_WARN ? WLOG_LEVEL_WARNING
                                                    : WLOG_LEVEL_DEBUG;
  wlog_write("libevent", 0, level, "%s", msg);
}

static struct event_base *refworker_make_base(void) {
  struct event_config *config = event_config_new();
  if (config == NULL) return NULL;
  /* Keepalive ticks compare intervals in milliseconds; the coarse clock would blur them. */
  event_config_set_flag(config, EVENT_BASE_FLAG_PRECISE_TIMER);
  struct event_base *base = event_base_new_with_config(config);
  event_config_free(config);
  return base;
}

/* The stream position reached, in the database (--db), in the handler's logcontext;
 * the handler-in-sentinel-db bug loses the context first, as a handler not run as a
 * background process would (seed C). */
static void refworker_store_position(refworker_t *worker, const stream_unit_t *unit) {
  const char *instance = unit->instance[0] != '\0' ? unit->instance : "master";
  if (!bugs_has(worker->options->bugs, BUG_HANDLER_IN_SENTINEL_DB)) {
    db_store_save_position(worker->db, unit->stream, instance, unit->token);
    return;
  }
  char context[128];
  snprintf(context, sizeof context, "%s", wlog_context_current());
  wlog_context_reset();
  db_store_save_position(worker->db, unit->stream, instance, unit->token);
  wlog_context_enter(context);
}

/* Every applied unit goes to the roles that read rows. */
static void refworker_on_unit(void *arg, const stream_unit_t *unit) {
  refworker_t *worker = arg;
  if (worker->caches != NULL) worker_caches_on_unit(worker->caches, unit);
  if (worker->fedsender != NULL) fedsender_on_unit(worker->fedsender, unit);
  if (worker->db != NULL) refworker_store_position(worker, unit);
}

/* A command for the main, over whichever transport there is. */
static void refworker_send(void *arg, const proto_command_t *cmd) {
  refworker_t *worker = arg;
  if (worker->redis != NULL)
    redis_transport_send(worker->redis, cmd);
  else if (worker->client != NULL)
    repl_client_send(worker->client, cmd);
}

/* FEDERATION_ACK token to the main, over whichever transport is in use. */
static void refworker_emit_ack(refworker_t *worker, int64_t token) {
  proto_command_t cmd = {.kind = PROTO_CMD_FEDERATION_ACK,
                         .instance = proto_slice_cstr(worker->options->instance_name),
                         .token = token};
  refworker_send(worker, &cmd);
}

static void refworker_send_on_conn(void *arg, const proto_command_t *cmd) {
  repl_conn_send(arg, cmd);
}

/* A new TCP connection: its opening repeats the syncing users (HS-08). */
static void refworker_on_opening(void *arg, repl_conn_t *conn) {
  refworker_t *worker = arg;
  if (worker->presence != NULL)
    presence_sync_announce(worker->presence, refworker_send_on_conn, conn);
}

/* A new Redis subscription: likewise, before its REPLICATE. */
static void refworker_on_subscribed(void *arg) {
  refworker_t *worker = arg;
  if (worker->presence != NULL) presence_sync_announce(worker->presence, refworker_send, worker);
}

/* The federation sender has handled the federation rows up to token: with a database
 * the position is stored first and acknowledged once stored (fed_position.h). */
static void refworker_send_ack(void *arg, int64_t token) {
  refworker_t *worker = arg;
  if (worker->fed_position != NULL)
    fed_position_save(worker->fed_position, token);
  else
    refworker_emit_ack(worker, token);
}

/* A federation position write has ended (fed_position_done_fn), in a background process
 * as Synapse's _save_and_send_ack: acknowledged when stored; a failure is logged with its
 * traceback (logger.exception) and not acknowledged. */
static void refworker_position_saved(void *arg, int64_t token, const char *error) {
  refworker_t *worker = arg;
  bgprocess_t *run = bgprocess_start(worker->processes, BGPROCESS_TASK, "_save_and_send_ack");
  bgprocess_enter(run);
  if (error == NULL) {
    refworker_emit_ack(worker, token);
  } else if (bugs_has(worker->options->bugs, BUG_FEDERATION_POSITION_ERROR_ACKED)) {
    wlog_write("synapse.storage._base", __LINE__, WLOG_LEVEL_WARNING,
               "[TXN FAIL] {update_federation_out_pos} %s", error);
    refworker_emit_ack(worker, token);
  } else {
    handler_error_t exception;
    HANDLER_RAISE(&exception, "psycopg2.Error", "%s", error);
    char traceback[RC_ERROR_MAX + 512];
    handler_error_traceback(&exception, traceback, sizeof traceback);
    wlog_write_detail("synapse.replication.tcp.client", __LINE__, WLOG_LEVEL_ERROR, traceback,
                      "Error updating federation stream position");
  }
  bgprocess_finish(run);
  wlog_callback_end();
}

static int refworker_make_transport(refworker_t *worker, const refworker_options_t *options,
                                    stream_state_t *streams, stream_handler_t *handler,
                                    rc_error_t *err) {
  if (options->redis_host != NULL) {
    redis_transport_config_t config = {
        .host = options->redis_host,
        .port = options->redis_port,
        .channel = options->server_name,
        .instance_name = options->instance_name,
        .reconnect_initial_ms = options->reconnect_initial_ms,
        .subscriber_max_ms = options->reconnect_max_ms,
        .publisher_max_ms = options->redis_publisher_max_ms,
        .ping_interval_ms = options->redis_ping_interval_ms,
        .leak_socket_on_loss = bugs_has(options->bugs, BUG_REDIS_SOCKET_LEAK),
        .on_subscribed = refworker_on_subscribed,
        .on_subscribed_arg = worker,
        .bugs = options->bugs,
    };
    worker->redis = redis_transport_create(worker->base, &config, streams, handler, err);
    return worker->redis != NULL ? 0 : -1;
  }
  repl_client_config_t config = {
      .host = options->host,
      .port = options->port,
      .reconnect_initial_ms = options->reconnect_initial_ms,
      .reconnect_max_ms = options->reconnect_max_ms,
      .conn =
          {
              .dialect = options->dialect,
              .instance_name = options->instance_name,
              .server_name = options->server_name,
              .ping_interval_ms = options->ping_interval_ms,
              .ping_timeout_ms = options->ping_timeout_ms,
              .processes = worker->processes,
              .bugs = options->bugs,
              .on_opening = refworker_on_opening,
              .on_opening_arg = worker,
          },
  };
  worker->client = repl_client_create(worker->base, &config, streams, handler, err);
  return worker->client != NULL ? 0 : -1;
}

/* The roles and services around the stream state: metrics, background processes,
 * caches, the federation sender, the stream state itself. */
static int refworker_make_roles(refworker_t *worker, const refworker_options_t *options,
                                rc_error_t *err) {
  worker->metrics = metrics_create(
      options->dialect == PROTO_DIALECT_2018 ? METRICS_STYLE_2018 : METRICS_STYLE_MODERN, err);
  if (worker->metrics == NULL) return -1;
  worker->processes = bgprocess_table_create(worker->base, worker->metrics, options->bugs, err);
  if (worker->processes == NULL) return -1;
  worker->caches =
      worker_caches_create(worker->base, options->caches, options->cache_count, worker->metrics,
                           worker->processes, bugs_has(options->bugs, BUG_CACHE_NEEDS_START), err);
  if (worker->caches == NULL) return -1;
  if (options->fedsender) {
    fedsender_config_t config = {.server_name = options->server_name,
                                 .remotes = options->remotes,
                                 .remote_count = options->remote_count,
                                 .timeout_ms = options->http_timeout_ms,
                                 .bugs = options->bugs};
    worker->fedsender = fedsender_create(worker->base, &config, refworker_send_ack, worker, err);
    if (worker->fedsender == NULL) return -1;
    if (options->db_dsn != NULL &&
        (worker->fed_position =
             fed_position_create(worker->base, options->db_dsn, options->instance_name,
                                 refworker_position_saved, worker, err)) == NULL)
      return -1;
  }
  if (options->sync) {
    presence_sync_config_t config = {.dialect = options->dialect,
                                     .bugs = options->bugs,
                                     .send = refworker_send,
                                     .send_arg = worker};
    worker->presence = presence_sync_create(worker->base, &config, err);
    if (worker->presence == NULL) return -1;
    WLOG_INFO("Presence enabled; instance id %s", presence_sync_instance_id(worker->presence));
  }
  if (options->user_count > 0) {
    worker->ips = client_ips_create(options->bugs, refworker_send, worker, err);
    if (worker->ips == NULL) return -1;
    worker->client_api = client_api_create(worker->base, options->users, options->user_count,
                                           worker->ips, worker->presence, err);
    if (worker->client_api == NULL) return -1;
  }
  worker->streams =
      stream_state_create(options->dialect, options->instance_name, refworker_on_unit, worker, err);
  if (worker->streams == NULL) return -1;
  for (size_t i = 0; i < options->stream_count; i++)
    if (stream_state_add_stream(worker->streams, options->streams[i].name,
                                options->streams[i].token, err) != 0)
      return -1;
  return 0;
}

static int refworker_make_http_server(refworker_t *worker, const refworker_options_t *options,
                                      rc_error_t *err) {
  if (options->http_port < 0) return 0;
  http_server_config_t config = {.version = REPLCHECK_VERSION,
                                 .metrics = worker->metrics,
                                 .cache_get = worker_caches_get,
                                 .cache_arg = worker->caches,
                                 .bugs = options->bugs,
                                 .route = worker->client_api != NULL ? client_api_route : NULL,
                                 .route_arg = worker->client_api};
  worker->http_server = http_server_create(worker->base, options->http_port, &config, err);
  if (worker->http_server == NULL) return -1;
  WLOG_INFO("Listening for HTTP on 127.0.0.1:%d", http_server_port(worker->http_server));
  return 0;
}

static void refworker_log_startup(const refworker_options_t *options) {
  WLOG_WARNING("Starting refworker %s", REPLCHECK_VERSION);
  /* Synapse's "Server %s version %s" (argv[0], version): the version of the Server header. */
  WLOG_WARNING("Server refworker version %s", REPLCHECK_VERSION);
  WLOG_INFO("Server hostname: %s", options->server_name);
  WLOG_INFO("Instance name: %s", options->instance_name);
  WLOG_INFO("Replication dialect: %s", proto_dialect_name(options->dialect));
  if (options->redis_host != NULL)
    WLOG_INFO("Replication over redis %s:%d", options->redis_host, options->redis_port);
  if (options->http_url != NULL) WLOG_INFO("Replication HTTP: %s", options->http_url);
  for (unsigned bit = 1; bit != 0; bit <<= 1)
    if ((options->bugs & bit) != 0) WLOG_WARNING("Re-introduced bug: %s", bugs_name((bug_t)bit));
}

/* --bug http-conn-open-on-shutdown: the loop has stopped and the replication connection
 * is closed, but the catch-up client (and its keep-alive connections to the main) is
 * not freed yet: like a Python worker whose reactor stopped but whose interpreter takes
 * seconds to exit, leaving the kernel to close the sockets. A second signal cuts the
 * linger short (it interrupts the sleep). */
static void refworker_linger_with_http_open(const refworker_t *worker) {
  if (worker->http == NULL || !bugs_has(worker->options->bugs, BUG_HTTP_CONN_OPEN_ON_SHUTDOWN))
    return;
  WLOG_INFO("Lingering %d ms before exit with the HTTP connections open", REFWORKER_BUG_LINGER_MS);
  struct timespec linger = {.tv_sec = REFWORKER_BUG_LINGER_MS / 1000,
                            .tv_nsec = (long)(REFWORKER_BUG_LINGER_MS % 1000) * 1000000L};
  nanosleep(&linger, NULL);
}

/* Frees everything in the order that keeps borrowed pointers valid: the listener and the
 * transports first (they feed the rest), then the handler (it owns catch-ups holding
 * HTTP requests and background processes), the HTTP client, the roles, the processes
 * (whose runs are all finished by then) and the metrics they report to. Freeing the
 * HTTP client closes its keep-alive connections to the main: the worker lets go of them
 * itself right after its replication connection is closed, not at exit (CL-05). */
static void refworker_free(refworker_t *worker) {
  if (worker->sigterm != NULL) event_free(worker->sigterm);
  if (worker->sigint != NULL) event_free(worker->sigint);
  /* The listener first: closing its connections ends the pending syncs, which the
   * client API and the presence tracker must still be there to hear. */
  http_server_destroy(worker->http_server);
  client_api_destroy(worker->client_api);
  client_ips_destroy(worker->ips);
  presence_sync_destroy(worker->presence);
  repl_client_destroy(worker->client);
  redis_transport_destroy(worker->redis);
  stream_handler_destroy(worker->handler);
  http_catchup_destroy(worker->http);
  stream_state_destroy(worker->streams);
  db_store_close(worker->db);
  fed_position_destroy(worker->fed_position);
  fedsender_destroy(worker->fedsender);
  worker_caches_destroy(worker->caches);
  bgprocess_table_destroy(worker->processes);
  metrics_destroy(worker->metrics);
  if (worker->base != NULL) event_base_free(worker->base);
}

/* Runs the worker until a signal stops it. Returns the process exit status. */
static int refworker_run(const refworker_options_t *options) {
  int status = 1;
  refworker_t worker = {.options = options};
  rc_error_t err;

  wlog_set_leak(bugs_has(options->bugs, BUG_LOGCONTEXT_LEAK));
  wlog_context_enter("main");
  refworker_log_startup(options);

  worker.base = refworker_make_base();
  if (worker.base == NULL) {
    rc_error_set(&err, "cannot create the event base");
    goto fail;
  }
  /* The datastore first, as Synapse sets it up before it replicates anything. */
  if (options->db_dsn != NULL &&
      (worker.db = db_store_open(options->db_dsn, options->bugs, &err)) == NULL)
    goto fail;
  if (refworker_make_roles(&worker, options, &err) != 0) goto fail;
  if (worker.db != NULL) db_store_charge_to(worker.db, worker.processes);
  if (options->http_url != NULL) {
    worker.http =
        http_catchup_create(worker.base, options->http_url, options->http_timeout_ms, &err);
    if (worker.http == NULL) goto fail;
    if (bugs_has(options->bugs, BUG_HTTP_CONN_LEAK)) http_catchup_leak_connections(worker.http);
  }
  worker.handler = stream_handler_create(worker.streams, worker.http, worker.processes, &err);
  if (worker.handler == NULL) goto fail;
  if (refworker_make_transport(&worker, options, worker.streams, worker.handler, &err) != 0)
    goto fail;
  /* Listening before the first connection: a harness that sees the worker connect can
   * scrape it at once. */
  if (refworker_make_http_server(&worker, options, &err) != 0) goto fail;
  worker.sigterm = evsignal_new(worker.base, SIGTERM, refworker_signal_cb, &worker);
  worker.sigint = evsignal_new(worker.base, SIGINT, refworker_signal_cb, &worker);
  if (worker.sigterm == NULL || worker.sigint == NULL || evsignal_add(worker.sigterm, NULL) != 0 ||
      evsignal_add(worker.sigint, NULL) != 0) {
    rc_error_set(&err, "cannot install the SIGTERM/SIGINT handlers");
    goto fail;
  }
  /* The loop runs in the sentinel (seed I); with the leak bug it stays in "main". */
  wlog_callback_end();

  if (worker.redis != NULL)
    redis_transport_start(worker.redis);
  else
    repl_client_start(worker.client);
  if (event_base_dispatch(worker.base) != 0) {
    rc_error_set(&err, "the event loop failed");
    goto fail;
  }
  WLOG_INFO("Main loop terminated.");
  refworker_linger_with_http_open(&worker);
  status = 0;
  goto done;

fail:
  WLOG_ERROR("refworker: %s", err.msg);
  fprintf(stderr, "refworker: %s\n", err.msg);
done:
  refworker_free(&worker);
  return status;
}

int main(int argc, char **argv) {
  refworker_options_t options;
  rc_error_t err;
  if (refworker_options_parse(argc, argv, &options, &err) != 0) {
    fprintf(stderr, "refworker: %s\nTry 'refworker --help'.\n", err.msg);
    refworker_options_free(&options);
    return 2;
  }
  if (options.show_help) {
    refworker_options_print_usage(stdout);
    refworker_options_free(&options);
    return 0;
  }
  if (options.show_version) {
    printf("refworker %s\n", REPLCHECK_VERSION);
    refworker_options_free(&options);
    return 0;
  }
  if (options.list_bugs) {
    bugs_print_list(stdout);
    refworker_options_free(&options);
    return 0;
  }
  wlog_set_format(options.log_format);
  if (wlog_open(options.log_path, &err) != 0) {
    fprintf(stderr, "refworker: %s\n", err.msg);
    refworker_options_free(&options);
    return 1;
  }
  /* A peer closing while we write must be an error return, not a fatal signal. */
  signal(SIGPIPE, SIG_IGN);
  event_set_log_callback(refworker_libevent_log);

  int status = refworker_run(&options);

  wlog_close();
  refworker_options_free(&options);
  libevent_global_shutdown();
  return status;
}
