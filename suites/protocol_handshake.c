/* protocol/handshake: what the worker sends when a replication connection opens, and
 * how it treats a main with the wrong server name.
 * Requirements HS-01..HS-07 (shared/spec/requirements.md §1). */
#include <stdio.h>
#include <string.h>

#include "suite_util.h"

/* The opening lines are due within 1 s of the later of connect and SERVER. */
#define OPENING_WINDOW_MS 1000

/* HS-01: a PING without waiting for any reply. */
static void handshake_ping(rc_test_t *t) {
  if (!rc_start(t)) return;
  int conn;
  const ledger_entry_t *server = suite_opening_server_line(t, &conn);
  if (server == NULL) return;
  int64_t origin = suite_opening_origin_ns(t, conn, server);
  rc_match_t ping = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_PING};
  const ledger_entry_t *e = rc_wait(t, 1, &ping, suite_ms_left(origin, OPENING_WINDOW_MS));
  if (e == NULL || e->mono_ns > origin + OPENING_WINDOW_MS * 1000000LL) {
    char lines[1024];
    rc_fail(t, "a PING line from the worker within 1 s of the connection and SERVER",
            "no PING within 1 s; the worker sent: %s", suite_sut_lines(t, conn, lines, sizeof lines));
  }
}

/* HS-02: NAME comes first. */
static void handshake_name_first(rc_test_t *t) {
  if (!rc_start(t)) return;
  int conn;
  const ledger_entry_t *server = suite_opening_server_line(t, &conn);
  if (server == NULL) return;
  int64_t origin = suite_opening_origin_ns(t, conn, server);
  rc_match_t any = {.conn_id = conn, .side = LEDGER_SIDE_SUT};
  const ledger_entry_t *first = rc_wait(t, 1, &any, suite_ms_left(origin, OPENING_WINDOW_MS));
  if (first == NULL) {
    rc_fail(t, "'NAME <name>' as the worker's first line", "the worker sent nothing within 1 s");
    return;
  }
  proto_command_t cmd;
  if (!rc_parse_sut_line(t, first, &cmd) || cmd.kind != PROTO_CMD_NAME || cmd.text.len == 0)
    rc_fail(t, "'NAME <name>' as the worker's first line", "first line was '%.200s'", first->text);
}

/* HS-03: modern REPLICATE with empty data. */
static void handshake_replicate_modern(rc_test_t *t) {
  if (!rc_start(t)) return;
  int conn;
  const ledger_entry_t *server = suite_opening_server_line(t, &conn);
  if (server == NULL) return;
  int64_t origin = suite_opening_origin_ns(t, conn, server);
  rc_match_t rep = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_REPLICATE};
  const ledger_entry_t *e = rc_wait(t, 1, &rep, suite_ms_left(origin, OPENING_WINDOW_MS));
  char lines[1024];
  if (e == NULL) {
    rc_fail(t, "'REPLICATE ' (or 'REPLICATE') within 1 s of the opening",
            "no REPLICATE; the worker sent: %s", suite_sut_lines(t, conn, lines, sizeof lines));
    return;
  }
  proto_command_t cmd;
  if (!rc_parse_sut_line(t, e, &cmd) || cmd.data.len != 0)
    rc_fail(t, "'REPLICATE ' with empty data (modern dialect)", "sent '%.200s'", e->text);
}

/* HS-04: exactly one REPLICATE on a connection. */
static void handshake_replicate_once(rc_test_t *t) {
  if (!rc_start(t)) return;
  int conn;
  if (suite_opening_server_line(t, &conn) == NULL) return;
  /* Synapse's own check spans 60 s; twelve keepalive periods scale it to the profile. */
  int window = 12 * t->profile->timing.ping_interval_ms;
  if (window < 2000) window = 2000;
  rc_observe(t, window);
  rc_match_t rep = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .command = PROTO_CMD_REPLICATE};
  int count = 0;
  for (uint64_t seq = 1;; seq++) {
    const ledger_entry_t *e = rc_wait(t, seq, &rep, 0);
    if (e == NULL) break;
    count++;
    seq = e->seq;
  }
  if (count != 1)
    rc_fail(t, "exactly one REPLICATE on the connection",
            "%d REPLICATE lines in %d ms of an idle connection", count, window);
}

static bool stream_offered(const rc_test_t *t, proto_slice_t name) {
  for (size_t i = 0; i < t->mock_config.stream_count; i++)
    if (proto_slice_eq(name, t->mock_config.streams[i].name)) return true;
  return false;
}

/* HS-05: 2018 REPLICATE <stream> <token>, one per stream, known streams, tokens >= 0. */
static void handshake_replicate_2018(rc_test_t *t) {
  if (!rc_start(t)) return;
  int conn;
  const ledger_entry_t *server = suite_opening_server_line(t, &conn);
  if (server == NULL) return;
  int64_t origin = suite_opening_origin_ns(t, conn, server);
  rc_observe(t, suite_ms_left(origin, OPENING_WINDOW_MS));
  rc_match_t rep = {.conn_id = conn, .side = LEDGER_SIDE_SUT, .prefix = "REPLICATE"};
  char seen[64][128];
  int count = 0;
  for (uint64_t seq = 1;; seq++) {
    const ledger_entry_t *e = rc_wait(t, seq, &rep, 0);
    if (e == NULL || e->mono_ns > origin + OPENING_WINDOW_MS * 1000000LL) break;
    seq = e->seq;
    proto_command_t cmd;
    if (!rc_parse_sut_line(t, e, &cmd)) {
      rc_fail(t, "'REPLICATE <stream> <token>' lines (2018 grammar)", "'%.200s' does not parse",
              e->text);
      return;
    }
    if (cmd.token_is_now || cmd.token < 0) {
      rc_fail(t, "a non-negative decimal token: the worker's current position",
              "'%.200s'", e->text);
      return;
    }
    if (!stream_offered(t, cmd.stream)) {
      rc_fail(t, "stream names the main offers", "'%.200s' names a stream the main does not offer",
              e->text);
      return;
    }
    char name[128];
    proto_slice_copy(cmd.stream, name, sizeof name);
    for (int i = 0; i < count; i++) {
      if (strcmp(seen[i], name) == 0) {
        rc_fail(t, "each stream at most once per connection", "stream '%s' requested twice", name);
        return;
      }
    }
    if (count < 64) snprintf(seen[count++], sizeof seen[0], "%s", name);
  }
  if (count == 0) {
    char lines[1024];
    rc_fail(t, "one 'REPLICATE <stream> <token>' per consumed stream within 1 s",
            "none; the worker sent: %s", suite_sut_lines(t, conn, lines, sizeof lines));
  }
}

#define WRONG_SERVER_NAME "wrong.example"
#define CLOSE_WINDOW_MS 1000

/* Starts against a main announcing another server name; returns the SERVER line. */
static const ledger_entry_t *start_with_wrong_server(rc_test_t *t, int *conn) {
  t->mock_config.server_name = WRONG_SERVER_NAME;
  if (!rc_start(t)) return NULL;
  return suite_opening_server_line(t, conn);
}

/* HS-06: the worker closes a connection whose SERVER name is not its own. */
static void handshake_wrong_server_closes(rc_test_t *t) {
  int conn;
  const ledger_entry_t *server = start_with_wrong_server(t, &conn);
  if (server == NULL) return;
  const ledger_entry_t *close = suite_wait_sut_close(t, conn, server->seq, CLOSE_WINDOW_MS + 200);
  if (close == NULL || close->side != LEDGER_SIDE_SUT ||
      rc_entry_gap_ms(server, close) > CLOSE_WINDOW_MS) {
    char lines[1024];
    rc_fail(t, "the worker closes the connection within 1 s of 'SERVER " WRONG_SERVER_NAME "'",
            close == NULL ? "the connection stayed open; the worker sent: %s"
                          : "closed late or by the mock; the worker sent: %s",
            suite_sut_lines(t, conn, lines, sizeof lines));
  }
}

/* HS-07: ... and says why first. */
static void handshake_wrong_server_error(rc_test_t *t) {
  int conn;
  const ledger_entry_t *server = start_with_wrong_server(t, &conn);
  if (server == NULL) return;
  const ledger_entry_t *close = suite_wait_sut_close(t, conn, server->seq, CLOSE_WINDOW_MS + 200);
  if (close == NULL || close->side != LEDGER_SIDE_SUT) {
    rc_fail(t, "'ERROR Wrong remote' then a close", "the worker did not close the connection");
    return;
  }
  const ledger_entry_t *last = suite_last_sut_line_before(t, conn, close->seq);
  if (last == NULL || strcmp(last->text, "ERROR Wrong remote") != 0)
    rc_fail(t, "'ERROR Wrong remote' as the last line before the close",
            last ? "last line was '%.200s'" : "%sno line before the close", last ? last->text : "");
}

const rc_test_def_t protocol_handshake_tests[] = {
    RC_TEST_ROW(.id = "protocol/handshake/ping-on-connect", .requirements = "HS-01",
                .level = RC_LEVEL_MUST,
                .requirement = "On every replication connection the worker sends PING <data> "
                               "without waiting for any reply.",
                .source = "synapse protocol.py@v1.66.0 connectionMade; reference/synapse-1.66/fake-main.txt",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .run = handshake_ping),
    RC_TEST_ROW(.id = "protocol/handshake/name-first", .requirements = "HS-02",
                .level = RC_LEVEL_SHOULD,
                .requirement = "The worker's first line is NAME <name>.",
                .source = "synapse protocol.py@v0.33.3 connectionMade; reference/synapse-1.66/fake-main.txt",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .run = handshake_name_first),
    RC_TEST_ROW(.id = "protocol/handshake/replicate-modern", .requirements = "HS-03",
                .level = RC_LEVEL_MUST,
                .requirement = "The worker sends a REPLICATE with empty data.",
                .source = "synapse protocol.py@v1.66.0 ClientReplicationStreamProtocol; PR #7024",
                .dialects = RC_DIALECT_MODERN, .transports = RC_TRANSPORT_TCP,
                .run = handshake_replicate_modern),
    RC_TEST_ROW(.id = "protocol/handshake/replicate-once", .requirements = "HS-04",
                .level = RC_LEVEL_SHOULD,
                .requirement = "The worker sends exactly one REPLICATE per connection.",
                .source = "synapse handler.py@v1.66.0 send_positions_to_connection",
                .dialects = RC_DIALECT_MODERN, .transports = RC_TRANSPORT_TCP,
                .tags = "slow", .run = handshake_replicate_once),
    RC_TEST_ROW(.id = "protocol/handshake/replicate-2018", .requirements = "HS-05",
                .level = RC_LEVEL_MUST,
                .requirement = "The worker sends one REPLICATE <stream> <token> per consumed "
                               "stream, each at most once, with a stream the main offers and a "
                               "non-negative token.",
                .source = "synapse client.py@v0.33.3 get_streams_to_replicate; reference/synapse-1.12/real-pair.txt",
                .dialects = RC_DIALECT_2018, .transports = RC_TRANSPORT_TCP,
                .run = handshake_replicate_2018),
    RC_TEST_ROW(.id = "protocol/handshake/wrong-server-closes", .requirements = "HS-06",
                .level = RC_LEVEL_MUST,
                .requirement = "When SERVER <name> differs from the worker's server name, the "
                               "worker closes the connection.",
                .source = "synapse protocol.py@v0.33.3 on_SERVER; reference/synapse-1.66/fake-main.txt c3",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .run = handshake_wrong_server_closes),
    RC_TEST_ROW(.id = "protocol/handshake/wrong-server-error", .requirements = "HS-07",
                .level = RC_LEVEL_SHOULD,
                .requirement = "The close for a wrong server name is preceded by ERROR Wrong remote.",
                .source = "synapse protocol.py@v0.33.3 on_SERVER; reference/synapse-1.66/fake-main.txt c3",
                .dialects = RC_DIALECT_ALL, .transports = RC_TRANSPORT_TCP,
                .run = handshake_wrong_server_error),
};
const size_t protocol_handshake_test_count =
    sizeof protocol_handshake_tests / sizeof protocol_handshake_tests[0];
