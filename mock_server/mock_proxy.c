#include "mock_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proto.h"

typedef struct session {
  struct mock_proxy *proxy;
  int id;
  struct bufferevent *worker;
  struct bufferevent *main;
  struct evbuffer *from_worker; /* bytes of an unfinished line, for the ledger */
  struct evbuffer *from_main;
  bool ended; /* the close is recorded; the other side is flushing */
  struct session *next;
} session_t;

struct mock_proxy {
  struct event_base *base;
  struct evconnlistener *listener;
  int port;
  struct sockaddr_storage main_addr;
  socklen_t main_len;
  char main_name[300];
  ledger_t *ledger;
  session_t *sessions;
  int accepted;
  int ended;
  int max_sessions; /* 0 = no limit */
};

static void note(session_t *s, const char *text) {
  ledger_append(s->proxy->ledger, s->id, LEDGER_NOTE, LEDGER_SIDE_MOCK, LEDGER_CLOSE_NONE, text,
                strlen(text));
}

/* Records the complete lines in buf, leaving an unfinished one. */
static void record_lines(session_t *s, struct evbuffer *buf, ledger_side_t side, bool flush) {
  for (;;) {
    size_t avail = evbuffer_get_length(buf);
    if (avail == 0) return;
    size_t want = avail > PROTO_MAX_LINE + 1 ? PROTO_MAX_LINE + 1 : avail;
    const char *data = (const char *)evbuffer_pullup(buf, (ev_ssize_t)want);
    size_t line_len = 0, consumed = 0;
    proto_frame_status_t st = proto_frame_next(data, want, &line_len, &consumed);
    if (st == PROTO_FRAME_LINE) {
      ledger_append(s->proxy->ledger, s->id, LEDGER_LINE, side, LEDGER_CLOSE_NONE, data, line_len);
      evbuffer_drain(buf, consumed);
      continue;
    }
    if (st == PROTO_FRAME_NEED_MORE && !flush) return;
    /* Too long (or cut by a close): its first part, marked as a line without LF. */
    size_t n = want > PROTO_MAX_LINE ? PROTO_MAX_LINE : want;
    const ledger_entry_t *e =
        ledger_append(s->proxy->ledger, s->id, LEDGER_LINE, side, LEDGER_CLOSE_NONE, data, n);
    if (e != NULL) ((ledger_entry_t *)e)->partial = true;
    if (st == PROTO_FRAME_TOO_LONG) note(s, "proxy: line over 16384 bytes (first 16384 recorded)");
    struct evbuffer_ptr lf = evbuffer_search(buf, "\n", 1, NULL);
    evbuffer_drain(buf, lf.pos >= 0 ? (size_t)lf.pos + 1 : avail);
  }
}

static void session_free(session_t *s) {
  mock_proxy_t *p = s->proxy;
  for (session_t **at = &p->sessions; *at != NULL; at = &(*at)->next) {
    if (*at == s) {
      *at = s->next;
      break;
    }
  }
  if (s->worker) bufferevent_free(s->worker);
  if (s->main) bufferevent_free(s->main);
  evbuffer_free(s->from_worker);
  evbuffer_free(s->from_main);
  free(s);
}

static void on_drained(struct bufferevent *bev, void *arg) {
  (void)bev;
  session_free(arg);
}

/* One side closed: record it, then close the other side once it has flushed. */
static void session_end(session_t *s, ledger_side_t side, ledger_close_how_t how, const char *why) {
  if (s->ended) {
    session_free(s);
    return;
  }
  s->ended = true;
  s->proxy->ended++;
  record_lines(s, s->from_worker, LEDGER_SIDE_SUT, true);
  record_lines(s, s->from_main, LEDGER_SIDE_MOCK, true);
  ledger_append(s->proxy->ledger, s->id, LEDGER_CLOSE, side, how, why, why ? strlen(why) : 0);
  struct bufferevent *other = side == LEDGER_SIDE_SUT ? s->main : s->worker;
  struct bufferevent *gone = side == LEDGER_SIDE_SUT ? s->worker : s->main;
  bufferevent_disable(gone, EV_READ | EV_WRITE);
  bufferevent_disable(other, EV_READ);
  if (evbuffer_get_length(bufferevent_get_output(other)) == 0) {
    session_free(s);
    return;
  }
  bufferevent_setcb(other, NULL, on_drained, NULL, s);
}

static void forward(session_t *s, struct bufferevent *from, struct bufferevent *to,
                    struct evbuffer *recorder, ledger_side_t side) {
  struct evbuffer *in = bufferevent_get_input(from);
  size_t n = evbuffer_get_length(in);
  if (n == 0) return;
  const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
  bufferevent_write(to, data, n);
  evbuffer_add(recorder, data, n);
  evbuffer_drain(in, n);
  record_lines(s, recorder, side, false);
}

static void on_worker_read(struct bufferevent *bev, void *arg) {
  session_t *s = arg;
  forward(s, bev, s->main, s->from_worker, LEDGER_SIDE_SUT);
}

static void on_main_read(struct bufferevent *bev, void *arg) {
  session_t *s = arg;
  forward(s, bev, s->worker, s->from_main, LEDGER_SIDE_MOCK);
}

static void on_event(session_t *s, short what, ledger_side_t side) {
  if (what & BEV_EVENT_CONNECTED) return;
  if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) return;
  if (what & BEV_EVENT_EOF) {
    if (side == LEDGER_SIDE_SUT)
      on_worker_read(s->worker, s);
    else
      on_main_read(s->main, s);
    session_end(s, side, LEDGER_CLOSE_FIN, NULL);
    return;
  }
  int err = EVUTIL_SOCKET_ERROR();
  if (err == ECONNRESET) {
    session_end(s, side, LEDGER_CLOSE_RST, NULL);
    return;
  }
  char why[400];
  if (side == LEDGER_SIDE_MOCK && !s->ended)
    snprintf(why, sizeof why, "proxy: the main at %s: %s", s->proxy->main_name, strerror(err));
  else
    snprintf(why, sizeof why, "%s", strerror(err));
  session_end(s, side, LEDGER_CLOSE_ERROR, why);
}

static void on_worker_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  on_event(arg, what, LEDGER_SIDE_SUT);
}

static void on_main_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  on_event(arg, what, LEDGER_SIDE_MOCK);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int socklen, void *arg) {
  mock_proxy_t *p = arg;
  (void)listener;
  (void)socklen;
  session_t *s = calloc(1, sizeof *s);
  if (s != NULL) {
    s->proxy = p;
    s->worker = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    s->main = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
    s->from_worker = evbuffer_new();
    s->from_main = evbuffer_new();
  }
  if (s == NULL || !s->worker || !s->main || !s->from_worker || !s->from_main) {
    if (s == NULL || s->worker == NULL) evutil_closesocket(fd);
    if (s != NULL) {
      s->proxy = NULL;
      if (s->worker) bufferevent_free(s->worker);
      if (s->main) bufferevent_free(s->main);
      if (s->from_worker) evbuffer_free(s->from_worker);
      if (s->from_main) evbuffer_free(s->from_main);
      free(s);
    }
    return;
  }
  s->id = ++p->accepted;
  if (p->max_sessions > 0 && p->accepted >= p->max_sessions && p->listener != NULL) {
    evconnlistener_free(p->listener);
    p->listener = NULL;
  }
  s->next = p->sessions;
  p->sessions = s;
  char peer[64] = "?";
  if (addr->sa_family == AF_INET) {
    char host[INET_ADDRSTRLEN];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    snprintf(peer, sizeof peer, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
  }
  ledger_append(p->ledger, s->id, LEDGER_OPEN, LEDGER_SIDE_SUT, LEDGER_CLOSE_NONE, peer,
                strlen(peer));
  bufferevent_setcb(s->worker, on_worker_read, NULL, on_worker_event, s);
  bufferevent_setcb(s->main, on_main_read, NULL, on_main_event, s);
  bufferevent_enable(s->worker, EV_READ | EV_WRITE);
  bufferevent_enable(s->main, EV_READ | EV_WRITE);
  if (bufferevent_socket_connect(s->main, (struct sockaddr *)&p->main_addr, (int)p->main_len) != 0)
    session_end(s, LEDGER_SIDE_MOCK, LEDGER_CLOSE_ERROR, "proxy: cannot connect to the main");
}

mock_proxy_t *mock_proxy_create(struct event_base *base, int listen_port, const char *main_host,
                                int main_port, ledger_t *ledger, rc_error_t *err) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *found = NULL;
  char port_text[16];
  snprintf(port_text, sizeof port_text, "%d", main_port);
  int rc = getaddrinfo(main_host, port_text, &hints, &found);
  if (rc != 0 || found == NULL) {
    rc_error_set(err, "proxy: cannot resolve the main's host '%s': %s", main_host,
                 gai_strerror(rc));
    return NULL;
  }
  mock_proxy_t *p = calloc(1, sizeof *p);
  if (p == NULL) {
    freeaddrinfo(found);
    rc_error_set(err, "proxy: out of memory");
    return NULL;
  }
  memcpy(&p->main_addr, found->ai_addr, found->ai_addrlen);
  p->main_len = found->ai_addrlen;
  freeaddrinfo(found);
  snprintf(p->main_name, sizeof p->main_name, "%s:%d", main_host, main_port);
  p->base = base;
  p->ledger = ledger;
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  p->listener =
      evconnlistener_new_bind(base, on_accept, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                              (struct sockaddr *)&sin, sizeof sin);
  if (p->listener == NULL) {
    rc_error_set(err, "proxy: cannot listen on 127.0.0.1:%d: %s", listen_port, strerror(errno));
    free(p);
    return NULL;
  }
  struct sockaddr_in bound;
  socklen_t blen = sizeof bound;
  getsockname(evconnlistener_get_fd(p->listener), (struct sockaddr *)&bound, &blen);
  p->port = ntohs(bound.sin_port);
  return p;
}

void mock_proxy_destroy(mock_proxy_t *p) {
  if (p == NULL) return;
  while (p->sessions != NULL) session_free(p->sessions);
  if (p->listener != NULL) evconnlistener_free(p->listener);
  free(p);
}

void mock_proxy_set_max_sessions(mock_proxy_t *p, int n) {
  p->max_sessions = n;
}

int mock_proxy_port(const mock_proxy_t *p) {
  return p->port;
}
int mock_proxy_sessions(const mock_proxy_t *p) {
  return p->accepted;
}
int mock_proxy_sessions_ended(const mock_proxy_t *p) {
  return p->ended;
}
