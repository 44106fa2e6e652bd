/* mockhs: the mock homeserver (the "main process") a worker under test connects to.
 *
 * It listens for direct-TCP replication on 127.0.0.1 (port 0 unless told otherwise),
 * speaks first (SERVER, PING), keeps alive with PINGs when it has sent nothing for a
 * ping interval, answers REPLICATE like a real main of its dialect (modern: one
 * `POSITION <stream> <instance> <p> <p>` per stream it writes; 2018: `POSITION <stream>
 * <p>` per requested stream), rejects lines a real main would reject (ERROR + close),
 * and records everything in a ledger (ledger.h).
 *
 * Back-pressure like a real main (spec §3.3): a connection whose unsent output passes
 * 64 KiB is "paused"; when more than 10000 lines were queued while paused and the SUT
 * has read nothing for MOCKHS_STALL_MS (or the queue passes MOCKHS_MAX_QUEUED_BYTES,
 * the harness's own memory bound) the mock records it, writes "ERROR Failed to keep up"
 * and closes, as Synapse does with a worker that stops reading. A SUT that reads,
 * however slowly, is not closed for the line count, so tests may emit in bulk. A SUT that opens more connections than the process may hold makes the
 * listener pause (noted in the ledger) instead of spinning.
 *
 * Tests drive it synchronously: they send lines or close connections, then wait with
 * a deadline for a ledger entry matching a predicate; waiting runs the event loop, so
 * the mock's timers and I/O only progress inside mockhs_wait_for() / mockhs_run_for().
 *
 * Ownership: mockhs_t belongs to the caller, who also owns the event_base (it must
 * outlive the mock). Everything runs on the thread that runs that event_base. */
#ifndef MOCKHS_H
#define MOCKHS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "proto.h"
#include "rc_error.h"

typedef struct mockhs mockhs_t;

#define MOCKHS_MAX_STREAMS 64
/* Back-pressure (see above): Twisted's write buffer size, Synapse's max_line_buffer,
 * and a byte cap on what may queue for one connection. */
#define MOCKHS_PAUSE_BYTES 65536u
#define MOCKHS_MAX_QUEUED_LINES 10000u
#define MOCKHS_MAX_QUEUED_BYTES (8u * 1024u * 1024u)
/* How long the SUT must have taken no output at all before the line count applies. */
#define MOCKHS_STALL_MS 1000

typedef struct mockhs_stream {
  const char *name;  /* points at caller storage or a literal; copied by mockhs_create */
  int64_t position;
} mockhs_stream_t;

typedef struct mockhs_config {
  proto_dialect_t dialect;
  const char *server_name;   /* sent in SERVER */
  const char *instance_name; /* writer instance in modern RDATA/POSITION ("master") */
  int port;                  /* 0 = any free port (read it back with mockhs_port) */
  int ping_interval_ms;      /* keepalive: PING when nothing was sent for this long; 0 = never */
  bool send_opening;         /* SERVER + PING as soon as a connection is accepted */
  bool answer_replicate;     /* POSITIONs in answer to REPLICATE */
  bool reject_invalid;       /* ERROR + close on lines a real main would reject */
  mockhs_stream_t streams[MOCKHS_MAX_STREAMS]; /* streams the mock writes, in answer order */
  size_t stream_count;
  size_t ledger_capacity;    /* 0 = ledger default */
  size_t ledger_max_bytes;   /* ledger byte budget; 0 = ledger default (ledger.h) */
  bool http_enabled;         /* serve the main's HTTP side (mock_http.h) */
  const char *redis_host;    /* non-NULL: replicate over Redis pub/sub instead of TCP */
  int redis_port;
  int http_port;             /* 0 = any free port */
  int torture_level;         /* 0 = off; 1..3: held, cut and reordered output, a dropped
                              * first connection (torture.h, docs/FIXTURES.md); TCP only */
  uint64_t torture_seed;     /* decides the torture schedule */
} mockhs_config_t;

/* Fills cfg with the defaults of a real main of that dialect: opening on, REPLICATE
 * answered, invalid lines rejected, ping interval 5000 ms, instance "master", and the
 * stream set a Synapse v1.66 main announces (events, backfill, presence, ... as in
 * shared/reference/synapse-1.66/real-pair.txt) for modern, or the 2018 stream set. */
void mockhs_config_defaults(mockhs_config_t *cfg, proto_dialect_t dialect,
                            const char *server_name);

/* Sets the position cfg announces for a stream (after REPLICATE, and its history's
 * start), adding the stream at the end of the answer order when cfg has no such
 * stream. name must outlive cfg's use by mockhs_create (which copies it). Returns 0, or
 * -1 when the stream set is full (MOCKHS_MAX_STREAMS). */
int mockhs_config_set_position(mockhs_config_t *cfg, const char *name, int64_t position);

/* Binds and listens. Returns NULL with err ("cannot listen on 127.0.0.1:8008: Address
 * already in use"). */
mockhs_t *mockhs_create(struct event_base *base, const mockhs_config_t *cfg, rc_error_t *err);
/* Over Redis (cfg.redis_host set) there is no listener: the mock subscribes to
 * <server_name> and <server_name>/USER_IP; what the SUT publishes on each appears as a
 * pseudo-connection (opened in the ledger when the SUT first speaks there), and lines
 * sent to it are PUBLISHed. Closing such a connection is not possible (-1).
 * Waits until the transport can carry lines: always true for TCP; for Redis, until
 * the subscription is acknowledged. false with err on a problem or after timeout_ms. */
bool mockhs_transport_ready(mockhs_t *mock, int timeout_ms, rc_error_t *err);

/* Redis only: reconnects and resubscribes (after the test restarted redis-server). */
int mockhs_redis_reconnect(mockhs_t *mock, int timeout_ms, rc_error_t *err);

/* Closes every connection (RST-free: plain close) and the listener. NULL is fine. */
void mockhs_destroy(mockhs_t *mock);

int mockhs_port(const mockhs_t *mock);
ledger_t *mockhs_ledger(mockhs_t *mock);
proto_dialect_t mockhs_dialect(const mockhs_t *mock);
const char *mockhs_server_name(const mockhs_t *mock);

/* Id of the most recently accepted connection that is still open, or -1. */
int mockhs_latest_conn(const mockhs_t *mock);
/* Whether that connection is open (accepted and not yet closed by either side). */
bool mockhs_conn_is_open(const mockhs_t *mock, int conn_id);
/* Connections accepted so far. */
int mockhs_accepted_count(const mockhs_t *mock);

/* Changes the SERVER name sent to connections accepted from now on. */
int mockhs_set_server_name(mockhs_t *mock, const char *server_name);
/* Turns the periodic PING on or off for all connections (off = starve the SUT). */
void mockhs_set_pinging(mockhs_t *mock, bool enabled);
/* Stops (false) or resumes (true) accepting: a closed listener refuses connections. */
int mockhs_set_listening(mockhs_t *mock, bool listening, rc_error_t *err);

/* Writes one line (LF appended) and records it. The line is sent as given, even if
 * it is malformed (tests send bad lines on purpose). Returns 0, or -1 if the
 * connection is not open. */
int mockhs_send_line(mockhs_t *mock, int conn_id, const char *line, size_t len);
/* Writes raw bytes (no LF added); each LF-terminated piece is recorded as a line and
 * a trailing piece without LF as a partial line. */
int mockhs_send_raw(mockhs_t *mock, int conn_id, const char *bytes, size_t len);
/* Formats with the codec in the mock's dialect and sends. */
int mockhs_send_command(mockhs_t *mock, int conn_id, const proto_command_t *cmd,
                        rc_error_t *err);
/* Closes a connection from the mock's side: FIN after flushing (reset=false) or an
 * immediate RST (reset=true); under torture both come after the lines held so far. */
int mockhs_close_conn(mockhs_t *mock, int conn_id, bool reset);
/* Stops (true) or resumes (false) reading from and writing to a connection, its
 * keepalive included; on resuming, what arrived meanwhile is read. -1 if not open. */
int mockhs_set_conn_stalled(mockhs_t *mock, int conn_id, bool stalled);

/* Torture (cfg.torture_level): lines are recorded in the ledger when they are written.
 * Monotonic ms by which everything sent so far is on the wire (now when nothing is
 * held). */
int64_t mockhs_output_settled_ms(const mockhs_t *mock);
/* Whether torture drops (or dropped) this connection in its opening; tests' waits skip
 * such a connection (testctx.h rc_entry_matches). */
bool mockhs_conn_torture_dropped(const mockhs_t *mock, int conn_id);
/* Monotonic ms of the torture drop, 0 if none happened. */
int64_t mockhs_torture_drop_ms(const mockhs_t *mock);
/* One line saying what torture did so far (level, seed, lines held and cut, shuffles,
 * the drop) into buf; returns its length. */
size_t mockhs_torture_summary(const mockhs_t *mock, char *buf, size_t cap);

/* One row to emit: its token and its JSON (the stream's row layout). */
typedef struct mockhs_row {
  int64_t token;
  const char *json;
} mockhs_row_t;

/* Emits rows on a stream the mock writes, like a real main: to every open connection,
 * each row whose next row has the same token as `batch` (the last of a run carries the
 * token), and into the stream's history (2018 REPLICATE and HTTP catch-up serve it).
 * Rows must come in non-decreasing token order. Each row is formatted and validated
 * once per call, whatever the number of connections; a row the codec refuses is sent
 * nowhere and noted in each connection's ledger in its place. Lines are handed to each
 * connection in pieces of up to 256 KiB; the lines of a piece share their ledger
 * timestamp (they are queued at the same instant). */
int mockhs_emit(mockhs_t *mock, const char *stream, const mockhs_row_t *rows, size_t count,
                rc_error_t *err);
/* Sends a POSITION to one connection (2018 uses new_token only). */
int mockhs_send_position(mockhs_t *mock, int conn_id, const char *stream, int64_t prev_token,
                         int64_t new_token);

struct stream_history;
struct mock_http;
/* The mock's streams (positions, emitted rows); owned by the mock. */
struct stream_history *mockhs_history(mockhs_t *mock);
/* The HTTP side, or NULL when disabled; owned by the mock. */
struct mock_http *mockhs_http(mockhs_t *mock);
/* Port of the HTTP side ({http_url} is http://127.0.0.1:<port>), 0 when disabled. */
int mockhs_http_port(const mockhs_t *mock);

/* Predicate over ledger entries. */
typedef bool (*mockhs_match_fn)(const ledger_entry_t *entry, void *arg);

/* Runs the event loop until an entry with seq >= from_seq satisfies match, or
 * timeout_ms passes. Returns the entry, or NULL on timeout. Entries already in the
 * ledger are checked first. The timeout counts from when the output held by torture at
 * the call is on the wire, or from a torture drop during the wait (a window the mock's
 * own delays would otherwise shorten). */
const ledger_entry_t *mockhs_wait_for(mockhs_t *mock, uint64_t from_seq,
                                      mockhs_match_fn match, void *arg, int timeout_ms);
/* The same with an absolute monotonic deadline in ms, never extended. */
const ledger_entry_t *mockhs_wait_until(mockhs_t *mock, uint64_t from_seq, mockhs_match_fn match,
                                        void *arg, int64_t deadline_ms);
/* Runs the event loop for duration_ms (an observation window, not a sleep: the mock
 * keeps serving), counted like mockhs_wait_for's timeout. */
void mockhs_run_for(mockhs_t *mock, int duration_ms);
/* Runs the event loop until cond(arg) is true or the timeout passes; returns cond's
 * last value. For waits on things outside the ledger (a log file, a process exit). */
bool mockhs_run_until(mockhs_t *mock, bool (*cond)(void *arg), void *arg, int timeout_ms,
                      int poll_ms);

#endif
