/* protocol/redis: replication over Redis pub/sub (Synapse v1.13+, the only transport
 * from v1.67). Requirements RE-01..RE-06, RE-08, RE-09
 * (shared/spec/requirements.md §8; replication-protocol.md §6). The test has its own
 * redis-server; what the SUT publishes shows in the ledger on the channel's
 * pseudo-connection. */
#include <hiredis/hiredis.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filetail.h"
#include "mock_redis.h"
#include "rc_clock.h"
#include "redis_server.h"
#include "suite_util.h"

#define REDIS_ROW(...) \
  RC_TEST_ROW(.transports = RC_TRANSPORT_REDIS, .dialects = RC_DIALECT_MODERN, __VA_ARGS__)

/* The SUT's clients in CLIENT LIST (not the mock's, not this probe's own). */
typedef struct redis_clients {
  int count;
  int subscribers;     /* flags contain P */
  int plain;           /* flags=N */
  int sub_channels[8]; /* sub= of each subscriber */
  char listing[2048];
} redis_clients_t;

static bool list_sut_clients(rc_test_t *t, redis_clients_t *out) {
  memset(out, 0, sizeof *out);
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_server_port(t->redis), tv);
  if (c == NULL || c->err) {
    if (c != NULL) redisFree(c);
    return rc_error(t, "cannot connect to the test's redis-server to list clients");
  }
  redisReply *r = redisCommand(c, "CLIENT LIST");
  if (r == NULL || r->type != REDIS_REPLY_STRING) {
    if (r != NULL) freeReplyObject(r);
    redisFree(c);
    return rc_error(t, "CLIENT LIST failed");
  }
  for (char *line = strtok(r->str, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    if (strstr(line, "name=" MOCK_REDIS_CLIENT_PREFIX) != NULL) continue;
    if (strstr(line, "cmd=client") != NULL) continue; /* this listing connection */
    size_t at = strlen(out->listing);
    snprintf(out->listing + at, sizeof out->listing - at, "%s%.200s", at ? " | " : "", line);
    out->count++;
    const char *flags = strstr(line, " flags=");
    const char *sub = strstr(line, " sub=");
    if (flags != NULL && strchr(flags + 7, 'P') != NULL && strchr(flags + 7, 'P') < strchr(flags + 7, ' ')) {
      if (out->subscribers < 8) out->sub_channels[out->subscribers] = sub ? atoi(sub + 5) : -1;
      out->subscribers++;
    } else if (flags != NULL && strncmp(flags + 7, "N ", 2) == 0) {
      out->plain++;
    }
  }
  freeReplyObject(r);
  redisFree(c);
  return true;
}

/* RE-01: two connections: one subscribed to exactly one channel, one for PUBLISH. */
static void redis_two_connections(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  redis_clients_t clients;
  if (!list_sut_clients(t, &clients)) return;
  if (clients.count != 2 || clients.subscribers != 1 || clients.plain != 1 ||
      clients.sub_channels[0] != 1)
    rc_fail(t, "exactly two redis connections: one subscribed to one channel, one plain",
            "%d connection(s): %s", clients.count, clients.listing);
}

/* RE-02: the first thing published is REPLICATE with empty data. */
static void redis_opening(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  rc_match_t first = {.conn_id = conn, .side = LEDGER_SIDE_SUT};
  const ledger_entry_t *e = rc_wait(t, 1, &first, 1000);
  proto_command_t cmd;
  if (e == NULL || proto_parse_line(PROTO_DIALECT_MODERN, PROTO_SENDER_ANY, e->text, e->len, &cmd,
                                    NULL) != PROTO_OK ||
      cmd.kind != PROTO_CMD_REPLICATE || cmd.data.len != 0)
    rc_fail(t, "'REPLICATE ' as the first message published after subscribing",
            e ? "first message was '%.200s'" : "%snothing published", e ? e->text : "");
}

/* RE-03: one command line per message; never NAME, SERVER, PING or ERROR. */
static void redis_message_kinds(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  /* Give it things that would make a TCP worker answer or complain. */
  suite_send(t, conn, "HELLO world");
  suite_send(t, conn, "REPLICATE ");
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  rc_observe(t, 500);
  ledger_t *ledger = mockhs_ledger(t->mock);
  for (uint64_t s = ledger_first_seq(ledger); s < ledger_next_seq(ledger); s++) {
    const ledger_entry_t *e = ledger_get(ledger, s);
    if (e->kind != LEDGER_LINE || e->side != LEDGER_SIDE_SUT) continue;
    proto_command_t cmd;
    if (memchr(e->text, '\n', e->len) != NULL ||
        proto_parse_line(PROTO_DIALECT_MODERN, PROTO_SENDER_ANY, e->text, e->len, &cmd, NULL) !=
            PROTO_OK) {
      rc_fail(t, "every published message is one valid command line without LF",
              "published '%.200s'", e->text);
      return;
    }
    if (cmd.kind == PROTO_CMD_NAME || cmd.kind == PROTO_CMD_SERVER || cmd.kind == PROTO_CMD_PING ||
        cmd.kind == PROTO_CMD_ERROR) {
      rc_fail(t, "no NAME, SERVER, replication PING or ERROR over redis", "published '%.200s'",
              e->text);
      return;
    }
  }
}

/* The first line at ERROR level the SUT logged after byte offset `from`. */
static bool error_logged_since(rc_test_t *t, long from, char *first, size_t cap) {
  regex_t re;
  if (regcomp(&re, " - ERROR - ", REG_NOSUB) != 0) return false;
  bool found = filetail_scan_regex(t->log_file, &from, &re, first, cap);
  regfree(&re);
  return found;
}

/* RE-05: commands meant for other processes are handled or ignored without error. */
static void redis_others_commands(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  rc_observe(t, 200);
  long before = filetail_size(t->log_file);
  const char *lines[] = {
      "USER_SYNC AbCdE @alice:hs start 1533000000000",
      "CLEAR_USER_SYNC AbCdE",
      "USER_IP @alice:hs [\"syt_x\",\"10.0.0.1\",\"curl\",\"DEV\",1533000000000]",
      "FEDERATION_ACK fedsender1 12",
      "POSITION caches otherworker 4 4",
      "REMOTE_SERVER_UP remote.example.org",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    if (!suite_send(t, conn, "%s", lines[i])) break;
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  char first[512] = "";
  if (error_logged_since(t, before, first, sizeof first))
    rc_fail(t, "no ERROR logged for commands meant for other processes", "logged: %s", first);
}

/* RE-06: unparsable messages are logged and skipped; later messages are processed. */
static void redis_unparsable_skipped(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  uint64_t seq = rc_now_seq(t);
  const char *bad[] = {"HELLO world", "RDATA presence master 99 {not json", " "};
  for (size_t i = 0; i < 3; i++)
    if (!suite_send(t, conn, "%s", bad[i])) return;
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  rc_match_t error = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_ERROR};
  const ledger_entry_t *e = rc_wait(t, seq, &error, 0);
  if (e != NULL)
    rc_fail(t, "no ERROR published over redis", "published '%.200s'", e->text);
}

/* The SUT's next `POSITION caches <own instance> N N` on conn at or after *from_seq, waited
 * for until deadline_ms of the monotonic clock; *from_seq moves past it. Other lines of
 * the SUT (its other streams' POSITIONs included) are skipped. NULL at the deadline. */
static const ledger_entry_t *next_own_caches_position(rc_test_t *t, int conn, uint64_t *from_seq,
                                                      int64_t deadline_ms) {
  /* By prefix: rc_match_t's command parses the SUT's lines with the TCP directions. */
  rc_match_t pos = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .prefix = "POSITION "};
  for (;;) {
    int64_t left = deadline_ms - rc_clock_mono_ms();
    const ledger_entry_t *e = rc_wait(t, *from_seq, &pos, left > 0 ? (int)left : 0);
    if (e == NULL) return NULL;
    *from_seq = e->seq + 1;
    proto_command_t cmd;
    /* Redis has no direction check: what a worker publishes parses as from anyone. */
    if (proto_parse_line(PROTO_DIALECT_MODERN, PROTO_SENDER_ANY, e->text, e->len, &cmd, NULL) ==
            PROTO_OK &&
        cmd.kind == PROTO_CMD_POSITION && proto_slice_eq(cmd.stream, "caches") &&
        proto_slice_eq(cmd.instance, t->profile->instance_name) && cmd.prev_token == cmd.new_token)
      return e;
  }
}

/* RE-04: every REPLICATE on the channel is answered with the worker's POSITIONs: its own
 * (echoed back to it by Redis) and one the main publishes. */
static void redis_replicate_answered(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  rc_match_t own = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_REPLICATE};
  const ledger_entry_t *replicate = rc_wait(t, 1, &own, 0);
  if (replicate == NULL) {
    rc_error(t, "the worker's opening REPLICATE is not in the ledger");
    return;
  }
  /* One POSITION after subscribing (RE-02) and one answering the echo of its REPLICATE. */
  uint64_t seq = replicate->seq + 1;
  int64_t deadline = replicate->mono_ns / 1000000 + 1000;
  int seen = 0;
  while (seen < 2 && next_own_caches_position(t, conn, &seq, deadline) != NULL) seen++;
  char lines[1024];
  if (seen < 2) {
    rc_fail(t,
            "two 'POSITION caches <own> N N' within 1 s of the worker's REPLICATE: one after "
            "subscribing, one answering the echo of that REPLICATE",
            "%d such POSITION(s); the worker published: %s", seen,
            suite_sut_lines(t, conn, lines, sizeof lines));
    return;
  }
  rc_observe(t, 200);
  seq = rc_now_seq(t);
  if (!suite_send(t, conn, "REPLICATE ")) return;
  if (next_own_caches_position(t, conn, &seq, rc_clock_mono_ms() + 1000) == NULL)
    rc_fail(t, "'POSITION caches <own> N N' within 1 s of the main's 'REPLICATE '",
            "none; the worker published: %s", suite_sut_lines(t, conn, lines, sizeof lines));
}

/* The SUT's Redis clients as MONITOR shows them: per client address, its PINGs. */
#define MONITOR_CLIENTS_MAX 8
typedef struct monitor_client {
  char addr[64];    /* "127.0.0.1:34996" */
  double last_ping; /* wall clock s of its last PING; before the first one seen, its last
                     * command before the window (a lower bound of the gap's start) */
  double max_gap;   /* the longest time without a PING so far */
  int pings;
} monitor_client_t;

typedef struct monitor_view {
  monitor_client_t clients[MONITOR_CLIENTS_MAX];
  int count;
} monitor_view_t;

/* Folds one MONITOR line (`<secs> [<db> <addr>] "CMD" ...`) into the view: PINGs of the
 * clients it knows. */
static void monitor_view_add(monitor_view_t *view, const char *line) {
  double when = strtod(line, NULL);
  const char *open = strchr(line, '[');
  const char *space = open ? strchr(open, ' ') : NULL;
  const char *close = space ? strchr(space, ']') : NULL;
  if (close == NULL || strncasecmp(close + 1, " \"PING\"", 7) != 0) return;
  for (int i = 0; i < view->count; i++) {
    monitor_client_t *c = &view->clients[i];
    if (strlen(c->addr) != (size_t)(close - space - 1) ||
        strncmp(c->addr, space + 1, (size_t)(close - space - 1)) != 0)
      continue;
    if (when - c->last_ping > c->max_gap) c->max_gap = when - c->last_ping;
    c->last_ping = when;
    c->pings++;
  }
}

/* The SUT's clients from CLIENT LIST taken at wall time `now`: address, and the start of
 * the current gap bounded by its last command (`idle=`, whole seconds, rounded in the
 * worker's favour). The monitor's own connection is left out. */
static void monitor_view_list(monitor_view_t *view, const redis_clients_t *clients, double now) {
  char listing[sizeof clients->listing];
  snprintf(listing, sizeof listing, "%s", clients->listing);
  char *save = NULL;
  for (char *entry = strtok_r(listing, "|", &save);
       entry != NULL && view->count < MONITOR_CLIENTS_MAX; entry = strtok_r(NULL, "|", &save)) {
    const char *addr = strstr(entry, " addr="), *idle = strstr(entry, " idle=");
    const char *flags = strstr(entry, " flags=");
    /* flags O: a monitor (this test's own) */
    if (addr == NULL || idle == NULL ||
        (flags != NULL && memchr(flags + 7, 'O', strcspn(flags + 7, " ")) != NULL))
      continue;
    monitor_client_t *c = &view->clients[view->count++];
    size_t n = strcspn(addr + 6, " ");
    snprintf(c->addr, sizeof c->addr, "%.*s", (int)(n < 63 ? n : 63), addr + 6);
    c->last_ping = now - atof(idle + 6);
  }
}

/* RE-08 observation window: longer than the verdict bound, so a connection that never
 * pings shows a gap above it. The gap running when the window opens is measured from
 * the connection's last command before it (CLIENT LIST idle), so a PING period above the
 * bound shows too. */
#define RE08_BOUND_S 35.0
#define RE08_WINDOW_MS 36000

/* Reads every MONITOR line c has received so far into the view, without blocking.
 * False once the connection is lost. */
static bool monitor_view_read(monitor_view_t *view, redisContext *c) {
  for (;;) {
    void *reply = NULL;
    if (redisGetReplyFromReader(c, &reply) != REDIS_OK) return false;
    if (reply == NULL) {
      struct pollfd p = {.fd = c->fd, .events = POLLIN};
      if (poll(&p, 1, 0) <= 0) return true;
      if (redisBufferRead(c) != REDIS_OK) return false;
      continue;
    }
    redisReply *line = reply;
    if (line->type == REDIS_REPLY_STATUS) monitor_view_add(view, line->str);
    freeReplyObject(line);
  }
}

/* RE-08: each Redis connection of the worker sends a Redis-protocol PING at least every
 * 30 s: through MONITOR over one 36 s window, no client of the SUT goes 35 s without one. */
static void redis_keepalive_ping(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_server_port(t->redis), tv);
  if (c == NULL || c->err) {
    if (c != NULL) redisFree(c);
    rc_error(t, "cannot connect to the test's redis-server for MONITOR");
    return;
  }
  redisReply *r = redisCommand(c, "MONITOR");
  bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
  if (r != NULL) freeReplyObject(r);
  if (!ok) {
    redisFree(c);
    rc_error(t, "MONITOR failed on the test's redis-server");
    return;
  }
  /* Listed once the monitor runs, so no PING falls between the list and the monitor; a
   * client silent all window long still counts. */
  monitor_view_t view = {.count = 0};
  redis_clients_t clients;
  if (!list_sut_clients(t, &clients)) {
    redisFree(c);
    return;
  }
  monitor_view_list(&view, &clients, (double)rc_clock_wall_ms() / 1000.0);
  int64_t end = rc_clock_mono_ms() + RE08_WINDOW_MS;
  bool alive = true;
  while (alive && rc_clock_mono_ms() < end) {
    rc_observe(t, 20);
    alive = monitor_view_read(&view, c);
  }
  redisFree(c);
  if (!alive) {
    rc_error(t, "the MONITOR connection was lost during the window");
    return;
  }
  double window_end = (double)rc_clock_wall_ms() / 1000.0;
  char worst[512] = "";
  size_t used = 0;
  bool failed = false;
  for (int i = 0; i < view.count; i++) {
    monitor_client_t *mc = &view.clients[i];
    double tail = window_end - mc->last_ping;
    double gap = mc->max_gap > tail ? mc->max_gap : tail;
    used += (size_t)snprintf(worst + used, used < sizeof worst ? sizeof worst - used : 0,
                             "%s%s: %d PING(s), longest gap %.1f s", i ? "; " : "", mc->addr,
                             mc->pings, gap);
    if (used >= sizeof worst) used = sizeof worst - 1;
    failed |= gap > RE08_BOUND_S;
  }
  if (view.count == 0)
    rc_error(t, "the SUT has no redis connection to observe: %s", clients.listing);
  else if (failed)
    rc_fail(t,
            "a Redis PING on each of the worker's connections at least every 30 s (gaps <= 35 s)",
            "over %d ms: %s", RE08_WINDOW_MS, worst);
}

/* RE-09: after redis-server restarts, the worker resubscribes and publishes REPLICATE. */
static void redis_restart(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  redis_server_kill(t->redis);
  rc_observe(t, 300);
  rc_error_t err;
  if (redis_server_relaunch(t->redis, 5000, &err) != 0) {
    rc_error(t, "%s", err.msg);
    return;
  }
  if (mockhs_redis_reconnect(t->mock, 5000, &err) != 0) {
    rc_error(t, "%s", err.msg);
    return;
  }
  uint64_t seq = rc_now_seq(t);
  /* Synapse: subscriber cap 5 s, publisher cap 10 s, jitter; the profile's cap here. */
  int bound = 2 * suite_reconnect_bound_ms(t) + 1000;
  if (bound < 2000) bound = 2000;
  rc_match_t rep = {.side = LEDGER_SIDE_SUT, .command = PROTO_CMD_REPLICATE};
  const ledger_entry_t *e = rc_wait(t, seq, &rep, bound);
  if (e == NULL) {
    rc_fail(t, "REPLICATE published again after redis-server came back",
            "nothing within %d ms of the restart", bound);
    return;
  }
  int64_t pos;
  suite_probe_position(t, &conn, "typing", &pos);
}

const rc_test_def_t protocol_redis_tests[] = {
    REDIS_ROW(.id = "protocol/redis/two-connections", .requirements = "RE-01", .level = RC_LEVEL_MUST,
              .requirement = "Once established, the worker holds exactly two redis connections: one "
                             "subscribed to <server_name>, one for PUBLISH.",
              .source = "reference/synapse-1.67-redis/client-list-now.txt; replication-protocol.md §6",
              .run = redis_two_connections),
    REDIS_ROW(.id = "protocol/redis/opening", .requirements = "RE-02", .level = RC_LEVEL_MUST,
              .requirement = "After its SUBSCRIBE is acknowledged the worker publishes REPLICATE (then "
                             "its own POSITIONs).",
              .source = "synapse redis.py@v1.67.0 _send_subscribe; 1.67-redis/pubsub-transcript.txt",
              .run = redis_opening),
    REDIS_ROW(.id = "protocol/redis/message-kinds", .requirements = "RE-03", .level = RC_LEVEL_MUST,
              .requirement = "Each published message is one command line without LF; never NAME, "
                             "SERVER, replication PING or ERROR.",
              .source = "replication-protocol.md §6", .run = redis_message_kinds),
    REDIS_ROW(.id = "protocol/redis/others-commands", .requirements = "RE-05", .level = RC_LEVEL_MUST,
              .requirement = "Commands on the channel meant for other processes are handled or ignored "
                             "without error.",
              .source = "replication-protocol.md §6 (no direction check)", .run = redis_others_commands),
    REDIS_ROW(.id = "protocol/redis/unparsable-skipped", .requirements = "RE-06", .level = RC_LEVEL_MUST,
              .requirement = "A message that does not parse is logged and skipped; the worker stays "
                             "subscribed and publishes no ERROR.",
              .source = "synapse redis.py@v1.67.0 _parse_and_dispatch_message",
              .run = redis_unparsable_skipped),
    REDIS_ROW(.id = "protocol/redis/replicate-answered", .requirements = "RE-04",
              .level = RC_LEVEL_MUST,
              .requirement = "Every REPLICATE on the channel, the worker's own echo included, is "
                             "answered with its POSITIONs (POSITION caches <own> N N) within 1 s.",
              .source = "synapse redis.py@v1.67.0 _send_subscribe, handler.py on_REPLICATE (PR "
                        "#7475); 1.67-redis/pubsub-transcript.txt, fake-main.txt",
              .run = redis_replicate_answered),
    REDIS_ROW(.id = "protocol/redis/keepalive-ping", .requirements = "RE-08",
              .level = RC_LEVEL_SHOULD,
              .requirement = "Each redis connection of the worker sends a Redis-protocol PING at "
                             "least every 30 s (no gap over 35 s in a 36 s MONITOR window).",
              .source = "synapse redis.py@v1.67.0 SynapseRedisFactory._send_ping (#9218); "
                        "1.67-redis/monitor-2.txt (PINGs 30.0 s apart per client)",
              .tags = "slow", .run = redis_keepalive_ping),
    REDIS_ROW(.id = "protocol/redis/server-restart", .requirements = "RE-09", .level = RC_LEVEL_MUST,
              .requirement = "After losing redis the worker reconnects, subscribes again and "
                             "republishes REPLICATE.",
              .source = "reference/synapse-1.67-redis/monitor-2.txt", .tags = "slow",
              .run = redis_restart),
};
const size_t protocol_redis_test_count = sizeof protocol_redis_tests / sizeof protocol_redis_tests[0];
