/* http_probe: HTTP requests from the harness to the SUT's own listeners (observation
 * channel S of requirements.md §0) and metrics scrapes (channel M), with libcurl.
 *
 * One blocking request per call, with a total deadline: the caller's event loop does
 * not run meanwhile, so keep timeouts short (the mock's kernel buffers absorb the SUT's
 * traffic in the meantime). No redirects are followed, no proxy is used (whatever the
 * environment says: the SUT is probed directly), only http:// and https:// URLs.
 * The response keeps every header as received (repeated ones included) for
 * case-insensitive lookup, and at most max_body bytes of the body (a longer body is cut
 * there and flagged, and the transfer stops).
 *
 * Ownership: a response belongs to the caller (http_response_destroy). No global state
 * beyond libcurl's own initialisation, which the first call performs. */
#ifndef HTTP_PROBE_H
#define HTTP_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "prom.h"
#include "rc_error.h"

#define HTTP_PROBE_DEFAULT_MAX_BODY (4u * 1024u * 1024u)
#define HTTP_PROBE_MAX_HEADERS 512

typedef struct http_request {
  const char *method;               /* "GET" when NULL; "HEAD" asks for no body */
  const char *url;                  /* http:// or https:// */
  int timeout_ms;                   /* whole request; <= 0 means 5000 */
  size_t max_body;                  /* 0 means HTTP_PROBE_DEFAULT_MAX_BODY */
  const char *const *extra_headers; /* NULL-terminated "Name: value" lines, or NULL */
} http_request_t;

typedef struct http_header {
  char *name;  /* as the server spelt it */
  char *value; /* leading and trailing blanks removed; may be empty */
} http_header_t;

typedef struct http_response {
  long status;            /* e.g. 200 */
  http_header_t *headers; /* of the final response, in order received */
  size_t header_count;
  char *body; /* NUL-terminated (the body itself may contain NULs) */
  size_t body_len;
  bool body_truncated; /* the body was longer than max_body */
  double seconds;      /* time from start to the end of the transfer */
} http_response_t;

/* Performs the request. Returns the response (any status, 500 included), or NULL with
 * err saying what went wrong, naming the method and URL: "GET http://127.0.0.1:9/x:
 * connection refused (nothing listens there)", "...: no complete response within
 * 2000 ms", "...: more than 512 response headers". */
http_response_t *http_probe(const http_request_t *request, rc_error_t *err);
void http_response_destroy(http_response_t *response);

/* How many headers are called `name` (ASCII case-insensitive). */
size_t http_response_header_count(const http_response_t *response, const char *name);
/* The value of the index-th header called `name`, or NULL. */
const char *http_response_header(const http_response_t *response, const char *name, size_t index);

/* ---- on an event loop ---------------------------------------------------------------
 * A request that must not stop the caller's loop (a /sync long-poll held open while the
 * mock keeps serving the SUT): libcurl's multi interface, driven by a timer on `base`
 * every HTTP_PROBE_ASYNC_TICK_MS while the transfer runs. Same rules and deadline as
 * http_probe. The request's strings are copied. */
#define HTTP_PROBE_ASYNC_TICK_MS 5

struct event_base;
typedef struct http_probe_async http_probe_async_t;

/* Starts the request; NULL with err on a bad URL or no memory. */
http_probe_async_t *http_probe_start(struct event_base *base, const http_request_t *request,
                                     rc_error_t *err);
/* Whether the transfer has ended (response, failure or deadline). */
bool http_probe_async_done(const http_probe_async_t *probe);
/* Once done: the response (the caller's), or NULL with err as http_probe says it. Only
 * once; before the end, NULL with "still running". */
http_response_t *http_probe_async_take(http_probe_async_t *probe, rc_error_t *err);
/* Abandons a running transfer (closing its connection) and frees. NULL is fine. */
void http_probe_async_destroy(http_probe_async_t *probe);

/* GETs a Prometheus text endpoint and parses it. Returns NULL with err on a transport
 * error, a status other than 200, a truncated body or a parse error ("metrics at URL:
 * line 3, column 1: ..."). */
prom_t *http_probe_metrics(const char *url, int timeout_ms, rc_error_t *err);

#endif
