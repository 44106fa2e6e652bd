/* Mock emission: RDATA lines per second mockhs_emit() gets onto a loopback socket whose
 * reader discards them, against raw write() of the same bytes on the same socket.
 *   bench_emit [ROWS=200000] [BATCH=1000] [ROUNDS=5]   best round of each is reported
 * A reader process counts bytes and reports (CLOCK_MONOTONIC, shared by processes)
 * when it has received all of a phase. Emission includes everything the mock does per
 * row: formatting and validating the line, the ledger, the stream history, the
 * back-pressure check, libevent's buffers. The event loop runs between batches, as it
 * does between a test's calls. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "mockhs.h"
#include "mockhs_internal.h" /* the connection's socket, for the raw phase on the same one */

/* Reads and discards; for each target count it is sent on `ctl`, writes the time at
 * which the count was reached on `done`. */
static void reader_main(int port, int ctl, int done) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) _exit(1);
  static char buf[1 << 18];
  unsigned long long total = 0, target;
  while (read(ctl, &target, sizeof target) == (ssize_t)sizeof target) {
    while (total < target) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) _exit(2);
      total += (unsigned long long)n;
    }
    double t = bench_now();
    if (write(done, &t, sizeof t) != (ssize_t)sizeof t) _exit(3);
  }
  _exit(0);
}

static mockhs_t *the_mock;

static mock_conn_t *conn_of(mockhs_t *mock, int id) {
  for (mock_conn_t *c = mock->conns; c != NULL; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

static size_t unsent(mockhs_t *mock, int id) {
  mock_conn_t *c = conn_of(mock, id);
  return c != NULL && c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

static double wait_done(struct event_base *base, int done) {
  struct pollfd p = {.fd = done, .events = POLLIN};
  /* Keep the loop turning so the mock flushes; stop once the reader has it all. */
  while (poll(&p, 1, 0) == 0) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
  double t;
  if (read(done, &t, sizeof t) != (ssize_t)sizeof t) {
    char *tail = ledger_format_tail(mockhs_ledger(the_mock), 5);
    fprintf(stderr, "bench_emit: the reader stopped before it had everything; the mock:\n%s",
            tail != NULL ? tail : "");
    free(tail);
    exit(1);
  }
  return t;
}

int main(int argc, char **argv) {
  size_t rows_total = argc > 1 ? (size_t)atol(argv[1]) : 200000;
  size_t batch = argc > 2 ? (size_t)atol(argv[2]) : 1000;
  int rounds = argc > 3 ? atoi(argv[3]) : 5;
  signal(SIGPIPE, SIG_IGN);
  struct event_base *base = event_base_new();
  mockhs_config_t cfg;
  mockhs_config_defaults(&cfg, PROTO_DIALECT_MODERN, "bench.local");
  cfg.ping_interval_ms = 0;
  cfg.send_opening = false;
  cfg.http_enabled = false;
  rc_error_t err;
  mockhs_t *mock = mockhs_create(base, &cfg, &err);
  if (mock == NULL) {
    fprintf(stderr, "bench_emit: %s\n", err.msg);
    return 1;
  }
  the_mock = mock;
  int ctl[2], done[2];
  if (pipe(ctl) != 0 || pipe(done) != 0) return 1;
  pid_t reader = fork();
  if (reader == 0) {
    close(ctl[1]);
    close(done[0]);
    reader_main(mockhs_port(mock), ctl[0], done[1]);
  }
  close(ctl[0]);
  close(done[1]);
  alarm(300); /* a deadline for the whole benchmark */
  while (mockhs_latest_conn(mock) < 0) event_base_loop(base, EVLOOP_ONCE);
  int conn = mockhs_latest_conn(mock);

  /* The rows, and the exact bytes the mock writes for them (for the raw phase). */
  mockhs_row_t *rows = calloc(rows_total, sizeof *rows);
  char *wire = malloc(rows_total * 256);
  size_t wire_len = 0;
  for (size_t i = 0; i < rows_total; i++) {
    char json[256];
    bench_row(json, sizeof json, "caches", i);
    rows[i].json = strdup(json);
    /* Tokens 10^9 + k keep every line the same length in every round. */
    wire_len += (size_t)sprintf(wire + wire_len, "RDATA caches master %lld %s\n",
                                (long long)(1000000000LL + (long long)i), json);
  }

  int fd = (int)bufferevent_getfd(conn_of(mock, conn)->bev);
  unsigned long long target = 0;
  double best_mock = 1e9, best_raw = 1e9;
  int64_t token = 1000000000;
  for (int round = 0; round < rounds; round++) {
    /* Mock: mockhs_emit in batches, the loop turning between them. */
    for (size_t i = 0; i < rows_total; i++) rows[i].token = token++;
    target += wire_len; /* same length: tokens keep their digit count */
    double t0 = bench_now();
    if (write(ctl[1], &target, sizeof target) != (ssize_t)sizeof target) return 1;
    for (size_t at = 0; at < rows_total; at += batch) {
      size_t n = rows_total - at < batch ? rows_total - at : batch;
      if (mockhs_emit(mock, "caches", rows + at, n, &err) != 0) {
        fprintf(stderr, "bench_emit: %s\n", err.msg);
        return 1;
      }
      /* Like a test that waits for the SUT: emit on while less than 4 MiB is unsent
       * (the mock closes a connection past MOCKHS_MAX_QUEUED_BYTES). */
      event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
      while (unsent(mock, conn) > 4u * 1024 * 1024) event_base_loop(base, EVLOOP_ONCE);
    }
    double t = wait_done(base, done[0]) - t0;
    if (t < best_mock) best_mock = t;
    if (!mockhs_conn_is_open(mock, conn)) {
      fprintf(stderr, "bench_emit: the mock closed the connection (back-pressure)\n");
      return 1;
    }
    /* Raw: the same number of bytes with write() on the mock's socket. */
    target += wire_len;
    double t1 = bench_now();
    if (write(ctl[1], &target, sizeof target) != (ssize_t)sizeof target) return 1;
    for (size_t at = 0; at < wire_len;) {
      size_t chunk = wire_len - at < 65536 ? wire_len - at : 65536;
      ssize_t n = write(fd, wire + at, chunk);
      if (n > 0) {
        at += (size_t)n;
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, 1000);
      } else {
        perror("bench_emit: write");
        return 1;
      }
    }
    t = wait_done(base, done[0]) - t1;
    if (t < best_raw) best_raw = t;
  }
  double t_mock = best_mock, t_raw = best_raw;

  printf("bench_emit: %zu RDATA rows (%.1f MB on the wire, %.0f bytes a line), batches of %zu, "
         "best of %d rounds\n",
         rows_total, (double)wire_len / 1e6, (double)wire_len / (double)rows_total, batch, rounds);
  bench_result("mockhs_emit lines/s", (double)rows_total / t_mock, "lines/s",
               "raw write() lines/s", (double)rows_total / t_raw, 0.5);
  fflush(stdout);
  close(ctl[1]);
  waitpid(reader, NULL, 0);
  for (size_t i = 0; i < rows_total; i++) free((char *)rows[i].json);
  free(rows);
  free(wire);
  mockhs_destroy(mock);
  event_base_free(base);
  return 0;
}
