#include "stream_handler.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_catchup.h"
#include "stream_rows.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.replication.tcp.handler"

/* A command waiting for its stream's catch-up: the fields stream_state needs, owned. */
typedef struct queued_command {
  struct queued_command *next;
  proto_command_kind_t kind;
  char *instance;
  char *row;
  bool token_is_batch;
  int64_t token;
  int64_t prev_token;
  int64_t new_token;
} queued_command_t;

typedef struct handler_stream {
  stream_handler_t *handler;
  char *name;
  queued_command_t *head, *tail;
  stream_catchup_t *job; /* the catch-up in flight, or NULL */
  char *job_instance;    /* the writer it is for */
  int64_t job_new_token; /* the POSITION's new_token */
  char *job_command;     /* the POSITION line, for the failure log */
  bgprocess_t *run;      /* modern: the process-replication-data run working for the
                            stream, until its queue is empty and no catch-up is left */
} handler_stream_t;

struct stream_handler {
  stream_state_t *state;
  http_catchup_t *http;
  bgprocess_table_t *processes;
  bool modern;
  handler_stream_t *streams;
  size_t count;
};

/* A slice as an owned string; an absent field (NULL slice) becomes "". */
static char *slice_dup(proto_slice_t slice) {
  return strndup(slice.ptr != NULL ? slice.ptr : "", slice.len);
}

static void handler_process(stream_handler_t *handler, handler_stream_t *hs,
                            const proto_command_t *cmd);

stream_handler_t *stream_handler_create(stream_state_t *state, http_catchup_t *http,
                                        bgprocess_table_t *processes, rc_error_t *err) {
  stream_handler_t *handler = calloc(1, sizeof *handler);
  size_t count = stream_state_stream_count(state);
  if (handler == NULL ||
      (count > 0 && (handler->streams = calloc(count, sizeof *handler->streams)) == NULL)) {
    free(handler);
    rc_error_set(err, "stream handler: out of memory");
    return NULL;
  }
  handler->state = state;
  handler->http = http;
  handler->processes = processes;
  handler->modern = stream_state_dialect(state) == PROTO_DIALECT_MODERN;
  for (size_t i = 0; i < count; i++) {
    handler_stream_t *hs = &handler->streams[i];
    hs->handler = handler;
    hs->name = strdup(stream_state_stream_name(state, i));
    if (hs->name == NULL) {
      stream_handler_destroy(handler);
      rc_error_set(err, "stream handler: out of memory");
      return NULL;
    }
    handler->count++;
  }
  return handler;
}

static void queued_free(queued_command_t *q) {
  if (q == NULL) return;
  free(q->instance);
  free(q->row);
  free(q);
}

static void stream_clear_job(handler_stream_t *hs) {
  stream_catchup_destroy(hs->job);
  hs->job = NULL;
  free(hs->job_instance);
  free(hs->job_command);
  hs->job_instance = hs->job_command = NULL;
}

/* The stream's run is over when nothing of its work is left. */
static void stream_finish_run_if_idle(handler_stream_t *hs) {
  if (hs->run == NULL || hs->job != NULL || hs->head != NULL) return;
  bgprocess_finish(hs->run);
  hs->run = NULL;
}

static void stream_clear(handler_stream_t *hs) {
  stream_clear_job(hs);
  while (hs->head != NULL) {
    queued_command_t *q = hs->head;
    hs->head = q->next;
    queued_free(q);
  }
  hs->tail = NULL;
  stream_finish_run_if_idle(hs);
}

void stream_handler_destroy(stream_handler_t *handler) {
  if (handler == NULL) return;
  for (size_t i = 0; i < handler->count; i++) {
    stream_clear(&handler->streams[i]);
    free(handler->streams[i].name);
  }
  free(handler->streams);
  free(handler);
}

static handler_stream_t *handler_find(const stream_handler_t *handler, proto_slice_t name) {
  for (size_t i = 0; i < handler->count; i++)
    if (proto_slice_eq(name, handler->streams[i].name)) return &handler->streams[i];
  return NULL;
}

void stream_handler_reset_connection(stream_handler_t *handler) {
  for (size_t i = 0; i < handler->count; i++) {
    handler_stream_t *hs = &handler->streams[i];
    if (hs->job != NULL)
      WLOG_INFO("Abandoning the catch-up of stream %s: the replication connection changed",
                hs->name);
    stream_clear(hs);
  }
  stream_state_reset_connection(handler->state);
}

/* The command as a wire line, for logs ("POSITION typing master 4 5"). */
static void command_text(const proto_command_t *cmd, char *buf, size_t cap) {
  if (proto_format_command(PROTO_DIALECT_MODERN, cmd, buf, cap, NULL) < 0)
    snprintf(buf, cap, "%s %.*s", proto_command_name(cmd->kind), (int)cmd->stream.len,
             cmd->stream.ptr);
}

static void log_failure(const proto_command_t *cmd, const char *why) {
  char line[512];
  command_text(cmd, line, sizeof line);
  WLOG_ERROR("Failed to handle command %s: %s", line, why);
}

static void drain_queue(stream_handler_t *handler, handler_stream_t *hs);

static void on_catchup_done(void *arg, stream_catchup_t *job, const char *error) {
  (void)job;
  handler_stream_t *hs = arg;
  stream_handler_t *handler = hs->handler;
  if (error != NULL) {
    /* Not advanced, not connected: RDATA is dropped until the next POSITION (PO-07). */
    WLOG_ERROR("Failed to handle command %s: %s", hs->job_command, error);
  } else {
    rc_error_t err;
    if (stream_state_position_end(handler->state, hs->name, hs->job_instance, hs->job_new_token,
                                  &err) != 0)
      WLOG_ERROR("Failed to handle command %s: %s", hs->job_command, err.msg);
  }
  stream_clear_job(hs); /* frees the job: it does nothing after calling us */
  drain_queue(handler, hs);
  stream_finish_run_if_idle(hs);
}

static void handler_position_with_catchup(stream_handler_t *handler, handler_stream_t *hs,
                                          const proto_command_t *cmd) {
  rc_error_t err;
  bool fetch = false;
  int64_t from = 0;
  if (stream_state_position_begin(handler->state, cmd, &fetch, &from, &err) != 0) {
    log_failure(cmd, err.msg);
    return;
  }
  if (!fetch) return;
  char line[PROTO_MAX_LINE + 1];
  command_text(cmd, line, sizeof line);
  hs->job_command = strdup(line);
  hs->job_instance = slice_dup(cmd->instance);
  hs->job_new_token = cmd->new_token;
  if (hs->job_command == NULL || hs->job_instance == NULL) {
    stream_clear_job(hs);
    log_failure(cmd, "out of memory");
    return;
  }
  hs->job = stream_catchup_start(handler->http, handler->state, hs->name, hs->job_instance, from,
                                 cmd->new_token, on_catchup_done, hs, &err);
  if (hs->job == NULL) {
    WLOG_ERROR("Failed to handle command %s: %s", hs->job_command, err.msg);
    stream_clear_job(hs);
  }
}

/* Synapse 1.66's _process_rdata: a row that does not parse raises "Failed to parse
 * RDATA", which the queue runner catches and logs as "Failed to handle command". */
static bool modern_row_fits(stream_handler_t *handler, const handler_stream_t *hs,
                            const proto_command_t *cmd) {
  handler_error_t cause;
  if (cmd->kind != PROTO_CMD_RDATA ||
      stream_rows_check(hs->name, cmd->row.ptr, cmd->row.len, &cause) == 0)
    return true;
  char stream[256], row[PROTO_MAX_LINE + 8], line[PROTO_MAX_LINE + 1];
  handler_error_t error = cause;
  snprintf(error.type, sizeof error.type, "Exception");
  /* A long row is cut short in the message; the command line below has it whole. */
  int n =
      snprintf(error.message, sizeof error.message, "Failed to parse RDATA: %s %s (%s: %s)",
               wlog_repr(cmd->stream.ptr, cmd->stream.len, stream, sizeof stream),
               wlog_repr(cmd->row.ptr, cmd->row.len, row, sizeof row), cause.type, cause.message);
  if (n < 0) snprintf(error.message, sizeof error.message, "Failed to parse RDATA");
  command_text(cmd, line, sizeof line);
  bgprocess_report_exception(handler->processes, WLOG_LOGGER, __LINE__, &error,
                             "Failed to handle command %s", line);
  return false;
}

static void handler_process(stream_handler_t *handler, handler_stream_t *hs,
                            const proto_command_t *cmd) {
  if (handler->modern && !modern_row_fits(handler, hs, cmd)) return;
  if (handler->modern && cmd->kind == PROTO_CMD_POSITION && handler->http != NULL) {
    handler_position_with_catchup(handler, hs, cmd);
    return;
  }
  rc_error_t err;
  if (stream_state_apply(handler->state, cmd, &err) != 0) log_failure(cmd, err.msg);
}

static void queued_to_command(const handler_stream_t *hs, const queued_command_t *q,
                              proto_command_t *cmd) {
  memset(cmd, 0, sizeof *cmd);
  cmd->kind = q->kind;
  cmd->stream = proto_slice_cstr(hs->name);
  cmd->instance = proto_slice_cstr(q->instance);
  cmd->row = proto_slice_cstr(q->row);
  cmd->token_is_batch = q->token_is_batch;
  cmd->token = q->token;
  cmd->prev_token = q->prev_token;
  cmd->new_token = q->new_token;
}

static void drain_queue(stream_handler_t *handler, handler_stream_t *hs) {
  while (hs->job == NULL && hs->head != NULL) {
    queued_command_t *q = hs->head;
    hs->head = q->next;
    if (hs->head == NULL) hs->tail = NULL;
    proto_command_t cmd;
    queued_to_command(hs, q, &cmd);
    handler_process(handler, hs, &cmd);
    queued_free(q);
  }
}

static void enqueue(handler_stream_t *hs, const proto_command_t *cmd) {
  queued_command_t *q = calloc(1, sizeof *q);
  if (q == NULL || (q->instance = slice_dup(cmd->instance)) == NULL ||
      (q->row = slice_dup(cmd->row)) == NULL) {
    queued_free(q);
    log_failure(cmd, "out of memory while a catch-up is in progress; command dropped");
    return;
  }
  q->kind = cmd->kind;
  q->token_is_batch = cmd->token_is_batch;
  q->token = cmd->token;
  q->prev_token = cmd->prev_token;
  q->new_token = cmd->new_token;
  if (hs->tail != NULL)
    hs->tail->next = q;
  else
    hs->head = q;
  hs->tail = q;
  WLOG_DEBUG("Queued %s for stream %s behind its catch-up", proto_command_name(cmd->kind),
             hs->name);
}

int stream_handler_submit(stream_handler_t *handler, const proto_command_t *cmd,
                          handler_error_t *error) {
  if (!stream_state_wants(handler->state, cmd)) return 0;
  handler_stream_t *hs = handler_find(handler, cmd->stream);
  if (hs == NULL) return 0; /* a stream added to stream_state after create */
  if (!handler->modern) {
    /* Applied at once, in the transport's handler process (replication-RDATA-<s>-<n>).
     * The row is parsed first, as Synapse 2018's on_RDATA does: a bad one is dropped. */
    if (cmd->kind == PROTO_CMD_RDATA &&
        stream_rows_check(hs->name, cmd->row.ptr, cmd->row.len, error) != 0)
      return -1;
    handler_process(handler, hs, cmd);
    return 0;
  }
  if (hs->job != NULL || hs->head != NULL) {
    enqueue(hs, cmd);
    return 0;
  }
  /* Synapse 1.66's _add_command_to_stream_queue: a process-replication-data run per
   * idle stream, which goes on until the stream's queue is empty (BG-02, BG-03). */
  char saved[256];
  snprintf(saved, sizeof saved, "%s", wlog_context_current());
  hs->run = bgprocess_start(handler->processes, BGPROCESS_HANDLER, "process-replication-data");
  bgprocess_enter(hs->run);
  handler_process(handler, hs, cmd);
  bgprocess_returned(hs->run);
  stream_finish_run_if_idle(hs);
  wlog_context_restore(saved); /* wlog.h: the leak bug skips this */
  return 0;
}
