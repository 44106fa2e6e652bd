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

#endif
