#include "stream_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wlog.h"

/* Synapse logs stream handling from the command handler: client.py in 2018, handler.py
 * since v1.13. */
#define WLOG_LOGGER                                                        \
  (state->dialect == PROTO_DIALECT_2018 ? "synapse.replication.tcp.client" \
                                        : "synapse.replication.tcp.handler")

typedef struct stream_writer {
  char *instance;
  int64_t position; /* STREAM_POSITION_UNKNOWN until the first POSITION (modern) */
} stream_writer_t;

typedef struct stream_entry {
  char *name;
  int64_t initial; /* may be STREAM_POSITION_UNKNOWN (modern only) */
  stream_writer_t *writers;
  size_t writer_count;
  size_t writer_cap;
  char **batch; /* JSON rows received as `batch`, arrival order */
  size_t batch_count;
  size_t batch_cap;
  bool connected;
} stream_entry_t;

struct stream_state {
  proto_dialect_t dialect;
  char *own_instance;
  stream_entry_t *streams;
  size_t count;
  size_t cap;
  stream_unit_fn on_unit;
  void *on_unit_arg;
};

stream_state_t *stream_state_create(proto_dialect_t dialect, const char *own_instance,
                                    stream_unit_fn on_unit, void *on_unit_arg, rc_error_t *err) {
  if (dialect != PROTO_DIALECT_2018 && dialect != PROTO_DIALECT_MODERN) {
    rc_error_set(err, "stream_state: unknown dialect %d", (int)dialect);
    return NULL;
  }
  stream_state_t *state = calloc(1, sizeof *state);
  if (state == NULL || (state->own_instance = strdup(own_instance ? own_instance : "")) == NULL) {
    free(state);
    rc_error_set(err, "stream_state: out of memory");
    return NULL;
  }
  state->dialect = dialect;
  state->on_unit = on_unit;
  state->on_unit_arg = on_unit_arg;
  return state;
}

static void stream_entry_clear_batch(stream_entry_t *entry) {
  for (size_t i = 0; i < entry->batch_count; i++) free(entry->batch[i]);
  entry->batch_count = 0;
}

void stream_state_destroy(stream_state_t *state) {
  if (state == NULL) return;
  for (size_t i = 0; i < state->count; i++) {
    stream_entry_t *entry = &state->streams[i];
    stream_entry_clear_batch(entry);
    free(entry->batch);
    for (size_t w = 0; w < entry->writer_count; w++) free(entry->writers[w].instance);
    free(entry->writers);
    free(entry->name);
  }
  free(state->streams);
  free(state->own_instance);
  free(state);
}

static stream_entry_t *stream_find(const stream_state_t *state, const char *name, size_t len) {
  for (size_t i = 0; i < state->count; i++) {
    stream_entry_t *entry = &state->streams[i];
    if (strlen(entry->name) == len && memcmp(entry->name, name, len) == 0) return entry;
  }
  return NULL;
}

int stream_state_add_stream(stream_state_t *state, const char *name, int64_t initial,
                            rc_error_t *err) {
  if (name == NULL || name[0] == '\0') return rc_error_set(err, "stream name is empty");
  if (strpbrk(name, " \t\r\n") != NULL)
    return rc_error_set(err, "stream name '%s' contains whitespace", name);
  if (initial < 0 && initial != STREAM_POSITION_UNKNOWN)
    return rc_error_set(err, "stream %s: initial position %" PRId64 " is negative", name, initial);
  /* A 2018 REPLICATE needs a number: a 2018 worker with nothing stored asks from 0. */
  if (initial == STREAM_POSITION_UNKNOWN && state->dialect == PROTO_DIALECT_2018) initial = 0;
  if (stream_find(state, name, strlen(name)) != NULL)
    return rc_error_set(err, "stream %s is given twice", name);
  if (state->count == state->cap) {
    size_t cap = state->cap == 0 ? 8 : state->cap * 2;
    stream_entry_t *grown = realloc(state->streams, cap * sizeof *grown);
    if (grown == NULL) return rc_error_set(err, "stream %s: out of memory", name);
    state->streams = grown;
    state->cap = cap;
  }
  stream_entry_t *entry = &state->streams[state->count];
  memset(entry, 0, sizeof *entry);
  if ((entry->name = strdup(name)) == NULL)
    return rc_error_set(err, "stream %s: out of memory", name);
  entry->initial = initial;
  state->count++;
  return 0;
}

proto_dialect_t stream_state_dialect(const stream_state_t *state) {
  return state->dialect;
}

size_t stream_state_stream_count(const stream_state_t *state) {
  return state->count;
}

const char *stream_state_stream_name(const stream_state_t *state, size_t i) {
  return i < state->count ? state->streams[i].name : NULL;
}

static stream_writer_t *writer_find(const stream_entry_t *entry, const char *instance, size_t len) {
  for (size_t w = 0; w < entry->writer_count; w++) {
    stream_writer_t *writer = &entry->writers[w];
    if (strlen(writer->instance) == len && memcmp(writer->instance, instance, len) == 0)
      return writer;
  }
  return NULL;
}

/* The writer's record, created at the stream's initial position on first sight. */
static stream_writer_t *writer_get(stream_entry_t *entry, const char *instance, size_t len) {
  stream_writer_t *writer = writer_find(entry, instance, len);
  if (writer != NULL) return writer;
  if (entry->writer_count == entry->writer_cap) {
    size_t cap = entry->writer_cap == 0 ? 2 : entry->writer_cap * 2;
    stream_writer_t *grown = realloc(entry->writers, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    entry->writers = grown;
    entry->writer_cap = cap;
  }
  char *copy = strndup(instance, len);
  if (copy == NULL) return NULL;
  writer = &entry->writers[entry->writer_count++];
  writer->instance = copy;
  writer->position = entry->initial;
  return writer;
}

int64_t stream_state_position(const stream_state_t *state, const char *stream,
                              const char *instance) {
  const stream_entry_t *entry = stream_find(state, stream, strlen(stream));
  if (entry == NULL) return -1;
  if (instance == NULL) instance = "";
  const stream_writer_t *writer = writer_find(entry, instance, strlen(instance));
  return writer != NULL ? writer->position : entry->initial;
}

int64_t stream_state_max_position(const stream_state_t *state, const char *stream) {
  const stream_entry_t *entry = stream_find(state, stream, strlen(stream));
  if (entry == NULL) return STREAM_POSITION_UNKNOWN;
  int64_t max = entry->initial;
  for (size_t w = 0; w < entry->writer_count; w++)
    if (entry->writers[w].position > max) max = entry->writers[w].position;
  return max;
}

size_t stream_state_pending_rows(const stream_state_t *state, const char *stream) {
  const stream_entry_t *entry = stream_find(state, stream, strlen(stream));
  return entry != NULL ? entry->batch_count : 0;
}

bool stream_state_is_connected(const stream_state_t *state, const char *stream) {
  const stream_entry_t *entry = stream_find(state, stream, strlen(stream));
  return entry != NULL && entry->connected;
}

void stream_state_reset_connection(stream_state_t *state) {
  for (size_t i = 0; i < state->count; i++) {
    stream_entry_clear_batch(&state->streams[i]);
    state->streams[i].connected = false;
  }
}

bool stream_state_wants(const stream_state_t *state, const proto_command_t *cmd) {
  if (cmd->kind != PROTO_CMD_RDATA && cmd->kind != PROTO_CMD_POSITION) return false;
  const char *what = proto_command_name(cmd->kind);
  if (state->dialect == PROTO_DIALECT_MODERN &&
      proto_slice_eq(cmd->instance, state->own_instance)) {
    WLOG_DEBUG("Ignoring %s %.*s from our own instance", what, (int)cmd->stream.len,
               cmd->stream.ptr);
    return false;
  }
  if (stream_find(state, cmd->stream.ptr, cmd->stream.len) == NULL) {
    WLOG_DEBUG("Ignoring %s for stream %.*s: not consumed by this worker", what,
               (int)cmd->stream.len, cmd->stream.ptr);
    return false;
  }
  return true;
}

static int batch_append(stream_entry_t *entry, proto_slice_t row) {
  if (entry->batch_count == entry->batch_cap) {
    size_t cap = entry->batch_cap == 0 ? 4 : entry->batch_cap * 2;
    char **grown = realloc(entry->batch, cap * sizeof *grown);
    if (grown == NULL) return -1;
    entry->batch = grown;
    entry->batch_cap = cap;
  }
  char *copy = strndup(row.ptr, row.len);
  if (copy == NULL) return -1;
  entry->batch[entry->batch_count++] = copy;
  return 0;
}

static void format_token(const proto_command_t *cmd, char *buf, size_t cap) {
  if (cmd->token_is_batch)
    snprintf(buf, cap, "batch");
  else
    snprintf(buf, cap, "%" PRId64, cmd->token);
}

/* One unit becomes the writer's position: logged as Synapse logs applied rows, then
 * handed to on_unit. */
static void unit_emit(stream_state_t *state, stream_entry_t *entry, stream_writer_t *writer,
                      int64_t token, const char *const *rows, size_t row_count) {
  writer->position = token;
  if (state->dialect == PROTO_DIALECT_2018)
    WLOG_INFO("Received rdata %s -> %" PRId64, entry->name, token);
  else
    WLOG_INFO("Received rdata %s (%s) -> %" PRId64, entry->name, writer->instance, token);
  WLOG_DEBUG("Applied a unit of %zu row(s) of %s at %" PRId64, row_count, entry->name, token);
  if (state->on_unit != NULL) {
    stream_unit_t unit = {
        .stream = entry->name,
        .instance = writer->instance,
        .token = token,
        .rows = rows,
        .row_count = row_count,
    };
    state->on_unit(state->on_unit_arg, &unit);
  }
}

/* The buffered rows plus this RDATA's row, at its token, become the writer's new
 * position (RD-02). The batch is consumed either way. */
static int rdata_apply_unit(stream_state_t *state, stream_entry_t *entry, stream_writer_t *writer,
                            const proto_command_t *cmd, rc_error_t *err) {
  if (batch_append(entry, cmd->row) != 0) {
    stream_entry_clear_batch(entry);
    return rc_error_set(err, "RDATA %s %" PRId64 ": out of memory, rows dropped", entry->name,
                        cmd->token);
  }
  unit_emit(state, entry, writer, cmd->token, (const char *const *)entry->batch,
            entry->batch_count);
  stream_entry_clear_batch(entry);
  return 0;
}

static int rdata_2018(stream_state_t *state, stream_entry_t *entry, const proto_command_t *cmd,
                      rc_error_t *err) {
  if (cmd->token_is_batch) {
    if (batch_append(entry, cmd->row) != 0)
      return rc_error_set(err, "RDATA %s batch: out of memory, row dropped", entry->name);
    return 0;
  }
  stream_writer_t *writer = writer_get(entry, "", 0);
  if (writer == NULL) return rc_error_set(err, "RDATA %s: out of memory", entry->name);
  return rdata_apply_unit(state, entry, writer, cmd, err);
}

static int rdata_modern(stream_state_t *state, stream_entry_t *entry, const proto_command_t *cmd,
                        rc_error_t *err) {
  char token[32];
  format_token(cmd, token, sizeof token);
  /* Without a POSITION on this connection we cannot know nothing was missed before
   * this row; the POSITION's catch-up will cover it (RD-05). */
  if (!entry->connected) {
    WLOG_DEBUG("Discarding RDATA for unconnected stream %s -> %s", entry->name, token);
    return 0;
  }
  if (cmd->token_is_batch) {
    if (batch_append(entry, cmd->row) != 0)
      return rc_error_set(err, "RDATA %s batch: out of memory, row dropped", entry->name);
    return 0;
  }
  stream_writer_t *writer = writer_get(entry, cmd->instance.ptr, cmd->instance.len);
  if (writer == NULL) return rc_error_set(err, "RDATA %s: out of memory", entry->name);
  if (cmd->token <= writer->position) {
    /* Already have it (RD-06); a reset stream is announced by POSITION instead. */
    WLOG_DEBUG("Discarding RDATA from stream %s at position %s before previous position %" PRId64,
               entry->name, token, writer->position);
    stream_entry_clear_batch(entry);
    return 0;
  }
  return rdata_apply_unit(state, entry, writer, cmd, err);
}

static int position_2018(stream_state_t *state, stream_entry_t *entry, const proto_command_t *cmd,
                         rc_error_t *err) {
  stream_writer_t *writer = writer_get(entry, "", 0);
  if (writer == NULL) return rc_error_set(err, "POSITION %s: out of memory", entry->name);
  /* Adopted even when lower: typing restarts from low values after a main restart (RD-09). */
  writer->position = cmd->token;
  WLOG_INFO("Position of stream %s is now %" PRId64, entry->name, cmd->token);
  return 0;
}

static void position_finish(stream_state_t *state, stream_entry_t *entry, stream_writer_t *writer,
                            int64_t position) {
  writer->position = position;
  entry->connected = true;
  WLOG_INFO("Caught up with stream '%s' to %" PRId64, entry->name, position);
}

/* Whether a POSITION with these tokens leaves rows to fetch from position cur: HEAD's
 * rule (spec §2.4). v1.66 fetched whenever prev != cur; both are allowed (F-12). */
static bool position_shows_gap(int64_t cur, int64_t prev_token, int64_t new_token) {
  return !(prev_token <= cur && cur <= new_token);
}

static int position_modern_begin(stream_state_t *state, stream_entry_t *entry,
                                 const proto_command_t *cmd, stream_writer_t **writer_out,
                                 bool *fetch, rc_error_t *err) {
  /* The catch-up re-reads whatever the buffered rows were part of (spec §2.3), and until
   * it has finished the stream is not connected: rows arriving meanwhile are dropped if
   * it fails (Synapse's _process_position discards the stream from every connection). */
  stream_entry_clear_batch(entry);
  entry->connected = false;
  *fetch = false;
  stream_writer_t *writer = writer_get(entry, cmd->instance.ptr, cmd->instance.len);
  if (writer == NULL) return rc_error_set(err, "POSITION %s: out of memory", entry->name);
  *writer_out = writer;
  int64_t cur = writer->position;
  if (cur == STREAM_POSITION_UNKNOWN) {
    WLOG_INFO("Stream %s (%s) has no position yet; starting at %" PRId64, entry->name,
              writer->instance, cmd->new_token);
    position_finish(state, entry, writer, cmd->new_token);
  } else if (cur > cmd->new_token) {
    /* Ahead of the writer's announcement: a fetch of (cur, new] would be empty, and
     * writers' positions only move forward in the modern dialect. */
    WLOG_INFO("Stream %s (%s) already at %" PRId64 ", POSITION says %" PRId64 "..%" PRId64
              "; keeping %" PRId64,
              entry->name, writer->instance, cur, cmd->prev_token, cmd->new_token, cur);
    position_finish(state, entry, writer, cur);
  } else if (!position_shows_gap(cur, cmd->prev_token, cmd->new_token)) {
    position_finish(state, entry, writer, cmd->new_token);
  } else {
    *fetch = true;
  }
  return 0;
}

static int position_modern(stream_state_t *state, stream_entry_t *entry, const proto_command_t *cmd,
                           rc_error_t *err) {
  stream_writer_t *writer = NULL;
  bool fetch = false;
  if (position_modern_begin(state, entry, cmd, &writer, &fetch, err) != 0) return -1;
  if (!fetch) return 0;
  WLOG_WARNING("Gap in stream %s: at %" PRId64 ", POSITION says %" PRId64 "..%" PRId64
               "; no catch-up source (--http-url), adopting %" PRId64,
               entry->name, writer->position, cmd->prev_token, cmd->new_token, cmd->new_token);
  position_finish(state, entry, writer, cmd->new_token);
  return 0;
}

int stream_state_apply(stream_state_t *state, const proto_command_t *cmd, rc_error_t *err) {
  if (!stream_state_wants(state, cmd)) return 0;
  stream_entry_t *entry = stream_find(state, cmd->stream.ptr, cmd->stream.len);
  bool modern = state->dialect == PROTO_DIALECT_MODERN;
  if (cmd->kind == PROTO_CMD_RDATA)
    return modern ? rdata_modern(state, entry, cmd, err) : rdata_2018(state, entry, cmd, err);
  return modern ? position_modern(state, entry, cmd, err) : position_2018(state, entry, cmd, err);
}

int stream_state_position_begin(stream_state_t *state, const proto_command_t *cmd, bool *fetch,
                                int64_t *from, rc_error_t *err) {
  *fetch = false;
  if (state->dialect != PROTO_DIALECT_MODERN || cmd->kind != PROTO_CMD_POSITION)
    return rc_error_set(err, "stream_state_position_begin: not a modern POSITION");
  if (!stream_state_wants(state, cmd)) return 0;
  stream_entry_t *entry = stream_find(state, cmd->stream.ptr, cmd->stream.len);
  stream_writer_t *writer = NULL;
  if (position_modern_begin(state, entry, cmd, &writer, fetch, err) != 0) return -1;
  if (*fetch) *from = writer->position;
  return 0;
}

/* The writer record of (stream, instance) for the catch-up steps. */
static stream_writer_t *catchup_writer(stream_state_t *state, const char *stream,
                                       const char *instance, stream_entry_t **entry_out,
                                       rc_error_t *err) {
  stream_entry_t *entry = stream_find(state, stream, strlen(stream));
  if (entry == NULL) {
    rc_error_set(err, "stream %s is not consumed", stream);
    return NULL;
  }
  stream_writer_t *writer = writer_get(entry, instance, strlen(instance));
  if (writer == NULL) rc_error_set(err, "stream %s (%s): out of memory", stream, instance);
  *entry_out = entry;
  return writer;
}

int stream_state_apply_unit(stream_state_t *state, const char *stream, const char *instance,
                            int64_t token, const char *const *rows, size_t row_count,
                            rc_error_t *err) {
  stream_entry_t *entry = NULL;
  stream_writer_t *writer = catchup_writer(state, stream, instance, &entry, err);
  if (writer == NULL) return -1;
  unit_emit(state, entry, writer, token, rows, row_count);
  return 0;
}

int stream_state_position_end(stream_state_t *state, const char *stream, const char *instance,
                              int64_t new_token, rc_error_t *err) {
  stream_entry_t *entry = NULL;
  stream_writer_t *writer = catchup_writer(state, stream, instance, &entry, err);
  if (writer == NULL) return -1;
  position_finish(state, entry, writer, new_token);
  return 0;
}
