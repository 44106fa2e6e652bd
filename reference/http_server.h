/* http_server: refworker's HTTP listener (libevent evhttp) on 127.0.0.1.
 *
 *   GET /metrics                      200, Prometheus text (metrics.h)
 *   GET /health                       200 {"status":"ok"}
 *   GET /_refworker/cache/<name>/<key> 200 {"value": <json>} when the key is in that
 *                                     cache (the lookup callback decides, and counts the
 *                                     read), else 404 {"errcode":"M_NOT_FOUND",...}
 *   GET /_refworker/fail              500 {"errcode":"M_UNKNOWN","error":"deliberate failure"}
 *   OPTIONS <any path>                200 {} with Access-Control-Allow-* (a CORS preflight)
 *   anything the config's `route` takes (the client API, client_api.h), before the above
 *   anything else                     404 {"errcode":"M_UNRECOGNIZED","error":"Unrecognized
 * request"} HEAD is answered like GET, without a body. <name> and <key> are percent-decoded.
 *
 * Every response goes through one function that sets `Server: refworker/<version>`, as
 * Synapse sets it once in SynapseRequest.render since v0.29 (PR #3208, seed E).
 * BUG_MISSING_SERVER_HEADER brings back the older state: only the 200 responders "remember"
 * the header; 404, 500 and OPTIONS answers go out without one. Requests evhttp rejects
 * itself (malformed request line, oversized headers) never reach the handler (F-19).
 *
 * Each request is handled in the log context "<METHOD>-<seq>" (Synapse's request ids) and
 * logged at INFO on logger "synapse.access.http.<port>".
 *
 * Ownership: the server borrows `metrics` and the lookup's argument; both must outlive it.
 * Single-threaded: the thread running `base`. */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>

#include "bugs.h"
#include "metrics.h"
#include "rc_error.h"

typedef struct http_server http_server_t;

/* Looks key up in the cache called `cache`. Returns the value (a JSON text, borrowed for
 * the call) or NULL; *cache_known says whether such a cache exists. */
typedef const char *(*http_server_cache_get_fn)(void *arg, const char *cache, const char *key,
                                                bool *cache_known);

/* Offers a request (any method but OPTIONS) to the owner. Returning true takes it: the
 * owner answers it with http_server_reply, now or later (a long-poll), or lets it go
 * when the client's connection closes first. */
typedef bool (*http_server_route_fn)(void *arg, http_server_t *server, struct evhttp_request *req,
                                     const char *path);

typedef struct http_server_config {
  const char *version;                /* the header is "refworker/<version>" */
  metrics_t *metrics;                 /* rendered by GET /metrics */
  http_server_cache_get_fn cache_get; /* NULL: no caches */
  void *cache_arg;
  bug_set_t bugs;             /* only BUG_MISSING_SERVER_HEADER matters here */
  http_server_route_fn route; /* NULL: no routes of the owner */
  void *route_arg;
} http_server_config_t;

/* Listens on 127.0.0.1:port (0 picks a free port: see http_server_port). Returns NULL
 * with err saying why (e.g. the port is taken). */
http_server_t *http_server_create(struct event_base *base, int port,
                                  const http_server_config_t *config, rc_error_t *err);
/* Closes the listener and any open connection. NULL is fine. */
void http_server_destroy(http_server_t *server);

/* Answers a request the route took, through the same path as every other response
 * (Server header, access log). body is JSON text (copied); NULL sends an empty body. */
void http_server_reply(http_server_t *server, struct evhttp_request *req, int status,
                       const char *reason, const char *body);

/* The port actually bound. */
int http_server_port(const http_server_t *server);
/* The Server header's value, "refworker/<version>". */
const char *http_server_header_value(const http_server_t *server);

#endif
