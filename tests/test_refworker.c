/* Integration tests of refworker (reference/): the real built binary against a plain
 * listening socket in this file playing the main process, in both wire dialects.
 *
 * Each test names the requirement it checks (shared/spec/requirements.md) and the
 * upstream behaviour it encodes; failures print Requirement / Expected / Actual.
 * Timing constants are short (ping 200 ms, timeout 1000 ms, reconnect 100..1000 ms); every
 * wait has a deadline. REFWORKER_TEST_MARGIN_MS (default 400) widens the scheduling
 * margin, and REFWORKER_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99") runs the
 * worker under a wrapper; both are for hand runs under slow tools. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"
#include "rc_clock.h"
#include "test_support.h"

#define PING_MS 200
#define TIMEOUT_MS 1000
#define RECONNECT_INITIAL_MS 100
#define RECONNECT_MAX_MS 1000
#define SERVER_NAME "test.local"
#define INSTANCE "worker1"
#define STR_(x) #x
#define STR(x) STR_(x)
/* RC-01's verdict window: 1.36 * D_max (max delay plus 3 sigma of jitter) + 0.5 s. */
#define RECONNECT_BOUND_MS (RECONNECT_MAX_MS * 136 / 100 + 500)

/* A NULL-ended list of strings, for --stream values and expected REPLICATE lines. */
#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

static const proto_dialect_t dialects[2] = {PROTO_DIALECT_2018, PROTO_DIALECT_MODERN};

/* ---- per-test state (one test per process in CK_FORK mode) ------------------------ */

typedef struct peer {
  int fd;
  char buf[4 * PROTO_MAX_LINE];
  size_t len;
} peer_t;

static proto_dialect_t dialect;
static char *temp_dir;
static char *log_path;
static int listen_fd = -1;
static int listen_port;
static peer_t peer = {.fd = -1};
static pid_t child = -1;
static int64_t margin_ms;
static char line[PROTO_MAX_LINE + 2]; /* the last line read */

static void child_kill(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  child = -1;
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_msg(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "bind 127.0.0.1:%d: %s", port,
                strerror(errno));
  ck_assert_int_eq(listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
  listen_port = ntohs(addr.sin_port);
  return fd;
}

static void setup(void) {
  const char *margin = getenv("REFWORKER_TEST_MARGIN_MS");
  margin_ms = margin != NULL && atoi(margin) > 0 ? atoi(margin) : 400;
  temp_dir = test_make_temp_dir("test_refworker");
  ck_assert_ptr_nonnull(temp_dir);
  log_path = test_path(temp_dir, "worker.log");
  listen_fd = listen_on(0);
  peer.fd = -1;
  peer.len = 0;
}

static int worker_wait(int64_t deadline);

static void teardown(void) {
  /* Every test ends with an orderly shutdown, so sanitizers and valgrind (through
   * REFWORKER_TEST_WRAPPER and its --error-exitcode) judge each run by its exit status. */
  int status = 0;
  bool stopped = true;
  if (child > 0) {
    kill(child, SIGTERM);
    status = worker_wait(rc_clock_mono_ms() + 5000 + 10 * margin_ms);
    stopped = status != -1;
    child_kill();
  }
  if (peer.fd >= 0) close(peer.fd);
  peer.fd = -1;
  if (listen_fd >= 0) close(listen_fd);
  listen_fd = -1;
  test_remove_tree(temp_dir);
  free(temp_dir);
  free(log_path);
  temp_dir = log_path = NULL;
  ck_assert_msg(stopped && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "CL-05 (orderly exit on SIGTERM at the end of the test)\n  Expected: exit "
                "status 0\n  Actual: %s %d",
                !stopped            ? "no exit within the deadline, status"
                : WIFEXITED(status) ? "exit"
                                    : "signal",
                !stopped            ? -1
                : WIFEXITED(status) ? WEXITSTATUS(status)
                                    : WTERMSIG(status));
}

/* ---- the worker process --------------------------------------------------------- */

/* Starts refworker in `dialect` with the short constants and the given --stream values
 * (NULL-ended; NULL for the worker's default set). */
static void worker_start(const char *const *streams) {
  char port[16];
  snprintf(port, sizeof port, "%d", listen_port);
  char *bin = test_path(test_env("REPLCHECK_BIN_DIR"), "refworker");
  const char *argv[64];
  size_t argc = 0;
  /* clang-format off */
  const char *fixed[] = {bin,
      "--host", "127.0.0.1",                "--port", port,
      "--server-name", SERVER_NAME,         "--dialect", proto_dialect_name(dialect),
      "--log", log_path,                    "--instance-name", INSTANCE,
      "--ping-interval-ms", STR(PING_MS),   "--ping-timeout-ms", STR(TIMEOUT_MS),
      "--reconnect-initial-ms", STR(RECONNECT_INITIAL_MS),
      "--reconnect-max-ms", STR(RECONNECT_MAX_MS)};
  /* clang-format on */
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[argc++] = fixed[i];
  for (size_t i = 0; streams != NULL && streams[i] != NULL && argc < 60; i++) {
    argv[argc++] = "--stream";
    argv[argc++] = streams[i];
  }
  argv[argc] = NULL;

  child = test_spawn_wrapped(argv);
  free(bin);
}

/* Waits for the worker to exit; returns its wait status, or -1 at the deadline. */
static int worker_wait(int64_t deadline) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) {
      child = -1;
      return status;
    }
    if (rc_clock_mono_ms() >= deadline) return -1;
    poll(NULL, 0, 10);
  }
}

/* ---- the fake main's side of the socket ----------------------------------------- */

static int poll_ms(int64_t deadline) {
  int64_t left = deadline - rc_clock_mono_ms();
  return left < 0 ? 0 : (int)left;
}

/* Accepts the worker's next connection; false at the deadline. */
static bool peer_accept(int64_t deadline) {
  struct pollfd p = {.fd = listen_fd, .events = POLLIN};
  if (poll(&p, 1, poll_ms(deadline)) <= 0) return false;
  if (peer.fd >= 0) close(peer.fd);
  peer.fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  peer.len = 0;
  return peer.fd >= 0;
}

static void peer_close(void) {
  if (peer.fd >= 0) close(peer.fd);
  peer.fd = -1;
  peer.len = 0;
}

enum { READ_LINE = 1, READ_EOF = 0, READ_TIMEOUT = -1, READ_ERROR = -2 };

/* Reads the worker's next line into `line` (without LF). Every line must be a valid
 * worker->main command of the dialect (FR-02, checked passively on every read). */
static int peer_read_line(int64_t deadline) {
  for (;;) {
    char *lf = memchr(peer.buf, '\n', peer.len);
    if (lf != NULL) {
      size_t n = (size_t)(lf - peer.buf);
      ck_assert_msg(n <= PROTO_MAX_LINE, "FR-02: worker line of %zu bytes exceeds %d", n,
                    PROTO_MAX_LINE);
      memcpy(line, peer.buf, n);
      line[n] = '\0';
      memmove(peer.buf, lf + 1, peer.len - n - 1);
      peer.len -= n + 1;
      proto_command_t cmd;
      proto_error_t err;
      ck_assert_msg(proto_parse_line(dialect, PROTO_SENDER_CLIENT, line, n, &cmd, &err) == PROTO_OK,
                    "FR-02 (every worker line parses under its dialect's client grammar)\n"
                    "  Expected: a valid %s worker command\n  Actual: '%s' (%s)",
                    proto_dialect_name(dialect), line, err.message);
      return READ_LINE;
    }
    ck_assert_msg(peer.len < sizeof peer.buf, "FR-02: worker sent %zu bytes without a LF",
                  peer.len);
    struct pollfd p = {.fd = peer.fd, .events = POLLIN};
    if (poll(&p, 1, poll_ms(deadline)) <= 0) return READ_TIMEOUT;
    ssize_t got = recv(peer.fd, peer.buf + peer.len, sizeof peer.buf - peer.len, 0);
    if (got < 0) return errno == EINTR ? peer_read_line(deadline) : READ_ERROR;
    if (got == 0) {
      ck_assert_msg(peer.len == 0, "FR-02: worker closed after an unterminated line '%.*s'",
                    (int)peer.len, peer.buf);
      return READ_EOF;
    }
    peer.len += (size_t)got;
  }
}

static const char *read_result_name(int r) {
  return r == READ_EOF       ? "EOF"
         : r == READ_TIMEOUT ? "nothing before the deadline"
                             : "a read error (RST?)";
}

/* The worker closes with a FIN: recv returns 0, no line before it, no RST (CL-01). */
static void peer_expect_eof(int64_t deadline, const char *requirement) {
  int r = peer_read_line(deadline);
  ck_assert_msg(r == READ_EOF, "%s\n  Expected: EOF (FIN) from the worker\n  Actual: %s%s%s",
                requirement, r == READ_LINE ? "the line '" : read_result_name(r),
                r == READ_LINE ? line : "", r == READ_LINE ? "'" : "");
  peer_close();
}

/* Only PINGs until the deadline: no ERROR, no other line, no close. */
static int peer_expect_only_pings(int64_t deadline, const char *requirement) {
  int pings = 0;
  for (;;) {
    int r = peer_read_line(deadline);
    if (r == READ_TIMEOUT) return pings;
    ck_assert_msg(r == READ_LINE && strncmp(line, "PING ", 5) == 0,
                  "%s\n  Expected: only PINGs, connection kept open\n  Actual: %s", requirement,
                  r == READ_LINE ? line : read_result_name(r));
    pings++;
  }
}

/* The next line (PINGs skipped when skip_pings) is `expected`, or starts with it when
 * prefix is set. */
static void peer_expect_line(int64_t deadline, bool skip_pings, const char *expected, bool prefix,
                             const char *requirement) {
  int r;
  do r = peer_read_line(deadline);
  while (skip_pings && r == READ_LINE && strncmp(line, "PING ", 5) == 0);
  bool ok = r == READ_LINE &&
            (prefix ? strncmp(line, expected, strlen(expected)) == 0 : strcmp(line, expected) == 0);
  ck_assert_msg(ok, "%s\n  Expected: '%s%s'\n  Actual: %s%s%s", requirement, expected,
                prefix ? "..." : "", r == READ_LINE ? "'" : "",
                r == READ_LINE ? line : read_result_name(r), r == READ_LINE ? "'" : "");
}

/* An ERROR line (exact text, or prefix) within the margin, then the close (CL-01). */
static void peer_expect_error_then_eof(const char *expected, bool prefix, const char *requirement) {
  peer_expect_line(rc_clock_mono_ms() + margin_ms, true, expected, prefix, requirement);
  peer_expect_eof(rc_clock_mono_ms() + margin_ms, "CL-01 (close with FIN right after the ERROR)");
}

static void peer_send(const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(peer.fd, data, len, MSG_NOSIGNAL);
    ck_assert_msg(n > 0, "sending to the worker: %s", strerror(errno));
    data += n;
    len -= (size_t)n;
  }
}

static void peer_send_str(const char *text) {
  peer_send(text, strlen(text));
}

/* Accepts a connection and checks the opening (HS-01, HS-02, HS-03/HS-05, RC-04): NAME,
 * PING, then modern `REPLICATE ` or one 2018 `REPLICATE <stream> <token>` per entry of
 * `replicate` (NULL-ended, in --stream order), all within the margin. Sends nothing. */
static void peer_accept_opening(int64_t accept_deadline, const char *const *replicate) {
  ck_assert_msg(peer_accept(accept_deadline),
                "RC-01 (the worker connects)\n  Expected: a connection\n  Actual: none");
  int64_t deadline = rc_clock_mono_ms() + margin_ms;
  peer_expect_line(deadline, false, "NAME " INSTANCE, false, "HS-02 (first line is NAME <name>)");
  peer_expect_line(deadline, false, "PING ", true, "HS-01 (PING at once, not waiting for SERVER)");
  if (dialect == PROTO_DIALECT_MODERN) {
    peer_expect_line(deadline, false, "REPLICATE ", false, "HS-03 (modern REPLICATE, empty data)");
    return;
  }
  for (size_t i = 0; replicate[i] != NULL; i++)
    peer_expect_line(deadline, false, replicate[i], false,
                     "HS-05/RC-05 (one REPLICATE per stream at its current position)");
}

static int64_t startup_deadline(void) {
  return rc_clock_mono_ms() + 5000 + 5 * margin_ms;
}

/* Starts the worker and checks its first opening. */
static void start_and_open(const char *const *streams, const char *const *replicate) {
  worker_start(streams);
  peer_accept_opening(startup_deadline(), replicate);
}

/* ---- the worker's log ------------------------------------------------------------ */

static char *log_read(void) {
  return test_log_read(log_path);
}

static bool log_contains(const char *needle) {
  return test_log_offset(log_path, needle) >= 0;
}

/* Waits until the log contains `needle` (the worker writes each line with one write). */
static bool log_wait_for(const char *needle, int64_t deadline) {
  for (;;) {
    if (log_contains(needle)) return true;
    if (rc_clock_mono_ms() >= deadline) return false;
    poll(NULL, 0, 10);
  }
}

/* Copies the first log line containing `needle` into out; false if there is none. */
static bool log_find_line(const char *needle, char *out, size_t cap) {
  char *text = log_read();
  char *hit = strstr(text, needle);
  if (hit != NULL) {
    char *start = hit;
    while (start > text && start[-1] != '\n') start--;
    char *end = strchr(hit, '\n');
    size_t n = end != NULL ? (size_t)(end - start) : strlen(start);
    snprintf(out, cap, "%.*s", (int)n, start);
  }
  free(text);
  return hit != NULL;
}

static size_t log_count(const char *needle) {
  return test_log_count(log_path, needle);
}

/* The Synapse default format, field by field; returns the context field in ctx. */
static bool log_line_parse(const char *text, char *level, size_t level_cap, char *ctx,
                           size_t ctx_cap) {
  static const char *pattern =
      "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} - "
      "[A-Za-z0-9_.]+ - [0-9]+ - (DEBUG|INFO|WARNING|ERROR) - ([^ ]+) - .*$";
  regex_t re;
  ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED), 0);
  regmatch_t m[3];
  bool ok = regexec(&re, text, 3, m, 0) == 0;
  if (ok) {
    snprintf(level, level_cap, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), text + m[1].rm_so);
    snprintf(ctx, ctx_cap, "%.*s", (int)(m[2].rm_eo - m[2].rm_so), text + m[2].rm_so);
  }
  regfree(&re);
  return ok;
}

/* The log line containing `needle` has this level and a context starting with prefix. */
static void assert_log_line(const char *needle, const char *level, const char *ctx_prefix,
                            const char *requirement) {
  char text[4096], got_level[16], ctx[256];
  ck_assert_msg(log_find_line(needle, text, sizeof text),
                "%s\n  Expected: a log line containing '%s'\n  Actual: none", requirement, needle);
  ck_assert_msg(log_line_parse(text, got_level, sizeof got_level, ctx, sizeof ctx),
                "%s\n  Expected: Synapse's log format\n  Actual: '%s'", requirement, text);
  ck_assert_msg(strcmp(got_level, level) == 0 && strncmp(ctx, ctx_prefix, strlen(ctx_prefix)) == 0,
                "%s\n  Expected: level %s, context %s...\n  Actual: '%s'", requirement, level,
                ctx_prefix, text);
}

/* ---- handshake and keepalive ------------------------------------------------------ */

/* HS-01/02/03/05, HS-04: opening lines at once without waiting for SERVER, then no second
 * REPLICATE. Upstream: protocol.py connectionMade (v0.33.3, v1.66.0), client.py. */
START_TEST(test_opening_lines) {
  dialect = dialects[_i];
  start_and_open(LIST("events=10", "caches=3"), LIST("REPLICATE events 10", "REPLICATE caches 3"));
  peer_expect_only_pings(rc_clock_mono_ms() + 3 * PING_MS,
                         "HS-04 (one REPLICATE per connection; nothing but PINGs afterwards)");
}
END_TEST

/* KA-01: an idle worker PINGs once nothing was sent for a ping interval; never silent
 * for more than 2 intervals; one ping schedule (KA-06). Upstream: protocol.py send_ping. */
START_TEST(test_idle_ping) {
  dialect = dialects[_i];
  worker_start(NULL);
  peer_accept_opening(startup_deadline(), LIST("REPLICATE events 0", "REPLICATE caches 0",
                                               "REPLICATE typing 0", "REPLICATE presence 0"));
  int64_t opened = rc_clock_mono_ms();
  peer_send_str("SERVER " SERVER_NAME "\n");
  int64_t last = opened, min_gap = INT64_MAX, max_gap = 0;
  int pings = 0;
  while (rc_clock_mono_ms() < opened + 8 * PING_MS) {
    int r = peer_read_line(opened + 8 * PING_MS);
    if (r == READ_TIMEOUT) break;
    ck_assert_msg(r == READ_LINE && strncmp(line, "PING ", 5) == 0,
                  "KA-01 (idle worker only PINGs)\n  Expected: PING\n  Actual: %s",
                  r == READ_LINE ? line : read_result_name(r));
    int64_t now = rc_clock_mono_ms();
    if (pings == 0)
      ck_assert_msg(now - opened <= PING_MS + margin_ms,
                    "KA-01 (PING once idle for an interval)\n  Expected: first PING within %d "
                    "+ %" PRId64 " ms\n  Actual: after %" PRId64 " ms",
                    PING_MS, margin_ms, now - opened);
    else if (now - last < min_gap)
      min_gap = now - last;
    if (now - last > max_gap) max_gap = now - last;
    last = now;
    pings++;
  }
  ck_assert_msg(pings >= 4, "KA-01: expected at least 4 PINGs in %d ms, got %d", 8 * PING_MS,
                pings);
  ck_assert_msg(max_gap <= 2 * PING_MS + margin_ms,
                "KA-01 (never silent for more than 2 intervals)\n  Expected: gap <= %" PRId64
                " ms\n  Actual: %" PRId64 " ms",
                2 * PING_MS + margin_ms, max_gap);
  ck_assert_msg(min_gap >= PING_MS / 2,
                "KA-06 (one ping schedule)\n  Expected: PINGs about %d ms apart\n"
                "  Actual: two PINGs %" PRId64 " ms apart",
                PING_MS, min_gap);
}
END_TEST

/* KA-03 negative side (spec §3.2): a peer that never PINGs is never timed out. */
START_TEST(test_no_timeout_without_server_ping) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=0"), LIST("REPLICATE caches 0"));
  peer_send_str("SERVER " SERVER_NAME "\n");
  int pings = peer_expect_only_pings(rc_clock_mono_ms() + 3 * TIMEOUT_MS,
                                     "spec §3.2 (no receive timeout before a PING was received)");
  ck_assert_int_ge(pings, 5);
}
END_TEST

/* KA-03/KA-04: after a PING from the server, silence for more than the timeout makes the
 * worker send `ERROR ping timeout` and close, at a keepalive tick: within
 * [timeout, timeout + interval + margin] of our last command. Upstream: protocol.py. */
START_TEST(test_ping_timeout) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=0"), LIST("REPLICATE caches 0"));
  peer_send_str("SERVER " SERVER_NAME "\nPING 1795911719153\n");
  int64_t last_sent = rc_clock_mono_ms();
  peer_expect_line(last_sent + TIMEOUT_MS + PING_MS + margin_ms, true, "ERROR ping timeout", false,
                   "KA-03/KA-04 (ERROR ping timeout after the receive timeout)");
  int64_t elapsed = rc_clock_mono_ms() - last_sent;
  ck_assert_msg(elapsed >= TIMEOUT_MS && elapsed <= TIMEOUT_MS + PING_MS + margin_ms,
                "KA-03 (timeout window)\n  Expected: %d..%" PRId64
                " ms after our last "
                "command\n  Actual: %" PRId64 " ms",
                TIMEOUT_MS, TIMEOUT_MS + PING_MS + margin_ms, elapsed);
  peer_expect_eof(rc_clock_mono_ms() + margin_ms, "CL-01 (close with FIN after the ERROR)");
}
END_TEST

/* KA-05: every valid command, not only PING, resets the receive clock. */
START_TEST(test_any_command_resets_receive_clock) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=3"), LIST("REPLICATE caches 3"));
  peer_send_str("SERVER " SERVER_NAME "\nPING 1\n");
  const char *keep =
      dialect == PROTO_DIALECT_2018 ? "POSITION caches 3\n" : "POSITION caches master 3 3\n";
  int64_t last_sent = rc_clock_mono_ms();
  for (int round = 0; round < 4; round++) {
    peer_expect_only_pings(last_sent + TIMEOUT_MS * 6 / 10,
                           "KA-05 (a valid non-PING command resets the receive clock)");
    peer_send_str(keep);
    last_sent = rc_clock_mono_ms();
  }
  peer_expect_line(last_sent + TIMEOUT_MS + PING_MS + margin_ms, true, "ERROR ping timeout", false,
                   "KA-03 (timeout counted from the last valid command)");
  int64_t elapsed = rc_clock_mono_ms() - last_sent;
  ck_assert_msg(elapsed >= TIMEOUT_MS,
                "KA-05\n  Expected: timeout >= %d ms after the last POSITION\n"
                "  Actual: after %" PRId64 " ms",
                TIMEOUT_MS, elapsed);
}
END_TEST

/* ---- SERVER, ERROR, malformed input ----------------------------------------------- */

/* HS-06/HS-07, RC-01: a wrong SERVER name gets `ERROR Wrong remote` and a close, then a
 * reconnect. Upstream: protocol.py on_SERVER; trace 1.66/fake-main c3. */
START_TEST(test_wrong_server) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=0"), LIST("REPLICATE caches 0"));
  peer_send_str("SERVER wrong.example\n");
  peer_expect_error_then_eof("ERROR Wrong remote", false, "HS-06/HS-07 (wrong remote refused)");
  int64_t lost = rc_clock_mono_ms();
  assert_log_line("Connected to wrong remote: 'wrong.example'", "ERROR", "",
                  "HS-06 (logged like Synapse)");
  peer_accept_opening(lost + RECONNECT_BOUND_MS, LIST("REPLICATE caches 0"));
}
END_TEST

/* FR-06..FR-10: unknown command, server-bound command, unparsable arguments: one ERROR
 * whose text starts like Synapse's, then a close; lines after the bad one in the same
 * segment are not processed. Upstream: protocol.py lineReceived (v0.33.3) /
 * _parse_and_dispatch_line (v1.66.0); traces c2, c4, c5. */
START_TEST(test_bad_lines) {
  dialect = dialects[_i];
  bool modern = dialect == PROTO_DIALECT_MODERN;
  const struct {
    const char *line;
    const char *prefix_2018;
    const char *prefix_modern;
  } cases[] = {
      {"HELLO world", "ERROR invalid command: HELLO", "ERROR failed to parse line: "},
      {"NAME fakemain", "ERROR invalid command: NAME", "ERROR invalid command: NAME"},
      {modern ? "RDATA caches master 5 {not json" : "RDATA caches 5 {not json",
       "ERROR failed to parse line for  'RDATA': ", "ERROR failed to parse line: "},
      {modern ? "POSITION caches master x 5" : "POSITION caches x",
       "ERROR failed to parse line for  'POSITION': ", "ERROR failed to parse line: "},
  };
  worker_start(LIST("caches=3"));
  int64_t accept_deadline = startup_deadline();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    peer_accept_opening(accept_deadline, LIST("REPLICATE caches 3"));
    peer_send_str("SERVER " SERVER_NAME "\n");
    if (modern) {
      peer_send_str("POSITION caches master 3 3\n");
      ck_assert(
          log_wait_for("Caught up with stream 'caches' to 3", rc_clock_mono_ms() + margin_ms));
    }
    /* FR-10: the RDATA rides in the same segment, right after the bad line. */
    char segment[256];
    snprintf(segment, sizeof segment, "%s\n%s\n", cases[i].line,
             modern ? "RDATA caches master 99 [\"f\",[],1]" : "RDATA caches 99 [\"f\",[],1]");
    peer_send_str(segment);
    char requirement[256];
    snprintf(requirement, sizeof requirement,
             "FR-06..FR-09 (bad line '%s' refused with an ERROR like Synapse's)", cases[i].line);
    peer_expect_error_then_eof(modern ? cases[i].prefix_modern : cases[i].prefix_2018, true,
                               requirement);
    accept_deadline = rc_clock_mono_ms() + RECONNECT_BOUND_MS;
  }
  ck_assert_msg(!log_contains("Received rdata caches -> 99") &&
                    !log_contains("Received rdata caches (master) -> 99"),
                "FR-10 (no line processed after the close decision)\n  Expected: no "
                "'Received rdata caches ... -> 99' in the log\n  Actual: it was applied");
}
END_TEST

/* Lines a Synapse receiver drops the connection for without an ERROR line (proto.h,
 * proto_rejection_text returns 0): invalid UTF-8 in both dialects, and in 2018 a line
 * without a space. The worker closes with a FIN and sends no ERROR; it reconnects.
 * Upstream: Twisted LineOnlyReceiver decoding failure; protocol.py@v0.33.3 lineReceived
 * (line.split(" ", 1) unpacking error). */
START_TEST(test_silent_close) {
  dialect = dialects[_i];
  bool modern = dialect == PROTO_DIALECT_MODERN;
  const char *lines[] = {
      modern ? "RDATA caches master 5 [\"\xff\xfe\"]" : "RDATA caches 5 [\"\xff\xfe\"]",
      modern ? NULL : "NOSPACE"};
  worker_start(LIST("caches=3"));
  int64_t accept_deadline = startup_deadline();
  for (size_t i = 0; i < 2 && lines[i] != NULL; i++) {
    peer_accept_opening(accept_deadline, LIST("REPLICATE caches 3"));
    peer_send_str("SERVER " SERVER_NAME "\n");
    char segment[128];
    snprintf(segment, sizeof segment, "%s\n", lines[i]);
    peer_send_str(segment);
    int r;
    do r = peer_read_line(rc_clock_mono_ms() + margin_ms);
    while (r == READ_LINE && strncmp(line, "PING ", 5) == 0);
    ck_assert_msg(r == READ_EOF,
                  "FR (silent close)\n  Expected: FIN without an ERROR after '%s'\n"
                  "  Actual: %s%s",
                  lines[i], r == READ_LINE ? "the line " : read_result_name(r),
                  r == READ_LINE ? line : "");
    peer_close();
    accept_deadline = rc_clock_mono_ms() + RECONNECT_BOUND_MS;
  }
  peer_accept_opening(accept_deadline, LIST("REPLICATE caches 3"));
  ck_assert_uint_ge(log_count("closed locally without ERROR"), 1);
}
END_TEST

/* FR-03/FR-04/FR-05: a line of exactly 16384 bytes is processed; 16385 bytes + LF, and
 * 20000 bytes without LF, get `ERROR Line length exceeded` and a close (FIN). Upstream:
 * Twisted LineOnlyReceiver MAX_LENGTH; Synapse #4748; trace 1.66/main-long-line. */
START_TEST(test_line_length_limit) {
  dialect = dialects[_i];
  bool modern = dialect == PROTO_DIALECT_MODERN;
  start_and_open(LIST("caches=3"), LIST("REPLICATE caches 3"));
  peer_send_str("SERVER " SERVER_NAME "\n");
  if (modern) peer_send_str("POSITION caches master 3 3\n");

  static char big[20001];
  const char *head = modern ? "RDATA caches master 4 [\"" : "RDATA caches 4 [\"";
  const char *tail = "\",[],1]";
  size_t pad = PROTO_MAX_LINE - strlen(head) - strlen(tail);
  snprintf(big, sizeof big, "%s%*s%s\n", head, (int)pad, "", tail);
  memset(big + strlen(head), 'a', pad);
  ck_assert_uint_eq(strlen(big), PROTO_MAX_LINE + 1);
  peer_send(big, PROTO_MAX_LINE + 1);
  const char *applied =
      modern ? "Received rdata caches (master) -> 4" : "Received rdata caches -> 4";
  ck_assert_msg(log_wait_for(applied, rc_clock_mono_ms() + margin_ms),
                "FR-03 (a line of exactly %d bytes is processed)\n  Expected: '%s' in the log\n"
                "  Actual: not there",
                PROTO_MAX_LINE, applied);

  memset(big, 'x', PROTO_MAX_LINE + 1);
  big[PROTO_MAX_LINE + 1] = '\n';
  peer_send(big, PROTO_MAX_LINE + 2);
  peer_expect_error_then_eof("ERROR Line length exceeded", false,
                             "FR-04/FR-05 (16385 bytes + LF refused)");

  peer_accept_opening(rc_clock_mono_ms() + RECONNECT_BOUND_MS, LIST("REPLICATE caches 4"));
  memset(big, 'y', 20000);
  peer_send(big, 20000);
  peer_expect_error_then_eof("ERROR Line length exceeded", false,
                             "FR-04/FR-05 (20000 bytes without LF refused)");

  /* CL-01: more data behind the over-long line is still unread in the worker's socket
   * when it closes; the close must still be an orderly FIN after the ERROR. */
  peer_accept_opening(rc_clock_mono_ms() + RECONNECT_BOUND_MS, LIST("REPLICATE caches 4"));
  size_t trailer = 3 * PROTO_MAX_LINE;
  char *flood = malloc(PROTO_MAX_LINE + 2 + trailer);
  ck_assert_ptr_nonnull(flood);
  memset(flood, 'z', PROTO_MAX_LINE + 1 + trailer);
  flood[PROTO_MAX_LINE + 1] = '\n';
  for (size_t at = PROTO_MAX_LINE + 2 + 99; at < PROTO_MAX_LINE + 1 + trailer; at += 100)
    flood[at] = '\n';
  /* One send; the worker may close before reading it all, so a short write is fine. */
  ssize_t sent = send(peer.fd, flood, PROTO_MAX_LINE + 1 + trailer, MSG_NOSIGNAL);
  free(flood);
  ck_assert_int_gt(sent, PROTO_MAX_LINE + 1);
  /* peer_expect_eof inside fails on ECONNRESET: the close must be a FIN. */
  peer_expect_error_then_eof("ERROR Line length exceeded", false,
                             "FR-04/FR-05 (over-long line with more data behind it refused)");
}
END_TEST

/* FR-14: an inbound ERROR is logged at ERROR level and the connection is kept; blank
 * lines are ignored (FR-13); the log is in Synapse's format with the handler's context
 * (spec §5.2: 2018 replication-ERROR-<n>, modern replication-conn-<id>). */
START_TEST(test_remote_error_and_log_format) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=0"), LIST("REPLICATE caches 0"));
  peer_send_str("SERVER " SERVER_NAME "\n\n   \nERROR boom\n");
  ck_assert(log_wait_for("Remote reported error: 'boom'", rc_clock_mono_ms() + margin_ms));
  assert_log_line("Remote reported error: 'boom'", "ERROR",
                  dialect == PROTO_DIALECT_2018 ? "replication-ERROR-0" : "replication-conn-",
                  "FR-14 (remote ERROR logged at ERROR level in the handler's context)");
  peer_expect_only_pings(rc_clock_mono_ms() + 3 * PING_MS,
                         "FR-13/FR-14 (connection kept after blank lines and a remote ERROR)");

  char *text = log_read();
  ck_assert_msg(strstr(text, "Starting refworker ") != NULL, "no 'Starting refworker' line");
  size_t n = 0;
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save), n++) {
    char level[16], ctx[256];
    ck_assert_msg(log_line_parse(l, level, sizeof level, ctx, sizeof ctx),
                  "log format (Synapse default)\n  Expected: 'date time,ms - logger - lineno - "
                  "LEVEL - context - message'\n  Actual: '%s'",
                  l);
  }
  free(text);
  ck_assert_uint_ge(n, 5);
}
END_TEST

/* ---- reconnect ------------------------------------------------------------------ */

/* RC-01/RC-03/RC-04, CL-02: after the main closes, the worker closes its end at once and
 * reconnects after about initial * e (never sooner than the initial delay, never later
 * than the RC-01 bound), each time with the complete opening. Upstream: Twisted
 * ReconnectingClientFactory; client.py (v1.66.0: initial 0.1 s, max 1 s). */
START_TEST(test_reconnect_after_close) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=0"), LIST("REPLICATE caches 0"));
  for (int round = 0; round < 3; round++) {
    shutdown(peer.fd, SHUT_WR);
    peer_expect_eof(rc_clock_mono_ms() + margin_ms, "CL-02 (worker closes its end after our FIN)");
    int64_t lost = rc_clock_mono_ms();
    peer_accept_opening(lost + RECONNECT_BOUND_MS, LIST("REPLICATE caches 0"));
    int64_t waited = rc_clock_mono_ms() - lost;
    ck_assert_msg(waited >= RECONNECT_INITIAL_MS - 10,
                  "RC-03 (no tight reconnect loop)\n  Expected: >= %d ms\n  Actual: %" PRId64 " ms",
                  RECONNECT_INITIAL_MS, waited);
  }
  ck_assert_uint_eq(log_count("Lost replication conn: "), 3);
  ck_assert_uint_eq(log_count("Connected to replication: 127.0.0.1:"), 4);
}
END_TEST

/* RC-02: while the main refuses connections the worker keeps trying; it connects soon
 * after the listener is back. */
START_TEST(test_reconnect_after_refused) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=0"), LIST("REPLICATE caches 0"));
  int port = listen_port;
  close(listen_fd);
  listen_fd = -1;
  peer_close();
  /* Long enough for several refused attempts at the capped delay. */
  poll(NULL, 0, 3 * RECONNECT_MAX_MS);
  listen_fd = listen_on(port);
  int64_t back = rc_clock_mono_ms();
  peer_accept_opening(back + RECONNECT_BOUND_MS, LIST("REPLICATE caches 0"));
  ck_assert_uint_ge(log_count("Failed to connect to replication: "), 2);
}
END_TEST

/* ---- streams ---------------------------------------------------------------------- */

/* RC-05, RD-01, RD-02, RD-03, RD-09 (2018): REPLICATE tokens on a new connection are the
 * last applied positions; a batch without its closing row does not count and dies with
 * the connection; rows of other streams neither flush nor join a batch; POSITION sets
 * the position, also lower. Upstream: client.py get_streams_to_replicate, on_rdata,
 * on_position; protocol.py on_RDATA (v0.33.3). */
START_TEST(test_2018_positions_survive_reconnect) {
  dialect = PROTO_DIALECT_2018;
  start_and_open(LIST("events=10", "caches=3"), LIST("REPLICATE events 10", "REPLICATE caches 3"));
  peer_send_str("SERVER " SERVER_NAME
                "\n"
                "RDATA events batch [\"$a\",\"!r\",\"m.room.message\",null,null]\n"
                "RDATA caches 5 [\"get_user_by_id\",[\"@a:hs\"],1]\n"
                "RDATA caches 6 [\"get_user_by_id\",[\"@b:hs\"],1]\n");
  ck_assert(log_wait_for("Received rdata caches -> 6", rc_clock_mono_ms() + margin_ms));
  assert_log_line("Received rdata caches -> 5", "INFO", "replication-RDATA-caches-0",
                  "spec §5.2 (2018 RDATA handled in replication-RDATA-<stream>-<n>)");
  shutdown(peer.fd, SHUT_WR);
  peer_expect_eof(rc_clock_mono_ms() + margin_ms, "CL-02");
  peer_accept_opening(rc_clock_mono_ms() + RECONNECT_BOUND_MS,
                      LIST("REPLICATE events 10", "REPLICATE caches 6"));

  /* The batch died with the old connection: this numeric row is a unit of one. */
  peer_send_str("SERVER " SERVER_NAME
                "\n"
                "POSITION caches 2\n"
                "RDATA events 12 [\"$b\",\"!r\",\"m.room.message\",null,null]\n");
  ck_assert(log_wait_for("Received rdata events -> 12", rc_clock_mono_ms() + margin_ms));
  shutdown(peer.fd, SHUT_WR);
  peer_expect_eof(rc_clock_mono_ms() + margin_ms, "CL-02");
  peer_accept_opening(rc_clock_mono_ms() + RECONNECT_BOUND_MS,
                      LIST("REPLICATE events 12", "REPLICATE caches 2"));
  ck_assert_uint_eq(log_count("Received rdata events"), 1);
}
END_TEST

/* RD-05, RD-06, RD-07, RD-01/RD-02, FR-11, PO-01 (modern): RDATA before the stream's
 * POSITION on this connection is dropped; at or below the position it is dropped; our
 * own instance's rows are ignored; unknown streams are ignored without closing; a batch
 * is applied with its closing row. Upstream: handler.py _process_rdata,
 * _process_position (v1.66.0). */
START_TEST(test_modern_rdata_rules) {
  dialect = PROTO_DIALECT_MODERN;
  start_and_open(LIST("caches=3"), NULL);
  peer_send_str("SERVER " SERVER_NAME
                "\n"
                "RDATA caches master 7 [\"c\",[\"k7\"],1]\n"
                "POSITION caches master 3 3\n"
                "RDATA caches master 4 [\"c\",[\"k4\"],1]\n"
                "RDATA caches master 3 [\"c\",[\"k3\"],1]\n"
                "RDATA caches " INSTANCE
                " 9 [\"c\",[\"k9\"],1]\n"
                "RDATA nosuchstream master 5 []\n"
                "POSITION nosuchstream master 1 1\n"
                "RDATA caches master batch [\"c\",[\"k5a\"],1]\n"
                "RDATA caches master 6 [\"c\",[\"k6\"],1]\n");
  ck_assert_msg(log_wait_for("Received rdata caches (master) -> 6", rc_clock_mono_ms() + margin_ms),
                "RD-02 (batch applied with its closing row)\n  Expected: 'Received rdata caches "
                "(master) -> 6' in the log\n  Actual: not there");
  ck_assert_msg(!log_contains("Received rdata caches (master) -> 7") &&
                    !log_contains("Received rdata caches (master) -> 3") &&
                    !log_contains("Received rdata caches (" INSTANCE ")") &&
                    !log_contains("Received rdata nosuchstream"),
                "RD-05/RD-06/RD-07/FR-11\n  Expected: only rows 4 and 6 applied\n  Actual: "
                "another 'Received rdata' line in the log");
  ck_assert_uint_eq(log_count("Received rdata caches (master) -> "), 2);
  ck_assert(log_contains("Discarding RDATA for unconnected stream caches"));
  assert_log_line("Received rdata caches (master) -> 4", "INFO", "process-replication-data-",
                  "spec §5.2 (modern RDATA handled in process-replication-data-<n>)");
  peer_expect_only_pings(rc_clock_mono_ms() + 2 * PING_MS,
                         "FR-11 (unknown streams do not close the connection)");
}
END_TEST

/* PO-01 / RC-06 (modern): streams are unconnected again on a new connection; a POSITION
 * whose prev matches connects without a gap warning, one with a gap is reported and
 * adopted when refworker has no --http-url (tests/test_refworker_catchup.c covers the
 * fetch). */
START_TEST(test_modern_position_per_connection) {
  dialect = PROTO_DIALECT_MODERN;
  start_and_open(LIST("typing=3"), NULL);
  peer_send_str("SERVER " SERVER_NAME
                "\nPOSITION typing master 3 5\n"
                "RDATA typing master 6 [\"!r:hs\",[]]\n");
  ck_assert(log_wait_for("Received rdata typing (master) -> 6", rc_clock_mono_ms() + margin_ms));
  ck_assert_msg(!log_contains("Gap in stream typing"),
                "PO-02 (no catch-up when prev_token equals the position)");
  shutdown(peer.fd, SHUT_WR);
  peer_expect_eof(rc_clock_mono_ms() + margin_ms, "CL-02");
  peer_accept_opening(rc_clock_mono_ms() + RECONNECT_BOUND_MS, NULL);
  peer_send_str("SERVER " SERVER_NAME
                "\nRDATA typing master 7 [\"!r:hs\",[]]\n"
                "POSITION typing master 8 9\nRDATA typing master 10 [\"!r:hs\",[]]\n");
  ck_assert(log_wait_for("Received rdata typing (master) -> 10", rc_clock_mono_ms() + margin_ms));
  ck_assert_msg(!log_contains("Received rdata typing (master) -> 7"),
                "RC-06 (RDATA before this connection's POSITION dropped)");
  assert_log_line("Gap in stream typing: at 6, POSITION says 8..9", "WARNING",
                  "process-replication-data-", "PO-03 (a gap is detected)");
}
END_TEST

/* Modern, a stream given without a token: the writer's first POSITION is adopted as the
 * position without a catch-up (as a worker whose database is current); from then on the
 * gap rule applies. 2018 asks from 0 (test_idle_ping). */
START_TEST(test_modern_unknown_start) {
  dialect = PROTO_DIALECT_MODERN;
  start_and_open(LIST("typing"), NULL);
  peer_send_str("SERVER " SERVER_NAME
                "\nRDATA typing master 2 [\"!r:hs\",[]]\n"
                "POSITION typing master 7 7\nRDATA typing master 8 [\"!r:hs\",[]]\n");
  ck_assert(log_wait_for("Received rdata typing (master) -> 8", rc_clock_mono_ms() + margin_ms));
  ck_assert(log_contains("Stream typing (master) has no position yet; starting at 7"));
  ck_assert_msg(
      !log_contains("Gap in stream typing") && !log_contains("Received rdata typing (master) -> 2"),
      "RD-05 and no gap on the first POSITION\n  Expected: RDATA 2 dropped, no gap\n"
      "  Actual: see the log");
  peer_send_str("POSITION typing master 9 10\n");
  ck_assert(log_wait_for("Gap in stream typing: at 8, POSITION says 9..10",
                         rc_clock_mono_ms() + margin_ms));
}
END_TEST

/* ---- shutdown and usage ------------------------------------------------------------ */

/* CL-05, RC-08: SIGTERM closes the connection with a FIN and exits 0; no new connection. */
START_TEST(test_sigterm) {
  dialect = dialects[_i];
  start_and_open(LIST("caches=0"), LIST("REPLICATE caches 0"));
  peer_send_str("SERVER " SERVER_NAME "\nPING 1\n");
  pid_t pid = child;
  ck_assert_int_eq(kill(pid, SIGTERM), 0);
  int64_t sent = rc_clock_mono_ms();
  peer_expect_eof(sent + margin_ms + 1000, "CL-05 (SIGTERM closes the connection with a FIN)");
  int status = worker_wait(sent + 10000);
  ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "CL-05 (exit after SIGTERM)\n  Expected: exit status 0 within 10 s\n"
                "  Actual: %s %d",
                status == -1        ? "still running, status"
                : WIFEXITED(status) ? "exit"
                                    : "signal",
                status == -1        ? -1
                : WIFEXITED(status) ? WEXITSTATUS(status)
                                    : WTERMSIG(status));
  ck_assert_msg(!peer_accept(rc_clock_mono_ms() + 2 * RECONNECT_INITIAL_MS),
                "RC-08 (no connection attempt after SIGTERM)");
  ck_assert(log_contains("Shutting down"));
}
END_TEST

static Suite *refworker_suite(void) {
  Suite *s = suite_create("refworker");
  TCase *both = tcase_create("both_dialects");
  tcase_add_checked_fixture(both, setup, teardown);
  tcase_set_timeout(both, 60);
  tcase_add_loop_test(both, test_opening_lines, 0, 2);
  tcase_add_loop_test(both, test_idle_ping, 0, 2);
  tcase_add_loop_test(both, test_no_timeout_without_server_ping, 0, 2);
  tcase_add_loop_test(both, test_ping_timeout, 0, 2);
  tcase_add_loop_test(both, test_any_command_resets_receive_clock, 0, 2);
  tcase_add_loop_test(both, test_wrong_server, 0, 2);
  tcase_add_loop_test(both, test_bad_lines, 0, 2);
  tcase_add_loop_test(both, test_silent_close, 0, 2);
  tcase_add_loop_test(both, test_line_length_limit, 0, 2);
  tcase_add_loop_test(both, test_remote_error_and_log_format, 0, 2);
  tcase_add_loop_test(both, test_reconnect_after_close, 0, 2);
  tcase_add_loop_test(both, test_reconnect_after_refused, 0, 2);
  tcase_add_loop_test(both, test_sigterm, 0, 2);
  suite_add_tcase(s, both);

  TCase *streams = tcase_create("streams");
  tcase_add_checked_fixture(streams, setup, teardown);
  tcase_set_timeout(streams, 60);
  tcase_add_test(streams, test_2018_positions_survive_reconnect);
  tcase_add_test(streams, test_modern_rdata_rules);
  tcase_add_test(streams, test_modern_position_per_connection);
  tcase_add_test(streams, test_modern_unknown_start);
  suite_add_tcase(s, streams);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(refworker_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
