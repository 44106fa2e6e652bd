#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "rc_clock.h"
#include "wlog.h"

#define CACHE_PREFIX "/_refworker/cache/"
#define JSON_TYPE "application/json"

struct http_server {
  struct evhttp *http;
  int port;
  char server_header[128];
  char access_logger[64];
  http_server_config_t config;
  unsigned long request_seq;
};

/* What one request is answered with. */
typedef struct http_answer {
  int status;
  const char *reason;
  const char *content_type;
  char *body; /* malloc'd */
  size_t body_len;
  bool preflight; /* an OPTIONS answer: add the CORS headers */
} http_answer_t;

/* ---- the one place every response goes out ----------------------------------------- */

static void http_send(http_server_t *server, struct evhttp_request *req,
                      const http_answer_t *answer) {
  struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
  /* Synapse >= v0.29 sets Server once for every response it renders. Before (the bug),
   * it was passed along by each JSON responder, and error and OPTIONS paths forgot it. */
  bool error_path = answer->status >= 400 || answer->preflight;
  if (!(error_path && bugs_has(server->config.bugs, BUG_MISSING_SERVER_HEADER)))
    evhttp_add_header(headers, "Server", server->server_header);
  evhttp_add_header(headers, "Content-Type", answer->content_type);
  if (answer->preflight) {
    evhttp_add_header(headers, "Access-Control-Allow-Origin", "*");
    evhttp_add_header(headers, "Access-Control-Allow-Methods",
                      "GET, HEAD, POST, PUT, DELETE, OPTIONS");
    evhttp_add_header(headers, "Access-Control-Allow-Headers",
                      "X-Requested-With, Content-Type, Authorization, Date");
  }
  struct evbuffer *body = evbuffer_new();
  if (body != NULL && answer->body_len > 0) evbuffer_add(body, answer->body, answer->body_len);
  evhttp_send_reply(req, answer->status, answer->reason, body);
  if (body != NULL) evbuffer_free(body);
}

/* ---- answers ---------------------------------------------------------------------- */

static void answer_text(http_answer_t *answer, int status, const char *reason,
                        const char *content_type, char *body) {
  answer->status = status;
  answer->reason = reason;
  answer->content_type = content_type;
  answer->body = body;
  answer->body_len = body != NULL ? strlen(body) : 0;
}

/* {"errcode": ..., "error": ...}; a failed allocation leaves an empty body. */
static void answer_error(http_answer_t *answer, int status, const char *reason, const char *errcode,
                         const char *error) {
  json_t *object = json_pack("{s:s, s:s}", "errcode", errcode, "error", error);
  char *body = object != NULL ? json_dumps(object, JSON_COMPACT) : NULL;
  json_decref(object);
  answer_text(answer, status, reason, JSON_TYPE, body);
}

static void answer_unrecognized(http_answer_t *answer) {
  answer_error(answer, 404, "Not Found", "M_UNRECOGNIZED", "Unrecognized request");
}

static void answer_cache(http_server_t *server, const char *rest, http_answer_t *answer) {
  const char *slash = strchr(rest, '/');
  if (slash == NULL || slash == rest || slash[1] == '\0') {
    answer_unrecognized(answer);
    return;
  }
  size_t name_len = 0, key_len = 0;
  char *raw_name = strndup(rest, (size_t)(slash - rest));
  char *name = raw_name != NULL ? evhttp_uridecode(raw_name, 0, &name_len) : NULL;
  char *key = evhttp_uridecode(slash + 1, 0, &key_len);
  free(raw_name);
  if (name == NULL || key == NULL) {
    answer_error(answer, 500, "Internal Server Error", "M_UNKNOWN", "out of memory");
  } else if (strlen(name) != name_len || strlen(key) != key_len) {
    answer_error(answer, 400, "Bad Request", "M_INVALID_PARAM",
                 "NUL byte in the cache name or key");
  } else {
    bool known = false;
    const char *value = server->config.cache_get != NULL
                            ? server->config.cache_get(server->config.cache_arg, name, key, &known)
                            : NULL;
    char *body = NULL;
    if (value != NULL && asprintf(&body, "{\"value\": %s}", value) >= 0) {
      answer_text(answer, 200, "OK", JSON_TYPE, body);
    } else if (value != NULL) {
      answer_error(answer, 500, "Internal Server Error", "M_UNKNOWN", "out of memory");
    } else {
      char message[512];
      snprintf(message, sizeof message, known ? "Key not in cache %s" : "No cache called %s", name);
      answer_error(answer, 404, "Not Found", "M_NOT_FOUND", message);
    }
  }
  free(name);
  free(key);
}

static void answer_get(http_server_t *server, const char *path, http_answer_t *answer) {
  if (strcmp(path, "/metrics") == 0) {
    char *text = metrics_render(server->config.metrics, NULL);
    if (text == NULL)
      answer_error(answer, 500, "Internal Server Error", "M_UNKNOWN", "out of memory");
    else
      answer_text(answer, 200, "OK", METRICS_CONTENT_TYPE, text);
  } else if (strcmp(path, "/health") == 0) {
    answer_text(answer, 200, "OK", JSON_TYPE, strdup("{\"status\":\"ok\"}"));
  } else if (strcmp(path, "/_refworker/fail") == 0) {
    answer_error(answer, 500, "Internal Server Error", "M_UNKNOWN", "deliberate failure");
  } else if (strncmp(path, CACHE_PREFIX, strlen(CACHE_PREFIX)) == 0) {
    answer_cache(server, path + strlen(CACHE_PREFIX), answer);
  } else {
    answer_unrecognized(answer);
  }
}

/* ---- dispatch ----------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type method) {
  switch (method) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    case EVHTTP_REQ_TRACE:
      return "TRACE";
    case EVHTTP_REQ_CONNECT:
      return "CONNECT";
    case EVHTTP_REQ_PATCH:
      return "PATCH";
  }
  return "UNKNOWN";
}

static void log_access(http_server_t *server, struct evhttp_request *req, const char *method,
                       const http_answer_t *answer, int64_t started_ns) {
  char *peer = NULL;
  ev_uint16_t peer_port = 0;
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  if (evcon != NULL) evhttp_connection_get_peer(evcon, &peer, &peer_port);
  char uri[512];
  wlog_repr(evhttp_request_get_uri(req), strlen(evhttp_request_get_uri(req)), uri, sizeof uri);
  double seconds = (double)(rc_clock_mono_ns() - started_ns) / 1e9;
  wlog_write(server->access_logger, __LINE__, WLOG_LEVEL_INFO,
             "%s - %d - Processed request: %.3fsec %zuB %d \"%s %s HTTP/1.1\"",
             peer != NULL ? peer : "-", server->port, seconds, answer->body_len, answer->status,
             method, uri);
}

static void on_request(struct evhttp_request *req, void *arg) {
  wlog_callback_begin();
  http_server_t *server = arg;
  int64_t started_ns = rc_clock_mono_ns();
  enum evhttp_cmd_type method = evhttp_request_get_command(req);
  char context[64];
  snprintf(context, sizeof context, "%s-%lu", method_name(method), server->request_seq++);
  wlog_context_enter(context);

  http_answer_t answer = {0};
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
  if (path == NULL || path[0] == '\0') path = "/";
  if (method != EVHTTP_REQ_OPTIONS && server->config.route != NULL &&
      server->config.route(server->config.route_arg, server, req, path)) {
    wlog_context_reset();
    return;
  }
  if (method == EVHTTP_REQ_OPTIONS) {
    answer_text(&answer, 200, "OK", JSON_TYPE, strdup("{}"));
    answer.preflight = true;
  } else if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD) {
    answer_get(server, path, &answer);
  } else {
    answer_unrecognized(&answer);
  }
  http_send(server, req, &answer);
  log_access(server, req, method_name(method), &answer, started_ns);
  free(answer.body);
  wlog_context_reset();
}

void http_server_reply(http_server_t *server, struct evhttp_request *req, int status,
                       const char *reason, const char *body) {
  http_answer_t answer = {0};
  answer_text(&answer, status, reason, JSON_TYPE, body != NULL ? strdup(body) : NULL);
  int64_t now = rc_clock_mono_ns();
  http_send(server, req, &answer);
  log_access(server, req, method_name(evhttp_request_get_command(req)), &answer, now);
  free(answer.body);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

http_server_t *http_server_create(struct event_base *base, int port,
                                  const http_server_config_t *config, rc_error_t *err) {
  if (port < 0 || port > 65535) {
    rc_error_set(err, "--http-port: %d is not a TCP port", port);
    return NULL;
  }
  http_server_t *server = calloc(1, sizeof *server);
  if (server == NULL || (server->http = evhttp_new(base)) == NULL) {
    free(server);
    rc_error_set(err, "HTTP listener: out of memory");
    return NULL;
  }
  server->config = *config;
  snprintf(server->server_header, sizeof server->server_header, "refworker/%s",
           config->version != NULL ? config->version : "unknown");
  /* Every method reaches on_request: otherwise evhttp answers 405 itself, without our
   * headers. */
  evhttp_set_allowed_methods(server->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                               EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                               EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_max_headers_size(server->http, 64 * 1024);
  evhttp_set_max_body_size(server->http, 1024 * 1024);
  evhttp_set_timeout(server->http, 60);
  evhttp_set_gencb(server->http, on_request, server);
  struct evhttp_bound_socket *bound =
      evhttp_bind_socket_with_handle(server->http, "127.0.0.1", (ev_uint16_t)port);
  if (bound == NULL) {
    rc_error_set(err, "HTTP listener: cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    http_server_destroy(server);
    return NULL;
  }
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&addr, &len) != 0) {
    rc_error_set(err, "HTTP listener: getsockname: %s", strerror(errno));
    http_server_destroy(server);
    return NULL;
  }
  server->port = ntohs(addr.sin_port);
  snprintf(server->access_logger, sizeof server->access_logger, "synapse.access.http.%d",
           server->port);
  return server;
}

void http_server_destroy(http_server_t *server) {
  if (server == NULL) return;
  if (server->http != NULL) evhttp_free(server->http);
  free(server);
}

int http_server_port(const http_server_t *server) {
  return server->port;
}

const char *http_server_header_value(const http_server_t *server) {
  return server->server_header;
}
