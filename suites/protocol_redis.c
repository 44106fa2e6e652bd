/* protocol/redis: replication over Redis pub/sub (Synapse v1.13+, the only transport
 * from v1.67). Requirements RE-01..RE-03, RE-05, RE-06, RE-09
 * (shared/spec/requirements.md §8; replication-protocol.md §6). The test has its own
 * redis-server; what the SUT publishes shows in the ledger on the channel's
 * pseudo-connection. */
#include <hiredis/hiredis.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filetail.h"
#include "mock_redis.h"
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
    REDIS_ROW(.id = "protocol/redis/server-restart", .requirements = "RE-09", .level = RC_LEVEL_MUST,
              .requirement = "After losing redis the worker reconnects, subscribes again and "
                             "republishes REPLICATE.",
              .source = "reference/synapse-1.67-redis/monitor-2.txt", .tags = "slow",
              .run = redis_restart),
};
const size_t protocol_redis_test_count = sizeof protocol_redis_tests / sizeof protocol_redis_tests[0];
