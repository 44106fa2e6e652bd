/* http_catchup: refworker's client for the main process's stream-updates endpoint
 *
 *   GET <base>/_synapse/replication/get_repl_stream_updates/<stream>/<txn_id>
 *       ?from_token=<from>&upto_token=<upto>
 *
 * (spec §7, PO-04). One request fetches one page, answered 200 with
 *   {"updates": [[<token>, <row>], ...], "upto_token": <int>, "limited": <bool>};
 * the caller decides whether to ask for the next page (stream_catchup.h).
 *
 * Why libevent's evhttp client rather than libcurl's multi interface: refworker is one
 * libevent loop and already links libevent; evhttp's client runs on that loop directly,
 * with no socket/timer bridge to maintain, and a catch-up needs little of HTTP: a GET,
 * keep-alive, a JSON body, cancellation. What evhttp does not give is added here: a
 * deadline per request (evhttp's own timeout restarts with every read), a pool of
 * keep-alive connections (an evhttp connection carries one request at a time, and
 * catch-ups of different streams run at the same time), non-blocking name resolution
 * (an evdns base, made only when the URL's host is a name) and a strict check of the
 * body's shape with jansson.
 *
 * Ownership: the client owns its pooled connections and every request in flight.
 * A request's callback runs exactly once, always from the event loop (never from inside
 * http_catchup_fetch), unless the request is cancelled first. When the callback runs the
 * request is already finished: do not cancel it; starting new requests is fine.
 * http_catchup_destroy cancels whatever is in flight without callbacks and closes the
 * pooled connections; never call it from inside a callback.
 * Single-threaded: use only from the thread running `base`. */
#ifndef HTTP_CATCHUP_H
#define HTTP_CATCHUP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rc_error.h"

typedef struct http_catchup http_catchup_t;
typedef struct http_catchup_request http_catchup_request_t;

/* Biggest response body accepted (a page is 100 rows in Synapse). */
#define HTTP_CATCHUP_MAX_BODY (64 * 1024 * 1024)

typedef struct http_catchup_update {
  int64_t token;
  const char *row; /* the row (a JSON array) re-encoded compactly, NUL-terminated */
} http_catchup_update_t;

/* One checked page. Tokens are non-decreasing, each in (from, upto_token]; upto_token is
 * in [from, upto] and, when limited, above from (so paging always progresses). */
typedef struct http_catchup_page {
  const http_catchup_update_t *updates;
  size_t count;
  int64_t upto_token;
  bool limited;
} http_catchup_page_t;

/* On success page is set and error NULL; on failure page is NULL and error says which
 * request failed and why (status and body, connection error, timeout, or what is wrong
 * with the body). Both are borrowed for the duration of the call. */
typedef void (*http_catchup_page_fn)(void *arg, const http_catchup_page_t *page, const char *error);

/* Whether base_url is usable: "http://host[:port][/prefix]", no user, query or fragment.
 * Returns 0, or -1 with err saying what is wrong (for usage errors before starting). */
int http_catchup_check_url(const char *base_url, rc_error_t *err);

/* base_url as above; every request has a deadline of timeout_ms. Returns NULL with err
 * saying what is wrong. */
http_catchup_t *http_catchup_create(struct event_base *base, const char *base_url,
                                    int64_t timeout_ms, rc_error_t *err);
/* Cancels every request in flight (no callbacks) and closes the connections. NULL is
 * fine. */
void http_catchup_destroy(http_catchup_t *client);

/* Starts GET .../<stream>/<fresh random txn_id>?from_token=from&upto_token=upto. Returns
 * the request, or NULL with err filled (then `done` never runs). */
http_catchup_request_t *http_catchup_fetch(http_catchup_t *client, const char *stream,
                                           int64_t from_token, int64_t upto_token,
                                           http_catchup_page_fn done, void *arg, rc_error_t *err);
/* Abandons a request: its callback will not run and its answer is never read. */
void http_catchup_cancel(http_catchup_request_t *request);

/* Checks a 200 body for a request of (from, upto] and fills *page; the rows are owned
 * by *storage until http_catchup_page_free. Returns 0, or -1 with err saying what is
 * wrong ("'updates'[2][0]: expected an integer token, got string"). */
typedef struct http_catchup_page_storage {
  http_catchup_update_t *updates;
  size_t count;
} http_catchup_page_storage_t;
int http_catchup_parse_page(const char *body, size_t len, int64_t from, int64_t upto,
                            http_catchup_page_t *page, http_catchup_page_storage_t *storage,
                            rc_error_t *err);
void http_catchup_page_free(http_catchup_page_storage_t *storage);

/* refworker --bug http-conn-leak: from now on no connection goes back to the pool
 * after its request, so every request opens a new keep-alive connection that stays open
 * until the server drops it or the client is destroyed. */
void http_catchup_leak_connections(http_catchup_t *client);

#endif
