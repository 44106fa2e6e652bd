/* protocol/framing: line framing, the line length limit, and what the worker does with
 * lines it must reject or accept. Requirements FR-01..FR-14
 * (shared/spec/requirements.md §3; facts in replication-protocol.md §1.1, §1.2, §2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filetail.h"
#include "proto.h"
#include "suite_util.h"

#define CLOSE_WINDOW_MS 1000

/* How long "the connection stays open" is watched: 5 s in the catalogue, scaled down
 * for SUTs with short keepalive constants (never below 1 s). */
static int stay_open_window(const rc_test_t *t) {
  int w = 4 * t->profile->timing.ping_interval_ms;
  if (w < 1000) w = 1000;
  return w > 5000 ? 5000 : w;
}

/* Sends `line` on a fresh connection and returns the SUT's close within the window,
 * or NULL after recording a failure. */
static const ledger_entry_t *expect_close_after(rc_test_t *t, int conn, const char *what,
                                                const char *line, size_t len, bool add_lf) {
  uint64_t seq = rc_now_seq(t);
  if (add_lf) mockhs_send_line(t->mock, conn, line, len);
  else mockhs_send_raw(t->mock, conn, line, len);
  const ledger_entry_t *close = NULL;
  if (!suite_sut_closed_within(t, conn, seq, CLOSE_WINDOW_MS, &close) ||
      close->side != LEDGER_SIDE_SUT) {
    char lines[1024];
    rc_fail(t, "the worker closes the connection within 1 s", "after %s the connection %s; the worker sent: %s",
            what, close == NULL ? "stayed open" : "was closed by the mock",
            suite_sut_lines(t, conn, lines, sizeof lines));
    return NULL;
  }
  return close;
}

/* Pads a caches row so the whole RDATA line is exactly `total` bytes. */
static char *caches_line_of_length(const rc_test_t *t, size_t total) {
  char head[128];
  suite_rdata(t, head, sizeof head, "caches", "999", "");
  const char *open = "[\"get_user_by_id\",[\"", *close = "\"],1]";
  size_t fixed = strlen(head) + strlen(open) + strlen(close);
  if (total < fixed) return NULL;
  char *line = malloc(total + 1);
  if (line == NULL) return NULL;
  size_t at = (size_t)sprintf(line, "%s%s", head, open);
  memset(line + at, 'a', total - fixed);
  at += total - fixed;
  strcpy(line + at, close);
  return line;
}

/* FR-03: a line of exactly L_max bytes is accepted. */
static void framing_max_line(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  char *line = caches_line_of_length(t, PROTO_MAX_LINE);
  if (line == NULL) {
    rc_error(t, "out of memory");
    return;
  }
  uint64_t seq = rc_now_seq(t);
  mockhs_send_line(t->mock, conn, line, PROTO_MAX_LINE);
  free(line);
  const ledger_entry_t *close = NULL;
  if (suite_sut_closed_within(t, conn, seq, stay_open_window(t), &close)) {
    char lines[1024];
    rc_fail(t, "a 16384-byte line is processed and the connection stays open",
            "the connection was closed by the %s; the worker sent: %s",
            ledger_side_name(close->side), suite_sut_lines(t, conn, lines, sizeof lines));
  }
}

/* FR-04: longer than L_max (terminated, or unterminated) closes the connection. */
static void framing_over_long_closes(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  char *line = caches_line_of_length(t, PROTO_MAX_LINE + 1);
  if (line == NULL) {
    rc_error(t, "out of memory");
    return;
  }
  const ledger_entry_t *close =
      expect_close_after(t, conn, "a 16385-byte line", line, PROTO_MAX_LINE + 1, true);
  free(line);
  if (close == NULL) return;
  uint64_t seq = rc_now_seq(t);
  conn = suite_wait_new_conn(t, close->seq, suite_reconnect_bound_ms(t) + 1000);
  if (conn < 0) {
    rc_fail(t, "RC-01: a reconnect after the close", "no new connection");
    return;
  }
  char *blob = malloc(20000);
  if (blob == NULL) {
    rc_error(t, "out of memory");
    return;
  }
  memset(blob, 'x', 20000);
  (void)seq;
  close = expect_close_after(t, conn, "20000 bytes without a LF", blob, 20000, false);
  free(blob);
}

/* FR-05: ... with ERROR Line length exceeded first. */
static void framing_over_long_error(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  char *line = caches_line_of_length(t, PROTO_MAX_LINE + 1);
  if (line == NULL) {
    rc_error(t, "out of memory");
    return;
  }
  const ledger_entry_t *close =
      expect_close_after(t, conn, "a 16385-byte line", line, PROTO_MAX_LINE + 1, true);
  free(line);
  if (close == NULL) return;
  const ledger_entry_t *last = suite_last_sut_line_before(t, conn, close->seq);
  if (last == NULL || strcmp(last->text, "ERROR Line length exceeded") != 0)
    rc_fail(t, "'ERROR Line length exceeded' as the last line before the close",
            last ? "last line was '%.200s'" : "%sno line before the close", last ? last->text : "");
}

/* One rejected line: what to send, and the ERROR prefix Synapse sends per dialect. */
typedef struct bad_line {
  const char *what;
  const char *modern;     /* the line in the modern dialect */
  const char *dialect2018;/* the line in the 2018 dialect */
  const char *prefix_modern;
  const char *prefix_2018;
} bad_line_t;

static const bad_line_t UNKNOWN_COMMAND[] = {
    {"an unknown command", "HELLO world", "HELLO world", "failed to parse line", "invalid command"},
};
static const bad_line_t WRONG_DIRECTION[] = {
    {"a client-only command from the main", "NAME fakemain", "NAME fakemain", "invalid command",
     "invalid command"},
};
static const bad_line_t BAD_ARGUMENTS[] = {
    {"RDATA with a row that is not JSON", "RDATA presence master 99 {not json",
     "RDATA presence 99 {not json", "failed to parse line", "failed to parse line for  'RDATA'"},
    {"RDATA with a token that is neither an integer nor 'batch'",
     "RDATA caches master x1 [\"f\",[],1]", "RDATA caches x1 [\"f\",[],1]", "failed to parse line",
     "failed to parse line for  'RDATA'"},
    {"POSITION with a token that is not an integer", "POSITION caches master 1 y",
     "POSITION caches y", "failed to parse line", "failed to parse line for  'POSITION'"},
    {"POSITION with the wrong number of fields", "POSITION caches 5", "POSITION caches master 1 5",
     "failed to parse line", "failed to parse line for  'POSITION'"},
};

/* Sends every line of the table, each on a fresh connection; each must close it, and
 * with check_prefix the last line before the close must be ERROR with the prefix. */
static void reject_each(rc_test_t *t, const bad_line_t *cases, size_t n, bool check_prefix) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  bool modern = t->profile->dialect == PROTO_DIALECT_MODERN;
  for (size_t i = 0; i < n; i++) {
    const char *line = modern ? cases[i].modern : cases[i].dialect2018;
    const ledger_entry_t *close = expect_close_after(t, conn, cases[i].what, line, strlen(line), true);
    if (close == NULL) return;
    if (check_prefix) {
      const char *prefix = modern ? cases[i].prefix_modern : cases[i].prefix_2018;
      const ledger_entry_t *last = suite_last_sut_line_before(t, conn, close->seq);
      char want[256];
      snprintf(want, sizeof want, "ERROR %s", prefix);
      if (last == NULL || strncmp(last->text, want, strlen(want)) != 0) {
        rc_fail(t, "an ERROR line starting like Synapse's before the close",
                "after %s ('%s') the last line was %s%.200s%s (expected it to start with '%s')",
                cases[i].what, line, last ? "'" : "", last ? last->text : "none", last ? "'" : "",
                want);
        return;
      }
    }
    if (i + 1 < n) {
      conn = suite_wait_new_conn(t, close->seq, suite_reconnect_bound_ms(t) + 1000);
      if (conn < 0) {
        rc_fail(t, "RC-01: a reconnect after the close", "no new connection after %s", cases[i].what);
        return;
      }
    }
  }
}

static void framing_unknown_command(rc_test_t *t) { reject_each(t, UNKNOWN_COMMAND, 1, false); }
static void framing_wrong_direction(rc_test_t *t) { reject_each(t, WRONG_DIRECTION, 1, false); }
static void framing_bad_arguments(rc_test_t *t) {
  reject_each(t, BAD_ARGUMENTS, sizeof BAD_ARGUMENTS / sizeof BAD_ARGUMENTS[0], false);
}

/* FR-09: the rejections of FR-06..FR-08 are explained with Synapse's ERROR prefixes. */
static void framing_error_prefixes(rc_test_t *t) {
  bad_line_t all[8];
  size_t n = 0;
  all[n++] = UNKNOWN_COMMAND[0];
  all[n++] = WRONG_DIRECTION[0];
  for (size_t i = 0; i < sizeof BAD_ARGUMENTS / sizeof BAD_ARGUMENTS[0]; i++) all[n++] = BAD_ARGUMENTS[i];
  reject_each(t, all, n, true);
}

/* Sends lines that must not close the connection, then watches it stay open. */
static void expect_stays_open(rc_test_t *t, int conn, const char *const *lines, size_t n,
                              const char *expected) {
  uint64_t seq = rc_now_seq(t);
  for (size_t i = 0; i < n; i++)
    if (!suite_send(t, conn, "%s", lines[i])) return;
  const ledger_entry_t *close = NULL;
  if (suite_sut_closed_within(t, conn, seq, stay_open_window(t), &close)) {
    char sent[1024] = "";
    for (size_t i = 0; i < n; i++) {
      size_t at = strlen(sent);
      snprintf(sent + at, sizeof sent - at, "%s'%.100s'", i ? ", " : "", lines[i]);
    }
    rc_fail(t, expected, "the connection was closed by the %s (%s) after the mock sent %s",
            ledger_side_name(close->side), ledger_close_how_name(close->how), sent);
  }
}

/* FR-11: RDATA/POSITION for streams the worker does not know are ignored. */
static void framing_unknown_stream(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  const char *modern[] = {"RDATA nosuchstream master 5 []", "POSITION nosuchstream master 1 1",
                          "POSITION user_signature master 3 3"};
  const char *old[] = {"RDATA nosuchstream 5 []", "POSITION nosuchstream 1"};
  bool m = t->profile->dialect == PROTO_DIALECT_MODERN;
  expect_stays_open(t, conn, m ? modern : old, m ? 3 : 2,
                    "RDATA and POSITION for unknown streams are ignored; the connection stays open");
  if (t->decided) return;
  int64_t pos;
  suite_probe_position(t, &conn, "typing", &pos);
}

/* FR-12: every main-to-worker command of the dialect is accepted. */
static void framing_server_commands(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  char server[300];
  snprintf(server, sizeof server, "SERVER %s", t->server_name);
  const profile_t *p = t->profile;
  if (p->dialect == PROTO_DIALECT_2018) {
    const char *lines[] = {server, "PING 12345", "POSITION typing 0",
                           "RDATA caches 999 [\"get_user_by_id\", [\"@x:hs\"], 1]", "SYNC abc"};
    expect_stays_open(t, conn, lines, 5, "every main-to-worker command is accepted");
    return;
  }
  const char *lines[6] = {server, "PING 12345", "POSITION typing master 0 0",
                          "RDATA typing master 1 [\"!r:hs\",[]]"};
  size_t n = 4;
  /* REMOTE_SERVER_UP exists since v1.9, LOCK_RELEASED since v1.90. */
  if (p->era_major > 1 || p->era_minor >= 9) lines[n++] = "REMOTE_SERVER_UP remote.example.org";
  if (p->era_major > 1 || p->era_minor >= 90) lines[n++] = "LOCK_RELEASED [\"master\",\"lock\",\"key\"]";
  expect_stays_open(t, conn, lines, n, "every main-to-worker command is accepted");
}

/* FR-13: blank lines are ignored. */
static void framing_blank_lines(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  const char *lines[] = {"", "   "};
  expect_stays_open(t, conn, lines, 2, "blank lines are ignored; the connection stays open");
}

/* FR-14: an inbound ERROR is logged at ERROR level with its text. */
static void framing_error_logged(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  const char *text = "replcheck says hello 7f3a";
  if (!suite_send(t, conn, "ERROR %s", text)) return;
  rc_observe(t, 300);
  char *log = filetail_last_lines(t->log_file, 200);
  bool found = false;
  for (char *line = log; line != NULL && *line; ) {
    char *end = strchr(line, '\n');
    if (end) *end = '\0';
    if (strstr(line, text) != NULL && strstr(line, " - ERROR - ") != NULL) found = true;
    line = end ? end + 1 : NULL;
  }
  free(log);
  if (!found)
    rc_fail(t, "a log line at ERROR level containing the remote error text",
            "no ' - ERROR - ' line containing '%s' in %s", text, t->log_file);
}

/* FR-01: the same lines delivered in 1-byte writes (including a split inside a
 * multi-byte UTF-8 character) are processed exactly like whole lines. */
static void framing_split_writes(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  char line[256];
  suite_rdata(t, line, sizeof line, "typing", "5", "[\"!r\xc3\xa9:hs\",[\"@\xc3\xa9:hs\"]]");
  strcat(line, "\n");
  for (size_t i = 0; line[i]; i++) {
    if (mockhs_send_raw(t->mock, conn, line + i, 1) != 0) {
      rc_fail(t, "the connection stays open", "closed while the line was being written");
      return;
    }
    rc_observe(t, 1); /* one byte per TCP segment */
  }
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  if (pos != 5)
    rc_fail(t, "the row written one byte at a time is applied (typing position 5)",
            "the worker's typing position is %lld", (long long)pos);
}

/* FR-10: after deciding to close, nothing more of that connection is processed, not
 * even lines that came in the same segment. */
static void framing_nothing_after_close(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  int64_t before;
  if (!suite_probe_position(t, &conn, "typing", &before)) return;
  int64_t target = (t->profile->dialect == PROTO_DIALECT_MODERN ? t->probe_floor : before) + 7;
  char rdata[256], token[32];
  snprintf(token, sizeof token, "%lld", (long long)target);
  suite_rdata(t, rdata, sizeof rdata, "typing", token, "[\"!r:hs\",[]]");
  char both[400];
  int n = snprintf(both, sizeof both, "NAME fakemain\n%s\n", rdata);
  uint64_t seq = rc_now_seq(t);
  mockhs_send_raw(t->mock, conn, both, (size_t)n); /* one write: one segment */
  const ledger_entry_t *close = NULL;
  if (!suite_sut_closed_within(t, conn, seq, CLOSE_WINDOW_MS, &close)) {
    rc_fail(t, "FR-07: the worker closes after 'NAME fakemain'", "the connection stayed open");
    return;
  }
  conn = suite_wait_new_conn(t, close->seq, suite_reconnect_bound_ms(t) + 1000);
  if (conn < 0) {
    rc_fail(t, "RC-01: a reconnect", "none");
    return;
  }
  int64_t after;
  if (!suite_probe_position(t, &conn, "typing", &after)) return;
  if (after == target)
    rc_fail(t, "the RDATA that followed the rejected line in the same segment is not applied",
            "the worker's typing position is %lld: it processed it", (long long)after);
}

/* FR-15: any valid JSON style in rows, and exact 64-bit integers. */
static void framing_json_styles(rc_test_t *t) {
  int conn = suite_start_connected(t);
  if (conn < 0) return;
  int64_t start;
  if (!suite_probe_position(t, &conn, "typing", &start)) return;
  if (t->profile->dialect == PROTO_DIALECT_MODERN) start = t->probe_floor;
  /* 2^53 + 1 is where doubles stop being exact. */
  const int64_t big = 9007199254740993LL;
  const char *rows[] = {"[\"!r:hs\",[\"@x:hs\"]]", "[ \"!r:hs\" , [ \"@x:hs\" ] ]",
                        "[\"!r\\u00e9:hs\",[\"@\\u0078:hs\"]]", "[\"!r\xc3\xa9:hs\",[]]",
                        "\t[\"!r:hs\",\n[]]"};
  size_t n = sizeof rows / sizeof rows[0];
  for (size_t i = 0; i < n; i++) {
    char line[512], token[32];
    /* The tab/newline row must not contain a raw LF on the wire: JSON allows only the
     * whitespace inside, so use a space there instead. */
    char row[128];
    snprintf(row, sizeof row, "%s", rows[i]);
    for (char *p = row; *p; p++)
      if (*p == '\n') *p = ' ';
    snprintf(token, sizeof token, "%lld", (long long)(i + 1 == n ? big : start + 1 + (int64_t)i));
    suite_rdata(t, line, sizeof line, "typing", token, row);
    if (!suite_send(t, conn, "%s", line)) return;
  }
  rc_observe(t, 100);
  int64_t pos;
  if (!suite_probe_position(t, &conn, "typing", &pos)) return;
  if (pos != big)
    rc_fail(t, "rows in every JSON style applied, the last at token 9007199254740993",
            "the worker's typing position is %lld", (long long)pos);
}

#define FRAMING_ROW(...) RC_TEST_ROW(.transports = RC_TRANSPORT_TCP, __VA_ARGS__)

const rc_test_def_t protocol_framing_tests[] = {
    FRAMING_ROW(.id = "protocol/framing/split-writes", .requirements = "FR-01", .level = RC_LEVEL_MUST,
                .requirement = "Lines are delimited by a single LF regardless of TCP segmentation.",
                .source = "Twisted LineOnlyReceiver (delimiter b\"\\n\"); replication-protocol.md §1.1",
                .dialects = RC_DIALECT_ALL, .run = framing_split_writes),
    FRAMING_ROW(.id = "protocol/framing/max-line-accepted", .requirements = "FR-03", .level = RC_LEVEL_MUST,
                .requirement = "The worker accepts and processes inbound lines of up to 16384 bytes.",
                .source = "Twisted LineOnlyReceiver MAX_LENGTH = 16384", .dialects = RC_DIALECT_ALL,
                .run = framing_max_line),
    FRAMING_ROW(.id = "protocol/framing/over-long-closes", .requirements = "FR-04", .level = RC_LEVEL_MUST,
                .requirement = "An inbound line longer than 16384 bytes, terminated or not, makes the "
                               "worker close the connection.",
                .source = "Twisted basic.py LineOnlyReceiver.dataReceived", .dialects = RC_DIALECT_ALL,
                .run = framing_over_long_closes),
    FRAMING_ROW(.id = "protocol/framing/over-long-error", .requirements = "FR-05", .level = RC_LEVEL_MUST,
                .requirement = "The close for an over-long line is preceded by ERROR Line length exceeded.",
                .source = "synapse PR #4748 (v0.99.2); reference/synapse-1.66/main-long-line.txt",
                .dialects = RC_DIALECT_ALL, .run = framing_over_long_error),
    FRAMING_ROW(.id = "protocol/framing/unknown-command-closes", .requirements = "FR-06", .level = RC_LEVEL_MUST,
                .requirement = "An inbound line with an unknown command name makes the worker close the connection.",
                .source = "reference/synapse-1.66/fake-main.txt c2", .dialects = RC_DIALECT_ALL,
                .run = framing_unknown_command),
    FRAMING_ROW(.id = "protocol/framing/wrong-direction-closes", .requirements = "FR-07", .level = RC_LEVEL_MUST,
                .requirement = "A known command not valid from main to worker makes the worker close the connection.",
                .source = "reference/synapse-1.66/fake-main.txt c5", .dialects = RC_DIALECT_ALL,
                .run = framing_wrong_direction),
    FRAMING_ROW(.id = "protocol/framing/bad-arguments-close", .requirements = "FR-08", .level = RC_LEVEL_MUST,
                .requirement = "A server command whose arguments do not parse makes the worker close the connection.",
                .source = "reference/synapse-1.66/fake-main.txt c4", .dialects = RC_DIALECT_ALL,
                .tags = "slow", .run = framing_bad_arguments),
    FRAMING_ROW(.id = "protocol/framing/error-prefixes", .requirements = "FR-09", .level = RC_LEVEL_SHOULD,
                .requirement = "The closes of FR-06..FR-08 are preceded by an ERROR line starting like Synapse's.",
                .source = "synapse protocol.py@v0.33.3 and @v1.66.0 lineReceived; fake-main.txt c2, c4, c5",
                .dialects = RC_DIALECT_ALL, .tags = "slow", .run = framing_error_prefixes),
    FRAMING_ROW(.id = "protocol/framing/nothing-after-close", .requirements = "FR-10",
                .level = RC_LEVEL_SHOULD,
                .requirement = "Once the worker has decided to close, it processes no further inbound "
                               "line of that connection, even one already received.",
                .source = "Twisted LineOnlyReceiver.dataReceived (transport.disconnecting check)",
                .dialects = RC_DIALECT_ALL, .run = framing_nothing_after_close),
    FRAMING_ROW(.id = "protocol/framing/json-styles", .requirements = "FR-15", .level = RC_LEVEL_MUST,
                .requirement = "The worker accepts any valid JSON in rows (separators, whitespace, "
                               "escapes, raw UTF-8) and parses integer tokens up to 2^63-1 exactly.",
                .source = "replication-protocol.md §1.1 JSON style; 1.67-redis/fake-main.txt",
                .dialects = RC_DIALECT_ALL, .run = framing_json_styles),
    FRAMING_ROW(.id = "protocol/framing/unknown-stream-ignored", .requirements = "FR-11", .level = RC_LEVEL_MUST,
                .requirement = "RDATA or POSITION naming a stream the worker does not consume is ignored; "
                               "the connection stays open and later lines are processed.",
                .source = "synapse handler.py@v1.66.0 _add_command_to_stream_queue; fake-main.txt",
                .dialects = RC_DIALECT_ALL, .run = framing_unknown_stream),
    FRAMING_ROW(.id = "protocol/framing/server-commands-accepted", .requirements = "FR-12", .level = RC_LEVEL_MUST,
                .requirement = "The worker accepts every main-to-worker command of its dialect and era.",
                .source = "replication-protocol.md §2.1 allowed sets", .dialects = RC_DIALECT_ALL,
                .run = framing_server_commands),
    FRAMING_ROW(.id = "protocol/framing/blank-lines-ignored", .requirements = "FR-13", .level = RC_LEVEL_SHOULD,
                .requirement = "Blank inbound lines are ignored.",
                .source = "replication-protocol.md §1.2 step 1 (PR #14449)", .dialects = RC_DIALECT_ALL,
                .run = framing_blank_lines),
    FRAMING_ROW(.id = "protocol/framing/error-logged", .requirements = "FR-14", .level = RC_LEVEL_SHOULD,
                .requirement = "An inbound ERROR is logged at ERROR level with its text.",
                .source = "synapse protocol.py on_ERROR; reference/synapse-1.66/fake-main.txt c1",
                .dialects = RC_DIALECT_ALL, .run = framing_error_logged),
};
const size_t protocol_framing_test_count =
    sizeof protocol_framing_tests / sizeof protocol_framing_tests[0];
