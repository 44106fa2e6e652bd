#include "http_catchup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "rc_clock.h"

#ifndef REPLCHECK_VERSION
#define REPLCHECK_VERSION "unknown"
#endif

#define STREAM_UPDATES_PATH "/_synapse/replication/get_repl_stream_updates/"
/* Synapse's txn ids are random_string(10): ten ASCII letters. */
#define TXN_ID_LEN 10
/* How much of an error body is quoted in the failure text. */
#define ERROR_BODY_QUOTE 200

typedef struct pooled_conn {
  struct evhttp_connection *evcon;
  bool busy; /* carrying a request */
  struct pooled_conn *next;
} pooled_conn_t;

struct http_catchup_request {
  http_catchup_t *client;
  http_catchup_request_t *next; /* in the client's list of requests in flight */
  pooled_conn_t *conn;
  struct evhttp_request *req; /* evhttp's; NULL once evhttp is done with it */
  struct event *deadline;
  int64_t from;
  int64_t upto;
  http_catchup_page_fn done;
  void *arg;
  bool failed; /* evhttp reported an error before its callback */
  enum evhttp_request_error failure;
  int failure_errno;
  bool starting;         /* inside http_catchup_fetch */
  char early_error[400]; /* a failure evhttp reported from inside fetch */
  char target[1024];     /* path and query, for the request line and for error texts */
};

struct http_catchup {
  struct event_base *base;
  struct evdns_base *dns; /* only when the host is a name */
  char *host;             /* to connect to: no brackets around an IPv6 literal */
  int port;
  char host_header[300];
  char *path_prefix; /* the base URL's path without its trailing '/' */
  int64_t timeout_ms;
  pooled_conn_t *conns;
  bool leak_conns; /* BUG_HTTP_CONN_LEAK: a connection is never given back to the pool */
  http_catchup_request_t *requests;
};

/* ---- the client ----------------------------------------------------------------- */

static bool host_is_numeric(const char *host) {
  unsigned char scratch[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host, scratch) == 1 || inet_pton(AF_INET6, host, scratch) == 1;
}

/* Fills host, port, prefix and Host header of client from the base URL. */
static int client_parse_url(http_catchup_t *client, const char *base_url, rc_error_t *err) {
  struct evhttp_uri *uri = evhttp_uri_parse_with_flags(base_url, 0);
  if (uri == NULL)
    return rc_error_set(err, "--http-url '%s': not a URL (expected http://host:port)", base_url);
  int rc = -1;
  const char *scheme = evhttp_uri_get_scheme(uri);
  const char *host = evhttp_uri_get_host(uri);
  const char *path = evhttp_uri_get_path(uri);
  int port = evhttp_uri_get_port(uri);
  if (scheme == NULL || strcasecmp(scheme, "http") != 0) {
    rc_error_set(err, "--http-url '%s': only http:// URLs are supported", base_url);
  } else if (host == NULL || host[0] == '\0') {
    rc_error_set(err, "--http-url '%s': no host", base_url);
  } else if (evhttp_uri_get_query(uri) != NULL || evhttp_uri_get_fragment(uri) != NULL ||
             evhttp_uri_get_userinfo(uri) != NULL) {
    rc_error_set(err,
                 "--http-url '%s': expected http://host[:port][/path], without user, query "
                 "or fragment",
                 base_url);
  } else if (port == 0 || port > 65535) {
    rc_error_set(err, "--http-url '%s': port must be in 1..65535", base_url);
  } else {
    size_t host_len = strlen(host);
    if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']')
      client->host = strndup(host + 1, host_len - 2);
    else
      client->host = strdup(host);
    client->port = port < 0 ? 80 : port;
    snprintf(client->host_header, sizeof client->host_header, "%s:%d", host, client->port);
    const char *p = path != NULL ? path : "";
    size_t len = strlen(p);
    while (len > 0 && p[len - 1] == '/') len--;
    client->path_prefix = strndup(p, len);
    if (client->host == NULL || client->path_prefix == NULL)
      rc_error_set(err, "--http-url: out of memory");
    else
      rc = 0;
  }
  evhttp_uri_free(uri);
  return rc;
}

int http_catchup_check_url(const char *base_url, rc_error_t *err) {
  http_catchup_t scratch = {0};
  int rc = client_parse_url(&scratch, base_url, err);
  free(scratch.host);
  free(scratch.path_prefix);
  return rc;
}

http_catchup_t *http_catchup_create(struct event_base *base, const char *base_url,
                                    int64_t timeout_ms, rc_error_t *err) {
  if (timeout_ms <= 0) {
    rc_error_set(err, "HTTP catch-up: the timeout must be positive");
    return NULL;
  }
  http_catchup_t *client = calloc(1, sizeof *client);
  if (client == NULL) {
    rc_error_set(err, "HTTP catch-up: out of memory");
    return NULL;
  }
  client->base = base;
  client->timeout_ms = timeout_ms;
  if (client_parse_url(client, base_url, err) != 0) {
    http_catchup_destroy(client);
    return NULL;
  }
  /* Without a DNS base evhttp resolves names with a blocking getaddrinfo; a numeric
   * address (the usual loopback URL) needs no resolver at all. */
  if (!host_is_numeric(client->host)) {
    client->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (client->dns == NULL) {
      rc_error_set(err, "--http-url '%s': cannot set up name resolution for '%s'", base_url,
                   client->host);
      http_catchup_destroy(client);
      return NULL;
    }
  }
  return client;
}

void http_catchup_leak_connections(http_catchup_t *client) {
  client->leak_conns = true;
}

void http_catchup_destroy(http_catchup_t *client) {
  if (client == NULL) return;
  while (client->requests != NULL) http_catchup_cancel(client->requests);
  for (pooled_conn_t *c = client->conns, *next; c != NULL; c = next) {
    next = c->next;
    evhttp_connection_free(c->evcon);
    free(c);
  }
  /* 0: requests still inside the resolver are dropped, not failed (none should be). */
  if (client->dns != NULL) evdns_base_free(client->dns, 0);
  free(client->host);
  free(client->path_prefix);
  free(client);
}

/* An idle pooled connection, or a new one. Keep-alive connections are reused; evhttp
 * reconnects by itself when the server closed one while it was idle. */
static pooled_conn_t *client_take_conn(http_catchup_t *client) {
  for (pooled_conn_t *c = client->conns; c != NULL; c = c->next) {
    if (!c->busy) {
      c->busy = true;
      return c;
    }
  }
  pooled_conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->evcon =
      evhttp_connection_base_new(client->base, client->dns, client->host, (uint16_t)client->port);
  if (c->evcon == NULL) {
    free(c);
    return NULL;
  }
  /* The request deadline is ours (request->deadline); evhttp's idle timeout is a
   * backstop of the same length, and a failed request is never retried by evhttp: the
   * next POSITION does that (PO-07). */
  struct timeval tv = {.tv_sec = (time_t)(client->timeout_ms / 1000),
                       .tv_usec = (suseconds_t)(client->timeout_ms % 1000) * 1000};
  evhttp_connection_set_timeout_tv(c->evcon, &tv);
  evhttp_connection_set_retries(c->evcon, 0);
  evhttp_connection_set_max_body_size(c->evcon, HTTP_CATCHUP_MAX_BODY);
  evhttp_connection_set_max_headers_size(c->evcon, 64 * 1024);
  c->busy = true;
  c->next = client->conns;
  client->conns = c;
  return c;
}

/* ---- one request --------------------------------------------------------------- */

static void make_txn_id(char *out) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  unsigned char bytes[TXN_ID_LEN];
  if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
    /* Only has to differ between requests: mix the clock in when the kernel cannot. */
    static uint64_t counter;
    uint64_t t = (uint64_t)rc_clock_mono_ns() ^ (++counter * 0x9e3779b97f4a7c15u);
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (unsigned char)(t >> (6 * i));
  }
  for (size_t i = 0; i < TXN_ID_LEN; i++) out[i] = letters[bytes[i] % 52];
  out[TXN_ID_LEN] = '\0';
}

/* Takes the request off the client (list, connection, timer). evhttp's own request is
 * not touched: the caller has dealt with it. */
static void request_detach(http_catchup_request_t *request) {
  http_catchup_t *client = request->client;
  for (http_catchup_request_t **p = &client->requests; *p != NULL; p = &(*p)->next) {
    if (*p == request) {
      *p = request->next;
      break;
    }
  }
  if (request->conn != NULL && !client->leak_conns) request->conn->busy = false;
  request->conn = NULL;
  if (request->deadline != NULL) event_free(request->deadline);
  request->deadline = NULL;
}

static void request_finish(http_catchup_request_t *request, const http_catchup_page_t *page,
                           const char *error) {
  http_catchup_page_fn done = request->done;
  void *arg = request->arg;
  free(request);
  /* Last: the callback may start new requests (even on the connection just freed). */
  done(arg, page, error);
}

static const char *failure_text(const http_catchup_request_t *request, char *buf, size_t cap) {
  if (!request->failed) {
    /* evhttp gives up on a failed connect (refused, unreachable) by running the callback
     * without an error code, and has reset errno by then. */
    snprintf(buf, cap, "could not connect to %s (refused or unreachable)",
             request->client->host_header);
    return buf;
  }
  switch (request->failure) {
    case EVREQ_HTTP_TIMEOUT:
      return "no progress within the timeout";
    case EVREQ_HTTP_EOF:
      return "connection closed before the whole response arrived";
    case EVREQ_HTTP_INVALID_HEADER:
      return "invalid response status line or headers";
    case EVREQ_HTTP_DATA_TOO_LONG:
      return "response headers or body too long";
    case EVREQ_HTTP_REQUEST_CANCEL:
      return "cancelled";
    case EVREQ_HTTP_BUFFER_ERROR:
    default:
      snprintf(buf, cap, "connection failed: %s",
               request->failure_errno != 0 ? strerror(request->failure_errno) : "I/O error");
      return buf;
  }
}

/* Quotes the start of an error body, printable ASCII only, so the log stays one line. */
static void quote_body(struct evbuffer *body, char *out, size_t cap) {
  size_t len = evbuffer_get_length(body);
  size_t take = len < ERROR_BODY_QUOTE ? len : ERROR_BODY_QUOTE;
  const unsigned char *data = evbuffer_pullup(body, (ev_ssize_t)take);
  size_t o = 0;
  for (size_t i = 0; i < take && data != NULL && o + 5 < cap; i++)
    out[o++] = (data[i] >= 0x20 && data[i] < 0x7f) ? (char)data[i] : '?';
  if (take < len && o + 4 < cap) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
}

static void on_evhttp_error(enum evhttp_request_error error, void *arg) {
  http_catchup_request_t *request = arg;
  request->failed = true;
  request->failure = error;
  request->failure_errno = EVUTIL_SOCKET_ERROR();
}

/* evhttp's completion: a response (any status), or NULL after a failure. evhttp frees
 * its request after this returns. */
static void on_evhttp_done(struct evhttp_request *req, void *arg) {
  http_catchup_request_t *request = arg;
  request->req = NULL;
  char why[400];
  if (req == NULL || evhttp_request_get_response_code(req) == 0) {
    if (request->starting) {
      /* Called back from inside evhttp_make_request: report from the loop instead, so
       * the caller never sees its callback before fetch has returned. */
      snprintf(request->early_error, sizeof request->early_error, "%s",
               failure_text(request, why, sizeof why));
      struct timeval now = {0, 0};
      evtimer_add(request->deadline, &now);
      return;
    }
  }
  request_detach(request);
  char error[sizeof request->target + RC_ERROR_MAX + 64];
  if (req == NULL || evhttp_request_get_response_code(req) == 0) {
    snprintf(error, sizeof error, "GET %s: %s", request->target,
             failure_text(request, why, sizeof why));
    request_finish(request, NULL, error);
    return;
  }
  int status = evhttp_request_get_response_code(req);
  struct evbuffer *body = evhttp_request_get_input_buffer(req);
  if (status != 200) {
    char quoted[ERROR_BODY_QUOTE + 8];
    quote_body(body, quoted, sizeof quoted);
    const char *reason = evhttp_request_get_response_code_line(req);
    snprintf(error, sizeof error, "GET %s: HTTP %d %s: %s", request->target, status,
             reason != NULL ? reason : "", quoted);
    request_finish(request, NULL, error);
    return;
  }
  size_t len = evbuffer_get_length(body);
  const char *text = len > 0 ? (const char *)evbuffer_pullup(body, -1) : "";
  http_catchup_page_t page;
  http_catchup_page_storage_t storage;
  rc_error_t perr;
  if (text == NULL || http_catchup_parse_page(text, len, request->from, request->upto, &page,
                                              &storage, &perr) != 0) {
    snprintf(error, sizeof error, "GET %s: malformed body: %s", request->target,
             text == NULL ? "out of memory" : perr.msg);
    request_finish(request, NULL, error);
    return;
  }
  request_finish(request, &page, NULL);
  http_catchup_page_free(&storage);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  http_catchup_request_t *request = arg;
  int64_t timeout_ms = request->client->timeout_ms;
  if (request->req != NULL) evhttp_cancel_request(request->req);
  request->req = NULL;
  request_detach(request);
  char error[sizeof request->target + sizeof request->early_error + 64];
  if (request->early_error[0] != '\0')
    snprintf(error, sizeof error, "GET %s: %s", request->target, request->early_error);
  else
    snprintf(error, sizeof error, "GET %s: timed out after %" PRId64 " ms", request->target,
             timeout_ms);
  request_finish(request, NULL, error);
}

static int request_build_target(http_catchup_request_t *request, const char *stream,
                                rc_error_t *err) {
  char *encoded = evhttp_uriencode(stream, -1, 0);
  if (encoded == NULL) return rc_error_set(err, "catch-up of %s: out of memory", stream);
  char txn[TXN_ID_LEN + 1];
  make_txn_id(txn);
  int n = snprintf(request->target, sizeof request->target,
                   "%s" STREAM_UPDATES_PATH "%s/%s?from_token=%" PRId64 "&upto_token=%" PRId64,
                   request->client->path_prefix, encoded, txn, request->from, request->upto);
  free(encoded);
  if (n < 0 || (size_t)n >= sizeof request->target)
    return rc_error_set(err, "catch-up of %s: the request URL is too long", stream);
  return 0;
}

http_catchup_request_t *http_catchup_fetch(http_catchup_t *client, const char *stream,
                                           int64_t from_token, int64_t upto_token,
                                           http_catchup_page_fn done, void *arg, rc_error_t *err) {
  http_catchup_request_t *request = calloc(1, sizeof *request);
  if (request == NULL) {
    rc_error_set(err, "catch-up of %s: out of memory", stream);
    return NULL;
  }
  request->client = client;
  request->from = from_token;
  request->upto = upto_token;
  request->done = done;
  request->arg = arg;
  if (request_build_target(request, stream, err) != 0) {
    free(request);
    return NULL;
  }
  request->deadline = evtimer_new(client->base, on_deadline, request);
  request->conn = client_take_conn(client);
  request->req = evhttp_request_new(on_evhttp_done, request);
  if (request->deadline == NULL || request->conn == NULL || request->req == NULL) {
    if (request->req != NULL) evhttp_request_free(request->req);
    request_detach(request);
    free(request);
    rc_error_set(err, "catch-up of %s: out of memory", stream);
    return NULL;
  }
  evhttp_request_set_error_cb(request->req, on_evhttp_error);
  struct evkeyvalq *headers = evhttp_request_get_output_headers(request->req);
  evhttp_add_header(headers, "Host", client->host_header);
  evhttp_add_header(headers, "Accept", "application/json");
  evhttp_add_header(headers, "User-Agent", "refworker/" REPLCHECK_VERSION);
  request->next = client->requests;
  client->requests = request;
  struct timeval tv = {.tv_sec = (time_t)(client->timeout_ms / 1000),
                       .tv_usec = (suseconds_t)(client->timeout_ms % 1000) * 1000};
  evtimer_add(request->deadline, &tv);
  /* Connection failures come back through the callback (deferred to the loop by
   * on_evhttp_done if evhttp runs it from inside this call); -1 means evhttp could not
   * even queue the request and may have freed it already, so it is not touched again. */
  request->starting = true;
  int rc = evhttp_make_request(request->conn->evcon, request->req, EVHTTP_REQ_GET, request->target);
  request->starting = false;
  if (rc != 0) {
    request->req = NULL;
    request_detach(request);
    rc_error_set(err, "GET %s: cannot start the request", request->target);
    free(request);
    return NULL;
  }
  return request;
}

void http_catchup_cancel(http_catchup_request_t *request) {
  if (request == NULL) return;
  /* evhttp resets the connection when the request was under way; the pooled connection
   * then reconnects on its next use. */
  if (request->req != NULL) evhttp_cancel_request(request->req);
  request->req = NULL;
  request_detach(request);
  free(request);
}
