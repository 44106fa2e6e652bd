/* mock_proxy: a recording proxy between workers and a real main process over direct TCP
 * replication (`mockhs --proxy HOST:PORT`).
 *
 * It listens on 127.0.0.1 (port 0 = any), and for every worker that connects opens a
 * connection to the main, then forwards bytes both ways unchanged while recording every
 * line in a ledger exactly as the mock homeserver does: the worker is the SUT side, the
 * main the mock side; connections, closes (who and how) and failures to reach the main
 * are entries too. fixture_write.h turns that ledger into a fixture.
 *
 * Lines are split with the protocol codec's framing (proto_frame_next); an over-long
 * line is recorded as its first PROTO_MAX_LINE bytes, marked partial, and still
 * forwarded whole. Ownership: the caller owns the proxy, the event base and the ledger
 * (both must outlive it). Runs on that event base's thread. */
#ifndef MOCK_PROXY_H
#define MOCK_PROXY_H

#include <event2/event.h>

#include "ledger.h"
#include "rc_error.h"

typedef struct mock_proxy mock_proxy_t;

mock_proxy_t *mock_proxy_create(struct event_base *base, int listen_port, const char *main_host,
                                int main_port, ledger_t *ledger, rc_error_t *err);
/* Closes every connection (both sides) and the listener. NULL is fine. */
void mock_proxy_destroy(mock_proxy_t *proxy);

int mock_proxy_port(const mock_proxy_t *proxy);
/* After the n-th worker connection (0 = no limit) the proxy refuses further ones (its
 * listener closes); sessions in progress go on. */
void mock_proxy_set_max_sessions(mock_proxy_t *proxy, int n);
/* Worker connections accepted so far, and of those, ended. */
int mock_proxy_sessions(const mock_proxy_t *proxy);
int mock_proxy_sessions_ended(const mock_proxy_t *proxy);

#endif
