#include "mockhs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/tcp.h>

#include "mockhs_internal.h"
#include "rc_clock.h"

#define MOCK_MAX_SINGLE_WRITE (256 * 1024)

/* Streams a Synapse v1.66 main announced after REPLICATE
 * (shared/reference/synapse-1.66/real-pair.txt, first connection). */
static const mockhs_stream_t MODERN_STREAMS[] = {
    {"events", 1},       {"backfill", 1},         {"presence", 3},
    {"presence_federation", 0}, {"typing", 0},    {"receipts", 1},
    {"push_rules", 1},   {"pushers", 1},          {"caches", 3},
    {"device_lists", 3}, {"to_device", 1},        {"tag_account_data", 1},
    {"account_data", 1}, {"user_signature", 3},
};

/* Streams a Synapse v1.12 main offered (shared/reference/synapse-1.12/real-pair.txt). */
static const mockhs_stream_t STREAMS_2018[] = {
    {"caches", 4},     {"presence", 1},   {"public_rooms", 1},     {"events", 1},
    {"backfill", 1},   {"pushers", 1},    {"tag_account_data", 1}, {"groups", 1},
    {"push_rules", 1}, {"receipts", 1},   {"device_lists", 2},     {"user_signature", 2},
    {"to_device", 1},  {"account_data", 1}, {"typing", 0},
};

void mockhs_config_defaults(mockhs_config_t *cfg, proto_dialect_t dialect,
                            const char *server_name) {
  memset(cfg, 0, sizeof *cfg);
  cfg->dialect = dialect;
  cfg->server_name = server_name;
  cfg->instance_name = "master";
  cfg->ping_interval_ms = 5000;
  cfg->send_opening = true;
  cfg->answer_replicate = true;
  cfg->reject_invalid = true;
  cfg->http_enabled = true;
  const mockhs_stream_t *set = dialect == PROTO_DIALECT_2018 ? STREAMS_2018 : MODERN_STREAMS;
  size_t n = dialect == PROTO_DIALECT_2018 ? sizeof STREAMS_2018 / sizeof STREAMS_2018[0]
                                           : sizeof MODERN_STREAMS / sizeof MODERN_STREAMS[0];
  for (size_t i = 0; i < n; i++) cfg->streams[i] = set[i];
  cfg->stream_count = n;
}

int mockhs_config_set_position(mockhs_config_t *cfg, const char *name, int64_t position) {
  for (size_t i = 0; i < cfg->stream_count; i++) {
    if (strcmp(cfg->streams[i].name, name) != 0) continue;
    cfg->streams[i].position = position;
    return 0;
  }
  if (cfg->stream_count >= MOCKHS_MAX_STREAMS) return -1;
  cfg->streams[cfg->stream_count++] = (mockhs_stream_t){name, position};
  return 0;
}

static mock_conn_t *conn_find(const mockhs_t *mock, int conn_id) {
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next)
    if (c->id == conn_id) return c;
  return NULL;
}

static void conn_free(mockhs_t *mock, mock_conn_t *conn) {
  for (mock_conn_t **p = &mock->conns; *p != NULL; p = &(*p)->next) {
    if (*p == conn) {
      *p = conn->next;
      break;
    }
  }
  mock_torture_detach(conn);
  if (conn->bev != NULL) bufferevent_free(conn->bev);
  free(conn);
}

void mock_record(mockhs_t *mock, int conn_id, ledger_kind_t kind, ledger_side_t side,
                 ledger_close_how_t how, const char *text, size_t len) {
  ledger_append(mock->ledger, conn_id, kind, side, how, text, len);
}

/* Marks the connection closed in the ledger and releases it. */
static void conn_finish(mockhs_t *mock, mock_conn_t *conn, ledger_side_t side,
                        ledger_close_how_t how, const char *why) {
  if (conn->open) {
    conn->open = false;
    mock_record(mock, conn->id, LEDGER_CLOSE, side, how, why, why ? strlen(why) : 0);
  }
  conn_free(mock, conn);
}

static int conn_write(mockhs_t *mock, mock_conn_t *conn, const char *bytes, size_t len) {
  if (conn == NULL || !conn->open || conn->closing) return -1;
  if (bufferevent_write(conn->bev, bytes, len) != 0) return -1;
  conn->last_sent_ms = rc_clock_mono_ms();
  (void)mock;
  return 0;
}

/* keepalive: a PING of the mock's own schedule (torture neither holds nor counts it). */
static int conn_send_line_as(mockhs_t *mock, mock_conn_t *conn, const char *line, size_t len,
                             bool keepalive) {
  if (conn == NULL || !conn->open || conn->closing) return -1;
  if (conn->out != NULL) {
    /* Recorded when it is actually written, so the ledger shows the wire. */
    conn->last_sent_ms = rc_clock_mono_ms();
    return mock_torture_hold(mock, conn, TORTURE_ITEM_LINE, line, len, keepalive);
  }
  int64_t now = rc_clock_mono_ms();
  size_t end = len, unsent;
  if (!conn->redis && !conn->stalled &&
      mock_guard_admit_lines(mock, conn, &end, 1, now, &unsent) == 0) {
    mock_guard_refuse(mock, conn, unsent, now);
    return -1;
  }
  mock_record(mock, conn->id, LEDGER_LINE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, line, len);
  if (conn->redis) return mock_redis_publish(mock->redis, conn->user_ip_channel, line, len);
  if (bufferevent_write(conn->bev, line, len) != 0 || bufferevent_write(conn->bev, "\n", 1) != 0)
    return -1;
  conn->last_sent_ms = now;
  return 0;
}

int mock_conn_send_lines(mockhs_t *mock, mock_conn_t *conn, const char *bytes, const size_t *ends,
                         size_t count) {
  if (conn == NULL || !conn->open || conn->closing) return -1;
  if (conn->out != NULL || conn->redis) {
    for (size_t i = 0, start = 0; i < count; start = ends[i++] + 1)
      if (conn_send_line_as(mock, conn, bytes + start, ends[i] - start, false) != 0) return -1;
    return 0;
  }
  int64_t now = rc_clock_mono_ms();
  size_t admitted = count, unsent = 0;
  if (!conn->stalled) admitted = mock_guard_admit_lines(mock, conn, ends, count, now, &unsent);
  if (admitted > 0) {
    ledger_append_lines(mock->ledger, conn->id, LEDGER_SIDE_MOCK, bytes, ends, admitted);
    if (bufferevent_write(conn->bev, bytes, ends[admitted - 1] + 1) != 0) return -1;
    conn->last_sent_ms = now;
  }
  if (admitted < count) {
    mock_guard_refuse(mock, conn, unsent, now);
    return -1;
  }
  return 0;
}

static int conn_send_line(mockhs_t *mock, mock_conn_t *conn, const char *line, size_t len) {
  return conn_send_line_as(mock, conn, line, len, false);
}

static void conn_send_command(mockhs_t *mock, mock_conn_t *conn, const proto_command_t *cmd) {
  char line[PROTO_MAX_LINE + 1];
  proto_error_t perr;
  int n = proto_format_command(mock->cfg.dialect, cmd, line, sizeof line, &perr);
  if (n < 0) {
    mock_record(mock, conn->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, perr.message,
           strlen(perr.message));
    return;
  }
  conn_send_line(mock, conn, line, (size_t)n);
}

static void conn_send_ping(mockhs_t *mock, mock_conn_t *conn) {
  char data[32], line[64];
  snprintf(data, sizeof data, "%lld", (long long)rc_clock_wall_ms());
  proto_command_t ping = {.kind = PROTO_CMD_PING, .text = proto_slice_cstr(data)};
  int n = proto_format_command(mock->cfg.dialect, &ping, line, sizeof line, NULL);
  if (n > 0) conn_send_line_as(mock, conn, line, (size_t)n, true);
}

/* A FIN close from our side: stop reading, flush, then free (see conn_event_cb). */
void mock_conn_reset_now(mockhs_t *mock, mock_conn_t *conn) {
  /* SO_LINGER with a zero timeout turns close() into an RST. */
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(bufferevent_getfd(conn->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  conn_finish(mock, conn, LEDGER_SIDE_MOCK, LEDGER_CLOSE_RST, NULL);
}

void mock_conn_close_fin(mockhs_t *mock, mock_conn_t *conn, const char *why) {
  if (conn->closing) return;
  if (conn->out != NULL && !torture_out_idle(conn->out)) {
    /* After what the mock already sent; torture delivers the close in its turn. */
    conn->closing = true;
    mock_torture_hold_close(mock, conn, false);
    return;
  }
  conn->closing = true;
  mock_record(mock, conn->id, LEDGER_CLOSE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_FIN, why,
         why ? strlen(why) : 0);
  conn->open = false;
  bufferevent_disable(conn->bev, EV_READ);
  /* on_write frees it once the output is flushed; with nothing left to flush the reap
   * timer does, from the loop, never from here: the close may come from inside this
   * connection's own read callback, which must not find it freed (a use-after-free
   * that a SUT flooding undecodable bytes found, tests/test_mock_guard.c). */
  if (evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0) {
    static const struct timeval now = {0, 0};
    evtimer_add(mock->reap_timer, &now);
  }
}

static void conn_send_error_and_close(mockhs_t *mock, mock_conn_t *conn, const char *text) {
  proto_command_t error = {.kind = PROTO_CMD_ERROR, .text = proto_slice_cstr(text)};
  conn_send_command(mock, conn, &error);
  mock_conn_close_fin(mock, conn, NULL);
}

static void send_position(mockhs_t *mock, mock_conn_t *conn, const char *stream, int64_t prev,
                          int64_t pos) {
  proto_command_t cmd = {.kind = PROTO_CMD_POSITION,
                         .stream = proto_slice_cstr(stream),
                         .instance = proto_slice_cstr(mock->instance_name),
                         .token = pos,
                         .prev_token = prev,
                         .new_token = pos};
  conn_send_command(mock, conn, &cmd);
}

static void send_rdata(mockhs_t *mock, mock_conn_t *conn, const char *stream, bool batch,
                       int64_t token, const char *json, size_t len) {
  proto_command_t cmd = {.kind = PROTO_CMD_RDATA,
                         .stream = proto_slice_cstr(stream),
                         .instance = proto_slice_cstr(mock->instance_name),
                         .token_is_batch = batch,
                         .token = token,
                         .row = {json, len}};
  conn_send_command(mock, conn, &cmd);
}

/* The order streams are answered in: the history's, or shuffled under torture. */
static size_t *answer_order(mockhs_t *mock, mock_conn_t *conn, size_t streams) {
  size_t *order = malloc((streams ? streams : 1) * sizeof *order);
  if (order == NULL) return NULL;
  for (size_t i = 0; i < streams; i++) order[i] = i;
  if (conn->out != NULL && streams > 1) {
    torture_shuffle(&mock->torture, conn->id, conn->replicate_rounds, order, streams);
    mock->torture_done.shuffles++;
    char note[64];
    int n = snprintf(note, sizeof note, "torture: streams answered in shuffled order");
    mock_record(mock, conn->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, note, (size_t)n);
  }
  conn->replicate_rounds++;
  return order;
}

/* A real main answers REPLICATE with its positions: modern, every stream it writes;
 * 2018, the requested stream (or ALL), or an ERROR for a stream it does not offer. */
static void answer_replicate(mockhs_t *mock, mock_conn_t *conn, const proto_command_t *cmd) {
  size_t streams = stream_history_count(mock->history);
  int64_t position = 0;
  bool all = mock->cfg.dialect == PROTO_DIALECT_MODERN || proto_slice_eq(cmd->stream, "ALL");
  char requested[256];
  proto_slice_copy(cmd->stream, requested, sizeof requested);
  if (!all && !stream_history_position(mock->history, requested, &position)) {
    char text[400];
    snprintf(text, sizeof text, "failed to handle replicate: Exception('unknown stream %%s', '%s')",
             requested);
    conn_send_error_and_close(mock, conn, text);
    return;
  }
  size_t *order = answer_order(mock, conn, streams);
  if (order == NULL) return;
  for (size_t k = 0; k < streams && conn->open; k++) {
    const char *name = stream_history_name(mock->history, order[k]);
    if (!all && strcmp(name, requested) != 0) continue;
    stream_history_position(mock->history, name, &position);
    /* 2018: the backlog after the worker's token, each row with its own numeric token
     * (catch-up rows are not batched), then the stream's position. NOW means none. */
    if (mock->cfg.dialect == PROTO_DIALECT_2018 && !cmd->token_is_now) {
      size_t count;
      bool limited, truncated;
      int64_t upto;
      const stream_row_t *rows = stream_history_range(mock->history, name, cmd->token, position,
                                                      0, &count, &limited, &upto, &truncated);
      for (size_t r = 0; r < count && conn->open; r++)
        send_rdata(mock, conn, name, false, rows[r].token, rows[r].json, rows[r].len);
    }
    send_position(mock, conn, name, position, position);
  }
  free(order);
  if (conn->out != NULL) mock_torture_opening_done(mock, conn);
}

static void handle_line(mockhs_t *mock, mock_conn_t *conn, const char *line, size_t len) {
  mock_record(mock, conn->id, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, line, len);
  if (proto_line_is_blank(line, len)) return;
  proto_command_t cmd;
  proto_error_t perr;
  /* Redis has no direction check; a main logs what it cannot parse and goes on. */
  proto_sender_t sender = conn->redis ? PROTO_SENDER_ANY : PROTO_SENDER_CLIENT;
  if (proto_parse_line(mock->cfg.dialect, sender, line, len, &cmd, &perr) != PROTO_OK) {
    mock_record(mock, conn->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, perr.message,
           strlen(perr.message));
    if (mock->cfg.reject_invalid && !conn->redis) {
      char text[PROTO_MAX_LINE];
      /* An empty text means the dialect's main closes without saying why (2018 lines
       * without a space, undecodable bytes). */
      if (proto_rejection_text(mock->cfg.dialect, line, len, &perr, text, sizeof text) > 0)
        conn_send_error_and_close(mock, conn, text);
      else
        mock_conn_close_fin(mock, conn, NULL);
    }
    return;
  }
  if (cmd.kind == PROTO_CMD_REPLICATE && mock->cfg.answer_replicate) {
    answer_replicate(mock, conn, &cmd);
  }
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void on_read(struct bufferevent *bev, void *arg) {
  mock_conn_t *conn = arg;
  mockhs_t *mock = conn->mock;
  struct evbuffer *in = bufferevent_get_input(bev);
  while (conn->open && !conn->closing) {
    size_t avail = evbuffer_get_length(in);
    if (avail == 0) break;
    /* Linearise only up to the first LF (or one maximal line plus its LF), so many
     * small lines do not each copy a whole 16 KiB window. */
    struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
    size_t want = lf.pos >= 0 ? (size_t)lf.pos + 1 : avail;
    if (want > PROTO_MAX_LINE + 1) want = PROTO_MAX_LINE + 1;
    const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
    size_t line_len = 0, consumed = 0;
    proto_frame_status_t st = proto_frame_next(data, want, &line_len, &consumed);
    if (st == PROTO_FRAME_NEED_MORE) break;
    if (st == PROTO_FRAME_TOO_LONG) {
      mock_record(mock, conn->id, LEDGER_LINE, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, data, 200);
      mock_record(mock, conn->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE,
             "line over 16384 bytes (first 200 shown)", 39);
      evbuffer_drain(in, avail);
      if (mock->cfg.reject_invalid) conn_send_error_and_close(mock, conn, "Line length exceeded");
      break;
    }
    handle_line(mock, conn, data, line_len);
    evbuffer_drain(in, consumed);
  }
}

static void on_write(struct bufferevent *bev, void *arg) {
  mock_conn_t *conn = arg;
  (void)bev;
  /* Output flushed: now the orderly close (FIN). A close torture still holds (open
   * still set) comes in its turn. */
  if (conn->closing && !conn->open) conn_free(conn->mock, conn);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  mock_conn_t *conn = arg;
  mockhs_t *mock = conn->mock;
  (void)bev;
  if (what & BEV_EVENT_EOF) {
    /* Lines still buffered are read before the close is recorded. */
    on_read(conn->bev, conn);
    if (conn->closing && !conn->open) {
      conn_free(mock, conn);
      return;
    }
    conn_finish(mock, conn, LEDGER_SIDE_SUT, LEDGER_CLOSE_FIN, NULL);
  } else if (what & BEV_EVENT_ERROR) {
    int err = EVUTIL_SOCKET_ERROR();
    ledger_close_how_t how = err == ECONNRESET ? LEDGER_CLOSE_RST : LEDGER_CLOSE_ERROR;
    const char *why = how == LEDGER_CLOSE_RST ? NULL : strerror(err);
    if (conn->closing && !conn->open) {
      conn_free(mock, conn);
    } else {
      conn_finish(mock, conn, LEDGER_SIDE_SUT, how, why);
    }
  }
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd,
                      struct sockaddr *addr, int socklen, void *arg) {
  mockhs_t *mock = arg;
  (void)listener;
  (void)socklen;
  mock_conn_t *conn = calloc(1, sizeof *conn);
  struct bufferevent *bev =
      bufferevent_socket_new(mock->base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (conn == NULL || bev == NULL) {
    free(conn);
    if (bev != NULL) bufferevent_free(bev);
    else evutil_closesocket(fd);
    return;
  }
  conn->mock = mock;
  conn->id = ++mock->next_conn_id;
  conn->bev = bev;
  conn->open = true;
  conn->last_sent_ms = rc_clock_mono_ms();
  conn->next = mock->conns;
  mock->conns = conn;
  mock->accepted++;

  char peer[64] = "?";
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    snprintf(peer, sizeof peer, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
  }
  mock_record(mock, conn->id, LEDGER_OPEN, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, peer, strlen(peer));
  if (mock->torture.level > 0 && mock_torture_attach(mock, conn, fd) != 0)
    mock_record(mock, conn->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE,
                "torture: out of memory, connection not tortured", 47);

  bufferevent_setcb(bev, on_read, on_write, on_event, conn);
  /* libevent hands the kernel 16 KiB per loop turn by default; bulk emission queues
   * far more than that between turns. */
  bufferevent_set_max_single_write(bev, MOCK_MAX_SINGLE_WRITE);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
  if (mock->cfg.send_opening) {
    proto_command_t server = {.kind = PROTO_CMD_SERVER,
                              .text = proto_slice_cstr(mock->server_name)};
    conn_send_command(mock, conn, &server);
    conn_send_ping(mock, conn);
  }
}

/* Keepalive like a real main: on each tick, PING every connection that has had
 * nothing sent for a full interval. */
static void on_ping_tick(evutil_socket_t fd, short what, void *arg) {
  mockhs_t *mock = arg;
  (void)fd;
  (void)what;
  if (!mock->pinging) return;
  int64_t now = rc_clock_mono_ms();
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next) {
    if (c->open && !c->closing && !c->redis && !c->stalled &&
        now - c->last_sent_ms >= mock->cfg.ping_interval_ms)
      conn_send_ping(mock, c);
  }
}

/* Frees the connections closed from our side that have nothing left to flush. */
static void on_reap(evutil_socket_t fd, short what, void *arg) {
  mockhs_t *mock = arg;
  (void)fd;
  (void)what;
  mock_conn_t *next;
  for (mock_conn_t *c = mock->conns; c != NULL; c = next) {
    next = c->next;
    if (c->closing && !c->open && c->out == NULL && c->bev != NULL &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
      conn_free(mock, c);
  }
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
}

/* The pseudo-connection of a Redis channel, created when the SUT first speaks on it. */
static mock_conn_t *redis_channel_conn(mockhs_t *mock, bool user_ip) {
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next)
    if (c->redis && c->user_ip_channel == user_ip) return c;
  mock_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL) return NULL;
  conn->mock = mock;
  conn->id = ++mock->next_conn_id;
  conn->open = true;
  conn->redis = true;
  conn->user_ip_channel = user_ip;
  conn->last_sent_ms = rc_clock_mono_ms();
  conn->next = mock->conns;
  mock->conns = conn;
  mock->accepted++;
  char text[300];
  snprintf(text, sizeof text, "redis channel %s%s", mock->server_name, user_ip ? "/USER_IP" : "");
  mock_record(mock, conn->id, LEDGER_OPEN, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, text, strlen(text));
  return conn;
}

static void on_redis_line(void *arg, const char *channel, const char *line, size_t len) {
  mockhs_t *mock = arg;
  bool user_ip = strcmp(channel, mock->server_name) != 0;
  /* The SUT's first words on the main channel open the main pseudo-connection; the
   * USER_IP channel gets its own, so tests can tell where a command was published. */
  mock_conn_t *main_conn = redis_channel_conn(mock, false);
  mock_conn_t *conn = user_ip ? redis_channel_conn(mock, true) : main_conn;
  if (conn != NULL) handle_line(mock, conn, line, len);
}

static char *dup_or_null(const char *s) { return s != NULL ? strdup(s) : NULL; }

static int listener_open(mockhs_t *mock, rc_error_t *err) {
  /* A deep backlog: a burst of connections from the SUT must not overflow the accept
   * queue, whose dropped SYNs would cost the SUT a second or more per retry and distort
   * every timing a test measures. */
  mock->listener = evconnlistener_new_bind(
      mock->base, on_accept, mock, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
      (struct sockaddr *)&mock->addr, sizeof mock->addr);
  if (mock->listener == NULL) {
    return rc_error_set(err, "mock homeserver: cannot listen on 127.0.0.1:%d: %s",
                        ntohs(mock->addr.sin_port), strerror(errno));
  }
  evconnlistener_set_error_cb(mock->listener, mock_guard_accept_error);
  struct sockaddr_in bound;
  socklen_t blen = sizeof bound;
  getsockname(evconnlistener_get_fd(mock->listener), (struct sockaddr *)&bound, &blen);
  mock->port = ntohs(bound.sin_port);
  /* Re-opening after mockhs_set_listening(false) must reuse the same port. */
  mock->addr.sin_port = bound.sin_port;
  return 0;
}

mockhs_t *mockhs_create(struct event_base *base, const mockhs_config_t *cfg, rc_error_t *err) {
  if (cfg->server_name == NULL || cfg->server_name[0] == '\0') {
    rc_error_set(err, "mock homeserver: server_name must be set");
    return NULL;
  }
  if (cfg->stream_count > MOCKHS_MAX_STREAMS) {
    rc_error_set(err, "mock homeserver: at most %d streams", MOCKHS_MAX_STREAMS);
    return NULL;
  }
  if (cfg->torture_level < 0 || cfg->torture_level > TORTURE_MAX_LEVEL) {
    rc_error_set(err, "mock homeserver: torture level must be 0..%d, got %d", TORTURE_MAX_LEVEL,
                 cfg->torture_level);
    return NULL;
  }
  mockhs_t *mock = calloc(1, sizeof *mock);
  if (mock == NULL) {
    rc_error_set(err, "mock homeserver: out of memory");
    return NULL;
  }
  mock->base = base;
  mock->cfg = *cfg;
  mock->torture = (torture_plan_t){.level = cfg->torture_level, .seed = cfg->torture_seed};
  mock->server_name = dup_or_null(cfg->server_name);
  mock->instance_name = dup_or_null(cfg->instance_name ? cfg->instance_name : "master");
  mock->history = stream_history_create();
  for (size_t i = 0; mock->history != NULL && i < cfg->stream_count; i++) {
    if (stream_history_set(mock->history, cfg->streams[i].name, cfg->streams[i].position) != 0) {
      stream_history_destroy(mock->history);
      mock->history = NULL;
    }
  }
  /* Stream names live in the history from now on; the copy of cfg must not point at
   * the caller's storage. */
  mock->cfg.stream_count = 0;
  mock->cfg.server_name = mock->server_name;
  mock->cfg.instance_name = mock->instance_name;
  mock->ledger = ledger_create(cfg->ledger_capacity);
  if (mock->ledger != NULL) ledger_set_max_bytes(mock->ledger, cfg->ledger_max_bytes);
  mock->pinging = cfg->ping_interval_ms > 0;
  mock->addr.sin_family = AF_INET;
  mock->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  mock->addr.sin_port = htons((uint16_t)cfg->port);
  mock->wake_timer = evtimer_new(base, on_wake, mock);
  mock->reap_timer = evtimer_new(base, on_reap, mock);
  if (mock->ledger == NULL || mock->wake_timer == NULL || mock->reap_timer == NULL ||
      mock->history == NULL) {
    rc_error_set(err, "mock homeserver: out of memory");
    mockhs_destroy(mock);
    return NULL;
  }
  if (cfg->redis_host != NULL) {
    mock->redis = mock_redis_create(base, cfg->redis_host, cfg->redis_port, mock->server_name,
                                    on_redis_line, mock, err);
    if (mock->redis == NULL) {
      mockhs_destroy(mock);
      return NULL;
    }
  } else if (listener_open(mock, err) != 0) {
    mockhs_destroy(mock);
    return NULL;
  }
  if (cfg->http_enabled) {
    mock->http = mock_http_create(base, cfg->http_port, mock->history, mock->ledger, err);
    if (mock->http == NULL) {
      mockhs_destroy(mock);
      return NULL;
    }
  }
  if (cfg->ping_interval_ms > 0) {
    /* Tick at a fraction of the interval so an idle connection is pinged close to
     * "interval after the last send", like a real main's looping call. */
    int tick_ms = cfg->ping_interval_ms >= 40 ? cfg->ping_interval_ms / 4 : 10;
    struct timeval tv = {tick_ms / 1000, (tick_ms % 1000) * 1000};
    mock->ping_timer = event_new(base, -1, EV_PERSIST, on_ping_tick, mock);
    if (mock->ping_timer != NULL) event_add(mock->ping_timer, &tv);
  }
  return mock;
}

void mockhs_destroy(mockhs_t *mock) {
  if (mock == NULL) return;
  while (mock->conns != NULL) {
    conn_free(mock, mock->conns);
  }
  if (mock->listener != NULL) evconnlistener_free(mock->listener);
  if (mock->ping_timer != NULL) event_free(mock->ping_timer);
  if (mock->wake_timer != NULL) event_free(mock->wake_timer);
  if (mock->accept_retry != NULL) event_free(mock->accept_retry);
  if (mock->reap_timer != NULL) event_free(mock->reap_timer);
  mock_http_destroy(mock->http);
  mock_redis_destroy(mock->redis);
  stream_history_destroy(mock->history);
  ledger_destroy(mock->ledger);
  mock_emit_free(mock);
  /* libevent finishes freeing a bufferevent that still had deferred callbacks queued
   * (a FIN close waiting for its output to drain) on the next loop turn; give it that
   * turn so nothing is left behind for the event base's owner. */
  event_base_loop(mock->base, EVLOOP_NONBLOCK);
  free(mock->server_name);
  free(mock->instance_name);
  free(mock);
}

int mockhs_port(const mockhs_t *mock) { return mock->port; }
ledger_t *mockhs_ledger(mockhs_t *mock) { return mock->ledger; }
proto_dialect_t mockhs_dialect(const mockhs_t *mock) { return mock->cfg.dialect; }
const char *mockhs_server_name(const mockhs_t *mock) { return mock->server_name; }

int mockhs_latest_conn(const mockhs_t *mock) {
  for (const mock_conn_t *c = mock->conns; c != NULL; c = c->next)
    if (c->open && !c->closing) return c->id;
  return -1;
}

bool mockhs_conn_is_open(const mockhs_t *mock, int conn_id) {
  const mock_conn_t *c = conn_find(mock, conn_id);
  return c != NULL && c->open && !c->closing;
}

int mockhs_accepted_count(const mockhs_t *mock) { return mock->accepted; }

int mockhs_set_server_name(mockhs_t *mock, const char *server_name) {
  char *copy = strdup(server_name);
  if (copy == NULL) return -1;
  free(mock->server_name);
  mock->server_name = copy;
  mock->cfg.server_name = copy;
  return 0;
}

/* The mock's own switches go into the ledger: evidence, and what a recording replays. */
static void note(mockhs_t *mock, int conn_id, const char *text) {
  mock_record(mock, conn_id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, text, strlen(text));
}

void mockhs_set_pinging(mockhs_t *mock, bool enabled) {
  if (mock->pinging != enabled)
    note(mock, 0, enabled ? "mock: keepalive on" : "mock: keepalive off");
  mock->pinging = enabled;
}

int mockhs_set_listening(mockhs_t *mock, bool listening, rc_error_t *err) {
  if (listening != (mock->listener != NULL))
    note(mock, 0, listening ? "mock: listener on" : "mock: listener off");
  if (!listening) {
    if (mock->listener != NULL) evconnlistener_free(mock->listener);
    mock->listener = NULL;
    return 0;
  }
  if (mock->listener != NULL) return 0;
  return listener_open(mock, err);
}

/* A line a test wrote by hand still moves the main's announced position of its
 * stream, as if the main had written it: a later REPLICATE (2018) is answered from
 * there, like a real main that wrote those rows. */
static void note_announced_position(mockhs_t *mock, const char *line, size_t len) {
  proto_command_t cmd;
  if (proto_parse_line(mock->cfg.dialect, PROTO_SENDER_SERVER, line, len, &cmd, NULL) != PROTO_OK)
    return;
  if (cmd.kind != PROTO_CMD_RDATA && cmd.kind != PROTO_CMD_POSITION) return;
  if (cmd.kind == PROTO_CMD_RDATA && cmd.token_is_batch) return;
  if (mock->cfg.dialect == PROTO_DIALECT_MODERN && !proto_slice_eq(cmd.instance, mock->instance_name))
    return;
  char stream[256];
  proto_slice_copy(cmd.stream, stream, sizeof stream);
  int64_t position;
  if (!stream_history_position(mock->history, stream, &position)) return;
  int64_t token = cmd.kind == PROTO_CMD_POSITION && mock->cfg.dialect == PROTO_DIALECT_MODERN
                      ? cmd.new_token
                      : cmd.token;
  stream_history_set(mock->history, stream, token);
}

int mockhs_send_line(mockhs_t *mock, int conn_id, const char *line, size_t len) {
  int rc = conn_send_line(mock, conn_find(mock, conn_id), line, len);
  if (rc == 0) note_announced_position(mock, line, len);
  return rc;
}

int mockhs_send_raw(mockhs_t *mock, int conn_id, const char *bytes, size_t len) {
  mock_conn_t *conn = conn_find(mock, conn_id);
  if (conn == NULL || !conn->open || conn->closing) return -1;
  if (conn->redis) {
    /* Over Redis every message is a whole line: each LF-separated piece is one. */
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
      if (i == len || bytes[i] == '\n') {
        if (i > start && conn_send_line(mock, conn, bytes + start, i - start) != 0) return -1;
        start = i + 1;
      }
    }
    return 0;
  }
  if (conn->out != NULL) {
    conn->last_sent_ms = rc_clock_mono_ms();
    return mock_torture_hold(mock, conn, TORTURE_ITEM_RAW, bytes, len, false);
  }
  mock_record_raw(mock, conn->id, bytes, len);
  return conn_write(mock, conn, bytes, len);
}

void mock_record_raw(mockhs_t *mock, int conn_id, const char *bytes, size_t len) {
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (bytes[i] == '\n') {
      mock_record(mock, conn_id, LEDGER_LINE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, bytes + start,
                  i - start);
      start = i + 1;
    }
  }
  if (start < len) {
    const ledger_entry_t *e = ledger_append(mock->ledger, conn_id, LEDGER_LINE, LEDGER_SIDE_MOCK,
                                            LEDGER_CLOSE_NONE, bytes + start, len - start);
    if (e != NULL) ((ledger_entry_t *)e)->partial = true;
  }
}

int mockhs_send_command(mockhs_t *mock, int conn_id, const proto_command_t *cmd,
                        rc_error_t *err) {
  char line[PROTO_MAX_LINE + 1];
  proto_error_t perr;
  int n = proto_format_command(mock->cfg.dialect, cmd, line, sizeof line, &perr);
  if (n < 0) return rc_error_set(err, "mock homeserver: cannot format command: %s", perr.message);
  if (mockhs_send_line(mock, conn_id, line, (size_t)n) != 0)
    return rc_error_set(err, "mock homeserver: connection c%d is not open", conn_id);
  return 0;
}

int mockhs_close_conn(mockhs_t *mock, int conn_id, bool reset) {
  mock_conn_t *conn = conn_find(mock, conn_id);
  if (conn == NULL || !conn->open || conn->closing || conn->redis) return -1;
  if (!reset) {
    mock_conn_close_fin(mock, conn, NULL);
    return 0;
  }
  if (conn->out != NULL && !torture_out_idle(conn->out)) {
    conn->closing = true;
    return mock_torture_hold_close(mock, conn, true);
  }
  mock_conn_reset_now(mock, conn);
  return 0;
}

int mockhs_set_conn_stalled(mockhs_t *mock, int conn_id, bool stalled) {
  mock_conn_t *conn = conn_find(mock, conn_id);
  if (conn == NULL || !conn->open || conn->redis) return -1;
  if (conn->stalled == stalled) return 0;
  char text[64];
  snprintf(text, sizeof text, "mock: c%d %s", conn_id, stalled ? "stalled" : "resumed");
  note(mock, conn_id, text);
  conn->stalled = stalled;
  torture_out_stall(conn->out, stalled);
  if (stalled) {
    bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
    return 0;
  }
  conn->last_sent_ms = rc_clock_mono_ms();
  bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
  /* What arrived meanwhile waits in the kernel or our input buffer: read it now. */
  if (evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0) on_read(conn->bev, conn);
  return 0;
}

int64_t mockhs_output_settled_ms(const mockhs_t *mock) {
  int64_t settled = rc_clock_mono_ms();
  for (const mock_conn_t *c = mock->conns; c != NULL; c = c->next) {
    int64_t at = torture_out_settled_ms(c->out);
    if (c->out != NULL && at > settled) settled = at;
  }
  return settled;
}

bool mockhs_conn_torture_dropped(const mockhs_t *mock, int conn_id) {
  return conn_id != 0 && conn_id == mock->torture_doomed_conn;
}

int64_t mockhs_torture_drop_ms(const mockhs_t *mock) { return mock->torture_drop_ms; }

stream_history_t *mockhs_history(mockhs_t *mock) { return mock->history; }
mock_http_t *mockhs_http(mockhs_t *mock) { return mock->http; }
int mockhs_http_port(const mockhs_t *mock) { return mock->http ? mock_http_port(mock->http) : 0; }

int mockhs_send_position(mockhs_t *mock, int conn_id, const char *stream, int64_t prev_token,
                         int64_t new_token) {
  mock_conn_t *conn = conn_find(mock, conn_id);
  if (conn == NULL || !conn->open || conn->closing) return -1;
  send_position(mock, conn, stream, prev_token, new_token);
  return 0;
}

bool mockhs_transport_ready(mockhs_t *mock, int timeout_ms, rc_error_t *err) {
  if (mock->redis == NULL) return true;
  int64_t deadline = rc_clock_mono_ms() + timeout_ms;
  while (!mock_redis_ready(mock->redis)) {
    if (mock_redis_problem(mock->redis)[0] != '\0')
      return rc_error_set(err, "mock homeserver: %s", mock_redis_problem(mock->redis)) == 0;
    if (rc_clock_mono_ms() >= deadline)
      return rc_error_set(err, "mock homeserver: not subscribed to redis within %d ms", timeout_ms) == 0;
    int64_t slice = rc_clock_mono_ms() + 20;
    mock_loop_once_until(mock, slice < deadline ? slice : deadline);
  }
  return true;
}

int mockhs_redis_reconnect(mockhs_t *mock, int timeout_ms, rc_error_t *err) {
  if (mock->redis == NULL) return rc_error_set(err, "mock homeserver: not on redis");
  if (mock_redis_reconnect(mock->redis, err) != 0) return -1;
  return mockhs_transport_ready(mock, timeout_ms, err) ? 0 : -1;
}
