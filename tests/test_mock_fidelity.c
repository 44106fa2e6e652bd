/* The mock homeserver must emit what a real main emits. These tests replay the
 * worker's side of the opening of a real Synapse main/worker pair (shared/reference/
 * synapse-1.66/real-pair.txt, modern; synapse-1.12/real-pair.txt, 2018) to the mock
 * and compare what the mock answers with what the real main answered: same commands,
 * same order, same shapes (stream names, instance names, field counts), ignoring
 * values such as timestamps, tokens and the server name. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mockhs.h"
#include "rc_clock.h"
#include "test_support.h"

#define MAX_LINES 256

typedef struct transcript {
  char *worker[MAX_LINES]; /* W>M lines of the opening, in order */
  size_t worker_count;
  char *main[MAX_LINES]; /* M>W lines of the opening, in order */
  size_t main_count;
} transcript_t;

/* Reads connection c1's opening: every line up to the worker's second PING (the
 * first keepalive), which is where the handshake exchange is over in both traces. */
static void transcript_read(const char *path, transcript_t *t) {
  memset(t, 0, sizeof *t);
  char *text = test_read_file(path, NULL);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  int worker_pings = 0;
  for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    char *c1 = strstr(line, " c1 ");
    if (c1 == NULL) continue;
    char *dir = c1 + 4;
    bool from_worker = strncmp(dir, "W>M ", 4) == 0;
    bool from_main = strncmp(dir, "M>W ", 4) == 0;
    if (!from_worker && !from_main) continue;
    char *content = dir + 4;
    if (from_worker && strncmp(content, "PING ", 5) == 0 && ++worker_pings == 2) break;
    if (from_main && strncmp(content, "RDATA ", 6) == 0) break;
    if (from_worker && t->worker_count < MAX_LINES) t->worker[t->worker_count++] = strdup(content);
    if (from_main && t->main_count < MAX_LINES) t->main[t->main_count++] = strdup(content);
  }
  free(text);
}

static void transcript_free(transcript_t *t) {
  for (size_t i = 0; i < t->worker_count; i++) free(t->worker[i]);
  for (size_t i = 0; i < t->main_count; i++) free(t->main[i]);
}

/* The shape of a main's line: command, stream and instance names kept, numbers and
 * free values replaced. */
static void shape_of(proto_dialect_t dialect, const char *line, char *out, size_t cap) {
  proto_command_t cmd;
  proto_error_t err;
  ck_assert_msg(proto_parse_line(dialect, PROTO_SENDER_SERVER, line, strlen(line), &cmd, &err) ==
                    PROTO_OK,
                "'%s' does not parse: %s", line, err.message);
  char stream[96], instance[96];
  proto_slice_copy(cmd.stream, stream, sizeof stream);
  proto_slice_copy(cmd.instance, instance, sizeof instance);
  switch (cmd.kind) {
    case PROTO_CMD_POSITION:
      if (dialect == PROTO_DIALECT_MODERN)
        snprintf(out, cap, "POSITION %s %s N N", stream, instance);
      else
        snprintf(out, cap, "POSITION %s N", stream);
      break;
    case PROTO_CMD_SERVER: snprintf(out, cap, "SERVER <name>"); break;
    case PROTO_CMD_PING: snprintf(out, cap, "PING <data>"); break;
    default: snprintf(out, cap, "%s ...", proto_command_name(cmd.kind)); break;
  }
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

/* Replays the worker's opening to a mock of the dialect and returns the mock's lines,
 * collected until it has been quiet for 300 ms (deadline 5 s). */
static size_t replay(proto_dialect_t dialect, const transcript_t *t, char **got, size_t cap) {
  struct event_base *base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, dialect, "test.local");
  cfg.ping_interval_ms = 0; /* only the opening PING, like the trace's first 5 s */
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  ck_assert_msg(mock != NULL, "%s", err.msg);
  int fd = connect_to(mockhs_port(mock));
  for (size_t i = 0; i < t->worker_count; i++) {
    char line[1024];
    int n = snprintf(line, sizeof line, "%s\n", t->worker[i]);
    ck_assert_int_eq(send(fd, line, (size_t)n, MSG_NOSIGNAL), n);
  }
  char buf[65536];
  size_t used = 0, count = 0;
  int64_t deadline = rc_clock_mono_ms() + 5000, quiet_since = rc_clock_mono_ms();
  while (rc_clock_mono_ms() < deadline && rc_clock_mono_ms() - quiet_since < 300) {
    mockhs_run_for(mock, 10);
    ssize_t r = recv(fd, buf + used, sizeof buf - used - 1, 0);
    if (r > 0) {
      used += (size_t)r;
      quiet_since = rc_clock_mono_ms();
    }
  }
  buf[used] = '\0';
  for (char *line = strtok(buf, "\n"); line != NULL && count < cap; line = strtok(NULL, "\n"))
    got[count++] = strdup(line);
  close(fd);
  mockhs_destroy(mock);
  event_base_free(base);
  return count;
}

static void check_fidelity(const char *trace, proto_dialect_t dialect) {
  char *path = test_path(test_env("REPLCHECK_SHARED_DIR"), trace);
  transcript_t t;
  transcript_read(path, &t);
  ck_assert_msg(t.main_count > 2 && t.worker_count > 2, "%s: no opening found", path);
  char *got[MAX_LINES];
  size_t n = replay(dialect, &t, got, MAX_LINES);
  for (size_t i = 0; i < t.main_count || i < n; i++) {
    char want[512] = "(nothing)", have[512] = "(nothing)";
    if (i < t.main_count) shape_of(dialect, t.main[i], want, sizeof want);
    if (i < n) shape_of(dialect, got[i], have, sizeof have);
    ck_assert_msg(strcmp(want, have) == 0,
                  "%s line %zu of the main's opening: the real main sent '%s' (shape %s), the "
                  "mock sent '%s' (shape %s)",
                  trace, i + 1, i < t.main_count ? t.main[i] : "", want, i < n ? got[i] : "", have);
  }
  for (size_t i = 0; i < n; i++) free(got[i]);
  transcript_free(&t);
  free(path);
}

START_TEST(modern_opening_matches_real_main_1_66) {
  check_fidelity("reference/synapse-1.66/real-pair.txt", PROTO_DIALECT_MODERN);
}
END_TEST

START_TEST(opening_2018_matches_real_main_1_12) {
  check_fidelity("reference/synapse-1.12/real-pair.txt", PROTO_DIALECT_2018);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mock_fidelity");
  TCase *tc = tcase_create("fidelity");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, modern_opening_matches_real_main_1_66);
  tcase_add_test(tc, opening_2018_matches_real_main_1_12);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
