/* mockhs_emit: rows written in bulk, like a real main's stream updates.
 *
 * Bulk emission is what a throughput test spends its time in, so the work per row is
 * done once per emission, not once per connection, and per piece, not per line: rows
 * are formatted (and their JSON validated) by the codec into one buffer, and each
 * connection gets a piece of up to PIECE_BYTES with one guard pass, one ledger call
 * (one clock read) and one buffer append. What goes on the wire and into the ledger
 * is exactly what line-by-line sending would give. */
#include <stdlib.h>
#include <string.h>

#include "mockhs_internal.h"

/* A piece is handed to the connections once it holds this much (or ENDS lines). */
#define PIECE_BYTES (256u * 1024u)
#define PIECE_LINES 4096u

struct mockhs_piece {
  char *buf; /* PIECE_BYTES + room for one more line and its LF */
  size_t len;
  size_t ends[PIECE_LINES]; /* where each line's LF is */
  size_t count;
};
typedef struct mockhs_piece piece_t;

static void piece_flush(mockhs_t *mock, piece_t *piece) {
  if (piece->count == 0) return;
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next)
    if (c->open && !c->closing)
      mock_conn_send_lines(mock, c, piece->buf, piece->ends, piece->count);
  piece->len = 0;
  piece->count = 0;
}

/* A row the codec refuses goes to no connection; each open one notes why, in order. */
static void note_refused(mockhs_t *mock, piece_t *piece, const proto_error_t *perr) {
  piece_flush(mock, piece);
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next)
    if (c->open && !c->closing)
      mock_record(mock, c->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, perr->message,
                  strlen(perr->message));
}

void mock_emit_free(mockhs_t *mock) {
  if (mock->emit_piece == NULL) return;
  free(mock->emit_piece->buf);
  free(mock->emit_piece);
  mock->emit_piece = NULL;
}

int mockhs_emit(mockhs_t *mock, const char *stream, const mockhs_row_t *rows, size_t count,
                rc_error_t *err) {
  int64_t position;
  if (!stream_history_position(mock->history, stream, &position))
    return rc_error_set(err, "mock homeserver: stream '%s' is not one the mock writes", stream);
  /* Kept for the mock's lifetime: a fresh quarter-megabyte buffer per call is an
   * mmap, and page faults on it, every time. */
  if (mock->emit_piece == NULL) {
    piece_t *fresh = malloc(sizeof *fresh);
    char *buf = malloc(PIECE_BYTES + PROTO_MAX_LINE + 2);
    if (fresh == NULL || buf == NULL) {
      free(fresh);
      free(buf);
      return rc_error_set(err, "mock homeserver: out of memory");
    }
    fresh->buf = buf;
    mock->emit_piece = fresh;
  }
  piece_t *piece = mock->emit_piece;
  piece->len = 0;
  piece->count = 0;
  /* The head ("RDATA <stream> <instance> ") is checked once per call, each row then. */
  proto_rdata_writer_t writer;
  proto_rdata_writer_init(&writer, mock->cfg.dialect, proto_slice_cstr(stream),
                          proto_slice_cstr(mock->instance_name));
  bool anyone = false; /* formatting is skipped when no connection would get the line */
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next) anyone |= c->open && !c->closing;
  int rc = 0;
  for (size_t i = 0; i < count; i++) {
    size_t len = strlen(rows[i].json);
    if (stream_history_append(mock->history, stream, rows[i].token, rows[i].json, len) != 0) {
      rc = rc_error_set(err, "mock homeserver: out of memory");
      break;
    }
    if (!anyone) continue;
    /* Like Synapse's _batch_updates: a row whose next row has the same token goes as
     * 'batch'; the last row of each equal-token run carries the number. */
    bool batch = i + 1 < count && rows[i + 1].token == rows[i].token;
    proto_error_t perr;
    int n = proto_rdata_write(&writer, batch, rows[i].token, (proto_slice_t){rows[i].json, len},
                              piece->buf + piece->len, PROTO_MAX_LINE + 1, &perr);
    if (n < 0) {
      note_refused(mock, piece, &perr);
      continue;
    }
    piece->len += (size_t)n;
    piece->ends[piece->count++] = piece->len;
    piece->buf[piece->len++] = '\n';
    if (piece->len >= PIECE_BYTES || piece->count == PIECE_LINES) piece_flush(mock, piece);
  }
  piece_flush(mock, piece);
  return rc;
}
