#include "repl_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <event2/buffer.h>

#include "rc_clock.h"
#include "wlog.h"

#define WLOG_LOGGER "synapse.replication.tcp.protocol"

#define REPL_CONN_ID_LEN 5
/* Bound on what is read and discarded before closing, so a peer still sending cannot
 * keep us in the loop. */
#define REPL_CONN_DRAIN_MAX (1024 * 1024)

typedef enum repl_conn_status {
  REPL_CONN_OPEN,
  REPL_CONN_CLOSING, /* close decided: no more inbound lines; flushing */
  REPL_CONN_CLOSED,
} repl_conn_status_t;

struct repl_conn {
  struct event_base *base;
  struct bufferevent *bev;
  repl_conn_config_t config;
  stream_state_t *streams;
  stream_handler_t *handler;
  repl_conn_closed_fn on_closed;
  void *on_closed_arg;

  char id[REPL_CONN_ID_LEN + 1];
  char name[REPL_CONN_ID_LEN + 8];          /* anon-<id> */
  char context_name[REPL_CONN_ID_LEN + 24]; /* replication-conn-<id> */

  repl_conn_status_t status;
  bool graceful; /* closing with flush and FIN, not an abort */
  bool peer_closed; /* the main closed (EOF or reset) before we decided to */
  char reason[256];
  struct event *keepalive; /* one-shot, re-armed after every tick */
  struct event *finisher;  /* runs the final close from the event loop */

  int64_t last_sent_ns;
  int64_t last_received_ns;
  int64_t closing_since_ns;
  bool received_ping;

  char out[PROTO_MAX_LINE + 2]; /* formatted line + LF */
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_keepalive_cb(evutil_socket_t fd, short what, void *arg);
static void conn_finish_cb(evutil_socket_t fd, short what, void *arg);

const char *repl_conn_name(const repl_conn_t *conn) {
  return conn->name;
}

/* Synapse's connection ids: five random ASCII letters. */
static void conn_make_id(char *out) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  unsigned char bytes[REPL_CONN_ID_LEN];
  if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
    /* Only a log label: the clock is random enough when the kernel source is not. */
    uint64_t t = (uint64_t)rc_clock_mono_ns();
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (unsigned char)(t >> (8 * i));
  }
  for (size_t i = 0; i < REPL_CONN_ID_LEN; i++) out[i] = letters[bytes[i] % 52];
  out[REPL_CONN_ID_LEN] = '\0';
}

static void conn_arm_keepalive(repl_conn_t *conn) {
  /* Measured from now, not from the previous deadline: a tick then always finds at least
   * one full interval since anything sent during the previous tick. */
  event_base_update_cache_time(conn->base);
  struct timeval tv = {.tv_sec = conn->config.ping_interval_ms / 1000,
                       .tv_usec = (conn->config.ping_interval_ms % 1000) * 1000};
  evtimer_add(conn->keepalive, &tv);
}

/* Queues one command. Dropped silently once the close has been decided, like Synapse
 * drops sends on a closed protocol. */
static void conn_send(repl_conn_t *conn, const proto_command_t *cmd) {
  if (conn->status != REPL_CONN_OPEN) return;
  proto_error_t perr;
  int len = proto_format_command(conn->config.dialect, cmd, conn->out, sizeof conn->out - 1, &perr);
  if (len < 0) {
    WLOG_ERROR("[%s] Failed to send command %s: %s", conn->name, proto_command_name(cmd->kind),
               perr.message);
    return;
  }
  conn->out[len] = '\n';
  if (bufferevent_write(conn->bev, conn->out, (size_t)len + 1) != 0) {
    WLOG_ERROR("[%s] Failed to queue command %s", conn->name, proto_command_name(cmd->kind));
    return;
  }
  conn->last_sent_ns = rc_clock_mono_ns();
}

static void conn_send_text(repl_conn_t *conn, proto_command_kind_t kind, const char *text) {
  proto_command_t cmd = {.kind = kind, .text = proto_slice_cstr(text)};
  conn_send(conn, &cmd);
}

static void conn_send_ping(repl_conn_t *conn) {
  char now[32];
  snprintf(now, sizeof now, "%" PRId64, rc_clock_wall_ms());
  conn_send_text(conn, PROTO_CMD_PING, now);
}

static void conn_schedule_finish(repl_conn_t *conn) {
  event_active(conn->finisher, 0, 0);
}

/* Decides to close: nothing more is read or dispatched from here on (FR-10). */
static void conn_begin_close(repl_conn_t *conn, const char *reason, bool graceful) {
  if (conn->status != REPL_CONN_OPEN) return;
  conn->status = REPL_CONN_CLOSING;
  conn->graceful = graceful;
  conn->closing_since_ns = rc_clock_mono_ns();
  snprintf(conn->reason, sizeof conn->reason, "%s", reason);
  bufferevent_disable(conn->bev, EV_READ);
  if (!graceful || evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0)
    conn_schedule_finish(conn);
  /* Otherwise conn_write_cb schedules it once the output has drained. */
}

/* Sends `ERROR <text>` and closes, as Synapse's send_error does. */
static void conn_send_error_and_close(repl_conn_t *conn, const char *text) {
  conn_send_text(conn, PROTO_CMD_ERROR, text);
  char reason[256];
  snprintf(reason, sizeof reason, "closed locally after sending ERROR %s", text);
  conn_begin_close(conn, reason, true);
}

/* Reads and discards what the peer already sent, so closing the socket sends a FIN and
 * not the RST the kernel answers unread data with. */
static void conn_drain_socket(evutil_socket_t fd) {
  char scrap[4096];
  size_t total = 0;
  while (total < REPL_CONN_DRAIN_MAX) {
    ssize_t n = recv(fd, scrap, sizeof scrap, MSG_DONTWAIT);
    if (n > 0) {
      total += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
}

static void conn_finish_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  repl_conn_t *conn = arg;
  if (conn->status == REPL_CONN_CLOSED) return;
  evutil_socket_t sock = bufferevent_getfd(conn->bev);
  if (conn->peer_closed && sock >= 0 && bugs_has(conn->config.bugs, BUG_REPL_SOCKET_LEAK)) {
    /* The bug: a duplicate keeps the socket, never closed and never shut down (CLOSE_WAIT
     * after the main's FIN), while the connection object goes away as usual. */
    int leaked = dup(sock);
    (void)leaked;
  } else if (conn->graceful && sock >= 0) {
    shutdown(sock, SHUT_WR);
    conn_drain_socket(sock);
  }
  bufferevent_free(conn->bev); /* closes the socket */
  conn->bev = NULL;
  evtimer_del(conn->keepalive);
  conn->status = REPL_CONN_CLOSED;
  WLOG_INFO("[%s] Connection was closed", conn->name);
  /* Last action: the owner may destroy the connection in this callback. */
  conn->on_closed(conn->on_closed_arg, conn, conn->reason);
}

static void conn_write_cb(struct bufferevent *bev, void *arg) {
  wlog_callback_begin();
  repl_conn_t *conn = arg;
  if (conn->status == REPL_CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    conn_schedule_finish(conn);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  wlog_callback_begin();
  repl_conn_t *conn = arg;
  if (conn->status == REPL_CONN_CLOSED) return;
  conn->peer_closed = conn->status == REPL_CONN_OPEN;
  char reason[256];
  if (what & BEV_EVENT_EOF) {
    snprintf(reason, sizeof reason, "Connection was closed cleanly (EOF from peer)");
  } else {
    int e = EVUTIL_SOCKET_ERROR();
    snprintf(reason, sizeof reason, "Connection lost: %s", evutil_socket_error_to_string(e));
  }
  if (conn->status == REPL_CONN_OPEN) {
    /* Nothing more can be delivered in either case: close now, with FIN if possible. */
    conn_begin_close(conn, reason, (what & BEV_EVENT_EOF) != 0);
    conn->graceful = (what & BEV_EVENT_EOF) != 0;
    conn_schedule_finish(conn);
  } else {
    /* Failing while flushing: give up the flush. */
    conn->graceful = false;
    conn_schedule_finish(conn);
  }
}

static void conn_keepalive_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  wlog_callback_begin();
  repl_conn_t *conn = arg;
  int64_t now = rc_clock_mono_ns();
  int64_t interval_ns = conn->config.ping_interval_ms * 1000000;
  int64_t timeout_ns = conn->config.ping_timeout_ms * 1000000;

  if (conn->status == REPL_CONN_CLOSING) {
    if (now - conn->closing_since_ns > timeout_ns) {
      WLOG_WARNING("[%s] Failed to close connection gracefully, aborting", conn->name);
      conn->graceful = false;
      conn_schedule_finish(conn);
      return;
    }
    conn_arm_keepalive(conn);
    return;
  }
  if (conn->status != REPL_CONN_OPEN) return;

  if (now - conn->last_sent_ns >= interval_ns) conn_send_ping(conn);
  /* A peer that never PINGed (e.g. netcat) is never timed out (spec §3.2). */
  if (conn->received_ping && now - conn->last_received_ns > timeout_ns) {
    WLOG_INFO("[%s] Connection hasn't received command in %" PRId64 " ms. Closing.", conn->name,
              (now - conn->last_received_ns) / 1000000);
    conn_send_error_and_close(conn, "ping timeout");
  }
  conn_arm_keepalive(conn);
}

/* ---- inbound ------------------------------------------------------------------ */

static void conn_on_server(repl_conn_t *conn, const proto_command_t *cmd) {
  if (proto_slice_eq(cmd->text, conn->config.server_name)) return;
  char quoted[512];
  WLOG_ERROR("[%s] Connected to wrong remote: %s", conn->name,
             wlog_repr(cmd->text.ptr, cmd->text.len, quoted, sizeof quoted));
  conn_send_error_and_close(conn, "Wrong remote");
}

/* The handler of one command. Returns -1 with *error when it raised: a 2018 RDATA whose
 * row does not fit its stream (the modern stream handler catches its own). */
static int conn_dispatch(repl_conn_t *conn, const proto_command_t *cmd, handler_error_t *error) {
  switch (cmd->kind) {
    case PROTO_CMD_SERVER:
      conn_on_server(conn, cmd);
      break;
    case PROTO_CMD_PING:
      conn->received_ping = true;
      break;
    case PROTO_CMD_ERROR: {
      char quoted[PROTO_MAX_LINE + 8];
      WLOG_ERROR("[%s] Remote reported error: %s", conn->name,
                 wlog_repr(cmd->text.ptr, cmd->text.len, quoted, sizeof quoted));
      break;
    }
    case PROTO_CMD_RDATA:
    case PROTO_CMD_POSITION:
      if (stream_handler_submit(conn->handler, cmd, error) != 0) {
        /* Synapse 2018's on_RDATA: logger.exception("[%s] Failed to parse RDATA: %r %r"),
         * then raise. */
        char stream[256], row[PROTO_MAX_LINE + 8];
        bgprocess_report_reraised(
            conn->config.processes, WLOG_LOGGER, __LINE__, error,
            "[%s] Failed to parse RDATA: %s %s", conn->name,
            wlog_repr(cmd->stream.ptr, cmd->stream.len, stream, sizeof stream),
            wlog_repr(cmd->row.ptr, cmd->row.len, row, sizeof row));
        return -1;
      }
      break;
    default:
      /* SYNC, REMOTE_SERVER_UP, LOCK_RELEASED: valid, and nothing for this worker to do. */
      WLOG_DEBUG("[%s] Received %s; nothing to do", conn->name, proto_command_name(cmd->kind));
      break;
  }
  return 0;
}

/* Handles one accepted command. 2018: in its own background process, named as Synapse's
 * run_as_background_process("replication-" + cmd.get_logcontext_id(), ...) (spec §5.2,
 * BG-01), whose failure is logged as that function logs it (#3927). Modern: in the
 * connection's context; RDATA/POSITION get their processes from the stream handler. */
static void conn_handle(repl_conn_t *conn, const proto_command_t *cmd) {
  handler_error_t error;
  if (conn->config.dialect != PROTO_DIALECT_2018) {
    conn_dispatch(conn, cmd, &error);
    return;
  }
  char desc[160];
  if (cmd->kind == PROTO_CMD_RDATA)
    snprintf(desc, sizeof desc, "replication-RDATA-%.*s", (int)cmd->stream.len, cmd->stream.ptr);
  else
    snprintf(desc, sizeof desc, "replication-%s", proto_command_name(cmd->kind));
  bgprocess_t *run = bgprocess_start(conn->config.processes, BGPROCESS_HANDLER, desc);
  bgprocess_enter(run);
  if (conn_dispatch(conn, cmd, &error) != 0)
    bgprocess_report_exception(conn->config.processes, "synapse.metrics.background_process_metrics",
                               __LINE__, &error, "Background process '%s' threw an exception",
                               desc);
  /* Everything a 2018 handler does is done when it returns. */
  bgprocess_returned(run);
  bgprocess_finish(run);
}

/* The context inbound lines are framed and parsed in: Synapse 2018 reads in the reactor's
 * sentinel context; since v1.18 a connection reads in its own replication-conn context. */
static const char *conn_line_context(const repl_conn_t *conn) {
  return conn->config.dialect == PROTO_DIALECT_MODERN ? conn->context_name : "sentinel";
}

static void conn_process_line(repl_conn_t *conn, const char *line, size_t len) {
  if (proto_line_is_blank(line, len)) return;
  proto_command_t cmd;
  proto_error_t perr;
  proto_error_code_t rc =
      proto_parse_line(conn->config.dialect, PROTO_SENDER_SERVER, line, len, &cmd, &perr);
  if (rc == PROTO_ERR_BLANK) return;
  if (rc != PROTO_OK) {
    WLOG_ERROR("[%s] Failed to parse line: %s", conn->name, perr.message);
    char text[PROTO_MAX_LINE + 1];
    if (proto_rejection_text(conn->config.dialect, line, len, &perr, text, sizeof text) > 0) {
      conn_send_error_and_close(conn, text);
      return;
    }
    /* Invalid UTF-8, or a 2018 line without a space: Synapse drops the connection
     * without an ERROR line (proto.h, proto_rejection_text). */
    char reason[512];
    snprintf(reason, sizeof reason, "closed locally without ERROR: %s", perr.message);
    conn_begin_close(conn, reason, true);
    return;
  }
  conn->last_received_ns = rc_clock_mono_ns();
  conn_handle(conn, &cmd);
  /* Back from the handler's context to the reading one (wlog.h: a leak skips this). */
  wlog_context_restore(conn_line_context(conn));
}

static void conn_read_cb(struct bufferevent *bev, void *arg) {
  repl_conn_t *conn = arg;
  struct evbuffer *input = bufferevent_get_input(bev);
  wlog_callback_begin();
  wlog_context_enter(conn_line_context(conn));
  while (conn->status == REPL_CONN_OPEN) {
    size_t available = evbuffer_get_length(input);
    if (available == 0) break;
    /* One byte past the limit is enough to tell an over-long line from a complete one. */
    size_t window = available < PROTO_MAX_LINE + 1 ? available : PROTO_MAX_LINE + 1;
    const char *data = (const char *)evbuffer_pullup(input, (ev_ssize_t)window);
    if (data == NULL) break;
    size_t line_len = 0, consumed = 0;
    proto_frame_status_t status = proto_frame_next(data, window, &line_len, &consumed);
    if (status == PROTO_FRAME_NEED_MORE) break;
    if (status == PROTO_FRAME_TOO_LONG) {
      WLOG_WARNING("[%s] Line longer than %d bytes received; closing", conn->name, PROTO_MAX_LINE);
      conn_send_error_and_close(conn, "Line length exceeded");
      break;
    }
    conn_process_line(conn, data, line_len);
    evbuffer_drain(input, consumed);
  }
  wlog_callback_end();
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void conn_send_opening(repl_conn_t *conn) {
  conn_send_text(conn, PROTO_CMD_NAME, conn->config.instance_name);
  conn_send_ping(conn);
  if (conn->config.dialect == PROTO_DIALECT_MODERN) {
    /* handler.py new_connection: the syncing users go before REPLICATE. */
    if (conn->config.on_opening != NULL) conn->config.on_opening(conn->config.on_opening_arg, conn);
    WLOG_INFO("[%s] Subscribing to replication streams", conn->name);
    proto_command_t cmd = {.kind = PROTO_CMD_REPLICATE, .trailing_space = true};
    conn_send(conn, &cmd);
    return;
  }
  for (size_t i = 0; i < stream_state_stream_count(conn->streams); i++) {
    const char *stream = stream_state_stream_name(conn->streams, i);
    proto_command_t cmd = {
        .kind = PROTO_CMD_REPLICATE,
        .stream = proto_slice_cstr(stream),
        .token = stream_state_position(conn->streams, stream, NULL),
    };
    WLOG_INFO("[%s] Subscribing to replication stream %s from %" PRId64, conn->name, stream,
              cmd.token);
    conn_send(conn, &cmd);
  }
  /* protocol.py@v0.33.3 connectionMade: the syncing users after the REPLICATEs. */
  if (conn->config.on_opening != NULL) conn->config.on_opening(conn->config.on_opening_arg, conn);
}

repl_conn_t *repl_conn_create(struct event_base *base, struct bufferevent *bev,
                              const repl_conn_config_t *config, stream_state_t *streams,
                              stream_handler_t *handler, repl_conn_closed_fn on_closed,
                              void *on_closed_arg, rc_error_t *err) {
  repl_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL) {
    bufferevent_free(bev);
    rc_error_set(err, "replication connection: out of memory");
    return NULL;
  }
  conn->base = base;
  conn->bev = bev;
  conn->config = *config;
  conn->streams = streams;
  conn->handler = handler;
  conn->on_closed = on_closed;
  conn->on_closed_arg = on_closed_arg;
  conn_make_id(conn->id);
  snprintf(conn->name, sizeof conn->name, "anon-%s", conn->id);
  snprintf(conn->context_name, sizeof conn->context_name, "replication-conn-%s", conn->id);
  conn->keepalive = evtimer_new(base, conn_keepalive_cb, conn);
  conn->finisher = event_new(base, -1, 0, conn_finish_cb, conn);
  if (conn->keepalive == NULL || conn->finisher == NULL) {
    repl_conn_destroy(conn);
    rc_error_set(err, "replication connection: cannot create timers");
    return NULL;
  }
  conn->status = REPL_CONN_OPEN;
  conn->last_received_ns = rc_clock_mono_ns();
  bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, conn);
  if (bufferevent_enable(bev, EV_READ | EV_WRITE) != 0) {
    repl_conn_destroy(conn);
    rc_error_set(err, "replication connection: cannot enable the socket");
    return NULL;
  }
  WLOG_INFO("[%s] Connection established", conn->name);
  conn_send_opening(conn);
  /* Armed after the opening lines, so the first tick finds them a full interval old. */
  conn_arm_keepalive(conn);
  return conn;
}

void repl_conn_send(repl_conn_t *conn, const proto_command_t *cmd) {
  conn_send(conn, cmd);
}

void repl_conn_close(repl_conn_t *conn, const char *reason) {
  conn_begin_close(conn, reason, true);
}

void repl_conn_abort(repl_conn_t *conn, const char *reason) {
  if (conn->status == REPL_CONN_CLOSED) return;
  if (conn->status == REPL_CONN_OPEN) {
    conn_begin_close(conn, reason, false);
    return;
  }
  conn->graceful = false;
  conn_schedule_finish(conn);
}

void repl_conn_destroy(repl_conn_t *conn) {
  if (conn == NULL) return;
  if (conn->bev != NULL) bufferevent_free(conn->bev);
  if (conn->keepalive != NULL) event_free(conn->keepalive);
  if (conn->finisher != NULL) event_free(conn->finisher);
  free(conn);
}
