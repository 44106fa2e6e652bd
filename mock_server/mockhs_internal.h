/* mockhs_internal: the mock homeserver's state, shared by its own files only
 * (mockhs.c: connections and the protocol; mockhs_torture.c: held output under
 * --torture; mockhs_wait.c: running the loop with deadlines). Not for other modules:
 * they use mockhs.h. */
#ifndef MOCKHS_INTERNAL_H
#define MOCKHS_INTERNAL_H

#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>

#include "mock_http.h"
#include "mock_redis.h"
#include "mockhs.h"
#include "stream_history.h"
#include "torture.h"

/* One accepted replication connection. */
typedef struct mock_conn {
  struct mockhs *mock;   /* back pointer: bufferevent callbacks get the connection */
  int id;
  struct bufferevent *bev;
  bool open;
  bool closing;          /* we asked for a FIN close; freed once output drained */
  bool redis;            /* a Redis channel, not a socket: writes are PUBLISHes */
  bool user_ip_channel;  /* the <server_name>/USER_IP channel */
  bool stalled;          /* mockhs_set_conn_stalled: no reading, writing or keepalive */
  int64_t last_sent_ms;  /* for the keepalive rule "PING when idle for an interval" */
  unsigned queued_while_paused; /* lines queued since the output passed 64 KiB (guard) */
  size_t guard_expected;        /* unsent bytes right after the guard's last line */
  int64_t guard_progress_ms;    /* when the SUT was last seen taking output */
  /* --torture only */
  torture_out_t *out;         /* held output, in order */
  uint64_t lines_queued;      /* lines queued, keepalive not counted: numbers decisions */
  uint64_t lines_written;     /* of those, written */
  uint64_t replicate_rounds;  /* REPLICATE answers so far (shuffle numbering) */
  int drop_after;             /* drop after this many lines are written (0 = never) */
  struct event *drop_timer;   /* drops a doomed connection whose opening stalls */
  struct mock_conn *next;
} mock_conn_t;

struct mockhs {
  struct event_base *base;
  mockhs_config_t cfg;
  char *server_name;
  char *instance_name;
  stream_history_t *history; /* streams the mock writes: positions and emitted rows */
  mock_http_t *http;         /* the main's HTTP side (NULL when disabled) */
  mock_redis_t *redis;       /* Redis transport (NULL for direct TCP) */
  struct evconnlistener *listener;
  struct sockaddr_in addr;
  int port;
  ledger_t *ledger;
  mock_conn_t *conns; /* newest first; closed ones are removed */
  int next_conn_id;
  int accepted;
  bool pinging;
  struct event *ping_timer;
  struct event *wake_timer; /* bounds each loop iteration of the wait functions */
  struct event *accept_retry; /* re-enables a listener paused by an accept error (guard) */
  struct event *reap_timer;   /* frees connections closed with nothing left to flush */
  torture_plan_t torture;   /* level 0 = off */
  int torture_doomed_conn;  /* the connection torture drops in its opening (0 = none) */
  int64_t torture_drop_ms;  /* monotonic ms of that drop (0 = not yet) */
  struct mockhs_piece *emit_piece; /* mockhs_emit's buffer, kept between calls */
  struct {                  /* what torture did, for mockhs_torture_summary */
    unsigned held, split, shuffles, max_hold_ms, drop_after;
  } torture_done;
};

/* mockhs.c */
void mock_record(mockhs_t *mock, int conn_id, ledger_kind_t kind, ledger_side_t side,
                 ledger_close_how_t how, const char *text, size_t len);
/* Records raw bytes the mock wrote: each LF-terminated piece as a line, a trailing
 * piece as a partial line. */
void mock_record_raw(mockhs_t *mock, int conn_id, const char *bytes, size_t len);
/* A FIN close from our side after what is queued. conn stays allocated (closed) until
 * the loop runs: callers inside its callbacks may still look at it. */
void mock_conn_close_fin(mockhs_t *mock, mock_conn_t *conn, const char *why);
/* Sends lines to one open connection as the mock's own output: line i is bytes[start_i
 * .. ends[i]) with bytes[ends[i]] its LF (start_0 = 0, start_i = ends[i-1] + 1). One
 * guard pass, one ledger call and one buffer append for all of them on a plain TCP
 * connection; line by line under torture or on Redis. Returns 0, or -1 when the
 * connection is closed or refused (some lines may have been sent). */
int mock_conn_send_lines(mockhs_t *mock, mock_conn_t *conn, const char *bytes, const size_t *ends,
                         size_t count);
/* An immediate RST; frees conn. */
void mock_conn_reset_now(mockhs_t *mock, mock_conn_t *conn);

/* mockhs_emit.c: frees mockhs_emit's buffer (on destroy). */
void mock_emit_free(mockhs_t *mock);

/* mockhs_guard.c: defences against a SUT that does not behave. */
/* Before `count` lines are written at now_ms to a TCP connection that is not tortured
 * or stalled (line i ends where its LF goes, at ends[i]; see ledger_append_lines):
 * how many of them, from the first, may be written. Fewer than count means the SUT
 * has failed to keep up (spec §3.3): the caller writes the admitted lines, then calls
 * mock_guard_refuse with *unsent_at_refusal, which closes it like a real main. */
size_t mock_guard_admit_lines(mockhs_t *mock, mock_conn_t *conn, const size_t *ends, size_t count,
                              int64_t now_ms, size_t *unsent_at_refusal);
/* Records why, writes "ERROR Failed to keep up" and closes (FIN) the connection. */
void mock_guard_refuse(mockhs_t *mock, mock_conn_t *conn, size_t unsent, int64_t now_ms);
/* The listener's error callback: notes the accept error and pauses accepting. */
void mock_guard_accept_error(struct evconnlistener *listener, void *arg);

/* mockhs_wait.c: runs one loop iteration, returning by deadline_ms at the latest. */
void mock_loop_once_until(mockhs_t *mock, int64_t deadline_ms);

/* mockhs_torture.c */
/* Sets up held output on a newly accepted TCP connection (torture level >= 1) and
 * decides whether it is doomed. Returns 0, or -1 when out of memory. */
int mock_torture_attach(mockhs_t *mock, mock_conn_t *conn, evutil_socket_t fd);
/* Frees the connection's torture state (on connection free). */
void mock_torture_detach(mock_conn_t *conn);
/* Queues a LINE (text without LF) or RAW bytes; keepalive PINGs are neither held nor
 * cut and do not count as lines. Returns 0, or -1. */
int mock_torture_hold(mockhs_t *mock, mock_conn_t *conn, torture_item_kind_t kind,
                      const char *bytes, size_t len, bool keepalive);
/* Queues a close (FIN, or RST when reset) behind the held output. */
int mock_torture_hold_close(mockhs_t *mock, mock_conn_t *conn, bool reset);
/* The REPLICATE answer of a doomed connection is queued: it is dropped after it at the
 * latest. */
void mock_torture_opening_done(mockhs_t *mock, mock_conn_t *conn);

#endif
