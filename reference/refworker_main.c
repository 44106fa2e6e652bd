/* refworker: the replcheck reference worker. main() wires the parts together: options,
 * the log, the event base, signal handling, the stream state, the HTTP catch-up client,
 * the stream handler and one transport (direct TCP or Redis). Only main() decides the
 * exit status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "http_catchup.h"
#include "redis_transport.h"
#include "refworker_options.h"
#include "repl_client.h"
#include "stream_handler.h"
#include "stream_state.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.app.refworker"

#ifndef REPLCHECK_VERSION
#define REPLCHECK_VERSION "unknown"
#endif

/* Bound on the orderly close at shutdown: CL-05 wants the process gone within 10 s. */
#define REFWORKER_SHUTDOWN_GRACE_MS 5000

typedef struct refworker {
  struct event_base *base;
  repl_client_t *client;    /* direct TCP, or */
  redis_transport_t *redis; /* Redis */
  struct event *sigterm;
  struct event *sigint;
} refworker_t;

static void refworker_stopped(void *arg) {
  refworker_t *worker = arg;
  event_base_loopexit(worker->base, NULL);
}

static void refworker_signal_cb(evutil_socket_t signum, short what, void *arg) {
  (void)what;
  refworker_t *worker = arg;
  WLOG_INFO("Received %s, shutting down.", signum == SIGINT ? "SIGINT" : "SIGTERM");
  WLOG_INFO("Shutting down");
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
          },
  };
  worker->client = repl_client_create(worker->base, &config, streams, handler, err);
  return worker->client != NULL ? 0 : -1;
}

/* Runs the worker until a signal stops it. Returns the process exit status. */
static int refworker_run(const refworker_options_t *options) {
  int status = 1;
  refworker_t worker = {0};
  stream_state_t *streams = NULL;
  http_catchup_t *http = NULL;
  stream_handler_t *handler = NULL;
  rc_error_t err;

  wlog_context_enter("main");
  WLOG_WARNING("Starting refworker %s", REPLCHECK_VERSION);
  WLOG_INFO("Server hostname: %s", options->server_name);
  WLOG_INFO("Instance name: %s", options->instance_name);
  WLOG_INFO("Replication dialect: %s", proto_dialect_name(options->dialect));
  if (options->redis_host != NULL)
    WLOG_INFO("Replication over redis %s:%d", options->redis_host, options->redis_port);
  if (options->http_url != NULL) WLOG_INFO("Replication HTTP: %s", options->http_url);

  streams = stream_state_create(options->dialect, options->instance_name, NULL, NULL, &err);
  if (streams == NULL) goto fail;
  for (size_t i = 0; i < options->stream_count; i++)
    if (stream_state_add_stream(streams, options->streams[i].name, options->streams[i].token,
                                &err) != 0)
      goto fail;

  worker.base = refworker_make_base();
  if (worker.base == NULL) {
    rc_error_set(&err, "cannot create the event base");
    goto fail;
  }
  if (options->http_url != NULL) {
    http = http_catchup_create(worker.base, options->http_url, options->http_timeout_ms, &err);
    if (http == NULL) goto fail;
  }
  handler = stream_handler_create(streams, http, &err);
  if (handler == NULL) goto fail;
  if (refworker_make_transport(&worker, options, streams, handler, &err) != 0) goto fail;
  worker.sigterm = evsignal_new(worker.base, SIGTERM, refworker_signal_cb, &worker);
  worker.sigint = evsignal_new(worker.base, SIGINT, refworker_signal_cb, &worker);
  if (worker.sigterm == NULL || worker.sigint == NULL || evsignal_add(worker.sigterm, NULL) != 0 ||
      evsignal_add(worker.sigint, NULL) != 0) {
    rc_error_set(&err, "cannot install the SIGTERM/SIGINT handlers");
    goto fail;
  }
  wlog_context_reset();

  if (worker.redis != NULL)
    redis_transport_start(worker.redis);
  else
    repl_client_start(worker.client);
  if (event_base_dispatch(worker.base) != 0) {
    rc_error_set(&err, "the event loop failed");
    goto fail;
  }
  WLOG_INFO("Main loop terminated.");
  status = 0;
  goto done;

fail:
  WLOG_ERROR("refworker: %s", err.msg);
  fprintf(stderr, "refworker: %s\n", err.msg);
done:
  if (worker.sigterm != NULL) event_free(worker.sigterm);
  if (worker.sigint != NULL) event_free(worker.sigint);
  /* Transports first (they feed the handler), then the handler (it owns catch-ups that
   * hold HTTP requests), then the HTTP client and its pooled connections. */
  repl_client_destroy(worker.client);
  redis_transport_destroy(worker.redis);
  stream_handler_destroy(handler);
  http_catchup_destroy(http);
  stream_state_destroy(streams);
  if (worker.base != NULL) event_base_free(worker.base);
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
