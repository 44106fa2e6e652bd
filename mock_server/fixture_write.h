/* fixture_write: turns a ledger (what the mock, or the proxy, saw on the wire) into a
 * replayable fixture (docs/FIXTURES.md, "Recording"): `mock: scripted`, the mock's
 * lines as `>` steps, the worker's as `<` steps with `unexpected: fail`, HTTP requests,
 * closes, the mock's switches, pauses as `wait`, generous deadlines, and the run's names
 * replaced by placeholders. Used by `replcheck run --record` and `mockhs --proxy`.
 *
 * The writer only reads the ledger (and the stream history for `row` steps). */
#ifndef FIXTURE_WRITE_H
#define FIXTURE_WRITE_H

#include <stdint.h>
#include <stdio.h>

#include "ledger.h"
#include "mockhs.h"
#include "proto.h"
#include "rc_error.h"
#include "stream_history.h"

typedef struct fixture_write_options {
  const char *comment;      /* first line(s) of the file, without '#'; may be NULL */
  const char *requirements; /* header fields, as the fixture format wants them */
  const char *level;        /* "MUST" or "SHOULD" */
  const char *requirement;
  const char *source;
  const char *tags; /* comma-separated, or NULL; "recorded" is always added */
  proto_dialect_t dialect;
  const char *transport;          /* "tcp" or "redis" */
  int ping_interval_ms;           /* the mock's keepalive while recording; -1: leave out */
  const mockhs_stream_t *streams; /* the mock's streams at the start; NULL: its default */
  size_t stream_count;
  const stream_history_t *history; /* rows to declare as `row` steps; may be NULL */
  const char *server_name;         /* replaced by ${server_name}; may be NULL */
  const char *instance_name;       /* the worker's, replaced by ${instance_name}; may be NULL */
  const char *writer;              /* the mock's instance in modern RDATA/POSITION: ${writer} */
  uint64_t from_seq;               /* ledger range [from_seq, to_seq) */
  uint64_t to_seq;
  int64_t end_ns; /* mono time the recording ends (a last `wait`); 0: last entry */
} fixture_write_options_t;

/* Writes the fixture to out. Returns 0, or -1 with err: nothing worth replaying (no
 * connection at all), or a write error. */
int fixture_write_ledger(FILE *out, const ledger_t *ledger, const fixture_write_options_t *o,
                         rc_error_t *err);

#endif
