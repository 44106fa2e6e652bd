#include "mock_http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_UPDATES_PREFIX "/_synapse/replication/get_repl_stream_updates/"
#define REPLICATION_PREFIX "/_synapse/replication/"

struct mock_http {
  struct event_base *base;
  struct evhttp *http;
  int port;
  stream_history_t *history;
  ledger_t *ledger;
  size_t page_size;
  int fail_status;
  int fail_count;
  int delay_ms;
  struct held_reply *held; /* replies waiting for their delay, freed on destroy */
};

/* A held reply, sent when its timer fires. */
typedef struct held_reply {
  mock_http_t *http;
  struct held_reply *next;
  struct evhttp_request *req;
  int status;
  struct evbuffer *body;
  struct event *timer;
} held_reply_t;

static void send_json(struct evhttp_request *req, int status, const char *reason,
                      struct evbuffer *body) {
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, status, reason, body);
}

static void held_free(held_reply_t *h) {
  for (held_reply_t **p = &h->http->held; *p != NULL; p = &(*p)->next) {
    if (*p == h) {
      *p = h->next;
      break;
    }
  }
  evbuffer_free(h->body);
  event_free(h->timer);
  free(h);
}

static void on_held_timer(evutil_socket_t fd, short what, void *arg) {
  held_reply_t *h = arg;
  (void)fd;
  (void)what;
  send_json(h->req, h->status, h->status == 200 ? "OK" : "Error", h->body);
  held_free(h);
}

static void reply(mock_http_t *http, struct evhttp_request *req, int status, const char *json,
                  bool may_delay) {
  struct evbuffer *body = evbuffer_new();
  if (body == NULL) {
    evhttp_send_error(req, 500, "out of memory");
    return;
  }
  evbuffer_add(body, json, strlen(json));
  if (may_delay && http->delay_ms > 0) {
    held_reply_t *h = calloc(1, sizeof *h);
    if (h != NULL) {
      h->http = http;
      h->req = req;
      h->status = status;
      h->body = body;
      h->timer = evtimer_new(http->base, on_held_timer, h);
      struct timeval tv = {http->delay_ms / 1000, (http->delay_ms % 1000) * 1000};
      if (h->timer != NULL && evtimer_add(h->timer, &tv) == 0) {
        h->next = http->held;
        http->held = h;
        return;
      }
      if (h->timer != NULL) event_free(h->timer);
      free(h);
    }
  }
  send_json(req, status, status == 200 ? "OK" : "Error", body);
  evbuffer_free(body);
}

static void reply_error(mock_http_t *http, struct evhttp_request *req, int status,
                        const char *message) {
  json_t *obj = json_pack("{s:s, s:s}", "errcode", "M_UNKNOWN", "error", message);
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  reply(http, req, status, text ? text : "{}", false);
  free(text);
  json_decref(obj);
}

static bool parse_token(const char *text, int64_t *out) {
  if (text == NULL || *text == '\0') return false;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

static void serve_stream_updates(mock_http_t *http, struct evhttp_request *req,
                                 const char *rest, const struct evkeyvalq *query) {
  /* rest = "<stream>/<txn_id>"; a real main has no route without the txn_id. */
  const char *slash = strchr(rest, '/');
  if (slash == NULL || slash == rest || slash[1] == '\0' || strchr(slash + 1, '/') != NULL) {
    reply_error(http, req, 404, "Unrecognized request");
    return;
  }
  char stream[256];
  snprintf(stream, sizeof stream, "%.*s", (int)(slash - rest), rest);
  if (http->fail_count > 0) {
    http->fail_count--;
    reply_error(http, req, http->fail_status, "injected failure");
    return;
  }
  int64_t from, upto, position;
  if (!parse_token(evhttp_find_header(query, "from_token"), &from) ||
      !parse_token(evhttp_find_header(query, "upto_token"), &upto)) {
    reply_error(http, req, 400, "from_token and upto_token must be integers");
    return;
  }
  if (!stream_history_position(http->history, stream, &position)) {
    reply_error(http, req, 400, "Unknown stream");
    return;
  }
  size_t count;
  bool limited, truncated;
  int64_t upto_out;
  const stream_row_t *rows = stream_history_range(http->history, stream, from, upto,
                                                  http->page_size, &count, &limited, &upto_out,
                                                  &truncated);
  struct evbuffer *body = evbuffer_new();
  evbuffer_add_printf(body, "{\"updates\":[");
  for (size_t i = 0; i < count; i++)
    evbuffer_add_printf(body, "%s[%lld,%s]", i ? "," : "", (long long)rows[i].token, rows[i].json);
  evbuffer_add_printf(body, "],\"upto_token\":%lld,\"limited\":%s}", (long long)upto_out,
                      limited ? "true" : "false");
  size_t len = evbuffer_get_length(body);
  char *text = malloc(len + 1);
  if (text != NULL) {
    evbuffer_remove(body, text, len);
    text[len] = '\0';
    reply(http, req, 200, text, true);
  } else {
    evhttp_send_error(req, 500, "out of memory");
  }
  free(text);
  evbuffer_free(body);
}

static const char *method_name(enum evhttp_cmd_type cmd) {
  switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    default: return "OTHER";
  }
}

static void on_request(struct evhttp_request *req, void *arg) {
  mock_http_t *http = arg;
  const char *uri = evhttp_request_get_uri(req);
  char line[2048];
  int n = snprintf(line, sizeof line, "%s %s", method_name(evhttp_request_get_command(req)),
                   uri ? uri : "?");
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  ledger_append(http->ledger, 0, LEDGER_HTTP, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, line, (size_t)n);

  const struct evhttp_uri *parsed = evhttp_request_get_evhttp_uri(req);
  const char *path = parsed ? evhttp_uri_get_path(parsed) : NULL;
  if (path == NULL) {
    reply_error(http, req, 400, "bad request");
    return;
  }
  struct evkeyvalq query;
  TAILQ_INIT(&query);
  const char *qs = evhttp_uri_get_query(parsed);
  if (qs != NULL && evhttp_parse_query_str(qs, &query) != 0) {
    reply_error(http, req, 400, "bad query string");
    return;
  }
  if (strncmp(path, STREAM_UPDATES_PREFIX, strlen(STREAM_UPDATES_PREFIX)) == 0 &&
      evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
    serve_stream_updates(http, req, path + strlen(STREAM_UPDATES_PREFIX), &query);
  } else if (strncmp(path, REPLICATION_PREFIX, strlen(REPLICATION_PREFIX)) == 0) {
    /* Write endpoints (presence_set_state, send_event, ...): accepted, nothing to say. */
    reply(http, req, 200, "{}", false);
  } else {
    reply_error(http, req, 404, "Unrecognized request");
  }
  evhttp_clear_headers(&query);
}

mock_http_t *mock_http_create(struct event_base *base, int port, stream_history_t *history,
                              ledger_t *ledger, rc_error_t *err) {
  mock_http_t *http = calloc(1, sizeof *http);
  if (http == NULL) {
    rc_error_set(err, "mock HTTP: out of memory");
    return NULL;
  }
  http->base = base;
  http->history = history;
  http->ledger = ledger;
  http->page_size = 100;
  http->http = evhttp_new(base);
  struct evhttp_bound_socket *sock =
      http->http ? evhttp_bind_socket_with_handle(http->http, "127.0.0.1", (ev_uint16_t)port) : NULL;
  if (sock == NULL) {
    rc_error_set(err, "mock HTTP: cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    mock_http_destroy(http);
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len);
  http->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  evhttp_set_gencb(http->http, on_request, http);
  evhttp_set_timeout(http->http, 60);
  return http;
}

void mock_http_destroy(mock_http_t *http) {
  if (http == NULL) return;
  /* Held requests die with evhttp; only our side of them is freed here. */
  while (http->held != NULL) held_free(http->held);
  if (http->http != NULL) evhttp_free(http->http);
  free(http);
}

int mock_http_port(const mock_http_t *http) { return http->port; }
/* Settings go into the ledger: evidence, and what a recording replays. */
static void note_setting(mock_http_t *http, const char *fmt, long a, long b) {
  char text[96];
  int n = snprintf(text, sizeof text, fmt, a, b);
  if (n > 0) ledger_append(http->ledger, 0, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, text,
                           (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void mock_http_set_page_size(mock_http_t *http, size_t rows) {
  if (rows != http->page_size) note_setting(http, "mock: http page-size %ld", (long)rows, 0);
  http->page_size = rows;
}
void mock_http_fail_next(mock_http_t *http, int status, int count) {
  note_setting(http, "mock: http fail-next %ld %ld", status, count);
  http->fail_status = status;
  http->fail_count = count;
}
void mock_http_set_delay(mock_http_t *http, int delay_ms) {
  if (delay_ms != http->delay_ms) note_setting(http, "mock: http delay %ld", delay_ms, 0);
  http->delay_ms = delay_ms;
}
