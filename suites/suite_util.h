/* suite_util: small steps several protocol tests share (finding the opening of a
 * connection, collecting the SUT's lines in a window). Built on testctx.h. */
#ifndef SUITE_UTIL_H
#define SUITE_UTIL_H

#include "testctx.h"

/* The mock's SERVER line on the first connection, waited for up to 1 s. Records an
 * ERROR and returns NULL if the mock never sent it (a harness problem). */
const ledger_entry_t *suite_opening_server_line(rc_test_t *t, int *conn_id);

/* Time (ns) that windows of the opening count from: the later of the connection and
 * the mock's SERVER line (requirements.md HS-01). */
int64_t suite_opening_origin_ns(rc_test_t *t, int conn_id, const ledger_entry_t *server);

/* Milliseconds left until origin + window_ms (0 if past). */
int suite_ms_left(int64_t origin_ns, int window_ms);

/* Describes the SUT's lines on a connection so far ("NAME worker1 | PING 1 | ...",
 * at most 8), for Actual: texts. Writes into buf. */
const char *suite_sut_lines(rc_test_t *t, int conn_id, char *buf, size_t cap);

/* The first close of conn_id by the SUT at or after from_seq, waited for up to
 * timeout_ms; NULL on timeout. */
const ledger_entry_t *suite_wait_sut_close(rc_test_t *t, int conn_id, uint64_t from_seq,
                                           int timeout_ms);

/* The last line the SUT wrote on conn_id before seq `before`, or NULL. */
const ledger_entry_t *suite_last_sut_line_before(rc_test_t *t, int conn_id, uint64_t before);

/* The reconnect bound of RC-01: 1.36 * D_max + 0.5 s (requirements.md §4). */
int suite_reconnect_bound_ms(const rc_test_t *t);

/* Waits for the SUT's next connection after from_seq (up to timeout_ms) and for its
 * opening to be answered; returns its id or -1 (nothing recorded). */
int suite_wait_new_conn(rc_test_t *t, uint64_t from_seq, int timeout_ms);

/* Position probe (requirements.md §0 "Probes") for a stream the SUT consumes:
 *   modern: sends POSITION <stream> master X X with X above every token so far and
 *           reads from_token of the SUT's get_repl_stream_updates request (the SUT's
 *           position); the mock answers it, so afterwards the SUT is at X;
 *   2018:   closes the connection (FIN) and reads the token of the REPLICATE <stream>
 *           line on the next connection; *conn becomes the new connection.
 * Returns true with *position, or false after recording a failure that names the
 * requirement the missing reaction violates (PO-03 / RC-01 / RC-05). */
bool suite_probe_position(rc_test_t *t, int *conn, const char *stream, int64_t *position);

/* Sends a line on conn (LF added). Records an ERROR if the connection is gone. */
bool suite_send(rc_test_t *t, int conn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* An RDATA line for the profile's dialect (instance "master" in modern). */
void suite_rdata(const rc_test_t *t, char *buf, size_t cap, const char *stream,
                 const char *token, const char *row);

/* Starts, waits for the opening to be answered (REPLICATE answered with POSITIONs),
 * and returns the connection id, or -1 with an outcome recorded. */
int suite_start_connected(rc_test_t *t);

/* True if the SUT closed conn (or it is otherwise gone) within timeout_ms after
 * from_seq; *close gets the close entry. */
bool suite_sut_closed_within(rc_test_t *t, int conn, uint64_t from_seq, int timeout_ms,
                             const ledger_entry_t **close);

/* A harness session (superuser) on this test's own database in the run's cluster, with
 * `app` as its application_name; NULL after recording an ERROR (no cluster or test
 * database, or the connection failed). The caller destroys it (pg_observer_destroy). */
struct pg_observer;
struct pg_observer *suite_db_observer(rc_test_t *t, const char *app);

#endif
