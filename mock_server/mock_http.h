/* mock_http: the main process's HTTP side, as a worker sees it (evhttp on 127.0.0.1).
 *
 * Serves GET /_synapse/replication/get_repl_stream_updates/<stream>/<txn_id>
 *   ?from_token=<int>&upto_token=<int>
 * from the mock's stream history: {"updates": [[token, row], ...], "upto_token": N,
 * "limited": bool} in pages (spec §7), 400 "Unknown stream" for a stream it does not
 * write, 400 for missing or non-integer tokens; answers the write endpoints a worker
 * calls (/_synapse/replication/<name>/...: presence_set_state, send_event, ...) with
 * 200 {}; anything else 404. Every request is recorded in the ledger as a LEDGER_HTTP
 * entry "METHOD /path?query". Tests can make the next N requests fail with a status or
 * hold answers for a while (catch-up failure and ordering tests).
 *
 * Owned by the mock homeserver; runs on its event loop. */
#ifndef MOCK_HTTP_H
#define MOCK_HTTP_H

#include <event2/event.h>
#include <stddef.h>

#include "ledger.h"
#include "rc_error.h"
#include "stream_history.h"

typedef struct mock_http mock_http_t;

/* Listens on 127.0.0.1:port (0 = any). history and ledger must outlive it. */
mock_http_t *mock_http_create(struct event_base *base, int port, stream_history_t *history,
                              ledger_t *ledger, rc_error_t *err);
void mock_http_destroy(mock_http_t *http);
int mock_http_port(const mock_http_t *http);

/* Rows per get_repl_stream_updates page (Synapse: 100). */
void mock_http_set_page_size(mock_http_t *http, size_t rows);
/* The next `count` stream-update requests are answered with `status` and a JSON error. */
void mock_http_fail_next(mock_http_t *http, int status, int count);
/* Stream-update answers are held for delay_ms before being sent (0 = at once). */
void mock_http_set_delay(mock_http_t *http, int delay_ms);

#endif
